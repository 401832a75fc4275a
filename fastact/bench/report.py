"""What a run prints: the summary table, the per-case tables and the targets."""

from __future__ import annotations

from .cases import Case, target, target_kind
from .peers import Impl
from .sections import _size


def _us(t: float) -> str:
    us = t * 1e6
    return f"{us:.3g}" if us < 1000 else f"{us:.0f}"


def _short(impl: str) -> str:
    return impl.removeprefix("fastact-")


def format_case(case: Case, rows: list[dict], impls: list[Impl]) -> str:
    """The table of one case: a line per (dtype, pass, size, threads)."""
    names = [i.name for i in impls[1:]]
    ours = [n for n in names if n.startswith("fastact-")]
    others = [n for n in names if not n.startswith("fastact-")]
    cells: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        cells.setdefault((r["dtype"], r["pass"], r["size"], r["threads"]), {})[r["impl"]] = r
    present = {r["impl"] for r in rows}
    others = [o for o in others if o in present]
    head = ["dtype  ", "pass       ", "   size", "thr", "limit us"]
    for o in ours:
        head += [f"{_short(o):>8} us", "  GB/s", " x lim"]
    head += [f"{_short(o):>8} x lim" for o in others]
    if "torch" in others and ours:
        head.append("vs torch")
    lines = []
    tg = {d: target(case, d, "fwd") for d in ("float32", "float64")}
    tgt = ", ".join(f"{d} <= {v:g}x" for d, v in tg.items() if v is not None)
    lines.append(f"\n== {case.label}: {case.entry.formula}" + (f"   [target {tgt}]" if tgt else ""))
    lines.append(" | ".join(head))
    for (dtype, pass_, n, thr), c in cells.items():
        lim = c["limit"]
        row = [
            f"{dtype:7}",
            f"{pass_:11}",
            f"{_size(n):>7}",
            f"{thr:>3}",
            f"{_us(lim['best_s']):>8}",
        ]
        for o in ours:
            r = c.get(o)
            if r is None:
                row += [f"{'-':>11}", f"{'-':>6}", f"{'-':>6}"]
            else:
                row += [f"{_us(r['best_s']):>11}", f"{r['gbps']:6.1f}", f"{r['ratio']:6.2f}"]
        for o in others:
            r = c.get(o)
            row.append(f"{r['ratio']:14.2f}" if r else f"{'-':>14}")
        if "torch" in others and ours:
            best = min((c[o]["best_s"] for o in ours if o in c), default=None)
            t = c.get("torch")
            row.append(f"{t['best_s'] / best:7.2f}x" if (t and best) else f"{'-':>8}")
        lines.append(" | ".join(row))
    return "\n".join(lines)


def format_denormal(rows: list[dict]) -> str:
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    cells: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        cells.setdefault((r["case"], r["dtype"], r["pass"]), {})[r["impl"]] = r
    n = rows[0]["size"] if rows else 0
    lines = [
        f"\n== underflowing inputs: time on x ~ U(-100, -80) / time on x ~ N(0, 1), "
        f"{_size(n)} elements, 1 thread (target <= 1.2)",
        " | ".join(["case        ", "dtype  ", "pass"] + [f"{_short(i):>8}" for i in impls]),
    ]
    for (case, dtype, pass_), c in cells.items():
        vals = [f"{c[i]['ratio']:8.2f}" if i in c else f"{'-':>8}" for i in impls]
        lines.append(" | ".join([f"{case:12}", f"{dtype:7}", f"{pass_:4}"] + vals))
    return "\n".join(lines)


def format_pairs(rows: list[dict]) -> str:
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    cells: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        cells.setdefault((r["pair"], r["dtype"], r["size"], r["threads"]), {})[r["impl"]] = r
    lines = [
        "\n== rrelu training and prelu with its weight gradient, against leaky_relu (time ratio)",
        " | ".join(
            ["pair                               ", "dtype  ", "   size", "thr"]
            + [f"{_short(i):>8}" for i in impls]
            + ["target"]
        ),
    ]
    for (pair, dtype, n, thr), c in cells.items():
        vals = [f"{c[i]['ratio']:8.2f}" if i in c else f"{'-':>8}" for i in impls]
        tgt = next(iter(c.values()))["target"]
        lines.append(
            " | ".join([f"{pair:35}", f"{dtype:7}", f"{_size(n):>7}", f"{thr:>3}"] + vals)
            + f" | <= {tgt:g}"
        )
    return "\n".join(lines)


# --- targets ---------------------------------------------------------------------

NOISE = "~"  # marks a ratio below 1 to the streaming limit


def _keep_worst(worst: dict, key: tuple, value: float, target: float, where: str) -> None:
    w = worst.get(key)
    if w is None or value > w["value"]:
        worst[key] = {"value": value, "target": target, "where": where}


def check_targets(
    results: list[dict], denormal: list[dict], pairs: list[dict], cases: list[Case]
) -> list[dict]:
    """The speed targets against the measured ratios (per case, dtype and fastact backend).

    Each check's ``check`` says what it is: ``"piecewise-linear within 1.1x of
    the streaming limit at 1e6-1e7"``, ``"no slower than torch at 1e3"``...
    """
    by_label = {c.label: c for c in cases}
    checks: list[dict] = []
    by_cell: dict[tuple, dict[str, dict]] = {}
    for r in results:
        key = (r["case"], r["dtype"], r["pass"], r["size"], r["threads"])
        by_cell.setdefault(key, {})[r["impl"]] = r
    worst: dict[tuple, dict] = {}
    for (label, dtype, pass_, n, thr), c in by_cell.items():
        case = by_label.get(label)
        for impl, r in c.items():
            if not impl.startswith("fastact-") or case is None:
                continue
            where = f"{pass_} {_size(n)} {thr}thr"
            if n >= 10**6:
                tgt = target(case, dtype, pass_)
                if tgt is not None:
                    what = f"{target_kind(case)} within {tgt:g}x of the streaming limit at 1e6-1e7"
                    _keep_worst(worst, (what, label, dtype, impl), r["ratio"], tgt, where)
                t = c.get("torch")
                if t is not None:
                    what = "no slower than torch at 1e6-1e7"
                    _keep_worst(
                        worst, (what, label, dtype, impl), r["best_s"] / t["best_s"], 1.0, where
                    )
            if n <= 10**3:
                for other in ("torch", "numpy"):
                    if other in c:
                        what = f"no slower than {other} at 1e3"
                        v = r["best_s"] / c[other]["best_s"]
                        _keep_worst(worst, (what, label, dtype, impl), v, 1.0, where)
    for (what, label, dtype, impl), w in worst.items():
        checks.append(
            {
                "check": what,
                "case": label,
                "dtype": dtype,
                "impl": impl,
                "worst": w["value"],
                "where": w["where"],
                "target": w["target"],
                "met": w["value"] <= w["target"],
            }
        )
    den: dict[tuple, dict] = {}
    for r in denormal:
        if not r["impl"].startswith("fastact-"):
            continue
        key = (r["case"], r["dtype"], r["impl"])
        if key not in den or r["ratio"] > den[key]["ratio"]:
            den[key] = r
    for (label, dtype, impl), r in den.items():
        checks.append(
            {
                "check": "underflowing inputs within 1.2x of N(0, 1) inputs",
                "case": label,
                "dtype": dtype,
                "impl": impl,
                "worst": r["ratio"],
                "where": r["pass"],
                "target": 1.2,
                "met": r["ratio"] <= 1.2,
            }
        )
    for r in pairs:
        if r["impl"].startswith("fastact-"):
            checks.append(
                {
                    "check": f"{r['pair']} within {r['target']:g}x",
                    "case": r["pair"].split()[0],
                    "dtype": r["dtype"],
                    "impl": r["impl"],
                    "worst": r["ratio"],
                    "where": f"{_size(r['size'])} {r['threads']}thr",
                    "target": r["target"],
                    "met": r["ratio"] <= r["target"],
                }
            )
    return checks


def targets_line(checks: list[dict]) -> str:
    """One line: how many targets hold, and where the rest is."""
    if not checks:
        return ""
    met = sum(c["met"] for c in checks)
    return (
        f"targets: {met} of {len(checks)} hold (ratios to the streaming limit "
        "by cost class, to the peers, underflowing inputs, baselines, the compute floor); "
        "--detail lists each, --json FILE keeps every number"
    )


def format_targets(checks: list[dict]) -> str:
    """Every target, grouped by what it is, misses listed."""
    if not checks:
        return ""
    met = sum(c["met"] for c in checks)
    lines = [f"\n== targets: {met} of {len(checks)} hold"]
    groups: dict[str, list[dict]] = {}
    for c in checks:
        groups.setdefault(c["check"], []).append(c)
    for what, cs in groups.items():
        held = sum(c["met"] for c in cs)
        lines.append(f"  {what}: {held} of {len(cs)}")
        for c in cs:
            if not c["met"]:
                lines.append(
                    f"      miss {c['case']:12} {c['dtype']:7} {_short(c['impl']):7} "
                    f"{c['worst']:6.2f} > {c['target']:g}  ({c['where']})"
                )
    return "\n".join(lines)


# --- the summary -------------------------------------------------------------------


def _w(column: str) -> int:
    return max(7, len(column) + 2)


def _pick(rows: list[dict], pass_: str) -> tuple[int, int] | None:
    """The (size, threads) a summary shows: the largest size, the most threads there."""
    rs = [r for r in rows if r["pass"] == pass_]
    if not rs:
        return None
    n = max(r["size"] for r in rs)
    return n, max(r["threads"] for r in rs if r["size"] == n)


def format_summary(results: list[dict], backend: str, peers: list[str]) -> str:
    """One line per (case, dtype): fastact's ns per element, its ratio to the
    streaming limit and each peer's time over fastact's, forward and backward."""
    if not results:
        return ""
    ours = f"fastact-{backend}"
    idx = {
        (r["case"], r["dtype"], r["pass"], r["size"], r["threads"], r["impl"]): r for r in results
    }
    peers = [p for p in peers if any(r["impl"] == p for r in results)]
    passes = [p for p in ("fwd", "bwd") if _pick(results, p)]
    where = {p: _pick(results, p) for p in passes}
    cols = ["ns/el", "x lim"] + peers
    width = sum(_w(c) for c in cols)
    head1 = f"{'':13}{'':8}" + "".join(
        f"{('forward' if p == 'fwd' else 'backward') + f' ({_size(where[p][0])}, {where[p][1]} thr)':<{width}}  "
        for p in passes
    )
    head2 = f"{'case':13}{'dtype':8}" + "".join(
        "".join(f"{c:>{_w(c)}}" for c in cols) + "  " for _ in passes
    )
    lines = [head1.rstrip(), head2.rstrip()]
    noisy = False
    for case, dtype in dict.fromkeys((r["case"], r["dtype"]) for r in results):
        cells = []
        for p in passes:
            n, thr = where[p]
            r = idx.get((case, dtype, p, n, thr, ours))
            if r is None:
                cells.append("".join(f"{'-':>{_w(c)}}" for c in cols) + "  ")
                continue
            ratio = f"{r['ratio']:.2f}"
            if r["ratio"] < 1:
                ratio += NOISE
                noisy = True
            cell = f"{r['best_s'] / n * 1e9:7.3g}{ratio:>7}"
            for peer in peers:
                o = idx.get((case, dtype, p, n, thr, peer)) or idx.get((case, dtype, p, n, 1, peer))
                w = _w(peer)
                cell += f"{o['best_s'] / r['best_s']:{w}.2f}" if o else f"{'-':>{w}}"
            cells.append(cell + "  ")
        lines.append((f"{case:13}{dtype:8}" + "".join(cells)).rstrip())
    notes = [
        f"ns/el: fastact's time per element ({backend} backend); x lim: that time over the "
        "streaming limit (a kernel moving the same bytes, same threads)"
    ]
    if peers:
        notes.append(
            f"{', '.join(peers)}: their time over fastact's (above 1: fastact is faster); "
            "- : no such operation"
        )
    if noisy:
        notes.append(
            f"{NOISE} below 1: faster than the streaming limit timed beside it, which a kernel "
            "cannot be: timing noise from a busy machine (rerun, or raise --min-time)"
        )
    return "\n".join(lines + notes)
