/* 16-bit storage (float16, bfloat16) over the float32 kernels of fa_kernels.h.
 *
 * Elementwise calls run the 16-bit kernels of fa_kernels.h: the float32
 * kernel on chunks of FA_H16_CHUNK elements widened as loaded and rounded as
 * stored (fa_convert.h); float16's convert by the F16C instructions where the
 * CPU has them (the x86-64-v3 or x86-64-v4 copy), bfloat16's by AVX512_BF16
 * where it has that (an x86-64-v4 copy), both chosen here at load, else in C.  The conversions of whole arrays run here
 * (exact widening; rounding once to nearest even, overflow to +-inf, NaN to a
 * quiet NaN).  Every way the results are the float32 kernel's rounded once,
 * at every position of an array; fastact/_half.py converts the same way
 * (NumPy, bit for bit). */
#ifndef FA_HALF_H
#define FA_HALF_H
#include <string.h>
#include "fa_kernels.h"

/* The formats, as fastact/_half.py numbers them. */
#define FA_FLOAT16 1
#define FA_BFLOAT16 2

/* The float16 elementwise kernels, by table (plain, training mode): F16C's
 * copy for the CPU where F16C rounds float16 (fa_f16c), else the C ones. */
static fa_unary_h16 *fa_f16_unary[2] = {FA_FWD_F16, FA_TFWD_F16};
static fa_binary_h16 *fa_f16_binary[2] = {FA_BWD_F16, FA_TBWD_F16};
static void fa_f16_select(int v4, int v3) {
    fa_f16_unary[0] = FA_FWD_F16; fa_f16_unary[1] = FA_TFWD_F16;
    fa_f16_binary[0] = FA_BWD_F16; fa_f16_binary[1] = FA_TBWD_F16;
#if FA_HAVE_CLONES
    if (v4) {
        fa_f16_unary[0] = FA_FWD_F16V4; fa_f16_unary[1] = FA_TFWD_F16V4;
        fa_f16_binary[0] = FA_BWD_F16V4; fa_f16_binary[1] = FA_TBWD_F16V4;
    } else if (v3) {
        fa_f16_unary[0] = FA_FWD_F16V3; fa_f16_unary[1] = FA_TFWD_F16V3;
        fa_f16_binary[0] = FA_BWD_F16V3; fa_f16_binary[1] = FA_TBWD_F16V3;
    }
#else
    (void)v4; (void)v3;
#endif
}

/* The bfloat16 elementwise kernels, by table: the AVX512_BF16 copy where the
 * CPU has it (fa_bf16v4), else the C ones. */
static fa_unary_h16 *fa_bf16_unary[2] = {FA_FWD_BF16, FA_TFWD_BF16};
static fa_binary_h16 *fa_bf16_binary[2] = {FA_BWD_BF16, FA_TBWD_BF16};
static void fa_bf16_select(int bf16v4) {
    fa_bf16_unary[0] = FA_FWD_BF16; fa_bf16_unary[1] = FA_TFWD_BF16;
    fa_bf16_binary[0] = FA_BWD_BF16; fa_bf16_binary[1] = FA_TBWD_BF16;
#if FA_HAVE_CLONES
    if (bf16v4) {
        fa_bf16_unary[0] = FA_FWD_BF16V4; fa_bf16_unary[1] = FA_TFWD_BF16V4;
        fa_bf16_binary[0] = FA_BWD_BF16V4; fa_bf16_binary[1] = FA_TBWD_BF16V4;
    }
#else
    (void)bf16v4;
#endif
}

FA_CLONES static void fa_widen_f16(const uint16_t *h, float *f, Py_ssize_t n) {
    for (Py_ssize_t k = 0; k < n; k++) f[k] = fa_f16_to_f32(h[k]);
}
FA_CLONES static void fa_narrow_f16_c(const float *f, uint16_t *h, Py_ssize_t n) {
#ifdef FA_F16_NEON
    fa_f16_neon_narrow(f, h, n);
#else
    for (Py_ssize_t k = 0; k < n; k++) h[k] = fa_f32_to_f16(f[k]);
#endif
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
/* The same conversions in sixteen-element vectors on the x86-64-v4 level (fa_f16v4).
 * Widening by VCVTPH2PS is exact but quiets a signalling NaN: sixteen that hold
 * one are widened in C, which keeps it. */
FA_V4 static void fa_widen_f16_v4(const uint16_t *h, float *f, Py_ssize_t n) {
    const __m256i expo = _mm256_set1_epi16(0x7e00), snan = _mm256_set1_epi16(0x7c00);
    const __m256i frac = _mm256_set1_epi16(0x01ff);
    Py_ssize_t k = 0;
    for (; k + 16 <= n; k += 16) {
        const __m256i w = _mm256_loadu_si256((const __m256i *)(h + k));
        if (_mm256_cmpeq_epi16_mask(_mm256_and_si256(w, expo), snan) & _mm256_test_epi16_mask(w, frac))
            for (int i = 0; i < 16; i++) f[k + i] = fa_f16_to_f32(h[k + i]);
        else
            _mm512_storeu_ps(f + k, _mm512_cvtph_ps(w));
    }
    for (; k < n; k++) f[k] = fa_f16_to_f32(h[k]);
}
FA_V4 static void fa_narrow_f16_v4(const float *f, uint16_t *h, Py_ssize_t n) {
    Py_ssize_t k = 0;
    for (; k + 16 <= n; k += 16)
        _mm256_storeu_si256((__m256i *)(h + k),
                            _mm512_cvtps_ph(_mm512_loadu_ps(f + k), _MM_FROUND_TO_NEAREST_INT));
    for (; k < n; k++) h[k] = fa_f32_to_f16(f[k]);
}
/* Whether whole float16 arrays convert by the x86-64-v4 copies above: F16C is on
 * and the CPU has the level. */
static int fa_f16v4 = 0;
/* ... and the 16-bit row kernels by the x86-64-v3 copy (F16C, no x86-64-v4). */
static int fa_f16v3 = 0;
/* Whether float16 is rounded by F16C: the CPU has it (fa_half_init, at module
 * load), and fa_half_use_f16c has not turned it off (the tests compare both). */
static int fa_f16c = 0;
static int fa_f16_level = 0;
/* float16 converted in C (level 0), by F16C in the x86-64-v3 copies at most (3:
 * the tests run them on an x86-64-v4 CPU), or by the best copy the CPU runs (4).
 * Returns the level asked for before. */
static int fa_half_use_f16c(int level) {
    const int was = fa_f16_level;
    fa_f16_level = level;
    fa_f16c = level > 0 && FA_CPU_F16C;
    fa_f16v4 = fa_f16c && level >= 4 && FA_CPU_V4;
    fa_f16v3 = fa_f16c && !fa_f16v4 && FA_CPU_V3;
    fa_f16_select(fa_f16v4, fa_f16v3);
    return was;
}
/* The float16 copies in use: 4 (x86-64-v4), 3 (x86-64-v3), 1 (F16C narrows
 * whole arrays, the kernels convert in C) or 0 (C). */
static int fa_half_f16_copy(void) { return fa_f16v4 ? 4 : fa_f16v3 ? 3 : fa_f16c ? 1 : 0; }
/* Whether bfloat16 kernels round by AVX512_BF16: the CPU has it and the
 * x86-64-v4 level, and fa_half_use_bf16v4 has not turned it off (the tests
 * compare both). */
static int fa_bf16v4 = 0;
static int fa_half_use_bf16v4(int on) {
    const int was = fa_bf16v4;
    fa_bf16v4 = on && FA_CPU_V4 && __builtin_cpu_supports("avx512bf16");
    fa_bf16_select(fa_bf16v4);
    return was;
}
static void fa_half_init(void) {
    __builtin_cpu_init();
    fa_half_use_f16c(4);
    fa_half_use_bf16v4(1);
}
#else
#define FA_HAVE_F16C 0
static const int fa_f16c = 0;
static const int fa_bf16v4 = 0;
static void fa_half_init(void) { fa_f16_select(0, 0); fa_bf16_select(0); }
static int fa_half_use_f16c(int level) { (void)level; return 0; }
static int fa_half_f16_copy(void) { return 0; }
static int fa_half_use_bf16v4(int on) { (void)on; return 0; }
#endif

FA_CLONES static void fa_widen_bf16(const uint16_t *h, float *f, Py_ssize_t n) {
    for (Py_ssize_t k = 0; k < n; k++) f[k] = fa_bf16_to_f32(h[k]);
}
FA_CLONES static void fa_narrow_bf16_c(const float *f, uint16_t *h, Py_ssize_t n) {
    for (Py_ssize_t k = 0; k < n; k++) h[k] = fa_f32_to_bf16(f[k]);
}
#if FA_HAVE_CLONES
/* float32 -> bfloat16 by VCVTNEPS2BF16, sixteen elements at a time: the same bits
 * as fa_narrow_bf16_c (the instruction flushes subnormals: sixteen that hold one
 * are rounded in C, as the kernels' chunks do in fa_convert.h). */
FA_BF16V4 static void fa_narrow_bf16_v4(const float *f, uint16_t *h, Py_ssize_t n) {
    Py_ssize_t k = 0;
    for (; k + 16 <= n; k += 16) {
        const __m512 v = _mm512_loadu_ps(f + k);
        if (_mm512_fpclass_ps_mask(v, 0x20))
            for (int i = 0; i < 16; i++) h[k + i] = fa_f32_to_bf16(f[k + i]);
        else
            _mm256_storeu_si256((__m256i *)(h + k), (__m256i)_mm512_cvtneps_pbh(v));
    }
    for (; k < n; k++) h[k] = fa_f32_to_bf16(f[k]);
}
#endif

/* Entry kid's kernel from the pointer tables T_BF16..., T_F16... of fa_kernels.h for
 * the format: by the instructions chosen above, else the C copy. */
#if FA_HAVE_CLONES
#define FA_HALF_PICK(T, fmt, kid)                                                      \
    ((fmt) == FA_BFLOAT16 ? (fa_bf16v4 ? T##_BF16V4 : T##_BF16)[kid]                 \
                          : (fa_f16v4 ? T##_F16V4 : fa_f16v3 ? T##_F16V3 : T##_F16)[kid])
#else
#define FA_HALF_PICK(T, fmt, kid) ((fmt) == FA_BFLOAT16 ? T##_BF16 : T##_F16)[kid]
#endif

/* The backward row kernel of entry kid on the format's 16 bits (FA_RBWD_BF16...),
 * or NULL: those rows go through float32 buffers (fastact/_backends/cython/_half.pxi). */
static fa_rowb_h16 fa_half_rbwd(int fmt, int kid) { return FA_HALF_PICK(FA_RBWD, fmt, kid); }
/* The per-channel kernels on the format's 16 bits (NULL where kid has no channel
 * parameter): the backward with the parameter gradient, one weight or a weight per
 * element (float32 weights), and the forward with a weight per element. */
static fa_bwdpg_h16 fa_half_bwdpg(int fmt, int kid) { return FA_HALF_PICK(FA_BWDPG, fmt, kid); }
static fa_bwdpgv_h16 fa_half_bwdpgv(int fmt, int kid) { return FA_HALF_PICK(FA_BWDPGV, fmt, kid); }
static fa_unaryv_h16 fa_half_fwdv(int fmt, int kid) { return FA_HALF_PICK(FA_FWDV, fmt, kid); }

static void fa_half_widen(int fmt, const uint16_t *h, float *f, Py_ssize_t n) {
#if FA_HAVE_CLONES
    if (fmt == FA_FLOAT16 && fa_f16v4) {
        fa_widen_f16_v4(h, f, n);
        return;
    }
#endif
    if (fmt == FA_BFLOAT16) fa_widen_bf16(h, f, n); else fa_widen_f16(h, f, n);
}
/* Rounding by the format's instructions where fa_half.h chose them, else in C. */
static void fa_half_narrow(int fmt, const float *f, uint16_t *h, Py_ssize_t n) {
#if FA_HAVE_CLONES
    if (fmt == FA_BFLOAT16 && fa_bf16v4) {
        fa_narrow_bf16_v4(f, h, n);
        return;
    }
    if (fmt == FA_FLOAT16 && fa_f16v4) {
        fa_narrow_f16_v4(f, h, n);
        return;
    }
    if (fmt == FA_FLOAT16 && fa_f16c) {
        fa_narrow_f16_f16c(f, h, n);
        return;
    }
#endif
    if (fmt == FA_BFLOAT16) fa_narrow_bf16_c(f, h, n); else fa_narrow_f16_c(f, h, n);
}
#endif
