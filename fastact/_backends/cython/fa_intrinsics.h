/* Intrinsics of the formula dialect that are not in <math.h>.
 * Shared by the generated kernels (fa_kernels.h); the Numba backend
 * implements the same functions bit for bit (fastact/_backends/numba). */
#ifndef FA_INTRINSICS_H
#define FA_INTRINSICS_H
#ifdef FA_STANDALONE
/* Outside CPython (the cross-compiled kernel check, scripts/check_cross.py). */
#include <stddef.h>
typedef ptrdiff_t Py_ssize_t;
#else
#include <Python.h>
#endif
#include <math.h>
#include <stdint.h>

/* The kernels are branch-free selects of computed values (fa_sel below); gcc
 * vectorizes such a loop only if it may evaluate floating-point operations
 * whose result is not selected, which -ftrapping-math (its default) forbids.
 * fastact never unmasks floating-point traps, so the rest of this translation
 * unit is compiled without them: values, NaN and inf handling are unchanged
 * (this is not -ffast-math).  Jump threading goes too: gcc 13's threader
 * turns a select whose one side is a constant (mish's and silu's limits) into
 * a branch around the whole formula, and the loop then stays scalar (mish
 * 10x, silu 2x slower than with gcc 12); the bits are the same either way. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "no-thread-jumps")
#endif
/* No FMA contraction: a * b + c rounds twice, as in the Numba backend (an fma
 * is written fa_fma).  setup.py passes -ffp-contract=off; clang's default for
 * C contracts within a statement, and the pragma keeps it off in these
 * kernels whatever the flags (but -ffp-contract=fast, which ignores it). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* Math helpers generated from fastact/_math/functions.py: always inlined. */
#if defined(__GNUC__)
#define FA_INLINE static inline __attribute__((always_inline))
#else
#define FA_INLINE static inline
#endif

/* Each inner loop is compiled for AVX-512, AVX2 and baseline x86-64 and the
 * best one is chosen when the module loads (GNU ifunc: gcc, or clang 14 and
 * later, on x86-64 glibc Linux; setup.py defines FA_NO_CLONES where a test
 * program with every construct below does not build, or when
 * FASTACT_SIMD_CLONES=0).  Elsewhere, one copy for the compiler's baseline:
 * SSE2 on x86-64, NEON on aarch64, which the loops vectorize to as well; the
 * results are the same bits either way.
 *
 * The float16 copies converting by F16C (fa_convert.h) are compiled for the
 * x86-64-v3 and v4 levels (FA_TARGET_V3, FA_TARGET_V4), which fa_half.h
 * chooses at load by FA_CPU_V4, FA_CPU_V3 and FA_CPU_F16C.  gcc names and
 * tests the levels themselves.  clang names its clones and targets by
 * feature (AVX-512F, which implies AVX2, FMA and F16C; FMA, which implies
 * AVX) and tests the levels feature by feature: clang 14 to 17 accept
 * "arch=x86-64-v4" in target_clones but their resolver does not test the
 * level (it always picks the baseline copy), their __builtin_cpu_supports
 * knows neither the levels nor F16C, LZCNT and MOVBE (read from CPUID here),
 * and clang's x86-64-v4 brings Skylake-X's tuning, which keeps the loops to
 * 256-bit vectors (the float16 forward kernels took twice gcc's time). */
#if !defined(FA_NO_CLONES) && defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && \
    (!defined(__clang__) || __clang_major__ >= 14)
#define FA_HAVE_CLONES 1
#if defined(__clang__)
#include <cpuid.h>
#define FA_CLONES __attribute__((target_clones("avx512f", "fma", "default")))
#define FA_SIMD_CLONES "AVX-512F, AVX+FMA, x86-64, chosen at load (GNU ifunc)"
#define FA_TARGET_V3 "avx2,fma,bmi,bmi2,f16c,lzcnt,movbe,popcnt"
#define FA_TARGET_V4 FA_TARGET_V3 ",avx512f,avx512bw,avx512cd,avx512dq,avx512vl"
/* CPUID bits: leaf 1 ECX 29 F16C, 22 MOVBE; leaf 0x80000001 ECX 5 LZCNT. */
static inline int fa_cpuid_ecx(unsigned leaf, unsigned bits) {
    unsigned a, b, c, d;
    return __get_cpuid(leaf, &a, &b, &c, &d) && (c & bits) == bits;
}
#define FA_CPU_F16C (__builtin_cpu_supports("avx") && fa_cpuid_ecx(1, 1u << 29))
#define FA_CPU_V3                                                                         \
    (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&                   \
     __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") &&                   \
     fa_cpuid_ecx(1, (1u << 29) | (1u << 22)) && fa_cpuid_ecx(0x80000001u, 1u << 5))
#define FA_CPU_V4                                                                         \
    (FA_CPU_V3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && \
     __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&          \
     __builtin_cpu_supports("avx512vl"))
#else
#define FA_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define FA_SIMD_CLONES "x86-64-v4 (AVX-512), x86-64-v3 (AVX2), x86-64, chosen at load (GNU ifunc)"
#define FA_TARGET_V3 "arch=x86-64-v3"
#define FA_TARGET_V4 "arch=x86-64-v4"
#define FA_CPU_F16C (__builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c"))
#define FA_CPU_V3 __builtin_cpu_supports("x86-64-v3")
#define FA_CPU_V4 __builtin_cpu_supports("x86-64-v4")
#endif
#else
#define FA_HAVE_CLONES 0
#define FA_CLONES
#define FA_SIMD_CLONES "none: one copy for the compiler's baseline"
#endif

/* ``a if c else b`` of the formula dialect: both values are computed before
 * the call, so the loops have no conditional arithmetic to if-convert. */
FA_INLINE float fa_sel_f32(int c, float a, float b) { return c ? a : b; }
FA_INLINE double fa_sel_f64(int c, double a, double b) { return c ? a : b; }

/* c, its value hidden from the optimizer (an empty asm that may change it), so
 * that code using it is compiled as for a variable: a literal bound of a min or
 * max, set once at the top of a kernel function (fastact/_codegen/dialect.py:
 * hide_bounds, HelperNames). */
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define FA_OPAQUE_REG "+x"
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__aarch64__)
#define FA_OPAQUE_REG "+w"
#endif
#ifdef FA_OPAQUE_REG
FA_INLINE float fa_opaque_f32(float c) { __asm__("" : FA_OPAQUE_REG(c)); return c; }
FA_INLINE double fa_opaque_f64(double c) { __asm__("" : FA_OPAQUE_REG(c)); return c; }
#else
FA_INLINE float fa_opaque_f32(float c) { return c; }
FA_INLINE double fa_opaque_f64(double c) { return c; }
#endif

/* fma(a, b, c) = a * b + c rounded once.  The x86-64-v3/v4 clones (and every
 * ARMv8 build) compile it to the FMA instruction, which vectorizes; elsewhere
 * it is the C library's correctly rounded fma (slower, same bits).  The Numba
 * backend emits LLVM's llvm.fma, so both backends round alike. */
#if defined(__GNUC__) || defined(__clang__)
FA_INLINE float fa_fma_f32(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
FA_INLINE double fa_fma_f64(double a, double b, double c) { return __builtin_fma(a, b, c); }
#else
FA_INLINE float fa_fma_f32(float a, float b, float c) { return fmaf(a, b, c); }
FA_INLINE double fa_fma_f64(double a, double b, double c) { return fma(a, b, c); }
#endif

/* Bit-level intrinsics of the formula dialect (fastact/_codegen/dialect.py),
 * branch-free so that the loops calling them vectorize.  The Numba backend
 * emits the same operations as LLVM IR (fastact/_codegen/numba_kernels.py).
 *
 * pow2i(n): 2**n for integer-valued n in [-126, 127] (float) or [-1022, 1023]
 * (double).  n + 1.5 * 2**23 (2**52) holds n in its low mantissa bits, which
 * are moved into the exponent field: no float-to-int conversion (the double
 * one has no AVX2 instruction).  Outside that range the result is garbage,
 * never a trap. */
FA_INLINE float fa_pow2i_f32(float n) {
    union { float f; uint32_t u; } a, b;
    a.f = n + 12582912.0f;
    b.u = (a.u - 0x4B400000u + 127u) << 23;
    return b.f;
}

FA_INLINE double fa_pow2i_f64(double n) {
    union { double f; uint64_t u; } a, b;
    a.f = n + 6755399441055744.0;
    b.u = (a.u - 0x4338000000000000ull + 1023ull) << 52;
    return b.f;
}

/* exponent(x) = floor(log2(|x|)) and mantissa(x) = |x| / 2**exponent(x) in
 * [1, 2), for normal nonzero finite x (frexp without the branches). */
FA_INLINE float fa_exponent_f32(float x) {
    union { float f; uint32_t u; } a;
    a.f = x;
    return (float)((int32_t)((a.u >> 23) & 0xFFu) - 127);
}

FA_INLINE double fa_exponent_f64(double x) {
    union { double f; uint64_t u; } a;
    a.f = x;
    return (double)((int32_t)((a.u >> 52) & 0x7FFu) - 1023);
}

FA_INLINE float fa_mantissa_f32(float x) {
    union { float f; uint32_t u; } a;
    a.f = x;
    a.u = (a.u & 0x007FFFFFu) | 0x3F800000u;
    return a.f;
}

FA_INLINE double fa_mantissa_f64(double x) {
    union { double f; uint64_t u; } a;
    a.f = x;
    a.u = (a.u & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull;
    return a.f;
}

/* ldexpk(v, k) = v * 2**n for k = n + 1.5 * 2**23 (2**52): the low bits of k
 * hold n, and shifted into the exponent field they carry it there (the bits of
 * 1.5 * 2**23 shifted by 23 leave 32 bits: 0).  For results in the normal
 * range only; elsewhere garbage, never a trap. */
FA_INLINE float fa_ldexpk_f32(float v, float k) {
    union { float f; uint32_t u; } a, b;
    a.f = k;
    b.f = v;
    b.u += a.u << 23;
    return b.f;
}

FA_INLINE double fa_ldexpk_f64(double v, double k) {
    union { double f; uint64_t u; } a, b;
    a.f = k;
    b.f = v;
    b.u += a.u << 52;
    return b.f;
}

/* rrelu's random slopes: a counter-based generator keyed by (seed, flat index).
 *
 * Element i of seed s has the 64-bit counter c = mix64(s) + i (wrapping): a
 * chunk is a run of consecutive counters, so the slopes do not depend on the
 * thread count or the layout, and the run of a block that starts at a global
 * offset is that of another seed (offset_seed in fastact/integrations/dask.py).
 *
 * float64 (64-bit lanes): w = c * FA_WEYL64 (a Weyl sequence: the kernels add
 *   FA_WEYL64 per element), two xorshift-multiply rounds, the top 53 bits u;
 *   slope = lo + ((hi - lo) * 2**-53) * u in double.
 * float32 (32-bit lanes, twice as many per register): the low half of c gives
 *   w = lo32(c) * FA_WEYL32 (the kernels add FA_WEYL32 per element), the high
 *   half a key kh = the high half of mix64(hi32(c)) (one per run of 2**32
 *   counters: the kernels compute it per run, fa_run_end); three
 *   xorshift-multiply rounds of w ^ (w >> 16) ^ kh, the top 24 bits u;
 *   slope = lo + ((hi - lo) * 2**-24) * u in float.
 *
 * Each slope is in [lo, hi].  The NumPy reference (fastact/reference.py) and
 * the Numba kernels (fastact/_codegen/numba_kernels.py) compute the same bits. */
#define FA_WEYL64 0x9E3779B97F4A7C15ULL
#define FA_WEYL32 0x9E3779B9u

/* splitmix64's output function: a bijective 64-bit mixer (the seed's key). */
static inline uint64_t fa_mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* The counter of element off of seed. */
static inline uint64_t fa_counter(uint64_t seed, int64_t off) {
    return fa_mix64(seed) + (uint64_t)off;
}

/* float32: the element after the last one of the chunk's elements k0..n-1
 * (counters c0 + k) whose counter has the high half of c0 + k0. */
static inline Py_ssize_t fa_run_end(uint64_t c0, Py_ssize_t k0, Py_ssize_t n) {
    const uint64_t room = 0x100000000ULL - (uint32_t)(c0 + (uint64_t)k0);
    return (uint64_t)(n - k0) <= room ? n : k0 + (Py_ssize_t)room;
}

/* float32: the key of counter c's run, and the Weyl state of c. */
static inline uint32_t fa_run_key(uint64_t c) { return (uint32_t)(fa_mix64(c >> 32) >> 32); }
static inline uint32_t fa_weyl32(uint64_t c) { return (uint32_t)c * FA_WEYL32; }

FA_INLINE float fa_slope_f32(uint32_t w, uint32_t kh, float lo, float hi) {
    uint32_t x = w ^ (w >> 16) ^ kh;
    x *= 0x7FEB352Du;
    x ^= x >> 15;
    x *= 0x846CA68Bu;
    x ^= x >> 16;
    x *= 0x7FEB352Du;
    return lo + ((hi - lo) * 0x1.0p-24f) * (float)(int32_t)(x >> 8);
}

FA_INLINE double fa_slope_f64(uint64_t w, double lo, double hi) {
    uint64_t z = w ^ (w >> 32);
    z *= 0xBF58476D1CE4E5B9ULL;
    z ^= z >> 29;
    z *= 0x94D049BB133111EBULL;
    return lo + ((hi - lo) * 0x1.0p-53) * (double)(int64_t)(z >> 11);
}

/* The number of elements before out + h is 64-byte aligned (0 if out is not even
 * aligned to its element size), at most n.  The kernels run that head, then the
 * rest, so that every vector store of the main loop fills exactly one cache line:
 * NumPy's large arrays start 16 bytes past a line, and stores that straddle two
 * lines cost 8-10% where the data is in cache. */
static inline Py_ssize_t fa_head(const void *out, Py_ssize_t n, size_t size) {
    uintptr_t a = (uintptr_t)out;
    Py_ssize_t h = (a % size) ? 0 : (Py_ssize_t)(((64 - (a & 63)) & 63) / size);
    return h < n ? h : n;
}

/* Blocks and software prefetch.  In a chunk of at least FA_PREFETCH_MIN_BYTES
 * the main loop of a kernel runs in blocks of FA_BLOCK_BYTES of output, and while
 * it computes elements [k, k + b) it prefetches the lines of elements
 * [k + a, k + a + b) (a = FA_AHEAD_BYTES of elements) of its input (one input;
 * a memory-bound one only in place), or of out where out is one of its inputs
 * (in place; the driver is generated by fastact/_codegen/c_kernels.py).  On the Sapphire Rapids machine of
 * docs/performance.md the hardware prefetcher alone does not keep the loads of a
 * compute-bound loop ahead of it out of cache when it stores to the lines it
 * loads: sigmoid(x, out=x) on 10^7 doubles took 2.4x the time of an out-of-place
 * call; prefetched, in place is as fast as out of place, and that is faster too.
 * A memory-bound kernel out of place is another matter: on the Zen 4 machine the
 * prefetches took 10-15% more time (relu at 10^6 floats: 1.17x the streaming
 * limit with them, 1.00x without).  Smaller chunks (in L2) run in one block without prefetches, which cost there
 * about 5%.  Each element is computed as before: the same bits. */
#define FA_BLOCK_BYTES 2048
#define FA_AHEAD_BYTES 6144
#define FA_PREFETCH_MIN_BYTES (1 << 20)

/* Loads that look like recent stores.  A load whose address equals that of a
 * store still in flight in its low 12 bits waits as if it read that store
 * ("4K aliasing").  A forward loop storing to out[k] while it loads in[k + j]
 * a few lines ahead hits this on every line when out starts a little after in,
 * modulo a page: relu at 10^6 floats on the Zen 4 machine took 112-122 us
 * with out 48-128 bytes after x, 84-87 us otherwise.  A loop from the last
 * element to the first then takes the fast time (the stores trail the loads
 * at a lower address), so a memory-bound kernel out of place runs backwards
 * where fa_backwards says (fastact/_codegen/c_kernels.py: the driver); the
 * values are the same. */
#define FA_ALIAS_SPAN 256

/* +1 if out starts 1..FA_ALIAS_SPAN bytes after in (modulo a page), -1 if as
 * far before it, 0 otherwise. */
static inline int fa_store_lead(const void *out, const void *in) {
    const size_t d = (size_t)((uintptr_t)out - (uintptr_t)in) & 4095u;
    if (d == 0) return 0;
    return d <= FA_ALIAS_SPAN ? 1 : (d >= 4096u - FA_ALIAS_SPAN ? -1 : 0);
}

/* Whether a loop storing to out and loading a (and b, if not NULL) runs
 * faster backwards: out leads an input, and trails none. */
static inline int fa_backwards(const void *out, const void *a, const void *b) {
    const int la = fa_store_lead(out, a), lb = b ? fa_store_lead(out, b) : 0;
    return (la > 0 || lb > 0) && la >= 0 && lb >= 0;
}

#if defined(__GNUC__) || defined(__clang__)
#define FA_PREFETCH(addr) __builtin_prefetch((addr), 0, 3)
#else
#define FA_PREFETCH(addr) ((void)(addr))
#endif

/* Whether a chunk of n elements of size bytes prefetches its inputs. */
static inline int fa_prefetching(Py_ssize_t n, size_t size) {
    return (size_t)n * size >= (size_t)FA_PREFETCH_MIN_BYTES;
}

/* Prefetch the lines of elements [k0, k1) of p, clipped to its n elements. */
static inline void fa_prefetch(const void *p, Py_ssize_t k0, Py_ssize_t k1, Py_ssize_t n,
                               size_t size) {
    const char *c = (const char *)p;
    const size_t end = (size_t)(k1 < n ? k1 : n) * size;
    for (size_t b = (size_t)k0 * size; b < end; b += 64) FA_PREFETCH(c + b);
}

/* Prefetch the lines of elements [k0, k1) of p into L2 (clipped to its n elements). */
static inline void fa_prefetch_l2(const void *p, Py_ssize_t k0, Py_ssize_t k1, Py_ssize_t n,
                                  size_t size) {
    const char *c = (const char *)p;
    const size_t end = (size_t)(k1 < n ? k1 : n) * size;
#if defined(__GNUC__) || defined(__clang__)
    for (size_t b = (size_t)k0 * size; b < end; b += 64) __builtin_prefetch(c + b, 0, 1);
#else
    (void)c; (void)end;
#endif
}

/* 64-byte alignment of a buffer on the stack (a cache line, an AVX-512 vector). */
#if defined(__GNUC__) || defined(__clang__)
#define FA_ALIGN64 __attribute__((aligned(64)))
#else
#define FA_ALIGN64
#endif

/* Stores that bypass the caches (non-temporal).  An ordinary store first reads
 * its line into the cache (the line is then written back), so a kernel writing
 * an array that does not stay in cache moves its output twice; a non-temporal
 * store writes the line once.  Where a call's arrays (inputs and output, all
 * threads' chunks together) take at least fa_nt_min_bytes, the L3 cache of the
 * machine of docs/performance.md (so they cannot all stay in it; the OS's
 * figure is not to be trusted in a VM: 320 MB there), the memory-bound kernels
 * (cost class ``cheap``: fastact/_codegen/c_kernels.py's nt_stores) compute
 * each block of FA_BLOCK_BYTES into a buffer on the stack and store it with
 * fa_nt_copy, then fence (fa_nt_fence: non-temporal stores are weakly
 * ordered), where the output is none of the inputs (in place, the line is in
 * cache already).  There the piecewise-linear kernels on 10^7 elements took
 * 0.5-0.9x the time with them, forward and backward, one and two threads;
 * with 16 MiB for the threshold, a float64 backward on 10^6 elements (24 MB,
 * in L3 when called again and again) took 1.4-1.7x the time on two threads.
 * The values stored are the same bits.  Chosen at load (fa_nt_init): 64-byte
 * stores with AVX-512, 32-byte with AVX, 16-byte with SSE2 (any x86-64); none
 * elsewhere. */
#ifndef FA_NT_MIN_BYTES
#define FA_NT_MIN_BYTES (32u << 20)
#endif
static size_t fa_nt_min_bytes = FA_NT_MIN_BYTES;
typedef void fa_nt_copy_fn(void *dst, const void *src, size_t bytes);
static fa_nt_copy_fn *fa_nt_copy = NULL;

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <string.h>
#define FA_HAVE_NT 1
/* Plain stores up to dst's first 64-byte line boundary, whole lines by
 * non-temporal stores (FA_NT_LINE: one line from s to d), plain stores after. */
#define FA_NT_COPY(NAME, ATTR, FA_NT_LINE)                                              \
    ATTR static void NAME(void *dst, const void *src, size_t bytes) {                   \
        char *d = (char *)dst;                                                          \
        const char *s = (const char *)src;                                              \
        size_t j = ((size_t)64 - ((uintptr_t)d & 63)) & 63;                             \
        if (j > bytes) j = bytes;                                                       \
        memcpy(d, s, j);                                                                \
        for (; j + 64 <= bytes; j += 64) FA_NT_LINE(d + j, s + j);                      \
        memcpy(d + j, s + j, bytes - j);                                                \
    }
#define FA_NT_LINE_SSE2(d, s)                                                           \
    for (int i = 0; i < 64; i += 16)                                                    \
        _mm_stream_si128((__m128i *)((d) + i), _mm_loadu_si128((const __m128i *)((s) + i)))
#define FA_NT_LINE_AVX(d, s)                                                            \
    for (int i = 0; i < 64; i += 32)                                                    \
        _mm256_stream_si256((__m256i *)((d) + i), _mm256_loadu_si256((const __m256i *)((s) + i)))
#define FA_NT_LINE_AVX512(d, s)                                                         \
    _mm512_stream_si512((void *)(d), _mm512_loadu_si512((const void *)(s)))
FA_NT_COPY(fa_nt_copy_sse2, , FA_NT_LINE_SSE2)
#if FA_HAVE_CLONES
FA_NT_COPY(fa_nt_copy_avx, __attribute__((target("avx"))), FA_NT_LINE_AVX)
FA_NT_COPY(fa_nt_copy_avx512, __attribute__((target("avx512f"))), FA_NT_LINE_AVX512)
#endif
static void fa_nt_init(void) {
#if FA_HAVE_CLONES
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) fa_nt_copy = fa_nt_copy_avx512;
    else if (__builtin_cpu_supports("avx")) fa_nt_copy = fa_nt_copy_avx;
    else fa_nt_copy = fa_nt_copy_sse2;
#else
    fa_nt_copy = fa_nt_copy_sse2;
#endif
}
static inline void fa_nt_fence(void) { _mm_sfence(); }
#else
#define FA_HAVE_NT 0
static void fa_nt_init(void) {}
static inline void fa_nt_fence(void) {}
#endif

/* Whether the pages of out's first and last byte are mapped in.  An output the
 * call allocated (np.empty of tens of MB: fresh pages from mmap) is not: each
 * page is zeroed on its first touch, in the cache, where ordinary stores then
 * find it, and non-temporal stores were 1.05-1.25x slower there (relu and
 * hardtanh on 10^7 floats, one and two threads).  Linux's mincore tells, for
 * two system calls per chunk of at least tens of MB; elsewhere there are no
 * non-temporal stores. */
#if defined(__linux__)
#include <sys/mman.h>
static inline int fa_mapped(const void *p) {
    unsigned char v = 0;
    return mincore((void *)((uintptr_t)p & ~(uintptr_t)4095), 1, &v) == 0 && (v & 1);
}
static inline int fa_out_mapped(const void *out, size_t bytes) {
    return bytes > 0 && fa_mapped(out) && fa_mapped((const char *)out + bytes - 1);
}
#else
static inline int fa_out_mapped(const void *out, size_t bytes) {
    (void)out; (void)bytes;
    return 0;
}
#endif

/* Whether a chunk of n elements of size bytes at out, whose kernel touches
 * ``arrays`` arrays of them (its inputs and output), stores its output
 * non-temporally: the call's bytes are those of the chunks of every thread of
 * the team, and out is mapped in (fa_out_mapped). */
#ifdef _OPENMP
#include <omp.h>
#define FA_TEAM_SIZE() ((size_t)omp_get_num_threads())
#else
#define FA_TEAM_SIZE() ((size_t)1)
#endif
/* More threads than any team: a small call (every small call of a memory-bound
 * kernel asks) returns before asking OpenMP for its team's size. */
#define FA_NT_MAX_TEAM 1024
static inline int fa_nt_stores(const void *out, Py_ssize_t n, size_t size, int arrays) {
    const size_t bytes = (size_t)n * size * (size_t)arrays;
    if (fa_nt_copy == NULL) return 0;
    if (fa_nt_min_bytes == 0) return 1; /* the tests: always, mapped or not */
    return bytes >= fa_nt_min_bytes / FA_NT_MAX_TEAM &&
           bytes * FA_TEAM_SIZE() >= fa_nt_min_bytes && fa_out_mapped(out, (size_t)n * size);
}

/* The streaming limit: the cheapest kernels that move the same bytes as an
 * activation (read one or two arrays, write one), for benchmarks. */
#define FA_STREAM(T, SFX)                                                              \
    FA_CLONES static void fa_stream_unary_##SFX(const T *x, T *out, Py_ssize_t n,     \
                                                 const double *p, uint64_t seed,      \
                                                 int64_t off) {                       \
        const T c = (T)p[0];                                                           \
        const Py_ssize_t h = fa_head(out, n, sizeof(T));                               \
        const int nt = x != out && fa_nt_stores(out + h, n - h, sizeof(T), 2); \
        const Py_ssize_t b = nt ? (Py_ssize_t)(FA_BLOCK_BYTES / sizeof(T)) : n - h;    \
        T buf[FA_BLOCK_BYTES / sizeof(T)] FA_ALIGN64;                                  \
        (void)seed; (void)off;                                                         \
        for (Py_ssize_t k = 0; k < h; k++) out[k] = x[k] * c;                          \
        for (Py_ssize_t k = h; k < n; k += b) {                                        \
            const Py_ssize_t m = n - k > b ? b : n - k;                                \
            const T *xk = x + k;                                                       \
            T *o = nt ? buf : out + k;                                                 \
            for (Py_ssize_t j = 0; j < m; j++) o[j] = xk[j] * c;                       \
            if (nt) fa_nt_copy(out + k, buf, (size_t)m * sizeof(T));                   \
        }                                                                              \
        if (nt) fa_nt_fence();                                                         \
    }                                                                                  \
    FA_CLONES static void fa_stream_binary_##SFX(const T *a, const T *b, T *out,      \
                                                  Py_ssize_t n, const double *p,      \
                                                  uint64_t seed, int64_t off) {       \
        const Py_ssize_t h = fa_head(out, n, sizeof(T));                               \
        const int nt = a != out && b != out && fa_nt_stores(out + h, n - h, sizeof(T), 3); \
        const Py_ssize_t bl = nt ? (Py_ssize_t)(FA_BLOCK_BYTES / sizeof(T)) : n - h;   \
        T buf[FA_BLOCK_BYTES / sizeof(T)] FA_ALIGN64;                                  \
        (void)p; (void)seed; (void)off;                                                \
        for (Py_ssize_t k = 0; k < h; k++) out[k] = a[k] * b[k];                       \
        for (Py_ssize_t k = h; k < n; k += bl) {                                       \
            const Py_ssize_t m = n - k > bl ? bl : n - k;                              \
            const T *ak = a + k, *bk = b + k;                                          \
            T *o = nt ? buf : out + k;                                                 \
            for (Py_ssize_t j = 0; j < m; j++) o[j] = ak[j] * bk[j];                   \
            if (nt) fa_nt_copy(out + k, buf, (size_t)m * sizeof(T));                   \
        }                                                                              \
        if (nt) fa_nt_fence();                                                         \
    }
FA_STREAM(float, f32)
FA_STREAM(double, f64)

#endif
