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
