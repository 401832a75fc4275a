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
from ._api import entries as _entries
from ._config import (
    config,
    get_backend,
    get_num_threads,
    set_backend,
    set_num_threads,
)
from ._functions import *  # noqa: F403  (fastact.NAME and NAME_backward of every entry)
from ._functions import __all__ as _functions
from ._register import register, unregister
from ._version import __version__ as __version__
from .table import TABLE as _TABLE
from .table import Activation, Properties


def activations() -> list[str]:
    """Names of every activation, in table order (then the registered ones)."""
    return _entries.names()


def activation(name: str) -> Activation:
    """The table entry of activation ``name`` (``.params``, ``.saves``, ``.properties``...)."""
    return _entries.get(name)


def backends() -> list[str]:
    """Backends that can run on this machine ("cython", "numba", "numpy")."""
    return _backends.available()


def explain(name: str, x, pass_: str = "forward"):
    """Which backend and how many threads a call on ``x`` would use, and why."""
    import numpy as np

    from ._api import as_input

    a = as_input(x, "x")
    return _dispatch.explain(activation(name), pass_, np.dtype(a.dtype), a.size)


for _entry in _TABLE:
    if _entry.name not in _functions:  # newer than the generated module
        _entries.provide(_entry)
del _entry


def __getattr__(name: str):
    # NAME and NAME_backward of activations added by fastact.register (or newer
    # than the generated module)
    fn = _entries.added_function(name)
    if fn is None:
        raise AttributeError(f"module 'fastact' has no attribute {name!r}")
    return fn


def __dir__() -> list[str]:
    return sorted({*globals(), *_entries.added_names()})


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
    *_functions,
]
