"""Correctness of the convolution kernels: ``ecp/_kernels/_conv.pyx`` through ``ecp/conv.py``.

Every result is compared with the slow float64 NumPy oracles of :mod:`ecp.testing`, with
central differences, with the identities that define Easy Convolution, and with PyTorch.
"""
import dataclasses

import numpy as np
import pytest

import ecp
import ecp._dispatch
import ecp._plans
import ecp.conv
import ecp.testing as reference
from ecp._kernels import _blas
from gradcheck import numerical_grad

DTYPES = [np.float32, np.float64]
MODES = [0, 1, 2, 3]
TOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}


# ----------------------------------------------------------------------------- oracles

def conv_ref(x, w, b=None, padding=0):
    return reference.conv2d(x, w, b, padding=padding)


def conv_backward_ref(dy, x, w, padding=0):
    return reference.conv2d_backward(dy, x, w, padding=padding)


def pair(padding):
    """(ph, pw) of an int padding or a pair."""
    return (padding, padding) if np.ndim(padding) == 0 else tuple(padding)


def full_hw(x_shape, w_shape, padding):
    ph, pw = pair(padding)
    return (x_shape[2] + 2 * ph - w_shape[2] + 1, x_shape[3] + 2 * pw - w_shape[3] + 1)


def easy_ref(x, w, b, mode, padding):
    return reference.easy_conv2d(x, w, b, mode=mode, padding=padding)


def easy_backward_ref(dy, x, w, mode, padding):
    return reference.easy_conv2d_backward(dy, x, w, mode=mode, padding=padding)


def assert_close(actual, expected, dtype):
    """Same shape, dtype ``dtype``, C-contiguous, and equal within the dtype's tolerance
    (relative to the largest magnitude of ``expected``)."""
    assert isinstance(actual, np.ndarray)
    assert actual.dtype == np.dtype(dtype), (actual.dtype, dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.flags.c_contiguous
    tol = TOL[np.dtype(dtype)]
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale)


def assert_grad(analytic, numeric):
    assert analytic.dtype == np.float64
    scale = max(1.0, float(np.max(np.abs(numeric), initial=0.0)))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-6 * scale)


def set_thresholds(monkeypatch, **changes):
    """Replace ecp._dispatch.thresholds for one test (a new table: every cached plan is remade)."""
    monkeypatch.setattr(ecp._dispatch, "thresholds", dataclasses.replace(ecp._dispatch.thresholds, **changes))


# ----------------------------------------------------------------------------- cases

# (N, C, H, W, O, kh, kw, padding): odd sizes, non-square kernels (2x3, 3x2, 4x2), 1x1,
# kernels as large as the padded input, padding 0..2, several channels and filters.
GEOMS = [
    (2, 3, 7, 9, 4, 3, 3, 1),
    (1, 1, 5, 6, 1, 2, 3, 0),
    (3, 2, 6, 5, 3, 3, 2, 2),
    (2, 3, 4, 4, 2, 1, 1, 0),
    (2, 2, 3, 5, 3, 5, 7, 1),     # kernel == padded input: 1x1 output
    (2, 2, 1, 1, 3, 3, 3, 1),     # 1x1 input, kernel == padded input
    (1, 4, 8, 8, 5, 3, 3, 2),
    (4, 1, 9, 7, 2, 4, 2, 1),
    (5, 3, 11, 10, 2, 5, 5, 2),
    (2, 2, 6, 7, 2, 2, 3, 0),
    (3, 2, 4, 6, 2, 4, 5, 1),     # kernel + 2 == padded input: 2x... output
    (2, 1, 5, 5, 2, 1, 1, 2),     # 1x1 kernel reading mostly padding
]
# Easy Convolution needs a full output of at least 2x2.
EASY_GEOMS = [g for g in GEOMS if min(full_hw((g[0], g[1], g[2], g[3]), (g[4], g[1], g[5], g[6]), g[7])) >= 2]


def gid(g):
    return "N{}C{}_{}x{}_O{}k{}x{}_p{}".format(*g[:7], "x".join(map(str, pair(g[7]))))


def make(geom, dtype, seed, bias=True):
    n, c, h, wd, o, kh, kw, p = geom
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, wd)).astype(dtype)
    w = rng.standard_normal((o, c, kh, kw)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype) if bias else None
    return x, w, b, p, rng


# ----------------------------------------------------------------------------- full convolution

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geom", GEOMS, ids=gid)
def test_conv2d_matches_oracle(geom, dtype):
    x, w, b, p, _ = make(geom, dtype, 1)
    assert_close(ecp.conv2d(x, w, b, padding=p), conv_ref(x, w, b, p), dtype)
    assert_close(ecp.conv2d(x, w, padding=p), conv_ref(x, w, None, p), dtype)
    assert ecp.conv2d_output_shape(x.shape, w.shape, p) == conv_ref(x, w, None, p).shape


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geom", GEOMS, ids=gid)
def test_conv2d_backward_matches_oracle(geom, dtype):
    x, w, _, p, rng = make(geom, dtype, 2, bias=False)
    dy = rng.standard_normal(conv_ref(x, w, None, p).shape).astype(dtype)
    dx, dw, db = ecp.conv2d_backward(dy, x, w, padding=p)
    rdx, rdw, rdb = conv_backward_ref(dy, x, w, p)
    assert_close(dx, rdx, dtype)
    assert_close(dw, rdw, dtype)
    assert_close(db, rdb, dtype)
    # compute_dx=False: no dx, the same dw and db
    none, dw2, db2 = ecp.conv2d_backward(dy, x, w, padding=p, compute_dx=False)
    assert none is None
    np.testing.assert_array_equal(dw2, dw)
    np.testing.assert_array_equal(db2, db)


def test_conv2d_backward_is_the_adjoint_of_conv2d():
    """<conv2d(x, w), g> = <x, dx(g)> = <w, dw(g)>: forward and backward agree with each other."""
    x, w, _, p, rng = make((3, 2, 7, 6, 4, 3, 2, 1), np.float64, 3, bias=False)
    g = rng.standard_normal(ecp.conv2d(x, w, padding=p).shape)
    dx, dw, _ = ecp.conv2d_backward(g, x, w, padding=p)
    lhs = np.sum(ecp.conv2d(x, w, padding=p) * g)
    np.testing.assert_allclose(np.sum(x * dx), lhs, rtol=1e-12)
    np.testing.assert_allclose(np.sum(w * dw), lhs, rtol=1e-12)


@pytest.mark.parametrize("geom", [GEOMS[0], GEOMS[2], GEOMS[4], GEOMS[7], GEOMS[9]], ids=gid)
def test_conv2d_backward_gradcheck(geom):
    x, w, b, p, rng = make(geom, np.float64, 4)
    g = rng.standard_normal(ecp.conv2d(x, w, b, padding=p).shape)

    def loss():
        return float(np.sum(ecp.conv2d(x, w, b, padding=p) * g))

    dx, dw, db = ecp.conv2d_backward(g, x, w, padding=p)
    assert_grad(dx, numerical_grad(loss, x))
    assert_grad(dw, numerical_grad(loss, w))
    assert_grad(db, numerical_grad(loss, b))


def test_conv2d_known_values():
    """A hand-checkable case: ones everywhere, padding 1 -> counts of in-image taps, plus bias."""
    x = np.ones((1, 1, 3, 4))
    w = np.ones((2, 1, 3, 3))
    y = ecp.conv2d(x, w, np.array([0.0, 10.0]), padding=1)
    counts = np.array([[4, 6, 6, 4], [6, 9, 9, 6], [4, 6, 6, 4]], float)
    np.testing.assert_array_equal(y[0, 0], counts)
    np.testing.assert_array_equal(y[0, 1], counts + 10)
    # cross-correlation, not convolution: no kernel flip
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    w = np.zeros((1, 1, 3, 3))
    w[0, 0, 0, 0] = 1.0
    assert ecp.conv2d(x, w)[0, 0, 0, 0] == 0.0
    w = np.zeros((1, 1, 2, 2))
    w[0, 0, 1, 0] = 1.0  # picks x[r + 1, q]
    np.testing.assert_array_equal(ecp.conv2d(x, w)[0, 0], x[0, 0, 1:, :2])


# ----------------------------------------------------------------------------- Easy Convolution

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("geom", EASY_GEOMS, ids=gid)
def test_easy_conv2d_matches_oracle_and_identities(geom, mode, dtype):
    x, w, b, p, _ = make(geom, dtype, 10 + mode)
    y = ecp.easy_conv2d(x, w, b, mode=mode, padding=p)
    ho, wo = full_hw(x.shape, w.shape, p)
    assert y.shape == (x.shape[0], w.shape[0], ho // 2, wo // 2)
    # stride-2 convolution of the shifted padded input
    assert_close(y, easy_ref(x, w, b, mode, p), dtype)
    # the full convolution at the mode-K positions, cropped to (Ho//2, Wo//2)
    full = conv_ref(x, w, b, p)
    assert_close(y, full[:, :, mode // 2::2, mode % 2::2][:, :, : ho // 2, : wo // 2], dtype)
    # Random Pooling of ecp's own full convolution (it crops odd sizes the same way)
    assert_close(y, ecp.random_pool2d(ecp.conv2d(x, w, b, padding=p), mode).astype(np.float64), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("geom", EASY_GEOMS, ids=gid)
def test_easy_conv2d_backward_matches_oracle_and_identities(geom, mode, dtype):
    x, w, _, p, rng = make(geom, dtype, 20 + mode, bias=False)
    ho, wo = full_hw(x.shape, w.shape, p)
    dy = rng.standard_normal((x.shape[0], w.shape[0], ho // 2, wo // 2)).astype(dtype)
    dx, dw, db = ecp.easy_conv2d_backward(dy, x, w, mode=mode, padding=p)
    rdx, rdw, rdb = easy_backward_ref(dy, x, w, mode, p)
    assert_close(dx, rdx, dtype)
    assert_close(dw, rdw, dtype)
    assert_close(db, rdb, dtype)
    # == conv2d_backward of dy scattered to the mode-K positions of the full output
    scattered = ecp.random_pool2d_backward(dy, mode, (x.shape[0], w.shape[0], ho, wo))
    fdx, fdw, fdb = ecp.conv2d_backward(scattered, x, w, padding=p)
    assert_close(dx, fdx.astype(np.float64), dtype)
    assert_close(dw, fdw.astype(np.float64), dtype)
    assert_close(db, fdb.astype(np.float64), dtype)
    none, dw2, db2 = ecp.easy_conv2d_backward(dy, x, w, mode=mode, padding=p, compute_dx=False)
    assert none is None
    np.testing.assert_array_equal(dw2, dw)
    np.testing.assert_array_equal(db2, db)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("geom", [(2, 2, 7, 6, 3, 3, 2, 1), (1, 3, 6, 9, 2, 2, 3, 2), (2, 1, 5, 5, 2, 1, 1, 0)],
                         ids=gid)
def test_easy_conv2d_backward_gradcheck(geom, mode):
    x, w, b, p, rng = make(geom, np.float64, 30 + mode)
    g = rng.standard_normal(ecp.easy_conv2d(x, w, b, mode=mode, padding=p).shape)

    def loss():
        return float(np.sum(ecp.easy_conv2d(x, w, b, mode=mode, padding=p) * g))

    dx, dw, db = ecp.easy_conv2d_backward(g, x, w, mode=mode, padding=p)
    assert_grad(dx, numerical_grad(loss, x))
    assert_grad(dw, numerical_grad(loss, w))
    assert_grad(db, numerical_grad(loss, b))


def test_easy_conv2d_mode_positions_by_hand():
    """With a 1x1 identity kernel Easy Convolution is Random Pooling: mode K keeps window
    position K, row-major (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right)."""
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.ones((1, 1, 1, 1))
    expected = {0: [[0, 2], [8, 10]], 1: [[1, 3], [9, 11]], 2: [[4, 6], [12, 14]], 3: [[5, 7], [13, 15]]}
    for mode, want in expected.items():
        np.testing.assert_array_equal(ecp.easy_conv2d(x, w, mode=mode)[0, 0], want)
        # numpy integers are valid modes too
        np.testing.assert_array_equal(ecp.easy_conv2d(x, w, mode=np.int64(mode))[0, 0], want)


# ----------------------------------------------------------------------------- batch of zero

@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_batch(dtype):
    x = np.zeros((0, 3, 7, 6), dtype)
    w = np.ones((2, 3, 3, 2), dtype)
    b = np.ones(2, dtype)
    y = ecp.conv2d(x, w, b, padding=1)
    assert y.shape == (0, 2, 7, 7) and y.dtype == dtype
    dx, dw, db = ecp.conv2d_backward(y, x, w, padding=1)
    assert dx.shape == x.shape and dx.dtype == dtype
    np.testing.assert_array_equal(dw, np.zeros_like(w))
    np.testing.assert_array_equal(db, np.zeros(2, dtype))
    for mode in MODES:
        ye = ecp.easy_conv2d(x, w, b, mode=mode, padding=1)
        assert ye.shape == (0, 2, 3, 3) and ye.dtype == dtype
        dx, dw, db = ecp.easy_conv2d_backward(ye, x, w, mode=mode, padding=1)
        assert dx.shape == x.shape and dx.dtype == dtype and dw.dtype == dtype
        assert not dw.any() and not db.any()


@pytest.mark.parametrize("shape", [(2, 1, 0, 5), (2, 1, 4, 0)])
def test_input_with_no_rows_or_columns(shape):
    """A map with no rows (or columns) plus padding is all padding. Either answer is sound: the
    padding-only result (the bias everywhere, an empty dx), or a ValueError about x (PyTorch's
    choice); never garbage -- the kernels must not index into an empty plane (a bounds-checked
    build, ECP_CYTHON_DEBUG=1, catches that)."""
    x = np.zeros(shape)
    w = np.ones((2, 1, 1, 1))
    b = np.array([1.5, -2.0])
    try:
        y = ecp.conv2d(x, w, b, padding=1)
    except ValueError as exc:
        assert "x" in str(exc) and str(shape) in str(exc)
        return
    np.testing.assert_array_equal(y, conv_ref(x, w, b, 1))
    dx, dw, db = ecp.conv2d_backward(np.ones_like(y), x, w, padding=1)
    assert dx.shape == x.shape
    np.testing.assert_array_equal(dw, np.zeros_like(w))
    np.testing.assert_array_equal(db, [y[:, 0].size, y[:, 1].size])
    for mode in MODES:
        np.testing.assert_array_equal(ecp.easy_conv2d(x, w, b, mode=mode, padding=1),
                                      easy_ref(x, w, b, mode, 1))


def test_large_padding():
    """Padding much larger than the image: mostly zeros, the image in the middle."""
    x = np.random.default_rng(5).standard_normal((1, 2, 3, 2))
    w = np.random.default_rng(6).standard_normal((3, 2, 2, 2))
    for mode in MODES:
        assert_close(ecp.easy_conv2d(x, w, mode=mode, padding=20), easy_ref(x, w, None, mode, 20), np.float64)
    assert_close(ecp.conv2d(x, w, padding=20), conv_ref(x, w, None, 20), np.float64)


# ----------------------------------------------------------------------------- NaN and inf

@pytest.mark.parametrize("mode", [None] + MODES)
def test_nan_reaches_exactly_the_outputs_that_read_it(mode):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 2, 9, 8))
    x[0, 1, 4, 4] = np.nan
    x[2, 0, 0, 7] = np.nan
    # no zero weights, so "reads the NaN" == "the indicator convolves to non-zero"
    w = rng.uniform(0.5, 1.5, (3, 2, 3, 2)) * rng.choice([-1.0, 1.0], (3, 2, 3, 2))
    p = 1
    nan_in = np.isnan(x).astype(float)
    if mode is None:
        y = ecp.conv2d(x, w, padding=p)
        reads = conv_ref(nan_in, np.ones_like(w), None, p) > 0
    else:
        y = ecp.easy_conv2d(x, w, mode=mode, padding=p)
        reads = easy_ref(nan_in, np.ones_like(w), None, mode, p) > 0
    assert reads.any() and not reads.all()
    np.testing.assert_array_equal(np.isnan(y), reads)


def test_nan_in_dy_reaches_exactly_the_dx_it_flows_to():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 2, 7, 7))
    w = rng.uniform(0.5, 1.5, (2, 2, 3, 3))
    dy = rng.standard_normal((2, 2, 7, 7))
    dy[1, 0, 3, 6] = np.nan
    dx, dw, db = ecp.conv2d_backward(dy, x, w, padding=1)
    hit = conv_backward_ref(np.isnan(dy).astype(float), np.ones_like(x), np.ones_like(w), 1)[0] > 0
    assert hit.any() and not hit.all()
    np.testing.assert_array_equal(np.isnan(dx), hit)
    np.testing.assert_array_equal(np.isnan(db), [True, False])


@pytest.mark.parametrize("mode", [None] + MODES)
def test_inf_reaches_exactly_the_outputs_that_read_it(mode):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 2, 8, 9))
    x[1, 0, 5, 2] = np.inf
    w = rng.uniform(0.5, 1.5, (2, 2, 2, 3))  # positive: inf stays +inf, never inf - inf
    ind = np.isinf(x).astype(float)
    if mode is None:
        y = ecp.conv2d(x, w, padding=2)
        reads = conv_ref(ind, np.ones_like(w), None, 2) > 0
    else:
        y = ecp.easy_conv2d(x, w, mode=mode, padding=2)
        reads = easy_ref(ind, np.ones_like(w), None, mode, 2) > 0
    assert reads.any()
    np.testing.assert_array_equal(y == np.inf, reads)
    assert np.isfinite(y[~reads]).all()


# ----------------------------------------------------------------------------- chunking

def _per_sample(x_shape, w_shape, out_hw):
    return x_shape[1] * w_shape[2] * w_shape[3] * out_hw[0] * out_hw[1]


CHUNK_BATCH = 23  # prime: every chunk size from 2 up leaves a ragged last chunk


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("which", ["conv", "easy1", "easy2"])
@pytest.mark.parametrize("budget", [1, 2.5, 3, 4.9])
def test_chunking_does_not_change_results(monkeypatch, which, budget, dtype):
    """``cols_budget`` of ``ecp._dispatch.thresholds`` (elements of unrolled windows per chunk) cut small: one sample
    per chunk (budget 1 element), or budget/sample-size samples with a ragged last chunk."""
    x, w, b, p, rng = make((CHUNK_BATCH, 2, 9, 8, 3, 3, 2, 1), dtype, 40)
    mode = None if which == "conv" else int(which[-1])
    if mode is None:
        ref = conv_ref(x, w, b, p)
        dy = rng.standard_normal(ref.shape).astype(dtype)
        rdx, rdw, rdb = conv_backward_ref(dy, x, w, p)
    else:
        ref = easy_ref(x, w, b, mode, p)
        dy = rng.standard_normal(ref.shape).astype(dtype)
        rdx, rdw, rdb = easy_backward_ref(dy, x, w, mode, p)
    out_hw = ref.shape[2:]

    def run():
        if mode is None:
            return (ecp.conv2d(x, w, b, padding=p),) + ecp.conv2d_backward(dy, x, w, padding=p)
        return (ecp.easy_conv2d(x, w, b, mode=mode, padding=p),) + ecp.easy_conv2d_backward(
            dy, x, w, mode=mode, padding=p)

    natural = ecp._dispatch.group(x.shape, w.shape, out_hw)
    baseline = run()
    ps = _per_sample(x.shape, w.shape, out_hw)
    set_thresholds(monkeypatch, cols_budget=1 if budget == 1 else int(budget * ps))
    group = ecp._dispatch.group(x.shape, w.shape, out_hw)
    # the test exercises the chunking it means to: the budget binds
    if budget == 1:
        assert group == 1
    else:
        assert group == min(natural, int(budget)) and group >= 2 and CHUNK_BATCH % group, (natural, group)
    chunked = run()
    for got, want, base in zip(chunked, (ref, rdx, rdw, rdb), baseline):
        assert_close(got, want, dtype)
        assert_close(got, base.astype(np.float64), dtype)


# (N, C, H, W, O, kh, kw, padding) with at least 1.5 x item_columns (512) output pixels
# per sample: the forward pass cuts each sample into blocks of output rows. Full outputs 30x26 and
# 50x47, Easy outputs 33x28.
ROW_CASES = [((2, 2, 30, 25, 3, 3, 2, 1), None), ((1, 3, 50, 47, 2, 3, 3, 1), None)] + [
    ((1, 3, 66, 57, 2, 3, 3, 1), mode) for mode in MODES]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("budget", [None, 1, 7])
@pytest.mark.parametrize("geom,mode", ROW_CASES, ids=lambda v: gid(v) if isinstance(v, tuple) else f"mode{v}")
def test_row_blocks_do_not_change_results(monkeypatch, geom, mode, budget, dtype):
    """Large maps: row blocks of the default size, of one row (cols_budget = 1 element) and of
    7 rows (a budget of 7 rows' unrolled windows, leaving a ragged last block)."""
    x, w, b, p, _ = make(geom, dtype, 45)
    if mode is None:
        ref = conv_ref(x, w, b, p)
        run = lambda: ecp.conv2d(x, w, b, padding=p)  # noqa: E731
    else:
        ref = easy_ref(x, w, b, mode, p)
        run = lambda: ecp.easy_conv2d(x, w, b, mode=mode, padding=p)  # noqa: E731
    hq, wq = ref.shape[2:]
    if budget is not None:
        per_row = x.shape[1] * w.shape[2] * w.shape[3] * wq
        set_thresholds(monkeypatch, cols_budget=budget if budget == 1 else budget * per_row)
    # the test exercises the blocks it means to
    rows = ecp._dispatch.rows(x.shape, w.shape, (hq, wq))
    assert rows < hq
    if budget is not None:
        assert rows == budget and (budget == 1 or hq % budget), (rows, hq)
    assert_close(run(), ref, dtype)


# ----------------------------------------------------------------------------- memory layouts

def _layouts(a):
    """Same values, other memory: sliced (non-contiguous), Fortran order, read-only, reversed."""
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1] + 1,), a.dtype)
    big[..., 1::2] = a
    sliced = big[..., 1::2]
    readonly = a.copy()
    readonly.setflags(write=False)
    reversed_ = np.ascontiguousarray(a[..., ::-1])[..., ::-1]
    out = {"sliced": sliced, "fortran": np.asfortranarray(a), "readonly": readonly, "negstride": reversed_}
    if a.ndim == 4:
        out["transposed"] = np.ascontiguousarray(a.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    return out


def _conv_calls(dtype):
    x, w, b, p, rng = make((3, 2, 7, 6, 3, 3, 2, 1), dtype, 50)
    dy_full = rng.standard_normal(conv_ref(x, w, None, p).shape).astype(dtype)
    dy_easy = rng.standard_normal(easy_ref(x, w, None, 3, p).shape).astype(dtype)
    return {
        "conv2d": (lambda x, w, b: ecp.conv2d(x, w, b, padding=p), dict(x=x, w=w, b=b)),
        "conv2d_backward": (lambda dy, x, w: ecp.conv2d_backward(dy, x, w, padding=p),
                            dict(dy=dy_full, x=x, w=w)),
        "easy_conv2d": (lambda x, w, b: ecp.easy_conv2d(x, w, b, mode=3, padding=p), dict(x=x, w=w, b=b)),
        "easy_conv2d_backward": (lambda dy, x, w: ecp.easy_conv2d_backward(dy, x, w, mode=3, padding=p),
                                 dict(dy=dy_easy, x=x, w=w)),
    }


def _as_tuple(r):
    return r if isinstance(r, tuple) else (r,)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["conv2d", "conv2d_backward", "easy_conv2d", "easy_conv2d_backward"])
def test_memory_layouts_give_identical_results(name, dtype):
    fn, args = _conv_calls(dtype)[name]
    baseline = _as_tuple(fn(**args))
    for out in baseline:
        assert out.flags.c_contiguous and out.dtype == dtype
    for arg in args:
        for layout, variant in _layouts(args[arg]).items():
            np.testing.assert_array_equal(variant, args[arg])
            before = variant.copy()
            got = _as_tuple(fn(**{**args, arg: variant}))
            for g, want in zip(got, baseline):
                assert g.dtype == dtype and g.flags.c_contiguous, (arg, layout)
                np.testing.assert_array_equal(g, want, err_msg=f"{name}: {arg} {layout}")
            np.testing.assert_array_equal(variant, before, err_msg=f"{name} modified {arg} ({layout})")
    # every input read-only at once
    frozen = {}
    for k, v in args.items():
        frozen[k] = v.copy()
        frozen[k].setflags(write=False)
    for g, want in zip(_as_tuple(fn(**frozen)), baseline):
        np.testing.assert_array_equal(g, want)


@pytest.mark.parametrize("name", ["conv2d", "conv2d_backward", "easy_conv2d", "easy_conv2d_backward"])
def test_inputs_are_not_modified(name):
    fn, args = _conv_calls(np.float32)[name]
    copies = {k: v.copy() for k, v in args.items()}
    fn(**args)
    fn(**args)
    for k in args:
        np.testing.assert_array_equal(args[k], copies[k])


def test_lists_of_floats_are_accepted_as_float64():
    x, w, b, p, _ = make((1, 2, 5, 4, 2, 2, 3, 1), np.float64, 60)
    y = ecp.conv2d(x.tolist(), w.tolist(), b.tolist(), padding=p)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, ecp.conv2d(x, w, b, padding=p))


# ----------------------------------------------------------------------------- PyTorch parity

def _t(torch, a, grad=False):
    return torch.tensor(a, requires_grad=grad)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding", [0, 1, 2])
def test_conv2d_matches_pytorch(torch, padding, dtype):
    F = torch.nn.functional
    x, w, b, p, rng = make((3, 3, 8, 7, 4, 3, 2, padding), dtype, 70 + padding)
    xt, wt, bt = _t(torch, x, True), _t(torch, w, True), _t(torch, b, True)
    yt = F.conv2d(xt, wt, bt, padding=p)
    y = ecp.conv2d(x, w, b, padding=p)
    assert_close(y, yt.detach().numpy().astype(np.float64), dtype)
    g = rng.standard_normal(y.shape).astype(dtype)
    (yt * _t(torch, g)).sum().backward()
    dx, dw, db = ecp.conv2d_backward(g, x, w, padding=p)
    assert_close(dx, xt.grad.numpy().astype(np.float64), dtype)
    assert_close(dw, wt.grad.numpy().astype(np.float64), dtype)
    assert_close(db, bt.grad.numpy().astype(np.float64), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("geom", [(2, 3, 8, 7, 4, 3, 2, 1), (2, 2, 9, 9, 3, 3, 3, 2), (1, 2, 6, 6, 2, 2, 3, 0)],
                         ids=gid)
def test_easy_conv2d_matches_pytorch_strided_conv(torch, geom, mode, dtype):
    """Easy Convolution == F.conv2d(pad(x)[:, :, K//2:, K%2:], w, b, stride=2), cropped.

    The padding is applied first, then the shift (a shift of the unpadded input would move the
    zero border too)."""
    F = torch.nn.functional
    x, w, b, p, rng = make(geom, dtype, 80 + mode)
    oy, ox = divmod(mode, 2)
    ho, wo = full_hw(x.shape, w.shape, p)
    xt, wt, bt = _t(torch, x, True), _t(torch, w, True), _t(torch, b, True)
    yt = F.conv2d(F.pad(xt, (p, p, p, p))[:, :, oy:, ox:], wt, bt, stride=2)[:, :, : ho // 2, : wo // 2]
    y = ecp.easy_conv2d(x, w, b, mode=mode, padding=p)
    assert_close(y, yt.detach().numpy().astype(np.float64), dtype)
    if mode == 0:  # no shift: PyTorch's own padding does it
        y0 = F.conv2d(xt, wt, bt, stride=2, padding=p)[:, :, : ho // 2, : wo // 2]
        assert_close(y, y0.detach().numpy().astype(np.float64), dtype)
    g = rng.standard_normal(y.shape).astype(dtype)
    (yt * _t(torch, g)).sum().backward()
    dx, dw, db = ecp.easy_conv2d_backward(g, x, w, mode=mode, padding=p)
    assert_close(dx, xt.grad.numpy().astype(np.float64), dtype)
    assert_close(dw, wt.grad.numpy().astype(np.float64), dtype)
    assert_close(db, bt.grad.numpy().astype(np.float64), dtype)


# ----------------------------------------------------------------------------- padding (ph, pw)

# (N, C, H, W, O, kh, kw, (ph, pw)): rows and columns padded differently, odd sizes, non-square
# kernels, kernels as large as the padded input, rows or columns of padding only, windows inside the
# plane along one axis and reaching into the padding along the other (the direct backward's in-place dW)
PAIR_GEOMS = [
    (2, 3, 7, 9, 4, 3, 3, (0, 1)),
    (1, 2, 5, 6, 3, 2, 3, (2, 0)),
    (3, 2, 6, 5, 3, 3, 2, (1, 2)),
    (2, 2, 3, 5, 3, 5, 7, (2, 1)),      # kernel == padded input along both axes
    (2, 1, 5, 5, 2, 1, 1, (3, 0)),      # 1x1 kernel, whole rows of padding
    (2, 3, 11, 10, 5, 5, 5, (0, 2)),
    (1, 2, 9, 7, 3, 4, 2, (3, 1)),
    (3, 5, 18, 18, 40, 3, 3, (0, 1)),   # filters past one tile
    (2, 2, 9, 30, 5, 2, 17, (3, 1)),    # a window wider than a vector
    (4, 3, 10, 10, 6, 3, 3, (1, 0)),    # easy outputs filling panels of whole samples
    (1, 3, 40, 33, 9, 5, 5, (2, 0)),    # row blocks of one sample
    (4, 20, 12, 12, 32, 5, 5, (0, 2)),
    (2, 3, 9, 8, 5, 3, 3, (1, 0)),      # modes 2, 3: every window inside the plane
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geom", PAIR_GEOMS, ids=gid)
def test_padding_pairs_match_oracle(kernel, geom, dtype):
    """(ph, pw) with ph != pw, on every kernel path: forward, backward (with and without dx), full
    and every mode, against ecp.testing."""
    x, w, b, p, _ = make(geom, dtype, 91)
    check_all_kernels_paths(x, w, b, p, dtype, 92)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geom", [g for g in GEOMS + [(3, 5, 18, 18, 40, 3, 3, 1), (4, 20, 12, 12, 32, 5, 5, 2)]
                                  if g[7] > 0], ids=gid)
def test_padding_int_and_equal_pair_give_the_same_bits(kernel, geom, dtype):
    """padding=p, (p, p), [p, p] and numpy ints: one geometry, the same plan, the same bits."""
    x, w, b, p, rng = make(geom, dtype, 93)
    dy = rng.standard_normal(conv_ref(x, w, None, p).shape).astype(dtype)
    ho, wo = full_hw(x.shape, w.shape, p)
    dye = rng.standard_normal((x.shape[0], w.shape[0], ho // 2, wo // 2)).astype(dtype)

    def run(padding):
        out = [ecp.conv2d(x, w, b, padding=padding), *ecp.conv2d_backward(dy, x, w, padding=padding)]
        if ho >= 2 and wo >= 2:
            for mode in MODES:
                out += [ecp.easy_conv2d(x, w, b, mode=mode, padding=padding),
                        *ecp.easy_conv2d_backward(dye, x, w, mode=mode, padding=padding)]
        return out

    want = run(p)
    for same in ((p, p), [p, p], (np.int64(p), np.int32(p)), np.int64(p)):
        for got, ref in zip(run(same), want):
            np.testing.assert_array_equal(got, ref)
    _, plan = ecp._plans.forward(x, w, b, p, None)
    assert plan.padding == (p, p) and ecp._plans.forward(x, w, b, (p, p), None)[1] is plan


@pytest.mark.parametrize("dtype", DTYPES)
def test_padding_pairs_give_identical_results_at_any_thread_count(kernel, dtype):
    x, w, b, p, rng = make((9, 6, 13, 11, 12, 3, 3, (0, 2)), dtype, 94)
    dy = rng.standard_normal(conv_ref(x, w, None, p).shape).astype(dtype)
    dye = rng.standard_normal((9, 12, 5, 6)).astype(dtype)
    runs = []
    for n in (1, 2, 3):
        with ecp.num_threads(n):
            runs.append((ecp.conv2d(x, w, b, padding=p), *ecp.conv2d_backward(dy, x, w, padding=p),
                         ecp.easy_conv2d(x, w, b, mode=3, padding=p),
                         *ecp.easy_conv2d_backward(dye, x, w, mode=3, padding=p)))
    for other in runs[1:]:
        for a, c in zip(runs[0], other):
            np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("geom", [(2, 2, 7, 6, 3, 3, 2, (0, 1)), (1, 3, 6, 9, 2, 2, 3, (2, 1)),
                                  (2, 1, 5, 5, 2, 1, 1, (1, 0))], ids=gid)
def test_padding_pairs_gradcheck(geom):
    """Central differences in float64: full convolution and every mode, (ph, pw) padding."""
    x, w, b, p, rng = make(geom, np.float64, 95)
    ho, wo = full_hw(x.shape, w.shape, p)
    for mode in [None] + MODES:
        if mode is None:
            def f():
                return ecp.conv2d(x, w, b, padding=p)
        else:
            def f(mode=mode):
                return ecp.easy_conv2d(x, w, b, mode=mode, padding=p)
        g = rng.standard_normal(f().shape)

        def loss():
            return float(np.sum(f() * g))
        dx, dw, db = (ecp.conv2d_backward(g, x, w, padding=p) if mode is None
                      else ecp.easy_conv2d_backward(g, x, w, mode=mode, padding=p))
        assert_grad(dx, numerical_grad(loss, x))
        assert_grad(dw, numerical_grad(loss, w))
        assert_grad(db, numerical_grad(loss, b))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geom", [(2, 3, 8, 7, 4, 3, 2, (0, 1)), (2, 2, 9, 9, 3, 3, 3, (2, 1)),
                                  (1, 2, 7, 6, 2, 2, 3, (1, 0)), (2, 2, 5, 11, 3, 5, 3, (2, 0))], ids=gid)
def test_padding_pairs_match_pytorch(torch, geom, dtype):
    """F.conv2d(padding=(ph, pw)) and its mode-K slice, forward and backward (autograd)."""
    F = torch.nn.functional
    x, w, b, p, rng = make(geom, dtype, 96)
    ho, wo = full_hw(x.shape, w.shape, p)
    for mode in [None] + MODES:
        xt, wt, bt = _t(torch, x, True), _t(torch, w, True), _t(torch, b, True)
        yt = F.conv2d(xt, wt, bt, padding=p)
        if mode is None:
            y = ecp.conv2d(x, w, b, padding=p)
        else:
            oy, ox = divmod(mode, 2)
            yt = yt[:, :, oy::2, ox::2][:, :, : ho // 2, : wo // 2]
            y = ecp.easy_conv2d(x, w, b, mode=mode, padding=p)
        assert_close(y, yt.detach().numpy().astype(np.float64), dtype)
        g = rng.standard_normal(y.shape).astype(dtype)
        (yt * _t(torch, g)).sum().backward()
        grads = (ecp.conv2d_backward(g, x, w, padding=p) if mode is None
                 else ecp.easy_conv2d_backward(g, x, w, mode=mode, padding=p))
        for got, want in zip(grads, (xt.grad, wt.grad, bt.grad)):
            assert_close(got, want.numpy().astype(np.float64), dtype)


def test_conv2d_output_shape_takes_pairs():
    assert ecp.conv2d_output_shape((2, 3, 7, 9), (4, 3, 3, 5), padding=(0, 2)) == (2, 4, 5, 9)
    assert ecp.conv2d_output_shape((2, 3, 7, 9), (4, 3, 3, 5), padding=[2, 0]) == (2, 4, 9, 5)
    assert ecp.conv2d_output_shape((2, 3, 7, 9), (4, 3, 3, 3), padding=(1, 1)) == \
        ecp.conv2d_output_shape((2, 3, 7, 9), (4, 3, 3, 3), padding=1)


# ----------------------------------------------------------------------------- BLAS wrapper

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 5, 7), (7, 5, 3), (17, 4, 1), (1, 9, 13), (64, 33, 129),
                                   (2, 300, 3)])
def test_gemm_wrapper_matches_matmul(m, k, n, dtype):
    rng = np.random.default_rng(m * 1000 + k * 10 + n)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    c = _blas._gemm_for_tests(a, b)
    assert c.dtype == dtype and c.shape == (m, n)
    assert_close(c, a.astype(np.float64) @ b.astype(np.float64), dtype)


# ----------------------------------------------------------------------------- both kernels

KERNELS = ["blas", "direct", "direct-rows", "split"]


@pytest.fixture(params=KERNELS)
def kernel(request, monkeypatch):
    """Run a test with the im2col + BLAS kernels, then with the fused-packing AVX-512 ones
    (ecp_direct.h; skipped on CPUs without AVX-512) for every shape, also those for which
    ecp would pick im2col + BLAS: forward through the panel kernel, then through the
    pixel-rows kernel; "split": backward dx through the direct kernel, dW and db through BLAS."""
    direct = request.param != "blas"
    if direct and not ecp.conv._conv.DIRECT_SUPPORTED:
        pytest.skip("no direct kernels at this ISA (ecp.kernel_isa() is generic)")
    rows = request.param == "direct-rows"
    set_thresholds(monkeypatch, direct=direct, direct_backward_min_k=0,
                   direct_backward_min_kw=1 << 30 if request.param == "split" else 0, direct_forward_min_o=0,
                   rows_kernel_max_wq=1 << 30 if rows else -1, rows_kernel_max_waste=1.0 if rows else -1.0)
    return request.param


def check_all_kernels_paths(x, w, b, p, dtype, seed):
    """Forward and backward (with and without dx), full and every mode, against the oracles."""
    rng = np.random.default_rng(seed)
    assert_close(ecp.conv2d(x, w, b, padding=p), conv_ref(x, w, b, p), dtype)
    dy = rng.standard_normal(conv_ref(x, w, None, p).shape).astype(dtype)
    dx, dw, db = ecp.conv2d_backward(dy, x, w, padding=p)
    for got, want in zip((dx, dw, db), conv_backward_ref(dy, x, w, p)):
        assert_close(got, want, dtype)
    none, dw2, _ = ecp.conv2d_backward(dy, x, w, padding=p, compute_dx=False)
    assert none is None
    np.testing.assert_array_equal(dw2, dw)
    ho, wo = full_hw(x.shape, w.shape, p)
    if ho < 2 or wo < 2:
        return
    for mode in MODES:
        assert_close(ecp.easy_conv2d(x, w, b, mode=mode, padding=p), easy_ref(x, w, b, mode, p), dtype)
        dye = rng.standard_normal((x.shape[0], w.shape[0], ho // 2, wo // 2)).astype(dtype)
        got = ecp.easy_conv2d_backward(dye, x, w, mode=mode, padding=p)
        for g, want in zip(got, easy_backward_ref(dye, x, w, mode, p)):
            assert_close(g, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geom", GEOMS, ids=gid)
def test_kernels_match_oracle(kernel, geom, dtype):
    x, w, b, p, _ = make(geom, dtype, 31)
    check_all_kernels_paths(x, w, b, p, dtype, 32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [
    # (N, C, H, W, O, kh, kw, padding): filter counts not a multiple of 8, panels of pixels that
    # straddle samples and rows, single samples cut into row blocks, wide and narrow maps, the
    # paper's layers, windows wider than a vector (17, 9: the kernels' scalar fallbacks), output
    # rows shorter and longer than a vector, K = C*kh*kw not a multiple of the tile
    (3, 2, 9, 40, 11, 3, 2, 1),
    (1, 3, 70, 33, 9, 5, 5, 2),
    (5, 4, 6, 7, 17, 1, 1, 0),
    (2, 1, 31, 5, 3, 4, 3, 1),
    (7, 6, 12, 12, 8, 5, 5, 0),
    (3, 1, 28, 28, 20, 5, 5, 0),
    (4, 20, 12, 12, 32, 5, 5, 0),
    (2, 2, 9, 30, 5, 2, 17, 3),
    (2, 3, 19, 21, 33, 9, 9, 4),
    (3, 5, 18, 18, 40, 3, 3, 1),
    # 3 x 3 windows whose easy outputs fill panels of whole samples (4 x 4 and 2 x 2 pixels):
    # the backward writes whole dx planes through its 3 x 3 specialization
    (4, 3, 10, 10, 6, 3, 3, 0),
    (3, 2, 6, 6, 5, 3, 3, 0),
])
def test_kernels_agree_on_awkward_shapes(kernel, shape, dtype):
    n, c, h, wd, o, kh, kw, p = shape
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal((n, c, h, wd)).astype(dtype)
    w = rng.standard_normal((o, c, kh, kw)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    check_all_kernels_paths(x, w, b, p, dtype, sum(shape) + 1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_kernels_give_identical_results_at_any_thread_count(kernel, dtype):
    """Every output element is summed in one fixed order, whatever the number of threads."""
    x, w, b, p, rng = make((9, 6, 13, 11, 12, 3, 3, 1), dtype, 77)
    dy = rng.standard_normal(conv_ref(x, w, None, p).shape).astype(dtype)
    dye = rng.standard_normal((9, 12, 6, 5)).astype(dtype)
    runs = []
    for n in (1, 2, 3):
        with ecp.num_threads(n):
            runs.append((ecp.conv2d(x, w, b, padding=p), *ecp.conv2d_backward(dy, x, w, padding=p),
                         ecp.easy_conv2d(x, w, b, mode=1, padding=p),
                         *ecp.easy_conv2d_backward(dye, x, w, mode=1, padding=p)))
    for other in runs[1:]:
        for a, c in zip(runs[0], other):
            np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("padding", [0, 2], ids=["windows-inside", "padded"])
def test_dw_slots_are_added_only_when_every_thread_has_finished(kernel, padding):
    """The backward sums dW in one slot per thread and then adds the slots, in the same parallel
    region: a thread that finishes its samples early must wait for the others' slots. Uneven
    shares (3 and 5 samples: one thread has half the work of another), many calls, dW and db
    the same bits on 2 and 3 threads as on 1 -- a missing wait reads half-summed slots."""
    rng = np.random.default_rng(41 + padding)
    w = rng.standard_normal((32, 20, 5, 5)).astype(np.float32)
    for n in (3, 5):
        x = rng.standard_normal((n, 20, 12, 12)).astype(np.float32)
        calls = []
        for mode in (None, 2):
            out = conv_ref(x, w, None, padding).shape if mode is None else easy_ref(x, w, None, mode, padding).shape
            dy = rng.standard_normal(out).astype(np.float32)
            if mode is None:
                calls.append(lambda dy=dy: ecp.conv2d_backward(dy, x, w, padding=padding, compute_dx=False)[1:])
            else:
                calls.append(lambda dy=dy: ecp.easy_conv2d_backward(dy, x, w, mode=mode, padding=padding,
                                                                    compute_dx=False)[1:])
        for call in calls:
            with ecp.num_threads(1):
                want = call()
            for threads in (2, 3):
                with ecp.num_threads(threads):
                    for _ in range(40):
                        for got, ref in zip(call(), want):
                            np.testing.assert_array_equal(got, ref)


@pytest.mark.skipif(not ecp.conv._conv.DIRECT_SUPPORTED, reason="no direct kernels at this ISA")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stride, oy, ox", [(1, 0, 0), (2, 1, 0), (2, 0, 1), (2, 1, 1)])
def test_direct_backward_reads_windows_in_place_with_the_same_bits(dtype, stride, oy, ox):
    """Where no window reaches into the padding, the direct backward sums dW from x in place
    (k-major slots); packing the windows instead must give the same bits, for a filter count
    that is not a multiple of the tile (37) and a window size that is not a multiple of 8 (75)."""
    rng = np.random.default_rng(5 + stride + oy)
    x = rng.standard_normal((5, 5, 13, 11)).astype(dtype)
    w = rng.standard_normal((37, 5, 5, 3)).astype(dtype)
    hq, wq = (9, 9) if stride == 1 else (4, 4)
    dy = rng.standard_normal((5, 37, hq, wq)).astype(dtype)
    outs = []
    for in_place in (True, False):
        dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty(37, dtype)
        ecp.conv._conv.conv_backward(dy, x, w, dx, dw, db, True, 0, stride, oy, ox, 2, 4, 2,
                                     True, True, in_place)
        outs.append((dx, dw, db))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)
    ref_dx, ref_dw, ref_db = (conv_backward_ref(dy, x, w, 0) if stride == 1
                              else easy_backward_ref(dy, x, w, oy * 2 + ox, 0))
    assert_close(outs[0][1], ref_dw, dtype)
    assert_close(outs[0][2], ref_db, dtype)


@pytest.mark.skipif(not ecp.conv._conv.DIRECT_SUPPORTED, reason="no direct kernels at this ISA")
@pytest.mark.parametrize("stride, oy, ox", [(1, 0, 0), (2, 1, 1)])
def test_direct_backward_dw_the_same_with_and_without_the_vector_helpers(stride, oy, ox):
    """dW's slots are moved into dW by 16 x 16 register transposes in float32 (ecp_transpose_f)
    or by a scalar loop: the same bits, for 37 filters and 75-element windows (neither a multiple
    of 16), and two slots."""
    rng = np.random.default_rng(9 + stride)
    x = rng.standard_normal((5, 5, 13, 11)).astype(np.float32)
    w = rng.standard_normal((37, 5, 5, 3)).astype(np.float32)
    hq, wq = (9, 9) if stride == 1 else (4, 4)
    dy = rng.standard_normal((5, 37, hq, wq)).astype(np.float32)
    outs = []
    for vector in (True, False):
        old = ecp.conv._conv._use_vector_helpers(vector)
        try:
            dx, dw, db = np.empty_like(x), np.full_like(w, np.nan), np.empty(37, np.float32)
            ecp.conv._conv.conv_backward(dy, x, w, dx, dw, db, True, 0, stride, oy, ox, 3, 2, 2,
                                         True)
        finally:
            ecp.conv._conv._use_vector_helpers(old)
        outs.append((dx, dw, db))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    ref = (conv_backward_ref(dy, x, w, 0) if stride == 1
           else easy_backward_ref(dy, x, w, oy * 2 + ox, 0))
    for i in range(3):   # db: the vector and portable sums add in other orders
        assert_close(outs[0][i], ref[i], np.float32)
        assert_close(outs[1][i], ref[i], np.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("direct, in_place", [(False, True), (True, True), (True, False)])
@pytest.mark.parametrize("padding, stride, oy, ox", [(0, 1, 0, 0), (0, 2, 1, 0), (0, 2, 0, 1),
                                                     (1, 2, 0, 1), (1, 2, 1, 1), ((0, 1), 1, 0, 0),
                                                     ((1, 0), 2, 1, 0), ((0, 2), 2, 1, 1)])
@pytest.mark.parametrize("hw", [(12, 11), (11, 11), (12, 12)])
@pytest.mark.parametrize("threads", [1, 2])
def test_backward_writes_every_gradient_element(dtype, direct, in_place, padding, stride, oy, ox,
                                                hw, threads):
    """The backward overwrites dx, dW and db whole (they are not zeroed first): outputs filled
    with NaN beforehand come out equal to the oracle, on each path (im2col + BLAS; direct with
    dW from x in place or from packed windows; with stride 2, dx added into zeroed planes run by
    run, or -- 4 x 4 outputs, a sample a whole number of times in a panel -- planes written whole,
    padding rows and columns included) and with one or two threads."""
    if direct and not ecp.conv._conv.DIRECT_SUPPORTED:
        pytest.skip("no direct kernels at this ISA")
    rng = np.random.default_rng(11 + sum(pair(padding)) + stride)
    x = rng.standard_normal((5, 6) + hw).astype(dtype)
    w = rng.standard_normal((19, 6, 5, 5)).astype(dtype)
    ho, wo = full_hw(x.shape, w.shape, padding)
    hq, wq = (ho, wo) if stride == 1 else (ho // 2, wo // 2)
    dy = rng.standard_normal((5, 19, hq, wq)).astype(dtype)
    dx, dw, db = np.full_like(x, np.nan), np.full_like(w, np.nan), np.full(19, np.nan, dtype)
    ecp.conv._conv.conv_backward(dy, x, w, dx, dw, db, True, padding, stride, oy, ox, 3, 2,
                                 threads, direct, True, in_place)
    ref = (conv_backward_ref(dy, x, w, padding) if stride == 1
           else easy_backward_ref(dy, x, w, oy * 2 + ox, padding))
    for got, want in zip((dx, dw, db), ref):
        assert_close(got, want, dtype)


@pytest.fixture
def portable_helpers():
    old = ecp.conv._conv._use_vector_helpers(False)
    yield
    ecp.conv._conv._use_vector_helpers(old)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geom", EASY_GEOMS[::2], ids=gid)
def test_easy_conv_through_the_portable_stride2_im2col(geom, dtype, portable_helpers, monkeypatch):
    """The portable loops of the stride-2 im2col and of the bias gradient's sums (what a CPU
    without AVX-512 runs) against the oracle, forward and backward, through im2col + BLAS."""
    set_thresholds(monkeypatch, direct=False)
    x, w, b, p, rng = make(geom, dtype, 11)
    for mode in MODES:
        assert_close(ecp.easy_conv2d(x, w, b, mode=mode, padding=p), easy_ref(x, w, b, mode, p), dtype)
        ho, wo = full_hw(x.shape, w.shape, p)
        dy = rng.standard_normal((x.shape[0], w.shape[0], ho // 2, wo // 2)).astype(dtype)
        for got, want in zip(ecp.easy_conv2d_backward(dy, x, w, mode=mode, padding=p),
                             easy_backward_ref(dy, x, w, mode, p)):
            assert_close(got, want, dtype)


# ----------------------------------------------------------------------------- cached scratch

SCRATCH_CASES = [(6, 5, 14, 13, 9, 5, 5, 1), (2, 2, 7, 6, 3, 3, 2, 0), (4, 20, 12, 12, 32, 5, 5, 0)]


def _check_case(geom, dtype, seed):
    x, w, b, p, rng = make(geom, dtype, seed)
    check_all_kernels_paths(x, w, b, p, dtype, seed + 1)


@pytest.mark.parametrize("cores", [1, 2, 3, 4, 8])
def test_sample_items_share_the_batch_evenly(cores, monkeypatch):
    """Items of at most ``group`` samples, a count that is a multiple of the cores (or every
    sample its own item), and sizes -- as the kernels cut them, at item * n // items -- that
    differ by one sample at most; with one slot per core, the slots' samples differ by one too."""
    set_thresholds(monkeypatch, cores=cores)
    for n in range(1, 70):
        for group in range(1, 6):
            items = ecp._dispatch.sample_items(n, group)
            sizes = np.diff([i * n // items for i in range(items + 1)])
            assert sizes.max() <= group and sizes.max() - sizes.min() <= 1, (n, group, sizes)
            assert items % cores == 0 or items == n, (n, group, items)
            assert items < -(-n // group) + cores, (n, group, items)
            slots = min(cores, items)
            per_slot = np.diff([(s * items // slots) * n // items for s in range(slots + 1)])
            assert per_slot.max() - per_slot.min() <= 1, (n, group, per_slot)


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(ecp._dispatch.Thresholds)])
def test_cached_call_plans_follow_a_changed_setting(name, monkeypatch):
    """The plans of calls are cached by shape: a threshold changed between two calls of the same
    shapes must be planned afresh, not served from the cache, in both passes."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 10, 10)).astype(np.float32)
    w = rng.standard_normal((5, 4, 3, 3)).astype(np.float32)
    dy = rng.standard_normal((3, 5, 4, 4)).astype(np.float32)
    ecp.easy_conv2d(x, w, mode=1)
    ecp.easy_conv2d_backward(dy, x, w, mode=1)
    fwd, bwd = ecp._plans._forward_call.cache_info().misses, ecp._plans._backward_call.cache_info().misses
    value = getattr(ecp._dispatch.thresholds, name)
    set_thresholds(monkeypatch, **{name: (not value) if isinstance(value, bool) else value + 1})
    y = ecp.easy_conv2d(x, w, mode=1)
    grads = ecp.easy_conv2d_backward(dy, x, w, mode=1)
    assert ecp._plans._forward_call.cache_info().misses == fwd + 1
    assert ecp._plans._backward_call.cache_info().misses == bwd + 1
    assert_close(y, easy_ref(x, w, None, 1, 0), np.float32)
    for got, want in zip(grads, easy_backward_ref(dy, x, w, 1, 0)):
        assert_close(got, want, np.float32)


class _Sub(np.ndarray):
    pass


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_plan_runs_only_the_arrays_and_arguments_it_was_made_for(dtype):
    """A call's plan (what a layer hands back to ecp._plans.forward / backward on its next call) runs a
    call only for exactly the arrays it was planned for: any other dtype, byte order, shape,
    layout or array type, padding, mode or setting is refused by ``fits``, and ``run`` raises
    rather than read it."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 2, 9, 8)).astype(dtype)
    w = rng.standard_normal((4, 2, 3, 3)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    tunables = ecp._dispatch.thresholds
    y, fplan = ecp._plans.forward(x, w, b, 1, 2)
    (dx, dw, db), bplan = ecp._plans.backward(y, x, w, 1, 2, True)
    assert fplan.fits(x, w, b, 1, 2, tunables) and bplan.fits(y, x, w, 1, 2, tunables)
    assert_close(y, easy_ref(x, w, b, 2, 1), dtype)
    np.testing.assert_array_equal(fplan.run(x, w, b, 2), y)
    for got, want in zip(bplan.run(y, x, w, True, 2), (dx, dw, db)):
        np.testing.assert_array_equal(got, want)
    assert bplan.run(y, x, w, False, 2)[0] is None

    other = np.float64 if dtype == np.float32 else np.float32
    # dW and db go into the arrays given when the kernels may write them, else into new ones
    dw_out, db_out = np.empty_like(dw), np.empty_like(db)
    got = bplan.run(y, x, w, True, 2, dw_out, db_out)
    assert got[1] is dw_out and got[2] is db_out
    np.testing.assert_array_equal(dw_out, dw)
    np.testing.assert_array_equal(db_out, db)
    read_only = np.zeros_like(dw)
    read_only.flags.writeable = False
    shared = np.zeros(w.size + 4, dtype)   # db over the end of dw
    w_before, y_before, x_before = w.copy(), y.copy(), x.copy()
    for out_dw, out_db, dw_there in ((read_only, b.astype(other), False), (w, y.reshape(-1)[:4], False),
                                     (dw.copy(), x.reshape(-1)[4:8], True),
                                     (np.asfortranarray(dw), np.zeros(5, dtype), False),
                                     (shared[:w.size].reshape(w.shape), shared[w.size - 2:w.size + 2], True)):
        got = bplan.run(y, x, w, True, 2, out_dw, out_db)
        assert (got[1] is out_dw) == dw_there and got[2] is not out_db
        np.testing.assert_array_equal(got[1], dw)
        np.testing.assert_array_equal(got[2], db)
    assert not read_only.any()
    np.testing.assert_array_equal(w, w_before)
    np.testing.assert_array_equal(y, y_before)
    np.testing.assert_array_equal(x, x_before)
    def variants(a):
        return {"dtype": a.astype(other), "byte order": a.astype(a.dtype.newbyteorder()),
                "shape": np.ascontiguousarray(a[:-1]), "layout": np.asfortranarray(a),
                "subclass": a.view(_Sub), "list": a.tolist()}
    want = rf"x must be a C-contiguous {np.dtype(dtype)} ndarray of shape \(3, 2, 9, 8\)"
    for name, bad in variants(x).items():
        assert not fplan.fits(bad, w, b, 1, 2, tunables), name
        assert not bplan.fits(y, bad, w, 1, 2, tunables), name
        error = TypeError if name in ("list", "subclass") else ValueError
        with pytest.raises(error, match=want + ".*got " + {"list": "list", "subclass": "_Sub"}.get(name, "")):
            fplan.run(bad, w, b, 1)
        with pytest.raises(error, match=want):
            bplan.run(y, bad, w, True, 1)
    with pytest.raises(ValueError, match=r"^dy must be .* shape \(3, 4, 4, 4\) .*got .* shape \(3, 4, 4, 3\)"):
        bplan.run(y[..., :3].copy(), x, w, True, 1)
    with pytest.raises(ValueError, match=r"^b must be .* shape \(4,\)"):
        fplan.run(x, w, b[:3].copy(), 1)
    for name, bad in variants(w).items():
        assert not fplan.fits(x, bad, b, 1, 2, tunables) and not bplan.fits(y, x, bad, 1, 2, tunables), name
    for name, bad in variants(y).items():
        assert not bplan.fits(bad, x, w, 1, 2, tunables), name
    assert not fplan.fits(x, w, b.astype(other), 1, 2, tunables)
    assert not fplan.fits(x, w, None, 1, 2, tunables)
    assert fplan.fits(x, w, b, (1, 1), 2, tunables) and bplan.fits(y, x, w, (1, 1), 2, tunables)
    for padding, mode in ((0, 2), (2, 2), (1.0, 2), (True, 2), (1, 3), (1, None), (1, 2.0), (1, "2"),
                          ((1, 0), 2), ((0, 1), 2), ((1, 1.0), 2), ((True, 1), 2), ((1, 1, 1), 2), ([1, 1], 2),
                          ((np.int64(1), 1), 2)):
        assert not fplan.fits(x, w, b, padding, mode, tunables), (padding, mode)
        assert not bplan.fits(y, x, w, padding, mode, tunables), (padding, mode)
    changed = dataclasses.replace(tunables)   # equal values, but another table
    assert not fplan.fits(x, w, b, 1, 2, changed) and not bplan.fits(y, x, w, 1, 2, changed)
    # a plan made by hand for a geometry the kernels cannot run is refused
    ok = dict(x_shape=(3, 2, 9, 8), w_shape=(4, 2, 3, 3), y_shape=(3, 4, 4, 4), dtype_char=x.dtype.char,
              padding=1, mode=2, stride=2, oy=1, ox=0, kernel=0, items=2, rows=4, threaded=True,
              tunables=tunables)
    ecp.conv._conv.ForwardPlan(**ok)
    for name, value in (("y_shape", (3, 4, 5, 4)), ("y_shape", (3, 4, 4, 5)), ("y_shape", (3, 5, 4, 4)),
                        ("y_shape", (2, 4, 4, 4)), ("w_shape", (4, 3, 3, 3)), ("w_shape", (4, 2, 0, 3)),
                        ("padding", 0), ("padding", -1), ("stride", 3), ("oy", 2), ("ox", -1),
                        ("kernel", 4), ("mode", 3), ("mode", None), ("mode", 2.0)):
        with pytest.raises(ValueError, match="not a convolution the kernels can run"):
            ecp.conv._conv.ForwardPlan(**dict(ok, **{name: value}))
    assert ecp.conv._conv.ForwardPlan(**ok).padding == (1, 1)
    assert ecp.conv._conv.ForwardPlan(**dict(ok, padding=(1, 1))).padding == (1, 1)
    for value in ((0, 1), (1, 0), (1, -1), (-1, 1)):
        with pytest.raises(ValueError, match="not a convolution the kernels can run"):
            ecp.conv._conv.ForwardPlan(**dict(ok, padding=value))
    backward = dict(ok, dy_shape=ok["y_shape"], dx_items=2, slots=2)
    for name in ("y_shape", "rows"):
        del backward[name]
    ecp.conv._conv.BackwardPlan(**backward)
    for name, value in (("dy_shape", (3, 4, 4, 5)), ("dtype_char", "e"), ("x_shape", (3, 2, 9))):
        with pytest.raises(ValueError):
            ecp.conv._conv.BackwardPlan(**dict(backward, **{name: value}))
    # a full convolution's plan is not an easy one's
    _, full = ecp._plans.forward(x, w, b, 1, None)
    assert full.fits(x, w, b, 1, None, tunables) and not full.fits(x, w, b, 1, 0, tunables)


@pytest.mark.parametrize("dtype", DTYPES)
def test_scratch_reuse_across_shapes_gives_correct_results(dtype):
    """Kernels keep their scratch between calls: a large call, small ones, the large again, and
    again after clear_scratch(), all against the oracles."""
    for geom in SCRATCH_CASES + SCRATCH_CASES[::-1]:
        _check_case(geom, dtype, 5)
    ecp.clear_scratch()
    _check_case(SCRATCH_CASES[0], dtype, 6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_per_thread_scratch_follows_the_thread_count(dtype):
    """Each OpenMP thread of a call has its own scratch area, kept between calls and grown when
    too small: calls whose thread counts rise, fall and rise again (new areas, areas too small
    for the next shape) and whose shapes alternate, all against the oracles."""
    ecp.clear_scratch()
    for i, (geom, n) in enumerate([(SCRATCH_CASES[1], 1), (SCRATCH_CASES[0], 3), (SCRATCH_CASES[2], 2),
                                    (SCRATCH_CASES[1], 4), (SCRATCH_CASES[0], 1), (SCRATCH_CASES[2], 4)]):
        with ecp.num_threads(n):
            _check_case(geom, dtype, 20 + i)


def test_python_threads_do_not_share_scratch():
    """Concurrent calls from several Python threads, each with other shapes, stay correct."""
    import concurrent.futures

    jobs = [(geom, dtype, 10 + i) for i, (geom, dtype) in
            enumerate([(g, d) for g in SCRATCH_CASES for d in DTYPES] * 2)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for fut in [pool.submit(_check_case, *job) for job in jobs]:
            fut.result()


def test_ecp_conv_kernel_blas_is_read_at_import():
    """ECP_CONV_KERNEL=blas in the environment at import forces im2col + BLAS for every shape."""
    import os
    import subprocess
    import sys

    code = ("import ecp._dispatch as d; t = d.thresholds; "
            "print(t.direct, int(d.forward_kernel((64, 64, 3, 3), 4, 'f')), int(d.backward_kernel((64, 64, 5, 5))))")
    env = {**os.environ, "ECP_CONV_KERNEL": "blas"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "0", "0"]
