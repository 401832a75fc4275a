"""Is ``auto`` as fast as the best fixed choice? And what does a tiny call cost?

For relu, sigmoid and gelu (forward, float32) at sizes 10..10^8 this times
each backend at 1 thread and at all threads, and ``auto``, and prints the
ratio of auto to the best fixed choice (target: <= 1.10 at every size).  It
also prints the per-call cost of ``fastact.relu(x, out=x)`` on 16 float32
elements against ``np.tanh(x, out=x)`` (target: ratio <= 1.0).

    python benchmarks/bench_dispatch.py [--max-exp 8] [--quick]
"""

from __future__ import annotations

import argparse
import functools
import time

import numpy as np

import fastact


def best(fn, budget=0.2, repeats=5):
    fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-8)
    number = max(1, int(budget / repeats / one))
    out = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        out = min(out, (time.perf_counter() - t0) / number)
    return out


def overhead() -> None:
    x = np.ones(16, np.float32)
    t_np = best(lambda: np.tanh(x, out=x))
    t_fa = best(lambda: fastact.relu(x, out=x))
    t_sg = best(lambda: fastact.sigmoid(x, out=x))
    print("per-call cost on 16 float32 elements (best of 5):")
    print(f"  np.tanh(x, out=x)          {t_np * 1e9:7.0f} ns")
    print(f"  fastact.relu(x, out=x)     {t_fa * 1e9:7.0f} ns   ratio {t_fa / t_np:.2f}")
    print(f"  fastact.sigmoid(x, out=x)  {t_sg * 1e9:7.0f} ns   ratio {t_sg / t_np:.2f}")


def sweep(names, max_exp: int, budget: float) -> list[float]:
    threads = fastact.get_num_threads()
    backends = [b for b in ("cython", "numba") if b in fastact.backends()]
    choices = [(b, t) for b in backends for t in sorted({1, threads})]
    ratios = []
    for name in names:
        fn = getattr(fastact, name)
        head = "".join(f"{b}/{t}t".rjust(12) for b, t in choices)
        print(f"\n{name} forward float32: seconds per call")
        print(f"{'size':>10}{head}{'auto':>12}  auto chose           auto/best")
        for e in range(1, max_exp + 1):
            n = 10**e
            x = np.random.default_rng(0).normal(size=n).astype(np.float32)
            out = np.empty_like(x)
            row = []
            for b, t in choices:
                with fastact.config(backend=b, num_threads=t):
                    row.append(best(functools.partial(fn, x, out=out), budget))
            t_auto = best(functools.partial(fn, x, out=out), budget)
            ex = fastact.explain(name, x)
            ratio = t_auto / min(row)
            ratios.append(ratio)
            cells = "".join(f"{v:12.3e}" for v in row)
            print(
                f"{n:>10}{cells}{t_auto:12.3e}  {ex.backend}/{ex.num_threads}t".ljust(0)
                + f"{'':<8}{ratio:6.2f}"
            )
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-exp", type=int, default=8, help="largest size is 10**max_exp")
    parser.add_argument("--quick", action="store_true", help="sizes up to 10^6, short timings")
    args = parser.parse_args()
    max_exp = min(args.max_exp, 6) if args.quick else args.max_exp
    budget = 0.05 if args.quick else 0.2
    print(
        f"fastact {fastact.__version__}, {fastact.get_num_threads()} threads, "
        f"backends {fastact.backends()}"
    )
    overhead()
    ratios = sweep(["relu", "sigmoid", "gelu"], max_exp, budget)
    worst = max(ratios)
    print(f"\nauto / best fixed choice: worst {worst:.2f} (target <= 1.10)")


if __name__ == "__main__":
    main()
