"""Full convolution and Easy Convolution (mode K), forward and backward.

Public entry points of the kernels in ``ecp/_kernels/_conv.pyx``. Layout is NCHW; the
convolution is a cross-correlation (no kernel flip, as in every deep-learning library),
stride 1, with optional zero padding.

Mode K picks one pixel of every 2x2 pooling window, row-major:
``0`` top-left, ``1`` top-right, ``2`` bottom-left, ``3`` bottom-right, i.e. the kept pixel
is at row offset ``K // 2`` and column offset ``K % 2``.
"""
import functools
import os

import numpy as np

from ._kernels import _conv
from ._threads import get_num_threads
from ._validation import (
    INT_MAX,
    as_float_array,
    check_dims,
    check_grad_dims,
    check_int,
    check_mode,
    check_padding,
    kernel_ready,
)

__all__ = ["conv2d", "conv2d_backward", "easy_conv2d", "easy_conv2d_backward", "conv2d_output_shape",
           "clear_scratch"]

# How the kernels cut the work (see _kernels/_conv.pyx): into items of about ITEM_COLUMNS pixels
# of the full convolution's output (the GEMM's n; an easy convolution computes a quarter of
# them) -- several whole samples when maps are small; when a sample has half as many pixels
# again as that, the forward pass cuts it into blocks of output rows (the backward pass keeps
# whole samples, whose input gradients overlap). Sample items come in a count rounded up to a
# multiple of the machine's cores, so the threads get even shares; an item's unrolled windows
# stay within COLS_BUDGET elements (4 MB in float32) where the shapes allow. Nothing here depends
# on the thread count of a call, so neither do the results.
ITEM_COLUMNS = 512
COLS_BUDGET = 1 << 20
# The cores this process may run on (not OMP_NUM_THREADS, so that the plan, and with it the
# summation order of dW, is the same whatever thread count a run asks for). The backward sums dW
# in one slot per core, each a contiguous run of items holding an equal share of the samples, so
# a run on all the cores gives each thread one slot. (Twice as many slots would serve thread
# counts that do not divide the cores, e.g. 3 of 4, but on the paper's easy conv2 with 2 cores
# they came 12, 13, 12, 13 samples and the threads 24 against 26: 4% lost, and a quarter more
# slot sums to add.)
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

# Both passes use ecp_direct.h's fused-packing AVX-512 kernels where the CPU has them, else
# im2col + BLAS (+ col2im). ECP_CONV_KERNEL=blas in the environment (read at import) forces the latter.
DIRECT = _conv.DIRECT_SUPPORTED and os.environ.get("ECP_CONV_KERNEL", "").lower() != "blas"
# The direct backward packs each pixel's window one kernel row (kw values) at a time; that pays
# where windows are long: measured on one core, the paper's conv2 (K = 500, 5x5) 1.3x faster than
# im2col + BLAS, but conv1 (K = 25) 2x slower and the VGG-like layer (3x3) 1.3x slower in dW.
DIRECT_BACKWARD_MIN_K = 128
DIRECT_BACKWARD_MIN_KW = 4
# The direct forward's register tile holds 8 filters x 32 pixels and its panels are refilled
# every K products: with few filters and short windows (the paper's conv1, O = 20, K = 25;
# measured O = 20 up to K = 75) im2col + BLAS is faster, its im2col copying whole rows (full
# convolution: 8-25%) or, for Easy Convolution, vectors of every other column (conv1 easy:
# 113 vs 149 us on one core, 66 vs 80 on two); from 32 filters or K >= 96 the direct kernel is
# as fast or faster (conv2: 1.3x full, 2x easy, on one core).
DIRECT_FORWARD_MIN_O = 32
DIRECT_FORWARD_MIN_K = 96


def _direct_forward(w_shape):
    k = w_shape[1] * w_shape[2] * w_shape[3]
    return DIRECT and (w_shape[0] >= DIRECT_FORWARD_MIN_O or k >= DIRECT_FORWARD_MIN_K)


# The direct forward has two forms (ecp_direct.h). The panel kernel packs the windows of a run
# of same-row pixels per (c, i, j): cheap for long rows, dear for rows of a few pixels. The
# pixel-rows kernel packs a pixel's window per (c, i) (or reads it in place) and holds 8 pixels x
# 32 filters per tile, so it wastes lanes unless the filters fill whole vectors. Measured on one
# core, when the pixel-rows kernel still packed every window: the paper's easy conv2 (rows of 4,
# 32 filters) 0.32 ms against the panel kernel's 0.39, its full conv2 (rows of 8) 1.21 vs 1.16;
# since it reads windows in place, the full conv2 takes 0.95 vs 1.20 (0.55 vs 0.67 on two cores)
# -- so pixel rows for rows of <= 8 pixels with at most 1/8 of the lanes idle.
ROWS_KERNEL_MAX_WQ = 8
ROWS_KERNEL_MAX_WASTE = 0.125


def _panel_width(dtype):
    """Pixels (or filters) across the direct kernels' register tile: two AVX-512 vectors."""
    return 32 if np.dtype(dtype) == np.float32 else 16


def _forward_kernel(w_shape, wq, dtype):
    """0: im2col + BLAS, 1: direct panel kernel, 2: direct pixel-rows kernel."""
    if not _direct_forward(w_shape):
        return 0
    nr = _panel_width(dtype)
    lanes = -(-w_shape[0] // nr) * nr
    if wq <= ROWS_KERNEL_MAX_WQ and (lanes - w_shape[0]) / lanes <= ROWS_KERNEL_MAX_WASTE:
        return 2
    return 1


def _backward_kernel(w_shape):
    """"direct", "blas", or "split": dx through the direct kernel, dW and db through im2col +
    BLAS -- for long windows of short rows (3x3, K >= 128), where the direct dx measured faster
    and the direct dW slower (the VGG-like layer on 2 cores: dx 21 vs 27 ms, dW 29 vs 26)."""
    if not DIRECT or w_shape[1] * w_shape[2] * w_shape[3] < DIRECT_BACKWARD_MIN_K:
        return "blas"
    return "direct" if w_shape[3] >= DIRECT_BACKWARD_MIN_KW else "split"


def _group(x_shape, w_shape, out_hw):
    """Whole samples per item."""
    n = x_shape[0]
    pixels = out_hw[0] * out_hw[1]
    per_sample = x_shape[1] * w_shape[2] * w_shape[3] * pixels
    n_items = -(-n * pixels // ITEM_COLUMNS)
    n_items = min(n, -(-n_items // _CORES) * _CORES)
    group = -(-n // max(n_items, 1))
    return max(1, min(group, COLS_BUDGET // max(per_sample, 1)))


def _sample_items(n, group):
    """How many items of whole samples the kernels cut a batch of n into, items of at most
    ``group`` samples: as few as that allows, rounded up to a multiple of the cores (at most n).
    The kernels cut at item * n // items, so the sizes differ by one sample at most and every
    core gets the same number of samples (+-1): the paper's batch of 50 in pairs was 25 items,
    13 against 12 on two cores; it is now 26 items (24 pairs, 2 singles), 25 samples each. The
    backward's dW slots (one per core, see _backward) then hold equal shares too."""
    items = -(-n // max(group, 1))
    return max(1, min(n, -(-items // _CORES) * _CORES))


def _rows(x_shape, w_shape, out_hw):
    """Output rows per forward item: all of them unless one sample is half as large again as an
    item (the paper's full conv1, 24 x 24 = 576 pixels, had been cut into 21 + 3 rows: 471 us
    against 451 for whole samples on one core)."""
    hq, wq = out_hw
    if 2 * hq * wq < 3 * ITEM_COLUMNS:
        return hq
    per_row = x_shape[1] * w_shape[2] * w_shape[3] * wq
    return max(1, min(hq, ITEM_COLUMNS // max(wq, 1), COLS_BUDGET // max(per_row, 1)))


def _arrays(x, w, b=None, dy=None, dy_dims=None):
    """The call's arrays as the kernels take them (x, w, b or None; dy when ``dy_dims`` names its
    dimensions, else None), converted or refused with an error naming the argument. Arrays that
    already are what the kernels take (the steady state of a training loop) pass a few attribute
    checks and are not touched."""
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


def _int(value, name, minimum, maximum):
    """value as a Python int, for the cached calls below (which need hashable arguments and check
    the range): anything else that is not an integer in range gets its error here."""
    return value if type(value) is int else check_int(value, name, minimum, maximum)


def _check_geometry(x_shape, w_shape, padding):
    """Raise unless x (N, C, H, W), w (O, C, kh, kw) and padding make a convolution the kernels
    can run (called from the cached _forward_call / _backward_call)."""
    if w_shape[1] != x_shape[1]:
        raise ValueError(
            f"w has {w_shape[1]} input channels (w.shape[1]) but x has {x_shape[1]} (x.shape[1]); "
            f"they must match: x {x_shape}, w {w_shape}"
        )
    if x_shape[1] == 0 or w_shape[0] == 0:
        raise ValueError(f"x and w need at least one channel and one filter, got x {x_shape}, w {w_shape}")
    if w_shape[2] == 0 or w_shape[3] == 0:
        raise ValueError(f"w must have a kernel of at least 1x1, got w.shape {w_shape}")
    if x_shape[2] == 0 or x_shape[3] == 0:
        raise ValueError(f"x must have H >= 1 and W >= 1, got x.shape {x_shape}")
    if x_shape[1] * w_shape[2] * w_shape[3] > INT_MAX:
        raise ValueError(
            f"x.shape[1] * kh * kw = {x_shape[1] * w_shape[2] * w_shape[3]} exceeds {INT_MAX}, "
            "the largest matrix dimension the BLAS takes"
        )
    hp, wp = x_shape[2] + 2 * padding, x_shape[3] + 2 * padding
    if w_shape[2] > hp or w_shape[3] > wp:
        raise ValueError(
            f"kernel {w_shape[2]}x{w_shape[3]} (w.shape[2:]) is larger than the padded input "
            f"{hp}x{wp} (x.shape[2:] {x_shape[2:]} with padding={padding})"
        )
    ho, wo = hp - w_shape[2] + 1, wp - w_shape[3] + 1
    if ho * wo > INT_MAX:
        raise ValueError(
            f"the output plane would have {ho}x{wo} = {ho * wo} pixels, more than {INT_MAX}, "
            f"the largest matrix dimension the BLAS takes (x.shape[2:] {x_shape[2:]}, padding={padding})"
        )


def clear_scratch():
    """Release the scratch buffers the convolution kernels keep for the calling thread.

    Each Python thread keeps the kernels' scratch (unrolled windows, packed panels, per-slot dW
    sums) between calls, sized by the largest call so far, because allocating it afresh costs
    page faults on every call. This frees it; the next call allocates it again.
    """
    _conv.clear_scratch()


def conv2d_output_shape(x_shape, w_shape, padding=0):
    """(N, O, H + 2p - kh + 1, W + 2p - kw + 1): the shape :func:`conv2d` returns."""
    n, _, h, wd = x_shape
    o, _, kh, kw = w_shape
    return (n, o, h + 2 * padding - kh + 1, wd + 2 * padding - kw + 1)


def _easy_shape(x_shape, w_shape, padding):
    n, o, ho, wo = conv2d_output_shape(x_shape, w_shape, padding)
    if ho < 2 or wo < 2:
        raise ValueError(
            f"the convolution output {ho}x{wo} (x.shape[2:] {tuple(x_shape[2:])}, kernel "
            f"{w_shape[2]}x{w_shape[3]}, padding={padding}) is too small to pool with a 2x2 window: "
            "Easy Convolution needs an output of at least 2x2"
        )
    return (n, o, ho // 2, wo // 2)


# Below this many multiply-adds a convolution call runs on one thread (see pool.py).
PARALLEL_MIN_MACS = 1 << 18


def _threaded(w_shape, out_shape):
    """Whether a call of this many multiply-adds runs on the threads :func:`get_num_threads` gives."""
    macs = out_shape[0] * out_shape[1] * out_shape[2] * out_shape[3] * w_shape[1] * w_shape[2] * w_shape[3]
    return macs >= PARALLEL_MIN_MACS


def _bias(b, w):
    return b if b is not None else np.zeros(w.shape[0], dtype=w.dtype)


def _direct_group(n, pixels, nr):
    """Samples per item of the direct kernels, whose scratch does not grow with the item: the
    fewest samples whose output pixels fill whole panels of ``nr`` pixels (32 in float32, 16 in
    float64; up to 4 panels' worth), so that few panels run part-empty and the items are many, to
    share evenly among the threads (the paper's conv2: 2 samples of 16 easy pixels, 1 of 64 full)."""
    best, best_waste = 1, 1.0
    for g in range(1, -(-4 * nr // max(pixels, 1)) + 1):
        waste = (-(g * pixels) % nr) / (g * pixels)
        if waste < best_waste:
            best, best_waste = g, waste
    return max(1, min(best, n))


def _plan(x_shape, w_shape, dtype, padding, stride, direct, backward=False):
    """(samples per item, output rows per forward item). For im2col + BLAS, a forward item is
    planned on the FULL convolution's output for both kernels (an easy-convolution item covers
    the same samples as a full one, its scratch a quarter of the full one's), a backward item on
    the call's own output (an easy one holds about four times the samples, so that its dW GEMM
    sums as long a run, in fewer GEMM calls). Measured on two cores: the paper's easy conv1
    backward (dW only) took 79-82 us in 50 items of 1 sample against 68-71 in its own plan's 14
    items of 3-4 while the host had placed the two vCPUs far apart (a core-to-core round trip of
    350 ns), 59 either way with them close (60 ns), its forward 55-56 either way; with im2col +
    BLAS, the easy conv2's backward took 718 / 722 us in 8 / 2 items, its forward 279 / 320 (so
    the forward keeps the full plan). Rows are planned on the call's own output: the full conv1's
    24 rows exceed an item, its easy 12 rows do not (cutting them 10 + 2 cost 1.3x on two cores).
    The direct kernels' scratch is a few panels, whatever the item."""
    full_hw = conv2d_output_shape(x_shape, w_shape, padding)[2:]
    out_hw = full_hw if stride == 1 else (full_hw[0] // 2, full_hw[1] // 2)
    rows = _rows(x_shape, w_shape, out_hw)
    if direct:
        return _direct_group(x_shape[0], out_hw[0] * out_hw[1], _panel_width(dtype)), rows
    return _group(x_shape, w_shape, out_hw if backward else full_hw), rows


def _tunables():
    """The module settings above that a call's plan reads (tests, and users, may change them)."""
    return (DIRECT, ITEM_COLUMNS, COLS_BUDGET, DIRECT_BACKWARD_MIN_K, DIRECT_BACKWARD_MIN_KW,
            DIRECT_FORWARD_MIN_O, DIRECT_FORWARD_MIN_K, ROWS_KERNEL_MAX_WQ, ROWS_KERNEL_MAX_WASTE,
            PARALLEL_MIN_MACS, _CORES)


def _output(x_shape, w_shape, padding, mode):
    """(output shape, stride, oy, ox) of a call -- ``mode`` None for the full convolution -- or
    the error that names what does not fit."""
    check_dims(x_shape, "x")
    check_dims(w_shape, "w")
    padding = check_padding(padding)
    _check_geometry(x_shape, w_shape, padding)
    if mode is None:
        return conv2d_output_shape(x_shape, w_shape, padding), 1, 0, 0
    oy, ox = check_mode(mode)
    return _easy_shape(x_shape, w_shape, padding), 2, oy, ox


@functools.lru_cache(maxsize=1024)
def _forward_call(x_shape, w_shape, b_shape, dtype, padding, mode, tunables):
    """The :class:`~ecp._kernels._conv.ForwardPlan` of a forward call (output shape, sampling
    grid, kernel, items of samples, rows per item, threaded or not) for arrays the kernels take
    (see _arrays), ``dtype`` their character code ("f" or "d"); or the error that names what does
    not fit. Cached on the shapes and the settings (``tunables``): checking and planning cost 3 us
    a call, 4% of the paper's easy conv1 forward on two cores (errors are not cached: a bad call
    raises every time)."""
    out_shape, stride, oy, ox = _output(x_shape, w_shape, padding, mode)
    if b_shape is not None:
        check_dims(b_shape, "b")
        if b_shape != (w_shape[0],):
            raise ValueError(f"b must have shape ({w_shape[0]},) (one bias per filter of w), got {b_shape}")
    kernel = _forward_kernel(w_shape, out_shape[3], dtype)
    group, rows = _plan(x_shape, w_shape, dtype, padding, stride, kernel != 0)
    return _conv.ForwardPlan(x_shape, w_shape, out_shape, dtype, padding, mode, stride, oy, ox, kernel,
                             _sample_items(x_shape[0], group), rows, _threaded(w_shape, out_shape),
                             tunables)


# BackwardPlan's codes of the backward kernels
_BACKWARD_KERNELS = {"blas": 0, "direct": 1, "split": 2}


@functools.lru_cache(maxsize=1024)
def _backward_call(x_shape, w_shape, dy_shape, dtype, padding, mode, tunables):
    """The :class:`~ecp._kernels._conv.BackwardPlan` of a backward call (sampling grid, kernel,
    items of samples, items of the split kernel's direct dx pass, dW slots, threaded or not),
    checked and cached as :func:`_forward_call`."""
    out_shape, stride, oy, ox = _output(x_shape, w_shape, padding, mode)
    check_dims(dy_shape, "dy")
    check_grad_dims(dy_shape, out_shape)
    kernel = _backward_kernel(w_shape)
    group, _ = _plan(x_shape, w_shape, dtype, padding, stride, kernel == "direct", backward=True)
    dx_group = _plan(x_shape, w_shape, dtype, padding, stride, True)[0] if kernel == "split" else 1
    return _conv.BackwardPlan(x_shape, w_shape, dy_shape, dtype, padding, mode, stride, oy, ox,
                              _BACKWARD_KERNELS[kernel], _sample_items(x_shape[0], group),
                              _sample_items(x_shape[0], dx_group), _CORES, _threaded(w_shape, dy_shape),
                              tunables)


# A layer calls _forward / _backward with the plan of its previous call, which runs the call
# straight away when it fits (the same shapes, dtype, padding, mode and settings: checked in C by
# the plan), skipping _arrays, the cache lookup and the argument conversions of the kernels' entry
# points. Trained side by side in one process with the previous path (the two vCPUs close):
# ECP's conv time a batch 561 against 582 us; max pooling's 2157 against 2140, within its noise.

def _forward(x, w, b, padding, mode, plan=None):
    """conv2d (mode None) or easy_conv2d (mode K, an int its callers have checked: the public
    functions and EasyConvPool2D): (y, the plan that ran it), trying ``plan`` first."""
    if plan is not None and plan.fits(x, w, b, padding, mode, _tunables()):
        return plan.run(x, w, b, get_num_threads()), plan
    x, w, b, _ = _arrays(x, w, b)
    padding = _int(padding, "padding", 0, INT_MAX)
    plan = _forward_call(x.shape, w.shape, None if b is None else b.shape, x.dtype.char, padding, mode,
                         _tunables())
    return plan.run(x, w, _bias(b, w), get_num_threads()), plan


def _backward(dy, x, w, padding, mode, compute_dx, plan=None, dw=None, db=None):
    """conv2d_backward (mode None) or easy_conv2d_backward (mode K): ((dx, dw, db), the plan that
    ran it), trying ``plan`` first; dW and db go into ``dw`` and ``db`` where BackwardPlan.run
    can write them (a layer's gradients), else into new arrays."""
    if plan is not None and plan.fits(dy, x, w, padding, mode, _tunables()):
        return plan.run(dy, x, w, compute_dx, get_num_threads(), dw, db), plan
    x, w, _, dy = _arrays(x, w, None, dy, "(N, O, Ho, Wo)" if mode is None else "(N, O, Ho//2, Wo//2)")
    padding = _int(padding, "padding", 0, INT_MAX)
    plan = _backward_call(x.shape, w.shape, dy.shape, x.dtype.char, padding, mode, _tunables())
    return plan.run(dy, x, w, compute_dx, get_num_threads(), dw, db), plan


def conv2d(x, w, b=None, padding=0):
    """Full 2-D convolution (cross-correlation), stride 1.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), float32 or float64
    w : ndarray, shape (O, C, kh, kw), same dtype as ``x``
    b : ndarray, shape (O,), or None
    padding : int >= 0
        Zeros added on every side of the input.

    Returns
    -------
    y : ndarray, shape (N, O, H + 2p - kh + 1, W + 2p - kw + 1), dtype of ``x``

    Examples
    --------
    >>> import numpy as np, ecp
    >>> x = np.ones((1, 1, 4, 4), np.float32); w = np.ones((2, 1, 3, 3), np.float32)
    >>> ecp.conv2d(x, w).shape
    (1, 2, 2, 2)
    >>> float(ecp.conv2d(x, w, padding=1)[0, 0, 0, 0])
    4.0
    """
    return _forward(x, w, b, padding, None)[0]


def conv2d_backward(dy, x, w, padding=0, compute_dx=True):
    """Gradients of :func:`conv2d` with respect to ``x``, ``w`` and ``b``.

    Parameters
    ----------
    dy : ndarray, shape of ``conv2d(x, w, padding=padding)``, dtype of ``x``
    x, w, padding : as given to :func:`conv2d`
    compute_dx : bool, default True
        False skips the input gradient (a network's first layer needs none); ``dx`` is then None.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W), or None
    dw : ndarray, shape (O, C, kh, kw)
    db : ndarray, shape (O,)

    Examples
    --------
    >>> import numpy as np, ecp
    >>> x = np.ones((1, 1, 4, 4)); w = np.ones((1, 1, 3, 3))
    >>> dx, dw, db = ecp.conv2d_backward(np.ones((1, 1, 2, 2)), x, w)
    >>> dx.shape, dw.shape, float(db[0])
    ((1, 1, 4, 4), (1, 1, 3, 3), 4.0)
    """
    return _backward(dy, x, w, padding, None, compute_dx)[0]


def easy_conv2d(x, w, b=None, mode=0, padding=0):
    """Easy Convolution: only the outputs of :func:`conv2d` that Random Pooling with mode K keeps.

    Equal to ``conv2d(x, w, b, padding)[:, :, K//2::2, K%2::2]`` cropped to (Ho//2, Wo//2),
    and to a stride-2 convolution of the input shifted by (K//2, K%2), but computing a quarter of
    the outputs and never allocating the full-size map.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), float32 or float64
    w : ndarray, shape (O, C, kh, kw), same dtype
    b : ndarray, shape (O,), or None
    mode : int in 0..3
        Pixel kept in each 2x2 window, row-major: 0 top-left, 1 top-right, 2 bottom-left,
        3 bottom-right.
    padding : int >= 0

    Returns
    -------
    y : ndarray, shape (N, O, Ho // 2, Wo // 2) with (Ho, Wo) the output size of :func:`conv2d`

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
    """
    return _forward(x, w, b, padding, _int(mode, "mode", 0, 3))[0]


def easy_conv2d_backward(dy, x, w, mode=0, padding=0, compute_dx=True):
    """Gradients of :func:`easy_conv2d`: ``(dx, dw, db)``.

    Equal to :func:`conv2d_backward` of ``dy`` scattered to the mode-K positions of the full
    output (zeros elsewhere), computed without the full-size gradient.

    Parameters
    ----------
    dy : ndarray, shape of ``easy_conv2d(x, w, mode=mode, padding=padding)``
    x, w, mode, padding : as given to :func:`easy_conv2d`
    compute_dx : bool, default True
        False skips the input gradient; ``dx`` is then None.

    Returns
    -------
    dx : ndarray (N, C, H, W) or None, dw : ndarray (O, C, kh, kw), db : ndarray (O,)

    Examples
    --------
    >>> import numpy as np, ecp
    >>> x = np.ones((1, 1, 6, 6)); w = np.ones((1, 1, 3, 3))
    >>> dx, dw, db = ecp.easy_conv2d_backward(np.ones((1, 1, 2, 2)), x, w, mode=1)
    >>> float(db[0]), dw.shape
    (4.0, (1, 1, 3, 3))
    """
    return _backward(dy, x, w, padding, _int(mode, "mode", 0, 3), compute_dx)[0]
