/* The bias epilogue's loops (_epilogue.pxi): adding the bias to a tile, and
 * summing a tile's gradient into the bias gradient's partial sums.
 *
 * Element k of the flat C-order buffer, an (outer, C, inner) array, has the
 * bias b[(k / inner) % C].  Two orders of summation (the Numba drivers' too,
 * fastact/_backends/numba/drivers.py, whose constants these are):
 *
 * - rows (short runs: inner < 16): a block's rows of C * inner elements are
 *   added in the array's type in groups of GROUP rows (from zero), each
 *   group's sums then into the block's double sums (fa_bias_rows, on the
 *   gradient tile that the kernels FA_BWDB of fa_kernels.h have written: they
 *   compute the backward at s + b and sum nothing themselves);
 * - runs (inner >= 16): each run of `inner` elements of one channel is added
 *   in LANES lanes of the array's type, the lanes into double lanes at every
 *   SEGMENT-th element and at the run's end, then halved pairwise into the
 *   channel's double sum (fa_bias_runs).
 *
 * Either way no more than GROUP (rows) or SEGMENT / LANES (runs) values are
 * added in float32 before the sum goes on in double. */
#ifndef FA_EPILOGUE_H
#define FA_EPILOGUE_H
#include "fa_intrinsics.h"

#define FA_BIAS_GROUP 16
#define FA_BIAS_LANES 16
#define FA_BIAS_SEGMENT 256
#define FA_BIAS_RUNS_FROM 16

#define FA_EPILOGUE(T, SFX)                                                               \
    /* z[j] = x[j] + b[((k0 + j) / inner) % C] for j < n (x points at element k0) */     \
    FA_CLONES static void fa_add_bias_##SFX(const T *restrict x, const T *restrict b,    \
                                             T *restrict z, Py_ssize_t k0, Py_ssize_t n, \
                                             Py_ssize_t C, Py_ssize_t inner) {            \
        Py_ssize_t j = 0;                                                                 \
        if (inner == 1) {                                                                 \
            Py_ssize_t c = k0 % C;                                                        \
            while (j < n) {                                                               \
                const Py_ssize_t run = C - c < n - j ? C - c : n - j;                     \
                for (Py_ssize_t i = 0; i < run; i++) z[j + i] = x[j + i] + b[c + i];      \
                j += run;                                                                 \
                c = 0;                                                                    \
            }                                                                             \
            return;                                                                       \
        }                                                                                 \
        Py_ssize_t c = (k0 / inner) % C, r = k0 % inner;                                  \
        while (j < n) {                                                                   \
            const Py_ssize_t run = inner - r < n - j ? inner - r : n - j;                 \
            const T bv = b[c];                                                            \
            for (Py_ssize_t i = 0; i < run; i++) z[j + i] = x[j + i] + bv;                \
            j += run;                                                                     \
            r = 0;                                                                        \
            if (++c == C) c = 0;                                                          \
        }                                                                                 \
    }                                                                                     \
    /* z[j] = b[((k0 + j) / inner) % C] for j < n: the bias of elements k0.. */        \
    FA_CLONES static void fa_fill_bias_##SFX(const T *restrict b, T *restrict z,          \
                                              Py_ssize_t k0, Py_ssize_t n, Py_ssize_t C,  \
                                              Py_ssize_t inner) {                          \
        Py_ssize_t j = 0;                                                                 \
        if (inner == 1) { /* whole runs of b: a copy, not an element at a time */        \
            Py_ssize_t c = k0 % C;                                                        \
            while (j < n) {                                                               \
                const Py_ssize_t run = C - c < n - j ? C - c : n - j;                     \
                for (Py_ssize_t i = 0; i < run; i++) z[j + i] = b[c + i];                 \
                j += run;                                                                 \
                c = 0;                                                                    \
            }                                                                             \
            return;                                                                       \
        }                                                                                 \
        Py_ssize_t c = (k0 / inner) % C, r = k0 % inner;                                  \
        while (j < n) {                                                                   \
            const Py_ssize_t run = inner - r < n - j ? inner - r : n - j;                 \
            const T bv = b[c];                                                            \
            for (Py_ssize_t i = 0; i < run; i++) z[j + i] = bv;                           \
            j += run;                                                                     \
            r = 0;                                                                        \
            if (++c == C) c = 0;                                                          \
        }                                                                                 \
    }                                                                                     \
    /* A group's sums f (w of them) into the double sums: acc[j] += f[j] when     \
     * inner == 1, else acc[c] += f[c*inner] + ... + f[c*inner+inner-1], added from \
     * the first in double. */                                                           \
    FA_CLONES static void fa_bias_flush_##SFX(const T *restrict f, Py_ssize_t w,          \
                                               Py_ssize_t inner, double *restrict acc) {  \
        if (inner == 1) {                                                                 \
            for (Py_ssize_t j = 0; j < w; j++) acc[j] += (double)f[j];                    \
            return;                                                                       \
        }                                                                                 \
        for (Py_ssize_t c = 0; c < w / inner; c++) {                                      \
            double d = (double)f[c * inner];                                              \
            for (Py_ssize_t i = 1; i < inner; i++) d += (double)f[c * inner + i];         \
            acc[c] += d;                                                                  \
        }                                                                                 \
    }                                                                                     \
    /* Rows summed in groups: row r (rel = its index in the block) of w elements      \
     * at stride `stride` added into f, zeroed at a group's first row, and f into    \
     * acc at a group's last row or the block's last (`last`). */                     \
    FA_CLONES static void fa_bias_rows_##SFX(const T *restrict v, Py_ssize_t m,           \
                                              Py_ssize_t w, Py_ssize_t stride,           \
                                              Py_ssize_t rel, int last, Py_ssize_t inner, \
                                              T *restrict f, double *restrict acc) {      \
        for (Py_ssize_t r = 0; r < m; r++, rel++) {                                       \
            const T *restrict row = v + r * stride;                                       \
            if (rel % FA_BIAS_GROUP == 0)                                                 \
                for (Py_ssize_t j = 0; j < w; j++) f[j] = 0;                              \
            for (Py_ssize_t j = 0; j < w; j++) f[j] += row[j];                            \
            if (rel % FA_BIAS_GROUP == FA_BIAS_GROUP - 1 || (last && r == m - 1))         \
                fa_bias_flush_##SFX(f, w, inner, acc);                                    \
        }                                                                                 \
    }                                                                                     \
    /* A run's lanes closed: fl added into dl, dl halved pairwise into acc[0]. */         \
    static inline void fa_bias_close_##SFX(T *restrict fl, double *restrict dl,          \
                                            double *restrict acc) {                       \
        for (int l = 0; l < FA_BIAS_LANES; l++) {                                         \
            dl[l] += (double)fl[l];                                                       \
            fl[l] = 0;                                                                    \
        }                                                                                 \
        for (int h = FA_BIAS_LANES / 2; h >= 1; h /= 2)                                   \
            for (int l = 0; l < h; l++) dl[l] += dl[l + h];                               \
        *acc += dl[0];                                                                    \
        for (int l = 0; l < FA_BIAS_LANES; l++) dl[l] = 0;                                \
    }                                                                                     \
    /* Elements k0..k0+n-1 of runs of `inner` (each a channel's), v pointing at k0:     \
     * position i of a run into lane i % LANES of fl, fl added into dl at every     \
     * SEGMENT-th position, and at a run's end the run closed into acc[c]. */             \
    FA_CLONES static void fa_bias_runs_##SFX(const T *restrict v, Py_ssize_t k0,          \
                                              Py_ssize_t n, Py_ssize_t C,                \
                                              Py_ssize_t inner, T *restrict fl,          \
                                              double *restrict dl, double *restrict acc) { \
        Py_ssize_t i = k0 % inner, c = (k0 / inner) % C;                                  \
        while (n > 0) {                                                                   \
            Py_ssize_t take = FA_BIAS_SEGMENT - i % FA_BIAS_SEGMENT;                      \
            if (take > inner - i) take = inner - i;                                       \
            if (take > n) take = n;                                                       \
            Py_ssize_t t = 0;                                                             \
            for (; t < take && ((i + t) % FA_BIAS_LANES); t++)                            \
                fl[(i + t) % FA_BIAS_LANES] += v[t];                                      \
            for (; t + FA_BIAS_LANES <= take; t += FA_BIAS_LANES)                         \
                for (int l = 0; l < FA_BIAS_LANES; l++) fl[l] += v[t + l];                \
            for (; t < take; t++) fl[(i + t) % FA_BIAS_LANES] += v[t];                    \
            v += take;                                                                    \
            n -= take;                                                                    \
            i += take;                                                                    \
            if (i == inner) {                                                             \
                fa_bias_close_##SFX(fl, dl, acc + c);                                     \
                i = 0;                                                                    \
                if (++c == C) c = 0;                                                      \
            } else if (i % FA_BIAS_SEGMENT == 0) {                                        \
                for (int l = 0; l < FA_BIAS_LANES; l++) {                                 \
                    dl[l] += (double)fl[l];                                               \
                    fl[l] = 0;                                                            \
                }                                                                         \
            }                                                                             \
        }                                                                                 \
    }

FA_EPILOGUE(float, f32)
FA_EPILOGUE(double, f64)

/* The blocks' partial sums (nblocks rows of C) combined into the first row,
 * the blocks added one after another from the first. */
static void fa_bias_combine(double *restrict p, Py_ssize_t nblocks, Py_ssize_t C) {
    for (Py_ssize_t b = 1; b < nblocks; b++) {
        const double *restrict q = p + b * C;
        for (Py_ssize_t c = 0; c < C; c++) p[c] += q[c];
    }
}

#endif
