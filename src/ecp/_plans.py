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
from ._kernels import _conv, _pool
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
    window_output_shape,
)

__all__ = ["forward", "backward", "avg_forward", "avg_backward", "fills_wide", "MeansPlan"]


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
    """(output shape, stride, oy, ox) of a call (``mode`` None: the full convolution; K: mode K of
    the 2x2 window of stride 2; (K, p, s): mode K of the p x p window of stride s, checked by
    the caller (``check_window_mode``); ``padding`` an int or a pair), or the error naming what
    does not fit."""
    check_dims(x_shape, "x")
    check_dims(w_shape, "w")
    padding = check_padding(padding)
    check_conv_geometry(x_shape, w_shape, padding)
    if mode is None:
        return conv_output_shape(x_shape, w_shape, padding), 1, 0, 0
    if type(mode) is tuple:
        k, p, s = mode
        return window_output_shape(conv_output_shape(x_shape, w_shape, padding), p, s), s, k // p, k % p
    oy, ox = check_mode(mode)
    return easy_output_shape(x_shape, w_shape, padding), 2, oy, ox



def _full_hw(x_shape, w_shape, padding, mode, out_shape, stride):
    """The full output size a call's work is planned on: the convolution's (full and 2x2-window
    calls), or ``stride`` times the call's own output (other windows: the planned output then is
    exactly the call's)."""
    if type(mode) is tuple:
        return (stride * out_shape[2], stride * out_shape[3])
    return conv_output_shape(x_shape, w_shape, padding)[2:]

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
    full_hw = _full_hw(x_shape, w_shape, padding, mode, out_shape, stride)
    return _forward_plan(x_shape, w_shape, out_shape, full_hw, dtype, padding, mode, stride, oy, ox, thresholds)


def _forward_plan(x_shape, w_shape, out_shape, full_hw, dtype, padding, mode, stride, oy, ox, thresholds):
    """The ForwardPlan of a checked geometry whose output is ``out_shape`` (given, not derived
    from ``w_shape``: easy average pooling's stride-2 grid has its own size) and whose work is
    planned as that of a full output ``full_hw``."""
    kernel, items, rows = _dispatch.plan_forward(x_shape, w_shape, dtype, full_hw, out_shape[3], stride,
                                                 thresholds, (oy, ox))
    return _conv.ForwardPlan(x_shape, w_shape, out_shape, dtype, padding, mode, stride, oy, ox, int(kernel),
                             items, rows, _dispatch.threaded(w_shape, out_shape, thresholds), thresholds)


@functools.lru_cache(maxsize=1024)
def _backward_call(x_shape, w_shape, dy_shape, dtype, padding, mode, thresholds):
    """The BackwardPlan of a backward call, checked and cached as :func:`_forward_call`."""
    out_shape, stride, oy, ox = output(x_shape, w_shape, padding, mode)
    check_dims(dy_shape, "dy")
    check_grad_dims(dy_shape, out_shape)
    full_hw = _full_hw(x_shape, w_shape, padding, mode, out_shape, stride)
    return _backward_plan(x_shape, w_shape, dy_shape, full_hw, dtype, padding, mode, stride, oy, ox, thresholds)


def _backward_plan(x_shape, w_shape, dy_shape, full_hw, dtype, padding, mode, stride, oy, ox, thresholds):
    """The BackwardPlan of a checked geometry, as :func:`_forward_plan`."""
    kernel, items, dx_items, slots = _dispatch.plan_backward(x_shape, w_shape, dtype, full_hw, stride,
                                                             thresholds, (oy, ox))
    return _conv.BackwardPlan(x_shape, w_shape, dy_shape, dtype, padding, mode, stride, oy, ox, int(kernel),
                              items, dx_items, slots, _dispatch.threaded(w_shape, dy_shape, thresholds),
                              thresholds)


# Easy average pooling: avg_pool2x2(conv2d(x, w, b, padding)) is the stride-2 convolution (grid
# offset (0, 0), the plans' mode 0) of x with the (kh+1, kw+1) kernel widen(w), the same bias and
# padding, on an output of (Ho // 2, Wo // 2) pixels, (Ho, Wo) the full convolution's size with w.
# That is one more row (column) than the easy size rule gives the widened kernel when Ho (Wo) is
# even, so these plans are made with the output size given. Their cache keys hold w's shape, not
# the widened one's, and their own cache: an avg plan never serves an easy_conv2d call.
# A p x p window of stride s is the same with the p x p box / p^2 ((kh+p-1, kw+p-1) kernel), at
# stride s, on the pooled size of PyTorch's floor rule; its plans' mode is (0, p, s).

def _box_threads(size):
    """Threads for widen / fold of ``size`` widened elements: one below 65536 (conv2's 23,040 take
    ~10 us; on a busy machine waking the team for them cost 0.05-0.8 ms, docs/performance.md
    section 12)."""
    return get_num_threads() if size >= 65536 else 1


def widen(w, p=2):
    """The kernel of easy average pooling over a p x p window: ``w`` (O, C, kh, kw) full-convolved
    with the p x p box, divided by p^2: (O, C, kh + p - 1, kw + p - 1), w's dtype (C-contiguous
    float32 / float64). Every tap is summed from 0 in the order (box column, then box row), then
    scaled: the bits of the NumPy sums this replaced (a nogil loop of _pool, ~3x faster)."""
    o, c, kh, kw = w.shape
    wide = np.empty((o, c, kh + p - 1, kw + p - 1), dtype=w.dtype)
    _pool.box_widen(w, wide, p, _box_threads(wide.size))
    return wide


def fold(dwide, out=None, p=2):
    """dW of ``w`` from dW of ``widen(w, p)``: the box's adjoint (the mean of the p x p taps
    ``dwide[i:i+p, j:j+p]``, summed in widen's order), into ``out`` when given (w's shape and
    dtype, C-contiguous)."""
    o, c, khp, kwp = dwide.shape
    if out is None:
        out = np.empty((o, c, khp - p + 1, kwp - p + 1), dtype=dwide.dtype)
    _pool.box_fold(dwide, out, p, _box_threads(dwide.size))
    return out


def _avg_geometry(x_shape, w_shape, padding, window=(2, 2)):
    """(output shape, widened kernel shape) of a checked easy-average call over a ``window``
    (p, s) (checked by the caller); the error naming what does not fit otherwise (a full output
    smaller than the window cannot be pooled)."""
    p, s = window
    out_shape, _, _, _ = output(x_shape, w_shape, padding, 0 if window == (2, 2) else (0, p, s))
    return out_shape, (w_shape[0], w_shape[1], w_shape[2] + p - 1, w_shape[3] + p - 1)


def _avg_mode(window):
    """The plans' mode of easy average pooling over ``window`` (p, s): the grid at offset (0, 0)."""
    return 0 if window == (2, 2) else (0, window[0], window[1])


# The plans' mode of ForwardKernel.POLYPHASE_BOX: the (0, 2, 2) form of the 2x2 window, which no
# other call's plan holds (they name it 0), so that a box plan (w 3x3) never serves easy_conv2d.
_BOX_MODE = (0, 2, 2)


class MeansPlan:
    """An easy-average plan over the 2x2 window on x's box means (``_dispatch.box_means``): the
    stride-2 convolution (grid offset (0, 0), no padding, the plans' mode ``_BOX_MODE``) of
    ``_conv.box_means(x)`` with w itself, the 1/4 in the means. ``plan`` is the Forward- or
    BackwardPlan of that convolution; it is kept with the call's own x shape and padding, which
    the means' shape alone does not tell apart (x 12x12 unpadded and 11x11 padded by 1 both make
    12 x 12 means)."""

    __slots__ = ("x_shape", "padding", "s_shape", "plan")

    def __init__(self, x_shape, padding, s_shape, plan):
        self.x_shape, self.padding, self.s_shape, self.plan = x_shape, padding, s_shape, plan

    @property
    def kernel(self):
        """The kernel of the convolution on the means."""
        return self.plan.kernel

    def means(self, x):
        """x's box means for this plan's convolution (a new array)."""
        xs = np.empty(self.s_shape, dtype=x.dtype)
        _conv.box_means(x, xs, self.padding[0], self.padding[1], get_num_threads())
        return xs

    def means_for(self, x, padding):
        """x's box means when ``x`` (an array the kernels take) and ``padding`` are this plan's
        call's, else None; whether the rest of the call fits is the convolution plan's to say."""
        if not (x.shape == self.x_shape and (padding == self.padding[0] == self.padding[1] if type(padding) is int
                                             else check_padding(padding) == self.padding)):
            return None
        return self.means(x)


@functools.lru_cache(maxsize=256)
def _avg_forward_call(x_shape, w_shape, b_shape, dtype, padding, thresholds, window=(2, 2)):
    """The ForwardPlan of an easy-average forward call (``w_shape`` the caller's kernel): of the
    widened kernel, or of ``w_shape`` itself on x's box sums (ForwardKernel.POLYPHASE_BOX)."""
    out_shape, wide_shape = _avg_geometry(x_shape, w_shape, padding, window)
    s = window[1]
    if b_shape is not None:
        check_dims(b_shape, "b")
        if b_shape != (w_shape[0],):
            raise ValueError(f"b must have shape ({w_shape[0]},) (one bias per filter of w), got {b_shape}")
    if window == (2, 2) and _dispatch.polyphase_box(x_shape, w_shape, out_shape[2:], thresholds):
        kernel = _dispatch.ForwardKernel.POLYPHASE_BOX
        return _conv.ForwardPlan(x_shape, w_shape, out_shape, dtype, padding, _BOX_MODE, 2, 0, 0, int(kernel),
                                 _dispatch.block_items(x_shape[0], thresholds),
                                 _dispatch.winograd_rows(x_shape[0], out_shape[2], thresholds),
                                 _dispatch.threaded(wide_shape, out_shape, thresholds), thresholds)
    if _dispatch.box_means(w_shape, out_shape, window, thresholds):
        s_shape = _conv.box_means_shape(x_shape, *padding)
        return MeansPlan(x_shape, padding, s_shape, _forward_plan(
            s_shape, w_shape, out_shape, (2 * out_shape[2], 2 * out_shape[3]), dtype, (0, 0), _BOX_MODE, 2, 0, 0,
            thresholds))
    return _forward_plan(x_shape, wide_shape, out_shape, (s * out_shape[2], s * out_shape[3]), dtype, padding,
                         _avg_mode(window), s, 0, 0, thresholds)


@functools.lru_cache(maxsize=256)
def _avg_backward_call(x_shape, w_shape, dy_shape, dtype, padding, thresholds, window=(2, 2)):
    """The BackwardPlan of an easy-average backward call, checked as :func:`_avg_forward_call`."""
    out_shape, wide_shape = _avg_geometry(x_shape, w_shape, padding, window)
    check_dims(dy_shape, "dy")
    check_grad_dims(dy_shape, out_shape)
    s = window[1]
    if (window == (2, 2) and thresholds.polyphase_backward
            and _dispatch.polyphase_box(x_shape, w_shape, out_shape[2:], thresholds)):
        kernel = _dispatch.BackwardKernel.POLYPHASE_BOX_BACKWARD
        return _conv.BackwardPlan(x_shape, w_shape, dy_shape, dtype, padding, _BOX_MODE, 2, 0, 0, int(kernel),
                                  _dispatch.block_items(x_shape[0], thresholds),
                                  _dispatch.winograd_rows(x_shape[0], out_shape[2], thresholds), thresholds.cores,
                                  _dispatch.threaded(wide_shape, dy_shape, thresholds), thresholds)
    if _dispatch.box_means(w_shape, out_shape, window, thresholds):
        s_shape = _conv.box_means_shape(x_shape, *padding)
        return MeansPlan(x_shape, padding, s_shape, _backward_plan(
            s_shape, w_shape, dy_shape, (2 * out_shape[2], 2 * out_shape[3]), dtype, (0, 0), _BOX_MODE, 2, 0, 0,
            thresholds))
    return _backward_plan(x_shape, wide_shape, dy_shape, (s * out_shape[2], s * out_shape[3]), dtype, padding,
                          _avg_mode(window), s, 0, 0, thresholds)


def cache_clear():
    """Forget every cached plan (they are remade on the next calls)."""
    _forward_call.cache_clear()
    _backward_call.cache_clear()
    _avg_forward_call.cache_clear()
    _avg_backward_call.cache_clear()


def _bias(b, w):
    return b if b is not None else np.zeros(w.shape[0], dtype=w.dtype)


def _dy_dims(mode):
    """The dimensions of dy a backward call with ``mode`` takes, for its error messages."""
    if mode is None:
        return "(N, O, Ho, Wo)"
    if type(mode) is tuple:
        return f"(N, O, (Ho-{mode[1]})//{mode[2]}+1, (Wo-{mode[1]})//{mode[2]}+1)"
    return "(N, O, Ho//2, Wo//2)"


def forward(x, w, b, padding, mode, plan=None):
    """conv2d (``mode`` None) or easy_conv2d (``mode`` K, or (K, p, s) for a p x p window of
    stride s other than 2x2 / 2, checked by its callers): (y, the plan that ran it), trying
    ``plan`` first."""
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
    x, w, _, dy = _arrays(x, w, None, dy, "(N, O, Ho, Wo)" if mode is None else "(N, O, Ho//2, Wo//2)"
                          if type(mode) is not tuple else _dy_dims(mode))
    padding = check_padding(padding)   # (ph, pw): an int p and (p, p) share a plan
    plan = _backward_call(x.shape, w.shape, dy.shape, x.dtype.char, padding, mode, thresholds)
    return plan.run(dy, x, w, compute_dx, get_num_threads(), dw, db), plan


def avg_forward(x, w, b, padding, plan=None, window=(2, 2), wide=None):
    """easy_avg_conv2d over ``window`` (p, s), checked by the caller: (y, the plan that ran it),
    trying ``plan`` (one this function returned) first. ``wide``: an array to widen ``w`` into
    (w's dtype, the widened shape, C-contiguous; a layer keeps it for its backward), else a new
    one; it is filled only when the plan runs the widened kernel (:func:`fills_wide`). A plan of
    ForwardKernel.POLYPHASE_BOX runs ``w`` itself on x's box sums, a MeansPlan on x's box means."""
    thresholds = _dispatch.thresholds
    x, w, b, _ = _arrays(x, w, b)
    b = _bias(b, w)
    xs = None
    if type(plan) is MeansPlan:
        xs = plan.means_for(x, padding)
        fits = xs is not None and plan.plan.fits(xs, w, b, 0, _BOX_MODE, thresholds)
    elif plan is not None:
        fits = (plan.fits(x, w, b, padding, _BOX_MODE, thresholds)
                if plan.kernel == _dispatch.ForwardKernel.POLYPHASE_BOX
                else plan.fits(x, _wide_view(w, window[0], wide), b, padding, _avg_mode(window), thresholds))
    if plan is None or not fits:
        xs = None   # (the old plan's means, if made, may not be the new one's)
        plan = _avg_forward_call(x.shape, w.shape, b.shape, x.dtype.char, check_padding(padding), thresholds,
                                 window)
    if type(plan) is MeansPlan:
        if xs is None:
            xs = plan.means(x)
        return plan.plan.run(xs, w, b, get_num_threads()), plan
    if plan.kernel == _dispatch.ForwardKernel.POLYPHASE_BOX:
        return plan.run(x, w, b, get_num_threads()), plan
    if wide is None or wide.dtype != w.dtype or wide.shape != _wide_shape(w.shape, window[0]):
        wide = np.empty(_wide_shape(w.shape, window[0]), dtype=w.dtype)
    _pool.box_widen(w, wide, window[0], _box_threads(wide.size))
    return plan.run(x, wide, b, get_num_threads()), plan


def fills_wide(plan):
    """Whether :func:`avg_forward` widened w into the ``wide`` it was given when it ran ``plan``
    (a plan of the widened kernel), so that a backward of the same w may take that array."""
    return (plan is not None and type(plan) is not MeansPlan
            and plan.kernel != _dispatch.ForwardKernel.POLYPHASE_BOX)


def avg_backward(dy, x, w, padding, compute_dx, plan=None, dw=None, db=None, window=(2, 2), wide=None):
    """easy_avg_conv2d_backward over ``window`` (p, s), checked by the caller: ((dx, dw, db), the
    plan that ran it), trying ``plan`` (one this function returned) first; dW goes into ``dw`` when
    it has w's shape and dtype and is writeable, db into ``db`` where BackwardPlan.run can write it.
    ``wide``: ``widen(w, p)`` when the caller has it (the forward's, for the same ``w``), else it is
    made here when the plan needs it."""
    thresholds = _dispatch.thresholds
    mode = _avg_mode(window)
    x, w, _, dy = _arrays(x, w, None, dy, _dy_dims(mode))
    xs = None
    if type(plan) is MeansPlan:
        xs = plan.means_for(x, padding)
        fits = xs is not None and plan.plan.fits(dy, xs, w, 0, _BOX_MODE, thresholds)
    elif plan is not None:
        fits = (plan.fits(dy, x, w, padding, _BOX_MODE, thresholds)
                if plan.kernel == _dispatch.BackwardKernel.POLYPHASE_BOX_BACKWARD
                else plan.fits(dy, x, _wide_view(w, window[0], wide), padding, mode, thresholds))
    if plan is None or not fits:
        xs = None
        plan = _avg_backward_call(x.shape, w.shape, dy.shape, x.dtype.char, check_padding(padding), thresholds,
                                  window)
    if type(plan) is MeansPlan:   # w's own gradient; dx the means' adjoint of dx of the means
        if xs is None:
            xs = plan.means(x)
        dxs, dw, db = plan.plan.run(dy, xs, w, compute_dx, get_num_threads(), dw, db)
        dx = None
        if compute_dx:
            dx = np.empty(x.shape, dtype=x.dtype)
            _conv.box_adjoint(dxs, dx, plan.padding[0], plan.padding[1], get_num_threads())
        return (dx, dw, db), plan
    if plan.kernel == _dispatch.BackwardKernel.POLYPHASE_BOX_BACKWARD:   # w's own gradient, no fold
        return plan.run(dy, x, w, compute_dx, get_num_threads(), dw, db), plan
    if wide is None or wide.dtype != w.dtype or wide.shape != _wide_shape(w.shape, window[0]):
        wide = widen(w, window[0])
    dx, dwide, db = plan.run(dy, x, wide, compute_dx, get_num_threads(), None, db)
    if not (isinstance(dw, np.ndarray) and dw.shape == w.shape and dw.dtype == w.dtype and dw.flags.writeable
            and dw.flags.c_contiguous and not np.shares_memory(dw, dwide)):
        dw = None
    return (dx, fold(dwide, dw, window[0]), db), plan


def _wide_view(w, p, wide):
    """What a widened-kernel plan's fits() is shown: ``wide`` when it has the widened shape and
    w's dtype (it is filled before the plan runs), else an empty array of that shape."""
    shape = _wide_shape(w.shape, p)
    if wide is not None and wide.dtype == w.dtype and wide.shape == shape:
        return wide
    return np.empty(shape, dtype=w.dtype)


def _wide_shape(w_shape, p):
    return (w_shape[0], w_shape[1], w_shape[2] + p - 1, w_shape[3] + p - 1)
