"""Pictures of linear regions (needs matplotlib: ``pip install fastact[plot]``).

Everything draws on matplotlib ``Axes`` given by the caller, or makes its own
``Figure`` (object-oriented API, no pyplot state, no display needed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._exact2d import Regions2D, count_2d
from ._network import Network, montufar_network, random_network, sawtooth_network
from .bounds import montufar_lower_bound, serra_bound, upper_bound, upper_name


def _mpl():
    try:
        import matplotlib
        from matplotlib.collections import PolyCollection
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            "drawing linear regions needs matplotlib: pip install fastact[plot]"
        ) from exc
    return matplotlib, Figure, PolyCollection


def region_colors(n: int, seed: int = 0) -> np.ndarray:
    """``n`` RGB colours, well spread in hue and shuffled so neighbours rarely match."""
    matplotlib, _, _ = _mpl()
    rng = np.random.default_rng(seed)
    hue = (np.arange(n) * 0.6180339887498949) % 1.0
    sat = rng.uniform(0.35, 0.75, n)
    val = rng.uniform(0.75, 0.97, n)
    rgb = matplotlib.colors.hsv_to_rgb(np.stack([hue, sat, val], axis=1))
    return rgb[rng.permutation(n)]


def draw_regions(
    regions: Regions2D,
    ax: Any = None,
    *,
    title: str | None = None,
    seed: int = 0,
    linewidth: float | None = None,
):
    """Fill each region of ``regions`` with its own colour; draw the box. Returns the Axes."""
    _, Figure, PolyCollection = _mpl()
    if ax is None:
        ax = Figure(figsize=(6.4, 6.4)).add_subplot()
    n = regions.count
    if linewidth is None:
        linewidth = 0.5 if n < 200 else 0.25 if n < 3000 else 0.1
    coll = PolyCollection(
        [p for p in regions.polygons],
        facecolors=region_colors(n, seed),
        edgecolors=(0.1, 0.1, 0.1, 0.6),
        linewidths=linewidth,
    )
    ax.add_collection(coll)
    (x0, x1), (y0, y1) = regions.box
    ax.plot([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0], color="k", lw=1.2)
    mx, my = 0.02 * (x1 - x0), 0.02 * (y1 - y0)
    ax.set_xlim(x0 - mx, x1 + mx)
    ax.set_ylim(y0 - my, y1 + my)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(title if title is not None else f"{n:,} linear regions")
    return ax


def _save(fig, path: str) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=150)


def save_regions(regions: Regions2D, path: str, *, title: str | None = None) -> None:
    """Save the coloured picture of ``regions`` (from :func:`count_2d`) to ``path``."""
    _, Figure, _ = _mpl()
    fig = Figure(figsize=(6.4, 6.8))
    draw_regions(regions, fig.add_subplot(), title=title)
    _save(fig, path)


def plot_regions(
    net: Network, box: Any, path: str, *, title: str | None = None, max_regions: int = 200_000
) -> Regions2D:
    """Count ``net``'s regions in ``box`` exactly and save the coloured picture to ``path``.

    ``title`` may contain ``{count}``.
    """
    _mpl()
    regions = count_2d(net, box, max_regions=max_regions)
    save_regions(regions, path, title=None if title is None else title.format(count=regions.count))
    return regions


def plot_folding(depth: int, path: str, *, teeth: int = 2, resolution: int = 600) -> Regions2D:
    """The folded ``p mod 1`` map (:func:`sawtooth_network`): its regions and its output, side by side."""
    _, Figure, PolyCollection = _mpl()
    net = sawtooth_network(depth, teeth=teeth, dims=2)
    box = ((0.0, 1.0), (0.0, 1.0))
    regions = count_2d(net, box)
    fig = Figure(figsize=(11.5, 6.0))
    ax1, ax2 = fig.subplots(1, 2)
    per_axis = teeth**depth
    draw_regions(
        regions,
        ax1,
        title=f"{regions.count:,} linear regions ({per_axis} x {per_axis})",
    )
    g = (np.arange(resolution) + 0.5) / resolution
    xx, yy = np.meshgrid(g, g)
    uv = net(np.stack([xx.ravel(), yy.ravel()], axis=1)).reshape(resolution, resolution, 2)
    uv = np.clip(uv, 0.0, 1.0)
    rgb = np.stack([uv[..., 0], uv[..., 1], 1.0 - 0.5 * (uv[..., 0] + uv[..., 1])], axis=-1)
    ax2.imshow(rgb, origin="lower", extent=(0, 1, 0, 1), interpolation="nearest")
    ax2.add_collection(
        PolyCollection(
            list(regions.polygons), facecolors="none", edgecolors=(1, 1, 1, 0.5), linewidths=0.4
        )
    )
    ax2.set_title("output (u, v) as colour (red = u, green = v)")
    ax2.set_xlabel("$x_1$")
    ax2.set_ylabel("$x_2$")
    fig.suptitle(
        f"Folding: {depth} ReLU layers of {2 * teeth} units compute the folded "
        f"{per_axis} p mod 1 (a triangle wave per axis)"
    )
    _save(fig, path)
    return regions


@dataclass(frozen=True)
class SweepPoint:
    depth: int
    width: int
    random_counts: tuple[int, ...]
    construction: int
    upper: int
    lower: int
    upper_source: str = "Serra et al. 2018"


def depth_sweep(
    units: int = 24,
    *,
    activation: Any = "relu",
    seeds: Sequence[int] = (0, 1, 2),
    box: Any = ((-4.0, 4.0), (-4.0, 4.0)),
    max_regions: int = 200_000,
    depths: Sequence[int] | None = None,
) -> list[SweepPoint]:
    """Exact region counts against depth at a fixed total of ``units`` hidden units, 2 inputs.

    For every depth ``L`` dividing ``units`` with an even width ``units / L``:
    random networks (one per seed, counted in ``box``), the Montufar et al.
    construction (counted in the unit square), the upper bound for the random
    networks' activation (:func:`upper_bound`, which holds for the ReLU
    construction too) and the Montufar et al. lower bound.
    """
    if depths is None:
        depths = [d for d in range(1, units + 1) if units % d == 0 and (units // d) % 2 == 0]
    points = []
    for depth in depths:
        width = units // depth
        widths = [2] + [width] * depth
        nets = [random_network(widths, activation, seed=s) for s in seeds]
        counts = tuple(count_2d(n, box, max_regions=max_regions).count for n in nets)
        # the random networks' bound; >= Serra's, so it bounds the ReLU construction too
        upper = max(upper_bound(nets[0]), serra_bound(widths)) if nets else serra_bound(widths)
        cons = count_2d(
            montufar_network(depth, width), ((0.0, 1.0), (0.0, 1.0)), max_regions=max_regions
        ).count
        points.append(
            SweepPoint(
                depth,
                width,
                counts,
                cons,
                upper,
                montufar_lower_bound(widths),
                upper_name(nets[0]) if nets else "Serra et al. 2018",
            )
        )
    return points


def plot_depth_sweep(points: Sequence[SweepPoint], path: str, *, units: int, label: str = "relu"):
    """Log-scale region count against depth, with the bounds beside it."""
    _, Figure, _ = _mpl()
    fig = Figure(figsize=(7.5, 5.2))
    ax = fig.add_subplot()
    d = np.array([p.depth for p in points])
    up = np.array([p.upper for p in points], dtype=float)
    lo = np.array([p.lower for p in points], dtype=float)
    cons = np.array([p.construction for p in points], dtype=float)
    rc = [np.array(p.random_counts, dtype=float) for p in points]
    med = np.array([np.median(r) for r in rc])
    ax.fill_between(d, lo, up, color="0.88", label="between the known bounds")
    ax.plot(d, up, "k--", lw=1.2, label=f"upper bound ({points[0].upper_source})")
    ax.plot(
        d,
        cons,
        "o-",
        color="tab:red",
        lw=2.5,
        ms=9,
        mfc="white",
        mew=2,
        label="folding construction (ReLU), exact count",
    )
    ax.plot(d, lo, "k.:", lw=1.2, ms=5, label="ReLU lower bound (Montufar et al. 2014)")
    ax.errorbar(
        d,
        med,
        yerr=[med - np.array([r.min() for r in rc]), np.array([r.max() for r in rc]) - med],
        fmt="s-",
        color="tab:blue",
        capsize=3,
        label=f"random {label} networks, exact (median, min-max)",
    )
    for x, y, p in zip(d, cons, points):
        ax.annotate(
            f"{p.construction:,}",
            (x, y),
            textcoords="offset points",
            xytext=(7, -13),
            ha="left",
            fontsize=8,
            color="tab:red",
        )
    ax.set_yscale("log")
    ax.set_xscale("log", base=2)
    ax.set_xticks(d)
    ax.set_xticklabels([f"{p.depth}\n({p.width} wide)" for p in points])
    ax.set_xlabel("depth (hidden layers), each of width units / depth")
    ax.set_ylabel("linear regions")
    best = max(points, key=lambda p: p.construction)
    ax.set_title(
        f"{units} hidden units, 2 inputs: deep vs shallow\n"
        f"most regions: {best.construction:,} at depth {best.depth} "
        f"(shallow: {points[0].construction:,})"
    )
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    top = max(up.max(), cons.max())
    ax.set_ylim(1, 10 ** math.ceil(math.log10(top) + 0.5))
    _save(fig, path)
    return fig
