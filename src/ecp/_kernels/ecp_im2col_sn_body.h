/* ecp_im2col_sn.h's routines for one type, written once: included there with T (element type) and
 * ECP_SUF (f or d) defined; defines ecp_im2col_plane_sn_<suf>, ecp_col2im_plane_sn_<suf> and their
 * trampolines ..._call_<suf>. No include guard on purpose. */

ECP_SN_PLACE static void ECP_TNAME(im2col_plane_sn)(const T *restrict xp, ptrdiff_t H, ptrdiff_t W,
                                                    ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t ph,
                                                    ptrdiff_t pw, ptrdiff_t s,
                                                    ptrdiff_t oy, ptrdiff_t ox, ptrdiff_t hq,
                                                    ptrdiff_t wq, T *restrict dst0, ptrdiff_t ld)
{
    for (ptrdiff_t i = 0; i < kh; i++) {
        for (ptrdiff_t j = 0; j < kw; j++) {
            const ptrdiff_t basec = ox + j - pw;
            ptrdiff_t qlo = ecp_q_lo_n(basec, s), qhi = ecp_q_hi_n(basec, s, W, wq);
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
                for (ptrdiff_t q = qlo; q < qhi; q++) d[q] = xr[basec + s * q];
                for (ptrdiff_t q = qhi; q < wq; q++) d[q] = 0;
            }
        }
    }
}

ECP_SN_PLACE static void ECP_TNAME(col2im_plane_sn)(const T *restrict src0, ptrdiff_t ld,
                                                    ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh,
                                                    ptrdiff_t kw, ptrdiff_t ph, ptrdiff_t pw,
                                                    ptrdiff_t s, ptrdiff_t oy, ptrdiff_t ox,
                                                    ptrdiff_t hq, ptrdiff_t wq, T *restrict dxp)
{
    memset(dxp, 0, (size_t)(H * W) * sizeof(T));
    for (ptrdiff_t i = 0; i < kh; i++) {
        for (ptrdiff_t j = 0; j < kw; j++) {
            const ptrdiff_t basec = ox + j - pw;
            const ptrdiff_t qlo = ecp_q_lo_n(basec, s), qhi = ecp_q_hi_n(basec, s, W, wq);
            if (qhi <= qlo) continue;
            const T *restrict srow = src0 + (i * kw + j) * ld;
            for (ptrdiff_t r = 0; r < hq; r++) {
                const ptrdiff_t row = oy + s * r + i - ph;
                if (row < 0 || row >= H) continue;
                const T *restrict d = srow + r * wq;
                T *restrict xr = dxp + row * W;
                for (ptrdiff_t q = qlo; q < qhi; q++) xr[basec + s * q] += d[q];
            }
        }
    }
}

ECP_SN_COLD static void ECP_TNAME(im2col_plane_sn_call)(const T *xp, ptrdiff_t H, ptrdiff_t W,
                                                        ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t ph,
                                                        ptrdiff_t pw, ptrdiff_t s, ptrdiff_t oy,
                                                        ptrdiff_t ox, ptrdiff_t hq, ptrdiff_t wq,
                                                        T *dst0, ptrdiff_t ld)
{
    ECP_TNAME(im2col_plane_sn)(xp, H, W, kh, kw, ph, pw, s, oy, ox, hq, wq, dst0, ld);
}

ECP_SN_COLD static void ECP_TNAME(col2im_plane_sn_call)(const T *src0, ptrdiff_t ld, ptrdiff_t H,
                                                        ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw,
                                                        ptrdiff_t ph, ptrdiff_t pw, ptrdiff_t s,
                                                        ptrdiff_t oy, ptrdiff_t ox, ptrdiff_t hq,
                                                        ptrdiff_t wq, T *dxp)
{
    ECP_TNAME(col2im_plane_sn)(src0, ld, H, W, kh, kw, ph, pw, s, oy, ox, hq, wq, dxp);
}

#undef T
#undef ECP_SUF
