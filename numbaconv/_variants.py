"""The convolution variants behind ``conv2d_forward`` / ``conv2d`` / ``conv2d_backward``:
groups, padding modes and the padding forms of those calls.

The public functions of :mod:`numbaconv.functional` send every call with ``groups != 1`` or
``padding_mode != 'zeros'`` here; the plain call (groups 1, zero padding in any form) stays
on their own path.  Validation happens once, here, and then:

* ``groups == C`` (depthwise, ``K = m*C``): the direct kernels of ``_depthwise``, which also
  pad each plane in its own buffer, so every padding mode costs nothing extra there;
* otherwise a padding mode other than zeros pads the input once into a buffer
  (``_pad_modes``), which is convolved without padding, and the backward pass folds the
  padded input's gradient back;
* ``groups > 1`` runs the core convolution per group (``_grouped``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numbaconv import _depthwise, _grouped, functional
from numbaconv._groups import as_groups, check_grouped_shapes
from numbaconv._pad_modes import fold_padding, pad_input
from numbaconv._padding import check_mode_fits, check_padding_mode
from numbaconv._validation import (
    ConvGeometry,
    as_float_array,
    check_ndim,
    check_same_dtype,
    check_workspace,
    make_geometry,
)


@dataclass(frozen=True)
class PaddedCache:
    """The cache of a convolution of the padded input (``inner``), and how it was padded."""

    inner: object  # ConvCache or _grouped.GroupedCache
    geometry: ConvGeometry  # of the convolution as called (with its padding)
    mode: str


_CACHES = (functional.ConvCache, _grouped.GroupedCache, _depthwise.DepthwiseCache, PaddedCache)


def _prepare(x: object, w: object, groups: object, padding_mode: object, stride: object,
             padding: object, dilation: object, workspace: object, op: str):
    """Validated ``(x, w, groups, mode, geom)``, and ``given`` (the caller's ``x``)."""
    given = x
    x = as_float_array("input", x)
    w = as_float_array("weight", w)
    check_ndim("input", x, 4, "(N, C, H, W)", op)
    check_ndim("weight", w, 4, "(K, C/groups, fh, fw)", op)
    check_same_dtype(x, w)
    groups = as_groups(groups)
    check_grouped_shapes(groups, x.shape, w.shape)
    mode = check_padding_mode(padding_mode)
    k, _, fh, fw = w.shape
    geom = make_geometry(x.shape, k, fh, fw, stride, padding, dilation, op, padding_forms=True)
    check_mode_fits(mode, x.shape, geom.pads, op)
    check_workspace(workspace)
    return x, w, groups, mode, geom, given


def conv2d_forward(x: object, w: object, b: object, stride: object, padding: object,
                   dilation: object, groups: object, padding_mode: object,
                   workspace: int | None, keep: bool = True, op: str = "conv2d"
                   ) -> tuple[np.ndarray, object]:
    """``(out, cache)`` of a grouped and/or mode-padded convolution (``cache`` is None
    without ``keep``, for inference)."""
    x, w, groups, mode, geom, given = _prepare(x, w, groups, padding_mode, stride, padding,
                                               dilation, workspace, op)
    bias = functional._bias_vector(b, geom.k, x.dtype)
    if groups == geom.c and groups > 1:
        private = not keep or not (isinstance(given, np.ndarray)
                                   and np.may_share_memory(x, given))
        return _depthwise.depthwise_forward(x, w, bias, geom, mode, keep, private)
    padded = mode != "zeros" and any(geom.pads)
    if padded:
        # Inference keeps nothing: the padded input can be this thread's kept buffer.
        x = pad_input(x, geom, mode, scratch=not keep)
        inner = make_geometry(x.shape, geom.k, geom.fh, geom.fw, (geom.sh, geom.sw), 0,
                              (geom.dh, geom.dw), op)
    else:
        inner = geom
    if groups > 1:
        out, cache = _grouped.grouped_forward(x, w, bias, inner, groups, workspace, keep)
    else:
        hyper = ((inner.sh, inner.sw), ((inner.ph, inner.ph_end), (inner.pw, inner.pw_end)),
                 (inner.dh, inner.dw))
        if keep:
            out, cache = functional.conv2d_forward(x, w, bias, *hyper, workspace=workspace)
        else:
            out, cache = functional.conv2d(x, w, bias, *hyper, workspace=workspace), None
    if padded and keep:
        cache = PaddedCache(cache, geom, mode)
    return out, cache


def conv2d_backward(dout: object, cache: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv2d_forward` from its cache."""
    if not isinstance(cache, _CACHES):
        raise TypeError(
            f"cache must be the ConvCache (or other cache) returned by conv2d_forward, got "
            f"{type(cache).__name__}")
    if isinstance(cache, functional.ConvCache):
        return functional.conv2d_backward(dout, cache)
    geom = cache.geometry
    dout = as_float_array("dout", dout, dtype=_dtype_of(cache))
    if dout.shape != geom.out_shape:
        raise ValueError(
            f"dout must have the shape of the forward output {geom.out_shape}, got {dout.shape}")
    if isinstance(cache, _depthwise.DepthwiseCache):
        return _depthwise.depthwise_backward(dout, cache)
    if isinstance(cache, _grouped.GroupedCache):
        return _grouped.grouped_backward(dout, cache)
    if isinstance(cache.inner, _grouped.GroupedCache):
        dxpad, dw, db = _grouped.grouped_backward(dout, cache.inner)
    else:
        dxpad, dw, db = functional.conv2d_backward(dout, cache.inner)
    return fold_padding(dxpad, geom, cache.mode), dw, db


def _dtype_of(cache: object) -> np.dtype:
    """The dtype of a cache's computation."""
    while isinstance(cache, PaddedCache):
        cache = cache.inner
    if isinstance(cache, _grouped.GroupedCache):
        return cache.dtype
    return cache.x.dtype
