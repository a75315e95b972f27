"""Softmax cross-entropy loss for integer class labels."""

from __future__ import annotations

import numpy as np

from numbaconv._validation import as_float_array, check_ndim


def _labels(labels: object, n: int, n_classes: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.dtype.kind not in "iu":
        raise TypeError(
            f"labels must be an integer array of class indices, got dtype {y.dtype}"
            + (" (convert it explicitly, e.g. y.astype(np.int64))" if y.dtype.kind == "f"
               else ""))
    if y.shape != (n,):
        raise ValueError(
            f"labels must have shape ({n},), one class index per row of logits, "
            f"got shape {y.shape}")
    if n and (y.min() < 0 or y.max() >= n_classes):
        bad = y[(y < 0) | (y >= n_classes)][0]
        raise ValueError(
            f"labels must be in [0, {n_classes - 1}] for {n_classes} classes, "
            f"got label {int(bad)} (Target {int(bad)} is out of bounds)")
    return y.astype(np.intp, copy=False)


class SoftmaxCrossEntropy:
    """Mean softmax cross-entropy over a batch, with its gradient.

    ``loss = mean_n( logsumexp(logits[n]) - logits[n, labels[n]] )``, the value of PyTorch's
    ``cross_entropy(logits, labels)`` with the default mean reduction. The maximum of every
    row is subtracted before exponentiating, so large logits neither overflow nor lose the
    gradient.

    ``params`` is empty. Call ``loss, dlogits = SoftmaxCrossEntropy()(logits, labels)``
    (or ``.forward``); ``dlogits = (softmax(logits) - onehot(labels)) / N`` has the shape
    and dtype of ``logits``. ``backward()`` returns the gradient of the last call again.
    """

    def __init__(self) -> None:
        self.params: list[np.ndarray] = []
        self._grad: np.ndarray | None = None

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
        """Mean loss (a Python float) and its gradient with respect to ``logits`` (N, C)."""
        z = as_float_array("logits", logits)
        check_ndim("logits", z, 2, "(N, n_classes)", "SoftmaxCrossEntropy")
        n, n_classes = z.shape
        if n == 0 or n_classes == 0:
            raise ValueError(
                f"SoftmaxCrossEntropy needs at least one row and one class, "
                f"got logits of shape {z.shape}")
        y = _labels(labels, n, n_classes)
        shifted = z - z.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        rows = np.arange(n)
        loss = float(np.mean(np.log(total[:, 0]) - shifted[rows, y]))
        grad = exp / total
        grad[rows, y] -= 1
        grad /= n
        self._grad = grad
        return loss, grad

    __call__ = forward

    def backward(self) -> np.ndarray:
        """The gradient with respect to the logits of the last ``forward`` call."""
        if self._grad is None:
            from numbaconv._validation import BackwardBeforeForwardError

            raise BackwardBeforeForwardError(
                "SoftmaxCrossEntropy.backward() called before SoftmaxCrossEntropy.forward()")
        return self._grad

    def __repr__(self) -> str:
        return "SoftmaxCrossEntropy()"
