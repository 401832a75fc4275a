"""Choose the backend and thread count of one call.

``auto`` takes the first available compiled backend (Cython, then Numba, then
the NumPy fallback) and goes parallel only above a size where threads pay
off.  The thread count is the configured one, lowered by a
``threadpoolctl.threadpool_limits`` (seen through OpenMP's per-thread
``omp_get_max_threads``) and forced to 1 in a child forked after OpenMP ran.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _backends
from ._config import STATE, get_backend, get_num_threads
from .table import Activation

# Below this many elements a call runs on one thread: starting a parallel
# region costs microseconds, more than a serial pass over 32K floats.
PARALLEL_THRESHOLD = 32768
AUTO_ORDER = ("cython", "numba", "numpy")


def _omp_limit() -> int | None:
    """Threads allowed by the OpenMP setting of the calling thread, if lowered."""
    try:
        cy = _backends.get("cython")
    except ImportError:
        return None
    n = cy.max_threads()
    return n if n < _omp_default() else None


_OMP_DEFAULT: list[int] = []


def _omp_default() -> int:
    if not _OMP_DEFAULT:
        _OMP_DEFAULT.append(_backends.get("cython").max_threads())
    return _OMP_DEFAULT[0]


def _auto_backend(entry: Activation):
    if entry.extra.get("user"):
        # User-registered activations exist only as Numba kernels.
        return _backends.get("numba")
    for name in AUTO_ORDER:
        try:
            return _backends.get(name)
        except ImportError:
            continue
    raise ImportError("no backend available")  # pragma: no cover - numpy always loads


def threads_for(n: int) -> int:
    """Threads a kernel over ``n`` elements gets."""
    if n < PARALLEL_THRESHOLD or STATE.forked:
        return 1
    nthreads = get_num_threads()
    limit = _omp_limit()
    if limit is not None:
        nthreads = min(nthreads, limit)
    if nthreads > 1:
        STATE.parallel_used = True
    return nthreads


def choose(entry: Activation, pass_: str, dtype: np.dtype, n: int):
    """(backend, nthreads) for one call."""
    name = get_backend()
    backend = _auto_backend(entry) if name == "auto" else _backends.get(name)
    return backend, threads_for(n)


@dataclass(frozen=True)
class Explanation:
    """What a call would run on, and why."""

    activation: str
    pass_: str
    dtype: str
    size: int
    backend: str
    num_threads: int
    reasons: tuple[str, ...]

    def __str__(self) -> str:
        head = (
            f"{self.activation} {self.pass_} on {self.size} {self.dtype} elements: "
            f"backend {self.backend!r}, {self.num_threads} thread(s)"
        )
        return head + "".join(f"\n  - {r}" for r in self.reasons)


def explain(entry: Activation, pass_: str, dtype: np.dtype, n: int) -> Explanation:
    reasons = []
    name = get_backend()
    if name == "auto":
        for cand in AUTO_ORDER:
            try:
                _backends.get(cand)
            except ImportError as exc:
                reasons.append(f"auto: skipped {cand}: {exc}")
                continue
            reasons.append(f"auto: {cand} is the first available backend in {AUTO_ORDER}")
            break
    else:
        reasons.append(f"backend {name!r} was chosen by set_backend/config/FASTACT_BACKEND")
    backend, nthreads = choose(entry, pass_, dtype, n)
    if STATE.forked:
        reasons.append("serial: this process was forked after OpenMP threads ran")
    elif n < PARALLEL_THRESHOLD:
        reasons.append(f"serial: {n} < {PARALLEL_THRESHOLD} elements, where threads pay off")
    else:
        reasons.append(
            f"{nthreads} thread(s): num_threads={get_num_threads()} "
            f"(from {STATE.threads_source}), OpenMP limit {_omp_limit() or 'none'}"
        )
    return Explanation(
        entry.name, pass_, str(np.dtype(dtype)), n, backend.name, nthreads, tuple(reasons)
    )
