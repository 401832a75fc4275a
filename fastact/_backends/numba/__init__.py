"""The Numba backend: kernels generated from the activation table, JIT-compiled lazily.

Every kernel is a serial loop over ``range(start, stop)`` of flat buffers,
generated from the table's formulas by :mod:`fastact._codegen.numba_kernels`
and compiled by Numba as a C-ABI ``cfunc`` (nopython, ``error_model="numpy"``,
no ``fastmath``: inf/NaN behave as in C and nothing is contracted, so results
round as the Cython backend's, bit for bit on this machine).  What the
kernels call besides math and NumPy is real Python in :mod:`.intrinsics`.
Kernels are called by address from a few drivers (:mod:`.drivers`), compiled
per float type:

* ``njit(nogil=True)`` serial drivers: a call below the parallel threshold
  (``nthreads == 1``) is one dispatcher call and one C call (the serial twin,
  well under a microsecond), and never touches the thread pool;
* ``njit(parallel=True, nogil=True)`` drivers that cut the array into one
  chunk per thread with ``prange`` and call the kernel on each: the same
  chunks, blocks and reduction order as the OpenMP driver of the Cython
  backend.

This split keeps compilation cheap (a kernel is a serial function, ~0.1-0.3 s;
the parallel machinery is compiled once per float type, not once per entry)
and calls cheap (Numba's first-class function objects cost tens of
microseconds to unbox per call; an address costs nothing).

Each elementwise kernel has an in-place twin (``fwd_ip``, ``bwd_ip``...,
see :data:`fastact._codegen.numba_kernels.INPLACE`) that reads and writes one
buffer: a call whose ``out`` is exactly the input (``x``, or ``grad_output``
in a backward) runs it, because with two equal pointers LLVM's runtime alias
check fails and the loop runs scalar (10-300x slower).  Other overlaps never
reach the backend: the API gives them a temporary.

Nothing compiles at import.  A kernel is compiled (or loaded from the disk
cache, see :mod:`._store`) the first time it is needed; ``describe()`` says
how many are.  Where the Cython extension is built, the address of each
elementwise and rowwise kernel of a table entry is also handed to its
compiled fast path, which then runs small serial calls on this backend
without a Python frame (:func:`_publish`); without the extension every call
comes through :class:`NumbaBackend`.

Threads and processes:

* the thread count of a call is set with ``numba.set_num_threads`` (local
  to the calling thread) around the driver, then restored;
* Numba's OpenMP layer sets the OpenMP thread count of the thread that starts
  its pool (to ``NUMBA_NUM_THREADS``); that is the ``omp_get_max_threads``
  the dispatcher reads to honour threadpoolctl, shared with the Cython
  extension's libgomp, so the backend puts the old value back;
* the ``workqueue`` layer aborts the process when two threads enter it at
  once: under it, a call that finds the pool busy runs the serial kernel;
* in a child forked after the pool started, every call runs serially.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import time
import warnings
from functools import partial

import numba
import numpy as np
from numba import types

from ..._codegen import numba_kernels as gen
from ..._codegen.dialect import MIN_CHUNK, PGRAD_BLOCKS
from ..._math.functions import HELPERS
from ...table import Activation
from . import drivers
from ._store import Store

_FLOAT = {"f32": types.float32, "f64": types.float64}
_MAX_THREADS = int(numba.config.NUMBA_NUM_THREADS)
_NOPARAMS = np.zeros(1)
_NOPARAMS.flags.writeable = False


def _signatures(sfx: str) -> dict[str, object]:
    """Numba signatures of the kernels (C ABI, pointers) and drivers (arrays) for ``sfx``
    (a 16-bit format of ``gen.HALF_SFX``: its kernels take the uint16 patterns)."""
    F = _FLOAT.get(sfx, types.float32)
    PT = types.CPointer(types.uint16 if sfx in gen.HALF_SFX else F)
    PD = types.CPointer(types.float64)
    R = types.Array(F, 1, "C", readonly=True)
    A = types.Array(F, 1, "C")
    P = types.Array(types.float64, 1, "C", readonly=True)
    A64 = types.Array(types.float64, 1, "C")
    H = types.Array(types.uint16, 1, "C", readonly=True)
    H16 = types.Array(types.uint16, 1, "C")
    i8, u8, b1, void, fn = types.int64, types.uint64, types.boolean, types.void, types.intp
    sigs = {kind: void(PT, PT, PD, i8, u8, i8, i8) for kind in gen.UNARY}
    sigs.update({kind: void(PT, PT, PT, PD, i8, u8, i8, i8) for kind in gen.BINARY})
    sigs.update({kind: void(PT, PT, PD, i8, PD, i8, i8, i8) for kind in gen.PGRAD})
    sigs.update(rfwd=void(PT, PT, PD, i8, i8, i8), rbwd=void(PT, PT, PT, PD, i8, i8, i8))
    sigs.update({ip: sigs[kind] for kind, ip in gen.INPLACE.items()})
    driver_sigs = {
        "unary": void(fn, R, A, P, u8, i8),
        "binary": void(fn, R, R, A, P, u8, i8),
        "channel_forward": void(fn, R, A, P, i8, i8, i8, i8, b1),
        "channel_backward": void(fn, fn, R, R, A, P, A64, i8, i8, i8, i8, b1, i8),
        "rowwise_forward": void(fn, R, A, P, i8, i8, i8),
        "rowwise_backward": void(fn, R, R, A, P, i8, i8, i8),
        "bias_unary": void(fn, R, R, A, P, u8, i8, i8, i8),
        "bias_binary": void(fn, R, R, R, A, P, u8, i8, i8, b1, A64, i8),
        "half_unary": void(fn, H, H16, P, u8, i8, i8, b1),
        "half_binary": void(fn, H, H, H16, P, u8, i8, i8, b1),
        "half_rowwise_forward": void(fn, H, H16, P, i8, i8, i8, i8, b1),
        "half_rowwise_backward": void(fn, H, H, H16, P, i8, i8, i8, i8, b1),
        "half_channel_forward": void(fn, H, H16, P, i8, i8, i8, i8, b1),
        "half_channel_backward": void(fn, fn, H, H, H16, P, A64, i8, i8, i8, i8, b1, i8),
    }
    for name, sig in driver_sigs.items():
        sigs[f"par_{name}"] = sig
        sigs[f"ser_{name}"] = sig
    return sigs


def _sfx(a: np.ndarray) -> str:
    return "f32" if a.itemsize == 4 else "f64"


def _flat(a: np.ndarray) -> np.ndarray:
    """The 1-d view of a contiguous array (C or Fortran order) in memory order."""
    if a.ndim == 1:
        return a
    if a.flags.c_contiguous:
        return a.reshape(-1)
    return a.T.reshape(-1)


def _same_buffer(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``b`` is exactly ``a``'s memory (same data pointer and strides).

    The callers pass arrays of one shape and dtype.  Then an elementwise
    kernel may run its in-place twin (one pointer, vectorized); any other
    overlap is the caller's business (the API hands overlapping ``out=`` a
    temporary).  Cheap when it is not: two arrays that own their memory never
    share it.
    """
    if a is b:
        return True
    if a.base is None and b.base is None:
        return False
    return a.strides == b.strides and np.may_share_memory(a, b) and a.ctypes.data == b.ctypes.data


def _n_chunks(n: int, nthreads: int) -> int:
    """As the Cython driver: one chunk per thread, none under MIN_CHUNK elements."""
    if nthreads <= 1:
        return 1
    return min(nthreads, (n + MIN_CHUNK - 1) // MIN_CHUNK)


def _omp_library():
    """ctypes handle on the libgomp of the Cython extension (None if not loaded)."""
    try:
        from ..cython import _kernels
    except ImportError:
        return None
    try:
        lib = ctypes.CDLL(_kernels.__file__)
        lib.omp_get_max_threads.restype = ctypes.c_int
        lib.omp_set_num_threads.argtypes = [ctypes.c_int]
        return lib
    except (OSError, AttributeError):  # pragma: no cover - no OpenMP in the extension
        return None


class _Runtime:
    """Process state of Numba's thread pool (module-level singleton)."""

    def __init__(self) -> None:
        self.started = False
        self.layer: str | None = None
        self.forked = False
        self.start_lock = threading.Lock()
        self.pool_lock = threading.Lock()  # held while in the pool under workqueue

    def start(self) -> None:
        """Start Numba's pool; leave the caller's OpenMP thread count as it was."""
        if self.started:
            return
        with self.start_lock:
            if self.started:
                return
            lib = _omp_library()
            before = lib.omp_get_max_threads() if lib is not None else None
            try:
                numba.get_num_threads()  # launches the threading layer
                self.layer = numba.threading_layer()
            finally:
                if lib is not None and lib.omp_get_max_threads() != before:
                    lib.omp_set_num_threads(before)
            self.started = True

    def after_fork_in_child(self) -> None:
        self.start_lock = threading.Lock()
        self.pool_lock = threading.Lock()
        if self.started:
            # The pool's threads did not survive the fork: never enter it here.
            self.forked = True


RUNTIME = _Runtime()


_FAST: list = []
# The fast path's dtype indices (fastact._dispatch.DTYPES, then the 16-bit formats:
# set_numba_kernel), and fastact._half's formats' kernels (gen.HALF_SFX).
_FAST_DTYPES = {"f32": 0, "f64": 1, "f16": 2, "bf16": 3}
_HALF_SFX = {1: "f16", 2: "bf16"}


def _fast_table():
    """The Cython extension's table of Numba kernels (None without a usable extension)."""
    if not _FAST:
        try:
            from ..cython import _kernels
        except ImportError:
            _kernels = None
        _FAST.append(_kernels if hasattr(_kernels, "set_numba_kernel") else None)
    return _FAST[0]


def _publish(entry: Activation, kind: str, sfx: str, addr: int) -> None:
    """Hand the compiled fast path the address of a table entry's kernel (0: forget it)."""
    table = _fast_table()
    di = _FAST_DTYPES.get(sfx)
    if table is None or di is None or entry.kernel_id is None or kind not in table.NUMBA_KINDS:
        return
    table.set_numba_kernel(table.NUMBA_KINDS.index(kind), di, entry.kernel_id, addr)


class NumbaBackend:
    name = "numba"

    def __init__(self) -> None:
        tag = f"numba-{numba.__version__}-py{sys.version_info[0]}{sys.version_info[1]}"
        self.store = Store(tag)
        self._kernels: dict[tuple[str, str, str], object] = {}
        self._addr: dict[tuple[str, str, str], int] = {}
        self._ser_unary: dict[str, object] = {}  # the serial twins' drivers, by float type
        self._ser_binary: dict[str, object] = {}
        self._drivers: dict[tuple[str, str], object] = {}
        self._sigs: dict[str, dict] = {}
        self._build_lock = threading.RLock()
        self._params_cache: dict[tuple, np.ndarray] = {}
        self.compile_seconds = 0.0

    # -- compiling -------------------------------------------------------------

    def _sig(self, sfx: str, kind: str):
        sigs = self._sigs.get(sfx)
        if sigs is None:
            sigs = self._sigs[sfx] = _signatures(sfx)
        return sigs[kind]

    def _jit(self, fn, sig, cacheable: bool, kernel: bool = False, **options):
        """``cfunc`` (a kernel, C ABI) or ``njit`` (a driver) with the disk cache if possible."""
        t0 = time.perf_counter()
        if kernel:
            make = partial(numba.cfunc, sig, error_model="numpy", **options)
        else:
            make = partial(numba.njit, sig, nogil=True, error_model="numpy", **options)
        try:
            if cacheable:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", numba.NumbaWarning)
                        return make(cache=True)(fn)
                except (RuntimeError, OSError):
                    pass  # no cache locator / unwritable after all: compile without
            return make()(fn)
        finally:
            self.compile_seconds += time.perf_counter() - t0

    def _entry_module(self, entry: Activation, sfx: str):
        if entry.extra.get("user"):
            source = gen.user_module(entry, sfx)
            name = f"_fastact_nb_user_{entry.name}_{sfx}_{gen.digest(source)}"
            inject = {
                "_fa_user_forward": entry.extra["numba_forward"],
                "_fa_user_backward": entry.extra["numba_backward"],
            }
            return self.store.load(name, source, inject)
        source = gen.entry_module(entry, sfx, HELPERS)
        stem = f"_fastact_nb_{entry.name}_{sfx}"
        return self.store.load(f"{stem}_{gen.digest(source)}", source, stem=stem)

    def kernel(self, entry: Activation, kind: str, sfx: str) -> int:
        """Address of kernel ``kind`` of ``entry`` for ``sfx`` ("f32"/"f64"), compiling it."""
        key = (entry.name, kind, sfx)
        addr = self._addr.get(key)
        if addr is not None:
            return addr
        with self._build_lock:
            addr = self._addr.get(key)
            if addr is None:
                mod, cacheable = self._entry_module(entry, sfx)
                fn = getattr(mod, f"_fa_{kind}", None)
                if fn is None:
                    raise ValueError(f"{entry.name} has no {kind!r} kernel")
                k = self._jit(fn, self._sig(sfx, kind), cacheable, kernel=True)
                self._kernels[key] = k  # keeps the code (and so the address) alive
                addr = self._addr[key] = k.address
                _publish(entry, kind, sfx, addr)
        return addr

    def _driver(self, name: str, sfx: str):
        key = (name, sfx)
        d = self._drivers.get(key)
        if d is not None:
            return d
        with self._build_lock:
            d = self._drivers.get(key)
            if d is None:
                mode, _, fname = name.partition("_")
                source = gen.drivers_module(mode)
                stem = f"_fastact_nb_drivers_{mode}"
                mod, cacheable = self.store.load(f"{stem}_{gen.digest(source)}", source, stem=stem)
                parallel = mode == "par"
                if parallel:
                    RUNTIME.start()  # before compiling: compiling may start the pool
                d = self._jit(
                    getattr(mod, fname), self._sig(sfx, name), cacheable, parallel=parallel
                )
                self._drivers[key] = d
        return d

    def forget(self, name: str) -> None:
        """Drop the compiled kernels of activation ``name`` (a failed ``register``)."""
        with self._build_lock:
            for key in [k for k in self._addr if k[0] == name]:
                del self._addr[key]
                self._kernels.pop(key, None)

    def compile(self, entry: Activation, dtypes=("f32", "f64"), parallel: bool = False) -> None:
        """Compile (or load from the cache) every kernel of ``entry`` now, and the drivers
        (``dtypes``: "f32", "f64" and the 16-bit formats of ``gen.HALF_SFX``, whose
        drivers are float32's)."""
        user = entry.extra.get("user")
        for sfx in dtypes:
            half = sfx in gen.HALF_SFX
            if half and user:
                continue  # a registered activation's 16-bit calls run its float32 kernels
            for kind in gen.USER_KINDS if user else gen.kinds_of(entry, sfx):
                self.kernel(entry, kind, sfx)
            for name in drivers.NAMES:
                if half or (name.startswith("half_") and sfx != "f32"):
                    continue
                self._driver(f"ser_{name}", sfx)
                if parallel:
                    self._driver(f"par_{name}", sfx)

    def warmup(
        self, entries=None, dtypes=("f32", "f64", *gen.HALF_SFX), parallel: bool = True
    ) -> float:
        """Compile (or load from the disk cache) every kernel of ``entries`` (default: the
        table) and the drivers, so that no later call waits; returns the seconds spent."""
        from ...table import TABLE

        t0 = time.perf_counter()
        for entry in TABLE if entries is None else entries:
            self.compile(entry, dtypes, parallel)
        return time.perf_counter() - t0

    # -- running ----------------------------------------------------------------

    def _params(self, params: tuple) -> np.ndarray:
        if not params:
            return _NOPARAMS
        a = self._params_cache.get(params)
        if a is None or 0.0 in params:  # 0.0 == -0.0: never share those
            a = np.array(params, dtype=np.float64)
            a.flags.writeable = False
            if len(self._params_cache) > 256:
                self._params_cache.clear()
            self._params_cache[params] = a
        return a

    def _run(self, name: str, sfx: str, nthreads: int, *args) -> None:
        """Driver ``name`` on ``nthreads`` threads, or its serial twin."""
        if nthreads > 1 and not RUNTIME.forked:
            key = ("par_" + name, sfx)
            drv = self._drivers.get(key) or self._driver(*key)
            workqueue = RUNTIME.layer == "workqueue"
            # workqueue aborts the process when entered twice at once: never wait,
            # run serially when another thread is in the pool.
            if not workqueue or RUNTIME.pool_lock.acquire(blocking=False):
                try:
                    n = min(nthreads, _MAX_THREADS)
                    old = numba.get_num_threads()
                    if n != old:
                        numba.set_num_threads(n)
                    try:
                        drv(*args)
                    finally:
                        if n != old:
                            numba.set_num_threads(old)
                finally:
                    if workqueue:
                        RUNTIME.pool_lock.release()
                return
        key = ("ser_" + name, sfx)
        (self._drivers.get(key) or self._driver(*key))(*args)

    def forward(self, entry: Activation, x, out, params, training, seed, nthreads):
        self._elementwise("unary", entry, (x, out), params, training, seed, nthreads)

    def backward(self, entry: Activation, g, s, out, params, training, seed, nthreads):
        self._elementwise("binary", entry, (g, s, out), params, training, seed, nthreads)

    def _elementwise(self, driver: str, entry, arrays, params, training, seed, nthreads):
        """The ``unary`` (x, out) or ``binary`` (g, s, out) kernel of ``entry`` over
        ``arrays``: in place where out is the first array, chunked over threads."""
        first = arrays[0]
        sfx = "f32" if first.itemsize == 4 else "f64"
        kind = ("t" if training else "") + ("fwd" if driver == "unary" else "bwd")
        if _same_buffer(first, arrays[-1]):
            kind += "_ip"
        k = self._addr.get((entry.name, kind, sfx)) or self.kernel(entry, kind, sfx)
        p = self._params(params) if params else _NOPARAMS
        if first.ndim != 1:
            arrays = tuple(_flat(a) for a in arrays)
        if nthreads > 1 and first.size > MIN_CHUNK:
            nch = _n_chunks(first.size, nthreads)
            self._run(driver, sfx, nch, k, *arrays, p, seed, nch)
            return
        serial = self._ser_unary if driver == "unary" else self._ser_binary
        drv = serial.get(sfx) or self._serial(driver, sfx)
        drv(k, *arrays, p, seed, 1)

    # 16-bit storage (fastact._half's formats: float16 1, bfloat16 2): flat uint16 views.
    half_formats = frozenset((1, 2))

    def half_forward(self, fmt, entry, x, out, params, training, seed, nthreads) -> None:
        """The float32 forward on the 16-bit patterns ``x`` (uint16, flat) of format
        ``fmt``, rounded once into ``out`` (which may be ``x``)."""
        self._half("half_unary", fmt, entry, (x, out), params, training, seed, nthreads)

    def half_backward(self, fmt, entry, g, s, out, params, training, seed, nthreads) -> None:
        """As :meth:`half_forward` for the backward of ``(g, s)``."""
        self._half("half_binary", fmt, entry, (g, s, out), params, training, seed, nthreads)

    def _half(self, driver: str, fmt: int, entry, arrays, params, training, seed, nthreads):
        """A table entry's kernel for the format (each element widened as loaded, rounded
        as stored), in place where out is the first array; a registered activation's
        float32 kernel on blocks widened into float32 buffers.  The same bits."""
        kind = ("t" if training else "") + ("fwd" if driver == "half_unary" else "bwd")
        fused = not entry.extra.get("user")
        if fused:
            sfx = _HALF_SFX[fmt]
            if _same_buffer(arrays[0], arrays[-1]):
                kind += "_ip"
        else:
            sfx = "f32"
        k = self._addr.get((entry.name, kind, sfx)) or self.kernel(entry, kind, sfx)
        p = self._params(params) if params else _NOPARAMS
        n = arrays[0].size
        nch = _n_chunks(n, nthreads) if nthreads > 1 and n > MIN_CHUNK else 1
        self._run(driver, "f32", nch, k, *arrays, p, seed, nch, fmt, fused)

    def _serial(self, name: str, sfx: str):
        drv = self._driver("ser_" + name, sfx)
        getattr(self, "_ser_" + name)[sfx] = drv
        return drv

    @staticmethod
    def _geometry(outer: int, channels: int, inner: int) -> tuple[int, int, int, bool]:
        vector = inner == 1
        rows, rowlen = (outer, channels) if vector else (outer * channels, inner)
        segs = max(1, -(-rowlen // drivers.SEGMENT))
        return rows, rowlen, segs, vector

    @staticmethod
    def _channel_threads(rows: int, rowlen: int, nthreads: int) -> int:
        return 1 if nthreads < 1 or rows * rowlen < 2 * MIN_CHUNK else nthreads

    def channel_forward(self, entry, x, out, weight, outer, channels, inner, nthreads, fmt=0):
        """``out = f(x)`` with a weight per channel; ``fmt``: x and out hold the uint16
        patterns of that 16-bit format (its kernels, on the drivers' 16-bit twins)."""
        sfx, driver = (_HALF_SFX[fmt], "half_channel_forward") if fmt else (_sfx(x), None)
        rows, rowlen, segs, vector = self._geometry(outer, channels, inner)
        kind = "fwdv" if vector else "fwd"
        k = self.kernel(entry, gen.INPLACE[kind] if _same_buffer(x, out) else kind, sfx)
        args = (k, _flat(x), _flat(out), weight, rows, rowlen, segs, channels, vector)
        threads = self._channel_threads(rows, rowlen, nthreads)
        self._run(driver or "channel_forward", "f32" if fmt else sfx, threads, *args)
        return out

    def channel_backward(self, entry, g, s, out, weight, outer, channels, inner, nthreads, fmt=0):
        """The gradient of the input into ``out`` and the weight's (float64, returned);
        ``fmt`` as for :meth:`channel_forward`."""
        sfx, driver = (_HALF_SFX[fmt], "half_channel_backward") if fmt else (_sfx(g), None)
        rows, rowlen, segs, vector = self._geometry(outer, channels, inner)
        units = rows * segs
        nblocks = min(units, PGRAD_BLOCKS)
        if nblocks < 1:
            return np.zeros(channels)
        kind = "bwdv" if vector else "bwd"
        kb = self.kernel(entry, gen.INPLACE[kind] if _same_buffer(g, out) else kind, sfx)
        kp = self.kernel(entry, "pgradv" if vector else "pgrad", sfx)
        acc = np.zeros(nblocks * channels)
        args = (kb, kp, _flat(g), _flat(s), _flat(out), weight, acc)
        args += (rows, rowlen, segs, channels, vector, nblocks)
        threads = self._channel_threads(rows, rowlen, nthreads)
        self._run(driver or "channel_backward", "f32" if fmt else sfx, threads, *args)
        # Partial sums per block, added in block order as the C extension adds them
        # (_reduce_blocks): the same bits for any thread count, and on both backends.
        return np.add.accumulate(acc.reshape(nblocks, channels), axis=0)[-1]

    @staticmethod
    def _row_chunks(rows: int, rowlen: int, nthreads: int) -> int:
        """Blocks of whole rows, as the Cython driver: results never depend on threads."""
        return min(_n_chunks(rows * rowlen, nthreads), rows)

    def rowwise_forward(self, entry, x, out, rows, rowlen, nthreads, params=()):
        """Row by row (rows of ``rowlen`` contiguous elements): reductions, then the formula."""
        sfx = _sfx(x)
        k = self.kernel(entry, gen.INPLACE["rfwd"] if _same_buffer(x, out) else "rfwd", sfx)
        nch = self._row_chunks(rows, rowlen, nthreads)
        p = self._params(tuple(params))
        self._run("rowwise_forward", sfx, nch, k, _flat(x), _flat(out), p, rowlen, rows, nch)
        return out

    def half_rowwise(self, fmt, entry, a, b, out, rows, rowlen, nthreads) -> None:
        """The float32 row kernels on 16-bit rows (uint16 patterns of format ``fmt``):
        forward ``out = f(a)`` where ``b`` is None, else the backward of ``(g=a, y=b)``;
        rounded once into ``out``, which may be ``a``."""
        kind = "rfwd" if b is None else "rbwd"
        sfx = "f32"
        fused = b is not None and gen.has_half_row_bwd(entry)  # the format's row kernel
        if fused:
            sfx = _HALF_SFX[fmt]
            if _same_buffer(a, out):
                kind += "_ip"
        k = self._addr.get((entry.name, kind, sfx)) or self.kernel(entry, kind, sfx)
        nch = self._row_chunks(rows, rowlen, nthreads)
        arrays = (a, out) if b is None else (a, b, out)
        name = "half_rowwise_forward" if b is None else "half_rowwise_backward"
        self._run(name, "f32", nch, k, *arrays, _NOPARAMS, rowlen, rows, nch, fmt, fused)

    def half_channel_forward(self, fmt, entry, x, out, weight, outer, channels, inner, nthreads):
        """:meth:`channel_forward` on 16-bit patterns of format ``fmt``."""
        self.channel_forward(entry, x, out, weight, outer, channels, inner, nthreads, fmt)

    def half_channel_backward(
        self, fmt, entry, g, s, out, weight, outer, channels, inner, nthreads
    ) -> np.ndarray:
        """:meth:`channel_backward` on 16-bit patterns of format ``fmt``."""
        return self.channel_backward(
            entry, g, s, out, weight, outer, channels, inner, nthreads, fmt
        )

    def rowwise_backward(self, entry, g, s, out, rows, rowlen, nthreads, params=()):
        sfx = _sfx(g)
        k = self.kernel(entry, gen.INPLACE["rbwd"] if _same_buffer(g, out) else "rbwd", sfx)
        nch = self._row_chunks(rows, rowlen, nthreads)
        args = (k, _flat(g), _flat(s), _flat(out), self._params(tuple(params)), rowlen, rows, nch)
        self._run("rowwise_backward", sfx, nch, *args)
        return out

    # -- bias epilogues (fastact._api.epilogue) ---------------------------------

    def bias_forward(self, entry, x, bias, out, call):
        sfx = _sfx(x)
        k = self.kernel(entry, "tfwd" if call.training else "fwd", sfx)
        p = self._params(call.params) if call.params else _NOPARAMS
        x, out = _flat(x), _flat(out)
        nch = _n_chunks(x.size, call.nthreads)
        geometry = (call.seed, call.channels, call.inner)
        self._run("bias_unary", sfx, nch, k, x, bias, out, p, *geometry, nch)

    def bias_backward(self, entry, g, s, bias, out, partial, call):
        sfx = _sfx(g)
        kind = "tbwd" if call.training else "bwd"
        # the in-place twin when out is grad_output (one pointer: it vectorizes)
        k = self.kernel(entry, gen.INPLACE[kind] if _same_buffer(g, out) else kind, sfx)
        p = self._params(call.params) if call.params else _NOPARAMS
        g, s, out = _flat(g), _flat(s), _flat(out)
        geometry = (call.seed, call.channels, call.inner, call.recompute)
        args = (k, g, s, bias, out, p, *geometry, partial.reshape(-1))
        self._run("bias_binary", sfx, call.nthreads, *args, partial.shape[0])

    # -- information ------------------------------------------------------------

    def max_threads(self) -> int:
        """The most threads a Numba kernel can use (``NUMBA_NUM_THREADS``)."""
        return _MAX_THREADS

    def describe(self) -> dict:
        """What ``python -m fastact info`` shows about this backend."""
        if RUNTIME.started:
            layer = RUNTIME.layer
        else:
            layer = f"not started yet (configured: {numba.config.THREADING_LAYER})"
        info = {
            "numba": numba.__version__,
            "threading_layer": layer,
            "max_threads": _MAX_THREADS,
            "compiled_kernels": len(self._kernels),
            "compiled_drivers": len(self._drivers),
            "compile_seconds": round(self.compile_seconds, 3),
        }
        info.update(self.store.describe())
        if RUNTIME.forked:
            info["forked"] = "serial kernels only (forked after the thread pool started)"
        return info


BACKEND = NumbaBackend()


def _after_fork_in_child() -> None:
    # Locks held by other threads at the fork stay held in the child: renew them.
    RUNTIME.after_fork_in_child()
    BACKEND._build_lock = threading.RLock()
    BACKEND.store._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
