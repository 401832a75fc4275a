"""softplus(beta x) / beta against mpmath, for beta on both sides of 1, on every backend.

The kernels compute beta x rounded to the dtype (beta itself rounded to it); the
reference here takes that rounded product exactly, so the bound is the helper's own
error: within 3 ulp (2.4 measured) wherever the result is a normal number, from below
ln(|beta| 2**-126) (where it leaves the normal range, past the point where e**(beta x)
does when |beta| < 1) up to the linear branch; 0 below the normal range.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

import fastact
from tests.conftest import COMPILED


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("beta", [0.1, 0.5, 0.9, 2.0, 10.0, -0.5, 1e-3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_softplus_with_beta_within_3_ulp(backend, beta, dtype):
    tiny = float(np.finfo(dtype).tiny)
    b = dtype(beta)
    zlo = np.log(abs(float(b))) + np.log(tiny) - 1
    rng = np.random.default_rng(5)
    z = np.concatenate([rng.uniform(zlo, 19, 400), np.linspace(zlo, zlo + 3, 200)])
    x = (z / float(b)).astype(dtype)
    with fastact.config(backend=backend):
        y = fastact.softplus(x, beta=beta)
    zr = (x * b).astype(dtype)  # the kernels' beta x
    ctx = mpmath.MPContext()
    ctx.dps = 40
    for xi, zi, yi in zip(x, zr, y):
        want = ctx.log1p(ctx.exp(ctx.mpf(float(zi)))) / ctx.mpf(float(b))
        if abs(want) < tiny:
            assert yi == 0 and np.signbit(yi) == (beta < 0), (xi, yi, want)
            continue
        ulp = float(np.spacing(dtype(abs(float(want)))))
        err = float(abs(ctx.mpf(float(yi)) - want)) / ulp
        assert err <= 3, f"x={xi!r}: got {yi!r}, want {want} ({err:.2f} ulp)"
