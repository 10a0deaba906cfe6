"""Easy average pooling: ``ecp.easy_avg_conv2d`` (+ backward) against the convolution then 2x2
average pooling (``ecp.testing``), central differences, PyTorch, and bad input."""
import numpy as np
import pytest

import ecp
import ecp._plans
import ecp.testing as reference
from gradcheck import numerical_grad

DTYPES = [np.float32, np.float64]
TOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-11}


def _close(got, want, dtype):
    scale = max(1.0, float(np.abs(want).max())) if np.size(want) else 1.0
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL[np.dtype(dtype)] * scale)


def _random_geometries(seed, count):
    """(x shape, w shape, padding) with odd and even sizes, padding pairs, 1x1 / 3x3 / 5x5 and
    non-square kernels, N = 1 among them; every one has a full output of at least 2x2."""
    rng = np.random.default_rng(seed)
    out = [((1, 1, 2, 2), (1, 1, 1, 1), 0), ((1, 2, 5, 5), (3, 2, 5, 5), 1), ((2, 3, 7, 6), (4, 3, 3, 3), (1, 0))]
    while len(out) < count:
        kh, kw = (int(k) for k in rng.choice([1, 3, 5], 2)) if rng.random() < 0.3 else (int(rng.choice([1, 3, 5])),) * 2
        ph, pw = (int(p) for p in rng.integers(0, 3, 2))
        h = int(rng.integers(max(1, kh + 1 - 2 * ph), 16))
        w = int(rng.integers(max(1, kw + 1 - 2 * pw), 16))
        padding = ph if ph == pw and rng.random() < 0.5 else (ph, pw)
        out.append(((int(rng.integers(1, 4)), int(rng.integers(1, 5)), h, w),
                    (int(rng.integers(1, 36)), 0, kh, kw), padding))
    return [(x, (w[0], x[1], w[2], w[3]), p) for x, w, p in out]


GEOMETRIES = _random_geometries(18, 40)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape,w_shape,padding", GEOMETRIES)
def test_equals_conv_then_avg_pool(x_shape, w_shape, padding, dtype):
    rng = np.random.default_rng(hash((x_shape, w_shape, str(padding))) % 2**32)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    y = ecp.easy_avg_conv2d(x, w, b, padding=padding)
    want = reference.easy_avg_conv2d(x, w, b, padding=padding)
    assert y.dtype == dtype and y.shape == want.shape
    _close(y, want, dtype)
    # the same as ecp's own conv2d then avg_pool2d
    _close(y, ecp.avg_pool2d(ecp.conv2d(x, w, b, padding=padding)), dtype)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = ecp.easy_avg_conv2d_backward(dy, x, w, padding=padding)
    rdx, rdw, rdb = reference.easy_avg_conv2d_backward(dy, x, w, padding=padding)
    assert dx.dtype == dw.dtype == db.dtype == dtype
    _close(dx, rdx, dtype)
    _close(dw, rdw, dtype)
    _close(db, rdb, dtype)
    none, dw2, db2 = ecp.easy_avg_conv2d_backward(dy, x, w, padding=padding, compute_dx=False)
    assert none is None
    np.testing.assert_array_equal(dw2, dw)
    np.testing.assert_array_equal(db2, db)


def test_no_bias_and_any_layout():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 8, 3, 9)).transpose(0, 2, 1, 3)   # non-contiguous (2, 3, 8, 9)
    w = rng.standard_normal((4, 3, 3, 3))
    x.flags.writeable = False
    y = ecp.easy_avg_conv2d(x, w, padding=(1, 0))
    _close(y, reference.easy_avg_conv2d(x, w, padding=(1, 0)), np.float64)
    assert y.shape == (2, 4, 4, 3)


def test_padding_int_and_pair_agree_bitwise():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    np.testing.assert_array_equal(ecp.easy_avg_conv2d(x, w, padding=1), ecp.easy_avg_conv2d(x, w, padding=(1, 1)))


def test_plan_reuse_gives_the_same_bits():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 10, 11)).astype(np.float32)
    w = rng.standard_normal((6, 4, 5, 5)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    y1, plan = ecp._plans.avg_forward(x, w, b, 2)
    y2, plan2 = ecp._plans.avg_forward(x, w, b, 2, plan)
    assert plan2 is plan
    np.testing.assert_array_equal(y1, y2)
    dy = rng.standard_normal(y1.shape).astype(np.float32)
    g1, bplan = ecp._plans.avg_backward(dy, x, w, 2, True)
    dw, db = np.empty_like(w), np.empty_like(b)
    g2, bplan2 = ecp._plans.avg_backward(dy, x, w, 2, True, bplan, dw, db)
    assert bplan2 is bplan and g2[1] is dw
    for a, c in zip(g1, g2):
        np.testing.assert_array_equal(a, c)


def test_an_easy_avg_plan_never_serves_easy_conv2d():
    # a 2x2-widened kernel over a map whose full output is even: the easy size rule gives a row
    # (column) less than easy average pooling's grid
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 1, 6, 6))
    w = rng.standard_normal((1, 1, 1, 1))
    assert ecp.easy_avg_conv2d(x, w).shape == (1, 1, 3, 3)
    assert ecp.easy_conv2d(x, ecp._plans.widen(w), mode=0).shape == (1, 1, 2, 2)


@pytest.mark.parametrize("padding", [0, (1, 2)])
def test_gradients_match_central_differences(padding):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 2, 7, 6))
    w = rng.standard_normal((3, 2, 3, 2))
    b = rng.standard_normal(3)
    dy = rng.standard_normal(ecp.easy_avg_conv2d(x, w, b, padding=padding).shape)

    def loss():
        return float((ecp.easy_avg_conv2d(x, w, b, padding=padding) * dy).sum())

    dx, dw, db = ecp.easy_avg_conv2d_backward(dy, x, w, padding=padding)
    np.testing.assert_allclose(dx, numerical_grad(loss, x), atol=1e-7)
    np.testing.assert_allclose(dw, numerical_grad(loss, w), atol=1e-7)
    np.testing.assert_allclose(db, numerical_grad(loss, b), atol=1e-7)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("x_shape,w_shape,padding", [((2, 3, 12, 12), (4, 3, 5, 5), 0),
                                                     ((1, 2, 9, 7), (3, 2, 3, 3), (1, 0)),
                                                     ((3, 2, 5, 6), (2, 2, 1, 1), 0)])
def test_matches_pytorch(torch, x_shape, w_shape, padding, dtype):
    F = torch.nn.functional
    tdtype = getattr(torch, dtype)
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(x_shape, generator=gen, dtype=tdtype, requires_grad=True)
    w = torch.randn(w_shape, generator=gen, dtype=tdtype, requires_grad=True)
    b = torch.randn(w_shape[0], generator=gen, dtype=tdtype, requires_grad=True)
    yt = F.avg_pool2d(F.conv2d(x, w, b, padding=padding), 2)
    g = torch.randn(yt.shape, generator=gen, dtype=tdtype)
    (yt * g).sum().backward()
    xn, wn, bn = (a.detach().numpy() for a in (x, w, b))
    y = ecp.easy_avg_conv2d(xn, wn, bn, padding=padding)
    dx, dw, db = ecp.easy_avg_conv2d_backward(g.numpy(), xn, wn, padding=padding)
    for got, want in ((y, yt), (dx, x.grad), (dw, w.grad), (db, b.grad)):
        _close(got, want.detach().numpy(), np.dtype(dtype))


def test_bad_input():
    x = np.zeros((1, 2, 5, 5), np.float32)
    w = np.zeros((3, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match="too small to pool"):
        ecp.easy_avg_conv2d(np.zeros((1, 2, 3, 4), np.float32), w)
    with pytest.raises(ValueError, match="too small to pool"):
        ecp.easy_avg_conv2d_backward(np.zeros((1, 3, 0, 0), np.float32), np.zeros((1, 2, 3, 3), np.float32), w)
    with pytest.raises(ValueError, match="padding"):
        ecp.easy_avg_conv2d(x, w, padding=-1)
    with pytest.raises(TypeError, match="padding"):
        ecp.easy_avg_conv2d(x, w, padding=1.5)
    with pytest.raises(ValueError, match="padding"):
        ecp.easy_avg_conv2d(x, w, padding=(1, 2, 3))
    with pytest.raises(ValueError, match="channels|w"):
        ecp.easy_avg_conv2d(x, np.zeros((3, 1, 3, 3), np.float32))
    with pytest.raises(ValueError, match="b must have shape"):
        ecp.easy_avg_conv2d(x, w, np.zeros(2, np.float32))
    with pytest.raises((TypeError, ValueError), match="w"):
        ecp.easy_avg_conv2d(x, w.astype(np.float64))
    with pytest.raises(TypeError, match="x"):
        ecp.easy_avg_conv2d("x", w)
    with pytest.raises(ValueError, match="x"):
        ecp.easy_avg_conv2d(np.zeros((2, 5, 5), np.float32), w)
    with pytest.raises(TypeError, match="x"):
        ecp.easy_avg_conv2d(x.astype(np.int32), w)
    with pytest.raises(ValueError, match="dy must have shape"):
        ecp.easy_avg_conv2d_backward(np.zeros((1, 3, 3, 3), np.float32), x, w, padding=1)
    with pytest.raises(TypeError):
        ecp.easy_avg_conv2d(x, w, None, 1)   # padding is keyword-only


def _box_oracle(w, p):
    """widen's contract in NumPy: each tap of the (kh+p-1, kw+p-1) kernel sums w's p^2 shifted
    planes from 0 in the order (box column j, then box row i), in w's dtype, then is scaled once."""
    o, c, kh, kw = w.shape
    acc = np.zeros((o, c, kh + p - 1, kw + p - 1), dtype=w.dtype)
    for j in range(p):
        for i in range(p):
            shifted = np.zeros_like(acc)
            shifted[:, :, i:i + kh, j:j + kw] = w
            acc = acc + shifted
    return acc * w.dtype.type(1.0 / (p * p))


def _fold_oracle(dwide, p):
    """fold's contract in NumPy: each tap the sum of its p x p taps of dwide from 0 in the order
    (j, then i), in dwide's dtype, then scaled once."""
    o, c, khp, kwp = dwide.shape
    kh, kw = khp - p + 1, kwp - p + 1
    acc = np.zeros((o, c, kh, kw), dtype=dwide.dtype)
    for j in range(p):
        for i in range(p):
            acc = acc + dwide[:, :, i:i + kh, j:j + kw]
    return acc * dwide.dtype.type(1.0 / (p * p))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [1, 2, 3, 4])
@pytest.mark.parametrize("shape", [(32, 20, 5, 5), (3, 7, 3, 3), (5, 2, 1, 1), (2, 3, 4, 2), (70, 40, 3, 3)])
def test_widen_and_fold_have_the_bits_of_their_numpy_contract(shape, p, dtype):
    # the flat-run loops (every vector width the CPU picks) add in the contract's order: the same
    # bits, signed zeros, infinities and NaNs included; chunks of planes past the first (70 x 40)
    rng = np.random.default_rng(p)
    w = rng.standard_normal(shape).astype(dtype)
    w.flat[::7] = -0.0
    w.flat[3] = np.inf
    w.flat[w.size // 2] = np.nan
    wide = ecp._plans.widen(w, p)
    want = _box_oracle(w, p)
    assert wide.tobytes() == want.tobytes()
    dwide = rng.standard_normal(want.shape).astype(dtype)
    dwide.flat[::5] = -0.0
    dwide.flat[2] = -np.inf
    assert ecp._plans.fold(dwide, p=p).tobytes() == _fold_oracle(dwide, p).tobytes()
