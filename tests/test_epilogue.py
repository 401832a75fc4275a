"""The bias epilogue: ``NAME(x, bias=b)`` and ``NAME_backward(g, saved, bias=b)``.

The fused call gives the bits of the unfused one (``NAME(x + b)`` in the
array's dtype) on every backend; the bias gradient agrees with the float64
reference and with finite differences, has the same bits for any thread
count and on both compiled backends, and bad input is refused before
anything is written.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import fastact
from fastact import reference
from fastact.table import TABLE
from tests.conftest import (
    BACKENDS,
    COMPILED,
    ELEMENTWISE,
    RTOL_EPS,
    Call,
    nt_threshold,
    sample,
)

PLAIN = [e for e in ELEMENTWISE if not e.channel_param]
SMOOTH = [e for e in PLAIN if not e.kinks and e.properties.differentiable == "everywhere"]
ROWWISE = [e for e in TABLE if e.rowwise]
# Above the tests' parallel threshold, not a multiple of the tile or of a vector,
# with several blocks of partial sums: (outer, C, inner) = (61, 37, 31) for axis 1.
SHAPE = (61, 37, 31)
AXES = [-1, 1]


def _along(b: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    shape = [1] * ndim
    shape[axis] = -1
    return b.reshape(shape)


def _kw(call: Call) -> dict:
    kw = {k: v for k, v in call.params.items() if k != call.entry.channel_param}
    if call.entry.has_training_mode:
        kw.update(training=call.training, seed=call.seed)
    return kw


def _data(entry, dtype, shape=SHAPE, axis=-1, seed=0):
    x = sample(entry, int(np.prod(shape)), dtype, seed).reshape(shape)
    rng = np.random.default_rng(seed + 1)
    b = rng.normal(0, 1, shape[axis]).astype(dtype)
    g = rng.normal(0, 1, shape).astype(dtype)
    return x, b, g


def _fused(call: Call, x, b, g, axis, **out):
    """(y, gi, gb) of the fused calls."""
    f, fb = call.fwd, call.bwd
    y = f(x, bias=b, bias_axis=axis, out=out.get("y"), **_kw(call))
    saved = x if call.entry.saves == "input" else y
    gi, gb = fb(g, saved, bias=b, bias_axis=axis, out=out.get("gi"), **_kw(call))
    return y, gi, gb


@pytest.mark.parametrize("entry", PLAIN, ids=lambda e: e.name)
@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_fused_is_unfused_and_close_to_reference(entry, axis, backend, dtype):
    x, b, g = _data(entry, dtype, axis=axis)
    call = Call(entry, training=entry.has_training_mode)
    z = x + _along(b, x.ndim, axis)
    with fastact.config(backend=backend):
        y, gi, gb = _fused(call, x, b, g, axis)
        y0 = call.fwd(z, **_kw(call))
        gi0 = call.bwd(g, z if entry.saves == "input" else y0, **_kw(call))
    assert y.dtype == gi.dtype == gb.dtype == dtype and gb.shape == b.shape
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(gi, gi0)
    # the bias gradient: the sum of the gradient's terms (at most 16 of them
    # added in the array's type before the sum goes on in double), rounded once
    others = tuple(k for k in range(x.ndim) if k != axis % x.ndim)
    exact = gi.astype(np.float64).sum(axis=others)
    mag = np.abs(gi.astype(np.float64)).sum(axis=others)
    eps = float(np.finfo(dtype).eps)
    tol = eps * np.abs(exact) + (8 * eps + 64 * 2.0**-52) * mag
    assert np.all(np.abs(gb - exact) <= tol)
    # ... and the float64 reference's, through the reference's own bias epilogue
    kw = call._ref_kw(dtype)
    saved = x if entry.saves == "input" else y
    ref_gi, ref_gb = reference.bias_backward(entry.name, g, saved, b, axis, saves=entry.saves, **kw)
    np.testing.assert_allclose(
        reference.bias_forward(entry.name, x, b, axis, **kw), call.ref_forward(z)
    )
    ref_mag = np.abs(ref_gi).sum(axis=others)
    cond = call.condition(z if entry.saves == "input" else x)
    slack = RTOL_EPS + (0.0 if cond is None else float(np.max(cond)))
    assert np.all(np.abs(gb - ref_gb) <= slack * eps * ref_mag + eps * mag), entry.name


@pytest.mark.parametrize("entry", [e for e in PLAIN if e.name in ("relu", "gelu", "rrelu")])
@pytest.mark.parametrize("axis", AXES)
def test_bias_gradient_bits_any_threads_both_backends(entry, axis, dtype):
    x, b, g = _data(entry, dtype, axis=axis, seed=3)
    call = Call(entry, training=entry.has_training_mode)
    results = {}
    for backend in COMPILED:
        for threads in (1, 2, 3):
            with fastact.config(backend=backend, num_threads=threads):
                results[backend, threads] = _fused(call, x, b, g, axis)
    first = next(iter(results.values()))
    for key, (y, gi, gb) in results.items():
        assert gb.tobytes() == first[2].tobytes(), key
        assert gi.tobytes() == first[1].tobytes(), key
        assert y.tobytes() == first[0].tobytes(), key


@pytest.mark.parametrize("entry", SMOOTH, ids=lambda e: e.name)
@pytest.mark.parametrize("axis", AXES)
def test_bias_gradient_finite_differences(entry, axis):
    """dL/db of L = sum(w * f(x + b)) by central differences, float64."""
    shape = (5, 4, 3)
    rng = np.random.default_rng(11)
    x = rng.normal(0, 1.5, shape)
    b = rng.normal(0, 1, shape[axis])
    w = rng.normal(0, 1, shape)
    call = Call(entry)
    f = call.fwd
    y = f(x, bias=b, bias_axis=axis, **_kw(call))
    saved = x if entry.saves == "input" else y
    _, gb = call.bwd(w, saved, bias=b, bias_axis=axis, **_kw(call))
    h = 1e-6
    fd = np.empty_like(b)
    for c in range(b.size):
        e = np.zeros_like(b)
        e[c] = h
        lp = np.sum(w * f(x, bias=b + e, bias_axis=axis, **_kw(call)))
        lm = np.sum(w * f(x, bias=b - e, bias_axis=axis, **_kw(call)))
        fd[c] = (lp - lm) / (2 * h)
    np.testing.assert_allclose(gb, fd, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["relu", "silu", "leaky_relu"])
def test_in_place(name, backend):
    entry = fastact.activation(name)
    x, b, g = _data(entry, np.float32, axis=1)
    call = Call(entry)
    with fastact.config(backend=backend):
        y0, gi0, gb0 = _fused(call, x, b, g, 1)
        xc, bc, gc = x.copy(), b.copy(), g.copy()
        y = call.fwd(xc, bias=bc, bias_axis=1, out=xc)
        assert y is xc
        np.testing.assert_array_equal(y, y0)
        saved = x if entry.saves == "input" else y
        gi, gb = call.bwd(gc, saved, bias=bc, bias_axis=1, out=gc)
    assert gi is gc
    np.testing.assert_array_equal(gi, gi0)
    assert gb.tobytes() == gb0.tobytes()
    np.testing.assert_array_equal(bc, b)  # the bias is never written


def _layouts(a: np.ndarray):
    yield "fortran", np.asfortranarray(a)
    big = np.zeros((a.shape[0], 2 * a.shape[1], a.shape[2]), a.dtype)
    big[:, ::2] = a
    yield "strided", big[:, ::2]
    yield "reversed", a[::-1].copy()[::-1]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["gelu", "relu6", "rrelu"])
@pytest.mark.parametrize("axis", AXES)
def test_strided_layouts(name, axis, backend):
    entry = fastact.activation(name)
    x, b, g = _data(entry, np.float64, axis=axis)
    call = Call(entry)
    with fastact.config(backend=backend):
        y0, gi0, gb0 = _fused(call, x, b, g, axis)
        bstrided = np.repeat(b, 2)[::2]
        for what, xs in _layouts(x):
            gs = np.asfortranarray(g) if what == "fortran" else g
            ys = call.fwd(xs, bias=bstrided, bias_axis=axis, **_kw(call))
            np.testing.assert_array_equal(ys, y0, err_msg=what)
            saved = xs if entry.saves == "input" else ys
            gi, gb = call.bwd(gs, saved, bias=bstrided, bias_axis=axis, **_kw(call))
            np.testing.assert_array_equal(gi, gi0, err_msg=what)
            assert gb.tobytes() == gb0.tobytes(), what
        # a strided out
        big = np.zeros((x.shape[0], 2 * x.shape[1], x.shape[2]))
        outv = big[:, ::2]
        r = call.fwd(x, bias=b, bias_axis=axis, out=outv, **_kw(call))
        assert r is outv
        np.testing.assert_array_equal(outv, y0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_prelu_takes_bias(backend):
    x, b, g = _data(fastact.activation("prelu"), np.float32, shape=(6, 5, 7), axis=1)
    w = np.linspace(-0.3, 0.6, 5).astype(np.float32)
    z = x + _along(b, 3, 1)
    with fastact.config(backend=backend):
        y = fastact.prelu(x, w, bias=b, bias_axis=1)
        np.testing.assert_array_equal(y, fastact.prelu(z, w))
        gi, gw, gb = fastact.prelu_backward(g, x, w, bias=b, bias_axis=1)
        gi0, gw0 = fastact.prelu_backward(g, z, w)
        xc = x.copy()
        assert fastact.prelu(xc, w, bias=b, bias_axis=1, out=xc) is xc
    np.testing.assert_array_equal(xc, y)
    np.testing.assert_array_equal(gi, gi0)
    np.testing.assert_array_equal(gw, gw0)
    np.testing.assert_allclose(gb, gi0.astype(np.float64).sum(axis=(0, 2)), rtol=1e-6)


@pytest.mark.parametrize("entry", ROWWISE, ids=lambda e: e.name)
def test_rowwise_refuse_bias(entry):
    x = np.ones((2, 3))
    for fn, args in (
        (getattr(fastact, entry.name), (x,)),
        (getattr(fastact, f"{entry.name}_backward"), (x, x)),
    ):
        with pytest.raises(TypeError, match="takes no bias"):
            fn(*args, bias=np.ones(3))


def test_registered_entry_takes_bias():
    name = "bias_test_cube"
    fastact.register(name, lambda x: x * x * x, lambda g, x: g * 3 * x * x)
    try:
        x = np.linspace(-2, 2, 24).reshape(4, 6)
        b = np.arange(6.0) / 10
        f, fb = getattr(fastact, name), getattr(fastact, f"{name}_backward")
        z = x + b
        np.testing.assert_array_equal(f(x, bias=b), f(z))
        gi, gb = fb(np.ones_like(x), x, bias=b)
        np.testing.assert_array_equal(gi, fb(np.ones_like(x), z))
        np.testing.assert_allclose(gb, (3 * z * z).sum(axis=0))
    finally:
        fastact.unregister(name)


def test_empty_and_scalar_shapes():
    x = np.zeros((0, 4), np.float32)
    b = np.ones(4, np.float32)
    assert fastact.relu(x, bias=b).shape == (0, 4)
    gi, gb = fastact.silu_backward(x, x, bias=b)
    assert gi.shape == (0, 4) and gb.shape == (4,) and not gb.any()
    gi, gb = fastact.relu_backward(x.T, x.T, bias=np.ones(0, np.float32))
    assert gi.shape == (4, 0) and gb.shape == (0,)


# --- bad input: a clear error naming the argument, nothing written ------------

X = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
B = np.ones(4, np.float32)

BAD = [
    ("wrong length", dict(bias=np.ones(3, np.float32)), ValueError, "bias has 3 elements"),
    ("2-d bias", dict(bias=np.ones((1, 4), np.float32)), ValueError, "bias must be 1-d"),
    ("0-d bias", dict(bias=np.float32(1)), ValueError, "bias must be 1-d"),
    ("dtype", dict(bias=np.ones(4)), TypeError, "bias has dtype float64"),
    ("int dtype", dict(bias=np.ones(4, np.int32)), TypeError, "bias has dtype int32"),
    ("strings", dict(bias=["a"] * 4), TypeError, "bias must be a real array"),
    ("axis range", dict(bias=B, bias_axis=2), ValueError, "bias_axis 2 is out of bounds"),
    ("axis range neg", dict(bias=B, bias_axis=-3), ValueError, "bias_axis -3 is out of bounds"),
    ("axis type", dict(bias=B, bias_axis=1.0), TypeError, "bias_axis must be an integer"),
    ("axis bool", dict(bias=B, bias_axis=True), TypeError, "bias_axis must be an integer"),
    ("axis length", dict(bias=B, bias_axis=0), ValueError, r"expected 3 \(x.shape\[0\]\)"),
]


@pytest.mark.parametrize("what,kw,exc,match", BAD, ids=[b[0] for b in BAD])
@pytest.mark.parametrize("name", ["relu", "gelu", "prelu"])
def test_bad_input(name, what, kw, exc, match):
    fn = getattr(fastact, name)
    args = (np.float32(0.25),) if name == "prelu" else ()
    x = X.copy()
    bias_before = np.array(kw["bias"], copy=True)
    with pytest.raises(exc, match=match):
        fn(x, *args, out=x, **kw)
    np.testing.assert_array_equal(x, X)
    np.testing.assert_array_equal(np.asarray(kw["bias"]), bias_before)
    bwd = getattr(fastact, f"{name}_backward")
    g = X.copy()
    with pytest.raises(exc, match=match.replace("x.shape", "grad_output.shape")):
        bwd(g, X, *args, out=g, **kw)
    np.testing.assert_array_equal(g, X)


def test_bad_backward_pairs():
    g = X.copy()
    with pytest.raises(ValueError, match="grad_output has shape"):
        fastact.relu_backward(g, X[:2], bias=B, out=g)
    with pytest.raises(TypeError, match="bias has dtype float64.*grad_output"):
        fastact.gelu_backward(g, X, bias=np.ones(4), out=g)
    with pytest.raises(TypeError, match="out has dtype"):
        fastact.gelu_backward(g, X, bias=B, out=np.zeros((3, 4)))
    with pytest.raises(ValueError, match="0-d"):
        fastact.relu(np.float32(1), bias=B)
    np.testing.assert_array_equal(g, X)


# The backward's order of summation (fa_epilogue.h, fastact/_backends/numba/drivers.py).
GROUP, LANES, SEGMENT, RUNS_FROM = 16, 16, 256, 16


def _close(fl, dl, acc, c):
    dl += fl.astype(np.float64)
    fl[:] = 0
    h = LANES // 2
    while h >= 1:
        dl[:h] = dl[:h] + dl[h : 2 * h]
        h //= 2
    acc[c] += dl[0]
    dl[:] = 0


def _order_model(gi: np.ndarray, channels: int, inner: int) -> np.ndarray:
    """The bias gradient summed in the documented order, written out in NumPy."""
    from fastact._api.epilogue import blocks

    flat = gi.reshape(-1)
    n, dt = flat.size, flat.dtype
    nblocks = blocks(n, channels)
    partial = np.zeros((nblocks, channels))
    if inner < RUNS_FROM:  # rows of C * inner, in groups of GROUP rows
        width = channels * inner
        rows = flat.reshape(-1, width)
        for blk in range(nblocks):
            r0, r1 = blk * len(rows) // nblocks, (blk + 1) * len(rows) // nblocks
            for g0 in range(r0, r1, GROUP):
                f = np.zeros(width, dt)
                for r in range(g0, min(g0 + GROUP, r1)):
                    f = f + rows[r]
                fd = f.astype(np.float64).reshape(channels, inner)
                d = fd[:, 0].copy()
                for i in range(1, inner):
                    d = d + fd[:, i]
                partial[blk] += d
    else:  # runs of inner: lanes, segments, runs closed pairwise
        for blk in range(nblocks):
            k0, k1 = blk * n // nblocks, (blk + 1) * n // nblocks
            fl, dl, acc = np.zeros(LANES, dt), np.zeros(LANES), partial[blk]
            k = k0
            while k < k1:
                i, c = k % inner, k // inner % channels
                take = min(SEGMENT - i % SEGMENT, inner - i, k1 - k)
                for t in range(take):
                    fl[(i + t) % LANES] += flat[k + t]
                k, i = k + take, i + take
                if i == inner:
                    _close(fl, dl, acc, c)
                elif i % SEGMENT == 0:
                    dl += fl.astype(np.float64)
                    fl[:] = 0
            if k1 % inner:
                _close(fl, dl, acc, (k1 - 1) // inner % channels)
    total = partial[0].copy()
    for row in partial[1:]:
        total = total + row
    return total


def _paths(threads):
    """((backend, threads, min_bytes), context) for every compiled backend and thread
    count, the C kernels also with every output by non-temporal stores (min_bytes 0:
    the same bits)."""
    for backend in COMPILED:
        for n in threads:
            for min_bytes in (None, 0) if backend == "cython" else (None,):
                stack = contextlib.ExitStack()
                stack.enter_context(fastact.config(backend=backend, num_threads=n))
                if min_bytes is not None:
                    stack.enter_context(nt_threshold(min_bytes))
                yield (backend, n, min_bytes), stack


# (shape, bias_axis): row blocks and groups of uneven sizes, one row per kernel
# call and rows batched, column tiles (C over 2048), rows summed as they are
# stored (at least 256 columns, inner 1 and 3), short runs (inner 2..15), long
# runs split between blocks, tiles crossing runs, runs of a segment and more.
ORDER_CASES = [
    ((1000, 37), -1),
    ((50, 100, 3), 1),
    ((77, 1100), -1),
    ((9, 4500), -1),
    ((300, 7, 5), 1),
    ((40, 3, 2, 7), 1),
    ((6, 5, 17), 1),
    ((2, 3, 4099), 1),
    ((1, 4, 25600), 1),
    ((3, 700, 16), 1),
]


@pytest.mark.parametrize("shape, axis", ORDER_CASES, ids=str)
@pytest.mark.parametrize("name", ["relu", "hardswish", "gelu"])
def test_bias_gradient_is_the_documented_order_any_threads_both_backends(shape, axis, name):
    """Same bits as the order written out in NumPy, for 1-3 threads on both backends."""
    entry = fastact.activation(name)
    call = Call(entry)
    x, b, g = _data(entry, np.float32, shape=shape, axis=axis, seed=7)
    inner = int(np.prod(shape[axis % len(shape) + 1 :]))
    first = None
    for what, paths in _paths((1, 2, 3)):
        with paths:
            y, gi, gb = _fused(call, x, b, g, axis)
        want = _order_model(gi, b.size, inner).astype(np.float32)
        assert gb.tobytes() == want.tobytes(), what
        first = first or (y.tobytes(), gi.tobytes())
        assert (y.tobytes(), gi.tobytes()) == first, what


# Dense rows of at least 256 columns: the memory-bound entries' forward adds the
# bias in its own loop and their backward sums each row as it stores it (pieces
# ending with a row, tiles of 512 for non-temporal stores).
WIDE = [((9, 300), -1), ((5, 1100), -1)]


@pytest.mark.parametrize("entry", PLAIN, ids=lambda e: e.name)
@pytest.mark.parametrize("shape, axis", WIDE, ids=str)
def test_wide_rows_are_the_unfused_calls(entry, shape, axis, dtype):
    """Every entry on dense rows: the unfused calls' bits, the bias gradient in the
    documented order, for both store paths, 1-2 threads and both compiled backends."""
    call = Call(entry, training=entry.has_training_mode)
    x, b, g = _data(entry, dtype, shape=shape, axis=axis, seed=3)
    unfused = {}
    for backend in COMPILED:
        with fastact.config(backend=backend):
            y0 = call.fwd(x + b, **_kw(call))
            unfused[backend] = y0, call.bwd(g, x + b if entry.saves == "input" else y0, **_kw(call))
    for what, paths in _paths((1, 2)):
        with paths:
            y, gi, gb = _fused(call, x, b, g, axis)
        np.testing.assert_array_equal(y, unfused[what[0]][0], err_msg=str(what))
        np.testing.assert_array_equal(gi, unfused[what[0]][1], err_msg=str(what))
        want = _order_model(gi, b.size, 1).astype(dtype)
        assert gb.tobytes() == want.tobytes(), what


def test_backends_share_the_order_constants():
    drivers = pytest.importorskip("fastact._backends.numba.drivers")
    assert (
        drivers.BIAS_GROUP,
        drivers.BIAS_LANES,
        drivers.BIAS_SEGMENT,
        drivers.BIAS_RUNS_FROM,
    ) == (
        GROUP,
        LANES,
        SEGMENT,
        RUNS_FROM,
    )
    if "cython" in COMPILED:
        from fastact._backends.cython import _kernels

        assert _kernels.BIAS_ORDER == (GROUP, LANES, SEGMENT, RUNS_FROM)


def _channel_terms(gi: np.ndarray, channels: int, inner: int) -> np.ndarray:
    """The terms of each channel's sum, one row per channel."""
    terms = np.moveaxis(gi.reshape(-1, channels, inner), 1, 0)
    return np.ascontiguousarray(terms).reshape(channels, -1)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize(
    "shape, axis", [((1_000_000, 4), -1), ((1, 4, 250_000), 1), ((500, 4, 500), 1)], ids=str
)
@pytest.mark.parametrize("kind", ["random", "cancelling"])
def test_bias_gradient_at_least_as_accurate_as_pairwise_float32(backend, shape, axis, kind):
    """Long reductions against the float64 sum of the same terms.

    No term goes through more than 15 float32 additions (GROUP rows, or
    SEGMENT / LANES terms of a lane) before the sum goes on in float64, so the
    error stays under 15 units of roundoff of the terms' magnitudes (and half
    an ulp of the result): below the bound of NumPy's float32 pairwise sum,
    whose terms go through 15 additions in its blocks and then log2(n / 128)
    more.  Where the terms do not cancel, the error is also below what
    NumPy's pairwise sum of the same terms makes.
    """
    rng = np.random.default_rng(17)
    n = int(np.prod(shape))
    if kind == "random":
        g = rng.normal(1.0, 1.0, n)
    else:  # large terms of alternating sign around a small true sum
        g = rng.normal(0.0, 1e-3, n) + np.where(np.arange(n) % 2, 1e3, -1e3)
    g = g.astype(np.float32).reshape(shape)
    saved = np.ones(shape, np.float32)  # relu's gradient passes g through where y > 0
    b = np.zeros(shape[axis], np.float32)
    inner = int(np.prod(shape[axis % len(shape) + 1 :]))
    with fastact.config(backend=backend):
        gi, gb = fastact.relu_backward(g, saved, bias=b, bias_axis=axis)
    np.testing.assert_array_equal(gi, g)
    terms = _channel_terms(gi, b.size, inner).astype(np.float64)
    exact, mag = terms.sum(axis=1), np.abs(terms).sum(axis=1)
    err = np.abs(gb.astype(np.float64) - exact)
    u = 2.0**-24
    half_ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64) / 2
    assert np.all(err <= 15 * u * mag + half_ulp), (err, mag)
    pairwise_bound = (15 + np.log2(terms.shape[1] / 128)) * u * mag
    assert np.all(15 * u * mag < pairwise_bound)
    if kind == "random":
        pairwise = np.add.reduce(_channel_terms(gi, b.size, inner), axis=1)
        assert err.max() <= np.abs(pairwise.astype(np.float64) - exact).max()


@pytest.mark.parametrize("backend", BACKENDS)
def test_bias_sharing_memory_with_out_is_read_before_any_write(backend):
    x = np.linspace(-3, 3, 64 * 48).reshape(64, 48)
    with fastact.config(backend=backend):
        want = fastact.silu(x + x[5])
        want_gi = fastact.silu_backward(np.ones_like(x), x + x[5])
        xc = x.copy()
        got = fastact.silu(xc, bias=xc[5], out=xc)  # the bias is a row of out
        np.testing.assert_array_equal(got, want)
        g = np.ones_like(x)
        xc = x.copy()
        gi, gb = fastact.silu_backward(g, xc, bias=g[5] * xc[5], out=g)
    np.testing.assert_allclose(gi, want_gi, rtol=1e-12)
    np.testing.assert_allclose(gb, want_gi.sum(axis=0), rtol=1e-12)


@pytest.mark.parametrize("entry", PLAIN, ids=lambda e: e.name)
@pytest.mark.parametrize("half", ["float16", "bfloat16"])
@pytest.mark.parametrize("backend", COMPILED)
def test_16_bit_bias_is_the_float32_epilogue_rounded_once(entry, half, backend):
    """16-bit arrays: the float32 epilogue on the widened arrays, each result rounded once."""
    if half == "bfloat16":
        dt = np.dtype(pytest.importorskip("ml_dtypes").bfloat16)
    else:
        dt = np.dtype(half)
    shape = (67, 33)
    x, b, g = (a.astype(dt) for a in _data(entry, np.float32, shape=shape))
    call = Call(entry, training=entry.has_training_mode)
    x32, b32, g32 = (a.astype(np.float32) for a in (x, b, g))
    with fastact.config(backend=backend):
        y, gi, gb = _fused(call, x, b, g, -1)
        y32 = call.fwd(x32, bias=b32, **_kw(call))
        s32 = x32 if entry.saves == "input" else y.astype(np.float32)
        gi32, _ = call.bwd(g32, s32, bias=b32, **_kw(call))
    assert y.dtype == gi.dtype == gb.dtype == dt
    np.testing.assert_array_equal(y.view(np.uint16), y32.astype(dt).view(np.uint16))
    np.testing.assert_array_equal(gi.view(np.uint16), gi32.astype(dt).view(np.uint16))
    want = gi32.astype(np.float64).sum(0)
    mag = np.abs(gi32.astype(np.float64)).sum(0)
    err = np.abs(gb.astype(np.float64) - want)
    assert np.all(err <= float(np.finfo(np.float32).eps) * 64 * mag + np.abs(want) * 2.0**-7)
