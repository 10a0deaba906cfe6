/* Convolution with the packing fused into the matrix products (AVX-512 only; elsewhere ecp uses
 * im2col + BLAS, ecp_im2col.h).
 *
 * The im2col + SGEMM path moves the unrolled windows twice: im2col writes them (K x n, larger
 * than L2), then the BLAS copies them again into its panel format (sgemm_itcopy); its backward
 * adds a K x n dcols buffer and a col2im pass. Here the windows of a few output pixels are
 * written once, into a panel that stays in L1/L2, and one register tile (ecp_tile: 8 rows x
 * 2 vectors) does every product:
 *   ecp_direct_item        forward, panel [k][32 pixels] (one masked copy per window element
 *                          and run of same-row pixels), tile = 8 filters x 32 pixels;
 *   ecp_direct_rows_item   forward for rows of a few pixels, panel [pixel][k] (one masked copy
 *                          per window row) or, for pixels whose windows lie inside the plane, the
 *                          windows read in place (ecp_tile_x); tile = 8 pixels x 32 filters;
 *   ecp_direct_backward_item  dW from a [pixel][k] panel, tile = 8 filters x 32 window
 *                          elements summed over 32 pixels, or from the windows in place
 *                          (ecp_tile_xt: 8 window elements x 32 filters); dx from tiles of W^T dY,
 *                          8 window elements x 32 pixels, added into dx a vector at a time.
 * Same sampling grid as ecp_im2col.h: output (r, q) of an item reads input
 * (oy + s*(r0 + r) + i - ph, ox + s*q + j - pw), zeros outside the plane; s is 1 or 2.
 * ecp's kernel choice picks one of these or im2col + BLAS per layer shape; the benchmarks behind
 * its thresholds are in bench/ and docs/performance.md.
 *
 * Summation order: each output is one chain over k = (c, i, j) (forward) or over the pixels of
 * an item in order (dW), so results do not depend on threads or on how pixels are grouped.
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
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("fma");
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

/* Wv[ob][k][l] = w[ob*nr + l][k], zero past O: the weights as rows of nr filters, the B operand
 * of the pixel-rows forward kernel */
#define ECP_DEFINE_PACKWV(T, SUF)                                                              \
static void ecp_pack_weights_v_##SUF(const T *restrict w, ptrdiff_t O, ptrdiff_t K, ptrdiff_t nr, \
                                     T *restrict wv)                                           \
{                                                                                              \
    /* in blocks of 16 k, so that the scattered writes stay in L1 (a transpose in one sweep   \
     * of K missed L1 on every write: a third of a small layer's forward call) */             \
    const ptrdiff_t nov = (O + nr - 1) / nr;                                                   \
    for (ptrdiff_t ob = 0; ob < nov; ob++)                                                     \
        for (ptrdiff_t k0 = 0; k0 < K; k0 += 16) {                                             \
            const ptrdiff_t k1 = K - k0 < 16 ? K : k0 + 16;                                    \
            for (ptrdiff_t l = 0; l < nr; l++) {                                               \
                const ptrdiff_t o = ob * nr + l;                                               \
                T *restrict d = wv + (ob * K) * nr + l;                                        \
                if (o < O)                                                                     \
                    for (ptrdiff_t k = k0; k < k1; k++) d[k * nr] = w[o * K + k];              \
                else                                                                           \
                    for (ptrdiff_t k = k0; k < k1; k++) d[k * nr] = (T)0;                      \
            }                                                                                  \
        }                                                                                      \
}
ECP_DEFINE_PACKWV(float, scalar_f)   /* float: 16 x 16 transposes on AVX-512, below */
ECP_DEFINE_PACKWV(double, d)

/* Wt[kb][o][m] = w[o][kb*8 + m], zero past K: W^T in 8-row blocks, the A operand of dcols */
#define ECP_DEFINE_PACKWT(T, SUF)                                                              \
static void ecp_pack_weights_t_##SUF(const T *restrict w, ptrdiff_t O, ptrdiff_t K,             \
                                     T *restrict wt)                                           \
{                                                                                              \
    const ptrdiff_t full = K / ECP_MR, nkb = (K + ECP_MR - 1) / ECP_MR;                        \
    for (ptrdiff_t kb = 0; kb < full; kb++)         /* whole blocks: 8 contiguous values */    \
        for (ptrdiff_t o = 0; o < O; o++)                                                      \
            memcpy(wt + (kb * O + o) * ECP_MR, w + o * K + kb * ECP_MR, ECP_MR * sizeof(T));   \
    for (ptrdiff_t kb = full; kb < nkb; kb++)                                                  \
        for (ptrdiff_t o = 0; o < O; o++)                                                      \
            for (ptrdiff_t m = 0; m < ECP_MR; m++) {                                           \
                ptrdiff_t k = kb * ECP_MR + m;                                                 \
                wt[(kb * O + o) * ECP_MR + m] = k < K ? w[o * K + k] : (T)0;                   \
            }                                                                                  \
}
ECP_DEFINE_PACKWT(float, f)
ECP_DEFINE_PACKWT(double, d)

/* koff[k] = offset of window element k = (c, i, j) from a window's corner in the input of one
 * sample (c*H*W + i*W + j), for k < C*kh*kw, and 0 up to n (rows a last partial tile computes
 * and nobody reads): the table through which the kernels read windows in place. Computed once
 * per call; the offsets must fit an int (C*H*W <= INT_MAX, which the caller checks). */
static void ecp_window_offsets(ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw,
                               ptrdiff_t n, int *koff)
{
    ptrdiff_t k = 0;
    for (ptrdiff_t c = 0; c < C; c++)
        for (ptrdiff_t i = 0; i < kh; i++)
            for (ptrdiff_t j = 0; j < kw && k < n; j++) koff[k++] = (int)(c * H * W + i * W + j);
    for (; k < n; k++) koff[k] = 0;
}

#if ECP_DIRECT_AVAILABLE

#include <immintrin.h>

typedef float ecp_vf __attribute__((vector_size(64)));
typedef float ecp_vf_u __attribute__((vector_size(64), aligned(4)));
typedef double ecp_vd __attribute__((vector_size(64)));
typedef double ecp_vd_u __attribute__((vector_size(64), aligned(8)));

/* The lanes lo .. hi-1 of n (none when hi <= lo), as a mask */
static inline unsigned ecp_lanes(ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t n)
{
    if (lo < 0) lo = 0;
    if (hi > n) hi = n;
    return hi > lo ? ((1u << hi) - 1u) & ~((1u << lo) - 1u) : 0u;
}

/* Copy xr[c0 .. c0+kw-1] to d, zeros where the column is outside 0 .. W-1; ok is
 * ecp_lanes(-c0, W - c0, kw), the same for every window row of a pixel. When the row fits a
 * vector: one masked load (lanes outside the plane are never read) and one full store, whose
 * lanes past kw are zeros: d needs VL - kw elements of slack after it, which the next window
 * row (packed after this one) overwrites. */
__attribute__((target("avx512f,avx512vl"))) static inline void
ecp_window_row_f(float *restrict d, const float *restrict xr, ptrdiff_t c0, ptrdiff_t kw,
                 ptrdiff_t W, unsigned ok)
{
    if (kw <= 16) {
        _mm512_storeu_ps(d, _mm512_maskz_loadu_ps((__mmask16)ok, xr + c0));
        return;
    }
    for (ptrdiff_t j = 0; j < kw; j++) d[j] = (c0 + j >= 0 && c0 + j < W) ? xr[c0 + j] : 0.0f;
}
__attribute__((target("avx512f,avx512vl"))) static inline void
ecp_window_row_d(double *restrict d, const double *restrict xr, ptrdiff_t c0, ptrdiff_t kw,
                 ptrdiff_t W, unsigned ok)
{
    if (kw <= 8) {
        _mm512_storeu_pd(d, _mm512_maskz_loadu_pd((__mmask8)ok, xr + c0));
        return;
    }
    for (ptrdiff_t j = 0; j < kw; j++) d[j] = (c0 + j >= 0 && c0 + j < W) ? xr[c0 + j] : 0.0;
}

/* One pixel's window, C*kh rows of kw values, into rt (im2row): the window's top-left input
 * element is (rbase, cbase) of each plane of xs; zeros outside the plane. The rows inside the
 * plane (ilo .. ihi-1) and the column mask are the same for every channel: computed once. A row
 * is one masked load and one full-vector store (the next row's store overwrites the spill; rt
 * needs a vector of slack past C*kh*kw). */
#define ECP_DEFINE_PACK_WINDOW(T, SUF, SMALL, STORE_S, LOAD_S, ZERO_S, MASK_S)                  \
__attribute__((target("avx512f,avx512vl"))) static inline void                                 \
ecp_pack_window_##SUF(T *restrict rt, const T *restrict xs, ptrdiff_t C, ptrdiff_t H,           \
                      ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t rbase, ptrdiff_t cbase)  \
{                                                                                              \
    const ptrdiff_t HW = H * W, ilo = rbase < 0 ? -rbase : 0;                                  \
    ptrdiff_t ihi = H - rbase < kh ? H - rbase : kh;                                           \
    if (ihi < ilo) ihi = ilo;                                                                  \
    if (kw <= SMALL) {                                                                         \
        const MASK_S ok = (MASK_S)ecp_lanes(-cbase, W - cbase, kw);                            \
        for (ptrdiff_t c = 0; c < C; c++) {                                                    \
            T *restrict d = rt + c * kh * kw;                                                  \
            const T *sp = xs + c * HW + rbase * W + cbase;                                     \
            ptrdiff_t i = 0;                                                                   \
            for (; i < ilo; i++) STORE_S(d + i * kw, ZERO_S());                                \
            for (; i < ihi; i++) STORE_S(d + i * kw, LOAD_S(ok, sp + i * W));                  \
            for (; i < kh; i++) STORE_S(d + i * kw, ZERO_S());                                 \
        }                                                                                      \
        return;                                                                                \
    }                                                                                          \
    const unsigned ok = ecp_lanes(-cbase, W - cbase, kw < 2 * SMALL ? kw : 2 * SMALL);         \
    for (ptrdiff_t c = 0; c < C; c++)                                                          \
        for (ptrdiff_t i = 0; i < kh; i++) {                                                   \
            T *restrict d = rt + (c * kh + i) * kw;                                            \
            if (i < ilo || i >= ihi) memset(d, 0, (size_t)kw * sizeof(T));                     \
            else ecp_window_row_##SUF(d, xs + c * HW + (rbase + i) * W, cbase, kw, W, ok);     \
        }                                                                                      \
}
ECP_DEFINE_PACK_WINDOW(float, f, 8, _mm256_storeu_ps, _mm256_maskz_loadu_ps, _mm256_setzero_ps, __mmask8)
ECP_DEFINE_PACK_WINDOW(double, d, 4, _mm256_storeu_pd, _mm256_maskz_loadu_pd, _mm256_setzero_pd, __mmask8)

/* Adding kw rows of a dcols panel (NR apart) into one input-gradient row:
 *     dr[c0 + s*u + j] += src[j*NR + u]   for u < len, j < kw (columns outside 0 .. W-1 dropped).
 * The row segment is summed a vector at a time in registers and added to dr once: adding the kw
 * rows one after another re-read stores still in flight (neighbouring j overlap), a stall per
 * row. For s = 2, lane l of a chunk holds u = base + l/2 on every other lane: one permute
 * spreads a half vector. The masks and offsets depend only on the run (len, c0) and are the
 * same for all C*kh rows it touches: ecp_scatter_plan computes them once per run. */
#define ECP_MAXCH 5   /* chunks of a run's row segment: s*(NR-1) + kw <= 62 + 16 lanes */
typedef struct {
    ptrdiff_t nch, v0[ECP_MAXCH], off[ECP_MAXCH][16];
    unsigned out[ECP_MAXCH], load[ECP_MAXCH][16], spread[ECP_MAXCH][16];
} ecp_scatter_plan;

static inline void ecp_scatter_plan_make(ecp_scatter_plan *pl, ptrdiff_t c0, ptrdiff_t W,
                                         ptrdiff_t len, ptrdiff_t kw, ptrdiff_t s, ptrdiff_t VL)
{
    const ptrdiff_t span = s * (len - 1) + kw;
    const unsigned even = VL == 16 ? 0x5555u : 0x55u;
    pl->nch = 0;
    for (ptrdiff_t v0 = 0; v0 < span; v0 += VL) {
        const unsigned out = ecp_lanes(-(c0 + v0), W - (c0 + v0), VL) & ecp_lanes(0, span - v0, VL);
        if (!out) continue;
        const ptrdiff_t ch = pl->nch++;
        pl->v0[ch] = v0;
        pl->out[ch] = out;
        for (ptrdiff_t j = 0; j < kw; j++) {
            const ptrdiff_t e = v0 - j;                 /* lane l holds s*u = e + l */
            if (s == 1) {
                pl->off[ch][j] = e;
                pl->load[ch][j] = ecp_lanes(-e, len - e, VL);
            } else {
                const ptrdiff_t base = (e + (e & 1)) / 2;
                pl->off[ch][j] = base;
                pl->load[ch][j] = ecp_lanes(-base, len - base, VL / 2);
                pl->spread[ch][j] = (e & 1) ? even << 1 : even;
            }
        }
    }
}

__attribute__((target("avx512f,avx512vl"))) static inline void
ecp_scatter_row_f(float *restrict dr, ptrdiff_t c0, const float *restrict src, ptrdiff_t NR,
                  ptrdiff_t kw, ptrdiff_t s, const ecp_scatter_plan *pl)
{
    const __m512i spread = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    for (ptrdiff_t ch = 0; ch < pl->nch; ch++) {
        __m512 acc = _mm512_setzero_ps();
        for (ptrdiff_t j = 0; j < kw; j++) {
            const __m512 v = _mm512_maskz_loadu_ps((__mmask16)pl->load[ch][j], src + j * NR + pl->off[ch][j]);
            acc = _mm512_add_ps(acc, s == 1 ? v : _mm512_maskz_permutexvar_ps((__mmask16)pl->spread[ch][j], spread, v));
        }
        float *d = dr + c0 + pl->v0[ch];
        const __mmask16 out = (__mmask16)pl->out[ch];
        _mm512_mask_storeu_ps(d, out, _mm512_add_ps(_mm512_maskz_loadu_ps(out, d), acc));
    }
}
__attribute__((target("avx512f,avx512vl"))) static inline void
ecp_scatter_row_d(double *restrict dr, ptrdiff_t c0, const double *restrict src, ptrdiff_t NR,
                  ptrdiff_t kw, ptrdiff_t s, const ecp_scatter_plan *pl)
{
    const __m512i spread = _mm512_set_epi64(3, 3, 2, 2, 1, 1, 0, 0);
    for (ptrdiff_t ch = 0; ch < pl->nch; ch++) {
        __m512d acc = _mm512_setzero_pd();
        for (ptrdiff_t j = 0; j < kw; j++) {
            const __m512d v = _mm512_maskz_loadu_pd((__mmask8)pl->load[ch][j], src + j * NR + pl->off[ch][j]);
            acc = _mm512_add_pd(acc, s == 1 ? v : _mm512_maskz_permutexvar_pd((__mmask8)pl->spread[ch][j], spread, v));
        }
        double *d = dr + c0 + pl->v0[ch];
        const __mmask8 out = (__mmask8)pl->out[ch];
        _mm512_mask_storeu_pd(d, out, _mm512_add_pd(_mm512_maskz_loadu_pd(out, d), acc));
    }
}

/* The stride-2 scatter of short rows (2*len + kw <= VL + 1: one vector covers a run's row
 * segment), as ecp_scatter_row computes it, a window row (c, i) of a run at a time. Lane e of
 * the segment is dx column c0 + e = c0 + 2u + j, so window columns of one parity land on one
 * parity of lanes, column j = 2p + (j % 2) p lanes further on than column j % 2. A row's even
 * columns are therefore summed into one half vector and its odd ones into another, column j
 * loaded p lanes early, and one interleaving permute merges them (a single permute a row: the
 * scatter is not bound by its permutes). Half vectors, as the interleave reads the low half of
 * each operand (and half loads straddle two cache lines less often than full ones).
 * Each lane adds its own parity's j in increasing order, as ecp_scatter_row.
 * mk[p]: lanes p .. p+len-1, len the run's pixels (made by each caller). */
#define ECP_DEFINE_SCATTER_S2(T, SUF, VL, MASK, HMASK, VT, HVT, HLOAD, HADD, HZERO, ZEXT, LOADZ,  \
                              PERM2, ADD, STOREM, ZERO, ILV)                                   \
__attribute__((target("avx512f,avx512vl"))) static inline VT                                   \
ecp_s2_row_##SUF(const T *restrict sr, ptrdiff_t NR, ptrdiff_t kw, const HMASK *mk)             \
{                                                                                              \
    HVT ev = HLOAD(mk[0], sr), od = kw > 1 ? HLOAD(mk[0], sr + NR) : HZERO();                  \
    for (ptrdiff_t p = 1; 2 * p < kw; p++) {                                                   \
        ev = HADD(ev, HLOAD(mk[p], sr + 2 * p * NR - p));                                      \
        if (2 * p + 1 < kw) od = HADD(od, HLOAD(mk[p], sr + (2 * p + 1) * NR - p));            \
    }                                                                                          \
    return PERM2(ZEXT(ev), ILV, ZEXT(od));                                                     \
}                                                                                              \
/* A run of len pixels of one output row, channels cb .. ce-1, added into dx (whose planes the \
 * caller zeroed). The rows go i-major, so that consecutive updates fall in different planes   \
 * (one plane's consecutive rows lie closer than a vector: each update would wait for the      \
 * previous one's store). */                                                                   \
__attribute__((target("avx512f,avx512vl"))) static inline void                                 \
ecp_scatter_run_s2_##SUF(T *restrict dxs, const T *restrict src, ptrdiff_t NR, ptrdiff_t cb,    \
                         ptrdiff_t ce, ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw,     \
                         ptrdiff_t rbase, ptrdiff_t c0, ptrdiff_t len)                          \
{                                                                                              \
    const ptrdiff_t HW = H * W, ilo = rbase < 0 ? -rbase : 0;                                  \
    const ptrdiff_t ihi = H - rbase < kh ? H - rbase : kh;                                     \
    const MASK out = (MASK)(ecp_lanes(-c0, W - c0, VL) & ecp_lanes(0, 2 * (len - 1) + kw, VL)); \
    HMASK mk[VL / 2];                                                                          \
    for (ptrdiff_t p = 0; 2 * p < kw; p++) mk[p] = (HMASK)ecp_lanes(p, p + len, VL / 2);       \
    for (ptrdiff_t i = ilo; i < ihi; i++)                                                      \
        for (ptrdiff_t c = cb; c < ce; c++) {                                                  \
            const VT v = ecp_s2_row_##SUF(src + (c * kh + i) * kw * NR, NR, kw, mk);            \
            T *d = dxs + c * HW + (rbase + i) * W + c0;                                        \
            STOREM(d, out, ADD(LOADZ(out, d), v));                                             \
        }                                                                                      \
}                                                                                              \
/* Whole planes: every output row of one sample (hq runs of wq pixels, at src), channels      \
 * cb .. ce-1, written into dx -- not added: the planes need no zeroing. Each dx row's sum is  \
 * gathered in a vector on the stack over the runs, in run order (the order, and so the bits,  \
 * of the run form after zeroing), then stored once, with zeros in the plane's columns and rows \
 * no window reaches. Against the run form: no pass zeroing dx, one store a dx row instead of a \
 * read-modify-write per run and window row, and no update reading a row that an update of      \
 * the previous run has only just written. na = 2*(hq-1) + kh <= ECP_S2_ROWS. */                \
__attribute__((target("avx512f,avx512vl"), always_inline)) static inline void                  \
ecp_planes_s2_##SUF(T *restrict dxs, const T *restrict src, ptrdiff_t NR, ptrdiff_t cb,          \
                    ptrdiff_t ce, ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw,          \
                    ptrdiff_t rbase, ptrdiff_t c0, ptrdiff_t hq, ptrdiff_t wq)                  \
{                                                                                              \
    const ptrdiff_t HW = H * W, na = 2 * (hq - 1) + kh;                                        \
    const MASK in = (MASK)ecp_lanes(-c0, W - c0, VL);       /* the lanes inside the plane */   \
    const MASK wall = (MASK)ecp_lanes(0, W, VL);            /* a whole row, when W <= VL */    \
    const ptrdiff_t lo = c0 > 0 ? (c0 < W ? c0 : W) : 0;    /* columns left of lane 0 */       \
    const ptrdiff_t hi = c0 + VL < W ? (c0 + VL > 0 ? c0 + VL : 0) : W; /* right of the last */ \
    HMASK mk[VL / 2];                                                                          \
    VT acc[ECP_S2_ROWS];                                                                       \
    for (ptrdiff_t p = 0; 2 * p < kw; p++) mk[p] = (HMASK)ecp_lanes(p, p + wq, VL / 2);        \
    for (ptrdiff_t c = cb; c < ce; c++) {                                                      \
        /* rows start from zero where first reached -- with r the outer loop, at (r, i) with   \
         * no (r - 1, i + 2) -- rather than zeroed beforehand (a loop the compiler turns into  \
         * a call to memset). (kh = 1 leaves odd rows unreached: zeroed.) */                   \
        if (kh < 2) for (ptrdiff_t a = 0; a < na; a++) acc[a] = ZERO();                        \
        for (ptrdiff_t r = 0; r < hq; r++)                                                     \
            for (ptrdiff_t i = 0; i < kh; i++) {                                               \
                const VT v = ecp_s2_row_##SUF(src + (c * kh + i) * kw * NR + r * wq, NR, kw, mk); \
                acc[2 * r + i] = ADD(r == 0 || i + 2 >= kh ? ZERO() : acc[2 * r + i], v);       \
            }                                                                                  \
        for (ptrdiff_t y = 0; y < H; y++) {                                                    \
            T *row = dxs + c * HW + y * W;                                                     \
            const ptrdiff_t a = y - rbase;                                                     \
            if (a < 0 || a >= na) {   /* (a vector store, not a call to memset; the paper's   \
                                         * conv2 has one such row a plane) */                  \
                if (W <= VL) STOREM(row, wall, ZERO());                                        \
                else memset(row, 0, (size_t)W * sizeof(T));                                    \
                continue;                                                                      \
            }                                                                                  \
            if (in) STOREM(row + c0, in, acc[a]);                                              \
            for (ptrdiff_t x = 0; x < lo; x++) row[x] = (T)0;                                  \
            for (ptrdiff_t x = hi; x < W; x++) row[x] = (T)0;                                  \
        }                                                                                      \
    }                                                                                          \
}                                                                                              \
/* ecp_planes_s2 with the window a constant for the usual 5 x 5 and 3 x 3 (its loops over the \
 * window unrolled, the column masks kept in mask registers; bench/bench_conv.py's easy conv2 \
 * backward) */                                                                               \
__attribute__((target("avx512f,avx512vl"))) static inline void                                 \
ecp_scatter_planes_s2_##SUF(T *restrict dxs, const T *restrict src, ptrdiff_t NR, ptrdiff_t cb, \
                            ptrdiff_t ce, ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw,  \
                            ptrdiff_t rbase, ptrdiff_t c0, ptrdiff_t hq, ptrdiff_t wq)          \
{                                                                                              \
    if (kh == 5 && kw == 5) ecp_planes_s2_##SUF(dxs, src, NR, cb, ce, H, W, 5, 5, rbase, c0, hq, wq); \
    else if (kh == 3 && kw == 3) ecp_planes_s2_##SUF(dxs, src, NR, cb, ce, H, W, 3, 3, rbase, c0, hq, wq); \
    else ecp_planes_s2_##SUF(dxs, src, NR, cb, ce, H, W, kh, kw, rbase, c0, hq, wq);            \
}
#define ECP_S2_ROWS 32
ECP_DEFINE_SCATTER_S2(float, f, 16, __mmask16, __mmask8, __m512, __m256, _mm256_maskz_loadu_ps,
                      _mm256_add_ps, _mm256_setzero_ps, _mm512_zextps256_ps512,
                      _mm512_maskz_loadu_ps, _mm512_permutex2var_ps, _mm512_add_ps,
                      _mm512_mask_storeu_ps, _mm512_setzero_ps,
                      _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0))
ECP_DEFINE_SCATTER_S2(double, d, 8, __mmask8, __mmask8, __m512d, __m256d, _mm256_maskz_loadu_pd,
                      _mm256_add_pd, _mm256_setzero_pd, _mm512_zextpd256_pd512,
                      _mm512_maskz_loadu_pd, _mm512_permutex2var_pd, _mm512_add_pd,
                      _mm512_mask_storeu_pd, _mm512_setzero_pd,
                      _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0))

/* The same, one element at a time: windows wider than a vector (kw > VL) */
#define ECP_DEFINE_SCATTER_SCALAR(T, SUF)                                                      \
static inline void ecp_scatter_row_scalar_##SUF(T *restrict dr, ptrdiff_t c0, ptrdiff_t W,       \
                                                const T *restrict src, ptrdiff_t NR,           \
                                                ptrdiff_t len, ptrdiff_t kw, ptrdiff_t s)      \
{                                                                                              \
    for (ptrdiff_t j = 0; j < kw; j++)                                                         \
        for (ptrdiff_t u = 0; u < len; u++) {                                                  \
            const ptrdiff_t col = c0 + s * u + j;                                              \
            if (col >= 0 && col < W) dr[col] += src[j * NR + u];                              \
        }                                                                                      \
}
ECP_DEFINE_SCATTER_SCALAR(float, f)
ECP_DEFINE_SCATTER_SCALAR(double, d)

/* d[u] = xr[c0 + s*u] for u < len, zeros where the column is outside 0 .. W-1: one panel row
 * of a run, element by element (windows wider than ecp_pack_run handles, kw > 16) */
#define ECP_DEFINE_COPY_RUN(T, SUF)                                                            \
static inline void ecp_copy_run_##SUF(T *restrict d, const T *restrict xr, ptrdiff_t c0,         \
                                      ptrdiff_t len, ptrdiff_t s, ptrdiff_t W)                 \
{                                                                                              \
    for (ptrdiff_t u = 0; u < len; u++) {                                                      \
        const ptrdiff_t col = c0 + s * u;                                                      \
        d[u] = (col >= 0 && col < W) ? xr[col] : (T)0;                                         \
    }                                                                                          \
}
ECP_DEFINE_COPY_RUN(float, f)
ECP_DEFINE_COPY_RUN(double, d)

/* One run of len same-row output pixels (len <= 2*VL) into a forward panel: for every window
 * element k = (c, i, j), panel[k*NR + u] = x[c][rbase + i][cbase + j + s*u] (zeros outside
 * the plane), u < len. The column masks (one per j and vector of u) and the rows inside the
 * plane depend only on the run, so they are computed once and every (c, i, j) row is one masked
 * load and one masked store (s = 2: plus a permute keeping the even lanes). kw <= 16 only. */
#define ECP_DEFINE_PACK_RUN(T, SUF, VL, MASK, VT, LOADZ, STOREM, PERM, PERM2, ZERO, EVEN)      \
__attribute__((target("avx512f,avx512vl"))) static inline void                                 \
ecp_pack_run_##SUF(T *restrict panel, ptrdiff_t NR, const T *restrict xs, ptrdiff_t C,           \
                   ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t rbase,        \
                   ptrdiff_t cbase, ptrdiff_t len, ptrdiff_t s)                                 \
{                                                                                              \
    const ptrdiff_t HW = H * W, ilo = rbase < 0 ? -rbase : 0;                                  \
    ptrdiff_t ihi = H - rbase < kh ? H - rbase : kh;                                           \
    if (ihi < ilo) ihi = ilo;                                                                  \
    const VT zero = ZERO();                                                                    \
    const __m512i even = EVEN;                                                                 \
    for (ptrdiff_t u0 = 0; u0 < len; u0 += VL) {                                               \
        const ptrdiff_t n = len - u0 < VL ? len - u0 : VL;                                     \
        const MASK st = (MASK)ecp_lanes(0, n, VL);                                             \
        const int two = s * (n - 1) + 1 > VL;    /* s = 2 reads past one vector */             \
        MASK lo[16], hi[16];                                                                   \
        ptrdiff_t a[16];                                                                       \
        for (ptrdiff_t j = 0; j < kw; j++) {                                                   \
            a[j] = cbase + j + s * u0;           /* input column of lane 0 */                  \
            const ptrdiff_t span = s * (n - 1) + 1;                                            \
            lo[j] = (MASK)(ecp_lanes(-a[j], W - a[j], VL) & ecp_lanes(0, span, VL));           \
            hi[j] = (MASK)(ecp_lanes(-a[j] - VL, W - a[j] - VL, VL) & ecp_lanes(0, span - VL, VL)); \
        }                                                                                      \
        for (ptrdiff_t c = 0; c < C; c++) {                                                    \
            const T *xc = xs + c * HW + rbase * W;                                             \
            for (ptrdiff_t i = 0; i < kh; i++) {                                               \
                T *d = panel + ((c * kh + i) * kw) * NR + u0;                                  \
                if (i < ilo || i >= ihi) {                                                     \
                    for (ptrdiff_t j = 0; j < kw; j++) STOREM(d + j * NR, st, zero);           \
                    continue;                                                                  \
                }                                                                              \
                const T *xr = xc + i * W;                                                      \
                for (ptrdiff_t j = 0; j < kw; j++) {                                           \
                    VT v = LOADZ(lo[j], xr + a[j]);                                            \
                    if (s == 2)                                                                \
                        v = two ? PERM2(v, even, LOADZ(hi[j], xr + a[j] + VL)) : PERM(even, v);  \
                    STOREM(d + j * NR, st, v);                                                 \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
}
ECP_DEFINE_PACK_RUN(float, f, 16, __mmask16, __m512, _mm512_maskz_loadu_ps, _mm512_mask_storeu_ps,
                    _mm512_permutexvar_ps, _mm512_permutex2var_ps, _mm512_setzero_ps,
                    _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0))
ECP_DEFINE_PACK_RUN(double, d, 8, __mmask8, __m512d, _mm512_maskz_loadu_pd, _mm512_mask_storeu_pd,
                    _mm512_permutexvar_pd, _mm512_permutex2var_pd, _mm512_setzero_pd,
                    _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0))

/* ecp_im2col_plane (ecp_im2col.h) for s = 2, the im2col + BLAS path of Easy Convolution: each
 * row segment of a tap (i, j) -- wq samples of one input row, every other column -- is a masked
 * load of up to two vectors, one permute keeping the even lanes and a masked store, where the
 * portable loop copies one value at a time. Same values: every element of the kh*kw rows of dst0
 * (row stride ld, hq*wq columns) is written, zeros outside the plane. */
#define ECP_DEFINE_IM2COL_S2(T, SUF, VL, MASK, VT, LOADZ, STOREM, PERM2, ZERO, EVEN)           \
__attribute__((target("avx512f,avx512vl"))) static void                                        \
ecp_im2col_plane_s2_##SUF(const T *restrict xp, ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh,          \
                          ptrdiff_t kw, ptrdiff_t ph, ptrdiff_t pw, ptrdiff_t oy,              \
                          ptrdiff_t ox, ptrdiff_t hq,                                          \
                          ptrdiff_t wq, T *restrict dst0, ptrdiff_t ld)                        \
{                                                                                              \
    const __m512i even = EVEN;                                                                 \
    const VT zero = ZERO();                                                                    \
    for (ptrdiff_t j = 0; j < kw; j++)                                                         \
        for (ptrdiff_t q0 = 0; q0 < wq; q0 += VL) {                                            \
            const ptrdiff_t n = wq - q0 < VL ? wq - q0 : VL;                                   \
            const ptrdiff_t a = ox + j - pw + 2 * q0;     /* input column of lane 0 */         \
            const MASK st = (MASK)ecp_lanes(0, n, VL);                                         \
            const MASK lo = (MASK)(ecp_lanes(-a, W - a, VL) & ecp_lanes(0, 2 * n - 1, VL));    \
            const MASK hi = (MASK)(ecp_lanes(-a - VL, W - a - VL, VL) & ecp_lanes(0, 2 * n - 1 - VL, VL)); \
            for (ptrdiff_t i = 0; i < kh; i++) {                                               \
                T *restrict d = dst0 + (i * kw + j) * ld + q0;                                 \
                for (ptrdiff_t r = 0; r < hq; r++) {                                           \
                    const ptrdiff_t row = oy + 2 * r + i - ph;                                 \
                    VT v = zero;                                                               \
                    if (row >= 0 && row < H) {                                                 \
                        const T *xr = xp + row * W + a;                                        \
                        v = PERM2(LOADZ(lo, xr), even, LOADZ(hi, xr + VL));                    \
                    }                                                                          \
                    STOREM(d + r * wq, st, v);                                                 \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
}
ECP_DEFINE_IM2COL_S2(float, f, 16, __mmask16, __m512, _mm512_maskz_loadu_ps, _mm512_mask_storeu_ps,
                     _mm512_permutex2var_ps, _mm512_setzero_ps,
                     _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0))
ECP_DEFINE_IM2COL_S2(double, d, 8, __mmask8, __m512d, _mm512_maskz_loadu_pd, _mm512_mask_storeu_pd,
                     _mm512_permutex2var_pd, _mm512_setzero_pd,
                     _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0))

/* r[i][j] <- r[j][i]: a 16 x 16 block of floats transposed in registers */
__attribute__((target("avx512f")))
static inline void ecp_transpose16_f(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++) {
            t[8 * i + j] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + 4 + j], 0x88);
            t[8 * i + 4 + j] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + 4 + j], 0xDD);
        }
    for (int j = 0; j < 8; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
        r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xDD);
    }
}

/* dst[j * ldd + i] = src[i * lds + j] for i < rows, j < cols: 16 x 16 blocks transposed in
 * registers (the backward's k-major dW slots into dW, whose scalar move wrote each value a row
 * of dW apart) */
__attribute__((target("avx512f")))
static void ecp_transpose_f(const float *restrict src, ptrdiff_t lds, ptrdiff_t rows,
                            ptrdiff_t cols, float *restrict dst, ptrdiff_t ldd)
{
    for (ptrdiff_t i0 = 0; i0 < rows; i0 += 16)
        for (ptrdiff_t j0 = 0; j0 < cols; j0 += 16) {
            const __mmask16 jm = (__mmask16)ecp_lanes(0, cols - j0, 16);
            const __mmask16 im = (__mmask16)ecp_lanes(0, rows - i0, 16);
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = i0 + i < rows ? _mm512_maskz_loadu_ps(jm, src + (i0 + i) * lds + j0)
                                     : _mm512_setzero_ps();
            ecp_transpose16_f(r);
            for (int j = 0; j < 16 && j0 + j < cols; j++)
                _mm512_mask_storeu_ps(dst + (j0 + j) * ldd + i0, im, r[j]);
        }
}

/* ecp_pack_weights_v for float, nr a multiple of 16: each block of 16 filters transposed by
 * ecp_transpose_f (rather than a scalar copy, whose writes lie a row of nr apart: every thread
 * packs its own copy in every call) */
__attribute__((target("avx512f")))
static void ecp_pack_weights_v_f(const float *restrict w, ptrdiff_t O, ptrdiff_t K, ptrdiff_t nr,
                                 float *restrict wv)
{
    const ptrdiff_t nov = (O + nr - 1) / nr;
    for (ptrdiff_t ob = 0; ob < nov; ob++)
        for (ptrdiff_t l0 = 0; l0 < nr; l0 += 16) {
            const ptrdiff_t o0 = ob * nr + l0, on = O - o0 < 16 ? O - o0 : 16;
            float *d = wv + ob * K * nr + l0;
            if (on < 16)   /* lanes of filters past O: zeros */
                for (ptrdiff_t k = 0; k < K; k++) memset(d + k * nr, 0, 16 * sizeof(float));
            if (on > 0) ecp_transpose_f(w + o0 * K, K, on, K, d, nr);
        }
}

/* The sum, in double, of count planes of n values, stride apart (a bias gradient: a filter's
 * planes of dY over the batch): eight values converted per step into four accumulators kept over
 * all the planes, reduced once; both backward paths (direct, im2col + BLAS) take it on AVX-512.
 * The portable loop in _reductions.pxi (other CPUs) adds the values one at a time in eight chains
 * per plane, planes in sample order -- another order, so in float64 other last bits. One call
 * sweeps the whole batch, rather than one call per plane with its own horizontal sum, which
 * costs more than the sums for small planes (the paper's easy conv2: 1,600 planes of 16). */
#define ECP_DEFINE_SUM_PLANES(T, SUF, LOAD8, LOADM8)                                            \
__attribute__((target("avx512f,avx512vl")))                                                    \
static double ecp_sum_planes_##SUF(const T *src, ptrdiff_t n, ptrdiff_t count, ptrdiff_t stride) \
{                                                                                              \
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();                                \
    __m512d a2 = _mm512_setzero_pd(), a3 = _mm512_setzero_pd();                                \
    const __mmask8 tail = (__mmask8)((1u << (n % 8)) - 1);                                      \
    for (ptrdiff_t c = 0; c < count; c++) {                                                    \
        const T *p = src + c * stride;                                                         \
        ptrdiff_t i = 0;                                                                       \
        for (; i + 32 <= n; i += 32) {                                                         \
            a0 = _mm512_add_pd(a0, LOAD8(p + i));                                              \
            a1 = _mm512_add_pd(a1, LOAD8(p + i + 8));                                          \
            a2 = _mm512_add_pd(a2, LOAD8(p + i + 16));                                         \
            a3 = _mm512_add_pd(a3, LOAD8(p + i + 24));                                         \
        }                                                                                      \
        for (; i + 8 <= n; i += 8) a0 = _mm512_add_pd(a0, LOAD8(p + i));                       \
        if (i < n) a1 = _mm512_add_pd(a1, LOADM8(tail, p + i));                                \
    }                                                                                          \
    return _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a0, a1), _mm512_add_pd(a2, a3)));  \
}
#define ECP_LOAD8_F(p) _mm512_cvtps_pd(_mm256_loadu_ps(p))
#define ECP_LOADM8_F(m, p) _mm512_cvtps_pd(_mm256_maskz_loadu_ps((m), (p)))
ECP_DEFINE_SUM_PLANES(float, f, ECP_LOAD8_F, ECP_LOADM8_F)
ECP_DEFINE_SUM_PLANES(double, d, _mm512_loadu_pd, _mm512_maskz_loadu_pd)

/* The pieces of every 8 x 2-vector register tile: its 16 accumulators c0..c7, d0..d7 (zeros, or
 * C's rows ldc apart when acc), one step of products (row m += x_m * (b0, b1)), and the store */
#define ECP_TILE_ACC(V, VU, VL, c, ldc, acc)                                                   \
    V c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0}, c4 = {0}, c5 = {0}, c6 = {0}, c7 = {0};           \
    V d0 = {0}, d1 = {0}, d2 = {0}, d3 = {0}, d4 = {0}, d5 = {0}, d6 = {0}, d7 = {0};           \
    if (acc) {                                                                                 \
        c0 = *(const VU *)(c); d0 = *(const VU *)(c + VL);                                     \
        c1 = *(const VU *)(c + ldc); d1 = *(const VU *)(c + ldc + VL);                         \
        c2 = *(const VU *)(c + 2 * ldc); d2 = *(const VU *)(c + 2 * ldc + VL);                 \
        c3 = *(const VU *)(c + 3 * ldc); d3 = *(const VU *)(c + 3 * ldc + VL);                 \
        c4 = *(const VU *)(c + 4 * ldc); d4 = *(const VU *)(c + 4 * ldc + VL);                 \
        c5 = *(const VU *)(c + 5 * ldc); d5 = *(const VU *)(c + 5 * ldc + VL);                 \
        c6 = *(const VU *)(c + 6 * ldc); d6 = *(const VU *)(c + 6 * ldc + VL);                 \
        c7 = *(const VU *)(c + 7 * ldc); d7 = *(const VU *)(c + 7 * ldc + VL);                 \
    }
#define ECP_TILE_FMA(b0, b1, x0, x1, x2, x3, x4, x5, x6, x7)                                   \
    c0 += (x0) * b0; d0 += (x0) * b1; c1 += (x1) * b0; d1 += (x1) * b1;                        \
    c2 += (x2) * b0; d2 += (x2) * b1; c3 += (x3) * b0; d3 += (x3) * b1;                        \
    c4 += (x4) * b0; d4 += (x4) * b1; c5 += (x5) * b0; d5 += (x5) * b1;                        \
    c6 += (x6) * b0; d6 += (x6) * b1; c7 += (x7) * b0; d7 += (x7) * b1;
#define ECP_TILE_STORE(V, VU, c, ldc)                                                          \
    {                                                                                          \
        const V cs[8] = {c0, c1, c2, c3, c4, c5, c6, c7}, ds[8] = {d0, d1, d2, d3, d4, d5, d6, d7}; \
        for (int m = 0; m < ECP_MR; m++) {                                                     \
            VU *cm = (VU *)(c + ldc * m);                                                      \
            cm[0] = cs[m];                                                                     \
            cm[1] = ds[m];                                                                     \
        }                                                                                      \
    }

/* T: element type, V/VU: 64-byte vector (aligned / unaligned), VL: lanes, NR = 2*VL columns */
#define ECP_DEFINE_DIRECT(T, SUF, V, VU, VL)                                                   \
/* C[m][0:NR] = (C[m][0:NR] when acc, else 0) + sum_l A(l, m) * b[l][0:NR], m < 8, summed in  \
 * order of l on top of C: the 8 x NR register tile. A(l, m) = a[l*sl + m*sm] (packed: sl 8,  \
 * sm 1; rows of a matrix: sl 1, sm its stride), b: rows of NR values ldb apart, C: rows ldc  \
 * apart. A sum split over consecutive calls (acc) is the same chain as one call. */         \
__attribute__((target("avx512f,avx512vl,fma")))                                                         \
static inline void ecp_tile_##SUF(ptrdiff_t L, const T *restrict a, ptrdiff_t sl, ptrdiff_t sm, \
                                  const T *restrict bp, ptrdiff_t ldb, T *restrict c,          \
                                  ptrdiff_t ldc, int acc)                                      \
{                                                                                              \
    ECP_TILE_ACC(V, VU, VL, c, ldc, acc)                                                       \
    const T *a0 = a, *a1 = a + sm, *a2 = a + 2 * sm, *a3 = a + 3 * sm, *a4 = a + 4 * sm;       \
    const T *a5 = a + 5 * sm, *a6 = a + 6 * sm, *a7 = a + 7 * sm;                              \
    for (ptrdiff_t l = 0; l < L; l++) {                                                        \
        const V b0 = *(const VU *)(bp + ldb * l);                                              \
        const V b1 = *(const VU *)(bp + ldb * l + VL);                                         \
        const ptrdiff_t e = sl * l;                                                            \
        ECP_TILE_FMA(b0, b1, a0[e], a1[e], a2[e], a3[e], a4[e], a5[e], a6[e], a7[e])           \
    }                                                                                          \
    ECP_TILE_STORE(V, VU, c, ldc)                                                              \
}                                                                                              \
                                                                                               \
/* ecp_tile for panels at most half full (jn <= VL: a batch's odd sample alone in its panel, or \
 * any short last panel), one vector of columns: C[m][0:VL] = sum_l A(l, m) * b[l][0:VL], each  \
 * output the same chain of products as in ecp_tile (so the same bits) at half its cost; C's    \
 * other VL columns are not written (no reader of the panel looks past its jn columns). */     \
__attribute__((target("avx512f,avx512vl,fma")))                                                \
static inline void ecp_tile_h_##SUF(ptrdiff_t L, const T *restrict a, ptrdiff_t sl,            \
                                    ptrdiff_t sm, const T *restrict bp, ptrdiff_t ldb,         \
                                    T *restrict c, ptrdiff_t ldc)                              \
{                                                                                              \
    V c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0}, c4 = {0}, c5 = {0}, c6 = {0}, c7 = {0};           \
    const T *a0 = a, *a1 = a + sm, *a2 = a + 2 * sm, *a3 = a + 3 * sm, *a4 = a + 4 * sm;       \
    const T *a5 = a + 5 * sm, *a6 = a + 6 * sm, *a7 = a + 7 * sm;                              \
    for (ptrdiff_t l = 0; l < L; l++) {                                                        \
        const V b0 = *(const VU *)(bp + ldb * l);                                              \
        const ptrdiff_t e = sl * l;                                                            \
        c0 += a0[e] * b0; c1 += a1[e] * b0; c2 += a2[e] * b0; c3 += a3[e] * b0;                \
        c4 += a4[e] * b0; c5 += a5[e] * b0; c6 += a6[e] * b0; c7 += a7[e] * b0;                \
    }                                                                                          \
    *(VU *)c = c0; *(VU *)(c + ldc) = c1; *(VU *)(c + 2 * ldc) = c2;                           \
    *(VU *)(c + 3 * ldc) = c3; *(VU *)(c + 4 * ldc) = c4; *(VU *)(c + 5 * ldc) = c5;           \
    *(VU *)(c + 6 * ldc) = c6; *(VU *)(c + 7 * ldc) = c7;                                      \
}                                                                                              \
                                                                                               \
/* ecp_tile with A read from the input itself: A(l, m) = px[m][koff[l]], 8 pixels' window     \
 * corners px[m] and koff[l] the offset of window element l (c*H*W + i*W + j) -- the windows    \
 * of pixels whose windows lie inside the plane, with no packing. Same chain over l.         \
 * (Its own loop, not ecp_tile's: the table lookup would cost the packed tiles a load per l.) */ \
__attribute__((target("avx512f,avx512vl,fma")))                                                \
static inline void ecp_tile_x_##SUF(ptrdiff_t L, const T *const *px, const int *restrict koff,  \
                                    const T *restrict bp, ptrdiff_t ldb, T *restrict c,        \
                                    ptrdiff_t ldc, int acc)                                    \
{                                                                                              \
    ECP_TILE_ACC(V, VU, VL, c, ldc, acc)                                                       \
    const T *a0 = px[0], *a1 = px[1], *a2 = px[2], *a3 = px[3];                                \
    const T *a4 = px[4], *a5 = px[5], *a6 = px[6], *a7 = px[7];                                \
    for (ptrdiff_t l = 0; l < L; l++) {                                                        \
        const V b0 = *(const VU *)(bp + ldb * l);                                              \
        const V b1 = *(const VU *)(bp + ldb * l + VL);                                         \
        const ptrdiff_t e = koff[l];                                                           \
        ECP_TILE_FMA(b0, b1, a0[e], a1[e], a2[e], a3[e], a4[e], a5[e], a6[e], a7[e])           \
    }                                                                                          \
    ECP_TILE_STORE(V, VU, c, ldc)                                                              \
}                                                                                              \
                                                                                               \
/* The dW tile with the windows read in place: C[m][0:NR] = (C[m][0:NR] when acc, else 0) +  \
 * sum_l pix[l][off[m]] * b[l][0:NR], for 8 window elements m (offsets off[m] from a window's  \
 * corner) and the pixels l (window corners pix[l]); b: dY, one row of filters per pixel. Each \
 * product and the chain over l are those of ecp_tile on packed windows (x * dy == dy * x), so \
 * dW is bitwise the same. */                                                                 \
__attribute__((target("avx512f,avx512vl,fma")))                                                \
static inline void ecp_tile_xt_##SUF(ptrdiff_t L, const T *const *pix, const int *off,          \
                                     const T *restrict bp, ptrdiff_t ldb, T *restrict c,       \
                                     ptrdiff_t ldc, int acc)                                   \
{                                                                                              \
    ECP_TILE_ACC(V, VU, VL, c, ldc, acc)                                                       \
    const ptrdiff_t o0 = off[0], o1 = off[1], o2 = off[2], o3 = off[3];                        \
    const ptrdiff_t o4 = off[4], o5 = off[5], o6 = off[6], o7 = off[7];                        \
    for (ptrdiff_t l = 0; l < L; l++) {                                                        \
        const V b0 = *(const VU *)(bp + ldb * l);                                              \
        const V b1 = *(const VU *)(bp + ldb * l + VL);                                         \
        const T *p = pix[l];                                                                   \
        ECP_TILE_FMA(b0, b1, p[o0], p[o1], p[o2], p[o3], p[o4], p[o5], p[o6], p[o7])           \
    }                                                                                          \
    ECP_TILE_STORE(V, VU, c, ldc)                                                              \
}                                                                                              \
                                                                                               \
/* Output rows r0 .. r0+nr-1 of samples n0 .. n0+nb-1 of y (N, O, hq, wq), bias added.       \
 * panel: K * 2*VL scratch, tile: nob * 8 * 2*VL scratch (both per thread). */                 \
__attribute__((target("avx512f,avx512vl,fma")))                                                         \
static void ecp_direct_item_##SUF(const T *restrict x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,  \
                                  const T *restrict wp, ptrdiff_t O, ptrdiff_t kh,             \
                                  ptrdiff_t kw, const T *restrict bias, T *restrict y,         \
                                  ptrdiff_t hq, ptrdiff_t wq, ptrdiff_t n0, ptrdiff_t nb,      \
                                  ptrdiff_t r0, ptrdiff_t nr, ptrdiff_t ph, ptrdiff_t pw,      \
                                  ptrdiff_t s,                                                 \
                                  ptrdiff_t oy, ptrdiff_t ox, T *restrict panel,               \
                                  T *restrict tile)                                            \
{                                                                                              \
    const ptrdiff_t NR = 2 * VL, K = C * kh * kw, P = nr * wq, ncols = nb * P;                 \
    const ptrdiff_t plane = hq * wq, nob = (O + ECP_MR - 1) / ECP_MR;                          \
    const ptrdiff_t KC = 24576 / (NR * (ptrdiff_t)sizeof(T));                                  \
    ptrdiff_t yoff[2 * VL];                                                                    \
    for (ptrdiff_t j0 = 0; j0 < ncols; j0 += NR) {                                             \
        const ptrdiff_t jn = ncols - j0 < NR ? ncols - j0 : NR;                                \
        /* pack the windows of columns j0 .. j0+jn-1, one run of same-row pixels at a time */  \
        for (ptrdiff_t t = 0; t < jn;) {                                                       \
            const ptrdiff_t g = j0 + t, b = g / P, p = g % P, rr = p / wq, qq = p % wq;         \
            const ptrdiff_t len = wq - qq < jn - t ? wq - qq : jn - t;                         \
            const ptrdiff_t rbase = oy + s * (r0 + rr) - ph, cbase = ox + s * qq - pw;         \
            for (ptrdiff_t u = 0; u < len; u++) yoff[t + u] = (n0 + b) * O * plane + r0 * wq + p + u; \
            if (kw <= 16) {                                                                    \
                ecp_pack_run_##SUF(panel + t, NR, x + (n0 + b) * C * H * W, C, H, W, kh, kw,    \
                                   rbase, cbase, len, s);                                      \
            } else {                                                                           \
                const T *xs = x + (n0 + b) * C * H * W;                                        \
                for (ptrdiff_t c = 0; c < C; c++) {                                            \
                    for (ptrdiff_t i = 0; i < kh; i++) {                                       \
                        const ptrdiff_t row = rbase + i;                                       \
                        T *restrict dk = panel + ((c * kh + i) * kw) * NR + t;                 \
                        if (row < 0 || row >= H) {                                             \
                            for (ptrdiff_t j = 0; j < kw; j++)                                 \
                                memset(dk + j * NR, 0, (size_t)len * sizeof(T));               \
                            continue;                                                          \
                        }                                                                      \
                        const T *xr = xs + (c * H + row) * W;                                  \
                        for (ptrdiff_t j = 0; j < kw; j++)                                     \
                            ecp_copy_run_##SUF(dk + j * NR, xr, cbase + j, len, s, W);         \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
            t += len;                                                                          \
        }                                                                                      \
        if (jn < NR) {                                                                         \
            for (ptrdiff_t k = 0; k < K; k++)                                                  \
                memset(panel + k * NR + jn, 0, (size_t)(NR - jn) * sizeof(T));                 \
        }                                                                                      \
        /* every filter block's tile over a block of KC panel rows (24 KB: they stay in L1 for \
         * all the filter blocks; a whole panel, K x NR, is larger than L1 from K = 384), then \
         * the next rows on top: per output, still one chain over k */                         \
        for (ptrdiff_t k0 = 0; k0 < K; k0 += KC) {                                             \
            const ptrdiff_t kc = K - k0 < KC ? K - k0 : KC;                                    \
            for (ptrdiff_t ob = 0; ob < nob; ob++)                                             \
                ecp_tile_##SUF(kc, wp + (ob * K + k0) * ECP_MR, 8, 1, panel + k0 * NR, NR,     \
                               tile + ob * ECP_MR * NR, NR, k0 > 0);                           \
        }                                                                                      \
        /* the panel's outputs are one run of y when they lie in one sample */                 \
        const int contiguous = yoff[jn - 1] - yoff[0] == jn - 1;                               \
        for (ptrdiff_t ob = 0; ob < nob; ob++) {                                               \
            const ptrdiff_t mn = O - ob * ECP_MR < ECP_MR ? O - ob * ECP_MR : ECP_MR;          \
            for (ptrdiff_t m = 0; m < mn; m++) {                                               \
                const ptrdiff_t o = ob * ECP_MR + m;                                           \
                const T bo = bias[o];                                                          \
                T *yo = y + o * plane;                                                         \
                const T *tr = tile + (ob * ECP_MR + m) * NR;                                   \
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

/* The forward pass for short output rows ("pixel rows"): the 8 x NR register tile holds
 * 8 pixels x NR filters: A = the pixels' windows (broadcast), B = Wv. A group of 8 pixels whose
 * windows lie inside the plane is read in place (ecp_tile_x, through koff, the offsets of the
 * window elements: no copy at all);
 * the others are packed one pixel per row (ecp_pack_window: a masked copy per window row,
 * cheaper than ecp_pack_run's per-(c, i, j) copies when a run holds few pixels). Same outputs,
 * same summation order per output as ecp_direct_item. Pixels go in blocks of ECP_ROWS_GROUPS
 * groups of 8, so that each block of Wv rows serves several tiles from L1. rpanel: 32*K + VL
 * scratch, tile: ceil(O/NR) * 32 * NR, koff: ecp_window_offsets (K entries), or NULL to pack
 * every group (a sample's planes larger than an int can index). */
#define ECP_ROWS_GROUPS 4
#define ECP_DEFINE_DIRECT_ROWS(T, SUF, VL)                                                     \
__attribute__((target("avx512f,avx512vl,fma")))                                                \
static void ecp_direct_rows_item_##SUF(const T *restrict x, ptrdiff_t C, ptrdiff_t H,           \
                                       ptrdiff_t W, const T *restrict wv, ptrdiff_t O,          \
                                       ptrdiff_t kh, ptrdiff_t kw, const T *restrict bias,      \
                                       T *restrict y, ptrdiff_t hq, ptrdiff_t wq, ptrdiff_t n0, \
                                       ptrdiff_t nb, ptrdiff_t r0, ptrdiff_t nr,               \
                                       ptrdiff_t ph, ptrdiff_t pw,                             \
                                       ptrdiff_t s, ptrdiff_t oy, ptrdiff_t ox,                 \
                                       T *restrict rpanel, T *restrict tile,                    \
                                       const int *restrict koff)                                \
{                                                                                              \
    const ptrdiff_t NR = 2 * VL, K = C * kh * kw, P = nr * wq, ncols = nb * P;                 \
    const ptrdiff_t plane = hq * wq, nov = (O + NR - 1) / NR, G = ECP_ROWS_GROUPS;             \
    const ptrdiff_t KC = 24576 / (NR * (ptrdiff_t)sizeof(T));                                  \
    ptrdiff_t yoff[ECP_ROWS_GROUPS * ECP_MR];                                                  \
    const T *px[ECP_ROWS_GROUPS][ECP_MR];  /* window corners of the groups read in place */    \
    int inplace[ECP_ROWS_GROUPS];                                                              \
    for (ptrdiff_t j0 = 0; j0 < ncols; j0 += G * ECP_MR) {                                     \
        const ptrdiff_t jn = ncols - j0 < G * ECP_MR ? ncols - j0 : G * ECP_MR;                \
        const ptrdiff_t ng = (jn + ECP_MR - 1) / ECP_MR;                                       \
        /* a group of 8 pixels whose windows all lie inside the plane is read in place (the    \
         * tile gathers its broadcasts from x through koff); the others are packed, one pixel  \
         * per row of rpanel (zeros outside the plane) */                                      \
        for (ptrdiff_t gi = 0; gi < ng; gi++) {                                                \
            inplace[gi] = koff != NULL;                                                        \
            for (ptrdiff_t t = gi * ECP_MR; t < (gi + 1) * ECP_MR; t++) {                      \
                if (t >= jn) { px[gi][t - gi * ECP_MR] = px[gi][0]; continue; }  /* unused */  \
                const ptrdiff_t g = j0 + t, b = g / P, p = g % P, rr = p / wq, qq = p % wq;     \
                const ptrdiff_t rbase = oy + s * (r0 + rr) - ph, cbase = ox + s * qq - pw;     \
                yoff[t] = (n0 + b) * O * plane + r0 * wq + p;                                  \
                if (rbase < 0 || rbase + kh > H || cbase < 0 || cbase + kw > W) {              \
                    inplace[gi] = 0;   /* (no corner pointer outside the array: x stands in) */ \
                    px[gi][t - gi * ECP_MR] = x;                                               \
                } else {                                                                       \
                    px[gi][t - gi * ECP_MR] = x + (n0 + b) * C * H * W + rbase * W + cbase;    \
                }                                                                              \
            }                                                                                  \
            if (inplace[gi]) continue;                                                         \
            for (ptrdiff_t t = gi * ECP_MR; t < (gi + 1) * ECP_MR; t++) {                      \
                if (t >= jn) {   /* unused rows of a partial group */                          \
                    memset(rpanel + t * K, 0, (size_t)K * sizeof(T));                          \
                    continue;                                                                  \
                }                                                                              \
                const ptrdiff_t g = j0 + t, b = g / P, p = g % P, rr = p / wq, qq = p % wq;     \
                ecp_pack_window_##SUF(rpanel + t * K, x + (n0 + b) * C * H * W, C, H, W, kh, kw, \
                                      oy + s * (r0 + rr) - ph, ox + s * qq - pw);              \
            }                                                                                  \
        }                                                                                      \
        /* a block of KC rows of Wv (24 KB, kept in L1) against every group of 8 pixels,      \
         * then the next block on top: per output, still one chain over k */                   \
        for (ptrdiff_t k0 = 0; k0 < K; k0 += KC) {                                             \
            const ptrdiff_t kc = K - k0 < KC ? K - k0 : KC;                                    \
            for (ptrdiff_t ob = 0; ob < nov; ob++)                                             \
                for (ptrdiff_t gi = 0; gi < ng; gi++) {                                        \
                    T *tg = tile + (ob * G + gi) * ECP_MR * NR;                                \
                    if (inplace[gi])                                                           \
                        ecp_tile_x_##SUF(kc, px[gi], koff + k0, wv + (ob * K + k0) * NR, NR,    \
                                         tg, NR, k0 > 0);                                      \
                    else                                                                       \
                        ecp_tile_##SUF(kc, rpanel + gi * ECP_MR * K + k0, 1, K,                \
                                       wv + (ob * K + k0) * NR, NR, tg, NR, k0 > 0);           \
                }                                                                              \
        }                                                                                      \
        for (ptrdiff_t ob = 0; ob < nov; ob++) {                                               \
            const ptrdiff_t on = O - ob * NR < NR ? O - ob * NR : NR;                          \
            for (ptrdiff_t t = 0; t < jn; t++) {                                               \
                T *yo = y + yoff[t] + ob * NR * plane;                                         \
                const T *tr = tile + (ob * G * ECP_MR + t) * NR;                               \
                const T *bo = bias + ob * NR;                                                  \
                for (ptrdiff_t o = 0; o < on; o++) yo[o * plane] = tr[o] + bo[o];              \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
}
ECP_DEFINE_DIRECT_ROWS(float, f, 16)
ECP_DEFINE_DIRECT_ROWS(double, d, 8)

/* Backward of ecp_direct_item for samples n0 .. n0+nb-1, in panels of NR output pixels
 * (koff != NULL, only when every window lies inside the plane: dW is summed from x in place by
 * ecp_tile_xt into dwacc laid out k-major -- nkb*8 rows of Ob = ceil(O/NR)*NR, koff:
 * ecp_window_offsets with nkb*8 entries
 * -- and rpanel holds dY as rows of filters, NR x Ob; the same sums, without packing windows;
 * else as follows):
 *   dwacc (8*nob rows, Kp apart; NULL: no dW) += dY_panel . windows_panel^T   (windows packed one pixel
 *       per row, "im2row", so that the reduction over pixels is the tile's l loop);
 *   when dx: dcols_panel = W^T dY_panel (8 x NR tiles into xpanel), added at once into dx
 *       (the samples' planes are zeroed first; with stride 2, short rows and panels of whole
 *       samples, each panel writes its samples' planes whole instead), with no K x n dcols
 *       buffer and no col2im pass.
 * Scratch per thread: rpanel NR*max(Kp, Ob) + VL (slack for the last window row's full-vector store),
 * dpanel nob*8*NR (rows O .. nob*8-1 zeroed by the caller, never written), xpanel nkb*8*NR.
 * fresh: dwacc holds no sums yet -- the first panel's dW tiles overwrite it (every tile of it is
 * written by each panel), so the caller need not zero it; the same bits as adding to zeros.
 * Summation order is fixed by the shapes alone. */
#define ECP_DEFINE_DIRECT_BWD(T, SUF, VL)                                                      \
__attribute__((target("avx512f,avx512vl,fma")))                                                         \
static void ecp_direct_backward_item_##SUF(                                                    \
    const T *restrict x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, const T *restrict dy,          \
    ptrdiff_t O, ptrdiff_t hq, ptrdiff_t wq, const T *restrict wt, ptrdiff_t kh, ptrdiff_t kw, \
    ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t ph, ptrdiff_t pw, ptrdiff_t s, ptrdiff_t oy,         \
    ptrdiff_t ox,                                                                              \
    T *restrict dwacc, T *restrict dx, T *restrict rpanel, T *restrict dpanel,                 \
    T *restrict xpanel, const int *restrict koff, int fresh)                                   \
{                                                                                              \
    const ptrdiff_t NR = 2 * VL, K = C * kh * kw, Kp = (K + NR - 1) / NR * NR;                 \
    const ptrdiff_t P = hq * wq, ncols = nb * P, HW = H * W;                                   \
    const ptrdiff_t nob = (O + ECP_MR - 1) / ECP_MR, nkb = (K + ECP_MR - 1) / ECP_MR;          \
    const ptrdiff_t Ob = (O + NR - 1) / NR * NR;                                               \
    const ptrdiff_t CC0 = 16384 / (kh * kw * NR * (ptrdiff_t)sizeof(T)), CC = CC0 > 0 ? CC0 : 1; \
    const T *pix[2 * VL];                                                                      \
    ecp_scatter_plan plan;                                                                     \
    /* stride 2, rows that fit a vector, panels of whole samples: each panel writes its        \
     * samples' dx planes whole (ecp_scatter_planes_s2); else dx is zeroed and added into */   \
    const int planes = dx && s == 2 && 2 * wq + kw <= VL + 1 && NR % P == 0                    \
                       && 2 * (hq - 1) + kh <= ECP_S2_ROWS;                                    \
    if (dx && !planes) memset(dx + n0 * C * HW, 0, (size_t)(nb * C * HW) * sizeof(T));         \
    for (ptrdiff_t j0 = 0; j0 < ncols; j0 += NR) {                                             \
        const ptrdiff_t jn = ncols - j0 < NR ? ncols - j0 : NR;                                \
        const int acc = !(fresh && j0 == 0);   /* fresh dwacc: the first panel's tiles store */ \
        /* dY of the panel's pixels: dpanel[o][t] (zeros past jn) */                            \
        for (ptrdiff_t t = 0; t < jn;) {                                                       \
            const ptrdiff_t g = j0 + t, b = g / P, p = g % P;                                  \
            const ptrdiff_t len = P - p < jn - t ? P - p : jn - t;                             \
            const T *dys = dy + (n0 + b) * O * P + p;                                          \
            for (ptrdiff_t o = 0; o < O; o++)                                                  \
                memcpy(dpanel + o * NR + t, dys + o * P, (size_t)len * sizeof(T));             \
            t += len;                                                                          \
        }                                                                                      \
        if (jn < NR)                                                                           \
            for (ptrdiff_t o = 0; o < O; o++)                                                  \
                memset(dpanel + o * NR + jn, 0, (size_t)(NR - jn) * sizeof(T));                \
        if (dwacc && koff) {                                                                   \
            /* every window inside the plane: dW (k-major, rows Ob apart) from x in place,     \
             * against dY as rows of filters (rpanel[t][o], zeros past O) */                   \
            for (ptrdiff_t t = 0; t < jn; t++) {                                               \
                const ptrdiff_t g = j0 + t, b = g / P, p = g % P, rr = p / wq, qq = p % wq;     \
                pix[t] = x + (n0 + b) * C * HW + (oy + s * rr - ph) * W + ox + s * qq - pw;    \
                const T *dys = dy + (n0 + b) * O * P + p;                                      \
                for (ptrdiff_t o = 0; o < O; o++) rpanel[t * Ob + o] = dys[o * P];             \
                for (ptrdiff_t o = O; o < Ob; o++) rpanel[t * Ob + o] = (T)0;                  \
            }                                                                                  \
            for (ptrdiff_t kb = 0; kb < nkb; kb++)                                             \
                for (ptrdiff_t ob = 0; ob < Ob; ob += NR)                                      \
                    ecp_tile_xt_##SUF(jn, pix, koff + kb * ECP_MR, rpanel + ob, Ob,            \
                                      dwacc + kb * ECP_MR * Ob + ob, Ob, acc);                 \
        }                                                                                      \
        /* the windows, one pixel per row of rpanel (only dW needs them) */                    \
        for (ptrdiff_t t = 0; dwacc && !koff && t < jn; t++) {                                 \
            const ptrdiff_t g = j0 + t, b = g / P, p = g % P, rr = p / wq, qq = p % wq;         \
            const T *xs = x + (n0 + b) * C * HW;                                               \
            const ptrdiff_t rbase = oy + s * rr - ph, cbase = ox + s * qq - pw;                \
            T *restrict rt = rpanel + t * Kp;                                                  \
            ecp_pack_window_##SUF(rt, xs, C, H, W, kh, kw, rbase, cbase);                      \
            if (K < Kp) memset(rt + K, 0, (size_t)(Kp - K) * sizeof(T));                       \
        }                                                                                      \
        for (ptrdiff_t ob = 0; dwacc && !koff && ob < nob; ob++)                               \
            for (ptrdiff_t kb = 0; kb < Kp; kb += NR)                                          \
                ecp_tile_##SUF(jn, dpanel + ob * ECP_MR * NR, 1, NR, rpanel + kb, Kp,          \
                               dwacc + ob * ECP_MR * Kp + kb, Kp, acc);                        \
        if (!dx) continue;                                                                     \
        /* dcols = W^T dY a block of channels at a time, each block added into dx while its    \
         * rows are still in L1 (CC channels: about 16 KB of the panel) */                     \
        for (ptrdiff_t cb = 0, kbd = 0; cb < C; cb += CC) {                                    \
            const ptrdiff_t ce = C - cb < CC ? C : cb + CC;                                    \
            const ptrdiff_t kbe = (ce * kh * kw + ECP_MR - 1) / ECP_MR;                        \
            for (; kbd < kbe; kbd++) {   /* (a half-full panel: its half only) */              \
                if (jn <= VL)                                                                  \
                    ecp_tile_h_##SUF(O, wt + kbd * O * ECP_MR, 8, 1, dpanel, NR,               \
                                     xpanel + kbd * ECP_MR * NR, NR);                          \
                else                                                                           \
                    ecp_tile_##SUF(O, wt + kbd * O * ECP_MR, 8, 1, dpanel, NR,                 \
                                   xpanel + kbd * ECP_MR * NR, NR, 0);                         \
            }                                                                                  \
            if (planes) {   /* the block's planes of the panel's samples, written whole */     \
                for (ptrdiff_t t = 0; t < jn; t += P)                                          \
                    ecp_scatter_planes_s2_##SUF(dx + (n0 + (j0 + t) / P) * C * HW, xpanel + t,   \
                                                NR, cb, ce, H, W, kh, kw, oy - ph, ox - pw,    \
                                                hq, wq);                                       \
                continue;                                                                      \
            }                                                                                  \
            /* add the block's dcols into dx, one run of same-row pixels at a time */          \
            for (ptrdiff_t t = 0; t < jn;) {                                                   \
                const ptrdiff_t g = j0 + t, b = g / P, p = g % P, rr = p / wq, qq = p % wq;     \
                const ptrdiff_t len = wq - qq < jn - t ? wq - qq : jn - t;                     \
                T *dxs = dx + (n0 + b) * C * HW;                                               \
                const ptrdiff_t rbase = oy + s * rr - ph, cbase = ox + s * qq - pw;            \
                if (s == 2 && 2 * len + kw <= VL + 1) {                                        \
                    ecp_scatter_run_s2_##SUF(dxs, xpanel + t, NR, cb, ce, H, W, kh, kw, rbase,  \
                                             cbase, len);                                      \
                    t += len;                                                                  \
                    continue;                                                                  \
                }                                                                              \
                if (kw <= VL) ecp_scatter_plan_make(&plan, cbase, W, len, kw, s, VL);          \
                for (ptrdiff_t i = 0; i < kh; i++)     /* i-major, as ecp_scatter_run_s2 */    \
                    for (ptrdiff_t c = cb; c < ce; c++) {                                      \
                        const ptrdiff_t row = rbase + i;                                       \
                        if (row < 0 || row >= H) continue;                                     \
                        T *dr = dxs + c * HW + row * W;                                        \
                        const T *src = xpanel + (c * kh + i) * kw * NR + t;                    \
                        if (kw <= VL) ecp_scatter_row_##SUF(dr, cbase, src, NR, kw, s, &plan); \
                        else ecp_scatter_row_scalar_##SUF(dr, cbase, W, src, NR, len, kw, s);  \
                    }                                                                          \
                t += len;                                                                      \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
}

ECP_DEFINE_DIRECT_BWD(float, f, 16)
ECP_DEFINE_DIRECT_BWD(double, d, 8)

#else  /* no AVX-512 kernel in this build: never called (ecp_direct_supported() is 0) */

#define ECP_DEFINE_IM2COL_S2_STUB(T, SUF)                                                      \
static void ecp_im2col_plane_s2_##SUF(const T *xp, ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh,       \
                                      ptrdiff_t kw, ptrdiff_t ph, ptrdiff_t pw, ptrdiff_t oy,  \
                                      ptrdiff_t ox,                                            \
                                      ptrdiff_t hq, ptrdiff_t wq, T *dst0, ptrdiff_t ld)         \
                                                                                               \
  { (void)xp; (void)H; (void)W; (void)kh; (void)kw; (void)ph; (void)pw; (void)oy; (void)ox; (void)hq;\
  (void)wq; (void)dst0; (void)ld; }
ECP_DEFINE_IM2COL_S2_STUB(float, f)
ECP_DEFINE_IM2COL_S2_STUB(double, d)

static double ecp_sum_planes_f(const float *src, ptrdiff_t n, ptrdiff_t count, ptrdiff_t stride)
{ (void)src; (void)n; (void)count; (void)stride; return 0.0; }
static void ecp_pack_weights_v_f(const float *w, ptrdiff_t O, ptrdiff_t K, ptrdiff_t nr, float *wv)
{ ecp_pack_weights_v_scalar_f(w, O, K, nr, wv); }
static void ecp_transpose_f(const float *src, ptrdiff_t lds, ptrdiff_t rows, ptrdiff_t cols,
                            float *dst, ptrdiff_t ldd)
{ (void)src; (void)lds; (void)rows; (void)cols; (void)dst; (void)ldd; }
static double ecp_sum_planes_d(const double *src, ptrdiff_t n, ptrdiff_t count, ptrdiff_t stride)
{ (void)src; (void)n; (void)count; (void)stride; return 0.0; }

#define ECP_DEFINE_DIRECT_STUB(T, SUF)                                                         \
static void ecp_direct_item_##SUF(const T *x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,           \
                                  const T *wp, ptrdiff_t O, ptrdiff_t kh, ptrdiff_t kw,        \
                                  const T *bias, T *y, ptrdiff_t hq, ptrdiff_t wq,             \
                                  ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t r0, ptrdiff_t nr,      \
                                  ptrdiff_t ph, ptrdiff_t pw, ptrdiff_t s, ptrdiff_t oy,       \
                                  ptrdiff_t ox,                                                \
                                  T *panel, T *tile)                                           \
{ (void)x; (void)C; (void)H; (void)W; (void)wp; (void)O; (void)kh; (void)kw; (void)bias;       \
                                                                                               \
  (void)y; (void)hq; (void)wq; (void)n0; (void)nb; (void)r0; (void)nr; (void)ph; (void)pw; (void)s;\
  (void)oy; (void)ox; (void)panel; (void)tile; }
ECP_DEFINE_DIRECT_STUB(float, f)
ECP_DEFINE_DIRECT_STUB(double, d)

#define ECP_DEFINE_DIRECT_ROWS_STUB(T, SUF)                                                    \
static void ecp_direct_rows_item_##SUF(const T *x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,      \
                                       const T *wv, ptrdiff_t O, ptrdiff_t kh, ptrdiff_t kw,   \
                                       const T *bias, T *y, ptrdiff_t hq, ptrdiff_t wq,        \
                                       ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t r0, ptrdiff_t nr, \
                                       ptrdiff_t ph, ptrdiff_t pw, ptrdiff_t s, ptrdiff_t oy,  \
                                       ptrdiff_t ox,                                           \
                                       T *rpanel, T *tile, const int *koff)                    \
{ (void)x; (void)C; (void)H; (void)W; (void)wv; (void)O; (void)kh; (void)kw; (void)bias;       \
                                                                                               \
  (void)y; (void)hq; (void)wq; (void)n0; (void)nb; (void)r0; (void)nr; (void)ph; (void)pw; (void)s;\
  (void)oy; (void)ox; (void)rpanel; (void)tile; (void)koff; }
ECP_DEFINE_DIRECT_ROWS_STUB(float, f)
ECP_DEFINE_DIRECT_ROWS_STUB(double, d)

#define ECP_DEFINE_DIRECT_BWD_STUB(T, SUF)                                                     \
static void ecp_direct_backward_item_##SUF(                                                    \
    const T *x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, const T *dy, ptrdiff_t O, ptrdiff_t hq, \
    ptrdiff_t wq, const T *wt, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t n0, ptrdiff_t nb,          \
    ptrdiff_t ph, ptrdiff_t pw, ptrdiff_t s, ptrdiff_t oy, ptrdiff_t ox, T *dwacc, T *dx,      \
    T *rpanel,                                                                                 \
    T *dpanel, T *xpanel, const int *koff, int fresh)                                          \
{ (void)x; (void)C; (void)H; (void)W; (void)dy; (void)O; (void)hq; (void)wq; (void)wt;         \
                                                                                               \
  (void)kh; (void)kw; (void)n0; (void)nb; (void)ph; (void)pw; (void)s; (void)oy; (void)ox; (void)dwacc;\
  (void)dx; (void)rpanel; (void)dpanel; (void)xpanel; (void)koff; (void)fresh; }
ECP_DEFINE_DIRECT_BWD_STUB(float, f)
ECP_DEFINE_DIRECT_BWD_STUB(double, d)

#endif
#endif
