"""The classic fancy-index im2col / col2im and the classic layer built on them.

Index arrays ``(k, i, j)`` of shape ``(R, Q)`` name, for every column entry, the channel, row
and column of the padded input it comes from.  im2col gathers ``xpad[:, k, i, j]`` and moves
the batch axis last; col2im scatter-adds with ``np.add.at`` (NumPy's unbuffered, slow path).
Output sizes follow the same floor rule as the rest of numbaconv.
"""

from __future__ import annotations

import numpy as np

from numbaconv._validation import (
    BackwardBeforeForwardError,
    ConvGeometry,
    IntPair,
    as_float_array,
    as_int,
    check_ndim,
    check_same_dtype,
    make_geometry,
)


def get_im2col_indices(
    x_shape: tuple[int, int, int, int],
    field_height: int,
    field_width: int,
    padding: IntPair = 1,
    stride: IntPair = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index arrays ``(k, i, j)`` such that ``xpad[:, k, i, j]`` is the column matrix.

    ``k`` has shape (R, 1); ``i`` and ``j`` have shape (R, Q) with ``R = C*fh*fw`` and
    ``Q = Ho*Wo``, row ``r = (c*fh + a)*fw + b`` and column ``q = i_out*Wo + j_out``.
    """
    return _index_arrays(_geometry(x_shape, field_height, field_width, padding, stride))


def _geometry(x_shape: tuple[int, ...], field_height: object, field_width: object,
              padding: object, stride: object) -> ConvGeometry:
    fh, fw = as_int("field_height", field_height), as_int("field_width", field_width)
    return make_geometry(tuple(x_shape), 1, fh, fw, stride, padding, 1, op="im2col_indices")


def _index_arrays(g: ConvGeometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``(k, i, j)`` of :func:`get_im2col_indices` for a validated geometry."""
    # Row offsets inside the window, repeated per channel; start offsets of every window.
    tap_rows = np.tile(np.repeat(np.arange(g.fh), g.fw), g.c)
    tap_cols = np.tile(np.arange(g.fw), g.fh * g.c)
    start_rows = g.sh * np.repeat(np.arange(g.ho), g.wo)
    start_cols = g.sw * np.tile(np.arange(g.wo), g.ho)
    i = tap_rows[:, None] + start_rows[None, :]
    j = tap_cols[:, None] + start_cols[None, :]
    k = np.repeat(np.arange(g.c), g.fh * g.fw)[:, None]
    return k, i, j


def _real_array(name: str, value: object) -> np.ndarray:
    """``value`` as an array of any real numeric dtype, which the classic functions (plain
    NumPy indexing and ``np.add.at``) take as they are."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be an array of real numbers, got dtype {arr.dtype}")
    return arr


def _pad(x: np.ndarray, ph: int, pw: int) -> np.ndarray:
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), mode="constant")


def im2col_indices(
    x: np.ndarray,
    field_height: int,
    field_width: int,
    padding: IntPair = 1,
    stride: IntPair = 1,
) -> np.ndarray:
    """Classic im2col by fancy indexing: ``(C*fh*fw, Ho*Wo*N)``, batch index fastest.

    Any real dtype, kept: the columns are a gather of ``x`` and zeros."""
    x = _real_array("x", x)
    check_ndim("x", x, 4, "(N, C, H, W)", "im2col_indices")
    g = _geometry(x.shape, field_height, field_width, padding, stride)
    k, i, j = _index_arrays(g)
    cols = _pad(x, g.ph, g.pw)[:, k, i, j]  # (N, R, Q)
    return cols.transpose(1, 2, 0).reshape(k.shape[0], -1)


def col2im_indices(
    cols: np.ndarray,
    x_shape: tuple[int, int, int, int],
    field_height: int = 3,
    field_width: int = 3,
    padding: IntPair = 1,
    stride: IntPair = 1,
) -> np.ndarray:
    """Classic col2im: undo the reshape and scatter-add with ``np.add.at``.

    Any real dtype, summed in that dtype (float16 rounds after every addition, ints wrap
    around on overflow), as the classic code does."""
    cols = _real_array("cols", cols)
    check_ndim("cols", cols, 2, "(C*field_height*field_width, Ho*Wo*N)", "col2im_indices")
    n, c, h, w = (as_int("x_shape", s) for s in x_shape)
    g = _geometry((n, c, h, w), field_height, field_width, padding, stride)
    k, i, j = _index_arrays(g)
    if cols.shape != (i.shape[0], i.shape[1] * n):
        raise ValueError(
            f"cols must have shape {(i.shape[0], i.shape[1] * n)} for x_shape "
            f"{(n, c, h, w)}, got {cols.shape}")
    xpad = np.zeros((n, c, h + 2 * g.ph, w + 2 * g.pw), dtype=cols.dtype)
    per_image = cols.reshape(i.shape[0], i.shape[1], n).transpose(2, 0, 1)
    np.add.at(xpad, (slice(None), k, i, j), per_image)
    return xpad[:, :, g.ph:g.ph + h, g.pw:g.pw + w]


def fancy_conv2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
) -> tuple[np.ndarray, tuple]:
    """The classic forward: ``W_row @ im2col(x) + b``, reshaped and transposed to NCHW."""
    x = as_float_array("input", x)
    w = as_float_array("weight", w)
    check_ndim("input", x, 4, "(N, C, H, W)", "conv2d")
    check_ndim("weight", w, 4, "(K, C, fh, fw)", "conv2d")
    check_same_dtype(x, w)
    if x.shape[1] != w.shape[1]:
        raise ValueError(
            f"expected input{list(x.shape)} to have {w.shape[1]} channels, "
            f"but got {x.shape[1]} channels instead")
    k, _, fh, fw = w.shape
    g = make_geometry(x.shape, k, fh, fw, stride, padding, 1)
    x_col = im2col_indices(x, fh, fw, padding=padding, stride=stride)
    out = w.reshape(k, -1) @ x_col
    if b is not None:
        out += np.asarray(b, dtype=x.dtype).reshape(k, 1)
    out = out.reshape(k, g.ho, g.wo, g.n).transpose(3, 0, 1, 2)
    return np.ascontiguousarray(out), (x.shape, w, x_col, stride, padding)


def fancy_conv2d_backward(
    dout: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The classic backward: ``dW = dout_flat @ X_col.T``, ``dX = col2im(W_row.T @ dout_flat)``."""
    x_shape, w, x_col, stride, padding = cache
    k, _, fh, fw = w.shape
    dout = as_float_array("dout", dout, dtype=w.dtype)
    db = dout.sum(axis=(0, 2, 3))
    dout_flat = dout.transpose(1, 2, 3, 0).reshape(k, -1)
    dw = (dout_flat @ x_col.T).reshape(w.shape)
    dx_col = w.reshape(k, -1).T @ dout_flat
    dx = col2im_indices(dx_col, x_shape, fh, fw, padding=padding, stride=stride)
    return dx, dw, db


class FancyConv:
    """The classic im2col layer on the fancy-index functions (same API as ``numbaconv.Conv``).

    With ``rng=None`` the weights are the classic layer's
    ``np.random.randn(n_filter, C, h_filter, w_filter) / np.sqrt(n_filter / 2.)``, drawn from
    NumPy's global generator (so ``np.random.seed`` reproduces them); an int seed or a
    ``numpy.random.Generator`` draws the same formula from that generator instead."""

    def __init__(self, X_dim, n_filter, h_filter, w_filter, stride, padding, *,
                 dtype=np.float64, rng=None) -> None:
        self.d_X, self.h_X, self.w_X = (as_int("X_dim", v) for v in X_dim)
        self.n_filter, self.h_filter, self.w_filter = n_filter, h_filter, w_filter
        self.stride, self.padding = stride, padding
        g = make_geometry((1, self.d_X, self.h_X, self.w_X), n_filter, h_filter, w_filter,
                          stride, padding, 1, op="FancyConv")
        self.h_out, self.w_out = g.ho, g.wo
        self.out_dim = (n_filter, g.ho, g.wo)
        if rng is None:  # the classic layer's draw, from NumPy's global generator
            # The legacy global generator on purpose: it is what classic code seeds.
            W = np.random.randn(  # noqa: NPY002
                n_filter, self.d_X, h_filter, w_filter) / np.sqrt(n_filter / 2.)
        else:
            generator = (rng if isinstance(rng, np.random.Generator)
                         else np.random.default_rng(rng))
            W = generator.standard_normal((n_filter, self.d_X, h_filter, w_filter))
            W = W / np.sqrt(n_filter / 2.0)
        self.W = W.astype(dtype)
        self.b = np.zeros((n_filter, 1), dtype=dtype)
        self.params = [self.W, self.b]
        self._cache = None

    def forward(self, X: np.ndarray) -> np.ndarray:
        out, self._cache = fancy_conv2d_forward(
            np.asarray(X, dtype=self.W.dtype), self.params[0], self.params[1],
            self.stride, self.padding)
        return out

    def backward(self, dout: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        if self._cache is None:
            raise BackwardBeforeForwardError("FancyConv.backward() called before forward()")
        dX, dW, db = fancy_conv2d_backward(dout, self._cache)
        return dX, [dW, db.reshape(self.n_filter, 1)]
