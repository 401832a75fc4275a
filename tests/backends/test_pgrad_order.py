"""prelu's weight gradient: the summation order of the Cython kernels, bit for bit.

Each kernel call (one unit of the driver: a row, or a segment of a long row)
sums its terms into eight double partial sums, element ``k`` into ``k % 8``,
and adds ``((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7))`` to its slot.
The units are grouped in at most 64 blocks whose partial sums NumPy reduces.
This emulates that in NumPy and compares bits (float64, where a different
order shows in the result).
"""

from __future__ import annotations

import numpy as np
import pytest

import fastact
from fastact._codegen.dialect import CHANNEL_SEGMENT as SEGMENT
from fastact._codegen.dialect import PGRAD_BLOCKS
from tests.conftest import BACKENDS

pytestmark = pytest.mark.skipif("cython" not in BACKENDS, reason="the Cython backend is not built")


def _terms(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    """prelu's param_grad per element, in the array's type, as doubles."""
    return np.where(x > 0, x.dtype.type(0), x * g).astype(np.float64)


def eight_sums(t: np.ndarray) -> float:
    part = np.zeros(8)
    m = len(t) // 8 * 8
    for row in t[:m].reshape(-1, 8):
        part = part + row
    tail = t[m:]
    part[: len(tail)] = part[: len(tail)] + tail
    p = [float(v) for v in part]
    return ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]))


def sequential(t: np.ndarray) -> float:
    total = 0.0
    for v in t.tolist():
        total += v
    return total


def emulate(g: np.ndarray, x: np.ndarray, channels: int, dtype=None) -> np.ndarray:
    """grad_weight of (N, C, L) input (L <= SEGMENT) or of one channel (n <= SEGMENT),
    rounded once to ``dtype`` (the arrays' by default)."""
    # one weight: the whole array is one row; else rows of L along axis 2...
    rows = x.reshape(1, -1) if channels == 1 else x.reshape(x.shape[0] * channels, -1)
    grows = g.reshape(rows.shape)
    units = rows.shape[0]
    nblocks = min(units, PGRAD_BLOCKS)
    partial = np.zeros((nblocks, channels))
    for b in range(nblocks):
        for u in range(b * units // nblocks, (b + 1) * units // nblocks):
            partial[b, u % channels] += eight_sums(_terms(grows[u], rows[u]))
    gw = np.zeros(channels)
    for row in partial:  # the blocks in order, from 0
        gw = gw + row
    return gw.astype(x.dtype if dtype is None else dtype)


@pytest.mark.parametrize("n", [1, 7, 8, 9, 15, 1000, 4099, SEGMENT])
def test_one_channel_sums_in_eight_partial_sums(n):
    rng = np.random.default_rng(n)
    x = rng.normal(size=n)
    g = rng.normal(size=n)
    with fastact.config(backend="cython", num_threads=1):
        _, gw = fastact.prelu_backward(g, x, np.array([0.25]))
    want = eight_sums(_terms(g, x))
    assert gw[0] == want, (gw[0], want)
    if n == 1000:
        # the data tells the orders apart: the old sequential sum fails here
        assert sequential(_terms(g, x)) != want


@pytest.mark.parametrize("threads", [1, 2])
def test_one_channel_over_many_blocks_adds_them_in_order(threads):
    """A weight over 70 segments: 64 blocks, their sums added in block order."""
    n = 70 * SEGMENT + 5
    rng = np.random.default_rng(7)
    x = rng.normal(size=n)
    g = rng.normal(size=n)
    with fastact.config(backend="cython", num_threads=threads):
        _, gw = fastact.prelu_backward(g, x, np.array([0.25]))
    units = -(-n // SEGMENT)
    nblocks = min(units, PGRAD_BLOCKS)
    total = 0.0
    for b in range(nblocks):
        seg = slice(b * units // nblocks * SEGMENT, (b + 1) * units // nblocks * SEGMENT)
        parts = [
            eight_sums(_terms(g[k : k + SEGMENT], x[k : k + SEGMENT]))
            for k in range(seg.start, min(seg.stop, n), SEGMENT)
        ]
        total = total + sum(parts[1:], parts[0]) if len(parts) > 1 else total + parts[0]
    assert gw[0] == total, (gw[0], total)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 4, 37), (20, 5, 1001), (70, 1, 8), (1, 3, 16384)])
@pytest.mark.parametrize("threads", [1, 2])
def test_channels_sum_in_eight_partial_sums(dtype, shape, threads):
    rng = np.random.default_rng(sum(shape))
    x = rng.normal(size=shape).astype(dtype)
    g = rng.normal(size=shape).astype(dtype)
    w = np.full(shape[1], 0.25, dtype)
    with fastact.config(backend="cython", num_threads=threads):
        _, gw = fastact.prelu_backward(g, x, w)
    np.testing.assert_array_equal(gw, emulate(g, x, shape[1]))


def test_eight_partial_sums_of_special_values():
    x = np.array([-np.inf, -1.0, -0.0, 0.0, np.nan, -2.0, 3.0, -1e308, -1e308, -1.0], np.float64)
    g = np.array([1.0, 2.0, 5.0, 1.0, 1.0, -1.0, 1.0, 1.0, 1.0, 0.5])
    with fastact.config(backend="cython", num_threads=1):
        _, gw = fastact.prelu_backward(g, x, np.array([0.1]))
    np.testing.assert_array_equal(gw, [eight_sums(_terms(g, x))])
    # -inf and NaN make it NaN; finite overflow alone gives -inf in both orders
    x2 = x.copy()
    x2[[0, 4]] = -1.0
    with fastact.config(backend="cython", num_threads=1):
        _, gw2 = fastact.prelu_backward(g, x2, np.array([0.1]))
    assert gw2[0] == eight_sums(_terms(g, x2)) == -np.inf
