"""python -m fastact ..."""

from __future__ import annotations

import json
import subprocess
import sys

import fastact
from fastact.cli import main


def test_info_lists_backends_and_every_activation(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "cython" in out and "numpy" in out
    for name in fastact.activations():
        assert name in out


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in info["activations"]] == fastact.activations()
    assert info["backends"]["cython"]["available"]


def test_module_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "fastact", "info"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "activations" in out.stdout


def test_warmup_compiles_the_numba_kernels(capsys):
    import pytest

    if "numba" not in fastact.backends():
        pytest.skip("numba backend unavailable")
    assert main(["warmup"]) == 0
    assert "numba kernels ready" in capsys.readouterr().out


def test_help_is_plain_text_and_names_both_commands(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "``" not in out and ":mod:" not in out
    assert "python -m fastact COMMAND" in out and "fastact COMMAND" in out


def test_regions_help_shows_the_defaults(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["regions", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: 2,16,16,16)" in out and "[2, 16" not in out
    assert "(default: relu)" in out and "(default: 200000)" in out
    from fastact.cli import build_parser

    args = build_parser().parse_args(["regions"])
    assert args.widths == [2, 16, 16, 16]
