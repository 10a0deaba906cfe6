"""The modules: :class:`EasyConvPool2d`, :class:`RandomPool2d`, :class:`NeighborFill`.

A module's mode K is a Python int for its forward (so that ``torch.compile`` sees a constant) and
a 0-d int64 buffer ``mode`` in its ``state_dict`` (so that a saved model reloads with its K;
``load_state_dict`` updates the int).

Mode policy (constructor arguments, shown in ``repr``, not in the ``state_dict``):
``mode="per-batch"`` draws a new K for every training-mode forward from the module's own
``torch.Generator`` (autograd's backward uses the K of its forward); evaluation-mode forwards use
``eval_mode``: a K (then also the buffer ``mode``, so the ``state_dict`` loads into a fixed-K module
that evaluates the same) or ``"ensemble"``, the average of the network's logits over the modes,
which only :func:`ecp.torch.ensemble` computes.

Pooling windows: ``pool_size`` p (1..4) and ``pool_stride`` s (1..p), 2 and 2 by default; modes
0..p^2-1, the kept pixel at (K // p, K % p); outputs of PyTorch's floor sizes.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .._validation import check_int, check_window
from . import functional as F_ecp

__all__ = ["EasyConvPool2d", "RandomPool2d", "NeighborFill"]


PER_BATCH = "per-batch"
ENSEMBLE = "ensemble"


def _resolve_mode(mode, n_modes=4):
    """K in 0..n_modes-1; ``"random"`` draws it from torch's default generator."""
    if isinstance(mode, str):
        if mode != "random":
            raise ValueError(f'mode must be an integer in 0..{n_modes - 1} or "random" (one K) or "per-batch", '
                             f'got {mode!r}')
        return int(torch.randint(n_modes, ()).item())
    return check_int(mode, "mode", 0, n_modes - 1)


def _resolve_eval_mode(eval_mode, per_batch, n_modes=4):
    """``eval_mode`` checked: None, a K in 0..n_modes-1, or "ensemble" (per-batch modules only)."""
    if eval_mode is None:
        return None
    if isinstance(eval_mode, str):
        if eval_mode != ENSEMBLE:
            raise ValueError(f'eval_mode must be an integer in 0..{n_modes - 1}, "ensemble" or None, got {eval_mode!r}')
        if not per_batch:
            raise ValueError('eval_mode="ensemble" needs mode="per-batch": a module trained with one K never saw the '
                             'other modes (ecp.torch.ensemble(model) still averages any model on request)')
        return ENSEMBLE
    return check_int(eval_mode, "eval_mode", 0, n_modes - 1)


class _ModeBuffer(nn.Module):
    """Keeps K as an int (``self.k``) and as the persistent buffer ``mode``, and the mode policy.

    ``per_batch``: draw K from ``generator`` for every training forward; ``eval_mode``: None (use
    ``k``), a K, or "ensemble"; ``_ensemble_k``: the K that :func:`ecp.torch.ensemble` imposes.
    """

    per_batch = False
    eval_mode = None
    generator = None
    _ensemble_k = None
    # modules saved before windows: the 2x2 window of stride 2
    pool_size = 2
    pool_stride = 2

    @property
    def n_modes(self) -> int:
        """The modes of the pooling window: p^2 (4 for 2x2)."""
        return self.pool_size * self.pool_size

    def _window(self):
        """``(p, s)`` as the functional ops' keywords, or none for the 2x2 window of stride 2."""
        p, s = self.pool_size, self.pool_stride
        return {} if p == 2 and s == 2 else {"pool_size": p, "pool_stride": s}

    def _window_repr(self) -> str:
        p, s = self.pool_size, self.pool_stride
        return "" if p == 2 and s == 2 else f", pool_size={p}, pool_stride={s}"

    def _init_mode(self, mode, device, eval_mode=None, generator=None):
        n = self.n_modes
        self.per_batch = isinstance(mode, str) and mode == PER_BATCH
        self.eval_mode = _resolve_eval_mode(eval_mode, self.per_batch, n)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        if self.per_batch:
            if generator is None:   # seeded from torch's default generator, after the weights
                generator = torch.Generator().manual_seed(int(torch.randint(2**62, ()).item()))
            self.generator = generator
            # an evaluation K lives in k (and the buffer), so a loaded state_dict sets it
            self.k = 0 if self.eval_mode in (None, ENSEMBLE) else self.eval_mode
            if self.eval_mode != ENSEMBLE:
                self.eval_mode = None
        else:
            if generator is not None:
                raise ValueError(f'generator applies only to mode="per-batch" (got mode={mode!r})')
            self.k = _resolve_mode(mode, n)
            if self.eval_mode == self.k:
                self.eval_mode = None
        self.register_buffer("mode", torch.tensor(self.k, dtype=torch.int64, device=device))

    def _forward_mode(self) -> int:
        """K of this forward: imposed by ecp.torch.ensemble, drawn (per-batch, training), or fixed."""
        if self._ensemble_k is not None:
            return self._ensemble_k
        if self.training:
            if self.per_batch:
                return int(torch.randint(self.n_modes, (), generator=self.generator).item())
            return self.k
        if self.eval_mode == ENSEMBLE:
            raise RuntimeError(f'{type(self).__name__} has eval_mode="ensemble": the ensemble averages the logits '
                               'of the whole network; evaluate with ecp.torch.ensemble(model)(x)')
        return self.k if self.eval_mode is None else self.eval_mode

    def _mode_repr(self) -> str:
        if not self.per_batch:
            s = f"mode={self.k}"
            return (s if self.eval_mode is None else s + f", eval_mode={self.eval_mode!r}") + self._window_repr()
        return ("mode='per-batch', eval_mode=" + repr(self.k if self.eval_mode is None else self.eval_mode)
                + self._window_repr())

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.k = check_int(int(self.mode), "mode (loaded from the state_dict)", 0, self.n_modes - 1)


class EasyConvPool2d(_ModeBuffer):
    """EasyConvPooling: a convolution whose output already is the pooling (Random, mode K, or average).

    With ``pool="random"`` (the default): equal to ``nn.Conv2d`` (stride 1) followed by 2x2 Random
    Pooling with the same weights, computing only the quarter of the outputs the pooling keeps.
    With ``pool="avg"``: equal to ``nn.Conv2d`` followed by ``nn.AvgPool2d(2)`` within float
    rounding, computed as one stride-2 convolution with the kernel widened by the 2x2 box
    (:func:`ecp.torch.easy_avg_conv2d`); there is no mode. Shapes: (N, C, H, W) ->
    (N, O, Ho // 2, Wo // 2), with (Ho, Wo) the convolution's output size. Other windows
    (``pool_size`` p, ``pool_stride`` s): ``nn.MaxPool2d`` / ``nn.AvgPool2d(p, s)``'s sizes,
    (N, O, (Ho - p) // s + 1, (Wo - p) // s + 1), and modes 0..p^2-1.

    Parameters
    ----------
    in_channels : int
        C, channels of the input.
    out_channels : int
        O, number of filters.
    kernel_size : int or pair (kh, kw)
        Size of the filters.
    padding : int or pair (ph, pw), default 0
        Zeros added on each side of the input.
    bias : bool, default True
        Whether to add a learnable bias.
    mode : int 0..p^2-1, "random", "per-batch" or None, default None
        Random pooling's kept pixel of each window, row-major, at (K // p, K % p) (2x2: 0
        top-left, 1 top-right, 2 bottom-left, 3 bottom-right); ``"random"`` (what None means for ``pool="random"``)
        draws K once, after the weights, from torch's generator; ``"per-batch"`` draws a new K
        for every training-mode forward from ``generator``. Must be None for
        ``pool="avg"`` (refused, not ignored: average pooling keeps every pixel).
    device : torch.device, optional
        Of the parameters.
    dtype : torch.dtype, optional
        Of the parameters.
    pool : {"random", "avg"}, default "random"
        Random Pooling with mode K, or exact average pooling.
    eval_mode : int 0..p^2-1, "ensemble" or None, default None
        K of evaluation-mode forwards. None: the training K, or 0 for ``mode="per-batch"``.
        ``"ensemble"`` (per-batch only, ValueError otherwise): evaluate through
        :func:`ecp.torch.ensemble`, which averages the logits over the p^2 modes.
    generator : torch.Generator, optional
        ``mode="per-batch"`` only: the source of the K draws; default a new generator seeded
        from torch's default generator after the weights. Not saved in the ``state_dict``.
    pool_size : int 1..4, default 2
        The side p of the pooling window.
    pool_stride : int 1..pool_size, default 2
        The stride s of the pooling window.

    Attributes
    ----------
    weight : Parameter, shape (O, C, kh, kw)
        The filters, initialised as ``nn.Conv2d`` initialises them.
    bias : Parameter, shape (O,), or None
        The biases.
    k : int or None
        Mode K (for ``mode="per-batch"``: the evaluation K, 0 with ``"ensemble"``); also the
        buffer ``mode`` of the state_dict. None for ``pool="avg"``, whose state_dict holds no mode.
    pool : str
        ``"random"`` or ``"avg"``.

    Raises
    ------
    TypeError, ValueError
        For a bad size, padding, mode or pool, naming the argument.

    Examples
    --------
    >>> import torch, ecp.torch
    >>> layer = ecp.torch.EasyConvPool2d(3, 8, 3, padding=1, mode=2)
    >>> layer
    EasyConvPool2d(3, 8, kernel_size=(3, 3), padding=(1, 1), mode=2)
    >>> layer(torch.randn(4, 3, 28, 28)).shape
    torch.Size([4, 8, 14, 14])
    >>> ecp.torch.EasyConvPool2d(3, 8, 3, padding=1, pool="avg")
    EasyConvPool2d(3, 8, kernel_size=(3, 3), padding=(1, 1), pool='avg')
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 padding: int | tuple[int, int] = 0, bias: bool = True, mode: int | str | None = None,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                 pool: str = "random", eval_mode: int | str | None = None,
                 generator: torch.Generator | None = None, pool_size: int = 2, pool_stride: int = 2) -> None:
        super().__init__()
        self.pool_size, self.pool_stride = check_window(pool_size, pool_stride)
        if pool not in ("random", "avg"):
            raise ValueError(f'pool must be "random" or "avg", got {pool!r}')
        if pool == "avg" and mode is not None:
            raise ValueError(f'mode applies only to pool="random", not pool="avg" (got mode={mode!r})')
        if pool == "avg" and (eval_mode, generator) != (None, None):
            raise ValueError(f'eval_mode and generator apply only to pool="random", not pool="avg" '
                             f'(got eval_mode={eval_mode!r})')
        self.pool = pool
        self.in_channels = check_int(in_channels, "in_channels", 1)
        self.out_channels = check_int(out_channels, "out_channels", 1)
        kh, kw = F_ecp._pair(kernel_size, "kernel_size")
        if kh < 1 or kw < 1:
            raise ValueError(f"kernel_size must be at least 1, got {kernel_size!r}")
        self.kernel_size = (kh, kw)
        self.padding = F_ecp._pair(padding, "padding")
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty((self.out_channels, self.in_channels, kh, kw), **factory))
        self.bias = nn.Parameter(torch.empty(self.out_channels, **factory)) if bias else None
        self.reset_parameters()
        if pool == "random":
            self._init_mode("random" if mode is None else mode, device, eval_mode, generator)
        else:
            self.k = None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if getattr(self, "pool", "random") == "avg":   # no mode buffer (modules saved before pool existed: random)
            nn.Module._load_from_state_dict(self, state_dict, prefix, *args, **kwargs)
        else:
            super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def reset_parameters(self) -> None:
        """Draw the weights and biases as ``nn.Conv2d`` does (the same values from the same generator state)."""
        nn.Conv2d.reset_parameters(self)

    def forward(self, input: Tensor) -> Tensor:
        """Easy Convolution of ``input`` with this forward's mode K, or easy average pooling.

        Parameters
        ----------
        input : Tensor, shape (N, C, H, W)
            The input.

        Returns
        -------
        Tensor, shape (N, O, (Ho - p) // s + 1, (Wo - p) // s + 1)
            ``ecp.torch.easy_conv2d(input, weight, bias, mode=K, padding=padding, pool_size=p,
            pool_stride=s)``, or ``ecp.torch.easy_avg_conv2d`` for ``pool="avg"``.
        """
        if self.k is None:
            return F_ecp.easy_avg_conv2d(input, self.weight, self.bias, self.padding, **self._window())
        return F_ecp.easy_conv2d(input, self.weight, self.bias, self._forward_mode(), self.padding, **self._window())

    def extra_repr(self) -> str:
        """The constructor's arguments, mode K (or ``pool='avg'``) included.

        Returns
        -------
        str
            For ``repr``.
        """
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, padding={self.padding}, "
             + (self._mode_repr() if self.k is not None else "pool='avg'" + self._window_repr()))
        return s if self.bias is not None else s + ", bias=False"


class RandomPool2d(_ModeBuffer):
    """Random Pooling, p x p windows of stride s (2x2 / 2 by default): keeps the pixel at position K of every window.

    Shapes: (N, C, H, W) -> (N, C, (H - p) // s + 1, (W - p) // s + 1) ((H // 2, W // 2) for 2x2).

    Parameters
    ----------
    mode : int 0..p^2-1, "random" or "per-batch"
        K, row-major in the window: (K // p, K % p); ``"random"`` draws it once from torch's
        generator; ``"per-batch"`` draws a new K for every training-mode forward from ``generator``.
    eval_mode : int 0..p^2-1, "ensemble" or None, default None
        As :class:`EasyConvPool2d`.
    generator : torch.Generator, optional
        As :class:`EasyConvPool2d`.
    pool_size : int 1..4, default 2
        The side p of the window.
    pool_stride : int 1..pool_size, default 2
        The stride s of the window.

    Attributes
    ----------
    k : int
        Mode K; also the buffer ``mode`` of the state_dict.

    Examples
    --------
    >>> import torch, ecp.torch
    >>> ecp.torch.RandomPool2d(3)(torch.arange(16.0).reshape(1, 1, 4, 4))[0, 0]
    tensor([[ 5.,  7.],
            [13., 15.]])
    """

    def __init__(self, mode: int | str, eval_mode: int | str | None = None,
                 generator: torch.Generator | None = None, pool_size: int = 2, pool_stride: int = 2) -> None:
        super().__init__()
        self.pool_size, self.pool_stride = check_window(pool_size, pool_stride)
        self._init_mode(mode, None, eval_mode, generator)

    def forward(self, input: Tensor) -> Tensor:
        """Random Pooling of ``input`` with mode K.

        Parameters
        ----------
        input : Tensor, shape (N, C, H, W)
            The input.

        Returns
        -------
        Tensor, shape (N, C, (H - p) // s + 1, (W - p) // s + 1)
            ``ecp.torch.random_pool2d(input, mode=K, pool_size=p, pool_stride=s)``, K of this
            forward (see the class).
        """
        return F_ecp.random_pool2d(input, self._forward_mode(), **self._window())

    def extra_repr(self) -> str:
        """The mode (and the evaluation mode when it differs).

        Returns
        -------
        str
            For ``repr``.
        """
        return self._mode_repr()


class NeighborFill(nn.Module):
    """Neighbor fill: each value copied into its 2x2 window, (N, C, Hq, Wq) -> (N, C, H, W).

    Parameters
    ----------
    size : int, pair (H, W) or None
        The full size (see :func:`ecp.torch.neighbor_fill`); None means (2Hq, 2Wq).

    Examples
    --------
    >>> import torch, ecp.torch
    >>> ecp.torch.NeighborFill()(torch.ones(1, 1, 2, 2)).shape
    torch.Size([1, 1, 4, 4])
    """

    def __init__(self, size: int | tuple[int, int] | None = None) -> None:
        super().__init__()
        self.size = None if size is None else F_ecp._pair(size, "size")

    def forward(self, input: Tensor) -> Tensor:
        """The filled map.

        Parameters
        ----------
        input : Tensor, shape (N, C, Hq, Wq)
            The pooled map.

        Returns
        -------
        Tensor, shape (N, C, H, W)
            ``ecp.torch.neighbor_fill(input, size)``.
        """
        return F_ecp.neighbor_fill(input, self.size)

    def extra_repr(self) -> str:
        """The size.

        Returns
        -------
        str
            For ``repr``.
        """
        return f"size={self.size}"
