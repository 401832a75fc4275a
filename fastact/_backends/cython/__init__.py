"""The Cython backend: generated C loops driven by OpenMP ``prange``."""

from __future__ import annotations

from ...table import TABLE, Activation
from . import _kernels

if _kernels.N_KERNELS != len(TABLE):  # pragma: no cover - stale build
    raise ImportError(
        "the compiled kernels do not match fastact/table.py; rebuild with `pip install -e .`"
    )


class CythonBackend:
    name = "cython"
    max_threads = staticmethod(_kernels.max_threads)
    set_fast_limit = staticmethod(_kernels.set_fast_limit)
    set_fast_enabled = staticmethod(_kernels.set_fast_enabled)
    set_serial_all = staticmethod(_kernels.set_serial_all)
    set_fast_parallel = staticmethod(_kernels.set_fast_parallel)
    set_fast_par_from = staticmethod(_kernels.set_fast_par_from)
    par_enter = staticmethod(_kernels.par_enter)
    par_exit = staticmethod(_kernels.par_exit)
    parallel_used = staticmethod(_kernels.parallel_used)

    def describe(self) -> dict:
        return {
            "openmp_max_threads": _kernels.max_threads(),
            "simd": "AVX-512 / AVX2 / baseline clones, chosen at load (GNU ifunc)",
        }

    def forward(self, entry: Activation, x, out, params, training, seed, nthreads):
        kind = _kernels.TRAIN_FORWARD if training else _kernels.FORWARD
        _kernels.unary(kind, entry.kernel_id, x, out, params, seed, nthreads)

    def backward(self, entry: Activation, g, s, out, params, training, seed, nthreads):
        kind = _kernels.TRAIN_BACKWARD if training else _kernels.BACKWARD
        _kernels.binary(kind, entry.kernel_id, g, s, out, params, seed, nthreads)

    def rowwise_forward(self, entry, x, out, rows, rowlen, nthreads):
        _kernels.rowwise(_kernels.FORWARD, entry.kernel_id, x, None, out, rows, rowlen, nthreads)

    def rowwise_backward(self, entry, g, s, out, rows, rowlen, nthreads):
        _kernels.rowwise(_kernels.BACKWARD, entry.kernel_id, g, s, out, rows, rowlen, nthreads)

    def channel_forward(self, entry, x, out, weight, outer, channels, inner, nthreads):
        _kernels.channel_forward(entry.kernel_id, x, out, weight, outer, channels, inner, nthreads)

    def channel_backward(self, entry, g, s, out, weight, outer, channels, inner, nthreads):
        return _kernels.channel_backward(
            entry.kernel_id, g, s, out, weight, outer, channels, inner, nthreads
        )


BACKEND = CythonBackend()
