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
WITH_KINKS = [e for e in OUTPUT_SAVERS if e.kinks and e.piecewise_linear]
# smooth between kinks (selu's slope jumps at 0, but is not piecewise linear)
SMOOTH = [e for e in OUTPUT_SAVERS if not e.piecewise_linear and not e.rowwise]


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
    for params in example_params(entry):
        call = Call(entry, params)
        with fastact.config(backend=backend):
            got = call.backward(g, call.forward(x)).astype(np.float64)
        exact = call.ref_backward(g.astype(np.float64), call.ref_forward(x.astype(np.float64)))
        err = np.abs(got - exact)
        # (y + alpha) / alpha (celu) is a few ulp of 1 / |alpha| absolutely
        scale = max([1.0] + [1 / abs(v) for k, v in params.items() if k == "alpha"])
        tol = 4 * np.finfo(np.float32).eps * np.abs(g) * scale
        bad = err > tol
        assert not bad.any(), f"{entry.name} {params}: at x={x[bad][:3]} error {err[bad][:3]}"


def _negative_alpha_sets(entry) -> list[dict]:
    """alpha = -1.5 where the entry has an alpha and its checks allow a negative one."""
    if "alpha" not in entry.params:
        return []
    env = {**entry.example_params, "alpha": -1.5}
    ok = all(eval(c, {}, env) for c, _ in entry.checks + entry.backward_checks)  # noqa: S307
    return [{"alpha": -1.5}] if ok else []


@pytest.mark.parametrize("entry", SMOOTH, ids=lambda e: e.name)
@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_from_output_is_the_slope_at_the_input(entry, backend):
    """float32: the gradient from the output is the derivative at the input (a central
    difference of the float64 reference forward), on both sides of 0 and of every kink,
    within a few ulp of the slope plus the rounded output's error (|y| ulp over the scale of
    alpha), for the test parameters and for a negative alpha where the entry takes one."""
    x = np.concatenate([np.linspace(-20, 20, 4001), np.geomspace(1e-30, 1, 50)])
    x = np.concatenate([x, -x]).astype(np.float32)
    x64 = x.astype(np.float64)
    h = 2.0**-20 * np.maximum(1.0, np.abs(x64))
    for params in example_params(entry) + _negative_alpha_sets(entry):
        call = Call(entry, params)
        with fastact.config(backend=backend):
            y = call.forward(x)
            got = call.backward(np.ones_like(x), y).astype(np.float64)
        kw = call._ref_kw(x.dtype)
        f = reference.forward
        lo, hi = np.maximum(x64 - h, np.where(x64 > 0, 0.0, -np.inf)), x64 + h
        hi = np.where(x64 <= 0, np.minimum(hi, 0.0), hi)  # one piece: not across 0
        want = (f(entry.name, hi, **kw) - f(entry.name, lo, **kw)) / (hi - lo)
        scale = max([1.0] + [1 / abs(v) for k, v in params.items() if k == "alpha"])
        tol = 16 * np.finfo(np.float32).eps * (np.abs(want) + np.abs(y) * scale) + 1e-9
        bad = np.abs(got - want) > tol
        assert not bad.any(), (
            f"{entry.name} {params}: x={x[bad][:3]} got {got[bad][:3]} want {want[bad][:3]}"
        )


@pytest.mark.parametrize("backend", BACKENDS)
def test_elu_gradient_refuses_a_negative_alpha(backend):
    """With alpha < 0, elu's output no longer tells x > 0 from x < 0: the backward refuses
    it, naming alpha, and writes nothing."""
    x = np.array([-1.0, 0.5, 2.0])
    out = np.full_like(x, 7.0)
    with fastact.config(backend=backend):
        y = fastact.elu(x, alpha=-0.5)
        with pytest.raises(ValueError, match="alpha"):
            fastact.elu_backward(np.ones_like(x), y, alpha=-0.5, out=out)
    assert (out == 7.0).all()
