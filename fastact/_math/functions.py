"""Scalar math helpers, written once in the formula dialect.

Each function here is translated to an always-inlined C function (float and
double) for the Cython backend and to a Numba ``njit`` function for the Numba
backend (see :mod:`fastact._codegen.dialect`).  The body may only assign
names and return an expression; ``fabs``, ``isnan``, ``copysign``, ``pow2i``,
``exponent``, ``mantissa`` and the other intrinsics are provided natively by
each backend.  This module is never executed as ordinary Python.

Helpers take precedence over intrinsics of the same name, so ``exp``,
``expm1``, ``log1p``, ``tanh`` and ``erfc`` below replace the C library's in
every formula of the table (``libm_exp`` etc. keep the C library's
reachable).  They are branch-free (every ``a if c else b`` is a select of two
computed values), call nothing, and use only arithmetic, comparisons and bit
operations on the floating-point encoding, so that gcc and LLVM turn the
kernels that call them into SIMD loops; ``by_type(a, b)`` picks float32 or
float64 coefficients.  The polynomial coefficients are minimax fits (Remez
exchange in mpmath) made for fastact.

Accuracy, the largest error found in ulp of the result against long double
and mpmath references over every binade plus dense uniform points (2**19 in
[-100, 90]; 2**16 over gelu's range), as ``python scripts/accuracy_table.py``
prints it with the metric of ``tests/math/test_accuracy.py`` (which checks
both backends; the two agree bit for bit).  Polynomials
and the range reduction use fused multiply-adds (``fma``: the FMA instruction
in the x86-64-v3/v4 clones and in Numba's code for the host):

=============  =========  =========
function       float32    float64
=============  =========  =========
exp            0.96       0.79
expm1          1.39       1.18
1 - exp        0.89       1.03
log1p          1.40       1.07
tanh (+)       2.29       2.20
sigmoid        1.89       1.83
silu           2.74       2.73
logsigmoid     1.98       1.95
erfc           4.89       4.00
gelu (exact)   2.74 (*)   2.74 (*)
gelu' (exact)  2.34 (*)   3.10 (*)
tanhshrink     2.88       3.00
mish           4.14       4.18
=============  =========  =========

(+) over 2**21 more points in [-3, 3] (the table's points find 1.86 and 2.05): the
largest errors are at |x| < 0.25, from the rounding of E + 2 (see tanh).

(*) per unit of the condition number |x f'(x) / f(x)| (at least 1): the error
that rounding x itself would make.  Gelu's derivative has a zero near
x = -0.75, where only the absolute error is small.

No subnormal numbers where a result underflows: exp_neg returns +0 below 2**-126
(2**-1022 in float64; exp below 2**-125, as it reaches 2**128 at the top) and
builds 2**n from its bits only in the normal range,
so inputs whose exp underflows (x in [-100, -80] for sigmoid, silu,
softplus...) run at the speed of any other (a division on a subnormal costs
2.7x on the CPU measured, any subnormal operation far more on others without
flush-to-zero, and the C library's exp takes slow paths there).  Results are
0 exactly where they are below the normal range, never where they are normal
(but in formulas that call exp itself, 0 below 2**-125):
products x * f(x) whose factor underflows first (silu, mish and their
derivatives) take the factor times 2**16 (``exp16``) and scale the result back
exactly, and the exact gelu takes e**(-x**2/2) times 1/2 or 2**15 (``gauss_sc``);
erfc is scaled by 2**K with ``exp_sum_sc``, the product scaled back by
``unscale``.  Results that underflow from a negative value are -0 (gelu's
below -13.15), at -inf the limit +0.  Gelu's tanh form is 0 where
sigmoid(2u) is below 2**-126, an absolute error below |x| 2**-126.
The selects that flush to 0 choose between two variable values (``xc - xc``):
with a constant, gcc's vector code measured up to
1.6x slower.  Inputs below about 1e-19 (float32) can still make subnormal
squares in the polynomial terms; their results are exact.

Limits at +-inf are written out where the plain formula would compute
``inf * 0`` or ``inf / inf`` (NaN); a NaN input still falls through to the
formula, so NaN propagates.
"""

# ruff: noqa: F821  (the intrinsics are bound by each backend)

# --- exp and its relatives -----------------------------------------------------
#
# e**x = 2**n * e**r with n = rint(x / ln 2), r = x - n ln 2 in [-ln2/2, ln2/2]
# (Cody and Waite: ln 2 split in two so that n * LN2_HI is exact), and
# e**r - 1 = r + r**2 q(r) with a minimax q on [-1/2, 1/2] (degree 5 in float32,
# 10 in float64: 0.1 and 0.35 ulp of approximation error at |r| = 1/2).  2**n is
# built from its bits (pow2i) in the normal range only, and the result is 0
# below it: no floating-point operation on a subnormal value in any lane.


def exp_hi():
    """Inputs are clamped to this (just above ln(max float)): e**x overflows to inf there."""
    return by_type(89.0, 710.0)


def clamp(x, lo, hi):
    """x clamped to [lo, hi] for lo <= hi (NaN stays NaN), a maximum then a minimum."""
    m = lo if x < lo else x
    return hi if m > hi else m


def expm1_q(r):
    """q(r) in e**r - 1 = r + r**2 q(r) for |r| <= 1/2 (minimax)."""
    return by_type(
        poly(
            r,
            0.5000000121682233,
            0.16666667478028252,
            0.04166579098994069,
            0.00833312790693347,
            0.0013982195652209057,
            0.00019979508740811916,
        ),
        poly(
            r,
            0.5,
            0.16666666666666835,
            0.04166666666666734,
            0.008333333333198106,
            0.0013888888888616674,
            0.00019841270144114635,
            2.4801587714564666e-05,
            2.7557042433300087e-06,
            2.755703164527803e-07,
            2.5162747269830168e-08,
            2.0970154410925276e-09,
        ),
    )


def exp_p(r):
    """e**r for |r| <= ln2/2 (the reduced range): 1 + (r + r**2 q(r)), the inner sum
    fused, q of degree 4 in float32, fitted on |r| <= 0.35 for e**r's own relative
    error (0.08 ulp with the coefficients rounded; expm1's degree 5 spans |r| <= 1/2);
    in float64 (1 + r) + r**2 q(r) with expm1's q and the rounding error of 1 + r
    added back (Fast2Sum), so that the result is rounded about once (0.8 ulp, not 1.01)."""
    hi = 1 + r
    q32 = poly(
        r,
        0.4999999305537391,
        0.16666514859189083,
        0.041668455990545146,
        0.008369410762226371,
        0.0013813161133602574,
    )
    return by_type(1 + fma(r * r, q32, r), hi + (((1 - hi) + r) + (r * r) * expm1_q(r)))


def exp_k(xc):
    """rint(xc / ln 2) + 1.5 * 2**23 (2**52): the exponent of the range reduction
    before the rounder is taken off (the product and the rounding to an integer
    fused: one rounding, of the exact product), the form ``ldexpk`` scales by."""
    return fma(xc, 1.4426950408889634, by_type(12582912.0, 6755399441055744.0))


def exp_n(xc):
    """n = rint(xc / ln 2), the exponent of the range reduction."""
    return exp_k(xc) - by_type(12582912.0, 6755399441055744.0)


def exp_r(xc, n):
    """r = xc - n ln 2 in [-ln2/2, ln2/2], ln 2 in two parts (n * ln2_hi exact)."""
    return fma(-n, ln2_lo(), fma(-n, ln2_hi(), xc))


def ln2_hi():
    """The leading part of ln 2: n * ln2_hi is exact for every exponent n."""
    return by_type(0.693359375, 0.6931471803691238)


def ln2_lo():
    """ln 2 - ln2_hi."""
    return by_type(-0.00021219444005469057, 1.9082149292705877e-10)


def exp_lo():
    """Below this, e**x < 2**-125 (2**-1021): exp returns 0 (just above ln 2**-125)."""
    return by_type(-86.6433, -707.70327135)


def exp_neg_lo():
    """The smallest x with e**x a normal number (above ln 2**-126, ln 2**-1022): there
    n = -126 (-1022) and r >= 0, so 2**n e**r is normal."""
    return by_type(-87.33654022216797, -708.3964185322641)


def exp(x):
    """e**x, branch-free; 0 below 2**-125 (2**-1021), never a subnormal.

    Within 1.001 ulp (float32, every fifth float32 of the normal range checked) and
    0.81 ulp (float64) of e**x elsewhere; inf
    above ln(max float); exp(-inf) = 0, exp(inf) = inf, NaN for NaN.  2**n
    is built from its bits as 2 * 2**(n - 1), which reaches n = emax + 1 (so
    not n = emin: exp_neg and exp16 reach the bottom of the normal range).
    """
    xc = clamp(x, exp_lo(), exp_hi())
    n = exp_n(xc)
    e = exp_p(exp_r(xc, n))
    return xc - xc if x < exp_lo() else (e + e) * pow2i(n - 1)


def exp_neg(x):
    """e**x for x <= 0 (or NaN): exp without the overflow clamp, 2**n put into the
    exponent field (``ldexpk``: the result is normal, the same bits as the product
    by 2**n); 0 exactly where e**x is below the normal range."""
    xc = exp_neg_lo() if x < exp_neg_lo() else x
    k = exp_k(xc)
    n = k - by_type(12582912.0, 6755399441055744.0)
    return xc - xc if x < exp_neg_lo() else ldexpk(exp_p(exp_r(xc, n)), k)


def exp16_neg(x, lo):
    """exp16 for x <= 0 (or NaN): without the upper clamp."""
    xc = lo if x < lo else x
    k = exp_k(xc)
    n = k - by_type(12582912.0, 6755399441055744.0)
    return xc - xc if x < lo else ldexpk(exp_p(exp_r(xc, n)), k + 16)


def exp16(x, lo):
    """e**x * 2**16 for lo <= x <= 32, with lo >= -97 (-718 in float64), so that the
    result is normal where e**x is not; 0 below lo.  Products x e**x (silu, mish)
    are taken scaled and scaled back exactly: normal down to their own threshold.
    2**(n + 16) goes into the exponent field (``ldexpk``, k + 16 exact)."""
    xc = clamp(x, lo, 32.0)
    k = exp_k(xc)
    n = k - by_type(12582912.0, 6755399441055744.0)
    return xc - xc if x < lo else ldexpk(exp_p(exp_r(xc, n)), k + 16)


# Products such as x sigmoid(x) (silu, gelu, mish) stay accurate where the
# factor from exp is below the normal range but the product is not: the factor
# is computed scaled by 2**K (K = 24 in float32, 53 in float64) and the product
# is scaled back by unscale, which flushes to 0 what would be subnormal.


def exp_sc_lo():
    """Below this, e**x * 2**K < 2**-110 (2**-1000): exp_sum_sc returns 0 (ln 2**-134, ln 2**-1053)."""
    return by_type(-92.8821, -729.8953)


def unscale(w):
    """w * 2**-K, or +0 where that is below the normal range (NaN and inf pass).

    The product is only taken on |w| >= 2**(-126 + K): smaller w are replaced by
    +-2**(-126 + K) before it, and the flush selects wc - wc (a variable 0)."""
    b = by_type(1.9721522630525295e-31, 2.004168360008973e-292)  # 2**(-126 + K)
    wc = copysign(b, w) if fabs(w) < b else w
    return wc - wc if fabs(w) < b else wc * by_type(5.960464477539063e-08, 1.1102230246251565e-16)


def exp_sum_sc(hi, lo):
    """e**(hi + lo) * 2**K for hi <= 0 and |lo| small against |hi|: the range
    reduction adds lo after the exact hi - n ln2_hi, so an argument carried in
    two parts keeps its accuracy.  0 below exp_sc_lo()."""
    h = exp_sc_lo() if hi < exp_sc_lo() else hi
    t = lo * 0 if hi < exp_sc_lo() else lo
    n = exp_n(h + t)
    e = exp_p(fma(-n, ln2_lo(), fma(-n, ln2_hi(), h) + t))
    return h - h if hi + lo < exp_sc_lo() else (e + e) * pow2i(n + by_type(23.0, 52.0))


def expm1(x):
    """e**x - 1 with relative accuracy near 0, branch-free.

    2**n (e**r - 1) + (2**n - 1), with n = 0 for |x| < 1/2 (no cancellation
    at n = 1); -1 below x = -20 (-40 in float64), where e**x no longer shows in
    the result; inf above ln(max float).
    """
    xc = clamp(x, by_type(-20.0, -40.0), exp_hi())
    n = 0 if fabs(x) < 0.5 else exp_n(xc)
    h = pow2i(n - 1)
    em = expm1_r(exp_r(xc, n))
    return copysign(em if fabs(x) < 0.5 else 2 * (h * em + (h - 0.5)), x)  # keeps -0


def expm1_r(r):
    """e**r - 1 for |r| <= 1/2, as r + r**2 q(r) (fused): relative accuracy near 0."""
    return fma(r * r, expm1_q(r), r)


def one_minus_exp(x):
    """1 - e**x = -expm1(x) for x <= 0 (an output of logsigmoid), branch-free.

    (1 - 2**n) - 2**n (e**r - 1) in one fma: -(e**r - 1) exactly at n = 0, no
    cancellation below it (the two terms have one sign).  In float32, q(r) of
    e**r - 1 = r + r**2 q(r) has degree 4, fitted on |r| <= ln2/2 only (0.22 ulp of
    approximation error; expm1's degree 5 covers |r| <= 1/2).  r = x - n ln 2 with ln 2
    in one part: its rounding error moves r by at most n 2**-25 (2**-54) ln 2,
    which the factor 2**n makes a small share of an ulp of the result.  Without
    expm1's selects for |x| < 1/2, its sign and its overflow: 1 below x = -20
    (-40), where e**x no longer shows; x above 0 counts as 0 (result +0, also at
    x = -0).
    """
    xc = clamp(x, by_type(-20.0, -40.0), 0.0)
    k = exp_k(xc)
    t = ldexpk(1.0, k)
    r = fma(by_type(12582912.0, 6755399441055744.0) - k, 0.6931471805599453, xc)
    q = by_type(
        poly(
            r,
            0.5000000061893974,
            0.16666543040077075,
            0.04166628220580302,
            0.00836657743351268,
            0.0013946436519537164,
        ),
        expm1_q(r),
    )
    return fma(-t, fma(r * r, q, r), 1 - t)


# --- log1p -----------------------------------------------------------------------
#
# 1 + x = 2**k * m with m in [sqrt(1/2), sqrt(2)), taken from the bits of the
# rounded sum u = 1 + x; the rounding error of u is added back to f = m - 1
# (scaled by 2**-k).  log(1 + f) = f - (f**2/2 - s (f**2/2 + s**2 v(s**2))) with
# s = f / (2 + f) and a minimax v (degree 2 in float32, 6 in float64).


def log1p_f(f):
    """log(1 + f) for f in [sqrt(1/2) - 1, sqrt(2) - 1]: f - (f**2/2 - s (f**2/2 + s**2 v(s**2))),
    s = f / (2 + f), minimax v (degree 2 in float32, 6 in float64)."""
    s = f / (2 + f)
    z = s * s
    v = by_type(
        poly(z, 0.6666668526603471, 0.3998871887265717, 0.29582046862226613),
        poly(
            z,
            0.666666666666667,
            0.39999999999898506,
            0.28571428626371254,
            0.22222211077399734,
            0.18182892887123378,
            0.15331607967937536,
            0.1461773676993849,
        ),
    )
    hf = 0.5 * (f * f)
    return f - (hf - s * (hf + z * v))


def log1p_ft(f):
    """log1p_f, and f itself below |f| = 2**-40 (2**-300): f**2 is never subnormal.

    The small values are replaced by f + 2**-40 before log1p_f, not by a constant
    (which a compiler would fold and push past the selection), and the selection
    tests ft != f, not the same condition again (under which a compiler could use
    f for ft inside log1p_f)."""
    t = by_type(9.094947017729282e-13, 4.909093465297727e-91)
    ft = f + t if fabs(f) < t else f
    return f if ft != f else log1p_f(ft)


def log1p(x):
    """log(1 + x) for x > -1, branch-free; -inf at -1, NaN below, inf at inf.

    1 + x = 2**k m with m in [sqrt(1/2), sqrt(2)) from the bits of u = 1 + x;
    the rounding error of u is added back to f = m - 1 (scaled by 2**-k).
    """
    u = 1 + x
    m0 = mantissa(u)
    k0 = exponent(u)
    m = m0 * 0.5 if m0 > 1.4142135623730951 else m0
    k = k0 + 1 if m0 > 1.4142135623730951 else k0
    err = x - (u - 1) if u < 2 else 1 - (u - x)
    f = (m - 1) + (err if k == 0 else (err * pow2i(-k0)) * (0.5 if m0 > 1.4142135623730951 else 1))
    core = k * ln2_hi() + (log1p_ft(f) + k * ln2_lo())
    inf = by_type(1.0e38, 1.0e308) * 10
    big = by_type(3.4028234663852886e38, 1.7976931348623157e308)
    pos = core if u <= big else u
    return copysign(pos if u > 0 else (-inf if u == 0 else inf - inf), x)  # keeps -0


def log1p_01(e):
    """log(1 + e) for 0 <= e <= 1 (softplus and logsigmoid of -|x|): log1p without
    the exponent extraction and the special cases; NaN propagates."""
    u = 1 + e
    # e >= 2**-126 (exp's flush): e - (u - 1) is a normal number (halved only where u >= sqrt 2)
    f = (u - 1 if u < 1.4142135623730951 else 0.5 * u - 1) + (e - (u - 1)) * (
        1 if u < 1.4142135623730951 else 0.5
    )
    k = 0 if u < 1.4142135623730951 else 1
    # float32: e p(e), a minimax p of degree 9 for log(1 + e) / e on [0, 1]
    # (0.08 ulp): no division, no select.
    p32 = poly(
        e,
        0.9999999952868724,
        -0.4999990241717207,
        0.33329962267831187,
        -0.24954132134019227,
        0.19675931455145254,
        -0.15305570092256252,
        0.10603616826834436,
        -0.056959158633026016,
        0.019851262382928777,
        -0.0032439808067851305,
    )
    return by_type(e * p32, k * ln2_hi() + (log1p_ft(f) + k * ln2_lo()))


# --- tanh --------------------------------------------------------------------------


def tanh_amax():
    """Beyond this, tanh(x) rounds to +-1 (float32, float64): |x| is clamped to it."""
    return by_type(10.0, 20.0)


def tanh(x):
    """tanh(x), branch-free: sign(x) E / (E + 2), E = expm1(2|x|) = 2**n expm1(r) + (2**n - 1).

    One range reduction, expm1's polynomial and one division for every x (no
    second polynomial for small |x|: E has relative accuracy near 0, and the
    result is x itself for tiny x); |x| clamped to tanh_amax(), so
    tanh(+-inf) = +-1.  n is rounded from 2|x| - ln(2) / 5, so that n = 0 up to
    2|x| = 0.485 (at n = 1 there, 2 expm1(r) + 1 would cancel: 2.5 ulp instead
    of 2.3 in float64), and r stays in [-0.21, 0.49], within expm1_q's fit.
    A select of n = 0 instead measured 1.5x slower (gcc's vector code).  2**n is put
    into the exponent field from the reduction's rounded sum (``ldexpk``: n is in
    [0, 58]).
    """
    a = tanh_amax() if fabs(x) > tanh_amax() else fabs(x)
    y = a + a
    k = exp_k(y - 0.13862943611198905)
    n = k - by_type(12582912.0, 6755399441055744.0)
    s = ldexpk(1.0, k)
    big = fma(s, expm1_r(exp_r(y, n)), s - 1)
    return copysign(big / (big + 2), x)


def keepnan(s, v):
    """``s + s`` where ``s`` is NaN, else ``v``: gradients propagate NaN inputs, as a
    quiet NaN (the sum quiets a signalling one, as any arithmetic result would)."""
    return s + s if isnan(s) else v


def sig_lo(e, d):
    """The rounding error of d = 1 + e (0 <= e <= 1): e - (d - 1), exact (Sterbenz:
    d - 1 is exact for 1 <= d <= 2).  Below e = 2**-24 (2**-53) d is 1 and this is e;
    its products are only ever taken inside an fma, whose result is normal."""
    return e - (d - 1)


def sigmoid(x):
    """1 / (1 + exp(-x)) on -|x|, so exp never overflows: sigmoid(-|x|) = e / (1 + e).

    The rounding error of d = 1 + e is added back to first order (without it,
    2.4 ulp): within 1.9 ulp.  0 exactly where e**-|x| is below the normal range.
    """
    e = exp_neg(-fabs(x))
    d = 1 + e
    q = (1 if x >= 0 else e) / d
    return fma(-q, sig_lo(e, d), q)


def silu_lo():
    """Below this, x sigmoid(x) is below the normal range (silu and mish flush to 0)."""
    return by_type(-91.85677337646484, -714.9686572379665)


def silu_grad_lo():
    """Below this, silu'(x) (and mish'(x)) is below the normal range."""
    return by_type(-91.845703125, -714.9672556330942)


def silu(x):
    """x * sigmoid(x) as (x or x e) / (1 + e), e = exp(-|x|): one division, no product
    with a rounded sigmoid (within 2.8 ulp; with sigmoid's correction 2.4, 9% slower);
    silu(+-inf) = +inf, 0.  e is taken times 2**16 (numerator and denominator alike),
    so that x e stays normal where e is not: 0 exactly where the result is below the
    normal range."""
    e = exp16_neg(-fabs(x), silu_lo())
    w = (x * (65536.0 if x >= 0 else e)) / (65536.0 + e)
    return (
        0
        if x < by_type(-3.4028234663852886e38, -1.7976931348623157e308)
        else (x if x > 1.0e30 else w)
    )


def unscale16(e):
    """e * 2**-16 for e = exp16(...) where that can matter in 1 + e or 1 - e; a tiny
    normal number (2**-56) instead where e * 2**-16 is below 2**-56 (it is negligible
    there, and the product could be subnormal)."""
    return (e if e > 1.0e-12 else 1.0e-12) * 1.52587890625e-05


def silu_grad(x):
    """d/dx x sigmoid(x) = s (1 + x (1 - s)) = N / d**2 with e = exp(-|x|), d = 1 + e:
    N = 1 + e (1 + x) for x >= 0 (s = 1 / d, 1 - s = e / d), e ((1 + x) + e) below
    (s = e / d, 1 - s = 1 / d), d**2 = 1 + e (2 + e): one division, and 1 - s is never
    taken from s (which cancels as x grows); 1 + x is exact on [-2, 1].  e is taken
    times 2**16 (as silu's), N and d**2 alike, so that the result is normal down to
    silu_grad_lo() (-0 below: the derivative is negative below x = -1.28; +0 at -inf);
    1 at inf; x's own NaN at NaN (e's has the other sign)."""
    e = exp16_neg(-fabs(x), silu_grad_lo())
    x1 = 1 + x
    n = fma(x1, e, 65536.0) if x >= 0 else e * fma(e, 1.52587890625e-05, x1)
    w = n / fma(e, fma(e, 1.52587890625e-05, 2.0), 65536.0)
    return (
        (0.0 if x < by_type(-3.4028234663852886e38, -1.7976931348623157e308) else -0.0)
        if x < silu_grad_lo()
        else (1 if x > 3.0e38 else (w if x == x else x + x))
    )


def mish_t(x):
    """tanh(softplus(x)) with one exp: n / (n + 2), n = e (e + 2), e = exp(x); 1 above x = 20."""
    e = exp(x)
    n = e * (e + 2)
    return 1 if x > 20 else n / (n + 2)


def mish(x):
    """x * tanh(softplus(x)) = x n / (n + 2), n = e (e + 2), e = exp(x); mish(-inf) = 0.
    e is taken times 2**16, n times 2**32, so that the result is normal down to
    silu_lo() (0 below); t is scaled back before the product where it is normal."""
    e = exp16(x, silu_lo())
    n = e * (e + 131072.0)
    t = n / fma(n, 1.52587890625e-05, 131072.0)
    w = x * (t * 1.52587890625e-05) if x > -80 else (x * t) * 1.52587890625e-05  # one rounding
    return (
        0 if x < by_type(-3.4028234663852886e38, -1.7976931348623157e308) else (x if x > 20 else w)
    )


def mish_grad(x):
    """t + x (1 - t^2) sigmoid(x), t = tanh(softplus(x)), both from one e = exp(x):
    t = n / (n + 2), n = e (e + 2), sigmoid(x) = e / (1 + e); 1 above x = 20, 0 at -inf.
    1 - t**2 = u (2 - u) with u = 1 - t = 2 / (n + 2) (from t itself, it cancels for
    x >> 0: 10 ulp near x = 8.8 in float32, 21 near x = 19 in float64).  Scaled as mish: normal down to silu_grad_lo(), -0 below (+0 at -inf)."""
    e = exp16(x, silu_grad_lo())
    n = e * (e + 131072.0)
    d = fma(n, 1.52587890625e-05, 131072.0)
    r = 1 / d
    t = n * r
    u = 131072.0 * r
    w = (t + x * (u * (2 - u)) * (e / (1 + unscale16(e)))) * 1.52587890625e-05
    return (
        (0.0 if x < by_type(-3.4028234663852886e38, -1.7976931348623157e308) else -0.0)
        if x < silu_grad_lo()
        else (1 if x > 20 else w)
    )


# --- gelu: x Phi(x), Phi(-a) = e**(-a**2/2) erfcx(a / sqrt 2) / 2 -------------
#
# For a = |x|: erfcx(z) = e**(z**2) erfc(z) = t r(t), t = K / (K + z), with r a
# minimax polynomial on [t(zmax), 1] (no cancellation anywhere, so one form
# serves every x: Phi(x) is Phi(-a) for x < 0 and 1 - Phi(-a) for x >= 0).
# e**(-a**2/2) is computed from a**2 carried exactly as s + fma(a, a, -s), so the
# rounding of a**2 costs nothing (it would cost about a**2 ulp), and scaled by
# 2**16 so that the products that reach the result stay normal down to the
# result's own threshold: x Phi(x) and gelu'(x) are 0 exactly where they are
# below the normal range (x < -13.15 and -13.34 in float32, -37.62 and -37.71 in
# float64), and no operation makes a subnormal number on the way.


def gelu_amax():
    """Beyond -gelu_amax(), x Phi(x) is below the normal range (float32, float64)."""
    return by_type(13.146245956420898, 37.615868288603)


def gelu_grad_amax():
    """Beyond -gelu_grad_amax(), Phi(x) + x phi(x) is below the normal range."""
    return by_type(13.34188175201416, 37.71224631442959)


def erfcx_g(z):
    """e**(z**2) erfc(z) = t r(t) for 0 <= z <= 9.9 (27.2 in float64), t = K / (K + z) (a minimax
    polynomial r: K = 3, degree 9 in float32; K = 4, degree 22 in float64).

    t has a relative error of one rounding or two, which costs as much in the
    result, also in the far tail (a variable such as (K - z) / (K + z) would
    cost up to ten times more there)."""
    k = by_type(3.0, 4.0)
    t = k / (k + z)
    return t * by_type(
        poly(
            t,
            0.1880350529067782,
            0.1886981215080764,
            0.1713354346894521,
            0.1925308245366261,
            -0.002981854274757593,
            0.4054153599466982,
            -0.443410180624918,
            0.5373747206744379,
            -0.2928420905314412,
            0.05584460951401812,
        ),
        poly(
            t,
            0.14104739587930315,
            0.1410473963693774,
            0.13663965062647593,
            0.12782445807401305,
            0.11501103964163778,
            0.0990655543384501,
            0.08085972736188622,
            0.06361839978117788,
            0.03991413591254613,
            0.04582089968196408,
            -0.02916802029902635,
            0.10640420836006663,
            -0.16357225416407445,
            0.20012605441742468,
            -0.14880732823906628,
            -0.01440723285932778,
            0.20482910570618967,
            -0.30909134774849356,
            0.2720607159119622,
            -0.15404656591600518,
            0.05525946614997799,
            -0.011499522126702145,
            0.001064063140242912,
        ),
    )


def erfc(x):
    """erfc(x) = 1 - erf(x), branch-free, with relative accuracy for x >> 0.

    1 - x e(x**2) below |x| = 1/sqrt 2 (minimax e, degree 5 in float32, 9 in
    float64); else erfc(|x|) = e**(-x**2) erfcx(|x|) and erfc(-|x|) = 2 - erfc(|x|).
    0 where the result is below the normal range (x > 9.9 in float32, 27.2 in
    float64).
    """
    zmax = by_type(9.899494936611665, 27.223611075682079)
    z = zmax if fabs(x) > zmax else fabs(x)
    c = z * by_type(4097.0, 134217729.0)
    zh = c - (c - z)
    zl = z - zh
    q = unscale(exp_sum_sc(-(zh * zh), -((zh + zh) * zl + zl * zl)) * erfcx_g(z))
    e = by_type(
        poly(
            x * x,
            1.1283791662928986,
            -0.37612627508390334,
            0.11283527382905756,
            -0.02684358230969373,
            0.0051358069603922515,
            -0.0006927798845724601,
        ),
        poly(
            x * x,
            1.1283791670955126,
            -0.3761263890318281,
            0.11283791670893546,
            -0.026866170629454424,
            0.00522397742229124,
            -0.0008548311864248092,
            0.00012054642136411692,
            -1.4906071276284048e-05,
            1.612385138824665e-06,
            -1.3062763972523724e-07,
        ),
    )
    return keepnan(x, 1 - x * e if fabs(x) < 0.7071067811865476 else (q if x >= 0 else 2 - q))


def gelu_erfcx(a):
    """erfcx(a / sqrt 2) = 2 e**(a**2/2) Phi(-a) for 0 <= a <= gelu_grad_amax(): K(a) / (K(a) + a P(a)).

    K and P are polynomials with positive coefficients (degree 4 in float32, 10
    in float64), fitted (Lawson-weighted rational least squares in mpmath) to
    the relative error of the quotient: 0.13 (float32) and 0.14 (float64) of
    an epsilon after rounding the coefficients.  In this form the rounding
    errors of K and P reach the quotient scaled by 1 - erfcx <= 1, which
    vanishes at 0, where gelu's condition number is smallest."""
    k = by_type(
        poly(
            a,
            3.7869091033935547,
            3.315671443939209,
            1.3850961923599243,
            0.30688905715942383,
            0.031058477237820625,
        ),
        poly(
            a,
            2.0,
            3.3140677819428457,
            2.722158710810835,
            1.432270862829059,
            0.5296118319718276,
            0.14315996063131617,
            0.02861150241606558,
            0.0041799928100858755,
            0.000428875487884305,
            2.8104983197917837e-05,
            9.044548028108129e-07,
        ),
    )
    p = by_type(
        poly(
            a,
            3.021517515182495,
            3.162874221801758,
            1.4674105644226074,
            0.35359570384025574,
            0.03892553597688675,
        ),
        poly(
            a,
            1.5957691216057313,
            2.9174830614015375,
            2.5767876872683906,
            1.4347727215030952,
            0.5554055263238225,
            0.1559812960437797,
            0.03221445622052461,
            0.004845192968036728,
            0.0005105442949004312,
            3.43199179682112e-05,
            1.13356599092545e-06,
        ),
    )
    return k / fma(a, p, k)


def gauss_k(s):
    """rint(-s / (2 ln 2)) + 1.5 * 2**23 (2**52): the exponent n of e**(-s/2) before the
    rounder is taken off, the form ``ldexpk`` scales by.  The factor is exp_n's
    1 / ln 2 rounded, halved (exact), so that -s/2 is never formed."""
    return fma(
        s,
        by_type(-0.7213475108146667, -0.7213475204444817),
        by_type(12582912.0, 6755399441055744.0),
    )


def ln2_w2():
    """2 ln 2, ln 2 rounded to the working precision and doubled (exact)."""
    return by_type(1.3862943649291992, 1.3862943611198906)


def gauss_p(u, sc):
    """sc e**r for u = -2 r, |r| <= ln2/2: the minimax polynomial in r (degree 6 in float32,
    11 in float64: 2e-9 and 4e-18), its i-th coefficient times (-1/2)**i (see gauss_sc)."""
    return by_type(
        poly(
            u,
            sc * 1.0,
            sc * -0.5000000162595145,
            sc * 0.12499998511632954,  # 0.49999994046531815 / 4
            sc * -0.02083303776618474,  # 0.16666430212947791 / -8
            sc * 0.0026042527558400546,  # 0.041668044093440874 / 16
            sc * -0.00026169455925614035,  # 0.008374225896196491 / -32
            sc * 2.1626936419663093e-05,  # 0.001384123930858438 / 64
        ),
        poly(
            u,
            sc * 1.0,
            sc * -0.5,
            sc * 0.1250000000000003,  # 0.5000000000000012 / 4
            sc * -0.020833333333332954,  # 0.16666666666666363 / -8
            sc * 0.0026041666666573784,  # 0.041666666666518054 / 16
            sc * -0.00026041666667163984,  # 0.008333333333492475 / -32
            sc * 2.170138897858094e-05,  # 0.0013888888946291802 / 64
            sc * -1.550099182318041e-06,  # 0.00019841269533670924 / -128
            sc * 9.688082305961955e-08,  # 2.4801490703262605e-05 / 256
            sc * -5.3823344752074074e-09,  # 2.7557552513061926e-06 / -512
            sc * 2.6983406976820204e-10,  # 2.763100874426389e-07 / 1024
            sc * -1.2213141171164925e-11,  # 2.5012513118545766e-08 / -2048
        ),
    )


def gauss_sc(a, sc):
    """sc e**(-a**2/2) for |a| <= gelu_grad_amax(), sc a power of 2 that keeps the
    result normal (1/2 for gelu, 2**15 for its derivative).

    a**2 is carried exactly as s + fma(a, a, -s) (its rounding would cost
    about a**2 / 4 ulp); u = -2 r = a**2 + 2 n ln 2 takes n ln 2 in one rounding,
    with ln 2 to working precision: its error, n times 2e-9 (3e-17), is below
    0.03 ulp per unit of gelu's condition number (about a**2 = 1.4 n).
    e**r is a minimax polynomial on [-ln2/2, ln2/2] (degree 6 in float32, 11 in
    float64: 2e-9 and 4e-18) whose coefficients carry sc, evaluated at u with the
    i-th coefficient times (-1/2)**i: every Horner step is the one in r times a
    signed power of 2, so the bits are those of the polynomial in r, with neither
    -s/2 nor -s formed (gcc would otherwise carry the clamp of a through both);
    2**n goes into the exponent field (``ldexpk``)."""
    s = a * a
    k = gauss_k(s)
    n = k - by_type(12582912.0, 6755399441055744.0)
    return ldexpk(gauss_p(fma(n, ln2_w2(), s) - fma(-a, a, s), sc), k)


def gelu_erfcx_fwd(a):
    """erfcx(a / sqrt 2) for gelu's forward, a >= 0: in float32 K(a) / (K(a) + a P(a)) of
    degree 3 (K(0) = 1, positive coefficients), fitted to the relative error weighted by
    gelu's condition number c at -a: within 0.4 of 2**-24 up to a = 1.5 (c about 1), 3.4
    up to 2, 28 up to 5, 121 up to 13 (c = 26 to 173), and above the true value near
    gelu_amax() (+17), so that x Phi(x) does not round below the normal range there;
    gelu_erfcx in float64."""
    k = poly(a, 1.0, 0.6680048108100891, 0.2074510157108307, 0.026776911690831184)
    p = poly(a, 0.7978835105895996, 0.6696239709854126, 0.23275351524353027, 0.03357400745153427)
    return by_type(k / fma(a, p, k), gelu_erfcx(a))


def gelu_gauss(a):
    """e**(-a**2/2) / 2 for gelu's forward, |a| <= gelu_grad_amax(): in float32 from a**2
    rounded, u = a**2 + 2 n ln 2 (the rounding of a**2 costs at most 0.5 ulp per unit of
    the condition number, about a**2 beyond a = 2); gauss_sc(a, 0.5) in float64."""
    s = a * a
    k = gauss_k(s)
    n = k - by_type(12582912.0, 6755399441055744.0)
    return by_type(ldexpk(gauss_p(fma(n, ln2_w2(), s), 0.5), k), gauss_sc(a, 0.5))


def gelu_erf(x):
    """x Phi(x) = x - v (x > 0) or -v, v = |x| Phi(-|x|) = (a erfcx(a / sqrt 2)) e**(-a**2/2) / 2
    with a = |x|: one form for every x (no cancellation, no branch to select);
    -0 where the result is below the normal range, +0 at -inf, x above.

    Only the Gaussian factor takes x clamped (its 2**n must stay in the exponent
    field): the quotient erfcx is finite, 0 or NaN for any a, and beyond
    gelu_amax() one select takes m = max(x, -0) (x, or -0 for x < 0) instead of
    m - v; at -inf, +0."""
    a = fabs(x)
    v = (a * gelu_erfcx_fwd(a)) * gelu_gauss(gelu_amax() if a > gelu_amax() else a)
    m = -0.0 if x < -0.0 else x
    y = m - v
    return (
        (m if x >= by_type(-3.4028234663852886e38, -1.7976931348623157e308) else 0.0)
        if a > gelu_amax()
        else y
    )


def gelu_erf_grad(x):
    """Phi(x) + x phi(x) = 1 + d (x >= 0) or -d, d = (2 a / sqrt(2 pi) - erfcx(a / sqrt 2))
    e**(-a**2/2) / 2 with a = |x| (e taken times 2**16, 2 / sqrt(2 pi) in two parts:
    d cancels near x = -0.75); -0 below the normal range, +0 at -inf, 1 at inf."""
    fa = fabs(x)
    a = gelu_grad_amax() if fa > gelu_grad_amax() else fa
    t = fma(a, by_type(-2.2670340271702116e-08, -4.98465440455546e-17), -gelu_erfcx(a))
    d = (
        fma(a, by_type(0.7978845834732056, 0.7978845608028654), t) * gauss_sc(a, 32768.0)
    ) * 1.52587890625e-05
    y = 1 + d if x >= 0 else -d
    return (
        (0.0 if x < by_type(-3.4028234663852886e38, -1.7976931348623157e308) else -0.0)
        if x < -gelu_grad_amax()
        else y
    )


def gelu_tanh_u2(x):
    """2 u with u = sqrt(2 / pi) (x + 0.044715 x^3): 1 + tanh(u) = 2 sigmoid(2 u)."""
    return 1.5957691216057308 * (x + 0.044715 * x * x * x)


def sigmoid16(v, lo):
    """sigmoid(v) * 2**16 as sigmoid computes it (the same bits, scaled), 0 below v = lo
    (lo >= -97, -718 in float64)."""
    e = exp16_neg(-fabs(v), lo)
    eu = unscale16(e)
    d = 1 + eu
    q = (65536.0 if v >= 0 else e) / d
    return fma(-q, sig_lo(eu, d), q)


def flush16(w):
    """w * 2**-16, or a variable 0 of w's sign where that is below the normal range."""
    t = by_type(7.703719777548943e-34, 1.4582244039112795e-303)  # 2**(emin + 16)
    return copysign(w - w, w) if fabs(w) < t else w * 1.52587890625e-05


def gelu_tanh_vlo():
    """Below 2u = this, x sigmoid(2u) (as computed from the rounded 2u) is below the normal
    range; gelu'(x) is normal a little further (x < -9.97 and -21.14 in float64)."""
    return by_type(-89.64911651611328, -711.4493161910693)


def gelu_tanh(x):
    """x (1 + tanh(u)) / 2 = x sigmoid(2 u), which has no cancellation for x << 0;
    sigmoid taken times 2**16, so that the product is 0 only where it is below the
    normal range (the product and the scaling back round once where it is normal):
    -0 there (x s = -0 up to -max), +0 only in the limit at -inf."""
    s = sigmoid16(gelu_tanh_u2(x), gelu_tanh_vlo())
    return (
        0
        if x < by_type(-3.4028234663852886e38, -1.7976931348623157e308)
        else (x if x > 1.0e30 else (x * s) * 1.52587890625e-05)
    )


def gelu_tanh_grad(x):
    """s + x s (1 - s) du2/dx, s = sigmoid(2 u) (taken times 2**16, as in gelu_tanh).

    Negative below x = -0.75: -0 where it is below the normal range (flush16 keeps the
    sign), and -0 too where s itself is 0 (below x = -10.41, -21.24 in float64: s + x s ...
    would be +0, and NaN where x**3 overflows); +0 only in the limit at -inf."""
    s = sigmoid16(gelu_tanh_u2(x), by_type(-97.0, -718.0))
    d = 1.5957691216057308 * (1 + 0.134145 * x * x)
    w = flush16(s + x * (s * (1 - unscale16(s))) * d)
    return (
        (0.0 if x < by_type(-3.4028234663852886e38, -1.7976931348623157e308) else -0.0)
        if s == 0
        else (1 if x >= 30 else w)
    )


def softsign(x):
    """x / (1 + |x|), with the limits +-1 at +-inf."""
    return x / (1 + fabs(x)) if not (fabs(x) > 3.0e38) else (1 if x > 0 else -1)


def softplus(z):
    """log(1 + e**z) = max(z, 0) + log1p(e**-|z|), no overflow, relative accuracy for z << 0."""
    return (z if z > 0 else 0) + log1p_01(exp_neg(-fabs(z)))


def softplus_shift(beta):
    """S = 1 - exponent(beta), so that |beta| 2**S is in [2, 4): softplus_beta's scale
    (clamped to pow2i's range; a subnormal, infinite or NaN beta gives an end of it)."""
    return clamp(1 - exponent(beta), by_type(-126.0, -1022.0), by_type(127.0, 1023.0))


def softplus_beta(x, beta):
    """softplus(beta x) / beta, 0 exactly where that is below the normal range, for
    every beta: +0 for beta > 0, -0 for beta < 0.

    z = beta x; e = e**-|z| as exp_neg computes it, and from the same range reduction
    e**-|z| 2**S (S = softplus_shift(beta)), which is normal wherever the result is.
    Below z = -25 (-45 in float64) softplus(z) is e**z to the last bit, and the result
    is (e**z 2**S) / (beta 2**S), both exact scalings: normal where e**z itself is
    not, with |beta| < 1 (e**z / beta is normal down to z = ln(|beta| 2**-126)).
    Above it, softplus(z) / beta, whose e is a normal number there.  A numerator
    below 2**-126 |divisor| is taken as 0 before the division (with |beta| > 1 a
    normal softplus(z) would give a subnormal result, and the division on it is slow).
    """
    z = x * beta
    sh = softplus_shift(beta)
    a = -fabs(z)
    # a below this gives n + S < -125 for every S (the numerator is 0 there)
    xc = by_type(-176.0, -1418.0) if a < by_type(-176.0, -1418.0) else a
    k = exp_k(xc)
    ep = exp_p(exp_r(xc, k - by_type(12582912.0, 6755399441055744.0)))
    e = xc - xc if a < exp_neg_lo() else ldexpk(ep, k)
    es = xc - xc if k + sh < by_type(12582787.0, 6755399441054723.0) else ldexpk(ep, k + sh)
    bs = beta * pow2i(sh)
    tiny = by_type(1.1754943508222875e-38, 2.2250738585072014e-308)
    s = es if z < by_type(-25.0, -45.0) else (z if z > 0 else 0) + log1p_01(e)
    d = bs if z < by_type(-25.0, -45.0) else beta
    m = fabs(bs) if z < by_type(-25.0, -45.0) else (fabs(beta) if fabs(beta) > 1 else 1)
    lim = tiny * m
    return (s - s if s < lim else s) / d


def logsigmoid(x):
    """log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|))."""
    return (x if x < 0 else 0) - log1p_01(exp_neg(-fabs(x)))


def tanhshrink(x):
    """x - tanh(x) without cancellation: x**3 s(x**2) below |x| = 1 (minimax s,
    degree 7 in float32, 15 in float64), else sign(x) ((|x| - 1) + 2 e / (1 + e)),
    e = exp(-2 |x|), a sum of two terms of the same sign."""
    z = x * x
    s = by_type(
        poly(
            z,
            0.33333333157136696,
            -0.13333310695058853,
            0.05396342095237387,
            -0.02182958547431507,
            0.008697951017116557,
            -0.0032069536224536687,
            0.0009236092418409453,
            -0.00014282395129520693,
        ),
        poly(
            z,
            0.3333333333333333,
            -0.13333333333333092,
            0.053968253968046734,
            -0.021869488529139617,
            0.008863235404739524,
            -0.0035921266808545487,
            0.0014558247010644978,
            -0.0005899793316902718,
            0.00023895716049117925,
            -9.646300419031727e-05,
            3.838995027624008e-05,
            -1.460650090215806e-05,
            4.988037662198644e-06,
            -1.3793192769328703e-06,
            2.6334844541376724e-07,
            -2.5160439258495595e-08,
        ),
    )
    e = exp_neg(-2 * fabs(x))
    return copysign(fabs((x * z) * s) if fabs(x) < 1 else (fabs(x) - 1) + (e + e) / (1 + e), x)


HELPERS = (
    # math: exp and relatives, log1p, tanh, erfc (in dependency order)
    keepnan,
    exp_hi,
    clamp,
    expm1_q,
    ln2_hi,
    ln2_lo,
    exp_k,
    exp_n,
    exp_r,
    expm1_r,
    exp_p,
    exp_lo,
    exp_neg_lo,
    exp,
    exp_neg,
    exp16_neg,
    exp16,
    exp_sc_lo,
    unscale,
    exp_sum_sc,
    expm1,
    one_minus_exp,
    log1p_f,
    log1p_ft,
    log1p,
    log1p_01,
    tanh_amax,
    tanh,
    gelu_amax,
    gelu_grad_amax,
    erfcx_g,
    erfc,
    gelu_erfcx,
    gauss_k,
    ln2_w2,
    gauss_p,
    gauss_sc,
    gelu_erfcx_fwd,
    gelu_gauss,
    # activations
    sig_lo,
    sigmoid,
    silu_lo,
    silu_grad_lo,
    unscale16,
    silu,
    silu_grad,
    mish_t,
    mish,
    mish_grad,
    gelu_erf,
    gelu_erf_grad,
    gelu_tanh_u2,
    gelu_tanh_vlo,
    sigmoid16,
    flush16,
    gelu_tanh,
    gelu_tanh_grad,
    softsign,
    softplus,
    softplus_shift,
    softplus_beta,
    logsigmoid,
    tanhshrink,
)
