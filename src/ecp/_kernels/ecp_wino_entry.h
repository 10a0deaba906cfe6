/* The entry points of the Winograd F(2x2, 3x3) kernels (ecp_direct_wino.h) for one type (T,
 * ECP_SUF set by ecp_direct.h), and the filter transform they take. No include guard on
 * purpose. */
#define ENAME(x) ECP_CAT2(ecp_##x, ECP_SUF)

/* U = G g G^T of the 3x3 filters g of filter blocks ob0 .. ob1-1 (8 filters each), packed
 * u[((xi*nob + ob)*C + c)*8 + m] = U[xi] of filter o = ob*8 + m and channel c (zeros past O),
 * nob = ceil(O/8): 16*nob*8*C elements in all. flip 0: g(o, c) = w[o][c] (w: O x C x 3 x 3);
 * flip 1: g(o, c)[i][j] = w[c][o][2-i][2-j] (w: C x O x 3 x 3, the filters of dx = the
 * convolution of dY with them). G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]. */
static inline void ENAME(wino_weights_units)(const T *restrict w, ptrdiff_t O, ptrdiff_t C, int flip,
                                             ptrdiff_t q0, ptrdiff_t q1, T *restrict u)
{
    /* 16 channels x 8 filters at a time into tmp, each U row then one run of 128 values: the 16
     * rows of u lie nob*C*8 apart (16 KB at C = O = 64, one L1 set), and writing them a value at
     * a time cost 30x the transform */
    const ptrdiff_t nob = (O + 7) / 8, ncb = (C + 15) / 16;
    T tmp[16][16][8];
    for (ptrdiff_t q = q0; q < q1; q++) {   /* unit q: filter block q / ncb, 16 channels from c0 */
        const ptrdiff_t ob = q / ncb, c0 = q % ncb * 16;
        const ptrdiff_t cn = C - c0 < 16 ? C - c0 : 16;
        for (ptrdiff_t cc = 0; cc < cn; cc++) {
            const ptrdiff_t c = c0 + cc;
            T g[3][3][8], s[4][3][8];
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++)
                    for (int m = 0; m < 8; m++) {
                        const ptrdiff_t o = ob * 8 + m;
                        g[i][j][m] = o >= O ? (T)0
                                   : flip ? w[((c * O + o) * 3 + 2 - i) * 3 + 2 - j]
                                          : w[((o * C + c) * 3 + i) * 3 + j];
                    }
            for (int j = 0; j < 3; j++)   /* G g */
                for (int m = 0; m < 8; m++) {
                    s[0][j][m] = g[0][j][m];
                    s[1][j][m] = (T)0.5 * (g[0][j][m] + g[1][j][m] + g[2][j][m]);
                    s[2][j][m] = (T)0.5 * (g[0][j][m] - g[1][j][m] + g[2][j][m]);
                    s[3][j][m] = g[2][j][m];
                }
            for (int a = 0; a < 4; a++)   /* (G g) G^T */
                for (int m = 0; m < 8; m++) {
                    tmp[a * 4 + 0][cc][m] = s[a][0][m];
                    tmp[a * 4 + 1][cc][m] = (T)0.5 * (s[a][0][m] + s[a][1][m] + s[a][2][m]);
                    tmp[a * 4 + 2][cc][m] = (T)0.5 * (s[a][0][m] - s[a][1][m] + s[a][2][m]);
                    tmp[a * 4 + 3][cc][m] = s[a][2][m];
                }
        }
        for (int xi = 0; xi < 16; xi++)
            memcpy(u + ((xi * nob + ob) * C + c0) * 8, tmp[xi], (size_t)(cn * 8) * sizeof(T));
    }
}

ECP_FN void ENAME(wino_weights)(const T *restrict w, ptrdiff_t O, ptrdiff_t C, int flip,
                                ptrdiff_t ob0, ptrdiff_t ob1, T *restrict u)
{
    const ptrdiff_t ncb = (C + 15) / 16;
    ENAME(wino_weights_units)(w, O, C, flip, ob0 * ncb, ob1 * ncb, u);
}

/* wino_weights of all the filter blocks, shared among the threads of the enclosing OpenMP
 * parallel region (each transforms a contiguous share of the units of a filter block and 16
 * channels, so that more threads than filter blocks all take part; one barrier, after which
 * every thread sees all of u); outside a parallel region, or without OpenMP, all of them.
 * Every thread of the team must call it. Each element is computed the same way whatever the
 * share, so u does not depend on the thread count. */
ECP_FN void ENAME(wino_weights_shared)(const T *restrict w, ptrdiff_t O, ptrdiff_t C, int flip,
                                       T *restrict u)
{
    const ptrdiff_t nq = (O + 7) / 8 * ((C + 15) / 16);   /* (filter block, 16 channels) units */
#ifdef _OPENMP
    const ptrdiff_t nt = omp_get_num_threads(), t = omp_get_thread_num();
    ENAME(wino_weights_units)(w, O, C, flip, t * nq / nt, (t + 1) * nq / nt, u);
#pragma omp barrier
#else
    ENAME(wino_weights_units)(w, O, C, flip, 0, nq, u);
#endif
}

/* Winograd F(2x2, 3x3) of output tile rows tr0 .. tr0+ntr-1 (ecp_direct_wino.h states the
 * contract) at the level in use; u from wino_weights. Scratch per thread: vbuf 16*(C + 1)*NR,
 * mbuf 16*(ceil(O/8)*8 + 1)*NR, rbuf 4*(2*NR + 2) elements. */
ECP_FN void ENAME(wino_item)(const T *restrict x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                             const T *restrict u, ptrdiff_t O, const T *restrict bias,
                             T *restrict y, ptrdiff_t hq, ptrdiff_t wq, ptrdiff_t n0,
                             ptrdiff_t nb, ptrdiff_t tr0, ptrdiff_t ntr, ptrdiff_t ph,
                             ptrdiff_t pw, T *restrict vbuf, T *restrict mbuf, T *restrict rbuf)
{
    ECP_DISPATCH(wino_item, ECP_SUF, (x, C, H, W, u, O, bias, y, hq, wq, n0, nb, tr0, ntr, ph,
                                      pw, vbuf, mbuf, rbuf))
}

/* The Winograd dW of output tile rows tr0 .. tr0+ntr-1 (ecp_direct_wino.h states the contract)
 * at the level in use: du (+)= dM V^T, 16 blocks of ceil(O/8)*8 rows of Cp = ceil(C/NR)*NR.
 * Scratch per thread: vbuf 16*(C + 1)*NR, vt 16*NR*Cp, mbuf 16*(ceil(O/8)*8 + 1)*NR elements. */
ECP_FN void ENAME(wino_dw_item)(const T *restrict x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                                const T *restrict dy, ptrdiff_t O, ptrdiff_t hq, ptrdiff_t wq,
                                ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t tr0, ptrdiff_t ntr,
                                ptrdiff_t ph, ptrdiff_t pw, T *restrict du, int fresh,
                                T *restrict vbuf, T *restrict vt, T *restrict mbuf)
{
    ECP_DISPATCH(wino_dw_item, ECP_SUF, (x, C, H, W, dy, O, hq, wq, n0, nb, tr0, ntr, ph, pw, du,
                                         fresh, vbuf, vt, mbuf))
}

/* dW of filters o0 .. o1-1 from the slots' du (wino_dw_item; n_slots of them, stride apart,
 * rows of Cp): the slots added in slot order, then G^T du G, G as in wino_weights; dw: O x C x
 * 3 x 3, those filters' rows overwritten. */
ECP_FN void ENAME(wino_dw_reduce)(const T *restrict du, ptrdiff_t n_slots, ptrdiff_t stride,
                                  ptrdiff_t O, ptrdiff_t C, ptrdiff_t Cp, ptrdiff_t o0,
                                  ptrdiff_t o1, T *restrict dw)
{
    /* 64 channels at a time: the slots' rows added a row at a time (contiguous, vectorized),
     * then each channel's 4 x 4 transformed */
    const ptrdiff_t rows = (O + 7) / 8 * 8;
    T U[16][64];
    for (ptrdiff_t o = o0; o < o1; o++)
        for (ptrdiff_t c0 = 0; c0 < C; c0 += 64) {
            const ptrdiff_t cn = C - c0 < 64 ? C - c0 : 64;
            for (int xi = 0; xi < 16; xi++) {
                const T *p = du + (xi * rows + o) * Cp + c0;
                for (ptrdiff_t cc = 0; cc < cn; cc++) U[xi][cc] = p[cc];
                for (ptrdiff_t k = 1; k < n_slots; k++)
                    for (ptrdiff_t cc = 0; cc < cn; cc++) U[xi][cc] += p[k * stride + cc];
            }
            for (ptrdiff_t cc = 0; cc < cn; cc++) {
                T s[4][3];
                for (int a = 0; a < 4; a++) {   /* (dU G) */
                    s[a][0] = U[a * 4][cc] + (T)0.5 * (U[a * 4 + 1][cc] + U[a * 4 + 2][cc]);
                    s[a][1] = (T)0.5 * (U[a * 4 + 1][cc] - U[a * 4 + 2][cc]);
                    s[a][2] = (T)0.5 * (U[a * 4 + 1][cc] + U[a * 4 + 2][cc]) + U[a * 4 + 3][cc];
                }
                T *d = dw + (o * C + c0 + cc) * 9;
                for (int j = 0; j < 3; j++) {   /* G^T (dU G) */
                    d[j] = s[0][j] + (T)0.5 * (s[1][j] + s[2][j]);
                    d[3 + j] = (T)0.5 * (s[1][j] - s[2][j]);
                    d[6 + j] = (T)0.5 * (s[1][j] + s[2][j]) + s[3][j];
                }
            }
        }
}

/* The polyphase kernels' filter transform (ecp_direct_poly.h) of filter blocks ob0 .. ob1-1
 * of k x k filters (k = 3 or 4): U[(R, Q)][o][c] = (t g t^T)[R][Q] of g = w[o][c] (O x C x k x
 * k), t the (k + 2) x k map of a tap column onto the transformed rows, k = 3: (g0, g0 + g2, g2,
 * g1, g1), k = 4: (g0, g0 + g2, g2, g1, g1 + g3, g3) (G = [1 0; 1 1; 0 1] on the phase-0 taps
 * (g0, g2) and on the phase-1 taps (g1, g3), g3 = 0 at k = 3); packed as ecp_poly_layout_k's u
 * with rows = ceil(O/8)*8, zeros past O: (k + 2)^2*ceil(O/8)*8*C elements in all. tall (k = 3):
 * down the rows the 9 x 3 map (g0/2, (g0 + g2)/2, (g0 - g2)/6, (g0 + 2 g2)/6, g2, g1/2, g1/2,
 * g1/6, g1/6) (F(4, 2)'s G at the points 0, 1, -1, 2, inf over the scales of poly_vin's B^T
 * rows), across the k = 3 map; packed as ecp_polyt_layout's u: 45*ceil(O/8)*8*C elements. Of
 * the units q = q0 .. q1-1 only: filter block q / ncb, channels 16*(q % ncb) .. + 15 (ncb =
 * ceil(C/16)). */
static inline __attribute__((always_inline)) void ENAME(polyk_weights)(
    const int k, const int tall, const T *restrict w, ptrdiff_t O, ptrdiff_t C, ptrdiff_t q0,
    ptrdiff_t q1, T *restrict u, T scale)
{
    const ptrdiff_t nob = (O + 7) / 8, ncb = (C + 15) / 16;
    const int np = k + 2, nr = tall ? 9 : np;
    ptrdiff_t kx[15], voff[15], uoff[15], soff[45], base[45], step[45];
    if (tall)
        ecp_polyt_layout(C, 1, nob * 8, kx, voff, uoff, soff);
    else
        ecp_poly_layout_k(k, C, 1, nob * 8, kx, voff, uoff, soff);
    for (int R = 0; R < nr; R++)   /* stream (R, Q): rows from u + base + ob*step + c*8 */
        for (int Q = 0; Q < np; Q++) {
            const int xi = (tall ? R % 5 : R % 3) * 3 + Q % 3;
            base[R * np + Q] = uoff[xi] + (soff[R * np + Q] - voff[xi]) * 8;
            step[R * np + Q] = kx[xi] * 8;
        }
    T tmp[45][16][8];   /* 16 channels of each stream, then one run each (as wino_weights) */
    for (ptrdiff_t q = q0; q < q1; q++) {   /* unit q: filter block q / ncb, 16 channels from c0 */
        const ptrdiff_t ob = q / ncb, c0 = q % ncb * 16;
        const ptrdiff_t cn = C - c0 < 16 ? C - c0 : 16;
        for (ptrdiff_t cc = 0; cc < cn; cc++) {
            const ptrdiff_t c = c0 + cc;
            /* the block's 8 filters side by side (m innermost, so that the loops over m
             * vectorize), zeros past O */
            T g[16][8];   /* g[t][m]: tap t of filter m */
            for (int m = 0; m < 8; m++) {
                const ptrdiff_t o = ob * 8 + m;
                for (int t = 0; t < k * k; t++) g[t][m] = o < O ? w[(o * C + c) * k * k + t] : (T)0;
            }
            T a[9][4][8];   /* a[R][j][m]: tap column j of filter m mapped onto transformed row R */
            for (int j = 0; j < k; j++)
                for (int m = 0; m < 8; m++) {
                    const T g0 = g[j][m], g1 = g[k + j][m], g2 = g[2 * k + j][m];
                    if (tall) {   /* times 1/6 rather than over 6: no division in the loop */
                        const T h = (T)0.5, s = (T)1 / (T)6;
                        a[0][j][m] = g0 * h;
                        a[1][j][m] = (g0 + g2) * h;
                        a[2][j][m] = (g0 - g2) * s;
                        a[3][j][m] = (g0 + (T)2 * g2) * s;
                        a[4][j][m] = g2;
                        a[5][j][m] = a[6][j][m] = g1 * h;
                        a[7][j][m] = a[8][j][m] = g1 * s;
                    } else {
                        a[0][j][m] = g0;
                        a[1][j][m] = g0 + g2;
                        a[2][j][m] = g2;
                        a[3][j][m] = g1;
                        if (k == 3) {
                            a[4][j][m] = g1;
                        } else {
                            const T g3 = g[3 * k + j][m];
                            a[4][j][m] = g1 + g3;
                            a[5][j][m] = g3;
                        }
                    }
                }
            for (int R = 0; R < nr; R++) {   /* across: the same map on each row's tap columns */
                const T(*r)[8] = a[R];
                T(*d)[16][8] = tmp + R * np;   /* d[Q][cc]: stream (R, Q) */
                for (int m = 0; m < 8; m++) d[0][cc][m] = r[0][m] * scale;
                for (int m = 0; m < 8; m++) d[1][cc][m] = (r[0][m] + r[2][m]) * scale;
                for (int m = 0; m < 8; m++) d[2][cc][m] = r[2][m] * scale;
                for (int m = 0; m < 8; m++) d[3][cc][m] = r[1][m] * scale;
                if (k == 3) {
                    for (int m = 0; m < 8; m++) d[4][cc][m] = r[1][m] * scale;
                } else {
                    for (int m = 0; m < 8; m++) d[4][cc][m] = (r[1][m] + r[3][m]) * scale;
                    for (int m = 0; m < 8; m++) d[5][cc][m] = r[3][m] * scale;
                }
            }
        }
        for (int t = 0; t < nr * np; t++)
            memcpy(u + base[t] + ob * step[t] + c0 * 8, tmp[t], (size_t)(cn * 8) * sizeof(T));
    }
}

/* The polyphase kernels take three forms: the stride-2 3x3 convolution (k = 3), the 4x4 one (k =
 * 4: easy average pooling's widened kernel of 3x3 layers) and, box (k = 3 only), the 3x3 one on
 * x's 2 x 2 box sums (easy average pooling of 3x3 layers, its 1/4 in the filters). */

/* polyk_weights of filter blocks ob0 .. ob1-1 of the form (k, box): (k + 2)^2*ceil(O/8)*8*C
 * elements in all */
ECP_FN void ENAME(poly_weights)(int k, int box, const T *restrict w, ptrdiff_t O, ptrdiff_t C,
                                ptrdiff_t ob0, ptrdiff_t ob1, T *restrict u)
{
    if (k == 4)   /* k a constant in each */
        ENAME(polyk_weights)(4, 0, w, O, C, ob0 * ((C + 15) / 16), ob1 * ((C + 15) / 16), u,
                             box ? (T)0.25 : (T)1);
    else
        ENAME(polyk_weights)(3, 0, w, O, C, ob0 * ((C + 15) / 16), ob1 * ((C + 15) / 16), u,
                             box ? (T)0.25 : (T)1);
}

/* polyk_weights of form (k, tall) over all the filter blocks, shared among the threads of the
 * enclosing OpenMP parallel region: each thread a contiguous share of the units (so that more
 * threads than filter blocks all take part), then one barrier;
 * every thread of the team must call it. The values do not depend on the shares. */
static inline __attribute__((always_inline)) void ENAME(polyk_weights_shared)(
    const int k, const int tall, const T *restrict w, ptrdiff_t O, ptrdiff_t C, T *restrict u,
    T scale)
{
    const ptrdiff_t nq = (O + 7) / 8 * ((C + 15) / 16);
#ifdef _OPENMP
    const ptrdiff_t nt = omp_get_num_threads(), t = omp_get_thread_num();
    ENAME(polyk_weights)(k, tall, w, O, C, t * nq / nt, (t + 1) * nq / nt, u, scale);
#pragma omp barrier
#else
    ENAME(polyk_weights)(k, tall, w, O, C, 0, nq, u, scale);
#endif
}

/* poly_weights of all the filter blocks, shared among the threads of the enclosing OpenMP
 * parallel region (polyk_weights_shared); every thread of the team must call it. */
ECP_FN void ENAME(poly_weights_shared)(int k, int box, const T *restrict w, ptrdiff_t O,
                                       ptrdiff_t C, T *restrict u)
{
    if (k == 4)   /* k a constant in each */
        ENAME(polyk_weights_shared)(4, 0, w, O, C, u, box ? (T)0.25 : (T)1);
    else
        ENAME(polyk_weights_shared)(3, 0, w, O, C, u, box ? (T)0.25 : (T)1);
}

/* The polyphase stride-2 forward of the form (k, box), output tile rows tr0 .. tr0+ntr-1
 * (ecp_direct_poly.h states the contract) at the level in use; u from poly_weights of the same
 * form; box: (hq, wq) the pooled output. Scratch per thread: vbuf ((k + 2)^2*C + 9)*NR, mbuf
 * 9*(ceil(O/8)*8 + 1)*NR elements. */
ECP_FN void ENAME(poly_item)(int k, int box, const T *restrict x, ptrdiff_t C, ptrdiff_t H,
                             ptrdiff_t W, const T *restrict u, ptrdiff_t O, const T *restrict bias,
                             T *restrict y, ptrdiff_t hq, ptrdiff_t wq, ptrdiff_t n0,
                             ptrdiff_t nb, ptrdiff_t tr0, ptrdiff_t ntr, ptrdiff_t ph,
                             ptrdiff_t pw, T *restrict vbuf, T *restrict mbuf)
{
    if (k == 4) {
        ECP_DISPATCH(poly4_item, ECP_SUF, (x, C, H, W, u, O, bias, y, hq, wq, n0, nb, tr0, ntr, ph,
                                           pw, vbuf, mbuf))
    } else if (box) {
        ECP_DISPATCH(polybox_item, ECP_SUF, (x, C, H, W, u, O, bias, y, hq, wq, n0, nb, tr0, ntr,
                                             ph, pw, vbuf, mbuf))
    } else {
        ECP_DISPATCH(poly_item, ECP_SUF, (x, C, H, W, u, O, bias, y, hq, wq, n0, nb, tr0, ntr, ph,
                                          pw, vbuf, mbuf))
    }
}

/* The stride-2 3x3 convolution on tall tiles (4 x 2 outputs, F(4, 2) down the rows: 45 products
 * per 8 outputs against the square tiles' 50; ecp_direct_poly.h). polyt_weights: polyk_weights'
 * tall transform of filter blocks ob0 .. ob1-1, 45*ceil(O/8)*8*C elements in all; _shared as
 * poly_weights_shared. polyt_item: poly_item's contract with tr0, ntr in rows of tall tiles
 * (output rows 4*tr0 .. 4*(tr0 + ntr) - 1); scratch per thread: vbuf (45*C + 15)*NR, mbuf
 * 15*(ceil(O/8)*8 + 1)*NR elements. */
ECP_FN void ENAME(polyt_weights)(const T *restrict w, ptrdiff_t O, ptrdiff_t C, ptrdiff_t ob0,
                                 ptrdiff_t ob1, T *restrict u)
{
    ENAME(polyk_weights)(3, 1, w, O, C, ob0 * ((C + 15) / 16), ob1 * ((C + 15) / 16), u, (T)1);
}

ECP_FN void ENAME(polyt_weights_shared)(const T *restrict w, ptrdiff_t O, ptrdiff_t C,
                                        T *restrict u)
{
    ENAME(polyk_weights_shared)(3, 1, w, O, C, u, (T)1);
}

ECP_FN void ENAME(polyt_item)(const T *restrict x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                              const T *restrict u, ptrdiff_t O, const T *restrict bias,
                              T *restrict y, ptrdiff_t hq, ptrdiff_t wq, ptrdiff_t n0, ptrdiff_t nb,
                              ptrdiff_t tr0, ptrdiff_t ntr, ptrdiff_t ph, ptrdiff_t pw,
                              T *restrict vbuf, T *restrict mbuf)
{
    ECP_DISPATCH(polyt_item, ECP_SUF, (x, C, H, W, u, O, bias, y, hq, wq, n0, nb, tr0, ntr, ph, pw,
                                       vbuf, mbuf))
}

/* The polyphase dW of the form (k, box), output tile rows tr0 .. tr0+ntr-1 (ecp_direct_poly.h
 * states the contract) at the level in use (box: the gradient of the box forward's filters is
 * then ecp_poly_dw_reduce's times 1/4). Scratch per thread: vbuf ((k + 2)^2*C + 17)*NR, mt
 * 9*NR*Op, mbuf 9*(ceil(O/8)*8 + 1)*NR elements (Op = ceil(O/NR)*NR); du Op*ecp_poly_dw_rows(k, C). */
ECP_FN void ENAME(poly_dw_item)(int k, int box, const T *restrict x, ptrdiff_t C, ptrdiff_t H,
                                ptrdiff_t W, const T *restrict dy, ptrdiff_t O, ptrdiff_t hq,
                                ptrdiff_t wq, ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t tr0,
                                ptrdiff_t ntr, ptrdiff_t ph, ptrdiff_t pw, T *restrict du,
                                int fresh, T *restrict vbuf, T *restrict mt, T *restrict mbuf)
{
    if (k == 4) {
        ECP_DISPATCH(poly4_dw_item, ECP_SUF, (x, C, H, W, dy, O, hq, wq, n0, nb, tr0, ntr, ph, pw,
                                              du, fresh, vbuf, mt, mbuf))
    } else if (box) {
        ECP_DISPATCH(polybox_dw_item, ECP_SUF, (x, C, H, W, dy, O, hq, wq, n0, nb, tr0, ntr, ph, pw,
                                                du, fresh, vbuf, mt, mbuf))
    } else {
        ECP_DISPATCH(poly_dw_item, ECP_SUF, (x, C, H, W, dy, O, hq, wq, n0, nb, tr0, ntr, ph, pw,
                                             du, fresh, vbuf, mt, mbuf))
    }
}

/* dW of channels c0 .. c1-1 of the stride-2 k x k convolution (k = 3 or 4) from the slots' du
 * (poly_dw_item / poly4_dw_item; n_slots of them, stride apart, Op columns): each stream's row of
 * the slots added in slot order (all filters at once), then the filter transform's adjoint,
 *   dw[o][c][i][j] = sum over the streams (R, Q), in order, of t[R][i] t[Q][j] dU[(R, Q)][c][o],
 * t polyk_weights' map of a tap column onto the transformed rows, times scale (1, or 1/4 after
 * polybox_dw_item: exact); dw: O x C x k x k, those channels' taps overwritten. */
static inline __attribute__((always_inline)) void ENAME(polyk_dw_reduce)(
    const int k, const T *restrict du, ptrdiff_t n_slots, ptrdiff_t stride, ptrdiff_t O, ptrdiff_t C,
    ptrdiff_t Op, ptrdiff_t c0, ptrdiff_t c1, T scale, T *restrict dw)
{
    /* t[R][i], R < k + 2: k = 3 (g0, g0 + g2, g2, g1, g1), k = 4 (g0, g0 + g2, g2, g1, g1 + g3, g3) */
    static const signed char t3[5][3] = {{1, 0, 0}, {1, 0, 1}, {0, 0, 1}, {0, 1, 0}, {0, 1, 0}};
    static const signed char t4[6][4] = {{1, 0, 0, 0}, {1, 0, 1, 0}, {0, 0, 1, 0},
                                         {0, 1, 0, 0}, {0, 1, 0, 1}, {0, 0, 0, 1}};
    const int np = k + 2;
    ptrdiff_t kx[9], voff[9], uoff[9], soff[36], kr[9], duoff[9];
    ecp_poly_layout_k(k, C, 1, 1, kx, voff, uoff, soff);   /* NR = 1: soff in rows */
    ecp_poly_dw_layout(kx, Op, kr, duoff);
    T U[36][64];
    for (ptrdiff_t c = c0; c < c1; c++)
        for (ptrdiff_t o0 = 0; o0 < O; o0 += 64) {
            const ptrdiff_t on = O - o0 < 64 ? O - o0 : 64;
            for (int s = 0; s < np * np; s++) {
                const int xi = (s / np % 3) * 3 + s % np % 3;
                /* row c of the stream within xi's rows (its rank among xi's streams times C) */
                const T *p = du + duoff[xi] + (soff[s] - voff[xi] + c) * Op + o0;
                for (ptrdiff_t oo = 0; oo < on; oo++) U[s][oo] = p[oo];
                for (ptrdiff_t sl = 1; sl < n_slots; sl++)
                    for (ptrdiff_t oo = 0; oo < on; oo++) U[s][oo] += p[sl * stride + oo];
            }
            /* each tap a chain over its (R, Q) in order, from 0, the 64 filters of the run side
             * by side (vectorized); then scaled into dw */
            T A[16][64];
            for (int i = 0; i < k; i++)
                for (int j = 0; j < k; j++) {
                    T *a = A[i * k + j];
                    for (ptrdiff_t oo = 0; oo < on; oo++) a[oo] = (T)0;
                    for (int R = 0; R < np; R++) {
                        if (!(k == 3 ? t3[R][i] : t4[R][i])) continue;
                        for (int Q = 0; Q < np; Q++)
                            if (k == 3 ? t3[Q][j] : t4[Q][j])
                                for (ptrdiff_t oo = 0; oo < on; oo++) a[oo] += U[R * np + Q][oo];
                    }
                }
            for (ptrdiff_t oo = 0; oo < on; oo++) {
                T *d = dw + ((o0 + oo) * C + c) * k * k;
                for (int tap = 0; tap < k * k; tap++) d[tap] = A[tap][oo] * scale;
            }
        }
}

/* polyk_dw_reduce, k a constant in each instance */
ECP_FN void ENAME(poly_dw_reduce)(int k, const T *restrict du, ptrdiff_t n_slots,
                                  ptrdiff_t stride, ptrdiff_t O, ptrdiff_t C, ptrdiff_t Op,
                                  ptrdiff_t c0, ptrdiff_t c1, T scale, T *restrict dw)
{
    if (k == 4)   /* k a constant in each */
        ENAME(polyk_dw_reduce)(4, du, n_slots, stride, O, C, Op, c0, c1, scale, dw);
    else
        ENAME(polyk_dw_reduce)(3, du, n_slots, stride, O, C, Op, c0, c1, scale, dw);
}

/* The polyphase dx's filter transform (ecp_direct_poly_dx.h) of filters (its K index) o0 .. o1-1
 * of the k x k filters w (O x C x k x k, k = 3 or 4): for xi = (p, q) and phase (a, b) active
 * there, row (rank, c) of xi's block: U = (G h_a)[p] (G h_b)[q] with h_a = (w[a + 2], w[a]) per
 * axis (w[a + 2] = 0 past the kernel), G = [1 0; 1 1; 0 1]; zeros for c >= C. Packed as
 * ecp_poly_dx_layout's U. */
static inline __attribute__((always_inline)) void ENAME(polyk_dx_weights)(
    const int k, const T *restrict w, ptrdiff_t O, ptrdiff_t C, ptrdiff_t o0, ptrdiff_t o1, T *restrict u)
{
    const ptrdiff_t Cr = (C + 7) / 8 * 8;
    ptrdiff_t rows[9], uoff[9], moff[9];
    int rank[9][4];
    ecp_poly_dx_layout(k, Cr, O, 1, rows, uoff, moff, rank);
    /* one filter at a time, its taps read once per channel; every (xi, phase) value computed (the
     * same expression as by phase and xi), the active ones written into their runs of 8 */
    ptrdiff_t off[9][4];
    for (int xi = 0; xi < 9; xi++)
        for (int ab = 0; ab < 4; ab++)
            off[xi][ab] = rank[xi][ab] < 0 ? -1 : uoff[xi] + rank[xi][ab] * Cr / 8 * 8 * O;
    for (ptrdiff_t o = o0; o < o1; o++)
        for (ptrdiff_t c0 = 0; c0 < Cr; c0 += 8) {
            T v[9][4][8];   /* [xi][phase ab][channel c0 + m] */
            for (int m = 0; m < 8; m++) {
                const ptrdiff_t c = c0 + m;
                if (c >= C) {
                    for (int xi = 0; xi < 9; xi++)
                        for (int ab = 0; ab < 4; ab++) v[xi][ab][m] = (T)0;
                    continue;
                }
                const T *g = w + (o * C + c) * k * k;
                for (int ab = 0; ab < 4; ab++) {
                    const int a = ab / 2, b = ab % 2;
                    for (int p = 0; p < 3; p++) {
                        T r[4];   /* (G h_a)[p] of each column j */
                        for (int j = 0; j < k; j++) {
                            const T h0 = a + 2 < k ? g[(a + 2) * k + j] : (T)0, h1 = g[a * k + j];
                            r[j] = p == 0 ? h0 : p == 1 ? h0 + h1 : h1;
                        }
                        for (int q = 0; q < 3; q++) {
                            const T h0 = b + 2 < k ? r[b + 2] : (T)0, h1 = r[b];
                            v[p * 3 + q][ab][m] = q == 0 ? h0 : q == 1 ? h0 + h1 : h1;
                        }
                    }
                }
            }
            const ptrdiff_t at = c0 * O + o * 8;   /* (c0 / 8) * 8 * O: the run of channels c0 .. c0+7 */
            for (int xi = 0; xi < 9; xi++)
                for (int ab = 0; ab < 4; ab++)
                    if (off[xi][ab] >= 0)
                        for (int m = 0; m < 8; m++) u[off[xi][ab] + at + m] = v[xi][ab][m];
        }
}

static inline void ENAME(poly_dx_weights)(int k, const T *restrict w, ptrdiff_t O, ptrdiff_t C,
                                          ptrdiff_t o0, ptrdiff_t o1, T *restrict u)
{
    if (k == 4)   /* k a constant in each */
        ENAME(polyk_dx_weights)(4, w, O, C, o0, o1, u);
    else
        ENAME(polyk_dx_weights)(3, w, O, C, o0, o1, u);
}

/* poly_dx_weights of all the filters, shared among the threads of the enclosing OpenMP parallel
 * region (each a contiguous share of o; one barrier); outside one, or without OpenMP, all of
 * them. Every thread of the team must call it. */
ECP_FN void ENAME(poly_dx_weights_shared)(int k, const T *restrict w, ptrdiff_t O, ptrdiff_t C,
                                          T *restrict u)
{
#ifdef _OPENMP
    const ptrdiff_t nt = omp_get_num_threads(), t = omp_get_thread_num();
    ENAME(poly_dx_weights)(k, w, O, C, t * O / nt, (t + 1) * O / nt, u);
#pragma omp barrier
#else
    ENAME(poly_dx_weights)(k, w, O, C, 0, O, u);
#endif
}

/* The polyphase dx of the stride-2 k x k convolution (k = 3 or 4), tile rows s0 .. s0+nts-1
 * (ecp_direct_poly_dx.h states the contract) at the level in use; u from poly_dx_weights. Scratch
 * per thread: vbuf 9*(O + 1)*NR, mbuf ecp_poly_dx_msize(k, C, NR) elements. */
ECP_FN void ENAME(poly_dx_item)(int k, const T *restrict dy, ptrdiff_t O, ptrdiff_t hq,
                                ptrdiff_t wq, const T *restrict u, ptrdiff_t C, T *restrict dx,
                                ptrdiff_t H, ptrdiff_t W, ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t s0,
                                ptrdiff_t nts, ptrdiff_t ph, ptrdiff_t pw, T *restrict vbuf,
                                T *restrict mbuf)
{
    if (k == 4) {
        ECP_DISPATCH(poly4_dx_item, ECP_SUF, (dy, O, hq, wq, u, C, dx, H, W, n0, nb, s0, nts, ph, pw,
                                              vbuf, mbuf))
    } else {
        ECP_DISPATCH(poly_dx_item, ECP_SUF, (dy, O, hq, wq, u, C, dx, H, W, n0, nb, s0, nts, ph, pw,
                                             vbuf, mbuf))
    }
}

/* The box means and their adjoint (ecp_direct_box.h states the contracts) at the level in use. */
ECP_FN void ENAME(box_means)(const T *restrict x, ptrdiff_t n_planes, ptrdiff_t H, ptrdiff_t W,
                             ptrdiff_t ph, ptrdiff_t pw, T *restrict xs)
{
    ECP_DISPATCH(box_means, ECP_SUF, (x, n_planes, H, W, ph, pw, xs))
}

ECP_FN void ENAME(box_adjoint)(const T *restrict d, ptrdiff_t H2, ptrdiff_t W2, T *restrict dx,
                               ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t ph, ptrdiff_t pw)
{
    ECP_DISPATCH(box_adjoint, ECP_SUF, (d, H2, W2, dx, C, H, W, ph, pw))
}

#undef ENAME
#undef T
#undef ECP_SUF
