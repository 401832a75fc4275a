"""The Numba backend: kernels generated from the activation table, JIT-compiled lazily.

Every kernel is a serial ``njit(nogil=True, error_model="numpy")`` loop over a
range of flat buffers, generated from the table's formulas by
:mod:`fastact._codegen.numba_kernels` (no ``fastmath``: inf/NaN behave as in
C, and nothing is contracted, so results round as the Cython backend's).  A
call below the parallel threshold (``nthreads == 1``) runs the kernel
directly: the serial twin, a fraction of a microsecond, never touching the
thread pool.  A larger call goes through an ``njit(parallel=True,
nogil=True)`` driver that cuts the array into one chunk per thread (``prange``)
and calls the kernel, passed as a first-class function, on each chunk: the
same chunks as the OpenMP driver of the Cython backend.

Nothing compiles at import.  A kernel is compiled (or loaded from the disk
cache, see :mod:`._store`) the first time it is needed; ``describe()`` says
how many are.

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
import warnings

import numba
import numpy as np
from numba import types

from ..._codegen import numba_kernels as gen
from ..._math.functions import HELPERS
from ...table import Activation
from ._store import Store

_FLOAT = {"f32": types.float32, "f64": types.float64}
_NP = {"f32": np.float32, "f64": np.float64}
_JIT = {"nogil": True, "error_model": "numpy"}
_MAX_THREADS = int(numba.config.NUMBA_NUM_THREADS)
_NOPARAMS = np.zeros(1)
_NOPARAMS.flags.writeable = False


def _signatures(sfx: str) -> dict[str, object]:
    """Numba signatures of the kernels and drivers for float type ``sfx``."""
    F = _FLOAT[sfx]
    R = types.Array(F, 1, "C", readonly=True)
    A = types.Array(F, 1, "C")
    P = types.Array(types.float64, 1, "C", readonly=True)
    A64 = types.Array(types.float64, 1, "C")
    i8, u8, b1, void = types.int64, types.uint64, types.boolean, types.void
    unary = void(R, A, P, i8, u8, i8, i8)
    binary = void(R, R, A, P, i8, u8, i8, i8)
    pgrad = void(R, R, P, i8, A64, i8, i8, i8)
    rfwd = void(R, A, P, i8, i8, i8)
    rbwd = void(R, R, A, P, i8, i8, i8)
    FU, FB, FP = types.FunctionType(unary), types.FunctionType(binary), types.FunctionType(pgrad)
    FRF, FRB = types.FunctionType(rfwd), types.FunctionType(rbwd)
    sigs = {kind: unary for kind in gen.UNARY}
    sigs.update({kind: binary for kind in gen.BINARY})
    sigs.update({kind: pgrad for kind in gen.PGRAD})
    sigs.update(rfwd=rfwd, rbwd=rbwd)
    drivers = {
        "unary": void(FU, R, A, P, u8, i8),
        "binary": void(FB, R, R, A, P, u8, i8),
        "channel_forward": void(FU, R, A, P, i8, i8, i8, i8, b1),
        "channel_backward": void(FB, FP, R, R, A, P, A64, i8, i8, i8, i8, b1, i8),
        "rowwise_forward": void(FRF, R, A, P, i8, i8, i8),
        "rowwise_backward": void(FRB, R, R, A, P, i8, i8, i8),
    }
    for name, sig in drivers.items():
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


def _n_chunks(n: int, nthreads: int) -> int:
    """As the Cython driver: one chunk per thread, none under MIN_CHUNK elements."""
    if nthreads <= 1:
        return 1
    return min(nthreads, (n + gen.MIN_CHUNK - 1) // gen.MIN_CHUNK)


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
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: RUNTIME.after_fork_in_child())


class NumbaBackend:
    name = "numba"

    def __init__(self) -> None:
        tag = f"numba-{numba.__version__}-py{sys.version_info[0]}{sys.version_info[1]}"
        self.store = Store(tag)
        self._kernels: dict[tuple[str, str, str], object] = {}
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

    def _jit(self, fn, sig, cacheable: bool, **options):
        import time

        t0 = time.perf_counter()
        try:
            if cacheable:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", numba.NumbaWarning)
                        return numba.njit(sig, cache=True, **_JIT, **options)(fn)
                except (RuntimeError, OSError):
                    pass  # no cache locator / unwritable after all: compile without
            return numba.njit(sig, **_JIT, **options)(fn)
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
        return self.store.load(f"_fastact_nb_{entry.name}_{sfx}_{gen.digest(source)}", source)

    def kernel(self, entry: Activation, kind: str, sfx: str):
        """The compiled kernel ``kind`` of ``entry`` for ``sfx`` ("f32"/"f64"), compiling it."""
        key = (entry.name, kind, sfx)
        k = self._kernels.get(key)
        if k is not None:
            return k
        with self._build_lock:
            k = self._kernels.get(key)
            if k is None:
                mod, cacheable = self._entry_module(entry, sfx)
                fn = getattr(mod, f"_fa_{kind}", None)
                if fn is None:
                    raise ValueError(f"{entry.name} has no {kind!r} kernel")
                k = self._jit(fn, self._sig(sfx, kind), cacheable)
                self._kernels[key] = k
        return k

    def _driver(self, name: str, sfx: str):
        key = (name, sfx)
        d = self._drivers.get(key)
        if d is not None:
            return d
        with self._build_lock:
            d = self._drivers.get(key)
            if d is None:
                source = gen.drivers_module(sfx)
                mod, cacheable = self.store.load(
                    f"_fastact_nb_drivers_{sfx}_{gen.digest(source)}", source
                )
                parallel = name.startswith("par_")
                if parallel:
                    RUNTIME.start()  # before compiling: compiling may start the pool
                d = self._jit(
                    getattr(mod, f"_fa_{name}"), self._sig(sfx, name), cacheable, parallel=parallel
                )
                self._drivers[key] = d
        return d

    def compile(self, entry: Activation, dtypes=("f32", "f64"), parallel: bool = False) -> None:
        """Compile (or load from the cache) every kernel of ``entry`` now."""
        for sfx in dtypes:
            for kind in gen.kinds_of(entry) if not entry.extra.get("user") else ("fwd", "bwd"):
                self.kernel(entry, kind, sfx)
            if parallel:
                for name in gen.DRIVER_NAMES:
                    self._driver(f"par_{name}", sfx)

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

    def _parallel(self, name: str, sfx: str, nthreads: int, *args) -> bool:
        """Run driver ``par_<name>`` on ``nthreads`` threads; False: run serially instead."""
        if RUNTIME.forked:
            return False
        drv = self._driver(f"par_{name}", sfx)
        workqueue = RUNTIME.layer == "workqueue"
        if workqueue and not RUNTIME.pool_lock.acquire(blocking=False):
            return False
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
        return True

    def forward(self, entry: Activation, x, out, params, training, seed, nthreads):
        sfx = _sfx(x)
        k = self.kernel(entry, "tfwd" if training else "fwd", sfx)
        xf, of, p = _flat(x), _flat(out), self._params(params)
        n = xf.size
        nch = _n_chunks(n, nthreads)
        if nch <= 1 or not self._parallel("unary", sfx, nch, k, xf, of, p, seed, nch):
            k(xf, of, p, 0, seed, 0, n)

    def backward(self, entry: Activation, g, s, out, params, training, seed, nthreads):
        sfx = _sfx(g)
        k = self.kernel(entry, "tbwd" if training else "bwd", sfx)
        gf, sf, of, p = _flat(g), _flat(s), _flat(out), self._params(params)
        n = gf.size
        nch = _n_chunks(n, nthreads)
        if nch <= 1 or not self._parallel("binary", sfx, nch, k, gf, sf, of, p, seed, nch):
            k(gf, sf, of, p, 0, seed, 0, n)

    @staticmethod
    def _geometry(outer: int, channels: int, inner: int) -> tuple[int, int, int, bool]:
        vector = inner == 1
        rows, rowlen = (outer, channels) if vector else (outer * channels, inner)
        segs = max(1, -(-rowlen // gen.SEGMENT))
        return rows, rowlen, segs, vector

    def channel_forward(self, entry, x, out, weight, outer, channels, inner, nthreads):
        sfx = _sfx(x)
        rows, rowlen, segs, vector = self._geometry(outer, channels, inner)
        k = self.kernel(entry, "fwdv" if vector else "fwd", sfx)
        args = (k, _flat(x), _flat(out), weight, rows, rowlen, segs, channels, vector)
        if (
            nthreads <= 1
            or rows * rowlen < 2 * gen.MIN_CHUNK
            or not self._parallel("channel_forward", sfx, nthreads, *args)
        ):
            self._driver("ser_channel_forward", sfx)(*args)
        return out

    def channel_backward(self, entry, g, s, out, weight, outer, channels, inner, nthreads):
        sfx = _sfx(g)
        rows, rowlen, segs, vector = self._geometry(outer, channels, inner)
        units = rows * segs
        nblocks = min(units, gen.PGRAD_BLOCKS)
        if nblocks < 1:
            return np.zeros(channels)
        kb = self.kernel(entry, "bwdv" if vector else "bwd", sfx)
        kp = self.kernel(entry, "pgradv" if vector else "pgrad", sfx)
        partial = np.zeros(nblocks * channels)
        args = (kb, kp, _flat(g), _flat(s), _flat(out), weight, partial)
        args += (rows, rowlen, segs, channels, vector, nblocks)
        if (
            nthreads <= 1
            or rows * rowlen < 2 * gen.MIN_CHUNK
            or not self._parallel("channel_backward", sfx, nthreads, *args)
        ):
            self._driver("ser_channel_backward", sfx)(*args)
        # Block partial sums reduced in block order, as the Cython driver does.
        return partial.reshape(nblocks, channels).sum(axis=0)

    def _row_chunks(self, rows: int, rowlen: int, nthreads: int) -> int:
        if nthreads <= 1 or rows * rowlen < 2 * gen.MIN_CHUNK:
            return 1
        return min(nthreads, rows)

    def rowwise_forward(self, entry, x, out, rows, rowlen, nthreads, params=()):
        """Row by row (rows of ``rowlen`` contiguous elements): reductions, then the formula."""
        sfx = _sfx(x)
        k = self.kernel(entry, "rfwd", sfx)
        xf, of, p = _flat(x), _flat(out), self._params(tuple(params))
        nch = self._row_chunks(rows, rowlen, nthreads)
        if nch <= 1 or not self._parallel(
            "rowwise_forward", sfx, nch, k, xf, of, p, rowlen, rows, nch
        ):
            k(xf, of, p, rowlen, 0, rows)
        return out

    def rowwise_backward(self, entry, g, s, out, rows, rowlen, nthreads, params=()):
        sfx = _sfx(g)
        k = self.kernel(entry, "rbwd", sfx)
        gf, sf, of, p = _flat(g), _flat(s), _flat(out), self._params(tuple(params))
        nch = self._row_chunks(rows, rowlen, nthreads)
        if nch <= 1 or not self._parallel(
            "rowwise_backward", sfx, nch, k, gf, sf, of, p, rowlen, rows, nch
        ):
            k(gf, sf, of, p, rowlen, 0, rows)
        return out

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
