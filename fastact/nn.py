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
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

import fastact
from fastact import _api, _half
from fastact.table import Activation, camel_case

__all__ = ["ActivationLayer", "ChannelLayer", "Layer", "class_name", "layer"]

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
