"""The convolution runners: check a call once, plan it once, run the plan.

:func:`forward` and :func:`backward` are what :mod:`ecp.conv`'s public functions and the
``ecp.nn`` layers call. A call's arguments are converted or refused (errors naming the argument),
its geometry checked and its :class:`~ecp._kernels._conv.ForwardPlan` /
:class:`~ecp._kernels._conv.BackwardPlan` made by :mod:`ecp._dispatch`; plans are cached on the
shapes, dtype, padding, mode and the :data:`ecp._dispatch.thresholds` table in force (errors are
not cached: a bad call raises every time).

A caller that keeps the plan of its previous call (a layer) passes it back: when the new call fits
it (the same shapes, dtype, padding, mode and table: checked in C by the plan) it runs at once,
skipping the conversions and the cache lookup. (A plan unpickled or deep-copied with its layer
holds a copy of the table, not the table itself, so its first call is planned afresh.)
"""
from __future__ import annotations

import functools

import numpy as np

from . import _dispatch
from ._kernels import _conv
from ._threads import get_num_threads
from ._validation import (
    as_float_array,
    check_conv_geometry,
    check_dims,
    check_grad_dims,
    check_int,
    check_mode,
    check_padding,
    conv_output_shape,
    easy_output_shape,
    kernel_ready,
)

__all__ = ["forward", "backward"]


def _arrays(x, w, b=None, dy=None, dy_dims=None):
    """The call's arrays as the kernels take them (x, w, b or None; dy when ``dy_dims`` names its
    dimensions, else None), converted or refused with an error naming the argument. Arrays that
    already are what the kernels take pass a few attribute checks and are not touched."""
    if (kernel_ready(x, 4) and kernel_ready(w, 4) and w.dtype is x.dtype
            and (b is None or (kernel_ready(b, 1) and b.dtype is x.dtype))
            and (dy_dims is None or (kernel_ready(dy, 4) and dy.dtype is x.dtype))):
        return x, w, b, dy   # their dimensions are checked in _forward_call / _backward_call
    x = as_float_array(x, "x", 4)
    w = as_float_array(w, "w", 4, "(O, C, kh, kw)", dtype=x.dtype)
    if b is not None:
        b = as_float_array(b, "b", 1, "(O,)", dtype=x.dtype)
    if dy_dims is not None:
        dy = as_float_array(dy, "dy", 4, dy_dims, dtype=x.dtype)
    return x, w, b, dy


def int_arg(value, name, minimum, maximum):
    """``value`` as a Python int (hashable, for the plan cache), or the error naming ``name``."""
    return value if type(value) is int else check_int(value, name, minimum, maximum)


def output(x_shape, w_shape, padding, mode):
    """(output shape, stride, oy, ox) of a call (``mode`` None: the full convolution; ``padding``
    an int or a pair), or the error naming what does not fit."""
    check_dims(x_shape, "x")
    check_dims(w_shape, "w")
    padding = check_padding(padding)
    check_conv_geometry(x_shape, w_shape, padding)
    if mode is None:
        return conv_output_shape(x_shape, w_shape, padding), 1, 0, 0
    oy, ox = check_mode(mode)
    return easy_output_shape(x_shape, w_shape, padding), 2, oy, ox


@functools.lru_cache(maxsize=1024)
def _forward_call(x_shape, w_shape, b_shape, dtype, padding, mode, thresholds):
    """The ForwardPlan of a forward call for arrays the kernels take (see _arrays), ``dtype``
    their character code ("f" or "d"), ``padding`` the pair (ph, pw); or the error that names what
    does not fit."""
    out_shape, stride, oy, ox = output(x_shape, w_shape, padding, mode)
    if b_shape is not None:
        check_dims(b_shape, "b")
        if b_shape != (w_shape[0],):
            raise ValueError(f"b must have shape ({w_shape[0]},) (one bias per filter of w), got {b_shape}")
    full_hw = conv_output_shape(x_shape, w_shape, padding)[2:]
    kernel, items, rows = _dispatch.plan_forward(x_shape, w_shape, dtype, full_hw, out_shape[3], stride,
                                                 thresholds)
    return _conv.ForwardPlan(x_shape, w_shape, out_shape, dtype, padding, mode, stride, oy, ox, int(kernel),
                             items, rows, _dispatch.threaded(w_shape, out_shape, thresholds), thresholds)


@functools.lru_cache(maxsize=1024)
def _backward_call(x_shape, w_shape, dy_shape, dtype, padding, mode, thresholds):
    """The BackwardPlan of a backward call, checked and cached as :func:`_forward_call`."""
    out_shape, stride, oy, ox = output(x_shape, w_shape, padding, mode)
    check_dims(dy_shape, "dy")
    check_grad_dims(dy_shape, out_shape)
    full_hw = conv_output_shape(x_shape, w_shape, padding)[2:]
    kernel, items, dx_items, slots = _dispatch.plan_backward(x_shape, w_shape, dtype, full_hw, stride,
                                                             thresholds)
    return _conv.BackwardPlan(x_shape, w_shape, dy_shape, dtype, padding, mode, stride, oy, ox, int(kernel),
                              items, dx_items, slots, _dispatch.threaded(w_shape, dy_shape, thresholds),
                              thresholds)


def cache_clear():
    """Forget every cached plan (they are remade on the next calls)."""
    _forward_call.cache_clear()
    _backward_call.cache_clear()


def _bias(b, w):
    return b if b is not None else np.zeros(w.shape[0], dtype=w.dtype)


def forward(x, w, b, padding, mode, plan=None):
    """conv2d (``mode`` None) or easy_conv2d (``mode`` K, an int its callers have checked):
    (y, the plan that ran it), trying ``plan`` first."""
    thresholds = _dispatch.thresholds
    if plan is not None and plan.fits(x, w, b, padding, mode, thresholds):
        return plan.run(x, w, b, get_num_threads()), plan
    x, w, b, _ = _arrays(x, w, b)
    padding = check_padding(padding)   # (ph, pw): an int p and (p, p) share a plan
    plan = _forward_call(x.shape, w.shape, None if b is None else b.shape, x.dtype.char, padding, mode,
                         thresholds)
    return plan.run(x, w, _bias(b, w), get_num_threads()), plan


def backward(dy, x, w, padding, mode, compute_dx, plan=None, dw=None, db=None):
    """conv2d_backward (``mode`` None) or easy_conv2d_backward (``mode`` K): ((dx, dw, db), the
    plan that ran it), trying ``plan`` first; dW and db go into ``dw`` and ``db`` where
    BackwardPlan.run can write them (a layer's gradients), else into new arrays."""
    thresholds = _dispatch.thresholds
    if plan is not None and plan.fits(dy, x, w, padding, mode, thresholds):
        return plan.run(dy, x, w, compute_dx, get_num_threads(), dw, db), plan
    x, w, _, dy = _arrays(x, w, None, dy, "(N, O, Ho, Wo)" if mode is None else "(N, O, Ho//2, Wo//2)")
    padding = check_padding(padding)   # (ph, pw): an int p and (p, p) share a plan
    plan = _backward_call(x.shape, w.shape, dy.shape, x.dtype.char, padding, mode, thresholds)
    return plan.run(dy, x, w, compute_dx, get_num_threads(), dw, db), plan
