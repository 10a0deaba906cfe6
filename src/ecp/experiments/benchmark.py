"""``ecp bench``: time the kernels against this machine's SGEMM rate and against PyTorch.

For every layer shape it measures, side by side in one run (round-robin, so that a noisy
machine slows every contender alike):

- full convolution and Easy Convolution (mode K), forward and backward: milliseconds, the easy
  speedup, GFLOP/s and the fraction of the GEMM rate measured in the same run;
- peak extra memory of each of those four calls (NumPy allocations, via :mod:`tracemalloc`);
- the ECP layer (Easy Convolution, whose output *is* the randomly pooled map) against a full
  convolution followed by a 2x2 max-pool, ecp's own and PyTorch's;
- PyTorch's convolution, convolution + max-pool and the stride-2 convolution of the shifted input
  (what Easy Convolution computes), forward and backward through autograd, when PyTorch is
  installed.

Before timing a shape it checks the numbers (full convolution against a NumPy reference, Easy
Convolution against the full one, backward passes through the adjoint identities, and against
PyTorch when present), so it never reports the speed of wrong results.

FLOPs: a convolution producing ``N*O*Ho*Wo`` outputs from ``C*kh*kw`` taps costs
``2*N*O*Ho*Wo*C*kh*kw``; Easy Convolution produces ``Ho//2 * Wo//2`` outputs per plane. A backward
pass (input and weight gradients) costs twice its forward pass.

The record :func:`run_bench` returns (and ``--json`` writes) has the keys

``ecp_version``, ``created`` (UTC, ISO 8601), ``config`` (``dtype``, ``threads``, ``repeats``,
``warmup``, ``mode``, ``gemm_size``, ``torch_requested``, ``statistic``), ``system`` (``cpu_model``,
``cpu_count``, ``platform``, ``python``, ``numpy``, ``scipy``, ``torch`` (None without it),
``threadpoolctl``, ``openmp_enabled``, ``conv_direct_kernels`` (True where the AVX-512 fused-packing
kernels are available and enabled), ``ecp_num_threads``, ``torch_num_threads``,
``threadpool_info``, ``loadavg`` and ``loadavg_end`` (1/5/15-minute load at the start and the end),
``env`` with ``OPENBLAS_CORETYPE``, ``OPENBLAS_L2_SIZE``, ``OMP_NUM_THREADS``,
``OPENBLAS_NUM_THREADS``), ``gemm`` (``m``, ``k``, ``n``, ``dtype``, ``flops``, ``ecp_blas`` and
``numpy``, each a timing with ``gflops``) and ``shapes``: one record per shape with ``name``,
``x_shape``, ``w_shape``, ``padding``, ``full_shape``, ``easy_shape``, ``flops``, ``kernels`` (``forward``,
``easy_forward``: ``"direct"``, ``"direct-rows"`` or ``"im2col+blas"``; ``backward``: ``"direct"``,
``"im2col+blas"`` or ``"direct dx + im2col+blas dW"``: the kernels ecp picked), ``verification``,
``timings`` (name -> ``{"median_ms", "min_ms", "runs_ms"}``), ``gflops``, ``pct_of_gemm``,
``speedup`` (from the medians), ``speedup_min`` (from the minima), ``memory_mb``. Timing names:
``full_forward``, ``easy_forward``, ``full_backward``, ``easy_backward``,
``ecp_conv_maxpool_forward``, ``ecp_conv_maxpool_backward`` and, with PyTorch,
``torch_conv_*``, ``torch_conv_maxpool_*``, ``torch_stride2_*`` (``*`` = forward / backward).
"""
import contextlib
import datetime
import gc
import json
import os
import platform
import shutil
import sys
import time
import tracemalloc

import numpy as np

from .. import __version__
from .. import conv as _ecp_conv
from .._threads import get_num_threads, num_threads
from .._validation import check_int
from ..conv import (
    clear_scratch,
    conv2d,
    conv2d_backward,
    conv2d_output_shape,
    easy_conv2d,
    easy_conv2d_backward,
)
from ..pool import max_pool2d, max_pool2d_backward

__all__ = ["SHAPES", "BenchShape", "parse_shapes", "run_bench", "format_report", "add_parser"]

# name -> (x shape (N, C, H, W), w shape (O, C, kh, kw), padding)
SHAPES = {
    # the paper's MNIST network (LeNet-like): conv1 on 28x28 digits, conv2 on the pooled 12x12 maps
    "conv1": ((50, 1, 28, 28), (20, 1, 5, 5), 0),
    "conv2": ((50, 20, 12, 12), (32, 20, 5, 5), 0),
    # a VGG-like 3x3 layer on 56x56 maps
    "vgg": ((16, 64, 56, 56), (64, 64, 3, 3), 1),
    # small: per-call overhead dominates
    "small": ((2, 3, 8, 8), (8, 3, 3, 3), 1),
}
DEFAULT_SHAPES = ("conv1", "conv2", "vgg", "small")
DEFAULT_REPEATS = 15
DEFAULT_WARMUP = 2
DEFAULT_GEMM_SIZE = 2048
GEMM_MAX_REPEATS = 7  # the GEMM reference costs ~0.1 s a call; its median settles fast
ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# verification tolerance: max |got - expected| / max |expected|
_RTOL = {"float32": 1e-3, "float64": 1e-9}
_CUSTOM_FORMAT = "N,C,H,W:O,kh,kw[:pad]"


class VerificationError(RuntimeError):
    """A kernel returned wrong numbers: the benchmark refuses to time it."""


class BenchShape:
    """One layer shape to benchmark: input ``x_shape`` (N, C, H, W), weights ``w_shape``
    (O, C, kh, kw) and zero ``padding``."""

    __slots__ = ("name", "x_shape", "w_shape", "padding")

    def __init__(self, name, x_shape, w_shape, padding):
        self.name = name
        self.x_shape = tuple(int(v) for v in x_shape)
        self.w_shape = tuple(int(v) for v in w_shape)
        self.padding = int(padding)

    @property
    def full_shape(self):
        return conv2d_output_shape(self.x_shape, self.w_shape, self.padding)

    @property
    def easy_shape(self):
        n, o, ho, wo = self.full_shape
        return (n, o, ho // 2, wo // 2)

    def flops(self):
        """Forward / backward FLOPs of the full and the easy convolution."""
        taps = self.w_shape[1] * self.w_shape[2] * self.w_shape[3]
        full = 2 * int(np.prod(self.full_shape)) * taps
        easy = 2 * int(np.prod(self.easy_shape)) * taps
        return {"full_forward": full, "easy_forward": easy,
                "full_backward": 2 * full, "easy_backward": 2 * easy}

    def describe(self):
        return (f"x {self.x_shape}, w {self.w_shape}, padding {self.padding} -> full "
                f"{self.full_shape}, easy / pooled {self.easy_shape}")

    def __repr__(self):
        return f"BenchShape({self.name!r}, {self.x_shape}, {self.w_shape}, {self.padding})"

    def __eq__(self, other):
        return isinstance(other, BenchShape) and (
            (self.name, self.x_shape, self.w_shape, self.padding)
            == (other.name, other.x_shape, other.w_shape, other.padding))

    def __hash__(self):
        return hash((self.name, self.x_shape, self.w_shape, self.padding))


def _parse_ints(text, count, what, spec, option):
    parts = text.split(",")
    if len(parts) != count:
        raise ValueError(f"{option}: {what} of {spec!r} must be {count} comma-separated integers, "
                         f"got {text!r} (format {_CUSTOM_FORMAT})")
    try:
        values = [int(p.strip()) for p in parts]
    except ValueError:
        raise ValueError(f"{option}: {what} of {spec!r} must be integers, got {text!r} "
                         f"(format {_CUSTOM_FORMAT})") from None
    return values


def parse_shape(spec, option="--shapes"):
    """One shape: a name from :data:`SHAPES` or ``N,C,H,W:O,kh,kw[:pad]`` (kernel ``O, C, kh, kw``).

    Raises ValueError naming ``option`` when the text is neither, or the layer cannot be
    benchmarked (non-positive sizes, kernel larger than the padded input, output smaller than 2x2).
    """
    if isinstance(spec, BenchShape):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"{option}: each shape must be a name or a string {_CUSTOM_FORMAT}, "
                        f"got {type(spec).__name__} {spec!r}")
    text = spec.strip()
    if text in SHAPES:
        return BenchShape(text, *SHAPES[text])
    if ":" not in text:
        raise ValueError(f"{option}: unknown shape {spec!r}: expected one of "
                         f"{', '.join(SHAPES)} or a custom layer {_CUSTOM_FORMAT}")
    fields = text.split(":")
    if len(fields) not in (2, 3):
        raise ValueError(f"{option}: custom shape {spec!r} must look like {_CUSTOM_FORMAT}, "
                         f"e.g. 8,16,32,32:32,3,3:1")
    n, c, h, w = _parse_ints(fields[0], 4, "the input N,C,H,W", spec, option)
    o, kh, kw = _parse_ints(fields[1], 3, "the kernel O,kh,kw", spec, option)
    pad = 0
    if len(fields) == 3:
        (pad,) = _parse_ints(fields[2], 1, "the padding", spec, option)
    if min(n, c, h, w, o, kh, kw) < 1:
        raise ValueError(f"{option}: every size of custom shape {spec!r} must be >= 1, got "
                         f"N,C,H,W = {n},{c},{h},{w} and O,kh,kw = {o},{kh},{kw}")
    if pad < 0:
        raise ValueError(f"{option}: the padding of custom shape {spec!r} must be >= 0, got {pad}")
    ho, wo = h + 2 * pad - kh + 1, w + 2 * pad - kw + 1
    if ho < 2 or wo < 2:
        raise ValueError(f"{option}: custom shape {spec!r} gives a {ho}x{wo} convolution output "
                         f"(input {h}x{w}, kernel {kh}x{kw}, padding {pad}); Easy Convolution and "
                         "2x2 pooling need at least 2x2")
    return BenchShape(text, (n, c, h, w), (o, c, kh, kw), pad)


def parse_shapes(specs, option="--shapes"):
    """A list of :class:`BenchShape` from names / custom specs.

    Each item may also hold several names joined by commas (``"conv1,conv2"``); a custom shape
    (it contains ``:``) stands alone. Duplicates are dropped, order is kept.
    """
    if specs is None:
        specs = DEFAULT_SHAPES
    if isinstance(specs, (str, BenchShape)):
        specs = [specs]
    out = []
    for spec in specs:
        if isinstance(spec, str) and ":" not in spec and "," in spec:
            items = [s for s in spec.split(",") if s.strip()]
        else:
            items = [spec]
        for item in items:
            shape = parse_shape(item, option)
            if shape not in out:
                out.append(shape)
    if not out:
        raise ValueError(f"{option}: no shape given (names: {', '.join(SHAPES)}, or {_CUSTOM_FORMAT})")
    return out


# --------------------------------------------------------------------------------------------
# environment


def _import_torch():
    """PyTorch if it imports, else None (it is optional)."""
    try:
        import torch
    except (ImportError, OSError):
        return None
    return torch


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _system_info(torch):
    import scipy
    import threadpoolctl

    from .._kernels._openmp import openmp_enabled

    info = threadpoolctl.threadpool_info()
    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "torch": torch.__version__ if torch is not None else None,
        "threadpoolctl": threadpoolctl.__version__,
        "openmp_enabled": bool(openmp_enabled()),
        "conv_direct_kernels": bool(_ecp_conv.DIRECT),
        "ecp_num_threads": get_num_threads(),
        "torch_num_threads": torch.get_num_threads() if torch is not None else None,
        "threadpool_info": [{k: v for k, v in entry.items()} for entry in info],
        "env": {name: os.environ.get(name) for name in ENV_VARS},
        "loadavg": _loadavg(),
    }


def _loadavg():
    """1-, 5- and 15-minute load averages (None where the OS has none): how busy the machine was."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _blas_summary(system):
    """One line per BLAS library, e.g. "NumPy: openblas 0.3.31 (SkylakeX, pthreads, 2 threads)"."""
    lines = []
    for entry in system["threadpool_info"]:
        if entry.get("user_api") != "blas":
            continue
        path = entry.get("filepath", "")
        folder = os.path.basename(os.path.dirname(path)).lower()  # e.g. scipy.libs, numpy.libs
        owner = ("SciPy (ecp's kernels)" if folder.startswith("scipy") else "NumPy"
                 if folder.startswith("numpy") else "PyTorch" if "torch" in folder
                 else os.path.basename(path))
        extra = ", ".join(str(v) for v in (entry.get("architecture"), entry.get("threading_layer"))
                          if v)
        lines.append(f"{owner}: {entry.get('internal_api')} {entry.get('version')} "
                     f"({extra}{', ' if extra else ''}{entry.get('num_threads')} threads)")
    return lines


@contextlib.contextmanager
def _torch_threads(torch, n):
    if torch is None:
        yield
        return
    saved = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


# --------------------------------------------------------------------------------------------
# measuring


def _timing(seconds):
    ms = [s * 1e3 for s in seconds]
    return {"median_ms": float(np.median(ms)), "min_ms": float(min(ms)), "runs_ms": ms}


def _time_round_robin(calls, repeats, warmup, progress=None, label=""):
    """Time each callable ``repeats`` times after ``warmup`` untimed calls, interleaved.

    Interleaving spreads the machine's noise over every contender instead of penalising
    whichever happened to run during a busy spell; the order rotates each round so that no
    contender always runs first (after the others evicted its data from the caches).
    Returns name -> list of seconds.
    """
    times = {name: [] for name in calls}
    order = list(calls.items())
    for _ in range(warmup):
        for fn in calls.values():
            fn()
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(repeats):
            if progress is not None:
                progress(f"{label}: timing run {r + 1}/{repeats} of {len(calls)} kernels",
                         transient=True)
            for name, fn in order[r % len(order):] + order[:r % len(order)]:
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    finally:
        if gc_was_enabled:
            gc.enable()
    return times


def _peak_extra_mb(fn):
    """Peak NumPy/Python memory allocated during ``fn()`` beyond what existed before (MB).

    Includes the outputs and every scratch buffer the kernels take from NumPy (their per-thread
    scratch cache is emptied first, so the call allocates it anew); excludes the inputs (they
    exist before the call).
    """
    clear_scratch()
    gc.collect()
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = fn()
        peak = tracemalloc.get_traced_memory()[1]
        del result
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return max(peak - base, 0) / 2**20


def _measure_gemm(size, dtype, repeats, warmup, progress):
    from .._kernels._blas import _gemm_for_tests

    m, k, n = size
    rng = np.random.default_rng(1)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    got = _gemm_for_tests(a, b)
    ref = a @ b
    err = _rel_err(got, ref)
    if err > _RTOL[np.dtype(dtype).name]:
        raise VerificationError(f"ecp's BLAS wrapper disagrees with NumPy on a {m}x{k}x{n} GEMM "
                                f"(relative error {err:.2e})")
    label = f"{np.dtype(dtype).name} GEMM {m}x{k}x{n}"
    if progress is not None:
        progress(f"{label}: measuring the reference rate")
    runs = max(3, min(repeats, GEMM_MAX_REPEATS))
    times = _time_round_robin({"ecp_blas": lambda: _gemm_for_tests(a, b), "numpy": lambda: a @ b},
                              runs, 1, progress, label)
    flops = 2 * m * k * n
    out = {"m": m, "k": k, "n": n, "dtype": np.dtype(dtype).name, "flops": flops, "runs": runs}
    for name, secs in times.items():
        t = _timing(secs)
        t["gflops"] = flops / (t["median_ms"] * 1e-3) / 1e9
        out[name] = t
    return out


# --------------------------------------------------------------------------------------------
# verification


def _rel_err(got, ref):
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        return float("inf")
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    diff = float(np.max(np.abs(got - ref))) if ref.size else 0.0
    if not np.isfinite(diff):
        return float("inf")
    return diff / scale if scale > 0 else diff


def _reference_sample(x, w, b, padding, n):
    """Direct NumPy convolution of sample ``n`` (float64): (O, Ho, Wo)."""
    xp = np.pad(x[n].astype(np.float64), ((0, 0), (padding, padding), (padding, padding)))
    win = np.lib.stride_tricks.sliding_window_view(xp, w.shape[2:], axis=(1, 2))  # C,Ho,Wo,kh,kw
    y = np.tensordot(w.astype(np.float64), win, axes=([1, 2, 3], [0, 3, 4]))
    return y + b.astype(np.float64)[:, None, None]


def _scatter_easy(dy_easy, full_shape, oy, ox):
    hq, wq = dy_easy.shape[2:]
    full = np.zeros(full_shape, dtype=dy_easy.dtype)
    full[:, :, oy:oy + 2 * hq:2, ox:ox + 2 * wq:2] = dy_easy
    return full


def _verify(shape, x, w, b, mode, torch_ctx, rng):
    """Check the ecp kernels (and the PyTorch rows) on this shape; raise VerificationError.

    Returns the errors found (max |got - expected| / max |expected|) by check name.
    """
    p = shape.padding
    oy, ox = divmod(mode, 2)
    hq, wq = shape.easy_shape[2:]
    tol = _RTOL[x.dtype.name]
    errors = {}

    def check(name, err):
        errors[name] = float(err)
        if not err <= tol:
            raise VerificationError(
                f"{shape.name} ({shape.describe()}, {x.dtype}): {name} is wrong: relative error "
                f"{err:.3g} > {tol:g}. The benchmark does not time wrong results.")

    full = conv2d(x, w, b, padding=p)
    for n in sorted({0, x.shape[0] - 1}):
        check(f"conv2d forward vs NumPy reference (sample {n})",
              _rel_err(full[n], _reference_sample(x, w, b, p, n)))
    easy = easy_conv2d(x, w, b, mode=mode, padding=p)
    check("easy_conv2d forward vs conv2d[..., K//2::2, K%2::2]",
          _rel_err(easy, full[:, :, oy::2, ox::2][:, :, :hq, :wq]))

    # backward: adjoint identities <conv(x, w), g> == <x, dx> == <w, dw>, db == sum g.
    # g leans on y so that the identities are far above rounding noise.
    y0 = conv2d(x, w, padding=p).astype(np.float64)
    g64 = y0 + rng.standard_normal(y0.shape) * (np.std(y0) + 1e-30)
    g = g64.astype(x.dtype)
    dx, dw, db = conv2d_backward(g, x, w, padding=p)
    g64 = g.astype(np.float64)
    scale = float(np.sum(np.abs(y0 * g64))) or 1.0
    s = float(np.vdot(y0, g64))
    check("conv2d backward dx (adjoint identity)",
          abs(float(np.vdot(x.astype(np.float64), dx.astype(np.float64))) - s) / scale)
    check("conv2d backward dw (adjoint identity)",
          abs(float(np.vdot(w.astype(np.float64), dw.astype(np.float64))) - s) / scale)
    check("conv2d backward db == sum of dy", _rel_err(db, g64.sum(axis=(0, 2, 3))))
    ge = rng.standard_normal(shape.easy_shape).astype(x.dtype)
    edx, edw, edb = easy_conv2d_backward(ge, x, w, mode=mode, padding=p)
    fdx, fdw, fdb = conv2d_backward(_scatter_easy(ge, shape.full_shape, oy, ox), x, w, padding=p)
    check("easy_conv2d backward dx vs conv2d backward", _rel_err(edx, fdx))
    check("easy_conv2d backward dw vs conv2d backward", _rel_err(edw, fdw))
    check("easy_conv2d backward db vs conv2d backward", _rel_err(edb, fdb))

    if torch_ctx is not None:
        t = torch_ctx
        check("PyTorch conv2d vs ecp", _rel_err(t["conv_out"].detach().numpy(), full))
        pooled, _ = max_pool2d(full, return_indices=True)
        check("PyTorch conv2d + max_pool2d vs ecp",
              _rel_err(t["conv_maxpool_out"].detach().numpy(), pooled))
        check("PyTorch stride-2 conv vs ecp easy_conv2d",
              _rel_err(t["stride2_out"].detach().numpy()[:, :, :hq, :wq], easy))
        tdx, tdw, tdb = (v.numpy() for v in t["torch"].autograd.grad(
            t["conv_out"], t["conv_inputs"], t["torch"].from_numpy(g), retain_graph=True))
        check("PyTorch conv2d backward dx vs ecp", _rel_err(tdx, dx))
        check("PyTorch conv2d backward dw vs ecp", _rel_err(tdw, dw))
        check("PyTorch conv2d backward db vs ecp", _rel_err(tdb, db))
    return errors


# --------------------------------------------------------------------------------------------
# one shape


def _torch_setup(torch, shape, x, w, b, mode):
    """Leaf tensors and autograd graphs for the PyTorch rows (built once, outside the timing)."""
    import torch.nn.functional as F

    p = shape.padding
    oy, ox = divmod(mode, 2)

    def leaves(*arrays):
        return tuple(torch.from_numpy(a.copy()).requires_grad_(True) for a in arrays)

    ctx = {"torch": torch, "F": F}
    xt, wt, bt = (torch.from_numpy(a) for a in (x, w, b))
    # stride-2 conv of the input padded then shifted by (K//2, K%2): what easy_conv2d computes
    xs = np.ascontiguousarray(np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))[:, :, oy:, ox:])
    xst = torch.from_numpy(xs)
    ctx["fwd"] = {
        "torch_conv_forward": lambda: F.conv2d(xt, wt, bt, padding=p),
        "torch_conv_maxpool_forward": lambda: F.max_pool2d(F.conv2d(xt, wt, bt, padding=p), 2),
        "torch_stride2_forward": lambda: F.conv2d(xst, wt, bt, stride=2),
    }
    c_in = leaves(x, w, b)
    ctx["conv_inputs"] = c_in
    ctx["conv_out"] = F.conv2d(c_in[0], c_in[1], c_in[2], padding=p)
    m_in = leaves(x, w, b)
    ctx["conv_maxpool_out"] = F.max_pool2d(F.conv2d(m_in[0], m_in[1], m_in[2], padding=p), 2)
    s_in = leaves(xs, w, b)
    ctx["stride2_out"] = F.conv2d(s_in[0], s_in[1], s_in[2], stride=2)
    rng = np.random.default_rng(2)
    grads = {k: torch.from_numpy(rng.standard_normal(tuple(ctx[k].shape)).astype(x.dtype))
             for k in ("conv_out", "conv_maxpool_out", "stride2_out")}
    grad = torch.autograd.grad
    ctx["bwd"] = {
        "torch_conv_backward": lambda: grad(ctx["conv_out"], c_in, grads["conv_out"],
                                            retain_graph=True),
        "torch_conv_maxpool_backward": lambda: grad(ctx["conv_maxpool_out"], m_in,
                                                    grads["conv_maxpool_out"], retain_graph=True),
        "torch_stride2_backward": lambda: grad(ctx["stride2_out"], s_in, grads["stride2_out"],
                                               retain_graph=True),
    }
    return ctx


def kernels_used(shape, dtype):
    """Which kernel ecp runs for each pass of a layer shape (ecp.conv picks the direct AVX-512
    kernels where they measured faster, else im2col + BLAS)."""
    fwd = {0: "im2col+blas", 1: "direct", 2: "direct-rows"}
    full_wq = shape.full_shape[3]
    return {"forward": fwd[_ecp_conv._forward_kernel(shape.w_shape, full_wq, dtype)],
            "easy_forward": fwd[_ecp_conv._forward_kernel(shape.w_shape, full_wq // 2, dtype)],
            "backward": {"direct": "direct", "blas": "im2col+blas",
                         "split": "direct dx + im2col+blas dW"}[_ecp_conv._backward_kernel(shape.w_shape)]}


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
    torch_ctx = _torch_setup(torch, shape, x, w, b, mode) if torch is not None else None
    errors = _verify(shape, x, w, b, mode, torch_ctx, rng)

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
    if torch_ctx is not None:
        calls.update(torch_ctx["fwd"])
        calls.update(torch_ctx["bwd"])

    times = _time_round_robin(calls, repeats, warmup, progress, label)
    timings = {name: _timing(secs) for name, secs in times.items()}

    mem = None
    if memory:
        if progress is not None:
            progress(f"{label}: measuring peak memory")
        mem = {name: _peak_extra_mb(fn) for name, fn in ecp_calls.items()}
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
        "verification": {"passed": True, "tolerance": _RTOL[dtype.name], "errors": errors},
        "timings": timings,
        "gflops": gflops,
        "pct_of_gemm": pct,
        "speedup": speedups(med),
        "speedup_min": speedups(mins),
        "memory_mb": mem,
    }


# --------------------------------------------------------------------------------------------
# the API


def _gemm_dims(size, option="gemm_size"):
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


def run_bench(shapes=None, dtype="float32", threads=None, repeats=DEFAULT_REPEATS, *,
              warmup=DEFAULT_WARMUP, mode=3, gemm_size=DEFAULT_GEMM_SIZE, use_torch=True,
              memory=True, progress=None, on_shape=None):
    """Benchmark the convolution kernels; return the record described in the module docstring.

    Parameters
    ----------
    shapes : list of str or BenchShape, or None
        Names from :data:`SHAPES` (``conv1``, ``conv2``, ``vgg``, ``small``) or custom
        ``"N,C,H,W:O,kh,kw[:pad]"``; None: all four named shapes.
    dtype : ``"float32"`` or ``"float64"``
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
    gemm = _gemm_dims(gemm_size)

    torch = _import_torch() if use_torch else None
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
    with num_threads(threads), _torch_threads(torch, threads):
        record["system"] = _system_info(torch)
        record["gemm"] = _measure_gemm(gemm, dtype, repeats, warmup, progress)
        rate = record["gemm"]["ecp_blas"]["gflops"]
        record["shapes"] = []
        for shape in shape_list:
            rec = _bench_shape(shape, dtype, mode, repeats, warmup, torch, rate, memory, progress)
            record["shapes"].append(rec)
            if on_shape is not None:
                on_shape(rec, record)
    record["system"]["loadavg_end"] = _loadavg()
    return record


# --------------------------------------------------------------------------------------------
# text output


def _num(value, suffix=""):
    """Three significant digits or more: 149, 23.2, 1.71, 0.214, 0.0186."""
    if value is None:
        return "-"
    a = abs(value)
    digits = 0 if a >= 100 else 1 if a >= 10 else 2 if a >= 1 else 3 if a >= 0.1 else 4
    return f"{value:.{digits}f}{suffix}"


def _ratio(value):
    return "-" if value is None else f"{value:.2f}x"


def format_header(record):
    """The lines printed before the per-shape tables."""
    cfg, sysinfo, gemm = record["config"], record["system"], record["gemm"]
    gemm_name = "SGEMM" if gemm["dtype"] == "float32" else "DGEMM"
    lines = [
        f"ecp {record['ecp_version']} bench: {cfg['dtype']}, {cfg['threads']} thread(s) "
        f"(ecp OpenMP {'on' if sysinfo['openmp_enabled'] else 'OFF'}, ecp threads "
        f"{sysinfo['ecp_num_threads']}, direct AVX-512 conv kernels "
        f"{'on' if sysinfo.get('conv_direct_kernels') else 'off'}), "
        f"mode K={cfg['mode']}; ms: median (min) of "
        f"{cfg['repeats']} runs after {cfg['warmup']} warm-up, contenders interleaved",
        f"CPU: {sysinfo['cpu_model']} ({sysinfo['cpu_count']} cores); NumPy {sysinfo['numpy']}, "
        f"SciPy {sysinfo['scipy']}, PyTorch {sysinfo['torch'] or 'not installed'}"
        + (f"; load average {sysinfo['loadavg'][0]:.2f} at the start" if sysinfo.get("loadavg")
           else ""),
    ]
    load, cores = sysinfo.get("loadavg"), sysinfo.get("cpu_count") or 1
    if load and load[0] > 0.5 * cores:
        lines.append(f"warning: the machine is busy (load {load[0]:.2f} on {cores} cores): "
                     "threads wait for time slices and timings are noisy")
    env = ", ".join(f"{k}={v}" for k, v in sysinfo["env"].items() if v is not None)
    lines.append("BLAS: " + "; ".join(_blas_summary(sysinfo)) + (f" [{env}]" if env else ""))
    lines.append(
        f"{gemm_name} {gemm['m']}x{gemm['k']}x{gemm['n']}: ecp's BLAS (SciPy) "
        f"{gemm['ecp_blas']['gflops']:.1f} GFLOP/s, NumPy {gemm['numpy']['gflops']:.1f} GFLOP/s "
        f"(median of {gemm['runs']}); '% {gemm_name}' below is of ecp's BLAS rate")
    return lines


def format_shape(rec, record):
    """The table of one shape: rows of quantities, columns forward / backward."""
    tim = rec["timings"]
    g, pct, sp, mem = rec["gflops"], rec["pct_of_gemm"] or {}, rec["speedup"], rec["memory_mb"]
    gemm_name = "SGEMM" if record["gemm"]["dtype"] == "float32" else "DGEMM"

    def ms(prefix):
        return [_num(tim[f"{prefix}_{d}"]["median_ms"]) + f" ({_num(tim[f'{prefix}_{d}']['min_ms'])})"
                for d in ("forward", "backward")]

    def pair(values, kind, fmt):
        return [fmt(values.get(f"{kind}_{d}")) for d in ("forward", "backward")]

    def speed(key):
        return [_ratio(sp[f"{key}_{d}"]) for d in ("forward", "backward")]

    rows = [
        ("full conv", "ms", *ms("full")),
        ("easy conv (ECP layer)", "ms", *ms("easy")),
        ("easy speedup over full", "", _ratio(sp["forward"]), _ratio(sp["backward"])),
        ("full conv", "GFLOP/s", *pair(g, "full", _num)),
        ("easy conv", "GFLOP/s", *pair(g, "easy", _num)),
        ("full conv", f"% {gemm_name}", *pair(pct, "full", lambda v: _num(v, "%"))),
        ("easy conv", f"% {gemm_name}", *pair(pct, "easy", lambda v: _num(v, "%"))),
    ]
    if mem is not None:
        rows += [
            ("full conv peak memory", "MB", *pair(mem, "full", _num)),
            ("easy conv peak memory", "MB", *pair(mem, "easy", _num)),
            ("easy / full memory", "", *pair(mem, "ratio", _ratio)),
        ]
    rows += [
        ("ecp conv + max-pool", "ms", *ms("ecp_conv_maxpool")),
        ("ECP layer speedup", "vs ecp conv+mp", *speed("layer_vs_ecp_conv_maxpool")),
    ]
    if "torch_conv_forward" in tim:
        rows += [
            ("PyTorch conv", "ms", *ms("torch_conv")),
            ("PyTorch conv + max-pool", "ms", *ms("torch_conv_maxpool")),
            ("PyTorch stride-2 conv", "ms", *ms("torch_stride2")),
            ("ECP layer speedup", "vs torch conv+mp", *speed("layer_vs_torch_conv_maxpool")),
            ("easy conv speedup", "vs torch stride-2", *speed("easy_vs_torch_stride2")),
        ]
    head = (f"{rec['name']}: x {tuple(rec['x_shape'])}, w {tuple(rec['w_shape'])}, padding "
            f"{rec['padding']} -> full {tuple(rec['full_shape'])}, easy {tuple(rec['easy_shape'])}"
            f"  [{record['config']['dtype']}, kernels: forward {rec['kernels']['forward']} (easy "
            f"{rec['kernels']['easy_forward']}), backward {rec['kernels']['backward']}; results verified]")
    lw = max(len(r[0]) for r in rows)
    uw = max(len(r[1]) for r in rows)
    cw = max([len("backward")] + [len(c) for r in rows for c in r[2:]])
    lines = [head, f"  {'':<{lw}}  {'':<{uw}}  {'forward':>{cw}}  {'backward':>{cw}}"]
    for label, unit, fwd, bwd in rows:
        lines.append(f"  {label:<{lw}}  {unit:<{uw}}  {fwd:>{cw}}  {bwd:>{cw}}")
    return lines


def format_summary(record):
    """One line per shape: the speedups side by side."""
    has_torch = any("torch_conv_forward" in r["timings"] for r in record["shapes"])
    cols = ["easy/full fwd", "easy/full bwd", "layer vs ecp c+mp fwd", "bwd"]
    keys = ["forward", "backward", "layer_vs_ecp_conv_maxpool_forward",
            "layer_vs_ecp_conv_maxpool_backward"]
    if has_torch:
        cols += ["layer vs torch c+mp fwd", "bwd"]
        keys += ["layer_vs_torch_conv_maxpool_forward", "layer_vs_torch_conv_maxpool_backward"]
    nw = max([len("shape")] + [len(r["name"]) for r in record["shapes"]]) + len(" (min)")
    lines = ["summary: speedups (x, higher is faster for ecp's easy conv / ECP layer), from the "
             "median times and from the minimum times (less sensitive to a busy machine)",
             "  " + f"{'shape':<{nw}}" + "".join(f"  {c:>{max(len(c), 6)}}" for c in cols)]
    for r in record["shapes"]:
        for stat, label in (("speedup", r["name"]), ("speedup_min", f"{r['name']} (min)")):
            lines.append("  " + f"{label:<{nw}}" + "".join(
                f"  {_ratio(r[stat][k]):>{max(len(c), 6)}}" for c, k in zip(cols, keys)))
    return lines


def format_report(record):
    """The whole text report of a finished run."""
    lines = format_header(record) + [""]
    for rec in record["shapes"]:
        lines += format_shape(rec, record) + [""]
    return "\n".join(lines + format_summary(record))


# --------------------------------------------------------------------------------------------
# command line


class _Progress:
    """Progress on stderr: one rewriting line on a terminal, plain lines otherwise."""

    def __init__(self, stream=None, enabled=True):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(enabled and isatty is not None and isatty())
        self._shown = False

    def __call__(self, message, transient=False):
        if not self.enabled:
            return
        if self.tty:
            width = shutil.get_terminal_size((80, 20)).columns
            self.stream.write("\r\033[K" + f"ecp bench: {message}"[:max(width - 1, 10)])
            self._shown = True
        elif not transient:
            self.stream.write(f"ecp bench: {message}\n")
        self.stream.flush()

    def clear(self):
        if self.tty and self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False


def _positive(text, option, minimum=1):
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise ValueError(f"{option} must be an integer >= {minimum}, got {text!r}") from None
    if value < minimum:
        raise ValueError(f"{option} must be an integer >= {minimum}, got {value}")
    return value


def _write_json(path, record):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(record, fh, indent=1, default=_json_default)
        fh.write("\n")
    os.replace(tmp, path)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _run(args):
    shapes = parse_shapes(args.shapes, option="--shapes")
    threads = _positive(args.threads, "--threads") if args.threads is not None else None
    repeats = _positive(args.repeats, "--repeats")
    warmup = _positive(args.warmup, "--warmup", minimum=0)
    gemm = _gemm_dims(args.gemm_size, option="--gemm-size")
    if args.json is not None:
        parent = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(parent):
            raise ValueError(f"--json: the folder {parent!r} does not exist")
        if os.path.isdir(args.json):
            raise ValueError(f"--json: {args.json!r} is a folder, expected a file path")
    progress = _Progress(enabled=not args.quiet)
    printed_header = []

    def on_shape(rec, record):
        progress.clear()
        if not printed_header:
            print("\n".join(format_header(record)) + "\n")
            printed_header.append(True)
        print("\n".join(format_shape(rec, record)) + "\n", flush=True)

    try:
        record = run_bench(shapes, args.dtype, threads, repeats, warmup=warmup, mode=args.mode,
                           gemm_size=gemm, use_torch=not args.no_torch, memory=not args.no_memory,
                           progress=progress, on_shape=on_shape)
    except VerificationError as exc:
        progress.clear()
        print(f"ecp bench: error: {exc}", file=sys.stderr)
        return 1
    finally:
        progress.clear()
    print("\n".join(format_summary(record)))
    if args.json is not None:
        _write_json(args.json, record)
        print(f"\nwrote {args.json}")
    return 0


def add_parser(subparsers):
    """Add the ``bench`` subcommand to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "bench",
        help="time the convolution kernels against SGEMM and PyTorch",
        description=(
            "Time full convolution and Easy Convolution (forward and backward), the ECP layer vs "
            "convolution + max-pool, and PyTorch's equivalents when installed, per layer shape; "
            "report ms, speedups, GFLOP/s, % of the SGEMM rate measured in the same run, and "
            "peak memory. Results are checked before they are timed."),
    )
    p.add_argument("--shapes", nargs="+", default=list(DEFAULT_SHAPES), metavar="SHAPE",
                   help=f"layer shapes: {', '.join(SHAPES)} (also comma-joined) or custom "
                        f"{_CUSTOM_FORMAT}, e.g. 8,16,32,32:32,3,3:1 (default: all four names)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--threads", metavar="N", default=None,
                   help="threads for ecp, the BLAS and PyTorch (default: ecp.get_num_threads())")
    p.add_argument("--repeats", metavar="R", default=DEFAULT_REPEATS,
                   help=f"timed runs per kernel, median reported (default {DEFAULT_REPEATS})")
    p.add_argument("--warmup", metavar="W", default=DEFAULT_WARMUP,
                   help=f"untimed calls first (default {DEFAULT_WARMUP})")
    p.add_argument("--mode", type=int, choices=range(4), default=3, metavar="K",
                   help="mode K of Easy Convolution, 0..3 (default 3)")
    p.add_argument("--gemm-size", default=str(DEFAULT_GEMM_SIZE), metavar="M[,K,N]",
                   help=f"GEMM measured for the reference rate (default {DEFAULT_GEMM_SIZE})")
    p.add_argument("--json", metavar="PATH", default=None,
                   help="also write a machine-readable record (timings, BLAS and thread setup)")
    p.add_argument("--no-torch", action="store_true", help="leave out the PyTorch rows")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line on stderr")
    p.set_defaults(func=_run)
    return p
