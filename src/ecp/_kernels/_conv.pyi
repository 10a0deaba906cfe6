"""Convolution kernels (full and mode-K Easy Convolution), forward and backward: see _conv.pyx."""

import enum
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

_F = TypeVar("_F", np.float32, np.float64)

class ForwardKernel(enum.IntEnum):
    IM2COL_BLAS = 0
    DIRECT_PANEL = 1
    DIRECT_ROWS = 2

class BackwardKernel(enum.IntEnum):
    BLAS = 0
    DIRECT = 1
    SPLIT = 2

#: The instruction set of the direct kernels in use: "avx512", "avx2", "neon" or "generic"
ISA: str
#: True when the direct kernels (the DIRECT_* kernel codes) run: ISA is not "generic"
DIRECT_SUPPORTED: bool

def direct_nr(dtype: Any) -> int: ...

def clear_scratch() -> None: ...
def box_means_shape(x_shape: tuple[int, int, int, int], ph: int, pw: int) -> tuple[int, int, int, int]: ...
def box_means(x: NDArray[_F], xs: NDArray[_F], ph: int, pw: int, n_threads: int = ...) -> None: ...
def box_adjoint(ds: NDArray[_F], dx: NDArray[_F], ph: int, pw: int, n_threads: int = ...) -> None: ...
def _use_vector_helpers(flag: bool) -> bool: ...
def conv_backward(
    dy: NDArray[_F],
    x: NDArray[_F],
    w: NDArray[_F],
    dx: NDArray[_F],
    dw: NDArray[_F],
    db: NDArray[_F],
    need_dx: bool,
    pad: int | tuple[int, int],
    stride: int,
    oy: int,
    ox: int,
    n_sitems: int,
    n_slots: int,
    n_threads: int,
    direct: bool = False,
    need_dw: bool = True,
    in_place: bool = True,
) -> None: ...

class _Plan:
    @property
    def padding(self) -> tuple[int, int]: ...
    @property
    def mode(self) -> int | None: ...
    @property
    def tunables(self) -> Any: ...
    @property
    def kernel(self) -> int: ...
    @property
    def items(self) -> int: ...
    @property
    def threaded(self) -> bool: ...

class ForwardPlan(_Plan):
    def __init__(
        self,
        x_shape: tuple[int, int, int, int],
        w_shape: tuple[int, int, int, int],
        y_shape: tuple[int, int, int, int],
        dtype_char: str,
        padding: int | tuple[int, int],
        mode: int | None,
        stride: int,
        oy: int,
        ox: int,
        kernel: int,
        items: int,
        rows: int,
        threaded: bool,
        tunables: Any,
    ) -> None: ...
    @property
    def rows(self) -> int: ...
    @property
    def out_shape(self) -> tuple[int, int, int, int]: ...
    def fits(self, x: object, w: object, b: object, padding: object, mode: object, tunables: Any) -> bool: ...
    def run(self, x: NDArray[_F], w: NDArray[_F], b: NDArray[_F], n_threads: int) -> NDArray[_F]: ...

class BackwardPlan(_Plan):
    def __init__(
        self,
        x_shape: tuple[int, int, int, int],
        w_shape: tuple[int, int, int, int],
        dy_shape: tuple[int, int, int, int],
        dtype_char: str,
        padding: int | tuple[int, int],
        mode: int | None,
        stride: int,
        oy: int,
        ox: int,
        kernel: int,
        items: int,
        dx_items: int,
        slots: int,
        threaded: bool,
        tunables: Any,
    ) -> None: ...
    @property
    def dx_items(self) -> int: ...
    @property
    def slots(self) -> int: ...
    def fits(self, dy: object, x: object, w: object, padding: object, mode: object, tunables: Any) -> bool: ...
    def run(
        self,
        dy: NDArray[_F],
        x: NDArray[_F],
        w: NDArray[_F],
        compute_dx: bool,
        n_threads: int,
        dw: NDArray[_F] | None = None,
        db: NDArray[_F] | None = None,
    ) -> tuple[NDArray[_F] | None, NDArray[_F], NDArray[_F]]: ...
