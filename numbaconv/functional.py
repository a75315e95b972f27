"""Functional convolution: ``conv2d_forward`` and ``conv2d_backward``.

Columns are kept per image, ``cols[n]`` of shape ``(R, Q)`` with ``R = C*fh*fw`` and
``Q = Ho*Wo``, so ``W_row @ cols[n]`` is already ``out[n]`` in (K, Ho, Wo) order: no transpose
of the output is ever needed.  The columns are built tile by tile in a buffer that fits the
``workspace`` budget: a tile is a group of whole images, or a block of output rows of one image
when one image's columns do not fit.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from numbaconv import _filter_lanes, _kernels, _lane_kernels, _lanes, _stages
from numbaconv._blas import load_gemm
from numbaconv._lanes import Lane, lane_bounds, run_lanes
from numbaconv._padding import Padding
from numbaconv._stages import Stage, profile_stages  # noqa: F401  (profile_stages: API)
from numbaconv._validation import (
    ConvGeometry,
    IntPair,
    as_float_array,
    check_ndim,
    check_same_dtype,
    check_workspace,
    make_geometry,
)

# Default byte budget of a column buffer.  Tiles this small stay in the last-level cache
# between im2col and the matrix product, and stay below glibc's mmap threshold (32 MiB), so
# the buffer is recycled by malloc instead of being page-faulted in afresh on every call.
DEFAULT_WORKSPACE = 2 * 2**20
# ... but by default a tile has the columns of at least this many output positions: each tile's
# products pack the weights again, and backward add into the whole weight gradient.  (C=1024
# 3x3 at 32x32, batch 1: 2 MiB tiles of one output row, 32 positions, took 2.0x the bare
# products' time to train, 128-position tiles 1.4x.)
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


@dataclass(frozen=True)
class ConvCache:
    """What :func:`conv2d_backward` needs from the forward pass.

    Only the input is kept, not its columns: the backward pass recomputes them tile by tile,
    which costs one more im2col but keeps memory at the size of ``x`` plus a bounded
    workspace.  ``x`` is a private copy (writing into the caller's array after the forward
    pass does not change the gradients); ``w`` is the caller's array, so, as in the classic
    layer, the backward pass uses the weights as they are when it runs.

    Where the Numba lanes split the images by stride phase (see :func:`_phases_size`), the
    copy kept is that split (flat, ``_phase_image_size`` elements per image), made once by the
    forward pass for both passes: then ``phased`` is True.
    """

    x: np.ndarray
    w: np.ndarray
    geometry: ConvGeometry
    tiling: Tiling

    @property
    def phased(self) -> bool:
        """Whether ``x`` is kept split by stride phase (flat)."""
        return self.x.ndim == 1


# Per-thread scratch buffers (column tiles, column gradients), kept between calls: a fresh
# buffer per lane costs page faults that took longer than filling it.  Buffers larger than
# _SCRATCH_KEPT bytes are not kept, so a one-off huge workspace is given back.
_scratch = threading.local()
_SCRATCH_KEPT = 64 * 2**20


def _scratch_buffer(name: str, size: int, dtype: np.dtype) -> np.ndarray:
    """A 1-d array of ``size`` elements of this thread's scratch buffer ``name``.

    Its contents are undefined, and it is valid until this thread asks for ``name`` again.
    """
    nbytes = size * np.dtype(dtype).itemsize
    buffer = getattr(_scratch, name, None)
    if buffer is None or buffer.nbytes < nbytes:
        buffer = np.empty(nbytes, dtype=np.uint8)
        if nbytes <= _SCRATCH_KEPT:
            setattr(_scratch, name, buffer)
    return buffer[:nbytes].view(dtype)


def _bias_vector(b: object, k: int, dtype: np.dtype) -> np.ndarray | None:
    if b is None:
        return None
    bias = as_float_array("bias", b, dtype=dtype)
    if bias.shape not in ((k,), (k, 1)):
        raise ValueError(
            f"bias must have shape ({k},) or ({k}, 1) to match the {k} filters of weight, "
            f"got bias of shape {bias.shape}")
    return bias.reshape(k)


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
    """The largest tiles whose column buffer fits ``workspace`` bytes (default 2 MiB, or
    the columns of ``MIN_TILE_POSITIONS`` output positions if larger); at least one output
    row of one image.  Images are cut into blocks of rows where the
    backward pass has fewer images than lanes (planes of the wide layout are never cut), and
    calls with few output positions and many filters use filter lanes (``_filter_lanes``)."""
    key = (geom, itemsize, workspace, WIDE_BELOW, MIN_TILE_POSITIONS, POSITIONS_PER_LANE,
           BACKWARD_POSITIONS_PER_LANE, _lanes.SMALL_CALL, _lanes.LANE_WORK, _lanes.LANES,
           _filter_lanes.MIN_BLOCK_ROWS, _filter_lanes.FILTER_LANES_RATIO)
    tiling = _known_tilings.get(key)
    if tiling is None:
        if len(_known_tilings) >= 1024:
            _known_tilings.clear()
        tiling = _known_tilings[key] = _plan_tiling(geom, itemsize, workspace)
    return tiling


def _plan_tiling(geom: ConvGeometry, itemsize: int, workspace: int | None) -> Tiling:
    wide = use_wide_layout(geom)
    bias_row = not geom.is_pointwise  # pointwise columns are views of x (never wide)
    if workspace is None:
        workspace = max(DEFAULT_WORKSPACE,
                        (geom.rows + bias_row) * MIN_TILE_POSITIONS * itemsize)
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


def _prepare_forward(x: object, w: object, b: object, stride: IntPair, padding: IntPair,
                     dilation: IntPair, workspace: int | None, op: str):
    """Validate and convert the arguments of a forward pass once: ``(x, w, bias, geom,
    tiling, given)`` with ``given`` the caller's ``x`` (to tell whether ``x`` is its array)."""
    given = x
    x = as_float_array("input", x)
    w = as_float_array("weight", w)
    check_ndim("input", x, 4, "(N, C, H, W)", op)
    check_ndim("weight", w, 4, "(K, C, fh, fw)", op)
    check_same_dtype(x, w)
    if x.shape[1] != w.shape[1]:
        raise ValueError(
            f"Given groups=1, weight of size {list(w.shape)}, expected input{list(x.shape)} "
            f"to have {w.shape[1]} channels, but got {x.shape[1]} channels instead")
    k, _, fh, fw = w.shape
    geom = make_geometry(x.shape, k, fh, fw, stride, padding, dilation, padding_forms=True)
    bias = _bias_vector(b, k, x.dtype)
    tiling = plan_tiling(geom, x.itemsize, check_workspace(workspace))
    return x, w, bias, geom, tiling, given


def _weight_rows(w: np.ndarray, bias: np.ndarray | None, geom: ConvGeometry,
                 tiling: Tiling) -> np.ndarray:
    """``W_row`` (K, R), with the bias as the weight of the row of ones when there is one."""
    k, rows = geom.k, geom.rows
    if not tiling.bias_row:
        return w.reshape(k, rows)
    w_row = np.empty((k, rows + 1), dtype=w.dtype)
    w_row[:, :rows] = w.reshape(k, rows)
    w_row[:, rows] = 0 if bias is None else bias
    return w_row


def _run_forward(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, geom: ConvGeometry,
                 tiling: Tiling, fused: bool,
                 private_copy: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(out, x_kept)``: the output of the forward pass of validated arguments, computed
    lane by lane, and the input as the backward pass reads it.

    Where the fused lanes split the images by stride phase, ``x_kept`` is that split, made
    by the lanes once for both passes (it is then private as well); otherwise it is a copy of
    ``x`` made lane by lane if ``private_copy``, else ``x`` itself."""
    if fused and _phases_size(geom, tiling) > 0:
        x_kept = np.empty(geom.n * _phase_image_size(geom), dtype=x.dtype)
    else:
        x_kept = np.empty_like(x) if private_copy else x
    out = np.empty(geom.out_shape, dtype=x.dtype)
    out3 = out.reshape(geom.n, geom.k, geom.positions)
    if tiling.filters:
        if x_kept is not x:
            np.copyto(x_kept, x)
        _filter_lanes.forward(x, w.reshape(geom.k, geom.rows), bias, geom, out3,
                              tiling.workspace, im2col_blocks)
        return out, x_kept
    make_lane = _fused_forward_lane if fused else _python_forward_lane
    run_lanes(make_lane(x, x_kept, _weight_rows(w, bias, geom, tiling), bias, out3, geom,
                        tiling), plan_lanes(geom, tiling))
    return out, x_kept


def conv2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
    workspace: int | None = None,
) -> tuple[np.ndarray, ConvCache]:
    """2-D convolution (cross-correlation, as in PyTorch) by im2col and a matrix product,
    keeping what :func:`conv2d_backward` needs.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), float32 or float64
        Input images. Non-contiguous, read-only and byte-swapped arrays are accepted.
    w : ndarray, shape (K, C/groups, fh, fw), same dtype as x
        Filters.
    b : ndarray of shape (K,) or (K, 1), optional
        Bias, one value per filter.
    stride, dilation : int or (int, int)
        Per-axis (height, width) hyperparameters.
    padding : int, (int, int), ((int, int), (int, int)), 'valid' or 'same'
        The same on all four sides, ``(ph, pw)`` on both sides of each axis,
        ``((top, bottom), (left, right))``, none, or (stride 1 only) the padding that keeps
        the size: per axis ``dh*(fh-1)`` split as ``before = total // 2``, the rest after.
    groups : int
        Channels and filters are cut into this many groups; filter k sees only the ``C/groups``
        channels of group ``k // (K/groups)``.  ``groups == C`` (depthwise, ``K = m*C``) runs
        direct kernels.
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}
        How the border is filled (``np.pad``'s constant, reflect, edge and wrap); reflect
        padding must be smaller than the input, circular padding no larger.
    workspace : int, optional
        Upper bound in bytes for the column buffer of each thread (default 2 MiB, or the
        columns of 128 output positions where those take more): images are
        processed in tiles of as many images as fit, or, when one image's columns do not fit,
        of as many output rows as fit (at least one row).

    Returns
    -------
    out : ndarray, shape (N, K, Ho, Wo)
        C-contiguous, dtype of ``x``; ``Ho = (H + top + bottom - dh*(fh-1) - 1) // sh + 1``.
    cache : ConvCache
        Pass to :func:`conv2d_backward` (for groups or a padding mode, another cache type
        that it takes as well).

    See Also
    --------
    conv2d : the same output without the cache, for inference.
    """
    if type(groups) is not int or groups != 1 or padding_mode != "zeros":
        from numbaconv import _variants

        return _variants.conv2d_forward(x, w, b, stride, padding, dilation, groups,
                                        padding_mode, workspace)
    x, w, bias, geom, tiling, given = _prepare_forward(
        x, w, b, stride, padding, dilation, workspace, "conv2d")
    # The backward pass reads x again: it gets a private copy, so that the caller writing
    # into its array between forward and backward cannot change the gradients.  A converted
    # array is private already.
    private_copy = isinstance(given, np.ndarray) and np.may_share_memory(x, given)
    out, x_kept = _run_forward(x, w, bias, geom, tiling, use_fused_lanes(), private_copy)
    return out, ConvCache(x=x_kept, w=w, geometry=geom, tiling=tiling)


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
    workspace: int | None = None,
) -> np.ndarray:
    """2-D convolution for inference: the output of :func:`conv2d_forward`, bitwise equal to
    it, without preparing a backward pass (no cache, no private copy of ``x``).

    Parameters and the output are those of :func:`conv2d_forward`.
    """
    if type(groups) is not int or groups != 1 or padding_mode != "zeros":
        from numbaconv import _variants

        return _variants.conv2d_forward(x, w, b, stride, padding, dilation, groups,
                                        padding_mode, workspace, keep=False)[0]
    x, w, bias, geom, tiling, _ = _prepare_forward(
        x, w, b, stride, padding, dilation, workspace, "conv2d")
    return _run_forward(x, w, bias, geom, tiling, use_fused_lanes())[0]


def _python_forward_lane(x, x_kept, w_row, bias, out3, geom, tiling):
    """The forward lane as NumPy calls (any BLAS): see :func:`_fused_forward_lane`."""
    wo = geom.wo

    def forward_lane(n0: int, n1: int, r0: int, r1: int, serial: bool) -> None:
        if x_kept is not x and r0 == 0:
            x_kept[n0:n1] = x[n0:n1]
        for m0, m1, i0, i1, cols in _column_tiles(x[n0:n1], geom, tiling, serial, (r0, r1)):
            out_tile = out3[n0 + m0:n0 + m1, :, i0 * wo:i1 * wo]
            with Stage("gemm"):
                if tiling.wide:  # (K, m*Q) -> (m, K, Q)
                    product = w_row @ cols.reshape(cols.shape[0], -1)
                    _filter_lanes.store_images_outer(product, out_tile)
                else:
                    np.matmul(w_row, cols, out=out_tile)
            if bias is not None and not tiling.bias_row:
                with Stage("bias"):
                    out_tile += bias[:, None]

    return forward_lane


def _phase_image_size(geom: ConvGeometry) -> int:
    """Elements of one image split by stride phase: ``C * sh * sw`` phases of
    ``ceil(H / sh) x ceil(W / sw)`` (the lanes split only strides no wider than the image)."""
    return _kernels.phases_size(1, geom.c, geom.h, geom.w, geom.sh, geom.sw)


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


def _fused_forward_lane(x, x_kept, w_row, bias, out3, geom, tiling):
    """The forward lane of images ``n0:n1`` as one Numba call (see ``_lane_kernels``)."""
    dtype = x.dtype
    empty = np.empty(0, dtype=dtype)
    add_bias = empty if bias is None or tiling.bias_row else bias
    cols_size = math.prod(_tile_shape(geom, tiling, tiling.images, tiling.out_rows * geom.wo))
    wide_size = geom.k * tiling.images * geom.positions if tiling.wide else 0
    # Kept split by stride phase (flat), x_kept is filled by the split itself, not by a copy.
    phases, x_copy = (x_kept, x) if x_kept.ndim == 1 else (None, x_kept)

    def forward_lane(n0: int, n1: int, r0: int, r1: int, serial: bool) -> None:
        cols = _scratch_buffer("cols", cols_size, dtype) if tiling.bias_row else empty
        wide_out = _scratch_buffer("wide", wide_size, dtype)
        seconds = np.zeros(4) if _stages.profiling() else None  # None: no clock code
        _lane_kernels.forward_lane(
            x, x_copy, w_row, add_bias, out3, n0, n1, r0, r1, *geom.kernel_args, tiling.images,
            tiling.out_rows, tiling.wide, tiling.bias_row, cols, wide_out, phases, seconds)
        if seconds is not None:
            _stages.add_lane_seconds(seconds)

    return forward_lane


def conv2d_backward(
    dout: np.ndarray, cache: ConvCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv2d_forward` with respect to ``x``, ``w`` and ``b``.

    Parameters
    ----------
    dout : ndarray, shape (N, K, Ho, Wo)
        Gradient of the loss with respect to the forward output; floating input of the other
        precision is converted to the forward dtype.
    cache : ConvCache
        The second value returned by :func:`conv2d_forward`.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    dw : ndarray, shape (K, C/groups, fh, fw)
    db : ndarray, shape (K,)
        Always returned, also when the forward pass had no bias.
    """
    if type(cache) is not ConvCache:  # groups or a padding mode (or not a cache at all)
        from numbaconv import _variants

        return _variants.conv2d_backward(dout, cache)
    geom, x, w = cache.geometry, cache.x, cache.w
    dout = as_float_array("dout", dout, dtype=x.dtype)
    if dout.shape != geom.out_shape:
        raise ValueError(
            f"dout must have the shape of the forward output {geom.out_shape}, "
            f"got {dout.shape}")
    return backward_pass(dout, x, w, geom, cache.tiling, cache.phased)


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
                                        want_dx, want_dw)
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


def _split_weight_gradient(dw_db: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """``(dW_row, db)``, C-contiguous ``(K, R)`` and ``(K,)``, from ``[dW_row | db]``, which
    the lanes may hold transposed (see :func:`_dw_transposed`).  NumPy's copy of the
    transpose took 14 ms for 512 x 4608 weights, a blocked transpose about 1 ms."""
    held = dw_db.T
    if not held.flags.c_contiguous:
        return np.ascontiguousarray(dw_db[:, :rows]), dw_db[:, rows].copy()
    dw = np.empty((held.shape[1], rows), dtype=held.dtype)
    _kernels.transpose_batch_serial(held[:rows], dw, False)
    return dw, held[rows].copy()


def _image_lanes_backward(x, dout3, w_mat, dx, geom, tiling, accumulate, phased,
                          want_dx=True, want_dw=True):
    """Fill ``dx`` (if ``want_dx``) and return ``[dW_row | db]`` (K, R + 1; None without
    ``want_dw``) by lanes of images or rows."""
    # An input kept split by stride phase is read by the Numba lanes only (the forward pass
    # ran them, so they are available).
    fused = phased or use_fused_lanes()
    make_lane = _fused_backward_lane if fused else _python_backward_lane
    backward_lane = make_lane(x, dout3, w_mat, dx, geom, tiling, accumulate, want_dx, want_dw)
    lanes = plan_lanes(geom, tiling, backward=True)
    lane_sum = _InOrderSum((geom.k, geom.rows + 1), x.dtype, lanes)

    def lane(n0: int, n1: int, r0: int, r1: int, serial: bool) -> None:
        part = backward_lane(n0, n1, r0, r1, serial)
        if want_dw:
            lane_sum.add((n0, r0), part)

    run_lanes(lane, lanes, waves=2 if accumulate and want_dx else 1)
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


def _fused_backward_lane(x, dout3, w_mat, dx, geom, tiling, accumulate, want_dx=True,
                         want_dw=True):
    """The backward lane of images ``n0:n1`` as one Numba call (see ``_lane_kernels``):
    ``dx[n0:n1]``, and the lane's ``[dw | db]``."""
    dtype, k, rows = x.dtype, geom.k, geom.rows
    empty = np.empty(0, dtype=dtype)
    tile_positions = tiling.out_rows * geom.wo
    cols_size = math.prod(_tile_shape(geom, tiling, tiling.images, tile_positions))
    # Pointwise: the column gradient is written straight into dx.
    dcols_size = tiling.images * rows * tile_positions if tiling.bias_row else 0
    grad_size = k * tiling.images * geom.positions if tiling.wide else 0
    dphases_size = _phases_size(geom, tiling, gradient=True)
    # Kept split by stride phase (flat): the lanes read the phases, and dx gives the shape.
    phases, images = (x, dx) if x.ndim == 1 else (None, x)

    transposed = _dw_transposed(dtype, tiling)
    dw_shape = (rows + 1, k) if transposed else (k, rows + 1)

    def backward_lane(n0: int, n1: int, r0: int, r1: int, serial: bool) -> np.ndarray:
        dw_lane = np.empty(dw_shape, dtype=dtype)  # overwritten by the lane
        cols = _scratch_buffer("cols", cols_size, dtype) if tiling.bias_row else empty
        seconds = np.zeros(4) if _stages.profiling() else None  # None: no clock code
        _lane_kernels.backward_lane(
            images, dout3, w_mat, dx, dw_lane, transposed, n0, n1, r0, r1, accumulate,
            want_dx, want_dw, *geom.kernel_args,
            tiling.images, tiling.out_rows, tiling.wide, tiling.bias_row, cols,
            _scratch_buffer("dcols", dcols_size, dtype), _scratch_buffer("grad", grad_size, dtype),
            phases, _scratch_buffer("dphases", dphases_size, dtype) if dphases_size else None,
            seconds)
        if seconds is not None:
            _stages.add_lane_seconds(seconds)
        return dw_lane.T if transposed else dw_lane  # (K, R + 1) either way

    return backward_lane
