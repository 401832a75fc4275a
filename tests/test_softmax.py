"""softmax and log_softmax: the rowwise entries."""

from __future__ import annotations

import numpy as np
import pytest

import fastact
from fastact._codegen.dialect import BACKWARD_LANES, ROW_SPLIT
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


# --- long rows: segments of ROW_SPLIT elements, shared among threads ----------------


def _pairwise8(p) -> float:
    p = [float(v) for v in p]
    return ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]))


def _segment_sum(t: np.ndarray, width: int) -> float:
    """A row sum as the kernels take it: per segment of ROW_SPLIT, ``width`` lanes (element
    k into lane k % width), each eight combined pairwise and those totals added, then the
    segments in order."""
    total = None
    for s0 in range(0, len(t), ROW_SPLIT):
        seg = t[s0 : s0 + ROW_SPLIT]
        m = len(seg) // width * width
        part = np.zeros(width)
        for row in seg[:m].reshape(-1, width):  # sequential per lane, as the kernels add
            part = part + row
        part[: len(seg) - m] += seg[m:]
        sub = _pairwise8(part[:8])
        for b in range(8, width, 8):
            sub = sub + _pairwise8(part[b : b + 8])
        total = sub if total is None else total + sub
    return total


LONG_SHAPES = [(1, 3 * ROW_SPLIT + 5), (3, 2 * ROW_SPLIT + 17)]


def _long_case(shape, dtype, special=None, at=0):
    rng = np.random.default_rng(11)
    x = rng.normal(0, 3, shape).astype(dtype)
    g = rng.normal(size=shape).astype(dtype)
    if special is not None:
        x.reshape(-1)[at] = special
    return x, g


@pytest.mark.parametrize("name", ROWWISE)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("shape", LONG_SHAPES, ids=str)
def test_long_rows_same_bits_for_any_thread_count_and_backend(name, dtype, shape):
    """A row longer than a segment: forward and backward give the same bits on 1, 2 and 3
    threads and on every compiled backend, and agree with the reference."""
    from fastact import reference

    fn = getattr(fastact, name)
    bwd = getattr(fastact, f"{name}_backward")
    x, g = _long_case(shape, dtype)
    got = []
    for backend in [b for b in BACKENDS if b != "numpy"]:
        for threads in (1, 2, 3):
            with fastact.config(backend=backend, num_threads=threads):
                y = fn(x)
                got.append((backend, threads, y, bwd(g, y)))
    if not got:
        pytest.skip("no compiled backend")
    _, _, y0, gx0 = got[0]
    for backend, threads, y, gx in got[1:]:
        np.testing.assert_array_equal(y, y0, err_msg=f"{backend}, {threads} threads")
        np.testing.assert_array_equal(gx, gx0, err_msg=f"{backend}, {threads} threads")
    tol = 16 + shape[-1] ** 0.5 if name == "softmax" else 16
    scale = np.abs(g.astype(np.float64)).sum(axis=-1, keepdims=True)
    assert_close(
        y0,
        reference.forward(name, x),
        dtype,
        rtol_eps=tol,
        scale=None if name == "softmax" else shape[-1],
    )
    assert_close(gx0, reference.backward(name, g, y0), dtype, rtol_eps=tol, scale=scale)


@pytest.mark.skipif("cython" not in BACKENDS, reason="the Cython backend is not built")
@pytest.mark.parametrize("name", ROWWISE)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("special", [np.nan, np.inf, -np.inf, 0.0, 1e30, -1e30])
@pytest.mark.parametrize("at", [0, ROW_SPLIT - 1, ROW_SPLIT, 2 * ROW_SPLIT + 3, 3 * ROW_SPLIT + 4])
def test_long_row_driver_threads_with_special_values(name, dtype, special, at):
    """The Cython driver shares one long row among 1, 2 and 3 threads (segment by segment)
    with the same bits as the serial row kernel, a special value in any segment included."""
    from fastact._backends.cython import _kernels

    kid = fastact.activation(name).kernel_id
    x, g = _long_case((1, 3 * ROW_SPLIT + 5), dtype, special, at)
    n = x.size
    outs = []
    for threads in (1, 2, 3):
        y = np.empty_like(x)
        _kernels.rowwise(_kernels.FORWARD, kid, x, None, y, 1, n, threads)
        gx = np.empty_like(x)
        _kernels.rowwise(_kernels.BACKWARD, kid, g, y, gx, 1, n, threads)
        outs.append((y, gx))
    for y, gx in outs[1:]:
        np.testing.assert_array_equal(y, outs[0][0])
        np.testing.assert_array_equal(gx, outs[0][1])
    y = outs[0][0]
    if special != special or special == np.inf:
        assert np.isnan(y).all()
    else:
        assert not np.isnan(y).any()


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "numpy"])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("n", [1000, 3 * ROW_SPLIT + 13])
def test_backward_row_sums_in_lanes_and_segments_in_order(backend, threads, n):
    """float64 softmax backward: y * (g - d), d summed per segment in BACKWARD_LANES lanes
    (sets of eight, each pairwise) and then segment by segment (emulated here, bit for bit)."""
    rng = np.random.default_rng(5)
    y = rng.uniform(0, 1, (1, n))
    g = rng.normal(size=(1, n))
    d = _segment_sum((g * y)[0], BACKWARD_LANES)
    with fastact.config(backend=backend, num_threads=threads):
        got = fastact.softmax_backward(g, y)
    np.testing.assert_array_equal(got, y * (g - d))
