"""Exact linear regions of a network with two inputs, inside an axis-aligned box.

The box is split layer by layer.  Every current region is a convex polygon
on which the layer's input is affine in the point: ``h(x) = x @ A + c``, so
the layer's pre-activations are affine too (``x @ (A W) + (c W + b)``) and a
unit's kink ``z_u = k`` is a straight line across the polygon.  Each polygon
is cut along every such line that crosses it (half-plane clipping of a
convex polygon keeps both parts convex); then each unit is on one piece of
its activation in every part, and ``(A, c)`` is updated with that piece's
slope and intercept.

Numerical care, in the order it is applied:

* A vertex's pre-activation within ``rtol * max(|z|, |k|)`` of a kink ``k``
  (``|z|`` over the polygon's vertices) counts as exactly *on* the line: the
  polygon is cut only when some vertex is strictly above and another strictly
  below.  A line through a vertex or along an edge (the exact degeneracies of
  the folding constructions) therefore never creates a sliver.
* New vertices are interpolated along the crossing edge, with the cut unit's
  value set to the kink exactly; the other units' values are interpolated too
  (they are affine, so this is exact up to rounding).
* A vertex closer than ``1e-12`` of the box's diagonal to its predecessor is
  merged into it.
* A part whose area is at most ``min_area`` times the box's area is dropped
  (a numerical sliver); ``Regions2D.dropped`` counts them.

Pre-activations at the vertices are recomputed from each polygon's ``(A, c)``
at the start of every layer, so interpolation errors do not accumulate
across layers.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._network import Network, RegionLimitError

Box = tuple[tuple[float, float], tuple[float, float]]


def check_box(box: Any) -> Box:
    """``box`` as ``((xmin, xmax), (ymin, ymax))`` floats, or ValueError."""
    try:
        arr = np.asarray(box, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"box must be ((xmin, xmax), (ymin, ymax)), got {box!r}") from None
    if arr.shape != (2, 2):
        raise ValueError(f"box must be ((xmin, xmax), (ymin, ymax)), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"box must be finite, got {arr.tolist()}")
    for axis, (lo, hi) in zip("xy", arr):
        if not lo < hi:
            raise ValueError(f"box is degenerate: {axis}min={lo:g} must be < {axis}max={hi:g}")
    (x0, x1), (y0, y1) = arr.tolist()
    return (x0, x1), (y0, y1)


@dataclass(frozen=True)
class Regions2D:
    """The linear regions of a 2-input network inside ``box``.

    ``polygons[i]`` (k, 2) are the counter-clockwise vertices of region ``i``;
    ``patterns[i, u]`` the piece of hidden unit ``u`` there; the network's
    output on it is ``x @ out_A[i] + out_c[i]``.
    """

    box: Box
    polygons: tuple[np.ndarray, ...]
    patterns: np.ndarray
    out_A: np.ndarray
    out_c: np.ndarray
    dropped: int

    @property
    def count(self) -> int:
        return len(self.polygons)

    def __len__(self) -> int:
        return self.count

    @property
    def areas(self) -> np.ndarray:
        return np.array([_area(p) for p in self.polygons])

    def representatives(self) -> np.ndarray:
        """One interior point per region (the mean of its vertices), shape (count, 2)."""
        return np.array([p.mean(axis=0) for p in self.polygons]).reshape(-1, 2)


def _area(p: np.ndarray) -> float:
    x, y = p[:, 0], p[:, 1]
    x1, y1 = np.concatenate([x[1:], x[:1]]), np.concatenate([y[1:], y[:1]])
    return 0.5 * float(np.dot(x, y1) - np.dot(x1, y))


def _split(m: np.ndarray, d: np.ndarray, tol: float, col: int, kink: float):
    """Cut convex polygon ``m`` (rows: x, y, pre-activations) where column ``col`` = ``kink``.

    ``d`` = m[:, col] - kink.  Returns the (above, below) parts, each a list
    of row indices into the returned extended matrix (``m`` plus the new
    vertices), in counter-clockwise order.
    """
    dl = d.tolist()
    k = len(dl)
    sign = [1 if v > tol else -1 if v < -tol else 0 for v in dl]
    above: list[int] = []
    below: list[int] = []
    src: list[int] = []
    dst: list[int] = []
    frac: list[float] = []
    for i in range(k):
        si = sign[i]
        if si >= 0:
            above.append(i)
        if si <= 0:
            below.append(i)
        j = i + 1 if i + 1 < k else 0
        if si * sign[j] < 0:
            idx = k + len(src)
            src.append(i)
            dst.append(j)
            frac.append(dl[i] / (dl[i] - dl[j]))
            above.append(idx)
            below.append(idx)
    a, b = m[src], m[dst]
    new = a + np.asarray(frac)[:, None] * (b - a)
    new[:, col] = kink
    return np.concatenate([m, new]), above, below


def _clean(xy: list, idx: list[int], eps: float) -> tuple[list[int], float]:
    """Drop vertices within ``eps`` of their predecessor; the polygon's area."""
    out = []
    px, py = xy[idx[-1]]
    for i in idx:
        x, y = xy[i]
        if abs(x - px) > eps or abs(y - py) > eps:
            out.append(i)
            px, py = x, y
    if not out:
        return [idx[0]], 0.0
    area = 0.0
    px, py = xy[out[-1]]
    for i in out:
        x, y = xy[i]
        area += px * y - x * py
        px, py = x, y
    return out, 0.5 * area


def count_2d(
    net: Network,
    box: Any,
    *,
    max_regions: int = 200_000,
    rtol: float = 1e-9,
    min_area: float = 1e-14,
) -> Regions2D:
    """The exact linear regions of a 2-input ``net`` inside ``box = ((xmin, xmax), (ymin, ymax))``.

    Returns a :class:`Regions2D` (``.count``, ``.polygons``, ``.patterns``,
    ``.areas``...).  A region is a maximal set on which every hidden unit stays
    on one piece of its activation (an activation region; each is convex).
    ``rtol`` and ``min_area`` are the tolerances described in this module's
    docstring.  RegionLimitError as soon as more than ``max_regions`` regions
    (or pending parts) exist, so a huge count fails fast instead of hanging.
    """
    if net.input_dim != 2:
        raise ValueError(f"count_2d needs a network with 2 inputs, this one has {net.input_dim}")
    if isinstance(max_regions, bool) or not isinstance(max_regions, numbers.Integral):
        raise TypeError(f"max_regions must be an integer, got {max_regions!r}")
    if max_regions < 1:
        raise ValueError(f"max_regions must be >= 1, got {max_regions}")
    if not (0 <= rtol < 1e-3):
        raise ValueError(f"rtol must be in [0, 1e-3), got {rtol!r}")
    if not (0 <= min_area < 1e-3):
        raise ValueError(f"min_area must be in [0, 1e-3), got {min_area!r}")
    box = check_box(box)
    (x0, x1), (y0, y1) = box
    area_floor = min_area * (x1 - x0) * (y1 - y0)
    merge_eps = 1e-12 * math.hypot(x1 - x0, y1 - y0)
    polys = [np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])]
    lin = np.eye(2)[None]  # h(x) = x @ lin[r] + off[r] on polygon r
    off = np.zeros((1, 2))
    pats: list[np.ndarray] = []
    dropped = 0
    for layer, (w, b, act) in enumerate(net.layers()):
        az = lin @ w  # (R, 2, n)
        cz = off @ w + b  # (R, n)
        kinks = act.kinks
        nreg = len(polys)
        lens = np.fromiter((len(p) for p in polys), np.intp, nreg)
        starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
        owner = np.repeat(np.arange(nreg), lens)
        v = np.concatenate(polys)
        z = v[:, :1] * az[owner, 0] + v[:, 1:] * az[owner, 1] + cz[owner]  # (V, n)
        new_polys: list[np.ndarray] = []
        parent: list[int] = []
        means: list[np.ndarray] = []
        if len(kinks):
            zmax = np.maximum.reduceat(z, starts, axis=0)
            zmin = np.minimum.reduceat(z, starts, axis=0)
            mag = np.maximum(np.abs(zmax), np.abs(zmin))
            tol = rtol * np.maximum(mag[:, :, None], np.abs(kinks))  # (R, n, m)
            crosses = (zmax[:, :, None] - kinks > tol) & (zmin[:, :, None] - kinks < -tol)
            split_any = crosses.any(axis=(1, 2))
        else:
            split_any = np.zeros(nreg, bool)
        whole = np.nonzero(~split_any)[0]
        zmean = np.add.reduceat(z, starts, axis=0) / lens[:, None]
        new_polys = [polys[r] for r in whole.tolist()]
        parent = whole.tolist()
        means = [zmean[whole]]
        extra_means: list[np.ndarray] = []
        for r in np.nonzero(split_any)[0].tolist():
            uu, jj = np.nonzero(crosses[r])
            cols = uu + 2
            kv = kinks[jj]
            ctol = tol[r, uu, jj]
            s0 = starts[r]
            stack = [(np.concatenate([v[s0 : s0 + lens[r]], z[s0 : s0 + lens[r]]], axis=1), None)]
            while stack:
                m, cand = stack.pop()
                cand = np.arange(len(cols)) if cand is None else cand
                if len(cand):
                    dd = m[:, cols[cand]] - kv[cand]
                    tt = ctol[cand]
                    live = (dd > tt).any(axis=0) & (dd < -tt).any(axis=0)
                    cand = cand[live]
                    dd = dd[:, live]
                if not len(cand):
                    new_polys.append(np.ascontiguousarray(m[:, :2]))
                    parent.append(r)
                    extra_means.append(m[:, 2:].mean(axis=0))
                    continue
                c0 = cand[0]
                ext, above, below = _split(m, dd[:, 0], ctol[c0], int(cols[c0]), float(kv[c0]))
                xy = ext[:, :2].tolist()
                rest = cand[1:]
                for idx in (above, below):
                    idx, area = _clean(xy, idx, merge_eps)
                    if len(idx) < 3 or area <= area_floor:
                        dropped += 1
                        continue
                    stack.append((ext[idx], rest))
                if len(new_polys) + len(stack) > max_regions:
                    raise RegionLimitError(
                        f"layer {layer + 1} cuts the box into more than max_regions={max_regions} "
                        "regions; raise max_regions (time and memory grow with it) or shrink the box"
                    )
        if extra_means:
            means.append(np.array(extra_means))
        zm = np.concatenate(means)
        par = np.asarray(parent, dtype=np.intp)
        piece = act.piece(zm)
        ucol = np.arange(act.width)[None, :]
        slope = act.slopes[piece, ucol]
        lin = az[par] * slope[:, None, :]
        off = cz[par] * slope + act.intercepts[piece, ucol]
        pats = [p[par] for p in pats] + [piece]
        polys = new_polys
    out_a = lin @ net.weights[-1]
    out_c = off @ net.weights[-1] + net.biases[-1]
    patterns = np.concatenate(pats, axis=1) if pats else np.zeros((len(polys), 0), np.int8)
    for arr in polys:
        arr.setflags(write=False)
    return Regions2D(box, tuple(polys), patterns, out_a, out_c, dropped)
