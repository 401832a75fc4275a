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
from numba.extending import register_jitable

from fastact._backends.numba.intrinsics import call_kernel, shifted

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
    "bias_unary",
    "bias_binary",
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


# --- bias epilogues (the Cython driver's _epilogue.pxi: same tiles, blocks and order) ---

TILE = 1024  # elements of x + bias a tile holds before the kernel reads them


@register_jitable
def add_bias(x, b, z, k0, n, C, inner):
    """z[j] = x[k0 + j] + b[((k0 + j) // inner) % C] for j < n.

    The loops run over slices (views): on them Numba's index arithmetic
    vectorizes.
    """
    j = 0
    if inner == 1:
        c = k0 % C
        while j < n:
            run = min(C - c, n - j)
            xs, bs, zs = x[k0 + j : k0 + j + run], b[c : c + run], z[j : j + run]
            for i in range(run):
                zs[i] = xs[i] + bs[i]
            j += run
            c = 0
        return
    c = (k0 // inner) % C
    r = k0 % inner
    while j < n:
        run = min(inner - r, n - j)
        bv = b[c]
        xs, zs = x[k0 + j : k0 + j + run], z[j : j + run]
        for i in range(run):
            zs[i] = xs[i] + bv
        j += run
        r = 0
        c += 1
        if c == C:
            c = 0


@register_jitable
def sum_bias(gi, k0, n, C, inner, acc, aoff):
    """acc[aoff + c] += gi (inner == 1), or acc[aoff + 8 * c + k % 8] += gi, in increasing k."""
    j = 0
    if inner == 1:
        c = k0 % C
        while j < n:
            run = min(C - c, n - j)
            gs, a = gi[k0 + j : k0 + j + run], acc[aoff + c : aoff + c + run]
            for i in range(run):
                a[i] += np.float64(gs[i])
            j += run
            c = 0
        return
    c = (k0 // inner) % C
    r = k0 % inner
    while j < n:
        run = min(inner - r, n - j)
        gs, a = gi[k0 + j : k0 + j + run], acc[aoff + 8 * c : aoff + 8 * c + 8]
        k = k0 + j
        i = 0
        while i < run and (k + i) & 7:  # up to a multiple of 8: lane 0 again
            a[(k + i) & 7] += np.float64(gs[i])
            i += 1
        while i + 8 <= run:
            for lane in range(8):
                a[lane] += np.float64(gs[i + lane])
            i += 8
        while i < run:
            a[(k + i) & 7] += np.float64(gs[i])
            i += 1
        j += run
        r = 0
        c += 1
        if c == C:
            c = 0


def bias_unary(kernel, x, b, out, p, seed, C, inner, nch):
    n = x.size
    step = (n + nch - 1) // nch
    step = (step + 15) // 16 * 16
    for c in prange(nch):
        start = c * step
        if start < n:
            stop = min(start + step, n)
            z = np.empty(TILE, x.dtype)
            t = start
            while t < stop:
                ln = min(TILE, stop - t)
                add_bias(x, b, z, t, ln, C, inner)
                call_kernel(kernel, shifted(z, -t), out, p, 0, seed, t, t + ln)
                t += ln


def bias_binary(kernel, g, s, b, out, p, seed, C, inner, recompute, partial, width, nblocks):
    n = g.size
    for blk in prange(nblocks):
        k0 = blk * n // nblocks
        k1 = (blk + 1) * n // nblocks
        z = np.empty(TILE, g.dtype)
        t = k0
        while t < k1:
            ln = min(TILE, k1 - t)
            if recompute:
                add_bias(s, b, z, t, ln, C, inner)
                call_kernel(kernel, g, shifted(z, -t), out, p, 0, seed, t, t + ln)
            else:
                call_kernel(kernel, g, s, out, p, 0, seed, t, t + ln)
            sum_bias(out, t, ln, C, inner, partial, blk * width)
            t += ln
