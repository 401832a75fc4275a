"""``python -m fastact info``: what this installation can do."""

from __future__ import annotations

import argparse
import math
import platform

import fastact

from . import _backends, _dispatch
from ._config import STATE, wait_policy


def _openmp_runtime() -> str:
    """The OpenMP library loaded in this process, as threadpoolctl sees it."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - a core dependency
        return "unknown"
    libs = [i for i in threadpool_info() if i.get("user_api") == "openmp"]
    if not libs:
        return "none loaded"
    return "; ".join(
        f"{i.get('internal_api')} {i.get('version') or ''} ({i.get('filepath')}, "
        f"{i.get('num_threads')} threads)".replace("  ", " ")
        for i in libs
    )


def _c_extension() -> dict:
    """Which build of the C extension this is, or why there is none."""
    try:
        from ._backends.cython import build_info
    except ImportError as exc:
        return {"available": False, "reason": str(exc)}
    return {"available": True, **build_info()}


def _c_extension_line(c: dict) -> str:
    if not c["available"]:
        return f"C extension: none: {c['reason']}"
    omp = "OpenMP" if c["openmp"] else "no OpenMP (its kernels run on one thread)"
    nt = c["nt_min_bytes"]
    stores = f"from {nt / 2**20:g} MiB per call" if nt else "none on this CPU"
    return (
        f"C extension: {omp}; SIMD clones: {c['simd_clones']}; built with {c['compiler']}\n"
        f"  16-bit rounding: float16 by {c['float16_conversion']}, bfloat16 by "
        f"{c['bfloat16_conversion']}; non-temporal stores (memory-bound kernels): {stores}"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _range(lo: float, hi: float) -> str:
    def f(v: float) -> str:
        return "inf" if v == math.inf else "-inf" if v == -math.inf else f"{v:g}"

    return f"[{f(lo)}, {f(hi)}]"


def _param(prm) -> str:
    if prm.required:
        return f"{prm.name} (required)"
    if isinstance(prm.default, str):
        return f"{prm.name}={prm.default!r}"
    return f"{prm.name}={prm.default:g}"


def table_rows() -> list[dict]:
    rows = []
    for name in fastact.activations():
        e = fastact.activation(name)
        p = e.properties
        rows.append(
            {
                "name": name,
                "params": ", ".join(_param(prm) for prm in e.parameters) or "-",
                "saves": e.saves,
                "nonlinear": p.nonlinear,
                "differentiable": p.differentiable,
                "monotonic": p.monotonic,
                "identity_near_0": p.identity_near_zero,
                "range": _range(*p.output_range),
            }
        )
    return rows


def _fmt_table(rows: list[dict]) -> str:
    cols = list(rows[0])
    cells = [[str(r[c]).replace("True", "yes").replace("False", "no") for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(out)


def collect() -> dict:
    info = {
        "fastact": fastact.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "backend": fastact.get_backend(),
        "num_threads": fastact.get_num_threads(),
        "threads_from": STATE.threads_source,
        "profile": _dispatch.profile_source(),
        "openmp_runtime": _openmp_runtime(),
        "openmp_wait": wait_policy(),
        "c_extension": _c_extension(),
        "backends": {},
    }
    reasons = _backends.unavailable_reasons()
    for name in _backends.NAMES:
        if name in reasons:
            info["backends"][name] = {"available": False, "reason": reasons[name]}
            continue
        b = _backends.get(name)
        desc = getattr(b, "describe", None)
        info["backends"][name] = {"available": True, **(desc() if desc else {})}
    info["activations"] = table_rows()
    return info


def run(args: argparse.Namespace) -> int:
    info = collect()
    if args.json:
        import json

        print(json.dumps(info, indent=2))
        return 0
    print(f"fastact {info['fastact']} on Python {info['python']} ({info['machine']})")
    print(
        f"backend: {info['backend']}; threads per call: {info['num_threads']} "
        f"(from {info['threads_from']})"
    )
    print(f"dispatch: {info['profile']}")
    print(f"OpenMP runtime: {info['openmp_runtime']}; waiting workers: {info['openmp_wait']}")
    print(_c_extension_line(info["c_extension"]))
    print("\nbackends:")
    for name, b in info["backends"].items():
        if b["available"]:
            extra = ", ".join(f"{k}: {v}" for k, v in b.items() if k != "available")
            print(f"  {name:7s} available" + (f" ({extra})" if extra else ""))
        else:
            print(f"  {name:7s} unavailable: {b['reason']}")
    print(f"\nactivations ({len(info['activations'])}):")
    print(_fmt_table(info["activations"]))
    return 0
