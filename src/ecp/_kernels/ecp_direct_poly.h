/* The stride-2 3x3 convolution as the sum of its four polyphase stride-1 sub-convolutions,
 * each by Winograd F(2x2, 2x2) (the taps w[a::2, b::2]: 2x2, 2x1, 1x2, 1x1, the short ones
 * padded with a zero tap whose products are skipped): 25 products per 2 x 2 outputs instead of
 * 36. Written once over the vector layer and the register tile (ecp_direct_tile.h), included by
 * ecp_direct_inst.h once per (type, ISA); no include guard on purpose.
 *
 * Output tile (tr, tc) is output rows 2tr, 2tr+1 x columns 2tc, 2tc+1; it reads the 5 x 5 input
 * patch at (4tr - ph, 4tc - pw), zeros outside the plane (ph, pw may be negative: a grid
 * offset). F(2, 2) along each axis: B^T = [1 -1 0; 0 1 0; 0 -1 1], G = [1 0; 1 1; 0 1],
 * A^T = [1 1 0; 0 1 1]; on the patch's rows p0..p4 the transformed rows are
 *   R0 = p0 - p2, R1 = p2, R2 = p4 - p2 (phase 0: rows 0, 2, 4; xi rows 0, 1, 2),
 *   R3 = p1 - p3, R4 = p3                (phase 1: rows 1, 3, 5, its xi row 2 skipped),
 * the same on columns: 25 streams (R, Q), each C rows of NR tiles. The streams of one xi =
 * (r, c) lie together (ecp_poly_layout), so that each xi is one product M[xi] = U[xi] V[xi]
 * over 4C, 2C or C rows. Every output is computed from its own tile's data alone in a fixed
 * order, so results do not depend on the grouping of tiles into items nor on the thread count. */

/* V[(R, Q)][c][t] of tiles j0 .. j0+jn-1 of an item (as wino_vin's), at vbuf[soff[R*5+Q] + c*NR
 * + t - j0]; columns jn .. NR-1 untouched. */
TARGET
static inline void NAME(poly_vin)(const T *restrict x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                                  ptrdiff_t n0, ptrdiff_t tr0, ptrdiff_t tw, ptrdiff_t per,
                                  ptrdiff_t j0, ptrdiff_t jn, ptrdiff_t ph, ptrdiff_t pw,
                                  T *restrict vbuf, const ptrdiff_t *soff)
{
    const ptrdiff_t NR = 2 * VL, HW = H * W;
    for (ptrdiff_t t = 0; t < jn;) {
        const ptrdiff_t g = j0 + t, b = g / per, p = g % per, tr = tr0 + p / tw, tc = p % tw;
        const ptrdiff_t len = tw - tc < jn - t ? tw - tc : jn - t;
        const ptrdiff_t rbase = 4 * tr - ph;
        const T *xs = x + (n0 + b) * C * HW;
        for (ptrdiff_t q0 = 0; q0 < len; q0 += VL) {
            /* patch column k of the step's tiles: every fourth lane of four masked loads */
            const ptrdiff_t c0 = 4 * (tc + q0) - pw, nq = len - q0 < VL ? len - q0 : VL;
            MK mk[5][4];
            for (int k = 0; k < 5; k++)
                for (int j = 0; j < 4; j++)
                    mk[k][j] = VEC(mask)(ecp_lanes(-(c0 + k + j * VL), W - (c0 + k + j * VL), VL));
            const MK sm = VEC(mask)(ecp_lanes(0, nq, VL));
            const int whole = nq == VL;
            for (ptrdiff_t c = 0; c < C; c++) {
                V a[5][5];   /* a[i][Q]: patch row i, transformed column Q */
                for (int i = 0; i < 5; i++) {
                    const ptrdiff_t row = rbase + i;
                    if (row < 0 || row >= H) {
                        for (int k = 0; k < 5; k++) a[i][k] = VEC(zero)();
                        continue;
                    }
                    const T *xr = xs + c * HW + row * W + c0;
                    V e[5];
                    for (int k = 0; k < 5; k++)
                        e[k] = VEC(even2)(VEC(even2)(VEC(loadz)(mk[k][0], xr + k),
                                                     VEC(loadz)(mk[k][1], xr + k + VL)),
                                          VEC(even2)(VEC(loadz)(mk[k][2], xr + k + 2 * VL),
                                                     VEC(loadz)(mk[k][3], xr + k + 3 * VL)));
                    a[i][0] = e[0] - e[2];
                    a[i][1] = e[2];
                    a[i][2] = e[4] - e[2];
                    a[i][3] = e[1] - e[3];
                    a[i][4] = e[3];
                }
                T *v = vbuf + c * NR + t + q0;
                for (int q = 0; q < 5; q++) {   /* rows: the same combination */
                    const V r[5] = {a[0][q] - a[2][q], a[2][q], a[4][q] - a[2][q],
                                    a[1][q] - a[3][q], a[3][q]};
                    for (int R = 0; R < 5; R++) {
                        if (whole)
                            VEC(store)(v + soff[R * 5 + q], r[R]);
                        else
                            VEC(storem)(v + soff[R * 5 + q], sm, r[R]);
                    }
                }
            }
        }
        t += len;
    }
}

/* Output tile rows tr0 .. tr0+ntr-1 of samples n0 .. n0+nb-1 of y (N, O, hq, wq), the stride-2
 * convolution of x (N, C, H, W) with the 3x3 filters whose transform u is (ecp_poly_weights),
 * y[n][o][r][q] = bias[o] + sum w[o][c][i][j] x[n][c][2r + i - ph][2q + j - pw] (zeros outside
 * the plane; no bias when NULL). Scratch (per thread): vbuf (25*C + 9)*NR, mbuf 9*(nob*8 + 1)*NR
 * (nob = ceil(O/8)), rbuf 4*(2*NR + 2) elements. */
TARGET
static void NAME(poly_item)(const T *restrict x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                            const T *restrict u, ptrdiff_t O, const T *restrict bias,
                            T *restrict y, ptrdiff_t hq, ptrdiff_t wq, ptrdiff_t n0, ptrdiff_t nb,
                            ptrdiff_t tr0, ptrdiff_t ntr, ptrdiff_t ph, ptrdiff_t pw,
                            T *restrict vbuf, T *restrict mbuf, T *restrict rbuf)
{
    const ptrdiff_t NR = 2 * VL, tw = (wq + 1) / 2, per = ntr * tw, ncols = nb * per;
    const ptrdiff_t nob = (O + ECP_MR - 1) / ECP_MR, RB = 2 * NR + 2;
    const ptrdiff_t MS = nob * ECP_MR * NR + NR;   /* a line more: no L1 set conflicts */
    const ptrdiff_t KC = 24576 / (NR * (ptrdiff_t)sizeof(T));
    ptrdiff_t kx[9], voff[9], uoff[9], soff[25];
    ecp_poly_layout(C, NR, nob * ECP_MR, kx, voff, uoff, soff);
    for (ptrdiff_t j0 = 0; j0 < ncols; j0 += NR) {
        const ptrdiff_t jn = ncols - j0 < NR ? ncols - j0 : NR;
        NAME(poly_vin)(x, C, H, W, n0, tr0, tw, per, j0, jn, ph, pw, vbuf, soff);
        if (jn < NR)   /* columns no tile fills: zeros (their products are never read) */
            for (ptrdiff_t s = 0; s < 25; s++)
                for (ptrdiff_t k = 0; k < C; k++)
                    memset(vbuf + soff[s] + k * NR + jn, 0, (size_t)(NR - jn) * sizeof(T));
        /* 9 products, each a block of KC rows of V (kept in L1) against every filter block */
        for (ptrdiff_t xi = 0; xi < 9; xi++)
            for (ptrdiff_t k0 = 0; k0 < kx[xi]; k0 += KC) {
                const ptrdiff_t kc = kx[xi] - k0 < KC ? kx[xi] - k0 : KC;
                for (ptrdiff_t ob = 0; ob < nob; ob++)
                    NAME(tile)(kc, u + uoff[xi] + (ob * kx[xi] + k0) * ECP_MR, 8, 1,
                               vbuf + voff[xi] + k0 * NR, NR, mbuf + xi * MS + ob * ECP_MR * NR,
                               NR, k0 > 0);
            }
        /* output transform: y = A^T M A, A^T = [1 1 0; 0 1 1] */
        for (ptrdiff_t t = 0; t < jn;) {
            const ptrdiff_t g = j0 + t, b = g / per, p = g % per, tr = tr0 + p / tw, tc = p % tw;
            const ptrdiff_t len = tw - tc < jn - t ? tw - tc : jn - t;
            const ptrdiff_t row = 2 * tr, col = 2 * tc;
            const ptrdiff_t ncy = wq - col < 2 * len ? wq - col : 2 * len;
            const int two = row + 1 < hq;
            T *restrict y0 = rbuf, *restrict y1 = rbuf + RB;
            for (ptrdiff_t o = 0; o < O; o++) {
                const T bo = bias ? bias[o] : (T)0;
                const T *restrict m = mbuf + o * NR + t;
                for (ptrdiff_t q = 0; q < len; q++) {
                    const T m0 = m[0 * MS + q], m1 = m[1 * MS + q], m2 = m[2 * MS + q];
                    const T m3 = m[3 * MS + q], m4 = m[4 * MS + q], m5 = m[5 * MS + q];
                    const T m6 = m[6 * MS + q], m7 = m[7 * MS + q], m8 = m[8 * MS + q];
                    const T s00 = m0 + m3, s01 = m1 + m4, s02 = m2 + m5;
                    const T s10 = m3 + m6, s11 = m4 + m7, s12 = m5 + m8;
                    y0[2 * q] = s00 + s01 + bo;
                    y0[2 * q + 1] = s01 + s02 + bo;
                    y1[2 * q] = s10 + s11 + bo;
                    y1[2 * q + 1] = s11 + s12 + bo;
                }
                T *yo = y + ((n0 + b) * O + o) * hq * wq + row * wq + col;
                memcpy(yo, y0, (size_t)ncy * sizeof(T));
                if (two) memcpy(yo + wq, y1, (size_t)ncy * sizeof(T));
            }
            t += len;
        }
    }
}
