"""Figures of the Numba backend: compile times, call overhead, throughput vs Cython.

    python -m fastact._backends.numba.bench [--quick] [--json FILE]

* compile time per kernel (no disk cache), per parallel driver, and the time
  to load a kernel from the disk cache;
* call overhead at 16 elements: the serial twin against a parallel launch,
  and the whole public call on each backend;
* throughput at 10^6 elements as the ratio numba / cython (time), forward
  and backward, float32 and float64, 1 and 2 threads.

Times are the best of several repeats, taken in one process, so the ratios
are comparable even on a noisy machine; absolute times are not.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import numpy as np

from ... import _backends
from ...bench.timing import measure, measure_together
from ...table import BY_NAME, TABLE


def sample_entries(quick: bool) -> list:
    """Every table entry; ``quick``: the first of each cost class and of each kind
    (per-channel parameter, training mode, rowwise)."""
    if not quick:
        return list(TABLE)
    seen, out = set(), []
    for e in TABLE:
        kind = (e.cost, bool(e.channel_param), e.has_training_mode, e.rowwise)
        if kind not in seen:
            seen.add(kind)
            out.append(e)
    return out


def _best(fn, min_time: float = 0.05) -> float:
    return measure([fn], None, min_time).best


def _best_interleaved(fns: list, min_time: float) -> list[float]:
    """Best time per call of each function, timed in turns (same machine conditions)."""
    got = measure_together({j: ([fn], None) for j, fn in enumerate(fns)}, min_time)
    return [got[j].best for j in range(len(fns))]


def _compile_pass(names: list[str]) -> dict:
    """In this process: seconds per kernel and per driver (the cache as configured)."""
    nb = _backends.get("numba")
    # Numba's first compilation or cache load in a process pays for its imports
    t0 = time.perf_counter()
    nb.kernel(BY_NAME["relu"], "fwd", "f64")
    first = time.perf_counter() - t0
    per_kernel = {}
    for name in names:
        entry = BY_NAME[name]
        for kind in ("rfwd", "rbwd") if entry.rowwise else ("fwd", "bwd"):
            for sfx in ("f32", "f64"):
                t0 = time.perf_counter()
                nb.kernel(entry, kind, sfx)
                per_kernel[f"{name}.{kind}.{sfx}"] = time.perf_counter() - t0
    drivers = {}
    for drv in ("ser_unary", "par_unary", "par_binary", "par_channel_backward"):
        t0 = time.perf_counter()
        nb._driver(drv, "f32")
        drivers[drv] = time.perf_counter() - t0
    return {"first_s": first, "per_kernel_s": per_kernel, "drivers_s": drivers}


def compile_times(names: list[str]) -> dict:
    """Compile times without a cache, then load times from a fresh disk cache.

    Each pass runs in its own interpreter (``FASTACT_CACHE_DIR`` set for it).
    """
    import os
    import subprocess
    import sys

    def run(cache: str) -> dict:
        code = (
            "import json; from fastact._backends.numba.bench import _compile_pass; "
            f"print(json.dumps(_compile_pass({names!r})))"
        )
        env = {**os.environ, "FASTACT_CACHE_DIR": cache}
        r = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        return json.loads(r.stdout.strip().splitlines()[-1])

    cold = run("off")
    with tempfile.TemporaryDirectory() as d:
        run(d)  # fills the cache
        warm = run(d)
    kernels = list(cold["per_kernel_s"].values())
    loads = list(warm["per_kernel_s"].values())
    return {
        "first_compile_s": cold["first_s"],
        "kernel_median_s": statistics.median(kernels),
        "kernel_max_s": max(kernels),
        "per_kernel_s": cold["per_kernel_s"],
        "drivers_s": cold["drivers_s"],
        "first_cached_load_s": warm["first_s"],
        "cached_kernel_load_median_s": statistics.median(loads),
        "cached_drivers_s": warm["drivers_s"],
    }


def overhead() -> dict:
    """Microseconds per call at 16 elements."""
    import fastact

    nb = _backends.get("numba")
    entry = BY_NAME["relu"]
    x = np.random.default_rng(0).normal(size=16).astype(np.float32)
    out = np.empty_like(x)
    nb.forward(entry, x, out, (), False, 0, 1)
    k = nb.kernel(entry, "fwd", "f32")
    p = nb._params(())
    ser = nb._driver("ser_unary", "f32")
    nb._run("unary", "f32", 2, k, x, out, p, 0, 2)
    us = {
        "numba serial twin (driver call)": _best(lambda: ser(k, x, out, p, 0, 1)),
        "numba parallel driver, 2 threads": _best(
            lambda: nb._run("unary", "f32", 2, k, x, out, p, 0, 2)
        ),
        "numba backend.forward": _best(lambda: nb.forward(entry, x, out, (), False, 0, 1)),
    }
    try:
        cy = _backends.get("cython")
        us["cython backend.forward"] = _best(lambda: cy.forward(entry, x, out, (), False, 0, 1))
    except ImportError:
        pass
    for backend in fastact.backends():
        if backend == "numpy":
            continue
        with fastact.config(backend=backend):
            fastact.relu(x, out=out)
            us[f"fastact.relu(x, out=x) on {backend}"] = _best(lambda: fastact.relu(x, out=out))
    return {k: v * 1e6 for k, v in us.items()}


def _calls(be, entry, x, g, out, params, threads):
    """The forward and backward call of ``entry`` on backend ``be`` (no allocation)."""
    n = x.size
    if entry.rowwise:
        return (
            lambda: be.rowwise_forward(entry, x, out, n // 100, 100, threads),
            lambda: be.rowwise_backward(entry, g, x, out, n // 100, 100, threads),
        )
    if entry.channel_param:
        w = np.full(1, 0.25)
        return (
            lambda: be.channel_forward(entry, x, out, w, 1, 1, n, threads),
            lambda: be.channel_backward(entry, g, x, out, w, 1, 1, n, threads),
        )
    train = entry.has_training_mode
    return (
        lambda: be.forward(entry, x, out, params, train, 7, threads),
        lambda: be.backward(entry, g, x, out, params, train, 7, threads),
    )


def throughput(n: int, min_time: float, quick: bool = False) -> list[dict]:
    """Time ratio numba / cython per activation, pass, dtype and thread count."""
    from ..._api import check_params

    nb, cy = _backends.get("numba"), _backends.get("cython")
    rows = []
    rng = np.random.default_rng(0)
    for entry in sample_entries(quick):
        name = entry.name
        ex = entry.example_params
        params = check_params(entry, tuple(ex[p.name] for p in entry.scalar_params))
        for dtype in (np.float32, np.float64):
            x = rng.normal(0, 3, n).astype(dtype)
            g = rng.normal(size=n).astype(dtype)
            out = np.empty_like(x)
            for threads in (1, 2):
                nf, nbw = _calls(nb, entry, x, g, out, params, threads)
                cf, cbw = _calls(cy, entry, x, g, out, params, threads)
                for fn in (nf, nbw, cf, cbw):
                    fn()
                t_nf, t_cf = _best_interleaved([nf, cf], min_time)
                t_nb, t_cb = _best_interleaved([nbw, cbw], min_time)
                rows.append(
                    {
                        "activation": name + (" (training)" if entry.has_training_mode else ""),
                        "dtype": np.dtype(dtype).name,
                        "threads": threads,
                        "forward_ratio": t_nf / t_cf,
                        "backward_ratio": t_nb / t_cb,
                        "numba_forward_ms": t_nf * 1e3,
                        "cython_forward_ms": t_cf * 1e3,
                        "numba_backward_ms": t_nb * 1e3,
                        "cython_backward_ms": t_cb * 1e3,
                    }
                )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer kernels and repeats")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("-n", type=int, default=10**6, help="elements for throughput")
    args = parser.parse_args(argv)
    names = [e.name for e in sample_entries(True)] if args.quick else [e.name for e in TABLE]
    report = {"compile": compile_times(names), "overhead_us": overhead()}
    c = report["compile"]
    print(
        f"compile, no cache: median {c['kernel_median_s']:.3f} s per kernel "
        f"(max {c['kernel_max_s']:.3f} s over {len(c['per_kernel_s'])} kernels; "
        f"the first one in a process {c['first_compile_s']:.2f} s)"
    )
    print(
        f"from the disk cache: median {c['cached_kernel_load_median_s'] * 1e3:.1f} ms per "
        f"kernel (the first one in a process {c['first_cached_load_s']:.2f} s)"
    )
    for drv, sec in c["drivers_s"].items():
        print(
            f"  driver {drv}: {sec:.3f} s compiled, {c['cached_drivers_s'][drv] * 1e3:.1f} ms cached"
        )
    print("call overhead at 16 float32 elements (best of several samples):")
    for what, us in report["overhead_us"].items():
        print(f"  {what:45s} {us:8.2f} us")
    if "cython" in _backends.available():
        report["throughput"] = throughput(args.n, 0.05 if args.quick else 0.2, args.quick)
        print(f"time ratio numba / cython at {args.n} elements (< 1: numba faster):")
        print(f"  {'activation':22s} {'dtype':8s} thr  forward  backward   (numba ms fwd/bwd)")
        for r in report["throughput"]:
            print(
                f"  {r['activation']:22s} {r['dtype']:8s} {r['threads']:3d}  "
                f"{r['forward_ratio']:7.2f}  {r['backward_ratio']:8.2f}   "
                f"({r['numba_forward_ms']:.3f} / {r['numba_backward_ms']:.3f})"
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
