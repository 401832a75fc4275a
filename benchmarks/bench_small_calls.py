"""What a 16-element call costs on each compiled backend, for every activation.

For each elementwise and rowwise activation (prelu aside), float32 and float64,
forward and backward (parameters at their defaults), this times batches of
calls on 16 elements, alternating the backends between batches so that load
on a shared machine hits them alike, and prints the best batch of each and
their ratio (target: Numba within 1.5x of Cython).  ``--blocks`` chooses each
backend by a ``fastact.config(backend=...)`` block instead of ``set_backend``.

    python benchmarks/bench_small_calls.py [--activation NAMES] [--rounds 30] [--blocks]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import time

import numpy as np

import fastact
from fastact import _dispatch

BACKENDS = ("cython", "numba")
BATCH = 200


@contextlib.contextmanager
def set_backend(backend: str):
    fastact.set_backend(backend)
    yield


def best_batches(fn, rounds: int, choose=set_backend) -> dict[str, float]:
    """Seconds per call of ``fn`` on each backend (in force inside ``choose(backend)``):
    the best batch, batches interleaved."""
    for backend in BACKENDS:
        with choose(backend):
            fn()  # compiles Numba's kernel on its first call
    best = dict.fromkeys(BACKENDS, float("inf"))
    for _ in range(rounds):
        for backend in BACKENDS:
            with choose(backend):
                t0 = time.perf_counter()
                for _ in range(BATCH):
                    fn()
                best[backend] = min(best[backend], (time.perf_counter() - t0) / BATCH)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--activation", help="comma-separated names (default: all but prelu)")
    ap.add_argument("--rounds", type=int, default=30, help="batches per backend (default 30)")
    ap.add_argument(
        "--blocks", action="store_true", help="choose the backends by fastact.config blocks"
    )
    args = ap.parse_args()
    choose = (lambda b: fastact.config(backend=b)) if args.blocks else set_backend
    if not set(BACKENDS) <= set(fastact.backends()):
        raise SystemExit("needs the Cython and Numba backends")
    names = args.activation.split(",") if args.activation else None
    entries = [
        fastact.activation(n)
        for n in names or fastact.activations()
        if _dispatch.kind_of(fastact.activation(n)) != "channel"
    ]
    print(f"{'activation':12} {'pass':4} {'dtype':8} {'cython us':>9} {'numba us':>9} {'ratio':>6}")
    ratios = []
    try:
        for dtype in (np.float32, np.float64):
            x = np.linspace(-3, 3, 16).astype(dtype)
            g = np.ones(16, dtype)
            for entry in entries:
                kw = dict(entry.example_params)
                fwd = getattr(fastact, entry.name)
                bwd = getattr(fastact, f"{entry.name}_backward")
                s = fwd(x, **kw) if entry.saves == "output" else x
                for pass_, fn in (
                    ("fwd", functools.partial(fwd, x, **kw)),
                    ("bwd", functools.partial(bwd, g, s, **kw)),
                ):
                    best = best_batches(fn, args.rounds, choose)
                    ratio = best["numba"] / best["cython"]
                    ratios.append(ratio)
                    print(
                        f"{entry.name:12} {pass_:4} {np.dtype(dtype).name:8} "
                        f"{best['cython'] * 1e6:9.3f} {best['numba'] * 1e6:9.3f} {ratio:6.2f}"
                    )
    finally:
        fastact.set_backend("auto")
    ratios.sort()
    print(
        f"numba / cython over {len(ratios)} cells: min {ratios[0]:.2f}, "
        f"median {ratios[len(ratios) // 2]:.2f}, max {ratios[-1]:.2f}"
    )


if __name__ == "__main__":
    main()
