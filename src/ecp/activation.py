"""ReLU, forward and backward: the public entry points of ``ecp/_kernels/_activation.pyx``.

Arrays of any shape, float32 or float64; the first axis is the batch, which the threads share
as the convolution and pooling kernels share it (in contiguous runs of samples), so in a
network each thread finds in its own cache what it wrote in the layer before. The values are
NumPy's: ``np.maximum(x, 0)`` and ``dy * (y > 0)``, NaN and signed zeros included.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._kernels import _activation
from ._threads import get_num_threads
from ._validation import as_float_array

__all__ = ["relu", "relu_backward"]

# Below this many elements a call runs on one thread (as pool.py's kernels).
PARALLEL_MIN_ELEMENTS = 1 << 15


def _rows(a):
    """``a`` as the 2-D (batch, rest) view the kernels take (a 0-d or 1-D array: one row)."""
    if a.ndim < 2:
        return a.reshape(1, a.size)
    return a.reshape(a.shape[0], a.size // a.shape[0])


def _out(out, like, name):
    """The array to write: a new one (out None) or ``out``, checked against ``like`` (the input
    whose shape and dtype it must have); ``out`` may be that input itself (in place)."""
    if out is None:
        return np.empty(like.shape, like.dtype)
    if out is like:
        return out
    if type(out) is not np.ndarray:
        raise TypeError(f"out must be a numpy array or None, got {type(out).__name__}")
    if out.shape != like.shape or out.dtype != like.dtype:
        raise ValueError(f"out must have the shape and dtype of {name}, {like.shape} {like.dtype}; "
                         f"got {out.shape} {out.dtype}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be a C-contiguous, writeable array")
    if np.may_share_memory(out, like) and (
            out.__array_interface__["data"][0] != like.__array_interface__["data"][0]):
        raise ValueError(f"out overlaps {name} without being {name} itself: pass {name} (in place) "
                         "or an array of its own")
    return out


def _threads(size):
    return get_num_threads() if size >= PARALLEL_MIN_ELEMENTS else 1


def relu(x: ArrayLike, out: NDArray[np.floating] | None = None) -> NDArray[np.floating]:
    """Rectified linear unit: ``max(x, 0)`` elementwise.

    Parameters
    ----------
    x : array_like, any shape, float32 or float64
        The input (its first axis is the batch).
    out : ndarray or None
        Where to write: an array of x's shape and dtype, C-contiguous, or ``x`` itself (in place).

    Returns
    -------
    ndarray like ``x``
        Equal to ``np.maximum(x, 0)`` (NaN stays NaN, -0.0 becomes 0.0).

    Raises
    ------
    TypeError
        If ``x`` is not a float32 / float64 array or ``out`` not an ndarray.
    ValueError
        If ``out`` does not have x's shape and dtype, is not C-contiguous and writeable, or
        overlaps ``x`` without being ``x``.

    Examples
    --------
    >>> import numpy as np, ecp
    >>> ecp.relu(np.array([[-1.0, 0.5], [2.0, -3.0]]))
    array([[0. , 0.5],
           [2. , 0. ]])
    """
    x = as_float_array(x, "x", None, "of any shape")
    y = _out(out, x, "x")
    if x.size:
        (_activation.relu_forward_f if x.dtype.char == "f" else _activation.relu_forward_d)(
            _rows(x), _rows(y), _threads(x.size))
    return y


def relu_backward(dy: ArrayLike, y: ArrayLike, out: NDArray[np.floating] | None = None) -> NDArray[np.floating]:
    """Gradient of :func:`relu`: ``dy * (y > 0)``.

    ``y`` is the forward's output (or its input: both are > 0 at the same places).

    Parameters
    ----------
    dy : array_like, float32 or float64
        The gradient of the loss with respect to the output.
    y : array_like of dy's shape and dtype
        The forward's output (or input).
    out : ndarray or None
        Where to write: an array of dy's shape and dtype, C-contiguous, or ``dy`` itself.

    Returns
    -------
    ndarray like ``dy``
        Where y is not > 0, ``dy * 0`` (so a NaN or infinite dy stays visible as NaN, as in NumPy).

    Raises
    ------
    TypeError
        If ``dy`` or ``y`` is not a float32 / float64 array, or their dtypes differ.
    ValueError
        If the shapes differ, or ``out`` is not a valid destination (see :func:`relu`).

    Examples
    --------
    >>> import numpy as np, ecp
    >>> ecp.relu_backward(np.array([1.0, 2.0]), np.array([0.0, 3.0]))
    array([0., 2.])
    """
    dy = as_float_array(dy, "dy", None, "of any shape")
    y = as_float_array(y, "y", None, "of any shape", dtype=dy.dtype, like="dy")
    if y.shape != dy.shape:
        raise ValueError(f"y must have dy's shape {dy.shape}, got {y.shape}")
    dx = _out(out, dy, "dy")
    if dy.size:
        (_activation.relu_backward_f if dy.dtype.char == "f" else _activation.relu_backward_d)(
            _rows(dy), _rows(y), _rows(dx), _threads(dy.size))
    return dx
