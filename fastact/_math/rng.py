"""The key mixer of rrelu's counter-based generator, in exact Python integers.

Element ``i`` of seed ``s`` draws its random slope from the 64-bit counter
``mix64(s) + i`` (wrapping).  ``mix64`` is splitmix64's output function, a
bijection of the 64-bit integers, so :func:`unmix64` inverts it: that is how
a block of a chunked array gets the seed whose counters start at the block's
global offset (:func:`fastact.integrations.dask.offset_seed`).

This module owns the Python ``mix64`` and its constants.  The kernels have
their own, compiled, definitions of the same function: ``fa_mix64`` in
``fastact/_backends/cython/fa_intrinsics.h`` (C) and
:func:`fastact._backends.numba.intrinsics.mix64` (Numba, built from the
constants below).  ``fastact.reference`` keeps an independent NumPy copy: the
oracle the tests compare the kernels' slopes with.
"""

from __future__ import annotations

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15  # also the Weyl increment of the float64 slopes
M1 = 0xBF58476D1CE4E5B9
M2 = 0x94D049BB133111EB
_M1_INV = pow(M1, -1, 1 << 64)
_M2_INV = pow(M2, -1, 1 << 64)


def mix64(z: int) -> int:
    """splitmix64's output function of the 64-bit integer ``z``."""
    z = (z + GOLDEN) & MASK
    z = ((z ^ (z >> 30)) * M1) & MASK
    z = ((z ^ (z >> 27)) * M2) & MASK
    return z ^ (z >> 31)


def _unshift(y: int, s: int) -> int:
    """Inverse of ``x -> x ^ (x >> s)`` on 64 bits."""
    x = y
    for _ in range(64 // s + 1):
        x = y ^ (x >> s)
    return x


def unmix64(h: int) -> int:
    """The ``z`` with ``mix64(z) == h`` (for ``0 <= h < 2**64``)."""
    z = _unshift(h, 31)
    z = _unshift((z * _M2_INV) & MASK, 27)
    z = _unshift((z * _M1_INV) & MASK, 30)
    return (z - GOLDEN) & MASK
