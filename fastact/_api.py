"""The public functions ``fastact.NAME`` and ``fastact.NAME_backward``.

One forward and one backward function is made for every table entry.  They
share the checks below (NumPy's conventions: lists and scalars are accepted,
integer arrays are computed in float64, ``out=`` must match exactly), then
hand contiguous float32/float64 buffers to the backend chosen by
:mod:`fastact._dispatch`.  Nothing is written when a check fails, and no
input is modified unless it is passed as ``out``.
"""

from __future__ import annotations

import ast
import numbers
import secrets
from collections.abc import Callable
from typing import Any

import numpy as np

from . import _dispatch
from .table import Activation

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_PASS = {"forward": "forward", "backward": "backward"}


# --- argument checks -------------------------------------------------------


def as_input(value: Any, argname: str) -> np.ndarray:
    """``value`` as a float32/float64 array (integers become float64)."""
    a = value if type(value) is np.ndarray else np.asarray(value)
    dt = a.dtype
    if dt in _FLOATS:
        return a
    if dt.kind == "f" and not dt.isnative and dt.newbyteorder("=") in _FLOATS:
        return a.astype(dt.newbyteorder("="))
    if dt.kind in "iu":
        return a.astype(np.float64)
    if dt.kind == "f":
        raise TypeError(
            f"{argname} has dtype {dt}; fastact computes in float32 or float64: "
            f"convert with {argname}.astype(np.float32)"
        )
    raise TypeError(f"{argname} must be a real floating-point (or integer) array, got dtype {dt}")


def check_out(out: Any, shape: tuple, dtype: np.dtype, argname: str = "out") -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{argname} must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"{argname} has shape {out.shape}, expected {shape}")
    if out.dtype != dtype and out.dtype.newbyteorder("=") != dtype:
        raise TypeError(f"{argname} has dtype {out.dtype}, expected {dtype}")
    if not out.flags.writeable:
        raise ValueError(f"{argname} is read-only")
    return out


def _real(value: Any, name: str) -> float:
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


def _scalar(value: Any, prm) -> float:
    if prm.choices:
        if not isinstance(value, str) or value not in prm.choices:
            opts = " or ".join(repr(c) for c in prm.choices)
            raise ValueError(f"{prm.name} must be {opts}, got {value!r}")
        return float(prm.choices.index(value))
    return _real(value, prm.name)


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


# --- layout ----------------------------------------------------------------


def _order(arrays: list[np.ndarray], c_only: bool) -> str | None:
    """'C' or 'F' when all arrays are contiguous in that order (aligned, native), else None."""
    if not all(a.flags.aligned and a.dtype.isnative for a in arrays):
        return None
    if all(a.flags.c_contiguous for a in arrays):
        return "C"
    if not c_only and all(a.flags.f_contiguous for a in arrays):
        return "F"
    return None


def _c_copy(a: np.ndarray) -> np.ndarray:
    """A C-contiguous, aligned array equal to ``a`` (``a`` itself when it is one)."""
    if a.flags.c_contiguous and a.flags.aligned:
        return a
    return np.array(a, order="C", copy=True)


def plan(inputs: list[np.ndarray], out: np.ndarray | None, c_only: bool):
    """Buffers the kernel can run on flat: (inputs, target, out_or_None).

    When the returned third value is not None the kernel writes ``target`` (a
    temporary) and the caller copies it into ``out`` afterwards: ``out`` was
    strided, laid out differently from the inputs, or partially overlapping
    one of them.
    """
    shape = inputs[0].shape
    if out is None:
        order = _order(inputs, c_only)
        if order is None:
            inputs = [_c_copy(a) for a in inputs]
            order = "C"
        return inputs, np.empty(shape, inputs[0].dtype, order=order), None
    overlap = any(a is not out and np.may_share_memory(a, out) for a in inputs)
    order = _order(inputs + [out], c_only)
    if order is not None and not overlap:
        return inputs, out, None
    order = _order(inputs, c_only)
    if order is None:
        inputs = [_c_copy(a) for a in inputs]
        order = "C"
    return inputs, np.empty(shape, inputs[0].dtype, order=order), out


def _result(value: Any, result: np.ndarray):
    """NumPy's convention: a Python scalar in gives a NumPy scalar out."""
    if result.ndim == 0 and not isinstance(value, np.ndarray):
        return result[()]
    return result


# --- the calls -------------------------------------------------------------


def _is_dask(value: Any) -> bool:
    return type(value).__module__.startswith("dask.")


def forward(entry: Activation, x: Any, out: Any, params: tuple, training=False, seed=None):
    if type(x) is not np.ndarray and _is_dask(x):
        from .integrations import dask as _dask

        return _dask.forward(entry, x, out, params, training, seed)
    a = as_input(x, "x")
    floats = check_params(entry, params)
    seed = check_seed(seed, training, False, entry.name) if entry.has_training_mode else 0
    if out is not None:
        check_out(out, a.shape, a.dtype)
    if a.size == 0:
        return out if out is not None else np.empty_like(a)
    backend, nthreads = _dispatch.choose(entry, "forward", a.dtype, a.size)
    (src,), target, copy_to = plan([a], out, c_only=training)
    with _dispatch.running(nthreads) as nthreads:
        backend.forward(entry, src, target, floats, training, seed, nthreads)
    if copy_to is not None:
        copy_to[...] = target
        return copy_to
    return _result(x, target)


def backward(
    entry: Activation,
    grad_output: Any,
    saved: Any,
    out: Any,
    params: tuple,
    training=False,
    seed=None,
):
    if type(grad_output) is not np.ndarray and _is_dask(grad_output):
        from .integrations import dask as _dask

        return _dask.backward(entry, grad_output, saved, out, params, training, seed)
    g = as_input(grad_output, "grad_output")
    s = as_input(saved, "saved")
    if g.shape != s.shape:
        raise ValueError(f"grad_output has shape {g.shape} but saved has shape {s.shape}")
    if s.dtype != g.dtype:
        s = s.astype(g.dtype)
    floats = check_params(entry, params, backward=True)
    seed = check_seed(seed, training, True, entry.name) if entry.has_training_mode else 0
    if out is not None:
        check_out(out, g.shape, g.dtype)
    if g.size == 0:
        return out if out is not None else np.empty_like(g)
    backend, nthreads = _dispatch.choose(entry, "backward", g.dtype, g.size)
    (gs, ss), target, copy_to = plan([g, s], out, c_only=training)
    with _dispatch.running(nthreads) as nthreads:
        backend.backward(entry, gs, ss, target, floats, training, seed, nthreads)
    if copy_to is not None:
        copy_to[...] = target
        return copy_to
    return _result(grad_output, target)


def _channel_geometry(a: np.ndarray, weight: Any, argname: str):
    """(weight as C doubles, outer, C, inner) for a per-channel parameter."""
    w = np.asarray(weight)
    if w.dtype.kind not in "fiu" or w.dtype.kind == "b":
        raise TypeError(f"{argname} must be a real array, got dtype {w.dtype}")
    if w.ndim > 1:
        raise ValueError(f"{argname} must be 0-d or 1-d, got shape {w.shape}")
    channels = a.shape[1] if a.ndim >= 2 else 1
    if w.size not in (1, channels):
        raise ValueError(
            f"{argname} has {w.size} elements; expected 1 or {channels} "
            f"(the size of axis 1 of the input)"
        )
    w64 = np.ascontiguousarray(w.astype(a.dtype).astype(np.float64).reshape(-1))
    if w.size == 1:
        return w64, 1, 1, a.size
    inner = int(np.prod(a.shape[2:], dtype=np.int64))
    return w64, a.shape[0], channels, inner


# (N, C) input has one channel per element of a row: rather than one short
# kernel call per row, runs of ROW_RUN // C rows share a tiled weight.
ROW_RUN = 4096


def _channel_parts(n: int, w64: np.ndarray, outer: int, channels: int, inner: int):
    """[(lo, hi, weight, outer, C, inner, fold)]: kernel calls covering elements lo:hi.

    ``fold`` copies of the weight were tiled; a part's parameter gradient is
    summed over them.  The split depends on the shape only (deterministic).
    """
    if inner != 1 or outer < 2 or channels >= ROW_RUN:
        return [(0, n, w64, outer, channels, inner, 1)]
    run = min(outer, ROW_RUN // channels)
    bulk = (outer // run) * run
    parts = [(0, bulk * channels, np.tile(w64, run), bulk // run, run * channels, 1, run)]
    if bulk < outer:
        parts.append((bulk * channels, n, w64, outer - bulk, channels, 1, 1))
    return parts


def channel_forward(entry: Activation, x: Any, weight: Any, out: Any):
    if type(x) is not np.ndarray and _is_dask(x):
        from .integrations import dask as _dask

        return _dask.channel_forward(entry, x, weight, out)
    a = as_input(x, "x")
    w64, outer, channels, inner = _channel_geometry(a, weight, entry.channel_param)
    if out is not None:
        check_out(out, a.shape, a.dtype)
    if a.size == 0:
        return out if out is not None else np.empty_like(a)
    backend, nthreads = _dispatch.choose(entry, "forward", a.dtype, a.size)
    (src,), target, copy_to = plan([a], out, c_only=True)
    flat_src, flat_out = src.reshape(-1), target.reshape(-1)
    with _dispatch.running(nthreads) as nthreads:
        for lo, hi, w, o, c, i, _ in _channel_parts(a.size, w64, outer, channels, inner):
            backend.channel_forward(entry, flat_src[lo:hi], flat_out[lo:hi], w, o, c, i, nthreads)
    if copy_to is not None:
        copy_to[...] = target
        return copy_to
    return _result(x, target)


def channel_backward(entry: Activation, grad_output: Any, saved: Any, weight: Any, out: Any):
    if type(grad_output) is not np.ndarray and _is_dask(grad_output):
        from .integrations import dask as _dask

        return _dask.channel_backward(entry, grad_output, saved, weight, out)
    g = as_input(grad_output, "grad_output")
    s = as_input(saved, "saved")
    if g.shape != s.shape:
        raise ValueError(f"grad_output has shape {g.shape} but saved has shape {s.shape}")
    if s.dtype != g.dtype:
        s = s.astype(g.dtype)
    w64, outer, channels, inner = _channel_geometry(g, weight, entry.channel_param)
    if out is not None:
        check_out(out, g.shape, g.dtype)
    wshape = np.shape(weight)
    if g.size == 0:
        gx = out if out is not None else np.empty_like(g)
        return gx, np.zeros(wshape, g.dtype)
    backend, nthreads = _dispatch.choose(entry, "backward", g.dtype, g.size)
    (gs, ss), target, copy_to = plan([g, s], out, c_only=True)
    fg, fs, fo = gs.reshape(-1), ss.reshape(-1), target.reshape(-1)
    gw = np.zeros(w64.size)
    with _dispatch.running(nthreads) as nthreads:
        for lo, hi, w, o, c, i, fold in _channel_parts(g.size, w64, outer, channels, inner):
            part = backend.channel_backward(
                entry, fg[lo:hi], fs[lo:hi], fo[lo:hi], w, o, c, i, nthreads
            )
            gw += np.asarray(part).reshape(fold, -1).sum(axis=0)
    if copy_to is not None:
        copy_to[...] = target
        target = copy_to
    return _result(grad_output, target), np.asarray(gw, g.dtype).reshape(wshape)


def _axis(axis: Any, ndim: int) -> int:
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis must be an integer, got {type(axis).__name__}")
    n = max(ndim, 1)
    if not -n <= axis < n:
        raise ValueError(f"axis {axis} is out of bounds for an array of dimension {ndim}")
    return int(axis) % n


def _rows(arrays: list[np.ndarray], out: np.ndarray | None, axis: int):
    """C-contiguous (rows, rowlen) buffers with ``axis`` last, and the write-back."""
    moved = [np.moveaxis(a.reshape(a.shape or (1,)), axis, -1) for a in arrays]
    shape = moved[0].shape
    rowlen = shape[-1]
    rows = moved[0].size // rowlen if rowlen else 0
    target = None
    if out is not None:
        om = np.moveaxis(out.reshape(out.shape or (1,)), axis, -1)
        overlap = any(a is not out and np.may_share_memory(a, out) for a in arrays)
        if om.flags.c_contiguous and om.flags.aligned and om.dtype.isnative and not overlap:
            target = om
    bufs = [_c_copy(m) for m in moved]
    direct = target is not None
    if target is None:
        target = np.empty(shape, bufs[0].dtype)
    return bufs, target, rows, rowlen, direct


def _finish_rows(value: Any, target, out, direct: bool, axis: int, shape):
    if out is not None:
        if not direct:
            np.moveaxis(out.reshape(out.shape or (1,)), axis, -1)[...] = target
        return out
    return _result(value, np.moveaxis(target, -1, axis).reshape(shape))


def rowwise_forward(entry: Activation, x: Any, axis: Any, out: Any):
    if type(x) is not np.ndarray and _is_dask(x):
        from .integrations import dask as _dask

        return _dask.rowwise_forward(entry, x, axis, out)
    a = as_input(x, "x")
    ax = _axis(axis, a.ndim)
    if out is not None:
        check_out(out, a.shape, a.dtype)
    if a.size == 0:
        return out if out is not None else np.empty_like(a)
    backend, nthreads = _dispatch.choose(entry, "forward", a.dtype, a.size)
    (buf,), target, rows, rowlen, direct = _rows([a], out, ax)
    with _dispatch.running(nthreads) as nthreads:
        backend.rowwise_forward(entry, buf, target, rows, rowlen, nthreads)
    return _finish_rows(x, target, out, direct, ax, a.shape)


def rowwise_backward(entry: Activation, grad_output: Any, saved: Any, axis: Any, out: Any):
    if type(grad_output) is not np.ndarray and _is_dask(grad_output):
        from .integrations import dask as _dask

        return _dask.rowwise_backward(entry, grad_output, saved, axis, out)
    g = as_input(grad_output, "grad_output")
    s = as_input(saved, "saved")
    if g.shape != s.shape:
        raise ValueError(f"grad_output has shape {g.shape} but saved has shape {s.shape}")
    if s.dtype != g.dtype:
        s = s.astype(g.dtype)
    ax = _axis(axis, g.ndim)
    if out is not None:
        check_out(out, g.shape, g.dtype)
    if g.size == 0:
        return out if out is not None else np.empty_like(g)
    backend, nthreads = _dispatch.choose(entry, "backward", g.dtype, g.size)
    (gb, sb), target, rows, rowlen, direct = _rows([g, s], out, ax)
    with _dispatch.running(nthreads) as nthreads:
        backend.rowwise_backward(entry, gb, sb, target, rows, rowlen, nthreads)
    return _finish_rows(grad_output, target, out, direct, ax, g.shape)


# --- making the public functions ------------------------------------------


def _doc(entry: Activation, backward: bool) -> str:
    params = "".join(
        f"\n    {p.name} : float, default {p.default!r}\n        {p.doc}" for p in entry.parameters
    )
    if backward:
        saved = "x, the forward input" if entry.saves == "input" else "y, the forward output"
        head = (
            f"Gradient of {entry.name} with respect to its input.\n\n"
            f"    {entry.formula}\n\n"
            f"``saved`` is {saved}. ``out=grad_output`` is the in-place form."
        )
        if entry.channel_param:
            head += f" Returns ``(grad_input, grad_{entry.channel_param})``."
    else:
        head = f"{entry.doc}\n\n    {entry.formula}\n\n``out=x`` is the in-place form and allocates nothing."
    extra = ""
    if entry.rowwise:
        extra = "\n    axis : int, default -1\n        the axis along which each row is normalised"
    if entry.has_training_mode:
        extra = (
            "\n    training : bool, default False\n        random slopes (training) or their mean (eval)"
            "\n    seed : int or None\n        key of the counter-based slopes; None in training draws a"
            "\n        fresh seed (the backward then cannot regenerate the slopes: pass a seed)"
        )
    return f"{head}\n\nParameters\n----------{params}{extra}\n    out : ndarray, optional\n"


def _no_fast(*args) -> None:
    return None


# The compiled fast paths (fastact._backends.cython._kernels.fast_*), bound in
# the namespace of the generated functions as _fast_<kind>.
FAST_KINDS = (
    "forward",
    "backward",
    "train_forward",
    "train_backward",
    "rowwise_forward",
    "rowwise_backward",
    "channel_forward",
    "channel_backward",
)
_SEED_OK = "(seed is None or type(seed) is int and 0 <= seed < 18446744073709551616)"


def has_fast_path(entry: Activation) -> bool:
    """Whether small plain calls of ``entry`` take the compiled fast path.

    Every compiled entry has one: elementwise calls with float parameters
    (string options by their index), rrelu in eval mode and in training mode
    with an explicit seed, prelu with a float or a float-array weight, and
    softmax/log_softmax along the last axis, on C-contiguous arrays.
    """
    return kernel_id(entry) is not None


def kernel_id(entry: Activation) -> int | None:
    """The entry's index among the compiled kernels, or None (user entries)."""
    from .table import TABLE

    for k, e in enumerate(TABLE):
        if e is entry:
            return k
    return None


def _option_var(name: str) -> str:
    return f"_{name}_code"


def _renamed(condition: str, names: dict[str, str]) -> str:
    tree = ast.parse(condition, mode="eval")
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in names:
            node.id = names[node.id]
    return ast.unparse(tree)


def _guard(entry: Activation, checks: tuple) -> tuple[str, str, str]:
    """(lines, condition, params): the fast path's view of the scalar parameters.

    ``lines`` map each string option to its index (``_<name>_code``, None when
    it is not one of the choices), as the general path does; ``condition``
    holds when the options are known, the other parameters are floats and all
    pass the entry's checks; ``params`` is the tuple of floats for the kernel.
    Anything else (ints, unknown strings, arrays...) goes to the general path,
    which converts or rejects it with an error naming the argument.
    """
    scalars = entry.scalar_params
    options = {p.name: _option_var(p.name) for p in scalars if p.choices}
    lines = "".join(
        f"    {var} = _OPTIONS_{name}.get({name}) if type({name}) is str else None\n"
        for name, var in options.items()
    )
    conds = [f"{var} is not None" for var in options.values()]
    if checks:
        # floats before the checks read them (``_fast_params`` rejects the rest)
        conds += [f"type({p.name}) is float" for p in scalars if not p.choices]
        conds += [f"({_renamed(c, options)})" for c, _ in checks]
    params = "(" + "".join(f"{options.get(p.name, p.name)}, " for p in scalars) + ")"
    return lines, " and ".join(conds) or "True", params


def _source(entry: Activation, kid: int) -> str:
    """The generated ``NAME`` and ``NAME_backward``: the fast path, else the general one."""
    name = entry.name
    if entry.rowwise:
        return (
            f"def {name}(x, axis=-1, *, out=None):\n"
            f"    r = _fast_rowwise_forward({kid}, x, axis, out)\n"
            f"    if r is not None:\n"
            f"        return r\n"
            f"    return _api.rowwise_forward(_entry, x, axis, out)\n"
            f"def {name}_backward(grad_output, saved, axis=-1, *, out=None):\n"
            f"    r = _fast_rowwise_backward({kid}, grad_output, saved, axis, out)\n"
            f"    if r is not None:\n"
            f"        return r\n"
            f"    return _api.rowwise_backward(_entry, grad_output, saved, axis, out)\n"
        )
    if entry.channel_param:
        cp = entry.channel_param
        return (
            f"def {name}(x, {cp}, *, out=None):\n"
            f"    r = _fast_channel_forward({kid}, x, {cp}, out)\n"
            f"    if r is not None:\n"
            f"        return r\n"
            f"    return _api.channel_forward(_entry, x, {cp}, out)\n"
            f"def {name}_backward(grad_output, saved, {cp}, *, out=None):\n"
            f"    r = _fast_channel_backward({kid}, grad_output, saved, {cp}, out)\n"
            f"    if r is not None:\n"
            f"        return r\n"
            f"    return _api.channel_backward(_entry, grad_output, saved, {cp}, out)\n"
        )
    scalars = entry.scalar_params
    sig = "".join(f", {p.name}" if p.required else f", {p.name}={p.default!r}" for p in scalars)
    names = "".join(f"{p.name}, " for p in scalars)
    fwd_lines, fwd_ok, fwd_params = _guard(entry, entry.checks)
    bwd_lines, bwd_ok, bwd_params = _guard(entry, entry.checks + entry.backward_checks)
    if entry.has_training_mode:
        # eval mode: the plain kernels (the seed is only validated); training
        # mode with an explicit seed: the counter-based kernels keyed by it
        return (
            f"def {name}(x{sig}, *, training=False, seed=None, out=None):\n"
            f"{fwd_lines}"
            f"    if {fwd_ok} and {_SEED_OK}:\n"
            f"        if training is False:\n"
            f"            r = _fast_forward({kid}, x, out, {fwd_params})\n"
            f"            if r is not None:\n"
            f"                return r\n"
            f"        elif training is True and seed is not None:\n"
            f"            r = _fast_train_forward({kid}, x, out, {fwd_params}, seed)\n"
            f"            if r is not None:\n"
            f"                return r\n"
            f"    return _api.forward(_entry, x, out, ({names}), training, seed)\n"
            f"def {name}_backward(grad_output, saved{sig}, *, training=False, seed=None, out=None):\n"
            f"{bwd_lines}"
            f"    if {bwd_ok} and {_SEED_OK}:\n"
            f"        if training is False:\n"
            f"            r = _fast_backward({kid}, grad_output, saved, out, {bwd_params})\n"
            f"            if r is not None:\n"
            f"                return r\n"
            f"        elif training is True and seed is not None:\n"
            f"            r = _fast_train_backward({kid}, grad_output, saved, out, {bwd_params}, seed)\n"
            f"            if r is not None:\n"
            f"                return r\n"
            f"    return _api.backward(_entry, grad_output, saved, out, ({names}), training, seed)\n"
        )
    # The compiled fast path first (small plain arrays, float parameters that
    # pass the entry's checks); None sends the call down the general path.
    return (
        f"def {name}(x{sig}, *, out=None):\n"
        f"{fwd_lines}"
        f"    if {fwd_ok}:\n"
        f"        r = _fast_forward({kid}, x, out, {fwd_params})\n"
        f"        if r is not None:\n"
        f"            return r\n"
        f"    return _api.forward(_entry, x, out, ({names}))\n"
        f"def {name}_backward(grad_output, saved{sig}, *, out=None):\n"
        f"{bwd_lines}"
        f"    if {bwd_ok}:\n"
        f"        r = _fast_backward({kid}, grad_output, saved, out, {bwd_params})\n"
        f"        if r is not None:\n"
        f"            return r\n"
        f"    return _api.backward(_entry, grad_output, saved, out, ({names}))\n"
    )


def make_functions(entry: Activation) -> tuple[Callable, Callable]:
    """The forward and backward function of ``entry``, with real signatures."""
    ns: dict[str, Any] = {
        "_entry": entry,
        "_api": __import__(__name__, fromlist=["_"]),
    }
    for kind in FAST_KINDS:
        ns[f"_fast_{kind}"] = _no_fast
    for p in entry.scalar_params:
        if p.choices:
            ns[f"_OPTIONS_{p.name}"] = {c: float(i) for i, c in enumerate(p.choices)}
    kid = kernel_id(entry)
    if kid is not None:
        try:
            from ._backends.cython import _kernels

            for kind in FAST_KINDS:
                ns[f"_fast_{kind}"] = getattr(_kernels, f"fast_{kind}")
        except ImportError:
            pass
    exec(
        compile(_source(entry, kid if kid is not None else -1), f"<fastact.{entry.name}>", "exec"),
        ns,
    )  # noqa: S102
    fwd, bwd = ns[entry.name], ns[f"{entry.name}_backward"]
    fwd.__doc__, bwd.__doc__ = _doc(entry, False), _doc(entry, True)
    fwd.__module__ = bwd.__module__ = "fastact"
    return fwd, bwd
