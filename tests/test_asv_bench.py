"""The asv suite (asv_bench/benchmarks): it covers the whole table and measures what it says.

Cheap checks only: small arrays, no asv run (CI runs the suite itself through
asv_bench/ci_check.sh).  The suite is loaded under its own package name so
that it cannot clash with another ``benchmarks`` package.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import fastact
from fastact import reference

SUITE = Path(__file__).resolve().parents[1] / "asv_bench" / "benchmarks"
PKG = "fastact_asv_suite"


def _load_suite():
    if PKG not in sys.modules:
        os.environ.setdefault("FASTACT_ASV_NO_PRELOAD", "1")
        spec = importlib.util.spec_from_file_location(
            PKG, SUITE / "__init__.py", submodule_search_locations=[str(SUITE)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[PKG] = module
        spec.loader.exec_module(module)
    return {
        name: importlib.import_module(f"{PKG}.{name}")
        for name in (
            "common",
            "kernels",
            "limits",
            "memory",
            "mlp",
            "peers",
            "startup",
            "threads",
        )
    }


@pytest.fixture(scope="module")
def suite():
    return _load_suite()


@pytest.fixture(autouse=True)
def _restore_backend():
    before = fastact.get_backend()
    yield
    fastact.set_backend(before)


def test_every_table_entry_is_in_every_grid(suite):
    common = suite["common"]
    expected = []
    for name in fastact.activations():
        expected.append(name)
        if fastact.activation(name).has_training_mode:
            expected.append(name + common.TRAIN)
    assert list(common.ACTIVATIONS) == expected
    for cls in (suite["kernels"].Kernels, suite["memory"].Memory, suite["peers"].NumPy):
        assert tuple(cls.params[0]) == tuple(expected), cls.__name__
    assert suite["kernels"].Kernels.param_names[0] == "activation"


def test_unknown_activation_or_backend_is_skipped(suite):
    common = suite["common"]
    with pytest.raises(NotImplementedError):
        common.parse("no_such_activation")
    with pytest.raises(NotImplementedError):
        common.parse("sigmoid" + common.TRAIN)  # sigmoid has no training mode


@pytest.mark.parametrize("pass_", ["forward", "forward_inplace", "backward"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_kernel_case_runs_and_never_drifts(suite, pass_, dtype):
    common = suite["common"]
    fastact.set_backend("auto")
    for label in common.ACTIVATIONS:
        case = common.Prepared(label, pass_, dtype, 1000)
        first = np.array(case.call(), copy=True) if pass_ != "backward" else None
        for _ in range(3):  # what asv does: setup (reset) before every timed call
            case.reset()
            result = case.call()
        if first is not None:
            # In place: each call starts from the pristine input again.
            np.testing.assert_array_equal(np.asarray(result), first, err_msg=label)


def _example(entry):
    return {p.name: (p.example if p.default is None else p.default) for p in entry.scalar_params}


def test_numpy_peers_compute_the_reference(suite):
    """The table's NumPy forms, as asv binds them (per-channel weights broadcast,
    in place on ``out=x``), against the float64 reference."""
    peers, common = suite["peers"], suite["common"]
    rng = np.random.default_rng(3)
    checked = 0
    for name in fastact.activations():
        entry = fastact.activation(name)
        shape = common.shape_for(entry, 1000)
        x = rng.standard_normal(shape) * 3
        g = rng.standard_normal(shape)
        params = _example(entry)
        kw = dict(params)
        ref_kw = dict(params)
        w = common.weight(entry, shape, "float64")
        bw = None
        if w is not None:
            bw = peers._broadcast_weight(w, x.ndim)
            ref_kw[entry.channel_param] = w
        y = np.empty_like(x)
        try:
            fwd = peers.numpy_call(entry, kw, "fwd", x, y, weight=bw)
        except NotImplementedError:
            continue
        inplace = x.copy()
        with np.errstate(all="ignore"):
            fwd()
            peers.numpy_call(entry, kw, "fwd", inplace, inplace, weight=bw)()
        expected = reference.forward(name, x, **ref_kw)
        np.testing.assert_allclose(y, expected, rtol=1e-9, atol=1e-12, err_msg=name)
        np.testing.assert_array_equal(inplace, y, err_msg=f"{name} in place")
        try:
            bwd = peers.numpy_call(entry, kw, "bwd", x, np.empty_like(x), g=g, y=y, weight=bw)
        except NotImplementedError:
            checked += 1
            continue
        saved = x if entry.saves == "input" else expected
        with np.errstate(all="ignore"):
            got = bwd()
        want = reference.backward(name, g, saved, **ref_kw)
        if isinstance(want, tuple):
            for a, b in zip(got, want):
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=name)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=name)
        checked += 1
    assert checked >= 20


def _traced(call) -> int:
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("backend", ["cython", "numba"])
def test_inplace_calls_allocate_nothing(suite, backend):
    """What memory.Memory.track_alloc_bytes reports, on 1e5-element arrays."""
    common, memory = suite["common"], suite["memory"]
    if backend not in fastact.backends():
        pytest.skip(f"{backend} backend not available")
    fastact.set_backend(backend)
    size = 100_000
    for label in common.ACTIVATIONS:
        entry, training = common.parse(label)
        shape = common.shape_for(entry, size)
        w = common.weight(entry, shape, "float32")
        x = common.data("x", "float32", shape).copy()
        g = common.data("g", "float32", shape).copy()
        calls = memory._calls(entry, training, x, g, w)
        for call in calls:  # warm: JIT, lazy imports, caches
            call()
        fwd_inplace, bwd_inplace, fwd_alloc = calls
        nbytes = x.nbytes
        # Small Python objects only (a per-channel gradient: blocks x channels doubles).
        assert _traced(fwd_inplace) < 64 * 1024, (label, "forward in place")
        assert _traced(bwd_inplace) < 64 * 1024, (label, "backward in place")
        assert _traced(fwd_alloc) >= nbytes, (label, "forward allocating")


def test_stream_and_threads_scenarios_run(suite):
    limits, threads = suite["limits"], suite["threads"]
    bench = limits.Stream()
    try:
        bench.setup("backward", "float32", 1000)
    except NotImplementedError:
        pytest.skip("no streaming kernel in this build")
    bench.time_stream("backward", "float32", 1000)
    assert threads.KERNELS[0] == "stream" and len(threads.KERNELS) >= 2
    assert all(k == "stream" or k in fastact.activations() for k in threads.KERNELS)


def test_startup_code_is_valid_python(suite):
    startup = suite["startup"]
    bench = startup.FirstCall()
    for backend in ("cython", "auto"):
        for stmt, setup in (
            bench.timeraw_first_call(backend),
            bench.timeraw_first_call_all(backend),
        ):
            compile(setup, "<setup>", "exec")
            compile(stmt, "<stmt>", "exec")
    # The statement, in this process (its setup would redirect Numba's cache).
    stmt, _ = bench.timeraw_first_call_all("auto")
    exec(stmt, {"np": np, "fastact": fastact})  # noqa: S102 - our own generated code


def test_mlp_scenario_runs_and_its_ways_agree(suite, monkeypatch):
    mlp = suite["mlp"]
    monkeypatch.setattr(mlp, "CI", True)
    losses = {}
    for way in mlp.WAYS:
        bench = mlp.MLPStep()
        try:
            bench.setup(way, "gelu")
        except NotImplementedError:
            assert way == "torch"
            continue
        for _ in range(3):
            bench.time_step(way, "gelu")
        losses[way] = bench.step()
    assert {"unfused", "linear"} <= set(losses)
    np.testing.assert_allclose(list(losses.values()), losses["linear"], rtol=1e-5)
    assert mlp.problem("gelu")[1].batch <= 64
