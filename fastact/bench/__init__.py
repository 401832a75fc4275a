"""``python -m fastact bench``: every activation against the streaming limit and its peers.

An elementwise activation over a large array cannot run faster than the
cheapest kernel that moves the same bytes: the *streaming limit*, measured in
the same run by ``fastact._backends.cython._kernels.stream`` (read one array
and write one for a forward, read two and write one for a backward, with the
kernels' own chunking and threads).  For every activation, dtype, pass, size
and thread count this times fastact, the limit and the peers (NumPy, PyTorch,
numexpr: those installed) on the same arrays.  All data are made in process.

Passes: ``fwd`` (``f(x, out=y)``), ``fwd_inplace`` (``f(x, out=x)``) and
``bwd`` (``f_backward(g, saved, out=dx)``).  Times are wall clock; each
figure is the best of several interleaved samples (the median is kept in
the JSON).  In-place calls run on fresh copies of the input every time
(copying is not timed).

Also measured: inputs whose results underflow (x uniform in [-100, -80]) next
to N(0, 1) inputs, and each entry against the baseline the table names for
it (rrelu in training mode and prelu with its weight gradient, against
leaky_relu), and the compute floor: exp, sigmoid, tanh, silu and exact gelu
against hand-written AVX-512/AVX2 loops of the same accuracy, compiled at
benchmark time (:mod:`.floor`; skipped, with the reason, where that cannot
be done).  The output is one summary table, the floor table and a line on
the speed targets; ``--detail`` prints every table and target, ``--json``
keeps all.

Modules: :mod:`.cases` (what is timed, the targets), :mod:`.peers` (the
implementations), :mod:`.timing` (the one timing loop, shared with ``tune``
and ``benchmarks/``), :mod:`.sections` (the main, denormal and pairs
sections), :mod:`.floor` (the floor section), :mod:`.report` (the tables),
:mod:`.plot` and :mod:`.cli`.
"""

from __future__ import annotations

from .cases import (
    DEFAULT_SIZES,
    PASSES,
    QUICK_SIZES,
    Case,
    all_cases,
    cases_of,
    make_input,
    shape_for,
    target,
)
from .cli import SCHEMA, _sizes, add_arguments, run, settings_from
from .peers import Fastact, Impl, Limit, NumExpr, NumPy, Torch, implementations, numpy_call
from .plot import plot, require_matplotlib
from .report import check_targets, format_summary
from .sections import PAR_MIN, Arrays, calls_for, make_arrays
from .timing import ROUNDS, Timing, best_time, measure, measure_together

__all__ = [
    "DEFAULT_SIZES",
    "PAR_MIN",
    "PASSES",
    "QUICK_SIZES",
    "ROUNDS",
    "SCHEMA",
    "Arrays",
    "Case",
    "Fastact",
    "Impl",
    "Limit",
    "NumExpr",
    "NumPy",
    "Timing",
    "Torch",
    "_sizes",
    "add_arguments",
    "all_cases",
    "best_time",
    "calls_for",
    "cases_of",
    "check_targets",
    "format_summary",
    "implementations",
    "make_arrays",
    "make_input",
    "measure",
    "measure_together",
    "numpy_call",
    "plot",
    "require_matplotlib",
    "run",
    "settings_from",
    "shape_for",
    "target",
]
