/* im2col / col2im of one (H, W) plane for strides above 2 (pooling windows of stride 3 and 4),
 * with the contracts of ecp_im2col.h's routines for any stride s >= 1.
 *
 * A header of its own, so that ecp_im2col.h's stride-1 and stride-2 routines stay byte-identical
 * and in their place (their speed is sensitive to it: docs/performance.md, section 12).
 */
#ifndef ECP_IM2COL_SN_H
#define ECP_IM2COL_SN_H

#if defined(_MSC_VER) && !defined(restrict)
#define restrict __restrict
#endif

#include <stddef.h>
#include <string.h>

/* Out of the hot code's way: the routines are not inlined and (ELF, GCC / Clang) sit in a section
 * of their own; the callers reach them through ..._call trampolines marked `cold`, which makes the
 * compilers lay the callers' branch to them out of line. The routines are marked `hot` so that they
 * keep the build's -O3: a function called only from cold code, or `cold` itself, is optimised for
 * size (the stride-3 conv2 forward then took twice as long). */
#if defined(__GNUC__) && defined(__ELF__)
#define ECP_SN_PLACE __attribute__((hot, noinline, section(".text.unlikely.ecp_sn")))
#define ECP_SN_COLD __attribute__((cold, noinline))
#elif defined(__GNUC__)
#define ECP_SN_PLACE __attribute__((hot, noinline))
#define ECP_SN_COLD __attribute__((cold, noinline))
#else
#define ECP_SN_PLACE
#define ECP_SN_COLD
#endif

static inline ptrdiff_t ecp_q_lo_n(ptrdiff_t base, ptrdiff_t s)
{
    return base >= 0 ? 0 : (-base + s - 1) / s;
}

static inline ptrdiff_t ecp_q_hi_n(ptrdiff_t base, ptrdiff_t s, ptrdiff_t size, ptrdiff_t count)
{
    ptrdiff_t top = size - 1 - base;
    if (top < 0) return 0;
    top = top / s + 1;
    return top < count ? top : count;
}

#define ECP_DEFINE_IM2COL_SN(T, SUF)                                                           \
ECP_SN_PLACE static void ecp_im2col_plane_sn_##SUF(const T *restrict xp, ptrdiff_t H, ptrdiff_t W,          \
                                      ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t ph, ptrdiff_t pw,  \
                                      ptrdiff_t s,                                             \
                                      ptrdiff_t oy, ptrdiff_t ox, ptrdiff_t hq, ptrdiff_t wq,   \
                                      T *restrict dst0, ptrdiff_t ld)                          \
{                                                                                              \
    for (ptrdiff_t i = 0; i < kh; i++) {                                                       \
        for (ptrdiff_t j = 0; j < kw; j++) {                                                   \
            const ptrdiff_t basec = ox + j - pw;                                               \
            ptrdiff_t qlo = ecp_q_lo_n(basec, s), qhi = ecp_q_hi_n(basec, s, W, wq);           \
            if (qhi < qlo) qhi = qlo;                                                          \
            T *restrict drow = dst0 + (i * kw + j) * ld;                                       \
            for (ptrdiff_t r = 0; r < hq; r++) {                                               \
                T *restrict d = drow + r * wq;                                                 \
                const ptrdiff_t row = oy + s * r + i - ph;                                     \
                if (row < 0 || row >= H || qhi == qlo) {                                       \
                    for (ptrdiff_t q = 0; q < wq; q++) d[q] = 0;                               \
                    continue;                                                                  \
                }                                                                              \
                const T *restrict xr = xp + row * W;                                           \
                for (ptrdiff_t q = 0; q < qlo; q++) d[q] = 0;                                  \
                for (ptrdiff_t q = qlo; q < qhi; q++) d[q] = xr[basec + s * q];                \
                for (ptrdiff_t q = qhi; q < wq; q++) d[q] = 0;                                 \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
}                                                                                              \
                                                                                               \
ECP_SN_PLACE static void ecp_col2im_plane_sn_##SUF(const T *restrict src0, ptrdiff_t ld, ptrdiff_t H,       \
                                      ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t ph,   \
                                      ptrdiff_t pw,                                            \
                                      ptrdiff_t s, ptrdiff_t oy, ptrdiff_t ox, ptrdiff_t hq,    \
                                      ptrdiff_t wq, T *restrict dxp)                           \
{                                                                                              \
    memset(dxp, 0, (size_t)(H * W) * sizeof(T));                                               \
    for (ptrdiff_t i = 0; i < kh; i++) {                                                       \
        for (ptrdiff_t j = 0; j < kw; j++) {                                                   \
            const ptrdiff_t basec = ox + j - pw;                                               \
            const ptrdiff_t qlo = ecp_q_lo_n(basec, s), qhi = ecp_q_hi_n(basec, s, W, wq);     \
            if (qhi <= qlo) continue;                                                          \
            const T *restrict srow = src0 + (i * kw + j) * ld;                                 \
            for (ptrdiff_t r = 0; r < hq; r++) {                                               \
                const ptrdiff_t row = oy + s * r + i - ph;                                     \
                if (row < 0 || row >= H) continue;                                             \
                const T *restrict d = srow + r * wq;                                           \
                T *restrict xr = dxp + row * W;                                                \
                for (ptrdiff_t q = qlo; q < qhi; q++) xr[basec + s * q] += d[q];               \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
}

ECP_DEFINE_IM2COL_SN(float, f)
ECP_DEFINE_IM2COL_SN(double, d)

#define ECP_DEFINE_SN_CALLS(T, SUF)                                                            \
ECP_SN_COLD static void ecp_im2col_plane_sn_call_##SUF(const T *xp, ptrdiff_t H, ptrdiff_t W,   \
        ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t ph, ptrdiff_t pw, ptrdiff_t s, ptrdiff_t oy,     \
        ptrdiff_t ox, ptrdiff_t hq, ptrdiff_t wq, T *dst0, ptrdiff_t ld)                       \
{                                                                                              \
    ecp_im2col_plane_sn_##SUF(xp, H, W, kh, kw, ph, pw, s, oy, ox, hq, wq, dst0, ld);          \
}                                                                                              \
ECP_SN_COLD static void ecp_col2im_plane_sn_call_##SUF(const T *src0, ptrdiff_t ld, ptrdiff_t H, \
        ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t ph, ptrdiff_t pw, ptrdiff_t s,      \
        ptrdiff_t oy, ptrdiff_t ox, ptrdiff_t hq, ptrdiff_t wq, T *dxp)                        \
{                                                                                              \
    ecp_col2im_plane_sn_##SUF(src0, ld, H, W, kh, kw, ph, pw, s, oy, ox, hq, wq, dxp);         \
}

ECP_DEFINE_SN_CALLS(float, f)
ECP_DEFINE_SN_CALLS(double, d)

#endif
