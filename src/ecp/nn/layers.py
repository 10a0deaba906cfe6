"""A thin network layer over the ecp kernels: layers, loss and a sequential container.

No framework: every layer is a small Python object with

- ``forward(x, training=True)`` -> output (caches what its backward needs when ``training``);
- ``backward(dy)`` -> gradient with respect to its input (or ``None`` when the layer was built
  with ``input_grad=False``), and it *overwrites* ``grads[name]`` for each of its ``params``;
- ``params`` / ``grads``: dicts name -> ndarray of the same shapes (empty for layers without
  parameters). Optimizers update ``params`` in place.

Layout is NCHW; float32 (the default) or float64. Layers never silently change the dtype.

Layers: :class:`Conv2D`, :class:`EasyConvPool2D` (the fused EasyConvPooling layer),
:class:`RandomPool2D`, :class:`MaxPool2D`, :class:`AvgPool2D`, :class:`ReLU`, :class:`Flatten`,
:class:`Linear`; loss: :class:`SoftmaxCrossEntropy`; container: :class:`Sequential`.

Randomness is always explicit: layers that initialise weights, or draw a random mode K, take a
seeded :class:`numpy.random.Generator` (or an integer seed), so that a seed reproduces a run
exactly.

The convolution layers add the time spent inside the convolution kernels (forward and
backward, measured with :func:`time.perf_counter` around each kernel call) to their
``conv_seconds`` attribute; :attr:`Sequential.conv_seconds` sums it over the network. This is
the paper's "PureConvTime".
"""
import numbers
import time

import numpy as np

from .. import activation as _activation
from .. import conv as _conv
from .. import pool as _pool
from .._validation import check_int, kernel_ready

__all__ = [
    "as_generator", "resolve_mode", "Layer", "Conv2D", "EasyConvPool2D", "RandomPool2D",
    "MaxPool2D", "AvgPool2D", "ReLU", "Flatten", "Linear", "SoftmaxCrossEntropy", "Sequential",
]

_perf_counter = time.perf_counter
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# ----------------------------------------------------------------------------------- helpers

def as_generator(rng, name="rng"):
    """A :class:`numpy.random.Generator` from a Generator (returned as is) or an integer seed.

    ``None`` is refused: every random choice in ecp comes from an explicit, seeded generator.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, (bool, np.bool_)):
        return np.random.default_rng(int(rng))
    raise TypeError(f"{name} must be a numpy.random.Generator or an integer seed, got "
                    f"{type(rng).__name__} {rng!r}"[:160])


def resolve_mode(mode, rng=None, name="mode"):
    """Mode K of a random-pooling layer: an integer 0..3 is returned as is; ``"random"`` draws
    one K uniformly from ``rng`` (a seeded Generator, required in that case)."""
    if isinstance(mode, str):
        if mode != "random":
            raise ValueError(f"{name} must be an integer 0..3 or 'random', got {mode!r}")
        if rng is None:
            raise TypeError(f"{name}='random' needs a seeded generator (rng) to draw K from")
        return int(as_generator(rng).integers(4))
    return check_int(mode, name, 0, 3)


def _check_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in _FLOATS:
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def _check_size(value, name, minimum=1):
    return check_int(value, name, minimum)


def _he_normal(rng, shape, fan_in, dtype):
    """He (Kaiming) normal initialisation: N(0, 2 / fan_in), for layers followed by ReLU."""
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)


def _lecun_normal(rng, shape, fan_in, dtype):
    """LeCun normal initialisation: N(0, 1 / fan_in), for the output layer."""
    return (rng.standard_normal(shape) * np.sqrt(1.0 / fan_in)).astype(dtype)


def _check_input(x, layer, ndim, dtype):
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{layer}: x must be a numpy array, got {type(x).__name__}")
    if x.ndim != ndim:
        raise ValueError(f"{layer}: x must be {ndim}-D, got shape {x.shape}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{layer}: x must have dtype {dtype} (the layer's), got {x.dtype}")


# ------------------------------------------------------------------------------------ layers

class Layer:
    """Base class: a layer without parameters whose forward and backward are identities.

    Attributes
    ----------
    params : dict of str -> ndarray
        Trainable parameters (updated in place by the optimizers).
    grads : dict of str -> ndarray
        Gradients of the loss with respect to ``params``, overwritten by each :meth:`backward`.
    """

    params = {}
    grads = {}

    def forward(self, x, training=True):
        """Output of the layer for input ``x``; ``training`` caches what backward needs."""
        return x

    def backward(self, dy):
        """Gradient with respect to the input of the last training forward, given ``dy``."""
        return dy

    def __repr__(self):
        return f"{type(self).__name__}()"


class _ConvBase(Layer):
    """Shared parts of Conv2D and EasyConvPool2D: weights (O, C, k, k), bias (O,), timing."""

    def __init__(self, in_channels, out_channels, kernel_size, padding, rng, dtype, input_grad):
        in_channels = _check_size(in_channels, "in_channels")
        out_channels = _check_size(out_channels, "out_channels")
        kernel_size = _check_size(kernel_size, "kernel_size")
        self.padding = check_int(padding, "padding", 0)
        self.dtype = _check_dtype(dtype)
        self.input_grad = bool(input_grad)
        rng = as_generator(rng)
        fan_in = in_channels * kernel_size * kernel_size
        self.params = {
            "w": _he_normal(rng, (out_channels, in_channels, kernel_size, kernel_size), fan_in, self.dtype),
            "b": np.zeros(out_channels, dtype=self.dtype),
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.conv_seconds = 0.0
        self._x = None
        self._plans = [None, None]   # of the last forward and backward call (see conv._forward)

    @property
    def in_channels(self):
        return self.params["w"].shape[1]

    @property
    def out_channels(self):
        return self.params["w"].shape[0]

    @property
    def kernel_size(self):
        return self.params["w"].shape[2]

    # The mode K of the easy convolution, None for the full one (Conv2D).
    _mode = None

    def _kernel_forward(self, x):
        y, self._plans[0] = _conv._forward(x, self.params["w"], self.params["b"], self.padding, self._mode,
                                           self._plans[0])
        return y

    def _kernel_backward(self, dy, x):
        grads, self._plans[1] = _conv._backward(dy, x, self.params["w"], self.padding, self._mode,
                                                self.input_grad, self._plans[1], self.grads["w"],
                                                self.grads["b"])
        return grads

    def __setstate__(self, state):
        # layers pickled before they kept their call plans have none
        self.__dict__.update(state)
        self.__dict__.setdefault("_plans", [None, None])

    def forward(self, x, training=True):
        t0 = _perf_counter()
        y = self._kernel_forward(x)
        self.conv_seconds += _perf_counter() - t0
        self._x = x if training else None
        return y

    def backward(self, dy):
        if self._x is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before a training forward")
        t0 = _perf_counter()
        dx, dw, db = self._kernel_backward(dy, self._x)
        self.conv_seconds += _perf_counter() - t0
        for name, g in (("w", dw), ("b", db)):   # the kernels wrote them in place where they could
            if g is not self.grads[name]:
                self.grads[name][...] = g
        return dx


class Conv2D(_ConvBase):
    """Full 2-D convolution (cross-correlation), stride 1, zero padding.

    Parameters
    ----------
    in_channels, out_channels, kernel_size : int
        Weights ``w`` (out_channels, in_channels, k, k), He-normal from ``rng``; bias ``b`` zeros.
    padding : int, default 0
    rng : numpy.random.Generator or int seed
    dtype : float32 (default) or float64
    input_grad : bool, default True
        False: :meth:`backward` skips the input gradient and returns None (the first layer of a
        network, whose input is the data, needs none) -- this saves a third of its backward.

    Shapes: x (N, C, H, W) -> y (N, O, H + 2p - k + 1, W + 2p - k + 1).
    """

    def __init__(self, in_channels, out_channels, kernel_size, *, padding=0, rng, dtype=np.float32,
                 input_grad=True):
        super().__init__(in_channels, out_channels, kernel_size, padding, rng, dtype, input_grad)

    def __repr__(self):
        return (f"Conv2D({self.in_channels}, {self.out_channels}, {self.kernel_size}, padding={self.padding}, "
                f"dtype={self.dtype.name})")


class EasyConvPool2D(_ConvBase):
    """EasyConvPooling: Easy Convolution whose output already *is* the Random Pooling (mode K).

    Equal to ``RandomPool2D(K)`` after ``Conv2D`` with the same weights, but it computes only
    the quarter of the convolution outputs that the pooling keeps and never computes or stores
    the full-size map (forward or backward).

    Parameters
    ----------
    in_channels, out_channels, kernel_size, padding, rng, dtype, input_grad : as :class:`Conv2D`
        (the weights are drawn exactly as Conv2D draws them from the same generator state).
    mode : int 0..3 or "random"
        Kept pixel of each 2x2 window, row-major (0 top-left, 1 top-right, 2 bottom-left,
        3 bottom-right). ``"random"`` draws K once, from ``rng`` after the weights; the same K
        is then used for training and testing (attribute ``mode``).

    Shapes: x (N, C, H, W) -> y (N, O, Ho // 2, Wo // 2), with (Ho, Wo) the full conv's output size.
    """

    def __init__(self, in_channels, out_channels, kernel_size, *, mode, padding=0, rng, dtype=np.float32,
                 input_grad=True):
        super().__init__(in_channels, out_channels, kernel_size, padding, rng, dtype, input_grad)
        self.mode = resolve_mode(mode, rng)

    @property
    def _mode(self):
        # checked here, as conv.easy_conv2d checks it: None would make the kernels run the full convolution
        return check_int(self.mode, "mode", 0, 3)

    def __repr__(self):
        return (f"EasyConvPool2D({self.in_channels}, {self.out_channels}, {self.kernel_size}, mode={self.mode}, "
                f"padding={self.padding}, dtype={self.dtype.name})")


class RandomPool2D(Layer):
    """Random Pooling, 2x2 / stride 2: keeps the pixel at position K of every window.

    Parameters
    ----------
    mode : int 0..3 or "random" (drawn once from ``rng``)
    rng : numpy.random.Generator or int seed, needed only for ``mode="random"``

    Shapes: (N, C, H, W) -> (N, C, H // 2, W // 2).
    """

    def __init__(self, mode, *, rng=None):
        self.mode = resolve_mode(mode, rng)
        self._shape = None

    def forward(self, x, training=True):
        y = _pool.random_pool2d(x, self.mode)
        self._shape = x.shape if training else None
        return y

    def backward(self, dy):
        if self._shape is None:
            raise RuntimeError("RandomPool2D.backward called before a training forward")
        return _pool.random_pool2d_backward(dy, self.mode, self._shape)

    def __repr__(self):
        return f"RandomPool2D(mode={self.mode})"


class MaxPool2D(Layer):
    """Max pooling, 2x2 / stride 2. Shapes: (N, C, H, W) -> (N, C, H // 2, W // 2)."""

    def __init__(self):
        self._indices = None
        self._shape = None

    def forward(self, x, training=True):
        if not training:
            self._indices = self._shape = None
            return _pool.max_pool2d(x)
        y, self._indices = _pool.max_pool2d(x, return_indices=True)
        self._shape = x.shape
        return y

    def backward(self, dy):
        if self._indices is None:
            raise RuntimeError("MaxPool2D.backward called before a training forward")
        return _pool.max_pool2d_backward(dy, self._indices, self._shape)


class AvgPool2D(Layer):
    """Average pooling, 2x2 / stride 2. Shapes: (N, C, H, W) -> (N, C, H // 2, W // 2)."""

    def __init__(self):
        self._shape = None

    def forward(self, x, training=True):
        y = _pool.avg_pool2d(x)
        self._shape = x.shape if training else None
        return y

    def backward(self, dy):
        if self._shape is None:
            raise RuntimeError("AvgPool2D.backward called before a training forward")
        return _pool.avg_pool2d_backward(dy, self._shape)


class ReLU(Layer):
    """max(x, 0), any shape (float32 or float64), through :func:`ecp.relu`, whose threads share
    the batch as the convolution and pooling kernels do.

    Parameters
    ----------
    inplace : bool, default False
        Overwrite the input in forward and ``dy`` in backward instead of allocating. Safe
        inside a network when the layer before does not need its own output for its backward
        (true of every layer here: conv and linear layers keep their *input*, pooling layers
        their indices or shape).
    """

    def __init__(self, inplace=False):
        self.inplace = bool(inplace)
        self._y = None

    def forward(self, x, training=True):
        y = _activation.relu(x, out=x if self.inplace and kernel_ready(x, getattr(x, "ndim", -1)) else None)
        self._y = y if training else None
        return y

    def backward(self, dy):
        if self._y is None:
            raise RuntimeError("ReLU.backward called before a training forward")
        if getattr(dy, "shape", None) != self._y.shape:
            raise ValueError(f"ReLU: dy must have shape {self._y.shape} (the output's), got "
                             f"{getattr(dy, 'shape', type(dy).__name__)}")
        inplace = self.inplace and kernel_ready(dy, dy.ndim) and dy.dtype == self._y.dtype
        return _activation.relu_backward(dy, self._y, out=dy if inplace else None)

    def __repr__(self):
        return f"ReLU(inplace={self.inplace})"


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...), a view of C-contiguous input."""

    def __init__(self):
        self._shape = None

    def forward(self, x, training=True):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        if self._shape is None:
            raise RuntimeError("Flatten.backward called before a forward")
        return dy.reshape(self._shape)


class Linear(Layer):
    """Fully connected layer: ``y = x @ w + b``.

    Parameters
    ----------
    in_features, out_features : int
        ``w`` (in_features, out_features), ``b`` (out_features,) zeros.
    rng : numpy.random.Generator or int seed
    dtype : float32 (default) or float64
    init : {"he", "lecun"}
        He normal (std sqrt(2 / in), for a layer followed by ReLU; default) or LeCun normal
        (std sqrt(1 / in), for the output layer).
    input_grad : bool, default True

    Shapes: x (N, in_features) -> y (N, out_features).
    """

    def __init__(self, in_features, out_features, *, rng, dtype=np.float32, init="he", input_grad=True):
        in_features = _check_size(in_features, "in_features")
        out_features = _check_size(out_features, "out_features")
        self.dtype = _check_dtype(dtype)
        if init not in ("he", "lecun"):
            raise ValueError(f"init must be 'he' or 'lecun', got {init!r}")
        self.init = init
        self.input_grad = bool(input_grad)
        draw = _he_normal if init == "he" else _lecun_normal
        self.params = {
            "w": draw(as_generator(rng), (in_features, out_features), in_features, self.dtype),
            "b": np.zeros(out_features, dtype=self.dtype),
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._x = None

    def forward(self, x, training=True):
        w = self.params["w"]
        _check_input(x, "Linear", 2, w.dtype)
        if x.shape[1] != w.shape[0]:
            raise ValueError(f"Linear: x must have {w.shape[0]} features (x.shape[1]), got shape {x.shape}")
        y = x @ w
        y += self.params["b"]
        self._x = x if training else None
        return y

    def backward(self, dy):
        if self._x is None:
            raise RuntimeError("Linear.backward called before a training forward")
        w = self.params["w"]
        if dy.shape != (self._x.shape[0], w.shape[1]):
            raise ValueError(f"Linear: dy must have shape {(self._x.shape[0], w.shape[1])}, got {dy.shape}")
        np.matmul(self._x.T, dy, out=self.grads["w"])
        np.sum(dy, axis=0, out=self.grads["b"])
        return dy @ w.T if self.input_grad else None

    def __repr__(self):
        w = self.params["w"]
        return f"Linear({w.shape[0]}, {w.shape[1]}, init={self.init!r}, dtype={self.dtype.name})"


class SoftmaxCrossEntropy:
    """Softmax followed by the mean cross-entropy over the batch.

    ``forward(logits, labels)`` returns the loss (a Python float) and keeps the softmax for
    ``backward()``, which returns d loss / d logits = (softmax - one_hot) / N.

    Shapes: logits (N, K) float, labels (N,) integers in 0..K-1.
    """

    def __init__(self):
        self._p = None
        self._labels = None

    def forward(self, logits, labels):
        _check_input(logits, "SoftmaxCrossEntropy", 2, None)
        if logits.dtype not in _FLOATS:
            raise TypeError(f"logits must be float32 or float64, got {logits.dtype}")
        labels = np.asarray(labels)
        if labels.dtype.kind not in "iu" or labels.shape != (logits.shape[0],):
            raise ValueError(f"labels must be integers of shape ({logits.shape[0]},), got "
                             f"{labels.dtype} {labels.shape}")
        n, k = logits.shape
        if n == 0:
            raise ValueError("SoftmaxCrossEntropy: empty batch")
        if labels.min() < 0 or labels.max() >= k:
            raise ValueError(f"labels must lie in 0..{k - 1}, got values from {labels.min()} to {labels.max()}")
        z = logits - logits.max(axis=1, keepdims=True)
        rows = np.arange(n)
        picked = z[rows, labels]
        np.exp(z, out=z)
        s = z.sum(axis=1, keepdims=True)
        loss = float(np.mean(np.log(s[:, 0]) - picked))
        z /= s
        self._p, self._labels = z, labels
        return loss

    def backward(self):
        if self._p is None:
            raise RuntimeError("SoftmaxCrossEntropy.backward called before forward")
        d = self._p
        n = d.shape[0]
        d[np.arange(n), self._labels] -= 1
        d *= d.dtype.type(1.0 / n)
        self._p = None  # the softmax buffer is now the gradient
        return d


# -------------------------------------------------------------------------------- container

class Sequential:
    """Layers applied in order, with all parameters (and gradients) in one flat buffer.

    At construction every layer's parameters are copied into one contiguous array and the
    layers' ``params`` / ``grads`` entries become views into ``flat_params`` / ``flat_grads``,
    so an optimizer updates the whole network with a handful of vectorised operations.

    Parameters
    ----------
    layers : list of Layer
        All parameters must share one dtype (float32 or float64).

    Attributes
    ----------
    layers : list of Layer
    flat_params, flat_grads : 1-D ndarrays (total parameter count,)
    dtype : numpy dtype of the parameters (float32 when there are none)
    """

    def __init__(self, layers):
        layers = list(layers)
        for i, layer in enumerate(layers):
            if not hasattr(layer, "forward") or not hasattr(layer, "backward"):
                raise TypeError(f"layers[{i}] must be a layer with forward and backward, got {type(layer).__name__}")
        self.layers = layers
        arrays = [(layer, name, arr) for layer in layers for name, arr in layer.params.items()]
        dtypes = {arr.dtype for _, _, arr in arrays}
        if len(dtypes) > 1:
            raise TypeError(f"all parameters must share one dtype, got {sorted(d.name for d in dtypes)}")
        self.dtype = dtypes.pop() if dtypes else np.dtype(np.float32)
        total = sum(arr.size for _, _, arr in arrays)
        self.flat_params = np.empty(total, dtype=self.dtype)
        self.flat_grads = np.zeros(total, dtype=self.dtype)
        offset = 0
        for layer, name, arr in arrays:
            n = arr.size
            p = self.flat_params[offset:offset + n].reshape(arr.shape)
            p[...] = arr
            # Own dicts per layer (never the class-level empty defaults).
            layer.params = dict(layer.params)
            layer.grads = dict(layer.grads)
            layer.params[name] = p
            layer.grads[name] = self.flat_grads[offset:offset + n].reshape(arr.shape)
            offset += n

    def forward(self, x, training=True):
        """Network output (e.g. logits (N, 10)) for a batch ``x`` of the parameters' dtype."""
        if not isinstance(x, np.ndarray):
            raise TypeError(f"x must be a numpy array, got {type(x).__name__}")
        if x.dtype != self.dtype:
            raise TypeError(f"x must have dtype {self.dtype} (the network's), got {x.dtype}")
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    __call__ = forward

    def backward(self, dy):
        """Back-propagate ``dy`` (gradient of the loss w.r.t. the output) through every layer,
        overwriting each layer's ``grads``. Returns the input gradient, or None when the first
        layer skips it (``input_grad=False``)."""
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
            if dy is None:
                break
        return dy

    def parameters(self):
        """``[flat_params]``: the list an optimizer updates in place."""
        return [self.flat_params]

    def gradients(self):
        """``[flat_grads]``, matching :meth:`parameters`."""
        return [self.flat_grads]

    @property
    def num_parameters(self):
        return self.flat_params.size

    @property
    def conv_seconds(self):
        """Seconds spent inside the convolution kernels so far (forward and backward)."""
        return sum(getattr(layer, "conv_seconds", 0.0) for layer in self.layers)

    @property
    def modes(self):
        """Mode K of each random-pooling or ECP layer, in order (empty for max / avg pooling)."""
        return [layer.mode for layer in self.layers if hasattr(layer, "mode")]

    def predict(self, x, batch_size=1000):
        """Class indices (N,) for inputs ``x`` (N, ...), evaluated in batches of ``batch_size``."""
        batch_size = check_int(batch_size, "batch_size", 1)
        out = np.empty(len(x), dtype=np.int64)
        for start in range(0, len(x), batch_size):
            logits = self.forward(x[start:start + batch_size], training=False)
            out[start:start + len(logits)] = logits.argmax(axis=1)
        return out

    def __repr__(self):
        inner = "".join(f"\n  {layer!r}," for layer in self.layers)
        return f"Sequential([{inner}\n])  # {self.num_parameters} parameters, {self.dtype.name}"
