"""The bias epilogue against the unfused calls it replaces (a dense layer's (N, 1024) output).

    python benchmarks/bench_epilogue.py
    python benchmarks/bench_epilogue.py --sizes 1e6 --threads 1 --names relu --dtype float64
    python benchmarks/bench_epilogue.py --layout nchw   # (N, 64, 32, 32), bias_axis=1

Forward: ``act(x, bias=b, out=z)`` against ``np.add(x, b, out=z); act(z, out=z)``.
Backward: ``act_backward(g, saved, bias=b, out=gi)`` (which also returns the
bias gradient) against ``act_backward(g, saved, out=gi); gi.sum(axis=0)`` (with
``--layout nchw``: a convolution's output, the bias along axis 1, summed over
the other axes).
The output buffers are separate from the inputs so that repeats see the same
values; the memory traffic is that of the in-place forms (``x += b; act(x,
out=x)``).  Best times of interleaved samples (``fastact.bench.timing``);
ratios below 1 favour the fused call; the last column is the fused call's
ratio through the general epilogue (:mod:`fastact._api.epilogue`, without the
compiled fast path of bias calls).  Targets: relu forward at most 0.6x,
relu backward at most 0.8x, the others not slower (1.0x).
"""

from __future__ import annotations

import argparse

import numpy as np

import fastact
from fastact import _api
from fastact.bench.timing import measure_together

FEATURES = 1024
# (channels, height, width) of the NCHW layout
CHW = (64, 32, 32)
TARGETS = {("relu", "forward"): 0.6, ("relu", "backward"): 0.8}


def jobs(name: str, n: int, dtype, layout: str = "dense") -> dict:
    """(pass, fused or unfused) -> (calls, setup) for ``measure_together``."""
    rng = np.random.default_rng(0)
    if layout == "nchw":
        shape, axis, others = (max(1, n // int(np.prod(CHW))), *CHW), 1, (0, 2, 3)
    else:
        shape, axis, others = (max(1, n // FEATURES), FEATURES), -1, (0,)
    x = rng.standard_normal(shape).astype(dtype)
    b = rng.standard_normal(shape[axis]).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    z, gi = np.empty_like(x), np.empty_like(x)
    f, fb = getattr(fastact, name), getattr(fastact, f"{name}_backward")
    entry = fastact.activation(name)
    bb = b.reshape([-1 if k == axis % x.ndim else 1 for k in range(x.ndim)])
    pre = x + bb
    y = f(pre)
    saved_fused = x if entry.saves == "input" else y
    saved_plain = pre if entry.saves == "input" else y

    def fwd_fused():
        f(x, bias=b, bias_axis=axis, out=z)

    def fwd_plain():
        np.add(x, bb, out=z)
        f(z, out=z)

    def bwd_fused():
        fb(g, saved_fused, bias=b, bias_axis=axis, out=gi)

    def bwd_plain():
        fb(g, saved_plain, out=gi)
        gi.sum(axis=others)

    # the fused calls through the general epilogue (no compiled fast path)
    params = tuple(p.default for p in entry.scalar_params)

    def fwd_general():
        _api.bias_forward(entry, x, b, axis, z, params)

    def bwd_general():
        _api.bias_backward(entry, g, saved_fused, b, axis, gi, params)

    return {
        ("forward", "fused"): ([fwd_fused], None),
        ("forward", "unfused"): ([fwd_plain], None),
        ("forward", "general"): ([fwd_general], None),
        ("backward", "fused"): ([bwd_fused], None),
        ("backward", "unfused"): ([bwd_plain], None),
        ("backward", "general"): ([bwd_general], None),
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1e6,1e7", help="elements, comma-separated")
    ap.add_argument("--threads", default="1,2", help="thread counts, comma-separated")
    ap.add_argument("--names", default="relu,gelu,silu,tanh,sigmoid")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--layout", choices=["dense", "nchw"], default="dense")
    ap.add_argument("--budget", type=float, default=0.3, help="seconds per measurement")
    args = ap.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    dtype = np.dtype(args.dtype)
    layout = f"(N, {FEATURES})" if args.layout == "dense" else f"(N, {CHW}) bias_axis=1"
    print(f"bias epilogue, {layout} {dtype}, backend {fastact.get_backend()}")
    print(
        f"{'activation':<10} {'n':>9} {'thr':>3} {'pass':<8} {'fused ms':>9} "
        f"{'unfused ms':>10} {'ratio':>6} target     {'general path ratio':>18}"
    )
    for name in args.names.split(","):
        for n in sizes:
            for t in threads:
                fastact.set_num_threads(t)
                res = measure_together(jobs(name, n, dtype, args.layout), args.budget)
                for pass_ in ("forward", "backward"):
                    fused = res[pass_, "fused"].best
                    plain = res[pass_, "unfused"].best
                    ratio = fused / plain
                    target = TARGETS.get((name, pass_), 1.0)
                    mark = "ok" if ratio <= target else "MISSED"
                    general = res[pass_, "general"].best / plain
                    print(
                        f"{name:<10} {n:>9.0e} {t:>3} {pass_:<8} {fused * 1e3:>9.3f} "
                        f"{plain * 1e3:>10.3f} {ratio:>6.2f} <= {target} {mark:<6} "
                        f"{general:>18.2f}"
                    )


if __name__ == "__main__":
    main()
