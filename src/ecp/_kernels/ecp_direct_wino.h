/* Winograd F(2x2, 3x3) for the stride-1 3x3 convolution (forward, and dx as the convolution of
 * dY with the flipped, transposed filters). Written once over the vector layer and the register
 * tile (ecp_direct_tile.h) and included by ecp_direct_inst.h once per (type, ISA); no include
 * guard on purpose.
 *
 * Output tile (tr, tc) of a sample is outputs rows 2tr, 2tr+1 x columns 2tc, 2tc+1; it reads the
 * 4 x 4 input patch at (2tr - ph, 2tc - pw), zeros outside the plane. Per block of NR tiles:
 *   V[xi][c][t] = (B^T d B)[xi]            input transform, 16 rows of C x NR;
 *   M[xi][o][t] = sum_c U[xi][o][c] V[xi][c][t]   16 products by the 8 x NR register tile;
 *   y = A^T M A + bias                     output transform, 2 x 2 outputs per tile.
 * U = G g G^T (ecp_wino_weights_*, ecp_direct.h) packed [xi][ob][c][8 filters].
 * Every output is computed from its own tile's data alone, in a fixed order (the sum over c one
 * chain per xi), so results do not depend on how tiles are grouped into blocks or items, nor on
 * the thread count. They differ from the direct kernels' within float rounding (other
 * arithmetic: 16 products of transformed values instead of 9*C products). */

/* The input transform of tiles j0 .. j0+jn-1 of an item (tile g: sample n0 + g / per, tile row
 * tr0 + g % per / tw, tile column g % per % tw): V[xi][c][t] at vbuf[xi*CS + c*NR + t - j0],
 * columns jn .. NR-1 untouched. */
TARGET
static inline void NAME(wino_vin)(const T *restrict x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                                  ptrdiff_t n0, ptrdiff_t tr0, ptrdiff_t tw, ptrdiff_t per,
                                  ptrdiff_t j0, ptrdiff_t jn, ptrdiff_t ph, ptrdiff_t pw,
                                  T *restrict vbuf, ptrdiff_t CS)
{
    const ptrdiff_t NR = 2 * VL, HW = H * W;
    /* input transform, one run of same-row tiles at a time, VL tiles a step: input
     * column j of the step's tiles is even2 of two masked loads (lanes outside the plane
     * are zeros and never read), the masks the same for every row and channel */
    for (ptrdiff_t t = 0; t < jn;) {
        const ptrdiff_t g = j0 + t, b = g / per, p = g % per, tr = tr0 + p / tw, tc = p % tw;
        const ptrdiff_t len = tw - tc < jn - t ? tw - tc : jn - t;
        const ptrdiff_t rbase = 2 * tr - ph;
        const T *xs = x + (n0 + b) * C * HW;
        for (ptrdiff_t q0 = 0; q0 < len; q0 += VL) {
            const ptrdiff_t c0 = 2 * (tc + q0) - pw, nq = len - q0 < VL ? len - q0 : VL;
            MK mk[8];
            for (int j = 0; j < 4; j++) {
                mk[2 * j] = VEC(mask)(ecp_lanes(-(c0 + j), W - (c0 + j), VL));
                mk[2 * j + 1] = VEC(mask)(ecp_lanes(-(c0 + j + VL), W - (c0 + j + VL), VL));
            }
            const MK sm = VEC(mask)(ecp_lanes(0, nq, VL));
            const int whole = nq == VL;
            for (ptrdiff_t c = 0; c < C; c++) {
                V e[4][4];   /* e[i][j]: input row i, column j of each tile */
                for (int i = 0; i < 4; i++) {
                    const ptrdiff_t row = rbase + i;
                    if (row < 0 || row >= H) {
                        e[i][0] = e[i][1] = e[i][2] = e[i][3] = VEC(zero)();
                        continue;
                    }
                    const T *xr = xs + c * HW + row * W + c0;
                    for (int j = 0; j < 4; j++)
                        e[i][j] = VEC(even2)(VEC(loadz)(mk[2 * j], xr + j),
                                             VEC(loadz)(mk[2 * j + 1], xr + j + VL));
                }
                V a[4][4];   /* columns: (d0 - d2, d1 + d2, d2 - d1, d1 - d3) of each row */
                for (int i = 0; i < 4; i++) {
                    a[i][0] = e[i][0] - e[i][2];
                    a[i][1] = e[i][1] + e[i][2];
                    a[i][2] = e[i][2] - e[i][1];
                    a[i][3] = e[i][1] - e[i][3];
                }
                T *v = vbuf + c * NR + t + q0;
                for (int j = 0; j < 4; j++) {   /* rows: the same combination */
                    const V r0 = a[0][j] - a[2][j], r1 = a[1][j] + a[2][j];
                    const V r2 = a[2][j] - a[1][j], r3 = a[1][j] - a[3][j];
                    if (whole) {
                        VEC(store)(v + j * CS, r0);
                        VEC(store)(v + (4 + j) * CS, r1);
                        VEC(store)(v + (8 + j) * CS, r2);
                        VEC(store)(v + (12 + j) * CS, r3);
                    } else {
                        VEC(storem)(v + j * CS, sm, r0);
                        VEC(storem)(v + (4 + j) * CS, sm, r1);
                        VEC(storem)(v + (8 + j) * CS, sm, r2);
                        VEC(storem)(v + (12 + j) * CS, sm, r3);
                    }
                }
            }
        }
        t += len;
    }
}

/* Output tile rows tr0 .. tr0+ntr-1 of samples n0 .. n0+nb-1 of y (N, O, hq, wq) from x
 * (N, C, H, W), padding (ph, pw), bias added (none when bias is NULL); u from
 * ecp_wino_weights with this O and C. Scratch (per thread): vbuf 16*(C + 1)*NR, mbuf
 * 16*(nob*8 + 1)*NR (nob = ceil(O/8)), rbuf 4*(2*NR + 2) elements. */
TARGET
static void NAME(wino_item)(const T *restrict x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                            const T *restrict u, ptrdiff_t O, const T *restrict bias,
                            T *restrict y, ptrdiff_t hq, ptrdiff_t wq, ptrdiff_t n0, ptrdiff_t nb,
                            ptrdiff_t tr0, ptrdiff_t ntr, ptrdiff_t ph, ptrdiff_t pw,
                            T *restrict vbuf, T *restrict mbuf, T *restrict rbuf)
{
    const ptrdiff_t NR = 2 * VL, tw = (wq + 1) / 2, per = ntr * tw, ncols = nb * per;
    const ptrdiff_t nob = (O + ECP_MR - 1) / ECP_MR, RB = 2 * NR + 2;
    /* the 16 rows of V (of M) CS (MS) elements apart: a line more than C*NR (nob*8*NR), so that
     * the 16 streams of the transforms do not fall into one set of L1 at power-of-2 strides */
    const ptrdiff_t CS = C * NR + NR, MS = nob * ECP_MR * NR + NR;
    const ptrdiff_t KC = 24576 / (NR * (ptrdiff_t)sizeof(T));
    for (ptrdiff_t j0 = 0; j0 < ncols; j0 += NR) {
        const ptrdiff_t jn = ncols - j0 < NR ? ncols - j0 : NR;
        NAME(wino_vin)(x, C, H, W, n0, tr0, tw, per, j0, jn, ph, pw, vbuf, CS);
        if (jn < NR) {   /* columns no tile fills: zeros (their products are never read) */
            for (ptrdiff_t xi = 0; xi < 16; xi++)
                for (ptrdiff_t k = 0; k < C; k++)
                    memset(vbuf + xi * CS + k * NR + jn, 0, (size_t)(NR - jn) * sizeof(T));
        }
        /* 16 products, each a block of KC rows of V (kept in L1) against every filter block */
        for (ptrdiff_t xi = 0; xi < 16; xi++)
            for (ptrdiff_t k0 = 0; k0 < C; k0 += KC) {
                const ptrdiff_t kc = C - k0 < KC ? C - k0 : KC;
                for (ptrdiff_t ob = 0; ob < nob; ob++)
                    NAME(tile)(kc, u + ((xi * nob + ob) * C + k0) * ECP_MR, 8, 1,
                               vbuf + xi * CS + k0 * NR, NR, mbuf + xi * MS + ob * ECP_MR * NR,
                               NR, k0 > 0);
            }
        /* output transform: y = A^T M A, A^T = [1 1 1 0; 0 1 -1 -1] */
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
                    const T m9 = m[9 * MS + q], m10 = m[10 * MS + q], m11 = m[11 * MS + q];
                    const T m12 = m[12 * MS + q], m13 = m[13 * MS + q];
                    const T m14 = m[14 * MS + q], m15 = m[15 * MS + q];
                    /* rows: s0 = M0 + M1 + M2, s1 = M1 - M2 - M3 (per column) */
                    const T s00 = m0 + m4 + m8, s01 = m1 + m5 + m9;
                    const T s02 = m2 + m6 + m10, s03 = m3 + m7 + m11;
                    const T s10 = m4 - m8 - m12, s11 = m5 - m9 - m13;
                    const T s12 = m6 - m10 - m14, s13 = m7 - m11 - m15;
                    y0[2 * q] = s00 + s01 + s02 + bo;
                    y0[2 * q + 1] = s01 - s02 - s03 + bo;
                    y1[2 * q] = s10 + s11 + s12 + bo;
                    y1[2 * q + 1] = s11 - s12 - s13 + bo;
                }
                T *yo = y + ((n0 + b) * O + o) * hq * wq + row * wq + col;
                memcpy(yo, y0, (size_t)ncy * sizeof(T));
                if (two) memcpy(yo + wq, y1, (size_t)ncy * sizeof(T));
            }
            t += len;
        }
    }
}

/* dst[t*ldd + c] = src[c*NR + t], c < C, t < NR (a block of V into V^T) */
TARGET static inline void NAME(wino_tr)(const T *restrict src, ptrdiff_t C, T *restrict dst,
                                        ptrdiff_t ldd)
{
    const ptrdiff_t NR = 2 * VL;
#if VL == 16   /* AVX-512 float: 16 x 16 register transposes */
    if (sizeof(T) == sizeof(float)) {
        ecp_v_transpose_avx512_f((const float *)src, NR, C, NR, (float *)dst, ldd);
        return;
    }
#endif
    for (ptrdiff_t c0 = 0; c0 < C; c0 += 8)
        for (ptrdiff_t t = 0; t < NR; t++)
            for (ptrdiff_t c = c0; c < C && c < c0 + 8; c++) dst[t * ldd + c] = src[c * NR + t];
}

/* The masks of dy_tiles for tiles starting at column c0 of a dY row of wq pixels */
TARGET static inline void NAME(dy_masks)(ptrdiff_t c0, ptrdiff_t wq, MK mk[4])
{
    for (int j = 0; j < 2; j++) {
        mk[2 * j] = VEC(mask)(ecp_lanes(-(c0 + j), wq - (c0 + j), VL));
        mk[2 * j + 1] = VEC(mask)(ecp_lanes(-(c0 + j + VL), wq - (c0 + j + VL), VL));
    }
}

/* The 2 x 2 tiles of dY at d0 (row r, column c0) for VL tiles: e[i][j][t] = dY[r + i][c0 + 2t + j]
 * (zeros outside the plane, and for i = 1 when !two); mk from dy_masks. Shared by the dW of the
 * Winograd and polyphase kernels. */
TARGET static inline void NAME(dy_tiles)(const T *d0, ptrdiff_t wq, int two, const MK mk[4], V e[2][2])
{
    for (int i = 0; i < 2; i++) {
        const T *r = d0 + i * wq;
        if (i == 1 && !two) {
            e[1][0] = e[1][1] = VEC(zero)();
            break;
        }
        e[i][0] = VEC(even2)(VEC(loadz)(mk[0], r), VEC(loadz)(mk[1], r + VL));
        e[i][1] = VEC(even2)(VEC(loadz)(mk[2], r + 1), VEC(loadz)(mk[3], r + 1 + VL));
    }
}

/* The Winograd dW of output tile rows tr0 .. tr0+ntr-1 of samples n0 .. n0+nb-1: with dM =
 * A dY A^T (4 x 4 from each 2 x 2 tile of dy (N, O, hq, wq), zeros past the plane) and V the
 * forward's input transform of x (N, C, H, W, padding (ph, pw)),
 *   du[xi][o][c] = (du[xi][o][c] unless fresh) + sum over the tiles, in order, of
 *                  dM[xi][o][t] * V[xi][c][t],
 * du: 16 blocks of nob*8 rows (filters) of Cp = ceil(C/NR)*NR columns (channels). The gradient
 * of the filters is then G^T du G (ecp_wino_dw_reduce). Each sum is one chain over the item's
 * tiles in order (NR a step: a block's tiles past its end add exact zeros), so du depends on the
 * item, never on the thread count. Scratch (per thread): vbuf 16*(C + 1)*NR, vt 16*NR*Cp, mbuf
 * 16*(nob*8 + 1)*NR elements. */
TARGET
static void NAME(wino_dw_item)(const T *restrict x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                               const T *restrict dy, ptrdiff_t O, ptrdiff_t hq, ptrdiff_t wq,
                               ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t tr0, ptrdiff_t ntr,
                               ptrdiff_t ph, ptrdiff_t pw, T *restrict du, int fresh,
                               T *restrict vbuf, T *restrict vt, T *restrict mbuf)
{
    const ptrdiff_t NR = 2 * VL, tw = (wq + 1) / 2, per = ntr * tw, ncols = nb * per;
    const ptrdiff_t nob = (O + ECP_MR - 1) / ECP_MR, Cp = (C + NR - 1) / NR * NR;
    const ptrdiff_t CS = C * NR + NR, MS = nob * ECP_MR * NR + NR, P = hq * wq;
    if (Cp > C)   /* V^T's columns past C: zeros, never written below */
        for (ptrdiff_t k = 0; k < 16 * NR; k++) memset(vt + k * Cp + C, 0, (size_t)(Cp - C) * sizeof(T));
    for (ptrdiff_t xi = 0; xi < 16; xi++)   /* dM's rows past O: zeros */
        for (ptrdiff_t o = O; o < nob * ECP_MR; o++) memset(mbuf + xi * MS + o * NR, 0, (size_t)NR * sizeof(T));
    for (ptrdiff_t j0 = 0; j0 < ncols; j0 += NR) {
        const ptrdiff_t jn = ncols - j0 < NR ? ncols - j0 : NR;
        NAME(wino_vin)(x, C, H, W, n0, tr0, tw, per, j0, jn, ph, pw, vbuf, CS);
        if (jn < NR) {   /* tiles past the end: zeros in V and dM */
            for (ptrdiff_t xi = 0; xi < 16; xi++) {
                for (ptrdiff_t k = 0; k < C; k++)
                    memset(vbuf + xi * CS + k * NR + jn, 0, (size_t)(NR - jn) * sizeof(T));
                for (ptrdiff_t o = 0; o < O; o++)
                    memset(mbuf + xi * MS + o * NR + jn, 0, (size_t)(NR - jn) * sizeof(T));
            }
        }
        for (ptrdiff_t xi = 0; xi < 16; xi++) NAME(wino_tr)(vbuf + xi * CS, C, vt + xi * NR * Cp, Cp);
        /* dM = A dY A^T, A^T = [1 1 1 0; 0 1 -1 -1], VL tiles a step as wino_vin */
        for (ptrdiff_t t = 0; t < jn;) {
            const ptrdiff_t g = j0 + t, b = g / per, p = g % per, tr = tr0 + p / tw, tc = p % tw;
            const ptrdiff_t len = tw - tc < jn - t ? tw - tc : jn - t;
            const ptrdiff_t row = 2 * tr;
            const int two = row + 1 < hq;
            for (ptrdiff_t q0 = 0; q0 < len; q0 += VL) {
                const ptrdiff_t c0 = 2 * (tc + q0), nq = len - q0 < VL ? len - q0 : VL;
                MK mk[4];
                NAME(dy_masks)(c0, wq, mk);
                const MK sm = VEC(mask)(ecp_lanes(0, nq, VL));
                const int whole = nq == VL;
                for (ptrdiff_t o = 0; o < O; o++) {
                    V e[2][2];
                    NAME(dy_tiles)(dy + ((n0 + b) * O + o) * P + row * wq + c0, wq, two, mk, e);
                    const V e00 = e[0][0], e01 = e[0][1], e10 = e[1][0], e11 = e[1][1];
                    /* columns (e0, e0 + e1, e0 - e1, -e1) of each row, then rows the same */
                    const V f0[4] = {e00, e00 + e01, e00 - e01, -e01};
                    const V f1[4] = {e10, e10 + e11, e10 - e11, -e11};
                    T *m = mbuf + o * NR + t + q0;
                    for (int j = 0; j < 4; j++) {
                        const V r0 = f0[j], r1 = f0[j] + f1[j], r2 = f0[j] - f1[j], r3 = -f1[j];
                        if (whole) {
                            VEC(store)(m + j * MS, r0);
                            VEC(store)(m + (4 + j) * MS, r1);
                            VEC(store)(m + (8 + j) * MS, r2);
                            VEC(store)(m + (12 + j) * MS, r3);
                        } else {
                            VEC(storem)(m + j * MS, sm, r0);
                            VEC(storem)(m + (4 + j) * MS, sm, r1);
                            VEC(storem)(m + (8 + j) * MS, sm, r2);
                            VEC(storem)(m + (12 + j) * MS, sm, r3);
                        }
                    }
                }
            }
            t += len;
        }
        /* du[xi] (+)= dM[xi] V[xi]^T: 8 filters x NR channels a tile, over the block's NR tiles */
        const int acc = !(fresh && j0 == 0);
        for (ptrdiff_t xi = 0; xi < 16; xi++)
            for (ptrdiff_t ob = 0; ob < nob; ob++)
                for (ptrdiff_t cb = 0; cb < Cp; cb += NR)
                    NAME(tile)(NR, mbuf + xi * MS + ob * ECP_MR * NR, 1, NR,
                               vt + xi * NR * Cp + cb, Cp,
                               du + (xi * nob * ECP_MR + ob * ECP_MR) * Cp + cb, Cp, acc);
    }
    if (ncols == 0 && fresh)
        memset(du, 0, (size_t)(16 * nob * ECP_MR * Cp) * sizeof(T));
}
