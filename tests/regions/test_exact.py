"""Exact counts (count_1d, count_2d) against independent oracles."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

import fastact
import fastact.regions as fr
from fastact.regions import bounds

from .helpers import PWL, clip_length, example_spec, general_position_layer

BOX = ((-1.0, 1.0), (-1.0, 1.0))


def _grid(box, n, offset=0.37):
    (x0, x1), (y0, y1) = box
    gx = x0 + (np.arange(n) + offset) * (x1 - x0) / n
    gy = y0 + (np.arange(n) + offset) * (y1 - y0) / n
    xx, yy = np.meshgrid(gx, gy)
    return np.stack([xx.ravel(), yy.ravel()], axis=1)


# --- Telgarsky: the tent map -------------------------------------------------


@pytest.mark.parametrize("k", list(range(1, 13)) + [16, 20])
def test_tent_map_has_2_to_the_k_pieces(k):
    net = fr.tent_network(k)
    assert fr.count_1d(net, 0.0, 1.0) == 2**k
    assert fr.count_1d(net, 0.0, 1.0, by="function") == 2**k
    assert 2**k <= bounds.serra_bound([1] + [2] * k)


def test_tent_breakpoints_are_dyadic():
    res = fr.pieces_1d(fr.tent_network(6), 0.0, 1.0)
    np.testing.assert_array_equal(res.breakpoints, np.arange(65) / 64)
    # slope alternates +-2^6
    np.testing.assert_array_equal(res.slope[:, 0], 64.0 * (-1.0) ** np.arange(64))


@pytest.mark.parametrize("k", range(1, 8))
def test_tent_sampling_agrees_with_count_1d(k):
    x = np.random.default_rng(k).uniform(0, 1, 50_000)
    net = fr.tent_network(k)
    assert fr.count_by_sampling(net, x) == fr.count_1d(net, 0, 1)


# --- 1-D against brute force --------------------------------------------------


def _runs(patterns: np.ndarray) -> int:
    return 1 + int(np.count_nonzero((patterns[1:] != patterns[:-1]).any(axis=1)))


@pytest.mark.parametrize(
    "widths, act, seed",
    [
        ([1, 8, 8, 8], "relu", 0),
        ([1, 6, 6], "leaky_relu", 1),
        ([3, 10, 10], "relu", 2),
        ([2, 5, 5, 5, 5], "prelu", 3),
        ([1, 6, 6], "relu6", 4),
        ([1, 6, 6], "hardtanh", 5),
        ([1, 6, 6], "hardshrink", 6),
        ([1, 6, 6], "softshrink", 7),
        ([1, 6, 6], "threshold", 8),
        ([1, 6, 6], "hardsigmoid", 9),
    ],
)
def test_count_1d_against_dense_sampling(widths, act, seed):
    if act not in fastact.activations():
        pytest.skip(f"{act} is not in the table yet")
    spec = example_spec(act, widths[1])
    if act == "prelu":
        spec = ("prelu", {"weight": 0.3})
    rng = np.random.default_rng(seed)
    net = fr.random_network(widths, spec, seed=seed, bias_std=1.0)
    a = rng.normal(size=widths[0]) * 2
    b = rng.normal(size=widths[0]) * 2
    res = fr.pieces_1d(net, a, b)
    assert res.count == fr.count_1d(net, a, b)
    # patterns along a dense grid plus one point inside every exact piece: the runs
    # of equal patterns are the pieces (a missed breakpoint or a spurious one shows)
    t = np.sort(
        np.concatenate(
            [np.linspace(0, 1, 200_001)[1:-1], 0.5 * (res.breakpoints[:-1] + res.breakpoints[1:])]
        )
    )
    pts = a + t[:, None] * (b - a)
    pats = fr.decode_patterns(net, fr.activation_patterns(net, pts))
    assert _runs(pats) == res.count
    # the exact patterns and the sampled ones agree piece by piece
    mids = fr.decode_patterns(net, fr.activation_patterns(net, res.midpoints()))
    np.testing.assert_array_equal(mids, res.patterns)
    # the output is the piece's affine function
    tm = 0.5 * (res.breakpoints[:-1] + res.breakpoints[1:])
    np.testing.assert_allclose(
        net(res.midpoints()), res.offset + res.slope * tm[:, None], rtol=1e-9, atol=1e-9
    )
    assert res.count <= fr.upper_bound(net)


def test_function_pieces_against_slopes():
    """Brute force on the output alone: runs of equal finite-difference slopes."""
    net = fr.random_network([1, 10, 10, 10], seed=11, bias_std=1.0)
    n = 400_000
    t = np.linspace(-3, 3, n + 1)
    y = net(t)[:, 0]
    slopes = np.diff(y) / np.diff(t)
    same = np.isclose(slopes[1:], slopes[:-1], rtol=1e-6, atol=1e-9)
    # a run of >= 2 equal slopes is a piece; the single slope across a breakpoint is not
    run_starts = np.flatnonzero(np.concatenate([[True], ~same]))
    run_len = np.diff(np.concatenate([run_starts, [len(slopes)]]))
    brute = int(np.count_nonzero(run_len >= 2))
    res = fr.pieces_1d(net, -3.0, 3.0)
    assert np.diff(res.breakpoints).min() * 6 > 4 * 6 / n  # every piece holds >= 3 samples
    assert res.function_pieces() == brute
    assert res.count >= brute


def test_count_1d_matches_the_polygons_a_segment_crosses():
    """1-D and 2-D exact counts agree: the pieces of a segment = the regions it passes through."""
    net = fr.random_network([2, 8, 8, 8], seed=4)
    box = ((-2.0, 2.0), (-2.0, 2.0))
    regions = fr.count_2d(net, box)
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.uniform(-2, 2, 2), rng.uniform(-2, 2, 2)
        crossed = sum(clip_length(p, a, b) > 1e-9 for p in regions.polygons)
        assert fr.count_1d(net, a, b) == crossed


def test_count_1d_errors():
    net = fr.tent_network(3)
    with pytest.raises(ValueError, match="degenerate"):
        fr.count_1d(net, 0.5, 0.5)
    with pytest.raises(ValueError, match="1 coordinate"):
        fr.count_1d(net, [0, 0], [1, 1])
    with pytest.raises(ValueError, match="finite"):
        fr.count_1d(net, 0, np.inf)
    with pytest.raises(ValueError, match="by must be"):
        fr.count_1d(net, 0, 1, by="regions")
    with pytest.raises(fr.RegionLimitError, match="max_pieces=100"):
        fr.count_1d(fr.tent_network(10), 0, 1, max_pieces=100)
    t = time.perf_counter()
    with pytest.raises(fr.RegionLimitError, match="layer 14 splits"):
        fr.count_1d(fr.tent_network(60), 0, 1, max_pieces=10_000)
    assert time.perf_counter() - t < 5  # fails at the limit, never runs away


# --- Zaslavsky: one layer in general position ---------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 20])
def test_zaslavsky_count(n):
    net = fr.zaslavsky_network(n, BOX, seed=n)
    r = fr.count_2d(net, BOX)
    assert r.count == 1 + n + n * (n - 1) // 2 == bounds.zaslavsky(n, 2)
    assert r.dropped == 0
    np.testing.assert_allclose(r.areas.sum(), 4.0, rtol=1e-12)


@pytest.mark.parametrize("name", PWL)
def test_general_position_count_for_every_piecewise_linear_entry(name):
    """1 + lines + crossings for m parallel kink lines per unit (relu6, hardtanh: m = 2)."""
    n = 6
    spec = example_spec(name, n)
    box = ((-3.0, 1.0), (0.0, 2.0))
    net, expected = general_position_layer(spec, n, box, seed=1)
    r = fr.count_2d(net, box)
    assert r.count == expected
    m = len(net.activations[0].kinks)
    assert r.count <= bounds.product_bound([2, n], m)
    reps = r.representatives()
    assert fr.count_by_sampling(net, reps) == r.count


@pytest.mark.parametrize("name", ["leaky_relu", "prelu", "rrelu"])
def test_one_layer_leaky_relu_regions_equal_relu(name):
    """Same weights, one hidden layer: the kinks are the same lines, so the same regions."""
    relu = fr.random_network([2, 10], "relu", seed=7)
    spec = {
        "leaky_relu": ("leaky_relu", {"negative_slope": 0.2}),
        "prelu": ("prelu", {"weight": np.linspace(0.1, 0.5, 10)}),
        "rrelu": "rrelu",
    }[name]
    other = fr.Network(relu.weights, relu.biases, spec)
    box = ((-3.0, 3.0), (-3.0, 3.0))
    a, b = fr.count_2d(relu, box), fr.count_2d(other, box)
    assert a.count == b.count
    for p, q in zip(a.polygons, b.polygons):
        np.testing.assert_allclose(p, q, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(a.patterns, b.patterns)


@pytest.mark.parametrize("name", ["relu6", "hardtanh"])
def test_two_kinks_add_regions(name):
    """Same lines as a ReLU layer for the first kink, plus a parallel line per unit for the second."""
    if name not in fastact.activations():
        pytest.skip(f"{name} is not in the table yet")
    n = 7
    relu, expected_relu = general_position_layer("relu", n, BOX, seed=3)
    k0, k1 = fr.Network(relu.weights, relu.biases, name).activations[0].kinks
    scale = (k1 - k0) / 0.05  # z' = scale * z + k0: z' = k0 on the ReLU line, z' = k1 0.05/|w| away
    two = fr.Network(
        [relu.weights[0] * scale, relu.weights[1]],
        [relu.biases[0] * scale + k0, relu.biases[1]],
        name,
    )
    r1, r2 = fr.count_2d(relu, BOX), fr.count_2d(two, BOX)
    assert r1.count == expected_relu == 1 + n + math.comb(n, 2)
    assert r2.count == 1 + 2 * n + math.comb(2 * n, 2) - n > r1.count
    # the two-kink regions refine the ReLU ones: "on" for relu = above the first kink
    on = (r2.patterns >= 1).astype(np.int8)
    assert len(np.unique(on, axis=0)) == r1.count


# --- 2-D against sampling -----------------------------------------------------


@pytest.mark.parametrize(
    "widths, act, seed, box",
    [
        ([2, 8, 8], "relu", 0, BOX),
        ([2, 6, 6, 6], "relu", 1, ((-2.0, 2.0), (-1.0, 3.0))),
        ([2, 10, 5], "leaky_relu", 2, BOX),
        ([2, 5, 5, 5], "prelu", 3, BOX),
        ([2, 6, 6], "relu6", 4, ((-4.0, 4.0), (-4.0, 4.0))),
        ([2, 6, 6], "hardtanh", 5, BOX),
        ([2, 6, 6], "hardshrink", 6, BOX),
        ([2, 6, 6], "softshrink", 7, BOX),
        ([2, 6, 6], "threshold", 8, BOX),
        ([2, 6, 6], "hardsigmoid", 9, ((-4.0, 4.0), (-4.0, 4.0))),
    ],
)
def test_count_2d_against_sampling(widths, act, seed, box):
    if act not in fastact.activations():
        pytest.skip(f"{act} is not in the table yet")
    spec = example_spec(act, widths[1])
    if act == "prelu":
        spec = ("prelu", {"weight": 0.3})
    net = fr.random_network(widths, spec, seed=seed, bias_std=1.0)
    r = fr.count_2d(net, box)
    (x0, x1), (y0, y1) = box
    np.testing.assert_allclose(r.areas.sum(), (x1 - x0) * (y1 - y0), rtol=1e-10)
    assert (r.areas > 0).all()
    grid = _grid(box, 400)
    reps = r.representatives()
    # every region's pattern is what the points inside it get, and no two regions share one
    np.testing.assert_array_equal(
        fr.encode_patterns(net, r.patterns), fr.activation_patterns(net, reps)
    )
    # the grid finds no pattern the exact count does not have ...
    assert fr.count_by_sampling(net, np.concatenate([grid, reps])) == r.count
    # ... and hits most of them
    sampled = fr.count_by_sampling(net, grid)
    assert 0.8 * r.count <= sampled <= r.count
    # the output is affine on every region
    np.testing.assert_allclose(
        net(reps), np.einsum("ri,rio->ro", reps, r.out_A) + r.out_c, rtol=1e-9, atol=1e-9
    )
    assert r.count <= fr.upper_bound(net)


def test_small_network_grid_finds_every_region():
    net = fr.random_network([2, 5, 5], seed=0)
    r = fr.count_2d(net, BOX)
    assert fr.count_by_sampling(net, _grid(BOX, 1000)) == r.count


def test_polygons_are_convex_and_counter_clockwise():
    r = fr.count_2d(fr.random_network([2, 8, 8, 8], seed=1), BOX)
    for p in r.polygons:
        e = np.roll(p, -1, axis=0) - p
        cross = e[:, 0] * np.roll(e[:, 1], -1) - e[:, 1] * np.roll(e[:, 0], -1)
        assert (cross > -1e-12).all()
        assert p[:, 0].min() >= -1 - 1e-12 and p[:, 0].max() <= 1 + 1e-12


# --- constructions: exact degeneracies ----------------------------------------


@pytest.mark.parametrize("depth, teeth", [(1, 2), (2, 2), (3, 2), (4, 2), (1, 3), (2, 3), (1, 5)])
def test_folded_sawtooth_grid(depth, teeth):
    r = fr.count_2d(fr.sawtooth_network(depth, teeth=teeth), ((0, 1), (0, 1)))
    assert r.count == teeth ** (2 * depth)
    assert r.dropped == 0
    np.testing.assert_allclose(r.areas, 1.0 / r.count, rtol=1e-9)


@pytest.mark.parametrize("depth, width", [(1, 6), (2, 4), (2, 6), (3, 4), (4, 2)])
def test_montufar_construction_reaches_the_lower_bound(depth, width):
    widths = [2] + [width] * depth
    r = fr.count_2d(fr.montufar_network(depth, width), ((0, 1), (0, 1)))
    assert r.count == bounds.montufar_lower_bound(widths)
    assert r.count <= bounds.serra_bound(widths)


@pytest.mark.parametrize("seed", range(4))
def test_random_counts_stay_below_the_bounds(seed):
    for widths in ([2, 6, 6, 6], [2, 3, 3, 3, 3], [2, 12, 4]):
        net = fr.random_network(widths, seed=seed)
        r = fr.count_2d(net, ((-20, 20), (-20, 20)))
        assert r.count <= bounds.serra_bound(widths) <= bounds.product_bound(widths)


# --- errors and limits -----------------------------------------------------------


@pytest.mark.parametrize(
    "box, match",
    [
        (((1, 1), (0, 1)), "degenerate: xmin=1 must be < xmax=1"),
        (((0, 1), (2, -2)), "degenerate: ymin=2"),
        (((0, np.nan), (0, 1)), "finite"),
        (((0, 1, 2), (0, 1, 2)), "shape"),
    ],
)
def test_bad_boxes(box, match):
    with pytest.raises(ValueError, match=match):
        fr.count_2d(fr.random_network([2, 3], seed=0), box)


def test_count_2d_needs_two_inputs():
    with pytest.raises(ValueError, match="2 inputs"):
        fr.count_2d(fr.random_network([3, 4], seed=0), BOX)


def test_region_limit_fails_fast():
    net = fr.sawtooth_network(8)  # 65536 regions
    t = time.perf_counter()
    with pytest.raises(fr.RegionLimitError, match="max_regions=500"):
        fr.count_2d(net, ((0, 1), (0, 1)), max_regions=500)
    assert time.perf_counter() - t < 5
    with pytest.raises(ValueError, match="max_regions"):
        fr.count_2d(net, BOX, max_regions=0)


def test_2_16_16_16_is_counted_quickly():
    """The issue's speed target (< 10 s); a generous bound here, the benchmark has the figure."""
    t = time.perf_counter()
    r = fr.count_2d(fr.random_network([2, 16, 16, 16], seed=0), ((-2, 2), (-2, 2)))
    assert r.count > 100
    assert time.perf_counter() - t < 30


def test_docstring_examples():
    assert fr.count_1d(fr.tent_network(5), 0.0, 1.0) == 32
    assert fr.count_2d(fr.zaslavsky_network(6), BOX).count == 22 == 1 + 6 + math.comb(6, 2)


# --- numerical degeneracy -------------------------------------------------------


def test_duplicate_units_add_nothing():
    base = fr.random_network([2, 6, 5], seed=3)
    w0 = np.concatenate([base.weights[0], base.weights[0][:, :3]], axis=1)
    b0 = np.concatenate([base.biases[0], base.biases[0][:3]])
    w1 = np.concatenate([base.weights[1], np.zeros((3, 5))])
    dup = fr.Network([w0, w1, base.weights[2]], [b0, base.biases[1], base.biases[2]])
    box = ((-2.0, 2.0), (-2.0, 2.0))
    a, b = fr.count_2d(base, box), fr.count_2d(dup, box)
    assert a.count == b.count and b.dropped == 0
    assert fr.count_1d(base, [-2, -1], [2, 1.5]) == fr.count_1d(dup, [-2, -1], [2, 1.5])


@pytest.mark.parametrize("n", [2, 3, 7])
def test_concurrent_lines(n):
    """n lines through one point (zero biases): 2n regions, not 1 + n + n(n-1)/2."""
    theta = np.linspace(0, np.pi, n, endpoint=False) + 0.1
    w = np.stack([np.cos(theta), np.sin(theta)])
    net = fr.Network([w, np.ones((n, 1))], [np.zeros(n), np.zeros(1)])
    r = fr.count_2d(net, BOX)
    assert r.count == 2 * n and r.dropped == 0
    # the kink point on the segment's path: every line crossed once, at the same t
    assert fr.count_1d(net, [-1, -0.5], [1, 0.5]) == 2


@pytest.mark.parametrize("scale", [1e-6, 1.0, 1e6])
def test_tiny_and_huge_boxes(scale):
    """Two lines crossing at the centre: 4 regions at every scale (the tolerances are relative)."""
    w = np.array([[1.0, 1.0], [1.0, -1.0]])
    c = np.array([0.3, -0.2]) * scale
    net = fr.Network([w, np.ones((2, 1))], [-(c @ w), np.zeros(1)])
    box = ((c[0] - scale, c[0] + scale), (c[1] - scale, c[1] + scale))
    r = fr.count_2d(net, box)
    assert r.count == 4
    np.testing.assert_allclose(r.areas, scale**2, rtol=1e-9)


def test_line_along_the_box_edge_and_through_corners():
    # z1 = x (kink on the left edge), z2 = x - y (the diagonal, through two corners)
    w = np.array([[1.0, 1.0], [0.0, -1.0]])
    net = fr.Network([w, np.ones((2, 1))], [np.zeros(2), np.zeros(1)])
    r = fr.count_2d(net, ((0, 1), (0, 1)))
    assert r.count == 2 and r.dropped == 0
    np.testing.assert_allclose(sorted(r.areas), [0.5, 0.5])
