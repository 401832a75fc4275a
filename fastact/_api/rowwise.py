"""The general path of rowwise entries (softmax, log_softmax: rows along ``axis``).

The kernels take C-contiguous (rows, rowlen) buffers; ``axis`` is moved last
and copied when it is not, and the result moved back.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _dispatch
from ..table import Activation
from .buffers import c_copy, empty_result, overlaps, result
from .checks import as_input, check_axis, check_out, check_shapes
from .handlers import handler_for


def _last(a: np.ndarray, axis: int) -> np.ndarray:
    """A view of ``a`` (0-d: of shape (1,)) with ``axis`` moved last (np.moveaxis,
    without its checks, which cost more than the kernel on small arrays)."""
    if a.ndim == 0:
        return a.reshape(1)
    if axis == a.ndim - 1:
        return a
    return a.transpose([*range(axis), *range(axis + 1, a.ndim), axis])


def _back(a: np.ndarray, axis: int) -> np.ndarray:
    """The inverse of :func:`_last` on an array of the same dimension."""
    if axis == a.ndim - 1:
        return a
    return a.transpose([*range(axis), a.ndim - 1, *range(axis, a.ndim - 1)])


def _rows(arrays: list[np.ndarray], out: np.ndarray | None, axis: int):
    """C-contiguous (rows, rowlen) buffers with ``axis`` last, and the write-back."""
    moved = [_last(a, axis) for a in arrays]
    shape = moved[0].shape
    rowlen = shape[-1]
    rows = moved[0].size // rowlen if rowlen else 0
    target = None
    if out is not None:
        om = _last(out, axis)
        if om.flags.c_contiguous and om.flags.aligned and om.dtype.isnative:
            if not overlaps(arrays, out):
                target = om
    bufs = [c_copy(m) for m in moved]
    direct = target is not None
    if target is None:
        target = np.empty(shape, bufs[0].dtype)
    return bufs, target, rows, rowlen, direct


def _finish(value: Any, target, out, direct: bool, axis: int, shape):
    if out is not None and not direct:
        _last(out, axis)[...] = target
    return result(value, _back(target, axis).reshape(shape), out, None)


def forward(entry: Activation, x: Any, axis: Any, out: Any):
    """``entry`` along ``axis`` of ``x`` (into ``out`` when given)."""
    if type(x) is not np.ndarray and (h := handler_for(x)) is not None:
        return h.rowwise_forward(entry, x, axis, out)
    a = as_input(x, "x")
    ax = check_axis(axis, a.ndim)
    if out is not None:
        check_out(out, a.shape, a.dtype, x)
    if a.size == 0:
        return empty_result(a, out)
    backend, nthreads = _dispatch.choose(entry, "forward", a.dtype, a.size)
    (buf,), target, rows, rowlen, direct = _rows([a], out, ax)
    with _dispatch.running(nthreads) as nthreads:
        backend.rowwise_forward(entry, buf, target, rows, rowlen, nthreads)
    return _finish(x, target, out, direct, ax, a.shape)


def backward(entry: Activation, grad_output: Any, saved: Any, axis: Any, out: Any):
    """``entry``'s gradient along ``axis`` (into ``out`` when given)."""
    if type(grad_output) is not np.ndarray and (h := handler_for(grad_output)) is not None:
        return h.rowwise_backward(entry, grad_output, saved, axis, out)
    g = as_input(grad_output, "grad_output")
    s = check_shapes(g, as_input(saved, "saved"))
    ax = check_axis(axis, g.ndim)
    if out is not None:
        check_out(out, g.shape, g.dtype, grad_output, "grad_output")
    if g.size == 0:
        return empty_result(g, out)
    backend, nthreads = _dispatch.choose(entry, "backward", g.dtype, g.size)
    (gb, sb), target, rows, rowlen, direct = _rows([g, s], out, ax)
    with _dispatch.running(nthreads) as nthreads:
        backend.rowwise_backward(entry, gb, sb, target, rows, rowlen, nthreads)
    return _finish(grad_output, target, out, direct, ax, g.shape)
