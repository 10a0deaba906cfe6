"""Concurrency: Python threads calling the conv kernels at once get the bits of the same calls
made alone, whatever other threads do meanwhile with ecp.num_threads or threadpoolctl, and every
BLAS threadpoolctl sees keeps its thread count.

The shapes include a single-item call (24 x 144 x 1024 GEMM) whose bits differ between a 1- and a
2-thread OpenBLAS, 3x3 backward passes whose dW goes through the BLAS, and, with the direct
kernels turned off, every pass on the im2col + BLAS path. Each check compares bits, never timing,
and is bounded (a few hundred calls over 8 threads, joins with a timeout).
"""
import dataclasses
import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import ecp
import ecp._blas_instance
import ecp._dispatch
from ecp._kernels import _blas

N_THREADS = 8
ROUNDS = 3        # each worker runs its calls this many times
JOIN_S = 120      # a deadlock fails the test instead of hanging it

# (N, C, H, W, O, kh, kw, padding)
SHAPES = [
    (1, 16, 32, 32, 24, 3, 3, 1),   # one item: a GEMM OpenBLAS splits when it has 2 threads
    (4, 8, 20, 20, 16, 3, 3, 1),    # 3x3: dW through the BLAS
    (3, 4, 17, 20, 6, 3, 2, 2),
    (2, 32, 12, 12, 32, 3, 3, 1),
    (2, 3, 24, 24, 40, 5, 5, 2),
    (1, 64, 8, 8, 64, 3, 3, 1),
    (5, 1, 28, 28, 8, 5, 5, 2),
    (2, 6, 15, 15, 10, 1, 1, 0),
]


def _calls(geom, dtype):
    """The conv calls of one shape and dtype: name -> a function returning a tuple of arrays."""
    n, c, h, w, o, kh, kw, p = geom
    rng = np.random.default_rng(abs(hash((geom, dtype))) % 2**32)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((o, c, kh, kw)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    dy = rng.standard_normal(ecp.conv2d_output_shape(x.shape, wt.shape, p)).astype(dtype)
    mode = sum(geom) % 4
    dye = rng.standard_normal(ecp.easy_conv2d(x, wt, mode=mode, padding=p).shape).astype(dtype)
    tag = f"{np.dtype(dtype).name} {geom}"
    return {
        f"conv2d {tag}": lambda: (ecp.conv2d(x, wt, b, padding=p),),
        f"conv2d_backward {tag}": lambda: ecp.conv2d_backward(dy, x, wt, padding=p),
        f"easy_conv2d {tag}": lambda: (ecp.easy_conv2d(x, wt, b, mode=mode, padding=p),),
        f"easy_conv2d_backward {tag}": lambda: ecp.easy_conv2d_backward(dye, x, wt, mode=mode, padding=p),
    }


def _work():
    work = {}
    for dtype in (np.float32, np.float64):
        for geom in SHAPES:
            work.update(_calls(geom, dtype))
    return work


def _blas_threads():
    return sorted((i["filepath"], i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas")


def _same(a, b):
    return len(a) == len(b) and all(u.dtype == v.dtype and u.shape == v.shape and u.tobytes() == v.tobytes()
                                    for u, v in zip(a, b))


def _run_concurrently(work, meddle=None):
    """Run every call of ``work`` alone, then from N_THREADS Python threads at once (each its share of
    the calls, ROUNDS times; a ``meddle(stop)`` thread alongside when given); return the calls whose
    concurrent result differed from the lone one."""
    alone = {name: fn() for name, fn in work.items()}
    names = sorted(work)
    start = threading.Barrier(N_THREADS + (meddle is not None))
    stop = threading.Event()
    differ, errors = [], []

    def worker(k):
        try:
            start.wait(timeout=JOIN_S)
            mine = names[k::N_THREADS]
            for _ in range(ROUNDS):
                for name in mine:
                    if not _same(work[name](), alone[name]):
                        differ.append(name)
        except BaseException as exc:   # reported by the main thread
            errors.append(exc)

    def meddler():
        try:
            start.wait(timeout=JOIN_S)
            meddle(stop)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(N_THREADS)]
    if meddle is not None:
        threads.append(threading.Thread(target=meddler))
    for t in threads:
        t.start()
    for t in threads[:N_THREADS]:
        t.join(timeout=JOIN_S)
    stop.set()
    for t in threads:
        t.join(timeout=JOIN_S)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    assert not errors, errors
    return sorted(set(differ))


@pytest.fixture(params=["dispatched", "all-blas"])
def kernels(request, monkeypatch):
    """The kernels ecp picks, then (direct kernels off) every pass on im2col + BLAS."""
    if request.param == "all-blas":
        monkeypatch.setattr(ecp._dispatch, "thresholds",
                            dataclasses.replace(ecp._dispatch.thresholds, direct=False))
    return request.param


@pytest.fixture
def known_blas_counts():
    """Every BLAS on 2 threads for the test (a known count to check against), restored after."""
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        assert all(n == 2 for _, n in before)
        yield before


def test_concurrent_calls_equal_the_calls_made_alone(kernels, known_blas_counts):
    assert _run_concurrently(_work()) == []
    assert _blas_threads() == known_blas_counts   # every BLAS as it was


def test_num_threads_toggled_in_another_thread_changes_no_result(kernels, known_blas_counts):
    def toggle(stop):
        while not stop.is_set():
            for n in (1, 2, None):
                with ecp.num_threads(n):
                    pass

    assert _run_concurrently(_work(), toggle) == []
    assert _blas_threads() == known_blas_counts


@pytest.mark.skipif(ecp._blas_instance.blas_isolation() != "private",
                    reason="the shared-BLAS fallback does not shield the kernels from others' thread counts")
def test_blas_thread_count_toggled_in_another_thread_changes_no_result(kernels, known_blas_counts):
    def toggle(stop):
        while not stop.is_set():
            for n in (1, 2):
                with threadpool_limits(limits=n, user_api="blas"):
                    stop.wait(0.001)

    assert _run_concurrently(_work(), toggle) == []
    assert _blas_threads() == known_blas_counts


@pytest.fixture
def shared_blas():
    """The kernels on SciPy's shared BLAS (the fallback where no private instance loads), for a test."""
    if not _blas.blas_thread_control():
        pytest.skip("SciPy's BLAS is not an OpenBLAS whose thread count ecp can set")
    gemms = ecp._blas_instance._private_gemms
    _blas._register_private_gemm(0, 0)
    try:
        assert ecp._blas_instance.blas_isolation() == "shared-locked"
        yield
    finally:
        if gemms is not None:
            _blas._register_private_gemm(*gemms)


def test_shared_fallback_keeps_concurrent_calls_equal_and_restores_the_count(shared_blas, known_blas_counts):
    """Among ecp's own calls the fallback holds too: the first call in puts the shared BLAS on one
    thread, the last out puts back the count it found."""
    assert _run_concurrently(_work()) == []
    assert _blas_threads() == known_blas_counts


def test_private_and_shared_gemm_give_the_same_bits():
    """The private instance is the same library: the same bits as SciPy's on one thread."""
    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.float64):
        for m, k, n in [(24, 144, 1024), (64, 576, 256), (7, 5, 3), (300, 301, 302)]:
            a = rng.standard_normal((m, k)).astype(dtype)
            b = rng.standard_normal((k, n)).astype(dtype)
            with threadpool_limits(limits=1, user_api="blas"):
                shared = _blas._gemm_for_tests(a, b, shared=True)
            with threadpool_limits(limits=2, user_api="blas"):
                private = _blas._gemm_for_tests(a, b)
            assert private.tobytes() == shared.tobytes(), (dtype, m, k, n)
