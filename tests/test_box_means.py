"""Easy average pooling on box means (``_dispatch.box_means``, ``_plans.MeansPlan``): the 2x2 box
means of the padded input (``_conv.box_means``, ecp_direct_box.h), the stride-2 convolution of
them with w itself, and dx by the means' adjoint (``_conv.box_adjoint``).

The kernels against NumPy oracles (bit for bit: each mean is one fixed chain of four adds and an
exact 1/4), the adjoint by its defining identity, the calls against the float64 oracles of
:mod:`ecp.testing`, the plans' reuse, thread counts, the switch and the layer.
"""
import dataclasses

import numpy as np
import pytest

import ecp
import ecp._dispatch
import ecp._plans
import ecp.testing as reference
from ecp import nn
from ecp._kernels import _conv
from winograd_cases import close

DTYPES = [np.float32, np.float64]
needs_direct = pytest.mark.skipif(not ecp._dispatch.thresholds.direct,
                                  reason=f"no direct kernels at ISA {ecp.kernel_isa()}")

# (x shape, padding): one plane of 2 x 2, odd and long rows (several vectors, a masked tail),
# many planes, paddings 0, 1, 2 and pairs
GEOMETRIES = [
    ((1, 1, 2, 2), (0, 0)),
    ((2, 3, 12, 12), (0, 0)),
    ((3, 5, 7, 33), (0, 0)),
    ((2, 3, 12, 12), (1, 1)),
    ((2, 3, 9, 10), (2, 1)),
    ((3, 5, 7, 33), (1, 0)),
    ((1, 4, 5, 40), (0, 3)),
    ((50, 20, 12, 12), (0, 0)),
]


def means_oracle(x, ph, pw):
    """The (H + 2ph - 1) x (W + 2pw - 1) box means, in the kernel's order of adds."""
    n, c, h, w = x.shape
    xp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), x.dtype)
    xp[:, :, ph:ph + h, pw:pw + w] = x
    return ((xp[:, :, :-1, :-1] + xp[:, :, :-1, 1:]) + (xp[:, :, 1:, :-1] + xp[:, :, 1:, 1:])) * x.dtype.type(0.25)


def adjoint_oracle(d, x_shape, ph, pw):
    """dx of the means from d (their exact shape), by scattering each mean's 1/4 to its terms."""
    n, c, h, w = x_shape
    dxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw))
    q = 0.25 * d.astype(np.float64)
    for a in (0, 1):
        for b in (0, 1):
            dxp[:, :, a:a + d.shape[2], b:b + d.shape[3]] += q
    return dxp[:, :, ph:ph + h, pw:pw + w]


@needs_direct
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, padding", GEOMETRIES)
def test_box_means_are_the_oracles_bits_at_any_thread_count(x_shape, padding, dtype):
    ph, pw = padding
    x = np.random.default_rng(1).standard_normal(x_shape).astype(dtype)
    want = means_oracle(x, ph, pw)
    shape = _conv.box_means_shape(x_shape, ph, pw)
    # unpadded, the means keep x's layout (the last row and column hold no mean); padded, exact
    assert shape == (x_shape if padding == (0, 0) else want.shape)
    for n_threads in (1, 2, 3, 4):
        xs = np.full(shape, np.nan, dtype)
        _conv.box_means(x, xs, ph, pw, n_threads)
        got = xs[:, :, :want.shape[2], :want.shape[3]]
        assert got.tobytes() == np.ascontiguousarray(want).tobytes()
        assert np.isfinite(xs).all()   # the unread row and column too


@needs_direct
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, padding", GEOMETRIES)
def test_box_adjoint_is_the_adjoint_of_the_means(x_shape, padding, dtype):
    ph, pw = padding
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape).astype(dtype)
    shape = _conv.box_means_shape(x_shape, ph, pw)
    d = rng.standard_normal(shape).astype(dtype)
    h2, w2 = x_shape[2] + 2 * ph - 1, x_shape[3] + 2 * pw - 1
    d[:, :, h2:, :] = 0   # the unpadded layout's unread row and column: a gradient of zeros there
    d[:, :, :, w2:] = 0
    want = adjoint_oracle(d[:, :, :h2, :w2], x_shape, ph, pw)
    for n_threads in (1, 3):
        dx = np.full(x_shape, np.nan, dtype)
        _conv.box_adjoint(d, dx, ph, pw, n_threads)
        close(dx, want, dtype)
    # <means(x), d> == <x, adjoint(d)>
    xs = np.empty(shape, dtype)
    _conv.box_means(x, xs, ph, pw, 1)
    lhs = float(np.sum(xs[:, :, :h2, :w2].astype(np.float64) * d[:, :, :h2, :w2]))
    rhs = float(np.sum(x.astype(np.float64) * dx))
    assert lhs == pytest.approx(rhs, rel=1e-5 if dtype == np.float32 else 1e-12, abs=1e-4)


@needs_direct
def test_box_means_refuse_what_does_not_fit():
    x = np.zeros((2, 3, 8, 8), np.float32)
    with pytest.raises(ValueError, match=r"xs must have shape \(2, 3, 9, 9\).*got \(2, 3, 8, 8\)"):
        _conv.box_means(x, np.zeros((2, 3, 8, 8), np.float32), 1, 1)
    with pytest.raises(ValueError, match="padding must be >= 0"):
        _conv.box_means(x, np.zeros((2, 3, 8, 8), np.float32), -1, 0)
    with pytest.raises(ValueError, match="has no 2x2 box"):
        _conv.box_means(np.zeros((1, 1, 1, 5), np.float32), np.zeros((1, 1, 1, 5), np.float32), 0, 0)
    with pytest.raises(ValueError, match=r"ds must have shape \(2, 3, 8, 8\)"):
        _conv.box_adjoint(np.zeros((2, 3, 7, 7), np.float32), x, 0, 0)
    with pytest.raises(ValueError):   # another dtype than the input's
        _conv.box_means(x, np.zeros((2, 3, 8, 8), np.float64), 0, 0)


# (N, C, H, W, O, kh, kw, padding) of easy-average calls that run on the means: 5x5 (the paper's
# conv1 and conv2, padded), 3x3 the box kernels leave (few channels), 7x7, non-square filters,
# even and odd full outputs, padding pairs
CALLS = [
    (50, 1, 28, 28, 20, 5, 5, 0),
    (8, 20, 12, 12, 32, 5, 5, 0),
    (3, 6, 13, 11, 9, 5, 5, 2),
    (2, 8, 16, 16, 16, 3, 3, 1),
    (2, 5, 20, 19, 7, 7, 7, 3),
    (3, 4, 10, 13, 33, 4, 2, (2, 1)),
    (4, 7, 9, 9, 12, 2, 5, (0, 2)),
]


def call_data(spec, dtype, seed=0):
    n, c, h, w, o, kh, kw, padding = spec
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = (rng.standard_normal((o, c, kh, kw)) / np.sqrt(c * kh * kw)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    return x, wt, b, padding


def avg_oracle(x, w, b, padding):
    return reference.avg_pool2d(reference.conv2d(x, w, b, padding=padding))


@needs_direct
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("spec", CALLS)
def test_easy_avg_on_box_means_matches_the_oracle(spec, dtype):
    x, w, b, padding = call_data(spec, dtype)
    y, plan = ecp._plans.avg_forward(x, w, b, padding)
    assert type(plan) is ecp._plans.MeansPlan and not ecp._plans.fills_wide(plan)
    close(y, avg_oracle(x, w, b, padding), dtype)
    assert ecp.easy_avg_conv2d(x, w, b, padding=padding).tobytes() == y.tobytes()
    dy = np.random.default_rng(3).standard_normal(y.shape).astype(dtype)
    (dx, dw, db), bplan = ecp._plans.avg_backward(dy, x, w, padding, True)
    assert type(bplan) is ecp._plans.MeansPlan
    full = reference.conv2d(x, w, None, padding=padding).shape
    rdx, rdw, rdb = reference.conv2d_backward(reference.avg_pool2d_backward(dy, full), x, w, padding=padding)
    close(dx, rdx, dtype)
    close(dw, rdw, dtype)
    close(db, rdb, dtype)
    (none, dw2, db2), _ = ecp._plans.avg_backward(dy, x, w, padding, False, plan=bplan)
    assert none is None and dw2.tobytes() == dw.tobytes() and db2.tobytes() == db.tobytes()


@needs_direct
@pytest.mark.parametrize("dtype", DTYPES)
def test_easy_avg_on_box_means_does_not_depend_on_the_thread_count(dtype):
    for spec in CALLS[1:4]:
        x, w, b, padding = call_data(spec, dtype, seed=4)
        dy = np.random.default_rng(5).standard_normal(ecp.easy_avg_conv2d(x, w, b, padding=padding).shape)
        dy = dy.astype(dtype)
        results = []
        for n in (1, 2, 3, 4):
            with ecp.num_threads(n):
                results.append((ecp.easy_avg_conv2d(x, w, b, padding=padding),)
                               + ecp.easy_avg_conv2d_backward(dy, x, w, padding=padding))
        for other in results[1:]:
            for a, c in zip(results[0], other):
                assert a.tobytes() == c.tobytes()


@needs_direct
def test_a_means_plan_serves_only_its_own_geometry():
    # x 12x12 unpadded and 11x11 padded by 1 make means of one shape (12 x 12); with 4x4 filters
    # their outputs differ in size (4 and 5 rows): a plan of one must not serve the other
    rng = np.random.default_rng(6)
    w = rng.standard_normal((8, 3, 4, 4)).astype(np.float32)
    x0 = rng.standard_normal((2, 3, 12, 12)).astype(np.float32)
    x1 = rng.standard_normal((2, 3, 11, 11)).astype(np.float32)
    y0, plan0 = ecp._plans.avg_forward(x0, w, None, 0)
    y1, plan1 = ecp._plans.avg_forward(x1, w, None, 1, plan=plan0)
    assert plan1 is not plan0 and y0.shape == (2, 8, 4, 4) and y1.shape == (2, 8, 5, 5)
    close(y1, avg_oracle(x1, w, None, 1), np.float32)
    assert ecp._plans.avg_forward(x1, w, None, (1, 1), plan=plan1)[1] is plan1   # the pair form too
    dy = rng.standard_normal(y0.shape).astype(np.float32)
    _, bplan0 = ecp._plans.avg_backward(dy, x0, w, 0, True)
    dy1 = rng.standard_normal(y1.shape).astype(np.float32)
    (dx1, _, _), bplan1 = ecp._plans.avg_backward(dy1, x1, w, 1, True, plan=bplan0)
    assert bplan1 is not bplan0 and dx1.shape == x1.shape
    # another dtype or filter count is refused too
    y2, plan2 = ecp._plans.avg_forward(x0.astype(np.float64), w.astype(np.float64), None, 0, plan=plan0)
    assert plan2 is not plan0 and y2.dtype == np.float64


@needs_direct
def test_box_means_can_be_turned_off_and_small_calls_keep_the_widened_kernel(monkeypatch):
    x, w, b, padding = call_data(CALLS[1], np.float32, seed=7)
    y, plan = ecp._plans.avg_forward(x, w, b, padding)
    assert type(plan) is ecp._plans.MeansPlan
    monkeypatch.setattr(ecp._dispatch, "thresholds", dataclasses.replace(ecp._dispatch.thresholds,
                                                                          box_means=False))
    y_wide, plan_w = ecp._plans.avg_forward(x, w, b, padding, plan=plan)
    assert type(plan_w) is not ecp._plans.MeansPlan and ecp._plans.fills_wide(plan_w)
    close(y, y_wide.astype(np.float64), np.float32)
    monkeypatch.undo()
    # 2 x 3 x 8 x 8 with 8 3x3 filters: 6,912 multiply-adds, under box_means_min_macs
    xs, ws, bs, _ = call_data((2, 3, 8, 8, 8, 3, 3, 1), np.float32)
    assert type(ecp._plans.avg_forward(xs, ws, bs, 1)[1]) is not ecp._plans.MeansPlan


@needs_direct
def test_the_easy_avg_layer_on_box_means_uses_its_forwards_weights_and_no_widened_kernel():
    rng = np.random.default_rng(8)
    layer = nn.EasyAvgConvPool2d(20, 32, 5, rng=3)
    x = rng.standard_normal((8, 20, 12, 12)).astype(np.float32)
    y = layer(x)
    assert type(layer._plans[0]) is ecp._plans.MeansPlan
    close(y, avg_oracle(x, layer.params["w"], layer.params["b"], 0), np.float32)
    layer._wide[...] = np.nan   # never filled by a means forward, never read by its backward
    dy = rng.standard_normal(y.shape).astype(np.float32)
    want = ecp.easy_avg_conv2d_backward(dy, x, layer.params["w"].copy())
    layer.params["w"] += 1.0   # (never done by the optimizers, which step after the backward)
    dx = layer.backward(dy)
    assert type(layer._plans[1]) is ecp._plans.MeansPlan
    assert dx.tobytes() == want[0].tobytes()
    assert layer.grads["w"].tobytes() == want[1].tobytes() and layer.grads["b"].tobytes() == want[2].tobytes()
