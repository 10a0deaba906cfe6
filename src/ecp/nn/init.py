"""Seeded randomness for ``ecp.nn``: generators, weight initialisers and the draw of mode K.

Every random choice in ``ecp.nn`` comes from an explicit :class:`numpy.random.Generator` (or an
integer seed turned into one), never from global state, so a seed reproduces a run exactly.
The initialisers draw ``rng.standard_normal(shape)`` in float64 and cast once to ``dtype``: the
same generator state gives the same weights in float32 and float64 (up to that cast).
"""
from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import DTypeLike

from .._validation import check_int

__all__ = ["as_generator", "resolve_mode", "he_normal", "lecun_normal"]


def as_generator(rng: np.random.Generator | int, name: str = "rng") -> np.random.Generator:
    """A :class:`numpy.random.Generator` from a Generator or an integer seed.

    Parameters
    ----------
    rng : numpy.random.Generator or int
        A Generator is returned as is (its state is shared with the caller); an integer seeds
        ``numpy.random.default_rng``.
    name : str, default "rng"
        The argument's name, for the error message.

    Returns
    -------
    numpy.random.Generator
        ``rng`` itself, or a new generator seeded with it.

    Raises
    ------
    TypeError
        For anything else, ``None`` included: every random choice in ecp comes from an
        explicit, seeded generator.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, (bool, np.bool_)):
        return np.random.default_rng(int(rng))
    raise TypeError(f"{name} must be a numpy.random.Generator or an integer seed, got "
                    f"{type(rng).__name__} {rng!r}"[:160])


def resolve_mode(mode: int | str, rng: np.random.Generator | int | None = None, name: str = "mode") -> int:
    """Mode K of a random-pooling layer.

    Parameters
    ----------
    mode : int 0..3 or "random"
        An integer is returned as is; ``"random"`` draws one K uniformly from ``rng``
        (one call of ``rng.integers(4)``).
    rng : numpy.random.Generator or int, optional
        Required when ``mode="random"``, unused otherwise.
    name : str, default "mode"
        The argument's name, for the error messages.

    Returns
    -------
    int
        K in 0..3 (the kept pixel of each 2x2 window, row-major).

    Raises
    ------
    ValueError
        A string other than ``"random"``, or an integer outside 0..3.
    TypeError
        ``mode="random"`` without ``rng``, or a ``mode`` that is neither an integer nor a string.
    """
    if isinstance(mode, str):
        if mode != "random":
            raise ValueError(f"{name} must be an integer 0..3 or 'random', got {mode!r}")
        if rng is None:
            raise TypeError(f"{name}='random' needs a seeded generator (rng) to draw K from")
        return int(as_generator(rng).integers(4))
    return check_int(mode, name, 0, 3)


def he_normal(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, dtype: DTypeLike) -> np.ndarray:
    """He (Kaiming) normal initialisation, N(0, 2 / fan_in): for a layer followed by ReLU.

    Parameters
    ----------
    rng : numpy.random.Generator
        Advanced by one ``standard_normal(shape)`` draw.
    shape : tuple of int
        Of the weights.
    fan_in : int
        Inputs feeding one output (``in_channels * k * k`` for a convolution).
    dtype : float32 or float64
        Of the weights.

    Returns
    -------
    ndarray of ``shape`` and ``dtype``
        The weights.
    """
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)


def lecun_normal(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, dtype: DTypeLike) -> np.ndarray:
    """LeCun normal initialisation, N(0, 1 / fan_in): for the output layer.

    Parameters
    ----------
    rng : numpy.random.Generator
        Advanced by one ``standard_normal(shape)`` draw.
    shape : tuple of int
        Of the weights.
    fan_in : int
        Inputs feeding one output.
    dtype : float32 or float64
        Of the weights.

    Returns
    -------
    ndarray of ``shape`` and ``dtype``
        The weights.
    """
    return (rng.standard_normal(shape) * np.sqrt(1.0 / fan_in)).astype(dtype)
