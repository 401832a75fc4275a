"""In-place forward and backward allocate nothing.

Arrays of LARGE elements (1e7; 1e5 in CI).  ``op`` is ``none`` (the
baseline: the same setup, no call), ``forward_inplace`` (``NAME(x, out=x)``),
``backward_inplace`` (``NAME_backward(g, saved, out=g)``) or
``forward_alloc`` (``NAME(x)``, a new array: the contrast).

``peakmem_call`` is the process's peak resident memory: the in-place ops
read the same as ``none`` and ``forward_alloc`` one array more.
``track_alloc_bytes`` is the peak of what tracemalloc sees during the call
(NumPy reports its buffers to tracemalloc): a few hundred bytes of Python
objects for the in-place ops (a per-channel gradient adds channels x blocks
doubles), the whole array for ``forward_alloc``.
"""

from __future__ import annotations

import tracemalloc

from .common import (
    ACTIVATIONS,
    CACHE,
    LARGE,
    SMALL,
    backward_call,
    data,
    forward_call,
    fresh_process,
    parse,
    saved_for,
    shape_for,
    use_backend,
    weight,
)

OPS = ("none", "forward_inplace", "backward_inplace", "forward_alloc")


def _calls(entry, training, x, g, w):
    """(forward in place, backward in place, forward allocating) on x and g."""
    s = saved_for(entry, training, x, w)
    return (
        forward_call(entry, training, x, x, w),
        backward_call(entry, training, g, s, g, w),
        forward_call(entry, training, x, None, w),
    )


class Memory:
    params = (ACTIVATIONS, OPS, ("float32",), ("cython", "numba"))
    param_names = ("activation", "op", "dtype", "backend")

    def setup(self, activation, op, dtype, backend):
        fresh_process()
        use_backend(backend)
        entry, training = parse(activation)
        # Warm up on copies, serial and parallel sizes: lazy imports, JIT
        # compilation and the dispatcher's caches are not the call's allocations.
        for size in (SMALL, CACHE):
            shape = shape_for(entry, size)
            x, g = data("x", dtype, shape).copy(), data("g", dtype, shape).copy()
            for call in _calls(entry, training, x, g, weight(entry, shape, dtype)):
                call()
        # Benchmarks here run once per process: work on the arrays themselves.
        shape = shape_for(entry, LARGE)
        w = weight(entry, shape, dtype)
        x, g = data("x", dtype, shape), data("g", dtype, shape)
        # Keep every call (and the saved array they hold) alive, whatever
        # the op: the baseline is then the same for all ops.
        self.calls = dict(zip(OPS[1:], _calls(entry, training, x, g, w)))
        self.call = self.calls.get(op, lambda: None)

    def peakmem_call(self, activation, op, dtype, backend):
        self.call()

    def track_alloc_bytes(self, activation, op, dtype, backend):
        tracemalloc.start()
        try:
            self.call()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    track_alloc_bytes.unit = "bytes"
