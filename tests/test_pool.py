"""Correctness of the pooling kernels: ``ecp/_kernels/_pool.pyx`` through ``ecp/pool.py``.

Random / max / average 2x2 pooling, their backward scatters and the neighbor fill, compared with
the float64 NumPy oracles of :mod:`ecp.testing`, with central differences and with PyTorch.
"""
import numpy as np
import pytest

import ecp
import ecp.testing as reference
from gradcheck import numerical_grad

DTYPES = [np.float32, np.float64]
MODES = [0, 1, 2, 3]
TOL = {np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-14}

# (N, C, H, W): odd and even sizes, the smallest poolable map, empty batch / no channels
SHAPES = [(2, 3, 5, 7), (1, 1, 2, 2), (3, 2, 8, 6), (2, 4, 9, 4), (1, 2, 3, 3), (2, 1, 6, 11), (1, 1, 2, 9),
          (0, 2, 4, 4), (2, 0, 5, 4)]


def sid(s):
    return "x".join(map(str, s))


# ----------------------------------------------------------------------------- oracles

def windows(x):
    """(N, C, H//2, W//2, 4): the four pixels of each 2x2 window, row-major."""
    n, c, h, w = x.shape
    hq, wq = h // 2, w // 2
    v = x[:, :, : 2 * hq, : 2 * wq].reshape(n, c, hq, 2, wq, 2)
    return v.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, hq, wq, 4)


random_pool_ref = reference.random_pool2d
random_pool_backward_ref = reference.random_pool2d_backward
avg_pool_ref = reference.avg_pool2d
avg_pool_backward_ref = reference.avg_pool2d_backward
max_pool_backward_ref = reference.max_pool2d_backward
neighbor_fill_backward_ref = reference.neighbor_fill_backward


def max_pool_ref(x):
    """Values and flat plane indices; np.argmax takes the first maximum and the first NaN."""
    return reference.max_pool2d(x, return_indices=True)


def neighbor_fill_ref(y, shape=None):
    return reference.neighbor_fill(y, shape=shape)


def assert_close(actual, expected, dtype):
    assert isinstance(actual, np.ndarray)
    assert actual.dtype == np.dtype(dtype), (actual.dtype, dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.flags.c_contiguous
    tol = TOL[np.dtype(dtype)]
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale)


def assert_exact(actual, expected, dtype):
    """Pooling that only moves values must reproduce them bit for bit."""
    assert actual.dtype == np.dtype(dtype) and actual.flags.c_contiguous
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    np.testing.assert_array_equal(actual, np.asarray(expected).astype(dtype))


def assert_grad(analytic, numeric):
    assert analytic.dtype == np.float64
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-7)


def rand(shape, dtype, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def pooled(shape):
    return (shape[0], shape[1], shape[2] // 2, shape[3] // 2)


# ----------------------------------------------------------------------------- forward

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", SHAPES, ids=sid)
def test_random_pool2d(shape, mode, dtype):
    x = rand(shape, dtype, 1)
    assert_exact(ecp.random_pool2d(x, mode), random_pool_ref(x, mode), dtype)
    dy = rand(pooled(shape), dtype, 2)
    assert_exact(ecp.random_pool2d_backward(dy, mode, shape), random_pool_backward_ref(dy, mode, shape), dtype)


def test_random_pool2d_mode_positions_by_hand():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    expected = {0: [[0, 2], [8, 10]], 1: [[1, 3], [9, 11]], 2: [[4, 6], [12, 14]], 3: [[5, 7], [13, 15]]}
    for mode, want in expected.items():
        np.testing.assert_array_equal(ecp.random_pool2d(x, mode)[0, 0], want)
        dx = ecp.random_pool2d_backward(np.ones((1, 1, 2, 2)), mode, (1, 1, 4, 4))[0, 0]
        np.testing.assert_array_equal(np.flatnonzero(dx), np.ravel(want).astype(int))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=sid)
def test_max_pool2d(shape, dtype):
    x = rand(shape, dtype, 3)
    values, idx = max_pool_ref(x)
    y, got_idx = ecp.max_pool2d(x, return_indices=True)
    assert_exact(y, values, dtype)
    assert got_idx.dtype == np.int64 and got_idx.flags.c_contiguous
    np.testing.assert_array_equal(got_idx, idx)
    assert_exact(ecp.max_pool2d(x), values, dtype)
    dy = rand(pooled(shape), dtype, 4)
    assert_exact(ecp.max_pool2d_backward(dy, got_idx, shape), max_pool_backward_ref(dy, idx, shape), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=sid)
def test_avg_pool2d(shape, dtype):
    x = rand(shape, dtype, 5)
    assert_close(ecp.avg_pool2d(x), avg_pool_ref(x), dtype)
    dy = rand(pooled(shape), dtype, 6)
    assert_close(ecp.avg_pool2d_backward(dy, shape), avg_pool_backward_ref(dy, shape), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=sid)
def test_neighbor_fill(shape, dtype):
    n, c, h, w = shape
    y = rand(pooled(shape), dtype, 7)
    want = neighbor_fill_ref(y, (h, w))
    assert_exact(ecp.neighbor_fill(y, shape=(h, w)), want, dtype)
    assert_exact(ecp.neighbor_fill(y), neighbor_fill_ref(y), dtype)
    assert_exact(ecp.neighbor_fill(y, shape=np.array([h, w])), want, dtype)
    dy = rand(shape, dtype, 8)
    assert_close(ecp.neighbor_fill_backward(dy), neighbor_fill_backward_ref(dy), dtype)


def test_neighbor_fill_documented_edges():
    """Odd H / W: the leftover last row repeats the row above, the last column the one to its left."""
    y = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    out = ecp.neighbor_fill(y, shape=(5, 5))[0, 0]
    np.testing.assert_array_equal(out, [[1, 1, 2, 2, 2],
                                        [1, 1, 2, 2, 2],
                                        [3, 3, 4, 4, 4],
                                        [3, 3, 4, 4, 4],
                                        [3, 3, 4, 4, 4]])
    np.testing.assert_array_equal(ecp.neighbor_fill(y, shape=(4, 5))[0, 0, :, 4], [2, 2, 4, 4])
    np.testing.assert_array_equal(ecp.neighbor_fill(y, shape=(5, 4))[0, 0, 4], [3, 3, 4, 4])
    # the adjoint: the corner cell collects its 2x2 window plus the extra row, column and corner
    g = ecp.neighbor_fill_backward(np.ones((1, 1, 5, 5)))[0, 0]
    np.testing.assert_array_equal(g, [[4, 6], [6, 9]])


@pytest.mark.parametrize("hw", [(2, 2), (3, 2), (2, 3), (7, 5), (6, 9)])
def test_neighbor_fill_backward_is_its_adjoint(hw):
    rng = np.random.default_rng(9)
    y = rng.standard_normal((2, 3, hw[0] // 2, hw[1] // 2))
    g = rng.standard_normal((2, 3) + hw)
    lhs = np.sum(ecp.neighbor_fill(y, shape=hw) * g)
    np.testing.assert_allclose(np.sum(y * ecp.neighbor_fill_backward(g)), lhs, rtol=1e-12)


def test_pool_then_fill_round_trip():
    """neighbor_fill(random_pool2d(x)) reproduces x when every window is constant."""
    y = rand((2, 3, 4, 3), np.float64, 10)
    x = neighbor_fill_ref(y, (9, 7))
    for mode in MODES:
        np.testing.assert_array_equal(ecp.neighbor_fill(ecp.random_pool2d(x, mode), shape=(9, 7)), x)
    np.testing.assert_array_equal(ecp.neighbor_fill(ecp.max_pool2d(x), shape=(9, 7)), x)
    np.testing.assert_allclose(ecp.neighbor_fill(ecp.avg_pool2d(x), shape=(9, 7)), x, rtol=1e-15)


# ----------------------------------------------------------------------------- gradient checks

@pytest.mark.parametrize("shape", [(2, 2, 5, 6), (1, 3, 4, 7)], ids=sid)
def test_random_pool2d_backward_gradcheck(shape):
    for mode in MODES:
        x = rand(shape, np.float64, 20 + mode)
        g = rand(pooled(shape), np.float64, 30 + mode)
        num = numerical_grad(lambda: float(np.sum(ecp.random_pool2d(x, mode) * g)), x)
        assert_grad(ecp.random_pool2d_backward(g, mode, shape), num)


@pytest.mark.parametrize("shape", [(2, 2, 5, 6), (1, 3, 4, 7)], ids=sid)
def test_max_pool2d_backward_gradcheck(shape):
    rng = np.random.default_rng(40)
    # distinct values at least 0.5 apart: no window has a near-tie a step of eps could flip
    x = (rng.permutation(np.prod(shape)) * 0.5 + rng.uniform(0, 0.01, np.prod(shape))).reshape(shape)
    g = rand(pooled(shape), np.float64, 41)
    num = numerical_grad(lambda: float(np.sum(ecp.max_pool2d(x) * g)), x)
    _, idx = ecp.max_pool2d(x, return_indices=True)
    assert_grad(ecp.max_pool2d_backward(g, idx, shape), num)


@pytest.mark.parametrize("shape", [(2, 2, 5, 6), (1, 3, 4, 7)], ids=sid)
def test_avg_pool2d_backward_gradcheck(shape):
    x = rand(shape, np.float64, 50)
    g = rand(pooled(shape), np.float64, 51)
    num = numerical_grad(lambda: float(np.sum(ecp.avg_pool2d(x) * g)), x)
    assert_grad(ecp.avg_pool2d_backward(g, shape), num)


@pytest.mark.parametrize("hw", [(4, 6), (5, 6), (4, 7), (5, 3), (2, 2)])
def test_neighbor_fill_backward_gradcheck(hw):
    y = rand((2, 2, hw[0] // 2, hw[1] // 2), np.float64, 60)
    g = rand((2, 2) + hw, np.float64, 61)
    num = numerical_grad(lambda: float(np.sum(ecp.neighbor_fill(y, shape=hw) * g)), y)
    assert_grad(ecp.neighbor_fill_backward(g), num)


# ----------------------------------------------------------------------------- ties, NaN, inf

@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool2d_all_equal_windows_pick_the_top_left(dtype):
    x = np.full((2, 3, 6, 7), 1.25, dtype)
    y, idx = ecp.max_pool2d(x, return_indices=True)
    assert (y == 1.25).all()
    r, q = np.meshgrid(np.arange(3), np.arange(3), indexing="ij")
    np.testing.assert_array_equal(idx, np.broadcast_to(2 * r * 7 + 2 * q, idx.shape))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_max_pool2d_partial_ties_pick_the_first_max(seed, dtype):
    rng = np.random.default_rng(seed)
    x = rng.integers(-1, 2, (3, 4, 9, 8)).astype(dtype)   # values in {-1, 0, 1}: ties everywhere
    values, idx = max_pool_ref(x)
    y, got = ecp.max_pool2d(x, return_indices=True)
    assert_exact(y, values, dtype)
    np.testing.assert_array_equal(got, idx)


def test_max_pool2d_special_values():
    nan, inf = np.nan, np.inf
    cases = [  # window (row-major), expected value, expected position in the window
        ([nan, 1, 2, 3], nan, 0),
        ([1, nan, 2, nan], nan, 1),       # the first NaN
        ([1, 2, 3, nan], nan, 3),
        ([nan, inf, -inf, 0], nan, 0),
        ([inf, nan, 0, 0], nan, 1),       # NaN beats +inf
        ([inf, 1, inf, 2], inf, 0),
        ([1, 2, 3, inf], inf, 3),
        ([-inf, -inf, -inf, -inf], -inf, 0),
        ([-inf, -inf, -5, -inf], -5, 2),
        ([-0.0, 0.0, -0.0, 0.0], -0.0, 0),  # 0.0 == -0.0: a tie, the first wins
        ([-3e38, -3.1e38, -2e38, -3.2e38], -2e38, 2),
    ]
    for dtype in DTYPES:
        row = np.array([c[0] for c in cases], np.float64).reshape(-1, 2, 2)   # (windows, 2, 2)
        x = row.transpose(1, 0, 2).reshape(1, 1, 2, 2 * len(cases)).astype(dtype)
        want = np.array([c[1] for c in cases]).astype(dtype)
        y, idx = ecp.max_pool2d(x, return_indices=True)
        np.testing.assert_array_equal(y[0, 0, 0], want)
        pos = np.array([c[2] for c in cases])
        np.testing.assert_array_equal(idx[0, 0, 0], (pos // 2) * x.shape[3] + 2 * np.arange(len(cases)) + pos % 2)
        # the value is the very element at the index (same bits: -0.0 stays -0.0)
        picked = x.reshape(-1)[idx[0, 0, 0]]
        np.testing.assert_array_equal(y[0, 0, 0].view(np.uint8), picked.view(np.uint8))
        assert np.signbit(y[0, 0, 0, 9])
        # agrees with the NumPy oracle
        values, ref_idx = max_pool_ref(x)
        np.testing.assert_array_equal(idx, ref_idx)
        np.testing.assert_array_equal(y, values)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool2d_random_special_values_match_numpy(dtype):
    rng = np.random.default_rng(70)
    x = rng.integers(-2, 3, (2, 3, 11, 10)).astype(dtype)
    specials = np.array([np.nan, np.inf, -np.inf], dtype)
    mask = rng.random(x.shape) < 0.15
    x[mask] = rng.choice(specials, mask.sum())
    x[0, 0, :4, :4] = -np.inf
    values, idx = max_pool_ref(x)
    y, got = ecp.max_pool2d(x, return_indices=True)
    np.testing.assert_array_equal(y, values)  # NaN == NaN for assert_array_equal
    np.testing.assert_array_equal(got, idx)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(np.isnan(y), np.isnan(windows(x)).any(-1))
    assert (y[0, 0, :2, :2] == -np.inf).all()


def test_avg_pool2d_propagates_nan_and_inf():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 0, 1] = np.nan
    x[0, 0, 3, 0] = np.inf
    x[0, 0, 2, 3] = -np.inf
    y = ecp.avg_pool2d(x)[0, 0]
    assert np.isnan(y[0, 0]) and y[0, 1] == 0 and y[1, 0] == np.inf and y[1, 1] == -np.inf


def test_max_pool2d_backward_accumulates_repeated_indices():
    """Indices are positions in the plane; two windows naming the same one add up (any index in
    range is accepted, as PyTorch's own backward does)."""
    dy = np.array([[[[1.0, 2.0], [4.0, 8.0]]]])
    idx = np.array([[[[5, 5], [0, 15]]]])
    dx = ecp.max_pool2d_backward(dy, idx, (1, 1, 4, 4))
    want = np.zeros(16)
    want[[5, 0, 15]] = [3.0, 4.0, 8.0]
    np.testing.assert_array_equal(dx.ravel(), want)
    rng = np.random.default_rng(71)
    idx = rng.integers(0, 35, (2, 3, 2, 3))
    dy = rng.standard_normal((2, 3, 2, 3))
    assert_close(ecp.max_pool2d_backward(dy, idx, (2, 3, 5, 7)),
                 max_pool_backward_ref(dy, idx, (2, 3, 5, 7)), np.float64)


# ----------------------------------------------------------------------------- memory layouts

def _layouts(a):
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1] + 1,), a.dtype)
    big[..., 1::2] = a
    readonly = a.copy()
    readonly.setflags(write=False)
    return {
        "sliced": big[..., 1::2],
        "fortran": np.asfortranarray(a),
        "readonly": readonly,
        "negstride": np.ascontiguousarray(a[..., ::-1])[..., ::-1],
        "transposed": np.ascontiguousarray(a.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2),
    }


def _pool_calls(dtype):
    shape = (2, 3, 7, 6)
    x = rand(shape, dtype, 80)
    dy = rand(pooled(shape), dtype, 81)
    _, idx = ecp.max_pool2d(x, return_indices=True)
    return {
        "random_pool2d": (lambda x: ecp.random_pool2d(x, 2), dict(x=x)),
        "random_pool2d_backward": (lambda dy: ecp.random_pool2d_backward(dy, 1, shape), dict(dy=dy)),
        "max_pool2d": (lambda x: ecp.max_pool2d(x, return_indices=True), dict(x=x)),
        "max_pool2d_backward": (lambda dy, idx: ecp.max_pool2d_backward(dy, idx, shape), dict(dy=dy, idx=idx)),
        "avg_pool2d": (lambda x: ecp.avg_pool2d(x), dict(x=x)),
        "avg_pool2d_backward": (lambda dy: ecp.avg_pool2d_backward(dy, shape), dict(dy=dy)),
        "neighbor_fill": (lambda y: ecp.neighbor_fill(y, shape=(7, 6)), dict(y=dy)),
        "neighbor_fill_backward": (lambda dy: ecp.neighbor_fill_backward(dy), dict(dy=x)),
    }


POOL_FUNCS = ["random_pool2d", "random_pool2d_backward", "max_pool2d", "max_pool2d_backward", "avg_pool2d",
              "avg_pool2d_backward", "neighbor_fill", "neighbor_fill_backward"]


def _as_tuple(r):
    return r if isinstance(r, tuple) else (r,)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", POOL_FUNCS)
def test_memory_layouts_give_identical_results(name, dtype):
    fn, args = _pool_calls(dtype)[name]
    baseline = _as_tuple(fn(**args))
    assert baseline[0].dtype == dtype and baseline[0].flags.c_contiguous
    for arg in args:
        variants = _layouts(args[arg])
        if arg == "idx":  # any integer dtype is accepted for the indices
            variants["int32"] = args[arg].astype(np.int32)
            variants["uint16"] = args[arg].astype(np.uint16)
        for layout, variant in variants.items():
            before = variant.copy()
            got = _as_tuple(fn(**{**args, arg: variant}))
            for g, want in zip(got, baseline):
                assert g.dtype == want.dtype and g.flags.c_contiguous, (arg, layout)
                np.testing.assert_array_equal(g, want, err_msg=f"{name}: {arg} {layout}")
            np.testing.assert_array_equal(variant, before, err_msg=f"{name} modified {arg} ({layout})")
            assert variant.dtype == before.dtype


@pytest.mark.parametrize("name", POOL_FUNCS)
def test_inputs_are_not_modified(name):
    fn, args = _pool_calls(np.float32)[name]
    copies = {k: v.copy() for k, v in args.items()}
    fn(**args)
    fn(**args)
    for k in args:
        np.testing.assert_array_equal(args[k], copies[k])


# ----------------------------------------------------------------------------- PyTorch parity

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("shape", [(2, 3, 7, 9), (1, 2, 8, 6), (2, 1, 2, 5)], ids=sid)
def test_max_and_avg_pool_match_pytorch(torch, shape, ties, dtype):
    F = torch.nn.functional
    rng = np.random.default_rng(90)
    x = (rng.integers(-1, 2, shape) if ties else rng.standard_normal(shape)).astype(dtype)
    g = rng.standard_normal(pooled(shape)).astype(dtype)

    xt = torch.tensor(x, requires_grad=True)
    yt, it = F.max_pool2d(xt, 2, return_indices=True)
    (yt * torch.tensor(g)).sum().backward()
    y, idx = ecp.max_pool2d(x, return_indices=True)
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(idx, it.numpy())
    np.testing.assert_array_equal(ecp.max_pool2d_backward(g, idx, shape), xt.grad.numpy())

    xt = torch.tensor(x, requires_grad=True)
    yt = F.avg_pool2d(xt, 2)
    (yt * torch.tensor(g)).sum().backward()
    assert_close(ecp.avg_pool2d(x), yt.detach().numpy().astype(np.float64), dtype)
    assert_close(ecp.avg_pool2d_backward(g, shape), xt.grad.numpy().astype(np.float64), dtype)


def test_max_pool_matches_pytorch_on_inf(torch):
    x = np.array([[[[-np.inf, -np.inf, 1, np.inf], [-np.inf, -np.inf, np.inf, 0]]]], np.float32)
    yt, it = torch.nn.functional.max_pool2d(torch.tensor(x), 2, return_indices=True)
    y, idx = ecp.max_pool2d(x, return_indices=True)
    np.testing.assert_array_equal(y, yt.numpy())
    np.testing.assert_array_equal(idx, it.numpy())


# ----------------------------------------------------------------------------- empty batch

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(0, 3, 5, 4), (2, 0, 4, 4)], ids=sid)
def test_empty_inputs(shape, dtype):
    x = np.zeros(shape, dtype)
    p = pooled(shape)
    dy = np.zeros(p, dtype)
    for y in (ecp.random_pool2d(x, 3), ecp.max_pool2d(x), ecp.avg_pool2d(x), ecp.neighbor_fill_backward(x),
              ecp.random_pool2d_backward(dy, 1, shape), ecp.avg_pool2d_backward(dy, shape),
              ecp.max_pool2d_backward(dy, np.zeros(p, np.int64), shape), ecp.neighbor_fill(dy, shape=shape[2:])):
        assert y.dtype == dtype and y.flags.c_contiguous and y.size == 0
    assert ecp.max_pool2d(x, return_indices=True)[1].shape == p
    assert ecp.random_pool2d_backward(dy, 1, shape).shape == shape
    assert ecp.neighbor_fill(dy, shape=shape[2:]).shape == shape
