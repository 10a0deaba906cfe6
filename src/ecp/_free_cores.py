"""The cores free for ecp's kernels now: the default thread count follows the load of the machine.

ecp's kernels deal their work statically over OpenMP threads that meet at barriers, so a thread
whose core is busy with another program holds every other thread up: beside one busy process on
2 cores, 2 threads can be several times slower than 1. When nobody has chosen a thread count
(:func:`ecp.set_num_threads`, :func:`ecp.num_threads`, ``OMP_NUM_THREADS``), the kernels use the
cores that the rest of the machine left free over the last fraction of a second:

    free = cores - (CPU time the other programs used / wall time),

with the CPU time read from ``/proc/stat`` (the cores this process may run on; time the
hypervisor stole counts as used) and this process's own share from :func:`time.process_time`.
A reading is at most :data:`WINDOW` seconds old; between readings the last answer stands, so a
call costs a clock read. Results do not depend on the thread count (the work is cut the same way
whatever it is), so following the load changes timings only, never bits.

``ECP_ADAPTIVE_THREADS=0`` in the environment (read at import) turns this off: every core, as
OpenMP reports them. Where ``/proc/stat`` cannot be read (not Linux), every core as well.
"""
from __future__ import annotations

import os
import threading
import time

from ._validation import env_flag

__all__ = ["WINDOW", "adaptive", "free_cores"]

#: Seconds between two readings of the machine's load.
WINDOW = 0.25


#: Whether the default thread count follows the load (``ECP_ADAPTIVE_THREADS``, default on; off when
#: ``OMP_NUM_THREADS`` chooses the count).
adaptive = env_flag("ECP_ADAPTIVE_THREADS", True) and "OMP_NUM_THREADS" not in os.environ

_FIELDS_IDLE = (3, 4)   # idle, iowait in the "cpuN user nice system idle iowait irq softirq steal ..." lines


def _cpu_ticks(cpus):
    """(busy, total) clock ticks of the given CPUs since boot, or None where /proc/stat is unreadable."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            lines = f.readlines()
    except OSError:
        return None
    busy = total = 0
    seen = 0
    for line in lines:
        if not line.startswith("cpu") or line.startswith("cpu "):
            continue
        name, *fields = line.split()
        try:
            cpu = int(name[3:])
        except ValueError:
            continue
        if cpus is not None and cpu not in cpus:
            continue
        ticks = [int(v) for v in fields[:8]]   # user nice system idle iowait irq softirq steal
        t = sum(ticks)
        total += t
        busy += t - sum(ticks[i] for i in _FIELDS_IDLE)
        seen += 1
    return (busy, total, seen) if seen else None


class _Sampler:
    """The last reading of the load and the thread count it gave; updated at most every WINDOW."""

    def __init__(self):
        self.lock = threading.Lock()
        self.at = None          # (monotonic time, busy ticks, total ticks, this process's CPU seconds)
        self.answer = None      # the free cores found at the last reading (None: none yet)
        self.cpus = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None

    def read(self, cores: int, now: float) -> int:
        if not self.lock.acquire(blocking=False):   # another Python thread is reading: use the last answer
            return self.answer if self.answer is not None else cores
        try:
            ticks = _cpu_ticks(self.cpus)
            if ticks is None:
                self.answer = cores
                return cores
            busy, total, ncpu = ticks
            mine = time.process_time()
            if self.at is not None:
                t0, busy0, total0, mine0 = self.at
                wall = now - t0
                if total > total0 and wall > 0:
                    used = ncpu * (busy - busy0) / (total - total0)      # cores in use, all programs
                    others = max(0.0, used - (mine - mine0) / wall)
                    self.answer = max(1, min(cores, int(cores - others + 0.5)))
            self.at = (now, busy, total, mine)
            return self.answer if self.answer is not None else cores
        finally:
            self.lock.release()


_sampler = _Sampler()


def free_cores(cores: int) -> int:
    """The thread count for a kernel call with no thread count chosen: ``cores`` minus the busy ones.

    Parameters
    ----------
    cores : int
        The cores OpenMP would use (the upper bound).

    Returns
    -------
    int
        Between 1 and ``cores``: ``cores`` when adaptation is off, before the first two readings,
        or where the load cannot be read.
    """
    if not adaptive or cores <= 1:
        return cores
    now = time.monotonic()
    s = _sampler
    if s.at is not None and now - s.at[0] < WINDOW:
        return s.answer if s.answer is not None else cores
    return s.read(cores, now)
