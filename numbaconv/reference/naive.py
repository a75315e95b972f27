"""The convolution formulas as plain nested loops (the oracle the rest is checked against).

* :func:`naive_conv2d_forward` / :func:`naive_conv2d_backward`: convolution with groups, every
  padding form and every padding mode, one dot product per output value.
* :func:`naive_conv_transpose2d_forward` / :func:`naive_conv_transpose2d_backward`: transposed
  convolution as the scatter its definition is: every input value adds ``x * W[c]`` into a
  window of the output.
"""

from __future__ import annotations

import numpy as np

from numbaconv._groups import as_groups, check_grouped_shapes
from numbaconv._padding import Padding, check_mode_fits, check_padding_mode
from numbaconv._validation import (
    ConvGeometry,
    IntPair,
    as_float_array,
    as_pair,
    check_ndim,
    check_same_dtype,
    make_geometry,
)

# The padding modes as np.pad modes.
_NP_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge",
                 "circular": "wrap"}


def _prepare(x: object, w: object, stride: object, padding: object, dilation: object,
             groups: object, padding_mode: object
             ) -> tuple[np.ndarray, np.ndarray, ConvGeometry, int, str]:
    x = as_float_array("input", x)
    w = as_float_array("weight", w)
    check_ndim("input", x, 4, "(N, C, H, W)", "naive conv2d")
    check_ndim("weight", w, 4, "(K, C/groups, fh, fw)", "naive conv2d")
    check_same_dtype(x, w)
    groups = as_groups(groups)
    check_grouped_shapes(groups, x.shape, w.shape)
    mode = check_padding_mode(padding_mode)
    k, _, fh, fw = w.shape
    g = make_geometry(x.shape, k, fh, fw, stride, padding, dilation, "naive conv2d",
                      padding_forms=True)
    check_mode_fits(mode, x.shape, g.pads, "naive conv2d")
    return x, w, g, groups, mode


def _pad(x: np.ndarray, g: ConvGeometry, mode: str) -> np.ndarray:
    """``x`` with its border filled as ``mode`` says."""
    return np.pad(x, ((0, 0), (0, 0), (g.ph, g.ph_end), (g.pw, g.pw_end)),
                  mode=_NP_PAD_MODES[mode])


def _window(g: ConvGeometry, i: int, j: int) -> tuple[slice, slice]:
    """Rows and columns of the padded input that output position (i, j) reads."""
    top, left = i * g.sh, j * g.sw
    return (slice(top, top + g.dh * (g.fh - 1) + 1, g.dh),
            slice(left, left + g.dw * (g.fw - 1) + 1, g.dw))


def _channels(g: ConvGeometry, groups: int, k: int) -> slice:
    """The input channels filter ``k`` sees: those of its group ``k // (K/groups)``."""
    per_group = g.c // groups
    group = k // (g.k // groups)
    return slice(group * per_group, (group + 1) * per_group)


def naive_conv2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """``out[n, k, i, j] = b[k] + sum(W[k] * xpad[n, channels(k), window(i, j)])``, loop by
    loop, where ``xpad`` is ``x`` padded as ``padding`` and ``padding_mode`` say (np.pad) and
    ``channels(k)`` are the input channels of filter k's group."""
    x, w, g, groups, mode = _prepare(x, w, stride, padding, dilation, groups, padding_mode)
    xpad = _pad(x, g, mode)
    bias = np.zeros(g.k, x.dtype) if b is None else np.asarray(b, x.dtype).reshape(g.k)
    out = np.empty(g.out_shape, dtype=x.dtype)
    for n in range(g.n):
        for k in range(g.k):
            channels = _channels(g, groups, k)
            for i in range(g.ho):
                for j in range(g.wo):
                    rows, cols = _window(g, i, j)
                    out[n, k, i, j] = bias[k] + np.sum(w[k] * xpad[n, channels, rows, cols])
    return out


def _fold_padding(dxpad: np.ndarray, g: ConvGeometry, mode: str) -> np.ndarray:
    """The input gradient from the padded input's gradient: every padded cell's gradient
    goes to the input pixel it was copied from (found by padding the pixels' indices the same
    way); zero padding copies nothing, so its border is dropped."""
    if mode == "zeros":
        return dxpad[:, :, g.ph:g.ph + g.h, g.pw:g.pw + g.w].copy()
    source = _pad(np.arange(g.h * g.w).reshape(1, 1, g.h, g.w), g, mode)[0, 0]
    dx = np.zeros((g.n, g.c, g.h * g.w), dtype=dxpad.dtype)
    for yp in range(source.shape[0]):
        for xp in range(source.shape[1]):
            dx[:, :, source[yp, xp]] += dxpad[:, :, yp, xp]
    return dx.reshape(g.x_shape)


def naive_conv2d_backward(
    dout: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients ``(dx, dw, db)`` of :func:`naive_conv2d_forward`, loop by loop.

    Every output position (n, k, i, j) adds ``dout * window`` into ``dw[k]`` and
    ``dout * W[k]`` into the window of the padded input gradient; the padded gradient then
    goes back to the pixels the border was copied from (zero padding: it is stripped).
    """
    x, w, g, groups, mode = _prepare(x, w, stride, padding, dilation, groups, padding_mode)
    dout = as_float_array("dout", dout, dtype=x.dtype)
    if dout.shape != g.out_shape:
        raise ValueError(f"dout must have shape {g.out_shape}, got {dout.shape}")
    xpad = _pad(x, g, mode)
    dxpad = np.zeros_like(xpad)
    dw = np.zeros_like(w)
    for n in range(g.n):
        for k in range(g.k):
            channels = _channels(g, groups, k)
            for i in range(g.ho):
                for j in range(g.wo):
                    rows, cols = _window(g, i, j)
                    grad = dout[n, k, i, j]
                    dw[k] += grad * xpad[n, channels, rows, cols]
                    dxpad[n, channels, rows, cols] += grad * w[k]
    db = dout.sum(axis=(0, 2, 3))
    return _fold_padding(dxpad, g, mode), dw, db


# --- transposed convolution ---------------------------------------------------------------

def _transpose_sizes(x: np.ndarray, w: np.ndarray, stride: object, padding: object,
                     output_padding: object, groups: object, dilation: object) -> dict:
    """Validated hyperparameters of a transposed convolution and its output size."""
    check_ndim("input", x, 4, "(N, C_in, H, W)", "naive conv_transpose2d")
    check_ndim("weight", w, 4, "(C_in, C_out/groups, fh, fw)", "naive conv_transpose2d")
    check_same_dtype(x, w)
    groups = as_groups(groups)
    c_in = x.shape[1]
    if w.shape[0] != c_in:
        raise ValueError(
            f"Given transposed=1, weight of size {list(w.shape)}, expected input{list(x.shape)} "
            f"to have {w.shape[0]} channels, but got {c_in} channels instead")
    if c_in % groups:
        raise ValueError(
            f"Given groups={groups}, the {c_in} input channels of input{list(x.shape)} must be "
            f"divisible by groups")
    s = as_pair("stride", stride, 1)
    p = as_pair("padding", padding, 0)
    op = as_pair("output_padding", output_padding, 0)
    d = as_pair("dilation", dilation, 1)
    for axis in range(2):
        if op[axis] >= s[axis] and op[axis] >= d[axis]:
            raise ValueError(
                f"output padding must be smaller than either stride or dilation, but got "
                f"output_padding {op}, stride {s}, dilation {d}")
    fh, fw = w.shape[2:]
    ho, wo = ((size - 1) * s[a] - 2 * p[a] + d[a] * (f - 1) + op[a] + 1
              for a, (size, f) in enumerate(((x.shape[2], fh), (x.shape[3], fw))))
    if ho < 1 or wo < 1:
        raise ValueError(
            f"naive conv_transpose2d: the output size ({ho} x {wo}) of input{list(x.shape)} "
            f"with kernel ({fh} x {fw}), stride {s}, padding {p}, output_padding {op}, "
            f"dilation {d} is too small: it must be positive")
    return dict(groups=groups, s=s, p=p, d=d, ho=ho, wo=wo, c_out=w.shape[1] * groups)


def _scatter_window(i: int, j: int, fh: int, fw: int, hp: dict) -> tuple[slice, slice]:
    """Where input position (i, j) lands in the unpadded ("full") output: rows
    ``i*S + a*D`` and columns ``j*S + b*D``."""
    (sh, sw), (dh, dw) = hp["s"], hp["d"]
    return (slice(i * sh, i * sh + dh * (fh - 1) + 1, dh),
            slice(j * sw, j * sw + dw * (fw - 1) + 1, dw))


def naive_conv_transpose2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    output_padding: IntPair = 0,
    groups: int = 1,
    dilation: IntPair = 1,
) -> np.ndarray:
    """Transposed convolution as its definition's scatter, loop by loop.

    Every input value adds ``x[n, c, i, j] * W[c]`` into the output channels of c's group at
    rows ``i*S - P + a*D`` and columns ``j*S - P + b*D``; positions outside the output are
    dropped.  Computed on the "full" output (no ``-P``), which is then cropped by P.
    ``Ho = (H - 1)*S - 2P + D*(fh - 1) + output_padding + 1`` (``Wo`` likewise).
    """
    x = as_float_array("input", x)
    w = as_float_array("weight", w)
    hp = _transpose_sizes(x, w, stride, padding, output_padding, groups, dilation)
    n_img, c_in, h, w_in = x.shape
    fh, fw = w.shape[2:]
    (ph, pw), c_out, groups = hp["p"], hp["c_out"], hp["groups"]
    out_per_group, in_per_group = c_out // groups, c_in // groups
    full = np.zeros((n_img, c_out, hp["ho"] + 2 * ph, hp["wo"] + 2 * pw), dtype=x.dtype)
    for n in range(n_img):
        for c in range(c_in):
            first = (c // in_per_group) * out_per_group
            for i in range(h):
                for j in range(w_in):
                    rows, cols = _scatter_window(i, j, fh, fw, hp)
                    full[n, first:first + out_per_group, rows, cols] += x[n, c, i, j] * w[c]
    out = full[:, :, ph:ph + hp["ho"], pw:pw + hp["wo"]].copy()
    if b is not None:
        out += np.asarray(b, dtype=x.dtype).reshape(1, c_out, 1, 1)
    return out


def naive_conv_transpose2d_backward(
    dout: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    stride: IntPair = 1,
    padding: IntPair = 0,
    output_padding: IntPair = 0,
    groups: int = 1,
    dilation: IntPair = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients ``(dx, dw, db)`` of :func:`naive_conv_transpose2d_forward`, loop by loop.

    Each input value's window of the (full, uncropped) output gradient gives
    ``dx[n, c, i, j] = sum(W[c] * dfull[window])`` and adds ``x[n, c, i, j] * dfull[window]``
    into ``dw[c]``; ``db`` sums ``dout`` over images and positions.
    """
    x = as_float_array("input", x)
    w = as_float_array("weight", w)
    hp = _transpose_sizes(x, w, stride, padding, output_padding, groups, dilation)
    dout = as_float_array("dout", dout, dtype=x.dtype)
    n_img, c_in, h, w_in = x.shape
    c_out, ho, wo = hp["c_out"], hp["ho"], hp["wo"]
    if dout.shape != (n_img, c_out, ho, wo):
        raise ValueError(f"dout must have shape {(n_img, c_out, ho, wo)}, got {dout.shape}")
    fh, fw = w.shape[2:]
    (ph, pw), groups = hp["p"], hp["groups"]
    out_per_group, in_per_group = c_out // groups, c_in // groups
    dfull = np.zeros((n_img, c_out, ho + 2 * ph, wo + 2 * pw), dtype=x.dtype)
    dfull[:, :, ph:ph + ho, pw:pw + wo] = dout
    dx = np.zeros_like(x)
    dw = np.zeros_like(w)
    for n in range(n_img):
        for c in range(c_in):
            first = (c // in_per_group) * out_per_group
            for i in range(h):
                for j in range(w_in):
                    rows, cols = _scatter_window(i, j, fh, fw, hp)
                    window = dfull[n, first:first + out_per_group, rows, cols]
                    dx[n, c, i, j] = np.sum(w[c] * window)
                    dw[c] += x[n, c, i, j] * window
    return dx, dw, dout.sum(axis=(0, 2, 3))
