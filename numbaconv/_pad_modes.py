"""Padding modes: fill an input's border from its own pixels, and fold the border's gradient
back onto the pixels it was copied from.

The modes are NumPy's ``np.pad`` modes ``reflect`` (mirror without repeating the edge),
``edge`` (``'replicate'``) and ``wrap`` (``'circular'``), and ``'zeros'``.  A convolution with
a mode other than zeros pads its input once into a buffer (:func:`pad_input`) and convolves
that without padding; its input gradient is the padded input's gradient folded back
(:func:`fold_padding`): every border cell's gradient is added to the pixel it was copied
from.  Both are one pass over the data, parallel over planes (a fold writes only its own
plane, always in the same order, so it is bitwise identical for any thread count).

Each axis is padded at most once around (reflect padding is smaller than the axis, circular
padding no larger; ``_padding.check_mode_fits`` checks that), so every border cell has one
source pixel, given by :func:`source_index`.
"""

from __future__ import annotations

import math
import threading

import numpy as np
from numba import njit, prange

from numbaconv._kernels import _add, _copy, _zero, run
from numbaconv._padding import MODE_CODES
from numbaconv._validation import ConvGeometry

ZEROS, REFLECT, REPLICATE, CIRCULAR = (MODE_CODES[m] for m in
                                       ("zeros", "reflect", "replicate", "circular"))
# pad_planes hands out whole planes from this many planes on, else single rows.
_PLANE_ITEMS_FROM = 64
# Scratch buffers up to this many bytes are kept for the next call (per thread).
_SCRATCH_KEPT = 64 * 2**20
_kept = threading.local()


def _scratch(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialised array of ``shape`` in this thread's kept padding buffer."""
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    buffer = getattr(_kept, "buffer", None)
    if buffer is None or buffer.nbytes < nbytes:
        buffer = np.empty(nbytes, dtype=np.uint8)
        if nbytes <= _SCRATCH_KEPT:
            _kept.buffer = buffer
    return buffer[:nbytes].view(dtype).reshape(shape)


@njit(cache=True, inline="always")
def source_index(p, size, mode):
    """The pixel a padded position ``p`` (``-pad_before <= p < size + pad_after``) copies, or
    -1 where the mode copies nothing (zeros)."""
    if p >= 0 and p < size:
        return p
    if mode == REFLECT:
        return -p if p < 0 else 2 * (size - 1) - p
    if mode == REPLICATE:
        return 0 if p < 0 else size - 1
    if mode == CIRCULAR:
        return p + size if p < 0 else p - size
    return np.int64(-1)


@njit(cache=True, inline="always")
def _pad_row(src, s_row, w, dst, d_row, left, right, mode):
    """One padded row ``dst[d_row : d_row + left + w + right]`` from the input row at
    ``src[s_row:]``."""
    for k in range(left):
        xs = source_index(k - left, w, mode)
        dst[d_row + k] = src[s_row + xs] if xs >= 0 else 0
    _copy(dst, d_row + left, 1, src, s_row, 1, w)
    for k in range(right):
        xs = source_index(w + k, w, mode)
        dst[d_row + left + w + k] = src[s_row + xs] if xs >= 0 else 0


@njit(cache=True, inline="always")
def _pad_rows(src, dst, plane, y0, y1, h, w, hp, wp, top, left, right, mode):
    """Padded rows ``y0 <= yp < y1`` of ``plane`` (``src``, ``dst`` flat)."""
    for yp in range(y0, y1):
        y = source_index(yp - top, h, mode)
        d_row = (plane * hp + yp) * wp
        if y < 0:
            _zero(dst, d_row, wp)
        else:
            _pad_row(src, (plane * h + y) * w, w, dst, d_row, left, right, mode)


@njit(cache=True, parallel=True)
def pad_planes(x, top, left, right, mode, out):
    """``out[p]`` (``(P, Hp, Wp)``) = plane ``x[p]`` (``(P, H, W)``) padded as ``mode`` says,
    ``top`` rows above and ``left`` / ``right`` columns beside it (the rest of ``Hp`` below).
    Work items are whole planes, or single rows where there are few planes."""
    planes, h, w = x.shape
    hp, wp = out.shape[1], out.shape[2]
    src, dst = x.reshape(x.size), out.reshape(out.size)
    if planes >= _PLANE_ITEMS_FROM:
        for plane in prange(planes):
            _pad_rows(src, dst, np.int64(plane), 0, hp, h, w, hp, wp, top, left, right, mode)
    else:
        for t in prange(np.int64(planes) * hp):
            plane = np.int64(t) // hp
            yp = np.int64(t) - plane * hp
            _pad_rows(src, dst, plane, yp, yp + 1, h, w, hp, wp, top, left, right, mode)


@njit(cache=True, nogil=True)
def pad_planes_serial(x, top, left, right, mode, out):
    """Serial driver of :func:`pad_planes`."""
    planes, h, w = x.shape
    hp, wp = out.shape[1], out.shape[2]
    src, dst = x.reshape(x.size), out.reshape(out.size)
    for plane in range(np.int64(planes)):
        _pad_rows(src, dst, plane, 0, hp, h, w, hp, wp, top, left, right, mode)


@njit(cache=True, inline="always")
def _add_border_columns(src, s_row, dx, d_row, w, left, wp, mode):
    """Add the border cells of the padded row at ``src[s_row:]`` (in column order) onto their
    source columns of the input row at ``dx[d_row:]``."""
    for xp in range(left):
        xs = source_index(xp - left, w, mode)
        if xs >= 0:
            dx[d_row + xs] += src[s_row + xp]
    for xp in range(left + w, wp):
        xs = source_index(xp - left, w, mode)
        if xs >= 0:
            dx[d_row + xs] += src[s_row + xp]


@njit(cache=True, inline="always")
def _fold_plane(src, dst, plane, h, w, hp, wp, top, left, mode):
    """Plane ``plane`` of ``dx`` (flat ``dst``) = the gradient of the padded plane (flat
    ``src``) folded back: first the rows of the input (their middle copied, their border cells
    added), then the border rows in order (each added onto its source row)."""
    p0, d0 = plane * hp * wp, plane * h * w
    for y in range(h):
        s_row = p0 + (y + top) * wp
        _copy(dst, d0 + y * w, 1, src, s_row + left, 1, w)
        _add_border_columns(src, s_row, dst, d0 + y * w, w, left, wp, mode)
    for yp in range(hp):
        if yp < top or yp >= top + h:
            y = source_index(yp - top, h, mode)
            if y >= 0:
                s_row = p0 + yp * wp
                _add(dst, d0 + y * w, 1, src, s_row + left, w)
                _add_border_columns(src, s_row, dst, d0 + y * w, w, left, wp, mode)


@njit(cache=True, parallel=True)
def fold_planes(dxpad, top, left, mode, dx):
    """``dx`` (``(P, H, W)``) from the padded gradient ``dxpad`` (``(P, Hp, Wp)``), plane by
    plane (see :func:`_fold_plane`)."""
    planes, h, w = dx.shape
    hp, wp = dxpad.shape[1], dxpad.shape[2]
    src, dst = dxpad.reshape(dxpad.size), dx.reshape(dx.size)
    for plane in prange(planes):
        _fold_plane(src, dst, np.int64(plane), h, w, hp, wp, top, left, mode)


@njit(cache=True, nogil=True)
def fold_planes_serial(dxpad, top, left, mode, dx):
    """Serial driver of :func:`fold_planes`."""
    planes, h, w = dx.shape
    hp, wp = dxpad.shape[1], dxpad.shape[2]
    src, dst = dxpad.reshape(dxpad.size), dx.reshape(dx.size)
    for plane in range(np.int64(planes)):
        _fold_plane(src, dst, plane, h, w, hp, wp, top, left, mode)


def pad_input(x: np.ndarray, geom: ConvGeometry, mode: str, scratch: bool = False
              ) -> np.ndarray:
    """``(N, C, H + top + bottom, W + left + right)``: C-contiguous ``x`` with the border of
    ``geom``'s padding filled as ``mode`` says; a new array, or with ``scratch`` this thread's
    padding buffer, valid until its next call with ``scratch`` (a buffer kept between calls
    is not page-faulted in afresh every time)."""
    top, bottom, left, right = geom.pads
    n, c, h, w = x.shape
    shape = (n, c, h + top + bottom, w + left + right)
    out = _scratch(shape, x.dtype) if scratch else np.empty(shape, dtype=x.dtype)
    run(pad_planes, pad_planes_serial, out.size, x.reshape(n * c, h, w), top, left, right,
        MODE_CODES[mode], out.reshape(n * c, out.shape[2], out.shape[3]))
    return out


def fold_padding(dxpad: np.ndarray, geom: ConvGeometry, mode: str) -> np.ndarray:
    """The input gradient ``(N, C, H, W)`` from the padded input's gradient ``dxpad`` (as
    :func:`pad_input` lays it out): every border cell's gradient added to its source pixel."""
    top, _, left, _ = geom.pads
    n, c, h, w = geom.x_shape
    dx = np.empty(geom.x_shape, dtype=dxpad.dtype)
    dxpad = np.ascontiguousarray(dxpad)
    run(fold_planes, fold_planes_serial, dxpad.size,
        dxpad.reshape(n * c, dxpad.shape[2], dxpad.shape[3]), top, left, MODE_CODES[mode],
        dx.reshape(n * c, h, w))
    return dx
