"""``python -m fastact bench``: every activation against the streaming limit, NumPy and PyTorch.

An elementwise activation over a large array cannot run faster than the
cheapest kernel that moves the same bytes: the *streaming limit*, measured in
the same run by ``fastact._backends.cython._kernels.stream`` (read one array
and write one for a forward, read two and write one for a backward, with the
kernels' own chunking and threads).  For every activation, dtype, pass, size
and thread count this prints fastact's time, its throughput in GB/s and its
ratio to that limit, next to NumPy, PyTorch and numexpr (when installed) on
the same arrays.  All data are made in process (no files needed).

Passes: ``fwd`` (``f(x, out=y)``), ``fwd_inplace`` (``f(x, out=x)``) and
``bwd`` (``f_backward(g, saved, out=dx)``).  Times are wall clock; each
figure is the best of several samples (the median is kept in the JSON).
In-place calls run on fresh copies of the input every time (copying is not
timed), so repeated application never changes what is measured.

Also measured: inputs whose results underflow (x uniform in [-100, -80]) next
to N(0, 1) inputs (fastact's kernels must stay within 1.2x), randomized
ReLU in training mode against leaky_relu, and prelu forward + backward (with
the weight gradient) against leaky_relu forward + backward.  The summary
checks the targets of issue 8 (ratios to the limit at 10^6 and 10^7).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

import fastact
from fastact.table import TABLE, Activation

# --- what is measured ------------------------------------------------------

PASSES = ("fwd", "fwd_inplace", "bwd")
DEFAULT_SIZES = (10**3, 10**4, 10**5, 10**6, 10**7)
QUICK_SIZES = (10**3, 10**6)
ROW = 1000  # row length of the rowwise entries (softmax), elements
SEED = 20240601


@dataclass(frozen=True)
class Case:
    """One activation with fixed parameters (a table entry or a variant of one)."""

    label: str
    entry: Activation
    params: dict = field(default_factory=dict)
    training: bool = False

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def rowwise(self) -> bool:
        return self.entry.rowwise


def all_cases() -> list[Case]:
    """Every table entry at its example parameters, plus gelu(tanh) and rrelu in training."""
    cases = []
    for e in TABLE:
        params = {k: v for k, v in e.example_params.items() if k != e.channel_param}
        cases.append(Case(e.name, e, params))
        if e.name == "gelu":
            cases.append(Case("gelu[tanh]", e, {"approximate": "tanh"}))
        if e.has_training_mode:
            cases.append(Case(f"{e.name}[train]", e, params, training=True))
    return cases


PIECEWISE = {
    "relu",
    "leaky_relu",
    "prelu",
    "rrelu",
    "rrelu[train]",
    "relu6",
    "hardtanh",
    "hardsigmoid",
    "threshold",
    "hardshrink",
    "softshrink",
}
F32_125 = {
    "sigmoid",
    "tanh",
    "silu",
    "logsigmoid",
    "elu",
    "selu",
    "celu",
    "softsign",
    "hardswish",
    "tanhshrink",
}
F32_16 = {"mish", "softplus", "gelu[tanh]"}


def target(label: str, dtype: str, pass_: str) -> float | None:
    """The ratio to the streaming limit that issue 8 asks for (None: no target)."""
    if label in PIECEWISE:
        if label == "prelu" and pass_ == "bwd":
            return None  # its backward also reduces the weight gradient: see the pairs
        return 1.10
    if label in ("softmax", "log_softmax"):
        return None
    if dtype == "float64":
        return {"gelu": 5.0, "gelu[tanh]": 5.0, "softplus": 3.2}.get(label, 2.0)
    if label in F32_125:
        return 1.25
    if label in F32_16:
        return 1.6
    if label == "gelu":
        return 2.5
    return None


# --- arrays ------------------------------------------------------------------


def shape_for(case: Case, n: int) -> tuple[int, ...]:
    if case.rowwise:
        row = min(n, ROW)
        return (max(1, n // row), row)
    return (n,)


def make_input(case: Case, n: int, dtype, kind: str = "normal", seed: int = SEED) -> np.ndarray:
    """N(0, 1) inputs, or ``kind="denormal"``: uniform in [-100, -80] (exp underflows)."""
    rng = np.random.default_rng(seed)
    shape = shape_for(case, n)
    if kind == "denormal":
        x = rng.uniform(-100.0, -80.0, shape)
    else:
        x = rng.standard_normal(shape)
    return x.astype(dtype)


# --- implementations -----------------------------------------------------------
#
# Each implementation turns (case, arrays) into zero-argument callables:
# ``forward(case, x, out)`` and ``backward(case, g, x, y, out)`` (x the input,
# y the forward output), or None when it has no such operation.


class Impl:
    name = ""
    threaded = True  # False: one thread whatever is asked (measured once)

    def set_threads(self, n: int) -> None:  # pragma: no cover - overridden
        pass

    def forward(self, case: Case, x: np.ndarray, out: np.ndarray) -> Callable | None:
        return None

    def backward(self, case: Case, g, x, y, out) -> Callable | None:
        return None


def _kwargs(case: Case) -> dict:
    kw = dict(case.params)
    if case.entry.has_training_mode:
        kw.update(training=case.training, seed=12345)
    return kw


PRELU_WEIGHT = 0.25


_OMP: list = []


def _omp_lib():
    """ctypes handle on the OpenMP runtime of the Cython kernels (None if none)."""
    if not _OMP:
        _OMP.append(None)
        try:
            import ctypes

            from fastact._backends.cython import _kernels

            lib = ctypes.CDLL(_kernels.__file__)
            lib.omp_set_num_threads.argtypes = [ctypes.c_int]
            _OMP[0] = lib
        except (ImportError, OSError, AttributeError):
            pass
    return _OMP[0]


def _omp_set(n: int) -> None:
    lib = _omp_lib()
    if lib is not None:
        lib.omp_set_num_threads(n)


def _reset_openmp(n: int) -> None:
    """Undo torch.set_num_threads on the OpenMP runtime the Cython kernels share.

    torch sets the calling thread's OpenMP thread count, which fastact reads as
    a limit (threadpoolctl's way): after a 1-thread torch measurement every
    fastact call would run on one thread.
    """
    _omp_set(max(n, fastact.get_num_threads()))


def _omp_get() -> int | None:
    try:
        from fastact._backends.cython import _kernels
    except ImportError:
        return None
    return _kernels.max_threads()


class Fastact(Impl):
    """fastact's public functions on one backend (set with ``fastact.set_backend``)."""

    def __init__(self, backend: str):
        self.backend = backend
        self.name = f"fastact-{backend}"

    def set_threads(self, n: int) -> None:
        fastact.set_backend(self.backend)
        fastact.set_num_threads(n)
        _reset_openmp(n)

    def forward(self, case, x, out):
        fn = getattr(fastact, case.name)
        if case.entry.channel_param:
            return lambda: fn(x, PRELU_WEIGHT, out=out)
        kw = _kwargs(case)
        return lambda: fn(x, out=out, **kw)

    def backward(self, case, g, x, y, out):
        fn = getattr(fastact, f"{case.name}_backward")
        s = x if case.entry.saves == "input" else y
        if case.entry.channel_param:
            return lambda: fn(g, s, PRELU_WEIGHT, out=out)
        kw = _kwargs(case)
        return lambda: fn(g, s, out=out, **kw)


class Limit(Impl):
    """The streaming limit: out = x * 1 or out = g * s, same chunking and threads."""

    name = "limit"

    def __init__(self):
        from fastact._backends.cython import _kernels

        self.stream = _kernels.stream
        self.nthreads = 1

    def set_threads(self, n: int) -> None:
        self.nthreads = n

    def forward(self, case, x, out):
        stream = self.stream
        return lambda: stream(x, None, out, self.nthreads)

    def backward(self, case, g, x, y, out):
        stream = self.stream
        s = x if case.entry.saves == "input" else y
        return lambda: stream(g, s, out, self.nthreads)


# NumPy: one expression per activation where NumPy has the functions (no erf:
# exact gelu is skipped).  Temporaries are computed before ``out`` is written,
# so ``out`` may be ``x``.


def _select(out, x, keep, other):
    """out = x where keep else other (x may be out)."""
    if out is not x:
        np.copyto(out, x)
    np.copyto(out, other, where=~keep)


def _np_sigmoid(x):
    t = np.exp(-x)
    t += 1
    return np.reciprocal(t, out=t)


def _np_forward(case: Case) -> Callable | None:
    p = case.params
    name = case.label
    if name in ("leaky_relu", "prelu", "rrelu"):
        slope = {
            "leaky_relu": p.get("negative_slope"),
            "prelu": PRELU_WEIGHT,
            "rrelu": (p.get("lower", 0) + p.get("upper", 0)) / 2,
        }[name]
        return lambda x, out: np.maximum(x, x * x.dtype.type(slope), out=out)
    if name == "elu" or name == "celu" or name == "selu":
        alpha = {"selu": 1.6732632423543772}.get(name, p.get("alpha", 1.0))
        scale = 1.0507009873554805 if name == "selu" else 1.0

        def elu(x, out):
            t = np.expm1(x / x.dtype.type(alpha) if name == "celu" else x)
            t *= x.dtype.type(alpha)
            _select(out, x, x > 0, t)
            if scale != 1.0:
                out *= x.dtype.type(scale)

        return elu
    if name == "softplus":
        beta, thr = p["beta"], p["threshold"]

        def softplus(x, out):
            bx = x * x.dtype.type(beta)
            t = np.logaddexp(0, bx)
            t /= x.dtype.type(beta)
            _select(out, x, bx > thr, t)

        return softplus
    if name == "hardshrink":
        lam = p["lambd"]
        return lambda x, out: np.multiply(x, np.abs(x) > lam, out=out)
    if name == "softshrink":
        lam = p["lambd"]

        def softshrink(x, out):
            t = np.abs(x) - x.dtype.type(lam)
            np.maximum(t, 0, out=t)
            np.copysign(t, x, out=out)

        return softshrink
    if name == "threshold":
        th, value = p["threshold"], p["value"]

        def threshold(x, out):
            keep = x > th
            if out is not x:
                np.copyto(out, x)
            out[~keep] = value

        return threshold
    if name == "hardtanh":
        lo, hi = p["min_val"], p["max_val"]
        return lambda x, out: np.clip(x, lo, hi, out=out)

    def gelu_tanh(x, out):
        c = x.dtype.type
        u = x * x
        u *= c(0.044715)
        u += 1
        u *= x
        u *= c(0.7978845608028654)
        np.tanh(u, out=u)
        u += 1
        u *= x
        np.multiply(u, c(0.5), out=out)

    def softmax(x, out):
        t = x - x.max(axis=-1, keepdims=True)
        np.exp(t, out=t)
        t /= t.sum(axis=-1, keepdims=True)
        np.copyto(out, t)

    def log_softmax(x, out):
        t = x - x.max(axis=-1, keepdims=True)
        t -= np.log(np.exp(t).sum(axis=-1, keepdims=True))
        np.copyto(out, t)

    table = {
        "sigmoid": lambda x, out: np.copyto(out, _np_sigmoid(x)),
        "tanh": lambda x, out: np.tanh(x, out=out),
        "relu": lambda x, out: np.maximum(x, 0, out=out),
        "gelu[tanh]": gelu_tanh,
        "silu": lambda x, out: np.multiply(x, _np_sigmoid(x), out=out),
        "mish": lambda x, out: np.multiply(x, np.tanh(np.logaddexp(0, x)), out=out),
        "softsign": lambda x, out: np.divide(x, np.abs(x) + 1, out=out),
        "relu6": lambda x, out: np.clip(x, 0, 6, out=out),
        "hardsigmoid": lambda x, out: np.clip(x / 6 + x.dtype.type(0.5), 0, 1, out=out),
        "hardswish": lambda x, out: np.divide(np.clip(x + 3, 0, 6) * x, 6, out=out),
        "logsigmoid": lambda x, out: np.negative(np.logaddexp(0, -x), out=out),
        "tanhshrink": lambda x, out: np.subtract(x, np.tanh(x), out=out),
        "softmax": softmax,
        "log_softmax": log_softmax,
    }
    return table.get(name)


def _np_backward(case: Case) -> Callable | None:
    p = case.params
    name = case.label

    def where_pos(slope_of):
        def bwd(g, x, y, out):
            t = slope_of(g, x, y)
            _select(out, g, y > 0, t)

        return bwd

    if name == "leaky_relu":
        s = p["negative_slope"]
        return where_pos(lambda g, x, y: g * g.dtype.type(s))
    if name == "hardtanh":
        lo, hi = p["min_val"], p["max_val"]
        return lambda g, x, y, out: np.multiply(g, (y > lo) & (y < hi), out=out)
    table = {
        "sigmoid": lambda g, x, y, out: np.multiply(g * y, 1 - y, out=out),
        "tanh": lambda g, x, y, out: np.multiply(g, 1 - y * y, out=out),
        "relu": lambda g, x, y, out: np.multiply(g, y > 0, out=out),
        "silu": lambda g, x, y, out: np.multiply(
            g, (lambda s: s * (1 + x * (1 - s)))(_np_sigmoid(x)), out=out
        ),
        "elu": lambda g, x, y, out: np.multiply(g, np.where(x > 0, 1, np.exp(x)), out=out),
        "relu6": lambda g, x, y, out: np.multiply(g, (y > 0) & (y < 6), out=out),
        "softsign": lambda g, x, y, out: np.divide(g, np.square(np.abs(x) + 1), out=out),
        "softplus": lambda g, x, y, out: np.multiply(g, _np_sigmoid(x), out=out),
    }
    return table.get(name)


class NumPy(Impl):
    name = "numpy"
    threaded = False

    def forward(self, case, x, out):
        f = _np_forward(case)
        if f is None or case.training:
            return None

        def run():
            with np.errstate(all="ignore"):
                f(x, out)

        return run

    def backward(self, case, g, x, y, out):
        f = _np_backward(case)
        if f is None or case.training:
            return None

        def run():
            with np.errstate(all="ignore"):
                f(g, x, y, out)

        return run


# numexpr: forward only; float constants are passed typed (a bare 0.5 would
# make a float32 expression float64).
_NE_FORWARD = {
    "sigmoid": "1 / (1 + exp(-x))",
    "tanh": "tanh(x)",
    "relu": "where(x > 0, x, 0)",
    "leaky_relu": "where(x > 0, x, x * negative_slope)",
    "prelu": "where(x > 0, x, x * w)",
    "rrelu": "where(x > 0, x, x * ((lower + upper) * half))",
    "elu": "where(x > 0, x, alpha * expm1(x))",
    "selu": "where(x > 0, sc * x, sa * expm1(x))",
    "celu": "where(x > 0, x, alpha * expm1(x / alpha))",
    "gelu[tanh]": "half * x * (1 + tanh(c0 * (x + c1 * x * x * x)))",
    "silu": "x / (1 + exp(-x))",
    "mish": "x * tanh(log1p(exp(x)))",
    "softplus": "where(x * beta > threshold, x, log1p(exp(x * beta)) / beta)",
    "softsign": "x / (1 + abs(x))",
    "hardtanh": "where(x < min_val, min_val, where(x > max_val, max_val, x))",
    "relu6": "where(x <= 0, 0, where(x > 6, 6, x))",
    "hardsigmoid": "where(x <= -3, 0, where(x >= 3, 1, (x + 3) / 6))",
    "hardswish": "where(x <= -3, 0, where(x >= 3, x, x * (x + 3) / 6))",
    "logsigmoid": "where(x < 0, x, 0) - log1p(exp(-abs(x)))",
    "tanhshrink": "x - tanh(x)",
    "hardshrink": "where((x >= -lambd) & (x <= lambd), 0, x)",
    "softshrink": "where(x > lambd, x - lambd, where(x < -lambd, x + lambd, 0))",
    "threshold": "where(x <= threshold, value, x)",
}
_NE_CONSTANTS = {
    "half": 0.5,
    "w": PRELU_WEIGHT,
    "sc": 1.0507009873554805,
    "sa": 1.0507009873554805 * 1.6732632423543772,
    "c0": 0.7978845608028654,
    "c1": 0.044715,
}


class NumExpr(Impl):
    name = "numexpr"

    def __init__(self):
        import numexpr

        self.ne = numexpr

    def set_threads(self, n: int) -> None:
        self.ne.set_num_threads(n)

    def forward(self, case, x, out):
        expr = _NE_FORWARD.get(case.label)
        if expr is None or case.training:
            return None
        t = x.dtype.type
        consts = {**_NE_CONSTANTS, **case.params}
        local = {k: t(v) for k, v in consts.items() if not isinstance(v, str)}
        local["x"] = x
        ev = self.ne.evaluate
        return lambda: ev(expr, local_dict=local, out=out)


class Torch(Impl):
    """torch on ``torch.from_numpy`` views of the same arrays (no copies).

    Forward uses the ``out=`` forms (``torch._C._nn.*``) or the in-place
    ones; the backward ops are ATen's (``torch.ops.aten.*_backward``), whose
    Python dispatch adds a few microseconds per call at small sizes.
    """

    name = "torch"

    def __init__(self):
        import torch

        self.torch = torch
        self.nn = torch._C._nn
        self.aten = torch.ops.aten

    def set_threads(self, n: int) -> None:
        self.torch.set_num_threads(n)

    def forward(self, case, x, out):
        torch, nn, F = self.torch, self.nn, self.torch.nn.functional
        tx, to = torch.from_numpy(x), torch.from_numpy(out)
        inplace = out is x
        p = case.params
        name = case.label
        if name == "rrelu[train]":
            lo, hi = p["lower"], p["upper"]
            return lambda: F.rrelu(tx, lo, hi, training=True, inplace=inplace)
        if name == "prelu":
            w = torch.full((1,), PRELU_WEIGHT, dtype=tx.dtype)
            return lambda: to.copy_(torch._prelu_kernel(tx, w))
        if name in ("softmax", "log_softmax"):
            fn = torch.softmax if name == "softmax" else torch.log_softmax
            return lambda: fn(tx, -1, out=to)
        if name == "gelu[tanh]":
            return lambda: nn.gelu(tx, approximate="tanh", out=to)
        out_forms = {
            "sigmoid": lambda: torch.sigmoid(tx, out=to),
            "tanh": lambda: torch.tanh(tx, out=to),
            "relu": lambda: torch.clamp_min(tx, 0, out=to),
            "leaky_relu": lambda: nn.leaky_relu(tx, p.get("negative_slope", 0.01), out=to),
            "rrelu": lambda: nn.leaky_relu(tx, (p["lower"] + p["upper"]) / 2, out=to),
            "elu": lambda: nn.elu(tx, p.get("alpha", 1.0), 1.0, 1.0, out=to),
            "selu": lambda: nn.elu(tx, 1.6732632423543772, 1.0507009873554805, 1.0, out=to),
            "celu": lambda: nn.elu(tx, p["alpha"], 1.0, 1.0 / p["alpha"], out=to),
            "gelu": lambda: nn.gelu(tx, approximate="none", out=to),
            "silu": lambda: nn.silu(tx, out=to),
            "mish": lambda: nn.mish(tx, out=to),
            "softplus": lambda: nn.softplus(tx, p["beta"], p["threshold"], out=to),
            "hardtanh": lambda: nn.hardtanh(tx, p["min_val"], p["max_val"], out=to),
            "relu6": lambda: nn.hardtanh(tx, 0.0, 6.0, out=to),
            "hardsigmoid": lambda: nn.hardsigmoid(tx, out=to),
            "hardswish": lambda: nn.hardswish(tx, out=to),
            "logsigmoid": lambda: nn.log_sigmoid(tx, out=to),
            "hardshrink": lambda: torch.hardshrink(tx, p["lambd"], out=to),
            "softshrink": lambda: nn.softshrink(tx, p["lambd"], out=to),
            "threshold": lambda: torch.threshold(tx, p["threshold"], p["value"], out=to),
        }
        if name in out_forms:
            return out_forms[name]
        # F.softsign and F.tanhshrink have no out= form: they allocate.
        fn = {"softsign": F.softsign, "tanhshrink": F.tanhshrink}.get(name)
        if fn is None:
            return None
        return lambda: to.copy_(fn(tx))

    def backward(self, case, g, x, y, out):
        torch, aten = self.torch, self.aten
        tg, tx, ty, to = (torch.from_numpy(a) for a in (g, x, y, out))
        p = case.params
        name = case.label
        forms = {
            "sigmoid": lambda: aten.sigmoid_backward.grad_input(tg, ty, grad_input=to),
            "tanh": lambda: aten.tanh_backward.grad_input(tg, ty, grad_input=to),
            "relu": lambda: aten.threshold_backward.grad_input(tg, ty, 0.0, grad_input=to),
            "leaky_relu": lambda: aten.leaky_relu_backward.grad_input(
                tg, ty, p["negative_slope"], True, grad_input=to
            ),
            "rrelu": lambda: aten.leaky_relu_backward.grad_input(
                tg, ty, (p["lower"] + p["upper"]) / 2, True, grad_input=to
            ),
            "elu": lambda: aten.elu_backward.grad_input(
                tg, p["alpha"], 1.0, 1.0, False, tx, grad_input=to
            ),
            "selu": lambda: aten.elu_backward.grad_input(
                tg, 1.6732632423543772, 1.0507009873554805, 1.0, False, tx, grad_input=to
            ),
            "celu": lambda: aten.elu_backward.grad_input(
                tg, p["alpha"], 1.0, 1.0 / p["alpha"], False, tx, grad_input=to
            ),
            "gelu": lambda: aten.gelu_backward.grad_input(
                tg, tx, approximate="none", grad_input=to
            ),
            "gelu[tanh]": lambda: aten.gelu_backward.grad_input(
                tg, tx, approximate="tanh", grad_input=to
            ),
            "silu": lambda: aten.silu_backward.grad_input(tg, tx, grad_input=to),
            "mish": lambda: to.copy_(aten.mish_backward(tg, tx)),
            "softplus": lambda: aten.softplus_backward.grad_input(
                tg, tx, p["beta"], p["threshold"], grad_input=to
            ),
            "hardtanh": lambda: aten.hardtanh_backward.grad_input(
                tg, ty, p["min_val"], p["max_val"], grad_input=to
            ),
            "relu6": lambda: aten.hardtanh_backward.grad_input(tg, ty, 0.0, 6.0, grad_input=to),
            "hardsigmoid": lambda: aten.hardsigmoid_backward.grad_input(tg, tx, grad_input=to),
            "hardswish": lambda: aten.hardswish_backward.out(tg, tx, out=to),
            "hardshrink": lambda: aten.hardshrink_backward.grad_input(
                tg, tx, p["lambd"], grad_input=to
            ),
            "softshrink": lambda: aten.softshrink_backward.grad_input(
                tg, tx, p["lambd"], grad_input=to
            ),
            "threshold": lambda: aten.threshold_backward.grad_input(
                tg, tx, p["threshold"], grad_input=to
            ),
            "softmax": lambda: aten._softmax_backward_data.out(tg, ty, -1, ty.dtype, grad_input=to),
            "log_softmax": lambda: aten._log_softmax_backward_data.out(
                tg, ty, -1, ty.dtype, out=to
            ),
        }
        if name == "logsigmoid":
            buf = aten.log_sigmoid_forward(tx)[1]  # torch's saved buffer
            return lambda: aten.log_sigmoid_backward.grad_input(tg, tx, buf, grad_input=to)
        if name == "prelu":
            w = torch.full((1,), PRELU_WEIGHT, dtype=tx.dtype)

            def prelu_bwd():
                gi, gw = aten._prelu_kernel_backward(tg, tx, w)
                to.copy_(gi)
                return gw.sum()

            return prelu_bwd
        if name == "rrelu[train]":
            noise = torch.empty_like(tx)
            lo, hi = p["lower"], p["upper"]
            aten.rrelu_with_noise(tx, noise, lo, hi, True)  # draws the noise

            return lambda: aten.rrelu_with_noise_backward.out(
                tg, tx, noise, lo, hi, True, False, out=to
            )
        # softsign and tanhshrink are compositions in torch (autograd of their parts)
        return forms.get(name)


def implementations(backends: list[str], compare: list[str]) -> list[Impl]:
    impls: list[Impl] = [Limit()]
    impls += [Fastact(b) for b in backends]
    makers = {"numpy": NumPy, "torch": Torch, "numexpr": NumExpr}
    for c in compare:
        try:
            impls.append(makers[c]())
        except ImportError:
            pass
    return impls


# --- timing --------------------------------------------------------------------

PAR_MIN = 32768  # below this every implementation runs one thread: no threaded row
POOL_ELEMENTS = 100_000  # in-place calls cycle over this many elements of fresh copies


@dataclass
class Timing:
    best: float  # seconds per call
    median: float
    samples: int
    number: int  # calls per sample


class _Timer:
    """Samples of one measurement: each sample runs ``calls`` ``number`` times.

    ``setup`` (untimed) runs before every sample: it refreshes in-place
    buffers, so that every call of a sample runs once on its own fresh copy.
    """

    def __init__(self, calls: list[Callable], setup: Callable | None):
        self.calls, self.setup = calls, setup
        self.samples: list[float] = []
        self.number = 0

    def warm_up(self) -> None:
        clock = time.perf_counter
        if self.setup is not None:
            self.setup()
        t0 = clock()
        for c in self.calls:  # JIT compilation, first touch, thread pools
            c()
        t_round = clock() - t0
        if t_round < 2e-3:  # fast calls: calibrate on a second, warm round
            if self.setup is not None:
                self.setup()
            t0 = clock()
            for c in self.calls:
                c()
            t_round = max(clock() - t0, 1e-7)
        self.number = 1 if self.setup is not None else max(1, min(10_000, int(2e-4 / t_round)))

    def sample(self, budget: float, least: int = 1) -> None:
        clock = time.perf_counter
        calls, setup, number = self.calls, self.setup, self.number
        spent, taken = 0.0, 0
        while taken < least or (spent < budget and taken < 100):
            if setup is not None:
                setup()
            t0 = clock()
            for _ in range(number):
                for c in calls:
                    c()
            dt = clock() - t0
            spent += dt
            taken += 1
            self.samples.append(dt / (number * len(calls)))

    def timing(self) -> Timing:
        return Timing(
            min(self.samples), statistics.median(self.samples), len(self.samples), self.number
        )


ROUNDS = 3


def measure_together(
    jobs: dict, min_time: float, before: Callable[[object], None] | None = None
) -> dict:
    """Time several measurements interleaved: ``ROUNDS`` rounds, each sampling every job.

    ``jobs`` maps a key to ``(calls, setup)``; ``before(key)`` runs before a
    job samples (thread settings).  Interleaving spreads each job's samples
    over the whole measurement, so a burst of load on a shared machine slows
    all of them alike instead of one; the best sample of each is kept.
    """
    timers = {k: _Timer(calls, setup) for k, (calls, setup) in jobs.items()}
    for k, t in timers.items():
        if before is not None:
            before(k)
        t.warm_up()
    for _ in range(ROUNDS):
        for k, t in timers.items():
            if before is not None:
                before(k)
            t.sample(min_time / ROUNDS, least=1)
    return {k: t.timing() for k, t in timers.items()}


def measure(calls: list[Callable], setup: Callable | None, min_time: float) -> Timing:
    """Best and median seconds per call of ``calls`` (at least ROUNDS samples)."""
    return measure_together({0: (calls, setup)}, min_time)[0]


def _bytes(pass_: str, n: int, itemsize: int) -> int:
    return (3 if pass_ == "bwd" else 2) * n * itemsize


@dataclass
class Arrays:
    """The arrays of one (case, dtype, size) cell, shared by every implementation."""

    x: np.ndarray
    y: np.ndarray
    g: np.ndarray
    out: np.ndarray
    pool: list[np.ndarray]

    def refresh(self) -> None:
        for b in self.pool:
            np.copyto(b, self.x)


def make_arrays(case: Case, n: int, dtype, kind: str = "normal") -> Arrays:
    x = make_input(case, n, dtype, kind)
    g = make_input(case, n, dtype, "normal", seed=SEED + 1)
    y = np.empty_like(x)
    with fastact.config(backend="cython" if "cython" in fastact.backends() else "auto"):
        Fastact("cython").forward(case, x, y)()
    pool = [np.empty_like(x) for _ in range(max(1, min(32, POOL_ELEMENTS // max(n, 1))))]
    return Arrays(x, y, g, np.empty_like(x), pool)


def calls_for(impl: Impl, case: Case, pass_: str, a: Arrays) -> tuple[list, Callable | None]:
    """The callables of one measurement (empty: not supported) and their setup."""
    if pass_ == "fwd":
        c = impl.forward(case, a.x, a.out)
        return ([c] if c else []), None
    if pass_ == "fwd_inplace":
        if isinstance(impl, (NumPy, NumExpr)):
            return [], None  # their in-place call is the same expression: not repeated
        cs = [impl.forward(case, b, b) for b in a.pool]
        return ([c for c in cs if c] if all(cs) else []), a.refresh
    c = impl.backward(case, a.g, a.x, a.y, a.out)
    return ([c] if c else []), None


# --- the run -------------------------------------------------------------------


@dataclass
class Settings:
    cases: list[Case]
    dtypes: list[str]
    sizes: list[int]
    threads: list[int]
    passes: list[str]
    backends: list[str]
    compare: list[str]
    min_time: float
    sections: list[str]
    denormal_size: int
    pair_sizes: list[int]


class Progress:
    """One status line on stderr (rewritten in place on a terminal)."""

    def __init__(self, total: int, quiet: bool = False):
        self.total, self.done, self.t0 = total, 0, time.perf_counter()
        self.tty = sys.stderr.isatty()
        self.quiet = quiet

    def step(self, what: str) -> None:
        self.done += 1
        if self.quiet:
            return
        el = time.perf_counter() - self.t0
        msg = f"[{self.done}/{self.total}] {what}  ({el:.0f} s)"
        if self.tty:
            sys.stderr.write("\r" + msg.ljust(79)[:79])
        else:
            sys.stderr.write(msg + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.tty and not self.quiet:
            sys.stderr.write("\r" + " " * 79 + "\r")
            sys.stderr.flush()


def _record(case, dtype, pass_, n, threads, impl, t: Timing, kind="normal") -> dict:
    itemsize = np.dtype(dtype).itemsize
    nbytes = _bytes(pass_, n, itemsize)
    return {
        "case": case.label,
        "activation": case.name,
        "params": dict(case.params),
        "training": case.training,
        "dtype": dtype,
        "pass": pass_,
        "size": n,
        "threads": threads,
        "input": kind,
        "impl": impl,
        "best_s": t.best,
        "median_s": t.median,
        "samples": t.samples,
        "number": t.number,
        "bytes": nbytes,
        "gbps": nbytes / t.best / 1e9,
    }


class _Threads:
    """Set and restore fastact's backend/threads and the others' thread counts."""

    def __init__(self, impls: list[Impl]):
        self.impls = impls

    def __enter__(self):
        self.backend = fastact.get_backend()
        self.nthreads = fastact.get_num_threads()
        self.omp = _omp_get()
        self.torch = None
        for impl in self.impls:
            if isinstance(impl, Torch):
                self.torch = impl.torch.get_num_threads()
        return self

    def __exit__(self, *exc):
        fastact.set_backend(self.backend)
        fastact.set_num_threads(self.nthreads)
        for impl in self.impls:
            if isinstance(impl, Torch) and self.torch is not None:
                impl.torch.set_num_threads(self.torch)
        if self.omp is not None:  # torch's setting is the OpenMP one of this thread
            _omp_set(self.omp)


def run_main(s: Settings, impls: list[Impl], progress: Progress, emit: Callable) -> list[dict]:
    """The main table.  All cells of one (case, dtype, size) are timed together,
    interleaved (see :func:`measure_together`), the streaming limit among them."""
    results: list[dict] = []
    for case in s.cases:
        rows: list[dict] = []
        for dtype in s.dtypes:
            for n in s.sizes:
                a = make_arrays(case, n, dtype)
                jobs, by = {}, {}
                for pass_ in s.passes:
                    for threads in s.threads:
                        if threads > 1 and n < PAR_MIN:
                            continue
                        for impl in impls:
                            if threads > 1 and not impl.threaded:
                                continue
                            calls, setup = calls_for(impl, case, pass_, a)
                            if calls:
                                key = (pass_, threads, impl.name)
                                jobs[key], by[key] = (calls, setup), impl
                got = measure_together(jobs, s.min_time, lambda k, _b=by: _b[k].set_threads(k[1]))
                for (pass_, threads, name), t in got.items():
                    if name != "limit":
                        continue
                    lrec = _record(case, dtype, pass_, n, threads, "limit", t)
                    lrec["limit_s"], lrec["ratio"] = t.best, 1.0
                    rows.append(lrec)
                    for (p2, t2, other), u in got.items():
                        if (p2, t2) == (pass_, threads) and other != "limit":
                            r = _record(case, dtype, pass_, n, threads, other, u)
                            r["limit_s"], r["ratio"] = t.best, u.best / t.best
                            rows.append(r)
                progress.step(f"{case.label} {dtype} {_size(n)}")
        results += rows
        emit(format_case(case, rows, impls))
    return results


# --- tables --------------------------------------------------------------------


def _us(t: float) -> str:
    us = t * 1e6
    return f"{us:.3g}" if us < 1000 else f"{us:.0f}"


def _size(n: int) -> str:
    e = int(round(math.log10(n))) if n > 0 else 0
    return f"1e{e}" if 10**e == n else str(n)


def _short(impl: str) -> str:
    return impl.removeprefix("fastact-")


def format_case(case: Case, rows: list[dict], impls: list[Impl]) -> str:
    """The table of one case: a line per (dtype, pass, size, threads)."""
    names = [i.name for i in impls[1:]]
    ours = [n for n in names if n.startswith("fastact-")]
    others = [n for n in names if not n.startswith("fastact-")]
    cells: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        cells.setdefault((r["dtype"], r["pass"], r["size"], r["threads"]), {})[r["impl"]] = r
    present = {r["impl"] for r in rows}
    others = [o for o in others if o in present]
    head = ["dtype  ", "pass       ", "   size", "thr", "limit us"]
    for o in ours:
        head += [f"{_short(o):>8} us", "  GB/s", " x lim"]
    head += [f"{_short(o):>8} x lim" for o in others]
    if "torch" in others and ours:
        head.append("vs torch")
    lines = []
    tg = {d: target(case.label, d, "fwd") for d in ("float32", "float64")}
    tgt = ", ".join(f"{d} <= {v:g}x" for d, v in tg.items() if v is not None)
    lines.append(f"\n== {case.label}: {case.entry.formula}" + (f"   [target {tgt}]" if tgt else ""))
    lines.append(" | ".join(head))
    for (dtype, pass_, n, thr), c in cells.items():
        lim = c["limit"]
        row = [
            f"{dtype:7}",
            f"{pass_:11}",
            f"{_size(n):>7}",
            f"{thr:>3}",
            f"{_us(lim['best_s']):>8}",
        ]
        for o in ours:
            r = c.get(o)
            if r is None:
                row += [f"{'-':>11}", f"{'-':>6}", f"{'-':>6}"]
            else:
                row += [f"{_us(r['best_s']):>11}", f"{r['gbps']:6.1f}", f"{r['ratio']:6.2f}"]
        for o in others:
            r = c.get(o)
            row.append(f"{r['ratio']:14.2f}" if r else f"{'-':>14}")
        if "torch" in others and ours:
            best = min((c[o]["best_s"] for o in ours if o in c), default=None)
            t = c.get("torch")
            row.append(f"{t['best_s'] / best:7.2f}x" if (t and best) else f"{'-':>8}")
        lines.append(" | ".join(row))
    return "\n".join(lines)


# --- denormal inputs, rrelu training and prelu ----------------------------------


def run_denormal(s: Settings, impls: list[Impl], progress: Progress) -> list[dict]:
    """Inputs whose exp underflows (x in [-100, -80]) against N(0, 1), one thread."""
    out = []
    chosen = [i for i in impls[1:] if isinstance(i, (Fastact, Torch))]
    n = s.denormal_size
    for case in s.cases:
        if case.rowwise:
            continue
        for dtype in s.dtypes:
            arrays = {k: make_arrays(case, n, dtype, k) for k in ("normal", "denormal")}
            for impl in chosen:
                impl.set_threads(1)
                for pass_ in ("fwd", "bwd"):
                    jobs = {}
                    for kind, a in arrays.items():
                        fwd = impl.forward(case, a.x, a.y)  # this implementation's own y
                        if fwd is None:
                            break
                        fwd()
                        calls, setup = calls_for(impl, case, pass_, a)
                        if not calls:
                            break
                        jobs[kind] = (calls, setup)
                    t = measure_together(jobs, 2 * s.min_time) if len(jobs) == 2 else {}
                    if len(t) < 2:
                        continue
                    out.append(
                        {
                            "case": case.label,
                            "dtype": dtype,
                            "pass": pass_,
                            "size": n,
                            "threads": 1,
                            "impl": impl.name,
                            "normal_s": t["normal"].best,
                            "denormal_s": t["denormal"].best,
                            "ratio": t["denormal"].best / t["normal"].best,
                        }
                    )
            progress.step(f"denormal {case.label} {dtype}")
    return out


def format_denormal(rows: list[dict]) -> str:
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    cells: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        cells.setdefault((r["case"], r["dtype"], r["pass"]), {})[r["impl"]] = r
    n = rows[0]["size"] if rows else 0
    lines = [
        f"\n== underflowing inputs: time on x ~ U(-100, -80) / time on x ~ N(0, 1), "
        f"{_size(n)} elements, 1 thread (target <= 1.2)",
        " | ".join(["case        ", "dtype  ", "pass"] + [f"{_short(i):>8}" for i in impls]),
    ]
    for (case, dtype, pass_), c in cells.items():
        vals = [f"{c[i]['ratio']:8.2f}" if i in c else f"{'-':>8}" for i in impls]
        lines.append(" | ".join([f"{case:12}", f"{dtype:7}", f"{pass_:4}"] + vals))
    return "\n".join(lines)


def _pair_case(label: str) -> Case:
    for c in all_cases():
        if c.label == label:
            return c
    raise KeyError(label)  # pragma: no cover


def run_pairs(s: Settings, impls: list[Impl], progress: Progress) -> list[dict]:
    """rrelu in training mode vs leaky_relu; prelu fwd+bwd vs leaky_relu fwd+bwd."""
    out = []
    leaky, rrelu, prelu = (_pair_case(k) for k in ("leaky_relu", "rrelu[train]", "prelu"))
    chosen = [i for i in impls[1:] if isinstance(i, (Fastact, Torch))]
    for dtype in s.dtypes:
        for n in s.pair_sizes:
            arr = {c.label: make_arrays(c, n, dtype) for c in (leaky, rrelu, prelu)}
            for threads in s.threads:
                if threads > 1 and n < PAR_MIN:
                    continue
                for impl in chosen:
                    impl.set_threads(threads)

                    def both(case, _impl=impl, _arr=arr):
                        a = _arr[case.label]
                        f = _impl.forward(case, a.x, a.out)
                        b = _impl.backward(case, a.g, a.x, a.y, a.g.copy())
                        if f is None or b is None:
                            return None
                        return lambda: (f(), b())

                    def one(case, pass_, _impl=impl, _arr=arr):
                        calls, _ = calls_for(_impl, case, pass_, _arr[case.label])
                        return calls[0] if calls else None

                    pairs = {
                        "rrelu[train] fwd / leaky_relu fwd": (
                            one(rrelu, "fwd"),
                            one(leaky, "fwd"),
                            1.3,
                        ),
                        "rrelu[train] bwd / leaky_relu bwd": (
                            one(rrelu, "bwd"),
                            one(leaky, "bwd"),
                            1.3,
                        ),
                        "prelu fwd+bwd / leaky_relu fwd+bwd": (both(prelu), both(leaky), 1.5),
                    }
                    for what, (a, b, tgt) in pairs.items():
                        if a is None or b is None:
                            continue
                        got = measure_together({0: ([a], None), 1: ([b], None)}, 2 * s.min_time)
                        ta, tb = got[0], got[1]
                        out.append(
                            {
                                "pair": what,
                                "dtype": dtype,
                                "size": n,
                                "threads": threads,
                                "impl": impl.name,
                                "time_s": ta.best,
                                "baseline_s": tb.best,
                                "ratio": ta.best / tb.best,
                                "target": tgt,
                            }
                        )
            progress.step(f"pairs {dtype} {_size(n)}")
    return out


def format_pairs(rows: list[dict]) -> str:
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    cells: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        cells.setdefault((r["pair"], r["dtype"], r["size"], r["threads"]), {})[r["impl"]] = r
    lines = [
        "\n== rrelu training and prelu with its weight gradient, against leaky_relu (time ratio)",
        " | ".join(
            ["pair                               ", "dtype  ", "   size", "thr"]
            + [f"{_short(i):>8}" for i in impls]
            + ["target"]
        ),
    ]
    for (pair, dtype, n, thr), c in cells.items():
        vals = [f"{c[i]['ratio']:8.2f}" if i in c else f"{'-':>8}" for i in impls]
        tgt = next(iter(c.values()))["target"]
        lines.append(
            " | ".join([f"{pair:35}", f"{dtype:7}", f"{_size(n):>7}", f"{thr:>3}"] + vals)
            + f" | <= {tgt:g}"
        )
    return "\n".join(lines)


# --- targets ---------------------------------------------------------------------


def check_targets(results: list[dict], denormal: list[dict], pairs: list[dict]) -> list[dict]:
    """Issue 8's targets against the measured ratios (per case, dtype and fastact backend)."""
    checks: list[dict] = []
    by_cell: dict[tuple, dict[str, dict]] = {}
    for r in results:
        key = (r["case"], r["dtype"], r["pass"], r["size"], r["threads"])
        by_cell.setdefault(key, {})[r["impl"]] = r
    worst: dict[tuple, dict] = {}
    for (case, dtype, pass_, n, thr), c in by_cell.items():
        for impl, r in c.items():
            if not impl.startswith("fastact-"):
                continue
            where = f"{pass_} {_size(n)} {thr}thr"
            t = c.get("torch")
            if n >= 10**6:
                tgt = target(case, dtype, pass_)
                if tgt is not None:
                    key = ("limit", case, dtype, impl)
                    w = worst.get(key)
                    if w is None or r["ratio"] > w["value"]:
                        worst[key] = {"value": r["ratio"], "target": tgt, "where": where}
                if t is not None:
                    key = ("torch", case, dtype, impl)
                    v = r["best_s"] / t["best_s"]
                    w = worst.get(key)
                    if w is None or v > w["value"]:
                        worst[key] = {"value": v, "target": 1.0, "where": where}
            if n <= 10**3:
                for other in ("torch", "numpy"):
                    if other in c:
                        key = (f"{other}@1e3", case, dtype, impl)
                        v = r["best_s"] / c[other]["best_s"]
                        w = worst.get(key)
                        if w is None or v > w["value"]:
                            worst[key] = {"value": v, "target": 1.0, "where": where}
    for (kind, case, dtype, impl), w in worst.items():
        checks.append(
            {
                "check": {
                    "limit": "time / streaming limit at 1e6-1e7",
                    "torch": "time / torch at 1e6-1e7",
                    "torch@1e3": "time / torch at 1e3",
                    "numpy@1e3": "time / numpy at 1e3",
                }[kind],
                "case": case,
                "dtype": dtype,
                "impl": impl,
                "worst": w["value"],
                "where": w["where"],
                "target": w["target"],
                "met": w["value"] <= w["target"],
            }
        )
    den: dict[tuple, dict] = {}
    for r in denormal:
        if not r["impl"].startswith("fastact-"):
            continue
        key = (r["case"], r["dtype"], r["impl"])
        if key not in den or r["ratio"] > den[key]["ratio"]:
            den[key] = r
    for (case, dtype, impl), r in den.items():
        checks.append(
            {
                "check": "underflowing / normal inputs",
                "case": case,
                "dtype": dtype,
                "impl": impl,
                "worst": r["ratio"],
                "where": r["pass"],
                "target": 1.2,
                "met": r["ratio"] <= 1.2,
            }
        )
    for r in pairs:
        if r["impl"].startswith("fastact-"):
            checks.append(
                {
                    "check": r["pair"],
                    "case": r["pair"].split()[0],
                    "dtype": r["dtype"],
                    "impl": r["impl"],
                    "worst": r["ratio"],
                    "where": f"{_size(r['size'])} {r['threads']}thr",
                    "target": r["target"],
                    "met": r["ratio"] <= r["target"],
                }
            )
    return checks


def format_targets(checks: list[dict]) -> str:
    if not checks:
        return ""
    met = sum(c["met"] for c in checks)
    lines = [f"\n== targets (issue 8): {met} of {len(checks)} met; misses:"]
    misses = [c for c in checks if not c["met"]]
    for c in misses:
        lines.append(
            f"  {c['check']:38} {c['case']:12} {c['dtype']:7} {_short(c['impl']):7} "
            f"{c['worst']:6.2f} > {c['target']:g}  ({c['where']})"
        )
    if not misses:
        lines.append("  none")
    return "\n".join(lines)


# --- JSON and plot -----------------------------------------------------------------

SCHEMA = "fastact-bench/1"


def metadata(argv: list[str] | None, s: Settings) -> dict:
    versions = {"fastact": getattr(fastact, "__version__", "?"), "numpy": np.__version__}
    for mod in ("numba", "torch", "numexpr"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            versions[mod] = None
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    return {
        "schema": SCHEMA,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "versions": versions,
        "argv": list(argv or []),
        "dtypes": s.dtypes,
        "sizes": s.sizes,
        "threads": s.threads,
        "passes": s.passes,
        "backends": s.backends,
        "compare": s.compare,
        "min_time": s.min_time,
    }


def require_matplotlib():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit(
            "--plot needs matplotlib, which is not installed: pip install fastact[plot]"
        ) from None
    return plt


def plot(results: list[dict], path: str) -> None:
    """Throughput (GB/s) against size, one panel per case, a line per implementation.

    Forward passes (``out=``) at the largest thread count measured; solid lines
    float32, dashed float64.
    """
    plt = require_matplotlib()
    rows = [r for r in results if r["pass"] == "fwd" and r["input"] == "normal"] or results
    if not rows:
        raise SystemExit("nothing to plot")
    cases = list(dict.fromkeys(r["case"] for r in rows))
    top = max(r["threads"] for r in rows)
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    colors = {imp: f"C{k % 10}" for k, imp in enumerate(impls)}
    ncol = min(5, len(cases))
    nrow = -(-len(cases) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.4 * ncol, 2.8 * nrow), squeeze=False)
    for ax, case in zip(axes.flat, cases):
        for imp in impls:
            for dtype, style in (("float32", "-"), ("float64", "--")):
                pts = {}
                for r in rows:
                    if r["case"] == case and r["impl"] == imp and r["dtype"] == dtype:
                        # the threaded row where there is one, else the serial one
                        if r["threads"] == top or r["size"] not in pts:
                            pts[r["size"]] = r["gbps"]
                if pts:
                    xs = sorted(pts)
                    ax.plot(
                        xs,
                        [pts[x] for x in xs],
                        style,
                        color=colors[imp],
                        marker=".",
                        label=f"{_short(imp)} {dtype}",
                    )
        ax.set_xscale("log")
        ax.set_title(case, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("elements", fontsize=7)
        ax.set_ylabel("GB/s", fontsize=7)
    for ax in list(axes.flat)[len(cases) :]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=8)
    fig.suptitle(f"forward (out=) throughput, {top} thread(s) above {PAR_MIN} elements")
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    fig.savefig(path, dpi=90)
    plt.close(fig)


# --- command line ------------------------------------------------------------------


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _sizes(text: str) -> list[int]:
    out = []
    for t in _csv(text):
        try:
            v = float(t)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--size: {t!r} is not a number") from None
        if v < 1 or v != int(v):
            raise argparse.ArgumentTypeError(f"--size: {t!r} is not a positive integer")
        out.append(int(v))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="a subset that runs in under a minute")
    parser.add_argument(
        "--activation",
        metavar="NAMES",
        help="comma-separated activations (a name selects its variants: gelu -> gelu, gelu[tanh])",
    )
    parser.add_argument("--dtype", metavar="DTYPES", help="float32,float64 (default both)")
    parser.add_argument("--size", metavar="SIZES", type=_sizes, help="element counts, e.g. 1e3,1e6")
    parser.add_argument("--threads", metavar="COUNTS", help="thread counts, e.g. 1,all (default)")
    parser.add_argument("--pass", dest="passes", metavar="PASSES", help="fwd,fwd_inplace,bwd")
    parser.add_argument(
        "--backend", metavar="NAMES", help="fastact backends (default cython,numba)"
    )
    parser.add_argument(
        "--compare",
        metavar="NAMES",
        help="other implementations: numpy,torch,numexpr (default: those installed), or none",
    )
    parser.add_argument(
        "--sections",
        metavar="NAMES",
        help="main,denormal,pairs (default all three)",
    )
    parser.add_argument(
        "--min-time",
        type=float,
        metavar="S",
        help="seconds spent per measurement (at least 3 samples)",
    )
    parser.add_argument("--json", metavar="FILE", help="save every number as JSON")
    parser.add_argument("--plot", metavar="FILE.png", help="draw throughput against size")
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def settings_from(args: argparse.Namespace) -> Settings:
    cases = all_cases()
    if args.activation:
        wanted = _csv(args.activation)
        known = {c.label for c in cases} | {c.name for c in cases}
        bad = [w for w in wanted if w not in known]
        if bad:
            raise ValueError(
                f"--activation: unknown {', '.join(bad)}; known: {', '.join(sorted(known))}"
            )
        cases = [c for c in cases if c.label in wanted or c.name in wanted]
    dtypes = _csv(args.dtype) if args.dtype else ["float32", "float64"]
    for d in dtypes:
        if d not in ("float32", "float64"):
            raise ValueError(f"--dtype: {d!r} is not float32 or float64")
    allt = fastact.get_num_threads()
    threads = []
    for t in _csv(args.threads) if args.threads else ["1", "all"]:
        if t == "all":
            threads.append(allt)
        elif t.isdigit() and int(t) >= 1:
            threads.append(int(t))
        else:
            raise ValueError(f"--threads: {t!r} is not a positive integer or 'all'")
    threads = sorted(set(threads))
    passes = _csv(args.passes) if args.passes else (["fwd", "bwd"] if args.quick else list(PASSES))
    for p in passes:
        if p not in PASSES:
            raise ValueError(f"--pass: {p!r} is not one of {', '.join(PASSES)}")
    available = fastact.backends()
    if args.backend:
        backends = _csv(args.backend)
        for b in backends:
            if b not in ("cython", "numba", "numpy"):
                raise ValueError(f"--backend: {b!r} is not cython, numba or numpy")
            if b not in available:
                raise ValueError(f"--backend: {b!r} is not available here")
    else:
        backends = [b for b in ("cython", "numba") if b in available]
    if "cython" not in available:
        raise RuntimeError("the benchmark needs the compiled Cython backend (its streaming kernel)")
    if args.compare is None:
        compare = ["numpy", "torch", "numexpr"]
    else:
        compare = [] if args.compare.strip() == "none" else _csv(args.compare)
        for c in compare:
            if c not in ("numpy", "torch", "numexpr"):
                raise ValueError(f"--compare: {c!r} is not numpy, torch, numexpr or none")
    sizes = args.size or list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    sections = _csv(args.sections) if args.sections else ["main", "denormal", "pairs"]
    for sec in sections:
        if sec not in ("main", "denormal", "pairs"):
            raise ValueError(f"--sections: {sec!r} is not main, denormal or pairs")
    min_time = args.min_time if args.min_time is not None else (0.01 if args.quick else 0.03)
    if min_time < 0:
        raise ValueError("--min-time must be >= 0")
    big = [n for n in sizes if n >= 10**6]
    return Settings(
        cases=cases,
        dtypes=dtypes,
        sizes=sizes,
        threads=threads,
        passes=passes,
        backends=backends,
        compare=compare,
        min_time=min_time,
        sections=sections,
        denormal_size=min(10**5 if args.quick else 10**6, max(sizes)),
        pair_sizes=(big or sizes[-1:])[-1:] if args.quick else (big or sizes[-1:]),
    )


def run(args: argparse.Namespace) -> int:
    try:
        s = settings_from(args)
    except (ValueError, RuntimeError) as exc:
        print(f"fastact bench: {exc}", file=sys.stderr)
        return 2
    if args.plot:
        require_matplotlib()  # fail before measuring, not after
    impls = implementations(s.backends, s.compare)
    got = [i.name for i in impls[1:]]
    missing = [c for c in s.compare if c not in got]
    steps = 0
    if "main" in s.sections:
        steps += len(s.cases) * len(s.dtypes) * len(s.sizes)
    if "denormal" in s.sections:
        steps += sum(not c.rowwise for c in s.cases) * len(s.dtypes)
    if "pairs" in s.sections:
        steps += len(s.dtypes) * len(s.pair_sizes)
    progress = Progress(steps, args.quiet)

    def emit(text: str) -> None:
        progress.close()
        print(text, flush=True)

    print(
        f"fastact bench: {len(s.cases)} cases, dtypes {','.join(s.dtypes)}, sizes "
        f"{','.join(_size(n) for n in s.sizes)}, threads {','.join(map(str, s.threads))}; "
        f"implementations: {', '.join(got)}"
        + (f" (not installed: {', '.join(missing)})" if missing else "")
    )
    print(
        "times are the best of repeated wall-clock samples; 'x lim' = time / the streaming "
        "limit (a kernel moving the same bytes, same threads); 'vs torch' = torch time / "
        "fastact's best"
    )
    results: list[dict] = []
    denormal: list[dict] = []
    pairs: list[dict] = []
    t0 = time.perf_counter()
    with _Threads(impls):
        if "main" in s.sections:
            results = run_main(s, impls, progress, emit)
        if "denormal" in s.sections:
            denormal = run_denormal(s, impls, progress)
            emit(format_denormal(denormal))
        if "pairs" in s.sections:
            pairs = run_pairs(s, impls, progress)
            emit(format_pairs(pairs))
    checks = check_targets(results, denormal, pairs)
    emit(format_targets(checks))
    print(f"\n{time.perf_counter() - t0:.0f} s")
    if args.json:
        doc = {
            "meta": metadata(sys.argv[1:], s),
            "results": results,
            "denormal": denormal,
            "pairs": pairs,
            "targets": checks,
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
        print(f"wrote {args.json}")
    if args.plot:
        plot(results, args.plot)
        print(f"wrote {args.plot}")
    return 0
