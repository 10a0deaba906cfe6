/* The register tiles of the direct kernels: ECP_MR (8) rows x 2 vectors (NR = 2*VL columns).
 * Written once and included by ecp_direct.h once per (type, ISA); no include guard on purpose.
 *
 * A tile runs as passes of TP rows (TP = 8 where the registers hold 16 accumulators -- AVX-512,
 * NEON -- else 4: AVX2's 16 registers hold 4 x 2 accumulators, 2 vectors of B and a broadcast),
 * each pass over the whole l range: every output is one chain of multiply-adds over l, in
 * order, whatever TP, so the same bits. The rows past the first pass's are written below under
 * #if TP > 4 rather than as arrays, so that they stay named registers (with TP = 8 the pass loop
 * runs once). */

/* C[m][0:NR] = (C[m][0:NR] when acc, else 0) + sum_l A(l, m) * b[l][0:NR], m < 8, summed in
 * order of l on top of C: the 8 x NR register tile. A(l, m) = a[l*sl + m*sm] (packed: sl 8,
 * sm 1; rows of a matrix: sl 1, sm its stride), b: rows of NR values ldb apart, C: rows ldc
 * apart. A sum split over consecutive calls (acc) is the same chain as one call. */
TARGET static inline void NAME(tile)(ptrdiff_t L, const T *restrict a, ptrdiff_t sl, ptrdiff_t sm,
                                     const T *restrict bp, ptrdiff_t ldb, T *restrict c,
                                     ptrdiff_t ldc, int acc)
{
    for (ptrdiff_t m0 = 0; m0 < ECP_MR; m0 += TP) {
        T *cr = c + m0 * ldc;
        const T *ar = a + m0 * sm;
        V c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0}, d0 = {0}, d1 = {0}, d2 = {0}, d3 = {0};
#if TP > 4
        V c4 = {0}, c5 = {0}, c6 = {0}, c7 = {0}, d4 = {0}, d5 = {0}, d6 = {0}, d7 = {0};
#endif
        if (acc) {
            c0 = *(const VU *)(cr); d0 = *(const VU *)(cr + VL);
            c1 = *(const VU *)(cr + ldc); d1 = *(const VU *)(cr + ldc + VL);
            c2 = *(const VU *)(cr + 2 * ldc); d2 = *(const VU *)(cr + 2 * ldc + VL);
            c3 = *(const VU *)(cr + 3 * ldc); d3 = *(const VU *)(cr + 3 * ldc + VL);
#if TP > 4
            c4 = *(const VU *)(cr + 4 * ldc); d4 = *(const VU *)(cr + 4 * ldc + VL);
            c5 = *(const VU *)(cr + 5 * ldc); d5 = *(const VU *)(cr + 5 * ldc + VL);
            c6 = *(const VU *)(cr + 6 * ldc); d6 = *(const VU *)(cr + 6 * ldc + VL);
            c7 = *(const VU *)(cr + 7 * ldc); d7 = *(const VU *)(cr + 7 * ldc + VL);
#endif
        }
        const T *a0 = ar, *a1 = ar + sm, *a2 = ar + 2 * sm, *a3 = ar + 3 * sm;
#if TP > 4
        const T *a4 = ar + 4 * sm, *a5 = ar + 5 * sm, *a6 = ar + 6 * sm, *a7 = ar + 7 * sm;
#endif
        for (ptrdiff_t l = 0; l < L; l++) {
            const V b0 = *(const VU *)(bp + ldb * l);
            const V b1 = *(const VU *)(bp + ldb * l + VL);
            const ptrdiff_t e = sl * l;
            c0 += a0[e] * b0; d0 += a0[e] * b1; c1 += a1[e] * b0; d1 += a1[e] * b1;
            c2 += a2[e] * b0; d2 += a2[e] * b1; c3 += a3[e] * b0; d3 += a3[e] * b1;
#if TP > 4
            c4 += a4[e] * b0; d4 += a4[e] * b1; c5 += a5[e] * b0; d5 += a5[e] * b1;
            c6 += a6[e] * b0; d6 += a6[e] * b1; c7 += a7[e] * b0; d7 += a7[e] * b1;
#endif
        }
        {
#if TP > 4
            const V cs[8] = {c0, c1, c2, c3, c4, c5, c6, c7}, ds[8] = {d0, d1, d2, d3, d4, d5, d6, d7};
#else
            const V cs[4] = {c0, c1, c2, c3}, ds[4] = {d0, d1, d2, d3};
#endif
            for (int m = 0; m < TP; m++) {
                VU *cm = (VU *)(cr + ldc * m);
                cm[0] = cs[m];
                cm[1] = ds[m];
            }
        }
    }
}

/* tile for panels at most half full (jn <= VL: a batch's odd sample alone in its panel, or
 * any short last panel), one vector of columns: C[m][0:VL] = sum_l A(l, m) * b[l][0:VL], each
 * output the same chain of products as in tile (so the same bits) at half its cost; C's
 * other VL columns are not written (no reader of the panel looks past its jn columns).
 * 8 accumulators, one pass on every ISA. */
TARGET static inline void NAME(tile_h)(ptrdiff_t L, const T *restrict a, ptrdiff_t sl,
                                       ptrdiff_t sm, const T *restrict bp, ptrdiff_t ldb,
                                       T *restrict c, ptrdiff_t ldc)
{
    V c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0}, c4 = {0}, c5 = {0}, c6 = {0}, c7 = {0};
    const T *a0 = a, *a1 = a + sm, *a2 = a + 2 * sm, *a3 = a + 3 * sm, *a4 = a + 4 * sm;
    const T *a5 = a + 5 * sm, *a6 = a + 6 * sm, *a7 = a + 7 * sm;
    for (ptrdiff_t l = 0; l < L; l++) {
        const V b0 = *(const VU *)(bp + ldb * l);
        const ptrdiff_t e = sl * l;
        c0 += a0[e] * b0; c1 += a1[e] * b0; c2 += a2[e] * b0; c3 += a3[e] * b0;
        c4 += a4[e] * b0; c5 += a5[e] * b0; c6 += a6[e] * b0; c7 += a7[e] * b0;
    }
    *(VU *)c = c0; *(VU *)(c + ldc) = c1; *(VU *)(c + 2 * ldc) = c2;
    *(VU *)(c + 3 * ldc) = c3; *(VU *)(c + 4 * ldc) = c4; *(VU *)(c + 5 * ldc) = c5;
    *(VU *)(c + 6 * ldc) = c6; *(VU *)(c + 7 * ldc) = c7;
}

/* tile with A read from the input itself: A(l, m) = px[m][koff[l]], 8 pixels' window
 * corners px[m] and koff[l] the offset of window element l (c*H*W + i*W + j) -- the windows
 * of pixels whose windows lie inside the plane, with no packing. Same chain over l.
 * (Its own loop, not tile's: the table lookup would cost the packed tiles a load per l.) */
TARGET static inline void NAME(tile_x)(ptrdiff_t L, const T *const *px, const int *restrict koff,
                                       const T *restrict bp, ptrdiff_t ldb, T *restrict c,
                                       ptrdiff_t ldc, int acc)
{
    for (ptrdiff_t m0 = 0; m0 < ECP_MR; m0 += TP) {
        T *cr = c + m0 * ldc;
        V c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0}, d0 = {0}, d1 = {0}, d2 = {0}, d3 = {0};
#if TP > 4
        V c4 = {0}, c5 = {0}, c6 = {0}, c7 = {0}, d4 = {0}, d5 = {0}, d6 = {0}, d7 = {0};
#endif
        if (acc) {
            c0 = *(const VU *)(cr); d0 = *(const VU *)(cr + VL);
            c1 = *(const VU *)(cr + ldc); d1 = *(const VU *)(cr + ldc + VL);
            c2 = *(const VU *)(cr + 2 * ldc); d2 = *(const VU *)(cr + 2 * ldc + VL);
            c3 = *(const VU *)(cr + 3 * ldc); d3 = *(const VU *)(cr + 3 * ldc + VL);
#if TP > 4
            c4 = *(const VU *)(cr + 4 * ldc); d4 = *(const VU *)(cr + 4 * ldc + VL);
            c5 = *(const VU *)(cr + 5 * ldc); d5 = *(const VU *)(cr + 5 * ldc + VL);
            c6 = *(const VU *)(cr + 6 * ldc); d6 = *(const VU *)(cr + 6 * ldc + VL);
            c7 = *(const VU *)(cr + 7 * ldc); d7 = *(const VU *)(cr + 7 * ldc + VL);
#endif
        }
        const T *a0 = px[m0], *a1 = px[m0 + 1], *a2 = px[m0 + 2], *a3 = px[m0 + 3];
#if TP > 4
        const T *a4 = px[m0 + 4], *a5 = px[m0 + 5], *a6 = px[m0 + 6], *a7 = px[m0 + 7];
#endif
        for (ptrdiff_t l = 0; l < L; l++) {
            const V b0 = *(const VU *)(bp + ldb * l);
            const V b1 = *(const VU *)(bp + ldb * l + VL);
            const ptrdiff_t e = koff[l];
            c0 += a0[e] * b0; d0 += a0[e] * b1; c1 += a1[e] * b0; d1 += a1[e] * b1;
            c2 += a2[e] * b0; d2 += a2[e] * b1; c3 += a3[e] * b0; d3 += a3[e] * b1;
#if TP > 4
            c4 += a4[e] * b0; d4 += a4[e] * b1; c5 += a5[e] * b0; d5 += a5[e] * b1;
            c6 += a6[e] * b0; d6 += a6[e] * b1; c7 += a7[e] * b0; d7 += a7[e] * b1;
#endif
        }
        {
#if TP > 4
            const V cs[8] = {c0, c1, c2, c3, c4, c5, c6, c7}, ds[8] = {d0, d1, d2, d3, d4, d5, d6, d7};
#else
            const V cs[4] = {c0, c1, c2, c3}, ds[4] = {d0, d1, d2, d3};
#endif
            for (int m = 0; m < TP; m++) {
                VU *cm = (VU *)(cr + ldc * m);
                cm[0] = cs[m];
                cm[1] = ds[m];
            }
        }
    }
}

/* The dW tile with the windows read in place: C[m][0:NR] = (C[m][0:NR] when acc, else 0) +
 * sum_l pix[l][off[m]] * b[l][0:NR], for 8 window elements m (offsets off[m] from a window's
 * corner) and the pixels l (window corners pix[l]); b: dY, one row of filters per pixel. Each
 * product and the chain over l are those of tile on packed windows (x * dy == dy * x), so
 * dW is bitwise the same. */
TARGET static inline void NAME(tile_xt)(ptrdiff_t L, const T *const *pix, const int *off,
                                        const T *restrict bp, ptrdiff_t ldb, T *restrict c,
                                        ptrdiff_t ldc, int acc)
{
    for (ptrdiff_t m0 = 0; m0 < ECP_MR; m0 += TP) {
        T *cr = c + m0 * ldc;
        V c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0}, d0 = {0}, d1 = {0}, d2 = {0}, d3 = {0};
#if TP > 4
        V c4 = {0}, c5 = {0}, c6 = {0}, c7 = {0}, d4 = {0}, d5 = {0}, d6 = {0}, d7 = {0};
#endif
        if (acc) {
            c0 = *(const VU *)(cr); d0 = *(const VU *)(cr + VL);
            c1 = *(const VU *)(cr + ldc); d1 = *(const VU *)(cr + ldc + VL);
            c2 = *(const VU *)(cr + 2 * ldc); d2 = *(const VU *)(cr + 2 * ldc + VL);
            c3 = *(const VU *)(cr + 3 * ldc); d3 = *(const VU *)(cr + 3 * ldc + VL);
#if TP > 4
            c4 = *(const VU *)(cr + 4 * ldc); d4 = *(const VU *)(cr + 4 * ldc + VL);
            c5 = *(const VU *)(cr + 5 * ldc); d5 = *(const VU *)(cr + 5 * ldc + VL);
            c6 = *(const VU *)(cr + 6 * ldc); d6 = *(const VU *)(cr + 6 * ldc + VL);
            c7 = *(const VU *)(cr + 7 * ldc); d7 = *(const VU *)(cr + 7 * ldc + VL);
#endif
        }
        const ptrdiff_t o0 = off[m0], o1 = off[m0 + 1], o2 = off[m0 + 2], o3 = off[m0 + 3];
#if TP > 4
        const ptrdiff_t o4 = off[m0 + 4], o5 = off[m0 + 5], o6 = off[m0 + 6], o7 = off[m0 + 7];
#endif
        for (ptrdiff_t l = 0; l < L; l++) {
            const V b0 = *(const VU *)(bp + ldb * l);
            const V b1 = *(const VU *)(bp + ldb * l + VL);
            const T *p = pix[l];
            c0 += p[o0] * b0; d0 += p[o0] * b1; c1 += p[o1] * b0; d1 += p[o1] * b1;
            c2 += p[o2] * b0; d2 += p[o2] * b1; c3 += p[o3] * b0; d3 += p[o3] * b1;
#if TP > 4
            c4 += p[o4] * b0; d4 += p[o4] * b1; c5 += p[o5] * b0; d5 += p[o5] * b1;
            c6 += p[o6] * b0; d6 += p[o6] * b1; c7 += p[o7] * b0; d7 += p[o7] * b1;
#endif
        }
        {
#if TP > 4
            const V cs[8] = {c0, c1, c2, c3, c4, c5, c6, c7}, ds[8] = {d0, d1, d2, d3, d4, d5, d6, d7};
#else
            const V cs[4] = {c0, c1, c2, c3}, ds[4] = {d0, d1, d2, d3};
#endif
            for (int m = 0; m < TP; m++) {
                VU *cm = (VU *)(cr + ldc * m);
                cm[0] = cs[m];
                cm[1] = ds[m];
            }
        }
    }
}
