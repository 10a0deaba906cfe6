"""Convolution kernels: im2col + one GEMM, for the full convolution and the mode-K quarter one.

Both are the same computation on a sampling grid: output (r, q) of plane o reads the input
window whose top-left corner (in the zero-padded input) is (oy + s*r, ox + s*q).
The full convolution is s = 1, oy = ox = 0; Easy Convolution with mode K is s = 2,
(oy, ox) = divmod(K, 2) -- it computes only the positions Random Pooling keeps.

The batch is processed in chunks of ``chunk`` samples. For one chunk, the input windows are
unrolled into ``cols`` (K = C*kh*kw rows, nb*P columns, P = hq*wq), in parallel over
(sample, channel) planes; one GEMM with the weights (O, K) gives every output of the chunk;
a parallel pass moves them to NCHW and adds the bias. The backward pass rebuilds ``cols``,
gets dW from one GEMM per chunk and dX from W^T dY followed by a col2im scatter.

Every function here assumes valid, C-contiguous input of one dtype: ``ecp.conv`` checks it.
Results do not depend on the thread count: every output element is written by one thread in
a fixed order, the BLAS never splits the reduction dimension across threads, and the chunking
depends only on the shapes.
"""
cimport cython
from cython cimport floating
from cython.parallel cimport prange
from libc.string cimport memcpy, memset

import numpy as np

from ._blas cimport gemm


cdef inline Py_ssize_t _first_valid(Py_ssize_t base, Py_ssize_t s) noexcept nogil:
    """Smallest q >= 0 with base + s*q >= 0."""
    if base >= 0:
        return 0
    return (-base + s - 1) // s


cdef inline Py_ssize_t _end_valid(Py_ssize_t base, Py_ssize_t s, Py_ssize_t size,
                                  Py_ssize_t count) noexcept nogil:
    """One past the largest q < count with base + s*q <= size - 1 (0 when there is none)."""
    cdef Py_ssize_t top = size - 1 - base
    if top < 0:
        return 0
    top = top // s + 1
    return top if top < count else count


cdef void _im2col_plane(const floating *xp, Py_ssize_t H, Py_ssize_t W,
                        Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t pad, Py_ssize_t s,
                        Py_ssize_t oy, Py_ssize_t ox, Py_ssize_t hq, Py_ssize_t wq,
                        floating *dst0, Py_ssize_t ld) noexcept nogil:
    """Unroll one (H, W) input plane into kh*kw rows of cols (row stride ld), hq*wq columns."""
    cdef Py_ssize_t i, j, r, q, row, basec, qlo, qhi
    cdef floating *d
    cdef const floating *xr
    for i in range(kh):
        for j in range(kw):
            basec = ox + j - pad
            qlo = _first_valid(basec, s)
            qhi = _end_valid(basec, s, W, wq)
            if qhi < qlo:
                qhi = qlo
            for r in range(hq):
                d = dst0 + (i * kw + j) * ld + r * wq
                row = oy + s * r + i - pad
                if row < 0 or row >= H or qhi == qlo:
                    memset(d, 0, wq * sizeof(floating))
                    continue
                xr = xp + row * W
                for q in range(qlo):
                    d[q] = 0
                if s == 1:
                    memcpy(d + qlo, xr + basec + qlo, (qhi - qlo) * sizeof(floating))
                else:
                    for q in range(qlo, qhi):
                        d[q] = xr[basec + s * q]
                for q in range(qhi, wq):
                    d[q] = 0


cdef void _col2im_plane(const floating *src0, Py_ssize_t ld,
                        Py_ssize_t H, Py_ssize_t W,
                        Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t pad, Py_ssize_t s,
                        Py_ssize_t oy, Py_ssize_t ox, Py_ssize_t hq, Py_ssize_t wq,
                        floating *dxp) noexcept nogil:
    """Zero one (H, W) gradient plane, then add back the kh*kw rows of dcols that read it."""
    cdef Py_ssize_t i, j, r, q, row, basec, qlo, qhi
    cdef const floating *d
    cdef floating *xr
    memset(dxp, 0, H * W * sizeof(floating))
    for i in range(kh):
        for j in range(kw):
            basec = ox + j - pad
            qlo = _first_valid(basec, s)
            qhi = _end_valid(basec, s, W, wq)
            if qhi <= qlo:
                continue
            for r in range(hq):
                row = oy + s * r + i - pad
                if row < 0 or row >= H:
                    continue
                d = src0 + (i * kw + j) * ld + r * wq
                xr = dxp + row * W + basec
                for q in range(qlo, qhi):
                    xr[s * q] += d[q]


def conv_forward(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                 const floating[::1] bias, floating[:, :, :, ::1] y,
                 Py_ssize_t pad, Py_ssize_t stride, Py_ssize_t oy, Py_ssize_t ox,
                 Py_ssize_t chunk, int n_threads):
    """y[n, o, r, q] = bias[o] + sum_{c,i,j} w[o, c, i, j] * xpad[n, c, oy+s*r+i, ox+s*q+j]."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t O = w.shape[0], kh = w.shape[2], kw = w.shape[3]
    cdef Py_ssize_t hq = y.shape[2], wq = y.shape[3]
    cdef Py_ssize_t P = hq * wq, K = C * kh * kw, KK = kh * kw
    cdef Py_ssize_t n0, nb, ld, bc, bo, b, c, o, p
    cdef floating *dst
    cdef const floating *src
    cdef floating bo_val
    if N == 0 or P == 0:
        return
    chunk = max(1, min(chunk, N))
    dtype = np.float32 if floating is float else np.float64
    cdef floating[::1] cols = np.empty(K * chunk * P, dtype=dtype)
    cdef floating[::1] ybuf = np.empty(O * chunk * P, dtype=dtype)
    cdef floating *colsp = &cols[0]
    cdef floating *yp = &ybuf[0]
    with nogil:
        n0 = 0
        while n0 < N:
            nb = min(chunk, N - n0)
            ld = nb * P
            for bc in prange(nb * C, schedule='static', num_threads=n_threads):
                b = bc // C
                c = bc % C
                _im2col_plane(&x[n0 + b, c, 0, 0], H, W, kh, kw, pad, stride, oy, ox,
                              hq, wq, colsp + c * KK * ld + b * P, ld)
            gemm(False, False, <int> O, <int> ld, <int> K, <floating> 1.0, &w[0, 0, 0, 0],
                 <int> K, colsp, <int> ld, <floating> 0.0, yp, <int> ld)
            for bo in prange(nb * O, schedule='static', num_threads=n_threads):
                b = bo // O
                o = bo % O
                dst = &y[n0 + b, o, 0, 0]
                src = yp + o * ld + b * P
                bo_val = bias[o]
                for p in range(P):
                    dst[p] = src[p] + bo_val
            n0 += nb


def conv_backward(const floating[:, :, :, ::1] dy, const floating[:, :, :, ::1] x,
                  const floating[:, :, :, ::1] w, floating[:, :, :, ::1] dx,
                  floating[:, :, :, ::1] dw, floating[::1] db,
                  bint need_dx, Py_ssize_t pad, Py_ssize_t stride, Py_ssize_t oy,
                  Py_ssize_t ox, Py_ssize_t chunk, int n_threads):
    """Gradients of conv_forward: dx (when need_dx; every element written), dw, db (overwritten)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t O = w.shape[0], kh = w.shape[2], kw = w.shape[3]
    cdef Py_ssize_t hq = dy.shape[2], wq = dy.shape[3]
    cdef Py_ssize_t P = hq * wq, K = C * kh * kw, KK = kh * kw
    cdef Py_ssize_t n0, nb, ld, bc, bo, b, c, o, p, n
    cdef floating beta
    cdef double acc
    cdef const floating *src
    memset(&dw[0, 0, 0, 0], 0, O * K * sizeof(floating))
    memset(&db[0], 0, O * sizeof(floating))
    if need_dx and N > 0 and P == 0:
        memset(&dx[0, 0, 0, 0], 0, N * C * H * W * sizeof(floating))
    if N == 0 or P == 0:
        return
    chunk = max(1, min(chunk, N))
    dtype = np.float32 if floating is float else np.float64
    cdef floating[::1] cols = np.empty(K * chunk * P, dtype=dtype)
    cdef floating[::1] dybuf = np.empty(O * chunk * P, dtype=dtype)
    cdef floating[::1] dcols = np.empty(K * chunk * P if need_dx else 1, dtype=dtype)
    cdef floating *colsp = &cols[0]
    cdef floating *dyp = &dybuf[0]
    cdef floating *dcolsp = &dcols[0]
    with nogil:
        n0 = 0
        while n0 < N:
            nb = min(chunk, N - n0)
            ld = nb * P
            beta = 0.0 if n0 == 0 else 1.0
            for bc in prange(nb * C, schedule='static', num_threads=n_threads):
                b = bc // C
                c = bc % C
                _im2col_plane(&x[n0 + b, c, 0, 0], H, W, kh, kw, pad, stride, oy, ox,
                              hq, wq, colsp + c * KK * ld + b * P, ld)
            for bo in prange(nb * O, schedule='static', num_threads=n_threads):
                b = bo // O
                o = bo % O
                memcpy(dyp + o * ld + b * P, &dy[n0 + b, o, 0, 0], P * sizeof(floating))
            # dW (O, K) += dY (O, ld) @ cols^T
            gemm(False, True, <int> O, <int> K, <int> ld, <floating> 1.0, dyp, <int> ld,
                 colsp, <int> ld, beta, &dw[0, 0, 0, 0], <int> K)
            if need_dx:
                # dcols (K, ld) = W^T @ dY
                gemm(True, False, <int> K, <int> ld, <int> O, <floating> 1.0,
                     &w[0, 0, 0, 0], <int> K, dyp, <int> ld, <floating> 0.0, dcolsp, <int> ld)
                for bc in prange(nb * C, schedule='static', num_threads=n_threads):
                    b = bc // C
                    c = bc % C
                    _col2im_plane(dcolsp + c * KK * ld + b * P, ld, H, W, kh, kw, pad,
                                  stride, oy, ox, hq, wq, &dx[n0 + b, c, 0, 0])
            n0 += nb
        for o in prange(O, schedule='static', num_threads=n_threads):
            acc = 0.0
            for n in range(N):
                src = &dy[n, o, 0, 0]
                for p in range(P):
                    acc = acc + src[p]
            db[o] = <floating> acc
