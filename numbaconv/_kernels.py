"""Numba kernels: im2col gathers and col2im scatter-adds on per-image column blocks.

The columns of the convolutions are per-image blocks ``cols[n, r, q]`` (or ``cols[r, n, q]``,
"batch inner"), with ``r = (c * fh + a) * fw + b`` and ``q = i * Wo + j``; the classic layout
of the drop-in ``*_indices`` functions is in ``_classic_kernels``, and the copy and add loops
below are shared by both.  Every column entry comes from
``xpad[n, c, i * sh + a * dh, j * sw + b * dw]`` where ``xpad`` is the input with ``ph`` / ``pw``
zeros on each side; the padding is never materialised.

Each kernel is a function of one *work item* ``t`` (``_..._item``) plus two drivers that run
every item: a parallel one (``prange``) and a serial one (which releases the GIL) for work too
small to be worth waking the thread pool, or for callers that run their own threads.  Work
items write disjoint memory: im2col fills the column rows of one kernel row (or one row of the
classic layout); col2im owns a block of whole *output* rows of ``dx`` and gathers every
(a, b, i, j) that lands on them, in a fixed order.  So the parallel loops cannot race, and
every output value is summed by one thread in the same order whatever the thread count:
results are bitwise identical for any number of threads, and between the two drivers.

Index arithmetic is done on ``np.int64`` values (``prange`` may hand out an unsigned index, and
mixing unsigned with signed integers in Numba silently promotes to float).  The innermost copy
and add loops then index with ``np.uint64`` offsets that are known to be non-negative: Numba
cannot then emit its negative-index wraparound check, and LLVM vectorises the loops (about 3x
faster on the development machine).  Transposes, which LLVM cannot vectorise, move square
blocks through vector registers (``_simd.py``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange
from numba.extending import register_jitable

# Below this many output elements a kernel runs serially (see ``run``).
SERIAL_BELOW = 1 << 15
# col2im work items cover about this many elements of dx (whole rows of one plane).
_ROW_BLOCK = 1024
# Options of the kernels that only other kernels call: no wrappers for calls from Python or
# C, which Numba would otherwise compile (and cache) for each of them.
INTERNAL = {"cache": True, "no_cpython_wrapper": True, "no_cfunc_wrapper": True}
# Constants that kernels pass to other kernels, as NumPy scalars: Numba types them ``bool`` and
# ``int64``, where the literals True, False, 0 and 1 would each compile a specialization of the
# callee of their own.
_TRUE, _FALSE = np.bool_(True), np.bool_(False)
_ZERO, _ONE = np.int64(0), np.int64(1)


def run(parallel, serial, work: int, *args, force_serial: bool = False) -> None:
    """Call the parallel driver, or the serial one when asked or when ``work`` is small."""
    (serial if force_serial or work < SERIAL_BELOW else parallel)(*args)


@njit(cache=True, inline="always")
def _valid_span(offset, stride, size, n_out):
    """Output indices ``j`` in ``[lo, hi)`` for which ``0 <= j * stride + offset < size``.
    (Inlined: the drop-ins' inner loops ran 3 % slower with it as a kernel of its own.)"""
    if stride == 1:  # no divisions on the common path
        lo = -offset if offset < 0 else 0
        hi = size - offset
    else:
        lo = -(offset // stride) if offset < 0 else 0  # ceil(-offset / stride)
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
def _zero_column(dst, start, step, count):
    """``dst[start + k * step] = 0`` for ``k < count``."""
    d0 = np.uint64(start)
    d_inc = np.uint64(step)
    for k in range(np.uint64(count)):
        dst[d0 + k * d_inc] = 0


@njit(cache=True, inline="always")
def _copy(dst, d_start, d_step, src, s_start, s_step, count):
    """``dst[d_start + k * d_step] = src[s_start + k * s_step]`` for ``k < count``."""
    d0 = np.uint64(d_start)
    s0 = np.uint64(s_start)
    if d_step == 1 and s_step == 1:  # the common case, kept simple for the vectoriser
        for k in range(np.uint64(count)):
            dst[d0 + k] = src[s0 + k]
    else:
        d_inc = np.uint64(d_step)
        s_inc = np.uint64(s_step)
        for k in range(np.uint64(count)):
            dst[d0 + k * d_inc] = src[s0 + k * s_inc]


@njit(cache=True, inline="always")
def _add(dst, d_start, d_step, src, s_start, count):
    """``dst[d_start + k * d_step] += src[s_start + k]`` for ``k < count``."""
    d0 = np.uint64(d_start)
    s0 = np.uint64(s_start)
    if d_step == 1:
        for k in range(np.uint64(count)):
            dst[d0 + k] += src[s0 + k]
    else:
        d_inc = np.uint64(d_step)
        for k in range(np.uint64(count)):
            dst[d0 + k * d_inc] += src[s0 + k]


@njit(cache=True, inline="always")
def _add_constant(dst, start, count, value):
    """``dst[start + k] += value`` for ``k < count``."""
    d0 = np.uint64(start)
    for k in range(np.uint64(count)):
        dst[d0 + k] += value


@njit(**INTERNAL, fastmath={"reassoc"})
def _sum(src, start, count):
    """``src[start:start + count].sum()``.  Reassociation lets LLVM keep SIMD partial sums (a
    single running sum waits on every add); the order is fixed by the compiled code, so the
    result does not depend on the thread count, and NaN and Inf propagate as usual."""
    s0 = np.uint64(start)
    total = src.dtype.type(0)
    for k in range(np.uint64(count)):
        total += src[s0 + k]
    return total


# --- per-image blocks: cols[n, r, q] (or cols[r, n, q], "batch inner") ------------------------

@njit(**INTERNAL)
def _block_row(r, n, n_img, rows_alloc, batch_inner):
    """Row of column ``r`` of image ``n`` in a block buffer: ``(N, rows_alloc, q)`` per image,
    or ``(rows_alloc, N, q)`` with ``batch_inner``."""
    return r * n_img + n if batch_inner else n * rows_alloc + r


@njit(**INTERNAL)
def _im2col_blocks_item(src, dst, t, n_img, n_ch, h, w, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo,
                        i0, i1, rows_alloc, batch_inner, phased):
    """Work item ``t = (n * C + c) * fh + a``: output rows ``i0 <= i < i1`` of the ``fw``
    column rows of kernel row ``a`` of channel ``c`` of image ``n``.

    With ``phased``, ``src`` is not the images but the images split by stride phase (see
    :func:`split_by_stride_phase`), so that every copy reads contiguous memory."""
    plane = t // fh  # n * n_ch + c
    a = t - plane * fh
    n = plane // n_ch
    c = plane - n * n_ch
    if phased or (sh == 1 and sw == 1):  # stride 1: the image is its own (only) phase
        _im2col_phase_taps(src, dst, plane, c, n, n_img, a, h, w, fh, fw, sh, sw, ph, pw, dh,
                           dw, wo, i0, i1, rows_alloc, batch_inner)
        return
    q_size = np.int64(i1 - i0) * wo
    src_plane = plane * h * w
    for b in range(fw):
        row = _block_row((c * fh + a) * fw + b, n, n_img, rows_alloc, batch_inner)
        off_w = b * dw - pw
        j_lo, j_hi = _valid_span(off_w, sw, w, wo)
        for i in range(i0, i1):
            y = i * sh + a * dh - ph
            o = row * q_size + (i - i0) * wo
            if y < 0 or y >= h:
                _zero(dst, o, wo)
                continue
            _zero(dst, o, j_lo)
            _copy(dst, o + j_lo, 1, src, src_plane + y * w + off_w + j_lo * sw, sw, j_hi - j_lo)
            _zero(dst, o + j_hi, wo - j_hi)


@njit(**INTERNAL)
def _phase_offset(offset, stride):
    """``(p, o)`` with ``offset == o * stride + p`` and ``0 <= p < stride``: a tap at
    ``offset`` reads phase ``p``, shifted by ``o`` entries."""
    if stride == 1:  # no divisions on the common path
        return 0, offset
    p = offset % stride  # Python's modulo: in [0, stride)
    return p, (offset - p) // stride


@njit(**INTERNAL)
def _phase_row(plane, py, px, row, sh, sw, hp, wp):
    """Offset of row ``row`` of phase ``(py, px)`` of ``plane`` in stride-phase split images
    (see :func:`split_by_stride_phase`)."""
    return (((plane * sh + py) * sw + px) * hp + row) * wp


@njit(cache=True, inline="always")
def _im2col_phase_taps(src, dst, plane, c, n, n_img, a, h, w, fh, fw, sh, sw, ph, pw, dh, dw,
                       wo, i0, i1, rows_alloc, batch_inner):
    """The taps of kernel row ``a``, read from images split by stride phase: input pixel
    ``(i*sh + off_h, j*sw + off_w)`` is entry ``(i + oy, j + ox)`` of phase ``(py, px)``, with
    ``py = off_h mod sh`` and ``oy = (off_h - py) / sh`` (the same for columns).  With stride
    1 there is one phase, the image itself.

    Every output row is then one contiguous copy.  When ``Wo`` equals the phases' row length
    (stride 1 with "same" padding, or ``Wo == ceil(W / sw)``), all the rows of a tap are one
    copy, from its first valid column to its last, and the padding columns it filled with the
    neighbouring row's pixels are zeroed after it.  (Inlined into its one caller,
    :func:`_im2col_blocks_item`.)"""
    q_size = np.int64(i1 - i0) * wo
    hp, wp = (h + sh - 1) // sh, (w + sw - 1) // sw
    py, oy = _phase_offset(a * dh - ph, sh)
    i_lo, i_hi = _valid_span(oy, 1, (h - py + sh - 1) // sh, i1)  # rows that exist
    i_lo = max(i_lo, i0)
    i_hi = max(i_hi, i_lo)
    n_rows = i_hi - i_lo
    for b in range(fw):
        row = _block_row((c * fh + a) * fw + b, n, n_img, rows_alloc, batch_inner)
        off_w = b * dw - pw
        px, ox = _phase_offset(off_w, sw)
        j_lo, j_hi = _valid_span(off_w, sw, w, wo)
        o_first = row * q_size + (i_lo - i0) * wo  # output row i_lo
        s_first = _phase_row(plane, py, px, i_lo + oy, sh, sw, hp, wp) + ox
        _zero(dst, row * q_size, (i_lo - i0) * wo)
        _zero(dst, o_first + n_rows * wo, (i1 - i_hi) * wo)
        if j_lo >= j_hi:
            _zero(dst, o_first, n_rows * wo)
            continue
        # One copy per row, or one for all rows when Wo is the phase's row length.
        run = n_rows if wo == wp else 1
        for k in range(0, n_rows, max(run, 1)):
            _copy(dst, o_first + k * wo + j_lo, 1, src, s_first + k * wp + j_lo, 1,
                  (run - 1) * wo + j_hi - j_lo)
        # The padding columns (and what one run put there), column by column: they are
        # few, and the rows many and short.
        for j in range(j_lo):
            _zero_column(dst, o_first + j, wo, n_rows)
        for j in range(j_hi, wo):
            _zero_column(dst, o_first + j, wo, n_rows)


@njit(cache=True, inline="always")
def _row_to_phases(x, s_row, w, sw, out, d_row, phase_size):
    """One image row ``x[s_row:s_row + w]`` to its ``sw`` column phases
    ``out[d_row + px * phase_size + j]`` (entry ``j`` of phase ``px`` is column ``j * sw + px``).
    (Inlined into its one caller, :func:`split_by_stride_phase`.)"""
    if sw == 2:
        # Both phases in one loop: the stride-2 reads become shuffles of contiguous vectors
        # (2.5x faster than one strided copy per phase for the rows of 32 of the downsample
        # shape).
        even = np.uint64(d_row)
        odd = np.uint64(d_row + phase_size)
        s0 = np.uint64(s_row)
        one, two = np.uint64(1), np.uint64(2)
        pairs = np.uint64(w // 2)
        for j in range(pairs):
            out[even + j] = x[s0 + two * j]
            out[odd + j] = x[s0 + two * j + one]
        if w % 2 == 1:  # the last column is in the even phase only
            out[even + pairs] = x[s0 + two * pairs]
        return
    for px in range(sw):
        _copy(out, d_row + px * phase_size, 1, x, s_row + px, sw, (w - px + sw - 1) // sw)


@njit(cache=True, inline="always")
def _row_from_phases(phases, s_row, w, sw, x, d_row, phase_size):
    """The inverse of :func:`_row_to_phases`: image row ``x[d_row:d_row + w]`` from its column
    phases ``phases[s_row + px * phase_size + j]``.  (Inlined into its one caller,
    :func:`merge_stride_phases`.)"""
    if sw == 2:
        even = np.uint64(s_row)
        odd = np.uint64(s_row + phase_size)
        d0 = np.uint64(d_row)
        one, two = np.uint64(1), np.uint64(2)
        pairs = np.uint64(w // 2)
        for j in range(pairs):
            x[d0 + two * j] = phases[even + j]
            x[d0 + two * j + one] = phases[odd + j]
        if w % 2 == 1:
            x[d0 + two * pairs] = phases[even + pairs]
        return
    for px in range(sw):
        _copy(x, d_row + px, sw, phases, s_row + px * phase_size, 1, (w - px + sw - 1) // sw)


@njit(cache=True)
def split_by_stride_phase(x, first_plane, planes, h, w, sh, sw, out):
    """``out[k, py, px, i, j] = x[first_plane + k, i*sh + py, j*sw + px]``, phases of
    ``ceil(H / sh) x ceil(W / sw)`` (``x`` and ``out`` flat, planes of ``h * w`` in ``x``):
    a strided im2col then copies contiguous runs (:func:`_im2col_phase_taps`).  Entries past
    a phase's end are left as they are.  (A function of its own, not a direction flag on
    :func:`merge_stride_phases`: ``x`` may be a read-only array, which Numba will not type in
    a function that also writes it.)"""
    hp, wp = (h + sh - 1) // sh, (w + sw - 1) // sw
    for k in range(np.int64(planes)):
        s0 = (first_plane + k) * h * w
        for py in range(sh):
            for i in range((h - py + sh - 1) // sh):  # image row i * sh + py
                _row_to_phases(x, s0 + (i * sh + py) * w, w, sw, out,
                               _phase_row(k, py, _ZERO, i, sh, sw, hp, wp), hp * wp)


@njit(cache=True)
def merge_stride_phases(phases, first_plane, planes, h, w, sh, sw, x):
    """The inverse of :func:`split_by_stride_phase`: ``x[first_plane + k, i*sh + py,
    j*sw + px] = phases[k, py, px, i, j]``."""
    hp, wp = (h + sh - 1) // sh, (w + sw - 1) // sw
    for k in range(np.int64(planes)):
        d0 = (first_plane + k) * h * w
        for py in range(sh):
            for i in range((h - py + sh - 1) // sh):
                _row_from_phases(phases, _phase_row(k, py, _ZERO, i, sh, sw, hp, wp), w, sw, x,
                                 d0 + (i * sh + py) * w, hp * wp)


@njit(cache=True, parallel=True)
def im2col_blocks(x, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, i0, i1, cols, batch_inner, p0, p1):
    """Fill ``cols[n, (c*fh + a)*fw + b, (i - i0)*wo + j] = xpad[n, c, i*sh + a*dh, j*sw + b*dw]``
    for the output rows ``i0 <= i < i1`` (``cols[r, n, q]`` with ``batch_inner``) and the
    planes ``p0 <= n*C + c < p1`` (all: ``0, N*C``).

    ``cols`` may have more rows than ``C*fh*fw`` (``cols.shape[1]``, or ``shape[0]`` with
    ``batch_inner``); the extra rows are left as they are.
    """
    n_img, n_ch, h, w = x.shape
    rows_alloc = cols.shape[0] if batch_inner else cols.shape[1]
    src, dst = x.reshape(x.size), cols.reshape(cols.size)
    first = np.int64(p0) * fh
    for item in prange((p1 - p0) * fh):
        _im2col_blocks_item(src, dst, first + item, n_img, n_ch, h, w, fh, fw, sh, sw, ph, pw,
                            dh, dw, ho, wo, i0, i1, rows_alloc, batch_inner, _FALSE)


@njit(cache=True, nogil=True)
def im2col_blocks_serial(x, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, i0, i1, cols, batch_inner,
                         p0, p1):
    """Serial driver of :func:`im2col_blocks`."""
    n_img, n_ch, h, w = x.shape
    rows_alloc = cols.shape[0] if batch_inner else cols.shape[1]
    src, dst = x.reshape(x.size), cols.reshape(cols.size)
    for item in range(np.int64(p0) * fh, np.int64(p1) * fh):
        _im2col_blocks_item(src, dst, item, n_img, n_ch, h, w, fh, fw, sh, sw, ph, pw,
                            dh, dw, ho, wo, i0, i1, rows_alloc, batch_inner, _FALSE)


@njit(**INTERNAL)
def _col2im_rows(ho, sh, ph, dh, a, y0, y1):
    """Output rows ``i`` whose kernel row ``a`` lands in input rows ``[y0, y1)``."""
    start = y0 + ph - a * dh  # i * sh >= start
    stop = y1 + ph - a * dh  # i * sh < stop
    i_lo = 0 if start <= 0 else (start + sh - 1) // sh
    i_hi = 0 if stop <= 0 else (stop + sh - 1) // sh
    return i_lo, min(i_hi, ho)


@njit(**INTERNAL)
def _col2im_blocks_item(src, dst, t, blocks, rows_per_block, n_img, n_ch, h, w, fh, fw, sh, sw,
                        ph, pw, dh, dw, ho, wo, i0, i1, rows_alloc, batch_inner, accumulate,
                        phased):
    """Work item ``t = (n * C + c) * blocks + k``: input rows ``[k * rows_per_block, ...)`` of
    ``dx[n, c]``, which it alone writes.  They are zeroed first unless ``accumulate``; then
    every (a, b) adds the contributions of output rows ``i0 <= i < i1``, in the order a, then
    b, then position: the same order for any thread count.

    With ``phased`` (True, not None), ``dst`` is not ``dx`` but ``dx`` split by stride phase
    (the layout of :func:`split_by_stride_phase`; :func:`merge_stride_phases` undoes it), and
    every add runs over contiguous memory.  With None, Numba compiles no phase code."""
    q_size = np.int64(i1 - i0) * wo
    plane = t // blocks  # n * n_ch + c
    y0 = (t - plane * blocks) * rows_per_block
    y1 = min(y0 + rows_per_block, h)
    n = plane // n_ch
    c = plane - n * n_ch
    hp, wp = (h + sh - 1) // sh, (w + sw - 1) // sw
    o_plane = plane * h * w
    if not accumulate:
        if phased is not None:
            for y in range(y0, y1):
                for px in range(sw):
                    _zero(dst, _phase_row(plane, y % sh, px, y // sh, sh, sw, hp, wp), wp)
        else:
            _zero(dst, o_plane + y0 * w, (y1 - y0) * w)
    for a in range(fh):
        i_lo, i_hi = _col2im_rows(ho, sh, ph, dh, a, y0, y1)
        i_lo = max(i_lo, i0)
        i_hi = min(i_hi, i1)
        off_h = a * dh - ph  # y = i * sh + off_h: phase row i + oy of row phase py
        py, oy = _phase_offset(off_h, sh)
        for b in range(fw):
            row = _block_row((c * fh + a) * fw + b, n, n_img, rows_alloc, batch_inner)
            off_w = b * dw - pw
            px, ox = _phase_offset(off_w, sw)
            j_lo, j_hi = _valid_span(off_w, sw, w, wo)
            s = row * q_size + (i_lo - i0) * wo + j_lo
            if phased is not None:
                o = _phase_row(plane, py, px, i_lo + oy, sh, sw, hp, wp) + ox
                for i in range(i_hi - i_lo):
                    _add(dst, o + i * wp + j_lo, 1, src, s + i * wo, j_hi - j_lo)
            else:
                o = o_plane + (i_lo * sh + off_h) * w + off_w + j_lo * sw
                if sh == 1 and sw == 1 and wo == w and j_lo == 0 and j_hi == wo:
                    # Whole rows, contiguous in dx and in the columns: one run.
                    _add(dst, o, 1, src, s, max(i_hi - i_lo, 0) * wo)
                    continue
                for i in range(i_hi - i_lo):
                    _add(dst, o + i * sh * w, sw, src, s + i * wo, j_hi - j_lo)


@register_jitable
def col2im_row_blocks(h, w):
    """``(rows_per_block, blocks)``: how :func:`col2im_blocks` cuts each plane of ``dx``."""
    rows_per_block = max(1, _ROW_BLOCK // w)
    return rows_per_block, (h + rows_per_block - 1) // rows_per_block


@register_jitable
def reached_row_blocks(h, rows_per_block, blocks, sh, ph, fh, dh, i0, i1, adding):
    """``(k0, k1)``: the row blocks of a plane of ``dx`` that output rows ``i0 <= i < i1``
    reach, or all of them unless ``adding`` (overwriting, every block zeroes its rows).  The
    other blocks would add nothing: skipping them spares a lane of a few rows of a large image
    every other block's bookkeeping per tap."""
    if not adding:
        return np.int64(0), np.int64(blocks)
    y0 = max(np.int64(i0) * sh - ph, 0)
    y1 = min(np.int64(i1 - 1) * sh - ph + (fh - 1) * dh, h - 1)
    k0 = y0 // rows_per_block
    return k0, max(y1 // rows_per_block + 1, k0)


@njit(cache=True, parallel=True)
def col2im_blocks(cols, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, i0, i1, dx, batch_inner,
                  accumulate, p0, p1):
    """Overwrite ``dx`` with (or, with ``accumulate``, add to it) the adjoint of
    :func:`im2col_blocks` for output rows ``i0 <= i < i1`` applied to ``cols``, in the planes
    ``p0 <= n*C + c < p1`` of ``dx`` (all: ``0, N*C``)."""
    n_img, n_ch, h, w = dx.shape
    rows_alloc = cols.shape[0] if batch_inner else cols.shape[1]
    src, dst = cols.reshape(cols.size), dx.reshape(dx.size)
    rows_per_block, blocks = col2im_row_blocks(h, w)
    k0, k1 = reached_row_blocks(h, rows_per_block, blocks, sh, ph, fh, dh, i0, i1, accumulate)
    reached = k1 - k0
    for item in prange((p1 - p0) * reached):
        t = np.int64(item)  # the prange index may be unsigned
        plane = np.int64(p0) + t // reached
        _col2im_blocks_item(src, dst, plane * blocks + k0 + t % reached, blocks,
                            rows_per_block, n_img, n_ch, h, w, fh, fw, sh, sw, ph, pw, dh, dw,
                            ho, wo, i0, i1, rows_alloc, batch_inner, accumulate, None)


@njit(cache=True, nogil=True)
def col2im_blocks_serial(cols, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, i0, i1, dx, batch_inner,
                         accumulate, p0, p1):
    """Serial driver of :func:`col2im_blocks`."""
    n_img, n_ch, h, w = dx.shape
    rows_alloc = cols.shape[0] if batch_inner else cols.shape[1]
    src, dst = cols.reshape(cols.size), dx.reshape(dx.size)
    rows_per_block, blocks = col2im_row_blocks(h, w)
    k0, k1 = reached_row_blocks(h, rows_per_block, blocks, sh, ph, fh, dh, i0, i1, accumulate)
    for plane in range(np.int64(p0), np.int64(p1)):
        for k in range(k0, k1):
            _col2im_blocks_item(src, dst, plane * blocks + k, blocks, rows_per_block, n_img,
                                n_ch, h, w, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, i0, i1,
                                rows_alloc, batch_inner, accumulate, None)
