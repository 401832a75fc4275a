"""Training steps of a dense MLP: NumPy + fastact functions, fastact.nn.Linear, PyTorch eager.

    python benchmarks/bench_mlp.py                  # 3 hidden layers of 1024, batch 512, float32
    python benchmarks/bench_mlp.py --quick          # small sizes, a few seconds
    python benchmarks/bench_mlp.py --threads 1 --activations gelu --steps 50

The same network (``fastact.bench.mlp``: features -> hidden... -> outputs,
squared loss, SGD) is trained for ``--steps`` steps from the same data and
initial weights three ways: ``unfused`` (NumPy, ``z += b`` then fastact's
activation and backward functions), ``linear`` (``fastact.nn.Sequential`` of
``fastact.nn.Linear``) and ``torch`` (PyTorch eager on the CPU: ``nn.Linear``,
the activation's layer, autograd; skipped when PyTorch is absent).  Reported:
the time per step (best of ``--repeat`` runs, the ways interleaved), the
ratio to PyTorch's, the time and share of the step spent outside the matrix
products (the step less the same products timed alone with each side's BLAS:
a difference of two noisy times, so a small share can come out negative) and
the largest relative difference between the ways' losses over the run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def timed(fn, steps: int) -> tuple[float, list]:
    out = []
    t = time.perf_counter()
    for _ in range(steps):
        out.append(fn())
    return (time.perf_counter() - t) / steps, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--features", type=int, default=256)
    ap.add_argument("--hidden", type=int, nargs="+", default=[1024, 1024, 1024])
    ap.add_argument("--outputs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--activations", nargs="+", default=["relu", "gelu", "silu"])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="for fastact, BLAS and PyTorch")
    ap.add_argument("--quick", action="store_true", help="features 64, hidden 3 x 128, batch 64")
    args = ap.parse_args(argv)
    if args.quick:
        args.features, args.hidden, args.batch, args.steps = 64, [128] * 3, 64, 10

    import fastact
    from fastact.bench import mlp

    limits = None
    if args.threads:
        fastact.set_num_threads(args.threads)
        try:
            from threadpoolctl import threadpool_limits

            limits = threadpool_limits(args.threads, user_api="blas")
        except ImportError:
            print("threadpoolctl is not installed: NumPy's BLAS keeps its own thread count")
    try:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        ways = mlp.WAYS
    except ImportError:
        torch = None
        ways = tuple(w for w in mlp.WAYS if w != "torch")
        print("PyTorch is not installed: no torch column")

    print(
        f"fastact {fastact.__version__} (backend {fastact.get_backend()}, "
        f"{fastact.get_num_threads()} threads), numpy {np.__version__}"
        + (f", torch {torch.__version__}" if torch else "")
    )
    for side, text in mlp.blas_info().items():
        print(f"  {side} BLAS: {text}")
    print(
        f"MLP {args.features} -> {' -> '.join(map(str, args.hidden))} -> {args.outputs}, "
        f"batch {args.batch}, {args.dtype}; {args.steps} steps after {args.warmup}, "
        f"best of {args.repeat}"
    )
    head = (
        f"{'activation':>10} {'way':>8} {'ms/step':>9} {'vs torch':>9} "
        f"{'outside GEMM':>13} {'share':>6}"
    )
    print(head)
    worst = 0.0
    for act in args.activations:
        p = mlp.Problem(
            activation=act,
            features=args.features,
            hidden=tuple(args.hidden),
            outputs=args.outputs,
            batch=args.batch,
            dtype=args.dtype,
        )
        best = {w: np.inf for w in ways}
        losses: dict[str, list] = {}
        gemm = {"numpy": np.inf, "torch": np.inf}
        for _ in range(args.repeat):
            for w in ways:
                step = mlp.make(w, p)
                run = [step() for _ in range(args.warmup)]
                t, more = timed(step, args.steps)
                best[w] = min(best[w], t)
                losses.setdefault(w, run + more)
            for lib in ("numpy", "torch") if torch else ("numpy",):
                g = mlp.gemm_step(p, lib)
                g()
                gemm[lib] = min(gemm[lib], timed(g, args.steps)[0])
        ref = np.asarray(losses["linear"])
        diff = max(
            float(np.max(np.abs(np.asarray(v) - ref) / np.abs(ref))) for v in losses.values()
        )
        worst = max(worst, diff)
        for w in ways:
            lib = "torch" if w == "torch" else "numpy"
            ratio = f"{best[w] / best['torch']:8.2f}x" if "torch" in best else f"{'-':>9}"
            other = best[w] - gemm[lib]
            print(
                f"{act:>10} {w:>8} {best[w] * 1e3:9.2f} {ratio} "
                f"{other * 1e3:10.2f} ms {other / best[w]:6.0%}"
            )
        print(
            f"{'':>10} {'GEMM':>8} numpy {gemm['numpy'] * 1e3:.2f} ms"
            + (f", torch {gemm['torch'] * 1e3:.2f} ms" if torch else "")
            + f"; losses agree within {diff:.1e} (relative)"
        )
    if limits is not None:
        limits.restore_original_limits()
    tol = 1e-3 if args.dtype == "float32" else 1e-9
    if worst > tol:
        print(f"the ways' losses differ by {worst:.1e} (more than {tol:g})")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
