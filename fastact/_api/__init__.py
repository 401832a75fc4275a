"""What the public functions call after the compiled fast path declines.

A call ``fastact.NAME(...)`` (:mod:`fastact._functions`, generated) runs:

1. the compiled fast path (:mod:`fastact._api.fast`) for a small plain call;
2. else the general path of the entry's kind, named here:
   :mod:`~fastact._api.elementwise` (``forward``/``backward``),
   :mod:`~fastact._api.channel` (``channel_forward``/``channel_backward``, prelu),
   :mod:`~fastact._api.rowwise` (``rowwise_forward``/``rowwise_backward``, softmax);
   each checks the arguments (:mod:`~fastact._api.checks`), sends arrays of
   other libraries to their handler (:mod:`~fastact._api.handlers`), asks
   :func:`fastact._dispatch.choose` for a backend and thread count, and runs
   the backend on buffers from :mod:`~fastact._api.buffers`.

A call with ``bias=`` runs the bias epilogue of :mod:`~fastact._api.epilogue`
instead (``bias_forward``/``bias_backward``, ``bias_channel_forward``/
``bias_channel_backward`` for prelu).

Entries added at run time (``fastact.register``) are kept by
:mod:`~fastact._api.entries`, with functions made by :mod:`~fastact._api.runtime`.
"""

from __future__ import annotations

from .channel import backward as channel_backward
from .channel import forward as channel_forward
from .checks import (
    as_input,
    check_axis,
    check_out,
    check_params,
    check_seed,
    public_signature,
    real,
    unexpected,
)
from .elementwise import backward, forward
from .epilogue import backward as bias_backward
from .epilogue import channel_backward as bias_channel_backward
from .epilogue import channel_forward as bias_channel_forward
from .epilogue import forward as bias_forward
from .handlers import register_handler
from .rowwise import backward as rowwise_backward
from .rowwise import forward as rowwise_forward

__all__ = [
    "as_input",
    "backward",
    "bias_backward",
    "bias_channel_backward",
    "bias_channel_forward",
    "bias_forward",
    "channel_backward",
    "channel_forward",
    "check_axis",
    "check_out",
    "check_params",
    "check_seed",
    "forward",
    "public_signature",
    "real",
    "register_handler",
    "rowwise_backward",
    "rowwise_forward",
    "unexpected",
]
