/* im2col / col2im for one (H, W) plane, in C so that the copies get `restrict` pointers and
 * fixed-width inner blocks: the rows copied here are short (the output width, often 4 to 24),
 * where loop set-up, alias checks and divisions, not bandwidth, set the cost.
 *
 * The stride s is 1 (full convolution) or 2 (Easy Convolution); ecp_im2col_sn.h has the routines
 * of larger strides (pooling windows of stride 3 and 4).
 * Sampling grid: output (r, q) reads input (oy + s*r + i - ph, ox + s*q + j - pw) for kernel
 * tap (i, j); reads outside the plane are zeros (the padding).
 *
 * ecp_im2col_plane_{f,d}: rows (i*kw + j) of dst0 (row stride ld) get the hq*wq samples of tap
 *                         (i, j); every element of those rows is written.
 * ecp_col2im_plane_{f,d}: dxp (H*W) = sum over taps of the rows of src0 placed back; every
 *                         element of dxp is written.
 */
#ifndef ECP_IM2COL_H
#define ECP_IM2COL_H

#if defined(_MSC_VER) && !defined(restrict)
#define restrict __restrict  /* MSVC's C compiler spells C99's restrict this way */
#endif

#include <stddef.h>
#include <string.h>

/* first q >= 0 with base + s*q >= 0, and one past the last q < count with base + s*q < size */
static inline ptrdiff_t ecp_q_lo(ptrdiff_t base, ptrdiff_t s)
{
    if (base >= 0) return 0;
    return s == 1 ? -base : (-base + 1) / 2;
}

static inline ptrdiff_t ecp_q_hi(ptrdiff_t base, ptrdiff_t s, ptrdiff_t size, ptrdiff_t count)
{
    ptrdiff_t top = size - 1 - base;
    if (top < 0) return 0;
    top = (s == 1 ? top : top / 2) + 1;
    return top < count ? top : count;
}

#define ECP_DEFINE_IM2COL(T, SUF)                                                              \
static void ecp_im2col_plane_##SUF(const T *restrict xp, ptrdiff_t H, ptrdiff_t W,             \
                                   ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t ph, ptrdiff_t pw,     \
                                   ptrdiff_t s,                                                \
                                   ptrdiff_t oy, ptrdiff_t ox, ptrdiff_t hq, ptrdiff_t wq,      \
                                   T *restrict dst0, ptrdiff_t ld)                             \
{                                                                                              \
    for (ptrdiff_t i = 0; i < kh; i++) {                                                       \
        for (ptrdiff_t j = 0; j < kw; j++) {                                                   \
            const ptrdiff_t basec = ox + j - pw;                                               \
            ptrdiff_t qlo = ecp_q_lo(basec, s), qhi = ecp_q_hi(basec, s, W, wq);               \
            if (qhi < qlo) qhi = qlo;                                                          \
            T *restrict drow = dst0 + (i * kw + j) * ld;                                       \
            for (ptrdiff_t r = 0; r < hq; r++) {                                               \
                T *restrict d = drow + r * wq;                                                 \
                const ptrdiff_t row = oy + s * r + i - ph;                                     \
                if (row < 0 || row >= H || qhi == qlo) {                                       \
                    for (ptrdiff_t q = 0; q < wq; q++) d[q] = 0;                               \
                    continue;                                                                  \
                }                                                                              \
                const T *restrict xr = xp + row * W;                                   \
                for (ptrdiff_t q = 0; q < qlo; q++) d[q] = 0;                                  \
                if (s == 1) {                                                                  \
                    ptrdiff_t q = qlo;                                                         \
                    for (; q + 8 <= qhi; q += 8) memcpy(d + q, xr + basec + q, 8 * sizeof(T));          \
                    for (; q < qhi; q++) d[q] = xr[basec + q];                                         \
                } else {                                                                       \
                    for (ptrdiff_t q = qlo; q < qhi; q++) d[q] = xr[basec + 2 * q];                    \
                }                                                                              \
                for (ptrdiff_t q = qhi; q < wq; q++) d[q] = 0;                                 \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
}                                                                                              \
                                                                                               \
static void ecp_col2im_plane_##SUF(const T *restrict src0, ptrdiff_t ld, ptrdiff_t H,          \
                                   ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t ph,      \
                                   ptrdiff_t pw,                                               \
                                   ptrdiff_t s, ptrdiff_t oy, ptrdiff_t ox, ptrdiff_t hq,       \
                                   ptrdiff_t wq, T *restrict dxp)                              \
{                                                                                              \
    memset(dxp, 0, (size_t)(H * W) * sizeof(T));                                               \
    for (ptrdiff_t i = 0; i < kh; i++) {                                                       \
        for (ptrdiff_t j = 0; j < kw; j++) {                                                   \
            const ptrdiff_t basec = ox + j - pw;                                               \
            const ptrdiff_t qlo = ecp_q_lo(basec, s), qhi = ecp_q_hi(basec, s, W, wq);         \
            if (qhi <= qlo) continue;                                                          \
            const T *restrict srow = src0 + (i * kw + j) * ld;                                 \
            for (ptrdiff_t r = 0; r < hq; r++) {                                               \
                const ptrdiff_t row = oy + s * r + i - ph;                                     \
                if (row < 0 || row >= H) continue;                                             \
                const T *restrict d = srow + r * wq;                                           \
                T *restrict xr = dxp + row * W;                                        \
                if (s == 1) {                                                                  \
                    for (ptrdiff_t q = qlo; q < qhi; q++) xr[basec + q] += d[q];                       \
                } else {                                                                       \
                    for (ptrdiff_t q = qlo; q < qhi; q++) xr[basec + 2 * q] += d[q];                   \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
}

ECP_DEFINE_IM2COL(float, f)
ECP_DEFINE_IM2COL(double, d)

#endif
