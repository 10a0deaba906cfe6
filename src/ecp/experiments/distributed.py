"""Data-parallel workers: where this process stands in a group, and starting a group on this machine.

A worker learns its place from the environment that ``torchrun`` sets (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``): :func:`world_from_env`.
:func:`launch` is the single-machine launcher behind ``ecp train --nproc N``: it sets that same
environment (rendezvous on 127.0.0.1 at a free port) for N copies of a command, so a worker runs
the same code whether ``torchrun`` or ``ecp`` started it. When one worker fails, :func:`launch`
stops the others at once; a worker whose launcher dies gets SIGTERM (Linux), so none outlives it.

Nothing here imports torch: the workers do.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

__all__ = ["World", "world_from_env", "free_port", "launch", "WorkerFailed"]

#: Seconds a worker gets to exit after SIGTERM before it is killed.
STOP_GRACE_S = 5.0


@dataclasses.dataclass(frozen=True)
class World:
    """This process's place in a group of data-parallel workers.

    Attributes
    ----------
    rank : int
        0 .. size - 1; rank 0 reports and writes the results.
    size : int
        Number of workers in the group (all machines).
    local_rank : int
        Rank among the workers of this machine (picks the GPU).
    local_size : int
        Number of workers on this machine (shares out the cores).
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1


def _env_int(env, name, minimum, default=None):
    text = env.get(name)
    if text is None:
        if default is None:
            raise ValueError(f"{name} must be set with RANK and WORLD_SIZE (as torchrun sets them)")
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {text!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return value


def world_from_env(env: os._Environ | dict | None = None) -> World | None:
    """Read this worker's place from ``torchrun``'s environment variables.

    Parameters
    ----------
    env : mapping or None
        The environment; None: ``os.environ``.

    Returns
    -------
    World or None
        None when ``RANK`` and ``WORLD_SIZE`` are both unset (a process on its own).

    Raises
    ------
    ValueError
        Only one of ``RANK`` / ``WORLD_SIZE`` is set, a value is not an integer, ``RANK`` is not
        below ``WORLD_SIZE``, or ``MASTER_ADDR`` / ``MASTER_PORT`` are missing in a group of more
        than one.
    """
    env = os.environ if env is None else env
    if "RANK" not in env and "WORLD_SIZE" not in env:
        return None
    size = _env_int(env, "WORLD_SIZE", 1)
    rank = _env_int(env, "RANK", 0)
    if rank >= size:
        raise ValueError(f"RANK must be below WORLD_SIZE ({size}), got {rank}")
    local_size = _env_int(env, "LOCAL_WORLD_SIZE", 1, default=size)
    local_rank = _env_int(env, "LOCAL_RANK", 0, default=rank % local_size)
    if size > 1:
        for name in ("MASTER_ADDR", "MASTER_PORT"):
            if not env.get(name):
                raise ValueError(f"{name} must be set for a group of {size} workers (as torchrun sets it)")
    return World(rank, size, local_rank, local_size)


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the system for a TCP port that is free now on ``host``.

    Parameters
    ----------
    host : str
        The address to bind.

    Returns
    -------
    int
        The port (free when returned; the rendezvous binds it moments later).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class WorkerFailed(RuntimeError):
    """A worker exited with a non-zero status, or the group ran past its time; the others were stopped.

    Parameters
    ----------
    rank : int or None
        The worker that failed first (None: the time ran out).
    status : int
        Its exit status (negative: killed by that signal), or 124 after the time ran out.
    message : str
        What happened.

    Attributes
    ----------
    rank : int or None
        As given.
    status : int
        As given.
    """

    def __init__(self, rank: int | None, status: int, message: str):
        self.rank, self.status = rank, status
        super().__init__(message)


def _die_with_parent():  # pragma: no cover - runs in the child between fork and exec
    """Linux: SIGTERM this child when the launcher dies, so that no worker is orphaned."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _stop(procs: Sequence[subprocess.Popen]) -> None:
    """SIGTERM every live worker, then SIGKILL those still alive after :data:`STOP_GRACE_S`."""
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for p in procs:
        try:
            p.wait(max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                p.kill()
            p.wait()


def launch(command: Sequence[str], nproc: int, *, timeout: float | None = None, env: dict | None = None,
           quiet_ranks: bool = True, settle_s: float = 3.0,
           poll_s: float = 0.05) -> list[int]:
    """Run ``nproc`` copies of ``command`` as one data-parallel group on this machine.

    Each copy gets ``RANK`` = ``LOCAL_RANK`` = its index, ``WORLD_SIZE`` = ``LOCAL_WORLD_SIZE`` =
    ``nproc``, ``MASTER_ADDR=127.0.0.1`` and ``MASTER_PORT`` = a free port, as ``torchrun`` would.

    Parameters
    ----------
    command : sequence of str
        The program and its arguments.
    nproc : int >= 1
        Number of workers.
    timeout : float or None
        Seconds the whole group may run; past it every worker is stopped. None: no bound.
    env : dict or None
        Environment of the workers (before the variables above); None: ``os.environ``.
    quiet_ranks : bool
        Send the standard output of ranks other than 0 to /dev/null (their standard error is kept).
    settle_s : float
        After a worker fails, seconds the others get to end with the same status before they are
        stopped.
    poll_s : float
        Seconds between two looks at the workers.

    Returns
    -------
    list of int
        The workers' exit statuses, by rank, when none failed: all 0, or all equal (e.g. 3 when
        every worker stopped on the same diverged loss).

    Raises
    ------
    WorkerFailed
        A worker exited with a status that not all of them share, or the time ran out; every
        worker was stopped (SIGTERM, then SIGKILL after :data:`STOP_GRACE_S` seconds) first.
    KeyboardInterrupt
        After stopping every worker.
    """
    base = dict(os.environ if env is None else env)
    base.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE=str(nproc),
                LOCAL_WORLD_SIZE=str(nproc))
    procs: list[subprocess.Popen] = []
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        for rank in range(nproc):
            procs.append(subprocess.Popen(
                list(command), env={**base, "RANK": str(rank), "LOCAL_RANK": str(rank)},
                stdout=subprocess.DEVNULL if quiet_ranks and rank else None,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None))
        while True:
            codes = [p.poll() for p in procs]
            failed = [(r, c) for r, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                # The others may be ending the same way (every worker exits 3 on the same diverged
                # loss): give them settle_s to agree, then stop them.
                settle = time.monotonic() + settle_s
                while any(c is None for c in codes) and time.monotonic() < settle:
                    time.sleep(poll_s)
                    codes = [p.poll() for p in procs]
                if any(c != failed[0][1] for c in codes):
                    rank, code = failed[0]
                    _stop(procs)
                    raise WorkerFailed(rank, code, f"worker {rank} of {nproc} exited with status {code}; "
                                                   "the other workers were stopped")
            if all(c is not None for c in codes):
                return codes
            if deadline is not None and time.monotonic() > deadline:
                _stop(procs)
                raise WorkerFailed(None, 124, f"the {nproc} workers ran past the time limit of {timeout:g} s "
                                              "and were stopped")
            time.sleep(poll_s)
    except BaseException:
        _stop(procs)
        raise
