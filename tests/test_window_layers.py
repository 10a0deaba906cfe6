"""Pooling windows (``pool_size`` p, ``pool_stride`` s: s <= p <= 4) in ``ecp.nn``'s layers:
EasyConvPool2d, EasyAvgConvPool2d, RandomPool2d, MaxPool2d, AvgPool2d against ``ecp.testing``,
loop oracles and central differences; the mode policies over p^2 modes; pickling; bad input."""
import copy
import pickle

import numpy as np
import pytest

import ecp.testing as reference
from ecp import nn
from gradcheck import numerical_grad

WINDOWS = [(p, s) for p in range(1, 5) for s in range(1, p + 1)]


def _pool_oracle(x, p, s, reduce):
    """Max or mean over every p x p window of stride s, by loops (float64)."""
    n, c, h, w = x.shape
    ho, wo = (h - p) // s + 1, (w - p) // s + 1
    y = np.empty((n, c, ho, wo))
    for r in range(ho):
        for q in range(wo):
            y[:, :, r, q] = reduce(x[:, :, r * s:r * s + p, q * s:q * s + p].astype(np.float64), axis=(2, 3))
    return y


@pytest.mark.parametrize("p,s", WINDOWS)
def test_easy_conv_layer_every_window(p, s):
    rng = np.random.default_rng(10 * p + s)
    layer = nn.EasyConvPool2d(3, 4, 3, mode=p * p - 1, padding=1, rng=0, dtype=np.float64,
                              pool_size=p, pool_stride=s)
    x = rng.standard_normal((2, 3, 11, 10))
    y = layer(x)
    kw = dict(mode=p * p - 1, padding=1, pool_size=p, pool_stride=s)
    want = reference.easy_conv2d(x, layer.params["w"], layer.params["b"], **kw)
    assert y.shape == want.shape == (2, 4, (11 - p) // s + 1, (10 - p) // s + 1)
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    rdx, rdw, rdb = reference.easy_conv2d_backward(dy, x, layer.params["w"], **kw)
    for got, ref in ((dx, rdx), (layer.grads["w"], rdw), (layer.grads["b"], rdb)):
        np.testing.assert_allclose(got, ref, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("p,s", WINDOWS)
def test_easy_avg_layer_every_window(p, s):
    rng = np.random.default_rng(20 * p + s)
    layer = nn.EasyAvgConvPool2d(2, 3, 3, padding=(1, 0), rng=1, dtype=np.float64, pool_size=p, pool_stride=s)
    x = rng.standard_normal((2, 2, 12, 11))
    y = layer(x)
    w, b = layer.params["w"], layer.params["b"]
    want = reference.easy_avg_conv2d(x, w, b, padding=(1, 0), pool_size=p, pool_stride=s)
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
    # the same as the full convolution then the loop oracle's average pooling
    np.testing.assert_allclose(y, _pool_oracle(reference.conv2d(x, w, b, padding=(1, 0)), p, s, np.mean),
                               rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    rdx, rdw, rdb = reference.easy_avg_conv2d_backward(dy, x, w, padding=(1, 0), pool_size=p, pool_stride=s)
    for got, ref in ((dx, rdx), (layer.grads["w"], rdw), (layer.grads["b"], rdb)):
        np.testing.assert_allclose(got, ref, rtol=1e-11, atol=1e-11)


def test_easy_avg_layer_numerical_gradients_3x3_stride_2():
    rng = np.random.default_rng(5)
    layer = nn.EasyAvgConvPool2d(2, 2, 3, rng=2, dtype=np.float64, pool_size=3, pool_stride=2)
    x = rng.standard_normal((1, 2, 9, 8))
    dy = rng.standard_normal(layer(x).shape)
    layer(x)
    dx = layer.backward(dy)
    dw = layer.grads["w"].copy()

    def loss():
        return float(np.sum(layer.eval()(x) * dy))

    np.testing.assert_allclose(dx, numerical_grad(loss, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dw, numerical_grad(loss, layer.params["w"]), rtol=1e-6, atol=1e-7)


def test_easy_avg_layer_backward_uses_its_forwards_kernel():
    """The widened kernel is kept from the forward: a weight change between forward and backward
    (never made by the optimizers, which step after the backward) does not reach this backward."""
    rng = np.random.default_rng(6)
    layer = nn.EasyAvgConvPool2d(2, 3, 3, rng=3, dtype=np.float64)
    x = rng.standard_normal((2, 2, 8, 8))
    dy = rng.standard_normal(layer(x).shape)
    want = reference.easy_avg_conv2d_backward(dy, x, layer.params["w"])[0]
    layer.params["w"] += 1.0
    np.testing.assert_allclose(layer.backward(dy), want, rtol=1e-12, atol=1e-12)
    layer(x)   # the next forward widens the new weights
    np.testing.assert_allclose(layer.backward(dy), reference.easy_avg_conv2d_backward(dy, x, layer.params["w"])[0],
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("p,s", WINDOWS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pool_layers_every_window(p, s, dtype):
    rng = np.random.default_rng(30 * p + s)
    x = rng.standard_normal((2, 3, 9, 10)).astype(dtype)
    ho, wo = (9 - p) // s + 1, (10 - p) // s + 1
    for k in range(p * p):
        layer = nn.RandomPool2d(k, pool_size=p, pool_stride=s)
        y = layer(x)
        np.testing.assert_array_equal(y, x[:, :, k // p::s, k % p::s][:, :, :ho, :wo])
        dy = rng.standard_normal(y.shape).astype(dtype)
        np.testing.assert_array_equal(layer.backward(dy), reference.random_pool2d_backward(
            dy, k, x.shape, pool_size=p, pool_stride=s))
    for cls, reduce in ((nn.MaxPool2d, np.max), (nn.AvgPool2d, np.mean)):
        layer = cls(pool_size=p, pool_stride=s)
        y = layer(x)
        assert y.dtype == dtype and y.shape == (2, 3, ho, wo)
        tol = 1e-6 if dtype == np.float32 else 1e-13
        np.testing.assert_allclose(y, _pool_oracle(x, p, s, reduce), rtol=tol, atol=tol)
        x64 = x.astype(np.float64)
        layer64 = cls(pool_size=p, pool_stride=s)
        dy = rng.standard_normal(y.shape)
        layer64(x64)
        dx = layer64.backward(dy)

        def loss():
            return float(np.sum(layer64.eval()(x64) * dy))

        # max pooling of distinct values is differentiable: central differences see the routing
        np.testing.assert_allclose(dx, numerical_grad(loss, x64), rtol=1e-6, atol=1e-7)


def test_max_pool_ties_and_overlaps_add():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 1] = 5.0   # the maximum of 4 overlapping 3x3 windows of stride 1
    layer = nn.MaxPool2d(pool_size=3, pool_stride=1)
    np.testing.assert_array_equal(layer(x), np.full((1, 1, 2, 2), 5.0))
    dx = layer.backward(np.ones((1, 1, 2, 2)))
    assert dx[0, 0, 1, 1] == 4.0 and dx.sum() == 4.0
    # all-equal windows: the first pixel (row-major) takes the gradient, as in PyTorch
    layer = nn.MaxPool2d(pool_size=3, pool_stride=3)
    layer(np.ones((1, 1, 3, 3)))
    assert layer.backward(np.ones((1, 1, 1, 1)))[0, 0, 0, 0] == 1.0


def test_default_window_layers_are_unchanged():
    """The 2x2 window of stride 2 runs the kernels as before: the same bits with or without
    the (default) window arguments."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 10, 9)).astype(np.float32)
    for make in (lambda **kw: nn.EasyConvPool2d(3, 4, 3, mode=2, rng=0, **kw),
                 lambda **kw: nn.EasyAvgConvPool2d(3, 4, 3, rng=0, **kw),
                 lambda **kw: nn.RandomPool2d(1, **kw), lambda **kw: nn.MaxPool2d(**kw),
                 lambda **kw: nn.AvgPool2d(**kw)):
        a, b = make(), make(pool_size=2, pool_stride=2)
        ya, yb = a(x), b(x)
        assert ya.tobytes() == yb.tobytes()
        dy = rng.standard_normal(ya.shape).astype(np.float32)
        ga, gb = a.backward(dy), b.backward(dy)
        assert ga.tobytes() == gb.tobytes()
        assert repr(a) == repr(b) and "pool_size" not in repr(a)


def test_per_batch_draws_every_mode_of_a_3x3_window_and_backward_uses_its_k():
    rng = np.random.default_rng(8)
    layer = nn.EasyConvPool2d(2, 3, 3, mode="per-batch", eval_mode="ensemble", rng=4, dtype=np.float64,
                              pool_size=3, pool_stride=2)
    x = rng.standard_normal((2, 2, 13, 13))
    seen = set()
    for _ in range(60):
        y = layer(x)
        k = layer.last_mode
        seen.add(k)
        np.testing.assert_allclose(y, reference.easy_conv2d(x, layer.params["w"], layer.params["b"], mode=k,
                                                            pool_size=3, pool_stride=2), rtol=1e-12, atol=1e-12)
        dy = rng.standard_normal(y.shape)
        dx = layer.backward(dy)
        np.testing.assert_allclose(dx, reference.easy_conv2d_backward(dy, x, layer.params["w"], mode=k, pool_size=3,
                                                                      pool_stride=2)[0], rtol=1e-11, atol=1e-11)
    assert seen == set(range(9))
    pool = nn.RandomPool2d("per-batch", rng=1, pool_size=3, pool_stride=3)
    assert {(pool(x), pool.last_mode)[1] for _ in range(80)} == set(range(9))


def test_ensemble_averages_the_p_squared_modes():
    rng = np.random.default_rng(9)
    net = nn.Sequential([nn.EasyConvPool2d(1, 2, 3, mode="per-batch", eval_mode="ensemble", rng=5,
                                           dtype=np.float64, pool_size=3, pool_stride=2),
                         nn.Flatten()])
    x = rng.standard_normal((2, 1, 11, 11))
    net.eval()
    got = net(x)
    layer = net.layers[0]
    fixed = [reference.easy_conv2d(x, layer.params["w"], layer.params["b"], mode=k, pool_size=3,
                                   pool_stride=2).reshape(2, -1) for k in range(9)]
    np.testing.assert_allclose(got, np.mean(fixed, axis=0), rtol=1e-12, atol=1e-12)
    # two windows in one network: lcm(9, 4) = 36 passes, each layer at K modulo its own count
    net2 = nn.Sequential([nn.RandomPool2d("per-batch", eval_mode="ensemble", rng=1, pool_size=3, pool_stride=1),
                          nn.RandomPool2d("per-batch", eval_mode="ensemble", rng=2), nn.Flatten()])
    x = rng.standard_normal((1, 1, 8, 8)).astype(np.float32)
    net2.eval()
    want = np.mean([x[:, :, (k % 9) // 3:, (k % 9) % 3:][:, :, :6, :6][:, :, (k % 4) // 2::2, (k % 4) % 2::2]
                    .reshape(1, -1) for k in range(36)], axis=0)
    np.testing.assert_allclose(net2(x), want, rtol=1e-6, atol=1e-6)


def test_eval_mode_is_checked_against_p_squared():
    layer = nn.EasyConvPool2d(1, 2, 3, mode=8, eval_mode=7, rng=0, pool_size=3, pool_stride=3)
    assert layer.mode == 8 and layer.eval_mode == 7
    with pytest.raises(ValueError, match="eval_mode must be an integer in 0..8, got 9"):
        nn.EasyConvPool2d(1, 2, 3, mode=1, eval_mode=9, rng=0, pool_size=3, pool_stride=3)
    with pytest.raises(ValueError, match="mode must be an integer in 0..8"):
        nn.EasyConvPool2d(1, 2, 3, mode=9, rng=0, pool_size=3, pool_stride=3)
    with pytest.raises(ValueError, match="mode must be an integer in 0..15"):
        nn.RandomPool2d(16, pool_size=4, pool_stride=1)
    with pytest.raises(ValueError, match="eval_mode='ensemble' needs mode='per-batch'"):
        nn.RandomPool2d(3, eval_mode="ensemble", pool_size=3, pool_stride=2)
    # "random" draws in 0..p^2-1 (the 2x2 window: one integers(4) draw, as before)
    assert nn.RandomPool2d("random", rng=0).mode == int(np.random.default_rng(0).integers(4))
    assert nn.RandomPool2d("random", rng=0, pool_size=3, pool_stride=1).mode == int(
        np.random.default_rng(0).integers(9))


@pytest.mark.parametrize("make", [
    lambda **kw: nn.EasyConvPool2d(1, 2, 3, mode=0, rng=0, **kw),
    lambda **kw: nn.EasyAvgConvPool2d(1, 2, 3, rng=0, **kw),
    lambda **kw: nn.RandomPool2d(0, **kw),
    lambda **kw: nn.MaxPool2d(**kw),
    lambda **kw: nn.AvgPool2d(**kw),
])
def test_bad_windows_name_the_argument(make):
    with pytest.raises(ValueError, match="pool_size must be an integer in 1..4"):
        make(pool_size=5, pool_stride=2)
    with pytest.raises(ValueError, match=r"pool_stride must be an integer in 1..2 \(at least 1, at most pool_size=2\)"):
        make(pool_size=2, pool_stride=3)
    with pytest.raises(ValueError, match="pool_stride must be an integer in 1..3"):
        make(pool_size=3, pool_stride=0)
    with pytest.raises(TypeError, match="pool_size must be an integer"):
        make(pool_size=2.0, pool_stride=2)
    with pytest.raises(TypeError, match="pool_stride must be an integer"):
        make(pool_size=2, pool_stride="2")
    layer = make(pool_size=4, pool_stride=4)
    with pytest.raises(ValueError, match="larger than"):
        layer(np.zeros((1, 1, 5, 3), np.float32))


def test_window_layers_pickle_and_old_ones_load():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 1, 12, 12)).astype(np.float32)
    net = nn.Sequential([nn.EasyConvPool2d(1, 2, 3, mode="per-batch", rng=0, pool_size=3, pool_stride=2),
                         nn.EasyAvgConvPool2d(2, 2, 1, rng=1, pool_size=2, pool_stride=1),
                         nn.MaxPool2d(pool_size=2, pool_stride=1), nn.Flatten()])
    net(x)
    net.backward(np.ones((2, 8), np.float32))
    assert "_wide" not in net.layers[1].__getstate__()   # scratch: not pickled
    for other in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        assert [(la.pool_size, la.pool_stride) for la in other.layers[:3]] == [(3, 2), (2, 1), (2, 1)]
        other.eval()
        net.eval()
        np.testing.assert_array_equal(other(x), net(x))
        net.train()
    # a layer pickled before windows (no pool_size / pool_stride in its state): the 2x2 window
    for layer in (nn.EasyConvPool2d(1, 2, 3, mode=1, rng=0), nn.EasyAvgConvPool2d(1, 2, 3, rng=0),
                  nn.RandomPool2d(2), nn.MaxPool2d(), nn.AvgPool2d()):
        state = layer.__dict__.copy()
        state.pop("pool_size", None)
        state.pop("pool_stride", None)
        old = type(layer).__new__(type(layer))
        old.__setstate__(state) if hasattr(old, "__setstate__") else old.__dict__.update(state)
        assert (old.pool_size, old.pool_stride) == (2, 2)
        np.testing.assert_array_equal(old.eval()(x), layer.eval()(x))
