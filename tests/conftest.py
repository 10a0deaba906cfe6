"""Shared fixtures: where the MNIST files are, PyTorch when it is installed, a fixed default thread count;
hypothesis's profile."""
import os
import pathlib

import pytest
from hypothesis import settings

# The property tests (test_properties.py) draw the same cases on every run and machine ("ci", the
# default: a failure is reproducible and CI never flakes); HYPOTHESIS_PROFILE=explore draws new
# cases each run. No example database is written into the checkout.
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("explore", database=None, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def fixed_default_threads(monkeypatch):
    """The default thread count is every core in the tests, whatever the machine's load: tests that compare
    thread counts must not see it move (tests/test_free_cores.py turns the adaptation back on where it tests it;
    results never depend on the count)."""
    from ecp import _free_cores

    monkeypatch.setattr(_free_cores, "adaptive", False)


def mnist_dir():
    """ECP_DATA_DIR if set, else ../shared/data/mnist beside the checkout; None if absent."""
    env = os.environ.get("ECP_DATA_DIR")
    path = pathlib.Path(env) if env else REPO.parent / "shared" / "data" / "mnist"
    found = (path / "train-images-idx3-ubyte.gz").exists() or (path / "train-images-idx3-ubyte").exists()
    return path if found else None


@pytest.fixture(scope="session")
def mnist_path():
    path = mnist_dir()
    if path is None:
        pytest.skip("MNIST files not found: set ECP_DATA_DIR to the folder holding them")
    return path


@pytest.fixture(scope="session")
def torch():
    return pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
