"""softmax/log_softmax kernels of the Cython backend: the row maximum in lanes, sums in order.

The C kernels find a row's maximum in eight vectorized lanes and add its sums
element by element in double (the order of the Numba kernels, which these
bits must match).  Rows of every length up to a few lane widths put the
maximum, and each special value, in every position.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastact
from tests.conftest import BACKENDS

pytestmark = pytest.mark.skipif("cython" not in BACKENDS, reason="the Cython backend is not built")

LENGTHS = list(range(1, 27)) + [255, 256, 257, 1000]


def _rows(n: int, dtype) -> np.ndarray:
    """One row per position p: -1000 everywhere but 1000 at p (exp(2000) overflows)."""
    x = np.full((n, n), -1000.0, dtype)
    x[np.arange(n), np.arange(n)] = 1000.0
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", LENGTHS)
def test_max_in_every_position(dtype, n):
    x = _rows(n, dtype)
    with fastact.config(backend="cython", num_threads=1):
        y = fastact.softmax(x)
        ly = fastact.log_softmax(x)
    np.testing.assert_array_equal(y, np.eye(n, dtype=dtype))
    assert (ly[np.arange(n), np.arange(n)] == 0).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 15, 16, 17, 33])
@pytest.mark.parametrize("special", [np.nan, np.inf, -np.inf])
def test_special_values_in_every_position(dtype, n, special):
    x = np.tile(np.linspace(-2, 2, n, dtype=dtype), (n, 1))
    x[np.arange(n), np.arange(n)] = special
    with fastact.config(backend="cython", num_threads=1):
        y = fastact.softmax(x)
    if np.isnan(special) or special > 0 or n == 1:
        assert np.isnan(y).all()  # NaN or +inf (inf - inf), or a row of -inf only
    else:
        assert (y[np.arange(n), np.arange(n)] == 0).all()
        np.testing.assert_allclose(y.sum(axis=1), 1, rtol=1e-5)
    all_neg_inf = np.full((2, n), -np.inf, dtype)
    with fastact.config(backend="cython", num_threads=1):
        assert np.isnan(fastact.softmax(all_neg_inf)).all()


def _sequential(a: np.ndarray) -> float:
    total = 0.0
    for v in a.tolist():
        total += v
    return total


@pytest.mark.parametrize("n", [5, 8, 100, 257, 1000])
def test_row_sums_add_in_element_order(n):
    """g - exp(0) * d and 1 * (g - d): d is the row's sum of g, added in element order."""
    rng = np.random.default_rng(n)
    g = rng.normal(size=(3, n))
    with fastact.config(backend="cython", num_threads=1):
        lg = fastact.log_softmax_backward(g, np.zeros_like(g))
        sg = fastact.softmax_backward(g, np.ones_like(g))
    for r in range(3):
        d = _sequential(g[r])
        np.testing.assert_array_equal(lg[r], g[r] - d)
        np.testing.assert_array_equal(sg[r], g[r] - d)
    if n == 1000:
        # the data tells the orders apart
        assert _sequential(g[0]) != float(np.sum(g[0]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_in_place_gives_the_same_bits(dtype):
    x = np.random.default_rng(0).normal(0, 4, (37, 61)).astype(dtype)
    with fastact.config(backend="cython", num_threads=1):
        for fn in (fastact.softmax, fastact.log_softmax):
            want = fn(x)
            buf = x.copy()
            assert fn(buf, out=buf) is buf
            np.testing.assert_array_equal(buf.view(np.uint8), want.view(np.uint8))
