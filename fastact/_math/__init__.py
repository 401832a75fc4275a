"""Scalar math helpers shared by every compiled backend (see functions.py)."""
