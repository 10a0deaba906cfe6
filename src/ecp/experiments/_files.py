"""Writing the files the tools produce: atomically, and JSON that any parser reads.

Every file the ``ecp`` command writes (JSON records, ``tables.md``, CSVs, figures, run records,
downloads, ``docs/results.md``) goes through :func:`write_atomic`: a reader never sees a half
written file, and an error or Ctrl-C leaves the previous file (or none) in place.
"""
from __future__ import annotations

import json
import math
import os
import pathlib
import tempfile
from collections.abc import Callable
from typing import IO, Any

import numpy as np

__all__ = ["write_atomic", "write_json", "to_json_safe", "check_output_file"]


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
        ``path`` is a directory, or its folder does not exist.
    """
    target = pathlib.Path(path)
    if target.is_dir():
        raise ValueError(f"{option}: {os.fspath(path)!r} is a directory, expected a file path")
    parent = target.absolute().parent
    if not parent.is_dir():
        raise ValueError(f"{option}: the folder {os.fspath(parent)!r} does not exist")
    return target


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
    The temporary file (``.NAME.XXXX.part``) lives beside ``path`` so that the rename stays on
    one file system and is atomic; it is removed whatever goes wrong, Ctrl-C included.
    """
    target = pathlib.Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"{os.fspath(path)!r} is a directory, expected a file path")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.absolute().parent)
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
