"""Drop-in replacements for the classic ``im2col_indices`` / ``col2im_indices``.

Same names, signatures, defaults and column layout as the classic teaching code
(``cols[(c*fh + a)*fw + b, (i*Wo + j)*N + n]``, batch index fastest), computed by parallel
Numba kernels instead of fancy indexing and ``np.add.at``.  Output sizes follow the floor
rule, so shapes the classic code rejected work too.
"""

from __future__ import annotations

import numba
import numpy as np

from numbaconv import _kernels
from numbaconv._validation import (
    IntPair,
    as_float_array,
    as_int,
    as_positive_int,
    check_ndim,
    make_geometry,
)

_FOUR_INTS = (int, int, int, int)
# im2col_indices moves the input batch last a plane at a time, in a buffer that stays in cache,
# while one plane of every image takes at most this many bytes (a core's L2 cache or so).
_PLANE_BYTES = 1 << 20


def im2col_indices(
    x: np.ndarray,
    field_height: int,
    field_width: int,
    padding: IntPair = 1,
    stride: IntPair = 1,
    *,
    dilation: IntPair = 1,
) -> np.ndarray:
    """Gather every receptive field of ``x`` into one column (classic layout).

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), float32 or float64
    field_height, field_width : int
        Kernel size.
    padding, stride : int or (int, int)
        Zero padding on each side and stride, per axis (height, width).
    dilation : int or (int, int), keyword-only
        Spacing between kernel taps (an extension; the classic code has none).

    Returns
    -------
    cols : ndarray, shape (C*field_height*field_width, Ho*Wo*N)
        ``cols[(c*fh + a)*fw + b, (i*Wo + j)*N + n] = xpad[n, c, i*sh + a*dh, j*sw + b*dw]``,
        dtype of ``x``; bitwise equal to the classic fancy-index version.
    """
    x = as_float_array("x", x)
    check_ndim("x", x, 4, "(N, C, H, W)", "im2col_indices")
    fh = as_positive_int("field_height", field_height)
    fw = as_positive_int("field_width", field_width)
    geom = make_geometry(x.shape, 1, fh, fw, stride, padding, dilation, op="im2col_indices")
    cols = np.empty((geom.rows, geom.positions * geom.n), dtype=x.dtype)
    k = _kernels
    if cols.size and geom.is_pointwise:  # the batch-last copy of x already is the columns
        k.run(k.transpose_batch, k.transpose_batch_serial, x.size, x.reshape(geom.n, -1),
              cols.reshape(-1, geom.n), True)
    elif cols.size and geom.n * geom.h * geom.w * x.itemsize <= _PLANE_BYTES:
        # A plane of every image at a time goes batch last, split by stride phase, into a
        # buffer that stays in cache, where every run of the classic layout is one contiguous
        # copy.  Planes are cut by taps where there are fewer than two per thread.
        # (Not through k.run: the parallel driver needs the thread count, and asking numba
        # for it costs about 1 us, a sixth of a small call.)
        if cols.size < k.SERIAL_BELOW:
            k.im2col_classic_serial(x, *geom.kernel_args, cols)
        else:
            groups = -(-2 * numba.get_num_threads() // geom.c)
            k.im2col_classic(x, groups, *geom.kernel_args, cols)
    elif cols.size:  # large planes: the whole input batch last (and split by stride phase)
        phases = np.empty(k.phases_size(*geom.x_shape, geom.sh, geom.sw), dtype=x.dtype)
        if geom.sh == geom.sw == 1:
            k.run(k.transpose_batch, k.transpose_batch_serial, x.size, x.reshape(geom.n, -1),
                  phases.reshape(-1, geom.n), True)
        else:
            k.run(k.batch_last_phases, k.batch_last_phases_serial, x.size, x, geom.sh,
                  geom.sw, phases)
        k.run(k.im2col_classic_from_phases, k.im2col_classic_from_phases_serial, cols.size,
              phases, geom.n, geom.c, geom.h, geom.w, *geom.kernel_args, cols)
    return cols


def col2im_indices(
    cols: np.ndarray,
    x_shape: tuple[int, int, int, int],
    field_height: int = 3,
    field_width: int = 3,
    padding: IntPair = 1,
    stride: IntPair = 1,
    *,
    dilation: IntPair = 1,
) -> np.ndarray:
    """Scatter-add columns back to an image batch: the adjoint of :func:`im2col_indices`.

    Parameters
    ----------
    cols : ndarray, shape (C*field_height*field_width, Ho*Wo*N), float32 or float64
        Columns in the classic layout (batch index fastest).
    x_shape : tuple of 4 ints
        ``(N, C, H, W)`` of the images the columns were gathered from.
    field_height, field_width, padding, stride, dilation
        As for :func:`im2col_indices`.

    Returns
    -------
    x : ndarray of shape ``x_shape`` and the dtype of ``cols``
        Every column entry added into the pixel it was gathered from; entries that came
        from the zero padding are dropped.
    """
    cols = as_float_array("cols", cols)
    check_ndim("cols", cols, 2, "(C*field_height*field_width, Ho*Wo*N)", "col2im_indices")
    if type(x_shape) is tuple and tuple(map(type, x_shape)) == _FOUR_INTS:
        shape = x_shape  # the common case, first: nothing to convert
    elif not isinstance(x_shape, (tuple, list)) or len(x_shape) != 4:
        raise ValueError(f"x_shape must be a tuple (N, C, H, W) of 4 ints, got {x_shape!r}")
    else:
        shape = tuple(as_int("x_shape", s) for s in x_shape)
    if min(shape) < 0:
        raise ValueError(f"x_shape must not have negative sizes, got {x_shape!r}")
    fh = as_positive_int("field_height", field_height)
    fw = as_positive_int("field_width", field_width)
    geom = make_geometry(shape, 1, fh, fw, stride, padding, dilation, op="col2im_indices")
    expected = (geom.rows, geom.positions * geom.n)
    if cols.shape != expected:
        raise ValueError(
            f"cols must have shape {expected} (C*fh*fw, Ho*Wo*N) for x_shape {shape}, "
            f"field {fh}x{fw}, padding {padding!r}, stride {stride!r}; got {cols.shape}")
    x = np.empty(shape, dtype=cols.dtype)
    if x.size:
        k = _kernels
        if geom.is_pointwise:  # every pixel is one column entry: only the transpose remains
            k.run(k.transpose_batch, k.transpose_batch_serial, x.size,
                  cols.reshape(-1, geom.n), x.reshape(geom.n, -1), False)
        else:
            k.run(k.col2im_classic, k.col2im_classic_serial, cols.size, cols,
                  *geom.kernel_args, x)
    return x
