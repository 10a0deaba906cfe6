/* Convolution with the packing fused into the matrix products, for AVX-512, AVX2+FMA and AArch64
 * NEON (elsewhere, and at ECP_ISA_GENERIC, ecp uses im2col + BLAS, ecp_im2col.h).
 *
 * The im2col + SGEMM path moves the unrolled windows twice: im2col writes them (K x n, larger
 * than L2), then the BLAS copies them again into its panel format (sgemm_itcopy); its backward
 * adds a K x n dcols buffer and a col2im pass. Here the windows of a few output pixels are
 * written once, into a panel that stays in L1/L2, and one register tile (tile: 8 rows x
 * 2 vectors, NR = 2*VL columns: 32 floats / 16 doubles on AVX-512, 16 / 8 on AVX2, 8 / 4 on
 * NEON) does every product (the sizes below are AVX-512's):
 *   ecp_direct_item        forward, panel [k][32 pixels] (one masked copy per window element
 *                          and run of same-row pixels), tile = 8 filters x 32 pixels;
 *   ecp_direct_rows_item   forward for rows of a few pixels, panel [pixel][k] (one masked copy
 *                          per window row) or, for pixels whose windows lie inside the plane, the
 *                          windows read in place (ecp_tile_x); tile = 8 pixels x 32 filters;
 *   ecp_direct_backward_item  dW from a [pixel][k] panel, tile = 8 filters x 32 window
 *                          elements summed over 32 pixels, or from the windows in place
 *                          (ecp_tile_xt: 8 window elements x 32 filters); dx from tiles of W^T dY,
 *                          8 window elements x 32 pixels, added into dx a vector at a time.
 *   ecp_wino_item / ecp_wino_dw_item  Winograd F(2x2, 3x3) of stride-1 3x3 layers (forward,
 *                          dx as the convolution of dY with the flipped filters, and dW):
 *                          ecp_direct_wino.h, entry points in ecp_wino_entry.h.
 * Same sampling grid as ecp_im2col.h: output (r, q) of an item reads input
 * (oy + s*(r0 + r) + i - ph, ox + s*q + j - pw), zeros outside the plane; s is 1 or 2.
 * ecp's kernel choice picks one of these or im2col + BLAS per layer shape; the benchmarks behind
 * its thresholds are in bench/ and docs/performance.md.
 *
 * Summation order: each output is one chain over k = (c, i, j) (forward) or over the pixels of
 * an item in order (dW), so results do not depend on threads or on how pixels are grouped.
 */
/*
 * Files: ecp_vec.h (the vector layer, per ISA and type), and the kernels written once over it,
 * by role -- ecp_direct_pack.h (windows into panels, the stride-2 im2col), ecp_direct_tile.h
 * (the register tiles), ecp_direct_scatter.h (dcols into dx), ecp_direct_forward.h,
 * ecp_direct_backward.h -- which ecp_direct_inst.h includes once per (type, ISA) under the
 * macros set below (functions ecp_<name>_<isa>_<f|d>). This header is the one Cython includes:
 * the entry points below dispatch on the level in use (ecp_isa_get), a switch per call.
 *
 * ISA control (the C API the Python side and the C test harness use):
 *   ecp_isa_best()        the highest level this CPU and this build support;
 *   ecp_isa_set(level)    use level from now on; returns it, or -1 (nothing changed) when the
 *                         CPU or the build cannot run it; ECP_ISA_GENERIC is always accepted;
 *   ecp_isa_get()         the level in use (initially ecp_isa_best());
 *   ecp_direct_supported()  ecp_isa_get() != ECP_ISA_GENERIC: the direct kernels run;
 *   ecp_direct_nr_f/_d()  NR, the tile's columns, of the level in use (0 at GENERIC).
 * At ECP_ISA_GENERIC the direct entry points (ecp_direct_item, ecp_direct_rows_item,
 * ecp_direct_backward_item) do nothing -- never call them there -- and the helpers
 * (ecp_im2col_plane_s2, ecp_sum_planes, ecp_transpose_f, ecp_pack_weights_*) run portable C.
 * -Wall clean for GCC and Clang (x86-64, AArch64); unused entry points are not warned about.
 * Results: the forward outputs and dW are the same bits on every level (each is one chain of
 * multiply-adds in a fixed order; the tiles' FMAs are fused on every vector ISA); ecp_sum_planes
 * too (every level adds in AVX-512's order); dx may differ in the last bits between levels
 * (its runs of pixels are cut at panel boundaries, NR apart), never between thread counts.
 */
#ifndef ECP_DIRECT_H
#define ECP_DIRECT_H

#if defined(_MSC_VER) && !defined(restrict)
#define restrict __restrict  /* MSVC's C compiler spells C99's restrict this way */
#endif

#include <stddef.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

enum { ECP_ISA_GENERIC = 0, ECP_ISA_AVX2 = 1, ECP_ISA_AVX512 = 2, ECP_ISA_NEON = 3 };

/* Which instantiations this build compiles (GCC and Clang: vector extensions, target attributes) */
#if defined(__GNUC__) && defined(__x86_64__)
#define ECP_BUILD_AVX512 1
#define ECP_BUILD_AVX2 1
#else
#define ECP_BUILD_AVX512 0
#define ECP_BUILD_AVX2 0
#endif
#if defined(__GNUC__) && defined(__aarch64__)
#define ECP_BUILD_NEON 1
#else
#define ECP_BUILD_NEON 0
#endif
/* 1 when some level other than GENERIC is compiled in */
#define ECP_DIRECT_AVAILABLE (ECP_BUILD_AVX512 || ECP_BUILD_AVX2 || ECP_BUILD_NEON)

#if defined(__GNUC__)
#define ECP_FN static __attribute__((unused))
#else
#define ECP_FN static
#endif

#define ECP_MR 8            /* rows of every register tile */
#define ECP_ROWS_GROUPS 4   /* groups of ECP_MR pixels per block of the pixel-rows kernel */
#define ECP_ROWS_PIX (ECP_ROWS_GROUPS * ECP_MR)   /* pixels per block of the pixel-rows kernel */
#define ECP_MAXCH 5         /* chunks of a scatter run's row segment: s*(NR-1) + kw <= 5*VL lanes */
#define ECP_S2_ROWS 32      /* dx rows of a plane the stride-2 whole-plane scatter holds */
#define ECP_S2_MK 8         /* column masks of the stride-2 scatters: (kw + 1)/2 <= VL/2 <= 8 */

/* ---------------------------------------------------------------------------------------------
 * Portable pieces (every level) */

#define ECP_CAT2_(a, b) a##_##b
#define ECP_CAT2(a, b) ECP_CAT2_(a, b)
#define ECP_CAT3_(a, b, c) a##_##b##_##c
#define ECP_CAT3(a, b, c) ECP_CAT3_(a, b, c)

#define T float
#define ECP_SUF f
#include "ecp_direct_portable.h"
#define T double
#define ECP_SUF d
#include "ecp_direct_portable.h"

/* koff[k] = offset of window element k = (c, i, j) from a window's corner in the input of one
 * sample (c*H*W + i*W + j), for k < C*kh*kw, and 0 up to n (rows a last partial tile computes
 * and nobody reads): the table through which the kernels read windows in place. Computed once
 * per call; the offsets must fit an int (C*H*W <= INT_MAX, which the caller checks). */
ECP_FN void ecp_window_offsets(ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw,
                               ptrdiff_t n, int *koff)
{
    ptrdiff_t k = 0;
    for (ptrdiff_t c = 0; c < C; c++)
        for (ptrdiff_t i = 0; i < kh; i++)
            for (ptrdiff_t j = 0; j < kw && k < n; j++) koff[k++] = (int)(c * H * W + i * W + j);
    for (; k < n; k++) koff[k] = 0;
}

/* ---------------------------------------------------------------------------------------------
 * The instantiations: per ISA and type, the macros the role files are written over */

#include "ecp_vec.h"

/* The layout of the polyphase kernels' (ecp_direct_poly.h) transformed data of k x k filters
 * (k = 3 or 4; np = k + 2 transformed rows and columns), C channels, NR tiles a block, rows =
 * filters rounded up to blocks of 8: xi = r*3 + c takes the streams (R, Q) with R in {r, r + 3
 * if r + 3 < np} and Q in {c, c + 3 if c + 3 < np}, kx[xi] = (2 or 1)*(2 or 1)*C rows in all,
 * in the order of (R, Q). V: stream (R, Q) at soff[R*np + Q], C rows of NR; xi's rows at
 * voff[xi], a line (NR) more apart than their length. U: xi's block at uoff[xi], packed
 * [ob][k][8], k < kx[xi]. */
static inline void ecp_poly_layout_k(int k, ptrdiff_t C, ptrdiff_t NR, ptrdiff_t rows,
                                     ptrdiff_t *kx, ptrdiff_t *voff, ptrdiff_t *uoff,
                                     ptrdiff_t *soff)
{
    const int np = k + 2;
    ptrdiff_t v = 0, u = 0;
    for (int xi = 0; xi < 9; xi++) {
        const int r = xi / 3, c = xi % 3, nq = c + 3 < np ? 2 : 1;
        kx[xi] = (r + 3 < np ? 2 : 1) * nq * C;
        voff[xi] = v;
        uoff[xi] = u;
        for (int R = r; R < np; R += 3)
            for (int Q = c; Q < np; Q += 3)
                soff[R * np + Q] = v + ((R / 3) * nq + Q / 3) * C * NR;
        v += kx[xi] * NR + NR;
        u += kx[xi] * rows;
    }
}

/* The layout of the polyphase forward's tall tiles (ecp_direct_poly.h, 4 x 2 outputs a tile): 9
 * transformed rows R (phase 0: R = 0 .. 4, F(4, 2)'s points 0, 1, -1, 2, inf; phase 1: R = 5 .. 8,
 * the points 0, 1, -1, 2) and 5 columns Q as ecp_poly_layout_k's at k = 3; xi = r*3 + c (r < 5,
 * c < 3) takes the streams (R, Q) with R in {r, r + 5 if r < 4} and Q in {c, c + 3 if c < 2},
 * kx[xi] = (2 or 1)*(2 or 1)*C rows in all, in the order of (R, Q): 45*C rows over 15 xi. V:
 * stream (R, Q) at soff[R*5 + Q]; voff, uoff as ecp_poly_layout_k's. */
static inline void ecp_polyt_layout(ptrdiff_t C, ptrdiff_t NR, ptrdiff_t rows, ptrdiff_t *kx,
                                    ptrdiff_t *voff, ptrdiff_t *uoff, ptrdiff_t *soff)
{
    ptrdiff_t v = 0, u = 0;
    for (int xi = 0; xi < 15; xi++) {
        const int r = xi / 3, c = xi % 3, nr = r < 4 ? 2 : 1, nq = c < 2 ? 2 : 1;
        kx[xi] = nr * nq * C;
        voff[xi] = v;
        uoff[xi] = u;
        for (int a = 0; a < nr; a++)
            for (int b = 0; b < nq; b++)
                soff[(r + 5 * a) * 5 + c + 3 * b] = v + (a * nq + b) * C * NR;
        v += kx[xi] * NR + NR;
        u += kx[xi] * rows;
    }
}

/* The polyphase dW's (ecp_direct_poly.h) du layout, from ecp_poly_layout_k's kx: per xi, kr[xi]
 * = kx[xi] rounded up to a multiple of 8 rows of Op columns at duoff[xi]. Returns du's elements
 * in all, Op * sum(kr). */
static inline ptrdiff_t ecp_poly_dw_layout(const ptrdiff_t *kx, ptrdiff_t Op, ptrdiff_t *kr,
                                           ptrdiff_t *duoff)
{
    ptrdiff_t s = 0;
    for (int xi = 0; xi < 9; xi++) {
        kr[xi] = (kx[xi] + 7) / 8 * 8;
        duoff[xi] = Op * s;
        s += kr[xi];
    }
    return Op * s;
}

/* sum(kr) of ecp_poly_dw_layout for k x k filters and C channels: du takes Op times as many
 * elements */
static inline ptrdiff_t ecp_poly_dw_rows(int k, ptrdiff_t C)
{
    ptrdiff_t kx[9], voff[9], uoff[9], soff[36], kr[9], duoff[9];
    ecp_poly_layout_k(k, C, 1, 1, kx, voff, uoff, soff);
    return ecp_poly_dw_layout(kx, 1, kr, duoff);
}

/* The polyphase dx's (ecp_direct_poly_dx.h) layout, k x k filters (k = 3 or 4), Cr = C rounded
 * up to 8: per xi = (p, q), the phases (a, b) active at it in order (transformed point p is
 * active for phase a unless k = 3, a = 1 and p = 0: a one-tap axis), rank[xi][a*2 + b] their rank
 * (-1 where inactive), rows[xi] = active phases * Cr (rows (rank, c)); U's block of xi at uoff[xi]
 * (rows[xi] * O elements, packed [row block][o][8]), M's at moff[xi] (rows[xi] + 1 lines of NR:
 * no L1 set conflicts). Returns M's elements in all (U's: ecp_poly_dx_usize). */
static inline ptrdiff_t ecp_poly_dx_layout(int k, ptrdiff_t Cr, ptrdiff_t O, ptrdiff_t NR,
                                           ptrdiff_t *rows, ptrdiff_t *uoff, ptrdiff_t *moff,
                                           int rank[9][4])
{
    ptrdiff_t u = 0, m = 0;
    for (int xi = 0; xi < 9; xi++) {
        const int p = xi / 3, q = xi % 3;
        int n = 0;
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++)
                rank[xi][a * 2 + b] = k == 3 && ((a == 1 && p == 0) || (b == 1 && q == 0)) ? -1 : n++;
        rows[xi] = n * Cr;
        uoff[xi] = u;
        moff[xi] = m;
        u += rows[xi] * O;
        m += (rows[xi] + 1) * NR;
    }
    return m;
}

/* elements of the polyphase dx's U (ecp_poly_dx_layout) */
static inline ptrdiff_t ecp_poly_dx_usize(int k, ptrdiff_t C, ptrdiff_t O)
{
    ptrdiff_t rows[9], uoff[9], moff[9];
    int rank[9][4];
    ecp_poly_dx_layout(k, (C + 7) / 8 * 8, O, 1, rows, uoff, moff, rank);
    return uoff[8] + rows[8] * O;
}

/* elements of the polyphase dx's M per thread (ecp_poly_dx_layout), NR columns a tile */
static inline ptrdiff_t ecp_poly_dx_msize(int k, ptrdiff_t C, ptrdiff_t NR)
{
    ptrdiff_t rows[9], uoff[9], moff[9];
    int rank[9][4];
    return ecp_poly_dx_layout(k, (C + 7) / 8 * 8, 1, NR, rows, uoff, moff, rank);
}

/* ecp_poly_layout_k of the 3x3 filters (soff: 25 streams) */
static inline void ecp_poly_layout(ptrdiff_t C, ptrdiff_t NR, ptrdiff_t rows, ptrdiff_t *kx,
                                   ptrdiff_t *voff, ptrdiff_t *uoff, ptrdiff_t *soff)
{
    ecp_poly_layout_k(3, C, NR, rows, kx, voff, uoff, soff);
}

#if ECP_BUILD_AVX512
#define ECP_ISA_NAME avx512
#define T float
#define ECP_SUF f
#include "ecp_direct_inst.h"
#define T double
#define ECP_SUF d
#include "ecp_direct_inst.h"
#undef ECP_ISA_NAME
#endif

#if ECP_BUILD_AVX2
#define ECP_ISA_NAME avx2
#define T float
#define ECP_SUF f
#include "ecp_direct_inst.h"
#define T double
#define ECP_SUF d
#include "ecp_direct_inst.h"
#undef ECP_ISA_NAME
#endif

#if ECP_BUILD_NEON
#define ECP_ISA_NAME neon
#define T float
#define ECP_SUF f
#include "ecp_direct_inst.h"
#define T double
#define ECP_SUF d
#include "ecp_direct_inst.h"
#undef ECP_ISA_NAME
#endif

/* ---------------------------------------------------------------------------------------------
 * ISA control */

ECP_FN int ecp_isa_runs(int level)
{
    switch (level) {
    case ECP_ISA_GENERIC:
        return 1;
#if ECP_BUILD_AVX512
    case ECP_ISA_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("fma");
#endif
#if ECP_BUILD_AVX2
    case ECP_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
#if ECP_BUILD_NEON
    case ECP_ISA_NEON:
        return 1;   /* Advanced SIMD is part of every AArch64 CPU */
#endif
    default:
        return 0;
    }
}

ECP_FN int ecp_isa_best(void)
{
    if (ecp_isa_runs(ECP_ISA_AVX512)) return ECP_ISA_AVX512;
    if (ecp_isa_runs(ECP_ISA_AVX2)) return ECP_ISA_AVX2;
    if (ecp_isa_runs(ECP_ISA_NEON)) return ECP_ISA_NEON;
    return ECP_ISA_GENERIC;
}

/* The level in use; -1 until first asked (then ecp_isa_best()). One per extension module: every
 * thread reads it, only ecp_isa_set writes it (from Python, with no kernel running). */
static int ecp_isa_level = -1;

ECP_FN int ecp_isa_get(void)
{
    if (ecp_isa_level < 0) ecp_isa_level = ecp_isa_best();
    return ecp_isa_level;
}

ECP_FN int ecp_isa_set(int level)
{
    if (!ecp_isa_runs(level)) return -1;
    ecp_isa_level = level;
    return level;
}

ECP_FN int ecp_direct_supported(void) { return ecp_isa_get() != ECP_ISA_GENERIC; }

ECP_FN ptrdiff_t ecp_direct_nr_f(void)
{
    switch (ecp_isa_get()) {
    case ECP_ISA_AVX512: return 32;
    case ECP_ISA_AVX2: return 16;
    case ECP_ISA_NEON: return 8;
    default: return 0;
    }
}

ECP_FN ptrdiff_t ecp_direct_nr_d(void) { return ecp_direct_nr_f() / 2; }

/* ---------------------------------------------------------------------------------------------
 * The entry points: a switch on the level in use (one per item call), to the instantiation */

#if ECP_BUILD_AVX512
#define ECP_CASE_AVX512(fn, suf, args) case ECP_ISA_AVX512: ECP_CAT3(ecp_##fn, avx512, suf) args; return;
#define ECP_RCASE_AVX512(fn, suf, args) case ECP_ISA_AVX512: return ECP_CAT3(ecp_##fn, avx512, suf) args;
#else
#define ECP_CASE_AVX512(fn, suf, args)
#define ECP_RCASE_AVX512(fn, suf, args)
#endif
#if ECP_BUILD_AVX2
#define ECP_CASE_AVX2(fn, suf, args) case ECP_ISA_AVX2: ECP_CAT3(ecp_##fn, avx2, suf) args; return;
#define ECP_RCASE_AVX2(fn, suf, args) case ECP_ISA_AVX2: return ECP_CAT3(ecp_##fn, avx2, suf) args;
#else
#define ECP_CASE_AVX2(fn, suf, args)
#define ECP_RCASE_AVX2(fn, suf, args)
#endif
#if ECP_BUILD_NEON
#define ECP_CASE_NEON(fn, suf, args) case ECP_ISA_NEON: ECP_CAT3(ecp_##fn, neon, suf) args; return;
#else
#define ECP_CASE_NEON(fn, suf, args)
#endif
#define ECP_DISPATCH(fn, suf, args) switch (ecp_isa_get()) { ECP_CASE_AVX512(fn, suf, args) ECP_CASE_AVX2(fn, suf, args) ECP_CASE_NEON(fn, suf, args) default: break; }

#define T float
#define ECP_SUF f
#include "ecp_direct_entry.h"
#define T double
#define ECP_SUF d
#include "ecp_direct_entry.h"
/* A barrier of the enclosing OpenMP parallel region (none without OpenMP): every thread of the
 * team must call it */
ECP_FN void ecp_team_barrier(void)
{
#ifdef _OPENMP
#pragma omp barrier
#endif
}

#define T float
#define ECP_SUF f
#include "ecp_wino_entry.h"
#define T double
#define ECP_SUF d
#include "ecp_wino_entry.h"

/* dst[j * ldd + i] = src[i * lds + j] for i < rows, j < cols (AVX-512: by 16 x 16 register
 * transposes; elsewhere a loop: AVX2 has no form of it worth the code, docs/performance.md) */
ECP_FN void ecp_transpose_f(const float *restrict src, ptrdiff_t lds, ptrdiff_t rows,
                            ptrdiff_t cols, float *restrict dst, ptrdiff_t ldd)
{
#if ECP_BUILD_AVX512
    if (ecp_isa_get() == ECP_ISA_AVX512) {
        ecp_v_transpose_avx512_f(src, lds, rows, cols, dst, ldd);
        return;
    }
#endif
    for (ptrdiff_t i0 = 0; i0 < rows; i0 += 16)   /* in 16 x 16 blocks, as the vector form */
        for (ptrdiff_t j = 0; j < cols; j++)
            for (ptrdiff_t i = i0; i < rows && i < i0 + 16; i++) dst[j * ldd + i] = src[i * lds + j];
}

/* Wv[ob][k][l] = w[ob*nr + l][k], zero past O: the weights as rows of nr filters (nr = NR of the
 * level in use), the B operand of the pixel-rows forward kernel. wv: ceil(O/nr)*nr*K elements. */
ECP_FN void ecp_pack_weights_v_f(const float *restrict w, ptrdiff_t O, ptrdiff_t K, ptrdiff_t nr,
                                 float *restrict wv)
{
#if ECP_BUILD_AVX512
    if (ecp_isa_get() == ECP_ISA_AVX512 && nr % 16 == 0) {
        ecp_v_pack_weights_v_avx512_f(w, O, K, nr, wv);
        return;
    }
#endif
    ecp_pack_weights_v_scalar_f(w, O, K, nr, wv);
}
ECP_FN void ecp_pack_weights_v_d(const double *restrict w, ptrdiff_t O, ptrdiff_t K, ptrdiff_t nr,
                                 double *restrict wv)
{
    ecp_pack_weights_v_scalar_d(w, O, K, nr, wv);
}

/* The forward's packed weights (nr 0: ecp_pack_weights, else ecp_pack_weights_v with nr),
 * shared among the threads of the enclosing OpenMP parallel region: each packs a contiguous share
 * of the filter blocks (8 filters, or nr), then one barrier, after which every thread sees all
 * of wp; outside a parallel region, or without OpenMP, all of them. Every thread of the team
 * must call it. The same values as one thread packing them all. */
#define ECP_PACK_SHARED(suf, T)                                                                 \
    ECP_FN void ecp_pack_weights_shared_##suf(const T *restrict w, ptrdiff_t O, ptrdiff_t K,   \
                                              ptrdiff_t nr, T *restrict wp)                    \
    {                                                                                           \
        const ptrdiff_t bs = nr ? nr : ECP_MR, nblk = (O + bs - 1) / bs;                        \
        ptrdiff_t b0 = 0, b1 = nblk;                                                            \
        ECP_TEAM_SHARE(nblk, b0, b1)                                                            \
        if (b1 > b0) {                                                                          \
            const ptrdiff_t o0 = b0 * bs, on = (b1 * bs < O ? b1 * bs : O) - o0;                \
            if (nr) ecp_pack_weights_v_##suf(w + o0 * K, on, K, nr, wp + o0 * K);               \
            else ecp_pack_weights_##suf(w + o0 * K, on, K, wp + o0 * K);                        \
        }                                                                                       \
        ecp_team_barrier();                                                                     \
    }                                                                                           \
    /* ecp_pack_weights_t (the backward's W^T) shared the same way, over the blocks of 8 k */   \
    ECP_FN void ecp_pack_weights_t_shared_##suf(const T *restrict w, ptrdiff_t O, ptrdiff_t K, \
                                                T *restrict wt)                                \
    {                                                                                           \
        const ptrdiff_t nkb = (K + ECP_MR - 1) / ECP_MR;                                        \
        ptrdiff_t b0 = 0, b1 = nkb;                                                             \
        ECP_TEAM_SHARE(nkb, b0, b1)                                                             \
        for (ptrdiff_t kb = b0; kb < b1; kb++)                                                  \
            for (ptrdiff_t o = 0; o < O; o++)                                                   \
                for (ptrdiff_t m = 0; m < ECP_MR; m++) {                                        \
                    const ptrdiff_t k = kb * ECP_MR + m;                                        \
                    wt[(kb * O + o) * ECP_MR + m] = k < K ? w[o * K + k] : (T)0;                \
                }                                                                               \
        ecp_team_barrier();                                                                     \
    }
#ifdef _OPENMP
#define ECP_TEAM_SHARE(n, lo, hi)                                                                \
    { const ptrdiff_t nt_ = omp_get_num_threads(), t_ = omp_get_thread_num();                   \
      lo = t_ * (n) / nt_; hi = (t_ + 1) * (n) / nt_; }
#else
#define ECP_TEAM_SHARE(n, lo, hi)
#endif
ECP_PACK_SHARED(f, float)
ECP_PACK_SHARED(d, double)
#undef ECP_PACK_SHARED
#undef ECP_TEAM_SHARE

#undef ECP_DISPATCH
#endif
