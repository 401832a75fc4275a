"""softmax and log_softmax: the rowwise entries."""

from __future__ import annotations

import numpy as np
import pytest

import fastact
from tests.conftest import BACKENDS, assert_close

ROWWISE = [n for n in fastact.activations() if fastact.activation(n).rowwise]


@pytest.fixture(params=BACKENDS)
def backend(request):
    with fastact.config(backend=request.param, num_threads=2):
        yield request.param


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_rows_sum_to_one_along_any_axis(backend, axis, dtype):
    x = np.random.default_rng(0).normal(0, 5, (7, 9, 11)).astype(dtype)
    y = fastact.softmax(x, axis=axis)
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_allclose(y.sum(axis=axis), 1, rtol=4 * np.finfo(dtype).eps * 11)
    assert (y >= 0).all() and (y <= 1).all()
    np.testing.assert_allclose(
        fastact.log_softmax(x, axis=axis), np.log(y.astype(np.float64)), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("name", ROWWISE)
def test_invariant_to_a_constant_per_row(backend, name):
    fn = getattr(fastact, name)
    x = np.random.default_rng(1).normal(size=(50, 30))
    shift = np.random.default_rng(2).normal(0, 100, (50, 1))
    assert_close(fn(x + shift), fn(x), np.float64, rtol_eps=2000)


@pytest.mark.parametrize("name", ROWWISE)
def test_huge_and_minus_inf_logits(backend, name):
    fn = getattr(fastact, name)
    x = np.array([[1e308, 1e308, -np.inf], [-1e308, 0.0, -np.inf], [-np.inf, -np.inf, 5.0]])
    with np.errstate(all="raise"):
        y = fn(x)
    p = np.exp(y) if name == "log_softmax" else y
    np.testing.assert_allclose(p, [[0.5, 0.5, 0], [0, 1, 0], [0, 0, 1]], atol=1e-300)
    # a NaN anywhere in a row makes the row NaN; other rows are untouched
    x = np.array([[1.0, np.nan, 2.0], [1.0, 2.0, 3.0]])
    y = fn(x)
    assert np.isnan(y[0]).all() and np.isfinite(y[1]).all()


@pytest.mark.parametrize("name", ROWWISE)
@pytest.mark.parametrize("rows", [1, 3, 20_000])
def test_match_reference_and_threads(backend, name, rows):
    from fastact import reference

    fn = getattr(fastact, name)
    bwd = getattr(fastact, f"{name}_backward")
    rng = np.random.default_rng(4)
    x = rng.normal(0, 3, (rows, 17)).astype(np.float32)
    g = rng.normal(size=x.shape).astype(np.float32)
    y = fn(x)
    assert_close(y, reference.forward(name, x), np.float32, rtol_eps=16)
    gx = bwd(g, y)
    want = reference.backward(name, g, y)
    assert_close(gx, want, np.float32, rtol_eps=16, scale=np.abs(g).sum(axis=1, keepdims=True))
    with fastact.config(num_threads=1):
        np.testing.assert_array_equal(fn(x), y)
        np.testing.assert_array_equal(bwd(g, y), gx)


def test_in_place_and_axis_errors():
    x = np.random.default_rng(5).normal(size=(4, 6))
    want = fastact.softmax(x, axis=0)
    assert fastact.softmax(x, axis=0, out=x) is x
    np.testing.assert_array_equal(x, want)
    with pytest.raises(ValueError, match="axis 2 is out of bounds"):
        fastact.softmax(x, axis=2)
    with pytest.raises(TypeError, match="axis must be an integer"):
        fastact.softmax(x, axis=1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_softmax_backward_flush_is_below_the_documented_bound(backend, dtype):
    """exp(y) below the smallest normal number counts as 0 in the compiled backward: an
    absolute error of at most tiny * |sum(grad_output)| per element, far below an ulp of the
    row's scale sum(|grad_output|)."""
    from fastact import reference

    tiny = float(np.finfo(dtype).tiny)
    big = float(np.finfo(dtype).max) / 8
    lo = np.log(tiny)
    y = np.array([[0.0, lo - 1, lo - 12, lo + 1], [-1e-3, lo - 3, lo - 30, lo + 0.5]], dtype)
    g = np.array([[big, 0.0, 0.0, 0.0], [big, big, 0.0, -big]], dtype)
    gx = fastact.log_softmax_backward(g, y).astype(np.float64)
    want = reference.backward("log_softmax", g, y)
    d = np.abs(g.astype(np.float64).sum(axis=1, keepdims=True))
    scale = np.abs(g.astype(np.float64)).sum(axis=1, keepdims=True)
    err = np.abs(gx - want)
    eps = float(np.finfo(dtype).eps)
    flushed = y < lo
    bound = tiny * d + 4 * eps * np.abs(want) + tiny
    assert (err[flushed] <= np.broadcast_to(bound, y.shape)[flushed]).all(), err
    assert (err <= 4 * eps * scale).all(), err
