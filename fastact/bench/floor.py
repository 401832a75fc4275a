"""The ``floor`` section: fastact's transcendental kernels against hand-written SIMD loops.

A transcendental activation over cache-resident data is bound by arithmetic,
not by memory, so its limit is the best code this CPU can run for the same
function at the same accuracy.  ``floor.c`` (with ``floor_impl.h``) has such
loops for exp, sigmoid, tanh, silu and exact gelu, float32 and float64, in
AVX-512 and AVX2+FMA intrinsics.  They are compiled here, at benchmark time,
by the system C compiler into the user cache directory and loaded with
ctypes; the library never uses them, and where there is no compiler, no x86
CPU with AVX2 or AVX-512, or no writable directory, the section says why and
is skipped.

Each function is timed on 4096 elements (in L1/L2) and 10**6 (in L2/L3), one
thread, beside fastact's public call on the same arrays, interleaved; the
accuracy of both (max ulp against the C library's long double functions, over
the inputs whose results are normal numbers) is printed next to the times.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._backends.numba._store import _OFF as CACHE_OFF
from .cases import SEED, Case, cases_of
from .peers import Fastact
from .timing import measure_together

# The functions of floor.c, in its order; each but exp names its table entry
# (the entry's first case: gelu's is the exact one).
FUNCTIONS = ("exp", "sigmoid", "tanh", "silu", "gelu")
ISAS = {"avx512": 2, "avx2": 1}  # floor.c's instruction-set numbers
SIZES = (4096, 10**6)
FLOOR_TARGET = 1.2  # a transcendental kernel's time over the floor's, at 10**6
SOURCES = ("floor.c", "floor_impl.h")


class FloorUnavailable(RuntimeError):
    """The floor loops cannot run here (the message says why)."""


def _compiler() -> list[str]:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or ""
    cmd = shlex.split(cc)
    if cmd and shutil.which(cmd[0]):
        return cmd
    for name in ("cc", "gcc", "clang"):
        if shutil.which(name):
            return [name]
    raise FloorUnavailable("no C compiler found (set CC, or install gcc or clang)")


def _cache_dir() -> Path:
    """FASTACT_CACHE_DIR, else the user cache directory; a temporary one where that is
    not writable or FASTACT_CACHE_DIR turns the disk cache off."""
    base = os.environ.get("FASTACT_CACHE_DIR")
    if base is not None and base.strip().lower() in CACHE_OFF:
        return Path(tempfile.mkdtemp(prefix="fastact-floor-"))
    if base:
        d = Path(base).expanduser()
    else:
        try:
            import platformdirs

            d = Path(platformdirs.user_cache_dir("fastact", appauthor=False))
        except ImportError:  # pragma: no cover - a dependency
            d = Path.home() / ".cache" / "fastact"
    d = d / "bench"
    try:
        d.mkdir(parents=True, exist_ok=True)
        probe = d / f".probe-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
        return d
    except OSError:
        return Path(tempfile.mkdtemp(prefix="fastact-floor-"))


def build() -> Path:
    """The compiled floor library (built once per source and compiler, then reused)."""
    if sys.platform == "win32":
        raise FloorUnavailable("the floor loops are built with GCC or Clang (not on Windows)")
    here = Path(__file__).resolve().parent
    cmd = _compiler()
    h = hashlib.sha256(" ".join(cmd).encode())
    for name in SOURCES:
        try:
            h.update(name.encode() + b"\0" + (here / name).read_bytes())
        except OSError as exc:
            raise FloorUnavailable(f"{name} is missing from the installed package") from exc
    lib = _cache_dir() / f"floor-{h.hexdigest()[:16]}.so"
    if lib.exists():
        return lib
    tmp = lib.with_name(f"{lib.stem}-{os.getpid()}.tmp.so")
    args = [*cmd, "-O2", "-shared", "-fPIC", f"-I{here}", str(here / "floor.c"), "-o", str(tmp)]
    try:
        done = subprocess.run([*args, "-lm"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FloorUnavailable(f"the C compiler did not run ({exc})") from exc
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["no message"])[0]
        raise FloorUnavailable(f"floor.c did not compile ({' '.join(cmd)}: {first})")
    os.replace(tmp, lib)
    return lib


@dataclass
class Floor:
    """The loaded floor loops: ``isas`` are those that run on this CPU, best first."""

    lib: ctypes.CDLL
    isas: list[str]

    def run(self, isa: str, fn: str, x: np.ndarray, out: np.ndarray, reps: int = 1) -> None:
        """out = fn(x), ``reps`` times, with the ``isa`` loop."""
        if x.dtype != out.dtype or x.dtype not in (np.float32, np.float64) or x.size != out.size:
            raise ValueError("x and out must be float32 or float64 arrays of one size and dtype")
        if not (x.flags.c_contiguous and out.flags.c_contiguous):
            raise ValueError("x and out must be contiguous")
        rc = self.lib.fa_floor_run(
            ISAS[isa],
            int(x.dtype == np.float64),
            FUNCTIONS.index(fn),
            x.ctypes.data,
            out.ctypes.data,
            x.size,
            reps,
        )
        if rc != 0:
            raise FloorUnavailable(f"the {isa} loops do not run on this CPU")

    def reference(self, fn: str, x: np.ndarray) -> np.ndarray:
        """fn(x) in long double (the C library's expl, tanhl, erfcl)."""
        xl = np.ascontiguousarray(x, dtype=np.longdouble)
        out = np.empty_like(xl)
        self.lib.fa_floor_reference(FUNCTIONS.index(fn), xl.ctypes.data, out.ctypes.data, xl.size)
        return out


_loaded: Floor | FloorUnavailable | None = None


def load() -> Floor:
    """The floor loops, built on first use; FloorUnavailable says why they cannot run."""
    global _loaded
    if _loaded is None:
        try:
            lib = ctypes.CDLL(str(build()))
            lib.fa_floor_run.argtypes = (
                [ctypes.c_int] * 3 + [ctypes.c_void_p] * 2 + [ctypes.c_long] * 2
            )
            lib.fa_floor_reference.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
            lib.fa_floor_reference.argtypes += [ctypes.c_long]
            have = lib.fa_floor_cpu()
            isas = [name for name, bit in ISAS.items() if have & bit]
            if np.finfo(np.longdouble).nmant < 63:
                raise FloorUnavailable("long double has no extended precision here")
            _loaded = (
                Floor(lib, isas)
                if isas
                else FloorUnavailable("this CPU (or build) has neither AVX-512 nor AVX2 with FMA")
            )
        except FloorUnavailable as exc:
            _loaded = exc
        except OSError as exc:
            _loaded = FloorUnavailable(f"the compiled floor library did not load ({exc})")
    if isinstance(_loaded, FloorUnavailable):
        raise _loaded
    return _loaded


# --- accuracy ------------------------------------------------------------------------


def accuracy_inputs(dtype, n: int = 1 << 17, seed: int = SEED) -> np.ndarray:
    """Uniform on [-40, 40], N(0, 1) and small magnitudes in every binade down to 2**-40."""
    rng = np.random.default_rng(seed)
    small = np.ldexp(rng.uniform(1, 2, n // 8), rng.integers(-40, 0, n // 8))
    x = np.concatenate(
        [rng.uniform(-40, 40, n), rng.standard_normal(n // 4), small, -small, [0.0, 1.0, -1.0]]
    )
    return x.astype(dtype)


def max_ulp(got: np.ndarray, ref: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """The largest error in ulp of the result over the inputs whose exact result is a
    normal number (or 0), and the input where it is."""
    dtype = got.dtype
    tiny = np.finfo(dtype).tiny
    with np.errstate(over="ignore", invalid="ignore"):
        r = np.abs(ref).astype(dtype)
        keep = ((np.abs(ref) >= tiny) | (ref == 0)) & np.isfinite(r)
        sp = np.spacing(np.maximum(r, tiny)).astype(np.longdouble)
        err = np.abs(got.astype(np.longdouble) - ref) / sp
    err = np.where(keep & ~np.isnan(err), err, 0)
    err[keep & np.isnan(got)] = np.inf
    i = int(np.argmax(err))
    return float(err[i]), float(x[i])


# --- the section ---------------------------------------------------------------------


def floor_cases(cases: list[Case]) -> list[tuple[str, Case | None]]:
    """(function, fastact's case) for the floor functions whose entry is selected (exp,
    which is no entry, with any of them)."""
    by_name = {c.name: c for c in cases}
    chosen = [(f, cases_of(by_name[f].entry)[0]) for f in FUNCTIONS[1:] if f in by_name]
    return [("exp", None), *chosen] if chosen else []


def _fastact_call(case: Case, x: np.ndarray, out: np.ndarray):
    impl = Fastact("cython")
    impl.set_threads(1)
    return impl.forward(case, x, out)


def run_floor(fl: Floor, cases: list[Case], dtypes: list[str], min_time: float, step) -> list:
    """One row per (function, dtype, size): ns per element of each floor loop and of
    fastact (one thread), and the max ulp of each."""
    rows = []
    rng = np.random.default_rng(SEED)
    for fn, case in floor_cases(cases):
        for dtype in dtypes:
            xa = accuracy_inputs(dtype)
            ref = fl.reference(fn, xa)
            ya = np.empty_like(xa)
            ulp = {}
            for isa in fl.isas:
                fl.run(isa, fn, xa, ya)
                ulp[isa] = max_ulp(ya, ref, xa)
            if case is not None:
                _fastact_call(case, xa, ya)()
                ulp["fastact"] = max_ulp(ya, ref, xa)
            for n in SIZES:
                x = rng.standard_normal(n).astype(dtype)
                outs = {k: np.empty_like(x) for k in [*fl.isas, "fastact"]}
                reps = max(1, 10**6 // n)
                jobs = {
                    isa: (
                        [lambda i=isa, f=fn, a=x, o=outs[isa], k=reps: fl.run(i, f, a, o, k)],
                        None,
                    )
                    for isa in fl.isas
                }
                if case is not None:
                    jobs["fastact"] = ([_fastact_call(case, x, outs["fastact"])], None)
                    jobs["call"] = ([_fastact_call(case, x[:16], outs["fastact"][:16])], None)
                got = measure_together(jobs, min_time)
                call = got.pop("call").best if "call" in got else 0.0
                ns = {k: t.best * 1e9 / (n * reps) for k, t in got.items() if k != "fastact"}
                if "fastact" in got:
                    # its kernel: the call's time less that of a 16-element call
                    ns["fastact"] = max(got["fastact"].best - call, 0.0) * 1e9 / n
                rows.append(
                    {
                        "function": fn,
                        "dtype": dtype,
                        "size": n,
                        "threads": 1,
                        "ns_per_element": ns,
                        "call_s": call,
                        "max_ulp": {k: v[0] for k, v in ulp.items()},
                        "max_ulp_at": {k: v[1] for k, v in ulp.items()},
                        "floor": min(ns[i] for i in fl.isas),
                        "ratio": ns["fastact"] / min(ns[i] for i in fl.isas)
                        if "fastact" in ns
                        else None,
                    }
                )
            step(f"floor {fn} {dtype}")
    return rows


def _ulp(v: float) -> str:
    return f"{v:.2f}" if v < 1000 else ">1e3"


def format_floor(rows: list[dict], isas: list[str]) -> str:
    """The floor table: ns per element at each size, max ulp, fastact over the floor."""
    if not rows:
        return ""
    sizes = sorted({r["size"] for r in rows})
    cols = [*isas, "fastact"]
    head = ["function", "dtype  "]
    for _ in sizes:
        head += [f"{c[:7]:>7}" for c in cols] + [f"{'x floor':>7}"]
    head += [f"{'ulp ' + c[:7]:>12}" for c in cols]
    lines = [
        "\n== compute floor: hand-written SIMD loops (floor.c) beside fastact, one thread, "
        f"ns per element at {' and '.join(map(str, sizes))} elements; max ulp (at x)",
        " | ".join(head),
    ]
    cells: dict[tuple, dict[int, dict]] = {}
    for r in rows:
        cells.setdefault((r["function"], r["dtype"]), {})[r["size"]] = r
    for (fn, dtype), by_size in cells.items():
        row = [f"{fn:8}", f"{dtype:7}"]
        for n in sizes:
            r = by_size.get(n)
            ns = r["ns_per_element"] if r else {}
            row += [f"{ns[c]:7.3f}" if c in ns else f"{'-':>7}" for c in cols]
            ratio = r["ratio"] if r else None
            row.append(f"{ratio:7.2f}" if ratio is not None else f"{'-':>7}")
        r = next(iter(by_size.values()))
        for c in cols:
            u = r["max_ulp"].get(c)
            at = r["max_ulp_at"].get(c)
            row.append(f"{_ulp(u)} @{at:<7.3g}"[:12].rjust(12) if u is not None else f"{'-':>12}")
        lines.append(" | ".join(row))
    call_us = max((r["call_s"] for r in rows), default=0.0) * 1e6
    lines.append(
        "x floor: fastact's time over the fastest floor loop (target <= "
        f"{FLOOR_TARGET:g} at {sizes[-1]}); fastact: its public call less a 16-element "
        f"call ({call_us:.2f} us); ulp: against long double, over inputs in [-40, 40] whose "
        "results are normal numbers"
    )
    return "\n".join(lines)


def floor_checks(rows: list[dict]) -> list[dict]:
    """The target 'within 1.2x of the compute floor' per (function, dtype), at 10**6."""
    checks = []
    for r in rows:
        if r["ratio"] is None or r["size"] != SIZES[-1]:
            continue
        checks.append(
            {
                "check": f"transcendental within {FLOOR_TARGET:g}x of the compute floor at 1e6",
                "case": r["function"],
                "dtype": r["dtype"],
                "impl": "fastact-cython",
                "worst": r["ratio"],
                "where": "fwd 1e6 1thr",
                "target": FLOOR_TARGET,
                "met": r["ratio"] <= FLOOR_TARGET,
            }
        )
    return checks


__all__ = [
    "FLOOR_TARGET",
    "FUNCTIONS",
    "ISAS",
    "SIZES",
    "Floor",
    "FloorUnavailable",
    "accuracy_inputs",
    "build",
    "floor_cases",
    "floor_checks",
    "format_floor",
    "load",
    "max_ulp",
    "run_floor",
]
