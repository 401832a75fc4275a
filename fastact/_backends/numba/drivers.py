"""The drivers of the Numba backend: a call cut into chunks, one kernel call per chunk.

Each driver gets its kernel as an address (:func:`.intrinsics.call_kernel`),
so one driver serves every entry and both float types.  The chunks, blocks
and reduction order are those of the OpenMP driver of the Cython backend
(``_kernels.pyx``, whose constants these are), so both backends give the
same bits for any thread count.

The backend compiles this module twice, from two copies in its cache
directory (:mod:`._store`): once with ``parallel=True`` (``prange`` runs one
chunk per thread) and once without (``prange`` is ``range``): Numba's disk
cache names its files by module and function and does not tell apart one
function compiled with and without ``parallel=True``.  Hence the absolute
imports: the copies are not part of the package.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from fastact._backends.numba.intrinsics import call_kernel

MIN_CHUNK = 4096  # no chunk of fewer elements (but a call's only one)
SEGMENT = 16384  # the longest run of a per-channel row one kernel call takes
PGRAD_BLOCKS = 64  # the partial sums of a per-channel parameter gradient

_SEED0 = np.uint64(0)

NAMES = (
    "unary",
    "binary",
    "channel_forward",
    "channel_backward",
    "rowwise_forward",
    "rowwise_backward",
)


def unary(kernel, x, out, p, seed, nch):
    n = x.size
    step = (n + nch - 1) // nch
    step = (step + 15) // 16 * 16
    for c in prange(nch):
        start = c * step
        if start < n:
            call_kernel(kernel, x, out, p, 0, seed, start, min(start + step, n))


def binary(kernel, g, s, out, p, seed, nch):
    n = g.size
    step = (n + nch - 1) // nch
    step = (step + 15) // 16 * 16
    for c in prange(nch):
        start = c * step
        if start < n:
            call_kernel(kernel, g, s, out, p, 0, seed, start, min(start + step, n))


def channel_forward(kernel, x, out, w, rows, rowlen, segs, C, vector):
    for u in prange(rows * segs):
        r = u // segs
        j = u % segs
        off = r * rowlen + j * SEGMENT
        ln = SEGMENT if (j + 1) * SEGMENT <= rowlen else rowlen - j * SEGMENT
        poff = j * SEGMENT if vector else r % C
        call_kernel(kernel, x, out, w, poff, _SEED0, off, off + ln)


def channel_backward(kernel, pgrad, g, s, out, w, partial, rows, rowlen, segs, C, vector, nblocks):
    units = rows * segs
    for b in prange(nblocks):
        for u in range(b * units // nblocks, (b + 1) * units // nblocks):
            r = u // segs
            j = u % segs
            off = r * rowlen + j * SEGMENT
            ln = SEGMENT if (j + 1) * SEGMENT <= rowlen else rowlen - j * SEGMENT
            poff = j * SEGMENT if vector else r % C
            # The parameter gradient first: out may be g itself.
            call_kernel(pgrad, g, s, w, poff, partial, b * C + poff, off, off + ln)
            call_kernel(kernel, g, s, out, w, poff, _SEED0, off, off + ln)


def rowwise_forward(kernel, x, out, p, rowlen, rows, nch):
    step = (rows + nch - 1) // nch
    for c in prange(nch):
        r0 = c * step
        if r0 < rows:
            call_kernel(kernel, x, out, p, rowlen, r0, min(r0 + step, rows))


def rowwise_backward(kernel, g, s, out, p, rowlen, rows, nch):
    step = (rows + nch - 1) // nch
    for c in prange(nch):
        r0 = c * step
        if r0 < rows:
            call_kernel(kernel, g, s, out, p, rowlen, r0, min(r0 + step, rows))
