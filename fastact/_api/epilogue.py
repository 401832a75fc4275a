"""The bias epilogue: ``act(x + bias)`` and its gradient with the bias's, in one pass.

``fastact.NAME(x, bias=b)`` with ``b`` a 1-d array of ``x.shape[bias_axis]``
elements (a dense layer's features with ``bias_axis=-1``, a convolution's
channels with ``bias_axis=1``) runs here.  The backends see the array as
C-contiguous ``(outer, C, inner)`` blocks: they add the bias tile by tile and
run the entry's kernel on each tile while it is in cache, and the backward
sums each tile's gradient, still in cache, into the float64 partial sums of
its block (a few float32 terms at a time first: rows of a dense layer in
groups of 16, a channel's run in 16 lanes of 16 terms; never fewer correct
bits than NumPy's float32 pairwise sum).  The blocks (:func:`blocks`) depend
on the shape only, and the backends combine their sums in block order into
the first row of the partial sums: the bias gradient has the same bits for
any thread count, on the Cython and Numba backends.

prelu adds the bias in a pass of its own before its per-channel kernels (its
backward forms ``saved + bias`` in a temporary); the rowwise entries
(softmax, log_softmax) take no bias.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from .. import _dispatch, _half
from .._backends import BiasCall
from ..table import Activation
from . import channel
from .buffers import empty_result, plan, result
from .checks import as_input, check_out, check_params, check_seed, check_shapes
from .handlers import handler_for

# Partial sums of a bias gradient: at most BLOCKS blocks of at least
# BLOCK_MIN elements (a call's only block may be smaller), and of at least
# PER_CHANNEL elements per channel, so that the (blocks, C) float64 partial
# sums stay under 1/32 of the array's float32 bytes.
BLOCKS = 64
BLOCK_MIN = 4096
PER_CHANNEL = 64


def blocks(n: int, channels: int) -> int:
    """How many blocks the bias gradient of ``n`` elements and ``channels`` is summed in."""
    return max(1, min(BLOCKS, n // BLOCK_MIN, n // (PER_CHANNEL * channels)))


def _refuse_handler(fname: str) -> TypeError:
    return TypeError(f"{fname}: bias= takes NumPy arrays; add the bias first (x + bias)")


def check_bias(
    bias: Any, bias_axis: Any, a: np.ndarray, argname: str
) -> tuple[np.ndarray, int, int, int]:
    """(bias as a C-contiguous array of ``a``'s dtype, axis, C, inner): a bias along ``bias_axis``.

    ``axis`` is ``bias_axis`` counted from the front; the array is then
    (outer, C, inner) blocks.
    """
    if isinstance(bias_axis, (bool, np.bool_)) or not isinstance(bias_axis, numbers.Integral):
        raise TypeError(f"bias_axis must be an integer, got {type(bias_axis).__name__}")
    if a.ndim == 0:
        raise ValueError(f"{argname} is 0-d: a bias runs along an axis of {argname}")
    if not -a.ndim <= bias_axis < a.ndim:
        raise ValueError(
            f"bias_axis {bias_axis} is out of bounds for {argname} of dimension {a.ndim}"
        )
    axis = int(bias_axis) % a.ndim
    channels = a.shape[axis]
    if isinstance(bias, np.ndarray):
        dt = bias.dtype
        if (dt.kind != "f" and not _half.is_half(dt)) or dt.newbyteorder("=") != a.dtype:
            raise TypeError(
                f"bias has dtype {dt}, expected {a.dtype} (the dtype of {argname}): "
                f"convert with bias.astype(np.{a.dtype.name})"
            )
        b = bias
    else:
        b = np.asarray(bias)
        if b.dtype.kind not in "fiu":
            raise TypeError(f"bias must be a real array, got dtype {b.dtype}")
    if b.ndim != 1:
        raise ValueError(
            f"bias must be 1-d with {channels} elements ({argname}.shape[{bias_axis}]), "
            f"got shape {b.shape}"
        )
    if b.size != channels:
        raise ValueError(
            f"bias has {b.size} elements, expected {channels} ({argname}.shape[{bias_axis}])"
        )
    b = np.ascontiguousarray(b, dtype=a.dtype)
    inner = math.prod(a.shape[axis + 1 :])
    return b, axis, max(channels, 1), max(inner, 1)


def _private(b: np.ndarray, buffers: list[np.ndarray]) -> np.ndarray:
    """``b``, or a copy when it shares memory with a buffer the kernel writes."""
    return b.copy() if any(np.may_share_memory(b, o) for o in buffers) else b


def forward(
    entry: Activation,
    x: Any,
    bias: Any,
    bias_axis: Any,
    out: Any,
    params: tuple,
    training=False,
    seed=None,
):
    """``entry``'s forward of ``x + bias`` (into ``out`` when given), in one pass."""
    if type(x) is not np.ndarray and handler_for(x) is not None:
        raise _refuse_handler(entry.name)
    a = as_input(x, "x")
    b, axis, channels, inner = check_bias(bias, bias_axis, a, "x")
    floats = check_params(entry, params)
    seed = check_seed(seed, training, False, entry.name) if entry.has_training_mode else 0
    if out is not None:
        check_out(out, a.shape, a.dtype, x)
    if a.size == 0:
        return empty_result(a, out)
    backend, nthreads = _dispatch.choose(entry, "forward", a.dtype, a.size)
    (src,), target, copy_to = plan([a], out, c_only=True)
    b = _private(b, [target])
    with _dispatch.running(nthreads) as nthreads:
        call = BiasCall(channels, inner, floats, training, seed, nthreads)
        backend.bias_forward(entry, src, b, target, call)
    return result(x, target, out, copy_to)


def backward(
    entry: Activation,
    grad_output: Any,
    saved: Any,
    bias: Any,
    bias_axis: Any,
    out: Any,
    params: tuple,
    training=False,
    seed=None,
):
    """(gradient of the pre-bias input, gradient of ``bias``), the first into ``out``.

    ``saved`` is the pre-bias input where the entry saves its input, else the
    forward's output.
    """
    if type(grad_output) is not np.ndarray and handler_for(grad_output) is not None:
        raise _refuse_handler(f"{entry.name}_backward")
    g = as_input(grad_output, "grad_output")
    s = check_shapes(g, as_input(saved, "saved"))
    b, axis, channels, inner = check_bias(bias, bias_axis, g, "grad_output")
    floats = check_params(entry, params, backward=True)
    seed = check_seed(seed, training, True, entry.name) if entry.has_training_mode else 0
    if out is not None:
        check_out(out, g.shape, g.dtype, grad_output, "grad_output")
    if g.size == 0:
        return empty_result(g, out), np.zeros(b.size, g.dtype)
    backend, nthreads = _dispatch.choose(entry, "backward", g.dtype, g.size)
    (gs, ss), target, copy_to = plan([g, s], out, c_only=True)
    b = _private(b, [target])
    partial = np.empty((blocks(g.size, channels), channels))
    with _dispatch.running(nthreads) as nthreads:
        call = BiasCall(channels, inner, floats, training, seed, nthreads, entry.saves == "input")
        backend.bias_backward(entry, gs, ss, b, target, partial, call)
    gb = _half.round_to(partial[0], g.dtype)
    return result(grad_output, target, out, copy_to), gb


# --- per-channel entries (prelu): the bias in a pass of its own ------------------


def channel_forward(entry: Activation, x: Any, weight: Any, bias: Any, bias_axis: Any, out: Any):
    """prelu of ``x + bias``: the sum written into the result, then the kernel in place."""
    if type(x) is not np.ndarray and handler_for(x) is not None:
        raise _refuse_handler(entry.name)
    a = as_input(x, "x")
    b, axis, channels, inner = check_bias(bias, bias_axis, a, "x")
    channel.geometry(a, weight, entry.channel_param)
    if out is not None:
        check_out(out, a.shape, a.dtype, x)
    if a.size == 0:
        return empty_result(a, out)
    target = out if out is not None else np.empty(a.shape, a.dtype)
    np.add(a, _along(b, a.ndim, axis), out=target)
    return channel.forward(entry, target, weight, target)


def channel_backward(
    entry: Activation, grad_output: Any, saved: Any, weight: Any, bias: Any, bias_axis: Any, out
):
    """(gradient of the pre-bias input, of the weight, of ``bias``)."""
    if type(grad_output) is not np.ndarray and handler_for(grad_output) is not None:
        raise _refuse_handler(f"{entry.name}_backward")
    g = as_input(grad_output, "grad_output")
    s = check_shapes(g, as_input(saved, "saved"))
    b, axis, channels, inner = check_bias(bias, bias_axis, g, "grad_output")
    channel.geometry(g, weight, entry.channel_param)
    if out is not None:
        check_out(out, g.shape, g.dtype, grad_output, "grad_output")
    gi, gw = channel.backward(entry, g, s + _along(b, g.ndim, axis), weight, out)
    others = tuple(k for k in range(g.ndim) if k != axis)
    gb = np.sum(gi, axis=others, dtype=np.float64)
    return gi, gw, _half.round_to(gb, g.dtype)


def _along(b: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    """``b`` shaped to broadcast along ``axis`` of an ``ndim``-d array."""
    shape = [1] * ndim
    shape[axis] = -1
    return b.reshape(shape)
