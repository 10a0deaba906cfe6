"""Benchmarks of the convolution kernels (``_kernels/_conv.pyx``) and of PyTorch's equivalents.

Groups, per layer shape and dtype:

- ``conv forward`` / ``conv backward``: ecp conv2d, ecp easy_conv2d (mode K), PyTorch conv2d and
  PyTorch's stride-2 conv of the shifted input (what Easy Convolution computes);
- ``layer forward`` / ``layer backward``: the ECP layer (easy_conv2d: its output is the randomly
  pooled map) against a full convolution followed by a 2x2 max-pool, ecp's and PyTorch's;
- ``avg layer forward`` / ``avg layer backward``: easy average pooling (easy_avg_conv2d) against a
  full convolution followed by a 2x2 average pool.

Each timed call's result is checked against the float64 NumPy reference of ``reference.py``.
Run from the repository root: ``pytest bench/ --benchmark-only``.
"""
import numpy as np

import ecp
import ecp.testing as reference
from reference import assert_close, pool_windows


def _group(benchmark, op, case, flops=None):
    benchmark.group = f"{op}: {case.id}"
    if flops is not None:
        benchmark.extra_info["flops"] = flops


# --------------------------------------------------------------------------------------------
# ecp


def bench_conv2d_forward(benchmark, case):
    _group(benchmark, "conv forward", case, case.flops)
    y = benchmark(ecp.conv2d, case.x, case.w, case.b, padding=case.padding)
    assert_close(y, case.ref_full, "conv2d")


def bench_easy_conv2d_forward(benchmark, case):
    _group(benchmark, "conv forward", case, case.easy_flops)
    y = benchmark(ecp.easy_conv2d, case.x, case.w, case.b, mode=case.mode, padding=case.padding)
    assert_close(y, case.ref_easy, "easy_conv2d")


def bench_conv2d_backward(benchmark, case):
    _group(benchmark, "conv backward", case, 2 * case.flops)
    got = benchmark(ecp.conv2d_backward, case.dy_full, case.x, case.w, padding=case.padding)
    case.check_backward(got, case.ref_full_backward, "conv2d_backward")


def bench_easy_conv2d_backward(benchmark, case):
    _group(benchmark, "conv backward", case, 2 * case.easy_flops)
    got = benchmark(ecp.easy_conv2d_backward, case.dy_easy, case.x, case.w, mode=case.mode,
                    padding=case.padding)
    case.check_backward(got, case.ref_easy_backward, "easy_conv2d_backward")


def bench_ecp_layer_forward(benchmark, case):
    """The ECP layer: Easy Convolution, whose output is the Random-Pooled map."""
    _group(benchmark, "layer forward", case, case.easy_flops)
    y = benchmark(ecp.easy_conv2d, case.x, case.w, case.b, mode=case.mode, padding=case.padding)
    assert_close(y, case.ref_easy, "ECP layer")


def bench_ecp_layer_backward(benchmark, case):
    _group(benchmark, "layer backward", case, 2 * case.easy_flops)
    got = benchmark(ecp.easy_conv2d_backward, case.dy_easy, case.x, case.w, mode=case.mode,
                    padding=case.padding)
    case.check_backward(got, case.ref_easy_backward, "ECP layer backward")


def _conv_maxpool(case):
    return ecp.max_pool2d(ecp.conv2d(case.x, case.w, case.b, padding=case.padding),
                          return_indices=True)


def bench_conv2d_maxpool_forward(benchmark, case):
    _group(benchmark, "layer forward", case, case.flops)
    y, _ = benchmark(_conv_maxpool, case)
    assert_close(y, np.max(pool_windows(case.ref_full), axis=-1), "conv2d + max_pool2d")


def bench_conv2d_maxpool_backward(benchmark, case):
    _group(benchmark, "layer backward", case, 2 * case.flops)
    full = ecp.conv2d(case.x, case.w, case.b, padding=case.padding)
    _, idx = ecp.max_pool2d(full, return_indices=True)

    def backward():
        dfull = ecp.max_pool2d_backward(case.dy_easy, idx, case.full_shape)
        return ecp.conv2d_backward(dfull, case.x, case.w, padding=case.padding)

    got = benchmark(backward)
    case.check_backward(got, case.ref_conv_maxpool_backward(full), "conv2d + max_pool2d backward")


# easy average pooling (on the box means, the box sums or the widened kernel, as ecp plans it)
# against the full convolution then 2x2 average pooling it replaces


def _conv_avgpool(case):
    return ecp.avg_pool2d(ecp.conv2d(case.x, case.w, case.b, padding=case.padding))


def _avg_backward_reference(case):
    """float64 dx, dW, db of conv2d + avg_pool2d for dy_easy (the same shape as the pooled map)."""
    x, w = (a.astype(np.float64) for a in (case.x, case.w))
    dfull = reference.avg_pool2d_backward(case.dy_easy.astype(np.float64), case.full_shape)
    return reference.conv2d_backward(dfull, x, w, padding=case.padding)


def bench_easy_avg_conv2d_forward(benchmark, case):
    _group(benchmark, "avg layer forward", case, case.easy_flops)
    y = benchmark(ecp.easy_avg_conv2d, case.x, case.w, case.b, padding=case.padding)
    assert_close(y, np.mean(pool_windows(case.ref_full), axis=-1), "easy_avg_conv2d")


def bench_conv2d_avgpool_forward(benchmark, case):
    _group(benchmark, "avg layer forward", case, case.flops)
    y = benchmark(_conv_avgpool, case)
    assert_close(y, np.mean(pool_windows(case.ref_full), axis=-1), "conv2d + avg_pool2d")


def bench_easy_avg_conv2d_backward(benchmark, case):
    _group(benchmark, "avg layer backward", case, 2 * case.easy_flops)
    got = benchmark(ecp.easy_avg_conv2d_backward, case.dy_easy, case.x, case.w, padding=case.padding)
    case.check_backward(got, _avg_backward_reference(case), "easy_avg_conv2d backward")


def bench_conv2d_avgpool_backward(benchmark, case):
    _group(benchmark, "avg layer backward", case, 2 * case.flops)

    def backward():
        dfull = ecp.avg_pool2d_backward(case.dy_easy, case.full_shape)
        return ecp.conv2d_backward(dfull, case.x, case.w, padding=case.padding)

    got = benchmark(backward)
    case.check_backward(got, _avg_backward_reference(case), "conv2d + avg_pool2d backward")


# --------------------------------------------------------------------------------------------
# PyTorch (skipped without it), same thread count as ecp (see conftest.pytest_configure)


class _Torch:
    """Tensors and autograd graphs of one case, built outside the timing."""

    def __init__(self, torch, case):
        import torch.nn.functional as F

        self.torch, self.F, self.case = torch, F, case
        p = case.padding
        self.x, self.w, self.b = (torch.from_numpy(a) for a in (case.x, case.w, case.b))
        # padded, then shifted by (K//2, K%2): a stride-2 conv of it is Easy Convolution
        xs = np.pad(case.x, ((0, 0), (0, 0), (p, p), (p, p)))[:, :, case.oy:, case.ox:]
        self.xs_np = np.ascontiguousarray(xs)
        self.xs = torch.from_numpy(self.xs_np)

    def leaves(self, *arrays):
        return tuple(self.torch.from_numpy(np.array(a)).requires_grad_(True) for a in arrays)

    def stride2(self, x, w, b):
        return self.F.conv2d(x, w, b, stride=2)

    def stride2_grad(self, out_shape):
        """dy_easy placed in a gradient of the stride-2 output's shape (it may be one larger)."""
        g = np.zeros(out_shape, dtype=self.case.dtype)
        g[:, :, :self.case.hq, :self.case.wq] = self.case.dy_easy
        return self.torch.from_numpy(g)

    def unshift_dx(self, dxs):
        """The gradient w.r.t. the padded, shifted input, mapped back to x."""
        c, p = self.case, self.case.padding
        n, ch, h, w = c.x.shape
        dpad = np.zeros((n, ch, h + 2 * p, w + 2 * p), dtype=dxs.dtype)
        dpad[:, :, c.oy:, c.ox:] = dxs
        return dpad[:, :, p:p + h, p:p + w]


def bench_torch_conv2d_forward(benchmark, case, torch):
    t = _Torch(torch, case)
    _group(benchmark, "conv forward", case, case.flops)
    y = benchmark(t.F.conv2d, t.x, t.w, t.b, padding=case.padding)
    assert_close(y.numpy(), case.ref_full, "torch conv2d")


def bench_torch_stride2_conv_forward(benchmark, case, torch):
    t = _Torch(torch, case)
    _group(benchmark, "conv forward", case, case.easy_flops)
    y = benchmark(t.stride2, t.xs, t.w, t.b)
    assert_close(y.numpy()[:, :, :case.hq, :case.wq], case.ref_easy, "torch stride-2 conv2d")


def bench_torch_conv2d_backward(benchmark, case, torch):
    t = _Torch(torch, case)
    _group(benchmark, "conv backward", case, 2 * case.flops)
    leaves = t.leaves(case.x, case.w, case.b)
    out = t.F.conv2d(*leaves, padding=case.padding)
    g = torch.from_numpy(case.dy_full)
    got = benchmark(torch.autograd.grad, out, leaves, g, retain_graph=True)
    case.check_backward([v.numpy() for v in got], case.ref_full_backward, "torch conv2d backward")


def bench_torch_stride2_conv_backward(benchmark, case, torch):
    t = _Torch(torch, case)
    _group(benchmark, "conv backward", case, 2 * case.easy_flops)
    leaves = t.leaves(t.xs_np, case.w, case.b)
    out = t.stride2(*leaves)
    g = t.stride2_grad(tuple(out.shape))
    dxs, dw, db = benchmark(torch.autograd.grad, out, leaves, g, retain_graph=True)
    case.check_backward((t.unshift_dx(dxs.numpy()), dw.numpy(), db.numpy()),
                        case.ref_easy_backward, "torch stride-2 conv2d backward")


def bench_torch_conv2d_maxpool_forward(benchmark, case, torch):
    t = _Torch(torch, case)
    _group(benchmark, "layer forward", case, case.flops)

    def forward():
        return t.F.max_pool2d(t.F.conv2d(t.x, t.w, t.b, padding=case.padding), 2)

    y = benchmark(forward)
    assert_close(y.numpy(), np.max(pool_windows(case.ref_full), axis=-1), "torch conv2d + max_pool2d")


def bench_torch_conv2d_maxpool_backward(benchmark, case, torch):
    t = _Torch(torch, case)
    _group(benchmark, "layer backward", case, 2 * case.flops)
    leaves = t.leaves(case.x, case.w, case.b)
    conv = t.F.conv2d(*leaves, padding=case.padding)
    out = t.F.max_pool2d(conv, 2)
    g = torch.from_numpy(case.dy_easy)
    got = benchmark(torch.autograd.grad, out, leaves, g, retain_graph=True)
    ref = case.ref_conv_maxpool_backward(conv.detach().numpy())
    case.check_backward([v.numpy() for v in got], ref, "torch conv2d + max_pool2d backward")
