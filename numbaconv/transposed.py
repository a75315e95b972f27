"""Transposed convolution: the adjoint of a convolution's map from its input to its output.

A transposed convolution of ``x`` (N, C_in, H, W) with weights ``w`` (C_in, C_out/g, fh, fw)
is the input gradient of the convolution that maps (N, C_out, Ho, Wo) to (N, C_in, H, W) with
the same ``w`` read as (K = C_in, C = C_out, fh, fw) filters, evaluated at ``dout = x``.  So
its three passes are the convolution's own, on the same kernels and lanes:

* forward: the convolution's input-gradient path (one product, then col2im);
* input gradient: the convolution's forward pass of ``dout`` (im2col, then one product);
* weight gradient: the convolution's weight gradient, with the roles of its input (``dout``)
  and of its output gradient (``x``) taken by the transposed convolution's.

``output_padding`` rows and columns at the end, when it reaches beyond what the stride makes
of ``x``, correspond to a last row (column) of the convolution's output that ``x`` lacks: ``x``
is extended by zeros there.

A 1x1 input without padding, dilation or output padding (a GAN generator's first layer, from
the latent vector to 4x4 maps) has one window that covers the whole output: its three passes
are plain matrix products of ``x`` as ``(N, C_in)`` with ``w`` as ``(C_in, C_out*fh*fw)``
(per group), run with single-threaded BLAS so that they are the same for any thread count,
with no im2col or col2im at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numbaconv import functional as F
from numbaconv._lanes import single_threaded_blas
from numbaconv._validation import (
    ConvGeometry,
    IntPair,
    as_float_array,
    as_int,
    as_pair,
    check_ndim,
    check_output_padding,
    check_same_dtype,
    make_geometry,
)


@dataclass(frozen=True)
class ConvTransposeCache:
    """What :func:`conv_transpose2d_backward` needs from the forward pass: a private copy of
    the input (extended by zeros where ``output_padding`` asks for it), the weights, and
    the geometry of the equivalent convolution of each group."""

    x: np.ndarray
    w: np.ndarray
    geometry: ConvGeometry
    tiling: F.Tiling
    groups: int
    in_size: tuple[int, int]


def _prepare(x, w, b, stride, padding, output_padding, groups, dilation, op):
    """Validate once: ``(x, w, bias, geom, tiling, groups)`` with ``geom`` the geometry of
    the equivalent convolution of one group (its input is the transposed output)."""
    x = as_float_array("input", x)
    w = as_float_array("weight", w)
    check_ndim("input", x, 4, "(N, C_in, H, W)", op)
    check_ndim("weight", w, 4, "(C_in, C_out/groups, fh, fw)", op)
    check_same_dtype(x, w)
    g = as_int("groups", groups)
    if g < 1:
        raise ValueError(f"non-positive groups is not supported, got groups={g}")
    c_in, c_out_g, fh, fw = w.shape
    if x.shape[1] != c_in:
        raise ValueError(
            f"Given transposed=1, weight of size {list(w.shape)}, expected input"
            f"{list(x.shape)} to have {c_in} channels, but got {x.shape[1]} channels instead")
    if c_in % g:
        raise ValueError(f"in_channels ({c_in}) must be divisible by groups ({g})")
    sh, sw = as_pair("stride", stride, 1)
    ph, pw = as_pair("padding", padding, 0)
    dh, dw = as_pair("dilation", dilation, 1)
    oph, opw = as_pair("output_padding", output_padding, 0)
    check_output_padding((oph, opw), (sh, sw), (dh, dw))
    n, _, h, wi = x.shape
    ho = (h - 1) * sh - 2 * ph + dh * (fh - 1) + oph + 1
    wo = (wi - 1) * sw - 2 * pw + dw * (fw - 1) + opw + 1
    if ho < 1 or wo < 1:
        raise ValueError(
            f"Given input size per channel: ({h} x {wi}). Calculated output size per channel: "
            f"({ho} x {wo}). Output size is too small")
    geom = make_geometry((n, c_out_g, ho, wo), c_in // g, fh, fw, (sh, sw), (ph, pw),
                         (dh, dw), op=op)
    bias = F._bias_vector(b, c_out_g * g, x.dtype)
    return x, w, bias, geom, F.plan_tiling(geom, x.itemsize, None), g


def _extended(x: np.ndarray, geom: ConvGeometry, copy: bool) -> np.ndarray:
    """``x`` as the equivalent convolution's output gradient (N, C_in, Ho', Wo'): extended by
    zero rows and columns at the end when ``output_padding`` reaches past the stride, and a
    private copy if ``copy``."""
    if x.shape[2:] == (geom.ho, geom.wo):
        return x.copy() if copy else x
    ext = np.zeros(x.shape[:2] + (geom.ho, geom.wo), dtype=x.dtype)
    ext[:, :, :x.shape[2], :x.shape[3]] = x
    return ext


def _group(a: np.ndarray, g: int, groups: int) -> np.ndarray:
    """Channels of group ``g`` of ``a`` (axis 1), C-contiguous."""
    size = a.shape[1] // groups
    return a if groups == 1 else np.ascontiguousarray(a[:, g * size:(g + 1) * size])


def _is_projection(geom: ConvGeometry) -> bool:
    """Whether one window covers the whole output (a 1x1 input, no padding, dilation or output
    padding): then every pass is a matrix product (see the module docstring)."""
    return ((geom.h, geom.w) == (geom.fh, geom.fw) and geom.dh == geom.dw == 1
            and geom.ph == geom.pw == geom.ph_end == geom.pw_end == 0)


def _projection_views(a, w, geom, groups):
    """``a`` (the input or its gradient) as ``(N, groups, C_in/g)`` and ``w`` as ``(groups,
    C_in/g, C_out/g * fh*fw)``: the operands of a projection's products."""
    return (a.reshape(geom.n, groups, geom.k),
            w.reshape(groups, geom.k, geom.c * geom.fh * geom.fw))


def _project(x_ext, w, bias, geom, groups) -> np.ndarray:
    """The transposed output of a projection: per group ``x_g @ w_g``."""
    x3, w3 = _projection_views(x_ext, w, geom, groups)
    out = np.empty((geom.n, groups, w3.shape[2]), dtype=x_ext.dtype)
    with single_threaded_blas():
        for g in range(groups):
            np.matmul(x3[:, g], w3[g], out=out[:, g])
    out = out.reshape(geom.n, groups * geom.c, geom.fh, geom.fw)
    if bias is not None:
        out += bias.reshape(1, -1, 1, 1)
    return out


def _project_backward(dout, x_ext, w, geom, groups) -> tuple[np.ndarray, np.ndarray]:
    """``(dx, dw)`` of :func:`_project`: per group ``dout_g @ w_g.T`` and ``x_g.T @ dout_g``."""
    x3, w3 = _projection_views(x_ext, w, geom, groups)
    d3 = dout.reshape(geom.n, groups, w3.shape[2])
    dx = np.empty_like(x3)
    dw = np.empty_like(w3)
    with single_threaded_blas():
        for g in range(groups):
            np.matmul(d3[:, g], w3[g].T, out=dx[:, g])
            np.matmul(x3[:, g].T, d3[:, g], out=dw[g])
    return dx.reshape(x_ext.shape), dw.reshape(w.shape)


def _forward(x_ext, w, bias, geom, tiling, groups) -> np.ndarray:
    """The transposed output: per group, the equivalent convolution's input gradient."""
    if _is_projection(geom):
        return _project(x_ext, w, bias, geom, groups)
    c_in_g = geom.k
    parts = []
    for g in range(groups):
        w_g = w[g * c_in_g:(g + 1) * c_in_g]
        # The input gradient alone reads no input: any array of its shape and dtype will do.
        shape_only = np.empty(geom.x_shape, dtype=x_ext.dtype)  # never written: no pages
        dx, _, _ = F.backward_pass(_group(x_ext, g, groups), shape_only, w_g, geom, tiling,
                                   want_dw=False)
        parts.append(dx)
    out = parts[0] if groups == 1 else np.concatenate(parts, axis=1)
    if bias is not None:
        out += bias.reshape(1, -1, 1, 1)
    return out


def conv_transpose2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    output_padding: IntPair = 0,
    groups: int = 1,
    dilation: IntPair = 1,
) -> tuple[np.ndarray, ConvTransposeCache]:
    """2-D transposed convolution (PyTorch's ``conv_transpose2d``), keeping what
    :func:`conv_transpose2d_backward` needs.

    Every input value scatters ``x[n, c, i, j] * w[c, o]`` onto the output window at
    ``(i*sh - ph, j*sw - pw)`` (taps ``dilation`` apart); windows overlap and add up, and
    what falls outside the output is dropped.

    Parameters
    ----------
    x : ndarray, shape (N, C_in, H, W), float32 or float64
    w : ndarray, shape (C_in, C_out/groups, fh, fw), same dtype as ``x``
    b : ndarray of shape (C_out,) or (C_out, 1), optional
    stride, padding, dilation : int or (int, int)
        Those of the convolution this one is the transpose of: ``padding`` removes rows
        and columns from the output's borders.
    output_padding : int or (int, int)
        Rows and columns added at the end of the output (smaller than the stride or the
        dilation), which tells apart the input sizes a strided convolution maps to one
        size.
    groups : int
        ``C_in`` and ``C_out`` are cut into this many groups; group ``g`` of the input
        makes group ``g`` of the output with weights ``w[g*C_in/groups:(g+1)*C_in/groups]``.

    Returns
    -------
    out : ndarray, shape (N, C_out, Ho, Wo)
        ``Ho = (H - 1)*sh - 2*ph + dh*(fh - 1) + output_padding_h + 1`` (``Wo`` likewise).
    cache : ConvTransposeCache
    """
    x, w, bias, geom, tiling, groups = _prepare(
        x, w, b, stride, padding, output_padding, groups, dilation, "conv_transpose2d")
    x_ext = _extended(x, geom, copy=True)
    out = _forward(x_ext, w, bias, geom, tiling, groups)
    return out, ConvTransposeCache(x_ext, w, geom, tiling, groups, x.shape[2:])


def conv_transpose2d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    output_padding: IntPair = 0,
    groups: int = 1,
    dilation: IntPair = 1,
) -> np.ndarray:
    """The output of :func:`conv_transpose2d_forward` without preparing a backward pass (no
    cache, no private copy of ``x``); bitwise equal to it."""
    x, w, bias, geom, tiling, groups = _prepare(
        x, w, b, stride, padding, output_padding, groups, dilation, "conv_transpose2d")
    return _forward(_extended(x, geom, copy=False), w, bias, geom, tiling, groups)


def conv_transpose2d_backward(
    dout: np.ndarray, cache: ConvTransposeCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv_transpose2d_forward` with respect to ``x``, ``w`` and ``b``.

    Parameters
    ----------
    dout : ndarray, shape (N, C_out, Ho, Wo)
    cache : ConvTransposeCache
        The second value returned by :func:`conv_transpose2d_forward`.

    Returns
    -------
    dx : ndarray, shape (N, C_in, H, W)
    dw : ndarray, shape (C_in, C_out/groups, fh, fw)
    db : ndarray, shape (C_out,)
    """
    if not isinstance(cache, ConvTransposeCache):
        raise TypeError("cache must be the ConvTransposeCache returned by "
                        f"conv_transpose2d_forward, got {type(cache).__name__}")
    geom, x_ext, w, groups = cache.geometry, cache.x, cache.w, cache.groups
    dout = as_float_array("dout", dout, dtype=x_ext.dtype)
    expected = (geom.n, geom.c * groups, geom.h, geom.w)
    if dout.shape != expected:
        raise ValueError(
            f"dout must have the shape of the forward output {expected}, got {dout.shape}")
    if _is_projection(geom):
        dx, dw = _project_backward(dout, x_ext, w, geom, groups)
        return dx, dw, dout.sum(axis=(0, 2, 3))
    fused = F.use_fused_lanes()
    c_in_g = geom.k
    dxs, dws = [], []
    for g in range(groups):
        w_g = w[g * c_in_g:(g + 1) * c_in_g]
        dout_g = _group(dout, g, groups)  # the equivalent convolution's input
        # The input gradient is the equivalent convolution's forward pass of dout.
        dxs.append(F._run_forward(dout_g, w_g, None, geom, cache.tiling, fused)[0])
        _, dw, _ = F.backward_pass(_group(x_ext, g, groups), dout_g, w_g, geom, cache.tiling,
                                   want_dx=False)
        dws.append(dw)
    dx = dxs[0] if groups == 1 else np.concatenate(dxs, axis=1)
    h, wi = cache.in_size
    if dx.shape[2:] != (h, wi):
        dx = np.ascontiguousarray(dx[:, :, :h, :wi])
    dw = dws[0] if groups == 1 else np.concatenate(dws, axis=0)
    return dx, np.ascontiguousarray(dw), dout.sum(axis=(0, 2, 3))
