"""Backend and thread settings: precedence, context restore, threadpoolctl, fork."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import fastact
from fastact import _profile


def _run(code: str, **env) -> str:
    full = {
        k: v
        for k, v in os.environ.items()
        if k not in ("FASTACT_NUM_THREADS", "OMP_NUM_THREADS", "FASTACT_BACKEND")
    }
    full.update(env)
    out = subprocess.run(
        [sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_thread_count_precedence():
    code = "import fastact; print(fastact.get_num_threads())"
    assert _run(code, FASTACT_NUM_THREADS="3", OMP_NUM_THREADS="5") == "3"
    assert _run(code, OMP_NUM_THREADS="5") == "5"
    assert int(_run(code)) == len(os.sched_getaffinity(0))
    assert (
        _run(
            "import fastact; fastact.set_num_threads(4); print(fastact.get_num_threads())",
            FASTACT_NUM_THREADS="3",
        )
        == "4"
    )


def test_bad_environment_is_ignored_with_a_warning():
    code = "import warnings; warnings.simplefilter('error')\ntry:\n import fastact\nexcept RuntimeWarning as w: print('warned', w)"
    assert "FASTACT_NUM_THREADS" in _run(code, FASTACT_NUM_THREADS="many")
    assert "FASTACT_BACKEND" in _run(code, FASTACT_BACKEND="gpu")


def test_backend_from_environment():
    assert _run("import fastact; print(fastact.get_backend())", FASTACT_BACKEND="numpy") == "numpy"


def test_config_restores_after_exception():
    before = (fastact.get_backend(), fastact.get_num_threads())
    with pytest.raises(RuntimeError):
        with fastact.config(backend="numpy", num_threads=1):
            assert (fastact.get_backend(), fastact.get_num_threads()) == ("numpy", 1)
            raise RuntimeError("boom")
    assert (fastact.get_backend(), fastact.get_num_threads()) == before


def test_config_nests():
    with fastact.config(backend="numpy"):
        with fastact.config(num_threads=1):
            assert fastact.get_backend() == "numpy" and fastact.get_num_threads() == 1
        assert fastact.get_backend() == "numpy"


def test_set_backend_and_threads_validate():
    with pytest.raises(ValueError, match="backend must be one of"):
        fastact.set_backend("gpu")
    with pytest.raises(ValueError, match="num_threads must be between 1 and"):
        fastact.set_num_threads(0)
    with pytest.raises(TypeError, match="num_threads must be an integer"):
        fastact.set_num_threads(1.5)
    prev = fastact.get_backend()
    try:
        fastact.set_backend("numpy")
        assert fastact.get_backend() == "numpy"
        assert fastact.explain("relu", np.ones(3)).backend == "numpy"
    finally:
        fastact.set_backend(prev)


def test_threadpoolctl_limit_makes_calls_serial():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    x = np.ones(1_000_000, np.float32)
    if fastact.get_num_threads() < 2:
        pytest.skip("one core")
    assert fastact.explain("relu", x).num_threads >= 2
    with threadpoolctl.threadpool_limits(1):
        assert fastact.explain("relu", x).num_threads == 1
    assert fastact.explain("relu", x).num_threads >= 2


def test_small_arrays_run_serial():
    assert fastact.explain("sigmoid", np.ones(16)).num_threads == 1
    assert fastact.explain("sigmoid", np.ones(_profile.DEFAULT_SERIAL_BELOW)).num_threads >= 1
    assert fastact.explain("sigmoid", np.ones(10**6)).num_threads == fastact.get_num_threads()
    text = str(fastact.explain("sigmoid", np.ones(16), pass_="backward"))
    assert "sigmoid backward" in text and "serial" in text
    with pytest.raises(ValueError, match="pass_"):
        fastact.explain("sigmoid", np.ones(3), pass_="sideways")


def test_forked_child_runs_after_parallel_parent():
    import multiprocessing as mp

    x = np.linspace(-3, 3, 1_000_000).astype(np.float32)
    with fastact.config(num_threads=2):
        want = fastact.sigmoid(x)
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        got = pool.apply_async(_child_sigmoid, (x,)).get(timeout=60)
    np.testing.assert_array_equal(got, want)


def _child_sigmoid(x):
    return fastact.sigmoid(x)


def test_threadpoolctl_limit_on_the_very_first_call():
    code = (
        "import numpy as np, fastact\n"
        "from threadpoolctl import threadpool_limits\n"
        "with threadpool_limits(1):\n"
        "    print(fastact.explain('relu', np.ones(100000)).num_threads)\n"
        "print(fastact.explain('relu', np.ones(100000)).num_threads)\n"
    )
    first, after = _run(code, FASTACT_NUM_THREADS="2").split()
    assert first == "1" and after == "2"
