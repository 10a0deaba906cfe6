# Easy average pooling on box means (ecp_direct_box.h): the 2x2 box means of the padded input, and
# their adjoint, runs of planes dealt to the threads (each output depends on its four terms
# alone: the same bits at any thread count). A piece of _conv.pyx (see its docstring).


def box_means_shape(tuple x_shape, Py_ssize_t ph, Py_ssize_t pw):
    """The shape of ``box_means``' output for an input of ``x_shape`` (N, C, H, W) and padding
    (ph, pw): (N, C, H, W) unpadded (the means in the first H - 1 rows and W - 1 columns), else
    (N, C, H + 2ph - 1, W + 2pw - 1)."""
    n, c, h, w = x_shape
    if ph == 0 and pw == 0:
        return (n, c, h, w)
    return (n, c, h + 2 * ph - 1, w + 2 * pw - 1)


cdef int _box_check(tuple x_shape, tuple s_shape, Py_ssize_t ph, Py_ssize_t pw, str sname) except -1:
    if ecp_isa_get() == ECP_ISA_GENERIC:
        raise RuntimeError("the box-means kernels need the direct kernels (ISA avx512, avx2 or neon)")
    if ph < 0 or pw < 0:
        raise ValueError(f"padding must be >= 0, got ({ph}, {pw})")
    if x_shape[2] + 2 * ph < 2 or x_shape[3] + 2 * pw < 2:
        raise ValueError(f"the padded input {x_shape[2:]} + 2*({ph}, {pw}) has no 2x2 box")
    want = box_means_shape(x_shape, ph, pw)
    if s_shape != want:
        raise ValueError(f"{sname} must have shape {want} for x of shape {x_shape} and padding "
                         f"({ph}, {pw}), got {s_shape}")
    return 0


def box_means(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] xs, Py_ssize_t ph,
              Py_ssize_t pw, int n_threads=1):
    """xs = the 2x2 box means of x (N, C, H, W) zero-padded by (ph, pw), xs of
    ``box_means_shape`` (ecp_direct_box.h states the layout)."""
    _box_check((x.shape[0], x.shape[1], x.shape[2], x.shape[3]),
               (xs.shape[0], xs.shape[1], xs.shape[2], xs.shape[3]), ph, pw, "xs")
    cdef Py_ssize_t H = x.shape[2], W = x.shape[3], n = x.shape[0] * x.shape[1]
    cdef Py_ssize_t ps = xs.shape[2] * xs.shape[3], chunk, ch, n0, n_chunks
    cdef int nt = <int> max(1, min(n_threads, n))
    if n == 0:
        return
    chunk = (n + nt - 1) // nt
    n_chunks = (n + chunk - 1) // chunk
    with nogil, parallel(num_threads=nt):
        for ch in prange(n_chunks, schedule='static'):
            n0 = ch * chunk
            if floating is float:
                ecp_box_means_f(&x[0, 0, 0, 0] + n0 * H * W, min(chunk, n - n0), H, W, ph, pw,
                                &xs[0, 0, 0, 0] + n0 * ps)
            else:
                ecp_box_means_d(&x[0, 0, 0, 0] + n0 * H * W, min(chunk, n - n0), H, W, ph, pw,
                                &xs[0, 0, 0, 0] + n0 * ps)


def box_adjoint(const floating[:, :, :, ::1] ds, floating[:, :, :, ::1] dx, Py_ssize_t ph,
                Py_ssize_t pw, int n_threads=1):
    """dx (N, C, H, W) = the adjoint of ``box_means`` applied to ds (its output's shape; in the
    unpadded layout the last row and column of each plane of ds must be zeros, as the gradient of
    a convolution that never reads them leaves them)."""
    _box_check((dx.shape[0], dx.shape[1], dx.shape[2], dx.shape[3]),
               (ds.shape[0], ds.shape[1], ds.shape[2], ds.shape[3]), ph, pw, "ds")
    cdef Py_ssize_t H = dx.shape[2], W = dx.shape[3], n = dx.shape[0] * dx.shape[1]
    cdef Py_ssize_t H2 = ds.shape[2], W2 = ds.shape[3], chunk, ch, n0, n_chunks
    cdef int nt = <int> max(1, min(n_threads, n))
    if n == 0:
        return
    chunk = (n + nt - 1) // nt
    n_chunks = (n + chunk - 1) // chunk
    with nogil, parallel(num_threads=nt):
        for ch in prange(n_chunks, schedule='static'):
            n0 = ch * chunk
            if floating is float:
                ecp_box_adjoint_f(&ds[0, 0, 0, 0] + n0 * H2 * W2, H2, W2, &dx[0, 0, 0, 0] + n0 * H * W,
                                  min(chunk, n - n0), H, W, ph, pw)
            else:
                ecp_box_adjoint_d(&ds[0, 0, 0, 0] + n0 * H2 * W2, H2, W2, &dx[0, 0, 0, 0] + n0 * H * W,
                                  min(chunk, n - n0), H, W, ph, pw)
