"""fastact.sklearn: scikit-learn's MLP with its activations routed to fastact."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor, _base  # noqa: E402

import fastact  # noqa: E402
import fastact.sklearn as fsk  # noqa: E402
from fastact.integrations import sklearn as impl  # noqa: E402

ORIGINAL_ACTS = dict(_base.ACTIVATIONS)
ORIGINAL_DERS = dict(_base.DERIVATIVES)


@pytest.fixture(autouse=True)
def _restore():
    yield
    fsk.unpatch()
    assert _base.ACTIVATIONS == ORIGINAL_ACTS
    assert _base.DERIVATIVES == ORIGINAL_DERS


def test_alias_is_the_integration():
    assert fsk.patch is impl.patch and fsk.__doc__ == impl.__doc__


def test_patch_mutates_the_dicts_and_unpatch_restores():
    acts, ders = _base.ACTIVATIONS, _base.DERIVATIVES
    assert not fsk.is_patched()
    fsk.patch()
    assert fsk.is_patched()
    assert _base.ACTIVATIONS is acts and _base.DERIVATIVES is ders
    for name in ("logistic", "tanh", "relu"):
        assert acts[name] is not ORIGINAL_ACTS[name]
        assert ders[name] is not ORIGINAL_DERS[name]
    assert acts["exp"] is ORIGINAL_ACTS["exp"]
    added = set(fsk.ADDED)
    assert set(acts) == set(ORIGINAL_ACTS) | added and set(ders) == set(ORIGINAL_DERS) | added
    if "softmax" in fastact.activations():
        assert "softmax" in fsk.ROUTED
        assert acts["softmax"] is not ORIGINAL_ACTS["softmax"]
    else:
        assert acts["softmax"] is ORIGINAL_ACTS["softmax"]
    fsk.patch()  # idempotent: the originals are not lost
    fsk.unpatch()
    assert not fsk.is_patched()
    assert acts == ORIGINAL_ACTS and ders == ORIGINAL_DERS
    fsk.unpatch()  # harmless when not patched


def test_patched_context_and_nesting():
    with fsk.patched():
        assert fsk.is_patched()
        with fsk.patched():
            pass
        assert fsk.is_patched()  # the outer block still holds
    assert _base.ACTIVATIONS == ORIGINAL_ACTS
    fsk.patch(["relu"])
    with fsk.patched():
        assert _base.ACTIVATIONS["tanh"] is not ORIGINAL_ACTS["tanh"]
    assert _base.ACTIVATIONS["tanh"] is ORIGINAL_ACTS["tanh"]
    assert _base.ACTIVATIONS["relu"] is not ORIGINAL_ACTS["relu"]
    with pytest.raises(ValueError, match="exp"):
        fsk.patch(["exp"])
    with pytest.raises(RuntimeError), fsk.patched():
        raise RuntimeError
    assert _base.ACTIVATIONS["logistic"] is ORIGINAL_ACTS["logistic"]


@pytest.mark.parametrize("name", ["identity", "logistic", "tanh", "relu", "softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_functions_match_sklearn(name, dtype):
    if name not in fsk.ROUTED:
        pytest.skip(f"{name} is not in fastact's table")
    rng = np.random.default_rng(0)
    X = rng.normal(0, 3, (50, 7)).astype(dtype)
    X[0, :3] = [0.0, 40.0, -40.0]
    want = X.copy()
    ORIGINAL_ACTS[name](want)
    with fsk.patched():
        got = X.copy()
        _base.ACTIVATIONS[name](got)
    tol = 4 * np.finfo(dtype).eps
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    if name == "softmax":
        return
    Z = want
    # Z and delta of different dtypes, as in scikit-learn's float32 runs
    for ddt in (dtype, np.float64):
        delta = rng.normal(0, 1, Z.shape).astype(ddt)
        want_d = delta.copy()
        ORIGINAL_DERS[name](Z, want_d)
        with fsk.patched():
            got_d = delta.copy()
            assert _base.DERIVATIVES[name](Z, got_d) is None  # in place
        assert got_d.dtype == ddt
        np.testing.assert_allclose(got_d, want_d, rtol=tol, atol=tol)


def test_non_ndarray_input_goes_to_sklearn():
    sp = pytest.importorskip("scipy.sparse")
    with fsk.patched():
        X = np.arange(-3.0, 3.0).reshape(2, 3)
        ints = np.array([[-1, 2]])
        _base.ACTIVATIONS["relu"](ints)  # not a float array: sklearn's own
        assert ints.tolist() == [[0, 2]]
        _base.ACTIVATIONS["relu"](X)
        assert X.min() == 0
        Z = sp.csr_matrix(np.array([[0.0, 1.0]]))
        _base.ACTIVATIONS["identity"](Z)


def _coef_error(a, b) -> float:
    err = 0.0
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert p.dtype == q.dtype
        err = max(err, float(np.max(np.abs(p - q)) / np.max(np.abs(p))))
    return err


def _fit_both(make, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = make().fit(X, y)
        with fsk.patched():
            b = make().fit(X, y)
    return a, b


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_classifier_same_coefficients(activation, solver, dtype):
    X, y = make_classification(300, 10, n_classes=3, n_informative=5, random_state=0)
    X = X.astype(dtype)

    def make():
        return MLPClassifier(
            hidden_layer_sizes=(16, 8),
            activation=activation,
            solver=solver,
            max_iter=30,
            random_state=0,
        )

    a, b = _fit_both(make, X, y)
    assert a.coefs_[0].dtype == dtype
    # the runs differ by a few ulp per step, amplified by training
    assert _coef_error(a, b) < (1e-10 if dtype == np.float64 else 1e-4)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-4)
    assert np.mean(a.predict(X) == b.predict(X)) > 0.99


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic"])
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_regressor_same_coefficients(activation, solver):
    X, y = make_regression(300, 8, noise=0.1, random_state=1)
    y = y / np.std(y)

    def make():
        return MLPRegressor(
            hidden_layer_sizes=(32,),
            activation=activation,
            solver=solver,
            max_iter=30,
            random_state=0,
        )

    a, b = _fit_both(make, X, y)
    assert _coef_error(a, b) < 1e-8
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-6, atol=1e-8)


def test_regressor_float32():
    X, y = make_regression(200, 6, noise=0.1, random_state=2)
    X, y = X.astype(np.float32), (y / np.std(y)).astype(np.float32)

    def make():
        return MLPRegressor(
            hidden_layer_sizes=(16,), activation="tanh", max_iter=20, random_state=0
        )

    a, b = _fit_both(make, X, y)
    assert a.coefs_[0].dtype == np.float32
    assert _coef_error(a, b) < 1e-4


def test_patched_kernels_are_called(monkeypatch):
    calls = []
    real = fastact.relu_backward

    def spy(*args, **kw):
        calls.append(args[0].dtype)
        return real(*args, **kw)

    monkeypatch.setattr(fastact, "relu_backward", spy)
    X, y = make_classification(60, 4, random_state=0)
    with fsk.patched(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPClassifier(hidden_layer_sizes=(4, 4), max_iter=2, random_state=0).fit(X, y)
    assert calls


def test_sklearn_gradient_test_under_the_patch():
    """scikit-learn's own analytic-vs-numeric gradient test, with the patch on."""
    code = (
        "import sys, pytest, fastact.sklearn as f; f.patch();"
        "from sklearn.neural_network import _base;"
        "assert _base.ACTIVATIONS['relu'].__name__.startswith('fastact');"
        "sys.exit(pytest.main(['--pyargs', 'sklearn.neural_network.tests.test_mlp',"
        " '-k', 'gradient', '-q', '-p', 'no:cacheprovider']))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    if r.returncode == 4 or "no tests ran" in r.stdout or "ModuleNotFoundError" in r.stdout:
        pytest.skip("scikit-learn's test suite is not installed")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "passed" in r.stdout


def test_import_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.neural_network._base", None)
    monkeypatch.delitem(sys.modules, "fastact.integrations.sklearn")
    monkeypatch.delitem(sys.modules, "fastact.sklearn")
    with pytest.raises(ImportError, match=r"fastact\[sklearn\]"):
        import fastact.sklearn  # noqa: F401


# --- the table's activations in scikit-learn's MLP, fused passes ----------

from sklearn.neural_network import _multilayer_perceptron as _mlp  # noqa: E402
from sklearn.preprocessing import LabelBinarizer  # noqa: E402
from sklearn.utils._param_validation import InvalidParameterError  # noqa: E402

from fastact.table import TABLE  # noqa: E402

BASE = _mlp.BaseMultilayerPerceptron
PASSES = ("_forward_pass", "_backprop", "_compute_loss_grad")
ORIGINAL_PASSES = {name: BASE.__dict__[name] for name in PASSES}
ORIGINAL_RULES = {
    cls: cls.__dict__["_parameter_constraints"]["activation"]
    for cls in (BASE, MLPRegressor)
    if "_parameter_constraints" in cls.__dict__
}


@pytest.fixture(autouse=True)
def _restore_passes():
    yield
    fsk.unpatch()
    for name, fn in ORIGINAL_PASSES.items():
        assert BASE.__dict__[name] is fn
    for cls, rule in ORIGINAL_RULES.items():
        assert cls.__dict__["_parameter_constraints"]["activation"] is rule


def test_added_names_come_from_the_table():
    want = [
        e.name
        for e in TABLE
        if not (e.rowwise or e.channel_param or e.has_training_mode)
        and not any(p.required for p in e.scalar_params)
        and e.name not in ORIGINAL_ACTS
    ]
    assert list(fsk.ADDED) == want
    assert {"gelu", "silu", "leaky_relu", "mish", "elu", "softplus"} <= set(fsk.ADDED)
    assert not {"softmax", "prelu", "rrelu", "threshold", "relu", "tanh"} & set(fsk.ADDED)
    assert set(fsk.ADDED) <= set(fsk.ROUTED)


@pytest.mark.parametrize("Model", [MLPClassifier, MLPRegressor])
def test_validation_is_extended_and_restored(Model):
    X, y = make_classification(40, 4, random_state=0)
    with pytest.raises(InvalidParameterError, match="gelu"):
        Model(activation="gelu", max_iter=1).fit(X, y)
    with fsk.patched(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name in ("gelu", "silu", "relu"):
            Model(activation=name, max_iter=2).fit(X, y)
        with pytest.raises(InvalidParameterError, match="nope"):
            Model(activation="nope").fit(X, y)
        assert BASE.__dict__["_backprop"] is not ORIGINAL_PASSES["_backprop"]
    with pytest.raises(InvalidParameterError, match="silu"):
        Model(activation="silu", max_iter=1).fit(X, y)


def test_partial_patch_adds_only_what_it_names():
    fsk.patch(["gelu"])
    assert "gelu" in _base.ACTIVATIONS and "silu" not in _base.ACTIVATIONS
    assert _base.ACTIVATIONS["relu"] is ORIGINAL_ACTS["relu"]
    fsk.unpatch()
    assert "gelu" not in _base.ACTIVATIONS


def _numeric_check(mlp, X, Y, sample_weight=None):
    """scikit-learn's analytic gradient (_loss_grad_lbfgs) against central differences."""
    theta = np.hstack([p.ravel() for p in mlp.coefs_ + mlp.intercepts_])
    units = [X.shape[1], *mlp.hidden_layer_sizes, mlp.n_outputs_]
    activations = [X] + [np.empty((len(X), u)) for u in units[1:]]
    deltas = [np.empty((len(X), u)) for u in units[1:]]
    coef_grads = [np.empty((a, b)) for a, b in zip(units[:-1], units[1:])]
    intercept_grads = [np.empty(u) for u in units[1:]]

    def loss_grad(t):
        return mlp._loss_grad_lbfgs(
            t, X, Y, sample_weight, activations, deltas, coef_grads, intercept_grads
        )

    _, grad = loss_grad(theta)
    grad = grad.copy()
    num = np.empty_like(theta)
    h = 1e-6
    for k in range(theta.size):
        d = np.zeros_like(theta)
        d[k] = h
        num[k] = (loss_grad(theta + d)[0] - loss_grad(theta - d)[0]) / (2 * h)
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", *fsk.ADDED])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_gradient_through_sklearn_matches_finite_differences(activation, weighted):
    rng = np.random.RandomState(42)
    X = rng.rand(6, 5)
    y = np.array([0, 1, 2, 0, 1, 2])
    Y = LabelBinarizer().fit_transform(y).astype(np.float64)
    sw = rng.uniform(0.5, 2.0, len(X)) if weighted else None
    with fsk.patched(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPClassifier(
            activation=activation,
            hidden_layer_sizes=(7, 4),
            solver="lbfgs",
            alpha=1e-5,
            max_iter=1,
            random_state=1,
        ).fit(X, y)
        _numeric_check(mlp, X, Y, sw)
        reg = MLPRegressor(
            activation=activation,
            hidden_layer_sizes=(5,),
            solver="lbfgs",
            max_iter=1,
            random_state=0,
        )
        reg.fit(X, Y[:, 0])
        _numeric_check(reg, X, Y[:, :1], sw)


@pytest.mark.parametrize("activation", ["gelu", "silu", "leaky_relu", "mish", "elu", "softplus"])
@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_fits_converge(activation, solver):
    X, y = make_classification(400, 10, n_classes=3, n_informative=6, random_state=0)
    with fsk.patched(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(
            hidden_layer_sizes=(32, 16),
            activation=activation,
            solver=solver,
            max_iter=300 if solver == "adam" else 200,
            learning_rate_init=0.01,
            random_state=0,
        ).fit(X, y)
        assert clf.score(X, y) > 0.95
    curve = clf.loss_curve_ if solver == "adam" else None
    if curve is not None:
        assert curve[-1] < 0.2 * curve[0]


def test_fused_passes_are_used(monkeypatch):
    calls = {"forward": [], "backward": []}
    real_f, real_b = impl._bias_forward, impl._bias_backward

    def spy_f(entry, *args):
        calls["forward"].append(entry.name)
        return real_f(entry, *args)

    def spy_b(entry, *args):
        calls["backward"].append(entry.name)
        return real_b(entry, *args)

    monkeypatch.setattr(impl, "_bias_forward", spy_f)
    monkeypatch.setattr(impl, "_bias_backward", spy_b)
    X, y = make_classification(60, 4, random_state=0)
    with fsk.patched(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for act, name in (("relu", "relu"), ("logistic", "sigmoid"), ("gelu", "gelu")):
            MLPClassifier(hidden_layer_sizes=(4, 3), activation=act, max_iter=1).fit(X, y)
            assert calls["forward"].count(name) >= 2 and calls["backward"].count(name) >= 1
        calls["forward"].clear()
        MLPClassifier(hidden_layer_sizes=(4,), activation="identity", max_iter=1).fit(X, y)
        assert not calls["forward"]


def test_input_saving_derivative_outside_a_pass_says_why():
    Z, delta = np.ones((3, 2)), np.ones((3, 2))
    with fsk.patched():
        with pytest.raises(RuntimeError, match="input"):
            _base.DERIVATIVES["gelu"](Z, delta)
        np.testing.assert_array_equal(delta, 1.0)  # nothing written
        _base.DERIVATIVES["leaky_relu"](Z, delta)  # from the output: fine anywhere
        np.testing.assert_array_equal(delta, 1.0)
        X = np.array([[-1.0, 2.0]])
        _base.ACTIVATIONS["leaky_relu"](X)
        np.testing.assert_allclose(X, [[-0.01, 2.0]])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_added_activation_float32_matches_float64(dtype):
    X, y = make_classification(200, 8, n_classes=2, random_state=3)
    with fsk.patched(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = MLPClassifier((16,), activation="silu", max_iter=20, random_state=0).fit(X, y)
        b = MLPClassifier((16,), activation="silu", max_iter=20, random_state=0)
        b.fit(X.astype(dtype), y)
        assert b.coefs_[0].dtype == dtype
        np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-3)


def test_16_bit_arrays_go_to_scikit_learn():
    """scikit-learn's MLP computes in float32/float64; a float16 array handed to a patched
    function directly runs scikit-learn's own code, unchanged."""
    x = np.linspace(-3, 3, 50).astype(np.float16)
    want, got = x.copy(), x.copy()
    _base.ACTIVATIONS["tanh"](want)  # in place, as scikit-learn calls them
    with fsk.patched():
        _base.ACTIVATIONS["tanh"](got)
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, want)


# --- the optimizers' steps ------------------------------------------------

from sklearn.neural_network import _stochastic_optimizers as _opt  # noqa: E402

OPTIMIZERS = {
    "adam": lambda p: _opt.AdamOptimizer(p, 0.01),
    "sgd": lambda p: _opt.SGDOptimizer(p, 0.1, "constant", 0.0, False),
    "momentum": lambda p: _opt.SGDOptimizer(p, 0.1, "invscaling", 0.9, False),
    "nesterov": lambda p: _opt.SGDOptimizer(p, 0.1, "adaptive", 0.9, True),
}


def _state(opt) -> list[np.ndarray]:
    return getattr(opt, "ms", []) + getattr(opt, "vs", []) + getattr(opt, "velocities", [])


def _steps(make, dtype, patched: bool, grad_dtype=None):
    rng = np.random.default_rng(3)
    shapes = [(7, 5), (5, 3), (5,), (3,)]
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    opt = make(params)
    before = [id(a) for a in _state(opt)]
    with fsk.patched() if patched else contextlib.nullcontext():
        for t in range(12):
            dtypes = grad_dtype or [dtype] * len(shapes)
            grads = [rng.standard_normal(s).astype(d) for s, d in zip(shapes, dtypes)]
            grads[0][0, 0] = 0.0  # a zero gradient at a first step (v = 0 for Adam)
            opt.update_params(params, grads)
            opt.iteration_ends(t)
    return params, opt, before


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_steps_are_the_same_bits(name, dtype):
    a, opt_a, _ = _steps(OPTIMIZERS[name], dtype, False)
    b, opt_b, ids = _steps(OPTIMIZERS[name], dtype, True)
    for p, q in zip(_state(opt_a), _state(opt_b)):
        np.testing.assert_array_equal(p, q, strict=True)
    for p, q in zip(a, b):
        assert p.dtype == q.dtype == dtype
        if name == "adam" and dtype == np.float32:
            # scikit-learn computes this update in float64, the patched step in float32
            np.testing.assert_allclose(p, q, rtol=2e-7, atol=0)
        else:
            np.testing.assert_array_equal(p, q, strict=True)
    if name == "adam" and dtype == np.float32:
        assert any(np.any(p != q) for p, q in zip(a, b))  # the difference allowed above is seen
    assert opt_a.learning_rate == opt_b.learning_rate
    if name in ("adam", "momentum", "nesterov"):
        # the moments and velocities were updated in place, not rebuilt
        assert [id(s) for s in _state(opt_b)] == ids


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_compiled_step_is_the_numpy_passes_bits(dtype, monkeypatch):
    """The compiled one-pass Adam step gives the bits of the NumPy passes (the path of
    parameters that are not C-contiguous), on every element."""
    from fastact.integrations import sklearn as integration

    rng = np.random.default_rng(5)
    n = 4099
    param, grad, m, v = (rng.standard_normal(n).astype(dtype) for _ in range(4))
    v = np.abs(v)
    grad[:5] = [0.0, -0.0, 1e-30, -1e30, 3.0]
    v[:3] = 0.0  # a zero second moment with a zero gradient: the update is 0 / eps
    scalars = (0.9, 0.999, 1e-8, 0.0123)
    want = [a.copy() for a in (param, grad, m, v)]
    with np.errstate(over="ignore"):  # -1e30 squared overflows float32: v = inf there
        integration._adam_step(*want, *scalars)
    got = [a.copy() for a in (param, grad, m, v)]
    beta_1, beta_2, eps, lr = scalars
    t = np.dtype(dtype).type
    integration._adam_kernel()(
        *got, t(1 - beta_1), t(beta_1), t(1 - beta_2), t(beta_2), t(eps), t(-lr)
    )
    for a, b in zip(want, got):
        np.testing.assert_array_equal(a, b, strict=True)
    assert not np.array_equal(want[0], param)  # the step moved the parameters


def test_adam_non_contiguous_parameters_take_the_numpy_passes():
    """A Fortran-ordered parameter steps through the NumPy passes: the same bits as the
    C-ordered copy through the compiled step."""
    rng = np.random.default_rng(6)
    c = [rng.standard_normal((6, 4)).astype(np.float32)]
    f = [np.asfortranarray(c[0])]
    opts = [_opt.AdamOptimizer(p, 0.01) for p in (c, f)]
    with fsk.patched():
        for _ in range(3):
            g = rng.standard_normal((6, 4)).astype(np.float32)
            opts[0].update_params(c, [g])
            opts[1].update_params(f, [np.asfortranarray(g)])
    np.testing.assert_array_equal(c[0], f[0])
    assert f[0].flags.f_contiguous and not f[0].flags.c_contiguous


@pytest.mark.parametrize("name", ["adam", "nesterov"])
def test_optimizer_mixed_dtypes_go_to_sklearn(name):
    """float64 gradients of float32 parameters (the intercepts of a weighted fit) take
    scikit-learn's step, whose states become float64; the other parameters stay in place."""
    mixed = [np.float32, np.float32, np.float64, np.float64]
    a, opt_a, _ = _steps(OPTIMIZERS[name], np.float32, False, mixed)
    b, opt_b, ids = _steps(OPTIMIZERS[name], np.float32, True, mixed)
    for p, q in zip(_state(opt_a), _state(opt_b)):
        np.testing.assert_array_equal(p, q, strict=True)
    for i, (p, q) in enumerate(zip(a, b)):
        if name == "adam" and i < 2:
            np.testing.assert_allclose(p, q, rtol=2e-7, atol=0, strict=True)
        else:
            np.testing.assert_array_equal(p, q, strict=True)
    if name == "adam":
        assert opt_a.t == opt_b.t == 12
    state = _state(opt_b)
    n = len(a)
    for k in range(0, len(state), n):
        assert [s.dtype for s in state[k : k + n]] == [np.float32] * 2 + [np.float64] * 2
        assert [id(s) for s in state[k : k + 2]] == ids[k : k + 2]  # in place


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_weighted_float32_fit_same_coefficients(solver):
    X, y = make_classification(300, 10, n_classes=3, n_informative=5, random_state=0)
    X = X.astype(np.float32)
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(X)).astype(np.float32)

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return MLPClassifier(
                hidden_layer_sizes=(16, 8), solver=solver, max_iter=30, random_state=0
            ).fit(X, y, sample_weight=w)

    a = fit()
    with fsk.patched():
        b = fit()
    assert a.coefs_[0].dtype == b.coefs_[0].dtype == np.float32
    assert _coef_error(a, b) < 1e-4
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-4)


def test_optimizer_steps_are_restored():
    own = {
        cls: cls.__dict__.get("update_params") for cls in (_opt.AdamOptimizer, _opt.SGDOptimizer)
    }
    base = _opt.BaseOptimizer.update_params
    with fsk.patched(["tanh"]):
        assert _opt.AdamOptimizer.update_params is not base
        assert _opt.SGDOptimizer.update_params is not base
    for cls, fn in own.items():
        assert cls.__dict__.get("update_params") is fn
    assert _opt.AdamOptimizer.update_params is base


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_fits_in_threads_match_serial_fits(solver):
    X, y = make_classification(200, 8, n_classes=3, n_informative=5, random_state=0)
    X = X.astype(np.float32)

    def fit(seed):
        return MLPClassifier(
            hidden_layer_sizes=(16,), solver=solver, max_iter=20, random_state=seed
        ).fit(X, y)

    with fsk.patched():
        serial = [fit(s) for s in range(4)]
        with ThreadPoolExecutor(4) as pool:
            threaded = list(pool.map(fit, range(4)))
    for a, b in zip(serial, threaded):
        for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
            np.testing.assert_array_equal(p, q)


def test_benchmark_runs_and_reports_the_blas_share():
    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, str(root / "benchmarks" / "bench_sklearn.py")]
    small = ["--samples", "300", "--hidden", "16", "--epochs", "1", "--repeat", "1"]
    run = subprocess.run(
        [*cmd, *small, "--activations", "relu", "--threads", "1", "--cpu", "--blas"],
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert run.returncode == 0, run.stderr
    assert "CPU time" in run.stdout
    row = run.stdout.strip().splitlines()[-1].split()
    assert row[0] == "relu" and row[3].endswith("x") and row[-1].endswith("%")
    bad = subprocess.run([*cmd, "--cpu"], capture_output=True, text=True, cwd=root)
    assert bad.returncode == 2 and "--cpu needs --threads 1" in bad.stderr
