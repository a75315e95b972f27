"""Argument checks shared by the layers, the loss and the optimizers."""

from __future__ import annotations

import math
import numbers

import numpy as np

from numbaconv._validation import BackwardBeforeForwardError, as_float_array, as_pair

pair = as_pair


def check_dout(dout: object, shape: tuple[int, ...], dtype: np.dtype, layer: str) -> np.ndarray:
    """``dout`` as a C-contiguous array of the forward dtype with the forward output's shape."""
    dout = as_float_array("dout", dout, dtype=dtype)
    if dout.shape != tuple(shape):
        raise ValueError(
            f"{layer}.backward: dout must have the shape of the forward output {tuple(shape)}, "
            f"got {dout.shape}")
    return dout


def real_number(name: str, value: object, *, low: float = 0.0, high: float = math.inf,
                high_inclusive: bool = True) -> float:
    """A finite real number in ``[low, high]`` (or ``[low, high)``), as a Python float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    v = float(value)
    above = v > high if high_inclusive else v >= high
    if not math.isfinite(v) or v < low or above:
        bracket = "]" if high_inclusive else ")"
        upper = "inf)" if high == math.inf else f"{high:g}{bracket}"
        raise ValueError(f"{name} must be in [{low:g}, {upper}, got {value!r}")
    return v


def check_train(train: object) -> bool:
    """The ``train`` flag of a ``forward`` call as a Python bool (a TypeError otherwise)."""
    if train is True or train is False:  # the common case, first
        return train
    if isinstance(train, np.bool_):
        return bool(train)
    raise TypeError(
        f"train must be a bool (True: keep what backward needs, False: inference only), "
        f"got {train!r} ({type(train).__name__})")


def no_forward_state(layer: str, inference: bool) -> BackwardBeforeForwardError:
    """The error of a ``backward`` call that has no forward state to use: none ran yet, or
    the last one was an inference-only ``forward(X, train=False)`` (``inference``)."""
    if inference:
        return BackwardBeforeForwardError(
            f"{layer}.backward() called after an inference-only {layer}.forward(X, "
            f"train=False), which keeps nothing for backward; run {layer}.forward(X) "
            f"(train=True) before backward")
    return BackwardBeforeForwardError(f"{layer}.backward() called before {layer}.forward()")
