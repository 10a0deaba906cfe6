"""Row-major GEMM over SciPy's Cython BLAS (Cython callers cimport ``gemm`` from _blas.pxd)."""

from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

_F = TypeVar("_F", np.float32, np.float64)

def _register_thread_control(set_addr: int, get_addr: int) -> None: ...
def blas_thread_control() -> bool: ...
def _gemm_for_tests(a: NDArray[_F], b: NDArray[_F]) -> NDArray[_F]: ...
