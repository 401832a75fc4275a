"""Route scikit-learn's MLP activations to fastact kernels.

scikit-learn's ``MLPClassifier``/``MLPRegressor`` look their activation
functions up, at every call, in the dicts ``ACTIVATIONS`` and
``DERIVATIVES`` of ``sklearn.neural_network._base``.  :func:`patch` replaces
entries of those dicts (mutating them: rebinding them would not be seen) by
in-place fastact kernels; :func:`unpatch` puts the originals back::

    import fastact.sklearn
    from sklearn.neural_network import MLPClassifier

    with fastact.sklearn.patched():
        clf = MLPClassifier(hidden_layer_sizes=(256, 256)).fit(X, y)

Routed: ``identity`` (a no-op either way), ``logistic`` (fastact.sigmoid),
``tanh``, ``relu`` and, when the table has it, ``softmax`` (forward only:
scikit-learn has no softmax derivative).  The derivatives take the
activation's output ``Z`` and update ``delta`` in place, as scikit-learn's
do; ``Z`` may be float32 while ``delta`` is float64 (it is then cast).
Arrays that are not dense float32/float64 NumPy arrays go to scikit-learn's
own functions.  ``exp`` (the Poisson loss's output) is left alone.

Beyond those, every elementwise activation of the table without a required
parameter (``"gelu"``, ``"silu"``, ``"leaky_relu"``, ``"mish"``, ``"elu"``,
``"softplus"``...: :data:`ADDED`) becomes a valid ``activation=`` of
``MLPClassifier``/``MLPRegressor``, with its default parameters; their
parameter validation accepts the names while patched and is restored by
:func:`unpatch`.  A model fitted with one of them predicts only while
patched (scikit-learn looks the name up at every call).

While patched, the fit's forward and backward passes (``_forward_pass``,
``_backprop``, ``_compute_loss_grad`` of scikit-learn's MLP) apply the
intercept and the hidden activation to the matrix product in one step, and
the activation's derivative and the intercept gradient in another.  Where
the activation's gradient needs its input (``fastact.activation(name).saves
== "input"``), the pre-activation of each hidden layer is kept during that
gradient evaluation only; scikit-learn's ``activations`` list holds the
outputs as before, so its own activations give the same results.

Also while patched, the ``adam`` and ``sgd`` solvers' steps (``update_params``
of scikit-learn's ``AdamOptimizer`` and ``SGDOptimizer``) update the moments,
velocities and parameters in place instead of building about ten full-size
temporaries per parameter (Adam's in one compiled pass over each array).  They compute the same operations in the same
order, so the parameters are the same bits, except Adam's update of float32
parameters: scikit-learn computes it in float64 (its learning rate is a NumPy
float64), the patched step in float32, a difference of float32 rounding.

Import with ``import fastact.sklearn``; it needs scikit-learn:
``pip install "fastact[sklearn]"``.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

import fastact
from fastact.integrations import require
from fastact.nn import _bias_backward, _bias_forward
from fastact.table import Activation

_base = require(
    "sklearn.neural_network._base",
    "fastact.sklearn",
    "scikit-learn",
    'pip install "fastact[sklearn]"',
)
from sklearn.neural_network import _multilayer_perceptron as _mlp  # noqa: E402
from sklearn.neural_network import _stochastic_optimizers as _opt  # noqa: E402
from sklearn.utils._param_validation import StrOptions  # noqa: E402
from sklearn.utils.extmath import safe_sparse_dot  # noqa: E402

__all__ = ["ADDED", "ROUTED", "is_patched", "patch", "patched", "unpatch"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _dense(*arrays) -> bool:
    return all(type(a) is np.ndarray and a.dtype in _FLOATS for a in arrays)


def _activation(name: str, original: Callable | None) -> Callable:
    fn = getattr(fastact, name)
    kw = {"axis": 1} if fastact.activation(name).rowwise else {}

    def inplace(X):
        if not _dense(X) or not X.flags.writeable:
            if original is None:
                raise TypeError(
                    f"activation {name!r} needs a writeable float32/float64 NumPy array, "
                    f"got {type(X).__name__}"
                )
            return original(X)
        fn(X, out=X, **kw)

    inplace.__name__ = f"fastact_inplace_{name}"
    inplace.__doc__ = f"Compute fastact.{name} in place (routed by fastact.sklearn)."
    return inplace


def _derivative(name: str, original: Callable | None) -> Callable:
    entry = fastact.activation(name)
    fn = getattr(fastact, f"{name}_backward")

    def inplace_derivative(Z, delta):
        if _fused_derivative(Z, delta):
            return
        if not _dense(Z, delta) or not delta.flags.writeable:
            if original is None:
                raise TypeError(
                    f"the {name} derivative needs writeable float32/float64 NumPy arrays"
                )
            return original(Z, delta)
        if entry.saves == "input":
            raise RuntimeError(
                f"the {name} derivative needs the activation's input, which scikit-learn "
                f"does not keep: it is available inside a patched MLP's _backprop only"
            )
        fn(delta, Z, out=delta)

    inplace_derivative.__name__ = f"fastact_inplace_{name}_derivative"
    inplace_derivative.__doc__ = (
        f"delta *= {name}'(x), from the output Z, in place (fastact.{name}_backward)."
    )
    return inplace_derivative


def _identity(X):
    """The identity: nothing to do (routed by fastact.sklearn)."""


def _identity_derivative(Z, delta):
    """The identity's derivative: nothing to do (routed by fastact.sklearn)."""


# scikit-learn name -> fastact activation (None: the identity)
_NAMES = {
    "identity": None,
    "logistic": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "softmax": "softmax",
}


def _routed() -> tuple[str, ...]:
    have = set(fastact.activations())
    return tuple(k for k, v in _NAMES.items() if v is None or v in have)


def _added() -> tuple[str, ...]:
    """The table's elementwise activations scikit-learn does not have, usable by name alone."""
    return tuple(
        e.name
        for e in map(fastact.activation, fastact.activations())
        if not (e.rowwise or e.channel_param or e.has_training_mode)
        and not any(p.required for p in e.scalar_params)
        and e.name not in _base.ACTIVATIONS
    )


ADDED: tuple[str, ...] = _added()
"""The activation names :func:`patch` adds to scikit-learn's MLP."""

ROUTED: tuple[str, ...] = _routed() + ADDED
"""The scikit-learn activations that :func:`patch` routes (or adds) by default."""

_originals: dict[str, tuple[Callable | None, Callable | None]] = {}
# (class, its "activation" constraint) as they were before patch
_constraints: list[tuple[type, Any]] = []
# method name -> scikit-learn's own
_methods: dict[str, Callable] = {}


def _entry(name: str) -> Activation | None:
    """The fastact entry computing the hidden activation ``name``, when patched."""
    if name not in _originals:
        return None
    target = _NAMES.get(name, name)
    return None if target is None or target == "softmax" else fastact.activation(target)


# --- the fused passes ---------------------------------------------------


class _Frame:
    """What one patched ``_backprop`` keeps between its forward and backward passes."""

    def __init__(self, estimator: Any, entry: Activation) -> None:
        self.estimator = estimator
        self.entry = entry
        self.layers: dict[int, tuple[np.ndarray, int, np.ndarray, np.ndarray]] = {}
        self.bias_grads: dict[int, np.ndarray] = {}


_local = threading.local()


def _frames() -> list[_Frame]:
    frames = getattr(_local, "frames", None)
    if frames is None:
        frames = _local.frames = []
    return frames


def _frame_of(estimator: Any) -> _Frame | None:
    frames = _frames()
    return frames[-1] if frames and frames[-1].estimator is estimator else None


def _fused_derivative(Z, delta) -> bool:
    """delta = act'(x) * delta and the intercept gradient, for an output of the current pass."""
    frames = _frames()
    rec = frames[-1].layers.get(id(Z)) if frames else None
    if rec is None or rec[0] is not Z or not _dense(delta) or not delta.flags.writeable:
        return False
    frame = frames[-1]
    _, layer, saved, b = rec
    if saved.dtype != delta.dtype:
        saved, b = saved.astype(delta.dtype), b.astype(delta.dtype)
    _, gb = _bias_backward(frame.entry, delta, saved, b, {}, delta)
    frame.bias_grads[layer] = gb
    return True


def _forward_pass(self, activations):
    frame = _frame_of(self)
    if frame is None:
        return _methods["_forward_pass"](self, activations)
    entry = frame.entry
    last = self.n_layers_ - 2
    for i in range(self.n_layers_ - 1):
        z = safe_sparse_dot(activations[i], self.coefs_[i])
        b = self.intercepts_[i]
        if i == last or not _dense(z) or z.dtype != b.dtype:
            z += b
            name = self.out_activation_ if i == last else self.activation
            _base.ACTIVATIONS[name](z)
            activations[i + 1] = z
            continue
        if entry.saves == "input":
            y = _bias_forward(entry, z, b, {}, np.empty_like(z))
            frame.layers[id(y)] = (y, i, z, b)
        else:
            y = _bias_forward(entry, z, b, {}, z)
            frame.layers[id(y)] = (y, i, y, b)
        activations[i + 1] = y
    return activations


def _backprop(self, *args, **kwargs):
    entry = _entry(self.activation)
    if entry is None:
        return _methods["_backprop"](self, *args, **kwargs)
    frames = _frames()
    frames.append(_Frame(self, entry))
    try:
        return _methods["_backprop"](self, *args, **kwargs)
    finally:
        frames.pop()


def _compute_loss_grad(self, layer, sw_sum, activations, deltas, coef_grads, intercept_grads):
    frame = _frame_of(self)
    gb = None if frame is None else frame.bias_grads.pop(layer, None)
    if gb is None:
        return _methods["_compute_loss_grad"](
            self, layer, sw_sum, activations, deltas, coef_grads, intercept_grads
        )
    # scikit-learn's, with the intercept gradient the derivative has summed
    coef_grads[layer] = safe_sparse_dot(activations[layer].T, deltas[layer])
    coef_grads[layer] += self.alpha * self.coefs_[layer]
    coef_grads[layer] /= sw_sum
    intercept_grads[layer] = gb / sw_sum


_PASSES = {
    "_forward_pass": _forward_pass,
    "_backprop": _backprop,
    "_compute_loss_grad": _compute_loss_grad,
}


# --- the optimizers' steps, in place ------------------------------------
#
# scikit-learn's Adam and SGD steps build each update from fresh arrays (about
# ten full-size temporaries per parameter for Adam).  These do the same
# operations in the same order, updating the moments and velocities in place
# through one or two scratch arrays per parameter: the same bits, but for
# Adam's update of float32 parameters, which scikit-learn computes in float64
# (its learning rate is a NumPy float64) and rounds once when adding; here it
# stays float32, so the update differs by a few float32 ulps of itself.  A
# parameter whose gradient or state has another dtype (the float64 intercept
# gradients of a weighted float32 fit) takes scikit-learn's own step.


def _in_place(self, params, grads, states: tuple[str, ...], scalars) -> list[tuple] | None:
    """Run scikit-learn's own step on the parameters the in-place step cannot take.

    Those are the parameters whose gradient or state (``states``: the optimizer's
    attributes holding one array per parameter) is not a writeable ndarray of the
    parameter's dtype and shape, or whose dtype the scalars (Python or NumPy) would
    promote.  Returns the ``(param, grad, *state)`` tuples left to the caller, or
    None when scikit-learn's step took everything.
    """
    lists = [getattr(self, name) for name in states]
    if not all(len(a) == len(params) for a in (grads, *lists)):
        _optimizer_methods[type(self)][0](self, params, grads)
        return None
    done, rest = [], []
    for i, arrays in enumerate(zip(params, grads, *lists)):
        p = arrays[0]
        ok = all(
            type(a) is np.ndarray and a.dtype == p.dtype and a.shape == p.shape for a in arrays
        ) and all(a.flags.writeable for a in arrays[2:])
        (done if ok and np.result_type(*scalars, p) == p.dtype else rest).append(i)
    if rest:
        for name, a in zip(states, lists):
            setattr(self, name, [a[i] for i in rest])
        _optimizer_methods[type(self)][0](self, [params[i] for i in rest], [grads[i] for i in rest])
        for name, a in zip(states, lists):
            for i, new in zip(rest, getattr(self, name)):
                a[i] = new
            setattr(self, name, a)
    return [(params[i], grads[i], *(a[i] for a in lists)) for i in done] if done else None


def _adam_update_params(self, params, grads):
    beta_1, beta_2 = self.beta_1, self.beta_2
    t = self.t
    todo = _in_place(self, params, grads, ("ms", "vs"), (beta_1, beta_2, self.epsilon))
    if todo is None:
        return
    self.t = t + 1  # scikit-learn's step may have counted it already
    self.learning_rate = (
        self.learning_rate_init * np.sqrt(1 - beta_2**self.t) / (1 - beta_1**self.t)
    )
    lr = float(self.learning_rate)  # a NumPy float64 would make the update float64
    for arrays in todo:
        if all(a.flags.c_contiguous for a in arrays):
            ftype = arrays[0].dtype.type  # the scalars as NumPy rounds them against the arrays
            scalars = (1 - beta_1, beta_1, 1 - beta_2, beta_2, self.epsilon, -lr)
            _adam_kernel()(*(a.reshape(-1) for a in arrays), *map(ftype, scalars))
        else:
            _adam_step(*arrays, beta_1, beta_2, self.epsilon, lr)


@functools.cache
def _adam_kernel():
    """:func:`_adam_step` compiled into one pass over the flat arrays (Numba, on first
    use): each element's operations in the same order and type, so the same bits."""
    import numba

    # error_model="numpy": a division by zero gives inf as NumPy's does, with no
    # check per element (which would keep the loop from vectorizing)
    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def adam(param, grad, m, v, c1, b1, c2, b2, eps, nlr):  # pragma: no cover - compiled
        for i in range(param.size):
            g = grad[i]
            mi = m[i] * b1 + g * c1
            vi = v[i] * b2 + (g * g) * c2
            m[i] = mi
            v[i] = vi
            param[i] += (mi * nlr) / (np.sqrt(vi) + eps)

    return adam


def _adam_step(param, grad, m, v, beta_1, beta_2, epsilon, lr) -> None:
    """scikit-learn's Adam update of one parameter, in place, in NumPy passes."""
    # m = beta_1 * m + (1 - beta_1) * grad
    scratch = np.multiply(grad, 1 - beta_1)
    np.multiply(m, beta_1, out=m)
    m += scratch
    # v = beta_2 * v + (1 - beta_2) * grad**2
    np.multiply(grad, grad, out=scratch)
    scratch *= 1 - beta_2
    np.multiply(v, beta_2, out=v)
    v += scratch
    # param += -lr * m / (sqrt(v) + epsilon), in the parameters' dtype
    np.sqrt(v, out=scratch)
    scratch += epsilon
    update = np.multiply(m, -lr)
    np.divide(update, scratch, out=update)
    param += update


def _sgd_update_params(self, params, grads):
    lr, momentum = self.learning_rate, self.momentum
    todo = _in_place(self, params, grads, ("velocities",), (lr, momentum))
    for param, grad, velocity in todo or ():
        # velocity = momentum * velocity - lr * grad
        scratch = np.multiply(grad, lr)
        np.multiply(velocity, momentum, out=velocity)
        velocity -= scratch
        if self.nesterov:
            # param += momentum * velocity - lr * grad
            update = np.multiply(velocity, momentum)
            update -= scratch
            param += update
        else:
            param += velocity


# optimizer class -> (its update_params, inherited or not; the one its __dict__ had, or None)
_optimizer_methods: dict[type, tuple[Callable, Callable | None]] = {}
_OPTIMIZERS = {_opt.AdamOptimizer: _adam_update_params, _opt.SGDOptimizer: _sgd_update_params}


def _mlp_classes() -> list[type]:
    todo, seen = [_mlp.BaseMultilayerPerceptron], []
    while todo:
        cls = todo.pop()
        seen.append(cls)
        todo += cls.__subclasses__()
    return seen


def _install() -> None:
    """The fused passes and the extended validation, once."""
    if _methods:
        return
    base = _mlp.BaseMultilayerPerceptron
    for name, fn in _PASSES.items():
        _methods[name] = base.__dict__[name]
        setattr(base, name, fn)
    for cls in _mlp_classes():
        rules = cls.__dict__.get("_parameter_constraints")
        if rules is None or "activation" not in rules:
            continue
        old = rules["activation"]
        new = []
        for rule in old:
            if isinstance(rule, StrOptions):
                rule = StrOptions(rule.options | set(ADDED), deprecated=rule.deprecated)
            new.append(rule)
        _constraints.append((cls, old))
        rules["activation"] = new
    for cls, fn in _OPTIMIZERS.items():
        _optimizer_methods[cls] = (cls.update_params, cls.__dict__.get("update_params"))
        cls.update_params = fn


def _uninstall() -> None:
    base = _mlp.BaseMultilayerPerceptron
    for name, fn in _methods.items():
        setattr(base, name, fn)
    _methods.clear()
    for cls, old in _constraints:
        cls.__dict__["_parameter_constraints"]["activation"] = old
    _constraints.clear()
    for cls, (_, own) in _optimizer_methods.items():
        if own is None:
            del cls.update_params
        else:
            cls.update_params = own
    _optimizer_methods.clear()


def is_patched() -> bool:
    """Whether :func:`patch` is in effect."""
    return bool(_originals)


def patch(names: Iterable[str] | None = None) -> None:
    """Route scikit-learn's MLP activations (all of :data:`ROUTED`, or ``names``) to fastact.

    Idempotent; the originals are kept for :func:`unpatch`.
    """
    names = ROUTED if names is None else tuple(names)
    for name in names:
        if name not in ROUTED:
            raise ValueError(f"cannot route {name!r}; choose from {', '.join(ROUTED)}")
    acts, ders = _base.ACTIVATIONS, _base.DERIVATIVES
    for name in names:
        if name in _originals:
            continue
        orig_act, orig_der = acts.get(name), ders.get(name)
        _originals[name] = (orig_act, orig_der)
        target = _NAMES.get(name, name)
        if target is None:
            acts[name] = _identity
            if orig_der is not None:
                ders[name] = _identity_derivative
            continue
        if name in ADDED:
            acts[name] = _activation(target, None)
            ders[name] = _derivative(target, None)
            continue
        if orig_act is not None:
            acts[name] = _activation(target, orig_act)
        if orig_der is not None:
            ders[name] = _derivative(target, orig_der)
    if _originals:
        _install()


def _restore(names: Iterable[str]) -> None:
    acts, ders = _base.ACTIVATIONS, _base.DERIVATIVES
    for name in list(names):
        orig_act, orig_der = _originals.pop(name)
        if name in ADDED:
            acts.pop(name, None)
            ders.pop(name, None)
            continue
        if orig_act is not None:
            acts[name] = orig_act
        if orig_der is not None:
            ders[name] = orig_der
    if not _originals:
        _uninstall()


def unpatch() -> None:
    """Put scikit-learn's own functions (and its parameter validation) back."""
    _restore(_originals)


@contextlib.contextmanager
def patched(names: Iterable[str] | None = None) -> Iterator[None]:
    """``with patched():`` routes to fastact inside the block only.

    Nested use is fine: what was patched before the block stays patched after it.
    """
    before = set(_originals)
    patch(names)
    try:
        yield
    finally:
        _restore(set(_originals) - before)
