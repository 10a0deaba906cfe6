"""Threads: every kernel gives bit-identical results on 1 and 2 threads, the thread-count API
checks its argument and restores what it changes, and a build that lost OpenMP is noticed.

The work is split over (sample, channel) planes in the pooling kernels and over items of whole
samples in the convolution kernels (``ecp._dispatch.group``, ``sample_items``); the shapes below make several of
each, so two threads really do share the work.
"""
import os
import subprocess
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import ecp
import ecp._blas_instance
import ecp._dispatch
import ecp._threads
import ecp.conv

DTYPES = [np.float32, np.float64]


@pytest.fixture
def restore_threads():
    """Put back ecp's thread setting and every BLAS's thread count after a test changes them."""
    saved = ecp._threads._num_threads
    guard = threadpool_limits(limits=None)  # changes nothing, remembers the current limits
    yield
    ecp._threads._num_threads = saved
    guard.restore_original_limits()


def _blas_threads():
    return sorted((i["filepath"], i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas")


def _on(n, fn):
    with ecp.num_threads(n):
        assert ecp.get_num_threads() == (n if ecp.openmp_enabled() else 1)
        out = fn()
    return out if isinstance(out, tuple) else (out,)


def _assert_same_on_1_and_2_threads(fn):
    one, two = _on(1, fn), _on(2, fn)
    assert len(one) == len(two)
    for a, b in zip(one, two):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b, equal_nan=True), f"max |diff| {np.max(np.abs(a - b))}"
    # and again: a rerun on 2 threads is reproducible too
    for a, b in zip(two, _on(2, fn)):
        assert np.array_equal(a, b, equal_nan=True)


# (N, C, H, W, O, kh, kw, padding), with the items im2col + BLAS cuts the batch into on 2 cores
# for the full convolution (the easy backward's hold about four times the samples: 6, 4, 1, 3 items)
CONV_SHAPES = [
    (16, 8, 24, 23, 12, 3, 3, 1),   # 16 items of 1 sample
    (13, 4, 17, 20, 6, 3, 2, 2),    # uneven: 8 items of 1 or 2 samples
    # A single item: the kernels hand their threads to the BLAS, and OpenBLAS's sgemm does not
    # give the same bits on 1 and 2 threads for this size (24 x 144 x 1024).
    (1, 16, 32, 32, 24, 3, 3, 1),
    (3, 3, 40, 40, 8, 5, 5, 2),
]


def _items(geom, easy_backward=False):
    """The items of whole samples im2col + BLAS cuts the batch into (an easy backward's are planned
    on its own output, the rest on the full convolution's)."""
    n, c, h, w, o, kh, kw, p = geom
    out_hw = (h + 2 * p - kh + 1, w + 2 * p - kw + 1)
    if easy_backward:
        out_hw = (out_hw[0] // 2, out_hw[1] // 2)
    g = ecp._dispatch.group((n, c, h, w), (o, c, kh, kw), out_hw)
    return ecp._dispatch.sample_items(n, g)


CONV_FUNCS = ["conv2d", "conv2d_backward", "conv2d_backward_no_dx", "easy_conv2d", "easy_conv2d_backward"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CONV_FUNCS)
@pytest.mark.parametrize("geom", CONV_SHAPES, ids=lambda g: "N{}C{}_{}x{}_O{}k{}x{}_p{}".format(*g))
def test_conv_kernels_bitwise_identical_on_1_and_2_threads(geom, name, dtype):
    n, c, h, w, o, kh, kw, p = geom
    assert _items(geom, name == "easy_conv2d_backward") >= (2 if n > 1 else 1)
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((o, c, kh, kw)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    if name == "conv2d":
        _assert_same_on_1_and_2_threads(lambda: ecp.conv2d(x, wt, b, padding=p))
    elif name.startswith("conv2d_backward"):
        dy = rng.standard_normal(ecp.conv2d_output_shape(x.shape, wt.shape, p)).astype(dtype)
        if name.endswith("no_dx"):
            _assert_same_on_1_and_2_threads(lambda: ecp.conv2d_backward(dy, x, wt, padding=p, compute_dx=False)[1:])
        else:
            _assert_same_on_1_and_2_threads(lambda: ecp.conv2d_backward(dy, x, wt, padding=p))
    else:
        for mode in range(4):
            if name == "easy_conv2d":
                _assert_same_on_1_and_2_threads(lambda: ecp.easy_conv2d(x, wt, b, mode=mode, padding=p))
            else:
                dy = rng.standard_normal(ecp.easy_conv2d(x, wt, mode=mode, padding=p).shape).astype(dtype)
                _assert_same_on_1_and_2_threads(lambda: ecp.easy_conv2d_backward(dy, x, wt, mode=mode, padding=p))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 16, 64, 63), (1, 3, 129, 130), (3, 5, 2, 2)],
                         ids=lambda s: "x".join(map(str, s)))
def test_pool_kernels_bitwise_identical_on_1_and_2_threads(shape, dtype):
    rng = np.random.default_rng(1)
    # few distinct values: many ties, so the max's index choice is exercised too
    x = rng.integers(-3, 4, shape).astype(dtype)
    x[..., ::7, ::5] = np.nan
    pooled = (shape[0], shape[1], shape[2] // 2, shape[3] // 2)
    dy = rng.standard_normal(pooled).astype(dtype)
    _, idx = ecp.max_pool2d(x, return_indices=True)
    _assert_same_on_1_and_2_threads(lambda: ecp.max_pool2d(x, return_indices=True))
    _assert_same_on_1_and_2_threads(lambda: ecp.max_pool2d_backward(dy, idx, shape))
    _assert_same_on_1_and_2_threads(lambda: ecp.avg_pool2d(x))
    _assert_same_on_1_and_2_threads(lambda: ecp.avg_pool2d_backward(dy, shape))
    _assert_same_on_1_and_2_threads(lambda: ecp.neighbor_fill(dy, shape=shape[2:]))
    _assert_same_on_1_and_2_threads(lambda: ecp.neighbor_fill_backward(x))
    for mode in range(4):
        _assert_same_on_1_and_2_threads(lambda: ecp.random_pool2d(x, mode))
        _assert_same_on_1_and_2_threads(lambda: ecp.random_pool2d_backward(dy, mode, shape))


def test_kernels_and_num_threads_leave_the_blas_thread_count_alone():
    """Neither the conv kernels nor ``ecp.num_threads`` change any BLAS's thread count (else NumPy's
    matrix products would silently run on another count); ``set_num_threads`` alone does."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((16, 4, 20, 20))
    w = rng.standard_normal((8, 4, 3, 3))
    # a known count first: an earlier call that failed to restore would otherwise hide it
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        assert all(n == 2 for _, n in before)
        for n in (None, 1, 2):
            with ecp.num_threads(n):
                assert _blas_threads() == before
                y = ecp.conv2d(x, w, padding=1)
                ecp.conv2d_backward(y, x, w, padding=1)
                ecp.easy_conv2d_backward(ecp.easy_conv2d(x, w, mode=1), x, w, mode=1)
                assert _blas_threads() == before
        assert _blas_threads() == before


def test_blas_isolation_is_the_private_instance_where_it_can_be():
    """On glibc with SciPy's OpenBLAS the kernels' GEMMs run on a private instance of it, which
    threadpoolctl does not see (one libscipy_openblas, the shared one)."""
    import platform
    import sys

    iso = ecp._threads.blas_isolation()
    assert iso in ("private", "shared-locked", "shared")
    if not (sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
            and ecp._blas_instance._kernel_blas() is not None):
        pytest.skip(f"no dlmopen or no SciPy OpenBLAS here: isolation {iso!r}")
    assert iso == "private"
    kernel_blas = ecp._blas_instance._kernel_blas()["filepath"]
    assert [path for path, _ in _blas_threads()].count(kernel_blas) == 1


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux's /proc")
def test_private_blas_starts_no_threads_and_can_be_turned_off():
    """Loading the private instance starts no thread (no OpenBLAS pool); ECP_PRIVATE_BLAS=0 falls back
    to the shared, locked BLAS."""
    import subprocess
    import sys

    code = ("import os; import numpy, scipy.linalg.cython_blas, threadpoolctl; "
            "n = len(os.listdir('/proc/self/task')); import ecp._threads as t; "
            "print(t.blas_isolation(), len(os.listdir('/proc/self/task')) - n)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(ecp.__file__)), os.environ.get("PYTHONPATH", "")]))
    env.pop("ECP_PRIVATE_BLAS", None)
    iso, new = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                              check=True, timeout=120).stdout.split()
    assert int(new) == 0
    env["ECP_PRIVATE_BLAS"] = "0"
    iso_off, _ = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                check=True, timeout=120).stdout.split()
    assert iso_off == ("shared-locked" if iso == "private" else iso)


# ----------------------------------------------------------------------------- the thread-count API

@pytest.mark.parametrize("bad,exc,msg", [
    (0, ValueError, r"^n must be an integer >= 1, got 0"),
    (-1, ValueError, r"^n must be an integer >= 1, got -1"),
    (1.5, TypeError, r"^n must be an integer, got float 1\.5"),
    (True, TypeError, r"^n must be an integer, got bool True"),
    ("2", TypeError, r"^n must be an integer, got str '2'"),
])
def test_bad_thread_counts_are_rejected(restore_threads, bad, exc, msg):
    before = (ecp.get_num_threads(), _blas_threads())
    with pytest.raises(exc, match=msg):
        ecp.set_num_threads(bad)
    with pytest.raises(exc, match=msg):
        with ecp.num_threads(bad):
            pass  # pragma: no cover
    assert (ecp.get_num_threads(), _blas_threads()) == before


@pytest.mark.skipif(not ecp.openmp_enabled(), reason="a build without OpenMP always runs on one thread")
def test_set_num_threads_and_context(restore_threads):
    ecp.set_num_threads(1)
    assert ecp.get_num_threads() == 1
    assert all(n == 1 for _, n in _blas_threads())
    with ecp.num_threads(2):
        assert ecp.get_num_threads() == 2
        assert all(n == 1 for _, n in _blas_threads())   # num_threads touches no BLAS
        with ecp.num_threads(1):
            assert ecp.get_num_threads() == 1
        assert ecp.get_num_threads() == 2
    assert ecp.get_num_threads() == 1
    with pytest.raises(RuntimeError):
        with ecp.num_threads(2):
            raise RuntimeError("the block fails")
    assert ecp.get_num_threads() == 1  # restored even so
    assert all(n == 1 for _, n in _blas_threads())
    ecp.set_num_threads(2)
    assert ecp.get_num_threads() == 2
    ecp.set_num_threads(None)  # back to the default
    assert ecp.get_num_threads() == ecp._threads.openmp_max_threads()
    with ecp.num_threads(None):  # None: leave as is
        assert ecp.get_num_threads() == ecp._threads.openmp_max_threads()


def test_openmp_is_really_there():
    """CI sets ECP_EXPECT_OPENMP=1: a build that silently fell back to one thread fails here."""
    if os.environ.get("ECP_EXPECT_OPENMP") != "1":
        pytest.skip("ECP_EXPECT_OPENMP is not 1: a build without OpenMP is allowed here "
                    f"(this one has OpenMP: {ecp.openmp_enabled()})")
    assert ecp.openmp_enabled(), "ecp was built without OpenMP: its kernels run on one thread"
    with ecp.num_threads(2):
        assert ecp.get_num_threads() == 2


@pytest.mark.skipif(not ecp.openmp_enabled(), reason="a build without OpenMP always runs on one thread")
def test_num_threads_is_local_to_each_python_thread(restore_threads):
    """Two Python threads, each inside its own ``ecp.num_threads(k)`` block at the same time, each
    read their own k (the blocks overlap in every order: entered A, B, left A, B), and threads
    outside any block read the process-wide default; no BLAS count changes."""
    import threading

    ecp.set_num_threads(3)
    before = _blas_threads()
    inside = threading.Barrier(3)    # both threads in their blocks, and the main thread
    a_left = threading.Event()
    seen = {}

    def worker(name, k, wait_for=None):
        with ecp.num_threads(k):
            inside.wait(timeout=10)
            if wait_for is not None:
                wait_for.wait(timeout=10)
            seen[name] = [ecp.get_num_threads() for _ in range(1000)]
            seen[name + " blas"] = _blas_threads()
        if name == "a":
            a_left.set()
        seen[name + " after"] = ecp.get_num_threads()

    threads = [threading.Thread(target=worker, args=("a", 1)),
               threading.Thread(target=worker, args=("b", 2, a_left))]
    for t in threads:
        t.start()
    inside.wait(timeout=10)
    seen["main"] = ecp.get_num_threads()
    for t in threads:
        t.join(timeout=20)
    assert set(seen["a"]) == {1} and set(seen["b"]) == {2}
    assert seen["main"] == seen["a after"] == seen["b after"] == 3 == ecp.get_num_threads()
    assert seen["a blas"] == seen["b blas"] == _blas_threads() == before


def test_set_num_threads_is_the_default_of_every_thread(restore_threads):
    """set_num_threads is process-wide: a thread started after it (outside any block) reads it."""
    import threading

    ecp.set_num_threads(1)
    seen = []
    t = threading.Thread(target=lambda: seen.append(ecp.get_num_threads()))
    t.start()
    t.join()
    assert seen == [1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True)])
def test_private_matmul_against_numpy(dtype, trans_a, trans_b):
    """ecp._kernels._blas.matmul (ecp.nn.Linear's products): op(a) @ op(b) into out, empty sizes too."""
    from ecp._kernels import _blas

    rng = np.random.default_rng(3)
    for m, k, n in ((5, 7, 3), (1, 1, 1), (64, 100, 10), (0, 4, 3), (3, 0, 2), (3, 4, 0)):
        a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
        b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
        out = np.full((m, n), np.nan, dtype)
        got = _blas.matmul(a, b, out, trans_a=trans_a, trans_b=trans_b)
        assert got is out
        want = (a.T if trans_a else a).astype(np.float64) @ (b.T if trans_b else b).astype(np.float64)
        np.testing.assert_allclose(out, want, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)


def test_linear_starts_no_numpy_blas_thread():
    """ecp.nn.Linear's products run on ecp's own single-threaded BLAS, not NumPy's thread pool."""
    if ecp._threads.blas_isolation() != "private":
        pytest.skip("no private BLAS instance here")
    code = (
        "import os, numpy as np\n"
        "from ecp import nn\n"
        "layer = nn.Linear(512, 256, rng=0)\n"
        "before = len(os.listdir('/proc/self/task'))\n"
        "x = np.ones((256, 512), np.float32)\n"
        "for _ in range(3):\n"
        "    y = layer(x); layer.backward(np.ones_like(y))\n"
        "print(before, len(os.listdir('/proc/self/task')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    before, after = map(int, out.stdout.split())
    assert after == before


@pytest.mark.skipif(not ecp._dispatch.thresholds.direct, reason=f"no direct kernels at ISA {ecp.kernel_isa()}")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("padding, mode", [(0, None), (2, None), (2, 3), (1, 0)])
def test_direct_backward_with_fewer_slots_than_threads_splits_dw_and_dx_with_the_same_bits(n, dtype, padding, mode,
                                                                                          monkeypatch):
    # the paper's conv2 on the direct backward: with one dW slot (N = 1, or a table of one core)
    # and two or more threads, a slot's dW and its dx run as separate tasks, in parts on more
    # threads (dW by blocks of k or of filters -- windows inside the plane or not --, dx by
    # channels); the gradients keep the bits of one thread and match the oracle
    import dataclasses

    from ecp import testing
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, 20, 12, 12)).astype(dtype)
    wt = rng.standard_normal((32, 20, 5, 5)).astype(dtype)
    easy = mode is not None
    out = 12 + 2 * padding - 4
    dy = rng.standard_normal((n, 32) + ((out // 2, out // 2) if easy else (out, out))).astype(dtype)
    monkeypatch.setattr(ecp._dispatch, "thresholds", dataclasses.replace(ecp._dispatch.thresholds, cores=1))

    def grads(**kw):
        if easy:
            return ecp.easy_conv2d_backward(dy, x, wt, mode=mode, padding=padding, **kw)
        return ecp.conv2d_backward(dy, x, wt, padding=padding, **kw)

    if not easy:
        plan = ecp._plans.backward(dy, x, wt, padding, None, True)[1]
        assert plan.kernel == ecp._dispatch.BackwardKernel.DIRECT and plan.slots == 1 and plan.threaded
    results = []
    for threads in (1, 2, 3, 4, 7, 16):
        with ecp.num_threads(threads):
            results.append(grads())
            results.append(grads(compute_dx=False))
    for got in results[2::2]:
        assert all(a.tobytes() == b.tobytes() for a, b in zip(got, results[0]))
    for got in results[1::2]:
        assert got[0] is None and got[1].tobytes() == results[0][1].tobytes()
    x64, w64, dy64 = x.astype(np.float64), wt.astype(np.float64), dy.astype(np.float64)
    want = (testing.easy_conv2d_backward(dy64, x64, w64, mode=mode, padding=padding) if easy
            else testing.conv2d_backward(dy64, x64, w64, padding=padding))
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for a, b in zip(results[0], want):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * float(np.abs(b).max()))
