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
``threadpoolctl``, ``openmp_enabled``, ``openmp`` (:func:`ecp.openmp_info`: how the OpenMP threads
wait and who chose it), ``deterministic`` (whether the plan ignores the core count),
``conv_direct_kernels`` (True where the fused-packing
kernels are available -- ``kernel_isa`` is not ``"generic"`` -- and enabled), ``ecp_num_threads``,
``blas_isolation`` (``"private"``,
``"shared-locked"`` or ``"shared"``: the BLAS the conv kernels' GEMMs run on, see ``ecp._blas_instance``),
``torch_num_threads``,
``threadpool_info``, ``kernel_isa`` (:func:`ecp.kernel_isa`), ``isa_flags`` (which of avx512f, avx2 the
CPU has), ``loadavg`` and
``loadavg_end`` (1/5/15-minute load at the start and the end),
``env`` with ``OPENBLAS_CORETYPE``, ``OPENBLAS_L2_SIZE``, ``OMP_NUM_THREADS``,
``OPENBLAS_NUM_THREADS``, ``ECP_ISA``, ``ECP_CONV_KERNEL``, ``ATEN_CPU_CAPABILITY``,
``ONEDNN_MAX_CPU_ISA``), ``gemm`` (``m``, ``k``, ``n``, ``dtype``, ``flops``, ``ecp_blas`` and
``numpy``, each a timing with ``gflops``) and ``shapes``: one record per shape with ``name``,
``x_shape``, ``w_shape``, ``padding``, ``full_shape``, ``easy_shape``, ``flops``, ``kernels`` (``forward``,
``easy_forward``: ``"direct"``, ``"direct-rows"``, ``"winograd"`` (for the easy forward: the polyphase kernel of
stride-2 3x3 layers) or ``"im2col+blas"``;
``backward``: ``"direct"``, ``"im2col+blas"``, ``"direct dx + im2col+blas dW"`` or ``"winograd"``:
the kernels ecp picked), ``verification``,
``timings`` (name -> ``{"median_ms", "min_ms", "runs_ms"}``), ``gflops``, ``pct_of_gemm`` (None
when the GEMM rate is zero), ``speedup`` and ``speedup_min`` (ratios from the median and from the
minimum times; None where a contender is missing) and ``memory_mb`` (None with ``memory=False``).

The modules, one job each: :mod:`.shapes` (what to measure), :mod:`.timing` (round-robin timing,
peak memory), :mod:`.verify` (checking the numbers; the float64 reference), :mod:`.peers`
(PyTorch), :mod:`.run` (the SGEMM yardstick, the record), :mod:`.report` (the text tables),
:mod:`.contention` (``ecp bench --contention``: 1 vs the default threads, idle, beside a busy process
and after a NumPy matrix product; its record is described there) and :mod:`.cli` (the ``ecp bench``
command).
"""
from .contention import format_contention, run_contention
from .report import format_header, format_report, format_shape, format_summary
from .run import DEFAULT_GEMM_SIZE, DEFAULT_REPEATS, DEFAULT_WARMUP, kernels_used, run_bench
from .shapes import DEFAULT_SHAPES, SHAPES, BenchShape, parse_shape, parse_shapes
from .verify import VerificationError

__all__ = ["SHAPES", "DEFAULT_SHAPES", "DEFAULT_REPEATS", "DEFAULT_WARMUP", "DEFAULT_GEMM_SIZE", "BenchShape",
           "parse_shape", "parse_shapes", "run_bench", "kernels_used", "VerificationError", "format_header",
           "format_shape", "format_summary", "format_report", "run_contention", "format_contention"]
