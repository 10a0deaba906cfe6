"""EasyConvPooling inside PyTorch: functional ops with autograd, modules, and model conversion.

Needs PyTorch (``pip install "ecp[torch]"``); ``import ecp`` never imports it.

- :func:`easy_conv2d`, :func:`easy_avg_conv2d`, :func:`random_pool2d`, :func:`neighbor_fill` -- tensors in, tensors out,
  differentiable. CPU float32 / float64 tensors run on ecp's kernels (``torch.ops.ecp.*``, opaque
  custom ops that ``torch.compile``, ``torch.export`` and FX keep whole); other dtypes and devices
  run the same maths as plain PyTorch ops (a stride-2 convolution and a view).
- :class:`EasyConvPool2d` (``pool="random"`` or ``"avg"``), :class:`RandomPool2d`, :class:`NeighborFill` -- the
  modules.
- :func:`ensemble` -- a model's output averaged over the 4 modes of its random-pooling modules
  (the evaluation of ``eval_mode="ensemble"``).
- :func:`convert` -- turn every conv -> [element-wise] -> 2x2 pool chain of a model into
  :class:`EasyConvPool2d` -> [element-wise], with a :class:`ConversionReport` of what stayed.

See ``docs/torch.md``.
"""
try:
    import torch as _torch  # noqa: F401  (the check that PyTorch is there)
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by tests/test_torch.py
    raise ImportError('ecp.torch needs PyTorch, which is not installed: pip install "ecp[torch]"') from exc

from .conversion import ConversionReport, convert
from .ensembling import Ensemble, ensemble
from .functional import easy_avg_conv2d, easy_conv2d, neighbor_fill, random_pool2d
from .modules import EasyConvPool2d, NeighborFill, RandomPool2d

__all__ = ["easy_conv2d", "easy_avg_conv2d", "random_pool2d", "neighbor_fill", "EasyConvPool2d", "RandomPool2d",
           "NeighborFill", "convert", "ConversionReport", "ensemble", "Ensemble"]
