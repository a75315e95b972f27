"""The drop-ins take what classic code passes them, and give the classic answers.

Oracles: the classic fancy-index functions (``numbaconv.reference``: NumPy indexing and
``np.add.at``, which work on any real dtype) and, for float16 sums, the exact float64 sum.

* ``im2col_indices`` of every real dtype is bitwise equal to the classic version, on random
  bit patterns (NaN payloads, signalling NaNs, subnormals and extreme integers included);
* ``col2im_indices`` of integers sums exactly, wrapping around on overflow as the classic
  ``np.add.at`` does; float16 is summed in float32 and rounded once;
* sizes and hyperparameters may be NumPy integers or whole-number floats (``2.0``), and
  ``x_shape`` any sequence or 1-d array of 4 of them; anything else is a clear error.
"""

from __future__ import annotations

import numpy as np
import pytest

import numbaconv
from numbaconv import _validation, reference

INT_DTYPES = (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64)
FLOAT_DTYPES = (np.float16, np.float32, np.float64)
REAL_DTYPES = INT_DTYPES + FLOAT_DTYPES

# (x_shape, fh, fw, padding, stride): the paths of im2col_indices (small, a plane at a time
# with taps cut, pointwise, the whole-input copy for large planes) and of col2im_indices.
GEOMETRIES = [
    ((2, 3, 5, 6), 3, 3, 1, 1),
    ((9, 2, 7, 8), 3, 2, (1, 0), (2, 1)),  # 9 images: vector-block transposes and a tail
    ((3, 2, 6, 6), 1, 1, 0, 1),  # pointwise: the columns are x batch last
    ((2, 1, 9, 7), 5, 5, 2, 1),  # up to 25 entries summed into a pixel
    ((16, 4, 12, 12), 3, 3, 1, 2),  # large enough for the parallel drivers
]
LARGE_PLANE = ((1, 1, 600, 520), 3, 3, 1, 2)  # over 1 MiB a plane even as float32


def _geometry_id(case) -> str:
    (n, c, h, w), fh, fw, p, s = case
    return f"N{n}C{c}-{h}x{w}-k{fh}x{fw}-p{p}-s{s}".replace(" ", "")


def _random_bits(rng: np.random.Generator, shape: tuple[int, ...], dtype) -> np.ndarray:
    """Random bytes read as ``dtype``: every bit pattern is equally likely (floats: NaNs with
    any payload, infinities, subnormals; integers: the extremes)."""
    dt = np.dtype(dtype)
    raw = rng.integers(0, 256, size=int(np.prod(shape)) * dt.itemsize, dtype=np.uint8)
    return raw.view(dt).reshape(shape)


def _bits(a: np.ndarray) -> np.ndarray:
    return a.view(f"u{a.dtype.itemsize}")


def _assert_bitwise(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.dtype == expected.dtype, (got.dtype, expected.dtype)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    differ = np.flatnonzero(_bits(got) != _bits(expected))
    assert differ.size == 0, (
        f"{differ.size} entries differ, first at flat index {differ[0]}: "
        f"{got.reshape(-1)[differ[0]]!r} != {expected.reshape(-1)[differ[0]]!r}")


# --- im2col_indices: any real dtype, bitwise --------------------------------------------------

@pytest.mark.parametrize("case", GEOMETRIES, ids=_geometry_id)
@pytest.mark.parametrize("dtype", REAL_DTYPES, ids=lambda d: np.dtype(d).name)
def test_im2col_any_real_dtype_bitwise_equal_to_classic(case, dtype, rng):
    x_shape, fh, fw, padding, stride = case
    x = _random_bits(rng, x_shape, dtype)
    got = numbaconv.im2col_indices(x, fh, fw, padding, stride)
    _assert_bitwise(got, reference.im2col_indices(x, fh, fw, padding, stride))


@pytest.mark.parametrize("dtype", (np.uint8, np.float16, np.int32, np.int64),
                         ids=lambda d: np.dtype(d).name)
def test_im2col_large_planes_any_dtype(dtype, rng):
    x_shape, fh, fw, padding, stride = LARGE_PLANE
    x = _random_bits(rng, x_shape, dtype)
    got = numbaconv.im2col_indices(x, fh, fw, padding, stride)
    _assert_bitwise(got, reference.im2col_indices(x, fh, fw, padding, stride))


@pytest.mark.parametrize("layout", ["byte-swapped", "strided", "read-only", "list"])
@pytest.mark.parametrize("dtype", (np.int16, np.int32, np.uint64, np.float16),
                         ids=lambda d: np.dtype(d).name)
def test_im2col_other_dtypes_any_layout(layout, dtype, rng):
    base = _random_bits(rng, (3, 2, 7, 12), dtype)
    if layout == "byte-swapped":
        x = base.astype(base.dtype.newbyteorder())
    elif layout == "strided":
        x = base[:, :, :, ::2]
    elif layout == "read-only":
        x = base.copy()
        x.flags.writeable = False
    else:  # classic code may hand over nested lists of Python ints
        x = (base.astype(np.int64) if base.dtype.kind != "f" else base).tolist()
    expected = reference.im2col_indices(np.asarray(x), 3, 3, 1, 2)
    got = numbaconv.im2col_indices(x, 3, 3, 1, 2)
    # The values are the classic ones; the result is in native byte order.
    assert got.dtype == expected.dtype.newbyteorder("=")
    _assert_bitwise(got, expected.astype(got.dtype))


# --- col2im_indices: exact integer sums, float16 summed in float32 ----------------------------

@pytest.mark.parametrize("case", GEOMETRIES, ids=_geometry_id)
@pytest.mark.parametrize("dtype", INT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_col2im_integers_sum_like_classic_add_at(case, dtype, rng):
    """Full-range random integers: the sums overflow and wrap around, as in NumPy."""
    x_shape, fh, fw, padding, stride = case
    shape = reference.im2col_indices(np.zeros(x_shape), fh, fw, padding, stride).shape
    cols = _random_bits(rng, shape, dtype)
    got = numbaconv.col2im_indices(cols, x_shape, fh, fw, padding, stride)
    _assert_bitwise(got, reference.col2im_indices(cols, x_shape, fh, fw, padding, stride))


@pytest.mark.parametrize("dtype", INT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_col2im_integers_small_values_are_plain_sums(dtype, rng):
    """Values far from overflow: the exact sum, as computed by the float64 path."""
    x_shape, fh, fw, padding, stride = (2, 2, 7, 6), 3, 3, 1, 1
    x = rng.integers(0, 10, size=x_shape).astype(dtype)
    cols = numbaconv.im2col_indices(x, fh, fw, padding, stride)
    got = numbaconv.col2im_indices(cols, x_shape, fh, fw, padding, stride)
    expected = numbaconv.col2im_indices(cols.astype(np.float64), x_shape, fh, fw, padding,
                                        stride)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got.astype(np.float64), expected)


@pytest.mark.parametrize("case", GEOMETRIES, ids=_geometry_id)
def test_col2im_float16_is_summed_in_float32(case, rng):
    x_shape, fh, fw, padding, stride = case
    shape = reference.im2col_indices(np.zeros(x_shape), fh, fw, padding, stride).shape
    # Small integers: every sum is exact in float16 too, so the classic float16 np.add.at
    # gives the very same bits.
    small = rng.integers(-8, 9, size=shape).astype(np.float16)
    got = numbaconv.col2im_indices(small, x_shape, fh, fw, padding, stride)
    _assert_bitwise(got, reference.col2im_indices(small, x_shape, fh, fw, padding, stride))
    # Random values: the float32 sum rounded once, i.e. within half an ulp of float16 (plus
    # float32's rounding) of the exact float64 sum.
    cols = rng.standard_normal(shape).astype(np.float16)
    got = numbaconv.col2im_indices(cols, x_shape, fh, fw, padding, stride)
    exact = reference.col2im_indices(cols.astype(np.float64), x_shape, fh, fw, padding, stride)
    assert got.dtype == np.float16
    ulp = np.spacing(np.abs(exact).astype(np.float16)).astype(np.float64)
    err = np.abs(got.astype(np.float64) - exact)
    assert np.all(err <= 0.5 * ulp + 1e-6 * np.abs(exact) + 1e-7), float(np.max(err / ulp))


def test_col2im_float16_keeps_nan_and_inf():
    cols = np.zeros((9, 4), dtype=np.float16)
    cols[0, 0], cols[1, 1] = np.nan, np.inf
    got = numbaconv.col2im_indices(cols, (1, 1, 2, 2), 3, 3, 1, 1)
    expected = reference.col2im_indices(cols, (1, 1, 2, 2), 3, 3, 1, 1)
    np.testing.assert_array_equal(got, expected)  # NaN == NaN here, positions included


# --- dtypes that are refused ------------------------------------------------------------------

REFUSED = [
    ("complex64", np.complex64, r"complex64.*\.real and .*\.imag"),
    ("complex128", np.complex128, r"complex128"),
    ("bool", np.bool_, r"dtype bool.*astype\(np.uint8\)"),
    ("object", object, r"dtype object"),
    ("str", np.str_, r"dtype <U"),
    ("datetime", "datetime64[s]", r"datetime64"),
]
if np.dtype(np.longdouble).itemsize > 8:
    REFUSED.append(("longdouble", np.longdouble, r"float(96|128).*astype\(np.float64\)"))


@pytest.mark.parametrize(("dtype", "pattern"), [r[1:] for r in REFUSED],
                         ids=[r[0] for r in REFUSED])
def test_non_real_dtypes_are_refused_clearly(dtype, pattern):
    x = np.zeros((1, 1, 3, 3), dtype=dtype)
    cols = np.zeros((9, 9), dtype=dtype)
    with pytest.raises(TypeError, match=r"im2col_indices: x must be an array of a real numeric"
                                        r" dtype.*" + pattern):
        numbaconv.im2col_indices(x, 3, 3)
    with pytest.raises(TypeError, match=r"col2im_indices: cols must be an array of a real "
                                        r"numeric dtype.*"):
        numbaconv.col2im_indices(cols, (1, 1, 3, 3))


def test_non_arrays_are_refused_clearly():
    with pytest.raises(TypeError, match=r"x must be a NumPy array, got dict"):
        numbaconv.im2col_indices({}, 3, 3)


# --- hyperparameters as classic code computes them --------------------------------------------

ACCEPTED = [
    ("floats", (3.0, 3.0), {"padding": 1.0, "stride": 2.0}),
    ("numpy-ints", (np.int64(3), np.int32(3)), {"padding": np.int8(1), "stride": np.uint8(2)}),
    ("numpy-floats", (np.float32(3.0), np.float64(3.0)),
     {"padding": np.float16(1.0), "stride": np.float64(2.0)}),
    ("0d-arrays", (np.array(3), np.array(3.0)), {"padding": np.array(1), "stride": np.array(2.0)}),
    ("float-pairs", (3.0, 3), {"padding": (1.0, 1), "stride": [2.0, np.int64(2)]}),
    ("array-pairs", (3, 3), {"padding": np.array([1.0, 1.0]), "stride": np.array([2, 2])}),
    ("from-division", (6 / 2, 3), {"padding": (3 - 1) / 2, "stride": 4 / 2}),
]


@pytest.mark.parametrize(("fields", "kwargs"), [a[1:] for a in ACCEPTED],
                         ids=[a[0] for a in ACCEPTED])
def test_dropins_take_integral_floats_and_numpy_ints(fields, kwargs, rng):
    x = rng.standard_normal((2, 3, 7, 8))
    expected = numbaconv.im2col_indices(x, 3, 3, padding=1, stride=2)
    _assert_bitwise(numbaconv.im2col_indices(x, *fields, **kwargs), expected)
    back = numbaconv.col2im_indices(expected, x.shape, 3, 3, padding=1, stride=2)
    _assert_bitwise(numbaconv.col2im_indices(expected, x.shape, *fields, **kwargs), back)
    # Only ints reach the remembered geometries: floats are converted before the lookup.
    for key in _validation._known_geometries:
        assert not any(isinstance(v, (float, np.generic)) for v in _flat(key)), key


def _flat(value):
    if isinstance(value, tuple):
        for v in value:
            yield from _flat(v)
    else:
        yield value


def test_dropins_take_dilation_as_integral_float(rng):
    x = rng.standard_normal((2, 2, 9, 9))
    expected = numbaconv.im2col_indices(x, 3, 3, 1, 1, dilation=2)
    _assert_bitwise(numbaconv.im2col_indices(x, 3, 3, 1, 1, dilation=2.0), expected)
    _assert_bitwise(numbaconv.im2col_indices(x, 3, 3, 1, 1, dilation=(2.0, np.int64(2))),
                    expected)


REJECTED = [
    ("field-fraction", {"field_height": 1.5}, TypeError, r"field_height.*whole number.*1\.5"),
    ("field-nan", {"field_width": float("nan")}, TypeError, r"field_width.*nan"),
    ("field-inf", {"field_width": float("inf")}, TypeError, r"field_width.*inf"),
    ("field-bool", {"field_height": True}, TypeError, r"field_height.*True"),
    ("field-np-bool", {"field_height": np.True_}, TypeError, r"field_height.*True"),
    ("field-str", {"field_height": "3"}, TypeError, r"field_height.*'3'"),
    ("field-zero-float", {"field_height": 0.0}, ValueError, r"field_height.*positive.*0"),
    ("stride-fraction", {"stride": 1.5}, TypeError, r"stride.*1\.5"),
    ("stride-nan", {"stride": np.float64("nan")}, TypeError, r"stride.*nan"),
    ("stride-neg-inf", {"stride": -np.inf}, TypeError, r"stride.*-inf"),
    ("stride-bool", {"stride": True}, TypeError, r"stride.*True"),
    ("stride-zero-float", {"stride": 0.0}, ValueError, r"stride must be >= 1, got 0"),
    ("padding-fraction", {"padding": 0.5}, TypeError, r"padding.*0\.5"),
    ("padding-negative-float", {"padding": -1.0}, ValueError, r"padding.*non-negative.*-1"),
    ("padding-pair-fraction", {"padding": (1, 1.5)}, TypeError, r"padding.*\(1, 1\.5\)"),
    ("padding-pair-bool", {"padding": (1, False)}, TypeError, r"padding.*\(1, False\)"),
    ("padding-triple", {"padding": (1.0, 1.0, 1.0)}, ValueError, r"padding.*3 entries"),
    ("padding-2d-array", {"padding": np.ones((2, 2))}, ValueError, r"padding.*shape \(2, 2\)"),
    ("dilation-fraction", {"dilation": 2.5}, TypeError, r"dilation.*2\.5"),
]


@pytest.mark.parametrize(("kwargs", "exc", "pattern"), [r[1:] for r in REJECTED],
                         ids=[r[0] for r in REJECTED])
@pytest.mark.parametrize("op", ["im2col", "col2im"])
def test_dropins_refuse_bad_hyperparameters_clearly(op, kwargs, exc, pattern):
    x = np.zeros((2, 3, 7, 8))
    args = {"field_height": 3, "field_width": 3, "padding": 1, "stride": 1, **kwargs}
    with pytest.raises(exc, match=pattern) as info:
        if op == "im2col":
            numbaconv.im2col_indices(x, **args)
        else:
            numbaconv.col2im_indices(np.zeros((27, 112)), x.shape, **args)
    assert type(info.value) in (ValueError, TypeError)


def test_remembered_geometry_still_refuses_bools_and_fractions():
    x = np.zeros((2, 3, 7, 8))
    numbaconv.im2col_indices(x, 3, 3, 1, 1)  # remembered with stride = padding = 1
    for bad in (True, 1.5, (1, True)):
        with pytest.raises(TypeError, match="stride"):
            numbaconv.im2col_indices(x, 3, 3, 1, bad)


# --- x_shape as any sequence or 1-d array of 4 sizes ------------------------------------------

SHAPES = [
    ("tuple", (2, 3, 7, 8)),
    ("list", [2, 3, 7, 8]),
    ("x.shape", np.zeros((2, 3, 7, 8)).shape),
    ("int-array", np.array([2, 3, 7, 8])),
    ("uint8-array", np.array([2, 3, 7, 8], dtype=np.uint8)),
    ("float-array", np.array([2.0, 3.0, 7.0, 8.0])),
    ("numpy-scalars", (np.int64(2), np.int32(3), np.uint16(7), np.float32(8.0))),
    ("floats", (2.0, 3.0, 14 / 2, 8.0)),
]


@pytest.mark.parametrize("x_shape", [s[1] for s in SHAPES], ids=[s[0] for s in SHAPES])
def test_col2im_x_shape_any_sequence_of_4(x_shape, rng):
    cols = rng.standard_normal((27, 112))
    expected = numbaconv.col2im_indices(cols, (2, 3, 7, 8))
    got = numbaconv.col2im_indices(cols, x_shape)
    assert got.shape == (2, 3, 7, 8)
    _assert_bitwise(got, expected)


class _Sizes:
    """A user-defined sequence (not a tuple or list): four sizes."""

    def __init__(self, *sizes: int) -> None:
        self._sizes = sizes

    def __len__(self) -> int:
        return len(self._sizes)

    def __getitem__(self, i: int) -> int:
        return self._sizes[i]


def test_col2im_x_shape_user_sequence(rng):
    from collections.abc import Sequence

    Sequence.register(_Sizes)
    cols = rng.standard_normal((27, 112))
    _assert_bitwise(numbaconv.col2im_indices(cols, _Sizes(2, 3, 7, 8)),
                    numbaconv.col2im_indices(cols, (2, 3, 7, 8)))


BAD_SHAPES = [
    ("str", "abcd", ValueError, r"x_shape must be a sequence or 1-d array.*'abcd'"),
    ("bytes", b"abcd", ValueError, r"x_shape.*b'abcd'"),
    ("none", None, ValueError, r"x_shape.*None"),
    ("int", 4, ValueError, r"x_shape.*got 4"),
    ("generator", (s for s in (2, 3, 7, 8)), ValueError, r"x_shape.*generator"),
    ("set", {2, 3, 7, 8}, ValueError, r"x_shape"),
    ("three", (2, 3, 7), ValueError, r"x_shape.*\(2, 3, 7\) with 3 entries"),
    ("five-array", np.array([1, 2, 3, 7, 8]), ValueError, r"x_shape.*with 5 entries"),
    ("2d-array", np.array([[2, 3], [7, 8]]), ValueError, r"x_shape.*array of shape \(2, 2\)"),
    ("fraction", (2, 3, 7.5, 8), TypeError, r"x_shape.*7\.5"),
    ("nan", (2, 3, float("nan"), 8), TypeError, r"x_shape.*nan"),
    ("bool", (2, True, 7, 8), TypeError, r"x_shape.*True"),
    ("str-entry", (2, "3", 7, 8), TypeError, r"x_shape.*'3'"),
    ("negative-float", (2, 3, -7.0, 8), ValueError, r"x_shape.*negative.*-7\.0"),
    ("mismatch", [2, 3, 7, 9], ValueError, r"cols must have shape \(27, 126\)"),
]


@pytest.mark.parametrize(("x_shape", "exc", "pattern"), [b[1:] for b in BAD_SHAPES],
                         ids=[b[0] for b in BAD_SHAPES])
def test_col2im_bad_x_shape_is_refused_clearly(x_shape, exc, pattern):
    with pytest.raises(exc, match=pattern) as info:
        numbaconv.col2im_indices(np.zeros((27, 112)), x_shape)
    assert type(info.value) in (ValueError, TypeError)
