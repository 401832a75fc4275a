/* 16-bit storage (float16, bfloat16) over the float32 kernels of fa_kernels.h.
 *
 * bfloat16 elementwise calls run the fused kernels of fa_kernels.h (each
 * element widened as it is loaded, rounded as it is stored: fa_convert.h).
 * float16 calls, and the conversions of whole arrays, run here: the float32
 * kernel of the entry block by block, each block of FA_HALF_BLOCK elements
 * widened exactly into a float32 buffer on the stack, computed, and rounded
 * once (to nearest even, overflow to +-inf, NaN to a quiet NaN).  Either way
 * the results are the float32 kernel's rounded once, at every position of an
 * array; fastact/_half.py converts the same way (NumPy, bit for bit). */
#ifndef FA_HALF_H
#define FA_HALF_H
#include <string.h>
#include "fa_kernels.h"

/* The formats, as fastact/_half.py numbers them. */
#define FA_FLOAT16 1
#define FA_BFLOAT16 2
/* Elements per block: a block's buffers stay in L1, and blocks this short keep
 * the arithmetic overlapping the memory traffic (at 10^7 elements, 1024 cost
 * compute-bound kernels some 20% over 256). */
#ifndef FA_HALF_BLOCK
#define FA_HALF_BLOCK 256
#endif

#if defined(__GNUC__) || defined(__clang__)
#define FA_ALIGN64 __attribute__((aligned(64)))
#else
#define FA_ALIGN64
#endif

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
/* Whether float16 is rounded by F16C: the CPU has it (fa_half_init, at module
 * load), and fa_half_use_f16c has not turned it off (the tests compare both). */
static int fa_f16c = 0;
static int fa_half_use_f16c(int on) {
    const int was = fa_f16c;
    fa_f16c = on && __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
    return was;
}
static void fa_half_init(void) {
    __builtin_cpu_init();
    fa_f16c = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
}
#else
#define FA_HAVE_F16C 0
static const int fa_f16c = 0;
static void fa_half_init(void) {}
static int fa_half_use_f16c(int on) { (void)on; return 0; }
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
