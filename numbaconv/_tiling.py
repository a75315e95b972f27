"""How the im2col passes cut a call into tiles and lanes, shared by forward and backward.

Columns are kept per image, ``cols[n]`` of shape ``(R, Q)`` with ``R = C*fh*fw`` and
``Q = Ho*Wo``, so ``W_row @ cols[n]`` is already ``out[n]`` in (K, Ho, Wo) order: no transpose
of the output is ever needed.  The columns are built tile by tile in a buffer that fits the
``workspace`` budget: a tile is a group of whole images, or a block of output rows of one image
when one image's columns do not fit.

The tunables below are read from this module at call time, so this is where tests set them
(:mod:`numbaconv.functional` still gives their values under the same names, read only).
The forward pass is in :mod:`numbaconv.functional`, the backward pass in
:mod:`numbaconv._backward`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from numbaconv import _classic_kernels, _filter_lanes, _kernels, _lane_kernels, _lanes
from numbaconv._blas import load_gemm
from numbaconv._lanes import Lane, lane_bounds
from numbaconv._scratch import _scratch_buffer
from numbaconv._stages import Stage
from numbaconv._validation import ConvGeometry

# Default byte budget of a column buffer.  Tiles this small stay in the last-level cache
# between im2col and the matrix product, and stay below glibc's mmap threshold (32 MiB), so
# the buffer is recycled by malloc instead of being page-faulted in afresh on every call.
DEFAULT_WORKSPACE = 2 * 2**20
# ... but by default a tile of a deep layer has the columns of this many output positions, up
# to MAX_DEFAULT_WORKSPACE, and of at least MIN_TILE_POSITIONS: each tile's products pack the
# weights again, and backward read and write the whole weight gradient (9 MiB for 512
# channels 3x3), so thin tiles spend their time on that.  (C=1024 3x3 at 32x32, batch 1:
# tiles of 32 positions took 2.0x the bare products' time to train, of 128 1.4x; C=512 3x3 at
# 28x28, batch 8: tiles of 512 positions trained in 0.89-0.93x the time of tiles of 128.)
TILE_POSITIONS = 512
MAX_DEFAULT_WORKSPACE = 8 * 2**20
MIN_TILE_POSITIONS = 128
# Output planes smaller than this many positions use the wide layout (see use_wide_layout).
WIDE_BELOW = 256
# A strided im2col whose output rows are not one run per tap splits the images by stride
# phase first when the output width times the kernel width reach this: the contiguous copies
# then outrun the split.  Measured on one core, rows copied one by one: 3x3 stride 2, rows of
# 16-28: 0.9x, of 32: 1.0x, of 64: 1.2x; 7x7 stride 2, rows of 32: 1.2x.
PHASE_SPLIT_FROM = 128
STRIDE_PHASE_SPLIT = True  # tests turn it off to compare with the strided copies
# Run each lane as one Numba call where NumPy's OpenBLAS can be called from Numba (tests turn
# this off to check the NumPy path, which every other BLAS uses).
FUSED_LANES = True


def use_fused_lanes() -> bool:
    """Whether lanes run as single Numba calls (see ``_lane_kernels``)."""
    return FUSED_LANES and _lane_kernels.PLATFORM_OK and load_gemm()


@dataclass(frozen=True)
class Tiling:
    """How a call's columns are cut to fit the workspace: tiles of ``images`` whole images,
    or, when one image's columns do not fit, tiles of ``out_rows`` output rows of one image.

    Column tiles carry one extra row of ones after the ``C*fh*fw`` im2col rows (``bias_row``)
    so that the products also add the bias (forward) and sum ``dout`` into ``db`` (backward):
    no separate pass over the output.  Pointwise tiles are views of ``x`` and have none.
    """

    images: int
    out_rows: int
    wide: bool
    bias_row: bool
    split_rows: bool = False  # some lanes are blocks of output rows of one image
    filters: bool = False  # lanes of filters and channels (see _filter_lanes)
    workspace: int = DEFAULT_WORKSPACE


def use_wide_layout(geom: ConvGeometry) -> bool:
    """Small output planes make per-image products too thin for BLAS to run fast: then a
    tile of images shares one ``(R, n*Q)`` column matrix and one product."""
    return geom.positions < WIDE_BELOW and not geom.is_pointwise


# Lanes are kept to at most one per this many output positions of the call: a lane packs the
# weights (K * R) for its products, which must stay a small share of its K * R multiply-adds
# per position (single-threaded OpenBLAS ran 512x4608 weights at 47 GFLOP/s on 32 columns, 71
# on 128, 77 on 512, Zen 3).  Backward, a lane also reads and writes its partial weight
# gradient, of the same size, once per tile: its lanes are twice as long.
POSITIONS_PER_LANE = 128
BACKWARD_POSITIONS_PER_LANE = 256


def _min_lane_rows(geom: ConvGeometry) -> int:
    """Fewest output rows in a lane that is a block of one image's rows, so that the input
    rows it adds its gradient to reach into the neighbouring blocks only (then two waves of
    lanes, even blocks then odd ones, never write the same rows at the same time)."""
    return max((geom.dh * (geom.fh - 1)) // geom.sh, 1)


def plan_lanes(geom: ConvGeometry, tiling: Tiling, backward: bool = False) -> list[Lane]:
    """The work items of a pass: ranges of images, or blocks of output rows of one image
    (see :func:`numbaconv._lanes.lane_bounds`), a function of the problem only."""
    work = 2 * geom.multiply_adds if backward else geom.multiply_adds
    per_lane = BACKWARD_POSITIONS_PER_LANE if backward else POSITIONS_PER_LANE
    max_lanes = geom.n * geom.positions // per_lane
    min_rows = _min_lane_rows(geom) if tiling.split_rows else 0
    return lane_bounds(geom.n, work, geom.ho, min_rows, max_lanes)


# Tilings already planned, by geometry, item size, workspace and the tunables they depend on
# (tests change those): a layer plans the same tiling on every call.
_known_tilings: dict[tuple, Tiling] = {}


def plan_tiling(geom: ConvGeometry, itemsize: int, workspace: int | None) -> Tiling:
    """The largest tiles whose column buffer fits ``workspace`` bytes (default:
    :func:`default_workspace`); at least one output row of one image.  Images are cut into
    blocks of rows where the backward pass has fewer images than lanes (planes of the wide
    layout are never cut), and calls with few output positions and many filters use filter
    lanes (``_filter_lanes``)."""
    key = (geom, itemsize, workspace, WIDE_BELOW, TILE_POSITIONS, MAX_DEFAULT_WORKSPACE,
           MIN_TILE_POSITIONS, POSITIONS_PER_LANE,
           BACKWARD_POSITIONS_PER_LANE, _lanes.SMALL_CALL, _lanes.LANE_WORK, _lanes.LANES,
           _filter_lanes.MIN_BLOCK_ROWS, _filter_lanes.FILTER_LANES_RATIO)
    tiling = _known_tilings.get(key)
    if tiling is None:
        if len(_known_tilings) >= 1024:
            _known_tilings.clear()
        tiling = _known_tilings[key] = _plan_tiling(geom, itemsize, workspace)
    return tiling


def default_workspace(column_rows: int, itemsize: int) -> int:
    """Bytes of a column buffer by default: 2 MiB, or, for deeper layers, the columns of
    ``TILE_POSITIONS`` output positions, at most 8 MiB, and never fewer than
    ``MIN_TILE_POSITIONS`` positions."""
    position_bytes = column_rows * itemsize
    return max(DEFAULT_WORKSPACE, min(position_bytes * TILE_POSITIONS, MAX_DEFAULT_WORKSPACE),
               position_bytes * MIN_TILE_POSITIONS)


def _plan_tiling(geom: ConvGeometry, itemsize: int, workspace: int | None) -> Tiling:
    wide = use_wide_layout(geom)
    bias_row = not geom.is_pointwise  # pointwise columns are views of x (never wide)
    if workspace is None:
        workspace = default_workspace(geom.rows + bias_row, itemsize)
    row_bytes = (geom.rows + bias_row) * geom.wo * itemsize
    image_bytes = max(row_bytes * geom.ho, 1)
    if _filter_lanes.use_filter_lanes(geom):
        return Tiling(1, geom.ho, wide, bias_row, filters=True, workspace=workspace)
    split_rows = not wide and len(plan_lanes(geom, Tiling(1, geom.ho, wide, bias_row, True),
                                             backward=True)) > geom.n
    if image_bytes <= workspace or geom.ho <= 1:
        images = int(min(max(workspace // image_bytes, 1), max(geom.n, 1)))
        return Tiling(images, geom.ho, wide, bias_row, split_rows, workspace=workspace)
    # One image is too big: cut it into the fewest, evenly sized, blocks of output rows.
    blocks = -(-geom.ho // max(workspace // max(row_bytes, 1), 1))
    return Tiling(1, -(-geom.ho // blocks), False, bias_row, split_rows, workspace=workspace)


def _cols_shape(rows: int, images: int, positions: int, wide: bool) -> tuple[int, int, int]:
    """Shape of the columns of ``images`` images: ``(n, rows, q)``, or ``(rows, n, q)`` if
    wide."""
    return (rows, images, positions) if wide else (images, rows, positions)


def _tile_shape(geom: ConvGeometry, tiling: Tiling, images: int,
                positions: int) -> tuple[int, int, int]:
    """Shape of a column tile, with its row of ones (see :class:`Tiling`)."""
    return _cols_shape(geom.rows + tiling.bias_row, images, positions, tiling.wide)


def im2col_blocks(x: np.ndarray, geom: ConvGeometry, out: np.ndarray | None = None,
                  serial: bool = False, wide: bool = False,
                  out_rows: tuple[int, int] | None = None,
                  planes: tuple[int, int] | None = None) -> np.ndarray:
    """Columns of a validated, C-contiguous ``x`` for the output rows ``out_rows = (i0, i1)``
    (default all): per image ``(N, R, q)``, or ``(R, N, q)`` with ``wide`` (one matrix
    ``(R, N*q)``); ``q = (i1 - i0) * Wo``.  ``out`` may have extra rows, left untouched.
    With ``planes = (p0, p1)``, only the rows of the planes ``p0 <= n*C + c < p1`` of ``x``
    are written (into ``out``)."""
    i0, i1 = (0, geom.ho) if out_rows is None else out_rows
    if geom.is_pointwise and not wide and out is None:
        return x.reshape(x.shape[0], geom.c, geom.positions)[:, :, i0 * geom.wo:i1 * geom.wo]
    if out is None:
        out = np.empty(_cols_shape(geom.rows, x.shape[0], (i1 - i0) * geom.wo, wide),
                       dtype=x.dtype)
    p0, p1 = (0, x.shape[0] * x.shape[1]) if planes is None else planes
    work = out.size * (p1 - p0) // max(x.shape[0] * x.shape[1], 1)
    _kernels.run(_kernels.im2col_blocks, _kernels.im2col_blocks_serial, work,
                 x, *geom.kernel_args, i0, i1, out, wide, p0, p1, force_serial=serial)
    return out


def col2im_blocks(cols: np.ndarray, geom: ConvGeometry, dx: np.ndarray,
                  serial: bool = False, wide: bool = False,
                  out_rows: tuple[int, int] | None = None, accumulate: bool = False,
                  planes: tuple[int, int] | None = None) -> None:
    """Overwrite ``dx`` (C-contiguous ``(n, C, H, W)``) with col2im of ``cols`` (laid out as
    :func:`im2col_blocks` makes them, for the output rows ``out_rows``), or add it to ``dx``
    with ``accumulate``; with ``planes = (p0, p1)``, only in the planes
    ``p0 <= n*C + c < p1`` of ``dx``."""
    i0, i1 = (0, geom.ho) if out_rows is None else out_rows
    p0, p1 = (0, dx.shape[0] * dx.shape[1]) if planes is None else planes
    work = cols.size * (p1 - p0) // max(dx.shape[0] * dx.shape[1], 1)
    _kernels.run(_kernels.col2im_blocks, _kernels.col2im_blocks_serial, work,
                 cols, *geom.kernel_args, i0, i1, dx, wide, accumulate, p0, p1,
                 force_serial=serial)


def _column_tiles(
    x: np.ndarray, geom: ConvGeometry, tiling: Tiling, serial: bool, rows: tuple[int, int]
) -> Iterator[tuple[int, int, int, int, np.ndarray]]:
    """Yield ``(m0, m1, i0, i1, cols)``: the columns of images ``x[m0:m1]`` for output rows
    ``i0:i1`` within the lane's ``rows``, tile by tile, laid out as :func:`_tile_shape` says,
    with the row of ones filled in.

    One buffer is reused for every tile, so it must be consumed before the next is produced.
    """
    wide, wo, n = tiling.wide, geom.wo, x.shape[0]
    buffer = None
    if tiling.bias_row:  # else pointwise: the columns are views of x
        largest = _tile_shape(geom, tiling, min(tiling.images, n), tiling.out_rows * wo)
        buffer = _scratch_buffer("cols", math.prod(largest), x.dtype)
    for m0 in range(0, n, tiling.images):
        m1 = min(m0 + tiling.images, n)
        for i0 in range(rows[0], rows[1], tiling.out_rows):
            i1 = min(i0 + tiling.out_rows, rows[1])
            with Stage("im2col"):
                if buffer is None:
                    cols = im2col_blocks(x[m0:m1], geom, None, serial, wide, (i0, i1))
                else:
                    shape = _tile_shape(geom, tiling, m1 - m0, (i1 - i0) * wo)
                    cols = buffer[: math.prod(shape)].reshape(shape)
                    im2col_blocks(x[m0:m1], geom, cols, serial, wide, (i0, i1))
                    (cols[-1] if wide else cols[:, -1]).fill(1)
            yield m0, m1, i0, i1, cols


def _phase_image_size(geom: ConvGeometry) -> int:
    """Elements of one image split by stride phase: ``C * sh * sw`` phases of
    ``ceil(H / sh) x ceil(W / sw)`` (the lanes split only strides no wider than the image)."""
    return _classic_kernels.phases_size(1, geom.c, geom.h, geom.w, geom.sh, geom.sw)


def _phases_size(geom: ConvGeometry, tiling: Tiling, gradient: bool = False) -> int:
    """Elements of a tile's images split by stride phase, which the Numba lanes' strided
    im2col reads (and, for the ``gradient``, col2im adds into) in contiguous runs
    (``_kernels.split_by_stride_phase``); 0 where that does not pay: stride 1 (the image is
    its own phase), no im2col, or short rows (see ``PHASE_SPLIT_FROM``).

    im2col also splits when a tap's rows become one run (``Wo == ceil(W / sw)``); col2im does
    not, since its adds gain from the split only on long rows."""
    long_rows = geom.sw > 1 and geom.wo * geom.fw >= PHASE_SPLIT_FROM
    one_run = geom.wo == -(-geom.w // geom.sw) and not gradient
    # Lanes that are row blocks of one image would split (and merge) it concurrently.
    if (not STRIDE_PHASE_SPLIT or not tiling.bias_row or (geom.sh == 1 and geom.sw == 1)
            or tiling.split_rows or tiling.filters
            or not (long_rows or one_run)
            or geom.sh > geom.h or geom.sw > geom.w):  # else mostly empty phases (at most 4x x)
        return 0
    return tiling.images * _phase_image_size(geom)
