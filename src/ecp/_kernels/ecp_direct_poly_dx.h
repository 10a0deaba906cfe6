/* dx of the stride-2 k x k convolution (k = 3 or 4) as its four output phases, each a stride-1
 * convolution of dY with the taps w[a::2, b::2] by Winograd F(2x2, 2x2): 25 (k = 3) or 36 (k = 4)
 * products per 4 x 4 block of dx instead of 36 or 64. Written once over the vector layer and the
 * register tile (ecp_direct_tile.h), included by ecp_direct_inst.h once per (type, ISA); no
 * include guard on purpose.
 *
 * With the padding folded with the grid offset into (ph, pw) (possibly -1), dx row Y takes taps
 * i = a + 2u of dY row Y' - u, where a = (Y + ph) mod 2 and Y' = (Y + ph - a) / 2. Tile (s, t)
 * is dx rows Y0 = 4s - mh .. Y0 + 3 (mh = ph mod 4, so that Y0 + ph = 4(s + fh), fh = (ph -
 * mh) / 4) by columns X0 = 4t - mw .. X0 + 3: phases a, b in {0, 1}, each 2 x 2 outputs (Y' =
 * 2(s + fh) + e, e in {0, 1}, dx row Y0 + 2e + a). All four read the 3 x 3 patch of dY rows
 * 2(s + fh) - 1 .. +1, columns 2(t + fw) - 1 .. +1 (zeros outside the plane), transformed once:
 *   V[xi][o][t] = (B^T d B)[xi], B^T = [1 -1 0; 0 1 0; 0 -1 1]   (9 rows of O x NR);
 * phase (a, b) is the correlation of the patch with the flipped taps h = (w[a+2], w[a]) per axis
 * (a 1-tap axis, k = 3 and a = 1: h = (0, w[1]), its transformed point 0 zero and skipped), so
 *   M[xi][(ab, c)][t] = sum_o U[xi][(ab, c)][o] V[xi][o][t],   U = (G h G^T)[xi], G = [1 0; 1 1; 0 1],
 * one product per xi over the phases active at xi, stacked by rows (ecp_poly_dx_layout), and
 * dx = A^T M A per phase, A^T = [1 1 0; 0 1 1]. Every dx element is written, by its own tile from
 * its own data, so the results depend neither on the items nor on the thread count. */

/* Tile rows s0 .. s0+nts-1 of samples n0 .. n0+nb-1 of dx (N, C, H, W) from dy (N, O, hq, wq)
 * and u (ecp_poly_dx_weights). Scratch (per thread): vbuf 9*(O + 1)*NR, mbuf ecp_poly_dx_layout's
 * total*NR elements. */
TARGET
static inline __attribute__((always_inline)) void NAME(polyk_dx_item)(
    const int k, const T *restrict dy, ptrdiff_t O, ptrdiff_t hq, ptrdiff_t wq,
    const T *restrict u, ptrdiff_t C, T *restrict dx, ptrdiff_t H, ptrdiff_t W, ptrdiff_t n0,
    ptrdiff_t nb, ptrdiff_t s0, ptrdiff_t nts, ptrdiff_t ph, ptrdiff_t pw, T *restrict vbuf,
    T *restrict mbuf)
{
    const ptrdiff_t NR = 2 * VL, Cr = (C + ECP_MR - 1) / ECP_MR * ECP_MR, P = hq * wq;
    const ptrdiff_t mh = (ph % 4 + 4) % 4, mw = (pw % 4 + 4) % 4, fh = (ph - mh) / 4, fw = (pw - mw) / 4;
    const ptrdiff_t tw = (W + mw + 3) / 4, per = nts * tw, ncols = nb * per, VS = (O + 1) * NR;
    const ptrdiff_t KC = 24576 / (NR * (ptrdiff_t)sizeof(T));
    ptrdiff_t rows[9], uoff[9], moff[9];
    int rank[9][4];
    ecp_poly_dx_layout(k, Cr, O, NR, rows, uoff, moff, rank);
    for (ptrdiff_t j0 = 0; j0 < ncols; j0 += NR) {
        const ptrdiff_t jn = ncols - j0 < NR ? ncols - j0 : NR;
        if (jn < NR)   /* columns no tile fills: zeros (their products are never read) */
            for (ptrdiff_t r = 0; r < 9 * (O + 1); r++)
                memset(vbuf + r * NR + jn, 0, (size_t)(NR - jn) * sizeof(T));
        /* V: VL tiles a step, one tile row's run at a time; patch column j of the step's tiles is
         * even2 of two masked loads (lanes outside the plane zeros) */
        for (ptrdiff_t t = 0; t < jn;) {
            const ptrdiff_t g = j0 + t, b = g / per, p = g % per, s = s0 + p / tw, tc = p % tw;
            const ptrdiff_t len = tw - tc < jn - t ? tw - tc : jn - t;
            const ptrdiff_t rbase = 2 * (s + fh) - 1;
            for (ptrdiff_t q0 = 0; q0 < len; q0 += VL) {
                const ptrdiff_t c0 = 2 * (tc + q0 + fw) - 1, nq = len - q0 < VL ? len - q0 : VL;
                MK mk[6];
                for (int j = 0; j < 3; j++) {
                    mk[2 * j] = VEC(mask)(ecp_lanes(-(c0 + j), wq - (c0 + j), VL));
                    mk[2 * j + 1] = VEC(mask)(ecp_lanes(-(c0 + j + VL), wq - (c0 + j + VL), VL));
                }
                const MK sm = VEC(mask)(ecp_lanes(0, nq, VL));
                const int whole = nq == VL;
                for (ptrdiff_t o = 0; o < O; o++) {
                    const T *d0 = dy + ((n0 + b) * O + o) * P + c0;
                    V cr[3][3];   /* cr[row][Q]: patch row, transformed column */
                    for (int i = 0; i < 3; i++) {
                        const ptrdiff_t row = rbase + i;
                        if (row < 0 || row >= hq) {
                            cr[i][0] = cr[i][1] = cr[i][2] = VEC(zero)();
                            continue;
                        }
                        const T *dr = d0 + row * wq;
                        V e[3];
                        for (int j = 0; j < 3; j++)
                            e[j] = VEC(even2)(VEC(loadz)(mk[2 * j], dr + j),
                                              VEC(loadz)(mk[2 * j + 1], dr + j + VL));
                        cr[i][0] = e[0] - e[1];
                        cr[i][1] = e[1];
                        cr[i][2] = e[2] - e[1];
                    }
                    T *v = vbuf + o * NR + t + q0;
                    for (int q = 0; q < 3; q++) {
                        const V r[3] = {cr[0][q] - cr[1][q], cr[1][q], cr[2][q] - cr[1][q]};
                        for (int R = 0; R < 3; R++) {
                            if (whole)
                                VEC(store)(v + (R * 3 + q) * VS, r[R]);
                            else
                                VEC(storem)(v + (R * 3 + q) * VS, sm, r[R]);
                        }
                    }
                }
            }
            t += len;
        }
        /* 9 products, each xi's stacked rows against V[xi] in blocks of KC of O (kept in L1) */
        for (int xi = 0; xi < 9; xi++)
            for (ptrdiff_t k0 = 0; k0 < O; k0 += KC) {
                const ptrdiff_t kc = O - k0 < KC ? O - k0 : KC;
                for (ptrdiff_t rb = 0; rb < rows[xi]; rb += ECP_MR)
                    NAME(tile)(kc, u + uoff[xi] + rb * O + k0 * ECP_MR, ECP_MR, 1,
                               vbuf + xi * VS + k0 * NR, NR, mbuf + moff[xi] + rb * NR, NR, k0 > 0);
            }
        /* dx = A^T M A per phase, VL/2 tiles a step: for each dx row, the two columns of each
         * phase interleaved (ilv), then the two phases (ilv of the halves) */
        for (ptrdiff_t t = 0; t < jn;) {
            const ptrdiff_t g = j0 + t, b = g / per, p = g % per, s = s0 + p / tw, tc = p % tw;
            const ptrdiff_t len = tw - tc < jn - t ? tw - tc : jn - t;
            const ptrdiff_t Y0 = 4 * s - mh;
            for (ptrdiff_t q0 = 0; q0 < len; q0 += VL / 2) {
                const ptrdiff_t X0 = 4 * (tc + q0) - mw, nq = len - q0 < VL / 2 ? len - q0 : VL / 2;
                const HMK hm = VEC(hmask)(ecp_lanes(0, nq, VL / 2));
                const ptrdiff_t xend = W - X0 < 4 * nq ? W - X0 : 4 * nq;
                const MK om0 = VEC(mask)(ecp_lanes(-X0, xend, VL));
                const MK om1 = VEC(mask)(ecp_lanes(-X0 - VL, xend - VL, VL));
                for (ptrdiff_t c = 0; c < C; c++) {
                    HV out[2][2][2][2];   /* [a][b][e][f] */
                    for (int a = 0; a < 2; a++)
                        for (int bb = 0; bb < 2; bb++) {
                            HV mm[3][3];
                            for (int P3 = 0; P3 < 3; P3++)
                                for (int Q3 = 0; Q3 < 3; Q3++) {
                                    const int xi = P3 * 3 + Q3, rk = rank[xi][a * 2 + bb];
                                    mm[P3][Q3] = rk < 0 ? VEC(hzero)()
                                               : VEC(hloadz)(hm, mbuf + moff[xi] + (rk * Cr + c) * NR + t + q0);
                                }
                            for (int e = 0; e < 2; e++) {
                                const HV r0 = mm[e][0] + mm[e + 1][0], r1 = mm[e][1] + mm[e + 1][1];
                                const HV r2 = mm[e][2] + mm[e + 1][2];
                                out[a][bb][e][0] = r0 + r1;
                                out[a][bb][e][1] = r1 + r2;
                            }
                        }
                    T *xc = dx + ((n0 + b) * C + c) * H * W;
                    for (int e = 0; e < 2; e++)
                        for (int a = 0; a < 2; a++) {
                            const ptrdiff_t Y = Y0 + 2 * e + a;
                            if (Y < 0 || Y >= H) continue;
                            /* u_b: phase b's columns X0 + 2(2t + f) + b in order */
                            const V u0 = VEC(ilv)(out[a][0][e][0], out[a][0][e][1]);
                            const V u1 = VEC(ilv)(out[a][1][e][0], out[a][1][e][1]);
                            T *xr = xc + Y * W + X0;
                            VEC(storem)(xr, om0, VEC(ilv)(VEC(lo)(u0), VEC(lo)(u1)));
                            VEC(storem)(xr + VL, om1, VEC(ilv)(VEC(hi)(u0), VEC(hi)(u1)));
                        }
                }
            }
            t += len;
        }
    }
}

/* the 3x3 and the 4x4 instances (k a constant in each) */
TARGET
static void NAME(poly_dx_item)(const T *restrict dy, ptrdiff_t O, ptrdiff_t hq, ptrdiff_t wq,
                               const T *restrict u, ptrdiff_t C, T *restrict dx, ptrdiff_t H,
                               ptrdiff_t W, ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t s0, ptrdiff_t nts,
                               ptrdiff_t ph, ptrdiff_t pw, T *restrict vbuf, T *restrict mbuf)
{
    NAME(polyk_dx_item)(3, dy, O, hq, wq, u, C, dx, H, W, n0, nb, s0, nts, ph, pw, vbuf, mbuf);
}

TARGET
static void NAME(poly4_dx_item)(const T *restrict dy, ptrdiff_t O, ptrdiff_t hq, ptrdiff_t wq,
                                const T *restrict u, ptrdiff_t C, T *restrict dx, ptrdiff_t H,
                                ptrdiff_t W, ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t s0, ptrdiff_t nts,
                                ptrdiff_t ph, ptrdiff_t pw, T *restrict vbuf, T *restrict mbuf)
{
    NAME(polyk_dx_item)(4, dy, O, hq, wq, u, C, dx, H, W, n0, nb, s0, nts, ph, pw, vbuf, mbuf);
}
