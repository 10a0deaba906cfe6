"""ReLU forward and backward, over the rows of a 2-D view (the samples of a batch).

A static loop over rows: with the samples as rows, thread t takes the same share of the batch
as in the convolution and pooling kernels (whose static loops cut it the same way), so what a
thread writes here is what it reads in the next kernel, from its own core's cache. Each element
is written by one thread: results do not depend on the thread count. The loops over a row are
ecp_relu.h's (vectorised, NumPy's values). Every function assumes valid, C-contiguous 2-D input
of one dtype (``ecp.activation`` checks it); the output may be the input itself (in place),
never a partial overlap.
"""
from cython cimport floating
from cython.parallel cimport prange


cdef extern from "ecp_relu.h" nogil:
    void ecp_relu_f(const float *x, float *y, Py_ssize_t n)
    void ecp_relu_d(const double *x, double *y, Py_ssize_t n)
    void ecp_relu_backward_f(const float *dy, const float *y, float *dx, Py_ssize_t n)
    void ecp_relu_backward_d(const double *dy, const double *y, double *dx, Py_ssize_t n)


cdef void _forward(const floating[:, ::1] x, floating[:, ::1] y, int n_threads) noexcept:
    cdef Py_ssize_t n, m = x.shape[1]
    if x.shape[0] == 0 or m == 0:
        return
    if n_threads == 1:   # one call over all the rows, without starting a parallel region
        with nogil:
            if floating is float:
                ecp_relu_f(&x[0, 0], &y[0, 0], x.shape[0] * m)
            else:
                ecp_relu_d(&x[0, 0], &y[0, 0], x.shape[0] * m)
        return
    with nogil:
        for n in prange(x.shape[0], schedule='static', num_threads=n_threads):
            if floating is float:
                ecp_relu_f(&x[n, 0], &y[n, 0], m)
            else:
                ecp_relu_d(&x[n, 0], &y[n, 0], m)


cdef void _backward(const floating[:, ::1] dy, const floating[:, ::1] y, floating[:, ::1] dx,
                    int n_threads) noexcept:
    cdef Py_ssize_t n, m = dy.shape[1]
    if dy.shape[0] == 0 or m == 0:
        return
    if n_threads == 1:
        with nogil:
            if floating is float:
                ecp_relu_backward_f(&dy[0, 0], &y[0, 0], &dx[0, 0], dy.shape[0] * m)
            else:
                ecp_relu_backward_d(&dy[0, 0], &y[0, 0], &dx[0, 0], dy.shape[0] * m)
        return
    with nogil:
        for n in prange(dy.shape[0], schedule='static', num_threads=n_threads):
            if floating is float:
                ecp_relu_backward_f(&dy[n, 0], &y[n, 0], &dx[n, 0], m)
            else:
                ecp_relu_backward_d(&dy[n, 0], &y[n, 0], &dx[n, 0], m)


# One entry point per dtype rather than fused ones: Cython's dispatch on fused arguments costs
# about as much as the ReLU of a small batch.
def relu_forward_f(const float[:, ::1] x, float[:, ::1] y, int n_threads):
    """y = max(x, 0) exactly as np.maximum(x, 0): NaN stays NaN, -0.0 becomes +0.0."""
    _forward(x, y, n_threads)


def relu_forward_d(const double[:, ::1] x, double[:, ::1] y, int n_threads):
    """relu_forward_f for float64."""
    _forward(x, y, n_threads)


def relu_backward_f(const float[:, ::1] dy, const float[:, ::1] y, float[:, ::1] dx, int n_threads):
    """dx = dy * (y > 0) exactly as NumPy computes it: where y is not > 0 (NaN included),
    dy * 0, which is -0.0 for a negative dy and NaN for an infinite or NaN one."""
    _backward(dy, y, dx, n_threads)


def relu_backward_d(const double[:, ::1] dy, const double[:, ::1] y, double[:, ::1] dx, int n_threads):
    """relu_backward_f for float64."""
    _backward(dy, y, dx, n_threads)
