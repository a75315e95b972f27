"""Lanes of filters and of channels, for calls with few output positions and large weights.

The deep layers of real networks (14x14 or 7x7 planes, hundreds of channels) at small batch
sizes have few output positions ``N * Q`` and large weights ``K x R``.  Lanes of images or of
output rows would each pack the whole weight matrix for a thin product and, backward, add a
weight-gradient part as large as the weights.  Here the work is cut the other way:

* the columns of a group of images are built once, shared, as one matrix ``(R, m*Q)`` (the
  images side by side, as in the wide layout), by lanes of (image, channels);
* forward, each lane computes a block of filters for all the group's images in one product,
  ``W_row[k0:k1] @ cols``;
* backward, each lane computes a block of columns of the weight gradient,
  ``dW[:, r0:r1] = dout @ cols[r0:r1]^T`` with ``dout`` laid out as ``(K, m*Q)`` (one product
  over the images: its inner dimension is ``m*Q``, not ``Q``), or a block of input channels
  of the input gradient, ``col2im(W_col[rows of c0:c1] @ dout)``.

One product per block for the whole group, rather than one per image, matters beside the
small planes of these layers: a 7x7 image has 49 columns, too few for BLAS to pack a block
of weights for; 8 images side by side have 392.

Blocks are cut along the large dimension of each product (filters, rows of the columns), so
that a lane repacks only the small operand (the columns forward, ``dout`` backward) and each
packed value serves at least ``MIN_BLOCK_ROWS`` multiply-adds.

Every lane writes its own rows, so there are no partial sums; the blocks depend on the problem
only, and each value is computed by one product of a fixed shape: results are bitwise
identical for any thread count.  With NumPy's OpenBLAS, a block is a Numba kernel
(``_filter_kernels``) and the blocks of a call are one parallel Numba call; with another BLAS
they are NumPy products on the lane scheduler (``_lanes.run_lanes``).
"""

from __future__ import annotations

import numpy as np

from numbaconv import _filter_kernels, _lanes
from numbaconv._lanes import run_lanes
from numbaconv._scratch import _scratch_buffer, thread_scratch
from numbaconv._stages import Stage
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


def images_inner(a: np.ndarray) -> np.ndarray:
    """``(m, rows, Q)`` as the matrix ``(rows, m*Q)`` of the wide layout (a copy if m > 1);
    the NumPy lanes of ``functional`` lay out their wide tiles with it too."""
    m, rows, q = a.shape
    if m == 1:
        return a.reshape(rows, q)
    return np.ascontiguousarray(a.transpose(1, 0, 2)).reshape(rows, m * q)


def store_images_outer(product: np.ndarray, out: np.ndarray,
                        bias: np.ndarray | None = None) -> None:
    """``out`` (m, rows, Q) = ``product`` (rows, m*Q), plus ``bias`` (rows,) if given."""
    m, rows, q = out.shape
    laid_out = product.reshape(rows, m, q).transpose(1, 0, 2)
    if bias is None:
        np.copyto(out, laid_out)
    else:
        np.add(laid_out, bias[None, :, None], out=out)


class _SharedColumns:
    """The columns of images ``g0:g1`` as one matrix ``(R, m*Q)`` (``matrix``), filled by one
    im2col of all their planes (parallel unless ``serial``).  For one image of a pointwise
    layer, the matrix is a view of ``x``."""

    def __init__(self, x: np.ndarray, geom: ConvGeometry, g0: int, g1: int, im2col,
                 serial: bool) -> None:
        m = g1 - g0
        images = x[g0:g1].reshape(m, geom.c, geom.h * geom.w)
        if geom.is_pointwise and m == 1:
            self.matrix = images[0]
            return
        cols = np.empty((geom.rows, m, geom.positions), dtype=x.dtype)
        self.matrix = cols.reshape(geom.rows, -1)
        with Stage("im2col"):
            if geom.is_pointwise:
                np.copyto(cols, images.transpose(1, 0, 2))
            else:
                im2col(x[g0:g1], geom, cols, serial, wide=True)


def _run_blocks(parallel_kernel, block_kernel, blocks: list[tuple[int, int]], head: tuple,
                tail: tuple, product_size: int, dtype: np.dtype) -> None:
    """``block_kernel(*head, b0, b1, *tail, product)`` for every block ``(b0, b1)``: all in
    one parallel call of ``parallel_kernel`` (``(*head, blocks, *tail, products)``), or one
    after the other in this thread where that cannot run in parallel (see
    ``_lanes.parallel_lane_threads``)."""
    threads = _lanes.parallel_lane_threads(blocks)
    with _lanes.single_threaded_blas(), Stage("gemm", threads=max(threads, 1)):
        if threads:
            parallel_kernel(*head, np.array(blocks, dtype=np.int64), *tail,
                            thread_scratch("product", threads, product_size, dtype))
        else:
            product = _scratch_buffer("product", product_size, dtype)
            for b0, b1 in blocks:
                block_kernel(*head, b0, b1, *tail, product)


def _widest(blocks: list[tuple[int, int]]) -> int:
    return max(b1 - b0 for b0, b1 in blocks)


def forward(x: np.ndarray, w_mat: np.ndarray, bias: np.ndarray | None, geom: ConvGeometry,
            out3: np.ndarray, workspace: int, im2col, fused: bool) -> None:
    """``out3`` (N, K, Q) = the convolution of ``x`` with ``w_mat`` (K, R) plus ``bias``
    (or None), by lanes of filters over the shared columns of a group of images; ``fused``:
    the blocks are Numba kernels (``_filter_kernels``), else NumPy products."""
    per_image = geom.multiply_adds // max(geom.n, 1)
    for g0, g1 in _image_groups(geom, x.itemsize, workspace):
        m = g1 - g0
        cols = _SharedColumns(x, geom, g0, g1, im2col, _lanes.in_lane()).matrix
        blocks = _blocks(geom.k, 1, per_image * m)
        if fused:
            _run_blocks(_filter_kernels.forward_blocks, _filter_kernels.forward_block, blocks,
                        (w_mat, cols, out3, g0, m),
                        (np.empty(0, x.dtype) if bias is None else bias,),
                        _widest(blocks) * m * geom.positions if m > 1 else 0, x.dtype)
            continue

        def lane(k0: int, k1: int, _: int, __: int, serial: bool, cols=cols,
                 out=out3[g0:g1]) -> None:
            if out.shape[0] == 1:
                with Stage("gemm"):
                    np.matmul(w_mat[k0:k1], cols, out=out[0, k0:k1])
                if bias is not None:
                    with Stage("bias"):
                        out[0, k0:k1] += bias[k0:k1, None]
            else:
                with Stage("gemm"):
                    product = w_mat[k0:k1] @ cols
                with Stage("bias"):  # the bias, added while the images are laid out
                    store_images_outer(product, out[:, k0:k1],
                                        None if bias is None else bias[k0:k1])

        run_lanes(lane, [(k0, k1, 0, 0) for k0, k1 in blocks])


def backward(x: np.ndarray, dout3: np.ndarray, w_mat: np.ndarray, geom: ConvGeometry,
             dx: np.ndarray, workspace: int, im2col, col2im, fused: bool, want_dx: bool = True,
             want_dw: bool = True) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Overwrite ``dx`` with the input gradient (if ``want_dx``) and return ``(dW_row, db)``
    ((K, R) and (K,); None without ``want_dw``), by lanes of input channels and of
    weight-gradient columns over a group of images at a time (``fused``: as in
    :func:`forward`)."""
    k, rows, ff, q = geom.k, geom.rows, geom.fh * geom.fw, geom.positions
    dw = np.empty((k, rows), dtype=x.dtype) if want_dw else None
    db = np.zeros(k, dtype=x.dtype) if want_dw else None
    per_image = geom.multiply_adds // max(geom.n, 1)
    channel_blocks = _blocks(geom.c, ff, per_image)
    serial = _lanes.in_lane()

    for g0, g1 in _image_groups(geom, x.itemsize, workspace):
        m = g1 - g0
        grad = images_inner(dout3[g0:g1])  # (K, m*Q)
        if want_dx:
            dcols = (np.empty((rows, m * q), dtype=x.dtype) if not geom.is_pointwise
                     else np.empty(0, dtype=x.dtype))
            if fused:
                _run_blocks(_filter_kernels.input_blocks, _filter_kernels.input_block,
                            channel_blocks, (w_mat, grad, dcols, dx[g0:g1]),
                            (geom.is_pointwise, *geom.kernel_args),
                            _widest(channel_blocks) * m * q if m > 1 else 0, x.dtype)
            else:
                run_lanes(lambda c0, c1, _, __, serial, grad=grad, dcols=dcols, g0=g0, g1=g1:
                          _input_lane(w_mat, grad, dcols, dx, geom, g0, g1, c0, c1, col2im,
                                      serial),
                          [(c0, c1, 0, 0) for c0, c1 in channel_blocks])
        if not want_dw:
            continue
        cols = _SharedColumns(x, geom, g0, g1, im2col, serial).matrix
        row_blocks = _blocks(rows, 1, per_image * m)
        if fused:
            _run_blocks(_filter_kernels.weight_blocks, _filter_kernels.weight_block,
                        row_blocks, (grad, cols, dw), (g0 == 0,),
                        0 if g0 == 0 else k * _widest(row_blocks), x.dtype)
        else:
            run_lanes(lambda r0, r1, _, __, serial, grad=grad, cols=cols, first=g0 == 0:
                      _weight_lane(grad, cols, dw, r0, r1, first),
                      [(r0, r1, 0, 0) for r0, r1 in row_blocks])
        with Stage("bias"):
            db += grad.sum(axis=1)
    return dw, db


def _input_lane(w_mat, grad, dcols, dx, geom, g0, g1, c0, c1, col2im, serial) -> None:
    """The NumPy input-gradient lane of channels c0:c1 of images g0:g1."""
    q, ff = geom.positions, geom.fh * geom.fw
    if geom.is_pointwise:  # the column gradient is the input gradient
        dx3 = dx[g0:g1].reshape(g1 - g0, geom.c, q)
        with Stage("gemm"):
            if g1 - g0 == 1:
                np.matmul(w_mat[:, c0:c1].T, grad, out=dx3[0, c0:c1])
            else:
                store_images_outer(w_mat[:, c0:c1].T @ grad, dx3[:, c0:c1])
        return
    with Stage("gemm"):
        np.matmul(w_mat[:, c0 * ff:c1 * ff].T, grad, out=dcols[c0 * ff:c1 * ff])
    wide = dcols.reshape(geom.rows, g1 - g0, q)
    with Stage("col2im"):
        for i in range(g1 - g0):
            col2im(wide, geom, dx[g0:g1], serial, wide=True,
                   planes=(i * geom.c + c0, i * geom.c + c1))


def _weight_lane(grad, cols, dw, r0, r1, first) -> None:
    """The NumPy lane of columns r0:r1 of the weight gradient: one product over the
    group's images."""
    with Stage("gemm"):
        if first:
            np.matmul(grad, cols[r0:r1].T, out=dw[:, r0:r1])
        else:
            dw[:, r0:r1] += grad @ cols[r0:r1].T
