/* The portable pieces of ecp_direct.h (every level), written once and included per type (T,
 * ECP_SUF set there); no include guard on purpose. */
#define PNAME(x) ECP_CAT2(ecp_##x, ECP_SUF)

/* Wp[ob][k][m] = w[ob*8 + m][k], zero rows past O: the weights in the panel kernel's order.
 * wp: ceil(O/8)*8*K elements. */
ECP_FN void PNAME(pack_weights)(const T *restrict w, ptrdiff_t O, ptrdiff_t K, T *restrict wp)
{
    ptrdiff_t nob = (O + ECP_MR - 1) / ECP_MR;
    for (ptrdiff_t ob = 0; ob < nob; ob++)
        for (ptrdiff_t k = 0; k < K; k++)
            for (ptrdiff_t m = 0; m < ECP_MR; m++) {
                ptrdiff_t o = ob * ECP_MR + m;
                wp[(ob * K + k) * ECP_MR + m] = o < O ? w[o * K + k] : (T)0;
            }
}

/* Wv[ob][k][l] = w[ob*nr + l][k], zero past O (ecp_pack_weights_v), by scalar moves */
ECP_FN void PNAME(pack_weights_v_scalar)(const T *restrict w, ptrdiff_t O, ptrdiff_t K,
                                         ptrdiff_t nr, T *restrict wv)
{
    /* in blocks of 16 k, so that the scattered writes stay in L1 (a transpose in one sweep
     * of K missed L1 on every write: a third of a small layer's forward call) */
    const ptrdiff_t nov = (O + nr - 1) / nr;
    for (ptrdiff_t ob = 0; ob < nov; ob++)
        for (ptrdiff_t k0 = 0; k0 < K; k0 += 16) {
            const ptrdiff_t k1 = K - k0 < 16 ? K : k0 + 16;
            for (ptrdiff_t l = 0; l < nr; l++) {
                const ptrdiff_t o = ob * nr + l;
                T *restrict d = wv + (ob * K) * nr + l;
                if (o < O)
                    for (ptrdiff_t k = k0; k < k1; k++) d[k * nr] = w[o * K + k];
                else
                    for (ptrdiff_t k = k0; k < k1; k++) d[k * nr] = (T)0;
            }
        }
}

/* Wt[kb][o][m] = w[o][kb*8 + m], zero past K: W^T in 8-row blocks, the A operand of dcols.
 * wt: ceil(K/8)*8*O elements. */
ECP_FN void PNAME(pack_weights_t)(const T *restrict w, ptrdiff_t O, ptrdiff_t K, T *restrict wt)
{
    const ptrdiff_t full = K / ECP_MR, nkb = (K + ECP_MR - 1) / ECP_MR;
    for (ptrdiff_t kb = 0; kb < full; kb++)         /* whole blocks: 8 contiguous values */
        for (ptrdiff_t o = 0; o < O; o++)
            memcpy(wt + (kb * O + o) * ECP_MR, w + o * K + kb * ECP_MR, ECP_MR * sizeof(T));
    for (ptrdiff_t kb = full; kb < nkb; kb++)
        for (ptrdiff_t o = 0; o < O; o++)
            for (ptrdiff_t m = 0; m < ECP_MR; m++) {
                ptrdiff_t k = kb * ECP_MR + m;
                wt[(kb * O + o) * ECP_MR + m] = k < K ? w[o * K + k] : (T)0;
            }
}

/* ecp_sum_planes in portable C: the sums of the AVX-512 form in its order (8 lanes, 4
 * accumulators, _mm512_reduce_add_pd's reduction), so the same bits */
ECP_FN double PNAME(sum_planes_portable)(const T *src, ptrdiff_t n, ptrdiff_t count,
                                         ptrdiff_t stride)
{
    double a[4][8] = {{0}};
    for (ptrdiff_t c = 0; c < count; c++) {
        const T *p = src + c * stride;
        ptrdiff_t i = 0;
        for (; i + 32 <= n; i += 32)
            for (int q = 0; q < 4; q++)
                for (int l = 0; l < 8; l++) a[q][l] += (double)p[i + 8 * q + l];
        for (; i + 8 <= n; i += 8)
            for (int l = 0; l < 8; l++) a[0][l] += (double)p[i + l];
        for (int l = 0; i + l < n; l++) a[1][l] += (double)p[i + l];
    }
    double t[8], u[4];
    for (int l = 0; l < 8; l++) t[l] = (a[0][l] + a[1][l]) + (a[2][l] + a[3][l]);
    for (int l = 0; l < 4; l++) u[l] = t[4 + l] + t[l];
    return (u[2] + u[0]) + (u[3] + u[1]);
}

/* ecp_im2col_plane_s2 in portable C */
ECP_FN void PNAME(im2col_plane_s2_portable)(const T *restrict xp, ptrdiff_t H, ptrdiff_t W,
                                            ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t ph, ptrdiff_t pw,
                                            ptrdiff_t oy, ptrdiff_t ox, ptrdiff_t hq, ptrdiff_t wq,
                                            T *restrict dst0, ptrdiff_t ld)
{
    for (ptrdiff_t i = 0; i < kh; i++)
        for (ptrdiff_t j = 0; j < kw; j++) {
            T *restrict d = dst0 + (i * kw + j) * ld;
            for (ptrdiff_t r = 0; r < hq; r++) {
                const ptrdiff_t row = oy + 2 * r + i - ph;
                for (ptrdiff_t q = 0; q < wq; q++) {
                    const ptrdiff_t col = ox + 2 * q + j - pw;
                    d[r * wq + q] = row >= 0 && row < H && col >= 0 && col < W ? xp[row * W + col] : (T)0;
                }
            }
        }
}

#undef PNAME
#undef T
#undef ECP_SUF
