/* 16-bit storage (float16, bfloat16) over the float32 kernels of fa_kernels.h.
 *
 * A 16-bit call runs the float32 kernel of its entry block by block: each
 * block of FA_HALF_BLOCK elements is widened exactly into a float32 buffer on
 * the stack, computed by the float32 kernel, and rounded once to the 16-bit
 * type (round to nearest even, overflow to +-inf, NaN to a quiet NaN).  The
 * results are the float32 kernel's rounded once, at every position of an
 * array; fastact/_half.py converts the same way (NumPy, bit for bit). */
#ifndef FA_HALF_H
#define FA_HALF_H
#include <string.h>
#include "fa_kernels.h"

/* The formats, as fastact/_half.py numbers them. */
#define FA_FLOAT16 1
#define FA_BFLOAT16 2
/* Elements per block: small enough that a block's loads, arithmetic and stores
 * overlap with the memory traffic of the next (see fa_half_unary). */
#ifndef FA_HALF_BLOCK
#define FA_HALF_BLOCK 256
#endif

#if defined(__GNUC__) || defined(__clang__)
#define FA_ALIGN64 __attribute__((aligned(64)))
#else
#define FA_ALIGN64
#endif

FA_INLINE float fa_f32_from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
FA_INLINE uint32_t fa_bits_from_f32(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* float16 -> float32, exact: the magnitude's bits moved to float32's place
 * and scaled by 2**112 (exact for normal and subnormal halves), the
 * exponent of inf/NaN set to all ones, then the sign. */
FA_INLINE float fa_f16_to_f32(uint16_t h) {
    const uint32_t u = fa_bits_from_f32(fa_f32_from_bits((uint32_t)(h & 0x7fffu) << 13) * 0x1p112f);
    const uint32_t special = (h & 0x7c00u) == 0x7c00u ? 0x7f800000u : 0u;
    return fa_f32_from_bits(u | special | ((uint32_t)(h & 0x8000u) << 16));
}

/* float32 -> float16, rounded to nearest even: overflow gives inf, NaN a quiet
 * NaN with the top payload bits; below 2**-14 the FPU's own rounding of
 * |v| + 0.5 (whose ulp is float16's smallest subnormal) gives the subnormal. */
FA_INLINE uint16_t fa_f32_to_f16(float v) {
    const uint32_t u = fa_bits_from_f32(v);
    const uint32_t sign = (u >> 16) & 0x8000u;
    const uint32_t a = u & 0x7fffffffu;
    const uint32_t big = a > 0x7f800000u ? (0x7e00u | ((a >> 13) & 0x3ffu)) : 0x7c00u;
    const uint32_t small = fa_bits_from_f32(fa_f32_from_bits(a) + 0.5f) - 0x3f000000u;
    const uint32_t normal = (a + 0xc8000fffu + ((a >> 13) & 1u)) >> 13;
    const uint32_t m = a >= 0x47800000u ? big : (a < 0x38800000u ? small : normal);
    return (uint16_t)(m | sign);
}

FA_INLINE float fa_bf16_to_f32(uint16_t h) { return fa_f32_from_bits((uint32_t)h << 16); }

/* float32 -> bfloat16, rounded to nearest even (overflow gives inf), NaN quiet. */
FA_INLINE uint16_t fa_f32_to_bf16(float v) {
    const uint32_t u = fa_bits_from_f32(v);
    const uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? ((u >> 16) | 0x40u) : r);
}

FA_CLONES static void fa_widen_f16(const uint16_t *h, float *f, Py_ssize_t n) {
    for (Py_ssize_t k = 0; k < n; k++) f[k] = fa_f16_to_f32(h[k]);
}
FA_CLONES static void fa_narrow_f16_c(const float *f, uint16_t *h, Py_ssize_t n) {
    for (Py_ssize_t k = 0; k < n; k++) h[k] = fa_f32_to_f16(f[k]);
}

/* float32 -> float16 by the F16C instruction (x86-64 with clones): the same
 * rounding as fa_f32_to_f16, bit for bit (to nearest even whatever MXCSR says,
 * subnormal results exact, NaN quiet with the top payload bits), in one
 * instruction per eight elements where the C above takes some thirty.  Only
 * the narrowing: the instruction's widening quiets signalling NaNs, which
 * fa_f16_to_f32 keeps. */
#if FA_HAVE_CLONES
#include <immintrin.h>
#define FA_HAVE_F16C 1
__attribute__((target("avx,f16c"))) static void fa_narrow_f16_f16c(const float *f, uint16_t *h,
                                                                  Py_ssize_t n) {
    Py_ssize_t k = 0;
    for (; k + 8 <= n; k += 8)
        _mm_storeu_si128((__m128i *)(h + k),
                         _mm256_cvtps_ph(_mm256_loadu_ps(f + k), _MM_FROUND_TO_NEAREST_INT));
    if (k < n) {
        float t[8] = {0};
        uint16_t u[8];
        memcpy(t, f + k, (size_t)(n - k) * sizeof(float));
        _mm_storeu_si128((__m128i *)u, _mm256_cvtps_ph(_mm256_loadu_ps(t), _MM_FROUND_TO_NEAREST_INT));
        memcpy(h + k, u, (size_t)(n - k) * sizeof(uint16_t));
    }
}
/* Whether this CPU has F16C (set once by fa_half_init, at module load). */
static int fa_f16c = 0;
static void fa_half_init(void) {
    __builtin_cpu_init();
    fa_f16c = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
}
#else
#define FA_HAVE_F16C 0
static void fa_half_init(void) {}
#endif

static void fa_narrow_f16(const float *f, uint16_t *h, Py_ssize_t n) {
#if FA_HAVE_F16C
    if (fa_f16c) {
        fa_narrow_f16_f16c(f, h, n);
        return;
    }
#endif
    fa_narrow_f16_c(f, h, n);
}
FA_CLONES static void fa_widen_bf16(const uint16_t *h, float *f, Py_ssize_t n) {
    for (Py_ssize_t k = 0; k < n; k++) f[k] = fa_bf16_to_f32(h[k]);
}
FA_CLONES static void fa_narrow_bf16(const float *f, uint16_t *h, Py_ssize_t n) {
    for (Py_ssize_t k = 0; k < n; k++) h[k] = fa_f32_to_bf16(f[k]);
}

static void fa_half_widen(int fmt, const uint16_t *h, float *f, Py_ssize_t n) {
    if (fmt == FA_BFLOAT16) fa_widen_bf16(h, f, n); else fa_widen_f16(h, f, n);
}
static void fa_half_narrow(int fmt, const float *f, uint16_t *h, Py_ssize_t n) {
    if (fmt == FA_BFLOAT16) fa_narrow_bf16(f, h, n); else fa_narrow_f16(f, h, n);
}

/* out = f(x): the float32 kernel ``kern`` block by block (``off`` + the block's
 * start keys rrelu's slopes, as in float32). */
static void fa_half_unary(int fmt, fa_unary_f32 kern, const uint16_t *x, uint16_t *out,
                          Py_ssize_t n, const double *p, uint64_t seed, int64_t off) {
    float a[FA_HALF_BLOCK] FA_ALIGN64, b[FA_HALF_BLOCK] FA_ALIGN64;
    for (Py_ssize_t k0 = 0; k0 < n; k0 += FA_HALF_BLOCK) {
        const Py_ssize_t m = n - k0 < FA_HALF_BLOCK ? n - k0 : FA_HALF_BLOCK;
        fa_half_widen(fmt, x + k0, a, m);
        kern(a, b, m, p, seed, off + (int64_t)k0);
        fa_half_narrow(fmt, b, out + k0, m);
    }
}

/* out = f'(g, s), as fa_half_unary. */
static void fa_half_binary(int fmt, fa_binary_f32 kern, const uint16_t *g, const uint16_t *s,
                           uint16_t *out, Py_ssize_t n, const double *p, uint64_t seed,
                           int64_t off) {
    float a[FA_HALF_BLOCK] FA_ALIGN64, b[FA_HALF_BLOCK] FA_ALIGN64, c[FA_HALF_BLOCK] FA_ALIGN64;
    for (Py_ssize_t k0 = 0; k0 < n; k0 += FA_HALF_BLOCK) {
        const Py_ssize_t m = n - k0 < FA_HALF_BLOCK ? n - k0 : FA_HALF_BLOCK;
        fa_half_widen(fmt, g + k0, a, m);
        fa_half_widen(fmt, s + k0, b, m);
        kern(a, b, c, m, p, seed, off + (int64_t)k0);
        fa_half_narrow(fmt, c, out + k0, m);
    }
}
#endif
