"""The streaming limit: the fastest any elementwise kernel can be.

``_kernels.stream`` moves the bytes of a forward (read x, write out) or of a
backward (read g and the saved array, write out) with the chunking and
thread count of the real kernels, and computes nothing.  A kernel's time
divided by this one, same cell, is how far it is from memory speed.
"""

from __future__ import annotations

import functools

import numpy as np

import fastact

from .common import DTYPES, SIZES, TIMER, data, fresh_process, tune


def stream_kernel():
    """The Cython streaming kernel; NotImplementedError where this build has none."""
    try:
        from fastact._backends.cython import _kernels
    except ImportError as exc:
        raise NotImplementedError(f"no Cython backend: {exc}") from None
    fn = getattr(_kernels, "stream", None)
    if fn is None:
        raise NotImplementedError("this commit has no streaming kernel")
    return fn


@functools.lru_cache
def dispatch_threads(size: int) -> int:
    """Threads the dispatcher gives a float32 forward on ``size`` elements."""
    x = np.empty(size, np.float32)
    return fastact.explain(fastact.activations()[0], x).num_threads


_CALLS: dict[tuple, functools.partial] = {}


def stream_call(pass_: str, dtype: str, size: int, nthreads: int):
    """The bound streaming call, made (and run once) on first use in this process.

    Its output buffer is kept: a timed call never pays for fresh pages.
    """
    key = (pass_, dtype, size, nthreads)
    call = _CALLS.get(key)
    if call is None:
        fresh_process()
        stream = stream_kernel()
        a = data("x", dtype, (size,))
        b = data("g", dtype, (size,)) if pass_ == "backward" else None
        call = _CALLS[key] = functools.partial(stream, a, b, np.empty_like(a), nthreads)
        call()  # touches the output and starts the thread pool, outside the timing
    return call


class Stream:
    params = (("forward", "backward"), DTYPES, SIZES)
    param_names = ("pass", "dtype", "size")
    timer = TIMER

    def setup(self, pass_, dtype, size):
        self.call = stream_call(pass_, dtype, size, dispatch_threads(size))
        tune(self, size, inplace=False)

    def time_stream(self, pass_, dtype, size):
        self.call()
