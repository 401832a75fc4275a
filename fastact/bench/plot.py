"""``--plot``: fastact against the streaming limit and each peer, by class of activation."""

from __future__ import annotations

from .cases import Case, target_kind
from .sections import _size

CLASS_ORDER = (
    "piecewise-linear",
    "a few flops",
    "one transcendental",
    "two transcendentals",
    "a special function",
    "rowwise",
)


def require_matplotlib():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit(
            "--plot needs matplotlib, which is not installed: pip install fastact[plot]"
        ) from None
    return plt


def _class_of(case: Case) -> str:
    return "rowwise" if case.rowwise else target_kind(case)


def plot(results: list[dict], cases: list[Case], path: str) -> None:
    """Horizontal bars of time per element, one panel per (class, pass).

    Each case gets a bar for the streaming limit, each fastact backend and
    each peer, at the largest size measured and the most threads there, for
    one dtype (float32 when measured).  Shorter is faster.
    """
    plt = require_matplotlib()
    rows = [r for r in results if r.get("input", "normal") == "normal"]
    if not rows:
        raise SystemExit("nothing to plot")
    dtypes = list(dict.fromkeys(r["dtype"] for r in rows))
    dtype = "float32" if "float32" in dtypes else dtypes[0]
    rows = [r for r in rows if r["dtype"] == dtype]
    passes = [p for p in ("fwd", "bwd") if any(r["pass"] == p for r in rows)] or ["fwd"]
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    impls = ["limit"] + [i for i in impls if i != "limit"]
    by_label = {c.label: c for c in cases}
    labels = [c for c in dict.fromkeys(r["case"] for r in rows) if c in by_label]
    groups: dict[str, list[str]] = {}
    for label in labels:
        groups.setdefault(_class_of(by_label[label]), []).append(label)
    classes = [c for c in CLASS_ORDER if c in groups]
    sizes = {}
    for p in passes:
        rs = [r for r in rows if r["pass"] == p]
        n = max(r["size"] for r in rs) if rs else 0
        sizes[p] = (n, max((r["threads"] for r in rs if r["size"] == n), default=1))
    idx = {(r["case"], r["pass"], r["size"], r["threads"], r["impl"]): r for r in rows}
    colors = {imp: ("0.6" if imp == "limit" else f"C{k % 10}") for k, imp in enumerate(impls)}
    heights = [max(1.0, 0.55 * len(groups[c]) * max(1, len(impls)) / 3) for c in classes]
    fig, axes = plt.subplots(
        len(classes),
        len(passes),
        figsize=(6.5 * len(passes), sum(heights) + 1.6),
        squeeze=False,
        layout="constrained",
        gridspec_kw={"height_ratios": heights},
    )
    bar = 0.8 / len(impls)
    for i, cls in enumerate(classes):
        for j, p in enumerate(passes):
            ax = axes[i][j]
            n, thr = sizes[p]
            names = groups[cls]
            for k, imp in enumerate(impls):
                ys, vals = [], []
                for m, label in enumerate(names):
                    r = idx.get((label, p, n, thr, imp)) or idx.get((label, p, n, 1, imp))
                    if r is not None:
                        ys.append(m + (k - (len(impls) - 1) / 2) * bar)
                        vals.append(r["best_s"] / n * 1e9)
                ax.barh(ys, vals, height=bar, color=colors[imp], label=imp.removeprefix("fastact-"))
            ax.set_yticks(range(len(names)), names, fontsize=10)
            ax.invert_yaxis()
            ax.tick_params(axis="x", labelsize=9)
            ax.grid(axis="x", alpha=0.3)
            pass_name = "forward" if p == "fwd" else "backward"
            ax.set_title(f"{cls}: {pass_name}", fontsize=11)
            if i == len(classes) - 1:
                ax.set_xlabel("ns per element (shorter is faster)", fontsize=10)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=len(names), fontsize=10)
    n, thr = sizes[passes[0]]
    fig.suptitle(
        f"{dtype}, {_size(n)} elements, {thr} thread(s): fastact, the streaming limit "
        "and each peer",
        fontsize=12,
    )
    fig.savefig(path, dpi=100)
    plt.close(fig)
