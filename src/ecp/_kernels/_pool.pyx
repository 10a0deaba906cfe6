"""2x2 / stride-2 pooling kernels (random, max, average), their backward scatters, and neighbor fill;
easy average pooling's kernel widening by the p x p box and its adjoint (box_widen, box_fold).

Planes (n, c) are independent: every kernel runs ``prange`` over them, so each output element
is written by exactly one thread and results do not depend on the thread count.
Pooled maps are (H // 2, W // 2): an odd last row / column of the input is not read, and its
gradient is zero. Every function assumes valid, C-contiguous input: ``ecp.pool`` checks it.
"""
cimport cython
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset


def random_pool_forward(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] y,
                        Py_ssize_t oy, Py_ssize_t ox, int n_threads):
    """y[n, c, r, q] = x[n, c, 2r + oy, 2q + ox]."""
    cdef Py_ssize_t C = x.shape[1], hq = y.shape[2], wq = y.shape[3]
    cdef Py_ssize_t nc, n, c, r, q
    cdef const floating *src
    cdef floating *dst
    with nogil:
        for nc in prange(x.shape[0] * C, schedule='static', num_threads=n_threads):
            n = nc // C
            c = nc % C
            for r in range(hq):
                src = &x[n, c, 2 * r + oy, ox]
                dst = &y[n, c, r, 0]
                for q in range(wq):
                    dst[q] = src[2 * q]


def random_pool_backward(const floating[:, :, :, ::1] dy, floating[:, :, :, ::1] dx,
                         Py_ssize_t oy, Py_ssize_t ox, int n_threads):
    """dx = 0, then dx[n, c, 2r + oy, 2q + ox] = dy[n, c, r, q]."""
    cdef Py_ssize_t C = dx.shape[1], H = dx.shape[2], W = dx.shape[3]
    cdef Py_ssize_t hq = dy.shape[2], wq = dy.shape[3]
    cdef Py_ssize_t nc, n, c, r, q
    cdef const floating *src
    cdef floating *dst
    with nogil:
        for nc in prange(dx.shape[0] * C, schedule='static', num_threads=n_threads):
            n = nc // C
            c = nc % C
            memset(&dx[n, c, 0, 0], 0, H * W * sizeof(floating))
            for r in range(hq):
                src = &dy[n, c, r, 0]
                dst = &dx[n, c, 2 * r + oy, ox]
                for q in range(wq):
                    dst[2 * q] = src[q]


cdef extern from "ecp_maxpool.h" nogil:
    void ecp_maxpool_row_f(const float *r0, const float *r1, Py_ssize_t wq, int64_t W,
                           int64_t top, float *y, int64_t *idx)
    void ecp_maxpool_row_d(const double *r0, const double *r1, Py_ssize_t wq, int64_t W,
                           int64_t top, double *y, int64_t *idx)


def max_pool_forward(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] y,
                     int64_t[:, :, :, ::1] idx, int n_threads):
    """Max of each 2x2 window and its flat index h*W + w in the plane (ecp_maxpool.h).

    Ties go to the first maximum in row-major window order; a NaN wins over any number
    (the first NaN of the window), so NaN propagates as in NumPy's max.
    """
    cdef Py_ssize_t C = x.shape[1], W = x.shape[3], hq = y.shape[2], wq = y.shape[3]
    cdef Py_ssize_t nc, n, c, r
    with nogil:
        for nc in prange(x.shape[0] * C, schedule='static', num_threads=n_threads):
            n = nc // C
            c = nc % C
            for r in range(hq):
                if floating is float:
                    ecp_maxpool_row_f(&x[n, c, 2 * r, 0], &x[n, c, 2 * r + 1, 0], wq, W,
                                      2 * r * W, &y[n, c, r, 0], &idx[n, c, r, 0])
                else:
                    ecp_maxpool_row_d(&x[n, c, 2 * r, 0], &x[n, c, 2 * r + 1, 0], wq, W,
                                      2 * r * W, &y[n, c, r, 0], &idx[n, c, r, 0])


def max_pool_backward(const floating[:, :, :, ::1] dy, const int64_t[:, :, :, ::1] idx,
                      floating[:, :, :, ::1] dx, int n_threads):
    """dx = 0, then dx.flat_plane[idx] += dy. Returns how many indices fell outside the plane
    (those are skipped; the caller must treat any as an error)."""
    cdef Py_ssize_t C = dx.shape[1], H = dx.shape[2], W = dx.shape[3]
    cdef Py_ssize_t hq = dy.shape[2], wq = dy.shape[3]
    cdef Py_ssize_t nc, n, c, r, q, bad = 0
    cdef int64_t k, HW = H * W
    cdef floating *plane
    with nogil:
        for nc in prange(dx.shape[0] * C, schedule='static', num_threads=n_threads):
            n = nc // C
            c = nc % C
            plane = &dx[n, c, 0, 0]
            memset(plane, 0, H * W * sizeof(floating))
            for r in range(hq):
                for q in range(wq):
                    k = idx[n, c, r, q]
                    if k < 0 or k >= HW:
                        bad += 1
                    else:
                        plane[k] += dy[n, c, r, q]
    return bad


def avg_pool_forward(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] y, int n_threads):
    """y = mean of each 2x2 window."""
    cdef Py_ssize_t C = x.shape[1], hq = y.shape[2], wq = y.shape[3]
    cdef Py_ssize_t nc, n, c, r, q
    with nogil:
        for nc in prange(x.shape[0] * C, schedule='static', num_threads=n_threads):
            n = nc // C
            c = nc % C
            for r in range(hq):
                for q in range(wq):
                    y[n, c, r, q] = <floating> 0.25 * (
                        (x[n, c, 2 * r, 2 * q] + x[n, c, 2 * r, 2 * q + 1])
                        + (x[n, c, 2 * r + 1, 2 * q] + x[n, c, 2 * r + 1, 2 * q + 1]))


def avg_pool_backward(const floating[:, :, :, ::1] dy, floating[:, :, :, ::1] dx, int n_threads):
    """dx = dy / 4 spread over each 2x2 window; 0 on an odd last row / column."""
    cdef Py_ssize_t C = dx.shape[1], H = dx.shape[2], W = dx.shape[3]
    cdef Py_ssize_t hq = dy.shape[2], wq = dy.shape[3]
    cdef Py_ssize_t nc, n, c, r, q
    cdef floating g
    with nogil:
        for nc in prange(dx.shape[0] * C, schedule='static', num_threads=n_threads):
            n = nc // C
            c = nc % C
            memset(&dx[n, c, 0, 0], 0, H * W * sizeof(floating))
            for r in range(hq):
                for q in range(wq):
                    g = <floating> 0.25 * dy[n, c, r, q]
                    dx[n, c, 2 * r, 2 * q] = g
                    dx[n, c, 2 * r, 2 * q + 1] = g
                    dx[n, c, 2 * r + 1, 2 * q] = g
                    dx[n, c, 2 * r + 1, 2 * q + 1] = g


def neighbor_fill_forward(const floating[:, :, :, ::1] y, floating[:, :, :, ::1] out,
                          int n_threads):
    """out[n, c, h, w] = y[n, c, min(h // 2, hq - 1), min(w // 2, wq - 1)]."""
    cdef Py_ssize_t C = y.shape[1], hq = y.shape[2], wq = y.shape[3]
    cdef Py_ssize_t H = out.shape[2], W = out.shape[3]
    cdef Py_ssize_t nc, n, c, h, w, r
    cdef const floating *src
    cdef floating *dst
    with nogil:
        for nc in prange(y.shape[0] * C, schedule='static', num_threads=n_threads):
            n = nc // C
            c = nc % C
            for h in range(H):
                r = h // 2
                if r > hq - 1:
                    r = hq - 1
                src = &y[n, c, r, 0]
                dst = &out[n, c, h, 0]
                for w in range(2 * wq):
                    dst[w] = src[w // 2]
                for w in range(2 * wq, W):
                    dst[w] = src[wq - 1]


def neighbor_fill_backward(const floating[:, :, :, ::1] dy, floating[:, :, :, ::1] dx,
                           int n_threads):
    """Adjoint of neighbor_fill_forward: dx[r, q] (the pooled map's gradient) sums dy (the filled
    map's) over every cell that copied it."""
    cdef Py_ssize_t C = dx.shape[1], hq = dx.shape[2], wq = dx.shape[3]
    cdef Py_ssize_t H = dy.shape[2], W = dy.shape[3]
    cdef Py_ssize_t nc, n, c, h, w, r
    cdef const floating *src
    cdef floating *dst
    with nogil:
        for nc in prange(dx.shape[0] * C, schedule='static', num_threads=n_threads):
            n = nc // C
            c = nc % C
            memset(&dx[n, c, 0, 0], 0, hq * wq * sizeof(floating))
            for h in range(H):
                r = h // 2
                if r > hq - 1:
                    r = hq - 1
                src = &dy[n, c, h, 0]
                dst = &dx[n, c, r, 0]
                for w in range(2 * wq):
                    dst[w // 2] += src[w]
                for w in range(2 * wq, W):
                    dst[wq - 1] += src[w]



# Easy average pooling's kernel widening and its adjoint (ecp_box.h: flat runs of whole planes,
# the same adds at every vector width).
cdef extern from "ecp_box.h" nogil:
    Py_ssize_t ecp_box_chunk_planes(Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t p)
    Py_ssize_t ecp_box_zsize(Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t p)
    Py_ssize_t ecp_box_accsize(Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t p)
    void ecp_box_widen_f(const float *w, float *wide, Py_ssize_t n_planes, Py_ssize_t kh,
                         Py_ssize_t kw, Py_ssize_t p, float *z)
    void ecp_box_widen_d(const double *w, double *wide, Py_ssize_t n_planes, Py_ssize_t kh,
                         Py_ssize_t kw, Py_ssize_t p, double *z)
    void ecp_box_fold_f(const float *dwide, float *dwk, Py_ssize_t n_planes, Py_ssize_t kh,
                        Py_ssize_t kw, Py_ssize_t p, float *acc)
    void ecp_box_fold_d(const double *dwide, double *dwk, Py_ssize_t n_planes, Py_ssize_t kh,
                        Py_ssize_t kw, Py_ssize_t p, double *acc)


def box_widen(const floating[:, :, :, ::1] w, floating[:, :, :, ::1] wide, Py_ssize_t p,
              int n_threads=1):
    """wide (O, C, kh+p-1, kw+p-1) = w full-convolved with the p x p box, times 1/p^2: easy
    average pooling's kernel. Each tap sums its terms from 0 in the order (box column j, then box
    row i), then is scaled once (ecp_box.h). Chunks of planes are dealt to ``n_threads`` threads,
    each with its own scratch: the same bits at any thread count."""
    cdef Py_ssize_t kh = w.shape[2], kw = w.shape[3], n = w.shape[0] * w.shape[1]
    cdef Py_ssize_t nb = ecp_box_chunk_planes(kh, kw, p), nz = ecp_box_zsize(kh, kw, p)
    cdef Py_ssize_t sps = kh * kw, ps = (kh + p - 1) * (kw + p - 1), n_chunks, ch, n0, t
    cdef int nt
    cdef floating *buf
    if n * kh * kw == 0:   # nothing to widen (the caller refuses such a w)
        return
    n_chunks = (n + nb - 1) // nb
    nt = <int> max(1, min(n_threads, n_chunks))
    buf = <floating *> malloc(nt * nz * sizeof(floating))
    if buf == NULL:
        raise MemoryError()
    with nogil:
        memset(buf, 0, nt * nz * sizeof(floating))   # the zero rows and columns, never written
        with parallel(num_threads=nt):
            t = threadid()
            for ch in prange(n_chunks, schedule='static'):
                n0 = ch * nb
                if floating is float:
                    ecp_box_widen_f(&w[0, 0, 0, 0] + n0 * sps, &wide[0, 0, 0, 0] + n0 * ps,
                                    min(nb, n - n0), kh, kw, p, buf + t * nz)
                else:
                    ecp_box_widen_d(&w[0, 0, 0, 0] + n0 * sps, &wide[0, 0, 0, 0] + n0 * ps,
                                    min(nb, n - n0), kh, kw, p, buf + t * nz)
    free(buf)


def box_fold(const floating[:, :, :, ::1] dwide, floating[:, :, :, ::1] dw, Py_ssize_t p,
             int n_threads=1):
    """dw (O, C, kh, kw) = the p x p box's adjoint of dwide (O, C, kh+p-1, kw+p-1): each tap the
    sum of its p x p taps of dwide, from 0 in the order (j, then i), times 1/p^2 (ecp_box.h).
    Chunks of planes are dealt to ``n_threads`` threads: the same bits at any thread count."""
    cdef Py_ssize_t kh = dw.shape[2], kw = dw.shape[3], n = dw.shape[0] * dw.shape[1]
    cdef Py_ssize_t nb = ecp_box_chunk_planes(kh, kw, p), na = ecp_box_accsize(kh, kw, p)
    cdef Py_ssize_t sps = kh * kw, ps = (kh + p - 1) * (kw + p - 1), n_chunks, ch, n0, t
    cdef int nt
    cdef floating *buf
    if n * kh * kw == 0:
        return
    n_chunks = (n + nb - 1) // nb
    nt = <int> max(1, min(n_threads, n_chunks))
    buf = <floating *> malloc(nt * na * sizeof(floating))
    if buf == NULL:
        raise MemoryError()
    with nogil, parallel(num_threads=nt):
        t = threadid()
        for ch in prange(n_chunks, schedule='static'):
            n0 = ch * nb
            if floating is float:
                ecp_box_fold_f(&dwide[0, 0, 0, 0] + n0 * ps, &dw[0, 0, 0, 0] + n0 * sps,
                               min(nb, n - n0), kh, kw, p, buf + t * na)
            else:
                ecp_box_fold_d(&dwide[0, 0, 0, 0] + n0 * ps, &dw[0, 0, 0, 0] + n0 * sps,
                               min(nb, n - n0), kh, kw, p, buf + t * na)
    free(buf)
