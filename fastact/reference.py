"""The NumPy reference: every activation written plainly, in float64.

This is the oracle of the test-suite and the ``"numpy"`` backend (the
fallback when no compiled backend can take a call).  It is written
independently of the formula dialect of :mod:`fastact.table`, so that a
mistake in a table formula shows up as a disagreement with this module.

Each function takes float64-convertible arrays and returns float64 arrays;
``forward(name, ...)`` and ``backward(name, ...)`` look them up by name.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_FORWARD: dict[str, Callable] = {}
_BACKWARD: dict[str, Callable] = {}


def _forward(fn: Callable) -> Callable:
    _FORWARD[fn.__name__] = fn
    return fn


def _backward(fn: Callable) -> Callable:
    _BACKWARD[fn.__name__.removesuffix("_backward")] = fn
    return fn


def _nan_from(saved: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """Gradients of piecewise activations are NaN where the saved value is NaN."""
    return np.where(np.isnan(saved), np.nan, grad)


# --- random slopes of rrelu: splitmix64 keyed by (seed, flat index) --------

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix64(z: np.ndarray) -> np.ndarray:
    z = z + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def uniform(seed: int, n: int) -> np.ndarray:
    """The counter-based U[0, 1) numbers of elements 0..n-1 for ``seed``."""
    with np.errstate(over="ignore"):
        key = _mix64(np.array([seed], dtype=np.uint64))
        h = _mix64(key + np.arange(n, dtype=np.uint64))
    return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53


def rrelu_slopes(shape, seed: int, lower: float, upper: float, dtype=np.float64) -> np.ndarray:
    """The slope rrelu gives each element (C order) in training mode."""
    n = int(np.prod(shape, dtype=np.int64))
    lo, hi = float(np.asarray(lower, dtype)), float(np.asarray(upper, dtype))
    return (lo + (hi - lo) * uniform(seed, n)).astype(dtype).reshape(shape)


# --- the activations ----------------------------------------------------


@_forward
def sigmoid(x):
    x = np.asarray(x, np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@_backward
def sigmoid_backward(g, y):
    y = np.asarray(y, np.float64)
    return np.asarray(g, np.float64) * y * (1.0 - y)


@_forward
def tanh(x):
    return np.tanh(np.asarray(x, np.float64))


@_backward
def tanh_backward(g, y):
    y = np.asarray(y, np.float64)
    return np.asarray(g, np.float64) * ((1.0 - y) * (1.0 + y))


@_forward
def relu(x):
    x = np.asarray(x, np.float64)
    return np.where(np.isnan(x), x, np.maximum(x, 0.0))


@_backward
def relu_backward(g, y):
    y = np.asarray(y, np.float64)
    return _nan_from(y, np.where(y > 0, np.asarray(g, np.float64), 0.0))


@_forward
def leaky_relu(x, negative_slope=0.01):
    x = np.asarray(x, np.float64)
    return np.where(x > 0, x, x * negative_slope)


@_backward
def leaky_relu_backward(g, y, negative_slope=0.01):
    y, g = np.asarray(y, np.float64), np.asarray(g, np.float64)
    return _nan_from(y, np.where(y > 0, g, g * negative_slope))


def _channel_shape(x: np.ndarray, weight: np.ndarray) -> tuple[int, ...]:
    """Shape that broadcasts a per-channel weight over axis 1 of x."""
    if weight.size == 1 or x.ndim < 2:
        return ()
    return (1, weight.size) + (1,) * (x.ndim - 2)


@_forward
def prelu(x, weight=0.25):
    x = np.asarray(x, np.float64)
    w = np.asarray(weight, np.float64).reshape(-1)
    w = w.reshape(_channel_shape(x, w)) if w.size > 1 else w.reshape(())
    return np.where(x > 0, x, x * w)


@_backward
def prelu_backward(g, x, weight=0.25):
    """Returns (grad_input, grad_weight); grad_weight has weight's size."""
    x, g = np.asarray(x, np.float64), np.asarray(g, np.float64)
    w = np.asarray(weight, np.float64).reshape(-1)
    wb = w.reshape(_channel_shape(x, w)) if w.size > 1 else w.reshape(())
    gx = _nan_from(x, np.where(x > 0, g, g * wb))
    contrib = np.where(x > 0, 0.0, x * g)
    if w.size == 1:
        gw = np.array([contrib.sum()])
    else:
        axes = tuple(a for a in range(x.ndim) if a != 1)
        gw = contrib.sum(axis=axes)
    return gx, gw


@_forward
def rrelu(x, lower=1.0 / 8.0, upper=1.0 / 3.0, training=False, seed=0, dtype=np.float64):
    x = np.asarray(x, np.float64)
    if training:
        slope = rrelu_slopes(x.shape, seed, lower, upper, dtype).astype(np.float64)
    else:
        slope = (lower + upper) / 2.0
    return np.where(x > 0, x, x * slope)


@_backward
def rrelu_backward(
    g, y, lower=1.0 / 8.0, upper=1.0 / 3.0, training=False, seed=0, dtype=np.float64
):
    y, g = np.asarray(y, np.float64), np.asarray(g, np.float64)
    if training:
        slope = rrelu_slopes(y.shape, seed, lower, upper, dtype).astype(np.float64)
    else:
        slope = (lower + upper) / 2.0
    return _nan_from(y, np.where(y > 0, g, g * slope))


def forward(name: str, x, **params) -> np.ndarray:
    """The float64 reference forward of activation ``name``."""
    with np.errstate(all="ignore"):
        return _FORWARD[name](x, **params)


def backward(name: str, grad_output, saved, **params):
    """The float64 reference gradient of activation ``name``."""
    with np.errstate(all="ignore"):
        return _BACKWARD[name](grad_output, saved, **params)


def names() -> list[str]:
    return sorted(_FORWARD)
