"""How many threads the kernels use: one setting for ecp's OpenMP loops and the BLAS behind them.

Two levels: :func:`set_num_threads` sets the process-wide default (and the BLAS libraries' thread
count, which is process-wide by nature); :func:`num_threads` overrides it for the calling Python
thread only, for the length of a ``with`` block. The kernels read :func:`get_num_threads` at every
call. Results never depend on the thread count (the work is cut the same way whatever it is).
"""
from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

from ._kernels._blas import _register_thread_control
from ._kernels._openmp import openmp_enabled, openmp_max_threads
from ._validation import check_int

__all__ = ["get_num_threads", "set_num_threads", "num_threads"]

_num_threads = None  # the process-wide default; None: every core OpenMP sees
_UNSET = object()


class _Local(threading.local):
    n = _UNSET   # this Python thread's override (a num_threads block), else _UNSET


_local = _Local()


def get_num_threads() -> int:
    """The number of threads the kernels use for a call made now from this Python thread.

    Returns
    -------
    int
        The innermost :func:`num_threads` block's count in this Python thread, else the
        process-wide default of :func:`set_num_threads`, else every core OpenMP sees; always 1
        in a build without OpenMP.
    """
    if not openmp_enabled():
        return 1
    n = _local.n
    if n is _UNSET:
        n = _num_threads
    return n if n is not None else openmp_max_threads()


def _blas_limits(n):
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n, user_api="blas")


def set_num_threads(n: int | None) -> None:
    """Set the process-wide default thread count of ecp's kernels and of the BLAS libraries.

    Every Python thread uses it outside a :func:`num_threads` block. It also sets the thread count
    of the BLAS libraries loaded in the process (through threadpoolctl), so NumPy's matrix products
    follow it too.

    Parameters
    ----------
    n : int >= 1 or None
        The thread count; None means every core.

    Raises
    ------
    TypeError
        If ``n`` is not an integer (or None).
    ValueError
        If ``n`` is below 1.
    """
    global _num_threads
    if n is not None:
        n = check_int(n, "n", 1)
    _num_threads = n
    _blas_limits(n if n is not None else (os.cpu_count() or 1))


# The BLAS thread count is one per process: while num_threads blocks are open (in any Python
# thread), it follows the most recently opened one still open, and the last to close restores
# what it was before the first opened.
_blas_lock = threading.Lock()
_blas_open = []        # [n] of each open block, in the order they were opened
_blas_restore = None   # the limiter of the first block, which restores the original counts


def _blas_enter(token):
    global _blas_restore
    with _blas_lock:
        if not _blas_open:
            _blas_restore = _blas_limits(token[0])
        else:
            _blas_limits(token[0])
        _blas_open.append(token)


def _blas_exit(token):
    global _blas_restore
    with _blas_lock:
        del _blas_open[next(i for i, t in enumerate(_blas_open) if t is token)]   # this block's own
        if not _blas_open:
            restore, _blas_restore = _blas_restore, None
            restore.restore_original_limits()
        elif _blas_open[-1][0] != token[0]:
            _blas_limits(_blas_open[-1][0])


@contextlib.contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """Run a ``with`` block on ``n`` threads, in the calling Python thread only.

    ``with ecp.num_threads(1): ...`` makes the kernels called from this Python thread inside the
    block use one thread; other Python threads keep their own setting, so several may each use a
    block of their own at once. Blocks nest; the previous setting returns on exit, also after an
    exception. While blocks are open, the BLAS libraries (process-wide) follow the most recently
    opened one.

    Parameters
    ----------
    n : int >= 1 or None
        The thread count; None means every core.

    Yields
    ------
    None

    Raises
    ------
    TypeError
        If ``n`` is not an integer (or None).
    ValueError
        If ``n`` is below 1.
    """
    if n is not None:
        n = check_int(n, "n", 1)
    saved = _local.n
    token = [n] if n is not None else None
    if token is not None:
        _blas_enter(token)
    _local.n = n
    try:
        yield
    finally:
        _local.n = saved
        if token is not None:
            _blas_exit(token)


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
