/* The 16-bit formats' conversions to and from float32, one element each:
 * exact widening, rounding once to nearest even (overflow to +-inf, NaN to a
 * quiet NaN with the top payload bits).  Branch-free, so that the loops
 * calling them vectorize: fa_half.h's array conversions and the 16-bit
 * kernels' chunks below.  fastact/_half.py converts the same way (NumPy, bit
 * for bit). */
#ifndef FA_CONVERT_H
#define FA_CONVERT_H
#include <stdint.h>
#include <string.h>
#include "fa_intrinsics.h"

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

/* The 16-bit kernels of fa_kernels.h (FA_H16_UNARY, FA_H16_BINARY): the
 * float32 range function of the entry (inlined), on chunks of FA_H16_CHUNK
 * elements widened into float32 buffers on the stack, then rounded.  The last,
 * short chunk is padded with zeros (computed, not stored), so that the inlined
 * loop has one trip count: it vectorizes at float32's width, where a loop
 * converting each element as loaded vectorizes at the 16-bit type's (twice
 * the float32 registers live, which costs the transcendental kernels).  The
 * chunk's buffers stay in L1. */
#ifndef FA_H16_CHUNK
#define FA_H16_CHUNK 128
#endif

/* The conversions of one chunk, in C (vectorized in each copy of the kernels). */
FA_INLINE void fa_chunk_bf16_widen(const uint16_t *h, float *f) {
    for (int j = 0; j < FA_H16_CHUNK; j++) f[j] = fa_bf16_to_f32(h[j]);
}
FA_INLINE void fa_chunk_bf16_narrow(const float *f, uint16_t *h) {
    for (int j = 0; j < FA_H16_CHUNK; j++) h[j] = fa_f32_to_bf16(f[j]);
}
#if defined(__aarch64__) && defined(__ARM_NEON)
/* float16 on aarch64: by the FPU's conversions, four elements per instruction
 * (FCVTL, FCVTN), where gcc 12 turns fa_f32_to_f16's loop into some twenty
 * scalar instructions and branches per element.  The same bits as the C above
 * under Linux's default FPCR (to nearest even, no flush of half-precision
 * subnormals, IEEE half precision, NaN quiet with its top payload bits),
 * except that the widening quiets a signalling NaN, as F16C's does on x86-64
 * (the kernels' results are NaN either way, and quiet as stored). */
#include <arm_neon.h>
#define FA_F16_NEON 1
FA_INLINE void fa_f16_neon_narrow(const float *f, uint16_t *h, Py_ssize_t n) {
    Py_ssize_t k = 0;
    for (; k + 4 <= n; k += 4)
        vst1_u16(h + k, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(f + k))));
    for (; k < n; k++) h[k] = fa_f32_to_f16(f[k]);
}
FA_INLINE void fa_chunk_f16_widen(const uint16_t *h, float *f) {
    for (int j = 0; j < FA_H16_CHUNK; j += 4)
        vst1q_f32(f + j, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h + j))));
}
FA_INLINE void fa_chunk_f16_narrow(const float *f, uint16_t *h) {
    fa_f16_neon_narrow(f, h, FA_H16_CHUNK);
}
#else
FA_INLINE void fa_chunk_f16_widen(const uint16_t *h, float *f) {
    for (int j = 0; j < FA_H16_CHUNK; j++) f[j] = fa_f16_to_f32(h[j]);
}
FA_INLINE void fa_chunk_f16_narrow(const float *f, uint16_t *h) {
    for (int j = 0; j < FA_H16_CHUNK; j++) h[j] = fa_f32_to_f16(f[j]);
}
#endif

/* float16 by the F16C instructions, in the kernels' x86-64-v3 and x86-64-v4
 * copies (FA_V3, FA_V4: fa_*_f16v3, fa_*_f16v4), where gcc does not vectorize
 * the C conversions above (some thirty instructions per element rounded, one
 * per eight here).  Both are exact: the widening of every float16 value, the
 * rounding to nearest even whatever MXCSR says (subnormal results exact,
 * overflow to inf, NaN quiet with the top payload bits).  The widening quiets
 * a signalling NaN, which fa_f16_to_f32 keeps: the kernels' results are NaN
 * either way, and quiet as stored (which NaN, its sign and payload, is the
 * compiled operand order's in every copy, float32's included, as IEEE 754
 * leaves it). */
#if FA_HAVE_CLONES
#include <immintrin.h>
#define FA_V3 __attribute__((target(FA_TARGET_V3)))
#define FA_V4 __attribute__((target(FA_TARGET_V4)))

FA_V3 FA_INLINE void fa_chunk_f16c_v3_widen(const uint16_t *h, float *f) {
    for (int j = 0; j < FA_H16_CHUNK; j += 8)
        _mm256_store_ps(f + j, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + j))));
}
FA_V3 FA_INLINE void fa_chunk_f16c_v3_narrow(const float *f, uint16_t *h) {
    for (int j = 0; j < FA_H16_CHUNK; j += 8)
        _mm_storeu_si128((__m128i *)(h + j),
                         _mm256_cvtps_ph(_mm256_load_ps(f + j), _MM_FROUND_TO_NEAREST_INT));
}
FA_V4 FA_INLINE void fa_chunk_f16c_v4_widen(const uint16_t *h, float *f) {
    for (int j = 0; j < FA_H16_CHUNK; j += 16)
        _mm512_store_ps(f + j, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + j))));
}
FA_V4 FA_INLINE void fa_chunk_f16c_v4_narrow(const float *f, uint16_t *h) {
    for (int j = 0; j < FA_H16_CHUNK; j += 16)
        _mm256_storeu_si256((__m256i *)(h + j),
                            _mm512_cvtps_ph(_mm512_load_ps(f + j), _MM_FROUND_TO_NEAREST_INT));
}

/* bfloat16 by the AVX512_BF16 instruction VCVTNEPS2BF16, in a copy of the
 * kernels for x86-64-v4 CPUs that have it (FA_BF16V4: fa_*_bf16v4, chosen at
 * load by fa_half.h), one instruction per sixteen elements rounded where the C
 * conversion above takes some eight.  It rounds to nearest even whatever MXCSR
 * says, overflows to inf and quiets a NaN as fa_f32_to_bf16 does (the top bits,
 * the quiet bit set), but takes a subnormal float32 as zero: the vectors that
 * hold one (VFPCLASSPS, rarely true) are rounded in
 * integers as in C, so the bits are fa_f32_to_bf16's for every float32 (only
 * subnormal float32 round to subnormal bfloat16: the formats share their
 * exponent range).  The widening is a shift, exact for every value. */
#define FA_TARGET_BF16V4 FA_TARGET_V4 ",avx512bf16"
#define FA_BF16V4 __attribute__((target(FA_TARGET_BF16V4)))
FA_BF16V4 FA_INLINE void fa_chunk_bf16_v4_widen(const uint16_t *h, float *f) {
    for (int j = 0; j < FA_H16_CHUNK; j += 16) {
        const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(h + j)));
        _mm512_store_si512((void *)(f + j), _mm512_slli_epi32(w, 16));
    }
}
FA_BF16V4 FA_INLINE void fa_chunk_bf16_v4_narrow(const float *f, uint16_t *h) {
    const __m512i one = _mm512_set1_epi32(1);
    for (int j = 0; j < FA_H16_CHUNK; j += 16) {
        const __m512 v = _mm512_load_ps(f + j);
        const __m512i u = _mm512_castps_si512(v);
        __m256i r = (__m256i)_mm512_cvtneps_pbh(v);
        const __mmask16 sub = _mm512_fpclass_ps_mask(v, 0x20); /* the subnormal lanes */
        if (sub) {
            const __m512i even = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
            const __m512i t = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), even);
            r = _mm256_mask_blend_epi16(sub, r, _mm512_cvtepi32_epi16(_mm512_srli_epi32(t, 16)));
        }
        _mm256_storeu_si256((__m256i *)(h + j), r);
    }
}

/* The same rounding for kernels that do not read an element's position (all
 * but the training ones), with the chunk's float32 buffer in another order:
 * the 32 elements at j, as 16 32-bit words w, widen to their even elements
 * (w << 16) then their odd ones (w & 0xffff0000), two instructions where the
 * in-order widening takes four, and VCVTNE2PS2BF16 with one word permutation
 * puts them back.  The subnormal lanes are found by VFPCLASSPS; a pair of
 * vectors holding one is rounded in C (fa_f32_to_bf16), element by element. */
FA_BF16V4 FA_INLINE void fa_chunk_bf16_v4pairs_widen(const uint16_t *h, float *f) {
    const __m512i odd = _mm512_set1_epi32((int)0xffff0000u);
    for (int j = 0; j < FA_H16_CHUNK; j += 32) {
        const __m512i w = _mm512_loadu_si512((const void *)(h + j));
        _mm512_store_si512((void *)(f + j), _mm512_slli_epi32(w, 16));
        _mm512_store_si512((void *)(f + j + 16), _mm512_and_si512(w, odd));
    }
}
FA_BF16V4 FA_INLINE void fa_chunk_bf16_v4pairs_narrow(const float *f, uint16_t *h) {
    /* word 2i from the even elements (words 0-15 of the conversion), 2i + 1 from the odd */
    const __m512i order = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9,
                                           24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1,
                                           16, 0);
    for (int j = 0; j < FA_H16_CHUNK; j += 32) {
        const __m512 even = _mm512_load_ps(f + j), odd = _mm512_load_ps(f + j + 16);
        if (_mm512_fpclass_ps_mask(even, 0x20) | _mm512_fpclass_ps_mask(odd, 0x20)) {
            for (int i = 0; i < 16; i++) {
                h[j + 2 * i] = fa_f32_to_bf16(f[j + i]);
                h[j + 2 * i + 1] = fa_f32_to_bf16(f[j + 16 + i]);
            }
        } else {
            const __m512i r = (__m512i)_mm512_cvtne2ps_pbh(odd, even);
            _mm512_storeu_si512((void *)(h + j), _mm512_permutexvar_epi16(order, r));
        }
    }
}
#endif

/* The chunk of m <= FA_H16_CHUNK elements at h: h itself, or (the last, short
 * one) its copy in t padded with zeros. */
FA_INLINE const uint16_t *fa_h16_chunk(const uint16_t *h, Py_ssize_t m, uint16_t *t) {
    if (m == FA_H16_CHUNK) return h;
    memset(t, 0, FA_H16_CHUNK * sizeof(uint16_t));
    memcpy(t, h, (size_t)m * sizeof(uint16_t));
    return t;
}

/* The short last chunk of a row (the 16-bit row kernels): P_widen_n widens its
 * n < FA_H16_CHUNK elements into f, zeros after them; P_narrow_n rounds the first
 * n of f into h.  By a copy in t here; the x86-64-v4 copies below (float16's by
 * F16C, bfloat16's even/odd ones, which the row kernels use) load and store under
 * a mask instead (no copy, no call to memset or memcpy). */
#define FA_CHUNK_N(P, ATTR)                                                            \
    ATTR FA_INLINE void P##_widen_n(const uint16_t *h, Py_ssize_t n, float *f) {       \
        uint16_t t[FA_H16_CHUNK];                                                      \
        P##_widen(fa_h16_chunk(h, n, t), f);                                           \
    }                                                                                  \
    ATTR FA_INLINE void P##_narrow_n(const float *f, uint16_t *h, Py_ssize_t n) {      \
        uint16_t t[FA_H16_CHUNK];                                                      \
        P##_narrow(f, t);                                                              \
        memcpy(h, t, (size_t)n * sizeof(uint16_t));                                    \
    }
FA_CHUNK_N(fa_chunk_bf16, )
FA_CHUNK_N(fa_chunk_f16, )
#if FA_HAVE_CLONES
FA_CHUNK_N(fa_chunk_f16c_v3, FA_V3)
FA_CHUNK_N(fa_chunk_bf16_v4, FA_BF16V4)

/* The mask of the elements j.. of a chunk's n: those below n. */
FA_V4 FA_INLINE __mmask16 fa_mask16(Py_ssize_t n, int j) {
    const Py_ssize_t m = n - j;
    return m >= 16 ? (__mmask16)0xffffu : m <= 0 ? (__mmask16)0 : (__mmask16)((1u << m) - 1u);
}
FA_V4 FA_INLINE __mmask32 fa_mask32(Py_ssize_t n, int j) {
    const Py_ssize_t m = n - j;
    return m >= 32 ? (__mmask32)0xffffffffu : m <= 0 ? (__mmask32)0 : (__mmask32)((1u << m) - 1u);
}
FA_V4 FA_INLINE void fa_chunk_f16c_v4_widen_n(const uint16_t *h, Py_ssize_t n, float *f) {
    for (int j = 0; j < FA_H16_CHUNK; j += 16)
        _mm512_store_ps(f + j, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(fa_mask16(n, j), h + j)));
}
FA_V4 FA_INLINE void fa_chunk_f16c_v4_narrow_n(const float *f, uint16_t *h, Py_ssize_t n) {
    for (int j = 0; j < FA_H16_CHUNK && j < n; j += 16)
        _mm256_mask_storeu_epi16(h + j, fa_mask16(n, j),
                                 _mm512_cvtps_ph(_mm512_load_ps(f + j), _MM_FROUND_TO_NEAREST_INT));
}
FA_BF16V4 FA_INLINE void fa_chunk_bf16_v4pairs_widen_n(const uint16_t *h, Py_ssize_t n, float *f) {
    const __m512i odd = _mm512_set1_epi32((int)0xffff0000u);
    for (int j = 0; j < FA_H16_CHUNK; j += 32) {
        const __m512i w = _mm512_maskz_loadu_epi16(fa_mask32(n, j), h + j);
        _mm512_store_si512((void *)(f + j), _mm512_slli_epi32(w, 16));
        _mm512_store_si512((void *)(f + j + 16), _mm512_and_si512(w, odd));
    }
}
FA_BF16V4 FA_INLINE void fa_chunk_bf16_v4pairs_narrow_n(const float *f, uint16_t *h, Py_ssize_t n) {
    uint16_t t[FA_H16_CHUNK];
    fa_chunk_bf16_v4pairs_narrow(f, t);
    for (int j = 0; j < FA_H16_CHUNK && j < n; j += 32)
        _mm512_mask_storeu_epi16(h + j, fa_mask32(n, j), _mm512_loadu_si512((const void *)(t + j)));
}
#endif

/* Where the kernel is memory-bound (NT: fastact/_codegen/c_kernels.py's
 * nt_stores), the chunk too large to stay in cache and out none of the inputs
 * (fa_nt_stores), each chunk is rounded into t and stored non-temporally
 * (fa_nt_copy), the first one short so that the others start on a line. */
#define FA_H16_STORE(NARROW, SRC)                                                     \
    if (nt) {                                                                         \
        NARROW(SRC, t);                                                               \
        fa_nt_copy(out + k0, t, (size_t)m * sizeof(uint16_t));                        \
    } else {                                                                          \
        NARROW(SRC, m < FA_H16_CHUNK ? t : out + k0);                                 \
        if (m < FA_H16_CHUNK) memcpy(out + k0, t, (size_t)m * sizeof(uint16_t));      \
    }
/* The length of the chunk from k0: the head h first (0 but with nt: out + h
 * is then 64-byte aligned), then FA_H16_CHUNK or what is left. */
#define FA_H16_LEN(k0) ((k0) == 0 && h > 0 ? h : (n - (k0) < FA_H16_CHUNK ? n - (k0) : FA_H16_CHUNK))
/* The training kinds' bfloat16 kernels (FA_H16_UNARY_RUN, FA_H16_BINARY_RUN): their
 * range functions draw the noise of each element from its position, and their
 * loops run the generator's runs with a variable trip count, so each call has a
 * setup that chunks of FA_H16_CHUNK elements pay too often.  They widen up to
 * FA_H16_RUN chunks (a span ends after a short chunk, so that the buffer's
 * elements stay at their positions) and call the range function once. */
#ifndef FA_H16_RUN
#define FA_H16_RUN 4
#endif
#define FA_H16_SPAN(WIDEN_ALL, CALL, NARROW, SRC)                                    \
    for (Py_ssize_t k0 = 0, m; k0 < n; k0 += m) {                                     \
        Py_ssize_t lens[FA_H16_RUN];                                                  \
        int nc = 0;                                                                   \
        m = 0;                                                                        \
        do {                                                                          \
            const Py_ssize_t mj = FA_H16_LEN(k0 + m);                                 \
            const int j = nc;                                                         \
            WIDEN_ALL                                                                 \
            lens[nc++] = mj;                                                          \
            m += mj;                                                                  \
        } while (nc < FA_H16_RUN && lens[nc - 1] == FA_H16_CHUNK && k0 + m < n);      \
        CALL;                                                                         \
        for (int j = 0; j < nc; j++) {                                                \
            const Py_ssize_t c0 = k0 + (Py_ssize_t)j * FA_H16_CHUNK, mj = lens[j];    \
            if (nt) {                                                                 \
                NARROW(SRC + j * FA_H16_CHUNK, t);                                    \
                fa_nt_copy(out + c0, t, (size_t)mj * sizeof(uint16_t));               \
            } else if (mj == FA_H16_CHUNK) {                                          \
                NARROW(SRC + j * FA_H16_CHUNK, out + c0);                             \
            } else {                                                                  \
                NARROW(SRC + j * FA_H16_CHUNK, t);                                    \
                memcpy(out + c0, t, (size_t)mj * sizeof(uint16_t));                   \
            }                                                                         \
        }                                                                             \
    }
#define FA_H16_UNARY_RUN(WIDEN, NARROW, RANGE, NT)                                    \
    float a[FA_H16_CHUNK * FA_H16_RUN] FA_ALIGN64, b[FA_H16_CHUNK * FA_H16_RUN] FA_ALIGN64; \
    uint16_t t[FA_H16_CHUNK];                                                         \
    const int nt = NT && xp != out && fa_nt_stores(out, n, sizeof(uint16_t), 2);      \
    const Py_ssize_t h = nt ? fa_head(out, n, sizeof(uint16_t)) : 0;                  \
    FA_H16_SPAN(WIDEN(fa_h16_chunk(xp + k0 + m, mj, t), a + j * FA_H16_CHUNK);,       \
                RANGE(a, b, 0, nc * FA_H16_CHUNK, p, seed, off + (int64_t)k0), NARROW, b) \
    if (nt) fa_nt_fence();
#define FA_H16_BINARY_RUN(WIDEN, NARROW, RANGE, NT)                                   \
    float a[FA_H16_CHUNK * FA_H16_RUN] FA_ALIGN64, b[FA_H16_CHUNK * FA_H16_RUN] FA_ALIGN64, \
        c[FA_H16_CHUNK * FA_H16_RUN] FA_ALIGN64;                                      \
    uint16_t t[FA_H16_CHUNK];                                                         \
    const int nt = NT && gp != out && sp != out && fa_nt_stores(out, n, sizeof(uint16_t), 3);\
    const Py_ssize_t h = nt ? fa_head(out, n, sizeof(uint16_t)) : 0;                  \
    FA_H16_SPAN(WIDEN(fa_h16_chunk(gp + k0 + m, mj, t), a + j * FA_H16_CHUNK);        \
                WIDEN(fa_h16_chunk(sp + k0 + m, mj, t), b + j * FA_H16_CHUNK);,       \
                RANGE(a, b, c, 0, nc * FA_H16_CHUNK, p, seed, off + (int64_t)k0), NARROW, c) \
    if (nt) fa_nt_fence();
#define FA_H16_UNARY(WIDEN, NARROW, RANGE, NT)                                        \
    float a[FA_H16_CHUNK] FA_ALIGN64, b[FA_H16_CHUNK] FA_ALIGN64;                     \
    uint16_t t[FA_H16_CHUNK];                                                         \
    const int nt = NT && xp != out && fa_nt_stores(out, n, sizeof(uint16_t), 2);            \
    const Py_ssize_t h = nt ? fa_head(out, n, sizeof(uint16_t)) : 0;                  \
    for (Py_ssize_t k0 = 0, m; k0 < n; k0 += m) {                                     \
        m = FA_H16_LEN(k0);                                                           \
        WIDEN(fa_h16_chunk(xp + k0, m, t), a);                                        \
        RANGE(a, b, 0, FA_H16_CHUNK, p, seed, off + (int64_t)k0);                     \
        FA_H16_STORE(NARROW, b)                                                       \
    }                                                                                 \
    if (nt) fa_nt_fence();
#define FA_H16_BINARY(WIDEN, NARROW, RANGE, NT)                                       \
    float a[FA_H16_CHUNK] FA_ALIGN64, b[FA_H16_CHUNK] FA_ALIGN64,                     \
        c[FA_H16_CHUNK] FA_ALIGN64;                                                   \
    uint16_t t[FA_H16_CHUNK];                                                         \
    const int nt = NT && gp != out && sp != out && fa_nt_stores(out, n, sizeof(uint16_t), 3);\
    const Py_ssize_t h = nt ? fa_head(out, n, sizeof(uint16_t)) : 0;                  \
    for (Py_ssize_t k0 = 0, m; k0 < n; k0 += m) {                                     \
        m = FA_H16_LEN(k0);                                                           \
        WIDEN(fa_h16_chunk(gp + k0, m, t), a);                                        \
        WIDEN(fa_h16_chunk(sp + k0, m, t), b);                                        \
        RANGE(a, b, c, 0, FA_H16_CHUNK, p, seed, off + (int64_t)k0);                  \
        FA_H16_STORE(NARROW, c)                                                       \
    }                                                                                 \
    if (nt) fa_nt_fence();
#endif
