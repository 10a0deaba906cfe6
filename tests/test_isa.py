"""The instruction set of the direct kernels: ECP_ISA, ecp.kernel_isa(), and the AVX2 kernels.

The level is fixed at import, so every test here runs Python in a subprocess with ECP_ISA set.
"""
import json
import os
import subprocess
import sys

import pytest

import ecp


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            return set(" ".join(line for line in f if line.startswith("flags")).split())
    except OSError:
        return set()


_FLAGS = _cpu_flags()
HAS_AVX2 = {"avx2", "fma"} <= _FLAGS
HAS_AVX512 = {"avx512f", "avx512vl", "fma"} <= _FLAGS


def run_python(code, isa, timeout=600):
    env = dict(os.environ)
    env.pop("ECP_ISA", None)
    if isa is not None:
        env["ECP_ISA"] = isa
    return subprocess.run([sys.executable, "-W", "default", "-c", code], env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_kernel_isa_is_one_of_the_names():
    assert ecp.kernel_isa() in ("avx512", "avx2", "neon", "generic")
    assert (ecp.kernel_isa() != "generic") == ecp.conv._conv.DIRECT_SUPPORTED


@pytest.mark.parametrize("isa, want", [
    ("generic", "generic"),
    ("GENERIC", "generic"),
    pytest.param("avx2", "avx2", marks=pytest.mark.skipif(not HAS_AVX2, reason="no AVX2+FMA")),
    pytest.param(" Avx2 ", "avx2", marks=pytest.mark.skipif(not HAS_AVX2, reason="no AVX2+FMA")),
    pytest.param("avx512", "avx512", marks=pytest.mark.skipif(not HAS_AVX512, reason="no AVX-512")),
])
def test_kernel_isa_follows_ecp_isa(isa, want):
    out = run_python("import ecp; from ecp._kernels import _conv; "
                     "print(ecp.kernel_isa(), _conv.DIRECT_SUPPORTED, _conv.direct_nr('float32'))", isa)
    assert out.returncode == 0, out.stderr
    name, direct, nr = out.stdout.split()
    assert name == want
    assert direct == str(want != "generic")
    assert int(nr) == {"generic": 0, "avx2": 16, "avx512": 32}[want]
    assert "RuntimeWarning" not in out.stderr


def test_unset_or_empty_ecp_isa_is_the_best_level():
    outs = [run_python("import ecp; print(ecp.kernel_isa())", isa).stdout.strip() for isa in (None, "")]
    assert outs[0] == outs[1]
    assert outs[0] == ("avx512" if HAS_AVX512 else "avx2" if HAS_AVX2 else outs[0])


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.uname().machine != "x86_64",
                    reason="neon is the level an x86-64 build lacks")
def test_a_level_the_cpu_lacks_warns_and_runs_the_best():
    out = run_python("import ecp; print(ecp.kernel_isa())", "neon")
    assert out.returncode == 0, out.stderr
    best = run_python("import ecp; print(ecp.kernel_isa())", None).stdout.strip()
    assert out.stdout.strip() == best
    assert "RuntimeWarning" in out.stderr and "ECP_ISA='neon'" in out.stderr and best in out.stderr


def test_an_unknown_spelling_is_a_value_error():
    out = run_python("import ecp", "avx-512")
    assert out.returncode != 0
    assert "ValueError" in out.stderr and "ECP_ISA" in out.stderr and "'avx-512'" in out.stderr
    assert "avx512, neon" in out.stderr or "avx2" in out.stderr


# The AVX2 kernels, in a process held to AVX2: every kernel path (panel, pixel rows, split, direct
# backward; full and easy) at 1 and 2 threads, against the float64 oracle.
_AVX2_SCRIPT = r"""
import dataclasses, json
import numpy as np
import ecp, ecp._dispatch as d, ecp.testing as ref
assert ecp.kernel_isa() == "avx2", ecp.kernel_isa()
CASES = [((3, 5, 13, 11), (37, 5, 5, 3), 0), ((2, 7, 9, 15), (33, 7, 4, 4), 1),
         ((4, 20, 12, 12), (32, 20, 5, 5), 0), ((2, 16, 10, 10), (24, 16, 3, 3), 1),
         ((3, 9, 11, 13), (40, 9, 4, 5), 2), ((5, 32, 7, 9), (64, 32, 3, 3), 1)]
report = []
for kernel in ("direct", "direct-rows", "split"):
    rows = kernel == "direct-rows"
    d.thresholds = dataclasses.replace(
        d.thresholds, direct=True, direct_backward_min_k=0, direct_forward_min_o=0,
        direct_backward_min_kw=1 << 30 if kernel == "split" else 0,
        rows_kernel_max_wq=1 << 30 if rows else -1, rows_kernel_max_waste=1.0 if rows else -1.0)
    for xs, ws, pad in CASES:
        for dtype in (np.float32, np.float64):
            rng = np.random.default_rng(sum(xs) + sum(ws))
            x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
            b = rng.standard_normal(ws[0]).astype(dtype)
            for mode in (None, 3):
                kw = {"padding": pad} if mode is None else {"padding": pad, "mode": mode}
                fwd = ecp.conv2d if mode is None else ecp.easy_conv2d
                bwd = ecp.conv2d_backward if mode is None else ecp.easy_conv2d_backward
                rfwd = ref.conv2d if mode is None else ref.easy_conv2d
                rbwd = ref.conv2d_backward if mode is None else ref.easy_conv2d_backward
                outs = []
                for threads in (1, 2):
                    with ecp.num_threads(threads):
                        y = fwd(x, w, b, **kw)
                        dy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
                        outs.append((y,) + tuple(bwd(dy, x, w, **kw)))
                same = all(np.array_equal(p, q) for p, q in zip(*outs))
                want = (rfwd(x, w, b, **kw),) + tuple(rbwd(dy, x, w, **kw))
                err = max(float(np.max(np.abs(g - r), initial=0.0)) / max(1.0, float(np.max(np.abs(r))))
                          for g, r in zip(outs[0], want))
                report.append([kernel, str(xs), str(ws), pad, np.dtype(dtype).name, mode, same, err])
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def avx2_report():
    if not HAS_AVX2:
        pytest.skip("no AVX2+FMA on this CPU")
    out = run_python(_AVX2_SCRIPT, "avx2")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_avx2_results_do_not_depend_on_the_thread_count(avx2_report):
    assert len(avx2_report) == 3 * 6 * 2 * 2
    assert [r for r in avx2_report if not r[6]] == []


def test_avx2_results_match_the_float64_reference(avx2_report):
    tol = {"float32": 2e-4, "float64": 1e-10}
    assert [r for r in avx2_report if not r[7] <= tol[r[4]]] == []
