"""The compiled fast path of small calls: the general path's bits, its errors, its limits.

Each case is run twice, once through the fast path (the general path patched
to fail) and once through the general path (the fast path switched off in its
table, ``fastact._dispatch.FastPolicy``), and the results are compared bit for
bit: rrelu in eval and training mode, gelu's string option, prelu with every
kind of weight and layout (the weight gradient's summation order included),
softmax and log_softmax along the last axis.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import warnings

import numpy as np
import pytest

import fastact
from fastact import _api, _dispatch, _half
from fastact._codegen.dialect import ROW_SPLIT
from tests.conftest import BACKENDS, TEST_SERIAL_BELOW

pytestmark = pytest.mark.skipif("cython" not in BACKENDS, reason="the Cython backend is not built")
# The parallel fast path runs the OpenMP driver: a build without OpenMP sends
# parallel calls to Numba instead (fastact._dispatch.c_parallel).
needs_openmp = pytest.mark.skipif(
    not _dispatch.c_parallel(), reason="the C extension is built without OpenMP"
)

if "cython" in BACKENDS:
    from fastact._backends.cython import _kernels

GENERAL = (
    "forward",
    "backward",
    "channel_forward",
    "channel_backward",
    "rowwise_forward",
    "rowwise_backward",
)
DTYPES = [np.float32, np.float64]
# 16-bit arrays, which the float32 kernels compute (bfloat16 where ml_dtypes is installed)
HALF = list(_half.dtypes())


def kid(name: str) -> int:
    return fastact.activations().index(name)


@contextlib.contextmanager
def general_only():
    policy = _dispatch.pushed()
    if policy is None:  # no compiled fast path: every call takes the general path
        yield
        return
    _dispatch.push(dataclasses.replace(policy, enabled=False, block_backends=()))
    try:
        yield
    finally:
        _dispatch.push(policy)


@contextlib.contextmanager
def fast_only(names=GENERAL):
    """Fail if one of the general path's functions ``names`` runs inside the block."""

    def fail(*args, **kwargs):
        raise AssertionError("the general path ran")

    with pytest.MonkeyPatch.context() as mp:
        for name in names:
            mp.setattr(_api, name, fail)
        yield


@contextlib.contextmanager
def spy(names=GENERAL):
    """Names of the general-path functions (of ``names``) called inside the block."""
    calls: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        for name in names:
            real = getattr(_api, name)

            def wrapper(*args, _real=real, _name=name, **kwargs):
                calls.append(_name)
                return _real(*args, **kwargs)

            mp.setattr(_api, name, wrapper)
        yield calls


@contextlib.contextmanager
def fast_limit(name: str, limit: int):
    """Raise the fast path's size limit of ``name`` (both passes and dtypes)."""
    policy = _dispatch.fast_policy()
    policy.limits[0, :, :, kid(name)] = limit
    _dispatch.push(policy)
    try:
        yield
    finally:
        _dispatch.load_profile()


def bits(a) -> tuple:
    """Shape, dtype and bytes, every NaN as the same NaN: the kernels run the elements
    before the first 64-byte-aligned output address apart from the rest, and x86
    vector and scalar code may propagate a NaN with another sign or payload."""
    a = np.asarray(a)
    if a.dtype.kind == "f" or _half.is_half(a.dtype):
        a = np.where(np.isnan(a), np.array(np.nan, a.dtype), a)
    return a.shape, a.dtype, a.tobytes()


def same(fast, general) -> None:
    if isinstance(general, tuple):
        assert isinstance(fast, tuple) and len(fast) == len(general)
        for f, g in zip(fast, general):
            same(f, g)
        return
    assert type(fast) is type(general)
    assert bits(fast) == bits(general), (fast, general)


def both(fn, *args, **kwargs):
    """(fast, general) results of ``fn`` on fresh copies of the array arguments."""
    res = []
    for ctx in (fast_only, general_only):
        a = [x.copy() if isinstance(x, np.ndarray) else x for x in args]
        kw = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        with ctx():
            res.append(fn(*a, **kw))
    return res


def data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 3, shape).astype(dtype)
    flat = x.reshape(-1)
    specials = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -1e-310]
    flat[: min(len(specials), flat.size)] = specials[: flat.size]
    return x


# --- elementwise: rrelu (eval and training), gelu's option -----------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (1,), (1000,), (7, 13), (2, 3, 4, 5)])
@pytest.mark.parametrize("seed", [None, 0, 12345, 2**63, 2**64 - 1])
def test_rrelu_eval(dtype, shape, seed):
    x = data(shape, dtype)
    g = data(shape, dtype, seed=1)
    same(*both(fastact.rrelu, x, training=False, seed=seed))
    same(*both(fastact.rrelu, x, 0.1, 0.3, seed=seed))
    y = fastact.rrelu(x)
    same(*both(fastact.rrelu_backward, g, y, seed=seed))
    same(*both(fastact.rrelu_backward, g, y, 0.0, 0.5, training=False, seed=seed))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (3,), (1000,), (7, 13), (2, 3, 4, 5)])
@pytest.mark.parametrize("seed", [0, 1, 42, 2**63 - 1, 2**63, 2**64 - 1])
def test_rrelu_training_with_a_seed(dtype, shape, seed):
    x = data(shape, dtype)
    g = data(shape, dtype, seed=1)
    fwd = both(fastact.rrelu, x, 0.1, 0.6, training=True, seed=seed)
    same(*fwd)
    same(*both(fastact.rrelu_backward, g, fwd[0], 0.1, 0.6, training=True, seed=seed))


def test_rrelu_training_slopes_follow_the_c_order_index():
    """The fast path keys the slopes by the flat C-order index, as the general path."""
    x = -np.abs(data((40, 50), np.float64)) - 1.0
    with fast_only():
        small = fastact.rrelu(x, training=True, seed=9)
    big = np.concatenate([x.reshape(-1), -np.ones(TEST_SERIAL_BELOW)])
    with fastact.config(num_threads=2), general_only(), spy() as calls:
        ref = fastact.rrelu(big, training=True, seed=9)  # general path, parallel
    assert calls == ["forward"]
    np.testing.assert_array_equal(small.reshape(-1), ref[: x.size])


def test_rrelu_training_without_a_seed_takes_the_general_path():
    x = -np.ones(10)
    with spy() as calls:
        a = fastact.rrelu(x, training=True)
    assert calls == ["forward"]
    assert (a < 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("shape", [(), (5,), (1000,), (31, 17)])
def test_gelu_option(dtype, approximate, shape):
    x = data(shape, dtype)
    g = data(shape, dtype, seed=1)
    same(*both(fastact.gelu, x, approximate))
    same(*both(fastact.gelu, x, approximate=approximate))
    same(*both(fastact.gelu_backward, g, x, approximate))
    if approximate == "none":
        same(*both(fastact.gelu, x))


# --- rowwise: softmax, log_softmax along the last axis ---------------------


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", DTYPES + HALF)
@pytest.mark.parametrize("shape", [(1,), (1000,), (3, 1), (10, 100), (4, 5, 50), (2, 1, 7, 9)])
def test_rowwise_last_axis(name, dtype, shape):
    fwd, bwd = getattr(fastact, name), getattr(fastact, f"{name}_backward")
    x = data(shape, dtype)
    x[..., -1] = 2.0  # a row of one special value would be all NaN
    g = data(shape, dtype, seed=1)
    for axis in (-1, len(shape) - 1):
        same(*both(fwd, x, axis))
        same(*both(fwd, x, axis=axis))
        y = fwd(x, axis)
        same(*both(bwd, g, y, axis))
    same(*both(fwd, x))
    x = np.abs(x)  # no NaN rows: every element finite
    y = fwd(x)
    same(*both(bwd, g, y))


def test_rowwise_other_axes_take_the_general_path():
    x = data((6, 7), np.float32)
    for axis in (0, -2):
        with spy() as calls:
            fastact.softmax(x, axis)
        assert calls == ["rowwise_forward"]
    with spy() as calls:
        fastact.softmax(x, np.int64(-1))  # not a Python int
        fastact.log_softmax(np.float32(2.0))
    assert calls == ["rowwise_forward"] * 2


# --- per-channel: prelu ------------------------------------------------------

PRELU_CASES = [
    # (shape, weight kind): "float" a Python float; "scalar" a NumPy scalar; "1" one
    # element; "C" one per channel
    ((), "float"),
    ((9,), "scalar"),
    ((3, 4, 37), "scalar"),
    ((1,), "1"),
    ((1000,), "float"),
    ((1000,), "1"),
    ((9,), "0d"),
    ((4, 1, 10), "1"),
    ((3, 4, 37), "C"),
    ((3, 4, 37), "1"),
    ((2, 3, 5, 7), "C"),
    ((50, 4), "C"),
    ((1, 6), "C"),
    ((7, 5, 1), "C"),
    ((1000, 3), "C"),  # runs of 1365 rows share a tiled weight: no full run
    ((200, 37), "C"),  # two full runs of 110 rows and a tail
    ((66, 2, 3), "C"),  # 132 units: 64 blocks of two or three
]


def _weight(kind, shape, wdtype, rng):
    if kind == "float":
        return float(rng.uniform(-0.5, 0.9))
    if kind == "scalar":
        return np.dtype(wdtype).type(rng.uniform(-0.5, 0.9))
    if kind == "0d":
        return np.asarray(rng.uniform(-0.5, 0.9), wdtype)
    c = 1 if kind == "1" else shape[1]
    return rng.uniform(-0.5, 0.9, c).astype(wdtype)


@pytest.mark.parametrize("dtype", DTYPES + HALF)
@pytest.mark.parametrize("wdtype", DTYPES + HALF)
@pytest.mark.parametrize("shape, kind", PRELU_CASES)
def test_prelu(dtype, wdtype, shape, kind):
    rng = np.random.default_rng(len(shape))
    x = data(shape, dtype)
    g = data(shape, dtype, seed=1)
    w = _weight(kind, shape, wdtype, rng)
    same(*both(fastact.prelu, x, w))
    fast, general = both(fastact.prelu_backward, g, x, w)
    same(fast, general)
    assert fast[1].shape == np.shape(w) and fast[1].dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES + HALF)
@pytest.mark.parametrize(
    "shape, kind",
    [
        ((16384,), "1"),
        ((16385,), "float"),  # two segments, two blocks
        ((32768,), "1"),
        ((5000, 3), "C"),  # three full runs and a tail
        ((2, 4100), "C"),  # C >= ROW_RUN: one row per unit
        ((2, 17000), "C"),  # rows of two segments
        ((3, 3, 17000), "C"),
        ((70, 2, 200), "C"),  # 140 units
    ],
)
def test_prelu_above_the_default_limit(dtype, shape, kind):
    rng = np.random.default_rng(3)
    x = data(shape, dtype)
    g = data(shape, dtype, seed=1)
    w = _weight(kind, shape, dtype, rng)
    with fast_limit("prelu", 10**6):
        same(*both(fastact.prelu, x, w))
        same(*both(fastact.prelu_backward, g, x, w))


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("shape", [(40, 7), (3000, 70), (4, 3000)])
def test_prelu_weight_that_is_a_view_of_out_is_read_as_at_the_call(shape, n_threads):
    """The C kernels read a float32 weight array in place; one that is a view of ``out``
    (its first row, in place over x) is copied first, as the general path copies it: every
    row uses the weights as they were when the call began."""
    if n_threads > 1 and not _dispatch.c_parallel():
        pytest.skip("the C extension is built without OpenMP")
    x = data(shape, np.float32)
    x[0] = np.linspace(-1, 1, shape[1])
    want = fastact.prelu(x, x[0].copy())
    with fastact.config(num_threads=n_threads):
        for ctx in (fast_only, general_only):
            buf = x.copy()
            with ctx():
                fastact.prelu(buf, buf[0], out=buf)
            same(buf, want)
        with fast_only():
            y = fastact.prelu_backward(x, x, x[0])
        with general_only():
            same(y, fastact.prelu_backward(x, x, x[0]))


@pytest.mark.parametrize("n_threads", [1, 2])
def test_prelu_one_weight_over_many_blocks_takes_the_fast_path(n_threads):
    """One column's partial sums, however many blocks, added in block order on both
    paths (the general path's reduction is the fast path's), serial or threaded."""
    if n_threads > 1 and not _dispatch.c_parallel():
        pytest.skip("the C extension is built without OpenMP")
    x = data((5 * 16384 + 7,), np.float64)
    g = data((5 * 16384 + 7,), np.float64, seed=2)
    with fast_limit("prelu", 10**6), spy() as calls, threads(n_threads):
        fastact.prelu_backward(g, x, 0.25)
        fastact.prelu(x, 0.25)
    assert calls == []
    with threads(n_threads):
        same(*both(fastact.prelu_backward, g, x, 0.25))


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES + HALF)
@pytest.mark.parametrize(
    "shape, kind",
    [
        ((3 * TEST_SERIAL_BELOW + 5,), "float"),
        ((3 * TEST_SERIAL_BELOW + 5,), "1"),
        ((2, 3, 2 * TEST_SERIAL_BELOW // 6 + 7), "C"),  # long channels
        ((40, 5, 7, 7), "C"),  # images of 7 x 7
        ((3, 2, 1, 3000), "C"),
        ((9, _kernels.FAST_ROW_RUN + 3), "C") if "cython" in BACKENDS else ((9, 1027), "C"),
        ((TEST_SERIAL_BELOW, 3), "C"),  # rows shorter than FAST_ROW_RUN: runs of rows
        ((TEST_SERIAL_BELOW // 100 + 1, 101), "C"),  # runs of 10 rows, one row left
        ((3, TEST_SERIAL_BELOW // 3 + 1), "C"),  # three runs of one row
    ],
)
def test_prelu_forward_above_the_limit_takes_the_fast_path(dtype, shape, kind, n_threads):
    """Above the serial limit the forward takes the fast path (serial, or the OpenMP
    driver with more threads): the general path's bits, rows shorter than FAST_ROW_RUN
    in runs sharing a tiled weight as the general path runs them."""
    if n_threads > 1 and not _dispatch.c_parallel():
        pytest.skip("the C extension is built without OpenMP")
    rng = np.random.default_rng(5)
    x = data(shape, dtype)
    w = _weight(kind, shape, dtype, rng)
    assert x.size >= TEST_SERIAL_BELOW
    with threads(n_threads):
        same(*both(fastact.prelu, x, w))
        with fast_only():
            fastact.prelu(x, w)


@pytest.mark.parametrize("dtype", HALF)
def test_prelu_16_bit_weight_gradient_is_rounded_once_and_overflows_quietly(dtype):
    """The weight gradient's float64 sum rounded to the array's type (beyond float16's
    range: -inf, without a warning), as the general path rounds it."""
    x = np.full(1000, -300.0, dtype)
    g = np.full(1000, 300.0, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fast, general = both(fastact.prelu_backward, g, x, 0.25)
    same(fast, general)
    assert fast[1].dtype == dtype and fast[1].shape == ()
    assert float(fast[1]) == (-np.inf if dtype == np.float16 else float(dtype.type(-9e7)))


@pytest.mark.parametrize(
    "weight",
    [
        np.full(4, 1, np.int64),
        np.full(8, 0.25)[::2],  # strided
        np.full(4, 0.25).astype(">f8"),  # byte-swapped
        np.full((4, 1), 0.25),
        [0.25] * 4,
        np.int32(1),
        1,
    ],
    ids=["int", "strided", "swapped", "2d", "list", "int-npscalar", "int-scalar"],
)
def test_prelu_unusual_weights_take_the_general_path(weight):
    x = data((3, 4, 5), np.float32)
    with spy() as calls:
        try:
            y = fastact.prelu(x, weight)
            gx, gw = fastact.prelu_backward(x, x, weight)
        except ValueError:
            assert np.ndim(weight) == 2
            y = None
    assert calls[:1] == ["channel_forward"]
    if y is not None:
        assert calls == ["channel_forward", "channel_backward"]
        with general_only():
            same(y, fastact.prelu(x, weight))
            same((gx, gw), fastact.prelu_backward(x, x, weight))


# --- out= --------------------------------------------------------------------


def _cases(dtype):
    """(name, forward, backward) with arrays of one shape: (fn, args) pairs."""
    x = data((6, 4, 5), dtype)
    x[..., -1] = 1.0
    g = data((6, 4, 5), dtype, seed=1)
    w = np.linspace(-0.5, 0.5, 4).astype(dtype)
    return x, g, [
        ("rrelu", lambda x, out: fastact.rrelu(x, out=out),
         lambda g, s, out: fastact.rrelu_backward(g, s, out=out)),
        ("rrelu-train", lambda x, out: fastact.rrelu(x, training=True, seed=5, out=out),
         lambda g, s, out: fastact.rrelu_backward(g, s, training=True, seed=5, out=out)),
        ("gelu", lambda x, out: fastact.gelu(x, "tanh", out=out),
         lambda g, s, out: fastact.gelu_backward(g, s, "tanh", out=out)),
        ("softmax", lambda x, out: fastact.softmax(x, out=out),
         lambda g, s, out: fastact.softmax_backward(g, s, out=out)),
        ("log_softmax", lambda x, out: fastact.log_softmax(x, out=out),
         lambda g, s, out: fastact.log_softmax_backward(g, s, out=out)),
        ("prelu", lambda x, out: fastact.prelu(x, w, out=out),
         lambda g, s, out: fastact.prelu_backward(g, s, w, out=out)[0]),
    ]  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_in_place_disjoint_and_overlapping(dtype):
    x, g, cases = _cases(dtype)
    for name, fwd, bwd in cases:
        with general_only():
            want_y = fwd(x.copy(), None)
            want_g = bwd(g.copy(), want_y.copy(), None)
        # in place, into a disjoint array
        with fast_only():
            a = x.copy()
            assert fwd(a, a) is a
            same(a, want_y)
            o = np.empty_like(x)
            assert fwd(x.copy(), o) is o
            same(o, want_y)
            a, s = g.copy(), want_y.copy()
            assert bwd(a, s, a) is a
            same(a, want_g)
            a, s = g.copy(), want_y.copy()
            assert bwd(a, s, s) is s
            same(s, want_g)
        # partially overlapping out: the general path copies
        buf = np.empty(x.size + 1, dtype)
        buf[1:] = x.reshape(-1)
        with spy() as calls:
            r = fwd(buf[1:].reshape(x.shape), buf[:-1].reshape(x.shape))
        assert len(calls) == 1, name
        same(r, want_y)


# --- validation: the general path's errors, nothing written ------------------

BAD = [
    (lambda x, o: fastact.prelu(x, np.ones(2, x.dtype), out=o), ValueError, "weight has 2"),
    (lambda x, o: fastact.prelu(x, np.ones((3, 1), x.dtype), out=o), ValueError, "0-d or 1-d"),
    (lambda x, o: fastact.prelu(x, np.array(["a"] * 3), out=o), TypeError, "weight must be"),
    (lambda x, o: fastact.prelu(x.reshape(-1), np.ones(3, x.dtype), out=o.reshape(-1)),
     ValueError, "expected 1 or 1"),
    (lambda x, o: fastact.prelu_backward(x, x[:1], 0.25, out=o), ValueError, "saved has shape"),
    (lambda x, o: fastact.prelu_backward(x, x, np.ones(4, x.dtype), out=o), ValueError,
     "weight has 4"),
    (lambda x, o: fastact.rrelu(x, training=True, seed=-1, out=o), ValueError, "seed must be in"),
    (lambda x, o: fastact.rrelu(x, training=True, seed=2**64, out=o), ValueError, "seed must be"),
    (lambda x, o: fastact.rrelu(x, training=True, seed=1.5, out=o), TypeError, "seed must be"),
    (lambda x, o: fastact.rrelu(x, seed=1.5, out=o), TypeError, "seed must be an integer"),
    (lambda x, o: fastact.rrelu(x, seed=True, out=o), TypeError, "seed must be an integer"),
    (lambda x, o: fastact.rrelu(x, 0.5, 0.1, training=True, seed=1, out=o), ValueError,
     "lower must be <= upper"),
    (lambda x, o: fastact.rrelu(x, "0.1", out=o), TypeError, "lower must be a real number"),
    (lambda x, o: fastact.rrelu_backward(x, x, training=True, out=o), ValueError, "needs the seed"),
    (lambda x, o: fastact.rrelu_backward(x, x, -0.1, 0.2, seed=3, out=o), ValueError,
     "lower must be >= 0"),
    (lambda x, o: fastact.gelu(x, "exact", out=o), ValueError, "approximate must be 'none'"),
    (lambda x, o: fastact.gelu(x, 1.0, out=o), ValueError, "approximate must be"),
    (lambda x, o: fastact.gelu(x, ["tanh"], out=o), ValueError, "approximate must be"),
    (lambda x, o: fastact.gelu_backward(x, x, "Tanh", out=o), ValueError, "approximate must be"),
    (lambda x, o: fastact.softmax(x, 1.5, out=o), TypeError, "axis must be an integer"),
    (lambda x, o: fastact.softmax(x, True, out=o), TypeError, "axis must be an integer"),
    (lambda x, o: fastact.softmax(x, 3, out=o), ValueError, "out of bounds"),
    (lambda x, o: fastact.log_softmax_backward(x, x[:1], out=o), ValueError, "saved has shape"),
    (lambda x, o: fastact.softmax(x, out=o.astype(np.float16)), TypeError, "out has dtype"),
    (lambda x, o: fastact.prelu(x, 0.25, out=o[:1]), ValueError, "out has shape"),
    (lambda x, o: fastact.rrelu(x, out=list(o)), TypeError, "out must be a numpy.ndarray"),
]  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(len(BAD)))
def test_errors_name_the_argument_and_write_nothing(dtype, case):
    call, exc, match = BAD[case]
    x = data((2, 3, 4), dtype)
    out = np.full(x.shape, 7, dtype)
    with pytest.raises(exc, match=match):
        call(x, out)
    assert (out == 7).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_read_only_out(dtype):
    x = data((2, 3, 4), dtype)
    ro = np.full(x.shape, 7, dtype)
    ro.flags.writeable = False
    for call in (
        lambda: fastact.prelu(x, 0.25, out=ro),
        lambda: fastact.prelu_backward(x, x, np.ones(3, dtype), out=ro),
        lambda: fastact.rrelu(x, training=True, seed=1, out=ro),
        lambda: fastact.gelu(x, "tanh", out=ro),
        lambda: fastact.softmax_backward(x, x, out=ro),
    ):
        with pytest.raises(ValueError, match="read-only"):
            call()
    assert (ro == 7).all()


# --- the serial size limit ---------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_not_taken_from_the_serial_limit(dtype):
    di = DTYPES.index(dtype)
    calls_of = {
        "prelu": (
            lambda x: fastact.prelu(x, 0.25),
            lambda x: fastact.prelu_backward(x, x, 0.25),
        ),
        "rrelu": (
            lambda x: fastact.rrelu(x, training=True, seed=3),
            lambda x: fastact.rrelu_backward(x, x, training=True, seed=3),
        ),
        "gelu": (lambda x: fastact.gelu(x, "tanh"), lambda x: fastact.gelu_backward(x, x, "tanh")),
        "softmax": (lambda x: fastact.softmax(x), lambda x: fastact.softmax_backward(x, x)),
    }
    for name, (fwd, bwd) in calls_of.items():
        for p, fn in enumerate((fwd, bwd)):
            limit = _dispatch.pushed().limits[0, p, di, kid(name)]
            assert limit == TEST_SERIAL_BELOW
            x = np.abs(data((limit - 1,), dtype))
            with spy() as calls:
                fn(x)
            assert calls == [], name
            x = np.abs(data((limit,), dtype))
            with spy() as calls, fastact.config(num_threads=2):
                fn(x)
                t = _dispatch.fast_threads(
                    fastact.activation(name), ("forward", "backward")[p], x.dtype, limit
                )
            # from the limit: the general path, or the OpenMP driver from C; never serial
            assert t != 1 and len(calls) == (t == 0), name


def test_fast_path_off_for_another_backend():
    x = data((10,), np.float32)
    with fastact.config(backend="numpy"), spy() as calls:
        fastact.prelu(x, 0.25)
        fastact.softmax(x)
        fastact.gelu(x, "tanh")
        fastact.rrelu(x, training=True, seed=1)
    assert calls == ["channel_forward", "rowwise_forward", "forward", "forward"]


def test_explain_mentions_the_fast_path():
    for name in ("prelu", "rrelu", "softmax", "gelu"):
        ex = fastact.explain(name, np.ones(100, np.float32))
        assert any("fast path" in r for r in ex.reasons), name


# --- above the serial size: the parallel calls of elementwise entries ---------------

ELEMENTWISE_CALLS = {
    "relu": (lambda x: fastact.relu(x), lambda g, x: fastact.relu_backward(g, x)),
    "sigmoid": (lambda x: fastact.sigmoid(x), lambda g, y: fastact.sigmoid_backward(g, y)),
    "gelu": (
        lambda x: fastact.gelu(x, "tanh"),
        lambda g, x: fastact.gelu_backward(g, x, "tanh"),
    ),
    "rrelu": (
        lambda x: fastact.rrelu(x, training=True, seed=5),
        lambda g, x: fastact.rrelu_backward(g, x, training=True, seed=5),
    ),
}


@contextlib.contextmanager
def threads(n: int):
    old = fastact.get_num_threads()
    fastact.set_num_threads(n)
    try:
        yield
    finally:
        fastact.set_num_threads(old)


@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(ELEMENTWISE_CALLS))
def test_large_elementwise_calls_take_the_fast_path(name, dtype, n_threads):
    """With a thread count in force (set_num_threads, no config block), elementwise
    calls of any size take the fast path: serial with one thread, the OpenMP driver
    with more; the general path's bits either way, in place too."""
    if n_threads > 1 and not _dispatch.c_parallel():
        pytest.skip("the C extension is built without OpenMP")
    fwd, bwd = ELEMENTWISE_CALLS[name]
    x = data((3 * TEST_SERIAL_BELOW + 5,), dtype)
    g = data(x.shape, dtype, seed=1)
    with threads(n_threads):
        same(*both(fwd, x))
        same(*both(bwd, g, x))
        with fast_only():
            inplace = x.copy()
            fastact.relu(inplace, out=inplace)
        np.testing.assert_array_equal(inplace, np.maximum(x, 0))


@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("dtype", DTYPES + HALF)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("rows", [1, 7, 40])
def test_large_rowwise_calls_take_the_fast_path(name, dtype, n_threads, rows):
    """Rowwise calls along the last axis too: serial with one thread, blocks of rows
    (or the segments of fewer long rows) on the OpenMP driver with more; the general
    path's bits, and the same bits for every thread count."""
    if n_threads > 1 and not _dispatch.c_parallel():
        pytest.skip("the C extension is built without OpenMP")
    fwd, bwd = getattr(fastact, name), getattr(fastact, f"{name}_backward")
    # one row: longer than two segments of a row sum, so that threads share it
    rowlen = (3 * TEST_SERIAL_BELOW) // rows + 5 if rows > 1 else 2 * ROW_SPLIT + 5
    x = data((rows, rowlen), dtype)
    g = data(x.shape, dtype, seed=1)
    with threads(1):
        y1 = fwd(x)
        d1 = bwd(g, y1)
    # 16-bit rows longer than NATIVE_ROW_MAX run float32 blocks on the general path
    taken = not _half.is_half(x.dtype) or rowlen <= _half.NATIVE_ROW_MAX
    with threads(n_threads):
        if taken:
            same(*both(fwd, x))
            same(*both(bwd, g, y1))
        with fast_only() if taken else contextlib.nullcontext():
            assert bits(fwd(x)) == bits(y1)
            assert bits(bwd(g, y1)) == bits(d1)


@needs_openmp
def test_a_config_thread_count_takes_the_fast_path_with_its_own_count():
    """A call inside a config block that sets a thread count runs the compiled path
    with that count (read from the block's context), one outside any block with the
    count in force, while the block is open in this thread or in another; the
    general path's bits either way."""
    x = data((2 * TEST_SERIAL_BELOW,), np.float32)
    entry = fastact.activation("sigmoid")
    with threads(2):
        with general_only():
            want = fastact.sigmoid(x)
        for n in (1, 2):
            with fastact.config(num_threads=n), fast_only():
                assert bits(fastact.sigmoid(x)) == bits(want)
                assert _dispatch.fast_threads(entry, "forward", x.dtype, x.size) == n
                with fastact.config(backend="cython"):  # nested: the count stays
                    assert _dispatch.fast_threads(entry, "forward", x.dtype, x.size) == n
        seen = {}
        opened, release = threading.Event(), threading.Event()

        def block():
            with fastact.config(num_threads=1):
                opened.set()
                release.wait(10)
                seen["inside"] = _dispatch.fast_threads(entry, "forward", x.dtype, x.size)

        t = threading.Thread(target=block)
        t.start()
        try:
            assert opened.wait(10)
            assert _dispatch.pushed().block_threads == 2
            seen["outside"] = _dispatch.fast_threads(entry, "forward", x.dtype, x.size)
            with fast_only():
                assert bits(fastact.sigmoid(x)) == bits(want)
        finally:
            release.set()
            t.join()
        assert seen == {"inside": 1, "outside": 2}
    assert _dispatch.pushed().block_threads == 0


def test_a_config_block_without_a_count_keeps_the_count_in_force():
    """A block that sets only a backend leaves the count in force to the fast path."""
    x = data((2 * TEST_SERIAL_BELOW,), np.float32)
    entry = fastact.activation("sigmoid")
    with threads(1), fastact.config(backend="cython"):
        assert _dispatch.fast_threads(entry, "forward", x.dtype, x.size) == 1
        assert _dispatch.pushed().block_threads == 0


def test_parallel_calls_share_the_threads():
    """The count of parallel calls running now, shared by the fast and general paths."""
    assert _kernels.par_enter(4) == 4
    try:
        assert _kernels.par_enter(4) == 2
        _kernels.par_exit()
        with _dispatch.running(4) as share:
            assert share == 2
    finally:
        _kernels.par_exit()
    with _dispatch.running(4) as share:
        assert share == 4


@needs_openmp
def test_a_parallel_fast_call_with_a_share_of_one_thread_leaves_the_count():
    x = data((2 * TEST_SERIAL_BELOW,), np.float32)
    _kernels.par_enter(2)  # another parallel call running: this one gets 2 // 2 = 1 thread
    try:
        with threads(2), fast_only():
            fastact.sigmoid(x)
            fastact.sigmoid_backward(x, x)
    finally:
        _kernels.par_exit()
    assert _kernels.par_enter(4) == 4
    _kernels.par_exit()


@needs_openmp
def test_a_parallel_fast_call_counts_for_fork_safety():
    x = data((2 * TEST_SERIAL_BELOW,), np.float32)
    with threads(2), fast_only():
        fastact.sigmoid(x)
    assert _kernels.parallel_used()


@needs_openmp
def test_explain_mentions_the_parallel_fast_path():
    x = np.empty(3 * TEST_SERIAL_BELOW, np.float32)
    with threads(2):
        assert any("OpenMP driver from C" in r for r in fastact.explain("sigmoid", x).reasons)
        with fastact.config(num_threads=2):
            assert any("OpenMP driver from C" in r for r in fastact.explain("sigmoid", x).reasons)
        with fastact.config(num_threads=1):
            assert any("fast path, serial" in r for r in fastact.explain("sigmoid", x).reasons)
        # rowwise calls too: blocks of rows on the OpenMP driver
        assert any("OpenMP driver from C" in r for r in fastact.explain("softmax", x).reasons)
    with threads(1):
        assert any("fast path" in r for r in fastact.explain("sigmoid", x).reasons)
