"""Choose the backend and thread count of one call.

``auto`` follows the dispatch profile (:mod:`fastact._profile`): per
activation, pass and dtype, a backend for serial calls, a size below which
calls stay serial, and a backend for parallel calls.  The thread count is
the configured one, lowered by a ``threadpoolctl.threadpool_limits`` (seen
through OpenMP's per-thread ``omp_get_max_threads``), shared between Python
threads that run parallel kernels at the same time (so a thread pool does
not start threads x cores OpenMP workers), and 1 in a child forked after
OpenMP ran.  Small plain calls on the Cython backend never get here: the
compiled fast path (``_kernels.fast_forward``) takes them.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from . import _backends, _profile
from ._config import STATE, _refresh_fast_path, get_backend, get_num_threads, threads_source
from ._profile import Plan
from .table import Activation

AUTO_ORDER = ("cython", "numba", "numpy")
PASSES = ("forward", "backward")
DTYPES = ("float32", "float64")

_plans: dict[str, Plan] = {}
_profile_source = ""


def _available(name: str) -> bool:
    try:
        _backends.get(name)
    except ImportError:
        return False
    return True


_CY: list = []


def _cython():
    """The Cython backend, or None where it is not built (looked up once)."""
    if not _CY:
        _CY.append(_backends.get("cython") if _available("cython") else None)
    return _CY[0]


def _fallback(name: str) -> str:
    if _available(name):
        return name
    for cand in AUTO_ORDER:
        if _available(cand):
            return cand
    raise ImportError("no backend available")  # pragma: no cover - numpy always loads


_USER = Plan(small="numba", large="numba")
# (name, pass, np.dtype) -> Plan, filled from the profile's string keys
_by_dtype: dict[tuple[str, str, np.dtype], Plan] = {}


# Calls a formula may make and still count as cheap (a few flops an element).
_CHEAP_CALLS = frozenset({"keepnan", "isnan", "fabs", "poly"})
_defaults: dict[tuple[str, str], Plan] = {}


def default_plan(entry: Activation, pass_: str) -> Plan:
    """The shipped plan: cheap (memory-bound) formulas go parallel later.

    A kernel of a few flops an element moves memory at the speed of a copy on
    one core, so threads pay off only on large arrays; a transcendental one
    is compute-bound and gains from a second core much earlier.
    """
    key = (entry.name, pass_)
    plan = _defaults.get(key)
    if plan is None:
        src = entry.forward if pass_ == "forward" else entry.backward
        tree = ast.parse(src, mode="eval")
        calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call)}
        cheap = calls <= _CHEAP_CALLS and not entry.rowwise
        below = _profile.CHEAP_SERIAL_BELOW if cheap else _profile.DEFAULT_SERIAL_BELOW
        plan = _defaults[key] = Plan(serial_below=below)
    return plan


def c_parallel() -> bool:
    """Whether the C kernels run in parallel (False in a build without OpenMP)."""
    cy = _cython()
    return cy is None or cy.parallel


_numba_large: dict[Plan, Plan] = {}


def plan_for(entry: Activation, pass_: str, dtype) -> Plan:
    if entry.extra.get("user"):
        return _USER
    plan = _by_dtype.get((entry.name, pass_, dtype))
    plan = plan if plan is not None else default_plan(entry, pass_)
    if plan.large == "cython" and not c_parallel():
        # C kernels built without OpenMP run on one thread: Numba's run in parallel
        plan = _numba_large.setdefault(plan, dataclasses.replace(plan, large="numba"))
    return plan


def load_profile(path=None) -> str:
    """(Re)load the dispatch profile and program the fast path from it.

    Also records the OpenMP thread count of the importing thread, against
    which a later ``threadpoolctl`` limit is recognised.
    """
    global _plans, _profile_source
    _omp_limit()
    _plans, _profile_source = _profile.load(path)
    _by_dtype.clear()
    for key, plan in _plans.items():
        name, pass_, dtype = key.split("/")
        _by_dtype[(name, pass_, np.dtype(dtype))] = plan
    _program_fast_path()
    return _profile_source


def profile_source() -> str:
    return _profile_source


def _program_fast_path() -> None:
    """Tell the compiled fast path below which size each kernel is serial Cython."""
    try:
        from ._backends.cython import BACKEND as cy
    except ImportError:
        return
    from .table import TABLE

    for kid, entry in enumerate(TABLE):
        for p, pass_ in enumerate(PASSES):
            for d, dtype in enumerate(DTYPES):
                plan = plan_for(entry, pass_, np.dtype(dtype))
                limit = plan.serial_below if plan.small == "cython" else 0
                cy.set_fast_limit(p, d, kid, limit)
                start = plan.serial_below if plan.large == "cython" else -1
                cy.set_fast_par_from(p, d, kid, start)
    _refresh_fast_path()


# --- threads ----------------------------------------------------------------

_OMP_DEFAULT: list[int] = []
_active_lock = threading.Lock()
_active = 0  # parallel kernel calls running now, over all Python threads


def _omp_default() -> int | None:
    """The OpenMP thread count of the process when fastact first looked (None without Cython)."""
    _omp_limit()
    return _OMP_DEFAULT[0] if _OMP_DEFAULT else None


def _omp_limit() -> int | None:
    """Threads allowed by the OpenMP setting of the calling thread, if lowered."""
    if not _available("cython"):
        return None
    cy = _backends.get("cython")
    n = cy.max_threads()
    if n <= 0:  # no OpenMP runtime to ask (a build without OpenMP, Numba not on OpenMP)
        return None
    if not _OMP_DEFAULT:
        _OMP_DEFAULT.append(n)
    return n if n < _OMP_DEFAULT[0] else None


def _threads() -> int:
    if STATE.forked:
        return 1
    nthreads = get_num_threads()
    limit = _omp_limit()
    if limit is not None:
        nthreads = min(nthreads, limit)
    return nthreads


def choose(entry: Activation, pass_: str, dtype, n: int):
    """(backend, nthreads) for one call."""
    plan = plan_for(entry, pass_, dtype)
    nthreads = _threads() if n >= plan.serial_below else 1
    # with one thread in force, the serial plan is the one that applies
    parallel = nthreads > 1
    if entry.extra.get("user"):
        # user activations exist only as Numba kernels, whatever backend is set
        return _backends.get("numba"), nthreads
    name = get_backend()
    if name == "auto":
        name = _fallback(plan.large if parallel else plan.small)
    backend = _backends.get(name)
    return backend, nthreads


@contextlib.contextmanager
def running(nthreads: int) -> Iterator[int]:
    """Share the cores between Python threads running parallel kernels at once.

    The count of parallel calls running now lives in the Cython module where it
    is built (its fast path counts its own calls there too)."""
    global _active
    if nthreads <= 1:
        yield 1
        return
    STATE.parallel_used = True
    cy = _cython()
    if cy is not None:
        try:
            yield cy.par_enter(nthreads)
        finally:
            cy.par_exit()
        return
    with _active_lock:
        _active += 1
        share = max(1, nthreads // _active)
    try:
        yield share
    finally:
        with _active_lock:
            _active -= 1


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


def explain(entry: Activation, pass_: str, dtype, n: int) -> Explanation:
    dtype = np.dtype(dtype)
    plan = plan_for(entry, pass_, dtype)
    backend, nthreads = choose(entry, pass_, dtype, n)
    reasons = [f"plan from {_profile_source or 'defaults'}: {plan}"]
    name = get_backend()
    if entry.extra.get("user"):
        reasons.append("user-registered activations run on numba only")
    elif name != "auto":
        reasons.append(f"backend {name!r} was chosen by set_backend/config/FASTACT_BACKEND")
    else:
        wanted = plan.large if nthreads > 1 else plan.small
        if wanted != backend.name:
            reasons.append(f"auto: the plan's {wanted!r} is unavailable, fell back")
        else:
            reasons.append(f"auto: {backend.name!r} per the plan")
        if nthreads > 1 and not c_parallel():
            reasons.append(
                "the C extension is built without OpenMP (its kernels run on one thread): "
                "parallel calls run on 'numba'"
            )
    if n < plan.serial_below:
        reasons.append(f"serial: {n} < {plan.serial_below} elements, where threads pay off")
        from ._api import has_fast_path

        if backend.name == "cython" and dtype.name in DTYPES and has_fast_path(entry):
            reasons.append("a plain C-contiguous call takes the compiled fast path")
    elif STATE.forked:
        reasons.append("serial: this process was forked after OpenMP threads ran")
    elif nthreads == 1:
        reasons.append(
            f"serial: one thread in force (num_threads={get_num_threads()}, from "
            f"{threads_source()}, or an OpenMP limit): the plan's serial backend applies"
        )
        from ._api import has_fast_path

        if (
            backend.name == "cython"
            and plan.small == "cython"
            and not (entry.channel_param or entry.rowwise)
            and has_fast_path(entry)
            and get_num_threads() == 1
            and threads_source() != "config()"
        ):
            reasons.append("a plain C-contiguous elementwise call takes the compiled fast path")
    else:
        limit = _omp_limit()
        reasons.append(
            f"{nthreads} thread(s): num_threads={get_num_threads()} "
            f"(from {threads_source()})"
            + (f", lowered to {limit} by an OpenMP limit (threadpoolctl)" if limit else "")
            + "; shared with other Python threads running parallel kernels"
        )
        from ._api import has_fast_path

        elementwise = not (entry.channel_param or entry.rowwise)
        if (
            backend.name == "cython"
            and plan.large == "cython"
            and elementwise
            and dtype.name in DTYPES
            and has_fast_path(entry)
            and threads_source() != "config()"
        ):
            reasons.append(
                "a plain C-contiguous call takes the compiled fast path, which runs the "
                "OpenMP driver from C"
            )
    if backend.name == "cython":
        b = backend.describe()
        reasons.append(f"C extension: {b['compiler']}; OpenMP: {b['openmp']}; SIMD: {b['simd']}")
    return Explanation(entry.name, pass_, dtype.name, n, backend.name, nthreads, tuple(reasons))
