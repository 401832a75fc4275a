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


def test_fastact_sets_passive_waiting_when_the_user_chose_none():
    spin, policy, says = _child()
    assert (spin, policy) == (None, _config.WAIT_POLICY)
    assert says == f"OMP_WAIT_POLICY={_config.WAIT_POLICY} (fastact's)"


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
