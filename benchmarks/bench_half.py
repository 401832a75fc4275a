"""16-bit storage against float32 and PyTorch: the forward of a few activations.

For each activation, thread count and dtype (float16, bfloat16, float32), the
call on 10**7 elements (preallocated output) is timed interleaved with the
others and with PyTorch on the same data (``torch.from_numpy`` of the int16
view, viewed as torch.float16 / torch.bfloat16), best of ``--repeats`` rounds.
Printed per cell: the best time, its ratio to fastact's float32 time, and
PyTorch's time over fastact's (at least 1: fastact as fast or faster).

``--clock cpu`` times the calling thread's CPU time on one thread and the
process's CPU time over the thread count on more (a shared machine's load then
counts little: what the kernels cost, not the wall time); ``--clock wall``
times the wall clock.

    python benchmarks/bench_half.py [--names relu,tanh] [--size 1e7] [--repeats 7]
        [--threads 1,2] [--clock cpu|wall] [--backend cython]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import fastact
from fastact import _half

DTYPES = ("float16", "bfloat16", "float32")
NAMES = "relu,hardtanh,tanh,silu,gelu,gelu[tanh]"


def _fastact_call(name: str):
    if name == "gelu[tanh]":
        return lambda x, o: fastact.gelu(x, approximate="tanh", out=o)
    fn = getattr(fastact, name)
    return lambda x, o: fn(x, out=o)


def _torch_call(torch, name: str):
    aten = torch.ops.aten
    calls = {
        "relu": lambda x, o: torch.clamp_min(x, 0, out=o),
        "hardtanh": lambda x, o: torch.clamp(x, -1, 1, out=o),
        "tanh": lambda x, o: torch.tanh(x, out=o),
        "sigmoid": lambda x, o: torch.sigmoid(x, out=o),
        "silu": lambda x, o: aten.silu.out(x, out=o),
        "gelu": lambda x, o: aten.gelu.out(x, out=o),
        "gelu[tanh]": lambda x, o: aten.gelu.out(x, approximate="tanh", out=o),
    }
    return calls.get(name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--names", default=NAMES)
    ap.add_argument("--size", default="1e7")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    ap.add_argument("--backend", default="cython")
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        torch = None
    n = int(float(args.size))
    names = args.names.split(",")
    threads = [int(t) for t in args.threads.split(",")]
    fastact.set_backend(args.backend)
    x32 = np.random.default_rng(0).normal(0, 2, n).astype(np.float32)
    xs, outs, txs, touts = {}, {}, {}, {}
    for d in DTYPES:
        try:
            dt = _half.dtype_named(d)
        except ImportError:
            continue
        xs[d] = x32.astype(dt)
        outs[d] = np.ones_like(xs[d])
        if torch is not None:
            tdt = getattr(torch, d)
            if d == "float32":
                txs[d], touts[d] = torch.from_numpy(xs[d]), torch.from_numpy(outs[d])
            else:
                txs[d] = torch.from_numpy(xs[d].view(np.int16)).view(tdt)
                touts[d] = torch.from_numpy(outs[d].view(np.int16)).view(tdt)
    best: dict = {}
    for th in threads:
        fastact.set_num_threads(th)
        if torch is not None:
            torch.set_num_threads(th)
        if args.clock == "wall":
            clock = time.perf_counter
        elif th == 1:
            clock = time.thread_time
        else:
            clock = lambda th=th: time.process_time() / th  # noqa: E731
        for _ in range(args.repeats):
            for name in names:
                fa = _fastact_call(name)
                tc = _torch_call(torch, name) if torch is not None else None
                for d in xs:
                    t0 = clock()
                    fa(xs[d], outs[d])
                    t = clock() - t0
                    best[name, d, th] = min(best.get((name, d, th), np.inf), t)
                    if tc is not None:
                        t0 = clock()
                        tc(txs[d], touts[d])
                        t = clock() - t0
                        best[name, d, th, "torch"] = min(
                            best.get((name, d, th, "torch"), np.inf), t
                        )
    print(f"{args.backend}, forward, n={n:.0e}, clock={args.clock}, best of {args.repeats}")
    print("activation  thr | " + " | ".join(f"{d:>8} ms  /f32  torch/" for d in xs))
    for name in names:
        for th in threads:
            f32 = best[name, "float32", th]
            cells = []
            for d in xs:
                t = best[name, d, th]
                tt = best.get((name, d, th, "torch"))
                vs = f"{tt / t:6.2f}" if tt else "     -"
                cells.append(f"{t * 1e3:11.2f} {t / f32:5.2f} {vs}")
            print(f"{name:11s} {th:3d} | " + " | ".join(cells))


if __name__ == "__main__":
    main()
