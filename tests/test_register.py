"""fastact.register: user-defined activations compiled by Numba."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest

pytest.importorskip("numba")

import fastact  # noqa: E402
from fastact import Properties  # noqa: E402
from fastact._register import unregister  # noqa: E402

_ids = itertools.count()
_registered: list[str] = []


def unique(prefix: str) -> str:
    """Registrations are process-wide: every test uses fresh names, removed at the end."""
    name = f"{prefix}_{next(_ids)}"
    _registered.append(name)
    return name


@pytest.fixture(scope="module", autouse=True)
def _cleanup():
    """Leave fastact as the other test modules expect it: the table's activations only."""
    yield
    for name in _registered:
        if name in fastact.activations():
            unregister(name)
    assert all(not fastact.activation(n).extra.get("user") for n in fastact.activations())


def squareplus(x, b):
    return 0.5 * (x + math.sqrt(x * x + b))


def squareplus_grad(g, x, b):
    return g * 0.5 * (1.0 + x / math.sqrt(x * x + b))


def np_squareplus(x, b=4.0):
    x = np.asarray(x, np.float64)
    return 0.5 * (x + np.sqrt(x * x + b))


@pytest.fixture(scope="module")
def sqp() -> str:
    name = unique("squareplus")
    fastact.register(
        name,
        forward=squareplus,
        backward=squareplus_grad,
        saves="input",
        params={"b": 4.0},
        doc="Squareplus (So, 2021): a smooth ReLU with an algebraic form.",
    )
    return name


def test_squareplus_matches_numpy(sqp):
    f = getattr(fastact, sqp)
    x = np.linspace(-20, 20, 1001)
    np.testing.assert_allclose(f(x), np_squareplus(x), rtol=1e-15, atol=0)
    np.testing.assert_allclose(f(x, b=1.0), np_squareplus(x, 1.0), rtol=1e-15, atol=0)
    np.testing.assert_allclose(f(x, 0.25), np_squareplus(x, 0.25), rtol=1e-15, atol=0)
    x32 = x.astype(np.float32)
    y32 = f(x32)
    assert y32.dtype == np.float32
    # float32 math: x + sqrt(x^2 + b) cancels for x << 0, so a few ulp of |x|
    err = np.abs(y32 - np_squareplus(x32))
    assert np.all(err <= 4 * np.finfo(np.float32).eps * (np_squareplus(x32) + np.abs(x32)))


def test_squareplus_gradient_by_finite_differences(sqp):
    f, fb = getattr(fastact, sqp), getattr(fastact, f"{sqp}_backward")
    x = np.linspace(-6, 6, 241)
    g = np.random.default_rng(0).normal(size=x.shape)
    for b in (4.0, 0.5):
        h = 1e-6
        numeric = g * (f(x + h, b=b) - f(x - h, b=b)) / (2 * h)
        np.testing.assert_allclose(fb(g, x, b=b), numeric, rtol=1e-7, atol=1e-9)


def test_squareplus_layouts_out_and_threads(sqp):
    f, fb = getattr(fastact, sqp), getattr(fastact, f"{sqp}_backward")
    base = np.random.default_rng(1).normal(0, 3, 70_001 * 2)
    layouts = (base[:70_001], base[: 300 * 70].reshape(300, 70).T, base[:2000:2], base[:1])
    for x in layouts:
        want = np_squareplus(x)
        with fastact.config(num_threads=2):
            np.testing.assert_allclose(f(x), want, rtol=1e-15)
        buf = x.copy()
        assert f(buf, out=buf) is buf
        np.testing.assert_allclose(buf, want, rtol=1e-15)
    assert isinstance(f(1.0), np.floating)
    x, g = base[:70_001], base[70_001:]
    results = []
    for threads in (1, 2):
        with fastact.config(num_threads=threads):
            results.append((f(x), fb(g, x)))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_the_entry_and_the_api(sqp):
    e = fastact.activation(sqp)
    assert sqp in fastact.activations()
    assert e.extra["user"] is True
    assert e.params == {"b": 4.0}
    assert e.saves == "input"
    assert "Squareplus" in e.doc
    # estimated properties: smooth, monotonic, unbounded above, f(0) = 1 != 0
    p = e.properties
    assert p.nonlinear and p.monotonic and p.differentiable == "everywhere"
    assert not p.identity_near_zero
    assert p.output_range[1] == math.inf and 0 <= p.output_range[0] < 1e-3
    assert e.extra["properties_estimated"] is True
    import inspect

    assert (
        str(inspect.signature(getattr(fastact, sqp)))
        == "(x, b=4.0, *, bias=None, bias_axis=-1, out=None)"
    )
    # it runs on Numba whatever backend is configured
    assert fastact.explain(sqp, np.ones(10)).backend == "numba"


def test_saves_output_and_a_jitted_function():
    import numba

    name = unique("mysigmoid")

    @numba.njit
    def fwd(x):
        return 1.0 / (1.0 + math.exp(-x))

    fastact.register(
        name,
        forward=fwd,
        backward=lambda g, y: g * y * (1.0 - y),
        saves="output",
        properties=Properties(True, "everywhere", True, False, (0.0, 1.0)),
    )
    x = np.linspace(-5, 5, 101)
    y = getattr(fastact, name)(x)
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-x)), rtol=1e-15)
    gx = getattr(fastact, f"{name}_backward")(np.ones_like(x), y)
    np.testing.assert_allclose(gx, y * (1 - y), rtol=1e-15)
    assert fastact.activation(name).extra["properties_estimated"] is False


def test_nan_and_inf_flow_through_user_functions():
    name = unique("userrelu")
    fastact.register(
        name,
        forward=lambda x: x if x > 0.0 else 0.0 * x,
        backward=lambda g, x: g if x > 0.0 else 0.0,
    )
    y = getattr(fastact, name)(np.array([np.nan, np.inf, -np.inf, -1.0, 2.0]))
    assert np.isnan(y[0]) and y[1] == np.inf and np.isnan(y[2]) and y[3] == 0 and y[4] == 2


def test_given_properties_are_checked():
    name = unique("cube")
    with pytest.warns(UserWarning, match="monotonic"):
        fastact.register(
            name,
            forward=lambda x: x * x * x,
            backward=lambda g, x: 3.0 * g * x * x,
            properties={
                "nonlinear": True,
                "differentiable": "everywhere",
                "monotonic": False,
                "identity_near_zero": False,
                "output_range": (-math.inf, math.inf),
            },
        )
    assert fastact.activation(name).properties.monotonic is False  # as given


# --- bad definitions ---------------------------------------------------------


def _ok_fwd(x):
    return x


def _ok_bwd(g, x):
    return g


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"forward": lambda x: x.no_such_attribute}, TypeError, "could not be compiled"),
        ({"forward": lambda x: (x, x)}, TypeError, "must return a real number"),
        ({"backward": lambda g, x: undefined_name * g}, TypeError, "backward"),  # noqa: F821
        ({"forward": lambda x, y: x}, TypeError, "forward must take 1 positional"),
        ({"backward": lambda g: g}, TypeError, "backward must take 2 positional"),
        (
            {"params": {"a": 1.0}},
            TypeError,
            r"forward must take 2 positional argument\(s\) \(x, a\)",
        ),
        ({"saves": "both"}, ValueError, "saves must be"),
        ({"params": [1.0]}, TypeError, "params must be a dict"),
        ({"params": {"x": 1.0}}, ValueError, "reserved"),
        ({"params": {"not valid": 1.0}}, ValueError, "identifier"),
        ({"params": {"a": "big"}}, TypeError, "real number"),
        ({"forward": 3.0}, TypeError, "forward must be a function"),
        ({"properties": 5}, TypeError, "properties must be"),
        ({"properties": {"nonlinear": True}}, TypeError, "properties"),
    ],
)
def test_bad_definitions_are_rejected(kwargs, exc, match):
    name = unique("bad")
    args = {"forward": _ok_fwd, "backward": _ok_bwd, **kwargs}
    with pytest.raises(exc, match=match):
        fastact.register(name, **args)
    assert name not in fastact.activations()
    assert not hasattr(fastact, name)


@pytest.mark.parametrize(
    "name, match",
    [
        ("relu", "already exists"),
        ("config", "clashes"),
        ("register", "clashes"),
        ("sigmoid_backward", "clashes"),
        ("softplus", "already exists"),
        ("1abc", "identifier"),
        ("_private", "identifier"),
        ("class", "identifier"),
    ],
)
def test_bad_names_are_rejected(name, match):
    with pytest.raises(ValueError, match=match):
        fastact.register(name, forward=_ok_fwd, backward=_ok_bwd)


def test_name_must_be_a_string():
    with pytest.raises(TypeError, match="name must be a string"):
        fastact.register(3, forward=_ok_fwd, backward=_ok_bwd)


def test_a_failed_registration_leaves_nothing_behind():
    name = unique("retry")
    with pytest.raises(TypeError):
        fastact.register(name, forward=_ok_fwd, backward=lambda g, x: g.bad)
    # same name, fixed definition: works, and uses the new functions
    fastact.register(name, forward=lambda x: 2.0 * x, backward=lambda g, x: 2.0 * g)
    np.testing.assert_array_equal(getattr(fastact, name)(np.ones(3)), 2.0)
    with pytest.raises(ValueError, match="already exists"):
        fastact.register(name, forward=_ok_fwd, backward=_ok_bwd)


def test_parameter_values_are_checked_at_call_time(sqp):
    with pytest.raises(TypeError, match="b must be a real number"):
        getattr(fastact, sqp)(np.ones(3), b="x")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        getattr(fastact, sqp)(np.ones(3), b=np.float32(2.0))


def test_unregister():
    name = unique("temp")
    fastact.register(name, forward=_ok_fwd, backward=_ok_bwd)
    assert hasattr(fastact, name)
    unregister(name)
    assert name not in fastact.activations()
    assert not hasattr(fastact, name) and not hasattr(fastact, f"{name}_backward")
    with pytest.raises(ValueError, match="built-in"):
        unregister("relu")
    with pytest.raises(ValueError, match="unknown activation"):
        unregister(name)
    # the name is free again
    fastact.register(name, forward=lambda x: 3.0 * x, backward=lambda g, x: 3.0 * g)
    np.testing.assert_array_equal(getattr(fastact, name)(np.ones(2)), 3.0)


def test_registered_functions_bind_like_the_generated_ones(sqp):
    f, fb = getattr(fastact, sqp), getattr(fastact, f"{sqp}_backward")
    x = np.linspace(-1, 1, 5)
    np.testing.assert_array_equal(f(x, 1.0), f(x, b=1.0))
    np.testing.assert_array_equal(
        fb(np.ones(5), x, 1.0), fb(grad_output=np.ones(5), saved=x, b=1.0)
    )
    out = np.empty(5)
    assert f(x, out=out) is out
    with pytest.raises(
        TypeError, match=rf"{sqp}\(\) got an unexpected keyword argument 'bb'; did you mean 'b'\?"
    ):
        f(x, bb=1.0)
    with pytest.raises(TypeError, match=f"{sqp}"):
        f(x, 1.0, 2.0)
    assert f.__name__ == sqp and fb.__name__ == f"{sqp}_backward"
    assert sqp in dir(fastact)


def test_registration_goes_through_the_entry_registry():
    import inspect

    from fastact import _register

    source = inspect.getsource(_register)
    assert "_install" not in source and "fastact._entries" not in source
    name = unique("reg")
    e = fastact.register(name, forward=_ok_fwd, backward=_ok_bwd)
    assert e.kernel_id is None and fastact.activation(name) is e
    unregister(name)
