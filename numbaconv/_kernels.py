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

All index arithmetic is done on ``np.int64`` values: ``prange`` may hand out an unsigned index,
and mixing unsigned with signed integers in Numba silently promotes to float.
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


@njit(cache=True, parallel=True)
def im2col_blocks(x, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, cols):
    """Fill ``cols[n, (c*fh + a)*fw + b, i*wo + j] = xpad[n, c, i*sh + a*dh, j*sw + b*dw]``."""
    n_img, n_ch, h, w = x.shape
    taps = np.int64(fh) * fw
    rows = n_ch * taps
    for item in prange(n_img * rows):
        t = np.int64(item)
        n = t // rows
        r = t - n * rows
        c = r // taps
        a = (r - c * taps) // fw
        b = r - c * taps - a * fw
        off_w = b * dw - pw
        j_lo, j_hi = _valid_span(off_w, sw, w, wo)
        dst = cols[n, r]
        for i in range(ho):
            y = i * sh + a * dh - ph
            base = i * wo
            if y < 0 or y >= h:
                for j in range(wo):
                    dst[base + j] = 0
                continue
            src = x[n, c, y]
            for j in range(j_lo):
                dst[base + j] = 0
            if sw == 1:
                for j in range(j_lo, j_hi):
                    dst[base + j] = src[j + off_w]
            else:
                for j in range(j_lo, j_hi):
                    dst[base + j] = src[j * sw + off_w]
            for j in range(j_hi, wo):
                dst[base + j] = 0


@njit(cache=True, parallel=True)
def col2im_blocks(cols, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, dx):
    """Overwrite ``dx`` with the adjoint of :func:`im2col_blocks` applied to ``cols``."""
    n_img, n_ch, h, w = dx.shape
    taps = np.int64(fh) * fw
    plane_rows = n_ch * h
    for item in prange(n_img * plane_rows):
        t = np.int64(item)
        n = t // plane_rows
        c = (t - n * plane_rows) // h
        y = t - n * plane_rows - c * h
        dst = dx[n, c, y]
        for x_ in range(w):
            dst[x_] = 0
        for a in range(fh):
            num = y + ph - a * dh
            if num < 0:
                break  # num only decreases with a
            if num % sh != 0:
                continue
            i = num // sh
            if i >= ho:
                continue
            base = i * wo
            for b in range(fw):
                src = cols[n, c * taps + a * fw + b]
                off_w = b * dw - pw
                j_lo, j_hi = _valid_span(off_w, sw, w, wo)
                if sw == 1:
                    for j in range(j_lo, j_hi):
                        dst[j + off_w] += src[base + j]
                else:
                    for j in range(j_lo, j_hi):
                        dst[j * sw + off_w] += src[base + j]


@njit(cache=True, parallel=True)
def im2col_classic(x, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, cols):
    """Fill ``cols[(c*fh + a)*fw + b, (i*wo + j)*N + n] = xpad[n, c, i*sh + a*dh, j*sw + b*dw]``."""
    n_img, n_ch, h, w = x.shape
    taps = np.int64(fh) * fw
    rows = n_ch * taps
    for item in prange(rows * ho):
        t = np.int64(item)
        r = t // ho
        i = t - r * ho
        c = r // taps
        a = (r - c * taps) // fw
        b = r - c * taps - a * fw
        dst = cols[r]
        start = i * wo * n_img
        y = i * sh + a * dh - ph
        if y < 0 or y >= h:
            for q in range(start, start + wo * n_img):
                dst[q] = 0
            continue
        off_w = b * dw - pw
        j_lo, j_hi = _valid_span(off_w, sw, w, wo)
        for q in range(start, start + j_lo * n_img):
            dst[q] = 0
        for j in range(j_lo, j_hi):
            x_ = j * sw + off_w
            base = start + j * n_img
            for n in range(n_img):
                dst[base + n] = x[n, c, y, x_]
        for q in range(start + j_hi * n_img, start + wo * n_img):
            dst[q] = 0


@njit(cache=True, parallel=True)
def col2im_classic(cols, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, dx):
    """Overwrite ``dx`` with the adjoint of :func:`im2col_classic` applied to ``cols``."""
    n_img, n_ch, h, w = dx.shape
    taps = np.int64(fh) * fw
    for item in prange(n_ch * h):
        t = np.int64(item)
        c = t // h
        y = t - c * h
        for n in range(n_img):
            for x_ in range(w):
                dx[n, c, y, x_] = 0
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
                src = cols[c * taps + a * fw + b]
                off_w = b * dw - pw
                j_lo, j_hi = _valid_span(off_w, sw, w, wo)
                for j in range(j_lo, j_hi):
                    x_ = j * sw + off_w
                    base = (i * wo + j) * n_img
                    for n in range(n_img):
                        dx[n, c, y, x_] += src[base + n]
