"""Scalar math helpers, written once in the formula dialect.

Each function here is translated to a ``static inline`` C function (float and
double) for the Cython backend and to a Numba ``njit`` function for the Numba
backend (see :mod:`fastact._codegen.dialect`).  The body may only assign
names and return an expression; ``exp``, ``log1p``, ``fabs``, ``isnan``,
``isfinite`` and the other intrinsics are provided natively by each backend.
This module is never executed as ordinary Python.

Limits at +-inf are written out where the plain formula would compute
``inf * 0`` or ``inf / inf`` (NaN); a NaN input still falls through to the
formula, so NaN propagates.
"""

# ruff: noqa: F821  (the intrinsics are bound by each backend)


def keepnan(s, v):
    """``s`` where ``s`` is NaN, else ``v``: gradients propagate NaN inputs."""
    return s if isnan(s) else v


def sigmoid(x):
    """1 / (1 + exp(-x)) on -|x|, so exp never overflows: sigmoid(-x) = e / (1 + e)."""
    e = exp(-fabs(x))
    r = 1 / (1 + e)
    return r if x >= 0 else e * r


def silu(x):
    """x * sigmoid(x); silu(-inf) = 0."""
    return 0 if x < -3.0e38 else x * sigmoid(x)


def silu_grad(x):
    """d/dx x sigmoid(x) = s (1 + x (1 - s)); 0 at -inf."""
    s = sigmoid(x)
    return 0 if x < -3.0e38 else s * (1 + x * (1 - s))


def mish_t(x):
    """tanh(softplus(x)) with one exp: n / (n + 2), n = e (e + 2), e = exp(x)."""
    e = exp(x)
    n = e * (e + 2)
    return 1 if x > 20 else n / (n + 2)


def mish(x):
    """x * tanh(softplus(x)); mish(-inf) = 0."""
    return 0 if x < -3.0e38 else x * mish_t(x)


def mish_grad(x):
    """t + x (1 - t^2) sigmoid(x), t = tanh(softplus(x)); 0 at -inf."""
    t = mish_t(x)
    return 0 if x < -3.0e38 else t + x * ((1 - t) * (1 + t)) * sigmoid(x)


def gelu_erf(x):
    """x Phi(x) = x erfc(-x / sqrt 2) / 2: erfc keeps relative accuracy for x << 0."""
    return 0 if x <= -40 else 0.5 * x * erfc(x * -0.7071067811865476)


def gelu_erf_grad(x):
    """Phi(x) + x phi(x)."""
    return (
        0
        if x <= -40
        else (
            1
            if x >= 40
            else 0.5 * erfc(x * -0.7071067811865476) + x * exp(-0.5 * x * x) * 0.3989422804014327
        )
    )


def gelu_tanh_u2(x):
    """2 u with u = sqrt(2 / pi) (x + 0.044715 x^3): 1 + tanh(u) = 2 sigmoid(2 u)."""
    return 1.5957691216057308 * (x + 0.044715 * x * x * x)


def gelu_tanh(x):
    """x (1 + tanh(u)) / 2 = x sigmoid(2 u), which has no cancellation for x << 0."""
    return 0 if x < -3.0e38 else x * sigmoid(gelu_tanh_u2(x))


def gelu_tanh_grad(x):
    """s + x s (1 - s) du2/dx, s = sigmoid(2 u)."""
    s = sigmoid(gelu_tanh_u2(x))
    d = 1.5957691216057308 * (1 + 0.134145 * x * x)
    return 0 if x <= -30 else (1 if x >= 30 else s + x * (s * (1 - s)) * d)


def softsign(x):
    """x / (1 + |x|), with the limits +-1 at +-inf."""
    return x / (1 + fabs(x)) if not (fabs(x) > 3.0e38) else (1 if x > 0 else -1)


def logsigmoid(x):
    """log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|))."""
    return (x if x < 0 else 0) - log1p(exp(-fabs(x)))


def tanhshrink(x):
    """x - tanh(x); below |x| = 0.7 its Taylor series, which has no cancellation near 0.

    Coefficients of x^3, x^5, ..., x^51 (25 terms: the truncation error at
    |x| = 0.7 is below 1e-17 relative).
    """
    x2 = x * x
    series = (
        x
        * x2
        * poly(
            x2,
            0.3333333333333333,
            -0.13333333333333333,
            0.05396825396825397,
            -0.021869488536155203,
            0.008863235529902197,
            -0.003592128036572481,
            0.0014558343870513183,
            -0.000590027440945586,
            0.00023912911424355248,
            -9.691537956929451e-05,
            3.927832388331683e-05,
            -1.5918905069328964e-05,
            6.451689215655431e-06,
            -2.6147711512907546e-06,
            1.0597268320104654e-06,
            -4.294911078273806e-07,
            1.7406618963571648e-07,
            -7.054636946400968e-08,
            2.859136662305254e-08,
            -1.1587644432798853e-08,
            4.6962953982309016e-09,
            -1.903336833931276e-09,
            7.713933635359062e-10,
            -3.126339545892087e-10,
            1.26705769303054e-10,
        )
    )
    return series if fabs(x) < 0.7 else x - tanh(x)


HELPERS = (
    keepnan,
    sigmoid,
    silu,
    silu_grad,
    mish_t,
    mish,
    mish_grad,
    gelu_erf,
    gelu_erf_grad,
    gelu_tanh_u2,
    gelu_tanh,
    gelu_tanh_grad,
    softsign,
    logsigmoid,
    tanhshrink,
)
