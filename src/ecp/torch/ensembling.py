"""Ensemble evaluation: a model's output averaged over the modes of its random-pooling modules.

``ensemble(model)(x)`` runs ``model`` 4 times, once per mode K = 0..3, with every
:class:`~ecp.torch.EasyConvPool2d` (``pool="random"``) and :class:`~ecp.torch.RandomPool2d` in it
taking that same K, and returns the mean of the 4 outputs: the average of the logits over the
modes (4 times the cost of one pass), which averaging feature maps inside a module would not give.
Modules of p x p windows have p^2 modes: the passes then are p^2 (the least common multiple of the
modules' counts when they differ; in pass K a module takes K modulo its count).
It is how modules built with ``eval_mode="ensemble"`` are evaluated (they refuse a plain
evaluation-mode forward), and it works as well on any model, a converted one included.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

from torch import Tensor, nn

from .modules import _ModeBuffer

__all__ = ["Ensemble", "ensemble"]


def _random_modules(model: nn.Module) -> list[_ModeBuffer]:
    """The modules of ``model`` with a mode K (random-pooling EasyConvPool2d, RandomPool2d)."""
    return [m for m in model.modules() if isinstance(m, _ModeBuffer) and getattr(m, "k", None) is not None]


@contextmanager
def _forced(modules: list[_ModeBuffer], k: int) -> Iterator[None]:
    """Every module of ``modules`` uses mode ``k`` inside the block (in any training state)."""
    for m in modules:
        m._ensemble_k = k % m.n_modes
    try:
        yield
    finally:
        for m in modules:
            m._ensemble_k = None


class Ensemble(nn.Module):
    """``model`` whose output is the mean over the 4 modes of its random-pooling modules.

    Parameters
    ----------
    model : torch.nn.Module
        The wrapped model (a submodule: its parameters are this module's; its training state is
        left as it is, so call ``.eval()`` for evaluation).

    Attributes
    ----------
    model : torch.nn.Module
        The wrapped model.

    Raises
    ------
    TypeError
        ``model`` is not a ``torch.nn.Module``.
    ValueError
        ``model`` holds no module with a mode K (nothing to average over).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not _random_modules(model):
            raise ValueError("model holds no ecp.torch random-pooling module (EasyConvPool2d with pool='random' or "
                             "RandomPool2d): there are no modes to average over")
        self.model = model

    def forward(self, *args, **kwargs) -> Tensor:
        """Mean of ``model(*args, **kwargs)`` over K = 0..3, every random-pooling module taking K.

        Parameters
        ----------
        *args, **kwargs
            The wrapped model's inputs.

        Returns
        -------
        Tensor
            The mean of the 4 outputs (differentiable: gradients flow through all 4 passes).
        """
        modules = _random_modules(self.model)
        passes = math.lcm(*(m.n_modes for m in modules))
        total = None
        for k in range(passes):
            with _forced(modules, k):
                y = self.model(*args, **kwargs)
            total = y if total is None else total + y
        return total / passes


def ensemble(model: nn.Module) -> Ensemble:
    """Wrap ``model`` for ensemble evaluation over the 4 modes.

    Parameters
    ----------
    model : torch.nn.Module
        A model with ecp.torch random-pooling modules (``EasyConvPool2d(pool="random")``,
        ``RandomPool2d``), e.g. one from :func:`ecp.torch.convert`, or one whose modules were
        built with ``mode="per-batch", eval_mode="ensemble"``.

    Returns
    -------
    Ensemble
        A module sharing ``model``'s parameters: ``ensemble(model)(x)`` is the mean of the 4
        outputs of ``model(x)``, every random-pooling module taking K in pass K (all the same K).

    Raises
    ------
    TypeError, ValueError
        As :class:`Ensemble`.

    Examples
    --------
    >>> import torch, ecp.torch
    >>> net = torch.nn.Sequential(ecp.torch.EasyConvPool2d(1, 4, 3, mode="per-batch", eval_mode="ensemble"),
    ...                           torch.nn.Flatten()).eval()
    >>> ecp.torch.ensemble(net)(torch.randn(2, 1, 8, 8)).shape
    torch.Size([2, 36])
    """
    return Ensemble(model)
