"""Shared fixtures: the table, the backends, hostile arrays, a uniform caller.

Everything here is driven by fastact's activation table: a new entry is
tested by every test that takes the ``entry`` fixture without editing them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import fastact
from fastact import reference
from fastact.table import TABLE, Activation

ENTRIES = [e for e in TABLE]
ELEMENTWISE = [e for e in ENTRIES if not e.rowwise]
# FASTACT_TEST_BACKENDS=cython,numpy restricts the backends under test.
BACKENDS = [
    b for b in fastact.backends() if b in os.environ.get("FASTACT_TEST_BACKENDS", b).split(",")
]
COMPILED = [b for b in BACKENDS if b != "numpy"]


@contextlib.contextmanager
def nt_threshold(min_bytes: int):
    """The C kernels' threshold for non-temporal stores set to ``min_bytes`` (0: every
    call's output bypasses the cache) inside the block; yields whether this build
    has such stores (False without the C extension or off x86-64)."""
    if "cython" not in BACKENDS:
        yield False
        return
    from fastact._backends.cython import _kernels

    was = _kernels.nt_min_bytes(min_bytes)
    try:
        yield was != 0
    finally:
        _kernels.nt_min_bytes(was)


DTYPES = [np.float32, np.float64]

# Tolerance in units of the dtype's epsilon, relative to the float64 reference.
RTOL_EPS = 8
# An array size above the parallel threshold whose two thread chunks do not
# end on a multiple of the vector width: chunk edges and tails get exercised.
PARALLEL_N = 70_001


# Tests run with a profile that goes parallel from TEST_SERIAL_BELOW elements,
# so that PARALLEL_N-sized arrays exercise the threaded kernels (the shipped
# defaults keep cheap kernels serial up to 512 KiB an array).
TEST_SERIAL_BELOW = 8192


@pytest.fixture(scope="session", autouse=True)
def test_profile(tmp_path_factory):
    from fastact import _dispatch, _profile

    path = tmp_path_factory.mktemp("profile") / "profile.json"
    plans = {
        _profile.key(e.name, p, d): _profile.Plan(serial_below=TEST_SERIAL_BELOW)
        for e in ENTRIES
        for p in _dispatch.PASSES
        for d in _dispatch.DTYPES
    }
    _profile.save(plans, path)
    old = os.environ.get("FASTACT_PROFILE")
    os.environ["FASTACT_PROFILE"] = str(path)
    _dispatch.load_profile()
    yield path
    if old is None:
        del os.environ["FASTACT_PROFILE"]
    else:
        os.environ["FASTACT_PROFILE"] = old
    _dispatch.load_profile()


ROOT = Path(__file__).resolve().parents[1]


def load_script(path: str):
    """The module of a script of this checkout (``benchmarks/...``, ``scripts/...``),
    registered under its name (dataclasses look their module up there); a skip
    outside a source checkout."""
    file = ROOT / path
    if not file.exists():
        pytest.skip("not a source checkout")
    spec = importlib.util.spec_from_file_location(file.stem, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def entry_id(e: Activation) -> str:
    return e.name


@pytest.fixture(params=ENTRIES, ids=entry_id)
def entry(request) -> Activation:
    return request.param


@pytest.fixture(params=ELEMENTWISE, ids=entry_id)
def elementwise_entry(request) -> Activation:
    return request.param


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture(params=DTYPES, ids=lambda d: np.dtype(d).name)
def dtype(request):
    return request.param


def example_params(entry: Activation) -> list[dict]:
    """The defaults plus the entry's extra test parameter sets.

    A channel parameter set to None means one random value per channel.
    """
    sets = [dict(entry.example_params)] + list(entry.test_params)
    if entry.channel_param:
        sets.append({entry.channel_param: None})
    return sets


def _channels(x: np.ndarray) -> int:
    return x.shape[1] if x.ndim >= 2 else 1


def weight_for(x: np.ndarray, rng=None) -> np.ndarray:
    """A per-channel weight (prelu) for x, with both signs."""
    rng = rng or np.random.default_rng(7)
    channels = x.shape[1] if x.ndim >= 2 else 1
    return rng.uniform(-0.5, 0.9, channels)


class Call:
    """Calls an entry's forward/backward uniformly, whatever its parameters."""

    def __init__(self, entry: Activation, params: dict | None = None, training=False, seed=1234):
        self.entry = entry
        self.params = dict(entry.example_params if params is None else params)
        self.training = training
        self.seed = seed
        self.fwd = getattr(fastact, entry.name)
        self.bwd = getattr(fastact, f"{entry.name}_backward")

    def _kw(self, x):
        kw = {k: v for k, v in self.params.items() if k != self.entry.channel_param}
        if self.entry.has_training_mode:
            kw.update(training=self.training, seed=self.seed)
        return kw

    def weight(self, x):
        cp = self.entry.channel_param
        w = self.params.get(cp)
        if w is None or (np.ndim(w) == 1 and np.size(w) != _channels(np.asarray(x))):
            w = weight_for(np.asarray(x))
            self.params[cp] = w
        return w

    def forward(self, x, out=None):
        if self.entry.channel_param:
            return self.fwd(x, self.weight(x), out=out)
        return self.fwd(x, out=out, **self._kw(x))

    def backward(self, g, saved, out=None):
        if self.entry.channel_param:
            gx, _ = self.bwd(g, saved, self.weight(saved), out=out)
            return gx
        return self.bwd(g, saved, out=out, **self._kw(saved))

    def backward_full(self, g, saved, out=None):
        return self.bwd(g, saved, self.weight(saved), out=out)

    def saved(self, x, y):
        return x if self.entry.saves == "input" else y

    # float64 reference
    def _ref_kw(self, dtype):
        kw = dict(self.params)
        if self.entry.has_training_mode:
            kw.update(training=self.training, seed=self.seed, dtype=np.dtype(dtype))
        return kw

    def ref_forward(self, x):
        return reference.forward(self.entry.name, x, **self._ref_kw(np.asarray(x).dtype))

    def forward_scale(self, x):
        """Absolute error scale of a forward, where the entry documents one."""
        expr = self.entry.tolerance.forward_scale
        if expr is None:
            return None
        x = np.asarray(x, np.float64)
        rowlen = x.shape[-1] if x.ndim else 1
        return eval(expr, {}, {"rowlen": rowlen})  # noqa: S307

    def underflow(self, x, dtype):
        """Absolute tolerance where the entry documents a flush to 0 (``tolerance.underflow``,
        in units of the smallest normal number of ``dtype``), or None."""
        expr = self.entry.tolerance.underflow
        if expr is None:
            return None
        x = np.asarray(x, np.float64)
        with np.errstate(all="ignore"):
            u = eval(expr, {"abs": np.abs}, {"x": x, **self.params})  # noqa: S307
        u = np.broadcast_to(np.where(np.isfinite(u), u, 0.0), x.shape)
        return u * float(np.finfo(dtype).tiny)

    def condition(self, x):
        """Extra tolerance, in ulp, where the entry documents error growth."""
        expr = self.entry.tolerance.condition
        if expr is None:
            return None
        x = np.asarray(x, np.float64)
        env = {"x": x, **self.params, "rowlen": x.shape[-1] if x.ndim else 1}
        if self.entry.rowwise:
            env["rowmax"] = np.max(x, axis=-1, keepdims=True) if x.ndim else x
        with np.errstate(all="ignore"):
            c = eval(expr, {"abs": np.abs}, env)  # noqa: S307
        return np.where(np.isfinite(c), c, 0.0)

    def grad_scale(self, g):
        """Scale for assert_close of a backward: g where the derivative crosses zero.

        A rowwise gradient subtracts a row reduction of g: the row's sum of |g|.
        """
        if self.entry.rowwise:
            g = np.abs(np.asarray(g, np.float64))
            return g.sum(axis=-1, keepdims=True) if g.ndim else g
        return None if self.entry.properties.monotonic else g

    def ref_backward(self, g, saved):
        r = reference.backward(self.entry.name, g, saved, **self._ref_kw(np.asarray(g).dtype))
        return r[0] if self.entry.channel_param else r


def assert_close(got, want, dtype, rtol_eps=RTOL_EPS, what="", scale=None, cond=None, atol=None):
    """got (dtype) agrees with the float64 reference ``want`` to a few ulp.

    ``scale`` adds an absolute tolerance of a few ulp of ``|scale|``: the
    gradient of a non-monotonic activation crosses zero, where a few ulp of
    its terms are all the relative accuracy there is.  ``cond`` adds that
    many ulp per element (documented error growth); ``atol`` an absolute
    tolerance per element (a documented flush to 0).
    """
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    assert got.shape == want.shape, what
    eps = float(np.finfo(dtype).eps)
    tiny = float(np.finfo(dtype).tiny)
    nan_got, nan_want = np.isnan(got), np.isnan(want)
    bad = nan_got != nan_want
    assert not bad.any(), f"{what}: NaN mismatch at {np.flatnonzero(bad)[:5]}"
    fin = ~nan_want
    with np.errstate(invalid="ignore"):
        err = np.abs(got[fin] - want[fin])
        inf_ok = np.where(np.isinf(want[fin]), got[fin] == want[fin], True)
        rel = rtol_eps if cond is None else rtol_eps + np.broadcast_to(cond, nan_want.shape)[fin]
        tol = rel * eps * np.abs(want[fin]) + 4 * tiny
        if atol is not None:
            tol = tol + np.broadcast_to(atol, nan_want.shape)[fin]
        if scale is not None:
            sc = np.broadcast_to(np.abs(np.asarray(scale, np.float64)), nan_want.shape)[fin]
            tol = tol + rtol_eps * eps * np.where(np.isfinite(sc), sc, 0)
        ok = np.where(np.isinf(want[fin]), inf_ok, err <= tol)
    if not ok.all():
        i = np.flatnonzero(~ok)[:5]
        raise AssertionError(
            f"{what}: got {got[fin][i]} want {want[fin][i]} (err {err[i]}, tol {tol[i]})"
        )


def sample(entry: Activation, n: int, dtype, seed=0) -> np.ndarray:
    """Typical inputs: wide normal values plus small ones."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 3, n)
    x[::7] *= 0.01
    return x.astype(dtype)


SPECIALS = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-30, 1e30, -1e30]


def special_positions(n: int) -> list[int]:
    """Start, inside the vector body, the tail, and both sides of a 2-thread chunk edge."""
    half = -(-n // 2)
    edge = (half + 15) & ~15
    pos = {0, 1, 5, 17, n // 3, edge - 1, edge, edge + 1, n - 3, n - 2, n - 1}
    return sorted(p for p in pos if 0 <= p < n)
