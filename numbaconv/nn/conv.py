"""PyTorch-style convolution layers: ``Conv2d``, ``ConvTranspose2d`` and ``Conv1d``.

They take ``torch.nn``'s arguments (names, order, defaults), draw PyTorch's default
initialisation, need no input shape, and have the library's layer API: ``forward(X,
train=True)``, ``backward(dout) -> (dX, grads)`` with ``grads`` in the order of ``params``,
and ``layer(X)`` runs ``forward``.  They work in :class:`~numbaconv.nn.Sequential` and with
the optimizers.  Batched input (``(N, C, H, W)``, or ``(N, C, L)`` for ``Conv1d``) and, as in
PyTorch, one unbatched sample (``(C, H, W)`` / ``(C, L)``) are taken.
"""

from __future__ import annotations

import numpy as np

from numbaconv._conv1d import conv1d, conv1d_backward, conv1d_forward
from numbaconv._padding import Padding
from numbaconv._validation import IntPair
from numbaconv.functional import conv2d, conv2d_backward, conv2d_forward
from numbaconv.nn._conv_base import ConvLayer
from numbaconv.transposed import (
    conv_transpose2d,
    conv_transpose2d_backward,
    conv_transpose2d_forward,
)

__all__ = ["Conv1d", "Conv2d", "ConvTranspose2d"]


class Conv2d(ConvLayer):
    """2-D convolution over ``(N, C, H, W)`` batches, as ``torch.nn.Conv2d``.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or (int, int)
    stride : int or (int, int), default 1
    padding : int, (int, int), ((int, int), (int, int)), 'valid' or 'same', default 0
        As :func:`numbaconv.conv2d_forward` takes it ('same': stride 1 only).
    dilation : int or (int, int), default 1
        Spacing between kernel taps.
    groups : int, default 1
        Channels and filters are cut into this many groups; ``in_channels`` and
        ``out_channels`` must be divisible by it.
    bias : bool, default True
        Whether the layer has a bias; without one ``params == [weight]``, ``bias`` is None and
        ``backward`` returns ``(dX, [dweight])``.
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}, default 'zeros'
    dtype : float32 or float64, keyword-only, default float32
        Parameter dtype; floating input of the other precision is converted to it.
    rng : None, int, numpy.random.Generator or RandomState, keyword-only
        Source of the initialisation (``None``: fresh entropy; an int: a seed; a generator is
        drawn from, so one generator passed to every layer reproduces a whole model).

    Attributes
    ----------
    weight : ndarray (out_channels, in_channels/groups, kh, kw)
        Uniform in ``±1/sqrt(fan_in)``, ``fan_in = in_channels/groups * kh * kw``
        (PyTorch's Kaiming-uniform with ``a = sqrt(5)``).
    bias : ndarray (out_channels,) or None
        Uniform in ``±1/sqrt(fan_in)``.
    params : list [weight, bias] or [weight]
        The arrays ``forward`` uses; ``weight``/``bias`` (and ``W``/``b``) stay in sync with it.
    """

    _functions = (conv2d_forward, conv2d, conv2d_backward)

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair,
                 stride: IntPair = 1, padding: Padding = 0, dilation: IntPair = 1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", *,
                 dtype: object = np.float32, rng: object = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                         bias, padding_mode, dtype, rng)

    def _args(self, X: np.ndarray) -> tuple:
        return (X, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class ConvTranspose2d(ConvLayer):
    """2-D transposed convolution over ``(N, C, H, W)`` batches, as
    ``torch.nn.ConvTranspose2d``: the input gradient of a convolution, ``Ho = (H - 1)*sh -
    2*ph + dh*(kh - 1) + output_padding + 1``.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or (int, int)
    stride : int or (int, int), default 1
    padding : int or (int, int), default 0
        Taken off both sides of the output.
    output_padding : int or (int, int), default 0
        Added to the bottom and right of the output; smaller than the stride or the
        dilation.
    groups : int, default 1
        Channels and filters are cut into this many groups; ``in_channels`` and
        ``out_channels`` must be divisible by it.
    bias : bool, default True
        Whether the layer has a bias; without one ``params == [weight]``, ``bias`` is None and
        ``backward`` returns ``(dX, [dweight])``.
    dilation : int or (int, int), default 1
        Spacing between kernel taps.
    dtype : float32 or float64, keyword-only, default float32
        Parameter dtype; floating input of the other precision is converted to it.
    rng : None, int, numpy.random.Generator or RandomState, keyword-only
        Source of the initialisation (``None``: fresh entropy; an int: a seed; a generator is
        drawn from, so one generator passed to every layer reproduces a whole model).

    Attributes
    ----------
    weight : ndarray (in_channels, out_channels/groups, kh, kw)
        PyTorch's layout; uniform in ``±1/sqrt(fan_in)`` with PyTorch's count
        ``fan_in = weight.shape[1] * kh * kw = out_channels/groups * kh * kw``.
    bias : ndarray (out_channels,) or None
        Uniform in ``±1/sqrt(fan_in)``.
    params : list [weight, bias] or [weight]
    """

    transposed = True
    _functions = (conv_transpose2d_forward, conv_transpose2d, conv_transpose2d_backward)

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair,
                 stride: IntPair = 1, padding: IntPair = 0, output_padding: IntPair = 0,
                 groups: int = 1, bias: bool = True, dilation: IntPair = 1, *,
                 dtype: object = np.float32, rng: object = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                         bias, "zeros", dtype, rng, output_padding)

    def _args(self, X: np.ndarray) -> tuple:
        return (X, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                self.groups, self.dilation)


class Conv1d(ConvLayer):
    """1-D convolution over ``(N, C, L)`` batches, as ``torch.nn.Conv1d``.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or (int,)
    stride : int or (int,), default 1
    padding : int, (int,), (int, int), 'valid' or 'same', default 0
        Both ends, or ``(left, right)``; 'same': stride 1 only.
    dilation : int or (int,), default 1
        Spacing between kernel taps.
    groups : int, default 1
        Channels and filters are cut into this many groups; ``in_channels`` and
        ``out_channels`` must be divisible by it.
    bias : bool, default True
        Whether the layer has a bias; without one ``params == [weight]``, ``bias`` is None and
        ``backward`` returns ``(dX, [dweight])``.
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}, default 'zeros'
    dtype : float32 or float64, keyword-only, default float32
        Parameter dtype; floating input of the other precision is converted to it.
    rng : None, int, numpy.random.Generator or RandomState, keyword-only
        Source of the initialisation (``None``: fresh entropy; an int: a seed; a generator is
        drawn from, so one generator passed to every layer reproduces a whole model).

    Attributes
    ----------
    weight : ndarray (out_channels, in_channels/groups, k)
        Uniform in ``±1/sqrt(fan_in)``, ``fan_in = in_channels/groups * k``.
    bias : ndarray (out_channels,) or None
    params : list [weight, bias] or [weight]
    """

    spatial = 1
    layout = "(N, C, L)"
    _functions = (conv1d_forward, conv1d, conv1d_backward)

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int],
                 stride: int | tuple[int] = 1, padding: int | tuple[int, ...] | str = 0,
                 dilation: int | tuple[int] = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", *, dtype: object = np.float32,
                 rng: object = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                         bias, padding_mode, dtype, rng)

    def _args(self, X: np.ndarray) -> tuple:
        one = isinstance(self.padding, tuple) and len(self.padding) == 1
        padding = self.padding[0] if one else self.padding
        return (X, self.weight, self.bias, self.stride[0], padding, self.dilation[0],
                self.groups)
