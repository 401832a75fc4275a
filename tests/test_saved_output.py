"""Entries that save their output: does the backward lose information once it rounds?

A backward computed from the output y sees only the rounded y.  Near a kink,
rounding can move y across the kink or onto a flat piece (hardsigmoid's
output rounds to 1 just below x = 3, where the slope is 0): these probes
find such entries automatically, from the table.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastact
from fastact import reference
from fastact.table import TABLE, jump_points
from tests.conftest import BACKENDS, Call, example_params

OUTPUT_SAVERS = [e for e in TABLE if e.saves == "output"]
WITH_KINKS = [e for e in OUTPUT_SAVERS if e.kinks]
SMOOTH = [e for e in OUTPUT_SAVERS if not e.kinks and not e.rowwise]


def _near(k: float, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Floats of ``dtype`` just below and just above ``k``: the nearest 32 on each side,
    then k -+ |k| 2**-j down to the width of the float."""
    k = dtype(k)
    below, above = [], []
    lo = hi = k
    for _ in range(32):
        lo, hi = np.nextafter(lo, dtype(-np.inf)), np.nextafter(hi, dtype(np.inf))
        below.append(lo)
        above.append(hi)
    scale = max(abs(float(k)), 1.0)
    for j in range(1, np.finfo(dtype).nmant + 2):
        below.append(dtype(float(k) - scale * 2.0**-j))
        above.append(dtype(float(k) + scale * 2.0**-j))
    below = np.array([v for v in below if v < k], dtype)
    above = np.array([v for v in above if v > k], dtype)
    return below, above


def _secant(call: Call, x: np.ndarray, h: float) -> np.ndarray:
    """The slope of the piece holding each x, from the float64 reference: (f(x) - f(x - h)) / h."""
    x64 = x.astype(np.float64)
    kw = call._ref_kw(x.dtype)  # rrelu's random slopes are those of x's dtype
    f = reference.forward
    return (f(call.entry.name, x64, **kw) - f(call.entry.name, x64 - h, **kw)) / h


@pytest.mark.parametrize("entry", WITH_KINKS, ids=lambda e: e.name)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_backward_from_output_near_kinks(entry, dtype, backend):
    """Forward then backward from the output, at the float neighbours of every kink, gives the
    slope of the piece the input is on (a piecewise-linear slope, from the reference)."""
    for params in example_params(entry):
        kinks = jump_points(entry, params)
        gaps = np.diff(kinks) if len(kinks) > 1 else np.array([2.0])
        h = float(min(gaps.min() / 4, 0.5))
        for training in (False, True) if entry.has_training_mode else (False,):
            call = Call(entry, params, training=training)
            for k in kinks:
                below, above = _near(k, dtype)
                for side, x, step in (("below", below, h), ("above", above, -h)):
                    with fastact.config(backend=backend):
                        y = call.forward(x)
                        got = call.backward(np.ones_like(x), y).astype(np.float64)
                    want = _secant(call, x, step)
                    bad = np.abs(got - want) > 1e-4 * np.abs(want) + 1e-12
                    assert not bad.any(), (
                        f"{entry.name} {params} training={training} {side} kink {k}: "
                        f"x={x[bad][:3]} y={y[bad][:3]} gradient from the output "
                        f"{got[bad][:3]}, slope {want[bad][:3]}"
                    )


@pytest.mark.parametrize("entry", SMOOTH, ids=lambda e: e.name)
@pytest.mark.parametrize("backend", BACKENDS)
def test_backward_from_rounded_output_is_absolutely_accurate(entry, backend):
    """Smooth entries saving their output: the float32 gradient from the rounded output is
    within a few ulp of |grad_output| of the exact one (from the float64 output)."""
    x = np.concatenate(
        [np.linspace(-30, 30, 2001), -np.geomspace(1e-6, 100, 200), np.geomspace(1e-6, 100, 200)]
    ).astype(np.float32)
    g = np.random.default_rng(0).normal(0, 3, x.size).astype(np.float32)
    call = Call(entry)
    with fastact.config(backend=backend):
        got = call.backward(g, call.forward(x)).astype(np.float64)
    exact = call.ref_backward(g.astype(np.float64), call.ref_forward(x.astype(np.float64)))
    err = np.abs(got - exact)
    tol = 4 * np.finfo(np.float32).eps * np.abs(g)
    assert (err <= tol).all(), f"{entry.name}: at x={x[err > tol][:3]} error {err[err > tol][:3]}"
