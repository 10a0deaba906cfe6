"""2x2 / stride-2 pooling (random, max, average), backward scatters, and neighbor fill.

Public entry points of the kernels in ``ecp/_kernels/_pool.pyx``. Layout is NCHW. Pooled sizes
use floor: an odd last row / column of the input is dropped (as in PyTorch) and gets a zero
gradient. Maps must be at least 2x2.

Mode K (Random Pooling) is row-major within the window: 0 top-left, 1 top-right,
2 bottom-left, 3 bottom-right. (The paper says "from up to down and left to right", which
reads both ways; ecp fixes this order everywhere.)
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._kernels import _pool
from ._threads import get_num_threads
from ._validation import (
    MISSING,
    as_float_array,
    check_grad_shape,
    check_mode,
    check_poolable,
    check_shape,
    check_window_mode,
    public_signature,
    window_output_shape,
)

__all__ = [
    "random_pool2d", "random_pool2d_backward", "max_pool2d", "max_pool2d_backward",
    "avg_pool2d", "avg_pool2d_backward", "neighbor_fill", "neighbor_fill_backward",
]

_NCHW = "(N, C, H, W)"


# Below this many input elements a pooling call runs on one thread: starting the team would
# cost more than the work (and on a busy machine can wait a whole scheduler tick).
PARALLEL_MIN_ELEMENTS = 1 << 15


def _threads(size):
    return get_num_threads() if size >= PARALLEL_MIN_ELEMENTS else 1


def _pooled(shape):
    return (shape[0], shape[1], shape[2] // 2, shape[3] // 2)


def _input(x):
    x = as_float_array(x, "x", 4)
    check_poolable(x.shape, "x")
    return x


def _grad_and_shape(dy, input_shape):
    input_shape = check_shape(input_shape, "input_shape", 4, _NCHW)
    check_poolable(input_shape, "input_shape")
    dy = as_float_array(dy, "dy", 4, "(N, C, H//2, W//2)")
    check_grad_shape(dy, _pooled(input_shape))
    return dy, input_shape


# The default pool_size and pool_stride, compared by identity (as in ecp.conv): an int 2 is one object.
_TWO = 2


def random_pool2d(x: ArrayLike, mode: int = 0, *, pool_size: int = 2, pool_stride: int = 2) -> NDArray[np.floating]:
    """Random Pooling: keep the pixel at position K of every p x p window.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W), float32 or float64, H and W >= p
        The input.
    mode : int in 0..p^2-1
        The kept pixel's row-major position in the window: (K // p, K % p).
    pool_size : int in 1..4, default 2
        The side p of the window (keyword only).
    pool_stride : int in 1..pool_size, default 2
        The stride s of the window (keyword only).

    Returns
    -------
    ndarray, shape (N, C, (H - p) // s + 1, (W - p) // s + 1), dtype of ``x``
        Equal to ``x[:, :, K//p::s, K%p::s]`` cropped ((H // 2, W // 2) for the 2x2 window).

    Raises
    ------
    TypeError
        If ``x`` is not a float32 / float64 array, or ``mode``, ``pool_size`` or ``pool_stride``
        not an integer.
    ValueError
        If ``x`` is not 4-D or smaller than the window, ``mode`` is outside 0..p^2-1,
        ``pool_size`` outside 1..4 or ``pool_stride`` outside 1..p.

    Examples
    --------
    >>> import numpy as np, ecp
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> ecp.random_pool2d(x, mode=1)[0, 0]
    array([[ 1.,  3.],
           [ 9., 11.]])
    """
    if pool_size is not _TWO or pool_stride is not _TWO:   # not the 2x2 window: checked in full
        # another window: a strided copy (the kernel takes the 2x2 window)
        k, p, s = check_window_mode(mode, pool_size, pool_stride)
        x = as_float_array(x, "x", 4)
        shape = window_output_shape(x.shape, p, s, "x")
        return np.ascontiguousarray(x[:, :, k // p::s, k % p::s][:, :, :shape[2], :shape[3]])
    x = _input(x)
    oy, ox = check_mode(mode)
    y = np.empty(_pooled(x.shape), dtype=x.dtype)
    _pool.random_pool_forward(x, y, oy, ox, _threads(x.size))
    return y


def random_pool2d_backward(dy: ArrayLike, mode: int, input_shape: Sequence[int], *, pool_size: int = 2,
                           pool_stride: int = 2) -> NDArray[np.floating]:
    """Gradient of :func:`random_pool2d`: ``dy`` at the mode-K positions, zeros elsewhere.

    Parameters
    ----------
    dy : array_like, shape (N, C, H // 2, W // 2), float32 or float64
        The gradient with respect to the output.
    mode : int in 0..p^2-1
        As given to :func:`random_pool2d`.
    input_shape : tuple of 4 ints
        (N, C, H, W) of the pooled input.
    pool_size : int in 1..4, default 2
        As given to :func:`random_pool2d` (keyword only).
    pool_stride : int in 1..pool_size, default 2
        As given to :func:`random_pool2d` (keyword only).

    Returns
    -------
    ndarray, shape ``input_shape``, dtype of ``dy``
        The gradient with respect to the input.

    Raises
    ------
    TypeError
        If ``dy`` is not a float32 / float64 array, or ``mode`` not an integer.
    ValueError
        If ``dy`` does not have the pooled shape of ``input_shape``, or ``mode`` is outside 0..3.

    Examples
    --------
    >>> import numpy as np, ecp
    >>> ecp.random_pool2d_backward(np.ones((1, 1, 1, 1)), 2, (1, 1, 2, 2))[0, 0]
    array([[0., 0.],
           [1., 0.]])
    """
    if pool_size is not _TWO or pool_stride is not _TWO:   # not the 2x2 window: checked in full
        k, p, s = check_window_mode(mode, pool_size, pool_stride)
        input_shape = check_shape(input_shape, "input_shape", 4, _NCHW)
        shape = window_output_shape(input_shape, p, s, "input_shape")
        dy = as_float_array(dy, "dy", 4, f"(N, C, (H-{p})//{s}+1, (W-{p})//{s}+1)")
        check_grad_shape(dy, shape)
        dx = np.zeros(input_shape, dtype=dy.dtype)
        dx[:, :, k // p::s, k % p::s][:, :, :shape[2], :shape[3]] = dy
        return dx
    oy, ox = check_mode(mode)
    dy, input_shape = _grad_and_shape(dy, input_shape)
    dx = np.empty(input_shape, dtype=dy.dtype)
    _pool.random_pool_backward(dy, dx, oy, ox, _threads(dx.size))
    return dx


def max_pool2d(x: ArrayLike, return_indices: bool = False
               ) -> NDArray[np.floating] | tuple[NDArray[np.floating], NDArray[np.int64]]:
    """2x2 / stride-2 max pooling.

    Ties go to the first maximum in row-major window order (as in PyTorch); a NaN in a window
    is its maximum (NaN propagates, as with ``np.max``).

    Parameters
    ----------
    x : array_like, shape (N, C, H, W), float32 or float64, H and W >= 2
        The input.
    return_indices : bool
        Also return the int64 flat index ``h * W + w`` of each maximum within its (H, W) plane
        (PyTorch's convention), for :func:`max_pool2d_backward`.

    Returns
    -------
    y : ndarray, shape (N, C, H // 2, W // 2), dtype of ``x``
        The maxima.
    indices : ndarray, int64, same shape
        Only when ``return_indices``.

    Raises
    ------
    TypeError
        If ``x`` is not a float32 / float64 array.
    ValueError
        If ``x`` is not 4-D or smaller than 2x2.

    Examples
    --------
    >>> import numpy as np, ecp
    >>> x = np.array([[[[1., 3.], [3., 0.]]]])
    >>> y, idx = ecp.max_pool2d(x, return_indices=True)
    >>> float(y[0, 0, 0, 0]), int(idx[0, 0, 0, 0])
    (3.0, 1)
    """
    x = _input(x)
    y = np.empty(_pooled(x.shape), dtype=x.dtype)
    idx = np.empty(_pooled(x.shape), dtype=np.int64)
    _pool.max_pool_forward(x, y, idx, _threads(x.size))
    return (y, idx) if return_indices else y


def max_pool2d_backward(dy: ArrayLike, indices: NDArray[np.integer], input_shape: Sequence[int]
                        ) -> NDArray[np.floating]:
    """Gradient of :func:`max_pool2d`: each ``dy`` added at its maximum's position.

    Parameters
    ----------
    dy : array_like, shape (N, C, H // 2, W // 2), float32 or float64
        The gradient with respect to the output.
    indices : ndarray of int, same shape
        From ``max_pool2d(x, return_indices=True)``.
    input_shape : tuple of 4 ints
        (N, C, H, W) of the pooled input.

    Returns
    -------
    ndarray, shape ``input_shape``, dtype of ``dy``
        The gradient with respect to the input.

    Raises
    ------
    TypeError
        If ``dy`` is not a float array or ``indices`` not an integer array.
    ValueError
        If the shapes do not match, or an index lies outside its plane.

    Examples
    --------
    >>> import numpy as np, ecp
    >>> x = np.array([[[[1., 3.], [3., 0.]]]])
    >>> y, idx = ecp.max_pool2d(x, return_indices=True)
    >>> ecp.max_pool2d_backward(np.ones_like(y), idx, x.shape)[0, 0]
    array([[0., 1.],
           [0., 0.]])
    """
    dy, input_shape = _grad_and_shape(dy, input_shape)
    if not isinstance(indices, np.ndarray):
        raise TypeError(f"indices must be an integer numpy array, got {type(indices).__name__}")
    if indices.dtype.kind not in "iu" or indices.dtype == np.bool_:
        raise TypeError(f"indices must have an integer dtype (int64 from max_pool2d), got {indices.dtype}")
    if indices.shape != dy.shape:
        raise ValueError(f"indices must have the shape of dy {dy.shape}, got {indices.shape}")
    plane = input_shape[2] * input_shape[3]
    idx = np.ascontiguousarray(indices, dtype=np.int64)
    dx = np.empty(input_shape, dtype=dy.dtype)
    # The kernel skips and counts out-of-range indices; any makes the whole call an error.
    if _pool.max_pool_backward(dy, idx, dx, _threads(dx.size)):
        raise ValueError(
            f"indices must lie in 0..{plane - 1} (flat positions in a {input_shape[2]}x"
            f"{input_shape[3]} plane), got values from {idx.min()} to {idx.max()}"
        )
    return dx


def avg_pool2d(x: ArrayLike) -> NDArray[np.floating]:
    """2x2 / stride-2 average pooling.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W), float32 or float64, H and W >= 2
        The input.

    Returns
    -------
    ndarray, shape (N, C, H // 2, W // 2), dtype of ``x``
        The mean of each window.

    Raises
    ------
    TypeError
        If ``x`` is not a float32 / float64 array.
    ValueError
        If ``x`` is not 4-D or smaller than 2x2.

    Examples
    --------
    >>> import numpy as np, ecp
    >>> float(ecp.avg_pool2d(np.arange(4.0).reshape(1, 1, 2, 2))[0, 0, 0, 0])
    1.5
    """
    x = _input(x)
    y = np.empty(_pooled(x.shape), dtype=x.dtype)
    _pool.avg_pool_forward(x, y, _threads(x.size))
    return y


def avg_pool2d_backward(dy: ArrayLike, input_shape: Sequence[int]) -> NDArray[np.floating]:
    """Gradient of :func:`avg_pool2d`: ``dy / 4`` in every cell of its window.

    Parameters
    ----------
    dy : array_like, shape (N, C, H // 2, W // 2), float32 or float64
        The gradient with respect to the output.
    input_shape : tuple of 4 ints
        (N, C, H, W) of the pooled input.

    Returns
    -------
    ndarray, shape ``input_shape``, dtype of ``dy``
        The gradient with respect to the input.

    Raises
    ------
    TypeError
        If ``dy`` is not a float32 / float64 array.
    ValueError
        If ``dy`` does not have the pooled shape of ``input_shape``.

    Examples
    --------
    >>> import numpy as np, ecp
    >>> ecp.avg_pool2d_backward(np.ones((1, 1, 1, 1)), (1, 1, 3, 2))[0, 0]
    array([[0.25, 0.25],
           [0.25, 0.25],
           [0.  , 0.  ]])
    """
    dy, input_shape = _grad_and_shape(dy, input_shape)
    dx = np.empty(input_shape, dtype=dy.dtype)
    _pool.avg_pool_backward(dy, dx, _threads(dx.size))
    return dx


def _fill_shape(y_shape, shape):
    hq, wq = y_shape[2], y_shape[3]
    if shape is None:
        return (y_shape[0], y_shape[1], 2 * hq, 2 * wq)
    h, w = check_shape(shape, "shape", 2, "(H, W)")
    if h not in (2 * hq, 2 * hq + 1) or w not in (2 * wq, 2 * wq + 1):
        raise ValueError(
            f"shape must be the full (H, W) a {hq}x{wq} map was pooled from: H in "
            f"({2 * hq}, {2 * hq + 1}) and W in ({2 * wq}, {2 * wq + 1}), got {(h, w)}"
        )
    return (y_shape[0], y_shape[1], h, w)


def _old_fill_args(func, args, kwargs, shape):
    """The ``shape`` of an old-style neighbor_fill call (a ``mode``, by position or keyword, then
    perhaps ``shape`` by position), its mode checked as it was, with a FutureWarning."""
    unknown = set(kwargs) - {"mode"}
    if unknown:
        raise TypeError(f"{func}() got an unexpected keyword argument {sorted(unknown)[0]!r}")
    if len(args) > 2:
        raise TypeError(f"{func}() takes at most 3 positional arguments ({1 + len(args)} given)")
    if args and "mode" in kwargs:
        raise TypeError(f"{func}() got multiple values for argument 'mode'")
    if len(args) == 2:
        if shape is not None:
            raise TypeError(f"{func}() got multiple values for argument 'shape'")
        shape = args[1]
    spelled = "y" if shape is None else f"y, shape={tuple(shape) if isinstance(shape, (tuple, list)) else shape!r}"
    warnings.warn(f"{func}() no longer takes a mode (the fill is the same for every K); passing one is "
                  f"deprecated and will be an error in the next release; write {func}({spelled})",
                  FutureWarning, stacklevel=3)
    check_mode(args[0] if args else kwargs["mode"])
    return shape


def _old_fill_backward_args(dy, args, kwargs):
    """The ``dy`` of an old-style neighbor_fill_backward call (``dout=``, a ``mode`` by position or
    keyword), its mode checked as it was, with a FutureWarning."""
    if "dout" in kwargs:
        if dy is not MISSING:
            raise TypeError("neighbor_fill_backward() got both dy and dout: write dy only")
        dy = kwargs.pop("dout")
        warnings.warn("neighbor_fill_backward(dout=...) is deprecated and will be an error in the next "
                      "release; write neighbor_fill_backward(dy)", FutureWarning, stacklevel=3)
    if args or kwargs:
        unknown = set(kwargs) - {"mode"}
        if unknown:
            raise TypeError(f"neighbor_fill_backward() got an unexpected keyword argument {sorted(unknown)[0]!r}")
        if len(args) > 1:
            raise TypeError(f"neighbor_fill_backward() takes at most 2 positional arguments ({1 + len(args)} given)")
        if args and "mode" in kwargs:
            raise TypeError("neighbor_fill_backward() got multiple values for argument 'mode'")
        warnings.warn("neighbor_fill_backward() no longer takes a mode (the fill is the same for every K); "
                      "passing one is deprecated and will be an error in the next release; write "
                      "neighbor_fill_backward(dy)", FutureWarning, stacklevel=3)
        check_mode(args[0] if args else kwargs["mode"])
    return dy


@public_signature
def neighbor_fill(y: ArrayLike, *args, shape: Sequence[int] | None = None, **kwargs) -> NDArray[np.floating]:
    """Restore a pooled / easy-convolved map to full size by copying each value into its 2x2 window.

    This is the paper's "padding of the neighbor pixels": ``out[..., 2r:2r+2, 2q:2q+2] = y[..., r, q]``.
    Every pixel of a window receives the value, so the result does not depend on the mode K.

    Parameters
    ----------
    y : array_like, shape (N, C, Hq, Wq), float32 or float64, Hq and Wq >= 1
        The pooled map.
    shape : (H, W) or None
        Full size, ``2*Hq`` or ``2*Hq + 1`` (likewise W); None means (2*Hq, 2*Wq) (keyword only).
        When H (W) is odd, the leftover last row (column) -- which no pooling window covers --
        repeats the row (column) above (left of) it: the neighbor fill carried to the edge.

    Returns
    -------
    ndarray, shape (N, C, H, W), dtype of ``y``
        The filled map.

    Raises
    ------
    TypeError
        If ``y`` is not a float32 / float64 array (or convertible).
    ValueError
        If ``y`` is not 4-D, is empty in H or W, or ``shape`` is not a size ``y`` was pooled from.

    Examples
    --------
    >>> import numpy as np, ecp
    >>> ecp.neighbor_fill(np.array([[[[1., 2.]]]]), shape=(3, 4))[0, 0]
    array([[1., 1., 2., 2.],
           [1., 1., 2., 2.],
           [1., 1., 2., 2.]])
    """
    if args or kwargs:
        shape = _old_fill_args("neighbor_fill", args, kwargs, shape)
    y = as_float_array(y, "y", 4, "(N, C, Hq, Wq)")
    if y.shape[2] < 1 or y.shape[3] < 1:
        raise ValueError(f"y must have Hq >= 1 and Wq >= 1, got shape {y.shape}")
    out = np.empty(_fill_shape(y.shape, shape), dtype=y.dtype)
    _pool.neighbor_fill_forward(y, out, _threads(out.size))
    return out


@public_signature
def neighbor_fill_backward(dy: ArrayLike = MISSING, *args, **kwargs) -> NDArray[np.floating]:
    """Gradient of :func:`neighbor_fill`.

    Each pooled cell gets the sum of ``dy`` over the cells it was copied to.

    Parameters
    ----------
    dy : array_like, shape (N, C, H, W), float32 or float64, H and W >= 2
        The gradient with respect to the filled map.

    Returns
    -------
    ndarray, shape (N, C, H // 2, W // 2), dtype of ``dy``
        The gradient with respect to the pooled map.

    Raises
    ------
    TypeError
        If ``dy`` is not a float32 / float64 array (or convertible).
    ValueError
        If ``dy`` is not 4-D or smaller than 2x2.

    Examples
    --------
    >>> import numpy as np, ecp
    >>> float(ecp.neighbor_fill_backward(np.ones((1, 1, 3, 2)))[0, 0, 0, 0])
    6.0
    """
    if args or kwargs:
        dy = _old_fill_backward_args(dy, args, kwargs)
    if dy is MISSING:
        raise TypeError("neighbor_fill_backward() missing 1 required positional argument: 'dy'")
    dy = as_float_array(dy, "dy", 4)
    check_poolable(dy.shape, "dy")
    dx = np.empty(_pooled(dy.shape), dtype=dy.dtype)
    _pool.neighbor_fill_backward(dy, dx, _threads(dy.size))
    return dx
