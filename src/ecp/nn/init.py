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

__all__ = ["as_generator", "resolve_mode", "resolve_eval_mode", "mode_generator", "PER_BATCH", "ENSEMBLE",
           "he_normal", "lecun_normal"]

#: ``mode`` of a layer that draws a new K for every training forward.
PER_BATCH = "per-batch"
#: ``eval_mode`` of a layer whose network averages its logits over the 4 modes in evaluation.
ENSEMBLE = "ensemble"


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


def resolve_mode(mode: int | str, rng: np.random.Generator | int | None = None, name: str = "mode",
                 n_modes: int = 4) -> int:
    """Mode K of a random-pooling layer.

    Parameters
    ----------
    mode : int 0..n_modes-1 or "random"
        An integer is returned as is; ``"random"`` draws one K uniformly from ``rng``
        (one call of ``rng.integers(n_modes)``).
    rng : numpy.random.Generator or int, optional
        Required when ``mode="random"``, unused otherwise.
    name : str, default "mode"
        The argument's name, for the error messages.
    n_modes : int, default 4
        The modes of the pooling window: p^2 for a p x p window (4: the 2x2 window).

    Returns
    -------
    int
        K in 0..n_modes-1 (the kept pixel of each window, row-major).

    Raises
    ------
    ValueError
        A string other than ``"random"``, or an integer outside 0..n_modes-1.
    TypeError
        ``mode="random"`` without ``rng``, or a ``mode`` that is neither an integer nor a string.
    """
    if isinstance(mode, str):
        if mode != "random":
            raise ValueError(f"{name} must be an integer 0..{n_modes - 1} or 'random', got {mode!r}")
        if rng is None:
            raise TypeError(f"{name}='random' needs a seeded generator (rng) to draw K from")
        return int(as_generator(rng).integers(n_modes))
    return check_int(mode, name, 0, n_modes - 1)


def mode_generator(rng: np.random.Generator | int, name: str = "rng") -> np.random.Generator:
    """The own generator of a ``mode="per-batch"`` layer: seeded by one draw from ``rng``.

    Parameters
    ----------
    rng : numpy.random.Generator or int
        Advanced by one ``integers(2**63)`` call (an integer seeds a new generator first).
    name : str, default "rng"
        The argument's name, for the error message.

    Returns
    -------
    numpy.random.Generator
        A new generator, independent of ``rng`` afterwards (the layer's draws of K change nothing
        another user of ``rng`` sees).

    Raises
    ------
    TypeError
        ``rng`` neither a Generator nor an integer seed.
    """
    return np.random.default_rng(int(as_generator(rng, name).integers(2**63)))


def resolve_eval_mode(eval_mode: int | str | None, mode: int | str, name: str = "eval_mode",
                      n_modes: int = 4) -> int | str:
    """Mode K of a random-pooling layer in evaluation, or ``"ensemble"``.

    Parameters
    ----------
    eval_mode : int 0..n_modes-1, "ensemble" or None
        None: the layer's own K for a fixed-K layer, 0 for ``mode="per-batch"``. ``"ensemble"``
        (per-batch layers only): the network's logits are averaged over the modes (see
        :meth:`ecp.nn.Sequential.forward`).
    mode : int 0..n_modes-1 or "per-batch"
        The layer's resolved training mode.
    name : str, default "eval_mode"
        The argument's name, for the error messages.
    n_modes : int, default 4
        The modes of the pooling window: p^2 for a p x p window.

    Returns
    -------
    int or str
        K in 0..n_modes-1, or ``"ensemble"``.

    Raises
    ------
    ValueError
        A string other than ``"ensemble"``, an integer outside 0..n_modes-1, or ``"ensemble"``
        with a fixed ``mode``: a layer trained with one K never saw the others, so their average
        is not an ensemble of trained networks.
    TypeError
        Neither an integer, a string nor None.
    """
    if eval_mode is None:
        return 0 if mode == PER_BATCH else mode
    if isinstance(eval_mode, str):
        if eval_mode != ENSEMBLE:
            raise ValueError(f"{name} must be an integer 0..{n_modes - 1}, 'ensemble' or None, got {eval_mode!r}")
        if mode != PER_BATCH:
            raise ValueError(f"{name}='ensemble' needs mode='per-batch', got mode={mode!r}: a layer trained with one "
                             f"K never saw the other modes, so averaging over them is not an ensemble")
        return ENSEMBLE
    return check_int(eval_mode, name, 0, n_modes - 1)


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
