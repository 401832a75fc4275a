"""benchmarks/bench_prelu_layouts.py: every dtype, layout and thread count timed, beside
PyTorch where it is installed, the OpenMP runtime letting each cell's threads run."""

from __future__ import annotations

import importlib.util
import os

import threadpoolctl

import fastact
from fastact import _config
from tests.conftest import load_script


def _openmp_threads() -> int:
    info = [d for d in threadpoolctl.threadpool_info() if d["user_api"] == "openmp"]
    return min((d["num_threads"] for d in info), default=os.cpu_count() or 1)


def test_every_cell_is_timed_with_its_threads(monkeypatch):
    mod = load_script("benchmarks/bench_prelu_layouts.py")
    monkeypatch.setattr(mod, "LAYOUTS", {"one weight": ((64,), 1), "(8, 5)": ((8, 5), 5)})
    seen = []
    prelu = fastact.prelu

    def spy(x, w, out=None):
        seen.append((_config.OVERRIDE.get()[1], _openmp_threads()))
        return prelu(x, w, out=out)

    monkeypatch.setattr(fastact, "prelu", spy)
    got = mod.cells(["float32", "float64"], [1, 2], 2, True)
    assert set(got) == {
        f"{d} {lay} {t}" for d in ("float32", "float64") for lay in mod.LAYOUTS for t in (1, 2)
    }
    width = 4 if importlib.util.find_spec("torch") else 2
    assert all(len(row) == width and min(row) > 0 for row in got.values())
    assert [t for t, _ in seen] == [t for _ in range(4) for t in (1, 1, 2, 2)]
    if (os.cpu_count() or 1) >= 2:
        # PyTorch's count, set for the cells before, does not cap fastact's two threads
        assert all(omp >= 2 for t, omp in seen if t == 2), seen
