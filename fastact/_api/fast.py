"""The compiled fast path, bound once: ``fastact._backends.cython._kernels.fast_*``.

Each public function tries its fast function first; it runs a small plain
call (an exact float32/float64 C-contiguous ndarray, float parameters) in C
and returns the result, or returns None to send the call down the general
path (:mod:`fastact._api.elementwise` and its siblings).  Bias calls
(``bias_*``: the entry's kernel at ``x + bias`` and, backward, the bias
gradient) are taken the same way, the general path being
:mod:`fastact._api.epilogue`.  Without the
compiled extension every fast function is :func:`decline`.
"""

from __future__ import annotations

from typing import Any


def decline(*args: Any) -> None:
    """The stand-in of a fast function when the extension is missing: always None."""
    return None


try:
    from .._backends.cython import _kernels
except ImportError:
    _kernels = None

forward = getattr(_kernels, "fast_forward", decline)
backward = getattr(_kernels, "fast_backward", decline)
train_forward = getattr(_kernels, "fast_train_forward", decline)
train_backward = getattr(_kernels, "fast_train_backward", decline)
channel_forward = getattr(_kernels, "fast_channel_forward", decline)
channel_backward = getattr(_kernels, "fast_channel_backward", decline)
rowwise_forward = getattr(_kernels, "fast_rowwise_forward", decline)
rowwise_backward = getattr(_kernels, "fast_rowwise_backward", decline)
bias_forward = getattr(_kernels, "fast_bias_forward", decline)
bias_backward = getattr(_kernels, "fast_bias_backward", decline)
train_bias_forward = getattr(_kernels, "fast_train_bias_forward", decline)
train_bias_backward = getattr(_kernels, "fast_train_bias_backward", decline)

if _kernels is not None:
    # the bias gradient's blocks, which fix its order of summation, have one owner
    from .epilogue import BLOCK_MIN, BLOCKS, PER_CHANNEL

    _kernels.set_bias_blocks(BLOCKS, BLOCK_MIN, PER_CHANNEL)
    # so are the rows that 16-bit calls run through the row kernels' buffers, and the
    # blocks of the blockwise 16-bit drivers
    from .. import _half

    _kernels.half_set_limits(_half.NATIVE_ROW_MAX, _half.ROW_BATCH)

# rrelu's seed as the fast functions take it (a uint64_t)
SEED_LIMIT = 2**64
