"""``python -m fastact tune``: measure where threads and which backend pay off, here.

For every activation, pass and dtype it times each available compiled
backend, serial and with all threads, on sizes from 2^10 to 2^22, and
derives a candidate plan (see :mod:`fastact._profile`).  A candidate that
differs from the shipped default is then timed against the default, side by
side in interleaved rounds, at every size where the two decide differently;
it is kept only where it is faster beyond noise at all of them.  The kept
plans go to the user's cache directory, where ``auto`` dispatch picks them
up; ``--show`` prints the saved profile and ``--reset`` deletes it.
"""

from __future__ import annotations

import argparse
import functools
import sys

import numpy as np

from . import _backends, _dispatch, _half, _profile
from ._config import get_num_threads
from ._profile import Plan
from .bench.timing import measure_together, noticeably_faster
from .table import TABLE, Activation

SIZES = tuple(2**k for k in range(10, 23, 2))
QUICK_SIZES = tuple(2**k for k in range(12, 21, 4))
# Parallel must win by this factor before a plan switches to it.
MARGIN = 0.9


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer sizes and shorter timings; saves nothing unless --save is given",
    )
    parser.add_argument("--save", action="store_true", help="save the profile also after --quick")
    parser.add_argument("--dry-run", action="store_true", help="print the plans, save nothing")
    parser.add_argument(
        "--activation",
        action="append",
        metavar="NAME",
        help="tune only this activation (repeatable; default: all); the saved plans of "
        "the others are kept",
    )
    parser.add_argument(
        "--output", metavar="FILE", help="where to save (default: the user cache directory)"
    )
    parser.add_argument(
        "--show", action="store_true", help="print the saved profile and exit (measures nothing)"
    )
    parser.add_argument(
        "--reset",
        action="store_true",
        help="delete the saved profile and exit: the shipped defaults apply again",
    )


class Kernel:
    """One (entry, pass, dtype) callable on any backend with a thread count."""

    def __init__(self, entry: Activation, pass_: str, dtype, n: int):
        rng = np.random.default_rng(0)
        self.entry, self.pass_ = entry, pass_
        x = rng.normal(0, 2, n).astype(dtype)
        self.x, self.g, self.out = x, rng.normal(size=n).astype(dtype), np.empty_like(x)
        self.params = tuple(float(v) for v in _scalar_params(entry))
        self.w = np.array([0.25])
        # a 16-bit array runs its backend's float32 kernels, as the general path does
        self._half: dict | None = {} if _half.is_half(x.dtype) else None

    def __call__(self, backend, nthreads: int) -> None:
        if self._half is not None:
            backend = self._half.setdefault(backend.name, _half.HalfBackend(backend))
        e, x, g, out = self.entry, self.x, self.g, self.out
        if e.rowwise:
            rows, rowlen = x.size // 64, 64
            if self.pass_ == "forward":
                backend.rowwise_forward(e, x, out, rows, rowlen, nthreads)
            else:
                backend.rowwise_backward(e, g, x, out, rows, rowlen, nthreads)
        elif e.channel_param:
            if self.pass_ == "forward":
                backend.channel_forward(e, x, out, self.w, 1, 1, x.size, nthreads)
            else:
                backend.channel_backward(e, g, x, out, self.w, 1, 1, x.size, nthreads)
        elif self.pass_ == "forward":
            backend.forward(e, x, out, self.params, False, 0, nthreads)
        else:
            backend.backward(e, g, np.abs(x), out, self.params, False, 0, nthreads)


def _scalar_params(entry: Activation) -> list:
    values = []
    for p in entry.scalar_params:
        v = entry.example_params[p.name]
        values.append(p.choices.index(v) if p.choices else v)
    return values


def measure(entry, pass_, dtype, sizes, backends, threads, min_time):
    """{(backend, nthreads): [seconds per size]}: at each size every choice is timed
    interleaved with the others (the benchmarks' timing loop)."""
    times: dict[tuple[str, int], list[float]] = {}
    for n in sizes:
        k = Kernel(entry, pass_, dtype, n)
        jobs = {
            (name, t): ([functools.partial(k, _backends.get(name), t)], None)
            for name in backends
            for t in sorted({1, threads})
        }
        for key, timing in measure_together(jobs, min_time).items():
            times.setdefault(key, []).append(timing.best)
    return times


def _prefer(candidates: dict[str, list[float]], default: str) -> str:
    """``default`` unless another backend is faster by the margin at most sizes."""
    if default not in candidates:
        return min(candidates, key=lambda b: sorted(candidates[b])[len(candidates[b]) // 2])
    best = default
    for name, ts in candidates.items():
        wins = sum(t < MARGIN * d for t, d in zip(ts, candidates[default]))
        if name != default and wins > len(ts) // 2:
            best = name
    return best


def derive(times: dict, sizes) -> Plan:
    """The plan the timings call for (Cython unless another backend clearly wins)."""
    serial = {b: ts for (b, t), ts in times.items() if t == 1}
    parallel = {b: ts for (b, t), ts in times.items() if t > 1}
    small = _prefer(serial, "cython")
    if not parallel:
        return Plan(serial_below=_profile.NEVER, small=small, large=small)
    large = _prefer(parallel, "cython")
    best_serial = [min(ts[i] for ts in serial.values()) for i in range(len(sizes))]
    best_par = parallel[large]
    serial_below = _profile.NEVER
    # the first size from which parallel wins at every larger size
    for i in range(len(sizes)):
        if all(best_par[j] < MARGIN * best_serial[j] for j in range(i, len(sizes))):
            # switch halfway (geometrically) between the last losing and first winning size
            serial_below = sizes[i] if i == 0 else int((sizes[i - 1] * sizes[i]) ** 0.5)
            break
    return Plan(serial_below=serial_below, small=small, large=large)


def _progress(done: int, total: int, label: str) -> None:
    width = 30
    fill = int(width * done / total)
    sys.stderr.write(f"\r[{'#' * fill}{'.' * (width - fill)}] {done}/{total} {label:<40}")
    sys.stderr.flush()


def choice(plan: Plan, n: int, threads: int) -> tuple[str, int]:
    """(backend, thread count) that ``plan`` runs ``n`` elements with."""
    return (plan.small, 1) if n < plan.serial_below else (plan.large, threads)


def verify(entry, pass_, dtype, default: Plan, candidate: Plan, sizes, threads, min_time):
    """(keep, reason): the candidate against the default, interleaved, at each size
    where they decide differently; kept only if faster beyond noise at all of them."""
    wins = []
    for n in sizes:
        a, b = choice(default, n, threads), choice(candidate, n, threads)
        if a == b:
            continue
        k = Kernel(entry, pass_, dtype, n)
        jobs = {
            "default": ([functools.partial(k, _backends.get(a[0]), a[1])], None),
            "candidate": ([functools.partial(k, _backends.get(b[0]), b[1])], None),
        }
        got = measure_together(jobs, 3 * min_time)
        d, c = got["default"], got["candidate"]
        ratio = c.best / d.best
        if not noticeably_faster(c, d):
            return False, (
                f"at {n}: {b[0]}/{b[1]}t {ratio:.2f}x the default's {a[0]}/{a[1]}t time, "
                "not faster beyond noise"
            )
        wins.append(f"{n}: {ratio:.2f}x")
    if not wins:
        return False, "same choices as the default"
    return True, "time vs default at " + ", ".join(wins)


def tuned_dtypes() -> tuple[str, ...]:
    """The dtypes measured: float32, float64 and the 16-bit ones available here."""
    return _dispatch.DTYPES + tuple(d.name for d in _half.dtypes())


def tune(names=None, quick=False, progress=True, report=print) -> dict[str, Plan]:
    """The plans that beat the shipped defaults here (keyed as in the profile).

    ``report(line)`` receives one line per plan that differs from the default:
    what changes and why it is kept or dropped.
    """
    sizes = QUICK_SIZES if quick else SIZES
    min_time = 0.01 if quick else 0.03
    threads = get_num_threads()
    backends = [b for b in ("cython", "numba") if b in _backends.available()]
    entries = [e for e in TABLE if names is None or e.name in names]
    jobs = [(e, p, d) for e in entries for p in _dispatch.PASSES for d in tuned_dtypes()]
    plans = {}
    for i, (e, p, d) in enumerate(jobs):
        if progress:
            _progress(i, len(jobs), f"{e.name} {p} {d}")
        dtype = _half.dtype_named(d)
        times = measure(e, p, dtype, sizes, backends, threads, min_time)
        candidate = derive(times, sizes)
        default = _dispatch.default_plan(e, p, dtype)
        key = _profile.key(e.name, p, d)
        if candidate == default:
            continue
        keep, why = verify(e, p, dtype, default, candidate, sizes, threads, min_time)
        if progress:
            sys.stderr.write("\r" + " " * 79 + "\r")
        report(
            f"{key}: {describe(default)} -> {describe(candidate)}: "
            + ("kept, " if keep else "dropped, ")
            + why
        )
        if keep:
            plans[key] = candidate
    if progress:
        _progress(len(jobs), len(jobs), "done")
        sys.stderr.write("\n")
    return plans


def describe(plan: Plan) -> str:
    """``serial below 16384 (cython), then parallel (cython)``"""
    if plan.serial_below >= _profile.NEVER:
        return f"always serial ({plan.small})"
    return f"serial below {plan.serial_below} ({plan.small}), then parallel ({plan.large})"


def format_plans(plans: dict[str, Plan]) -> str:
    rows = [("activation/pass/dtype", "serial below", "serial on", "parallel on")]
    for k, p in plans.items():
        below = "never parallel" if p.serial_below >= _profile.NEVER else str(p.serial_below)
        rows.append((k, below, p.small, p.large))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)


def show(target=None) -> int:
    p = target or _profile.path()
    plans, source = _profile.load(p)
    print(f"profile: {source}")
    if plans:
        print(format_plans(plans))
    print("every other activation/pass/dtype: the shipped defaults")
    return 0


def reset(target=None) -> int:
    p = target or _profile.path()
    if p.exists():
        p.unlink()
        print(f"deleted {p}: the shipped defaults apply")
    else:
        print(f"no profile at {p}: the shipped defaults apply")
    _dispatch.load_profile(p)
    return 0


def run(args: argparse.Namespace) -> int:
    target = _profile.Path(args.output) if args.output else None
    if args.show:
        return show(target)
    if args.reset:
        return reset(target)
    if args.activation:
        unknown = sorted(set(args.activation) - {e.name for e in TABLE})
        if unknown:
            print(f"unknown activation(s): {', '.join(unknown)}", file=sys.stderr)
            return 2
    print(
        f"tuning with {get_num_threads()} thread(s), backends {_backends.available()}: "
        "a plan is kept only where it beats the shipped default beyond noise"
    )
    plans = tune(args.activation, quick=args.quick)
    if plans:
        print(format_plans(plans))
    else:
        print("the shipped defaults are the best found: no plan changes")
    if args.dry_run:
        print("dry run: nothing saved")
        return 0
    if args.quick and not args.save:
        print("quick run: nothing saved (add --save to keep these plans)")
        return 0
    old, _ = _profile.load(target)
    measured = {
        _profile.key(e.name, p, d)
        for e in TABLE
        if not args.activation or e.name in args.activation
        for p in _dispatch.PASSES
        for d in tuned_dtypes()
    }
    # keep the plans of what was not measured; what was measured is replaced
    plans = {**{k: v for k, v in old.items() if k not in measured}, **plans}
    path = _profile.save(plans, target)
    print(f"saved {path} ({len(plans)} plan(s) differ from the defaults)")
    _dispatch.load_profile(path)
    return 0
