"""The container: layers applied in order, their parameters and gradients in one flat buffer each."""
from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .._validation import check_int
from .init import ENSEMBLE
from .layers import Layer, _training_override

__all__ = ["Sequential"]


class Sequential:
    """Layers applied in order, with all parameters (and gradients) in one flat buffer.

    The layers' ``params`` / ``grads`` entries are views into ``flat_params`` / ``flat_grads``
    (each layer gets dicts of its own), so an optimizer over :meth:`parameters` updates the whole
    network with a handful of vectorised operations. The views survive pickling and
    :func:`copy.deepcopy`.

    Parameters
    ----------
    layers : iterable of Layer
        Objects with ``forward``, ``backward`` and ``params`` / ``grads`` dicts; all parameters
        must share one dtype (float32 or float64). Their values are copied into the buffers.

    Attributes
    ----------
    layers : list of Layer
    flat_params, flat_grads : ndarray (total parameter count,)
        ``flat_grads`` starts at zero.
    dtype : numpy.dtype
        Of the parameters (float32 when there are none).
    training : bool
        The mode last set by :meth:`train` / :meth:`eval` (True after construction; the layers
        keep the modes they had until one of those is called).

    Raises
    ------
    TypeError
        An element without ``forward`` / ``backward``, or parameters of mixed dtypes.
    """

    training: bool = True   # class-level default for networks unpickled from ecp 0.1

    def __init__(self, layers: Iterable[Layer]) -> None:
        layers = list(layers)
        for i, layer in enumerate(layers):
            if not hasattr(layer, "forward") or not hasattr(layer, "backward"):
                raise TypeError(f"layers[{i}] must be a layer with forward and backward, got {type(layer).__name__}")
        self.layers = layers
        dtypes = {arr.dtype for layer in layers for arr in layer.params.values()}
        if len(dtypes) > 1:
            raise TypeError(f"all parameters must share one dtype, got {sorted(d.name for d in dtypes)}")
        self.dtype = dtypes.pop() if dtypes else np.dtype(np.float32)
        self.training = True
        self._share_buffers(keep_grads=False)

    def _share_buffers(self, keep_grads: bool) -> None:
        """Copy every layer's parameters (and, with ``keep_grads``, gradients; else zeros) into new
        flat buffers, in layer order, and make the layers' entries views into them."""
        arrays = [(layer, name, arr) for layer in self.layers for name, arr in layer.params.items()]
        total = sum(arr.size for _, _, arr in arrays)
        self.flat_params = np.empty(total, dtype=self.dtype)
        self.flat_grads = np.zeros(total, dtype=self.dtype)
        offset = 0
        for layer in self.layers:   # own dicts per layer (never the class-level empty defaults)
            layer.params = dict(layer.params)
            layer.grads = dict(layer.grads)
        for layer, name, arr in arrays:
            n = arr.size
            p = self.flat_params[offset:offset + n].reshape(arr.shape)
            p[...] = arr
            g = self.flat_grads[offset:offset + n].reshape(arr.shape)
            if keep_grads:
                g[...] = layer.grads[name]
            layer.params[name] = p
            layer.grads[name] = g
            offset += n

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Pickling copies views as separate arrays: share the buffers again (values unchanged).
        self.__dict__.update(state)
        self._share_buffers(keep_grads=True)

    # ------------------------------------------------------------------------------ modes

    def train(self, mode: bool = True) -> Sequential:
        """Set training (``mode=True``) or evaluation mode, on the container and every layer.

        Parameters
        ----------
        mode : bool, default True
            True for training mode, False for evaluation mode.

        Returns
        -------
        Sequential
            ``self``.
        """
        self.training = bool(mode)
        for layer in self.layers:
            if hasattr(layer, "train"):
                layer.train(self.training)
        return self

    def eval(self) -> Sequential:
        """Set evaluation mode on the container and every layer: same as ``train(False)``.

        Returns
        -------
        Sequential
            ``self``.
        """
        return self.train(False)

    @contextmanager
    def _mode(self, training: bool) -> Iterator[None]:
        """Run the body in mode ``training``, then give every layer (and self) its mode back."""
        saved = [(layer, getattr(layer, "training", True)) for layer in self.layers if hasattr(layer, "train")]
        was = self.training
        self.train(training)
        try:
            yield
        finally:
            for layer, mode in saved:
                layer.train(mode)
            self.training = was

    # ----------------------------------------------------------------------------- passes

    def forward(self, x: np.ndarray, training: bool | None = None) -> np.ndarray:
        """Network output (e.g. logits (N, 10)) for a batch ``x``, each layer in its own mode.

        When a random-pooling layer in evaluation mode has ``eval_mode="ensemble"``, the output is
        the mean of M passes over the network, M the modes of its window (p^2: 4 for 2x2 windows;
        the least common multiple when such layers have different windows): in pass K (0..M-1)
        every such layer uses mode K modulo its own count (all of them the same K; other layers as
        usual). That is the average of the logits over the modes, at M times the cost of one pass;
        averaging feature maps inside a layer would not be.

        Parameters
        ----------
        x : ndarray
            Of the parameters' dtype.
        training : bool, optional
            Deprecated (FutureWarning): runs every layer in this mode for this call only.

        Returns
        -------
        ndarray
            The last layer's output.

        Raises
        ------
        TypeError
            ``x`` not an ndarray of the network's dtype.
        """
        if not isinstance(x, np.ndarray):
            raise TypeError(f"x must be a numpy array, got {type(x).__name__}")
        if x.dtype != self.dtype:
            raise TypeError(f"x must have dtype {self.dtype} (the network's), got {x.dtype}")
        if training is not None:
            with self._mode(_training_override(training, "Sequential")):
                return self._forward(x)
        return self._forward(x)

    def _forward(self, x):
        ensemble = [layer for layer in self.layers
                    if getattr(layer, "eval_mode", None) == ENSEMBLE and not getattr(layer, "training", True)]
        if not ensemble:
            return self._pass(x)
        counts = [getattr(layer, "n_modes", 4) for layer in ensemble]
        passes = math.lcm(*counts)
        total = None
        try:
            for k in range(passes):
                for layer, n in zip(ensemble, counts):
                    layer._ensemble_k = k % n
                y = self._pass(x)
                total = np.array(y, copy=True) if total is None else np.add(total, y, out=total)
        finally:
            for layer in ensemble:
                layer._ensemble_k = None
        total *= total.dtype.type(1.0 / passes)   # 0.25 for 2x2 windows, as before
        return total

    def _pass(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    __call__ = Layer.__call__   # net(x) is net.forward(x), as for a layer

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        """Back-propagate ``dy`` through every layer, overwriting each layer's ``grads``.

        Parameters
        ----------
        dy : ndarray
            Gradient of the loss with respect to the output of the last training-mode forward.

        Returns
        -------
        ndarray or None
            The input gradient, or None when a layer skips its own (``input_grad=False``, the
            first convolution of the paper's networks): the layers before it get no backward.
        """
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
            if dy is None:
                break
        return dy

    def predict(self, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """Class indices for inputs ``x``, evaluated in batches, in evaluation mode.

        The layers' modes are restored afterwards: predicting in the middle of training changes
        nothing the next training step sees, apart from the caches of the last forward.

        Parameters
        ----------
        x : ndarray (N, ...)
            Of the network's dtype.
        batch_size : int, default 1000
            Samples per forward call (bounds the memory of the activations).

        Returns
        -------
        ndarray (N,) of int64
            ``argmax`` of each sample's output.

        Raises
        ------
        TypeError, ValueError
            A bad ``batch_size``, or ``x`` not of the network's dtype.
        """
        batch_size = check_int(batch_size, "batch_size", 1)
        out = np.empty(len(x), dtype=np.int64)
        with self._mode(False):
            for start in range(0, len(x), batch_size):
                logits = self.forward(x[start:start + batch_size])
                out[start:start + len(logits)] = logits.argmax(axis=1)
        return out

    # -------------------------------------------------------------------------- parameters

    def parameters(self) -> list[np.ndarray]:
        """``[flat_params]``: the list an optimizer updates in place.

        Returns
        -------
        list of ndarray
            One array: the flat parameter buffer.
        """
        return [self.flat_params]

    def gradients(self) -> list[np.ndarray]:
        """``[flat_grads]``, matching :meth:`parameters`.

        Returns
        -------
        list of ndarray
            One array: the flat gradient buffer.
        """
        return [self.flat_grads]

    @property
    def num_parameters(self) -> int:
        """Count the network's parameters.

        Returns
        -------
        int
            The number of scalars in the flat parameter buffer (every layer's parameters).
        """
        return self.flat_params.size

    @property
    def conv_seconds(self) -> float:
        """Time spent inside the convolution kernels so far.

        Returns
        -------
        float
            Seconds (wall clock), forward and backward, summed over the layers that count it
            since they were built.
        """
        return sum(getattr(layer, "conv_seconds", 0.0) for layer in self.layers)

    @property
    def modes(self) -> list[int]:
        """Give the training mode of each random-pooling or EasyConvPool layer.

        Returns
        -------
        list of int or str
            One K (0..p^2-1), or ``"per-batch"``, per such layer, in network order; empty for max /
            average pooling.
        """
        return [layer.mode for layer in self.layers if hasattr(layer, "mode")]

    @property
    def eval_modes(self) -> list[int | str]:
        """Give the evaluation mode of each random-pooling or EasyConvPool layer.

        Returns
        -------
        list of int or str
            One K (0..p^2-1), or ``"ensemble"``, per such layer, in network order; empty for max /
            average pooling.
        """
        return [layer.mode if getattr(layer, "eval_mode", None) is None else layer.eval_mode
                for layer in self.layers if hasattr(layer, "mode")]

    def __repr__(self) -> str:
        inner = "".join(f"\n  {layer!r}," for layer in self.layers)
        return f"Sequential([{inner}\n])  # {self.num_parameters} parameters, {self.dtype.name}"
