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

from fastact._backends.numba.intrinsics import (
    bf16_narrow,
    bf16_widen,
    call_kernel,
    f16_narrow,
    f16_widen,
    shifted,
)
from fastact._codegen.dialect import CHANNEL_SEGMENT as SEGMENT
from fastact._codegen.dialect import HALF_BLOCK
from fastact._half import FORMATS, ROW_BATCH

# SEGMENT: the longest run of a per-channel row one kernel call takes (as the C drivers)
FLOAT16 = FORMATS["float16"]  # the format code the 16-bit drivers take (else bfloat16)

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
    "half_unary",
    "half_binary",
    "half_rowwise_forward",
    "half_rowwise_backward",
    "half_channel_forward",
    "half_channel_backward",
)


@register_jitable
def chunk_step(n, nch):
    """The elements of each of ``nch`` chunks of ``n``: n / nch rounded up to a multiple
    of 16, as the OpenMP driver cuts them."""
    step = (n + nch - 1) // nch
    return (step + 15) // 16 * 16


def unary(kernel, x, out, p, seed, nch):
    n = x.size
    step = chunk_step(n, nch)
    for c in prange(nch):
        start = c * step
        if start < n:
            call_kernel(kernel, x, out, p, 0, seed, start, min(start + step, n))


def binary(kernel, g, s, out, p, seed, nch):
    n = g.size
    step = chunk_step(n, nch)
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


# The per-channel drivers on 16-bit patterns: the same loops, over the formats' kernels
# (each widens and rounds the elements it runs itself), compiled for uint16 arrays.
half_channel_forward = channel_forward
half_channel_backward = channel_backward


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


# The backward's order of summation (the Cython driver's fa_epilogue.h: the
# bias gradient has the same bits on both backends).
BIAS_GROUP = 16  # short runs: rows added in the array's type before the double sums
BIAS_LANES = 16  # long runs: lanes of one channel's run
BIAS_SEGMENT = 256  # long runs: elements of a run between two additions of its lanes into double
BIAS_RUNS_FROM = 16  # the shortest run summed in lanes
BIAS_COLS = 2048  # short runs: columns of a row tile (a multiple of inner when inner > 1)


@register_jitable
def bias_rows(v, k, m, w, stride, rel, last, inner, f, acc, aoff):
    """Rows of w elements from v[k] at ``stride`` added into the group sums f,
    zeroed at a group's first row (rel: the row's index in the block), and f
    into acc[aoff ...] at a group's last row or the block's last (``last``): per
    column (inner == 1), else per channel of ``inner`` columns added from the
    first in float64."""
    fs = f[:w]
    for r in range(m):
        row = v[k + r * stride : k + r * stride + w]
        if rel % BIAS_GROUP == 0:
            fs[:] = 0
        for j in range(w):
            fs[j] += row[j]
        if rel % BIAS_GROUP == BIAS_GROUP - 1 or (last and r == m - 1):
            if inner == 1:
                a = acc[aoff : aoff + w]
                for j in range(w):
                    a[j] += np.float64(fs[j])
            else:
                for c in range(w // inner):
                    d = np.float64(fs[c * inner])
                    for i in range(1, inner):
                        d += np.float64(fs[c * inner + i])
                    acc[aoff + c] += d
        rel += 1


@register_jitable
def bias_flush(fl, dl):
    for lane in range(BIAS_LANES):
        dl[lane] += np.float64(fl[lane])
        fl[lane] = 0


@register_jitable
def bias_close(fl, dl, acc, c):
    """A run's lanes closed: fl into dl, dl halved pairwise into acc[c]."""
    bias_flush(fl, dl)
    h = BIAS_LANES // 2
    while h >= 1:
        for lane in range(h):
            dl[lane] += dl[lane + h]
        h //= 2
    acc[c] += dl[0]
    for lane in range(BIAS_LANES):
        dl[lane] = 0


@register_jitable
def bias_runs(v, k0, n, C, inner, fl, dl, acc, aoff):
    """Elements k0..k0+n-1 of v in runs of ``inner`` (a channel's each): position
    i of a run into lane i % BIAS_LANES of fl, fl into dl at every BIAS_SEGMENT-th
    position, a run closed into acc[aoff + c] at its end."""
    i = k0 % inner
    c = (k0 // inner) % C
    k = k0
    while n > 0:
        take = min(BIAS_SEGMENT - i % BIAS_SEGMENT, inner - i, n)
        vs = v[k : k + take]
        t = 0
        while t < take and (i + t) % BIAS_LANES:
            fl[(i + t) % BIAS_LANES] += vs[t]
            t += 1
        while t + BIAS_LANES <= take:
            for lane in range(BIAS_LANES):
                fl[lane] += vs[t + lane]
            t += BIAS_LANES
        while t < take:
            fl[(i + t) % BIAS_LANES] += vs[t]
            t += 1
        k += take
        n -= take
        i += take
        if i == inner:
            bias_close(fl, dl, acc, aoff + c)
            i = 0
            c += 1
            if c == C:
                c = 0
        elif i % BIAS_SEGMENT == 0:
            bias_flush(fl, dl)


@register_jitable
def bias_unit(kernel, g, s, b, out, p, seed, C, inner, recompute, partial, nblocks, cw, nq, u):
    """Unit u: a block (long runs), or a block's column tile of cw channels (short runs)."""
    n = g.size
    if nq == 0:
        k0 = u * n // nblocks
        k1 = (u + 1) * n // nblocks
        aoff = u * C
        partial[aoff : aoff + C] = 0
        z = np.empty(TILE, g.dtype)
        fl = np.zeros(BIAS_LANES, g.dtype)
        dl = np.zeros(BIAS_LANES, np.float64)
        t = k0
        while t < k1:
            ln = min(TILE, k1 - t)
            if recompute:
                add_bias(s, b, z, t, ln, C, inner)
                call_kernel(kernel, g, shifted(z, -t), out, p, 0, seed, t, t + ln)
            else:
                call_kernel(kernel, g, s, out, p, 0, seed, t, t + ln)
            bias_runs(out, t, ln, C, inner, fl, dl, partial, aoff)
            t += ln
        if k1 % inner:
            bias_close(fl, dl, partial, aoff + (k1 - 1) // inner % C)
        return
    blk = u // nq
    q = u % nq
    cn = min(cw, C - q * cw)
    W = C * inner
    outer = n // W
    r0 = blk * outer // nblocks
    r1 = (blk + 1) * outer // nblocks
    j0 = q * cw * inner
    w = cn * inner
    aoff = blk * C + q * cw
    partial[aoff : aoff + cn] = 0
    batch = TILE // W if w == W and W < TILE else 1
    z = np.empty(BIAS_COLS, g.dtype)
    f = np.empty(BIAS_COLS, g.dtype)
    r = r0
    while r < r1:
        m = min(batch, r1 - r)
        k = r * W + j0
        ln = (m - 1) * W + w
        if recompute:
            add_bias(s, b, z, k, ln, C, inner)
            call_kernel(kernel, g, shifted(z, -k), out, p, 0, seed, k, k + ln)
        else:
            call_kernel(kernel, g, s, out, p, 0, seed, k, k + ln)
        bias_rows(out, k, m, w, W, r - r0, r + m == r1, inner, f, partial, aoff)
        r += m


def bias_unary(kernel, x, b, out, p, seed, C, inner, nch):
    n = x.size
    step = chunk_step(n, nch)
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


def bias_binary(kernel, g, s, b, out, p, seed, C, inner, recompute, partial, nblocks):
    cw = 0
    nq = 0
    units = nblocks
    if inner < BIAS_RUNS_FROM:
        cw = min(BIAS_COLS // inner, C)
        nq = (C + cw - 1) // cw
        units = nblocks * nq
    for u in prange(units):
        bias_unit(kernel, g, s, b, out, p, seed, C, inner, recompute, partial, nblocks, cw, nq, u)
    # the blocks' sums into the first, one block after another
    for blk in range(1, nblocks):
        for c in range(C):
            partial[c] += partial[blk * C + c]


@register_jitable
def half_widen(fmt, h, k, m, a):
    if fmt == FLOAT16:
        f16_widen(h, k, m, a)
    else:
        bf16_widen(h, k, m, a)


@register_jitable
def half_narrow(fmt, o, out, k, m):
    if fmt == FLOAT16:
        f16_narrow(o, out, k, m)
    else:
        bf16_narrow(o, out, k, m)


@register_jitable
def half_chunk(kernel, xa, xb, out, p, seed, start, stop, binary, fmt, fused):
    """Elements start..stop-1 of the 16-bit patterns xa (and xb, a backward's saved
    values, where ``binary``) of format ``fmt`` into out: by the format's kernel
    (``fused``: it widens and rounds each element itself), or by the float32 kernel,
    HALF_BLOCK at a time through float32 buffers, rounded into out."""
    if fused:
        if binary:
            call_kernel(kernel, xa, xb, out, p, 0, seed, start, stop)
        else:
            call_kernel(kernel, xa, out, p, 0, seed, start, stop)
        return
    a = np.empty(HALF_BLOCK, np.float32)
    b = np.empty(HALF_BLOCK if binary else 0, np.float32)
    o = np.empty(HALF_BLOCK, np.float32)
    k = start
    while k < stop:
        m = min(HALF_BLOCK, stop - k)
        half_widen(fmt, xa, k, m, a)
        if binary:
            half_widen(fmt, xb, k, m, b)
            call_kernel(
                kernel, shifted(a, -k), shifted(b, -k), shifted(o, -k), p, 0, seed, k, k + m
            )
        else:
            call_kernel(kernel, shifted(a, -k), shifted(o, -k), p, 0, seed, k, k + m)
        half_narrow(fmt, o, out, k, m)
        k += m


def half_unary(kernel, x, out, p, seed, nch, fmt, fused):
    """A forward on the 16-bit patterns x into out (half_chunk), chunked over threads."""
    n = x.size
    step = chunk_step(n, nch)
    for c in prange(nch):
        start = c * step
        if start < n:
            stop = min(start + step, n)
            half_chunk(kernel, x, x, out, p, seed, start, stop, False, fmt, fused)


def half_binary(kernel, g, s, out, p, seed, nch, fmt, fused):
    """As half_unary for a backward of (g, s)."""
    n = g.size
    step = chunk_step(n, nch)
    for c in prange(nch):
        start = c * step
        if start < n:
            stop = min(start + step, n)
            half_chunk(kernel, g, s, out, p, seed, start, stop, True, fmt, fused)


@register_jitable
def half_rows(kernel, xa, xb, out, p, rowlen, r0, r1, binary, fmt, fused):
    """Rows r0..r1-1 of the 16-bit patterns xa (and xb, a backward's saved values, where
    ``binary``) of format ``fmt``: by the format's row kernel (``fused``: it widens and
    rounds each element itself), or a batch of whole rows at a time widened into
    float32 buffers, the float32 row kernel, rounded into out."""
    if fused:
        call_kernel(kernel, xa, xb, out, p, rowlen, r0, r1)
        return
    batch = max(1, ROW_BATCH // rowlen)
    span = batch * rowlen
    a = np.empty(span, np.float32)
    b = np.empty(span if binary else 0, np.float32)
    o = np.empty(span, np.float32)
    r = r0
    while r < r1:
        m = min(batch, r1 - r)
        k = r * rowlen
        half_widen(fmt, xa, k, m * rowlen, a)
        if binary:
            half_widen(fmt, xb, k, m * rowlen, b)
            call_kernel(kernel, a, b, o, p, rowlen, 0, m)
        else:
            call_kernel(kernel, a, o, p, rowlen, 0, m)
        half_narrow(fmt, o, out, k, m * rowlen)
        r += m


def half_rowwise_forward(kernel, x, out, p, rowlen, rows, nch, fmt, fused):
    """The float32 row kernel on the 16-bit rows x, rounded into out: blocks of whole
    rows, as rowwise_forward cuts them."""
    step = (rows + nch - 1) // nch
    for c in prange(nch):
        r0 = c * step
        if r0 < rows:
            r1 = min(r0 + step, rows)
            half_rows(kernel, x, x, out, p, rowlen, r0, r1, False, fmt, fused)


def half_rowwise_backward(kernel, g, s, out, p, rowlen, rows, nch, fmt, fused):
    """As half_rowwise_forward for the row kernel's backward of (g, s) (half_rows)."""
    step = (rows + nch - 1) // nch
    for c in prange(nch):
        r0 = c * step
        if r0 < rows:
            r1 = min(r0 + step, rows)
            half_rows(kernel, g, s, out, p, rowlen, r0, r1, True, fmt, fused)
