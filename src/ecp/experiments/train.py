"""Training with the paper's timings (the command line is :mod:`ecp.experiments.train_cli`).

Per epoch (:func:`train_epoch` then :func:`evaluate`), as the paper measures them:

- ``train_time_s``: the whole training pass (shuffle, batch gathering, forward, loss, backward,
  update), wall clock;
- ``test_time_s``: evaluating the whole test set (in large batches, 1000 by default);
- ``conv_time_s``: the time inside the convolution kernels, forward and backward, during the
  training pass (the paper's "PureConvTime");
- ``train_loss``: mean loss over the epoch's training examples;
- ``test_accuracy``: a fraction in 0..1.

:func:`run` builds a network from a :class:`TrainConfig`, trains it and returns the result
dictionary that ``ecp train --json`` writes.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterator

import numpy as np

from .._validation import check_int
from ..nn import SoftmaxCrossEntropy, models, optim
from ..nn.init import as_generator

__all__ = [
    "OPTIMIZERS", "TARGET_ACCURACY", "TrainConfig", "lr_for_epoch", "make_optimizer", "train_epoch", "evaluate",
    "run", "summarize", "mode_record", "numpy_blas_single_thread",
]

OPTIMIZERS = ("adam", "sgd")
TARGET_ACCURACY = 0.98  # the paper's "Iter (98%)" threshold


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a training run (the CLI's flags).

    Defaults train the paper's networks well: Adam, learning rate 1e-3 (the paper's) halved after
    every epoch down to 1e-5, batch 50 (the paper's), float32. The paper names no optimiser and no
    schedule; plain SGD with its batch size and a constant learning rate is
    ``optimizer="sgd", lr_decay=1.0`` (``ecp train --paper-settings``).

    Why the decay: with it, ECP and max pooling reach the paper's 98% within two epochs on MNIST
    (``ecp reproduce`` shows it; ``--lr-decay 1`` gives the constant rate).

    A seed fixes the initial weights, the random modes and the order of the examples, so the
    same config on the same data reproduces a run exactly (the kernels give the same results on
    any thread count).
    """

    net: str = "two-conv"
    pool: str = "ecp"
    mode: object = None          # 0..3, "random" or None (random / ecp: None means "random")
    epochs: int = 5
    batch_size: int = 50
    lr: float = 1e-3
    lr_decay: float = 0.5        # the rate is multiplied by this after every epoch ...
    lr_min: float = 1e-5         # ... down to this (a rate set below it is kept)
    optimizer: str = "adam"
    momentum: float = 0.0        # SGD only
    seed: int = 0
    dtype: str = "float32"
    eval_batch_size: int = 1000

    def validate(self) -> TrainConfig:
        """Check every field.

        Returns
        -------
        TrainConfig
            ``self``.

        Raises
        ------
        ValueError, TypeError
            A field is out of range or of the wrong type (the message names it).
        """
        if self.net not in models.NETS:
            raise ValueError(f"net must be one of {', '.join(models.NETS)}, got {self.net!r}")
        if self.pool not in models.POOLS:
            raise ValueError(f"pool must be one of {', '.join(models.POOLS)}, got {self.pool!r}")
        if self.pool in ("max", "avg") and self.mode is not None:
            raise ValueError(f"mode applies only to pool random or ecp, not {self.pool} (got mode={self.mode!r})")
        if self.mode is not None and self.mode != "random":
            check_int(self.mode, "mode", 0, 3)
        check_int(self.epochs, "epochs", 1)
        check_int(self.batch_size, "batch_size", 1)
        check_int(self.eval_batch_size, "eval_batch_size", 1)
        check_int(self.seed, "seed", 0)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr!r}")
        if not (isinstance(self.lr_decay, (int, float)) and 0 < self.lr_decay <= 1):
            raise ValueError(f"lr_decay must be in (0, 1], got {self.lr_decay!r}")
        if not (isinstance(self.lr_min, (int, float)) and math.isfinite(self.lr_min) and self.lr_min >= 0):
            raise ValueError(f"lr_min must be a finite number >= 0, got {self.lr_min!r}")
        if not (isinstance(self.momentum, (int, float)) and 0 <= self.momentum < 1):
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if self.momentum and self.optimizer != "sgd":
            raise ValueError(f"momentum applies only to optimizer sgd, not {self.optimizer}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")
        return self


def lr_for_epoch(config: TrainConfig, epoch: int) -> float:
    """The learning rate of epoch ``epoch`` (1-based): lr * lr_decay**(epoch - 1), not below
    lr_min (nor above lr, when lr itself is below lr_min)."""
    return max(min(config.lr, config.lr_min), config.lr * config.lr_decay ** (epoch - 1))


def make_optimizer(net, name: str = "adam", lr: float = 1e-3, momentum: float = 0.0) -> optim.Optimizer:
    """Adam or SGD over all of ``net``'s parameters (its flat buffers)."""
    if name == "adam":
        return optim.Adam(net.parameters(), net.gradients(), lr=lr)
    if name == "sgd":
        return optim.SGD(net.parameters(), net.gradients(), lr=lr, momentum=momentum)
    raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")


def _check_xy(x, y, dtype, what):
    if not isinstance(x, np.ndarray) or x.ndim != 4 or x.dtype != dtype:
        raise TypeError(f"{what} images must be a (N, 1, H, W) {dtype} array (see ecp.experiments.data.to_float), got "
                        f"{getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', '')}")
    y = np.asarray(y)
    if y.shape != (x.shape[0],) or y.dtype.kind not in "iu":
        raise ValueError(f"{what} labels must be integers of shape ({x.shape[0]},), got {y.dtype} {y.shape}")
    return y.astype(np.intp, copy=False)


def train_epoch(net, optimizer, x: np.ndarray, y: np.ndarray, *, batch_size: int = 50, rng,
                on_batch: Callable[[int, int, float], None] | None = None) -> dict:
    """One pass over the training set in a random order.

    Parameters
    ----------
    net : ecp.nn.Sequential
    optimizer : ecp.nn.optim.Optimizer over ``net``'s parameters
    x : ndarray (N, 1, H, W) of the network's dtype; y : integer ndarray (N,)
    batch_size : int
    rng : numpy.random.Generator (or int seed) for the order of the examples
    on_batch : callable ``(batches_done, batches_total, mean_loss_so_far)``, optional

    Returns
    -------
    dict with ``train_time_s``, ``conv_time_s`` and ``train_loss`` (mean over examples).
    """
    batch_size = check_int(batch_size, "batch_size", 1)
    y = _check_xy(x, y, net.dtype, "training")
    rng = as_generator(rng)
    n = x.shape[0]
    if n == 0:
        raise ValueError("the training set is empty")
    loss_fn = SoftmaxCrossEntropy()
    n_batches = -(-n // batch_size)
    xbuf = np.empty((min(batch_size, n),) + x.shape[1:], dtype=x.dtype)
    total_loss = 0.0
    net.train()
    conv0 = net.conv_seconds
    t0 = time.perf_counter()
    order = rng.permutation(n)
    for b in range(n_batches):
        idx = order[b * batch_size:(b + 1) * batch_size]
        m = idx.shape[0]
        xb = np.take(x, idx, axis=0, out=xbuf[:m])
        loss = loss_fn(net(xb), y[idx])
        net.backward(loss_fn.backward())
        optimizer.step()
        total_loss += loss * m
        if on_batch is not None:
            on_batch(b + 1, n_batches, total_loss / min(n, (b + 1) * batch_size))
    train_time = time.perf_counter() - t0
    return {
        "train_time_s": train_time,
        "conv_time_s": net.conv_seconds - conv0,
        "train_loss": total_loss / n,
    }


def evaluate(net, x: np.ndarray, y: np.ndarray, *, batch_size: int = 1000) -> float:
    """Accuracy (a fraction 0..1) of ``net`` on ``x`` (N, 1, H, W), labels ``y`` (N,), in batches."""
    y = _check_xy(x, y, net.dtype, "test")
    batch_size = check_int(batch_size, "batch_size", 1)
    if x.shape[0] == 0:
        raise ValueError("the test set is empty")
    correct = int(np.count_nonzero(net.predict(x, batch_size=batch_size) == y))
    return correct / x.shape[0]


def summarize(epochs: list[dict], target: float = TARGET_ACCURACY) -> tuple[float | None, int | None]:
    """``(best_test_accuracy, first_epoch_at_target or None)`` from per-epoch records."""
    best = max((e["test_accuracy"] for e in epochs), default=None)
    first = next((e["epoch"] for e in epochs if e["test_accuracy"] >= target), None)
    return best, first


def mode_record(modes: list[int]) -> int | list[int] | None:
    """The JSON ``mode``: None without random pooling, the K when every pooling layer uses the
    same one, else the list of per-layer K."""
    if not modes:
        return None
    return modes[0] if len(set(modes)) == 1 else list(modes)


def run(config: TrainConfig, dataset, *, on_start: Callable | None = None, on_batch: Callable | None = None,
        on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Build the network of ``config``, train it on ``dataset`` and evaluate after each epoch.

    Parameters
    ----------
    config : TrainConfig
    dataset : ecp.experiments.data.Dataset (uint8 images, as :func:`ecp.experiments.data.load_mnist` returns)
    on_start : callable ``(net)``, optional, called with the network before training
    on_batch : callable ``(epoch, batches_done, batches_total, mean_loss)``, optional
    on_epoch : callable ``(record)``, optional, called with each epoch's record

    Returns
    -------
    dict with exactly the keys ``net``, ``pool``, ``mode`` (see :func:`mode_record`),
    ``epochs`` (list of per-epoch records: ``epoch``, ``train_time_s``, ``test_time_s``,
    ``conv_time_s``, ``train_loss``, ``test_accuracy``), ``best_test_accuracy`` (0..1) and
    ``first_epoch_at_98`` (first epoch with test accuracy >= 0.98, or None) and ``diverged``
    (True when some epoch's training loss is NaN or infinite; such a loss is written as ``null``
    by ``ecp train --json``).

    Raises
    ------
    ValueError, TypeError
        A bad ``config`` field, or images that are not 28x28, or an empty test set.
    """
    from . import data

    config.validate()
    dtype = np.dtype(config.dtype)
    net = models.build_network(config.net, config.pool, config.mode, seed=config.seed, dtype=dtype)
    optimizer = make_optimizer(net, config.optimizer, config.lr, config.momentum)
    x_train = data.to_float(dataset.train_images, dtype)
    x_test = data.to_float(dataset.test_images, dtype)
    y_train, y_test = dataset.train_labels, dataset.test_labels
    if x_train.shape[2:] != (28, 28):
        raise ValueError(f"the paper's networks take 28x28 images, got {x_train.shape[2]}x{x_train.shape[3]}")
    if len(y_test) == 0:
        raise ValueError("the test set is empty: use limit_test >= 1")
    data_rng = np.random.default_rng(models.seed_streams(config.seed)[2])
    if on_start is not None:
        on_start(net)
    records = []
    for epoch in range(1, config.epochs + 1):
        hook = None if on_batch is None else (lambda done, total, loss, e=epoch: on_batch(e, done, total, loss))
        optimizer.lr = lr_for_epoch(config, epoch)
        with numpy_blas_single_thread():
            stats = train_epoch(net, optimizer, x_train, y_train, batch_size=config.batch_size, rng=data_rng,
                                on_batch=hook)
            t0 = time.perf_counter()
            accuracy = evaluate(net, x_test, y_test, batch_size=config.eval_batch_size)
            test_time = time.perf_counter() - t0
        record = {
            "epoch": epoch,
            "train_time_s": stats["train_time_s"],
            "test_time_s": test_time,
            "conv_time_s": stats["conv_time_s"],
            "train_loss": stats["train_loss"],
            "test_accuracy": accuracy,
        }
        records.append(record)
        if on_epoch is not None:
            on_epoch(record)
    best, first = summarize(records)
    return {
        "net": config.net,
        "pool": config.pool,
        "mode": mode_record(net.modes),
        "epochs": records,
        "best_test_accuracy": best,
        "first_epoch_at_98": first,
        "diverged": not all(math.isfinite(e["train_loss"]) for e in records),
    }


@contextlib.contextmanager
def numpy_blas_single_thread() -> Iterator[None]:
    """Run the block with NumPy's own BLAS (the one behind ``@``) on one thread.

    The Linear layers' products are tiny (batch x 512 x 100), so threads gain nothing there; but
    an OpenBLAS worker thread, once woken, keeps polling for new work long after its call
    returns, and on a machine with as many cores as the kernels use it takes a core away from
    the kernels' OpenMP threads. Only NumPy's BLAS is limited (matched by its file path), not
    the one the ecp kernels call.
    """
    from threadpoolctl import ThreadpoolController

    controller = ThreadpoolController()
    paths = [lib.filepath for lib in controller.lib_controllers
             if lib.user_api == "blas" and "numpy" in os.path.basename(os.path.dirname(lib.filepath))]
    if not paths:
        yield
        return
    with controller.select(filepath=paths).limit(limits=1):
        yield
