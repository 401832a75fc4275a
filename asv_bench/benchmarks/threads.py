"""Scaling with the thread count, for a few kernels and the streaming limit.

Forward with ``out=`` on float32 arrays of LARGE elements (memory-sized,
1e7; 1e5 in CI), backend ``auto``, ``fastact.set_num_threads(n)``.  Thread
counts above this machine's cores are skipped (oversubscription measures
the scheduler, not the kernel).
"""

from __future__ import annotations

import os

import fastact

from .common import LARGE, TIMER, prepared, tune
from .limits import stream_call

# One kernel of each cost class (the first in table order): memory-bound,
# one transcendental, two, a special function.
_FIRST_OF_COST: dict[str, str] = {}
for _name in fastact.activations():
    _FIRST_OF_COST.setdefault(fastact.activation(_name).cost, _name)
KERNELS = ("stream",) + tuple(_FIRST_OF_COST.values())
THREADS = (1, 2, 4, 8)


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class Threads:
    params = (KERNELS, THREADS)
    param_names = ("kernel", "threads")
    timer = TIMER

    def setup(self, kernel, threads):
        if threads > cores():
            raise NotImplementedError(f"{threads} threads on {cores()} cores")
        if kernel == "stream":
            self.call = stream_call("forward", "float32", LARGE, threads)
        else:
            fastact.set_num_threads(threads)
            self.call = prepared(kernel, "forward", "float32", LARGE, "auto").call
        tune(self, LARGE, inplace=False)

    def time_forward(self, kernel, threads):
        self.call()
