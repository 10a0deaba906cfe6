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

Every function here assumes valid, C-contiguous input of one dtype: ``ecp.conv`` checks it.
Results do not depend on the thread count: every output element is written by one thread in
a fixed order, the BLAS never splits the reduction dimension across threads, dW is summed in
per-slot buffers added in slot order, and the chunking depends only on the shapes.
"""
cimport cython
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.limits cimport INT_MAX
from libc.string cimport memcpy, memset

import threading

import numpy as np

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


cdef void _forward_item(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                        const floating[::1] bias, floating[:, :, :, ::1] y,
                        Py_ssize_t n0, Py_ssize_t nb, Py_ssize_t r0, Py_ssize_t nr,
                        Py_ssize_t pad, Py_ssize_t stride, Py_ssize_t oy, Py_ssize_t ox,
                        floating *cols, floating *ybuf) noexcept nogil:
    """Output rows r0 .. r0+nr-1 of samples n0 .. n0+nb-1: im2col, one GEMM, move to NCHW
    adding the bias."""
    cdef Py_ssize_t C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t O = w.shape[0], kh = w.shape[2], kw = w.shape[3]
    cdef Py_ssize_t wq = y.shape[3]
    cdef Py_ssize_t P = nr * wq, K = C * kh * kw, ld = nb * P
    cdef Py_ssize_t b, c, o, p
    cdef floating *dst
    cdef const floating *src
    cdef floating bval
    for b in range(nb):
        for c in range(C):
            _im2col_plane(&x[n0 + b, c, 0, 0], H, W, kh, kw, pad, stride, oy + stride * r0, ox,
                          nr, wq, cols + c * kh * kw * ld + b * P, ld)
    gemm(False, False, <int> O, <int> ld, <int> K, <floating> 1.0, &w[0, 0, 0, 0],
         <int> K, cols, <int> ld, <floating> 0.0, ybuf, <int> ld)
    for b in range(nb):
        for o in range(O):
            dst = &y[n0 + b, o, r0, 0]
            src = ybuf + o * ld + b * P
            bval = bias[o]
            for p in range(P):
                dst[p] = src[p] + bval


cdef void _backward_item(const floating[:, :, :, ::1] dy, const floating[:, :, :, ::1] x,
                         const floating[:, :, :, ::1] w, floating[:, :, :, ::1] dx,
                         floating *dw, bint need_dx,
                         Py_ssize_t n0, Py_ssize_t nb, Py_ssize_t pad, Py_ssize_t stride,
                         Py_ssize_t oy, Py_ssize_t ox,
                         floating *cols, floating *dybuf, floating *dcols) noexcept nogil:
    """Samples n0 .. n0+nb-1: dw (O, K) += dY cols^T; dx of those samples = col2im(W^T dY)."""
    cdef Py_ssize_t C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t O = w.shape[0], kh = w.shape[2], kw = w.shape[3]
    cdef Py_ssize_t hq = dy.shape[2], wq = dy.shape[3]
    cdef Py_ssize_t P = hq * wq, K = C * kh * kw, ld = nb * P
    cdef Py_ssize_t b, c, o
    cdef const floating *dyp = &dy[n0, 0, 0, 0]   # one sample's dY is already O x P
    for b in range(nb):
        for c in range(C):
            _im2col_plane(&x[n0 + b, c, 0, 0], H, W, kh, kw, pad, stride, oy, ox,
                          hq, wq, cols + c * kh * kw * ld + b * P, ld)
        if nb > 1:
            for o in range(O):
                memcpy(dybuf + o * ld + b * P, &dy[n0 + b, o, 0, 0], P * sizeof(floating))
    if nb > 1:
        dyp = dybuf
    gemm(False, True, <int> O, <int> K, <int> ld, <floating> 1.0, dyp, <int> ld,
         cols, <int> ld, <floating> 1.0, dw, <int> K)
    if need_dx:
        gemm(True, False, <int> K, <int> ld, <int> O, <floating> 1.0,
             &w[0, 0, 0, 0], <int> K, dyp, <int> ld, <floating> 0.0, dcols, <int> ld)
        for b in range(nb):
            for c in range(C):
                _col2im_plane(dcols + c * kh * kw * ld + b * P, ld, H, W, kh, kw, pad,
                              stride, oy, ox, hq, wq, &dx[n0 + b, c, 0, 0])


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
    cdef Py_ssize_t N = x.shape[0], K = x.shape[1] * w.shape[2] * w.shape[3], O = w.shape[0]
    cdef Py_ssize_t hq = y.shape[2], wq = y.shape[3]
    cdef Py_ssize_t n_items, n_rb, it, t, n0, nb, r0, nt, ib, group
    cdef int prev
    if N == 0 or hq * wq == 0:
        return
    n_sitems = max(1, min(n_sitems, N))
    rows = max(1, min(rows, hq))
    if rows < hq:
        n_sitems = N
    group = (N + n_sitems - 1) // n_sitems   # samples of the largest item
    n_rb = (hq + rows - 1) // rows
    n_items = n_sitems * n_rb
    nt = max(1, min(n_threads, n_items))
    cdef Py_ssize_t nr_cols = 32 if floating is float else 16   # the kernel's 2 vectors
    cdef Py_ssize_t C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t kh = w.shape[2], kw = w.shape[3]
    cdef Py_ssize_t sz = sizeof(floating), tused = 0, o_koff = -1
    cdef bint use_koff
    cdef Py_ssize_t wp_n, tile_n, panel_n, o_tile, o_wp, o_panel, o_cols, o_ybuf
    cdef char *base
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
                        ecp_pack_weights_f(&w[0, 0, 0, 0], O, K, wpt)
                    else:
                        ecp_pack_weights_d(&w[0, 0, 0, 0], O, K, wpt)
                else:
                    if floating is float:
                        ecp_pack_weights_v_f(&w[0, 0, 0, 0], O, K, nr_cols, wpt)
                    else:
                        ecp_pack_weights_v_d(&w[0, 0, 0, 0], O, K, nr_cols, wpt)
                for it in prange(n_items, schedule='static'):
                    ib = it // n_rb
                    n0 = ib * N // n_sitems
                    nb = (ib + 1) * N // n_sitems - n0
                    r0 = (it % n_rb) * rows
                    if kernel == 1:
                        if floating is float:
                            ecp_direct_item_f(&x[0, 0, 0, 0], C, H, W, wpt, O, kh, kw,
                                              &bias[0], &y[0, 0, 0, 0], hq, wq, n0, nb, r0,
                                              min(rows, hq - r0), pad, stride, oy, ox,
                                              panel, tile)
                        else:
                            ecp_direct_item_d(&x[0, 0, 0, 0], C, H, W, wpt, O, kh, kw,
                                              &bias[0], &y[0, 0, 0, 0], hq, wq, n0, nb, r0,
                                              min(rows, hq - r0), pad, stride, oy, ox,
                                              panel, tile)
                    else:
                        if floating is float:
                            ecp_direct_rows_item_f(&x[0, 0, 0, 0], C, H, W, wpt, O, kh, kw,
                                                   &bias[0], &y[0, 0, 0, 0], hq, wq, n0, nb, r0,
                                                   min(rows, hq - r0), pad, stride, oy, ox,
                                                   panel, tile, koffp)
                        else:
                            ecp_direct_rows_item_d(&x[0, 0, 0, 0], C, H, W, wpt, O, kh, kw,
                                                   &bias[0], &y[0, 0, 0, 0], hq, wq, n0, nb, r0,
                                                   min(rows, hq - r0), pad, stride, oy, ox,
                                                   panel, tile, koffp)
        return
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
                _forward_item(x, w, bias, y, n0, nb, r0, min(rows, hq - r0), pad, stride,
                              oy, ox, cols, ybuf)
        blas_set_num_threads(prev)


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
    cdef Py_ssize_t N = x.shape[0], O = w.shape[0]
    cdef Py_ssize_t C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t kh = w.shape[2], kw = w.shape[3], hq = dy.shape[2], wq = dy.shape[3]
    cdef Py_ssize_t K = C * kh * kw
    cdef Py_ssize_t P = hq * wq
    cdef Py_ssize_t n_items, it, t, n0, nb, nt, s, it0, it1, o, ld, group
    cdef int prev
    cdef floating *dwp = &dw[0, 0, 0, 0]
    cdef floating *dxp = NULL
    cdef floating *dwsp
    if not (direct and DIRECT_SUPPORTED):
        need_dw = True
    if N == 0 or P == 0:   # nothing to sum: zero gradients (else the reductions write them all)
        if need_dw:
            memset(dwp, 0, O * K * sizeof(floating))
            memset(&db[0], 0, O * sizeof(floating))
        if need_dx and N > 0:
            memset(&dx[0, 0, 0, 0], 0, N * C * H * W * sizeof(floating))
        return
    if need_dx:
        dxp = &dx[0, 0, 0, 0]
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
                        ecp_pack_weights_t_f(&w[0, 0, 0, 0], O, K, wtt)
                    else:
                        ecp_pack_weights_t_d(&w[0, 0, 0, 0], O, K, wtt)
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
                                &x[0, 0, 0, 0], C, H, W, &dy[0, 0, 0, 0], O, hq, wq, wtt,
                                kh, kw, n0, nb, pad, stride, oy, ox, dwsp, dxp,
                                rpanel, dpanel, xpanel,
                                koffp, it == it0)
                        else:
                            ecp_direct_backward_item_d(
                                &x[0, 0, 0, 0], C, H, W, &dy[0, 0, 0, 0], O, hq, wq, wtt,
                                kh, kw, n0, nb, pad, stride, oy, ox, dwsp, dxp,
                                rpanel, dpanel, xpanel,
                                koffp, it == it0)
                    if need_dw:
                        _slot_bias(&dy[0, 0, 0, 0], dbs + s * dbs_row, it0 * N // n_items,
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
                        _reduce_filter(dwp, dws, o, K, ld, n_slots, slot_size, &db[0], dbs, dbs_row)
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
                        _backward_item(dy, x, w, dx, dws + s * slot_size, need_dx, n0, nb, pad,
                                       stride, oy, ox, cols, dybuf, dcols)
                    _slot_bias(&dy[0, 0, 0, 0], dbs + s * dbs_row, it0 * N // n_items,
                               it1 * N // n_items, O, P)
                for o in prange(O, schedule='static'):   # opens with a barrier: see above
                    _reduce_filter(dwp, dws, o, K, ld, n_slots, slot_size, &db[0], dbs, dbs_row)
            blas_set_num_threads(prev)
