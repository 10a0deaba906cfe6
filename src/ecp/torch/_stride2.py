"""The ops in plain PyTorch, for every dtype and device (bf16, half, CUDA, MPS): autograd and the
device's convolution library (cuDNN) do the rest.

Easy Convolution is the copy-free stride-2 form: a stride-2 convolution with padding
(ph + K//2, pw + K%2), then a view that drops its first K//2 rows and K%2 columns, cropped to
(Ho//2, Wo//2). Output row r of that convolution reads input rows from 2r - ph - K//2, so row
r + K//2 reads from 2r + K//2 - ph: the full convolution's row 2r + K//2, the one mode K keeps.
Outputs are views (no copy); arguments are checked by :mod:`ecp.torch.functional`.

Easy average pooling is a stride-2 convolution with the kernel widened by the 2x2 box (w
full-convolved with it, divided by 4), cropped to (Ho//2, Wo//2): the widening is four pads and
three adds, differentiable, so autograd folds dW back by the box's adjoint.

Other windows (p x p, stride s: the ``*_window`` functions): Easy Convolution is a stride-s
convolution of the padded input with its first K // p rows and K % p columns dropped; easy average
pooling a stride-s convolution with the kernel widened by the p x p box; Random Pooling a strided
view. All cropped to PyTorch's floor sizes ((Ho - p) // s + 1, (Wo - p) // s + 1).
"""
import torch
import torch.nn.functional as F


def easy_conv2d(input, weight, bias, oy, ox, ph, pw):
    ho = (input.shape[2] + 2 * ph - weight.shape[2] + 1) // 2
    wo = (input.shape[3] + 2 * pw - weight.shape[3] + 1) // 2
    y = F.conv2d(input, weight, bias, stride=2, padding=(ph + oy, pw + ox))
    return y[:, :, oy:oy + ho, ox:ox + wo]


def widen(weight):
    """``weight`` (O, C, kh, kw) full-convolved with the 2x2 box, / 4: (O, C, kh + 1, kw + 1)."""
    pad = F.pad
    return (pad(weight, (0, 1, 0, 1)) + pad(weight, (1, 0, 0, 1)) + pad(weight, (0, 1, 1, 0))
            + pad(weight, (1, 0, 1, 0))) * 0.25


def easy_avg_conv2d(input, weight, bias, ph, pw):
    ho = (input.shape[2] + 2 * ph - weight.shape[2] + 1) // 2
    wo = (input.shape[3] + 2 * pw - weight.shape[3] + 1) // 2
    y = F.conv2d(input, widen(weight), bias, stride=2, padding=(ph, pw))
    return y[:, :, :ho, :wo]


def random_pool2d(input, oy, ox):
    hq, wq = input.shape[2] // 2, input.shape[3] // 2
    return input[:, :, oy:2 * hq:2, ox:2 * wq:2]


def neighbor_fill(input, h, w):
    """Each value copied into its 2x2 window; an odd last row (column) repeats the one above (left)."""
    rows = torch.arange(h, device=input.device).floor_divide(2).clamp_(max=input.shape[2] - 1)
    cols = torch.arange(w, device=input.device).floor_divide(2).clamp_(max=input.shape[3] - 1)
    return input.index_select(2, rows).index_select(3, cols)


def _pooled(h, w, p, s):
    return (h - p) // s + 1, (w - p) // s + 1


def easy_conv2d_window(input, weight, bias, k, p, s, ph, pw):
    oy, ox = divmod(k, p)
    ho, wo = _pooled(input.shape[2] + 2 * ph - weight.shape[2] + 1, input.shape[3] + 2 * pw - weight.shape[3] + 1,
                     p, s)
    x = F.pad(input, (pw, pw, ph, ph))[:, :, oy:, ox:]
    return F.conv2d(x, weight, bias, stride=s)[:, :, :ho, :wo]


def widen_window(weight, p):
    """``weight`` (O, C, kh, kw) full-convolved with the p x p box, / p^2: (O, C, kh+p-1, kw+p-1)."""
    total = None
    for i in range(p):
        for j in range(p):
            term = F.pad(weight, (j, p - 1 - j, i, p - 1 - i))
            total = term if total is None else total + term
    return total * (1.0 / (p * p))


def easy_avg_conv2d_window(input, weight, bias, p, s, ph, pw):
    ho, wo = _pooled(input.shape[2] + 2 * ph - weight.shape[2] + 1, input.shape[3] + 2 * pw - weight.shape[3] + 1,
                     p, s)
    return F.conv2d(input, widen_window(weight, p), bias, stride=s, padding=(ph, pw))[:, :, :ho, :wo]


def random_pool2d_window(input, k, p, s):
    oy, ox = divmod(k, p)
    ho, wo = _pooled(input.shape[2], input.shape[3], p, s)
    return input[:, :, oy::s, ox::s][:, :, :ho, :wo]
