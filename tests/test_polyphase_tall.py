"""The stride-2 3x3 forward on tall tiles (ForwardKernel.POLYPHASE_TALL, ecp_direct_poly.h): the
polyphase split with tiles of 4 x 2 outputs, F(4, 2) down the rows and F(2, 2) across (45 products
per 8 outputs), against the float64 oracles of :mod:`ecp.testing`; the choice between tall and
square tiles (_dispatch.polyphase_tall); plans made by hand.

Other products than the square tiles' and the direct kernels', so the results match the oracle
within float rounding; they do not depend on the thread count nor on the items.
"""
import dataclasses

import numpy as np
import pytest

import ecp
import ecp._dispatch
import ecp.testing as reference
from ecp._dispatch import ForwardKernel
from winograd_cases import check_easy_forward, check_easy_forward_thread_bits, close, data

DTYPES = [np.float32, np.float64]

needs_direct = pytest.mark.skipif(not ecp._dispatch.thresholds.direct,
                                  reason=f"no direct kernels at ISA {ecp.kernel_isa()}")

# (N, C, H, W, O, padding): output heights of every remainder mod 4 (1 to 14 rows: a tile row of
# 1, 2 or 3 outputs at the bottom), odd and non-square planes, planes smaller than a tile, rows
# longer than a vector of tiles, channels and filters off multiples of 8, N = 1, padding pairs
SHAPES = [
    (2, 16, 9, 7, 16, 1),       # 4 x 3 outputs (mode 0)
    (1, 17, 5, 6, 19, 0),       # 1 x 2
    (3, 32, 12, 12, 33, 1),     # 6 x 6
    (1, 16, 4, 5, 16, 1),       # 2 x 2
    (2, 24, 13, 75, 40, (1, 0)),
    (1, 20, 8, 35, 17, (0, 1)),
    (2, 9, 23, 21, 8, 1),       # 11 x 10
    (2, 8, 29, 40, 8, 0),       # 13 x 19
    (1, 8, 30, 6, 9, 2),        # 15 x 4
]


@pytest.fixture
def tall_everywhere(monkeypatch):
    """The polyphase kernel on tall tiles for every stride-2 3x3 shape of these tests."""
    monkeypatch.setattr(ecp._dispatch, "thresholds", dataclasses.replace(
        ecp._dispatch.thresholds, polyphase_tall=True, polyphase_tall_max_cost=float("inf"),
        polyphase_tall_max_u_bytes=1 << 40,
        polyphase_min_n=1, polyphase_min_c=1, polyphase_min_o=1, polyphase_min_wq=1))


def full_hw(x, padding):
    ph, pw = (padding, padding) if np.ndim(padding) == 0 else padding
    return (x.shape[2] + 2 * ph - 2, x.shape[3] + 2 * pw - 2)


def kernel_of(x, w, mode, padding):
    hw = full_hw(x, padding)
    return ecp._dispatch.plan_forward(x.shape, w.shape, x.dtype, hw, (hw[1] - mode % 2) // 2, 2,
                                      offset=(mode // 2, mode % 2))[0]


@needs_direct
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", [0, 1, 2, 3])
@pytest.mark.parametrize("shape", SHAPES)
def test_tall_forward_matches_the_oracle(shape, mode, dtype, tall_everywhere):
    x, w, b, padding = data(shape, dtype)
    assert kernel_of(x, w, mode, padding) == ForwardKernel.POLYPHASE_TALL
    check_easy_forward(shape, mode, dtype)


@needs_direct
@pytest.mark.parametrize("dtype", DTYPES)
def test_tall_results_do_not_depend_on_the_thread_count(dtype, tall_everywhere):
    check_easy_forward_thread_bits(dtype)


@needs_direct
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cores", [1, 2, 3, 8])
def test_tall_items_of_samples_or_of_rows_give_the_same_bits(dtype, cores, tall_everywhere, monkeypatch):
    # whole samples an item, several samples an item, or (fewer samples than cores) blocks of
    # tile rows of one sample, rounded to whole tall tiles: each output from its own tile alone
    x, w, b, padding = data((2, 16, 37, 23, 24, 1), dtype, seed=7)
    want = ecp.easy_conv2d(x, w, b, mode=1, padding=padding)
    monkeypatch.setattr(ecp._dispatch, "thresholds", dataclasses.replace(ecp._dispatch.thresholds, cores=cores))
    ecp._plans.cache_clear()
    try:
        plan = ecp._plans.forward(x, w, b, padding, 1)[1]
        assert plan.kernel == ForwardKernel.POLYPHASE_TALL
        assert (plan.rows < 18) == (cores > 2)   # 18 output rows: cut into blocks only above 2 cores
        assert ecp.easy_conv2d(x, w, b, mode=1, padding=padding).tobytes() == want.tobytes()
    finally:
        ecp._plans.cache_clear()


@needs_direct
def test_tall_is_within_rounding_of_square_tiles_and_can_be_turned_off(monkeypatch):
    x, w, b, padding = data((16, 64, 56, 56, 64, 1), np.float32, seed=4)
    monkeypatch.setattr(ecp._dispatch, "thresholds", dataclasses.replace(ecp._dispatch.thresholds, cores=2))
    assert kernel_of(x, w, 3, padding) == ForwardKernel.POLYPHASE_TALL   # the VGG-like layer
    y = ecp.easy_conv2d(x, w, b, mode=3, padding=padding)
    monkeypatch.setattr(ecp._dispatch, "thresholds",
                        dataclasses.replace(ecp._dispatch.thresholds, polyphase_tall=False))
    assert kernel_of(x, w, 3, padding) == ForwardKernel.WINOGRAD
    y_square = ecp.easy_conv2d(x, w, b, mode=3, padding=padding)
    close(y, y_square.astype(np.float64), np.float32)
    assert not np.array_equal(y, y_square)   # other products: other roundings


@pytest.mark.parametrize("n, hq, cores, tall", [
    (16, 28, 2, True),    # 25 blocks of 32 tall tiles against 49 of square ones: 0.92
    (16, 14, 2, False),   # half a tall tile row wasted: 1.03
    (4, 28, 2, False),    # each item's last block part-filled: 0.97
    (8, 28, 2, True),
    (16, 15, 2, True),
    (1, 28, 2, True),     # row blocks of 16 and 12 rows
    (2, 28, 2, False),
])
def test_tall_tiles_where_their_blocks_cost_fewer_products(n, hq, cores, tall):
    t = dataclasses.replace(ecp._dispatch.thresholds, cores=cores)
    got = ecp._dispatch.polyphase_tall((n, 64, 2 * hq, 2 * hq), (64, 64, 3, 3), (hq, hq), np.float32, t)
    assert got == tall
    # never for other filters, nor when turned off, nor where the transformed filters outgrow the
    # budget (float64 or 128 channels at 64 filters: 1.47 MB)
    assert not ecp._dispatch.polyphase_tall((n, 64, 2 * hq, 2 * hq), (64, 64, 4, 4), (hq, hq), np.float32, t)
    assert not ecp._dispatch.polyphase_tall((n, 64, 2 * hq, 2 * hq), (64, 64, 3, 3), (hq, hq), np.float64, t)
    assert not ecp._dispatch.polyphase_tall((n, 128, 2 * hq, 2 * hq), (64, 128, 3, 3), (hq, hq), np.float32, t)
    off = dataclasses.replace(t, polyphase_tall=False)
    assert not ecp._dispatch.polyphase_tall((n, 64, 2 * hq, 2 * hq), (64, 64, 3, 3), (hq, hq), np.float32, off)


@needs_direct
def test_a_tall_plan_made_by_hand_runs_other_geometries_on_their_own_kernels():
    # a ForwardPlan of POLYPHASE_TALL for a 5x5 or stride-1 call runs what WINOGRAD would (the
    # square polyphase, Winograd or direct kernels): right results, no read or write outside
    from ecp._kernels import _conv
    tall = int(ForwardKernel.POLYPHASE_TALL)
    t = ecp._dispatch.thresholds
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 8, 12, 12)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    for k, stride, hq in [(5, 2, 4), (3, 1, 10), (4, 2, 5)]:
        w = rng.standard_normal((8, 8, k, k)).astype(np.float32)
        plan = _conv.ForwardPlan(x.shape, w.shape, (2, 8, hq, hq), "f", 0, None if stride == 1 else 0, stride,
                                 0, 0, tall, 2, hq, False, t)
        want = reference.conv2d(x, w, b)[:, :, ::stride, ::stride][:, :, :hq, :hq]
        close(plan.run(x, w, b, 2), want, np.float32)
    with pytest.raises(ValueError, match="not a convolution the kernels can run"):   # not a backward kernel
        _conv.BackwardPlan((2, 8, 12, 12), (8, 8, 3, 3), (2, 8, 5, 5), "f", 0, 0, 2, 0, 0, tall, 2, 2, 2, False, t)
