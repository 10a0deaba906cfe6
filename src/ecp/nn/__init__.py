"""ecp.nn: a small NumPy network stack over ecp's kernels -- layers, loss, optimizers, models.

Layers (:mod:`ecp.nn.layers`), the optimizers (:mod:`ecp.nn.optim`) and the paper's networks
(:mod:`ecp.nn.models`).
"""
from . import layers, models, optim
from .layers import *  # noqa: F401,F403  (the layer classes, re-exported)
from .layers import __all__ as _layer_names

__all__ = [*_layer_names, "layers", "models", "optim"]
