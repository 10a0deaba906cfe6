"""``ecp bench --torch-module``: a PyTorch training step, plain and after ``ecp.torch.convert()``.

Two networks, each timed as one training step (forward, cross-entropy loss, backward, SGD step):

- ``two-conv``: the paper's two-conv network with max pooling (:func:`ecp.experiments.torch_train.
  build_torch_network`), MNIST-shaped input (N, 1, 28, 28), batch 50 (the paper's);
- ``vgg-like``: 3 blocks of conv3x3-ReLU-conv3x3-ReLU-maxpool2x2 with 64, 128, 256 channels on
  (N, 3, 32, 32) input, batch 64, then a linear classifier (10 classes).

Each is converted (:func:`ecp.torch.convert`, mode K): every conv -> [ReLU] -> 2x2 max pool chain
becomes ``EasyConvPool2d -> [ReLU]``. The plain and the converted step are timed round-robin
(:func:`~ecp.experiments.bench.timing.time_round_robin`), on every device at hand (the CPU, and
CUDA when PyTorch sees a GPU; the GPU synchronised after each step). The converted model is a
different network (random instead of max pooling): the step is compared, not the numbers.

The record :func:`run_torch_module` returns (and ``--json`` writes) has the keys ``ecp_version``,
``created``, ``config`` (``threads``, ``repeats``, ``warmup``, ``mode``, ``dtype``, ``lr``,
``statistic``), ``system`` (as ``ecp bench``'s, with ``loadavg_end``) and ``models``: one record
per network and device with ``name``, ``device``, ``input_shape``, ``layers`` (a short
description), ``converted_chains`` (how many chains ``convert`` replaced), ``timings``
(``original`` and ``converted``: ``{"median_ms", "min_ms", "runs_ms"}``), ``speedup`` and
``speedup_min`` (original / converted, from the medians and the minima).
"""
from __future__ import annotations

import copy
import datetime
from collections.abc import Callable

from ... import __version__, set_num_threads
from .._machine import loadavg
from .timing import time_round_robin, timing_record

__all__ = ["TORCH_MODULE_NETS", "vgg_like", "run_torch_module"]

#: The networks ``--torch-module`` times.
TORCH_MODULE_NETS = ("two-conv", "vgg-like")


def vgg_like(channels=(64, 128, 256), in_channels: int = 3, size: int = 32, classes: int = 10):
    """The VGG-like stack: per width, conv3x3-ReLU-conv3x3-ReLU-maxpool2x2, then a linear classifier.

    Parameters
    ----------
    channels : sequence of int
        The width of each block (64, 128, 256 by default).
    in_channels : int
        Channels of the input.
    size : int
        Height and width of the input; divisible by ``2 ** len(channels)``.
    classes : int
        Outputs of the classifier.

    Returns
    -------
    torch.nn.Sequential
        Input (N, in_channels, size, size), output (N, classes).
    """
    from torch import nn

    layers, c = [], in_channels
    for width in channels:
        layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                   nn.MaxPool2d(2)]
        c = width
    side = size // 2 ** len(channels)
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * side * side, classes))


def _devices(torch) -> list[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _step(torch, model, x, y, lr, sync):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = torch.nn.functional.cross_entropy

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
        if sync:
            torch.cuda.synchronize()

    return step


def run_torch_module(threads: int | None = None, repeats: int = 15, warmup: int = 3, *, mode: int = 3,
                     nets=TORCH_MODULE_NETS, two_conv_batch: int = 50, vgg_batch: int = 64,
                     vgg_channels=(64, 128, 256), vgg_size: int = 32, devices=None, lr: float = 0.01,
                     progress: Callable | None = None) -> dict:
    """Time a training step of each network, plain and converted, per device.

    Parameters
    ----------
    threads : int or None
        Threads of ecp's kernels and of PyTorch's CPU ops; None: leave them as they are.
    repeats : int >= 1
        Timed steps of each contender (round-robin).
    warmup : int >= 0
        Untimed steps first.
    mode : int 0..3
        Mode K of the converted layers.
    nets : sequence of str
        Among :data:`TORCH_MODULE_NETS`.
    two_conv_batch, vgg_batch : int
        Batch sizes.
    vgg_channels : sequence of int
        Block widths of the VGG-like stack (smaller ones make a quick test).
    vgg_size : int
        Input height and width of the VGG-like stack.
    devices : sequence of str or None
        ``"cpu"``, ``"cuda"``; None: the CPU and CUDA when available.
    lr : float
        SGD learning rate of the step.
    progress : callable(str, transient=False) or None
        Receives progress messages.

    Returns
    -------
    dict
        The record described in the module docstring.

    Raises
    ------
    ImportError
        PyTorch is not installed.
    ValueError
        An unknown net or device, or CUDA asked for without a GPU.
    """
    try:
        import torch
    except ImportError:
        raise ImportError('--torch-module needs PyTorch, which is not installed: pip install "ecp[torch]"') from None
    import ecp.torch

    from ..torch_train import build_torch_network
    from .run import _system_info

    for net in nets:
        if net not in TORCH_MODULE_NETS:
            raise ValueError(f"nets must be among {', '.join(TORCH_MODULE_NETS)}, got {net!r}")
    devices = _devices(torch) if devices is None else list(devices)
    for dev in devices:
        if dev not in ("cpu", "cuda"):
            raise ValueError(f"devices must be cpu or cuda, got {dev!r}")
        if dev == "cuda" and not torch.cuda.is_available():
            raise ValueError("devices: cuda asked for, but PyTorch sees no CUDA device")
    if threads is not None:
        set_num_threads(threads)
        torch.set_num_threads(threads)
    record = {
        "ecp_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config": {"threads": torch.get_num_threads(), "repeats": repeats, "warmup": warmup, "mode": mode,
                   "dtype": "float32", "lr": lr, "statistic": "median of round-robin interleaved steps"},
        "system": _system_info(torch),
        "models": [],
    }
    gen = torch.Generator().manual_seed(0)
    for dev in devices:
        for net in nets:
            torch.manual_seed(0)
            if net == "two-conv":
                model, shape = build_torch_network("two-conv", "max", seed=0), (two_conv_batch, 1, 28, 28)
                layers = "conv5x5x20-maxpool-ReLU-conv5x5x32-maxpool-ReLU-FC100-ReLU-FC10"
            else:
                model, shape = vgg_like(vgg_channels, size=vgg_size), (vgg_batch, 3, vgg_size, vgg_size)
                layers = (" ".join(f"[conv3x3x{c}-ReLU-conv3x3x{c}-ReLU-maxpool]" for c in vgg_channels)
                          + " FC10")
            converted, report = ecp.torch.convert(copy.deepcopy(model), mode=mode, return_report=True)
            x = torch.randn(shape, generator=gen).to(dev)
            y = torch.randint(10, (shape[0],), generator=gen).to(dev)
            model, converted = model.to(dev), converted.to(dev)
            sync = dev == "cuda"
            calls = {"original": _step(torch, model, x, y, lr, sync),
                     "converted": _step(torch, converted, x, y, lr, sync)}
            times = time_round_robin(calls, repeats, warmup, progress=progress, label=f"{net} on {dev}")
            timings = {name: timing_record(t) for name, t in times.items()}
            record["models"].append({
                "name": net, "device": dev, "input_shape": list(shape), "layers": layers,
                "converted_chains": len(report.converted), "timings": timings,
                "speedup": timings["original"]["median_ms"] / timings["converted"]["median_ms"],
                "speedup_min": timings["original"]["min_ms"] / timings["converted"]["min_ms"],
            })
    record["system"]["loadavg_end"] = loadavg()
    return record

