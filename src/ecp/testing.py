"""Float64 NumPy reference implementations of ecp's functional API: slow oracles, obviously right.

Each function here computes what the function of the same name in :mod:`ecp` computes, in float64,
written in a few lines of NumPy slicing and ``einsum`` and sharing no code with ecp's kernels, so
that a test (``tests/``), a benchmark's check (``bench/``, ``ecp bench``) or a user's own code can
compare ecp's results with an independent answer. They take the same arguments as ecp's functions
(without the checks: give them well-formed input) and always return float64 arrays (max pooling's
indices are int64). They are slow: use them on small shapes, or once per shape.

A convolution is a sum over the kernel taps (i, j) of a product between ``w[:, :, i, j]`` and the
padded input shifted by (i, j); Easy Convolution is the same with stride 2 and the input shifted by
mode K's offset (K // 2, K % 2).

Examples
--------
>>> import numpy as np, ecp, ecp.testing
>>> rng = np.random.default_rng(0)
>>> x = rng.standard_normal((2, 3, 8, 8)); w = rng.standard_normal((4, 3, 3, 3))
>>> bool(np.allclose(ecp.easy_conv2d(x, w, mode=1, padding=1),
...                  ecp.testing.easy_conv2d(x, w, mode=1, padding=1)))
True
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "conv2d", "conv2d_backward", "easy_conv2d", "easy_conv2d_backward",
    "easy_avg_conv2d", "easy_avg_conv2d_backward",
    "random_pool2d", "random_pool2d_backward", "max_pool2d", "max_pool2d_backward",
    "avg_pool2d", "avg_pool2d_backward", "neighbor_fill", "neighbor_fill_backward",
    "relu", "relu_backward", "numerical_grad",
]

F64 = NDArray[np.float64]


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _pair(padding):
    """(ph, pw) of an int padding (every side) or a pair (top and bottom, left and right)."""
    ph, pw = (padding, padding) if np.ndim(padding) == 0 else padding
    return int(ph), int(pw)


def _pad(x, padding):
    ph, pw = _pair(padding)
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x


def _tap(i, j, hq, wq, stride, offset):
    """Rows and columns of the padded input that tap (i, j) reads for the outputs (hq, wq)."""
    oy, ox = offset
    return (slice(oy + i, oy + i + stride * (hq - 1) + 1, stride),
            slice(ox + j, ox + j + stride * (wq - 1) + 1, stride))


def _out_hw(x_shape, w_shape, padding):
    ph, pw = _pair(padding)
    return x_shape[2] + 2 * ph - w_shape[2] + 1, x_shape[3] + 2 * pw - w_shape[3] + 1


def _correlate(x, w, b, padding, stride, offset, out_hw):
    """y[n, o, r, q] = b[o] + sum_{c,i,j} w[o, c, i, j] * xpad[n, c, oy + s*r + i, ox + s*q + j]."""
    xp, w = _pad(_f64(x), padding), _f64(w)
    hq, wq = out_hw
    y = np.zeros((xp.shape[0], w.shape[0], hq, wq))
    for i in range(w.shape[2]):
        for j in range(w.shape[3]):
            rows, cols = _tap(i, j, hq, wq, stride, offset)
            y += np.einsum("ncrq,oc->norq", xp[:, :, rows, cols], w[:, :, i, j], optimize=True)
    if b is not None:
        y += _f64(b)[None, :, None, None]
    return y


def _correlate_backward(dy, x, w, padding, stride, offset, compute_dx):
    """The adjoint of :func:`_correlate`, one tap at a time: (dx or None, dw, db)."""
    dy, xp, w = _f64(dy), _pad(_f64(x), padding), _f64(w)
    h, wd = np.shape(x)[2:]
    hq, wq = dy.shape[2:]
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for i in range(w.shape[2]):
        for j in range(w.shape[3]):
            rows, cols = _tap(i, j, hq, wq, stride, offset)
            dw[:, :, i, j] = np.einsum("norq,ncrq->oc", dy, xp[:, :, rows, cols], optimize=True)
            if compute_dx:
                dxp[:, :, rows, cols] += np.einsum("norq,oc->ncrq", dy, w[:, :, i, j], optimize=True)
    ph, pw = _pair(padding)
    dx = dxp[:, :, ph:ph + h, pw:pw + wd].copy() if compute_dx else None
    return dx, dw, dy.sum(axis=(0, 2, 3))


def conv2d(x: ArrayLike, w: ArrayLike, b: ArrayLike | None = None, *, padding: int | tuple[int, int] = 0) -> F64:
    """Reference of :func:`ecp.conv2d`: the full convolution (cross-correlation), stride 1.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
        The input.
    w : array_like, shape (O, C, kh, kw)
        The filters.
    b : array_like, shape (O,), or None
        One bias per filter.
    padding : int >= 0, or a pair (ph, pw) of them
        Zeros added on every side of the input, or ph rows on the top and bottom and pw columns on
        the left and right.

    Returns
    -------
    ndarray, float64, shape (N, O, H + 2ph - kh + 1, W + 2pw - kw + 1)
        The convolution.
    """
    return _correlate(x, w, b, padding, 1, (0, 0), _out_hw(np.shape(x), np.shape(w), padding))


def conv2d_backward(dy: ArrayLike, x: ArrayLike, w: ArrayLike, *, padding: int | tuple[int, int] = 0,
                    compute_dx: bool = True) -> tuple[F64 | None, F64, F64]:
    """Reference of :func:`ecp.conv2d_backward`.

    Parameters
    ----------
    dy : array_like, shape of ``conv2d(x, w, padding=padding)``
        The gradient with respect to the output.
    x : array_like, shape (N, C, H, W)
        The input.
    w : array_like, shape (O, C, kh, kw)
        The filters.
    padding : int >= 0, or a pair (ph, pw) of them
        As given to :func:`conv2d`.
    compute_dx : bool
        False returns None for ``dx``.

    Returns
    -------
    dx : ndarray, float64, shape (N, C, H, W), or None
        The gradient with respect to ``x``.
    dw : ndarray, float64, shape (O, C, kh, kw)
        The gradient with respect to ``w``.
    db : ndarray, float64, shape (O,)
        The gradient with respect to ``b``.
    """
    return _correlate_backward(dy, x, w, padding, 1, (0, 0), compute_dx)


def _pooled_hw(ho, wo, p, s):
    """PyTorch's pooled size (floor) of an (ho, wo) map, p x p windows of stride s."""
    return (ho - p) // s + 1, (wo - p) // s + 1


def easy_conv2d(x: ArrayLike, w: ArrayLike, b: ArrayLike | None = None, *, mode: int = 0,
                padding: int | tuple[int, int] = 0, pool_size: int = 2, pool_stride: int = 2) -> F64:
    """Reference of :func:`ecp.easy_conv2d`.

    A stride-s convolution of the input shifted by (K // p, K % p), of
    ((Ho - p) // s + 1, (Wo - p) // s + 1) outputs ((Ho // 2, Wo // 2) for 2x2 windows).

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
        The input.
    w : array_like, shape (O, C, kh, kw)
        The filters.
    b : array_like, shape (O,), or None
        One bias per filter.
    mode : int in 0..p^2-1
        The kept pixel of each p x p window, row-major.
    padding : int >= 0, or a pair (ph, pw) of them
        Zeros added on every side of the input, or ph rows on the top and bottom and pw columns on
        the left and right.
    pool_size : int, default 2
        The side p of the pooling window.
    pool_stride : int, default 2
        The stride s of the pooling window.

    Returns
    -------
    ndarray, float64, shape (N, O, (Ho - p) // s + 1, (Wo - p) // s + 1)
        The outputs of :func:`conv2d` that Random Pooling with mode K keeps.
    """
    ho, wo = _out_hw(np.shape(x), np.shape(w), padding)
    return _correlate(x, w, b, padding, pool_stride, divmod(mode, pool_size),
                      _pooled_hw(ho, wo, pool_size, pool_stride))


def easy_conv2d_backward(dy: ArrayLike, x: ArrayLike, w: ArrayLike, *, mode: int = 0,
                         padding: int | tuple[int, int] = 0, compute_dx: bool = True, pool_size: int = 2,
                         pool_stride: int = 2) -> tuple[F64 | None, F64, F64]:
    """Reference of :func:`ecp.easy_conv2d_backward`.

    Parameters
    ----------
    dy : array_like, shape of ``easy_conv2d(x, w, mode=mode, padding=padding)``
        The gradient with respect to the output.
    x : array_like, shape (N, C, H, W)
        The input.
    w : array_like, shape (O, C, kh, kw)
        The filters.
    mode : int in 0..p^2-1
        As given to :func:`easy_conv2d`.
    padding : int >= 0, or a pair (ph, pw) of them
        As given to :func:`easy_conv2d`.
    compute_dx : bool
        False returns None for ``dx``.
    pool_size : int, default 2
        The side p of the pooling window.
    pool_stride : int, default 2
        The stride s of the pooling window.

    Returns
    -------
    dx : ndarray, float64, shape (N, C, H, W), or None
        The gradient with respect to ``x``.
    dw : ndarray, float64, shape (O, C, kh, kw)
        The gradient with respect to ``w``.
    db : ndarray, float64, shape (O,)
        The gradient with respect to ``b``.
    """
    return _correlate_backward(dy, x, w, padding, pool_stride, divmod(mode, pool_size), compute_dx)


def _avg_window(y, p, s):
    """p x p / stride-s average pooling of y (PyTorch's floor size), one window offset at a time."""
    hq, wq = _pooled_hw(y.shape[2], y.shape[3], p, s)
    out = np.zeros(y.shape[:2] + (hq, wq))
    for a in range(p):
        for b in range(p):
            out += y[:, :, a:a + s * (hq - 1) + 1:s, b:b + s * (wq - 1) + 1:s]
    return out / (p * p)


def _avg_window_backward(dy, p, s, shape):
    """The adjoint of :func:`_avg_window` for a map of ``shape``."""
    dy = _f64(dy)
    hq, wq = dy.shape[2:]
    dx = np.zeros(tuple(shape))
    for a in range(p):
        for b in range(p):
            dx[:, :, a:a + s * (hq - 1) + 1:s, b:b + s * (wq - 1) + 1:s] += dy / (p * p)
    return dx


def easy_avg_conv2d(x: ArrayLike, w: ArrayLike, b: ArrayLike | None = None, *,
                    padding: int | tuple[int, int] = 0, pool_size: int = 2, pool_stride: int = 2) -> F64:
    """Reference of :func:`ecp.easy_avg_conv2d`, the slow way: the convolution, then average pooling.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
        The input.
    w : array_like, shape (O, C, kh, kw)
        The filters.
    b : array_like, shape (O,), or None
        One bias per filter.
    padding : int >= 0, or a pair (ph, pw) of them
        As given to :func:`conv2d`.
    pool_size : int, default 2
        The side p of the pooling window.
    pool_stride : int, default 2
        The stride s of the pooling window.

    Returns
    -------
    ndarray, float64, shape (N, O, (Ho - p) // s + 1, (Wo - p) // s + 1)
        ``avg_pool2d(conv2d(x, w, b, padding=padding))`` with p x p windows of stride s.
    """
    if (pool_size, pool_stride) == (2, 2):
        return avg_pool2d(conv2d(x, w, b, padding=padding))
    return _avg_window(conv2d(x, w, b, padding=padding), pool_size, pool_stride)


def easy_avg_conv2d_backward(dy: ArrayLike, x: ArrayLike, w: ArrayLike, *, padding: int | tuple[int, int] = 0,
                             compute_dx: bool = True, pool_size: int = 2, pool_stride: int = 2
                             ) -> tuple[F64 | None, F64, F64]:
    """Reference of :func:`ecp.easy_avg_conv2d_backward`: average pooling's backward, then the convolution's.

    Parameters
    ----------
    dy : array_like, shape of ``easy_avg_conv2d(x, w, padding=padding)``
        The gradient with respect to the output.
    x : array_like, shape (N, C, H, W)
        The input.
    w : array_like, shape (O, C, kh, kw)
        The filters.
    padding : int >= 0, or a pair (ph, pw) of them
        As given to :func:`easy_avg_conv2d`.
    compute_dx : bool
        False returns None for ``dx``.
    pool_size : int, default 2
        The side p of the pooling window.
    pool_stride : int, default 2
        The stride s of the pooling window.

    Returns
    -------
    dx : ndarray, float64, shape (N, C, H, W), or None
        The gradient with respect to ``x``.
    dw : ndarray, float64, shape (O, C, kh, kw)
        The gradient with respect to ``w``.
    db : ndarray, float64, shape (O,)
        The gradient with respect to ``b``.
    """
    ho, wo = _out_hw(np.shape(x), np.shape(w), padding)
    shape = (np.shape(dy)[0], np.shape(dy)[1], ho, wo)
    if (pool_size, pool_stride) == (2, 2):
        dfull = avg_pool2d_backward(dy, shape)
    else:
        dfull = _avg_window_backward(dy, pool_size, pool_stride, shape)
    return conv2d_backward(dfull, x, w, padding=padding, compute_dx=compute_dx)


def _windows(x):
    """(N, C, H//2, W//2, 4): the four pixels of each 2x2 window, row-major."""
    n, c, h, w = x.shape
    hq, wq = h // 2, w // 2
    v = x[:, :, :2 * hq, :2 * wq].reshape(n, c, hq, 2, wq, 2)
    return v.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, hq, wq, 4)


def random_pool2d(x: ArrayLike, mode: int = 0, *, pool_size: int = 2, pool_stride: int = 2) -> F64:
    """Reference of :func:`ecp.random_pool2d`: the pixel at position K of every p x p window.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
        The input.
    mode : int in 0..p^2-1
        The kept pixel, row-major.
    pool_size : int, default 2
        The side p of the pooling window.
    pool_stride : int, default 2
        The stride s of the pooling window.

    Returns
    -------
    ndarray, float64, shape (N, C, (H - p) // s + 1, (W - p) // s + 1)
        ``x[:, :, K//p::s, K%p::s]``, cropped.
    """
    x = _f64(x)
    p, s = pool_size, pool_stride
    hq, wq = _pooled_hw(x.shape[2], x.shape[3], p, s)
    return x[:, :, mode // p::s, mode % p::s][:, :, :hq, :wq].copy()


def random_pool2d_backward(dy: ArrayLike, mode: int, input_shape: Sequence[int], *, pool_size: int = 2,
                           pool_stride: int = 2) -> F64:
    """Reference of :func:`ecp.random_pool2d_backward`: ``dy`` at the mode-K positions, zeros elsewhere.

    Parameters
    ----------
    dy : array_like, shape (N, C, H // 2, W // 2)
        The gradient with respect to the output.
    mode : int in 0..p^2-1
        As given to :func:`random_pool2d`.
    input_shape : tuple of 4 ints
        (N, C, H, W) of the pooled input.
    pool_size : int, default 2
        The side p of the pooling window.
    pool_stride : int, default 2
        The stride s of the pooling window.

    Returns
    -------
    ndarray, float64, shape ``input_shape``
        The gradient with respect to the input.
    """
    dy = _f64(dy)
    dx = np.zeros(tuple(input_shape))
    hq, wq = dy.shape[2:]
    p, s = pool_size, pool_stride
    oy, ox = divmod(mode, p)
    dx[:, :, oy:oy + s * (hq - 1) + 1:s, ox:ox + s * (wq - 1) + 1:s] = dy
    return dx


def max_pool2d(x: ArrayLike, return_indices: bool = False) -> F64 | tuple[F64, NDArray[np.int64]]:
    """Reference of :func:`ecp.max_pool2d`.

    The first maximum of each 2x2 window, row-major (a NaN is a maximum, as ``np.argmax`` has it).

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
        The input.
    return_indices : bool
        Also return the flat index ``h * W + w`` of each maximum within its plane.

    Returns
    -------
    y : ndarray, float64, shape (N, C, H // 2, W // 2)
        The maxima.
    indices : ndarray, int64, same shape
        Only when ``return_indices``.
    """
    x = _f64(x)
    win = _windows(x)
    k = np.argmax(win, axis=-1)
    values = np.take_along_axis(win, k[..., None], axis=-1)[..., 0]
    if not return_indices:
        return values
    r = np.arange(win.shape[2])[:, None]
    q = np.arange(win.shape[3])[None, :]
    return values, ((2 * r + k // 2) * x.shape[3] + 2 * q + k % 2).astype(np.int64)


def max_pool2d_backward(dy: ArrayLike, indices: ArrayLike, input_shape: Sequence[int]) -> F64:
    """Reference of :func:`ecp.max_pool2d_backward`: each ``dy`` added at its maximum's position.

    Parameters
    ----------
    dy : array_like, shape (N, C, H // 2, W // 2)
        The gradient with respect to the output.
    indices : array_like of int, same shape
        From ``max_pool2d(x, return_indices=True)``.
    input_shape : tuple of 4 ints
        (N, C, H, W) of the pooled input.

    Returns
    -------
    ndarray, float64, shape ``input_shape``
        The gradient with respect to the input.
    """
    n, c, h, w = input_shape
    dy, indices = _f64(dy), np.asarray(indices)
    dx = np.zeros((n, c, h * w))
    for i in range(n):
        for j in range(c):
            np.add.at(dx[i, j], indices[i, j].ravel(), dy[i, j].ravel())
    return dx.reshape(n, c, h, w)


def avg_pool2d(x: ArrayLike) -> F64:
    """Reference of :func:`ecp.avg_pool2d`: the mean of each 2x2 window.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
        The input.

    Returns
    -------
    ndarray, float64, shape (N, C, H // 2, W // 2)
        The means.
    """
    return _windows(_f64(x)).mean(axis=-1)


def avg_pool2d_backward(dy: ArrayLike, input_shape: Sequence[int]) -> F64:
    """Reference of :func:`ecp.avg_pool2d_backward`: ``dy / 4`` in every cell of its window.

    Parameters
    ----------
    dy : array_like, shape (N, C, H // 2, W // 2)
        The gradient with respect to the output.
    input_shape : tuple of 4 ints
        (N, C, H, W) of the pooled input.

    Returns
    -------
    ndarray, float64, shape ``input_shape``
        The gradient with respect to the input.
    """
    dy = _f64(dy)
    dx = np.zeros(tuple(input_shape))
    hq, wq = dy.shape[2:]
    for di in range(2):
        for dj in range(2):
            dx[:, :, di:2 * hq:2, dj:2 * wq:2] = dy / 4
    return dx


def neighbor_fill(y: ArrayLike, *, shape: Sequence[int] | None = None) -> F64:
    """Reference of :func:`ecp.neighbor_fill`.

    Each value is copied into its 2x2 window; an odd last row (column) repeats the row above
    (column to the left).

    Parameters
    ----------
    y : array_like, shape (N, C, Hq, Wq)
        The pooled map.
    shape : (H, W) or None
        The full size; None means (2 * Hq, 2 * Wq).

    Returns
    -------
    ndarray, float64, shape (N, C, H, W)
        The filled map.
    """
    out = _f64(y).repeat(2, axis=2).repeat(2, axis=3)
    h, w = tuple(shape) if shape is not None else out.shape[2:]
    if h > out.shape[2]:
        out = np.concatenate([out, out[:, :, -1:]], axis=2)
    if w > out.shape[3]:
        out = np.concatenate([out, out[:, :, :, -1:]], axis=3)
    return out


def neighbor_fill_backward(dy: ArrayLike) -> F64:
    """Reference of :func:`ecp.neighbor_fill_backward`.

    Each pooled cell sums ``dy`` over the cells it was copied to.

    Parameters
    ----------
    dy : array_like, shape (N, C, H, W)
        The gradient with respect to the filled map.

    Returns
    -------
    ndarray, float64, shape (N, C, H // 2, W // 2)
        The gradient with respect to the pooled map.
    """
    d = np.array(dy, np.float64)
    n, c, h, w = d.shape
    if h % 2:
        d[:, :, h - 2] += d[:, :, h - 1]
        d = d[:, :, :h - 1]
    if w % 2:
        d[:, :, :, w - 2] += d[:, :, :, w - 1]
        d = d[:, :, :, :w - 1]
    return d.reshape(n, c, h // 2, 2, w // 2, 2).sum(axis=(3, 5))


def relu(x: ArrayLike) -> F64:
    """Reference of :func:`ecp.relu`: ``np.maximum(x, 0)`` (NaN stays NaN, -0.0 becomes 0.0).

    Parameters
    ----------
    x : array_like, any shape
        The input.

    Returns
    -------
    ndarray, float64, shape of ``x``
        The rectified input.
    """
    return np.maximum(_f64(x), 0.0)


def relu_backward(dy: ArrayLike, y: ArrayLike) -> F64:
    """Reference of :func:`ecp.relu_backward`: ``dy * (y > 0)``.

    Parameters
    ----------
    dy : array_like
        The gradient with respect to the output.
    y : array_like, shape of ``dy``
        The forward's output (or input).

    Returns
    -------
    ndarray, float64, shape of ``dy``
        The gradient with respect to the input.
    """
    return _f64(dy) * (_f64(y) > 0)


def numerical_grad(loss: Callable[[], float], arr: np.ndarray, *, eps: float = 1e-6,
                   indices: Sequence[int] | None = None) -> F64:
    """Differentiate ``loss()`` with respect to ``arr`` by central differences.

    For checking a backward pass.

    ``loss`` reads ``arr``, which is perturbed in place (and restored). Runs ecp's kernels on one
    thread (``ecp.num_threads(1)``): thousands of tiny calls, where a parallel region costs more
    than the work.

    Parameters
    ----------
    loss : callable
        Returns the scalar loss, reading ``arr``.
    arr : ndarray
        The array to differentiate against; float64 for a meaningful answer. It must own its
        memory in a layout ``reshape(-1)`` views (e.g. C-contiguous).
    eps : float
        The step.
    indices : sequence of int or None
        Flat positions to differentiate at; None: every entry.

    Returns
    -------
    ndarray, float64
        The gradient (shape of ``arr``), or its entries at ``indices``.

    Raises
    ------
    ValueError
        If ``arr`` cannot be perturbed in place through a flat view.
    """
    from . import num_threads

    flat = arr.reshape(-1)
    if not np.shares_memory(flat, arr):
        raise ValueError("arr must be an array whose reshape(-1) is a view (e.g. C-contiguous), "
                         f"got one with strides {arr.strides}")
    positions = range(flat.size) if indices is None else indices
    out = np.empty(len(positions))
    with num_threads(1):
        for j, k in enumerate(positions):
            old = flat[k]
            flat[k] = old + eps
            plus = loss()
            flat[k] = old - eps
            minus = loss()
            flat[k] = old
            out[j] = (plus - minus) / (2 * eps)
    return out.reshape(arr.shape) if indices is None else out
