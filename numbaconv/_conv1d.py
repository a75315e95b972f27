"""One-dimensional convolution: ``conv1d_forward``, ``conv1d_backward`` and ``conv1d``.

A 1-D convolution of ``x`` (N, C, L) with ``w`` (K, C/groups, f) is the 2-D one with H = 1 and
a kernel of height 1, so these functions reshape (views, no copies) and run the 2-D code:
the same kernels, groups, padding modes and determinism.  Padding is an int (both ends),
``(left, right)``, ``'valid'`` or ``'same'`` (stride 1; the total ``dilation*(f - 1)`` is split
as ``left = total // 2``, the rest on the right, as in PyTorch).  Names and argument order
follow ``torch.nn.functional.conv1d``; stride, dilation and an int padding may also be given
as 1-tuples, as PyTorch allows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numbaconv import functional
from numbaconv._groups import as_groups, check_grouped_shapes
from numbaconv._padding import PADDING_STRINGS, check_padding_mode, same_padding
from numbaconv._validation import (
    MAX_SIZE,
    as_float_array,
    as_int,
    check_ndim,
    check_same_dtype,
)

Padding1d = int | tuple[int, int] | str


@dataclass(frozen=True)
class Conv1dCache:
    """What :func:`conv1d_backward` needs: the cache of the 2-D convolution that ran."""

    inner: object
    out_shape: tuple[int, int, int]


def _as_size(name: str, value: object, minimum: int) -> int:
    """An int (or a 1-tuple of one, as PyTorch allows) ``>= minimum``."""
    if type(value) is int and minimum <= value < MAX_SIZE:  # the common case, first
        return value
    item = value
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"{name} must be an int (or a 1-tuple) for conv1d, got {value!r}")
        item = value[0]
    try:
        result = as_int(name, item)
    except TypeError:
        raise TypeError(
            f"{name} must be an int for conv1d, got {value!r} ({type(value).__name__})"
        ) from None
    if result < minimum:
        qualifier = "non-negative" if minimum == 0 else f">= {minimum}"
        raise ValueError(f"{name} must be {qualifier}, got {value!r}")
    if result >= MAX_SIZE:
        raise ValueError(f"{name} = {value!r} is too large: sizes would overflow int64 indexing")
    return result


def _as_padding(padding: object, f: int, stride: int, dilation: int) -> tuple[int, int]:
    """``(left, right)`` from any 1-D padding form."""
    if type(padding) is str:
        if padding == "valid":
            return 0, 0
        if padding == "same":
            if stride != 1:
                raise ValueError(
                    f"padding='same' is not supported for strided convolutions, got stride "
                    f"{stride}; give the padding as numbers instead")
            return same_padding(f, dilation)
        raise ValueError(
            f"Invalid padding string {padding!r}, should be one of {PADDING_STRINGS}")
    if isinstance(padding, (tuple, list)) and len(padding) == 2:
        try:
            left, right = as_int("padding", padding[0]), as_int("padding", padding[1])
        except TypeError:
            raise TypeError(
                f"padding must be an int, a pair (left, right) of ints, 'valid' or 'same' for "
                f"conv1d, got {padding!r}") from None
        if left < 0 or right < 0:
            raise ValueError(f"padding must be non-negative, got {padding!r}")
        if max(left, right) >= MAX_SIZE:
            raise ValueError(f"padding = {padding!r} is too large: sizes would overflow int64 "
                             f"indexing")
        return left, right
    if isinstance(padding, (tuple, list)) and len(padding) != 1:
        raise ValueError(
            f"padding must be an int, a pair (left, right), 'valid' or 'same' for conv1d, got "
            f"{padding!r} with {len(padding)} entries")
    p = _as_size("padding", padding, 0)
    return p, p


def _to_2d(x: object, w: object, stride: object, padding: object, dilation: object,
           groups: object, padding_mode: object) -> tuple:
    """The arguments of the 2-D convolution that computes this 1-D one."""
    x = as_float_array("input", x)
    w = as_float_array("weight", w)
    check_ndim("input", x, 3, "(N, C, L)", "conv1d")
    check_ndim("weight", w, 3, "(K, C/groups, f)", "conv1d")
    check_same_dtype(x, w)
    groups = as_groups(groups)
    check_grouped_shapes(groups, x.shape, w.shape, "(K, C/groups, f)")
    mode = check_padding_mode(padding_mode)
    s = _as_size("stride", stride, 1)
    d = _as_size("dilation", dilation, 1)
    left, right = _as_padding(padding, w.shape[2], s, d)
    length = x.shape[2]
    if mode == "reflect" and max(left, right) >= length:
        raise ValueError(
            f"conv1d: reflect padding must be smaller than the input length: padding "
            f"{(left, right)} (left, right) of input {list(x.shape)}")
    if mode == "circular" and max(left, right) > length:
        raise ValueError(
            f"conv1d: circular padding must not be larger than the input length (it would "
            f"wrap around more than once): padding {(left, right)} (left, right) of input "
            f"{list(x.shape)}")
    n, c, _ = x.shape
    k, c_group, f = w.shape
    return (x.reshape(n, c, 1, length), w.reshape(k, c_group, 1, f), (1, s),
            ((0, 0), (left, right)), (1, d), groups, mode)


def conv1d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: int = 1,
    padding: Padding1d = 0,
    dilation: int = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
    workspace: int | None = None,
) -> tuple[np.ndarray, Conv1dCache]:
    """1-D convolution (cross-correlation, as in PyTorch), keeping what
    :func:`conv1d_backward` needs.

    Parameters
    ----------
    x : ndarray, shape (N, C, L), float32 or float64
    w : ndarray, shape (K, C/groups, f), same dtype as ``x``
    b : ndarray of shape (K,) or (K, 1), optional
    stride, dilation : int
    padding : int, (int, int), 'valid' or 'same'
        Both ends, ``(left, right)``, none, or (stride 1) the padding that keeps the length.
    groups : int
        As in :func:`numbaconv.conv2d_forward`; ``groups == C`` runs the depthwise kernels.
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}
    workspace : int, optional
        See :func:`numbaconv.conv2d_forward`.

    Returns
    -------
    out : ndarray, shape (N, K, Lo)
        ``Lo = (L + left + right - dilation*(f-1) - 1) // stride + 1``.
    cache : Conv1dCache
        Pass to :func:`conv1d_backward`.
    """
    x4, w4, stride2, pad2, dilation2, groups, mode = _to_2d(x, w, stride, padding, dilation,
                                                            groups, padding_mode)
    out, inner = functional.conv2d_forward(x4, w4, b, stride2, pad2, dilation2, groups,
                                           padding_mode=mode, workspace=workspace)
    n, k, _, length = out.shape
    return out.reshape(n, k, length), Conv1dCache(inner, (n, k, length))


def conv1d_backward(dout: np.ndarray, cache: Conv1dCache
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients ``(dx, dw, db)`` of :func:`conv1d_forward`: shapes (N, C, L),
    (K, C/groups, f) and (K,)."""
    if not isinstance(cache, Conv1dCache):
        raise TypeError(
            f"cache must be the Conv1dCache returned by conv1d_forward, got "
            f"{type(cache).__name__}")
    dout = np.asarray(dout) if isinstance(dout, (list, tuple)) else dout
    if not isinstance(dout, np.ndarray):
        raise TypeError(f"dout must be a NumPy array, got {type(dout).__name__}")
    if dout.shape != cache.out_shape:
        raise ValueError(
            f"dout must have the shape of the forward output {cache.out_shape}, got "
            f"{dout.shape}")
    n, k, length = dout.shape
    dx, dw, db = functional.conv2d_backward(dout.reshape(n, k, 1, length), cache.inner)
    return (dx.reshape(dx.shape[0], dx.shape[1], dx.shape[3]),
            dw.reshape(dw.shape[0], dw.shape[1], dw.shape[3]), db)


def conv1d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: int = 1,
    padding: Padding1d = 0,
    dilation: int = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
    workspace: int | None = None,
) -> np.ndarray:
    """1-D convolution for inference: the output of :func:`conv1d_forward` without the
    cache (and no private copy of ``x``).  Parameters as :func:`conv1d_forward`."""
    x4, w4, stride2, pad2, dilation2, groups, mode = _to_2d(x, w, stride, padding, dilation,
                                                            groups, padding_mode)
    out = functional.conv2d(x4, w4, b, stride2, pad2, dilation2, groups, padding_mode=mode,
                            workspace=workspace)
    n, k, _, length = out.shape
    return out.reshape(n, k, length)
