"""Array handlers: other array libraries' arrays, computed by their own adapter.

A call whose first array is not a NumPy array asks :func:`handler_for` for
the handler of its library, keyed by the top-level module of its type
(``dask`` for ``dask.array.Array``).  An adapter registers itself with
:func:`register_handler` when it is imported; :data:`ADAPTERS` names the
adapter module to import on the first call with such an array, so that
``import fastact`` imports no adapter.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from ..table import Activation

# Top-level module of an array type -> the fastact module that handles it.
ADAPTERS = {"dask": "fastact.integrations.dask"}


class Handler(Protocol):
    """The calls of one array library (arguments as in :mod:`fastact._api`)."""

    def forward(self, entry: Activation, x, out, params: tuple, training=False, seed=None): ...
    def backward(self, entry: Activation, g, s, out, params: tuple, training=False, seed=None): ...
    def channel_forward(self, entry: Activation, x, weight, out): ...
    def channel_backward(self, entry: Activation, g, s, weight, out): ...
    def rowwise_forward(self, entry: Activation, x, axis, out): ...
    def rowwise_backward(self, entry: Activation, g, s, axis, out): ...


_HANDLERS: dict[str, Handler] = {}


def register_handler(module: str, handler: Handler) -> None:
    """Send calls on arrays whose type lives in top-level module ``module`` to ``handler``."""
    _HANDLERS[module] = handler


def handler_for(value: Any) -> Handler | None:
    """The handler of ``value``'s array library, or None (NumPy's rules apply)."""
    root = type(value).__module__.partition(".")[0]
    handler = _HANDLERS.get(root)
    if handler is None and root in ADAPTERS:
        importlib.import_module(ADAPTERS[root])
        handler = _HANDLERS.get(root)
    return handler
