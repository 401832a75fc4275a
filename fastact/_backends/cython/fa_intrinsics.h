/* Intrinsics of the formula dialect that are not in <math.h>.
 * Shared by the generated kernels (fa_kernels.h); the Numba backend
 * implements the same functions bit for bit (fastact/_backends/numba). */
#ifndef FA_INTRINSICS_H
#define FA_INTRINSICS_H
#include <Python.h>
#include <math.h>
#include <stdint.h>

/* Each inner loop is compiled for AVX-512, AVX2 and baseline x86-64 and the
 * best one is chosen when the module loads (GNU ifunc); elsewhere, one copy. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define FA_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FA_CLONES
#endif

/* splitmix64's output function: a bijective 64-bit mixer. */
static inline uint64_t fa_mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Counter-based uniform in [0, 1) with 53 random bits, keyed by (seed, i). */
static inline double fa_uniform(uint64_t seed, int64_t i) {
    uint64_t h = fa_mix64(fa_mix64(seed) + (uint64_t)i);
    return (double)(h >> 11) * 0x1.0p-53;
}

static inline float fa_uniform_slope_f32(uint64_t seed, int64_t i, float lo, float hi) {
    return (float)((double)lo + ((double)hi - (double)lo) * fa_uniform(seed, i));
}

static inline double fa_uniform_slope_f64(uint64_t seed, int64_t i, double lo, double hi) {
    return lo + (hi - lo) * fa_uniform(seed, i);
}

/* The streaming limit: the cheapest kernels that move the same bytes as an
 * activation (read one or two arrays, write one), for benchmarks. */
#define FA_STREAM(T, SFX)                                                              \
    FA_CLONES static void fa_stream_unary_##SFX(const T *x, T *out, Py_ssize_t n,     \
                                                 const double *p, uint64_t seed,      \
                                                 int64_t off) {                       \
        const T c = (T)p[0];                                                           \
        (void)seed; (void)off;                                                         \
        for (Py_ssize_t k = 0; k < n; k++) out[k] = x[k] * c;                          \
    }                                                                                  \
    FA_CLONES static void fa_stream_binary_##SFX(const T *a, const T *b, T *out,      \
                                                  Py_ssize_t n, const double *p,      \
                                                  uint64_t seed, int64_t off) {       \
        (void)p; (void)seed; (void)off;                                                \
        for (Py_ssize_t k = 0; k < n; k++) out[k] = a[k] * b[k];                       \
    }
FA_STREAM(float, f32)
FA_STREAM(double, f64)

#endif
