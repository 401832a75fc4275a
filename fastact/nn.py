"""Activation layers for NumPy training loops.

One layer class per activation of the table, named as in ``torch.nn``
(``ReLU``, ``LeakyReLU``, ``GELU``, ``Softmax``...), with the activation's
parameters as constructor arguments (``Softmax(axis=-1)``,
``LogSoftmax(axis=-1)`` for the row-wise ones).  ``forward(x)`` returns the activation
and keeps exactly what the gradient needs (the input or the output, as
``fastact.activation(name).saves`` says); ``backward(grad)`` returns dL/dx::

    import numpy as np
    from fastact import nn

    act = nn.LeakyReLU(0.1, inplace=True)    # saves its output: in place is allowed
    h = x @ W1                               # (batch, hidden)
    a = act.forward(h)                       # h is overwritten
    ...
    dh = act.backward(da)                    # gradient with respect to h

* ``inplace=True`` writes the output into ``x`` (a writeable float32/float64,
  float16 or bfloat16 array); it is refused for activations whose gradient
  needs the input.  16-bit arrays stay 16-bit (computed in float32).
* ``PReLU(num_parameters=1, init=0.25)`` has a learned ``weight`` (one slope,
  or one per channel along axis 1); each ``backward`` sets ``grad_weight``
  (it is not accumulated).
* ``RReLU(lower, upper)`` draws random slopes in training mode (the default,
  as in PyTorch; ``.eval()`` uses their mean): every training forward takes a
  fresh seed, kept (``last_seed``) for the backward, which regenerates the
  slopes from (seed, index).  ``RReLU(..., seed=0)`` makes the sequence of
  seeds reproducible.
* Layers keep a reference to the saved array: do not modify it between
  ``forward`` and ``backward``.

:func:`layer` builds a layer by activation name (also for activations
registered after import).

``Linear(in_features, out_features, activation=None, bias=True, dtype=np.float32,
rng=None, **params)`` is a dense layer with the bias and an elementwise
activation of the table applied to its matrix product in place;
``Sequential(*layers)`` chains layers, so an MLP is a few lines::

    net = nn.Sequential(nn.Linear(20, 256, "gelu", rng=0), nn.Linear(256, 1, rng=1))
    y = net.forward(x)                       # x: (batch, 20) float32
    net.backward(y - t, input_grad=False)    # sets every layer's gradients
    for name, p in net.parameters().items():
        p -= lr * net.gradients()[name]
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

import fastact
from fastact import _api, _half
from fastact.table import Activation, camel_case

__all__ = [
    "ActivationLayer",
    "ChannelLayer",
    "Layer",
    "Linear",
    "Sequential",
    "class_name",
    "layer",
]

# PyTorch's class names where they are not the CamelCase of the function name.


def class_name(name: str) -> str:
    """The layer class name of activation ``name`` (PyTorch's where it has one)."""
    if name in fastact.activations():
        return fastact.activation(name).layer_name
    return camel_case(name)


class Layer:
    """Base of the layers: ``forward``/``backward``, ``train``/``eval``."""

    training: bool = True

    def train(self, mode: bool = True) -> Layer:
        """Training mode (``mode=True``, the default state) or evaluation mode."""
        self.training = bool(mode)
        return self

    def eval(self) -> Layer:
        """Evaluation mode: ``train(False)``."""
        return self.train(False)

    def forward(self, x: Any) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(
        self, grad: Any, *, out: np.ndarray | None = None
    ) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def __call__(self, x: Any) -> np.ndarray:
        return self.forward(x)

    def parameters(self) -> dict[str, np.ndarray]:
        """Learned parameters by name (none for most activations)."""
        return {}

    def gradients(self) -> dict[str, np.ndarray | None]:
        """Their gradients from the last ``backward``, by the same names."""
        return {}


def _signature(entry: Activation, extra: list[inspect.Parameter]) -> inspect.Signature:
    params = [
        inspect.Parameter(
            p.name,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=inspect.Parameter.empty if p.default is None else p.default,
        )
        for p in entry.scalar_params
    ]
    if entry.rowwise:
        params.append(
            inspect.Parameter(
                "axis", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=-1, annotation="int"
            )
        )
    return inspect.Signature(params + extra)


# Annotated (as strings, like the rest of this module) for fastact/nn.pyi, which
# fastact/_codegen/stubs.py generates from these signatures.
_INPLACE = inspect.Parameter(
    "inplace", inspect.Parameter.KEYWORD_ONLY, default=False, annotation="bool"
)
_SEED = inspect.Parameter(
    "seed", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="int | None"
)


class ActivationLayer(Layer):
    """A layer applying one elementwise (or row-wise) activation of the table."""

    entry: Activation
    inplace: bool
    params: dict[str, Any]
    last_seed: int | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        bound = cls.__signature__.bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        self.inplace = bool(values.pop("inplace"))
        seed = values.pop("seed", None)
        entry = self.entry
        names = [p.name for p in entry.scalar_params]
        self.params: dict[str, Any] = {n: values[n] for n in names}
        _api.check_params(entry, tuple(self.params.values()))
        if entry.rowwise:
            axis = values["axis"]
            if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
                raise TypeError(f"axis must be an integer, got {type(axis).__name__}")
            self.params["axis"] = int(axis)
        if self.inplace and entry.saves == "input":
            raise ValueError(
                f"{cls.__name__}(inplace=True) is not possible: the gradient of "
                f"{entry.name} is computed from its input x, which an in-place "
                f"forward would overwrite"
            )
        self._rng = np.random.default_rng(seed) if entry.has_training_mode else None
        self.last_seed: int | None = None
        self._saved: np.ndarray | None = None
        self._seed: int | None = None

    def __repr__(self) -> str:
        args = [f"{k}={v!r}" for k, v in self.params.items()]
        if self.inplace:
            args.append("inplace=True")
        return f"{type(self).__name__}({', '.join(args)})"

    def _mode(self) -> dict[str, Any]:
        if not self.entry.has_training_mode:
            return {}
        return {"training": self.training, "seed": self._seed if self.training else None}

    def forward(self, x: Any) -> np.ndarray:
        """The activation of ``x``; keeps what ``backward`` needs."""
        fn = getattr(fastact, self.entry.name)
        if self.entry.has_training_mode and self.training:
            self._seed = self.last_seed = int(self._rng.integers(0, 2**64, dtype=np.uint64))
        if self.inplace:
            if not isinstance(x, np.ndarray):
                raise TypeError(
                    f"{type(self).__name__}(inplace=True) needs a NumPy array, got {type(x).__name__}"
                )
            y = fn(x, **self.params, **self._mode(), out=x)
        else:
            y = fn(x, **self.params, **self._mode())
        self._saved = np.asarray(x) if self.entry.saves == "input" else y
        return y

    def backward(self, grad: Any, *, out: np.ndarray | None = None) -> np.ndarray:
        """dL/dx from dL/dy (``out=grad`` computes it in place)."""
        if self._saved is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        fn = getattr(fastact, f"{self.entry.name}_backward")
        return fn(grad, self._saved, **self.params, **self._mode(), out=out)


class ChannelLayer(Layer):
    """A layer with a learned per-channel parameter (PReLU's ``weight``)."""

    entry: Activation
    num_parameters: int

    def __init__(
        self, num_parameters: int = 1, init: float | None = None, *, dtype: Any = np.float64
    ) -> None:
        if isinstance(num_parameters, bool) or not isinstance(num_parameters, (int, np.integer)):
            raise TypeError(
                f"num_parameters must be an integer, got {type(num_parameters).__name__}"
            )
        if num_parameters < 1:
            raise ValueError(f"num_parameters must be >= 1, got {num_parameters}")
        cp = self.entry.channel_param
        default = self.entry.params[cp]
        init = default if init is None else init
        init = _api.real(init, "init")
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64) and not _half.is_half(dtype):
            raise TypeError(f"dtype must be float32, float64, float16 or bfloat16, got {dtype}")
        setattr(self, cp, np.full(int(num_parameters), init, dtype))
        setattr(self, f"grad_{cp}", None)
        self.num_parameters = int(num_parameters)
        self._saved: np.ndarray | None = None
        self._saved_weight: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_parameters={self.num_parameters})"

    def parameters(self) -> dict[str, np.ndarray]:
        cp = self.entry.channel_param
        return {cp: getattr(self, cp)}

    def gradients(self) -> dict[str, np.ndarray | None]:
        cp = self.entry.channel_param
        return {cp: getattr(self, f"grad_{cp}")}

    def forward(self, x: Any) -> np.ndarray:
        """The activation of ``x`` (channels along axis 1); keeps ``x`` and the weight."""
        w = getattr(self, self.entry.channel_param)
        y = getattr(fastact, self.entry.name)(x, w)
        self._saved = np.asarray(x)
        self._saved_weight = w.copy()
        return y

    def backward(self, grad: Any, *, out: np.ndarray | None = None) -> np.ndarray:
        """dL/dx; sets ``grad_weight`` (dL/dweight, summed over everything but the channel)."""
        if self._saved is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        fn = getattr(fastact, f"{self.entry.name}_backward")
        gx, gw = fn(grad, self._saved, self._saved_weight, out=out)
        cp = self.entry.channel_param
        setattr(self, f"grad_{cp}", _half.round_to(gw, getattr(self, cp).dtype))
        return gx


# --- Dense layers --------------------------------------------------------
#
# The bias epilogue of a dense layer goes through these two functions only.


def _bias_forward(
    entry: Activation, z: np.ndarray, b: np.ndarray | None, params: dict, out: np.ndarray
) -> np.ndarray:
    """``act(z + b)`` into ``out`` (which may be ``z``); ``z`` is left alone otherwise."""
    fn = getattr(fastact, entry.name)
    if b is None:
        return fn(z, out=out, **params)
    return fn(z, bias=b, out=out, **params)


def _bias_backward(
    entry: Activation,
    g: np.ndarray,
    saved: np.ndarray,
    b: np.ndarray | None,
    params: dict,
    out: np.ndarray,
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(dL/dz, dL/db)`` of ``act(z + b)`` from ``g`` = dL/dy (``out`` may be ``g``).

    ``saved`` is the pre-bias ``z`` where ``entry.saves == "input"``, the output otherwise.
    """
    fn = getattr(fastact, f"{entry.name}_backward")
    if b is None:
        return fn(g, saved, out=out, **params), None
    return fn(g, saved, bias=b, out=out, **params)


def _dense_entry(activation: str | None, params: dict[str, Any]) -> tuple[Activation | None, dict]:
    """The table entry of a dense layer's activation and its checked parameters."""
    if activation is None:
        if params:
            raise TypeError(f"parameters {', '.join(sorted(params))} given without an activation")
        return None, {}
    if not isinstance(activation, str):
        raise TypeError(
            f"activation must be an activation name or None, got {type(activation).__name__}"
        )
    entry = fastact.activation(activation)
    if entry.rowwise or entry.channel_param or entry.has_training_mode:
        what = (
            "row-wise"
            if entry.rowwise
            else "with a learned weight"
            if entry.channel_param
            else "random in training"
        )
        raise ValueError(
            f"activation={activation!r} is {what}: a dense layer takes an elementwise "
            f"activation; put nn.{class_name(activation)}(...) after it in a Sequential"
        )
    known = {p.name for p in entry.scalar_params}
    unknown = sorted(set(params) - known)
    if unknown:
        raise TypeError(
            f"{activation} has no parameter {', '.join(map(repr, unknown))}"
            + (f" (it takes {', '.join(sorted(known))})" if known else " (it takes none)")
        )
    missing = [p.name for p in entry.scalar_params if p.required and p.name not in params]
    if missing:
        raise TypeError(f"{activation} needs the parameter(s) {', '.join(missing)}")
    values = {p.name: params.get(p.name, p.default) for p in entry.scalar_params}
    _api.check_params(entry, tuple(values.values()))
    return entry, values


def _count(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


class Linear(Layer):
    """A dense layer: ``y = activation(x @ weight + bias)``.

    ``weight`` has shape ``(in_features, out_features)`` (the transpose of
    ``torch.nn.Linear``'s, so the forward is ``x @ weight`` without a copy);
    ``x`` has shape ``(..., in_features)`` and the layer's dtype.  The forward
    writes the matrix product into a buffer the layer keeps and applies the
    bias and the activation to it in place; the backward computes the
    activation and bias gradients in one step, then ``grad_weight = x.T @ dz``
    and ``dz @ weight.T``.  Each ``backward`` sets ``grad_weight`` and
    ``grad_bias`` (not accumulated).

    The weight and bias start uniform in ``(-k, k)``, ``k = 1/sqrt(in_features)``
    (``torch.nn.Linear``'s default), drawn in float64 from ``rng`` (a
    ``numpy.random.Generator`` or a seed; None: fresh entropy), so a seed gives
    the same start in float32 and float64.

    The returned output (and gradient) are buffers reused by the next call:
    copy them to keep them.  The layer keeps a reference to ``x``: do not
    modify it between ``forward`` and ``backward``.
    """

    in_features: int
    out_features: int
    activation: str | None
    params: dict[str, Any]
    weight: np.ndarray
    bias: np.ndarray | None
    grad_weight: np.ndarray | None
    grad_bias: np.ndarray | None

    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: str | None = None,
        bias: bool = True,
        dtype: Any = np.float32,
        *,
        rng: np.random.Generator | int | None = None,
        **params: Any,
    ) -> None:
        self.in_features = _count(in_features, "in_features")
        self.out_features = _count(out_features, "out_features")
        self._entry, self.params = _dense_entry(activation, params)
        self.activation = None if self._entry is None else self._entry.name
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias must be True or False, got {type(bias).__name__}")
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        if not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        k = 1.0 / np.sqrt(self.in_features)
        self.weight = rng.uniform(-k, k, (self.in_features, self.out_features)).astype(dtype)
        self.bias = rng.uniform(-k, k, self.out_features).astype(dtype) if bias else None
        self.grad_weight = None
        self.grad_bias = None
        self._x: np.ndarray | None = None
        self._saved: np.ndarray | None = None
        self._buffers: dict[str, np.ndarray] = {}

    def __repr__(self) -> str:
        args = [str(self.in_features), str(self.out_features)]
        if self.activation is not None:
            args.append(repr(self.activation))
        if self.bias is None:
            args.append("bias=False")
        args.append(f"dtype={self.weight.dtype.name}")
        args += [f"{k}={v!r}" for k, v in self.params.items()]
        return f"Linear({', '.join(args)})"

    def parameters(self) -> dict[str, np.ndarray]:
        """``weight`` and ``bias`` (when the layer has one)."""
        p = {"weight": self.weight}
        if self.bias is not None:
            p["bias"] = self.bias
        return p

    def gradients(self) -> dict[str, np.ndarray | None]:
        """``grad_weight`` and ``grad_bias`` from the last ``backward``, by the same names."""
        g: dict[str, np.ndarray | None] = {"weight": self.grad_weight}
        if self.bias is not None:
            g["bias"] = self.grad_bias
        return g

    def _buffer(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape:
            buf = self._buffers[name] = np.empty(shape, self.weight.dtype)
        return buf

    def _check(self, a: Any, name: str, last: int) -> np.ndarray:
        if not isinstance(a, np.ndarray):
            a = np.asarray(a)
        dtype = self.weight.dtype
        if a.dtype != dtype:
            raise TypeError(
                f"{name} must be {dtype.name} (the layer's dtype), got {a.dtype}; "
                f"convert with {name}.astype(np.{dtype.name})"
            )
        if a.ndim < 1 or a.shape[-1] != last:
            raise ValueError(f"{name} must have shape (..., {last}), got {a.shape}")
        return a

    def forward(self, x: Any) -> np.ndarray:
        """``activation(x @ weight + bias)``, in a buffer the next forward overwrites."""
        x = self._check(x, "x", self.in_features)
        x2 = x.reshape(-1, self.in_features)
        shape = (x2.shape[0], self.out_features)
        z = np.matmul(x2, self.weight, out=self._buffer("z", shape))
        entry = self._entry
        if entry is None:
            if self.bias is not None:
                z += self.bias
            y = z
        elif entry.saves == "input":
            y = _bias_forward(entry, z, self.bias, self.params, self._buffer("y", shape))
        else:
            y = _bias_forward(entry, z, self.bias, self.params, z)
        self._x = x2
        self._saved = z if entry is None or entry.saves == "input" else y
        return y.reshape(*x.shape[:-1], self.out_features)

    def backward(
        self, grad: Any, *, out: np.ndarray | None = None, input_grad: bool = True
    ) -> np.ndarray | None:
        """dL/dx from dL/dy; sets ``grad_weight`` and ``grad_bias``.

        ``input_grad=False`` skips dL/dx (a first layer's) and returns None.
        """
        if self._saved is None:
            raise RuntimeError("Linear.backward called before forward")
        grad = self._check(grad, "grad", self.out_features)
        shape = self._saved.shape
        if grad.size != self._saved.size:
            raise ValueError(
                f"grad must have the shape of the last forward's output "
                f"(..., {self.out_features}) with {shape[0]} rows, got {grad.shape}"
            )
        g = grad.reshape(shape)
        entry = self._entry
        if entry is None:
            dz = g
            gb = None if self.bias is None else g.sum(0)
        else:
            dz, gb = _bias_backward(
                entry, g, self._saved, self.bias, self.params, self._buffer("dz", shape)
            )
        self.grad_weight = np.matmul(
            self._x.T, dz, out=self._buffer("grad_weight", self.weight.shape)
        )
        self.grad_bias = gb
        if not input_grad:
            return None
        xshape = (shape[0], self.in_features)
        if out is None:
            dx = np.matmul(dz, self.weight.T, out=self._buffer("dx", xshape))
        else:
            if not isinstance(out, np.ndarray) or out.dtype != self.weight.dtype:
                raise TypeError(f"out must be a {self.weight.dtype.name} NumPy array")
            if out.size != dz.shape[0] * self.in_features or out.shape[-1] != self.in_features:
                raise ValueError(f"out must have the shape of x, got {out.shape}")
            if not (out.flags.c_contiguous and out.flags.writeable):
                raise ValueError("out must be a writeable C-contiguous array")
            dx = np.matmul(dz, self.weight.T, out=out.reshape(xshape))
            return out
        return dx.reshape(*grad.shape[:-1], self.in_features)


class Sequential(Layer):
    """Layers applied in order: ``Sequential(Linear(4, 64, "gelu"), Linear(64, 1))``.

    ``backward`` runs them in reverse; ``parameters()``/``gradients()`` name each
    layer's by its position (``"0.weight"``, ``"0.bias"``, ``"1.weight"``...).
    """

    layers: list[Layer]

    def __init__(self, *layers: Layer) -> None:
        for i, lay in enumerate(layers):
            if not isinstance(lay, Layer):
                raise TypeError(f"layers[{i}] must be a fastact.nn layer, got {type(lay).__name__}")
        self.layers = list(layers)

    def __repr__(self) -> str:
        inner = "".join(f"\n  {lay!r}," for lay in self.layers)
        return f"Sequential({inner}\n)" if inner else "Sequential()"

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]

    def train(self, mode: bool = True) -> Sequential:
        """Training or evaluation mode, for every layer."""
        super().train(mode)
        for lay in self.layers:
            lay.train(mode)
        return self

    def forward(self, x: Any) -> np.ndarray:
        """The layers applied to ``x`` in order."""
        for lay in self.layers:
            x = lay.forward(x)
        return x

    def backward(
        self, grad: Any, *, out: np.ndarray | None = None, input_grad: bool = True
    ) -> np.ndarray | None:
        """dL/dx from dL/dy through every layer in reverse; sets their gradients.

        ``input_grad=False`` skips the first layer's dL/dx where it can (a ``Linear``).
        """
        last = len(self.layers) - 1
        for i in range(last, -1, -1):
            lay = self.layers[i]
            kw: dict[str, Any] = {"out": out} if i == 0 else {}
            if i == 0 and not input_grad and isinstance(lay, (Linear, Sequential)):
                kw = {"input_grad": False}
            grad = lay.backward(grad, **kw)
        return grad if input_grad or not self.layers else None

    def parameters(self) -> dict[str, np.ndarray]:
        """Every layer's parameters, as ``"{position}.{name}"``."""
        return {
            f"{i}.{k}": v for i, lay in enumerate(self.layers) for k, v in lay.parameters().items()
        }

    def gradients(self) -> dict[str, np.ndarray | None]:
        """Their gradients from the last ``backward``, by the same names."""
        return {
            f"{i}.{k}": v for i, lay in enumerate(self.layers) for k, v in lay.gradients().items()
        }


def _make_class(entry: Activation) -> type:
    name = class_name(entry.name)
    doc = (
        f"{entry.doc}\n\n    {entry.formula}\n\n"
        f"Layer form of ``fastact.{entry.name}``; backward from the saved {entry.saves}."
    )
    if entry.channel_param:
        sig = inspect.signature(ChannelLayer.__init__)
        params = list(sig.parameters.values())[1:]
        params[1] = params[1].replace(default=entry.params[entry.channel_param])
        ns = {"entry": entry, "__doc__": doc, "__module__": __name__}
        ns["__signature__"] = sig.replace(parameters=params)
        return type(name, (ChannelLayer,), ns)
    extra = [_INPLACE] + ([_SEED] if entry.has_training_mode else [])
    return type(
        name,
        (ActivationLayer,),
        {
            "entry": entry,
            "__doc__": doc,
            "__module__": __name__,
            "__signature__": _signature(entry, extra),
        },
    )


_CLASSES: dict[str, type] = {}


def layer_class(name: str) -> type[Layer]:
    """The layer class of activation ``name``."""
    cls = _CLASSES.get(name)
    if cls is None:
        cls = _CLASSES[name] = _make_class(fastact.activation(name))
    return cls


def layer(name: str, *args: Any, **kwargs: Any) -> Layer:
    """A layer of activation ``name``: ``layer("leaky_relu", 0.2)``."""
    return layer_class(name)(*args, **kwargs)


def __getattr__(attr: str):
    # Activations registered after import.
    for name in fastact.activations():
        if class_name(name) == attr:
            cls = layer_class(name)
            globals()[attr] = cls
            return cls
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


for _name in fastact.activations():
    globals()[class_name(_name)] = layer_class(_name)
    __all__.append(class_name(_name))
__all__.append("layer_class")
del _name
