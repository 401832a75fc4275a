"""Peers on the same arrays: plain NumPy and, when importable, PyTorch.

Same parameters as ``kernels.Kernels`` (without the backend), so a dashboard
graph of fastact sits beside the same cell of its peers.

NumPy: the direct expression a NumPy user writes, writing ``out=`` where a
ufunc allows it (so ``forward_inplace`` passes ``out=x``); activations with
no plain NumPy form (gelu needs erf) or whose table parameters differ from
the formula's are skipped.  PyTorch: ``torch.nn.functional.NAME`` on
``torch.from_numpy`` of the same array (a new tensor, as PyTorch users call
it); ``forward_inplace`` uses ``inplace=True`` or ``torch.NAME_``; backward is
``torch.autograd.grad`` through a retained graph (PyTorch's own backward
kernels, plus its autograd dispatch).  Both use their default threads.
"""

from __future__ import annotations

import functools
import inspect

import numpy as np

from .common import (
    ACTIVATIONS,
    DTYPES,
    PASSES,
    SIZES,
    TIMER,
    data,
    example_params,
    fresh_process,
    is_rowwise,
    parse,
    shape_for,
    tune,
    weight,
)

# --- NumPy formulas ----------------------------------------------------------
# forward(x, out, **params) writes out (which may be x) and returns it;
# backward(g, x, y, out, **params) writes dL/dx into out (never g) and returns
# it, or (grad_input, grad_param) for a per-channel parameter.

NUMPY_FORWARD: dict = {}
NUMPY_BACKWARD: dict = {}


def _fwd(fn):
    NUMPY_FORWARD[fn.__name__] = fn
    return fn


def _bwd(fn):
    NUMPY_BACKWARD[fn.__name__.removesuffix("_backward")] = fn
    return fn


def _scale_negative(x, out, slope):
    """out = x where x > 0, slope * x elsewhere (slope: scalar or broadcastable)."""
    if out is not x:
        np.copyto(out, x)
    return np.multiply(out, slope, out=out, where=out <= 0)


def _grad_scale_negative(g, s, out, slope):
    np.copyto(out, g)
    return np.multiply(out, slope, out=out, where=s <= 0)


@_fwd
def sigmoid(x, out):
    np.negative(x, out=out)
    np.exp(out, out=out)
    out += 1
    return np.reciprocal(out, out=out)


@_bwd
def sigmoid_backward(g, x, y, out):
    np.subtract(1, y, out=out)
    out *= y
    out *= g
    return out


@_fwd
def tanh(x, out):
    return np.tanh(x, out=out)


@_bwd
def tanh_backward(g, x, y, out):
    np.multiply(y, y, out=out)
    np.subtract(1, out, out=out)
    out *= g
    return out


@_fwd
def relu(x, out):
    return np.maximum(x, 0, out=out)


@_bwd
def relu_backward(g, x, y, out):
    return np.multiply(g, y > 0, out=out)


@_fwd
def leaky_relu(x, out, negative_slope):
    return _scale_negative(x, out, negative_slope)


@_bwd
def leaky_relu_backward(g, x, y, out, negative_slope):
    return _grad_scale_negative(g, x, out, negative_slope)


@_fwd
def prelu(x, out, weight):
    return _scale_negative(x, out, weight)


@_bwd
def prelu_backward(g, x, y, out, weight):
    _grad_scale_negative(g, x, out, weight)
    contrib = np.where(x > 0, 0, x * g)
    axes = tuple(a for a in range(x.ndim) if a != 1) if np.ndim(weight) and x.ndim > 1 else None
    return out, contrib.sum(axis=axes)


@_fwd
def rrelu(x, out, lower, upper):
    return _scale_negative(x, out, (lower + upper) / 2)


@_bwd
def rrelu_backward(g, x, y, out, lower, upper):
    return _grad_scale_negative(g, x, out, (lower + upper) / 2)


@_fwd
def elu(x, out, alpha):
    t = np.expm1(np.minimum(x, 0))
    t *= alpha
    np.maximum(x, 0, out=out)
    out += t
    return out


@_bwd
def elu_backward(g, x, y, out, alpha):
    d = np.exp(np.minimum(x, 0))
    d *= alpha
    np.copyto(d, 1, where=x > 0)
    return np.multiply(g, d, out=out)


_SELU_SCALE = 1.0507009873554804934193349852946
_SELU_ALPHA = 1.6732632423543772848170429916717


@_fwd
def selu(x, out):
    elu(x, out, _SELU_ALPHA)
    out *= _SELU_SCALE
    return out


@_fwd
def celu(x, out, alpha):
    t = np.expm1(np.minimum(x, 0) / alpha)
    t *= alpha
    np.maximum(x, 0, out=out)
    out += t
    return out


@_fwd
def silu(x, out):
    s = sigmoid(x, np.empty_like(x))
    return np.multiply(x, s, out=out)


@_bwd
def silu_backward(g, x, y, out):
    s = sigmoid(x, np.empty_like(x))
    np.subtract(1, s, out=out)
    out *= x
    out += 1
    out *= s
    out *= g
    return out


@_fwd
def mish(x, out):
    t = np.logaddexp(0, x)
    np.tanh(t, out=t)
    return np.multiply(x, t, out=out)


@_fwd
def softplus(x, out, beta, threshold):
    bx = x * beta
    t = np.logaddexp(0, bx)
    t /= beta
    np.copyto(t, x, where=bx > threshold)
    np.copyto(out, t)
    return out


@_fwd
def softsign(x, out):
    d = np.abs(x)
    d += 1
    return np.divide(x, d, out=out)


@_fwd
def hardtanh(x, out, min_val, max_val):
    return np.clip(x, min_val, max_val, out=out)


@_bwd
def hardtanh_backward(g, x, y, out, min_val, max_val):
    return np.multiply(g, (x > min_val) & (x < max_val), out=out)


@_fwd
def relu6(x, out):
    return np.clip(x, 0, 6, out=out)


@_fwd
def hardsigmoid(x, out):
    t = x / 6
    t += 0.5
    return np.clip(t, 0, 1, out=out)


@_fwd
def hardswish(x, out):
    t = x + 3
    np.clip(t, 0, 6, out=t)
    t /= 6
    return np.multiply(x, t, out=out)


@_fwd
def hardshrink(x, out, lambd):
    keep = np.abs(x) > lambd
    if out is not x:
        np.copyto(out, x)
    return np.multiply(out, keep, out=out)


@_fwd
def softshrink(x, out, lambd):
    t = np.clip(x, -lambd, lambd)
    return np.subtract(x, t, out=out)


@_fwd
def tanhshrink(x, out):
    t = np.tanh(x)
    return np.subtract(x, t, out=out)


@_fwd
def threshold(x, out, threshold, value):
    below = x <= threshold
    if out is not x:
        np.copyto(out, x)
    np.copyto(out, value, where=below)
    return out


@_fwd
def logsigmoid(x, out):
    t = np.logaddexp(0, -x)
    return np.negative(t, out=out)


@_fwd
def softmax(x, out):
    e = x - x.max(axis=-1, keepdims=True)
    np.exp(e, out=e)
    return np.divide(e, e.sum(axis=-1, keepdims=True), out=out)


@_fwd
def log_softmax(x, out):
    t = x - x.max(axis=-1, keepdims=True)
    lse = np.log(np.exp(t).sum(axis=-1, keepdims=True))
    return np.subtract(t, lse, out=out)


def _keywords(fn, skip: int) -> tuple[str, ...]:
    return tuple(inspect.signature(fn).parameters)[skip:]


def numpy_params(entry, formula, skip: int) -> dict:
    """The entry's scalar defaults, when they match the formula's keywords."""
    scalars = example_params(entry)
    wanted = _keywords(formula, skip)
    cp = getattr(entry, "channel_param", None)
    have = set(scalars) | ({cp} if cp else set())
    if set(wanted) != have:
        raise NotImplementedError(
            f"NumPy {entry.name} takes {wanted}, the table has {tuple(sorted(have))}"
        )
    return scalars


def _broadcast_weight(w, ndim: int):
    if w is None:
        return None
    if w.size == 1 or ndim < 2:
        return w.reshape(())
    return w.reshape((1, w.size) + (1,) * (ndim - 2))


class _NumpyCase:
    def __init__(self, label: str, pass_: str, dtype: str, size: int) -> None:
        entry, training = parse(label)
        if training:
            raise NotImplementedError("no NumPy form of training-mode random slopes")
        fwd = NUMPY_FORWARD.get(entry.name)
        bwd = NUMPY_BACKWARD.get(entry.name)
        if fwd is None or (pass_ == "backward" and bwd is None):
            raise NotImplementedError(f"no NumPy {pass_} formula for {entry.name}")
        shape = shape_for(entry, size)
        x = data("x", dtype, shape)
        w = _broadcast_weight(weight(entry, shape, dtype), len(shape))
        extra = {} if w is None else {entry.channel_param: w}
        kw = {**numpy_params(entry, fwd, 2), **extra}
        self.restore = None
        if pass_ == "forward":
            self.call = functools.partial(fwd, x, np.empty_like(x), **kw)
        elif pass_ == "forward_inplace":
            work = x.copy()
            self.call = functools.partial(fwd, work, work, **kw)
            self.restore = functools.partial(np.copyto, work, x)
        else:
            y = fwd(x, np.empty_like(x), **kw)
            g = data("g", dtype, shape)
            kwb = {**numpy_params(entry, bwd, 4), **extra}
            self.call = functools.partial(bwd, g, x, y, np.empty_like(x), **kwb)
        self.call()
        self.reset()

    def reset(self) -> None:
        if self.restore is not None:
            self.restore()


# --- PyTorch -------------------------------------------------------------------


# Imported here, once, in the process asv forks the benchmark processes from:
# importing torch costs seconds, and the Torch scenario has hundreds of cases.
# It runs nothing (no thread pool starts at import).  Peak-memory baselines
# include it when installed.
try:
    import torch as _torch_module
except ImportError:  # pragma: no cover - depends on the environment
    _torch_module = None


def _torch():
    if _torch_module is None:
        raise NotImplementedError("torch is not importable here")
    return _torch_module


class _TorchCase:
    def __init__(self, label: str, pass_: str, dtype: str, size: int) -> None:
        torch = _torch()
        functional = torch.nn.functional
        entry, training = parse(label)
        fn = getattr(functional, entry.name, None)
        if fn is None:
            raise NotImplementedError(f"torch.nn.functional has no {entry.name}")
        try:
            sig = inspect.signature(fn).parameters
        except (TypeError, ValueError):  # pragma: no cover - builtins without signature
            sig = {}
        kw = example_params(entry)
        if entry.has_training_mode:
            kw["training"] = training
        if is_rowwise(entry) and "dim" in sig:
            kw.setdefault("dim", -1)
        shape = shape_for(entry, size)
        x = data("x", dtype, shape)
        w = weight(entry, shape, dtype)
        extra = () if w is None else (torch.from_numpy(w),)
        self.restore = None
        if pass_ == "forward":
            self.call = functools.partial(fn, torch.from_numpy(x), *extra, **kw)
        elif pass_ == "forward_inplace":
            work = x.copy()
            t = torch.from_numpy(work)
            if "inplace" in sig:
                self.call = functools.partial(fn, t, *extra, inplace=True, **kw)
            elif hasattr(torch, entry.name + "_") and not kw and not extra:
                self.call = functools.partial(getattr(torch, entry.name + "_"), t)
            else:
                raise NotImplementedError(f"torch has no in-place {entry.name}")
            self.restore = functools.partial(np.copyto, work, x)
        else:
            xr = torch.from_numpy(x.copy()).requires_grad_()
            inputs = (xr,) + tuple(e.clone().requires_grad_() for e in extra)
            y = fn(*inputs, **kw)
            g = torch.from_numpy(data("g", dtype, shape))
            self.call = functools.partial(torch.autograd.grad, y, inputs, g, retain_graph=True)
        self.call()
        self.reset()

    def reset(self) -> None:
        if self.restore is not None:
            self.restore()


_CASES: dict[tuple, object] = {}


def _prepared(kind, label, pass_, dtype, size):
    key = (kind.__name__, label, pass_, dtype, size)
    case = _CASES.get(key)
    if case is None:
        fresh_process()
        np.seterr(all="ignore")  # this process runs one case: overflow to inf is intended
        case = _CASES[key] = kind(label, pass_, dtype, size)
    else:
        case.reset()
    return case


class NumPy:
    params = (ACTIVATIONS, PASSES, DTYPES, SIZES)
    param_names = ("activation", "pass", "dtype", "size")
    timer = TIMER

    def setup(self, activation, pass_, dtype, size):
        self.case = _prepared(_NumpyCase, activation, pass_, dtype, size)
        tune(self, size, inplace=pass_.endswith("_inplace"))

    def time_call(self, activation, pass_, dtype, size):
        self.case.call()


class Torch:
    params = (ACTIVATIONS, PASSES, DTYPES, SIZES)
    param_names = ("activation", "pass", "dtype", "size")
    timer = TIMER

    def setup(self, activation, pass_, dtype, size):
        self.case = _prepared(_TorchCase, activation, pass_, dtype, size)
        tune(self, size, inplace=pass_.endswith("_inplace"))

    def time_call(self, activation, pass_, dtype, size):
        self.case.call()
