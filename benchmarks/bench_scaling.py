"""Thread scaling of the compute-bound kernels: the speed-up at each thread count.

For every elementwise entry of the table that is not ``cheap`` (by default;
``--activation`` picks others), float32 and float64, at 10**6 and 10**7
elements, the forward on each thread count is timed interleaved with the
others (``measure_together``: a burst of load on a shared machine slows all
alike); the speed-up is the best one-thread time over the best time at that
count.  ``noise`` is the largest median / best of the cell's measurements:
near 1 on a quiet machine.

    python benchmarks/bench_scaling.py [--threads 1,2] [--activation gelu,tanh] [--min-time 0.5]
"""

from __future__ import annotations

import argparse
import functools
import os

import numpy as np

import fastact
from fastact.bench.timing import measure_together
from fastact.table import TABLE

COMPUTE_BOUND = ",".join(e.name for e in TABLE if e.cost != "cheap" and not e.rowwise)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", default="1,2", help="thread counts ('all': every core)")
    ap.add_argument("--sizes", default="1e6,1e7")
    ap.add_argument("--activation", default=COMPUTE_BOUND, help="comma-separated entries")
    ap.add_argument("--dtype", default="float32,float64")
    ap.add_argument("--backend", default="cython")
    ap.add_argument("--min-time", type=float, default=0.5, help="seconds per measurement")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = sorted({cores if t == "all" else int(t) for t in args.threads.split(",")})
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    fastact.set_backend(args.backend)
    print(f"{args.backend}, forward, {cores} cores; seconds per call at 1 thread, speed-up at")
    head = "".join(f"{t:>7}t" for t in threads[1:])
    print(f"{'activation':12}{'dtype':9}{'size':>6}{'1 thread':>11}{head}   noise")
    cells = [(n, d) for n in args.activation.split(",") for d in args.dtype.split(",")]
    for name, dtype in cells:
        fn = getattr(fastact, name)
        for n in sizes:
            x = np.random.default_rng(0).standard_normal(n).astype(dtype)
            out = np.empty_like(x)
            call = functools.partial(fn, x, out=out)
            jobs = {t: ([call], None) for t in threads}
            got = measure_together(jobs, args.min_time, fastact.set_num_threads)
            t1 = got[threads[0]].best
            ups = "".join(f"{t1 / got[t].best:8.2f}" for t in threads[1:])
            noise = max(g.median / g.best for g in got.values())
            print(f"{name:12}{dtype:9}{n:>6.0e}{t1:11.2e}{ups}   {noise:5.2f}")


if __name__ == "__main__":
    main()
