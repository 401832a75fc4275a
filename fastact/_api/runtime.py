"""Public functions made at run time, for entries added by ``fastact.register``.

They behave as the generated ones of the table (:mod:`fastact._functions`)
but have no compiled fast path: a closure with an explicit ``__signature__``
binds the arguments and calls the general path.  Registered entries are
elementwise with float parameters.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ..table import Activation
from . import elementwise, epilogue
from .checks import unexpected

_P = inspect.Parameter


def _signature(entry: Activation, arrays: list[str]) -> inspect.Signature:
    params = [_P(a, _P.POSITIONAL_OR_KEYWORD) for a in arrays]
    params += [_P(p.name, _P.POSITIONAL_OR_KEYWORD, default=p.default) for p in entry.scalar_params]
    params.append(_P("bias", _P.KEYWORD_ONLY, default=None))
    params.append(_P("bias_axis", _P.KEYWORD_ONLY, default=-1))
    params.append(_P("out", _P.KEYWORD_ONLY, default=None))
    return inspect.Signature(params)


def _binder(fn: Callable, sig: inspect.Signature) -> Callable[..., inspect.BoundArguments]:
    valid = set(sig.parameters)

    def bind(args: tuple, kwargs: dict[str, Any]) -> inspect.BoundArguments:
        extra = [k for k in kwargs if k not in valid]
        if extra:
            raise unexpected(fn, extra)
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{fn.__name__}(): {exc}") from None
        bound.apply_defaults()
        return bound

    return bind


def make_functions(entry: Activation) -> tuple[Callable, Callable]:
    """``NAME`` and ``NAME_backward`` of ``entry``, calling the elementwise general path."""
    names = [p.name for p in entry.scalar_params]

    def forward(*args: Any, **kwargs: Any) -> Any:
        a = bind_forward(args, kwargs).arguments
        params = tuple(a[n] for n in names)
        if a["bias"] is not None:
            return epilogue.forward(entry, a["x"], a["bias"], a["bias_axis"], a["out"], params)
        return elementwise.forward(entry, a["x"], a["out"], params)

    def backward(*args: Any, **kwargs: Any) -> Any:
        a = bind_backward(args, kwargs).arguments
        params = tuple(a[n] for n in names)
        g, s = a["grad_output"], a["saved"]
        if a["bias"] is not None:
            return epilogue.backward(entry, g, s, a["bias"], a["bias_axis"], a["out"], params)
        return elementwise.backward(entry, g, s, a["out"], params)

    made = []
    for fn, suffix, arrays in (
        (forward, "", ["x"]),
        (backward, "_backward", ["grad_output", "saved"]),
    ):
        fn.__name__ = fn.__qualname__ = f"{entry.name}{suffix}"
        fn.__module__ = "fastact"
        fn.__signature__ = _signature(entry, arrays)
        fn.__doc__ = f"{entry.doc}\n\n    {entry.formula}"
        if suffix:
            fn.__doc__ = f"Gradient of {entry.name} (``saved`` is the forward {entry.saves})."
        made.append(fn)
    bind_forward = _binder(forward, forward.__signature__)
    bind_backward = _binder(backward, backward.__signature__)
    return made[0], made[1]
