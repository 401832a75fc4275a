"""Peers on the same arrays: plain NumPy and, when importable, PyTorch.

Same parameters as ``kernels.Kernels`` (without the backend), so a dashboard
graph of fastact sits beside the same cell of its peers.

NumPy: the expression a NumPy user writes, from the table's ``numpy`` forms
(those ``python -m fastact bench`` times), writing ``out=`` where a ufunc
allows it (so ``forward_inplace`` passes ``out=x``); activations with no
NumPy form (exact gelu needs erf) are skipped.  PyTorch: ``torch.nn.functional.NAME`` on
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

# --- NumPy ---------------------------------------------------------------------
# The expressions come from the table (``Activation.numpy``, evaluated by
# ``fastact.bench.peers.numpy_call``): the same ones ``python -m fastact bench``
# times.  A commit whose table has no NumPy forms has no NumPy peers.


def numpy_call(entry, params: dict, pass_: str, x, out, g=None, y=None, weight=None):
    """The table's NumPy form as a callable, or NotImplementedError."""
    try:
        from fastact.bench.peers import numpy_call as call
    except ImportError:
        raise NotImplementedError("this commit's table has no NumPy forms") from None
    fn = call(entry, params, pass_, x, out, g=g, y=y, weight=weight)
    if fn is None:
        raise NotImplementedError(f"no NumPy {pass_} form for {entry.name}")
    return fn


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
        shape = shape_for(entry, size)
        x = data("x", dtype, shape)
        w = _broadcast_weight(weight(entry, shape, dtype), len(shape))
        kw = example_params(entry)
        self.restore = None
        if pass_ == "forward":
            self.call = numpy_call(entry, kw, "fwd", x, np.empty_like(x), weight=w)
        elif pass_ == "forward_inplace":
            work = x.copy()
            self.call = numpy_call(entry, kw, "fwd", work, work, weight=w)
            self.restore = functools.partial(np.copyto, work, x)
        else:
            y = np.empty_like(x)
            numpy_call(entry, kw, "fwd", x, y, weight=w)()
            g = data("g", dtype, shape)
            self.call = numpy_call(entry, kw, "bwd", x, np.empty_like(x), g=g, y=y, weight=w)
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
