"""How many threads the kernels use: one setting for ecp's OpenMP loops and the BLAS behind them."""
import contextlib
import os

from ._kernels._openmp import openmp_enabled, openmp_max_threads
from ._validation import check_int

_num_threads = None  # None: every core OpenMP sees


def get_num_threads():
    """Threads the kernels will use (always 1 in a build without OpenMP for ecp's own loops)."""
    if not openmp_enabled():
        return 1
    return _num_threads if _num_threads is not None else openmp_max_threads()


def _blas_limits(n):
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n, user_api="blas")


def set_num_threads(n):
    """Use ``n`` threads in ecp's kernels and in the BLAS they call (``None``: all cores).

    This also sets the thread count of the BLAS libraries loaded in the process (through
    threadpoolctl), so NumPy's matrix products follow it too.
    """
    global _num_threads
    if n is not None:
        n = check_int(n, "n", 1)
    _num_threads = n
    _blas_limits(n if n is not None else (os.cpu_count() or 1))


@contextlib.contextmanager
def num_threads(n):
    """Context manager: ``with ecp.num_threads(1): ...`` runs the block on one thread."""
    global _num_threads
    if n is not None:
        n = check_int(n, "n", 1)
    saved = _num_threads
    limiter = _blas_limits(n) if n is not None else contextlib.nullcontext()
    _num_threads = n
    try:
        with limiter:
            yield
    finally:
        _num_threads = saved
