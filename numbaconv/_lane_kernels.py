"""Whole lanes of a convolution as Numba kernels that never take the GIL.

A lane (see ``_lanes.py``) is a range of images that one thread computes from start to end:
tile by tile, im2col into a buffer, matrix products, and, backward, col2im.  Written as Python
calls, every step takes and releases the GIL, and the threads hand it to each other many times
per image; here the whole lane is one Numba call, and the products go straight to NumPy's own
OpenBLAS (``_blas.py``).  Products into strided outputs need no copy (``ldc``), and the weight
gradient is accumulated by the product itself (``beta = 1``).

These kernels do exactly what the Python lanes in ``functional.py`` do, in the same order, so
the two paths give the same tiles, products and sums; they are used when NumPy's OpenBLAS
symbols are available (``_blas.load_gemm()``).

``seconds`` (float64, length 4) accumulates the time spent in im2col, products, col2im and the
bias when ``profile`` is set, read with ``clock_gettime`` from inside the kernel, for
``functional.profile_stages``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types

from numbaconv._blas import NO_TRANS, ROW_MAJOR, TRANS, dgemm, sgemm
from numbaconv._kernels import _ROW_BLOCK, _col2im_blocks_item, _im2col_blocks_item

IM2COL, GEMM, COL2IM, BIAS = 0, 1, 2, 3  # indices into ``seconds``

_clock_gettime = types.ExternalFunction("clock_gettime", types.int32(types.int32, types.intp))
_CLOCK_MONOTONIC = 1


@njit(cache=True, inline="always")
def _now(profile, clock):
    """Seconds on the monotonic clock (``clock`` is a 2-int64 scratch array), 0 if not profiling."""
    if not profile:
        return 0.0
    _clock_gettime(np.int32(_CLOCK_MONOTONIC), clock.ctypes.data)
    return clock[0] + clock[1] * 1e-9


@njit(cache=True, inline="always")
def _gemm(trans_b, m, n, k, a, a_off, lda, b, b_off, ldb, beta, c, c_off, ldc):
    """``c[c_off:]`` (m x n, row stride ldc) = ``a[a_off:]`` (m x k) @ op(``b[b_off:]``)
    + beta * ``c``, with op the transpose if ``trans_b``; row-major, offsets in elements."""
    size = a.itemsize
    a_ptr = a.ctypes.data + a_off * size
    b_ptr = b.ctypes.data + b_off * size
    c_ptr = c.ctypes.data + c_off * size
    op_b = np.int32(TRANS if trans_b else NO_TRANS)
    if size == 4:
        sgemm(np.int32(ROW_MAJOR), np.int32(NO_TRANS), op_b, m, n, k, np.float32(1.0), a_ptr,
              lda, b_ptr, ldb, np.float32(beta), c_ptr, ldc)
    else:
        dgemm(np.int32(ROW_MAJOR), np.int32(NO_TRANS), op_b, m, n, k, 1.0, a_ptr, lda, b_ptr,
              ldb, np.float64(beta), c_ptr, ldc)


@njit(cache=True, inline="always")
def _im2col_tile(x, m0, m1, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, i0, i1, cols, rows_alloc,
                 wide):
    """Columns of images ``m0:m1`` for output rows ``i0:i1`` into ``cols`` (flat), laid out
    ``(m, rows_alloc, q)`` or, if ``wide``, ``(rows_alloc, m, q)``; the last row is ones when
    ``rows_alloc`` exceeds ``C*fh*fw``."""
    n_img = m1 - m0
    n_ch, h, w = x.shape[1], x.shape[2], x.shape[3]
    src = x[m0:m1].reshape(n_img * n_ch * h * w)
    for t in range(np.int64(n_img) * n_ch * fh):
        _im2col_blocks_item(src, cols, t, n_img, n_ch, h, w, fh, fw, sh, sw, ph, pw, dh, dw, ho,
                            wo, i0, i1, rows_alloc, wide)
    rows = np.int64(n_ch) * fh * fw
    if rows_alloc > rows:
        q = np.int64(i1 - i0) * wo
        for m in range(n_img):
            start = rows * n_img * q + m * q if wide else (m * rows_alloc + rows) * q
            cols[start:start + q] = 1


@njit(cache=True, inline="always")
def _col2im_tile(dcols, m0, m1, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, i0, i1, dx, wide):
    """col2im of the column gradient ``dcols`` (flat, ``(m, R, q)`` or ``(R, m, q)``) of images
    ``m0:m1`` and output rows ``i0:i1`` into ``dx``, adding to it unless ``i0 == 0``."""
    n_img = m1 - m0
    n_ch, h, w = dx.shape[1], dx.shape[2], dx.shape[3]
    dst = dx[m0:m1].reshape(n_img * n_ch * h * w)
    rows_per_block = max(1, _ROW_BLOCK // w)
    blocks = (h + rows_per_block - 1) // rows_per_block
    rows = np.int64(n_ch) * fh * fw
    for t in range(np.int64(n_img) * n_ch * blocks):
        _col2im_blocks_item(dcols, dst, t, blocks, rows_per_block, n_img, n_ch, h, w, fh, fw, sh,
                            sw, ph, pw, dh, dw, ho, wo, i0, i1, rows, wide, i0 > 0)


@njit(cache=True, nogil=True)
def forward_lane(x, w_ext, bias, out3, n0, n1, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo,
                 images, out_rows, wide, bias_row, cols, wide_out, profile, seconds):
    """``out3[n0:n1]`` (N, K, Q) = convolution of ``x[n0:n1]`` with ``w_ext`` (K, R + bias_row)
    (whose last column is the bias when ``bias_row``), tile by tile; without a row of ones
    (pointwise), ``x`` is its own columns and ``bias`` (empty: none) is added afterwards."""
    clock = np.zeros(2, dtype=np.int64)
    k_out, rows_ext = w_ext.shape
    q_all = np.int64(ho) * wo
    w_flat = w_ext.reshape(w_ext.size)
    out_flat = out3.reshape(out3.size)
    x_flat = x.reshape(x.size)
    for m0 in range(n0, n1, images):
        m1 = min(m0 + images, n1)
        for i0 in range(0, ho, out_rows):
            i1 = min(i0 + out_rows, ho)
            q = np.int64(i1 - i0) * wo
            t0 = _now(profile, clock)
            if bias_row:
                _im2col_tile(x, m0, m1, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, i0, i1, cols,
                             rows_ext, wide)
            t1 = _now(profile, clock)
            if wide:  # one (K, m*Q) product, then (K, m, Q) -> (m, K, Q)
                mq = (m1 - m0) * q
                _gemm(False, k_out, mq, rows_ext, w_flat, 0, rows_ext, cols, 0, mq, 0.0,
                      wide_out, 0, mq)
                for m in range(m1 - m0):
                    for k in range(k_out):
                        o = ((m0 + m) * k_out + k) * q_all
                        out_flat[o:o + q] = wide_out[k * mq + m * q:k * mq + m * q + q]
            else:
                for m in range(m0, m1):
                    if bias_row:
                        b_off, ldb = (m - m0) * rows_ext * q, q
                    else:  # pointwise: the columns are x[m] itself
                        b_off, ldb = m * rows_ext * q_all + i0 * wo, q_all
                    _gemm(False, k_out, q, rows_ext, w_flat, 0, rows_ext,
                          cols if bias_row else x_flat, b_off, ldb, 0.0,
                          out_flat, m * k_out * q_all + i0 * wo, q_all)
            t2 = _now(profile, clock)
            if bias.size:
                for m in range(m0, m1):
                    for k in range(k_out):
                        o = (m * k_out + k) * q_all + i0 * wo
                        out_flat[o:o + q] += bias[k]
            t3 = _now(profile, clock)
            if profile:
                seconds[IM2COL] += t1 - t0
                seconds[GEMM] += t2 - t1
                seconds[BIAS] += t3 - t2


@njit(cache=True, nogil=True)
def backward_lane(x, dout3, w_col, dx, dw_lane, n0, n1, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo,
                  images, out_rows, wide, bias_row, cols, dcols, grad, profile, seconds):
    """``dx[n0:n1]``, and ``dw_lane`` (K, R + 1) += the part of images ``n0:n1`` in
    ``[dW_row | db]``, tile by tile.  ``dw_lane`` must start zeroed."""
    clock = np.zeros(2, dtype=np.int64)
    rows, k_out = w_col.shape
    rows_ext = rows + 1 if bias_row else rows
    q_all = np.int64(ho) * wo
    pointwise = not bias_row
    wc_flat = w_col.reshape(w_col.size)
    dout_flat = dout3.reshape(dout3.size)
    dw_flat = dw_lane.reshape(dw_lane.size)
    x_flat = x.reshape(x.size)
    dx_flat = dx.reshape(dx.size)
    ones = np.ones(0 if bias_row else out_rows * wo, dtype=dout3.dtype)
    for m0 in range(n0, n1, images):
        m1 = min(m0 + images, n1)
        for i0 in range(0, ho, out_rows):
            i1 = min(i0 + out_rows, ho)
            q = np.int64(i1 - i0) * wo
            t0 = _now(profile, clock)
            if bias_row:
                _im2col_tile(x, m0, m1, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, i0, i1, cols,
                             rows_ext, wide)
            t1 = _now(profile, clock)
            if wide:  # dout[m0:m1] as one (K, m*Q) matrix, for one product each
                mq = (m1 - m0) * q
                for m in range(m1 - m0):
                    for k in range(k_out):
                        o = ((m0 + m) * k_out + k) * q_all
                        grad[k * mq + m * q:k * mq + m * q + q] = dout_flat[o:o + q]
                _gemm(True, k_out, rows_ext, mq, grad, 0, mq, cols, 0, mq, 1.0, dw_flat, 0,
                      rows + 1)
                _gemm(False, rows, mq, k_out, wc_flat, 0, k_out, grad, 0, mq, 0.0, dcols, 0, mq)
            else:
                for m in range(m0, m1):
                    g_off = m * k_out * q_all + i0 * wo
                    if bias_row:
                        b_off, ldb = (m - m0) * rows_ext * q, q
                    else:
                        b_off, ldb = m * rows * q_all + i0 * wo, q_all
                    _gemm(True, k_out, rows_ext, q, dout_flat, g_off, q_all,
                          cols if bias_row else x_flat, b_off, ldb, 1.0, dw_flat, 0, rows + 1)
                    if pointwise:  # the column gradient is the input gradient
                        _gemm(False, rows, q, k_out, wc_flat, 0, k_out, dout_flat, g_off, q_all,
                              0.0, dx_flat, m * rows * q_all + i0 * wo, q_all)
                    else:
                        _gemm(False, rows, q, k_out, wc_flat, 0, k_out, dout_flat, g_off, q_all,
                              0.0, dcols, (m - m0) * rows * q, q)
            t2 = _now(profile, clock)
            if not pointwise:
                _col2im_tile(dcols, m0, m1, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, i0, i1, dx,
                             wide)
            t3 = _now(profile, clock)
            if pointwise:  # no row of ones: db += dout tile @ ones, as a product too
                for m in range(m0, m1):
                    _gemm(False, k_out, 1, q, dout_flat, m * k_out * q_all + i0 * wo, q_all,
                          ones, 0, 1, 1.0, dw_flat, rows, rows + 1)
            t4 = _now(profile, clock)
            if profile:
                seconds[IM2COL] += t1 - t0
                seconds[GEMM] += t2 - t1
                seconds[COL2IM] += t3 - t2
                seconds[BIAS] += t4 - t3
