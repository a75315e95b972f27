"""What the PyTorch-style convolution layers share: argument checks, parameters, the layer
API (``forward(X, train=True)``, ``backward``, ``params``, calling a layer) and the repr.

A subclass names its functional calls (``_functions``) and how they take the layer's
arguments (``_args``), its signature and its number of spatial axes; everything else is here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from numbaconv._padding import PADDING_STRINGS, as_padding, check_padding_mode
from numbaconv._validation import (
    as_float_array,
    as_int,
    as_pair,
    as_positive_int,
    check_output_padding,
    input_shape_hint,
)
from numbaconv.layer import WeightsAndBias, as_bias_flag, layer_dtype, layer_groups
from numbaconv.nn._checks import check_train, no_forward_state
from numbaconv.nn._init import draw_parameters


def as_ntuple(name: str, value: object, n: int, minimum: int) -> tuple[int, ...]:
    """An int or a tuple of ``n`` ints, each ``>= minimum``, as a tuple of ``n`` ints."""
    if n == 2:
        return as_pair(name, value, minimum)
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    elif isinstance(value, (tuple, list)):
        raise ValueError(f"{name} must be an int or a 1-tuple (int,), got {value!r}"
                         + (" (or a pair (left, right) for padding)" if name == "padding" else ""))
    try:
        result = as_int(name, value)
    except TypeError:
        raise TypeError(f"{name} must be an int or a 1-tuple (int,), got {value!r} "
                        f"({type(value).__name__})") from None
    if result < minimum:
        qualifier = "non-negative" if minimum == 0 else f">= {minimum}"
        raise ValueError(f"{name} must be {qualifier}, got {value!r}")
    return (result,)


def padding_string(value: str, stride: tuple[int, ...]) -> str:
    """``'valid'`` or ``'same'`` (stride 1 only), in PyTorch's words otherwise."""
    if value not in PADDING_STRINGS:
        raise ValueError(
            f"Invalid padding string {value!r}, should be one of {set(PADDING_STRINGS)}")
    if value == "same" and any(s != 1 for s in stride):
        raise ValueError(f"padding='same' is not supported for strided convolutions, got "
                         f"stride={stride}")
    return value


def conv_padding(value: object, n: int, kernel_size: tuple[int, ...], stride: tuple[int, ...],
                 dilation: tuple[int, ...]) -> object:
    """A convolution's ``padding`` in the form it is kept and passed on: ``'valid'`` or
    ``'same'``; else ``(p,)`` or ``(left, right)`` (1-D), ``(ph, pw)`` or ``((top, bottom),
    (left, right))`` (2-D)."""
    if isinstance(value, str):
        return padding_string(value, stride)
    if n == 1:
        if isinstance(value, (tuple, list)) and len(value) == 2:
            left, right = as_pair("padding", value, 0)
            return left, right
        return as_ntuple("padding", value, 1, 0)
    top, bottom, left, right = as_padding(value, *kernel_size, stride, dilation)
    if isinstance(value, (tuple, list)) and any(isinstance(v, (tuple, list)) for v in value):
        return (top, bottom), (left, right)
    return top, left


class ConvLayer(WeightsAndBias):
    """Base of ``Conv2d``, ``ConvTranspose2d`` and ``Conv1d`` (see :mod:`numbaconv.nn.conv`).

    ``weight`` and ``bias`` are views of ``params`` (``[weight, bias]``, or ``[weight]`` and
    ``bias is None`` with ``bias=False``), as are the classic names ``W`` and ``b``.
    """

    #: Spatial axes of the input, and its layout for messages.
    spatial: int = 2
    layout: str = "(N, C, H, W)"
    transposed: bool = False
    #: The functional calls behind the layer: training forward, inference, backward.
    _functions: tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]

    def __init__(self, in_channels: object, out_channels: object, kernel_size: object,
                 stride: object, padding: object, dilation: object, groups: object,
                 bias: object, padding_mode: object, dtype: object, rng: object,
                 output_padding: object = 0) -> None:
        """Check and keep the arguments (the subclasses' ``__init__`` give them in PyTorch's
        order), then draw the parameters with PyTorch's default initialisation."""
        n = self.spatial
        self.in_channels = as_positive_int("in_channels", in_channels)
        self.out_channels = as_positive_int("out_channels", out_channels)
        self.kernel_size = as_ntuple("kernel_size", kernel_size, n, 1)
        self.stride = as_ntuple("stride", stride, n, 1)
        self.dilation = as_ntuple("dilation", dilation, n, 1)
        self.groups = layer_groups(groups, self.in_channels, self.out_channels)
        self._has_bias = as_bias_flag(bias)
        self.padding_mode = check_padding_mode(padding_mode)
        self.dtype = layer_dtype(dtype)
        if self.transposed:
            self.padding: object = as_ntuple("padding", padding, n, 0)
            self.output_padding = as_ntuple("output_padding", output_padding, n, 0)
            check_output_padding(self.output_padding, self.stride, self.dilation)
            shape = (self.in_channels, self.out_channels // self.groups, *self.kernel_size)
        else:
            self.padding = conv_padding(padding, n, self.kernel_size, self.stride, self.dilation)
            self.output_padding = (0,) * n
            shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        self.params = draw_parameters(shape, self.out_channels if self._has_bias else None,
                                      rng, self.dtype)
        self._cache: object = None
        self._inference = False
        self._unbatched = False

    # --- weight and bias, kept in params ------------------------------------------------

    def _checked(self, name: str, value: object, shape: tuple[int, ...]) -> np.ndarray:
        array = as_float_array(name, value, dtype=self.dtype)
        if array.shape != shape:
            raise ValueError(f"{type(self).__name__}.{name} must have shape {shape}, got "
                             f"{array.shape}")
        return array

    @property
    def weight(self) -> np.ndarray:
        """The filters (``params[0]``): ``(out_channels, in_channels/groups, *kernel_size)``,
        or ``(in_channels, out_channels/groups, *kernel_size)`` for a transposed layer."""
        return self.params[0]

    @weight.setter
    def weight(self, value: np.ndarray) -> None:
        self.params[0] = self._checked("weight", value, self.params[0].shape)

    @property
    def bias(self) -> np.ndarray | None:
        """``params[1]``, shape ``(out_channels,)``; None for a layer built with bias=False."""
        return self.params[1] if len(self.params) > 1 else None

    @bias.setter
    def bias(self, value: np.ndarray | None) -> None:
        name = type(self).__name__
        if len(self.params) < 2:
            if value is not None:
                raise AttributeError(f"{name} was built with bias=False: it has no bias to set")
            return
        if value is None:
            raise ValueError(f"{name} was built with a bias: it cannot be removed (build the "
                             f"layer with bias=False instead)")
        self.params[1] = self._checked("bias", value, (self.out_channels,))

    # --- the layer API ----------------------------------------------------------------

    def _input(self, X: object) -> tuple[np.ndarray, bool]:
        """``X`` batched, in the layer's dtype, and whether it came unbatched."""
        name, n = type(self).__name__, self.spatial
        X = as_float_array("input", X, dtype=self.dtype)
        if X.ndim not in (n + 1, n + 2):
            raise ValueError(
                f"Expected {n + 1}D (unbatched) or {n + 2}D (batched) input to {name}, but got "
                f"input of size: {list(X.shape)}")
        unbatched = X.ndim == n + 1
        if unbatched:
            X = X[None]
        if X.shape[1] != self.in_channels:
            hint = input_shape_hint(X.shape, self.in_channels) if n == 2 else ""
            given = (f"transposed=1, weight of size {list(self.weight.shape)}" if self.transposed
                     else f"groups={self.groups}, weight of size {list(self.weight.shape)}")
            raise ValueError(
                f"{name}: Given {given}, expected input{list(X.shape)} to have "
                f"{self.in_channels} channels (in_channels, axis 1 of {self.layout}), but got "
                f"{X.shape[1]} channels instead{hint}")
        return X, unbatched

    def forward(self, X: np.ndarray, train: bool = True) -> np.ndarray:
        """The layer's output for a batch ``X`` (or one unbatched sample), in its dtype.

        With ``train=False`` (inference) the functional inference call runs (no cache, no
        private copy of ``X``), bitwise the same output, and nothing is kept for
        ``backward``."""
        train = check_train(train)
        X, unbatched = self._input(X)
        forward, infer, _ = self._functions
        # The transposed functions have no padding_mode (PyTorch's layer takes only 'zeros').
        options = {} if self.transposed else {"padding_mode": self.padding_mode}
        if train:
            out, cache = forward(*self._args(X), **options)
        else:
            out, cache = infer(*self._args(X), **options), None
        self._cache, self._inference, self._unbatched = cache, not train, unbatched
        return out[0] if unbatched else out

    def __call__(self, X: np.ndarray, train: bool = True) -> np.ndarray:
        """``forward(X, train)``."""
        return self.forward(X, train)

    def backward(self, dout: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Gradients for ``dout`` (the shape of the last forward output):
        ``(dX, [dweight, dbias])``, or ``(dX, [dweight])`` without a bias."""
        if self._cache is None:
            raise no_forward_state(type(self).__name__, self._inference)
        if self._unbatched:
            dout = as_float_array("dout", dout, dtype=self.dtype)
            if dout.ndim == self.spatial + 1:
                dout = dout[None]
        dx, dw, db = self._functions[2](dout, self._cache)
        grads = [dw, db] if len(self.params) > 1 else [dw]
        return (dx[0] if self._unbatched else dx), grads

    def _args(self, X: np.ndarray) -> tuple:
        raise NotImplementedError

    def __repr__(self) -> str:
        """PyTorch's repr (non-default arguments only), and the dtype when not float32."""
        n = self.spatial
        s = (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
             f"kernel_size={self.kernel_size}, stride={self.stride}")
        padding = self.padding
        if isinstance(padding, str) or np.any(np.asarray(padding) != 0):
            s += f", padding={padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        if self.dtype != np.float32:
            s += f", dtype={self.dtype}"
        return s + ")"
