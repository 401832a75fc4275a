"""Scalar math helpers, written once in the formula dialect.

Each function here is translated to a ``static inline`` C function (float and
double) for the Cython backend and to a Numba ``njit`` function for the Numba
backend (see :mod:`fastact._codegen.dialect`).  The body may only assign
names and return an expression; ``exp``, ``log1p``, ``fabs``, ``isnan`` and
the other intrinsics are provided natively by each backend.  This module is
never executed as ordinary Python.
"""

# ruff: noqa: F821  (the intrinsics are bound by each backend)


def keepnan(s, v):
    """``s`` where ``s`` is NaN, else ``v``: gradients propagate NaN inputs."""
    return s if isnan(s) else v


def sigmoid(x):
    """1 / (1 + exp(-x)) on -|x|, so exp never overflows: sigmoid(-x) = e / (1 + e)."""
    e = exp(-fabs(x))
    r = 1 / (1 + e)
    return r if x >= 0 else e * r


HELPERS = (keepnan, sigmoid)
