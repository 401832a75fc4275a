"""scripts/check_cross.py: every kernel call it builds, checked against this build."""

from __future__ import annotations

import numpy as np
import pytest

import fastact
from fastact.table import TABLE
from tests.conftest import load_script


@pytest.fixture(scope="module")
def check_cross():
    return load_script("scripts/check_cross.py")


def test_every_parameter_set_gives_every_kernel_parameter(check_cross):
    # a test parameter set names only what it changes; the script fills the rest
    cases = check_cross.cases()
    assert {c.kid for c in cases} == set(range(len(TABLE)))
    for c in cases:
        assert len(c.params) == 8, c.what


@pytest.mark.skipif("cython" not in fastact.backends(), reason="the C extension is not built")
def test_this_build_passes_the_script_s_checks(check_cross):
    for c in check_cross.cases():
        assert c.host is not None, c.what
        c.check(c.host)


@pytest.mark.skipif("cython" not in fastact.backends(), reason="the C extension is not built")
def test_the_16_bit_cases_cover_every_elementwise_entry_and_catch_one_changed_bit(check_cross):
    cases = check_cross.cases16()
    want = {k for k, e in enumerate(TABLE) if not e.rowwise}
    for half in check_cross._half_dtypes():
        mine = [c for c in cases if c.dtype == half]
        assert {c.kid for c in mine} == want, half
        assert {c.op for c in mine} >= {"fwd", "bwd"}
    c = next(c for c in cases if c.op == "fwd")
    got = c.host.copy()
    c.check(got)
    bits = got.view("u2")
    k = int(np.flatnonzero(~np.isnan(got))[100])
    bits[k] ^= 1
    with pytest.raises(AssertionError, match="1 values differ"):
        c.check(got)
