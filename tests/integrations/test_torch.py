"""fastact.torch: custom operators with autograd, checked with torch's own tools."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

import fastact  # noqa: E402
import fastact.torch as ft  # noqa: E402
from fastact import _api, reference  # noqa: E402
from fastact.integrations import torch as impl  # noqa: E402
from fastact.table import Activation, jump_points  # noqa: E402
from tests.conftest import ENTRIES, entry_id  # noqa: E402

TDTYPES = [torch.float32, torch.float64]


def params_of(entry: Activation) -> dict:
    return {p.name: (p.example if p.default is None else p.default) for p in entry.scalar_params}


def away_from_jumps(entry: Activation, x: torch.Tensor, margin=1e-3) -> torch.Tensor:
    """x with the values within ``margin`` of a jump of the derivative moved away."""
    x = x.clone()
    for p in jump_points(entry, params_of(entry) or None):
        near = (x - p).abs() < margin
        x[near] = p + 3 * margin
    return x


def call(entry: Activation, x, weight=None, **extra):
    """fastact.torch.NAME with the entry's example parameters."""
    fn = getattr(ft, entry.name)
    if entry.channel_param:
        return fn(x, weight)
    return fn(x, **params_of(entry), **extra)


def op_args(entry: Activation, x, training=False, seed=7) -> tuple:
    """Positional arguments of torch.ops.fastact.NAME."""
    if entry.channel_param:
        return (x, torch.rand(x.shape[1], dtype=x.dtype) - 0.3)
    if entry.rowwise:
        return (x, 1)
    args = (x, *params_of(entry).values())
    if entry.has_training_mode:
        args += (training, torch.tensor(seed))
    return args


def test_alias_and_registry():
    assert ft.gelu is impl.gelu
    assert ft.__doc__ == impl.__doc__
    for name in fastact.activations():
        assert callable(getattr(ft, name)) and name in ft.__all__
        assert hasattr(torch.ops.fastact, name)
        assert hasattr(torch.ops.fastact, f"{name}_backward")
    assert ft.op("relu") is ft.relu
    with pytest.raises(ValueError, match="unknown activation"):
        ft.ops("nope")
    with pytest.raises(AttributeError):
        ft.nope  # noqa: B018


# --- values against fastact's NumPy functions --------------------------------


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
@pytest.mark.parametrize("dtype", TDTYPES, ids=str)
def test_forward_backward_match_numpy(entry, dtype):
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(7, 5, 3, generator=gen, dtype=dtype) * 3).requires_grad_()
    g = torch.randn(7, 5, 3, generator=gen, dtype=dtype)
    xn, gn = x.detach().numpy().copy(), g.numpy().copy()
    kw = params_of(entry)
    fwd = getattr(fastact, entry.name)
    bwd = getattr(fastact, f"{entry.name}_backward")
    if entry.channel_param:
        w = torch.tensor([-0.2, 0.1, 0.3, 0.5, 0.9], dtype=dtype, requires_grad=True)
        y = ft.prelu(x, w)
        y.backward(g)
        want_gx, want_gw = bwd(gn, xn, w.detach().numpy())
        np.testing.assert_array_equal(y.detach().numpy(), fwd(xn, w.detach().numpy()))
        np.testing.assert_array_equal(w.grad.numpy(), want_gw)
        assert w.grad.dtype == dtype
    else:
        y = call(entry, x)
        y.backward(g)
        yn = fwd(xn, **kw)
        want_gx = bwd(gn, xn if entry.saves == "input" else yn, **kw)
        np.testing.assert_array_equal(y.detach().numpy(), yn)
    assert y.dtype == dtype and y.is_contiguous()
    np.testing.assert_array_equal(x.grad.numpy(), want_gx)


def _torch_reference(entry: Activation, x, weight=None):
    if entry.channel_param:
        return F.prelu(x, weight)
    kw = params_of(entry)
    if entry.rowwise:
        kw["dim"] = -1
    if entry.name in ("sigmoid", "tanh"):
        return getattr(torch, entry.name)(x)
    if entry.name == "rrelu":
        return F.rrelu(x, **kw, training=False)
    return getattr(F, entry.name)(x, **kw)


# Where torch itself is less accurate than fastact: relative tolerance of the gradient.
# torch's hardsigmoid backward multiplies by 1.0f/6.0f, a float32 constant, also in float64.
TORCH_GRAD_RTOL = {"hardsigmoid": 1e-7}


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
def test_agrees_with_torch_functional(entry):
    if not (entry.channel_param or hasattr(F, entry.name) or hasattr(torch, entry.name)):
        pytest.skip(f"torch has no {entry.name}")
    gen = torch.Generator().manual_seed(1)
    x = away_from_jumps(entry, torch.randn(64, 6, generator=gen, dtype=torch.float64) * 4)
    x.requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    w = torch.linspace(-0.3, 0.6, 6, dtype=torch.float64, requires_grad=True)
    w2 = w.detach().clone().requires_grad_()
    y = call(entry, x, w)
    want = _torch_reference(entry, x2, w2)
    torch.testing.assert_close(y, want, rtol=1e-12, atol=1e-14)
    g = torch.randn(64, 6, generator=gen, dtype=torch.float64)
    y.backward(g)
    want.backward(g)
    rtol = TORCH_GRAD_RTOL.get(entry.name, 1e-12)
    torch.testing.assert_close(x.grad, x2.grad, rtol=rtol, atol=1e-14)
    if entry.channel_param:
        torch.testing.assert_close(w.grad, w2.grad, rtol=1e-12, atol=1e-14)


# --- torch's own checks -------------------------------------------------


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
def test_gradcheck(entry):
    gen = torch.Generator().manual_seed(2)
    x = away_from_jumps(entry, torch.randn(4, 3, 2, generator=gen, dtype=torch.float64) * 3)
    x.requires_grad_()
    if entry.channel_param:
        w = torch.tensor([-0.2, 0.4, 0.7], dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(ft.prelu, (x, w))
        w0 = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)  # one shared slope
        assert torch.autograd.gradcheck(ft.prelu, (x, w0))
        return
    assert torch.autograd.gradcheck(lambda t: call(entry, t), (x,))
    if entry.has_training_mode:
        assert torch.autograd.gradcheck(lambda t: call(entry, t, training=True, seed=99), (x,))


OPCHECK_CASES = [(e, torch.float64) for e in ENTRIES] + [
    (e, torch.float32) for e in ENTRIES if e.name in ("sigmoid", "prelu", "rrelu", "gelu")
]


@pytest.mark.parametrize(
    "entry, dtype",
    OPCHECK_CASES,
    ids=lambda v: entry_id(v) if isinstance(v, Activation) else str(v),
)
def test_opcheck(entry, dtype):
    gen = torch.Generator().manual_seed(3)
    x = away_from_jumps(entry, torch.randn(5, 4, generator=gen, dtype=dtype) * 3)
    ops = ft.ops(entry.name)
    modes = [False, True] if entry.has_training_mode else [False]
    for training in modes:
        args = op_args(entry, x.clone().requires_grad_(), training)
        torch.library.opcheck(ops.forward, args)
        # the backward op on plain tensors (no double backward)
        plain = op_args(entry, x, training)
        g = torch.randn(5, 4, generator=gen, dtype=dtype)
        torch.library.opcheck(ops.backward, (g, *plain))


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.rowwise], ids=entry_id)
def test_rowwise_axes(entry):
    x = torch.randn(3, 4, 5, dtype=torch.float64, requires_grad=True)
    fn = getattr(ft, entry.name)
    for axis in (0, 1, 2, -1, -3):
        y = fn(x, axis)
        torch.testing.assert_close(y, getattr(F, entry.name)(x, dim=axis), rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(
            y.detach().numpy(), getattr(fastact, entry.name)(x.detach().numpy(), axis=axis)
        )
        assert torch.autograd.gradcheck(lambda t, a=axis: fn(t, axis=a), (x,))
    with pytest.raises(ValueError, match="out of bounds"):
        fn(x, 3)
    with pytest.raises(TypeError, match="axis"):
        fn(x, 1.0)


def test_double_backward_is_refused_clearly():
    x = torch.randn(5, dtype=torch.float64, requires_grad=True)
    (gx,) = torch.autograd.grad(ft.tanh(x).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="tanh_backward"):
        gx.sum().backward()


# --- layout, zero copy, errors -----------------------------------------------


def test_zero_copy_and_contiguous_output(monkeypatch):
    seen = []
    real = _api.forward

    def spy(entry, x, out, *args):
        seen.append((x.ctypes.data, out.ctypes.data, x.flags.c_contiguous))
        return real(entry, x, out, *args)

    monkeypatch.setattr(_api, "forward", spy)
    x = torch.randn(300, 200)
    y = ft.silu(x)
    assert seen[-1][:2] == (x.data_ptr(), y.data_ptr())
    xt = x.t()  # a transposed view: read in place, output contiguous
    yt = ft.silu(xt)
    assert seen[-1][0] == xt.data_ptr() and not seen[-1][2]
    assert yt.is_contiguous() and yt.shape == xt.shape
    torch.testing.assert_close(yt, F.silu(xt))


@pytest.mark.parametrize("shape", [(), (0,), (3, 0, 2)])
def test_empty_and_scalar(shape):
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    y = ft.sigmoid(x)
    assert y.shape == x.shape
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.sigmoid(x) * (1 - torch.sigmoid(x)))
    w = torch.tensor([0.25], dtype=torch.float64, requires_grad=True)
    ft.prelu(x, w).sum().backward()
    assert w.grad.shape == (1,)


def test_bad_input():
    with pytest.raises(TypeError, match="torch.float32 or torch.float64"):
        ft.relu(torch.arange(5))
    with pytest.raises(TypeError, match="torch.float32 or torch.float64"):
        ft.relu(torch.ones(3, dtype=torch.complex64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        ft.relu(np.ones(3))
    with pytest.raises(ValueError, match="CPU"):
        ft.relu(torch.ones(3, device="meta"))
    with pytest.raises(ValueError, match="approximate"):
        ft.gelu(torch.ones(3), approximate="fast")
    with pytest.raises(ValueError, match="lower"):
        ft.rrelu(torch.ones(3), lower=0.5, upper=0.1)
    with pytest.raises(TypeError, match="seed"):
        ft.rrelu(torch.ones(3), training=True, seed=1.5)
    with pytest.raises(ValueError, match="seed"):
        ft.rrelu(torch.ones(3), training=True, seed=-1)
    with pytest.raises(ValueError, match="weight"):
        ft.prelu(torch.ones(2, 3), torch.ones(4))


# --- prelu and rrelu ---------------------------------------------------------


def test_prelu_mixed_dtypes_and_shared_slope():
    x = torch.randn(6, 4, 5, dtype=torch.float64, requires_grad=True)
    w = torch.full((4,), 0.25, dtype=torch.float32, requires_grad=True)
    y = ft.prelu(x, w)
    assert y.dtype == torch.float64
    y.sum().backward()
    assert w.grad.dtype == torch.float32 and w.grad.shape == (4,)
    want = torch.where(x > 0, 0, x).sum(dim=(0, 2))
    torch.testing.assert_close(w.grad, want.float())
    w0 = torch.tensor(0.1, requires_grad=True)
    ft.prelu(x.float(), w0).sum().backward()
    assert w0.grad.shape == ()


def test_rrelu_training_seeds():
    x = -torch.rand(2000, dtype=torch.float64) - 0.1
    x.requires_grad_()
    # a given seed: the NumPy kernels' slopes, also for seeds >= 2**63
    for seed in (5, 2**63 + 12345, 2**64 - 1):
        y = ft.rrelu(x, training=True, seed=seed)
        want = fastact.rrelu(x.detach().numpy(), training=True, seed=seed)
        np.testing.assert_array_equal(y.detach().numpy(), want)
        slopes = reference.rrelu_slopes(x.shape, seed, 1 / 8, 1 / 3)
        (gx,) = torch.autograd.grad(y.sum(), x)
        np.testing.assert_allclose(gx.numpy(), slopes, rtol=1e-15)
    # no seed: fresh slopes per call, reproducible with torch.manual_seed
    torch.manual_seed(0)
    a = ft.rrelu(x, training=True)
    b = ft.rrelu(x, training=True)
    assert not torch.equal(a, b)
    torch.manual_seed(0)
    torch.testing.assert_close(ft.rrelu(x, training=True), a, rtol=0, atol=0)
    # the backward regenerates the slopes of its own forward
    (ga,) = torch.autograd.grad(a.sum(), x)
    torch.testing.assert_close(ga, a.detach() / x.detach())
    # eval: the mean slope
    torch.testing.assert_close(ft.rrelu(x), x * (1 / 8 + 1 / 3) / 2)


# --- torch.compile ---------------------------------------------------------


def _compiled_step(x, w):
    h = ft.gelu(x, approximate="tanh") + ft.prelu(x, w)
    return (ft.rrelu(h, training=True) * ft.sigmoid(h)).sum()


def test_torch_compile_aot_eager():
    """Fake kernels and autograd formulas traced by AOTAutograd, fullgraph."""
    x = torch.randn(16, 4, requires_grad=True)
    w = torch.full((4,), 0.25, requires_grad=True)
    step = torch.compile(_compiled_step, backend="aot_eager", fullgraph=True)
    torch.manual_seed(1)
    loss = step(x, w)
    loss.backward()
    gx, gw = x.grad.clone(), w.grad.clone()
    x.grad = w.grad = None
    torch.manual_seed(1)
    eager = _compiled_step(x, w)
    eager.backward()
    torch.testing.assert_close(loss, eager)
    torch.testing.assert_close(gx, x.grad)
    torch.testing.assert_close(gw, w.grad)
    # rrelu gets a fresh seed per call, not one baked in at trace time
    assert step(x, w).item() != step(x, w).item()


@pytest.mark.skipif(
    os.environ.get("FASTACT_TEST_INDUCTOR") != "1",
    reason="inductor compiles C++ (~20 s); set FASTACT_TEST_INDUCTOR=1",
)
def test_torch_compile_inductor():
    x = torch.randn(64, 8, requires_grad=True)
    w = torch.full((8,), 0.25, requires_grad=True)

    def f(x, w):
        return (ft.gelu(x) * 2 + ft.prelu(x, w)).sum()

    loss = torch.compile(f, fullgraph=True)(x, w)
    loss.backward()
    gx, gw = x.grad.clone(), w.grad.clone()
    x.grad = w.grad = None
    f(x, w).backward()
    torch.testing.assert_close(gx, x.grad)
    torch.testing.assert_close(gw, w.grad)


def test_import_error_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.delitem(sys.modules, "fastact.integrations.torch")
    monkeypatch.delitem(sys.modules, "fastact.torch")
    with pytest.raises(ImportError, match="pip install torch"):
        import fastact.torch  # noqa: F401


# --- float16 and bfloat16 tensors ------------------------------------------------


def _half_dtypes():
    out = [torch.float16]
    try:
        import ml_dtypes  # noqa: F401
    except ImportError:
        return out
    return out + [torch.bfloat16]


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_16_bit_tensors_match_numpy(entry, dtype):
    """float16/bfloat16 tensors: the same bits as fastact on their NumPy views, forward and
    through autograd, read and written in place (zero copy)."""
    if dtype not in _half_dtypes():
        pytest.importorskip("ml_dtypes")
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(7, 5, 3, generator=gen) * 3).to(dtype).requires_grad_()
    g = torch.randn(7, 5, 3, generator=gen).to(dtype)
    xn, gn = impl._np(x).copy(), impl._np(g).copy()
    assert impl._np(x).ctypes.data == x.data_ptr()  # a view of the tensor's memory
    kw = params_of(entry)
    fwd = getattr(fastact, entry.name)
    bwd = getattr(fastact, f"{entry.name}_backward")
    if entry.channel_param:
        w = torch.tensor([-0.2, 0.1, 0.3, 0.5, 0.9]).to(dtype).requires_grad_()
        y = ft.prelu(x, w)
        y.backward(g)
        want_y = fwd(xn, impl._np(w))
        want_gx, want_gw = bwd(gn, xn, impl._np(w))
        assert w.grad.dtype == dtype
        np.testing.assert_array_equal(impl._np(w.grad).view(np.uint16), want_gw.view(np.uint16))
    else:
        y = call(entry, x)
        y.backward(g)
        want_y = fwd(xn, **kw)
        want_gx = bwd(gn, xn if entry.saves == "input" else want_y, **kw)
    assert y.dtype == x.grad.dtype == dtype
    np.testing.assert_array_equal(impl._np(y).view(np.uint16), want_y.view(np.uint16))
    np.testing.assert_array_equal(impl._np(x.grad).view(np.uint16), want_gx.view(np.uint16))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_16_bit_opcheck_and_close_to_torch(dtype):
    if dtype not in _half_dtypes():
        pytest.importorskip("ml_dtypes")
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(64, 8, generator=gen).to(dtype)
    for name in ("gelu", "sigmoid", "relu", "softmax"):
        entry = fastact.activation(name)
        torch.library.opcheck(ft.ops(name).forward, op_args(entry, x))
        want = _torch_reference(entry, x.float()).to(dtype)  # torch in float32, rounded once
        got = call(entry, x) if not entry.rowwise else ft.softmax(x, dim=-1)
        torch.testing.assert_close(got, want)  # torch's tolerances for the dtype: about 1 ulp
