"""Known bounds on the number of linear regions (exact integers).

``widths = (n_0, n_1, ..., n_L)``: the input dimension and the hidden widths
(the linear output layer adds no regions).

* :func:`zaslavsky`: ``n`` hyperplanes in general position cut ``R^d`` into
  ``sum_{j<=d} C(n, j)`` regions (Zaslavsky 1975), the most any arrangement of
  ``n`` hyperplanes can make; one hidden layer's exact maximum.
* :func:`serra_bound`: Serra, Tjandraatmadja & Ramalingam (2018, Theorem 1),
  for ReLU networks: ``sum over (j_1..j_L) in J of prod_l C(n_l, j_l)`` with
  ``0 <= j_l <= min(n_0, n_1 - j_1, ..., n_{l-1} - j_{l-1}, n_l)``.
* :func:`product_bound`: any piecewise-linear activation with ``m_l`` kinks
  per unit (each unit is ``m_l`` parallel hyperplanes in its layer's input):
  ``prod_l sum_{j <= d_l} C(m_l n_l, j)`` with ``d_l = min(n_0, ..., n_l)``, the
  largest dimension the image of a region can have (Montufar et al. 2017
  style: each region of the first ``l-1`` layers is cut by layer ``l`` at most
  as often as a ``d_l``-dimensional space by ``m_l n_l`` hyperplanes).
* :func:`montufar_lower_bound`: Montufar, Pascanu, Cho & Bengio (2014): some
  ReLU network with ``n_l >= n_0`` reaches
  ``prod_{l<L} floor(n_l / n_0)^{n_0} * sum_{j<=n_0} C(n_L, j)`` regions
  (:func:`fastact.regions.montufar_network` builds one for ``n_0 = 2``).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from math import comb, prod

from ._network import Network, _check_widths


def zaslavsky(n: int, d: int) -> int:
    """Regions of ``n`` hyperplanes in general position in ``R^d``: ``sum_{j=0}^{d} C(n, j)``."""
    for name, v in (("n", n), ("d", d)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
    return sum(comb(int(n), j) for j in range(int(d) + 1))


def serra_bound(widths: Sequence[int]) -> int:
    """Upper bound on the regions of a ReLU network (Serra et al. 2018, Theorem 1)."""
    ns = _check_widths(widths, min_len=1)
    n0, hidden = ns[0], ns[1:]
    # ways[d] = sum of products so far over index tuples leaving budget d
    ways = {n0: 1}
    for n in hidden:
        nxt: dict[int, int] = {}
        for budget, w in ways.items():
            for j in range(min(budget, n) + 1):
                key = min(budget, n - j)
                nxt[key] = nxt.get(key, 0) + w * comb(n, j)
        ways = nxt
    return sum(ways.values())


def product_bound(widths: Sequence[int], kinks: int | Sequence[int] = 1) -> int:
    """Upper bound for ``kinks`` kinks per unit (a number, or one per hidden layer)."""
    ns = _check_widths(widths, min_len=1)
    hidden = ns[1:]
    ms = [kinks] * len(hidden) if isinstance(kinks, numbers.Integral) else list(kinks)
    if len(ms) != len(hidden) or any(
        isinstance(m, bool) or not isinstance(m, numbers.Integral) or m < 0 for m in ms
    ):
        raise ValueError(
            f"kinks must be a non-negative integer or one per hidden layer, got {kinks!r}"
        )
    total = 1
    dim = ns[0]
    for n, m in zip(hidden, ms):
        dim = min(dim, n)
        total *= zaslavsky(int(m) * n, dim)
    return total


def montufar_lower_bound(widths: Sequence[int]) -> int:
    """Regions some ReLU network of these widths reaches (Montufar et al. 2014); needs ``n_l >= n_0``."""
    ns = _check_widths(widths, min_len=2)
    n0, hidden = ns[0], ns[1:]
    if min(hidden) < n0:
        raise ValueError(f"montufar_lower_bound needs every hidden width >= n_0 = {n0}, got {ns}")
    return prod((n // n0) ** n0 for n in hidden[:-1]) * zaslavsky(hidden[-1], n0)


def _relu_like(net: Network) -> bool:
    """One kink per unit and a constant piece: an affine image of a ReLU unit."""
    for act in net.activations:
        if len(act.kinks) != 1 or not (act.slopes == 0).any(axis=0).all():
            return False
    return True


def upper_bound(net: Network) -> int:
    """The tightest of the bounds above that applies to ``net``'s architecture and activations."""
    widths = (net.input_dim, *net.hidden_widths)
    best = product_bound(widths, net.kinks_per_layer)
    if _relu_like(net):
        best = min(best, serra_bound(widths))
    return best


def upper_name(net: Network) -> str:
    """Which bound :func:`upper_bound` uses for ``net``."""
    if _relu_like(net):
        return "Serra et al. 2018"
    kinks = "/".join(map(str, sorted(set(net.kinks_per_layer))))
    return f"product bound, {kinks} kink(s) per unit"
