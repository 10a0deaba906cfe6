"""How ecp's OpenMP threads wait: a bounded spin set in the environment before libgomp loads.

libgomp (the OpenMP runtime the GCC builds of ecp's kernels link) reads its wait policy from the
environment once, when it is loaded. Its default lets an idle thread spin for milliseconds after
each parallel region; on a machine where another process keeps a core busy, that spinning holds a
core ecp's other thread needs, and a 2-thread call gets several times slower than a 1-thread one
(``ecp bench --contention``). :func:`configure` (run by ``import ecp`` before any extension module
is imported) bounds the spin with ``GOMP_SPINCOUNT`` (a core kept busy for long is left to :mod:`ecp._free_cores`,
which lowers the default thread count) when the user has set neither
``OMP_WAIT_POLICY`` nor ``GOMP_SPINCOUNT`` and libgomp is not loaded yet (PyTorch, for one, loads
its own copy first); :func:`openmp_info` says which case happened.
"""
from __future__ import annotations

import os

__all__ = ["SPINCOUNT", "configure", "openmp_info"]

#: The spin count ecp sets (libgomp's default is 300000, about 3 ms: 100 spins a microsecond):
#: as fast as the default on an idle machine in a training loop (10000 measured 6-8% slower there),
#: while a busy core is left to ecp._free_cores. docs/usage.md gives the figures.
SPINCOUNT = "30000"
_USER_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
_case = None    # "set", "user", "already-loaded" or "unknown": what configure() found


def _libgomp_loaded():
    """True / False when /proc/self/maps lists / does not list a libgomp; None where it is unreadable."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            return any("libgomp" in line for line in f)
    except OSError:
        return None


def configure():
    """Set ``GOMP_SPINCOUNT`` for libgomp if nobody has chosen a wait policy and it is not loaded yet.

    Runs once (later calls keep the first answer).

    Returns
    -------
    str
        ``"set"`` (ecp set ``GOMP_SPINCOUNT``), ``"user"`` (the environment already names a wait
        policy or spin count: left alone), ``"already-loaded"`` (libgomp was loaded before ecp:
        too late to choose, left alone) or ``"unknown"`` (no ``/proc/self/maps``, e.g. not Linux:
        left alone).
    """
    global _case
    if _case is None:
        loaded = _libgomp_loaded()
        if any(name in os.environ for name in _USER_VARS):
            _case = "user"
        elif loaded is None:
            _case = "unknown"
        elif loaded:
            _case = "already-loaded"
        else:
            os.environ["GOMP_SPINCOUNT"] = SPINCOUNT
            _case = "set"
    return _case


def openmp_info() -> dict:
    """Report how ecp's OpenMP threads wait between parallel regions, and who decided it.

    Returns
    -------
    dict
        ``"enabled"`` (bool: the kernels were built with OpenMP), ``"wait_setting"``: what
        ``import ecp`` did -- ``"set"`` (it set ``GOMP_SPINCOUNT`` to :data:`SPINCOUNT` before
        libgomp loaded), ``"user"`` (``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` was already in the
        environment), ``"already-loaded"`` (libgomp was loaded before ecp, e.g. by PyTorch: its
        default spinning stays) or ``"unknown"`` (the loaded libraries could not be listed);
        ``"OMP_WAIT_POLICY"`` and ``"GOMP_SPINCOUNT"`` (the environment now, str or None);
        ``"libraries"`` (paths of the OpenMP runtimes mapped into the process, Linux only).

    Examples
    --------
    >>> import ecp
    >>> sorted(ecp.openmp_info())
    ['GOMP_SPINCOUNT', 'OMP_WAIT_POLICY', 'enabled', 'libraries', 'wait_setting']
    """
    from ._kernels._openmp import openmp_enabled

    libraries = set()
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            for line in f:
                path = line.split(maxsplit=5)[-1].strip() if line.count(" ") >= 5 else ""
                name = os.path.basename(path)
                if name.startswith(("libgomp", "libomp", "libiomp")):
                    libraries.add(path)
    except OSError:
        pass
    return {"enabled": bool(openmp_enabled()), "wait_setting": _case,
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
            "GOMP_SPINCOUNT": os.environ.get("GOMP_SPINCOUNT"), "libraries": sorted(libraries)}
