"""Writing the files the tools produce: atomically, and JSON that any parser reads.

Every file the ``ecp`` command writes (JSON records, ``tables.md``, CSVs, figures, run records,
downloads, ``docs/results.md``) goes through :func:`write_atomic`: a reader never sees a half
written file, and an error or Ctrl-C leaves the previous file (or none) in place.

Its temporary files have one recognisable name, ``.NAME.ecp<PID>-<random>.part`` beside
``NAME``. A process killed outright (SIGKILL, power loss) cannot remove its own, so
:func:`clean_leftovers` -- called by every :func:`write_atomic` on its folder, and by the
commands on theirs before they start -- removes those whose process is gone. The files of a
live writer (another process, or a thread of this one) are never touched.
"""
from __future__ import annotations

import json
import math
import os
import pathlib
import re
import tempfile
import time
from collections.abc import Callable
from typing import IO, Any

import numpy as np

__all__ = ["write_atomic", "write_json", "to_json_safe", "check_output_file", "check_output_dir",
           "clean_leftovers", "TEMP_PATTERN"]

#: The name of :func:`write_atomic`'s temporary files: ``.NAME.ecp<PID>-<random>.part``.
TEMP_PATTERN = re.compile(r"^\..+\.ecp(?P<pid>[0-9]+)-[a-z0-9_]+\.part$")
# The pid-less names (``.NAME.XXXXXXXX.part``, mkstemp's) of ecp 0.1: removed once older than
# this process, which no live writer's file is (a writer keeps touching its file).
_LEGACY_PATTERN = re.compile(r"^\..+\.[a-z0-9_]{8}\.part$")
_STARTED = time.time()


def check_output_file(path: str | os.PathLike, option: str) -> pathlib.Path:
    """Refuse an output path before any work starts.

    Parameters
    ----------
    path : str or os.PathLike
        Where a command will write a file.
    option : str
        The flag that gave it (``"--json"``), named in the error.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        ``path`` is a directory, its folder does not exist (or is not a folder), or the folder
        is not writable (as is an existing ``path`` that is not).
    """
    target = pathlib.Path(path)
    if target.is_dir():
        raise ValueError(f"{option}: {os.fspath(path)!r} is a directory, expected a file path")
    parent = target.absolute().parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise ValueError(f"{option}: the folder {os.fspath(parent)!r} {what}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{option}: the folder {os.fspath(parent)!r} is not writable")
    return target


def check_output_dir(path: str | os.PathLike, option: str, files: tuple[str, ...] = ()) -> pathlib.Path:
    """Refuse an output folder before any work starts.

    Parameters
    ----------
    path : str or os.PathLike
        The folder a command will create (with its parents) if missing, and write into.
    option : str
        The flag that gave it (``"--out"``), named in the error.
    files : tuple of str
        Names the command will write in the folder; none of them may be a directory.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        ``path`` exists and is not a directory, is not writable (or, when missing, its nearest
        existing ancestor is a file or not writable), or one of ``files`` is a directory.
    """
    folder = pathlib.Path(path)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{option}: {os.fspath(path)!r} is not a directory")
    existing = folder.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{option}: cannot create {os.fspath(path)!r}: {os.fspath(existing)!r} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{option}: the folder {os.fspath(existing)!r} is not writable")
    for name in files:
        if (folder / name).is_dir():
            raise ValueError(f"{option}: {os.fspath(folder / name)!r} is a directory, expected a file path")
    return folder


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a process of another user counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def clean_leftovers(folder: str | os.PathLike, *, stale_suffix: str | None = None) -> list[pathlib.Path]:
    """Remove the temporary files that killed :func:`write_atomic` calls left in a folder.

    A file named as :data:`TEMP_PATTERN` is removed when its process is gone; ecp 0.1's
    pid-less ``.NAME.XXXXXXXX.part`` when it was last written before this process started.
    Files of a live process (this one included) are kept; nothing else is touched.

    Parameters
    ----------
    folder : str or os.PathLike
        The folder; a missing one holds nothing.
    stale_suffix : str or None
        Also remove the files whose name ends so (``".tmp"``) when last written before this
        process started.

    Returns
    -------
    list of pathlib.Path
        The files removed.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    own = os.getpid()
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and name.endswith(".part")) and \
                not (stale_suffix is not None and name.endswith(stale_suffix)):
            continue
        match = TEMP_PATTERN.match(name)
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if stale_suffix is not None and name.endswith(stale_suffix):
                stale = entry.stat().st_mtime < _STARTED
            elif match is not None:
                pid = int(match["pid"])
                stale = pid != own and not _alive(pid)
            else:
                stale = _LEGACY_PATTERN.match(name) is not None and entry.stat().st_mtime < _STARTED
            if stale:
                os.unlink(entry.path)
                removed.append(pathlib.Path(entry.path))
        except FileNotFoundError:  # another process cleaned it first
            continue
    return removed


def write_atomic(path: str | os.PathLike, data: str | bytes | Callable[[IO[bytes]], Any]) -> pathlib.Path:
    """Write a file atomically: a temporary file in the same folder, then a rename.

    Parameters
    ----------
    path : str or os.PathLike
        The file to (re)place. Its folder must exist.
    data : str, bytes or callable
        The content: text (written as UTF-8), bytes, or a function that writes into the binary
        file object it is given (e.g. ``lambda f: fig.savefig(f, format="png")``).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    IsADirectoryError
        ``path`` is a directory.
    OSError
        The folder is missing or not writable, the disk is full...

    Notes
    -----
    The temporary file (``.NAME.ecp<PID>-<random>.part``, :data:`TEMP_PATTERN`) lives beside
    ``path`` so that the rename stays on one file system and is atomic; it is removed whatever
    goes wrong, Ctrl-C included. Only a kill that gives no chance to run (SIGKILL) leaves it,
    and the next call in that folder removes it (:func:`clean_leftovers`).
    """
    target = pathlib.Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"{os.fspath(path)!r} is a directory, expected a file path")
    folder = target.absolute().parent
    clean_leftovers(folder)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.ecp{os.getpid()}-", suffix=".part", dir=folder)
    os.close(fd)
    try:
        with open(tmp, "wb") as f:  # f.name is the temporary path: a writer may read it back
            if isinstance(data, str):
                f.write(data.encode("utf-8"))
            elif isinstance(data, (bytes, bytearray, memoryview)):
                f.write(data)
            elif callable(data):
                data(f)
            else:
                raise TypeError(f"data must be str, bytes or a callable, got {type(data).__name__}")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def to_json_safe(value: Any) -> Any:
    """``value`` with NumPy scalars/arrays made Python, and non-finite floats made ``None``.

    JSON (RFC 8259) has no NaN or Infinity; a record holding them would not parse elsewhere.
    """
    if isinstance(value, dict):
        return {str(k): to_json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def write_json(path: str | os.PathLike, obj: Any, *, indent: int = 2) -> pathlib.Path:
    """Write ``obj`` as strict JSON (non-finite floats as ``null``) with :func:`write_atomic`."""
    text = json.dumps(to_json_safe(obj), indent=indent, allow_nan=False) + "\n"
    return write_atomic(path, text)
