"""Functional convolution: ``conv2d_forward`` and ``conv2d_backward``.

Columns are kept per image, ``cols[n]`` of shape ``(R, Q)`` with ``R = C*fh*fw`` and
``Q = Ho*Wo``, so ``W_row @ cols[n]`` is already ``out[n]`` in (K, Ho, Wo) order: no transpose
of the output is ever needed.  Images are processed in chunks whose column buffer fits the
``workspace`` budget.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from numbaconv import _kernels
from numbaconv._lanes import run_lanes
from numbaconv._validation import (
    ConvGeometry,
    IntPair,
    as_float_array,
    check_ndim,
    check_same_dtype,
    check_workspace,
    make_geometry,
)

# Default byte budget of a column buffer.  Chunks this small stay in the last-level cache
# between im2col and the matrix product, and stay below glibc's mmap threshold (32 MiB), so
# the buffer is recycled by malloc instead of being page-faulted in afresh on every call.
DEFAULT_WORKSPACE = 2 * 2**20
# Output planes smaller than this many positions use the wide layout (see use_wide_layout).
WIDE_BELOW = 256


@dataclass(frozen=True)
class ConvCache:
    """What :func:`conv2d_backward` needs from the forward pass.

    Only the input is kept, not its columns: the backward pass recomputes them chunk by
    chunk, which costs one more im2col but keeps memory at the size of ``x`` plus a bounded
    workspace.  ``x`` is a private copy (writing into the caller's array after the forward
    pass does not change the gradients); ``w`` is the caller's array, so, as in the classic
    layer, the backward pass uses the weights as they are when it runs.
    """

    x: np.ndarray
    w: np.ndarray
    geometry: ConvGeometry
    images_per_chunk: int


# Seconds per stage while a ``profile_stages()`` block is active, else None.
_stage_seconds: dict[str, float] | None = None
_stage_lock = threading.Lock()


class _Stage:
    """Adds the time spent inside ``with _Stage(name):`` to ``_stage_seconds`` when profiling."""

    __slots__ = ("name", "start")

    def __init__(self, name: str) -> None:
        self.name = name
        self.start = 0.0

    def __enter__(self) -> None:
        if _stage_seconds is not None:
            self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        if _stage_seconds is not None:
            elapsed = time.perf_counter() - self.start
            with _stage_lock:
                _stage_seconds[self.name] = _stage_seconds.get(self.name, 0.0) + elapsed


@contextmanager
def profile_stages() -> Iterator[dict[str, float]]:
    """Collect the seconds spent in each stage of the forward and backward passes.

    Yields a dict that fills in with ``im2col``, ``gemm`` (matrix products, including the
    accumulation of ``dw``), ``col2im`` and ``bias`` (bias addition and ``db``) while the block
    runs.  Times are summed over the threads that work on a call, so compare them as shares of
    their sum; whatever else a call spends (validation, allocation) is not in any stage.
    """
    global _stage_seconds
    previous, _stage_seconds = _stage_seconds, {}
    try:
        yield _stage_seconds
    finally:
        _stage_seconds = previous


def _bias_vector(b: object, k: int, dtype: np.dtype) -> np.ndarray | None:
    if b is None:
        return None
    bias = as_float_array("bias", b, dtype=dtype)
    if bias.shape not in ((k,), (k, 1)):
        raise ValueError(
            f"bias must have shape ({k},) or ({k}, 1) to match the {k} filters of weight, "
            f"got bias of shape {bias.shape}")
    return bias.reshape(k)


def images_per_chunk(geom: ConvGeometry, itemsize: int, workspace: int | None) -> int:
    """How many images' column blocks fit in ``workspace`` bytes (at least one)."""
    if geom.n == 0:
        return 1
    if workspace is None:
        workspace = DEFAULT_WORKSPACE
    per_image = geom.rows * geom.positions * itemsize
    return int(min(max(workspace // max(per_image, 1), 1), geom.n))


def _cols_shape(geom: ConvGeometry, images: int, wide: bool) -> tuple[int, int, int]:
    """Shape of the columns of ``images`` images: ``(n, R, Q)``, or ``(R, n, Q)`` if wide."""
    if wide:
        return (geom.rows, images, geom.positions)
    return (images, geom.rows, geom.positions)


def im2col_blocks(x: np.ndarray, geom: ConvGeometry, out: np.ndarray | None = None,
                  serial: bool = False, wide: bool = False) -> np.ndarray:
    """Columns of a validated, C-contiguous ``x``: per image ``(N, R, Q)``, or ``(R, N, Q)``
    with ``wide`` (one matrix ``(R, N*Q)`` for the whole chunk)."""
    if geom.is_pointwise and not wide:
        return x.reshape(x.shape[0], geom.c, geom.positions)
    if out is None:
        out = np.empty(_cols_shape(geom, x.shape[0], wide), dtype=x.dtype)
    _kernels.run(_kernels.im2col_blocks, _kernels.im2col_blocks_serial, out.size,
                 x, *geom.kernel_args, out, wide, force_serial=serial)
    return out


def col2im_blocks(cols: np.ndarray, geom: ConvGeometry, dx: np.ndarray,
                  serial: bool = False, wide: bool = False) -> None:
    """Overwrite ``dx`` (C-contiguous ``(n, C, H, W)``) with col2im of ``cols`` (laid out as
    :func:`im2col_blocks` makes them)."""
    if geom.is_pointwise and not wide:
        dx.reshape(cols.shape)[...] = cols
    else:
        _kernels.run(_kernels.col2im_blocks, _kernels.col2im_blocks_serial, cols.size,
                     cols, *geom.kernel_args, dx, wide, force_serial=serial)


def use_wide_layout(geom: ConvGeometry) -> bool:
    """Small output planes make per-image products too thin for BLAS to run fast: then a
    chunk of images shares one ``(R, n*Q)`` column matrix and one product."""
    return geom.positions < WIDE_BELOW and not geom.is_pointwise


def _column_chunks(
    x: np.ndarray, geom: ConvGeometry, n0: int, n1: int, chunk: int, serial: bool, wide: bool
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(m0, m1, cols)``: the columns of images ``m0:m1`` within ``n0:n1``, ``chunk``
    images at a time, laid out as :func:`im2col_blocks` makes them.

    One buffer is reused for every chunk, so it must be consumed before the next is produced.
    """
    buffer = None
    if not (geom.is_pointwise and not wide):  # pointwise columns are views of x
        buffer = np.empty(min(chunk, n1 - n0) * geom.rows * geom.positions, dtype=x.dtype)
    for m0 in range(n0, n1, chunk):
        m1 = min(m0 + chunk, n1)
        shape = _cols_shape(geom, m1 - m0, wide)
        out = None if buffer is None else buffer[: math.prod(shape)].reshape(shape)
        with _Stage("im2col"):
            cols = im2col_blocks(x[m0:m1], geom, out, serial, wide)
        yield m0, m1, cols


def conv2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    *,
    workspace: int | None = None,
) -> tuple[np.ndarray, ConvCache]:
    """2-D convolution (cross-correlation, as in PyTorch) by im2col and a matrix product.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), float32 or float64
        Input images. Non-contiguous, read-only and byte-swapped arrays are accepted.
    w : ndarray, shape (K, C, fh, fw), same dtype as ``x``
        Filters.
    b : ndarray of shape (K,) or (K, 1), optional
        Bias, one value per filter.
    stride, padding, dilation : int or (int, int)
        Per-axis (height, width) hyperparameters; padding is zero padding on both sides.
    workspace : int, optional
        Upper bound in bytes for the column buffer (default 2 MiB): images are processed in
        chunks of as many images as fit, and at least one image at a time.

    Returns
    -------
    out : ndarray, shape (N, K, Ho, Wo)
        C-contiguous, dtype of ``x``; ``Ho = (H + 2*ph - dh*(fh-1) - 1) // sh + 1``.
    cache : ConvCache
        Pass to :func:`conv2d_backward`.
    """
    given = x
    x = as_float_array("input", x)
    # The backward pass reads x again: it gets a private copy (made lane by lane, below), so
    # that the caller writing into its array between forward and backward cannot change the
    # gradients.  A converted array is private already.
    copy_x = isinstance(given, np.ndarray) and np.may_share_memory(x, given)
    w = as_float_array("weight", w)
    check_ndim("input", x, 4, "(N, C, H, W)", "conv2d")
    check_ndim("weight", w, 4, "(K, C, fh, fw)", "conv2d")
    check_same_dtype(x, w)
    if x.shape[1] != w.shape[1]:
        raise ValueError(
            f"Given groups=1, weight of size {list(w.shape)}, expected input{list(x.shape)} "
            f"to have {w.shape[1]} channels, but got {x.shape[1]} channels instead")
    k, _, fh, fw = w.shape
    geom = make_geometry(x.shape, k, fh, fw, stride, padding, dilation)
    bias = _bias_vector(b, k, x.dtype)
    chunk = images_per_chunk(geom, x.itemsize, check_workspace(workspace))

    out = np.empty(geom.out_shape, dtype=x.dtype)
    out3 = out.reshape(geom.n, k, geom.positions)
    w_row = w.reshape(k, geom.rows)

    wide = use_wide_layout(geom)

    x_kept = np.empty_like(x) if copy_x else x

    def forward_lane(n0: int, n1: int, serial: bool) -> None:
        if copy_x:
            x_kept[n0:n1] = x[n0:n1]
        for m0, m1, cols in _column_chunks(x_kept, geom, n0, n1, chunk, serial, wide):
            with _Stage("gemm"):
                if wide:  # (K, m*Q) -> (m, K, Q)
                    product = w_row @ cols.reshape(geom.rows, -1)
                    np.copyto(out3[m0:m1], product.reshape(k, m1 - m0, -1).transpose(1, 0, 2))
                else:
                    np.matmul(w_row, cols, out=out3[m0:m1])
            if bias is not None:
                with _Stage("bias"):
                    out3[m0:m1] += bias[:, None]

    run_lanes(forward_lane, geom.n, geom.multiply_adds)
    return out, ConvCache(x=x_kept, w=w, geometry=geom, images_per_chunk=chunk)


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
    dw : ndarray, shape (K, C, fh, fw)
    db : ndarray, shape (K,)
        Always returned, also when the forward pass had no bias.
    """
    if not isinstance(cache, ConvCache):
        raise TypeError(
            f"cache must be the ConvCache returned by conv2d_forward, got {type(cache).__name__}")
    geom, x, w = cache.geometry, cache.x, cache.w
    dout = as_float_array("dout", dout, dtype=x.dtype)
    if dout.shape != geom.out_shape:
        raise ValueError(
            f"dout must have the shape of the forward output {geom.out_shape}, "
            f"got {dout.shape}")
    k, rows = geom.k, geom.rows
    dout3 = dout.reshape(geom.n, k, geom.positions)
    w_col = np.ascontiguousarray(w.reshape(k, rows).T)
    dx = np.empty(geom.x_shape, dtype=x.dtype)
    dx3 = dx.reshape(geom.n, geom.c, geom.h * geom.w)

    wide = use_wide_layout(geom)
    chunk = cache.images_per_chunk

    def backward_lane(n0: int, n1: int, serial: bool) -> tuple[np.ndarray, np.ndarray]:
        """dx of images n0:n1, and their parts of dw (summed chunk by chunk, in order) and db."""
        with _Stage("bias"):
            db_lane = dout3[n0:n1].sum(axis=(0, 2))
        dw_lane = np.zeros((k, rows), dtype=x.dtype)
        dw_part = np.empty((k, rows), dtype=x.dtype)
        dcols_buffer = None
        for m0, m1, cols in _column_chunks(x, geom, n0, n1, chunk, serial, wide):
            with _Stage("gemm"):
                if wide:  # one product for the chunk, on dout laid out as (K, m*Q)
                    grad = np.ascontiguousarray(dout3[m0:m1].transpose(1, 0, 2))
                    grad = grad.reshape(k, -1)
                    np.dot(grad, cols.reshape(rows, -1).T, out=dw_part)
                    dw_lane += dw_part
                else:
                    for m in range(m0, m1):
                        np.dot(dout3[m], cols[m - m0].T, out=dw_part)
                        dw_lane += dw_part
                    grad = dout3[m0:m1]
                if geom.is_pointwise:  # the column gradient is the input gradient
                    np.matmul(w_col, grad, out=dx3[m0:m1])
                    continue
                if dcols_buffer is None:
                    dcols_buffer = np.empty(cols.size, dtype=x.dtype)
                dcols = dcols_buffer[: cols.size].reshape(cols.shape)
                np.matmul(w_col, grad, out=dcols.reshape(rows, -1) if wide else dcols)
            with _Stage("col2im"):
                col2im_blocks(dcols, geom, dx[m0:m1], serial, wide)
        return dw_lane, db_lane

    dw_row = np.zeros((k, rows), dtype=x.dtype)
    db = np.zeros(k, dtype=x.dtype)
    # Summed in lane order, which does not depend on the thread count: deterministic.
    for dw_lane, db_lane in run_lanes(backward_lane, geom.n, 2 * geom.multiply_adds):
        dw_row += dw_lane
        db += db_lane
    return dx, dw_row.reshape(geom.w_shape), db
