"""Exact linear pieces of a network along a segment (no sampling).

Along ``x(t) = a + t (b - a)``, ``t`` in [0, 1], every layer's input is
affine in ``t`` on each current piece: ``h = P + Q t``.  A layer's
pre-activations ``z = alpha + beta t`` cross a kink ``k`` inside a piece when
their values at the two ends lie strictly on opposite sides of ``k``; the
crossing points become new breakpoints, and on every new piece each unit's
activation is one affine piece (slope and intercept from the table), so
``h`` stays affine.  All pieces are processed at once with NumPy.

Numerical conventions (documented in ``count_1d``): an end value within
``rtol * max(|z_lo|, |z_hi|, |k|)`` of a kink counts as *on* the kink (a
touch, not a crossing: the tent map's layers touch zero at the dyadic points
without crossing it), and breakpoints closer than ``64 * eps`` (in ``t``) are
merged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._network import Network, RegionLimitError

_MERGE_T = 64 * np.finfo(np.float64).eps


@dataclass(frozen=True)
class Pieces1D:
    """The linear pieces of a network along the segment from ``a`` to ``b``.

    ``breakpoints`` (count + 1,) are the ``t`` in [0, 1] where pieces meet
    (``x = a + t (b - a)``); on piece ``i`` the network's output is
    ``offset[i] + slope[i] * t`` and hidden unit ``u`` is on piece
    ``patterns[i, u]`` of its activation.
    """

    a: np.ndarray
    b: np.ndarray
    breakpoints: np.ndarray
    offset: np.ndarray
    slope: np.ndarray
    patterns: np.ndarray | None

    @property
    def count(self) -> int:
        return len(self.breakpoints) - 1

    @property
    def points(self) -> np.ndarray:
        """Breakpoints in input space, shape (count + 1, input_dim)."""
        return self.a + self.breakpoints[:, None] * (self.b - self.a)

    def midpoints(self) -> np.ndarray:
        """One point inside each piece, in input space."""
        t = 0.5 * (self.breakpoints[:-1] + self.breakpoints[1:])
        return self.a + t[:, None] * (self.b - self.a)

    def function_pieces(self, rtol: float = 1e-9) -> int:
        """Pieces after merging neighbours on which the output is the same affine function.

        Differs from ``count`` where a unit changes piece without changing
        the output (e.g. every unit downstream of it is off).
        """
        if self.count <= 1:
            return self.count
        scale = max(float(np.abs(self.offset).max()), float(np.abs(self.slope).max()), 1e-300)
        same = np.all(
            np.isclose(self.slope[1:], self.slope[:-1], rtol=rtol, atol=rtol * scale)
            & np.isclose(self.offset[1:], self.offset[:-1], rtol=rtol, atol=rtol * scale),
            axis=1,
        )
        return int(self.count - np.count_nonzero(same))


def _endpoint(value: Any, dim: int, name: str) -> np.ndarray:
    v = np.asarray(value)
    if v.dtype.kind not in "fiu" or v.dtype.kind == "b":
        raise TypeError(f"{name} must be a real number or vector, got dtype {v.dtype}")
    v = v.astype(np.float64).reshape(-1)
    if v.shape != (dim,):
        raise ValueError(
            f"{name} must have {dim} coordinate(s) (the network's input), got {v.size}"
        )
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be finite, got {v}")
    return v


def pieces_1d(
    net: Network,
    a: Any,
    b: Any,
    *,
    max_pieces: int = 1 << 22,
    rtol: float = 1e-9,
    keep_patterns: bool = True,
) -> Pieces1D:
    """The exact linear pieces of ``net`` on the segment from ``a`` to ``b`` (see :class:`Pieces1D`).

    RegionLimitError when there would be more than ``max_pieces`` pieces
    (memory grows as pieces x layer width).
    """
    if not isinstance(max_pieces, int) or isinstance(max_pieces, bool) or max_pieces < 1:
        raise ValueError(f"max_pieces must be a positive integer, got {max_pieces!r}")
    if not (0 <= rtol < 1e-3):
        raise ValueError(f"rtol must be in [0, 1e-3), got {rtol!r}")
    d = net.input_dim
    a = _endpoint(a, d, "a")
    b = _endpoint(b, d, "b")
    if np.array_equal(a, b):
        raise ValueError("the segment is degenerate: a == b")
    t_break = np.array([0.0, 1.0])
    p = a[None, :].copy()  # h = p + q t on each piece
    q = (b - a)[None, :].copy()
    pats = []
    for layer, (w, bias, act) in enumerate(net.layers()):
        alpha = p @ w
        alpha += bias
        beta = q @ w
        kinks = act.kinks
        if len(kinks):
            z_lo = alpha + beta * t_break[:-1, None]
            z_hi = alpha + beta * t_break[1:, None]
            mag = np.maximum(np.abs(z_lo), np.abs(z_hi))
            new = [t_break]
            for k in kinks:
                tol = rtol * np.maximum(mag, abs(k))
                d_lo = z_lo - k
                d_hi = z_hi - k
                cross = ((d_lo > tol) & (d_hi < -tol)) | ((d_lo < -tol) & (d_hi > tol))
                i, u = np.nonzero(cross)
                if len(i):
                    frac = d_lo[i, u] / (d_lo[i, u] - d_hi[i, u])
                    new.append(t_break[i] + frac * (t_break[i + 1] - t_break[i]))
            if len(new) > 1:
                t_new = np.unique(np.concatenate(new))
                keep = np.empty(len(t_new), bool)
                keep[0] = True
                keep[1:] = np.diff(t_new) > _MERGE_T
                keep[-1] = True
                if len(t_new) > 2 and t_new[-1] - t_new[-2] <= _MERGE_T:
                    keep[-2] = False
                t_new = t_new[keep]
                if len(t_new) - 1 > max_pieces:
                    raise RegionLimitError(
                        f"layer {layer + 1} splits the segment into {len(t_new) - 1} pieces, "
                        f"more than max_pieces={max_pieces}; raise max_pieces to go on"
                    )
                mid = 0.5 * (t_new[:-1] + t_new[1:])
                parent = np.clip(np.searchsorted(t_break, mid, side="right") - 1, 0, len(p) - 1)
                alpha, beta = alpha[parent], beta[parent]
                if pats:
                    pats = [pt[parent] for pt in pats]
                t_break = t_new
            else:
                mid = 0.5 * (t_break[:-1] + t_break[1:])
            piece = act.piece(alpha + beta * mid[:, None])
        else:
            piece = np.zeros(alpha.shape, np.int8)
        cols = np.arange(act.width)[None, :]
        s = act.slopes[piece, cols]
        c = act.intercepts[piece, cols]
        p = alpha * s + c
        q = beta * s
        if keep_patterns:
            pats.append(piece)
    offset = p @ net.weights[-1] + net.biases[-1]
    slope = q @ net.weights[-1]
    patterns = None
    if keep_patterns:
        patterns = np.concatenate(pats, axis=1) if pats else np.zeros((len(p), 0), np.int8)
    for arr in (t_break, offset, slope):
        arr.setflags(write=False)
    return Pieces1D(a, b, t_break, offset, slope, patterns)


def count_1d(
    net: Network,
    a: Any,
    b: Any,
    *,
    by: str = "pattern",
    max_pieces: int = 1 << 22,
    rtol: float = 1e-9,
) -> int:
    """Exact number of linear pieces of ``net`` on the segment from ``a`` to ``b``.

    ``by="pattern"`` (default) counts activation pieces: maximal intervals on
    which every hidden unit stays on one piece of its activation (what
    :func:`count_by_sampling` counts).  ``by="function"`` merges neighbouring
    pieces on which the output is the same affine function (they differ where
    a unit changes piece with no effect downstream).  For a 1-input network
    ``a`` and ``b`` are numbers.  The breakpoints are found layer by layer
    (no sampling); ends within ``rtol`` (relative) of a kink count as
    touching it, and breakpoints closer than ``64 eps`` of the segment are
    merged.  RegionLimitError above ``max_pieces``.
    """
    if by not in ("pattern", "function"):
        raise ValueError(f"by must be 'pattern' or 'function', got {by!r}")
    res = pieces_1d(net, a, b, max_pieces=max_pieces, rtol=rtol, keep_patterns=False)
    return res.count if by == "pattern" else res.function_pieces()
