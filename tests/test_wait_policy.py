"""The OpenMP wait policy fastact sets at import: only where the user chose none."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fastact import _config

CHILD = (
    "import json, os, fastact, fastact._config as c; "
    "print(json.dumps([os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'), "
    "c.wait_policy()]))"
)


def _child(**env):
    e = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    e.pop("FASTACT_OMP_WAIT", None)
    e.update(env)
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=e, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_fastact_sets_a_short_spin_when_the_user_chose_none():
    spin, policy, says = _child()
    var, value = _config.WAIT_POLICY
    assert var == "GOMP_SPINCOUNT" and 0 < int(value) < 300_000  # below libgomp's default
    assert (spin, policy) == (value, None)
    assert says == f"GOMP_SPINCOUNT={value} (fastact's)"


@pytest.mark.parametrize(
    "env",
    [{"OMP_WAIT_POLICY": "passive"}, {"GOMP_SPINCOUNT": "123"}, {"OMP_WAIT_POLICY": "active"}],
)
def test_the_users_choice_is_kept(env):
    spin, policy, says = _child(**env)
    assert (spin, policy) == (env.get("GOMP_SPINCOUNT"), env.get("OMP_WAIT_POLICY"))
    assert says.endswith("(the user's)") and next(iter(env.values())) in says


def test_runtime_default_on_request():
    spin, policy, says = _child(FASTACT_OMP_WAIT="runtime")
    assert (spin, policy) == (None, None)
    assert "runtime's default" in says
