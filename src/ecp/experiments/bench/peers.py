"""The PyTorch peers: its convolution, convolution + max-pool and stride-2 convolution, when installed."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["import_torch", "torch_threads", "torch_setup"]


def import_torch() -> ModuleType | None:
    """Import PyTorch if it is installed (it is optional).

    Returns
    -------
    module or None
        The ``torch`` module, or None when importing it raises ImportError or OSError (a broken
        installation counts as absent).
    """
    try:
        import torch
    except (ImportError, OSError):
        return None
    return torch



@contextlib.contextmanager
def torch_threads(torch: ModuleType | None, n: int) -> Iterator[None]:
    """Run PyTorch on ``n`` threads inside the ``with`` block.

    Parameters
    ----------
    torch : module or None
        The ``torch`` module (from :func:`import_torch`); None makes the block a no-op.
    n : int
        Intra-op threads for PyTorch inside the block; the previous count is restored on exit,
        also when the block raises.

    Yields
    ------
    None
    """
    if torch is None:
        yield
        return
    saved = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)



def torch_setup(torch: ModuleType, shape, x: np.ndarray, w: np.ndarray, b: np.ndarray,
                mode: int) -> dict[str, Any]:
    """Build the leaf tensors and autograd graphs of the PyTorch rows, once, outside the timing.

    Parameters
    ----------
    torch : module
        The ``torch`` module.
    shape : BenchShape
        The layer; its ``padding`` is used.
    x : ndarray, shape (N, C, H, W)
        Input; the tensors share or copy its dtype.
    w : ndarray, shape (O, C, kh, kw)
        Weights.
    b : ndarray, shape (O,)
        Bias.
    mode : int in 0..3
        Mode K: the stride-2 row convolves the padded input shifted by ``(K // 2, K % 2)``, which
        is what :func:`ecp.easy_conv2d` computes.

    Returns
    -------
    dict
        ``"torch"`` and ``"F"`` (the modules); ``"fwd"`` and ``"bwd"``: row name -> callable of no
        argument to time; ``"conv_inputs"`` (the leaf tensors of the convolution), ``"conv_out"``,
        ``"conv_maxpool_out"`` and ``"stride2_out"`` (graph outputs, kept for the checks in
        :func:`~ecp.experiments.bench.verify.verify`).
    """
    import torch.nn.functional as F

    p = shape.padding
    oy, ox = divmod(mode, 2)

    def _leaves(*arrays):
        return tuple(torch.from_numpy(a.copy()).requires_grad_(True) for a in arrays)

    ctx = {"torch": torch, "F": F}
    xt, wt, bt = (torch.from_numpy(a) for a in (x, w, b))
    # stride-2 conv of the input padded then shifted by (K//2, K%2): what easy_conv2d computes
    xs = np.ascontiguousarray(np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))[:, :, oy:, ox:])
    xst = torch.from_numpy(xs)
    ctx["fwd"] = {
        "torch_conv_forward": lambda: F.conv2d(xt, wt, bt, padding=p),
        "torch_conv_maxpool_forward": lambda: F.max_pool2d(F.conv2d(xt, wt, bt, padding=p), 2),
        "torch_stride2_forward": lambda: F.conv2d(xst, wt, bt, stride=2),
    }
    c_in = _leaves(x, w, b)
    ctx["conv_inputs"] = c_in
    ctx["conv_out"] = F.conv2d(c_in[0], c_in[1], c_in[2], padding=p)
    m_in = _leaves(x, w, b)
    ctx["conv_maxpool_out"] = F.max_pool2d(F.conv2d(m_in[0], m_in[1], m_in[2], padding=p), 2)
    s_in = _leaves(xs, w, b)
    ctx["stride2_out"] = F.conv2d(s_in[0], s_in[1], s_in[2], stride=2)
    rng = np.random.default_rng(2)
    grads = {k: torch.from_numpy(rng.standard_normal(tuple(ctx[k].shape)).astype(x.dtype))
             for k in ("conv_out", "conv_maxpool_out", "stride2_out")}
    grad = torch.autograd.grad
    ctx["bwd"] = {
        "torch_conv_backward": lambda: grad(ctx["conv_out"], c_in, grads["conv_out"],
                                            retain_graph=True),
        "torch_conv_maxpool_backward": lambda: grad(ctx["conv_maxpool_out"], m_in,
                                                    grads["conv_maxpool_out"], retain_graph=True),
        "torch_stride2_backward": lambda: grad(ctx["stride2_out"], s_in, grads["stride2_out"],
                                               retain_graph=True),
    }
    return ctx

