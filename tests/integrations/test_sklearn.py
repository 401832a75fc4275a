"""fastact.sklearn: scikit-learn's MLP with its activations routed to fastact."""

from __future__ import annotations

import subprocess
import sys
import warnings

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
    assert set(acts) == set(ORIGINAL_ACTS) and set(ders) == set(ORIGINAL_DERS)
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
