"""``Sequential``: a chain of layers with forward, backward and an optimizer step."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator

import numpy as np

from numbaconv._validation import as_int
from numbaconv.nn._checks import check_train, no_forward_state


@functools.lru_cache(maxsize=256)
def _takes_train(forward: Callable) -> bool:
    """Whether a ``forward`` function takes the ``train`` keyword (or any keyword)."""
    try:
        parameters = inspect.signature(forward).parameters.values()
    except (TypeError, ValueError):  # no signature to read (a builtin, say)
        return False
    return any(p.name == "train" and p.kind is not p.POSITIONAL_ONLY or p.kind is p.VAR_KEYWORD
               for p in parameters)


def layer_forward(layer: object, X: np.ndarray, train: bool) -> np.ndarray:
    """``layer.forward(X)``, with ``train=False`` passed on to a layer that takes it (a layer
    whose ``forward`` takes only ``X`` runs its usual forward pass)."""
    if train:
        return layer.forward(X)
    forward = layer.forward
    function = getattr(forward, "__func__", forward)
    try:
        takes = _takes_train(function)
    except TypeError:  # not hashable
        takes = _takes_train.__wrapped__(function)
    return forward(X, train=False) if takes else forward(X)


class Sequential:
    """Run layers one after another.

    Any object with ``forward(X)``, ``backward(dout) -> (dX, grads)`` and a ``params`` list
    works as a layer (``numbaconv.Conv``, ``FancyConv`` and every layer of ``numbaconv.nn``).
    ``forward(X, train=False)`` (inference, which :meth:`predict` uses) passes ``train=False``
    on to the layers whose ``forward`` takes it, so that they keep nothing for backward.

    Attributes
    ----------
    layers : list
    params : list of ndarray
        The parameters of all layers, in layer order (read fresh on every access); pass it
        to an optimizer. ``backward`` returns the gradients in the same order.

    Examples
    --------
    >>> model = Sequential(Flatten(), Dense(64, 10, rng=0))       # doctest: +SKIP
    >>> opt = Adam(model.params, lr=1e-3)                          # doctest: +SKIP
    >>> loss, logits = model.train_step(X, y, SoftmaxCrossEntropy(), opt)  # doctest: +SKIP
    """

    def __init__(self, *layers: object) -> None:
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            missing = [a for a in ("forward", "backward", "params") if not hasattr(layer, a)]
            if missing:
                raise TypeError(
                    f"layer {i} ({type(layer).__name__}) is not a layer: it has no "
                    f"{', '.join(missing)}; expected forward, backward and params")
        self.layers = list(layers)
        self._ran_forward = False
        self._inference = False

    @property
    def params(self) -> list[np.ndarray]:
        return [p for layer in self.layers for p in layer.params]

    def forward(self, X: np.ndarray, train: bool = True) -> np.ndarray:
        """The output of the last layer for input ``X``; ``train=False`` is inference (no
        state for ``backward`` is kept)."""
        train = check_train(train)
        self._ran_forward, self._inference = False, not train
        for layer in self.layers:
            X = layer_forward(layer, X, train)
        self._ran_forward = train
        return X

    def __call__(self, X: np.ndarray, train: bool = True) -> np.ndarray:
        """``forward(X, train)``."""
        return self.forward(X, train)

    def backward(self, dout: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Backpropagate ``dout`` through all layers: ``(dX, grads)``, grads ordered as params."""
        if not self._ran_forward:
            raise no_forward_state("Sequential", self._inference)
        grads_per_layer = []
        for layer in reversed(self.layers):
            dout, grads = layer.backward(dout)
            grads_per_layer.append(grads)
        return dout, [g for grads in reversed(grads_per_layer) for g in grads]

    def train_step(self, X: np.ndarray, y: np.ndarray, loss: object,
                   optimizer: object) -> tuple[float, np.ndarray]:
        """One optimisation step on a batch: forward, loss, backward, ``optimizer.step``.

        ``loss(logits, y)`` must return ``(value, dlogits)`` (e.g. ``SoftmaxCrossEntropy()``);
        ``optimizer`` must have been built on ``self.params``. Returns the loss value and the
        logits computed before the update.
        """
        logits = self.forward(X)
        value, dlogits = loss(logits, y)
        _, grads = self.backward(dlogits)
        optimizer.step(grads)
        return value, logits

    def predict(self, X: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Class indices ``argmax(forward(X, train=False), axis=1)`` (inference), computed in
        batches if asked."""
        n = len(X)
        step = n if batch_size is None else as_int("batch_size", batch_size)
        if step < 1 and n:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        parts = [np.argmax(self.forward(X[i:i + step], train=False), axis=1)
                 for i in range(0, n, max(step, 1))]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.intp)

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[object]:
        return iter(self.layers)

    def __getitem__(self, index: int) -> object:
        return self.layers[index]

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"
