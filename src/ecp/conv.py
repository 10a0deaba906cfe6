"""Full convolution and Easy Convolution (mode K), forward and backward.

The public entry points of the kernels in ``ecp/_kernels/``: arguments are checked here and in
:mod:`ecp._plans` (errors name the argument), the kernel is chosen by :mod:`ecp._dispatch`.
Layout is NCHW; the convolution is a cross-correlation (no kernel flip, as in every deep-learning
library), stride 1, with optional zero padding: an int (every side) or a pair (ph, pw), ph rows
on the top and bottom and pw columns on the left and right, as PyTorch's ``F.conv2d``.

Easy average pooling (:func:`easy_avg_conv2d`) is 2x2 average pooling of the convolution, computed
as one stride-2 convolution with the (kh+1) x (kw+1) kernel ``w`` full-convolved with the 2x2 box
(divided by 4): exact, at about (k / (k+1))^2 x 4 less work than the convolution then the pooling.

Mode K picks one pixel of every 2x2 pooling window, row-major:
``0`` top-left, ``1`` top-right, ``2`` bottom-left, ``3`` bottom-right, i.e. the kept pixel
is at row offset ``K // 2`` and column offset ``K % 2``. Other windows (``pool_size`` p up to 4,
``pool_stride`` s in 1..p) take modes 0..p^2-1, the kept pixel at (K // p, K % p); their output
is PyTorch's pooled size, ((Ho - p) // s + 1, (Wo - p) // s + 1). Offsets of a window larger than
its stride, and strides 3 and 4, run on im2col + BLAS only (``ecp._dispatch.direct_grid``); strides
3 and 4 have an im2col / col2im of their own (``ecp_im2col.h``), so they compute only the outputs
the window keeps.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._kernels import _conv
from ._plans import avg_backward as _avg_backward
from ._plans import avg_forward as _avg_forward
from ._plans import backward as _backward
from ._plans import forward as _forward
from ._plans import int_arg as _int
from ._validation import (
    check_conv_geometry,
    check_dims,
    check_padding,
    check_shape,
    check_window,
    check_window_mode,
    conv_output_shape,
    old_positional,
    public_signature,
)

__all__ = ["conv2d", "conv2d_backward", "easy_conv2d", "easy_conv2d_backward", "easy_avg_conv2d",
           "easy_avg_conv2d_backward", "conv2d_output_shape", "clear_scratch"]

# The default pool_size and pool_stride, compared by identity on the hot path: CPython keeps one
# object for each small int, so an int 2 passes at the cost of two pointer compares; anything else
# (a numpy 2, 2.0, True) takes the full checks.
_TWO = 2


def _mode(mode, pool_size, pool_stride):
    """The plans' mode of an easy call other than the 2x2 window of stride 2 (which its callers
    check inline): (K, p, s), K if (p, s) turns out (2, 2), or the error naming ``mode``,
    ``pool_size`` or ``pool_stride``."""
    k, p, s = check_window_mode(mode, pool_size, pool_stride)
    return k if (p, s) == (2, 2) else (k, p, s)


def clear_scratch() -> None:
    """Release the scratch buffers the convolution kernels keep for the calling thread.

    Each Python thread keeps the kernels' scratch (unrolled windows, packed panels, per-slot dW
    sums) between calls, sized by the largest call so far, so that a steady training loop
    allocates nothing. This frees it; the next call allocates it again.
    """
    _conv.clear_scratch()


def conv2d_output_shape(x_shape: Sequence[int], w_shape: Sequence[int],
                        padding: int | tuple[int, int] = 0) -> tuple[int, ...]:
    """The shape :func:`conv2d` returns for these input shapes, checked as :func:`conv2d` checks them.

    Parameters
    ----------
    x_shape : tuple of 4 ints
        (N, C, H, W) of the input.
    w_shape : tuple of 4 ints
        (O, C, kh, kw) of the filters.
    padding : int >= 0, or a pair (ph, pw) of them
        Zeros added on every side of the input, or ph rows on the top and bottom and pw columns
        on the left and right.

    Returns
    -------
    tuple of 4 ints
        (N, O, H + 2ph - kh + 1, W + 2pw - kw + 1).

    Raises
    ------
    TypeError
        If ``padding`` (or an element of it) or a size is not an integer.
    ValueError
        If the shapes do not make a convolution (channels differ, the kernel is larger than the
        padded input, ...), naming the argument.

    Examples
    --------
    >>> import ecp
    >>> ecp.conv2d_output_shape((8, 3, 32, 32), (16, 3, 3, 3), padding=1)
    (8, 16, 32, 32)
    >>> ecp.conv2d_output_shape((8, 3, 32, 32), (16, 3, 3, 5), padding=(1, 2))
    (8, 16, 32, 32)
    """
    x_shape = check_shape(x_shape, "x_shape", 4, "(N, C, H, W)")
    w_shape = check_shape(w_shape, "w_shape", 4, "(O, C, kh, kw)")
    check_dims(x_shape, "x")
    check_dims(w_shape, "w")
    padding = check_padding(padding)
    check_conv_geometry(x_shape, w_shape, padding)
    return conv_output_shape(x_shape, w_shape, padding)


@public_signature
def conv2d(x: ArrayLike, w: ArrayLike, b: ArrayLike | None = None, *args,
           padding: int | tuple[int, int] = 0) -> NDArray[np.floating]:
    """Full 2-D convolution (cross-correlation), stride 1.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W), float32 or float64
        The input.
    w : array_like, shape (O, C, kh, kw), same dtype as ``x``
        The filters.
    b : array_like, shape (O,), or None
        One bias per filter; None adds none.
    padding : int >= 0, or a pair (ph, pw) of them
        Zeros added on every side of the input, or ph rows on the top and bottom and pw columns
        on the left and right (keyword only).

    Returns
    -------
    ndarray, shape (N, O, H + 2ph - kh + 1, W + 2pw - kw + 1), dtype of ``x``
        The convolution.

    Raises
    ------
    TypeError
        If an array is not float32 / float64, the dtypes differ, or ``padding`` is not an integer
        or a pair of them.
    ValueError
        If the shapes do not make a convolution, or ``padding`` is negative or a sequence of
        another length than 2; the message names the argument.

    Examples
    --------
    >>> import numpy as np, ecp
    >>> x = np.ones((1, 1, 4, 4), np.float32); w = np.ones((2, 1, 3, 3), np.float32)
    >>> ecp.conv2d(x, w).shape
    (1, 2, 2, 2)
    >>> float(ecp.conv2d(x, w, padding=1)[0, 0, 0, 0])
    4.0
    >>> ecp.conv2d(x, w, padding=(0, 1)).shape
    (1, 2, 2, 4)
    """
    if args:
        (padding,) = old_positional("conv2d", "x, w, b", args, {"padding": padding}, {"padding": 0})
    return _forward(x, w, b, padding, None)[0]


@public_signature
def conv2d_backward(dy: ArrayLike, x: ArrayLike, w: ArrayLike, *args, padding: int | tuple[int, int] = 0,
                    compute_dx: bool = True
                    ) -> tuple[NDArray[np.floating] | None, NDArray[np.floating], NDArray[np.floating]]:
    """Gradients of :func:`conv2d` with respect to ``x``, ``w`` and ``b``.

    Parameters
    ----------
    dy : array_like, shape of ``conv2d(x, w, padding=padding)``, dtype of ``x``
        The gradient of the loss with respect to the output.
    x : array_like, shape (N, C, H, W)
        The input given to :func:`conv2d`.
    w : array_like, shape (O, C, kh, kw)
        The filters given to :func:`conv2d`.
    padding : int >= 0, or a pair (ph, pw) of them
        As given to :func:`conv2d` (keyword only).
    compute_dx : bool, default True
        False skips the input gradient (a network's first layer needs none); ``dx`` is then None
        (keyword only).

    Returns
    -------
    dx : ndarray, shape (N, C, H, W), or None
        The gradient with respect to ``x``.
    dw : ndarray, shape (O, C, kh, kw)
        The gradient with respect to ``w``.
    db : ndarray, shape (O,)
        The gradient with respect to ``b``.

    Raises
    ------
    TypeError
        As :func:`conv2d`, also for ``dy``.
    ValueError
        As :func:`conv2d`, or when ``dy`` does not have the output's shape.

    Examples
    --------
    >>> import numpy as np, ecp
    >>> x = np.ones((1, 1, 4, 4)); w = np.ones((1, 1, 3, 3))
    >>> dx, dw, db = ecp.conv2d_backward(np.ones((1, 1, 2, 2)), x, w)
    >>> dx.shape, dw.shape, float(db[0])
    ((1, 1, 4, 4), (1, 1, 3, 3), 4.0)
    """
    if args:
        padding, compute_dx = old_positional("conv2d_backward", "dy, x, w", args,
                                             {"padding": padding, "compute_dx": compute_dx},
                                             {"padding": 0, "compute_dx": True})
    return _backward(dy, x, w, padding, None, compute_dx)[0]


@public_signature
def easy_conv2d(x: ArrayLike, w: ArrayLike, b: ArrayLike | None = None, *args, mode: int = 0,
                padding: int | tuple[int, int] = 0, pool_size: int = 2, pool_stride: int = 2
                ) -> NDArray[np.floating]:
    """Easy Convolution: only the outputs of :func:`conv2d` that Random Pooling with mode K keeps.

    Equal to ``conv2d(x, w, b, padding=padding)[:, :, K//2::2, K%2::2]`` cropped to (Ho//2, Wo//2),
    and to a stride-2 convolution of the input shifted by (K//2, K%2), but computing a quarter of
    the outputs and never allocating the full-size map.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W), float32 or float64
        The input.
    w : array_like, shape (O, C, kh, kw), same dtype
        The filters.
    b : array_like, shape (O,), or None
        One bias per filter; None adds none.
    mode : int in 0..p^2-1
        Pixel kept in each p x p window, row-major, at (K // p, K % p); for 2x2: 0 top-left,
        1 top-right, 2 bottom-left, 3 bottom-right (keyword only).
    padding : int >= 0, or a pair (ph, pw) of them
        Zeros added on every side of the input, or ph rows on the top and bottom and pw columns
        on the left and right (keyword only).
    pool_size : int in 1..4, default 2
        The side p of the pooling window (keyword only).
    pool_stride : int in 1..pool_size, default 2
        The stride s of the pooling window (keyword only).

    Returns
    -------
    ndarray, shape (N, O, (Ho - p) // s + 1, (Wo - p) // s + 1)
        With (Ho, Wo) the output size of :func:`conv2d` ((Ho // 2, Wo // 2) for the 2x2 window);
        dtype of ``x``.

    Raises
    ------
    TypeError
        As :func:`conv2d`, also for a ``mode``, ``pool_size`` or ``pool_stride`` that is not an
        integer.
    ValueError
        As :func:`conv2d`, for a ``mode`` outside 0..p^2-1, a ``pool_size`` outside 1..4, a
        ``pool_stride`` outside 1..p, or a full output smaller than the window.

    Examples
    --------
    >>> import numpy as np, ecp
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((2, 3, 9, 9)); w = rng.standard_normal((4, 3, 3, 3))
    >>> y = ecp.easy_conv2d(x, w, mode=3)
    >>> y.shape
    (2, 4, 3, 3)
    >>> bool(np.allclose(y, ecp.conv2d(x, w)[:, :, 1::2, 1::2][:, :, :3, :3]))
    True
    >>> ecp.easy_conv2d(x, w, mode=4, pool_size=3, pool_stride=2).shape
    (2, 4, 3, 3)
    """
    if args:
        mode, padding = old_positional("easy_conv2d", "x, w, b", args, {"mode": mode, "padding": padding},
                                       {"mode": 0, "padding": 0})
    if pool_size is _TWO and pool_stride is _TWO:   # the 2x2 window (else checked in full)
        return _forward(x, w, b, padding, _int(mode, "mode", 0, 3))[0]
    return _forward(x, w, b, padding, _mode(mode, pool_size, pool_stride))[0]


@public_signature
def easy_conv2d_backward(dy: ArrayLike, x: ArrayLike, w: ArrayLike, *args, mode: int = 0,
                         padding: int | tuple[int, int] = 0,
                         compute_dx: bool = True, pool_size: int = 2, pool_stride: int = 2
                         ) -> tuple[NDArray[np.floating] | None, NDArray[np.floating], NDArray[np.floating]]:
    """Gradients of :func:`easy_conv2d` with respect to ``x``, ``w`` and ``b``.

    Equal to :func:`conv2d_backward` of ``dy`` scattered to the mode-K positions of the full
    output (zeros elsewhere), computed without the full-size gradient.

    Parameters
    ----------
    dy : array_like, shape of ``easy_conv2d(x, w, mode=mode, padding=padding)``
        The gradient of the loss with respect to the output.
    x : array_like, shape (N, C, H, W)
        The input given to :func:`easy_conv2d`.
    w : array_like, shape (O, C, kh, kw)
        The filters given to :func:`easy_conv2d`.
    mode : int in 0..p^2-1
        As given to :func:`easy_conv2d` (keyword only).
    padding : int >= 0, or a pair (ph, pw) of them
        As given to :func:`easy_conv2d` (keyword only).
    compute_dx : bool, default True
        False skips the input gradient; ``dx`` is then None (keyword only).
    pool_size : int in 1..4, default 2
        As given to :func:`easy_conv2d` (keyword only).
    pool_stride : int in 1..pool_size, default 2
        As given to :func:`easy_conv2d` (keyword only).

    Returns
    -------
    dx : ndarray, shape (N, C, H, W), or None
        The gradient with respect to ``x``.
    dw : ndarray, shape (O, C, kh, kw)
        The gradient with respect to ``w``.
    db : ndarray, shape (O,)
        The gradient with respect to ``b``.

    Raises
    ------
    TypeError
        As :func:`easy_conv2d`, also for ``dy``.
    ValueError
        As :func:`easy_conv2d`, or when ``dy`` does not have the output's shape.

    Examples
    --------
    >>> import numpy as np, ecp
    >>> x = np.ones((1, 1, 6, 6)); w = np.ones((1, 1, 3, 3))
    >>> dx, dw, db = ecp.easy_conv2d_backward(np.ones((1, 1, 2, 2)), x, w, mode=1)
    >>> float(db[0]), dw.shape
    (4.0, (1, 1, 3, 3))
    """
    if args:
        mode, padding, compute_dx = old_positional(
            "easy_conv2d_backward", "dy, x, w", args, {"mode": mode, "padding": padding, "compute_dx": compute_dx},
            {"mode": 0, "padding": 0, "compute_dx": True})
    if pool_size is _TWO and pool_stride is _TWO:   # the 2x2 window (else checked in full)
        return _backward(dy, x, w, padding, _int(mode, "mode", 0, 3), compute_dx)[0]
    return _backward(dy, x, w, padding, _mode(mode, pool_size, pool_stride), compute_dx)[0]


def easy_avg_conv2d(x: ArrayLike, w: ArrayLike, b: ArrayLike | None = None, *,
                    padding: int | tuple[int, int] = 0, pool_size: int = 2, pool_stride: int = 2
                    ) -> NDArray[np.floating]:
    """Easy average pooling: 2x2 average pooling of :func:`conv2d`, without the full-size map.

    Equal to ``avg_pool2d(conv2d(x, w, b, padding=padding))`` within float rounding, computed as
    one stride-2 convolution of ``x`` with the (kh+1, kw+1) kernel ``w'`` (``w`` full-convolved
    with the 2x2 box, divided by 4), the same bias and padding: 4 k^2 / (k+1)^2 times fewer
    multiply-adds than the convolution then the pooling (2.78 for 5x5 kernels, 2.25 for 3x3).

    Parameters
    ----------
    x : array_like, shape (N, C, H, W), float32 or float64
        The input.
    w : array_like, shape (O, C, kh, kw), same dtype
        The filters.
    b : array_like, shape (O,), or None
        One bias per filter; None adds none.
    padding : int >= 0, or a pair (ph, pw) of them
        Zeros added on every side of the input, or ph rows on the top and bottom and pw columns
        on the left and right (keyword only).
    pool_size : int in 1..4, default 2
        The side p of the averaging window: the kernel is widened to (kh + p - 1, kw + p - 1)
        with the p x p box / p^2 (keyword only).
    pool_stride : int in 1..pool_size, default 2
        The stride s of the averaging window (keyword only).

    Returns
    -------
    ndarray, shape (N, O, (Ho - p) // s + 1, (Wo - p) // s + 1)
        With (Ho, Wo) the output size of :func:`conv2d`: (Ho // 2, Wo // 2) for the 2x2 window (an
        odd last row or column is dropped, as :func:`ecp.avg_pool2d` drops it); dtype of ``x``.

    Raises
    ------
    TypeError
        As :func:`conv2d`, also for a ``pool_size`` or ``pool_stride`` that is not an integer.
    ValueError
        As :func:`conv2d`, for a ``pool_size`` outside 1..4, a ``pool_stride`` outside 1..p, or a
        full output smaller than the window.

    Examples
    --------
    >>> import numpy as np, ecp
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((2, 3, 9, 9)); w = rng.standard_normal((4, 3, 3, 3))
    >>> y = ecp.easy_avg_conv2d(x, w, padding=1)
    >>> y.shape
    (2, 4, 4, 4)
    >>> bool(np.allclose(y, ecp.avg_pool2d(ecp.conv2d(x, w, padding=1))))
    True
    >>> ecp.easy_avg_conv2d(x, w, padding=1, pool_size=3, pool_stride=2).shape
    (2, 4, 4, 4)
    """
    if pool_size is _TWO and pool_stride is _TWO:   # the 2x2 window (else checked in full)
        return _avg_forward(x, w, b, padding)[0]
    return _avg_forward(x, w, b, padding, window=check_window(pool_size, pool_stride))[0]


def easy_avg_conv2d_backward(dy: ArrayLike, x: ArrayLike, w: ArrayLike, *, padding: int | tuple[int, int] = 0,
                             compute_dx: bool = True, pool_size: int = 2, pool_stride: int = 2
                             ) -> tuple[NDArray[np.floating] | None, NDArray[np.floating], NDArray[np.floating]]:
    """Gradients of :func:`easy_avg_conv2d` with respect to ``x``, ``w`` and ``b``.

    Equal to :func:`conv2d_backward` of ``avg_pool2d_backward(dy)``, computed as the backward of
    the stride-2 convolution with the widened kernel; dW of the widened kernel is folded back by
    the box's adjoint, ``dw[i, j] = (dw'[i, j] + dw'[i+1, j] + dw'[i, j+1] + dw'[i+1, j+1]) / 4``.

    Parameters
    ----------
    dy : array_like, shape of ``easy_avg_conv2d(x, w, padding=padding)``
        The gradient of the loss with respect to the output.
    x : array_like, shape (N, C, H, W)
        The input given to :func:`easy_avg_conv2d`.
    w : array_like, shape (O, C, kh, kw)
        The filters given to :func:`easy_avg_conv2d`.
    padding : int >= 0, or a pair (ph, pw) of them
        As given to :func:`easy_avg_conv2d` (keyword only).
    compute_dx : bool, default True
        False skips the input gradient; ``dx`` is then None (keyword only).
    pool_size : int in 1..4, default 2
        As given to :func:`easy_avg_conv2d` (keyword only).
    pool_stride : int in 1..pool_size, default 2
        As given to :func:`easy_avg_conv2d` (keyword only).

    Returns
    -------
    dx : ndarray, shape (N, C, H, W), or None
        The gradient with respect to ``x``.
    dw : ndarray, shape (O, C, kh, kw)
        The gradient with respect to ``w``.
    db : ndarray, shape (O,)
        The gradient with respect to ``b``.

    Raises
    ------
    TypeError
        As :func:`easy_avg_conv2d`, also for ``dy``.
    ValueError
        As :func:`easy_avg_conv2d`, or when ``dy`` does not have the output's shape.

    Examples
    --------
    >>> import numpy as np, ecp
    >>> x = np.ones((1, 1, 6, 6)); w = np.ones((1, 1, 3, 3))
    >>> dx, dw, db = ecp.easy_avg_conv2d_backward(np.ones((1, 1, 2, 2)), x, w)
    >>> float(db[0]), float(dw[0, 0, 0, 0])
    (4.0, 4.0)
    """
    if pool_size is _TWO and pool_stride is _TWO:   # the 2x2 window (else checked in full)
        return _avg_backward(dy, x, w, padding, compute_dx)[0]
    return _avg_backward(dy, x, w, padding, compute_dx, window=check_window(pool_size, pool_stride))[0]
