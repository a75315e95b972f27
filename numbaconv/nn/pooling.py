"""2-D max and average pooling layers (``MaxPool2d``, ``AvgPool2d``)."""

from __future__ import annotations

import numpy as np

from numbaconv._validation import (
    IntPair,
    as_float_array,
    check_count,
    check_ndim,
)
from numbaconv.nn import _pool_kernels
from numbaconv.nn._checks import check_dout, check_train, no_forward_state, pair


class _Pool2d:
    """Shared hyperparameter and shape handling of the pooling layers."""

    params: list[np.ndarray]

    def __init__(self, kernel_size: IntPair, stride: IntPair | None = None,
                 padding: IntPair = 0) -> None:
        name = type(self).__name__
        self.kernel_size = pair(f"{name} kernel_size", kernel_size, 1)
        self.stride = self.kernel_size if stride is None else pair(f"{name} stride", stride, 1)
        self.padding = pair(f"{name} padding", padding, 0)
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        if 2 * ph > kh or 2 * pw > kw:
            raise ValueError(
                f"{name}: padding should be at most half of kernel size, "
                f"but got padding={self.padding} and kernel_size={self.kernel_size}")
        self.params = []
        self._out_shape: tuple[int, int, int, int] | None = None
        self._x_shape: tuple[int, ...] | None = None
        self._inference = False

    def output_shape(self, x_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """``(N, C, Ho, Wo)`` for an input of shape ``(N, C, H, W)`` (floor rule)."""
        n, c, h, w = (int(s) for s in x_shape)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        name = type(self).__name__
        if c < 1 or h < 1 or w < 1:
            raise ValueError(
                f"{name}: expected input's non-batch dimensions (C, H, W) to have positive "
                f"length, but got input of size: {[n, c, h, w]}")
        for label, size in (("padded input height", h + 2 * ph),
                            ("padded input width", w + 2 * pw),
                            ("input size (N*C*H*W)", n * c * h * w)):
            check_count(label, size)
        if kh > h + 2 * ph or kw > w + 2 * pw:
            raise ValueError(
                f"{name}: pooling window ({kh} x {kw}) is larger than the padded input "
                f"({h + 2 * ph} x {w + 2 * pw}) of input size {[n, c, h, w]} with padding "
                f"{self.padding}; expected kernel_size <= input size + 2 * padding")
        return n, c, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1

    def _input(self, X: object, train: object) -> tuple[np.ndarray, bool]:
        """The validated input and ``train`` flag; an inference call forgets the last
        training call's state."""
        name = type(self).__name__
        train = check_train(train)
        X = as_float_array("X", X)
        check_ndim("X", X, 4, "(N, C, H, W)", f"{name}.forward")
        if not train:
            self._out_shape, self._inference = None, True
            self._argmax = self._x_shape = None
        return X, train

    def _dout(self, dout: object) -> np.ndarray:
        name = type(self).__name__
        if self._out_shape is None:
            raise no_forward_state(name, self._inference)
        return check_dout(dout, self._out_shape, self._dtype, name)

    def _repr_args(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._repr_args()})"


class MaxPool2d(_Pool2d):
    """2-D max pooling over ``(N, C, H, W)`` batches, float32 or float64.

    Parameters
    ----------
    kernel_size : int or (int, int)
        Window height and width.
    stride : int or (int, int), optional
        Step between windows; defaults to ``kernel_size``. Windows may overlap
        (``stride < kernel_size``) or leave gaps (``stride > kernel_size``).
    padding : int or (int, int), default 0
        Implicit padding on both sides that is never selected (acts as ``-inf``); at most
        half the kernel size, as in PyTorch.

    Notes
    -----
    Output size follows the floor rule ``(H + 2*ph - kh) // sh + 1``.
    The backward pass sends each output gradient to the input element that was the window's
    maximum; with overlapping windows one element can receive several contributions, which add
    up. Ties are broken deterministically: the **first** maximum in row-major window order
    (top row first, left to right) wins. A NaN in a window is taken as its maximum (the first
    NaN wins). Results do not depend on the number of Numba threads.
    """

    def forward(self, X: np.ndarray, train: bool = True) -> np.ndarray:
        """Pool ``X`` of shape (N, C, H, W); returns (N, C, Ho, Wo) in the input's dtype.

        With ``train=False`` (inference) the argmax of the windows is neither computed nor
        kept: the same output, nothing for ``backward``."""
        X, train = self._input(X, train)
        shape = self.output_shape(X.shape)
        out = np.empty(shape, dtype=X.dtype)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if not train:
            if out.size:
                _pool_kernels.max_pool_infer(X, kh, kw, sh, sw, ph, pw, out)
            return out
        argmax = np.empty(shape, dtype=np.int64)
        if out.size:
            _pool_kernels.max_pool_forward(X, kh, kw, sh, sw, ph, pw, out, argmax)
        self._argmax, self._x_shape, self._dtype = argmax, X.shape, X.dtype
        self._out_shape, self._inference = shape, False
        return out

    def backward(self, dout: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Input gradient for ``dout`` of shape (N, C, Ho, Wo): ``(dX, [])``."""
        dout = self._dout(dout)
        dx = np.empty(self._x_shape, dtype=self._dtype)
        if dx.size:
            _pool_kernels.max_pool_backward(dout, self._argmax, dx)
        return dx, []


class AvgPool2d(_Pool2d):
    """2-D average pooling over ``(N, C, H, W)`` batches, float32 or float64.

    Parameters
    ----------
    kernel_size : int or (int, int)
        Window height and width.
    stride : int or (int, int), optional
        Step between windows; defaults to ``kernel_size``.
    padding : int or (int, int), default 0
        Implicit zero padding on both sides, at most half the kernel size.
    count_include_pad : bool, default True
        Divide by ``kh * kw`` (True, PyTorch's default) or by the number of real input
        elements in the window (False).

    Notes
    -----
    Output size follows the floor rule ``(H + 2*ph - kh) // sh + 1``. The backward pass spreads
    each output gradient evenly (with the same divisor) over its window; overlapping windows
    add up.
    """

    def __init__(self, kernel_size: IntPair, stride: IntPair | None = None,
                 padding: IntPair = 0, count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding)
        if not isinstance(count_include_pad, (bool, np.bool_)):
            raise TypeError(
                f"count_include_pad must be a bool, got {count_include_pad!r} "
                f"({type(count_include_pad).__name__})")
        self.count_include_pad = bool(count_include_pad)

    def forward(self, X: np.ndarray, train: bool = True) -> np.ndarray:
        """Pool ``X`` of shape (N, C, H, W); returns (N, C, Ho, Wo) in the input's dtype.

        With ``train=False`` (inference) nothing is kept for ``backward``."""
        X, train = self._input(X, train)
        shape = self.output_shape(X.shape)
        out = np.empty(shape, dtype=X.dtype)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if out.size:
            _pool_kernels.avg_pool_forward(X, kh, kw, sh, sw, ph, pw,
                                           self.count_include_pad, out)
        if train:
            self._x_shape, self._dtype, self._out_shape = X.shape, X.dtype, shape
            self._inference = False
        return out

    def backward(self, dout: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Input gradient for ``dout`` of shape (N, C, Ho, Wo): ``(dX, [])``."""
        dout = self._dout(dout)
        dx = np.empty(self._x_shape, dtype=self._dtype)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if dx.size:
            _pool_kernels.avg_pool_backward(dout, kh, kw, sh, sw, ph, pw,
                                            self.count_include_pad, dx)
        return dx, []

    def _repr_args(self) -> str:
        return super()._repr_args() + f", count_include_pad={self.count_include_pad}"
