"""Benchmarks of the pooling kernels (``_kernels/_pool.pyx``) and of PyTorch's equivalents.

Groups, per layer shape and dtype (the pooled maps have the shape of that layer's convolution
output, e.g. (50, 20, 24, 24) for conv1):

- ``pool forward`` / ``pool backward``: random, max and average 2x2 pooling (and PyTorch's max
  and average pooling);
- ``neighbor_fill forward`` / ``neighbor_fill backward``: the paper's neighbor fill (and PyTorch's
  2x nearest upsampling, the same operation).

Each timed call's result is checked against NumPy (``reference.py``). Run from the repository
root: ``pytest bench/ --benchmark-only``.
"""
import numpy as np

import ecp
from reference import assert_close, pool_windows, scatter_windows


def _group(benchmark, op, case):
    benchmark.group = f"{op}: {case.id}"


def _pooled(case):
    return pool_windows(case.pool_x.astype(np.float64))


# --------------------------------------------------------------------------------------------
# forward


def bench_random_pool2d_forward(benchmark, case):
    _group(benchmark, "pool forward", case)
    y = benchmark(ecp.random_pool2d, case.pool_x, mode=case.mode)
    assert_close(y, _pooled(case)[..., case.mode], "random_pool2d")


def bench_max_pool2d_forward(benchmark, case):
    _group(benchmark, "pool forward", case)
    y, idx = benchmark(ecp.max_pool2d, case.pool_x, return_indices=True)
    win = _pooled(case)
    assert_close(y, win.max(axis=-1), "max_pool2d")
    # flat h * W + w of the first maximum in row-major window order
    pos = np.argmax(win, axis=-1)
    hq, wq = y.shape[2:]
    r = 2 * np.arange(hq)[:, None] + pos // 2
    q = 2 * np.arange(wq)[None, :] + pos % 2
    np.testing.assert_array_equal(idx, r * case.pool_x.shape[3] + q, err_msg="max_pool2d indices")


def bench_avg_pool2d_forward(benchmark, case):
    _group(benchmark, "pool forward", case)
    y = benchmark(ecp.avg_pool2d, case.pool_x)
    assert_close(y, _pooled(case).mean(axis=-1), "avg_pool2d")


def bench_neighbor_fill_forward(benchmark, case):
    _group(benchmark, "neighbor_fill forward", case)
    out = benchmark(ecp.neighbor_fill, case.dy_easy)
    ref = np.repeat(np.repeat(case.dy_easy.astype(np.float64), 2, axis=2), 2, axis=3)
    assert_close(out, ref, "neighbor_fill")


# --------------------------------------------------------------------------------------------
# backward (dy: a random gradient of the pooled shape)


def bench_random_pool2d_backward(benchmark, case):
    _group(benchmark, "pool backward", case)
    dx = benchmark(ecp.random_pool2d_backward, case.dy_easy, case.mode, case.full_shape)
    pos = np.full(case.easy_shape, case.mode)
    assert_close(dx, scatter_windows(case.dy_easy, pos, case.full_shape), "random_pool2d_backward")


def bench_max_pool2d_backward(benchmark, case):
    _group(benchmark, "pool backward", case)
    _, idx = ecp.max_pool2d(case.pool_x, return_indices=True)
    dx = benchmark(ecp.max_pool2d_backward, case.dy_easy, idx, case.full_shape)
    pos = np.argmax(_pooled(case), axis=-1)
    assert_close(dx, scatter_windows(case.dy_easy, pos, case.full_shape), "max_pool2d_backward")


def bench_avg_pool2d_backward(benchmark, case):
    _group(benchmark, "pool backward", case)
    dx = benchmark(ecp.avg_pool2d_backward, case.dy_easy, case.full_shape)
    ref = np.zeros(case.full_shape)
    hq, wq = case.easy_shape[2:]
    ref[:, :, :2 * hq, :2 * wq] = np.repeat(np.repeat(case.dy_easy / 4.0, 2, axis=2), 2, axis=3)
    assert_close(dx, ref, "avg_pool2d_backward")


def bench_neighbor_fill_backward(benchmark, case):
    _group(benchmark, "neighbor_fill backward", case)
    n, c, hq, wq = case.easy_shape
    dout = case.pool_x[:, :, :2 * hq, :2 * wq]
    dout = np.ascontiguousarray(dout)
    dy = benchmark(ecp.neighbor_fill_backward, dout)
    assert_close(dy, pool_windows(dout.astype(np.float64)).sum(axis=-1), "neighbor_fill_backward")


# --------------------------------------------------------------------------------------------
# PyTorch (skipped without it)


def bench_torch_max_pool2d_forward(benchmark, case, torch):
    import torch.nn.functional as F

    _group(benchmark, "pool forward", case)
    y = benchmark(F.max_pool2d, torch.from_numpy(case.pool_x), 2)
    assert_close(y.numpy(), _pooled(case).max(axis=-1), "torch max_pool2d")


def bench_torch_avg_pool2d_forward(benchmark, case, torch):
    import torch.nn.functional as F

    _group(benchmark, "pool forward", case)
    y = benchmark(F.avg_pool2d, torch.from_numpy(case.pool_x), 2)
    assert_close(y.numpy(), _pooled(case).mean(axis=-1), "torch avg_pool2d")


def bench_torch_max_pool2d_backward(benchmark, case, torch):
    import torch.nn.functional as F

    _group(benchmark, "pool backward", case)
    x = torch.from_numpy(case.pool_x.copy()).requires_grad_(True)
    out = F.max_pool2d(x, 2)
    (dx,) = benchmark(torch.autograd.grad, out, (x,), torch.from_numpy(case.dy_easy),
                      retain_graph=True)
    pos = np.argmax(_pooled(case), axis=-1)
    assert_close(dx.numpy(), scatter_windows(case.dy_easy, pos, case.full_shape),
                 "torch max_pool2d backward")


def bench_torch_avg_pool2d_backward(benchmark, case, torch):
    import torch.nn.functional as F

    _group(benchmark, "pool backward", case)
    x = torch.from_numpy(case.pool_x.copy()).requires_grad_(True)
    out = F.avg_pool2d(x, 2)
    (dx,) = benchmark(torch.autograd.grad, out, (x,), torch.from_numpy(case.dy_easy),
                      retain_graph=True)
    ref = np.zeros(case.full_shape)
    hq, wq = case.easy_shape[2:]
    ref[:, :, :2 * hq, :2 * wq] = np.repeat(np.repeat(case.dy_easy / 4.0, 2, axis=2), 2, axis=3)
    assert_close(dx.numpy(), ref, "torch avg_pool2d backward")


def bench_torch_nearest_upsample_forward(benchmark, case, torch):
    """F.interpolate(scale_factor=2, mode='nearest') is the neighbor fill."""
    import torch.nn.functional as F

    _group(benchmark, "neighbor_fill forward", case)
    y = torch.from_numpy(case.dy_easy)
    out = benchmark(F.interpolate, y, scale_factor=2, mode="nearest")
    ref = np.repeat(np.repeat(case.dy_easy.astype(np.float64), 2, axis=2), 2, axis=3)
    assert_close(out.numpy(), ref, "torch nearest upsampling")


def bench_torch_nearest_upsample_backward(benchmark, case, torch):
    import torch.nn.functional as F

    _group(benchmark, "neighbor_fill backward", case)
    y = torch.from_numpy(case.dy_easy.copy()).requires_grad_(True)
    out = F.interpolate(y, scale_factor=2, mode="nearest")
    n, c, hq, wq = case.easy_shape
    dout = np.ascontiguousarray(case.pool_x[:, :, :2 * hq, :2 * wq])
    (dy,) = benchmark(torch.autograd.grad, out, (y,), torch.from_numpy(dout), retain_graph=True)
    assert_close(dy.numpy(), pool_windows(dout.astype(np.float64)).sum(axis=-1),
                 "torch nearest upsampling backward")
