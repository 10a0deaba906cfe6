"""Pooling windows other than 2x2 / 2: ``pool_size`` p and ``pool_stride`` s (s <= p <= 4) of
``ecp.random_pool2d``, ``ecp.easy_conv2d`` and ``ecp.easy_avg_conv2d`` (+ backwards) against
``ecp.testing``, PyTorch, central differences, the 2x2 default, and bad input."""
import numpy as np
import pytest

import ecp
import ecp.testing as reference
from ecp import _dispatch
from gradcheck import numerical_grad

DTYPES = [np.float32, np.float64]
TOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-11}
WINDOWS = [(p, s) for p in range(1, 5) for s in range(1, p + 1)]


def _close(got, want, dtype):
    scale = max(1.0, float(np.abs(want).max())) if np.size(want) else 1.0
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL[np.dtype(dtype)] * scale)


def _geometry(seed, p):
    """(x shape, w shape, padding): odd and even sizes, padding pairs, 1x1 / 3x3 / 5x5 and
    non-square kernels, a full output of at least p x p."""
    rng = np.random.default_rng(seed)
    kh, kw = (int(k) for k in rng.choice([1, 3, 5], 2))
    ph, pw = (int(v) for v in rng.integers(0, 3, 2))
    h = int(rng.integers(max(1, kh + p - 1 - 2 * ph), 14))
    w = int(rng.integers(max(1, kw + p - 1 - 2 * pw), 14))
    padding = ph if ph == pw and rng.random() < 0.5 else (ph, pw)
    c = int(rng.integers(1, 5))
    return (int(rng.integers(1, 4)), c, h, w), (int(rng.integers(1, 36)), c, kh, kw), padding


def _arrays(seed, x_shape, w_shape, dtype):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype),
            rng.standard_normal(w_shape[0]).astype(dtype), rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p,s", WINDOWS)
@pytest.mark.parametrize("seed", range(3))
def test_easy_conv_every_mode_matches_reference(p, s, seed, dtype):
    x_shape, w_shape, padding = _geometry(100 * p + 10 * s + seed, p)
    x, w, b, rng = _arrays(seed, x_shape, w_shape, dtype)
    for k in range(p * p):
        kw = dict(mode=k, padding=padding, pool_size=p, pool_stride=s)
        y = ecp.easy_conv2d(x, w, b, **kw)
        want = reference.easy_conv2d(x, w, b, **kw)
        assert y.dtype == dtype and y.shape == want.shape
        _close(y, want, dtype)
        dy = rng.standard_normal(y.shape).astype(dtype)
        got = ecp.easy_conv2d_backward(dy, x, w, **kw)
        for g, r in zip(got, reference.easy_conv2d_backward(dy, x, w, **kw)):
            assert g.dtype == dtype
            _close(g, r, dtype)
        none, dw, db = ecp.easy_conv2d_backward(dy, x, w, compute_dx=False, **kw)
        assert none is None
        _close(dw, got[1], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p,s", WINDOWS)
@pytest.mark.parametrize("seed", range(3))
def test_easy_avg_matches_reference(p, s, seed, dtype):
    x_shape, w_shape, padding = _geometry(1000 + 100 * p + 10 * s + seed, p)
    x, w, b, rng = _arrays(seed, x_shape, w_shape, dtype)
    kw = dict(padding=padding, pool_size=p, pool_stride=s)
    y = ecp.easy_avg_conv2d(x, w, b, **kw)
    want = reference.easy_avg_conv2d(x, w, b, **kw)
    assert y.dtype == dtype and y.shape == want.shape
    _close(y, want, dtype)
    dy = rng.standard_normal(y.shape).astype(dtype)
    got = ecp.easy_avg_conv2d_backward(dy, x, w, **kw)
    for g, r in zip(got, reference.easy_avg_conv2d_backward(dy, x, w, **kw)):
        assert g.dtype == dtype
        _close(g, r, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p,s", WINDOWS)
def test_random_pool_every_mode_matches_reference(p, s, dtype):
    rng = np.random.default_rng(p * 10 + s)
    x = rng.standard_normal((2, 3, 9 + p, 7 + s)).astype(dtype)
    for k in range(p * p):
        y = ecp.random_pool2d(x, k, pool_size=p, pool_stride=s)
        want = reference.random_pool2d(x, k, pool_size=p, pool_stride=s)
        assert y.dtype == dtype and y.flags.c_contiguous
        np.testing.assert_array_equal(y, want)
        dy = rng.standard_normal(y.shape).astype(dtype)
        dx = ecp.random_pool2d_backward(dy, k, x.shape, pool_size=p, pool_stride=s)
        assert dx.dtype == dtype
        np.testing.assert_array_equal(dx, reference.random_pool2d_backward(dy, k, x.shape, pool_size=p,
                                                                            pool_stride=s))
        # easy convolution keeps exactly what random pooling keeps of the full convolution
        w = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
        _close(ecp.easy_conv2d(x, w, mode=k, padding=1, pool_size=p, pool_stride=s),
               ecp.random_pool2d(ecp.conv2d(x, w, padding=1), k, pool_size=p, pool_stride=s), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_default_window_is_the_2x2_one(dtype):
    x, w, b, rng = _arrays(3, (2, 3, 11, 10), (5, 3, 3, 3), dtype)
    for k in range(4):
        y = ecp.easy_conv2d(x, w, b, mode=k, padding=1)
        np.testing.assert_array_equal(ecp.easy_conv2d(x, w, b, mode=k, padding=1, pool_size=2, pool_stride=2), y)
        np.testing.assert_array_equal(ecp.random_pool2d(x, k, pool_size=2, pool_stride=2), ecp.random_pool2d(x, k))
    np.testing.assert_array_equal(ecp.easy_avg_conv2d(x, w, b, pool_size=2, pool_stride=2),
                                  ecp.easy_avg_conv2d(x, w, b))


@pytest.mark.parametrize("p,s,k", [(3, 2, 4), (2, 1, 3), (3, 3, 8), (4, 2, 5)])
def test_kernel_choice_leaves_the_direct_kernels_to_grids_they_take(p, s, k):
    oy, ox = divmod(k, p)
    direct = _dispatch.direct_grid(s, (oy, ox))
    assert direct == (s <= 2 and oy < s and ox < s)
    kernel = _dispatch.forward_kernel((64, 64, 3, 3), 8, "f", direct=direct)
    if not direct:
        assert kernel == _dispatch.ForwardKernel.IM2COL_BLAS
        assert _dispatch.backward_kernel((64, 64, 5, 5), direct=direct) == _dispatch.BackwardKernel.BLAS


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p,s", [(3, 2), (2, 1), (3, 1), (4, 4)])
def test_large_layers_on_every_kernel_match_reference(p, s, dtype):
    """Shapes that the direct kernels take where the grid allows (64 filters, K >= 128)."""
    x, w, b, rng = _arrays(p + s, (3, 64, 12, 11), (64, 64, 3, 3), dtype)
    for k in (0, p * p - 1):
        kw = dict(mode=k, padding=1, pool_size=p, pool_stride=s)
        y = ecp.easy_conv2d(x, w, b, **kw)
        _close(y, reference.easy_conv2d(x, w, b, **kw), dtype)
        dy = rng.standard_normal(y.shape).astype(dtype)
        for g, r in zip(ecp.easy_conv2d_backward(dy, x, w, **kw), reference.easy_conv2d_backward(dy, x, w, **kw)):
            _close(g, r, dtype)


@pytest.mark.parametrize("p,s,k", [(3, 2, 4), (3, 1, 7), (4, 3, 2), (2, 1, 1)])
def test_gradients_match_central_differences(p, s, k):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 2, 8, 7))
    w = rng.standard_normal((3, 2, 3, 2))
    b = rng.standard_normal(3)
    kw = dict(padding=(1, 0), pool_size=p, pool_stride=s)
    dy = rng.standard_normal(ecp.easy_conv2d(x, w, b, mode=k, **kw).shape)
    dya = rng.standard_normal(ecp.easy_avg_conv2d(x, w, b, **kw).shape)

    def loss():
        return float((ecp.easy_conv2d(x, w, b, mode=k, **kw) * dy).sum())

    def loss_avg():
        return float((ecp.easy_avg_conv2d(x, w, b, **kw) * dya).sum())

    for f, grads in ((loss, ecp.easy_conv2d_backward(dy, x, w, mode=k, **kw)),
                     (loss_avg, ecp.easy_avg_conv2d_backward(dya, x, w, **kw))):
        dx, dw, db = grads
        np.testing.assert_allclose(dx, numerical_grad(f, x), atol=1e-7)
        np.testing.assert_allclose(dw, numerical_grad(f, w), atol=1e-7)
        np.testing.assert_allclose(db, numerical_grad(f, b), atol=1e-7)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("p,s", WINDOWS)
def test_matches_pytorch(torch, p, s, dtype):
    F = torch.nn.functional
    tdtype = getattr(torch, dtype)
    gen = torch.Generator().manual_seed(p * 10 + s)
    x = torch.randn((2, 3, 11, 10), generator=gen, dtype=tdtype, requires_grad=True)
    w = torch.randn((4, 3, 3, 3), generator=gen, dtype=tdtype, requires_grad=True)
    b = torch.randn(4, generator=gen, dtype=tdtype, requires_grad=True)
    padding = (1, 0)
    full = F.conv2d(x, w, b, padding=padding)
    xn, wn, bn = (t.detach().numpy() for t in (x, w, b))
    tol = 1e-4 if dtype == "float32" else 1e-11
    for k in range(p * p):
        hq, wq = (full.shape[2] - p) // s + 1, (full.shape[3] - p) // s + 1
        want = full[:, :, k // p::s, k % p::s][:, :, :hq, :wq]
        y = ecp.easy_conv2d(xn, wn, bn, mode=k, padding=padding, pool_size=p, pool_stride=s)
        np.testing.assert_allclose(y, want.detach().numpy(), rtol=0, atol=tol * 10)
        dy = torch.randn(want.shape, generator=gen, dtype=tdtype)
        tdx, tdw, tdb = torch.autograd.grad(want, (x, w, b), dy, retain_graph=True)
        dx, dw, db = ecp.easy_conv2d_backward(dy.numpy(), xn, wn, mode=k, padding=padding, pool_size=p,
                                              pool_stride=s)
        for g, t in ((dx, tdx), (dw, tdw), (db, tdb)):
            np.testing.assert_allclose(g, t.numpy(), rtol=0, atol=tol * 100)
        np.testing.assert_array_equal(ecp.random_pool2d(xn, k, pool_size=p, pool_stride=s),
                                      x.detach()[:, :, k // p::s, k % p::s][:, :, :(11 - p) // s + 1,
                                                                            :(10 - p) // s + 1].numpy())
    avg = F.avg_pool2d(full, kernel_size=p, stride=s)
    np.testing.assert_allclose(ecp.easy_avg_conv2d(xn, wn, bn, padding=padding, pool_size=p, pool_stride=s),
                               avg.detach().numpy(), rtol=0, atol=tol * 10)
    dy = torch.randn(avg.shape, generator=gen, dtype=tdtype)
    tgrads = torch.autograd.grad(avg, (x, w, b), dy)
    grads = ecp.easy_avg_conv2d_backward(dy.numpy(), xn, wn, padding=padding, pool_size=p, pool_stride=s)
    for g, t in zip(grads, tgrads):
        np.testing.assert_allclose(g, t.numpy(), rtol=0, atol=tol * 100)


X = np.zeros((1, 1, 5, 5))
W = np.zeros((1, 1, 3, 3))
DY = np.zeros((1, 1, 1, 1))
CALLS = {   # name: (call, whether it takes a mode)
    "easy_conv2d": (lambda **kw: ecp.easy_conv2d(X, W, **kw), True),
    "easy_conv2d_backward": (lambda **kw: ecp.easy_conv2d_backward(DY, X, W, **kw), True),
    "easy_avg_conv2d": (lambda **kw: ecp.easy_avg_conv2d(X, W, **kw), False),
    "easy_avg_conv2d_backward": (lambda **kw: ecp.easy_avg_conv2d_backward(DY, X, W, **kw), False),
    "random_pool2d": (lambda **kw: ecp.random_pool2d(X[:, :, :3, :3], **kw), True),
    "random_pool2d_backward": (lambda mode=0, **kw: ecp.random_pool2d_backward(DY, mode, (1, 1, 3, 3), **kw), True),
}


BAD = [
    (dict(pool_size=4, pool_stride=2), ValueError, "pool_size 4 is larger than"),     # window > map
    (dict(pool_size=3, pool_stride=0), ValueError, "pool_stride must be an integer in 1..3"),
    (dict(pool_size=3, pool_stride=4), ValueError, "at most pool_size=3), got 4"),
    (dict(pool_size=5, pool_stride=2), ValueError, "pool_size must be an integer in 1..4, got 5"),
    (dict(pool_size=0, pool_stride=1), ValueError, "pool_size must be an integer in 1..4, got 0"),
    (dict(pool_size=2.0, pool_stride=2), TypeError, "pool_size must be an integer, got float"),
    (dict(pool_size=3, pool_stride=True), TypeError, "pool_stride must be an integer, got bool"),
    (dict(pool_size=3, pool_stride=2, mode=9), ValueError, "mode must be an integer in 0..8, got 9"),
    (dict(pool_size=3, pool_stride=2, mode=-1), ValueError, "mode must be an integer in 0..8, got -1"),
    (dict(pool_size=2, pool_stride=1, mode=4), ValueError, "mode must be an integer in 0..3, got 4"),
    (dict(pool_size=3, pool_stride=2, mode=1.0), TypeError, "mode must be an integer, got float"),
]


@pytest.mark.parametrize("name,kwargs,error,words", [(name, *bad) for name, (_, takes_mode) in CALLS.items()
                                                     for bad in BAD if takes_mode or "mode" not in bad[0]])
def test_bad_windows_raise_naming_the_argument(name, kwargs, error, words):
    call, _ = CALLS[name]
    with pytest.raises(error) as info:
        call(**kwargs)
    assert words in str(info.value)


def test_dy_of_another_window_is_refused():
    x, w = np.zeros((1, 1, 9, 9)), np.zeros((1, 1, 3, 3))
    with pytest.raises(ValueError, match=r"dy must have shape \(1, 1, 3, 3\)"):
        ecp.easy_conv2d_backward(np.zeros((1, 1, 2, 2)), x, w, mode=0, pool_size=3, pool_stride=2)
    with pytest.raises(ValueError, match=r"dy must have shape \(1, 1, 3, 3\)"):
        ecp.easy_avg_conv2d_backward(np.zeros((1, 1, 2, 2)), x, w, pool_size=3, pool_stride=2)
    with pytest.raises(ValueError, match=r"dy must have shape \(1, 1, 4, 4\)"):
        ecp.random_pool2d_backward(np.zeros((1, 1, 2, 2)), 0, (1, 1, 9, 9), pool_size=3, pool_stride=2)


def test_a_plan_made_by_hand_refuses_what_the_kernels_cannot_run():
    from ecp._kernels import _conv
    args = ((1, 1, 9, 9), (1, 1, 3, 3), (1, 1, 3, 3), "d", 0)
    _conv.ForwardPlan(*args, (4, 3, 2), 2, 1, 1, 0, 1, 3, False, None)   # mode 4 of 3x3 / 2: offset (1, 1)
    for mode, stride, oy, ox, kernel in [((4, 3, 2), 2, 0, 1, 0),      # offset not the mode's
                                         ((4, 3, 3), 2, 1, 1, 0),      # stride not the mode's
                                         ((0, 3, 4), 4, 0, 0, 0),      # stride above the window
                                         ((9, 3, 2), 2, 3, 0, 0),      # mode outside 0..8
                                         ((0, 3, 3), 3, 0, 0, 1),      # a direct kernel on stride 3
                                         ((4, 2, 1), 1, 1, 0, 1),      # a direct kernel off its grid
                                         ((0.0, 3, 2), 2, 0, 0, 0)]:
        with pytest.raises(ValueError, match="not a convolution the kernels can run"):
            _conv.ForwardPlan(*args, mode, stride, oy, ox, kernel, 1, 3, False, None)

