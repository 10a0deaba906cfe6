"""The BLAS instance behind the conv kernels' GEMMs: chosen once, at import, and then left alone.

Where it works (glibc's ``dlmopen``, SciPy's BLAS an OpenBLAS that threadpoolctl finds), ecp loads
a private instance of the very library file ``scipy.linalg.cython_blas`` uses into a link namespace
of its own, with ``OPENBLAS_NUM_THREADS=1`` in the environment while it loads, so that it starts no
thread pool; its thread count is set to 1 once and nobody else can reach it (threadpoolctl does not
see it). Same file, same CPU kernel: the same bits as SciPy's library on one thread, and no
process-wide state read or written per call. :func:`blas_isolation` says ``"private"``.

Otherwise (another C library, macOS, Windows, a BLAS that is not OpenBLAS, ``ECP_PRIVATE_BLAS=0``
in the environment) the kernels call SciPy's shared library and, while any of their calls runs,
keep it on one thread: a process-wide lock and count of the calls inside, the first in saves and
lowers the count, the last out restores it (``"shared-locked"``). That holds among ecp's own calls
only: a thread count set by someone else meanwhile (``threadpoolctl``, ``ecp.set_num_threads``)
reaches the running GEMMs and can change their bits. With a BLAS whose thread count ecp cannot set,
nothing is set at all (``"shared"``).
"""
from __future__ import annotations

import ctypes
import os

from ._kernels._blas import _register_private_gemm, _register_thread_control, blas_thread_control, private_gemm
from ._validation import env_flag

__all__ = ["blas_isolation"]

_LM_ID_NEWLM = -1   # <dlfcn.h>: a new link namespace
_RTLD_NOW = 2
_PREFIXES = ("scipy_", "")          # SciPy's wheels prefix their OpenBLAS symbols with scipy_
_handles = []                       # the private instance stays loaded for the process's life
_private_gemms = None               # its (sgemm_, dgemm_) addresses once loaded


def _kernel_blas():
    """The OpenBLAS behind scipy.linalg.cython_blas, as a threadpoolctl info dict, or None when it
    is not OpenBLAS or cannot be told apart from another library."""
    import scipy.linalg.cython_blas  # noqa: F401  (loads it)
    from threadpoolctl import threadpool_info

    found = [
        info for info in threadpool_info()
        if info.get("internal_api") == "openblas" and "scipy" in os.path.basename(
            os.path.dirname(info["filepath"])) + os.path.basename(info["filepath"])
        and "numpy" not in info["filepath"]
    ]
    return found[0] if len(found) == 1 else None


def _dl():
    """libc's (or old glibc's libdl's) dlmopen / dlsym / dlerror through ctypes, or None."""
    for name in (None, "libdl.so.2"):
        try:
            lib = ctypes.CDLL(name)
            dlmopen, dlsym, dlerror = lib.dlmopen, lib.dlsym, lib.dlerror
        except (OSError, AttributeError):
            continue
        dlmopen.restype, dlmopen.argtypes = ctypes.c_void_p, [ctypes.c_long, ctypes.c_char_p, ctypes.c_int]
        dlsym.restype, dlsym.argtypes = ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_char_p]
        dlerror.restype, dlerror.argtypes = ctypes.c_char_p, []
        return dlmopen, dlsym
    return None


def _load_private(path):
    """Load a private instance of the OpenBLAS at ``path`` on one thread; register its GEMMs with
    the kernels and return True, or return False (changing nothing) where that fails."""
    global _private_gemms
    dl = _dl()
    if dl is None:
        return False
    dlmopen, dlsym = dl
    saved = os.environ.get("OPENBLAS_NUM_THREADS")
    os.environ["OPENBLAS_NUM_THREADS"] = "1"   # read by its constructor: no thread pool at all
    try:
        handle = dlmopen(_LM_ID_NEWLM, os.fsencode(path), _RTLD_NOW)
    finally:
        if saved is None:
            del os.environ["OPENBLAS_NUM_THREADS"]
        else:
            os.environ["OPENBLAS_NUM_THREADS"] = saved
    if not handle:
        return False
    for prefix in _PREFIXES:
        addrs = [dlsym(handle, f"{prefix}{name}".encode()) for name in
                 ("sgemm_", "dgemm_", "openblas_set_num_threads", "openblas_get_num_threads")]
        if all(addrs):
            break
    else:
        return False   # not an OpenBLAS with the LP64 names cython_blas uses: leave it unused
    _handles.append(handle)
    ctypes.CFUNCTYPE(None, ctypes.c_int)(addrs[2])(1)
    if ctypes.CFUNCTYPE(ctypes.c_int)(addrs[3])() != 1:
        return False
    _private_gemms = (addrs[0], addrs[1])
    _register_private_gemm(*_private_gemms)
    return True


def _connect_shared(info):
    """Give the kernels the shared OpenBLAS's thread-count functions; False where not found."""
    try:
        lib = ctypes.CDLL(info["filepath"])
    except OSError:
        return False
    for prefix in _PREFIXES:
        try:
            set_fn = getattr(lib, f"{prefix}openblas_set_num_threads")
            get_fn = getattr(lib, f"{prefix}openblas_get_num_threads")
        except AttributeError:
            continue
        _register_thread_control(ctypes.cast(set_fn, ctypes.c_void_p).value,
                                 ctypes.cast(get_fn, ctypes.c_void_p).value)
        return True
    return False


def _connect():
    info = _kernel_blas()
    if info is None:
        return
    _connect_shared(info)   # used only while no private instance is registered
    if env_flag("ECP_PRIVATE_BLAS", True):
        try:
            _load_private(info["filepath"])
        except (OSError, ValueError, TypeError):   # pragma: no cover  (ctypes refused the call)
            pass


_connect()


def blas_isolation() -> str:
    """Say how the conv kernels' GEMMs are kept apart from the rest of the process.

    Returns
    -------
    str
        ``"private"``: they run on a private instance of SciPy's OpenBLAS, on one thread, that
        no one else can reach, so neither another Python thread nor any thread-count setting
        changes their results; ``"shared-locked"``: they run on SciPy's shared OpenBLAS, which
        ecp's calls keep on one thread while any of them runs (a lock and count among ecp's
        calls; a count set meanwhile by others still reaches them); ``"shared"``: on SciPy's
        BLAS, whose thread count ecp cannot set.
    """
    if private_gemm():
        return "private"
    return "shared-locked" if blas_thread_control() else "shared"
