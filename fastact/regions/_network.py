"""The network description and its piecewise-linear activations.

A :class:`Network` is ``h_0 = x``, ``h_l = f_l(h_{l-1} @ W_l + b_l)`` for the
hidden layers and ``y = h_{L} @ W_out + b_out`` (linear) for the last one.
Each hidden activation ``f_l`` is a piecewise-linear entry of fastact's table;
its kink points come from the table (:func:`fastact.table.kink_points`) and
its slope and intercept on each piece are measured through fastact's own
kernel, so the table stays the single source of truth.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import fastact
from fastact.table import kink_points

ActivationSpec = str | tuple[str, Mapping[str, Any]]


class RegionLimitError(ValueError):
    """A count would exceed the limit the caller set (``max_regions``/``max_pieces``)."""


@dataclass(frozen=True, eq=False)
class LayerActivation:
    """A piecewise-linear activation applied to one hidden layer of ``width`` units.

    ``kinks`` (m,) are the sorted distinct points where it bends or jumps.
    Piece ``j`` is the open interval between ``kinks[j-1]`` and ``kinks[j]``
    (``-inf``/``inf`` at the ends); on it unit ``u`` computes
    ``slopes[j, u] * z + intercepts[j, u]``.  A pre-activation exactly on a
    kink counts as the piece below it: ``piece(z) = #{j : z > kinks[j]}``.
    """

    name: str
    params: Mapping[str, Any]
    width: int
    kinks: np.ndarray
    slopes: np.ndarray
    intercepts: np.ndarray
    apply: Callable[[np.ndarray], np.ndarray]

    @property
    def pieces(self) -> int:
        return len(self.kinks) + 1

    def piece(self, z: np.ndarray) -> np.ndarray:
        """Piece index of every pre-activation (int8, same shape as ``z``)."""
        idx = np.zeros(z.shape, np.int8)
        for k in self.kinks:
            idx += z > k
        return idx

    def describe(self) -> str:
        if not self.params:
            return self.name
        args = ", ".join(
            f"{k}={v:g}" if np.ndim(v) == 0 else f"{k}=array{np.shape(v)}"
            for k, v in self.params.items()
        )
        return f"{self.name}({args})"


def _parse_spec(spec: Any, where: str) -> tuple[str, dict]:
    if isinstance(spec, str):
        return spec, {}
    if (
        isinstance(spec, tuple)
        and len(spec) == 2
        and isinstance(spec[0], str)
        and isinstance(spec[1], Mapping)
    ):
        return spec[0], dict(spec[1])
    raise TypeError(
        f"{where} must be an activation name or a (name, params) tuple, got {type(spec).__name__}"
    )


def _caller(name: str, entry, params: dict, width: int) -> tuple[Callable, dict]:
    """An in-place ``apply(z)`` for a (N, width) array through fastact's kernel."""
    fn = getattr(fastact, name)
    allowed = entry.params
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        takes = ", ".join(allowed) or "no parameters"
        raise TypeError(f"{name} got unknown parameter(s) {', '.join(unknown)}; it takes {takes}")
    scalars = {}
    for p in entry.scalar_params:
        v = params.get(p.name, p.default)
        if v is None:
            example = {q.name: q.example for q in entry.scalar_params if q.default is None}
            raise TypeError(
                f"{name} needs parameter {p.name} (it has no default), e.g. ({name!r}, {example})"
            )
        if getattr(p, "choices", ()):
            if v not in p.choices:
                raise ValueError(f"{name}: {p.name} must be one of {p.choices}, got {v!r}")
            scalars[p.name] = v
            continue
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
            raise TypeError(f"{name}: parameter {p.name} must be a real number, got {v!r}")
        if not math.isfinite(float(v)):
            raise ValueError(f"{name}: parameter {p.name} must be finite, got {v!r}")
        scalars[p.name] = float(v)
    shown = dict(scalars)
    cp = entry.channel_param
    if cp:
        w = np.asarray(params.get(cp, entry.params[cp]), dtype=np.float64)
        if w.ndim > 1 or w.size not in (1, width):
            raise ValueError(
                f"{name}: {cp} must be a scalar or have one value per unit ({width}), "
                f"got shape {w.shape}"
            )
        if not np.all(np.isfinite(w)):
            raise ValueError(f"{name}: {cp} must be finite")
        w = w.reshape(-1) if w.size > 1 else w.reshape(())
        shown[cp] = w if w.ndim else float(w)

        def apply(z: np.ndarray) -> np.ndarray:
            return fn(z, w.astype(z.dtype), out=z)

    elif entry.has_training_mode:

        def apply(z: np.ndarray) -> np.ndarray:
            return fn(z, **scalars, training=False, out=z)

    else:

        def apply(z: np.ndarray) -> np.ndarray:
            return fn(z, **scalars, out=z)

    return apply, shown


def make_activation(spec: ActivationSpec, width: int, where: str = "activation") -> LayerActivation:
    """The :class:`LayerActivation` of ``spec`` (a name or ``(name, params)``) for ``width`` units."""
    name, params = _parse_spec(spec, where)
    entry = fastact.activation(name)  # ValueError for an unknown name
    if not entry.piecewise_linear:
        pwl = [n for n in fastact.activations() if fastact.activation(n).piecewise_linear]
        raise ValueError(
            f"{where}: {name!r} is not piecewise linear (the table lists no kinks for it), so it "
            f"has no linear regions; choose one of {', '.join(pwl)}"
        )
    apply, shown = _caller(name, entry, params, width)
    scalar = {k: v for k, v in shown.items() if k != entry.channel_param}
    kinks = np.unique(np.asarray(kink_points(entry, scalar), dtype=np.float64))
    if not np.all(np.isfinite(kinks)):
        raise ValueError(f"{where}: {name} has a non-finite kink: {kinks}")
    slopes, intercepts = _measure_pieces(name, kinks, apply, width)
    for arr in (kinks, slopes, intercepts):
        arr.setflags(write=False)
    return LayerActivation(name, shown, width, kinks, slopes, intercepts, apply)


def _measure_pieces(name: str, kinks: np.ndarray, apply: Callable, width: int):
    """Slope and intercept of every piece, per unit, measured through the kernel.

    Three probe points per piece (two define the line, the third checks that
    the activation really is affine there: a wrong kink list in the table is
    caught here rather than giving wrong counts).
    """
    m = len(kinks)
    probes = []
    for j in range(m + 1):
        if m == 0:
            probes.append((-1.0, 0.5, 2.0))
        elif j == 0:
            probes.append((kinks[0] - 3.0, kinks[0] - 2.0, kinks[0] - 1.0))
        elif j == m:
            probes.append((kinks[-1] + 1.0, kinks[-1] + 2.0, kinks[-1] + 3.0))
        else:
            lo, hi = kinks[j - 1], kinks[j]
            probes.append(tuple(lo + (hi - lo) * f for f in (0.25, 0.5, 0.75)))
    p = np.asarray(probes, dtype=np.float64)  # (m+1, 3)
    z = np.repeat(p.reshape(-1, 1), width, axis=1)  # (3(m+1), width)
    f = apply(z.copy()).reshape(m + 1, 3, width)
    x0, x1, x2 = p[:, 0:1], p[:, 1:2], p[:, 2:3]
    slopes = (f[:, 2] - f[:, 0]) / (x2 - x0)
    intercepts = f[:, 0] - slopes * x0
    predicted = slopes * x1 + intercepts
    scale = np.abs(f).max(axis=1) + np.abs(slopes) * np.abs(p).max(axis=1, keepdims=True) + 1.0
    if not np.all(np.abs(predicted - f[:, 1]) <= 1e-9 * scale):
        raise ValueError(
            f"{name} is not affine between the kinks the table lists ({kinks.tolist()}); "
            "its kinks entry is wrong"
        )
    return np.ascontiguousarray(slopes), np.ascontiguousarray(intercepts)


def _as_matrix(value: Any, name: str, ndim: int) -> np.ndarray:
    a = np.asarray(value)
    if a.dtype.kind not in "fiu" or a.dtype.kind == "b":
        raise TypeError(f"{name} must be a real array, got dtype {a.dtype}")
    if a.ndim != ndim:
        want = "(fan_in, fan_out)" if ndim == 2 else "(fan_out,)"
        raise ValueError(f"{name} must have shape {want}, got shape {a.shape}")
    a = np.array(a, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinity")
    a.setflags(write=False)
    return a


class Network:
    """A fully connected network with piecewise-linear hidden activations.

    ``h_l = f_l(h_{l-1} @ weights[l] + biases[l])`` for every layer but the
    last, which is linear: ``y = h @ weights[-1] + biases[-1]``.

    Parameters
    ----------
    weights : sequence of arrays, ``weights[i]`` of shape ``(fan_in, fan_out)``
    biases : sequence of arrays, ``biases[i]`` of shape ``(fan_out,)``
    activations : a name (``"relu"``), a ``(name, params)`` tuple such as
        ``("leaky_relu", {"negative_slope": 0.1})`` or ``("prelu", {"weight": w})``,
        or a list with one of those per hidden layer.  Every name must be a
        piecewise-linear entry of the table (it lists kinks); ``rrelu`` is used
        in eval mode (slope ``(lower + upper) / 2``).
    """

    def __init__(
        self,
        weights: Sequence[Any],
        biases: Sequence[Any],
        activations: ActivationSpec | Sequence[ActivationSpec] = "relu",
    ) -> None:
        if isinstance(weights, np.ndarray) or not isinstance(weights, Sequence):
            raise TypeError("weights must be a list of 2-d arrays, one per layer")
        if isinstance(biases, np.ndarray) or not isinstance(biases, Sequence):
            raise TypeError("biases must be a list of 1-d arrays, one per layer")
        if len(weights) == 0:
            raise ValueError("weights is empty: a network needs at least one layer")
        if len(biases) != len(weights):
            raise ValueError(f"got {len(weights)} weight matrices but {len(biases)} bias vectors")
        ws = [_as_matrix(w, f"weights[{i}]", 2) for i, w in enumerate(weights)]
        bs = [_as_matrix(b, f"biases[{i}]", 1) for i, b in enumerate(biases)]
        for i, (w, b) in enumerate(zip(ws, bs)):
            if w.shape[0] == 0 or w.shape[1] == 0:
                raise ValueError(f"weights[{i}] has an empty dimension: shape {w.shape}")
            if b.shape[0] != w.shape[1]:
                raise ValueError(
                    f"biases[{i}] has {b.shape[0]} elements but weights[{i}] has "
                    f"fan_out {w.shape[1]}"
                )
            if i and w.shape[0] != ws[i - 1].shape[1]:
                raise ValueError(
                    f"weights[{i}] has fan_in {w.shape[0]} but weights[{i - 1}] has "
                    f"fan_out {ws[i - 1].shape[1]}"
                )
        hidden = len(ws) - 1
        if isinstance(activations, str) or (
            isinstance(activations, tuple)
            and len(activations) == 2
            and isinstance(activations[1], Mapping)
        ):
            specs = [activations] * hidden
        elif isinstance(activations, Sequence):
            specs = list(activations)
            if len(specs) != hidden:
                raise ValueError(
                    f"activations has {len(specs)} entries but the network has {hidden} "
                    f"hidden layer(s) (the last layer is linear)"
                )
        else:
            raise TypeError(
                "activations must be a name, a (name, params) tuple, or a list of them, "
                f"got {type(activations).__name__}"
            )
        self.weights: tuple[np.ndarray, ...] = tuple(ws)
        self.biases: tuple[np.ndarray, ...] = tuple(bs)
        self.activations: tuple[LayerActivation, ...] = tuple(
            make_activation(s, ws[i].shape[1], f"activations[{i}]") for i, s in enumerate(specs)
        )

    # --- shape ---------------------------------------------------------------

    @property
    def widths(self) -> tuple[int, ...]:
        """``(input, hidden_1, ..., hidden_L, output)``."""
        return (self.weights[0].shape[0], *(w.shape[1] for w in self.weights))

    @property
    def input_dim(self) -> int:
        return self.weights[0].shape[0]

    @property
    def hidden_widths(self) -> tuple[int, ...]:
        return tuple(w.shape[1] for w in self.weights[:-1])

    @property
    def depth(self) -> int:
        """Number of hidden (nonlinear) layers."""
        return len(self.weights) - 1

    @property
    def units(self) -> int:
        return sum(self.hidden_widths)

    @property
    def kinks_per_layer(self) -> tuple[int, ...]:
        return tuple(len(a.kinks) for a in self.activations)

    def layers(self):
        """``(W, b, activation)`` for each hidden layer."""
        return zip(self.weights[:-1], self.biases[:-1], self.activations)

    def __repr__(self) -> str:
        acts = sorted({a.describe() for a in self.activations})
        return f"Network(widths={'-'.join(map(str, self.widths))}, activations={', '.join(acts) or '-'})"

    def __call__(self, x: Any) -> np.ndarray:
        """The network's output for points ``x`` of shape (N, input_dim), in float64."""
        from ._patterns import as_points

        h = as_points(x, self.input_dim)
        for w, b, act in self.layers():
            z = h @ w
            z += b
            h = act.apply(z)
        return h @ self.weights[-1] + self.biases[-1]


# --- networks worth looking at ---------------------------------------------


def _rng(seed: Any) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (
        isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral)
    ):
        raise TypeError(f"seed must be an integer, None or a numpy Generator, got {seed!r}")
    return np.random.default_rng(seed)


def _check_widths(widths: Sequence[int], name: str = "widths", min_len: int = 1) -> list[int]:
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        raise TypeError(f"{name} must be a sequence of positive integers")
    out = []
    for w in widths:
        if isinstance(w, (bool, np.bool_)) or not isinstance(w, numbers.Integral) or w < 1:
            raise ValueError(f"{name} must hold positive integers, got {list(widths)}")
        out.append(int(w))
    if len(out) < min_len:
        raise ValueError(f"{name} needs at least {min_len} entries, got {list(widths)}")
    return out


def random_network(
    widths: Sequence[int],
    activation: ActivationSpec | Sequence[ActivationSpec] = "relu",
    *,
    outputs: int = 1,
    seed: Any = 0,
    bias_std: float = 0.5,
) -> Network:
    """A random network: ``widths = (input, hidden_1, ..., hidden_L)`` plus a linear output.

    Weights are He-initialised, ``N(0, 2 / fan_in)``; biases ``N(0, bias_std^2)``
    (nonzero so that the first layer's kinks are not all concurrent).
    ``random_network([2, 16, 16, 16])`` is the "2-16-16-16" network.
    """
    ws = _check_widths(widths, min_len=1)
    if isinstance(outputs, bool) or not isinstance(outputs, numbers.Integral) or outputs < 1:
        raise ValueError(f"outputs must be a positive integer, got {outputs!r}")
    rng = _rng(seed)
    dims = ws + [int(outputs)]
    weights = [rng.normal(0.0, math.sqrt(2.0 / a), (a, b)) for a, b in zip(dims[:-1], dims[1:])]
    biases = [rng.normal(0.0, float(bias_std), b) for b in dims[1:]]
    return Network(weights, biases, activation)


def _zigzag_coefficients(teeth: int) -> np.ndarray:
    """c with sum_j c_j relu(x - j/p) = the p-tooth zigzag of [0, 1] onto [0, 1]."""
    c = np.full(teeth, 2.0 * teeth)
    c[1::2] *= -1
    c[0] = teeth
    return c


def sawtooth_network(depth: int, teeth: int = 2, dims: int = 2) -> Network:
    """The folded ``p mod 1`` map: each coordinate of ``[0, 1]^dims`` folded ``teeth^depth`` times.

    Every hidden layer has ``teeth`` ReLU units per coordinate,
    ``relu(g - j/teeth)`` for ``j < teeth``, whose combination
    ``g' = teeth * (relu(g) - 2 relu(g - 1/teeth) + 2 relu(g - 2/teeth) - ...)``
    is a zigzag mapping [0, 1] onto [0, 1] ``teeth`` times; composing ``depth``
    of them gives a triangle wave with ``teeth^depth`` linear pieces per
    coordinate (the continuous, folded version of ``teeth^depth * p mod 1``).
    Output: the ``dims`` folded coordinates.  On ``[0, 1]^dims`` it has exactly
    ``teeth^(dims * depth)`` linear regions.
    """
    for name, v, lo in (("depth", depth, 1), ("teeth", teeth, 1), ("dims", dims, 1)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    p, d = int(teeth), int(dims)
    coef = _zigzag_coefficients(p)
    offsets = -np.arange(p) / p
    width = p * d
    first = np.zeros((d, width))
    comb = np.zeros((width, d))  # hidden -> folded coordinates
    for c in range(d):
        first[c, c * p : (c + 1) * p] = 1.0
        comb[c * p : (c + 1) * p, c] = coef
    bias = np.tile(offsets, d)
    weights = [first] + [comb @ first for _ in range(depth - 1)] + [comb]
    biases = [bias] * depth + [np.zeros(d)]
    return Network(weights, biases, "relu")


def tent_network(depth: int) -> Network:
    """Telgarsky's construction: the tent map ``t(x) = 2 relu(x) - 4 relu(x - 1/2)``
    composed ``depth`` times (2 units per layer); exactly ``2^depth`` pieces on [0, 1]."""
    return sawtooth_network(depth, teeth=2, dims=1)


def _tangent_lines(n: int, center, radius: float, rng: np.random.Generator):
    """``n`` lines tangent to a circle, normals spread over a quarter turn.

    Tangent lines to one circle are in general position (no two parallel, no
    three through one point), and with normals at most 90 degrees apart every
    pairwise intersection lies within ``radius * sqrt(2)`` of the centre.
    Returns the (2, n) unit normals and the offsets ``normal . center + radius``.
    """
    jitter = rng.uniform(-0.3, 0.3, n)
    theta = (np.arange(n) + 0.5 + jitter) / n * (np.pi / 2)
    normals = np.stack([np.cos(theta), np.sin(theta)])
    offsets = normals.T @ np.asarray(center, dtype=np.float64) + radius
    return normals, offsets


def _line_units(normals, offsets, rng, kink: float = 0.0):
    """Weights and biases of units whose pre-activation equals ``kink`` on the lines."""
    n = normals.shape[1]
    scale = rng.uniform(0.5, 2.0, n) * rng.choice([-1.0, 1.0], n)
    return normals * scale, kink - offsets * scale


def zaslavsky_network(
    n: int,
    box: Any = ((-1.0, 1.0), (-1.0, 1.0)),
    activation: ActivationSpec = "relu",
    *,
    seed: Any = 0,
) -> Network:
    """One hidden layer of ``n`` units whose kink lines are in general position in ``box``.

    The lines are tangent to a circle of half the box's inradius around its
    centre: each crosses the box, no two are parallel, no three meet, and
    every intersection is inside the box, so a one-kink activation (relu,
    leaky_relu, ...) gives exactly ``1 + n + n(n-1)/2`` regions there
    (Zaslavsky's count for an arrangement of lines in general position).
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    from ._exact2d import check_box

    (x0, x1), (y0, y1) = check_box(box)
    rng = _rng(seed)
    radius = 0.5 * min(x1 - x0, y1 - y0) / 2
    normals, offsets = _tangent_lines(int(n), ((x0 + x1) / 2, (y0 + y1) / 2), radius, rng)
    w, b = _line_units(normals, offsets, rng)
    out = rng.normal(0.0, 1.0, (int(n), 1))
    return Network([w, out], [b, np.zeros(1)], activation)


def montufar_network(depth: int, width: int, *, seed: Any = 0) -> Network:
    """A deep ReLU network on ``[0, 1]^2`` with exactly Montufar et al.'s (2014) lower bound of regions.

    ``depth - 1`` folding layers of ``width`` units (``width / 2`` teeth per
    coordinate, see :func:`sawtooth_network`) map each of their
    ``(width/2)^(2(depth-1))`` cells onto the unit square; a last layer of
    ``width`` units in general position there (see :func:`zaslavsky_network`)
    cuts every cell into ``1 + width + width(width-1)/2`` regions.
    ``width`` must be even.
    """
    if isinstance(depth, bool) or not isinstance(depth, numbers.Integral) or depth < 1:
        raise ValueError(f"depth must be an integer >= 1, got {depth!r}")
    if isinstance(width, bool) or not isinstance(width, numbers.Integral) or width < 2 or width % 2:
        raise ValueError(f"width must be an even integer >= 2, got {width!r}")
    rng = _rng(seed)
    normals, offsets = _tangent_lines(int(width), (0.5, 0.5), 0.3, rng)
    w_last, b_last = _line_units(normals, offsets, rng)
    out_w = rng.normal(0.0, 1.0, (int(width), 1))
    if depth == 1:
        return Network([w_last, out_w], [b_last, np.zeros(1)], "relu")
    fold = sawtooth_network(int(depth) - 1, teeth=int(width) // 2, dims=2)
    weights = list(fold.weights[:-1]) + [fold.weights[-1] @ w_last, out_w]
    biases = list(fold.biases[:-1]) + [b_last, np.zeros(1)]
    return Network(weights, biases, "relu")
