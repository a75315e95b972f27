"""Numba kernels: im2col gathers and col2im scatter-adds.

Two column layouts are implemented:

* per-image blocks ``cols[n, r, q]`` (used inside :func:`numbaconv.conv2d_forward`), and
* the classic layout ``cols[r, q * N + n]`` (used by the drop-in ``*_indices`` functions),

with ``r = (c * fh + a) * fw + b`` and ``q = i * Wo + j``.  Every column entry comes from
``xpad[n, c, i * sh + a * dh, j * sw + b * dw]`` where ``xpad`` is the input with ``ph`` / ``pw``
zeros on each side; the padding is never materialised.

Parallel loops (``prange``) run only over work items that write disjoint memory: im2col over
column rows, col2im over *output* rows of ``dx``.  col2im is written as a gather: the work item
that owns an output row visits every (a, b, i, j) that lands on it, in a fixed order, so the
sums are race-free and bitwise identical for any thread count.

Index arithmetic is done on ``np.int64`` values (``prange`` may hand out an unsigned index, and
mixing unsigned with signed integers in Numba silently promotes to float).  The innermost copy
and add loops then index with ``np.uint64`` offsets that are known to be non-negative: Numba
cannot then emit its negative-index wraparound check, and LLVM vectorises the loops (about 3x
faster on this machine).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def _valid_span(offset, stride, size, n_out):
    """Output indices ``j`` in ``[lo, hi)`` for which ``0 <= j * stride + offset < size``."""
    lo = 0
    if offset < 0:
        lo = -(offset // stride)  # ceil(-offset / stride)
    hi = (size - 1 - offset) // stride + 1
    if hi > n_out:
        hi = n_out
    if lo > n_out:
        lo = n_out
    if hi < lo:
        hi = lo
    return lo, hi


@njit(cache=True, inline="always")
def _zero(dst, start, count):
    d0 = np.uint64(start)
    for k in range(np.uint64(count)):
        dst[d0 + k] = 0


@njit(cache=True, inline="always")
def _gather(dst, d_start, src, s_start, s_step, count):
    """``dst[d_start + k] = src[s_start + k * s_step]`` for ``k < count``."""
    d0 = np.uint64(d_start)
    s0 = np.uint64(s_start)
    if s_step == 1:
        for k in range(np.uint64(count)):
            dst[d0 + k] = src[s0 + k]
    else:
        step = np.uint64(s_step)
        for k in range(np.uint64(count)):
            dst[d0 + k] = src[s0 + k * step]


@njit(cache=True, inline="always")
def _scatter(dst, d_start, d_step, src, s_start, s_step, count):
    """``dst[d_start + k * d_step] = src[s_start + k * s_step]`` for ``k < count``."""
    d0 = np.uint64(d_start)
    s0 = np.uint64(s_start)
    d_inc = np.uint64(d_step)
    s_inc = np.uint64(s_step)
    for k in range(np.uint64(count)):
        dst[d0 + k * d_inc] = src[s0 + k * s_inc]


@njit(cache=True, inline="always")
def _strided_add(dst, d_start, d_step, src, s_start, s_step, count):
    """``dst[d_start + k * d_step] += src[s_start + k * s_step]`` for ``k < count``."""
    d0 = np.uint64(d_start)
    s0 = np.uint64(s_start)
    d_inc = np.uint64(d_step)
    s_inc = np.uint64(s_step)
    for k in range(np.uint64(count)):
        dst[d0 + k * d_inc] += src[s0 + k * s_inc]


@njit(cache=True, inline="always")
def _scatter_add(dst, d_start, d_step, src, s_start, count):
    """``dst[d_start + k * d_step] += src[s_start + k]`` for ``k < count``."""
    d0 = np.uint64(d_start)
    s0 = np.uint64(s_start)
    if d_step == 1:
        for k in range(np.uint64(count)):
            dst[d0 + k] += src[s0 + k]
    else:
        step = np.uint64(d_step)
        for k in range(np.uint64(count)):
            dst[d0 + k * step] += src[s0 + k]


@njit(cache=True, parallel=True)
def im2col_blocks(x, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, cols):
    """Fill ``cols[n, (c*fh + a)*fw + b, i*wo + j] = xpad[n, c, i*sh + a*dh, j*sw + b*dw]``."""
    n_img, n_ch, h, w = x.shape
    taps = np.int64(fh) * fw
    rows = n_ch * taps
    q_size = np.int64(ho) * wo
    src = x.reshape(x.size)
    dst = cols.reshape(cols.size)
    for item in prange(n_img * rows):
        t = np.int64(item)  # row t of cols viewed as (n_img * rows, q_size)
        n = t // rows
        r = t - n * rows
        c = r // taps
        a = (r - c * taps) // fw
        b = r - c * taps - a * fw
        off_w = b * dw - pw
        j_lo, j_hi = _valid_span(off_w, sw, w, wo)
        plane = (n * n_ch + c) * h * w
        for i in range(ho):
            y = i * sh + a * dh - ph
            o = t * q_size + i * wo
            if y < 0 or y >= h:
                _zero(dst, o, wo)
                continue
            _zero(dst, o, j_lo)
            _gather(dst, o + j_lo, src, plane + y * w + off_w + j_lo * sw, sw, j_hi - j_lo)
            _zero(dst, o + j_hi, wo - j_hi)


@njit(cache=True, parallel=True)
def col2im_blocks(cols, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, dx):
    """Overwrite ``dx`` with the adjoint of :func:`im2col_blocks` applied to ``cols``."""
    n_img, n_ch, h, w = dx.shape
    taps = np.int64(fh) * fw
    q_size = np.int64(ho) * wo
    src = cols.reshape(cols.size)
    dst = dx.reshape(dx.size)
    for item in prange(n_img * n_ch * h):
        t = np.int64(item)  # output row t of dx viewed as (n_img * n_ch * h, w)
        plane = t // h  # n * n_ch + c
        y = t - plane * h
        o = t * w
        _zero(dst, o, w)
        for a in range(fh):
            num = y + ph - a * dh
            if num < 0:
                break  # num only decreases with a
            if num % sh != 0:
                continue
            i = num // sh
            if i >= ho:
                continue
            for b in range(fw):
                off_w = b * dw - pw
                j_lo, j_hi = _valid_span(off_w, sw, w, wo)
                s = ((plane * taps + a * fw + b) * q_size) + i * wo + j_lo
                _scatter_add(dst, o + off_w + j_lo * sw, sw, src, s, j_hi - j_lo)


_TILE = 32  # rows of a transpose tile: tile_rows x n_img elements stay in L1


@njit(cache=True, parallel=True)
def batch_last(x, out):
    """``out[m, n] = x[n, m]`` for ``x`` of shape (N, M): move the batch axis last."""
    n_img, size = x.shape
    src = x.reshape(x.size)
    dst = out.reshape(out.size)
    for tile in prange((size + _TILE - 1) // _TILE):
        m0 = np.int64(tile) * _TILE
        count = min(_TILE, size - m0)
        for n in range(n_img):
            _scatter(dst, m0 * n_img + n, n_img, src, n * size + m0, 1, count)


@njit(cache=True, parallel=True)
def batch_first(x, out):
    """``out[n, m] = x[m, n]`` for ``x`` of shape (M, N): move the batch axis first."""
    size, n_img = x.shape
    src = x.reshape(x.size)
    dst = out.reshape(out.size)
    for tile in prange((size + _TILE - 1) // _TILE):
        m0 = np.int64(tile) * _TILE
        count = min(_TILE, size - m0)
        for n in range(n_img):
            _scatter(dst, n * size + m0, 1, src, m0 * n_img + n, n_img, count)


@njit(cache=True, parallel=True)
def im2col_classic(xt, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, cols):
    """Fill ``cols[(c*fh + a)*fw + b, (i*wo + j)*N + n] = xpad[n, c, i*sh + a*dh, j*sw + b*dw]``.

    ``xt`` is the input with the batch axis last, shape (C, H, W, N) (see :func:`batch_last`),
    so that every run of the output copies contiguous memory.
    """
    n_ch, h, w, n_img = xt.shape
    taps = np.int64(fh) * fw
    rows = n_ch * taps
    row_len = np.int64(ho) * wo * n_img
    src = xt.reshape(xt.size)
    dst = cols.reshape(cols.size)
    for item in prange(rows * ho):
        t = np.int64(item)  # (r, i): output row i of column row r, all images
        r = t // ho
        i = t - r * ho
        c = r // taps
        a = (r - c * taps) // fw
        b = r - c * taps - a * fw
        start = r * row_len + i * wo * n_img
        y = i * sh + a * dh - ph
        if y < 0 or y >= h:
            _zero(dst, start, wo * n_img)
            continue
        off_w = b * dw - pw
        j_lo, j_hi = _valid_span(off_w, sw, w, wo)
        _zero(dst, start, j_lo * n_img)
        s_row = ((c * h + y) * w + off_w) * n_img
        if sw == 1:
            _gather(dst, start + j_lo * n_img, src, s_row + j_lo * n_img, 1,
                    (j_hi - j_lo) * n_img)
        else:
            for j in range(j_lo, j_hi):
                _gather(dst, start + j * n_img, src, s_row + j * sw * n_img, 1, n_img)
        _zero(dst, start + j_hi * n_img, (wo - j_hi) * n_img)


@njit(cache=True, parallel=True)
def col2im_classic(cols, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, dxt):
    """Overwrite ``dxt`` (shape (C, H, W, N), batch last) with the adjoint of
    :func:`im2col_classic` applied to ``cols``; :func:`batch_first` then gives (N, C, H, W)."""
    n_ch, h, w, n_img = dxt.shape
    taps = np.int64(fh) * fw
    row_len = np.int64(ho) * wo * n_img
    src = cols.reshape(cols.size)
    dst = dxt.reshape(dxt.size)
    for item in prange(n_ch * h):
        t = np.int64(item)  # (c, y): row y of channel c, all images
        c = t // h
        y = t - c * h
        o = t * w * n_img
        _zero(dst, o, w * n_img)
        for a in range(fh):
            num = y + ph - a * dh
            if num < 0:
                break
            if num % sh != 0:
                continue
            i = num // sh
            if i >= ho:
                continue
            for b in range(fw):
                off_w = b * dw - pw
                j_lo, j_hi = _valid_span(off_w, sw, w, wo)
                s_row = (c * taps + a * fw + b) * row_len + i * wo * n_img
                if sw == 1:
                    _scatter_add(dst, o + (j_lo + off_w) * n_img, 1, src,
                                 s_row + j_lo * n_img, (j_hi - j_lo) * n_img)
                else:
                    for j in range(j_lo, j_hi):
                        _scatter_add(dst, o + (j * sw + off_w) * n_img, 1, src,
                                     s_row + j * n_img, n_img)
