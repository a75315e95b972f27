"""Numba kernels for 2-D max and average pooling.

Every kernel takes validated, C-contiguous ``(N, C, H, W)`` arrays and loops in parallel over
the ``N * C`` planes only: one plane is read and written by exactly one work item, in a fixed
order, so results are bitwise identical for any thread count.

Window ``(i, j)`` covers input rows ``i * sh - ph + a`` (``0 <= a < kh``) and columns
``j * sw - pw + b`` (``0 <= b < kw``); positions in the zero padding are never selected by max
pooling (they behave as ``-inf``) and, for average pooling, count only towards the divisor
when ``count_include_pad`` is true.  The callers guarantee ``ph < kh`` and ``pw < kw``, so every
window holds at least one real input element.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def _window(start, size, extent):
    """Clip the window ``[start, start + size)`` to ``[0, extent)``."""
    lo = start if start > 0 else 0
    hi = start + size
    if hi > extent:
        hi = extent
    return lo, hi


@njit(cache=True, inline="always")
def _window_max(src, y_lo, y_hi, x_lo, x_hi, w):
    """The maximum of ``src[y_lo:y_hi, x_lo:x_hi]`` and its flat index ``y * w + x``.

    Ties go to the first maximum in row-major window order (strict ``>`` comparison).
    A NaN is taken as the maximum (the first NaN of the window), so NaNs propagate.
    """
    best = src[y_lo, x_lo]
    best_at = y_lo * w + x_lo
    for y in range(y_lo, y_hi):
        for x_ in range(x_lo, x_hi):
            v = src[y, x_]
            # v != v: v is NaN; best == best: no NaN taken yet.
            if v > best or (v != v and best == best):
                best = v
                best_at = y * w + x_
    return best, best_at


@njit(cache=True, parallel=True)
def max_pool_forward(x, kh, kw, sh, sw, ph, pw, out, argmax):
    """``out[n, c, i, j]`` = window maximum; ``argmax`` = its flat index ``y * W + x``
    (see ``_window_max``)."""
    n_img, n_ch, h, w = x.shape
    ho, wo = out.shape[2], out.shape[3]
    for item in prange(n_img * n_ch):
        t = np.int64(item)
        n = t // n_ch
        c = t - n * n_ch
        src = x[n, c]
        dst = out[n, c]
        idx = argmax[n, c]
        for i in range(ho):
            y_lo, y_hi = _window(i * sh - ph, kh, h)
            for j in range(wo):
                x_lo, x_hi = _window(j * sw - pw, kw, w)
                dst[i, j], idx[i, j] = _window_max(src, y_lo, y_hi, x_lo, x_hi, w)


@njit(cache=True, parallel=True)
def max_pool_infer(x, kh, kw, sh, sw, ph, pw, out):
    """``out`` of :func:`max_pool_forward` (the same comparisons), without the argmax."""
    n_img, n_ch, h, w = x.shape
    ho, wo = out.shape[2], out.shape[3]
    for item in prange(n_img * n_ch):
        t = np.int64(item)
        n = t // n_ch
        c = t - n * n_ch
        src = x[n, c]
        dst = out[n, c]
        for i in range(ho):
            y_lo, y_hi = _window(i * sh - ph, kh, h)
            for j in range(wo):
                x_lo, x_hi = _window(j * sw - pw, kw, w)
                dst[i, j] = _window_max(src, y_lo, y_hi, x_lo, x_hi, w)[0]


@njit(cache=True, parallel=True)
def max_pool_backward(dout, argmax, dx):
    """Overwrite ``dx`` with ``dout`` routed to the recorded argmax of every window."""
    n_img, n_ch, h, w = dx.shape
    ho, wo = dout.shape[2], dout.shape[3]
    for item in prange(n_img * n_ch):
        t = np.int64(item)
        n = t // n_ch
        c = t - n * n_ch
        dst = dx[n, c].reshape(h * w)
        for p in range(h * w):
            dst[p] = 0
        g = dout[n, c]
        idx = argmax[n, c]
        for i in range(ho):
            for j in range(wo):
                dst[idx[i, j]] += g[i, j]


@njit(cache=True, inline="always")
def _divisor(y_lo, y_hi, x_lo, x_hi, kh, kw, count_include_pad):
    if count_include_pad:
        return kh * kw
    return (y_hi - y_lo) * (x_hi - x_lo)


@njit(cache=True, parallel=True)
def avg_pool_forward(x, kh, kw, sh, sw, ph, pw, count_include_pad, out):
    """``out[n, c, i, j]`` = window sum divided by ``kh * kw`` or by the real-element count."""
    n_img, n_ch, h, w = x.shape
    ho, wo = out.shape[2], out.shape[3]
    for item in prange(n_img * n_ch):
        t = np.int64(item)
        n = t // n_ch
        c = t - n * n_ch
        src = x[n, c]
        dst = out[n, c]
        for i in range(ho):
            y_lo, y_hi = _window(i * sh - ph, kh, h)
            for j in range(wo):
                x_lo, x_hi = _window(j * sw - pw, kw, w)
                total = src[y_lo, x_lo] * 0
                for y in range(y_lo, y_hi):
                    for x_ in range(x_lo, x_hi):
                        total += src[y, x_]
                dst[i, j] = total / _divisor(y_lo, y_hi, x_lo, x_hi, kh, kw, count_include_pad)


@njit(cache=True, parallel=True)
def avg_pool_backward(dout, kh, kw, sh, sw, ph, pw, count_include_pad, dx):
    """Overwrite ``dx`` with every ``dout`` entry spread evenly over its window."""
    n_img, n_ch, h, w = dx.shape
    ho, wo = dout.shape[2], dout.shape[3]
    for item in prange(n_img * n_ch):
        t = np.int64(item)
        n = t // n_ch
        c = t - n * n_ch
        dst = dx[n, c]
        g = dout[n, c]
        for y in range(h):
            for x_ in range(w):
                dst[y, x_] = 0
        for i in range(ho):
            y_lo, y_hi = _window(i * sh - ph, kh, h)
            for j in range(wo):
                x_lo, x_hi = _window(j * sw - pw, kw, w)
                share = g[i, j] / _divisor(y_lo, y_hi, x_lo, x_hi, kh, kw, count_include_pad)
                for y in range(y_lo, y_hi):
                    for x_ in range(x_lo, x_hi):
                        dst[y, x_] += share
