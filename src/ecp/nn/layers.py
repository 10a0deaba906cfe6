"""Layers over the ecp kernels, in PyTorch's conventions: NCHW, ``layer(x)``, ``.train()`` / ``.eval()``.

Every layer is a small Python object with

- ``forward(x)`` (also ``layer(x)``) -> output; in training mode (``layer.training``, True after
  construction) it caches what its backward needs, in evaluation mode it caches nothing;
- ``backward(dy)`` -> gradient with respect to the input of the last training-mode forward (or
  ``None`` for a convolution or linear layer built with ``input_grad=False``); it *overwrites*
  ``grads[name]`` for each of its ``params``;
- ``params`` / ``grads``: dicts name -> ndarray of matching shapes (empty for layers without
  parameters). Optimizers update ``params`` in place.

Layers never change the dtype (float32 or float64). Weights and random modes come from an explicit
seeded generator (see :mod:`ecp.nn.init`). The convolution layers add the time spent inside the
convolution kernels (forward and backward) to ``conv_seconds``: the paper's "PureConvTime".

The loss (:class:`~ecp.nn.loss.SoftmaxCrossEntropy`) and the container
(:class:`~ecp.nn.container.Sequential`) live in their own modules; all are re-exported by
:mod:`ecp.nn`. The spellings of ecp 0.1 (``Conv2D``, ..., ``forward(x, training)``) still work
until ecp 0.3, with a FutureWarning.
"""
from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from .. import _plans
from .. import activation as _activation
from .. import pool as _pool
from .._kernels import _blas
from .._validation import check_int, check_window, kernel_ready, padding_as_given, window_output_shape

# as_generator and resolve_mode stay importable from here, where ecp 0.1 defined them.
from .init import (
    ENSEMBLE,
    PER_BATCH,
    as_generator,
    he_normal,
    lecun_normal,
    mode_generator,
    resolve_eval_mode,
    resolve_mode,
)

__all__ = [
    "Layer", "Conv2d", "EasyConvPool2d", "EasyAvgConvPool2d", "RandomPool2d",
    "MaxPool2d", "AvgPool2d", "ReLU", "Flatten", "Linear",
]

_perf_counter = time.perf_counter
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

#: ecp 0.1 class names -> the current ones (module ``__getattr__`` below and in ``ecp.nn``).
RENAMED = {
    "Conv2D": "Conv2d",
    "EasyConvPool2D": "EasyConvPool2d",
    "RandomPool2D": "RandomPool2d",
    "MaxPool2D": "MaxPool2d",
    "AvgPool2D": "AvgPool2d",
}

# Names this module held before the loss and the container got modules of their own.
_MOVED = {"SoftmaxCrossEntropy": "loss", "Sequential": "container"}


def _renamed_class(name: str) -> type | None:
    """The current class for an ecp 0.1 class name (with a FutureWarning), or None."""
    new = RENAMED.get(name)
    if new is None:
        return None
    warnings.warn(f"ecp.nn.{name} is renamed ecp.nn.{new} (PyTorch's spelling); the old name is removed in ecp 0.3",
                  FutureWarning, stacklevel=3)
    return globals()[new]


def __getattr__(name: str) -> Any:
    cls = _renamed_class(name)
    if cls is not None:
        return cls
    if name in _MOVED:
        import importlib
        return getattr(importlib.import_module(f"{__package__}.{_MOVED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _training_override(training: bool, owner: str) -> bool:
    """``training`` given to ``forward``: still obeyed for this call, with a FutureWarning."""
    warnings.warn(f"{owner}.forward(x, training) is deprecated: set the mode with .train() / .eval() and call "
                  f"forward(x); the argument is removed in ecp 0.3", FutureWarning, stacklevel=3)
    return bool(training)


def _check_dtype(dtype: DTypeLike) -> np.dtype:
    """``dtype`` as a numpy dtype; TypeError unless float32 or float64."""
    dtype = np.dtype(dtype)
    if dtype not in _FLOATS:
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def _check_input(x: Any, owner: str, ndim: int, dtype: np.dtype | None) -> None:
    """TypeError / ValueError naming ``owner`` unless ``x`` is an ``ndim``-D array of ``dtype``."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{owner}: x must be a numpy array, got {type(x).__name__}")
    if x.ndim != ndim:
        raise ValueError(f"{owner}: x must be {ndim}-D, got shape {x.shape}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{owner}: x must have dtype {dtype} (the layer's), got {x.dtype}")


# ------------------------------------------------------------------------------------ layers

class Layer:
    """Base class: a layer without parameters whose forward and backward are identities.

    Subclasses implement :meth:`_forward` (given the effective mode) and :meth:`backward`.

    Attributes
    ----------
    params : dict of str to ndarray
        Trainable parameters (updated in place by the optimizers).
    grads : dict of str to ndarray
        Gradients of the loss with respect to ``params``, overwritten by each :meth:`backward`.
    training : bool
        True (the state after construction): :meth:`forward` caches what :meth:`backward`
        needs. False (after :meth:`eval`): it caches nothing, and :meth:`backward` raises.
    """

    # Class-level defaults: empty for layers without parameters (Sequential gives every layer
    # dicts of its own), and the mode of layers unpickled from ecp 0.1, which had no attribute.
    params: dict[str, np.ndarray] = {}
    grads: dict[str, np.ndarray] = {}
    training: bool = True

    def train(self, mode: bool = True) -> Layer:
        """Set training mode (``mode=True``) or evaluation mode (``mode=False``).

        Parameters
        ----------
        mode : bool, default True
            True for training mode, False for evaluation mode.

        Returns
        -------
        Layer
            ``self``, so that ``layer = Conv2d(...).eval()`` reads as in PyTorch.
        """
        self.training = bool(mode)
        return self

    def eval(self) -> Layer:
        """Set evaluation mode: same as ``train(False)``.

        Returns
        -------
        Layer
            ``self``.
        """
        return self.train(False)

    def forward(self, x: np.ndarray, training: bool | None = None) -> np.ndarray:
        """Output of the layer for input ``x``.

        Parameters
        ----------
        x : ndarray
            The layer's input (see the class for shapes and dtypes).
        training : bool, optional
            Deprecated (FutureWarning): overrides :attr:`training` for this call only.

        Returns
        -------
        ndarray
            The output; in training mode the layer keeps what :meth:`backward` needs.
        """
        if training is None:
            return self._forward(x, self.training)
        return self._forward(x, _training_override(training, type(self).__name__))

    def __call__(self, x: np.ndarray, training: bool | None = None) -> np.ndarray:
        """Same as :meth:`forward`.

        Parameters
        ----------
        x : ndarray
            The input.
        training : bool, optional
            Deprecated, as in :meth:`forward`.

        Returns
        -------
        ndarray
            The output.
        """
        return self.forward(x) if training is None else self.forward(x, training)

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        return x

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        """Gradient with respect to the input of the last training-mode forward.

        Parameters
        ----------
        dy : ndarray
            Gradient of the loss with respect to this layer's output.

        Returns
        -------
        ndarray or None
            Gradient with respect to the input (None for a layer built with ``input_grad=False``).

        Raises
        ------
        RuntimeError
            When no training-mode forward came before.
        """
        return dy

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _ModePolicy:
    """Training and evaluation modes of a random-pooling layer (EasyConvPool2d, RandomPool2d).

    ``mode``: an int K (fixed) or ``"per-batch"`` (a new K from the layer's own generator
    ``_mode_rng`` for every training forward); ``eval_mode``: the K of evaluation-mode forwards, or
    ``"ensemble"``; ``last_mode``: the K of the last training forward, which its backward uses.
    ``_ensemble_k`` is set by :class:`~ecp.nn.container.Sequential` during its ensemble passes.
    """

    # class-level defaults: layers unpickled from earlier versions had a fixed K, no policy and
    # the 2x2 window of stride 2
    eval_mode: int | str | None = None
    last_mode: int | None = None
    _mode_rng = None
    _ensemble_k: int | None = None
    pool_size: int = 2
    pool_stride: int = 2

    @property
    def n_modes(self) -> int:
        """The modes of the pooling window: p^2 (4 for the 2x2 window)."""
        return self.pool_size * self.pool_size

    def _window_mode(self, k):
        """The runners' mode of K: K itself for the 2x2 window of stride 2, else (K, p, s)."""
        p, s = self.pool_size, self.pool_stride
        return k if p == 2 and s == 2 else (k, p, s)

    def _init_modes(self, mode, eval_mode, rng, mode_rng):
        n = self.n_modes
        draws, name = (rng, "rng") if mode_rng is None else (mode_rng, "mode_rng")
        if isinstance(mode, str) and mode == PER_BATCH:
            if draws is None:
                raise TypeError("mode='per-batch' needs a seeded generator (rng or mode_rng) to draw K from")
            self._mode_rng = mode_generator(draws, name)
            self.mode = PER_BATCH
        else:
            if isinstance(mode, str) and mode != "random":
                raise ValueError(f"mode must be an integer 0..{n - 1} or 'random' (one K) or 'per-batch', got {mode!r}")
            self.mode = resolve_mode(mode, draws, n_modes=n)
        self.eval_mode = resolve_eval_mode(eval_mode, self.mode, n_modes=n)
        self.last_mode = None

    def _pick_mode(self, training: bool) -> int:
        """K of this forward: drawn (per-batch) or fixed in training, ``eval_mode`` in evaluation."""
        n = self.n_modes
        if training:
            k = int(self._mode_rng.integers(n)) if self.mode == PER_BATCH else check_int(self.mode, "mode", 0, n - 1)
            self.last_mode = k
            return k
        if self._ensemble_k is not None:
            return self._ensemble_k
        k = self.mode if self.eval_mode is None else self.eval_mode
        if k == ENSEMBLE:
            raise RuntimeError(f"{type(self).__name__} has eval_mode='ensemble': the ensemble averages the network's "
                               f"logits, so evaluate it through ecp.nn.Sequential (forward or predict), not alone")
        return check_int(k, "eval_mode", 0, n - 1)

    def _policy_repr(self) -> str:
        s = f"mode={self.mode!r}" if isinstance(self.mode, str) else f"mode={self.mode}"
        ev = self.eval_mode
        if ev is not None and ev != self.mode:
            s += f", eval_mode={ev!r}" if isinstance(ev, str) else f", eval_mode={ev}"
        return s + _window_repr(self)


def _window_repr(layer) -> str:
    """``, pool_size=p, pool_stride=s`` for a window other than 2x2 / 2, else nothing."""
    p, s = layer.pool_size, layer.pool_stride
    return "" if (p, s) == (2, 2) else f", pool_size={p}, pool_stride={s}"


class _ConvBase(Layer):
    """Shared parts of Conv2d and EasyConvPool2d: weights (O, C, k, k), bias (O,), kernel timing,
    and the call plans of the last forward and backward (reused while the shapes fit)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int | tuple[int, int],
                 rng: np.random.Generator | int, dtype: DTypeLike, input_grad: bool) -> None:
        in_channels = check_int(in_channels, "in_channels", 1)
        out_channels = check_int(out_channels, "out_channels", 1)
        kernel_size = check_int(kernel_size, "kernel_size", 1)
        self.padding = padding_as_given(padding)   # an int, or a tuple (ph, pw)
        self.dtype = _check_dtype(dtype)
        self.input_grad = bool(input_grad)
        self.training = True
        rng = as_generator(rng)
        fan_in = in_channels * kernel_size * kernel_size
        self.params = {
            "w": he_normal(rng, (out_channels, in_channels, kernel_size, kernel_size), fan_in, self.dtype),
            "b": np.zeros(out_channels, dtype=self.dtype),
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.conv_seconds = 0.0
        self._x = None
        self._plans = [None, None]   # of the last forward and backward call (see ecp._plans.forward)

    @property
    def in_channels(self) -> int:
        """Input channels C (``w.shape[1]``)."""
        return self.params["w"].shape[1]

    @property
    def out_channels(self) -> int:
        """Output channels O (``w.shape[0]``)."""
        return self.params["w"].shape[0]

    @property
    def kernel_size(self) -> int:
        """Window size k (``w.shape[2]``)."""
        return self.params["w"].shape[2]

    # The mode K of the easy convolution, None for the full one (Conv2d).
    _mode = None

    def _kernel_forward(self, x):
        y, self._plans[0] = _plans.forward(x, self.params["w"], self.params["b"], self.padding, self._mode,
                                           self._plans[0])
        return y

    def _kernel_backward(self, dy, x):
        grads, self._plans[1] = _plans.backward(dy, x, self.params["w"], self.padding, self._mode,
                                                self.input_grad, self._plans[1], self.grads["w"],
                                                self.grads["b"])
        return grads

    def __setstate__(self, state):
        # layers pickled before they kept their call plans have none
        self.__dict__.update(state)
        self.__dict__.setdefault("_plans", [None, None])

    def _forward(self, x, training):
        t0 = _perf_counter()
        y = self._kernel_forward(x)
        self.conv_seconds += _perf_counter() - t0
        self._x = np.ascontiguousarray(x) if training else None
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        """Input gradient (None when ``input_grad=False``); writes ``grads["w"]`` and ``grads["b"]``.

        Parameters
        ----------
        dy : ndarray
            Gradient with respect to the output of the last training-mode forward.

        Returns
        -------
        ndarray or None
            Gradient with respect to that forward's input ``x``.

        Raises
        ------
        RuntimeError
            When no training-mode forward came before.
        TypeError, ValueError
            When ``dy`` does not have the output's shape and dtype.
        """
        if self._x is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before a training forward")
        t0 = _perf_counter()
        dx, dw, db = self._kernel_backward(dy, self._x)
        self.conv_seconds += _perf_counter() - t0
        for name, g in (("w", dw), ("b", db)):   # the kernels wrote them in place where they could
            if g is not self.grads[name]:
                self.grads[name][...] = g
        return dx


class Conv2d(_ConvBase):
    """Full 2-D convolution (cross-correlation), stride 1, zero padding.

    Shapes: x (N, C, H, W) -> y (N, O, H + 2ph - k + 1, W + 2pw - k + 1), with (ph, pw) the padding.

    Parameters
    ----------
    in_channels : int
        C, at least 1.
    out_channels : int
        O, at least 1.
    kernel_size : int
        Window size k, at least 1: weights ``w`` (O, C, k, k), He-normal from ``rng``; bias ``b`` (O,) zeros.
    padding : int or (int, int), default 0
        Zeros added on every side of each input plane, or a pair (ph, pw): ph rows on the top and
        bottom, pw columns on the left and right (attribute ``padding``: an int, or a tuple).
    rng : numpy.random.Generator or int
        Source of the weights (a Generator is advanced; an int seeds a new one).
    dtype : float32 (default) or float64
        Of the parameters, and of the inputs the layer takes.
    input_grad : bool, default True
        False: :meth:`backward` skips the input gradient and returns None (the first layer of a
        network, whose input is the data, needs none): a third of its backward saved.

    Raises
    ------
    TypeError, ValueError
        For a bad size, padding, generator or dtype, naming the argument.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *,
                 padding: int | tuple[int, int] = 0,
                 rng: np.random.Generator | int, dtype: DTypeLike = np.float32, input_grad: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding, rng, dtype, input_grad)

    def __repr__(self) -> str:
        return (f"Conv2d({self.in_channels}, {self.out_channels}, {self.kernel_size}, padding={self.padding}, "
                f"dtype={self.dtype.name})")


class EasyConvPool2d(_ModePolicy, _ConvBase):
    """EasyConvPooling: Easy Convolution whose output already *is* the Random Pooling (mode K).

    Equal to ``RandomPool2d(K)`` after ``Conv2d`` with the same weights, but it computes only
    the quarter of the convolution outputs that the pooling keeps and never computes or stores
    the full-size map (forward or backward).

    Shapes: x (N, C, H, W) -> y (N, O, (Ho - p) // s + 1, (Wo - p) // s + 1) ((Ho // 2, Wo // 2)
    for the 2x2 window), with (Ho, Wo) the full convolution's output size.

    Parameters
    ----------
    in_channels, out_channels, kernel_size : int
        As :class:`Conv2d`; the weights are drawn exactly as Conv2d draws them from the same
        generator state.
    mode : int 0..p^2-1, "random" or "per-batch"
        Kept pixel of each 2x2 window, row-major (0 top-left, 1 top-right, 2 bottom-left,
        3 bottom-right). ``"random"`` draws K once, from ``mode_rng`` (default ``rng``, after the
        weights); that K then serves training (attribute ``mode``). ``"per-batch"``: the layer
        seeds a generator of its own with one draw from ``mode_rng`` (default ``rng``, after the
        weights) and draws a new K from it for every training-mode forward; the backward uses the K
        of the forward before it (attribute ``last_mode``). For a p x p window, K in 0..p^2-1
        keeps the pixel at (K // p, K % p) of each window.
    eval_mode : int 0..p^2-1, "ensemble" or None
        K of evaluation-mode forwards. None: the training K for a fixed mode, 0 for
        ``"per-batch"``. ``"ensemble"`` (per-batch only; ValueError for a fixed mode, whose
        network never saw the other modes): the network's logits are the average over the
        p^2 modes, computed by :class:`~ecp.nn.container.Sequential` (the layer alone refuses an
        evaluation-mode forward).
    padding : int or (int, int), default 0
        Zeros added on every side of each input plane, or a pair (ph, pw): ph rows on the top and
        bottom, pw columns on the left and right (attribute ``padding``: an int, or a tuple).
    rng : numpy.random.Generator or int
        Source of the weights, then of K (as above) unless ``mode_rng`` is given.
    mode_rng : numpy.random.Generator or int, optional
        Source of K for ``"random"`` / ``"per-batch"`` instead of ``rng``.
    dtype : float32 (default) or float64
        Of the parameters, and of the inputs the layer takes.
    input_grad : bool, default True
        As :class:`Conv2d`.
    pool_size : int 1..4, default 2
        The side p of the pooling window.
    pool_stride : int 1..pool_size, default 2
        The stride s of the pooling window.

    Raises
    ------
    TypeError, ValueError
        For a bad size, mode, padding, window, generator or dtype, naming the argument.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, mode: int | str,
                 eval_mode: int | str | None = None, padding: int | tuple[int, int] = 0,
                 rng: np.random.Generator | int, mode_rng: np.random.Generator | int | None = None,
                 dtype: DTypeLike = np.float32, input_grad: bool = True, pool_size: int = 2,
                 pool_stride: int = 2) -> None:
        self.pool_size, self.pool_stride = check_window(pool_size, pool_stride)
        if mode == PER_BATCH and mode_rng is None:
            rng = as_generator(rng)   # the layer's generator is seeded from rng after the weights
        super().__init__(in_channels, out_channels, kernel_size, padding, rng, dtype, input_grad)
        self._init_modes(mode, eval_mode, rng, mode_rng)

    def _forward(self, x, training):
        self._k = self._pick_mode(training)
        return super()._forward(x, training)

    # K checked here, as conv.easy_conv2d checks it: None would make the kernels run the full convolution
    def _kernel_forward(self, x):
        y, self._plans[0] = _plans.forward(x, self.params["w"], self.params["b"], self.padding,
                                           self._window_mode(self._k), self._plans[0])   # _pick_mode checked it
        return y

    def _kernel_backward(self, dy, x):
        # the K of the training forward (checked there); a layer unpickled without one: its mode
        k = self.last_mode if self.last_mode is not None else check_int(self.mode, "mode", 0, self.n_modes - 1)
        grads, self._plans[1] = _plans.backward(dy, x, self.params["w"], self.padding, self._window_mode(k),
                                                self.input_grad, self._plans[1], self.grads["w"], self.grads["b"])
        return grads

    def __repr__(self) -> str:
        return (f"EasyConvPool2d({self.in_channels}, {self.out_channels}, {self.kernel_size}, {self._policy_repr()}, "
                f"padding={self.padding}, dtype={self.dtype.name})")


class EasyAvgConvPool2d(_ConvBase):
    """Easy average pooling: the convolution and 2x2 average pooling as one stride-2 convolution.

    Equal to ``AvgPool2d()`` after ``Conv2d`` with the same weights, within float rounding: it
    runs :func:`ecp.easy_avg_conv2d`, a stride-2 convolution with the (k+1) x (k+1) kernel ``w``
    full-convolved with the 2x2 box (divided by 4), or as the convolution of the input's 2x2 box
    means with ``w`` itself (fewer multiplies, where it runs); the backward uses the weights of
    its forward (kept), and the parameters, their gradients and the optimizer see the k x k
    weights of a Conv2d. No mode: average pooling keeps
    every pixel. A p x p window of stride s: the (k+p-1) x (k+p-1) kernel at stride s.

    Shapes: x (N, C, H, W) -> y (N, O, (Ho - p) // s + 1, (Wo - p) // s + 1) ((Ho // 2, Wo // 2)
    for the 2x2 window), with (Ho, Wo) the full convolution's output size.

    Parameters
    ----------
    in_channels, out_channels, kernel_size : int
        As :class:`Conv2d`; the weights are drawn exactly as Conv2d draws them from the same
        generator state.
    padding : int or (int, int), default 0
        As :class:`Conv2d`.
    rng : numpy.random.Generator or int
        Source of the weights.
    dtype : float32 (default) or float64
        Of the parameters, and of the inputs the layer takes.
    input_grad : bool, default True
        As :class:`Conv2d`.
    pool_size : int 1..4, default 2
        The side p of the averaging window.
    pool_stride : int 1..pool_size, default 2
        The stride s of the averaging window.

    Raises
    ------
    TypeError, ValueError
        For a bad size, padding, window, generator or dtype, naming the argument.
    """

    # layers unpickled from before windows: the 2x2 window; none holds a widened kernel yet
    pool_size: int = 2
    pool_stride: int = 2
    _wide = None
    _w_fwd = None   # the weights of the last forward, for its backward

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *,
                 padding: int | tuple[int, int] = 0, rng: np.random.Generator | int,
                 dtype: DTypeLike = np.float32, input_grad: bool = True, pool_size: int = 2,
                 pool_stride: int = 2) -> None:
        self.pool_size, self.pool_stride = check_window(pool_size, pool_stride)
        super().__init__(in_channels, out_channels, kernel_size, padding, rng, dtype, input_grad)

    def _kernel_forward(self, x):
        w, p = self.params["w"], self.pool_size
        shape = (w.shape[0], w.shape[1], w.shape[2] + p - 1, w.shape[3] + p - 1)
        if self._wide is None or self._wide.shape != shape or self._wide.dtype != w.dtype:
            self._wide = np.empty(shape, dtype=w.dtype)
        if self._w_fwd is None or self._w_fwd.shape != w.shape or self._w_fwd.dtype != w.dtype:
            self._w_fwd = np.empty_like(w)
        np.copyto(self._w_fwd, w)
        y, self._plans[0] = _plans.avg_forward(x, self._w_fwd, self.params["b"], self.padding, self._plans[0],
                                               (p, self.pool_stride), self._wide)
        return y

    def _kernel_backward(self, dy, x):
        # the forward's weights and widened kernel (the weights of that forward, as autograd would use)
        wide = self._wide if _plans.fills_wide(self._plans[0]) else None
        grads, self._plans[1] = _plans.avg_backward(dy, x, self._w_fwd, self.padding, self.input_grad,
                                                    self._plans[1], self.grads["w"], self.grads["b"],
                                                    (self.pool_size, self.pool_stride), wide)
        return grads

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_wide", None)   # scratch, remade by the next forward
        state.pop("_w_fwd", None)
        return state

    def __repr__(self) -> str:
        return (f"EasyAvgConvPool2d({self.in_channels}, {self.out_channels}, {self.kernel_size}, "
                f"padding={self.padding}{_window_repr(self)}, dtype={self.dtype.name})")


class RandomPool2d(_ModePolicy, Layer):
    """Random Pooling, p x p windows of stride s (2x2 / 2 by default): keeps pixel K of each.

    The kept pixel is at (K // p, K % p) of every window (row-major).

    Shapes: (N, C, H, W) -> (N, C, (H - p) // s + 1, (W - p) // s + 1) ((H // 2, W // 2) for 2x2).

    Parameters
    ----------
    mode : int 0..p^2-1, "random" or "per-batch"
        K (row-major in the window); ``"random"`` draws it once from ``rng``; ``"per-batch"``
        draws a new K for every training-mode forward from a generator of the layer's own, seeded
        by one draw from ``rng`` (as :class:`EasyConvPool2d`).
    rng : numpy.random.Generator or int, optional
        Needed only for ``mode="random"`` or ``"per-batch"``.
    eval_mode : int 0..p^2-1, "ensemble" or None
        K of evaluation-mode forwards, as :class:`EasyConvPool2d`.
    pool_size : int 1..4, default 2
        The side p of the window.
    pool_stride : int 1..pool_size, default 2
        The stride s of the window.

    Raises
    ------
    ValueError
        A mode outside 0..p^2-1 and not ``"random"`` / ``"per-batch"``, a bad ``eval_mode`` or
        window, or ``eval_mode="ensemble"`` with a fixed mode.
    TypeError
        ``mode="random"`` or ``"per-batch"`` without ``rng``.
    """

    def __init__(self, mode: int | str, *, rng: np.random.Generator | int | None = None,
                 eval_mode: int | str | None = None, pool_size: int = 2, pool_stride: int = 2) -> None:
        self.pool_size, self.pool_stride = check_window(pool_size, pool_stride)
        self._init_modes(mode, eval_mode, rng, None)
        self.training = True
        self._shape = None

    def _forward(self, x, training):
        k = self._pick_mode(training)
        y = _pool.random_pool2d(x, k, pool_size=self.pool_size, pool_stride=self.pool_stride)
        self._shape = x.shape if training else None
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """Gradient with respect to the input: ``dy`` scattered to the kept pixels, zeros elsewhere.

        Parameters
        ----------
        dy : ndarray, the output's shape
            Gradient with respect to the output.

        Returns
        -------
        ndarray (N, C, H, W)
            Gradient with respect to the input, at the pixels the last training forward kept.

        Raises
        ------
        RuntimeError
            When no training-mode forward came before.
        """
        if self._shape is None:
            raise RuntimeError("RandomPool2d.backward called before a training forward")
        k = self.last_mode if self.last_mode is not None else self.mode
        return _pool.random_pool2d_backward(dy, k, self._shape, pool_size=self.pool_size,
                                            pool_stride=self.pool_stride)

    def __repr__(self) -> str:
        return f"RandomPool2d({self._policy_repr()})"


def _windows(x, p, s):
    """The p x p windows of stride s of x (N, C, H, W): a read-only view (N, C, Ho, Wo, p, p),
    (Ho, Wo) PyTorch's floor sizes (checked: the window must fit)."""
    if not isinstance(x, np.ndarray) or x.ndim != 4 or x.dtype not in _FLOATS:
        raise TypeError(f"x must be a 4-D float32 / float64 numpy array, got "
                        f"{getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', '')}")
    _, _, ho, wo = window_output_shape(x.shape, p, s, "x")
    v = np.lib.stride_tricks.sliding_window_view(x, (p, p), axis=(2, 3))
    return v[:, :, ::s, ::s][:, :, :ho, :wo]


class _WindowPool(Layer):
    """The window of a max / average pooling layer: the 2x2 one of stride 2 runs ecp's kernels,
    other windows NumPy's (sliding-window views)."""

    # layers unpickled from before windows: 2x2, stride 2
    pool_size: int = 2
    pool_stride: int = 2

    def __init__(self, pool_size: int, pool_stride: int) -> None:
        self.pool_size, self.pool_stride = check_window(pool_size, pool_stride)
        self.training = True
        self._shape = None

    @property
    def _two(self):
        return self.pool_size == 2 and self.pool_stride == 2

    def __repr__(self) -> str:
        return f"{type(self).__name__}({_window_repr(self)[2:]})"


class MaxPool2d(_WindowPool):
    """Max pooling, p x p windows of stride s (2x2 / stride 2 by default).

    Shapes: (N, C, H, W) -> (N, C, (H - p) // s + 1, (W - p) // s + 1) ((H // 2, W // 2) for 2x2).
    In training mode it keeps the index of each window's maximum for :meth:`backward` (ties: the
    first in row-major window order; a NaN is its window's maximum).

    Parameters
    ----------
    pool_size : int 1..4, default 2
        The side p of the window.
    pool_stride : int 1..pool_size, default 2
        The stride s of the window; overlapping windows (s < p) add their gradients.

    Raises
    ------
    TypeError, ValueError
        For a bad window, naming the argument.
    """

    def __init__(self, pool_size: int = 2, pool_stride: int = 2) -> None:
        super().__init__(pool_size, pool_stride)
        self._indices = None

    def _forward(self, x, training):
        if self._two:
            if not training:
                self._indices = self._shape = None
                return _pool.max_pool2d(x)
            y, self._indices = _pool.max_pool2d(x, return_indices=True)
            self._shape = x.shape
            return y
        p, s = self.pool_size, self.pool_stride
        win = _windows(x, p, s)
        n, c, ho, wo = win.shape[:4]
        flat = win.reshape(n, c, ho, wo, p * p)
        arg = np.argmax(flat, axis=4)   # the first maximum, or the first NaN
        y = np.ascontiguousarray(np.take_along_axis(flat, arg[..., None], axis=4)[..., 0])
        if training:
            rows = np.arange(ho)[:, None] * s + arg // p
            cols = np.arange(wo)[None, :] * s + arg % p
            self._indices, self._shape = rows * x.shape[3] + cols, x.shape
        else:
            self._indices = self._shape = None
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """Gradient with respect to the input: ``dy`` routed to each window's maximum.

        Parameters
        ----------
        dy : ndarray, the output's shape
            Gradient with respect to the output.

        Returns
        -------
        ndarray (N, C, H, W)
            Gradient with respect to the input (overlapping windows add).

        Raises
        ------
        RuntimeError
            When no training-mode forward came before.
        """
        if self._indices is None:
            raise RuntimeError("MaxPool2d.backward called before a training forward")
        if self._two:
            return _pool.max_pool2d_backward(dy, self._indices, self._shape)
        n, c, h, w = self._shape
        dy = _pool_grad(dy, self._indices.shape)
        dx = np.zeros((n * c, h * w), dtype=dy.dtype)
        np.add.at(dx, (np.arange(n * c)[:, None], self._indices.reshape(n * c, -1)), dy.reshape(n * c, -1))
        return dx.reshape(self._shape)


def _pool_grad(dy, shape):
    """``dy`` as a float array of the pooled ``shape``, or the error naming it."""
    if not isinstance(dy, np.ndarray) or dy.dtype not in _FLOATS or dy.shape != tuple(shape):
        raise ValueError(f"dy must be a float32 / float64 array of shape {tuple(shape)} (the output's), got "
                         f"{getattr(dy, 'dtype', type(dy).__name__)} {getattr(dy, 'shape', '')}")
    return dy


class AvgPool2d(_WindowPool):
    """Average pooling, p x p windows of stride s (2x2 / stride 2 by default).

    Shapes: (N, C, H, W) -> (N, C, (H - p) // s + 1, (W - p) // s + 1) ((H // 2, W // 2) for 2x2).

    Parameters
    ----------
    pool_size : int 1..4, default 2
        The side p of the window.
    pool_stride : int 1..pool_size, default 2
        The stride s of the window.

    Raises
    ------
    TypeError, ValueError
        For a bad window, naming the argument.
    """

    def __init__(self, pool_size: int = 2, pool_stride: int = 2) -> None:
        super().__init__(pool_size, pool_stride)

    def _forward(self, x, training):
        if self._two:
            y = _pool.avg_pool2d(x)
        else:
            win = _windows(x, self.pool_size, self.pool_stride)
            y = np.ascontiguousarray(win.mean(axis=(4, 5), dtype=x.dtype))
        self._shape = x.shape if training else None
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """Gradient with respect to the input: ``dy / p^2`` to each pixel of its window.

        Parameters
        ----------
        dy : ndarray, the output's shape
            Gradient with respect to the output.

        Returns
        -------
        ndarray (N, C, H, W)
            Gradient with respect to the input (overlapping windows add).

        Raises
        ------
        RuntimeError
            When no training-mode forward came before.
        """
        if self._shape is None:
            raise RuntimeError("AvgPool2d.backward called before a training forward")
        if self._two:
            return _pool.avg_pool2d_backward(dy, self._shape)
        p, s = self.pool_size, self.pool_stride
        n, c, h, w = self._shape
        ho, wo = (h - p) // s + 1, (w - p) // s + 1
        dy = _pool_grad(dy, (n, c, ho, wo))
        share = dy * dy.dtype.type(1.0 / (p * p))
        dx = np.zeros(self._shape, dtype=dy.dtype)
        for i in range(p):
            for j in range(p):
                dx[:, :, i:i + s * (ho - 1) + 1:s, j:j + s * (wo - 1) + 1:s] += share
        return dx


class ReLU(Layer):
    """Rectified linear unit, max(x, 0), any shape (float32 or float64), through :func:`ecp.relu`.

    Parameters
    ----------
    inplace : bool, default False
        Overwrite the input in forward and ``dy`` in backward instead of allocating. Safe inside a
        network when the layer before does not need its own output for its backward (true of every
        layer here: convolution and linear layers keep their *input*, pooling layers their indices
        or shape).
    """

    def __init__(self, inplace: bool = False) -> None:
        self.inplace = bool(inplace)
        self.training = True
        self._y = None

    def _forward(self, x, training):
        y = _activation.relu(x, out=x if self.inplace and kernel_ready(x, getattr(x, "ndim", -1)) else None)
        self._y = y if training else None
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """``dy`` where the output was positive, 0 elsewhere (in place into ``dy`` when ``inplace``).

        Parameters
        ----------
        dy : ndarray of the output's shape
            Gradient with respect to the output.

        Returns
        -------
        ndarray
            Gradient with respect to the input.

        Raises
        ------
        RuntimeError
            When no training-mode forward came before.
        ValueError
            When ``dy`` does not have the output's shape.
        """
        if self._y is None:
            raise RuntimeError("ReLU.backward called before a training forward")
        if getattr(dy, "shape", None) != self._y.shape:
            raise ValueError(f"ReLU: dy must have shape {self._y.shape} (the output's), got "
                             f"{getattr(dy, 'shape', type(dy).__name__)}")
        inplace = self.inplace and kernel_ready(dy, dy.ndim) and dy.dtype == self._y.dtype
        return _activation.relu_backward(dy, self._y, out=dy if inplace else None)

    def __repr__(self) -> str:
        return f"ReLU(inplace={self.inplace})"


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...): a view of C-contiguous input.

    It keeps the input shape in both modes (a shape costs nothing), so :meth:`backward` works
    after any forward.
    """

    def __init__(self) -> None:
        self.training = True
        self._shape = None

    def _forward(self, x, training):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """``dy`` reshaped to the last input's shape.

        Parameters
        ----------
        dy : ndarray (N, d1 * d2 * ...)
            Gradient with respect to the output.

        Returns
        -------
        ndarray (N, d1, d2, ...)
            A view of ``dy``.

        Raises
        ------
        RuntimeError
            When no forward came before.
        """
        if self._shape is None:
            raise RuntimeError("Flatten.backward called before a forward")
        return dy.reshape(self._shape)


class Linear(Layer):
    """Fully connected layer: ``y = x @ w + b``.

    Shapes: x (N, in_features) -> y (N, out_features).

    Parameters
    ----------
    in_features, out_features : int
        ``w`` (in_features, out_features), ``b`` (out_features,) zeros.
    rng : numpy.random.Generator or int
        Source of the weights.
    dtype : float32 (default) or float64
        Of the parameters, and of the inputs the layer takes.
    init : {"he", "lecun"}
        He normal (std sqrt(2 / in), for a layer followed by ReLU; default) or LeCun normal
        (std sqrt(1 / in), for the output layer).
    input_grad : bool, default True
        False: :meth:`backward` skips the input gradient and returns None.

    Raises
    ------
    TypeError, ValueError
        For a bad size, generator, dtype or ``init``, naming the argument.
    """

    def __init__(self, in_features: int, out_features: int, *, rng: np.random.Generator | int,
                 dtype: DTypeLike = np.float32, init: str = "he", input_grad: bool = True) -> None:
        in_features = check_int(in_features, "in_features", 1)
        out_features = check_int(out_features, "out_features", 1)
        self.dtype = _check_dtype(dtype)
        if init not in ("he", "lecun"):
            raise ValueError(f"init must be 'he' or 'lecun', got {init!r}")
        self.init = init
        self.input_grad = bool(input_grad)
        self.training = True
        draw = he_normal if init == "he" else lecun_normal
        self.params = {
            "w": draw(as_generator(rng), (in_features, out_features), in_features, self.dtype),
            "b": np.zeros(out_features, dtype=self.dtype),
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._x = None

    def _forward(self, x, training):
        w = self.params["w"]
        _check_input(x, "Linear", 2, w.dtype)
        if x.shape[1] != w.shape[0]:
            raise ValueError(f"Linear: x must have {w.shape[0]} features (x.shape[1]), got shape {x.shape}")
        # ecp's own single-threaded BLAS instance: no NumPy BLAS thread pool left spinning after it
        y = _blas.matmul(np.ascontiguousarray(x), np.ascontiguousarray(w), np.empty((x.shape[0], w.shape[1]), w.dtype))
        y += self.params["b"]
        self._x = x if training else None
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        """Input gradient ``dy @ w.T`` (None when ``input_grad=False``); writes ``grads``.

        Parameters
        ----------
        dy : ndarray (N, out_features)
            Gradient with respect to the output.

        Returns
        -------
        ndarray (N, in_features) or None
            Gradient with respect to the input.

        Raises
        ------
        RuntimeError
            When no training-mode forward came before.
        ValueError
            When ``dy`` does not have the output's shape.
        """
        if self._x is None:
            raise RuntimeError("Linear.backward called before a training forward")
        w = self.params["w"]
        if dy.shape != (self._x.shape[0], w.shape[1]):
            raise ValueError(f"Linear: dy must have shape {(self._x.shape[0], w.shape[1])}, got {dy.shape}")
        dy = np.ascontiguousarray(dy)
        gw = self.grads["w"]
        if gw.flags.c_contiguous:
            _blas.matmul(self._x, dy, gw, trans_a=True)
        else:
            gw[...] = _blas.matmul(self._x, dy, np.empty(gw.shape, gw.dtype), trans_a=True)
        np.sum(dy, axis=0, out=self.grads["b"])
        if not self.input_grad:
            return None
        return _blas.matmul(dy, np.ascontiguousarray(w), np.empty(self._x.shape, w.dtype), trans_b=True)

    def __repr__(self) -> str:
        w = self.params["w"]
        return f"Linear({w.shape[0]}, {w.shape[1]}, init={self.init!r}, dtype={self.dtype.name})"
