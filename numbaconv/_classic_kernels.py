"""Numba kernels of the classic column layout ``cols[r, q * N + n]`` (the drop-in
``im2col_indices`` / ``col2im_indices``), and the batch-last copies they go through.

``r = (c * fh + a) * fw + b`` and ``q = i * Wo + j``, as in ``_kernels``, whose conventions
these kernels follow: work items that write disjoint memory, a parallel and a serial driver per
kernel, ``np.int64`` index arithmetic and ``np.uint64`` offsets in the innermost loops.  With
the batch last, the N entries of one column row are contiguous in the input too, so im2col
first copies the input batch-last (split by stride phase where the stride is above 1, so that
every tap reads a contiguous run) and col2im sums into a batch-last buffer of a few image rows.
Transposes, which LLVM cannot vectorise, move square blocks through vector registers
(``_simd.py``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange
from numba.extending import register_jitable

from numbaconv._kernels import (
    _ONE,
    _ZERO,
    INTERNAL,
    _add,
    _copy,
    _phase_offset,
    _phase_row,
    _valid_span,
    _zero,
)
from numbaconv._simd import VECTOR_BYTES, transpose_block, transpose_block_pairs

# Elements of the buffer in which col2im_classic sums a block of image rows batch last
# (64 KiB of float32: it stays in the core's L2 cache until written out).
_BUFFER_ELEMENTS = 1 << 14

_TILE = 256  # positions per transpose tile (256: each image contributes 1-2 KB runs to read)


@njit(cache=True, inline="always")
def _transpose_tile(src, dst, m0, count, n_img, first_start, first_stride, to_batch_last):
    """Positions ``m0 ... m0 + count`` moved between batch last, ``(M, N)`` from offset 0, and
    batch first, ``N`` rows that start at ``first_start`` every ``first_stride`` elements:
    from ``src`` batch first to ``dst`` batch last (``to_batch_last``), or back.

    Square blocks of ``V = 32 // itemsize`` images and positions go through vector registers
    (:func:`numbaconv._simd.transpose_block`); the images and positions left over are copied
    one element at a time.  (Inlined: each caller moves in one direction, known when it is
    compiled.)"""
    lanes = VECTOR_BYTES // src.itemsize
    n_blocks_end = n_img - n_img % lanes
    m_blocks_end = count - count % lanes
    for n0 in range(0, n_blocks_end, lanes):
        first = first_start + n0 * first_stride + m0
        for m in range(0, m_blocks_end, lanes):
            last = (m0 + m) * n_img + n0
            if to_batch_last:
                transpose_block(src, first + m, first_stride, dst, last, n_img)
            else:
                transpose_block(src, last, n_img, dst, first + m, first_stride)
    for n in range(n_img):
        done = m_blocks_end if n < n_blocks_end else 0
        first = first_start + n * first_stride + m0 + done
        last = (m0 + done) * n_img + n
        if to_batch_last:
            _copy(dst, last, n_img, src, first, 1, count - done)
        else:
            _copy(dst, first, 1, src, last, n_img, count - done)


@njit(cache=True, parallel=True)
def transpose_batch(x, out, to_batch_last):
    """``out[m, n] = x[n, m]`` (``to_batch_last``) or ``out[n, m] = x[m, n]`` (otherwise)."""
    n_img, size = x.shape if to_batch_last else (x.shape[1], x.shape[0])
    src, dst = x.reshape(x.size), out.reshape(out.size)
    for tile in prange((size + _TILE - 1) // _TILE):
        m0 = np.int64(tile) * _TILE
        _transpose_tile(src, dst, m0, min(_TILE, size - m0), n_img, 0, size, to_batch_last)


@njit(cache=True, nogil=True)
def transpose_batch_serial(x, out, to_batch_last):
    """Serial driver of :func:`transpose_batch`."""
    n_img, size = x.shape if to_batch_last else (x.shape[1], x.shape[0])
    src, dst = x.reshape(x.size), out.reshape(out.size)
    for m0 in range(0, size, _TILE):
        _transpose_tile(src, dst, m0, min(_TILE, size - m0), n_img, 0, size, to_batch_last)


@register_jitable
def _phase_counts(h, w, sh, sw):
    """Row and column phases that hold pixels: ``min(sh, H)``, ``min(sw, W)`` (a stride wider
    than the image leaves the other phases empty), and the phases' size
    ``ceil(H / sh) x ceil(W / sw)``."""
    return min(sh, h), min(sw, w), (h + sh - 1) // sh, (w + sw - 1) // sw


@njit(**INTERNAL)
def _batch_last_phases_rows(src, plane_start, image, dst, y0, y1, n_img, h, w, sh, sw):
    """Rows ``y0 ... y1`` of the plane that starts at ``src[plane_start]`` in every image
    (images ``image`` elements apart) into that plane's batch-last stride phases: pixel
    ``(y, x) = (i*sh + py, j*sw + px)`` goes to ``dst[((py*SW + px)*Hp*Wp + i*Wp + j)*N + n]``
    (``SW, Hp, Wp`` from :func:`_phase_counts`).

    For stride 2, square blocks of ``V = 32 // itemsize`` images and pixels of each phase go
    through vector registers (:func:`numbaconv._simd.transpose_block_pairs`); the images and
    pixels left over, and other strides, are copied one element at a time."""
    phases_h, phases_w, hp, wp = _phase_counts(h, w, sh, sw)
    lanes = VECTOR_BYTES // src.itemsize
    blocks = sw == 2 and phases_w == 2
    for y in range(y0, y1):
        py, i = y % sh, y // sh
        row_start = plane_start + y * w
        n_blocks_end = j_blocks_end = 0  # images, and pixels per phase, done in blocks
        if blocks:
            n_blocks_end = n_img - n_img % lanes
            j_blocks_end = w // 2 - w // 2 % lanes
            even = _phase_row(_ZERO, py, _ZERO, i, phases_h, phases_w, hp, wp) * n_img
            odd = _phase_row(_ZERO, py, _ONE, i, phases_h, phases_w, hp, wp) * n_img
            for n0 in range(0, n_blocks_end, lanes):
                first = row_start + n0 * image
                for j in range(0, j_blocks_end, lanes):
                    transpose_block_pairs(src, first + 2 * j, image, dst,
                                          even + j * n_img + n0, odd + j * n_img + n0, n_img)
        for px in range(phases_w):
            d_row = _phase_row(_ZERO, py, px, i, phases_h, phases_w, hp, wp) * n_img
            count = (w - px + sw - 1) // sw
            for n in range(n_img):
                done = j_blocks_end if n < n_blocks_end else 0
                _copy(dst, d_row + done * n_img + n, n_img, src,
                      row_start + n * image + px + done * sw, sw, count - done)


@njit(cache=True, parallel=True)
def batch_last_phases(x, sh, sw, out):
    """``x`` (N, C, H, W) to ``out`` (flat, ``phases_size`` elements): batch last and split
    by stride phase, plane after plane (see :func:`_batch_last_phases_rows`), the layout
    :func:`im2col_classic_from_phases` reads.  Entries past a phase's end are left as they
    are."""
    n_img, n_ch, h, w = x.shape
    src = x.reshape(x.size)
    plane, plane_phases = np.int64(h) * w, phases_size(n_img, _ONE, h, w, sh, sw)
    for t in prange(np.int64(n_ch) * h):
        c, y = divmod(np.int64(t), h)
        _batch_last_phases_rows(src, c * plane, n_ch * plane, out[c * plane_phases:], y, y + 1,
                                n_img, h, w, sh, sw)


@njit(cache=True, nogil=True)
def batch_last_phases_serial(x, sh, sw, out):
    """Serial driver of :func:`batch_last_phases`."""
    n_img, n_ch, h, w = x.shape
    src = x.reshape(x.size)
    plane, plane_phases = np.int64(h) * w, phases_size(n_img, _ONE, h, w, sh, sw)
    for c in range(np.int64(n_ch)):
        _batch_last_phases_rows(src, c * plane, n_ch * plane, out[c * plane_phases:], _ZERO,
                                np.int64(h), n_img, h, w, sh, sw)


@register_jitable
def phases_size(n, c, h, w, sh, sw):
    """Elements of an (N, C, H, W) input split by stride phase, keeping only the phases that
    hold pixels (:func:`_phase_counts`): below 4x its size.  The kernels size their buffers
    with it, and Python the arrays it passes them: one count for both.  (A plain Python
    function that kernels can call: Python's calls compile nothing.)"""
    phases_h, phases_w, hp, wp = _phase_counts(h, w, sh, sw)
    return np.int64(n) * c * phases_h * phases_w * hp * wp


@njit(**INTERNAL)
def _im2col_classic_taps(src, dst, r0, r1, n_img, h, w, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo):
    """Rows ``r0 ... r1`` of the classic columns, ``r = (c*fh + a)*fw + b``: tap (a, b) of
    plane c at every output position, ``Ho`` segments of ``Wo*N`` values, read from the input
    batch last and split by stride phase (:func:`batch_last_phases`; with stride 1 the one
    phase is a plane's batch-last copy, see :func:`im2col_classic`).  Output row ``i`` of the
    tap is row ``i + oy`` of phase ``(py, px)``, shifted by ``ox`` pixels: one contiguous copy
    of ``(j_hi - j_lo) * N`` values.  (A tap with no valid row or column reads nothing, so its
    phase may be an empty one that is not stored.)"""
    taps = np.int64(fh) * fw
    phases_h, phases_w, hp, wp = _phase_counts(h, w, sh, sw)
    seg = np.int64(wo) * n_img
    for r in range(r0, r1):
        c = r // taps
        a = (r - c * taps) // fw
        b = r - c * taps - a * fw
        start = r * ho * seg
        off_h, off_w = a * dh - ph, b * dw - pw
        py, oy = _phase_offset(off_h, sh)
        px, ox = _phase_offset(off_w, sw)
        i_lo, i_hi = _valid_span(off_h, sh, h, ho)
        j_lo, j_hi = _valid_span(off_w, sw, w, wo)
        _zero(dst, start, i_lo * seg)
        _zero(dst, start + i_hi * seg, (ho - i_hi) * seg)
        if i_lo == i_hi or j_lo == j_hi:
            _zero(dst, start + i_lo * seg, (i_hi - i_lo) * seg)
            continue
        s_first = (_phase_row(c, py, px, i_lo + oy, phases_h, phases_w, hp, wp) + j_lo + ox
                   ) * n_img
        if wo == wp:
            # The tap's output rows are consecutive rows of its phase, as long: copy the run
            # from the first valid value to the last, then zero the entries of the padding
            # columns, which the run filled from the rows' neighbours.
            _copy(dst, start + i_lo * seg + j_lo * n_img, 1, src, s_first, 1,
                  (i_hi - i_lo - 1) * seg + (j_hi - j_lo) * n_img)
            for i in range(i_lo, i_hi):
                _zero(dst, start + i * seg, j_lo * n_img)
                _zero(dst, start + i * seg + j_hi * n_img, (wo - j_hi) * n_img)
            continue
        for i in range(i_lo, i_hi):
            d_row = start + i * seg
            _zero(dst, d_row, j_lo * n_img)
            _copy(dst, d_row + j_lo * n_img, 1, src, s_first + (i - i_lo) * wp * n_img, 1,
                  (j_hi - j_lo) * n_img)
            _zero(dst, d_row + j_hi * n_img, (wo - j_hi) * n_img)


@njit(cache=True, parallel=True)
def im2col_classic_from_phases(phases, n_img, n_ch, h, w, fh, fw, sh, sw, ph, pw, dh, dw, ho,
                               wo, cols):
    """:func:`im2col_classic` from ``phases``, the whole input batch last and split by stride
    phase (:func:`batch_last_phases`; for stride 1, :func:`transpose_batch`), a row of the
    columns per work item: for planes too large for a buffer in cache."""
    src, dst = phases.reshape(phases.size), cols.reshape(cols.size)
    for r in prange(np.int64(n_ch) * fh * fw):
        _im2col_classic_taps(src, dst, np.int64(r), np.int64(r) + 1, n_img, h, w, fh, fw, sh, sw,
                             ph, pw, dh, dw, ho, wo)


@njit(cache=True, nogil=True)
def im2col_classic_from_phases_serial(phases, n_img, n_ch, h, w, fh, fw, sh, sw, ph, pw, dh,
                                      dw, ho, wo, cols):
    """Serial driver of :func:`im2col_classic_from_phases`."""
    src, dst = phases.reshape(phases.size), cols.reshape(cols.size)
    _im2col_classic_taps(src, dst, _ZERO, np.int64(n_ch) * fh * fw, n_img, h, w, fh, fw, sh, sw,
                         ph, pw, dh, dw, ho, wo)


@njit(cache=True, inline="always")
def _plane_to_batch_last(src, buf, c, n_img, n_ch, h, w, sh, sw):
    """Plane ``c`` of every image into ``buf`` batch last, ``buf[p * N + n] = x[n, c].flat[p]``
    (stride 1: the plane is its only phase), a tile of positions at a time."""
    plane = np.int64(h) * w
    for m0 in range(0, plane, _TILE):
        _transpose_tile(src, buf, m0, min(_TILE, plane - m0), n_img, c * plane, n_ch * plane,
                        True)


@njit(cache=True, inline="always")
def _plane_to_batch_last_phases(src, buf, c, n_img, n_ch, h, w, sh, sw):
    """Plane ``c`` of every image into ``buf``, batch last and split by stride phase (see
    :func:`_batch_last_phases_rows`)."""
    plane = np.int64(h) * w
    _batch_last_phases_rows(src, c * plane, n_ch * plane, buf, _ZERO, np.int64(h), n_img, h, w,
                            sh, sw)


@njit(cache=True, inline="always")
def _im2col_classic_plane(fill, src, dst, buf, c, tap_lo, tap_hi, n_img, n_ch, h, w, fh, fw,
                          sh, sw, ph, pw, dh, dw, ho, wo):
    """Taps ``tap_lo ... tap_hi`` of plane ``c``: ``fill`` (:func:`_plane_to_batch_last` for
    stride 1, else :func:`_plane_to_batch_last_phases`) puts the plane of every image batch
    last into ``buf`` (``phases_size(N, 1, H, W, sh, sw)`` elements), split by stride phase,
    and the taps' rows are copied out of it while it is still in cache.  (Inlined into the
    drivers, which then link the kernels it calls directly; a driver of one stride class
    compiles only its own ``fill``.)"""
    fill(src, buf, c, n_img, n_ch, h, w, sh, sw)
    out = dst[c * fh * fw * ho * wo * n_img:]  # the plane's rows: buf is a one-plane input
    _im2col_classic_taps(buf, out, tap_lo, tap_hi, n_img, h, w, fh, fw, sh, sw, ph, pw, dh, dw,
                         ho, wo)


@njit(cache=True, inline="always")
def _im2col_classic_parallel(fill, x, groups, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, cols):
    """The body of the parallel drivers (see :func:`im2col_classic`)."""
    n_img, n_ch, h, w = x.shape
    src, dst = x.reshape(x.size), cols.reshape(cols.size)
    taps = np.int64(fh) * fw
    buf_size = phases_size(n_img, _ONE, h, w, sh, sw)
    for item in prange(np.int64(n_ch) * groups):
        c, group = divmod(np.int64(item), groups)
        buf = np.empty(buf_size, dtype=x.dtype)
        _im2col_classic_plane(fill, src, dst, buf, c, group * taps // groups,
                              (group + 1) * taps // groups, n_img, n_ch, h, w, fh, fw, sh, sw,
                              ph, pw, dh, dw, ho, wo)


@njit(cache=True, inline="always")
def _im2col_classic_serial(fill, x, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, cols):
    """The body of the serial drivers (see :func:`im2col_classic_serial`)."""
    n_img, n_ch, h, w = x.shape
    src, dst = x.reshape(x.size), cols.reshape(cols.size)
    buf = np.empty(phases_size(n_img, _ONE, h, w, sh, sw), dtype=x.dtype)
    for c in range(np.int64(n_ch)):
        _im2col_classic_plane(fill, src, dst, buf, c, _ZERO, np.int64(fh) * fw, n_img, n_ch, h,
                              w, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo)


@njit(cache=True, parallel=True)
def im2col_classic_unit_stride(x, groups, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, cols):
    """:func:`im2col_classic` for stride 1."""
    _im2col_classic_parallel(_plane_to_batch_last, x, groups, fh, fw, sh, sw, ph, pw, dh, dw,
                             ho, wo, cols)


@njit(cache=True, parallel=True)
def im2col_classic_strided(x, groups, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, cols):
    """:func:`im2col_classic` for strides other than 1."""
    _im2col_classic_parallel(_plane_to_batch_last_phases, x, groups, fh, fw, sh, sw, ph, pw,
                             dh, dw, ho, wo, cols)


@njit(cache=True, nogil=True)
def im2col_classic_serial_unit_stride(x, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, cols):
    """:func:`im2col_classic_serial` for stride 1."""
    _im2col_classic_serial(_plane_to_batch_last, x, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo,
                           cols)


@njit(cache=True, nogil=True)
def im2col_classic_serial_strided(x, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, cols):
    """:func:`im2col_classic_serial` for strides other than 1."""
    _im2col_classic_serial(_plane_to_batch_last_phases, x, fh, fw, sh, sw, ph, pw, dh, dw, ho,
                           wo, cols)


def im2col_classic(x, groups, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, cols) -> None:
    """Fill ``cols[(c*fh + a)*fw + b, (i*wo + j)*N + n] = xpad[n, c, i*sh + a*dh, j*sw + b*dw]``
    from ``x`` (N, C, H, W), a plane at a time (:func:`_im2col_classic_plane`): every run of
    the classic layout is a contiguous copy from a buffer in cache, and no batch-last copy of
    the whole input goes through memory.  Each plane's taps are cut into ``groups`` work
    items, which each make the plane's batch-last copy, so that a few planes still keep
    every thread busy.

    The parallel driver of the stride class (:func:`im2col_classic_unit_stride`,
    :func:`im2col_classic_strided`): each compiles only the plane copy it uses.
    """
    driver = im2col_classic_unit_stride if sh == 1 and sw == 1 else im2col_classic_strided
    driver(x, groups, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, cols)


def im2col_classic_serial(x, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, cols) -> None:
    """Serial driver of :func:`im2col_classic`: one plane after the other, whole
    (:func:`im2col_classic_serial_unit_stride` or :func:`im2col_classic_serial_strided`)."""
    if sh == 1 and sw == 1:
        im2col_classic_serial_unit_stride(x, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, cols)
    else:
        im2col_classic_serial_strided(x, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, cols)


@njit(cache=True, inline="always")
def _col2im_classic_item(src, buf, t, n_img, h, w, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo):
    """Row ``t = c * H + y`` of the gradient in every image, batch last (W, N), where the
    classic layout's runs are contiguous, into ``buf[:W*N]``.  (Inlined into its one caller,
    :func:`_col2im_classic_rows`.)"""
    taps = np.int64(fh) * fw
    row_len = np.int64(ho) * wo * n_img
    c = t // h
    y = t - c * h
    _zero(buf, 0, w * n_img)
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
                _add(buf, (j_lo + off_w) * n_img, 1, src, s_row + j_lo * n_img,
                     (j_hi - j_lo) * n_img)
            else:
                for j in range(j_lo, j_hi):
                    _add(buf, (j * sw + off_w) * n_img, 1, src, s_row + j * n_img, n_img)


@njit(cache=True, inline="always")
def _col2im_classic_rows(src, dst, buf, block, rows_per_block, rows, n_img, h, w, fh, fw, sh,
                         sw, ph, pw, dh, dw, ho, wo):
    """Rows ``block * rows_per_block ...`` of the images (a row is ``t = c * H + y``), summed
    batch last in ``buf``, then written to ``dst`` (flat (N, C, H, W)): in every image, these
    rows are one contiguous run.  (Inlined into the serial driver, which then links
    :func:`_transpose_tile` directly, and into :func:`_col2im_classic_block` for the parallel
    one.)"""
    first = block * rows_per_block
    count = min(rows_per_block, rows - first)
    row = np.int64(w) * n_img
    for r in range(count):
        _col2im_classic_item(src, buf[r * row:], first + r, n_img, h, w, fh, fw, sh, sw, ph,
                             pw, dh, dw, ho, wo)
    size = count * w
    for m0 in range(0, size, _TILE):
        _transpose_tile(buf, dst, m0, min(_TILE, size - m0), n_img, first * w, rows * w, False)


@njit(**INTERNAL)
def _col2im_classic_block(src, dst, block, rows_per_block, rows, n_img, h, w, fh, fw, sh, sw, ph,
                          pw, dh, dw, ho, wo):
    """:func:`_col2im_classic_rows` in a buffer of its own: a work item of
    :func:`col2im_classic`, whose loop body is then one call (Numba's parallel loops type and
    compile their body a second time)."""
    buf = np.empty(rows_per_block * w * n_img, dtype=dst.dtype)
    _col2im_classic_rows(src, dst, buf, block, rows_per_block, rows, n_img, h, w, fh, fw, sh, sw,
                         ph, pw, dh, dw, ho, wo)


@njit(cache=True, parallel=True)
def col2im_classic(cols, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, dx):
    """Overwrite ``dx`` (N, C, H, W) with the adjoint of :func:`im2col_classic` applied to
    ``cols``, a block of image rows at a time (see :func:`_col2im_classic_rows`)."""
    n_img, n_ch, h, w = dx.shape
    src, dst = cols.reshape(cols.size), dx.reshape(dx.size)
    rows = np.int64(n_ch) * h
    per_block = max(1, _BUFFER_ELEMENTS // (np.int64(w) * n_img))
    for block in prange((rows + per_block - 1) // per_block):
        _col2im_classic_block(src, dst, np.int64(block), per_block, rows, n_img, h, w, fh, fw,
                              sh, sw, ph, pw, dh, dw, ho, wo)


@njit(cache=True, nogil=True)
def col2im_classic_serial(cols, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, dx):
    """Serial driver of :func:`col2im_classic`."""
    n_img, n_ch, h, w = dx.shape
    src, dst = cols.reshape(cols.size), dx.reshape(dx.size)
    rows = np.int64(n_ch) * h
    per_block = max(1, _BUFFER_ELEMENTS // (np.int64(w) * n_img))
    buf = np.empty(per_block * w * n_img, dtype=dx.dtype)
    for block in range((rows + per_block - 1) // per_block):
        _col2im_classic_rows(src, dst, buf, np.int64(block), per_block, rows, n_img, h, w, fh,
                             fw, sh, sw, ph, pw, dh, dw, ho, wo)
