"""Bad input: every public function rejects it with a TypeError / ValueError that names the
argument and says what was expected and what it got (``ecp/_validation.py`` and the checks in
``ecp/conv.py`` / ``ecp/pool.py``); odd but valid input (empty batches, lists) is accepted."""
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import ecp

X_SHAPE = (2, 3, 6, 6)


def good_calls(dtype=np.float64):
    """Each public function with valid keyword arguments (one place to break one at a time)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(X_SHAPE).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    pooled = rng.standard_normal((2, 3, 3, 3)).astype(dtype)
    _, idx = ecp.max_pool2d(x, return_indices=True)
    return {
        "conv2d": (ecp.conv2d, dict(x=x, w=w, b=b, padding=1)),
        "conv2d_backward": (ecp.conv2d_backward,
                            dict(dy=rng.standard_normal((2, 4, 6, 6)).astype(dtype), x=x, w=w, padding=1)),
        "easy_conv2d": (ecp.easy_conv2d, dict(x=x, w=w, b=b, mode=1, padding=1)),
        "easy_conv2d_backward": (ecp.easy_conv2d_backward, dict(dy=pooled[:, :1].repeat(4, 1), x=x, w=w, mode=1,
                                                                padding=1)),
        "random_pool2d": (ecp.random_pool2d, dict(x=x, mode=2)),
        "random_pool2d_backward": (ecp.random_pool2d_backward, dict(dy=pooled, mode=2, input_shape=X_SHAPE)),
        "max_pool2d": (ecp.max_pool2d, dict(x=x)),
        "max_pool2d_backward": (ecp.max_pool2d_backward, dict(dy=pooled, indices=idx, input_shape=X_SHAPE)),
        "avg_pool2d": (ecp.avg_pool2d, dict(x=x)),
        "avg_pool2d_backward": (ecp.avg_pool2d_backward, dict(dy=pooled, input_shape=X_SHAPE)),
        "neighbor_fill": (ecp.neighbor_fill, dict(y=pooled, shape=(6, 6))),
        "neighbor_fill_backward": (ecp.neighbor_fill_backward, dict(dy=x)),
    }


FUNCS = list(good_calls())
FLOAT_ARGS = [(f, a) for f, (_, kw) in good_calls().items() for a, v in kw.items()
              if isinstance(v, np.ndarray) and v.dtype.kind == "f"]
MODE_FUNCS = [f for f, (_, kw) in good_calls().items() if "mode" in kw]
CONV_FUNCS = ["conv2d", "conv2d_backward", "easy_conv2d", "easy_conv2d_backward"]
POOL_BACKWARD = ["random_pool2d_backward", "max_pool2d_backward", "avg_pool2d_backward"]


def call(name, **override):
    fn, kw = good_calls()[name]
    return fn(**{**kw, **override})


def raises(exc, *parts):
    """pytest.raises whose message must contain every literal part, in order."""
    return pytest.raises(exc, match=".*".join(re.escape(p) for p in parts))


@pytest.mark.parametrize("name", FUNCS)
def test_good_calls_work(name):
    """The baseline each test below breaks one argument of."""
    for dtype in (np.float32, np.float64):
        fn, kw = good_calls(dtype)[name]
        out = fn(**kw)
        for o in out if isinstance(out, tuple) else (out,):
            assert o.dtype == dtype or o.dtype == np.int64


# ----------------------------------------------------------------------------- array arguments

BAD_TYPES = [  # (value, exception, message parts after "<arg> must ")
    ("abc", TypeError, ["be a numpy array", "got str 'abc'"]),
    (b"abc", TypeError, ["be a numpy array", "got bytes"]),
    (None, TypeError, ["be a numpy array", "got NoneType None"]),
    ({"a": 1.0}, TypeError, ["be a numpy array", "got dict"]),
    (1.5, TypeError, ["be a numpy array", "got float 1.5"]),
    (object(), TypeError, ["be a numpy array", "got object"]),
    ([[[1.0, 2.0]], [[3.0]]], TypeError, ["be a numpy array", "got list that numpy cannot convert"]),
]
BAD_DTYPES = [np.int64, np.int32, np.uint8, np.bool_, np.complex128, np.complex64, object, np.float16,
              np.longdouble, "U3", "datetime64[s]"]


@pytest.mark.parametrize("name,arg", FLOAT_ARGS)
def test_non_arrays_are_rejected(name, arg):
    for value, exc, parts in BAD_TYPES:
        if value is None and arg == "b":
            continue  # b=None: no bias (checked to work below)
        with raises(exc, f"{arg} must ", *parts):
            call(name, **{arg: value})


@pytest.mark.parametrize("name,arg", FLOAT_ARGS)
def test_non_float_dtypes_are_rejected(name, arg):
    good = good_calls()[name][1][arg]
    for dtype in BAD_DTYPES:
        bad = np.zeros(good.shape, dtype)
        with raises(TypeError, f"{arg} must have dtype float32 or float64, got {bad.dtype}"):
            call(name, **{arg: bad})
    # lists of integers are integer arrays: rejected, with the conversion hint
    with raises(TypeError, f"{arg} must have dtype float32 or float64, got int64", ".astype(np.float32)"):
        call(name, **{arg: np.zeros(good.shape, int).tolist()})


@pytest.mark.parametrize("name,arg", FLOAT_ARGS)
def test_lists_of_floats_are_accepted_as_float64(name, arg):
    fn, kw = good_calls()[name]
    want = fn(**kw)
    got = fn(**{**kw, arg: kw[arg].tolist()})
    for g, wnt in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        assert g.dtype == wnt.dtype
        np.testing.assert_array_equal(g, wnt)


@pytest.mark.parametrize("name,arg", FLOAT_ARGS)
def test_wrong_ndim_is_rejected(name, arg):
    good = good_calls()[name][1][arg]
    ndim = good.ndim
    for bad in (good[0], good[None], good.reshape(-1), good.reshape(-1, 1), np.float64(1.0)):
        if np.ndim(bad) == ndim:
            continue
        with raises(ValueError, f"{arg} must be a {ndim}-D", f"got shape {np.shape(bad)}"):
            call(name, **{arg: bad})


@pytest.mark.parametrize("name,arg", [(f, a) for f, a in FLOAT_ARGS if f in CONV_FUNCS and a != "x"])
def test_arguments_must_share_the_dtype_of_x(name, arg):
    for xdt, other in ((np.float64, np.float32), (np.float32, np.float64)):
        fn, kw = good_calls(xdt)[name]
        with raises(TypeError, f"{arg} must have the same dtype as x ({np.dtype(xdt)}), got {np.dtype(other)}"):
            fn(**{**kw, arg: kw[arg].astype(other)})


# ----------------------------------------------------------------------------- convolution geometry

@pytest.mark.parametrize("name", CONV_FUNCS)
def test_channel_mismatch(name):
    w = np.ones((4, 2, 3, 3))
    with raises(ValueError, "w has 2 input channels (w.shape[1]) but x has 3 (x.shape[1])"):
        call(name, w=w)


@pytest.mark.parametrize("name", CONV_FUNCS)
def test_kernel_larger_than_padded_input(name):
    x = np.ones((2, 3, 4, 5))
    for w_shape, pad in (((4, 3, 7, 3), 1), ((4, 3, 3, 6), 0), ((4, 3, 5, 5), 0)):
        with raises(ValueError, f"kernel {w_shape[2]}x{w_shape[3]} (w.shape[2:]) is larger than the padded input",
                    f"{4 + 2 * pad}x{5 + 2 * pad}", f"padding={pad}"):
            call(name, x=x, w=np.ones(w_shape), padding=pad)


@pytest.mark.parametrize("name", CONV_FUNCS)
def test_empty_channels_filters_or_kernel(name):
    with raises(ValueError, "at least one channel and one filter", "x (2, 0, 6, 6), w (4, 0, 3, 3)"):
        call(name, x=np.ones((2, 0, 6, 6)), w=np.ones((4, 0, 3, 3)))
    with raises(ValueError, "at least one channel and one filter", "w (0, 3, 3, 3)"):
        call(name, w=np.ones((0, 3, 3, 3)))
    for shape in ((4, 3, 0, 3), (4, 3, 3, 0)):
        with raises(ValueError, "w must have a kernel of at least 1x1", f"got w.shape {shape}"):
            call(name, w=np.ones(shape))


@pytest.mark.parametrize("name", ["conv2d", "easy_conv2d"])
def test_bad_bias(name):
    fn, kw = good_calls()[name]
    np.testing.assert_array_equal(fn(**{**kw, "b": None}), fn(**{**kw, "b": np.zeros(4)}))
    with raises(ValueError, "b must have shape (4,)", "got (3,)"):
        call(name, b=np.ones(3))
    with raises(ValueError, "b must have shape (4,)", "got (5,)"):
        call(name, b=np.ones(5))
    with raises(ValueError, "b must be a 1-D (O,) array, got shape (4, 1)"):
        call(name, b=np.ones((4, 1)))
    with raises(ValueError, "b must be a 1-D (O,) array, got shape ()"):
        call(name, b=np.float64(1.0))
    with raises(TypeError, "b must have the same dtype as x (float64), got float32"):
        call(name, b=np.ones(4, np.float32))
    with raises(TypeError, "b must have dtype float32 or float64, got int64"):
        call(name, b=[1, 2, 3, 4])


@pytest.mark.parametrize("name", CONV_FUNCS)
def test_bad_padding(name):
    expected = "padding must be an integer in 0..2147483647 or a pair (ph, pw) of them"
    for bad in (-1, -100, np.int64(-2)):
        with raises(ValueError, expected, f"got {int(bad)}"):
            call(name, padding=bad)
    for bad, got in (((1, -1), "got (1, -1)"), ([-2, 0], "got (-2, 0)"), ((np.int64(-1), 1), "got (-1, 1)"),
                     ((0, 2**31), f"got (0, {2**31})")):
        with raises(ValueError, expected, got):
            call(name, padding=bad)
    for bad, got in (([1], "got a list of length 1: [1]"), ((1, 1, 1), "got a tuple of length 3: (1, 1, 1)"),
                     ((), "got a tuple of length 0: ()")):
        with raises(ValueError, expected, got):
            call(name, padding=bad)
    for bad, got in ((1.5, "got float 1.5"), (1.0, "got float 1.0"), (True, "got bool True"),
                     (np.True_, "got bool"), ("1", "got str '1'"), (None, "got NoneType None"),
                     (np.float64(1.0), "got float64"), (np.array(1), "got an array"),
                     (np.array([1, 1]), "got an array"), ({1, 2}, "got set"), ("11", "got str '11'")):
        with raises(TypeError, "padding must be an integer or a pair (ph, pw) of integers", got):
            call(name, padding=bad)
    for bad, got in (((1, 1.5), "(padding[1] is float 1.5)"), ((True, 1), "(padding[0] is bool True)"),
                     (["1", 1], "(padding[0] is str '1')"), ((0, None), "(padding[1] is NoneType None)"),
                     ((1, np.float64(1.0)), "(padding[1] is float64")):
        with raises(TypeError, "padding must be an integer or a pair (ph, pw) of integers, got", got):
            call(name, padding=bad)
    want = call(name, padding=1)
    for same in (np.int64(1), (1, 1), [1, 1], (np.int64(1), np.int32(1))):
        for got, ref in zip(call(name, padding=same), want):
            np.testing.assert_array_equal(got, ref)


def test_conv2d_output_shape_rejects_bad_padding_by_name():
    with raises(ValueError, "padding must be an integer in 0..2147483647 or a pair (ph, pw) of them", "got (1, -1)"):
        ecp.conv2d_output_shape(X_SHAPE, (4, 3, 3, 3), padding=(1, -1))
    with raises(TypeError, "padding must be an integer or a pair (ph, pw) of integers", "got float 0.5"):
        ecp.conv2d_output_shape(X_SHAPE, (4, 3, 3, 3), padding=0.5)


@pytest.mark.parametrize("name", CONV_FUNCS)
def test_padding_beyond_32_bits_is_rejected_by_name(name):
    """A padding no BLAS dimension could hold is refused up front, naming the argument (not a
    NumPy allocation error about some array the user never made)."""
    expected = r"^padding must be an integer in 0\.\.2147483647 or a pair \(ph, pw\) of them, got "
    for bad in (2**31, 2**40, 2**63, 2**70):
        with pytest.raises(ValueError, match=expected + str(bad)):
            call(name, padding=bad)
        with pytest.raises(ValueError, match=expected + re.escape(str((1, bad)))):
            call(name, padding=(1, bad))


@pytest.mark.parametrize("name", CONV_FUNCS)
def test_geometry_errors_show_a_pair_padding(name):
    x = np.ones((2, 3, 4, 5))
    with raises(ValueError, "kernel 3x8 (w.shape[2:]) is larger than the padded input", "4x7", "padding=(0, 1)"):
        call(name, x=x, w=np.ones((4, 3, 3, 8)), padding=(0, 1))
    with raises(ValueError, "kernel 7x3 (w.shape[2:]) is larger than the padded input", "6x5", "padding=(1, 0)"):
        call(name, x=x, w=np.ones((4, 3, 7, 3)), padding=(1, 0))
    if name.startswith("easy"):
        extra = {"dy": np.ones((2, 4, 1, 1))} if name.endswith("backward") else {}
        with raises(ValueError, "the convolution output 1x6", "padding=(0, 2)", "too small to pool"):
            call(name, x=x, w=np.ones((4, 3, 4, 4)), padding=(0, 2), **extra)


@pytest.mark.parametrize("name", ["easy_conv2d", "easy_conv2d_backward"])
def test_easy_conv_output_too_small_to_pool(name):
    extra = {"dy": np.ones((1, 4, 1, 1))} if name.endswith("backward") else {}
    # full outputs 1x2, 3x1 and 1x1: no 2x2 window fits
    for x_shape, w_shape, pad, out in (((1, 3, 4, 5), (4, 3, 4, 4), 0, "1x2"), ((1, 3, 5, 4), (4, 3, 3, 4), 0, "3x1"),
                                       ((1, 3, 1, 1), (4, 3, 3, 3), 1, "1x1")):
        with raises(ValueError, f"the convolution output {out}", f"padding={pad}", "too small to pool",
                    "at least 2x2"):
            call(name, x=np.ones(x_shape), w=np.ones(w_shape), padding=pad, **extra)
    # the smallest poolable output works
    y = ecp.easy_conv2d(np.ones((1, 3, 3, 3)), np.ones((4, 3, 2, 2)), mode=3)
    assert y.shape == (1, 4, 1, 1)


# ----------------------------------------------------------------------------- mode

@pytest.mark.parametrize("name", MODE_FUNCS)
def test_bad_mode(name):
    for bad in (-1, 4, 100, np.int64(5)):
        with raises(ValueError, "mode must be an integer in 0..3", f"got {int(bad)}"):
            call(name, mode=bad)
    for bad, got in ((True, "got bool True"), (False, "got bool False"), (1.0, "got float 1.0"),
                     ("1", "got str '1'"), (None, "got NoneType None"), (np.float32(1), "got float32"),
                     ((0, 1), "got tuple")):
        with raises(TypeError, "mode must be an integer", got):
            call(name, mode=bad)


def test_mode_is_required_for_random_pool2d_backward():
    with pytest.raises(TypeError):
        ecp.random_pool2d_backward(np.ones((1, 1, 1, 1)), input_shape=(1, 1, 2, 2))


# ----------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("name", ["conv2d_backward", "easy_conv2d_backward"] + POOL_BACKWARD)
def test_dy_of_the_wrong_shape(name):
    dy = good_calls()[name][1]["dy"]
    for bad in (dy[:1], dy[:, :2], dy[:, :, 1:], dy[:, :, :, :-1], np.concatenate([dy, dy], 3)):
        kw = {"dy": bad}
        if name == "max_pool2d_backward":
            kw["indices"] = np.zeros(bad.shape, np.int64)
        with raises(ValueError, f"dy must have shape {dy.shape}", f"got {bad.shape}"):
            call(name, **kw)


@pytest.mark.parametrize("name", POOL_BACKWARD)
def test_pool_gradients_keep_their_dtype(name):
    fn, kw = good_calls()[name]
    got = fn(**{**kw, "dy": kw["dy"].astype(np.float32)})
    assert got.dtype == np.float32 and got.shape == X_SHAPE


@pytest.mark.parametrize("name", POOL_BACKWARD)
def test_bad_input_shape(name):
    for bad in ((2, 3, 6), (2, 3, 6, 6, 1), [], None, "abcd", 6, {"a": 1}):
        with raises(ValueError, "input_shape must be a tuple of 4 integers (N, C, H, W)", f"got {bad!r}"):
            call(name, input_shape=bad)
    with raises(ValueError, "input_shape[2] must be an integer >= 0, got -6"):
        call(name, input_shape=(2, 3, -6, 6))
    for bad, got in (((2, 3, 6, 6.0), "input_shape[3] must be an integer, got float 6.0"),
                     ((2, True, 6, 6), "input_shape[1] must be an integer, got bool True"),
                     (np.array([2.0, 3, 6, 6]), "input_shape[0] must be an integer, got float 2.0"),
                     ((2, 3, "6", 6), "input_shape[2] must be an integer, got str '6'")):
        with raises(TypeError, got):
            call(name, input_shape=bad)
    # consistent with dy: pooled (H // 2, W // 2) must be dy's shape
    for bad in ((2, 3, 8, 6), (2, 3, 6, 4), (1, 3, 6, 6), (2, 4, 6, 6)):
        want = (bad[0], bad[1], bad[2] // 2, bad[3] // 2)
        with raises(ValueError, f"dy must have shape {want}", "got (2, 3, 3, 3)"):
            call(name, input_shape=bad)
    # odd sizes pool to the same dy, so they are consistent; lists and numpy arrays are fine too
    for ok in ((2, 3, 7, 7), [2, 3, 6, 7], np.array(X_SHAPE), (np.int64(2), 3, 6, 6)):
        assert call(name, input_shape=ok).shape == tuple(int(v) for v in ok)


def test_bad_indices():
    kw = good_calls()["max_pool2d_backward"][1]
    idx = kw["indices"]
    with raises(ValueError, "indices must have the shape of dy (2, 3, 3, 3)", "got (2, 3, 3, 2)"):
        call("max_pool2d_backward", indices=idx[..., :2])
    with raises(ValueError, "indices must have the shape of dy", "got (3, 3, 3)"):
        call("max_pool2d_backward", indices=idx[0])
    for dtype in (np.float64, np.float32, np.bool_, np.complex128, object):
        with raises(TypeError, "indices must have an integer dtype (int64 from max_pool2d)",
                    f"got {np.dtype(dtype)}"):
            call("max_pool2d_backward", indices=idx.astype(dtype))
    for bad, got in ((idx.tolist(), "got list"), (None, "got NoneType"), ("abc", "got str")):
        with raises(TypeError, "indices must be an integer numpy array", got):
            call("max_pool2d_backward", indices=bad)
    for value, lo, hi in ((-1, -1, 35), (36, 0, 36), (10**12, 0, 10**12)):
        bad = idx.copy()
        bad[1, 2, 0, 1] = value
        lo = min(lo, int(idx.min()))
        with raises(ValueError, "indices must lie in 0..35 (flat positions in a 6x6 plane)",
                    f"got values from {lo} to {hi}"):
            call("max_pool2d_backward", indices=bad)
    # huge unsigned values wrap to negative int64: still refused
    with raises(ValueError, "indices must lie in 0..35"):
        call("max_pool2d_backward", indices=np.full(idx.shape, 2**64 - 1, np.uint64))


# ----------------------------------------------------------------------------- maps too small to pool

@pytest.mark.parametrize("name", ["random_pool2d", "max_pool2d", "avg_pool2d"])
def test_maps_too_small_to_pool(name):
    for shape in ((2, 3, 1, 4), (2, 3, 4, 1), (2, 3, 1, 1), (2, 3, 0, 5), (2, 3, 5, 0)):
        with raises(ValueError, "x is too small to pool with a 2x2 window: need H >= 2 and W >= 2",
                    f"got H={shape[2]}, W={shape[3]}"):
            call(name, x=np.ones(shape))


@pytest.mark.parametrize("name", POOL_BACKWARD)
def test_input_shapes_too_small_to_pool(name):
    for shape in ((2, 3, 1, 4), (2, 3, 4, 1), (2, 3, 0, 0)):
        dy = np.ones((2, 3, shape[2] // 2, shape[3] // 2))
        extra = {"indices": np.zeros(dy.shape, np.int64)} if name == "max_pool2d_backward" else {}
        with raises(ValueError, "input_shape is too small to pool with a 2x2 window",
                    f"got H={shape[2]}, W={shape[3]}"):
            call(name, dy=dy, input_shape=shape, **extra)


def test_neighbor_fill_backward_too_small():
    for shape in ((2, 3, 1, 4), (2, 3, 4, 1), (2, 3, 0, 6)):
        with raises(ValueError, "dy is too small to pool with a 2x2 window", f"got H={shape[2]}, W={shape[3]}"):
            ecp.neighbor_fill_backward(np.ones(shape))


def test_neighbor_fill_bad_map_and_shape():
    y = np.ones((2, 3, 3, 3))
    for shape in ((2, 3, 0, 3), (2, 3, 3, 0)):
        with raises(ValueError, "y must have Hq >= 1 and Wq >= 1", f"got shape {shape}"):
            ecp.neighbor_fill(np.ones(shape))
    for bad in ((5, 6), (8, 6), (6, 5), (6, 8), (0, 0), (12, 12)):
        with raises(ValueError, "shape must be the full (H, W) a 3x3 map was pooled from: H in (6, 7) and W in (6, 7)",
                    f"got {bad}"):
            ecp.neighbor_fill(y, shape=bad)
    for bad in ((6,), (2, 3, 6, 6), "ab", 6):
        with raises(ValueError, "shape must be a tuple of 2 integers (H, W)", f"got {bad!r}"):
            ecp.neighbor_fill(y, shape=bad)
    for bad, got in (((6, 6.0), "shape[1] must be an integer, got float 6.0"),
                     ((True, 6), "shape[0] must be an integer, got bool True")):
        with raises(TypeError, got):
            ecp.neighbor_fill(y, shape=bad)
    with raises(ValueError, "shape[0] must be an integer >= 0, got -6"):
        ecp.neighbor_fill(y, shape=(-6, 6))
    for ok in ((6, 6), (7, 6), (6, 7), (7, 7), [7, 7], None):
        out = ecp.neighbor_fill(y, shape=ok)
        assert out.shape[2:] == (tuple(ok) if ok is not None else (6, 6))


# ----------------------------------------------------------------------------- never crash

def _zero_dim_variants(a):
    for axis in range(a.ndim):
        shape = list(a.shape)
        shape[axis] = 0
        yield axis, np.zeros(shape, a.dtype)


@pytest.mark.parametrize("name,arg", FLOAT_ARGS + [("max_pool2d_backward", "indices")])
def test_zero_size_dimensions_never_crash(name, arg):
    """An empty dimension anywhere gives an empty (or padding-only) result or a clean error."""
    fn, kw = good_calls()[name]
    for _axis, bad in _zero_dim_variants(kw[arg]):
        if arg == "indices":
            bad = bad.astype(np.int64)
        try:
            out = fn(**{**kw, arg: bad})
        except (TypeError, ValueError) as exc:
            assert re.search(r"\b(x|w|b|dy|y|dout|indices|input_shape)\b", str(exc)), str(exc)
            continue
        for o in out if isinstance(out, tuple) else (out,):
            assert o is None or (isinstance(o, np.ndarray) and o.flags.c_contiguous)


def test_zero_size_everything_consistent():
    """Zero-size inputs that are consistent give empty outputs of the right shapes."""
    x = np.zeros((0, 3, 6, 6))
    w = np.ones((4, 3, 3, 3))
    assert ecp.conv2d(x, w, padding=1).shape == (0, 4, 6, 6)
    assert ecp.easy_conv2d(x, w, mode=2, padding=1).shape == (0, 4, 3, 3)
    for shape in ((0, 3, 6, 6), (2, 0, 6, 6)):
        x = np.zeros(shape)
        y, idx = ecp.max_pool2d(x, return_indices=True)
        assert ecp.max_pool2d_backward(y, idx, shape).shape == shape
        assert ecp.random_pool2d_backward(ecp.random_pool2d(x, 1), 1, shape).shape == shape


_HUGE = textwrap.dedent(
    """
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # 3 GB: an attempt fails fast
    import numpy as np, ecp
    x = np.ones((1, 1, 3, 3)); w = np.ones((1, 1, 2, 2)); b = np.ones(1)
    outcomes = []
    for p in (10**5, 30000, 2**20, 2**31 - 1, 2**31, 2**40, 2**63, 2**64, 10**30):
        for f in (lambda: ecp.conv2d(x, w, b, padding=p), lambda: ecp.easy_conv2d(x, w, b, mode=3, padding=p)):
            try:
                f()
                outcomes.append("ok")
            except (ValueError, MemoryError) as exc:
                outcomes.append(type(exc).__name__)
    print(" ".join(outcomes))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses RLIMIT_AS to bound memory")
def test_huge_padding_never_crashes():
    """Outputs too large for memory: a clean MemoryError / ValueError, never a crash (run in a
    child process with a 3 GB address-space limit so that nothing big is ever allocated)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", _HUGE], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    outcomes = res.stdout.split()
    assert len(outcomes) == 18 and "ok" not in outcomes, res.stdout


def test_big_endian_float_input_is_read_by_value():
    """Arrays in non-native byte order ('>f4', '>f8') hold ordinary floats: same answers, native output."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 6, 6))
    w = rng.standard_normal((4, 3, 3, 3))
    for dt in (np.float32, np.float64):
        xs, ws = x.astype(dt), w.astype(dt)
        xb, wb = xs.astype(np.dtype(dt).newbyteorder(">")), ws.astype(np.dtype(dt).newbyteorder(">"))
        y = ecp.conv2d(xb, wb, padding=1)
        assert y.dtype == np.dtype(dt) and y.dtype.isnative
        np.testing.assert_array_equal(y, ecp.conv2d(xs, ws, padding=1))
        np.testing.assert_array_equal(ecp.max_pool2d(xb), ecp.max_pool2d(xs))


# ----------------------------------------------------------------------------- old spellings

def _same(got, want):
    for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        if w is None:
            assert g is None
        else:
            np.testing.assert_array_equal(g, w)


def _old_and_new():
    """(old call, new call, what the warning tells to write) for every old spelling kept a release."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 3, 7, 6))
    w = rng.standard_normal((4, 3, 3, 2))
    b = rng.standard_normal(4)
    dy = rng.standard_normal((2, 4, 7, 7))
    dye = rng.standard_normal((2, 4, 3, 3))
    y = rng.standard_normal((2, 3, 3, 3))
    full = rng.standard_normal((2, 3, 7, 6))
    return [
        (lambda: ecp.conv2d(x, w, b, 1), lambda: ecp.conv2d(x, w, b, padding=1), "conv2d(x, w, b, padding=1)"),
        (lambda: ecp.conv2d_backward(dy, x, w, 1), lambda: ecp.conv2d_backward(dy, x, w, padding=1),
         "conv2d_backward(dy, x, w, padding=1)"),
        (lambda: ecp.conv2d_backward(dy, x, w, 1, False),
         lambda: ecp.conv2d_backward(dy, x, w, padding=1, compute_dx=False),
         "conv2d_backward(dy, x, w, padding=1, compute_dx=False)"),
        (lambda: ecp.easy_conv2d(x, w, b, 3), lambda: ecp.easy_conv2d(x, w, b, mode=3), "easy_conv2d(x, w, b, mode=3)"),
        (lambda: ecp.easy_conv2d(x, w, b, 2, 1), lambda: ecp.easy_conv2d(x, w, b, mode=2, padding=1),
         "easy_conv2d(x, w, b, mode=2, padding=1)"),
        (lambda: ecp.easy_conv2d(x, w, None, 1, padding=1), lambda: ecp.easy_conv2d(x, w, mode=1, padding=1),
         "easy_conv2d(x, w, b, mode=1)"),
        (lambda: ecp.easy_conv2d_backward(dye, x, w, 2, 1),
         lambda: ecp.easy_conv2d_backward(dye, x, w, mode=2, padding=1),
         "easy_conv2d_backward(dy, x, w, mode=2, padding=1)"),
        (lambda: ecp.easy_conv2d_backward(dye, x, w, 2, 1, False),
         lambda: ecp.easy_conv2d_backward(dye, x, w, mode=2, padding=1, compute_dx=False),
         "compute_dx=False"),
        (lambda: ecp.neighbor_fill(y, 2), lambda: ecp.neighbor_fill(y), "neighbor_fill(y)"),
        (lambda: ecp.neighbor_fill(y, mode=1), lambda: ecp.neighbor_fill(y), "neighbor_fill(y)"),
        (lambda: ecp.neighbor_fill(y, 1, (7, 6)), lambda: ecp.neighbor_fill(y, shape=(7, 6)),
         "neighbor_fill(y, shape=(7, 6))"),
        (lambda: ecp.neighbor_fill(y, mode=0, shape=(7, 7)), lambda: ecp.neighbor_fill(y, shape=(7, 7)),
         "neighbor_fill(y, shape=(7, 7))"),
        (lambda: ecp.neighbor_fill_backward(full, 3), lambda: ecp.neighbor_fill_backward(full),
         "neighbor_fill_backward(dy)"),
        (lambda: ecp.neighbor_fill_backward(full, mode=3), lambda: ecp.neighbor_fill_backward(full),
         "neighbor_fill_backward(dy)"),
        (lambda: ecp.neighbor_fill_backward(dout=full), lambda: ecp.neighbor_fill_backward(full),
         "neighbor_fill_backward(dy)"),
        (lambda: ecp.neighbor_fill_backward(dout=full, mode=1), lambda: ecp.neighbor_fill_backward(full),
         "neighbor_fill_backward(dy)"),
    ]


@pytest.mark.parametrize("case", range(len(_old_and_new())))
def test_old_spellings_warn_and_give_the_same_result(case):
    """Each old spelling works for one more release: a FutureWarning saying what to write, pointing
    at the caller's line, and the result of the new spelling."""
    old, new, advice = _old_and_new()[case]
    with pytest.warns(FutureWarning, match=re.escape(advice)) as record:
        got = old()
    assert all(r.filename == __file__ for r in record), [r.filename for r in record]
    _same(got, new())


def test_new_spellings_do_not_warn():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _, new, _ in _old_and_new():
            new()


def test_old_spellings_keep_their_checks_and_python_s_errors():
    x = np.ones((1, 2, 6, 6))
    w = np.ones((3, 2, 3, 3))
    y = np.ones((1, 2, 3, 3))
    with pytest.warns(FutureWarning), raises(ValueError, "mode must be an integer in 0..3, got 4"):
        ecp.neighbor_fill(y, 4)
    with pytest.warns(FutureWarning), raises(ValueError, "mode must be an integer in 0..3, got 7"):
        ecp.neighbor_fill_backward(x, mode=7)
    with pytest.warns(FutureWarning), raises(ValueError, "mode must be an integer in 0..3, got 5"):
        ecp.easy_conv2d(x, w, None, 5)
    with raises(TypeError, "conv2d() got multiple values for argument 'padding'"):
        ecp.conv2d(x, w, None, 1, padding=2)
    with raises(TypeError, "conv2d() takes at most 4 positional arguments (5 given)"):
        ecp.conv2d(x, w, None, 1, 2)
    with raises(TypeError, "easy_conv2d_backward() takes at most 6 positional arguments (7 given)"):
        ecp.easy_conv2d_backward(y, x, w, 0, 0, True, 1)
    with raises(TypeError, "neighbor_fill() got multiple values for argument 'mode'"):
        ecp.neighbor_fill(y, 1, mode=1)
    with raises(TypeError, "neighbor_fill() got an unexpected keyword argument 'mdoe'"):
        ecp.neighbor_fill(y, mdoe=1)
    with raises(TypeError, "neighbor_fill_backward() got both dy and dout"):
        ecp.neighbor_fill_backward(x, dout=x)
    with raises(TypeError, "missing 1 required positional argument: 'dy'"):
        ecp.neighbor_fill_backward()


def test_public_signatures_show_the_keyword_only_api():
    import inspect

    def plain(fn):   # the signature without its type hints
        sig = inspect.signature(fn)
        return str(sig.replace(parameters=[p.replace(annotation=p.empty) for p in sig.parameters.values()],
                               return_annotation=sig.empty))

    assert plain(ecp.conv2d) == "(x, w, b=None, *, padding=0)"
    assert plain(ecp.conv2d_backward) == "(dy, x, w, *, padding=0, compute_dx=True)"
    assert plain(ecp.easy_conv2d) == "(x, w, b=None, *, mode=0, padding=0, pool_size=2, pool_stride=2)"
    assert plain(ecp.easy_conv2d_backward) == ("(dy, x, w, *, mode=0, padding=0, compute_dx=True, pool_size=2, "
                                               "pool_stride=2)")
    assert plain(ecp.neighbor_fill) == "(y, *, shape=None)"
    assert plain(ecp.neighbor_fill_backward) == "(dy)"


# ----------------------------------------------------------------------------- conv2d_output_shape

def test_conv2d_output_shape_checks_as_conv2d_does():
    assert ecp.conv2d_output_shape((2, 3, 7, 6), (4, 3, 3, 2), 1) == ecp.conv2d(
        np.ones((2, 3, 7, 6)), np.ones((4, 3, 3, 2)), padding=1).shape
    with raises(ValueError, "kernel 5x5 (w.shape[2:]) is larger than the padded input 2x2"):
        ecp.conv2d_output_shape((1, 1, 2, 2), (1, 1, 5, 5))
    with raises(ValueError, "w has 2 input channels"):
        ecp.conv2d_output_shape((1, 1, 8, 8), (1, 2, 3, 3))
    with raises(ValueError, "padding must be an integer in 0..", "got -1"):
        ecp.conv2d_output_shape((1, 1, 8, 8), (1, 1, 3, 3), -1)
    with raises(TypeError, "padding must be an integer or a pair (ph, pw) of integers, got float 1.0"):
        ecp.conv2d_output_shape((1, 1, 8, 8), (1, 1, 3, 3), padding=1.0)
    with raises(ValueError, "x_shape must be a tuple of 4 integers"):
        ecp.conv2d_output_shape((8, 8), (1, 1, 3, 3))
    with raises(ValueError, "w_shape[2] must be an integer >= 0, got -3"):
        ecp.conv2d_output_shape((1, 1, 8, 8), (1, 1, -3, 3))
