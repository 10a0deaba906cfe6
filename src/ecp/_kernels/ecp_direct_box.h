/* Easy average pooling on box means: the 2 x 2 box means of a zero-padded input, and their
 * adjoint. avg_pool2x2(conv(x, w)) is the stride-2 convolution of x' = these means with w itself
 * (k^2 multiplies per output instead of the box-widened kernel's (k + 1)^2); its dx is the adjoint
 * below of dx'. Written once over the vector layer, included by ecp_direct_inst.h once per
 * (type, ISA); no include guard on purpose. Every output is one fixed chain of its four terms,
 * so the bits do not depend on how planes are cut among threads. */

/* out[c][a][b] = ((in[u][v] + in[u][v+1]) + (in[u+1][v] + in[u+1][v+1])) / 4 with u = a + oy,
 * v = b + ox, for c < n_planes, a < Ho, b < Wo; terms outside in (n_planes, Hi, Wi) zero, by
 * masked loads (nothing outside in is read). The padded means (oy, ox = -ph, -pw) and their
 * adjoint (ph - 1, pw - 1) are both this sum. */
TARGET
static inline void NAME(box_taps)(const T *restrict in, ptrdiff_t Hi, ptrdiff_t Wi, T *restrict out,
                                  ptrdiff_t Ho, ptrdiff_t Wo, ptrdiff_t n_planes, ptrdiff_t oy,
                                  ptrdiff_t ox)
{
    const V q = VEC(zero)() + (T)0.25;
    for (ptrdiff_t c = 0; c < n_planes; c++)
        for (ptrdiff_t a = 0; a < Ho; a++) {
            const ptrdiff_t u = a + oy;
            const int in0 = u >= 0 && u < Hi, in1 = u + 1 >= 0 && u + 1 < Hi;
            const T *r0 = in + (c * Hi + u) * Wi, *r1 = r0 + Wi;
            T *o = out + (c * Ho + a) * Wo;
            for (ptrdiff_t b = 0; b < Wo; b += VL) {
                const ptrdiff_t v = b + ox;
                const MK m0 = VEC(mask)(ecp_lanes(-v, Wi - v, VL));
                const MK m1 = VEC(mask)(ecp_lanes(-v - 1, Wi - v - 1, VL));
                const V t00 = in0 ? VEC(loadz)(m0, r0 + v) : VEC(zero)();
                const V t01 = in0 ? VEC(loadz)(m1, r0 + v + 1) : VEC(zero)();
                const V t10 = in1 ? VEC(loadz)(m0, r1 + v) : VEC(zero)();
                const V t11 = in1 ? VEC(loadz)(m1, r1 + v + 1) : VEC(zero)();
                const V y = ((t00 + t01) + (t10 + t11)) * q;
                if (Wo - b >= VL)
                    VEC(store)(o + b, y);
                else
                    VEC(storem)(o + b, VEC(mask)(ecp_lanes(0, Wo - b, VL)), y);
            }
        }
}

/* x' (n_planes, H2s, W2s) of x (n_planes, H, W) zero-padded by (ph, pw):
 *   x'[c][a][b] = ((x[u][v] + x[u][v+1]) + (x[u+1][v] + x[u+1][v+1])) / 4,  u = a - ph, v = b - pw,
 * terms outside x zero, for a < H + 2ph - 1, b < W + 2pw - 1. Unpadded (ph = pw = 0), x' keeps x's
 * layout (H2s = H, W2s = W) and is one flat run of shifted loads over the planes: each plane's
 * last row and column then hold sums across a row or plane edge (finite where x is), which no
 * window of the H - 1 by W - 1 means reads, and the run's last W + 1 elements zeros. Padded, x'
 * is exact (H2s = H + 2ph - 1, W2s = W + 2pw - 1), a row at a time by masked loads (nothing
 * outside x is read). */
TARGET
static void NAME(box_means)(const T *restrict x, ptrdiff_t n_planes, ptrdiff_t H, ptrdiff_t W,
                            ptrdiff_t ph, ptrdiff_t pw, T *restrict xs)
{
    const V q = VEC(zero)() + (T)0.25;
    if (ph == 0 && pw == 0) {
        const ptrdiff_t L = n_planes * H * W, n = L - W - 1 > 0 ? L - W - 1 : 0;
        ptrdiff_t i = 0;
        for (; i + VL <= n; i += VL) {
            const V a = *(const VU *)(x + i), b = *(const VU *)(x + i + 1);
            const V c = *(const VU *)(x + i + W), d = *(const VU *)(x + i + W + 1);
            *(VU *)(xs + i) = ((a + b) + (c + d)) * q;
        }
        if (i < n) {
            const MK m = VEC(mask)(ecp_lanes(0, n - i, VL));
            const V a = VEC(loadz)(m, x + i), b = VEC(loadz)(m, x + i + 1);
            const V c = VEC(loadz)(m, x + i + W), d = VEC(loadz)(m, x + i + W + 1);
            VEC(storem)(xs + i, m, ((a + b) + (c + d)) * q);
        }
        for (ptrdiff_t t = n; t < L; t++) xs[t] = (T)0;
        return;
    }
    NAME(box_taps)(x, H, W, xs, H + 2 * ph - 1, W + 2 * pw - 1, n_planes, -ph, -pw);
}

/* dx (C, H, W) of x from dx' (C, H2, W2) of x' = the 2 x 2 box means of x zero-padded by (ph,
 * pw) (H2 = H + 2ph - 1, W2 = W + 2pw - 1, or box_means' unpadded layout H2 = H, W2 = W with
 * dx''s last row and column zeros): the box's adjoint,
 *   dx[c][u][v] = ((d[a][b] + d[a][b+1]) + (d[a+1][b] + d[a+1][b+1])) / 4,  a = u+ph-1, b = v+pw-1,
 * terms outside dx' zero (masked loads: nothing outside dx' is read). */
TARGET
static void NAME(box_adjoint)(const T *restrict d, ptrdiff_t H2, ptrdiff_t W2, T *restrict dx,
                              ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t ph, ptrdiff_t pw)
{
    const V q = VEC(zero)() + (T)0.25;
    if (ph == 0 && pw == 0 && H2 == H && W2 == W) {
        /* the unpadded layout, one flat run: dx[i] = ((d[i-W-1] + d[i-W]) + (d[i-1] + d[i])) / 4,
         * the terms before the run zeros (masked), the ones across a row or plane edge the zeros
         * of dx''s last column and row */
        const ptrdiff_t L = C * H * W, s = W + 1;
        for (ptrdiff_t i = 0; i < L; i += VL) {
            if (i >= s && L - i >= VL) {
                const V a = *(const VU *)(d + i - s), b = *(const VU *)(d + i - W);
                const V c = *(const VU *)(d + i - 1), e = *(const VU *)(d + i);
                VEC(store)(dx + i, ((a + b) + (c + e)) * q);
                continue;
            }
            const MK m = VEC(mask)(ecp_lanes(0, L - i, VL));
            const V a = VEC(loadz)(VEC(mask)(ecp_lanes(s - i, L - i, VL)), d + i - s);
            const V b = VEC(loadz)(VEC(mask)(ecp_lanes(W - i, L - i, VL)), d + i - W);
            const V c = VEC(loadz)(VEC(mask)(ecp_lanes(1 - i, L - i, VL)), d + i - 1);
            const V e = VEC(loadz)(m, d + i);
            VEC(storem)(dx + i, m, ((a + b) + (c + e)) * q);
        }
        return;
    }
    NAME(box_taps)(d, H2, W2, dx, H, W, C, ph - 1, pw - 1);
}

