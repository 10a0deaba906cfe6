# The planned calls of the _conv extension (included by _conv.pyx): ForwardPlan and BackwardPlan,
# which ecp.conv builds once per geometry and caches, and the C checks of the arrays they are run on
# (a TypeError or ValueError naming the argument for anything else).

cdef inline bint _is_array(object a, int type_num, int ndim, const Py_ssize_t *dims) noexcept:
    """Whether ``a`` is exactly what a planned call takes: an ndarray (not a subclass) of
    ``type_num`` in native byte order, C-contiguous, with dimensions ``dims``."""
    cdef cnp.ndarray arr
    cdef int i
    if not cnp.PyArray_CheckExact(a):
        return False
    arr = <cnp.ndarray> a
    if (cnp.PyArray_TYPE(arr) != type_num or cnp.PyArray_NDIM(arr) != ndim
            or not cnp.PyArray_IS_C_CONTIGUOUS(arr) or not cnp.PyArray_ISNOTSWAPPED(arr)):
        return False
    for i in range(ndim):
        if cnp.PyArray_DIM(arr, i) != dims[i]:
            return False
    return True


cdef str _mismatch(str name, object a, int type_num, int ndim, const Py_ssize_t *dims):
    """The error message for an argument ``a`` that a planned call does not take."""
    want = (f"a C-contiguous {np.dtype(np.float32 if type_num == cnp.NPY_FLOAT else np.float64)} "
            f"ndarray of shape {tuple(dims[i] for i in range(ndim))} (the shape this call was planned for)")
    if type(a) is not np.ndarray:
        got = type(a).__name__
    else:
        got = (f"{a.dtype} {'C-contiguous' if a.flags.c_contiguous else 'non-contiguous'} array of "
               f"shape {a.shape}")
    return f"{name} must be {want}, got {got}"


cdef inline bint _apart(cnp.ndarray a, cnp.ndarray b) noexcept:
    """Whether the bytes of two C-contiguous arrays do not overlap."""
    cdef char *pa = <char *> cnp.PyArray_DATA(a)
    cdef char *pb = <char *> cnp.PyArray_DATA(b)
    return pa + cnp.PyArray_NBYTES(a) <= pb or pb + cnp.PyArray_NBYTES(b) <= pa


cdef inline bint _writes_apart(object out, object a, object b, object c) noexcept:
    """Whether the C-contiguous array ``out`` is writeable and shares no memory with a, b, c
    (C-contiguous arrays too), so that the kernels may write it while reading them."""
    return (cnp.PyArray_ISWRITEABLE(<cnp.ndarray> out) and _apart(out, a) and _apart(out, b)
            and _apart(out, c))


cdef bint _mode_fits(object mode, Py_ssize_t stride, Py_ssize_t oy, Py_ssize_t ox) except -1:
    """Whether a plan's ``mode`` names its grid: None the full convolution (stride 1, no offset);
    an int K in 0..3 the 2x2 window of stride 2 (offset divmod(K, 2)); a tuple (K, p, s) of ints
    the p x p window of stride s (1 <= s <= p <= 4, K in 0..p*p-1, offset divmod(K, p); the
    kernels run s <= 2, ecp._plans the larger strides)."""
    if mode is None:
        return stride == 1 and oy == 0 and ox == 0
    if type(mode) is int:
        return 0 <= mode <= 3 and stride == 2 and (oy, ox) == divmod(mode, 2)
    if type(mode) is not tuple or len(<tuple> mode) != 3:
        return False
    k, p, s = mode
    if not (type(k) is int and type(p) is int and type(s) is int):
        return False
    return 1 <= s <= p <= 4 and 0 <= k < p * p and stride == s and (oy, ox) == divmod(k, p)


cdef inline void *_data(object a) noexcept:
    return cnp.PyArray_DATA(<cnp.ndarray> a)


cdef class _Plan:
    """A convolution call planned once for one geometry (x's and w's shapes, dtype, padding,
    mode) and the module settings it was planned under: ``ecp.conv`` checks the geometry, plans
    the call and caches the plan. Running it checks in C that the arrays are exactly those the
    plan was made for (``fits``) and calls the kernel on their data, so that a call of the
    steady state of a training loop costs a few attribute reads instead of the Python checks,
    the cache lookup and buffer acquisitions.
    ``kernel`` is a ForwardKernel code for a ForwardPlan, a BackwardKernel code for a
    BackwardPlan (both 0 .. 4). ``mode``: None (full convolution), K (2x2 window, stride 2) or
    (K, p, s) (p x p window, stride s); see _mode_fits. ``padding`` is the pair (rows on the top and bottom, columns on the
    left and right); the constructor also takes one int for both."""
    cdef _Geom g
    cdef int type_num
    cdef Py_ssize_t x_dims[4]
    cdef Py_ssize_t w_dims[4]
    cdef Py_ssize_t y_dims[4]     # the output of the forward pass, dy of the backward
    cdef readonly object padding, mode, tunables
    cdef readonly int kernel
    cdef readonly Py_ssize_t items
    cdef readonly bint threaded

    def __init__(self, tuple x_shape, tuple w_shape, tuple y_shape, str dtype_char, padding,
                 mode, Py_ssize_t stride, Py_ssize_t oy, Py_ssize_t ox, int kernel,
                 Py_ssize_t items, bint threaded, tunables):
        cdef int i
        cdef _Geom *g
        if dtype_char not in ("f", "d"):
            raise ValueError(f"dtype_char must be 'f' or 'd', got {dtype_char!r}")
        if len(x_shape) != 4 or len(w_shape) != 4 or len(y_shape) != 4:
            raise ValueError(f"shapes must have 4 dimensions, got {x_shape}, {w_shape}, {y_shape}")
        self.type_num = cnp.NPY_FLOAT if dtype_char == "f" else cnp.NPY_DOUBLE
        for i in range(4):
            self.x_dims[i], self.w_dims[i], self.y_dims[i] = x_shape[i], w_shape[i], y_shape[i]
        if type(padding) is tuple and len(padding) == 2:
            ph, pw = padding
        else:
            ph = pw = padding
        self.g = _geom(self.x_dims, self.w_dims, y_shape[2], y_shape[3], ph, pw, stride, oy, ox)
        # ecp.conv plans only checked geometries; a plan made by hand must still never let the
        # kernels read or write outside the arrays
        g = &self.g
        if (min(g.C, g.H, g.W, g.O, g.kh, g.kw) < 1 or min(g.N, g.hq, g.wq) < 0 or min(g.ph, g.pw) < 0
                # ecp_im2col.h takes strides 1 to 4 (offsets up to 3: windows up to 4x4)
                or not (1 <= stride <= 4) or not (0 <= oy < 4 and 0 <= ox < 4)
                # the direct kernels take strides 1 and 2 with offsets within the stride only
                or (kernel != 0 and not (stride <= 2 and oy < stride and ox < stride))
                or self.w_dims[1] != g.C or self.y_dims[0] != g.N or self.y_dims[1] != g.O
                or (g.hq > 0 and oy + stride * (g.hq - 1) + g.kh > g.H + 2 * g.ph)
                or (g.wq > 0 and ox + stride * (g.wq - 1) + g.kw > g.W + 2 * g.pw)
                # a ForwardKernel or BackwardKernel (POLYPHASE_TALL = 5 a forward one only)
                or not (0 <= kernel <= (5 if isinstance(self, ForwardPlan) else 4))
                # the box kernels: easy average pooling's 2x2 window over a 3x3 layer, its 4 x 4
                # windows inside the padded plane
                or (kernel == 4 and not (DIRECT_SUPPORTED and stride == 2 and oy == 0 and ox == 0
                                         and g.kh == 3 and g.kw == 3
                                         and 2 * g.hq + 2 <= g.H + 2 * g.ph and 2 * g.wq + 2 <= g.W + 2 * g.pw))
                or g.C * g.kh * g.kw > INT_MAX or g.hq * g.wq > INT_MAX   # (the BLAS takes ints)
                or not _mode_fits(mode, stride, oy, ox)):
            raise ValueError(f"not a convolution the kernels can run: x {x_shape}, w {w_shape}, "
                             f"output {y_shape}, padding {padding}, mode {mode!r}, stride {stride}, "
                             f"offset ({oy}, {ox}), kernel {kernel}")
        self.padding, self.mode, self.tunables = (g.ph, g.pw), mode, tunables
        self.kernel, self.items, self.threaded = kernel, items, threaded

    cdef bint _inputs_fit(self, x, w) noexcept:
        return (_is_array(x, self.type_num, 4, self.x_dims)
                and _is_array(w, self.type_num, 4, self.w_dims))

    cdef bint _same_call(self, padding, mode, tunables) except -1:
        # ints compared as the checked path would take them (it refuses floats, say); padding an
        # int (both sides) or a tuple of two ints (a list or numpy ints take the checked path)
        cdef object p0, p1
        if type(padding) is int:
            if not (padding == self.g.ph and padding == self.g.pw):
                return False
        elif type(padding) is tuple and len(<tuple> padding) == 2:
            p0, p1 = padding
            if not (type(p0) is int and type(p1) is int and p0 == self.g.ph and p1 == self.g.pw):
                return False
        else:
            return False
        if self.mode is None:
            if mode is not None:
                return False
        elif type(self.mode) is int:
            if not (type(mode) is int and mode == self.mode):
                return False
        elif not (type(mode) is tuple and mode == self.mode):   # (K, p, s): ints, checked by the caller
            return False
        return tunables == self.tunables

    cdef int _threads(self, int n_threads) noexcept:
        return n_threads if self.threaded else 1

    cdef int _check(self, str name, object a, int ndim, const Py_ssize_t *dims) except -1:
        """Raise unless ``a`` is what this plan takes for argument ``name``: a TypeError naming
        it when it is not an ndarray, else a ValueError saying what was expected."""
        if not _is_array(a, self.type_num, ndim, dims):
            raise (ValueError if type(a) is np.ndarray else TypeError)(
                _mismatch(name, a, self.type_num, ndim, dims))
        return 0


cdef class ForwardPlan(_Plan):
    """A planned forward call (_run_forward): ``run(x, w, b, n_threads)`` returns y. ``kernel``:
    a ForwardKernel (IM2COL_BLAS, DIRECT_PANEL, DIRECT_ROWS, WINOGRAD or POLYPHASE_BOX)."""
    cdef readonly Py_ssize_t rows
    cdef Py_ssize_t b_dims[1]
    cdef tuple _args

    def __init__(self, x_shape, w_shape, y_shape, dtype_char, padding, mode, stride, oy, ox,
                 kernel, items, rows, threaded, tunables):
        super().__init__(x_shape, w_shape, y_shape, dtype_char, padding, mode, stride, oy, ox,
                         kernel, items, threaded, tunables)
        self.rows = rows
        self.b_dims[0] = self.w_dims[0]
        self._args = (x_shape, w_shape, y_shape, dtype_char, padding, mode, stride, oy, ox, kernel,
                      items, rows, threaded, tunables)

    def __reduce__(self):   # (layers keep their last plan: a pickled or copied network keeps it too)
        return type(self), self._args

    @property
    def out_shape(self):
        return tuple(self.y_dims[i] for i in range(4))

    def fits(self, x, w, b, padding, mode, tunables):
        """Whether this plan runs a call with these arguments (b an array: not None)."""
        return (self._inputs_fit(x, w) and _is_array(b, self.type_num, 1, self.b_dims)
                and self._same_call(padding, mode, tunables))

    def run(self, x, w, b, int n_threads):
        """y (a new array) for x, w, b of the planned shapes and dtype (else a ValueError, or a
        TypeError for what is not an ndarray, naming the argument)."""
        self._check("x", x, 4, self.x_dims)
        self._check("w", w, 4, self.w_dims)
        self._check("b", b, 1, self.b_dims)
        y = cnp.PyArray_EMPTY(4, <cnp.npy_intp *> self.y_dims, self.type_num, 0)
        if self.type_num == cnp.NPY_FLOAT:
            _run_forward(<const float *> _data(x), <const float *> _data(w),
                         <const float *> _data(b), <float *> _data(y), &self.g, self.items,
                         self.rows, self._threads(n_threads), self.kernel)
        else:
            _run_forward(<const double *> _data(x), <const double *> _data(w),
                         <const double *> _data(b), <double *> _data(y), &self.g, self.items,
                         self.rows, self._threads(n_threads), self.kernel)
        return y


cdef class BackwardPlan(_Plan):
    """A planned backward call (_run_backward): ``run(dy, x, w, compute_dx, n_threads)`` returns
    (dx or None, dw, db). ``kernel``: a BackwardKernel, BLAS (im2col + BLAS), DIRECT, SPLIT
    (dW and db through im2col + BLAS, then dx alone through the direct kernel in ``dx_items``
    items), WINOGRAD_BACKWARD (dW, db and dx by Winograd; ``dx_items`` is then the output rows
    of a dW item) or POLYPHASE_BOX_BACKWARD (the same for easy average pooling's box kernel)."""
    cdef readonly Py_ssize_t dx_items, slots
    cdef tuple _args

    def __init__(self, x_shape, w_shape, dy_shape, dtype_char, padding, mode, stride, oy, ox,
                 kernel, items, dx_items, slots, threaded, tunables):
        super().__init__(x_shape, w_shape, dy_shape, dtype_char, padding, mode, stride, oy, ox,
                         kernel, items, threaded, tunables)
        self.dx_items, self.slots = dx_items, slots
        self._args = (x_shape, w_shape, dy_shape, dtype_char, padding, mode, stride, oy, ox,
                      kernel, items, dx_items, slots, threaded, tunables)

    def __reduce__(self):
        return type(self), self._args

    def fits(self, dy, x, w, padding, mode, tunables):
        """Whether this plan runs a call with these arguments."""
        return (self._inputs_fit(x, w) and _is_array(dy, self.type_num, 4, self.y_dims)
                and self._same_call(padding, mode, tunables))

    def run(self, dy, x, w, bint compute_dx, int n_threads, dw=None, db=None):
        """(dx or None, dw, db) for dy, x, w of the planned shapes and dtype (else an error naming
        the argument, as ForwardPlan.run).
        dx is a new array; dw and db are written into the arrays given (a layer's gradients,
        saving two allocations and a copy) when they are of the planned shape and dtype,
        C-contiguous, writeable and share no memory with dy, x or w; else into new arrays."""
        self._check("dy", dy, 4, self.y_dims)
        self._check("x", x, 4, self.x_dims)
        self._check("w", w, 4, self.w_dims)
        dx = cnp.PyArray_EMPTY(4, <cnp.npy_intp *> self.x_dims, self.type_num, 0) if compute_dx else None
        if not (dw is not None and _is_array(dw, self.type_num, 4, self.w_dims) and _writes_apart(dw, dy, x, w)):
            dw = cnp.PyArray_EMPTY(4, <cnp.npy_intp *> self.w_dims, self.type_num, 0)
        if not (db is not None and _is_array(db, self.type_num, 1, self.w_dims) and _writes_apart(db, dy, x, w)
                and _writes_apart(db, dw, dw, dw)):
            db = cnp.PyArray_EMPTY(1, <cnp.npy_intp *> self.w_dims, self.type_num, 0)
        cdef int nt = self._threads(n_threads)
        if self.type_num == cnp.NPY_FLOAT:
            _backward_planned(<const float *> _data(dy), <const float *> _data(x),
                              <const float *> _data(w),
                              <float *> _data(dx) if compute_dx else NULL, <float *> _data(dw),
                              <float *> _data(db), &self.g, compute_dx, self.kernel,
                              self.items, self.dx_items, self.slots, nt)
        else:
            _backward_planned(<const double *> _data(dy), <const double *> _data(x),
                              <const double *> _data(w),
                              <double *> _data(dx) if compute_dx else NULL, <double *> _data(dw),
                              <double *> _data(db), &self.g, compute_dx, self.kernel,
                              self.items, self.dx_items, self.slots, nt)
        return dx, dw, db
