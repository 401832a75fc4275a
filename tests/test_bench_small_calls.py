"""benchmarks/bench_small_calls.py: each backend's batches run with that backend in force."""

from __future__ import annotations

import contextlib

import pytest

import fastact
from fastact import _config
from tests.conftest import load_script


def _load():
    return load_script("benchmarks/bench_small_calls.py")


def _backend_in_force() -> str:
    block = _config.OVERRIDE.get()
    return block[0] if block is not None and block[0] is not None else fastact.get_backend()


@pytest.mark.skipif(
    not {"cython", "numba"} <= set(fastact.backends()), reason="needs both compiled backends"
)
@pytest.mark.parametrize("blocks", [False, True], ids=["set_backend", "config blocks"])
def test_each_backends_batches_run_on_that_backend(blocks):
    mod = _load()
    seen: list[str] = []
    choose = (lambda b: fastact.config(backend=b)) if blocks else mod.set_backend
    with contextlib.ExitStack() as stack:
        stack.callback(fastact.set_backend, "auto")
        best = mod.best_batches(lambda: seen.append(_backend_in_force()), 2, choose)
    assert set(best) == set(mod.BACKENDS) and all(t > 0 for t in best.values())
    # one compiling call each, then two rounds of a batch each, in turn
    want = [*mod.BACKENDS] + [b for _ in range(2) for b in mod.BACKENDS for _ in range(mod.BATCH)]
    assert seen == want
