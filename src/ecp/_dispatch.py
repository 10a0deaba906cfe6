"""Kernel choice and work cutting of the convolution calls: which kernel runs, in how many items.

Every decision here is a pure function of the call's shapes, dtype and :data:`thresholds`, never of
the thread count of a call, so a call's result (its summation order) is the same whatever
:func:`ecp.num_threads` says. The table's ``cores`` is the machine's core count, or under
deterministic mode (:func:`set_deterministic`, ``ECP_DETERMINISTIC=1``) the fixed
:data:`DETERMINISTIC_CORES`, so that the plan, and the result bits, depend on the shapes alone.
The thresholds live in ONE table, :class:`Thresholds`; each value's why points to the benchmark
that justifies it (``bench/bench_conv.py``, ``ecp bench``; the design and its numbers are in
``docs/performance.md``).

To try other values at run time, replace the table (the plan cache sees it: plans are keyed on it)::

    import dataclasses
    from ecp import _dispatch
    _dispatch.thresholds = dataclasses.replace(_dispatch.thresholds, item_columns=1024)
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from ._kernels import _conv
from ._validation import env_flag

__all__ = ["ForwardKernel", "BackwardKernel", "Thresholds", "thresholds", "forward_kernel", "backward_kernel",
           "plan_forward", "plan_backward", "direct_grid", "sample_items", "threaded", "DETERMINISTIC_CORES",
           "set_deterministic", "deterministic", "kernel_isa", "winograd", "polyphase", "polyphase_box",
           "polyphase_tall", "box_means"]


# The kernel codes, defined once with the kernels (_kernels/_conv.pxd) and seen here as IntEnums:
# ForwardKernel IM2COL_BLAS / DIRECT_PANEL / DIRECT_ROWS / WINOGRAD, BackwardKernel BLAS / DIRECT / SPLIT /
# WINOGRAD_BACKWARD.
ForwardKernel = _conv.ForwardKernel
BackwardKernel = _conv.BackwardKernel


def _cores():
    """The cores this process may run on (not OMP_NUM_THREADS: the plan must not depend on it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


#: The virtual core count of the plan under deterministic mode: items and dW slots are cut for this
#: many cores whatever the machine has (docs/architecture.md, "Determinism", gives its cost).
DETERMINISTIC_CORES = 8


def _env_deterministic():
    """ECP_DETERMINISTIC as a bool (off when unset; a bad value is a ValueError naming it)."""
    return env_flag("ECP_DETERMINISTIC", False)


_deterministic = _env_deterministic()


def _plan_cores():
    """The core count the plan is cut for: DETERMINISTIC_CORES under deterministic mode, else _cores()."""
    return DETERMINISTIC_CORES if _deterministic else _cores()


@dataclasses.dataclass(frozen=True, eq=False)
class Thresholds:
    """The settings every convolution plan reads; one immutable table.

    Compared (and hashed) by identity: a plan made under one table is reused only while that same
    table is :data:`thresholds`, so replacing it (``dataclasses.replace``) invalidates every cached
    plan at the cost of one attribute read a call.
    """

    # Whether the direct kernels run: ISA is not "generic" and ECP_CONV_KERNEL is not "blas"
    # (read at import; "blas" forces im2col + BLAS for both passes).
    direct: bool = dataclasses.field(default_factory=lambda: bool(
        _conv.DIRECT_SUPPORTED and os.environ.get("ECP_CONV_KERNEL", "").lower() != "blas"))
    # Output pixels of the full convolution per work item (the GEMM's n): large enough for a
    # GEMM near peak, small enough for many items to share among the threads (bench_conv.py).
    item_columns: int = 512
    # Elements of unrolled windows per item where the shapes allow (4 MB in float32: within L2).
    cols_budget: int = 1 << 20
    # The direct backward packs a window one kernel row at a time, which pays for long windows
    # (K = C*kh*kw) of long rows only: the paper's conv2 (K = 500, 5x5) gains, conv1 (K = 25) and
    # the VGG-like 3x3 layer lose in dW (bench_conv.py, backward rows).
    direct_backward_min_k: int = 128
    direct_backward_min_kw: int = 4
    # The direct forward's tile holds 8 filters x 32 pixels, refilled every K products: with few
    # filters and short windows (the paper's conv1: O = 20, K = 25) im2col + BLAS is faster; from
    # 32 filters or K >= 96 the direct kernel is as fast or faster (bench_conv.py, forward rows).
    direct_forward_min_o: int = 32
    direct_forward_min_k: int = 96
    # The pixel-rows kernel serves short output rows (<= 8 pixels, e.g. the paper's conv2) where
    # the panel kernel's per-tap packing dominates, if the filters leave at most 1/8 of the
    # vector lanes idle (bench_conv.py, conv2 forward and easy forward).
    rows_kernel_max_wq: int = 8
    rows_kernel_max_waste: float = 0.125
    # Winograd F(2x2, 3x3) for the stride-1 3x3 convolution (forward, dx, dW): 2.25x fewer
    # multiplies than the direct kernels; its transforms cost more than that saves below 32
    # channels in or filters out, and on output rows under 14 pixels (runs of a few tiles fill
    # few vector lanes; the 2x2 tiles overhang 7x7 planes by a quarter) (docs/performance.md,
    # section 13).
    winograd: bool = True
    winograd_min_c: int = 32
    winograd_min_o: int = 32
    winograd_min_wq: int = 14
    # The stride-2 3x3 forward (the easy convolution of 3x3 windows) as its four polyphase
    # stride-1 sub-convolutions by Winograd F(2x2, 2x2): 25 multiplies per 2 x 2 outputs instead
    # of 36; ForwardKernel.WINOGRAD runs it. Its transforms cost more than that saves on output
    # rows under 14 pixels (runs of few tiles fill few vector lanes), under 64 channels in or
    # filters out, and below 4 samples (a fixed cost per call: 0.54-0.83x at N = 1, 0.8-1.04x at
    # N = 2) (docs/performance.md, section 13).
    polyphase: bool = True
    polyphase_min_n: int = 4
    polyphase_min_c: int = 64
    polyphase_min_o: int = 64
    polyphase_min_wq: int = 14
    # The stride-2 4x4 forward (easy average pooling of 3x3 layers: the box-widened kernel) by the
    # same kernel, every phase 2x2: 36 multiplies per 2 x 2 outputs instead of 64; the 3x3 floors,
    # and at least this many output pixels a call (samples x plane): 4 x 14 x 14 ran 0.84-0.87x
    # the direct kernel, 16 x 14 x 14 and 4 x 28 x 28 1.17-1.2x (docs/performance.md, section 13).
    # The stride-2 3x3 forward on tall tiles (ForwardKernel.POLYPHASE_TALL: 4 x 2 outputs a tile,
    # F(4, 2) down the rows, 45 multiplies per 8 outputs against 50) where, in whole blocks of
    # tiles as the items cut them, that leaves at most polyphase_tall_max_cost of the square
    # tiles' products: the VGG-like layer (16 samples, 28 x 28 outputs, 2 cores) 0.92; 14 output
    # rows (half a tile row wasted) 1.03 and 4 samples at 28 x 28 (the items' last blocks) 0.97
    # stay on square tiles (docs/performance.md, section 13).
    # And only where the tall tiles' transformed filters (45*C*O values, streamed from L2 by the
    # products) take at most polyphase_tall_max_u_bytes: 737 KB (float32, C = O = 64) gained
    # 2-6%; 1.47 MB (float64 there, or 128 channels by 64 filters) and 1.66 MB (96 x 96) lost 3-7%.
    polyphase_tall: bool = True
    polyphase_tall_max_cost: float = 0.95
    polyphase_tall_max_u_bytes: int = 786432
    polyphase_4x4: bool = True
    polyphase_4x4_min_pixels: int = 2048
    # Easy average pooling of 3x3 layers (2x2 window) as the stride-2 3x3 polyphase kernel on x's
    # 2x2 box sums (ForwardKernel.POLYPHASE_BOX): 25 multiplies per 2 x 2 outputs instead of the
    # widened 4x4 kernel's 36, the box's 11 adds per patch row in its input transform; on the
    # shapes the 4x4 kernel takes (docs/performance.md, section 13).
    polyphase_box: bool = True
    # The backward of those calls: dW and db by the same split (25 or 36 multiplies per 2 x 2
    # outputs against 36 or 64), and dx by the polyphase split of its output (its four phases,
    # each a stride-1 convolution of dY by F(2x2, 2x2): the same counts per 4 x 4 block of dx);
    # BackwardKernel.WINOGRAD_BACKWARD, on the shapes the forward takes; of 3x3 filters, only up
    # to 64 channels in and from output rows of 28 pixels (2 threads against the direct backward:
    # 1.10-1.24x at 64 channels and 28 x 28 outputs, 0.70-1.00x at 14 x 14, 0.89-0.96x at 128
    # channels, where du and the products' buffers outgrow the L2) (docs/performance.md,
    # section 13).
    polyphase_backward: bool = True
    polyphase_backward_max_c: int = 64
    polyphase_backward_min_wq: int = 28
    # Easy average pooling over the 2x2 window where the box kernels do not run (5x5 layers, say):
    # the stride-2 convolution of x's 2x2 box means (one pass over x, _conv.box_means) with w
    # itself, k^2 multiplies per output instead of the widened kernel's (k + 1)^2, and dx the
    # means' adjoint of its dx (one pass): no widen nor fold (docs/performance.md, section 14).
    box_means: bool = True
    # ... from this many multiply-adds of the convolution on the means (pooled pixels x O x C x kh x
    # kw): below, its extra array and pass cost more than the taps save (2x3x8x8 with 8 3x3
    # filters, 6,912: 0.87-0.94x; 1x20x12x12 with 32 5x5 filters, 256,000: 1.8-2.0x).
    box_means_min_macs: int = 1 << 15
    # Below this many multiply-adds a call runs on one thread: starting the team costs more.
    parallel_min_macs: int = 1 << 18
    # Cores of the machine (DETERMINISTIC_CORES under deterministic mode): sample items come in
    # multiples of it (even shares), and the backward sums dW in one slot per core (and runs on at
    # most that many threads).
    cores: int = dataclasses.field(default_factory=lambda: _plan_cores())


#: The table in force. Replace it (never mutate: it is frozen) to change a setting at run time.
thresholds = Thresholds()


def deterministic() -> bool:
    """Whether deterministic mode is on (see :func:`set_deterministic`).

    Returns
    -------
    bool
        True when the plan is cut for :data:`DETERMINISTIC_CORES` virtual cores.
    """
    return _deterministic


def set_deterministic(flag: bool) -> None:
    """Make the convolutions' summation order depend on the shapes alone, or on the machine again.

    Process-wide. By default the work plan (items of whole samples, dW slots) follows the cores
    this process may run on, so results are bitwise equal for any thread count on one machine but
    may differ in the last bits between machines with different core counts. With ``flag`` True
    the plan is cut for :data:`DETERMINISTIC_CORES` virtual cores whatever the machine has, so
    any two machines with the same instruction set level (the same kernels: AVX-512 or not) give
    the same bits. It costs a few percent on machines with fewer cores (more, smaller items and
    more dW slots to add) and caps the backward pass at that many threads. ``ECP_DETERMINISTIC=1``
    in the environment turns it on at import. Replaces :data:`thresholds` (``cores``), so cached
    plans are remade.

    Parameters
    ----------
    flag : bool
        True for the machine-independent plan, False for the plan that follows the cores.

    Raises
    ------
    TypeError
        If ``flag`` is not a bool.

    Examples
    --------
    >>> import ecp
    >>> ecp.set_deterministic(True)
    >>> ecp.set_deterministic(False)
    """
    global _deterministic, thresholds
    if not isinstance(flag, (bool, np.bool_)):
        raise TypeError(f"flag must be a bool, got {type(flag).__name__}")
    _deterministic = bool(flag)
    thresholds = dataclasses.replace(thresholds, cores=_plan_cores())


def kernel_isa() -> str:
    """The instruction set the direct convolution kernels run on in this process.

    Fixed at import: the best this CPU has, or the level ``ECP_ISA`` names (docs/usage.md).

    Returns
    -------
    str
        ``"avx512"``, ``"avx2"``, ``"neon"``, or ``"generic"`` (no direct kernels: im2col + BLAS
        everywhere).
    """
    return _conv.ISA


def panel_width(dtype) -> int:
    """Pixels (or filters) across the direct kernels' register tile: two vectors of the ISA in use
    (at "generic", which has none, AVX-512's: the value then only shapes im2col items)."""
    return _conv.direct_nr(dtype) or (32 if np.dtype(dtype) == np.float32 else 16)


def _direct_forward(w_shape, t):
    k = w_shape[1] * w_shape[2] * w_shape[3]
    return t.direct and (w_shape[0] >= t.direct_forward_min_o or k >= t.direct_forward_min_k)


def direct_grid(stride, offset=(0, 0)) -> bool:
    """Whether the direct kernels take this sampling grid: strides 1 and 2 with offsets within the
    stride (every 2x2-window call). Offsets of a pooling window larger than its stride run on
    im2col + BLAS, whose index arithmetic takes any offset, as do strides 3 and 4 (with im2col
    routines of their own, ecp_im2col_sn.h)."""
    return stride <= 2 and offset[0] < stride and offset[1] < stride


def forward_kernel(w_shape, wq, dtype, t=None, direct=True) -> ForwardKernel:
    """The forward kernel for filters ``w_shape`` and output rows of ``wq`` pixels (``direct``
    False: im2col + BLAS whatever the table says)."""
    t = thresholds if t is None else t
    if not (direct and _direct_forward(w_shape, t)):
        return ForwardKernel.IM2COL_BLAS
    nr = panel_width(dtype)
    lanes = -(-w_shape[0] // nr) * nr
    if wq <= t.rows_kernel_max_wq and (lanes - w_shape[0]) / lanes <= t.rows_kernel_max_waste:
        return ForwardKernel.DIRECT_ROWS
    return ForwardKernel.DIRECT_PANEL


def backward_kernel(w_shape, t=None, direct=True) -> BackwardKernel:
    """The backward kernel for filters ``w_shape``: SPLIT for long windows of short rows (3x3,
    K >= 128), where the direct dx wins and the direct dW loses (``direct`` False: BLAS)."""
    t = thresholds if t is None else t
    if not (direct and t.direct) or w_shape[1] * w_shape[2] * w_shape[3] < t.direct_backward_min_k:
        return BackwardKernel.BLAS
    return BackwardKernel.DIRECT if w_shape[3] >= t.direct_backward_min_kw else BackwardKernel.SPLIT


def group(x_shape, w_shape, out_hw, t=None) -> int:
    """Whole samples per im2col + BLAS item: about ``item_columns`` output pixels, in a count of
    items that is a multiple of the cores, the unrolled windows within ``cols_budget``."""
    t = thresholds if t is None else t
    n = x_shape[0]
    pixels = out_hw[0] * out_hw[1]
    per_sample = x_shape[1] * w_shape[2] * w_shape[3] * pixels
    n_items = -(-n * pixels // t.item_columns)
    n_items = min(n, -(-n_items // t.cores) * t.cores)
    g = -(-n // max(n_items, 1))
    return max(1, min(g, t.cols_budget // max(per_sample, 1)))


def sample_items(n, group, t=None) -> int:
    """Items of whole samples a batch of ``n`` is cut into, each of at most ``group`` samples: as
    few as that allows, rounded up to a multiple of the cores (at most n). The kernels cut at
    ``item * n // items``, so every core gets the same number of samples (+-1), and so do the
    backward's dW slots."""
    t = thresholds if t is None else t
    items = -(-n // max(group, 1))
    return max(1, min(n, -(-items // t.cores) * t.cores))


def block_items(n, t=None) -> int:
    """Items of whole samples for the Winograd and polyphase kernels, whose tile blocks (NR tiles
    each) run on across the samples of an item: one item per core (at most n), so that only each
    item's last block is part-filled, not each sample's (a 28 x 28 output is 196 tiles, 6.1 blocks
    of 32: one sample an item computed 224 tiles' products for 196; docs/performance.md, section
    13). The forwards' outputs do not depend on the items; dW's sums follow them, and they depend
    on the cores of the table, not on the thread count."""
    t = thresholds if t is None else t
    return sample_items(n, -(-n // t.cores), t)


def rows(x_shape, w_shape, out_hw, t=None) -> int:
    """Output rows per forward item: all of them unless one sample is half as large again as an
    item, then blocks of about ``item_columns`` pixels within ``cols_budget``."""
    t = thresholds if t is None else t
    hq, wq = out_hw
    if 2 * hq * wq < 3 * t.item_columns:
        return hq
    per_row = x_shape[1] * w_shape[2] * w_shape[3] * wq
    return max(1, min(hq, t.item_columns // max(wq, 1), t.cols_budget // max(per_row, 1)))


def direct_group(n, pixels, nr) -> int:
    """Samples per item of the direct kernels (whose scratch does not grow with the item): the
    fewest samples whose output pixels fill whole panels of ``nr`` pixels (up to 4 panels' worth),
    so that few panels run part-empty and the items are many."""
    best, best_waste = 1, 1.0
    for g in range(1, -(-4 * nr // max(pixels, 1)) + 1):
        waste = (-(g * pixels) % nr) / (g * pixels)
        if waste < best_waste:
            best, best_waste = g, waste
    return max(1, min(best, n))


def _plan(x_shape, w_shape, dtype, full_hw, stride, direct, backward, t):
    """(samples per item, output rows per forward item). An im2col + BLAS forward item is planned
    on the FULL convolution's output for both passes' forward (an easy item covers the same
    samples as a full one), a backward item on the call's own output (an easy one then holds
    about four times the samples: longer dW sums in fewer GEMM calls); rows on the call's own
    output. The direct kernels' scratch is a few panels, whatever the item."""
    out_hw = full_hw if stride == 1 else (full_hw[0] // stride, full_hw[1] // stride)
    r = rows(x_shape, w_shape, out_hw, t)
    if direct:
        return direct_group(x_shape[0], out_hw[0] * out_hw[1], panel_width(dtype)), r
    return group(x_shape, w_shape, out_hw if backward else full_hw, t), r


def winograd(x_shape, w_shape, out_hw, stride, offset=(0, 0), t=None) -> bool:
    """Whether a stride-1 3x3 call (no grid offset) with output planes ``out_hw`` runs Winograd
    F(2x2, 3x3): the direct kernels on, at least ``winograd_min_c`` channels in,
    ``winograd_min_o`` filters out and ``winograd_min_wq`` pixels an output row."""
    t = thresholds if t is None else t
    return (t.direct and t.winograd and stride == 1 and tuple(offset) == (0, 0)
            and tuple(w_shape[2:]) == (3, 3) and x_shape[1] >= t.winograd_min_c
            and w_shape[0] >= t.winograd_min_o and out_hw[0] > 0 and out_hw[1] >= t.winograd_min_wq)


def polyphase(x_shape, w_shape, out_hw, stride, t=None) -> bool:
    """Whether a stride-2 3x3 (or, ``polyphase_4x4`` on, 4x4) forward call with output planes
    ``out_hw`` (its own, any grid offset) runs the polyphase Winograd kernel: the direct kernels
    on, at least (4x4: and ``polyphase_4x4_min_pixels`` output pixels over the batch)
    ``polyphase_min_n`` samples, ``polyphase_min_c`` channels in, ``polyphase_min_o`` filters out
    and ``polyphase_min_wq`` pixels an output row."""
    t = thresholds if t is None else t
    k = tuple(w_shape[2:])
    four = (k == (4, 4) and t.polyphase_4x4
            and x_shape[0] * out_hw[0] * out_hw[1] >= t.polyphase_4x4_min_pixels)
    return (t.direct and t.polyphase and stride == 2 and (k == (3, 3) or four)
            and x_shape[0] >= t.polyphase_min_n and x_shape[1] >= t.polyphase_min_c and w_shape[0] >= t.polyphase_min_o
            and out_hw[0] > 0 and out_hw[1] >= t.polyphase_min_wq)


def _poly_blocks(n, hq, wq, tile, nr, t):
    """Blocks of ``nr`` tiles the polyphase forward computes over a call of ``n`` samples with
    output planes (hq, wq) on tiles of ``tile`` x 2 outputs, its items cut as _run_poly cuts
    them (plan_forward's items and rows): each item's last block is part-filled."""
    items, rows = block_items(n, t), winograd_rows(n, hq, t)
    th, tw = -(-hq // tile), -(-wq // 2)
    rows = max(tile, min(-(-rows // tile) * tile, tile * th))
    if rows < hq:   # items of one sample's rows
        per = rows // tile
        return n * sum(-(-min(per, th - r0) * tw // nr) for r0 in range(0, th, per))
    return sum(-(-((i + 1) * n // items - i * n // items) * th * tw // nr) for i in range(items))


def polyphase_tall(x_shape, w_shape, out_hw, dtype, t=None) -> bool:
    """Whether a polyphase stride-2 call with output planes ``out_hw`` runs on tall tiles
    (ForwardKernel.POLYPHASE_TALL): 3x3 filters, ``polyphase_tall`` on, their transformed filters
    within ``polyphase_tall_max_u_bytes``, and its products there (45 per tile of 4 x 2 outputs) at
    most ``polyphase_tall_max_cost`` of those on square tiles (25 per 2 x 2 outputs), counted in
    whole blocks of tiles as the items cut them."""
    t = thresholds if t is None else t
    hq, wq = out_hw
    if not (t.polyphase_tall and tuple(w_shape[2:]) == (3, 3) and hq > 0 and wq > 0
            and 45 * w_shape[0] * w_shape[1] * np.dtype(dtype).itemsize <= t.polyphase_tall_max_u_bytes):
        return False
    nr = panel_width(dtype)
    return (45 * _poly_blocks(x_shape[0], hq, wq, 4, nr, t)
            <= t.polyphase_tall_max_cost * 25 * _poly_blocks(x_shape[0], hq, wq, 2, nr, t))


def winograd_rows(n, hq, t=None):
    """Output rows per Winograd item: whole samples when they are at least as many as the cores,
    else each sample cut into about cores / n blocks (the bits do not depend on the cut)."""
    t = thresholds if t is None else t
    if n >= t.cores or n == 0:
        return hq
    parts = -(-t.cores // n)
    return max(2, -(-hq // parts))


def polyphase_box(x_shape, w_shape, out_hw, t=None) -> bool:
    """Whether an easy-average call of 3x3 filters over the 2x2 window with pooled output
    ``out_hw`` runs ForwardKernel.POLYPHASE_BOX: ``polyphase_box`` on and the shape one the
    widened 4x4 kernel would take the polyphase kernel for."""
    t = thresholds if t is None else t
    return (t.polyphase_box and tuple(w_shape[2:]) == (3, 3)
            and polyphase(x_shape, (w_shape[0], w_shape[1], 4, 4), out_hw, 2, t))


def box_means(w_shape, out_shape, window, t=None) -> bool:
    """Whether an easy-average call of filters ``w_shape`` with pooled output ``out_shape`` over
    ``window`` (p, s) that the box kernels do not take runs on x's box means: the 2x2 window, the
    direct kernels and ``box_means`` on, at least ``box_means_min_macs`` multiply-adds."""
    t = thresholds if t is None else t
    o, c, kh, kw = w_shape
    return (t.box_means and t.direct and window == (2, 2)
            and out_shape[0] * out_shape[2] * out_shape[3] * o * c * kh * kw >= t.box_means_min_macs)


def plan_forward(x_shape, w_shape, dtype, full_hw, wq, stride, t=None, offset=(0, 0)):
    """(kernel, sample items, rows per item) of a forward call whose full convolution output is
    ``full_hw`` (``stride`` times the call's own output) and whose own output rows hold ``wq``
    pixels; its grid starts at ``offset`` (see :func:`direct_grid`)."""
    t = thresholds if t is None else t
    if winograd(x_shape, w_shape, full_hw, stride, offset, t):
        return ForwardKernel.WINOGRAD, block_items(x_shape[0], t), winograd_rows(x_shape[0], full_hw[0], t)
    if polyphase(x_shape, w_shape, (full_hw[0] // 2, wq), stride, t):
        hq = full_hw[0] // 2
        tall = polyphase_tall(x_shape, w_shape, (hq, wq), dtype, t)
        return (ForwardKernel.POLYPHASE_TALL if tall else ForwardKernel.WINOGRAD, block_items(x_shape[0], t),
                winograd_rows(x_shape[0], hq, t))
    kernel = forward_kernel(w_shape, wq, dtype, t, direct_grid(stride, offset))
    g, r = _plan(x_shape, w_shape, dtype, full_hw, stride, kernel != ForwardKernel.IM2COL_BLAS, False, t)
    return kernel, sample_items(x_shape[0], g, t), r


def plan_backward(x_shape, w_shape, dtype, full_hw, stride, t=None, offset=(0, 0)):
    """(kernel, sample items, sample items of the split kernel's direct dx pass, dW slots) of a
    backward call, ``full_hw`` and ``offset`` as :func:`plan_forward`'s. For WINOGRAD the third
    number is the output rows per item instead."""
    t = thresholds if t is None else t
    kernel = backward_kernel(w_shape, t, direct_grid(stride, offset))
    if kernel != BackwardKernel.BLAS and winograd(x_shape, w_shape, full_hw, stride, offset, t):
        # dW and db in items of whole samples or of row blocks (the second number: output rows
        # per item), one dW slot per core; dx cut in the kernel (its bits do not depend on it)
        return (BackwardKernel.WINOGRAD_BACKWARD, block_items(x_shape[0], t),
                winograd_rows(x_shape[0], full_hw[0], t), t.cores)
    if (direct_grid(stride, offset) and t.polyphase_backward
            and polyphase(x_shape, w_shape, (full_hw[0] // 2, full_hw[1] // 2), stride, t)
            and (tuple(w_shape[2:]) != (3, 3) or (x_shape[1] <= t.polyphase_backward_max_c
                                                  and full_hw[1] // 2 >= t.polyphase_backward_min_wq))):
        # dW and db by the polyphase split in items as the forward's (the third number: output
        # rows per item), then dx by the polyphase split (cut in the kernel)
        return (BackwardKernel.WINOGRAD_BACKWARD, block_items(x_shape[0], t),
                winograd_rows(x_shape[0], full_hw[0] // 2, t), t.cores)
    g, _ = _plan(x_shape, w_shape, dtype, full_hw, stride, kernel == BackwardKernel.DIRECT, True, t)
    dx_group = _plan(x_shape, w_shape, dtype, full_hw, stride, True, False, t)[0] \
        if kernel == BackwardKernel.SPLIT else 1
    return kernel, sample_items(x_shape[0], g, t), sample_items(x_shape[0], dx_group, t), t.cores


def threaded(w_shape, out_shape, t=None) -> bool:
    """Whether a call of this many multiply-adds runs on the threads :func:`ecp.get_num_threads` gives."""
    t = thresholds if t is None else t
    macs = out_shape[0] * out_shape[1] * out_shape[2] * out_shape[3] * w_shape[1] * w_shape[2] * w_shape[3]
    return macs >= t.parallel_min_macs
