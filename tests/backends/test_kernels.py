"""Every entry of the table, on every backend, dtype and layout, against the reference."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import fastact
from tests.conftest import (
    COMPILED,
    PARALLEL_N,
    SPECIALS,
    Call,
    assert_close,
    example_params,
    nt_threshold,
    sample,
    special_positions,
)

LAYOUTS = {
    "scalar-0d": lambda x: x[0].reshape(()),
    "tiny": lambda x: x[:3],
    "tail-67": lambda x: x[:67],
    "c-2d": lambda x: x[: 37 * 29].reshape(37, 29),
    "f-2d": lambda x: x[: 37 * 29].reshape(29, 37).T,
    "strided": lambda x: x[:2000:2],
    "c-4d": lambda x: x[: 2 * 3 * 5 * 7].reshape(2, 3, 5, 7),
    "parallel": lambda x: x[:PARALLEL_N],
    "parallel-2d": lambda x: x[: 1000 * 71].reshape(1000, 71),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_forward_backward_match_reference(entry, backend, dtype, layout):
    base = sample(entry, PARALLEL_N + 1000, dtype)
    x = LAYOUTS[layout](base)
    g = LAYOUTS[layout](sample(entry, PARALLEL_N + 1000, dtype, seed=1))
    x_before, g_before = x.copy(), g.copy()
    for params in example_params(entry):
        for training in (False, True) if entry.has_training_mode else (False,):
            call = Call(entry, params, training=training)
            with fastact.config(backend=backend, num_threads=2):
                y = call.forward(x)
                s = call.saved(x, y)
                gx = call.backward(g, s)
            what = f"{entry.name} {params} training={training} {backend} {layout}"
            assert np.asarray(y).dtype == dtype and np.shape(y) == x.shape
            cond = call.condition(x)
            atol = call.underflow(x, dtype)
            assert_close(
                y,
                call.ref_forward(x),
                dtype,
                what=what + " forward",
                cond=cond,
                scale=call.forward_scale(x),
                atol=atol,
            )
            assert_close(
                gx,
                call.ref_backward(g, s),
                dtype,
                what=what + " backward",
                scale=call.grad_scale(g),
                cond=cond,
                atol=None if atol is None else atol * np.abs(np.asarray(g, np.float64)),
            )
    # inputs are never modified
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(g, g_before)


def test_empty_arrays(entry, backend, dtype):
    call = Call(entry)
    x = np.empty((0, 3), dtype)
    with fastact.config(backend=backend):
        y = call.forward(x)
        gx = call.backward(x, x)
    assert y.shape == (0, 3) and y.dtype == dtype
    assert gx.shape == (0, 3)


@pytest.mark.parametrize("n", [67, PARALLEL_N])
def test_special_values_in_every_position(entry, backend, dtype, n):
    """NaN/inf/zero/tiny/huge in the vector body, the tail and at a thread-chunk edge."""
    x = sample(entry, n, dtype)
    g = sample(entry, n, dtype, seed=3)
    positions = special_positions(n)
    for k, p in enumerate(positions):
        x[p] = SPECIALS[k % len(SPECIALS)]
    call = Call(entry)
    with fastact.config(backend=backend, num_threads=2):
        y = call.forward(x)
        s = call.saved(x, y)
        gx = call.backward(g, s)
    with np.errstate(all="ignore"):
        cond = call.condition(x)
        cond = None if cond is None else np.broadcast_to(cond, x.shape)[positions]
        atol = call.underflow(x, dtype)
        atol = None if atol is None else atol[positions]
        assert_close(
            y[positions],
            call.ref_forward(x)[positions],
            dtype,
            what="forward",
            cond=cond,
            atol=atol,
        )
        ref_g = call.ref_backward(g, s)
        scale = call.grad_scale(g)
        scale = None if scale is None else np.broadcast_to(scale, g.shape)[positions]
        gatol = None if atol is None else atol * np.abs(g[positions].astype(np.float64))
        assert_close(
            gx[positions],
            ref_g[positions],
            dtype,
            what="backward",
            scale=scale,
            cond=cond,
            atol=gatol,
        )
    # NaN in gives NaN out, forward and backward
    nan_at = [p for k, p in enumerate(positions) if np.isnan(SPECIALS[k % len(SPECIALS)])]
    assert np.isnan(y[nan_at]).all()
    assert np.isnan(gx[nan_at]).all()
    # and the same value at every position: vector body, tail and chunk edge agree
    if not entry.has_training_mode and not entry.channel_param:
        for k in range(len(SPECIALS)):
            same = [q for j, q in enumerate(positions) if j % len(SPECIALS) == k]
            np.testing.assert_array_equal(y[same], y[same[0]])


def test_threads_give_identical_bits(entry, backend, dtype):
    x = sample(entry, PARALLEL_N, dtype).reshape(-1, 1)
    g = sample(entry, PARALLEL_N, dtype, seed=5).reshape(-1, 1)
    results = []
    for n in (1, 2):
        call = Call(entry, training=entry.has_training_mode)
        with fastact.config(backend=backend, num_threads=n):
            y = call.forward(x)
            s = call.saved(x, y)
            if entry.channel_param:
                gx, gw = call.backward_full(g, s)
                results.append((y, gx, gw))
            else:
                results.append((y, call.backward(g, s)))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("where", ["out", "inplace"])
def test_out_is_written_and_returned(entry, backend, dtype, where):
    x = sample(entry, 1000, dtype)
    call = Call(entry)
    with fastact.config(backend=backend):
        want = call.forward(x)
        buf = x.copy() if where == "inplace" else np.empty_like(x)
        got = call.forward(buf if where == "inplace" else x, out=buf)
        assert got is buf
        np.testing.assert_array_equal(buf, want)
        s = call.saved(x, want)
        gwant = call.backward(x, s)
        gbuf = x.copy() if where == "inplace" else np.empty_like(x)
        gin = gbuf if where == "inplace" else x
        call.backward(gin, s.copy(), out=gbuf)
        np.testing.assert_array_equal(gbuf, gwant)


def test_strided_out(entry, backend, dtype):
    x = sample(entry, 400, dtype).reshape(20, 20)
    call = Call(entry)
    out = np.zeros((20, 40), dtype)[:, ::2]
    with fastact.config(backend=backend):
        got = call.forward(x, out=out)
        want = call.forward(x)
    assert got is out
    np.testing.assert_array_equal(out, want)


def test_partially_overlapping_out(entry, backend, dtype):
    """out overlapping the input at an offset gives the right answer, not garbage."""
    buf = sample(entry, 1001, dtype)
    x = buf[:1000]
    call = Call(entry)
    with fastact.config(backend=backend):
        want = call.forward(x.copy())
        call.forward(x, out=buf[1:])
    np.testing.assert_array_equal(buf[1:], want)


def test_float64_from_integers(entry, backend):
    call = Call(entry)
    with fastact.config(backend=backend):
        y = call.forward(np.arange(-3, 4))
    assert y.dtype == np.float64
    x = np.arange(-3, 4)
    assert_close(y, call.ref_forward(x), np.float64, cond=call.condition(x))


def test_lists_and_scalars(entry):
    call = Call(entry)
    if entry.channel_param:
        y = fastact.prelu([-1.0, 2.0], 0.5)
        np.testing.assert_array_equal(y, [-0.5, 2.0])
        return
    y = call.forward([-1.0, 0.5, 2.0])
    assert isinstance(y, np.ndarray) and y.dtype == np.float64
    s = call.forward(0.5)
    assert np.ndim(s) == 0 and not isinstance(s, np.ndarray)


# Two threads' chunks of at least 1 MiB of float32: the kernels' blocked main loop
# (prefetching in the compute-bound ones: fa_prefetching in fa_intrinsics.h); pieces of
# PIECE elements run in one block.
LARGE_N = 2 * (1 << 20) // 4 + 4099
PIECE = 20_011


@pytest.fixture(params=["cached", "non-temporal"])
def stores(request, backend):
    """How the C kernels store the large calls' outputs: through the cache as usual
    (LARGE_N is below the threshold), or all by non-temporal stores (threshold 0:
    fa_nt_stores in fa_intrinsics.h), the pieces of the reference staying cached."""
    if request.param == "non-temporal":
        if backend != "cython":
            pytest.skip("non-temporal stores are the C kernels'")
        with nt_threshold(0) as available:
            if not available:
                pytest.skip("this build has no non-temporal stores (not x86-64)")
    return request.param


@pytest.mark.parametrize("backend", COMPILED)
def test_large_arrays_in_place_match_pieces(elementwise_entry, backend, dtype, stores):
    """Forward and backward on large arrays, out of place and in place (out = x,
    out = g), give the bits of the same calls on small pieces, with special values
    at every offset within a block, whether large outputs are stored through the
    cache or not; an output 64-byte aligned and one that is not (the head)."""
    entry = elementwise_entry
    x = sample(entry, LARGE_N, dtype)
    g = sample(entry, LARGE_N, dtype, seed=9)
    at = np.arange(3, LARGE_N, 997)
    x[at] = np.resize(np.asarray(SPECIALS, dtype), at.size)
    call = Call(entry)
    with fastact.config(backend=backend, num_threads=1):
        call.weight(x)
        y_ref = np.concatenate([call.forward(x[k : k + PIECE]) for k in range(0, LARGE_N, PIECE)])
        s = call.saved(x, y_ref)
        g_ref = np.concatenate(
            [call.backward(g[k : k + PIECE], s[k : k + PIECE]) for k in range(0, LARGE_N, PIECE)]
        )
    for threads in (1, 2):
        with (
            fastact.config(backend=backend, num_threads=threads),
            nt_threshold(0) if stores == "non-temporal" else contextlib.nullcontext(),
        ):
            what = f"{entry.name} {backend} {threads} thread(s) {stores}"
            np.testing.assert_array_equal(call.forward(x), y_ref, err_msg=what + " forward")
            shifted = np.empty(LARGE_N + 3, dtype)[3:]
            assert call.forward(x, out=shifted) is shifted
            np.testing.assert_array_equal(shifted, y_ref, err_msg=what + " forward, out shifted")
            y = x.copy()
            assert call.forward(y, out=y) is y
            np.testing.assert_array_equal(y, y_ref, err_msg=what + " forward in place")
            np.testing.assert_array_equal(call.backward(g, s), g_ref, err_msg=what + " backward")
            gx = g.copy()
            call.backward(gx, s, out=gx)
            np.testing.assert_array_equal(gx, g_ref, err_msg=what + " backward out = g")
            sx = s.copy()
            call.backward(g, sx, out=sx)
            np.testing.assert_array_equal(sx, g_ref, err_msg=what + " backward out = saved")


def _at_page_offset(size: int, dtype, offset: int) -> np.ndarray:
    """An empty array of ``size`` elements starting ``offset`` bytes into a page."""
    raw = np.empty(size * np.dtype(dtype).itemsize + 2 * 4096, np.uint8)
    start = -raw.ctypes.data % 4096 + offset
    return raw[start : start + size * np.dtype(dtype).itemsize].view(dtype)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("lead", [0, 4, 48, 64, 248, 256, 264, -64, -256])
def test_outputs_near_their_inputs_modulo_a_page_get_the_same_bits(
    elementwise_entry, backend, dtype, lead
):
    """Out of place with ``out`` starting ``lead`` bytes after the inputs modulo a
    page, where the C kernels of memory-bound entries run backwards
    (fa_backwards in fa_intrinsics.h): forward and backward give the bits of the
    same calls on pieces of 5 elements, with special values at the head, in the
    vector body and at the last elements."""
    entry = elementwise_entry
    n = 4099
    x, g = _at_page_offset(n, dtype, 16), _at_page_offset(n, dtype, 16)
    x[:] = sample(entry, n, dtype)
    g[:] = sample(entry, n, dtype, seed=9)
    at = np.r_[0, 1, 17, 130:n:97, n - 1]
    x[at] = np.resize(np.asarray(SPECIALS, dtype), at.size)
    call = Call(entry)
    with fastact.config(backend=backend, num_threads=1):
        call.weight(x)
        y_ref = np.concatenate([call.forward(x[k : k + 5]) for k in range(0, n, 5)])
        s = call.saved(x, y_ref)
        s_at = _at_page_offset(n, dtype, 16)
        s_at[:] = s
        g_ref = np.concatenate([call.backward(g[k : k + 5], s[k : k + 5]) for k in range(0, n, 5)])
        out = _at_page_offset(n, dtype, (16 + lead) % 4096)
        what = f"{entry.name} {backend} out {lead} bytes after"
        assert call.forward(x, out=out) is out
        np.testing.assert_array_equal(out, y_ref, err_msg=what + " forward")
        assert call.backward(g, s_at, out=out) is out
        np.testing.assert_array_equal(out, g_ref, err_msg=what + " backward")


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("lead", [0, 4, 16, 64, 256, -64])
@pytest.mark.parametrize("shape", [(5, 1301), (40, 100), (3, 7), (37, 1025), (20, 2049)])
def test_a_weight_per_element_near_its_output_modulo_a_page(backend, dtype, lead, shape):
    """prelu on (N, C) input, a weight per element of a row, with ``out`` starting
    ``lead`` bytes after the inputs modulo a page (the C kernels then run each row
    backwards, the weights converted block by block): the bits of the same call into
    an array elsewhere, rows longer than a block and shorter, rows the forward runs in
    column blocks (longer than 1024: a partial block, a partial group of rows), special
    values at the ends of rows and blocks."""
    n = shape[0] * shape[1]
    rng = np.random.default_rng(n)
    x, g = _at_page_offset(n, dtype, 16), _at_page_offset(n, dtype, 2064)
    x[:] = rng.normal(size=n)
    g[:] = rng.normal(size=n)
    at = np.r_[0, 1, 511, 512, 513, 1023, 1024, 1025, 1300, 1301, 2048, 2049, n - 2, n - 1]
    at = at[at < n]
    x[at] = np.resize(np.asarray(SPECIALS, dtype), at.size)
    x, g = x.reshape(shape), g.reshape(shape)
    w = rng.uniform(-1, 1, shape[1]).astype(dtype)
    with fastact.config(backend=backend, num_threads=1), np.errstate(all="ignore"):
        y_ref = fastact.prelu(x, w)
        g_ref, gw_ref = fastact.prelu_backward(g, x, w)
        out = _at_page_offset(n, dtype, (16 + lead) % 4096).reshape(shape)
        what = f"{backend} {shape} out {lead} bytes after"
        assert fastact.prelu(x, w, out=out) is out
        np.testing.assert_array_equal(out, y_ref, err_msg=what + " forward")
        gx, gw = fastact.prelu_backward(g, x, w, out=out)
        assert gx is out
        np.testing.assert_array_equal(out, g_ref, err_msg=what + " backward")
        np.testing.assert_array_equal(gw, gw_ref, err_msg=what + " weight gradient")
    want = np.where(x > 0, x, x * w)
    np.testing.assert_array_equal(y_ref, want, err_msg=f"{backend} {shape} against NumPy")
    if backend == "cython":  # the OpenMP driver's units on two threads
        from fastact._backends.cython import _kernels

        y2 = np.empty_like(x)
        kid = [e.name for e in fastact.table.TABLE].index("prelu")
        w64 = w.astype(np.float64)
        with np.errstate(all="ignore"):
            _kernels.channel_forward(kid, x.reshape(-1), y2.reshape(-1), w64, *shape, 1, 2)
        np.testing.assert_array_equal(y2, want, err_msg=f"{shape} two threads")
