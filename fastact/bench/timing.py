"""The one timing loop of fastact's benchmarks (``bench``, ``tune``, ``benchmarks/``).

Several measurements are timed *interleaved*: in rounds, each sampling every
job in turn, so that a burst of load on a shared machine slows them alike;
the best sample of each is kept (and the median, for a noise check).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Timing:
    best: float  # seconds per call
    median: float
    samples: int
    number: int  # calls per sample


class _Timer:
    """Samples of one measurement: each sample runs ``calls`` ``number`` times.

    ``setup`` (untimed) runs before every sample: it refreshes in-place
    buffers, so that every call of a sample runs once on its own fresh copy.
    """

    def __init__(self, calls: list[Callable], setup: Callable | None):
        self.calls, self.setup = calls, setup
        self.samples: list[float] = []
        self.number = 0

    def warm_up(self) -> None:
        clock = time.perf_counter
        if self.setup is not None:
            self.setup()
        t0 = clock()
        for c in self.calls:  # JIT compilation, first touch, thread pools
            c()
        t_round = clock() - t0
        if t_round < 2e-3:  # fast calls: calibrate on a second, warm round
            if self.setup is not None:
                self.setup()
            t0 = clock()
            for c in self.calls:
                c()
            t_round = max(clock() - t0, 1e-7)
        self.number = 1 if self.setup is not None else max(1, min(10_000, int(2e-4 / t_round)))

    def sample(self, budget: float, least: int = 1) -> None:
        clock = time.perf_counter
        calls, setup, number = self.calls, self.setup, self.number
        spent, taken = 0.0, 0
        while taken < least or (spent < budget and taken < 100):
            if setup is not None:
                setup()
            t0 = clock()
            for _ in range(number):
                for c in calls:
                    c()
            dt = clock() - t0
            spent += dt
            taken += 1
            self.samples.append(dt / (number * len(calls)))

    def timing(self) -> Timing:
        return Timing(
            min(self.samples), statistics.median(self.samples), len(self.samples), self.number
        )


ROUNDS = 3


def measure_together(
    jobs: dict, min_time: float, before: Callable[[object], None] | None = None
) -> dict:
    """Time several measurements interleaved: ``ROUNDS`` rounds, each sampling every job.

    ``jobs`` maps a key to ``(calls, setup)``; ``before(key)`` runs before a
    job samples (thread settings).  Interleaving spreads each job's samples
    over the whole measurement, so a burst of load on a shared machine slows
    all of them alike instead of one; the best sample of each is kept.
    """
    timers = {k: _Timer(calls, setup) for k, (calls, setup) in jobs.items()}
    for k, t in timers.items():
        if before is not None:
            before(k)
        t.warm_up()
    for _ in range(ROUNDS):
        for k, t in timers.items():
            if before is not None:
                before(k)
            t.sample(min_time / ROUNDS, least=1)
    return {k: t.timing() for k, t in timers.items()}


def measure(calls: list[Callable], setup: Callable | None, min_time: float) -> Timing:
    """Best and median seconds per call of ``calls`` (at least ROUNDS samples)."""
    return measure_together({0: (calls, setup)}, min_time)[0]


def best_time(fn: Callable, min_time: float = 0.05) -> float:
    """Best seconds per call of ``fn()`` over about ``min_time`` seconds."""
    return measure([fn], None, min_time).best


def noticeably_faster(a: Timing, b: Timing, margin: float = 0.95) -> bool:
    """True when ``a`` beats ``b`` beyond noise: its best and its median both below
    ``margin`` times ``b``'s (interleaved samples, so load hits both alike)."""
    return a.best < margin * b.best and a.median < margin * b.median
