# The one BLAS wrapper of ecp: row-major GEMM on the BLAS instance ecp._blas_instance registers.
from cython cimport floating

cdef void gemm(bint trans_a, bint trans_b, int m, int n, int k,
               floating alpha, const floating *a, int lda,
               const floating *b, int ldb,
               floating beta, floating *c, int ldc) noexcept nogil

# Around a kernel's parallel region of GEMMs: nothing on the private instance; on the shared one,
# a process-wide count of the calls inside keeps that BLAS on one thread meanwhile.
cdef void blas_single_enter() noexcept nogil
cdef void blas_single_exit() noexcept nogil
