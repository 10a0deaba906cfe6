# The one BLAS wrapper of ecp: row-major GEMM over SciPy's Cython BLAS.
from cython cimport floating

cdef void gemm(bint trans_a, bint trans_b, int m, int n, int k,
               floating alpha, const floating *a, int lda,
               const floating *b, int ldb,
               floating beta, floating *c, int ldc) noexcept nogil

cdef int blas_set_num_threads(int n) noexcept nogil
