"""benchmarks/bench_compilers.py: the kernels built by a compiler, timed, same bits."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_compilers.py"
HEADER = ROOT / "fastact" / "_backends" / "cython" / "fa_kernels.h"


@pytest.mark.skipif(not HEADER.exists(), reason="the C kernels are not generated (no build)")
@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc")
def test_two_builds_of_the_kernels_give_the_same_bits():
    # vector loops against scalar ones: the same bits (the kernels' one rule for every
    # position of an array), and a row for every case with both columns
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--cc", "gcc,gcc -fno-tree-vectorize"]
        + ["--activation", "relu,sigmoid"]
        + ["--size", "1000", "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()[2:]]
    assert {(r[0], r[1], r[2]) for r in rows} == {
        (a, d, p)
        for a in ("relu", "sigmoid")
        for d in ("float32", "float64")
        for p in ("fwd", "bwd")
    }
    for r in rows:
        assert float(r[3]) > 0 and float(r[4]) > 0
        assert r[5] == "yes", r


def test_a_compiler_that_fails_is_named():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--cc", "no-such-compiler-xyz", "--size", "10"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "no-such-compiler-xyz" in done.stderr
