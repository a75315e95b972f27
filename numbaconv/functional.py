"""Functional convolution: ``conv2d_forward``, ``conv2d`` and ``conv2d_backward``.

This module holds the public calls and the forward pass.  How a call is cut into tiles of
columns and into lanes is planned in :mod:`numbaconv._tiling` (its tunables are set there:
the names below only read them); the backward pass is :mod:`numbaconv._backward`.  The names
of both that this module has always had (``plan_tiling``, ``im2col_blocks``,
``backward_pass``, ...) are still importable from here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from numbaconv import _filter_lanes, _lane_kernels, _stages
from numbaconv._backward import backward_pass
from numbaconv._lanes import parallel_lane_threads, run_lanes, single_threaded_blas
from numbaconv._padding import Padding
from numbaconv._scratch import _scratch_buffer, thread_scratch
from numbaconv._stages import Stage, profile_stages  # noqa: F401  (profile_stages: API)
from numbaconv._tiling import (
    Tiling,
    _column_tiles,
    _phase_image_size,
    _phases_size,
    _tile_shape,
    im2col_blocks,
    plan_lanes,
    plan_tiling,
    use_fused_lanes,
)
from numbaconv._tiling import col2im_blocks as col2im_blocks
from numbaconv._tiling import use_wide_layout as use_wide_layout
from numbaconv._validation import (
    ConvGeometry,
    IntPair,
    as_float_array,
    check_ndim,
    check_same_dtype,
    check_workspace,
    make_geometry,
)


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


def _bias_vector(b: object, k: int, dtype: np.dtype) -> np.ndarray | None:
    if b is None:
        return None
    bias = as_float_array("bias", b, dtype=dtype)
    if bias.shape not in ((k,), (k, 1)):
        raise ValueError(
            f"bias must have shape ({k},) or ({k}, 1) to match the {k} filters of weight, "
            f"got bias of shape {bias.shape}")
    return bias.reshape(k)


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


def weight_rows(w_mat: np.ndarray, bias: np.ndarray | None, bias_row: bool) -> np.ndarray:
    """``W_row`` (..., K, R) as the lanes take it: with ``bias_row``, a last column holding
    the bias (``(..., K)``, or zeros for None), the weight of the columns' row of ones."""
    if not bias_row:
        return w_mat
    rows = w_mat.shape[-1]
    w_row = np.empty((*w_mat.shape[:-1], rows + 1), dtype=w_mat.dtype)
    w_row[..., :rows] = w_mat
    w_row[..., rows] = 0 if bias is None else bias
    return w_row


def kept_input(x: np.ndarray, geom: ConvGeometry, tiling: Tiling, private_copy: bool,
               fused: bool = True) -> np.ndarray:
    """The array the lanes fill with the images of ``x`` as the backward pass reads them:
    their split by stride phase where the fused lanes split (flat, private), else an empty
    copy if ``private_copy``, else ``x`` itself (nothing to fill)."""
    if fused and _phases_size(geom, tiling) > 0:
        return np.empty(len(x) * _phase_image_size(geom), dtype=x.dtype)
    return np.empty_like(x) if private_copy else x


def _run_forward(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, geom: ConvGeometry,
                 tiling: Tiling, fused: bool,
                 private_copy: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(out, x_kept)``: the output of the forward pass of validated arguments, computed
    lane by lane, and the input as the backward pass reads it.

    Where the fused lanes split the images by stride phase, ``x_kept`` is that split, made
    by the lanes once for both passes (it is then private as well); otherwise it is a copy of
    ``x`` made lane by lane if ``private_copy``, else ``x`` itself."""
    x_kept = kept_input(x, geom, tiling, private_copy, fused)
    out = np.empty(geom.out_shape, dtype=x.dtype)
    out3 = out.reshape(geom.n, geom.k, geom.positions)
    if tiling.filters:
        if x_kept is not x:
            np.copyto(x_kept, x)
        _filter_lanes.forward(x, w.reshape(geom.k, geom.rows), bias, geom, out3,
                              tiling.workspace, im2col_blocks, fused)
        return out, x_kept
    lanes = plan_lanes(geom, tiling)
    w_row = weight_rows(w.reshape(geom.k, geom.rows), bias, tiling.bias_row)
    threads = parallel_lane_threads(lanes) if fused else 0
    if threads:
        _parallel_forward_lanes(x, x_kept, w_row, bias, out3, geom, tiling, lanes, threads)
    else:
        make_lane = _fused_forward_lane if fused else _python_forward_lane
        run_lanes(make_lane(x, x_kept, w_row, bias, out3, geom, tiling), lanes)
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
        Upper bound in bytes for the column buffer of each thread (default 2 MiB; for
        deeper layers the columns of 512 output positions, at most 8 MiB, and at least 128
        positions' columns): images are
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


def _fused_lane_args(x, x_kept, bias, geom, tiling):
    """``(add_bias, x_copy, phases, cols_size, wide_size)``: what the Numba forward lanes
    take besides the lane bounds and the scratch arrays."""
    empty = np.empty(0, dtype=x.dtype)
    add_bias = empty if bias is None or tiling.bias_row else bias
    cols_size = math.prod(_tile_shape(geom, tiling, tiling.images, tiling.out_rows * geom.wo))
    if not tiling.bias_row:  # pointwise: the input is its own columns
        cols_size = 0
    wide_size = geom.k * tiling.images * geom.positions if tiling.wide else 0
    # Kept split by stride phase (flat), x_kept is filled by the split itself, not by a copy.
    phases, x_copy = (x_kept, x) if x_kept.ndim == 1 else (None, x_kept)
    return add_bias, x_copy, phases, cols_size, wide_size


def _fused_forward_lane(x, x_kept, w_row, bias, out3, geom, tiling):
    """The forward lane of images ``n0:n1`` as one Numba call (see ``_lane_kernels``)."""
    add_bias, x_copy, phases, cols_size, wide_size = _fused_lane_args(x, x_kept, bias, geom,
                                                                      tiling)

    def forward_lane(n0: int, n1: int, r0: int, r1: int, serial: bool) -> None:
        seconds = np.zeros(4) if _stages.profiling() else None  # None: no clock code
        _lane_kernels.forward_lane(
            x, x_copy, w_row, add_bias, out3, n0, n1, r0, r1, *geom.kernel_args, tiling.images,
            tiling.out_rows, tiling.wide, tiling.bias_row,
            _scratch_buffer("cols", cols_size, x.dtype),
            _scratch_buffer("wide", wide_size, x.dtype), phases, seconds)
        if seconds is not None:
            _stages.add_lane_seconds(seconds)

    return forward_lane


def _parallel_forward_lanes(x, x_kept, w_row, bias, out3, geom, tiling, lanes, threads):
    """All the forward lanes in one parallel Numba call, each thread with its own scratch."""
    add_bias, x_copy, phases, cols_size, wide_size = _fused_lane_args(x, x_kept, bias, geom,
                                                                      tiling)
    seconds = np.zeros((len(lanes), 4)) if _stages.profiling() else None
    with single_threaded_blas():
        _lane_kernels.forward_lanes(
            np.array(lanes, dtype=np.int64), x, x_copy, w_row, add_bias, out3,
            *geom.kernel_args, tiling.images, tiling.out_rows, tiling.wide, tiling.bias_row,
            thread_scratch("cols", threads, cols_size, x.dtype),
            thread_scratch("wide", threads, wide_size, x.dtype), phases, seconds)
    if seconds is not None:
        _stages.add_lane_seconds(seconds.sum(axis=0))


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
