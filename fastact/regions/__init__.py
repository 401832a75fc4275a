"""Count and draw the linear regions of piecewise-linear networks.

A network whose hidden activations are piecewise linear (relu, leaky_relu,
prelu, rrelu in eval mode, and any other table entry that lists kinks) is
itself piecewise linear: it folds its input space into linear regions, and
their number can grow exponentially with depth (Montufar et al. 2014).

>>> import fastact.regions as fr
>>> net = fr.tent_network(5)                  # Telgarsky's tent map, 5 times
>>> fr.count_1d(net, 0.0, 1.0)
32
>>> fr.count_2d(fr.zaslavsky_network(6), ((-1, 1), (-1, 1))).count   # 1 + 6 + 15
22

* :class:`Network`, :func:`random_network`, :func:`tent_network`,
  :func:`sawtooth_network`, :func:`zaslavsky_network`, :func:`montufar_network`;
* :func:`activation_patterns` / :func:`count_by_sampling`: many points at once;
* :func:`count_1d` / :func:`pieces_1d`: exact, along a segment;
* :func:`count_2d`: exact, with the polygons, for two inputs;
* :mod:`fastact.regions.bounds`: known upper and lower bounds;
* :func:`fastact.regions.plot.draw_regions` and ``python -m fastact regions``: pictures.
"""

from __future__ import annotations

from . import bounds
from ._exact1d import Pieces1D, count_1d, pieces_1d
from ._exact2d import Regions2D, count_2d
from ._network import (
    LayerActivation,
    Network,
    RegionLimitError,
    montufar_network,
    random_network,
    sawtooth_network,
    tent_network,
    zaslavsky_network,
)
from ._patterns import (
    activation_patterns,
    count_by_sampling,
    decode_patterns,
    encode_patterns,
    pattern_nbytes,
    unique_patterns,
)
from .bounds import upper_bound

__all__ = [
    "LayerActivation",
    "Network",
    "Pieces1D",
    "RegionLimitError",
    "Regions2D",
    "activation_patterns",
    "bounds",
    "count_1d",
    "count_2d",
    "count_by_sampling",
    "decode_patterns",
    "encode_patterns",
    "montufar_network",
    "pattern_nbytes",
    "pieces_1d",
    "random_network",
    "sawtooth_network",
    "tent_network",
    "unique_patterns",
    "upper_bound",
    "zaslavsky_network",
]
