"""Argument checks shared by every kind of entry.

NumPy's conventions: lists and scalars are accepted, integer arrays are
computed in float64, ``out=`` must match the result exactly.  Each check
raises a TypeError or ValueError that names the argument (and the fix where
one is obvious) before anything is written.
"""

from __future__ import annotations

import difflib
import inspect
import numbers
import secrets
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .. import _half
from ..table import Activation, Param

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _accepted(dt: np.dtype) -> bool:
    """What arrays are computed in or stored as: float32, float64, and the 16-bit ones."""
    return dt in _FLOATS or _half.is_half(dt)


def as_input(value: Any, argname: str) -> np.ndarray:
    """``value`` as a float32/float64/float16/bfloat16 array (integers become float64)."""
    a = value if type(value) is np.ndarray else np.asarray(value)
    dt = a.dtype
    if _accepted(dt):
        return a
    if dt.kind == "f" and not dt.isnative and _accepted(dt.newbyteorder("=")):
        return a.astype(dt.newbyteorder("="))
    if dt.kind in "iu":
        return a.astype(np.float64)
    if dt.kind == "f":
        raise TypeError(
            f"{argname} has dtype {dt}; fastact computes in float32 or float64 "
            f"(float16 and bfloat16 stored, float32 computed): "
            f"convert with {argname}.astype(np.float32)"
        )
    raise TypeError(f"{argname} must be a real floating-point (or integer) array, got dtype {dt}")


def check_out(
    out: Any, shape: tuple, dtype: np.dtype, source: Any = None, source_name: str = "x"
) -> np.ndarray:
    """``out`` when it is a writeable ndarray of ``shape`` and ``dtype``; else the error.

    ``source`` is the argument (named ``source_name``) the result's dtype
    comes from: the dtype message says why that dtype is expected.
    """
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"out has shape {out.shape}, expected {shape}")
    if out.dtype != dtype and out.dtype.newbyteorder("=") != dtype:
        kind = np.asarray(source).dtype.kind if source is not None else "f"
        why = "integer inputs compute in float64" if kind in "iu" else f"the dtype of {source_name}"
        raise TypeError(f"out has dtype {out.dtype}, expected {dtype} ({why})")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    return out


def check_shapes(g: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``s`` in ``g``'s dtype, after checking that the two shapes match.

    A 16-bit ``saved`` with a float32/float64 ``grad_output`` is widened
    (exactly: the mixed-precision rule); a 16-bit ``grad_output`` needs a
    ``saved`` of its own dtype.
    """
    if g.shape != s.shape:
        raise ValueError(f"grad_output has shape {g.shape} but saved has shape {s.shape}")
    if s.dtype == g.dtype:
        return s
    if _half.is_half(g.dtype):
        raise TypeError(
            f"saved has dtype {s.dtype} but grad_output has dtype {g.dtype}: a 16-bit "
            f"gradient needs saved in the same dtype (convert with saved.astype(grad_output.dtype)),"
            f" or pass grad_output in float32 to compute in float32"
        )
    return s.astype(g.dtype)


def real(value: Any, name: str) -> float:
    """``value`` as a float, when it is a real number (not a bool)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"{name} is out of the float64 range") from None


_CHECKS: dict[tuple[str, str], Callable] = {}


def _compiled_check(condition: str) -> Callable:
    code = compile(condition, f"<check {condition}>", "eval")
    return lambda params: eval(code, {"__builtins__": {}}, params)  # noqa: S307


def _scalar(value: Any, prm: Param) -> float:
    if prm.choices:
        if not isinstance(value, str) or value not in prm.choices:
            opts = " or ".join(repr(c) for c in prm.choices)
            raise ValueError(f"{prm.name} must be {opts}, got {value!r}")
        return float(prm.choices.index(value))
    return real(value, prm.name)


def check_params(entry: Activation, values: tuple, backward: bool = False) -> tuple:
    """The scalar parameters as floats (options as their index), after the entry's checks."""
    prms = entry.scalar_params
    floats = tuple(_scalar(v, p) for v, p in zip(values, prms))
    checks = entry.checks + (entry.backward_checks if backward else ())
    if checks:
        env = {p.name: f for p, f in zip(prms, floats)}
        for condition, message in checks:
            fn = _CHECKS.get((entry.name, condition))
            if fn is None:
                fn = _CHECKS[(entry.name, condition)] = _compiled_check(condition)
            if not fn(env):
                got = ", ".join(f"{p.name}={v!r}" for p, v in zip(prms, values))
                raise ValueError(f"{entry.name}: {message} (got {got})")
    return floats


def check_seed(seed: Any, training: bool, backward: bool, name: str) -> int:
    """The rrelu key: ``seed`` checked, a fresh one in training without it, 0 in eval."""
    if seed is None:
        if not training:
            return 0
        if backward:
            raise ValueError(
                f"{name}: training-mode backward needs the seed the forward used; "
                "pass seed= to both calls"
            )
        return secrets.randbits(64)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    seed = int(seed)
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return seed


def check_axis(axis: Any, ndim: int) -> int:
    """``axis`` as an index in ``range(max(ndim, 1))`` (negative counts from the end)."""
    if type(axis) is not int and (
        isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral)
    ):
        raise TypeError(f"axis must be an integer, got {type(axis).__name__}")
    n = max(ndim, 1)
    if not -n <= axis < n:
        raise ValueError(f"axis {axis} is out of bounds for an array of dimension {ndim}")
    return int(axis) % n


def axis_or_dim(fname: str, axis: Any, dim: Any) -> Any:
    """The axis of a rowwise call given as NumPy's ``axis`` or PyTorch's ``dim`` (-1 if neither)."""
    if dim is None:
        return -1 if axis is None else axis
    if axis is not None:
        raise TypeError(f"{fname}() got both axis={axis!r} and dim={dim!r}; pass one of the two")
    return dim


def public_signature(fn: Callable) -> inspect.Signature:
    """``fn``'s signature without the ``**unknown`` keywords it takes only to reject them."""
    sig = inspect.signature(fn)
    return sig.replace(
        parameters=[p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
    )


def unexpected(fn: Callable, unknown: Iterable[str]) -> TypeError:
    """The error for keywords ``fn`` does not take, naming the closest valid one."""
    valid = list(public_signature(fn).parameters)
    name = next(iter(unknown))
    if name in ("bias", "bias_axis"):  # the rowwise entries: a bias does not commute with them
        return TypeError(
            f"{fn.__name__}() takes no bias: it normalises along an axis; "
            "add the bias before the call (x + bias)"
        )
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
    if not close:  # a shortened name ("slope" for "negative_slope")
        close = [v for v in valid if len(name) > 2 and (name in v or v in name)][:1]
    hint = f"; did you mean {close[0]!r}?" if close else f"; it takes {', '.join(valid)}"
    return TypeError(f"{fn.__name__}() got an unexpected keyword argument {name!r}{hint}")
