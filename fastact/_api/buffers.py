"""The buffers a kernel runs on, and what a call returns.

Kernels read and write flat, aligned, native-order buffers.  These helpers
pick them (the caller's arrays when they qualify, copies or a temporary
otherwise) and shape the result by NumPy's conventions.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _order(arrays: list[np.ndarray], c_only: bool) -> str | None:
    """'C' or 'F' when all arrays are contiguous in that order (aligned, native), else None."""
    if not all(a.flags.aligned and a.dtype.isnative for a in arrays):
        return None
    if all(a.flags.c_contiguous for a in arrays):
        return "C"
    if not c_only and all(a.flags.f_contiguous for a in arrays):
        return "F"
    return None


def c_copy(a: np.ndarray) -> np.ndarray:
    """A C-contiguous, aligned array equal to ``a`` (``a`` itself when it is one)."""
    if a.flags.c_contiguous and a.flags.aligned:
        return a
    return np.array(a, order="C", copy=True)


def overlaps(arrays: list[np.ndarray], out: np.ndarray) -> bool:
    """Whether ``out`` shares memory with an input other than itself."""
    return any(a is not out and np.may_share_memory(a, out) for a in arrays)


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
            inputs = [c_copy(a) for a in inputs]
            order = "C"
        return inputs, np.empty(shape, inputs[0].dtype, order=order), None
    order = _order(inputs + [out], c_only)
    if order is not None and not overlaps(inputs, out):
        return inputs, out, None
    order = _order(inputs, c_only)
    if order is None:
        inputs = [c_copy(a) for a in inputs]
        order = "C"
    return inputs, np.empty(shape, inputs[0].dtype, order=order), out


def result(value: Any, target: np.ndarray, out: np.ndarray | None, copy_to: np.ndarray | None):
    """What the call returns, by NumPy's ufunc conventions.

    With ``out`` given: ``out`` itself (filled from ``target`` when the kernel
    wrote a temporary), also for a 0-d one.  Without: the new array, or a
    NumPy scalar when ``value`` was a Python scalar.
    """
    if copy_to is not None:
        copy_to[...] = target
    if out is not None:
        return out
    if target.ndim == 0 and not isinstance(value, np.ndarray):
        return target[()]
    return target


def empty_result(a: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """The result of a call on an empty array (nothing to compute)."""
    return out if out is not None else np.empty_like(a)
