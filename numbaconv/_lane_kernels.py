"""Whole lanes of a convolution as Numba kernels that never take the GIL.

A lane (see ``_lanes.py``) is a range of images that one thread computes from start to end:
tile by tile, im2col into a buffer, matrix products, and, backward, col2im.  Written as Python
calls, every step takes and releases the GIL, and the threads hand it to each other many times
per image; here the whole lane is one Numba call, and the products go straight to NumPy's own
OpenBLAS (``_blas.py``).  Products into strided outputs need no copy (``ldc``), and the weight
gradient is accumulated by the product itself (``beta = 1``).

These kernels do what the NumPy lanes in ``functional.py`` do, tile by tile in the same order;
the weight gradient is summed inside the products rather than through a temporary, so the two
paths agree to rounding, not bit for bit (each is deterministic on its own).  They are used
when NumPy's OpenBLAS symbols are available (``_blas.load_gemm()``) on Linux and macOS.

``seconds`` (float64, length 4; None when not profiling, so that no clock code is compiled)
accumulates the time spent in im2col, products, col2im and the bias, read with the C library's
``clock_gettime`` from inside the kernel, for ``_stages.profile_stages`` (Windows has no
``clock_gettime``: there the NumPy lanes run).

Compile time (the first call with an empty Numba cache) is kept down by the structure: the
lanes are the only kernels Python calls here; what they share with other kernels (the im2col
and col2im work items, the stride-phase split) is compiled once, as kernels of its own that
Numba links in (each level of linking re-optimises what it links, so there are two levels);
what only a lane uses is inlined into it; arguments that are None (``phases``, ``dphases``,
``seconds``) make Numba drop the code that uses them before it types it.
"""

from __future__ import annotations

import sys

import numpy as np
from numba import get_thread_id, njit, prange, types

from numbaconv._blas import NO_TRANS, ROW_MAJOR, TRANS, dgemm, sgemm
from numbaconv._kernels import (
    _FALSE,
    _ONE,
    _TRUE,
    INTERNAL,
    _add_constant,
    _col2im_blocks_item,
    _copy,
    _im2col_blocks_item,
    _sum,
    col2im_row_blocks,
    merge_stride_phases,
    reached_row_blocks,
    split_by_stride_phase,
)

IM2COL, GEMM, COL2IM, BIAS = 0, 1, 2, 3  # indices into ``seconds``

#: Whether these kernels can be compiled here (they need the C library's clock_gettime).
PLATFORM_OK = sys.platform.startswith(("linux", "darwin"))
_clock_gettime = types.ExternalFunction("clock_gettime", types.int32(types.int32, types.intp))
_CLOCK_MONOTONIC = 6 if sys.platform == "darwin" else 1  # the clock ids differ


@njit(**INTERNAL)
def _now(seconds, clock):
    """Seconds on the monotonic clock (``clock`` is a 2-int64 scratch array); 0 if not profiling
    (``seconds`` None: Numba then compiles no clock reads at all)."""
    if seconds is None:
        return 0.0
    _clock_gettime(np.int32(_CLOCK_MONOTONIC), clock.ctypes.data)
    return clock[0] + clock[1] * 1e-9


@njit(**INTERNAL)
def _gemm(single, trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc):
    """``c`` (m x n, row stride ldc) = op(``a``) (m x k) @ op(``b``) + beta * ``c``, row-major,
    with op the transpose if ``trans_a`` / ``trans_b``; ``a``, ``b``, ``c`` are the addresses
    of float32 (``single``) or float64 matrices.  (BLAS transposes as it packs: the weights'
    transpose in the input gradient costs no copy.)

    The callers pass the flags as bools, ``beta`` as a float64 and everything else as int64
    (addresses converted once): one signature, compiled once."""
    op_a = np.int32(TRANS if trans_a else NO_TRANS)
    op_b = np.int32(TRANS if trans_b else NO_TRANS)
    if single:
        sgemm(np.int32(ROW_MAJOR), op_a, op_b, m, n, k, np.float32(1.0), a, lda, b, ldb,
              np.float32(beta), c, ldc)
    else:
        dgemm(np.int32(ROW_MAJOR), op_a, op_b, m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc)


@njit(cache=True, inline="always")
def _dw_gemm(single, transposed, k_out, rows_ext, q, g_at, ldg, cols_at, ldcols, beta, dw_at,
             ld_dw):
    """The weight-gradient product of one tile, with ``g`` (K x q) the output gradient and
    ``cols`` (rows_ext x q) the columns: ``dw`` (K x rows_ext, row stride ``ld_dw``) =
    g @ cols^T, or, if ``transposed``, ``dw^T`` (rows_ext x K) = cols @ g^T; plus ``beta``
    times ``dw``."""
    if transposed:
        _gemm(single, _FALSE, _TRUE, rows_ext, k_out, q, cols_at, ldcols, g_at, ldg, beta,
              dw_at, ld_dw)
    else:
        _gemm(single, _FALSE, _TRUE, k_out, rows_ext, q, g_at, ldg, cols_at, ldcols, beta,
              dw_at, ld_dw)


@njit(cache=True, inline="always")
def _im2col_tile(x, m0, m1, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, i0, i1, cols, rows_alloc,
                 wide, phases, split):
    """Columns of images ``m0:m1`` for output rows ``i0:i1`` into ``cols`` (flat), laid out
    ``(m, rows_alloc, q)`` or, if ``wide``, ``(rows_alloc, m, q)``; the last row is ones when
    ``rows_alloc`` exceeds ``C*fh*fw``.

    If ``phases`` is not None, the columns are read from it: the whole batch split by stride
    phase (``_kernels.split_by_stride_phase``), which a strided im2col copies in contiguous
    runs.  With ``split``, the images' part of it is made from ``x`` with their first rows
    (``i0 == 0``); otherwise it is there already and only the shape of ``x`` is read.
    (Inlined into the lanes: with ``phases`` None, Numba drops the phase code before typing
    it, so the lanes of unsplit inputs do not compile it.)"""
    n_img = m1 - m0
    n_ch, h, w = x.shape[1], x.shape[2], x.shape[3]
    if phases is not None:
        image = phases.size // x.shape[0]
        src = phases[m0 * image:m1 * image]
        if split and i0 == 0:
            split_by_stride_phase(x.reshape(x.size), m0 * n_ch, n_img * n_ch, h, w, sh, sw,
                                  src)
        for t in range(np.int64(n_img) * n_ch * fh):
            _im2col_blocks_item(src, cols, t, n_img, n_ch, h, w, fh, fw, sh, sw, ph, pw, dh,
                                dw, ho, wo, i0, i1, rows_alloc, wide, _TRUE)
    else:
        src = x[m0:m1].reshape(n_img * n_ch * h * w)
        for t in range(np.int64(n_img) * n_ch * fh):
            _im2col_blocks_item(src, cols, t, n_img, n_ch, h, w, fh, fw, sh, sw, ph, pw, dh,
                                dw, ho, wo, i0, i1, rows_alloc, wide, _FALSE)
    rows = np.int64(n_ch) * fh * fw
    if rows_alloc > rows:
        q = np.int64(i1 - i0) * wo
        for m in range(n_img):
            start = rows * n_img * q + m * q if wide else (m * rows_alloc + rows) * q
            for j in range(q):
                cols[start + j] = 1


@njit(cache=True, inline="always")
def _col2im_tile(dcols, m0, m1, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, i0, i1, dx, wide,
                 dphases, accumulate):
    """col2im of the column gradient ``dcols`` (flat, ``(m, R, q)`` or ``(R, m, q)``) of images
    ``m0:m1`` and output rows ``i0:i1`` into ``dx``, adding to it if ``accumulate`` or
    ``i0 > 0`` (else overwriting the images' whole ``dx``).  Adding, it writes only the input
    rows that those output rows reach.

    If ``dphases`` is not None, the sums are kept in it, split by stride phase, and written
    to ``dx`` after the images' last rows (see :func:`_im2col_tile`; inlined the same way)."""
    n_img = m1 - m0
    n_ch, h, w = dx.shape[1], dx.shape[2], dx.shape[3]
    rows_per_block, blocks = col2im_row_blocks(h, w)
    rows = np.int64(n_ch) * fh * fw
    adding = np.bool_(accumulate or i0 > 0)
    k0, k1 = reached_row_blocks(h, rows_per_block, blocks, sh, ph, fh, dh, i0, i1, adding)
    dst = dx[m0:m1].reshape(n_img * n_ch * h * w)
    for plane in range(np.int64(n_img) * n_ch):
        for k in range(k0, k1):
            if dphases is not None:
                _col2im_blocks_item(dcols, dphases, plane * blocks + k, blocks, rows_per_block,
                                    n_img, n_ch, h, w, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo,
                                    i0, i1, rows, wide, adding, _TRUE)
            else:
                _col2im_blocks_item(dcols, dst, plane * blocks + k, blocks, rows_per_block,
                                    n_img, n_ch, h, w, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo,
                                    i0, i1, rows, wide, adding, None)
    if dphases is not None and i1 == ho:
        merge_stride_phases(dphases, m0 * n_ch, n_img * n_ch, h, w, sh, sw,
                            dx.reshape(dx.size))


@njit(cache=True, nogil=True)
def forward_lane(x, x_kept, w_ext, bias, out3, n0, n1, r0, r1, fh, fw, sh, sw, ph, pw, dh, dw,
                 ho, wo, images, out_rows, wide, bias_row, cols, wide_out, phases, seconds):
    """``out3[n0:n1]`` (N, K, Q), output rows ``r0:r1``, = convolution of ``x[n0:n1]`` with
    ``w_ext`` (K, R + bias_row)
    (whose last column is the bias when ``bias_row``), tile by tile; without a row of ones
    (pointwise), ``x`` is its own columns and ``bias`` (empty: none) is added afterwards.

    Unless ``x_kept`` is ``x``, the images are also copied into it, each just before its first
    tile: im2col then reads them from the cache, not from memory a second time.  A ``phases``
    array (the whole batch's size; None: no split) receives the images split by stride phase,
    which im2col reads, and which the backward pass reads again."""
    clock = np.empty(2, dtype=np.int64)  # written by clock_gettime before it is read
    single, size = x.itemsize == 4, x.itemsize
    k_out, rows_ext = w_ext.shape
    q_all = np.int64(ho) * wo
    out_flat = out3.reshape(out3.size)
    x_flat, x_kept_flat = x.reshape(x.size), x_kept.reshape(x_kept.size)
    image = np.int64(x.shape[1]) * x.shape[2] * x.shape[3]
    # Addresses for the products, as int64 (offsets below are in elements).
    w_at, out_at = np.int64(w_ext.ctypes.data), np.int64(out3.ctypes.data)
    cols_at, x_at = np.int64(cols.ctypes.data), np.int64(x.ctypes.data)
    wide_at = np.int64(wide_out.ctypes.data)
    # Tiles of images m0:m1 and output rows i0:i1, in order (functional.plan_tiling chose
    # their sizes).
    for m0 in range(n0, n1, images):
        m1 = min(m0 + images, n1)
        for i0 in range(r0, r1, out_rows):
            i1 = min(i0 + out_rows, r1)
            q = (i1 - i0) * wo
            if i0 == 0 and x_at != np.int64(x_kept.ctypes.data):
                _copy(x_kept_flat, m0 * image, 1, x_flat, m0 * image, 1, (m1 - m0) * image)
            t0 = _now(seconds, clock)
            if bias_row:
                _im2col_tile(x, m0, m1, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, i0, i1, cols,
                             rows_ext, wide, phases, _TRUE)
            t1 = _now(seconds, clock)
            if wide:  # one (K, m*Q) product, then (K, m, Q) -> (m, K, Q)
                mq = (m1 - m0) * q
                _gemm(single, _FALSE, _FALSE, k_out, mq, rows_ext, w_at, rows_ext, cols_at, mq,
                      0.0,
                      wide_at, mq)
                for m in range(m1 - m0):
                    for k in range(k_out):
                        o, p = ((m0 + m) * k_out + k) * q_all, k * mq + m * q
                        for j in range(q):
                            out_flat[o + j] = wide_out[p + j]
            else:
                for m in range(m0, m1):
                    if bias_row:
                        b_at, ldb = cols_at + (m - m0) * rows_ext * q * size, q
                    else:  # pointwise: the columns are x[m] itself
                        b_at, ldb = x_at + (m * rows_ext * q_all + i0 * wo) * size, q_all
                    _gemm(single, _FALSE, _FALSE, k_out, q, rows_ext, w_at, rows_ext, b_at, ldb,
                          0.0,
                          out_at + (m * k_out * q_all + i0 * wo) * size, q_all)
                    if bias.size:  # pointwise: add the bias while the image's output is cached
                        t2 = _now(seconds, clock)
                        for k in range(k_out):
                            _add_constant(out_flat, (m * k_out + k) * q_all + i0 * wo, q, bias[k])
                        t3 = _now(seconds, clock)
                        if seconds is not None:
                            seconds[BIAS] += t3 - t2
                            seconds[GEMM] -= t3 - t2
            t2 = _now(seconds, clock)
            if seconds is not None:
                seconds[IM2COL] += t1 - t0
                seconds[GEMM] += t2 - t1


@njit(cache=True, nogil=True)
def backward_lane(x, dout3, w_mat, dx, dw_lane, dw_transposed, add_dw, n0, n1, r0, r1,
                  accumulate, want_dx, want_dw, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, images,
                  out_rows, wide, bias_row, cols, dcols, grad, phases, dphases, seconds):
    """``dx[n0:n1]``, and ``dw_lane`` = the part of images ``n0:n1`` (output rows ``r0:r1``)
    in ``[dW_row | db]`` (K, R + 1), or its transpose (R + 1, K) if ``dw_transposed``, tile by
    tile.  ``dw_lane`` is overwritten (its first product has ``beta = 0``), or, with
    ``add_dw``, added to (the grouped lanes sum a group's images into one part).  With
    ``accumulate``, col2im adds into ``dx`` (zeroed by the caller) rather than overwriting
    it: lanes that are row blocks of one image share the input rows their windows overlap.
    Without ``want_dx`` (``want_dw``), ``dx`` (``dw_lane``) is left as it is: the transposed
    convolution uses one or the other.

    A ``phases`` array (None: no split) holds the forward input split by stride phase (see
    :func:`forward_lane`); im2col reads it, and ``x`` then only gives the input's shape.  A
    ``dphases`` array (None: none) receives the input gradient split by stride phase before it
    is merged into ``dx``."""
    clock = np.empty(2, dtype=np.int64)  # written by clock_gettime before it is read
    single, size = x.itemsize == 4, x.itemsize
    k_out, rows = w_mat.shape
    rows_ext = rows + 1 if bias_row else rows
    q_all = np.int64(ho) * wo
    pointwise = not bias_row
    dout_flat = dout3.reshape(dout3.size)
    dw_flat = dw_lane.reshape(dw_lane.size)
    # Addresses for the products, as int64 (offsets below are in elements).
    w_at, dout_at = np.int64(w_mat.ctypes.data), np.int64(dout3.ctypes.data)
    dw_at, x_at = np.int64(dw_lane.ctypes.data), np.int64(x.ctypes.data)
    dx_at = np.int64(dx.ctypes.data)
    cols_at, dcols_at = np.int64(cols.ctypes.data), np.int64(dcols.ctypes.data)
    grad_at = np.int64(grad.ctypes.data)
    # db, the gradient of the row of ones, is dw_lane's last column (or row, transposed)
    db_at, db_step = (rows * k_out, 1) if dw_transposed else (rows, rows + 1)
    ld_dw = k_out if dw_transposed else rows + 1
    if pointwise and not add_dw:  # db is summed outside the products
        for k in range(k_out):
            dw_flat[db_at + k * db_step] = 0
    beta = 1.0 if add_dw else 0.0  # the lane's first product of dw overwrites it, or adds
    # Tiles of images m0:m1 and output rows i0:i1, in order (functional.plan_tiling chose
    # their sizes).
    for m0 in range(n0, n1, images):
        m1 = min(m0 + images, n1)
        for i0 in range(r0, r1, out_rows):
            i1 = min(i0 + out_rows, r1)
            q = (i1 - i0) * wo
            t0 = _now(seconds, clock)
            if bias_row and want_dw:
                _im2col_tile(x, m0, m1, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, i0, i1, cols,
                             rows_ext, wide, phases, _FALSE)
            t1 = _now(seconds, clock)
            if wide:  # dout[m0:m1] as one (K, m*Q) matrix, for one product each
                mq = (m1 - m0) * q
                for m in range(m1 - m0):
                    for k in range(k_out):
                        o, p = ((m0 + m) * k_out + k) * q_all, k * mq + m * q
                        for j in range(q):
                            grad[p + j] = dout_flat[o + j]
                if want_dw:
                    _dw_gemm(single, dw_transposed, k_out, rows_ext, mq, grad_at, mq, cols_at, mq,
                             beta, dw_at, ld_dw)
                beta = 1.0
                if want_dx:
                    _gemm(single, _TRUE, _FALSE, rows, mq, k_out, w_at, rows, grad_at, mq, 0.0,
                          dcols_at, mq)
            else:
                for m in range(m0, m1):
                    g_at = dout_at + (m * k_out * q_all + i0 * wo) * size
                    if bias_row:
                        b_at, ldb = cols_at + (m - m0) * rows_ext * q * size, q
                    else:
                        b_at, ldb = x_at + (m * rows * q_all + i0 * wo) * size, q_all
                    if want_dw:
                        _dw_gemm(single, dw_transposed, k_out, rows_ext, q, g_at, q_all, b_at, ldb,
                                 beta, dw_at, ld_dw)
                    beta = 1.0
                    if pointwise:  # the column gradient is the input gradient
                        if want_dx:
                            _gemm(single, _TRUE, _FALSE, rows, q, k_out, w_at, rows, g_at, q_all,
                                  0.0,
                                  dx_at + (m * rows * q_all + i0 * wo) * size, q_all)
                        # No row of ones: db is summed here, while the image's dout is cached.
                        t3 = _now(seconds, clock)
                        for k in range(k_out):
                            dw_flat[db_at + k * db_step] += _sum(
                                dout_flat, (m * k_out + k) * q_all + i0 * wo, q)
                        t4 = _now(seconds, clock)
                        if seconds is not None:
                            seconds[BIAS] += t4 - t3
                            seconds[GEMM] -= t4 - t3
                    elif want_dx:
                        _gemm(single, _TRUE, _FALSE, rows, q, k_out, w_at, rows, g_at, q_all,
                              0.0,
                              dcols_at + (m - m0) * rows * q * size, q)
            t2 = _now(seconds, clock)
            if not pointwise and want_dx:
                _col2im_tile(dcols, m0, m1, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, i0, i1, dx,
                             wide, dphases, accumulate)
            t3 = _now(seconds, clock)
            if seconds is not None:
                seconds[IM2COL] += t1 - t0
                seconds[GEMM] += t2 - t1
                seconds[COL2IM] += t3 - t2


# --- every lane of a call in one parallel call -----------------------------------------------
#
# Lane k is row k of ``lanes`` (n0, n1, r0, r1).  Each thread works in its own row of the
# scratch arrays (``cols[get_thread_id()]`` ...); lanes write disjoint parts of the outputs, so
# which thread runs which lane changes no result.


@njit(cache=True, parallel=True, nogil=True)
def forward_lanes(lanes, x, x_kept, w_ext, bias, out3, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo,
                  images, out_rows, wide, bias_row, cols, wide_out, phases, seconds):
    """:func:`forward_lane` for every lane; ``seconds`` is None or one row per lane."""
    for k in prange(lanes.shape[0]):
        t = get_thread_id()
        n0, n1, r0, r1 = lanes[k, 0], lanes[k, 1], lanes[k, 2], lanes[k, 3]
        if seconds is None:
            forward_lane(x, x_kept, w_ext, bias, out3, n0, n1, r0, r1, fh, fw, sh, sw, ph, pw,
                         dh, dw, ho, wo, images, out_rows, wide, bias_row, cols[t],
                         wide_out[t], phases, None)
        else:
            forward_lane(x, x_kept, w_ext, bias, out3, n0, n1, r0, r1, fh, fw, sh, sw, ph, pw,
                         dh, dw, ho, wo, images, out_rows, wide, bias_row, cols[t],
                         wide_out[t], phases, seconds[k])


@njit(cache=True, parallel=True, nogil=True)
def backward_lanes(lanes, x, dout3, w_mat, dx, dw_parts, dw_transposed, accumulate, want_dx,
                   want_dw, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, images, out_rows, wide,
                   bias_row, cols, dcols, grad, phases, dphases, seconds, dw_total, first):
    """:func:`backward_lane` for every lane, lane k's part of the weight gradient into
    ``dw_parts[k]``; then, with ``want_dw``, the parts added to ``dw_total`` in lane order
    (``first``: ``dw_total`` is the first part, not what it holds).  Every entry is summed
    in that order, by one thread: the same sums for any thread count."""
    for k in prange(lanes.shape[0]):
        t = get_thread_id()
        n0, n1, r0, r1 = lanes[k, 0], lanes[k, 1], lanes[k, 2], lanes[k, 3]
        # None arguments select what is compiled, so each call names them.  (One test per
        # branch: Numba prunes ``a is None`` by type, but typed every branch of an ``and``.)
        if dphases is None:
            if seconds is None:
                backward_lane(x, dout3, w_mat, dx, dw_parts[k], dw_transposed, _FALSE, n0, n1,
                              r0, r1, accumulate, want_dx, want_dw, fh, fw, sh, sw, ph, pw, dh,
                              dw, ho, wo, images, out_rows, wide, bias_row, cols[t], dcols[t],
                              grad[t], phases, None, None)
            else:
                backward_lane(x, dout3, w_mat, dx, dw_parts[k], dw_transposed, _FALSE, n0, n1,
                              r0, r1, accumulate, want_dx, want_dw, fh, fw, sh, sw, ph, pw, dh,
                              dw, ho, wo, images, out_rows, wide, bias_row, cols[t], dcols[t],
                              grad[t], phases, None, seconds[k])
        else:
            if seconds is None:
                backward_lane(x, dout3, w_mat, dx, dw_parts[k], dw_transposed, _FALSE, n0, n1,
                              r0, r1, accumulate, want_dx, want_dw, fh, fw, sh, sw, ph, pw, dh,
                              dw, ho, wo, images, out_rows, wide, bias_row, cols[t], dcols[t],
                              grad[t], phases, dphases[t], None)
            else:
                backward_lane(x, dout3, w_mat, dx, dw_parts[k], dw_transposed, _FALSE, n0, n1,
                              r0, r1, accumulate, want_dx, want_dw, fh, fw, sh, sw, ph, pw, dh,
                              dw, ho, wo, images, out_rows, wide, bias_row, cols[t], dcols[t],
                              grad[t], phases, dphases[t], seconds[k])
    if want_dw:
        parts = dw_parts.reshape(dw_parts.shape[0], dw_total.size)
        total = dw_total.reshape(dw_total.size)
        n_parts = lanes.shape[0]
        for e in prange(total.size):
            acc = parts[0, e] if first else total[e] + parts[0, e]
            for k in range(1, n_parts):
                acc += parts[k, e]
            total[e] = acc


# --- the lanes of every group of a grouped convolution in one parallel call -------------------
#
# The arrays are the convolution's own, viewed as ``N * G`` images of one group each: image
# ``n * G + g`` of ``x5`` (N*G, C/G, H, W) is group g's channels of image n, contiguous, and so
# are ``out5``, ``dout5`` (N*G, K/G, Q) and ``dx5``.  Item k is row k of ``items``
# (g, n0, n1, r0, r1): lane (n0, n1, r0, r1) of group g, one image at a time (the images of
# one group are G apart), so the tiling has one image per tile and is never wide: ``cols[t]``
# and ``dcols[t]`` stand in for the wide layout's buffers, which the lanes then do not touch.


@njit(cache=True, parallel=True, nogil=True)
def grouped_forward_lanes(items, groups, x5, x_kept5, w_ext, bias, out5, fh, fw, sh, sw, ph, pw,
                          dh, dw, ho, wo, out_rows, bias_row, cols, phases, seconds):
    """:func:`forward_lane` of every item, group ``g`` with ``w_ext[g]`` and ``bias[g]``,
    copying each image into ``x_kept5`` unless it is ``x5``, or splitting it by stride phase
    into ``phases`` (None: no split); ``seconds`` is None or one row per item."""
    for k in prange(items.shape[0]):
        t = get_thread_id()
        g, r0, r1 = items[k, 0], items[k, 3], items[k, 4]
        for n in range(items[k, 1], items[k, 2]):
            i = n * groups + g
            if seconds is None:
                forward_lane(x5, x_kept5, w_ext[g], bias[g], out5, i, i + 1, r0, r1, fh, fw, sh,
                             sw, ph, pw, dh, dw, ho, wo, _ONE, out_rows, _FALSE, bias_row,
                             cols[t], cols[t], phases, None)
            else:
                forward_lane(x5, x_kept5, w_ext[g], bias[g], out5, i, i + 1, r0, r1, fh, fw, sh,
                             sw, ph, pw, dh, dw, ho, wo, _ONE, out_rows, _FALSE, bias_row,
                             cols[t], cols[t], phases, seconds[k])


@njit(cache=True, parallel=True, nogil=True)
def grouped_backward_lanes(items, groups, x5, dout5, w_mat, dx5, dw_parts, dw_transposed,
                           accumulate, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, out_rows,
                           bias_row, cols, dcols, phases, dphases, seconds):
    """:func:`backward_lane` of every item, the sum of its images' parts of its group's
    ``[dW | db]`` into ``dw_parts[k]`` (in image order).  ``phases`` (None: none) is the
    input split by stride phase, ``dphases`` (None: none) one scratch row per thread for the
    input gradient split by stride phase; ``seconds`` is None or one row per item."""
    for k in prange(items.shape[0]):
        t = get_thread_id()
        g, n0, r0, r1 = items[k, 0], items[k, 1], items[k, 3], items[k, 4]
        for n in range(n0, items[k, 2]):
            i = n * groups + g
            add_dw = np.bool_(n > n0)
            # None arguments select what is compiled, so each call names them.
            if dphases is None:
                if seconds is None:
                    backward_lane(x5, dout5, w_mat[g], dx5, dw_parts[k], dw_transposed, add_dw,
                                  i, i + 1, r0, r1, accumulate, _TRUE, _TRUE, fh, fw, sh, sw, ph,
                                  pw, dh, dw, ho, wo, _ONE, out_rows, _FALSE, bias_row, cols[t],
                                  dcols[t], dcols[t], phases, None, None)
                else:
                    backward_lane(x5, dout5, w_mat[g], dx5, dw_parts[k], dw_transposed, add_dw,
                                  i, i + 1, r0, r1, accumulate, _TRUE, _TRUE, fh, fw, sh, sw, ph,
                                  pw, dh, dw, ho, wo, _ONE, out_rows, _FALSE, bias_row, cols[t],
                                  dcols[t], dcols[t], phases, None, seconds[k])
            else:
                if seconds is None:
                    backward_lane(x5, dout5, w_mat[g], dx5, dw_parts[k], dw_transposed, add_dw,
                                  i, i + 1, r0, r1, accumulate, _TRUE, _TRUE, fh, fw, sh, sw, ph,
                                  pw, dh, dw, ho, wo, _ONE, out_rows, _FALSE, bias_row, cols[t],
                                  dcols[t], dcols[t], phases, dphases[t], None)
                else:
                    backward_lane(x5, dout5, w_mat[g], dx5, dw_parts[k], dw_transposed, add_dw,
                                  i, i + 1, r0, r1, accumulate, _TRUE, _TRUE, fh, fw, sh, sw, ph,
                                  pw, dh, dw, ho, wo, _ONE, out_rows, _FALSE, bias_row, cols[t],
                                  dcols[t], dcols[t], phases, dphases[t], seconds[k])
