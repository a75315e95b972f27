"""The direct Numba kernels of depthwise convolution (``groups == C``, ``K = m*C``).

Output plane ``k = c*m + q`` of an image is the correlation of input plane ``c`` with the
``fh x fw`` taps of filter k, so im2col and a matrix product (of ``fh*fw`` columns) would be
the wrong tool.  A work item is a block of ``ci`` channels of a chunk of ``ni`` images.  It
copies its planes, image by image in channel order (contiguous memory), into a buffer that
stays in the core's cache, padded as the padding mode says (so every mode and asymmetric
padding cost nothing extra) and split by stride phase: padded pixel ``(r, x)`` of slot s,
with ``r = v*sh + py`` and ``x = u*sw + px``, is entry ``((py*sw + px)*S + s)*hq*wq + v*wq +
u`` (``S = ci*ni`` slots of ``hq x wq`` entries per phase; slot ``(c - c0)*ni + (n - n0)``, so
the planes of one channel are consecutive slots).  Output position ``(s, i, j)``, laid out as
``p = (s*hq + i)*wq + j``, then reads for tap ``(a, b)`` the entry at ``offset(a, b) + p``:
every tap of a channel is one contiguous run over all its images, ``acc[p] += w *
buf[offset + p]``.  The extra positions (``i >= Ho`` or ``j >= Wo``) are computed and
dropped.  LLVM vectorises the runs (``np.uint64`` offsets, which Numba need not check for
negative indices); forward runs are rounded up to whole vector blocks (``_RUN``) so that no
scalar remainder loop runs.  Rows between the planes and the buffers (input rows with stride
1, output rows, the output gradient's rows and the input gradient's with stride 1) are moved
by :func:`numbaconv._simd.copy_run`, a few vector moves per row where a loop would cost more
than the copy.

Backward, the item scatters the input gradient into a buffer of the same layout (``dout``
laid out with the same pitch, zeros at the extra positions), a block of positions at a time
for all taps (with stride 1 and one filter per channel it gathers it instead, as the forward
pass computes an output: see :func:`backward_group`), folds it back into ``dx`` (border
cells onto the pixels they were copied from), and accumulates the weight and bias gradients
of each channel in 16 to 128 running sums per tap (``lanes``, by the plane size; position p
adds into sum ``p mod lanes``, in whole vectors), added up in a fixed order; the items'
parts are then added in chunk order.  No two items write the same memory and every sum has
one order, so results are bitwise identical for any number of threads (and between the
parallel and serial drivers, which hand the items out in groups that share buffers: grouping
changes no result).  Sums over taps run in the order rows of the kernel, then columns.

The extra positions of ``dout`` are zeros, so they add nothing to ``dx`` and ``db``, and to
``dw`` only ``0 * x``: an input holding an infinity or NaN where only an extra position reads
it (the right border beyond the last window, say) gives NaN there, not PyTorch's finite value.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from numbaconv._kernels import INTERNAL, _copy, _zero
from numbaconv._pad_modes import ZEROS
from numbaconv._simd import (
    add_vector,
    copy_run,
    join_pairs,
    multiply_add_vector,
    split_pairs,
    vector_lanes,
)

# Runs are rounded up to a multiple of this many entries (LLVM's vector block: 4 x 8 float32).
_RUN = 32
# Running sums per tap of the weight gradient (and of the bias gradient): a power of two,
# from 16 for small planes (whose items would spend more time zeroing and adding up 128
# sums than summing) to 128; a function of the plane size and the item's images only.
_FEWEST_LANES, _MOST_LANES = 16, 128
# The backward pass runs every tap over a block of this many times the running sums'
# positions before the next block.
_BLOCK_LANES = 8


# --- plane buffers --------------------------------------------------------------------------

@njit(cache=True, inline="always")
def _layout(fh, fw, sh, sw, dh, dw, ho, wo):
    """``(hb, wb, hq, wq)``: rows and columns of the padded plane that windows read, and rows
    and columns of a phase plane."""
    hb = (ho - 1) * sh + (fh - 1) * dh + 1
    wb = (wo - 1) * sw + (fw - 1) * dw + 1
    return hb, wb, (hb + sh - 1) // sh, (wb + sw - 1) // sw


@njit(cache=True, inline="always")
def _round_run(count):
    return (count + _RUN - 1) // _RUN * _RUN


@njit(cache=True, inline="always")
def _buffer_entries(sh, sw, hq, wq, batch):
    """Entries of a batch buffer: its phase planes, and room for the runs of the last phase
    plane to reach past its end (extra positions, rounding)."""
    return sh * sw * batch * hq * wq + (hq + 1) * wq + _RUN


@njit(cache=True, inline="always")
def _cell(r, x, sh, sw, hq, wq, batch):
    """Buffer entry of padded pixel ``(r, x)`` of batch image 0."""
    return (((r % sh) * sw + x % sw) * batch * hq + r // sh) * wq + x // sw


@njit(cache=True, inline="always")
def _fill_rows(src, s0, h, w, buf, b0, top, left, rows, cols, phases, sh, sw, wq):
    """The input rows that windows reach into the buffer (the columns they reach), and
    nothing else: the zero padding's part of :func:`_fill_buffer`."""
    n_rows = min(h, rows.shape[0] - top)
    if sw == 1:
        lo, hi = phases[0, 0], phases[0, 1]
        if hi > lo and sh == 1:  # the rows of the buffer are wq apart
            d = b0 + top * wq + lo
            for y in range(n_rows):
                copy_run(buf, d + y * wq, src, s0 + y * w + lo - left, hi - lo)
        elif hi > lo:
            for y in range(n_rows):
                copy_run(buf, b0 + rows[y + top, 1] + lo, src, s0 + y * w + lo - left, hi - lo)
        return
    if sw == 2:  # both phases at once: the stride-2 reads become shuffles of vectors
        reach = min(w, cols.shape[0] - left)  # input columns that windows reach
        if reach <= 0:
            return
        pairs = reach // 2
        first, second = cols[left, 1], cols[min(left + 1, cols.shape[0] - 1), 1]
        last = cols[left + reach - 1, 1]
        for y in range(n_rows):
            d_row = b0 + rows[y + top, 1]
            split_pairs(buf, d_row + first, d_row + second, src, s0 + y * w, pairs)
            if reach % 2 == 1:
                buf[d_row + last] = src[s0 + y * w + reach - 1]
        return
    for y in range(n_rows):
        d_row = b0 + rows[y + top, 1]
        s_row = s0 + y * w
        for px in range(sw):
            lo, hi = phases[px, 0], phases[px, 1]
            if hi > lo:
                _copy(buf, d_row + cols[px, 1] + lo, 1, src, s_row + cols[lo * sw + px, 0], sw,
                      hi - lo)


@njit(**INTERNAL)
def _fill_buffer(src, s0, h, w, buf, b0, top, left, rows, cols, phases, sh, sw, wq, zeros):
    """Padded plane ``src[s0 : s0 + h*w]`` into the batch buffer at image offset ``b0``, as
    the plan of :func:`numbaconv._depthwise.tables` says (the entries a window reads); border
    cells copy their source pixel.
    Entries it does not write never change, so a buffer zeroed once stays finite; with
    ``zeros`` the border is such entries, and only the input rows are copied."""
    if zeros:
        _fill_rows(src, s0, h, w, buf, b0, top, left, rows, cols, phases, sh, sw, wq)
        return
    for r in range(rows.shape[0]):
        y = rows[r, 0]
        d_row = b0 + rows[r, 1]
        s_row = s0 + y * w
        for px in range(sw):
            lo, hi, count = phases[px, 0], phases[px, 1], phases[px, 2]
            d = d_row + cols[px, 1]
            if y < 0:
                _zero(buf, d, count)
                continue
            for u in range(lo):
                xs = cols[u * sw + px, 0]
                buf[d + u] = src[s_row + xs] if xs >= 0 else 0
            if hi > lo and sw == 1:
                copy_run(buf, d + lo, src, s_row + cols[lo, 0], hi - lo)
            elif hi > lo:
                _copy(buf, d + lo, 1, src, s_row + cols[lo * sw + px, 0], sw, hi - lo)
            for u in range(hi, count):
                xs = cols[u * sw + px, 0]
                buf[d + u] = src[s_row + xs] if xs >= 0 else 0


@njit(cache=True, inline="always")
def _fold_buffer(dbuf, b0, dx, d0, h, w, top, left, rows, cols, phases, sw, mode):
    """``dx[d0 : d0 + h*w]`` = the padded plane gradient at image offset ``b0`` of ``dbuf``
    (laid out as :func:`_fill_buffer` fills a buffer) folded back: the pixels' own entries
    first, row by row, then every border cell, in row order, added onto its source pixel."""
    hb, wb = rows.shape[0], cols.shape[0]
    reach = 0  # input columns inside some window
    for px in range(sw):
        if phases[px, 5] > 0:
            reach = max(reach, phases[px, 3] + (phases[px, 5] - 1) * sw + 1)
    for y in range(h):
        r = y + top
        d_row = d0 + y * w
        if r >= hb:  # below every window
            _zero(dx, d_row, w)
            continue
        if sw == 1:
            copy_run(dx, d_row, dbuf, b0 + rows[r, 1] + left, reach)
        elif sw == 2 and wb >= 2:  # the phases of even and odd input columns, interleaved
            even = left % 2
            odd = 1 - even
            e0 = b0 + rows[r, 1] + cols[even, 1] + phases[even, 4]
            pairs = phases[odd, 5]
            join_pairs(dx, d_row, dbuf, e0, b0 + rows[r, 1] + cols[odd, 1] + phases[odd, 4],
                       pairs)
            if phases[even, 5] > pairs:
                dx[d_row + 2 * pairs] = dbuf[e0 + pairs]
        else:
            for px in range(sw):
                _copy(dx, d_row + phases[px, 3], sw, dbuf,
                      b0 + rows[r, 1] + cols[px, 1] + phases[px, 4], 1, phases[px, 5])
        if reach < w:
            _zero(dx, d_row + reach, w - reach)
    if mode == ZEROS:
        return
    for r in range(hb):
        y = rows[r, 0]
        inside = r >= top and r < top + h
        for xp in range(wb):
            if inside and xp >= left and xp < left + w:
                continue
            xs = cols[xp, 0]
            if y >= 0 and xs >= 0:
                dx[d0 + y * w + xs] += dbuf[b0 + rows[r, 1] + cols[xp, 1]]


# --- vector loops over output positions -----------------------------------------------------

@njit(cache=True, inline="always")
def _fill(dst, start, count, value):
    d0 = np.uint64(start)
    for j in range(np.uint64(count)):
        dst[d0 + j] = value


@njit(cache=True, inline="always")
def _axpy(y, y_start, c, x, x_start, count):
    """``y[y_start + j] += c * x[x_start + j]``."""
    y0, x0 = np.uint64(y_start), np.uint64(x_start)
    for j in range(np.uint64(count)):
        y[y0 + j] += c * x[x0 + j]


@njit(cache=True, inline="always")
def _axpy3(y, first, value, c0, c1, c2, x, s0, s1, s2, count):
    """``y[j] = y[j] + c0*x[s0 + j] + c1*x[s1 + j] + c2*x[s2 + j]``, added left to right as
    three calls of :func:`_axpy` would, starting from ``value`` instead of ``y[j]`` if
    ``first``."""
    x0, x1, x2 = np.uint64(s0), np.uint64(s1), np.uint64(s2)
    if first:
        for j in range(np.uint64(count)):
            y[j] = value + c0 * x[x0 + j] + c1 * x[x1 + j] + c2 * x[x2 + j]
    else:
        for j in range(np.uint64(count)):
            y[j] = y[j] + c0 * x[x0 + j] + c1 * x[x1 + j] + c2 * x[x2 + j]


@njit(cache=True, inline="always")
def _taps9(y, value, wts, t, x, offsets, p0, count):
    """``y[j] = value + sum of wts[t + k] * x[offsets[k] + p0 + j]`` over the 9 taps of a
    3x3 kernel, added left to right (as :func:`_axpy3` row by row would)."""
    c0, c1, c2, c3, c4, c5, c6, c7, c8 = (wts[t], wts[t + 1], wts[t + 2], wts[t + 3],
                                          wts[t + 4], wts[t + 5], wts[t + 6], wts[t + 7],
                                          wts[t + 8])
    x0, x1, x2 = (np.uint64(offsets[0] + p0), np.uint64(offsets[1] + p0),
                  np.uint64(offsets[2] + p0))
    x3, x4, x5 = (np.uint64(offsets[3] + p0), np.uint64(offsets[4] + p0),
                  np.uint64(offsets[5] + p0))
    x6, x7, x8 = (np.uint64(offsets[6] + p0), np.uint64(offsets[7] + p0),
                  np.uint64(offsets[8] + p0))
    for j in range(np.uint64(count)):
        y[j] = (value + c0 * x[x0 + j] + c1 * x[x1 + j] + c2 * x[x2 + j] + c3 * x[x3 + j]
                + c4 * x[x4 + j] + c5 * x[x5 + j] + c6 * x[x6 + j] + c7 * x[x7 + j]
                + c8 * x[x8 + j])


@njit(cache=True, inline="always")
def _sum_lanes(run):
    """Running sums per tap for items of ``run`` positions per channel."""
    lanes = _FEWEST_LANES
    while lanes < _MOST_LANES and lanes * _BLOCK_LANES < run:
        lanes *= 2
    return lanes


@njit(cache=True, inline="always")
def _lane_sums(acc, a_start, g, g_start, x, x_start, count, products, lanes):
    """Running sums ``acc[a_start + p mod lanes] += g[g_start + p] * x[x_start + p]``
    (``g[g_start + p]`` alone without ``products``) for ``p < count``, in order of p; whole
    vectors through :mod:`numbaconv._simd` (``lanes`` is a multiple of ``V``)."""
    vector = vector_lanes(acc)
    for p0 in range(0, count, lanes):
        n = min(lanes, count - p0)
        whole = n - n % vector
        g0, x0 = g_start + p0, x_start + p0
        for j in range(0, whole, vector):
            if products:
                multiply_add_vector(acc, a_start + j, g, g0 + j, x, x0 + j)
            else:
                add_vector(acc, a_start + j, g, g0 + j)
        for j in range(whole, n):
            if products:
                acc[a_start + j] += g[g0 + j] * x[x0 + j]
            else:
                acc[a_start + j] += g[g0 + j]


@njit(cache=True, inline="always")
def _pairwise_sum(src, start, count):
    """``src[start : start + count].sum()`` (count a power of two), pairwise in a fixed
    order; ``src`` is used as scratch."""
    while count > 1:
        count //= 2
        for j in range(count):
            src[start + j] += src[start + count + j]
    return src[start]


# --- work items -----------------------------------------------------------------------------
#
# A work item is a block of ``ci`` channels of a chunk of ``ni`` images: its ``ci * ni`` planes
# are the buffer's slots, slot ``(c - c0) * ni + (n - n0)``, so the planes of one channel are
# consecutive slots (one run per tap) while the planes of one image are read and written in
# channel order, one contiguous stretch of memory per image.

@njit(cache=True, inline="always")
def _item_range(item, chunks, ci, ni, n_img, n_ch):
    """``(c0, c1, n0, n1, chunk)``: the channels and images of work item ``item``."""
    block = item // chunks
    chunk = item - block * chunks
    c0, n0 = block * ci, chunk * ni
    return c0, min(c0 + ci, n_ch), n0, min(n0 + ni, n_img), chunk


@njit(**INTERNAL)
def _fill_item(src, buf, c0, c1, n0, n1, ni, n_ch, h, w, hq, wq, top, left, rows, cols, phases,
               sh, sw, zeros, kept):
    """The item's input planes into their slots, image by image (and copied to ``kept`` if
    it is not empty)."""
    plane_size = h * w
    for n in range(n0, n1):
        s0 = (n * n_ch + c0) * plane_size
        if kept.size > 0:
            _copy(kept, s0, 1, src, s0, 1, (c1 - c0) * plane_size)
        for c in range(c0, c1):
            _fill_buffer(src, s0 + (c - c0) * plane_size, h, w, buf,
                         ((c - c0) * ni + n - n0) * hq * wq, top, left, rows, cols, phases, sh,
                         sw, wq, zeros)


# --- forward --------------------------------------------------------------------------------

@njit(**INTERNAL)
def _channel_output(buf, offsets, wts, kk, value, obuf, o0, p0, count, fh, fw):
    """Positions ``p0 : p0 + count`` of filter ``kk`` (one channel's slots) into
    ``obuf[o0:]``."""
    taps = fh * fw
    run = _round_run(count)
    if fh == 3 and fw == 3:
        _taps9(obuf[o0:], value, wts, kk * taps, buf, offsets, p0, run)
        return
    for a in range(fh):
        t = kk * taps + a * fw
        if fw == 3:
            _axpy3(obuf[o0:], a == 0, value, wts[t], wts[t + 1], wts[t + 2], buf,
                   offsets[a * 3] + p0, offsets[a * 3 + 1] + p0, offsets[a * 3 + 2] + p0, run)
        else:
            if a == 0:
                _fill(obuf, o0, run, value)
            for b in range(fw):
                _axpy(obuf, o0, wts[t + b], buf, offsets[a * fw + b] + p0, run)


@njit(cache=True, nogil=True)
def forward_group(x, wts, bias, out, x_kept, group, groups, items, chunks, ci, ni, fh, fw, sh,
                  sw, top, left, dh, dw, ho, wo, mode, rows, cols, phases, offsets):
    """Work items ``group, group + groups, ...``: the output planes of their channels and
    images (and, if ``x_kept`` is not empty, the copy of their input planes), with one set of
    buffers, allocated and zeroed once (every item writes what it reads, and the entries no
    item writes stay zero).  The serial driver is this function with one group; the item
    loop is not a kernel of its own, which Numba would link, optimise and emit once more."""
    n_img, n_ch, h, w = x.shape
    m = out.shape[1] // n_ch
    _, _, hq, wq = _layout(fh, fw, sh, sw, dh, dw, ho, wo)
    slots, plane = ci * ni, hq * wq
    buf = np.zeros(_buffer_entries(sh, sw, hq, wq, slots), dtype=x.dtype)
    obuf = np.empty(m * slots * plane + _RUN, dtype=x.dtype)  # slot-major, per multiplier
    src, dst, kept = x.reshape(x.size), out.reshape(out.size), x_kept.reshape(x_kept.size)
    out_size = ho * wo
    for item in range(group, items, groups):
        c0, c1, n0, n1, _ = _item_range(item, chunks, ci, ni, n_img, n_ch)
        _fill_item(src, buf, c0, c1, n0, n1, ni, n_ch, h, w, hq, wq, top, left, rows, cols,
                   phases, sh, sw, mode == ZEROS, kept)
        count = (n1 - n0) * plane
        for q in range(m):  # runs are rounded up: each spills into the next, written later
            for c in range(c0, c1):
                p0 = (c - c0) * ni * plane
                kk = c * m + q
                value = bias[kk] if bias.size > 0 else out.dtype.type(0)
                _channel_output(buf, offsets, wts, kk, value, obuf, q * slots * plane + p0, p0,
                                count, fh, fw)
        for n in range(n0, n1):
            for c in range(c0, c1):
                for q in range(m):
                    o0 = (n * n_ch * m + c * m + q) * out_size
                    a0 = q * slots * plane + ((c - c0) * ni + n - n0) * plane
                    for i in range(ho):
                        copy_run(dst, o0 + i * wo, obuf, a0 + i * wq, wo)


@njit(cache=True, parallel=True)
def forward_planes(x, wts, bias, out, x_kept, groups, items, chunks, ci, ni, fh, fw, sh, sw, top,
                   left, dh, dw, ho, wo, mode, rows, cols, phases, offsets):
    """``out`` (N, C*m, Ho, Wo) = depthwise convolution of ``x`` (N, C, H, W) with the flat
    taps ``wts`` (``(C*m) * fh * fw``) plus ``bias`` (empty: none); ``x_kept`` (empty: not
    wanted) receives a copy of ``x``.  Work items are ``ci`` channels of ``ni`` images, in
    ``chunks`` chunks of images, handed out in ``groups`` groups (:func:`forward_group`);
    ``rows`` to ``offsets`` are the buffer plan of :func:`numbaconv._depthwise.tables`."""
    for group in prange(groups):
        forward_group(x, wts, bias, out, x_kept, np.int64(group), groups, items, chunks, ci, ni,
                      fh, fw, sh, sw, top, left, dh, dw, ho, wo, mode, rows, cols, phases,
                      offsets)


# --- backward -------------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def backward_group(x, wts, dout, dx, dw_parts, db_parts, group, groups, items, chunks, ci, ni,
                   fh, fw, sh, sw, top, left, dh, dw, ho, wo, mode, rows, cols, phases, offsets):
    """Work items ``group, group + groups, ...`` (see :func:`forward_group`): ``dx`` of their
    planes, and their parts (chunks) of ``dw`` and ``db`` for their channels, with one set of
    buffers.

    With stride 1 and one filter per channel, the input gradient's entry e of a channel's
    slots is ``sum over taps t of w_t * g[e - offsets[t]]``, computed as the forward pass
    computes an output (one write per entry, the taps in order, as adding them one by one
    would); the output gradient's buffer has ``offsets[-1]`` zeros in front for the entries
    whose taps reach before the first position, and the extra positions (zeros) of the slot
    before for the others.  Otherwise every tap adds its products into a buffer zeroed by
    every item."""
    n_img, n_ch, h, w = x.shape
    m = dout.shape[1] // n_ch
    taps = fh * fw
    _, _, hq, wq = _layout(fh, fw, sh, sw, dh, dw, ho, wo)
    slots, plane = ci * ni, hq * wq
    entries = _buffer_entries(sh, sw, hq, wq, slots)
    buf = np.zeros(entries, dtype=x.dtype)
    dbuf = np.empty(entries, dtype=x.dtype)
    gathered = sh == 1 and sw == 1 and m == 1  # dx as the forward pass computes an output
    margin = offsets[taps - 1] if gathered else 0
    reversed_offsets = margin - offsets
    # dout planes laid out as the positions, slot-major per multiplier (extra positions: 0)
    grad = np.zeros(margin + m * slots * plane + _RUN, dtype=x.dtype)
    zero = x.dtype.type(0)
    lanes = _sum_lanes(ni * plane)
    block = _BLOCK_LANES * lanes
    acc = np.empty((taps + 1) * lanes, dtype=x.dtype)  # per tap, then db
    src, dsrc, dst = x.reshape(x.size), dout.reshape(dout.size), dx.reshape(dx.size)
    out_size, plane_size = ho * wo, h * w
    for item in range(group, items, groups):
        c0, c1, n0, n1, chunk = _item_range(item, chunks, ci, ni, n_img, n_ch)
        if not gathered:
            _zero(dbuf, 0, dbuf.size)
        _fill_item(src, buf, c0, c1, n0, n1, ni, n_ch, h, w, hq, wq, top, left, rows, cols,
                   phases, sh, sw, mode == ZEROS, src[:0])
        for n in range(n0, n1):
            for c in range(c0, c1):
                for q in range(m):
                    g0 = (n * n_ch * m + c * m + q) * out_size
                    a0 = margin + q * slots * plane + ((c - c0) * ni + n - n0) * plane
                    for i in range(ho):
                        copy_run(grad, a0 + i * wq, dsrc, g0 + i * wo, wo)
        run = (n1 - n0) * plane  # exactly: the positions after are another channel's
        for c in range(c0, c1):
            p0 = (c - c0) * ni * plane
            for q in range(m):
                kk = c * m + q
                g = margin + q * slots * plane + p0
                _zero(acc, 0, acc.size)
                # A block of positions at a time, all taps, while it is in L1.  Blocks are
                # whole multiples of lanes, so position p adds into running sum p mod lanes.
                for b0 in range(0, run, block):
                    count = min(block, run - b0)
                    if gathered:  # runs rounded up: the spill is written again later
                        _channel_output(grad, reversed_offsets, wts, kk, zero, dbuf, p0 + b0,
                                        g - margin + b0, count, fh, fw)
                    for tap in range(taps):
                        at = offsets[tap] + p0 + b0
                        if not gathered:
                            _axpy(dbuf, at, wts[kk * taps + tap], grad, g + b0, count)
                        _lane_sums(acc, tap * lanes, grad, g + b0, buf, at, count, True, lanes)
                    _lane_sums(acc, taps * lanes, grad, g + b0, buf, 0, count, False, lanes)
                for tap in range(taps):
                    dw_parts[chunk, kk, tap] = _pairwise_sum(acc, tap * lanes, lanes)
                db_parts[chunk, kk] = _pairwise_sum(acc, taps * lanes, lanes)
        for n in range(n0, n1):
            for c in range(c0, c1):
                _fold_buffer(dbuf, ((c - c0) * ni + n - n0) * plane, dst,
                             (n * n_ch + c) * plane_size, h, w, top, left, rows, cols, phases,
                             sw, mode)


@njit(cache=True, parallel=True)
def backward_planes(x, wts, dout, dx, dw_parts, db_parts, groups, items, chunks, ci, ni, fh, fw,
                    sh, sw, top, left, dh, dw, ho, wo, mode, rows, cols, phases, offsets):
    """``dx`` and, per chunk of images, the parts ``dw_parts[chunk]`` (K, fh*fw) and
    ``db_parts[chunk]`` (K) of the gradients of :func:`forward_planes`."""
    for group in prange(groups):
        backward_group(x, wts, dout, dx, dw_parts, db_parts, np.int64(group), groups, items,
                       chunks, ci, ni, fh, fw, sh, sw, top, left, dh, dw, ho, wo, mode, rows,
                       cols, phases, offsets)
