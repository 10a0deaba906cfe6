"""Winograd F(2x2, 3x3): the stride-1 3x3 forward (ForwardKernel.WINOGRAD) and backward (dW, db
and dx: BackwardKernel.WINOGRAD_BACKWARD), against the float64 oracles of :mod:`ecp.testing`.

Winograd computes other products than the direct kernels (16 of transformed values per tile), so
its results match the oracle within float rounding, not the direct kernels' bits; they do not
depend on the thread count.
"""
import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

import ecp
import ecp._dispatch
import ecp.testing as reference
from ecp._dispatch import BackwardKernel, ForwardKernel
from winograd_cases import close, data

DTYPES = [np.float32, np.float64]
# relative to the largest magnitude of the oracle's result; Winograd F(2x2, 3x3) in float32
# measured a few 1e-7 on these shapes
DIRECT = ecp._dispatch.thresholds.direct

needs_direct = pytest.mark.skipif(not DIRECT, reason=f"no direct kernels at ISA {ecp.kernel_isa()}")

# (N, C, H, W, O, padding): odd and non-square planes, channels and filters not multiples of 8,
# planes smaller than a tile, N = 1, paddings 0, 1, 2 and pairs
SHAPES = [
    (2, 16, 9, 7, 16, 1),
    (1, 17, 5, 6, 19, 0),
    (3, 32, 12, 12, 33, 1),
    (2, 16, 4, 4, 24, 2),
    (1, 16, 1, 1, 16, 1),
    (1, 16, 3, 3, 16, 0),
    (2, 24, 13, 31, 40, (1, 0)),
    (1, 20, 8, 35, 17, (0, 2)),
]


@pytest.fixture
def everywhere(monkeypatch):
    """Winograd for every stride-1 3x3 shape of these tests (the real table leaves out few channels,
    few filters and short rows, where it is slower; the kernels take any)."""
    monkeypatch.setattr(ecp._dispatch, "thresholds", dataclasses.replace(
        ecp._dispatch.thresholds, winograd_min_c=1, winograd_min_o=1, winograd_min_wq=1))


@needs_direct
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_winograd_forward_and_backward_match_the_oracle(shape, dtype, everywhere):
    x, w, b, padding = data(shape, dtype)
    ph, pw = (padding, padding) if np.ndim(padding) == 0 else padding
    full_hw = (x.shape[2] + 2 * ph - 2, x.shape[3] + 2 * pw - 2)
    assert ecp._dispatch.plan_forward(x.shape, w.shape, x.dtype, full_hw, full_hw[1], 1)[0] \
        == ForwardKernel.WINOGRAD
    assert ecp._dispatch.plan_backward(x.shape, w.shape, x.dtype, full_hw, 1)[0] == BackwardKernel.WINOGRAD_BACKWARD
    y = ecp.conv2d(x, w, b, padding=padding)
    close(y, reference.conv2d(x, w, b, padding=padding), dtype)
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    dx, dw, db = ecp.conv2d_backward(dy, x, w, padding=padding)
    rdx, rdw, rdb = reference.conv2d_backward(dy, x, w, padding=padding)
    close(dx, rdx, dtype)
    close(dw, rdw, dtype)
    close(db, rdb, dtype)


@needs_direct
@pytest.mark.parametrize("dtype", DTYPES)
def test_winograd_results_do_not_depend_on_the_thread_count(dtype, everywhere):
    for shape in [(3, 32, 12, 11, 40, 1), (1, 16, 30, 17, 16, 1), (5, 16, 8, 8, 24, 0)]:
        x, w, b, padding = data(shape, dtype, seed=2)
        dy = np.random.default_rng(3).standard_normal(ecp.conv2d(x, w, b, padding=padding).shape).astype(dtype)
        results = []
        for n in (1, 2, 3, 4):
            with ecp.num_threads(n):
                results.append((ecp.conv2d(x, w, b, padding=padding),
                                *ecp.conv2d_backward(dy, x, w, padding=padding)))
        for other in results[1:]:
            for a, b_ in zip(results[0], other):
                assert a.tobytes() == b_.tobytes()


@needs_direct
def test_winograd_is_within_rounding_of_the_direct_kernels(monkeypatch):
    x, w, b, padding = data((2, 32, 14, 14, 32, 1), np.float32, seed=4)
    y = ecp.conv2d(x, w, b, padding=padding)
    dy = np.ones_like(y)
    dx = ecp.conv2d_backward(dy, x, w, padding=padding)[0]
    monkeypatch.setattr(ecp._dispatch, "thresholds", dataclasses.replace(ecp._dispatch.thresholds, winograd=False))
    assert ecp._dispatch.plan_forward(x.shape, w.shape, x.dtype, (14, 14), 14, 1)[0] != ForwardKernel.WINOGRAD
    y_direct = ecp.conv2d(x, w, b, padding=padding)
    dx_direct = ecp.conv2d_backward(dy, x, w, padding=padding)[0]
    close(y, y_direct.astype(np.float64), np.float32)
    close(dx, dx_direct.astype(np.float64), np.float32)
    assert not np.array_equal(y, y_direct)   # another algorithm: other roundings


@needs_direct
@pytest.mark.parametrize("dtype", DTYPES)
def test_padding_beyond_two_takes_the_split_dx(dtype, everywhere):
    # dx by Winograd needs padding <= 2 (the padding of dY's convolution is 2 - p); beyond, the
    # direct dx runs instead (dW still by Winograd), with the same results
    x, w, b, _ = data((3, 16, 5, 6, 17, 0), dtype, seed=5)
    y = ecp.conv2d(x, w, b, padding=3)
    close(y, reference.conv2d(x, w, b, padding=3), dtype)
    dy = np.random.default_rng(6).standard_normal(y.shape).astype(dtype)
    for got, want in zip(ecp.conv2d_backward(dy, x, w, padding=3),
                         reference.conv2d_backward(dy, x, w, padding=3)):
        close(got, want, dtype)


def test_dispatch_takes_winograd_for_stride_one_3x3_only():
    t = dataclasses.replace(ecp._dispatch.thresholds, direct=True)
    wino = ecp._dispatch.winograd
    assert wino((1, 64, 16, 16), (64, 64, 3, 3), (16, 16), 1, (0, 0), t)
    assert wino((16, 64, 56, 56), (64, 64, 3, 3), (56, 56), 1, (0, 0), t)             # the VGG-like layer
    assert wino((1, 32, 3, 14), (32, 32, 3, 3), (3, 14), 1, (0, 0), t)
    assert not wino((1, 32, 14, 13), (32, 32, 3, 3), (14, 13), 1, (0, 0), t)          # short rows
    assert not wino((16, 64, 8, 8), (64, 64, 3, 3), (8, 8), 1, (0, 0), t)
    assert not wino((1, 64, 8, 8), (64, 64, 3, 3), (4, 4), 2, (0, 0), t)              # easy conv
    assert not wino((1, 64, 8, 8), (64, 64, 3, 3), (16, 16), 1, (0, 1), t)
    assert not wino((1, 64, 8, 8), (64, 64, 5, 5), (4, 4), 1, (0, 0), t)
    assert not wino((1, 16, 16, 16), (64, 16, 3, 3), (16, 16), 1, (0, 0), t)              # few channels
    assert not wino((1, 64, 16, 16), (16, 64, 3, 3), (16, 16), 1, (0, 0), t)              # few filters
    assert not wino((1, 64, 16, 16), (64, 64, 3, 3), (16, 16), 1, (0, 0), dataclasses.replace(t, winograd=False))
    assert not wino((1, 64, 16, 16), (64, 64, 3, 3), (16, 16), 1, (0, 0), dataclasses.replace(t, direct=False))


def _has(flags):
    try:
        with open("/proc/cpuinfo") as f:
            return set(flags) <= set(" ".join(line for line in f if line.startswith("flags")).split())
    except OSError:
        return False


@pytest.mark.skipif(not _has({"avx2", "fma"}), reason="no AVX2+FMA")
def test_winograd_on_avx2():
    code = """
import dataclasses, numpy as np, ecp, ecp.testing as r
from ecp import _dispatch
assert ecp.kernel_isa() == "avx2"
_dispatch.thresholds = dataclasses.replace(_dispatch.thresholds, winograd_min_c=1, winograd_min_o=1,
                                           winograd_min_wq=1)
rng = np.random.default_rng(0)
worst = 0.0
for dt, tol in ((np.float32, 2e-5), (np.float64, 1e-12)):
    for n, c, h, wd, o, p in [(2, 16, 9, 7, 19, 1), (1, 24, 12, 13, 16, 2), (3, 16, 5, 5, 16, 0)]:
        x = rng.standard_normal((n, c, h, wd)).astype(dt); w = rng.standard_normal((o, c, 3, 3)).astype(dt)
        b = rng.standard_normal(o).astype(dt)
        y = ecp.conv2d(x, w, b, padding=p); dy = rng.standard_normal(y.shape).astype(dt)
        outs = [(ecp.conv2d(x, w, b, padding=p), *ecp.conv2d_backward(dy, x, w, padding=p))
                for k in (1, 2, 3) for _ in [ecp.set_num_threads(k)]]
        assert all(a.tobytes() == b_.tobytes() for other in outs[1:] for a, b_ in zip(outs[0], other))
        for got, want in zip(outs[0], (r.conv2d(x, w, b, padding=p), *r.conv2d_backward(dy, x, w, padding=p))):
            assert np.max(np.abs(got - want)) <= tol * max(1.0, np.max(np.abs(want))), (dt, n, c, h, wd, o, p)
print("ok")
"""
    env = dict(os.environ, ECP_ISA="avx2")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@needs_direct
@pytest.mark.parametrize("dtype", DTYPES)
def test_weights_packed_in_shares_above_four_threads_give_the_same_bits(dtype, monkeypatch):
    # above 4 threads the direct kernels pack their weights (forward) and W^T (backward) once, a
    # share of the filter blocks per thread, then a barrier; up to 4 each thread packs its own copy.
    # The plan for 8 cores, so that the backward (one thread per dW slot) runs on up to 8 threads too
    monkeypatch.setattr(ecp._dispatch, "thresholds", dataclasses.replace(ecp._dispatch.thresholds, cores=8))
    rng = np.random.default_rng(7)
    cases = [((12, 20, 12, 12), (32, 20, 5, 5), 0, None),   # pixel rows forward, direct backward
             ((12, 20, 12, 12), (32, 20, 5, 5), 0, 3),      # the same, easy
             ((8, 24, 20, 20), (40, 24, 3, 3), 1, None),    # panel forward, split backward
             ((10, 9, 11, 13), (40, 9, 4, 5), 2, 1)]        # odd sizes, easy
    for xs, ws, p, mode in cases:
        x = rng.standard_normal(xs).astype(dtype)
        w = rng.standard_normal(ws).astype(dtype)
        b = rng.standard_normal(ws[0]).astype(dtype)
        if mode is None:
            def call():
                y = ecp.conv2d(x, w, b, padding=p)
                return (y, *ecp.conv2d_backward(np.ones_like(y), x, w, padding=p))
        else:
            def call():
                y = ecp.easy_conv2d(x, w, b, mode=mode, padding=p)
                return (y, *ecp.easy_conv2d_backward(np.ones_like(y), x, w, mode=mode, padding=p))
        results = []
        for n in (1, 2, 6, 8):
            with ecp.num_threads(n):
                results.append(call())
        for other in results[1:]:
            for a, b_ in zip(results[0], other):
                assert a.tobytes() == b_.tobytes()
        y = results[-1][0]
        want = (reference.conv2d(x, w, b, padding=p) if mode is None
                else reference.easy_conv2d(x, w, b, mode=mode, padding=p))
        close(y, want, dtype)
