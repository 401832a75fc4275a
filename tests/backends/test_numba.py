"""The Numba backend: agreement with the Cython backend, generated code, runtime behaviour.

The reference tests of every entry, dtype and layout on the Numba backend are
in test_kernels.py (its ``backend`` fixture includes "numba").  Here: the
Numba kernels against the Cython ones (at most 2 ulp, bitwise for the
piecewise-linear activations and rrelu's random slopes), the float model of
the generated source, the counter-based generator, laziness, the disk cache
and its fallback, and OpenMP/threading-layer interplay (in subprocesses, since
a thread pool starts once per process).
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastact
from fastact import _dispatch, reference
from fastact._codegen import numba_kernels as gen
from fastact._math.functions import HELPERS
from fastact.table import TABLE
from tests.conftest import SPECIALS, Call, example_params, sample
from tests.test_fast_path import fast_only, general_only

pytest.importorskip("numba")

from fastact._backends import get  # noqa: E402

NUMBA = get("numba")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HAVE_CYTHON = "cython" in fastact.backends()


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Units in the last place between a and b (0 where both are NaN; inf=inf is 0)."""
    a, b = np.atleast_1d(np.asarray(a)), np.atleast_1d(np.asarray(b))
    it = np.int32 if a.dtype == np.float32 else np.int64
    lo = float(np.iinfo(it).min)

    def ordered(v):
        i = v.view(it).astype(np.float64)
        return np.where(i < 0, lo - i, i)

    d = np.abs(ordered(a) - ordered(b))
    d[np.isnan(a) & np.isnan(b)] = 0
    d[np.isnan(a) != np.isnan(b)] = np.inf
    return d


def _inputs(entry, dtype, n=6000):
    x = sample(entry, n, dtype)
    x[: len(SPECIALS)] = SPECIALS
    lo, hi = entry.sample_range
    x[len(SPECIALS) : len(SPECIALS) + 500] = np.linspace(lo, hi, 500)
    g = sample(entry, n, dtype, seed=2)
    if entry.rowwise:
        return x.reshape(60, 100), g.reshape(60, 100)
    if entry.channel_param:
        return x.reshape(30, 4, 50), g.reshape(30, 4, 50)
    return x, g


def _run(backend, entry, params, training, x, g):
    call = Call(entry, params, training=training)
    with fastact.config(backend=backend, num_threads=1):
        y = call.forward(x)
        s = call.saved(x, y)
        if entry.channel_param:
            gx, gw = call.backward_full(g, s)
            return {"forward": y, "backward": gx, "grad_weight": gw}
        return {"forward": y, "backward": call.backward(g, s)}


@pytest.mark.skipif(not HAVE_CYTHON, reason="the Cython backend is not built")
def test_numba_agrees_with_cython(entry, dtype):
    """At most 2 ulp apart; bitwise for piecewise-linear entries and rrelu's slopes."""
    x, g = _inputs(entry, dtype)
    for params in example_params(entry):
        for training in (False, True) if entry.has_training_mode else (False,):
            cy = _run("cython", entry, params, training, x, g)
            nb = _run("numba", entry, params, training, x, g)
            exact = entry.piecewise_linear or training
            for what in cy:
                d = ulp_distance(np.asarray(cy[what]), np.asarray(nb[what]))
                limit = 0 if exact else 2
                worst = int(np.argmax(d))
                assert d.max() <= limit, (
                    f"{entry.name} {params} training={training} {what}: "
                    f"{d.max()} ulp at {worst} (x={np.asarray(x).flat[worst]!r})"
                )


@pytest.mark.skipif(not HAVE_CYTHON, reason="the Cython backend is not built")
@pytest.mark.parametrize("shape", [(70_001,), (3, 5, 40_000), (40_000, 3), (64, 4097)])
def test_prelu_weight_gradient_bits_match_cython(dtype, shape):
    """Same blocking and reduction order as the Cython driver, at any thread count."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=shape).astype(dtype)
    g = rng.normal(size=shape).astype(dtype)
    w = rng.uniform(-0.5, 0.9, shape[1] if len(shape) > 1 else 1)
    got = []
    for backend, threads in (("cython", 1), ("cython", 2), ("numba", 1), ("numba", 2)):
        with fastact.config(backend=backend, num_threads=threads):
            y = fastact.prelu(x, w)
            gx, gw = fastact.prelu_backward(g, x, w)
        got.append((y, gx, gw))
    for y, gx, gw in got[1:]:
        np.testing.assert_array_equal(y, got[0][0])
        np.testing.assert_array_equal(gx, got[0][1])
        np.testing.assert_array_equal(gw, got[0][2])


@pytest.mark.parametrize("seed", [0, 1, 2**63 - 1, 2**63, 2**64 - 1, 0x9E3779B97F4A7C15])
def test_counter_based_slopes_are_the_reference_bits(dtype, seed):
    """rrelu's counter-based generator in Numba: the reference's bits, also for seeds >= 2**63."""
    n = 70_001  # above the parallel threshold: chunk offsets enter the counter
    x = -np.abs(sample(TABLE[0], n, dtype)) - 1  # all negative: y = slope * x
    with fastact.config(backend="numba", num_threads=2):
        y = fastact.rrelu(x, 0.1, 0.3, training=True, seed=seed)
    want = (x * reference.rrelu_slopes(x.shape, seed, 0.1, 0.3, dtype)).astype(dtype)
    np.testing.assert_array_equal(y, want)


def test_rrelu_seed_keys_the_slopes():
    x = -np.ones(1000)
    with fastact.config(backend="numba"):
        a = fastact.rrelu(x, training=True, seed=5)
        b = fastact.rrelu(x, training=True, seed=6)
        c = fastact.rrelu(x, training=True, seed=5)
    np.testing.assert_array_equal(a, c)
    assert np.mean(a != b) > 0.99


# --- the generated source ------------------------------------------------------


def _float_literals_outside_T(source: str) -> list[str]:
    """Float constants not wrapped as T(...) or np.float64(...): they would promote float32."""
    tree = ast.parse(source)
    wrapped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = (
                f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            )
            if name in ("T", "float64", "uint64"):
                wrapped.update(id(a) for a in node.args)
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, float):
            if id(node) not in wrapped:
                bad.append(ast.unparse(node))
    return bad


@pytest.mark.parametrize("sfx", ["f32", "f64"])
def test_generated_source_keeps_float32_math(sfx):
    for entry in TABLE:
        src = gen.entry_module(entry, sfx, HELPERS)
        assert _float_literals_outside_T(src) == [], entry.name
        assert "fastmath" not in src
    for mode in ("par", "ser"):
        assert _float_literals_outside_T(gen.drivers_module(mode)) == []


def test_generated_modules_name_the_sources_they_import(tmp_path, monkeypatch):
    """Numba's cache does not see a kernel's callees in other files: their digest is in the
    generated text (so in its file name), and a change to them makes a new module."""
    from fastact._backends.numba import drivers

    entry = next(e for e in TABLE if e.name == "rrelu")
    before = gen.entry_module(entry, "f32", HELPERS)
    drv = gen.drivers_module("par")
    assert drv.endswith(open(drivers.__file__).read())
    assert gen.sources_digest() in before and gen.sources_digest() in drv
    for name in ("intrinsics.py", "drivers.py"):
        for f in ("intrinsics.py", "drivers.py"):
            (tmp_path / f).write_text((gen._BACKEND / f).read_text())
        (tmp_path / name).write_text((gen._BACKEND / name).read_text() + "# changed\n")
        monkeypatch.setattr(gen, "_BACKEND", tmp_path)
        gen.sources_digest.cache_clear()
        try:
            assert gen.digest(gen.entry_module(entry, "f32", HELPERS)) != gen.digest(before)
            assert gen.digest(gen.drivers_module("par")) != gen.digest(drv)
        finally:
            monkeypatch.undo()
            gen.sources_digest.cache_clear()
    assert gen.entry_module(entry, "f32", HELPERS) == before


def test_mix64_is_the_python_one():
    """The Numba kernels' key mixer and the exact-integer one of fastact._math.rng."""
    import numba

    from fastact._backends.numba import intrinsics
    from fastact._math import rng

    mix = numba.njit(lambda z: intrinsics.mix64(z))
    for z in [0, 1, 2**32 - 1, 2**63, 2**64 - 1, 0x0123456789ABCDEF]:
        assert int(mix(np.uint64(z))) == rng.mix64(z)


def test_every_entry_has_its_kernels():
    for entry in TABLE:
        kinds = gen.kinds_of(entry)
        if entry.rowwise:
            assert kinds == ["rfwd", "rbwd", "rfwd_ip", "rbwd_ip"]
            continue
        assert {"fwd", "bwd"} <= set(kinds), entry.name
        assert ("tfwd" in kinds) == entry.has_training_mode
        assert ("pgradv" in kinds) == bool(entry.channel_param)


def test_unknown_intrinsic_is_a_clear_error(monkeypatch):
    from fastact._codegen import dialect

    monkeypatch.setitem(dialect.INTRINSICS, "frobnicate", ("frobf", "frob", "frobnicate"))
    entry = TABLE[0].__class__(
        name="frob",
        formula="",
        forward="frobnicate(x)",
        backward="g",
        saves="input",
        properties=TABLE[0].properties,
    )
    with pytest.raises(NotImplementedError, match="frobnicate"):
        gen.entry_module(entry, "f32", HELPERS)


# --- the runtime -----------------------------------------------------------------


def test_describe_reports_layer_kernels_and_cache():
    with fastact.config(backend="numba"):
        fastact.relu(np.ones(10))
    info = NUMBA.describe()
    assert info["compiled_kernels"] >= 1
    assert {"threading_layer", "cache_dir", "cache", "max_threads", "numba"} <= set(info)


def test_small_arrays_take_the_serial_twin(monkeypatch):
    """Below the threshold no parallel driver is even looked up."""

    class NoParallel(dict):
        def get(self, key, default=None):
            assert not key[0].startswith("par_"), f"parallel driver {key} used for a small array"
            return super().get(key, default)

    driver = NUMBA._driver

    def serial_only(name, sfx):
        assert not name.startswith("par_"), f"parallel driver {name} built for a small array"
        return driver(name, sfx)

    monkeypatch.setattr(NUMBA, "_drivers", NoParallel(NUMBA._drivers))
    monkeypatch.setattr(NUMBA, "_driver", serial_only)
    with fastact.config(backend="numba", num_threads=2):
        fastact.sigmoid(np.ones(16, np.float32))
        fastact.sigmoid_backward(np.ones(16), np.ones(16))
        fastact.prelu(np.ones((4, 4)), np.ones(4))
        fastact.prelu_backward(np.ones((4, 4)), np.ones((4, 4)), np.ones(4))
        fastact.softmax(np.ones((4, 4)))


def _python(
    code: str, env: dict | None = None, timeout: float = 240, cwd: str = ROOT
) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": ROOT, **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=cwd,
    )


def test_import_compiles_nothing():
    r = _python(
        """
        import json, fastact
        from fastact._backends import get
        fastact.backends()
        nb = get("numba")
        print(json.dumps(nb.describe()))
        """
    )
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["compiled_kernels"] == 0 and info["compiled_drivers"] == 0
    assert info["threading_layer"].startswith("not started")


def test_no_writable_cache_dir_still_works(tmp_path):
    """Unwritable cache locations (a path under a file): kernels compile in memory."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    r = _python(
        """
        import json, numpy as np, fastact
        from fastact._backends import get
        with fastact.config(backend="numba", num_threads=2):
            y = fastact.sigmoid(np.zeros(70_001))
        assert (y == 0.5).all()
        print(json.dumps(get("numba").describe()))
        """,
        env={
            "FASTACT_CACHE_DIR": str(blocker / "cache"),
            "NUMBA_CACHE_DIR": str(blocker / "numba"),
            "XDG_CACHE_HOME": str(blocker / "xdg"),
            "HOME": str(blocker / "home"),
            "PYTHONDONTWRITEBYTECODE": "1",
        },
    )
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["cache_dir"] is None and info["cache"].startswith("off")


def test_read_only_package_dir_imports(tmp_path):
    """A copy of the package made read-only, and no cache: import and run work."""
    import shutil

    pkg = tmp_path / "site"
    shutil.copytree(
        os.path.join(ROOT, "fastact"),
        pkg / "fastact",
        ignore=shutil.ignore_patterns("__pycache__", "*.c"),
    )
    for dirpath, _dirs, filenames in os.walk(pkg):
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o444)
        os.chmod(dirpath, 0o555)
    try:
        r = _python(
            f"""
            import numpy as np, fastact
            assert fastact.__file__.startswith({str(pkg)!r}), fastact.__file__
            with fastact.config(backend="numba"):
                assert fastact.relu(np.array([-1.0, 2.0])).tolist() == [0.0, 2.0]
            """,
            env={
                "PYTHONPATH": str(pkg),
                "FASTACT_CACHE_DIR": "off",
                "PYTHONDONTWRITEBYTECODE": "1",
            },
            cwd=str(tmp_path),
        )
    finally:
        for dirpath, _dirs, _files in os.walk(pkg):
            os.chmod(dirpath, 0o755)
    assert r.returncode == 0, r.stderr


def test_disk_cache_is_used_by_a_second_process(tmp_path):
    code = """
        import json, numpy as np, fastact
        from fastact._backends import get
        with fastact.config(backend="numba"):
            fastact.leaky_relu(np.ones(10), 0.5)
        nb = get("numba")
        k = nb._kernels[("leaky_relu", "fwd", "f64")]
        print(json.dumps({"hits": k.cache_hits, **nb.describe()}))
    """
    env = {"FASTACT_CACHE_DIR": str(tmp_path)}
    first = _python(code, env)
    second = _python(code, env)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    a = json.loads(first.stdout.strip().splitlines()[-1])
    b = json.loads(second.stdout.strip().splitlines()[-1])
    assert a["cache"] == "on" and a["cache_dir"].startswith(str(tmp_path))
    assert a["hits"] == 0 and b["hits"] == 1


@pytest.mark.skipif(not HAVE_CYTHON, reason="the Cython backend is not built")
@pytest.mark.parametrize(
    "env", [{"OMP_NUM_THREADS": "3"}, {"NUMBA_NUM_THREADS": "1"}], ids=lambda e: str(e)
)
def test_numba_leaves_the_openmp_thread_count_alone(env):
    """Numba's omp layer sets the starting thread's OpenMP count; the backend restores it."""
    r = _python(
        """
        import threading, numpy as np, fastact
        from fastact._backends import get
        cy = get("cython")
        before = cy.max_threads()
        with fastact.config(backend="numba", num_threads=2):
            fastact.sigmoid(np.zeros(70_001))
            fastact.sigmoid(np.zeros(70_001, np.float32))
        after = cy.max_threads()
        seen = []
        t = threading.Thread(target=lambda: seen.append(cy.max_threads()))
        t.start(); t.join()
        print(before, after, seen[0])
        """,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    before, after, other = map(int, r.stdout.split())
    assert before == after == other


@pytest.mark.parametrize("layer", ["workqueue", "omp", "tbb"])
def test_concurrent_parallel_calls_under_each_layer(layer):
    """workqueue aborts on concurrent entry: the backend must never let that happen."""
    r = _python(
        """
        import threading, numpy as np, fastact, numba
        x = np.linspace(-5, 5, 70_001)
        want = 1 / (1 + np.exp(-x))
        errors = []
        def work():
            try:
                for _ in range(20):
                    with fastact.config(backend="numba", num_threads=2):
                        y = fastact.sigmoid(x)
                    if not np.allclose(y, want, rtol=1e-12, atol=0):
                        errors.append("wrong result")
            except Exception as exc:
                errors.append(repr(exc))
        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads: t.start()
        for t in threads: t.join()
        print(numba.threading_layer(), errors)
        """,
        env={"NUMBA_THREADING_LAYER": layer},
    )
    if r.returncode != 0 and "threading layer" in r.stderr.lower() and layer != "workqueue":
        pytest.skip(f"Numba's {layer} layer is not available here")
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split()[0] == layer
    assert r.stdout.strip().endswith("[]")


def test_store_replaces_older_generations(tmp_path, monkeypatch):
    from fastact._backends.numba._store import Store

    monkeypatch.setenv("FASTACT_CACHE_DIR", str(tmp_path))
    store = Store("tag")
    mod, cacheable = store.load("_fa_test_stem_aaaa1111", "X = 1\n", stem="_fa_test_stem")
    assert cacheable and mod.X == 1
    d = tmp_path / "tag"
    (d / "__pycache__" / "_fa_test_stem_aaaa1111.f-1.py311.nbi").write_text("")
    (d / "_fa_test_stem_extra_bbbb.py").write_text("")  # another family: kept
    mod, _ = store.load("_fa_test_stem_cccc2222", "X = 2\n", stem="_fa_test_stem")
    assert mod.X == 2
    names = sorted(p.name for p in d.glob("*.py"))
    assert names == ["_fa_test_stem_cccc2222.py", "_fa_test_stem_extra_bbbb.py"]
    assert not list((d / "__pycache__").glob("_fa_test_stem_aaaa1111.*"))
    assert store.describe()["cache"] == "on"


def test_store_off_and_unwritable(tmp_path, monkeypatch):
    from fastact._backends.numba._store import Store

    monkeypatch.setenv("FASTACT_CACHE_DIR", "off")
    store = Store("tag")
    mod, cacheable = store.load("_fa_test_mem_1", "X = 3\n")
    assert mod.X == 3 and not cacheable
    assert store.describe() == {
        "cache_dir": None,
        "cache": "off (disabled by FASTACT_CACHE_DIR='off')",
    }
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("FASTACT_CACHE_DIR", str(blocker))
    store = Store("tag")
    assert store.resolve() is None and "not writable" in store.reason


@pytest.mark.parametrize("sfx, ft", [("f32", np.float32), ("f64", np.float64)])
def test_bit_intrinsics(sfx, ft):
    """pow2i, exponent, mantissa and ldexpk: the bits fa_intrinsics.h computes."""
    import numba

    from fastact._backends.numba._store import Store

    store = Store("unused")
    store._resolved, store.dir = True, None
    mod, _ = store.load(f"_fa_test_bits_{sfx}", gen.entry_module(TABLE[2], sfx, HELPERS))

    @numba.njit
    def run(a, n, o1, o2, o3, v, kk, o4):
        for k in range(a.size):
            o1[k] = mod.pow2i(n[k])
            o2[k] = mod.exponent(a[k])
            o3[k] = mod.mantissa(a[k])
            o4[k] = mod.ldexpk(v[k], kk[k])

    rng = np.random.default_rng(0)
    a = (rng.standard_normal(20_000) * np.exp(rng.uniform(-30, 30, 20_000))).astype(ft)
    lim = 126 if ft is np.float32 else 1022
    n = np.resize(np.arange(-lim, lim + 1), a.size).astype(ft)
    o1, o2, o3, o4 = (np.empty_like(a) for _ in range(4))
    # ldexpk(v, k): v * 2**n for k = n + 1.5 * 2**mant_bits (the rounded sum of a range
    # reduction), v in [1/2, 2) of either sign, results over the whole normal range
    v = (rng.uniform(0.5, 2.0, a.size) * rng.choice([-1.0, 1.0], a.size)).astype(ft)
    shift = ft(1.5 * 2.0 ** (23 if ft is np.float32 else 52))
    sn = np.resize(np.arange(-lim + 1, lim), a.size).astype(ft)
    run(a, n, o1, o2, o3, v, sn + shift, o4)
    assert o1.dtype == o2.dtype == o3.dtype == o4.dtype == ft
    np.testing.assert_array_equal(o4, np.ldexp(v, sn.astype(int)))
    np.testing.assert_array_equal(o1, np.ldexp(np.ones_like(n), n.astype(int)))
    m, e = np.frexp(np.abs(a))
    np.testing.assert_array_equal(o2, (e - 1).astype(ft))
    np.testing.assert_array_equal(o3, (2 * m).astype(ft))


# --- in place: the one-pointer twins of the kernels -------------------------------


def _bits(a) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


class _SeenKinds(dict):
    """NUMBA._addr that records the kernel kinds looked up (compiled ones only)."""

    def __init__(self, addr: dict):
        super().__init__(addr)
        self.kinds: list[str] = []
        self.looked_up: list[tuple] = []

    def get(self, key, default=None):
        self.kinds.append(key[1])
        self.looked_up.append(key)
        return super().get(key, default)


def _inplace_cases(entry, dtype, n):
    """(layout, x, g) of ``entry``: flat, Fortran order, strided and per channel."""
    x = sample(entry, n, dtype)
    x[: len(SPECIALS)] = SPECIALS
    g = sample(entry, n, dtype, seed=4)
    m = n // 100 * 100
    cases = [
        ("flat", x, g),
        ("fortran", x[:m].reshape(100, -1).T, g[:m].reshape(100, -1).T),
        ("strided", x[::2], g[::2]),
    ]
    if entry.channel_param:
        cases += [
            ("(N, C)", x[:m].reshape(-1, 10), g[:m].reshape(-1, 10)),
            ("(N, C, L)", x[:m].reshape(-1, 5, 20), g[:m].reshape(-1, 5, 20)),
        ]
    return cases


def _copy(a: np.ndarray) -> np.ndarray:
    """A copy of ``a`` laid out as ``a`` (strided if ``a`` is)."""
    if a.flags.c_contiguous or a.flags.f_contiguous:
        return a.copy(order="K")
    b = np.zeros(a.size * 2, a.dtype)[::2]
    b[...] = a
    return b


@pytest.mark.parametrize("n", [1000, 70_001], ids=["serial", "parallel"])
def test_inplace_gives_the_bits_of_a_separate_out(elementwise_entry, dtype, n):
    """f(x, out=x) and f_backward(g, s, out=g): every entry, both kernels' bits, any layout."""
    entry = elementwise_entry
    for params in example_params(entry):
        for training in (False, True) if entry.has_training_mode else (False,):
            call = Call(entry, params, training=training)
            for layout, x, g in _inplace_cases(entry, dtype, n):
                what = f"{entry.name} {params} training={training} {layout} n={n}"
                with fastact.config(backend="numba", num_threads=2):
                    y = call.forward(x, out=np.empty_like(x))
                    buf = _copy(x)
                    assert call.forward(buf, out=buf) is buf
                    np.testing.assert_array_equal(_bits(buf), _bits(y), err_msg=what)
                    s = call.saved(x, y)
                    gbuf = _copy(g)
                    if entry.channel_param:
                        gx, gw = call.backward_full(g, s, out=np.empty_like(g))
                        gx2, gw2 = call.backward_full(gbuf, s, out=gbuf)
                        np.testing.assert_array_equal(_bits(gw2), _bits(gw), err_msg=what)
                    else:
                        gx = call.backward(g, s, out=np.empty_like(g))
                        gx2 = call.backward(gbuf, s, out=gbuf)
                    assert gx2 is gbuf
                    np.testing.assert_array_equal(_bits(gbuf), _bits(gx), err_msg=what)


@pytest.mark.parametrize("n", [1000, 70_001], ids=["serial", "parallel"])
def test_inplace_calls_run_the_inplace_kernels(monkeypatch, n):
    """out=x (and out=g in the backward) picks the *_ip kernels; anything else does not."""
    x = np.linspace(-3, 3, n).astype(np.float32)
    g = np.ones_like(x)
    xc, xv = x[: n // 4 * 4].reshape(-1, 4), x[: n // 20 * 20].reshape(-1, 4, 5)
    w4 = np.linspace(0.1, 0.4, 4)

    def calls(a):
        """Every elementwise path, with a the buffer that is also out."""
        b = a.copy()
        return [
            ("fwd", lambda: fastact.relu(a, out=a)),
            ("tfwd", lambda: fastact.rrelu(a, training=True, seed=3, out=a)),
            ("bwd", lambda: fastact.sigmoid_backward(a, b, out=a)),
            ("tbwd", lambda: fastact.rrelu_backward(a, b, training=True, seed=3, out=a)),
        ]

    def channel_calls():
        c, v = xc.copy(), xv.copy()
        cg, vg = np.ones_like(c), np.ones_like(v)
        return [
            ("fwdv", lambda: fastact.prelu(c, w4, out=c)),
            ("fwd", lambda: fastact.prelu(v, w4, out=v)),
            ("bwdv", lambda: fastact.prelu_backward(cg, xc, w4, out=cg)),
            ("bwd", lambda: fastact.prelu_backward(vg, xv, w4, out=vg)),
        ]

    # the general path's choice (serial calls in the block take the fast path otherwise)
    with fastact.config(backend="numba", num_threads=2), general_only():
        for _, f in calls(x.copy()) + channel_calls():
            f()  # compile everything first: the spy then only sees look-ups
        for kind, f in calls(x.copy()) + channel_calls():
            seen = _SeenKinds(NUMBA._addr)
            monkeypatch.setattr(NUMBA, "_addr", seen)
            f()
            assert gen.INPLACE[kind] in seen.kinds and kind not in seen.kinds, (kind, seen.kinds)
        # a separate out, out=saved and a partial overlap: the two-pointer kernels
        s = x.copy()
        others = [
            ("fwd", lambda: fastact.relu(x, out=np.empty_like(x))),
            ("bwd", lambda: fastact.sigmoid_backward(g, s, out=s)),
            ("fwd", lambda: fastact.relu(s[1:], out=s[:-1])),
        ]
        for kind, f in others:
            seen = _SeenKinds(NUMBA._addr)
            monkeypatch.setattr(NUMBA, "_addr", seen)
            f()
            assert kind in seen.kinds and gen.INPLACE[kind] not in seen.kinds, seen.kinds


ROW_ENTRIES = [e for e in TABLE if e.rowwise]


@pytest.mark.parametrize("entry", ROW_ENTRIES, ids=lambda e: e.name)
@pytest.mark.parametrize("shape", [(7, 37), (3, 70_001)], ids=["short rows", "long rows"])
def test_rowwise_inplace_gives_the_bits_of_a_separate_out(entry, dtype, shape, monkeypatch):
    """softmax(x, out=x) and softmax_backward(g, y, out=g) run the one-pointer row kernels
    (rfwd_ip, rbwd_ip) and give the bits of a separate out, special values included."""
    n = shape[0] * shape[1]
    x = sample(entry, n, dtype)
    x[5 : 5 + len(SPECIALS)] = SPECIALS
    x[-len(SPECIALS) :] = SPECIALS
    x = x.reshape(shape)
    g = sample(entry, n, dtype, seed=4).reshape(shape)
    f, fb = getattr(fastact, entry.name), getattr(fastact, f"{entry.name}_backward")
    with (
        fastact.config(backend="numba", num_threads=2),
        general_only(),  # the Numba backend's own drivers, not the fast path
        np.errstate(all="ignore"),
    ):
        y = f(x, out=np.empty_like(x))
        gx = fb(g, y, out=np.empty_like(g))
        buf, gbuf = x.copy(), g.copy()
        f(buf.copy(), out=buf.copy()), fb(gbuf.copy(), y, out=gbuf.copy())  # compile first
        seen = _SeenKinds(NUMBA._addr)
        monkeypatch.setattr(NUMBA, "_addr", seen)
        assert f(buf, out=buf) is buf
        assert fb(gbuf, y, out=gbuf) is gbuf
    assert "rfwd_ip" in seen.kinds and "rbwd_ip" in seen.kinds, seen.kinds
    assert "rfwd" not in seen.kinds and "rbwd" not in seen.kinds, seen.kinds
    np.testing.assert_array_equal(_bits(buf), _bits(y))
    np.testing.assert_array_equal(_bits(gbuf), _bits(gx))


def test_same_buffer_is_exact_sharing():
    from fastact._backends.numba import _same_buffer

    a = np.arange(24.0)
    assert _same_buffer(a, a)
    assert _same_buffer(a, a[:])  # another object, the same memory and layout
    assert _same_buffer(a.reshape(4, 6), a.reshape(4, 6))
    assert not _same_buffer(a, a.copy())
    assert not _same_buffer(a[1:], a[:-1])  # overlapping at an offset
    assert not _same_buffer(a.reshape(4, 6), a.reshape(6, 4).T)  # same start, other layout
    assert not _same_buffer(np.zeros(3), np.zeros(3))


def test_backend_takes_a_view_of_x_as_out():
    """Called directly with out a different view of x's memory: in place, right result."""
    entry = next(e for e in TABLE if e.name == "silu")
    x = np.linspace(-8, 8, 5000)
    with fastact.config(backend="numba", num_threads=1):
        want = fastact.silu(x)
    NUMBA.forward(entry, x, x[:], (), False, 0, 1)
    np.testing.assert_array_equal(x, want)


def _softish(x, a):
    return x / (a + abs(x))


def _softish_grad(g, x, a):
    return g * a / ((a + abs(x)) * (a + abs(x)))


def test_registered_activation_runs_in_place(monkeypatch):
    """User activations get in-place twins too (compiled on their first in-place call)."""
    from fastact._register import unregister

    name = f"fa_test_softish_{os.getpid()}"
    fastact.register(name, _softish, _softish_grad, params={"a": 2.0})
    try:
        f, fb = getattr(fastact, name), getattr(fastact, f"{name}_backward")
        x = np.linspace(-6, 6, 70_001).astype(np.float32)
        g = np.cos(x)
        y, gx = f(x), fb(g, x)
        seen = _SeenKinds(NUMBA._addr)
        monkeypatch.setattr(NUMBA, "_addr", seen)
        buf, gbuf = x.copy(), g.copy()
        assert f(buf, out=buf) is buf and fb(gbuf, x, out=gbuf) is gbuf
        np.testing.assert_array_equal(_bits(buf), _bits(y))
        np.testing.assert_array_equal(_bits(gbuf), _bits(gx))
        assert {"fwd_ip", "bwd_ip"} <= set(seen.kinds), seen.kinds
    finally:
        unregister(name)


def test_inplace_kinds_are_generated_for_every_elementwise_kind():
    for entry in TABLE:
        kinds = gen.kinds_of(entry)
        for kind, ip in gen.INPLACE.items():
            assert (kind in kinds) == (ip in kinds), (entry.name, kind)
        src = gen.entry_module(entry, "f32", HELPERS)
        tree = ast.parse(src)
        fns = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
        for kind in kinds:
            if kind.endswith("_ip"):
                # one buffer: the kernel never touches out
                body = ast.unparse(fns[f"_fa_{kind}"])
                assert "_fa_out[" not in body, (entry.name, kind)


# --- prelu's weight gradient: eight partial sums ----------------------------------


def _terms(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    """prelu's param_grad per element, in the array's type, as doubles."""
    return np.where(x > 0, x.dtype.type(0), x * g).astype(np.float64)


def _eight_sums(t: np.ndarray) -> float:
    """The order of one pgrad call: term k into partial sum k % 8, then pairwise."""
    part = [0.0] * 8
    for k, v in enumerate(t.tolist()):
        part[k % 8] += v
    p = part
    return ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]))


@pytest.mark.parametrize("n", list(range(1, 41)) + [127, 128, 129, 1000, 16384])
def test_pgrad_sums_in_eight_partial_sums(n):
    """One pgrad call (one weight, n <= SEGMENT): the bits of the eight-sum order."""
    rng = np.random.default_rng(n)
    x = rng.normal(size=n) * np.exp(rng.uniform(-20, 20, n))
    g = rng.normal(size=n)
    with fastact.config(backend="numba", num_threads=1):
        _, gw = fastact.prelu_backward(g, x, np.array([0.25]))
    t = _terms(g, x)
    assert gw[0] == _eight_sums(t), (gw[0], _eight_sums(t))
    assert abs(gw[0] - math.fsum(t)) <= (n / 8 + 3) * 2**-53 * np.abs(t).sum()
    if n == 1000:  # the data tells the orders apart: a sequential sum fails here
        assert sum(t.tolist()) != _eight_sums(t)


@pytest.mark.parametrize("n", [*range(1, 41), 16385, 70_001])
def test_pgrad_is_close_to_the_exact_sum(dtype, n):
    """Against math.fsum of the float64 terms, for every tail length and several calls."""
    rng = np.random.default_rng(100 + n)
    x = rng.normal(size=n).astype(dtype)
    g = rng.normal(size=n).astype(dtype)
    for threads in (1, 2):
        with fastact.config(backend="numba", num_threads=threads):
            _, gw = fastact.prelu_backward(g, x, np.array([0.25]))
        t = _terms(g, x)
        exact = math.fsum(t)
        tol = np.finfo(dtype).eps * abs(exact) + (n / 8 + 8) * 2**-53 * np.abs(t).sum()
        assert abs(float(gw[0]) - exact) <= tol, (n, threads, gw[0], exact)


@pytest.mark.parametrize("rowlen", [1, 3, 7, 8, 9, 15, 16, 17, 40, 129])
def test_pgrad_per_channel_rows(dtype, rowlen):
    """(N, C, L) input: one pgrad call per row of L, every tail length, the eight-sum bits."""
    rng = np.random.default_rng(rowlen)
    shape = (6, 3, rowlen)
    x = rng.normal(size=shape).astype(dtype)
    g = rng.normal(size=shape).astype(dtype)
    w = np.array([0.25, -0.1, 0.5])
    with fastact.config(backend="numba", num_threads=1):
        _, gw = fastact.prelu_backward(g, x, w)
    # rows (n, c) in order, each its own call, in blocks of one row (6 * 3 < 64 units)
    partial = np.zeros((18, 3))
    for u in range(18):
        n, c = divmod(u, 3)
        partial[u, c] = _eight_sums(_terms(g[n, c], x[n, c]))
    np.testing.assert_array_equal(gw, np.asarray(partial.sum(axis=0), dtype))


def test_pgrad_of_special_values():
    """inf, NaN, signed zeros and overflow: the eight-sum order's results."""
    x = np.array([-np.inf, -1.0, -0.0, 0.0, np.nan, -2.0, 3.0, -1e308, -1e308, -1.0])
    g = np.array([1.0, 2.0, 5.0, 1.0, 1.0, -1.0, 1.0, 1.0, 1.0, 0.5])
    with fastact.config(backend="numba", num_threads=1):
        _, gw = fastact.prelu_backward(g, x, np.array([0.1]))
        assert np.isnan(gw[0])
        x2 = x.copy()
        x2[[0, 4]] = -1.0
        _, gw2 = fastact.prelu_backward(g, x2, np.array([0.1]))
        assert gw2[0] == _eight_sums(_terms(g, x2)) == -np.inf
        for n in range(1, 10):
            z = -np.zeros(n)
            _, gz = fastact.prelu_backward(np.ones(n), z, np.array([0.1]))
            assert gz[0] == 0.0 and not np.signbit(gz[0])  # the partial sums start at +0.0


def test_prefetch_constants_are_those_of_the_c_kernels():
    """The blocks and prefetch distance of the Numba kernels are fa_intrinsics.h's."""
    import re
    from pathlib import Path

    from fastact._backends.numba import intrinsics

    header = Path(fastact.__file__).parent / "_backends" / "cython" / "fa_intrinsics.h"
    defines = dict(re.findall(r"#define (FA_\w+_BYTES) \(?([0-9 <]+)\)?\n", header.read_text()))
    assert set(defines) == {"FA_BLOCK_BYTES", "FA_AHEAD_BYTES", "FA_PREFETCH_MIN_BYTES"}
    for name, text in defines.items():
        assert getattr(intrinsics, name[3:]) == eval(text), name


def test_16_bit_conversions_are_numpys():
    """The Numba drivers' conversions, both formats: every 16-bit pattern widened
    exactly, every 509th float32 pattern (all exponents, subnormals, inf, NaN) rounded
    once to nearest even as NumPy (ml_dtypes) rounds it; NaN stays a quiet NaN."""
    from fastact import _half
    from fastact._backends.numba import intrinsics

    assert NUMBA.half_formats == frozenset((1, 2))
    h = np.arange(65536, dtype=np.uint16)
    f = np.arange(0, 2**32, 509, dtype=np.uint64).astype(np.uint32).view(np.float32)
    nan = np.isnan(f)
    formats = [("float16", np.dtype(np.float16), intrinsics.f16_widen, intrinsics.f16_narrow)]
    if _half.BFLOAT16 is not None:
        formats.append(("bfloat16", _half.BFLOAT16, intrinsics.bf16_widen, intrinsics.bf16_narrow))
    for name, half, widen, narrow in formats:
        a = np.empty(h.size, np.float32)
        widen(h, 0, h.size, a)
        want = h.view(half).astype(np.float32)
        wn = np.isnan(want)
        np.testing.assert_array_equal(a[~wn].view(np.uint32), want[~wn].view(np.uint32), name)
        assert np.isnan(a[wn]).all(), name
        got = np.empty(f.size, np.uint16)
        narrow(f, got, 0, f.size)
        with np.errstate(over="ignore", invalid="ignore"):
            rounded = f.astype(half).view(np.uint16)
        np.testing.assert_array_equal(got[~nan], rounded[~nan], name)
        quiet = 0x7E00 if name == "float16" else 0x7FC0
        assert ((got[nan] & quiet) == quiet).all(), name


# --- 16-bit storage: the formats' own kernels ----------------------------------------


@pytest.mark.parametrize("sfx", list(gen.HALF_SFX))
def test_16_bit_modules_widen_each_load_and_round_each_store(sfx):
    """A format's module has the elementwise kinds of HALF_KINDS, prelu's per-channel
    kinds, the row backward of softmax and log_softmax, and their in-place twins,
    float32 inside: each element widened as loaded, the float32 result rounded once as
    stored (a weight gradient's terms summed in float64, never rounded to 16 bits), with
    no prefetch (it takes float arrays) and no float literal outside T."""
    assert any(gen.has_half_row_bwd(e) for e in TABLE)
    assert any("pgrad" in gen.kinds_of(e, sfx) for e in TABLE)
    for entry in TABLE:
        src = gen.entry_module(entry, sfx, HELPERS)
        kinds = gen.kinds_of(entry, sfx)
        rows = ("rbwd",) if gen.has_half_row_bwd(entry) else ()
        half_kinds = gen.HALF_KINDS + gen.HALF_CHANNEL_KINDS + rows
        assert kinds == [k for k in gen.kinds_of(entry) if k.removesuffix("_ip") in half_kinds]
        assert "T = np.float32" in src and f"widen_{sfx} as _fa_widen" in src
        assert _float_literals_outside_T(src) == [], entry.name
        fns = {f.name: f for f in ast.parse(src).body if isinstance(f, ast.FunctionDef)}
        assert {n for n in fns if n.startswith("_fa_")} == {f"_fa_{k}" for k in kinds}
        for kind in kinds:
            body = ast.unparse(fns[f"_fa_{kind}"])
            stores = [
                ln for ln in body.splitlines() if re.match(r"\s*_fa_(out|x|g)\[_fa_k\] =", ln)
            ]
            if kind in gen.PGRAD:
                sums = re.findall(r"_fa_(?:buf|acc)\[[^]]*\] \+?= (.*)", body)
                sums = [v for v in sums if v not in ("_FA_NEG0", "_fa_lanes_total(_fa_sums)")]
                assert sums and all(v.startswith("np.float64(") for v in sums), (entry.name, kind)
                assert not stores and "_fa_narrow" not in body, (entry.name, kind)
            else:
                assert stores and all("= _fa_narrow(T(" in ln for ln in stores), (entry.name, kind)
            loads = re.findall(r"= (\S+)\(_fa_[xgs]\[_fa_k\]\)", body)
            assert loads and set(loads) == {"_fa_widen"}, (entry.name, kind)
            assert not re.search(r"= _fa_[xgs]\[_fa_k\]", body), (entry.name, kind)
            assert "_fa_prefetch(" not in body, (entry.name, kind)
            assert "_fa_out[" not in body or not kind.endswith("_ip"), (entry.name, kind)


@pytest.mark.parametrize("half", ["float16", "bfloat16"])
def test_16_bit_calls_run_the_formats_kernels(half, monkeypatch):
    """The Numba backend runs a table entry's 16-bit call by the format's kernel (its
    in-place twin where out is the input; softmax's backward too), a registered
    activation's by the float32 kernel on widened blocks; the fast path runs the
    format's kernel from C once it is compiled.  The same bits every way."""
    from fastact import _half
    from fastact._register import unregister

    if _dispatch.pushed() is not None:
        from fastact._backends.cython import _kernels
    dtype = np.dtype(np.float16) if half == "float16" else _half.BFLOAT16
    if dtype is None:
        pytest.skip("ml_dtypes is not installed")
    sfx = {"float16": "f16", "bfloat16": "bf16"}[half]
    x = _half.round_to(np.linspace(-6, 6, 3001), dtype)
    g = _half.round_to(np.cos(np.linspace(-6, 6, 3001)), dtype)
    with fastact.config(backend="cython"):
        want_y, want_g = fastact.tanh(x), fastact.tanh_backward(g, fastact.tanh(x))
    with fastact.config(backend="numba", num_threads=1), general_only():
        fastact.tanh(x), fastact.tanh_backward(g, want_y)  # compiled: the spy sees look-ups
        for call, kind in [
            (lambda: fastact.tanh(x), "fwd"),
            (lambda: fastact.tanh_backward(g, want_y), "bwd"),
        ]:
            seen = _SeenKinds(NUMBA._addr)
            monkeypatch.setattr(NUMBA, "_addr", seen)
            call()
            monkeypatch.undo()
            assert seen.looked_up == [("tanh", kind, sfx)], seen.looked_up
        xi, gi = x.copy(), g.copy()
        y = fastact.tanh(xi, out=xi)
        gx = fastact.tanh_backward(gi, want_y, out=gi)
        assert ("tanh", "fwd_ip", sfx) in NUMBA._addr and ("tanh", "bwd_ip", sfx) in NUMBA._addr
    np.testing.assert_array_equal(y.view(np.uint16), want_y.view(np.uint16))
    np.testing.assert_array_equal(gx.view(np.uint16), want_g.view(np.uint16))
    if _dispatch.pushed() is not None:  # the compiled fast path
        kid = next(e for e in TABLE if e.name == "tanh").kernel_id
        di = {"f16": 2, "bf16": 3}[sfx]
        assert _kernels.numba_kernel(_kernels.NUMBA_KINDS.index("fwd"), di, kid) != 0
        with fastact.config(backend="numba", num_threads=1), fast_only():
            np.testing.assert_array_equal(fastact.tanh(x).view(np.uint16), want_y.view(np.uint16))
    # the row backwards: softmax's kernel for the format, on both paths
    rows_x = _half.round_to(np.linspace(-6, 6, 3000).reshape(3, 1000), dtype)
    with fastact.config(backend="cython"):
        y = fastact.softmax(rows_x)
        want = fastact.softmax_backward(rows_x, y)
    with fastact.config(backend="numba", num_threads=1), general_only():
        got = fastact.softmax_backward(rows_x, y)
        gi = rows_x.copy()
        got_ip = fastact.softmax_backward(gi, y, out=gi)
    assert ("softmax", "rbwd", sfx) in NUMBA._addr and ("softmax", "rbwd_ip", sfx) in NUMBA._addr
    np.testing.assert_array_equal(got.view(np.uint16), want.view(np.uint16))
    np.testing.assert_array_equal(got_ip.view(np.uint16), want.view(np.uint16))
    if _dispatch.pushed() is not None:
        kid = next(e for e in TABLE if e.name == "softmax").kernel_id
        di = {"f16": 2, "bf16": 3}[sfx]
        assert _kernels.numba_kernel(_kernels.NUMBA_KINDS.index("rbwd"), di, kid) != 0
        with fastact.config(backend="numba", num_threads=1), fast_only():
            got = fastact.softmax_backward(rows_x, y)
        np.testing.assert_array_equal(got.view(np.uint16), want.view(np.uint16))
    name = f"fa_test_half_softish_{os.getpid()}"
    fastact.register(name, _softish, _softish_grad, params={"a": 2.0})
    try:
        with fastact.config(backend="numba"), general_only():
            seen = _SeenKinds(NUMBA._addr)
            monkeypatch.setattr(NUMBA, "_addr", seen)
            y = getattr(fastact, name)(x)
            monkeypatch.undo()
        assert y.dtype == dtype and set(seen.kinds) == {"fwd"}
        assert (name, "fwd", "f32") in seen and (name, "fwd", sfx) not in seen
        with fastact.config(backend="cython"):
            np.testing.assert_array_equal(
                y.view(np.uint16), getattr(fastact, name)(x).view(np.uint16)
            )
    finally:
        unregister(name)


@pytest.mark.parametrize("half", ["float16", "bfloat16"])
def test_16_bit_per_channel_calls_run_the_formats_kernels(half, monkeypatch):
    """prelu on 16-bit arrays runs the format's kernels on the Numba backend (a weight
    per channel of an image, a weight per element of a row, one weight; forward,
    backward, in place), never float32 blocks: the bits of the Cython backend, the
    weight gradient included, on one thread and on two."""
    from fastact import _half

    dtype = np.dtype(np.float16) if half == "float16" else _half.BFLOAT16
    if dtype is None:
        pytest.skip("ml_dtypes is not installed")
    sfx = {"float16": "f16", "bfloat16": "bf16"}[half]
    rng = np.random.default_rng(7)
    for shape, c in [((4, 3, 40, 50), 3), ((300, 70), 70), ((30001,), 1)]:
        x = _half.round_to(rng.standard_normal(shape), dtype)
        x.reshape(-1)[: len(SPECIALS)] = _half.round_to(SPECIALS, dtype)
        g = _half.round_to(rng.standard_normal(shape), dtype)
        w = rng.uniform(-1, 1, c).astype(np.float32)
        with fastact.config(backend="cython"):
            want_y = fastact.prelu(x, w)
            want_gx, want_gw = fastact.prelu_backward(g, x, w)
        for threads in (1, 2):
            with fastact.config(backend="numba", num_threads=threads), general_only():
                seen = _SeenKinds(NUMBA._addr)
                monkeypatch.setattr(NUMBA, "_addr", seen)
                y = fastact.prelu(x, w)
                gx, gw = fastact.prelu_backward(g, x, w)
                xi, gi = x.copy(), g.copy()
                fastact.prelu(xi, w, out=xi)
                fastact.prelu_backward(gi, x, w, out=gi)
                monkeypatch.undo()
            assert seen.looked_up and {k[2] for k in seen.looked_up} == {sfx}, seen.looked_up
            vector = len(shape) == 2  # a weight per element of a row
            assert {k[1] for k in seen.looked_up} >= {"pgradv" if vector else "pgrad"}
            what = f"{shape} {half} threads={threads}"
            for got, want in [(y, want_y), (gx, want_gx), (xi, want_y), (gi, want_gx)]:
                assert got.dtype == dtype, what
                np.testing.assert_array_equal(got.view(np.uint16), want.view(np.uint16), what)
            np.testing.assert_array_equal(gw.view(np.uint16), want_gw.view(np.uint16), what)
