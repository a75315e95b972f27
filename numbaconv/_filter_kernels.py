"""Numba kernels of the filter lanes (``_filter_lanes``): the products of one block.

A block is computed by one thread with single-threaded BLAS (``_lane_kernels._gemm``), as a
lane of images is: ``forward_block`` a block of filters, ``weight_block`` a block of columns
of the weight gradient, ``input_block`` a block of input channels of the input gradient.
Their ``..._blocks`` drivers run every block of a call in one parallel Numba call, each
thread with its own row of the ``product`` scratch; a caller that cannot start parallel
work (a call inside a lane) runs the block kernels one after the other.  A block writes
only its own part of the output, and every value is computed by the same product whichever
thread runs it: results are bitwise identical for any thread count and either way.

Each product is the one NumPy's ``matmul`` makes for the same operands (the same CBLAS call
with the same strides), and sums that NumPy adds after a product are added after it here too.
"""

from __future__ import annotations

import numpy as np
from numba import get_thread_id, njit, prange

from numbaconv._kernels import (
    _FALSE,
    _TRUE,
    _ZERO,
    _add_constant,
    _copy,
    col2im_blocks_serial,
)
from numbaconv._lane_kernels import _gemm


@njit(cache=True, nogil=True)
def forward_block(w_mat, cols, out3, g0, m, k0, k1, bias, product):
    """``out3[g0:g0+m, k0:k1]`` (N, K, Q) = ``w_mat[k0:k1] @ cols`` (cols ``(R, m*Q)``, the
    images side by side) plus ``bias[k0:k1]`` (empty: none).  ``product`` holds the block's
    product when ``m > 1``, before it is laid out image by image."""
    k_all, rows = w_mat.shape
    mq = cols.shape[1]
    q = mq // m
    single, size = w_mat.itemsize == 4, w_mat.itemsize
    out_flat = out3.reshape(out3.size)
    w_at = np.int64(w_mat.ctypes.data) + np.int64(k0) * rows * size
    cols_at = np.int64(cols.ctypes.data)
    if m == 1:
        o = (np.int64(g0) * k_all + k0) * q
        _gemm(single, _FALSE, _FALSE, k1 - k0, q, rows, w_at, rows, cols_at, mq, 0.0,
              np.int64(out3.ctypes.data) + o * size, q)
        if bias.size:
            for k in range(k0, k1):
                _add_constant(out_flat, (np.int64(g0) * k_all + k) * q, q, bias[k])
        return
    _gemm(single, _FALSE, _FALSE, k1 - k0, mq, rows, w_at, rows, cols_at, mq, 0.0,
          np.int64(product.ctypes.data), mq)
    for i in range(m):
        for k in range(k0, k1):
            o = ((np.int64(g0) + i) * k_all + k) * q
            s = (k - k0) * mq + i * q
            if bias.size:
                value = bias[k]
                for j in range(q):
                    out_flat[o + j] = product[s + j] + value
            else:
                _copy(out_flat, o, 1, product, s, 1, q)


@njit(cache=True, nogil=True)
def weight_block(grad, cols, dw, r0, r1, first, product):
    """Columns ``r0:r1`` of ``dw`` (K, R): ``grad @ cols[r0:r1].T`` (``grad`` (K, m*Q),
    ``cols`` (R, m*Q)), written if ``first``, else added (after the product, in
    ``product``)."""
    k, mq = grad.shape
    rows = dw.shape[1]
    single, size = grad.itemsize == 4, grad.itemsize
    grad_at = np.int64(grad.ctypes.data)
    cols_at = np.int64(cols.ctypes.data) + np.int64(r0) * mq * size
    width = r1 - r0
    if first:
        _gemm(single, _FALSE, _TRUE, k, width, mq, grad_at, mq, cols_at, mq, 0.0,
              np.int64(dw.ctypes.data) + np.int64(r0) * size, rows)
        return
    _gemm(single, _FALSE, _TRUE, k, width, mq, grad_at, mq, cols_at, mq, 0.0,
          np.int64(product.ctypes.data), width)
    dw_flat = dw.reshape(dw.size)
    for kk in range(k):
        o, s = np.int64(kk) * rows + r0, np.int64(kk) * width
        for j in range(width):
            dw_flat[o + j] += product[s + j]


@njit(cache=True, nogil=True)
def input_block(w_mat, grad, dcols, dx, c0, c1, pointwise, fh, fw, sh, sw, ph, pw, dh, dw, ho,
                wo, product):
    """Input channels ``c0:c1`` of ``dx`` (the group's images, ``(m, C, H, W)``): the
    column gradient ``W_row[:, rows of c0:c1].T @ grad`` (``grad`` (K, m*Q)) into ``dcols``
    ``(R, m*Q)``, then col2im into those planes of every image.  A pointwise layer's column
    gradient is the input gradient: written straight into ``dx`` for one image, through
    ``product`` for several."""
    k, rows = w_mat.shape
    m, n_ch = dx.shape[0], dx.shape[1]
    mq = grad.shape[1]
    q = mq // m
    ff = fh * fw
    single, size = w_mat.itemsize == 4, w_mat.itemsize
    w_at = np.int64(w_mat.ctypes.data) + np.int64(c0) * ff * size
    grad_at = np.int64(grad.ctypes.data)
    if pointwise:
        if m == 1:
            _gemm(single, _TRUE, _FALSE, c1 - c0, q, k, w_at, rows, grad_at, mq, 0.0,
                  np.int64(dx.ctypes.data) + np.int64(c0) * q * size, q)
            return
        _gemm(single, _TRUE, _FALSE, c1 - c0, mq, k, w_at, rows, grad_at, mq, 0.0,
              np.int64(product.ctypes.data), mq)
        dx_flat = dx.reshape(dx.size)
        for i in range(m):
            for c in range(c0, c1):
                _copy(dx_flat, (np.int64(i) * n_ch + c) * q, 1, product,
                      (c - c0) * np.int64(mq) + i * q, 1, q)
        return
    _gemm(single, _TRUE, _FALSE, (c1 - c0) * ff, mq, k, w_at, rows, grad_at, mq, 0.0,
          np.int64(dcols.ctypes.data) + np.int64(c0) * ff * mq * size, mq)
    wide = dcols.reshape(rows, m, q)
    for i in range(m):
        col2im_blocks_serial(wide, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, _ZERO, ho, dx, _TRUE,
                             _FALSE, np.int64(i) * n_ch + c0, np.int64(i) * n_ch + c1)


@njit(cache=True, parallel=True, nogil=True)
def forward_blocks(w_mat, cols, out3, g0, m, blocks, bias, product):
    """:func:`forward_block` for every row ``(k0, k1)`` of ``blocks``."""
    for b in prange(blocks.shape[0]):
        forward_block(w_mat, cols, out3, g0, m, blocks[b, 0], blocks[b, 1], bias,
                      product[get_thread_id()])


@njit(cache=True, parallel=True, nogil=True)
def weight_blocks(grad, cols, dw, blocks, first, product):
    """:func:`weight_block` for every row ``(r0, r1)`` of ``blocks``."""
    for b in prange(blocks.shape[0]):
        weight_block(grad, cols, dw, blocks[b, 0], blocks[b, 1], first,
                     product[get_thread_id()])


@njit(cache=True, parallel=True, nogil=True)
def input_blocks(w_mat, grad, dcols, dx, blocks, pointwise, fh, fw, sh, sw, ph, pw, dh, dw, ho,
                 wo, product):
    """:func:`input_block` for every row ``(c0, c1)`` of ``blocks``."""
    for b in prange(blocks.shape[0]):
        input_block(w_mat, grad, dcols, dx, blocks[b, 0], blocks[b, 1], pointwise, fh, fw, sh,
                    sw, ph, pw, dh, dw, ho, wo, product[get_thread_id()])
