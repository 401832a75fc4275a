"""float16 and bfloat16 arrays: stored in 16 bits, computed in float32, rounded once.

Every entry, forward, backward and in place, on every backend: within 0.6
ulp of the 16-bit type of the float64 reference (plus the float32 kernel's
documented error terms), special values and subnormal 16-bit inputs at every
position (start, vector body, tail, both sides of a thread-chunk edge), the
same bits as the float32 kernel rounded once, and the same bits on the two
compiled backends.  bfloat16 needs ml_dtypes: those cases skip without it.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import fastact
from fastact import _half
from fastact.table import Activation, jump_points
from tests.conftest import (
    BACKENDS,
    COMPILED,
    ENTRIES,
    PARALLEL_N,
    RTOL_EPS,
    Call,
    entry_id,
    example_params,
    nt_threshold,
    special_positions,
)

ULP = 0.6  # the accuracy goal, in units of the 16-bit type's last place
EPS32 = 2.0**-23
TINY32 = 2.0**-126
# precision (significand bits) and smallest normal exponent of each format
FORMAT = {"float16": (11, -14), "bfloat16": (8, -126)}


def _dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        pytest.importorskip("ml_dtypes")
    return _half.dtype_named(name)


@pytest.fixture(params=["float16", "bfloat16"])
def half(request) -> np.dtype:
    return _dtype(request.param)


def ulp16(want: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The 16-bit type's last place at each (float64) value."""
    p, emin = FORMAT[dtype.name]
    with np.errstate(divide="ignore"):
        e = np.floor(np.log2(np.abs(want)))
    e = np.maximum(np.where(np.isfinite(e), e, emin), emin)
    return np.exp2(e - p + 1)


def assert_ulp16(got, want, dtype, what, scale=None, cond=None, atol=None) -> float:
    """``got`` (16-bit) within ULP of the float64 ``want`` (plus the documented float32
    terms: ``cond`` extra float32 ulp, ``scale`` an absolute few float32 ulp of |scale|,
    ``atol`` a documented flush); values that round to +-inf must be +-inf.  Returns the
    largest error in 16-bit ulp (beyond the float32 terms)."""
    got = np.asarray(got).astype(np.float64)
    want = np.broadcast_to(np.asarray(want, np.float64), got.shape)
    bad = np.isnan(got) != np.isnan(want)
    assert not bad.any(), f"{what}: NaN mismatch at {np.flatnonzero(bad)[:5]}"
    fin = ~np.isnan(want)
    g, w = got[fin], want[fin]
    rounded = _half.round_to(w, dtype).astype(np.float64)
    extra = 4 * TINY32 + RTOL_EPS * EPS32 * np.abs(np.where(np.isfinite(w), w, 0))
    for term in (
        None if cond is None else np.broadcast_to(cond, want.shape)[fin] * EPS32 * np.abs(w),
        None
        if scale is None
        else RTOL_EPS * EPS32 * np.broadcast_to(np.abs(scale), want.shape)[fin],
        None if atol is None else np.broadcast_to(atol, want.shape)[fin],
    ):
        if term is not None:
            extra = extra + np.where(np.isfinite(term), term, 0)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(g - w)
        u = ulp16(w, dtype)
        inf = np.isinf(rounded)
        ok = np.where(inf, g == rounded, err <= ULP * u + extra)
        worst = np.where(inf | ~np.isfinite(err), 0, np.maximum(err - extra, 0) / u)
    if not ok.all():
        i = np.flatnonzero(~ok)[:5]
        raise AssertionError(f"{what}: got {g[i]} want {w[i]} ({err[i] / u[i]} ulp)")
    return float(worst.max(initial=0.0))


def specials(entry: Activation, params: dict, dtype: np.dtype) -> np.ndarray:
    """+-0, 16-bit subnormals, the smallest normal, 1, large, the largest, +-inf, NaN,
    the kinks and their 16-bit neighbours."""
    p, emin = FORMAT[dtype.name]
    sub, tiny = 2.0 ** (emin - p + 1), 2.0**emin
    big = float(_half.round_to(1e4 if dtype.name == "float16" else 1e30, dtype))
    top = (2 - 2.0 ** (1 - p)) * 2.0 ** (15 if dtype.name == "float16" else 127)
    mags = [0.0, sub, 3 * sub, 0.75 * tiny, tiny, 1.0, big, top, np.inf]
    vals = mags + [-m for m in mags] + [np.nan]
    for k in jump_points(entry, {k: v for k, v in params.items() if np.ndim(v) == 0}):
        k16 = float(_half.round_to(k, dtype))
        vals += [k16, k16 + ulp16(np.array(k16), dtype), k16 - ulp16(np.array(k16), dtype)]
    return _half.round_to(vals, dtype)


def _param_sets(entry: Activation) -> list[tuple[dict, bool]]:
    sets = []
    for params in example_params(entry):
        if entry.channel_param and params.get(entry.channel_param) is None:
            params = {**params, entry.channel_param: np.array([0.25, -0.5, 1.5])}
        for training in (False, True) if entry.has_training_mode else (False,):
            sets.append((params, training))
    return sets


def _inputs(entry: Activation, params: dict, dtype: np.dtype, seed: int):
    """x and g of a parallel-sized array, windows of special values at every position."""
    rng = np.random.default_rng(seed)
    if entry.rowwise:
        rows, rowlen = -(-PARALLEL_N // 67), 67
        n = rows * rowlen
    else:
        n = PARALLEL_N
    x = rng.normal(0, 3, n)
    x[::7] *= 0.01
    x = _half.round_to(x, dtype)
    g = _half.round_to(rng.normal(0, 3, n), dtype)
    values = specials(entry, params, dtype)
    m = len(values)
    for k, a in enumerate(special_positions(n)):
        a = min(a, n - m)
        x[a : a + m] = np.roll(values, 5 * k)
        g[a : a + m] = np.roll(values, 3 * k + 1)
    if entry.rowwise:
        x, g = x.reshape(rows, rowlen), g.reshape(rows, rowlen)
    return x, g


def _same_bits(a: np.ndarray, b: np.ndarray, what: str) -> None:
    """The same 16-bit patterns, any NaN equal to any NaN (both quiet)."""
    ua, ub = a.view(np.uint16), b.view(np.uint16)
    nan_a, nan_b = np.isnan(a.astype(np.float32)), np.isnan(b.astype(np.float32))
    quiet = 0x0200 if a.dtype.name == "float16" else 0x0040
    assert ((ua[nan_a] & quiet) != 0).all(), f"{what}: a signalling NaN"
    bad = (ua != ub) & ~(nan_a & nan_b)
    if bad.any():
        i = np.flatnonzero(bad.reshape(-1))[:5]
        raise AssertionError(f"{what}: {a.reshape(-1)[i]} != {b.reshape(-1)[i]} at {i}")


def _check(call: Call, x, g, y, gx, dtype, what: str) -> float:
    """y and gx against the float64 reference of the widened inputs (float32 for rrelu's
    slopes: a 16-bit array's slopes are float32's)."""
    x32, g32 = x.astype(np.float32), g.astype(np.float32)
    with np.errstate(all="ignore"):
        cond = call.condition(x32)
        atol = call.underflow(x32, np.float32)
        w = assert_ulp16(
            y,
            call.ref_forward(x32),
            dtype,
            what + " forward",
            cond=cond,
            scale=call.forward_scale(x32),
            atol=atol,
        )
        s32 = call.saved(x, y).astype(np.float32)
        gatol = None if atol is None else atol * np.abs(g32.astype(np.float64))
        wb = assert_ulp16(
            gx,
            call.ref_backward(g32, s32),
            dtype,
            what + " backward",
            scale=call.grad_scale(g32),
            cond=cond,
            atol=gatol,
        )
    return max(w, wb)


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
def test_every_entry_forward_backward_in_place(entry, half):
    """Every backend within ULP of the reference; in place the same bits; the compiled
    backends the same bits as each other and as the float32 kernel rounded once."""
    for params, training in _param_sets(entry):
        x, g = _inputs(entry, params, half, seed=3)
        results = {}
        for backend in BACKENDS:
            call = Call(entry, params, training=training)
            what = f"{entry.name} {half.name} {params} training={training} {backend}"
            with fastact.config(backend=backend, num_threads=2):
                y = call.forward(x)
                s = call.saved(x, y)
                gx = call.backward(g, s)
                xi, gi = x.copy(), g.copy()
                yi = call.forward(xi, out=xi)
                gxi = call.backward(gi, call.saved(x, y), out=gi)
            assert y.dtype == gx.dtype == half, what
            assert yi is xi and gxi is gi, what
            _same_bits(yi, y, what + " in-place forward")
            _same_bits(gxi, gx, what + " in-place backward")
            _check(call, x, g, y, gx, half, what)
            results[backend] = (y, gx)
        for b in COMPILED:
            _same_bits(results[b][0], results[COMPILED[0]][0], f"{entry.name} {b} forward")
            _same_bits(results[b][1], results[COMPILED[0]][1], f"{entry.name} {b} backward")
        if COMPILED:
            # the float32 kernel on the widened arrays, rounded once by NumPy / ml_dtypes
            call = Call(entry, params, training=training)
            with fastact.config(backend=COMPILED[0], num_threads=2):
                x32 = x.astype(np.float32)
                y32 = call.forward(x32)
                s32 = call.saved(x, results[COMPILED[0]][0]).astype(np.float32)
                g32 = call.backward(g.astype(np.float32), s32)
            with np.errstate(over="ignore"):
                want_y, want_g = y32.astype(half), g32.astype(half)
            what = f"{entry.name} {half.name} {params} training={training}"
            _same_bits(results[COMPILED[0]][0], want_y, what + " forward vs float32 rounded")
            _same_bits(results[COMPILED[0]][1], want_g, what + " backward vs float32 rounded")


# --- conversions ---------------------------------------------------------------


def _numpy_only(monkeypatch):
    from fastact import _dispatch

    monkeypatch.setattr(_dispatch, "_cython", lambda: None)


@pytest.mark.parametrize("compiled", [True, False], ids=["C", "numpy"])
def test_widening_is_exact_for_every_16_bit_value(half, compiled, monkeypatch):
    """All 65536 patterns, subnormals, infinities and NaNs included (C and NumPy paths)."""
    if not compiled:
        _numpy_only(monkeypatch)
    elif "cython" not in BACKENDS:
        pytest.skip("no C extension")
    h = np.arange(65536, dtype=np.uint16)
    got = _half._widen_bits(_half.fmt(half), h, np.empty(65536, np.float32), 1)
    want = h.view(half).astype(np.float32)
    nan = np.isnan(want)
    np.testing.assert_array_equal(got.view(np.uint32)[~nan], want.view(np.uint32)[~nan])
    assert np.isnan(got[nan]).all()
    # the payload moves with the value (a quiet NaN stays quiet)
    np.testing.assert_array_equal(
        got.view(np.uint32)[nan] >> 22 & 1, h[nan] >> (9 if half.name == "float16" else 6) & 1
    )


@pytest.mark.parametrize("compiled", [True, False], ids=["C", "numpy"])
def test_rounding_is_once_to_nearest_even(half, compiled, monkeypatch):
    """float32 -> 16 bits: NumPy's / ml_dtypes' rounding (ties to even, overflow to inf,
    subnormal results exact) on random patterns, every tie and its neighbours; NaN quiet."""
    if not compiled:
        _numpy_only(monkeypatch)
    elif "cython" not in BACKENDS:
        pytest.skip("no C extension")
    rng = np.random.default_rng(5)
    shift = 13 if half.name == "float16" else 16
    hi = np.arange(65536, dtype=np.uint32)
    ties = (hi << shift) | (1 << (shift - 1))  # halfway between two neighbours (float16: in
    # float16's normal range only where the exponent fits; elsewhere just a pattern)
    pats = np.concatenate(
        [rng.integers(0, 2**32, 2**20, dtype=np.uint64).astype(np.uint32), ties, ties + 1, ties - 1]
    )
    f = pats.view(np.float32)
    got = _half._narrow_bits(_half.fmt(half), f, np.empty(f.size, np.uint16), 1)
    with np.errstate(over="ignore", invalid="ignore"):
        want = f.astype(half).view(np.uint16)
    nan = np.isnan(f)
    np.testing.assert_array_equal(got[~nan], want[~nan])
    quiet = 0x7E00 if half.name == "float16" else 0x7FC0
    assert ((got[nan] & quiet) == quiet).all()


# --- mixed dtypes, bad input, layouts --------------------------------------------


def test_mixed_dtypes(half):
    x = _half.round_to(np.linspace(-3, 3, 101), half)
    y = fastact.tanh(x)
    g16 = np.ones_like(x)
    with pytest.raises(TypeError, match="saved has dtype float32"):
        fastact.tanh_backward(g16, y.astype(np.float32))
    other = np.float16 if half.name == "bfloat16" else _half.BFLOAT16 or np.float64
    with pytest.raises(TypeError, match="saved has dtype"):
        fastact.tanh_backward(g16, y.astype(other))
    with pytest.raises(TypeError, match=r"out has dtype float32, expected " + half.name):
        fastact.tanh(x, out=np.empty(x.shape, np.float32))
    with pytest.raises(TypeError, match=r"out has dtype float32, expected " + half.name):
        fastact.tanh_backward(g16, y, out=np.empty(x.shape, np.float32))
    with pytest.raises(TypeError, match="out has dtype"):
        fastact.prelu(x, np.float32(0.25), out=np.empty(x.shape, np.float64))
    # a float32 gradient with a 16-bit saved tensor: computed in float32 from the exact widening
    g32 = np.linspace(-1, 1, 101, dtype=np.float32)
    got = fastact.tanh_backward(g32, y)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, fastact.tanh_backward(g32, y.astype(np.float32)))
    gx, gw = fastact.prelu_backward(g32, x, np.float32(0.25))
    assert gx.dtype == gw.dtype == np.float32
    # nothing was written on refusal
    out = np.full(x.shape, 7, half)
    with pytest.raises(TypeError):
        fastact.tanh_backward(g16, y.astype(np.float32), out=out)
    assert (out.astype(np.float32) == 7).all()


def test_bfloat16_is_recognised_by_dtype_not_kind():
    ml = pytest.importorskip("ml_dtypes")
    x = np.array([-1.0, 0.5], ml.bfloat16)
    assert x.dtype.kind == "V"
    assert fastact.relu(x).dtype == x.dtype
    for other in (ml.float8_e4m3fn, np.dtype("V2")):
        with pytest.raises(TypeError, match="x"):
            fastact.relu(np.zeros(2, other))


@pytest.mark.parametrize("backend", BACKENDS)
def test_layouts(half, backend):
    """F order, strided input and out, out overlapping the input, 0-d: the same values."""
    rng = np.random.default_rng(2)
    x = _half.round_to(rng.normal(0, 2, (64, 33)), half)
    with fastact.config(backend=backend):
        want = fastact.silu(x)
        f = np.asfortranarray(x)
        _same_bits(fastact.silu(f), want, "F order")
        out = np.empty((64, 66), half)[:, ::2]
        _same_bits(fastact.silu(x[:, :], out=out), want, "strided out")
        _same_bits(fastact.silu(np.ascontiguousarray(x.T).T), want, "transposed")
        big = np.concatenate([x.reshape(-1), x.reshape(-1)])
        fastact.silu(big[:-1], out=big[1:])
        _same_bits(
            big[1:], fastact.silu(np.concatenate([x.reshape(-1), x.reshape(-1)])[:-1]), "overlap"
        )
        s = fastact.silu(x[3, 4])
        assert np.ndim(s) == 0
        _same_bits(np.asarray(s, half).reshape(1), want[3, 4:5], "0-d")
        p = fastact.softmax(x, axis=0)
        _same_bits(p, fastact.softmax(np.ascontiguousarray(x.T), axis=1).T, "softmax axis 0")


@pytest.mark.parametrize("backend", BACKENDS)
def test_prelu_weight_gradient_accumulates_wide(half, backend):
    """The weight gradient summed in float64: in 16 bits a sum of many equal terms stops
    growing (x + 1 rounds to x from 256 in bfloat16, 2048 in float16)."""
    n = 4 * 4096
    x = np.full((n // 4, 4), -1.0, np.float32).astype(half)
    g = np.ones_like(x)
    with fastact.config(backend=backend):
        _, gw = fastact.prelu_backward(g, x, np.full(4, 0.25, np.float32))
    assert gw.dtype == half
    np.testing.assert_array_equal(gw.astype(np.float64), -(n // 4))


@pytest.mark.parametrize("backend", BACKENDS)
def test_softmax_rows_sum_wide(half, backend):
    x = np.zeros((3, 5000), half)
    with fastact.config(backend=backend):
        p = fastact.softmax(x, axis=-1).astype(np.float64)
    np.testing.assert_array_equal(p, _half.round_to(1 / 5000, half).astype(np.float64))


def test_dispatch_follows_float32(half):
    """Without a measured 16-bit plan a 16-bit call is dispatched as a float32 one."""
    from fastact import _dispatch

    for entry in ENTRIES:
        for pass_ in _dispatch.PASSES:
            assert _dispatch.plan_for(entry, pass_, half) == _dispatch.plan_for(
                entry, pass_, np.dtype(np.float32)
            )


# --- the compiled paths: the 16-bit kernels (F16C and C), the fast path -------------

# Around the vector widths, the 16-bit kernels' chunks (128) and a thread chunk's minimum
# (4096).
EDGE_SIZES = (1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 127, 128, 129, 255, 256, 257, 511, 513)
EDGE_SIZES += (4097, 9001)


def _nan_payloads(dtype: np.dtype) -> np.ndarray:
    """Signalling and quiet NaNs of both signs with payloads."""
    if dtype.name == "float16":
        pats = [0x7C01, 0x7D55, 0x7E01, 0xFC02, 0xFFFF]
    else:
        pats = [0x7F81, 0x7FA5, 0x7FC1, 0xFF82, 0xFFFF]
    return np.array(pats, np.uint16).view(dtype)


def _edge_input(entry, params, dtype, n, seed):
    rng = np.random.default_rng(seed)
    x = _half.round_to(rng.normal(0, 3, n), dtype)
    values = np.concatenate([specials(entry, params, dtype), _nan_payloads(dtype)])
    for k, a in enumerate((0, 250, 256 - len(values) // 2, n - len(values))):
        a = max(0, min(a, n - len(values)))
        v = np.roll(values, 7 * k)[: n - a]
        x[a : a + len(v)] = v
    return x


@pytest.mark.skipif("cython" not in BACKENDS, reason="the Cython backend is not built")
@pytest.mark.parametrize("entry", [e for e in ENTRIES if not e.rowwise], ids=entry_id)
@pytest.mark.parametrize("stores", ["cached", "non-temporal"])
def test_edges_and_paths_are_float32_rounded_once(entry, half, stores):
    """Every size around vector widths, blocks and thread chunks, special values, 16-bit
    subnormals and NaN payloads at both ends and a block edge: the fast path and the
    general path both give the float32 kernel's result rounded once, whether the
    outputs go through the cache or (threshold 0) by non-temporal stores."""
    from tests.test_fast_path import general_only

    for params, training in _param_sets(entry):
        for n in EDGE_SIZES:
            x = _edge_input(entry, params, half, n, seed=n)
            g = _edge_input(entry, params, half, n, seed=n + 1)[::-1].copy()
            call = Call(entry, params, training=training)
            with fastact.config(backend="cython", num_threads=2):
                y32 = call.forward(x.astype(np.float32))
                with nt_threshold(0) if stores == "non-temporal" else contextlib.nullcontext():
                    y = call.forward(x)
                    gx = call.backward(g, call.saved(x, y))
                    with general_only():
                        y_gen = call.forward(x)
                        gx_gen = call.backward(g, call.saved(x, y))
                g32 = call.backward(g.astype(np.float32), call.saved(x, y).astype(np.float32))
            with np.errstate(all="ignore"):
                want_y, want_g = y32.astype(half), g32.astype(half)
            what = f"{entry.name} {half.name} n={n} {params} training={training} {stores}"
            _same_bits(y, want_y, what + " forward (fast path)")
            _same_bits(gx, want_g, what + " backward (fast path)")
            _same_bits(y_gen, want_y, what + " forward (general path)")
            _same_bits(gx_gen, want_g, what + " backward (general path)")


@pytest.mark.skipif("cython" not in BACKENDS, reason="the Cython backend is not built")
@pytest.mark.parametrize("name", ["float16", "bfloat16"])
def test_rounding_dense_sweep(name):
    """Every 509th float32 pattern (8.4 million: every exponent, signs, subnormals, inf,
    NaN) rounded to the 16-bit type by its instructions (F16C, AVX512_BF16) where the
    CPU has them and by C: NumPy's (ml_dtypes') bits (NaN: quiet, any payload)."""
    half = _dtype(name)
    f = np.arange(0, 2**32, 509, dtype=np.uint64).astype(np.uint32).view(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        want = f.astype(half).view(np.uint16)
    nan = np.isnan(f)
    quiet = 0x7E00 if name == "float16" else 0x7FC0
    for conv in _conversions(half):
        with _converting(half, conv):
            got = _half._narrow_bits(_half.FORMATS[name], f, np.empty(f.size, np.uint16), 2)
        np.testing.assert_array_equal(got[~nan], want[~nan], err_msg=conv)
        assert ((got[nan] & quiet) == quiet).all(), conv


def _conversions(half: np.dtype) -> list[str]:
    """The conversions the compiled 16-bit kernels can use here: by instructions
    (float16: F16C, bfloat16: AVX512_BF16, where the CPU has them), for float16 also
    the x86-64-v3 copies where the CPU runs the x86-64-v4 ones, and C."""
    from fastact._backends.cython import _kernels

    if half.name == "bfloat16":
        return ["instructions", "c"] if _kernels.half_has_bf16v4() else ["c"]
    if not _kernels.half_has_f16c():
        return ["c"]
    v3 = ["x86-64-v3"] if _kernels.half_f16c_copy() == 4 else []
    return ["instructions", *v3, "c"]


_LEVELS = {"instructions": 4, "x86-64-v3": 3, "c": 0}


@contextlib.contextmanager
def _converting(half: np.dtype, conv: str):
    """The compiled 16-bit kernels of ``half`` converting by ``conv`` in the block."""
    from fastact._backends.cython import _kernels

    if half.name == "float16":
        was = _kernels.half_use_f16c(_LEVELS[conv])
        restore = _kernels.half_use_f16c
    else:
        was = _kernels.half_use_bf16v4(conv == "instructions")
        restore = _kernels.half_use_bf16v4
    try:
        yield
    finally:
        restore(was)


@pytest.mark.skipif("cython" not in BACKENDS, reason="the Cython backend is not built")
@pytest.mark.parametrize("entry", [e for e in ENTRIES if not e.rowwise], ids=entry_id)
def test_every_16_bit_value_is_float32_rounded_once(entry, half):
    """All 65536 patterns (subnormals, infinities, NaNs) as the input and as the
    gradient, forward and backward, plain and training forms, on one and two threads:
    the float32 kernel's result on the exactly widened input, rounded once, whether the
    kernel converts by the format's instructions (F16C, AVX512_BF16) or in C, and on
    the Numba backend."""
    x = np.arange(65536, dtype=np.uint16).view(half)
    g = x[::-1].copy()
    for params, training in _param_sets(entry):
        if entry.channel_param and np.ndim(params.get(entry.channel_param)) > 0:
            continue  # a weight per channel: not a flat array's kernel
        call = Call(entry, params, training=training)
        with fastact.config(backend="cython"), np.errstate(all="ignore"):
            s32 = call.saved(x, call.forward(x)).astype(np.float32)
            want_y = call.forward(x.astype(np.float32)).astype(half)
            want_g = call.backward(g.astype(np.float32), s32).astype(half)
        for conv in _conversions(half):
            for threads in (1, 2):
                with _converting(half, conv), fastact.config(backend="cython", num_threads=threads):
                    y = call.forward(x)
                    gx = call.backward(g, call.saved(x, y))
                what = f"{entry.name} {half.name} {params} training={training} {conv} {threads}"
                _same_bits(y, want_y, what + " forward")
                _same_bits(gx, want_g, what + " backward")
        if "numba" in COMPILED:  # its own conversions (bfloat16) or the blocks (float16)
            for threads in (1, 2):
                with fastact.config(backend="numba", num_threads=threads):
                    y = call.forward(x)
                    gx = call.backward(g, call.saved(x, y))
                what = f"{entry.name} {half.name} {params} training={training} numba {threads}"
                _same_bits(y, want_y, what + " forward")
                _same_bits(gx, want_g, what + " backward")


@pytest.mark.skipif("cython" not in BACKENDS, reason="the Cython backend is not built")
def test_small_plain_calls_take_the_fast_path(half):
    """A plain 16-bit call below the parallel size runs in C, not on the general path."""
    from tests.test_fast_path import fast_only, general_only

    x = _half.round_to(np.linspace(-3, 3, 1000), half)
    with fastact.config(backend="cython"):
        with general_only():
            want_y, want_g = fastact.gelu(x), fastact.gelu_backward(x, x)
        with fast_only():
            y = fastact.gelu(x)
            gx = fastact.gelu_backward(x, x)
            out = np.empty_like(x)
            assert fastact.relu(x, out=out) is out
            assert fastact.rrelu(x, training=True, seed=3).dtype == half
    _same_bits(y, want_y, "forward")
    _same_bits(gx, want_g, "backward")


@pytest.mark.skipif("cython" not in BACKENDS, reason="the Cython backend is not built")
def test_float16_rounding_by_f16c_is_the_c_rounding():
    """Where float16 is rounded by the F16C instruction: the bits of the C rounding on
    random patterns, every tie and its neighbours, NaN payloads, at every tail length;
    and a whole activation the same either way."""
    from fastact._backends.cython import _kernels

    if not _kernels.half_has_f16c():
        pytest.skip("float16 is rounded in C here")
    rng = np.random.default_rng(8)
    hi = np.arange(65536, dtype=np.uint32)
    ties = (hi << 13) | (1 << 12)
    pats = np.concatenate(
        [rng.integers(0, 2**32, 2**18, dtype=np.uint64).astype(np.uint32), ties, ties + 1, ties - 1]
    )
    f = pats.view(np.float32)
    x = _half.round_to(rng.normal(0, 3, 9001), np.dtype(np.float16))
    x[:5] = _nan_payloads(np.dtype(np.float16))
    try:
        hw = [
            _half._narrow_bits(1, f[: f.size - t], np.empty(f.size - t, np.uint16), 1)
            for t in range(9)
        ]
        y_hw = fastact.gelu(x), fastact.silu_backward(x, x)
        _kernels.half_use_f16c(0)
        c = [
            _half._narrow_bits(1, f[: f.size - t], np.empty(f.size - t, np.uint16), 1)
            for t in range(9)
        ]
        y_c = fastact.gelu(x), fastact.silu_backward(x, x)
    finally:
        _kernels.half_use_f16c(4)
    for t in range(9):
        np.testing.assert_array_equal(hw[t], c[t])
    for a, b in zip(y_hw, y_c):
        np.testing.assert_array_equal(a.view(np.uint16), b.view(np.uint16))


ROWS = [(1, 1), (3, 7), (40, 1000), (5, 3000), (2, _half.NATIVE_ROW_MAX + 5)]
CHANNELS = [
    ((70_001,), 1),
    ((4000, 3), 3),
    ((300, 5, 7, 11), 5),
    ((2, 3, 20_000), 3),
    ((37, 2049), 2049),  # rows of column blocks
]


@pytest.mark.parametrize("backend", ["cython", "numba"])
@pytest.mark.parametrize(
    "entry", [e for e in ENTRIES if e.rowwise or e.channel_param], ids=entry_id
)
def test_rowwise_and_per_channel_are_float32_rounded_once(entry, half, backend):
    """softmax's rows (short, batched, longer than a batch, beyond the rows the kernels
    widen themselves) and prelu's layouts (one weight, a weight per element of a row,
    short and longer than a column block, per channel of an image, long channels): the float32 kernels' results on the
    widened arrays rounded once, the weight gradient within rounding of float32's, on
    one and two threads, converting by instructions and in C, special values included."""
    if backend not in BACKENDS:
        pytest.skip(f"the {backend} backend is not available")
    rng = np.random.default_rng(11)
    shapes = ROWS if entry.rowwise else CHANNELS
    for shape in shapes:
        shape, channels = (shape, 0) if entry.rowwise else shape
        x = rng.normal(0, 3, shape)
        vals = specials(entry, {}, half).astype(np.float64)
        flat = x.reshape(-1)
        flat[: min(len(vals), flat.size)] = vals[: flat.size]
        flat[-min(len(vals), flat.size) :] = vals[::-1][: flat.size]
        x = _half.round_to(x, half)
        g = _half.round_to(rng.normal(0, 3, shape), half)
        w = rng.uniform(-1, 1, channels).astype(np.float32) if channels else None
        fwd = getattr(fastact, entry.name)
        bwd = getattr(fastact, entry.name + "_backward")
        args = () if w is None else (w,)
        with fastact.config(backend=backend), np.errstate(all="ignore"):
            y32 = fwd(x.astype(np.float32), *args)
            want_y = y32.astype(half)
            s = x if entry.saves == "input" else want_y
            r32 = bwd(g.astype(np.float32), s.astype(np.float32), *args)
            want_g = (r32[0] if w is not None else r32).astype(half)
            want_w = r32[1].astype(half).astype(np.float64) if w is not None else None
        for conv in _conversions(half):
            gws = []
            for threads in (1, 2):
                what = f"{entry.name} {half.name} {shape} {conv} {threads} threads"
                with _converting(half, conv), fastact.config(backend=backend, num_threads=threads):
                    y = fwd(x, *args)
                    r = bwd(g, s, *args)
                _same_bits(y, want_y, what + " forward")
                _same_bits(r[0] if w is not None else r, want_g, what + " backward")
                if w is not None:
                    assert r[1].dtype == half, what
                    np.testing.assert_allclose(
                        r[1].astype(np.float64),
                        want_w,
                        rtol=2.0 ** (1 - FORMAT[half.name][0]),
                        err_msg=what,
                    )
                    gws.append(r[1])
            if gws:
                _same_bits(gws[0], gws[1], f"{entry.name} {shape} weight gradient, 1 and 2 threads")


@pytest.mark.parametrize("backend", ["cython", "numba"])
@pytest.mark.parametrize("shape", [(1, 1, 1000), (3, 4, 37), (20, 5, 1001), (1, 3, 16384)])
def test_16_bit_weight_gradient_sums_in_float32s_order(half, backend, shape):
    """prelu's 16-bit weight gradient: the float32 terms of the widened arrays summed in
    float64 in the float32 kernels' order (eight partial sums per unit, units in
    blocks), rounded once to the 16-bit type; chunk edges of the 16-bit kernels inside
    the units, one and two threads, every conversion."""
    from tests.backends.test_pgrad_order import emulate

    if backend not in BACKENDS:
        pytest.skip(f"the {backend} backend is not available")
    rng = np.random.default_rng(sum(shape))
    x = _half.round_to(rng.normal(size=shape), half)
    g = _half.round_to(rng.normal(size=shape), half)
    x.reshape(-1)[[5, 127, 128, 300]] = [-np.inf, np.nan, -0.0, 1e4]
    w = np.full(shape[1], 0.25, np.float32)
    x32, g32 = x.astype(np.float32), g.astype(np.float32)
    with np.errstate(all="ignore"), fastact.config(backend="numpy"):
        want = emulate(g32, x32, shape[1], half)
        want_g = fastact.prelu_backward(g32, x32, w)[0].astype(half)
    for conv in _conversions(half):
        for threads in (1, 2):
            with _converting(half, conv), fastact.config(backend=backend, num_threads=threads):
                gx, gw = fastact.prelu_backward(g, x, w)
            what = f"{half.name} {shape} {conv} {threads} threads"
            _same_bits(gw, want, what + " weight gradient")
            _same_bits(gx, want_g, what + " gradient")


ROW_LENGTHS = (1, 2, 31, 32, 33, 45, 127, 128, 129, 190, 257, 1000, 4099)


@pytest.mark.skipif("cython" not in BACKENDS, reason="the Cython backend is not built")
@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.rowwise], ids=entry_id)
def test_rows_in_16_bits_are_float32_rounded_once(entry, half):
    """The forward and backward of rows whose lengths straddle the row sum's lanes and the
    rounding's chunks, special values at each chunk's edges, into a new array and in
    place over each input: the float32 kernel's result rounded once (the 16-bit row
    kernels widen and round chunk by chunk, the row sum's lanes carried across chunks;
    the forward maps and rounds a widened row chunk by chunk)."""
    rng = np.random.default_rng(5)
    vals = specials(entry, {}, half)
    for rowlen in ROW_LENGTHS:
        x = rng.normal(0, 3, (3, rowlen))
        g = rng.normal(0, 3, (3, rowlen))
        for a in (0, 31, 32, 127, 128, rowlen - len(vals)):
            if 0 <= a < rowlen:
                g[1, a : a + len(vals)] = vals[: rowlen - a]
                x[2, a : a + len(vals)] = vals[::-1][: rowlen - a]
        x, g = _half.round_to(x, half), _half.round_to(g, half)
        fwd, bwd = getattr(fastact, entry.name), getattr(fastact, entry.name + "_backward")
        with fastact.config(backend="cython"), np.errstate(all="ignore"):
            y = fwd(x)
            want_y = fwd(x.astype(np.float32)).astype(half)
            want = bwd(g.astype(np.float32), y.astype(np.float32)).astype(half)
        for conv in _conversions(half):
            for threads in (1, 2):
                what = f"{entry.name} {half.name} rows of {rowlen} {conv} {threads} threads"
                with _converting(half, conv), fastact.config(backend="cython", num_threads=threads):
                    _same_bits(fwd(x), want_y, what + " forward")
                    x2 = x.copy()
                    _same_bits(fwd(x2, out=x2), want_y, what + " forward in place")
                    _same_bits(bwd(g, y), want, what)
                    g2, y2 = g.copy(), y.copy()
                    _same_bits(bwd(g2, y, out=g2), want, what + " in place over g")
                    _same_bits(bwd(g, y2, out=y2), want, what + " in place over y")
