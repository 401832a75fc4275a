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
 * gelu (exact): x Phi(x) with Phi(-a) = e**(-a**2/2) erfcx(a / sqrt 2) / 2 for
 *   a = |x|: the square carried exactly (s + fma(a, a, -s)), erfcx by
 *   fastact's t r(t), t = K / (K + z); x Phi(-a) for x < 0, x - x Phi(-a) above;
 *   0 below the normal range, x above it. */

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

/* e**r for |r| <= ln2/2 */
FN V NAME(exp_r)(V r) {
#if F64
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

/* erfcx(z) / 2 = t r(t) / 2, t = K / (K + z) (fastact's r, halved) */
FN V NAME(half_erfcx)(V z) {
#if F64
    static const double c[] = {
        0.001064063140242912, -0.011499522126702145, 0.05525946614997799, -0.15404656591600518,
        0.2720607159119622, -0.30909134774849356, 0.20482910570618967, -0.01440723285932778,
        -0.14880732823906628, 0.20012605441742468, -0.16357225416407445, 0.10640420836006663,
        -0.02916802029902635, 0.04582089968196408, 0.03991413591254613, 0.06361839978117788,
        0.08085972736188622, 0.0990655543384501, 0.11501103964163778, 0.12782445807401305,
        0.13663965062647593, 0.1410473963693774, 0.14104739587930315};
    const V k = C(0, 4.0);
#else
    static const double c[] = {
        0.05584460951401812, -0.2928420905314412, 0.5373747206744379, -0.443410180624918,
        0.4054153599466982, -0.002981854274757593, 0.1925308245366261, 0.1713354346894521,
        0.1886981215080764, 0.1880350529067782};
    const V k = C(3.0f, 0);
#endif
    const V t = DIV(k, ADD(k, z));
    V p = SET1((T)(0.5 * c[0]));
#pragma GCC unroll 32
    for (size_t j = 1; j < sizeof(c) / sizeof(c[0]); j++) p = FMA(p, t, SET1((T)(0.5 * c[j])));
    return MUL(t, p);
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
    const V q = MUL(NAME(half_erfcx)(MUL(a, C(0.7071067811865476f, 0.7071067811865476))),
                    NAME(exp_r)(r));
    const V w = SCALE(MUL(x, q), n);
    const V res = SEL(LT(x, zero), w, SUB(x, w));
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
