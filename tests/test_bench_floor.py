"""python -m fastact bench --sections floor: the hand-written SIMD loops, their accuracy,
the section's table and JSON, and its clean skip where the loops cannot be built."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastact import reference
from fastact.bench import floor
from fastact.cli import main

INF = np.inf


def _floor():
    try:
        return floor.load()
    except floor.FloorUnavailable as exc:
        pytest.skip(f"the floor loops cannot run here: {exc}")


def _ref64(fn, x):
    """An independent float64 reference (fastact.reference, NumPy)."""
    x = x.astype(np.float64)
    with np.errstate(over="ignore"):
        if fn == "exp":
            return np.exp(x)
        if fn == "silu":
            return x * reference.sigmoid(x)
        return getattr(reference, fn)(x)


# max ulp (float32 against float64, float64 against long double); gelu within a few
# ulp more near 0, where its erfcx form rounds t = K / (K + z)
BOUNDS = {"exp": 1.0, "sigmoid": 2.0, "tanh": 2.5, "silu": 3.0, "gelu": 6.0}
BOUNDS64 = {"exp": 1.0, "sigmoid": 2.0, "tanh": 3.0, "silu": 3.0, "gelu": 8.0}


@pytest.mark.parametrize("fn", floor.FUNCTIONS)
def test_floor_loops_float32_against_a_float64_reference(fn):
    fl = _floor()
    x = floor.accuracy_inputs(np.float32, 1 << 15)
    ref = _ref64(fn, x).astype(np.longdouble)
    for isa in fl.isas:
        y = np.empty_like(x)
        fl.run(isa, fn, x, y)
        err, at = floor.max_ulp(y, ref, x)
        assert err <= BOUNDS[fn], f"{fn} {isa}: {err:.2f} ulp at x = {at}"


@pytest.mark.parametrize("fn", floor.FUNCTIONS)
def test_floor_loops_float64_against_long_double(fn):
    fl = _floor()
    x = floor.accuracy_inputs(np.float64, 1 << 15)
    ref = fl.reference(fn, x)
    # the long double reference agrees with the float64 one
    r64 = _ref64(fn, x)
    fin = np.isfinite(r64) & (np.abs(r64) > 1e-300)
    np.testing.assert_allclose(ref[fin].astype(np.float64), r64[fin], rtol=1e-13)
    for isa in fl.isas:
        y = np.empty_like(x)
        fl.run(isa, fn, x, y)
        err, at = floor.max_ulp(y, ref, x)
        assert err <= BOUNDS64[fn], f"{fn} {isa}: {err:.2f} ulp at x = {at}"


SPECIAL = {
    "exp": (INF, 0.0),
    "sigmoid": (1.0, 0.0),
    "tanh": (1.0, -1.0),
    "silu": (INF, 0.0),
    "gelu": (INF, 0.0),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fn", floor.FUNCTIONS)
def test_floor_loops_special_values_and_tails(fn, dtype):
    """inf, -inf and NaN at every position of a partial vector; every length's tail."""
    fl = _floor()
    at_inf, at_minus_inf = SPECIAL[fn]
    for isa in fl.isas:
        for n in range(1, 34):
            x = np.linspace(-3, 3, n).astype(dtype)
            want = np.empty(40, dtype)
            fl.run(isa, fn, np.resize(x, 40), want)
            y = np.full(n + 1, 7.0, dtype)
            fl.run(isa, fn, x, y[:n])
            np.testing.assert_array_equal(y[:n], want[:n])
            assert y[n] == 7.0  # nothing written past the end
            for v, expect in ((INF, at_inf), (-INF, at_minus_inf), (np.nan, np.nan)):
                xs = x.copy()
                xs[n - 1] = v
                fl.run(isa, fn, xs, y[:n])
                np.testing.assert_array_equal(y[n - 1], dtype(expect), err_msg=f"{fn}({v})")


def test_floor_section_table_and_json(tmp_path, capsys):
    out = tmp_path / "b.json"
    args = ["bench", "--quiet", "--activation", "sigmoid", "--dtype", "float32"]
    args += ["--sections", "floor", "--min-time", "0", "--json", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "== compute floor:" in text
    doc = json.loads(out.read_text())
    rows = doc["floor"]
    try:
        fl = floor.load()
    except floor.FloorUnavailable:
        assert "skipped:" in text and rows == []
        return
    assert {(r["function"], r["size"]) for r in rows} == {
        (f, n) for f in ("exp", "sigmoid") for n in floor.SIZES
    }
    for r in rows:
        assert set(r["ns_per_element"]) == set(fl.isas) | ({"fastact"} if r["ratio"] else set())
        assert all(v > 0 for k, v in r["ns_per_element"].items() if k != "fastact")
        assert all(0 <= u < 10 for u in r["max_ulp"].values())
    sig = [r for r in rows if r["function"] == "sigmoid"]
    assert all(r["ratio"] == r["ns_per_element"]["fastact"] / r["floor"] for r in sig)
    assert any(t["check"].startswith("transcendental within") for t in doc["targets"])


def test_floor_section_skips_cleanly(monkeypatch, capsys):
    def no_compiler():
        raise floor.FloorUnavailable("no C compiler found (set CC, or install gcc or clang)")

    monkeypatch.setattr(floor, "_loaded", None)
    monkeypatch.setattr(floor, "_compiler", no_compiler)
    args = ["bench", "--quiet", "--activation", "tanh", "--dtype", "float64"]
    assert main(args + ["--sections", "floor", "--min-time", "0"]) == 0
    text = capsys.readouterr().out
    assert "== compute floor: skipped: no C compiler found" in text


def test_floor_section_needs_a_floor_function(capsys):
    args = ["bench", "--quiet", "--activation", "relu", "--dtype", "float32", "--size", "1e3"]
    assert main(args + ["--sections", "floor", "--min-time", "0"]) == 0
    assert "compute floor" not in capsys.readouterr().out
