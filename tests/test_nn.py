"""fastact.nn: layer objects for NumPy training loops, one per activation of the table."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import fastact
from fastact import nn, reference
from fastact.table import Activation, jump_points
from tests.conftest import ENTRIES, entry_id

DTYPES = [np.float32, np.float64]


def layer_args(entry: Activation) -> dict:
    """Constructor arguments: required parameters get their example value."""
    if entry.channel_param:
        return {}
    return {p.name: p.example for p in entry.scalar_params if p.default is None}


def make_layer(entry: Activation, **kw) -> nn.Layer:
    return nn.layer(entry.name, **layer_args(entry), **kw)


def call_kw(entry: Activation, layer) -> dict:
    return dict(layer.params) if not entry.channel_param else {}


# --- the classes --------------------------------------------------------


def test_one_class_per_activation():
    names = fastact.activations()
    for name in names:
        cls = getattr(nn, nn.class_name(name))
        assert cls.entry.name == name
        assert nn.class_name(name) in nn.__all__
    assert len({nn.class_name(n) for n in names}) == len(names)
    assert nn.layer_class("relu") is nn.ReLU
    assert isinstance(nn.layer("leaky_relu", 0.2), nn.LeakyReLU)
    with pytest.raises(AttributeError):
        nn.NotAnActivation  # noqa: B018
    with pytest.raises(ValueError, match="unknown activation"):
        nn.layer("nope")


@pytest.mark.parametrize(
    "name, cls",
    [
        ("relu", "ReLU"),
        ("sigmoid", "Sigmoid"),
        ("tanh", "Tanh"),
        ("leaky_relu", "LeakyReLU"),
        ("prelu", "PReLU"),
        ("rrelu", "RReLU"),
        ("gelu", "GELU"),
        ("silu", "SiLU"),
        ("relu6", "ReLU6"),
        ("logsigmoid", "LogSigmoid"),
        ("hardtanh", "Hardtanh"),
        ("log_softmax", "LogSoftmax"),
        ("my_act", "MyAct"),
    ],
)
def test_pytorch_class_names(name, cls):
    assert nn.class_name(name) == cls


def test_signatures_follow_the_table():
    assert list(inspect.signature(nn.LeakyReLU).parameters) == ["negative_slope", "inplace"]
    assert inspect.signature(nn.LeakyReLU).parameters["negative_slope"].default == 0.01
    sig = inspect.signature(nn.RReLU)
    assert list(sig.parameters) == ["lower", "upper", "inplace", "seed"]
    sig = inspect.signature(nn.PReLU)
    assert sig.parameters["num_parameters"].default == 1
    assert sig.parameters["init"].default == 0.25
    assert repr(nn.LeakyReLU(0.2, inplace=True)) == "LeakyReLU(negative_slope=0.2, inplace=True)"
    assert repr(nn.PReLU(3)) == "PReLU(num_parameters=3)"


def test_bad_arguments():
    with pytest.raises(TypeError):
        nn.LeakyReLU(negative_slop=0.1)
    with pytest.raises(TypeError):
        nn.ReLU(0.1)
    with pytest.raises(TypeError, match="negative_slope"):
        nn.LeakyReLU("big")
    with pytest.raises(ValueError, match="lower"):
        nn.RReLU(0.5, 0.1)
    with pytest.raises(ValueError, match="num_parameters"):
        nn.PReLU(0)
    with pytest.raises(TypeError, match="num_parameters"):
        nn.PReLU(2.0)
    with pytest.raises(TypeError, match="dtype"):
        nn.PReLU(dtype=np.int32)
    with pytest.raises(RuntimeError, match="before forward"):
        nn.Tanh().backward(np.ones(3))
    with pytest.raises(RuntimeError, match="before forward"):
        nn.PReLU().backward(np.ones(3))


# --- forward/backward against the functions --------------------------------


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_layer_matches_functions(entry, dtype):
    rng = np.random.default_rng(1)
    x = rng.normal(0, 3, (6, 5)).astype(dtype)
    g = rng.normal(0, 1, (6, 5)).astype(dtype)
    layer = make_layer(entry).eval()
    y = layer.forward(x)
    gx = layer.backward(g)
    fwd = getattr(fastact, entry.name)
    bwd = getattr(fastact, f"{entry.name}_backward")
    if entry.channel_param:
        want_y = fwd(x, layer.weight)
        want_gx, want_gw = bwd(g, x, layer.weight)
        np.testing.assert_array_equal(layer.grad_weight, want_gw.astype(layer.weight.dtype))
    else:
        kw = call_kw(entry, layer)
        want_y = fwd(x, **kw)
        want_gx = bwd(g, x if entry.saves == "input" else want_y, **kw)
    assert y.dtype == gx.dtype == dtype
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(gx, want_gx)
    # The saved array is the one backward needs, not a copy of something else.
    saved = layer._saved
    assert saved is (x if entry.saves == "input" else y)


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
def test_inplace(entry):
    cls = nn.layer_class(entry.name)
    if entry.channel_param:
        with pytest.raises(TypeError):
            cls(inplace=True)
        return
    if entry.saves == "input":
        with pytest.raises(ValueError, match="input"):
            make_layer(entry, inplace=True)
        return
    rng = np.random.default_rng(2)
    x = rng.normal(0, 3, (4, 7))
    g = rng.normal(0, 1, (4, 7))
    ref = make_layer(entry).eval()
    want_y = ref.forward(x.copy())
    want_gx = ref.backward(g)
    layer = make_layer(entry, inplace=True).eval()
    buf = x.copy()
    y = layer.forward(buf)
    assert y is buf
    np.testing.assert_array_equal(buf, want_y)
    np.testing.assert_array_equal(layer.backward(g), want_gx)
    # backward in place on the gradient
    g2 = g.copy()
    assert layer.backward(g2, out=g2) is g2
    np.testing.assert_array_equal(g2, want_gx)
    with pytest.raises(TypeError, match="NumPy array"):
        layer.forward([1.0, 2.0])


def test_inplace_refused_for_read_only_input():
    x = np.ones(4)
    x.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        nn.ReLU(inplace=True).forward(x)


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.rowwise], ids=entry_id)
def test_rowwise_layers_take_an_axis(entry):
    cls = nn.layer_class(entry.name)
    assert inspect.signature(cls).parameters["axis"].default == -1
    rng = np.random.default_rng(5)
    x = rng.normal(0, 2, (4, 6, 3))
    g = rng.normal(0, 1, (4, 6, 3))
    fwd = getattr(fastact, entry.name)
    bwd = getattr(fastact, f"{entry.name}_backward")
    for axis in (0, 1, -1):
        layer = cls(axis=axis)
        assert repr(layer) == f"{cls.__name__}(axis={axis})"
        y = layer.forward(x)
        np.testing.assert_array_equal(y, fwd(x, axis=axis))
        np.testing.assert_array_equal(layer.backward(g), bwd(g, y, axis=axis))
    with pytest.raises(TypeError, match="axis"):
        cls(axis=1.5)
    with pytest.raises(ValueError, match="out of bounds"):
        cls(axis=3).forward(x)


# --- PReLU and RReLU -----------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_prelu_weight_and_gradient(dtype):
    rng = np.random.default_rng(3)
    x = rng.normal(0, 2, (5, 3, 4)).astype(dtype)
    g = rng.normal(0, 1, (5, 3, 4)).astype(dtype)
    layer = nn.PReLU(3, init=0.1)
    assert layer.weight.shape == (3,) and layer.weight.dtype == np.float64
    assert layer.grad_weight is None
    layer.weight[:] = [-0.3, 0.1, 0.7]
    y = layer.forward(x)
    w = layer.weight.astype(dtype).reshape(1, 3, 1)
    np.testing.assert_allclose(y, np.where(x > 0, x, w * x), rtol=1e-6)
    gx = layer.backward(g)
    np.testing.assert_allclose(gx, np.where(x > 0, g, w * g), rtol=1e-6)
    want_gw = np.where(x > 0, 0, x.astype(np.float64) * g).sum(axis=(0, 2))
    np.testing.assert_allclose(
        layer.grad_weight, want_gw, rtol=1e-5 if dtype == np.float32 else 1e-12
    )
    assert layer.parameters() == {"weight": layer.weight}
    assert layer.gradients()["weight"] is layer.grad_weight
    # The backward uses the weight of the forward, even if it was updated since.
    layer.weight -= 1.0
    np.testing.assert_allclose(layer.backward(g), gx)
    # one shared slope
    one = nn.PReLU()
    one.forward(x)
    one.backward(g)
    assert one.grad_weight.shape == (1,)


def test_rrelu_training_draws_fresh_seeds():
    rng = np.random.default_rng(4)
    x = -np.abs(rng.normal(0, 1, 1000))
    g = rng.normal(0, 1, 1000)
    layer = nn.RReLU(seed=11)
    assert layer.training
    y1 = layer.forward(x)
    s1 = layer.last_seed
    gx1 = layer.backward(g)
    y2 = layer.forward(x)
    assert layer.last_seed != s1
    assert not np.array_equal(y1, y2)
    # backward regenerates the slopes of the forward it follows
    slopes = reference.rrelu_slopes(x.shape, s1, 1 / 8, 1 / 3)
    np.testing.assert_allclose(y1, slopes * x, rtol=1e-15)
    np.testing.assert_allclose(gx1, slopes * g, rtol=1e-15)
    ratio = y2 / x
    assert np.all((ratio >= 1 / 8) & (ratio <= 1 / 3))
    # the same seed gives the same sequence
    again = nn.RReLU(seed=11)
    np.testing.assert_array_equal(again.forward(x), y1)
    # eval: the mean slope
    layer.eval()
    assert not layer.training
    np.testing.assert_allclose(layer.forward(x), x * (1 / 8 + 1 / 3) / 2, rtol=1e-15)
    np.testing.assert_allclose(layer.backward(g), g * (1 / 8 + 1 / 3) / 2, rtol=1e-15)
    assert layer.train() is layer and layer.training


# --- a two-layer network -------------------------------------------------


class Net:
    """x -> Linear -> activation layer -> Linear -> squared loss, with backprop."""

    def __init__(self, act_factory, n_in=3, n_hidden=8, dtype=np.float64, seed=0):
        rng = np.random.default_rng(seed)
        self.act_factory = act_factory
        self.act = act_factory()
        self.W1 = rng.normal(0, 1 / np.sqrt(n_in), (n_in, n_hidden)).astype(dtype)
        self.b1 = rng.normal(0, 0.5, n_hidden).astype(dtype)
        self.W2 = rng.normal(0, 1 / np.sqrt(n_hidden), (n_hidden, 1)).astype(dtype)
        self.b2 = np.zeros(1, dtype)

    def params(self) -> dict[str, np.ndarray]:
        p = {"W1": self.W1, "b1": self.b1, "W2": self.W2, "b2": self.b2}
        for k, v in self.act.parameters().items():
            p[f"act.{k}"] = v
        return p

    def loss(self, X, T, fresh=False):
        if fresh:  # same layer state as a newly built one (rrelu: the same seed)
            params = self.act.parameters()
            self.act = self.act_factory()
            for k, v in params.items():
                setattr(self.act, k, v)
        self.X = X
        self.H = X @ self.W1 + self.b1
        self.A = self.act.forward(self.H)
        self.Y = self.A @ self.W2 + self.b2
        self.D = self.Y - T
        return 0.5 * float(np.mean(self.D.astype(np.float64) ** 2))

    def grads(self) -> dict[str, np.ndarray]:
        n = self.X.shape[0]
        dY = self.D / n
        g = {"W2": self.A.T @ dY, "b2": dY.sum(0)}
        dH = self.act.backward(dY @ self.W2.T)
        g["W1"] = self.X.T @ dH
        g["b1"] = dH.sum(0)
        for k, v in self.act.gradients().items():
            g[f"act.{k}"] = v
        return g


def toy(n=128, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, (n, 3))
    T = (np.sin(X[:, :1] * 1.5) + 0.5 * X[:, 1:2] ** 2 - 0.3 * X[:, 2:3]).astype(dtype)
    return X.astype(dtype), T


def _factory(entry: Activation):
    if entry.channel_param:
        return lambda: nn.layer(entry.name, 8, init=0.2)
    if entry.has_training_mode:
        return lambda: make_layer(entry, seed=5)
    return lambda: make_layer(entry)


def _far_from_jumps(entry: Activation, H: np.ndarray, margin: float) -> bool:
    env = {p.name: v for p, v in zip(entry.scalar_params, layer_args(entry).values())}
    points = jump_points(entry, env or None)
    return all(np.min(np.abs(H - p)) > margin for p in points)


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
def test_network_gradients_match_finite_differences(entry):
    X, T = toy(24)
    for seed in range(20):
        net = Net(_factory(entry), seed=seed)
        net.loss(X, T, fresh=True)
        if _far_from_jumps(entry, net.H, 1e-3):
            break
    else:  # pragma: no cover - the data is fixed
        pytest.fail("no initialisation away from the jumps")
    net.loss(X, T, fresh=True)
    grads = net.grads()
    params = net.params()
    assert set(grads) == set(params)
    h = 1e-6
    for name, p in params.items():
        num = np.zeros_like(p)
        for k in np.ndindex(p.shape):
            old = p[k]
            p[k] = old + h
            lp = net.loss(X, T, fresh=True)
            p[k] = old - h
            lm = net.loss(X, T, fresh=True)
            p[k] = old
            num[k] = (lp - lm) / (2 * h)
        np.testing.assert_allclose(
            grads[name], num, rtol=1e-5, atol=1e-8, err_msg=f"{entry.name}: d loss / d {name}"
        )


@pytest.mark.parametrize(
    "factory",
    [
        lambda: nn.ReLU(),
        lambda: nn.Sigmoid(),
        lambda: nn.Tanh(inplace=True),
        lambda: nn.LeakyReLU(0.1, inplace=True),
        lambda: nn.PReLU(16),
        lambda: nn.RReLU(seed=3),
        lambda: nn.layer("gelu"),
    ],
    ids=["ReLU", "Sigmoid", "Tanh-inplace", "LeakyReLU-inplace", "PReLU", "RReLU", "GELU"],
)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_training_reduces_the_loss(factory, dtype):
    X, T = toy(256, dtype)
    net = Net(factory, n_hidden=16, dtype=dtype, seed=1)
    first = net.loss(X, T)
    lr = 0.1
    for _ in range(300):
        net.loss(X, T)
        grads = net.grads()
        for name, p in net.params().items():
            p -= (lr * grads[name]).astype(p.dtype)
    net.act.eval()
    last = net.loss(X, T)
    assert np.isfinite(last)
    assert last < 0.3 * first, (first, last)


# --- Linear and Sequential ----------------------------------------------

DENSE = [e for e in ENTRIES if not (e.rowwise or e.channel_param or e.has_training_mode)]


def dense_net(entry: Activation | None, dtype=np.float64, seed: int = 0) -> nn.Sequential:
    name = None if entry is None else entry.name
    kw = {} if entry is None else layer_args(entry)
    return nn.Sequential(
        nn.Linear(3, 6, name, dtype=dtype, rng=seed, **kw),
        nn.Linear(6, 5, name, dtype=dtype, rng=seed + 1, **kw),
        nn.Linear(5, 2, dtype=dtype, rng=seed + 2),
    )


def dense_loss(net: nn.Sequential, X, T) -> float:
    return 0.5 * float(np.sum((net.forward(X).astype(np.float64) - T) ** 2))


def test_dense_entries_come_from_the_table():
    names = {e.name for e in DENSE}
    assert {"relu", "gelu", "silu", "sigmoid", "threshold"} <= names
    assert not names & {"softmax", "prelu", "rrelu"}


@pytest.mark.parametrize("entry", DENSE, ids=entry_id)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_linear_forward_matches_the_reference(entry, dtype):
    kw = layer_args(entry)
    lin = nn.Linear(7, 9, entry.name, dtype=dtype, rng=3, **kw)
    x = np.random.default_rng(1).uniform(-3, 3, (11, 7)).astype(dtype)
    x0 = x.copy()
    y = lin.forward(x)
    assert y.shape == (11, 9) and y.dtype == dtype
    z = x.astype(np.float64) @ lin.weight.astype(np.float64) + lin.bias
    params = dict(lin.params)
    want = getattr(reference, entry.name)(z, **params)
    tol = 1e-5 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(y, want, rtol=tol, atol=tol)
    np.testing.assert_array_equal(x, x0)  # the input is never written


@pytest.mark.parametrize("entry", [None, *DENSE], ids=lambda e: "identity" if e is None else e.name)
def test_mlp_gradients_match_finite_differences(entry):
    rng = np.random.default_rng(0)
    X, T = rng.uniform(-2, 2, (8, 3)), rng.uniform(-1, 1, (8, 2))
    for seed in range(20):
        net = dense_net(entry, seed=seed)
        net.forward(X)
        env = {} if entry is None else net[0].params
        pre = [lay._x @ lay.weight + lay.bias for lay in net.layers[1:]]
        pre.insert(0, X @ net[0].weight + net[0].bias)
        points = [] if entry is None else jump_points(entry, env or None)
        if all(np.min(np.abs(h - p)) > 1e-3 for h in pre[:2] for p in points):
            break
    else:  # pragma: no cover - the data is fixed
        pytest.fail("no initialisation away from the jumps")
    y = net.forward(X)
    X0 = X.copy()
    gx = net.backward(y - T).copy()
    np.testing.assert_array_equal(X, X0)
    grads = {k: v.copy() for k, v in net.gradients().items()}
    params = net.parameters()
    assert set(grads) == set(params) == {f"{i}.{n}" for i in range(3) for n in ("weight", "bias")}
    h = 1e-6

    def numeric(p):
        num = np.zeros_like(p)
        for k in np.ndindex(p.shape):
            old = p[k]
            p[k] = old + h
            lp = dense_loss(net, X, T)
            p[k] = old - h
            lm = dense_loss(net, X, T)
            p[k] = old
            num[k] = (lp - lm) / (2 * h)
        return num

    name = "identity" if entry is None else entry.name
    for k, p in params.items():
        np.testing.assert_allclose(
            grads[k], numeric(p), rtol=1e-5, atol=1e-8, err_msg=f"{name}: d loss / d {k}"
        )
    np.testing.assert_allclose(gx, numeric(X), rtol=1e-5, atol=1e-8, err_msg=f"{name}: d/dx")


@pytest.mark.parametrize("name", ["relu", "gelu", "silu", "tanh"])
def test_float32_gradients_agree_with_float64(name):
    rng = np.random.default_rng(0)
    X, T = rng.uniform(-2, 2, (16, 3)), rng.uniform(-1, 1, (16, 2))
    grads = {}
    for dtype in DTYPES:
        net = dense_net(fastact.activation(name), dtype, seed=4)
        y = net.forward(X.astype(dtype))
        gx = net.backward((y - T).astype(dtype))
        assert gx.dtype == dtype
        assert all(g.dtype == dtype for g in net.gradients().values())
        grads[dtype] = {"x": gx.copy(), **{k: v.copy() for k, v in net.gradients().items()}}
    for k, g64 in grads[np.float64].items():
        np.testing.assert_allclose(grads[np.float32][k], g64, rtol=1e-4, atol=1e-5, err_msg=k)


def test_linear_init_is_seeded_and_dtype_independent():
    a = nn.Linear(10, 4, "relu", dtype=np.float32, rng=5)
    b = nn.Linear(10, 4, "relu", dtype=np.float64, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a.weight, b.weight.astype(np.float32))
    np.testing.assert_array_equal(a.bias, b.bias.astype(np.float32))
    assert np.abs(b.weight).max() <= 1 / np.sqrt(10)
    assert not np.array_equal(a.weight, nn.Linear(10, 4, rng=6).weight)
    assert nn.Linear(10, 4, bias=False).bias is None


def test_linear_keeps_the_leading_axes_and_skips_the_input_gradient():
    lin = nn.Linear(4, 3, "silu", dtype=np.float64, rng=0)
    x = np.random.default_rng(0).normal(size=(2, 5, 4))
    y = lin.forward(x).copy()
    assert y.shape == (2, 5, 3)
    g = np.ones_like(y)
    gx = lin.backward(g)
    assert gx.shape == x.shape
    gw, gb = lin.grad_weight.copy(), lin.grad_bias.copy()
    np.testing.assert_allclose(gb, fastact.silu_backward(g, x @ lin.weight + lin.bias).sum((0, 1)))
    assert lin.backward(g, input_grad=False) is None
    np.testing.assert_array_equal(lin.grad_weight, gw)
    np.testing.assert_array_equal(lin.grad_bias, gb)
    out = np.empty_like(x)
    assert lin.backward(g, out=out) is out
    np.testing.assert_array_equal(out, gx)


def test_sequential_composes_layers():
    net = nn.Sequential(nn.Linear(3, 8, "leaky_relu", negative_slope=0.2, rng=0), nn.Tanh())
    assert len(net) == 2 and isinstance(net[0], nn.Linear)
    assert "Linear(3, 8, 'leaky_relu', dtype=float32, negative_slope=0.2)" in repr(net)
    x = np.ones((4, 3), np.float32)
    y = net.forward(x)
    np.testing.assert_allclose(
        y, np.tanh(fastact.leaky_relu(x @ net[0].weight + net[0].bias, 0.2)), rtol=1e-6
    )
    assert net.backward(np.ones_like(y), input_grad=False) is None
    assert set(net.gradients()) == {"0.weight", "0.bias"}
    net.eval()
    assert not net.training and not net[0].training and not net[1].training


@pytest.mark.parametrize(
    "make, exc, match",
    [
        (lambda: nn.Linear(0, 3), ValueError, "in_features"),
        (lambda: nn.Linear(3, 2.0), TypeError, "out_features"),
        (lambda: nn.Linear(3, 2, dtype=np.int32), TypeError, "dtype"),
        (lambda: nn.Linear(3, 2, bias=None), TypeError, "bias"),
        (lambda: nn.Linear(3, 2, "softmax"), ValueError, "row-wise"),
        (lambda: nn.Linear(3, 2, "prelu"), ValueError, "learned weight"),
        (lambda: nn.Linear(3, 2, "rrelu"), ValueError, "random"),
        (lambda: nn.Linear(3, 2, "nope"), ValueError, "nope"),
        (lambda: nn.Linear(3, 2, nn.ReLU()), TypeError, "activation"),
        (lambda: nn.Linear(3, 2, "relu", alpha=1.0), TypeError, "alpha"),
        (lambda: nn.Linear(3, 2, negative_slope=0.1), TypeError, "without an activation"),
        (lambda: nn.Linear(3, 2, "threshold"), TypeError, "threshold"),
        (lambda: nn.Linear(3, 2, "softplus", beta=0.0), ValueError, "beta"),
        (lambda: nn.Sequential(nn.ReLU(), np.zeros(3)), TypeError, r"layers\[1\]"),
    ],
)
def test_dense_bad_arguments(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_linear_bad_input_names_the_argument():
    lin = nn.Linear(3, 2, "gelu", rng=0)
    with pytest.raises(RuntimeError, match="before forward"):
        lin.backward(np.ones((4, 2), np.float32))
    with pytest.raises(TypeError, match=r"x must be float32.*astype"):
        lin.forward(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 3\)"):
        lin.forward(np.ones((4, 4), np.float32))
    with pytest.raises(ValueError, match="x must have shape"):
        lin.forward(np.float32(1.0))
    lin.forward(np.ones((4, 3), np.float32))
    with pytest.raises(TypeError, match="grad must be float32"):
        lin.backward(np.ones((4, 2)))
    with pytest.raises(ValueError, match="grad must have"):
        lin.backward(np.ones((5, 2), np.float32))
    w = lin.weight.copy()
    with pytest.raises(TypeError, match="out must be"):
        lin.backward(np.ones((4, 2), np.float32), out=np.empty((4, 3)))
    with pytest.raises(ValueError, match="out must have"):
        lin.backward(np.ones((4, 2), np.float32), out=np.empty((4, 2), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        lin.backward(np.ones((4, 2), np.float32), out=np.empty((3, 4), np.float32).T)
    np.testing.assert_array_equal(lin.weight, w)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_mlp_training_reduces_the_loss(dtype):
    X, T = toy(256, dtype)
    net = nn.Sequential(
        nn.Linear(X.shape[1], 32, "gelu", dtype=dtype, rng=0),
        nn.Linear(32, T.shape[1], dtype=dtype, rng=1),
    )
    losses = []
    for _ in range(300):
        y = net.forward(X)
        losses.append(0.5 * float(np.mean((y - T) ** 2)))
        net.backward((y - T) / len(X), input_grad=False)
        for k, p in net.parameters().items():
            p -= 0.2 * net.gradients()[k]
    assert losses[-1] < 0.3 * losses[0], (losses[0], losses[-1])


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_16_bit_layers_match_functions(entry, dtype):
    """Layers on float16/bfloat16 arrays: 16-bit results, the functions' bits; in place
    where the layer allows it; PReLU's weight may be 16-bit too."""
    if dtype == "bfloat16":
        dt = np.dtype(pytest.importorskip("ml_dtypes").bfloat16)
    else:
        dt = np.dtype(dtype)
    rng = np.random.default_rng(1)
    x = rng.normal(0, 3, (6, 5)).astype(dt)
    g = rng.normal(0, 1, (6, 5)).astype(dt)
    fwd = getattr(fastact, entry.name)
    bwd = getattr(fastact, f"{entry.name}_backward")
    if entry.channel_param:
        layer = nn.PReLU(5, dtype=dt)
        y, gx = layer.forward(x), layer.backward(g)
        want_y = fwd(x, layer.weight)
        want_gx, want_gw = bwd(g, x, layer.weight)
        assert layer.weight.dtype == layer.grad_weight.dtype == dt
        np.testing.assert_array_equal(layer.grad_weight.view(np.uint16), want_gw.view(np.uint16))
    else:
        inplace = (
            entry.saves == "output"
            and "inplace" in inspect.signature(nn.layer_class(entry.name)).parameters
        )
        layer = make_layer(entry, inplace=True) if inplace else make_layer(entry)
        layer = layer.eval()
        kw = call_kw(entry, layer)
        want_y = fwd(x, **kw)
        want_gx = bwd(g, x if entry.saves == "input" else want_y, **kw)
        xc = x.copy()
        y = layer.forward(xc)
        gx = layer.backward(g)
        assert (y is xc) == inplace
    assert y.dtype == gx.dtype == dt
    np.testing.assert_array_equal(y.view(np.uint16), want_y.view(np.uint16))
    np.testing.assert_array_equal(gx.view(np.uint16), want_gx.view(np.uint16))
