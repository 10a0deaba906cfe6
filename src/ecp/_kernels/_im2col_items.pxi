# The im2col + BLAS work items of the _conv extension (included by _conv.pyx): ForwardKernel
# IM2COL_BLAS and BackwardKernel BLAS (and SPLIT's dW). An item is a run of whole samples (or,
# forward, output rows of one sample); it writes only its own outputs, with one single-threaded GEMM
# per product, in the calling thread's scratch (cols, ybuf / dybuf, dcols).

# The routines of strides above 2 (pooling windows of stride 3 and 4), declared here: only these
# items call them.
cdef extern from "ecp_im2col_sn.h" nogil:
    void ecp_im2col_plane_sn_call_f(const float *xp, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh,
                               Py_ssize_t kw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t s,
                               Py_ssize_t oy, Py_ssize_t ox, Py_ssize_t hq, Py_ssize_t wq,
                               float *dst0, Py_ssize_t ld)
    void ecp_im2col_plane_sn_call_d(const double *xp, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh,
                               Py_ssize_t kw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t s,
                               Py_ssize_t oy, Py_ssize_t ox, Py_ssize_t hq, Py_ssize_t wq,
                               double *dst0, Py_ssize_t ld)
    void ecp_col2im_plane_sn_call_f(const float *src0, Py_ssize_t ld, Py_ssize_t H, Py_ssize_t W,
                               Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t ph, Py_ssize_t pw,
                               Py_ssize_t s, Py_ssize_t oy, Py_ssize_t ox, Py_ssize_t hq,
                               Py_ssize_t wq, float *dxp)
    void ecp_col2im_plane_sn_call_d(const double *src0, Py_ssize_t ld, Py_ssize_t H, Py_ssize_t W,
                               Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t ph, Py_ssize_t pw,
                               Py_ssize_t s, Py_ssize_t oy, Py_ssize_t ox, Py_ssize_t hq,
                               Py_ssize_t wq, double *dxp)

cdef inline void _im2col_plane(const floating *xp, Py_ssize_t H, Py_ssize_t W,
                               Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t ph, Py_ssize_t pw,
                               Py_ssize_t s,
                               Py_ssize_t oy, Py_ssize_t ox, Py_ssize_t hq, Py_ssize_t wq,
                               floating *dst0, Py_ssize_t ld) noexcept nogil:
    """Unroll one (H, W) input plane into kh*kw rows of cols (row stride ld), hq*wq columns."""
    if s == 2 and _vec:
        if floating is float:
            ecp_im2col_plane_s2_f(xp, H, W, kh, kw, ph, pw, oy, ox, hq, wq, dst0, ld)
        else:
            ecp_im2col_plane_s2_d(xp, H, W, kh, kw, ph, pw, oy, ox, hq, wq, dst0, ld)
        return
    if s > 2:   # pooling windows of stride 3 and 4: their own routine
        if floating is float:
            ecp_im2col_plane_sn_call_f(xp, H, W, kh, kw, ph, pw, s, oy, ox, hq, wq, dst0, ld)
        else:
            ecp_im2col_plane_sn_call_d(xp, H, W, kh, kw, ph, pw, s, oy, ox, hq, wq, dst0, ld)
        return
    if floating is float:
        ecp_im2col_plane_f(xp, H, W, kh, kw, ph, pw, s, oy, ox, hq, wq, dst0, ld)
    else:
        ecp_im2col_plane_d(xp, H, W, kh, kw, ph, pw, s, oy, ox, hq, wq, dst0, ld)


cdef inline void _col2im_plane(const floating *src0, Py_ssize_t ld,
                               Py_ssize_t H, Py_ssize_t W,
                               Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t ph, Py_ssize_t pw,
                               Py_ssize_t s,
                               Py_ssize_t oy, Py_ssize_t ox, Py_ssize_t hq, Py_ssize_t wq,
                               floating *dxp) noexcept nogil:
    """Zero one (H, W) gradient plane, then add back the kh*kw rows of dcols that read it."""
    if s > 2:
        if floating is float:
            ecp_col2im_plane_sn_call_f(src0, ld, H, W, kh, kw, ph, pw, s, oy, ox, hq, wq, dxp)
        else:
            ecp_col2im_plane_sn_call_d(src0, ld, H, W, kh, kw, ph, pw, s, oy, ox, hq, wq, dxp)
        return
    if floating is float:
        ecp_col2im_plane_f(src0, ld, H, W, kh, kw, ph, pw, s, oy, ox, hq, wq, dxp)
    else:
        ecp_col2im_plane_d(src0, ld, H, W, kh, kw, ph, pw, s, oy, ox, hq, wq, dxp)


cdef void _forward_item(const floating *x, const floating *w, const floating *bias, floating *y,
                        const _Geom *g, Py_ssize_t n0, Py_ssize_t nb, Py_ssize_t r0, Py_ssize_t nr,
                        floating *cols, floating *ybuf) noexcept nogil:
    """Output rows r0 .. r0+nr-1 of samples n0 .. n0+nb-1: im2col, one GEMM, move to NCHW
    adding the bias (an item of one whole sample: the GEMM writes y, the bias is added there)."""
    cdef Py_ssize_t C = g.C, H = g.H, W = g.W, O = g.O, kh = g.kh, kw = g.kw, wq = g.wq
    cdef Py_ssize_t P = nr * wq, K = C * kh * kw, ld = nb * P
    cdef Py_ssize_t b, c, o, p
    cdef floating *dst
    cdef const floating *src
    cdef floating bval
    for b in range(nb):
        for c in range(C):
            _im2col_plane(x + ((n0 + b) * C + c) * H * W, H, W, kh, kw, g.ph, g.pw, g.stride,
                          g.oy + g.stride * r0, g.ox, nr, wq, cols + c * kh * kw * ld + b * P, ld)
    cdef floating *yo
    if nb == 1 and nr == g.hq:
        # one whole sample: its output (O x P) is one block of y -- the product goes there and
        # the bias is added in place, saving a pass through ybuf
        yo = y + n0 * O * P
        gemm(False, False, <int> O, <int> ld, <int> K, <floating> 1.0, w,
             <int> K, cols, <int> ld, <floating> 0.0, yo, <int> ld)
        for o in range(O):
            bval = bias[o]
            for p in range(P):
                yo[o * P + p] += bval
        return
    gemm(False, False, <int> O, <int> ld, <int> K, <floating> 1.0, w,
         <int> K, cols, <int> ld, <floating> 0.0, ybuf, <int> ld)
    for b in range(nb):
        for o in range(O):
            dst = y + ((n0 + b) * O + o) * g.hq * wq + r0 * wq
            src = ybuf + o * ld + b * P
            bval = bias[o]
            for p in range(P):
                dst[p] = src[p] + bval


cdef void _backward_item(const floating *dy, const floating *x, const floating *w, floating *dx,
                         floating *dw, bint need_dx, const _Geom *g, Py_ssize_t n0, Py_ssize_t nb,
                         floating *cols, floating *dybuf, floating *dcols) noexcept nogil:
    """Samples n0 .. n0+nb-1: dw (O, K) += dY cols^T; dx of those samples = col2im(W^T dY)."""
    cdef Py_ssize_t C = g.C, H = g.H, W = g.W, O = g.O, kh = g.kh, kw = g.kw
    cdef Py_ssize_t hq = g.hq, wq = g.wq
    cdef Py_ssize_t P = hq * wq, K = C * kh * kw, ld = nb * P
    cdef Py_ssize_t b, c, o
    cdef const floating *dyp = dy + n0 * O * P   # one sample's dY is already O x P
    for b in range(nb):
        for c in range(C):
            _im2col_plane(x + ((n0 + b) * C + c) * H * W, H, W, kh, kw, g.ph, g.pw, g.stride, g.oy,
                          g.ox, hq, wq, cols + c * kh * kw * ld + b * P, ld)
        if nb > 1:
            for o in range(O):
                memcpy(dybuf + o * ld + b * P, dy + ((n0 + b) * O + o) * P, P * sizeof(floating))
    if nb > 1:
        dyp = dybuf
    gemm(False, True, <int> O, <int> K, <int> ld, <floating> 1.0, dyp, <int> ld,
         cols, <int> ld, <floating> 1.0, dw, <int> K)
    if need_dx:
        gemm(True, False, <int> K, <int> ld, <int> O, <floating> 1.0,
             w, <int> K, dyp, <int> ld, <floating> 0.0, dcols, <int> ld)
        for b in range(nb):
            for c in range(C):
                _col2im_plane(dcols + c * kh * kw * ld + b * P, ld, H, W, kh, kw, g.ph, g.pw,
                              g.stride, g.oy, g.ox, hq, wq, dx + ((n0 + b) * C + c) * H * W)
