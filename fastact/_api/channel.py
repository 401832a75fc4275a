"""The general path of per-channel entries (prelu: one weight per channel along axis 1).

The kernels take the weight as float64 values rounded to the input's type
and the array as (outer, channels, inner) blocks.  An (N, C) input has one
channel per element of a row: rather than one short kernel call per row,
runs of :data:`ROW_RUN` // C rows share a tiled weight (:func:`parts`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _dispatch, _half
from .._codegen.dialect import CHANNEL_ROW_RUN as ROW_RUN
from ..table import Activation
from .buffers import empty_result, plan, result
from .checks import as_input, check_out, check_shapes
from .handlers import handler_for


def geometry(a: np.ndarray, weight: Any, argname: str):
    """(weight as C doubles, outer, C, inner) for a per-channel parameter."""
    w = np.asarray(weight)
    if (w.dtype.kind not in "fiu" or w.dtype.kind == "b") and not _half.is_half(w.dtype):
        raise TypeError(f"{argname} must be a real array, got dtype {w.dtype}")
    if w.ndim > 1:
        raise ValueError(f"{argname} must be 0-d or 1-d, got shape {w.shape}")
    channels = a.shape[1] if a.ndim >= 2 else 1
    if w.size not in (1, channels):
        raise ValueError(
            f"{argname} has {w.size} elements; expected 1 or {channels} "
            f"(the size of axis 1 of the input)"
        )
    # rounded to the type the kernels compute in (float32 for 16-bit arrays)
    w64 = np.ascontiguousarray(
        w.astype(_half.compute_dtype(a.dtype)).astype(np.float64).reshape(-1)
    )
    if w.size == 1:
        return w64, 1, 1, a.size
    inner = int(np.prod(a.shape[2:], dtype=np.int64))
    return w64, a.shape[0], channels, inner


def parts(n: int, w64: np.ndarray, outer: int, channels: int, inner: int):
    """[(lo, hi, weight, outer, C, inner, fold)]: kernel calls covering elements lo:hi.

    ``fold`` copies of the weight were tiled; a part's parameter gradient is
    summed over them.  The split depends on the shape only (deterministic).
    """
    if inner != 1 or outer < 2 or channels >= ROW_RUN:
        return [(0, n, w64, outer, channels, inner, 1)]
    run = min(outer, ROW_RUN // channels)
    bulk = (outer // run) * run
    out = [(0, bulk * channels, np.tile(w64, run), bulk // run, run * channels, 1, run)]
    if bulk < outer:
        out.append((bulk * channels, n, w64, outer - bulk, channels, 1, 1))
    return out


def forward(entry: Activation, x: Any, weight: Any, out: Any):
    """``entry``'s forward on ``x`` with the per-channel ``weight`` (into ``out``)."""
    if type(x) is not np.ndarray and (h := handler_for(x)) is not None:
        return h.channel_forward(entry, x, weight, out)
    a = as_input(x, "x")
    w64, outer, channels, inner = geometry(a, weight, entry.channel_param)
    if out is not None:
        check_out(out, a.shape, a.dtype, x)
    if a.size == 0:
        return empty_result(a, out)
    backend, nthreads = _dispatch.choose(entry, "forward", a.dtype, a.size)
    (src,), target, copy_to = plan([a], out, c_only=True)
    flat_src, flat_out = src.reshape(-1), target.reshape(-1)
    with _dispatch.running(nthreads) as nthreads:
        for lo, hi, w, o, c, i, _ in parts(a.size, w64, outer, channels, inner):
            backend.channel_forward(entry, flat_src[lo:hi], flat_out[lo:hi], w, o, c, i, nthreads)
    return result(x, target, out, copy_to)


def backward(entry: Activation, grad_output: Any, saved: Any, weight: Any, out: Any):
    """(gradient of the input, gradient of ``weight``), the first into ``out`` when given."""
    if type(grad_output) is not np.ndarray and (h := handler_for(grad_output)) is not None:
        return h.channel_backward(entry, grad_output, saved, weight, out)
    g = as_input(grad_output, "grad_output")
    s = check_shapes(g, as_input(saved, "saved"))
    w64, outer, channels, inner = geometry(g, weight, entry.channel_param)
    if out is not None:
        check_out(out, g.shape, g.dtype, grad_output, "grad_output")
    wshape = np.shape(weight)
    if g.size == 0:
        return empty_result(g, out), np.zeros(wshape, g.dtype)
    backend, nthreads = _dispatch.choose(entry, "backward", g.dtype, g.size)
    (gs, ss), target, copy_to = plan([g, s], out, c_only=True)
    fg, fs, fo = gs.reshape(-1), ss.reshape(-1), target.reshape(-1)
    gw = np.zeros(w64.size)
    with _dispatch.running(nthreads) as nthreads:
        for lo, hi, w, o, c, i, fold in parts(g.size, w64, outer, channels, inner):
            part = backend.channel_backward(
                entry, fg[lo:hi], fs[lo:hi], fo[lo:hi], w, o, c, i, nthreads
            )
            gw += np.asarray(part).reshape(fold, -1).sum(axis=0)
    gx = result(grad_output, target, out, copy_to)
    return gx, _half.round_to(gw, g.dtype).reshape(wshape)
