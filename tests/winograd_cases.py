"""What the Winograd and polyphase tests share: their tolerance, its check and their random layers.

Winograd's transforms round differently from the direct kernels' chains of products: results are
compared to the float64 oracle within TOL of the largest output (at least 1)."""
import numpy as np

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
