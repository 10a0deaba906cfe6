"""Row-major GEMM on top of ``scipy.linalg.cython_blas`` (column-major Fortran BLAS).

C (m, n) = alpha * op(A) @ op(B) + beta * C, all row-major. A row-major matrix is the
transpose of a column-major one, so C^T = op(B)^T op(A)^T: swap the operands and the sizes.
"""
from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm

ctypedef void (*set_threads_t)(int) noexcept nogil
ctypedef int (*get_threads_t)() noexcept nogil

# OpenBLAS's thread-count functions of the library behind scipy.linalg.cython_blas, when found
# (ecp._threads registers them at import). The kernels run their GEMMs inside their own OpenMP
# threads and switch the BLAS to one thread meanwhile, so the two pools never compete for cores.
cdef set_threads_t _set_threads = NULL
cdef get_threads_t _get_threads = NULL


def _register_thread_control(size_t set_addr, size_t get_addr):
    """Give the kernels OpenBLAS's set/get_num_threads (addresses from ctypes); 0, 0 clears them."""
    global _set_threads, _get_threads
    _set_threads = <set_threads_t> set_addr
    _get_threads = <get_threads_t> get_addr


def blas_thread_control():
    """True when the kernels can set the BLAS thread count themselves."""
    return _set_threads != NULL and _get_threads != NULL


cdef int blas_set_num_threads(int n) noexcept nogil:
    """Set the BLAS thread count; return the previous one (-1, changing nothing, when unknown)."""
    cdef int prev
    if _set_threads == NULL or _get_threads == NULL or n < 1:
        return -1
    prev = _get_threads()
    if prev != n:
        _set_threads(n)
    return prev


cdef void gemm(bint trans_a, bint trans_b, int m, int n, int k,
               floating alpha, const floating *a, int lda,
               const floating *b, int ldb,
               floating beta, floating *c, int ldc) noexcept nogil:
    """C = alpha op(A) op(B) + beta C, row-major; op(A) is (m, k), op(B) is (k, n)."""
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float *> b, &ldb, <float *> a, &lda,
              &beta, c, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double *> b, &ldb, <double *> a, &lda,
              &beta, c, &ldc)


def _gemm_for_tests(a, b):
    """row-major a @ b through the wrapper (float32 or float64 C-contiguous 2-D); test hook."""
    import numpy as np
    cdef float[:, ::1] af, bf, cf
    cdef double[:, ::1] ad, bd, cd
    if a.dtype == np.float32:
        af = a; bf = b
        c = np.empty((a.shape[0], b.shape[1]), np.float32)
        cf = c
        gemm[float](False, False, af.shape[0], bf.shape[1], af.shape[1], 1.0, &af[0, 0],
                    af.shape[1], &bf[0, 0], bf.shape[1], 0.0, &cf[0, 0], cf.shape[1])
    else:
        ad = a; bd = b
        c = np.empty((a.shape[0], b.shape[1]), np.float64)
        cd = c
        gemm[double](False, False, ad.shape[0], bd.shape[1], ad.shape[1], 1.0, &ad[0, 0],
                     ad.shape[1], &bd[0, 0], bd.shape[1], 0.0, &cd[0, 0], cd.shape[1])
    return c
