"""Fused optimizer updates: one pass over a flat parameter buffer instead of a dozen NumPy passes.

Every function here assumes 1-d C-contiguous arrays of one dtype and equal length: ``ecp.optim``
checks them.
"""
cimport cython
from cython cimport floating
from libc.math cimport sqrt


def adam_update(floating[::1] p, const floating[::1] g, floating[::1] m, floating[::1] v,
                double b1, double b2, double step_size, double eps_hat):
    """Elementwise, in the dtype of p: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
    p -= step_size * m / (sqrt(v) + eps_hat)."""
    cdef Py_ssize_t i, n = p.shape[0]
    cdef floating fb1 = <floating> b1, fb2 = <floating> b2
    cdef floating c1 = <floating> (1.0 - b1), c2 = <floating> (1.0 - b2)
    cdef floating ss = <floating> step_size, eh = <floating> eps_hat
    cdef floating gi, mi, vi
    with nogil:
        for i in range(n):
            gi = g[i]
            mi = fb1 * m[i] + c1 * gi
            vi = fb2 * v[i] + c2 * (gi * gi)
            m[i] = mi
            v[i] = vi
            p[i] = p[i] - ss * (mi / (<floating> sqrt(vi) + eh))


def sgd_update(floating[::1] p, const floating[::1] g, floating[::1] vel, double lr,
               double momentum, bint use_momentum):
    """Elementwise: p -= lr g, or with momentum vel = momentum vel - lr g; p += vel."""
    cdef Py_ssize_t i, n = p.shape[0]
    cdef floating flr = <floating> lr, fmu = <floating> momentum, vi
    with nogil:
        if use_momentum:
            for i in range(n):
                vi = fmu * vel[i] - flr * g[i]
                vel[i] = vi
                p[i] = p[i] + vi
        else:
            for i in range(n):
                p[i] = p[i] - flr * g[i]
