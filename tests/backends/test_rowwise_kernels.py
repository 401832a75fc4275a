"""softmax/log_softmax kernels: the row maximum in lanes, sums in 8 or BACKWARD_LANES lanes.

The kernels find a row's maximum in independent lanes (C: four blocks of
eight vectorized lanes; Numba: eight chains), exact in any order; both compiled
backends add a forward's row sums in double in eight lanes (element ``k`` into
lane ``k % 8``, in increasing ``k``, from 0.0), combined as ``((l0 + l1) + (l2 +
l3)) + ((l4 + l5) + (l6 + l7))``: the order of prelu's weight gradient, the
same bits in both; a backward's in BACKWARD_LANES lanes, each set of eight
combined so and the sets' totals added in order.  Rows of every length up to a
few lane widths put the maximum, and each special value, in every position.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastact
from fastact._codegen.dialect import BACKWARD_LANES
from tests.conftest import BACKENDS

needs_cython = pytest.mark.skipif(
    "cython" not in BACKENDS, reason="the Cython backend is not built"
)
COMPILED = [b for b in ("cython", "numba") if b in BACKENDS]

# 31-65: around the C maximum's blocks of 32 (and Numba's chains of 8)
LENGTHS = list(range(1, 27)) + [31, 32, 33, 39, 40, 41, 63, 64, 65, 255, 256, 257, 1000]


def _rows(n: int, dtype) -> np.ndarray:
    """One row per position p: -1000 everywhere but 1000 at p (exp(2000) overflows)."""
    x = np.full((n, n), -1000.0, dtype)
    x[np.arange(n), np.arange(n)] = 1000.0
    return x


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", LENGTHS)
def test_max_in_every_position(backend, dtype, n):
    x = _rows(n, dtype)
    with fastact.config(backend=backend, num_threads=1):
        y = fastact.softmax(x)
        ly = fastact.log_softmax(x)
    np.testing.assert_array_equal(y, np.eye(n, dtype=dtype))
    assert (ly[np.arange(n), np.arange(n)] == 0).all()


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 40, 63, 64, 65])
@pytest.mark.parametrize("special", [np.nan, np.inf, -np.inf])
def test_special_values_in_every_position(backend, dtype, n, special):
    x = np.tile(np.linspace(-2, 2, n, dtype=dtype), (n, 1))
    x[np.arange(n), np.arange(n)] = special
    with fastact.config(backend=backend, num_threads=1):
        y = fastact.softmax(x)
    if np.isnan(special) or special > 0 or n == 1:
        assert np.isnan(y).all()  # NaN or +inf (inf - inf), or a row of -inf only
    else:
        assert (y[np.arange(n), np.arange(n)] == 0).all()
        np.testing.assert_allclose(y.sum(axis=1), 1, rtol=1e-5)
    all_neg_inf = np.full((2, n), -np.inf, dtype)
    with fastact.config(backend=backend, num_threads=1):
        assert np.isnan(fastact.softmax(all_neg_inf)).all()


def _sequential(a: np.ndarray) -> float:
    """The old order: element by element, in double."""
    total = 0.0
    for v in a.astype(np.float64).tolist():
        total += v
    return total


def _eight_sums(a: np.ndarray) -> np.float64:
    """The row-sum order, emulated in NumPy: element k into lane k % 8, then pairwise.

    The row, as doubles, is padded with -0.0 (``a + -0.0`` is ``a``, bit for
    bit) to whole groups of eight; the lanes start at +0.0 and add one group
    at a time, each lane its element in order.
    """
    t = a.astype(np.float64)
    pad = -len(t) % 8
    groups = np.concatenate([t, np.full(pad, -0.0)]).reshape(-1, 8)
    lane = np.zeros(8)
    for row in groups:
        lane = lane + row  # eight IEEE additions, lane j + element 8i + j
    a0, a1, a2, a3, a4, a5, a6, a7 = lane
    return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))


def _backward_sums(a: np.ndarray) -> np.float64:
    """A backward's row-sum order: element k into lane k % BACKWARD_LANES, each set of
    eight lanes combined as in :func:`_eight_sums`, then the sets' totals in order."""
    w = BACKWARD_LANES
    t = a.astype(np.float64)
    pad = -len(t) % w
    groups = np.concatenate([t, np.full(pad, -0.0)]).reshape(-1, w)
    lane = np.zeros(w)
    for row in groups:
        lane = lane + row
    tot = [
        ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))
        for a in lane.reshape(-1, 8)
    ]
    total = tot[0]
    for t8 in tot[1:]:
        total = total + t8
    return total


def _wide(rng, shape, dtype) -> np.ndarray:
    """Values over many binades, so that the order of the additions shows in the bits."""
    return (rng.normal(size=shape) * np.exp(rng.uniform(-12, 12, shape))).astype(dtype)


SUM_LENGTHS = [*range(1, 42), 127, 128, 129, 255, 256, 257, 1000, 4099]


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", SUM_LENGTHS)
def test_backward_row_sums_add_in_backward_lanes(backend, dtype, n):
    """log_softmax at y = 0 is g - exp(0) * d, softmax at y = 1 is 1 * (g - d): d's bits."""
    rng = np.random.default_rng(n)
    g = _wide(rng, (3, n), dtype)
    with fastact.config(backend=backend, num_threads=1):
        lg = fastact.log_softmax_backward(g, np.zeros_like(g))
        sg = fastact.softmax_backward(g, np.ones_like(g))
    for r in range(3):
        d = dtype(_backward_sums(g[r]))
        np.testing.assert_array_equal(lg[r], g[r] - d)
        np.testing.assert_array_equal(sg[r], g[r] - d)
    if n in (1000, 4099) and dtype == np.float64:  # the data tells the orders apart
        sums = [(_sequential(v), _backward_sums(v), _eight_sums(v)) for v in g]
        assert any(s != b for s, b, _ in sums) and any(e != b for _, b, e in sums)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_sum_order_decides_the_result(backend, dtype):
    """1e20, W - 1 ones, -1e20, 0.5 (W = BACKWARD_LANES): W - 0.5 in W lanes (1e20 and
    -1e20 share lane 0), 0.5 in order."""
    w = BACKWARD_LANES
    g = np.array([[1e20] + [1] * (w - 1) + [-1e20, 0.5]], dtype)
    assert _sequential(g[0]) == 0.5 and _backward_sums(g[0]) == w - 0.5
    with fastact.config(backend=backend, num_threads=1):
        lg = fastact.log_softmax_backward(g, np.zeros_like(g))
        sg = fastact.softmax_backward(g, np.ones_like(g))
    np.testing.assert_array_equal(lg, g - dtype(w - 0.5))
    np.testing.assert_array_equal(sg, g - dtype(w - 0.5))


def _exp_bits(backend, v: np.ndarray) -> np.ndarray:
    """The kernels' own exp(v): log_softmax's backward at g = (1, 0, ...) is -exp(y) past 0."""
    g = np.zeros((len(v), 2), v.dtype)
    g[:, 0] = 1
    y = np.stack([np.zeros_like(v), v], axis=1)
    with fastact.config(backend=backend, num_threads=1):
        return -fastact.log_softmax_backward(g, y)[:, 1]


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", SUM_LENGTHS)
def test_forward_row_sums_add_in_eight_lanes(backend, dtype, n):
    """softmax = e / T(s) (float32: e * (1 / T(s))), log_softmax = (x - m) - T(log(s)),
    s the eight-lane sum of e."""
    rng = np.random.default_rng(1000 + n)
    x = rng.uniform(-30, 0, (2, n)).astype(dtype)
    with fastact.config(backend=backend, num_threads=1):
        y = fastact.softmax(x)
        ly = fastact.log_softmax(x)
    for r in range(2):
        z = x[r] - x[r].max()
        e = _exp_bits(backend, z)
        s = _eight_sums(e)
        want = e * (dtype(1) / dtype(s)) if dtype == np.float32 else e / dtype(s)
        np.testing.assert_array_equal(y[r], want)
        np.testing.assert_array_equal(ly[r], z - dtype(math.log(s)))
    if n == 4099 and dtype == np.float64:  # the data tells the orders apart
        assert _sequential(e) != s


@pytest.mark.skipif(COMPILED != ["cython", "numba"], reason="needs both compiled backends")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backends_agree_bit_for_bit(dtype):
    """Forward and backward, rows of every tail length and across the sums' blocks."""
    rng = np.random.default_rng(7)
    for n in [*range(1, 20), 127, 128, 129, 255, 256, 257, 1000, 4099]:
        x = rng.normal(0, 4, (5, n)).astype(dtype)
        x[1, n // 2] = np.inf
        x[2, n // 3] = -np.inf
        g = _wide(rng, (5, n), dtype)
        got = {}
        for backend in COMPILED:
            with fastact.config(backend=backend, num_threads=1):
                y, ly = fastact.softmax(x), fastact.log_softmax(x)
                got[backend] = (
                    y,
                    ly,
                    fastact.softmax_backward(g, y),
                    fastact.log_softmax_backward(g, ly),
                )
        for a, b in zip(got["cython"], got["numba"]):
            assert a.tobytes() == b.tobytes(), n


@needs_cython
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_in_place_gives_the_same_bits(dtype):
    x = np.random.default_rng(0).normal(0, 4, (37, 61)).astype(dtype)
    with fastact.config(backend="cython", num_threads=1):
        for fn in (fastact.softmax, fastact.log_softmax):
            want = fn(x)
            buf = x.copy()
            assert fn(buf, out=buf) is buf
            np.testing.assert_array_equal(buf.view(np.uint8), want.view(np.uint8))
