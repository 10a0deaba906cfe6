/* ecp_im2col.h's routines for one type, written once: included there with T (element type) and
 * ECP_SUF (f or d) defined; defines ecp_im2col_plane_<suf> and ecp_col2im_plane_<suf> (contracts
 * in ecp_im2col.h). No include guard on purpose. */

static void ECP_TNAME(im2col_plane)(const T *restrict xp, ptrdiff_t H, ptrdiff_t W,
                                    ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t ph, ptrdiff_t pw,
                                    ptrdiff_t s,
                                    ptrdiff_t oy, ptrdiff_t ox, ptrdiff_t hq, ptrdiff_t wq,
                                    T *restrict dst0, ptrdiff_t ld)
{
    for (ptrdiff_t i = 0; i < kh; i++) {
        for (ptrdiff_t j = 0; j < kw; j++) {
            const ptrdiff_t basec = ox + j - pw;
            ptrdiff_t qlo = ecp_q_lo(basec, s), qhi = ecp_q_hi(basec, s, W, wq);
            if (qhi < qlo) qhi = qlo;
            T *restrict drow = dst0 + (i * kw + j) * ld;
            for (ptrdiff_t r = 0; r < hq; r++) {
                T *restrict d = drow + r * wq;
                const ptrdiff_t row = oy + s * r + i - ph;
                if (row < 0 || row >= H || qhi == qlo) {
                    for (ptrdiff_t q = 0; q < wq; q++) d[q] = 0;
                    continue;
                }
                const T *restrict xr = xp + row * W;
                for (ptrdiff_t q = 0; q < qlo; q++) d[q] = 0;
                if (s == 1) {
                    ptrdiff_t q = qlo;
                    for (; q + 8 <= qhi; q += 8) memcpy(d + q, xr + basec + q, 8 * sizeof(T));
                    for (; q < qhi; q++) d[q] = xr[basec + q];
                } else {
                    for (ptrdiff_t q = qlo; q < qhi; q++) d[q] = xr[basec + 2 * q];
                }
                for (ptrdiff_t q = qhi; q < wq; q++) d[q] = 0;
            }
        }
    }
}

static void ECP_TNAME(col2im_plane)(const T *restrict src0, ptrdiff_t ld, ptrdiff_t H,
                                    ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t ph,
                                    ptrdiff_t pw,
                                    ptrdiff_t s, ptrdiff_t oy, ptrdiff_t ox, ptrdiff_t hq,
                                    ptrdiff_t wq, T *restrict dxp)
{
    memset(dxp, 0, (size_t)(H * W) * sizeof(T));
    for (ptrdiff_t i = 0; i < kh; i++) {
        for (ptrdiff_t j = 0; j < kw; j++) {
            const ptrdiff_t basec = ox + j - pw;
            const ptrdiff_t qlo = ecp_q_lo(basec, s), qhi = ecp_q_hi(basec, s, W, wq);
            if (qhi <= qlo) continue;
            const T *restrict srow = src0 + (i * kw + j) * ld;
            for (ptrdiff_t r = 0; r < hq; r++) {
                const ptrdiff_t row = oy + s * r + i - ph;
                if (row < 0 || row >= H) continue;
                const T *restrict d = srow + r * wq;
                T *restrict xr = dxp + row * W;
                if (s == 1) {
                    for (ptrdiff_t q = qlo; q < qhi; q++) xr[basec + q] += d[q];
                } else {
                    for (ptrdiff_t q = qlo; q < qhi; q++) xr[basec + 2 * q] += d[q];
                }
            }
        }
    }
}

#undef T
#undef ECP_SUF
