"""Row-major GEMM on top of ``scipy.linalg.cython_blas`` (column-major Fortran BLAS).

C (m, n) = alpha * op(A) @ op(B) + beta * C, all row-major. A row-major matrix is the
transpose of a column-major one, so C^T = op(B)^T op(A)^T: swap the operands and the sizes.
"""
from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm


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
