/* The math of the floor loops, written once over the vector operations that
 * floor.c defines for one instruction set and float type (T, V, W, SET1, FMA,
 * SEL, SCALE, ...); included once per pair, and every macro is undefined at
 * the end.
 *
 * exp: Cody-Waite reduction x = n ln2 + r (n rounded by the 1.5 * 2**23 trick,
 * ln 2 in two parts), e**r by a polynomial, then 2**n: vscalef on AVX-512
 * (correct down to the subnormal range); on AVX2 2**(n - 1) built from its
 * bits, times 2 e**r, and 0 below 2**-125, as fastact's helper does.
 * float32: e**r = 1 + r + r**2 q(r), q of degree 4 (degree 6 in all, Horner's
 * scheme), a relative-error fit on [-ln2/2, ln2/2] (3e-9); expm1's q the
 * same (1.3e-8).  float64: fastact's polynomials (degree 12, with 1 + r's
 * rounding error taken back), so that a difference there is code, not math.
 *
 * sigmoid: (x < 0 ? e : 1) / (1 + e), e = exp(-|x|), the rounding error of
 *   1 + e taken back to first order (fastact's formula).
 * tanh: sign(x) E / (E + 2), E = expm1(2|x|) = 2**n expm1(r) + (2**n - 1).
 * silu: (x < 0 ? x e : x) / (1 + e); on AVX-512 x e**r / (1 + e) scaled by
 *   2**n last, so that results stay accurate down to the normal range.
 * gelu (exact): x - v (x > 0) or -v, v = |x| Phi(-|x|) = a erfcx(a / sqrt 2)
 *   e**(-a**2/2) / 2 for a = |x|: fastact's one form (erfcx as the rational
 *   K / (K + a P), the square carried exactly (s + fma(a, a, -s))); 0 below the
 *   normal range, x above it. */

#define CAT3_(a, b, c) a##b##c
#define CAT3(a, b, c) CAT3_(a, b, c)
#define NAME(f) CAT3(fa_##f, _, SFX)
#define FN static inline __attribute__((always_inline, target(ISA_TARGET)))
#define LOOP static __attribute__((noinline, target(ISA_TARGET))) void
#define C(f32, f64) SET1(F64 ? (T)(f64) : (T)(f32))

/* n = rint(x / ln 2) and r = x - n ln 2 */
FN V NAME(reduce)(V x, V *n) {
    const V magic = C(12582912.0f, 6755399441055744.0);
    *n = SUB(FMA(x, C(1.4426950408889634f, 1.4426950408889634), magic), magic);
    V r = FNMA(*n, C(0.693359375f, 0.6931471803691238), x);
    return FNMA(*n, C(-2.12194440054690583e-4f, 1.9082149292705877e-10), r);
}

#if F64
/* q(r) of e**r - 1 = r + r**2 q(r) for |r| <= ln2/2 (float64; float32 has its own
 * polynomials in exp_r and expm1_r) */
FN V NAME(expm1_q)(V r) {
    V q = C(0, 2.0970154410925276e-09);
    q = FMA(q, r, C(0, 2.5162747269830168e-08));
    q = FMA(q, r, C(0, 2.755703164527803e-07));
    q = FMA(q, r, C(0, 2.7557042433300087e-06));
    q = FMA(q, r, C(0, 2.4801587714564666e-05));
    q = FMA(q, r, C(0, 0.00019841270144114635));
    q = FMA(q, r, C(0, 0.0013888888888616674));
    q = FMA(q, r, C(0, 0.008333333333198106));
    q = FMA(q, r, C(0, 0.04166666666666734));
    q = FMA(q, r, C(0, 0.16666666666666835));
    q = FMA(q, r, C(0, 0.5));
    return q;
}
#endif

/* e**r for |r| <= ln2/2 */
FN V NAME(exp_r)(V r) {
#if F64
    const V q = NAME(expm1_q)(r);
    const V one = C(1, 1);
    const V hi = ADD(one, r);
    return ADD(hi, FMA(MUL(r, r), q, ADD(SUB(one, hi), r)));
#else
    V p = C(0.001381446490995586f, 0);
    p = FMA(p, r, C(0.008368780836462975f, 0));
    p = FMA(p, r, C(0.04166839271783829f, 0));
    p = FMA(p, r, C(0.1666651964187622f, 0));
    p = FMA(p, r, C(0.4999999403953552f, 0));
    p = FMA(p, r, C(1, 0));
    return FMA(p, r, C(1, 0));
#endif
}

/* e**r - 1 for |r| <= ln2/2, as r + r**2 q(r) */
FN V NAME(expm1_r)(V r) {
#if F64
    const V q = NAME(expm1_q)(r);
#else
    V q = C(0.0013882507337257266f, 0);
    q = FMA(q, r, C(0.008366580121219158f, 0));
    q = FMA(q, r, C(0.04166720062494278f, 0));
    q = FMA(q, r, C(0.1666654348373413f, 0));
    q = FMA(q, r, C(0.4999999701976776f, 0));
#endif
    return FMA(MUL(r, r), q, r);
}

/* e**y for y >= the exp floor's lower clamp (HAS_SCALEF) or as fastact's exp (AVX2) */
FN V NAME(expv)(V x) {
#if HAS_SCALEF
    const V xc = MIN(C(89.0f, 710.0), MAX(C(-104.0f, -746.0), x));
    V n;
    const V p = NAME(exp_r)(NAME(reduce)(xc, &n));
    return SCALE(p, n);
#else
    const V lo = C(-86.6433f, -707.70327135);
    const V xc = MIN(C(89.0f, 710.0), MAX(lo, x));
    V n;
    const V p = NAME(exp_r)(NAME(reduce)(xc, &n));
    return SEL(LT(x, lo), C(0, 0), SCALE(ADD(p, p), SUB(n, C(1, 1))));
#endif
}

FN V NAME(v_exp)(V x) { return NAME(expv)(x); }

FN V NAME(v_sigmoid)(V x) {
    const V one = C(1, 1);
    const V e = NAME(expv)(SUB(C(0, 0), ABS(x)));
    const V d = ADD(one, e);
    const V err = SUB(e, SUB(d, one));
    const V q = DIV(SEL(LT(x, C(0, 0)), e, one), d);
    return FNMA(q, err, q);
}

FN V NAME(v_tanh)(V x) {
    const V one = C(1, 1);
    const V a = MIN(C(10.0f, 20.0), ABS(x));
    V n;
    const V em = NAME(expm1_r)(NAME(reduce)(ADD(a, a), &n));
    const V s = SCALE(one, n);
    const V big = FMA(s, em, SUB(s, one));
    return OR(DIV(big, ADD(big, C(2, 2))), SIGNOF(x));
}

FN V NAME(v_silu)(V x) {
    const V one = C(1, 1), zero = C(0, 0);
#if HAS_SCALEF
    const V lo = C(-110.0f, -760.0); /* silu(lo) rounds to 0 */
    const V y = MAX(lo, SUB(zero, ABS(x)));
    V n;
    const V p = NAME(exp_r)(NAME(reduce)(y, &n));
    const V d = ADD(one, SCALE(p, n));
    const M neg = LT(x, zero);
    const V w = DIV(SEL(neg, MUL(MAX(lo, x), p), x), d);
    return SCALE(w, SEL(neg, n, zero));
#else
    const V e = NAME(expv)(SUB(zero, ABS(x)));
    /* x clamped where e is 0 (no -inf * 0) */
    return DIV(SEL(LT(x, zero), MUL(MAX(C(-86.6433f, -707.70327135), x), e), x), ADD(one, e));
#endif
}

/* erfcx(a / sqrt 2) = K(a) / (K(a) + a P(a)): fastact's rational (positive
 * coefficients, highest degree first) */
FN V NAME(gelu_erfcx)(V a) {
#if F64
    static const double k[] = {9.044548028108129e-07, 2.8104983197917837e-05, 0.000428875487884305, 0.0041799928100858755, 0.02861150241606558, 0.14315996063131617, 0.5296118319718276, 1.432270862829059, 2.722158710810835, 3.3140677819428457, 2.0};
    static const double p[] = {1.13356599092545e-06, 3.43199179682112e-05, 0.0005105442949004312, 0.004845192968036728, 0.03221445622052461, 0.1559812960437797, 0.5554055263238225, 1.4347727215030952, 2.5767876872683906, 2.9174830614015375, 1.5957691216057313};
#else
    static const double k[] = {0.031058477237820625, 0.30688905715942383, 1.3850961923599243, 3.315671443939209, 3.7869091033935547};
    static const double p[] = {0.03892553597688675, 0.35359570384025574, 1.4674105644226074, 3.162874221801758, 3.021517515182495};
#endif
    V kv = SET1((T)k[0]), pv = SET1((T)p[0]);
#pragma GCC unroll 16
    for (size_t j = 1; j < sizeof(k) / sizeof(k[0]); j++) {
        kv = FMA(kv, a, SET1((T)k[j]));
        pv = FMA(pv, a, SET1((T)p[j]));
    }
    return DIV(kv, FMA(a, pv, kv));
}

FN V NAME(v_gelu)(V x) {
    const V zero = C(0, 0);
    const V amax = C(13.146245956420898f, 37.615868288603);
    const V a = MIN(amax, ABS(x));
    const V s = MUL(a, a);
    V n;
    const V r0 = NAME(reduce)(MUL(s, C(-0.5f, -0.5)), &n);
    /* the rounding error of a**2, exact by the fma, halved and taken into r */
    const V r = FMA(FNMA(a, a, s), C(0.5f, 0.5), r0);
    /* v = |x| Phi(-|x|) = a erfcx(a / sqrt 2) e**(-a**2/2) / 2 */
    const V v = SCALE(MUL(MUL(a, NAME(gelu_erfcx)(a)), MUL(NAME(exp_r)(r), C(0.5f, 0.5))), n);
    const V res = SEL(GT(x, zero), SUB(x, v), SUB(zero, v));
    return SEL(GT(x, amax), x, SEL(LT(x, SUB(zero, amax)), zero, res));
}

#define FLOOR_LOOP(f)                                                          \
    LOOP NAME(f)(const void *xv, void *yv, long n) {                           \
        const T *x = (const T *)xv;                                            \
        T *y = (T *)yv;                                                        \
        long i = 0;                                                            \
        for (; i + W <= n; i += W) STORE(y + i, NAME(v_##f)(LOAD(x + i)));     \
        if (i < n) {                                                           \
            T buf[W] = {0};                                                    \
            memcpy(buf, x + i, (size_t)(n - i) * sizeof(T));                   \
            STORE(buf, NAME(v_##f)(LOAD(buf)));                                \
            memcpy(y + i, buf, (size_t)(n - i) * sizeof(T));                   \
        }                                                                      \
    }
FLOOR_LOOP(exp)
FLOOR_LOOP(sigmoid)
FLOOR_LOOP(tanh)
FLOOR_LOOP(silu)
FLOOR_LOOP(gelu)

#undef FLOOR_LOOP
#undef CAT3_
#undef CAT3
#undef NAME
#undef FN
#undef LOOP
#undef C
#undef ISA_TARGET
#undef SFX
#undef T
#undef V
#undef M
#undef W
#undef F64
#undef HAS_SCALEF
#undef SET1
#undef LOAD
#undef STORE
#undef ADD
#undef SUB
#undef MUL
#undef DIV
#undef FMA
#undef FNMA
#undef MIN
#undef MAX
#undef ABS
#undef LT
#undef GT
#undef SEL
#undef POW2I
#undef SCALE
#undef SIGNOF
#undef OR
