/* The bias epilogue's loops (_epilogue.pxi): adding the bias to a tile, and
 * summing a tile's gradient into the bias gradient's partial sums.
 *
 * Element k of the flat C-order buffer, an (outer, C, inner) array, has the
 * bias b[(k / inner) % C].  Sums are in double, in increasing k: into acc[c]
 * when inner == 1, into lane k % 8 of acc[8 * c ...] otherwise (the Numba
 * drivers' order, fastact/_backends/numba/drivers.py). */
#ifndef FA_EPILOGUE_H
#define FA_EPILOGUE_H
#include "fa_intrinsics.h"

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
    /* the gradient gi of elements k0..k0+n-1 added to the partial sums acc */           \
    FA_CLONES static void fa_sum_bias_##SFX(const T *restrict gi, Py_ssize_t k0,         \
                                             Py_ssize_t n, Py_ssize_t C, Py_ssize_t inner, \
                                             double *restrict acc) {                      \
        Py_ssize_t j = 0;                                                                 \
        if (inner == 1) {                                                                 \
            Py_ssize_t c = k0 % C;                                                        \
            while (j < n) {                                                               \
                const Py_ssize_t run = C - c < n - j ? C - c : n - j;                     \
                double *restrict a = acc + c;                                             \
                for (Py_ssize_t i = 0; i < run; i++) a[i] += (double)gi[j + i];           \
                j += run;                                                                 \
                c = 0;                                                                    \
            }                                                                             \
            return;                                                                       \
        }                                                                                 \
        Py_ssize_t c = (k0 / inner) % C, r = k0 % inner;                                  \
        while (j < n) {                                                                   \
            const Py_ssize_t run = inner - r < n - j ? inner - r : n - j;                 \
            double *restrict a = acc + 8 * c;                                             \
            const T *restrict v = gi + j;                                                 \
            const Py_ssize_t k = k0 + j;                                                  \
            Py_ssize_t i = 0;                                                             \
            for (; i < run && ((k + i) & 7); i++) a[(k + i) & 7] += (double)v[i];         \
            for (; i + 8 <= run; i += 8)                                                  \
                for (int l = 0; l < 8; l++) a[l] += (double)v[i + l];                     \
            for (; i < run; i++) a[(k + i) & 7] += (double)v[i];                          \
            j += run;                                                                     \
            r = 0;                                                                        \
            if (++c == C) c = 0;                                                          \
        }                                                                                 \
    }

FA_EPILOGUE(float, f32)
FA_EPILOGUE(double, f64)

#endif
