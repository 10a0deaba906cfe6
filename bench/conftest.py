"""Fixtures of the kernel benchmarks: layer shapes, inputs, NumPy references, thread set-up.

Every benchmark checks the result of its timed call against an independent float64 NumPy
reference (``reference.py``), so a broken kernel fails instead of reporting a time. Inputs and
references are made once per (shape, dtype), outside the timing.
"""
import os

import pytest

import ecp
from reference import CASES, Case


def pytest_addoption(parser):
    parser.addoption("--ecp-threads", type=int, default=None, metavar="N",
                     help="threads for ecp, its BLAS and PyTorch (default: ecp.get_num_threads())")


def _torch_or_none():
    try:
        import torch
    except (ImportError, OSError):
        return None
    return torch


def pytest_configure(config):
    n = config.getoption("--ecp-threads")
    if n is not None:
        ecp.set_num_threads(n)
    torch = _torch_or_none()
    if torch is not None:
        # same thread count on both sides, or the comparison means nothing
        torch.set_num_threads(ecp.get_num_threads())


def _blas_lines():
    from threadpoolctl import threadpool_info

    return [f"{i.get('internal_api')} {i.get('version')} {i.get('architecture', '')} "
            f"{i.get('num_threads')} threads ({os.path.basename(i.get('filepath', ''))})"
            for i in threadpool_info() if i.get("user_api") == "blas"]


def pytest_report_header(config):
    torch = _torch_or_none()
    env = ", ".join(f"{k}={os.environ[k]}" for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
                    if k in os.environ)
    return [
        f"ecp {ecp.__version__}: {ecp.get_num_threads()} thread(s), OpenMP "
        f"{'on' if ecp.openmp_enabled() else 'OFF'}; PyTorch "
        + (f"{torch.__version__} with {torch.get_num_threads()} thread(s)" if torch else "not installed"),
        "BLAS: " + "; ".join(_blas_lines()) + (f" [{env}]" if env else ""),
    ]


def pytest_benchmark_update_machine_info(config, machine_info):
    from threadpoolctl import threadpool_info

    torch = _torch_or_none()
    machine_info["ecp"] = {
        "version": ecp.__version__,
        "num_threads": ecp.get_num_threads(),
        "openmp_enabled": bool(ecp.openmp_enabled()),
        "torch": torch.__version__ if torch else None,
        "torch_num_threads": torch.get_num_threads() if torch else None,
        "threadpool_info": threadpool_info(),
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")},
    }


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        # module scope: pytest runs one case's benchmarks together, so one case's arrays live at a time
        metafunc.parametrize("case", CASES, ids=[f"{n}-{d}" for n, d in CASES], indirect=True,
                             scope="module")


@pytest.fixture(scope="session")
def torch():
    return pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")


@pytest.fixture(scope="module")
def case(request):
    """Inputs of one (shape, dtype) and their lazily computed references."""
    return Case(*request.param)
