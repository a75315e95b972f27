"""Depthwise convolution (``groups == C``, ``K = m*C``): the work split and the calls of the
direct kernels in ``_depthwise_kernels`` (whose docstring describes the buffers, the loops
and why the results are bitwise identical for any thread count).

A work item is a block of ``ci`` channels of a chunk of ``ni`` images, sized from the problem
alone (:func:`_partition`); small problems run in the calling thread, larger ones as one
parallel call whose groups of items share buffers.  The items' parts of the weight and bias
gradients are added in chunk order here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from numbaconv._depthwise_kernels import (
    _cell,
    _layout,
    backward_group,
    backward_planes,
    forward_group,
    forward_planes,
)
from numbaconv._pad_modes import source_index
from numbaconv._padding import MODE_CODES
from numbaconv._validation import ConvGeometry

# Below this many multiply-adds a call runs the serial driver.
SERIAL_BELOW = 1 << 16
# Work items per call at least (channel blocks times chunks of images), where the problem
# allows; they are handed out in this many groups at most, each with one set of buffers
# (which groups items form changes no result).
_ITEMS = 64
_GROUPS = 16
# A work item's buffer holds about this many bytes (as many planes as fit, at least one: it
# stays in the core's L2 cache between the fill, the taps and the copy-out), each channel's
# planes of an item, which every tap reads again, about this many (L1), and an item's planes
# of one image at least this many entries where there are enough channels.
_ITEM_BYTES = 1 << 17
_RUN_BYTES = 1 << 15
_STRETCH_ENTRIES = 1 << 10


@dataclass(frozen=True)
class DepthwiseCache:
    """What the backward pass of a depthwise convolution needs.

    ``x`` is a private copy of the input (made by the forward kernel while it reads each
    plane) unless the input was converted anyway; ``w`` is the caller's weights, used as they
    are when the backward pass runs (as in the classic layer)."""

    x: np.ndarray
    w: np.ndarray
    geometry: ConvGeometry
    mode: str
    work: tuple  # the kernels' arguments after their arrays (see _work)


def _hyper(geom: ConvGeometry, mode: str) -> tuple[int, ...]:
    return (geom.fh, geom.fw, geom.sh, geom.sw, geom.ph, geom.pw, geom.dh, geom.dw, geom.ho,
            geom.wo, MODE_CODES[mode])


def _work(geom: ConvGeometry, mode: str, itemsize: int) -> tuple:
    """The arguments the kernels take after their arrays: ``groups, items, chunks, ci, ni``,
    the hyperparameters and the buffer plan (:func:`tables`).  ``groups`` is 1 when the
    problem is too small to be worth waking the threads (then the serial driver,
    :func:`forward_group` or :func:`backward_group`, runs it)."""
    chunks, ci, ni = _partition(geom, itemsize)
    items = -(-geom.c // ci) * chunks
    serial = geom.n * geom.k * geom.positions * geom.fh * geom.fw < SERIAL_BELOW
    hyper = _hyper(geom, mode)
    plan = tables(geom.h, geom.w, *hyper, ci * ni)
    return (1 if serial else min(items, _GROUPS), items, chunks, ci, ni, *hyper, *plan)


@functools.lru_cache(maxsize=256)
def tables(h: int, w: int, fh: int, fw: int, sh: int, sw: int, top: int, left: int, dh: int,
           dw: int, ho: int, wo: int, mode: int, slots: int) -> tuple[np.ndarray, ...]:
    """The plan of a buffer of ``slots`` planes, shared by every item of a call, so that
    filling and folding a plane divide nothing:

    * ``rows[r] = (source row or -1, entry of row r, column 0)`` for ``r < hb``;
    * ``cols[x] = (source column or -1, offset of column x from column 0)`` for ``x < wb``;
    * ``phases[px] = (lo, hi, count, first, u0, n)``: phase px holds ``count`` read columns,
      those ``lo <= u < hi`` copy input columns ``lo*sw + px - left`` on, stride ``sw``; the
      input columns ``first + k*sw`` (``k < n``), inside some window, are entries ``u0 + k``;
    * ``offsets[a*fw + b]``: the buffer entry that output position (0, 0, 0) reads for tap
      (a, b).

    Plain Python on the kernels' own formulas (their ``py_func``): compiling it cost a first
    depthwise call about a second, and a call with the same geometry reuses the arrays (which
    no kernel writes)."""
    hb, wb, hq, wq = _layout.py_func(fh, fw, sh, sw, dh, dw, ho, wo)
    cell, source = _cell.py_func, source_index.py_func
    rows = np.array([(source(r - top, h, mode), cell(r, 0, sh, sw, hq, wq, slots))
                     for r in range(hb)], dtype=np.int64).reshape(hb, 2)
    cols = np.array([(source(x - left, w, mode), cell(0, x, sh, sw, hq, wq, slots))
                     for x in range(wb)], dtype=np.int64).reshape(wb, 2)
    reach = max(min(w, wb - left), 0)  # input columns inside some window
    phases = np.empty((sw, 6), dtype=np.int64)
    for px in range(sw):
        count = (wb - px + sw - 1) // sw
        hi = min((left + w - px + sw - 1) // sw, count)  # first u with x >= left + w
        lo = min((left - px + sw - 1) // sw if left > px else 0, hi)  # first with x >= left
        first = (px - left) % sw
        n_read = (reach - first + sw - 1) // sw if first < reach else 0
        phases[px] = lo, hi, count, first, (first + left) // sw, n_read
    offsets = np.array([cell(a * dh, b * dw, sh, sw, hq, wq, slots)
                        for a in range(fh) for b in range(fw)], dtype=np.int64)
    return rows, cols, phases, offsets


def _launch(group_kernel, planes_kernel, arrays: tuple, work: tuple) -> None:
    """Run every work item: one group in this thread, or the parallel driver's groups."""
    if work[0] == 1:
        group_kernel(*arrays, 0, *work)
    else:
        planes_kernel(*arrays, *work)


def _partition(geom: ConvGeometry, itemsize: int) -> tuple[int, int, int]:
    """``(chunks, ci, ni)``: work items are ``ci`` channels of ``ni`` images (``chunks``
    chunks of images), as many planes as fit a buffer of ``_ITEM_BYTES``, at most as many
    images as fit ``_RUN_BYTES`` (a channel's planes, which every tap reads again), enough
    channels that an item reads at least ``_STRETCH_ENTRIES`` consecutive entries of each of
    its images, and at least ``_ITEMS`` items where the problem allows (a function of the
    problem and the dtype only, never of the thread count).  Too few items: channels are
    halved first, down to the stretch, then images; then blocks and chunks are evened out.

    Large items pay off on small planes: at batch 32, an item of 6 channels of 16 images of
    7x7 spent more time starting its copies than copying, while one of 21 channels of 16
    images took 0.8x the time; long runs per channel keep the taps' and the weight
    gradient's fixed costs small (halving the images first cost batch 8 of 7x7 up to 1.8x)."""
    _, _, hq, wq = _layout.py_func(geom.fh, geom.fw, geom.sh, geom.sw, geom.dh, geom.dw,
                                   geom.ho, geom.wo)
    plane = geom.sh * geom.sw * hq * wq  # buffer entries per plane
    slots = max(1, _ITEM_BYTES // (itemsize * plane))
    ci = max(1, min(geom.c, slots, -(-_STRETCH_ENTRIES // (geom.h * geom.w))))
    ni = max(1, min(geom.n, slots // ci, _RUN_BYTES // (itemsize * plane)))
    ci = max(1, min(geom.c, slots // ni))
    fewest = max(1, min(ci, -(-(_STRETCH_ENTRIES // 4) // (geom.h * geom.w))))
    while -(-geom.c // ci) * -(-geom.n // ni) < _ITEMS and (ci > 1 or ni > 1):
        if ci > fewest:
            ci = max(fewest, -(-ci // 2))
        elif ni > 1:
            ni = -(-ni // 2)
        else:
            ci = -(-ci // 2)
    chunks = -(-geom.n // ni)
    blocks = -(-geom.c // ci)
    return chunks, -(-geom.c // blocks), -(-geom.n // chunks)


def depthwise_forward(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None,
                      geom: ConvGeometry, mode: str, keep: bool, private: bool
                      ) -> tuple[np.ndarray, DepthwiseCache | None]:
    """Output (and, with ``keep``, the cache) of the depthwise convolution of validated
    ``x`` and ``w`` (K, 1, fh, fw) with ``geom``'s padding filled as ``mode`` says;
    ``private`` says ``x`` is not the caller's array (then the cache keeps it, not a copy)."""
    out = np.empty(geom.out_shape, dtype=x.dtype)
    empty = np.empty(0, dtype=x.dtype)
    x_kept = np.empty_like(x) if keep and not private else empty.reshape(0, 0, 0, 0)
    work = _work(geom, mode, x.itemsize)
    _launch(forward_group, forward_planes,
            (x, w.reshape(-1), empty if bias is None else bias, out, x_kept), work)
    if not keep:
        return out, None
    return out, DepthwiseCache(x if private else x_kept, w, geom, mode, work)


def depthwise_backward(dout: np.ndarray, cache: DepthwiseCache
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dx, dw, db)`` of :func:`depthwise_forward` for a validated ``dout``."""
    geom, x = cache.geometry, cache.x
    w = np.ascontiguousarray(cache.w, dtype=x.dtype)
    chunks = cache.work[2]
    dx = np.empty(geom.x_shape, dtype=x.dtype)
    taps = geom.fh * geom.fw
    dw_parts = np.empty((chunks, geom.k, taps), dtype=x.dtype)
    db_parts = np.empty((chunks, geom.k), dtype=x.dtype)
    _launch(backward_group, backward_planes, (x, w.reshape(-1), dout, dx, dw_parts, db_parts),
            cache.work)
    dw, db = dw_parts[0], db_parts[0]
    for chunk in range(1, chunks):  # in chunk order: the same sums for any thread count
        dw += dw_parts[chunk]
        db += db_parts[chunk]
    return dx, dw.reshape(geom.k, 1, geom.fh, geom.fw), db
