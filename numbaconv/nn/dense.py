"""Fully connected layer ``Dense``: ``out = X @ W + b``."""

from __future__ import annotations

import numpy as np

from numbaconv._validation import as_float_array, as_int, check_ndim
from numbaconv.layer import WeightsAndBias, layer_dtype
from numbaconv.nn._checks import check_dout, check_train, no_forward_state


class Dense(WeightsAndBias):
    """Fully connected (affine) layer with the classic teaching API.

    Parameters
    ----------
    in_features, out_features : int
        Input size D and output size M.
    dtype : float32 or float64, keyword-only
        Parameter dtype; floating inputs of the other precision are converted to it.
    rng : None, int or numpy.random.Generator, keyword-only
        Source of the classic initialisation ``W = randn(D, M) / sqrt(D / 2)``; the same seed
        gives the same weights.

    Attributes
    ----------
    W : ndarray (D, M)
    b : ndarray (1, M)
    params : list [W, b]
        The arrays ``forward`` uses; optimizers update them in place.

    Notes
    -----
    ``forward(X)`` computes ``X @ W + b`` for ``X`` of shape (N, D). This is PyTorch's
    ``linear(X, W.T, b)``: ``W`` is stored transposed with respect to ``torch.nn.Linear``.
    ``backward(dout)`` returns ``(dX, [dW, db])`` with ``dW = X.T @ dout`` (D, M) and
    ``db = dout.sum(axis=0)`` shaped (1, M).
    """

    def __init__(self, in_features: int, out_features: int, *, dtype: object = np.float64,
                 rng: None | int | np.random.Generator = None) -> None:
        self.in_features = as_int("in_features", in_features)
        self.out_features = as_int("out_features", out_features)
        for name, value in (("in_features", self.in_features),
                            ("out_features", self.out_features)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.dtype = layer_dtype(dtype)
        generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        W = generator.standard_normal((self.in_features, self.out_features))
        W /= np.sqrt(self.in_features / 2.0)
        self.params = [W.astype(self.dtype),
                       np.zeros((1, self.out_features), dtype=self.dtype)]
        self._x: np.ndarray | None = None
        self._inference = False

    def forward(self, X: np.ndarray, train: bool = True) -> np.ndarray:
        """``X @ W + b`` for ``X`` of shape (N, in_features); returns (N, out_features).

        With ``train=False`` (inference) ``X`` is not kept for ``backward``."""
        train = check_train(train)
        X = as_float_array("X", X, dtype=self.dtype)
        if X.ndim != 2:
            hint = " (put a Flatten() layer before Dense)" if X.ndim > 2 else ""
            check_ndim("X", X, 2, "(N, in_features)", "Dense.forward" + hint)
        if X.shape[1] != self.in_features:
            raise ValueError(
                f"Dense.forward: X has {X.shape[1]} features per row (shape {X.shape}), "
                f"expected in_features={self.in_features}")
        self._x, self._inference = (X, False) if train else (None, True)
        return X @ self.W + self.b

    def backward(self, dout: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Gradients for ``dout`` of shape (N, out_features): ``(dX, [dW, db])``."""
        if self._x is None:
            raise no_forward_state("Dense", self._inference)
        shape = (self._x.shape[0], self.out_features)
        dout = check_dout(dout, shape, self.dtype, "Dense")
        dW = self._x.T @ dout
        db = dout.sum(axis=0, keepdims=True)
        dX = dout @ self.W.T
        return dX, [dW, db]

    def __repr__(self) -> str:
        return (f"Dense(in_features={self.in_features}, out_features={self.out_features}, "
                f"dtype={self.dtype})")
