"""rrelu's counter-based slopes: the same bits everywhere, and their statistics.

Element ``i`` of seed ``s`` has the counter ``c = mix64(s) + i``; float64
slopes hash the 64-bit Weyl state ``c * WEYL64``, float32 slopes a 32-bit
Weyl state of the low half of ``c`` keyed by the high half, which the kernels
compute once per run of 2**32 counters (fa_intrinsics.h, reference.py).
"""

from __future__ import annotations

import numpy as np
import pytest

import fastact
from fastact import reference
from fastact._codegen import dialect

from .conftest import COMPILED, DTYPES, PARALLEL_N

N = 10**6

# The seed whose element 0 has counter c (mix64 is a bijection; its inverse is
# fastact.integrations.dask._unmix64, checked against this table below).
SEED_AT = {
    (3 << 32) - 500: 10979458294900376104,
    (5 << 32) - 1000: 15035885509868535487,
    (7 << 32) - 1000: 3352541824387959137,
    (9 << 32) - PARALLEL_N // 3 * 2: 538038482439200487,
    (-PARALLEL_N // 2) % 2**64: 10567479399939315469,
}


def _seed_with_counter(c: int) -> int:
    """The seed whose element 0 has counter ``c``."""
    return SEED_AT[c % 2**64]


@pytest.mark.parametrize("c", list(SEED_AT))
def test_seeds_have_their_counters(c):
    seed = SEED_AT[c]
    assert int(reference.counters(seed, 1)[0]) == c
    fdask = pytest.importorskip("fastact.integrations.dask", exc_type=ImportError)
    assert fdask._unmix64(c) == seed


# seeds whose counters cross a 2**32 boundary (a new float32 key) inside the
# array: in the first thread's chunk, in the second, and at the wrap of 2**64
RUN_SEEDS = [
    _seed_with_counter((7 << 32) - 1000),
    _seed_with_counter((9 << 32) - PARALLEL_N // 3 * 2),
    _seed_with_counter(-PARALLEL_N // 2),
]


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "n,seed",
    [
        *((PARALLEL_N, s) for s in (0, 42, 2**64 - 1, *RUN_SEEDS)),
        (1000, _seed_with_counter((3 << 32) - 500)),  # the serial fast path
    ],
)
def test_kernels_give_the_reference_bits(backend, dtype, n, seed):
    """Forward, backward and in place, serial and on two threads: the reference's slopes."""
    x = -np.abs(np.random.default_rng(1).normal(size=n)).astype(dtype) - 1
    slopes = reference.rrelu_slopes(x.shape, seed, 0.1, 0.3, dtype)
    assert slopes.dtype == dtype
    for threads in (1, 2):
        with fastact.config(backend=backend, num_threads=threads):
            y = fastact.rrelu(x, 0.1, 0.3, training=True, seed=seed)
            gx = fastact.rrelu_backward(np.ones_like(x), y, 0.1, 0.3, training=True, seed=seed)
            y2 = x.copy()
            fastact.rrelu(y2, 0.1, 0.3, training=True, seed=seed, out=y2)
            g2 = np.ones_like(x)
            fastact.rrelu_backward(g2, y, 0.1, 0.3, training=True, seed=seed, out=g2)
        for got in (y, y2):
            np.testing.assert_array_equal(got, x * slopes)
        for got in (gx, g2):
            np.testing.assert_array_equal(got, slopes)


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_new_key_past_a_run_boundary(dtype):
    """Past 2**32 counters the float32 key changes: not a repeat of the run before."""
    c0 = (5 << 32) - 1000
    c = np.uint64(c0) + np.arange(2000, dtype=np.uint64)
    u = reference.uniform_bits(c, dtype)
    before = reference.uniform_bits(c - np.uint64(1 << 32), dtype)  # the same low halves
    assert np.mean(u[1000:] == before[1000:]) < 0.01
    seed = _seed_with_counter(c0)
    np.testing.assert_array_equal(reference.uniform_bits(reference.counters(seed, 2000), dtype), u)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lo,hi", [(0.0, 0.0), (0.25, 0.25), (0.0, 1e-30), (1e-3, 1e3), (0.1, 0.9)])
def test_slopes_stay_in_bounds(dtype, lo, hi):
    s = reference.rrelu_slopes((20000,), 3, lo, hi, dtype)
    lo_t, hi_t = dtype(lo), dtype(hi)
    assert s.min() >= lo_t and s.max() <= hi_t
    if lo == hi:
        assert (s == lo_t).all()


def _chi2_z(counts: np.ndarray) -> float:
    """Chi-square of equiprobable bins as a z-score (normal approximation)."""
    counts = counts.ravel().astype(np.float64)
    e = counts.sum() / counts.size
    chi2 = ((counts - e) ** 2 / e).sum()
    df = counts.size - 1
    return (chi2 - df) / np.sqrt(2 * df)


def _bins(u: np.ndarray, bits: int, nbits: int, low: bool) -> np.ndarray:
    """Bin of each draw: its ``nbits`` top bits, or its lowest ``nbits`` bits."""
    u = u.astype(np.uint64)
    if low:
        return (u & np.uint64((1 << nbits) - 1)).astype(np.int64)
    return (u >> np.uint64(bits - nbits)).astype(np.int64)


def _pair_z(a: np.ndarray, b: np.ndarray, bits: int) -> list[float]:
    """Serial tests of (a[j], b[j]): 64 x 64 bins of top and of low bits, and the correlation."""
    zs = []
    for low in (False, True):
        cells = _bins(a, bits, 6, low) * 64 + _bins(b, bits, 6, low)
        zs.append(_chi2_z(np.bincount(cells, minlength=4096)))
    x = a * 2.0**-bits - 0.5
    y = b * 2.0**-bits - 0.5
    zs.append(float(np.mean(x * y) * 12 * np.sqrt(a.size)))
    return zs


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", [0, 12345, RUN_SEEDS[0]])
def test_uniform_and_uncorrelated(dtype, seed):
    """10**6 draws: 1024-bin chi-square of the top and of the low bits, serial pairs at lags
    1, 2, 3, 16, 2**10, the correlation at those lags, and the same at far lags (2**20 up
    to 2**48 counters apart, and 2**32 + 1: a new float32 key)."""
    bits = 24 if dtype == np.float32 else 53
    c = reference.counters(seed, N)
    u = reference.uniform_bits(c, dtype)
    zs = {
        "top bits": _chi2_z(np.bincount(_bins(u, bits, 10, False), minlength=1024)),
        "low bits": _chi2_z(np.bincount(_bins(u, bits, 10, True), minlength=1024)),
    }
    for lag in (1, 2, 3, 16, 1024):
        zs.update(
            zip(
                (f"lag {lag} {t}" for t in ("top", "low", "corr")), _pair_z(u[:-lag], u[lag:], bits)
            )
        )
    with np.errstate(over="ignore"):
        for lag in (1 << 20, 1 << 24, 1 << 28, 1 << 30, 1 << 32, (1 << 32) + 1, 1 << 48):
            far = reference.uniform_bits(c + np.uint64(lag), dtype)
            zs.update(
                zip((f"far {lag:#x} {t}" for t in ("top", "low", "corr")), _pair_z(u, far, bits))
            )
    bad = {k: round(z, 1) for k, z in zs.items() if abs(z) > 5.5}
    assert not bad, bad
    assert u.min() >= 0 and u.max() < 2**bits


def test_uniform_across_seeds():
    """One element (index 777) over 10**5 consecutive seeds."""
    for dtype in DTYPES:
        bits = 24 if dtype == np.float32 else 53
        seeds = np.arange(1000, 1000 + 10**5, dtype=np.uint64)
        with np.errstate(over="ignore"):
            c = reference._mix64(seeds) + np.uint64(777)
        u = reference.uniform_bits(c, dtype)
        assert abs(_chi2_z(np.bincount(_bins(u, bits, 8, False), minlength=256))) < 5.5
        assert max(abs(z) for z in _pair_z(u[:-1], u[1:], bits)) < 5.5


def test_dialect_uniform_slope():
    src = "x * uniform_slope(seed, i, lower, upper)"
    assert dialect.free_names(src) == {"x", "lower", "upper"}
    assert dialect.uses_uniform_slope(src) and not dialect.uses_uniform_slope("x * lower")
    assert "fa_slope_f32(fa_w, fa_kh, lower, upper)" in dialect.expr_to_c(src, "f32")
    assert "fa_slope_f64(fa_w, lower, upper)" in dialect.expr_to_c(src, "f64")
    with pytest.raises(SyntaxError, match="uniform_slope takes"):
        dialect.expr_to_c("uniform_slope(i, seed, lower, upper)", "f32")
