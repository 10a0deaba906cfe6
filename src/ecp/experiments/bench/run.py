"""Running the benchmark: the SGEMM yardstick, every shape in turn, the record.

The record :func:`run_bench` returns is described in :mod:`ecp.experiments.bench`.
"""
from __future__ import annotations

import datetime
import os
import platform
from collections.abc import Callable

import numpy as np

from ... import __version__, _dispatch
from ..._openmp_env import openmp_info
from ..._threads import blas_isolation, get_num_threads, num_threads
from ..._validation import check_int
from ...conv import (
    conv2d,
    conv2d_backward,
    easy_avg_conv2d,
    easy_avg_conv2d_backward,
    easy_conv2d,
    easy_conv2d_backward,
)
from ...pool import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from .._machine import cpu_model, isa_flags, loadavg
from .peers import import_torch, torch_setup, torch_threads
from .shapes import parse_shapes
from .timing import peak_extra_mb, time_round_robin, timing_record
from .verify import RTOL, VerificationError, rel_err, verify

__all__ = ["DEFAULT_REPEATS", "DEFAULT_WARMUP", "DEFAULT_GEMM_SIZE", "run_bench", "kernels_used", "gemm_dims"]

DEFAULT_REPEATS = 15
DEFAULT_WARMUP = 2
DEFAULT_GEMM_SIZE = 2048
GEMM_MAX_REPEATS = 7  # the GEMM yardstick costs ~0.1 s a call; its median settles within a few runs
# ecp._dispatch's kernel choices -> the names the JSON record and the tables give them.
_FORWARD_NAMES = {_dispatch.ForwardKernel.IM2COL_BLAS: "im2col+blas", _dispatch.ForwardKernel.DIRECT_PANEL: "direct",
                  _dispatch.ForwardKernel.DIRECT_ROWS: "direct-rows", _dispatch.ForwardKernel.WINOGRAD: "winograd",
                  _dispatch.ForwardKernel.POLYPHASE_BOX: "polyphase-box",
                  _dispatch.ForwardKernel.POLYPHASE_TALL: "polyphase-tall"}
_BACKWARD_NAMES = {_dispatch.BackwardKernel.BLAS: "im2col+blas", _dispatch.BackwardKernel.DIRECT: "direct",
                   _dispatch.BackwardKernel.SPLIT: "direct dx + im2col+blas dW",
                   _dispatch.BackwardKernel.WINOGRAD_BACKWARD: "winograd",
                   _dispatch.BackwardKernel.POLYPHASE_BOX_BACKWARD: "polyphase-box"}
ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "ECP_ISA",
            "ECP_CONV_KERNEL", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")


def _system_info(torch):
    import scipy
    import threadpoolctl

    from ..._kernels._openmp import openmp_enabled

    info = threadpoolctl.threadpool_info()
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "torch": torch.__version__ if torch is not None else None,
        "threadpoolctl": threadpoolctl.__version__,
        "openmp_enabled": bool(openmp_enabled()),
        "kernel_isa": _dispatch.kernel_isa(),
        "conv_direct_kernels": bool(_dispatch.thresholds.direct),
        "openmp": openmp_info(),
        "deterministic": _dispatch.deterministic(),
        "ecp_num_threads": get_num_threads(),
        "blas_isolation": blas_isolation(),
        "torch_num_threads": torch.get_num_threads() if torch is not None else None,
        "threadpool_info": [{k: v for k, v in entry.items()} for entry in info],
        "env": {name: os.environ.get(name) for name in ENV_VARS},
        "isa_flags": isa_flags(),
        "loadavg": loadavg(),
    }


def _measure_gemm(size, dtype, repeats, warmup, progress):
    from ..._kernels._blas import _gemm_for_tests

    m, k, n = size
    rng = np.random.default_rng(1)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    got = _gemm_for_tests(a, b, shared=True)   # SciPy's BLAS on the run's threads, as NumPy's
    ref = a @ b
    err = rel_err(got, ref)
    if err > RTOL[np.dtype(dtype).name]:
        raise VerificationError(f"ecp's BLAS wrapper disagrees with NumPy on a {m}x{k}x{n} GEMM "
                                f"(relative error {err:.2e})")
    label = f"{np.dtype(dtype).name} GEMM {m}x{k}x{n}"
    if progress is not None:
        progress(f"{label}: measuring the reference rate")
    runs = max(3, min(repeats, GEMM_MAX_REPEATS))
    times = time_round_robin({"ecp_blas": lambda: _gemm_for_tests(a, b, shared=True),
                              "numpy": lambda: a @ b}, runs, 1, progress, label)
    flops = 2 * m * k * n
    out = {"m": m, "k": k, "n": n, "dtype": np.dtype(dtype).name, "flops": flops, "runs": runs}
    for name, secs in times.items():
        t = timing_record(secs)
        t["gflops"] = flops / (t["median_ms"] * 1e-3) / 1e9
        out[name] = t
    return out



def kernels_used(shape, dtype) -> dict[str, str]:
    """Report which kernel ecp runs for each pass of a layer shape.

    The answer is ecp.conv's own choice, asked, not re-derived.

    Parameters
    ----------
    shape : BenchShape
        The layer.
    dtype : numpy.dtype or str
        The data type, float32 or float64.

    Returns
    -------
    dict of str to str
        ``"forward"``: ``"direct"``, ``"direct-rows"``, ``"winograd"`` or ``"im2col+blas"``;
        ``"easy_forward"`` the same (``"winograd"``: the polyphase kernel of stride-2 3x3 layers,
        ``"polyphase-tall"`` the same on tiles of 4 x 2 outputs);
        ``"backward"``: ``"direct"``,
        ``"im2col+blas"``, ``"direct dx + im2col+blas dW"`` or ``"winograd"``.
    """
    full_hw = tuple(shape.full_shape[2:])
    return {"forward": _FORWARD_NAMES[_dispatch.plan_forward(shape.x_shape, shape.w_shape, dtype, full_hw,
                                                             full_hw[1], 1)[0]],
            "easy_forward": _FORWARD_NAMES[_dispatch.plan_forward(shape.x_shape, shape.w_shape, dtype, full_hw,
                                                                  full_hw[1] // 2, 2, offset=(1, 1))[0]],
            "backward": _BACKWARD_NAMES[_dispatch.plan_backward(shape.x_shape, shape.w_shape, dtype, full_hw, 1)[0]]}


def _bench_shape(shape, dtype, mode, repeats, warmup, torch, gemm_gflops, memory, progress):
    label = f"{shape.name} ({dtype.name})"
    rng = np.random.default_rng(0)
    taps = shape.w_shape[1] * shape.w_shape[2] * shape.w_shape[3]
    x = rng.standard_normal(shape.x_shape).astype(dtype)
    w = (rng.standard_normal(shape.w_shape) / np.sqrt(taps)).astype(dtype)
    b = rng.standard_normal(shape.w_shape[0]).astype(dtype)
    p = shape.padding

    if progress is not None:
        progress(f"{label}: checking the results")
    torch_ctx = torch_setup(torch, shape, x, w, b, mode) if torch is not None else None
    errors = verify(shape, x, w, b, mode, torch_ctx, rng)
    errors.update(_verify_easy_avg(shape, x, w, b, rng))

    dy_full = rng.standard_normal(shape.full_shape).astype(dtype)
    dy_easy = rng.standard_normal(shape.easy_shape).astype(dtype)
    _, idx = max_pool2d(conv2d(x, w, b, padding=p), return_indices=True)
    full_shape = shape.full_shape
    ecp_calls = {
        "full_forward": lambda: conv2d(x, w, b, padding=p),
        "easy_forward": lambda: easy_conv2d(x, w, b, mode=mode, padding=p),
        "full_backward": lambda: conv2d_backward(dy_full, x, w, padding=p),
        "easy_backward": lambda: easy_conv2d_backward(dy_easy, x, w, mode=mode, padding=p),
    }
    calls = dict(ecp_calls)
    calls["ecp_conv_maxpool_forward"] = lambda: max_pool2d(conv2d(x, w, b, padding=p),
                                                           return_indices=True)
    calls["ecp_conv_maxpool_backward"] = lambda: conv2d_backward(
        max_pool2d_backward(dy_easy, idx, full_shape), x, w, padding=p)
    # easy average pooling next to what it replaces: the full convolution then average pooling
    calls["easy_avg_forward"] = lambda: easy_avg_conv2d(x, w, b, padding=p)
    calls["easy_avg_backward"] = lambda: easy_avg_conv2d_backward(dy_easy, x, w, padding=p)
    calls["ecp_conv_avgpool_forward"] = lambda: avg_pool2d(conv2d(x, w, b, padding=p))
    calls["ecp_conv_avgpool_backward"] = lambda: conv2d_backward(
        avg_pool2d_backward(dy_easy, full_shape), x, w, padding=p)
    if torch_ctx is not None:
        calls.update(torch_ctx["fwd"])
        calls.update(torch_ctx["bwd"])

    times = time_round_robin(calls, repeats, warmup, progress, label)
    timings = {name: timing_record(secs) for name, secs in times.items()}

    mem = None
    if memory:
        if progress is not None:
            progress(f"{label}: measuring peak memory")
        mem = {name: peak_extra_mb(fn) for name, fn in ecp_calls.items()}
        for d in ("forward", "backward"):
            full_mb = mem[f"full_{d}"]
            mem[f"ratio_{d}"] = mem[f"easy_{d}"] / full_mb if full_mb > 0 else None

    flops = shape.flops()
    med = {name: t["median_ms"] for name, t in timings.items()}
    gflops = {name: flops[name] / (med[name] * 1e-3) / 1e9 for name in flops}
    pct = {name: 100.0 * g / gemm_gflops for name, g in gflops.items()} if gemm_gflops else None

    mins = {name: t["min_ms"] for name, t in timings.items()}

    def speedups(ms):
        def ratio(slow, fast):
            return ms[slow] / ms[fast] if slow in ms and fast in ms and ms[fast] > 0 else None

        return {
            "forward": ratio("full_forward", "easy_forward"),
            "backward": ratio("full_backward", "easy_backward"),
            "layer_vs_ecp_conv_maxpool_forward": ratio("ecp_conv_maxpool_forward", "easy_forward"),
            "layer_vs_ecp_conv_maxpool_backward": ratio("ecp_conv_maxpool_backward",
                                                        "easy_backward"),
            "layer_vs_torch_conv_maxpool_forward": ratio("torch_conv_maxpool_forward",
                                                         "easy_forward"),
            "layer_vs_torch_conv_maxpool_backward": ratio("torch_conv_maxpool_backward",
                                                          "easy_backward"),
            "easy_vs_torch_stride2_forward": ratio("torch_stride2_forward", "easy_forward"),
            "easy_vs_torch_stride2_backward": ratio("torch_stride2_backward", "easy_backward"),
            "easy_avg_vs_ecp_conv_avgpool_forward": ratio("ecp_conv_avgpool_forward", "easy_avg_forward"),
            "easy_avg_vs_ecp_conv_avgpool_backward": ratio("ecp_conv_avgpool_backward", "easy_avg_backward"),
        }

    return {
        "name": shape.name,
        "x_shape": list(shape.x_shape),
        "w_shape": list(shape.w_shape),
        "padding": shape.padding,
        "full_shape": list(shape.full_shape),
        "easy_shape": list(shape.easy_shape),
        "flops": flops,
        "kernels": kernels_used(shape, dtype),
        "verification": {"passed": True, "tolerance": RTOL[dtype.name], "errors": errors},
        "timings": timings,
        "gflops": gflops,
        "pct_of_gemm": pct,
        "speedup": speedups(med),
        "speedup_min": speedups(mins),
        "memory_mb": mem,
    }


def _verify_easy_avg(shape, x, w, b, rng):
    """Easy average pooling against ecp's convolution then average pooling (forward, and the
    backward's three gradients): the relative errors, or a VerificationError."""
    p = shape.padding
    want = avg_pool2d(conv2d(x, w, b, padding=p))
    dy = rng.standard_normal(want.shape).astype(x.dtype)
    wants = (want,) + conv2d_backward(avg_pool2d_backward(dy, shape.full_shape), x, w, padding=p)
    gots = (easy_avg_conv2d(x, w, b, padding=p),) + easy_avg_conv2d_backward(dy, x, w, padding=p)
    errors = {}
    for name, got, ref in zip(("easy_avg_forward", "easy_avg_dx", "easy_avg_dw", "easy_avg_db"), gots, wants):
        errors[name] = rel_err(got, ref)
        if errors[name] > RTOL[x.dtype.name]:
            raise VerificationError(f"{shape.name}: easy average pooling ({name}) disagrees with conv2d + "
                                    f"avg_pool2d (relative error {errors[name]:.2e})")
    return errors


def gemm_dims(size, option: str = "gemm_size") -> tuple[int, int, int]:
    """Parse the size of the GEMM yardstick.

    Parameters
    ----------
    size : int, str or sequence of 3 int
        ``M`` (a square GEMM, as an int or a string), ``"M,K,N"`` or ``(M, K, N)``.
    option : str
        Named in error messages (the CLI flag or the argument name).

    Returns
    -------
    tuple of 3 int
        ``(M, K, N)``, each >= 1.

    Raises
    ------
    ValueError
        ``size`` is not one of those forms or holds a value below 1.
    """
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        dims = (int(size),) * 3
    elif isinstance(size, str):
        try:
            dims = tuple(int(v) for v in size.split(","))
        except ValueError:
            raise ValueError(f"{option} must be M or M,K,N (positive integers), got {size!r}") from None
        if len(dims) == 1:
            dims = dims * 3
    else:
        dims = tuple(size)
    if len(dims) != 3 or any(not isinstance(d, (int, np.integer)) or d < 1 for d in dims):
        raise ValueError(f"{option} must be M or M,K,N (positive integers), got {size!r}")
    return tuple(int(d) for d in dims)


def run_bench(shapes=None, dtype: str = "float32", threads: int | None = None, repeats: int = DEFAULT_REPEATS, *,
              warmup: int = DEFAULT_WARMUP, mode: int = 3, gemm_size=DEFAULT_GEMM_SIZE, use_torch: bool = True,
              memory: bool = True, progress: Callable | None = None,
              on_shape: Callable[[dict, dict], None] | None = None) -> dict:
    """Benchmark the convolution kernels; return the record described in the module docstring.

    Parameters
    ----------
    shapes : list of str or BenchShape, or None
        Names from :data:`SHAPES` (``conv1``, ``conv2``, ``vgg``, ``small``) or custom
        ``"N,C,H,W:O,kh,kw[:pad]"``; None: all four named shapes.
    dtype : ``"float32"`` or ``"float64"``
        Precision of the data and of the GEMM yardstick (SGEMM or DGEMM).
    threads : int >= 1 or None
        Threads for ecp's kernels, the BLAS (NumPy's and SciPy's) and PyTorch; None: what
        :func:`ecp.get_num_threads` gives now (all cores by default).
    repeats : int >= 1
        Timed runs per kernel; the record holds their median and minimum.
    warmup : int >= 0
        Untimed calls before the timed ones.
    mode : int in 0..3
        Mode K of Easy Convolution / Random Pooling.
    gemm_size : int or (M, K, N)
        The GEMM whose rate ``pct_of_gemm`` refers to (SGEMM for float32, DGEMM for float64),
        measured through ecp's BLAS wrapper and through NumPy.
    use_torch : bool
        Add the PyTorch rows when PyTorch imports.
    memory : bool
        Measure peak extra memory (tracemalloc) of the four ecp calls.
    progress : callable(str, transient=False) or None
        Receives progress messages (transient ones are per-run counters).
    on_shape : callable(shape_record, record) or None
        Called as each shape finishes (the CLI prints its table then).

    Returns
    -------
    dict
        ``config``, ``system``, ``gemm`` and ``shapes`` (one record per shape).

    Raises
    ------
    ValueError, TypeError
        Bad arguments (the message names the argument).
    VerificationError
        A kernel gave wrong numbers on some shape.
    """
    shape_list = parse_shapes(shapes, option="shapes")
    if dtype not in ("float32", "float64", np.float32, np.float64):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    dtype = np.dtype(dtype)
    if threads is not None:
        threads = check_int(threads, "threads", 1)
    repeats = check_int(repeats, "repeats", 1)
    warmup = check_int(warmup, "warmup", 0)
    mode = check_int(mode, "mode", 0, 3)
    gemm = gemm_dims(gemm_size)

    torch = import_torch() if use_torch else None
    if threads is None:
        threads = get_num_threads()
    record = {
        "ecp_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config": {
            "dtype": dtype.name,
            "threads": threads,
            "repeats": repeats,
            "warmup": warmup,
            "mode": mode,
            "gemm_size": list(gemm),
            "torch_requested": bool(use_torch),
            "statistic": "median",
        },
    }
    from threadpoolctl import threadpool_limits

    # ecp.num_threads sets ecp's kernels only: the BLAS libraries get the run's count here
    with num_threads(threads), threadpool_limits(threads, user_api="blas"), torch_threads(torch, threads):
        record["system"] = _system_info(torch)
        record["gemm"] = _measure_gemm(gemm, dtype, repeats, warmup, progress)
        rate = record["gemm"]["ecp_blas"]["gflops"]
        record["shapes"] = []
        for shape in shape_list:
            rec = _bench_shape(shape, dtype, mode, repeats, warmup, torch, rate, memory, progress)
            record["shapes"].append(rec)
            if on_shape is not None:
                on_shape(rec, record)
    record["system"]["loadavg_end"] = loadavg()
    return record

