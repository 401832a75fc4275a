"""auto dispatch: the profile, the compiled fast path, thread sharing, explain, tune."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

import fastact
from fastact import _api, _dispatch, _half, _profile
from fastact._profile import Plan
from tests.conftest import ENTRIES, Call, assert_close, entry_id, sample


@pytest.fixture
def profile_path(tmp_path, monkeypatch):
    p = tmp_path / "profile.json"
    monkeypatch.setenv("FASTACT_PROFILE", str(p))
    yield p
    monkeypatch.undo()  # back to the session's test profile
    _dispatch.load_profile()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shipped_defaults_keep_cheap_kernels_serial_longer(dtype):
    cheap = _dispatch.default_plan(fastact.activation("relu"), "forward", dtype)
    costly = _dispatch.default_plan(fastact.activation("gelu"), "forward", dtype)
    assert cheap.serial_below > costly.serial_below
    assert _dispatch.default_plan(fastact.activation("sigmoid"), "backward", dtype) == cheap


def test_cheap_kernels_limit_is_in_bytes():
    """A cheap float64 pass goes parallel at half the elements of a float32 one (the
    same bytes); 16-bit arrays run float32's kernels and take its limit."""
    relu = fastact.activation("relu")
    f32, f64, f16 = (
        _dispatch.default_plan(relu, "backward", d).serial_below
        for d in (np.float32, np.float64, np.float16)
    )
    assert f32 == 2 * f64 == f16 == _profile.CHEAP_SERIAL_BELOW_BYTES // 4
    gelu = fastact.activation("gelu")
    assert (
        _dispatch.default_plan(gelu, "forward", np.float64).serial_below
        == _dispatch.default_plan(gelu, "forward", np.float32).serial_below
    )


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [16, 100_003])
def test_auto_dispatches_every_entry(entry, dtype, n):
    call = Call(entry)
    x = sample(entry, n, dtype)
    for pass_ in _dispatch.PASSES:
        ex = fastact.explain(entry.name, x, pass_=pass_)
        assert ex.backend in fastact.backends()
    y = call.forward(x)
    assert_close(
        y,
        call.ref_forward(x),
        dtype,
        cond=call.condition(x),
        scale=call.forward_scale(x),
        atol=call.underflow(x, dtype),
    )
    gx = call.backward(x, call.saved(x, y))
    assert gx.shape == x.shape and gx.dtype == dtype


def test_fast_path_matches_general_path():
    for entry in ENTRIES:
        if entry.channel_param or entry.rowwise or entry.has_training_mode:
            continue
        call = Call(entry)
        params = tuple(call.params[p.name] for p in entry.scalar_params)
        for dtype in (np.float32, np.float64):
            x = sample(entry, 100, dtype)
            fast = call.forward(x)
            general = _api.forward(entry, x, None, params)
            np.testing.assert_array_equal(fast, general)
            s = call.saved(x, fast)
            np.testing.assert_array_equal(
                call.backward(x, s), _api.backward(entry, x, s, None, params)
            )


def test_fast_path_leaves_errors_to_the_general_path():
    x = np.linspace(-1, 1, 8, dtype=np.float32)
    ro = x.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        fastact.relu(ro, out=ro)
    with pytest.raises(ValueError, match="negative_slope must be >= 0"):
        fastact.leaky_relu_backward(x, x, -0.5)
    with pytest.raises(TypeError, match="out has dtype"):
        fastact.relu(x, out=np.empty(8))
    # overlapping out through the fast path's pointer check
    buf = np.linspace(-1, 1, 9, dtype=np.float32)
    want = fastact.relu(buf[:8].copy())
    fastact.relu(buf[:8], out=buf[1:])
    np.testing.assert_array_equal(buf[1:], want)


def test_profile_round_trip_programs_dispatch(profile_path):
    plans = {"relu/forward/float32": Plan(serial_below=1000, small="cython", large="numpy")}
    _profile.save(plans, profile_path)
    source = _dispatch.load_profile()
    assert str(profile_path) in source
    x = np.ones(5000, np.float32)
    ex = fastact.explain("relu", x)
    assert ex.backend == "numpy"
    np.testing.assert_array_equal(fastact.relu(x), x)
    relu = fastact.activation("relu")
    assert _dispatch.fast_policy().limits[0, 0, 0, relu.kernel_id] == 1000
    if "cython" in fastact.backends():
        assert _dispatch.fast_threads(relu, "forward", np.float32, 999) == 1
        assert _dispatch.fast_threads(relu, "forward", np.float32, 1000) == 0


@pytest.mark.parametrize(
    "content, reason",
    [
        ("{not json", "Expecting"),
        ('{"format": 99}', "format 99"),
        ('{"format": 1, "fastact": "0.0.1", "cpu": "x", "plans": {}}', "written by fastact 0.0.1"),
    ],
)
def test_corrupt_or_stale_profile_is_ignored_with_a_warning(profile_path, content, reason):
    profile_path.write_text(content)
    with pytest.warns(RuntimeWarning, match=reason):
        source = _dispatch.load_profile()
    assert source.startswith("defaults")
    assert fastact.relu(np.array([-1.0, 1.0])).tolist() == [0.0, 1.0]


def test_profile_from_another_cpu_is_ignored(profile_path):
    _profile.save({}, profile_path)
    data = json.loads(profile_path.read_text())
    data["cpu"] = "some|other|cpu"
    profile_path.write_text(json.dumps(data))
    with pytest.warns(RuntimeWarning, match="another CPU"):
        _dispatch.load_profile()


def test_concurrent_parallel_calls_share_the_threads():
    inside = threading.Event()
    release = threading.Event()
    shares = []

    def first():
        with _dispatch.running(2) as n:
            shares.append(n)
            inside.set()
            release.wait(10)

    t = threading.Thread(target=first)
    t.start()
    inside.wait(10)
    with _dispatch.running(2) as n:
        shares.append(n)
    release.set()
    t.join()
    assert shares == [2, 1]


@pytest.mark.parametrize(
    "plans, reason",
    [
        (
            {"relu/forward/float64": {"serial_below": 10, "small": "bogus", "large": "cython"}},
            "bad backend",
        ),
        (
            {"relu/forward": {"serial_below": 10, "small": "cython", "large": "cython"}},
            "bad plan key",
        ),
        ({"relu/forward/float128": {}}, "bad plan key"),
        ({"relu/forward/float32": {"serial_below": 2**70}}, "bad serial_below"),
        ({"relu/forward/float32": {"serial_below": True}}, "bad serial_below"),
        ({"relu/forward/float32": {"colour": "blue"}}, "unexpected keyword"),
    ],
)
def test_profile_with_bad_plans_is_ignored(profile_path, plans, reason):
    _profile.save({}, profile_path)
    data = json.loads(profile_path.read_text())
    data["plans"] = plans
    profile_path.write_text(json.dumps(data))
    with pytest.warns(RuntimeWarning, match=reason):
        _dispatch.load_profile()
    assert fastact.relu(np.array([-1.0, 2.0])).tolist() == [0.0, 2.0]


@pytest.mark.parametrize("short, long", [("fwd", "forward"), ("bwd", "backward")])
def test_explain_takes_the_pass_names_the_bench_prints(short, long):
    x = np.ones(100, np.float32)
    assert fastact.explain("sigmoid", x, pass_=short) == fastact.explain("sigmoid", x, pass_=long)
    with pytest.raises(ValueError, match="pass_ must be 'forward'/'fwd'"):
        fastact.explain("sigmoid", x, pass_="sideways")


def test_explain_names_the_backend_it_reports():
    x = np.ones(10**6)
    with fastact.config(backend="numpy", num_threads=1):
        ex = fastact.explain("sigmoid", x)
    assert (ex.backend, ex.num_threads) == ("numpy", 1)
    text = str(ex)
    assert "'numpy' was chosen by set_backend/config" in text
    assert "plan's" not in text.split("\n", 2)[2] and "fast path" not in text
    ex = fastact.explain("sigmoid", x)
    if ex.backend == "cython":
        assert any("'cython', the plan's backend for" in r for r in ex.reasons)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_explain_says_how_16_bit_arrays_are_computed(dtype):
    if dtype == "bfloat16":
        dt = np.dtype(pytest.importorskip("ml_dtypes").bfloat16)
    else:
        dt = np.dtype(dtype)
    ex = fastact.explain("gelu", np.ones(1000, dt), pass_="backward")
    said = [r for r in ex.reasons if "computed by the float32 kernels" in r]
    assert ex.dtype == dt.name
    assert len(said) == (dtype != "float32")
    assert not said or said[0].startswith(f"{dt.name}: stored in 16 bits")
    if said and "cython" in fastact.backends():  # plain 16-bit calls run in C as float32's
        f32 = fastact.explain("gelu", np.ones(1000, np.float32), pass_="backward")
        fast = any("takes the compiled fast path" in r for r in f32.reasons)
        assert said[0].endswith("a plain call takes the compiled fast path") == fast


@pytest.mark.skipif("cython" not in fastact.backends(), reason="the Cython backend is not built")
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_the_fast_path_decides_as_the_general_path(threads):
    """Where the compiled fast path takes a plain call, it runs what decide picks:
    the Cython backend with the same thread count, the count in force or that of
    the calling context's config block."""

    def check():
        for entry in ENTRIES:
            for pass_ in _dispatch.PASSES:
                for dtype in (*_dispatch.DTYPES, *_half.dtypes()):
                    for n in (1, 100, 8191, 8192, 70_001, 10**6):
                        fast = _dispatch.fast_threads(entry, pass_, dtype, n)
                        backend, nthreads = _dispatch.decide(entry, pass_, np.dtype(dtype), n)
                        if fast:
                            assert (backend.name, nthreads) == ("cython", fast), (entry, n)
                        elif not (entry.rowwise or entry.channel_param):
                            # elementwise calls leave only non-Cython plans to the general path
                            assert backend.name != "cython" or n < 1, (entry, pass_, n)

    old = fastact.get_num_threads()
    fastact.set_num_threads(threads)
    try:
        check()
    finally:
        fastact.set_num_threads(old)
    with fastact.config(num_threads=threads):
        check()
        relu = fastact.activation("relu")
        if _dispatch.c_parallel():  # (else parallel calls go to Numba: the general path)
            assert _dispatch.fast_threads(relu, "forward", "float32", 10**6) == threads


def test_cost_is_judged_in_one_place():
    assert _dispatch.cost_class(fastact.activation("relu"), "forward") == "cheap"
    assert _dispatch.cost_class(fastact.activation("gelu"), "forward") == "transcendental"
    assert _dispatch.cost_class(fastact.activation("softmax"), "forward") == "transcendental"


def _imports(module: str) -> set[str]:
    """fastact modules that ``module`` imports, at any level of its code."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec(module)
    tree = ast.parse(open(spec.origin).read())
    package = module if spec.origin.endswith("__init__.py") else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            found |= {base} | {f"{base}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {m for m in found if m.startswith("fastact.")}


def test_the_policy_layers_import_one_way():
    """_api -> _dispatch -> _config: no layer imports one above it, not even inside a function."""
    assert not _imports("fastact._config") & {"fastact._dispatch", "fastact._api"}
    assert "fastact._api" not in _imports("fastact._dispatch")
    for backend in ("fastact._backends", "fastact._backends.cython", "fastact._backends.numpy"):
        assert not _imports(backend) & {"fastact._dispatch", "fastact._api", "fastact._config"}


def test_kernel_id_is_the_table_index_also_for_a_copy():
    import dataclasses
    import pickle

    from fastact.table import TABLE

    for k, entry in enumerate(TABLE):
        assert entry.kernel_id == k
        assert pickle.loads(pickle.dumps(entry)).kernel_id == k  # a worker process's copy
    assert dataclasses.replace(TABLE[0], name="not_in_the_table").kernel_id is None
