"""argparse types for the numbers the ``ecp`` subcommands take.

Each returns the parsed value or raises :class:`argparse.ArgumentTypeError` saying what was
expected and what was given, so every subcommand refuses a bad number the same way (exit
status 2, ``ecp CMD: error: argument --flag: expected ..., got '...'``).
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["int_at_least", "positive_int", "nonnegative_int", "float_where", "positive_float",
           "nonnegative_float", "decay_float", "momentum_float"]


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value
    parse.__name__ = f"integer >= {minimum}"
    return parse


def float_where(ok: Callable[[float], bool], expected: str) -> Callable[[str], float]:
    """An argparse type: a finite float for which ``ok(value)`` holds; ``expected`` says which."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and ok(value)):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value
    parse.__name__ = expected
    return parse


positive_int = int_at_least(1)
nonnegative_int = int_at_least(0)
positive_float = float_where(lambda v: v > 0, "a number > 0")
nonnegative_float = float_where(lambda v: v >= 0, "a number >= 0")
decay_float = float_where(lambda v: 0 < v <= 1, "a number in (0, 1]")
momentum_float = float_where(lambda v: 0 <= v < 1, "a number in [0, 1)")
