"""Compute backends.

A backend runs the kernels of table entries on arrays that the public layer
(:mod:`fastact._api`) has already validated: float32 or float64, ``out`` of
the same dtype, and every array contiguous in the same memory order (so the
flat buffers line up elementwise).  Each backend module exposes a
:class:`Backend` named ``BACKEND``, or raises ImportError when it
cannot run here.  Backends are imported lazily, on first use.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ..table import Activation

NAMES = ("cython", "numba", "numpy")


@runtime_checkable
class Backend(Protocol):
    """What every backend implements: the kernels of the three kinds of entry.

    Elementwise entries (``forward``/``backward``; ``training`` and ``seed``
    select rrelu's counter-based slopes), rowwise entries over C-contiguous
    ``(rows, rowlen)`` buffers (softmax), and per-channel entries over
    ``(outer, channels, inner)`` views with the weight as ``channels`` doubles
    (prelu; ``channel_backward`` returns the weight's gradient as doubles).
    ``params`` are the scalar parameters as floats, string options by their
    index; ``nthreads`` is the share of threads this call may use.  Results
    are written into ``out``, which may be one of the inputs.
    """

    name: str

    def forward(
        self,
        entry: Activation,
        x: np.ndarray,
        out: np.ndarray,
        params: tuple[float, ...],
        training: bool,
        seed: int,
        nthreads: int,
    ) -> None: ...

    def backward(
        self,
        entry: Activation,
        g: np.ndarray,
        s: np.ndarray,
        out: np.ndarray,
        params: tuple[float, ...],
        training: bool,
        seed: int,
        nthreads: int,
    ) -> None: ...

    def rowwise_forward(
        self,
        entry: Activation,
        x: np.ndarray,
        out: np.ndarray,
        rows: int,
        rowlen: int,
        nthreads: int,
    ) -> None: ...

    def rowwise_backward(
        self,
        entry: Activation,
        g: np.ndarray,
        s: np.ndarray,
        out: np.ndarray,
        rows: int,
        rowlen: int,
        nthreads: int,
    ) -> None: ...

    def channel_forward(
        self,
        entry: Activation,
        x: np.ndarray,
        out: np.ndarray,
        weight: np.ndarray,
        outer: int,
        channels: int,
        inner: int,
        nthreads: int,
    ) -> None: ...

    def channel_backward(
        self,
        entry: Activation,
        g: np.ndarray,
        s: np.ndarray,
        out: np.ndarray,
        weight: np.ndarray,
        outer: int,
        channels: int,
        inner: int,
        nthreads: int,
    ) -> np.ndarray: ...

    # The bias epilogue (fastact._api.epilogue) of elementwise entries, on
    # C-contiguous buffers seen as (outer, channels, inner) with ``bias`` (channels
    # elements, the array's dtype) along axis 1; ``partial`` receives the bias
    # gradient's float64 partial sums, one row per block (row 0 holds the total).
    def bias_forward(
        self, entry: Activation, x: np.ndarray, bias: np.ndarray, out: np.ndarray, call: BiasCall
    ) -> None: ...

    def bias_backward(
        self,
        entry: Activation,
        g: np.ndarray,
        s: np.ndarray,
        bias: np.ndarray,
        out: np.ndarray,
        partial: np.ndarray,
        call: BiasCall,
    ) -> None: ...


@dataclass(frozen=True)
class BiasCall:
    """The scalars of one bias-epilogue kernel call, the same for every backend.

    ``channels`` and ``inner`` give the (outer, channels, inner) view, ``params``
    the entry's parameters as floats, ``training``/``seed`` rrelu's random
    slopes, ``nthreads`` the threads the call may use, and ``recompute`` (a
    backward's) whether ``saved`` is the pre-bias input, to which the kernel adds
    the bias again.
    """

    channels: int
    inner: int
    params: tuple[float, ...]
    training: bool
    seed: int
    nthreads: int
    recompute: bool = False


_loaded: dict[str, Backend] = {}
_errors: dict[str, str] = {}


def get(name: str) -> Backend:
    """The backend ``name``; ImportError (with the reason) when unavailable."""
    if name in _loaded:
        return _loaded[name]
    if name not in NAMES:
        raise ValueError(f"unknown backend {name!r}; choose from {', '.join(NAMES)}")
    if name in _errors:
        raise ImportError(_errors[name])
    try:
        module = importlib.import_module(f"{__name__}.{name}")
        backend = module.BACKEND
    except (ImportError, AttributeError) as exc:
        _errors[name] = f"backend {name!r} is not available: {exc}"
        raise ImportError(_errors[name]) from exc
    _loaded[name] = backend
    return backend


def available() -> list[str]:
    """Names of the backends that load on this machine."""
    names = []
    for name in NAMES:
        try:
            get(name)
        except ImportError:
            continue
        names.append(name)
    return names


def unavailable_reasons() -> dict[str, str]:
    available()
    return dict(_errors)
