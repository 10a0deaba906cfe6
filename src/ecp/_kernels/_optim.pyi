"""Fused optimizer updates over flat, C-contiguous parameter buffers of one dtype (in place)."""

from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

_F = TypeVar("_F", np.float32, np.float64)

def adam_update(
    p: NDArray[_F],
    g: NDArray[_F],
    m: NDArray[_F],
    v: NDArray[_F],
    b1: float,
    b2: float,
    step_size: float,
    eps_hat: float,
) -> None: ...
def sgd_update(
    p: NDArray[_F], g: NDArray[_F], vel: NDArray[_F], lr: float, momentum: float, use_momentum: bool
) -> None: ...
