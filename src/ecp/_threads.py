"""How many threads ecp's kernels use.

Two levels: :func:`set_num_threads` sets the process-wide default (and the thread count of the
BLAS libraries threadpoolctl sees, process-wide by nature); :func:`num_threads` overrides it for
the calling Python thread only, for the length of a ``with`` block, and touches no BLAS. The
kernels read :func:`get_num_threads` at every call and run each GEMM on one thread of their own
BLAS instance (:func:`blas_isolation`, from ``ecp._blas_instance``). Results never depend on the
thread count (the work is cut the same way whatever it is).
"""
from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

from ._blas_instance import blas_isolation
from ._free_cores import free_cores
from ._kernels._openmp import openmp_enabled, openmp_max_threads
from ._validation import check_int

__all__ = ["get_num_threads", "set_num_threads", "num_threads", "blas_isolation"]

_num_threads = None  # the process-wide default; None: the free cores (ecp._free_cores)
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
        process-wide default of :func:`set_num_threads`, else the cores OpenMP sees less those
        other programs kept busy over the last quarter second (``ecp._free_cores``; every core
        with ``ECP_ADAPTIVE_THREADS=0`` or ``OMP_NUM_THREADS`` set); always 1 in a build without
        OpenMP.
    """
    if not openmp_enabled():
        return 1
    n = _local.n
    if n is _UNSET:
        n = _num_threads
    return n if n is not None else free_cores(openmp_max_threads())


def _blas_limits(n):
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n, user_api="blas")


def set_num_threads(n: int | None) -> None:
    """Set the process-wide default thread count of ecp's kernels and of the BLAS libraries.

    Every Python thread uses it outside a :func:`num_threads` block. It also sets, process-wide,
    the thread count of every BLAS library threadpoolctl sees in the process (NumPy's and
    SciPy's), so their matrix products follow it too; the private BLAS instance of ecp's kernels
    (see ``ecp._blas_instance``) stays on one thread.

    Parameters
    ----------
    n : int >= 1 or None
        The thread count; None means the cores other programs leave free (see :func:`get_num_threads`).

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


@contextlib.contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """Run a ``with`` block on ``n`` threads, in the calling Python thread only.

    ``with ecp.num_threads(1): ...`` makes the kernels called from this Python thread inside the
    block use one thread; other Python threads keep their own setting, so several may each use a
    block of their own at once. Blocks nest; the previous setting returns on exit, also after an
    exception. It sets ecp's kernels only: no BLAS library's thread count changes (use
    :func:`set_num_threads` or threadpoolctl for those).

    Parameters
    ----------
    n : int >= 1 or None
        The thread count; None means the cores other programs leave free (see :func:`get_num_threads`).

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
    _local.n = n
    try:
        yield
    finally:
        _local.n = saved
