"""The call policy: which backend and how many threads run one call, and why.

One function, :func:`decide`, makes the decision for a call of the general
path (``fastact._api``), and :func:`explain` prints that same decision with
its reasons.  ``auto`` follows the dispatch profile (:mod:`fastact._profile`):
per activation, pass and dtype, a backend for serial calls, a size below
which calls stay serial, and a backend for parallel calls.  The thread count
is the configured one, lowered by a ``threadpoolctl.threadpool_limits`` (seen
through OpenMP's per-thread ``omp_get_max_threads``), shared between Python
threads that run parallel kernels at the same time (so a thread pool does not
start threads x cores OpenMP workers), and 1 in a child forked after OpenMP
ran.

Plain calls on the Cython backend are decided in C, before any Python runs,
by the compiled fast path (``fastact._backends.cython._kernels.fast_*``):
serial below the plan's size, and for elementwise entries the OpenMP driver
above it.  Serial calls on the Numba backend (chosen, or the plan's serial
backend) take the same path: it calls Numba's compiled kernel by its
address, once the Numba backend has compiled it; so do the parallel
calls on the Numba backend that the fast path takes (elementwise, rowwise,
per-channel forwards), on the OpenMP driver's chunks, blocks of rows or units.  The fast path reads the
decision from one table, :class:`FastPolicy`, built here from the same plans
and settings and pushed whenever they change; the compiled ``fast_threads``
answers what it decides for a size, and explain reports that answer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from . import _backends, _config, _half, _profile
from ._config import OVERRIDE, STATE, get_backend, get_num_threads, threads_source
from ._profile import Plan
from .table import TABLE, Activation

AUTO_ORDER = ("cython", "numba", "numpy")
PASSES = ("forward", "backward")
DTYPES = ("float32", "float64")
# Pass names accepted by explain: the bench prints fwd/bwd.
PASS_NAMES = {"forward": "forward", "fwd": "forward", "backward": "backward", "bwd": "backward"}

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


# --- plans -------------------------------------------------------------------

_USER = Plan(small="numba", large="numba")
# (name, pass, np.dtype) -> Plan, filled from the profile's string keys
_by_dtype: dict[tuple[str, str, np.dtype], Plan] = {}


def cost_class(entry: Activation, pass_: str) -> Literal["cheap", "transcendental"]:
    """Whether a pass costs a few flops an element (memory-bound) or more: the
    table's cost class of the pass (``Activation.cost_of``)."""
    return "cheap" if entry.cost_of(pass_) == "cheap" else "transcendental"


_defaults: dict[tuple[str, str, int], Plan] = {}


def default_plan(entry: Activation, pass_: str, dtype) -> Plan:
    """The shipped plan: cheap (memory-bound) passes go parallel later.

    A kernel of a few flops an element moves memory at the speed of a copy on
    one core, so threads pay off only on large arrays (a limit in bytes: the
    element size of ``dtype`` counts); a transcendental one is compute-bound
    and gains from a second core much earlier.
    """
    size = np.dtype(dtype).itemsize
    key = (entry.name, pass_, size)
    plan = _defaults.get(key)
    if plan is None:
        cheap = cost_class(entry, pass_) == "cheap"
        if cheap:
            below = _profile.CHEAP_SERIAL_BELOW_BYTES // max(size, 4)
        else:
            below = _profile.DEFAULT_SERIAL_BELOW
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
    if plan is None and _half.is_half(dtype):  # 16-bit runs float32's kernels: its plan
        plan = _by_dtype.get((entry.name, pass_, _half.FLOAT32))
    plan = plan if plan is not None else default_plan(entry, pass_, dtype)
    if plan.large == "cython" and not c_parallel():
        # C kernels built without OpenMP run on one thread: Numba's run in parallel
        plan = _numba_large.setdefault(plan, dataclasses.replace(plan, large="numba"))
    return plan


def load_profile(path=None) -> str:
    """(Re)load the dispatch profile and push the fast path's table from it.

    Also records the OpenMP thread count of the importing thread, against
    which a later ``threadpoolctl`` limit is recognised.
    """
    global _plans, _profile_source
    _omp_limit()
    _plans, _profile_source = _profile.load(path)
    _by_dtype.clear()
    for key, plan in _plans.items():
        name, pass_, dtype = key.split("/")
        try:
            _by_dtype[(name, pass_, _half.dtype_named(dtype))] = plan
        except ImportError:  # a bfloat16 plan without ml_dtypes: never used
            continue
    _ROUTES.clear()
    push()
    return _profile_source


def profile_source() -> str:
    return _profile_source


# --- threads -------------------------------------------------------------------

_OMP_DEFAULT: list[int] = []
_active_lock = threading.Lock()
_active = 0  # parallel kernel calls running now, over all Python threads (no Cython)


def _omp_default() -> int | None:
    """The OpenMP thread count of the process when fastact first looked (None without Cython)."""
    _omp_limit()
    return _OMP_DEFAULT[0] if _OMP_DEFAULT else None


def _omp_limit() -> int | None:
    """Threads allowed by the OpenMP setting of the calling thread, if lowered."""
    cy = _cython()
    if cy is None:
        return None
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


# --- the decision ------------------------------------------------------------


def decide(entry: Activation, pass_: str, dtype, n: int, reasons: list[str] | None = None):
    """(backend, nthreads) for one call of ``n`` elements on the general path.

    With a ``reasons`` list, the reason of each choice is appended to it.
    """
    plan = plan_for(entry, pass_, dtype)
    parallel = n >= plan.serial_below
    nthreads = _threads() if parallel else 1
    if reasons is not None:
        reasons.append(f"plan from {_profile_source or 'defaults'}: {plan}")
        reasons.append(_threads_reason(plan, n, parallel, nthreads))
    name = get_backend()
    if entry.extra.get("user"):
        chosen = "numba"
        if reasons is not None:
            reasons.append("user-registered activations run on numba only")
    elif name != "auto":
        chosen = name
        if reasons is not None:
            reasons.append(f"backend {name!r} was chosen by set_backend/config/FASTACT_BACKEND")
    else:
        # with one thread in force, the plan's serial backend is the one that applies
        side = "parallel" if nthreads > 1 else "serial"
        wanted = plan.large if nthreads > 1 else plan.small
        chosen = _fallback(wanted)
        if reasons is not None:
            reasons.append(
                f"auto: {chosen!r}, the plan's backend for {side} calls"
                if chosen == wanted
                else f"auto: the plan's {side} backend {wanted!r} is unavailable, fell back"
            )
            if nthreads > 1 and not c_parallel():
                reasons.append(
                    "the C extension is built without OpenMP (its kernels run on one thread): "
                    "parallel calls run on 'numba'"
                )
    return _backends.get(chosen), nthreads


_half_backends: dict[str, _half.HalfBackend] = {}


def choose(entry: Activation, pass_: str, dtype, n: int):
    """:func:`decide` for the general path: a 16-bit array's backend runs its float32
    kernels on it (:class:`fastact._half.HalfBackend`)."""
    backend, nthreads = decide(entry, pass_, dtype, n)
    if _half.is_half(dtype):
        wrapped = _half_backends.get(backend.name)
        if wrapped is None or wrapped.inner is not backend:
            wrapped = _half_backends[backend.name] = _half.HalfBackend(backend)
        backend = wrapped
    return backend, nthreads


def _threads_reason(plan: Plan, n: int, parallel: bool, nthreads: int) -> str:
    if not parallel:
        return f"serial: {n} < {plan.serial_below} elements, where threads pay off"
    if STATE.forked:
        return "serial: this process was forked after OpenMP threads ran"
    limit = _omp_limit()
    source = f"num_threads={get_num_threads()} (from {threads_source()})" + (
        f", lowered to {limit} by an OpenMP limit (threadpoolctl)" if limit else ""
    )
    if nthreads > 1:
        return f"{nthreads} threads: {source}; shared with other Python threads running parallel kernels"
    return f"serial: one thread in force, {source}"


# --- the compiled fast path's table ------------------------------------------

KINDS = ("elementwise", "rowwise", "channel")


def kind_of(entry: Activation) -> str:
    """The kernel kind of an entry: elementwise, rowwise (softmax) or channel (prelu)."""
    if entry.rowwise:
        return "rowwise"
    if entry.channel_param:
        return "channel"
    return "elementwise"


@dataclass(frozen=True)
class FastPolicy:
    """What the compiled fast path decides alone, as plain tables.

    ``limits[0, pass, dtype, kid]``: below this size a plain call runs a
    serial kernel (0: never, the general path decides): Cython's, or Numba's
    where ``numba[pass, dtype, kid]`` has bit :data:`NUMBA_SERIAL`;
    ``limits[1, pass, dtype, kid]``: from this size a plain elementwise call
    runs the OpenMP driver (-1: never), on Cython's kernels, or Numba's where
    ``numba`` has bit :data:`NUMBA_PARALLEL`.  These are the tables of the calls
    outside config blocks that choose a backend; ``enabled``: the backend set
    is one the fast path runs (auto, cython or numba).  ``block_backends``:
    while such blocks are open (in any thread), the fast backends, whose tables
    ``block_limits[j]`` and ``block_numba[j]`` the calls inside a block of
    ``block_backends[j]`` follow (the fast path reads the block of the calling
    context; a call in a block of another backend takes the general path).
    ``serial_all``: one thread in force everywhere, so elementwise calls are
    serial at every size; ``par_threads``: the thread count in force everywhere
    (0 while a config block sets one, or in a forked child); ``block_threads``:
    while config blocks set thread counts, the count of the calls outside them
    (the fast path reads a block's own count from its context; 0: those calls
    take the general path); ``omp_default``: the OpenMP thread count against
    which a lower ``threadpoolctl`` limit of the calling thread is recognised.
    """

    enabled: bool
    serial_all: bool
    par_threads: int
    omp_default: int
    limits: np.ndarray = field(repr=False)
    numba: np.ndarray = field(repr=False)
    block_threads: int = 0
    block_backends: tuple[str, ...] = ()
    block_limits: np.ndarray | None = field(default=None, repr=False)
    block_numba: np.ndarray | None = field(default=None, repr=False)

    def route(self, backend: str | None) -> tuple[np.ndarray, np.ndarray] | None:
        """(limits, numba) of a call in a config block of ``backend`` (None:
        outside blocks that choose one); None where such a call takes the general
        path."""
        if backend is None:
            return (self.limits, self.numba) if self.enabled else None
        if backend not in self.block_backends:
            return None
        j = self.block_backends.index(backend)
        return self.block_limits[j], self.block_numba[j]


# The backends whose choice the fast path can follow, and the kinds of entry
# whose serial calls it runs on Numba's kernels.
FAST_BACKENDS = ("auto", "cython", "numba")
NUMBA_FAST_KINDS = ("elementwise", "rowwise", "channel")
# The bits of a cell of FastPolicy.numba, as the compiled fast path reads them: its
# serial calls, and its parallel calls, run Numba's kernels.
NUMBA_SERIAL, NUMBA_PARALLEL = 1, 2
_ROUTES: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def _fast_routes(backend: str) -> tuple[np.ndarray, np.ndarray]:
    """(limits, numba) of FastPolicy when ``backend`` is in force, from the
    plans (computed again when a profile loads).

    auto: below the plan's size, the plan's serial backend (Cython, or Numba);
    cython: Cython's serial kernel where it is the plan's serial backend; both:
    the OpenMP driver above the plan's size where Cython is the plan's parallel
    backend.  numba: Numba's serial kernel below the plan's size; above it, Numba's
    kernels on the OpenMP driver (where the C extension has OpenMP).  auto runs Numba's
    kernels on the OpenMP driver too where Numba is the plan's parallel backend.
    """
    routes = _ROUTES.get(backend)
    if routes is not None:
        return routes
    limits = np.empty((2, len(PASSES), len(DTYPES), len(TABLE)), np.int64)
    numba = np.zeros((len(PASSES), len(DTYPES), len(TABLE)), np.uint8)
    par_numba_ok = c_parallel()
    for kid, entry in enumerate(TABLE):
        nb_kind = kind_of(entry) in NUMBA_FAST_KINDS
        for p, pass_ in enumerate(PASSES):
            for d, dtype in enumerate(DTYPES):
                plan = plan_for(entry, pass_, np.dtype(dtype))
                small, large = plan.small, plan.large
                if backend == "numba":
                    small = large = "numba"
                elif backend == "cython":  # others: the general path
                    small = "cython" if small == "cython" else ""
                    large = "cython" if large == "cython" else ""
                elif small != "numba" or importlib.util.find_spec("numba") is None:
                    small = _fallback(small)  # (without importing Numba here)
                serial = small == "cython" or (small == "numba" and nb_kind)
                par = large == "cython" or (large == "numba" and par_numba_ok)
                limits[0, p, d, kid] = plan.serial_below if serial else 0
                limits[1, p, d, kid] = plan.serial_below if par else -1
                numba[p, d, kid] = (NUMBA_SERIAL if serial and small == "numba" else 0) | (
                    NUMBA_PARALLEL if par and large == "numba" else 0
                )
    limits.flags.writeable = numba.flags.writeable = False
    _ROUTES[backend] = (limits, numba)
    return limits, numba


def _block_routes() -> tuple[np.ndarray, np.ndarray]:
    """The routes of FAST_BACKENDS, stacked in their order (FastPolicy.block_limits,
    block_numba)."""
    key = "|".join(FAST_BACKENDS)
    routes = _ROUTES.get(key)
    if routes is None:
        each = [_fast_routes(b) for b in FAST_BACKENDS]
        routes = (np.stack([r[0] for r in each]), np.stack([r[1] for r in each]))
        routes[0].flags.writeable = routes[1].flags.writeable = False
        _ROUTES[key] = routes
    return routes


def fast_policy() -> FastPolicy:
    """The fast path's tables for the plans and settings in force now: the backend
    set's, and while config blocks choose backends, each fast backend's for the
    calls inside them."""
    enabled = STATE.backend in FAST_BACKENDS
    limits, numba = _fast_routes(STATE.backend if enabled else "auto")
    blocks = tuple(FAST_BACKENDS) if STATE.backend_blocks else ()
    block_limits, block_numba = _block_routes() if blocks else (None, None)
    steady = STATE.thread_blocks == 0 and not STATE.forked
    blocked = STATE.thread_blocks > 0 and not STATE.forked
    default = _omp_default() or 0
    return FastPolicy(
        enabled=enabled,
        serial_all=steady and STATE.num_threads == 1,
        par_threads=STATE.num_threads if steady and default else 0,
        omp_default=default,
        limits=limits.copy(),
        numba=numba.copy(),
        block_threads=STATE.num_threads if blocked and default else 0,
        block_backends=blocks,
        block_limits=block_limits,
        block_numba=block_numba,
    )


_pushed: list[FastPolicy] = []


def push(policy: FastPolicy | None = None) -> None:
    """Hand the compiled fast path its table (the one for now by default)."""
    cy = _cython()
    if cy is None:
        return
    p = policy if policy is not None else fast_policy()
    cy.set_policy(
        p.enabled,
        p.serial_all,
        p.par_threads,
        p.omp_default,
        p.limits,
        p.numba,
        p.block_threads,
        OVERRIDE,
        p.block_backends,
        p.block_limits,
        p.block_numba,
        # bias calls run the epilogue's Cython kernels where Numba is the plan's
        # serial backend (the same bits), but not where Numba is the backend asked for
        (STATE.backend == "numba", *(b == "numba" for b in p.block_backends)),
    )
    _pushed[:] = [p]


def pushed() -> FastPolicy | None:
    """The table the compiled fast path reads now (None without it)."""
    return _pushed[0] if _pushed else None


def fast_threads(entry: Activation, pass_: str, dtype, n: int) -> int:
    """What the compiled fast path does with a plain call: 0 (the general path), 1
    (serial) or its thread count (the OpenMP driver from C)."""
    cy = _cython()
    dtype = np.dtype(dtype)
    kid = entry.kernel_id
    if _half.is_half(dtype):
        return _fast_threads_half(entry, pass_, n)
    if cy is None or kid is None or dtype.name not in DTYPES:
        return 0
    # per-channel calls take the fast path at every size, as elementwise ones (the
    # backward adds its blocks' partial sums in block order, as the general path does)
    kind = KINDS.index("elementwise" if kind_of(entry) == "channel" else kind_of(entry))
    return cy.fast_threads(kind, PASSES.index(pass_), DTYPES.index(dtype.name), kid, n)


def _fast_threads_half(entry: Activation, pass_: str, n: int) -> int:
    """:func:`fast_threads` of a 16-bit call: float32's decision (but rows longer than
    ``fastact._half.NATIVE_ROW_MAX`` take the general path)."""
    if _cython() is None:
        return 0
    return fast_threads(entry, pass_, _half.FLOAT32, n)


def fast_numba(entry: Activation, pass_: str, dtype, parallel: bool = False) -> str | None:
    """Whether the compiled fast path runs the serial calls of this cell (``parallel``:
    its calls on the OpenMP driver) on Numba's kernel: None (Cython's, or the general
    path), "compiled" (its address is known), or "not compiled" (a call takes the
    general path, which compiles it)."""
    cy, policy = _cython(), pushed()
    dtype = np.dtype(dtype)
    compute = _half.compute_dtype(dtype)
    kid = entry.kernel_id
    if cy is None or policy is None or kid is None or compute.name not in DTYPES:
        return None
    p, d = PASSES.index(pass_), DTYPES.index(compute.name)
    block = OVERRIDE.get()
    route = policy.route(block[0] if block is not None else None)
    if route is None or not route[1][p, d, kid] & (NUMBA_PARALLEL if parallel else NUMBA_SERIAL):
        return None
    kind = ("rfwd", "rbwd")[p] if entry.rowwise else ("fwd", "bwd")[p]
    # an elementwise entry's 16-bit calls run the format's own kernels, which follow
    # float32's and float64's in the fast path's table
    own = _half.is_half(dtype) and kind_of(entry) == "elementwise"
    index = len(DTYPES) + _half.fmt(dtype) - 1 if own else d
    ready = cy.numba_kernel(cy.NUMBA_KINDS.index(kind), index, kid)
    return "compiled" if ready else "not compiled"


# --- explain -------------------------------------------------------------------


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
    """The decision for a call, with its reasons: the general path's, and the fast
    path's for a plain C-contiguous call where it takes the call."""
    if pass_ not in PASS_NAMES:
        raise ValueError(f"pass_ must be 'forward'/'fwd' or 'backward'/'bwd', got {pass_!r}")
    pass_ = PASS_NAMES[pass_]
    dtype = np.dtype(dtype)
    reasons: list[str] = []
    backend, nthreads = decide(entry, pass_, dtype, n, reasons)
    fast = fast_threads(entry, pass_, dtype, n)
    if fast:
        what = "serial" if fast == 1 else "which runs the OpenMP driver from C"
        numba = fast_numba(entry, pass_, dtype, parallel=fast > 1)
        if numba == "compiled":
            what += ", calling Numba's compiled kernel from C"
        elif numba is not None:
            what += (
                ", calling Numba's compiled kernel from C once a first call on the "
                "general path has compiled it"
            )
        reasons.append(f"a plain C-contiguous call takes the compiled fast path, {what}")
        if kind_of(entry) == "channel":
            reasons.append(
                f"(N, C) input, a weight per element of rows shorter than "
                f"{_cython().fast_row_run}: runs of rows sharing a tiled weight"
            )
    if _half.is_half(dtype):
        runs = "a plain call takes the compiled fast path" if fast else "the general path runs it"
        reasons.append(
            f"{dtype.name}: stored in 16 bits, computed by the float32 kernels (each element "
            f"widened exactly, each result rounded once); {runs}"
        )
    if backend.name == "cython":
        b = backend.describe()
        reasons.append(f"C extension: {b['compiler']}; OpenMP: {b['openmp']}; SIMD: {b['simd']}")
    return Explanation(entry.name, pass_, dtype.name, n, backend.name, nthreads, tuple(reasons))


def _after_fork_in_child() -> None:
    # A child forked after OpenMP threads ran cannot start a parallel region
    # (libgomp hangs, Numba's omp layer aborts): run serial kernels there.
    cy = _cython()
    if STATE.parallel_used or (cy is not None and cy.parallel_used()):
        _config.mark_forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
_config.on_change(push)
