"""Checking the kernels' numbers before timing them: ``ecp bench`` never reports the speed of wrong results.

:func:`reference_forward` is the one place that computes the float64 reference convolution.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ... import testing
from ...conv import conv2d, conv2d_backward, easy_conv2d, easy_conv2d_backward
from ...pool import max_pool2d

__all__ = ["VerificationError", "RTOL", "rel_err", "reference_forward", "verify"]

#: Verification tolerance by dtype: max |got - expected| / max |expected|.
RTOL = {"float32": 1e-3, "float64": 1e-9}


class VerificationError(RuntimeError):
    """A kernel returned wrong numbers: the benchmark refuses to time it."""


def rel_err(got: np.ndarray, ref: np.ndarray) -> float:
    """Compute the relative error ``max |got - ref| / max |ref|`` in float64.

    Parameters
    ----------
    got : array_like
        The values to check.
    ref : array_like
        The expected values.

    Returns
    -------
    float
        The relative error; the absolute one (``max |got - ref|``) when ``ref`` is all zeros;
        0.0 for empty arrays; inf for a shape mismatch or a non-finite difference.
    """
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        return float("inf")
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    diff = float(np.max(np.abs(got - ref))) if ref.size else 0.0
    if not np.isfinite(diff):
        return float("inf")
    return diff / scale if scale > 0 else diff


def reference_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, padding: int, n: int) -> np.ndarray:
    """Compute the convolution of one sample with the float64 reference, :func:`ecp.testing.conv2d`.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        Input.
    w : ndarray, shape (O, C, kh, kw)
        Weights.
    b : ndarray, shape (O,)
        Bias.
    padding : int >= 0
        Zero padding on each side of H and W.
    n : int
        The sample of ``x`` to convolve.

    Returns
    -------
    y : ndarray of float64, shape (O, Ho, Wo)
        The cross-correlation (PyTorch's convention) plus bias, with ``Ho = H + 2*padding - kh + 1``
        and ``Wo = W + 2*padding - kw + 1``.
    """
    return testing.conv2d(x[n:n + 1], w, b, padding=padding)[0]


def _scatter_easy(dy_easy, full_shape, oy, ox):
    hq, wq = dy_easy.shape[2:]
    full = np.zeros(full_shape, dtype=dy_easy.dtype)
    full[:, :, oy:oy + 2 * hq:2, ox:ox + 2 * wq:2] = dy_easy
    return full


def verify(shape, x: np.ndarray, w: np.ndarray, b: np.ndarray, mode: int,
           torch_ctx: dict[str, Any] | None, rng: np.random.Generator) -> dict[str, float]:
    """Check the ecp kernels (and the PyTorch rows) on one shape before they are timed.

    Checks the full convolution against :func:`reference_forward` (first and last sample), Easy
    Convolution against the subsampled full one, the backward passes through the adjoint
    identities and against the full backward pass, and PyTorch's results against ecp's.

    Parameters
    ----------
    shape : BenchShape
        The layer (its padding, easy and full output shapes).
    x : ndarray, shape (N, C, H, W)
        Input, float32 or float64 (the dtype picks the tolerance in :data:`RTOL`).
    w : ndarray, shape (O, C, kh, kw)
        Weights.
    b : ndarray, shape (O,)
        Bias.
    mode : int in 0..3
        Mode K of Easy Convolution.
    torch_ctx : dict or None
        From :func:`~ecp.experiments.bench.peers.torch_setup`; None skips the PyTorch checks.
    rng : numpy.random.Generator
        Draws the output gradients (advanced by the call).

    Returns
    -------
    dict of str to float
        Check name -> relative error (max |got - expected| / max |expected|), every one within
        tolerance.

    Raises
    ------
    VerificationError
        At the first check whose error exceeds the tolerance (or is NaN); the message names the
        shape, the dtype and the check.
    """
    p = shape.padding
    oy, ox = divmod(mode, 2)
    hq, wq = shape.easy_shape[2:]
    tol = RTOL[x.dtype.name]
    errors = {}

    def _check(name, err):
        errors[name] = float(err)
        if not err <= tol:
            raise VerificationError(
                f"{shape.name} ({shape.describe()}, {x.dtype}): {name} is wrong: relative error "
                f"{err:.3g} > {tol:g}. The benchmark does not time wrong results.")

    full = conv2d(x, w, b, padding=p)
    for n in sorted({0, x.shape[0] - 1}):
        _check(f"conv2d forward vs NumPy reference (sample {n})",
               rel_err(full[n], reference_forward(x, w, b, p, n)))
    easy = easy_conv2d(x, w, b, mode=mode, padding=p)
    _check("easy_conv2d forward vs conv2d[..., K//2::2, K%2::2]",
           rel_err(easy, full[:, :, oy::2, ox::2][:, :, :hq, :wq]))

    # backward: adjoint identities <conv(x, w), g> == <x, dx> == <w, dw>, db == sum g.
    # g leans on y so that the identities are far above rounding noise.
    y0 = conv2d(x, w, padding=p).astype(np.float64)
    g64 = y0 + rng.standard_normal(y0.shape) * (np.std(y0) + 1e-30)
    g = g64.astype(x.dtype)
    dx, dw, db = conv2d_backward(g, x, w, padding=p)
    g64 = g.astype(np.float64)
    scale = float(np.sum(np.abs(y0 * g64))) or 1.0
    s = float(np.vdot(y0, g64))
    _check("conv2d backward dx (adjoint identity)",
           abs(float(np.vdot(x.astype(np.float64), dx.astype(np.float64))) - s) / scale)
    _check("conv2d backward dw (adjoint identity)",
           abs(float(np.vdot(w.astype(np.float64), dw.astype(np.float64))) - s) / scale)
    _check("conv2d backward db == sum of dy", rel_err(db, g64.sum(axis=(0, 2, 3))))
    ge = rng.standard_normal(shape.easy_shape).astype(x.dtype)
    edx, edw, edb = easy_conv2d_backward(ge, x, w, mode=mode, padding=p)
    fdx, fdw, fdb = conv2d_backward(_scatter_easy(ge, shape.full_shape, oy, ox), x, w, padding=p)
    _check("easy_conv2d backward dx vs conv2d backward", rel_err(edx, fdx))
    _check("easy_conv2d backward dw vs conv2d backward", rel_err(edw, fdw))
    _check("easy_conv2d backward db vs conv2d backward", rel_err(edb, fdb))

    if torch_ctx is not None:
        t = torch_ctx
        _check("PyTorch conv2d vs ecp", rel_err(t["conv_out"].detach().numpy(), full))
        pooled, _ = max_pool2d(full, return_indices=True)
        _check("PyTorch conv2d + max_pool2d vs ecp",
               rel_err(t["conv_maxpool_out"].detach().numpy(), pooled))
        _check("PyTorch stride-2 conv vs ecp easy_conv2d",
               rel_err(t["stride2_out"].detach().numpy()[:, :, :hq, :wq], easy))
        tdx, tdw, tdb = (v.numpy() for v in t["torch"].autograd.grad(
            t["conv_out"], t["conv_inputs"], t["torch"].from_numpy(g), retain_graph=True))
        _check("PyTorch conv2d backward dx vs ecp", rel_err(tdx, dx))
        _check("PyTorch conv2d backward dw vs ecp", rel_err(tdw, dw))
        _check("PyTorch conv2d backward db vs ecp", rel_err(tdb, db))
    return errors

