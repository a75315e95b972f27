"""Lanes of filters and of channels, for calls with few output positions and large weights.

The deep layers of real networks (14x14 or 7x7 planes, hundreds of channels) at small batch
sizes have few output positions ``N * Q`` and large weights ``K x R``.  Lanes of images or of
output rows would each pack the whole weight matrix for a thin product and, backward, add a
weight-gradient part as large as the weights.  Here the work is cut the other way:

* the columns of a group of images are built once, shared, by lanes of (image, channels);
* forward, each lane computes a block of filters, ``out[n, k0:k1] = W_row[k0:k1] @ cols[n]``;
* backward, each lane computes a block of columns of the weight gradient,
  ``dW[:, r0:r1] = sum_n dout[n] @ cols[n, r0:r1]^T`` (images in order), or a block of input
  channels of the input gradient, ``col2im(W_col[rows of c0:c1] @ dout[n])``.

Blocks are cut along the large dimension of each product (filters, rows of the columns), so
that a lane repacks only the small operand (the columns forward, ``dout`` backward) and each
packed value serves at least ``MIN_BLOCK_ROWS`` multiply-adds.

Every lane writes its own rows, so there are no partial sums; the blocks depend on the problem
only, and each value is computed by one product of a fixed shape: results are bitwise
identical for any thread count.  The lanes run on the same scheduler as the others
(``_lanes.run_lanes``) as NumPy products, which release the GIL, and serial Numba kernels.
"""

from __future__ import annotations

import numpy as np

from numbaconv import _lanes
from numbaconv._lanes import run_lanes
from numbaconv._validation import ConvGeometry

# Calls with fewer output positions (N * Ho * Wo) than this many times their filters use
# filter lanes: a lane of filters then has more product rows than a lane of positions would
# have columns, so it re-reads less per multiply-add.
FILTER_LANES_RATIO = 2
# Fewest rows in a lane's block of filters, of weight-gradient columns or of column-gradient
# rows: BLAS packs the other operand of every product again, and a packed value must serve
# this many multiply-adds for the packing to cost little beside them.
MIN_BLOCK_ROWS = 128
# The shared columns of a group of images take at most this many workspaces.
SHARED_WORKSPACES = 16


def use_filter_lanes(geom: ConvGeometry) -> bool:
    """Whether a call is split into blocks of filters and channels rather than of images
    and output rows (see the module docstring)."""
    return (geom.n * geom.positions < FILTER_LANES_RATIO * geom.k
            and geom.multiply_adds >= _lanes.SMALL_CALL
            and geom.k >= 2 * MIN_BLOCK_ROWS)


def _blocks(size: int, unit: int, work: int) -> list[tuple[int, int]]:
    """``size`` cut into blocks of at least ``unit * k >= MIN_BLOCK_ROWS`` product rows, about
    ``LANE_WORK`` of the call's ``work`` each, at most ``LANES`` of them."""
    fewest = -(-MIN_BLOCK_ROWS // unit)
    count = min(max(work // _lanes.LANE_WORK, 1), max(size // fewest, 1), _lanes.LANES)
    return [(b * size // count, (b + 1) * size // count) for b in range(count)]


def _image_groups(geom: ConvGeometry, itemsize: int, workspace: int) -> list[tuple[int, int]]:
    """Groups of images whose shared columns fit ``SHARED_WORKSPACES`` workspaces."""
    image_bytes = max(geom.rows * geom.positions * itemsize, 1)
    size = max(SHARED_WORKSPACES * workspace // image_bytes, 1)
    return [(g0, min(g0 + size, geom.n)) for g0 in range(0, geom.n, size)]


def _columns_lane(x, geom, cols, g0, im2col):
    """``cols`` (m, R, Q) for images ``g0:``, and the lane that fills the rows of channels
    ``c0:c1`` of image ``m`` in it; pointwise, ``cols`` is a view of ``x`` and there are
    no such lanes (None)."""
    if geom.is_pointwise:
        return x[g0:g0 + cols].reshape(cols, geom.c, geom.positions), None
    ff = geom.fh * geom.fw
    buffer = np.empty((cols, geom.rows, geom.positions), dtype=x.dtype)

    def lane(m: int, c0: int, c1: int, serial: bool) -> None:
        im2col(x[m:m + 1, c0:c1], geom, buffer[m - g0:m - g0 + 1, c0 * ff:c1 * ff], serial)

    return buffer, lane


def forward(x: np.ndarray, w_mat: np.ndarray, bias: np.ndarray | None, geom: ConvGeometry,
            out3: np.ndarray, workspace: int, im2col) -> None:
    """``out3`` (N, K, Q) = the convolution of ``x`` with ``w_mat`` (K, R) plus ``bias``
    (or None), by lanes of filters."""
    per_image = geom.multiply_adds // max(geom.n, 1)
    channel_blocks = _blocks(geom.c, geom.fh * geom.fw, per_image)
    for g0, g1 in _image_groups(geom, x.itemsize, workspace):
        cols, im2col_lane = _columns_lane(x, geom, g1 - g0, g0, im2col)
        if im2col_lane is not None:
            run_lanes(lambda m, _, c0, c1, serial, fill=im2col_lane: fill(m, c0, c1, serial),
                      [(m, m + 1, c0, c1) for m in range(g0, g1) for c0, c1 in channel_blocks])
        filters = _blocks(geom.k, 1, per_image * (g1 - g0))

        def lane(k0: int, k1: int, _: int, __: int, serial: bool, cols=cols, g0=g0) -> None:
            for m in range(cols.shape[0]):
                np.matmul(w_mat[k0:k1], cols[m], out=out3[g0 + m, k0:k1])
                if bias is not None:
                    out3[g0 + m, k0:k1] += bias[k0:k1, None]

        run_lanes(lane, [(k0, k1, 0, 0) for k0, k1 in filters])


def backward(x: np.ndarray, dout3: np.ndarray, w_mat: np.ndarray, geom: ConvGeometry,
             dx: np.ndarray, workspace: int, im2col, col2im, want_dx: bool = True,
             want_dw: bool = True) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Overwrite ``dx`` with the input gradient (if ``want_dx``) and return ``(dW_row, db)``
    ((K, R) and (K,); None without ``want_dw``), by lanes of weight-gradient columns and of
    input channels."""
    k, rows, ff = geom.k, geom.rows, geom.fh * geom.fw
    dw = np.zeros((k, rows), dtype=x.dtype) if want_dw else None
    db = np.zeros(k, dtype=x.dtype) if want_dw else None
    per_image = geom.multiply_adds // max(geom.n, 1)
    channel_blocks = _blocks(geom.c, ff, per_image)
    dx3 = dx.reshape(geom.n, geom.c, geom.h * geom.w) if want_dx else dx

    for g0, g1 in _image_groups(geom, x.itemsize, workspace):
        cols, im2col_lane = _columns_lane(x, geom, g1 - g0, g0, im2col)

        # Lanes (m, part, c0, c1): the input gradient (part 0), which needs only dout, and
        # the columns (part 1) of channels c0:c1 of image m, side by side.
        def dx_or_im2col_lane(m: int, part: int, c0: int, c1: int, serial: bool,
                              im2col_lane=im2col_lane) -> None:
            if part == 1:
                im2col_lane(m, c0, c1, serial)
            elif geom.is_pointwise:  # the column gradient is the input gradient
                np.matmul(w_mat[:, c0:c1].T, dout3[m], out=dx3[m, c0:c1])
            else:
                dcols = w_mat[:, c0 * ff:c1 * ff].T @ dout3[m]
                col2im(dcols.reshape(1, -1, geom.positions), geom, dx[m:m + 1, c0:c1], serial)

        parts = (0,) * want_dx + (1,) * (want_dw and im2col_lane is not None)
        run_lanes(dx_or_im2col_lane, [(m, part, c0, c1) for m in range(g0, g1)
                                      for part in parts for c0, c1 in channel_blocks])
        if not want_dw:
            continue
        columns = _blocks(rows, 1, per_image * (g1 - g0))

        def dw_lane(r0: int, r1: int, _: int, __: int, serial: bool, cols=cols, g0=g0,
                    g1=g1) -> None:
            part = np.empty((k, r1 - r0), dtype=x.dtype) if g1 - g0 > 1 or g0 > 0 else None
            for m in range(cols.shape[0]):  # images in order: a fixed sum
                if part is None:  # the only image: its product is the gradient
                    np.matmul(dout3[g0 + m], cols[m, r0:r1].T, out=dw[:, r0:r1])
                else:
                    np.matmul(dout3[g0 + m], cols[m, r0:r1].T, out=part)
                    dw[:, r0:r1] += part
                if r0 == 0:
                    db[:] += dout3[g0 + m].sum(axis=1)

        run_lanes(dw_lane, [(r0, r1, 0, 0) for r0, r1 in columns])
    return dw, db
