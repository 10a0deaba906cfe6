"""The loss: softmax followed by the mean cross-entropy over the batch."""
from __future__ import annotations

import numpy as np

from .layers import _FLOATS, _check_input

__all__ = ["SoftmaxCrossEntropy"]


class SoftmaxCrossEntropy:
    """Softmax followed by the mean cross-entropy over the batch (PyTorch's ``CrossEntropyLoss``).

    ``loss(logits, labels)`` (or ``loss.forward(logits, labels)``) returns the loss and keeps the
    softmax for :meth:`backward`, which returns d loss / d logits = (softmax - one_hot) / N.

    Shapes: logits (N, K) float32 or float64, labels (N,) integers in 0..K-1.
    """

    def __init__(self) -> None:
        self._p = None
        self._labels = None

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        """Mean cross-entropy of ``softmax(logits)`` against ``labels``.

        Parameters
        ----------
        logits : ndarray (N, K)
            Scores, float32 or float64.
        labels : array-like of int (N,)
            Classes in 0..K-1.

        Returns
        -------
        float
            The loss, computed in the dtype of ``logits`` (shifted by the row maximum, so large
            logits stay finite).

        Raises
        ------
        TypeError
            ``logits`` not a 2-D float32 / float64 array.
        ValueError
            An empty batch, or labels of the wrong shape, type or range.
        """
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

    def __call__(self, logits: np.ndarray, labels: np.ndarray) -> float:
        """Same as :meth:`forward`.

        Parameters
        ----------
        logits : ndarray (N, K)
            Scores, float32 or float64.
        labels : array-like of int (N,)
            Classes in 0..K-1.

        Returns
        -------
        float
            The loss.
        """
        return self.forward(logits, labels)

    def backward(self) -> np.ndarray:
        """Gradient of the last loss with respect to the logits: (softmax - one_hot) / N.

        Returns
        -------
        ndarray (N, K)
            Written into the buffer that held the softmax: one backward per forward.

        Raises
        ------
        RuntimeError
            When no forward came since the last backward.
        """
        if self._p is None:
            raise RuntimeError("SoftmaxCrossEntropy.backward called before forward")
        d = self._p
        n = d.shape[0]
        d[np.arange(n), self._labels] -= 1
        d *= d.dtype.type(1.0 / n)
        self._p = None  # the softmax buffer is now the gradient
        return d

    def __repr__(self) -> str:
        return "SoftmaxCrossEntropy()"
