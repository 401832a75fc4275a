"""The float64 reference itself: the oracle of the tests and the numpy backend."""

from __future__ import annotations

import numpy as np
import pytest

import fastact
from fastact import reference

HUGE = np.array([-np.finfo(np.float64).max, -1e300, -1.4e154, -1e20, -41.0, -38.5, -37.0])


def test_exact_gelu_tail_never_raises():
    """Far below 0 the exact gelu is -0 and its gradient 0, on the numpy backend too."""
    with fastact.config(backend="numpy"):
        y = fastact.gelu(HUGE)
        g = fastact.gelu_backward(np.ones_like(HUGE), HUGE)
        with np.errstate(over="ignore"):
            x32 = HUGE.astype(np.float32)  # -inf where float32 cannot hold them
        y32 = fastact.gelu(x32)
    assert (y <= 0).all() and (y[:4] == 0).all()
    assert (g <= 0).all() and (g[:4] == 0).all()
    assert (y32 == 0).all()


def test_exact_gelu_tail_matches_mpmath():
    """Phi and phi below x = -3: within 3 ulp of mpmath while they are normal numbers."""
    mpmath = pytest.importorskip("mpmath")
    ctx = mpmath.MPContext()
    ctx.dps = 40
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [[-3.0000000000000004], -np.geomspace(3.01, 37.5, 400), rng.uniform(-37.5, -3, 400)]
    )
    cdf, pdf = reference._phi2(x)
    for xi, c, p in zip(x, cdf, pdf):
        xm = ctx.mpf(float(xi))
        want_c = ctx.erfc(-xm / ctx.sqrt(2)) / 2
        want_p = ctx.npdf(xm)
        ulp_c = float(abs(c - want_c) / want_c) / np.finfo(np.float64).eps
        ulp_p = float(abs(p - want_p) / want_p) / np.finfo(np.float64).eps
        assert ulp_c < 3 and ulp_p < 3, (xi, ulp_c, ulp_p)


def test_exact_gelu_gradient_in_the_tail():
    """gelu'(x) = Phi(x) + x phi(x) below -3 (no cancellation: both terms keep their sign)."""
    x = -np.geomspace(3.5, 30, 50)
    cdf, pdf = reference._phi2(x)
    d = reference.backward("gelu", np.ones_like(x), x)
    np.testing.assert_allclose(d, cdf + x * pdf, rtol=1e-15)
    assert (d < 0).all()


@pytest.mark.parametrize("name", ["elu", "selu", "celu"])
def test_elu_family_keeps_the_sign_of_zero(name):
    """alpha * expm1(-0) = -0: the negative piece keeps -0 (and NaN), as the kernels do."""
    x = np.array([-0.0, 0.0, np.nan, -1.0])
    y = reference.forward(name, x)
    assert np.signbit(y[:2]).tolist() == [True, False]
    assert np.isnan(y[2]) and y[3] < 0


@pytest.mark.parametrize("beta", [0.1, 0.5, 0.9, 1.0, 2.0, -0.5])
def test_softplus_with_beta_below_one_matches_mpmath(beta):
    """softplus(beta x) / beta where e**(beta x) is subnormal (and below): with |beta| < 1
    the result is still normal there, within 3 ulp of mpmath; below the normal range,
    within twice the spacing of the subnormal numbers."""
    mpmath = pytest.importorskip("mpmath")
    ctx = mpmath.MPContext()
    ctx.dps = 40
    tiny = np.finfo(np.float64).tiny
    lo = (np.log(abs(beta)) + np.log(tiny) - 2) / abs(beta)
    x = np.sign(beta) * np.linspace(lo, -650 / abs(beta), 4001)
    y = reference.softplus(x, beta=beta)
    for xi, yi in zip(x, y):
        want = ctx.log1p(ctx.exp(ctx.mpf(float(xi * beta)))) / beta
        if abs(want) >= tiny:
            assert abs(yi - want) <= 3 * np.spacing(abs(float(want))), (xi, yi, want)
        else:
            assert abs(yi - want) <= 2 * np.finfo(np.float64).smallest_subnormal, (xi, yi, want)


@pytest.mark.parametrize("name", ["silu", "mish"])
def test_silu_and_mish_derivatives_underflow_to_negative_zero(name):
    """Negative below x = -1.28 (silu) and -1.19 (mish): -0 where they underflow, +0 only
    in the limit at -inf (the sum s + x s (1 - s) of +0 and -0 would be +0)."""
    x = np.array([-800.0, -1e30, -np.finfo(np.float64).max, -np.inf])
    d = reference.backward(name, np.ones_like(x), x)
    assert (d == 0).all() and np.signbit(d).tolist() == [True, True, True, False], d
