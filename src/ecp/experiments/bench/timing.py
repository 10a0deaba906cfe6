"""Measuring: round-robin interleaved timing and peak extra memory.

No timing library interleaves contenders; on a shared, noisy machine timing them one after the
other penalises whichever ran during a busy spell, so :func:`time_round_robin` takes one run of
each in turn.
"""
from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

from ...conv import clear_scratch

__all__ = ["timing_record", "time_round_robin", "peak_extra_mb"]


def timing_record(seconds: list[float]) -> dict:
    """Summarise the run times of one kernel.

    Parameters
    ----------
    seconds : list of float
        Run times in seconds; at least one.

    Returns
    -------
    dict
        ``"median_ms"`` and ``"min_ms"`` (float, milliseconds) and ``"runs_ms"`` (every run, in
        milliseconds, in the order given).
    """
    ms = [s * 1e3 for s in seconds]
    return {"median_ms": float(np.median(ms)), "min_ms": float(min(ms)), "runs_ms": ms}


def time_round_robin(calls: dict[str, Callable[[], object]], repeats: int, warmup: int,
                     progress: Callable | None = None, label: str = "",
                     before: Callable[[], object] | None = None) -> dict[str, list[float]]:
    """Time each callable ``repeats`` times after ``warmup`` untimed calls, interleaved.

    Interleaving spreads the machine's noise over every contender instead of penalising
    whichever happened to run during a busy spell; the order rotates each round so that no
    contender always runs first (after the others evicted its data from the caches). The
    garbage collector is off during the timed rounds (and restored afterwards).

    Parameters
    ----------
    calls : dict of str to callable
        Contender name -> callable of no argument.
    repeats : int >= 1
        Timed rounds; each round calls every contender once.
    warmup : int >= 0
        Untimed rounds before the timed ones.
    progress : callable(str, transient=False) or None
        Receives a transient message at the start of each round.
    label : str
        Prefix of the progress messages.
    before : callable or None
        Called, untimed, right before every call (warm-up ones too).

    Returns
    -------
    dict of str to list of float
        Contender name -> its ``repeats`` run times in seconds (wall clock, ``perf_counter``).
    """
    times = {name: [] for name in calls}
    order = list(calls.items())
    for _ in range(warmup):
        for fn in calls.values():
            if before is not None:
                before()
            fn()
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(repeats):
            if progress is not None:
                progress(f"{label}: timing run {r + 1}/{repeats} of {len(calls)} kernels",
                         transient=True)
            for name, fn in order[r % len(order):] + order[:r % len(order)]:
                if before is not None:
                    before()
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    finally:
        if gc_was_enabled:
            gc.enable()
    return times


def peak_extra_mb(fn: Callable[[], object]) -> float:
    """Measure the peak NumPy/Python memory ``fn()`` allocates beyond what existed before.

    Includes the outputs and every scratch buffer the kernels take from NumPy (their per-thread
    scratch cache is emptied first, so the call allocates it anew); excludes the inputs (they
    exist before the call). Memory that C code allocates outside Python's and NumPy's
    allocators is not seen.

    Parameters
    ----------
    fn : callable
        Called once, with no argument; its result is dropped.

    Returns
    -------
    float
        The peak extra memory in MiB (2**20 bytes), never negative.
    """
    clear_scratch()
    gc.collect()
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = fn()
        peak = tracemalloc.get_traced_memory()[1]
        del result
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return max(peak - base, 0) / 2**20
