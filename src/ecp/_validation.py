"""Input checks shared by every public function: one place that turns user input into what the
kernels assume (4-D, float32 or float64, C-contiguous, one dtype) or raises an error that names
the argument and says what was expected and what was got."""
import numbers
import operator

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
INT_MAX = 2**31 - 1  # BLAS dimensions are 32-bit ints


def _describe(value):
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"[:120]


def as_float_array(value, name, ndim, dims="(N, C, H, W)", dtype=None, like="x"):
    """Return ``value`` as a C-contiguous float32/float64 ndarray with ``ndim`` dimensions (any
    number when ``ndim`` is None).

    Copies only when the input is not already C-contiguous (read-only input is fine: the
    kernels never write to their inputs). ``dtype``, when given, is the dtype the array must
    share (that of the argument named ``like``). An array that already is all this (a network's
    steady state) is returned after a few attribute checks.
    """
    if (kernel_ready(value, value.ndim if ndim is None and type(value) is np.ndarray else ndim)
            and (dtype is None or value.dtype is dtype)):
        check_dims(value.shape, name)
        return value
    if not isinstance(value, np.ndarray):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__array__") and not isinstance(
            value, (list, tuple)
        ):
            raise TypeError(f"{name} must be a numpy array {dims}, got {_describe(value)}")
        try:
            value = np.asarray(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be a numpy array {dims}, got {type(value).__name__} "
                            f"that numpy cannot convert ({exc})") from None
    if value.dtype.kind == "f" and value.dtype.itemsize in (4, 8) and not value.dtype.isnative:
        value = value.astype(value.dtype.newbyteorder("="))  # big-endian data: same values, native order
    if value.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} must have dtype float32 or float64, got {value.dtype}"
            + (" (convert it with .astype(np.float32))" if value.dtype.kind in "iub" else "")
        )
    if dtype is not None and value.dtype != dtype:
        raise TypeError(f"{name} must have the same dtype as {like} ({dtype}), got {value.dtype}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D {dims} array, got shape {value.shape}")
    check_dims(value.shape, name)
    return np.asarray(value, order="C")  # not ascontiguousarray: that makes a 0-d array 1-D


def kernel_ready(value, ndim):
    """Whether ``value`` already is what :func:`as_float_array` would return unchanged: an ndarray
    (not a subclass) of ``ndim`` dimensions, C-contiguous, native float32 or float64 (checked by
    identity with NumPy's own dtype objects, so that anything unusual takes the full checks).
    Its dimensions are not checked here: callers check them with :func:`check_dims`."""
    return (type(value) is np.ndarray and (value.dtype is FLOAT_DTYPES[0] or value.dtype is FLOAT_DTYPES[1])
            and value.ndim == ndim and value.flags.c_contiguous)


def check_dims(shape, name):
    """Every dimension of an array named ``name`` within a BLAS dimension (a 32-bit int)."""
    for size in shape:
        if size > INT_MAX:
            raise ValueError(f"{name} has a dimension larger than {INT_MAX}: {shape}")


def check_int(value, name, minimum=None, maximum=None):
    """An integer (not bool, not float) within [minimum, maximum]."""
    if type(value) is int and (minimum is None or value >= minimum) and (maximum is None or value <= maximum):
        return value  # the common case, without the checks below (a kernel call makes several)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {_describe(value)}")
    value = operator.index(value)
    if minimum is not None and value < minimum or maximum is not None and value > maximum:
        if maximum is None:
            expected = f">= {minimum}"
        elif minimum is None:
            expected = f"<= {maximum}"
        else:
            expected = f"in {minimum}..{maximum}"
        raise ValueError(f"{name} must be an integer {expected}, got {value}")
    return value


def check_mode(mode):
    """Mode K of the 2x2 window, row-major: 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right.
    Returns the (row, column) offset of the kept pixel."""
    mode = check_int(mode, "mode", 0, 3)
    return divmod(mode, 2)


def check_padding(padding):
    """Zero padding: an integer >= 0 that a BLAS dimension can hold (larger ones can only
    describe arrays no machine holds, and would otherwise fail later, in NumPy, under another name)."""
    return check_int(padding, "padding", 0, INT_MAX)


def check_shape(value, name, ndim, dims):
    """A tuple of ``ndim`` non-negative integers (e.g. input_shape)."""
    if isinstance(value, np.ndarray):
        value = tuple(value.tolist())
    if not isinstance(value, (tuple, list)) or len(value) != ndim:
        raise ValueError(f"{name} must be a tuple of {ndim} integers {dims}, got {value!r}")
    return tuple(check_int(v, f"{name}[{i}]", 0) for i, v in enumerate(value))


def check_poolable(shape, name):
    """A (N, C, H, W) map that a 2x2 window fits in."""
    if shape[2] < 2 or shape[3] < 2:
        raise ValueError(
            f"{name} is too small to pool with a 2x2 window: need H >= 2 and W >= 2, "
            f"got H={shape[2]}, W={shape[3]} (shape {tuple(shape)})"
        )


def check_grad_shape(dy, expected, name="dy"):
    check_grad_dims(dy.shape, expected, name)


def check_grad_dims(shape, expected, name="dy"):
    """A gradient's shape (a tuple) against the output's it belongs to."""
    if shape != tuple(expected):
        raise ValueError(f"{name} must have shape {tuple(expected)} (the output's), got {shape}")
