"""fastact on dask arrays: lazy, blockwise kernels for arrays beyond one machine.

You rarely import this module: every ``fastact.NAME`` and
``fastact.NAME_backward`` given a :class:`dask.array.Array` comes here (the
module registers itself as the handler of dask arrays, imported on the first
such call) and
returns a lazy dask array whose blocks are computed by the fastact kernels
(on the workers of a ``distributed`` cluster when one is active)::

    import dask.array as da, fastact
    x = da.random.standard_normal((100_000, 1_000), chunks=(10_000, 1_000))
    y = fastact.gelu(x)                      # lazy
    g = fastact.gelu_backward(da.ones_like(x), x)
    y.sum().compute()

Rules:

* ``out=`` is refused (dask arrays are immutable): use the returned array.
* The backward takes two arrays of the same shape; a NumPy ``saved`` is
  chunked like ``grad_output``, two dask arrays are aligned to common chunks.
* Integer arrays are computed in float64, other dtypes refused, as for NumPy.
* Row-wise activations (softmax, log_softmax) need the whole ``axis`` in one
  block: that axis is rechunked to a single chunk (:func:`rowwise_forward`).
* rrelu in training mode gives the same slopes as the unchunked NumPy call
  with the same seed: slopes are keyed by (seed, global C-order flat index).
  The kernels take a seed and count indices from 0, so each block is cut into
  runs that are contiguous in the global C order, and each run gets the seed
  whose counter stream starts at the run's global offset (the key mixer is a
  bijection, so that seed exists and is computed exactly, see
  :func:`offset_seed`).  A block whose trailing axes are whole is a single
  run; chunking the last axis makes one kernel call per row of a block, so
  keep trailing axes whole for speed.  Blocks of unknown size are refused.
* prelu: the per-channel weight (axis 1) is sliced per block; the backward
  (:func:`prelu_backward`, or :func:`channel_backward` for any per-channel
  entry) returns ``(grad_input, grad_weight)``, both lazy, ``grad_weight``
  summed over blocks by a dask reduction.

Block functions are module-level so that worker processes can unpickle them.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from .. import _api
from .._api.channel import geometry as channel_geometry
from .._math.rng import MASK, mix64, unmix64
from ..table import Activation
from . import require

da = require("dask.array", "fastact.dask", "dask", 'pip install "fastact[dask]"')

__all__ = [
    "backward",
    "channel_backward",
    "channel_forward",
    "forward",
    "offset_seed",
    "prelu_backward",
    "rowwise_backward",
    "rowwise_forward",
]

# --- counter-based seeds for a block that starts at a global offset ---------


def offset_seed(seed: int, offset: int) -> int:
    """The seed whose element ``i`` gets the random number of element ``offset + i`` of ``seed``.

    The kernels draw element i's number from its counter ``mix64(seed) + i``
    alone (:mod:`fastact._math.rng`); with ``s = mix64^-1(mix64(seed) + offset)`` the
    counter of element i of ``s`` is ``mix64(seed) + offset + i``.
    """
    if offset == 0:
        return seed
    return unmix64((mix64(seed) + offset) & MASK)


# --- checks ------------------------------------------------------------------


def _refuse_out(out: Any) -> None:
    if out is not None:
        raise TypeError(
            "out= is not supported with dask arrays (they are immutable); "
            "use the returned lazy array: y = fastact.NAME(x)"
        )


def _as_float(x: Any, argname: str):
    """``x`` as a float32/float64 dask array, with NumPy's dtype rules."""
    dt = _api.as_input(np.empty(0, x.dtype), argname).dtype
    if x.dtype != dt:
        x = x.astype(dt)
    return x


def _known(x, what: str) -> None:
    if any(np.isnan(c) for chunks in x.chunks for c in chunks):
        raise ValueError(f"{what} needs known chunk sizes; call x.compute_chunk_sizes() first")


def _meta(ndim: int, dtype) -> np.ndarray:
    return np.empty((0,) * ndim, dtype)


# --- block functions (module level: pickled to the workers) ---------------


def _runs(shape: tuple, location: list, full: tuple):
    """(run length, global C-order offset of each run) of a block.

    A run is a maximal piece of the block that is contiguous in the global C
    order: the block's trailing axes that span the whole array, plus the last
    axis that does not; the block, C-contiguous, is then (runs, length).
    """
    ndim = len(shape)
    if ndim == 0:
        return 1, [0]
    k = ndim - 1
    while k > 0 and shape[k] == full[k]:
        k -= 1
    # axes k+1.. are whole; axis k (or 0) is partial or whole
    strides = [1] * ndim
    for d in range(ndim - 2, -1, -1):
        strides[d] = strides[d + 1] * int(full[d + 1])
    base = sum(int(location[d][0]) * strides[d] for d in range(ndim))
    lead = shape[:k]
    offsets = []
    for idx in np.ndindex(*lead):
        offsets.append(base + sum(int(i) * strides[d] for d, i in enumerate(idx)))
    length = int(np.prod(shape[k:], dtype=np.int64))
    return length, offsets


def _training(run, arrays: list[np.ndarray], dtype, seed: int, block_info) -> np.ndarray:
    """Call ``run(inputs, out, seed)`` on each globally contiguous run of a block."""
    info = block_info[0]
    shape = arrays[0].shape
    out = np.empty(shape, dtype)
    if out.size == 0:
        return out
    length, offsets = _runs(shape, info["array-location"], info["shape"])
    flat = [np.ascontiguousarray(a).reshape(-1, length) for a in arrays]
    out2 = out.reshape(-1, length)
    for r, offset in enumerate(offsets):
        run([a[r] for a in flat], out2[r], offset_seed(seed, offset))
    return out


def _forward_block(x, entry, params, training, seed, block_info=None):
    if not training:
        return _api.forward(entry, x, None, params, False, seed)

    def run(inputs, out, s):
        _api.forward(entry, inputs[0], out, params, True, s)

    return _training(run, [x], x.dtype, seed, block_info)


def _backward_block(g, s, entry, params, training, seed, block_info=None):
    if not training:
        return _api.backward(entry, g, s, None, params, False, seed)

    def run(inputs, out, key):
        _api.backward(entry, inputs[0], inputs[1], out, params, True, key)

    return _training(run, [g, s], g.dtype, seed, block_info)


def _rowwise_forward_block(x, entry, axis):
    return _api.rowwise_forward(entry, x, axis, None)


def _rowwise_backward_block(g, s, entry, axis):
    return _api.rowwise_backward(entry, g, s, axis, None)


def _channel_slice(weight: np.ndarray, per_channel: bool, block_info) -> np.ndarray:
    if not per_channel:
        return weight
    start, stop = block_info[0]["array-location"][1]
    return weight[start:stop]


def _channel_forward_block(x, entry, weight, per_channel, block_info=None):
    w = _channel_slice(weight, per_channel, block_info)
    return _api.channel_forward(entry, x, w, None)


def _channel_grad_input_block(g, s, entry, weight, per_channel, block_info=None):
    w = _channel_slice(weight, per_channel, block_info)
    return _api.channel_backward(entry, g, s, w, None)[0]


def _channel_grad_weight_block(g, s, entry, weight, per_channel, block_info=None):
    w = _channel_slice(weight, per_channel, block_info)
    _, gw = _api.channel_backward(entry, g, s, w, None)
    shape = [1] * g.ndim
    if per_channel:
        shape[1] = gw.size
    return np.asarray(gw).reshape(shape)


# --- the array handler of fastact._api (registered at the end) -------------


def _mode(entry: Activation, training, seed, backward: bool, a) -> tuple[bool, int]:
    """(training, seed) checked; training mode needs ``a``'s chunks known."""
    if not entry.has_training_mode:
        return False, 0
    seed = _api.check_seed(seed, training, backward, entry.name)
    if training:
        _known(a, f"{entry.name}{'_backward' if backward else ''} in training mode")
    return bool(training), seed


def forward(entry: Activation, x, out, params: tuple, training: bool = False, seed=None):
    """Lazy ``fastact.NAME(x)`` for a dask array ``x``."""
    _refuse_out(out)
    x = _as_float(x, "x")
    _api.check_params(entry, params)
    training, seed = _mode(entry, training, seed, False, x)
    return da.map_blocks(
        _forward_block,
        x,
        entry,
        tuple(params),
        training,
        seed,
        dtype=x.dtype,
        meta=_meta(x.ndim, x.dtype),
        token=f"fastact-{entry.name}",
    )


def _pair(grad_output, saved):
    g = _as_float(grad_output, "grad_output")
    if not isinstance(saved, da.Array):
        s = np.asarray(saved)
        if s.shape != g.shape:
            raise ValueError(f"grad_output has shape {g.shape} but saved has shape {s.shape}")
        s = da.from_array(s, chunks=g.chunks)
    else:
        s = saved
        if s.shape != g.shape:
            raise ValueError(f"grad_output has shape {g.shape} but saved has shape {s.shape}")
    s = _as_float(s, "saved")
    if s.dtype != g.dtype:
        s = s.astype(g.dtype)
    if s.chunks != g.chunks:
        s = s.rechunk(g.chunks)
    return g, s


def backward(
    entry: Activation,
    grad_output,
    saved,
    out,
    params: tuple,
    training: bool = False,
    seed=None,
):
    """Lazy ``fastact.NAME_backward(grad_output, saved)`` for dask arrays."""
    _refuse_out(out)
    g, s = _pair(grad_output, saved)
    _api.check_params(entry, params, backward=True)
    training, seed = _mode(entry, training, seed, True, g)
    return da.map_blocks(
        _backward_block,
        g,
        s,
        entry,
        tuple(params),
        training,
        seed,
        dtype=g.dtype,
        meta=_meta(g.ndim, g.dtype),
        token=f"fastact-{entry.name}-backward",
    )


def _whole_axis(x, axis: int):
    """``x`` with ``axis`` in a single chunk (each block then holds whole rows)."""
    if x.ndim and len(x.chunks[axis]) > 1:
        x = x.rechunk({axis: -1})
    return x


def rowwise_forward(entry: Activation, x, axis, out):
    """Lazy ``fastact.softmax(x, axis)`` (any row-wise entry) for a dask array ``x``.

    The ``axis`` is rechunked to a single chunk, so that each block holds whole rows.
    """
    _refuse_out(out)
    x = _as_float(x, "x")
    ax = _api.check_axis(axis, x.ndim)
    x = _whole_axis(x, ax)
    return da.map_blocks(
        _rowwise_forward_block,
        x,
        entry,
        ax,
        dtype=x.dtype,
        meta=_meta(x.ndim, x.dtype),
        token=f"fastact-{entry.name}",
    )


def rowwise_backward(entry: Activation, grad_output, saved, axis, out):
    """Lazy ``fastact.softmax_backward(grad_output, saved, axis)`` for dask arrays."""
    _refuse_out(out)
    g, s = _pair(grad_output, saved)
    ax = _api.check_axis(axis, g.ndim)
    g = _whole_axis(g, ax)
    if s.chunks != g.chunks:
        s = s.rechunk(g.chunks)
    return da.map_blocks(
        _rowwise_backward_block,
        g,
        s,
        entry,
        ax,
        dtype=g.dtype,
        meta=_meta(g.ndim, g.dtype),
        token=f"fastact-{entry.name}-backward",
    )


def _channel_weight(entry: Activation, x, weight) -> tuple[np.ndarray, bool]:
    """The weight as NumPy (validated against x's shape) and whether it is per channel."""
    if isinstance(weight, da.Array):
        weight = weight.compute()
    _known(x, f"{entry.name} on a dask array")
    stand_in = np.broadcast_to(np.zeros((), x.dtype), x.shape)
    channel_geometry(stand_in, weight, entry.channel_param)
    w = np.asarray(weight)
    return w, w.size != 1


def channel_forward(entry: Activation, x, weight, out):
    """Lazy ``fastact.prelu(x, weight)`` for a dask array ``x`` (weight along axis 1)."""
    _refuse_out(out)
    x = _as_float(x, "x")
    w, per_channel = _channel_weight(entry, x, weight)
    return da.map_blocks(
        _channel_forward_block,
        x,
        entry,
        w,
        per_channel,
        dtype=x.dtype,
        meta=_meta(x.ndim, x.dtype),
        token=f"fastact-{entry.name}",
    )


def channel_backward(entry: Activation, grad_output, saved, weight, out):
    """Lazy ``(grad_input, grad_weight)`` of a per-channel entry (prelu) on dask arrays.

    ``grad_weight`` has the shape of ``weight``: per-block sums reduced by dask.
    Each block runs the backward kernel twice (once per output).
    """
    _refuse_out(out)
    g, s = _pair(grad_output, saved)
    w, per_channel = _channel_weight(entry, g, weight)
    gx = da.map_blocks(
        _channel_grad_input_block,
        g,
        s,
        entry,
        w,
        per_channel,
        dtype=g.dtype,
        meta=_meta(g.ndim, g.dtype),
        token=f"fastact-{entry.name}-backward",
    )
    chunks = tuple(c if (d == 1 and per_channel) else (1,) * len(c) for d, c in enumerate(g.chunks))
    partial = da.map_blocks(
        _channel_grad_weight_block,
        g,
        s,
        entry,
        w,
        per_channel,
        chunks=chunks,
        dtype=g.dtype,
        meta=_meta(g.ndim, g.dtype),
        token=f"fastact-{entry.name}-grad-{entry.channel_param}",
    )
    axes = tuple(d for d in range(g.ndim) if not (d == 1 and per_channel))
    gw = partial.sum(axis=axes, dtype=np.float64).astype(g.dtype).reshape(w.shape)
    return gx, gw


def prelu_backward(grad_output, saved, weight):
    """Lazy ``(grad_input, grad_weight)`` of prelu for dask arrays (``saved`` is the input)."""
    import fastact

    return channel_backward(fastact.activation("prelu"), grad_output, saved, weight, None)


# fastact.NAME given a dask array comes here (fastact._api.handlers).
_api.register_handler("dask", sys.modules[__name__])
