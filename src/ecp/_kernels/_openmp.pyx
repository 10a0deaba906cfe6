"""Whether this build has OpenMP, how many threads it would use, and whether it checks bounds."""

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int ecp_openmp_enabled(void) { return 1; }
    static int ecp_openmp_max_threads(void) { return omp_get_max_threads(); }
    #else
    static int ecp_openmp_enabled(void) { return 0; }
    static int ecp_openmp_max_threads(void) { return 1; }
    #endif
    #ifdef ECP_CYTHON_DEBUG
    static int ecp_bounds_checked(void) { return 1; }
    #else
    static int ecp_bounds_checked(void) { return 0; }
    #endif
    """
    int ecp_openmp_enabled() nogil
    int ecp_openmp_max_threads() nogil
    int ecp_bounds_checked() nogil


def openmp_enabled():
    """True when the kernels were compiled with OpenMP (and so can use several threads)."""
    return bool(ecp_openmp_enabled())


def openmp_max_threads():
    """OpenMP's default thread count (1 in a build without OpenMP)."""
    return ecp_openmp_max_threads()


def bounds_checked():
    """True in a build made with ECP_CYTHON_DEBUG=1 (Cython's bounds checks on; slow)."""
    return bool(ecp_bounds_checked())
