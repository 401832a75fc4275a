"""Bounds on the number of regions: closed forms and an independent enumeration."""

from __future__ import annotations

import itertools
import math

import pytest

import fastact
import fastact.regions as fr
from fastact.regions import bounds


def serra_by_enumeration(widths):
    """Theorem 1 of Serra et al. (2018), summed over every index tuple literally."""
    n0, hidden = widths[0], widths[1:]
    total = 0
    for js in itertools.product(*(range(n + 1) for n in hidden)):
        ok = True
        for layer, j in enumerate(js):
            limit = min([n0] + [hidden[i] - js[i] for i in range(layer)] + [hidden[layer]])
            if j > limit:
                ok = False
                break
        if ok:
            total += math.prod(math.comb(n, j) for n, j in zip(hidden, js))
    return total


@pytest.mark.parametrize(
    "widths",
    [[1, 2], [2, 3], [2, 5, 5], [1, 2, 2, 2], [3, 2, 4, 3], [2, 1, 6], [4, 6, 6, 6], [2, 4, 1, 4]],
)
def test_serra_bound_matches_enumeration(widths):
    assert bounds.serra_bound(widths) == serra_by_enumeration(widths)


def test_known_values():
    assert bounds.zaslavsky(5, 2) == 1 + 5 + 10
    assert bounds.zaslavsky(3, 5) == 8  # d >= n: every sign vector
    assert bounds.serra_bound([2, 10]) == bounds.zaslavsky(10, 2) == 56
    assert bounds.serra_bound([1] + [2] * 5) == 3**5  # the tent network's architecture
    assert bounds.product_bound([2, 4, 4], 2) == bounds.zaslavsky(8, 2) ** 2
    assert bounds.montufar_lower_bound([2, 6, 6, 6]) == 3**2 * 3**2 * (1 + 6 + 15)


@pytest.mark.parametrize("widths", [[2, 8, 8, 8], [2, 4, 4, 4, 4], [3, 6, 6], [2, 2, 2, 2]])
def test_bounds_are_ordered(widths):
    lower = bounds.montufar_lower_bound(widths)
    assert lower <= bounds.serra_bound(widths) <= bounds.product_bound(widths)


def test_upper_bound_chooses_by_activation():
    relu = fr.random_network([2, 6, 6], "relu", seed=0)
    leaky = fr.random_network([2, 6, 6], "leaky_relu", seed=0)
    assert fr.upper_bound(relu) == bounds.serra_bound([2, 6, 6])
    assert fr.upper_bound(leaky) == bounds.product_bound([2, 6, 6])
    if "relu6" not in fastact.activations():
        pytest.skip("relu6 is not in the table yet")
    r6 = fr.random_network([2, 6, 6], "relu6", seed=0)
    assert fr.upper_bound(r6) == bounds.product_bound([2, 6, 6], 2)


@pytest.mark.parametrize(
    "call",
    [
        lambda: bounds.zaslavsky(-1, 2),
        lambda: bounds.serra_bound([2, 0]),
        lambda: bounds.product_bound([2, 3], [1, 1]),
        lambda: bounds.montufar_lower_bound([3, 2]),
        lambda: bounds.montufar_lower_bound([3]),
    ],
)
def test_bad_arguments(call):
    with pytest.raises(ValueError):
        call()
