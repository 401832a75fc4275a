"""fastact: multithreaded, in-place forward and backward kernels for activations.

Every activation of :data:`fastact.table.TABLE` is available as
``fastact.NAME(x, *, out=None, **params)`` and
``fastact.NAME_backward(grad_output, saved, *, out=None, **params)``;
``saved`` is the input or the output as ``activation(NAME).saves`` says.

>>> import numpy as np, fastact
>>> x = np.linspace(-3, 3, 7, dtype=np.float32)
>>> y = fastact.sigmoid(x)                 # new array
>>> _ = fastact.relu(x, out=x)             # in place
"""

from __future__ import annotations

from . import _backends, _dispatch
from ._api import make_functions as _make_functions
from ._config import (
    config,
    get_backend,
    get_num_threads,
    set_backend,
    set_num_threads,
)
from ._register import register, unregister
from ._version import __version__ as __version__
from .table import TABLE as _TABLE
from .table import Activation, Properties

_entries: dict[str, Activation] = {}


def activations() -> list[str]:
    """Names of every activation, in table order."""
    return list(_entries)


def activation(name: str) -> Activation:
    """The table entry of activation ``name`` (``.params``, ``.saves``, ``.properties``...)."""
    try:
        return _entries[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose from {', '.join(_entries)}"
        ) from None


def backends() -> list[str]:
    """Backends that can run on this machine ("cython", "numba", "numpy")."""
    return _backends.available()


def explain(name: str, x, pass_: str = "forward"):
    """Which backend and how many threads a call on ``x`` would use, and why."""
    import numpy as np

    from ._api import as_input

    a = as_input(x, "x")
    return _dispatch.explain(activation(name), pass_, np.dtype(a.dtype), a.size)


def _install(entry: Activation) -> None:
    fwd, bwd = _make_functions(entry)
    _entries[entry.name] = entry
    globals()[entry.name] = fwd
    globals()[f"{entry.name}_backward"] = bwd


for _entry in _TABLE:
    _install(_entry)
del _entry

_dispatch.load_profile()

__all__ = [
    "Activation",
    "Properties",
    "activation",
    "activations",
    "backends",
    "config",
    "explain",
    "get_backend",
    "get_num_threads",
    "set_backend",
    "register",
    "unregister",
    "set_num_threads",
    *(e.name for e in _TABLE),
    *(f"{e.name}_backward" for e in _TABLE),
]
