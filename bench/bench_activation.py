"""Benchmarks of the ReLU kernels (``_kernels/_activation.pyx``) against NumPy's and PyTorch's.

Groups ``relu forward`` / ``relu backward`` per layer shape: the activations are the pooled maps
of that layer (``case.dy_easy``'s shape, e.g. (50, 20, 12, 12) for conv1), where the paper's
networks apply the ReLU. Each timed call's result is checked against NumPy. Run from the
repository root: ``pytest bench/ --benchmark-only``.
"""
import numpy as np

import ecp


def _group(benchmark, op, case):
    benchmark.group = f"{op}: {case.id}"


def bench_relu_forward(benchmark, case):
    _group(benchmark, "relu forward", case)
    x = case.dy_easy
    np.testing.assert_array_equal(benchmark(ecp.relu, x), np.maximum(x, 0))


def bench_numpy_relu_forward(benchmark, case):
    _group(benchmark, "relu forward", case)
    x = case.dy_easy
    np.testing.assert_array_equal(benchmark(np.maximum, x, 0), np.maximum(x, 0))


def bench_relu_backward(benchmark, case):
    _group(benchmark, "relu backward", case)
    y, dy = np.maximum(case.dy_easy, 0), case.dy_easy[::-1].copy()
    np.testing.assert_array_equal(benchmark(ecp.relu_backward, dy, y), dy * (y > 0))


def bench_numpy_relu_backward(benchmark, case):
    _group(benchmark, "relu backward", case)
    y, dy = np.maximum(case.dy_easy, 0), case.dy_easy[::-1].copy()
    np.testing.assert_array_equal(benchmark(lambda: dy * (y > 0)), dy * (y > 0))


def bench_torch_relu_forward(benchmark, case, torch):
    _group(benchmark, "relu forward", case)
    x = case.dy_easy
    y = benchmark(torch.relu, torch.from_numpy(x))
    np.testing.assert_array_equal(y.numpy(), np.maximum(x, 0))
