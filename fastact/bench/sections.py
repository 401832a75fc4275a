"""Three sections of a run: the main table, underflowing inputs, and pairs.

``main`` times every case, dtype, pass, size and thread count against the
streaming limit and the peers; ``denormal`` times inputs whose exp
underflows against N(0, 1) inputs; ``pairs`` times an entry against the
baseline the table names for it (rrelu in training mode and prelu with its
weight gradient against leaky_relu).  The fourth, ``floor``, is in :mod:`.floor`.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import fastact
from fastact import _half

from .cases import SEED, Case, cases_of, make_input
from .peers import Fastact, Impl, NumExpr, NumPy, Torch, _omp_get, _omp_set
from .timing import Timing, measure_together

PAR_MIN = 32768  # below this every implementation runs one thread: no threaded row
POOL_ELEMENTS = 100_000  # in-place calls cycle over this many elements of fresh copies


def _size(n: int) -> str:
    e = int(round(math.log10(n))) if n > 0 else 0
    return f"1e{e}" if 10**e == n else str(n)


def _bytes(pass_: str, n: int, itemsize: int) -> int:
    return (3 if pass_ == "bwd" else 2) * n * itemsize


@dataclass
class Arrays:
    """The arrays of one (case, dtype, size) cell, shared by every implementation."""

    x: np.ndarray
    y: np.ndarray
    g: np.ndarray
    out: np.ndarray
    pool: list[np.ndarray]

    def refresh(self) -> None:
        for b in self.pool:
            np.copyto(b, self.x)


def make_arrays(case: Case, n: int, dtype, kind: str = "normal") -> Arrays:
    x = make_input(case, n, dtype, kind)
    g = make_input(case, n, dtype, "normal", seed=SEED + 1)
    y = np.empty_like(x)
    with fastact.config(backend="cython" if "cython" in fastact.backends() else "auto"):
        Fastact("cython").forward(case, x, y)()
    pool = [np.empty_like(x) for _ in range(max(1, min(32, POOL_ELEMENTS // max(n, 1))))]
    return Arrays(x, y, g, np.empty_like(x), pool)


def calls_for(impl: Impl, case: Case, pass_: str, a: Arrays) -> tuple[list, Callable | None]:
    """The callables of one measurement (empty: not supported) and their setup."""
    if pass_ == "fwd":
        c = impl.forward(case, a.x, a.out)
        return ([c] if c else []), None
    if pass_ == "fwd_inplace":
        if isinstance(impl, (NumPy, NumExpr)):
            return [], None  # their in-place call is the same expression: not repeated
        cs = [impl.forward(case, b, b) for b in a.pool]
        return ([c for c in cs if c] if all(cs) else []), a.refresh
    c = impl.backward(case, a.g, a.x, a.y, a.out)
    return ([c] if c else []), None


# --- the run -------------------------------------------------------------------


@dataclass
class Settings:
    cases: list[Case]
    dtypes: list[str]
    sizes: list[int]
    threads: list[int]
    passes: list[str]
    backends: list[str]
    compare: list[str]
    min_time: float
    sections: list[str]
    denormal_size: int
    pair_sizes: list[int]


class Progress:
    """One status line on stderr (rewritten in place on a terminal)."""

    def __init__(self, total: int, quiet: bool = False):
        self.total, self.done, self.t0 = total, 0, time.perf_counter()
        self.tty = sys.stderr.isatty()
        self.quiet = quiet

    def step(self, what: str) -> None:
        self.done += 1
        if self.quiet:
            return
        el = time.perf_counter() - self.t0
        msg = f"[{self.done}/{self.total}] {what}  ({el:.0f} s)"
        if self.tty:
            sys.stderr.write("\r" + msg.ljust(79)[:79])
        else:
            sys.stderr.write(msg + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.tty and not self.quiet:
            sys.stderr.write("\r" + " " * 79 + "\r")
            sys.stderr.flush()


def _record(case, dtype, pass_, n, threads, impl, t: Timing, kind="normal") -> dict:
    itemsize = _half.dtype_named(dtype).itemsize
    nbytes = _bytes(pass_, n, itemsize)
    return {
        "case": case.label,
        "activation": case.name,
        "params": dict(case.params),
        "training": case.training,
        "dtype": dtype,
        "pass": pass_,
        "size": n,
        "threads": threads,
        "input": kind,
        "impl": impl,
        "best_s": t.best,
        "median_s": t.median,
        "samples": t.samples,
        "number": t.number,
        "bytes": nbytes,
        "gbps": nbytes / t.best / 1e9,
    }


class _Threads:
    """Set and restore fastact's backend/threads and the others' thread counts."""

    def __init__(self, impls: list[Impl]):
        self.impls = impls

    def __enter__(self):
        self.backend = fastact.get_backend()
        self.nthreads = fastact.get_num_threads()
        self.omp = _omp_get()
        self.torch = None
        for impl in self.impls:
            if isinstance(impl, Torch):
                self.torch = impl.torch.get_num_threads()
        return self

    def __exit__(self, *exc):
        fastact.set_backend(self.backend)
        fastact.set_num_threads(self.nthreads)
        for impl in self.impls:
            if isinstance(impl, Torch) and self.torch is not None:
                impl.torch.set_num_threads(self.torch)
        if self.omp is not None:  # torch's setting is the OpenMP one of this thread
            _omp_set(self.omp)


def run_main(
    s: Settings, impls: list[Impl], progress: Progress, on_case: Callable | None = None
) -> list[dict]:
    """The main table.  All cells of one (case, dtype, size) are timed together,
    interleaved (see :func:`measure_together`), the streaming limit among them;
    ``on_case(case, rows)`` runs after each case."""
    results: list[dict] = []
    for case in s.cases:
        rows: list[dict] = []
        for dtype in s.dtypes:
            for n in s.sizes:
                a = make_arrays(case, n, dtype)
                jobs, by = {}, {}
                for pass_ in s.passes:
                    for threads in s.threads:
                        if threads > 1 and n < PAR_MIN:
                            continue
                        for impl in impls:
                            if threads > 1 and not impl.threaded:
                                continue
                            calls, setup = calls_for(impl, case, pass_, a)
                            if calls:
                                key = (pass_, threads, impl.name)
                                jobs[key], by[key] = (calls, setup), impl
                got = measure_together(jobs, s.min_time, lambda k, _b=by: _b[k].set_threads(k[1]))
                for (pass_, threads, name), t in got.items():
                    if name != "limit":
                        continue
                    lrec = _record(case, dtype, pass_, n, threads, "limit", t)
                    lrec["limit_s"], lrec["ratio"] = t.best, 1.0
                    rows.append(lrec)
                    for (p2, t2, other), u in got.items():
                        if (p2, t2) == (pass_, threads) and other != "limit":
                            r = _record(case, dtype, pass_, n, threads, other, u)
                            r["limit_s"], r["ratio"] = t.best, u.best / t.best
                            rows.append(r)
                progress.step(f"{case.label} {dtype} {_size(n)}")
        results += rows
        if on_case is not None:
            on_case(case, rows)
    return results


def run_denormal(s: Settings, impls: list[Impl], progress: Progress) -> list[dict]:
    """Inputs whose exp underflows (x in [-100, -80]) against N(0, 1), one thread."""
    out = []
    chosen = [i for i in impls[1:] if isinstance(i, (Fastact, Torch))]
    n = s.denormal_size
    for case in s.cases:
        if case.rowwise:
            continue
        for dtype in s.dtypes:
            arrays = {k: make_arrays(case, n, dtype, k) for k in ("normal", "denormal")}
            for impl in chosen:
                impl.set_threads(1)
                for pass_ in ("fwd", "bwd"):
                    jobs = {}
                    for kind, a in arrays.items():
                        fwd = impl.forward(case, a.x, a.y)  # this implementation's own y
                        if fwd is None:
                            break
                        fwd()
                        calls, setup = calls_for(impl, case, pass_, a)
                        if not calls:
                            break
                        jobs[kind] = (calls, setup)
                    t = measure_together(jobs, 2 * s.min_time) if len(jobs) == 2 else {}
                    if len(t) < 2:
                        continue
                    out.append(
                        {
                            "case": case.label,
                            "dtype": dtype,
                            "pass": pass_,
                            "size": n,
                            "threads": 1,
                            "impl": impl.name,
                            "normal_s": t["normal"].best,
                            "denormal_s": t["denormal"].best,
                            "ratio": t["denormal"].best / t["normal"].best,
                        }
                    )
            progress.step(f"denormal {case.label} {dtype}")
    return out


def pair_specs(cases: list[Case]) -> list[tuple[str, Case, Case, str, float]]:
    """(label, case, baseline case, "fwd" | "bwd" | "both", target) for each selected
    case whose entry names a baseline."""
    specs = []
    for case in cases:
        if case.entry.baseline is None or case.label != case.name and not case.training:
            continue
        base_name, ratio = case.entry.baseline
        base = cases_of(fastact.activation(base_name))[0]
        if case.training:
            for p in ("fwd", "bwd"):
                specs.append((f"{case.label} {p} / {base.label} {p}", case, base, p, ratio))
        elif case.entry.channel_param:
            label = f"{case.label} fwd+bwd / {base.label} fwd+bwd"
            specs.append((label, case, base, "both", ratio))
        elif not case.entry.has_training_mode:
            for p in ("fwd", "bwd"):
                specs.append((f"{case.label} {p} / {base.label} {p}", case, base, p, ratio))
    return specs


def run_pairs(s: Settings, impls: list[Impl], progress: Progress) -> list[dict]:
    """Each entry against the baseline the table names for it (time ratio)."""
    out = []
    specs = pair_specs(s.cases)
    if not specs:
        return out
    chosen = [i for i in impls[1:] if isinstance(i, (Fastact, Torch))]
    for dtype in s.dtypes:
        for n in s.pair_sizes:
            involved = {c.label: c for _, a, b, _, _ in specs for c in (a, b)}
            arr = {label: make_arrays(c, n, dtype) for label, c in involved.items()}
            for threads in s.threads:
                if threads > 1 and n < PAR_MIN:
                    continue
                for impl in chosen:
                    impl.set_threads(threads)

                    def both(case, _impl=impl, _arr=arr):
                        a = _arr[case.label]
                        f = _impl.forward(case, a.x, a.out)
                        b = _impl.backward(case, a.g, a.x, a.y, a.g.copy())
                        if f is None or b is None:
                            return None
                        return lambda: (f(), b())

                    def one(case, pass_, _impl=impl, _arr=arr):
                        if pass_ == "both":
                            return both(case)
                        calls, _ = calls_for(_impl, case, pass_, _arr[case.label])
                        return calls[0] if calls else None

                    for what, case, base, pass_, tgt in specs:
                        a, b = one(case, pass_), one(base, pass_)
                        if a is None or b is None:
                            continue
                        got = measure_together({0: ([a], None), 1: ([b], None)}, 2 * s.min_time)
                        ta, tb = got[0], got[1]
                        out.append(
                            {
                                "pair": what,
                                "dtype": dtype,
                                "size": n,
                                "threads": threads,
                                "impl": impl.name,
                                "time_s": ta.best,
                                "baseline_s": tb.best,
                                "ratio": ta.best / tb.best,
                                "target": tgt,
                            }
                        )
            progress.step(f"pairs {dtype} {_size(n)}")
    return out
