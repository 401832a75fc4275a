"""The Cython backend: generated C loops driven by OpenMP ``prange``.

The extension is optional: without it (no C compiler at install time) or when
it was built from other sources than the installed ones (a stale build), this
module raises ImportError and the Numba and NumPy backends run everything.
"""

from __future__ import annotations

import ctypes
import importlib.util
import warnings

import numpy as np

from ..._codegen.source_key import source_key
from ...table import TABLE, Activation

REBUILD = (
    "rebuild it with `pip install -e .` (or `python setup.py build_ext --inplace` "
    "in a source checkout)"
)

try:
    from . import _kernels
except ImportError as exc:
    if importlib.util.find_spec(f"{__name__}._kernels") is None:
        why = (
            "the C extension is not compiled in this installation (it needs a C compiler "
            "when fastact is installed)"
        )
    else:
        why = f"the C extension does not load ({exc}); {REBUILD}"
    raise ImportError(f"{why}; the Numba and NumPy backends run every activation") from exc


def _stale() -> str | None:
    """Why the compiled extension does not match the installed sources, or None."""
    built = getattr(_kernels, "SOURCE_KEY", None)
    if built is None or _kernels.N_KERNELS != len(TABLE):
        return "it predates this version of fastact"
    try:
        current = source_key()
    except OSError:  # sources not installed: nothing to compare with
        return None
    if built != current:
        return (
            f"it was built from other sources (key {built}) than the installed table, "
            f"math and kernel generator (key {current})"
        )
    return None


_why = _stale()
if _why is not None:
    _msg = f"fastact's compiled C extension is stale: {_why}; {REBUILD}"
    if not getattr(_kernels, "stale_warned", False):  # once: each import tries again
        _kernels.stale_warned = True
        warnings.warn(_msg + ". Falling back to the Numba and NumPy backends.", stacklevel=2)
    raise ImportError(_msg)

# A build without OpenMP: its C kernels run on one thread, and the OpenMP limit
# (threadpoolctl) is read from the runtime of Numba's OpenMP threading layer.
HAS_OPENMP: bool = _kernels.HAS_OPENMP
_runtime: list = []


def _process_openmp_max_threads() -> int:
    """omp_get_max_threads() of the OpenMP runtime Numba runs on (0: none)."""
    if not _runtime:
        _runtime.append(_numba_openmp())
    lib = _runtime[0]
    return lib.omp_get_max_threads() if lib is not None else 0


def _numba_openmp():
    """Start Numba's threading layer; ctypes handle on its OpenMP runtime (None if not omp).

    Starting the omp layer sets the calling thread's OpenMP thread count, as in
    fastact._backends.numba: the count is put back.
    """
    try:
        import numba
    except ImportError:  # pragma: no cover - a core dependency
        return None
    lib = before = None
    try:
        from numba.np.ufunc import omppool  # loads the runtime, starts nothing

        lib = ctypes.CDLL(omppool.__file__)
        lib.omp_get_max_threads.restype = ctypes.c_int
        lib.omp_set_num_threads.argtypes = [ctypes.c_int]
        before = lib.omp_get_max_threads()
    except (ImportError, OSError, AttributeError):
        lib = None
    try:
        numba.get_num_threads()  # starts the threading layer
        layer = numba.threading_layer()
    except (ImportError, ValueError, RuntimeError):
        layer = None
    if lib is not None and lib.omp_get_max_threads() != before:
        lib.omp_set_num_threads(before)
    return lib if layer == "omp" else None


def build_info() -> dict:
    """Which build of the C extension this is, and what it chose for this CPU at load:
    the 16-bit conversions (instructions or C) and the size from which the memory-bound
    kernels store by non-temporal stores (0: never)."""
    return {
        "openmp": HAS_OPENMP,
        "simd_clones": _kernels.SIMD_CLONES,
        "compiler": _kernels.COMPILER,
        "source_key": _kernels.SOURCE_KEY,
        "float16_conversion": "F16C" if _kernels.half_has_f16c() else "C",
        "bfloat16_conversion": "AVX512_BF16" if _kernels.half_has_bf16v4() else "C",
        "nt_min_bytes": _kernels.nt_min_bytes(),
    }


class CythonBackend:
    name = "cython"
    # threads of a parallel call: OpenMP's in an OpenMP build, else one
    parallel = HAS_OPENMP
    max_threads = staticmethod(_kernels.max_threads if HAS_OPENMP else _process_openmp_max_threads)
    set_policy = staticmethod(_kernels.set_policy)
    fast_threads = staticmethod(_kernels.fast_threads)
    # rows of a weight per element shorter than this leave prelu's large forwards to
    # the general path (which tiles the weight)
    fast_row_run = _kernels.FAST_ROW_RUN
    par_enter = staticmethod(_kernels.par_enter)
    par_exit = staticmethod(_kernels.par_exit)
    parallel_used = staticmethod(_kernels.parallel_used)
    numba_kernel = staticmethod(_kernels.numba_kernel)
    NUMBA_KINDS = _kernels.NUMBA_KINDS

    def describe(self) -> dict:
        info = build_info()
        return {
            "openmp": (
                f"yes, {_kernels.max_threads()} threads"
                if HAS_OPENMP
                else "no: the C kernels run on one thread (Numba runs the parallel calls)"
            ),
            "simd": info["simd_clones"],
            "compiler": info["compiler"],
        }

    def forward(
        self,
        entry: Activation,
        x: np.ndarray,
        out: np.ndarray,
        params: tuple[float, ...],
        training: bool,
        seed: int,
        nthreads: int,
    ) -> None:
        kind = _kernels.TRAIN_FORWARD if training else _kernels.FORWARD
        _kernels.unary(kind, entry.kernel_id, x, out, params, seed, nthreads)

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
    ) -> None:
        kind = _kernels.TRAIN_BACKWARD if training else _kernels.BACKWARD
        _kernels.binary(kind, entry.kernel_id, g, s, out, params, seed, nthreads)

    def rowwise_forward(
        self,
        entry: Activation,
        x: np.ndarray,
        out: np.ndarray,
        rows: int,
        rowlen: int,
        nthreads: int,
    ) -> None:
        _kernels.rowwise(_kernels.FORWARD, entry.kernel_id, x, None, out, rows, rowlen, nthreads)

    def rowwise_backward(
        self,
        entry: Activation,
        g: np.ndarray,
        s: np.ndarray,
        out: np.ndarray,
        rows: int,
        rowlen: int,
        nthreads: int,
    ) -> None:
        _kernels.rowwise(_kernels.BACKWARD, entry.kernel_id, g, s, out, rows, rowlen, nthreads)

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
    ) -> None:
        _kernels.channel_forward(entry.kernel_id, x, out, weight, outer, channels, inner, nthreads)

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
    ) -> np.ndarray:
        return _kernels.channel_backward(
            entry.kernel_id, g, s, out, weight, outer, channels, inner, nthreads
        )

    # -- bias epilogues (fastact._api.epilogue) ---------------------------------

    def bias_forward(self, entry, x, bias, out, call):
        kind = _kernels.TRAIN_FORWARD if call.training else _kernels.FORWARD
        _kernels.bias_forward(
            kind, entry.kernel_id, x, bias, out, call.channels, call.inner, call.params,
            call.seed, call.nthreads,
        )  # fmt: skip

    def bias_backward(self, entry, g, s, bias, out, partial, call):
        kind = _kernels.TRAIN_BACKWARD if call.training else _kernels.BACKWARD
        _kernels.bias_backward(
            kind, entry.kernel_id, g, s, bias, out, call.channels, call.inner, call.recompute,
            call.params, partial, call.seed, call.nthreads,
        )  # fmt: skip

    # 16-bit storage (fastact._half): flat uint16 views of format ``fmt``, every
    # format (fastact._half.FORMATS) converted in the kernels.
    half_formats = frozenset((1, 2))

    def half_forward(self, fmt, entry, x, out, params, training, seed, nthreads) -> None:
        kind = _kernels.TRAIN_FORWARD if training else _kernels.FORWARD
        _kernels.half_unary(fmt, kind, entry.kernel_id, x, out, params, seed, nthreads)

    def half_backward(self, fmt, entry, g, s, out, params, training, seed, nthreads) -> None:
        kind = _kernels.TRAIN_BACKWARD if training else _kernels.BACKWARD
        _kernels.half_binary(fmt, kind, entry.kernel_id, g, s, out, params, seed, nthreads)

    def half_rowwise(self, fmt, entry, a, b, out, rows, rowlen, nthreads) -> None:
        kind = _kernels.FORWARD if b is None else _kernels.BACKWARD
        _kernels.half_rowwise(fmt, kind, entry.kernel_id, a, b, out, rows, rowlen, nthreads)

    def half_channel_forward(self, fmt, entry, x, out, weight, outer, channels, inner, nthreads):
        _kernels.half_channel_forward(
            fmt, entry.kernel_id, x, out, weight, outer, channels, inner, nthreads
        )

    def half_channel_backward(
        self, fmt, entry, g, s, out, weight, outer, channels, inner, nthreads
    ) -> np.ndarray:
        return _kernels.half_channel_backward(
            fmt, entry.kernel_id, g, s, out, weight, outer, channels, inner, nthreads
        )

    half_convert = staticmethod(_kernels.half_convert)


BACKEND = CythonBackend()
