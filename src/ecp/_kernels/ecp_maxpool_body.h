/* ecp_maxpool.h's rows for one type, written once: included there with T (element type) and
 * ECP_SUF (f or d) defined; defines ecp_maxpool_row_nan_<suf> and ecp_maxpool_row_<suf>
 * (contract in ecp_maxpool.h). No include guard on purpose. */

/* exact rule, NaN included; used for rows that hold a NaN */
static void ECP_TNAME(maxpool_row_nan)(const T *restrict r0, const T *restrict r1,
                                       ptrdiff_t wq, int64_t W, int64_t top, T *restrict y,
                                       int64_t *restrict idx)
{
    for (ptrdiff_t q = 0; q < wq; q++) {
        const T v[4] = {r0[2 * q], r0[2 * q + 1], r1[2 * q], r1[2 * q + 1]};
        const int64_t off[4] = {0, 1, W, W + 1};
        int best = 0;
        for (int t = 1; t < 4; t++)
            if (v[t] > v[best] || (v[t] != v[t] && v[best] == v[best])) best = t;
        y[q] = v[best];
        idx[q] = top + 2 * q + off[best];
    }
}

static void ECP_TNAME(maxpool_row)(const T *restrict r0, const T *restrict r1, ptrdiff_t wq,
                                   int64_t W, int64_t top, T *restrict y, int64_t *restrict idx)
{
    int nan = 0;
    for (ptrdiff_t q = 0; q < 2 * wq; q++)
        nan |= (r0[q] != r0[q]) | (r1[q] != r1[q]);
    if (nan) {
        ECP_TNAME(maxpool_row_nan)(r0, r1, wq, W, top, y, idx);
        return;
    }
    /* no NaN: strict > keeps the first maximum; max and masks, no branch */
    for (ptrdiff_t q = 0; q < wq; q++) {
        T m = r0[2 * q], v;
        int64_t k = 0, c; /* masks, not ?: on k: compilers make that a branch */
        v = r0[2 * q + 1]; c = -(int64_t)(v > m); k = (c & 1) | (~c & k); m = v > m ? v : m;
        v = r1[2 * q]; c = -(int64_t)(v > m); k = (c & W) | (~c & k); m = v > m ? v : m;
        v = r1[2 * q + 1]; c = -(int64_t)(v > m); k = (c & (W + 1)) | (~c & k);
        m = v > m ? v : m;
        y[q] = m;
        idx[q] = top + 2 * q + k;
    }
}

#undef T
#undef ECP_SUF
