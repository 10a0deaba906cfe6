"""``docs/results.md``: each tool owns one section of it and replaces only that section.

A section runs from ``<!-- begin: ecp bench -->`` to ``<!-- end: ecp bench -->`` (likewise
``ecp reproduce``). :func:`update_section` replaces the text between the two markers, appends the
section when the file lacks it, creates the file when missing, and leaves every other byte of the
file as it was. Each section is stamped with the commit, the date, the machine and the command line
that produced it. The file is written atomically.
"""
from __future__ import annotations

import datetime
import os
import pathlib
import shlex
import sys

from ._files import write_atomic
from ._machine import machine_line, source_revision

__all__ = ["update_section", "stamp", "begin_marker", "end_marker"]

_TITLE = ("# ecp results\n\nWritten by `ecp bench --results-md` and `ecp reproduce --results-md`; each tool "
          "replaces\nonly its own section.\n")


def begin_marker(tool: str) -> str:
    """``<!-- begin: TOOL -->``."""
    return f"<!-- begin: {tool} -->"


def end_marker(tool: str) -> str:
    """``<!-- end: TOOL -->``."""
    return f"<!-- end: {tool} -->"


def stamp(argv: list[str] | None = None) -> str:
    """Markdown lines saying which commit, when, on which machine and with which command.

    Parameters
    ----------
    argv : list of str, optional
        The command line; default ``sys.argv`` (shown as ``ecp ARGS``).
    """
    argv = sys.argv[1:] if argv is None else argv
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"- commit: `{source_revision()}`\n"
            f"- date: {now}\n"
            f"- machine: {machine_line()}\n"
            f"- command: `{shlex.join(['ecp', *argv])}`\n")


def update_section(path: str | os.PathLike, tool: str, body: str, *, argv: list[str] | None = None) -> pathlib.Path:
    """Replace ``tool``'s section of the Markdown file ``path`` with ``body``, stamped.

    Parameters
    ----------
    path : str or os.PathLike
        The file (e.g. ``docs/results.md``); created when missing (its folder must exist).
    tool : str
        ``"ecp bench"`` or ``"ecp reproduce"``: names the markers.
    body : str
        Markdown to put under the stamp.
    argv : list of str, optional
        The command line for the stamp (default ``sys.argv[1:]``).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        The file holds one marker of the section without the other, or them out of order.
    """
    target = pathlib.Path(path)
    begin, end = begin_marker(tool), end_marker(tool)
    section = f"{begin}\n## {tool}\n\n{stamp(argv)}\n{body.rstrip()}\n{end}"
    text = target.read_text(encoding="utf-8") if target.exists() else _TITLE
    i, j = text.find(begin), text.find(end)
    if i < 0 and j < 0:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    elif i < 0 or j < 0 or j < i:
        raise ValueError(f"{target}: the markers {begin!r} and {end!r} must both be present, in that order")
    else:
        text = text[:i] + section + text[j + len(end):]
    return write_atomic(target, text)
