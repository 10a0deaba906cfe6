# The OpenMP driver of the Winograd F(2x2, 3x3) kernels (included by _conv.pyx after
# _drivers.pxi's helpers): the stride-1 3x3 forward, and the dx of its backward.

cdef int _run_wino(const floating *src, const floating *w, const floating *bias, floating *dst,
                   Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t O,
                   Py_ssize_t hq, Py_ssize_t wq, Py_ssize_t ph, Py_ssize_t pw, bint flip,
                   Py_ssize_t n_sitems, Py_ssize_t rows, int n_threads) except -1:
    """dst (N, O, hq, wq) = the stride-1 convolution of src (N, C, H, W), zero padding (ph, pw),
    with the 3x3 filters w (O x C x 3 x 3; flip: the filters of dx, w[c][o] flipped, w being
    C x O x 3 x 3), bias added (none when NULL), by Winograd F(2x2, 3x3): every element of dst
    written. The filter transform is shared: each thread transforms a share of the filter
    blocks, then all meet (one barrier) and every thread reads all of it. Items: ``n_sitems``
    runs of whole samples, or (``rows`` < hq, rows even) blocks of ``rows`` output rows of one
    sample, dealt statically as _run_forward's. Each output is computed from its own tile alone,
    so the result depends neither on the items nor on the thread count."""
    cdef Py_ssize_t nr = ecp_direct_nr_f() if floating is float else ecp_direct_nr_d()
    cdef Py_ssize_t nob = (O + ECP_MR - 1) // ECP_MR, sz = sizeof(floating)
    cdef Py_ssize_t used = 0, tused = 0, o_u, o_v, o_m, o_r, n_rb, n_items, nt, it, ib, n0, nb
    cdef Py_ssize_t tr0, ntr, th = (hq + 1) // 2, t
    cdef char *base
    cdef char **tbase
    cdef floating *u
    if N == 0 or hq * wq == 0:
        return 0
    n_sitems = max(1, min(n_sitems, N))
    rows = max(2, min(rows + rows % 2, 2 * th))
    if rows < hq:
        n_sitems = N
    n_rb = (th + rows // 2 - 1) // (rows // 2)
    n_items = n_sitems * n_rb
    nt = max(1, min(n_threads, n_items))
    o_u = _carve(&used, 16 * nob * ECP_MR * C * sz)
    o_v = _carve(&tused, 16 * (C + 1) * nr * sz)
    o_m = _carve(&tused, 16 * (nob * ECP_MR + 1) * nr * sz)
    o_r = _carve(&tused, 4 * (2 * nr + 2) * sz)
    base = _scratch(used)
    tbase = _thread_scratch(nt, tused)
    u = <floating *> (base + o_u)
    with nogil:
        with parallel(num_threads=nt):
            t = threadid()
            if floating is float:
                ecp_wino_weights_shared_f(w, O, C, flip, u)
            else:
                ecp_wino_weights_shared_d(w, O, C, flip, u)
            for it in prange(n_items, schedule='static'):
                ib = it // n_rb
                n0 = ib * N // n_sitems
                nb = (ib + 1) * N // n_sitems - n0
                tr0 = (it % n_rb) * (rows // 2)
                ntr = min(rows // 2, th - tr0)
                if floating is float:
                    ecp_wino_item_f(src, C, H, W, u, O, bias, dst, hq, wq, n0, nb, tr0, ntr, ph,
                                    pw, <float *> (tbase[t] + o_v), <float *> (tbase[t] + o_m),
                                    <float *> (tbase[t] + o_r))
                else:
                    ecp_wino_item_d(src, C, H, W, u, O, bias, dst, hq, wq, n0, nb, tr0, ntr, ph,
                                    pw, <double *> (tbase[t] + o_v), <double *> (tbase[t] + o_m),
                                    <double *> (tbase[t] + o_r))
    return 0


cdef bint _wino_fits(const _Geom *g, bint dx) noexcept:
    """Whether the Winograd kernels take this geometry (the forward; dx: its dx too)."""
    return (DIRECT_SUPPORTED and g.kh == 3 and g.kw == 3 and g.stride == 1 and g.oy == 0
            and g.ox == 0 and g.hq <= g.H + 2 * g.ph - 2 and g.wq <= g.W + 2 * g.pw - 2
            and (not dx or (g.ph <= 2 and g.pw <= 2 and g.hq == g.H + 2 * g.ph - 2
                            and g.wq == g.W + 2 * g.pw - 2)))
