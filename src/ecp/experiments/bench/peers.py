"""The PyTorch peers: its convolution, convolution + max-pool and stride-2 convolution, when installed."""
import contextlib

import numpy as np

__all__ = ["import_torch", "torch_threads", "torch_setup"]


def import_torch():
    """PyTorch if it imports, else None (it is optional)."""
    try:
        import torch
    except (ImportError, OSError):
        return None
    return torch



@contextlib.contextmanager
def torch_threads(torch, n):
    """PyTorch on ``n`` threads for the block (nothing without PyTorch)."""
    if torch is None:
        yield
        return
    saved = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)



def torch_setup(torch, shape, x, w, b, mode):
    """Leaf tensors and autograd graphs for the PyTorch rows (built once, outside the timing)."""
    import torch.nn.functional as F

    p = shape.padding
    oy, ox = divmod(mode, 2)

    def leaves(*arrays):
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
    c_in = leaves(x, w, b)
    ctx["conv_inputs"] = c_in
    ctx["conv_out"] = F.conv2d(c_in[0], c_in[1], c_in[2], padding=p)
    m_in = leaves(x, w, b)
    ctx["conv_maxpool_out"] = F.max_pool2d(F.conv2d(m_in[0], m_in[1], m_in[2], padding=p), 2)
    s_in = leaves(xs, w, b)
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

