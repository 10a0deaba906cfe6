"""Input checks shared by every public function: one place that turns user input into what the
kernels assume (4-D, float32 or float64, C-contiguous, one dtype) or raises an error that names
the argument and says what was expected and what was got."""
import inspect
import numbers
import operator
import os
import warnings

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


#: The largest pooling window side (and stride) the kernels take.
MAX_POOL_SIZE = 4


def check_window(pool_size, pool_stride):
    """A pooling window (p, s) as Python ints: ``pool_size`` p in 1..4, ``pool_stride`` s in
    1..p (a stride above the window would skip pixels); else the error naming the argument."""
    p = check_int(pool_size, "pool_size", 1, MAX_POOL_SIZE)
    if type(pool_stride) is int and 1 <= pool_stride <= p:
        return p, pool_stride
    if isinstance(pool_stride, (bool, np.bool_)) or not isinstance(pool_stride, numbers.Integral):
        raise TypeError(f"pool_stride must be an integer, got {_describe(pool_stride)}")
    s = operator.index(pool_stride)
    if not 1 <= s <= p:
        raise ValueError(f"pool_stride must be an integer in 1..{p} (at least 1, at most pool_size={p}), "
                         f"got {s}")
    return p, s


def check_window_mode(mode, pool_size, pool_stride):
    """Mode K of a p x p window of stride s, row-major (the kept pixel at (K // p, K % p)):
    (K, p, s) as Python ints, or the error naming ``mode``, ``pool_size`` or ``pool_stride``."""
    p, s = check_window(pool_size, pool_stride)
    return check_int(mode, "mode", 0, p * p - 1), p, s


def window_output_shape(shape, p, s, name="the convolution output"):
    """(N, C, (H - p) // s + 1, (W - p) // s + 1) of pooling an (N, C, H, W) map with a p x p
    window of stride s (PyTorch's floor rule), or the ValueError naming ``pool_size`` when the
    window is larger than the map."""
    n, c, h, w = shape
    if h < p or w < p:
        raise ValueError(f"pool_size {p} is larger than {name} ({h}x{w}): the window must fit in the map")
    return (n, c, (h - p) // s + 1, (w - p) // s + 1)


_PADDING = f"an integer in 0..{INT_MAX} or a pair (ph, pw) of them"


def check_padding(padding):
    """Zero padding as a pair of Python ints (ph, pw): ph rows added on the top and bottom, pw
    columns on the left and right. Takes an integer (both) or a pair of integers (a tuple or list
    of length 2; numpy integers too, not bools), each >= 0 and within what a BLAS dimension can
    hold (larger ones can only describe arrays no machine holds, and would otherwise fail later,
    in NumPy, under another name); anything else is a TypeError / ValueError naming ``padding``."""
    if type(padding) is int and 0 <= padding <= INT_MAX:
        return (padding, padding)  # the common case, without the checks below
    if isinstance(padding, (tuple, list)):
        if len(padding) != 2:
            raise ValueError(f"padding must be {_PADDING}, got a {type(padding).__name__} of length "
                             f"{len(padding)}: {padding!r}"[:200])
        for i, value in enumerate(padding):
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
                raise TypeError(f"padding must be an integer or a pair (ph, pw) of integers, got "
                                f"{_describe(padding)} (padding[{i}] is {_describe(value)})"[:240])
        pair = tuple(operator.index(v) for v in padding)
        if min(pair) < 0 or max(pair) > INT_MAX:
            raise ValueError(f"padding must be {_PADDING}, got {pair}")
        return pair
    if isinstance(padding, (bool, np.bool_)) or not isinstance(padding, numbers.Integral):
        raise TypeError(f"padding must be an integer or a pair (ph, pw) of integers, got {_describe(padding)}")
    value = operator.index(padding)
    if not 0 <= value <= INT_MAX:
        raise ValueError(f"padding must be {_PADDING}, got {value}")
    return (value, value)


def padding_as_given(padding):
    """The checked ``padding`` (:func:`check_padding`) in the form given: an int, or a tuple (ph, pw)."""
    ph, pw = check_padding(padding)
    return (ph, pw) if isinstance(padding, (tuple, list)) else ph


def padding_text(padding):
    """A checked pair (ph, pw) as the messages show it: one int when ph == pw."""
    return str(padding[0]) if padding[0] == padding[1] else f"({padding[0]}, {padding[1]})"


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


def check_conv_geometry(x_shape, w_shape, padding):
    """Raise unless x (N, C, H, W), w (O, C, kh, kw) and ``padding`` (the pair (ph, pw) of
    :func:`check_padding`) make a convolution the kernels can run; the error names the argument
    that does not fit."""
    if w_shape[1] != x_shape[1]:
        raise ValueError(
            f"w has {w_shape[1]} input channels (w.shape[1]) but x has {x_shape[1]} (x.shape[1]); "
            f"they must match: x {x_shape}, w {w_shape}"
        )
    if x_shape[1] == 0 or w_shape[0] == 0:
        raise ValueError(f"x and w need at least one channel and one filter, got x {x_shape}, w {w_shape}")
    if w_shape[2] == 0 or w_shape[3] == 0:
        raise ValueError(f"w must have a kernel of at least 1x1, got w.shape {w_shape}")
    if x_shape[2] == 0 or x_shape[3] == 0:
        raise ValueError(f"x must have H >= 1 and W >= 1, got x.shape {x_shape}")
    if x_shape[1] * w_shape[2] * w_shape[3] > INT_MAX:
        raise ValueError(
            f"x.shape[1] * kh * kw = {x_shape[1] * w_shape[2] * w_shape[3]} exceeds {INT_MAX}, "
            "the largest matrix dimension the BLAS takes"
        )
    hp, wp = x_shape[2] + 2 * padding[0], x_shape[3] + 2 * padding[1]
    if w_shape[2] > hp or w_shape[3] > wp:
        raise ValueError(
            f"kernel {w_shape[2]}x{w_shape[3]} (w.shape[2:]) is larger than the padded input "
            f"{hp}x{wp} (x.shape[2:] {x_shape[2:]} with padding={padding_text(padding)})"
        )
    ho, wo = hp - w_shape[2] + 1, wp - w_shape[3] + 1
    if ho * wo > INT_MAX:
        raise ValueError(
            f"the output plane would have {ho}x{wo} = {ho * wo} pixels, more than {INT_MAX}, "
            f"the largest matrix dimension the BLAS takes (x.shape[2:] {x_shape[2:]}, padding={padding_text(padding)})"
        )


def conv_output_shape(x_shape, w_shape, padding):
    """(N, O, H + 2ph - kh + 1, W + 2pw - kw + 1) of checked shapes and padding (ph, pw) (no checks
    here)."""
    return (x_shape[0], w_shape[0], x_shape[2] + 2 * padding[0] - w_shape[2] + 1,
            x_shape[3] + 2 * padding[1] - w_shape[3] + 1)


def easy_output_shape(x_shape, w_shape, padding):
    """The output shape of Easy Convolution (a quarter of the full one's pixels), or the error
    when the full output is smaller than one 2x2 pooling window."""
    n, o, ho, wo = conv_output_shape(x_shape, w_shape, padding)
    if ho < 2 or wo < 2:
        raise ValueError(
            f"the convolution output {ho}x{wo} (x.shape[2:] {tuple(x_shape[2:])}, kernel "
            f"{w_shape[2]}x{w_shape[3]}, padding={padding_text(padding)}) is too small to pool with a 2x2 window: "
            "Easy Convolution needs an output of at least 2x2"
        )
    return (n, o, ho // 2, wo // 2)


def check_grad_shape(dy, expected, name="dy"):
    check_grad_dims(dy.shape, expected, name)


def check_grad_dims(shape, expected, name="dy"):
    """A gradient's shape (a tuple) against the output's it belongs to."""
    if shape != tuple(expected):
        raise ValueError(f"{name} must have shape {tuple(expected)} (the output's), got {shape}")


# ---------------------------------------------------------------------------------------------
# Old spellings of the public API, kept for one release with a FutureWarning.

MISSING = object()  # default of an argument whose old spelling may stand in for it


def _given(value, default):
    return not (value is default or (type(value) is type(default) and value == default))


def old_positional(func, head, args, keywords, defaults, stacklevel=3):
    """The values of the keyword-only arguments ``keywords`` (name: value as passed, in their old
    positional order; ``defaults`` the same names with their defaults) after taking the extra
    positional ``args`` of an old-style call, with a FutureWarning that says what to write.
    ``head`` spells the call's other arguments for the message (e.g. "x, w, b")."""
    names = list(keywords)
    if len(args) > len(names):
        n_head = head.count(",") + 1
        raise TypeError(f"{func}() takes at most {n_head + len(names)} positional arguments "
                        f"({n_head + len(args)} given)")
    values = dict(keywords)
    for name, value in zip(names, args):
        if _given(keywords[name], defaults[name]):
            raise TypeError(f"{func}() got multiple values for argument {name!r}")
        values[name] = value
    spelled = ", ".join(f"{name}={value!r}" for name, value in zip(names, args))
    warnings.warn(f"{func}(): passing {', '.join(names[:len(args)])} by position is deprecated and will "
                  f"be an error in the next release; write {func}({head}, {spelled})",
                  FutureWarning, stacklevel=stacklevel)
    return tuple(values.values())


def public_signature(func):
    """Give ``func`` the signature its documentation shows: without the ``*args`` / ``**kwargs``
    that catch old spellings, and without a default where the default is :data:`MISSING`."""
    sig = inspect.signature(func)
    params = [p.replace(default=inspect.Parameter.empty) if p.default is MISSING else p
              for p in sig.parameters.values()
              if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]
    func.__signature__ = sig.replace(parameters=params)
    return func


def env_flag(name, default):
    """The boolean environment variable ``name`` (``default`` when unset or empty): "1", "true",
    "yes", "on" are True, "0", "false", "no", "off" False (any case); anything else is a ValueError
    naming the variable."""
    value = os.environ.get(name, "").strip().lower()
    if value == "":
        return default
    if value in ("0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{name} must be 1 or 0 (or true / false), got {value!r}")
