"""The compiled fast path of bias calls: the epilogue's bits, its errors, its declines.

Each case runs once through the fast path (the general epilogue patched to
fail) and once through the general path (the fast path switched off in its
table), and the results are compared bit for bit: the activation of
``x + bias``, the gradient and the bias gradient, for every elementwise entry,
both dtypes, dense and channel layouts, serial and threaded sizes.  Calls the
fast path does not take (lists, other dtypes, strided or overlapping arrays,
unusual axes) must reach the general path and give its result; bad input
raises the general path's error naming the argument, and writes nothing.
"""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

import fastact
from fastact import _dispatch
from fastact.table import TABLE
from tests.conftest import BACKENDS, TEST_SERIAL_BELOW
from tests.test_fast_path import DTYPES, data, general_only, same, threads
from tests.test_fast_path import fast_only as path_fast_only
from tests.test_fast_path import spy as path_spy

pytestmark = pytest.mark.skipif("cython" not in BACKENDS, reason="the Cython backend is not built")

GENERAL = ("bias_forward", "bias_backward")
ENTRIES = [e for e in TABLE if not e.rowwise and not e.channel_param]


def fast_only():
    """Fail if the general epilogue runs inside the block."""
    return path_fast_only(GENERAL)


def spy():
    """Names of the general epilogue's functions called inside the block."""
    return path_spy(GENERAL)


def calls(entry, **kw):
    """(forward(x, b, out), backward(g, x, b, out)) of ``entry``; the backward
    forms its ``saved`` from x as the entry saves it."""
    f = getattr(fastact, entry.name)
    fb = getattr(fastact, entry.name + "_backward")
    p = {**{q.name: q.example for q in entry.scalar_params if q.default is None}, **kw}

    def fwd(x, b, out=None, axis=-1):
        return f(x, bias=b, bias_axis=axis, out=out, **p)

    def bwd(g, saved, b, out=None, axis=-1):
        return fb(g, saved, bias=b, bias_axis=axis, out=out, **p)

    def saved(x, b, axis):
        with general_only():
            return x if entry.saves == "input" else fwd(x, b, None, axis)

    return fwd, bwd, saved


def compare(fwd, bwd, saved, x, g, b, axis):
    """The fast path's results against the general path's, bit for bit; the bias
    and the inputs left as they were."""
    s = saved(x, b, axis)
    keep = b.copy(), x.copy(), g.copy(), s.copy()
    with fast_only():
        fast = fwd(x, b, None, axis), bwd(g, s, b, None, axis)
    with general_only():
        general = fwd(x, b, None, axis), bwd(g, s, b, None, axis)
    same(fast[0], general[0])
    same(fast[1], general[1])
    for a, k in zip((b, x, g, s), keep):
        same(a, k)


LAYOUTS = [((7, 13), -1), ((1000,), 0), ((2, 3, 4, 5), 1), ((4, 64, 20), 1), ((3, 2, 40), 2)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, axis", LAYOUTS)
@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_same_bits_as_the_general_path(entry, dtype, shape, axis):
    x = data(shape, dtype)
    g = data(shape, dtype, seed=1)
    b = data((shape[axis],), dtype, seed=2)
    compare(*calls(entry), x, g, b, axis)


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["relu", "gelu", "elu", "hardtanh"])
@pytest.mark.parametrize("layout", ["dense", "nchw"])
def test_threaded_sizes(name, dtype, n_threads, layout):
    """Above the serial limit: the OpenMP driver with the same blocks and order."""
    entry = next(e for e in TABLE if e.name == name)
    n = 3 * TEST_SERIAL_BELOW + 64
    shape, axis = ((n // 64, 64), -1) if layout == "dense" else ((3, 8, n // 24), 1)
    x = data(shape, dtype)
    g = data(shape, dtype, seed=1)
    b = data((shape[axis],), dtype, seed=2)
    with threads(n_threads):
        compare(*calls(entry), x, g, b, axis)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", [0, 12345, 2**64 - 1])
def test_rrelu_training_with_a_seed(dtype, seed):
    entry = next(e for e in TABLE if e.name == "rrelu")
    x = data((9, 33), dtype)
    compare(
        *calls(entry, training=True, seed=seed),
        x,
        data(x.shape, dtype, seed=1),
        data((33,), dtype, seed=2),
        -1,
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_in_place_and_into_out(dtype):
    x = data((5, 16), dtype)
    g = data(x.shape, dtype, seed=1)
    b = data((16,), dtype, seed=2)
    with general_only():
        want_y = fastact.relu(x, bias=b)
        want = fastact.relu_backward(g, want_y, bias=b)
    with fast_only():
        a = x.copy()
        assert fastact.relu(a, bias=b, out=a) is a
        same(a, want_y)
        o = np.empty_like(x)
        assert fastact.relu(x, bias=b, out=o) is o
        same(o, want_y)
        a, s = g.copy(), want_y.copy()
        gi, gb = fastact.relu_backward(a, s, bias=b, out=a)
        assert gi is a
        same((gi, gb), want)
        a, s = g.copy(), want_y.copy()
        gi, gb = fastact.relu_backward(a, s, bias=b, out=s)
        assert gi is s
        same((gi, gb), want)


def _declined():
    """(name, call(x, g, b)) of calls the fast path leaves to the general path."""
    return [
        ("list bias", lambda x, g, b: fastact.relu(x, bias=list(b))),
        ("strided bias", lambda x, g, b: fastact.relu(x, bias=np.repeat(b, 2)[::2])),
        ("int list bias", lambda x, g, b: fastact.relu(x, bias=list(range(b.size)))),
        ("numpy int axis", lambda x, g, b: fastact.relu(x, bias=b, bias_axis=np.int64(-1))),
        ("strided x", lambda x, g, b: fastact.relu(np.repeat(x, 2, 0)[::2], bias=b)),
        ("strided saved", lambda x, g, b: fastact.relu_backward(g, np.repeat(x, 2, 0)[::2], bias=b)),
        ("Fortran out", lambda x, g, b: fastact.relu(x, bias=b, out=np.empty_like(x, order="F"))),
        ("int param", lambda x, g, b: fastact.elu(x, 1, bias=b)),
        ("float16", lambda x, g, b: fastact.relu(x.astype(np.float16), bias=b.astype(np.float16))),
    ]  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(len(_declined())))
def test_declined_calls_reach_the_general_path(dtype, case):
    name, call = _declined()[case]
    x = data((6, 10), dtype)
    g = data(x.shape, dtype, seed=1)
    b = data((10,), dtype, seed=2)
    with general_only():
        want = call(x, g, b)
    with spy() as ran:
        got = call(x, g, b)
    assert ran, name
    same(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bias_sharing_memory_with_out(dtype):
    """A bias inside the output buffer: the general path copies it first."""
    x = data((4, 8), dtype)
    with general_only():
        want = fastact.relu(x, bias=x[0].copy())
    a = x.copy()
    with spy() as ran:
        got = fastact.relu(a, bias=a[0], out=a)
    assert ran
    same(got, want)


BAD = [
    (lambda x, b, o: fastact.relu(x, bias=b.astype(np.float16), out=o), TypeError, "bias has dtype"),
    (lambda x, b, o: fastact.relu(x, bias=b[:-1], out=o), ValueError, "bias has 3 elements"),
    (lambda x, b, o: fastact.relu(x, bias=b.reshape(2, 2), out=o), ValueError, "bias must be 1-d"),
    (lambda x, b, o: fastact.relu(x, bias=b, bias_axis=1.0, out=o), TypeError,
     "bias_axis must be an integer"),
    (lambda x, b, o: fastact.relu(x, bias=b, bias_axis=True, out=o), TypeError,
     "bias_axis must be an integer"),
    (lambda x, b, o: fastact.relu(x, bias=b, bias_axis=3, out=o), ValueError, "out of bounds"),
    (lambda x, b, o: fastact.relu(x, bias=b, bias_axis=-4, out=o), ValueError, "out of bounds"),
    (lambda x, b, o: fastact.relu(x, bias=b, bias_axis=2**70, out=o), ValueError, "out of bounds"),
    (lambda x, b, o: fastact.relu(x, bias=np.array(["a"] * 4), out=o), TypeError, "bias"),
    (lambda x, b, o: fastact.relu(x, bias=b, out=o[:1]), ValueError, "out has shape"),
    (lambda x, b, o: fastact.relu(x, bias=b, out=o.astype(np.float16)), TypeError, "out has dtype"),
    (lambda x, b, o: fastact.relu(x, bias=b, out=list(o)), TypeError, "out must be"),
    (lambda x, b, o: fastact.relu_backward(x, x[:1], bias=b, out=o), ValueError, "saved has shape"),
    (lambda x, b, o: fastact.relu_backward(x, x, bias=b[:2], out=o), ValueError, "bias has 2"),
    (lambda x, b, o: fastact.gelu(x, "exact", bias=b, out=o), ValueError, "approximate must be"),
    (lambda x, b, o: fastact.gelu_backward(x, x, "Tanh", bias=b, out=o), ValueError,
     "approximate must be"),
    (lambda x, b, o: fastact.elu_backward(x, x, -1.0, bias=b, out=o), ValueError, "alpha"),
    (lambda x, b, o: fastact.rrelu(x, training=True, seed=-1, bias=b, out=o), ValueError, "seed"),
    (lambda x, b, o: fastact.rrelu_backward(x, x, training=True, bias=b, out=o), ValueError,
     "needs the seed"),
    (lambda x, b, o: fastact.relu(x[0, 0, 0], bias=b[:1]), ValueError, "0-d"),
]  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(len(BAD)))
def test_errors_name_the_argument_and_write_nothing(dtype, case):
    call, exc, match = BAD[case]
    x = data((2, 3, 4), dtype)
    b = data((4,), dtype, seed=2)
    keep = b.copy()
    out = np.full(x.shape, 7, dtype)
    with pytest.raises(exc, match=match):
        call(x, b, out)
    assert (out == 7).all()
    same(b, keep)


@pytest.mark.parametrize("dtype", DTYPES)
def test_read_only_out(dtype):
    x = data((2, 3, 4), dtype)
    b = data((4,), dtype, seed=2)
    ro = np.full(x.shape, 7, dtype)
    ro.flags.writeable = False
    for call in (
        lambda: fastact.relu(x, bias=b, out=ro),
        lambda: fastact.gelu_backward(x, x, bias=b, out=ro),
    ):
        with pytest.raises(ValueError, match="read-only"):
            call()
    assert (ro == 7).all()


def test_the_blocks_are_the_epilogue_s():
    """The fast path sums the bias gradient in the general path's blocks: a size whose
    block count differs from its neighbours' gives the same bits both ways."""
    from fastact._api import epilogue

    for n, c in [(4096 * 3, 3), (64 * 5 * 7, 5), (4096 * 70, 16), (4096 * 2 - 1, 1)]:
        assert epilogue.blocks(n, c) >= 1
        x = data((n // c, c), np.float32)
        g = data(x.shape, np.float32, seed=1)
        b = data((c,), np.float32, seed=2)
        compare(*calls(next(e for e in TABLE if e.name == "silu")), x, g, b, -1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_numba_as_the_plan_s_serial_backend(dtype):
    """Where the plan runs plain serial calls on Numba, a bias call still takes the fast
    path (the epilogue's Cython kernels, the same bits as the general path)."""
    policy = _dispatch.pushed()
    nb = np.ones_like(policy.numba)
    nb.flags.writeable = False
    _dispatch.push(dataclasses.replace(policy, numba=nb))
    try:
        x = data((6, 40), dtype)
        compare(*calls(next(e for e in TABLE if e.name == "gelu")), x, x[::-1].copy(), x[0], -1)
    finally:
        _dispatch.push(policy)


def _relu_bias_case():
    """x, a bias, and relu(x + bias) by the general path."""
    x = data((6, 40), np.float32)
    b = data((40,), np.float32, seed=2)
    with general_only():
        return x, b, fastact.relu(x, bias=b)


@pytest.mark.skipif("numba" not in BACKENDS, reason="Numba is not installed")
def test_numba_asked_for_takes_the_general_path():
    x, b, want = _relu_bias_case()
    old = fastact.get_backend()
    fastact.set_backend("numba")
    try:
        with spy() as ran:
            got = fastact.relu(x, bias=b)
    finally:
        fastact.set_backend(old)
    assert ran == ["bias_forward"]
    same(got, want)
    with fast_only():
        same(fastact.relu(x, bias=b), want)


@pytest.mark.skipif("numba" not in BACKENDS, reason="Numba is not installed")
def test_numba_asked_for_by_a_block_sends_only_that_blocks_bias_calls_to_the_general_path():
    x, b, want = _relu_bias_case()
    outside: list = []
    with spy() as ran, fastact.config(backend="numba"):
        same(fastact.relu(x, bias=b), want)
        t = threading.Thread(target=lambda: outside.append(fastact.relu(x, bias=b)))
        t.start()
        t.join()
    assert ran == ["bias_forward"]  # the block's call; the other thread's took the fast path
    same(outside[0], want)
