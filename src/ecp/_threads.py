"""How many threads the kernels use: one setting for ecp's OpenMP loops and the BLAS behind them."""
import contextlib
import os

from ._kernels._blas import _register_thread_control
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


def _kernel_blas():
    """The OpenBLAS behind scipy.linalg.cython_blas (the one ecp's kernels call), as a
    threadpoolctl info dict, or None when it is not OpenBLAS or cannot be found."""
    import scipy.linalg.cython_blas  # noqa: F401  (loads it)
    from threadpoolctl import threadpool_info

    found = [
        info for info in threadpool_info()
        if info.get("internal_api") == "openblas" and "scipy" in os.path.basename(
            os.path.dirname(info["filepath"])) + os.path.basename(info["filepath"])
        and "numpy" not in info["filepath"]
    ]
    return found[0] if len(found) == 1 else None


def _connect_blas_threads():
    """Let the kernels switch their BLAS to one thread while their own threads call it.

    Without this (a BLAS that is not a findable OpenBLAS), the kernels still work; when several
    of their threads call a multi-threaded BLAS at once, the two pools share the cores.
    """
    import ctypes

    info = _kernel_blas()
    if info is None:
        return False
    try:
        lib = ctypes.CDLL(info["filepath"])
    except OSError:
        return False
    for prefix in ("scipy_", ""):
        for suffix in ("", "64_"):
            try:
                set_fn = getattr(lib, f"{prefix}openblas_set_num_threads{suffix}")
                get_fn = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}")
            except AttributeError:
                continue
            _register_thread_control(
                ctypes.cast(set_fn, ctypes.c_void_p).value, ctypes.cast(get_fn, ctypes.c_void_p).value
            )
            return True
    return False


BLAS_THREAD_CONTROL = _connect_blas_threads()
