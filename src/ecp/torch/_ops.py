"""ecp's kernels as PyTorch custom ops in the namespace ``ecp`` (``torch.ops.ecp.*``).

Each op takes CPU float32 / float64 tensors that :mod:`ecp.torch.functional` has checked and runs
the NumPy API's kernels on ``Tensor.numpy()`` views: no copy for a C-contiguous tensor (any other
layout is made contiguous first, as the kernels read NCHW rows). Outputs are the kernels' fresh
arrays, wrapped by ``torch.from_numpy`` (no copy). Every op has a fake (meta) implementation, so
``torch.compile`` / ``torch.export`` trace it as one opaque node, and the forward ops have their
backward registered through ``torch.library.register_autograd`` (first derivatives only).
"""
from typing import Optional

import torch
from torch import Tensor

from .. import _plans
from .. import pool as _pool

# The one switch the lead flips when ecp's kernels take a (ph, pw) padding pair: until then a
# pair with ph != pw runs the PyTorch formulation (ecp.torch.functional routes it there).
KERNELS_TAKE_PADDING_PAIRS = True


def _np(t):
    """A NumPy view of ``t`` (a copy only when ``t`` is not C-contiguous)."""
    return t.detach().contiguous().numpy()


def _padding(ph, pw):
    """The padding as ecp's runners take it: an int when both sides agree (the plan cache's key
    of the NumPy API), else the pair."""
    return ph if ph == pw else (ph, pw)


def _easy_hw(input, weight, ph, pw, p=2, s=2):
    """The pooled output size: PyTorch's floor rule for a p x p window of stride s."""
    ho, wo = input.shape[2] + 2 * ph - weight.shape[2] + 1, input.shape[3] + 2 * pw - weight.shape[3] + 1
    return (ho - p) // s + 1, (wo - p) // s + 1


def _mode(mode, p, s):
    """The runners' mode: K for the 2x2 window of stride 2, (K, p, s) for another window."""
    return mode if p == 2 and s == 2 else (mode, p, s)


# ---- Easy Convolution ----------------------------------------------------------------------

@torch.library.custom_op("ecp::easy_conv2d", mutates_args=())
def easy_conv2d(input: Tensor, weight: Tensor, bias: Optional[Tensor], mode: int, ph: int, pw: int,  # noqa: UP045
                p: int = 2, s: int = 2) -> Tensor:
    y, _ = _plans.forward(_np(input), _np(weight), None if bias is None else _np(bias), _padding(ph, pw),
                          _mode(mode, p, s))
    return torch.from_numpy(y)


@easy_conv2d.register_fake
def _(input, weight, bias, mode, ph, pw, p=2, s=2):
    return input.new_empty((input.shape[0], weight.shape[0], *_easy_hw(input, weight, ph, pw, p, s)))


@torch.library.custom_op("ecp::easy_conv2d_backward", mutates_args=())
def easy_conv2d_backward(dy: Tensor, input: Tensor, weight: Tensor, mode: int, ph: int, pw: int,
                         compute_dx: bool, p: int = 2, s: int = 2) -> tuple[Tensor, Tensor, Tensor]:
    """(dx, dw, db); dx is an empty tensor when ``compute_dx`` is False."""
    (dx, dw, db), _ = _plans.backward(_np(dy), _np(input), _np(weight), _padding(ph, pw), _mode(mode, p, s),
                                      compute_dx)
    return (torch.from_numpy(dx) if compute_dx else input.new_empty(0)), torch.from_numpy(dw), torch.from_numpy(db)


@easy_conv2d_backward.register_fake
def _(dy, input, weight, mode, ph, pw, compute_dx, p=2, s=2):
    return (input.new_empty(input.shape if compute_dx else (0,)), weight.new_empty(weight.shape),
            weight.new_empty((weight.shape[0],)))


def _easy_conv2d_setup(ctx, inputs, output):
    input, weight, bias, mode, ph, pw = inputs[:6]
    ctx.save_for_backward(input, weight)
    ctx.args = (mode, ph, pw)
    ctx.window = tuple(inputs[6:8]) or (2, 2)
    ctx.n_inputs = len(inputs)
    ctx.has_bias = bias is not None


def _easy_conv2d_grad(ctx, dy):
    input, weight = ctx.saved_tensors
    need_dx = ctx.needs_input_grad[0]
    dx, dw, db = easy_conv2d_backward(dy, input, weight, *ctx.args, need_dx, *ctx.window)
    return ((dx if need_dx else None), dw, (db if ctx.has_bias else None)) + (None,) * (ctx.n_inputs - 3)


easy_conv2d.register_autograd(_easy_conv2d_grad, setup_context=_easy_conv2d_setup)


class EagerEasyConv2d(torch.autograd.Function):
    """The same computation as ``torch.ops.ecp.easy_conv2d`` with its registered backward, for eager calls.

    An eager call skips the custom op's dispatch (about a third of a forward + backward on the paper's
    conv2: 0.61 against 0.85 ms); tracing and compiling (``torch.compile``, ``torch.export``) and
    tensor subclasses go through the custom op, which they see as one node. Same runners, same bits.
    """

    @staticmethod
    def forward(ctx, input, weight, bias, mode, ph, pw, p=2, s=2):
        mode = _mode(mode, p, s)
        y, _ = _plans.forward(_np(input), _np(weight), None if bias is None else _np(bias), _padding(ph, pw), mode)
        ctx.save_for_backward(input, weight)
        ctx.args = (mode, ph, pw)
        ctx.has_bias = bias is not None
        return torch.from_numpy(y)

    @staticmethod
    def backward(ctx, dy):
        input, weight = ctx.saved_tensors
        mode, ph, pw = ctx.args
        need_dx = ctx.needs_input_grad[0]
        (dx, dw, db), _ = _plans.backward(_np(dy), _np(input), _np(weight), _padding(ph, pw), mode, need_dx)
        return ((torch.from_numpy(dx) if need_dx else None), torch.from_numpy(dw),
                (torch.from_numpy(db) if ctx.has_bias else None)) + (None,) * (len(ctx.needs_input_grad) - 3)


# ---- Easy average pooling ------------------------------------------------------------------

@torch.library.custom_op("ecp::easy_avg_conv2d", mutates_args=())
def easy_avg_conv2d(input: Tensor, weight: Tensor, bias: Optional[Tensor], ph: int, pw: int,  # noqa: UP045
                    p: int = 2, s: int = 2) -> Tensor:
    y, _ = _plans.avg_forward(_np(input), _np(weight), None if bias is None else _np(bias), _padding(ph, pw),
                              window=(p, s))
    return torch.from_numpy(y)


@easy_avg_conv2d.register_fake
def _(input, weight, bias, ph, pw, p=2, s=2):
    return input.new_empty((input.shape[0], weight.shape[0], *_easy_hw(input, weight, ph, pw, p, s)))


@torch.library.custom_op("ecp::easy_avg_conv2d_backward", mutates_args=())
def easy_avg_conv2d_backward(dy: Tensor, input: Tensor, weight: Tensor, ph: int, pw: int,
                             compute_dx: bool, p: int = 2, s: int = 2) -> tuple[Tensor, Tensor, Tensor]:
    """(dx, dw, db); dx is an empty tensor when ``compute_dx`` is False."""
    (dx, dw, db), _ = _plans.avg_backward(_np(dy), _np(input), _np(weight), _padding(ph, pw), compute_dx,
                                          window=(p, s))
    return (torch.from_numpy(dx) if compute_dx else input.new_empty(0)), torch.from_numpy(dw), torch.from_numpy(db)


@easy_avg_conv2d_backward.register_fake
def _(dy, input, weight, ph, pw, compute_dx, p=2, s=2):
    return (input.new_empty(input.shape if compute_dx else (0,)), weight.new_empty(weight.shape),
            weight.new_empty((weight.shape[0],)))


def _easy_avg_conv2d_setup(ctx, inputs, output):
    input, weight, bias, ph, pw = inputs[:5]
    ctx.save_for_backward(input, weight)
    ctx.args = (ph, pw)
    ctx.window = tuple(inputs[5:7]) or (2, 2)
    ctx.n_inputs = len(inputs)
    ctx.has_bias = bias is not None


def _easy_avg_conv2d_grad(ctx, dy):
    input, weight = ctx.saved_tensors
    need_dx = ctx.needs_input_grad[0]
    dx, dw, db = easy_avg_conv2d_backward(dy, input, weight, *ctx.args, need_dx, *ctx.window)
    return ((dx if need_dx else None), dw, (db if ctx.has_bias else None)) + (None,) * (ctx.n_inputs - 3)


easy_avg_conv2d.register_autograd(_easy_avg_conv2d_grad, setup_context=_easy_avg_conv2d_setup)


# ---- Random Pooling --------------------------------------------------------------------------

@torch.library.custom_op("ecp::random_pool2d", mutates_args=())
def random_pool2d(input: Tensor, mode: int, p: int = 2, s: int = 2) -> Tensor:
    return torch.from_numpy(_pool.random_pool2d(_np(input), mode, pool_size=p, pool_stride=s))


@random_pool2d.register_fake
def _(input, mode, p=2, s=2):
    return input.new_empty((input.shape[0], input.shape[1], (input.shape[2] - p) // s + 1,
                            (input.shape[3] - p) // s + 1))


@torch.library.custom_op("ecp::random_pool2d_backward", mutates_args=())
def random_pool2d_backward(dy: Tensor, mode: int, h: int, w: int, p: int = 2, s: int = 2) -> Tensor:
    return torch.from_numpy(_pool.random_pool2d_backward(_np(dy), mode, (dy.shape[0], dy.shape[1], h, w),
                                                         pool_size=p, pool_stride=s))


@random_pool2d_backward.register_fake
def _(dy, mode, h, w, p=2, s=2):
    return dy.new_empty((dy.shape[0], dy.shape[1], h, w))


def _random_pool2d_setup(ctx, inputs, output):
    input, mode = inputs[:2]
    ctx.mode, ctx.hw = mode, (input.shape[2], input.shape[3])
    ctx.window = tuple(inputs[2:4]) or (2, 2)
    ctx.n_inputs = len(inputs)


def _random_pool2d_grad(ctx, dy):
    return (random_pool2d_backward(dy, ctx.mode, *ctx.hw, *ctx.window),) + (None,) * (ctx.n_inputs - 1)


random_pool2d.register_autograd(_random_pool2d_grad, setup_context=_random_pool2d_setup)


# ---- Neighbor fill ---------------------------------------------------------------------------

@torch.library.custom_op("ecp::neighbor_fill", mutates_args=())
def neighbor_fill(input: Tensor, h: int, w: int) -> Tensor:
    return torch.from_numpy(_pool.neighbor_fill(_np(input), shape=(h, w)))


@neighbor_fill.register_fake
def _(input, h, w):
    return input.new_empty((input.shape[0], input.shape[1], h, w))


@torch.library.custom_op("ecp::neighbor_fill_backward", mutates_args=())
def neighbor_fill_backward(dy: Tensor) -> Tensor:
    return torch.from_numpy(_pool.neighbor_fill_backward(_np(dy)))


@neighbor_fill_backward.register_fake
def _(dy):
    return dy.new_empty((dy.shape[0], dy.shape[1], dy.shape[2] // 2, dy.shape[3] // 2))


def _neighbor_fill_setup(ctx, inputs, output):
    pass


def _neighbor_fill_grad(ctx, dy):
    return neighbor_fill_backward(dy), None, None


neighbor_fill.register_autograd(_neighbor_fill_grad, setup_context=_neighbor_fill_setup)
