"""Progress display for the ``ecp`` subcommands, on stderr, drawn by tqdm.

Contract shared by every subcommand: progress goes to stderr, never stdout (stdout holds the
results); bars are drawn only on a terminal (a log file or a pipe gets no carriage returns);
``-q`` / ``--no-progress`` turn them off. The helpers take the stream to draw on so that tests can
pass a fake terminal.
"""
from __future__ import annotations

import sys
from typing import IO

from tqdm import tqdm

__all__ = ["is_terminal", "StatusLine", "BatchBar", "ByteBar"]


def is_terminal(stream: IO[str] | None) -> bool:
    """Whether ``stream`` is an interactive terminal (where a self-redrawing line makes sense)."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty is not None and isatty())
    except ValueError:  # closed stream
        return False


class StatusLine:
    """What a long command is doing now: one redrawn line on a terminal, plain lines otherwise.

    ``status(message)`` shows ``"PREFIX: message"``; ``status(message, transient=True)`` is a
    counter worth showing only on a terminal (a log would get one line per call).
    """

    def __init__(self, prefix: str, stream: IO[str] | None = None, enabled: bool = True):
        self.prefix = prefix
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = enabled and is_terminal(self.stream)
        self._bar: tqdm | None = None

    def __call__(self, message: str, transient: bool = False) -> None:
        if not self.enabled:
            return
        text = f"{self.prefix}: {message}"
        if self.tty:
            if self._bar is None:
                self._bar = tqdm(file=self.stream, bar_format="{desc}", leave=False, dynamic_ncols=True)
            self._bar.set_description_str(text)
        elif not transient:
            self.stream.write(text + "\n")
            self.stream.flush()

    def clear(self) -> None:
        """Erase the line (before printing results on the same terminal)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class BatchBar:
    """A bar over the batches of a training pass, with the running loss and batches/s.

    Called as ``bar(label, batches_done, batches_total, mean_loss)``; a new label, or a count
    that goes back, starts a new bar.
    """

    def __init__(self, stream: IO[str] | None = None, enabled: bool = True):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and is_terminal(self.stream)
        self._bar: tqdm | None = None
        self._label: str | None = None

    def __call__(self, label: str, done: int, total: int, loss: float) -> None:
        if not self.enabled:
            return
        if self._bar is None or label != self._label or done <= self._bar.n:
            self.clear()
            self._bar = tqdm(total=total, desc=label, unit="batch", file=self.stream, leave=False,
                             dynamic_ncols=True, mininterval=0.1)
            self._label = label
        self._bar.set_postfix_str(f"loss {loss:.4f}", refresh=False)
        self._bar.update(done - self._bar.n)
        if done == total:
            self._bar.refresh()  # the last state is always drawn, however soon it came

    def clear(self) -> None:
        """Erase the bar (before printing a result line)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            self._label = None


class ByteBar:
    """A bar over the bytes of a download: ``bar(name, bytes_done, bytes_total_or_None)``."""

    def __init__(self, stream: IO[str] | None = None, enabled: bool = True):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and is_terminal(self.stream)
        self._bar: tqdm | None = None
        self._name: str | None = None

    def __call__(self, name: str, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        if self._bar is None or name != self._name:
            self.end()
            self._bar = tqdm(total=total, desc=name, unit="B", unit_scale=True, unit_divisor=1000,
                             file=self.stream, leave=True, dynamic_ncols=True, mininterval=0.1)
            self._name = name
        self._bar.update(done - self._bar.n)
        if total is not None and done == total:
            self._bar.refresh()

    def end(self) -> None:
        """Finish the current file's bar (it stays on screen)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            self._name = None
