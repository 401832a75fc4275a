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
from functools import cached_property
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
    """A scalar parameter, named as in ``torch.nn.functional``.

    ``default`` None makes the parameter required (``example`` is then the
    value tests and benchmarks use).  ``choices`` makes it a string option,
    passed to the kernels as its index in ``choices``.
    """

    name: str
    default: Number | str | None
    doc: str = ""
    example: Number | None = None
    choices: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        return self.default is None


Cost = Literal["cheap", "transcendental", "compound", "special"]
"""What one element costs: ``cheap`` (a few flops, no transcendental call: the
kernel is memory-bound), ``transcendental`` (one exp, log or tanh, or a
rational approximation), ``compound`` (two of them), ``special`` (a special
function such as erfc)."""


@dataclass(frozen=True)
class Variant:
    """Parameters under which an activation is timed as a case of its own.

    The benchmark labels it ``NAME[label]`` (``gelu[tanh]``); ``cost`` is its
    cost class when it differs from the entry's.
    """

    label: str
    params: dict = field(default_factory=dict, compare=False, hash=False)
    cost: Cost | None = None


@dataclass(frozen=True)
class TorchForm:
    """How PyTorch computes the activation: its layer and its kernels.

    ``layer`` is the ``torch.nn`` class name (also the name of fastact's layer).
    The calls are Python expressions over ``torch``, ``F``
    (``torch.nn.functional``), ``nn`` (``torch._C._nn``), ``aten``
    (``torch.ops.aten``), the tensors ``x``, ``y``, ``g``, ``out`` (``from_numpy``
    views; ``out`` may be ``x``, then ``inplace`` is True), the channel
    parameter as a tensor and the other parameters by name.  ``forward``
    writes f(x) into ``out``; ``backward`` writes dL/dx into ``out``; the
    ``train_`` forms are the training mode.  ``backward_setup`` is evaluated
    once, untimed, and bound to ``buf`` (a buffer PyTorch's backward reads).
    """

    layer: str
    forward: str | None = None
    backward: str | None = None
    backward_setup: str | None = None
    train_forward: str | None = None
    train_backward: str | None = None


@dataclass(frozen=True)
class NumpyForm:
    """The activation as a NumPy user writes it, for the benchmarks' NumPy peer.

    ``forward`` is a Python expression over ``np``, ``x``, ``out`` and the
    parameters by name (the channel parameter broadcastable against ``x``)
    that writes f(x) into ``out``; ``out`` may be ``x``, so temporaries are
    made before ``out`` is written.  ``backward`` writes dL/dx from ``g``, ``x``
    and ``y`` into ``out`` (for a channel parameter: a tuple of ``out`` and the
    parameter's gradient).  ``numexpr`` is the forward as a numexpr string.
    ``when`` restricts the forms to these parameter values.
    """

    forward: str
    backward: str | None = None
    numexpr: str | None = None
    when: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Tolerance:
    """Error bounds the tests allow beyond the usual few ulp, as NumPy expressions.

    Variables: ``x``, the parameters, and for rowwise entries ``rowmax`` and
    ``rowlen``.  ``condition``: extra ulp of the result (the formula's
    condition); ``underflow``: absolute error in units of the smallest normal
    number where a factor from exp is flushed to 0 (forward; times ``|g|``
    backward); ``forward_scale``: the forward error is absolute, in ulp of
    this quantity.
    """

    condition: str | None = None
    underflow: str | None = None
    forward_scale: str | None = None


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
    ``kinks`` lists, as expressions over the parameters, the points where the
    derivative jumps (None for activations smooth everywhere);
    ``piecewise_linear`` marks the activations that are linear between them.
    ``row_forward``/``row_backward`` make an entry rowwise (softmax): each row
    along ``axis`` is first reduced (max, then sum...), then mapped.
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
    piecewise_linear: bool = False
    # Rowwise entries (softmax): reductions over each row along ``axis``, in
    # order, as (name, "max" | "sum", expression) or (name, "log", sum_name) for
    # the log of an earlier sum taken before rounding to the array's type;
    # forward/backward then use the reduced names elementwise.
    row_forward: tuple[tuple[str, str, str], ...] | None = None
    row_backward: tuple[tuple[str, str, str], ...] | None = None
    # Points away from which the activation is smooth; the tests keep their
    # finite differences this far from them.
    sample_range: tuple[float, float] = (-8.0, 8.0)
    # The cost class of the forward and (None: the same) of the backward.
    cost: Cost = "transcendental"
    backward_cost: Cost | None = None
    # Parameter sets the tests check besides the defaults.
    test_params: tuple[dict, ...] = field(default=(), compare=False, hash=False)
    tolerance: Tolerance = Tolerance()
    variants: tuple[Variant, ...] = ()
    torch: TorchForm | None = None
    numpy: NumpyForm | None = None
    # (name of another entry, ratio): this entry in training mode (or forward
    # plus backward with its channel parameter's gradient) costs at most
    # ratio times that entry's same passes.
    baseline: tuple[str, float] | None = None
    # Registration data of user entries (fastact.register); empty in TABLE.
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def params(self) -> dict[str, Number]:
        """Parameter names and their defaults, in call order."""
        return {p.name: p.default for p in self.parameters}

    @property
    def example_params(self) -> dict[str, Number | str]:
        """The defaults, with the example value of each required parameter."""
        return {p.name: p.example if p.default is None else p.default for p in self.parameters}

    @cached_property
    def scalar_params(self) -> tuple[Param, ...]:
        """The parameters passed to the kernels as numbers (all but a channel one)."""
        return tuple(p for p in self.parameters if p.name != self.channel_param)

    @cached_property
    def kernel_id(self) -> int | None:
        """The index of the entry's compiled kernels: its position in :data:`TABLE`.

        An equal copy (an entry unpickled in a worker process) has the same;
        an entry that is not in the table (one added by ``fastact.register``,
        or a modified copy) has None: it has no compiled kernels.
        """
        for k, entry in enumerate(TABLE):
            if entry is self or entry == self:
                return k
        return None

    @property
    def rowwise(self) -> bool:
        return self.row_forward is not None

    @property
    def has_training_mode(self) -> bool:
        return self.train_forward is not None

    def cost_of(self, pass_: str) -> Cost:
        """The cost class of ``pass_`` ("forward"/"fwd" or "backward"/"bwd")."""
        if pass_ in ("backward", "bwd") and self.backward_cost is not None:
            return self.backward_cost
        return self.cost

    @property
    def layer_name(self) -> str:
        """The layer class name: PyTorch's where it has one, else CamelCase of the name."""
        return self.torch.layer if self.torch is not None else camel_case(self.name)


def camel_case(name: str) -> str:
    """``log_softmax`` -> ``LogSoftmax``: the layer name of an entry PyTorch lacks."""
    return "".join(part.capitalize() for part in name.split("_"))


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
        backward_cost="cheap",
        torch=TorchForm(
            layer="Sigmoid",
            forward="torch.sigmoid(x, out=out)",
            backward="aten.sigmoid_backward.grad_input(g, y, grad_input=out)",
        ),
        numpy=NumpyForm(
            forward="np.reciprocal(np.exp(-x) + 1, out=out)",
            backward="np.multiply(g * y, 1 - y, out=out)",
            numexpr="1 / (1 + exp(-x))",
        ),
    ),
    Activation(
        name="tanh",
        formula="tanh(x) = (exp(x) - exp(-x)) / (exp(x) + exp(-x))",
        forward="tanh(x)",
        backward="g * ((1 - y) * (1 + y))",
        saves="output",
        doc="Hyperbolic tangent; zero-centred sigmoid, 2*sigmoid(2x) - 1.",
        properties=Properties(True, "everywhere", True, True, (-1.0, 1.0)),
        backward_cost="cheap",
        torch=TorchForm(
            layer="Tanh",
            forward="torch.tanh(x, out=out)",
            backward="aten.tanh_backward.grad_input(g, y, grad_input=out)",
        ),
        numpy=NumpyForm(
            forward="np.tanh(x, out=out)",
            backward="np.multiply(g, 1 - y * y, out=out)",
            numexpr="tanh(x)",
        ),
    ),
    Activation(
        name="relu",
        formula="relu(x) = max(0, x)",
        forward="x if not (x < 0) else 0",
        backward="keepnan(y, g if y > 0 else 0)",
        saves="output",
        doc="Rectified linear unit; relu'(0) = 0. relu(-0) = -0 (x itself for x >= 0), as in PyTorch.",
        properties=Properties(True, "almost everywhere", True, False, (0.0, INF)),
        kinks=("0",),
        piecewise_linear=True,
        cost="cheap",
        torch=TorchForm(
            layer="ReLU",
            forward="torch.clamp_min(x, 0, out=out)",
            backward="aten.threshold_backward.grad_input(g, y, 0.0, grad_input=out)",
        ),
        numpy=NumpyForm(
            forward="np.maximum(x, 0, out=out)",
            backward="np.multiply(g, y > 0, out=out)",
            numexpr="where(x > 0, x, 0)",
        ),
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
        piecewise_linear=True,
        cost="cheap",
        torch=TorchForm(
            layer="LeakyReLU",
            forward="nn.leaky_relu(x, negative_slope, out=out)",
            backward="aten.leaky_relu_backward.grad_input(g, y, negative_slope, True, grad_input=out)",
        ),
        numpy=NumpyForm(
            forward="np.copyto(out, np.where(x > 0, x, x * negative_slope))",
            backward="np.multiply(g, np.where(y > 0, 1, negative_slope), out=out)",
            numexpr="where(x > 0, x, x * negative_slope)",
        ),
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
        piecewise_linear=True,
        cost="cheap",
        baseline=("leaky_relu", 1.5),
        torch=TorchForm(
            layer="PReLU",
            forward="out.copy_(torch._prelu_kernel(x, weight))",
            backward="(out.copy_((r := aten._prelu_kernel_backward(g, x, weight))[0]), r[1].sum())",
        ),
        numpy=NumpyForm(
            forward="np.copyto(out, np.where(x > 0, x, x * weight))",
            backward="(np.multiply(g, np.where(x > 0, 1, weight), out=out), np.where(x > 0, 0, x * g).sum(axis=tuple(a for a in range(x.ndim) if a != 1) or None))",
            numexpr="where(x > 0, x, x * weight)",
        ),
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
        piecewise_linear=True,
        cost="cheap",
        baseline=("leaky_relu", 1.3),
        torch=TorchForm(
            layer="RReLU",
            forward="nn.leaky_relu(x, (lower + upper) / 2, out=out)",
            backward="aten.leaky_relu_backward.grad_input(g, y, (lower + upper) / 2, True, grad_input=out)",
            backward_setup="torch.empty_like(x).uniform_(lower, upper)",
            train_forward="F.rrelu(x, lower, upper, training=True, inplace=inplace)",
            train_backward="aten.rrelu_with_noise_backward.out(g, x, buf, lower, upper, True, False, out=out)",
        ),
        numpy=NumpyForm(
            forward="np.copyto(out, np.where(x > 0, x, x * ((lower + upper) / 2)))",
            backward="np.multiply(g, np.where(y > 0, 1, (lower + upper) / 2), out=out)",
            numexpr="where(x > 0, x, x * ((lower + upper) * 0.5))",
        ),
    ),
    Activation(
        name="elu",
        formula="elu(x) = x if x > 0 else alpha * (exp(x) - 1)",
        parameters=(Param("alpha", 1.0, "value approached as x -> -inf is -alpha"),),
        forward="x if x > 0 else alpha * expm1(x)",
        backward="keepnan(y, g if y > 0 else g * (y + alpha))",
        saves="output",
        backward_cost="cheap",
        backward_checks=(
            ("alpha >= 0", "alpha must be >= 0 to compute the gradient from the output"),
        ),
        doc=(
            "Exponential linear unit. Saves the output: the slope alpha * exp(x) is "
            "y + alpha for x <= 0 (within a few ulp of alpha, absolutely), so the "
            "backward reads no exp and the forward may run in place. The gradient "
            "needs alpha >= 0 (y > 0 then tells the two pieces apart)."
        ),
        properties=Properties(True, "everywhere", True, True, (-1.0, INF)),
        test_params=({"alpha": 0.5},),
        torch=TorchForm(
            layer="ELU",
            forward="nn.elu(x, alpha, 1.0, 1.0, out=out)",
            backward="aten.elu_backward.grad_input(g, alpha, 1.0, 1.0, True, y, grad_input=out)",
        ),
        numpy=NumpyForm(
            forward="np.add(np.maximum(x, 0), alpha * np.expm1(np.minimum(x, 0)), out=out)",
            backward="np.multiply(g, np.where(y > 0, 1, y + alpha), out=out)",
            numexpr="where(x > 0, x, alpha * expm1(x))",
        ),
    ),
    Activation(
        name="selu",
        formula="selu(x) = scale * (x if x > 0 else alpha * (exp(x) - 1))",
        forward="1.0507009873554805 * (x if x > 0 else 1.6732632423543772 * expm1(x))",
        # alpha * scale in two parts in float32 (1.7580993f + 2.33e-8): the slope
        # at y = -1.7580993f, where x << 0 rounds to, is 2.33e-8, not 0
        backward=(
            "keepnan(y, g * 1.0507009873554805 if y > 0 else "
            "g * ((y + 1.7580993408473766) + by_type(2.3296717444054593e-08, 0.0)))"
        ),
        saves="output",
        backward_cost="cheap",
        doc=(
            "Scaled ELU (Klambauer et al., 2017) with its fixed alpha and scale. "
            "Saves the output, as elu: the slope for x <= 0 is y + alpha * scale."
        ),
        properties=Properties(True, "almost everywhere", True, False, (-1.7580993408473766, INF)),
        kinks=("0",),
        torch=TorchForm(
            layer="SELU",
            forward="nn.elu(x, 1.6732632423543772, 1.0507009873554805, 1.0, out=out)",
            backward="aten.elu_backward.grad_input(g, 1.6732632423543772, 1.0507009873554805, 1.0, True, y, grad_input=out)",
        ),
        numpy=NumpyForm(
            forward="np.multiply(np.maximum(x, 0) + 1.6732632423543772 * np.expm1(np.minimum(x, 0)), 1.0507009873554805, out=out)",
            numexpr="where(x > 0, 1.0507009873554805 * x, 1.7580993408473766 * expm1(x))",
        ),
    ),
    Activation(
        name="celu",
        formula="celu(x) = x if x > 0 else alpha * (exp(x / alpha) - 1)",
        parameters=(Param("alpha", 1.0, "scale of the negative part; not 0"),),
        forward="x if x > 0 else alpha * expm1(x / alpha)",
        backward="keepnan(y, g if y > 0 else g * ((y + alpha) / alpha))",
        saves="output",
        backward_cost="cheap",
        checks=(("alpha != 0", "alpha must not be 0"),),
        doc=(
            "Continuously differentiable ELU. Saves the output, as elu: the slope "
            "exp(x / alpha) is (y + alpha) / alpha for x <= 0, for either sign of alpha "
            "(y <= 0 there)."
        ),
        properties=Properties(True, "everywhere", True, True, (-1.0, INF)),
        test_params=({"alpha": 2.0},),
        torch=TorchForm(
            layer="CELU",
            forward="nn.elu(x, alpha, 1.0, 1.0 / alpha, out=out)",
            backward="aten.elu_backward.grad_input(g, alpha, 1.0, 1.0 / alpha, True, y, grad_input=out)",
        ),
        numpy=NumpyForm(
            forward="np.add(np.maximum(x, 0), alpha * np.expm1(np.minimum(x, 0) / alpha), out=out)",
            numexpr="where(x > 0, x, alpha * expm1(x / alpha))",
        ),
    ),
    Activation(
        name="gelu",
        formula="gelu(x) = x * Phi(x), or x * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2",
        parameters=(
            Param(
                "approximate", "none", "'none' (exact, erfc) or 'tanh'", choices=("none", "tanh")
            ),
        ),
        forward="gelu_tanh(x) if approximate > 0.5 else gelu_erf(x)",
        backward="g * (gelu_tanh_grad(x) if approximate > 0.5 else gelu_erf_grad(x))",
        saves="input",
        doc=(
            "Gaussian error linear unit. Exact form via erfc, which keeps relative "
            "accuracy for x << 0 (PyTorch's 1 + erf loses it all below x = -5.5): Phi "
            "is computed from x itself (x**2 split exactly), within 4 ulp per unit of condition number also for "
            "x << 0, and 0 exactly where x Phi(x) is below the normal range. The tanh form is x * sigmoid(2u); rounding u costs about x^3/4 "
            "ulp, and it is 0 where the result is below the normal range. Saves the input: gelu is not invertible."
        ),
        properties=Properties(True, "everywhere", False, False, (-0.16997120747990366, INF)),
        test_params=({"approximate": "tanh"},),
        tolerance=Tolerance(
            # for 'none', that of the float64 reference, which rounds -x / sqrt(2)
            condition="x * x if approximate == 'none' else 0.25 * abs(x) ** 3",
            underflow="0 if approximate == 'none' else 2 * abs(x) + 0.5 * abs(x) ** 3",
        ),
        cost="special",
        variants=(Variant("tanh", {"approximate": "tanh"}, cost="compound"),),
        torch=TorchForm(
            layer="GELU",
            forward="nn.gelu(x, approximate=approximate, out=out)",
            backward="aten.gelu_backward.grad_input(g, x, approximate=approximate, grad_input=out)",
        ),
        numpy=NumpyForm(
            forward="np.multiply(x * 0.5, 1 + np.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)), out=out)",
            numexpr="0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))",
            when={"approximate": "tanh"},
        ),
    ),
    Activation(
        name="silu",
        formula="silu(x) = x * sigmoid(x)",
        forward="silu(x)",
        backward="g * silu_grad(x)",
        saves="input",
        doc=(
            "Sigmoid-weighted linear unit (swish). 0 exactly where the result is below "
            "the normal range (x < -91.86 in float32; PyTorch's is 0 from x < -88.7). "
            "Saves the input: silu is not invertible."
        ),
        properties=Properties(True, "everywhere", False, False, (-0.27846454276107374, INF)),
        tolerance=Tolerance(underflow="2 * (1 + abs(x))"),
        torch=TorchForm(
            layer="SiLU",
            forward="nn.silu(x, out=out)",
            backward="aten.silu_backward.grad_input(g, x, grad_input=out)",
        ),
        numpy=NumpyForm(
            forward="np.multiply(x, np.reciprocal(np.exp(-x) + 1), out=out)",
            backward="np.multiply(g, (s := np.reciprocal(np.exp(-x) + 1)) * (1 + x * (1 - s)), out=out)",
            numexpr="x / (1 + exp(-x))",
        ),
    ),
    Activation(
        name="mish",
        formula="mish(x) = x * tanh(softplus(x))",
        forward="mish(x)",
        backward="g * mish_grad(x)",
        saves="input",
        doc=(
            "Mish (Misra, 2019), with one exp; 0 exactly where the result is below the "
            "normal range. Saves the input: mish is not invertible."
        ),
        properties=Properties(True, "everywhere", False, False, (-0.30884341301725043, INF)),
        tolerance=Tolerance(underflow="2 * (1 + abs(x))"),
        cost="compound",
        torch=TorchForm(
            layer="Mish",
            forward="nn.mish(x, out=out)",
            backward="out.copy_(aten.mish_backward(g, x))",
        ),
        numpy=NumpyForm(
            forward="np.multiply(x, np.tanh(np.logaddexp(0, x)), out=out)",
            numexpr="x * tanh(log1p(exp(x)))",
        ),
    ),
    Activation(
        name="softplus",
        formula="softplus(x) = log(1 + exp(beta * x)) / beta, x where beta * x > threshold",
        parameters=(
            Param("beta", 1.0, "sharpness"),
            Param("threshold", 20.0, "linear above beta * x > threshold"),
        ),
        forward="x if x * beta > threshold else softplus_beta(x, beta)",
        backward="keepnan(x, g if x * beta > threshold else g * sigmoid(x * beta))",
        saves="input",
        checks=(("beta != 0", "beta must not be 0"),),
        doc=(
            "Smooth ReLU. 0 exactly where the result is below the normal range "
            "(softplus(beta x) / beta with |beta| > 1 gives no subnormal; PyTorch "
            "returns them). Saves the input: the switch to the linear branch is "
            "decided on beta * x, which the output cannot reproduce exactly."
        ),
        properties=Properties(True, "everywhere", True, False, (0.0, INF)),
        test_params=({"beta": 2.0, "threshold": 5.0}, {"beta": 0.9}),
        cost="compound",
        torch=TorchForm(
            layer="Softplus",
            forward="nn.softplus(x, beta, threshold, out=out)",
            backward="aten.softplus_backward.grad_input(g, x, beta, threshold, grad_input=out)",
        ),
        numpy=NumpyForm(
            forward="np.copyto(out, np.where(x * beta > threshold, x, np.logaddexp(0, x * beta) / beta))",
            backward="np.multiply(g, np.where(x * beta > threshold, 1, np.reciprocal(np.exp(-x * beta) + 1)), out=out)",
            numexpr="where(x * beta > threshold, x, log1p(exp(x * beta)) / beta)",
        ),
    ),
    Activation(
        name="softsign",
        formula="softsign(x) = x / (1 + |x|)",
        forward="softsign(x)",
        backward="g / (1 + fabs(x)) / (1 + fabs(x))",
        saves="input",
        doc=(
            "Softsign. Saves the input: 1 - |y| cancels as |x| grows. The backward "
            "divides twice: (1 + |x|)^2 would overflow for |x| > 1.8e19 in float32."
        ),
        properties=Properties(True, "everywhere", True, True, (-1.0, 1.0)),
        sample_range=(-30.0, 30.0),
        backward_cost="cheap",
        torch=TorchForm(layer="Softsign", forward="out.copy_(F.softsign(x))"),
        numpy=NumpyForm(
            forward="np.divide(x, np.abs(x) + 1, out=out)",
            backward="np.divide(g, np.square(np.abs(x) + 1), out=out)",
            numexpr="x / (1 + abs(x))",
        ),
    ),
    Activation(
        name="hardtanh",
        formula="hardtanh(x) = min(max(x, min_val), max_val)",
        parameters=(Param("min_val", -1.0, "lower clip"), Param("max_val", 1.0, "upper clip")),
        forward="min_val if x < min_val else (max_val if x > max_val else x)",
        backward="keepnan(y, 0 if (y <= min_val or y >= max_val) else g)",
        saves="output",
        checks=(("min_val <= max_val", "min_val must be <= max_val"),),
        doc="Clipped identity; hardtanh'(min_val) = hardtanh'(max_val) = 0.",
        properties=Properties(True, "almost everywhere", True, True, (-1.0, 1.0)),
        kinks=("min_val", "max_val"),
        piecewise_linear=True,
        test_params=({"min_val": -2.0, "max_val": 0.5},),
        cost="cheap",
        torch=TorchForm(
            layer="Hardtanh",
            forward="nn.hardtanh(x, min_val, max_val, out=out)",
            backward="aten.hardtanh_backward.grad_input(g, y, min_val, max_val, grad_input=out)",
        ),
        numpy=NumpyForm(
            forward="np.clip(x, min_val, max_val, out=out)",
            backward="np.multiply(g, (y > min_val) & (y < max_val), out=out)",
            numexpr="where(x < min_val, min_val, where(x > max_val, max_val, x))",
        ),
    ),
    Activation(
        name="relu6",
        formula="relu6(x) = min(max(x, 0), 6)",
        forward="0 if x < 0 else (6 if x > 6 else x)",
        backward="keepnan(y, 0 if (y <= 0 or y >= 6) else g)",
        saves="output",
        doc=(
            "ReLU clipped at 6; relu6'(0) = relu6'(6) = 0. relu6(-0) = -0 (x itself on "
            "[0, 6]), as hardtanh(x, 0, 6) and PyTorch."
        ),
        properties=Properties(True, "almost everywhere", True, False, (0.0, 6.0)),
        kinks=("0", "6"),
        piecewise_linear=True,
        sample_range=(-10.0, 10.0),
        cost="cheap",
        torch=TorchForm(
            layer="ReLU6",
            forward="nn.hardtanh(x, 0.0, 6.0, out=out)",
            backward="aten.hardtanh_backward.grad_input(g, y, 0.0, 6.0, grad_input=out)",
        ),
        numpy=NumpyForm(
            forward="np.clip(x, 0, 6, out=out)",
            backward="np.multiply(g, (y > 0) & (y < 6), out=out)",
            numexpr="where(x <= 0, 0, where(x > 6, 6, x))",
        ),
    ),
    Activation(
        name="hardsigmoid",
        formula="hardsigmoid(x) = min(max(x / 6 + 1/2, 0), 1)",
        forward="clamp((x + 3) * 0.16666666666666666, 0, 1)",
        backward="keepnan(x, 0 if (x <= -3 or x >= 3) else g / 6)",
        saves="input",
        doc=(
            "Piecewise-linear sigmoid; hardsigmoid'(+-3) = 0. (x + 3) times 1/6 (no "
            "division; x + 3 is exact near -3, so the result keeps its relative accuracy). "
            "Saves the input: just below x = 3 the output rounds to 1, where the slope is 0."
        ),
        properties=Properties(True, "almost everywhere", True, False, (0.0, 1.0)),
        kinks=("-3", "3"),
        piecewise_linear=True,
        cost="cheap",
        torch=TorchForm(
            layer="Hardsigmoid",
            forward="nn.hardsigmoid(x, out=out)",
            backward="aten.hardsigmoid_backward.grad_input(g, x, grad_input=out)",
        ),
        numpy=NumpyForm(
            forward="np.clip(x / 6 + 0.5, 0, 1, out=out)",
            numexpr="where(x <= -3, 0, where(x >= 3, 1, (x + 3) / 6))",
        ),
    ),
    Activation(
        name="hardswish",
        formula="hardswish(x) = x * min(max(x + 3, 0), 6) / 6",
        forward="0 if x <= -3 else (x if x >= 3 else x * ((x + 3) * 0.16666666666666666))",
        backward="keepnan(x, 0 if x <= -3 else (g if x >= 3 else g * ((2 * x + 3) * 0.16666666666666666)))",
        saves="input",
        doc=(
            "Hard swish (MobileNetV3); hardswish'(-3) = 0, hardswish'(3) = 1. "
            "Saves the input: not invertible on [-3, -1.5]."
        ),
        properties=Properties(True, "almost everywhere", False, False, (-0.375, INF)),
        kinks=("-3", "3"),
        cost="cheap",
        torch=TorchForm(
            layer="Hardswish",
            forward="nn.hardswish(x, out=out)",
            backward="aten.hardswish_backward.out(g, x, out=out)",
        ),
        numpy=NumpyForm(
            forward="np.multiply(x, np.clip(x + 3, 0, 6) / 6, out=out)",
            numexpr="where(x <= -3, 0, where(x >= 3, x, x * (x + 3) / 6))",
        ),
    ),
    Activation(
        name="logsigmoid",
        formula="logsigmoid(x) = log(sigmoid(x)) = min(x, 0) - log(1 + exp(-|x|))",
        forward="logsigmoid(x)",
        backward="g * one_minus_exp(y)",
        saves="output",
        doc=(
            "Log of the sigmoid. The gradient sigmoid(-x) = 1 - exp(y) comes from "
            "the output with a condition number below 1; it is +0 where y is 0 "
            "(x = +inf or y underflowed), as sigmoid(-x), not -0."
        ),
        properties=Properties(True, "everywhere", True, False, (-INF, 0.0)),
        torch=TorchForm(
            layer="LogSigmoid",
            forward="nn.log_sigmoid(x, out=out)",
            backward="aten.log_sigmoid_backward.grad_input(g, x, buf, grad_input=out)",
            backward_setup="aten.log_sigmoid_forward(x)[1]",
        ),
        numpy=NumpyForm(
            forward="np.negative(np.logaddexp(0, -x), out=out)",
            numexpr="where(x < 0, x, 0) - log1p(exp(-abs(x)))",
        ),
    ),
    Activation(
        name="tanhshrink",
        formula="tanhshrink(x) = x - tanh(x)",
        forward="x - x if x == 0 else tanhshrink(x)",
        backward="g * tanh(x) * tanh(x)",
        saves="input",
        doc=(
            "x - tanh(x) without cancellation: a minimax x^3 s(x^2) below |x| = 1, "
            "(|x| - 1) + 2e/(1 + e), e = exp(-2|x|), above. "
            "tanhshrink(-0) = +0, the IEEE difference -0 - tanh(-0) (as PyTorch); a "
            "negative x whose result is below the range gives -0, the sign of the true "
            "value (PyTorch's x - tanh(x) gives +0 there). "
            "Saves the input: x is not recoverable from the output cheaply."
        ),
        properties=Properties(True, "everywhere", True, False, (-INF, INF)),
        torch=TorchForm(layer="Tanhshrink", forward="out.copy_(F.tanhshrink(x))"),
        numpy=NumpyForm(forward="np.subtract(x, np.tanh(x), out=out)", numexpr="x - tanh(x)"),
    ),
    Activation(
        name="hardshrink",
        formula="hardshrink(x) = 0 if -lambd <= x <= lambd else x",
        parameters=(Param("lambd", 0.5, "half-width of the zeroed interval, >= 0"),),
        forward="0 if (x >= -lambd and x <= lambd) else x",
        backward="keepnan(y, 0 if y == 0 else g)",
        saves="output",
        checks=(("lambd >= 0", "lambd must be >= 0"),),
        doc="Hard shrinkage; hardshrink'(+-lambd) = 0. The output is 0 exactly inside.",
        properties=Properties(True, "almost everywhere", True, False, (-INF, INF)),
        kinks=("-lambd", "lambd"),
        piecewise_linear=True,
        test_params=({"lambd": 1.5},),
        cost="cheap",
        torch=TorchForm(
            layer="Hardshrink",
            forward="torch.hardshrink(x, lambd, out=out)",
            backward="aten.hardshrink_backward.grad_input(g, x, lambd, grad_input=out)",
        ),
        numpy=NumpyForm(
            forward="np.multiply(x, np.abs(x) > lambd, out=out)",
            numexpr="where((x >= -lambd) & (x <= lambd), 0, x)",
        ),
    ),
    Activation(
        name="softshrink",
        formula="softshrink(x) = x - lambd if x > lambd, x + lambd if x < -lambd, else 0",
        parameters=(Param("lambd", 0.5, "half-width of the zeroed interval, >= 0"),),
        forward="x - clamp(x, -lambd, lambd)",
        backward="keepnan(y, 0 if y == 0 else g)",
        saves="output",
        checks=(("lambd >= 0", "lambd must be >= 0"),),
        doc=(
            "Soft shrinkage (soft thresholding); softshrink'(+-lambd) = 0. The output "
            "inside [-lambd, lambd] is +0, the constant 0 of the formula (PyTorch returns "
            "-0 for a negative x there)."
        ),
        properties=Properties(True, "almost everywhere", True, False, (-INF, INF)),
        kinks=("-lambd", "lambd"),
        piecewise_linear=True,
        test_params=({"lambd": 1.5},),
        cost="cheap",
        torch=TorchForm(
            layer="Softshrink",
            forward="nn.softshrink(x, lambd, out=out)",
            backward="aten.softshrink_backward.grad_input(g, x, lambd, grad_input=out)",
        ),
        numpy=NumpyForm(
            forward="np.subtract(x, np.clip(x, -lambd, lambd), out=out)",
            numexpr="where(x > lambd, x - lambd, where(x < -lambd, x + lambd, 0))",
        ),
    ),
    Activation(
        name="threshold",
        formula="threshold(x) = x if x > threshold else value",
        parameters=(
            Param("threshold", None, "inputs at or below it are replaced", example=0.5),
            Param("value", None, "the replacement", example=-1.0),
        ),
        forward="value if x <= threshold else x",
        backward="keepnan(x, 0 if x <= threshold else g)",
        saves="input",
        doc=(
            "Thresholding; threshold'(threshold) = 0. Saves the input: value may "
            "exceed threshold, so the output does not tell which side x was on."
        ),
        properties=Properties(True, "almost everywhere", True, False, (-1.0, INF)),
        kinks=("threshold",),
        piecewise_linear=True,
        test_params=({"threshold": -1.0, "value": 2.0},),
        cost="cheap",
        torch=TorchForm(
            layer="Threshold",
            forward="torch.threshold(x, threshold, value, out=out)",
            backward="aten.threshold_backward.grad_input(g, x, threshold, grad_input=out)",
        ),
        numpy=NumpyForm(
            forward="np.copyto(out, np.where(x <= threshold, value, x))",
            numexpr="where(x <= threshold, value, x)",
        ),
    ),
    Activation(
        name="softmax",
        formula="softmax(x)_j = exp(x_j - m) / sum_k exp(x_k - m), m = max_k x_k, along axis",
        # x - m <= 0 (or NaN): exp_neg, exp without the overflow clamp (same bits).
        # float32 multiplies by 1 / s (one division a row; within 1.5 ulp instead
        # of 1, and 10% faster), float64 divides (a reciprocal would double its error)
        row_forward=(("m", "max", "x"), ("s", "sum", "exp_neg(x - m)")),
        forward="by_type(exp_neg(x - m) * (1 / s), exp_neg(x - m) / s)",
        row_backward=(("d", "sum", "g * y"),),
        backward="y * (g - d)",
        saves="output",
        doc=(
            "Normalised exponential along ``axis`` (default -1), max-subtracted so "
            "that no exp overflows; rows run in parallel. A row holding NaN or "
            "+inf, or only -inf, gives NaN."
        ),
        properties=Properties(True, "everywhere", False, False, (0.0, 1.0)),
        # x - m is rounded before exp (|x - m| ulp); the row sum adds about
        # sqrt(row length) ulp
        tolerance=Tolerance(condition="abs(x - rowmax) + rowlen ** 0.5"),
        torch=TorchForm(
            layer="Softmax",
            forward="torch.softmax(x, -1, out=out)",
            backward="aten._softmax_backward_data.out(g, y, -1, y.dtype, grad_input=out)",
        ),
        numpy=NumpyForm(
            forward="np.divide(e := np.exp(x - x.max(axis=-1, keepdims=True)), e.sum(axis=-1, keepdims=True), out=out)"
        ),
    ),
    Activation(
        name="log_softmax",
        formula="log_softmax(x)_j = x_j - m - log(sum_k exp(x_k - m)), m = max_k x_k, along axis",
        row_forward=(("m", "max", "x"), ("s", "sum", "exp_neg(x - m)"), ("ls", "log", "s")),
        forward="(x - m) - ls",
        row_backward=(("d", "sum", "g"),),
        backward="g - exp_neg(y) * d",
        saves="output",
        doc=(
            "Log of softmax along ``axis``, computed without forming softmax (no log "
            "of 0). The row sum is rounded, so the error is absolute: about the row "
            "length in ulp of 1. The backward's error is absolute too, a few ulp of the "
            "row's sum of |grad_output|; it counts exp(y) below the smallest normal "
            "number as 0, an error below that number times |sum of grad_output|."
        ),
        properties=Properties(True, "everywhere", False, False, (-INF, 0.0)),
        tolerance=Tolerance(forward_scale="rowlen"),
        torch=TorchForm(
            layer="LogSoftmax",
            forward="torch.log_softmax(x, -1, out=out)",
            backward="aten._log_softmax_backward_data.out(g, y, -1, y.dtype, out=out)",
        ),
        numpy=NumpyForm(
            forward="np.subtract(t := x - x.max(axis=-1, keepdims=True), np.log(np.exp(t).sum(axis=-1, keepdims=True)), out=out)"
        ),
    ),
)

BY_NAME: dict[str, Activation] = {a.name: a for a in TABLE}


def kink_points(entry: Activation, params: dict[str, Number] | None = None) -> tuple[float, ...]:
    """Sorted points where a piecewise-linear ``entry`` changes slope (or jumps).

    ``params`` override the defaults.  ValueError for a smooth activation.
    """
    if not entry.piecewise_linear:
        raise ValueError(f"{entry.name} is not piecewise linear")
    return jump_points(entry, params)


def jump_points(entry: Activation, params: dict[str, Number] | None = None) -> tuple[float, ...]:
    """Sorted points where the derivative of ``entry`` jumps (empty if none)."""
    env = {**entry.example_params, **(params or {})}
    return tuple(sorted(float(eval(k, {"__builtins__": {}}, env)) for k in entry.kinks or ()))
