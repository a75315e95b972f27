"""The convolution formulas as plain nested loops (the oracle the rest is checked against)."""

from __future__ import annotations

import numpy as np

from numbaconv._validation import (
    ConvGeometry,
    IntPair,
    as_float_array,
    check_ndim,
    check_same_dtype,
    make_geometry,
)


def _prepare(x: object, w: object, stride: object, padding: object,
             dilation: object) -> tuple[np.ndarray, np.ndarray, ConvGeometry]:
    x = as_float_array("input", x)
    w = as_float_array("weight", w)
    check_ndim("input", x, 4, "(N, C, H, W)", "naive conv2d")
    check_ndim("weight", w, 4, "(K, C, fh, fw)", "naive conv2d")
    check_same_dtype(x, w)
    if x.shape[1] != w.shape[1]:
        raise ValueError(
            f"expected input{list(x.shape)} to have {w.shape[1]} channels, "
            f"but got {x.shape[1]} channels instead")
    k, _, fh, fw = w.shape
    return x, w, make_geometry(x.shape, k, fh, fw, stride, padding, dilation)


def _window(g: ConvGeometry, i: int, j: int) -> tuple[slice, slice]:
    """Rows and columns of the padded input that output position (i, j) reads."""
    top, left = i * g.sh, j * g.sw
    return (slice(top, top + g.dh * (g.fh - 1) + 1, g.dh),
            slice(left, left + g.dw * (g.fw - 1) + 1, g.dw))


def naive_conv2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
) -> np.ndarray:
    """``out[n, k, i, j] = b[k] + sum(W[k] * xpad[n, :, window(i, j)])``, loop by loop."""
    x, w, g = _prepare(x, w, stride, padding, dilation)
    xpad = np.pad(x, ((0, 0), (0, 0), (g.ph, g.ph), (g.pw, g.pw)))
    bias = np.zeros(g.k, x.dtype) if b is None else np.asarray(b, x.dtype).reshape(g.k)
    out = np.empty(g.out_shape, dtype=x.dtype)
    for n in range(g.n):
        for k in range(g.k):
            for i in range(g.ho):
                for j in range(g.wo):
                    rows, cols = _window(g, i, j)
                    out[n, k, i, j] = bias[k] + np.sum(w[k] * xpad[n, :, rows, cols])
    return out


def naive_conv2d_backward(
    dout: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients ``(dx, dw, db)`` of :func:`naive_conv2d_forward`, loop by loop.

    Every output position (n, k, i, j) adds ``dout * window`` into ``dw[k]`` and
    ``dout * W[k]`` into the window of the padded input gradient; the padding is then
    stripped.
    """
    x, w, g = _prepare(x, w, stride, padding, dilation)
    dout = as_float_array("dout", dout, dtype=x.dtype)
    if dout.shape != g.out_shape:
        raise ValueError(f"dout must have shape {g.out_shape}, got {dout.shape}")
    xpad = np.pad(x, ((0, 0), (0, 0), (g.ph, g.ph), (g.pw, g.pw)))
    dxpad = np.zeros_like(xpad)
    dw = np.zeros_like(w)
    for n in range(g.n):
        for k in range(g.k):
            for i in range(g.ho):
                for j in range(g.wo):
                    rows, cols = _window(g, i, j)
                    grad = dout[n, k, i, j]
                    dw[k] += grad * xpad[n, :, rows, cols]
                    dxpad[n, :, rows, cols] += grad * w[k]
    dx = dxpad[:, :, g.ph:g.ph + g.h, g.pw:g.pw + g.w].copy()
    db = dout.sum(axis=(0, 2, 3))
    return dx, dw, db
