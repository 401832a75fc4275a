"""fastact.torch operators against PyTorch's own activations (CPU).

    python benchmarks/bench_torch.py
    python benchmarks/bench_torch.py --sizes 1000 1000000 --dtype float64 --names gelu silu

For each activation and size: the best time of forward, and of forward +
backward (autograd), for ``torch.nn.functional`` and for ``fastact.torch``,
and their ratio (>1: fastact faster).  Both use all threads they are given
(torch.set_num_threads / fastact.set_num_threads are set to ``--threads``).
The custom-operator dispatch costs ~15-20 us a call, so small tensors favour
torch's built-ins.
"""

from __future__ import annotations

import argparse


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000, 4_000_000])
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--names", nargs="+", default=None, help="activations (default: all)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--budget", type=float, default=0.05, help="seconds per measurement")
    args = ap.parse_args(argv)

    import torch
    import torch.nn.functional as F

    import fastact
    import fastact.torch as ft
    from fastact.bench.timing import measure_together

    if args.threads:
        torch.set_num_threads(args.threads)
        fastact.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    names = args.names or fastact.activations()
    print(
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), fastact "
        f"{fastact.__version__} ({fastact.get_backend()}, {fastact.get_num_threads()} threads), "
        f"{args.dtype}; best of interleaved samples; ratio = torch time / fastact time"
    )
    print(
        f"{'name':>12} {'n':>9} {'torch fwd':>10} {'fa fwd':>10} {'ratio':>6}"
        f" {'torch f+b':>10} {'fa f+b':>10} {'ratio':>6}"
    )
    for name in names:
        entry = fastact.activation(name)
        params = {
            p.name: (p.example if p.default is None else p.default) for p in entry.scalar_params
        }
        for n in args.sizes:
            x = torch.randn(n // 64 or 1, 64, dtype=dtype) * 3
            w = torch.full((64,), 0.25, dtype=dtype)
            if entry.channel_param:
                ref = lambda t, w=w: F.prelu(t, w)  # noqa: E731
                fa = lambda t, w=w: ft.prelu(t, w)  # noqa: E731
            elif entry.rowwise:
                ref = lambda t, name=name: getattr(F, name)(t, dim=-1)  # noqa: E731
                fa = lambda t, name=name: getattr(ft, name)(t, axis=-1)  # noqa: E731
            elif entry.has_training_mode:
                ref = lambda t, p=params: F.rrelu(t, **p, training=True)  # noqa: E731
                fa = lambda t, p=params: ft.rrelu(t, **p, training=True)  # noqa: E731
            else:
                tfn = getattr(F, name, None) or getattr(torch, name, None)
                if tfn is None:
                    continue
                ffn = getattr(ft, name)
                ref = lambda t, f=tfn, p=params: f(t, **p)  # noqa: E731
                fa = lambda t, f=ffn, p=params: f(t, **p)  # noqa: E731
            xg = x.clone().requires_grad_()
            g = torch.ones_like(x)

            def fb(f, xg=xg, g=g):
                f(xg).backward(g)
                xg.grad = None

            with torch.no_grad():
                got = measure_together(
                    {
                        "torch": ([lambda f=ref, x=x: f(x)], None),
                        "fa": ([lambda f=fa, x=x: f(x)], None),
                    },
                    args.budget,
                )
            tf, ff = got["torch"].best, got["fa"].best
            got = measure_together(
                {"torch": ([lambda f=ref: fb(f)], None), "fa": ([lambda f=fa: fb(f)], None)},
                args.budget,
            )
            tb, fb_ = got["torch"].best, got["fa"].best
            print(
                f"{name:>12} {x.numel():9d} {tf * 1e6:8.1f}us {ff * 1e6:8.1f}us {tf / ff:6.2f}"
                f" {tb * 1e6:8.1f}us {fb_ * 1e6:8.1f}us {tb / fb_:6.2f}"
            )


if __name__ == "__main__":
    main()
