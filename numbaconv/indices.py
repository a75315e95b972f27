"""Drop-in replacements for the classic ``im2col_indices`` / ``col2im_indices``.

Same names, signatures, defaults and column layout as the classic teaching code
(``cols[(c*fh + a)*fw + b, (i*Wo + j)*N + n]``, batch index fastest), computed by parallel
Numba kernels instead of fancy indexing and ``np.add.at``.  Output sizes follow the floor
rule, so shapes the classic code rejected work too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from numbaconv import _classic_kernels
from numbaconv._kernels import SERIAL_BELOW, run
from numbaconv._validation import (
    IntPair,
    as_classic_hyperparameter,
    as_classic_int,
    as_positive_int,
    check_ndim,
    make_geometry,
)

_FOUR_INTS = (int, int, int, int)
# im2col_indices moves the input batch last a plane at a time, in a buffer that stays in cache,
# while one plane of every image takes at most this many bytes (a core's L2 cache or so).
_PLANE_BYTES = 1 << 20

# --- dtypes ---------------------------------------------------------------------------------
# The kernels are compiled for float32 and float64 only, and those go to them directly.  The
# classic functions are plain NumPy and take any real dtype, so the drop-ins do too, converted
# at the boundary into the float32 / float64 kernels: one more kernel per dtype would cost
# every user of that dtype seconds of compilation, for calls that are rare.
#
# * im2col only copies: every value lands unchanged in the columns and the padding is zero.
#   The kernels move elements with loads, stores and vector shuffles (no arithmetic), which
#   keep any bit pattern, and 0.0 has the bits of integer 0.  So 4- and 8-byte dtypes (int32,
#   uint32, int64, uint64) go through a float32 / float64 *view*: bitwise exact at no cost.
#   1- and 2-byte dtypes (int8, uint8, int16, uint16, float16) have no float of their width:
#   their bits, read as an unsigned integer, are converted to float32 (exact: below 2**24)
#   and back, so float16 NaN payloads survive too.
# * col2im adds.  float16 is summed in float32 and rounded once to float16 (the classic
#   np.add.at sums in float16, rounding after every addition: the results may differ in the
#   last bits, ours being the more accurate).  Integers are summed exactly, wrapping around
#   on overflow as NumPy's integer np.add.at does: the bits are cut into chunks small enough
#   that every chunk's sum is an exact float64 integer, each chunk is summed by the float64
#   kernel, and the chunk sums are put together modulo 2**64.
_DIRECT = (np.dtype(np.float32), np.dtype(np.float64))
_VIEW_AS = {4: np.dtype(np.float32), 8: np.dtype(np.float64)}
_EXPECTED = "a real numeric dtype (signed or unsigned ints, float16, float32 or float64)"


def _classic_sizes(field_height: object, field_width: object, padding: object, stride: object,
                   dilation: object) -> tuple[int, int, object, object, object]:
    """The kernel size and hyperparameters with their numbers made ints, from what classic
    code passes (sizes computed with ``/``, such as ``2.0``, and NumPy scalars).

    Called only once the strict checks have raised a TypeError, so that ints, the common case,
    pay nothing for it; what is still wrong (``1.5``, NaN, a bool) raises again, with a message
    that says which floats are taken.
    """
    return (as_positive_int("field_height", as_classic_int("field_height", field_height)),
            as_positive_int("field_width", as_classic_int("field_width", field_width)),
            as_classic_hyperparameter("padding", padding),
            as_classic_hyperparameter("stride", stride),
            as_classic_hyperparameter("dilation", dilation))


def _real_array(name: str, value: object, op: str) -> np.ndarray:
    """``value`` as a native-endian, C-contiguous array of a real numeric dtype."""
    if not isinstance(value, np.ndarray):
        if isinstance(value, (list, tuple)) or np.isscalar(value):
            value = np.asarray(value)
        else:
            raise TypeError(f"{op}: {name} must be a NumPy array, got {type(value).__name__}")
    dt = value.dtype
    if dt.kind not in "iuf" or dt.itemsize > 8:
        # The classic layers' forward checks its input here too: for a layer with a bias,
        # splitting complex input would add the bias twice, and it gathers no bits.
        drop_in = op.endswith("_indices")
        if dt.kind == "b":
            advice = f"; bools are not summed by {op}: pass {name}.astype(np.uint8)"
            if drop_in:
                advice += (f" (for im2col_indices, {name}.view(np.uint8) and .view(bool) on "
                           f"the result gathers the same bits)")
        elif dt.kind == "c" and drop_in:
            advice = f"; complex data: call {op} on {name}.real and {name}.imag separately"
        elif dt.kind == "f":
            advice = f" (no long double in the kernels): convert it, e.g. {name}.astype(np.float64)"
        else:
            advice = ""
        raise TypeError(f"{op}: {name} must be an array of {_EXPECTED}, got dtype {dt}{advice}")
    return np.asarray(value, dtype=dt.newbyteorder("="), order="C")


def _im2col_other_dtype(x: np.ndarray, fh: object, fw: object, padding: object,
                        stride: object, dilation: object) -> np.ndarray:
    """:func:`im2col_indices` of a native, C-contiguous ``x`` that is neither float32 nor
    float64, through the float kernels, bitwise exact (see the note on dtypes above)."""
    view_as = _VIEW_AS.get(x.dtype.itemsize)
    if view_as is not None:
        cols = im2col_indices(x.view(view_as), fh, fw, padding, stride, dilation=dilation)
        return cols.view(x.dtype)
    bits = np.dtype(f"u{x.dtype.itemsize}")
    cols = im2col_indices(x.view(bits).astype(np.float32), fh, fw, padding, stride,
                          dilation=dilation)
    return cols.astype(bits).view(x.dtype)


def _col2im_other_dtype(cols: np.ndarray, shape: tuple[int, int, int, int], fh: int, fw: int,
                        padding: object, stride: object, dilation: object) -> np.ndarray:
    """:func:`col2im_indices` of a native, C-contiguous ``cols`` that is neither float32 nor
    float64, through the float kernels (see the note on dtypes above)."""
    if cols.dtype.kind == "f":  # float16: summed in float32, rounded once
        return col2im_indices(cols.astype(np.float32), shape, fh, fw, padding, stride,
                              dilation=dilation).astype(cols.dtype)
    # A pixel receives at most fh*fw column entries (one per tap), so chunks of `chunk` bits
    # sum exactly in float64 while fh*fw * (2**chunk - 1) < 2**53.
    taps, width = fh * fw, 8 * cols.dtype.itemsize
    chunk = 32
    while chunk > 1 and taps << chunk >= 1 << 53:
        chunk //= 2
    unsigned = np.dtype(f"u{cols.dtype.itemsize}")
    bits = cols.view(unsigned)
    mask = unsigned.type((1 << min(chunk, width)) - 1)
    total = np.zeros(shape, dtype=np.uint64)
    for shift in range(0, width, chunk):
        part = ((bits >> unsigned.type(shift)) & mask).astype(np.float64)
        summed = col2im_indices(part, shape, fh, fw, padding, stride, dilation=dilation)
        total += summed.astype(np.uint64) << np.uint64(shift)  # modulo 2**64, as wanted
    return total.astype(unsigned).view(cols.dtype)  # the low bits: wraps as NumPy's ints do


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
    x : ndarray, shape (N, C, H, W), any real numeric dtype
        Signed or unsigned ints, float16, float32 or float64 (as the classic version takes);
        complex, bool and object arrays are a TypeError.  float32 and float64 go to the
        kernels directly, other dtypes through them unchanged (see the note in the source).
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
        dtype of ``x`` (in native byte order); bitwise equal to the classic fancy-index
        version, for every dtype.

    Notes
    -----
    Sizes and hyperparameters may also be NumPy integers or whole-number floats such as
    ``2.0`` (classic code computes them with ``/``); ``1.5``, NaN and bools are refused.
    """
    if not (type(x) is np.ndarray and x.flags.c_contiguous and x.dtype in _DIRECT):
        x = _real_array("x", x, "im2col_indices")
        if x.dtype not in _DIRECT:
            return _im2col_other_dtype(x, field_height, field_width, padding, stride,
                                       dilation)
    check_ndim("x", x, 4, "(N, C, H, W)", "im2col_indices")
    try:
        fh = as_positive_int("field_height", field_height)
        fw = as_positive_int("field_width", field_width)
        geom = make_geometry(x.shape, 1, fh, fw, stride, padding, dilation, op="im2col_indices")
    except TypeError:  # floats such as 2.0: see _classic_sizes
        fh, fw, padding, stride, dilation = _classic_sizes(field_height, field_width, padding,
                                                           stride, dilation)
        geom = make_geometry(x.shape, 1, fh, fw, stride, padding, dilation, op="im2col_indices")
    cols = np.empty((geom.rows, geom.positions * geom.n), dtype=x.dtype)
    k = _classic_kernels
    if cols.size and geom.is_pointwise:  # the batch-last copy of x already is the columns
        run(k.transpose_batch, k.transpose_batch_serial, x.size, x.reshape(geom.n, -1),
            cols.reshape(-1, geom.n), True)
    elif cols.size and geom.n * geom.h * geom.w * x.itemsize <= _PLANE_BYTES:
        # A plane of every image at a time goes batch last, split by stride phase, into a
        # buffer that stays in cache, where every run of the classic layout is one contiguous
        # copy.  Planes are cut by taps where there are fewer than two per thread.
        # (Not through run: the parallel driver needs the thread count, and asking numba
        # for it costs about 1 us, a sixth of a small call.)
        # (Each stride class has drivers of its own: a first call compiles only its own.)
        unit_stride = geom.sh == geom.sw == 1
        if cols.size < SERIAL_BELOW:
            (k.im2col_classic_serial_unit_stride if unit_stride
             else k.im2col_classic_serial_strided)(x, *geom.kernel_args, cols)
        else:
            groups = -(-2 * numba.get_num_threads() // geom.c)
            (k.im2col_classic_unit_stride if unit_stride
             else k.im2col_classic_strided)(x, groups, *geom.kernel_args, cols)
    elif cols.size:  # large planes: the whole input batch last (and split by stride phase)
        phases = np.empty(k.phases_size(*geom.x_shape, geom.sh, geom.sw), dtype=x.dtype)
        if geom.sh == geom.sw == 1:
            run(k.transpose_batch, k.transpose_batch_serial, x.size, x.reshape(geom.n, -1),
                phases.reshape(-1, geom.n), True)
        else:
            run(k.batch_last_phases, k.batch_last_phases_serial, x.size, x, geom.sh,
                geom.sw, phases)
        run(k.im2col_classic_from_phases, k.im2col_classic_from_phases_serial, cols.size,
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
    cols : ndarray, shape (C*field_height*field_width, Ho*Wo*N), any real numeric dtype
        Columns in the classic layout (batch index fastest).  float32 and float64 are summed
        in their own precision; float16 is summed in float32 and rounded once to float16
        (the classic ``np.add.at`` rounds to float16 after every addition, so the last bits
        may differ, ours being the more accurate); signed and unsigned ints are summed
        exactly in their own type, wrapping around on overflow as the classic ``np.add.at``
        on an int array does.  Complex, bool and object arrays are a TypeError.
    x_shape : sequence or 1-d array of 4 ints
        ``(N, C, H, W)`` of the images the columns were gathered from: a tuple, a list, an
        ``x.shape`` or a 1-d integer array; whole-number floats such as ``28.0`` are accepted.
    field_height, field_width, padding, stride, dilation
        As for :func:`im2col_indices`.

    Returns
    -------
    x : ndarray of shape x_shape and the dtype of cols (in native byte order)
        Every column entry added into the pixel it was gathered from; entries that came
        from the zero padding are dropped.
    """
    other_dtype = False  # (a flag: comparing dtypes again below would cost 50 ns a call)
    if not (type(cols) is np.ndarray and cols.flags.c_contiguous and cols.dtype in _DIRECT):
        cols = _real_array("cols", cols, "col2im_indices")
        other_dtype = cols.dtype not in _DIRECT
    check_ndim("cols", cols, 2, "(C*field_height*field_width, Ho*Wo*N)", "col2im_indices")
    if type(x_shape) is tuple and tuple(map(type, x_shape)) == _FOUR_INTS:
        shape = x_shape  # the common case, first: nothing to convert
    else:
        shape = _shape_of_four(x_shape)
    if min(shape) < 0:
        raise ValueError(f"x_shape must not have negative sizes, got {x_shape!r}")
    try:
        fh = as_positive_int("field_height", field_height)
        fw = as_positive_int("field_width", field_width)
        geom = make_geometry(shape, 1, fh, fw, stride, padding, dilation, op="col2im_indices")
    except TypeError:  # floats such as 2.0: see _classic_sizes
        fh, fw, padding, stride, dilation = _classic_sizes(field_height, field_width, padding,
                                                           stride, dilation)
        geom = make_geometry(shape, 1, fh, fw, stride, padding, dilation, op="col2im_indices")
    expected = (geom.rows, geom.positions * geom.n)
    if cols.shape != expected:
        raise ValueError(
            f"cols must have shape {expected} (C*fh*fw, Ho*Wo*N) for x_shape {shape}, "
            f"field {fh}x{fw}, padding {padding!r}, stride {stride!r}; got {cols.shape}")
    if other_dtype:
        return _col2im_other_dtype(cols, shape, fh, fw, padding, stride, dilation)
    x = np.empty(shape, dtype=cols.dtype)
    if x.size:
        k = _classic_kernels
        if geom.is_pointwise:  # every pixel is one column entry: only the transpose remains
            run(k.transpose_batch, k.transpose_batch_serial, x.size,
                cols.reshape(-1, geom.n), x.reshape(geom.n, -1), False)
        else:
            run(k.col2im_classic, k.col2im_classic_serial, cols.size, cols,
                *geom.kernel_args, x)
    return x


def _shape_of_four(x_shape: object) -> tuple[int, int, int, int]:
    """``x_shape`` given as a sequence or 1-d array of 4 sizes, as a tuple of 4 ints."""
    expected = "a sequence or 1-d array (N, C, H, W) of 4 ints"
    if isinstance(x_shape, np.ndarray):
        if x_shape.ndim != 1:
            raise ValueError(f"x_shape must be {expected}, got an array of shape {x_shape.shape}")
    elif isinstance(x_shape, (str, bytes)) or not isinstance(x_shape, Sequence):
        raise ValueError(f"x_shape must be {expected}, got {x_shape!r}")
    if len(x_shape) != 4:
        raise ValueError(f"x_shape must be {expected}, got {x_shape!r} with {len(x_shape)} "
                         f"entries")
    try:
        return tuple(as_classic_int("x_shape", s) for s in x_shape)  # type: ignore[return-value]
    except TypeError:
        raise TypeError(f"x_shape must be {expected} (whole-number floats such as 28.0 are "
                        f"accepted), got {x_shape!r}") from None
