/* Packing of the direct kernels: windows into panels, and the stride-2 im2col. Written once over
 * the vector layer (ecp_vec.h) and included by ecp_direct.h once per (type, ISA) -- T, VL, NAME,
 * VEC, TARGET and the vector types are set there; no include guard on purpose. */

/* Copy xr[c0 .. c0+kw-1] to d, zeros where the column is outside 0 .. W-1; ok is the mask of
 * ecp_lanes(-c0, W - c0, kw), the same for every window row of a pixel. When the row fits a
 * vector: one masked load (lanes outside the plane are never read) and one full store, whose
 * lanes past kw are zeros: d needs VL - kw elements of slack after it, which the next window
 * row (packed after this one) overwrites. */
TARGET static inline void NAME(window_row)(T *restrict d, const T *restrict xr, ptrdiff_t c0,
                                           ptrdiff_t kw, ptrdiff_t W, MK ok)
{
    if (kw <= VL) {
        VEC(store)(d, VEC(loadz)(ok, xr + c0));
        return;
    }
    for (ptrdiff_t j = 0; j < kw; j++) d[j] = (c0 + j >= 0 && c0 + j < W) ? xr[c0 + j] : (T)0;
}

/* One pixel's window, C*kh rows of kw values, into rt (im2row): the window's top-left input
 * element is (rbase, cbase) of each plane of xs; zeros outside the plane. The rows inside the
 * plane (ilo .. ihi-1) and the column mask are the same for every channel: computed once. A row
 * is one masked load and one full-vector store (the next row's store overwrites the spill; rt
 * needs a vector of slack past C*kh*kw). */
TARGET static inline void NAME(pack_window)(T *restrict rt, const T *restrict xs, ptrdiff_t C,
                                            ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw,
                                            ptrdiff_t rbase, ptrdiff_t cbase)
{
    const ptrdiff_t HW = H * W, ilo = rbase < 0 ? -rbase : 0;
    ptrdiff_t ihi = H - rbase < kh ? H - rbase : kh;
    if (ihi < ilo) ihi = ilo;
    if (kw <= VL / 2) {   /* half vectors */
        const HMK ok = VEC(hmask)(ecp_lanes(-cbase, W - cbase, kw));
        for (ptrdiff_t c = 0; c < C; c++) {
            T *restrict d = rt + c * kh * kw;
            const T *sp = xs + c * HW + rbase * W + cbase;
            ptrdiff_t i = 0;
            for (; i < ilo; i++) VEC(hstore)(d + i * kw, VEC(hzero)());
            for (; i < ihi; i++) VEC(hstore)(d + i * kw, VEC(hloadz)(ok, sp + i * W));
            for (; i < kh; i++) VEC(hstore)(d + i * kw, VEC(hzero)());
        }
        return;
    }
    const MK ok = VEC(mask)(ecp_lanes(-cbase, W - cbase, kw < VL ? kw : VL));
    for (ptrdiff_t c = 0; c < C; c++)
        for (ptrdiff_t i = 0; i < kh; i++) {
            T *restrict d = rt + (c * kh + i) * kw;
            if (i < ilo || i >= ihi) memset(d, 0, (size_t)kw * sizeof(T));
            else NAME(window_row)(d, xs + c * HW + (rbase + i) * W, cbase, kw, W, ok);
        }
}

/* d[u] = xr[c0 + s*u] for u < len, zeros where the column is outside 0 .. W-1: one panel row
 * of a run, element by element (windows wider than pack_run handles, kw > 16) */
static inline void NAME(copy_run)(T *restrict d, const T *restrict xr, ptrdiff_t c0,
                                  ptrdiff_t len, ptrdiff_t s, ptrdiff_t W)
{
    for (ptrdiff_t u = 0; u < len; u++) {
        const ptrdiff_t col = c0 + s * u;
        d[u] = (col >= 0 && col < W) ? xr[col] : (T)0;
    }
}

/* One run of len same-row output pixels (len <= NR) into a forward panel: for every window
 * element k = (c, i, j), panel[k*NR + u] = x[c][rbase + i][cbase + j + s*u] (zeros outside
 * the plane), u < len. The column masks (one per j and vector of u) and the rows inside the
 * plane depend only on the run, so they are computed once and every (c, i, j) row is one masked
 * load and one masked store (s = 2: plus a permute keeping the even lanes). kw <= 16 only. */
TARGET static inline void NAME(pack_run)(T *restrict panel, ptrdiff_t NR, const T *restrict xs,
                                         ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh,
                                         ptrdiff_t kw, ptrdiff_t rbase, ptrdiff_t cbase,
                                         ptrdiff_t len, ptrdiff_t s)
{
    const ptrdiff_t HW = H * W, ilo = rbase < 0 ? -rbase : 0;
    ptrdiff_t ihi = H - rbase < kh ? H - rbase : kh;
    if (ihi < ilo) ihi = ilo;
    const V zero = VEC(zero)();
    for (ptrdiff_t u0 = 0; u0 < len; u0 += VL) {
        const ptrdiff_t n = len - u0 < VL ? len - u0 : VL;
        const MK st = VEC(mask)(ecp_lanes(0, n, VL));
        const int two = s * (n - 1) + 1 > VL;    /* s = 2 reads past one vector */
        MK lo[16], hi[16];
        ptrdiff_t a[16];
        for (ptrdiff_t j = 0; j < kw; j++) {
            a[j] = cbase + j + s * u0;           /* input column of lane 0 */
            const ptrdiff_t span = s * (n - 1) + 1;
            lo[j] = VEC(mask)(ecp_lanes(-a[j], W - a[j], VL) & ecp_lanes(0, span, VL));
            hi[j] = VEC(mask)(ecp_lanes(-a[j] - VL, W - a[j] - VL, VL) & ecp_lanes(0, span - VL, VL));
        }
        for (ptrdiff_t c = 0; c < C; c++) {
            const T *xc = xs + c * HW + rbase * W;
            for (ptrdiff_t i = 0; i < kh; i++) {
                T *d = panel + ((c * kh + i) * kw) * NR + u0;
                if (i < ilo || i >= ihi) {
                    for (ptrdiff_t j = 0; j < kw; j++) VEC(storem)(d + j * NR, st, zero);
                    continue;
                }
                const T *xr = xc + i * W;
                for (ptrdiff_t j = 0; j < kw; j++) {
                    V v = VEC(loadz)(lo[j], xr + a[j]);
                    if (s == 2)
                        v = two ? VEC(even2)(v, VEC(loadz)(hi[j], xr + a[j] + VL)) : VEC(even1)(v);
                    VEC(storem)(d + j * NR, st, v);
                }
            }
        }
    }
}

/* ecp_im2col_plane (ecp_im2col.h) for s = 2, the im2col + BLAS path of Easy Convolution: each
 * row segment of a tap (i, j) -- wq samples of one input row, every other column -- is a masked
 * load of up to two vectors, one permute keeping the even lanes and a masked store, where the
 * portable loop copies one value at a time. Same values: every element of the kh*kw rows of dst0
 * (row stride ld, hq*wq columns) is written, zeros outside the plane. */
TARGET static void NAME(im2col_plane_s2)(const T *restrict xp, ptrdiff_t H, ptrdiff_t W,
                                         ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t ph, ptrdiff_t pw,
                                         ptrdiff_t oy, ptrdiff_t ox, ptrdiff_t hq, ptrdiff_t wq,
                                         T *restrict dst0, ptrdiff_t ld)
{
    const V zero = VEC(zero)();
    for (ptrdiff_t j = 0; j < kw; j++)
        for (ptrdiff_t q0 = 0; q0 < wq; q0 += VL) {
            const ptrdiff_t n = wq - q0 < VL ? wq - q0 : VL;
            const ptrdiff_t a = ox + j - pw + 2 * q0;     /* input column of lane 0 */
            const ptrdiff_t e = W - a < 2 * n - 1 ? W - a : 2 * n - 1;   /* end of the read */
            const MK st = VEC(lanes)(0, n);
            /* lanes(), not mask(): GCC then keeps lo and hi in k registers on AVX-512 */
            const MK lo = VEC(lanes)(-a, e);
            const MK hi = VEC(lanes)(-a - VL, e - VL);
            for (ptrdiff_t i = 0; i < kh; i++) {
                T *restrict d = dst0 + (i * kw + j) * ld + q0;
                for (ptrdiff_t r = 0; r < hq; r++) {
                    const ptrdiff_t row = oy + 2 * r + i - ph;
                    V v = zero;
                    if (row >= 0 && row < H) {
                        const T *xr = xp + row * W + a;
                        v = VEC(even2)(VEC(loadz)(lo, xr), VEC(loadz)(hi, xr + VL));
                    }
                    VEC(storem)(d + r * wq, st, v);
                }
            }
        }
}
