"""Math shared by the backends: the dialect's scalar helpers (functions.py), rrelu's key mixer (rng.py)."""
