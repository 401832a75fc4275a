"""fastact's kernels through the public API, for every activation of the table.

pass: ``forward`` writes a preallocated ``out=``; ``forward_inplace`` is
``NAME(x, out=x)`` (the input is restored before every timed call, so values
never drift); ``backward`` is ``NAME_backward(g, saved, out=preallocated)``.
Sizes: small (1e3: call overhead), cache-sized (1e5) and memory-sized (1e7).
backend ``auto`` is what a user gets; ``numba`` is skipped where it is absent.
"""

from __future__ import annotations

from .common import ACTIVATIONS, BACKENDS, KERNEL_DTYPES, PASSES, SIZES, TIMER, prepared, tune


class Kernels:
    params = (ACTIVATIONS, PASSES, KERNEL_DTYPES, SIZES, BACKENDS)
    param_names = ("activation", "pass", "dtype", "size", "backend")
    timer = TIMER

    def setup(self, activation, pass_, dtype, size, backend):
        self.case = prepared(activation, pass_, dtype, size, backend)
        tune(self, size, inplace=pass_.endswith("_inplace"))

    def time_call(self, activation, pass_, dtype, size, backend):
        self.case.call()
