/* ecp_box.h's loops for one type, written once: included there with T (element type) and
 * ECP_SUF (f or d) defined; defines ecp_box_widen_<suf> and ecp_box_fold_<suf> (contracts in
 * ecp_box.h). No include guard on purpose. */

ECP_BOX_NOMEMCPY
static void ECP_TNAME(box_widen)(const T *w, T *wide, ptrdiff_t n_planes, ptrdiff_t kh,
                                 ptrdiff_t kw, ptrdiff_t p, T *z)
{
    /* tap (i, j) of every wide output t is z[t + (p-1-i)*dw + p-1-j] (a zero where w has none) */
    const ptrdiff_t dh = kh + p - 1, dw = kw + p - 1, ps = dh * dw, sps = kh * kw;
    const ptrdiff_t nb = ecp_box_chunk_planes(kh, kw, p);
    const T scale = (T)(1.0 / (double)(p * p));
    for (ptrdiff_t n0 = 0; n0 < n_planes; n0 += nb) {
        const ptrdiff_t m = n_planes - n0 < nb ? n_planes - n0 : nb, nt = m * ps;
        const T *src = w + n0 * sps;
        T *dst = z + (p - 1) * dw + p - 1;
        for (ptrdiff_t r = 0, a = 0; r < m * kh; r++) {   /* w's rows into z's */
            for (ptrdiff_t b = 0; b < kw; b++) dst[b] = src[b];
            src += kw;
            dst += dw;
            if (++a == kh) {
                a = 0;
                dst += (dh - kh) * dw;
            }
        }
        T *out = wide + n0 * ps;
        if (p == 2) {   /* the common window, in one pass: the same adds in the same order */
            for (ptrdiff_t t = 0; t < nt; t++)
                out[t] = ((((T)0 + z[t + dw + 1]) + z[t + 1]) + z[t + dw] + z[t]) * scale;
            continue;
        }
        for (ptrdiff_t t = 0; t < nt; t++) out[t] = (T)0;
        for (ptrdiff_t j = 0; j < p; j++)
            for (ptrdiff_t i = 0; i < p; i++) {
                const T *zs = z + (p - 1 - i) * dw + p - 1 - j;
                for (ptrdiff_t t = 0; t < nt; t++) out[t] = out[t] + zs[t];
            }
        for (ptrdiff_t t = 0; t < nt; t++) out[t] = out[t] * scale;
    }
}

static void ECP_TNAME(box_fold)(const T *dwide, T *dwk, ptrdiff_t n_planes, ptrdiff_t kh,
                                ptrdiff_t kw, ptrdiff_t p, T *acc)
{
    /* the sums run over every position t of dwide's flat layout (tap (i, j) at t + i*dw + j), and
     * only the (kh, kw) corner of each plane is kept (the rest, read across rows, is dropped) */
    const ptrdiff_t dh = kh + p - 1, dw = kw + p - 1, ps = dh * dw, sps = kh * kw;
    const ptrdiff_t nb = ecp_box_chunk_planes(kh, kw, p);
    const ptrdiff_t tend = n_planes * ps - (p - 1) * dw - (p - 1);   /* the last kept output + 1 */
    const T scale = (T)(1.0 / (double)(p * p));
    for (ptrdiff_t n0 = 0; n0 < n_planes; n0 += nb) {
        const ptrdiff_t m = n_planes - n0 < nb ? n_planes - n0 : nb;
        const ptrdiff_t nt = m * ps < tend - n0 * ps ? m * ps : tend - n0 * ps;
        const T *src = dwide + n0 * ps;
        if (p == 2) {   /* the common window, in one pass: the same adds in the same order */
            for (ptrdiff_t t = 0; t < nt; t++)
                acc[t] = (((T)0 + src[t]) + src[t + dw]) + src[t + 1] + src[t + dw + 1];
        } else {
            for (ptrdiff_t t = 0; t < nt; t++) acc[t] = (T)0;
            for (ptrdiff_t j = 0; j < p; j++)
                for (ptrdiff_t i = 0; i < p; i++)
                    for (ptrdiff_t t = 0; t < nt; t++) acc[t] = acc[t] + src[t + i * dw + j];
        }
        for (ptrdiff_t n = 0; n < m; n++)
            for (ptrdiff_t a = 0; a < kh; a++) {
                const T *ar = acc + n * ps + a * dw;
                T *d = dwk + (n0 + n) * sps + a * kw;
                for (ptrdiff_t b = 0; b < kw; b++) d[b] = ar[b] * scale;
            }
    }
}

#undef T
#undef ECP_SUF
