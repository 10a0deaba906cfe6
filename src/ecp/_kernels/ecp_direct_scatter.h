/* The backward's scatter of dcols panels into dx. Written once over the vector layer (ecp_vec.h)
 * and included by ecp_direct.h once per (type, ISA); no include guard on purpose. */

/* Adding kw rows of a dcols panel (NR apart) into one input-gradient row:
 *     dr[c0 + s*u + j] += src[j*NR + u]   for u < len, j < kw (columns outside 0 .. W-1 dropped).
 * The row segment is summed a vector at a time in registers and added to dr once: adding the kw
 * rows one after another re-read stores still in flight (neighbouring j overlap), a stall per
 * row. For s = 2, lane l of a chunk holds u = base + l/2 on every other lane: one permute
 * spreads a half vector. The masks and offsets depend only on the run (len, c0) and are the
 * same for all C*kh rows it touches: scatter_plan_make computes them once per run.
 * ECP_MAXCH chunks cover a run's row segment: s*(NR-1) + kw <= 4*VL - 2 + VL lanes. */
typedef struct {
    ptrdiff_t nch, v0[ECP_MAXCH], off[ECP_MAXCH][16];
    MK out[ECP_MAXCH], load[ECP_MAXCH][16], spread[ECP_MAXCH][16];
} NAME(scatter_plan);

TARGET static inline void NAME(scatter_plan_make)(NAME(scatter_plan) *pl, ptrdiff_t c0,
                                                  ptrdiff_t W, ptrdiff_t len, ptrdiff_t kw,
                                                  ptrdiff_t s)
{
    const ptrdiff_t span = s * (len - 1) + kw;
    const unsigned even = 0x5555u & ((1u << VL) - 1u);
    pl->nch = 0;
    for (ptrdiff_t v0 = 0; v0 < span; v0 += VL) {
        const unsigned out = ecp_lanes(-(c0 + v0), W - (c0 + v0), VL) & ecp_lanes(0, span - v0, VL);
        if (!out) continue;
        const ptrdiff_t ch = pl->nch++;
        pl->v0[ch] = v0;
        pl->out[ch] = VEC(mask)(out);
        for (ptrdiff_t j = 0; j < kw; j++) {
            const ptrdiff_t e = v0 - j;                 /* lane l holds s*u = e + l */
            if (s == 1) {
                pl->off[ch][j] = e;
                pl->load[ch][j] = VEC(mask)(ecp_lanes(-e, len - e, VL));
            } else {
                const ptrdiff_t base = (e + (e & 1)) / 2;
                pl->off[ch][j] = base;
                pl->load[ch][j] = VEC(mask)(ecp_lanes(-base, len - base, VL / 2));
                pl->spread[ch][j] = VEC(mask)((e & 1) ? even << 1 : even);
            }
        }
    }
}

TARGET static inline void NAME(scatter_row)(T *restrict dr, ptrdiff_t c0, const T *restrict src,
                                            ptrdiff_t NR, ptrdiff_t kw, ptrdiff_t s,
                                            const NAME(scatter_plan) *pl)
{
    for (ptrdiff_t ch = 0; ch < pl->nch; ch++) {
        V acc = VEC(zero)();
        for (ptrdiff_t j = 0; j < kw; j++) {
            const V v = VEC(loadz)(pl->load[ch][j], src + j * NR + pl->off[ch][j]);
            acc = acc + (s == 1 ? v : VEC(spread)(v, pl->spread[ch][j]));
        }
        T *d = dr + c0 + pl->v0[ch];
        const MK out = pl->out[ch];
        VEC(storem)(d, out, VEC(loadz)(out, d) + acc);
    }
}

/* The stride-2 scatter of short rows (2*len + kw <= VL + 1: one vector covers a run's row
 * segment), as scatter_row computes it, a window row (c, i) of a run at a time. Lane e of
 * the segment is dx column c0 + e = c0 + 2u + j, so window columns of one parity land on one
 * parity of lanes, column j = 2p + (j % 2) p lanes further on than column j % 2. A row's even
 * columns are therefore summed into one half vector and its odd ones into another, column j
 * loaded p lanes early, and one interleaving permute merges them (a single permute a row: the
 * scatter is not bound by its permutes). Half vectors, as the interleave reads the low half of
 * each operand (and half loads straddle two cache lines less often than full ones).
 * Each lane adds its own parity's j in increasing order, as scatter_row.
 * mk[p]: lanes p .. p+len-1, len the run's pixels (made by each caller). */
TARGET static inline V NAME(s2_row)(const T *restrict sr, ptrdiff_t NR, ptrdiff_t kw,
                                    const HMK *mk)
{
    HV ev = VEC(hloadz)(mk[0], sr), od = kw > 1 ? VEC(hloadz)(mk[0], sr + NR) : VEC(hzero)();
    for (ptrdiff_t p = 1; 2 * p < kw; p++) {
        ev = ev + VEC(hloadz)(mk[p], sr + 2 * p * NR - p);
        if (2 * p + 1 < kw) od = od + VEC(hloadz)(mk[p], sr + (2 * p + 1) * NR - p);
    }
    return VEC(ilv)(ev, od);
}

/* A run of len pixels of one output row, channels cb .. ce-1, added into dx (whose planes the
 * caller zeroed). The rows go i-major, so that consecutive updates fall in different planes
 * (one plane's consecutive rows lie closer than a vector: each update would wait for the
 * previous one's store). */
TARGET static inline void NAME(scatter_run_s2)(T *restrict dxs, const T *restrict src,
                                               ptrdiff_t NR, ptrdiff_t cb, ptrdiff_t ce,
                                               ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh,
                                               ptrdiff_t kw, ptrdiff_t rbase, ptrdiff_t c0,
                                               ptrdiff_t len)
{
    const ptrdiff_t HW = H * W, ilo = rbase < 0 ? -rbase : 0;
    const ptrdiff_t ihi = H - rbase < kh ? H - rbase : kh;
    const MK out = VEC(mask)(ecp_lanes(-c0, W - c0, VL) & ecp_lanes(0, 2 * (len - 1) + kw, VL));
    HMK mk[ECP_S2_MK];   /* (kw <= VL + 1 - 2*len: (kw + 1)/2 <= VL/2 entries used) */
    mk[0] = VEC(hmask)(0u);
    for (ptrdiff_t p = 0; 2 * p < kw; p++) mk[p] = VEC(hmask)(ecp_lanes(p, p + len, VL / 2));
    for (ptrdiff_t i = ilo; i < ihi; i++)
        for (ptrdiff_t c = cb; c < ce; c++) {
            const V v = NAME(s2_row)(src + (c * kh + i) * kw * NR, NR, kw, mk);
            T *d = dxs + c * HW + (rbase + i) * W + c0;
            VEC(storem)(d, out, VEC(loadz)(out, d) + v);
        }
}

/* Whole planes: every output row of one sample (hq runs of wq pixels, at src), channels
 * cb .. ce-1, written into dx -- not added: the planes need no zeroing. Each dx row's sum is
 * gathered in a vector on the stack over the runs, in run order (the order, and so the bits,
 * of the run form after zeroing), then stored once, with zeros in the plane's columns and rows
 * no window reaches. Against the run form: no pass zeroing dx, one store a dx row instead of a
 * read-modify-write per run and window row, and no update reading a row that an update of
 * the previous run has only just written. na = 2*(hq-1) + kh <= ECP_S2_ROWS. */
TARGET __attribute__((always_inline)) static inline void
NAME(planes_s2)(T *restrict dxs, const T *restrict src, ptrdiff_t NR, ptrdiff_t cb, ptrdiff_t ce,
                ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t rbase,
                ptrdiff_t c0, ptrdiff_t hq, ptrdiff_t wq)
{
    const ptrdiff_t HW = H * W, na = 2 * (hq - 1) + kh;
    const unsigned inb = ecp_lanes(-c0, W - c0, VL);        /* the lanes inside the plane */
    const MK in = VEC(mask)(inb);
    const MK wall = VEC(mask)(ecp_lanes(0, W, VL));          /* a whole row, when W <= VL */
    const ptrdiff_t lo = c0 > 0 ? (c0 < W ? c0 : W) : 0;    /* columns left of lane 0 */
    const ptrdiff_t hi = c0 + VL < W ? (c0 + VL > 0 ? c0 + VL : 0) : W; /* right of the last */
    HMK mk[ECP_S2_MK];   /* (the 5 x 5 form is compiled for every VL, whether or not it runs) */
    V acc[ECP_S2_ROWS];
    mk[0] = VEC(hmask)(0u);
    for (ptrdiff_t p = 0; 2 * p < kw; p++) mk[p] = VEC(hmask)(ecp_lanes(p, p + wq, VL / 2));
    for (ptrdiff_t c = cb; c < ce; c++) {
        /* rows start from zero where first reached -- with r the outer loop, at (r, i) with
         * no (r - 1, i + 2) -- rather than zeroed beforehand (a loop the compiler turns into
         * a call to memset). (kh = 1 leaves odd rows unreached: zeroed.) */
        if (kh < 2) for (ptrdiff_t a = 0; a < na; a++) acc[a] = VEC(zero)();
        for (ptrdiff_t r = 0; r < hq; r++)
            for (ptrdiff_t i = 0; i < kh; i++) {
                const V v = NAME(s2_row)(src + (c * kh + i) * kw * NR + r * wq, NR, kw, mk);
                acc[2 * r + i] = (r == 0 || i + 2 >= kh ? VEC(zero)() : acc[2 * r + i]) + v;
            }
        for (ptrdiff_t y = 0; y < H; y++) {
            T *row = dxs + c * HW + y * W;
            const ptrdiff_t a = y - rbase;
            if (a < 0 || a >= na) {   /* (a vector store, not a call to memset; the paper's
                                         * conv2 has one such row a plane) */
                if (W <= VL) VEC(storem)(row, wall, VEC(zero)());
                else memset(row, 0, (size_t)W * sizeof(T));
                continue;
            }
            if (inb) VEC(storem)(row + c0, in, acc[a]);
            for (ptrdiff_t x = 0; x < lo; x++) row[x] = (T)0;
            for (ptrdiff_t x = hi; x < W; x++) row[x] = (T)0;
        }
    }
}

/* planes_s2 with the window a constant for the usual 5 x 5 and 3 x 3 (its loops over the
 * window unrolled, the column masks kept in registers; bench/bench_conv.py's easy conv2
 * backward) */
TARGET static inline void NAME(scatter_planes_s2)(T *restrict dxs, const T *restrict src,
                                                  ptrdiff_t NR, ptrdiff_t cb, ptrdiff_t ce,
                                                  ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh,
                                                  ptrdiff_t kw, ptrdiff_t rbase, ptrdiff_t c0,
                                                  ptrdiff_t hq, ptrdiff_t wq)
{
    if (kh == 5 && kw == 5) NAME(planes_s2)(dxs, src, NR, cb, ce, H, W, 5, 5, rbase, c0, hq, wq);
    else if (kh == 3 && kw == 3) NAME(planes_s2)(dxs, src, NR, cb, ce, H, W, 3, 3, rbase, c0, hq, wq);
    else NAME(planes_s2)(dxs, src, NR, cb, ce, H, W, kh, kw, rbase, c0, hq, wq);
}

/* The same as scatter_row, one element at a time: windows wider than a vector (kw > VL) */
static inline void NAME(scatter_row_scalar)(T *restrict dr, ptrdiff_t c0, ptrdiff_t W,
                                            const T *restrict src, ptrdiff_t NR, ptrdiff_t len,
                                            ptrdiff_t kw, ptrdiff_t s)
{
    for (ptrdiff_t j = 0; j < kw; j++)
        for (ptrdiff_t u = 0; u < len; u++) {
            const ptrdiff_t col = c0 + s * u + j;
            if (col >= 0 && col < W) dr[col] += src[j * NR + u];
        }
}
