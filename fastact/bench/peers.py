"""The implementations the benchmarks time: fastact, the streaming limit and the peers.

Each turns (case, arrays) into zero-argument callables: ``forward(case, x,
out)`` and ``backward(case, g, x, y, out)`` (x the input, y the forward
output), or None when it has no such operation.  The peers' calls come from
the table (:class:`fastact.table.TorchForm`, :class:`fastact.table.NumpyForm`):
a new entry is compared wherever its forms are written, and nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

import fastact
from fastact import _half
from fastact.table import Activation

from .cases import PRELU_WEIGHT, Case


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
        self._shadow: dict[int, tuple] = {}

    def set_threads(self, n: int) -> None:
        self.nthreads = n

    def forward(self, case, x, out):
        stream = self.stream
        x, out = self._words(x), self._words(out)
        return lambda: stream(x, None, out, self.nthreads)

    def backward(self, case, g, x, y, out):
        stream = self.stream
        s = x if case.entry.saves == "input" else y
        g, s, out = self._words(g), self._words(s), self._words(out)
        return lambda: stream(g, s, out, self.nthreads)

    def _words(self, a: np.ndarray) -> np.ndarray:
        """For a 16-bit array, float32 ones of half its length (the same bytes: the
        streaming limit of 2-byte elements), one per array; else ``a``."""
        if not _half.is_half(a.dtype):
            return a
        key = id(a)
        got = self._shadow.get(key)
        if got is None or got[0] is not a:
            got = self._shadow[key] = (a, np.ones(max(1, a.size // 2), np.float32))
        return got[1]


# NumPy: one expression per activation where NumPy has the functions (no erf:
# exact gelu is skipped).  Temporaries are computed before ``out`` is written,
# so ``out`` may be ``x``.
# --- peers from the table's forms ------------------------------------------------


def _applies(form, params: dict) -> bool:
    return form is not None and all(params.get(k) == v for k, v in form.when.items())


def _compile(expr: str, namespace: dict) -> Callable:
    return eval("lambda: " + expr, namespace)  # noqa: S307 - the table's own text


def numpy_call(
    entry: Activation, params: dict, pass_: str, x, out, g=None, y=None, weight=None
) -> Callable | None:
    """The NumPy form of ``entry`` as a callable writing ``out`` (None: no such form).

    ``pass_`` is "fwd" or "bwd"; ``weight`` is the channel parameter
    (broadcastable against ``x``).
    """
    form = entry.numpy
    if not _applies(form, params):
        return None
    expr = form.forward if pass_ == "fwd" else form.backward
    if expr is None:
        return None
    ns = {"np": np, **params, "x": x, "out": out, "g": g, "y": y}
    if entry.channel_param:
        ns[entry.channel_param] = PRELU_WEIGHT if weight is None else weight
    return _compile(expr, ns)


class NumPy(Impl):
    """The expression a NumPy user writes (the table's ``numpy`` forms), one thread."""

    name = "numpy"
    threaded = False

    def _wrap(self, f):
        if f is None:
            return None

        def run():
            with np.errstate(all="ignore"):
                f()

        return run

    def forward(self, case, x, out):
        if case.training or _half.is_half(x.dtype):  # NumPy has no bfloat16 math
            return None
        return self._wrap(numpy_call(case.entry, case.params, "fwd", x, out))

    def backward(self, case, g, x, y, out):
        if case.training or _half.is_half(x.dtype):
            return None
        return self._wrap(numpy_call(case.entry, case.params, "bwd", x, out, g=g, y=y))


_FLOAT = re.compile(r"(?<![\w.])(\d+\.\d*(?:[eE][-+]?\d+)?)")


class NumExpr(Impl):
    """numexpr on the table's ``numpy.numexpr`` strings; forward only.

    Float literals and parameters are passed typed (a bare 0.5 would make a
    float32 expression float64).
    """

    name = "numexpr"

    def __init__(self):
        import numexpr

        self.ne = numexpr

    def set_threads(self, n: int) -> None:
        self.ne.set_num_threads(n)

    def forward(self, case, x, out):
        form = case.entry.numpy
        if case.training or not _applies(form, case.params) or form.numexpr is None:
            return None
        if _half.is_half(x.dtype):  # numexpr computes in float32/float64 only
            return None
        t = x.dtype.type
        local = {}

        def typed(m):
            name = f"c{len(local)}_"
            local[name] = t(float(m.group(1)))
            return name

        expr = _FLOAT.sub(typed, form.numexpr)
        params = dict(case.params)
        if case.entry.channel_param:
            params[case.entry.channel_param] = PRELU_WEIGHT
        local.update({k: t(v) for k, v in params.items() if not isinstance(v, str)})
        local["x"] = x
        ev = self.ne.evaluate
        return lambda: ev(expr, local_dict=local, out=out)


class Torch(Impl):
    """torch on ``torch.from_numpy`` views of the same arrays (no copies).

    The calls are the table's ``torch`` forms: the ``out=`` forms
    (``torch._C._nn.*``) or in-place ones forward, ATen's backward ops
    (``torch.ops.aten.*_backward``), whose Python dispatch adds a few
    microseconds per call at small sizes.
    """

    name = "torch"

    def __init__(self):
        import torch

        self.torch = torch

    def set_threads(self, n: int) -> None:
        self.torch.set_num_threads(n)

    def _call(self, case: Case, which: str, **arrays) -> Callable | None:
        form = case.entry.torch
        if form is None:
            return None
        expr = getattr(form, ("train_" if case.training else "") + which)
        if expr is None:
            return None
        torch = self.torch
        ns = {
            "torch": torch,
            "F": torch.nn.functional,
            "nn": torch._C._nn,
            "aten": torch.ops.aten,
            **case.params,
            **{k: _tensor(torch, a) for k, a in arrays.items()},
            "inplace": arrays.get("out") is arrays.get("x"),
        }
        if case.entry.channel_param:
            ns[case.entry.channel_param] = torch.full((1,), PRELU_WEIGHT, dtype=ns["x"].dtype)
        if which == "backward" and form.backward_setup:
            ns["buf"] = eval(form.backward_setup, ns)  # noqa: S307 - the table's own text
        fn = _compile(expr, ns)
        if _half.is_half(arrays["out"].dtype):
            try:  # PyTorch has no 16-bit kernel for some ops (rrelu's training form)
                fn()
            except (NotImplementedError, RuntimeError):
                return None
        return fn

    def forward(self, case, x, out):
        return self._call(case, "forward", x=x, out=out)

    def backward(self, case, g, x, y, out):
        return self._call(case, "backward", g=g, x=x, y=y, out=out)


def _tensor(torch, a: np.ndarray):
    """A zero-copy tensor of ``a`` (bfloat16 through its int16 view)."""
    if _half.fmt(a.dtype) == 2:
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


PEERS: dict[str, type[Impl]] = {"numpy": NumPy, "torch": Torch, "numexpr": NumExpr}


def installed_peers() -> list[str]:
    """The peers whose library imports here."""
    got = []
    for name, mod in (("numpy", "numpy"), ("torch", "torch"), ("numexpr", "numexpr")):
        try:
            __import__(mod)
        except ImportError:
            continue
        got.append(name)
    return got


def implementations(backends: list[str], compare: list[str]) -> list[Impl]:
    """The streaming limit, fastact on each backend, then each peer that imports."""
    impls: list[Impl] = [Limit()]
    impls += [Fastact(b) for b in backends]
    for c in compare:
        try:
            impls.append(PEERS[c]())
        except ImportError:
            pass
    return impls
