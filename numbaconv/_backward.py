"""The backward pass of the im2col convolution: input, weight and bias gradients.

:func:`backward_pass` runs on validated arrays (:func:`numbaconv.functional.conv2d_backward`
checks ``dout`` and unpacks the forward pass's cache; the transposed convolution runs its
forward pass and its weight gradient through it).  The columns are recomputed tile by tile
as the forward pass made them (see :mod:`numbaconv._tiling`), the lanes' partial weight
gradients are added in lane order (:class:`_InOrderSum`), and each lane runs as one Numba call
or, with any other BLAS, as NumPy calls.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from numbaconv import _classic_kernels, _filter_lanes, _lane_kernels, _stages
from numbaconv._lanes import (
    Lane,
    lane_waves,
    parallel_lane_threads,
    run_lanes,
    single_threaded_blas,
)
from numbaconv._scratch import _scratch_buffer, thread_scratch
from numbaconv._stages import Stage
from numbaconv._tiling import (
    Tiling,
    _column_tiles,
    _phases_size,
    _tile_shape,
    col2im_blocks,
    im2col_blocks,
    plan_lanes,
    use_fused_lanes,
)
from numbaconv._validation import ConvGeometry


def backward_pass(dout: np.ndarray, x: np.ndarray, w: np.ndarray, geom: ConvGeometry,
                  tiling: Tiling, phased: bool = False, want_dx: bool = True,
                  want_dw: bool = True) -> tuple[np.ndarray | None, ...]:
    """``(dx, dw, db)`` of a validated convolution (``dw`` C-contiguous (K, C, fh, fw)),
    each None unless wanted.

    ``x`` is only read for the weight gradient: for the input gradient alone (the forward
    pass of a transposed convolution) any array of the input's shape and dtype will do.
    """
    k, rows = geom.k, geom.rows
    dout3 = dout.reshape(geom.n, k, geom.positions)
    # Row blocks of one image add into the same input rows where their windows overlap: dx
    # starts at zero and every lane adds (in two waves, see run_lanes).
    accumulate = tiling.split_rows and tiling.bias_row
    if not want_dx:
        dx = np.empty((0, 0, 0, 0), dtype=dout.dtype)
    else:
        dx = (np.zeros if accumulate else np.empty)(geom.x_shape, dtype=dout.dtype)
    if tiling.filters:  # no transposed copies of the (large) weights and their gradient
        dw, db = _filter_lanes.backward(x, dout3, w.reshape(k, rows), geom, dx,
                                        tiling.workspace, im2col_blocks, col2im_blocks,
                                        use_fused_lanes(), want_dx, want_dw)
    else:
        # The products take W_row transposed as BLAS packs it: a transposed copy of large
        # weights cost more than some layers' whole backward pass at batch 1.
        dw_db = _image_lanes_backward(x, dout3, w.reshape(k, rows), dx, geom, tiling,
                                      accumulate, phased,
                                      want_dx, want_dw)
        dw, db = _split_weight_gradient(dw_db, rows) if want_dw else (None, None)
    if dw is not None:
        dw = dw.reshape(geom.w_shape)
    return (dx if want_dx else None), dw, db


# Weight gradients smaller than this are transposed by NumPy (its strided copy is slow only
# for large matrices, and the blocked kernel costs 0.6 s to compile on a first call).
_NUMPY_TRANSPOSE_BELOW = 1 << 16


def _split_weight_gradient(dw_db: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """``(dW_row, db)``, C-contiguous ``(K, R)`` and ``(K,)``, from ``[dW_row | db]``, which
    the lanes may hold transposed (see :func:`_dw_transposed`).  NumPy's copy of the
    transpose took 14 ms for 512 x 4608 weights, a blocked transpose about 1 ms."""
    held = dw_db.T
    if not held.flags.c_contiguous:
        return np.ascontiguousarray(dw_db[:, :rows]), dw_db[:, rows].copy()
    if held.size < _NUMPY_TRANSPOSE_BELOW:  # no kernel to compile for small layers
        return np.ascontiguousarray(dw_db[:, :rows]), held[rows].copy()
    dw = np.empty((held.shape[1], rows), dtype=held.dtype)
    _classic_kernels.transpose_batch_serial(held[:rows], dw, False)
    return dw, held[rows].copy()


def _image_lanes_backward(x, dout3, w_mat, dx, geom, tiling, accumulate, phased,
                          want_dx=True, want_dw=True):
    """Fill ``dx`` (if ``want_dx``) and return ``[dW_row | db]`` (K, R + 1; None without
    ``want_dw``) by lanes of images or rows."""
    # An input kept split by stride phase is read by the Numba lanes only (the forward pass
    # ran them, so they are available).
    fused = phased or use_fused_lanes()
    lanes = plan_lanes(geom, tiling, backward=True)
    waves = 2 if accumulate and want_dx else 1
    threads = parallel_lane_threads(lanes) if fused else 0
    if threads:
        return _parallel_backward_lanes(x, dout3, w_mat, dx, geom, tiling, accumulate, want_dx,
                                        want_dw, lane_waves(lanes, waves), threads)
    make_lane = _fused_backward_lane if fused else _python_backward_lane
    backward_lane = make_lane(x, dout3, w_mat, dx, geom, tiling, accumulate, want_dx, want_dw)
    # The parts are added in the order the lanes start, as the parallel call adds them.
    lane_sum = _InOrderSum((geom.k, geom.rows + 1), x.dtype,
                           [lane for wave in lane_waves(lanes, waves) for lane in wave])

    def lane(n0: int, n1: int, r0: int, r1: int, serial: bool) -> None:
        part = backward_lane(n0, n1, r0, r1, serial)
        if want_dw:
            lane_sum.add((n0, r0), part)

    run_lanes(lane, lanes, waves=waves)
    return lane_sum.result() if want_dw else None


class _InOrderSum:
    """Adds the lanes' partial sums in lane order, as soon as every lane before has been
    added: the same order for any thread count (deterministic), and mostly while other lanes
    still run rather than after the last one.  The first lane's array becomes the total."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype, lanes: list[Lane]) -> None:
        self.shape, self.dtype = shape, dtype
        self.total: np.ndarray | None = None
        # Each lane, by its first image and row, is followed by the next one in lane order.
        starts = [(n0, i0) for n0, _, i0, _ in lanes]
        self.successor = dict(zip(starts, [*starts[1:], None], strict=False))
        self.next_start = starts[0] if starts else None
        self.waiting: dict[tuple[int, int], np.ndarray] = {}
        self.lock = threading.Lock()

    def add(self, start: tuple[int, int], part: np.ndarray) -> None:
        with self.lock:
            self.waiting[start] = part
            while self.next_start in self.waiting:
                ready = self.waiting.pop(self.next_start)
                self.next_start = self.successor[self.next_start]
                if self.total is None:
                    self.total = ready
                else:
                    self.total += ready

    def result(self) -> np.ndarray:
        """The sum (zeros if no lane ran)."""
        return np.zeros(self.shape, self.dtype) if self.total is None else self.total


def _python_backward_lane(x, dout3, w_mat, dx, geom, tiling, accumulate, want_dx=True,
                          want_dw=True):
    """The backward lane as NumPy calls (any BLAS): see :func:`_fused_backward_lane`."""
    k, rows, wo = geom.k, geom.rows, geom.wo
    dx3 = dx.reshape(geom.n, geom.c, geom.h * geom.w) if want_dx else dx

    def backward_lane(n0: int, n1: int, r0: int, r1: int, serial: bool) -> np.ndarray:
        """dx of images n0:n1 (output rows r0:r1), and their part of [dw | db] (its last
        column is the gradient of the row of ones, db), summed tile by tile in order."""
        dw_lane = np.zeros((k, rows + 1), dtype=x.dtype)
        dw_part = np.zeros((k, rows + 1), dtype=x.dtype)  # without a row of ones, db stays 0
        dw_into = dw_part if tiling.bias_row else dw_part[:, :rows]
        for m0, m1, i0, i1, cols in _column_tiles(x[n0:n1], geom, tiling, serial, (r0, r1)):
            grad = dout3[n0 + m0:n0 + m1, :, i0 * wo:i1 * wo]
            with Stage("gemm"):
                if tiling.wide:  # one product for the tile, on dout laid out as (K, m*Q)
                    grad = _filter_lanes.images_inner(grad)
                if want_dw and tiling.wide:
                    np.dot(grad, cols.reshape(cols.shape[0], -1).T, out=dw_part)
                    dw_lane += dw_part
                elif want_dw:
                    for m in range(m1 - m0):
                        np.matmul(grad[m], cols[m].T, out=dw_into)
                        dw_lane += dw_part
            if not tiling.bias_row and want_dw:
                with Stage("bias"):
                    dw_lane[:, rows] += grad.sum(axis=(0, 2))
            if not want_dx:
                continue
            dx_tile = dx[n0 + m0:n0 + m1]
            with Stage("gemm"):
                if not tiling.bias_row:  # pointwise: the column gradient is the input gradient
                    np.matmul(w_mat.T, grad, out=dx3[n0 + m0:n0 + m1, :, i0 * wo:i1 * wo])
                    continue
                dcols = _scratch_buffer("dcols", (m1 - m0) * rows * (i1 - i0) * wo, x.dtype)
                if tiling.wide:
                    dcols = dcols.reshape(rows, m1 - m0, -1)
                    np.matmul(w_mat.T, grad, out=dcols.reshape(rows, -1))
                else:
                    dcols = dcols.reshape(m1 - m0, rows, -1)
                    np.matmul(w_mat.T, grad, out=dcols)
            with Stage("col2im"):
                col2im_blocks(dcols, geom, dx_tile, serial, tiling.wide, (i0, i1),
                              accumulate=accumulate or i0 > 0)
        return dw_lane

    return backward_lane


def _dw_transposed(dtype: np.dtype, tiling: Tiling) -> bool:
    """Whether the Numba lanes compute the weight gradient transposed, (R + 1, K), rather
    than (K, R + 1).  On the development machine OpenBLAS ran the float32 products 2-7 %
    faster that way (3x3 and 7x7 layers, one thread, the products alone), and its float64
    products and those of 1x1 layers 1-5 % slower."""
    return dtype == np.float32 and tiling.bias_row


def _fused_lane_scratch(x, dx, geom, tiling):
    """``(images, phases, transposed, dw_shape, cols_size, dcols_size, grad_size,
    dphases_size)`` of the Numba backward lanes."""
    k, rows = geom.k, geom.rows
    tile_positions = tiling.out_rows * geom.wo
    cols_size = math.prod(_tile_shape(geom, tiling, tiling.images, tile_positions))
    if not tiling.bias_row:  # pointwise: the input is its own columns
        cols_size = 0
    # Pointwise: the column gradient is written straight into dx.
    dcols_size = tiling.images * rows * tile_positions if tiling.bias_row else 0
    grad_size = k * tiling.images * geom.positions if tiling.wide else 0
    dphases_size = _phases_size(geom, tiling, gradient=True)
    # Kept split by stride phase (flat): the lanes read the phases, and dx gives the shape.
    phases, images = (x, dx) if x.ndim == 1 else (None, x)
    transposed = _dw_transposed(x.dtype, tiling)
    dw_shape = (rows + 1, k) if transposed else (k, rows + 1)
    return (images, phases, transposed, dw_shape, cols_size, dcols_size, grad_size,
            dphases_size)


def _fused_backward_lane(x, dout3, w_mat, dx, geom, tiling, accumulate, want_dx=True,
                         want_dw=True):
    """The backward lane of images ``n0:n1`` as one Numba call (see ``_lane_kernels``):
    ``dx[n0:n1]``, and the lane's ``[dw | db]``."""
    dtype = x.dtype
    (images, phases, transposed, dw_shape, cols_size, dcols_size, grad_size,
     dphases_size) = _fused_lane_scratch(x, dx, geom, tiling)

    def backward_lane(n0: int, n1: int, r0: int, r1: int, serial: bool) -> np.ndarray:
        dw_lane = np.empty(dw_shape, dtype=dtype)  # overwritten by the lane
        seconds = np.zeros(4) if _stages.profiling() else None  # None: no clock code
        _lane_kernels.backward_lane(
            images, dout3, w_mat, dx, dw_lane, transposed, False, n0, n1, r0, r1, accumulate,
            want_dx, want_dw, *geom.kernel_args,
            tiling.images, tiling.out_rows, tiling.wide, tiling.bias_row,
            _scratch_buffer("cols", cols_size, dtype),
            _scratch_buffer("dcols", dcols_size, dtype), _scratch_buffer("grad", grad_size, dtype),
            phases, _scratch_buffer("dphases", dphases_size, dtype) if dphases_size else None,
            seconds)
        if seconds is not None:
            _stages.add_lane_seconds(seconds)
        return dw_lane.T if transposed else dw_lane  # (K, R + 1) either way

    return backward_lane


# Lanes per parallel backward call at most, beyond one per thread: each holds its part of the
# weight gradient until the call adds them up.
_PARTS_BYTES = 64 * 2**20


def _parallel_backward_lanes(x, dout3, w_mat, dx, geom, tiling, accumulate, want_dx, want_dw,
                             waves, threads):
    """The backward lanes as parallel Numba calls, wave after wave, each with a bounded
    number of lanes whose weight-gradient parts the call adds in lane order; returns
    ``[dW_row | db]`` (K, R + 1) (None without ``want_dw``)."""
    dtype = x.dtype
    (images, phases, transposed, dw_shape, cols_size, dcols_size, grad_size,
     dphases_size) = _fused_lane_scratch(x, dx, geom, tiling)
    part_bytes = math.prod(dw_shape) * dtype.itemsize
    per_call = min(max(threads, _PARTS_BYTES // part_bytes), max(map(len, waves)))
    parts = np.empty((per_call, *dw_shape), dtype=dtype)
    total = np.empty(dw_shape, dtype=dtype)
    cols = thread_scratch("cols", threads, cols_size, dtype)
    dcols = thread_scratch("dcols", threads, dcols_size, dtype)
    grad = thread_scratch("grad", threads, grad_size, dtype)
    dphases = thread_scratch("dphases", threads, dphases_size, dtype) if dphases_size else None
    first = True
    with single_threaded_blas():
        for wave in waves:
            for start in range(0, len(wave), per_call):
                lanes = np.array(wave[start:start + per_call], dtype=np.int64)
                seconds = np.zeros((len(lanes), 4)) if _stages.profiling() else None
                _lane_kernels.backward_lanes(
                    lanes, images, dout3, w_mat, dx, parts[:len(lanes)], transposed,
                    accumulate, want_dx, want_dw, *geom.kernel_args, tiling.images,
                    tiling.out_rows, tiling.wide, tiling.bias_row, cols, dcols, grad, phases,
                    dphases, seconds, total, first)
                first = False
                if seconds is not None:
                    _stages.add_lane_seconds(seconds.sum(axis=0))
    if not want_dw:
        return None
    return total.T if transposed else total  # (K, R + 1) either way
