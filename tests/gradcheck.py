"""Central differences, shared by the gradient checks of test_conv, test_pool and test_nn."""
import numpy as np

import ecp


def numerical_grad(loss, arr, eps=1e-6, indices=None):
    """d loss() / d arr by central differences; ``loss`` reads ``arr``, perturbed in place.

    Returns the whole gradient (shape of ``arr``), or, with ``indices``, its entries at those
    flat positions. Runs on one thread: thousands of tiny calls, where a parallel region costs
    more than the work (thread-count independence has its own tests in test_threads.py).
    """
    flat = arr.reshape(-1)
    assert np.shares_memory(flat, arr)
    positions = range(flat.size) if indices is None else indices
    out = np.empty(len(positions))
    with ecp.num_threads(1):
        for j, k in enumerate(positions):
            old = flat[k]
            flat[k] = old + eps
            plus = loss()
            flat[k] = old - eps
            minus = loss()
            flat[k] = old
            out[j] = (plus - minus) / (2 * eps)
    return out.reshape(arr.shape) if indices is None else out
