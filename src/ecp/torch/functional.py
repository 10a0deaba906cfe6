"""EasyConvPooling's ops on tensors, differentiable: easy convolution and pooling, neighbor fill.

:func:`easy_conv2d`, :func:`easy_avg_conv2d`, :func:`random_pool2d`, :func:`neighbor_fill`.

The arguments are checked here (errors name the argument, as the NumPy API's do); then a CPU
float32 / float64 call runs on ecp's kernels (the custom ops ``torch.ops.ecp.*``), any other
dtype or device (and any call under autocast) on the same maths in plain PyTorch ops.

Mode K is the kept pixel of each 2x2 window, row-major: 0 top-left, 1 top-right, 2 bottom-left,
3 bottom-right. Other windows (``pool_size`` p in 1..4, ``pool_stride`` s in 1..p) take modes
0..p^2-1, the kept pixel at (K // p, K % p), and give PyTorch's pooled sizes (floor).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .._validation import check_int, check_window_mode
from . import _ops, _stride2

__all__ = ["easy_conv2d", "easy_avg_conv2d", "random_pool2d", "neighbor_fill"]

_KERNEL_DTYPES = (torch.float32, torch.float64)


def _check_tensor(value, name, dims):
    ndim = len([d for d in dims.strip("()").split(",") if d.strip()])
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor {dims}, got {type(value).__name__}")
    if value.dim() != ndim:
        raise ValueError(f"{name} must be a {ndim}-D {dims} tensor, got shape {tuple(value.shape)}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype (float32, float64, bfloat16, float16), "
                        f"got {value.dtype}")


def _check_like(value, name, input):
    """``value`` on ``input``'s device and (outside autocast) of its dtype."""
    if value.device != input.device:
        raise ValueError(f"{name} must be on the device of input ({input.device}), got {value.device}")
    if value.dtype != input.dtype and not torch.is_autocast_enabled(input.device.type):
        raise TypeError(f"{name} must have the same dtype as input ({input.dtype}), got {value.dtype}")


def _pair(value, name):
    """An int >= 0, or a pair of them, as a pair."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an integer >= 0 or a pair (ph, pw) of them, got {value!r}")
        return check_int(value[0], f"{name}[0]", 0), check_int(value[1], f"{name}[1]", 0)
    value = check_int(value, name, 0)
    return value, value


def _on_kernels(input):
    """Whether a call on ``input`` runs on ecp's kernels (else on plain PyTorch ops)."""
    return input.device.type == "cpu" and input.dtype in _KERNEL_DTYPES and not torch.is_autocast_enabled("cpu")


_PLAIN = (Tensor, torch.nn.Parameter)


def _eager(*tensors):
    """Whether a kernel call may skip the custom op: plain tensors (or parameters), not under tracing or
    compiling (a fake or functional tensor, or any other subclass, takes the custom op)."""
    return (not torch.compiler.is_compiling()
            and all(t is None or type(t) in _PLAIN for t in tensors))


def _check_conv(input, weight, bias, mode, padding, pool_size=2, pool_stride=2):
    """The checked (K, ph, pw, p, s) of an easy_conv2d call, or the error naming the argument."""
    _check_tensor(input, "input", "(N, C, H, W)")
    _check_tensor(weight, "weight", "(O, C, kh, kw)")
    _check_like(weight, "weight", input)
    if bias is not None:
        _check_tensor(bias, "bias", "(O,)")
        _check_like(bias, "bias", input)
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(f"bias must have shape ({weight.shape[0]},) (one bias per filter of weight), "
                             f"got {tuple(bias.shape)}")
    mode, p, s = check_window_mode(mode, pool_size, pool_stride)
    ph, pw = _pair(padding, "padding")
    n, c, h, w = input.shape
    o, wc, kh, kw = weight.shape
    if wc != c:
        raise ValueError(f"weight has {wc} input channels (weight.shape[1]) but input has {c} (input.shape[1]); "
                         f"they must match: input {tuple(input.shape)}, weight {tuple(weight.shape)}")
    if c == 0 or o == 0 or kh == 0 or kw == 0 or h == 0 or w == 0:
        raise ValueError(f"input and weight need at least one channel, filter, row and column, got "
                         f"input {tuple(input.shape)}, weight {tuple(weight.shape)}")
    ho, wo = h + 2 * ph - kh + 1, w + 2 * pw - kw + 1
    if ho < p or wo < p:
        raise ValueError(f"the convolution output {ho}x{wo} (input.shape[2:] {(h, w)}, kernel {kh}x{kw}, "
                         f"padding={(ph, pw)}) is too small to pool with a {p}x{p} window: Easy Convolution needs "
                         f"an output of at least {p}x{p} (pool_size={p})")
    return mode, ph, pw, p, s


def easy_conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, mode: int = 0,
                padding: int | tuple[int, int] = 0, *, pool_size: int = 2, pool_stride: int = 2) -> Tensor:
    """Easy Convolution: the outputs of a stride-1 convolution that Random Pooling with mode K keeps.

    Equal to ``F.conv2d(input, weight, bias, padding=padding)[:, :, K//2::2, K%2::2]`` cropped to
    (Ho//2, Wo//2), computing only those outputs. Differentiable in ``input``, ``weight`` and
    ``bias``.

    Parameters
    ----------
    input : Tensor, shape (N, C, H, W)
        The input, of a floating-point dtype.
    weight : Tensor, shape (O, C, kh, kw)
        The filters, on the device and of the dtype of ``input``.
    bias : Tensor, shape (O,), or None
        One bias per filter; None adds none.
    mode : int in 0..p^2-1
        Pixel kept in each p x p window, row-major, at (K // p, K % p); for 2x2: 0 top-left,
        1 top-right, 2 bottom-left, 3 bottom-right.
    padding : int >= 0 or pair (ph, pw)
        Zeros added above and below (ph), left and right (pw) of the input.
    pool_size : int in 1..4, default 2
        The side p of the pooling window (keyword only).
    pool_stride : int in 1..pool_size, default 2
        The stride s of the pooling window (keyword only).

    Returns
    -------
    Tensor, shape (N, O, (Ho - p) // s + 1, (Wo - p) // s + 1)
        With (Ho, Wo) = (H + 2ph - kh + 1, W + 2pw - kw + 1) ((Ho // 2, Wo // 2) for the 2x2
        window); dtype and device of ``input``.

    Raises
    ------
    TypeError
        If an argument is not a tensor, not floating-point, the dtypes differ, or ``mode`` /
        ``padding`` / ``pool_size`` / ``pool_stride`` is not an integer.
    ValueError
        If a tensor has the wrong rank, the devices differ, the shapes do not make a convolution
        with an output of at least p x p, ``mode`` is outside 0..p^2-1, ``pool_size`` outside
        1..4, ``pool_stride`` outside 1..p or ``padding`` negative.

    Examples
    --------
    >>> import torch, torch.nn.functional as F, ecp.torch
    >>> x = torch.randn(2, 3, 9, 9); w = torch.randn(4, 3, 3, 3)
    >>> y = ecp.torch.easy_conv2d(x, w, mode=3, padding=1)
    >>> y.shape
    torch.Size([2, 4, 4, 4])
    >>> torch.allclose(y, F.conv2d(x, w, padding=1)[:, :, 1::2, 1::2][:, :, :4, :4], atol=1e-5)
    True
    """
    mode, ph, pw, p, s = _check_conv(input, weight, bias, mode, padding, pool_size, pool_stride)
    window = () if p == 2 and s == 2 else (p, s)   # the 2x2 window: the ops' calls of before
    if _on_kernels(input) and (ph == pw or _ops.KERNELS_TAKE_PADDING_PAIRS):
        if _eager(input, weight, bias):
            return _ops.EagerEasyConv2d.apply(input, weight, bias, mode, ph, pw, *window)
        return _ops.easy_conv2d(input, weight, bias, mode, ph, pw, *window)
    if window:
        return _stride2.easy_conv2d_window(input, weight, bias, mode, p, s, ph, pw)
    return _stride2.easy_conv2d(input, weight, bias, mode // 2, mode % 2, ph, pw)


def easy_avg_conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None,
                    padding: int | tuple[int, int] = 0, *, pool_size: int = 2, pool_stride: int = 2) -> Tensor:
    """Easy average pooling: 2x2 average pooling of a stride-1 convolution, as one stride-2 convolution.

    Equal to ``F.avg_pool2d(F.conv2d(input, weight, bias, padding=padding), 2)`` within float
    rounding, computed as a stride-2 convolution with the (kh+1, kw+1) kernel ``weight``
    full-convolved with the 2x2 box (divided by 4). Differentiable in ``input``, ``weight`` and
    ``bias``. CPU float32 / float64 run on ecp's kernels (``torch.ops.ecp.easy_avg_conv2d``),
    anything else as ``F.conv2d`` with the widened kernel.

    Parameters
    ----------
    input : Tensor, shape (N, C, H, W)
        The input, of a floating-point dtype.
    weight : Tensor, shape (O, C, kh, kw)
        The filters, on the device and of the dtype of ``input``.
    bias : Tensor, shape (O,), or None
        One bias per filter; None adds none.
    padding : int >= 0 or pair (ph, pw)
        Zeros added above and below (ph), left and right (pw) of the input.
    pool_size : int in 1..4, default 2
        The side p of the averaging window (keyword only): the kernel is widened by the p x p
        box (divided by p^2).
    pool_stride : int in 1..pool_size, default 2
        The stride s of the averaging window (keyword only).

    Returns
    -------
    Tensor, shape (N, O, (Ho - p) // s + 1, (Wo - p) // s + 1)
        With (Ho, Wo) = (H + 2ph - kh + 1, W + 2pw - kw + 1); dtype and device of ``input``.

    Raises
    ------
    TypeError
        As :func:`easy_conv2d`.
    ValueError
        As :func:`easy_conv2d`.

    Examples
    --------
    >>> import torch, torch.nn.functional as F, ecp.torch
    >>> x = torch.randn(2, 3, 9, 9); w = torch.randn(4, 3, 3, 3)
    >>> y = ecp.torch.easy_avg_conv2d(x, w, padding=1)
    >>> torch.allclose(y, F.avg_pool2d(F.conv2d(x, w, padding=1), 2), atol=1e-5)
    True
    """
    _, ph, pw, p, s = _check_conv(input, weight, bias, 0, padding, pool_size, pool_stride)
    window = () if p == 2 and s == 2 else (p, s)
    if _on_kernels(input):
        return _ops.easy_avg_conv2d(input, weight, bias, ph, pw, *window)
    if window:
        return _stride2.easy_avg_conv2d_window(input, weight, bias, p, s, ph, pw)
    return _stride2.easy_avg_conv2d(input, weight, bias, ph, pw)


def random_pool2d(input: Tensor, mode: int = 0, *, pool_size: int = 2, pool_stride: int = 2) -> Tensor:
    """Random Pooling: keep the pixel at position K of every p x p window of stride s (2x2 / 2 by default).

    Parameters
    ----------
    input : Tensor, shape (N, C, H, W), H and W >= p
        The input, of a floating-point dtype.
    mode : int in 0..p^2-1
        The kept pixel's row-major position in the window: (K // p, K % p).
    pool_size : int in 1..4, default 2
        The side p of the window (keyword only).
    pool_stride : int in 1..pool_size, default 2
        The stride s of the window (keyword only).

    Returns
    -------
    Tensor, shape (N, C, (H - p) // s + 1, (W - p) // s + 1)
        Equal to ``input[:, :, K//p::s, K%p::s]`` cropped ((H // 2, W // 2) for 2x2).

    Raises
    ------
    TypeError
        If ``input`` is not a floating-point tensor or ``mode``, ``pool_size`` or ``pool_stride``
        not an integer.
    ValueError
        If ``input`` is not 4-D or smaller than the window, ``mode`` is outside 0..p^2-1,
        ``pool_size`` outside 1..4 or ``pool_stride`` outside 1..p.

    Examples
    --------
    >>> import torch, ecp.torch
    >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
    >>> ecp.torch.random_pool2d(x, mode=1)[0, 0]
    tensor([[ 1.,  3.],
            [ 9., 11.]])
    >>> ecp.torch.random_pool2d(x, mode=4, pool_size=3, pool_stride=1)[0, 0]
    tensor([[ 5.,  6.],
            [ 9., 10.]])
    """
    _check_tensor(input, "input", "(N, C, H, W)")
    mode, p, s = check_window_mode(mode, pool_size, pool_stride)
    if input.shape[2] < p or input.shape[3] < p:
        raise ValueError(f"input is too small to pool with a {p}x{p} window: need H >= {p} and W >= {p} "
                         f"(pool_size={p}), got shape {tuple(input.shape)}")
    if p == 2 and s == 2:
        if _on_kernels(input):
            return _ops.random_pool2d(input, mode)
        return _stride2.random_pool2d(input, mode // 2, mode % 2)
    if _on_kernels(input):
        return _ops.random_pool2d(input, mode, p, s)
    return _stride2.random_pool2d_window(input, mode, p, s)


def neighbor_fill(input: Tensor, size: int | tuple[int, int] | None = None) -> Tensor:
    """Restore a pooled map to full size by copying each value into its 2x2 window.

    ``out[..., 2r:2r+2, 2q:2q+2] = input[..., r, q]``: the result does not depend on the mode K.

    Parameters
    ----------
    input : Tensor, shape (N, C, Hq, Wq), Hq and Wq >= 1
        The pooled map, of a floating-point dtype.
    size : int, pair (H, W) or None
        The full size, H in (2Hq, 2Hq + 1) and W in (2Wq, 2Wq + 1); None means (2Hq, 2Wq). An odd
        last row (column), which no window covers, repeats the row above (column left of) it.

    Returns
    -------
    Tensor, shape (N, C, H, W)
        The filled map.

    Raises
    ------
    TypeError
        If ``input`` is not a floating-point tensor or ``size`` not made of integers.
    ValueError
        If ``input`` is not 4-D or is empty in H or W, or ``size`` is not a size it was pooled from.

    Examples
    --------
    >>> import torch, ecp.torch
    >>> ecp.torch.neighbor_fill(torch.tensor([[[[1., 2.]]]]), size=(3, 4))[0, 0]
    tensor([[1., 1., 2., 2.],
            [1., 1., 2., 2.],
            [1., 1., 2., 2.]])
    """
    _check_tensor(input, "input", "(N, C, Hq, Wq)")
    hq, wq = input.shape[2], input.shape[3]
    if hq < 1 or wq < 1:
        raise ValueError(f"input must have Hq >= 1 and Wq >= 1, got shape {tuple(input.shape)}")
    if size is None:
        h, w = 2 * hq, 2 * wq
    else:
        h, w = _pair(size, "size")
        if h not in (2 * hq, 2 * hq + 1) or w not in (2 * wq, 2 * wq + 1):
            raise ValueError(f"size must be the full (H, W) a {hq}x{wq} map was pooled from: H in "
                             f"({2 * hq}, {2 * hq + 1}) and W in ({2 * wq}, {2 * wq + 1}), got {(h, w)}")
    if _on_kernels(input):
        return _ops.neighbor_fill(input, h, w)
    return _stride2.neighbor_fill(input, h, w)
