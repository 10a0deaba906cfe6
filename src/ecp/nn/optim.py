"""Optimizers that update parameter arrays in place from their gradient arrays.

Both take two lists of arrays of matching shapes and dtype -- parameters and gradients -- for
instance ``net.parameters()`` and ``net.gradients()`` of a :class:`ecp.nn.Sequential` (one flat
buffer each, so a step is a handful of vectorised operations whatever the network's size).
Their state buffers are allocated once, at construction; a step allocates nothing. A step over
C-contiguous arrays is one fused pass (``ecp/_kernels/_optim.pyx``); other layouts take the
NumPy expressions, with the same arithmetic.
"""
from __future__ import annotations

import numbers
from collections.abc import Iterable

import numpy as np

from .._kernels import _optim

__all__ = ["Optimizer", "SGD", "Adam"]


def _check_rate(value, name, *, minimum=0.0, maximum=None, open_min=False, open_max=False):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise TypeError(f"{name} must be a finite real number, got {value!r}")
    value = float(value)
    low_bad = value <= minimum if open_min else value < minimum
    high_bad = maximum is not None and (value >= maximum if open_max else value > maximum)
    if low_bad or high_bad:
        lo = "(" if open_min else "["
        hi = ")" if open_max else "]"
        raise ValueError(f"{name} must be in {lo}{minimum}, {maximum if maximum is not None else 'inf'}{hi}, "
                         f"got {value}")
    return value


def _flat(p, g):
    """True when the fused kernels can take p and g (and their zeros_like state) as 1-d views."""
    return p.flags.c_contiguous and g.flags.c_contiguous and p.size > 0


class Optimizer:
    """Base class: holds the parameter and gradient lists; subclasses implement :meth:`step`.

    Parameters
    ----------
    params : iterable of ndarray
        Float32 or float64, writeable: updated in place.
    grads : iterable of ndarray
        One per parameter, of its shape and dtype; read by each :meth:`step`.

    Attributes
    ----------
    params, grads : list of ndarray
    steps : int
        Steps taken so far.

    Raises
    ------
    TypeError
        A parameter or gradient that is not a float32 / float64 ndarray.
    ValueError
        Lists of different lengths, a gradient not matching its parameter, or a read-only parameter.
    """

    def __init__(self, params: Iterable[np.ndarray], grads: Iterable[np.ndarray]) -> None:
        params, grads = list(params), list(grads)
        if len(params) != len(grads):
            raise ValueError(f"params and grads must be lists of the same length, got {len(params)} and {len(grads)}")
        for i, (p, g) in enumerate(zip(params, grads)):
            if not isinstance(p, np.ndarray) or not isinstance(g, np.ndarray):
                raise TypeError(f"params[{i}] and grads[{i}] must be numpy arrays")
            if p.dtype not in (np.float32, np.float64):
                raise TypeError(f"params[{i}] must be float32 or float64, got {p.dtype}")
            if p.shape != g.shape or p.dtype != g.dtype:
                raise ValueError(f"grads[{i}] must match params[{i}] ({p.shape} {p.dtype}), got {g.shape} {g.dtype}")
            if not p.flags.writeable:
                raise ValueError(f"params[{i}] must be writeable (it is updated in place)")
        self.params, self.grads = params, grads
        self.steps = 0

    def step(self) -> None:  # pragma: no cover - abstract
        """Apply one update from the current gradients."""
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (heavy-ball) momentum.

    ``v = momentum * v - lr * g; p += v`` (with ``momentum=0``: ``p -= lr * g``), in the
    parameters' dtype.

    Parameters
    ----------
    params, grads : iterable of ndarray
        Same shapes and dtype, pairwise (see :class:`Optimizer`).
    lr : float > 0, default 1e-3
        The paper's learning rate.
    momentum : float in [0, 1), default 0
        Weight of the previous step (0: plain SGD, no velocity buffer).

    Raises
    ------
    TypeError, ValueError
        As :class:`Optimizer`, or ``lr`` / ``momentum`` out of range.
    """

    def __init__(self, params: Iterable[np.ndarray], grads: Iterable[np.ndarray], *, lr: float = 1e-3,
                 momentum: float = 0.0) -> None:
        super().__init__(params, grads)
        self.lr = _check_rate(lr, "lr", open_min=True)
        self.momentum = _check_rate(momentum, "momentum", maximum=1.0, open_max=True)
        self._velocity = [np.zeros_like(p) for p in self.params] if self.momentum else None
        self._tmp = [np.empty_like(p) for p in self.params]

    def step(self) -> None:
        """Apply one update from the current gradients (allocates nothing)."""
        self.steps += 1
        for i, (p, g) in enumerate(zip(self.params, self.grads)):
            if _flat(p, g):
                vel = self._velocity[i] if self._velocity is not None else p
                _optim.sgd_update(p.reshape(-1), g.reshape(-1), vel.reshape(-1), self.lr,
                                  self.momentum, self._velocity is not None)
                continue
            tmp = self._tmp[i]
            np.multiply(g, p.dtype.type(self.lr), out=tmp)
            if self._velocity is None:
                p -= tmp
            else:
                v = self._velocity[i]
                v *= p.dtype.type(self.momentum)
                v -= tmp
                p += v

    def __repr__(self) -> str:
        return f"SGD(lr={self.lr}, momentum={self.momentum})"


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction.

    ``m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
    p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)`` at step t = 1, 2, ...
    (PyTorch's ``torch.optim.Adam`` without weight decay), in the parameters' dtype.

    Parameters
    ----------
    params, grads : iterable of ndarray
        Same shapes and dtype, pairwise (see :class:`Optimizer`).
    lr : float > 0, default 1e-3
        Step size.
    betas : (float, float) in [0, 1), default (0.9, 0.999)
        Decay rates of the first and second moment averages.
    eps : float > 0, default 1e-8
        Added to the root of the corrected second moment.

    Raises
    ------
    TypeError, ValueError
        As :class:`Optimizer`, or ``lr``, ``betas`` or ``eps`` not numbers in range.
    """

    def __init__(self, params: Iterable[np.ndarray], grads: Iterable[np.ndarray], *, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        super().__init__(params, grads)
        self.lr = _check_rate(lr, "lr", open_min=True)
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise TypeError(f"betas must be a pair of numbers, got {betas!r}") from None
        self.betas = (_check_rate(b1, "betas[0]", maximum=1.0, open_max=True),
                      _check_rate(b2, "betas[1]", maximum=1.0, open_max=True))
        self.eps = _check_rate(eps, "eps", open_min=True)
        self._m = [np.zeros_like(p) for p in self.params]
        self._v = [np.zeros_like(p) for p in self.params]
        self._tmp = [np.empty_like(p) for p in self.params]

    def step(self) -> None:
        """Apply one update from the current gradients (allocates nothing)."""
        self.steps += 1
        b1, b2 = self.betas
        bc1 = 1.0 - b1 ** self.steps
        bc2 = 1.0 - b2 ** self.steps
        # p -= lr * sqrt(bc2) / bc1 * m / (sqrt(v) + eps * sqrt(bc2)): the same update with the
        # corrections folded into two scalars.
        step_size = self.lr * np.sqrt(bc2) / bc1
        eps_hat = self.eps * np.sqrt(bc2)
        for p, g, m, v, tmp in zip(self.params, self.grads, self._m, self._v, self._tmp):
            if _flat(p, g):
                _optim.adam_update(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1),
                                   b1, b2, step_size, eps_hat)
                continue
            t = p.dtype.type
            m *= t(b1)
            np.multiply(g, t(1.0 - b1), out=tmp)
            m += tmp
            v *= t(b2)
            np.multiply(g, g, out=tmp)
            tmp *= t(1.0 - b2)
            v += tmp
            np.sqrt(v, out=tmp)
            tmp += t(eps_hat)
            np.divide(m, tmp, out=tmp)
            tmp *= t(step_size)
            p -= tmp

    def __repr__(self) -> str:
        return f"Adam(lr={self.lr}, betas={self.betas}, eps={self.eps})"
