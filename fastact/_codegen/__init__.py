"""Code generation from the activation table (C for Cython, Python for Numba)."""
