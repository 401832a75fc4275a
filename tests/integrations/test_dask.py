"""fastact on dask arrays: lazy blockwise kernels, computed on a local process cluster."""

from __future__ import annotations

import sys

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import fastact  # noqa: E402
import fastact.dask as fdask  # noqa: E402
from fastact import reference  # noqa: E402
from fastact.table import Activation  # noqa: E402
from tests.conftest import ENTRIES, entry_id  # noqa: E402

ELEMENTWISE = [e for e in ENTRIES if not e.channel_param and not e.rowwise]
ROWWISE = [e for e in ENTRIES if e.rowwise]


@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes: the blocks are pickled to them."""
    cluster = distributed.LocalCluster(
        processes=True,
        n_workers=2,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=":0",  # any free port: 8787 may be taken
    )
    c = distributed.Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


def params_of(entry: Activation) -> dict:
    return {p.name: (p.example if p.default is None else p.default) for p in entry.scalar_params}


def data(shape=(37, 23, 11), dtype=np.float64, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 3, shape)
    x.flat[::13] *= 0.01
    return x.astype(dtype)


# uneven chunks along every axis, few blocks (each task costs ~ms on the cluster)
CHUNKS = (20, 12, 6)


# --- offset seeds (no cluster) ---------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", [0, 1, 12345, 2**63 + 7, 2**64 - 1])
def test_offset_seed_continues_the_stream(seed, dtype):
    u = reference.uniform(seed, 5000, dtype)
    for offset in (0, 1, 17, 999, 4096, 4999):
        got = reference.uniform(fdask.offset_seed(seed, offset), 5000 - offset, dtype)
        np.testing.assert_array_equal(got, u[offset:])
    # and far away (past 2**32 counters: another float32 key): the counter's value
    off = 10**15 + 12345
    with np.errstate(over="ignore"):
        c = reference._mix64(np.array([seed], np.uint64)) + np.uint64(off)
    direct = reference.uniform_bits(c, dtype)
    got = reference.uniform_bits(reference.counters(fdask.offset_seed(seed, off), 1), dtype)
    assert got[0] == direct[0]


def test_mix64_roundtrip():
    from fastact._math import rng as counters

    rng = np.random.default_rng(3)
    for z in [0, 1, 2**64 - 1, *map(int, rng.integers(0, 2**63, 50))]:
        assert counters.unmix64(counters.mix64(z)) == z
        with np.errstate(over="ignore"):
            assert counters.mix64(z) == reference._mix64(np.array([z], np.uint64))[0]


# --- lazy graphs and errors (no cluster) -----------------------------------


def test_lazy_and_named():
    x = da.from_array(data(), chunks=CHUNKS)
    y = fastact.gelu(x)
    assert isinstance(y, da.Array)
    assert y.chunks == x.chunks and y.dtype == x.dtype
    assert y.name.startswith("fastact-gelu")
    g = fastact.gelu_backward(da.ones_like(x), x)
    assert isinstance(g, da.Array) and g.name.startswith("fastact-gelu-backward")


def test_errors():
    x = da.from_array(data(), chunks=CHUNKS)
    with pytest.raises(TypeError, match="out= is not supported"):
        fastact.relu(x, out=np.empty(x.shape))
    with pytest.raises(TypeError, match="out= is not supported"):
        fastact.relu_backward(x, x, out=x)
    with pytest.raises(TypeError, match="x must be a real"):
        fastact.relu(x.astype(np.complex64))
    with pytest.raises(TypeError, match="grad_output"):
        fastact.relu_backward(x.astype(np.complex128), x)
    with pytest.raises(ValueError, match="lower"):  # checked when the graph is built
        fastact.rrelu(x, lower=0.5, upper=0.1)
    with pytest.raises(ValueError, match="approximate"):
        fastact.gelu(x, approximate="fast")
    with pytest.raises(ValueError, match="shape"):
        fastact.tanh_backward(x, x[:3])
    with pytest.raises(ValueError, match="shape"):
        fastact.tanh_backward(x, np.ones(3))
    with pytest.raises(ValueError, match="seed"):
        fastact.rrelu_backward(x, x, training=True)
    with pytest.raises(ValueError, match="weight"):
        fastact.prelu(x, np.ones(5))
    unknown = x[x[:, 0, 0] > 0]  # unknown chunk sizes along axis 0
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        fastact.rrelu(unknown, training=True, seed=1)
    fastact.rrelu(unknown)  # eval mode does not need them


def test_integer_arrays_compute_in_float64():
    x = da.arange(-5, 5, chunks=3)
    y = fastact.relu(x)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y.compute(scheduler="sync"), np.maximum(np.arange(-5.0, 5.0), 0))


# --- on the cluster ----------------------------------------------------------


@pytest.mark.parametrize("entry", ELEMENTWISE, ids=entry_id)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_forward_backward_equal_numpy(client, entry, dtype):
    xn = data(dtype=dtype)
    gn = data(dtype=dtype, seed=1)
    kw = params_of(entry)
    fwd = getattr(fastact, entry.name)
    bwd = getattr(fastact, f"{entry.name}_backward")
    x = da.from_array(xn, chunks=CHUNKS)
    g = da.from_array(gn, chunks=CHUNKS)
    y = fwd(x, **kw)
    saved = x if entry.saves == "input" else y
    gx = bwd(g, saved, **kw)
    y_c, gx_c = client.compute([y, gx], sync=True)
    yn = fwd(xn, **kw)
    np.testing.assert_array_equal(y_c, yn)
    np.testing.assert_array_equal(gx_c, bwd(gn, xn if entry.saves == "input" else yn, **kw))
    # and, loosely, the independent float64 reference (accuracy is tested elsewhere)
    ref_kw = dict(kw)
    if entry.has_training_mode:
        ref_kw.update(training=False, seed=0, dtype=np.dtype(dtype))
    want = reference.forward(entry.name, xn, **ref_kw)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(y_c, want, rtol=tol, atol=1e-30)


def test_backward_aligns_chunks_and_numpy_saved(client):
    xn, gn = data(), data(seed=1)
    x = da.from_array(xn, chunks=(20, 23, 11))
    g = da.from_array(gn, chunks=CHUNKS)
    want = fastact.silu_backward(gn, xn)
    np.testing.assert_array_equal(fastact.silu_backward(g, x).compute(), want)
    np.testing.assert_array_equal(fastact.silu_backward(g, xn).compute(), want)
    # mixed dtypes: saved is cast to grad's dtype, as for NumPy
    y32 = fastact.tanh(xn.astype(np.float32))
    got = fastact.tanh_backward(g, da.from_array(y32, chunks=7)).compute()
    np.testing.assert_array_equal(got, fastact.tanh_backward(gn, y32))


@pytest.mark.parametrize(
    "chunks", [(37, 23, 11), (10, 23, 11), (20, 6, 11), (20, 12, 4), (37, 23, 3), (37, 1, 11)]
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_rrelu_training_matches_unchunked(client, chunks, dtype):
    """The slopes are keyed by the global flat index, whatever the chunking."""
    xn, gn = data(dtype=dtype), data(dtype=dtype, seed=1)
    seed = 2**63 + 99
    x = da.from_array(xn, chunks=chunks)
    y = fastact.rrelu(x, training=True, seed=seed)
    gx = fastact.rrelu_backward(da.from_array(gn, chunks=chunks), y, training=True, seed=seed)
    y_c, gx_c = client.compute([y, gx], sync=True)
    yn = fastact.rrelu(xn, training=True, seed=seed)
    np.testing.assert_array_equal(y_c, yn)
    np.testing.assert_array_equal(gx_c, fastact.rrelu_backward(gn, yn, training=True, seed=seed))
    slopes = reference.rrelu_slopes(xn.shape, seed, 1 / 8, 1 / 3, dtype)
    neg = xn < 0
    np.testing.assert_array_equal(y_c[neg], (xn * slopes)[neg])


def test_rrelu_training_without_seed_is_consistent(client):
    xn = -np.abs(data((40, 30)))
    x = da.from_array(xn, chunks=(7, 9))
    y = fastact.rrelu(x, training=True)
    a = y.compute()
    np.testing.assert_array_equal(y.compute(), a)  # one seed per graph
    ratio = a / xn
    assert ratio.min() >= 1 / 8 and ratio.max() <= 1 / 3 and ratio.std() > 0.03
    assert not np.array_equal(fastact.rrelu(x, training=True).compute(), a)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_prelu_per_channel(client, dtype):
    xn, gn = data(dtype=dtype), data(dtype=dtype, seed=1)
    w = np.linspace(-0.5, 0.9, 23)
    x = da.from_array(xn, chunks=CHUNKS)
    y = fastact.prelu(x, w)
    gx, gw = fdask.prelu_backward(da.from_array(gn, chunks=CHUNKS), x, w)
    y_c, gx_c, gw_c = client.compute([y, gx, gw], sync=True)
    want_gx, want_gw = fastact.prelu_backward(gn, xn, w)
    np.testing.assert_array_equal(y_c, fastact.prelu(xn, w))
    np.testing.assert_array_equal(gx_c, want_gx)
    assert gw_c.shape == w.shape and gw_c.dtype == dtype
    exact = np.where(xn > 0, 0, xn.astype(np.float64) * gn).sum(axis=(0, 2))
    np.testing.assert_allclose(gw_c, exact, rtol=1e-5 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(gw_c, want_gw, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_prelu_shared_slope_and_1d(client):
    xn, gn = data((50,)), data((50,), seed=1)
    x = da.from_array(xn, chunks=7)
    for w in (np.float64(0.2), np.array([0.2])):
        y = fastact.prelu(x, w)
        gx, gw = fdask.prelu_backward(da.from_array(gn, chunks=7), x, w)
        y_c, gx_c, gw_c = client.compute([y, gx, gw], sync=True)
        want_gx, want_gw = fastact.prelu_backward(gn, xn, w)
        np.testing.assert_array_equal(y_c, fastact.prelu(xn, w))
        np.testing.assert_array_equal(gx_c, want_gx)
        assert gw_c.shape == np.shape(w)
        np.testing.assert_allclose(gw_c, want_gw, rtol=1e-12)


@pytest.mark.parametrize("entry", ROWWISE, ids=entry_id)
def test_rowwise_axis_is_rechunked(client, entry):
    xn, gn = data((30, 40)), data((30, 40), seed=1)
    x = da.from_array(xn, chunks=(7, 9))
    g = da.from_array(gn, chunks=(9, 7))
    fwd = getattr(fastact, entry.name)
    bwd = getattr(fastact, f"{entry.name}_backward")
    for axis in (0, 1, -1):
        y = fdask.rowwise_forward(entry, x, axis, None)
        gx = fdask.rowwise_backward(entry, g, y, axis, None)
        assert len(y.chunks[axis]) == 1 and len(y.chunks[1 - axis % 2]) > 1
        y_c, gx_c = client.compute([y, gx], sync=True)
        yn = fwd(xn, axis=axis)
        np.testing.assert_array_equal(y_c, yn)
        np.testing.assert_array_equal(gx_c, bwd(gn, yn, axis=axis))
    with pytest.raises(ValueError, match="out of bounds"):
        fdask.rowwise_forward(entry, x, 2, None)
    with pytest.raises(TypeError, match="out="):
        fdask.rowwise_forward(entry, x, 1, np.empty(x.shape))


@pytest.mark.parametrize("entry", ROWWISE, ids=entry_id)
def test_rowwise_public_functions_are_lazy(client, entry):
    """Needs the dask hook in fastact._api.rowwise_forward/rowwise_backward."""
    xn = data((30, 40))
    x = da.from_array(xn, chunks=(7, 9))
    y = getattr(fastact, entry.name)(x, axis=0)
    assert isinstance(y, da.Array), "fastact._api.rowwise_forward lacks the dask hook"
    gx = getattr(fastact, f"{entry.name}_backward")(x, y, axis=0)
    assert isinstance(gx, da.Array), "fastact._api.rowwise_backward lacks the dask hook"
    np.testing.assert_array_equal(y.compute(), getattr(fastact, entry.name)(xn, axis=0))


def test_prelu_backward_public_function_is_lazy(client):
    """Needs the dask hook in fastact._api.channel_backward."""
    x = da.from_array(data(), chunks=CHUNKS)
    w = np.linspace(-0.5, 0.9, 23)
    gx, gw = fastact.prelu_backward(x, x, w)
    assert isinstance(gx, da.Array), "fastact._api.channel_backward lacks the dask hook"
    want_gx, want_gw = fdask.prelu_backward(x, x, w)
    np.testing.assert_array_equal(gx.compute(), want_gx.compute())
    np.testing.assert_array_equal(gw.compute(), want_gw.compute())


def test_import_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.array", None)
    monkeypatch.delitem(sys.modules, "fastact.integrations.dask")
    monkeypatch.delitem(sys.modules, "fastact.dask")
    with pytest.raises(ImportError, match=r"fastact\[dask\]"):
        import fastact.dask  # noqa: F401


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_16_bit_blocks_equal_numpy(dtype):
    """float16/bfloat16 dask arrays stay 16-bit and give the unchunked NumPy call's bits."""
    if dtype == "bfloat16":
        dt = np.dtype(pytest.importorskip("ml_dtypes").bfloat16)
    else:
        dt = np.dtype(dtype)
    xn, gn = data().astype(dt), data(seed=1).astype(dt)
    x, g = da.from_array(xn, chunks=CHUNKS), da.from_array(gn, chunks=CHUNKS)
    seed = 2**63 + 5
    cases = [
        (fastact.gelu(x), fastact.gelu(xn)),
        (fastact.gelu_backward(g, x), fastact.gelu_backward(gn, xn)),
        (fastact.rrelu(x, training=True, seed=seed), fastact.rrelu(xn, training=True, seed=seed)),
        (fastact.softmax(x, axis=1), fastact.softmax(xn, axis=1)),
    ]
    for lazy, want in cases:
        got = lazy.compute(scheduler="sync")
        assert lazy.dtype == got.dtype == dt
        np.testing.assert_array_equal(got.view(np.uint16), want.view(np.uint16))
