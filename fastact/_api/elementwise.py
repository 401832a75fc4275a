"""The general path of elementwise entries (all but prelu and softmax).

``fastact.NAME(x, ...)`` comes here when the compiled fast path declines the
call (not a plain float32/float64 C-contiguous array, parameters to convert,
a backend other than Cython...): the arguments are checked, the backend and
thread count chosen by :func:`fastact._dispatch.choose`, and the backend's
``forward``/``backward`` run on flat buffers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _dispatch
from ..table import Activation
from .buffers import empty_result, plan, result
from .checks import as_input, check_out, check_params, check_seed, check_shapes
from .handlers import handler_for


def forward(entry: Activation, x: Any, out: Any, params: tuple, training=False, seed=None):
    """``entry``'s forward on ``x`` (into ``out`` when given)."""
    if type(x) is not np.ndarray and (h := handler_for(x)) is not None:
        return h.forward(entry, x, out, params, training, seed)
    a = as_input(x, "x")
    floats = check_params(entry, params)
    seed = check_seed(seed, training, False, entry.name) if entry.has_training_mode else 0
    if out is not None:
        check_out(out, a.shape, a.dtype, x)
    if a.size == 0:
        return empty_result(a, out)
    backend, nthreads = _dispatch.choose(entry, "forward", a.dtype, a.size)
    (src,), target, copy_to = plan([a], out, c_only=training)
    with _dispatch.running(nthreads) as nthreads:
        backend.forward(entry, src, target, floats, training, seed, nthreads)
    return result(x, target, out, copy_to)


def backward(
    entry: Activation,
    grad_output: Any,
    saved: Any,
    out: Any,
    params: tuple,
    training=False,
    seed=None,
):
    """``entry``'s gradient from ``grad_output`` and the saved tensor (into ``out``)."""
    if type(grad_output) is not np.ndarray and (h := handler_for(grad_output)) is not None:
        return h.backward(entry, grad_output, saved, out, params, training, seed)
    g = as_input(grad_output, "grad_output")
    s = check_shapes(g, as_input(saved, "saved"))
    floats = check_params(entry, params, backward=True)
    seed = check_seed(seed, training, True, entry.name) if entry.has_training_mode else 0
    if out is not None:
        check_out(out, g.shape, g.dtype, grad_output, "grad_output")
    if g.size == 0:
        return empty_result(g, out)
    backend, nthreads = _dispatch.choose(entry, "backward", g.dtype, g.size)
    (gs, ss), target, copy_to = plan([g, s], out, c_only=training)
    with _dispatch.running(nthreads) as nthreads:
        backend.backward(entry, gs, ss, target, floats, training, seed, nthreads)
    return result(grad_output, target, out, copy_to)
