"""prelu on the layouts that networks feed it, against PyTorch on the same arrays.

``python -m fastact bench`` times prelu with one weight; a network's PReLU has one
weight per channel: (N, C) after a dense layer (a weight per element of a row) and
(N, C, H, W) after a convolution.  This times ``fastact.prelu`` and
``fastact.prelu_backward`` (with the weight gradient) on those layouts, beside
``torch._prelu_kernel`` and its backward, in interleaved rounds, best of the repeats.

    python benchmarks/bench_prelu_layouts.py --threads 1,2
    python benchmarks/bench_prelu_layouts.py --backend numba --dtype float32,float16
    python benchmarks/bench_prelu_layouts.py --against /path/to/other/checkout

``--against`` runs the same cells with another checkout's fastact (its extension built
in place) in a subprocess, alternating with this one round by round, and prints both.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

LAYOUTS = {
    "one weight": ((1_000_000,), 1),
    "(1000, 1000)": ((1000, 1000), 1000),
    "(10000, 100)": ((10_000, 100), 100),
    "(100000, 10)": ((100_000, 10), 10),
    "(500, 2000)": ((500, 2000), 2000),
    "(244, 4096)": ((244, 4096), 4096),
    "(16, 64, 32, 32)": ((16, 64, 32, 32), 64),
}


def best(fn, repeats: int) -> float:
    """The fastest of ``repeats`` calls, in microseconds."""
    b = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        b = min(b, time.perf_counter() - t)
    return b * 1e6


def cells(dtypes, threads, repeats, with_torch, backend="auto") -> dict:
    """{cell: (forward us, backward us[, torch forward us, torch backward us])}."""
    import fastact
    from fastact import _half

    torch = None
    if with_torch:
        try:
            import torch
        except ImportError:
            torch = None
    rng = np.random.default_rng(0)
    out = {}
    for name in dtypes:
        dt = _half.dtype_named(name)
        for layout, (shape, C) in LAYOUTS.items():
            x = rng.normal(size=shape).astype(dt)
            g = rng.normal(size=shape).astype(dt)
            w = rng.uniform(0, 0.5, C).astype(np.float32)
            o = np.empty_like(x)
            for t in threads:
                if torch is not None:
                    # first: where PyTorch and fastact share libgomp, PyTorch's count caps
                    # fastact's (as a threadpoolctl limit does)
                    torch.set_num_threads(t)
                with fastact.config(backend=backend, num_threads=t):
                    row = [
                        best(lambda x=x, w=w, o=o: fastact.prelu(x, w, out=o), repeats),
                        best(
                            lambda g=g, x=x, w=w, o=o: fastact.prelu_backward(g, x, w, out=o),
                            repeats,
                        ),
                    ]
                if torch is not None:
                    tdt = getattr(torch, name)
                    tx = (
                        torch.from_numpy(x.view(np.int16)).view(tdt)
                        if dt.itemsize == 2
                        else torch.from_numpy(x)
                    )
                    tg = (
                        torch.from_numpy(g.view(np.int16)).view(tdt)
                        if dt.itemsize == 2
                        else torch.from_numpy(g)
                    )
                    tw = torch.from_numpy(w).to(tdt).reshape([C] + [1] * max(len(shape) - 2, 0))
                    row += [
                        best(lambda tx=tx, tw=tw: torch._prelu_kernel(tx, tw), repeats),
                        best(
                            lambda tg=tg, tx=tx, tw=tw: torch.ops.aten._prelu_kernel_backward(
                                tg, tx, tw
                            ),
                            repeats,
                        ),
                    ]
                out[f"{name} {layout} {t}"] = row
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dtype", default="float32,float64,float16,bfloat16")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--backend", default="auto", help="fastact's backend (auto, cython, numba)")
    ap.add_argument("--against", help="another checkout of fastact, timed alternately")
    ap.add_argument("--json", help=argparse.SUPPRESS)  # one round into this file
    a = ap.parse_args(argv)
    dtypes = a.dtype.split(",")
    threads = [int(t) for t in a.threads.split(",")]
    if a.json:
        with open(a.json, "w") as f:
            json.dump(cells(dtypes, threads, a.repeats, True, a.backend), f)
        return
    here = str(Path(__file__).resolve().parents[1])
    sides = {"this": here, **({"other": a.against} if a.against else {})}
    runs: dict[str, list[dict]] = {k: [] for k in sides}
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"prelu-layouts-{os.getpid()}.json"
    for _ in range(a.rounds):
        for side, root in sides.items():
            env = {**os.environ, "PYTHONPATH": root}
            cmd = [
                sys.executable,
                __file__,
                "--json",
                str(tmp),
                "--dtype",
                a.dtype,
                "--threads",
                a.threads,
                "--repeats",
                str(a.repeats),
            ]
            subprocess.run(cmd, env=env, check=True, cwd=root)
            runs[side].append(json.loads(tmp.read_text()))
    tmp.unlink(missing_ok=True)
    low = {
        side: {k: [min(r[k][j] for r in rs) for j in range(len(rs[0][k]))] for k in rs[0]}
        for side, rs in runs.items()
    }
    head = "cell (dtype, layout, threads)       fwd us   bwd us"
    if a.against:
        head += "  other fwd  other bwd"
    head += "  torch fwd  torch bwd  fwd x torch  bwd x torch"
    print(head)
    for k, row in low["this"].items():
        line = f"{k:34s} {row[0]:8.1f} {row[1]:8.1f}"
        if a.against:
            o = low["other"][k]
            line += f" {o[0]:10.1f} {o[1]:10.1f}"
        if len(row) > 2:
            line += (
                f" {row[2]:10.1f} {row[3]:10.1f} {row[2] / row[0]:12.2f} {row[3] / row[1]:12.2f}"
            )
        print(line)


if __name__ == "__main__":
    main()
