"""Benchmark fastact.regions: patterns vs the bare matrix products, exact counts.

    python benchmarks/bench_regions.py                 # 10^6 points, 2-64-64-64
    python benchmarks/bench_regions.py --points 200000 --repeat 3 --dtype float32

Prints best-of-``repeat`` wall times (the variants interleaved, so a noisy
machine slows all of them alike), the ratios of the best times, and the
median of the ratios measured round by round (back-to-back runs, the most
robust wall-clock figure on a shared machine), and the ratio of CPU times
with one worker (process_time: the work done, whatever else runs).  What is
compared:

* ``activation_patterns`` for N points through a 2-64-64-64 ReLU network,
  against the three matrix products ``X @ W1 @ W2 @ W3`` alone, timed two
  ways: on whole arrays with NumPy's default BLAS threads (what one would
  write), and chunked exactly like ``activation_patterns`` (same chunk size,
  same worker threads, single-threaded BLAS per worker);
* ``count_2d`` of 2-16-16-16 ReLU networks (seeds 0-2, box [-2, 2]^2);
* ``count_1d`` of Telgarsky's tent map composed 20 times (2^20 pieces).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

import fastact
import fastact.regions as fr
from fastact.regions._patterns import DEFAULT_CHUNK


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def matmuls_whole(ws, x):
    h = x
    for w in ws:
        h = h @ w
    return h


def matmuls_chunked(ws, x, chunk: int, workers: int):
    """The three products only, chunked and threaded like activation_patterns."""
    n = len(x)
    starts = range(0, n, chunk)

    def serial(block):
        for s in block:
            h = x[s : s + chunk]
            for w in ws:
                h = h @ w

    with threadpool_limits(limits=1, user_api="blas"):
        if workers == 1:
            serial(starts)
        else:
            with ThreadPoolExecutor(workers) as pool:
                for f in [pool.submit(serial, starts[i::workers]) for i in range(workers)]:
                    f.result()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=10**6)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    ap.add_argument("--chunk", type=int, default=DEFAULT_CHUNK)
    ap.add_argument("--skip-exact", action="store_true", help="only the patterns benchmark")
    args = ap.parse_args(argv)
    dt = np.dtype(args.dtype)
    workers = fastact.get_num_threads()

    net = fr.random_network([2, 64, 64, 64], seed=0)
    x = np.random.default_rng(1).uniform(-2, 2, (args.points, 2)).astype(dt)
    ws = [w.astype(dt) for w in net.weights[:-1]]
    variants = {
        "activation_patterns": lambda: fr.activation_patterns(
            net, x, dtype=dt, chunk=args.chunk, num_threads=workers
        ),
        "3 matmuls, whole arrays": lambda: matmuls_whole(ws, x),
        "3 matmuls, chunked+threaded": lambda: matmuls_chunked(ws, x, args.chunk, workers),
    }
    for fn in variants.values():  # warm-up
        fn()
    best = dict.fromkeys(variants, float("inf"))
    round_ratios = []
    for _ in range(args.repeat):
        times = {name: _best(fn, 1) for name, fn in variants.items()}
        for name, t in times.items():
            best[name] = min(best[name], t)
        round_ratios.append(times["activation_patterns"] / times["3 matmuls, chunked+threaded"])
    print(
        f"{args.points} points, 2-64-64-64 relu, {dt.name}, chunk {args.chunk}, "
        f"{workers} worker thread(s), best of {args.repeat}"
    )
    for name, t in best.items():
        print(f"  {name:<30s} {t * 1e3:9.1f} ms")
    pat = best["activation_patterns"]
    print(f"  ratio to whole-array matmuls:   {pat / best['3 matmuls, whole arrays']:.2f}")
    print(f"  ratio to chunked matmuls:       {pat / best['3 matmuls, chunked+threaded']:.2f}")
    rr = np.sort(round_ratios)
    print(
        f"  same, per round (back to back): median {np.median(rr):.2f}, "
        f"range {rr[0]:.2f}-{rr[-1]:.2f}"
    )
    # CPU time with one worker: the work done, insensitive to other processes
    cpu = []
    for _ in range(args.repeat):
        t = time.process_time()
        fr.activation_patterns(net, x, dtype=dt, chunk=args.chunk, num_threads=1)
        a = time.process_time() - t
        t = time.process_time()
        matmuls_chunked(ws, x, args.chunk, 1)
        cpu.append(a / (time.process_time() - t))
    print(f"  CPU-time ratio, one worker:     median {np.median(cpu):.2f} of {args.repeat}")
    if args.skip_exact:
        return 0
    print("count_2d, 2-16-16-16 relu, box [-2, 2]^2:")
    for seed in range(3):
        n16 = fr.random_network([2, 16, 16, 16], seed=seed)
        t = time.perf_counter()
        r = fr.count_2d(n16, ((-2, 2), (-2, 2)))
        print(f"  seed {seed}: {r.count} regions in {time.perf_counter() - t:.2f} s")
    t = time.perf_counter()
    c = fr.count_1d(fr.tent_network(20), 0.0, 1.0)
    print(f"count_1d, tent map composed 20 times: {c} pieces in {time.perf_counter() - t:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
