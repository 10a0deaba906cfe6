/* One output row of 2x2 / stride-2 max pooling, branch-free so that the compiler can if-convert
 * and vectorise it: on real data the winner of a window is unpredictable, and mispredicted
 * branches cost far more than the comparisons.
 *
 * r0, r1: the two input rows (length >= 2*wq); y, idx: wq outputs; idx is the flat position
 * top + column offset in the (H, W) plane, with top = index of r0[0] in the plane.
 * Ties go to the first maximum in row-major window order; a NaN beats any number and the first
 * NaN of the window wins, so NaN propagates as in NumPy's max.
 */
#ifndef ECP_MAXPOOL_H
#define ECP_MAXPOOL_H

#if defined(_MSC_VER) && !defined(restrict)
#define restrict __restrict  /* MSVC's C compiler spells C99's restrict this way */
#endif

#include <stddef.h>
#include <stdint.h>

#define ECP_DEFINE_MAXPOOL(T, SUF)                                                             \
/* exact rule, NaN included; used for rows that hold a NaN */                                  \
static void ecp_maxpool_row_nan_##SUF(const T *restrict r0, const T *restrict r1,              \
                                      ptrdiff_t wq, int64_t W, int64_t top, T *restrict y,     \
                                      int64_t *restrict idx)                                   \
{                                                                                              \
    for (ptrdiff_t q = 0; q < wq; q++) {                                                       \
        const T v[4] = {r0[2 * q], r0[2 * q + 1], r1[2 * q], r1[2 * q + 1]};                   \
        const int64_t off[4] = {0, 1, W, W + 1};                                               \
        int best = 0;                                                                          \
        for (int t = 1; t < 4; t++)                                                            \
            if (v[t] > v[best] || (v[t] != v[t] && v[best] == v[best])) best = t;              \
        y[q] = v[best];                                                                        \
        idx[q] = top + 2 * q + off[best];                                                      \
    }                                                                                          \
}                                                                                              \
                                                                                               \
static void ecp_maxpool_row_##SUF(const T *restrict r0, const T *restrict r1, ptrdiff_t wq,    \
                                  int64_t W, int64_t top, T *restrict y, int64_t *restrict idx) \
{                                                                                              \
    int nan = 0;                                                                               \
    for (ptrdiff_t q = 0; q < 2 * wq; q++)                                                     \
        nan |= (r0[q] != r0[q]) | (r1[q] != r1[q]);                                            \
    if (nan) {                                                                                 \
        ecp_maxpool_row_nan_##SUF(r0, r1, wq, W, top, y, idx);                                 \
        return;                                                                                \
    }                                                                                          \
    /* no NaN: strict > keeps the first maximum; max and masks, no branch */                   \
    for (ptrdiff_t q = 0; q < wq; q++) {                                                       \
        T m = r0[2 * q], v;                                                                    \
        int64_t k = 0, c; /* masks, not ?: on k: compilers make that a branch */               \
        v = r0[2 * q + 1]; c = -(int64_t)(v > m); k = (c & 1) | (~c & k); m = v > m ? v : m;   \
        v = r1[2 * q]; c = -(int64_t)(v > m); k = (c & W) | (~c & k); m = v > m ? v : m;       \
        v = r1[2 * q + 1]; c = -(int64_t)(v > m); k = (c & (W + 1)) | (~c & k);                \
        m = v > m ? v : m;                                                                     \
        y[q] = m;                                                                              \
        idx[q] = top + 2 * q + k;                                                              \
    }                                                                                          \
}

ECP_DEFINE_MAXPOOL(float, f)
ECP_DEFINE_MAXPOOL(double, d)

#endif
