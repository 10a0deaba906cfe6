"""Correctness of the ReLU kernels: ``ecp/_kernels/_activation.pyx`` through ``ecp/activation.py``.

Compared with NumPy's ``np.maximum(x, 0)`` and ``dy * (y > 0)`` bit for bit (NaN, infinities and
signed zeros included), in place and not, on one thread and several, and with central
differences; bad arguments get errors that name them.
"""
import numpy as np
import pytest

import ecp
from gradcheck import numerical_grad

DTYPES = [np.float32, np.float64]
# any shape: a batch of maps, of vectors, one vector, a scalar, empty ones, and a batch large
# enough to run on the threads (>= ecp.activation.PARALLEL_MIN_ELEMENTS)
SHAPES = [(3, 4, 5, 6), (7, 13), (11,), (), (0, 5), (4, 0, 3), (50, 20, 12, 12), (3, 40000)]


def specials(shape, dtype, seed):
    """Random values with NaN, +-inf, +-0.0 and tiny values sprinkled in."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape).astype(dtype)
    flat = a.reshape(-1)
    picks = rng.integers(0, 8, flat.size)
    values = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -1e-40], dtype)
    flat[picks < 7] = np.where(rng.random(flat.size) < 0.2, values[picks % 7], flat)[picks < 7]
    return a


def same_bits(a, b):
    """Equal values, NaN where NaN, and the same sign of every zero."""
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.signbit(a), np.signbit(b))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_relu_is_numpys_maximum(shape, dtype):
    x = specials(shape, dtype, 1)
    keep = x.copy()
    y = ecp.relu(x)
    same_bits(y, np.maximum(x, 0))
    same_bits(x, keep)  # the input is not touched


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_relu_backward_is_numpys_masked_product(shape, dtype):
    x = specials(shape, dtype, 2)
    y = np.maximum(x, 0)
    dy = specials(shape, dtype, 3)
    with np.errstate(invalid="ignore"):
        want = dy * (y > 0)
    same_bits(ecp.relu_backward(dy, y), want)
    same_bits(ecp.relu_backward(dy, x), want)  # the forward's input: > 0 at the same places


@pytest.mark.parametrize("dtype", DTYPES)
def test_in_place_and_into_out(dtype):
    x = specials((50, 20, 12, 12), dtype, 4)
    dy = specials(x.shape, dtype, 5)
    want_y = np.maximum(x, 0)
    with np.errstate(invalid="ignore"):
        want_dx = dy * (want_y > 0)
    out = np.full_like(x, 7)
    assert ecp.relu(x, out=out) is out
    same_bits(out, want_y)
    xi = x.copy()
    assert ecp.relu(xi, out=xi) is xi
    same_bits(xi, want_y)
    dyi = dy.copy()
    assert ecp.relu_backward(dyi, want_y, out=dyi) is dyi
    same_bits(dyi, want_dx)


@pytest.mark.parametrize("dtype", DTYPES)
def test_results_do_not_depend_on_the_thread_count(dtype):
    x = specials((7, 3, 40, 41), dtype, 6)
    dy = specials(x.shape, dtype, 7)
    runs = []
    for n in (1, 2, 3, 8):
        with ecp.num_threads(n):
            runs.append((ecp.relu(x), ecp.relu_backward(dy, x)))
    for y, dx in runs[1:]:
        same_bits(y, runs[0][0])
        same_bits(dx, runs[0][1])


def test_non_contiguous_and_big_endian_input():
    x = specials((6, 8, 10), np.float64, 8)
    view = x[:, ::2, 1::3]
    same_bits(ecp.relu(view), np.maximum(view, 0))
    be = x.astype(">f8")
    same_bits(ecp.relu(be), np.maximum(x, 0))
    same_bits(ecp.relu_backward(be, be), ecp.relu_backward(x, x))


def test_gradient_matches_central_differences():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # away from the kink
    dy = rng.standard_normal(x.shape)
    num = numerical_grad(lambda: float(np.sum(ecp.relu(x) * dy)), x)
    np.testing.assert_allclose(ecp.relu_backward(dy, ecp.relu(x)), num, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("call, exc, words", [
    (lambda: ecp.relu("abc"), TypeError, ["x", "numpy array"]),
    (lambda: ecp.relu(np.arange(4)), TypeError, ["x", "float32 or float64", "int64"]),
    (lambda: ecp.relu(np.ones(4, np.float16)), TypeError, ["x", "float16"]),
    (lambda: ecp.relu(np.ones(4), out=[0, 0, 0, 0]), TypeError, ["out", "numpy array", "list"]),
    (lambda: ecp.relu(np.ones(4), out=np.ones(5)), ValueError, ["out", "(4,)", "(5,)"]),
    (lambda: ecp.relu(np.ones(4), out=np.ones(4, np.float32)), ValueError, ["out", "float64", "float32"]),
    (lambda: ecp.relu(np.ones((4, 4)), out=np.ones((4, 8))[:, ::2]), ValueError, ["out", "C-contiguous"]),
    (lambda: ecp.relu_backward(np.ones(4), np.ones(5)), ValueError, ["y", "(4,)", "(5,)"]),
    (lambda: ecp.relu_backward(np.ones(4), np.ones(4, np.float32)), TypeError, ["y", "dtype as dy", "float32"]),
    (lambda: ecp.relu_backward(None, np.ones(4)), TypeError, ["dy", "numpy array", "NoneType"]),
])
def test_bad_arguments_are_named(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    for w in words:
        assert w in str(info.value), (w, str(info.value))


def test_read_only_out_and_partial_overlap_are_refused():
    x = np.ones(8)
    ro = np.ones(8)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        ecp.relu(x, out=ro)
    buf = np.arange(10.0) - 5
    with pytest.raises(ValueError, match="overlaps x"):
        ecp.relu(buf[:8], out=buf[2:])
    same_bits(buf, np.arange(10.0) - 5)  # nothing written
