"""The layer shapes ``ecp bench`` measures: the named ones and ``N,C,H,W:O,kh,kw[:pad]`` specs."""
from __future__ import annotations

import numpy as np

from ...conv import conv2d_output_shape

__all__ = ["SHAPES", "DEFAULT_SHAPES", "BenchShape", "parse_shape", "parse_shapes"]

# name -> (x shape (N, C, H, W), w shape (O, C, kh, kw), padding)
SHAPES = {
    # the paper's MNIST network (LeNet-like): conv1 on 28x28 digits, conv2 on the pooled 12x12 maps
    "conv1": ((50, 1, 28, 28), (20, 1, 5, 5), 0),
    "conv2": ((50, 20, 12, 12), (32, 20, 5, 5), 0),
    # a VGG-like 3x3 layer on 56x56 maps
    "vgg": ((16, 64, 56, 56), (64, 64, 3, 3), 1),
    # small: per-call overhead dominates
    "small": ((2, 3, 8, 8), (8, 3, 3, 3), 1),
}
DEFAULT_SHAPES = ("conv1", "conv2", "vgg", "small")
_CUSTOM_FORMAT = "N,C,H,W:O,kh,kw[:pad]"


class BenchShape:
    """One layer shape to benchmark.

    Not validated: :func:`parse_shape` checks specs before building one.

    Parameters
    ----------
    name : str
        Label in the tables and the record (a name from :data:`SHAPES` or the custom spec).
    x_shape : sequence of 4 int
        Input shape (N, C, H, W).
    w_shape : sequence of 4 int
        Weight shape (O, C, kh, kw).
    padding : int
        Zero padding on each side of H and W.
    """

    __slots__ = ("name", "x_shape", "w_shape", "padding")

    def __init__(self, name: str, x_shape, w_shape, padding: int):
        self.name = name
        self.x_shape = tuple(int(v) for v in x_shape)
        self.w_shape = tuple(int(v) for v in w_shape)
        self.padding = int(padding)

    @property
    def full_shape(self) -> tuple[int, int, int, int]:
        """Shape of the full convolution's output.

        Returns
        -------
        tuple of 4 int
            ``(N, O, Ho, Wo)`` with ``Ho = H + 2*padding - kh + 1``, ``Wo = W + 2*padding - kw + 1``.
        """
        return conv2d_output_shape(self.x_shape, self.w_shape, self.padding)

    @property
    def easy_shape(self) -> tuple[int, int, int, int]:
        """Shape of Easy Convolution's output, which is the randomly pooled map.

        Returns
        -------
        tuple of 4 int
            ``(N, O, Ho // 2, Wo // 2)``, from :attr:`full_shape`.
        """
        n, o, ho, wo = self.full_shape
        return (n, o, ho // 2, wo // 2)

    def flops(self) -> dict[str, int]:
        """Count the floating-point operations of the full and the easy convolution.

        Returns
        -------
        dict of str to int
            ``"full_forward"``, ``"easy_forward"`` (``2 * outputs * C*kh*kw``),
            ``"full_backward"`` and ``"easy_backward"`` (twice the forward count: dx and dW).
        """
        taps = self.w_shape[1] * self.w_shape[2] * self.w_shape[3]
        full = 2 * int(np.prod(self.full_shape)) * taps
        easy = 2 * int(np.prod(self.easy_shape)) * taps
        return {"full_forward": full, "easy_forward": easy,
                "full_backward": 2 * full, "easy_backward": 2 * easy}

    def describe(self) -> str:
        """Describe the layer in one line, for messages.

        Returns
        -------
        str
            The input, weight and padding, and the full and easy output shapes.
        """
        return (f"x {self.x_shape}, w {self.w_shape}, padding {self.padding} -> full "
                f"{self.full_shape}, easy / pooled {self.easy_shape}")

    def __repr__(self):
        return f"BenchShape({self.name!r}, {self.x_shape}, {self.w_shape}, {self.padding})"

    def __eq__(self, other):
        return isinstance(other, BenchShape) and (
            (self.name, self.x_shape, self.w_shape, self.padding)
            == (other.name, other.x_shape, other.w_shape, other.padding))

    def __hash__(self):
        return hash((self.name, self.x_shape, self.w_shape, self.padding))


def _parse_ints(text, count, what, spec, option):
    parts = text.split(",")
    if len(parts) != count:
        raise ValueError(f"{option}: {what} of {spec!r} must be {count} comma-separated integers, "
                         f"got {text!r} (format {_CUSTOM_FORMAT})")
    try:
        values = [int(p.strip()) for p in parts]
    except ValueError:
        raise ValueError(f"{option}: {what} of {spec!r} must be integers, got {text!r} "
                         f"(format {_CUSTOM_FORMAT})") from None
    return values


def parse_shape(spec: str | BenchShape, option: str = "--shapes") -> BenchShape:
    """One shape: a name from :data:`SHAPES` or ``N,C,H,W:O,kh,kw[:pad]`` (kernel ``O, C, kh, kw``).

    Parameters
    ----------
    spec : str or BenchShape
        The name or custom spec (a BenchShape is returned as is).
    option : str
        Named in error messages (the CLI flag, or the argument of :func:`run_bench`).

    Returns
    -------
    BenchShape
        The shape, named by the stripped spec (or ``spec`` itself when given a BenchShape).

    Raises
    ------
    TypeError
        ``spec`` is neither a string nor a BenchShape.
    ValueError
        The text is neither a name nor a spec, or the layer cannot be benchmarked (non-positive
        sizes, kernel larger than the padded input, output smaller than 2x2).
    """
    if isinstance(spec, BenchShape):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"{option}: each shape must be a name or a string {_CUSTOM_FORMAT}, "
                        f"got {type(spec).__name__} {spec!r}")
    text = spec.strip()
    if text in SHAPES:
        return BenchShape(text, *SHAPES[text])
    if ":" not in text:
        raise ValueError(f"{option}: unknown shape {spec!r}: expected one of "
                         f"{', '.join(SHAPES)} or a custom layer {_CUSTOM_FORMAT}")
    fields = text.split(":")
    if len(fields) not in (2, 3):
        raise ValueError(f"{option}: custom shape {spec!r} must look like {_CUSTOM_FORMAT}, "
                         f"e.g. 8,16,32,32:32,3,3:1")
    n, c, h, w = _parse_ints(fields[0], 4, "the input N,C,H,W", spec, option)
    o, kh, kw = _parse_ints(fields[1], 3, "the kernel O,kh,kw", spec, option)
    pad = 0
    if len(fields) == 3:
        (pad,) = _parse_ints(fields[2], 1, "the padding", spec, option)
    if min(n, c, h, w, o, kh, kw) < 1:
        raise ValueError(f"{option}: every size of custom shape {spec!r} must be >= 1, got "
                         f"N,C,H,W = {n},{c},{h},{w} and O,kh,kw = {o},{kh},{kw}")
    if pad < 0:
        raise ValueError(f"{option}: the padding of custom shape {spec!r} must be >= 0, got {pad}")
    ho, wo = h + 2 * pad - kh + 1, w + 2 * pad - kw + 1
    if ho < 2 or wo < 2:
        raise ValueError(f"{option}: custom shape {spec!r} gives a {ho}x{wo} convolution output "
                         f"(input {h}x{w}, kernel {kh}x{kw}, padding {pad}); Easy Convolution and "
                         "2x2 pooling need at least 2x2")
    return BenchShape(text, (n, c, h, w), (o, c, kh, kw), pad)


def parse_shapes(specs, option: str = "--shapes") -> list[BenchShape]:
    """A list of :class:`BenchShape` from names / custom specs.

    Each item may also hold several names joined by commas (``"conv1,conv2"``); a custom shape
    (it contains ``:``) stands alone. Duplicates are dropped, order is kept.

    Parameters
    ----------
    specs : str, BenchShape, or a list of them, or None
        None: :data:`DEFAULT_SHAPES`.
    option : str
        Named in error messages.

    Returns
    -------
    list of BenchShape
        At least one shape, without duplicates, in the order given.

    Raises
    ------
    TypeError, ValueError
        As :func:`parse_shape`; ValueError also when no shape is given.
    """
    if specs is None:
        specs = DEFAULT_SHAPES
    if isinstance(specs, (str, BenchShape)):
        specs = [specs]
    out = []
    for spec in specs:
        if isinstance(spec, str) and ":" not in spec and "," in spec:
            items = [s for s in spec.split(",") if s.strip()]
        else:
            items = [spec]
        for item in items:
            shape = parse_shape(item, option)
            if shape not in out:
                out.append(shape)
    if not out:
        raise ValueError(f"{option}: no shape given (names: {', '.join(SHAPES)}, or {_CUSTOM_FORMAT})")
    return out

