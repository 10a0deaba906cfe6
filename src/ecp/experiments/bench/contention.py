"""``ecp bench --contention``: the kernels' speed when the machine or the process is busy.

Each shape's calls (Easy Convolution forward and backward, and PyTorch's convolution forward and
backward when installed) are timed on 1 thread and on the default threads under three conditions,
interleaved round-robin within each condition:

- ``idle``: as ``ecp bench`` times them;
- ``busy``: beside a process of ecp's own that spins on one core (started before the timed calls,
  stopped after them, always: also on an error or KeyboardInterrupt);
- ``numpy_gemm``: right after a NumPy matrix product (``gemm_size`` squared, float32, untimed)
  before each timed call, whose BLAS threads may keep spinning after it returns.

The record :func:`run_contention` returns (and ``ecp bench --contention --json`` writes) has the keys
``ecp_version``, ``created``, ``config`` (``dtype``, ``threads``, ``repeats``, ``warmup``, ``mode``,
``gemm_size``, ``torch_requested``, ``conditions``), ``system`` (``cpu_model``, ``cpu_count``,
``torch``, ``openmp`` (:func:`ecp.openmp_info`), ``deterministic``, ``threadpool_info``,
``loadavg``, ``loadavg_end``), ``busy_process`` (``pid``, ``returncode``: the spinning process,
gone when the record is made) and ``shapes``: one record per shape with ``name``, ``x_shape``,
``w_shape``, ``padding``, ``timings`` (condition -> contender -> ``{"median_ms", "min_ms",
"runs_ms"}``; contenders ``ecp_easy_forward_1t``, ``ecp_easy_forward_nt``, ``ecp_easy_backward_1t``,
``ecp_easy_backward_nt`` and, with PyTorch, ``torch_conv_forward_1t`` ... ``torch_conv_backward_nt``),
``threads_ratio`` (condition -> call -> median time on the default threads / on 1 thread: above 1
means the extra threads cost time) and ``vs_idle`` (condition -> contender -> median time / idle
median time).
"""
from __future__ import annotations

import contextlib
import datetime
import subprocess
import sys
from collections.abc import Callable, Iterator

import numpy as np

from ... import __version__, _dispatch
from ..._openmp_env import openmp_info
from ..._threads import get_num_threads, num_threads
from ..._validation import check_int
from ...conv import easy_conv2d, easy_conv2d_backward
from .._machine import cpu_model, loadavg
from .peers import import_torch, torch_setup, torch_threads
from .shapes import parse_shapes
from .timing import time_round_robin, timing_record
from .verify import verify

__all__ = ["CONDITIONS", "DEFAULT_CONTENTION_GEMM", "busy_process", "run_contention"]

CONDITIONS = ("idle", "busy", "numpy_gemm")
DEFAULT_CONTENTION_GEMM = 1024
_SPIN = "import sys\nsys.stdout.write('r'); sys.stdout.flush()\nwhile True: pass\n"


@contextlib.contextmanager
def busy_process() -> Iterator[subprocess.Popen]:
    """Keep one core busy for the length of a ``with`` block: a Python process spinning.

    The process is spinning when the block starts, and is killed and reaped when it ends, also
    when the block raises (KeyboardInterrupt included).

    Yields
    ------
    subprocess.Popen
        The spinning process (its ``pid``; ``returncode`` is set after the block).
    """
    proc = subprocess.Popen([sys.executable, "-c", _SPIN], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    try:
        proc.stdout.read(1)   # it runs the loop from here on
        yield proc
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def _contenders(shape, dtype, mode, threads, torch):
    """(name -> callable) of the 1-thread and default-thread calls of one shape, after checking them."""
    rng = np.random.default_rng(0)
    taps = shape.w_shape[1] * shape.w_shape[2] * shape.w_shape[3]
    x = rng.standard_normal(shape.x_shape).astype(dtype)
    w = (rng.standard_normal(shape.w_shape) / np.sqrt(taps)).astype(dtype)
    b = rng.standard_normal(shape.w_shape[0]).astype(dtype)
    p = shape.padding
    torch_ctx = torch_setup(torch, shape, x, w, b, mode) if torch is not None else None
    verify(shape, x, w, b, mode, torch_ctx, rng)
    dy = rng.standard_normal(shape.easy_shape).astype(dtype)
    calls = {"ecp_easy_forward": lambda: easy_conv2d(x, w, b, mode=mode, padding=p),
             "ecp_easy_backward": lambda: easy_conv2d_backward(dy, x, w, mode=mode, padding=p)}
    out = {}
    for name, fn in calls.items():
        for tag, n in (("1t", 1), ("nt", threads)):
            out[f"{name}_{tag}"] = (lambda fn=fn, n=n: _with_threads(fn, n))
    if torch_ctx is not None:
        for name in ("torch_conv_forward", "torch_conv_backward"):
            fn = {**torch_ctx["fwd"], **torch_ctx["bwd"]}[name]
            for tag, n in (("1t", 1), ("nt", threads)):
                out[f"{name}_{tag}"] = (lambda fn=fn, n=n: _with_torch_threads(torch, fn, n))
    return out


def _with_threads(fn, n):
    with num_threads(n):
        return fn()


def _with_torch_threads(torch, fn, n):
    with torch_threads(torch, n):
        return fn()


def _ratios(times: dict[str, dict]) -> dict[str, float | None]:
    out = {}
    for name in times:
        if name.endswith("_1t"):
            base = name[:-3]
            one, many = times[name]["median_ms"], times[f"{base}_nt"]["median_ms"]
            out[base] = many / one if one > 0 else None
    return out


def run_contention(shapes=None, dtype: str = "float32", threads: int | None = None, repeats: int = 15, *,
                   warmup: int = 2, mode: int = 3, gemm_size: int = DEFAULT_CONTENTION_GEMM,
                   use_torch: bool = True, progress: Callable | None = None) -> dict:
    """Time the kernels on 1 and on the default threads, idle, beside a busy process and after a NumPy GEMM.

    Parameters
    ----------
    shapes : list of str or BenchShape, or None
        As for :func:`~ecp.experiments.bench.run_bench`; None: all four named shapes.
    dtype : ``"float32"`` or ``"float64"``
        Precision of the data.
    threads : int >= 1 or None
        The "default threads" contender (ecp's and PyTorch's); None: :func:`ecp.get_num_threads`.
    repeats : int >= 1
        Timed runs per contender and condition; the record holds their median and minimum.
    warmup : int >= 0
        Untimed rounds before the timed ones, in each condition.
    mode : int in 0..3
        Mode K of Easy Convolution.
    gemm_size : int >= 1
        Side of the square float32 NumPy matrix product run before each timed call in the
        ``numpy_gemm`` condition.
    use_torch : bool
        Add PyTorch's convolution when it imports.
    progress : callable(str, transient=False) or None
        Receives progress messages.

    Returns
    -------
    dict
        The record described in the module docstring.

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
    threads = get_num_threads() if threads is None else check_int(threads, "threads", 1)
    repeats = check_int(repeats, "repeats", 1)
    warmup = check_int(warmup, "warmup", 0)
    mode = check_int(mode, "mode", 0, 3)
    gemm_size = check_int(gemm_size, "gemm_size", 1)
    torch = import_torch() if use_torch else None
    import threadpoolctl

    record = {
        "ecp_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config": {"dtype": dtype.name, "threads": threads, "repeats": repeats, "warmup": warmup, "mode": mode,
                   "gemm_size": gemm_size, "torch_requested": bool(use_torch), "conditions": list(CONDITIONS)},
        "system": {"cpu_model": cpu_model(), "cpu_count": _dispatch._cores(),
                   "torch": torch.__version__ if torch is not None else None, "openmp": openmp_info(),
                   "deterministic": _dispatch.deterministic(),
                   "threadpool_info": threadpoolctl.threadpool_info(), "loadavg": loadavg()},
    }
    grng = np.random.default_rng(3)
    a = grng.standard_normal((gemm_size, gemm_size)).astype(np.float32)
    bm = grng.standard_normal((gemm_size, gemm_size)).astype(np.float32)
    prepared = []
    for shape in shape_list:
        if progress is not None:
            progress(f"{shape.name}: checking the results")
        prepared.append((shape, _contenders(shape, dtype, mode, threads, torch)))
    timings = {shape.name: {} for shape in shape_list}
    for condition in CONDITIONS:
        with contextlib.ExitStack() as stack:
            if condition == "busy":
                proc = stack.enter_context(busy_process())
                record["busy_process"] = {"pid": proc.pid, "returncode": None}
            before = (lambda: a @ bm) if condition == "numpy_gemm" else None
            for shape, calls in prepared:
                times = time_round_robin(calls, repeats, warmup, progress, f"{shape.name} ({condition})",
                                         before=before)
                timings[shape.name][condition] = {name: timing_record(s) for name, s in times.items()}
        if condition == "busy":
            record["busy_process"]["returncode"] = proc.returncode
    record["shapes"] = []
    for shape in shape_list:
        tim = timings[shape.name]
        record["shapes"].append({
            "name": shape.name, "x_shape": list(shape.x_shape), "w_shape": list(shape.w_shape),
            "padding": shape.padding, "timings": tim,
            "threads_ratio": {c: _ratios(tim[c]) for c in CONDITIONS},
            "vs_idle": {c: {name: t["median_ms"] / tim["idle"][name]["median_ms"]
                            for name, t in tim[c].items()} for c in CONDITIONS},
        })
    record["system"]["loadavg_end"] = loadavg()
    return record


def format_contention(record: dict) -> list[str]:
    """Format the ``--contention`` tables: per shape and call, the medians and the threads ratio per condition.

    Parameters
    ----------
    record : dict
        A record from :func:`run_contention`.

    Returns
    -------
    list of str
        A header line, then one aligned table per shape; no trailing newlines.
    """
    cfg, omp = record["config"], record["system"]["openmp"]
    lines = [f"ecp {record['ecp_version']} bench --contention: {cfg['dtype']}, 1 vs {cfg['threads']} thread(s); "
             f"ms: median of {cfg['repeats']} runs; ratio: {cfg['threads']} threads / 1 thread "
             f"(OpenMP wait: {omp['wait_setting']}, GOMP_SPINCOUNT={omp['GOMP_SPINCOUNT']}, "
             f"OMP_WAIT_POLICY={omp['OMP_WAIT_POLICY']})", ""]
    for rec in record["shapes"]:
        lines.append(f"{rec['name']}: x {tuple(rec['x_shape'])}, w {tuple(rec['w_shape'])}, "
                     f"padding {rec['padding']}")
        lines.append(f"  {'call':<22}" + "".join(f"{c + ' 1t / nt / ratio':>34}" for c in CONDITIONS))
        for base in rec["threads_ratio"]["idle"]:
            cells = []
            for c in CONDITIONS:
                t = rec["timings"][c]
                ratio = rec["threads_ratio"][c][base]
                cells.append(f"{t[base + '_1t']['median_ms']:9.3f} {t[base + '_nt']['median_ms']:9.3f} "
                             f"{'-' if ratio is None else f'{ratio:.2f}x':>8}")
            lines.append(f"  {base:<22}" + "".join(f"{cell:>34}" for cell in cells))
        lines.append("")
    return lines[:-1]
