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

Import with ``import fastact.sklearn``; it needs scikit-learn:
``pip install "fastact[sklearn]"``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

import numpy as np

import fastact
from fastact.integrations import require

_base = require(
    "sklearn.neural_network._base",
    "fastact.sklearn",
    "scikit-learn",
    'pip install "fastact[sklearn]"',
)

__all__ = ["ROUTED", "is_patched", "patch", "patched", "unpatch"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _dense(*arrays) -> bool:
    return all(type(a) is np.ndarray and a.dtype in _FLOATS for a in arrays)


def _activation(name: str, original: Callable) -> Callable:
    fn = getattr(fastact, name)
    kw = {"axis": 1} if name in ("softmax", "log_softmax") else {}

    def inplace(X):
        if not _dense(X) or not X.flags.writeable:
            return original(X)
        fn(X, out=X, **kw)

    inplace.__name__ = f"fastact_inplace_{name}"
    inplace.__doc__ = f"Compute fastact.{name} in place (routed by fastact.sklearn)."
    return inplace


def _derivative(name: str, original: Callable) -> Callable:
    fn = getattr(fastact, f"{name}_backward")

    def inplace_derivative(Z, delta):
        if not _dense(Z, delta) or not delta.flags.writeable:
            return original(Z, delta)
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


ROUTED: tuple[str, ...] = _routed()
"""The scikit-learn activations that :func:`patch` routes by default."""

_originals: dict[str, tuple[Callable | None, Callable | None]] = {}


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
        target = _NAMES[name]
        if target is None:
            acts[name] = _identity
            if orig_der is not None:
                ders[name] = _identity_derivative
            continue
        if orig_act is not None:
            acts[name] = _activation(target, orig_act)
        if orig_der is not None:
            ders[name] = _derivative(target, orig_der)


def _restore(names: Iterable[str]) -> None:
    acts, ders = _base.ACTIVATIONS, _base.DERIVATIVES
    for name in list(names):
        orig_act, orig_der = _originals.pop(name)
        if orig_act is not None:
            acts[name] = orig_act
        if orig_der is not None:
            ders[name] = orig_der


def unpatch() -> None:
    """Put scikit-learn's own functions back."""
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
