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


cdef int _run_wino_dw(const floating *dy, const floating *x, floating *dw, floating *db,
                      const _Geom *g, Py_ssize_t n_sitems, Py_ssize_t rows, Py_ssize_t n_slots,
                      int n_threads) except -1:
    """dw (O, C, 3, 3) and db (O) of the stride-1 3x3 convolution of geometry g (no grid offset)
    by Winograd: items of whole samples (``n_sitems`` runs) or of ``rows`` output rows of one
    sample (rows < hq, rows even), as _run_wino's, dealt to ``n_slots`` slots in contiguous runs;
    each slot sums its items' du (ecp_wino_dw_item) in its own buffer, and after one barrier
    every filter's du are added in slot order and transformed into dW (ecp_wino_dw_reduce), db
    summed per filter over the batch in double (ecp_sum_planes). The items and slots come from
    the plan (shapes and cores), so the result does not depend on the thread count."""
    cdef Py_ssize_t N = g.N, C = g.C, O = g.O, hq = g.hq, wq = g.wq, P = g.hq * g.wq
    cdef Py_ssize_t nr = ecp_direct_nr_f() if floating is float else ecp_direct_nr_d()
    cdef Py_ssize_t nob = (O + ECP_MR - 1) // ECP_MR, sz = sizeof(floating)
    cdef Py_ssize_t Cp = (C + nr - 1) // nr * nr, th = (hq + 1) // 2
    cdef Py_ssize_t used = 0, tused = 0, o_du, o_v, o_vt, o_m, slot_size, n_rb, n_items, nt
    cdef Py_ssize_t s, it, it0, it1, ib, n0, nb, tr0, ntr, t, o
    cdef char *base
    cdef char **tbase
    cdef floating *du
    if N == 0 or P == 0:
        memset(dw, 0, O * C * 9 * sz)
        memset(db, 0, O * sz)
        return 0
    n_sitems = max(1, min(n_sitems, N))
    rows = max(2, min(rows + rows % 2, 2 * th))
    if rows < hq:
        n_sitems = N
    n_rb = (th + rows // 2 - 1) // (rows // 2)
    n_items = n_sitems * n_rb
    n_slots = max(1, min(n_slots, n_items))
    nt = max(1, min(n_threads, n_slots))
    slot_size = _row(16 * nob * ECP_MR * Cp, sz)
    o_du = _carve(&used, n_slots * slot_size * sz)
    o_v = _carve(&tused, 16 * (C + 1) * nr * sz)
    o_vt = _carve(&tused, 16 * nr * Cp * sz)
    o_m = _carve(&tused, 16 * (nob * ECP_MR + 1) * nr * sz)
    base = _scratch(used)
    tbase = _thread_scratch(nt, tused)
    du = <floating *> (base + o_du)
    with nogil:
        with parallel(num_threads=nt):
            t = threadid()
            for s in prange(n_slots, schedule='static'):
                it0 = s * n_items // n_slots
                it1 = (s + 1) * n_items // n_slots
                for it in range(it0, it1):
                    ib = it // n_rb
                    n0 = ib * N // n_sitems
                    nb = (ib + 1) * N // n_sitems - n0
                    tr0 = (it % n_rb) * (rows // 2)
                    ntr = min(rows // 2, th - tr0)
                    if floating is float:
                        ecp_wino_dw_item_f(x, C, g.H, g.W, dy, O, hq, wq, n0, nb, tr0, ntr, g.ph,
                                           g.pw, du + s * slot_size, it == it0,
                                           <float *> (tbase[t] + o_v), <float *> (tbase[t] + o_vt),
                                           <float *> (tbase[t] + o_m))
                    else:
                        ecp_wino_dw_item_d(x, C, g.H, g.W, dy, O, hq, wq, n0, nb, tr0, ntr, g.ph,
                                           g.pw, du + s * slot_size, it == it0,
                                           <double *> (tbase[t] + o_v), <double *> (tbase[t] + o_vt),
                                           <double *> (tbase[t] + o_m))
            ecp_team_barrier()   # every slot summed before any is read
            for o in prange(O, schedule='static'):
                if floating is float:
                    ecp_wino_dw_reduce_f(du, n_slots, slot_size, O, C, Cp, o, o + 1, dw)
                    db[o] = <float> ecp_sum_planes_f(dy + o * P, P, N, O * P)
                else:
                    ecp_wino_dw_reduce_d(du, n_slots, slot_size, O, C, Cp, o, o + 1, dw)
                    db[o] = ecp_sum_planes_d(dy + o * P, P, N, O * P)
    return 0


cdef bint _poly_fits(const _Geom *g) noexcept:
    """Whether the polyphase kernel takes this geometry: the stride-2 3x3 or 4x4 forward (any
    grid offset)."""
    return (DIRECT_SUPPORTED and g.kh == g.kw and (g.kh == 3 or g.kh == 4)
            and g.stride == 2)


cdef int _run_poly(const floating *src, const floating *w, const floating *bias, floating *dst,
                   const _Geom *g, Py_ssize_t n_sitems, Py_ssize_t rows,
                   int n_threads, bint box=False, bint tall=False) except -1:
    """dst (N, O, hq, wq) = the stride-2 3x3 or 4x4 convolution of geometry g (grid offset
    (oy, ox)), bias added (none when NULL), as the sum of its four polyphase sub-convolutions by
    Winograd F(2x2, 2x2) (ecp_direct_poly.h): every element of dst written. ``box`` (3x3, no
    offset): the convolution of x's 2x2 box means instead, easy average pooling's output
    (hq, wq) = the pooled size. ``tall`` (3x3, no box): on tiles of 4 x 2 outputs, F(4, 2) down
    the rows. Filter transform shared, items cut and dealt as _run_wino's (``rows`` rounded up to
    whole tile rows); each output is computed from its own tile alone, so the result depends
    neither on the items nor on the thread count."""
    cdef Py_ssize_t N = g.N, C = g.C, O = g.O, hq = g.hq, wq = g.wq
    cdef Py_ssize_t ph = g.ph - g.oy, pw = g.pw - g.ox
    cdef Py_ssize_t nr = ecp_direct_nr_f() if floating is float else ecp_direct_nr_d()
    cdef Py_ssize_t nob = (O + ECP_MR - 1) // ECP_MR, sz = sizeof(floating)
    cdef Py_ssize_t used = 0, tused = 0, o_u, o_v, o_m, n_rb, n_items, nt, it, ib, n0, nb
    cdef Py_ssize_t tr0, ntr, t
    cdef Py_ssize_t tile = 4 if tall else 2             # output rows a tile
    cdef Py_ssize_t th = (hq + tile - 1) // tile        # tile rows
    cdef Py_ssize_t ns = 45 if tall else (g.kh + 2) * (g.kh + 2)   # transformed streams
    cdef Py_ssize_t nxi = 15 if tall else 9             # products a tile
    cdef int k = <int> g.kh
    cdef char *base
    cdef char **tbase
    cdef floating *u
    if N == 0 or hq * wq == 0:
        return 0
    n_sitems = max(1, min(n_sitems, N))
    rows = max(tile, min((rows + tile - 1) // tile * tile, tile * th))
    if rows < hq:
        n_sitems = N
    n_rb = (th + rows // tile - 1) // (rows // tile)
    n_items = n_sitems * n_rb
    nt = max(1, min(n_threads, n_items))
    o_u = _carve(&used, ns * nob * ECP_MR * C * sz)
    o_v = _carve(&tused, (ns * C + nxi) * nr * sz)
    o_m = _carve(&tused, nxi * (nob * ECP_MR + 1) * nr * sz)
    base = _scratch(used)
    tbase = _thread_scratch(nt, tused)
    u = <floating *> (base + o_u)
    with nogil:
        with parallel(num_threads=nt):
            t = threadid()
            if tall:
                if floating is float:
                    ecp_polyt_weights_shared_f(w, O, C, u)
                else:
                    ecp_polyt_weights_shared_d(w, O, C, u)
            elif floating is float:
                ecp_poly_weights_shared_f(k, box, w, O, C, u)
            else:
                ecp_poly_weights_shared_d(k, box, w, O, C, u)
            for it in prange(n_items, schedule='static'):
                ib = it // n_rb
                n0 = ib * N // n_sitems
                nb = (ib + 1) * N // n_sitems - n0
                tr0 = (it % n_rb) * (rows // tile)
                ntr = min(rows // tile, th - tr0)
                if tall:
                    if floating is float:
                        ecp_polyt_item_f(src, C, g.H, g.W, u, O, bias, dst, hq, wq, n0, nb, tr0, ntr,
                                         ph, pw, <float *> (tbase[t] + o_v), <float *> (tbase[t] + o_m))
                    else:
                        ecp_polyt_item_d(src, C, g.H, g.W, u, O, bias, dst, hq, wq, n0, nb, tr0, ntr,
                                         ph, pw, <double *> (tbase[t] + o_v),
                                         <double *> (tbase[t] + o_m))
                elif floating is float:
                    ecp_poly_item_f(k, box, src, C, g.H, g.W, u, O, bias, dst, hq, wq, n0, nb, tr0,
                                    ntr, ph, pw, <float *> (tbase[t] + o_v),
                                    <float *> (tbase[t] + o_m))
                else:
                    ecp_poly_item_d(k, box, src, C, g.H, g.W, u, O, bias, dst, hq, wq, n0, nb, tr0,
                                    ntr, ph, pw, <double *> (tbase[t] + o_v),
                                    <double *> (tbase[t] + o_m))
    return 0


cdef int _run_poly_dw(const floating *dy, const floating *x, floating *dw, floating *db,
                      const _Geom *g, Py_ssize_t n_sitems, Py_ssize_t rows, Py_ssize_t n_slots,
                      int n_threads, bint box=False) except -1:
    """dw (O, C, k, k) and db (O) of the stride-2 3x3 or 4x4 convolution of geometry g (grid
    offset (oy, ox)) by the polyphase split (ecp_direct_poly.h): items of whole samples or of
    ``rows`` output rows of one sample, dealt to ``n_slots`` slots as _run_wino_dw's; each slot
    sums its items' du in its own buffer, and after one barrier every filter's du are added in
    slot order and mapped back onto the k x k taps (ecp_poly_dw_reduce), db summed per filter over
    the batch in double. ``box`` (3x3, no offset): on x's 2x2 box means (_run_poly's box), the
    gradient of the box forward's filters. The items and slots come from the plan, so the result
    does not depend on the thread count."""
    cdef Py_ssize_t N = g.N, C = g.C, O = g.O, hq = g.hq, wq = g.wq, P = g.hq * g.wq
    cdef Py_ssize_t ph = g.ph - g.oy, pw = g.pw - g.ox
    cdef Py_ssize_t nr = ecp_direct_nr_f() if floating is float else ecp_direct_nr_d()
    cdef Py_ssize_t nob = (O + ECP_MR - 1) // ECP_MR, sz = sizeof(floating), th = (hq + 1) // 2
    cdef int k = <int> g.kh
    cdef Py_ssize_t Op = (O + nr - 1) // nr * nr, ns = (k + 2) * (k + 2)
    cdef Py_ssize_t used = 0, tused = 0, o_du, o_v, o_vt, o_m, slot_size, n_rb, n_items, nt
    cdef Py_ssize_t s, it, it0, it1, ib, n0, nb, tr0, ntr, t, o, c
    cdef char *base
    cdef char **tbase
    cdef floating *du
    if N == 0 or P == 0:
        memset(dw, 0, O * C * k * k * sz)
        memset(db, 0, O * sz)
        return 0
    n_sitems = max(1, min(n_sitems, N))
    rows = max(2, min(rows + rows % 2, 2 * th))
    if rows < hq:
        n_sitems = N
    n_rb = (th + rows // 2 - 1) // (rows // 2)
    n_items = n_sitems * n_rb
    n_slots = max(1, min(n_slots, n_items))
    nt = max(1, min(n_threads, n_slots))
    slot_size = _row(Op * ecp_poly_dw_rows(k, C), sz)
    o_du = _carve(&used, n_slots * slot_size * sz)
    o_v = _carve(&tused, (ns * C + 17) * nr * sz)
    o_vt = _carve(&tused, 9 * nr * Op * sz)
    o_m = _carve(&tused, 9 * (nob * ECP_MR + 1) * nr * sz)
    base = _scratch(used)
    tbase = _thread_scratch(nt, tused)
    du = <floating *> (base + o_du)
    with nogil:
        with parallel(num_threads=nt):
            t = threadid()
            for s in prange(n_slots, schedule='static'):
                it0 = s * n_items // n_slots
                it1 = (s + 1) * n_items // n_slots
                for it in range(it0, it1):
                    ib = it // n_rb
                    n0 = ib * N // n_sitems
                    nb = (ib + 1) * N // n_sitems - n0
                    tr0 = (it % n_rb) * (rows // 2)
                    ntr = min(rows // 2, th - tr0)
                    if floating is float:
                        ecp_poly_dw_item_f(k, box, x, C, g.H, g.W, dy, O, hq, wq, n0, nb, tr0, ntr,
                                           ph, pw, du + s * slot_size, it == it0,
                                           <float *> (tbase[t] + o_v), <float *> (tbase[t] + o_vt),
                                           <float *> (tbase[t] + o_m))
                    else:
                        ecp_poly_dw_item_d(k, box, x, C, g.H, g.W, dy, O, hq, wq, n0, nb, tr0, ntr,
                                           ph, pw, du + s * slot_size, it == it0,
                                           <double *> (tbase[t] + o_v), <double *> (tbase[t] + o_vt),
                                           <double *> (tbase[t] + o_m))
            ecp_team_barrier()   # every slot summed before any is read
            for c in prange(C, schedule='static'):   # du's rows are channels: all filters a row
                if floating is float:
                    ecp_poly_dw_reduce_f(k, du, n_slots, slot_size, O, C, Op, c, c + 1,
                                         0.25 if box else 1.0, dw)
                else:
                    ecp_poly_dw_reduce_d(k, du, n_slots, slot_size, O, C, Op, c, c + 1,
                                         0.25 if box else 1.0, dw)
            for o in prange(O, schedule='static'):
                if floating is float:
                    db[o] = <float> ecp_sum_planes_f(dy + o * P, P, N, O * P)
                else:
                    db[o] = ecp_sum_planes_d(dy + o * P, P, N, O * P)
    return 0


cdef int _run_poly_dx(const floating *dy, const floating *w, floating *dx, const _Geom *g,
                      int n_threads) except -1:
    """dx (N, C, H, W) of the stride-2 3x3 or 4x4 convolution of geometry g (grid offset (oy,
    ox)) as its four output phases by Winograd F(2x2, 2x2) (ecp_direct_poly_dx.h): every element
    of dx written. The filter transform is shared (one barrier); items are one sample's blocks of
    tile rows (4 dx rows each), a sample cut into about threads / N blocks when the samples are
    fewer than the threads. Each dx element comes from its own tile alone, so the result depends
    neither on the items nor on the thread count."""
    cdef Py_ssize_t N = g.N, C = g.C, O = g.O, H = g.H, W = g.W, hq = g.hq, wq = g.wq
    cdef Py_ssize_t ph = g.ph - g.oy, pw = g.pw - g.ox
    cdef Py_ssize_t nr = ecp_direct_nr_f() if floating is float else ecp_direct_nr_d()
    cdef Py_ssize_t sz = sizeof(floating), mh = (ph % 4 + 4) % 4, th, parts, rows, n_rb, n_items
    cdef Py_ssize_t used = 0, tused = 0, o_u, o_v, o_m, nt, it, n0, s0, nts, t
    cdef int k = <int> g.kh
    cdef char *base
    cdef char **tbase
    cdef floating *u
    if N == 0 or C * H * W == 0:
        return 0
    if hq * wq == 0:
        memset(dx, 0, N * C * H * W * sz)
        return 0
    th = (H + mh + 3) // 4
    parts = max(1, (n_threads + N - 1) // N)
    rows = max(1, (th + parts - 1) // parts)
    n_rb = (th + rows - 1) // rows
    n_items = N * n_rb
    nt = max(1, min(n_threads, n_items))
    o_u = _carve(&used, ecp_poly_dx_usize(k, C, O) * sz)
    o_v = _carve(&tused, 9 * (O + 1) * nr * sz)
    o_m = _carve(&tused, ecp_poly_dx_msize(k, C, nr) * sz)
    base = _scratch(used)
    tbase = _thread_scratch(nt, tused)
    u = <floating *> (base + o_u)
    with nogil:
        with parallel(num_threads=nt):
            t = threadid()
            if floating is float:
                ecp_poly_dx_weights_shared_f(k, w, O, C, u)
            else:
                ecp_poly_dx_weights_shared_d(k, w, O, C, u)
            for it in prange(n_items, schedule='static'):
                n0 = it // n_rb
                s0 = (it % n_rb) * rows
                nts = min(rows, th - s0)
                if floating is float:
                    ecp_poly_dx_item_f(k, dy, O, hq, wq, u, C, dx, H, W, n0, 1, s0, nts, ph, pw,
                                       <float *> (tbase[t] + o_v), <float *> (tbase[t] + o_m))
                else:
                    ecp_poly_dx_item_d(k, dy, O, hq, wq, u, C, dx, H, W, n0, 1, s0, nts, ph, pw,
                                       <double *> (tbase[t] + o_v), <double *> (tbase[t] + o_m))
    return 0


cdef int _run_poly_box_dx(const floating *dy, const floating *w, floating *dx, const _Geom *g,
                          bint per_sample, int n_threads) except -1:
    """dx of easy average pooling of a 3x3 layer (geometry g: w 3x3, the pooled dy, no offset).
    With at least as many samples as threads: per sample, the polyphase dx of the 3x3 kernel on
    the grid of x's box means (padding folded in: (H + 2ph - 1) x (W + 2pw - 1), into a scratch
    plane per thread, still in its cache), then the box's adjoint into dx (ecp_direct_poly_dx.h): 25 products
    per 4 x 4 block instead of 36. ``per_sample`` False (the plan's choice when the samples are
    fewer than the cores): _run_poly_dx of the box-widened 4x4 kernel (widened here), cut into
    row blocks. The plan, not the thread count, chooses, so the bits do not depend on it."""
    cdef _Geom g4 = g[0], g3 = g[0]
    cdef Py_ssize_t N = g.N, C = g.C, O = g.O, H = g.H, W = g.W, hq = g.hq, wq = g.wq
    cdef Py_ssize_t H2 = H + 2 * g.ph - 1, W2 = W + 2 * g.pw - 1, ph = g.ph, pw = g.pw
    cdef Py_ssize_t n = O * C, nz = ecp_box_zsize(3, 3, 2), sz = sizeof(floating)
    cdef Py_ssize_t nr = ecp_direct_nr_f() if floating is float else ecp_direct_nr_d()
    cdef Py_ssize_t used = 0, tused = 0, o_u, o_v, o_m, o_d, th3, it, t, nt
    cdef char *base
    cdef char **tbase
    cdef floating *u
    cdef floating *wide
    cdef floating *z
    if N == 0 or C * H * W == 0:
        return 0
    if per_sample and hq * wq > 0:
        th3 = (H2 + 3) // 4
        nt = max(1, min(n_threads, N))
        o_u = _carve(&used, ecp_poly_dx_usize(3, C, O) * sz)
        o_v = _carve(&tused, 9 * (O + 1) * nr * sz)
        o_m = _carve(&tused, ecp_poly_dx_msize(3, C, nr) * sz)
        o_d = _carve(&tused, C * H2 * W2 * sz)
        base = _scratch(used)
        tbase = _thread_scratch(nt, tused)
        u = <floating *> (base + o_u)
        with nogil:
            with parallel(num_threads=nt):
                t = threadid()
                if floating is float:
                    ecp_poly_dx_weights_shared_f(3, w, O, C, u)
                else:
                    ecp_poly_dx_weights_shared_d(3, w, O, C, u)
                for it in prange(N, schedule='static'):
                    if floating is float:
                        ecp_poly_dx_item_f(3, dy + it * O * hq * wq, O, hq, wq, u, C,
                                           <float *> (tbase[t] + o_d), H2, W2, 0, 1, 0, th3, 0, 0,
                                           <float *> (tbase[t] + o_v), <float *> (tbase[t] + o_m))
                        ecp_box_adjoint_f(<float *> (tbase[t] + o_d), H2, W2, dx + it * C * H * W,
                                          C, H, W, ph, pw)
                    else:
                        ecp_poly_dx_item_d(3, dy + it * O * hq * wq, O, hq, wq, u, C,
                                           <double *> (tbase[t] + o_d), H2, W2, 0, 1, 0, th3, 0, 0,
                                           <double *> (tbase[t] + o_v), <double *> (tbase[t] + o_m))
                        ecp_box_adjoint_d(<double *> (tbase[t] + o_d), H2, W2, dx + it * C * H * W,
                                          C, H, W, ph, pw)
        return 0
    wide = <floating *> malloc(n * 16 * sz)
    z = <floating *> calloc(nz, sz)
    if wide == NULL or z == NULL:
        free(wide)
        free(z)
        raise MemoryError()
    with nogil:
        if floating is float:
            ecp_box_widen_f(w, wide, n, 3, 3, 2, z)
        else:
            ecp_box_widen_d(w, wide, n, 3, 3, 2, z)
    g4.kh = g4.kw = 4
    try:
        _run_poly_dx(dy, wide, dx, &g4, n_threads)
    finally:
        free(wide)
        free(z)
    return 0
