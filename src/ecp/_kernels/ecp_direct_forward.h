/* The forward kernels (panel and pixel rows). Written once over the vector layer and the tiles
 * (ecp_direct_tile.h) and included by ecp_direct.h once per (type, ISA); no include guard on
 * purpose. */

/* Output rows r0 .. r0+nr-1 of samples n0 .. n0+nb-1 of y (N, O, hq, wq), bias added.
 * panel: K * NR scratch, tile: nob * 8 * NR scratch (both per thread). */
TARGET static void NAME(direct_item)(const T *restrict x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                                     const T *restrict wp, ptrdiff_t O, ptrdiff_t kh, ptrdiff_t kw,
                                     const T *restrict bias, T *restrict y, ptrdiff_t hq,
                                     ptrdiff_t wq, ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t r0,
                                     ptrdiff_t nr, ptrdiff_t ph, ptrdiff_t pw, ptrdiff_t s,
                                     ptrdiff_t oy, ptrdiff_t ox, T *restrict panel,
                                     T *restrict tile)
{
    const ptrdiff_t NR = 2 * VL, K = C * kh * kw, P = nr * wq, ncols = nb * P;
    const ptrdiff_t plane = hq * wq, nob = (O + ECP_MR - 1) / ECP_MR;
    const ptrdiff_t KC = 24576 / (NR * (ptrdiff_t)sizeof(T));
    ptrdiff_t yoff[2 * VL];
    for (ptrdiff_t j0 = 0; j0 < ncols; j0 += NR) {
        const ptrdiff_t jn = ncols - j0 < NR ? ncols - j0 : NR;
        /* pack the windows of columns j0 .. j0+jn-1, one run of same-row pixels at a time */
        for (ptrdiff_t t = 0; t < jn;) {
            const ptrdiff_t g = j0 + t, b = g / P, p = g % P, rr = p / wq, qq = p % wq;
            const ptrdiff_t len = wq - qq < jn - t ? wq - qq : jn - t;
            const ptrdiff_t rbase = oy + s * (r0 + rr) - ph, cbase = ox + s * qq - pw;
            for (ptrdiff_t u = 0; u < len; u++) yoff[t + u] = (n0 + b) * O * plane + r0 * wq + p + u;
            if (kw <= 16) {
                NAME(pack_run)(panel + t, NR, x + (n0 + b) * C * H * W, C, H, W, kh, kw,
                                   rbase, cbase, len, s);
            } else {
                const T *xs = x + (n0 + b) * C * H * W;
                for (ptrdiff_t c = 0; c < C; c++) {
                    for (ptrdiff_t i = 0; i < kh; i++) {
                        const ptrdiff_t row = rbase + i;
                        T *restrict dk = panel + ((c * kh + i) * kw) * NR + t;
                        if (row < 0 || row >= H) {
                            for (ptrdiff_t j = 0; j < kw; j++)
                                memset(dk + j * NR, 0, (size_t)len * sizeof(T));
                            continue;
                        }
                        const T *xr = xs + (c * H + row) * W;
                        for (ptrdiff_t j = 0; j < kw; j++)
                            NAME(copy_run)(dk + j * NR, xr, cbase + j, len, s, W);
                    }
                }
            }
            t += len;
        }
        if (jn < NR) {
            for (ptrdiff_t k = 0; k < K; k++)
                memset(panel + k * NR + jn, 0, (size_t)(NR - jn) * sizeof(T));
        }
        /* every filter block's tile over a block of KC panel rows (24 KB: they stay in L1 for
         * all the filter blocks; a whole panel, K x NR, is larger than L1 from K = 384), then
         * the next rows on top: per output, still one chain over k */
        for (ptrdiff_t k0 = 0; k0 < K; k0 += KC) {
            const ptrdiff_t kc = K - k0 < KC ? K - k0 : KC;
            for (ptrdiff_t ob = 0; ob < nob; ob++)
                NAME(tile)(kc, wp + (ob * K + k0) * ECP_MR, 8, 1, panel + k0 * NR, NR,
                               tile + ob * ECP_MR * NR, NR, k0 > 0);
        }
        /* the panel's outputs are one run of y when they lie in one sample */
        const int contiguous = yoff[jn - 1] - yoff[0] == jn - 1;
        for (ptrdiff_t ob = 0; ob < nob; ob++) {
            const ptrdiff_t mn = O - ob * ECP_MR < ECP_MR ? O - ob * ECP_MR : ECP_MR;
            for (ptrdiff_t m = 0; m < mn; m++) {
                const ptrdiff_t o = ob * ECP_MR + m;
                const T bo = bias[o];
                T *yo = y + o * plane;
                const T *tr = tile + (ob * ECP_MR + m) * NR;
                if (contiguous) {
                    T *restrict yc = yo + yoff[0];
                    for (ptrdiff_t t = 0; t < jn; t++) yc[t] = tr[t] + bo;
                } else {
                    for (ptrdiff_t t = 0; t < jn; t++) yo[yoff[t]] = tr[t] + bo;
                }
            }
        }
    }
}


/* The forward pass for short output rows ("pixel rows"): the 8 x NR register tile holds
 * 8 pixels x NR filters: A = the pixels' windows (broadcast), B = Wv. A group of 8 pixels whose
 * windows lie inside the plane is read in place (tile_x, through koff, the offsets of the
 * window elements: no copy at all);
 * the others are packed one pixel per row (pack_window: a masked copy per window row,
 * cheaper than pack_run's per-(c, i, j) copies when a run holds few pixels). Same outputs,
 * same summation order per output as direct_item. Pixels go in blocks of ECP_ROWS_GROUPS
 * groups of 8, so that each block of Wv rows serves several tiles from L1. rpanel: ECP_ROWS_PIX*K + VL
 * scratch, tile: ceil(O/NR) * ECP_ROWS_PIX * NR, koff: ecp_window_offsets (K entries), or NULL to pack
 * every group (a sample's planes larger than an int can index). */
TARGET static void NAME(direct_rows_item)(const T *restrict x, ptrdiff_t C, ptrdiff_t H,
                                          ptrdiff_t W, const T *restrict wv, ptrdiff_t O,
                                          ptrdiff_t kh, ptrdiff_t kw, const T *restrict bias,
                                          T *restrict y, ptrdiff_t hq, ptrdiff_t wq, ptrdiff_t n0,
                                          ptrdiff_t nb, ptrdiff_t r0, ptrdiff_t nr, ptrdiff_t ph,
                                          ptrdiff_t pw, ptrdiff_t s, ptrdiff_t oy, ptrdiff_t ox,
                                          T *restrict rpanel, T *restrict tile,
                                          const int *restrict koff)
{
    const ptrdiff_t NR = 2 * VL, K = C * kh * kw, P = nr * wq, ncols = nb * P;
    const ptrdiff_t plane = hq * wq, nov = (O + NR - 1) / NR, G = ECP_ROWS_GROUPS;
    const ptrdiff_t KC = 24576 / (NR * (ptrdiff_t)sizeof(T));
    ptrdiff_t yoff[ECP_ROWS_GROUPS * ECP_MR];
    const T *px[ECP_ROWS_GROUPS][ECP_MR];  /* window corners of the groups read in place */
    int inplace[ECP_ROWS_GROUPS];
    for (ptrdiff_t j0 = 0; j0 < ncols; j0 += G * ECP_MR) {
        const ptrdiff_t jn = ncols - j0 < G * ECP_MR ? ncols - j0 : G * ECP_MR;
        const ptrdiff_t ng = (jn + ECP_MR - 1) / ECP_MR;
        /* a group of 8 pixels whose windows all lie inside the plane is read in place (the
         * tile gathers its broadcasts from x through koff); the others are packed, one pixel
         * per row of rpanel (zeros outside the plane) */
        for (ptrdiff_t gi = 0; gi < ng; gi++) {
            inplace[gi] = koff != NULL;
            for (ptrdiff_t t = gi * ECP_MR; t < (gi + 1) * ECP_MR; t++) {
                if (t >= jn) { px[gi][t - gi * ECP_MR] = px[gi][0]; continue; }  /* unused */
                const ptrdiff_t g = j0 + t, b = g / P, p = g % P, rr = p / wq, qq = p % wq;
                const ptrdiff_t rbase = oy + s * (r0 + rr) - ph, cbase = ox + s * qq - pw;
                yoff[t] = (n0 + b) * O * plane + r0 * wq + p;
                if (rbase < 0 || rbase + kh > H || cbase < 0 || cbase + kw > W) {
                    inplace[gi] = 0;   /* (no corner pointer outside the array: x stands in) */
                    px[gi][t - gi * ECP_MR] = x;
                } else {
                    px[gi][t - gi * ECP_MR] = x + (n0 + b) * C * H * W + rbase * W + cbase;
                }
            }
            if (inplace[gi]) continue;
            for (ptrdiff_t t = gi * ECP_MR; t < (gi + 1) * ECP_MR; t++) {
                if (t >= jn) {   /* unused rows of a partial group */
                    memset(rpanel + t * K, 0, (size_t)K * sizeof(T));
                    continue;
                }
                const ptrdiff_t g = j0 + t, b = g / P, p = g % P, rr = p / wq, qq = p % wq;
                NAME(pack_window)(rpanel + t * K, x + (n0 + b) * C * H * W, C, H, W, kh, kw,
                                      oy + s * (r0 + rr) - ph, ox + s * qq - pw);
            }
        }
        /* a block of KC rows of Wv (24 KB, kept in L1) against every group of 8 pixels,
         * then the next block on top: per output, still one chain over k */
        for (ptrdiff_t k0 = 0; k0 < K; k0 += KC) {
            const ptrdiff_t kc = K - k0 < KC ? K - k0 : KC;
            for (ptrdiff_t ob = 0; ob < nov; ob++)
                for (ptrdiff_t gi = 0; gi < ng; gi++) {
                    T *tg = tile + (ob * G + gi) * ECP_MR * NR;
                    if (inplace[gi])
                        NAME(tile_x)(kc, px[gi], koff + k0, wv + (ob * K + k0) * NR, NR,
                                         tg, NR, k0 > 0);
                    else
                        NAME(tile)(kc, rpanel + gi * ECP_MR * K + k0, 1, K,
                                       wv + (ob * K + k0) * NR, NR, tg, NR, k0 > 0);
                }
        }
        for (ptrdiff_t ob = 0; ob < nov; ob++) {
            const ptrdiff_t on = O - ob * NR < NR ? O - ob * NR : NR;
            for (ptrdiff_t t = 0; t < jn; t++) {
                T *yo = y + yoff[t] + ob * NR * plane;
                const T *tr = tile + (ob * G * ECP_MR + t) * NR;
                const T *bo = bias + ob * NR;
                for (ptrdiff_t o = 0; o < on; o++) yo[o * plane] = tr[o] + bo[o];
            }
        }
    }
}
