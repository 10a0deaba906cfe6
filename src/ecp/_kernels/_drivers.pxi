# The OpenMP drivers of the _conv extension (included by _conv.pyx): they cut a call into items,
# carve each thread's scratch and run the items (im2col + BLAS, or ecp_direct.h's kernels) and the
# reductions on a fixed, shape-determined schedule. conv_backward is the raw entry point tests use.

# Thread counts up to which each thread packs its own copy of the weights (no barrier); above it
# they are packed once, a share per thread (bench: the paper's conv2 on 2 cores, docs/performance.md
# section 14).
cdef enum:
    _SHARE_MIN_THREADS = 4


cdef int _run_forward(const floating *x, const floating *w, const floating *bias, floating *y,
                      const _Geom *g, Py_ssize_t n_sitems, Py_ssize_t rows, int n_threads,
                      int kernel) except -1:
    """y[n, o, r, q] = bias[o] + sum_{c,i,j} w[o, c, i, j] * xpad[n, c, oy+s*r+i, ox+s*q+j], for
    the valid arrays of geometry g (y is overwritten; an empty batch or output returns at once).

    ``kernel`` is a ForwardKernel (DIRECT_PANEL and DIRECT_ROWS only where DIRECT_SUPPORTED, else
    IM2COL_BLAS runs): IM2COL_BLAS; DIRECT_PANEL, ecp_direct.h's panel kernel (windows packed a
    run of same-row pixels at a time, 8 filters x NR pixels per register tile, NR = direct_nr);
    DIRECT_ROWS, its pixel-rows kernel (windows packed a pixel at a time or read in place,
    8 pixels x NR filters per tile), for output rows too short for runs to pay.

    Work is cut into items: ``n_sitems`` runs of whole samples (item i: samples i*N // n_sitems
    up to (i+1)*N // n_sitems, so their sizes differ by one at most), or (when ``rows`` < the
    output height) blocks of ``rows`` output rows of one sample. Each thread takes whole items,
    with its own scratch and its own single-threaded GEMM. The items are dealt statically, in
    contiguous runs: thread t takes the same share of the samples in every call (forward,
    backward, and the pooling and ReLU kernels, whose static loops over samples cut the batch
    the same way), so that a sample's activations stay in the cache of the core that produced
    them. Every output is written by its item alone, so the results do not depend on the
    thread count."""
    cdef Py_ssize_t N = g.N, K = g.C * g.kh * g.kw, O = g.O, hq = g.hq, wq = g.wq
    cdef Py_ssize_t ph = g.ph, pw = g.pw, stride = g.stride, oy = g.oy, ox = g.ox
    cdef Py_ssize_t n_items, n_rb, it, t, n0, nb, r0, nt, ib, group
    if N == 0 or hq * wq == 0:
        return 0
    if kernel == POLYPHASE_BOX:
        return _run_poly(x, w, bias, y, g, n_sitems, rows, n_threads, True)
    if kernel == POLYPHASE_TALL and _poly_fits(g) and g.kh == 3:
        return _run_poly(x, w, bias, y, g, n_sitems, rows, n_threads, False, True)
    if kernel == WINOGRAD or kernel == POLYPHASE_TALL:
        if _wino_fits(g, False):
            return _run_wino(x, w, bias, y, N, g.C, g.H, g.W, O, hq, wq, ph, pw, False, n_sitems,
                             rows, n_threads)
        if _poly_fits(g):
            return _run_poly(x, w, bias, y, g, n_sitems, rows, n_threads)
        kernel = DIRECT_PANEL
    n_sitems = max(1, min(n_sitems, N))
    rows = max(1, min(rows, hq))
    if rows < hq:
        n_sitems = N
    group = (N + n_sitems - 1) // n_sitems   # samples of the largest item
    n_rb = (hq + rows - 1) // rows
    n_items = n_sitems * n_rb
    nt = max(1, min(n_threads, n_items))
    cdef Py_ssize_t nr_cols = ecp_direct_nr_f() if floating is float else ecp_direct_nr_d()  # NR
    cdef Py_ssize_t C = g.C, H = g.H, W = g.W, kh = g.kh, kw = g.kw
    cdef Py_ssize_t sz = sizeof(floating), tused = 0, used = 0, o_koff = -1
    cdef bint use_koff
    cdef Py_ssize_t wp_n, tile_n, panel_n, o_tile, o_wp, o_panel, o_cols, o_ybuf
    cdef char **tbase
    cdef floating *wpt
    cdef floating *wshared
    cdef bint share_wp
    cdef floating *tile
    cdef floating *panel
    cdef floating *cols
    cdef floating *ybuf
    cdef int *koffp = NULL
    if not DIRECT_SUPPORTED:
        kernel = IM2COL_BLAS
    if kernel == DIRECT_PANEL or kernel == DIRECT_ROWS:
        if kernel == DIRECT_PANEL:
            tile_n = (O + ECP_MR - 1) // ECP_MR * ECP_MR * nr_cols   # a tile per filter block
            wp_n = ((O + ECP_MR - 1) // ECP_MR) * ECP_MR * K
            panel_n = K * nr_cols
        else:
            tile_n = (O + nr_cols - 1) // nr_cols * ECP_ROWS_PIX * nr_cols
            wp_n = (O + nr_cols - 1) // nr_cols * nr_cols * K
            panel_n = ECP_ROWS_PIX * K + nr_cols // 2   # + a vector of slack
        o_tile = _carve(&tused, tile_n * sz)   # in the thread's own area (_carve: whole lines)
        # Above _SHARE_MIN_THREADS threads the packed weights are shared, each thread packing a
        # share of the filter blocks before a barrier; up to it each thread packs its own copy (no
        # barrier: on a busy machine a barrier waits for the slowest thread's time slice). Either
        # way the same values.
        share_wp = nt > _SHARE_MIN_THREADS
        o_wp = _carve(&used if share_wp else &tused, wp_n * sz)
        o_panel = _carve(&tused, panel_n * sz)
        use_koff = kernel == DIRECT_ROWS and C * H * W <= INT_MAX
        if use_koff:   # the window offsets, for reading windows in place: each thread its own copy,
            # written by that thread, so that it stays in that core's cache
            o_koff = _carve(&tused, K * sizeof(int))
        tbase = _thread_scratch(nt, tused)
        wshared = <floating *> (_scratch(used) + o_wp) if share_wp else NULL
        with nogil:
            with parallel(num_threads=nt):
                t = threadid()
                koffp = NULL
                if use_koff:
                    koffp = <int *> (tbase[t] + o_koff)
                    ecp_window_offsets(C, H, W, kh, kw, K, koffp)
                tile = <floating *> (tbase[t] + o_tile)
                panel = <floating *> (tbase[t] + o_panel)
                if share_wp:   # a share of the filter blocks, then a barrier (in the call)
                    wpt = wshared
                    if floating is float:
                        ecp_pack_weights_shared_f(w, O, K, 0 if kernel == DIRECT_PANEL else nr_cols, wpt)
                    else:
                        ecp_pack_weights_shared_d(w, O, K, 0 if kernel == DIRECT_PANEL else nr_cols, wpt)
                else:
                    wpt = <floating *> (tbase[t] + o_wp)
                    if kernel == DIRECT_PANEL:
                        if floating is float:
                            ecp_pack_weights_f(w, O, K, wpt)
                        else:
                            ecp_pack_weights_d(w, O, K, wpt)
                    else:
                        if floating is float:
                            ecp_pack_weights_v_f(w, O, K, nr_cols, wpt)
                        else:
                            ecp_pack_weights_v_d(w, O, K, nr_cols, wpt)
                for it in prange(n_items, schedule='static'):
                    ib = it // n_rb
                    n0 = ib * N // n_sitems
                    nb = (ib + 1) * N // n_sitems - n0
                    r0 = (it % n_rb) * rows
                    if kernel == DIRECT_PANEL:
                        if floating is float:
                            ecp_direct_item_f(x, C, H, W, wpt, O, kh, kw,
                                              bias, y, hq, wq, n0, nb, r0,
                                              min(rows, hq - r0), ph, pw, stride, oy, ox,
                                              panel, tile)
                        else:
                            ecp_direct_item_d(x, C, H, W, wpt, O, kh, kw,
                                              bias, y, hq, wq, n0, nb, r0,
                                              min(rows, hq - r0), ph, pw, stride, oy, ox,
                                              panel, tile)
                    else:
                        if floating is float:
                            ecp_direct_rows_item_f(x, C, H, W, wpt, O, kh, kw,
                                                   bias, y, hq, wq, n0, nb, r0,
                                                   min(rows, hq - r0), ph, pw, stride, oy, ox,
                                                   panel, tile, koffp)
                        else:
                            ecp_direct_rows_item_d(x, C, H, W, wpt, O, kh, kw,
                                                   bias, y, hq, wq, n0, nb, r0,
                                                   min(rows, hq - r0), ph, pw, stride, oy, ox,
                                                   panel, tile, koffp)
        return 0
    o_cols = _carve(&tused, K * group * rows * wq * sz)
    o_ybuf = _carve(&tused, O * group * rows * wq * sz)
    tbase = _thread_scratch(nt, tused)
    with nogil:
        blas_single_enter()
        with parallel(num_threads=nt):
            t = threadid()
            cols = <floating *> (tbase[t] + o_cols)
            ybuf = <floating *> (tbase[t] + o_ybuf)
            for it in prange(n_items, schedule='static'):
                ib = it // n_rb
                n0 = ib * N // n_sitems
                nb = (ib + 1) * N // n_sitems - n0
                r0 = (it % n_rb) * rows
                _forward_item(x, w, bias, y, g, n0, nb, r0, min(rows, hq - r0), cols, ybuf)
        blas_single_exit()
    return 0


cdef int _run_backward(const floating *dy, const floating *x, const floating *w, floating *dx,
                       floating *dw, floating *db, const _Geom *g, bint need_dx,
                       Py_ssize_t n_sitems, Py_ssize_t n_slots, int n_threads, bint direct,
                       bint need_dw, bint in_place) except -1:
    cdef Py_ssize_t N = g.N, O = g.O, C = g.C, H = g.H, W = g.W, kh = g.kh, kw = g.kw
    cdef Py_ssize_t hq = g.hq, wq = g.wq, ph = g.ph, pw = g.pw
    cdef Py_ssize_t stride = g.stride, oy = g.oy, ox = g.ox
    cdef Py_ssize_t K = C * kh * kw
    cdef Py_ssize_t P = hq * wq
    cdef Py_ssize_t n_items, it, t, n0, nb, nt, s, it0, it1, o, ld, group
    cdef floating *dwp = dw
    cdef floating *dxp = dx if need_dx else NULL
    cdef floating *dwsp
    cdef floating *dxq
    if not (direct and DIRECT_SUPPORTED):
        need_dw = True
    if N == 0 or P == 0:   # nothing to sum: zero gradients (else the reductions write them all)
        if need_dw:
            memset(dwp, 0, O * K * sizeof(floating))
            memset(db, 0, O * sizeof(floating))
        if need_dx and N > 0:
            memset(dx, 0, N * C * H * W * sizeof(floating))
        return 0
    n_items = max(1, min(n_sitems, N))
    group = (N + n_items - 1) // n_items   # samples of the largest item
    n_slots = max(1, min(n_slots, n_items))
    # Fewer slots than threads (N = 1 on two threads, say): a slot's dW and its items' dx run as
    # separate tasks, parts of them on more threads -- dW by blocks of its rows (k blocks or filter
    # blocks), dx by channels -- the item computing its part alone (the same sums: the bits of one
    # task of both)
    cdef bint split = direct and DIRECT_SUPPORTED and need_dw and need_dx and n_slots < n_threads
    cdef Py_ssize_t parts = max(1, n_threads // (2 * n_slots)) if split else 1
    cdef Py_ssize_t n_tasks = 2 * parts * n_slots if split else n_slots, sl, part
    cdef Py_ssize_t d0, d1, c0, c1, dw_units
    nt = max(1, min(n_threads, n_tasks))
    cdef Py_ssize_t nr_cols = ecp_direct_nr_f() if floating is float else ecp_direct_nr_d()  # NR
    cdef Py_ssize_t nob = (O + ECP_MR - 1) // ECP_MR, nkb = (K + ECP_MR - 1) // ECP_MR
    cdef Py_ssize_t sz = sizeof(floating), used = 0, tused = 0, slot_size, o_dws, o_koff = -1
    cdef Py_ssize_t dbs_row = (O + ECP_MR - 1) // ECP_MR * ECP_MR, o_dbs, k
    cdef double *dbs
    cdef Py_ssize_t o_wt, dp_row, o_rp, o_red, o_dp, o_xp, o_cols, o_dybuf, o_dcols
    cdef char *base
    cdef char **tbase
    cdef floating *dws
    cdef floating *wtt
    cdef floating *wshared
    cdef bint share_wp
    cdef floating *rpanel
    cdef floating *dpanel
    cdef floating *xpanel
    cdef floating *cols
    cdef floating *dybuf
    cdef floating *dcols
    cdef int *koffp = NULL
    cdef Py_ssize_t ob_ld = 0
    # dW straight from x (ecp_tile_xt) when no window reaches into the padding
    cdef bint inside = (in_place and need_dw and oy >= ph and ox >= pw
                        and oy + stride * (hq - 1) - ph + kh <= H
                        and ox + stride * (wq - 1) - pw + kw <= W and C * H * W <= INT_MAX)
    if direct and DIRECT_SUPPORTED:
        ld = (K + nr_cols - 1) // nr_cols * nr_cols      # dW rows padded to whole tiles
        ob_ld = (O + nr_cols - 1) // nr_cols * nr_cols
        # dW slots, overwritten by their first item (no zeroing): k-major (nkb*8 rows of ob_ld filters) when
        # the windows are read in place, else filter-major (nob*8 rows of ld)
        slot_size = _row((nkb * ECP_MR * ob_ld if inside else nob * ECP_MR * ld) if need_dw else 1, sz)
        o_dws = _carve(&used, n_slots * slot_size * sz)
        o_dbs = _carve(&used, n_slots * dbs_row * sizeof(double))
        if inside:   # the window offsets: each thread its own copy, as in _run_forward
            o_koff = _carve(&tused, nkb * ECP_MR * sizeof(int))
        share_wp = nt > _SHARE_MIN_THREADS   # W^T shared above it, as the forward's weights
        o_wt = _carve(&used if share_wp else &tused, (nkb * ECP_MR * O if need_dx else 1) * sz)
        o_rp = _carve(&tused, (nr_cols * max(ld, ob_ld) + nr_cols // 2) * sz)  # + a vector of slack
        o_red = _carve(&tused, (_KBLOCK * ob_ld if inside else 1) * sz)   # a block of the reduction
        dp_row = nob * ECP_MR * nr_cols
        o_dp = _carve(&tused, dp_row * sz)
        o_xp = _carve(&tused, (nkb * ECP_MR * nr_cols if need_dx else 1) * sz)
        base = _scratch(used)
        tbase = _thread_scratch(nt, tused)
        dws = <floating *> (base + o_dws)
        dbs = <double *> (base + o_dbs)
        wshared = <floating *> (base + o_wt) if share_wp else NULL
        dw_units = nkb if inside else nob   # dwacc's blocks of 8 rows (the split's dW parts)
        with nogil:
            with parallel(num_threads=nt):
                t = threadid()
                koffp = NULL
                if inside:
                    koffp = <int *> (tbase[t] + o_koff)
                    ecp_window_offsets(C, H, W, kh, kw, nkb * ECP_MR, koffp)
                rpanel = <floating *> (tbase[t] + o_rp)
                dpanel = <floating *> (tbase[t] + o_dp)
                xpanel = <floating *> (tbase[t] + o_xp)
                memset(dpanel, 0, dp_row * sz)   # rows past O stay 0
                wtt = NULL
                if need_dx and share_wp:   # a share of W^T, then a barrier (in the call)
                    wtt = wshared
                    if floating is float:
                        ecp_pack_weights_t_shared_f(w, O, K, wtt)
                    else:
                        ecp_pack_weights_t_shared_d(w, O, K, wtt)
                elif need_dx:
                    wtt = <floating *> (tbase[t] + o_wt)
                    if floating is float:
                        ecp_pack_weights_t_f(w, O, K, wtt)
                    else:
                        ecp_pack_weights_t_d(w, O, K, wtt)
                for s in prange(n_tasks, schedule='static'):
                    # unsplit: task s is slot s, its dW and dx; split: slot s // (2 parts), its
                    # dW part (s % (2 parts)) or, from parts on, its dx part
                    sl = s // (2 * parts) if split else s
                    part = s % (2 * parts) if split else 0
                    d0 = 0
                    d1 = dw_units
                    c0 = 0
                    c1 = C
                    dwsp = NULL
                    if need_dw and part < parts:   # the slot's first item overwrites it: no zeroing
                        dwsp = dws + sl * slot_size
                    dxq = dxp if not split or part >= parts else NULL
                    if split and part < parts:
                        d0 = part * dw_units // parts
                        d1 = (part + 1) * dw_units // parts
                    elif split:
                        c0 = (part - parts) * C // parts
                        c1 = (part - parts + 1) * C // parts
                    it0 = sl * n_items // n_slots
                    it1 = (sl + 1) * n_items // n_slots
                    for it in range(it0, it1):
                        n0 = it * N // n_items
                        nb = (it + 1) * N // n_items - n0
                        if floating is float:
                            ecp_direct_backward_item_f(
                                x, C, H, W, dy, O, hq, wq, wtt,
                                kh, kw, n0, nb, ph, pw, stride, oy, ox, dwsp, dxq,
                                rpanel, dpanel, xpanel,
                                koffp, it == it0, d0, d1, c0, c1)
                        else:
                            ecp_direct_backward_item_d(
                                x, C, H, W, dy, O, hq, wq, wtt,
                                kh, kw, n0, nb, ph, pw, stride, oy, ox, dwsp, dxq,
                                rpanel, dpanel, xpanel,
                                koffp, it == it0, d0, d1, c0, c1)
                    if need_dw and part == 0:
                        _slot_bias(dy, dbs + sl * dbs_row, it0 * N // n_items,
                                   it1 * N // n_items, O, P)
                # In the same parallel region: one fork and join per call. Cython makes each prange
                # of a parallel block an `omp for nowait`, but the threads still meet before the
                # slots are added: the loops below have an index that is firstprivate and
                # lastprivate, which GCC's OpenMP opens with a barrier. A reduction loop without
                # that wait fails test_dw_slots_are_added_only_when_every_thread_has_finished.
                if inside:
                    for o in prange((K + _KBLOCK - 1) // _KBLOCK, schedule='static'):
                        _reduce_columns(dwp, dws, o, K, O, ob_ld, n_slots, slot_size,
                                        <floating *> (tbase[t] + o_red))
                        if o == 0:   # db: a few adds, by the thread of the first block
                            for k in range(O):
                                db[k] = <floating> _bias_from_slots(dbs, k, n_slots, dbs_row)
                elif need_dw:
                    for o in prange(O, schedule='static'):
                        _reduce_filter(dwp, dws, o, K, ld, n_slots, slot_size, db, dbs, dbs_row)
    else:
        ld = K
        slot_size = _row(O * K, sz)
        o_dws = _carve(&used, n_slots * slot_size * sz)   # zeroed by its slot's thread
        o_dbs = _carve(&used, n_slots * dbs_row * sizeof(double))
        o_cols = _carve(&tused, K * group * P * sz)
        o_dybuf = _carve(&tused, O * group * P * sz)
        o_dcols = _carve(&tused, (K * group * P if need_dx else 1) * sz)
        base = _scratch(used)
        tbase = _thread_scratch(nt, tused)
        dws = <floating *> (base + o_dws)
        dbs = <double *> (base + o_dbs)
        with nogil:
            # One BLAS thread: a threaded BLAS would give other sums than a single one.
            blas_single_enter()
            with parallel(num_threads=nt):
                t = threadid()
                cols = <floating *> (tbase[t] + o_cols)
                dybuf = <floating *> (tbase[t] + o_dybuf)
                dcols = <floating *> (tbase[t] + o_dcols)
                for s in prange(n_slots, schedule='static'):
                    memset(dws + s * slot_size, 0, slot_size * sz)
                    it0 = s * n_items // n_slots
                    it1 = (s + 1) * n_items // n_slots
                    for it in range(it0, it1):
                        n0 = it * N // n_items
                        nb = (it + 1) * N // n_items - n0
                        _backward_item(dy, x, w, dx, dws + s * slot_size, need_dx, g, n0, nb,
                                       cols, dybuf, dcols)
                    _slot_bias(dy, dbs + s * dbs_row, it0 * N // n_items,
                               it1 * N // n_items, O, P)
                for o in prange(O, schedule='static'):   # opens with a barrier: see above
                    _reduce_filter(dwp, dws, o, K, ld, n_slots, slot_size, db, dbs, dbs_row)
            blas_single_exit()
    return 0


def conv_backward(const floating[:, :, :, ::1] dy, const floating[:, :, :, ::1] x,
                  const floating[:, :, :, ::1] w, floating[:, :, :, ::1] dx,
                  floating[:, :, :, ::1] dw, floating[::1] db,
                  bint need_dx, pad, Py_ssize_t stride, Py_ssize_t oy,
                  Py_ssize_t ox, Py_ssize_t n_sitems, Py_ssize_t n_slots, int n_threads,
                  bint direct=False, bint need_dw=True, bint in_place=True):
    """Gradients of the convolution (_run_forward): dx (when need_dx; every element written), dw, db (overwritten
    when need_dw; need_dw=False, direct only, computes dx alone and leaves dw and db untouched).
    ``pad``: the zero padding, an int (every side) or a pair (rows on the top and bottom, columns
    on the left and right).
    ``in_place`` (direct only): when every window lies inside the plane, read the windows for dW
    from x in place rather than packing them (the same bits; False packs, for tests).

    The batch is cut into ``n_sitems`` items of whole samples as in _run_forward, dealt to
    ``n_slots`` slots in contiguous runs; each slot sums its items' dW in its own buffer (and its
    samples' db, in double), and the slots are added in order at the end. Slots, not
    threads, own the partial sums, so the result does not depend on the thread count, nor on which
    thread takes which slot (they are dealt statically, as _run_forward's items: with as many
    threads as slots, thread t sums slot t, the samples it took in the forward pass).
    ``direct`` (only where DIRECT_SUPPORTED) runs each item through ecp_direct.h's fused kernel
    (packed panels of pixels, dx accumulated straight from each panel) instead of im2col + BLAS
    + col2im.
    """
    cdef Py_ssize_t ph, pw
    ph, pw = (pad, pad) if isinstance(pad, int) else pad
    cdef _Geom g = _geom(&x.shape[0], &w.shape[0], dy.shape[2], dy.shape[3], ph, pw, stride, oy, ox)
    cdef bint full = g.N > 0 and g.hq * g.wq > 0
    _run_backward(&dy[0, 0, 0, 0] if full else NULL, &x[0, 0, 0, 0] if full else NULL,
                  &w[0, 0, 0, 0], &dx[0, 0, 0, 0] if need_dx and g.N > 0 else NULL,
                  &dw[0, 0, 0, 0], &db[0], &g, need_dx, n_sitems, n_slots, n_threads, direct,
                  need_dw, in_place)


cdef int _backward_planned(const floating *dy, const floating *x, const floating *w, floating *dx,
                           floating *dw, floating *db, const _Geom *g, bint compute_dx, int kernel,
                           Py_ssize_t items, Py_ssize_t dx_items, Py_ssize_t slots,
                           int n_threads) except -1:
    """BackwardPlan.run's kernel calls (``kernel`` a BackwardKernel): one, or for SPLIT dW and db
    through im2col + BLAS and then dx alone through the direct kernel, or for WINOGRAD_BACKWARD dW and db
    (``items`` sample items of ``dx_items`` output rows) and then dx by Winograd (padding <= 2;
    else the direct dx of SPLIT); at stride 2 (3x3 or 4x4) dW, db and dx by the polyphase splits."""
    cdef Py_ssize_t parts
    if kernel == POLYPHASE_BOX_BACKWARD:
        # dW and db on x's box sums (w 3x3), dx by the widened kernel's polyphase split
        _run_poly_dw(dy, x, dw, db, g, items, dx_items, slots, n_threads, True)
        if compute_dx:   # whole samples when the plan cuts none (dx_items: rows per dW item)
            _run_poly_box_dx(dy, w, dx, g, dx_items >= g.hq, n_threads)
        return 0
    if kernel == WINOGRAD_BACKWARD and _poly_fits(g):
        # dW and db by the polyphase split (items: sample items, dx_items: output rows per dW
        # item), then dx by the polyphase split of its output (cut in the kernel)
        _run_poly_dw(dy, x, dw, db, g, items, dx_items, slots, n_threads)
        if compute_dx:
            _run_poly_dx(dy, w, dx, g, n_threads)
        return 0
    if kernel == WINOGRAD_BACKWARD and _wino_fits(g, False):
        # items: sample items, dx_items: output rows per item (ecp._dispatch.plan_backward)
        _run_wino_dw(dy, x, dw, db, g, items, dx_items, slots, n_threads)
    else:
        if kernel == WINOGRAD_BACKWARD:   # (a plan made by hand for another geometry)
            kernel = SPLIT
            items = dx_items = g.N
        _run_backward(dy, x, w, dx, dw, db, g, compute_dx and (kernel == BLAS or kernel == DIRECT),
                      items, slots, n_threads, kernel == DIRECT, True, True)
    if kernel == WINOGRAD_BACKWARD and compute_dx and _wino_fits(g, True):
        # dx: the stride-1 convolution of dY, padding 2 - p, with the flipped filters; row blocks
        # when the samples are fewer than the threads (the bits do not depend on the cut)
        parts = max(1, (n_threads + g.N - 1) // max(g.N, 1))
        _run_wino(dy, w, NULL, dx, g.N, g.O, g.hq, g.wq, g.C, g.H, g.W, 2 - g.ph, 2 - g.pw, True,
                  g.N, (g.H + parts - 1) // parts, n_threads)
        return 0
    if (kernel == SPLIT or kernel == WINOGRAD_BACKWARD) and compute_dx:
        _run_backward(dy, x, w, dx, dw, db, g, True, dx_items, slots, n_threads, True, False, True)
    return 0
