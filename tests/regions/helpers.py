"""Independent oracles for the region tests (NumPy reference activations, geometry)."""

from __future__ import annotations

import math

import numpy as np

import fastact
from fastact import reference
from fastact.regions import Network
from fastact.table import kink_points

PWL = [n for n in fastact.activations() if fastact.activation(n).piecewise_linear]


def example_spec(name: str, width: int, rng=None):
    """A (name, params) spec with every required parameter set (prelu: one slope per unit)."""
    e = fastact.activation(name)
    params = {p.name: p.example for p in e.scalar_params if p.default is None}
    if e.channel_param:
        rng = rng or np.random.default_rng(3)
        params[e.channel_param] = rng.uniform(-0.5, 0.9, width)
    return (name, params) if params else name


def _split(spec):
    return (spec, {}) if isinstance(spec, str) else spec


def reference_forward(weights, biases, specs, x):
    """(piece indices (N, units), output) with fastact.reference and np.searchsorted."""
    h = np.asarray(x, np.float64)
    pieces = []
    for w, b, spec in zip(weights[:-1], biases[:-1], specs):
        name, params = _split(spec)
        e = fastact.activation(name)
        scalar = {k: v for k, v in params.items() if k != e.channel_param}
        kinks = np.unique(kink_points(e, scalar))
        z = h @ w + b
        pieces.append(np.searchsorted(kinks, z, side="left"))
        fn = getattr(reference, name)
        h = fn(z, **params)
    out = h @ weights[-1] + biases[-1]
    p = np.concatenate(pieces, axis=1) if pieces else np.zeros((len(h), 0), int)
    return p, out


def general_position_layer(spec, n: int, box, seed: int = 0) -> tuple[Network, int]:
    """One hidden layer whose kink lines all cross ``box``, meet inside it, three never at a point.

    Unit u's lines (one per kink) are parallel and lie just outside a circle
    around the box centre, each family tangent-ish with normals spread over a
    quarter turn.  Returns the network and the expected count
    ``1 + lines + intersections`` (Euler: an arrangement of lines with no three
    concurrent, all crossings inside the box).
    """
    rng = np.random.default_rng(seed)
    name, params = _split(spec)
    e = fastact.activation(name)
    scalar = {k: v for k, v in params.items() if k != e.channel_param}
    kinks = np.unique(kink_points(e, scalar))
    m = len(kinks)
    (x0, x1), (y0, y1) = box
    c = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    big_r = min(x1 - x0, y1 - y0) / 2
    r = 0.45 * big_r
    theta = (np.arange(n) + 0.5 + rng.uniform(-0.3, 0.3, n)) / n * (np.pi / 2)
    normals = np.stack([np.cos(theta), np.sin(theta)])
    spread = kinks[-1] - kinks[0]
    mag = max(1.0, spread / (0.05 * big_r)) * rng.uniform(1.0, 2.0, n)
    s = mag * rng.choice([-1.0, 1.0], n)
    offsets = normals.T @ c + r
    w = normals * s
    b = kinks[0] - offsets * s
    net = Network([w, rng.normal(size=(n, 1))], [b, np.zeros(1)], spec)
    lines = m * n
    crossings = math.comb(lines, 2) - n * math.comb(m, 2)
    return net, 1 + lines + crossings


def clip_length(poly: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Length (in t) of the part of segment a->b inside convex CCW polygon ``poly`` (Cyrus-Beck)."""
    lo, hi = 0.0, 1.0
    d = b - a
    k = len(poly)
    for i in range(k):
        p, q = poly[i], poly[(i + 1) % k]
        edge = q - p
        normal = np.array([edge[1], -edge[0]])  # outward for CCW
        num = normal @ (p - a)
        den = normal @ d
        if den == 0:
            if num < 0:
                return 0.0
            continue
        t = num / den
        if den > 0:
            hi = min(hi, t)
        else:
            lo = max(lo, t)
        if lo >= hi:
            return 0.0
    return hi - lo
