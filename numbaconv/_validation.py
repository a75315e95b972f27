"""Argument checking shared by every public entry point.

Everything is validated and converted once, here, so the kernels can assume native-endian,
C-contiguous float32/float64 arrays and sizes that fit comfortably in int64.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field

import numpy as np

IntPair = int | tuple[int, int]

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# Indices inside the kernels are int64; keep every size (and every product of sizes that is
# used as an offset) far enough below 2**63 that no intermediate can wrap.
MAX_SIZE = 2**62


class BackwardBeforeForwardError(RuntimeError, ValueError):
    """``backward`` was called on a layer that has not run ``forward`` yet."""


def _describe(value: object) -> str:
    return f"{value!r} ({type(value).__name__})"


def as_int(name: str, value: object) -> int:
    """``value`` as a Python int; bools, floats and other types are a TypeError."""
    if type(value) is int:  # the common case, first: this runs on every call
        return value
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iu":
        value = value.item()
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, got {_describe(value)}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {_describe(value)}") from None


def as_pair(name: str, value: object, minimum: int) -> tuple[int, int]:
    """An int or an (h, w) pair of ints, each ``>= minimum``, as a tuple of two ints."""
    if type(value) is int and minimum <= value < MAX_SIZE:  # the common case, first
        return value, value
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (tuple, list, np.ndarray)):
        if isinstance(value, np.ndarray) and value.ndim != 1:
            raise ValueError(
                f"{name} must be an int or a pair (h, w) of ints, got an array of shape "
                f"{value.shape}")
        items = list(value)
        if len(items) != 2:
            raise ValueError(
                f"{name} must be an int or a pair (h, w) of ints, got {value!r} "
                f"with {len(items)} entries")
        try:
            pair = (as_int(name, items[0]), as_int(name, items[1]))
        except TypeError:
            raise TypeError(
                f"{name} must be an int or a pair (h, w) of ints, got {_describe(value)}"
            ) from None
    else:
        try:
            v = as_int(name, value)
        except TypeError:
            raise TypeError(
                f"{name} must be an int or a pair (h, w) of ints, got {_describe(value)}"
            ) from None
        pair = (v, v)
    if min(pair) < minimum:
        qualifier = "non-negative" if minimum == 0 else f">= {minimum}"
        raise ValueError(f"{name} must be {qualifier}, got {value!r}")
    if max(pair) >= MAX_SIZE:
        raise ValueError(f"{name} = {value!r} is too large: sizes would overflow int64 indexing")
    return pair


def as_float_array(name: str, value: object, dtype: np.dtype | None = None) -> np.ndarray:
    """``value`` as a native-endian, C-contiguous float32/float64 array.

    Non-contiguous, read-only and byte-swapped arrays are accepted (copied only when needed).
    Integer, bool, complex and other dtypes are a TypeError; there is no silent cast to float.
    If ``dtype`` is given, floating input of another precision is converted to it.
    """
    if type(value) is np.ndarray and value.flags.c_contiguous and (
            value.dtype in SUPPORTED_DTYPES if dtype is None else value.dtype == dtype):
        return value  # the common case, first: nothing to check or convert
    if not isinstance(value, np.ndarray):
        if isinstance(value, (list, tuple)) or np.isscalar(value):
            value = np.asarray(value)
        else:
            raise TypeError(f"{name} must be a NumPy array, got {type(value).__name__}")
    kind = value.dtype.kind
    if kind != "f" or value.dtype.itemsize not in (4, 8):
        raise TypeError(
            f"{name} must be a float32 or float64 array, got dtype {value.dtype}"
            + ("" if kind == "f" else " (convert it explicitly, e.g. x.astype(np.float32))"))
    target = value.dtype.newbyteorder("=") if dtype is None else np.dtype(dtype)
    # np.asarray keeps 0-d arrays 0-d (np.ascontiguousarray would make them 1-d).
    return np.asarray(value, dtype=target, order="C")


def as_positive_int(name: str, value: object) -> int:
    """``value`` as a Python int ``>= 1``."""
    if type(value) is int and 1 <= value < MAX_SIZE:  # the common case, first
        return value
    result = as_int(name, value)
    if result < 1:
        raise ValueError(f"{name} must be a positive int, got {result}")
    check_count(name, result)
    return result


def as_classic_int(name: str, value: object) -> int:
    """``value`` as a Python int, accepting what classic (Python-2-era) code passes.

    Classic code computes sizes with ``/`` (``padding = (F - 1) / 2``), so a float that is a
    whole number (``2.0``, ``np.float32(3.0)``) is accepted as well as ints and NumPy integer
    scalars; it is converted exactly.  A float with a fraction (``1.5``), NaN, infinities,
    bools and other types are a TypeError naming the value.  For the drop-in functions and the
    classic ``Conv``; the functional API keeps PyTorch's strict ints (see ``conv2d_forward``).
    """
    if type(value) is int:  # the common case, first
        return value
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]  # the NumPy scalar
    if isinstance(value, (float, np.floating)):
        if math.isfinite(value) and float(value).is_integer():
            return int(value)
        raise TypeError(
            f"{name} must be an int (a float only when it is a whole number, such as 2.0), "
            f"got {_describe(value)}")
    return as_int(name, value)


def as_classic_hyperparameter(name: str, value: object) -> object:
    """A stride, padding or dilation from classic code with its numbers made ints.

    Scalars go through :func:`as_classic_int`; tuples, lists and 1-d arrays become tuples of
    ints (nested ones too).  Only the numbers are converted: whether the form is valid (an int
    or an ``(h, w)`` pair, the ranges) is left to :func:`make_geometry`, and values of other
    types (a string, say) are passed on for it to judge.  Converting before
    :func:`make_geometry` keeps its cache keyed on ints only.
    """
    if type(value) is int:  # the common case, first
        return value
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (float, np.floating, np.integer, bool, np.bool_)):
        return as_classic_int(name, value)
    if isinstance(value, (tuple, list)) or (isinstance(value, np.ndarray) and value.ndim == 1):
        try:
            return tuple(as_classic_hyperparameter(name, v) for v in value)
        except TypeError:
            raise TypeError(
                f"{name} must be an int or a pair (h, w) of ints (whole-number floats such as "
                f"2.0 are accepted), got {_describe(value)}") from None
    return value


def input_shape_hint(shape: tuple[int, ...], channels: int,
                     image: tuple[int, int] | None = None) -> str:
    """A hint for the two commonest input-shape mistakes, or ``""``.

    ``shape`` is the shape of an input that was refused by a convolution expecting
    ``(N, C, H, W)`` with ``C = channels`` (and ``(H, W) = image``, when the input size is
    fixed, as for a layer).  A 4-D input whose last axis has C entries is probably
    channels-last; a 3-D one is probably a single image.  Build error messages with it on
    the error path only.
    """
    shape = tuple(shape)
    if len(shape) == 4 and shape[3] == channels and (
            shape[1] != channels or (image is not None and shape[1:3] == image)):
        return ("; this looks like channels-last (N, H, W, C) data: convolutions here take "
                "(N, C, H, W), so pass x.transpose(0, 3, 1, 2)")
    if len(shape) == 3:
        if shape[0] == channels and (image is None or shape[1:] == image):
            return ("; this looks like a single (C, H, W) image: add the batch axis with "
                    "x[None], shape (1, C, H, W)")
        if shape[2] == channels and (image is None or shape[:2] == image):
            return ("; this looks like a single channels-last (H, W, C) image: pass "
                    "x.transpose(2, 0, 1)[None], shape (1, C, H, W)")
    return ""


def check_workspace(workspace: object) -> int | None:
    """``None`` or a positive number of bytes."""
    if workspace is None:
        return None
    value = as_int("workspace", workspace)
    if value < 1:
        raise ValueError(f"workspace must be a positive number of bytes or None, got {value}")
    return value


def check_ndim(name: str, arr: np.ndarray, ndim: int, layout: str, op: str) -> None:
    if arr.ndim != ndim:
        raise ValueError(
            f"Expected {ndim}D {name} {layout} for {op}, but got {name} of size: "
            f"{list(arr.shape)}")


def check_same_dtype(x: np.ndarray, w: np.ndarray) -> None:
    if x.dtype != w.dtype:
        raise TypeError(
            f"Input type ({x.dtype}) and weight type ({w.dtype}) should be the same; "
            f"cast one of them, e.g. w.astype(x.dtype)")


def check_count(name: str, value: int) -> None:
    if value >= MAX_SIZE:
        raise ValueError(
            f"{name} = {value} is too large: sizes would overflow int64 indexing")


def check_output_padding(output_padding: tuple[int, ...], stride: tuple[int, ...],
                         dilation: tuple[int, ...]) -> None:
    """Refuse a transposed convolution's output padding that is not smaller than either the
    stride or the dilation on some axis, in PyTorch's words.  The values are per axis, (h, w)
    or, for one axis, (length,): PyTorch runs a 1-D call as a 2-D one of height 1, and reports
    it so, with an output padding of 0 and a stride and dilation of 1 for the height."""
    if all(op < s or op < d for op, s, d in zip(output_padding, stride, dilation, strict=True)):
        return
    if len(output_padding) == 1:
        output_padding, stride, dilation = (0, *output_padding), (1, *stride), (1, *dilation)
    (oph, opw), (sh, sw), (dh, dw) = output_padding, stride, dilation
    raise ValueError(
        f"output padding must be smaller than either stride or dilation, but got "
        f"output_padding_height: {oph} output_padding_width: {opw} stride_height: {sh} "
        f"stride_width: {sw} dilation_height: {dh} dilation_width: {dw}")


@dataclass(frozen=True, slots=True)
class ConvGeometry:
    """Sizes and hyperparameters of one 2-D convolution, all validated Python ints.

    The derived sizes are computed once, when the geometry is made: :func:`make_geometry`
    remembers geometries, so a layer's calls read them as plain attributes.
    """

    n: int
    c: int
    h: int
    w: int
    k: int
    fh: int
    fw: int
    sh: int
    sw: int
    ph: int
    pw: int
    dh: int
    dw: int
    ho: int
    wo: int
    # Bottom and right padding; ph and pw are the top and left amounts, the only ones the
    # kernels take (as offsets, with the output size): -1 means the same as ph / pw.
    ph_end: int = -1
    pw_end: int = -1
    rows: int = field(init=False)  # rows of a column matrix: C * fh * fw
    positions: int = field(init=False)  # output positions per image: Ho * Wo
    multiply_adds: int = field(init=False)  # of the forward product: N * K * rows * positions
    kernel_args: tuple[int, ...] = field(init=False)  # trailing scalars of every kernel
    is_pointwise: bool = field(init=False)  # 1x1, stride 1, no padding: columns are x itself
    x_shape: tuple[int, int, int, int] = field(init=False)
    out_shape: tuple[int, int, int, int] = field(init=False)
    w_shape: tuple[int, int, int, int] = field(init=False)

    def __post_init__(self) -> None:
        if self.ph_end < 0:
            object.__setattr__(self, "ph_end", self.ph)
        if self.pw_end < 0:
            object.__setattr__(self, "pw_end", self.pw)
        derived = {
            "rows": self.c * self.fh * self.fw,
            "positions": self.ho * self.wo,
            "kernel_args": (self.fh, self.fw, self.sh, self.sw, self.ph, self.pw, self.dh,
                            self.dw, self.ho, self.wo),
            "is_pointwise": (self.fh, self.fw, self.sh, self.sw, self.ph, self.pw,
                             self.ph_end, self.pw_end) == (1, 1, 1, 1, 0, 0, 0, 0),
            "x_shape": (self.n, self.c, self.h, self.w),
            "out_shape": (self.n, self.k, self.ho, self.wo),
            "w_shape": (self.k, self.c, self.fh, self.fw),
        }
        derived["multiply_adds"] = self.n * self.k * derived["rows"] * derived["positions"]
        for name, value in derived.items():
            object.__setattr__(self, name, value)  # frozen: the dataclass way to initialise

    @property
    def pads(self) -> tuple[int, int, int, int]:
        """The padding as ``(top, bottom, left, right)``."""
        return self.ph, self.ph_end, self.pw, self.pw_end


# Geometries already validated, by their arguments: a layer calls with the same ones again
# and again, and validating took a fifth of a small layer's col2im_indices call.
_known_geometries: dict[tuple, ConvGeometry] = {}
_KNOWN_GEOMETRIES_MAX = 1024


def _is_int_pair(value: object) -> bool:
    """A tuple of two ints (not bools or floats, which compare equal to ints)."""
    return (type(value) is tuple and len(value) == 2
            and type(value[0]) is int and type(value[1]) is int)


def _is_padding_key(value: object, padding_forms: bool) -> bool:
    """Padding that can key a remembered geometry: an int or a pair of ints, and with
    ``padding_forms`` also a string or a pair of pairs of ints."""
    return (type(value) is int or _is_int_pair(value)
            or (padding_forms and (type(value) is str or (
                type(value) is tuple and len(value) == 2
                and _is_int_pair(value[0]) and _is_int_pair(value[1])))))


def make_geometry(x_shape: tuple[int, ...], k: int, fh: int, fw: int,
                  stride: object, padding: object, dilation: object,
                  op: str = "conv2d", *, padding_forms: bool = False) -> ConvGeometry:
    """Validate hyperparameters against an input shape and compute the output size.

    Output size follows the floor rule ``(H + top + bottom - D*(F-1) - 1) // S + 1``.
    ``padding`` is an int or an ``(h, w)`` pair (both sides); with ``padding_forms`` also a
    pair of pairs ``((top, bottom), (left, right))``, ``'valid'`` or ``'same'`` (see
    ``numbaconv._padding``).  Valid geometries are remembered (errors are not), so repeated
    calls skip the checks.
    """
    key = None
    # Only ints, pairs of ints (and padding strings) are looked up: a bool or a float equal
    # to a valid int would find its geometry, yet must be rejected.
    if (type(x_shape) is tuple and (type(stride) is int or _is_int_pair(stride))
            and (type(padding) is int or _is_padding_key(padding, padding_forms))
            and (type(dilation) is int or _is_int_pair(dilation))):
        key = (x_shape, k, fh, fw, stride, padding, dilation, op, padding_forms)
        known = _known_geometries.get(key)
        if known is not None:
            return known
    geom = _check_geometry(x_shape, k, fh, fw, stride, padding, dilation, op, padding_forms)
    if key is not None:
        if len(_known_geometries) >= _KNOWN_GEOMETRIES_MAX:
            _known_geometries.clear()
        _known_geometries[key] = geom
    return geom


def _check_geometry(x_shape: tuple[int, ...], k: int, fh: int, fw: int,
                    stride: object, padding: object, dilation: object,
                    op: str, padding_forms: bool = False) -> ConvGeometry:
    sh, sw = as_pair("stride", stride, 1)
    dh, dw = as_pair("dilation", dilation, 1)
    if padding_forms:
        from numbaconv._padding import as_padding  # (it builds on this module)

        ph, ph_end, pw, pw_end = as_padding(padding, fh, fw, (sh, sw), (dh, dw))
    else:
        ph, pw = as_pair("padding", padding, 0)
        ph_end, pw_end = ph, pw
    n, c, h, w = map(int, x_shape)
    if fh < 1 or fw < 1:
        raise ValueError(f"kernel size must be positive, got ({fh} x {fw})")
    if c < 1 or h < 1 or w < 1:
        raise ValueError(
            f"Expected input's non-batch dimensions (C, H, W) to have positive length, "
            f"but got input of size: {[n, c, h, w]}")
    if k < 1:
        raise ValueError(f"weight must have at least one filter, got {k}")
    hp, wp = h + ph + ph_end, w + pw + pw_end
    eh, ew = dh * (fh - 1) + 1, dw * (fw - 1) + 1
    # Messages are built only on failure: this runs on every call, also on tiny ones.
    if max(hp, wp, eh, ew) >= MAX_SIZE:
        for label, size in ((f"padded input height (H + padding, padding {(ph, ph_end)})", hp),
                            (f"padded input width (W + padding, padding {(pw, pw_end)})", wp),
                            (f"dilated kernel height (dilation {dh})", eh),
                            (f"dilated kernel width (dilation {dw})", ew)):
            check_count(label, size)
    if eh > hp or ew > wp:
        raise ValueError(
            f"{op}: Calculated padded input size per channel: ({hp} x {wp}). "
            f"Kernel size (with dilation {dh, dw}): ({eh} x {ew}). "
            f"Kernel size can't be greater than actual input size")
    ho = (hp - eh) // sh + 1
    wo = (wp - ew) // sw + 1
    geom = ConvGeometry(n, c, h, w, k, fh, fw, sh, sw, ph, pw, dh, dw, ho, wo, ph_end, pw_end)
    # The largest offsets any kernel forms: column buffers, outputs and inputs.
    counts = (("column matrix size (C*fh*fw * Ho*Wo * N)", geom.rows * geom.positions * max(n, 1)),
              ("output size (N*K*Ho*Wo)", n * k * ho * wo),
              ("input size (N*C*H*W)", n * c * h * w))
    for label, count in counts:
        if count >= MAX_SIZE:
            check_count(label + f" for input {[n, c, h, w]}, kernel ({fh} x {fw}), stride "
                        f"{(sh, sw)}, padding {geom.pads}, dilation {(dh, dw)}", count)
    return geom
