"""The NumPy backend: the float64 reference, rounded to the array's dtype.

Slow but always available; the oracle of the tests and the fallback.
"""

from __future__ import annotations

import numpy as np

from ... import reference
from ...table import Activation


def _kwargs(entry: Activation, params: tuple, dtype) -> dict:
    """Keyword arguments of the reference: options back to their strings, and
    numbers rounded to the array's dtype, as the compiled kernels use them."""
    kw = {}
    with np.errstate(over="ignore"):
        for prm, value in zip(entry.scalar_params, params):
            kw[prm.name] = prm.choices[int(value)] if prm.choices else float(dtype.type(value))
    return kw


class NumpyBackend:
    name = "numpy"

    def forward(self, entry: Activation, x, out, params, training, seed, nthreads):
        kw = _kwargs(entry, params, x.dtype)
        if entry.has_training_mode:
            kw.update(training=training, seed=seed, dtype=x.dtype)
        y = reference.forward(entry.name, x, **kw)
        with np.errstate(over="ignore"):  # what float32 cannot hold rounds to inf
            out[...] = y

    def backward(self, entry: Activation, g, s, out, params, training, seed, nthreads):
        kw = _kwargs(entry, params, g.dtype)
        if entry.has_training_mode:
            kw.update(training=training, seed=seed, dtype=g.dtype)
        gx = reference.backward(entry.name, g, s, **kw)
        with np.errstate(over="ignore"):
            out[...] = gx

    def rowwise_forward(self, entry, x, out, rows, rowlen, nthreads):
        out[...] = reference.forward(entry.name, x.reshape(rows, rowlen), axis=-1).reshape(
            out.shape
        )

    def rowwise_backward(self, entry, g, s, out, rows, rowlen, nthreads):
        shape = (rows, rowlen)
        gx = reference.backward(entry.name, g.reshape(shape), s.reshape(shape), axis=-1)
        out[...] = gx.reshape(out.shape)

    def channel_forward(self, entry, x, out, weight, outer, channels, inner, nthreads):
        w = weight.astype(x.dtype).astype(np.float64).reshape(1, channels, 1)
        x3 = x.reshape(outer, channels, inner)
        y = reference.forward(entry.name, x3, weight=w)
        with np.errstate(over="ignore"):
            out.reshape(outer, channels, inner)[...] = y

    def channel_backward(self, entry, g, s, out, weight, outer, channels, inner, nthreads):
        w = weight.astype(g.dtype).astype(np.float64).reshape(channels)
        shape = (outer, channels, inner)
        gx, gw = reference.backward(entry.name, g.reshape(shape), s.reshape(shape), weight=w)
        with np.errstate(over="ignore"):
            out.reshape(shape)[...] = gx
        return gw

    # -- bias epilogues (fastact._api.epilogue) ---------------------------------

    def bias_forward(self, entry, x, bias, out, call):
        z = add_bias(x, bias, call.channels, call.inner)
        self.forward(entry, z, out, call.params, call.training, call.seed, call.nthreads)

    def bias_backward(self, entry, g, s, bias, out, partial, call):
        z = add_bias(s, bias, call.channels, call.inner) if call.recompute else s
        self.backward(entry, g, z, out, call.params, call.training, call.seed, call.nthreads)
        partial[0] = bias_sum(out, call.channels, call.inner)


def add_bias(x: np.ndarray, bias: np.ndarray, channels: int, inner: int) -> np.ndarray:
    """``x + bias`` in ``x``'s dtype, ``bias`` along axis 1 of an (outer, C, inner) view."""
    x3 = x.reshape(-1, channels, inner)
    return (x3 + bias.reshape(1, channels, 1)).reshape(x.shape)


def bias_sum(gi: np.ndarray, channels: int, inner: int) -> np.ndarray:
    """The bias gradient: ``gi`` summed in float64 over all but axis 1 of (outer, C, inner)."""
    return np.sum(gi.reshape(-1, channels, inner), axis=(0, 2), dtype=np.float64)


BACKEND = NumpyBackend()
