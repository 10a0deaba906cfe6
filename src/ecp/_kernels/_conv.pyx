"""Convolution kernels for the full convolution and the mode-K quarter one, forward and backward.

Both are the same computation on a sampling grid: output (r, q) of plane o reads the input
window whose top-left corner (in the zero-padded input) is (oy + s*r, ox + s*q).
The full convolution is s = 1, oy = ox = 0; Easy Convolution with mode K is s = 2,
(oy, ox) = divmod(K, 2) -- it computes only the positions Random Pooling keeps.

Two implementations (``ForwardKernel`` / ``BackwardKernel``), chosen per call by ``ecp._dispatch``:

- im2col + BLAS: for a chunk of samples the input windows are unrolled into ``cols``
  (K = C*kh*kw rows), one GEMM with the weights gives every output of the chunk, a pass moves
  them to NCHW adding the bias. The backward pass rebuilds ``cols``, gets dW from one GEMM per
  chunk and dX from W^T dY followed by a col2im scatter.
- ecp_direct.h (AVX-512, AVX2+FMA, NEON; ``ISA``, chosen at import): register tiles computing outputs, dW and dX from windows read in place
  (where no window reaches into the padding: the pixel-rows forward and the backward's dW) or
  packed a few pixels at a time into cache-resident panels.

Work is cut into items of whole samples (or, forward, of output rows), spread over OpenMP
threads, each with its own scratch (cached per Python thread between calls).

This extension is one module compiled from pieces with one role each, included below in
dependency order:

- ``_conv.pxd``: the kernel codes (enums) and a call's geometry (``_Geom``)
- ``_c_kernels.pxd``: the C kernels of ecp_im2col.h and ecp_direct.h, declared for Cython
- ``_scratch.pxi``: the per-thread scratch arena (``clear_scratch``)
- ``_im2col_items.pxi``: the im2col + BLAS work items, forward and backward
- ``_reductions.pxi``: dW and db from the per-slot partial sums
- ``_winograd.pxi``: the OpenMP driver of the Winograd F(2x2, 3x3) kernels (``_run_wino``)
- ``_box_means.pxi``: easy average pooling's box means and their adjoint (``box_means``, ``box_adjoint``)
- ``_drivers.pxi``: the OpenMP drivers ``_run_forward`` / ``_run_backward``, and ``conv_backward``
- ``_plans.pxi``: the array checks and ``ForwardPlan`` / ``BackwardPlan``

They are pieces of one module (``include``) rather than modules of their own so that the
kernels' helpers stay inlined into the drivers' loops and share the module's settings
(``_vec``) at no cost.

The raw entry point ``conv_backward`` assumes valid, C-contiguous input of one dtype (tests
call it); the planned calls (``ForwardPlan`` / ``BackwardPlan``, which ``ecp._plans`` builds and
caches) check their arrays themselves, in C, on every call.
Results do not depend on the thread count: every output element is written by one thread in
a fixed order, the BLAS never splits the reduction dimension across threads, dW is summed in
per-slot buffers added in slot order, and the chunking depends only on the shapes.
"""
cimport cython
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.limits cimport INT_MAX
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset

cimport numpy as cnp

import os
import warnings

import numpy as np

cnp.import_array()

from ._blas cimport blas_single_enter, blas_single_exit, gemm
from ._c_kernels cimport *


_ISA_LEVELS = {"generic": ECP_ISA_GENERIC, "avx2": ECP_ISA_AVX2, "avx512": ECP_ISA_AVX512,
               "neon": ECP_ISA_NEON}
_ISA_NAMES = {level: name for name, level in _ISA_LEVELS.items()}


def _isa_from_env():
    """Apply ECP_ISA (read once, at import): one of _ISA_LEVELS (any case) forces that level where
    this CPU and build can run it; a level they cannot run warns (RuntimeWarning) and keeps the
    best one; any other spelling is a ValueError. Unset or empty: the best level."""
    value = os.environ.get("ECP_ISA", "")
    name = value.strip().lower()
    if not name:
        return
    if name not in _ISA_LEVELS:
        raise ValueError(f"ECP_ISA must be one of {', '.join(_ISA_LEVELS)} (or unset); got {value!r}")
    if ecp_isa_set(_ISA_LEVELS[name]) < 0:
        warnings.warn(f"ECP_ISA={value!r}: this CPU or build cannot run {name}; using "
                      f"{_ISA_NAMES[ecp_isa_best()]} instead", RuntimeWarning, stacklevel=2)
        ecp_isa_set(ecp_isa_best())


_isa_from_env()

#: The instruction set of the direct kernels in use: "avx512", "avx2", "neon", or "generic"
#: (im2col + BLAS everywhere), fixed at import (ECP_ISA, else the best this CPU has)
ISA = _ISA_NAMES[ecp_isa_get()]
#: True when the direct kernels (the DIRECT_* kernel codes) run: ISA is not "generic"
DIRECT_SUPPORTED = bool(ecp_direct_supported())
# The same, for the kernels' nogil code: the stride-2 im2col then takes ecp_direct.h's vector copy,
# the bias gradient its vector sum and the dW reduction its transpose
cdef bint _vec = DIRECT_SUPPORTED


def direct_nr(dtype):
    """Columns (pixels or filters) of the direct kernels' register tile at ISA, for ``dtype``
    (float32 or float64): two vectors (0 at "generic", which has no tile)."""
    return ecp_direct_nr_f() if np.dtype(dtype) == np.float32 else ecp_direct_nr_d()


def _use_vector_helpers(bint flag):
    """Let the stride-2 im2col and the bias gradient's sums use their vector code (where ISA has
    it) or force the portable loops (for tests, which otherwise never reach them on a vector
    machine); returns the old setting."""
    global _vec
    old = _vec
    _vec = flag and DIRECT_SUPPORTED
    return old


cdef _Geom _geom(const Py_ssize_t *xs, const Py_ssize_t *ws, Py_ssize_t hq, Py_ssize_t wq,
                 Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t stride, Py_ssize_t oy,
                 Py_ssize_t ox) noexcept:
    cdef _Geom g
    g.N, g.C, g.H, g.W = xs[0], xs[1], xs[2], xs[3]
    g.O, g.kh, g.kw = ws[0], ws[2], ws[3]
    g.hq, g.wq, g.ph, g.pw, g.stride, g.oy, g.ox = hq, wq, ph, pw, stride, oy, ox
    return g


include "_scratch.pxi"
include "_im2col_items.pxi"
include "_reductions.pxi"
include "_winograd.pxi"
include "_box_means.pxi"
include "_drivers.pxi"
include "_plans.pxi"
