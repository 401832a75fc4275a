"""fastact.bench.mlp: the three ways of training the benchmark's MLP compute the same thing."""

from __future__ import annotations

import numpy as np
import pytest

from fastact.bench import mlp

SMALL = {"features": 8, "hidden": (16, 12), "outputs": 3, "batch": 10}


@pytest.mark.parametrize("activation", ["relu", "gelu", "silu", "elu", "leaky_relu"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ways_train_alike(activation, dtype):
    p = mlp.Problem(activation, dtype=dtype, lr=0.05, **SMALL)
    ways = ["unfused", "linear"]
    try:
        import torch  # noqa: F401

        ways.append("torch")
    except ImportError:
        pass
    losses = {w: [s() for _ in range(30)] for w, s in ((w, mlp.make(w, p)) for w in ways)}
    ref = np.array(losses["linear"])
    assert ref[-1] < 0.9 * ref[0]  # it trains
    tol = 1e-4 if dtype == "float32" else 1e-10
    for w, v in losses.items():
        np.testing.assert_allclose(v, ref, rtol=tol, err_msg=w)


def test_gemm_step_and_blas_info():
    p = mlp.Problem("relu", **SMALL)
    mlp.gemm_step(p)()
    assert "numpy" in mlp.blas_info()
    with pytest.raises(ValueError, match="way"):
        mlp.make("jax", p)
