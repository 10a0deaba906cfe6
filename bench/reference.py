"""The inputs of each (layer shape, dtype) for the benchmarks, and their float64 references.

The references are :mod:`ecp.testing`'s (the one float64 NumPy oracle that tests/ and ``ecp bench``
use too): slow-ish, obviously right, and independent of ecp's kernels. Computed once per case.
"""
import functools

import numpy as np

import ecp
import ecp.testing as reference
from ecp.experiments.bench.shapes import SHAPES

MODE = 3  # Easy Convolution / Random Pooling mode K used throughout (bottom-right)
# max |got - ref| / max |ref|; a wrong kernel is off by O(1)
RTOL = {np.dtype(np.float32): 1e-3, np.dtype(np.float64): 1e-10}
# float32 on every shape; float64 on the paper's and the VGG-like shapes
CASES = [(name, "float32") for name in ("conv1", "conv2", "vgg", "small")] + [
    (name, "float64") for name in ("conv1", "conv2", "vgg")
]


def pool_windows(x):
    """(N, C, H//2, W//2, 4): the 2x2 windows of ``x``, row-major within each window."""
    n, c, h, w = x.shape
    hq, wq = h // 2, w // 2
    v = x[:, :, :2 * hq, :2 * wq].reshape(n, c, hq, 2, wq, 2)
    return v.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, hq, wq, 4)


def scatter_windows(dy, pos, full_shape):
    """dx of full_shape with dy[n, c, r, q] at window position pos[n, c, r, q] (0..3), zeros elsewhere."""
    n, c, hq, wq = dy.shape
    win = np.zeros((n, c, hq, wq, 4), dtype=np.float64)
    np.put_along_axis(win, pos[..., None], dy[..., None].astype(np.float64), axis=-1)
    full = np.zeros(full_shape, dtype=np.float64)
    full[:, :, :2 * hq, :2 * wq] = win.reshape(n, c, hq, wq, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(
        n, c, 2 * hq, 2 * wq)
    return full


def assert_close(got, ref, what):
    got = np.asarray(got)
    assert got.shape == ref.shape, f"{what}: shape {got.shape}, expected {ref.shape}"
    scale = max(float(np.max(np.abs(ref))), 1e-30)
    err = float(np.max(np.abs(got.astype(np.float64) - ref))) / scale
    tol = RTOL.get(got.dtype, 1e-3)
    assert err <= tol, f"{what}: relative error {err:.3g} > {tol:g}"


# --------------------------------------------------------------------------------------------
# one layer shape: inputs and references, computed once


class Case:
    """Inputs of one (shape, dtype) and their references (computed lazily, cached)."""

    def __init__(self, name, dtype):
        self.name, self.dtype = name, np.dtype(dtype)
        self.id = f"{name}-{self.dtype.name}"
        x_shape, w_shape, self.padding = SHAPES[name]
        rng = np.random.default_rng(0)
        taps = w_shape[1] * w_shape[2] * w_shape[3]
        self.x = rng.standard_normal(x_shape).astype(self.dtype)
        self.w = (rng.standard_normal(w_shape) / np.sqrt(taps)).astype(self.dtype)
        self.b = rng.standard_normal(w_shape[0]).astype(self.dtype)
        self.mode = MODE
        self.oy, self.ox = divmod(MODE, 2)
        self.full_shape = ecp.conv2d_output_shape(x_shape, w_shape, self.padding)
        n, o, ho, wo = self.full_shape
        self.hq, self.wq = ho // 2, wo // 2
        self.easy_shape = (n, o, self.hq, self.wq)
        self.dy_full = rng.standard_normal(self.full_shape).astype(self.dtype)
        self.dy_easy = rng.standard_normal(self.easy_shape).astype(self.dtype)
        # pooling inputs: maps of the layer's full output shape
        self.pool_x = rng.standard_normal(self.full_shape).astype(self.dtype)
        self.flops = 2 * int(np.prod(self.full_shape)) * taps
        self.easy_flops = 2 * int(np.prod(self.easy_shape)) * taps

    @functools.cached_property
    def ref_full(self):
        return reference.conv2d(self.x, self.w, self.b, padding=self.padding)

    @functools.cached_property
    def ref_easy(self):
        return reference.easy_conv2d(self.x, self.w, self.b, mode=self.mode, padding=self.padding)

    @functools.cached_property
    def ref_full_backward(self):
        return reference.conv2d_backward(self.dy_full, self.x, self.w, padding=self.padding)

    @functools.cached_property
    def ref_easy_backward(self):
        return reference.easy_conv2d_backward(self.dy_easy, self.x, self.w, mode=self.mode, padding=self.padding)

    def ref_conv_maxpool_backward(self, conv_out):
        """Backward of conv + 2x2 max-pool with dy_easy as the pooled gradient; the maxima are
        taken in ``conv_out`` (the implementation's own forward output, so that near-ties
        resolve as the implementation resolved them)."""
        _, idx = reference.max_pool2d(conv_out, return_indices=True)
        return reference.conv2d_backward(reference.max_pool2d_backward(self.dy_easy, idx, self.full_shape),
                                         self.x, self.w, padding=self.padding)

    def check_backward(self, got, ref, what):
        for name, g, r in zip(("dx", "dw", "db"), got, ref):
            assert_close(g, r, f"{what} {name}")
