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

Divergence: training stops at the first batch whose loss is NaN or infinite
(:class:`Diverged`, raised by :func:`train_epoch`); :func:`run` then returns the epochs completed
so far with ``diverged`` set and ``diverged_at`` naming the epoch and the batch.
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
from ..nn.init import as_generator, resolve_eval_mode

__all__ = [
    "Diverged", "OPTIMIZERS", "TARGET_ACCURACY", "TrainConfig", "lr_for_epoch", "make_optimizer", "train_epoch",
    "evaluate", "run", "summarize", "mode_record", "numpy_blas_single_thread",
]

OPTIMIZERS = ("adam", "sgd")
TARGET_ACCURACY = 0.98  # the paper's "Iter (98%)" threshold


class Diverged(FloatingPointError):
    """The training loss became NaN or infinite: training cannot go on.

    Parameters
    ----------
    batch : int
        The batch (1-based, within its epoch) whose loss was not finite.
    loss : float
        That loss.
    epoch : int or None
        The epoch (1-based), when known (:func:`run` sets it).

    Attributes
    ----------
    batch : int
        As given.
    loss : float
        As given.
    epoch : int or None
        As given.
    """

    def __init__(self, batch: int, loss: float, epoch: int | None = None):
        self.batch, self.loss, self.epoch = batch, loss, epoch
        super().__init__(batch, loss, epoch)

    def __str__(self) -> str:
        where = f"epoch {self.epoch}, batch {self.batch}" if self.epoch is not None else f"batch {self.batch}"
        return f"the loss became {self.loss} at {where}"


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
    mode: object = None          # 0..3, "random", "per-batch" or None (random / ecp: None means "random")
    eval_mode: object = None     # 0..3, "ensemble" or None (the training K; 0 for per-batch)
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
        if self.pool in ("max", "avg", "easy-avg") and self.mode is not None:
            raise ValueError(f"mode applies only to pool random or ecp, not {self.pool} (got mode={self.mode!r})")
        if self.mode is not None and self.mode not in ("random", "per-batch"):
            if isinstance(self.mode, str):
                raise ValueError(f"mode must be 0..3, 'random' or 'per-batch', got {self.mode!r}")
            check_int(self.mode, "mode", 0, 3)
        if self.eval_mode is not None:
            if self.pool not in ("random", "ecp"):
                raise ValueError(f"eval_mode applies only to pool random or ecp, not {self.pool} "
                                 f"(got eval_mode={self.eval_mode!r})")
            resolve_eval_mode(self.eval_mode, "random" if self.mode is None else self.mode)
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
    """Compute the learning rate of one epoch of the schedule.

    Parameters
    ----------
    config : TrainConfig
        Supplies ``lr``, ``lr_decay`` and ``lr_min``.
    epoch : int
        The epoch, 1-based.

    Returns
    -------
    float
        ``lr * lr_decay**(epoch - 1)``, not below ``lr_min`` (nor above ``lr``, when ``lr`` itself
        is below ``lr_min``).
    """
    return max(min(config.lr, config.lr_min), config.lr * config.lr_decay ** (epoch - 1))


def make_optimizer(net, name: str = "adam", lr: float = 1e-3, momentum: float = 0.0) -> optim.Optimizer:
    """Build Adam or SGD over all of a network's parameters.

    Parameters
    ----------
    net : ecp.nn.Sequential
        The network; the optimizer updates its flat parameter buffers in place from its flat
        gradient buffers.
    name : {"adam", "sgd"}
        The optimizer.
    lr : float
        Learning rate.
    momentum : float
        SGD momentum (ignored by Adam).

    Returns
    -------
    ecp.nn.optim.Optimizer
        :class:`ecp.nn.optim.Adam` or :class:`ecp.nn.optim.SGD`.

    Raises
    ------
    ValueError
        ``name`` is not one of :data:`OPTIMIZERS`.
    """
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
    """Train for one pass over the training set, in a random order.

    Puts ``net`` in training mode; the last batch may be smaller than ``batch_size``.

    Parameters
    ----------
    net : ecp.nn.Sequential
        The network (from :func:`ecp.nn.models.build_network`), updated in place.
    optimizer : ecp.nn.optim.Optimizer
        An optimizer over ``net``'s parameters; stepped once per batch.
    x : ndarray, shape (N, 1, H, W)
        Training images, of the network's dtype (see :func:`ecp.experiments.data.to_float`).
    y : ndarray of int, shape (N,)
        Training labels.
    batch_size : int >= 1
        Examples per update.
    rng : numpy.random.Generator or int
        Draws the order of the examples (a seed makes a new Generator).
    on_batch : callable or None
        Called after each batch as ``on_batch(batches_done, batches_total, mean_loss_so_far)``.

    Returns
    -------
    dict
        ``train_time_s`` (wall clock of the pass, seconds), ``conv_time_s`` (seconds inside the
        convolution kernels during the pass) and ``train_loss`` (mean loss over the examples).

    Raises
    ------
    TypeError
        ``x`` is not a 4-D array of the network's dtype.
    ValueError
        ``y`` is not integer of shape (N,), the set is empty, or ``batch_size`` < 1.
    Diverged
        A batch's loss is NaN or infinite; raised before that batch's update, so the network
        keeps the parameters that gave it.
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
        if not math.isfinite(loss):
            raise Diverged(b + 1, float(loss))
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
    """Measure a network's accuracy on a labelled set, in batches.

    Parameters
    ----------
    net : ecp.nn.Sequential
        The network; evaluated through ``net.predict``.
    x : ndarray, shape (N, 1, H, W)
        Images, of the network's dtype.
    y : ndarray of int, shape (N,)
        Labels.
    batch_size : int >= 1
        Examples per forward pass (bounds the memory, not the result).

    Returns
    -------
    float
        The fraction of examples whose predicted class equals the label, in 0..1.

    Raises
    ------
    TypeError
        ``x`` is not a 4-D array of the network's dtype.
    ValueError
        ``y`` is not integer of shape (N,), the set is empty, or ``batch_size`` < 1.
    """
    y = _check_xy(x, y, net.dtype, "test")
    batch_size = check_int(batch_size, "batch_size", 1)
    if x.shape[0] == 0:
        raise ValueError("the test set is empty")
    correct = int(np.count_nonzero(net.predict(x, batch_size=batch_size) == y))
    return correct / x.shape[0]


def summarize(epochs: list[dict], target: float = TARGET_ACCURACY) -> tuple[float | None, int | None]:
    """Summarise a run from its per-epoch records.

    Parameters
    ----------
    epochs : list of dict
        Per-epoch records with ``epoch`` and ``test_accuracy``, in epoch order.
    target : float
        The accuracy threshold, a fraction (the paper's 98% by default).

    Returns
    -------
    best_test_accuracy : float or None
        The highest test accuracy (None for no epoch).
    first_epoch_at_target : int or None
        The first epoch whose test accuracy is >= ``target``, or None.
    """
    best = max((e["test_accuracy"] for e in epochs), default=None)
    first = next((e["epoch"] for e in epochs if e["test_accuracy"] >= target), None)
    return best, first


def mode_record(modes: list[int | str]) -> int | str | list[int | str] | None:
    """Give the ``mode`` (or ``eval_mode``) entry of a run's JSON record.

    Parameters
    ----------
    modes : list of int or str
        Mode of each random / ECP pooling layer (``net.modes``: K or ``"per-batch"``;
        ``net.eval_modes``: K or ``"ensemble"``).

    Returns
    -------
    int, str, list or None
        None without random pooling, the mode when every pooling layer has the same one, else the
        list of per-layer modes.
    """
    if not modes:
        return None
    return modes[0] if len(set(modes)) == 1 else list(modes)


def run(config: TrainConfig, dataset, *, on_start: Callable | None = None, on_batch: Callable | None = None,
        on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Build the network of ``config``, train it on ``dataset`` and evaluate after each epoch.

    Parameters
    ----------
    config : TrainConfig
        The run; validated first.
    dataset : ecp.experiments.data.Dataset
        Its images are uint8, as :func:`ecp.experiments.data.load_mnist` returns them; converted to
        ``config.dtype``.
    on_start : callable or None
        Called as ``on_start(net)`` with the network before training.
    on_batch : callable or None
        Called after each batch as ``on_batch(epoch, batches_done, batches_total, mean_loss)``.
    on_epoch : callable or None
        Called with each epoch's record as it finishes.

    Returns
    -------
    dict
        Exactly the keys ``net``, ``pool``, ``mode`` (see :func:`mode_record`; ``"per-batch"`` for
        that policy), ``eval_mode`` (the K of testing, or ``"ensemble"``), ``epochs`` (list
        of per-epoch records: ``epoch``, ``train_time_s``, ``test_time_s``, ``conv_time_s``,
        ``train_loss``, ``test_accuracy``), ``best_test_accuracy`` (0..1; None when no epoch
        completed), ``first_epoch_at_98`` (first epoch with test accuracy >= 0.98, or None),
        ``diverged`` (True when training stopped at a non-finite loss) and ``diverged_at``
        (``{"epoch": E, "batch": B, "loss": L}`` for that loss, else None). A diverged run's
        ``epochs`` holds only the epochs completed before it.

    Raises
    ------
    ValueError, TypeError
        A bad ``config`` field, or images that are not 28x28, or an empty test set.
    """
    from . import data

    config.validate()
    dtype = np.dtype(config.dtype)
    net = models.build_network(config.net, config.pool, config.mode, seed=config.seed, dtype=dtype,
                               eval_mode=config.eval_mode)
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
    diverged = None
    for epoch in range(1, config.epochs + 1):
        hook = None if on_batch is None else (lambda done, total, loss, e=epoch: on_batch(e, done, total, loss))
        optimizer.lr = lr_for_epoch(config, epoch)
        with numpy_blas_single_thread():
            try:
                stats = train_epoch(net, optimizer, x_train, y_train, batch_size=config.batch_size, rng=data_rng,
                                    on_batch=hook)
            except Diverged as exc:
                diverged = {"epoch": epoch, "batch": exc.batch, "loss": exc.loss}
                break
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
        "eval_mode": mode_record(net.eval_modes),
        "epochs": records,
        "best_test_accuracy": best,
        "first_epoch_at_98": first,
        "diverged": diverged is not None,
        "diverged_at": diverged,
    }


@contextlib.contextmanager
def numpy_blas_single_thread() -> Iterator[None]:
    """Run the block with NumPy's own BLAS (the one behind ``@``) on one thread.

    The Linear layers' products are tiny (batch x 512 x 100), so threads gain nothing there; but
    an OpenBLAS worker thread, once woken, keeps polling for new work long after its call
    returns, and on a machine with as many cores as the kernels use it takes a core away from
    the kernels' OpenMP threads. Only NumPy's BLAS is limited (matched by its file path), not
    the one the ecp kernels call. Without such a library (NumPy built on another BLAS) the
    block runs unchanged.

    Yields
    ------
    None
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
