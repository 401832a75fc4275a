"""The public API's contract: bad input, out=, in place, rrelu's seeds, prelu's weight."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import fastact
from tests.conftest import BACKENDS, Call, sample

BAD_DTYPES = {
    "complex": np.array([1 + 2j, 3j]),
    "object": np.array([1.0, None], dtype=object),
    "string": np.array(["a", "b"]),
    "bool": np.array([True, False]),
    "void": np.zeros(2, dtype="V2"),  # two bytes, but not a float (bfloat16 is told by equality)
}


@pytest.mark.parametrize("kind", list(BAD_DTYPES))
def test_bad_dtypes_are_refused(entry, kind):
    call = Call(entry)
    bad = BAD_DTYPES[kind]
    with pytest.raises(TypeError, match="x has dtype|x must be"):
        call.forward(bad)
    good = np.ones(2)
    with pytest.raises(TypeError, match="grad_output"):
        call.backward(bad, good)
    with pytest.raises(TypeError, match="saved"):
        call.backward(good, bad)


def _untouched(out):
    before = out.copy()
    return lambda: np.testing.assert_array_equal(out, before)


def test_bad_out_is_refused_and_nothing_written(entry):
    call = Call(entry)
    x = np.linspace(-2, 2, 12).reshape(3, 4)
    cases = [
        (np.zeros((4, 3)), ValueError, "out has shape"),
        (np.zeros((3, 4), np.float32), TypeError, "out has dtype"),
        ([0.0] * 12, TypeError, "out must be a numpy.ndarray"),
    ]
    ro = np.zeros((3, 4))
    ro.flags.writeable = False
    cases.append((ro, ValueError, "out is read-only"))
    for out, exc, msg in cases:
        check = _untouched(out) if isinstance(out, np.ndarray) else (lambda: None)
        with pytest.raises(exc, match=msg):
            call.forward(x, out=out)
        with pytest.raises(exc, match=msg):
            call.backward(x, x, out=out)
        check()


def test_shape_mismatch_names_both(entry):
    call = Call(entry)
    with pytest.raises(ValueError, match="grad_output has shape .* saved has shape"):
        call.backward(np.ones((2, 3)), np.ones((3, 2)))


def test_bad_parameters():
    x = np.ones(3)
    with pytest.raises(TypeError, match="negative_slope must be a real number"):
        fastact.leaky_relu(x, "0.1")
    with pytest.raises(ValueError, match="lower must be <= upper"):
        fastact.rrelu(x, 0.5, 0.1)
    with pytest.raises(ValueError, match="negative_slope must be >= 0"):
        fastact.leaky_relu_backward(x, x, -0.1)
    with pytest.raises(ValueError, match="lower must be >= 0"):
        fastact.rrelu_backward(x, x, -0.1, 0.2)
    with pytest.raises(TypeError, match="seed must be an integer"):
        fastact.rrelu(x, training=True, seed=1.5)
    with pytest.raises(ValueError, match="seed must be in"):
        fastact.rrelu(x, training=True, seed=-1)
    with pytest.raises(ValueError, match="needs the seed"):
        fastact.rrelu_backward(x, x, training=True)


def test_prelu_weight_checks():
    x = np.ones((2, 3, 4))
    with pytest.raises(ValueError, match="weight has 2 elements; expected 1 or 3"):
        fastact.prelu(x, np.ones(2))
    with pytest.raises(ValueError, match="weight must be 0-d or 1-d"):
        fastact.prelu(x, np.ones((3, 1)))
    with pytest.raises(TypeError, match="weight must be a real array"):
        fastact.prelu(x, np.array(["a"] * 3))
    with pytest.raises(ValueError, match="expected 1 or 1"):
        fastact.prelu(np.ones(5), np.ones(5))


def test_prelu_grad_weight_shape_and_dtype():
    x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 3, 4)
    gx, gw = fastact.prelu_backward(np.ones_like(x), x, np.full(3, 0.25))
    assert gx.dtype == np.float32 and gw.shape == (3,) and gw.dtype == np.float32
    gx, gw = fastact.prelu_backward(np.ones_like(x), x, 0.25)
    assert gw.shape == ()


@pytest.mark.parametrize("backend", BACKENDS)
def test_rrelu_training_is_deterministic_per_seed(backend):
    x = -np.abs(sample(None, 100_000, np.float32)) - 0.1
    with fastact.config(backend=backend, num_threads=1):
        a = fastact.rrelu(x, training=True, seed=42)
    with fastact.config(backend=backend, num_threads=2):
        b = fastact.rrelu(x, training=True, seed=42)
        c = fastact.rrelu(x, training=True, seed=43)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    slopes = a / x
    assert slopes.min() >= 1 / 8 - 1e-6 and slopes.max() <= 1 / 3 + 1e-6
    # roughly uniform: mean and spread of U(1/8, 1/3)
    assert slopes.mean() == pytest.approx((1 / 8 + 1 / 3) / 2, abs=2e-3)
    assert slopes.std() == pytest.approx((1 / 3 - 1 / 8) / np.sqrt(12), abs=2e-3)
    # backward regenerates the same slopes
    g = np.ones_like(x)
    gx = fastact.rrelu_backward(g, a, training=True, seed=42)
    np.testing.assert_allclose(gx, slopes, rtol=1e-6)


def test_rrelu_same_slopes_across_backends_and_layouts():
    x = -np.ones((300, 200), np.float64)
    results = []
    for backend in BACKENDS:
        with fastact.config(backend=backend):
            results.append(fastact.rrelu(x, training=True, seed=7))
            results.append(
                np.asfortranarray(fastact.rrelu(np.asfortranarray(x), training=True, seed=7))
            )
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_rrelu_without_seed_draws_fresh_slopes():
    x = -np.ones(1000)
    assert not np.array_equal(fastact.rrelu(x, training=True), fastact.rrelu(x, training=True))
    np.testing.assert_array_equal(fastact.rrelu(x), x * (1 / 8 + 1 / 3) / 2)


@pytest.mark.parametrize("backend", ["cython"])
def test_in_place_allocates_nothing(entry, backend):
    x = sample(entry, 2_000_000, np.float32)
    call = Call(entry)
    y = call.forward(x)
    s = call.saved(x, y).copy()
    g = x.copy()
    with fastact.config(backend=backend):
        call.forward(x, out=x)  # warm up
        tracemalloc.start()
        r = call.forward(x, out=x)
        r2 = call.backward(g, s, out=g)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert r is x
    assert peak < 64 * 1024, f"in-place calls allocated {peak} bytes"
    del r2


def test_inputs_are_never_modified(entry):
    x = np.linspace(-5, 5, 101)
    g = np.linspace(1, 2, 101)
    x0, g0 = x.copy(), g.copy()
    call = Call(entry)
    y = call.forward(x)
    call.backward(g, call.saved(x, y))
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(g, g0)


def test_mixed_dtypes_in_backward():
    """sklearn's MLP passes a float32 saved output with a float64 gradient."""
    y = fastact.sigmoid(np.linspace(-3, 3, 10, dtype=np.float32))
    g = np.ones(10)
    gx = fastact.sigmoid_backward(g, y, out=g)
    assert gx is g and gx.dtype == np.float64
    np.testing.assert_allclose(gx, y.astype(np.float64) * (1 - y.astype(np.float64)), rtol=1e-6)


@pytest.mark.parametrize("order", [">", "<"])
def test_byte_order_is_respected_on_every_path(order):
    for n in (3, 100_000):  # the fast path and the general path
        x = np.linspace(-2, 2, n).astype(f"{order}f4")
        want = fastact.relu(x.astype(np.float32))
        np.testing.assert_array_equal(fastact.relu(x), want)
        g = np.ones(n, f"{order}f8")
        y = np.full(n, 0.5, f"{order}f8")
        np.testing.assert_array_equal(fastact.sigmoid_backward(g, y), np.full(n, 0.25))
        out = np.zeros(n, f"{order}f4")
        assert fastact.relu(x.astype(np.float32), out=out) is out
        np.testing.assert_array_equal(out, want)


def test_unaligned_arrays():
    raw = np.zeros(4 * 1000 + 1, np.uint8)
    u = raw[1:].view(np.float32)
    u[:] = np.linspace(-1, 1, 1000, dtype=np.float32)
    assert not u.flags.aligned
    want = fastact.relu(np.array(u))
    np.testing.assert_array_equal(fastact.relu(u), want)
    fastact.relu(u, out=u)
    np.testing.assert_array_equal(u, want)


@pytest.mark.parametrize(
    "call, exc, msg",
    [
        (lambda x: fastact.softshrink(x, lambd="1"), TypeError, "lambd must be a real number"),
        (lambda x: fastact.hardtanh(x, min_val=None), TypeError, "min_val must be a real"),
        (lambda x: fastact.celu(x, alpha=np.array([1.0, 2.0])), TypeError, "alpha must be"),
        (lambda x: fastact.celu(x, alpha=10**400), ValueError, "alpha is out of the float64"),
        (lambda x: fastact.leaky_relu_backward(x, x, "a"), TypeError, "negative_slope must be"),
        (lambda x: fastact.gelu(x, approximate="exact"), ValueError, "approximate must be"),
        (lambda x: fastact.celu(x, alpha=0.0), ValueError, "alpha must not be 0"),
        (lambda x: fastact.hardtanh(x, 1.0, -1.0), ValueError, "min_val must be <= max_val"),
        (lambda x: fastact.softshrink(x, -0.5), ValueError, "lambd must be >= 0"),
    ],
)
def test_parameter_errors_name_the_parameter(call, exc, msg):
    x = np.ones(3)
    with pytest.raises(exc, match=msg):
        call(x)


def test_parameters_are_rounded_to_the_dtype_on_every_backend():
    x = np.array([np.float32(0.1)], np.float32)
    results = []
    for backend in BACKENDS:
        with fastact.config(backend=backend):
            results.append((fastact.threshold(x, 0.1, -1.0)[0], fastact.hardshrink(x, 0.1)[0]))
    assert len(set(results)) == 1, results


def test_thread_count_is_bounded():
    with pytest.raises(ValueError, match="num_threads must be between"):
        fastact.set_num_threads(2**40)


# --- returns, errors that suggest the fix, axis or dim ----------------------


@pytest.mark.parametrize("value", [0.5, np.float64(0.5), np.array(0.5)], ids=type)
def test_out_is_returned_for_a_scalar_input(value):
    """NumPy's ufunc convention: with out= the result is out, also 0-d."""
    o = np.empty(())
    r = fastact.tanh(value, out=o)
    assert r is o and o[()] == np.tanh(0.5)
    g = np.empty(())
    assert fastact.tanh_backward(value, value, out=g) is g
    assert fastact.leaky_relu(value, 0.1, out=o) is o
    assert fastact.prelu(value, 0.25, out=o) is o
    assert fastact.prelu_backward(value, value, 0.25, out=g)[0] is g
    assert fastact.softmax(value, out=o) is o
    assert fastact.softmax_backward(value, value, out=g) is g


def test_out_is_returned_on_the_fast_and_the_general_path():
    for n in (16, 300_000):  # the compiled fast path, then the general path
        x = np.linspace(-1, 1, n, dtype=np.float32)
        out = np.empty_like(x)
        assert fastact.sigmoid(x, out=out) is out
        assert fastact.sigmoid(x[::2], out=out[::2]) is not None
        strided = np.empty((n, 2), np.float32)[:, 0]
        assert fastact.sigmoid(x, out=strided) is strided
        np.testing.assert_array_equal(strided, out)
    # a Python scalar without out= still gives a NumPy scalar
    assert isinstance(fastact.tanh(0.5), np.float64)


@pytest.mark.parametrize(
    "call, suggestion",
    [
        (lambda x: fastact.leaky_relu(x, slope=0.1), "negative_slope"),
        (lambda x: fastact.leaky_relu_backward(x, x, negative_slop=0.1), "negative_slope"),
        (lambda x: fastact.elu(x, alpa=1.0), "alpha"),
        (lambda x: fastact.gelu(x, approximation="tanh"), "approximate"),
        (lambda x: fastact.softmax(x, axes=0), "axis"),
        (lambda x: fastact.rrelu(x, train=True), "training"),
        (lambda x: fastact.prelu(x, 0.25, weights=1), "weight"),
        (lambda x: fastact.hardtanh(x, min_value=-2.0), "min_val"),
    ],
)
def test_an_unknown_keyword_names_the_closest_parameter(call, suggestion):
    with pytest.raises(
        TypeError, match=f"unexpected keyword argument .*did you mean '{suggestion}'"
    ):
        call(np.ones(3))


def test_the_unknown_keyword_message_reads_like_pythons():
    with pytest.raises(TypeError) as info:
        fastact.leaky_relu(np.ones(3), slope=0.1)
    assert str(info.value) == (
        "leaky_relu() got an unexpected keyword argument 'slope'; did you mean 'negative_slope'?"
    )
    with pytest.raises(TypeError, match="unexpected keyword argument 'zzz'; it takes"):
        fastact.leaky_relu(np.ones(3), zzz=1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'inplace'"):
        fastact.relu(np.ones(3), inplace=True)  # Python's own message: relu takes no parameters


@pytest.mark.parametrize(
    "x, out, why",
    [
        (
            [1, 2, 3],
            np.zeros(3, np.float32),
            r"expected float64 \(integer inputs compute in float64\)",
        ),
        (
            np.arange(3),
            np.zeros(3, np.float32),
            r"expected float64 \(integer inputs compute in float64\)",
        ),
        (np.ones(3, np.float32), np.zeros(3), r"expected float32 \(the dtype of x\)"),
    ],
)
def test_the_dtype_message_says_why(x, out, why):
    with pytest.raises(TypeError, match=f"out has dtype {out.dtype}, {why}"):
        fastact.relu(x, out=out)
    np.testing.assert_array_equal(out, 0)


def test_backward_dtype_message_names_grad_output():
    with pytest.raises(TypeError, match=r"expected float32 \(the dtype of grad_output\)"):
        fastact.relu_backward(np.ones(3, np.float32), np.ones(3), out=np.zeros(3))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_axis_or_dim(name):
    fwd, bwd = getattr(fastact, name), getattr(fastact, f"{name}_backward")
    x = np.linspace(-2, 2, 12).reshape(3, 4)
    for ax in (0, 1, -1):
        want = fwd(x, ax)
        np.testing.assert_array_equal(fwd(x, axis=ax), want)
        np.testing.assert_array_equal(fwd(x, dim=ax), want)
        np.testing.assert_array_equal(bwd(x, want, dim=ax), bwd(x, want, ax))
    np.testing.assert_array_equal(fwd(x), fwd(x, axis=-1))
    with pytest.raises(TypeError, match="got both axis=0 and dim=1; pass one of the two"):
        fwd(x, 0, dim=1)
    with pytest.raises(TypeError, match="got both axis"):
        bwd(x, x, axis=0, dim=0)
    with pytest.raises(ValueError, match="axis 2 is out of bounds"):
        fwd(x, dim=2)


def test_torch_ops_take_dim_or_axis():
    torch = pytest.importorskip("torch")
    import fastact.torch as ft

    x = torch.linspace(-2, 2, 12, dtype=torch.float64).reshape(3, 4)
    for name in ("softmax", "log_softmax"):
        want = getattr(torch.nn.functional, name)(x, dim=0)
        torch.testing.assert_close(getattr(ft, name)(x, dim=0), want)
        torch.testing.assert_close(getattr(ft, name)(x, axis=0), want)
        torch.testing.assert_close(getattr(ft, name)(x, 0), want)
        with pytest.raises(TypeError, match="pass one of the two"):
            getattr(ft, name)(x, axis=0, dim=0)


# --- the public functions as a module -----------------------------------------


def test_public_functions_have_source_and_signature():
    import inspect

    for name in fastact.activations():
        for fn in (getattr(fastact, name), getattr(fastact, f"{name}_backward")):
            if fastact.activation(name).kernel_id is None:
                continue  # registered by another test
            assert fn.__module__ == "fastact._functions"
            assert inspect.getsourcefile(fn).endswith("_functions.py")
            assert "unknown" not in inspect.signature(fn).parameters
            assert fn.__doc__ and "Parameters" in fn.__doc__


def test_kernel_id_is_the_position_in_the_table():
    import pickle
    from dataclasses import replace

    from fastact.table import TABLE

    assert [e.kernel_id for e in TABLE] == list(range(len(TABLE)))
    assert replace(TABLE[0], name="copy").kernel_id is None
    assert replace(TABLE[0], formula="changed").kernel_id is None
    # an equal copy (as a dask worker unpickles it) keeps its kernels
    assert replace(TABLE[3]).kernel_id == 3
    assert pickle.loads(pickle.dumps(replace(TABLE[4]))).kernel_id == 4


def test_import_fastact_imports_no_integration():
    import subprocess
    import sys

    code = (
        "import sys, fastact, numpy as np; fastact.relu(np.ones(3)); "
        "bad = [m for m in sys.modules if m.startswith('fastact.integrations') "
        "or m.split('.')[0] in ('dask', 'torch', 'sklearn', 'numba')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_other_array_types_go_to_their_registered_handler(monkeypatch):
    from fastact._api import handlers

    class Handler:
        def forward(self, entry, x, out, params, training=False, seed=None):
            return ("forward", entry.name, params)

        def rowwise_forward(self, entry, x, axis, out):
            return ("rowwise", entry.name, axis)

    class Array:
        __module__ = "fakearrays.core"

    monkeypatch.setitem(handlers._HANDLERS, "fakearrays", Handler())
    assert fastact.leaky_relu(Array(), 0.5) == ("forward", "leaky_relu", (0.5,))
    assert fastact.softmax(Array(), dim=0) == ("rowwise", "softmax", 0)


def test_the_fast_path_is_optional():
    """Without the compiled extension every call takes the general path, with the same results."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['fastact._backends.cython._kernels'] = None\n"
        "import numpy as np, fastact\n"
        "from fastact._api import fast\n"
        "assert fast.forward is fast.decline\n"
        "x = np.linspace(-2, 2, 16, dtype=np.float32)\n"
        "print(fastact.leaky_relu(x, 0.1).tolist(), fastact.softmax(x).tolist())\n"
        "o = np.empty(()); assert fastact.tanh(0.5, out=o) is o\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    x = np.linspace(-2, 2, 16, dtype=np.float32)
    want = str([fastact.leaky_relu(x, 0.1).tolist(), fastact.softmax(x).tolist()])
    assert run.stdout.strip() == want[1:-1].replace("], [", "] [")


def test_the_api_layer_imports_in_one_direction():
    """fastact._api reaches down (dispatch, the 16-bit dtypes, backends, table, the drivers'
    layout constants), never up (the package, the generated functions, registration) nor
    into an integration (they register as handlers)."""
    import ast
    from pathlib import Path

    api = Path(fastact.__file__).parent / "_api"
    allowed = {
        "..",
        "..table",
        ".._dispatch",
        ".._backends",
        ".._backends.cython",
        ".._codegen.dialect",
    }
    for path in api.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                where = "." * node.level + (node.module or "")
                if node.level == 1:
                    continue  # a sibling in fastact._api
                names = {a.name for a in node.names}
                assert where in allowed, (path.name, where)
                assert where != ".." or names <= {"_dispatch", "_half"}, (path.name, names)
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("fastact") for a in node.names), path.name
