"""The polyphase Winograd kernels of the stride-2 3x3 and 4x4 convolutions (the easy convolution
of 3x3 windows and easy average pooling of 3x3 layers; ForwardKernel.WINOGRAD and, for dW and db,
BackwardKernel.WINOGRAD_BACKWARD at stride 2): four stride-1 sub-convolutions of the input's
polyphase components by Winograd F(2x2, 2x2), against the float64 oracles of :mod:`ecp.testing`.

Other products than the direct kernels' (25 of transformed values per 2 x 2 outputs), so the
results match the oracle within float rounding, not the direct kernels' bits; they do not depend
on the thread count.
"""
import dataclasses

import numpy as np
import pytest

import ecp
import ecp._dispatch
import ecp.testing as reference
from ecp._dispatch import BackwardKernel, ForwardKernel
from winograd_cases import check_easy_forward, check_easy_forward_thread_bits, close, data

DTYPES = [np.float32, np.float64]
# relative to the largest magnitude of the oracle's result (float32 measured a few 1e-7)

needs_direct = pytest.mark.skipif(not ecp._dispatch.thresholds.direct,
                                  reason=f"no direct kernels at ISA {ecp.kernel_isa()}")

# (N, C, H, W, O, padding): odd and non-square planes, channels and filters not multiples of 8,
# planes smaller than a tile, rows longer than a vector of tiles, N = 1, paddings 0, 1 and pairs
SHAPES = [
    (2, 16, 9, 7, 16, 1),
    (1, 17, 5, 6, 19, 0),
    (3, 32, 12, 12, 33, 1),
    (1, 16, 4, 4, 16, 0),
    (1, 16, 4, 5, 16, 1),
    (2, 24, 13, 75, 40, (1, 0)),
    (1, 20, 8, 35, 17, (0, 1)),
    (2, 9, 23, 21, 8, 1),
]


@pytest.fixture
def everywhere(monkeypatch):
    """The polyphase kernel on square tiles for every stride-2 3x3 shape of these tests (the table
    leaves out few channels, few filters and short rows; the kernel takes any; tall tiles:
    tests/test_polyphase_tall.py)."""
    monkeypatch.setattr(ecp._dispatch, "thresholds", dataclasses.replace(
        ecp._dispatch.thresholds, polyphase_tall=False,
        polyphase_min_n=1, polyphase_min_c=1, polyphase_min_o=1, polyphase_min_wq=1,
        polyphase_4x4_min_pixels=1, polyphase_backward_max_c=1 << 30, polyphase_backward_min_wq=1))


def full_hw(x, padding):
    ph, pw = (padding, padding) if np.ndim(padding) == 0 else padding
    return (x.shape[2] + 2 * ph - 2, x.shape[3] + 2 * pw - 2)


@needs_direct
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", [0, 1, 2, 3])
@pytest.mark.parametrize("shape", SHAPES)
def test_polyphase_forward_matches_the_oracle(shape, mode, dtype, everywhere):
    x, w, b, padding = data(shape, dtype)
    hw = full_hw(x, padding)
    assert ecp._dispatch.plan_forward(x.shape, w.shape, x.dtype, hw, hw[1] // 2, 2,
                                      offset=(mode // 2, mode % 2))[0] == ForwardKernel.WINOGRAD
    check_easy_forward(shape, mode, dtype)


@needs_direct
@pytest.mark.parametrize("dtype", DTYPES)
def test_polyphase_results_do_not_depend_on_the_thread_count(dtype, everywhere):
    check_easy_forward_thread_bits(dtype)


@needs_direct
def test_polyphase_is_within_rounding_of_the_direct_kernel_and_can_be_turned_off(monkeypatch):
    x, w, b, padding = data((4, 64, 28, 28, 64, 1), np.float32, seed=4)
    monkeypatch.setattr(ecp._dispatch, "thresholds", dataclasses.replace(ecp._dispatch.thresholds,
                                                                         polyphase_tall=False))
    assert ecp._dispatch.plan_forward(x.shape, w.shape, x.dtype, (28, 28), 14, 2, offset=(1, 1))[0] \
        == ForwardKernel.WINOGRAD
    y = ecp.easy_conv2d(x, w, b, mode=3, padding=padding)
    monkeypatch.setattr(ecp._dispatch, "thresholds", dataclasses.replace(ecp._dispatch.thresholds, polyphase=False))
    assert ecp._dispatch.plan_forward(x.shape, w.shape, x.dtype, (28, 28), 14, 2, offset=(1, 1))[0] \
        != ForwardKernel.WINOGRAD
    y_direct = ecp.easy_conv2d(x, w, b, mode=3, padding=padding)
    close(y, y_direct.astype(np.float64), np.float32)
    assert not np.array_equal(y, y_direct)   # another algorithm: other roundings


# The stride-2 4x4 forward (easy average pooling of 3x3 layers runs its box-widened 4x4 kernel so):
# every phase 2x2, a 6 x 6 input patch per 2 x 2 outputs.
SHAPES_4X4 = [
    (2, 16, 9, 7, 16, 1),
    (1, 17, 5, 6, 19, 0),
    (1, 16, 5, 5, 16, 0),
    (2, 24, 13, 75, 40, (1, 0)),
    (1, 20, 8, 35, 17, (0, 2)),
    (2, 9, 23, 21, 8, 2),
]


def data4(shape, dtype, seed=0):
    x, _, b, padding = data(shape, dtype, seed)
    w = np.random.default_rng(seed + 100).standard_normal((shape[4], shape[1], 4, 4)).astype(dtype)
    return x, w, b, padding


@needs_direct
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", [0, 1, 2, 3])
@pytest.mark.parametrize("shape", SHAPES_4X4)
def test_polyphase_4x4_forward_matches_the_oracle(shape, mode, dtype, everywhere):
    x, w, b, padding = data4(shape, dtype)
    y = ecp.easy_conv2d(x, w, b, mode=mode, padding=padding)
    hq, wq = y.shape[2:]
    assert ecp._dispatch.plan_forward(x.shape, w.shape, x.dtype, (2 * hq, 2 * wq), wq, 2,
                                      offset=(mode // 2, mode % 2))[0] == ForwardKernel.WINOGRAD
    close(y, reference.easy_conv2d(x, w, b, mode=mode, padding=padding), dtype)
    y0 = ecp.easy_conv2d(x, w, None, mode=mode, padding=padding)
    close(y0, reference.easy_conv2d(x, w, None, mode=mode, padding=padding), dtype)


@needs_direct
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES_4X4)
def test_polyphase_easy_avg_of_3x3_matches_conv_then_avg_pool(shape, dtype, everywhere):
    x, w, b, padding = data(shape, dtype, seed=5)
    want = reference.avg_pool2d(reference.conv2d(x, w, b, padding=padding))
    close(ecp.easy_avg_conv2d(x, w, b, padding=padding), want, dtype)


@needs_direct
@pytest.mark.parametrize("dtype", DTYPES)
def test_polyphase_4x4_results_do_not_depend_on_the_thread_count(dtype, everywhere):
    check_easy_forward_thread_bits(dtype, data4)


@needs_direct
def test_polyphase_4x4_is_within_rounding_of_the_direct_kernel_and_can_be_turned_off(monkeypatch):
    x, w, b, padding = data((12, 64, 28, 28, 64, 1), np.float32, seed=4)
    wide_shape = (64, 64, 4, 4)
    assert ecp._dispatch.plan_forward(x.shape, wide_shape, x.dtype, (28, 28), 14, 2)[0] == ForwardKernel.WINOGRAD
    y = ecp.easy_avg_conv2d(x, w, b, padding=padding)
    monkeypatch.setattr(ecp._dispatch, "thresholds", dataclasses.replace(ecp._dispatch.thresholds,
                                                                          polyphase_4x4=False))
    assert ecp._dispatch.plan_forward(x.shape, wide_shape, x.dtype, (28, 28), 14, 2)[0] != ForwardKernel.WINOGRAD
    assert ecp._dispatch.plan_forward(x.shape, (64, 64, 3, 3), x.dtype, (28, 28), 14, 2)[0] \
        == ForwardKernel.WINOGRAD   # the 3x3 case keeps it
    # 4 samples of 14 x 14 output pixels: under the 4x4 floor of pixels (measured slower there)
    monkeypatch.setattr(ecp._dispatch, "thresholds", dataclasses.replace(ecp._dispatch.thresholds,
                                                                          polyphase_4x4=True))
    assert ecp._dispatch.plan_forward((4, 64, 28, 28), wide_shape, x.dtype, (28, 28), 14, 2)[0] \
        != ForwardKernel.WINOGRAD
    monkeypatch.setattr(ecp._dispatch, "thresholds", dataclasses.replace(ecp._dispatch.thresholds,
                                                                          polyphase_4x4=False))
    y_direct = ecp.easy_avg_conv2d(x, w, b, padding=padding)
    close(y, y_direct.astype(np.float64), np.float32)
    assert not np.array_equal(y, y_direct)   # another algorithm: other roundings


# The backward: dW and db by the polyphase split of the products, dx by that of its output (four
# phases, each a stride-1 convolution of dY)

def _backward_plan(x, w, y, mode):
    hq, wq = y.shape[2:]
    return ecp._dispatch.plan_backward(x.shape, w.shape, x.dtype, (2 * hq, 2 * wq), 2,
                                       offset=(mode // 2, mode % 2))[0]


@needs_direct
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", [0, 3])
@pytest.mark.parametrize("shape", SHAPES)
def test_polyphase_backward_matches_the_oracle(shape, mode, dtype, everywhere):
    x, w, b, padding = data(shape, dtype)
    y = ecp.easy_conv2d(x, w, b, mode=mode, padding=padding)
    assert _backward_plan(x, w, y, mode) == BackwardKernel.WINOGRAD_BACKWARD
    dy = np.random.default_rng(7).standard_normal(y.shape).astype(dtype)
    got = ecp.easy_conv2d_backward(dy, x, w, mode=mode, padding=padding)
    want = reference.easy_conv2d_backward(dy, x, w, mode=mode, padding=padding)
    for g, e in zip(got, want):
        close(g, e, dtype)
    _, dw, db = ecp.easy_conv2d_backward(dy, x, w, mode=mode, padding=padding, compute_dx=False)
    assert dw.tobytes() == got[1].tobytes() and db.tobytes() == got[2].tobytes()


@needs_direct
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", [0, 1, 2, 3])
@pytest.mark.parametrize("shape", SHAPES_4X4)
def test_polyphase_4x4_backward_matches_the_oracle(shape, mode, dtype, everywhere):
    x, w, b, padding = data4(shape, dtype)
    y = ecp.easy_conv2d(x, w, b, mode=mode, padding=padding)
    assert _backward_plan(x, w, y, mode) == BackwardKernel.WINOGRAD_BACKWARD
    dy = np.random.default_rng(8).standard_normal(y.shape).astype(dtype)
    got = ecp.easy_conv2d_backward(dy, x, w, mode=mode, padding=padding)
    want = reference.easy_conv2d_backward(dy, x, w, mode=mode, padding=padding)
    for g, e in zip(got, want):
        close(g, e, dtype)


@needs_direct
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES_4X4)
def test_polyphase_easy_avg_backward_of_3x3_matches_the_oracle(shape, dtype, everywhere):
    x, w, b, padding = data(shape, dtype, seed=6)
    dy = np.random.default_rng(9).standard_normal(
        ecp.easy_avg_conv2d(x, w, b, padding=padding).shape).astype(dtype)
    got = ecp.easy_avg_conv2d_backward(dy, x, w, padding=padding)
    want = reference.easy_avg_conv2d_backward(dy, x, w, padding=padding)
    for g, e in zip(got, want):
        close(g, e, dtype)


@needs_direct
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [3, 4])
def test_polyphase_backward_does_not_depend_on_the_thread_count(k, dtype, everywhere):
    # N = 1 and 2 cut into row blocks, N = 5 into whole samples, over the plan's dW slots
    for shape in [(5, 16, 12, 11, 40, 1), (1, 16, 30, 17, 16, 1), (2, 24, 21, 20, 8, 0)]:
        x, w, b, padding = (data if k == 3 else data4)(shape, dtype, seed=3)
        dy = np.random.default_rng(10).standard_normal(
            ecp.easy_conv2d(x, w, b, mode=1, padding=padding).shape).astype(dtype)
        results = []
        for n in (1, 2, 3, 4):
            with ecp.num_threads(n):
                results.append(ecp.easy_conv2d_backward(dy, x, w, mode=1, padding=padding))
        for other in results[1:]:
            for a, c in zip(results[0], other):
                assert a.tobytes() == c.tobytes()


@needs_direct
def test_polyphase_backward_takes_64_channels_and_28_pixel_rows_of_3x3_filters():
    hw = (56, 56)
    plan = ecp._dispatch.plan_backward
    assert plan((4, 64, 56, 56), (64, 64, 3, 3), np.float32, hw, 2, offset=(1, 1))[0] \
        == BackwardKernel.WINOGRAD_BACKWARD
    assert plan((4, 128, 56, 56), (128, 128, 3, 3), np.float32, hw, 2, offset=(1, 1))[0] \
        != BackwardKernel.WINOGRAD_BACKWARD   # more channels: the direct backward
    assert plan((16, 64, 28, 28), (64, 64, 3, 3), np.float32, (28, 28), 2, offset=(1, 1))[0] \
        != BackwardKernel.WINOGRAD_BACKWARD   # 14-pixel rows: the direct backward
    assert plan((16, 128, 28, 28), (128, 128, 4, 4), np.float32, (28, 28), 2)[0] \
        == BackwardKernel.WINOGRAD_BACKWARD   # 4x4 filters: the forward's shapes


@needs_direct
def test_polyphase_backward_is_within_rounding_of_the_direct_kernel_and_can_be_turned_off(monkeypatch):
    x, w, b, padding = data((4, 64, 56, 56, 64, 1), np.float32, seed=4)
    y = ecp.easy_conv2d(x, w, b, mode=3, padding=padding)
    assert _backward_plan(x, w, y, 3) == BackwardKernel.WINOGRAD_BACKWARD
    dy = np.random.default_rng(11).standard_normal(y.shape).astype(np.float32)
    dx, dw, db = ecp.easy_conv2d_backward(dy, x, w, mode=3, padding=padding)
    monkeypatch.setattr(ecp._dispatch, "thresholds", dataclasses.replace(ecp._dispatch.thresholds,
                                                                          polyphase_backward=False))
    assert _backward_plan(x, w, y, 3) != BackwardKernel.WINOGRAD_BACKWARD
    dx0, dw0, db0 = ecp.easy_conv2d_backward(dy, x, w, mode=3, padding=padding)
    for got, direct in ((dx, dx0), (dw, dw0), (db, db0)):
        close(got, direct.astype(np.float64), np.float32)
    assert not np.array_equal(dx, dx0) and not np.array_equal(dw, dw0)   # other roundings


# Easy average pooling of 3x3 layers on x's 2x2 box sums (ForwardKernel.POLYPHASE_BOX): the 3x3
# polyphase kernel with w itself, no widened kernel

@needs_direct
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES_4X4 + [(2, 16, 14, 15, 24, 0), (1, 8, 6, 6, 8, 1)])
def test_polyphase_box_runs_easy_avg_of_3x3_and_matches_the_oracle(shape, dtype, everywhere):
    x, w, b, padding = data(shape, dtype, seed=12)
    y, plan = ecp._plans.avg_forward(x, w, b, padding)
    assert plan.kernel == ForwardKernel.POLYPHASE_BOX and plan.mode == (0, 2, 2)
    close(y, reference.avg_pool2d(reference.conv2d(x, w, b, padding=padding)), dtype)
    y0, _ = ecp._plans.avg_forward(x, w, None, padding)
    close(y0, reference.avg_pool2d(reference.conv2d(x, w, None, padding=padding)), dtype)
    # the layer's path: given an array for the widened kernel, it is left alone (nothing widens)
    wide = np.full((w.shape[0], w.shape[1], 4, 4), 7.0, dtype=dtype)
    y2, plan2 = ecp._plans.avg_forward(x, w, b, padding, plan=plan, wide=wide)
    assert plan2 is plan and y2.tobytes() == y.tobytes()
    assert not ecp._plans.fills_wide(plan) and (wide == 7.0).all()


@needs_direct
@pytest.mark.parametrize("dtype", DTYPES)
def test_polyphase_box_does_not_depend_on_the_thread_count(dtype, everywhere):
    for shape in [(3, 32, 12, 11, 40, 1), (1, 16, 30, 17, 16, 1), (5, 16, 8, 8, 24, 0)]:
        x, w, b, padding = data(shape, dtype, seed=13)
        results = []
        for n in (1, 2, 3, 4):
            with ecp.num_threads(n):
                results.append(ecp.easy_avg_conv2d(x, w, b, padding=padding))
        for other in results[1:]:
            assert results[0].tobytes() == other.tobytes()


@needs_direct
def test_polyphase_box_can_be_turned_off_and_never_serves_easy_conv2d(monkeypatch):
    x, w, b, padding = data((16, 64, 28, 28, 64, 1), np.float32, seed=14)
    y, plan = ecp._plans.avg_forward(x, w, b, padding)
    assert plan.kernel == ForwardKernel.POLYPHASE_BOX
    # an easy_conv2d call of the same x and w (mode 0: the same grid, another output) refuses it
    assert not plan.fits(x, w, b, padding, 0, ecp._dispatch.thresholds)
    ye, plan_e = ecp._plans.forward(x, w, b, padding, 0, plan=plan)
    assert plan_e is not plan and ye.shape == (16, 64, 14, 14)
    monkeypatch.setattr(ecp._dispatch, "thresholds", dataclasses.replace(ecp._dispatch.thresholds,
                                                                          polyphase_box=False, box_means=False))
    y_wide, plan_w = ecp._plans.avg_forward(x, w, b, padding, plan=plan)
    assert plan_w.kernel == ForwardKernel.WINOGRAD and ecp._plans.fills_wide(plan_w)   # the widened 4x4 kernel
    close(y, y_wide.astype(np.float64), np.float32)
    assert not np.array_equal(y, y_wide)   # other products: other roundings


@needs_direct
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES_4X4 + [(2, 16, 14, 15, 24, 0)])
def test_polyphase_box_backward_matches_the_oracle_without_a_fold(shape, dtype, everywhere):
    x, w, b, padding = data(shape, dtype, seed=15)
    y = ecp.easy_avg_conv2d(x, w, b, padding=padding)
    dy = np.random.default_rng(16).standard_normal(y.shape).astype(dtype)
    (dx, dw, db), plan = ecp._plans.avg_backward(dy, x, w, padding, True)
    assert plan.kernel == BackwardKernel.POLYPHASE_BOX_BACKWARD and plan.mode == (0, 2, 2)
    for got, want in zip((dx, dw, db), reference.easy_avg_conv2d_backward(dy, x, w, padding=padding)):
        close(got, want, dtype)
    # the plan again, dW and db into a layer's arrays, dx left out
    dw2, db2 = np.empty_like(dw), np.empty_like(db)
    (dx2, dw3, db3), plan2 = ecp._plans.avg_backward(dy, x, w, padding, False, plan=plan, dw=dw2, db=db2)
    assert plan2 is plan and dx2 is None and dw3 is dw2 and db3 is db2
    assert dw2.tobytes() == dw.tobytes() and db2.tobytes() == db.tobytes()


@needs_direct
@pytest.mark.parametrize("dtype", DTYPES)
def test_polyphase_box_backward_does_not_depend_on_the_thread_count(dtype, everywhere):
    for shape in [(5, 16, 12, 11, 40, 1), (1, 16, 30, 17, 16, 1), (2, 24, 21, 20, 8, 0)]:
        x, w, b, padding = data(shape, dtype, seed=17)
        dy = np.random.default_rng(18).standard_normal(
            ecp.easy_avg_conv2d(x, w, b, padding=padding).shape).astype(dtype)
        results = []
        for n in (1, 2, 3, 4):
            with ecp.num_threads(n):
                results.append(ecp.easy_avg_conv2d_backward(dy, x, w, padding=padding))
        for other in results[1:]:
            for a, c in zip(results[0], other):
                assert a.tobytes() == c.tobytes()


@needs_direct
def test_polyphase_box_backward_can_be_turned_off(monkeypatch):
    x, w, b, padding = data((16, 64, 28, 28, 64, 1), np.float32, seed=19)
    dy = np.random.default_rng(20).standard_normal((16, 64, 14, 14)).astype(np.float32)
    got, plan = ecp._plans.avg_backward(dy, x, w, padding, True)
    assert plan.kernel == BackwardKernel.POLYPHASE_BOX_BACKWARD
    for name in ("polyphase_box", "polyphase_backward"):
        monkeypatch.setattr(ecp._dispatch, "thresholds", dataclasses.replace(ecp._dispatch.thresholds, **{name: False}))
        off, plan_off = ecp._plans.avg_backward(dy, x, w, padding, True, plan=plan)
        assert plan_off.kernel != BackwardKernel.POLYPHASE_BOX_BACKWARD
        for a, c in zip(got, off):
            close(a, c.astype(np.float64), np.float32)
        monkeypatch.undo()


@needs_direct
def test_the_easy_avg_layer_backward_uses_its_forwards_weights_on_the_box_kernels():
    from ecp import nn
    rng = np.random.default_rng(21)
    layer = nn.EasyAvgConvPool2d(64, 64, 3, padding=1, rng=3)
    x = rng.standard_normal((16, 64, 28, 28)).astype(np.float32)
    y = layer(x)
    assert layer._plans[0].kernel == ForwardKernel.POLYPHASE_BOX
    dy = rng.standard_normal(y.shape).astype(np.float32)
    want = ecp.easy_avg_conv2d_backward(dy, x, layer.params["w"].copy(), padding=1)[0]
    layer.params["w"] += 1.0   # (never done by the optimizers, which step after the backward)
    dx = layer.backward(dy)
    assert layer._plans[1].kernel == BackwardKernel.POLYPHASE_BOX_BACKWARD
    assert dx.tobytes() == want.tobytes()


def test_a_box_plan_made_by_hand_for_another_geometry_is_refused():
    from ecp._kernels import _conv
    box = int(ForwardKernel.POLYPHASE_BOX)
    t = ecp._dispatch.thresholds
    with pytest.raises(ValueError, match="not a convolution the kernels can run"):   # 5x5 filters
        _conv.ForwardPlan((4, 8, 12, 12), (8, 8, 5, 5), (4, 8, 4, 4), "f", 0, (0, 2, 2), 2, 0, 0, box, 4, 4, False, t)
    with pytest.raises(ValueError, match="not a convolution the kernels can run"):   # a grid offset
        _conv.BackwardPlan((4, 8, 12, 12), (8, 8, 3, 3), (4, 8, 4, 4), "f", 0, (3, 2, 2), 2, 1, 1,
                           int(BackwardKernel.POLYPHASE_BOX_BACKWARD), 4, 4, 2, False, t)
    with pytest.raises(ValueError, match="not a convolution the kernels can run"):   # windows past the plane
        _conv.ForwardPlan((4, 8, 12, 12), (8, 8, 3, 3), (4, 8, 6, 6), "f", 0, (0, 2, 2), 2, 0, 0, box, 4, 4, False, t)


@needs_direct
def test_polyphase_and_box_kernels_on_random_small_geometries(everywhere):
    # every stride-2 3x3 call, its backward and easy average pooling of it, on the polyphase and
    # box kernels, against the oracles: planes down to one tile and below, odd sizes, padding
    # pairs 0..2, every mode, channels and filters off multiples of 8
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies

    @hypothesis.settings(max_examples=60, deadline=None, derandomize=True)
    @hypothesis.given(n=st.integers(1, 3), c=st.integers(1, 11), o=st.integers(1, 11), h=st.integers(3, 13),
                      w=st.integers(3, 13), ph=st.integers(0, 2), pw=st.integers(0, 2), mode=st.integers(0, 3),
                      double=st.booleans())
    def check(n, c, o, h, w, ph, pw, mode, double):
        dtype = np.float64 if double else np.float32
        hypothesis.assume(h + 2 * ph >= 4 and w + 2 * pw >= 4)   # a pooled output of one pixel at least
        x, wt, b, _ = data((n, c, h, w, o, 0), dtype, seed=n * 1000 + c * 100 + o)
        pad = (ph, pw)
        y = ecp.easy_conv2d(x, wt, b, mode=mode, padding=pad)
        close(y, reference.easy_conv2d(x, wt, b, mode=mode, padding=pad), dtype)
        dy = np.random.default_rng(mode).standard_normal(y.shape).astype(dtype)
        for got, want in zip(ecp.easy_conv2d_backward(dy, x, wt, mode=mode, padding=pad),
                             reference.easy_conv2d_backward(dy, x, wt, mode=mode, padding=pad)):
            close(got, want, dtype)
        ya = ecp.easy_avg_conv2d(x, wt, b, padding=pad)
        close(ya, reference.avg_pool2d(reference.conv2d(x, wt, b, padding=pad)), dtype)
        dya = np.random.default_rng(mode + 4).standard_normal(ya.shape).astype(dtype)
        for got, want in zip(ecp.easy_avg_conv2d_backward(dya, x, wt, padding=pad),
                             reference.easy_avg_conv2d_backward(dya, x, wt, padding=pad)):
            close(got, want, dtype)

    check()


@needs_direct
@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_items_of_several_samples_give_the_bits_of_one_sample_items(dtype, everywhere, monkeypatch):
    # block_items puts several samples in an item, so that tile blocks run on across samples; each
    # output still comes from its own tile alone: the same bits as items of one sample
    x, w, b, padding = data((5, 16, 13, 15, 24, 1), dtype, seed=22)
    calls = {
        "polyphase": lambda: ecp.easy_conv2d(x, w, b, mode=1, padding=padding),
        "box": lambda: ecp.easy_avg_conv2d(x, w, b, padding=padding),
        "winograd": lambda: ecp.conv2d(x, w, b, padding=padding),
    }
    monkeypatch.setattr(ecp._dispatch, "thresholds", dataclasses.replace(
        ecp._dispatch.thresholds, winograd_min_c=1, winograd_min_o=1, winograd_min_wq=1, cores=2))
    assert ecp._dispatch.block_items(5) == 2
    ecp._plans.cache_clear()
    several = {name: call() for name, call in calls.items()}
    assert ecp._plans.forward(x, w, b, padding, 1)[1].items == 2
    assert ecp._plans.forward(x, w, b, padding, 1)[1].kernel == ForwardKernel.WINOGRAD   # the polyphase split
    assert ecp._plans.forward(x, w, b, padding, None)[1].kernel == ForwardKernel.WINOGRAD
    assert ecp._plans.avg_forward(x, w, b, padding)[1].kernel == ForwardKernel.POLYPHASE_BOX
    monkeypatch.setattr(ecp._dispatch, "block_items", lambda n, t=None: n)
    ecp._plans.cache_clear()
    for name, call in calls.items():
        assert call().tobytes() == several[name].tobytes(), name
    assert ecp._plans.forward(x, w, b, padding, 1)[1].items == 5
    ecp._plans.cache_clear()
