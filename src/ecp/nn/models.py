"""The paper's networks (its Tables 1 and 2), for 28x28 one-channel images and 10 classes.

``one-conv``::

    conv 5x5x20 -> pool 2x2 -> ReLU -> FC 100 -> ReLU -> FC 10 -> softmax

``two-conv``::

    conv 5x5x20 -> pool 2x2 -> ReLU -> conv 5x5x32 -> pool 2x2 -> ReLU -> FC 100 -> ReLU -> FC 10 -> softmax

Convolutions are "valid" (no padding), as in the paper: 28 -> 24 -> 12 (-> 8 -> 4).

Pooling is one of

- ``"max"``, ``"avg"``: full convolution, then max / average pooling;
- ``"random"``: full convolution, then Random Pooling with mode K;
- ``"ecp"``: EasyConvPooling -- Easy Convolution computing only the pooled outputs;
- ``"easy-avg"``: easy average pooling -- the convolution and average pooling as one stride-2
  convolution with a widened kernel (:class:`~ecp.nn.EasyAvgConvPool2d`): the function of
  ``"avg"``, to float rounding, at a fraction of its convolution cost.

With the same seed, ``random`` and ``ecp`` networks have identical weights and modes and so
compute the same function; only their time differs; so do ``avg`` and ``easy-avg``. All poolings get identical initial
weights from the same seed (the weights and the modes come from separate streams).

Mode policies (``random`` and ``ecp``): ``mode="random"`` (the paper's) draws one K per layer and
keeps it for training and testing; ``mode="per-batch"`` draws a new K per layer for every training
batch (each layer from a generator of its own, seeded from the mode stream) and evaluates with
``eval_mode``: a fixed K (0 by default) or ``"ensemble"``, the average of the logits over the 4
modes (all per-batch layers taking the same K in each of the 4 passes).
"""
from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from .container import Sequential
from .init import PER_BATCH, resolve_mode
from .layers import (
    AvgPool2d,
    Conv2d,
    EasyAvgConvPool2d,
    EasyConvPool2d,
    Flatten,
    Linear,
    MaxPool2d,
    RandomPool2d,
    ReLU,
)

__all__ = ["NETS", "POOLS", "seed_streams", "build_network"]

NETS = ("one-conv", "two-conv")
POOLS = ("max", "avg", "random", "ecp", "easy-avg")

#: Layer widths from the paper's Tables 1 and 2: (conv channels..., hidden FC units).
_CONV_CHANNELS = {"one-conv": (20,), "two-conv": (20, 32)}
_KERNEL = 5
_HIDDEN = 100
_CLASSES = 10
_IMAGE = 28


def seed_streams(seed: int | np.random.SeedSequence) -> tuple[np.random.SeedSequence, ...]:
    """Three independent seed sequences from one seed: (weights, modes, data order).

    Parameters
    ----------
    seed : int >= 0 or numpy.random.SeedSequence
        The run's seed.

    Returns
    -------
    tuple of 3 numpy.random.SeedSequence
        Spawned from ``seed``: the same seed always gives the same three streams.

    Raises
    ------
    TypeError, ValueError
        ``seed`` neither a non-negative integer nor a SeedSequence.
    """
    if isinstance(seed, np.random.SeedSequence):
        ss = seed
    else:
        if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be a non-negative integer, got {type(seed).__name__} {seed!r}")
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        ss = np.random.SeedSequence(int(seed))
    return tuple(ss.spawn(3))


def _modes(pool, mode, count, rng):
    if pool in ("max", "avg", "easy-avg"):
        if mode is not None:
            raise ValueError(f"mode applies only to pool 'random' or 'ecp', not {pool!r} (got mode={mode!r})")
        return [None] * count
    if mode is None:
        mode = "random"
    if mode == PER_BATCH:
        return [PER_BATCH] * count
    # One K per pooling layer; "random" draws each from the seeded mode stream.
    return [resolve_mode(mode, rng) for _ in range(count)]


def build_network(net: str = "two-conv", pool: str = "ecp", mode: int | str | None = None, *,
                  seed: int | np.random.SeedSequence = 0, dtype: DTypeLike = np.float32,
                  eval_mode: int | str | None = None) -> Sequential:
    """One of the paper's networks as a :class:`ecp.nn.Sequential`.

    Parameters
    ----------
    net : {"one-conv", "two-conv"}
    pool : {"max", "avg", "random", "ecp", "easy-avg"}
    mode : int 0..3, "random", "per-batch" or None
        Mode K of the random / ECP pooling layers. ``"random"`` (the default for those
        poolings) draws one K per pooling layer from the seeded generator, as in the paper; the
        same K is used for training and testing. ``"per-batch"``: a new K per layer for every
        training batch. Must be None for max / avg / easy-avg pooling.
    seed : int or numpy.random.SeedSequence
        Seeds the weights and the modes (see :func:`seed_streams`).
    dtype : float32 (default) or float64
        Of the parameters and of the inputs the network takes.
    eval_mode : int 0..3, "ensemble" or None
        K of the random / ECP pooling layers in evaluation (see
        :class:`~ecp.nn.EasyConvPool2d`); None: the training K, or 0 for ``mode="per-batch"``.
        ``"ensemble"`` needs ``mode="per-batch"``. Must be None for max / avg / easy-avg pooling.

    Returns
    -------
    ecp.nn.Sequential
        Input (N, 1, 28, 28) of ``dtype``, output logits (N, 10). ``.modes`` lists the K of
        each pooling layer (empty for max / avg / easy-avg). The first convolution skips its input
        gradient.

    Raises
    ------
    ValueError
        An unknown ``net`` or ``pool``, a bad ``mode`` or ``eval_mode``, or either given to max / avg /
        easy-avg pooling, or ``eval_mode="ensemble"`` without ``mode="per-batch"``.
    TypeError
        A ``dtype`` other than float32 / float64, or a bad ``seed``.

    Examples
    --------
    >>> import numpy as np
    >>> from ecp.nn.models import build_network
    >>> net = build_network("two-conv", "ecp", mode=2, seed=0)
    >>> net.modes, net.forward(np.zeros((3, 1, 28, 28), np.float32)).shape
    ([2, 2], (3, 10))
    """
    if net not in NETS:
        raise ValueError(f"net must be one of {', '.join(NETS)}, got {net!r}")
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    init_ss, mode_ss, _ = seed_streams(seed)
    init_rng, mode_rng = np.random.default_rng(init_ss), np.random.default_rng(mode_ss)
    channels = _CONV_CHANNELS[net]
    modes = _modes(pool, mode, len(channels), mode_rng)
    if eval_mode is not None and pool not in ("random", "ecp"):
        raise ValueError(f"eval_mode applies only to pool 'random' or 'ecp', not {pool!r} "
                         f"(got eval_mode={eval_mode!r})")
    policy = dict(eval_mode=eval_mode, mode_rng=mode_rng) if pool in ("random", "ecp") else {}

    layers = []
    in_ch, size = 1, _IMAGE
    for i, (out_ch, k) in enumerate(zip(channels, modes)):
        common = dict(rng=init_rng, dtype=dtype, input_grad=i > 0)
        if pool == "ecp":
            layers.append(EasyConvPool2d(in_ch, out_ch, _KERNEL, mode=k, **common, **policy))
        elif pool == "easy-avg":
            layers.append(EasyAvgConvPool2d(in_ch, out_ch, _KERNEL, **common))
        else:
            layers.append(Conv2d(in_ch, out_ch, _KERNEL, **common))
            layers.append({"max": MaxPool2d, "avg": AvgPool2d}[pool]() if pool != "random"
                          else RandomPool2d(k, rng=mode_rng, eval_mode=eval_mode))
        # Pool, then ReLU (the paper's order); in place: no layer needs its output back.
        layers.append(ReLU(inplace=True))
        in_ch, size = out_ch, (size - _KERNEL + 1) // 2
    layers += [
        Flatten(),
        Linear(in_ch * size * size, _HIDDEN, rng=init_rng, dtype=dtype, init="he"),
        ReLU(inplace=True),
        Linear(_HIDDEN, _CLASSES, rng=init_rng, dtype=dtype, init="lecun"),
    ]
    return Sequential(layers)
