"""Optimizers that update a list of parameter arrays in place: ``SGD`` and ``Adam``.

Both follow PyTorch's update rules (``torch.optim.SGD`` with ``dampening=0`` and
``torch.optim.Adam`` without ``amsgrad``), so the same hyperparameters give the same steps.
They work on the ``params`` lists of the layers (or of a ``Sequential``): pass the list once,
then call ``step(grads)`` with the gradients in the same order, e.g. the list returned by
``backward``. The arrays are modified in place, so every layer sees the new values without
rebinding anything.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from numbaconv.nn._checks import real_number


def _param_list(params: object) -> list[np.ndarray]:
    if isinstance(params, np.ndarray) or not isinstance(params, (list, tuple)):
        raise TypeError(
            f"params must be a list of NumPy arrays (e.g. layer.params), "
            f"got {type(params).__name__}")
    out = list(params)
    for i, p in enumerate(out):
        if not isinstance(p, np.ndarray):
            raise TypeError(f"params[{i}] must be a NumPy array, got {type(p).__name__}")
        if p.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"params[{i}] must be a float32 or float64 array, got {p.dtype}")
        if not p.flags.writeable:
            raise ValueError(f"params[{i}] is read-only; optimizers update params in place")
    return out


class _Optimizer:
    def __init__(self, params: Sequence[np.ndarray]) -> None:
        self.params = _param_list(params)
        self.steps = 0

    def _grads(self, grads: object) -> list[np.ndarray]:
        name = type(self).__name__
        if isinstance(grads, np.ndarray) or not isinstance(grads, (list, tuple)):
            raise TypeError(
                f"{name}.step: grads must be a list of arrays in the order of params, "
                f"got {type(grads).__name__}")
        if len(grads) != len(self.params):
            raise ValueError(
                f"{name}.step: got {len(grads)} gradients for {len(self.params)} params")
        out = []
        for i, (p, g) in enumerate(zip(self.params, grads, strict=True)):
            g = np.asarray(g)
            if g.dtype.kind != "f":
                raise TypeError(f"{name}.step: grads[{i}] must be a float array, got {g.dtype}")
            if g.shape != p.shape:
                raise ValueError(
                    f"{name}.step: grads[{i}] has shape {g.shape}, expected the shape of "
                    f"params[{i}] {p.shape}")
            out.append(g.astype(p.dtype, copy=False))
        return out

    def step(self, grads: Sequence[np.ndarray]) -> None:
        """Update every parameter in place from its gradient (same order as ``params``)."""
        grads = self._grads(grads)
        self.steps += 1
        for i, (p, g) in enumerate(zip(self.params, grads, strict=True)):
            self._update(i, p, g)

    def _update(self, i: int, p: np.ndarray, g: np.ndarray) -> None:
        raise NotImplementedError


class SGD(_Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and weight decay.

    With gradient ``g`` (plus ``weight_decay * p``) the velocity is ``v = g`` on the first
    step and ``v = momentum * v + g`` afterwards; the update is ``p -= lr * v`` (or
    ``p -= lr * (g + momentum * v)`` with ``nesterov=True``), exactly as ``torch.optim.SGD``.

    Parameters
    ----------
    params : list of ndarray
        Arrays updated in place, e.g. ``model.params``.
    lr : float, default 0.01
    momentum : float in [0, 1), default 0.0
    weight_decay : float >= 0, default 0.0
    nesterov : bool, default False
    """

    def __init__(self, params: Sequence[np.ndarray], lr: float = 0.01, momentum: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(params)
        self.lr = real_number("lr", lr)
        self.momentum = real_number("momentum", momentum, high=1.0, high_inclusive=False)
        self.weight_decay = real_number("weight_decay", weight_decay)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be a bool, got {nesterov!r}")
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov momentum requires momentum > 0, got momentum=0")
        self.nesterov = bool(nesterov)
        self.velocity: list[np.ndarray | None] = [None] * len(self.params)

    def _update(self, i: int, p: np.ndarray, g: np.ndarray) -> None:
        if self.weight_decay:
            g = g + p.dtype.type(self.weight_decay) * p
        if self.momentum:
            v = self.velocity[i]
            if v is None:
                v = self.velocity[i] = g.copy()
            else:
                v *= p.dtype.type(self.momentum)
                v += g
            g = g + p.dtype.type(self.momentum) * v if self.nesterov else v
        p -= p.dtype.type(self.lr) * g

    def __repr__(self) -> str:
        return (f"SGD(lr={self.lr}, momentum={self.momentum}, weight_decay={self.weight_decay}, "
                f"nesterov={self.nesterov})")


class Adam(_Optimizer):
    """Adam (Kingma & Ba) with bias correction, as ``torch.optim.Adam``.

    ``m = b1 * m + (1 - b1) * g``, ``v = b2 * v + (1 - b2) * g**2`` and, at step ``t``,
    ``p -= lr / (1 - b1**t) * m / (sqrt(v) / sqrt(1 - b2**t) + eps)``. ``weight_decay`` adds
    ``weight_decay * p`` to the gradient (L2, not AdamW's decoupled decay).

    Parameters
    ----------
    params : list of ndarray
        Arrays updated in place, e.g. ``model.params``.
    lr : float, default 1e-3
    betas : (float, float) in [0, 1), default (0.9, 0.999)
    eps : float >= 0, default 1e-8
    weight_decay : float >= 0, default 0.0
    """

    def __init__(self, params: Sequence[np.ndarray], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params)
        self.lr = real_number("lr", lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (real_number("betas[0]", betas[0], high=1.0, high_inclusive=False),
                      real_number("betas[1]", betas[1], high=1.0, high_inclusive=False))
        self.eps = real_number("eps", eps)
        self.weight_decay = real_number("weight_decay", weight_decay)
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]

    def _update(self, i: int, p: np.ndarray, g: np.ndarray) -> None:
        t = p.dtype.type
        b1, b2 = self.betas
        if self.weight_decay:
            g = g + t(self.weight_decay) * p
        m, v = self.m[i], self.v[i]
        m *= t(b1)
        m += t(1 - b1) * g
        v *= t(b2)
        v += t(1 - b2) * (g * g)
        correction1 = 1 - b1**self.steps
        correction2 = 1 - b2**self.steps
        denom = np.sqrt(v) / t(np.sqrt(correction2))
        denom += t(self.eps)
        p -= t(self.lr / correction1) * (m / denom)

    def __repr__(self) -> str:
        return (f"Adam(lr={self.lr}, betas={self.betas}, eps={self.eps}, "
                f"weight_decay={self.weight_decay})")
