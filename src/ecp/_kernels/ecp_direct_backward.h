/* The backward kernel (dW and dx). Written once over the vector layer, the tiles and the
 * scatter (ecp_direct_tile.h, ecp_direct_scatter.h) and included by ecp_direct.h once per
 * (type, ISA); no include guard on purpose. */

/* Backward of ecp_direct_item for samples n0 .. n0+nb-1, in panels of NR output pixels
 * (koff != NULL, only when every window lies inside the plane: dW is summed from x in place by
 * tile_xt into dwacc laid out k-major -- nkb*8 rows of Ob = ceil(O/NR)*NR, koff:
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
 * Parts: only dwacc's 8-row blocks d0 .. d1-1 (k blocks when koff, else filter blocks: d1 at most
 * ceil(K/8) or ceil(O/8); none when d1 <= d0) and dx's channels c0 .. c1-1 (c1 <= C) are computed -- every element's sums the same whatever
 * the parts, so that tasks of parts of one item give the bits of the whole item. Summation order
 * is fixed by the shapes alone. */
TARGET static void NAME(direct_backward_item)(
    const T *restrict x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, const T *restrict dy,
    ptrdiff_t O, ptrdiff_t hq, ptrdiff_t wq, const T *restrict wt, ptrdiff_t kh, ptrdiff_t kw,
    ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t ph, ptrdiff_t pw, ptrdiff_t s, ptrdiff_t oy,
    ptrdiff_t ox, T *restrict dwacc, T *restrict dx, T *restrict rpanel, T *restrict dpanel,
    T *restrict xpanel, const int *restrict koff, int fresh, ptrdiff_t d0, ptrdiff_t d1,
    ptrdiff_t c0, ptrdiff_t c1)
{
    const ptrdiff_t NR = 2 * VL, K = C * kh * kw, Kp = (K + NR - 1) / NR * NR;
    const ptrdiff_t P = hq * wq, ncols = nb * P, HW = H * W;
    const ptrdiff_t Ob = (O + NR - 1) / NR * NR;
    const ptrdiff_t CC0 = 16384 / (kh * kw * NR * (ptrdiff_t)sizeof(T)), CC = CC0 > 0 ? CC0 : 1;
    const T *pix[2 * VL];
    NAME(scatter_plan) plan;
    plan.nch = 0;   /* (made per run before use; set here for the compiler's flow analysis) */
    /* stride 2, rows that fit a vector, panels of whole samples: each panel writes its
     * samples' dx planes whole (scatter_planes_s2); else dx is zeroed and added into */
    const int planes = dx && s == 2 && 2 * wq + kw <= VL + 1 && NR % P == 0
                       && 2 * (hq - 1) + kh <= ECP_S2_ROWS;
    if (dwacc && d1 <= d0) dwacc = NULL;   /* no dW part */
    if (dx && c1 <= c0) dx = NULL;         /* no dx part */
    if (!dwacc && !dx) return;             /* an empty part (more parts than blocks or channels) */
    if (dx && !planes)
        for (ptrdiff_t n = n0; n < n0 + nb; n++)
            memset(dx + (n * C + c0) * HW, 0, (size_t)((c1 - c0) * HW) * sizeof(T));
    for (ptrdiff_t j0 = 0; j0 < ncols; j0 += NR) {
        const ptrdiff_t jn = ncols - j0 < NR ? ncols - j0 : NR;
        const int acc = !(fresh && j0 == 0);   /* fresh dwacc: the first panel's tiles store */
        /* dY of the panel's pixels: dpanel[o][t] (zeros past jn) */
        for (ptrdiff_t t = 0; t < jn;) {
            const ptrdiff_t g = j0 + t, b = g / P, p = g % P;
            const ptrdiff_t len = P - p < jn - t ? P - p : jn - t;
            const T *dys = dy + (n0 + b) * O * P + p;
            for (ptrdiff_t o = 0; o < O; o++)
                memcpy(dpanel + o * NR + t, dys + o * P, (size_t)len * sizeof(T));
            t += len;
        }
        if (jn < NR)
            for (ptrdiff_t o = 0; o < O; o++)
                memset(dpanel + o * NR + jn, 0, (size_t)(NR - jn) * sizeof(T));
        if (dwacc && koff) {
            /* every window inside the plane: dW (k-major, rows Ob apart) from x in place,
             * against dY as rows of filters (rpanel[t][o], zeros past O) */
            for (ptrdiff_t t = 0; t < jn; t++) {
                const ptrdiff_t g = j0 + t, b = g / P, p = g % P, rr = p / wq, qq = p % wq;
                pix[t] = x + (n0 + b) * C * HW + (oy + s * rr - ph) * W + ox + s * qq - pw;
                const T *dys = dy + (n0 + b) * O * P + p;
                for (ptrdiff_t o = 0; o < O; o++) rpanel[t * Ob + o] = dys[o * P];
                for (ptrdiff_t o = O; o < Ob; o++) rpanel[t * Ob + o] = (T)0;
            }
            for (ptrdiff_t kb = d0; kb < d1; kb++)
                for (ptrdiff_t ob = 0; ob < Ob; ob += NR)
                    NAME(tile_xt)(jn, pix, koff + kb * ECP_MR, rpanel + ob, Ob,
                                      dwacc + kb * ECP_MR * Ob + ob, Ob, acc);
        }
        /* the windows, one pixel per row of rpanel (only dW needs them) */
        for (ptrdiff_t t = 0; dwacc && !koff && t < jn; t++) {
            const ptrdiff_t g = j0 + t, b = g / P, p = g % P, rr = p / wq, qq = p % wq;
            const T *xs = x + (n0 + b) * C * HW;
            const ptrdiff_t rbase = oy + s * rr - ph, cbase = ox + s * qq - pw;
            T *restrict rt = rpanel + t * Kp;
            NAME(pack_window)(rt, xs, C, H, W, kh, kw, rbase, cbase);
            if (K < Kp) memset(rt + K, 0, (size_t)(Kp - K) * sizeof(T));
        }
        for (ptrdiff_t ob = d0; dwacc && !koff && ob < d1; ob++)
            for (ptrdiff_t kb = 0; kb < Kp; kb += NR)
                NAME(tile)(jn, dpanel + ob * ECP_MR * NR, 1, NR, rpanel + kb, Kp,
                               dwacc + ob * ECP_MR * Kp + kb, Kp, acc);
        if (!dx) continue;
        /* dcols = W^T dY a block of channels at a time, each block added into dx while its
         * rows are still in L1 (CC channels: about 16 KB of the panel) */
        for (ptrdiff_t cb = c0, kbd = c0 * kh * kw / ECP_MR; cb < c1; cb += CC) {
            const ptrdiff_t ce = c1 - cb < CC ? c1 : cb + CC;
            const ptrdiff_t kbe = (ce * kh * kw + ECP_MR - 1) / ECP_MR;
            for (; kbd < kbe; kbd++) {   /* (a half-full panel: its half only) */
                if (jn <= VL)
                    NAME(tile_h)(O, wt + kbd * O * ECP_MR, 8, 1, dpanel, NR,
                                     xpanel + kbd * ECP_MR * NR, NR);
                else
                    NAME(tile)(O, wt + kbd * O * ECP_MR, 8, 1, dpanel, NR,
                                   xpanel + kbd * ECP_MR * NR, NR, 0);
            }
            if (planes) {   /* the block's planes of the panel's samples, written whole */
                for (ptrdiff_t t = 0; t < jn; t += P)
                    NAME(scatter_planes_s2)(dx + (n0 + (j0 + t) / P) * C * HW, xpanel + t,
                                                NR, cb, ce, H, W, kh, kw, oy - ph, ox - pw,
                                                hq, wq);
                continue;
            }
            /* add the block's dcols into dx, one run of same-row pixels at a time */
            for (ptrdiff_t t = 0; t < jn;) {
                const ptrdiff_t g = j0 + t, b = g / P, p = g % P, rr = p / wq, qq = p % wq;
                const ptrdiff_t len = wq - qq < jn - t ? wq - qq : jn - t;
                T *dxs = dx + (n0 + b) * C * HW;
                const ptrdiff_t rbase = oy + s * rr - ph, cbase = ox + s * qq - pw;
                if (s == 2 && 2 * len + kw <= VL + 1) {
                    NAME(scatter_run_s2)(dxs, xpanel + t, NR, cb, ce, H, W, kh, kw, rbase,
                                             cbase, len);
                    t += len;
                    continue;
                }
                if (kw <= VL) NAME(scatter_plan_make)(&plan, cbase, W, len, kw, s);
                for (ptrdiff_t i = 0; i < kh; i++)     /* i-major, as scatter_run_s2 */
                    for (ptrdiff_t c = cb; c < ce; c++) {
                        const ptrdiff_t row = rbase + i;
                        if (row < 0 || row >= H) continue;
                        T *dr = dxs + c * HW + row * W;
                        const T *src = xpanel + (c * kh + i) * kw * NR + t;
                        if (kw <= VL) NAME(scatter_row)(dr, cbase, src, NR, kw, s, &plan);
                        else NAME(scatter_row_scalar)(dr, cbase, W, src, NR, len, kw, s);
                    }
                t += len;
            }
        }
    }
}

