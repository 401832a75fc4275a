"""The activations fastact knows: the table's, and those added by ``fastact.register``.

The table's entries have their functions in :mod:`fastact._functions`; an
added entry gets functions made at run time (:mod:`fastact._api.runtime`),
reached as ``fastact.NAME`` through the package's ``__getattr__``.
"""

from __future__ import annotations

from collections.abc import Callable

from ..table import TABLE, Activation
from .runtime import make_functions

_ENTRIES: dict[str, Activation] = {entry.name: entry for entry in TABLE}
_ADDED: dict[str, Callable] = {}  # NAME and NAME_backward of added entries


def names() -> list[str]:
    """Names of every activation: the table's in its order, then the added ones."""
    return list(_ENTRIES)


def get(name: str) -> Activation:
    """The entry named ``name``; ValueError naming the choices when there is none."""
    try:
        return _ENTRIES[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose from {', '.join(_ENTRIES)}"
        ) from None


def add(entry: Activation) -> None:
    """Add ``entry`` (not in the table) with its functions ``NAME`` and ``NAME_backward``."""
    if entry.name in _ENTRIES:
        raise ValueError(f"an activation named {entry.name!r} already exists")
    fwd, bwd = make_functions(entry)
    _ENTRIES[entry.name] = entry
    _ADDED[fwd.__name__] = fwd
    _ADDED[bwd.__name__] = bwd


def remove(name: str) -> Activation:
    """Remove the added entry ``name`` (the table's cannot be removed); returns it."""
    entry = get(name)
    if entry.kernel_id is not None or name not in _ADDED:
        raise ValueError(f"{name!r} is a built-in activation; only registered ones can be removed")
    del _ENTRIES[name], _ADDED[name], _ADDED[f"{name}_backward"]
    return entry


def provide(entry: Activation) -> None:
    """Functions made at run time for a table entry that fastact/_functions.py lacks
    (added to the table since the module was generated: ``python -m
    fastact._codegen.stubs`` writes it anew)."""
    fwd, bwd = make_functions(entry)
    _ADDED[fwd.__name__] = fwd
    _ADDED[bwd.__name__] = bwd


def added_function(attr: str) -> Callable | None:
    """``fastact.<attr>`` of an added entry, or None."""
    return _ADDED.get(attr)


def added_names() -> list[str]:
    return list(_ADDED)
