"""What machine and which checkout produced a result: CPU, ISA, BLAS, commit.

Shared by ``ecp bench`` (its record's ``system``) and the ``docs/results.md`` stamp, so that both
describe a machine the same way.
"""
from __future__ import annotations

import os
import pathlib
import platform
import subprocess

__all__ = ["cpu_model", "isa_flags", "loadavg", "blas_summary", "source_revision", "machine_line"]

#: The instruction sets the kernels care about, in the order reported.
ISA_FLAGS = ("avx512f", "avx2")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def isa_flags() -> list[str]:
    """Which of :data:`ISA_FLAGS` the CPU reports (``/proc/cpuinfo``; empty where unknown)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return [flag for flag in ISA_FLAGS if flag in have]
    except OSError:
        pass
    return []


def loadavg() -> list[float] | None:
    """1-, 5- and 15-minute load averages (None where the OS has none): how busy the machine was."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def blas_summary(threadpool_info: list[dict]) -> list[str]:
    """One line per BLAS library, e.g. ``"NumPy: openblas 0.3.31 (SkylakeX, pthreads, 2 threads)"``.

    ``threadpool_info`` is :func:`threadpoolctl.threadpool_info`'s list; the architecture is the
    BLAS kernel the library chose for this CPU.
    """
    lines = []
    for entry in threadpool_info:
        if entry.get("user_api") != "blas":
            continue
        path = entry.get("filepath", "")
        folder = os.path.basename(os.path.dirname(path)).lower()  # e.g. scipy.libs, numpy.libs
        owner = ("SciPy (ecp's kernels)" if folder.startswith("scipy") else "NumPy"
                 if folder.startswith("numpy") else "PyTorch" if "torch" in folder
                 else os.path.basename(path))
        extra = ", ".join(str(v) for v in (entry.get("architecture"), entry.get("threading_layer")) if v)
        lines.append(f"{owner}: {entry.get('internal_api')} {entry.get('version')} "
                     f"({extra}{', ' if extra else ''}{entry.get('num_threads')} threads)")
    return lines


def source_revision() -> str:
    """``git rev-parse --short HEAD`` of the checkout holding the ecp package, else its version.

    A ``-dirty`` suffix marks uncommitted changes in that checkout.
    """
    from .. import __version__

    folder = pathlib.Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=folder, capture_output=True,
                             text=True, timeout=10)
        if rev.returncode != 0 or not rev.stdout.strip():
            return f"ecp {__version__}"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder,
                               capture_output=True, text=True, timeout=10)
        suffix = "-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else ""
        return rev.stdout.strip() + suffix
    except (OSError, subprocess.SubprocessError):
        return f"ecp {__version__}"


def machine_line() -> str:
    """The machine in one line: CPU model, cores, ISA flags, BLAS libraries and their kernels."""
    import threadpoolctl

    flags = isa_flags()
    blas = "; ".join(blas_summary(threadpoolctl.threadpool_info())) or "none found"
    return (f"{cpu_model()}, {os.cpu_count()} cores, ISA {'+'.join(flags) if flags else 'no avx2/avx512f'}; "
            f"BLAS: {blas}")
