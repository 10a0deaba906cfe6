"""2x2 / stride-2 pooling kernels (random, max, average), their backward scatters, and neighbor fill;
easy average pooling's kernel widening by the p x p box and its adjoint (box_widen, box_fold).

Planes (n, c) are independent: every kernel runs ``prange`` over them, so each output element
is written by exactly one thread and results do not depend on the thread count.
Pooled maps are (H // 2, W // 2): an odd last row / column of the input is not read, and its
gradient is zero. Every function assumes valid, C-contiguous input: ``ecp.pool`` checks it.
"""
cimport cython
from cython cimport floating
from cython.parallel cimport prange
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



# Easy average pooling's kernel widening and its adjoint run as p^2 shifted adds along a flat run of
# whole planes (independent, vectorised, constant offsets), in chunks of about _BOX_CHUNK outputs.
cdef enum:
    _BOX_CHUNK = 2048


cdef extern from *:
    """
    /* Rows of kw elements from a packed run of (kh, kw) planes into rows of stride dw, planes of
       dh rows. Kept out of line so that GCC does not turn each short row into a memcpy call. */
    #if defined(__GNUC__) && !defined(__clang__)
    #define ECP_BOX_NOMEMCPY __attribute__((optimize("no-tree-loop-distribute-patterns")))
    #else
    #define ECP_BOX_NOMEMCPY
    #endif
    #define ECP_BOX_ROWS(NAME, T) \
    static ECP_BOX_NOMEMCPY void NAME(const T *src, T *dst, Py_ssize_t rows, Py_ssize_t kh, \
                                      Py_ssize_t kw, Py_ssize_t dh, Py_ssize_t dw) { \
        Py_ssize_t r, b, a = 0; \
        for (r = 0; r < rows; r++) { \
            for (b = 0; b < kw; b++) dst[b] = src[b]; \
            src += kw; \
            dst += dw; \
            if (++a == kh) { a = 0; dst += (dh - kh) * dw; } \
        } \
    }
    ECP_BOX_ROWS(_ecp_box_rows_f, float)
    ECP_BOX_ROWS(_ecp_box_rows_d, double)
    """
    void _ecp_box_rows_f(const float *src, float *dst, Py_ssize_t rows, Py_ssize_t kh,
                         Py_ssize_t kw, Py_ssize_t dh, Py_ssize_t dw) noexcept nogil
    void _ecp_box_rows_d(const double *src, double *dst, Py_ssize_t rows, Py_ssize_t kh,
                         Py_ssize_t kw, Py_ssize_t dh, Py_ssize_t dw) noexcept nogil


cdef void _box_widen(const floating *w, floating *wide, Py_ssize_t n_planes, Py_ssize_t kh,
                     Py_ssize_t kw, Py_ssize_t p, floating *z) noexcept nogil:
    """wide (n_planes, kh+p-1, kw+p-1) from w (n_planes, kh, kw). z (zeroed by the caller, of
    _box_zsize) holds a chunk of planes in wide's row stride, each data row after p-1 zero columns,
    each plane's kh rows after p-1 zero rows, so that tap (i, j) of every wide output t is
    z[t + (p-1-i)*dw + p-1-j] (a zero where w has no such tap)."""
    cdef Py_ssize_t dh = kh + p - 1, dw = kw + p - 1, ps = dh * dw, sps = kh * kw
    cdef Py_ssize_t nb = max(1, <Py_ssize_t> _BOX_CHUNK // ps), n0, m, n, a, b, i, j, t, nt
    cdef floating scale = <floating> (1.0 / (p * p))
    cdef floating *out
    cdef const floating *zs
    n0 = 0
    while n0 < n_planes:
        m = min(nb, n_planes - n0)
        if floating is float:
            _ecp_box_rows_f(w + n0 * sps, z + (p - 1) * dw + p - 1, m * kh, kh, kw, dh, dw)
        else:
            _ecp_box_rows_d(w + n0 * sps, z + (p - 1) * dw + p - 1, m * kh, kh, kw, dh, dw)
        out = wide + n0 * ps
        nt = m * ps
        if p == 2:   # the common window, in one pass: the same adds in the same order
            for t in range(nt):
                out[t] = (((<floating> 0 + z[t + dw + 1]) + z[t + 1]) + z[t + dw] + z[t]) * scale
            n0 += m
            continue
        for t in range(nt):
            out[t] = 0
        for j in range(p):
            for i in range(p):
                zs = z + (p - 1 - i) * dw + p - 1 - j
                for t in range(nt):
                    out[t] = out[t] + zs[t]
        for t in range(nt):
            out[t] = out[t] * scale
        n0 += m


cdef Py_ssize_t _box_zsize(Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t p) noexcept nogil:
    """Elements of _box_widen's scratch."""
    cdef Py_ssize_t dh = kh + p - 1, dw = kw + p - 1
    cdef Py_ssize_t nb = max(1, <Py_ssize_t> _BOX_CHUNK // (dh * dw))
    return (p - 1 + nb * dh) * dw + p


cdef void _box_fold(const floating *dwide, floating *dwk, Py_ssize_t n_planes, Py_ssize_t kh,
                    Py_ssize_t kw, Py_ssize_t p, floating *acc) noexcept nogil:
    """dwk (n_planes, kh, kw) from dwide (n_planes, kh+p-1, kw+p-1): the sums run over every
    position t of dwide's flat layout (tap (i, j) at t + i*dw + j), into acc (a chunk of planes),
    and only the (kh, kw) corner of each plane is kept (the rest, read across rows, is dropped)."""
    cdef Py_ssize_t dh = kh + p - 1, dw = kw + p - 1, ps = dh * dw, sps = kh * kw
    cdef Py_ssize_t nb = max(1, <Py_ssize_t> _BOX_CHUNK // ps), n0, m, n, a, b, i, j, t, nt
    cdef Py_ssize_t tend = n_planes * ps - (p - 1) * dw - (p - 1)   # the last kept output + 1
    cdef floating scale = <floating> (1.0 / (p * p))
    cdef const floating *src
    cdef const floating *ar
    cdef floating *dst
    n0 = 0
    while n0 < n_planes:
        m = min(nb, n_planes - n0)
        nt = min(m * ps, tend - n0 * ps)
        src = dwide + n0 * ps
        if p == 2:   # the common window, in one pass: the same adds in the same order
            for t in range(nt):
                acc[t] = ((<floating> 0 + src[t]) + src[t + dw]) + src[t + 1] + src[t + dw + 1]
        else:
            for t in range(nt):
                acc[t] = 0
            for j in range(p):
                for i in range(p):
                    for t in range(nt):
                        acc[t] = acc[t] + src[t + i * dw + j]
        for n in range(m):
            for a in range(kh):
                ar = acc + n * ps + a * dw
                dst = dwk + (n0 + n) * sps + a * kw
                for b in range(kw):
                    dst[b] = ar[b] * scale
        n0 += m


def box_widen(const floating[:, :, :, ::1] w, floating[:, :, :, ::1] wide, Py_ssize_t p):
    """wide (O, C, kh+p-1, kw+p-1) = w full-convolved with the p x p box, times 1/p^2: easy
    average pooling's kernel. Each tap sums its terms from 0 in the order (box column j, then box
    row i), then is scaled once: the order (and so the bits) of ecp._plans.widen's NumPy sums."""
    cdef Py_ssize_t kh = w.shape[2], kw = w.shape[3], nz
    cdef floating *buf
    if w.shape[0] * w.shape[1] * kh * kw == 0:   # nothing to widen (the caller refuses such a w)
        return
    nz = _box_zsize(kh, kw, p)
    buf = <floating *> malloc(nz * sizeof(floating))
    if buf == NULL:
        raise MemoryError()
    with nogil:
        memset(buf, 0, nz * sizeof(floating))
        _box_widen(&w[0, 0, 0, 0], &wide[0, 0, 0, 0], w.shape[0] * w.shape[1], kh, kw, p, buf)
    free(buf)


def box_fold(const floating[:, :, :, ::1] dwide, floating[:, :, :, ::1] dw, Py_ssize_t p):
    """dw (O, C, kh, kw) = the p x p box's adjoint of dwide (O, C, kh+p-1, kw+p-1): each tap the
    sum of its p x p taps of dwide, from 0 in the order (j, then i), times 1/p^2 (the order of
    ecp._plans.fold's NumPy sums)."""
    cdef Py_ssize_t kh = dw.shape[2], kw = dw.shape[3], ps = (kh + p - 1) * (kw + p - 1)
    cdef floating *buf
    if dw.shape[0] * dw.shape[1] * kh * kw == 0:
        return
    buf = <floating *> malloc(max(1, <Py_ssize_t> _BOX_CHUNK // ps) * ps * sizeof(floating))
    if buf == NULL:
        raise MemoryError()
    with nogil:
        _box_fold(&dwide[0, 0, 0, 0], &dw[0, 0, 0, 0], dw.shape[0] * dw.shape[1], kh, kw, p, buf)
    free(buf)
