"""Non-temporal stores against ordinary ones, in one process on the same arrays.

The C kernels of the memory-bound passes (cost class ``cheap``) store an output
that cannot stay in cache (the call's arrays take at least the threshold:
``fa_nt_stores`` in ``fa_intrinsics.h``) by non-temporal stores.  This script
times each call with the threshold at its default and raised out of reach
(ordinary stores), alternating the two in every round, and prints the best and
median nanoseconds per element of each and their ratio (below 1: non-temporal
faster).  ``--bias`` times the bias epilogue on (N, 1024) arrays instead.

    python benchmarks/bench_nt_stores.py [--names relu,hardtanh,sigmoid,gelu]
        [--dtypes float32,float64,bfloat16,float16] [--size 1e7] [--threads 1,2]
        [--rounds 21] [--bias]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import fastact
from fastact import _half

OFF = 1 << 62  # a threshold no call reaches: ordinary stores


def _calls(name: str, x, g, bias):
    f = getattr(fastact, name)
    fb = getattr(fastact, name + "_backward")
    kw = {} if bias is None else {"bias": bias}
    y = f(x, **kw)
    s = y if fastact.activation(name).saves == "output" else x
    o, gi = np.empty_like(x), np.empty_like(x)
    return {
        "fwd": lambda: f(x, out=o, **kw),
        "bwd": lambda: fb(g, s, out=gi, **kw),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--names", default="relu,hardtanh,sigmoid,gelu")
    ap.add_argument("--dtypes", default="float32,float64,bfloat16,float16")
    ap.add_argument("--size", type=float, default=1e7)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--bias", action="store_true", help="the bias epilogue on (N, 1024)")
    args = ap.parse_args(argv)
    try:
        from fastact._backends.cython import _kernels
    except ImportError as exc:
        raise SystemExit(f"needs the C extension: {exc}") from exc
    default = _kernels.nt_min_bytes()
    if default == 0:
        raise SystemExit("this build has no non-temporal stores (not x86-64)")
    n = int(args.size)
    rng = np.random.default_rng(0)
    print(f"non-temporal (threshold {default >> 20} MiB) against ordinary stores, n={n:.0e}")
    print(
        f"{'activation':11s} {'dtype':9s} thr pass  ordinary ns/el best/median  "
        "non-temporal best/median  ratio"
    )
    for dname in args.dtypes.split(","):
        if dname in _half.NAMES:
            try:
                dt = _half.dtype_named(dname)
            except (ImportError, TypeError):
                print(f"{dname}: skipped (ml_dtypes is not installed)")
                continue
        else:
            dt = np.dtype(dname)
        shape = (n // 1024, 1024) if args.bias else (n,)
        x = rng.standard_normal(shape).astype(np.float32).astype(dt)
        g = rng.standard_normal(shape).astype(np.float32).astype(dt)
        bias = rng.standard_normal(1024).astype(np.float32).astype(dt) if args.bias else None
        for name in args.names.split(","):
            for threads in (int(t) for t in args.threads.split(",")):
                with fastact.config(backend="cython", num_threads=threads):
                    calls = _calls(name, x, g, bias)
                    times: dict[tuple[str, str], list[float]] = {}
                    for r in range(args.rounds):
                        modes = [("ordinary", OFF), ("non-temporal", default)]
                        for mode, value in modes if r % 2 else modes[::-1]:
                            _kernels.nt_min_bytes(value)
                            try:
                                for pass_, call in calls.items():
                                    t = time.perf_counter()
                                    call()
                                    times.setdefault((pass_, mode), []).append(
                                        time.perf_counter() - t
                                    )
                            finally:
                                _kernels.nt_min_bytes(default)
                for pass_ in calls:
                    o = np.array(times[pass_, "ordinary"]) * 1e9 / x.size
                    t = np.array(times[pass_, "non-temporal"]) * 1e9 / x.size
                    print(
                        f"{name:11s} {dt.name:9s} {threads:3d} {pass_:4s}  "
                        f"{o.min():10.3f} / {np.median(o):6.3f}  "
                        f"{t.min():16.3f} / {np.median(t):6.3f}  {t.min() / o.min():5.2f}"
                    )


if __name__ == "__main__":
    main()
