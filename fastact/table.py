"""The activation table: the one place where an activation is defined.

Every activation is one :class:`Activation` entry in :data:`TABLE`.  From it:

* the C kernels of the Cython backend are generated at build time
  (``fastact/_codegen``), and the Numba kernels at run time;
* the public functions ``fastact.NAME`` / ``fastact.NAME_backward`` are made;
* the tests and the benchmarks enumerate what to check and time.

Formulas are written in a small expression dialect: Python expression syntax
(``a if c else b``, ``and``/``or``/``not``, arithmetic, comparisons) with the
math helpers of :mod:`fastact._math.functions` and the intrinsics listed in
:mod:`fastact._codegen.dialect`.  Variables: ``x`` (the input), ``y`` (the
forward output), ``g`` (the incoming gradient), ``i`` (the element's flat
index, for counter-based random numbers) and every parameter by name.  The
same text becomes C (float or double) and Numba source, so each formula is
written exactly once.  The NumPy reference in :mod:`fastact.reference` is
written independently, in float64, and serves as the oracle in the tests.

This module imports nothing but the standard library: ``setup.py`` loads it
to generate the C kernels before NumPy or the package can be imported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

Number = int | float


@dataclass(frozen=True)
class Properties:
    """The five properties of an activation discussed in the design notes.

    ``differentiable`` is ``"everywhere"`` or ``"almost everywhere"`` (the
    piecewise ones, whose kinks get a sub-gradient); ``identity_near_zero``
    means f(0)=0 and f'(0)=1; ``output_range`` is the closed hull of the image
    (``-inf``/``inf`` for an unbounded side) at the default parameters.
    """

    nonlinear: bool
    differentiable: Literal["everywhere", "almost everywhere"]
    monotonic: bool
    identity_near_zero: bool
    output_range: tuple[float, float]

    @property
    def bounded(self) -> bool:
        lo, hi = self.output_range
        return math.isfinite(lo) and math.isfinite(hi)


@dataclass(frozen=True)
class Param:
    """A scalar parameter, named as in ``torch.nn.functional``."""

    name: str
    default: Number
    doc: str = ""


@dataclass(frozen=True)
class Activation:
    """One activation: its parameters, formulas and properties.

    ``forward`` maps ``x`` to ``y``; ``backward`` maps ``g`` and the saved
    tensor (``x`` when ``saves == "input"``, ``y`` when ``saves == "output"``)
    to dL/dx.  ``train_forward``/``train_backward`` (rrelu) replace them in
    training mode.  ``channel_param`` names a parameter that is an array with
    one value per channel (prelu's ``weight``); ``param_grad`` is the
    per-element contribution to that parameter's gradient, summed over all
    elements of a channel.  ``checks`` are parameter conditions (dialect
    expressions over the parameters) with the error raised when one fails.
    ``kinks`` lists, as expressions over the parameters, the points where a
    piecewise-linear activation changes slope (empty for smooth ones).
    """

    name: str
    formula: str
    forward: str
    backward: str
    saves: Literal["input", "output"]
    properties: Properties
    parameters: tuple[Param, ...] = ()
    doc: str = ""
    train_forward: str | None = None
    train_backward: str | None = None
    channel_param: str | None = None
    param_grad: str | None = None
    checks: tuple[tuple[str, str], ...] = ()
    backward_checks: tuple[tuple[str, str], ...] = ()
    kinks: tuple[str, ...] | None = None
    # Points away from which the activation is smooth; the tests keep their
    # finite differences this far from them.
    sample_range: tuple[float, float] = (-8.0, 8.0)
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def params(self) -> dict[str, Number]:
        """Parameter names and their defaults, in call order."""
        return {p.name: p.default for p in self.parameters}

    @property
    def scalar_params(self) -> tuple[Param, ...]:
        return tuple(p for p in self.parameters if p.name != self.channel_param)

    @property
    def has_training_mode(self) -> bool:
        return self.train_forward is not None

    @property
    def piecewise_linear(self) -> bool:
        return self.kinks is not None


INF = math.inf

TABLE: tuple[Activation, ...] = (
    Activation(
        name="sigmoid",
        formula="sigmoid(x) = 1 / (1 + exp(-x))",
        forward="sigmoid(x)",
        backward="g * (y * (1 - y))",
        saves="output",
        doc="Logistic function; saturates, so its gradient vanishes for large |x|.",
        properties=Properties(True, "everywhere", True, False, (0.0, 1.0)),
    ),
    Activation(
        name="tanh",
        formula="tanh(x) = (exp(x) - exp(-x)) / (exp(x) + exp(-x))",
        forward="tanh(x)",
        backward="g * ((1 - y) * (1 + y))",
        saves="output",
        doc="Hyperbolic tangent; zero-centred sigmoid, 2*sigmoid(2x) - 1.",
        properties=Properties(True, "everywhere", True, True, (-1.0, 1.0)),
    ),
    Activation(
        name="relu",
        formula="relu(x) = max(0, x)",
        forward="x if not (x <= 0) else 0",
        backward="keepnan(y, g if y > 0 else 0)",
        saves="output",
        doc="Rectified linear unit; relu'(0) = 0.",
        properties=Properties(True, "almost everywhere", True, False, (0.0, INF)),
        kinks=("0",),
    ),
    Activation(
        name="leaky_relu",
        formula="leaky_relu(x) = x if x >= 0 else negative_slope * x",
        parameters=(Param("negative_slope", 0.01, "slope for x < 0"),),
        forward="x if x > 0 else x * negative_slope",
        backward="keepnan(y, g if y > 0 else g * negative_slope)",
        saves="output",
        backward_checks=(
            (
                "negative_slope >= 0",
                "negative_slope must be >= 0 to compute the gradient from the output",
            ),
        ),
        doc="ReLU with a small fixed slope on the negative side; leaky'(0) = negative_slope.",
        properties=Properties(True, "almost everywhere", True, False, (-INF, INF)),
        kinks=("0",),
    ),
    Activation(
        name="prelu",
        formula="prelu(x) = x if x >= 0 else weight[c] * x   (c: the channel, axis 1)",
        parameters=(Param("weight", 0.25, "learned slope, one per channel or one in all"),),
        channel_param="weight",
        forward="x if x > 0 else x * weight",
        backward="keepnan(x, g if x > 0 else g * weight)",
        param_grad="0 if x > 0 else x * g",
        saves="input",
        doc=(
            "Parametric ReLU (He et al., 2015): the negative slope is learned per "
            "channel. Saves the input: the slope may be negative and dL/dweight "
            "needs x."
        ),
        properties=Properties(True, "almost everywhere", True, False, (-INF, INF)),
        kinks=("0",),
    ),
    Activation(
        name="rrelu",
        formula=(
            "rrelu(x) = x if x >= 0 else a * x, a ~ U(lower, upper) in training, "
            "(lower + upper) / 2 in eval"
        ),
        parameters=(
            Param("lower", 1.0 / 8.0, "lower bound of the random slope"),
            Param("upper", 1.0 / 3.0, "upper bound of the random slope"),
        ),
        forward="x if x > 0 else x * ((lower + upper) * 0.5)",
        backward="keepnan(y, g if y > 0 else g * ((lower + upper) * 0.5))",
        train_forward="x if x > 0 else x * uniform_slope(seed, i, lower, upper)",
        train_backward="keepnan(y, g if y > 0 else g * uniform_slope(seed, i, lower, upper))",
        saves="output",
        checks=(("lower <= upper", "lower must be <= upper"),),
        backward_checks=(
            ("lower >= 0", "lower must be >= 0 to compute the gradient from the output"),
        ),
        doc=(
            "Randomized leaky ReLU (Xu et al., 2015). In training each negative "
            "element's slope comes from a counter-based generator keyed by "
            "(seed, flat index), so backward regenerates it instead of storing it."
        ),
        properties=Properties(True, "almost everywhere", True, False, (-INF, INF)),
        kinks=("0",),
    ),
)

BY_NAME: dict[str, Activation] = {a.name: a for a in TABLE}


def kink_points(entry: Activation, params: dict[str, Number] | None = None) -> tuple[float, ...]:
    """Sorted points where a piecewise-linear ``entry`` changes slope (or jumps).

    ``params`` override the defaults.  ValueError for a smooth activation.
    """
    if entry.kinks is None:
        raise ValueError(f"{entry.name} is not piecewise linear")
    env = {**entry.params, **(params or {})}
    return tuple(sorted(float(eval(k, {"__builtins__": {}}, env)) for k in entry.kinks))


def kernel_entries() -> tuple[Activation, ...]:
    """The entries that get compiled kernels, in kernel-id order."""
    return TABLE
