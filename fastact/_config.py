"""Process state: the chosen backend and thread count, and fork safety.

Precedence for the thread count: :func:`set_num_threads` (or ``config``),
then ``FASTACT_NUM_THREADS``, then ``OMP_NUM_THREADS``, then the number of
cores this process may run on.  ``FASTACT_BACKEND`` sets the initial backend.
The library never changes the process-wide OpenMP thread count: the count is
passed to each parallel region.  At import it sets the OpenMP wait policy
(a short spin, GOMP_SPINCOUNT=10000) where the user set none: :func:`apply_wait_policy`.  :func:`config` overrides apply to the
current thread (and asyncio task) only, through a context variable.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
import warnings
from collections.abc import Callable, Iterator

from . import _backends

BACKEND_CHOICES = ("auto",) + _backends.NAMES
MAX_THREADS = 1 << 16


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _env_threads(var: str) -> int | None:
    value = os.environ.get(var)
    if value is None or value.strip() == "":
        return None
    try:
        n = int(value.split(",")[0])
    except ValueError:
        warnings.warn(f"ignoring {var}={value!r}: not an integer", RuntimeWarning, stacklevel=3)
        return None
    if n < 1:
        warnings.warn(f"ignoring {var}={value!r}: must be >= 1", RuntimeWarning, stacklevel=3)
        return None
    return n


def default_num_threads() -> tuple[int, str]:
    """The thread count from the environment, and where it came from."""
    for var in ("FASTACT_NUM_THREADS", "OMP_NUM_THREADS"):
        n = _env_threads(var)
        if n is not None:
            return n, var
    return _cores(), "cores"


def _env_backend() -> str:
    value = os.environ.get("FASTACT_BACKEND", "auto").strip().lower() or "auto"
    if value not in BACKEND_CHOICES:
        warnings.warn(
            f"ignoring FASTACT_BACKEND={value!r}: choose from {', '.join(BACKEND_CHOICES)}",
            RuntimeWarning,
            stacklevel=3,
        )
        return "auto"
    return value


class _State:
    """The settings in force outside ``config`` blocks, and what runs now.

    ``backend_blocks`` counts the ``config`` blocks now open (in any thread)
    by the backend they choose, ``thread_blocks`` those that choose a thread
    count.  The compiled fast path reads a block's thread count from the
    calling context (``OVERRIDE``); for the backends it decides alone only the
    calls that every open block would run the same way, and leaves the others
    to the general path.
    """

    __slots__ = (
        "backend",
        "num_threads",
        "threads_source",
        "forked",
        "parallel_used",
        "backend_blocks",
        "thread_blocks",
    )

    def __init__(self) -> None:
        self.backend = _env_backend()
        self.num_threads, self.threads_source = default_num_threads()
        self.forked = False
        self.parallel_used = False
        self.backend_blocks: dict[str, int] = {}
        self.thread_blocks = 0


STATE = _State()
# (backend, num_threads) overrides set by ``config`` in this context, or None.
OVERRIDE: contextvars.ContextVar[tuple[str | None, int | None] | None] = contextvars.ContextVar(
    "fastact_config", default=None
)


def _check_backend(name: str) -> str:
    if not isinstance(name, str) or name.lower() not in BACKEND_CHOICES:
        raise ValueError(f"backend must be one of {', '.join(BACKEND_CHOICES)}, got {name!r}")
    name = name.lower()
    if name != "auto":
        _backends.get(name)  # ImportError with the reason when unavailable
    return name


def _check_threads(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) and not hasattr(n, "__index__"):
        raise TypeError(f"num_threads must be an integer, got {type(n).__name__}")
    n = int(n)
    if not 1 <= n <= MAX_THREADS:
        raise ValueError(f"num_threads must be between 1 and {MAX_THREADS}, got {n}")
    return n


_configs_lock = threading.Lock()
_listeners: list[Callable[[], None]] = []


def on_change(listener: Callable[[], None]) -> None:
    """Call ``listener`` (with no arguments) after every change of the settings."""
    _listeners.append(listener)


def _changed() -> None:
    for listener in _listeners:
        listener()


def set_backend(name: str) -> None:
    """Use backend ``name`` ("auto", "cython", "numba" or "numpy") from now on."""
    name = _check_backend(name)
    with _configs_lock:
        STATE.backend = name
        _changed()


def get_backend() -> str:
    """The backend in force in this context ("auto" lets the dispatcher choose)."""
    o = OVERRIDE.get()
    if o is not None and o[0] is not None:
        return o[0]
    return STATE.backend


def set_num_threads(n: int) -> None:
    """Use at most ``n`` threads per kernel call, on every backend."""
    n = _check_threads(n)
    with _configs_lock:
        STATE.num_threads = n
        STATE.threads_source = "set_num_threads"
        _changed()


def threads_source() -> str:
    """Where the thread count in force comes from."""
    o = OVERRIDE.get()
    if o is not None and o[1] is not None:
        return "config()"
    return STATE.threads_source


def get_num_threads() -> int:
    """The most threads a kernel call may use in this context."""
    o = OVERRIDE.get()
    if o is not None and o[1] is not None:
        return o[1]
    return STATE.num_threads


@contextlib.contextmanager
def config(*, backend: str | None = None, num_threads: int | None = None) -> Iterator[None]:
    """Temporarily choose the backend and/or thread count, in this context only.

    >>> with fastact.config(backend="numpy", num_threads=1):
    ...     y = fastact.sigmoid(x)

    The previous settings come back when the block ends, also on error.
    """
    b = _check_backend(backend) if backend is not None else None
    n = _check_threads(num_threads) if num_threads is not None else None
    prev = OVERRIDE.get()
    if prev is not None:
        b = b if b is not None else prev[0]
        n = n if n is not None else prev[1]
    token = OVERRIDE.set((b, n))
    threads = n is not None
    if b is not None or threads:
        # another thread's calls take the general path meanwhile: still right
        with _configs_lock:
            if b is not None:
                STATE.backend_blocks[b] = STATE.backend_blocks.get(b, 0) + 1
            STATE.thread_blocks += threads
            _changed()
    try:
        yield
    finally:
        OVERRIDE.reset(token)
        if b is not None or threads:
            with _configs_lock:
                if b is not None:
                    STATE.backend_blocks[b] -= 1
                    if not STATE.backend_blocks[b]:
                        del STATE.backend_blocks[b]
                STATE.thread_blocks -= threads
                _changed()


def mark_forked() -> None:
    """This process is a child forked after OpenMP threads ran: serial from now on."""
    with _configs_lock:
        STATE.forked = True
        _changed()


# --- the OpenMP runtime's wait policy ----------------------------------------------
#
# After a parallel region libgomp's workers spin for GOMP_SPINCOUNT iterations
# (300,000 when OMP_WAIT_POLICY is unset: milliseconds) before they sleep.  On a
# machine whose cores are shared with other work, a spinning worker holds a core
# that the thread it waits for (or the caller's next, serial, calls) needs: there
# the median 2-thread call was 5-50x slower than with short spinning.  Passive
# waiting (no spin) costs a wake-up per parallel region instead, which on a
# quiet machine made a 2-thread call on 10^5 elements 4.6x slower; 10,000
# iterations keep the quiet machine's speed and most of the busy machine's
# (docs/performance.md).  libgomp reads the setting once, when it loads (with
# the compiled backend or Numba's omp layer; other libgomp copies loaded later
# in the process and child processes see it too): fastact sets it at import,
# only where the user set neither variable (FASTACT_OMP_WAIT=runtime keeps the
# runtime's default).
WAIT_POLICY = ("GOMP_SPINCOUNT", "10000")
_WAIT_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
_wait_state = "not applied"


def apply_wait_policy() -> None:
    """Set GOMP_SPINCOUNT for the OpenMP runtime, unless the user chose a wait policy."""
    global _wait_state
    chosen = [v for v in _WAIT_VARS if os.environ.get(v, "").strip()]
    if chosen:
        _wait_state = ", ".join(f"{v}={os.environ[v]}" for v in chosen) + " (the user's)"
    elif os.environ.get("FASTACT_OMP_WAIT", "").strip().lower() == "runtime":
        _wait_state = "the runtime's default (FASTACT_OMP_WAIT=runtime)"
    else:
        var, value = WAIT_POLICY
        os.environ[var] = value
        _wait_state = f"{var}={value} (fastact's)"


def wait_policy() -> str:
    """The OpenMP wait policy in force, and whose it is."""
    return _wait_state


apply_wait_policy()  # at import: before the compiled backend or Numba loads a runtime
