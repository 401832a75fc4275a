"""User-defined activations: ``fastact.register``.

A user activation is two scalar Python functions, ``forward(x, *params)`` and
``backward(g, s, *params)`` (``s`` is the saved input or output, as ``saves``
says), JIT-compiled by Numba into the same serial and parallel kernels as the
table's entries.  The new activation is an :class:`~fastact.table.Activation`
entry with ``extra["user"] = True`` (the dispatcher sends it to the Numba
backend), added by :func:`fastact._api.entries.add`, which makes its
``fastact.NAME`` / ``fastact.NAME_backward``.

>>> import math, fastact
>>> fastact.register(
...     "squareplus",
...     forward=lambda x, b: 0.5 * (x + math.sqrt(x * x + b)),
...     backward=lambda g, x, b: g * 0.5 * (1 + x / math.sqrt(x * x + b)),
...     saves="input",
...     params={"b": 4.0},
... )                                                     # doctest: +SKIP
>>> fastact.squareplus(np.linspace(-3, 3, 7), b=1.0)      # doctest: +SKIP

Inside the kernels ``x``, ``g``, ``s`` and the parameters have the array's
float type; a Python float literal in the user function promotes float32
arithmetic to float64 (the result is rounded back to float32 when stored).
"""

from __future__ import annotations

import inspect
import keyword
import math
import numbers
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import replace

import numpy as np

from ._api import entries
from .table import Activation, Param, Properties

# Names the generated kernels and the public functions use for themselves.
_RESERVED = {
    "x",
    "y",
    "g",
    "s",
    "i",
    "k",
    "seed",
    "out",
    "saved",
    "grad_output",
    "training",
    "T",
    "math",
    "np",
    "njit",
    "prange",
}


def _check_name(name: object) -> str:
    import fastact

    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
        raise ValueError(
            f"name must be a Python identifier that does not start with '_', got {name!r}"
        )
    if name in fastact.activations():
        raise ValueError(f"an activation named {name!r} already exists")
    for attr in (name, f"{name}_backward"):
        if hasattr(fastact, attr):
            raise ValueError(f"name {name!r} clashes with the existing attribute fastact.{attr}")
    return name


def _check_params(params: object) -> tuple[Param, ...]:
    if params is None:
        return ()
    if not isinstance(params, Mapping):
        raise TypeError(
            f"params must be a dict of parameter names and default values, "
            f"got {type(params).__name__}"
        )
    out = []
    for pname, default in params.items():
        if not isinstance(pname, str) or not pname.isidentifier() or keyword.iskeyword(pname):
            raise ValueError(f"parameter name must be a Python identifier, got {pname!r}")
        if pname in _RESERVED or pname.startswith("_"):
            raise ValueError(
                f"parameter name {pname!r} is reserved; avoid {', '.join(sorted(_RESERVED))} "
                "and names starting with '_'"
            )
        if isinstance(default, (bool, np.bool_)) or not isinstance(default, numbers.Real):
            raise TypeError(
                f"default of parameter {pname!r} must be a real number, "
                f"got {type(default).__name__}"
            )
        out.append(Param(pname, float(default), "user parameter"))
    return tuple(out)


def _python_function(fn: object, role: str) -> Callable:
    """The Python function behind ``fn`` (a plain function or a Numba dispatcher)."""
    if not callable(fn):
        raise TypeError(f"{role} must be a function, got {type(fn).__name__}")
    return getattr(fn, "py_func", fn)


def _check_arity(fn: Callable, role: str, names: list[str]) -> None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: let Numba decide
        return
    try:
        sig.bind(*names)
    except TypeError:
        raise TypeError(
            f"{role} must take {len(names)} positional argument(s) ({', '.join(names)}); "
            f"{getattr(fn, '__name__', role)}{sig} does not"
        ) from None


def _jit(fn: Callable):
    """``fn`` compiled with fastact's options (a Numba dispatcher is recompiled from its
    Python function: IEEE division, ``x / 0`` is inf, never an exception in a kernel)."""
    import numba

    return numba.njit(nogil=True, error_model="numpy")(getattr(fn, "py_func", fn))


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in _ANSI.sub("", str(exc)).splitlines() if ln.strip()]
    # Numba's messages start with a banner; keep the lines that say what failed.
    skip = ("Failed in", "During:", "File ", "<source missing")
    keep = [ln for ln in lines if not ln.startswith(skip)]
    text = " ".join((keep or lines)[:4])
    return text[:600]


def _compile_scalar(name: str, role: str, fn: Callable, jitted, nargs: int) -> None:
    """Compile ``jitted`` for float64 arguments; it must return a real number."""
    from numba import types

    sig = (types.float64,) * nargs
    try:
        jitted.compile(sig)
        ret = jitted.overloads[sig].signature.return_type
    except Exception as exc:
        raise TypeError(
            f"register({name!r}): {role} {getattr(fn, '__name__', '')} could not be "
            f"compiled by Numba for float64 arguments: {_first_line(exc)}"
        ) from exc
    if not isinstance(ret, (types.Float, types.Integer, types.Boolean)):
        raise TypeError(f"register({name!r}): {role} must return a real number, it returns {ret}")


# --- properties, estimated numerically ---------------------------------------


def _estimate(backend, entry: Activation) -> Properties:
    """The five properties of ``entry`` from float64 samples (see :func:`register`)."""
    params = tuple(p.default for p in entry.parameters)

    def fwd(a: np.ndarray) -> np.ndarray:
        out = np.empty_like(a)
        backend.forward(entry, a, out, params, False, 0, 1)
        return out

    def bwd(g: np.ndarray, s: np.ndarray) -> np.ndarray:
        out = np.empty_like(g)
        backend.backward(entry, g, s, out, params, False, 0, 1)
        return out

    x = np.concatenate([np.linspace(-10.0, 10.0, 4001), [-1e3, -1e2, 1e2, 1e3, 0.0]])
    x.sort()
    with np.errstate(all="ignore"):
        y = np.asarray(fwd(x), np.float64)
        d = np.asarray(bwd(np.ones_like(x), x if entry.saves == "input" else y), np.float64)
        y_far = np.asarray(fwd(np.array([-1e6, 1e6])), np.float64)
    ok = np.isfinite(y)
    xs, ys = x[ok], y[ok]
    scale = max(1.0, float(np.max(np.abs(ys)))) if ys.size else 1.0
    # nonlinear: not an affine map on the samples
    coef = np.polyfit(xs, ys, 1) if ys.size > 2 else np.zeros(2)
    nonlinear = bool(np.max(np.abs(np.polyval(coef, xs) - ys)) > 1e-9 * scale)
    dy = np.diff(ys)
    tol = 1e-12 * scale
    monotonic = bool(np.all(dy >= -tol) or np.all(dy <= tol))
    # derivative continuity: no jump of the gradient between neighbouring samples
    dd = np.abs(np.diff(d[ok]))
    smooth = bool(np.all(np.isfinite(d[ok])) and np.max(dd, initial=0.0) < 0.05)
    i0 = int(np.flatnonzero(x == 0.0)[0])
    identity = bool(abs(y[i0]) < 1e-9 and abs(d[i0] - 1.0) < 1e-6)
    lo, hi = float(np.min(ys, initial=math.inf)), float(np.max(ys, initial=-math.inf))
    # a side is unbounded when the value keeps growing far out
    if np.isfinite(y_far[0]) and y_far[0] < lo - 0.5 * (hi - lo) or np.isneginf(y_far[0]):
        lo = -math.inf
    if np.isfinite(y_far[1]) and y_far[1] > hi + 0.5 * (hi - lo) or np.isposinf(y_far[1]):
        hi = math.inf
    for v in y_far:
        if np.isfinite(v):
            lo, hi = min(lo, float(v)), max(hi, float(v))
    differentiable = "everywhere" if smooth else "almost everywhere"
    return Properties(nonlinear, differentiable, monotonic, identity, (lo, hi))


def _check_properties(given: Properties, estimated: Properties, name: str) -> None:
    problems = []
    for field in ("nonlinear", "monotonic", "identity_near_zero"):
        if getattr(given, field) != getattr(estimated, field):
            problems.append(
                f"{field}={getattr(given, field)} (sampled: {getattr(estimated, field)})"
            )
    glo, ghi = given.output_range
    elo, ehi = estimated.output_range
    if elo < glo - 1e-9 * max(1.0, abs(glo)) or ehi > ghi + 1e-9 * max(1.0, abs(ghi)):
        problems.append(f"output_range={given.output_range} (sampled: {estimated.output_range})")
    if problems:
        warnings.warn(
            f"register({name!r}): the given properties disagree with samples of the "
            f"function: {'; '.join(problems)}",
            UserWarning,
            stacklevel=3,
        )


def _as_properties(properties: object) -> Properties | None:
    if properties is None or isinstance(properties, Properties):
        return properties
    if isinstance(properties, Mapping):
        try:
            return Properties(**properties)
        except TypeError as exc:
            raise TypeError(f"properties: {exc}") from None
    raise TypeError(
        f"properties must be a fastact.Properties or a dict of its fields, "
        f"got {type(properties).__name__}"
    )


# --- register -----------------------------------------------------------------


def register(
    name: str,
    forward: Callable,
    backward: Callable,
    *,
    saves: str = "input",
    params: Mapping[str, float] | None = None,
    properties: Properties | Mapping | None = None,
    doc: str = "",
) -> Activation:
    """Add a user-defined activation, JIT-compiled by Numba, to fastact.

    ``forward(x, *params) -> y`` and ``backward(g, s, *params) -> dL/dx`` are
    scalar functions (Numba's nopython subset: ``math`` functions, arithmetic,
    ``if``/``else``), plain or already ``numba.njit``-ed (then recompiled from
    their Python function with ``nogil`` and IEEE division, ``error_model=
    "numpy"``); ``s`` is ``x`` when ``saves="input"`` and ``y`` when
    ``saves="output"``.  ``params`` maps parameter names to defaults, in call
    order.  ``properties`` (a :class:`~fastact.Properties` or a dict of its
    fields) records the five properties; when omitted they are estimated from
    float64 samples on [-10, 10] and at +-1e2..1e6, and ``extra
    ["properties_estimated"]`` says so (given ones are checked against the same
    samples, with a warning on disagreement).

    Both functions are compiled for float64 now, so a definition Numba cannot
    compile fails here, with TypeError; float32 kernels compile on first use.
    Afterwards ``fastact.NAME(x, *, out=None, **params)``,
    ``fastact.NAME_backward(grad_output, saved, *, out=None, **params)`` and
    ``fastact.activation(NAME)`` work as for the built-in activations; the
    calls always run on the Numba backend.  Returns the new entry.
    """
    from ._backends import get as get_backend

    name = _check_name(name)
    if saves not in ("input", "output"):
        raise ValueError(f"saves must be 'input' or 'output', got {saves!r}")
    parameters = _check_params(params)
    pnames = [p.name for p in parameters]
    fwd_py = _python_function(forward, "forward")
    bwd_py = _python_function(backward, "backward")
    _check_arity(fwd_py, "forward", ["x", *pnames])
    _check_arity(bwd_py, "backward", ["g", "x" if saves == "input" else "y", *pnames])
    given = _as_properties(properties)
    if not isinstance(doc, str):
        raise TypeError(f"doc must be a string, got {type(doc).__name__}")
    try:
        backend = get_backend("numba")
    except ImportError as exc:
        raise ImportError(f"register() needs Numba: {exc}") from exc

    def where(fn: Callable) -> str:
        return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"

    sig = ", ".join(["x", *pnames])
    placeholder = Properties(True, "almost everywhere", False, False, (-math.inf, math.inf))
    entry = Activation(
        name=name,
        formula=f"{name}({sig}) = user-defined ({where(fwd_py)})",
        forward=f"user function {where(fwd_py)}",
        backward=f"user function {where(bwd_py)}",
        saves=saves,
        properties=given or placeholder,
        parameters=parameters,
        doc=doc or f"User-defined activation {name!r} (JIT-compiled by Numba).",
        extra={
            "user": True,
            "numba_forward": _jit(fwd_py),
            "numba_backward": _jit(bwd_py),
            "python_forward": forward,
            "python_backward": backward,
            "properties_estimated": given is None,
        },
    )
    for role, fn, nargs in (("forward", fwd_py, 1), ("backward", bwd_py, 2)):
        _compile_scalar(name, role, fn, entry.extra[f"numba_{role}"], nargs + len(pnames))
    try:
        backend.kernel(entry, "fwd", "f64")
        backend.kernel(entry, "bwd", "f64")
    except Exception as exc:
        backend.forget(name)
        raise TypeError(
            f"register({name!r}): the kernels failed to compile: {_first_line(exc)}"
        ) from exc
    try:
        estimated = _estimate(backend, entry)
    except Exception as exc:
        backend.forget(name)
        raise ValueError(f"register({name!r}): the functions fail on samples: {exc}") from exc
    if given is None:
        entry = replace(entry, properties=estimated)
    else:
        _check_properties(given, estimated, name)
    entries.add(entry)
    return entry


def unregister(name: str) -> None:
    """Remove the user-defined activation ``name`` (built-in ones cannot be removed)."""
    from ._backends import get as get_backend

    entries.remove(name)  # ValueError when unknown or built in
    get_backend("numba").forget(name)
