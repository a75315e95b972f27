"""Parameter-free shape and activation layers: ``ReLU`` and ``Flatten``."""

from __future__ import annotations

import numpy as np

from numbaconv._validation import as_float_array
from numbaconv.nn._checks import check_dout, check_train, no_forward_state


class ReLU:
    """Rectified linear unit ``max(x, 0)`` for arrays of any shape, float32 or float64.

    The gradient is 1 where ``x > 0`` and 0 elsewhere (also at ``x == 0``, as in PyTorch);
    NaN inputs pass through the forward pass unchanged.
    ``params`` is empty and ``backward`` returns ``(dX, [])``.
    """

    def __init__(self) -> None:
        self.params: list[np.ndarray] = []
        self._mask: np.ndarray | None = None
        self._inference = False

    def forward(self, X: np.ndarray, train: bool = True) -> np.ndarray:
        """``max(X, 0)`` elementwise, same shape and dtype as ``X``.

        With ``train=False`` (inference) the mask of positive inputs is neither computed nor
        kept: nothing for ``backward``."""
        train = check_train(train)
        X = as_float_array("X", X).reshape(np.shape(X))
        if train:
            self._mask, self._dtype, self._inference = X > 0, X.dtype, False
        else:
            self._mask, self._inference = None, True
        return np.maximum(X, X.dtype.type(0))  # NaN propagates, as in PyTorch

    def backward(self, dout: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """``dout`` where the forward input was positive, 0 elsewhere: ``(dX, [])``."""
        if self._mask is None:
            raise no_forward_state("ReLU", self._inference)
        dout = check_dout(dout, self._mask.shape, self._dtype, "ReLU")
        return np.where(self._mask, dout, self._dtype.type(0)), []

    def __repr__(self) -> str:
        return "ReLU()"


class Flatten:
    """Reshape ``(N, d1, d2, ...)`` to ``(N, d1 * d2 * ...)``; ``backward`` reshapes back.

    Typically placed between the last convolution / pooling layer and a ``Dense`` layer.
    ``params`` is empty and ``backward`` returns ``(dX, [])``.
    """

    def __init__(self) -> None:
        self.params: list[np.ndarray] = []
        self._x_shape: tuple[int, ...] | None = None
        self._inference = False

    def forward(self, X: np.ndarray, train: bool = True) -> np.ndarray:
        """``X`` reshaped to ``(N, -1)`` (a view when possible); with ``train=False``
        (inference) nothing is kept for ``backward``."""
        train = check_train(train)
        if np.ndim(X) < 1:
            raise ValueError(
                f"Expected an input with a batch axis (N, ...) for Flatten.forward, "
                f"but got X of size: {list(np.shape(X))}")
        X = as_float_array("X", X)
        if train:
            self._x_shape, self._dtype, self._inference = X.shape, X.dtype, False
        else:
            self._x_shape, self._inference = None, True
        return X.reshape(X.shape[0], int(np.prod(X.shape[1:], dtype=np.int64)))

    def backward(self, dout: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """``dout`` reshaped to the forward input's shape: ``(dX, [])``."""
        if self._x_shape is None:
            raise no_forward_state("Flatten", self._inference)
        flat = (self._x_shape[0], int(np.prod(self._x_shape[1:], dtype=np.int64)))
        dout = check_dout(dout, flat, self._dtype, "Flatten")
        return dout.reshape(self._x_shape), []

    def __repr__(self) -> str:
        return "Flatten()"
