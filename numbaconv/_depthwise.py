"""Depthwise convolution (``groups == C``, ``K = m*C``) by direct Numba kernels.

Output plane ``k = c*m + q`` of an image is the correlation of input plane ``c`` with the
``fh x fw`` taps of filter k, so im2col and a matrix product (of ``fh*fw`` columns) would be
the wrong tool.  A work item is one channel of a chunk of images.  It copies the channel's
planes, a batch of images at a time, into a buffer that stays in the core's cache, padded as
the padding mode says (so every mode and asymmetric padding cost nothing extra) and split by
stride phase: padded pixel ``(r, x)`` of batch image s, with ``r = v*sh + py`` and
``x = u*sw + px``, is entry ``((py*sw + px)*B + s)*hq*wq + v*wq + u`` (``B`` images of
``hq x wq`` entries per phase).  Output position ``(s, i, j)``, laid out as
``p = (s*hq + i)*wq + j``, then reads for tap ``(a, b)`` the entry at ``offset(a, b) + p``:
every tap is one contiguous run over the whole batch, ``acc[p] += w * buf[offset + p]``, long
even for 7x7 planes.  The extra positions (``i >= Ho`` or ``j >= Wo``) are computed and
dropped.  LLVM vectorises the runs (``np.uint64`` offsets, which Numba need not check for
negative indices); their lengths are rounded up to whole vector blocks (``_RUN``) so that no
scalar remainder loop runs.

Backward, the item scatters the input gradient of a batch into a buffer of the same layout
(``dout`` laid out with the same pitch, zeros at the extra positions), folds it back into
``dx`` (border cells onto the pixels they were copied from), and accumulates the weight and
bias gradients in ``_LANES`` running sums per tap (position p adds into sum ``p mod
_LANES``), added up in a fixed order at the item's end; the items' parts are then added in
chunk order.  No two items write the same memory and every sum has one order, so results are
bitwise identical for any number of threads (and between the parallel and serial drivers).
Sums over taps run in the order rows of the kernel, then columns.

The extra positions of ``dout`` are zeros, so they add nothing to ``dx`` and ``db``, and to
``dw`` only ``0 * x``: an input holding an infinity or NaN where only an extra position reads
it (the right border beyond the last window, say) gives NaN there, not PyTorch's finite value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from numbaconv._kernels import _copy, _zero
from numbaconv._pad_modes import ZEROS, source_index
from numbaconv._padding import MODE_CODES
from numbaconv._validation import ConvGeometry

# Below this many multiply-adds a call runs the serial driver.
SERIAL_BELOW = 1 << 16
# Work items per call at least (channel blocks times chunks of images), where the problem
# allows, and elements (input and output) per item at least, where there are enough items.
_ITEMS = 64
_ITEM_ELEMENTS = 1 << 14
# A batch holds about this many buffer entries (as many images as fit, at least one).
_BATCH_ENTRIES = 1 << 13
# The forward pass accumulates about this many output positions at a time (in L1).
_ACC_POSITIONS = 1024
# Runs are rounded up to a multiple of this many entries (LLVM's vector block: 4 x 8 float32).
_RUN = 32
# Running sums per tap of the weight gradient (and of the bias gradient): a power of two.
_LANES = 128


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


# --- plane buffers --------------------------------------------------------------------------

@njit(cache=True, inline="always")
def _layout(h, w, fh, fw, sh, sw, dh, dw, ho, wo):
    """``(hb, wb, hq, wq, batch)``: rows and columns of the padded plane that windows read,
    rows and columns of a phase plane, and the images in a batch."""
    hb = (ho - 1) * sh + (fh - 1) * dh + 1
    wb = (wo - 1) * sw + (fw - 1) * dw + 1
    hq, wq = (hb + sh - 1) // sh, (wb + sw - 1) // sw
    return hb, wb, hq, wq, max(1, _BATCH_ENTRIES // (sh * sw * hq * wq))


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


@njit(cache=True)
def _plan(h, w, hb, wb, hq, wq, batch, sh, sw, top, left, mode):
    """Where padded rows and columns come from and go to in a batch buffer, worked out once
    per work item so that filling and folding a plane divide nothing:

    * ``rows[r] = (source row or -1, entry of row r, column 0)`` for ``r < hb``;
    * ``cols[x] = (source column or -1, offset of column x from column 0)`` for ``x < wb``;
    * ``phases[px] = (lo, hi, count, first, u0, n)``: phase px holds ``count`` read columns,
      those ``lo <= u < hi`` copy input columns ``lo*sw + px - left`` on, stride ``sw``; the
      input columns ``first + k*sw`` (``k < n``), inside some window, are entries ``u0 + k``.
    """
    rows = np.empty((hb, 2), dtype=np.int64)
    for r in range(hb):
        rows[r, 0] = source_index(r - top, h, mode)
        rows[r, 1] = _cell(r, 0, sh, sw, hq, wq, batch)
    cols = np.empty((wb, 2), dtype=np.int64)
    for x in range(wb):
        cols[x, 0] = source_index(x - left, w, mode)
        cols[x, 1] = _cell(0, x, sh, sw, hq, wq, batch)
    reach = max(min(w, wb - left), 0)  # input columns inside some window
    phases = np.empty((sw, 6), dtype=np.int64)
    for px in range(sw):
        count = (wb - px + sw - 1) // sw
        hi = min((left + w - px + sw - 1) // sw, count)  # first u with x >= left + w
        lo = min((left - px + sw - 1) // sw if left > px else 0, hi)  # first with x >= left
        first = (px - left) % sw
        phases[px, 0], phases[px, 1], phases[px, 2] = lo, hi, count
        phases[px, 3], phases[px, 4] = first, (first + left) // sw
        phases[px, 5] = (reach - first + sw - 1) // sw if first < reach else 0
    return rows, cols, phases


@njit(cache=True)
def _tap_offsets(fh, fw, sh, sw, dh, dw, hq, wq, batch):
    """Buffer entry that output position (0, 0, 0) reads, per tap."""
    offsets = np.empty(fh * fw, dtype=np.int64)
    for a in range(fh):
        for b in range(fw):
            offsets[a * fw + b] = _cell(a * dh, b * dw, sh, sw, hq, wq, batch)
    return offsets


@njit(cache=True, inline="always")
def _fill_buffer(src, s0, w, buf, b0, rows, cols, phases, sw):
    """Padded plane ``src[s0 : s0 + h*w]`` into the batch buffer at image offset ``b0``, as
    :func:`_plan` says (the entries a window reads); border cells copy their source pixel
    (zeros: 0).  Entries it does not write never change, so a buffer zeroed once stays
    finite."""
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
        for px in range(sw):
            _copy(dx, d_row + phases[px, 3], sw, dbuf,
                  b0 + rows[r, 1] + cols[px, 1] + phases[px, 4], 1, phases[px, 5])
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
def _lane_sums(acc, a_start, g, x, x_start, count, products):
    """Running sums ``acc[a_start + p mod _LANES] += g[p] * x[x_start + p]`` (``g[p]`` alone
    without ``products``) for ``p < count`` (a multiple of ``_RUN``), in order of p."""
    a0 = np.uint64(a_start)
    x0 = np.uint64(x_start)
    for p0 in range(0, count, _LANES):
        n = min(_LANES, count - p0)
        q0 = np.uint64(p0)
        if products:
            for j in range(np.uint64(n)):
                acc[a0 + j] += g[q0 + j] * x[x0 + q0 + j]
        else:
            for j in range(np.uint64(n)):
                acc[a0 + j] += g[q0 + j]


@njit(cache=True, inline="always")
def _pairwise_sum(src, start, count):
    """``src[start : start + count].sum()`` (count a power of two), pairwise in a fixed
    order; ``src`` is used as scratch."""
    while count > 1:
        count //= 2
        for j in range(count):
            src[start + j] += src[start + count + j]
    return src[start]


# --- forward --------------------------------------------------------------------------------

@njit(cache=True, inline="always")
def _batch_output(buf, offsets, wts, kk, value, acc, acc_rows, out, o0, nb, out_step, fh, fw,
                  hq, ho, wo, wq):
    """Output planes of filter ``kk`` for the ``nb`` batch images (plane s at
    ``out[o0 + s*out_step:]``), ``acc_rows`` position rows (of ``wq``) at a time."""
    taps = fh * fw
    rows = nb * hq  # position rows of the batch, ho of each image's hq used
    s, i = 0, 0  # image and output row of the next position row to write out
    for g0 in range(0, rows, acc_rows):
        g1 = min(rows, g0 + acc_rows)
        p0, run = g0 * wq, _round_run((g1 - g0) * wq)
        for a in range(fh):
            t = kk * taps + a * fw
            if fw == 3:
                _axpy3(acc, a == 0, value, wts[t], wts[t + 1], wts[t + 2], buf,
                       offsets[a * 3] + p0, offsets[a * 3 + 1] + p0, offsets[a * 3 + 2] + p0,
                       run)
            else:
                if a == 0:
                    _fill(acc, 0, run, value)
                for b in range(fw):
                    _axpy(acc, 0, wts[t + b], buf, offsets[a * fw + b] + p0, run)
        for g in range(g1 - g0):
            if i < ho:
                _copy(out, o0 + s * out_step + i * wo, 1, acc, g * wq, 1, wo)
            i += 1
            if i == hq:
                s, i = s + 1, 0


@njit(cache=True, inline="always")
def _item_range(item, chunks, channels_per_item, n_img, n_ch):
    """Channels ``[c0, c1)`` and images ``[n0, n1)`` of work item ``item``."""
    block = item // chunks
    chunk = item - block * chunks
    c0 = block * channels_per_item
    return (c0, min(c0 + channels_per_item, n_ch), chunk * n_img // chunks,
            (chunk + 1) * n_img // chunks)


@njit(cache=True)
def _forward_item(x, wts, bias, out, x_kept, item, chunks, channels_per_item, fh, fw, sh, sw,
                  dh, dw, ho, wo, rows, cols, phases, offsets):
    """Work item ``item``: for its channels and chunk of images, the output planes (and, if
    ``x_kept`` is not empty, the copy of the input planes)."""
    n_img, n_ch, h, w = x.shape
    m = out.shape[1] // n_ch
    c0, c1, n0, n1 = _item_range(item, chunks, channels_per_item, n_img, n_ch)
    hb, wb, hq, wq, batch = _layout(h, w, fh, fw, sh, sw, dh, dw, ho, wo)
    buf = np.zeros(_buffer_entries(sh, sw, hq, wq, batch), dtype=x.dtype)
    acc_rows = max(1, _ACC_POSITIONS // wq)
    acc = np.empty(_round_run(acc_rows * wq), dtype=x.dtype)
    src, dst = x.reshape(x.size), out.reshape(out.size)
    kept = x_kept.reshape(x_kept.size)
    plane_size, out_size = h * w, ho * wo
    for c in range(c0, c1):
        for b0 in range(n0, n1, batch):
            nb = min(batch, n1 - b0)
            for s in range(nb):
                s0 = ((b0 + s) * n_ch + c) * plane_size
                if kept.size > 0:
                    _copy(kept, s0, 1, src, s0, 1, plane_size)
                _fill_buffer(src, s0, w, buf, s * hq * wq, rows, cols, phases, sw)
            for q in range(m):
                kk = c * m + q
                value = bias[kk] if bias.size > 0 else out.dtype.type(0)
                _batch_output(buf, offsets, wts, kk, value, acc, acc_rows, dst,
                              (b0 * n_ch * m + kk) * out_size, nb, n_ch * m * out_size, fh, fw,
                              hq, ho, wo, wq)


@njit(cache=True)
def _tables(h, w, fh, fw, sh, sw, top, left, dh, dw, ho, wo, mode):
    """The plan of a plane buffer (:func:`_plan`) and the tap offsets, for every item."""
    hb, wb, hq, wq, batch = _layout(h, w, fh, fw, sh, sw, dh, dw, ho, wo)
    rows, cols, phases = _plan(h, w, hb, wb, hq, wq, batch, sh, sw, top, left, mode)
    return rows, cols, phases, _tap_offsets(fh, fw, sh, sw, dh, dw, hq, wq, batch)


@njit(cache=True, parallel=True)
def forward_planes(x, wts, bias, out, x_kept, chunks, channels_per_item, fh, fw, sh, sw, top,
                   left, dh, dw, ho, wo, mode):
    """``out`` (N, C*m, Ho, Wo) = depthwise convolution of ``x`` (N, C, H, W) with the flat
    taps ``wts`` (``(C*m) * fh * fw``) plus ``bias`` (empty: none); ``x_kept`` (empty: not
    wanted) receives a copy of ``x``.  Work items are ``channels_per_item`` channels of one of
    ``chunks`` chunks of images."""
    n_ch, h, w = x.shape[1], x.shape[2], x.shape[3]
    rows, cols, phases, offsets = _tables(h, w, fh, fw, sh, sw, top, left, dh, dw, ho, wo, mode)
    items = (n_ch + channels_per_item - 1) // channels_per_item * chunks
    for item in prange(items):
        _forward_item(x, wts, bias, out, x_kept, np.int64(item), chunks, channels_per_item, fh,
                      fw, sh, sw, dh, dw, ho, wo, rows, cols, phases, offsets)


@njit(cache=True, nogil=True)
def forward_planes_serial(x, wts, bias, out, x_kept, chunks, channels_per_item, fh, fw, sh, sw,
                          top, left, dh, dw, ho, wo, mode):
    """Serial driver of :func:`forward_planes`."""
    n_ch, h, w = x.shape[1], x.shape[2], x.shape[3]
    rows, cols, phases, offsets = _tables(h, w, fh, fw, sh, sw, top, left, dh, dw, ho, wo, mode)
    items = (n_ch + channels_per_item - 1) // channels_per_item * chunks
    for item in range(items):
        _forward_item(x, wts, bias, out, x_kept, item, chunks, channels_per_item, fh, fw, sh,
                      sw, dh, dw, ho, wo, rows, cols, phases, offsets)


# --- backward -------------------------------------------------------------------------------

@njit(cache=True)
def _backward_item(x, wts, dout, dx, dw_parts, db_parts, item, chunks, channels_per_item, fh,
                   fw, sh, sw, top, left, dh, dw, ho, wo, mode, rows, cols, phases, offsets):
    """Work item ``item``: its channels for its chunk of images."""
    n_img, n_ch, h, w = x.shape
    m = dout.shape[1] // n_ch
    taps = fh * fw
    c0, c1, n0, n1 = _item_range(item, chunks, channels_per_item, n_img, n_ch)
    chunk = item % chunks
    hb, wb, hq, wq, batch = _layout(h, w, fh, fw, sh, sw, dh, dw, ho, wo)
    entries = _buffer_entries(sh, sw, hq, wq, batch)
    buf = np.zeros(entries, dtype=x.dtype)
    dbuf = np.empty(entries, dtype=x.dtype)
    # dout planes of a batch with the buffer's pitch (extra positions stay 0)
    grad = np.zeros(_round_run(batch * hq * wq), dtype=x.dtype)
    acc = np.empty(m * (taps + 1) * _LANES, dtype=x.dtype)  # per tap, then db, of each q
    src, dsrc, dst = x.reshape(x.size), dout.reshape(dout.size), dx.reshape(dx.size)
    plane_size, out_size = h * w, ho * wo
    for c in range(c0, c1):
        _zero(acc, 0, acc.size)
        for b0 in range(n0, n1, batch):
            nb = min(batch, n1 - b0)
            run = _round_run(nb * hq * wq)
            for s in range(nb):
                _fill_buffer(src, ((b0 + s) * n_ch + c) * plane_size, w, buf, s * hq * wq, rows,
                             cols, phases, sw)
            _zero(dbuf, 0, entries)
            for q in range(m):
                kk = c * m + q
                for s in range(nb):
                    g0 = ((b0 + s) * n_ch * m + kk) * out_size
                    for i in range(ho):
                        _copy(grad, (s * hq + i) * wq, 1, dsrc, g0 + i * wo, 1, wo)
                a0 = q * (taps + 1) * _LANES
                for tap in range(taps):
                    _axpy(dbuf, offsets[tap], wts[kk * taps + tap], grad, 0, run)
                    _lane_sums(acc, a0 + tap * _LANES, grad, buf, offsets[tap], run, True)
                _lane_sums(acc, a0 + taps * _LANES, grad, buf, 0, run, False)
            for s in range(nb):
                _fold_buffer(dbuf, s * hq * wq, dst, ((b0 + s) * n_ch + c) * plane_size, h, w,
                             top, left, rows, cols, phases, sw, mode)
        for q in range(m):
            kk = c * m + q
            a0 = q * (taps + 1) * _LANES
            for tap in range(taps):
                dw_parts[chunk, kk, tap] = _pairwise_sum(acc, a0 + tap * _LANES, _LANES)
            db_parts[chunk, kk] = _pairwise_sum(acc, a0 + taps * _LANES, _LANES)


@njit(cache=True, parallel=True)
def backward_planes(x, wts, dout, dx, dw_parts, db_parts, chunks, channels_per_item, fh, fw, sh,
                    sw, top, left, dh, dw, ho, wo, mode):
    """``dx`` and, per chunk of images, the parts ``dw_parts[chunk]`` (K, fh*fw) and
    ``db_parts[chunk]`` (K) of the gradients of :func:`forward_planes`."""
    n_ch, h, w = x.shape[1], x.shape[2], x.shape[3]
    rows, cols, phases, offsets = _tables(h, w, fh, fw, sh, sw, top, left, dh, dw, ho, wo, mode)
    items = (n_ch + channels_per_item - 1) // channels_per_item * chunks
    for item in prange(items):
        _backward_item(x, wts, dout, dx, dw_parts, db_parts, np.int64(item), chunks,
                       channels_per_item, fh, fw, sh, sw, top, left, dh, dw, ho, wo, mode, rows,
                       cols, phases, offsets)


@njit(cache=True, nogil=True)
def backward_planes_serial(x, wts, dout, dx, dw_parts, db_parts, chunks, channels_per_item, fh,
                           fw, sh, sw, top, left, dh, dw, ho, wo, mode):
    """Serial driver of :func:`backward_planes`."""
    n_ch, h, w = x.shape[1], x.shape[2], x.shape[3]
    rows, cols, phases, offsets = _tables(h, w, fh, fw, sh, sw, top, left, dh, dw, ho, wo, mode)
    items = (n_ch + channels_per_item - 1) // channels_per_item * chunks
    for item in range(items):
        _backward_item(x, wts, dout, dx, dw_parts, db_parts, item, chunks, channels_per_item, fh,
                       fw, sh, sw, top, left, dh, dw, ho, wo, mode, rows, cols, phases, offsets)


# --- the Python layer -----------------------------------------------------------------------

def _hyper(geom: ConvGeometry, mode: str) -> tuple[int, ...]:
    return (geom.fh, geom.fw, geom.sh, geom.sw, geom.ph, geom.pw, geom.dh, geom.dw, geom.ho,
            geom.wo, MODE_CODES[mode])


def _serial(geom: ConvGeometry) -> bool:
    return geom.n * geom.k * geom.positions * geom.fh * geom.fw < SERIAL_BELOW


def _partition(geom: ConvGeometry) -> tuple[int, int]:
    """``(chunks, channels_per_item)``: work items are a block of channels of one of
    ``chunks`` chunks of images; at least ``_ITEMS`` items where there are images and channels
    enough, each of about ``_ITEM_ELEMENTS`` elements or more (a function of the problem
    only, never of the thread count)."""
    chunks = max(1, min(geom.n, -(-_ITEMS // geom.c)))
    per_channel = -(-geom.n // chunks) * (geom.h * geom.w + geom.k // geom.c * geom.positions)
    channels = max(1, min(geom.c // _ITEMS, _ITEM_ELEMENTS // max(per_channel, 1)))
    return chunks, channels


def depthwise_forward(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None,
                      geom: ConvGeometry, mode: str, keep: bool, private: bool
                      ) -> tuple[np.ndarray, DepthwiseCache | None]:
    """Output (and, with ``keep``, the cache) of the depthwise convolution of validated
    ``x`` and ``w`` (K, 1, fh, fw) with ``geom``'s padding filled as ``mode`` says;
    ``private`` says ``x`` is not the caller's array (then the cache keeps it, not a copy)."""
    out = np.empty(geom.out_shape, dtype=x.dtype)
    empty = np.empty(0, dtype=x.dtype)
    x_kept = np.empty_like(x) if keep and not private else empty.reshape(0, 0, 0, 0)
    kernel = forward_planes_serial if _serial(geom) else forward_planes
    kernel(x, w.reshape(-1), empty if bias is None else bias, out, x_kept, *_partition(geom),
           *_hyper(geom, mode))
    if not keep:
        return out, None
    return out, DepthwiseCache(x if private else x_kept, w, geom, mode)


def depthwise_backward(dout: np.ndarray, cache: DepthwiseCache
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dx, dw, db)`` of :func:`depthwise_forward` for a validated ``dout``."""
    geom, x = cache.geometry, cache.x
    w = np.ascontiguousarray(cache.w, dtype=x.dtype)
    chunks, channels_per_item = _partition(geom)
    dx = np.empty(geom.x_shape, dtype=x.dtype)
    taps = geom.fh * geom.fw
    dw_parts = np.empty((chunks, geom.k, taps), dtype=x.dtype)
    db_parts = np.empty((chunks, geom.k), dtype=x.dtype)
    kernel = backward_planes_serial if _serial(geom) else backward_planes
    kernel(x, w.reshape(-1), dout, dx, dw_parts, db_parts, chunks, channels_per_item,
           *_hyper(geom, cache.mode))
    dw, db = dw_parts[0], db_parts[0]
    for chunk in range(1, chunks):  # in chunk order: the same sums for any thread count
        dw += dw_parts[chunk]
        db += db_parts[chunk]
    return dx, dw.reshape(geom.k, 1, geom.fh, geom.fw), db
