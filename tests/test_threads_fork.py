"""Kernels under Python threads and in forked children, on every backend.

* 8 Python threads calling parallel-sized kernels at once (each with
  num_threads=2) all get the single-threaded result, bit for bit;
* a child forked (multiprocessing "fork") after the parent ran parallel
  kernels runs a parallel-sized kernel to the right result within a timeout:
  libgomp hangs and Numba's omp layer aborts if such a child enters a thread
  pool, so fastact must run it serially there.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import threading

import numpy as np
import pytest

import fastact
from tests.conftest import PARALLEL_N, Call, sample

BACKENDS = fastact.backends()
COMPILED = [b for b in BACKENDS if b != "numpy"]
NAMES = ("sigmoid", "gelu", "leaky_relu", "rrelu", "prelu", "softmax")
ENTRIES = [fastact.activation(n) for n in NAMES if n in fastact.activations()]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fork is POSIX")


def _work(entry, backend, x, g, threads):
    call = Call(entry, training=entry.has_training_mode)
    with fastact.config(backend=backend, num_threads=threads):
        y = call.forward(x)
        s = call.saved(x, y)
        if entry.channel_param:
            return (y, *call.backward_full(g, s))
        return y, call.backward(g, s)


def _inputs(entry, dtype, n=PARALLEL_N):
    x = sample(entry, n, dtype)
    g = sample(entry, n, dtype, seed=4)
    if entry.rowwise or entry.channel_param:
        rows = n // 100
        return x[: rows * 100].reshape(rows, 100), g[: rows * 100].reshape(rows, 100)
    return x, g


@pytest.mark.parametrize("backend", BACKENDS)
def test_eight_python_threads_at_once(backend):
    # the NumPy fallback is slow and has no thread pool: small arrays suffice there
    n = 5_000 if backend == "numpy" else PARALLEL_N
    cases = [(e, dt, *_inputs(e, dt, n)) for e in ENTRIES for dt in (np.float32, np.float64)]
    want = [_work(e, backend, x, g, 1) for e, dt, x, g in cases]
    errors: list[str] = []
    barrier = threading.Barrier(8)

    def run(k: int) -> None:
        try:
            barrier.wait()
            for _ in range(2):
                for j, (e, dt, x, g) in enumerate(cases):
                    got = _work(e, backend, x, g, 2)
                    for a, b in zip(got, want[j]):
                        if not np.array_equal(a, b, equal_nan=True):
                            errors.append(f"thread {k}: {e.name} {np.dtype(dt)} differs")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(f"thread {k}: {exc!r}")

    threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert errors == []


def _child(backend: str, queue) -> None:
    try:
        results = []
        for entry in ENTRIES:
            x, g = _inputs(entry, np.float64)
            results.append([np.asarray(a).tobytes() for a in _work(entry, backend, x, g, 2)])
        from fastact._config import STATE

        queue.put(("ok", results, STATE.forked))
    except BaseException as exc:  # pragma: no cover - reported by the parent
        queue.put(("error", repr(exc), None))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
@pytest.mark.parametrize("backend", COMPILED)
def test_forked_child_runs_kernels_after_the_parent_did(backend):
    want = []
    for entry in ENTRIES:  # parallel kernels in the parent: its thread pools start
        x, g = _inputs(entry, np.float64)
        want.append([np.asarray(a).tobytes() for a in _work(entry, backend, x, g, 2)])
    if fastact.get_num_threads() < 2:
        pytest.skip("one core: no thread pool to inherit")
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(backend, queue))
    proc.start()
    try:
        status, results, forked = queue.get(timeout=120)
    except Exception:  # queue.Empty: the child hung or died
        status, results, forked = "timeout", None, None
    proc.join(timeout=30)
    if proc.is_alive():
        proc.kill()
        proc.join()
    assert status == "ok", f"child: {status} {results} (exit code {proc.exitcode})"
    assert proc.exitcode == 0
    assert forked is True  # the child knew to stay serial
    assert results == want


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_numba_child_never_enters_the_pool(monkeypatch):
    """In a forked child the Numba backend runs serial drivers only."""
    if "numba" not in BACKENDS:
        pytest.skip("no numba")
    x = np.linspace(-3, 3, PARALLEL_N)
    with fastact.config(backend="numba", num_threads=2):
        fastact.sigmoid(x)  # starts Numba's pool in the parent
    ctx = mp.get_context("fork")
    queue = ctx.Queue()

    def child(q):
        from fastact._backends import get
        from fastact._backends.numba import RUNTIME

        nb = get("numba")
        used = []
        real = nb._driver
        nb._drivers = {k: v for k, v in nb._drivers.items() if not k[0].startswith("par_")}
        nb._driver = lambda name, sfx: used.append(name) or real(name, sfx)
        with fastact.config(backend="numba", num_threads=2):
            out = np.empty_like(x)
            nb.forward(fastact.activation("sigmoid"), x, out, (), False, 0, 2)
        q.put((RUNTIME.forked, used, float(out.sum())))

    proc = ctx.Process(target=child, args=(queue,))
    proc.start()
    forked, used, total = queue.get(timeout=120)
    proc.join(timeout=30)
    assert forked is True
    assert not any(name.startswith("par_") for name in used)
    assert total == pytest.approx(float(fastact.sigmoid(x).sum()), rel=1e-12)
