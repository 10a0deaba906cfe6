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
 * order, so results do not depend on the grouping of tiles into items nor on the thread count.
 *
 * Tall tiles (3x3, polyt_item): output rows 4tr .. 4tr+3 x columns 2tc, 2tc+1 from the 9 x 5
 * patch at (8tr - ph, 4tc - pw); across as above, down the rows F(4, 2) at the points 0, 1, -1,
 * 2, inf on phase 0 (e_j = p_2j, j < 5, taps w[0], w[2]), B^T's rows scaled by 2, 2, 6, 6, 1:
 *   R0 = 2(e0 - e2) + t, R1 = (e1 + e2) - t, R2 = 2(e2 - e1) + (e2 - e3), R3 = t,
 *   R4 = (e4 - e2) - 2t  (t = e3 - e1),
 * and its rows at the finite points on phase 1 (o_j = p_2j+1, j < 4, tap w[1]; its inf point has
 * a zero tap): R5 .. R8 the same as R0 .. R3 of o; A^T = [1 1 1 1 0; 0 1 -1 2 0; 0 1 1 4 0;
 * 0 1 -1 8 1]. 45 streams, 15 xi (ecp_polyt_layout): 45 products per 4 x 2 outputs, against 50 on
 * square tiles. */

/* V[(R, Q)][c][t] of tiles j0 .. j0+jn-1 of an item (as wino_vin's), at vbuf[soff[R*np+Q] + c*NR
 * + t - j0] (np = k + 2); columns jn .. NR-1 zeros; tall (k = 3, no box): the 9 rows R of the tall
 * tiles' patch. box (k = 3): the patch is of x's 2 x 2 box sums,
 * p'[i][j] = (p[i][j] + p[i+1][j]) + (p[i][j+1] + p[i+1][j+1]) of the 6 x 6 patch p at the same
 * place (easy average pooling of 3x3 layers: the stride-2 3x3 convolution of those sums, the
 * 1/4 in the filters). The block's NR columns are two steps of VL lanes, each stored whole; a
 * step's lanes come in segments, the runs of tiles of one tile row in it, each merged into the
 * step's loads under its own masks (a lane no segment has stays zero; a load whose mask is empty
 * is not made). half (jn <= VL): the first step only, columns VL .. NR-1 left as they were. */
TARGET
static inline __attribute__((always_inline)) void NAME(poly_vin)(
    const int k, const int box, const int tall, const T *restrict x, ptrdiff_t C, ptrdiff_t H,
    ptrdiff_t W, ptrdiff_t n0, ptrdiff_t tr0, ptrdiff_t tw, ptrdiff_t per, ptrdiff_t j0,
    ptrdiff_t jn, ptrdiff_t ph, ptrdiff_t pw, T *restrict vbuf, const ptrdiff_t *soff, int half)
{
    const ptrdiff_t NR = 2 * VL, HW = H * W;
    const int np = k + 2;               /* transformed columns (and rows of square tiles): 5 or 6 */
    const int nl = box ? 6 : np;        /* patch columns read */
    const int nrl = tall ? 9 : nl;      /* patch rows read */
    /* segment g: lanes sl[g] .. sh[g]-1 of its step, patch rows sr[g] + i, the patch of lane 0
     * at plane column sc[g] (so lane l's at sc[g] + 4l), its sample's planes at x + sx[g] */
    ptrdiff_t sl[2 * VL], sh[2 * VL], sr[2 * VL], sc[2 * VL], sx[2 * VL];
    int seg0[3], ng = 0;
    for (int st = 0; st < 2; st++) {
        const ptrdiff_t lo = st * VL, hi = jn < lo + VL ? jn : lo + VL;
        seg0[st] = ng;
        for (ptrdiff_t t = lo; t < hi; ng++) {
            const ptrdiff_t g = j0 + t, b = g / per, p = g % per, tr = tr0 + p / tw, tc = p % tw;
            const ptrdiff_t len = tw - tc < hi - t ? tw - tc : hi - t;
            sl[ng] = t - lo;
            sh[ng] = t - lo + len;
            sr[ng] = (tall ? 8 : 4) * tr - ph;
            sc[ng] = 4 * (tc - (t - lo)) - pw;
            sx[ng] = (n0 + b) * C * HW;
            t += len;
        }
    }
    seg0[2] = ng;
    /* the masks of a segment's loads from window columns kk + j*VL .. (kk = 0: the four loads
     * of columns 4l .. 4l+3; kk = 4: of columns 4l + 4, 4l + 5): its lanes' columns, in the plane */
    MK mk[2 * VL][2][4];
    unsigned nd[2 * VL];   /* bit (kk/4)*4 + j: the load's mask is not empty (else not made) */
    for (int g = 0; g < ng; g++) {
        nd[g] = 0;
        for (int kk = 0; kk < 5; kk += 4)
            for (int j = 0; j < 4; j++) {
                const ptrdiff_t col = sc[g] + kk + j * VL;   /* plane column of the load's lane 0 */
                const ptrdiff_t a = 4 * sl[g] - j * VL, z = 4 * sh[g] - j * VL;
                const unsigned bits = ecp_lanes(a > -col ? a : -col, z < W - col ? z : W - col, VL);
                mk[g][kk / 4][j] = VEC(mask)(bits);
                nd[g] |= (bits != 0) << ((kk / 4) * 4 + j);
            }
    }
    for (ptrdiff_t c = 0; c < C; c++)
        for (int st = 0; st < (half ? 1 : 2); st++) {
            V a[9][6];   /* a[i][Q]: patch row i, transformed column Q */
            V prev[6];   /* box: the patch row before */
            for (int i = 0; i < nrl; i++) {
                V l[4], m[4], e[6];
                for (int j = 0; j < 4; j++) l[j] = m[j] = VEC(zero)();
                for (int g = seg0[st]; g < seg0[st + 1]; g++) {
                    const ptrdiff_t row = sr[g] + i;
                    if (row < 0 || row >= H) continue;   /* zeros */
                    const T *xr = x + sx[g] + c * HW + row * W + sc[g];
                    for (int j = 0; j < 4; j++)
                        if (nd[g] >> j & 1) l[j] = VEC(loadm)(l[j], mk[g][0][j], xr + j * VL);
                    for (int j = 0; j < 4; j++)
                        if (nd[g] >> (4 + j) & 1) m[j] = VEC(loadm)(m[j], mk[g][1][j], xr + 4 + j * VL);
                }
                /* columns 4l + kk, kk < 4: even/odd lanes twice; column 4l + 4 (tile l's fifth,
                 * tile l+1's first) and 4l + 5: the even and odd lanes of the m loads */
                const V ev0 = VEC(even2)(l[0], l[1]), ev1 = VEC(even2)(l[2], l[3]);
                const V od0 = VEC(odd2)(l[0], l[1]), od1 = VEC(odd2)(l[2], l[3]);
                e[0] = VEC(even2)(ev0, ev1);
                e[2] = VEC(odd2)(ev0, ev1);
                e[1] = VEC(even2)(od0, od1);
                e[3] = VEC(odd2)(od0, od1);
                e[4] = VEC(even2)(VEC(even2)(m[0], m[1]), VEC(even2)(m[2], m[3]));
                if (nl == 6) e[5] = VEC(even2)(VEC(odd2)(m[0], m[1]), VEC(odd2)(m[2], m[3]));
                if (box) {   /* transformed row i - 1 from the box sums of rows i - 1, i */
                    V sr2[6], bx[5];
                    for (int q = 0; q < 6; q++) {
                        sr2[q] = prev[q] + e[q];
                        prev[q] = e[q];
                    }
                    if (i == 0) continue;
                    for (int q = 0; q < 5; q++) bx[q] = sr2[q] + sr2[q + 1];
                    for (int q = 0; q < 5; q++) e[q] = bx[q];
                }
                {
                    const int r = box ? i - 1 : i;
                    a[r][0] = e[0] - e[2];
                    a[r][1] = e[2];
                    a[r][2] = e[4] - e[2];
                    a[r][3] = e[1] - e[3];
                    a[r][4] = e[3];
                    if (k == 4) a[r][5] = e[5] - e[3];
                }
            }
            T *v = vbuf + c * NR + st * VL;
            for (int q = 0; q < np; q++) {
                if (tall) {   /* rows: F(4, 2)'s B^T on phase 0 (e) and, rows 0 .. 3, phase 1 (o) */
                    const V e0 = a[0][q], e1 = a[2][q], e2 = a[4][q], e3 = a[6][q], e4 = a[8][q];
                    const V o0 = a[1][q], o1 = a[3][q], o2 = a[5][q], o3 = a[7][q];
                    const V te = e3 - e1, to = o3 - o1;
                    const V r[9] = {(e0 - e2) * (T)2 + te, (e1 + e2) - te, (e2 - e1) * (T)2 + (e2 - e3),
                                    te, (e4 - e2) - te * (T)2,
                                    (o0 - o2) * (T)2 + to, (o1 + o2) - to, (o2 - o1) * (T)2 + (o2 - o3), to};
                    for (int R = 0; R < 9; R++) VEC(store)(v + soff[R * np + q], r[R]);
                } else {   /* rows: the same combination as the columns */
                    V r[6] = {a[0][q] - a[2][q], a[2][q], a[4][q] - a[2][q],
                              a[1][q] - a[3][q], a[3][q], VEC(zero)()};
                    if (k == 4) r[5] = a[5][q] - a[3][q];
                    for (int R = 0; R < np; R++) VEC(store)(v + soff[R * np + q], r[R]);
                }
            }
        }
}

/* Filter blocks ob0 .. ob1-1's nxi products M[xi] = U[xi] V[xi] (9, or 15 on tall tiles; block
 * ob at mbuf + xi*MS + ob*8*NR), KC rows of V a pass against every block of the range, each M's
 * chains over the rows in order; half (only where KC takes every chain whole): M's first VL
 * columns only, by the half tile. Out of line: inlined into the item beside the transforms, the
 * tile's accumulators were spilled to the stack in some instances. */
TARGET
static __attribute__((noinline)) void NAME(poly_products)(const T *restrict u, const T *restrict vbuf,
                                                          T *restrict mbuf, const ptrdiff_t *kx,
                                                          const ptrdiff_t *voff, const ptrdiff_t *uoff,
                                                          int nxi, ptrdiff_t ob0, ptrdiff_t ob1,
                                                          ptrdiff_t MS, ptrdiff_t KC, int half)
{
    const ptrdiff_t NR = 2 * VL;
    for (ptrdiff_t xi = 0; xi < nxi; xi++)
        for (ptrdiff_t k0 = 0; k0 < kx[xi]; k0 += KC) {
            const ptrdiff_t kc = kx[xi] - k0 < KC ? kx[xi] - k0 : KC;
            for (ptrdiff_t ob = ob0; ob < ob1; ob++)
                if (half)   /* (each chain one call) its first VL columns: the same sums */
                    NAME(tile_h)(kc, u + uoff[xi] + ob * kx[xi] * ECP_MR, 8, 1, vbuf + voff[xi], NR,
                                 mbuf + xi * MS + ob * ECP_MR * NR, NR);
                else
                    NAME(tile)(kc, u + uoff[xi] + (ob * kx[xi] + k0) * ECP_MR, 8, 1, vbuf + voff[xi] + k0 * NR,
                               NR, mbuf + xi * MS + ob * ECP_MR * NR, NR, k0 > 0);
        }
}

/* The output transform of filters o0 .. o1-1 of the block's tiles (polyk_item's), y = A^T M A,
 * across A^T = [1 1 0; 0 1 1], down the rows the same (square tiles, 9 xi) or, tall, F(4, 2)'s
 * A^T = [1 1 1 1 0; 0 1 -1 2 0; 0 1 1 4 0; 0 1 -1 8 1] (15 xi); VL/2 tiles a step, their two output
 * columns interleaved (ilv) into one vector per output row, bias added, rows past hq not written. */
TARGET
static inline __attribute__((always_inline)) void NAME(poly_out)(
    const int tall, const T *restrict mbuf, ptrdiff_t MS, const T *restrict bias, T *restrict y,
    ptrdiff_t O, ptrdiff_t hq, ptrdiff_t wq, ptrdiff_t n0, ptrdiff_t tr0, ptrdiff_t tw,
    ptrdiff_t per, ptrdiff_t j0, ptrdiff_t jn, ptrdiff_t o0, ptrdiff_t o1)
{
    const ptrdiff_t NR = 2 * VL, th = tall ? 4 : 2;
    for (ptrdiff_t t = 0; t < jn;) {
        const ptrdiff_t g = j0 + t, b = g / per, p = g % per, tr = tr0 + p / tw, tc = p % tw;
        const ptrdiff_t len = tw - tc < jn - t ? tw - tc : jn - t;
        const ptrdiff_t row = th * tr, col = 2 * tc, nst = (len + VL / 2 - 1) / (VL / 2);
        const ptrdiff_t nrow = hq - row < th ? hq - row : th;   /* output rows of the tile row */
        HMK hm[4];
        MK om[4];
        for (ptrdiff_t k = 0; k < nst; k++) {   /* nst <= NR / (VL/2) = 4 */
            const ptrdiff_t q = k * (VL / 2);
            hm[k] = VEC(hmask)(ecp_lanes(0, len - q, VL / 2));
            om[k] = VEC(mask)(ecp_lanes(0, wq - col - 2 * q, VL));
        }
        for (ptrdiff_t o = o0; o < o1; o++) {
            const T bo = bias ? bias[o] : (T)0;
            const T *restrict m = mbuf + o * NR + t;
            T *yo = y + ((n0 + b) * O + o) * hq * wq + row * wq + col;
            for (ptrdiff_t k = 0; k < nst; k++) {
                const ptrdiff_t q = k * (VL / 2);
                HV mm[15], out[4][2];   /* out[i][j]: output row i, column j */
                for (int xi = 0; xi < (tall ? 15 : 9); xi++) mm[xi] = VEC(hloadz)(hm[k], m + xi * MS + q);
                if (tall) {   /* across, then down */
                    for (int j = 0; j < 2; j++) {
                        HV s[5];
                        for (int r = 0; r < 5; r++) s[r] = mm[3 * r + j] + mm[3 * r + j + 1];
                        const HV a12 = s[1] + s[2], d12 = s[1] - s[2];
                        out[0][j] = (s[0] + a12) + s[3] + bo;
                        out[1][j] = d12 + s[3] * (T)2 + bo;
                        out[2][j] = a12 + s[3] * (T)4 + bo;
                        out[3][j] = (d12 + s[3] * (T)8) + s[4] + bo;
                    }
                } else {   /* down, then across */
                    const HV s00 = mm[0] + mm[3], s01 = mm[1] + mm[4], s02 = mm[2] + mm[5];
                    const HV s10 = mm[3] + mm[6], s11 = mm[4] + mm[7], s12 = mm[5] + mm[8];
                    out[0][0] = s00 + s01 + bo;
                    out[0][1] = s01 + s02 + bo;
                    out[1][0] = s10 + s11 + bo;
                    out[1][1] = s11 + s12 + bo;
                }
                for (ptrdiff_t i = 0; i < nrow; i++)
                    VEC(storem)(yo + i * wq + 2 * q, om[k], VEC(ilv)(out[i][0], out[i][1]));
            }
        }
        t += len;
    }
}

/* Output tile rows tr0 .. tr0+ntr-1 of samples n0 .. n0+nb-1 of y (N, O, hq, wq), the stride-2
 * convolution of x (N, C, H, W) with the k x k filters (k = 3 or 4) whose transform u is
 * ecp_poly_weights' of the same form, y[n][o][r][q] = bias[o] + sum
 * w[o][c][i][j] x[n][c][2r + i - ph][2q + j - pw] (zeros outside the plane; no bias when NULL).
 * k = 4: the phases' taps all 2 x 2, the patch 6 x 6 (phase-1 row R5 = p5 - p3, the same on
 * columns), 36 streams, every xi a product over 4C rows. tall (k = 3, no box): tiles of 4 x 2
 * outputs (a tile row is 4 output rows), 45 streams, 15 xi (ecp_polyt_layout). Scratch (per
 * thread): vbuf (ns*C + nxi)*NR, mbuf nxi*(nob*8 + 1)*NR elements (ns = (k + 2)^2 streams, or 45;
 * nxi = 9, or 15; nob = ceil(O/8)). */
TARGET
static inline __attribute__((always_inline)) void NAME(polyk_item)(
    const int k, const int box, const int tall, const T *restrict x, ptrdiff_t C, ptrdiff_t H,
    ptrdiff_t W, const T *restrict u, ptrdiff_t O, const T *restrict bias, T *restrict y,
    ptrdiff_t hq, ptrdiff_t wq, ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t tr0, ptrdiff_t ntr,
    ptrdiff_t ph, ptrdiff_t pw, T *restrict vbuf, T *restrict mbuf)
{
    const ptrdiff_t NR = 2 * VL, tw = (wq + 1) / 2, per = ntr * tw, ncols = nb * per;
    const ptrdiff_t nob = (O + ECP_MR - 1) / ECP_MR;
    const ptrdiff_t MS = nob * ECP_MR * NR + NR;   /* a line more: no L1 set conflicts */
    /* TP = 8: each xi's whole chain in one call (V and U stream from L2 either way: chunks only
     * cost the accumulators' round trips through M); else KC rows of V (24 KB) in L1 across the
     * blocks. A chain split over calls is the same chain (the tile's contract): the same bits. */
    const ptrdiff_t KC = TP == 8 ? 16 * C : 24576 / (NR * (ptrdiff_t)sizeof(T));
    const int nxi = tall ? 15 : 9;
    ptrdiff_t kx[15], voff[15], uoff[15], soff[45];
    if (tall)
        ecp_polyt_layout(C, NR, nob * ECP_MR, kx, voff, uoff, soff);
    else
        ecp_poly_layout_k(k, C, NR, nob * ECP_MR, kx, voff, uoff, soff);
    for (ptrdiff_t j0 = 0; j0 < ncols; j0 += NR) {
        const ptrdiff_t jn = ncols - j0 < NR ? ncols - j0 : NR;
        /* a block of at most VL tiles (the item's last, say) where each chain is one call: its
         * first step of V and the half tile only */
        const int half = jn <= VL && KC >= 4 * C;
        NAME(poly_vin)(k, box, tall, x, C, H, W, n0, tr0, tw, per, j0, jn, ph, pw, vbuf, soff, half);
        /* Where the tile does its 8 filters in one pass over V (TP = 8), one filter block at a
         * time: its products (V from L2), then its output transform while its M is in L1. Else
         * (AVX2: two passes) every block's products with KC rows of V kept in L1 across the
         * blocks, then the output transform (M from L2). */
        const ptrdiff_t obs = TP == 8 ? 1 : nob;
        for (ptrdiff_t ob = 0; ob < nob; ob += obs) {
            const ptrdiff_t ob1 = ob + obs < nob ? ob + obs : nob;
            NAME(poly_products)(u, vbuf, mbuf, kx, voff, uoff, nxi, ob, ob1, MS, KC, half);
            NAME(poly_out)(tall, mbuf, MS, bias, y, O, hq, wq, n0, tr0, tw, per, j0, jn,
                           ob * ECP_MR, O < ob1 * ECP_MR ? O : ob1 * ECP_MR);
        }
    }
}

/* the 3x3 and the 4x4 instances (k a constant in each) */
TARGET
static void NAME(poly_item)(const T *restrict x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                            const T *restrict u, ptrdiff_t O, const T *restrict bias,
                            T *restrict y, ptrdiff_t hq, ptrdiff_t wq, ptrdiff_t n0, ptrdiff_t nb,
                            ptrdiff_t tr0, ptrdiff_t ntr, ptrdiff_t ph, ptrdiff_t pw,
                            T *restrict vbuf, T *restrict mbuf)
{
    NAME(polyk_item)(3, 0, 0, x, C, H, W, u, O, bias, y, hq, wq, n0, nb, tr0, ntr, ph, pw, vbuf, mbuf);
}

/* easy average pooling of 3x3 layers: the 3x3 instance on x's 2 x 2 box sums (poly_vin) */
TARGET
static void NAME(polybox_item)(const T *restrict x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                               const T *restrict u, ptrdiff_t O, const T *restrict bias,
                               T *restrict y, ptrdiff_t hq, ptrdiff_t wq, ptrdiff_t n0, ptrdiff_t nb,
                               ptrdiff_t tr0, ptrdiff_t ntr, ptrdiff_t ph, ptrdiff_t pw,
                               T *restrict vbuf, T *restrict mbuf)
{
    NAME(polyk_item)(3, 1, 0, x, C, H, W, u, O, bias, y, hq, wq, n0, nb, tr0, ntr, ph, pw, vbuf, mbuf);
}

TARGET
static void NAME(poly4_item)(const T *restrict x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                             const T *restrict u, ptrdiff_t O, const T *restrict bias,
                             T *restrict y, ptrdiff_t hq, ptrdiff_t wq, ptrdiff_t n0, ptrdiff_t nb,
                             ptrdiff_t tr0, ptrdiff_t ntr, ptrdiff_t ph, ptrdiff_t pw,
                             T *restrict vbuf, T *restrict mbuf)
{
    NAME(polyk_item)(4, 0, 0, x, C, H, W, u, O, bias, y, hq, wq, n0, nb, tr0, ntr, ph, pw, vbuf, mbuf);
}

/* the 3x3 instance on tall tiles (4 x 2 outputs; tr0, ntr in rows of them) */
TARGET
static void NAME(polyt_item)(const T *restrict x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                             const T *restrict u, ptrdiff_t O, const T *restrict bias,
                             T *restrict y, ptrdiff_t hq, ptrdiff_t wq, ptrdiff_t n0, ptrdiff_t nb,
                             ptrdiff_t tr0, ptrdiff_t ntr, ptrdiff_t ph, ptrdiff_t pw,
                             T *restrict vbuf, T *restrict mbuf)
{
    NAME(polyk_item)(3, 0, 1, x, C, H, W, u, O, bias, y, hq, wq, n0, nb, tr0, ntr, ph, pw, vbuf, mbuf);
}

/* The polyphase dW of output tile rows tr0 .. tr0+ntr-1 of samples n0 .. n0+nb-1 of the stride-2
 * k x k convolution (k = 3 or 4; x, geometry and tiles as polyk_item's): with dM = A dY A^T (3 x 3
 * from each 2 x 2 tile of dy (N, O, hq, wq), zeros past the plane; A^T = [1 1 0; 0 1 1]) and V
 * the forward's transformed input (poly_vin),
 *   du[xi][kk][o] = (du[xi][kk][o] unless fresh) + sum over the tiles, in order, of
 *                   V[xi][kk][t] * dM[xi][o][t],
 * kk < kx[xi] the rows of xi's streams (ecp_poly_layout_k), o < O; du: per xi, kr[xi] rows of Op
 * = ceil(O/NR)*NR columns at duoff[xi] (ecp_poly_dw_layout; rows and columns past kx and O hold
 * no gradient). The filters' gradient is then the filter transform's adjoint of du
 * (ecp_poly_dw_reduce). Each sum is one chain over the item's tiles in order (NR a step: a
 * block's tiles past its end add exact zeros), so du depends on the item, never on the thread
 * count. V is the register tile's broadcast operand as poly_vin leaves it, so only dM (9 rows of
 * O, against V's (k + 2)^2 of C) is transposed. Scratch (per thread): vbuf ((k + 2)^2*C + 17)*NR,
 * mt 9*NR*Op, mbuf 9*(nob*8 + 1)*NR elements. */
TARGET
static inline __attribute__((always_inline)) void NAME(polyk_dw_item)(
    const int k, const int box, const T *restrict x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
    const T *restrict dy, ptrdiff_t O, ptrdiff_t hq, ptrdiff_t wq, ptrdiff_t n0, ptrdiff_t nb,
    ptrdiff_t tr0, ptrdiff_t ntr, ptrdiff_t ph, ptrdiff_t pw, T *restrict du, int fresh,
    T *restrict vbuf, T *restrict mt, T *restrict mbuf)
{
    const ptrdiff_t NR = 2 * VL, tw = (wq + 1) / 2, per = ntr * tw, ncols = nb * per;
    const ptrdiff_t nob = (O + ECP_MR - 1) / ECP_MR, rows = nob * ECP_MR;
    const ptrdiff_t MS = rows * NR + NR, P = hq * wq, Op = (O + NR - 1) / NR * NR;
    ptrdiff_t kx[9], voff[9], uoff[9], soff[36], kr[9], duoff[9];
    ecp_poly_layout_k(k, C, NR, rows, kx, voff, uoff, soff);
    const ptrdiff_t total = ecp_poly_dw_layout(kx, Op, kr, duoff);
    for (int xi = 0; xi < 9; xi++) {
        /* the lines between (and the 8 after) xi's rows of V, read by the last row block of a
         * tile: zeros (their products land in du's rows past kx) */
        memset(vbuf + voff[xi] + kx[xi] * NR, 0, (size_t)(xi == 8 ? 9 : 1) * NR * sizeof(T));
        if (Op > O)   /* dM^T's columns past O: zeros, never written below */
            for (ptrdiff_t t = 0; t < NR; t++)
                memset(mt + (xi * NR + t) * Op + O, 0, (size_t)(Op - O) * sizeof(T));
    }
    for (ptrdiff_t j0 = 0; j0 < ncols; j0 += NR) {
        const ptrdiff_t jn = ncols - j0 < NR ? ncols - j0 : NR;
        NAME(poly_vin)(k, box, 0, x, C, H, W, n0, tr0, tw, per, j0, jn, ph, pw, vbuf, soff, 0);
        if (jn < NR)   /* tiles past the end: zeros in dM (poly_vin leaves them zero in V) */
            for (int xi = 0; xi < 9; xi++)
                for (ptrdiff_t o = 0; o < O; o++)
                    memset(mbuf + xi * MS + o * NR + jn, 0, (size_t)(NR - jn) * sizeof(T));
        /* dM = A dY A^T: columns (e0, e0 + e1, e1) of each tile row, then rows the same; VL tiles
         * a step, one tile row's run at a time */
        for (ptrdiff_t t = 0; t < jn;) {
            const ptrdiff_t g = j0 + t, b = g / per, p = g % per, tr = tr0 + p / tw, tc = p % tw;
            const ptrdiff_t len = tw - tc < jn - t ? tw - tc : jn - t;
            const ptrdiff_t row = 2 * tr;
            const int two = row + 1 < hq;
            for (ptrdiff_t q0 = 0; q0 < len; q0 += VL) {
                const ptrdiff_t c0 = 2 * (tc + q0), nq = len - q0 < VL ? len - q0 : VL;
                MK mk[4];
                NAME(dy_masks)(c0, wq, mk);   /* (ecp_direct_wino.h, the Winograd dW's) */
                const MK sm = VEC(mask)(ecp_lanes(0, nq, VL));
                const int whole = nq == VL;
                for (ptrdiff_t o = 0; o < O; o++) {
                    V e[2][2];
                    NAME(dy_tiles)(dy + ((n0 + b) * O + o) * P + row * wq + c0, wq, two, mk, e);
                    const V f0[3] = {e[0][0], e[0][0] + e[0][1], e[0][1]};
                    const V f1[3] = {e[1][0], e[1][0] + e[1][1], e[1][1]};
                    T *m = mbuf + o * NR + t + q0;
                    for (int j = 0; j < 3; j++) {
                        const V r[3] = {f0[j], f0[j] + f1[j], f1[j]};
                        for (int i = 0; i < 3; i++) {
                            if (whole)
                                VEC(store)(m + (i * 3 + j) * MS, r[i]);
                            else
                                VEC(storem)(m + (i * 3 + j) * MS, sm, r[i]);
                        }
                    }
                }
            }
            t += len;
        }
        for (int xi = 0; xi < 9; xi++) NAME(wino_tr)(mbuf + xi * MS, O, mt + xi * NR * Op, Op);
        /* du[xi] (+)= V[xi] dM[xi]^T: 8 rows of V x NR filters a tile, over the block's NR tiles */
        const int acc = !(fresh && j0 == 0);
        for (int xi = 0; xi < 9; xi++)
            for (ptrdiff_t r0 = 0; r0 < kr[xi]; r0 += ECP_MR)
                for (ptrdiff_t o0 = 0; o0 < Op; o0 += NR)
                    NAME(tile)(NR, vbuf + voff[xi] + r0 * NR, 1, NR, mt + xi * NR * Op + o0, Op,
                               du + duoff[xi] + r0 * Op + o0, Op, acc);
    }
    if (ncols == 0 && fresh)
        memset(du, 0, (size_t)total * sizeof(T));
}

/* the 3x3 and the 4x4 instances (k a constant in each) */
TARGET
static void NAME(poly_dw_item)(const T *restrict x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                               const T *restrict dy, ptrdiff_t O, ptrdiff_t hq, ptrdiff_t wq,
                               ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t tr0, ptrdiff_t ntr,
                               ptrdiff_t ph, ptrdiff_t pw, T *restrict du, int fresh,
                               T *restrict vbuf, T *restrict mt, T *restrict mbuf)
{
    NAME(polyk_dw_item)(3, 0, x, C, H, W, dy, O, hq, wq, n0, nb, tr0, ntr, ph, pw, du, fresh, vbuf,
                        mt, mbuf);
}

/* the 3x3 instance on x's 2 x 2 box sums (easy average pooling of 3x3 layers, poly_vin) */
TARGET
static void NAME(polybox_dw_item)(const T *restrict x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                                  const T *restrict dy, ptrdiff_t O, ptrdiff_t hq, ptrdiff_t wq,
                                  ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t tr0, ptrdiff_t ntr,
                                  ptrdiff_t ph, ptrdiff_t pw, T *restrict du, int fresh,
                                  T *restrict vbuf, T *restrict mt, T *restrict mbuf)
{
    NAME(polyk_dw_item)(3, 1, x, C, H, W, dy, O, hq, wq, n0, nb, tr0, ntr, ph, pw, du, fresh, vbuf,
                        mt, mbuf);
}

TARGET
static void NAME(poly4_dw_item)(const T *restrict x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                                const T *restrict dy, ptrdiff_t O, ptrdiff_t hq, ptrdiff_t wq,
                                ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t tr0, ptrdiff_t ntr,
                                ptrdiff_t ph, ptrdiff_t pw, T *restrict du, int fresh,
                                T *restrict vbuf, T *restrict mt, T *restrict mbuf)
{
    NAME(polyk_dw_item)(4, 0, x, C, H, W, dy, O, hq, wq, n0, nb, tr0, ntr, ph, pw, du, fresh, vbuf,
                        mt, mbuf);
}
