"""fastact kernels as PyTorch operators with autograd.

``fastact.torch.NAME(tensor, **params)`` exists for every activation of the
table.  Each is a custom operator ``torch.ops.fastact.NAME`` (made with
``torch.library.custom_op``) with a fake kernel, so it works under
``torch.compile``, and an autograd formula whose backward is the custom
operator ``torch.ops.fastact.NAME_backward``.  The kernels run on CPU
float32/float64 tensors, and on float16/bfloat16 ones (stored in 16 bits,
computed in float32, rounded once; bfloat16 needs ``ml_dtypes``), zero-copy:
the input is read through ``Tensor.numpy()`` (a bfloat16 tensor through its
int16 view) and the kernel writes straight into a fresh contiguous output
tensor.  ::

    import torch, fastact.torch as ft
    x = torch.randn(1024, 512, requires_grad=True)
    y = ft.gelu(x)                       # like torch.nn.functional.gelu
    y.sum().backward()
    z = ft.prelu(x, torch.full((512,), 0.25, requires_grad=True))

What the backward saves follows ``fastact.activation(NAME).saves`` (the
input or the output).  Specials:

* ``prelu(x, weight)``: ``weight`` is a tensor (one slope, or one per channel
  along axis 1) and gets a gradient.
* ``rrelu(x, lower, upper, training=False, seed=None)``: in training each
  negative element's slope is drawn from (seed, flat index); ``seed=None``
  draws a seed from torch's generator (so ``torch.manual_seed`` makes it
  reproducible, and ``torch.compile`` draws a fresh one per call).  The seed
  is saved for the backward, which regenerates the slopes.
* ``softmax(x, dim=-1)``, ``log_softmax(x, dim=-1)``: along ``dim``, which
  may also be given as NumPy's ``axis`` (one of the two).
* Double backward (``create_graph=True``) is not supported.

Import with ``import fastact.torch`` (or ``fastact.integrations.torch``);
it needs PyTorch (its CPU build is enough: see pytorch.org for the command).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

import fastact
from fastact import _api, _half
from fastact._api.checks import axis_or_dim
from fastact.integrations import require
from fastact.table import Activation

torch = require(
    "torch",
    "fastact.torch",
    "PyTorch",
    "install its CPU build as pytorch.org describes (on Linux a plain pip install torch "
    "fetches a multi-GB CUDA build)",
)

__all__ = ["op", "ops"]

_MASK = (1 << 64) - 1
_FLOATS = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


# --- helpers -------------------------------------------------------------


def _check(t: Any, argname: str, fname: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(
            f"fastact.torch.{fname}: {argname} must be a torch.Tensor, got {type(t).__name__}"
        )
    if t.device.type != "cpu":
        raise ValueError(
            f"fastact.torch.{fname}: {argname} is on {t.device}; fastact kernels run on CPU tensors"
        )
    if t.dtype not in _FLOATS:
        raise TypeError(
            f"fastact.torch.{fname}: {argname} has dtype {t.dtype}; "
            f"fastact computes in torch.float32 or torch.float64 (and stores torch.float16 "
            f"and torch.bfloat16)"
        )
    if t.dtype == torch.bfloat16 and _half.BFLOAT16 is None:
        raise TypeError(
            f"fastact.torch.{fname}: {argname} is torch.bfloat16, which needs ml_dtypes: "
            'pip install "fastact[bfloat16]"'
        )


def _np(t) -> np.ndarray:
    """A NumPy view of a CPU tensor (no copy; bfloat16 through its int16 view)."""
    t = t.detach()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(_half.BFLOAT16)
    return t.numpy()


def _from_np(a: np.ndarray):
    """A tensor sharing ``a``'s memory (bfloat16 through its int16 view)."""
    if _half.fmt(a.dtype) == 2:
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def _new(like, shape=None, dtype=None):
    """A contiguous uninitialised tensor (the kernels write every element)."""
    return torch.empty(
        like.shape if shape is None else shape,
        dtype=like.dtype if dtype is None else dtype,
        device=like.device,
    )


def _kind(p) -> str:
    """The schema type of a scalar parameter, from its default."""
    d = p.default
    if isinstance(d, bool):
        return "bool"
    if getattr(p, "choices", ()) or isinstance(d, str):
        return "str"
    if p.name in ("axis", "dim") or (isinstance(d, int) and getattr(p, "kind", None) == "int"):
        return "int"
    return "float"


def _seed_tensor(seed: Any, training: bool):
    """The rrelu seed as a 0-d int64 tensor (two's complement of the uint64 key)."""
    if not training:
        return torch.zeros((), dtype=torch.int64)
    if seed is None:
        return torch.randint(-(1 << 63), (1 << 63) - 1, (), dtype=torch.int64)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    seed = int(seed)
    if not 0 <= seed < (1 << 64):
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return torch.tensor(seed - (1 << 64) if seed >= (1 << 63) else seed, dtype=torch.int64)


def _seed_value(seed_t) -> int:
    return int(seed_t.item()) & _MASK


# --- operator factories --------------------------------------------------


class Ops:
    """The forward and backward custom operators of one activation."""

    def __init__(self, entry: Activation, forward, backward, function: Callable):
        self.entry = entry
        self.forward = forward
        self.backward = backward
        self.function = function

    def __repr__(self) -> str:
        return f"<fastact.torch ops for {self.entry.name}: fastact::{self.entry.name}(_backward)>"


def _custom_ops(name: str, fwd_impl, bwd_impl, args: str, bwd_returns: str):
    """The custom ops ``fastact::NAME(x, ARGS)`` and ``fastact::NAME_backward(grad_output,
    saved, ARGS)`` (``args``: their schema after the tensors, from a comma on)."""
    fwd = torch.library.custom_op(
        f"fastact::{name}",
        fwd_impl,
        mutates_args=(),
        device_types="cpu",
        schema=f"(Tensor x{args}) -> Tensor",
    )
    bwd = torch.library.custom_op(
        f"fastact::{name}_backward",
        bwd_impl,
        mutates_args=(),
        device_types="cpu",
        schema=f"(Tensor grad_output, Tensor saved{args}) -> {bwd_returns}",
    )
    return fwd, bwd


def _elementwise(entry: Activation) -> Ops:
    name = entry.name
    scalars = entry.scalar_params
    nparams = len(scalars)
    train = entry.has_training_mode
    params_schema = "".join(f", {_kind(p)} {p.name}" for p in scalars)
    train_schema = ", bool training, Tensor seed" if train else ""

    def split(args):
        params = tuple(args[:nparams])
        if train:
            return params, bool(args[nparams]), _seed_value(args[nparams + 1])
        return params, False, None

    def fwd_impl(x, *args):
        params, training, seed = split(args)
        out = _new(x)
        if x.numel():
            _api.forward(entry, _np(x), _np(out), params, training, seed)
        return out

    def bwd_impl(grad, saved, *args):
        params, training, seed = split(args)
        out = _new(grad)
        if grad.numel():
            _api.backward(entry, _np(grad), _np(saved), _np(out), params, training, seed)
        return out

    fwd, bwd = _custom_ops(name, fwd_impl, bwd_impl, f"{params_schema}{train_schema}", "Tensor")
    fwd.register_fake(lambda x, *args: _new(x))
    bwd.register_fake(lambda grad, saved, *args: _new(grad))

    def setup_context(ctx, inputs, output):
        x, *args = inputs
        if train:
            ctx.args = tuple(args[:-1])
            ctx.save_for_backward(x if entry.saves == "input" else output, args[-1])
        else:
            ctx.args = tuple(args)
            ctx.save_for_backward(x if entry.saves == "input" else output)

    def backward(ctx, grad):
        if train:
            saved, seed = ctx.saved_tensors
            gx = bwd(grad, saved, *ctx.args, seed)
        else:
            (saved,) = ctx.saved_tensors
            gx = bwd(grad, saved, *ctx.args)
        return (gx,) + (None,) * (nparams + (2 if train else 0))

    fwd.register_autograd(backward, setup_context=setup_context)
    return Ops(entry, fwd, bwd, _wrapper(entry, fwd))


def _channel(entry: Activation) -> Ops:
    name, cp = entry.name, entry.channel_param

    def fwd_impl(x, weight):
        out = _new(x)
        if x.numel():
            _api.channel_forward(entry, _np(x), _np(weight), _np(out))
        return out

    def bwd_impl(grad, saved, weight):
        out = _new(grad)
        gw = _api.channel_backward(entry, _np(grad), _np(saved), _np(weight), _np(out))[1]
        gw = np.ascontiguousarray(_half.round_to(gw.astype(np.float64), _np(weight).dtype))
        return out, _from_np(gw)

    fwd, bwd = _custom_ops(name, fwd_impl, bwd_impl, f", Tensor {cp}", "(Tensor, Tensor)")
    fwd.register_fake(lambda x, weight: _new(x))
    bwd.register_fake(lambda grad, saved, weight: (_new(grad), _new(weight)))

    def setup_context(ctx, inputs, output):
        x, weight = inputs
        ctx.save_for_backward(x, weight)

    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        gx, gw = bwd(grad, x, weight)
        return (
            gx if ctx.needs_input_grad[0] else None,
            gw if ctx.needs_input_grad[1] else None,
        )

    fwd.register_autograd(backward, setup_context=setup_context)
    return Ops(entry, fwd, bwd, _wrapper(entry, fwd))


def _rowwise(entry: Activation) -> Ops:
    name = entry.name

    def fwd_impl(x, axis):
        out = _new(x)
        if x.numel():
            _api.rowwise_forward(entry, _np(x), axis, _np(out))
        return out

    def bwd_impl(grad, saved, axis):
        out = _new(grad)
        if grad.numel():
            _api.rowwise_backward(entry, _np(grad), _np(saved), axis, _np(out))
        return out

    fwd, bwd = _custom_ops(name, fwd_impl, bwd_impl, ", int axis", "Tensor")
    fwd.register_fake(lambda x, axis: _new(x))
    bwd.register_fake(lambda grad, saved, axis: _new(grad))

    def setup_context(ctx, inputs, output):
        x, axis = inputs
        ctx.axis = axis
        ctx.save_for_backward(x if entry.saves == "input" else output)

    def backward(ctx, grad):
        (saved,) = ctx.saved_tensors
        return bwd(grad, saved, ctx.axis), None

    fwd.register_autograd(backward, setup_context=setup_context)
    return Ops(entry, fwd, bwd, _wrapper(entry, fwd))


def _wrapper(entry: Activation, fwd) -> Callable:
    """The public function, with the real signature and argument checks."""
    name = entry.name
    ns: dict[str, Any] = {
        "_op": fwd,
        "_check": _check,
        "_seed_tensor": _seed_tensor,
        "_axis": _api.check_axis,
        "_axis_or_dim": axis_or_dim,
    }
    if entry.rowwise:
        src = (
            f"def {name}(x, axis=None, *, dim=None):\n"
            f"    _check(x, 'x', {name!r})\n"
            f"    return _op(x, _axis(_axis_or_dim({name!r}, axis, dim), x.dim()))\n"
        )
    elif entry.channel_param:
        cp = entry.channel_param
        src = (
            f"def {name}(x, {cp}):\n"
            f"    _check(x, 'x', {name!r})\n"
            f"    _check({cp}, {cp!r}, {name!r})\n"
            f"    return _op(x, {cp})\n"
        )
    else:
        sig = "".join(
            f", {p.name}" if p.default is None else f", {p.name}={p.default!r}"
            for p in entry.scalar_params
        )
        names = "".join(f", {p.name}" for p in entry.scalar_params)
        if entry.has_training_mode:
            src = (
                f"def {name}(x{sig}, *, training=False, seed=None):\n"
                f"    _check(x, 'x', {name!r})\n"
                f"    return _op(x{names}, bool(training), _seed_tensor(seed, training))\n"
            )
        else:
            src = f"def {name}(x{sig}):\n    _check(x, 'x', {name!r})\n    return _op(x{names})\n"
    exec(compile(src, f"<fastact.torch.{name}>", "exec"), ns)  # noqa: S102
    fn = ns[name]
    fn.__doc__ = (
        f"{entry.doc}\n\n    {entry.formula}\n\nOn CPU float32/float64 (and float16/bfloat16, "
        f"computed in float32) tensors, with autograd "
        f"(custom operator ``torch.ops.fastact.{name}``)."
    )
    fn.__module__ = __name__
    fn.__qualname__ = name
    return fn


_OPS: dict[str, Ops] = {}


def ops(name: str) -> Ops:
    """The custom operators of activation ``name`` (registered on first use).

    ``ops(name).forward`` / ``.backward`` are the ``CustomOpDef`` objects (for
    ``torch.library.opcheck``); ``.function`` is ``fastact.torch.NAME``.
    """
    o = _OPS.get(name)
    if o is None:
        entry = fastact.activation(name)
        if entry.rowwise:
            o = _rowwise(entry)
        elif entry.channel_param:
            o = _channel(entry)
        else:
            o = _elementwise(entry)
        _OPS[name] = o
    return o


def op(name: str) -> Callable:
    """``fastact.torch.NAME`` by name, e.g. ``op("gelu")(x)``."""
    return ops(name).function


def __getattr__(name: str):
    # Activations registered after this module was imported.
    if name.startswith("_") or name not in fastact.activations():
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    fn = op(name)
    globals()[name] = fn
    return fn


for _name in fastact.activations():
    globals()[_name] = op(_name)
    __all__.append(_name)
del _name
