"""python -m fastact regions ..."""

from __future__ import annotations

import json
import sys

import pytest

import fastact
from fastact.cli import main
from fastact.regions import bounds


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_counts_without_a_picture(capsys):
    assert main(["regions", "--widths", "2,6,6", "--seed", "1", "--json"]) == 0
    out = _json(capsys)
    assert out["widths"] == [2, 6, 6] and out["regions"] > 1
    assert out["regions"] <= out["upper_bound"] == bounds.serra_bound([2, 6, 6])
    assert out["out"] is None


def test_text_output(capsys):
    assert main(["regions", "--widths", "2,4", "--box=-1,1,-1,1"]) == 0
    text = capsys.readouterr().out
    assert "linear regions" in text and "2-4 relu" in text


def test_activation_parameters(capsys):
    assert (
        main(
            [
                "regions",
                "--widths",
                "2,5,5",
                "--activation",
                "leaky_relu",
                "--param",
                "negative_slope=0.2",
                "--json",
            ]
        )
        == 0
    )
    assert "negative_slope=0.2" in _json(capsys)["activation"]


def test_sawtooth(capsys):
    assert main(["regions", "--sawtooth", "2", "--json"]) == 0
    assert _json(capsys)["regions"] == 16
    assert main(["regions", "--sawtooth", "1", "--teeth", "3", "--json"]) == 0
    assert _json(capsys)["regions"] == 9


def test_depth_sweep(capsys):
    assert main(["regions", "--depth-sweep", "--units", "8", "--seeds", "1", "--json"]) == 0
    rows = _json(capsys)["sweep"]
    assert [r["depth"] for r in rows] == [1, 2, 4]
    for r in rows:
        assert r["construction"] == r["lower_bound"] <= r["upper_bound"]
        assert all(c <= r["upper_bound"] for c in r["random"])


def test_pictures(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    for args in (
        ["--widths", "2,8,8"],
        ["--sawtooth", "2"],
        ["--depth-sweep", "--units", "4", "--seeds", "1"],
    ):
        path = tmp_path / "picture.png"
        assert main(["regions", *args, "--out", str(path)]) == 0
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert str(path) in capsys.readouterr().out
        path.unlink()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--activation", "sigmoid"], "not piecewise linear"),
        (["--box", "1,1,0,1"], "degenerate"),
        (["--widths", "3,4"], "must start with 2"),
        (["--widths", "2"], "at least one hidden layer"),
        (["--widths", "2,64,64,64", "--max-regions", "50"], "max_regions=50"),
        (["--sawtooth", "9"], "more than --max-regions"),
        (["--activation", "relu", "--param", "alpha=1"], "unknown parameter"),
    ],
)
def test_errors(args, message, capsys):
    assert main(["regions", *args]) == 2
    assert message in capsys.readouterr().err


def test_bad_argument_syntax(capsys):
    with pytest.raises(SystemExit):
        main(["regions", "--widths", "2,x"])
    with pytest.raises(SystemExit):
        main(["regions", "--box", "0,1"])
    with pytest.raises(SystemExit):
        main(["regions", "--sawtooth", "2", "--depth-sweep"])


def test_missing_matplotlib_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["regions", "--widths", "2,4", "--out", str(tmp_path / "x.png")]) == 2
    assert "pip install fastact[plot]" in capsys.readouterr().err
    from fastact.regions import plot

    with pytest.raises(ImportError, match=r"pip install fastact\[plot\]"):
        plot.region_colors(3)


def test_registered():
    from fastact.cli import COMMANDS

    assert COMMANDS["regions"][0] == "fastact.regions.cli"
    assert fastact.regions.cli.run  # noqa: B018 - importable


@pytest.mark.parametrize("act", ["leaky_relu", "relu6", "hardtanh"])
def test_depth_sweep_bounds_follow_the_activation(act, capsys):
    if act not in fastact.activations():
        pytest.skip(f"{act} is not in the table yet")
    assert (
        main(
            [
                "regions",
                "--depth-sweep",
                "--units",
                "8",
                "--seeds",
                "2",
                "--activation",
                act,
                "--json",
            ]
        )
        == 0
    )
    for r in _json(capsys)["sweep"]:
        assert max(r["random"]) <= r["upper_bound"]
        assert r["construction"] <= r["upper_bound"]
