"""The NumPy reference: every activation written plainly, in float64.

This is the oracle of the test-suite and the ``"numpy"`` backend (the
fallback when no compiled backend can take a call).  It is written
independently of the formula dialect of :mod:`fastact.table`, so that a
mistake in a table formula shows up as a disagreement with this module.

Gradients are grad_output times the derivative, except on a flat piece of a
piecewise activation (relu below 0, hardswish below -3, ...), where they are
selected as exactly 0 whatever grad_output is, NaN and inf included.

Each function takes float64-convertible arrays and returns float64 arrays;
``forward(name, ...)`` and ``backward(name, ...)`` look them up by name.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

_FORWARD: dict[str, Callable] = {}
_BACKWARD: dict[str, Callable] = {}


def _forward(fn: Callable) -> Callable:
    _FORWARD[fn.__name__] = fn
    return fn


def _backward(fn: Callable) -> Callable:
    _BACKWARD[fn.__name__.removesuffix("_backward")] = fn
    return fn


def _nan_from(saved: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """Gradients of piecewise activations are NaN where the saved value is NaN."""
    return np.where(np.isnan(saved), np.nan, grad)


# --- random slopes of rrelu: a counter-based generator keyed by (seed, flat index)
#
# Element i of seed s has the 64-bit counter c = mix64(s) + i (splitmix64's
# output function, wrapping).  float64: w = c * WEYL64, two xorshift-multiply
# rounds, the top 53 bits u, slope = lo + ((hi - lo) * 2**-53) * u in float64.
# float32: w = lo32(c) * WEYL32, key kh = hi32(mix64(hi32(c))), three
# xorshift-multiply rounds of w ^ (w >> 16) ^ kh in uint32, the top 24 bits
# u, slope = lo + ((hi - lo) * 2**-24) * u in float32.  The kernels compute
# the same bits (fastact/_backends/cython/fa_intrinsics.h).

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_WEYL64 = np.uint64(0x9E3779B97F4A7C15)
_WEYL32 = np.uint32(0x9E3779B9)
_H1 = np.uint32(0x7FEB352D)
_H2 = np.uint32(0x846CA68B)


def _mix64(z: np.ndarray) -> np.ndarray:
    z = z + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def counters(seed: int, n: int) -> np.ndarray:
    """The 64-bit counters of elements 0..n-1 for ``seed``: mix64(seed) + i."""
    with np.errstate(over="ignore"):
        key = _mix64(np.array([seed], dtype=np.uint64))
        return key + np.arange(n, dtype=np.uint64)


def uniform_bits(c: np.ndarray, dtype=np.float64) -> np.ndarray:
    """The random integers of counters ``c``: 53 bits (float64) or 24 bits (float32)."""
    c = np.asarray(c, dtype=np.uint64)
    with np.errstate(over="ignore"):
        if np.dtype(dtype) == np.float32:
            kh = (_mix64(c >> np.uint64(32)) >> np.uint64(32)).astype(np.uint32)
            w = (c & np.uint64(0xFFFFFFFF)).astype(np.uint32) * _WEYL32
            x = w ^ (w >> np.uint32(16)) ^ kh
            x = x * _H1
            x = x ^ (x >> np.uint32(15))
            x = x * _H2
            x = x ^ (x >> np.uint32(16))
            x = x * _H1
            return x >> np.uint32(8)
        w = c * _WEYL64
        z = (w ^ (w >> np.uint64(32))) * _M1
        z = (z ^ (z >> np.uint64(29))) * _M2
        return z >> np.uint64(11)


def uniform(seed: int, n: int, dtype=np.float64) -> np.ndarray:
    """The counter-based U[0, 1) numbers of elements 0..n-1 for ``seed`` (exact, float64)."""
    bits = 24 if np.dtype(dtype) == np.float32 else 53
    return uniform_bits(counters(seed, n), dtype).astype(np.float64) * 2.0**-bits


def rrelu_slopes(shape, seed: int, lower: float, upper: float, dtype=np.float64) -> np.ndarray:
    """The slope rrelu gives each element (C order) in training mode, in ``dtype``."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape, dtype=np.int64))
    lo, hi = dtype.type(lower), dtype.type(upper)
    scale = dtype.type(2.0**-24 if dtype == np.float32 else 2.0**-53)
    u = uniform_bits(counters(seed, n), dtype).astype(dtype)
    return (lo + ((hi - lo) * scale) * u).reshape(shape)


# --- the activations ----------------------------------------------------


@_forward
def sigmoid(x):
    x = np.asarray(x, np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@_backward
def sigmoid_backward(g, y):
    y = np.asarray(y, np.float64)
    return np.asarray(g, np.float64) * y * (1.0 - y)


@_forward
def tanh(x):
    return np.tanh(np.asarray(x, np.float64))


@_backward
def tanh_backward(g, y):
    y = np.asarray(y, np.float64)
    return np.asarray(g, np.float64) * ((1.0 - y) * (1.0 + y))


@_forward
def relu(x):
    x = np.asarray(x, np.float64)
    # x itself for x >= 0 (NaN too): relu(-0) = -0, as relu6 and PyTorch
    return np.where(x < 0, 0.0, x)


@_backward
def relu_backward(g, y):
    y = np.asarray(y, np.float64)
    return _nan_from(y, np.where(y > 0, np.asarray(g, np.float64), 0.0))


@_forward
def leaky_relu(x, negative_slope=0.01):
    x = np.asarray(x, np.float64)
    return np.where(x > 0, x, x * negative_slope)


@_backward
def leaky_relu_backward(g, y, negative_slope=0.01):
    y, g = np.asarray(y, np.float64), np.asarray(g, np.float64)
    return _nan_from(y, np.where(y > 0, g, g * negative_slope))


def _channel_shape(x: np.ndarray, weight: np.ndarray) -> tuple[int, ...]:
    """Shape that broadcasts a per-channel weight over axis 1 of x."""
    if weight.size == 1 or x.ndim < 2:
        return ()
    return (1, weight.size) + (1,) * (x.ndim - 2)


@_forward
def prelu(x, weight=0.25):
    x = np.asarray(x, np.float64)
    w = np.asarray(weight, np.float64).reshape(-1)
    w = w.reshape(_channel_shape(x, w)) if w.size > 1 else w.reshape(())
    return np.where(x > 0, x, x * w)


@_backward
def prelu_backward(g, x, weight=0.25):
    """Returns (grad_input, grad_weight); grad_weight has weight's size."""
    x, g = np.asarray(x, np.float64), np.asarray(g, np.float64)
    w = np.asarray(weight, np.float64).reshape(-1)
    wb = w.reshape(_channel_shape(x, w)) if w.size > 1 else w.reshape(())
    gx = _nan_from(x, np.where(x > 0, g, g * wb))
    contrib = np.where(x > 0, 0.0, x * g)
    if w.size == 1:
        gw = np.array([contrib.sum()])
    else:
        axes = tuple(a for a in range(x.ndim) if a != 1)
        gw = contrib.sum(axis=axes)
    return gx, gw


@_forward
def rrelu(x, lower=1.0 / 8.0, upper=1.0 / 3.0, training=False, seed=0, dtype=np.float64):
    x = np.asarray(x, np.float64)
    if training:
        slope = rrelu_slopes(x.shape, seed, lower, upper, dtype).astype(np.float64)
    else:
        slope = (lower + upper) / 2.0
    return np.where(x > 0, x, x * slope)


@_backward
def rrelu_backward(
    g, y, lower=1.0 / 8.0, upper=1.0 / 3.0, training=False, seed=0, dtype=np.float64
):
    y, g = np.asarray(y, np.float64), np.asarray(g, np.float64)
    if training:
        slope = rrelu_slopes(y.shape, seed, lower, upper, dtype).astype(np.float64)
    else:
        slope = (lower + upper) / 2.0
    return _nan_from(y, np.where(y > 0, g, g * slope))


# --- the torch.nn.functional family ------------------------------------------

_SELU_SCALE = 1.0507009873554804934193349852946
_SELU_ALPHA = 1.6732632423543772848170429916717


def _limit_inf(x, value, at_pos=None, at_neg=None):
    """value, with the given limits substituted at +inf / -inf."""
    if at_neg is not None:
        value = np.where(x == -np.inf, at_neg, value)
    if at_pos is not None:
        value = np.where(x == np.inf, at_pos, value)
    return value


@_forward
def elu(x, alpha=1.0):
    x = np.asarray(x, np.float64)
    return np.where(x > 0, x, alpha * np.expm1(np.where(x > 0, 0.0, x)))


@_backward
def elu_backward(g, y, alpha=1.0):
    # from the output: for x <= 0, alpha * exp(x) = y + alpha (alpha >= 0: y > 0 iff x > 0)
    y, g = np.asarray(y, np.float64), np.asarray(g, np.float64)
    return _nan_from(y, np.where(y > 0, g, g * (y + alpha)))


@_forward
def selu(x):
    return _SELU_SCALE * elu(x, _SELU_ALPHA)


@_backward
def selu_backward(g, y):
    y, g = np.asarray(y, np.float64), np.asarray(g, np.float64)
    d = np.where(y > 0, _SELU_SCALE, y + _SELU_SCALE * _SELU_ALPHA)
    return _nan_from(y, g * d)


@_forward
def celu(x, alpha=1.0):
    x = np.asarray(x, np.float64)
    return np.where(x > 0, x, alpha * np.expm1(np.where(x > 0, 0.0, x) / alpha))


@_backward
def celu_backward(g, y, alpha=1.0):
    # exp(x / alpha) = 1 + y / alpha for x <= 0, where y <= 0 for either sign of alpha
    y, g = np.asarray(y, np.float64), np.asarray(g, np.float64)
    return _nan_from(y, np.where(y > 0, g, g * ((y + alpha) / alpha)))


_SPLIT = 134217729.0  # 2**27 + 1: Veltkamp's split of a float64 into two 26-bit halves
_RSQRT2 = 0.7071067811865476  # 1/sqrt(2) rounded, and what the rounding left out
_RSQRT2_LO = -4.833646656726457e-17


def _halves(t):
    """t = hi + lo, each half with 26 significant bits (Veltkamp), |t| < 2**996."""
    c = _SPLIT * t
    hi = c - (c - t)
    return hi, t - hi


def _product_error(a, b):
    """a * b - fl(a * b), exactly (Dekker's product)."""
    p = a * b
    ah, al = _halves(a)
    bh, bl = _halves(np.float64(b))
    return ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _square(t):
    """(hi, lo) with t * t = hi + lo exactly."""
    hi = t * t
    return hi, _product_error(t, t)


def _gauss(hi, lo):
    """phi(t) = e**(-t**2 / 2) / sqrt(2 pi) from t**2 = hi + lo."""
    return np.exp(-0.5 * hi) * (1.0 - 0.5 * lo) / np.sqrt(2 * np.pi)


# Depth of the continued fraction from each t on: below 1 ulp (checked with mpmath)
_MILLS_DEPTH = ((10.0, 16), (6.0, 24), (4.0, 40), (3.0, 64))


def _mills(t):
    """Mills' ratio (1 - Phi(t)) / phi(t) for t >= 3, by Laplace's continued fraction."""
    r = np.empty_like(t)
    upper = np.inf
    for lower, depth in _MILLS_DEPTH:
        band = (t >= lower) & (t < upper)
        tb = t[band]
        f = tb
        for k in range(depth, 0, -1):
            f = tb + k / f
        r[band] = 1.0 / f
        upper = lower
    return r


def _phi2(x):
    """(Phi(x), phi(x)) of the standard normal, accurate in the lower tail.

    Rounding -x/sqrt(2) before erfc costs about x^2 ulp, so below x = -3 the
    tail is phi(x) times Mills' ratio, with x^2 split exactly (a few ulp, and
    0 below x = -40, where both underflow); above it the rounding error d of
    z = -x/sqrt(2) is computed exactly and taken back to first order,
    erfc(z + d) = erfc(z) - d 2/sqrt(pi) e**(-z**2).
    """
    x = np.asarray(x, np.float64)
    # the C library's erfc (within 2 ulp here; SciPy's is up to 9 ulp off near 1)
    erfc = np.vectorize(math.erfc, otypes=[np.float64])
    tail = (x < -3) & np.isfinite(x)
    cdf = np.empty_like(x)
    pdf = np.empty_like(x)
    body = ~tail
    xb = x[body]
    z = -xb * _RSQRT2
    a = np.clip(-xb, -40.0, 40.0)  # beyond, e**(-z**2) is 0: no correction
    d = _product_error(a, _RSQRT2) + a * _RSQRT2_LO
    cdf[body] = 0.5 * (erfc(z) - d * (2 / np.sqrt(np.pi)) * np.exp(-z * z))
    hi, lo = _square(np.minimum(np.abs(xb), 40.0))
    pdf[body] = np.where(np.abs(xb) > 40.0, 0.0, _gauss(hi, lo))
    if tail.any():
        t = np.minimum(-x[tail], 40.0)
        p = np.where(-x[tail] > 40.0, 0.0, _gauss(*_square(t)))
        cdf[tail] = p * _mills(t)
        pdf[tail] = p
    return cdf, pdf


@_forward
def gelu(x, approximate="none"):
    x = np.asarray(x, np.float64)
    if approximate == "tanh":
        u = np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)
        # 1 + tanh(u) = 2 / (1 + exp(-2u))
        y = x / (1.0 + np.exp(-2.0 * u))
    else:
        y = x * _phi2(x)[0]
    return _limit_inf(x, y, at_pos=np.inf, at_neg=0.0)


@_backward
def gelu_backward(g, x, approximate="none"):
    x, g = np.asarray(x, np.float64), np.asarray(g, np.float64)
    if approximate == "tanh":
        k = np.sqrt(2 / np.pi)
        u = k * (x + 0.044715 * x**3)
        # 1 + tanh(u) = 2 sigmoid(2u) and 1 - tanh(u)^2 = 4 sigmoid(2u) sigmoid(-2u),
        # which do not cancel for x << 0
        sp, sm = sigmoid(2 * u), sigmoid(-2 * u)
        d = sp + 2 * x * sp * sm * k * (1 + 3 * 0.044715 * x**2)
    else:
        cdf, pdf = _phi2(x)
        d = cdf + x * pdf
    # below x = -0.75 the derivative is negative: where it underflows (or x is beyond
    # 1e150, where the formulas overflow) it is -0, and +0 only in the limit at -inf
    d = np.where(np.abs(x) > 1e150, np.where(x > 0, 1.0, -0.0), d)
    d = np.where((d == 0) & (x < -0.75), -0.0, d)
    d = _limit_inf(x, d, at_pos=1.0, at_neg=0.0)
    return g * d


@_forward
def silu(x):
    x = np.asarray(x, np.float64)
    return _limit_inf(x, x * sigmoid(x), at_neg=0.0)


@_backward
def silu_backward(g, x):
    x = np.asarray(x, np.float64)
    s = sigmoid(x)
    d = s + x * s * (1 - s)
    # negative below x = -1.28: -0 where it underflows (s + x s (1 - s) would be
    # 0 + -0 = +0 there), +0 only in the limit at -inf
    d = np.where((d == 0) & (x < -1.5), -0.0, d)
    d = _limit_inf(x, d, at_pos=1.0, at_neg=0.0)
    return np.asarray(g, np.float64) * d


def _softplus1(x):
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


@_forward
def mish(x):
    x = np.asarray(x, np.float64)
    return _limit_inf(x, x * np.tanh(_softplus1(x)), at_neg=0.0)


@_backward
def mish_backward(g, x):
    x = np.asarray(x, np.float64)
    sp = _softplus1(x)
    # 1 - tanh(sp)^2 as sech(sp)^2: no cancellation as tanh(sp) -> 1
    d = np.tanh(sp) + x * (1 / np.cosh(sp)) ** 2 * sigmoid(x)
    d = np.where((d == 0) & (x < -1.5), -0.0, d)  # as silu's: negative below x = -1.19
    d = _limit_inf(x, d, at_pos=1.0, at_neg=0.0)
    return np.asarray(g, np.float64) * d


@_forward
def softplus(x, beta=1.0, threshold=20.0):
    x = np.asarray(x, np.float64)
    z = x * beta
    # below z = -700, softplus(z) = e**z, taken as e**(z/2) (e**(z/2) / beta): with
    # |beta| < 1 the result is normal where e**z itself is subnormal or 0
    h = np.exp(0.5 * np.minimum(z, -700.0))
    y = np.where(z < -700.0, h * (h / beta), _softplus1(z) / beta)
    return np.where(z > threshold, x, y)


@_backward
def softplus_backward(g, x, beta=1.0, threshold=20.0):
    x, g = np.asarray(x, np.float64), np.asarray(g, np.float64)
    return np.where(x * beta > threshold, g, g * sigmoid(x * beta))


@_forward
def softsign(x):
    x = np.asarray(x, np.float64)
    return _limit_inf(x, x / (1 + np.abs(x)), at_pos=1.0, at_neg=-1.0)


@_backward
def softsign_backward(g, x):
    x = np.asarray(x, np.float64)
    return np.asarray(g, np.float64) / (1 + np.abs(x)) / (1 + np.abs(x))


@_forward
def hardtanh(x, min_val=-1.0, max_val=1.0):
    x = np.asarray(x, np.float64)
    return np.where(np.isnan(x), x, np.clip(x, min_val, max_val))


@_backward
def hardtanh_backward(g, y, min_val=-1.0, max_val=1.0):
    y, g = np.asarray(y, np.float64), np.asarray(g, np.float64)
    return _nan_from(y, np.where((y > min_val) & (y < max_val), g, 0.0))


@_forward
def relu6(x):
    return hardtanh(x, 0.0, 6.0)


@_backward
def relu6_backward(g, y):
    return hardtanh_backward(g, y, 0.0, 6.0)


@_forward
def hardsigmoid(x):
    x = np.asarray(x, np.float64)
    return np.where(np.isnan(x), x, np.clip((x + 3) / 6, 0.0, 1.0))


@_backward
def hardsigmoid_backward(g, x):
    x, g = np.asarray(x, np.float64), np.asarray(g, np.float64)
    return _nan_from(x, np.where((x > -3) & (x < 3), g / 6, 0.0))


@_forward
def hardswish(x):
    x = np.asarray(x, np.float64)
    return np.where(x >= 3, x, np.where(x <= -3, 0.0, x * (x + 3) / 6))


@_backward
def hardswish_backward(g, x):
    x, g = np.asarray(x, np.float64), np.asarray(g, np.float64)
    d = np.where(x >= 3, 1.0, x / 3 + 0.5)
    return _nan_from(x, np.where(x <= -3, 0.0, g * d))


@_forward
def logsigmoid(x):
    x = np.asarray(x, np.float64)
    return np.minimum(x, 0.0) - np.log1p(np.exp(-np.abs(x)))


@_backward
def logsigmoid_backward(g, y):
    y = np.asarray(y, np.float64)
    # d/dx log(sigmoid(x)) = sigmoid(-x) = 1 - exp(y): +0, not -0, where y is 0
    return np.asarray(g, np.float64) * (0.0 - np.expm1(y))


@_forward
def tanhshrink(x):
    x = np.asarray(x, np.float64)
    # Near 0, x - tanh(x) cancels: sum its series in long double there.
    small = np.abs(x) < 0.5
    xs = np.where(small, x, 0.0).astype(np.longdouble)
    series = np.zeros_like(xs)
    term = xs
    # x - tanh x = -sum_{n>=2} 2^(2n) (2^(2n) - 1) B_2n / (2n)! x^(2n-1)
    for c in _TANH_SERIES:
        term = term * xs * xs
        series = series + c * term
    xl = x.astype(np.longdouble)
    # at x = +-0 the difference is exactly 0: +0 (IEEE's sign of an exact difference),
    # a negative x too small for the range rounds to -0
    y = np.where(small, series, xl - np.tanh(xl)).astype(np.float64)
    return np.where(x == 0, 0.0, y)


def _tanh_series_coefficients(n_terms: int = 30) -> list:
    from fractions import Fraction
    from math import comb, factorial

    bern = [Fraction(1)]
    for m in range(1, 2 * n_terms + 3):
        bern.append(-sum(comb(m + 1, k) * bern[k] for k in range(m)) / (m + 1))
    coeffs = []
    for n in range(2, n_terms + 2):
        c = -Fraction(2 ** (2 * n) * (2 ** (2 * n) - 1)) * bern[2 * n] / factorial(2 * n)
        coeffs.append(np.longdouble(c.numerator) / np.longdouble(c.denominator))
    return coeffs


_TANH_SERIES = _tanh_series_coefficients()


@_backward
def tanhshrink_backward(g, x):
    t = np.tanh(np.asarray(x, np.float64))
    return np.asarray(g, np.float64) * t * t


@_forward
def hardshrink(x, lambd=0.5):
    x = np.asarray(x, np.float64)
    return np.where((x >= -lambd) & (x <= lambd), 0.0, x)


@_backward
def hardshrink_backward(g, y, lambd=0.5):
    y, g = np.asarray(y, np.float64), np.asarray(g, np.float64)
    return _nan_from(y, np.where(y == 0, 0.0, g))


@_forward
def softshrink(x, lambd=0.5):
    x = np.asarray(x, np.float64)
    return np.where(
        x > lambd, x - lambd, np.where(x < -lambd, x + lambd, np.where(np.isnan(x), x, 0.0))
    )


@_backward
def softshrink_backward(g, y, lambd=0.5):
    return hardshrink_backward(g, y, lambd)


@_forward
def threshold(x, threshold, value):
    x = np.asarray(x, np.float64)
    return np.where(x <= threshold, value, x)


@_backward
def threshold_backward(g, x, threshold, value):
    x, g = np.asarray(x, np.float64), np.asarray(g, np.float64)
    return _nan_from(x, np.where(x <= threshold, 0.0, g))


@_forward
def softmax(x, axis=-1):
    x = np.asarray(x, np.float64)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


@_backward
def softmax_backward(g, y, axis=-1):
    y, g = np.asarray(y, np.float64), np.asarray(g, np.float64)
    return y * (g - np.sum(g * y, axis=axis, keepdims=True))


@_forward
def log_softmax(x, axis=-1):
    x = np.asarray(x, np.float64)
    z = x - np.max(x, axis=axis, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


@_backward
def log_softmax_backward(g, y, axis=-1):
    y, g = np.asarray(y, np.float64), np.asarray(g, np.float64)
    return g - np.exp(y) * np.sum(g, axis=axis, keepdims=True)


def forward(name: str, x, **params) -> np.ndarray:
    """The float64 reference forward of activation ``name``."""
    with np.errstate(all="ignore"):
        return _FORWARD[name](x, **params)


def backward(name: str, grad_output, saved, **params):
    """The float64 reference gradient of activation ``name``."""
    with np.errstate(all="ignore"):
        return _BACKWARD[name](grad_output, saved, **params)


def _biased(x, bias, bias_axis: int) -> np.ndarray:
    """``x + bias`` in ``x``'s dtype, the 1-d ``bias`` along axis ``bias_axis``."""
    x = np.asarray(x)
    shape = [1] * x.ndim
    shape[bias_axis] = -1
    return np.asarray(x + np.asarray(bias, x.dtype).reshape(shape), x.dtype)


def bias_forward(name: str, x, bias, bias_axis: int = -1, **params) -> np.ndarray:
    """``name``'s forward of ``x + bias`` (the sum in ``x``'s dtype), in float64."""
    return forward(name, _biased(x, bias, bias_axis), **params)


def bias_backward(
    name: str, grad_output, saved, bias, bias_axis: int = -1, saves: str = "input", **params
):
    """(gradient of the pre-bias input, of the bias), in float64.

    ``saved`` is the pre-bias input where the activation ``saves`` the input
    (the sum is formed again, in its dtype), else the forward's output.
    """
    s = _biased(saved, bias, bias_axis) if saves == "input" else saved
    gi = backward(name, grad_output, s, **params)
    if isinstance(gi, tuple):  # prelu: (input, weight)
        gi = gi[0]
    gi = np.asarray(gi, np.float64)
    axes = tuple(a for a in range(gi.ndim) if a != bias_axis % gi.ndim)
    return gi, np.sum(gi, axis=axes)
