/* The entry points of ecp_direct.h for one type (T, ECP_SUF set there): each dispatches on the
 * level in use. No include guard on purpose. NR below is ecp_direct_nr_<suf>(), VL = NR/2. */
#define ENAME(x) ECP_CAT2(ecp_##x, ECP_SUF)

/* Output rows r0 .. r0+nr-1 of samples n0 .. n0+nb-1 of y (N, O, hq, wq), bias added; wp from
 * ecp_pack_weights. Scratch (per thread): panel K*NR elements, tile ceil(O/8)*8*NR. */
ECP_FN void ENAME(direct_item)(const T *restrict x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                               const T *restrict wp, ptrdiff_t O, ptrdiff_t kh, ptrdiff_t kw,
                               const T *restrict bias, T *restrict y, ptrdiff_t hq, ptrdiff_t wq,
                               ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t r0, ptrdiff_t nr,
                               ptrdiff_t ph, ptrdiff_t pw, ptrdiff_t s, ptrdiff_t oy, ptrdiff_t ox,
                               T *restrict panel, T *restrict tile)
{
    ECP_DISPATCH(direct_item, ECP_SUF, (x, C, H, W, wp, O, kh, kw, bias, y, hq, wq, n0, nb, r0,
                                        nr, ph, pw, s, oy, ox, panel, tile))
}

/* ecp_direct_item for short rows (the pixel-rows kernel); wv from ecp_pack_weights_v with
 * nr = NR. Scratch (per thread): rpanel ECP_ROWS_PIX*K + VL elements, tile
 * ceil(O/NR)*ECP_ROWS_PIX*NR; koff: ecp_window_offsets (K entries), or NULL. */
ECP_FN void ENAME(direct_rows_item)(const T *restrict x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                                    const T *restrict wv, ptrdiff_t O, ptrdiff_t kh, ptrdiff_t kw,
                                    const T *restrict bias, T *restrict y, ptrdiff_t hq,
                                    ptrdiff_t wq, ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t r0,
                                    ptrdiff_t nr, ptrdiff_t ph, ptrdiff_t pw, ptrdiff_t s,
                                    ptrdiff_t oy, ptrdiff_t ox, T *restrict rpanel,
                                    T *restrict tile, const int *restrict koff)
{
    ECP_DISPATCH(direct_rows_item, ECP_SUF, (x, C, H, W, wv, O, kh, kw, bias, y, hq, wq, n0, nb,
                                             r0, nr, ph, pw, s, oy, ox, rpanel, tile, koff))
}

/* Backward of ecp_direct_item (ecp_direct_backward.h states the contract); wt from
 * ecp_pack_weights_t. With K = C*kh*kw, Kp = ceil(K/NR)*NR, Ob = ceil(O/NR)*NR, nob = ceil(O/8),
 * nkb = ceil(K/8): dwacc nob*8*Kp elements (koff NULL) or nkb*8*Ob (koff: ecp_window_offsets
 * with nkb*8 entries); scratch per thread: rpanel NR*max(Kp, Ob) + VL, dpanel nob*8*NR (rows
 * past O zeroed by the caller), xpanel nkb*8*NR (when dx). */
ECP_FN void ENAME(direct_backward_item)(const T *restrict x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                                        const T *restrict dy, ptrdiff_t O, ptrdiff_t hq,
                                        ptrdiff_t wq, const T *restrict wt, ptrdiff_t kh,
                                        ptrdiff_t kw, ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t ph,
                                        ptrdiff_t pw, ptrdiff_t s, ptrdiff_t oy, ptrdiff_t ox,
                                        T *restrict dwacc, T *restrict dx, T *restrict rpanel,
                                        T *restrict dpanel, T *restrict xpanel,
                                        const int *restrict koff, int fresh, ptrdiff_t d0,
                                        ptrdiff_t d1, ptrdiff_t c0, ptrdiff_t c1)
{
    ECP_DISPATCH(direct_backward_item, ECP_SUF, (x, C, H, W, dy, O, hq, wq, wt, kh, kw, n0, nb,
                                                 ph, pw, s, oy, ox, dwacc, dx, rpanel, dpanel,
                                                 xpanel, koff, fresh, d0, d1, c0, c1))
}

/* ecp_im2col_plane (ecp_im2col.h) for s = 2, the same values by vector copies (GENERIC: a
 * portable loop): every element of the kh*kw rows of dst0 (row stride ld, hq*wq columns) is
 * written, zeros outside the plane. No scratch. */
ECP_FN void ENAME(im2col_plane_s2)(const T *restrict xp, ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh,
                                   ptrdiff_t kw, ptrdiff_t ph, ptrdiff_t pw, ptrdiff_t oy,
                                   ptrdiff_t ox, ptrdiff_t hq, ptrdiff_t wq, T *restrict dst0,
                                   ptrdiff_t ld)
{
    ECP_DISPATCH(im2col_plane_s2, ECP_SUF, (xp, H, W, kh, kw, ph, pw, oy, ox, hq, wq, dst0, ld))
    ENAME(im2col_plane_s2_portable)(xp, H, W, kh, kw, ph, pw, oy, ox, hq, wq, dst0, ld);
}

/* The sum, in double, of count planes of n values, stride apart (a bias gradient: a filter's
 * planes of dY over the batch): eight values converted per step into four accumulators kept over
 * all the planes, reduced once; the same order, so the same bits, on every level. (The loop in
 * _reductions.pxi, which the Python side runs at GENERIC, adds in another order.) One call
 * sweeps the whole batch, rather than one call per plane with its own horizontal sum, which
 * costs more than the sums for small planes (the paper's easy conv2: 1,600 planes of 16). */
ECP_FN double ENAME(sum_planes)(const T *src, ptrdiff_t n, ptrdiff_t count, ptrdiff_t stride)
{
    switch (ecp_isa_get()) {
    ECP_RCASE_AVX512(v_sum_planes, ECP_SUF, (src, n, count, stride))
    ECP_RCASE_AVX2(v_sum_planes, ECP_SUF, (src, n, count, stride))
    default: return ENAME(sum_planes_portable)(src, n, count, stride);
    }
}

#undef ENAME
#undef T
#undef ECP_SUF
