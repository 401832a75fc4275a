"""What a small bias call costs: the compiled fast path against the general epilogue.

For each activation, float32, a dense layer's (N, 128) output of 1024 and 16384
elements, one thread: ``act(x, bias=b, out=o)`` and ``act_backward(g, saved,
bias=b, out=o)`` through the public function (the compiled fast path), through
the general epilogue (``fastact._api.bias_forward``/``bias_backward``, the path
every bias call took before the fast path), and the plain call without a bias
for scale.  Best of interleaved batches, microseconds per call.

    python benchmarks/bench_bias_calls.py [--names relu,gelu] [--rounds 7]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import fastact
from fastact import _api

COLS = 128
BATCH = 1000


def per_call(fn, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(BATCH):
            fn()
        best = min(best, (time.perf_counter() - t) / BATCH)
    return best * 1e6


def calls(entry, x, g, b, o, s, params) -> dict:
    """pass -> (fast path, general epilogue, no bias) calls."""
    f, fb = getattr(fastact, entry.name), getattr(fastact, f"{entry.name}_backward")
    return {
        "forward": (
            lambda: f(x, bias=b, out=o),
            lambda: _api.bias_forward(entry, x, b, -1, o, params),
            lambda: f(x, out=o),
        ),
        "backward": (
            lambda: fb(g, s, bias=b, out=o),
            lambda: _api.bias_backward(entry, g, s, b, -1, o, params),
            lambda: fb(g, s, out=o),
        ),
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--names", default="relu,gelu,silu")
    ap.add_argument("--sizes", default="1024,16384")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args(argv)
    fastact.set_num_threads(1)
    rng = np.random.default_rng(0)
    print(f"bias calls, (N, {COLS}) float32, 1 thread, us per call (best of {args.rounds})")
    print(f"{'activation':<10} {'n':>6} {'pass':<8} {'fast path':>9} {'general':>8} {'no bias':>8}")
    for name in args.names.split(","):
        entry = fastact.activation(name)
        params = tuple(p.default for p in entry.scalar_params)
        f = getattr(fastact, name)
        for n in (int(s) for s in args.sizes.split(",")):
            x = rng.standard_normal((n // COLS, COLS)).astype(np.float32)
            g = rng.standard_normal(x.shape).astype(np.float32)
            b = rng.standard_normal(COLS).astype(np.float32)
            o = np.empty_like(x)
            s = x if entry.saves == "input" else f(x, bias=b)
            rows = calls(entry, x, g, b, o, s, params)
            for pass_, fns in rows.items():
                times = [float("inf")] * 3
                for _ in range(3):  # interleaved
                    times = [min(t, per_call(fn, args.rounds)) for t, fn in zip(times, fns)]
                print(
                    f"{name:<10} {n:>6} {pass_:<8} {times[0]:>9.2f} {times[1]:>8.2f} "
                    f"{times[2]:>8.2f}"
                )


if __name__ == "__main__":
    main()
