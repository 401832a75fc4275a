/* The compute floor of fastact's transcendental helpers: hand-written SIMD loops.
 *
 * Built at benchmark time by fastact/bench/floor.py (the system C compiler, into
 * the user cache directory) and loaded with ctypes; never used by the library.
 * Each loop computes one function (exp, sigmoid, tanh, silu, exact gelu: the
 * order of FUNCTIONS in floor.py) over a contiguous array, with AVX-512 or
 * AVX2+FMA intrinsics, to about the accuracy of fastact's helper for it (the
 * benchmark measures and prints both).  floor_impl.h holds the math, written
 * once over the vector operations that each instruction set defines below.
 *
 *   int fa_floor_cpu(void)  bit 1: the AVX2 loops run here, bit 2: the AVX-512 ones
 *   int fa_floor_run(int isa, int f64, int fn, const void *x, void *y, long n, long reps)
 *       y = f(x) over n elements, reps times; isa 1 = AVX2, 2 = AVX-512; 0, or -1
 *       where that instruction set does not run here or fn is out of range.
 *   int fa_floor_reference(int fn, const long double *x, long double *y, long n)
 *       the same functions in long double (the C library's), for the accuracy figures.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FA_FLOOR_FUNCTIONS 5

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

typedef void (*fa_floor_loop)(const void *, void *, long);

/* ---- AVX-512, float ---------------------------------------------------------- */
#define ISA_TARGET "avx512f,avx512dq,avx2,fma"
#define SFX avx512_f32
#define T float
#define V __m512
#define M __mmask16
#define W 16
#define F64 0
#define HAS_SCALEF 1
#define SET1 _mm512_set1_ps
#define LOAD _mm512_loadu_ps
#define STORE _mm512_storeu_ps
#define ADD _mm512_add_ps
#define SUB _mm512_sub_ps
#define MUL _mm512_mul_ps
#define DIV _mm512_div_ps
#define FMA _mm512_fmadd_ps
#define FNMA _mm512_fnmadd_ps
#define MIN _mm512_min_ps
#define MAX _mm512_max_ps
#define ABS _mm512_abs_ps
#define LT(a, b) _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ)
#define GT(a, b) _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ)
#define SEL(m, a, b) _mm512_mask_blend_ps(m, b, a)
#define SCALE(p, n) _mm512_scalef_ps(p, n)
#define SIGNOF(x) _mm512_and_ps(x, _mm512_set1_ps(-0.0f))
#define OR _mm512_or_ps
#include "floor_impl.h"

/* ---- AVX-512, double --------------------------------------------------------- */
#define ISA_TARGET "avx512f,avx512dq,avx2,fma"
#define SFX avx512_f64
#define T double
#define V __m512d
#define M __mmask8
#define W 8
#define F64 1
#define HAS_SCALEF 1
#define SET1 _mm512_set1_pd
#define LOAD _mm512_loadu_pd
#define STORE _mm512_storeu_pd
#define ADD _mm512_add_pd
#define SUB _mm512_sub_pd
#define MUL _mm512_mul_pd
#define DIV _mm512_div_pd
#define FMA _mm512_fmadd_pd
#define FNMA _mm512_fnmadd_pd
#define MIN _mm512_min_pd
#define MAX _mm512_max_pd
#define ABS _mm512_abs_pd
#define LT(a, b) _mm512_cmp_pd_mask(a, b, _CMP_LT_OQ)
#define GT(a, b) _mm512_cmp_pd_mask(a, b, _CMP_GT_OQ)
#define SEL(m, a, b) _mm512_mask_blend_pd(m, b, a)
#define SCALE(p, n) _mm512_scalef_pd(p, n)
#define SIGNOF(x) _mm512_and_pd(x, _mm512_set1_pd(-0.0))
#define OR _mm512_or_pd
#include "floor_impl.h"

/* ---- AVX2 + FMA, float: 2**n built from its bits (normal range only) ---------- */
#define ISA_TARGET "avx2,fma"
#define SFX avx2_f32
#define T float
#define V __m256
#define M __m256
#define W 8
#define F64 0
#define HAS_SCALEF 0
#define SET1 _mm256_set1_ps
#define LOAD _mm256_loadu_ps
#define STORE _mm256_storeu_ps
#define ADD _mm256_add_ps
#define SUB _mm256_sub_ps
#define MUL _mm256_mul_ps
#define DIV _mm256_div_ps
#define FMA _mm256_fmadd_ps
#define FNMA _mm256_fnmadd_ps
#define MIN _mm256_min_ps
#define MAX _mm256_max_ps
#define ABS(a) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a)
#define LT(a, b) _mm256_cmp_ps(a, b, _CMP_LT_OQ)
#define GT(a, b) _mm256_cmp_ps(a, b, _CMP_GT_OQ)
#define SEL(m, a, b) _mm256_blendv_ps(b, a, m)
#define POW2I(n)                                                                         \
    _mm256_castsi256_ps(_mm256_slli_epi32(                                               \
        _mm256_add_epi32(_mm256_castps_si256(_mm256_add_ps(n, _mm256_set1_ps(12582912.0f))), \
                         _mm256_set1_epi32(127 - 0x4B400000)),                            \
        23))
#define SCALE(p, n) _mm256_mul_ps(p, POW2I(n))
#define SIGNOF(x) _mm256_and_ps(x, _mm256_set1_ps(-0.0f))
#define OR _mm256_or_ps
#include "floor_impl.h"

/* ---- AVX2 + FMA, double ------------------------------------------------------- */
#define ISA_TARGET "avx2,fma"
#define SFX avx2_f64
#define T double
#define V __m256d
#define M __m256d
#define W 4
#define F64 1
#define HAS_SCALEF 0
#define SET1 _mm256_set1_pd
#define LOAD _mm256_loadu_pd
#define STORE _mm256_storeu_pd
#define ADD _mm256_add_pd
#define SUB _mm256_sub_pd
#define MUL _mm256_mul_pd
#define DIV _mm256_div_pd
#define FMA _mm256_fmadd_pd
#define FNMA _mm256_fnmadd_pd
#define MIN _mm256_min_pd
#define MAX _mm256_max_pd
#define ABS(a) _mm256_andnot_pd(_mm256_set1_pd(-0.0), a)
#define LT(a, b) _mm256_cmp_pd(a, b, _CMP_LT_OQ)
#define GT(a, b) _mm256_cmp_pd(a, b, _CMP_GT_OQ)
#define SEL(m, a, b) _mm256_blendv_pd(b, a, m)
#define POW2I(n)                                                                          \
    _mm256_castsi256_pd(_mm256_slli_epi64(                                                \
        _mm256_add_epi64(_mm256_castpd_si256(_mm256_add_pd(n, _mm256_set1_pd(6755399441055744.0))), \
                         _mm256_set1_epi64x(1023 - 0x4338000000000000LL)),                 \
        52))
#define SCALE(p, n) _mm256_mul_pd(p, POW2I(n))
#define SIGNOF(x) _mm256_and_pd(x, _mm256_set1_pd(-0.0))
#define OR _mm256_or_pd
#include "floor_impl.h"

static const fa_floor_loop LOOPS[2][2][FA_FLOOR_FUNCTIONS] = {
    {{fa_exp_avx2_f32, fa_sigmoid_avx2_f32, fa_tanh_avx2_f32, fa_silu_avx2_f32, fa_gelu_avx2_f32},
     {fa_exp_avx2_f64, fa_sigmoid_avx2_f64, fa_tanh_avx2_f64, fa_silu_avx2_f64, fa_gelu_avx2_f64}},
    {{fa_exp_avx512_f32, fa_sigmoid_avx512_f32, fa_tanh_avx512_f32, fa_silu_avx512_f32,
      fa_gelu_avx512_f32},
     {fa_exp_avx512_f64, fa_sigmoid_avx512_f64, fa_tanh_avx512_f64, fa_silu_avx512_f64,
      fa_gelu_avx512_f64}},
};

int fa_floor_cpu(void) {
    int isa = 0;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) isa |= 1;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) isa |= 2;
    return isa;
}

int fa_floor_run(int isa, int f64, int fn, const void *x, void *y, long n, long reps) {
    if ((isa != 1 && isa != 2) || !(fa_floor_cpu() & isa) || fn < 0 || fn >= FA_FLOOR_FUNCTIONS)
        return -1;
    fa_floor_loop loop = LOOPS[isa - 1][f64 != 0][fn];
    for (long r = 0; r < reps; r++) loop(x, y, n);
    return 0;
}

#else /* not x86 with GCC or Clang: nothing runs */

int fa_floor_cpu(void) { return 0; }

int fa_floor_run(int isa, int f64, int fn, const void *x, void *y, long n, long reps) {
    (void)isa; (void)f64; (void)fn; (void)x; (void)y; (void)n; (void)reps;
    return -1;
}
#endif

int fa_floor_functions(void) { return FA_FLOOR_FUNCTIONS; }

/* The reference: the C library's long double functions (64-bit significands on x86). */
int fa_floor_reference(int fn, const long double *x, long double *y, long n) {
    for (long i = 0; i < n; i++) {
        const long double v = x[i];
        const long double e = expl(-fabsl(v));
        const long double sig = (v >= 0 ? 1.0L : e) / (1.0L + e);
        switch (fn) {
            case 0: y[i] = expl(v); break;
            case 1: y[i] = sig; break;
            case 2: y[i] = tanhl(v); break;
            case 3: y[i] = v * sig; break;
            case 4: y[i] = 0.5L * v * erfcl(-v * 0.70710678118654752440084436210484903928L); break;
            default: return -1;
        }
    }
    return 0;
}
