"""activation_patterns / count_by_sampling against an independent NumPy computation."""

from __future__ import annotations

import numpy as np
import pytest

import fastact
import fastact.regions as fr

from .helpers import PWL, example_spec, reference_forward


def _net(specs, widths, seed=0):
    rng = np.random.default_rng(seed)
    ws = [rng.normal(size=(a, b)) for a, b in zip(widths[:-1], widths[1:])]
    bs = [rng.normal(size=b) for b in widths[1:]]
    return ws, bs, fr.Network(ws, bs, specs)


@pytest.mark.parametrize("name", PWL)
def test_patterns_match_reference_pieces(name):
    widths = [3, 7, 9, 1]
    specs = [example_spec(name, 7), example_spec(name, 9)]
    ws, bs, net = _net(specs, widths, seed=5)
    x = np.random.default_rng(6).normal(size=(3000, 3)) * 3
    pieces, _ = reference_forward(ws, bs, specs, x)
    packed = fr.activation_patterns(net, x, chunk=700)
    assert packed.dtype == np.uint8 and packed.shape == (3000, fr.pattern_nbytes(net))
    np.testing.assert_array_equal(fr.decode_patterns(net, packed), pieces)
    np.testing.assert_array_equal(fr.encode_patterns(net, pieces), packed)
    # distinct rows = distinct piece vectors
    assert fr.count_by_sampling(net, x) == len(np.unique(pieces, axis=0))


def test_relu_bits_are_the_signs():
    ws, bs, net = _net("relu", [2, 16, 8, 1])
    x = np.random.default_rng(0).normal(size=(100, 2))
    h = x
    bits = []
    for w, b in zip(ws[:-1], bs[:-1]):
        z = h @ w + b
        bits.append(z > 0)
        h = np.maximum(z, 0)
    expect = np.concatenate([np.packbits(b, axis=1) for b in bits], axis=1)
    np.testing.assert_array_equal(fr.activation_patterns(net, x), expect)


@pytest.mark.parametrize("chunk", [1, 7, 1000, 100_000])
@pytest.mark.parametrize("num_threads", [1, 2, 3])
def test_chunks_and_threads_do_not_change_the_result(chunk, num_threads):
    net = fr.random_network([2, 12, 12], "leaky_relu", seed=3)
    x = np.random.default_rng(1).uniform(-2, 2, (2500, 2))
    base = fr.activation_patterns(net, x, num_threads=1, chunk=2500)
    got = fr.activation_patterns(net, x, num_threads=num_threads, chunk=chunk)
    np.testing.assert_array_equal(got, base)


def test_float32_agrees_away_from_kinks():
    net = fr.random_network([2, 32, 32], seed=2)
    x = np.random.default_rng(1).uniform(-2, 2, (20000, 2))
    p64 = fr.decode_patterns(net, fr.activation_patterns(net, x))
    p32 = fr.decode_patterns(net, fr.activation_patterns(net, x, dtype=np.float32))
    assert (p64 != p32).any(axis=1).mean() < 1e-3


def test_threads_setting_is_respected_and_blas_restored():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    net = fr.random_network([2, 8], seed=0)
    with fastact.config(num_threads=1):
        fr.activation_patterns(net, np.zeros((10, 2)))
    after = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    assert before == after


def test_tent_sampling_counts_2_to_the_k():
    x = np.random.default_rng(0).uniform(0, 1, 200_000)
    for k in range(1, 9):
        assert fr.count_by_sampling(fr.tent_network(k), x) == 2**k


def test_empty_and_layerless():
    net = fr.random_network([2, 4], seed=0)
    assert fr.activation_patterns(net, np.zeros((0, 2))).shape == (0, 1)
    assert fr.count_by_sampling(net, np.zeros((0, 2))) == 0
    lin = fr.Network([np.ones((2, 1))], [np.zeros(1)], [])
    assert fr.activation_patterns(lin, np.ones((5, 2))).shape == (5, 0)
    assert fr.count_by_sampling(lin, np.ones((5, 2))) == 1


def test_one_input_accepts_a_vector():
    net = fr.tent_network(2)
    a = fr.activation_patterns(net, np.array([0.1, 0.3, 0.6, 0.9]))
    assert fr.count_by_sampling(net, [0.1, 0.3, 0.6, 0.9]) == 4
    assert a.shape == (4, 2)  # one byte per hidden layer


@pytest.mark.parametrize(
    "points, exc, match",
    [
        (np.zeros((4, 3)), ValueError, r"shape \(N, 2\)"),
        (np.zeros(4), ValueError, r"shape \(N, 2\)"),
        (np.array([[0.0, np.nan]]), ValueError, "NaN"),
        (np.array([[0.0, np.inf]]), ValueError, "NaN or infinity"),
        (np.array([["a", "b"]]), TypeError, "real array"),
    ],
)
def test_bad_points(points, exc, match):
    net = fr.random_network([2, 4], seed=0)
    with pytest.raises(exc, match=match):
        fr.activation_patterns(net, points)


def test_bad_options():
    net = fr.random_network([2, 4], seed=0)
    x = np.zeros((3, 2))
    with pytest.raises(TypeError, match="dtype"):
        fr.activation_patterns(net, x, dtype=np.int32)
    with pytest.raises(ValueError, match="chunk"):
        fr.activation_patterns(net, x, chunk=0)
    with pytest.raises(ValueError, match="num_threads"):
        fr.activation_patterns(net, x, num_threads=0)
    with pytest.raises(ValueError, match="packed"):
        fr.decode_patterns(net, np.zeros((3, 5), np.uint8))
