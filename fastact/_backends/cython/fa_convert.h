/* The 16-bit formats' conversions to and from float32, one element each:
 * exact widening, rounding once to nearest even (overflow to +-inf, NaN to a
 * quiet NaN with the top payload bits).  Branch-free, so that the loops
 * calling them vectorize: fa_half.h's block conversions and the fused
 * bfloat16 kernels of fa_kernels.h.  fastact/_half.py converts the same way
 * (NumPy, bit for bit). */
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
#endif
