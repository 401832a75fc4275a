"""fastact.regions.Network: validation, pieces measured from the table, forward pass."""

from __future__ import annotations

import numpy as np
import pytest

import fastact
import fastact.regions as fr
from fastact import reference

from .helpers import PWL, example_spec, reference_forward


def _weights(widths, seed=0):
    rng = np.random.default_rng(seed)
    ws = [rng.normal(size=(a, b)) for a, b in zip(widths[:-1], widths[1:])]
    bs = [rng.normal(size=b) for b in widths[1:]]
    return ws, bs


@pytest.mark.parametrize("name", PWL)
def test_pieces_reproduce_the_activation(name):
    """slope * z + intercept on piece(z) equals the reference activation (every table entry)."""
    width = 5
    spec = example_spec(name, width)
    net = fr.Network(*_weights([1, width, 1]), spec)
    a = net.activations[0]
    rng = np.random.default_rng(1)
    k = a.kinks
    span = max(1.0, float(k.max() - k.min())) if len(k) else 1.0
    lo = (k.min() if len(k) else 0.0) - 2 * span
    hi = (k.max() if len(k) else 0.0) + 2 * span
    z = rng.uniform(lo, hi, (2000, width))
    piece = a.piece(z)
    cols = np.arange(width)[None, :]
    affine = a.slopes[piece, cols] * z + a.intercepts[piece, cols]
    params = {} if isinstance(spec, str) else spec[1]
    expect = getattr(reference, name)(z, **params)
    np.testing.assert_allclose(affine, expect, rtol=1e-12, atol=1e-12)
    # the piece index counts the kinks strictly below z (on a kink: the piece below)
    np.testing.assert_array_equal(piece, np.searchsorted(k, z, side="left"))


def test_relu_family_slopes():
    net = fr.Network(
        *_weights([2, 3, 3, 3, 3, 1]),
        [
            "relu",
            ("leaky_relu", {"negative_slope": 0.1}),
            ("prelu", {"weight": [0.1, 0.2, -0.3]}),
            ("rrelu", {"lower": 0.1, "upper": 0.3}),
        ],
    )
    s = [a.slopes for a in net.activations]
    np.testing.assert_array_equal(s[0], [[0, 0, 0], [1, 1, 1]])
    np.testing.assert_allclose(s[1], [[0.1] * 3, [1] * 3])
    np.testing.assert_allclose(s[2], [[0.1, 0.2, -0.3], [1, 1, 1]])
    np.testing.assert_allclose(s[3], [[0.2] * 3, [1] * 3])  # eval mode: the mean slope
    for a in net.activations:
        np.testing.assert_array_equal(a.kinks, [0.0])
        np.testing.assert_allclose(a.intercepts, 0, atol=1e-15)


@pytest.mark.parametrize("name", PWL)
def test_forward_matches_reference(name):
    ws, bs = _weights([3, 6, 5, 2], seed=4)
    specs = [example_spec(name, 6), example_spec(name, 5, np.random.default_rng(9))]
    net = fr.Network(ws, bs, specs)
    x = np.random.default_rng(2).normal(size=(300, 3)) * 2
    _, expect = reference_forward(ws, bs, specs, x)
    np.testing.assert_allclose(net(x), expect, rtol=1e-12, atol=1e-12)


def test_shape_properties_and_repr():
    net = fr.random_network([2, 8, 4], "relu", outputs=3, seed=1)
    assert net.widths == (2, 8, 4, 3)
    assert net.hidden_widths == (8, 4)
    assert net.depth == 2 and net.units == 12 and net.input_dim == 2
    assert net.kinks_per_layer == (1, 1)
    assert "2-8-4-3" in repr(net) and "relu" in repr(net)
    # seeded
    again = fr.random_network([2, 8, 4], "relu", outputs=3, seed=1)
    for a, b in zip(net.weights, again.weights):
        np.testing.assert_array_equal(a, b)
    # inputs are copied and read-only
    with pytest.raises(ValueError):
        net.weights[0][0, 0] = 1.0


def test_no_hidden_layer_is_linear():
    net = fr.Network([np.ones((2, 1))], [np.zeros(1)], [])
    assert net.depth == 0
    assert fr.count_2d(net, ((0, 1), (0, 1))).count == 1
    assert fr.count_1d(net, [0, 0], [1, 1]) == 1


@pytest.mark.parametrize(
    "weights, biases, acts, exc, match",
    [
        (
            [np.ones((2, 3)), np.ones((4, 1))],
            [np.ones(3), np.ones(1)],
            "relu",
            ValueError,
            r"weights\[1\] has fan_in 4",
        ),
        (
            [np.ones((2, 3)), np.ones((3, 1))],
            [np.ones(2), np.ones(1)],
            "relu",
            ValueError,
            r"biases\[0\] has 2",
        ),
        ([np.ones((2, 3))], [np.ones(3), np.ones(3)], "relu", ValueError, "2 bias vectors"),
        ([], [], "relu", ValueError, "at least one layer"),
        (
            [np.ones(3), np.ones((3, 1))],
            [np.ones(3), np.ones(1)],
            "relu",
            ValueError,
            r"weights\[0\] must have shape",
        ),
        (
            [np.ones((2, 3)), np.ones((3, 1))],
            [np.ones(3), np.ones(1)],
            ["relu", "relu"],
            ValueError,
            "2 entries but the network has 1",
        ),
        (
            [np.ones((2, 3)), np.ones((3, 1))],
            [np.ones(3), np.ones(1)],
            "sigmoid",
            ValueError,
            "not piecewise linear",
        ),
        (
            [np.ones((2, 3)), np.ones((3, 1))],
            [np.ones(3), np.ones(1)],
            "tanh",
            ValueError,
            "not piecewise linear",
        ),
        (
            [np.ones((2, 3)), np.ones((3, 1))],
            [np.ones(3), np.ones(1)],
            "nope",
            ValueError,
            "unknown activation",
        ),
        (
            [np.ones((2, 3)), np.ones((3, 1))],
            [np.ones(3), np.ones(1)],
            ("relu", {"alpha": 1}),
            TypeError,
            "unknown parameter",
        ),
        (
            [np.ones((2, 3)), np.ones((3, 1))],
            [np.ones(3), np.ones(1)],
            ("leaky_relu", {"negative_slope": "x"}),
            TypeError,
            "negative_slope",
        ),
        (
            [np.ones((2, 3)), np.ones((3, 1))],
            [np.ones(3), np.ones(1)],
            ("prelu", {"weight": [1.0, 2.0]}),
            ValueError,
            "one value per unit",
        ),
        (
            [np.ones((2, 3)), np.ones((3, 1))],
            [np.ones(3), np.ones(1)],
            3,
            TypeError,
            "activations must be",
        ),
        (
            [np.full((2, 3), np.nan), np.ones((3, 1))],
            [np.ones(3), np.ones(1)],
            "relu",
            ValueError,
            "NaN",
        ),
        (
            [np.ones((2, 3), dtype=complex), np.ones((3, 1))],
            [np.ones(3), np.ones(1)],
            "relu",
            TypeError,
            "real array",
        ),
        (np.ones((2, 3)), [np.ones(3)], "relu", TypeError, "list of 2-d arrays"),
    ],
)
def test_bad_networks(weights, biases, acts, exc, match):
    with pytest.raises(exc, match=match):
        fr.Network(weights, biases, acts)


def test_sigmoid_error_names_the_alternatives():
    with pytest.raises(ValueError, match="relu") as info:
        fr.random_network([2, 4], "sigmoid")
    assert "sigmoid" in str(info.value)


def test_required_parameters():
    if "threshold" not in fastact.activations():
        pytest.skip("threshold is not in the table yet")
    with pytest.raises(TypeError, match="needs parameter threshold"):
        fr.random_network([2, 4], "threshold")
    net = fr.random_network([2, 4], ("threshold", {"threshold": 0.5, "value": -1.0}))
    np.testing.assert_array_equal(net.activations[0].kinks, [0.5])


def test_table_conditions_are_checked():
    with pytest.raises(ValueError, match="lower must be <= upper"):
        fr.random_network([2, 4], ("rrelu", {"lower": 0.5, "upper": 0.1}))


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_constructor_arguments(bad):
    with pytest.raises(ValueError):
        fr.tent_network(bad)
    with pytest.raises(ValueError):
        fr.zaslavsky_network(bad)
    with pytest.raises(ValueError):
        fr.random_network([2, bad])


def test_montufar_needs_even_width():
    with pytest.raises(ValueError, match="even"):
        fr.montufar_network(2, 5)


def test_tent_network_computes_the_tent_map():
    x = np.linspace(0, 1, 1001)
    t = np.minimum(2 * x, 2 - 2 * x)
    y = x
    for _ in range(3):
        y = np.minimum(2 * y, 2 - 2 * y)
    np.testing.assert_allclose(fr.tent_network(1)(x)[:, 0], t, atol=1e-15)
    np.testing.assert_allclose(fr.tent_network(3)(x)[:, 0], y, atol=1e-14)


def test_sawtooth_network_folds_each_axis():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, (500, 2))
    out = fr.sawtooth_network(2, teeth=3)(p)
    # 9 p mod 1, folded: distance to the nearest even integer of 9p, as a triangle wave
    f = 9 * p
    tri = np.where(np.floor(f) % 2 == 0, f - np.floor(f), np.ceil(f) - f)
    np.testing.assert_allclose(out, tri, atol=1e-12)
