/* Forward convolution with packing fused into the GEMM (AVX-512 only; elsewhere ecp uses
 * im2col + BLAS).
 *
 * The im2col + SGEMM path moves the unrolled windows twice: im2col writes them (K x n, larger
 * than L2), then the BLAS copies them again into its panel format (sgemm_itcopy). Here the
 * windows of NR output pixels are written once, straight into an L1/L2-sized panel
 * (K x NR), and an 8 x NR register tile of outputs is accumulated from it for each block of 8
 * filters. Same sampling grid as ecp_im2col.h: output (r, q) of the item reads input
 * (oy + s*(r0 + r) + i - pad, ox + s*q + j - pad), zeros outside the plane; s is 1 or 2.
 *
 * Summation order: each output is one chain over k = (c, i, j) in order, so results do not
 * depend on threads or on how columns are grouped.
 */
#ifndef ECP_DIRECT_H
#define ECP_DIRECT_H

#if defined(_MSC_VER) && !defined(restrict)
#define restrict __restrict  /* MSVC's C compiler spells C99's restrict this way */
#endif

#include <stddef.h>
#include <string.h>

#if defined(__GNUC__) && defined(__x86_64__)
#define ECP_DIRECT_AVAILABLE 1
static int ecp_direct_supported(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
}
#else
#define ECP_DIRECT_AVAILABLE 0
static int ecp_direct_supported(void) { return 0; }
#endif

#define ECP_MR 8

/* Wp[ob][k][m] = w[ob*8 + m][k], zero rows past O: the weights in the micro-kernel's order */
#define ECP_DEFINE_PACKW(T, SUF)                                                               \
static void ecp_pack_weights_##SUF(const T *restrict w, ptrdiff_t O, ptrdiff_t K,               \
                                   T *restrict wp)                                             \
{                                                                                              \
    ptrdiff_t nob = (O + ECP_MR - 1) / ECP_MR;                                                 \
    for (ptrdiff_t ob = 0; ob < nob; ob++)                                                     \
        for (ptrdiff_t k = 0; k < K; k++)                                                      \
            for (ptrdiff_t m = 0; m < ECP_MR; m++) {                                           \
                ptrdiff_t o = ob * ECP_MR + m;                                                 \
                wp[(ob * K + k) * ECP_MR + m] = o < O ? w[o * K + k] : (T)0;                   \
            }                                                                                  \
}
ECP_DEFINE_PACKW(float, f)
ECP_DEFINE_PACKW(double, d)

#if ECP_DIRECT_AVAILABLE

typedef float ecp_vf __attribute__((vector_size(64)));
typedef float ecp_vf_u __attribute__((vector_size(64), aligned(4)));
typedef double ecp_vd __attribute__((vector_size(64)));
typedef double ecp_vd_u __attribute__((vector_size(64), aligned(8)));

/* T: element type, V/VU: 64-byte vector (aligned / unaligned), VL: lanes, NR = 2*VL columns */
#define ECP_DEFINE_DIRECT(T, SUF, V, VU, VL)                                                   \
__attribute__((target("avx512f,fma")))                                                         \
static inline void ecp_tile_##SUF(ptrdiff_t K, const T *restrict a, const T *restrict bp,      \
                                  T *restrict tile)                                            \
{                                                                                              \
    V c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0}, c4 = {0}, c5 = {0}, c6 = {0}, c7 = {0};           \
    V d0 = {0}, d1 = {0}, d2 = {0}, d3 = {0}, d4 = {0}, d5 = {0}, d6 = {0}, d7 = {0};           \
    for (ptrdiff_t k = 0; k < K; k++) {                                                        \
        const V b0 = *(const VU *)(bp + 2 * VL * k);                                           \
        const V b1 = *(const VU *)(bp + 2 * VL * k + VL);                                      \
        const T *ak = a + ECP_MR * k;                                                          \
        c0 += ak[0] * b0; d0 += ak[0] * b1;                                                    \
        c1 += ak[1] * b0; d1 += ak[1] * b1;                                                    \
        c2 += ak[2] * b0; d2 += ak[2] * b1;                                                    \
        c3 += ak[3] * b0; d3 += ak[3] * b1;                                                    \
        c4 += ak[4] * b0; d4 += ak[4] * b1;                                                    \
        c5 += ak[5] * b0; d5 += ak[5] * b1;                                                    \
        c6 += ak[6] * b0; d6 += ak[6] * b1;                                                    \
        c7 += ak[7] * b0; d7 += ak[7] * b1;                                                    \
    }                                                                                          \
    VU *t = (VU *)tile;                                                                        \
    t[0] = c0; t[1] = d0; t[2] = c1; t[3] = d1; t[4] = c2; t[5] = d2; t[6] = c3; t[7] = d3;    \
    t[8] = c4; t[9] = d4; t[10] = c5; t[11] = d5; t[12] = c6; t[13] = d6; t[14] = c7;          \
    t[15] = d7;                                                                                \
}                                                                                              \
                                                                                               \
/* Output rows r0 .. r0+nr-1 of samples n0 .. n0+nb-1 of y (N, O, hq, wq), bias added.       \
 * panel: K * 2*VL scratch, tile: 8 * 2*VL scratch (both per thread). */                       \
__attribute__((target("avx512f,fma")))                                                         \
static void ecp_direct_item_##SUF(const T *restrict x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,  \
                                  const T *restrict wp, ptrdiff_t O, ptrdiff_t kh,             \
                                  ptrdiff_t kw, const T *restrict bias, T *restrict y,         \
                                  ptrdiff_t hq, ptrdiff_t wq, ptrdiff_t n0, ptrdiff_t nb,      \
                                  ptrdiff_t r0, ptrdiff_t nr, ptrdiff_t pad, ptrdiff_t s,      \
                                  ptrdiff_t oy, ptrdiff_t ox, T *restrict panel,               \
                                  T *restrict tile)                                            \
{                                                                                              \
    const ptrdiff_t NR = 2 * VL, K = C * kh * kw, P = nr * wq, ncols = nb * P;                 \
    const ptrdiff_t plane = hq * wq, nob = (O + ECP_MR - 1) / ECP_MR;                          \
    ptrdiff_t yoff[2 * VL];                                                                    \
    for (ptrdiff_t j0 = 0; j0 < ncols; j0 += NR) {                                             \
        const ptrdiff_t jn = ncols - j0 < NR ? ncols - j0 : NR;                                \
        if (jn < NR)                                                                           \
            for (ptrdiff_t k = 0; k < K; k++)                                                  \
                memset(panel + k * NR + jn, 0, (size_t)(NR - jn) * sizeof(T));                 \
        /* pack the windows of columns j0 .. j0+jn-1, one run of same-row pixels at a time */  \
        for (ptrdiff_t t = 0; t < jn;) {                                                       \
            const ptrdiff_t g = j0 + t, b = g / P, p = g % P, rr = p / wq, qq = p % wq;         \
            const ptrdiff_t len = wq - qq < jn - t ? wq - qq : jn - t;                         \
            const T *xs = x + (n0 + b) * C * H * W;                                            \
            const ptrdiff_t rbase = oy + s * (r0 + rr) - pad, cbase = ox + s * qq - pad;       \
            for (ptrdiff_t u = 0; u < len; u++) yoff[t + u] = (n0 + b) * O * plane + r0 * wq + p + u; \
            for (ptrdiff_t c = 0; c < C; c++) {                                                \
                for (ptrdiff_t i = 0; i < kh; i++) {                                           \
                    const ptrdiff_t row = rbase + i;                                           \
                    T *restrict dk = panel + ((c * kh + i) * kw) * NR + t;                     \
                    if (row < 0 || row >= H) {                                                 \
                        for (ptrdiff_t j = 0; j < kw; j++)                                     \
                            memset(dk + j * NR, 0, (size_t)len * sizeof(T));                   \
                        continue;                                                              \
                    }                                                                          \
                    const T *xr = xs + (c * H + row) * W;                                      \
                    for (ptrdiff_t j = 0; j < kw; j++) {                                       \
                        T *restrict d = dk + j * NR;                                           \
                        const ptrdiff_t c0 = cbase + j;                                        \
                        if (c0 >= 0 && c0 + s * (len - 1) < W) {                               \
                            if (s == 1) memcpy(d, xr + c0, (size_t)len * sizeof(T));           \
                            else for (ptrdiff_t u = 0; u < len; u++) d[u] = xr[c0 + 2 * u];    \
                        } else {                                                               \
                            for (ptrdiff_t u = 0; u < len; u++) {                              \
                                const ptrdiff_t col = c0 + s * u;                              \
                                d[u] = (col >= 0 && col < W) ? xr[col] : (T)0;                 \
                            }                                                                  \
                        }                                                                      \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
            t += len;                                                                          \
        }                                                                                      \
        /* the panel's outputs are one run of y when they lie in one sample */                 \
        const int contiguous = yoff[jn - 1] - yoff[0] == jn - 1;                               \
        for (ptrdiff_t ob = 0; ob < nob; ob++) {                                               \
            ecp_tile_##SUF(K, wp + ob * K * ECP_MR, panel, tile);                              \
            const ptrdiff_t mn = O - ob * ECP_MR < ECP_MR ? O - ob * ECP_MR : ECP_MR;          \
            for (ptrdiff_t m = 0; m < mn; m++) {                                               \
                const ptrdiff_t o = ob * ECP_MR + m;                                           \
                const T bo = bias[o];                                                          \
                T *yo = y + o * plane;                                                         \
                const T *tr = tile + m * NR;                                                   \
                if (contiguous) {                                                              \
                    T *restrict yc = yo + yoff[0];                                             \
                    for (ptrdiff_t t = 0; t < jn; t++) yc[t] = tr[t] + bo;                     \
                } else {                                                                       \
                    for (ptrdiff_t t = 0; t < jn; t++) yo[yoff[t]] = tr[t] + bo;               \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
}

ECP_DEFINE_DIRECT(float, f, ecp_vf, ecp_vf_u, 16)
ECP_DEFINE_DIRECT(double, d, ecp_vd, ecp_vd_u, 8)

#else  /* no AVX-512 kernel in this build: never called (ecp_direct_supported() is 0) */

#define ECP_DEFINE_DIRECT_STUB(T, SUF)                                                         \
static void ecp_direct_item_##SUF(const T *x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,           \
                                  const T *wp, ptrdiff_t O, ptrdiff_t kh, ptrdiff_t kw,        \
                                  const T *bias, T *y, ptrdiff_t hq, ptrdiff_t wq,             \
                                  ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t r0, ptrdiff_t nr,      \
                                  ptrdiff_t pad, ptrdiff_t s, ptrdiff_t oy, ptrdiff_t ox,      \
                                  T *panel, T *tile)                                           \
{ (void)x; (void)C; (void)H; (void)W; (void)wp; (void)O; (void)kh; (void)kw; (void)bias;       \
  (void)y; (void)hq; (void)wq; (void)n0; (void)nb; (void)r0; (void)nr; (void)pad; (void)s;     \
  (void)oy; (void)ox; (void)panel; (void)tile; }
ECP_DEFINE_DIRECT_STUB(float, f)
ECP_DEFINE_DIRECT_STUB(double, d)

#endif
#endif
