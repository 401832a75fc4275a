"""``python -m fastact tune``: measure where threads and which backend pay off, here.

For every activation, pass and dtype it times each available compiled
backend, serial and with all threads, on sizes from 2^10 to 2^22, and writes
the resulting plans (see :mod:`fastact._profile`) to the user's cache
directory, where ``auto`` dispatch picks them up.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time

import numpy as np

from . import _backends, _dispatch, _profile
from ._config import get_num_threads
from ._profile import Plan
from .table import TABLE, Activation

SIZES = tuple(2**k for k in range(10, 23, 2))
QUICK_SIZES = tuple(2**k for k in range(12, 21, 4))
# Parallel must win by this factor before a plan switches to it.
MARGIN = 0.9


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="print the plans, do not save")
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    parser.add_argument("--activation", action="append", help="only these (repeatable)")
    parser.add_argument("--output", help="where to save (default: the user cache dir)")


class Kernel:
    """One (entry, pass, dtype) callable on any backend with a thread count."""

    def __init__(self, entry: Activation, pass_: str, dtype, n: int):
        rng = np.random.default_rng(0)
        self.entry, self.pass_ = entry, pass_
        x = rng.normal(0, 2, n).astype(dtype)
        self.x, self.g, self.out = x, rng.normal(size=n).astype(dtype), np.empty_like(x)
        self.params = tuple(float(v) for v in _scalar_params(entry))
        self.w = np.array([0.25])

    def __call__(self, backend, nthreads: int) -> None:
        e, x, g, out = self.entry, self.x, self.g, self.out
        if e.rowwise:
            rows, rowlen = x.size // 64, 64
            if self.pass_ == "forward":
                backend.rowwise_forward(e, x, out, rows, rowlen, nthreads)
            else:
                backend.rowwise_backward(e, g, x, out, rows, rowlen, nthreads)
        elif e.channel_param:
            if self.pass_ == "forward":
                backend.channel_forward(e, x, out, self.w, 1, 1, x.size, nthreads)
            else:
                backend.channel_backward(e, g, x, out, self.w, 1, 1, x.size, nthreads)
        elif self.pass_ == "forward":
            backend.forward(e, x, out, self.params, False, 0, nthreads)
        else:
            backend.backward(e, g, np.abs(x), out, self.params, False, 0, nthreads)


def _scalar_params(entry: Activation) -> list:
    values = []
    for p in entry.scalar_params:
        v = entry.example_params[p.name]
        values.append(p.choices.index(v) if p.choices else v)
    return values


def best_time(fn, repeats: int, budget: float = 0.05) -> float:
    """Best wall time of fn() over repeats, each looping to ~budget/repeats seconds."""
    fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    number = max(1, int(budget / repeats / one))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def measure(entry, pass_, dtype, sizes, backends, threads, repeats):
    """{(backend, nthreads): [seconds per size]}"""
    times: dict[tuple[str, int], list[float]] = {}
    for n in sizes:
        k = Kernel(entry, pass_, dtype, n)
        for name in backends:
            b = _backends.get(name)
            for t in sorted({1, threads}):
                fn = functools.partial(k, b, t)
                times.setdefault((name, t), []).append(best_time(fn, repeats))
    return times


def _prefer(candidates: dict[str, list[float]], default: str) -> str:
    """``default`` unless another backend is faster by the margin at most sizes."""
    if default not in candidates:
        return min(candidates, key=lambda b: sorted(candidates[b])[len(candidates[b]) // 2])
    best = default
    for name, ts in candidates.items():
        wins = sum(t < MARGIN * d for t, d in zip(ts, candidates[default]))
        if name != default and wins > len(ts) // 2:
            best = name
    return best


def derive(times: dict, sizes) -> Plan:
    """The plan the timings call for (Cython unless another backend clearly wins)."""
    serial = {b: ts for (b, t), ts in times.items() if t == 1}
    parallel = {b: ts for (b, t), ts in times.items() if t > 1}
    small = _prefer(serial, "cython")
    if not parallel:
        return Plan(serial_below=_profile.NEVER, small=small, large=small)
    large = _prefer(parallel, "cython")
    best_serial = [min(ts[i] for ts in serial.values()) for i in range(len(sizes))]
    best_par = parallel[large]
    serial_below = _profile.NEVER
    # the first size from which parallel wins at every larger size
    for i in range(len(sizes)):
        if all(best_par[j] < MARGIN * best_serial[j] for j in range(i, len(sizes))):
            # switch halfway (geometrically) between the last losing and first winning size
            serial_below = sizes[i] if i == 0 else int((sizes[i - 1] * sizes[i]) ** 0.5)
            break
    return Plan(serial_below=serial_below, small=small, large=large)


def _progress(done: int, total: int, label: str) -> None:
    width = 30
    fill = int(width * done / total)
    sys.stderr.write(f"\r[{'#' * fill}{'.' * (width - fill)}] {done}/{total} {label:<40}")
    sys.stderr.flush()


def tune(names=None, quick=False, progress=True) -> dict[str, Plan]:
    sizes = QUICK_SIZES if quick else SIZES
    repeats = 3 if quick else 5
    threads = get_num_threads()
    backends = [b for b in ("cython", "numba") if b in _backends.available()]
    entries = [e for e in TABLE if names is None or e.name in names]
    jobs = [(e, p, d) for e in entries for p in _dispatch.PASSES for d in _dispatch.DTYPES]
    plans = {}
    for i, (e, p, d) in enumerate(jobs):
        if progress:
            _progress(i, len(jobs), f"{e.name} {p} {d}")
        times = measure(e, p, np.dtype(d), sizes, backends, threads, repeats)
        plans[_profile.key(e.name, p, d)] = derive(times, sizes)
    if progress:
        _progress(len(jobs), len(jobs), "done")
        sys.stderr.write("\n")
    return plans


def format_plans(plans: dict[str, Plan]) -> str:
    rows = [("activation/pass/dtype", "serial below", "serial on", "parallel on")]
    for k, p in plans.items():
        below = "never parallel" if p.serial_below >= _profile.NEVER else str(p.serial_below)
        rows.append((k, below, p.small, p.large))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)


def run(args: argparse.Namespace) -> int:
    if args.activation:
        unknown = sorted(set(args.activation) - {e.name for e in TABLE})
        if unknown:
            print(f"unknown activation(s): {', '.join(unknown)}", file=sys.stderr)
            return 2
    print(f"tuning with {get_num_threads()} thread(s), backends {_backends.available()}")
    plans = tune(args.activation, quick=args.quick)
    print(format_plans(plans))
    if args.dry_run:
        print("dry run: nothing saved")
        return 0
    target = _profile.Path(args.output) if args.output else None
    if args.activation:
        # keep the plans of the activations not measured this time
        old, _ = _profile.load(target)
        plans = {**old, **plans}
    path = _profile.save(plans, target)
    print(f"saved {path}")
    _dispatch.load_profile(path)
    return 0
