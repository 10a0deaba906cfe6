"""Training the paper's networks as PyTorch modules (``ecp train --engine torch``), on one process or several.

The networks are those of :mod:`ecp.nn.models`, built from ``torch.nn`` and :mod:`ecp.torch`
(:func:`build_torch_network`), with the same initial weights and modes as the NumPy engine for the
same seed (they are copied from the network :func:`ecp.nn.models.build_network` draws), and the
same data order. :func:`run` follows :func:`ecp.experiments.train.run`: the same per-epoch
records, the same learning-rate schedule, the same divergence rule, plus ``engine``, ``device``
and ``world_size``. ``conv_time_s`` is None: PyTorch does not time its convolutions apart.

Data-parallel (a :class:`~ecp.experiments.distributed.World` of more than one worker): the
workers draw the same order of the examples; each batch of ``batch_size`` examples (the global
batch, as with one process) is cut into ``world_size`` strided shards, one per worker, and
DistributedDataParallel sums the gradients of ``loss_sum(shard) * world_size / batch``, so that
the update is the one process's, up to rounding. The batch loss (for the record and the
divergence check) is summed over the workers, so every worker stops at the same batch. The test
set is sharded the same way and the correct counts summed.
"""
from __future__ import annotations

import contextlib
import datetime
import math
import os
import time
from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import set_num_threads
from ..nn import models
from ..torch import EasyConvPool2d, RandomPool2d, ensemble
from .distributed import World
from .train import Diverged, TrainConfig, lr_for_epoch, mode_record, summarize

__all__ = ["build_torch_network", "resolve_device", "process_group", "run", "default_threads"]

_TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def build_torch_network(net: str = "two-conv", pool: str = "ecp", mode: int | str | None = None, *,
                        seed: int = 0, dtype: str = "float32", eval_mode: int | str | None = None) -> nn.Sequential:
    """One of the paper's networks as a ``torch.nn.Sequential`` of ``torch.nn`` and ``ecp.torch`` layers.

    Parameters
    ----------
    net : {"one-conv", "two-conv"}
        The network.
    pool : {"max", "avg", "random", "ecp", "easy-avg"}
        ``nn.MaxPool2d(2)``, ``nn.AvgPool2d(2)``, ``nn.Conv2d`` then ``ecp.torch.RandomPool2d(K)``,
        ``ecp.torch.EasyConvPool2d`` (mode K), or ``ecp.torch.EasyConvPool2d(pool="avg")``.
    mode : int 0..3, "random", "per-batch" or None
        As :func:`ecp.nn.models.build_network`. ``"per-batch"``: each module's ``torch.Generator``
        is seeded from the seed (the same on every worker), though its draws differ from the NumPy
        engine's.
    seed : int >= 0
        As :func:`ecp.nn.models.build_network`: the same seed gives the same weights and modes.
    dtype : {"float32", "float64"}
        Of the parameters.
    eval_mode : int 0..3, "ensemble" or None
        As :func:`ecp.nn.models.build_network`; the model's attribute ``eval_modes`` lists them
        (evaluate ``"ensemble"`` through :func:`ecp.torch.ensemble`).

    Returns
    -------
    torch.nn.Sequential
        Input (N, 1, 28, 28), output logits (N, 10), on the CPU; its attribute ``modes`` lists
        the K of each pooling layer (empty for max / avg / easy-avg).

    Raises
    ------
    ValueError, TypeError
        As :func:`ecp.nn.models.build_network`.
    """
    ref = models.build_network(net, pool, mode, seed=seed, dtype=np.dtype(dtype), eval_mode=eval_mode)
    convs = [layer for layer in ref.layers if "w" in getattr(layer, "params", {}) and layer.params["w"].ndim == 4]
    linears = [layer for layer in ref.layers if "w" in getattr(layer, "params", {}) and layer.params["w"].ndim == 2]
    modes = list(ref.modes)
    policies = [{} if layer.mode != "per-batch" else
                dict(eval_mode=layer.eval_mode,
                     generator=torch.Generator().manual_seed(int(layer._mode_rng.integers(2**62))))
                for layer in ref.layers if hasattr(layer, "mode")]
    layers: list[nn.Module] = []
    for i, conv in enumerate(convs):
        out_ch, in_ch, k, _ = conv.params["w"].shape
        if pool in ("ecp", "easy-avg"):
            layer = (EasyConvPool2d(in_ch, out_ch, k, mode=modes[i], **policies[i]) if pool == "ecp"
                     else EasyConvPool2d(in_ch, out_ch, k, pool="avg"))
            layers.append(layer)
        else:
            layer = nn.Conv2d(in_ch, out_ch, k)
            layers.append(layer)
            layers.append({"max": lambda: nn.MaxPool2d(2), "avg": lambda: nn.AvgPool2d(2),
                           "random": lambda: RandomPool2d(modes[i], **policies[i])}[pool]())
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(conv.params["w"]))
            layer.bias.copy_(torch.from_numpy(conv.params["b"]))
        layers.append(nn.ReLU())
    layers.append(nn.Flatten())
    for i, lin in enumerate(linears):
        fan_in, fan_out = lin.params["w"].shape
        layer = nn.Linear(fan_in, fan_out)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(lin.params["w"].T))
            layer.bias.copy_(torch.from_numpy(lin.params["b"]))
        layers.append(layer)
        if i < len(linears) - 1:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers).to(_TORCH_DTYPES[dtype])
    model.modes = modes
    model.eval_modes = list(ref.eval_modes)
    return model


def resolve_device(device: str, world: World | None = None) -> torch.device:
    """The device a worker trains on, checked.

    Parameters
    ----------
    device : {"cpu", "cuda"}
        As ``--device``.
    world : World or None
        The worker's place; with CUDA its ``local_rank`` picks the GPU.

    Returns
    -------
    torch.device
        ``cpu``, or ``cuda:LOCAL_RANK``.

    Raises
    ------
    ValueError
        An unknown device, CUDA without an available GPU, or fewer GPUs than workers on this machine.
    """
    world = world or World()
    if device == "cpu":
        return torch.device("cpu")
    if device != "cuda":
        raise ValueError(f"--device must be cpu or cuda, got {device!r}")
    if not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available to PyTorch (torch.cuda.is_available() is "
                         f"False; PyTorch {torch.__version__}, CUDA build {torch.version.cuda}); use --device cpu")
    count = torch.cuda.device_count()
    if world.local_size > count:
        raise ValueError(f"--device cuda: {world.local_size} workers on this machine need as many GPUs, "
                         f"got {count}")
    return torch.device("cuda", world.local_rank)


@contextlib.contextmanager
def process_group(world: World, device: torch.device, timeout_s: float) -> Iterator[None]:
    """Join the group of workers (``env://`` rendezvous) for the block, then leave it.

    Parameters
    ----------
    world : World
        The worker's place; a group of one joins nothing.
    device : torch.device
        CPU: the gloo backend; CUDA: NCCL.
    timeout_s : float
        Seconds the rendezvous and every collective wait for the other workers before failing.

    Yields
    ------
    None
    """
    if world.size == 1:
        yield
        return
    import torch.distributed as dist

    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", init_method="env://",
                            rank=world.rank, world_size=world.size,
                            timeout=datetime.timedelta(seconds=timeout_s))
    try:
        yield
    except BaseException:
        dist.destroy_process_group()
        raise
    # every worker leaves the group together: a gloo group torn down while a peer still talks to it
    # can abort that peer ("terminate called without an active exception")
    dist.barrier()
    dist.destroy_process_group()


def _sum_over_workers(value: torch.Tensor, world: World) -> torch.Tensor:
    if world.size > 1:
        import torch.distributed as dist

        dist.all_reduce(value)
    return value


def _make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.9, 0.999), eps=1e-8)
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)


def _train_epoch(model, optimizer, x, y, order, config, world, on_batch):
    n = x.shape[0]
    batch = config.batch_size
    n_batches = -(-n // batch)
    total = 0.0
    model.train()
    t0 = time.perf_counter()
    for b in range(n_batches):
        idx = order[b * batch:(b + 1) * batch]
        m = len(idx)
        shard = idx[world.rank::world.size]
        weight = world.size / m
        if len(shard) == 0:   # a last batch smaller than the group: take part with a weight of 0
            shard, weight = idx[:1], 0.0
        xb, yb = x[shard], y[shard]
        loss_sum = F.cross_entropy(model(xb), yb, reduction="sum")
        batch_loss = _sum_over_workers((loss_sum.detach() * float(weight > 0)).reshape(1).to(torch.float64), world)
        loss = float(batch_loss) / m
        if not math.isfinite(loss):
            raise Diverged(b + 1, loss)
        optimizer.zero_grad(set_to_none=True)
        (loss_sum * weight).backward()
        optimizer.step()
        total += loss * m
        if on_batch is not None:
            on_batch(b + 1, n_batches, total / min(n, (b + 1) * batch))
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
    return time.perf_counter() - t0, total / n


def _evaluate(model, x, y, batch_size, world):
    model.eval()
    if "ensemble" in getattr(model, "eval_modes", ()):
        model = ensemble(model)
    mine = torch.arange(world.rank, x.shape[0], world.size, device=x.device)
    correct = torch.zeros(1, dtype=torch.int64, device=x.device)
    with torch.no_grad():
        for start in range(0, len(mine), batch_size):
            idx = mine[start:start + batch_size]
            correct += (model(x[idx]).argmax(1) == y[idx]).sum()
    return int(_sum_over_workers(correct, world)) / x.shape[0]


def run(config: TrainConfig, dataset, *, device: str = "cpu", world: World | None = None, timeout_s: float = 600.0,
        threads: int | None = None, on_start: Callable | None = None, on_batch: Callable | None = None,
        on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Train the network of ``config`` in PyTorch on ``dataset``, as one worker of ``world``.

    Every worker of a group calls it with the same arguments (but its ``world``); only rank 0
    should report. A group of more than one joins its process group here (the ``env://``
    rendezvous: ``MASTER_ADDR`` / ``MASTER_PORT``), through :func:`process_group`.

    Parameters
    ----------
    config : TrainConfig
        The run; validated first.
    dataset : ecp.experiments.data.Dataset
        Its uint8 images are converted to ``config.dtype``.
    device : {"cpu", "cuda"}
        Where to train (see :func:`resolve_device`).
    world : World or None
        This worker's place; None: a process on its own.
    timeout_s : float
        Seconds a worker waits for the others (rendezvous, every exchange) before failing.
    threads : int or None
        Threads of ecp's kernels and of PyTorch's CPU ops in this worker; None: leave them.
    on_start : callable or None
        Called as ``on_start(model)`` before training (``model.modes`` lists the Ks).
    on_batch : callable or None
        Called after each batch as ``on_batch(epoch, batches_done, batches_total, mean_loss)``.
    on_epoch : callable or None
        Called with each epoch's record as it finishes.

    Returns
    -------
    dict
        The keys of :func:`ecp.experiments.train.run` (``conv_time_s`` None in each epoch), plus
        ``engine`` ("torch"), ``device`` ("cpu" or "cuda") and ``world_size``.

    Raises
    ------
    ValueError, TypeError
        A bad ``config`` field, an unavailable device, images that are not 28x28, an empty test set.
    """
    from . import data

    config.validate()
    world = world or World()
    dev = resolve_device(device, world)
    if threads is not None:
        set_num_threads(threads)
        torch.set_num_threads(threads)
    torch.manual_seed(config.seed)
    tdtype = _TORCH_DTYPES[config.dtype]
    x_train = torch.from_numpy(data.to_float(dataset.train_images, np.dtype(config.dtype))).to(dev)
    x_test = torch.from_numpy(data.to_float(dataset.test_images, np.dtype(config.dtype))).to(dev)
    y_train = torch.from_numpy(np.asarray(dataset.train_labels, np.int64)).to(dev)
    y_test = torch.from_numpy(np.asarray(dataset.test_labels, np.int64)).to(dev)
    if tuple(x_train.shape[2:]) != (28, 28):
        raise ValueError(f"the paper's networks take 28x28 images, got {x_train.shape[2]}x{x_train.shape[3]}")
    if len(y_test) == 0:
        raise ValueError("the test set is empty: use limit_test >= 1")
    if len(y_train) == 0:
        raise ValueError("the training set is empty")
    model = build_torch_network(config.net, config.pool, config.mode, seed=config.seed,
                                dtype=config.dtype, eval_mode=config.eval_mode).to(dev, tdtype)
    data_rng = np.random.default_rng(models.seed_streams(config.seed)[2])
    records, diverged = [], None
    with process_group(world, dev, timeout_s):
        trained = model
        if world.size > 1:
            trained = nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
        optimizer = _make_optimizer(trained, config)
        if on_start is not None:
            on_start(model)
        for epoch in range(1, config.epochs + 1):
            hook = None if on_batch is None else (lambda done, total, loss, e=epoch: on_batch(e, done, total, loss))
            for group in optimizer.param_groups:
                group["lr"] = lr_for_epoch(config, epoch)
            order = torch.from_numpy(data_rng.permutation(len(y_train))).to(dev)
            try:
                train_time, train_loss = _train_epoch(trained, optimizer, x_train, y_train, order, config, world, hook)
            except Diverged as exc:
                diverged = {"epoch": epoch, "batch": exc.batch, "loss": exc.loss}
                break
            t0 = time.perf_counter()
            accuracy = _evaluate(model, x_test, y_test, config.eval_batch_size, world)
            record = {"epoch": epoch, "train_time_s": train_time, "test_time_s": time.perf_counter() - t0,
                      "conv_time_s": None, "train_loss": train_loss, "test_accuracy": accuracy}
            records.append(record)
            if on_epoch is not None:
                on_epoch(record)
    best, first = summarize(records)
    return {
        "net": config.net, "pool": config.pool, "mode": mode_record(model.modes),
        "eval_mode": mode_record(model.eval_modes), "epochs": records,
        "best_test_accuracy": best, "first_epoch_at_98": first, "diverged": diverged is not None,
        "diverged_at": diverged, "engine": "torch", "device": dev.type, "world_size": world.size,
    }


def default_threads(world: World) -> int:
    """The cores of this process's CPU set shared out among the workers of this machine (at least 1).

    Parameters
    ----------
    world : World
        The worker's place (``local_size``).

    Returns
    -------
    int
        ``cores // local_size``, at least 1.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // world.local_size)
