"""The table's claims, verified from the kernels: gradients and the five properties."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastact
from fastact.table import TABLE, jump_points
from tests.conftest import ELEMENTWISE, Call, entry_id, example_params


def _away_from_kinks(entry, x, params, margin=1e-3):
    if entry.kinks is None:
        return x
    scalars = {k: v for k, v in params.items() if v is not None and np.ndim(v) == 0}
    for k in jump_points(entry, scalars):
        x = x[np.abs(x - k) > margin]
    return x


def test_table_names_are_unique_and_public():
    names = [e.name for e in TABLE]
    assert len(names) == len(set(names))
    assert fastact.activations()[: len(names)] == names
    for name in names:
        assert callable(getattr(fastact, name))
        assert callable(getattr(fastact, f"{name}_backward"))
        e = fastact.activation(name)
        assert e.saves in ("input", "output")
        assert isinstance(e.params, dict)


def test_unknown_activation():
    with pytest.raises(ValueError, match="unknown activation 'nope'"):
        fastact.activation("nope")


def test_backward_matches_central_differences(entry):
    """float64, away from kinks: the analytic gradient equals (f(x+h) - f(x-h)) / 2h."""
    rng = np.random.default_rng(11)
    lo, hi = entry.sample_range
    modes = (False, True) if entry.has_training_mode else (False,)
    for params, training in [(p, t) for p in example_params(entry) for t in modes]:
        call = Call(entry, params, training=training)
        x = rng.uniform(lo, hi, 400)
        x = _away_from_kinks(entry, x, params) if not entry.rowwise else x
        if entry.rowwise:
            x = x.reshape(20, -1)
        g = rng.normal(size=x.shape)
        y = call.forward(x)
        analytic = call.backward(g, call.saved(x, y))
        if entry.rowwise:
            # a full Jacobian: check <backward(g), v> against a directional difference
            for _ in range(3):
                v = rng.normal(size=x.shape)
                h = 1e-6
                numeric = (g * (call.forward(x + h * v) - call.forward(x - h * v))).sum() / (2 * h)
                assert (analytic * v).sum() == pytest.approx(numeric, rel=1e-6, abs=1e-8)
            continue
        h = 1e-6 * np.maximum(1.0, np.abs(x))
        numeric = g * (call.forward(x + h) - call.forward(x - h)) / (2 * h)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7, err_msg=str(params))


def test_prelu_weight_gradient_matches_central_differences():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, 4, 6))
    x = np.where(np.abs(x) < 1e-3, 0.5, x)
    g = rng.normal(size=x.shape)
    w = rng.uniform(-0.5, 0.5, 4)
    _, gw = fastact.prelu_backward(g, x, w)
    for c in range(4):
        e = np.zeros(4)
        e[c] = 1e-6
        num = (g * (fastact.prelu(x, w + e) - fastact.prelu(x, w - e))).sum() / 2e-6
        assert gw[c] == pytest.approx(num, rel=1e-6)


def _derivative(call, x):
    y = call.forward(x)
    return call.backward(np.ones_like(x), call.saved(x, y))


@pytest.mark.parametrize("entry", ELEMENTWISE, ids=entry_id)
def test_recorded_properties_hold(entry):
    props = entry.properties
    call = Call(entry)
    lo, hi = entry.sample_range
    grid = np.linspace(lo, hi, 20001)
    y = call.forward(grid)

    # nonlinear: not affine on the grid
    a, b = grid, np.random.default_rng(0).permutation(grid)
    mid = call.forward((a + b) / 2)
    affine = np.allclose(mid, (call.forward(a) + call.forward(b)) / 2, rtol=1e-9, atol=1e-12)
    assert props.nonlinear == (not affine)

    # monotonic (non-decreasing) on the grid
    assert props.monotonic == bool(np.all(np.diff(y) >= 0))

    # identity near zero: f(0) = 0 and f'(0) = 1
    zero = np.zeros(1)
    is_identity = abs(call.forward(zero)[0]) < 1e-12 and abs(_derivative(call, zero)[0] - 1) < 1e-9
    assert props.identity_near_zero == is_identity

    # output range: every output lies in the recorded closed range, whose
    # finite ends are reached (or approached) at the extremes
    lo_r, hi_r = props.output_range
    wide = np.concatenate([grid, [-np.inf, np.inf, -1e30, 1e30, -700.0, 700.0]])
    yw = call.forward(wide)
    assert np.all(yw >= lo_r) and np.all(yw <= hi_r)
    for end, pick in ((lo_r, np.min), (hi_r, np.max)):
        if math.isfinite(end):
            assert pick(yw) == pytest.approx(end, abs=1e-6)
        else:
            assert np.isinf(pick(yw)) or abs(pick(yw)) > 1e3

    # differentiable everywhere: the derivative has no jumps on a fine grid;
    # almost everywhere: it jumps at a recorded kink
    d = _derivative(call, grid)
    jumps = np.abs(np.diff(d)) > 1e-2
    if props.differentiable == "everywhere":
        assert not jumps.any()
    else:
        assert entry.kinks is not None and jumps.any()
        kinks = np.array(jump_points(entry))
        where = grid[1:][jumps]
        assert np.all(np.min(np.abs(where[:, None] - kinks[None, :]), axis=1) < 1e-2)
