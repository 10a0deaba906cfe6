"""Row-major GEMM for the conv kernels, on a BLAS whose thread count only ecp sets.

C (m, n) = alpha * op(A) @ op(B) + beta * C, all row-major. A row-major matrix is the
transpose of a column-major one, so C^T = op(B)^T op(A)^T: swap the operands and the sizes.

``gemm`` calls the sgemm_ / dgemm_ that ``ecp._blas_instance`` registers at import: those of a
private instance of SciPy's OpenBLAS (loaded with dlmopen, on one thread for good) where that
works, else SciPy's own ``scipy.linalg.cython_blas``, the library every other caller shares. In
the second (shared) mode the kernels put the shared library on one thread while they run:
``blas_single_enter`` / ``blas_single_exit`` keep a process-wide count of the calls inside, under
a lock, so that the first call in saves and lowers the thread count and the last call out
restores it. In the private mode both do nothing.
"""
from cpython.pythread cimport (PyThread_type_lock, PyThread_allocate_lock, PyThread_acquire_lock,
                               PyThread_release_lock, WAIT_LOCK)
from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm

ctypedef void (*sgemm_t)(char *transa, char *transb, int *m, int *n, int *k, float *alpha,
                         float *a, int *lda, float *b, int *ldb, float *beta, float *c,
                         int *ldc) noexcept nogil
ctypedef void (*dgemm_t)(char *transa, char *transb, int *m, int *n, int *k, double *alpha,
                         double *a, int *lda, double *b, int *ldb, double *beta, double *c,
                         int *ldc) noexcept nogil
ctypedef void (*set_threads_t)(int) noexcept nogil
ctypedef int (*get_threads_t)() noexcept nogil

# The GEMMs the kernels call (SciPy's until a private instance is registered).
cdef sgemm_t _sgemm = sgemm
cdef dgemm_t _dgemm = dgemm
cdef bint _private = False

# Shared mode only: the thread-count functions of SciPy's OpenBLAS (NULL when not found), the
# number of kernel calls now inside blas_single_enter/exit, and the count the first one found.
cdef set_threads_t _set_threads = NULL
cdef get_threads_t _get_threads = NULL
cdef PyThread_type_lock _lock = PyThread_allocate_lock()
cdef int _inside = 0
cdef int _saved = -1


def _register_private_gemm(size_t sgemm_addr, size_t dgemm_addr):
    """Make ``gemm`` call these sgemm_ / dgemm_ (addresses from ctypes, of a BLAS instance that
    no one else sets the threads of); 0, 0 goes back to SciPy's shared cython_blas."""
    global _sgemm, _dgemm, _private
    if sgemm_addr and dgemm_addr:
        _sgemm = <sgemm_t> sgemm_addr
        _dgemm = <dgemm_t> dgemm_addr
        _private = True
    else:
        _sgemm = sgemm
        _dgemm = dgemm
        _private = False


def _register_thread_control(size_t set_addr, size_t get_addr):
    """Give the shared mode OpenBLAS's set/get_num_threads (addresses from ctypes); 0, 0 clears them."""
    global _set_threads, _get_threads
    _set_threads = <set_threads_t> set_addr
    _get_threads = <get_threads_t> get_addr


def private_gemm():
    """True when ``gemm`` runs on ecp's private BLAS instance, False on SciPy's shared one."""
    return _private


def blas_thread_control():
    """True when, in the shared mode, the kernels can put the shared BLAS on one thread."""
    return _set_threads != NULL and _get_threads != NULL


cdef void blas_single_enter() noexcept nogil:
    """Before a kernel's parallel region: in the shared mode, the first call in puts the shared
    BLAS on one thread (remembering its count); the others only count themselves in."""
    global _inside, _saved
    if _private or _set_threads == NULL or _get_threads == NULL:
        return
    PyThread_acquire_lock(_lock, WAIT_LOCK)
    if _inside == 0:
        _saved = _get_threads()
        if _saved != 1:
            _set_threads(1)
    _inside += 1
    PyThread_release_lock(_lock)


cdef void blas_single_exit() noexcept nogil:
    """After the parallel region: the last call out restores the count the first one found."""
    global _inside, _saved
    if _private or _set_threads == NULL or _get_threads == NULL:
        return
    PyThread_acquire_lock(_lock, WAIT_LOCK)
    _inside -= 1
    if _inside == 0 and _saved >= 1 and _saved != 1:
        _set_threads(_saved)
    PyThread_release_lock(_lock)


cdef void gemm(bint trans_a, bint trans_b, int m, int n, int k,
               floating alpha, const floating *a, int lda,
               const floating *b, int ldb,
               floating beta, floating *c, int ldc) noexcept nogil:
    """C = alpha op(A) op(B) + beta C, row-major; op(A) is (m, k), op(B) is (k, n)."""
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    if floating is float:
        _sgemm(&tb, &ta, &n, &m, &k, &alpha, <float *> b, &ldb, <float *> a, &lda,
               &beta, c, &ldc)
    else:
        _dgemm(&tb, &ta, &n, &m, &k, &alpha, <double *> b, &ldb, <double *> a, &lda,
               &beta, c, &ldc)


cdef void shared_gemm(bint trans_a, bint trans_b, int m, int n, int k,
                      floating alpha, const floating *a, int lda,
                      const floating *b, int ldb,
                      floating beta, floating *c, int ldc) noexcept nogil:
    """``gemm`` on SciPy's shared cython_blas, at whatever thread count it has."""
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float *> b, &ldb, <float *> a, &lda,
              &beta, c, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double *> b, &ldb, <double *> a, &lda,
              &beta, c, &ldc)


def _gemm_for_tests(a, b, bint shared=False):
    """row-major a @ b (float32 or float64 C-contiguous 2-D) through ``gemm``, the kernels' BLAS,
    or with ``shared`` through SciPy's shared one at its thread count (the bench's yardstick);
    test hook."""
    import numpy as np
    cdef float[:, ::1] af, bf, cf
    cdef double[:, ::1] ad, bd, cd
    if a.dtype == np.float32:
        af = a; bf = b
        c = np.empty((a.shape[0], b.shape[1]), np.float32)
        cf = c
        with nogil:
            if shared:
                shared_gemm[float](False, False, af.shape[0], bf.shape[1], af.shape[1], 1.0,
                                   &af[0, 0], af.shape[1], &bf[0, 0], bf.shape[1], 0.0,
                                   &cf[0, 0], cf.shape[1])
            else:
                gemm[float](False, False, af.shape[0], bf.shape[1], af.shape[1], 1.0, &af[0, 0],
                            af.shape[1], &bf[0, 0], bf.shape[1], 0.0, &cf[0, 0], cf.shape[1])
    else:
        ad = a; bd = b
        c = np.empty((a.shape[0], b.shape[1]), np.float64)
        cd = c
        with nogil:
            if shared:
                shared_gemm[double](False, False, ad.shape[0], bd.shape[1], ad.shape[1], 1.0,
                                    &ad[0, 0], ad.shape[1], &bd[0, 0], bd.shape[1], 0.0,
                                    &cd[0, 0], cd.shape[1])
            else:
                gemm[double](False, False, ad.shape[0], bd.shape[1], ad.shape[1], 1.0, &ad[0, 0],
                             ad.shape[1], &bd[0, 0], bd.shape[1], 0.0, &cd[0, 0], cd.shape[1])
    return c


def matmul(a, b, out, bint trans_a=False, bint trans_b=False):
    """out = op(a) @ op(b) on the kernels' BLAS (the private single-threaded instance where loaded).

    ``a``, ``b`` and ``out``: C-contiguous 2-D arrays of one dtype (float32 or float64), ``op`` the
    transpose where asked, shapes that agree; ecp.nn's Linear layer checks them. The product runs on
    the calling thread and starts no BLAS thread, so no thread pool is left spinning after it.
    """
    cdef const float[:, ::1] af, bf
    cdef const double[:, ::1] ad, bd
    cdef float[:, ::1] of
    cdef double[:, ::1] od
    cdef int m = out.shape[0], n = out.shape[1]
    cdef int k = a.shape[0] if trans_a else a.shape[1]
    if m == 0 or n == 0:
        return out
    if k == 0:            # (a BLAS refuses leading dimensions of 0)
        out[...] = 0
        return out
    if out.dtype.char == 'f':
        af = a; bf = b; of = out
        with nogil:
            gemm[float](trans_a, trans_b, m, n, k, 1.0, &af[0, 0], af.shape[1], &bf[0, 0], bf.shape[1],
                        0.0, &of[0, 0], of.shape[1])
    else:
        ad = a; bd = b; od = out
        with nogil:
            gemm[double](trans_a, trans_b, m, n, k, 1.0, &ad[0, 0], ad.shape[1], &bd[0, 0], bd.shape[1],
                         0.0, &od[0, 0], od.shape[1])
    return out
