"""Shared fixtures: where the MNIST files are, and PyTorch when it is installed."""
import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


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
