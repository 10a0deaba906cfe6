"""Convolution kernels for the full convolution and the mode-K quarter one, forward and backward.

Both are the same computation on a sampling grid: output (r, q) of plane o reads the input
window whose top-left corner (in the zero-padded input) is (oy + s*r, ox + s*q).
The full convolution is s = 1, oy = ox = 0; Easy Convolution with mode K is s = 2,
(oy, ox) = divmod(K, 2) -- it computes only the positions Random Pooling keeps.

Two implementations, chosen per call by ``ecp.conv`` (the one that measured faster for the shape):

- im2col + BLAS: for a chunk of samples the input windows are unrolled into ``cols``
  (K = C*kh*kw rows), one GEMM with the weights gives every output of the chunk, a pass moves
  them to NCHW adding the bias. The backward pass rebuilds ``cols``, gets dW from one GEMM per
  chunk and dX from W^T dY followed by a col2im scatter.
- ecp_direct.h (AVX-512): register tiles computing outputs, dW and dX from windows read in place
  (where no window reaches into the padding: the pixel-rows forward and the backward's dW) or
  packed a few pixels at a time into cache-resident panels.

Work is cut into items of whole samples (or, forward, of output rows), spread over OpenMP
threads, each with its own scratch (cached per Python thread between calls, see ``_scratch``).

The entry points ``conv_forward`` / ``conv_backward`` assume valid, C-contiguous input of one
dtype (``ecp.conv`` checks it); the planned calls (``ForwardPlan`` / ``BackwardPlan``, which
``ecp.conv`` builds and caches) check their arrays themselves, in C, on every call.
Results do not depend on the thread count: every output element is written by one thread in
a fixed order, the BLAS never splits the reduction dimension across threads, dW is summed in
per-slot buffers added in slot order, and the chunking depends only on the shapes.
"""
cimport cython
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.limits cimport INT_MAX
from libc.string cimport memcpy, memset

cimport numpy as cnp

import threading

import numpy as np

cnp.import_array()

from ._blas cimport blas_set_num_threads, gemm

_local = threading.local()


cdef class _Arena:
    """Bytes of scratch, 64-byte aligned (a cache line: the kernels' vector loads of panel rows
    then never straddle two lines), and the address of their start."""
    cdef object buf
    cdef char *data
    cdef Py_ssize_t size

    def __cinit__(self, Py_ssize_t size):
        self.buf = np.empty(size + 64, np.uint8)
        cdef unsigned char[::1] raw = self.buf
        cdef Py_ssize_t at = <Py_ssize_t> &raw[0]
        self.data = <char *> (at + (64 - at % 64) % 64)   # at > 0: right under C division too
        self.size = size


cdef char *_scratch(Py_ssize_t nbytes) except NULL:
    """The calling thread's scratch for one kernel call: nbytes, 64-byte aligned, cut by the caller
    into its buffers (``_carve``). It is kept between calls and grown when too small: the kernels
    ask for the same scratch call after call, and fresh allocations of it cost page faults on
    every call (5-9% of the paper's conv2 backward). One area rather than a buffer per use, so a
    call pays one lookup (six lookups and views were 4 us of the paper's easy conv2 backward).
    Each Python thread has its own, so concurrent calls never share scratch. This area holds what
    the threads of a call share (the backward's dW slots and their db partials); each thread's
    own buffers live in its own area (``_thread_scratch``)."""
    cdef _Arena arena = getattr(_local, "arena", None)
    if arena is None or arena.size < nbytes:
        arena = _Arena(max(nbytes, 64))
        _local.arena = arena
    return arena.data


cdef char **_thread_scratch(Py_ssize_t nt, Py_ssize_t nbytes) except NULL:
    """The starts of nt areas of nbytes, one per OpenMP thread of a call (index threadid()), kept
    and grown as ``_scratch``. Thread t's buffers sit in area t whatever the call, so they stay in
    the cache of the core that last ran thread t: carved from one shared area, the buffers of
    one call's thread 1 overlapped another call's thread 0, and every call of a training step
    (each a different layout) began by pulling them from the other core (slots and threads are
    now matched statically, see conv_forward)."""
    cdef list arenas = getattr(_local, "thread_arenas", None)
    cdef _Arena table = getattr(_local, "thread_table", None)
    cdef _Arena arena
    cdef Py_ssize_t t
    if arenas is None:
        arenas = []
        _local.thread_arenas = arenas
    if table is None or table.size < nt * <Py_ssize_t> sizeof(char *):
        table = _Arena(max(nt, 8) * sizeof(char *))
        _local.thread_table = table
    cdef char **starts = <char **> table.data
    for t in range(nt):
        if t == len(arenas):
            arenas.append(None)
        arena = arenas[t]
        if arena is None or arena.size < nbytes:
            arena = _Arena(max(nbytes, 64))
            arenas[t] = arena
        starts[t] = arena.data
    return starts


cdef inline Py_ssize_t _carve(Py_ssize_t *used, Py_ssize_t nbytes) noexcept:
    """Offset of the next nbytes of a call's scratch (whole cache lines: every buffer starts
    64-byte aligned); advances *used."""
    cdef Py_ssize_t at = used[0]
    used[0] = at + (nbytes + 63) // 64 * 64
    return at


cdef inline Py_ssize_t _row(Py_ssize_t n, Py_ssize_t sz) noexcept:
    """n elements of sz bytes rounded up to whole cache lines: a row of a per-thread buffer, so
    that no two threads write to one line."""
    return (n * sz + 63) // 64 * 64 // sz


def clear_scratch():
    """Release the calling thread's cached kernel scratch (ecp.conv.clear_scratch)."""
    _local.arena = None
    _local.thread_arenas = None
    _local.thread_table = None


cdef extern from "ecp_im2col.h" nogil:
    void ecp_im2col_plane_f(const float *xp, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh,
                            Py_ssize_t kw, Py_ssize_t pad, Py_ssize_t s, Py_ssize_t oy,
                            Py_ssize_t ox, Py_ssize_t hq, Py_ssize_t wq, float *dst0,
                            Py_ssize_t ld)
    void ecp_im2col_plane_d(const double *xp, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh,
                            Py_ssize_t kw, Py_ssize_t pad, Py_ssize_t s, Py_ssize_t oy,
                            Py_ssize_t ox, Py_ssize_t hq, Py_ssize_t wq, double *dst0,
                            Py_ssize_t ld)
    void ecp_col2im_plane_f(const float *src0, Py_ssize_t ld, Py_ssize_t H, Py_ssize_t W,
                            Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t pad, Py_ssize_t s,
                            Py_ssize_t oy, Py_ssize_t ox, Py_ssize_t hq, Py_ssize_t wq,
                            float *dxp)
    void ecp_col2im_plane_d(const double *src0, Py_ssize_t ld, Py_ssize_t H, Py_ssize_t W,
                            Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t pad, Py_ssize_t s,
                            Py_ssize_t oy, Py_ssize_t ox, Py_ssize_t hq, Py_ssize_t wq,
                            double *dxp)


cdef extern from "ecp_direct.h" nogil:
    int ecp_direct_supported()
    double ecp_sum_planes_f(const float *src, Py_ssize_t n, Py_ssize_t count, Py_ssize_t stride)
    double ecp_sum_planes_d(const double *src, Py_ssize_t n, Py_ssize_t count, Py_ssize_t stride)
    void ecp_transpose_f(const float *src, Py_ssize_t lds, Py_ssize_t rows, Py_ssize_t cols,
                         float *dst, Py_ssize_t ldd)
    void ecp_window_offsets(Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                            Py_ssize_t n, int *koff)
    void ecp_im2col_plane_s2_f(const float *xp, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh,
                               Py_ssize_t kw, Py_ssize_t pad, Py_ssize_t oy, Py_ssize_t ox,
                               Py_ssize_t hq, Py_ssize_t wq, float *dst0, Py_ssize_t ld)
    void ecp_im2col_plane_s2_d(const double *xp, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh,
                               Py_ssize_t kw, Py_ssize_t pad, Py_ssize_t oy, Py_ssize_t ox,
                               Py_ssize_t hq, Py_ssize_t wq, double *dst0, Py_ssize_t ld)
    void ecp_pack_weights_f(const float *w, Py_ssize_t O, Py_ssize_t K, float *wp)
    void ecp_pack_weights_d(const double *w, Py_ssize_t O, Py_ssize_t K, double *wp)
    void ecp_direct_item_f(const float *x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                           const float *wp, Py_ssize_t O, Py_ssize_t kh, Py_ssize_t kw,
                           const float *bias, float *y, Py_ssize_t hq, Py_ssize_t wq,
                           Py_ssize_t n0, Py_ssize_t nb, Py_ssize_t r0, Py_ssize_t nr,
                           Py_ssize_t pad, Py_ssize_t s, Py_ssize_t oy, Py_ssize_t ox,
                           float *panel, float *tile)
    void ecp_direct_item_d(const double *x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                           const double *wp, Py_ssize_t O, Py_ssize_t kh, Py_ssize_t kw,
                           const double *bias, double *y, Py_ssize_t hq, Py_ssize_t wq,
                           Py_ssize_t n0, Py_ssize_t nb, Py_ssize_t r0, Py_ssize_t nr,
                           Py_ssize_t pad, Py_ssize_t s, Py_ssize_t oy, Py_ssize_t ox,
                           double *panel, double *tile)
    void ecp_pack_weights_v_f(const float *w, Py_ssize_t O, Py_ssize_t K, Py_ssize_t nr, float *wv)
    void ecp_pack_weights_v_d(const double *w, Py_ssize_t O, Py_ssize_t K, Py_ssize_t nr, double *wv)
    void ecp_direct_rows_item_f(const float *x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                                const float *wv, Py_ssize_t O, Py_ssize_t kh, Py_ssize_t kw,
                                const float *bias, float *y, Py_ssize_t hq, Py_ssize_t wq,
                                Py_ssize_t n0, Py_ssize_t nb, Py_ssize_t r0, Py_ssize_t nr,
                                Py_ssize_t pad, Py_ssize_t s, Py_ssize_t oy, Py_ssize_t ox,
                                float *rpanel, float *tile, const int *koff)
    void ecp_direct_rows_item_d(const double *x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                                const double *wv, Py_ssize_t O, Py_ssize_t kh, Py_ssize_t kw,
                                const double *bias, double *y, Py_ssize_t hq, Py_ssize_t wq,
                                Py_ssize_t n0, Py_ssize_t nb, Py_ssize_t r0, Py_ssize_t nr,
                                Py_ssize_t pad, Py_ssize_t s, Py_ssize_t oy, Py_ssize_t ox,
                                double *rpanel, double *tile, const int *koff)
    void ecp_pack_weights_t_f(const float *w, Py_ssize_t O, Py_ssize_t K, float *wt)
    void ecp_pack_weights_t_d(const double *w, Py_ssize_t O, Py_ssize_t K, double *wt)
    void ecp_direct_backward_item_f(const float *x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                                    const float *dy, Py_ssize_t O, Py_ssize_t hq, Py_ssize_t wq,
                                    const float *wt, Py_ssize_t kh, Py_ssize_t kw,
                                    Py_ssize_t n0, Py_ssize_t nb, Py_ssize_t pad, Py_ssize_t s,
                                    Py_ssize_t oy, Py_ssize_t ox, float *dwacc, float *dx,
                                    float *rpanel, float *dpanel, float *xpanel, const int *koff,
                                    int fresh)
    void ecp_direct_backward_item_d(const double *x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                                    const double *dy, Py_ssize_t O, Py_ssize_t hq, Py_ssize_t wq,
                                    const double *wt, Py_ssize_t kh, Py_ssize_t kw,
                                    Py_ssize_t n0, Py_ssize_t nb, Py_ssize_t pad, Py_ssize_t s,
                                    Py_ssize_t oy, Py_ssize_t ox, double *dwacc, double *dx,
                                    double *rpanel, double *dpanel, double *xpanel, const int *koff,
                                    int fresh)

#: True when this CPU runs the fused-packing AVX-512 forward kernel (ecp_direct.h)
DIRECT_SUPPORTED = bool(ecp_direct_supported())
# The same, for the kernels' nogil code: the stride-2 im2col then takes ecp_direct.h's vector copy
# and the bias gradient its vector sum
cdef bint _avx512 = DIRECT_SUPPORTED


def _use_vector_helpers(bint flag):
    """Let the stride-2 im2col and the bias gradient's sums use their AVX-512 code (where the CPU
    has it) or force the portable loops (for tests, which otherwise never reach them on an
    AVX-512 machine); returns the old setting."""
    global _avx512
    old = _avx512
    _avx512 = flag and DIRECT_SUPPORTED
    return old


cdef struct _Geom:
    # A call's geometry: x (N, C, H, W), w (O, C, kh, kw), zero padding pad, and the output (or
    # dy) (N, O, hq, wq) on the sampling grid (stride, oy, ox) of the padded input
    Py_ssize_t N, C, H, W, O, kh, kw, hq, wq, pad, stride, oy, ox


cdef _Geom _geom(const Py_ssize_t *xs, const Py_ssize_t *ws, Py_ssize_t hq, Py_ssize_t wq,
                 Py_ssize_t pad, Py_ssize_t stride, Py_ssize_t oy, Py_ssize_t ox) noexcept:
    cdef _Geom g
    g.N, g.C, g.H, g.W = xs[0], xs[1], xs[2], xs[3]
    g.O, g.kh, g.kw = ws[0], ws[2], ws[3]
    g.hq, g.wq, g.pad, g.stride, g.oy, g.ox = hq, wq, pad, stride, oy, ox
    return g


cdef inline void _im2col_plane(const floating *xp, Py_ssize_t H, Py_ssize_t W,
                               Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t pad, Py_ssize_t s,
                               Py_ssize_t oy, Py_ssize_t ox, Py_ssize_t hq, Py_ssize_t wq,
                               floating *dst0, Py_ssize_t ld) noexcept nogil:
    """Unroll one (H, W) input plane into kh*kw rows of cols (row stride ld), hq*wq columns."""
    if s == 2 and _avx512:
        if floating is float:
            ecp_im2col_plane_s2_f(xp, H, W, kh, kw, pad, oy, ox, hq, wq, dst0, ld)
        else:
            ecp_im2col_plane_s2_d(xp, H, W, kh, kw, pad, oy, ox, hq, wq, dst0, ld)
        return
    if floating is float:
        ecp_im2col_plane_f(xp, H, W, kh, kw, pad, s, oy, ox, hq, wq, dst0, ld)
    else:
        ecp_im2col_plane_d(xp, H, W, kh, kw, pad, s, oy, ox, hq, wq, dst0, ld)


cdef inline void _col2im_plane(const floating *src0, Py_ssize_t ld,
                               Py_ssize_t H, Py_ssize_t W,
                               Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t pad, Py_ssize_t s,
                               Py_ssize_t oy, Py_ssize_t ox, Py_ssize_t hq, Py_ssize_t wq,
                               floating *dxp) noexcept nogil:
    """Zero one (H, W) gradient plane, then add back the kh*kw rows of dcols that read it."""
    if floating is float:
        ecp_col2im_plane_f(src0, ld, H, W, kh, kw, pad, s, oy, ox, hq, wq, dxp)
    else:
        ecp_col2im_plane_d(src0, ld, H, W, kh, kw, pad, s, oy, ox, hq, wq, dxp)


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
            _im2col_plane(x + ((n0 + b) * C + c) * H * W, H, W, kh, kw, g.pad, g.stride,
                          g.oy + g.stride * r0, g.ox, nr, wq, cols + c * kh * kw * ld + b * P, ld)
    cdef floating *yo
    if nb == 1 and nr == g.hq:
        # one whole sample: its output (O x P) is one block of y -- the product goes there and
        # the bias is added in place (copying it from ybuf, bias added, was a sixth of the
        # paper's conv1 forward)
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
            _im2col_plane(x + ((n0 + b) * C + c) * H * W, H, W, kh, kw, g.pad, g.stride, g.oy,
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
                _col2im_plane(dcols + c * kh * kw * ld + b * P, ld, H, W, kh, kw, g.pad,
                              g.stride, g.oy, g.ox, hq, wq, dx + ((n0 + b) * C + c) * H * W)


cdef inline double _plane_sum(const floating *src, Py_ssize_t n) noexcept nogil:
    """Sum of src[0 .. n-1] in double, in eight interleaved partial sums (a single chain of
    dependent adds ran at one element per add latency: 17% of conv1's backward)."""
    cdef double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0, a4 = 0.0, a5 = 0.0, a6 = 0.0, a7 = 0.0
    cdef Py_ssize_t i = 0
    while i + 8 <= n:
        a0 += src[i]
        a1 += src[i + 1]
        a2 += src[i + 2]
        a3 += src[i + 3]
        a4 += src[i + 4]
        a5 += src[i + 5]
        a6 += src[i + 6]
        a7 += src[i + 7]
        i += 8
    while i < n:
        a0 += src[i]
        i += 1
    return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))


cdef inline void _sum_rows(floating *dst, const floating *src, Py_ssize_t n, Py_ssize_t stride,
                           Py_ssize_t length) noexcept nogil:
    """dst[k] = ((src[k] + src[stride + k]) + src[2*stride + k]) + ... over n rows, k < length
    (the first two rows in one pass; src is only read)."""
    cdef Py_ssize_t r, k
    if n == 1:
        memcpy(dst, src, length * sizeof(floating))
        return
    for k in range(length):
        dst[k] = src[k] + src[stride + k]
    for r in range(2, n):
        for k in range(length):
            dst[k] = dst[k] + src[r * stride + k]


cdef inline void _reduce_filter(floating *dwp, const floating *dws, Py_ssize_t o, Py_ssize_t K,
                                Py_ssize_t ld, Py_ssize_t n_slots, Py_ssize_t slot_size,
                                floating *db, const double *dbs, Py_ssize_t dbs_row) noexcept nogil:
    """Filter o's row of dW -- its slot rows (ld apart) added in slot order, a row at a time so
    that the adds vectorize (a division per element cost more than the sums) -- and db[o] from
    the slots' partial sums (_bias_from_slots)."""
    _sum_rows(dwp + o * K, dws + o * ld, n_slots, slot_size, K)
    db[o] = <floating> _bias_from_slots(dbs, o, n_slots, dbs_row)


cdef inline double _bias_from_slots(const double *dbs, Py_ssize_t o, Py_ssize_t n_slots,
                                    Py_ssize_t dbs_row) noexcept nogil:
    """db[o]: the slots' partial sums of filter o, added in slot order."""
    cdef double acc = dbs[o]
    cdef Py_ssize_t r
    for r in range(1, n_slots):
        acc = acc + dbs[r * dbs_row + o]
    return acc


cdef inline void _slot_bias(const floating *dy, double *dbs_slot, Py_ssize_t n_lo, Py_ssize_t n_hi,
                            Py_ssize_t O, Py_ssize_t P) noexcept nogil:
    """A slot's partial db: for every filter o, dy's planes of samples n_lo .. n_hi-1 summed in
    double. The thread that summed the slot's dW does it, from the dY it has just read. (db had
    been summed over the whole batch a filter at a time after the slots, each thread reading the
    other thread's samples of dY, in a loop of its own: trained side by side, ECP's conv time a
    batch went 574 -> 562 us with slot partials, max pooling's 2120 -> 2097.)"""
    cdef Py_ssize_t o
    for o in range(O):
        dbs_slot[o] = _filter_bias_grad(dy + n_lo * O * P, o, n_hi - n_lo, O, P)


# Columns of dW per block of the k-major reduction: 16 rows of slots, 2 KB in float32 for 32 filters
cdef enum:
    _KBLOCK = 16


cdef inline void _reduce_columns(floating *dwp, const floating *dws, Py_ssize_t kb, Py_ssize_t K,
                                 Py_ssize_t O, Py_ssize_t ld, Py_ssize_t n_slots,
                                 Py_ssize_t slot_size, floating *acc) noexcept nogil:
    """Columns kb*_KBLOCK .. of dW from slots laid out k-major (rows ld apart): the block's rows of
    the slots added in slot order by _sum_rows into ``acc``, the calling thread's own _KBLOCK
    rows (whole rows, so the adds vectorize; element by element, with the slot loop innermost,
    this was a fifth of the paper's easy conv2 backward at N = 2), then moved into dW's columns
    (in float32 on AVX-512 by 16 x 16 register transposes).
    The slots are only read. Summed into slot 0 in place, as they were, half of slot 0 was
    written by the other thread, and those lines went back and forth between the cores every
    call: with the host's two vCPUs far apart (a core-to-core round trip of 350 ns instead of
    60), the paper's easy conv2 backward without dx took 44-46 us at batch 2 and 178-193 at
    batch 50, against 40-41 and 175-177 now (the same with the cores close, 15 and 137). What
    remains of the 25-40 us extra is inherent to sharing the partial sums: each core reads half
    of the other's slot here, and the owner takes those lines back when it rewrites its slot in
    the next call; software prefetches of either measured no faster."""
    cdef Py_ssize_t k0 = kb * _KBLOCK, k1 = min(K, k0 + _KBLOCK)
    cdef Py_ssize_t k, o
    _sum_rows(acc, dws + k0 * ld, n_slots, slot_size, (k1 - k0) * ld)
    if floating is float:
        if _avx512:
            ecp_transpose_f(acc, ld, k1 - k0, O, dwp + k0, K)
            return
    for k in range(k1 - k0):
        for o in range(O):
            dwp[o * K + k0 + k] = acc[k * ld + o]


cdef inline double _filter_bias_grad(const floating *dy, Py_ssize_t o, Py_ssize_t N, Py_ssize_t O,
                                     Py_ssize_t P) noexcept nogil:
    """db[o]: dy's planes of filter o summed (in sample order, in double; on AVX-512 by
    ecp_sum_planes, in one sweep over the batch)."""
    cdef double acc = 0.0
    cdef Py_ssize_t n
    if _avx512:
        if floating is float:
            return ecp_sum_planes_f(dy + o * P, P, N, O * P)
        else:
            return ecp_sum_planes_d(dy + o * P, P, N, O * P)
    for n in range(N):
        acc = acc + _plane_sum(dy + (n * O + o) * P, P)
    return acc


cdef int _run_forward(const floating *x, const floating *w, const floating *bias, floating *y,
                      const _Geom *g, Py_ssize_t n_sitems, Py_ssize_t rows, int n_threads,
                      int kernel) except -1:
    cdef Py_ssize_t N = g.N, K = g.C * g.kh * g.kw, O = g.O, hq = g.hq, wq = g.wq
    cdef Py_ssize_t pad = g.pad, stride = g.stride, oy = g.oy, ox = g.ox
    cdef Py_ssize_t n_items, n_rb, it, t, n0, nb, r0, nt, ib, group
    cdef int prev
    if N == 0 or hq * wq == 0:
        return 0
    n_sitems = max(1, min(n_sitems, N))
    rows = max(1, min(rows, hq))
    if rows < hq:
        n_sitems = N
    group = (N + n_sitems - 1) // n_sitems   # samples of the largest item
    n_rb = (hq + rows - 1) // rows
    n_items = n_sitems * n_rb
    nt = max(1, min(n_threads, n_items))
    cdef Py_ssize_t nr_cols = 32 if floating is float else 16   # the kernel's 2 vectors
    cdef Py_ssize_t C = g.C, H = g.H, W = g.W, kh = g.kh, kw = g.kw
    cdef Py_ssize_t sz = sizeof(floating), tused = 0, o_koff = -1
    cdef bint use_koff
    cdef Py_ssize_t wp_n, tile_n, panel_n, o_tile, o_wp, o_panel, o_cols, o_ybuf
    cdef char **tbase
    cdef floating *wpt
    cdef floating *tile
    cdef floating *panel
    cdef floating *cols
    cdef floating *ybuf
    cdef int *koffp = NULL
    if not DIRECT_SUPPORTED:
        kernel = 0
    if kernel == 1 or kernel == 2:
        if kernel == 1:
            tile_n = (O + 7) // 8 * 8 * nr_cols   # a tile per filter block
            wp_n = ((O + 7) // 8) * 8 * K
            panel_n = K * nr_cols
        else:
            tile_n = (O + nr_cols - 1) // nr_cols * 32 * nr_cols
            wp_n = (O + nr_cols - 1) // nr_cols * nr_cols * K
            panel_n = 32 * K + nr_cols // 2   # + a vector of slack
        o_tile = _carve(&tused, tile_n * sz)   # in the thread's own area (_carve: whole lines)
        o_wp = _carve(&tused, wp_n * sz)   # a copy per thread, packed by that thread
        o_panel = _carve(&tused, panel_n * sz)
        use_koff = kernel == 2 and C * H * W <= INT_MAX
        if use_koff:   # the window offsets, for reading windows in place: each thread its own copy
            o_koff = _carve(&tused, K * sizeof(int))
        tbase = _thread_scratch(nt, tused)
        with nogil:
            with parallel(num_threads=nt):
                t = threadid()
                koffp = NULL
                if use_koff:   # (one copy written by the first core was fetched by the other every call)
                    koffp = <int *> (tbase[t] + o_koff)
                    ecp_window_offsets(C, H, W, kh, kw, K, koffp)
                wpt = <floating *> (tbase[t] + o_wp)
                tile = <floating *> (tbase[t] + o_tile)
                panel = <floating *> (tbase[t] + o_panel)
                if kernel == 1:
                    if floating is float:
                        ecp_pack_weights_f(w, O, K, wpt)
                    else:
                        ecp_pack_weights_d(w, O, K, wpt)
                else:
                    if floating is float:
                        ecp_pack_weights_v_f(w, O, K, nr_cols, wpt)
                    else:
                        ecp_pack_weights_v_d(w, O, K, nr_cols, wpt)
                for it in prange(n_items, schedule='static'):
                    ib = it // n_rb
                    n0 = ib * N // n_sitems
                    nb = (ib + 1) * N // n_sitems - n0
                    r0 = (it % n_rb) * rows
                    if kernel == 1:
                        if floating is float:
                            ecp_direct_item_f(x, C, H, W, wpt, O, kh, kw,
                                              bias, y, hq, wq, n0, nb, r0,
                                              min(rows, hq - r0), pad, stride, oy, ox,
                                              panel, tile)
                        else:
                            ecp_direct_item_d(x, C, H, W, wpt, O, kh, kw,
                                              bias, y, hq, wq, n0, nb, r0,
                                              min(rows, hq - r0), pad, stride, oy, ox,
                                              panel, tile)
                    else:
                        if floating is float:
                            ecp_direct_rows_item_f(x, C, H, W, wpt, O, kh, kw,
                                                   bias, y, hq, wq, n0, nb, r0,
                                                   min(rows, hq - r0), pad, stride, oy, ox,
                                                   panel, tile, koffp)
                        else:
                            ecp_direct_rows_item_d(x, C, H, W, wpt, O, kh, kw,
                                                   bias, y, hq, wq, n0, nb, r0,
                                                   min(rows, hq - r0), pad, stride, oy, ox,
                                                   panel, tile, koffp)
        return 0
    o_cols = _carve(&tused, K * group * rows * wq * sz)
    o_ybuf = _carve(&tused, O * group * rows * wq * sz)
    tbase = _thread_scratch(nt, tused)
    with nogil:
        prev = blas_set_num_threads(1)
        with parallel(num_threads=nt):
            t = threadid()
            cols = <floating *> (tbase[t] + o_cols)
            ybuf = <floating *> (tbase[t] + o_ybuf)
            for it in prange(n_items, schedule='static'):
                ib = it // n_rb
                n0 = ib * N // n_sitems
                nb = (ib + 1) * N // n_sitems - n0
                r0 = (it % n_rb) * rows
                _forward_item(x, w, bias, y, g, n0, nb, r0, min(rows, hq - r0), cols, ybuf)
        blas_set_num_threads(prev)
    return 0


def conv_forward(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                 const floating[::1] bias, floating[:, :, :, ::1] y,
                 Py_ssize_t pad, Py_ssize_t stride, Py_ssize_t oy, Py_ssize_t ox,
                 Py_ssize_t n_sitems, Py_ssize_t rows, int n_threads, int kernel=0):
    """y[n, o, r, q] = bias[o] + sum_{c,i,j} w[o, c, i, j] * xpad[n, c, oy+s*r+i, ox+s*q+j].

    ``kernel`` (1 and 2 only where DIRECT_SUPPORTED): 0 im2col + BLAS; 1 ecp_direct.h's panel
    kernel (windows packed a run of same-row pixels at a time, 8 filters x 32 pixels per
    register tile); 2 its pixel-rows kernel (windows packed a pixel at a time, 8 pixels x 32
    filters per tile), for output rows too short for runs to pay.

    Work is cut into items: ``n_sitems`` runs of whole samples (item i: samples i*N // n_sitems
    up to (i+1)*N // n_sitems, so their sizes differ by one at most), or (when ``rows`` < the
    output height) blocks of ``rows`` output rows of one sample. Each thread takes whole items, with
    its own scratch and its own single-threaded GEMM. The items are dealt statically, in
    contiguous runs: thread t takes the same share of the samples in every call (forward,
    backward, and the pooling and ReLU kernels, whose static loops over samples cut the batch
    the same way), so a sample's activations stay in the cache of the core that produced them.
    Handed out dynamically, a sample's data moved between the cores from one call to the next:
    when the host placed the two vCPUs of this machine far apart (a core-to-core round trip of
    350 ns instead of 60), a training step of the paper's ECP network took 0.96 ms of conv time
    instead of 0.59. Every output is written by its item alone, so the results are the same.
    """
    cdef _Geom g = _geom(&x.shape[0], &w.shape[0], y.shape[2], y.shape[3], pad, stride, oy, ox)
    if g.N == 0 or g.hq * g.wq == 0:
        return
    _run_forward(&x[0, 0, 0, 0], &w[0, 0, 0, 0], &bias[0], &y[0, 0, 0, 0], &g, n_sitems, rows,
                 n_threads, kernel)


cdef int _run_backward(const floating *dy, const floating *x, const floating *w, floating *dx,
                       floating *dw, floating *db, const _Geom *g, bint need_dx,
                       Py_ssize_t n_sitems, Py_ssize_t n_slots, int n_threads, bint direct,
                       bint need_dw, bint in_place) except -1:
    cdef Py_ssize_t N = g.N, O = g.O, C = g.C, H = g.H, W = g.W, kh = g.kh, kw = g.kw
    cdef Py_ssize_t hq = g.hq, wq = g.wq, pad = g.pad, stride = g.stride, oy = g.oy, ox = g.ox
    cdef Py_ssize_t K = C * kh * kw
    cdef Py_ssize_t P = hq * wq
    cdef Py_ssize_t n_items, it, t, n0, nb, nt, s, it0, it1, o, ld, group
    cdef int prev
    cdef floating *dwp = dw
    cdef floating *dxp = dx if need_dx else NULL
    cdef floating *dwsp
    if not (direct and DIRECT_SUPPORTED):
        need_dw = True
    if N == 0 or P == 0:   # nothing to sum: zero gradients (else the reductions write them all)
        if need_dw:
            memset(dwp, 0, O * K * sizeof(floating))
            memset(db, 0, O * sizeof(floating))
        if need_dx and N > 0:
            memset(dx, 0, N * C * H * W * sizeof(floating))
        return 0
    n_items = max(1, min(n_sitems, N))
    group = (N + n_items - 1) // n_items   # samples of the largest item
    n_slots = max(1, min(n_slots, n_items))
    nt = max(1, min(n_threads, n_slots))
    cdef Py_ssize_t nr_cols = 32 if floating is float else 16   # the kernel's 2 vectors
    cdef Py_ssize_t nob = (O + 7) // 8, nkb = (K + 7) // 8
    cdef Py_ssize_t sz = sizeof(floating), used = 0, tused = 0, slot_size, o_dws, o_koff = -1
    cdef Py_ssize_t dbs_row = (O + 7) // 8 * 8, o_dbs, k
    cdef double *dbs
    cdef Py_ssize_t o_wt, dp_row, o_rp, o_red, o_dp, o_xp, o_cols, o_dybuf, o_dcols
    cdef char *base
    cdef char **tbase
    cdef floating *dws
    cdef floating *wtt
    cdef floating *rpanel
    cdef floating *dpanel
    cdef floating *xpanel
    cdef floating *cols
    cdef floating *dybuf
    cdef floating *dcols
    cdef int *koffp = NULL
    cdef Py_ssize_t ob_ld = (O + nr_cols - 1) // nr_cols * nr_cols
    # dW straight from x (ecp_tile_xt) when no window reaches into the padding
    cdef bint inside = (in_place and need_dw and oy >= pad and ox >= pad
                        and oy + stride * (hq - 1) - pad + kh <= H
                        and ox + stride * (wq - 1) - pad + kw <= W and C * H * W <= INT_MAX)
    if direct and DIRECT_SUPPORTED:
        ld = (K + nr_cols - 1) // nr_cols * nr_cols      # dW rows padded to whole tiles
        # dW slots, overwritten by their first item (no zeroing): k-major (nkb*8 rows of ob_ld filters) when
        # the windows are read in place, else filter-major (nob*8 rows of ld)
        slot_size = _row((nkb * 8 * ob_ld if inside else nob * 8 * ld) if need_dw else 1, sz)
        o_dws = _carve(&used, n_slots * slot_size * sz)
        o_dbs = _carve(&used, n_slots * dbs_row * sizeof(double))
        if inside:   # the window offsets: each thread its own copy, as in conv_forward
            o_koff = _carve(&tused, nkb * 8 * sizeof(int))
        o_wt = _carve(&tused, (nkb * 8 * O if need_dx else 1) * sz)   # packed by its thread
        o_rp = _carve(&tused, (nr_cols * max(ld, ob_ld) + nr_cols // 2) * sz)  # + a vector of slack
        o_red = _carve(&tused, (_KBLOCK * ob_ld if inside else 1) * sz)   # a block of the reduction
        dp_row = nob * 8 * nr_cols
        o_dp = _carve(&tused, dp_row * sz)
        o_xp = _carve(&tused, (nkb * 8 * nr_cols if need_dx else 1) * sz)
        base = _scratch(used)
        tbase = _thread_scratch(nt, tused)
        dws = <floating *> (base + o_dws)
        dbs = <double *> (base + o_dbs)
        with nogil:
            with parallel(num_threads=nt):
                t = threadid()
                koffp = NULL
                if inside:
                    koffp = <int *> (tbase[t] + o_koff)
                    ecp_window_offsets(C, H, W, kh, kw, nkb * 8, koffp)
                wtt = <floating *> (tbase[t] + o_wt)
                rpanel = <floating *> (tbase[t] + o_rp)
                dpanel = <floating *> (tbase[t] + o_dp)
                xpanel = <floating *> (tbase[t] + o_xp)
                memset(dpanel, 0, dp_row * sz)   # rows past O stay 0
                if need_dx:
                    if floating is float:
                        ecp_pack_weights_t_f(w, O, K, wtt)
                    else:
                        ecp_pack_weights_t_d(w, O, K, wtt)
                for s in prange(n_slots, schedule='static'):
                    dwsp = NULL
                    if need_dw:   # the slot's first item overwrites it: no zeroing
                        dwsp = dws + s * slot_size
                    it0 = s * n_items // n_slots
                    it1 = (s + 1) * n_items // n_slots
                    for it in range(it0, it1):
                        n0 = it * N // n_items
                        nb = (it + 1) * N // n_items - n0
                        if floating is float:
                            ecp_direct_backward_item_f(
                                x, C, H, W, dy, O, hq, wq, wtt,
                                kh, kw, n0, nb, pad, stride, oy, ox, dwsp, dxp,
                                rpanel, dpanel, xpanel,
                                koffp, it == it0)
                        else:
                            ecp_direct_backward_item_d(
                                x, C, H, W, dy, O, hq, wq, wtt,
                                kh, kw, n0, nb, pad, stride, oy, ox, dwsp, dxp,
                                rpanel, dpanel, xpanel,
                                koffp, it == it0)
                    if need_dw:
                        _slot_bias(dy, dbs + s * dbs_row, it0 * N // n_items,
                                   it1 * N // n_items, O, P)
                # In the same parallel region: one fork and join per call. Cython makes each prange
                # of a parallel block an `omp for nowait`, but the threads still meet before the
                # slots are added: the loops below have an index that is firstprivate and
                # lastprivate, which GCC's OpenMP opens with a barrier (a thread that finished its
                # slot early was seen waiting there). A reduction loop without that wait fails
                # test_dw_slots_are_added_only_when_every_thread_has_finished.
                if inside:
                    for o in prange((K + _KBLOCK - 1) // _KBLOCK, schedule='static'):
                        _reduce_columns(dwp, dws, o, K, O, ob_ld, n_slots, slot_size,
                                        <floating *> (tbase[t] + o_red))
                        if o == 0:   # db: a few adds, by the thread of the first block
                            for k in range(O):
                                db[k] = <floating> _bias_from_slots(dbs, k, n_slots, dbs_row)
                elif need_dw:
                    for o in prange(O, schedule='static'):
                        _reduce_filter(dwp, dws, o, K, ld, n_slots, slot_size, db, dbs, dbs_row)
    else:
        ld = K
        slot_size = _row(O * K, sz)
        o_dws = _carve(&used, n_slots * slot_size * sz)   # zeroed by its slot's thread
        o_dbs = _carve(&used, n_slots * dbs_row * sizeof(double))
        o_cols = _carve(&tused, K * group * P * sz)
        o_dybuf = _carve(&tused, O * group * P * sz)
        o_dcols = _carve(&tused, (K * group * P if need_dx else 1) * sz)
        base = _scratch(used)
        tbase = _thread_scratch(nt, tused)
        dws = <floating *> (base + o_dws)
        dbs = <double *> (base + o_dbs)
        with nogil:
            # One BLAS thread: a threaded BLAS would give other sums than a single one.
            prev = blas_set_num_threads(1)
            with parallel(num_threads=nt):
                t = threadid()
                cols = <floating *> (tbase[t] + o_cols)
                dybuf = <floating *> (tbase[t] + o_dybuf)
                dcols = <floating *> (tbase[t] + o_dcols)
                for s in prange(n_slots, schedule='static'):
                    memset(dws + s * slot_size, 0, slot_size * sz)
                    it0 = s * n_items // n_slots
                    it1 = (s + 1) * n_items // n_slots
                    for it in range(it0, it1):
                        n0 = it * N // n_items
                        nb = (it + 1) * N // n_items - n0
                        _backward_item(dy, x, w, dx, dws + s * slot_size, need_dx, g, n0, nb,
                                       cols, dybuf, dcols)
                    _slot_bias(dy, dbs + s * dbs_row, it0 * N // n_items,
                               it1 * N // n_items, O, P)
                for o in prange(O, schedule='static'):   # opens with a barrier: see above
                    _reduce_filter(dwp, dws, o, K, ld, n_slots, slot_size, db, dbs, dbs_row)
            blas_set_num_threads(prev)
    return 0


def conv_backward(const floating[:, :, :, ::1] dy, const floating[:, :, :, ::1] x,
                  const floating[:, :, :, ::1] w, floating[:, :, :, ::1] dx,
                  floating[:, :, :, ::1] dw, floating[::1] db,
                  bint need_dx, Py_ssize_t pad, Py_ssize_t stride, Py_ssize_t oy,
                  Py_ssize_t ox, Py_ssize_t n_sitems, Py_ssize_t n_slots, int n_threads,
                  bint direct=False, bint need_dw=True, bint in_place=True):
    """Gradients of conv_forward: dx (when need_dx; every element written), dw, db (overwritten
    when need_dw; need_dw=False, direct only, computes dx alone and leaves dw and db untouched).
    ``in_place`` (direct only): when every window lies inside the plane, read the windows for dW
    from x in place rather than packing them (the same bits; False packs, for tests).

    The batch is cut into ``n_sitems`` items of whole samples as in conv_forward, dealt to
    ``n_slots`` slots in contiguous runs; each slot sums its items' dW in its own buffer (and its
    samples' db, in double), and the slots are added in order at the end. Slots, not
    threads, own the partial sums, so the result does not depend on the thread count, nor on which
    thread takes which slot (they are dealt statically, as conv_forward's items: with as many
    threads as slots, thread t sums slot t, the samples it took in the forward pass).
    ``direct`` (only where DIRECT_SUPPORTED) runs each item through ecp_direct.h's fused kernel
    (packed panels of pixels, dx accumulated straight from each panel) instead of im2col + BLAS
    + col2im.
    """
    cdef _Geom g = _geom(&x.shape[0], &w.shape[0], dy.shape[2], dy.shape[3], pad, stride, oy, ox)
    cdef bint full = g.N > 0 and g.hq * g.wq > 0
    _run_backward(&dy[0, 0, 0, 0] if full else NULL, &x[0, 0, 0, 0] if full else NULL,
                  &w[0, 0, 0, 0], &dx[0, 0, 0, 0] if need_dx and g.N > 0 else NULL,
                  &dw[0, 0, 0, 0], &db[0], &g, need_dx, n_sitems, n_slots, n_threads, direct,
                  need_dw, in_place)


# ------------------------------------------------------------------------------ planned calls

cdef inline bint _is_array(object a, int type_num, int ndim, const Py_ssize_t *dims) noexcept:
    """Whether ``a`` is exactly what a planned call takes: an ndarray (not a subclass) of
    ``type_num`` in native byte order, C-contiguous, with dimensions ``dims``."""
    cdef cnp.ndarray arr
    cdef int i
    if not cnp.PyArray_CheckExact(a):
        return False
    arr = <cnp.ndarray> a
    if (cnp.PyArray_TYPE(arr) != type_num or cnp.PyArray_NDIM(arr) != ndim
            or not cnp.PyArray_IS_C_CONTIGUOUS(arr) or not cnp.PyArray_ISNOTSWAPPED(arr)):
        return False
    for i in range(ndim):
        if cnp.PyArray_DIM(arr, i) != dims[i]:
            return False
    return True


cdef str _mismatch(str name, object a, int type_num, int ndim, const Py_ssize_t *dims):
    """The error message for an argument ``a`` that a planned call does not take."""
    want = (f"a C-contiguous {np.dtype(np.float32 if type_num == cnp.NPY_FLOAT else np.float64)} "
            f"ndarray of shape {tuple(dims[i] for i in range(ndim))} (the shape this call was planned for)")
    if type(a) is not np.ndarray:
        got = type(a).__name__
    else:
        got = (f"{a.dtype} {'C-contiguous' if a.flags.c_contiguous else 'non-contiguous'} array of "
               f"shape {a.shape}")
    return f"{name} must be {want}, got {got}"


cdef inline bint _apart(cnp.ndarray a, cnp.ndarray b) noexcept:
    """Whether the bytes of two C-contiguous arrays do not overlap."""
    cdef char *pa = <char *> cnp.PyArray_DATA(a)
    cdef char *pb = <char *> cnp.PyArray_DATA(b)
    return pa + cnp.PyArray_NBYTES(a) <= pb or pb + cnp.PyArray_NBYTES(b) <= pa


cdef inline bint _writes_apart(object out, object a, object b, object c) noexcept:
    """Whether the C-contiguous array ``out`` is writeable and shares no memory with a, b, c
    (C-contiguous arrays too), so that the kernels may write it while reading them."""
    return (cnp.PyArray_ISWRITEABLE(<cnp.ndarray> out) and _apart(out, a) and _apart(out, b)
            and _apart(out, c))


cdef inline void *_data(object a) noexcept:
    return cnp.PyArray_DATA(<cnp.ndarray> a)


cdef class _Plan:
    """A convolution call planned once for one geometry (x's and w's shapes, dtype, padding,
    mode) and the module settings it was planned under: ``ecp.conv`` checks the geometry, plans
    the call and caches the plan. Running it checks in C that the arrays are exactly those the
    plan was made for (``fits``) and calls the kernel on their data, so that a call of the
    steady state of a training loop costs a few attribute reads instead of the Python checks,
    the cache lookup and the buffer acquisitions of ``conv_forward`` / ``conv_backward``."""
    cdef _Geom g
    cdef int type_num
    cdef Py_ssize_t x_dims[4]
    cdef Py_ssize_t w_dims[4]
    cdef Py_ssize_t y_dims[4]     # the output of the forward pass, dy of the backward
    cdef readonly object padding, mode, tunables
    cdef readonly int kernel
    cdef readonly Py_ssize_t items
    cdef readonly bint threaded

    def __init__(self, tuple x_shape, tuple w_shape, tuple y_shape, str dtype_char, padding,
                 mode, Py_ssize_t stride, Py_ssize_t oy, Py_ssize_t ox, int kernel,
                 Py_ssize_t items, bint threaded, tunables):
        cdef int i
        cdef _Geom *g
        if dtype_char not in ("f", "d"):
            raise ValueError(f"dtype_char must be 'f' or 'd', got {dtype_char!r}")
        if len(x_shape) != 4 or len(w_shape) != 4 or len(y_shape) != 4:
            raise ValueError(f"shapes must have 4 dimensions, got {x_shape}, {w_shape}, {y_shape}")
        self.type_num = cnp.NPY_FLOAT if dtype_char == "f" else cnp.NPY_DOUBLE
        for i in range(4):
            self.x_dims[i], self.w_dims[i], self.y_dims[i] = x_shape[i], w_shape[i], y_shape[i]
        self.g = _geom(self.x_dims, self.w_dims, y_shape[2], y_shape[3], padding, stride, oy, ox)
        # ecp.conv plans only checked geometries; a plan made by hand must still never let the
        # kernels read or write outside the arrays
        g = &self.g
        if (min(g.C, g.H, g.W, g.O, g.kh, g.kw) < 1 or min(g.N, g.hq, g.wq) < 0 or g.pad < 0
                or stride not in (1, 2) or not (0 <= oy < stride and 0 <= ox < stride)
                or self.w_dims[1] != g.C or self.y_dims[0] != g.N or self.y_dims[1] != g.O
                or (g.hq > 0 and oy + stride * (g.hq - 1) + g.kh > g.H + 2 * g.pad)
                or (g.wq > 0 and ox + stride * (g.wq - 1) + g.kw > g.W + 2 * g.pad)
                or not (0 <= kernel <= 2)
                or g.C * g.kh * g.kw > INT_MAX or g.hq * g.wq > INT_MAX   # (the BLAS takes ints)
                or not (mode is None and stride == 1 if type(mode) is not int
                        else 0 <= mode <= 3 and stride == 2 and (oy, ox) == divmod(mode, 2))):
            raise ValueError(f"not a convolution the kernels can run: x {x_shape}, w {w_shape}, "
                             f"output {y_shape}, padding {padding}, mode {mode!r}, stride {stride}, "
                             f"offset ({oy}, {ox}), kernel {kernel}")
        self.padding, self.mode, self.tunables = padding, mode, tunables
        self.kernel, self.items, self.threaded = kernel, items, threaded

    cdef bint _inputs_fit(self, x, w) noexcept:
        return (_is_array(x, self.type_num, 4, self.x_dims)
                and _is_array(w, self.type_num, 4, self.w_dims))

    cdef bint _same_call(self, padding, mode, tunables) except -1:
        # ints compared as the checked path would take them (it refuses floats, say)
        return (type(padding) is int and padding == self.padding
                and (mode is None if self.mode is None else (type(mode) is int and mode == self.mode))
                and tunables == self.tunables)

    cdef int _threads(self, int n_threads) noexcept:
        return n_threads if self.threaded else 1

    cdef int _check(self, str name, object a, int ndim, const Py_ssize_t *dims) except -1:
        """Raise unless ``a`` is what this plan takes for argument ``name``: a TypeError naming
        it when it is not an ndarray, else a ValueError saying what was expected."""
        if not _is_array(a, self.type_num, ndim, dims):
            raise (ValueError if type(a) is np.ndarray else TypeError)(
                _mismatch(name, a, self.type_num, ndim, dims))
        return 0


cdef class ForwardPlan(_Plan):
    """A planned forward call (conv_forward): ``run(x, w, b, n_threads)`` returns y."""
    cdef readonly Py_ssize_t rows
    cdef Py_ssize_t b_dims[1]
    cdef tuple _args

    def __init__(self, x_shape, w_shape, y_shape, dtype_char, padding, mode, stride, oy, ox,
                 kernel, items, rows, threaded, tunables):
        super().__init__(x_shape, w_shape, y_shape, dtype_char, padding, mode, stride, oy, ox,
                         kernel, items, threaded, tunables)
        self.rows = rows
        self.b_dims[0] = self.w_dims[0]
        self._args = (x_shape, w_shape, y_shape, dtype_char, padding, mode, stride, oy, ox, kernel,
                      items, rows, threaded, tunables)

    def __reduce__(self):   # (layers keep their last plan: a pickled or copied network keeps it too)
        return type(self), self._args

    @property
    def out_shape(self):
        return tuple(self.y_dims[i] for i in range(4))

    def fits(self, x, w, b, padding, mode, tunables):
        """Whether this plan runs a call with these arguments (b an array: not None)."""
        return (self._inputs_fit(x, w) and _is_array(b, self.type_num, 1, self.b_dims)
                and self._same_call(padding, mode, tunables))

    def run(self, x, w, b, int n_threads):
        """y (a new array) for x, w, b of the planned shapes and dtype (else a ValueError, or a
        TypeError for what is not an ndarray, naming the argument)."""
        self._check("x", x, 4, self.x_dims)
        self._check("w", w, 4, self.w_dims)
        self._check("b", b, 1, self.b_dims)
        y = cnp.PyArray_EMPTY(4, <cnp.npy_intp *> self.y_dims, self.type_num, 0)
        if self.type_num == cnp.NPY_FLOAT:
            _run_forward(<const float *> _data(x), <const float *> _data(w),
                         <const float *> _data(b), <float *> _data(y), &self.g, self.items,
                         self.rows, self._threads(n_threads), self.kernel)
        else:
            _run_forward(<const double *> _data(x), <const double *> _data(w),
                         <const double *> _data(b), <double *> _data(y), &self.g, self.items,
                         self.rows, self._threads(n_threads), self.kernel)
        return y


cdef class BackwardPlan(_Plan):
    """A planned backward call (conv_backward): ``run(dy, x, w, compute_dx, n_threads)`` returns
    (dx or None, dw, db). ``kernel``: 0 im2col + BLAS, 1 direct, 2 split (dW and db through
    im2col + BLAS, then dx alone through the direct kernel in ``dx_items`` items)."""
    cdef readonly Py_ssize_t dx_items, slots
    cdef tuple _args

    def __init__(self, x_shape, w_shape, dy_shape, dtype_char, padding, mode, stride, oy, ox,
                 kernel, items, dx_items, slots, threaded, tunables):
        super().__init__(x_shape, w_shape, dy_shape, dtype_char, padding, mode, stride, oy, ox,
                         kernel, items, threaded, tunables)
        self.dx_items, self.slots = dx_items, slots
        self._args = (x_shape, w_shape, dy_shape, dtype_char, padding, mode, stride, oy, ox,
                      kernel, items, dx_items, slots, threaded, tunables)

    def __reduce__(self):
        return type(self), self._args

    def fits(self, dy, x, w, padding, mode, tunables):
        """Whether this plan runs a call with these arguments."""
        return (self._inputs_fit(x, w) and _is_array(dy, self.type_num, 4, self.y_dims)
                and self._same_call(padding, mode, tunables))

    def run(self, dy, x, w, bint compute_dx, int n_threads, dw=None, db=None):
        """(dx or None, dw, db) for dy, x, w of the planned shapes and dtype (else an error naming
        the argument, as ForwardPlan.run).
        dx is a new array; dw and db are written into the arrays given (a layer's gradients,
        saving two allocations and a copy) when they are of the planned shape and dtype,
        C-contiguous, writeable and share no memory with dy, x or w; else into new arrays."""
        self._check("dy", dy, 4, self.y_dims)
        self._check("x", x, 4, self.x_dims)
        self._check("w", w, 4, self.w_dims)
        dx = cnp.PyArray_EMPTY(4, <cnp.npy_intp *> self.x_dims, self.type_num, 0) if compute_dx else None
        if not (dw is not None and _is_array(dw, self.type_num, 4, self.w_dims) and _writes_apart(dw, dy, x, w)):
            dw = cnp.PyArray_EMPTY(4, <cnp.npy_intp *> self.w_dims, self.type_num, 0)
        if not (db is not None and _is_array(db, self.type_num, 1, self.w_dims) and _writes_apart(db, dy, x, w)
                and _writes_apart(db, dw, dw, dw)):
            db = cnp.PyArray_EMPTY(1, <cnp.npy_intp *> self.w_dims, self.type_num, 0)
        cdef int nt = self._threads(n_threads)
        if self.type_num == cnp.NPY_FLOAT:
            _backward_planned(<const float *> _data(dy), <const float *> _data(x),
                              <const float *> _data(w),
                              <float *> _data(dx) if compute_dx else NULL, <float *> _data(dw),
                              <float *> _data(db), &self.g, compute_dx, self.kernel,
                              self.items, self.dx_items, self.slots, nt)
        else:
            _backward_planned(<const double *> _data(dy), <const double *> _data(x),
                              <const double *> _data(w),
                              <double *> _data(dx) if compute_dx else NULL, <double *> _data(dw),
                              <double *> _data(db), &self.g, compute_dx, self.kernel,
                              self.items, self.dx_items, self.slots, nt)
        return dx, dw, db


cdef int _backward_planned(const floating *dy, const floating *x, const floating *w, floating *dx,
                           floating *dw, floating *db, const _Geom *g, bint compute_dx, int kernel,
                           Py_ssize_t items, Py_ssize_t dx_items, Py_ssize_t slots,
                           int n_threads) except -1:
    """BackwardPlan.run's kernel calls: one, or for the split kernel (2) dW and db through
    im2col + BLAS and then dx alone through the direct kernel."""
    _run_backward(dy, x, w, dx, dw, db, g, compute_dx and kernel != 2, items, slots, n_threads,
                  kernel == 1, True, True)
    if kernel == 2 and compute_dx:
        _run_backward(dy, x, w, dx, dw, db, g, True, dx_items, slots, n_threads, True, False, True)
    return 0
