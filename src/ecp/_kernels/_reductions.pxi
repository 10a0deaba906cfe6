# The reductions of the _conv extension's backward pass (included by _conv.pyx): dW and db from
# the per-slot partial sums, always added in slot order, so that the result does not depend on
# the thread count; db is summed in double.

cdef inline double _plane_sum(const floating *src, Py_ssize_t n) noexcept nogil:
    """Sum of src[0 .. n-1] in double, in eight interleaved partial sums (eight independent add
    chains, so that the sum is not bound by one add's latency per element)."""
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
    that the adds vectorize -- and db[o] from the slots' partial sums (_bias_from_slots)."""
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
    double. The thread that summed the slot's dW does it, from the dY it has just read (so no
    thread reads another thread's samples of dY)."""
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
    rows (whole rows, so the adds vectorize), then moved into dW's columns (in float32 on
    AVX-512 by 16 x 16 register transposes).
    The slots are only read, never summed in place: a slot is written by its own thread alone,
    so its cache lines do not move between cores while the reduction runs."""
    cdef Py_ssize_t k0 = kb * _KBLOCK, k1 = min(K, k0 + _KBLOCK)
    cdef Py_ssize_t k, o
    _sum_rows(acc, dws + k0 * ld, n_slots, slot_size, (k1 - k0) * ld)
    if floating is float:
        if _vec:
            ecp_transpose_f(acc, ld, k1 - k0, O, dwp + k0, K)
            return
    for k in range(k1 - k0):
        for o in range(O):
            dwp[o * K + k0 + k] = acc[k * ld + o]


cdef inline double _filter_bias_grad(const floating *dy, Py_ssize_t o, Py_ssize_t N, Py_ssize_t O,
                                     Py_ssize_t P) noexcept nogil:
    """db[o]: dy's planes of filter o summed (in sample order, in double; where the direct
    kernels run, by ecp_sum_planes, in one sweep over the batch)."""
    cdef double acc = 0.0
    cdef Py_ssize_t n
    if _vec:
        if floating is float:
            return ecp_sum_planes_f(dy + o * P, P, N, O * P)
        else:
            return ecp_sum_planes_d(dy + o * P, P, N, O * P)
    for n in range(N):
        acc = acc + _plane_sum(dy + (n * O + o) * P, P)
    return acc
