"""Adding an activation is its table entry plus its reference: every consumer picks it up.

A subprocess loads ``fastact/table.py`` on its own, appends a throw-away entry
to ``TABLE`` and then imports fastact, so that everything built from the table
at import (public functions, layers, operators) and everything that walks it
later (kernel generators, stubs, benchmarks, asv's grid, the test fixtures)
sees a table with one more entry.  The entry is not compiled into the Cython
extension, so its calls go to the Numba backend (and the NumPy one on request).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NAME = "throwaway_relu"

SCRIPT = textwrap.dedent(
    """
    import importlib.util, json, sys
    from pathlib import Path

    root = Path(sys.argv[1])
    spec = importlib.util.spec_from_file_location("fastact.table", root / "fastact" / "table.py")
    t = importlib.util.module_from_spec(spec)
    sys.modules["fastact.table"] = t
    spec.loader.exec_module(t)
    # What a contributor writes: the table entry...
    entry = t.Activation(
        name="throwaway_relu",
        formula="throwaway_relu(x) = x if x > 0 else slope * x",
        parameters=(t.Param("slope", 0.5, "slope for x < 0"),),
        forward="x if x > 0 else x * slope",
        backward="keepnan(y, g if y > 0 else g * slope)",
        saves="output",
        properties=t.Properties(True, "almost everywhere", True, False, (-t.INF, t.INF)),
        kinks=("0",),
        piecewise_linear=True,
        cost="cheap",
        numpy=t.NumpyForm(forward="np.copyto(out, np.where(x > 0, x, x * slope))"),
    )
    t.TABLE = t.TABLE + (entry,)
    t.BY_NAME[entry.name] = entry

    import numpy as np

    from fastact import reference

    # ...and its reference.
    @reference._forward
    def throwaway_relu(x, slope=0.5):
        x = np.asarray(x, np.float64)
        return np.where(x > 0, x, x * slope)

    @reference._backward
    def throwaway_relu_backward(g, y, slope=0.5):
        g, y = np.asarray(g, np.float64), np.asarray(y, np.float64)
        return np.where(y > 0, g, g * slope)

    import fastact

    found = {}
    x = np.linspace(-3.0, 3.0, 13)
    want = throwaway_relu(x, 0.25)
    found["table"] = entry.name in fastact.activations()
    found["kernels"] = {}
    for backend in ("numba", "numpy"):
        if backend in fastact.backends():
            with fastact.config(backend=backend):
                y = fastact.throwaway_relu(x, slope=0.25)
                dx = fastact.throwaway_relu_backward(np.ones_like(x), y, slope=0.25)
            found["kernels"][backend] = bool(
                np.array_equal(y, want) and np.array_equal(dx, np.where(x > 0, 1.0, 0.25))
            )

    from fastact._codegen import c_kernels, stubs
    from fastact._math import functions

    found["c_kernels"] = "throwaway_relu" in c_kernels.generate(t.TABLE, functions.HELPERS)
    found["stubs"] = "def throwaway_relu(" in stubs.generate() and (
        "def throwaway_relu_backward(" in stubs.generate()
    )
    found["nn_stubs"] = "class ThrowawayRelu(" in stubs.generate_nn()

    from fastact import nn

    layer = nn.ThrowawayRelu(slope=0.25)
    found["nn"] = bool(np.array_equal(layer(x), want))

    try:
        import torch
    except ImportError:
        found["torch"] = None
    else:
        import fastact.torch as ft

        got = ft.throwaway_relu(torch.from_numpy(x), slope=0.25).numpy()
        found["torch"] = bool(np.array_equal(got, want)) and hasattr(
            torch.ops.fastact, "throwaway_relu_backward"
        )

    try:
        import dask.array as da
    except ImportError:
        found["dask"] = None
    else:
        got = fastact.throwaway_relu(da.from_array(x, chunks=5), slope=0.25)
        found["dask"] = isinstance(got, da.Array) and bool(np.array_equal(got.compute(), want))

    from fastact import bench

    cases = {c.label: c for c in bench.all_cases()}
    case = cases.get("throwaway_relu")
    found["bench_case"] = case is not None
    found["bench_target"] = case is not None and bench.target(case, "float32", "fwd") == 1.10
    a = bench.make_arrays(case, 100, "float64")
    call = bench.NumPy().forward(case, a.x, a.out)
    found["bench_numpy_peer"] = call is not None
    call()
    found["bench_numpy_peer"] &= bool(np.array_equal(a.out, throwaway_relu(a.x)))

    sys.path.insert(0, str(root / "asv_bench"))
    from benchmarks import common

    found["asv_grid"] = "throwaway_relu" in common.ACTIVATIONS

    sys.path.insert(0, str(root))
    from tests import conftest

    found["tests"] = entry in conftest.ENTRIES and entry in conftest.ELEMENTWISE
    print(json.dumps(found))
    """
)


@pytest.fixture(scope="module")
def found():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FASTACT_PROFILE": os.devnull}
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env=env,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "consumer",
    [
        "table",
        "c_kernels",
        "stubs",
        "nn_stubs",
        "nn",
        "bench_case",
        "bench_target",
        "bench_numpy_peer",
        "asv_grid",
        "tests",
    ],
)
def test_every_consumer_picks_up_a_new_entry(found, consumer):
    assert found[consumer] is True


def test_its_kernels_run_on_every_runtime_backend(found):
    assert found["kernels"] and all(found["kernels"].values()), found["kernels"]


@pytest.mark.parametrize("host", ["torch", "dask"])
def test_integrations_pick_up_a_new_entry(found, host):
    if found[host] is None:
        pytest.skip(f"{host} is not installed")
    assert found[host] is True
