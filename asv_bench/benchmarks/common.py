"""Shared pieces of the suite: the parameter grids and ready-to-time calls.

The grids come from the activation table of the installed fastact:
``ACTIVATIONS`` lists every entry, plus ``NAME[train]`` for an entry with a
training mode (rrelu's random slopes).  When the suite runs against an older
commit that lacks an activation, a backend or a kernel, ``setup`` raises
NotImplementedError and asv records the combination as skipped (n/a).

``FASTACT_ASV_ACTIVATIONS=relu,sigmoid`` keeps only these activations (and
their ``[train]`` labels) in every grid: a quick run of a few activations
then lists only what it ran, where a ``--bench`` regex over parameters would
print every combination it left out as ``n/a``.

``FASTACT_ASV_CI=1`` keeps only the small size (and a cache-sized array where a
scenario needs one above the parallel threshold), for the quick dry run in CI.

Nothing here runs a kernel at import time: asv may fork benchmark processes
from one that imported the suite, and a child forked after OpenMP threads ran
must stay serial (fastact then runs on one thread; ``fresh_process`` refuses).
"""

from __future__ import annotations

import functools
import os
import timeit

import numpy as np

import fastact

CI = os.environ.get("FASTACT_ASV_CI", "").strip().lower() not in ("", "0", "false", "no")

# Wall-clock time: a CPU-time timer would add up the time of every thread.
TIMER = timeit.default_timer

TRAIN = "[train]"
PASSES = ("forward", "forward_inplace", "backward")
DTYPES = ("float32", "float64")
# The kernels' grid also has the 16-bit storage dtypes (computed in float32);
# where fastact or ml_dtypes lacks one, its cases are skipped.
KERNEL_DTYPES = DTYPES + ("float16", "bfloat16")
SMALL, CACHE, MEMORY = 1_000, 100_000, 10_000_000
SIZES = (SMALL,) if CI else (SMALL, CACHE, MEMORY)
# The single size of the thread-count and memory scenarios: above the
# parallel threshold (32768 elements), memory-sized outside CI.
LARGE = CACHE if CI else MEMORY
BACKENDS = ("cython", "numba", "auto")
SEED = 12345  # rrelu's training-mode seed (forward and backward must agree)
ROW = 1000  # row length of rowwise activations (softmax-like)
CHANNELS, INNER = 10, 100  # per-channel activations (prelu) see (N, 10, 100)
ELEMENTS_PER_SAMPLE = 200_000  # calls per timing sample: about this many elements


ONLY = [n.strip() for n in os.environ.get("FASTACT_ASV_ACTIVATIONS", "").split(",") if n.strip()]


def _labels() -> tuple[str, ...]:
    labels = []
    for name in fastact.activations():
        if ONLY and name not in ONLY:
            continue
        labels.append(name)
        if getattr(fastact.activation(name), "has_training_mode", False):
            labels.append(name + TRAIN)
    return tuple(labels)


ACTIVATIONS = _labels()

# asv_runner >= 0.3 re-runs setup before every timed call of a benchmark that
# has a setup (asv#966), so in-place calls always see the pristine input.
# Older runners call the function `number` times between setups: there an
# in-place benchmark takes one call per sample instead (noisier, not drifting).
try:  # pragma: no cover - depends on the runner that imports the suite
    from asv_runner.benchmarks import time as _asv_time

    SETUP_EVERY_CALL = hasattr(_asv_time, "_SetupInterleavedTimer")
except ImportError:  # pragma: no cover
    SETUP_EVERY_CALL = False


def tune(bench, size: int, inplace: bool) -> None:
    """Set asv's ``number``/``repeat`` on ``bench`` for arrays of ``size`` elements."""
    if inplace and not SETUP_EVERY_CALL:
        bench.number = 1
        bench.repeat = (10, 50, 5.0)
    else:
        bench.number = max(1, ELEMENTS_PER_SAMPLE // size)


def fresh_process() -> None:
    """RuntimeError when this process was forked after OpenMP threads ran."""
    state = getattr(getattr(fastact, "_config", None), "STATE", None)
    if getattr(state, "forked", False):
        raise RuntimeError(
            "benchmark process forked after OpenMP ran: fastact would run serial; "
            "use launch_method 'spawn' or keep kernels out of import time"
        )


def parse(label: str):
    """(table entry, training) of an ACTIVATIONS label; NotImplementedError if absent."""
    training = label.endswith(TRAIN)
    name = label[: -len(TRAIN)] if training else label
    try:
        entry = fastact.activation(name)
    except (ValueError, KeyError):
        raise NotImplementedError(f"{name!r} is not in this commit's table") from None
    if training and not getattr(entry, "has_training_mode", False):
        raise NotImplementedError(f"{name!r} has no training mode in this commit")
    return entry, training


def is_rowwise(entry) -> bool:
    """True for an activation computed along rows (softmax-like)."""
    flag = getattr(entry, "rowwise", None)
    if flag is None:
        flag = (getattr(entry, "extra", None) or {}).get("rowwise", False)
    return bool(flag) or getattr(entry, "kind", None) == "rowwise"


def shape_for(entry, size: int) -> tuple[int, ...]:
    """Rows of ROW for rowwise entries, (N, CHANNELS, INNER) for per-channel ones."""
    if is_rowwise(entry):
        return (size // ROW, ROW) if size % ROW == 0 else (1, size)
    if getattr(entry, "channel_param", None) and size % (CHANNELS * INNER) == 0:
        return (size // (CHANNELS * INNER), CHANNELS, INNER)
    return (size,)


_DATA: dict[tuple, np.ndarray] = {}


def data(kind: str, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Pristine arrays, made once per process: x ~ N(0, 2^2), g ~ N(0, 1).

    Made in place (no temporaries), so a peakmem baseline is the arrays alone.
    Callers must not write to them: in-place benchmarks work on copies.
    """
    key = (kind, dtype, shape)
    a = _DATA.get(key)
    if a is None and dtype not in DTYPES:  # 16-bit: rounded from float32 data
        a = _DATA[key] = data(kind, "float32", shape).astype(numpy_dtype(dtype))
    if a is None:
        a = np.empty(shape, dtype)
        np.random.default_rng(0 if kind == "x" else 1).standard_normal(dtype=dtype, out=a)
        if kind == "x":
            a *= 2
        _DATA[key] = a
    return a


def numpy_dtype(name: str) -> np.dtype:
    """The dtype called ``name``; NotImplementedError (a skipped case) where this fastact
    or this environment has no such dtype (bfloat16 needs ml_dtypes)."""
    if name in DTYPES:
        return np.dtype(name)
    try:
        from fastact import _half
    except ImportError:  # a fastact without 16-bit storage
        raise NotImplementedError(f"this fastact has no {name}") from None
    try:
        return _half.dtype_named(name)
    except ImportError as exc:
        raise NotImplementedError(str(exc)) from None


def weight(entry, shape: tuple[int, ...], dtype: str) -> np.ndarray | None:
    """The per-channel parameter (its default in every channel), or None."""
    cp = getattr(entry, "channel_param", None)
    if not cp:
        return None
    channels = shape[1] if len(shape) >= 2 else 1
    return np.full(channels, entry.params[cp], numpy_dtype(dtype))


def example_params(entry) -> dict:
    """Scalar parameters to pass: the defaults, an example value for a required one."""
    out = {}
    for p in entry.scalar_params:
        value = p.default
        if value is None:
            value = getattr(p, "example", None)
        out[p.name] = value
    return out


def _bind(fn, entry, training: bool, args: tuple, out, w):
    kw = example_params(entry)
    if training:
        kw.update(training=True, seed=SEED)
    if w is not None:
        args = args + (w,)
    return functools.partial(fn, *args, out=out, **kw)


def forward_call(entry, training: bool, x, out, w):
    """``fastact.NAME(x, out=out, **params)`` bound to its arguments."""
    return _bind(getattr(fastact, entry.name), entry, training, (x,), out, w)


def backward_call(entry, training: bool, g, s, out, w):
    """``fastact.NAME_backward(g, saved, out=out, **params)`` bound to its arguments."""
    return _bind(getattr(fastact, f"{entry.name}_backward"), entry, training, (g, s), out, w)


def saved_for(entry, training: bool, x, w) -> np.ndarray:
    """What the backward needs: x, or y = forward(x) (a new array)."""
    if entry.saves == "input":
        return x
    return forward_call(entry, training, x, np.empty_like(x), w)()


def use_backend(backend: str) -> None:
    """Select ``backend`` for this process; NotImplementedError when it cannot load."""
    try:
        fastact.set_backend(backend)
    except ImportError as exc:
        raise NotImplementedError(str(exc)) from None


def _preload_backends() -> None:
    """Import the compiled backends (and load Numba's kernels) in this process.

    asv forks every benchmark process from the one that imported the suite
    ("forkserver"), so the children skip importing Numba and loading its
    kernels from the disk cache (about 0.5 s each).  Nothing runs: no kernel,
    no thread.  Missing pieces (an older commit) are simply not preloaded.
    FASTACT_ASV_NO_PRELOAD=1 skips it (the unit test of the suite does).
    """
    if os.environ.get("FASTACT_ASV_NO_PRELOAD", "").strip() not in ("", "0"):
        return
    backends = getattr(fastact, "_backends", None)
    for name in ("cython", "numba"):
        try:
            backend = backends.get(name)
        except (ImportError, ValueError, AttributeError):
            continue
        compile_ = getattr(backend, "compile", None)
        if compile_ is None:
            continue
        for label in fastact.activations():
            try:
                compile_(fastact.activation(label))
            except Exception:  # noqa: BLE001 - a kernel that fails is reported by its benchmark
                pass


_preload_backends()


class Prepared:
    """The arrays and the bound call of one fastact benchmark case.

    ``call()`` is what gets timed; ``restore()`` (in-place passes) copies the
    pristine input back so that repeated in-place calls never drift.  The
    constructor makes one warm-up call: it compiles a JIT kernel before timing
    and lets an impossible combination raise NotImplementedError in setup.
    """

    def __init__(self, label: str, pass_: str, dtype: str, size: int) -> None:
        entry, training = parse(label)
        shape = shape_for(entry, size)
        x = data("x", dtype, shape)
        w = weight(entry, shape, dtype)
        self.restore = None
        if pass_ == "forward":
            self.call = forward_call(entry, training, x, np.empty_like(x), w)
        elif pass_ == "forward_inplace":
            work = x.copy()
            self.call = forward_call(entry, training, work, work, w)
            self.restore = functools.partial(np.copyto, work, x)
        elif pass_ in ("backward", "backward_inplace"):
            g = data("g", dtype, shape)
            s = saved_for(entry, training, x, w)
            if pass_ == "backward":
                self.call = backward_call(entry, training, g, s, np.empty_like(g), w)
            else:
                work = g.copy()
                self.call = backward_call(entry, training, work, s, work, w)
                self.restore = functools.partial(np.copyto, work, g)
        elif pass_ == "forward_alloc":
            self.call = forward_call(entry, training, x, None, w)
        else:
            raise ValueError(f"unknown pass {pass_!r}")
        self.call()
        self.reset()

    def reset(self) -> None:
        if self.restore is not None:
            self.restore()


_PREPARED: dict[tuple, Prepared] = {}


def prepared(label: str, pass_: str, dtype: str, size: int, backend: str) -> Prepared:
    """The Prepared case, made once per process and reset on every later setup."""
    key = (label, pass_, dtype, size, backend)
    case = _PREPARED.get(key)
    if case is None:
        fresh_process()
        use_backend(backend)
        case = _PREPARED[key] = Prepared(label, pass_, dtype, size)
    else:
        case.reset()
    return case
