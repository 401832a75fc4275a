"""Markdown tables from the JSON of ``python -m fastact bench --json FILE``.

    python benchmarks/summarize_bench.py perf.json > tables.md

The tables of docs/performance.md are made by this script: per activation and
dtype, fastact's (Cython backend's) time per element and its ratio to the
streaming limit at 10^6 and 10^7 elements, the Numba backend's and PyTorch's
ratios on the same arrays, the calls at 10^3 elements against NumPy and
PyTorch, and every cell at 10^6-10^7 where PyTorch was more than 5% faster.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def _index(results: list[dict]) -> dict:
    """(case, dtype, pass, size, threads, impl) -> record."""
    return {
        (r["case"], r["dtype"], r["pass"], r["size"], r["threads"], r["impl"]): r
        for r in results
        if r.get("input", "normal") == "normal"
    }


def _fmt(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def streaming_table(results: list[dict]) -> str:
    idx = _index(results)
    cases = list(dict.fromkeys((r["case"], r["dtype"]) for r in results))

    def ratio(case, dtype, pass_, size, thr, impl):
        r = idx.get((case, dtype, pass_, size, thr, impl))
        return None if r is None else r["ratio"]

    def ns(case, dtype, pass_, size, thr, impl):
        r = idx.get((case, dtype, pass_, size, thr, impl))
        return None if r is None else r["best_s"] / size * 1e9

    def vs_torch(case, dtype, pass_, size, thr):
        t = idx.get((case, dtype, pass_, size, thr, "torch"))
        mine = [
            idx.get((case, dtype, pass_, size, thr, f"fastact-{b}")) for b in ("cython", "numba")
        ]
        mine = [m["best_s"] for m in mine if m is not None]
        return None if t is None or not mine else t["best_s"] / min(mine)

    head = (
        "| activation | dtype | ns/element fwd (1e6, 1 thr) | x limit fwd 1e6 / 1e7 "
        "| x limit bwd 1e6 / 1e7 | x limit fwd 1e7, 2 thr | numba x limit fwd 1e6 / 1e7 "
        "| torch x limit fwd 1e6 / 1e7 | torch time / ours, fwd 1e6 / 1e7 / bwd 1e6 |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    rows = [head]
    for case, dtype in cases:
        c = "fastact-cython"
        rows.append(
            f"| {case} | {dtype} "
            f"| {_fmt(ns(case, dtype, 'fwd', 10**6, 1, c))} "
            f"| {_fmt(ratio(case, dtype, 'fwd', 10**6, 1, c))} / "
            f"{_fmt(ratio(case, dtype, 'fwd', 10**7, 1, c))} "
            f"| {_fmt(ratio(case, dtype, 'bwd', 10**6, 1, c))} / "
            f"{_fmt(ratio(case, dtype, 'bwd', 10**7, 1, c))} "
            f"| {_fmt(ratio(case, dtype, 'fwd', 10**7, 2, c))} "
            f"| {_fmt(ratio(case, dtype, 'fwd', 10**6, 1, 'fastact-numba'))} / "
            f"{_fmt(ratio(case, dtype, 'fwd', 10**7, 1, 'fastact-numba'))} "
            f"| {_fmt(ratio(case, dtype, 'fwd', 10**6, 1, 'torch'))} / "
            f"{_fmt(ratio(case, dtype, 'fwd', 10**7, 1, 'torch'))} "
            f"| {_fmt(vs_torch(case, dtype, 'fwd', 10**6, 1))} / "
            f"{_fmt(vs_torch(case, dtype, 'fwd', 10**7, 1))} / "
            f"{_fmt(vs_torch(case, dtype, 'bwd', 10**6, 1))} |"
        )
    return "\n".join(rows)


def small_table(results: list[dict]) -> str:
    idx = _index(results)
    cases = list(dict.fromkeys((r["case"], r["dtype"]) for r in results if r["size"] == 1000))
    head = (
        "| activation | dtype | fastact fwd / bwd (us) | NumPy fwd / bwd (us) "
        "| PyTorch fwd / bwd (us) |\n|---|---|---|---|---|"
    )
    rows = [head]

    def us(case, dtype, pass_, impl):
        r = idx.get((case, dtype, pass_, 1000, 1, impl))
        return None if r is None else r["best_s"] * 1e6

    for case, dtype in cases:
        cells = []
        for impl in ("fastact-cython", "numpy", "torch"):
            cells.append(
                f"{_fmt(us(case, dtype, 'fwd', impl))} / {_fmt(us(case, dtype, 'bwd', impl))}"
            )
        rows.append(f"| {case} | {dtype} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def slower_cells(results: list[dict], peer: str = "torch", margin: float = 0.95) -> str:
    """Cells at 10^6 elements and more where ``peer`` took under ``margin`` of the
    Cython backend's time (peer time / fastact time, slowest first)."""
    idx = _index(results)
    rows = []
    for (case, dtype, pass_, size, threads, impl), r in idx.items():
        if impl != "fastact-cython" or size < 10**6:
            continue
        other = idx.get((case, dtype, pass_, size, threads, peer))
        if other is not None and other["best_s"] < margin * r["best_s"]:
            rows.append((other["best_s"] / r["best_s"], case, dtype, pass_, size, threads))
    rows.sort()
    out = [
        f"{len(rows)} cells where {peer} took under {margin} of fastact's time:",
        "",
        f"| {peer} time / ours | activation | dtype | pass | size | threads |",
        "|---|---|---|---|---|---|",
    ]
    out += [f"| {q:.2f} | {c} | {d} | {p} | {n:.0e} | {t} |" for q, c, d, p, n, t in rows]
    return "\n".join(out)


def targets_summary(targets: list[dict]) -> str:
    met = defaultdict(lambda: [0, 0])
    for t in targets:
        backend = t["impl"].removeprefix("fastact-")
        met[(t["check"], backend)][0] += bool(t["met"])
        met[(t["check"], backend)][1] += 1
    rows = ["| check | backend | met |", "|---|---|---|"]
    for (check, backend), (m, n) in sorted(met.items()):
        rows.append(f"| {check} | {backend} | {m} of {n} |")
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        doc = json.load(f)
    print("## Ratio to the streaming limit\n")
    print(streaming_table(doc["results"]))
    print("\n## 10^3 elements, one thread\n")
    print(small_table(doc["results"]))
    print("\n## Where PyTorch is faster\n")
    print(slower_cells(doc["results"]))
    print("\n## Speed targets\n")
    print(targets_summary(doc["targets"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
