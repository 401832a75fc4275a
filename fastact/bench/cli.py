"""The command line of ``python -m fastact bench``: arguments, the run, JSON."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

import fastact
from fastact import _half

from . import floor
from .accuracy import format_accuracy
from .accuracy import measure as measure_accuracy
from .cases import DEFAULT_SIZES, DTYPE_CHOICES, PASSES, QUICK_SIZES, all_cases
from .peers import implementations
from .plot import plot, require_matplotlib
from .report import (
    check_targets,
    format_case,
    format_denormal,
    format_pairs,
    format_summary,
    format_targets,
    targets_line,
)
from .sections import (
    Progress,
    Settings,
    _size,
    _Threads,
    pair_specs,
    run_denormal,
    run_main,
    run_pairs,
)

SCHEMA = "fastact-bench/1"
SECTIONS = ("main", "denormal", "pairs", "floor")


def metadata(argv: list[str] | None, s: Settings) -> dict:
    versions = {"fastact": getattr(fastact, "__version__", "?"), "numpy": np.__version__}
    for mod in ("numba", "torch", "numexpr"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            versions[mod] = None
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    return {
        "schema": SCHEMA,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "versions": versions,
        "argv": list(argv or []),
        "dtypes": s.dtypes,
        "sizes": s.sizes,
        "threads": s.threads,
        "passes": s.passes,
        "backends": s.backends,
        "compare": s.compare,
        "min_time": s.min_time,
    }


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _sizes(text: str) -> list[int]:
    out = []
    for t in _csv(text):
        try:
            v = float(t)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--size: {t!r} is not a number") from None
        if v < 1 or v != int(v):
            raise argparse.ArgumentTypeError(f"--size: {t!r} is not a positive integer")
        out.append(int(v))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick", action="store_true", help="sizes 1e3 and 1e6, fwd and bwd, short timings"
    )
    parser.add_argument(
        "--activation",
        metavar="NAMES",
        help="comma-separated activations (a name selects its variants: gelu -> gelu, "
        "gelu[tanh]); default: all",
    )
    parser.add_argument(
        "--dtype",
        metavar="DTYPES",
        help="float32,float64,float16,bfloat16 (default: float32,float64; bfloat16 needs "
        "ml_dtypes)",
    )
    parser.add_argument(
        "--size",
        metavar="SIZES",
        type=_sizes,
        help="element counts, e.g. 1e3,1e6 (default: 1e3,...,1e7; --quick: 1e3,1e6)",
    )
    parser.add_argument(
        "--threads", metavar="COUNTS", help="thread counts, e.g. 1,all (default: 1,all)"
    )
    parser.add_argument(
        "--pass",
        dest="passes",
        metavar="PASSES",
        help="fwd,fwd_inplace,bwd (default: all three; --quick: fwd,bwd)",
    )
    parser.add_argument(
        "--backend", metavar="NAMES", help="fastact backends (default: cython,numba)"
    )
    parser.add_argument(
        "--compare",
        metavar="NAMES",
        help="peers: numpy,torch,numexpr, or none (default: those installed)",
    )
    parser.add_argument(
        "--sections",
        metavar="NAMES",
        help=f"{','.join(SECTIONS)} (default: all four)",
    )
    parser.add_argument(
        "--min-time",
        type=float,
        metavar="S",
        help="seconds spent per measurement, at least 3 samples (default: 0.03; --quick: 0.01)",
    )
    parser.add_argument(
        "--detail",
        action="store_true",
        help="also print each activation's table, the other sections and every target",
    )
    parser.add_argument("--json", metavar="FILE", help="save every number as JSON")
    parser.add_argument(
        "--plot", metavar="FILE.png", help="draw fastact against the limit and each peer"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def settings_from(args: argparse.Namespace) -> Settings:
    cases = all_cases()
    if args.activation:
        wanted = _csv(args.activation)
        known = {c.label for c in cases} | {c.name for c in cases}
        bad = [w for w in wanted if w not in known]
        if bad:
            raise ValueError(
                f"--activation: unknown {', '.join(bad)}; known: {', '.join(sorted(known))}"
            )
        cases = [c for c in cases if c.label in wanted or c.name in wanted]
    dtypes = _csv(args.dtype) if args.dtype else ["float32", "float64"]
    for d in dtypes:
        if d not in DTYPE_CHOICES:
            raise ValueError(f"--dtype: {d!r} is not one of {', '.join(DTYPE_CHOICES)}")
        try:
            _half.dtype_named(d)
        except ImportError as exc:
            raise ValueError(f"--dtype: {exc}") from None
    allt = fastact.get_num_threads()
    threads = []
    for t in _csv(args.threads) if args.threads else ["1", "all"]:
        if t == "all":
            threads.append(allt)
        elif t.isdigit() and int(t) >= 1:
            threads.append(int(t))
        else:
            raise ValueError(f"--threads: {t!r} is not a positive integer or 'all'")
    threads = sorted(set(threads))
    passes = _csv(args.passes) if args.passes else (["fwd", "bwd"] if args.quick else list(PASSES))
    for p in passes:
        if p not in PASSES:
            raise ValueError(f"--pass: {p!r} is not one of {', '.join(PASSES)}")
    available = fastact.backends()
    if args.backend:
        backends = _csv(args.backend)
        for b in backends:
            if b not in ("cython", "numba", "numpy"):
                raise ValueError(f"--backend: {b!r} is not cython, numba or numpy")
            if b not in available:
                raise ValueError(f"--backend: {b!r} is not available here")
    else:
        backends = [b for b in ("cython", "numba") if b in available]
    if "cython" not in available:
        raise RuntimeError("the benchmark needs the compiled Cython backend (its streaming kernel)")
    if args.compare is None:
        compare = ["numpy", "torch", "numexpr"]
    else:
        compare = [] if args.compare.strip() == "none" else _csv(args.compare)
        for c in compare:
            if c not in ("numpy", "torch", "numexpr"):
                raise ValueError(f"--compare: {c!r} is not numpy, torch, numexpr or none")
    sizes = args.size or list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    sections = _csv(args.sections) if args.sections else list(SECTIONS)
    for sec in sections:
        if sec not in SECTIONS:
            raise ValueError(f"--sections: {sec!r} is not one of {', '.join(SECTIONS)}")
    min_time = args.min_time if args.min_time is not None else (0.01 if args.quick else 0.03)
    if min_time < 0:
        raise ValueError("--min-time must be >= 0")
    big = [n for n in sizes if n >= 10**6]
    return Settings(
        cases=cases,
        dtypes=dtypes,
        sizes=sizes,
        threads=threads,
        passes=passes,
        backends=backends,
        compare=compare,
        min_time=min_time,
        sections=sections,
        denormal_size=min(10**5 if args.quick else 10**6, max(sizes)),
        pair_sizes=(big or sizes[-1:])[-1:] if args.quick else (big or sizes[-1:]),
    )


def count_steps(s: Settings) -> int:
    """The steps the progress line counts (the header announces the same number)."""
    steps = 0
    if "main" in s.sections:
        steps += len(s.cases) * len(s.dtypes) * len(s.sizes)
    if "denormal" in s.sections:
        steps += sum(not c.rowwise for c in s.cases) * len(s.dtypes)
    if "pairs" in s.sections and pair_specs(s.cases):
        steps += len(s.dtypes) * len(s.pair_sizes)
    if "floor" in s.sections:
        steps += len(floor.floor_cases(s.cases)) * len(s.dtypes)
    return steps


def run_floor_section(s: Settings, progress: Progress) -> tuple[list[dict], str]:
    """The floor section's rows and table, or no rows and the reason it is skipped."""
    try:
        fl = floor.load()
    except floor.FloorUnavailable as exc:
        for _ in floor.floor_cases(s.cases):
            for _ in s.dtypes:
                progress.step("floor (skipped)")
        return [], f"\n== compute floor: skipped: {exc}"
    rows = floor.run_floor(fl, s.cases, s.dtypes, s.min_time, progress.step)
    return rows, floor.format_floor(rows, fl.isas)


def run(args: argparse.Namespace) -> int:
    try:
        s = settings_from(args)
    except (ValueError, RuntimeError) as exc:
        print(f"fastact bench: {exc}", file=sys.stderr)
        return 2
    if args.plot:
        require_matplotlib()  # fail before measuring, not after
    impls = implementations(s.backends, s.compare)
    peers = [i.name for i in impls[1:] if not i.name.startswith("fastact-")]
    asked = args.compare is not None and args.compare.strip() != "none"
    missing = [c for c in s.compare if c not in peers] if asked else []
    steps = count_steps(s)
    progress = Progress(steps, args.quiet)
    detail = getattr(args, "detail", False)

    def emit(text: str) -> None:
        progress.close()
        if text:
            print(text, flush=True)

    print(
        f"fastact bench: {len(s.cases)} cases x {len(s.dtypes)} dtypes "
        f"({','.join(s.dtypes)}), sizes {','.join(_size(n) for n in s.sizes)}, threads "
        f"{','.join(map(str, s.threads))}: {steps} steps; fastact "
        f"{', '.join(s.backends)}"
        + (f"; peers {', '.join(peers)}" if peers else "")
        + (f" ({', '.join(missing)} not installed)" if missing else "")
    )
    results: list[dict] = []
    denormal: list[dict] = []
    pairs: list[dict] = []
    floor_rows: list[dict] = []
    floor_text = ""
    t0 = time.perf_counter()
    on_case = (lambda case, rows: emit(format_case(case, rows, impls))) if detail else None
    with _Threads(impls):
        if "main" in s.sections:
            results = run_main(s, impls, progress, on_case)
        if "denormal" in s.sections:
            denormal = run_denormal(s, impls, progress)
            if detail:
                emit(format_denormal(denormal))
        if "pairs" in s.sections:
            pairs = run_pairs(s, impls, progress)
            if detail and pairs:
                emit(format_pairs(pairs))
        if "floor" in s.sections and floor.floor_cases(s.cases):
            floor_rows, floor_text = run_floor_section(s, progress)
    checks = check_targets(results, denormal, pairs, s.cases) + floor.floor_checks(floor_rows)
    emit("")
    if detail:
        emit(format_targets(checks))
        print()
    emit(format_summary(results, s.backends[0], peers))
    if floor_text:
        print(floor_text)
    accuracy = measure_accuracy(s.cases, s.dtypes, s.backends[0])
    if accuracy:
        print(format_accuracy(accuracy))
    if checks:
        print(targets_line(checks))
    print(f"{time.perf_counter() - t0:.0f} s")
    if args.json:
        doc = {
            "meta": metadata(sys.argv[1:], s),
            "results": results,
            "denormal": denormal,
            "pairs": pairs,
            "floor": floor_rows,
            "targets": checks,
            "accuracy": accuracy,
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
        print(f"wrote {args.json}")
    if args.plot:
        plot(results, s.cases, args.plot)
        print(f"wrote {args.plot}")
    return 0
