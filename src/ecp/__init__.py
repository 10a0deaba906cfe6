"""EasyConvPooling (ecp): Random Pooling with Easy Convolution, as fast native kernels.

The functional API (NCHW, float32 / float64):

- :func:`conv2d`, :func:`conv2d_backward` -- full convolution (cross-correlation, stride 1, padding)
- :func:`easy_conv2d`, :func:`easy_conv2d_backward` -- only the outputs Random Pooling keeps
- :func:`easy_avg_conv2d`, :func:`easy_avg_conv2d_backward` -- 2x2 average pooling of the
  convolution, exact, as one stride-2 convolution with a widened kernel
- :func:`neighbor_fill` -- copy each value back into its 2x2 window
- :func:`random_pool2d`, :func:`max_pool2d`, :func:`avg_pool2d` and their ``*_backward``
- :func:`relu`, :func:`relu_backward` -- the activation, threaded as the kernels around it
- :func:`conv2d_output_shape` -- the output shape of a convolution, checked
- :func:`clear_scratch` -- free the convolution kernels' cached scratch for this thread
- :func:`num_threads` (this Python thread, in a ``with`` block), :func:`set_num_threads` (the
  process-wide default), :func:`get_num_threads` -- the kernels' thread count
- :func:`set_deterministic` -- results that depend on the shapes alone, not on the machine's cores
- :func:`openmp_info` -- how the kernels' OpenMP threads wait, and who chose it

:mod:`ecp.testing` holds float64 NumPy reference implementations of all of these (slow oracles).

Mode K is the kept pixel of each 2x2 window, row-major: 0 top-left, 1 top-right,
2 bottom-left, 3 bottom-right.
"""
from . import _openmp_env

_openmp_env.configure()   # before the first extension module loads libgomp

from ._dispatch import kernel_isa, set_deterministic  # noqa: E402
from ._kernels._openmp import openmp_enabled  # noqa: E402
from ._openmp_env import openmp_info  # noqa: E402
from ._threads import get_num_threads, num_threads, set_num_threads  # noqa: E402
from .activation import relu, relu_backward  # noqa: E402
from .conv import (  # noqa: E402
    clear_scratch,
    conv2d,
    conv2d_backward,
    conv2d_output_shape,
    easy_avg_conv2d,
    easy_avg_conv2d_backward,
    easy_conv2d,
    easy_conv2d_backward,
)
from .pool import (  # noqa: E402
    avg_pool2d,
    avg_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
    neighbor_fill,
    neighbor_fill_backward,
    random_pool2d,
    random_pool2d_backward,
)

__version__ = "0.1.0"

from . import _compat, testing  # noqa: E402  (after the API they refer to)

_compat.install()

__all__ = [
    "clear_scratch", "conv2d", "conv2d_backward", "conv2d_output_shape", "easy_conv2d", "easy_conv2d_backward",
    "easy_avg_conv2d", "easy_avg_conv2d_backward",
    "neighbor_fill", "neighbor_fill_backward", "random_pool2d", "random_pool2d_backward",
    "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward", "relu", "relu_backward",
    "kernel_isa", "openmp_enabled", "openmp_info", "set_deterministic", "get_num_threads", "set_num_threads",
    "num_threads",
    "testing", "__version__",
]
