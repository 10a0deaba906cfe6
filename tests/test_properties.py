"""Property-based tests: every kernel against its float64 reference (``ecp.testing``) over random
shapes, dtypes, memory layouts, paddings and modes, drawn by hypothesis.

A failure shrinks to the smallest shape, the simplest layout and the lowest mode that still fail.
The values come from a drawn seed (standard normal, or small integers for ties), so a failing case
is reproduced from the shapes and the seed hypothesis prints. The profile (``tests/conftest.py``)
is derandomized: every run draws the same cases; ``HYPOTHESIS_PROFILE=explore`` draws new ones.
None of these needs PyTorch.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ecp
from ecp import testing as reference
from ecp.nn import optim

TOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}
LAYOUTS = ("C", "F", "sliced", "reversed", "readonly")
EXAMPLES = 100  # per test: the whole file runs in a few seconds on 2 cores

dtypes = st.sampled_from([np.float32, np.float64])
layouts = st.sampled_from(LAYOUTS)
seeds = st.integers(0, 2**32 - 1)


def laid_out(a, dtype, layout):
    """``a`` as ``dtype`` in a memory layout: C, Fortran, a strided slice of a larger array, negative
    strides, or C but read-only. Same values in every layout."""
    a = np.ascontiguousarray(a, dtype=dtype)
    if layout == "F":
        out = np.asfortranarray(a)
    elif layout == "sliced":
        big = np.full(a.shape[:-1] + (2 * a.shape[-1] + 1,), np.nan, dtype)
        big[..., 1::2] = a
        out = big[..., 1::2]
    elif layout == "reversed":
        out = np.ascontiguousarray(a[..., ::-1])[..., ::-1]
    else:
        out = a.copy()
        if layout == "readonly":
            out.setflags(write=False)
    np.testing.assert_array_equal(out, a)
    return out


def assert_close(actual, expected, dtype):
    """Same shape, dtype ``dtype``, C-contiguous, and equal within the dtype's tolerance relative to
    the largest magnitude of ``expected``."""
    assert isinstance(actual, np.ndarray) and actual.dtype == np.dtype(dtype), (type(actual), actual.dtype)
    assert actual.shape == expected.shape and actual.flags.c_contiguous, (actual.shape, expected.shape)
    tol = TOL[np.dtype(dtype)]
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale)


def assert_exact(actual, expected, dtype):
    """Kernels that only move or add a few values: bit for bit against the reference cast back."""
    assert actual.dtype == np.dtype(dtype) and actual.shape == expected.shape and actual.flags.c_contiguous
    np.testing.assert_array_equal(actual, expected.astype(dtype))


def unchanged(*arrays):
    """Snapshot of the inputs; call the result to check no kernel wrote them."""
    copies = [a.copy() for a in arrays]

    def check():
        for a, c in zip(arrays, copies):
            np.testing.assert_array_equal(a, c)
    return check


@st.composite
def conv_geometries(draw, easy=False, wide=False):
    """(N, C, H, W, O, kh, kw, padding): N from 1, odd and even sizes, kernels up to 5x5, and at
    least one output (2x2 of the full convolution for the easy one). ``wide``: long windows
    (C*kh*kw up to 300) and up to 40 filters, which reach the direct (AVX-512) kernels."""
    n = draw(st.integers(1, 3))
    c, o = (draw(st.integers(4, 12)), draw(st.integers(1, 40))) if wide else \
        (draw(st.integers(1, 3)), draw(st.integers(1, 4)))
    k_min = 3 if wide else 1
    kh, kw, p = draw(st.integers(k_min, 5)), draw(st.integers(k_min, 5)), draw(st.integers(0, 2))
    least = 2 if easy else 1
    h_min, w_min = max(1, kh - 2 * p + least - 1), max(1, kw - 2 * p + least - 1)  # Ho = H + 2p - kh + 1
    h, w = draw(st.integers(h_min, h_min + 8)), draw(st.integers(w_min, w_min + 8))
    return n, c, h, w, o, kh, kw, p


def conv_inputs(geom, dtype, layout, seed, bias):
    n, c, h, w, o, kh, kw, _ = geom
    rng = np.random.default_rng(seed)
    x = laid_out(rng.standard_normal((n, c, h, w)), dtype, layout)
    wt = laid_out(rng.standard_normal((o, c, kh, kw)), dtype, layout)
    b = laid_out(rng.standard_normal(o), dtype, "C") if bias else None
    return x, wt, b, rng


# ------------------------------------------------------------------------------ convolutions

def any_conv_geometry(easy=False):
    return st.one_of(conv_geometries(easy), conv_geometries(easy, wide=True))


@settings(max_examples=2 * EXAMPLES, deadline=None)
@given(geom=any_conv_geometry(), dtype=dtypes, layout=layouts, seed=seeds, bias=st.booleans())
def test_conv2d_and_backward_match_the_reference(geom, dtype, layout, seed, bias):
    x, w, b, rng = conv_inputs(geom, dtype, layout, seed, bias)
    p = geom[-1]
    check = unchanged(x, w)
    y = ecp.conv2d(x, w, b, padding=p)
    assert_close(y, reference.conv2d(x, w, b, padding=p), dtype)
    assert y.shape == ecp.conv2d_output_shape(x.shape, w.shape, p)
    dy = laid_out(rng.standard_normal(y.shape), dtype, layout)
    dx, dw, db = ecp.conv2d_backward(dy, x, w, padding=p)
    rdx, rdw, rdb = reference.conv2d_backward(dy, x, w, padding=p)
    assert_close(dx, rdx, dtype)
    assert_close(dw, rdw, dtype)
    assert_close(db, rdb, dtype)
    check()


@settings(max_examples=2 * EXAMPLES, deadline=None)
@given(geom=any_conv_geometry(easy=True), dtype=dtypes, layout=layouts, seed=seeds, bias=st.booleans(),
       mode=st.integers(0, 3))
def test_easy_conv2d_and_backward_match_the_reference(geom, dtype, layout, seed, bias, mode):
    x, w, b, rng = conv_inputs(geom, dtype, layout, seed, bias)
    p = geom[-1]
    check = unchanged(x, w)
    y = ecp.easy_conv2d(x, w, b, mode=mode, padding=p)
    assert_close(y, reference.easy_conv2d(x, w, b, mode=mode, padding=p), dtype)
    # Easy Convolution keeps exactly the outputs of the full convolution that Random Pooling keeps.
    full = reference.conv2d(x, w, b, padding=p)
    assert_close(y, reference.random_pool2d(full, mode), dtype)
    dy = laid_out(rng.standard_normal(y.shape), dtype, layout)
    dx, dw, db = ecp.easy_conv2d_backward(dy, x, w, mode=mode, padding=p)
    rdx, rdw, rdb = reference.easy_conv2d_backward(dy, x, w, mode=mode, padding=p)
    assert_close(dx, rdx, dtype)
    assert_close(dw, rdw, dtype)
    assert_close(db, rdb, dtype)
    check()


# ---------------------------------------------------------------------------------- pooling

pool_shapes = st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(2, 11), st.integers(2, 11))


def pool_input(shape, dtype, layout, seed, ties):
    rng = np.random.default_rng(seed)
    values = rng.integers(-2, 3, shape) if ties else rng.standard_normal(shape)
    return laid_out(values, dtype, layout), rng


def pooled(shape):
    n, c, h, w = shape
    return n, c, h // 2, w // 2


@settings(max_examples=EXAMPLES, deadline=None)
@given(shape=pool_shapes, dtype=dtypes, layout=layouts, seed=seeds, mode=st.integers(0, 3))
def test_random_pool_and_backward_match_the_reference(shape, dtype, layout, seed, mode):
    x, rng = pool_input(shape, dtype, layout, seed, ties=False)
    check = unchanged(x)
    assert_exact(ecp.random_pool2d(x, mode), reference.random_pool2d(x, mode), dtype)
    dy = laid_out(rng.standard_normal(pooled(shape)), dtype, layout)
    assert_exact(ecp.random_pool2d_backward(dy, mode, shape), reference.random_pool2d_backward(dy, mode, shape),
                 dtype)
    check()


@settings(max_examples=EXAMPLES, deadline=None)
@given(shape=pool_shapes, dtype=dtypes, layout=layouts, seed=seeds, ties=st.booleans())
def test_max_pool_and_backward_match_the_reference(shape, dtype, layout, seed, ties):
    """Ties (small integers) go to the first maximum in row-major order, as in the reference."""
    x, rng = pool_input(shape, dtype, layout, seed, ties)
    check = unchanged(x)
    y, idx = ecp.max_pool2d(x, return_indices=True)
    ry, ridx = reference.max_pool2d(x, return_indices=True)
    assert_exact(y, ry, dtype)
    np.testing.assert_array_equal(idx, ridx)
    assert_exact(ecp.max_pool2d(x), ry, dtype)
    dy = laid_out(rng.standard_normal(y.shape), dtype, layout)
    assert_exact(ecp.max_pool2d_backward(dy, idx, shape), reference.max_pool2d_backward(dy, ridx, shape), dtype)
    check()


@settings(max_examples=EXAMPLES, deadline=None)
@given(shape=pool_shapes, dtype=dtypes, seed=seeds)
def test_max_pool_with_infinities_matches_the_reference(shape, dtype, seed):
    """PyTorch's test of -inf / +inf windows has this NumPy counterpart."""
    rng = np.random.default_rng(seed)
    x = rng.choice(np.array([-np.inf, -1.0, 0.0, 1.0, np.inf]), size=shape).astype(dtype)
    y, idx = ecp.max_pool2d(x, return_indices=True)
    ry, ridx = reference.max_pool2d(x, return_indices=True)
    assert_exact(y, ry, dtype)
    np.testing.assert_array_equal(idx, ridx)


@settings(max_examples=EXAMPLES, deadline=None)
@given(shape=pool_shapes, dtype=dtypes, layout=layouts, seed=seeds)
def test_avg_pool_and_backward_match_the_reference(shape, dtype, layout, seed):
    x, rng = pool_input(shape, dtype, layout, seed, ties=False)
    check = unchanged(x)
    assert_close(ecp.avg_pool2d(x), reference.avg_pool2d(x), dtype)
    dy = laid_out(rng.standard_normal(pooled(shape)), dtype, layout)
    assert_close(ecp.avg_pool2d_backward(dy, shape), reference.avg_pool2d_backward(dy, shape), dtype)
    check()


@settings(max_examples=EXAMPLES, deadline=None)
@given(pooled_shape=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 6), st.integers(1, 6)),
       odd=st.tuples(st.booleans(), st.booleans()), dtype=dtypes, layout=layouts, seed=seeds)
def test_neighbor_fill_and_backward_match_the_reference(pooled_shape, odd, dtype, layout, seed):
    n, c, hq, wq = pooled_shape
    size = (2 * hq + odd[0], 2 * wq + odd[1])
    rng = np.random.default_rng(seed)
    y = laid_out(rng.standard_normal(pooled_shape), dtype, layout)
    check = unchanged(y)
    assert_exact(ecp.neighbor_fill(y, shape=size), reference.neighbor_fill(y, shape=size), dtype)
    dy = laid_out(rng.standard_normal((n, c) + size), dtype, layout)
    assert_close(ecp.neighbor_fill_backward(dy), reference.neighbor_fill_backward(dy), dtype)
    check()


# ------------------------------------------------------------------------------- optimizers

@settings(max_examples=EXAMPLES, deadline=None)
@given(size=st.integers(1, 200), dtype=dtypes, seed=seeds, steps=st.integers(1, 6),
       lr=st.sampled_from([1e-3, 0.01, 0.5]), betas=st.sampled_from([(0.9, 0.999), (0.5, 0.9), (0.0, 0.99)]))
def test_adam_steps_match_the_numpy_formula(size, dtype, seed, steps, lr, betas):
    """Adam with bias correction, against the formula in float64 (the check PyTorch's test also makes)."""
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(size).astype(dtype)
    g = np.zeros(size, dtype)
    opt = optim.Adam([p], [g], lr=lr, betas=betas, eps=1e-8)
    ref, m, v = p.astype(np.float64), 0.0, 0.0
    b1, b2 = betas
    for t in range(1, steps + 1):
        g[:] = rng.standard_normal(size)
        opt.step()
        gt = g.astype(np.float64)
        m = b1 * m + (1 - b1) * gt
        v = b2 * v + (1 - b2) * gt * gt
        ref = ref - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + 1e-8)
    assert p.dtype == np.dtype(dtype)
    tol = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}[np.dtype(dtype)]
    np.testing.assert_allclose(p, ref, rtol=tol, atol=tol * lr * steps)


def test_the_layouts_are_what_they_claim():
    a = np.arange(24.0).reshape(2, 3, 2, 2)
    assert laid_out(a, np.float32, "F").flags.f_contiguous and not laid_out(a, np.float32, "F").flags.c_contiguous
    assert not laid_out(a, np.float64, "sliced").flags.c_contiguous
    assert laid_out(a, np.float64, "reversed").strides[-1] < 0
    assert not laid_out(a, np.float64, "readonly").flags.writeable


@pytest.mark.parametrize("easy", [False, True])
def test_the_geometries_always_have_outputs_and_reach_every_kernel(easy):
    from ecp import _dispatch

    forward, backward = set(), set()

    @settings(max_examples=200, deadline=None)
    @given(geom=any_conv_geometry(easy=easy), dtype=dtypes)
    def check(geom, dtype):
        n, c, h, w, o, kh, kw, p = geom
        ho, wo = h + 2 * p - kh + 1, w + 2 * p - kw + 1
        assert min(ho, wo) >= (2 if easy else 1) and h >= 1 and w >= 1
        forward.add(_dispatch.forward_kernel((o, c, kh, kw), wo // 2 if easy else wo, dtype))
        backward.add(_dispatch.backward_kernel((o, c, kh, kw)))

    check()
    if _dispatch.thresholds.direct:
        # Winograd and the polyphase kernels are chosen on top of these by plan_forward /
        # plan_backward and the easy-average plans (tests/test_winograd.py, tests/test_polyphase.py)
        assert forward == set(_dispatch.ForwardKernel) - {_dispatch.ForwardKernel.WINOGRAD,
                                                          _dispatch.ForwardKernel.POLYPHASE_BOX,
                                                          _dispatch.ForwardKernel.POLYPHASE_TALL}
        assert backward == set(_dispatch.BackwardKernel) - {_dispatch.BackwardKernel.WINOGRAD_BACKWARD,
                                                            _dispatch.BackwardKernel.POLYPHASE_BOX_BACKWARD}
    else:
        assert forward == {_dispatch.ForwardKernel.IM2COL_BLAS} and backward == {_dispatch.BackwardKernel.BLAS}


# ------------------------------------------------------- NumPy counterparts of the PyTorch parity

def test_network_matches_the_reference_composition():
    """The counterpart of test_nn's PyTorch parity: the two-conv max-pooling network's logits and
    loss against ecp.testing's layers composed in NumPy (float64)."""
    from ecp.nn import SoftmaxCrossEntropy
    from ecp.nn.models import build_network

    model = build_network("two-conv", "max", seed=2, dtype=np.float64)
    x = np.random.default_rng(1).random((4, 1, 28, 28))
    labels = np.array([3, 1, 4, 1])
    logits = model(x)
    value = SoftmaxCrossEntropy().forward(logits, labels)
    conv1, _, _, conv2, _, _, _, fc1, _, fc2 = model.layers
    h = reference.relu(reference.max_pool2d(reference.conv2d(x, conv1.params["w"], conv1.params["b"])))
    h = reference.relu(reference.max_pool2d(reference.conv2d(h, conv2.params["w"], conv2.params["b"])))
    h = reference.relu(h.reshape(4, -1) @ fc1.params["w"] + fc1.params["b"]) @ fc2.params["w"] + fc2.params["b"]
    np.testing.assert_allclose(logits, h, rtol=1e-10, atol=1e-12)
    shifted = h - h.max(axis=1, keepdims=True)
    expected = float(np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(4), labels]))
    assert value == pytest.approx(expected, rel=1e-10)
