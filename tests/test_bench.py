"""python -m fastact bench: the comparators compute the same functions, the run, JSON, table, plot."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

import fastact
from fastact import bench
from fastact.cli import main

CASES = {c.label: c for c in bench.all_cases()}
COMPARATORS = ["numpy", "torch", "numexpr"]


def _impl(name):
    if name != "numpy":
        pytest.importorskip(name)
    return {"numpy": bench.NumPy, "torch": bench.Torch, "numexpr": bench.NumExpr}[name]()


@pytest.mark.parametrize("name", COMPARATORS)
@pytest.mark.parametrize("label", [c for c in CASES if not CASES[c].training])
def test_comparators_compute_the_same_function(label, name):
    """Each side-by-side implementation agrees with fastact, forward and backward."""
    impl = _impl(name)
    case = CASES[label]
    a = bench.make_arrays(case, 1000, "float64")
    a.x *= 3  # both sides of every kink and threshold
    fastact_impl = bench.Fastact("cython")
    want_y = np.empty_like(a.x)
    fastact_impl.forward(case, a.x, want_y)()
    np.copyto(a.y, want_y)
    fwd = impl.forward(case, a.x, a.out)
    if fwd is not None:
        fwd()
        np.testing.assert_allclose(a.out, want_y, rtol=1e-6, atol=1e-9, err_msg="forward")
        # in place: out is x
        buf = a.x.copy()
        impl.forward(case, buf, buf)()
        np.testing.assert_allclose(buf, want_y, rtol=1e-6, atol=1e-9, err_msg="in place")
    want_g = np.empty_like(a.x)
    fastact_impl.backward(case, a.g, a.x, a.y, want_g)()
    bwd = impl.backward(case, a.g, a.x, a.y, a.out)
    if bwd is not None:
        bwd()
        np.testing.assert_allclose(a.out, want_g, rtol=1e-6, atol=1e-9, err_msg="backward")


def test_limit_moves_the_bytes():
    case = CASES["relu"]
    a = bench.make_arrays(case, 5000, "float32")
    lim = bench.Limit()
    lim.set_threads(2)
    lim.forward(case, a.x, a.out)()
    np.testing.assert_array_equal(a.out, a.x)
    lim.backward(case, a.g, a.x, a.y, a.out)()
    np.testing.assert_array_equal(a.out, a.g * a.y)


def test_measure_counts_per_call():
    calls = []
    t = bench.measure([lambda: calls.append(1)] * 2, None, 0.0)
    assert t.best > 0 and t.best <= t.median
    assert t.samples >= bench.ROUNDS
    assert len(calls) == 2 * (2 + t.samples * t.number)  # two warm-up rounds


def test_in_place_calls_see_fresh_copies():
    case = CASES["sigmoid"]
    a = bench.make_arrays(case, 1000, "float64")
    seen = []
    calls = [
        lambda b=b: seen.append(b.copy()) or bench.Fastact("cython").forward(case, b, b)()
        for b in a.pool
    ]
    bench.measure(calls, a.refresh, 0.0)
    assert len(a.pool) > 1
    for s in seen:
        np.testing.assert_array_equal(s, a.x)


def test_quick_run_json_table_and_targets(tmp_path, capsys):
    out = tmp_path / "b.json"
    args = [
        "bench",
        "--quick",
        "--quiet",
        "--activation",
        "relu,sigmoid,rrelu,prelu,leaky_relu",
        "--size",
        "1e3,4e4",
        "--dtype",
        "float32",
        "--min-time",
        "0",
        "--json",
        str(out),
        "--detail",
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "== relu: relu(x) = max(0, x)" in text
    assert "x lim" in text and "limit us" in text
    assert "underflowing inputs" in text and "against leaky_relu" in text
    assert "== targets:" in text
    assert "underflowing inputs within 1.2x of N(0, 1) inputs" in text
    doc = json.loads(out.read_text())
    assert doc["meta"]["schema"] == bench.SCHEMA
    assert set(doc) == {"meta", "results", "denormal", "pairs", "floor", "targets", "accuracy"}
    assert doc["accuracy"] == []  # float32 only: no 16-bit rows
    res = doc["results"]
    keys = {
        "case",
        "activation",
        "params",
        "dtype",
        "pass",
        "size",
        "threads",
        "impl",
        "best_s",
        "median_s",
        "bytes",
        "gbps",
        "ratio",
        "limit_s",
        "input",
        "samples",
        "number",
    }
    assert all(keys <= set(r) for r in res)
    assert {r["case"] for r in res} == {
        "relu",
        "sigmoid",
        "rrelu",
        "rrelu[train]",
        "prelu",
        "leaky_relu",
    }
    assert {r["pass"] for r in res} == {"fwd", "bwd"}
    assert {r["size"] for r in res} == {1000, 40000}
    assert {"limit", "fastact-cython"} <= {r["impl"] for r in res}
    for r in res:
        assert r["best_s"] > 0 and r["best_s"] <= r["median_s"]
        if r["impl"] == "limit":
            assert r["ratio"] == 1.0
        assert r["ratio"] == pytest.approx(r["best_s"] / r["limit_s"])
        assert r["bytes"] == (3 if r["pass"] == "bwd" else 2) * r["size"] * 4
        if r["size"] < bench.PAR_MIN:
            assert r["threads"] == 1
    assert any(r["threads"] > 1 for r in res) == (fastact.get_num_threads() > 1)
    assert {d["case"] for d in doc["denormal"]} == {
        "relu",
        "sigmoid",
        "rrelu",
        "rrelu[train]",
        "prelu",
        "leaky_relu",
    }
    assert all(d["denormal_s"] > 0 and d["normal_s"] > 0 for d in doc["denormal"])
    assert {p["pair"] for p in doc["pairs"]} >= {"prelu fwd+bwd / leaky_relu fwd+bwd"}
    assert all(set(c) >= {"check", "case", "worst", "target", "met"} for c in doc["targets"])


def test_plot(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "b.png"
    args = [
        "bench",
        "--quick",
        "--quiet",
        "--activation",
        "relu",
        "--size",
        "1e3,2e3",
        "--dtype",
        "float64",
        "--min-time",
        "0",
        "--sections",
        "main",
        "--compare",
        "numpy",
        "--plot",
        str(png),
    ]
    assert main(args) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_names_the_extra(monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *a, **k):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(SystemExit, match=r"pip install fastact\[plot\]"):
        bench.require_matplotlib()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--activation", "nope"], "--activation: unknown nope"),
        (["--dtype", "float8"], "--dtype"),
        (["--threads", "0"], "--threads"),
        (["--pass", "sideways"], "--pass"),
        (["--compare", "jax"], "--compare"),
        (["--sections", "everything"], "--sections"),
    ],
)
def test_bad_arguments(argv, message, capsys):
    assert main(["bench", *argv]) == 2
    assert message in capsys.readouterr().err


def test_sizes_parse():
    assert bench._sizes("1e3, 40000") == [1000, 40000]
    with pytest.raises(argparse.ArgumentTypeError):
        bench._sizes("1.5")


def test_targets_follow_the_cost_class():
    assert bench.target(CASES["relu"], "float64", "fwd") == 1.10
    assert bench.target(CASES["prelu"], "float32", "bwd") is None  # see the pairs
    assert bench.target(CASES["hardswish"], "float32", "fwd") == 1.25
    assert bench.target(CASES["sigmoid"], "float32", "bwd") == 1.25
    assert bench.target(CASES["gelu"], "float32", "fwd") == 2.5
    assert bench.target(CASES["gelu[tanh]"], "float32", "fwd") == 1.6
    assert bench.target(CASES["softplus"], "float64", "fwd") == 3.2
    assert bench.target(CASES["softmax"], "float32", "fwd") is None
    # 16-bit: against the 2-byte limit, 0.6x a float32 call at the 4-byte one (half the bytes)
    assert bench.target(CASES["relu"], "bfloat16", "fwd") == pytest.approx(1.2)
    assert bench.target(CASES["sigmoid"], "float16", "fwd") == pytest.approx(1.1 * 2 * 1.25)


def test_default_output_is_a_summary(capsys):
    """One table (a line per case and dtype) and one line on the targets; the header
    announces the steps the progress counts and names only installed peers."""
    args = ["bench", "--quick", "--activation", "relu,softmax", "--size", "1e3", "--min-time", "0"]
    assert main(args) == 0
    cap = capsys.readouterr()
    text = cap.out
    assert "== " not in text and "issue" not in text
    lines = text.splitlines()
    steps = int(lines[0].split(" steps")[0].rsplit(" ", 1)[1])
    assert f"[{steps}/{steps}]" in cap.err
    assert sum(ln.startswith(("relu ", "softmax ")) for ln in lines) == 4
    assert any(ln.startswith("targets: ") and "--detail" in ln for ln in lines)
    assert len(lines) < 20
    for peer in ("torch", "numexpr"):
        try:
            __import__(peer)
        except ImportError:
            assert peer not in lines[0]


def test_summary_flags_ratios_below_the_limit():
    rows = [
        {
            "case": "relu",
            "dtype": "float32",
            "pass": "fwd",
            "size": 10**6,
            "threads": 1,
            "impl": "fastact-cython",
            "best_s": 1e-4,
            "ratio": 0.8,
        },
    ]
    text = bench.format_summary(rows, "cython", [])
    assert "0.80~" in text and "timing noise" in text


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_16_bit_rows_with_their_accuracy(tmp_path, capsys, dtype):
    if dtype == "bfloat16":
        pytest.importorskip("ml_dtypes")
    out = tmp_path / "b.json"
    args = ["bench", "--quick", "--quiet", "--activation", "relu,gelu,softmax", "--size", "1e3"]
    args += ["--dtype", dtype, "--min-time", "0", "--sections", "main", "--json", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "16-bit accuracy" in text
    doc = json.loads(out.read_text())
    assert {r["dtype"] for r in doc["results"]} == {dtype}
    assert {r["bytes"] for r in doc["results"] if r["pass"] == "fwd"} == {2 * 2 * 1000}
    acc = {r["case"]: r for r in doc["accuracy"]}
    assert set(acc) == {"relu", "gelu", "gelu[tanh]", "softmax"}
    assert acc["relu"]["fwd_ulp"] == 0.0
    assert 0.4 < acc["gelu"]["fwd_ulp"] <= 0.6  # rounded once from float32


def test_torch_peer_leaves_out_what_it_cannot_run_in_16_bits():
    """PyTorch has no float16 rrelu in training: that cell is "-", the bench goes on."""
    pytest.importorskip("torch")
    from fastact.bench.cases import cases_of

    entry = next(e for e in fastact.table.TABLE if e.name == "rrelu")
    cases = {c.training: c for c in cases_of(entry)}
    train, plain = cases[True], cases[False]
    x = np.linspace(-2, 2, 64).astype(np.float16)
    assert bench.Torch().forward(train, x, np.empty_like(x)) is None
    assert bench.Torch().forward(plain, x, np.empty_like(x)) is not None
