"""What the Winograd and polyphase tests share: their tolerance, its check and their random layers.

Winograd's transforms round differently from the direct kernels' chains of products: results are
compared to the float64 oracle within TOL of the largest output (at least 1)."""
import numpy as np

import ecp
import ecp.testing as reference

TOL = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-12}


def close(actual, expected, dtype):
    """actual has dtype and expected's shape, and equals it within TOL of the largest output."""
    assert actual.dtype == np.dtype(dtype) and actual.shape == expected.shape
    tol = TOL[np.dtype(dtype)]
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale)


def data(shape, dtype, seed=0):
    """x, 3x3 weights, bias and padding of shape = (n, c, h, w, o, padding), standard normal."""
    n, c, h, w, o, padding = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((o, c, 3, 3)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    return x, wt, b, padding


def check_easy_forward(shape, mode, dtype):
    """easy_conv2d of data(shape) with and without bias, mode ``mode``, against the float64 oracle."""
    x, w, b, padding = data(shape, dtype)
    for bias in (b, None):
        y = ecp.easy_conv2d(x, w, bias, mode=mode, padding=padding)
        close(y, reference.easy_conv2d(x, w, bias, mode=mode, padding=padding), dtype)


def check_easy_forward_thread_bits(dtype, make=data, shapes=((3, 32, 12, 11, 40, 1), (1, 16, 30, 17, 16, 1),
                                                             (5, 16, 8, 8, 24, 0))):
    """easy_conv2d (mode 3) of each make(shape, dtype, seed=2) (x, w, b, padding; make is data or
    another layer maker of its signature) has the same bits at 1 to 4 threads."""
    for shape in shapes:
        x, w, b, padding = make(shape, dtype, seed=2)
        results = []
        for n in (1, 2, 3, 4):
            with ecp.num_threads(n):
                results.append(ecp.easy_conv2d(x, w, b, mode=3, padding=padding))
        for other in results[1:]:
            assert results[0].tobytes() == other.tobytes()
