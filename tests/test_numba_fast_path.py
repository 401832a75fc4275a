"""Serial calls on the Numba backend through the compiled fast path.

With ``backend="numba"`` (or Numba as the plan's serial backend) a plain
serial call of an elementwise, rowwise or per-channel entry runs Numba's compiled kernels
from C, by the address the Numba backend handed over when it compiled it.
Each case runs through the fast path (the general path patched to fail) and
through the general path (the fast path off), bit for bit: every entry,
both dtypes (and float16, bfloat16), both passes, rrelu's training mode, prelu's
layouts and weight gradient, ``out=``, in place; and the
general path's errors, the routes while ``config`` blocks choose another
backend, explain, and a process without the compiled extension.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastact
from fastact import _dispatch, _half, _profile
from fastact._profile import Plan
from tests.conftest import BACKENDS, ENTRIES, TEST_SERIAL_BELOW, Call, example_params
from tests.test_fast_path import (
    BAD,
    HALF,
    PRELU_CASES,
    _weight,
    both,
    data,
    fast_limit,
    fast_only,
    general_only,
    same,
    spy,
)

pytestmark = pytest.mark.skipif(
    not {"cython", "numba"} <= set(BACKENDS), reason="needs the Cython and Numba backends"
)

NUMBA_FAST = [e for e in ENTRIES if _dispatch.kind_of(e) in _dispatch.NUMBA_FAST_KINDS]
DTYPES = [np.float32, np.float64]
SFX = {np.float32: "f32", np.float64: "f64"}

if {"cython", "numba"} <= set(BACKENDS):
    from fastact._backends.cython import _kernels
    from fastact._backends.numba import BACKEND as NUMBA


@contextlib.contextmanager
def backend(name: str):
    old = fastact.get_backend()
    fastact.set_backend(name)
    try:
        yield
    finally:
        fastact.set_backend(old)


@pytest.fixture
def on_numba():
    with backend("numba"):
        yield


def shape_of(entry) -> tuple:
    return (5, 7) if entry.rowwise else (37,)


def calls_of(entry):
    """Call objects over the entry's parameter sets (and rrelu's training mode)."""
    for params in example_params(entry):
        yield Call(entry, params)
        if entry.has_training_mode:
            yield Call(entry, params, training=True, seed=99)


def check_the_general_paths_bits(entry, x, g) -> None:
    """Every call of ``entry`` on ``x`` (and ``g`` backward) takes the fast path with the
    general path's bits: out of place, into ``out``, in place and into the saved array."""
    for call in calls_of(entry):
        y, want = both(call.forward, x)
        same(y, want)
        s = call.saved(x, want)
        fast_g, want_g = both(call.backward, g, s)
        same(fast_g, want_g)
        with fast_only():
            a = x.copy()
            assert call.forward(a, out=a) is a
            same(a, want)
            o = np.empty_like(x)
            assert call.forward(x, out=o) is o
            same(o, want)
            a = g.copy()
            assert call.backward(a, s.copy(), out=a) is a
            same(a, want_g)
            b = s.copy()
            assert call.backward(g, b, out=b) is b
            same(b, want_g)


@pytest.mark.parametrize("dtype", DTYPES + HALF, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("entry", NUMBA_FAST, ids=lambda e: e.name)
def test_the_general_paths_bits(entry, dtype, on_numba):
    """Also 16-bit arrays, which run Numba's kernels for the format (elementwise, row
    backwards) or its float32 row forward on rows widened in C."""
    half = {"float16": ("f32", "f16"), "bfloat16": ("f32", "bf16")}.get(np.dtype(dtype).name)
    NUMBA.compile(entry, dtypes=half or (SFX[dtype],))
    x = data(shape_of(entry), dtype)
    check_the_general_paths_bits(entry, x, data(x.shape, dtype, seed=1))


PARALLEL = [e for e in NUMBA_FAST if not e.channel_param]


def test_the_route_bits_are_the_extensions():
    """The dispatch table's bits for Numba's calls are the ones the fast path reads."""
    assert (_dispatch.NUMBA_SERIAL, _dispatch.NUMBA_PARALLEL) == (
        _kernels.NUMBA_SERIAL,
        _kernels.NUMBA_PARALLEL,
    )
    assert _dispatch.NUMBA_SERIAL & _dispatch.NUMBA_PARALLEL == 0


needs_openmp = pytest.mark.skipif(
    not _dispatch.c_parallel(), reason="the C extension is built without OpenMP"
)


@needs_openmp
@pytest.mark.parametrize("dtype", DTYPES + HALF, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("entry", PARALLEL, ids=lambda e: e.name)
def test_parallel_calls_run_numbas_kernels_on_the_openmp_driver(entry, dtype, on_numba):
    """Above the plan's size, on two threads, the fast path runs Numba's kernel (the
    format's own for 16-bit arrays where it has one) on the OpenMP driver's chunks, or
    blocks of rows: the bits of the general path (Numba's drivers), out of place, in
    place and into the saved array, special values at the chunks' edges and in the tail;
    without the kernel's address in its table, the general path runs."""
    half = {"float16": ("f32", "f16"), "bfloat16": ("f32", "bf16")}.get(np.dtype(dtype).name)
    NUMBA.compile(entry, dtypes=half or (SFX[dtype],))
    shape = (331, 53) if entry.rowwise else (2 * TEST_SERIAL_BELOW + 37,)
    n = int(np.prod(shape))
    x = data(shape, dtype)
    g = data(shape, dtype, seed=1)
    for k in (n // 2 - 1, n // 2, n // 2 + 1, n - 1):  # about the chunk edge, the tail
        x.flat[k], g.flat[k] = np.nan, np.inf
    old = fastact.get_num_threads()
    fastact.set_num_threads(2)
    try:
        assert _dispatch.fast_threads(entry, "forward", dtype, n) == 2
        check_the_general_paths_bits(entry, x, g)
        # the fast path's dtype index: float32, float64, then the 16-bit formats' own
        # kernels (16-bit row forwards run float32's on widened rows)
        d = _dispatch.DTYPES.index(_half.compute_dtype(np.dtype(dtype)).name)
        index = len(_dispatch.DTYPES) + _half.fmt(dtype) - 1 if half and not entry.rowwise else d
        slot = _kernels.NUMBA_KINDS.index("rfwd" if entry.rowwise else "fwd")
        addr = _kernels.numba_kernel(slot, index, entry.kernel_id)
        assert addr != 0
        _kernels.set_numba_kernel(slot, index, entry.kernel_id, 0)
        try:
            with spy() as calls:
                Call(entry, next(iter(example_params(entry)))).forward(x)
            assert calls == ["rowwise_forward" if entry.rowwise else "forward"]
        finally:
            _kernels.set_numba_kernel(slot, index, entry.kernel_id, addr)
    finally:
        fastact.set_num_threads(old)


@needs_openmp
@pytest.mark.parametrize("dtype", DTYPES + HALF, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(
    "shape, kind", [((8, 3, 20, 30), "C"), ((30001,), "float"), ((4, 2, 2100), "1")]
)
def test_parallel_prelu_forwards_run_numbas_kernels(dtype, shape, kind, on_numba):
    """Above the plan's size, on two threads, prelu runs Numba's per-channel kernels (the
    format's own for 16-bit arrays) on the OpenMP driver: the forward's units, the
    backward's blocks (their partial sums added in block order); the general path's
    bits, out of place and in place."""
    x = data(shape, dtype)
    g = data(shape, dtype, seed=4)
    w = _weight(kind, shape, dtype, np.random.default_rng(len(shape)))
    old = fastact.get_num_threads()
    fastact.set_num_threads(2)
    try:
        # the first calls compile the kernels (out of place, in place) on the general path
        fastact.prelu(x, w)
        fastact.prelu(x.copy(), w, out=x.copy())
        b = x.copy()
        fastact.prelu(b, w, out=b)
        fastact.prelu_backward(g, x, w)
        y, want = both(fastact.prelu, x, w)
        same(y, want)
        with fast_only():
            a = x.copy()
            assert fastact.prelu(a, w, out=a) is a
            same(a, want)
        assert "calling Numba's compiled kernel" in str(fastact.explain("prelu", x))
        got, want = both(fastact.prelu_backward, g, x, w)
        same(got, want)
        with fast_only():
            fastact.prelu_backward(g, x, w)
    finally:
        fastact.set_num_threads(old)


def test_numbas_kernel_runs_and_a_missing_one_takes_the_general_path(on_numba):
    """The fast path calls the address in its table: without one, the general path runs,
    and compiling the kernel hands its address over."""
    relu = fastact.activation("relu")
    x = data((16,), np.float32)
    want = fastact.relu(x)
    slot = _kernels.NUMBA_KINDS.index("fwd")
    addr = _kernels.numba_kernel(slot, 0, relu.kernel_id)
    assert addr == NUMBA.kernel(relu, "fwd", "f32") != 0
    key = ("relu", "fwd", "f32")
    kept = NUMBA._addr.pop(key), NUMBA._kernels.pop(key)
    _kernels.set_numba_kernel(slot, 0, relu.kernel_id, 0)
    try:
        assert "once a first call" in str(fastact.explain("relu", x))
        with spy() as calls:
            same(fastact.relu(x), want)  # the general path compiles it again
        assert calls == ["forward"]
        assert _kernels.numba_kernel(slot, 0, relu.kernel_id) == NUMBA._addr[key] != 0
        with spy() as calls:
            same(fastact.relu(x), want)
        assert calls == []
    finally:
        NUMBA._addr[key], NUMBA._kernels[key] = kept
        _kernels.set_numba_kernel(slot, 0, relu.kernel_id, addr)


@pytest.mark.parametrize("kind", ["rfwd_ip", "rbwd_ip", "fwdv", "bwdv_ip", "pgrad", "pgradv"])
def test_row_twins_and_per_channel_kernels_are_handed_over(kind, on_numba):
    """In-place row calls run the in-place twin (two equal pointers would keep the
    plain kernel's loops scalar) and prelu its per-channel kernels: the backend hands
    their addresses to the fast path's table as it compiles them."""
    entry = fastact.activation("prelu" if kind.startswith(("fwdv", "bwdv", "pgrad")) else "softmax")
    addr = NUMBA.kernel(entry, kind, "f32")
    assert _kernels.numba_kernel(_kernels.NUMBA_KINDS.index(kind), 0, entry.kernel_id) == addr != 0


def test_the_table_refuses_slots_out_of_range():
    # dtype indices: float32, float64, then the 16-bit formats float16 and bfloat16
    slots = len(_kernels.NUMBA_KINDS)
    for args in [
        (-1, 0, 0),
        (slots, 0, 0),
        (slots, 3, 0),
        (0, 4, 0),
        (0, -1, 0),
        (0, 0, len(ENTRIES)),
    ]:
        with pytest.raises(ValueError, match="out of range"):
            _kernels.set_numba_kernel(*args, 0)
        with pytest.raises(ValueError, match="out of range"):
            _kernels.numba_kernel(*args)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("case", range(len(BAD)))
def test_errors_name_the_argument_and_write_nothing(dtype, case, on_numba):
    call, exc, match = BAD[case]
    x = data((2, 3, 4), dtype)
    out = np.full(x.shape, 7, dtype)
    with pytest.raises(exc, match=match):
        call(x, out)
    assert (out == 7).all()


def test_serial_below_the_plans_size_parallel_above(on_numba):
    """Serial calls run from C; above the plan's size elementwise and rowwise calls, and
    per-channel forwards, run Numba's kernels on the OpenMP driver from C (where the
    extension has OpenMP), and with one thread in force every size is serial (the
    general path's decision)."""
    x = data((TEST_SERIAL_BELOW - 1,), np.float32)
    fastact.sigmoid(x)
    with spy() as calls:
        fastact.sigmoid(x)
    assert calls == []
    big = data((TEST_SERIAL_BELOW + 5,), np.float32)
    rows = data(((TEST_SERIAL_BELOW + 5) // 5, 5), np.float32)
    sigmoid = fastact.activation("sigmoid")
    old = fastact.get_num_threads()
    try:
        fastact.set_num_threads(2)
        fastact.softmax(rows)
        with spy() as calls:
            fastact.sigmoid(big)
            fastact.softmax(rows)
            fastact.prelu(rows, 0.25)
        openmp = _dispatch.c_parallel()
        assert calls == ([] if openmp else ["forward", "rowwise_forward", "channel_forward"])
        assert _dispatch.fast_threads(sigmoid, "forward", np.float32, big.size) == 2 * openmp
        if openmp:
            assert _dispatch.fast_numba(sigmoid, "forward", np.float32, parallel=True)
        fastact.set_num_threads(1)
        with spy() as calls:
            fastact.sigmoid(big)
        assert calls == []
    finally:
        fastact.set_num_threads(old)


@pytest.mark.parametrize("dtype", DTYPES + HALF, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape, kind", PRELU_CASES)
def test_prelu_runs_numbas_kernels_from_c(dtype, shape, kind, on_numba):
    """prelu's serial calls run Numba's per-channel kernels from C, unit by unit and
    block by block as its drivers: the general path's bits, the weight gradient's
    included, out of place and in place; 16-bit arrays by the format's kernels, as the
    Numba backend's drivers run them."""
    rng = np.random.default_rng(len(shape))
    x = data(shape, dtype)
    g = data(shape, dtype, seed=1)
    w = _weight(kind, shape, dtype, rng)
    # the first calls compile the kernels they need, on the general path
    fastact.prelu(x, w)
    fastact.prelu(x.copy(), w, out=np.empty_like(x))
    a = x.copy()
    fastact.prelu(a, w, out=a)
    fastact.prelu_backward(g, x, w)
    a = g.copy()
    fastact.prelu_backward(a, x, w, out=a)
    same(*both(fastact.prelu, x, w))
    same(*both(fastact.prelu_backward, g, x, w))
    with fast_only():
        a = x.copy()
        assert fastact.prelu(a, w, out=a) is a
        same(a, fastact.prelu(x, w))
        a = g.copy()
        gx, gw = fastact.prelu_backward(a, x, w, out=a)
        assert gx is a
    with general_only():
        same((gx, gw), fastact.prelu_backward(g, x, w))
    assert any(
        "calling Numba's compiled kernel from C" in r for r in fastact.explain("prelu", x).reasons
    )


def test_16_bit_prelu_longer_than_a_block_runs_from_c(on_numba):
    """The formats' per-channel kernels take an array of any length from C (no float32
    blocks): the general path's bits, the weight gradient's included."""
    x = data((2, 4, _half.BLOCK // 8 + 1), np.float16)
    g = data(x.shape, np.float16, seed=1)
    w = np.array([0.25, -0.5, 1.5, 2.0], np.float32)
    with fast_limit("prelu", 10**6):
        fastact.prelu(x, w), fastact.prelu_backward(g, x, w)  # compiles them
        with spy() as calls:
            got = fastact.prelu(x, w), fastact.prelu_backward(g, x, w)
        assert calls == []
        with general_only():
            same(got, (fastact.prelu(x, w), fastact.prelu_backward(g, x, w)))


def test_explain_names_numbas_kernel(on_numba):
    for name in ("relu", "softmax"):
        x = np.ones((2, 8), np.float32)
        getattr(fastact, name)(x)
        ex = fastact.explain(name, x)
        assert ex.backend == "numba"
        assert any(
            "fast path, serial, calling Numba's compiled kernel from C" in r for r in ex.reasons
        )
    with backend("cython"):
        assert not any("Numba" in r for r in fastact.explain("relu", x).reasons)


def test_config_blocks_run_their_own_backend_on_the_fast_path(on_numba):
    """A config block is seen by its own thread only: a call inside one takes the fast
    path on the block's backend, the calls outside keep the backend set, and a block of
    a backend the fast path does not run (numpy) sends only its own calls to the
    general path."""
    relu = fastact.activation("relu")
    x = data((16,), np.float32)
    want = fastact.relu(x)
    with spy() as calls, fastact.config(backend="cython"):
        same(fastact.relu(x), want)
        assert _dispatch.fast_numba(relu, "forward", np.float32) is None
        assert "Numba" not in str(fastact.explain("relu", x))
    assert calls == []
    with spy() as calls, fastact.config(backend="numba"):
        same(fastact.relu(x), want)
    assert calls == []
    with backend("auto"), spy() as calls, fastact.config(backend="numba"):
        same(fastact.relu(x), want)
        assert _dispatch.fast_numba(relu, "forward", np.float32) == "compiled"
        assert fastact.explain("relu", x).backend == "numba"
    assert calls == []
    with spy() as calls, fastact.config(backend="numpy"):
        same(fastact.relu(x), want)
        assert _dispatch.fast_threads(relu, "forward", np.float32, 16) == 0
        assert _dispatch.fast_numba(relu, "forward", np.float32) is None
        outside = threading.Thread(target=fastact.relu, args=(x,))  # a context of its own
        outside.start()
        outside.join()
    assert calls == ["forward"]
    assert _dispatch.pushed().block_backends == ()


@pytest.fixture
def profile_path(tmp_path, monkeypatch):
    p = tmp_path / "profile.json"
    monkeypatch.setenv("FASTACT_PROFILE", str(p))
    yield p
    monkeypatch.undo()  # back to the session's test profile
    _dispatch.load_profile()


def test_auto_runs_numba_where_it_is_the_plans_serial_backend(profile_path):
    plans = {"relu/forward/float32": Plan(serial_below=1000, small="numba", large="cython")}
    _profile.save(plans, profile_path)
    _dispatch.load_profile()
    relu = fastact.activation("relu")
    x = data((100,), np.float32)
    with backend("auto"):
        fastact.relu(x)
        assert _dispatch.pushed().numba[0, 0, relu.kernel_id]
        assert _dispatch.pushed().numba.sum() == 1
        with fast_only():
            same(fastact.relu(x), np.where(x < 0, np.float32(0), x))  # relu(-0) = -0
        ex = fastact.explain("relu", x)
        assert ex.backend == "numba" and "Numba's compiled kernel" in str(ex)
        with backend("cython"):
            assert not _dispatch.pushed().numba.any()
            assert _dispatch.fast_threads(relu, "forward", np.float32, 100) == 0


def test_without_the_compiled_extension(tmp_path):
    """backend="numba" runs every call on the general path, with the same bits."""
    code = (
        "import sys; sys.modules['fastact._backends.cython._kernels'] = None\n"
        "import numpy as np, fastact\n"
        "from fastact._api import fast\n"
        "assert fast.forward is fast.decline and 'cython' not in fastact.backends()\n"
        "fastact.set_backend('numba')\n"
        "x = np.linspace(-4, 4, 16, dtype=np.float32)\n"
        "rs = [fastact.relu(x), fastact.gelu_backward(x, x), fastact.softmax(x.reshape(2, 8)),\n"
        "      fastact.sigmoid(x.astype(np.float64))]\n"
        "print(' '.join(r.tobytes().hex() for r in rs))\n"
        "print('fast path' in str(fastact.explain('relu', x)))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    x = np.linspace(-4, 4, 16, dtype=np.float32)
    with backend("numba"):
        rs = [
            fastact.relu(x),
            fastact.gelu_backward(x, x),
            fastact.softmax(x.reshape(2, 8)),
            fastact.sigmoid(x.astype(np.float64)),
        ]
    assert run.stdout.split() == [r.tobytes().hex() for r in rs] + ["False"]


@pytest.mark.parametrize("threads", [1, 2])
def test_the_fast_path_decides_as_the_general_path(threads, on_numba):
    """Where the fast path takes a plain call on the Numba backend, decide picks Numba
    with the same thread count; it leaves the general path the calls from the plan's size
    where the extension has no OpenMP."""
    old = fastact.get_num_threads()
    fastact.set_num_threads(threads)
    try:
        for entry in ENTRIES:
            for pass_ in _dispatch.PASSES:
                for dtype in (*_dispatch.DTYPES, *HALF):
                    for n in (1, 100, TEST_SERIAL_BELOW - 1, TEST_SERIAL_BELOW, 70_001):
                        fast = _dispatch.fast_threads(entry, pass_, dtype, n)
                        backend, nthreads = _dispatch.decide(entry, pass_, np.dtype(dtype), n)
                        assert backend.name == "numba"
                        if fast:
                            assert fast == nthreads, (entry, pass_, n)
                            assert _dispatch.fast_numba(entry, pass_, dtype, fast > 1)
                        elif entry in NUMBA_FAST:
                            assert nthreads > 1 and not _dispatch.c_parallel(), (entry, n)
    finally:
        fastact.set_num_threads(old)


def test_a_profile_choosing_numba_does_not_import_it_at_import(profile_path):
    plans = {"relu/forward/float32": Plan(serial_below=1000, small="numba", large="cython")}
    _profile.save(plans, profile_path)
    code = (
        "import sys, numpy as np, fastact\n"
        "from fastact import _dispatch\n"
        "assert 'numba' not in sys.modules\n"
        "x = np.ones(16, np.float32)\n"
        "fastact.relu(x)\n"
        "print(_dispatch.fast_numba(fastact.activation('relu'), 'forward', x.dtype))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["compiled"]


def test_threads_in_blocks_of_different_backends_at_once(on_numba):
    """Threads each in a config block of another backend (and one in none), calling at the
    same time: each call follows its own block, and every result is the one alone."""
    x = data((64,), np.float32)
    r = data((4, 33), np.float64)
    want = (fastact.tanh(x), fastact.softmax(r), fastact.sigmoid_backward(x, x))
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def run(backend_name):
        try:
            block = (
                fastact.config(backend=backend_name) if backend_name else contextlib.nullcontext()
            )
            with block:
                start.wait()
                for _ in range(300):
                    got = (fastact.tanh(x), fastact.softmax(r), fastact.sigmoid_backward(x, x))
                    for a, b in zip(got, want):
                        np.testing.assert_allclose(a, b, rtol=1e-6, atol=0)
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(b,)) for b in ("numba", "cython", "numpy", None)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
