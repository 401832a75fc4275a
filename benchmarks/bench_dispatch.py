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

import numpy as np

import fastact
from fastact.bench.timing import best_time, measure_together


def overhead() -> None:
    x = np.ones(16, np.float32)
    t_np = best_time(lambda: np.tanh(x, out=x), 0.2)
    t_fa = best_time(lambda: fastact.relu(x, out=x), 0.2)
    t_sg = best_time(lambda: fastact.sigmoid(x, out=x), 0.2)
    print("per-call cost on 16 float32 elements (best of several samples):")
    print(f"  np.tanh(x, out=x)          {t_np * 1e9:7.0f} ns")
    print(f"  fastact.relu(x, out=x)     {t_fa * 1e9:7.0f} ns   ratio {t_fa / t_np:.2f}")
    print(f"  fastact.sigmoid(x, out=x)  {t_sg * 1e9:7.0f} ns   ratio {t_sg / t_np:.2f}")


def _apply(choice, threads: int) -> None:
    """Set fastact to a fixed (backend, threads) choice, or to auto with all threads."""
    backend, n = ("auto", threads) if choice == "auto" else choice
    fastact.set_backend(backend)
    fastact.set_num_threads(n)


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
            call = functools.partial(fn, x, out=out)
            jobs = {k: ([call], None) for k in [*choices, "auto"]}
            got = measure_together(jobs, budget, lambda k: _apply(k, threads))
            fastact.set_backend("auto")
            fastact.set_num_threads(threads)
            row = [got[k].best for k in choices]
            t_auto = got["auto"].best
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
