"""A small NumPy network stack over ecp's kernels, in PyTorch's conventions.

- layers (:mod:`ecp.nn.layers`): :class:`Conv2d`, :class:`EasyConvPool2d` (the fused
  EasyConvPooling layer), :class:`EasyAvgConvPool2d` (convolution and average pooling fused,
  exactly), :class:`RandomPool2d`, :class:`MaxPool2d`, :class:`AvgPool2d`,
  :class:`ReLU`, :class:`Flatten`, :class:`Linear`, on the base class :class:`Layer`;
- the loss (:mod:`ecp.nn.loss`): :class:`SoftmaxCrossEntropy`;
- the container (:mod:`ecp.nn.container`): :class:`Sequential`;
- seeded generators and initialisers (:mod:`ecp.nn.init`), the optimizers (:mod:`ecp.nn.optim`)
  and the paper's networks (:mod:`ecp.nn.models`).

``layer(x)`` is ``layer.forward(x)``; ``.train()`` / ``.eval()`` set ``.training`` (through every
layer of a Sequential); ``backward(dy)`` returns the input gradient and overwrites ``grads``.
The ecp 0.1 class names (``Conv2D``, ``EasyConvPool2D``, ``RandomPool2D``, ``MaxPool2D``,
``AvgPool2D``) and ``forward(x, training)`` work until ecp 0.3, with a FutureWarning; networks
pickled by ecp 0.1 load.
"""
from typing import Any

from . import container, init, layers, loss, models, optim
from .container import Sequential
from .init import as_generator, resolve_mode  # noqa: F401  (ecp 0.1 had them here; not in __all__)
from .layers import (
    AvgPool2d,
    Conv2d,
    EasyAvgConvPool2d,
    EasyConvPool2d,
    Flatten,
    Layer,
    Linear,
    MaxPool2d,
    RandomPool2d,
    ReLU,
)
from .loss import SoftmaxCrossEntropy

__all__ = [
    "Layer", "Conv2d", "EasyConvPool2d", "EasyAvgConvPool2d", "RandomPool2d",
    "MaxPool2d", "AvgPool2d", "ReLU", "Flatten", "Linear",
    "SoftmaxCrossEntropy", "Sequential",
    "container", "init", "layers", "loss", "models", "optim",
]


def __getattr__(name: str) -> Any:
    cls = layers._renamed_class(name)
    if cls is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return cls
