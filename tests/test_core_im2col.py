"""im2col / col2im: layout, adjointness and the classic drop-in functions.

* ``numbaconv.im2col_indices`` must be bitwise equal to the classic fancy-index version and to
  the layout formula of the spec; ``col2im_indices`` equal up to rounding.
* ``<im2col(x), cols> == <x, col2im(cols)>`` for the drop-ins (classic layout) and for the
  private per-image blocks used inside ``conv2d_forward``.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import numbaconv
from numbaconv import _classic_kernels, _kernels, indices, reference
from numbaconv._validation import make_geometry
from numbaconv.functional import col2im_blocks, im2col_blocks

DTYPES = (np.float64, np.float32)
TAG = {np.dtype(np.float64): "f64", np.dtype(np.float32): "f32"}


def _hp_id(x_shape, fh, fw, padding, stride, dilation=1) -> str:
    def pair(v):
        h, w = (v, v) if isinstance(v, int) else v
        return f"{h}x{w}"

    n, c, h, w = x_shape
    return (f"s{pair(stride)}-p{pair(padding)}-d{pair(dilation)}-k{fh}x{fw}-N{n}C{c}-{h}x{w}")


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def formula_cols(x: np.ndarray, fh: int, fw: int, padding, stride, dilation=1) -> np.ndarray:
    """The spec's classic layout, written out element by element (independent oracle).

    ``cols[(c*fh + a)*fw + b, (i*Wo + j)*N + n] = xpad[n, c, i*sh + a*dh, j*sw + b*dw]``
    """
    (ph, pw), (sh, sw), (dh, dw) = _pair(padding), _pair(stride), _pair(dilation)
    n_img, n_ch, h, w = x.shape
    ho = (h + 2 * ph - dh * (fh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (fw - 1) - 1) // sw + 1
    xpad = np.zeros((n_img, n_ch, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
    xpad[:, :, ph:ph + h, pw:pw + w] = x
    cols = np.empty((n_ch * fh * fw, ho * wo * n_img), dtype=x.dtype)
    for c in range(n_ch):
        for a in range(fh):
            for b in range(fw):
                r = (c * fh + a) * fw + b
                for i in range(ho):
                    for j in range(wo):
                        for n in range(n_img):
                            cols[r, (i * wo + j) * n_img + n] = xpad[
                                n, c, i * sh + a * dh, j * sw + b * dw]
    return cols


# (x_shape, fh, fw, padding, stride) for the classic drop-ins (no dilation in the classic API)
CLASSIC_CASES = [
    ((5, 3, 10, 10), 3, 3, 1, 1),  # the classic benchmark shape
    ((2, 3, 14, 14), 7, 7, 3, 2),  # stem 224x224 7x7 S2 P3 shrunk: (14+6-7)/2 not exact
    ((2, 2, 11, 8), 3, 3, 0, 2),  # (11-3)/2 exact, (8-3)/2 not
    ((1, 2, 9, 7), 3, 2, (0, 2), (3, 1)),  # per-axis pairs, kh != kw, H != W
    ((3, 1, 6, 9), 2, 3, (2, 1), (2, 3)),
    ((2, 4, 5, 5), 1, 1, 0, 1),  # pointwise
    ((2, 2, 4, 6), 5, 5, 2, 3),  # kernel larger than the unpadded image
    ((1, 1, 1, 1), 1, 1, 0, 1),
    ((4, 1, 3, 2), 3, 2, 1, (1, 2)),
    # Stride 1 and Wo == W: the blocks im2col copies a tap's rows in one run.
    ((2, 3, 4, 6), 5, 5, 2, 1),  # kernel taller than the image
    ((1, 2, 3, 5), 5, 3, (3, 1), 1),  # more output rows than input rows
    # Strided with Wo == ceil(W / sw), as downsample and stem, and with odd sizes.
    ((3, 2, 8, 8), 3, 3, 1, 2),  # downsample-like
    ((2, 2, 9, 9), 3, 3, 1, 2),  # odd sizes
    ((2, 2, 7, 9), 3, 3, 1, (2, 3)),
    # Batches of 8 or more: the batch-last copies move square blocks in vector registers
    # (8 float32 or 4 float64 a side), and the images and positions left over one by one.
    ((9, 2, 7, 6), 3, 3, 1, 1),
    ((17, 3, 5, 4), 1, 1, 0, 1),  # pointwise: the transposes alone
    ((8, 2, 9, 9), 3, 3, 1, 2),
    ((9, 2, 5, 19), 3, 3, 1, 2),  # stride 2: blocks of 8 pixels per phase, float32 too
]
CLASSIC_IDS = [_hp_id(s, fh, fw, p, st) for s, fh, fw, p, st in CLASSIC_CASES]

# The same plus dilation, for the adjoint identities.
DILATED_CASES = [case + (1,) for case in CLASSIC_CASES] + [
    ((2, 2, 9, 8), 3, 2, 1, 1, 2),
    ((1, 3, 8, 10), 2, 3, (0, 2), (2, 1), (3, 2)),
    ((3, 2, 7, 7), 3, 3, 2, (1, 3), (2, 1)),
    ((2, 2, 6, 6), 1, 1, 0, 1, 2),  # pointwise with dilation: still the pointwise path
    # Strides wider than the image: the drop-in keeps only the phases that hold pixels.
    ((2, 2, 3, 4), 2, 2, 1, (5, 9), 1),
    ((1, 2, 5, 5), 3, 3, 4, 7, (2, 1)),
]
DILATED_IDS = [_hp_id(s, fh, fw, p, st, d) for s, fh, fw, p, st, d in DILATED_CASES]


@pytest.mark.parametrize(("x_shape", "fh", "fw", "padding", "stride"), CLASSIC_CASES,
                         ids=CLASSIC_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: TAG[np.dtype(d)])
@pytest.mark.parametrize("plane_bytes", [1 << 20, 0], ids=["by-plane", "whole-input"])
def test_im2col_indices_bitwise_equal_to_classic(x_shape, fh, fw, padding, stride, dtype, rng,
                                                 plane_bytes, monkeypatch):
    """Both ways of moving the input batch last: a plane at a time (small planes) and the
    whole input at once (planes larger than ``indices._PLANE_BYTES``)."""
    monkeypatch.setattr(indices, "_PLANE_BYTES", plane_bytes)
    x = rng.standard_normal(x_shape).astype(dtype)
    got = numbaconv.im2col_indices(x, fh, fw, padding, stride)
    expected = reference.im2col_indices(x, fh, fw, padding, stride)
    assert got.dtype == np.dtype(dtype)
    assert got.shape == expected.shape
    assert np.array_equal(got, expected)
    assert np.array_equal(got, formula_cols(x, fh, fw, padding, stride))
    # keyword spelling gives the same thing
    kw = numbaconv.im2col_indices(x, field_height=fh, field_width=fw, padding=padding,
                                  stride=stride)
    assert np.array_equal(kw, got)


@pytest.mark.parametrize(("x_shape", "fh", "fw", "padding", "stride"), CLASSIC_CASES,
                         ids=CLASSIC_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: TAG[np.dtype(d)])
def test_col2im_indices_matches_classic(x_shape, fh, fw, padding, stride, dtype, rng,
                                        assert_close):
    x = np.zeros(x_shape, dtype=dtype)
    shape = reference.im2col_indices(x, fh, fw, padding, stride).shape
    cols = rng.standard_normal(shape).astype(dtype)
    got = numbaconv.col2im_indices(cols, x_shape, fh, fw, padding, stride)
    expected = reference.col2im_indices(cols, x_shape, fh, fw, padding, stride)
    assert got.dtype == np.dtype(dtype)
    assert got.shape == tuple(x_shape)
    if np.dtype(dtype) == np.float64:
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)
    else:
        # float32 sums in another order than np.add.at: compare with the exact float64 sums.
        exact = reference.col2im_indices(cols.astype(np.float64), x_shape, fh, fw, padding,
                                         stride)
        assert_close(got, exact, dtype, "col2im float32")
        assert_close(expected, exact, dtype, "reference col2im float32")


@pytest.mark.parametrize(("x_shape", "fh", "fw", "padding", "stride"), [
    pytest.param((64, 1, 3, 300), 3, 3, 1, 1, id="one-image-row-per-buffer"),
    pytest.param((3, 5, 37, 41), 3, 3, 1, 2, id="two-buffers-last-partial"),
])
def test_col2im_indices_parallel_blocks_match_serial_and_classic(x_shape, fh, fw, padding,
                                                                 stride, rng):
    """col2im_indices sums blocks of image rows in a buffer (``_classic_kernels._BUFFER_ELEMENTS``):
    the parallel driver, on sizes that take it, against the serial one (bit for bit) and
    the classic version."""
    x = np.zeros(x_shape)
    cols = rng.standard_normal(reference.im2col_indices(x, fh, fw, padding, stride).shape)
    assert cols.size >= _kernels.SERIAL_BELOW  # the parallel driver runs
    got = numbaconv.col2im_indices(cols, x_shape, fh, fw, padding, stride)
    geom = make_geometry(x_shape, 1, fh, fw, stride, padding, 1)
    serial = np.empty(x_shape)
    _classic_kernels.col2im_classic_serial(cols, *geom.kernel_args, serial)
    assert np.array_equal(got, serial)
    expected = reference.col2im_indices(cols, x_shape, fh, fw, padding, stride)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: TAG[np.dtype(d)])
def test_dropin_defaults_match_classic_signature(dtype, rng):
    """Defaults: padding=1, stride=1 for both; field 3x3 for col2im; positional order."""
    im_sig = inspect.signature(numbaconv.im2col_indices).parameters
    assert list(im_sig)[:5] == ["x", "field_height", "field_width", "padding", "stride"]
    assert im_sig["padding"].default == 1 and im_sig["stride"].default == 1
    col_sig = inspect.signature(numbaconv.col2im_indices).parameters
    assert list(col_sig)[:6] == ["cols", "x_shape", "field_height", "field_width", "padding",
                                 "stride"]
    assert (col_sig["field_height"].default, col_sig["field_width"].default) == (3, 3)
    assert col_sig["padding"].default == 1 and col_sig["stride"].default == 1

    x = rng.standard_normal((5, 3, 10, 10)).astype(dtype)
    cols = numbaconv.im2col_indices(x, 3, 3)
    assert cols.shape == (27, 500)
    assert np.array_equal(cols, reference.im2col_indices(x, 3, 3, 1, 1))
    back = numbaconv.col2im_indices(cols, x.shape)
    assert np.array_equal(back, numbaconv.col2im_indices(cols, x.shape, 3, 3, 1, 1))
    np.testing.assert_allclose(back, reference.col2im_indices(cols, x.shape),
                               rtol=1e-6 if dtype == np.float32 else 1e-13)
    # Positional padding comes before stride, as in the classic code.
    pos = numbaconv.im2col_indices(x, 3, 3, 2, 3)
    assert np.array_equal(pos, numbaconv.im2col_indices(x, 3, 3, padding=2, stride=3))
    assert pos.shape == (27, ((10 + 4 - 3) // 3 + 1) ** 2 * 5)


def test_col2im_of_im2col_counts_window_overlaps():
    """col2im(im2col(ones)) is the number of windows covering each pixel (exact integers)."""
    x = np.ones((2, 1, 6, 7))
    counts = numbaconv.col2im_indices(numbaconv.im2col_indices(x, 3, 3, 1, 1), x.shape)
    expected = np.zeros((6, 7))
    for i in range(6):
        for j in range(7):
            expected[max(i - 1, 0):i + 2, max(j - 1, 0):j + 2] += 1
    assert np.array_equal(counts[0, 0], expected)
    assert np.array_equal(counts[1, 0], expected)


@pytest.mark.parametrize(("x_shape", "fh", "fw", "padding", "stride", "dilation"),
                         DILATED_CASES, ids=DILATED_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: TAG[np.dtype(d)])
def test_dropin_dilation_matches_formula(x_shape, fh, fw, padding, stride, dilation, dtype,
                                         rng):
    x = rng.standard_normal(x_shape).astype(dtype)
    got = numbaconv.im2col_indices(x, fh, fw, padding, stride, dilation=dilation)
    assert np.array_equal(got, formula_cols(x, fh, fw, padding, stride, dilation))


def _check_adjoint(lhs: float, rhs: float, scale: float, dtype) -> None:
    tol = (1e-12 if np.dtype(dtype) == np.float64 else 1e-5) * max(scale, 1e-300)
    assert abs(lhs - rhs) <= tol, f"<im2col x, c> = {lhs!r} but <x, col2im c> = {rhs!r}"


@pytest.mark.parametrize(("x_shape", "fh", "fw", "padding", "stride", "dilation"),
                         DILATED_CASES, ids=DILATED_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: TAG[np.dtype(d)])
def test_adjoint_identity_classic_layout(x_shape, fh, fw, padding, stride, dilation, dtype,
                                         rng):
    x = rng.standard_normal(x_shape).astype(dtype)
    cx = numbaconv.im2col_indices(x, fh, fw, padding, stride, dilation=dilation)
    cols = rng.standard_normal(cx.shape).astype(dtype)
    back = numbaconv.col2im_indices(cols, x_shape, fh, fw, padding, stride, dilation=dilation)
    assert back.shape == tuple(x_shape) and back.dtype == np.dtype(dtype)
    lhs = float(np.sum(cx.astype(np.float64) * cols.astype(np.float64)))
    rhs = float(np.sum(x.astype(np.float64) * back.astype(np.float64)))
    scale = float(np.sum(np.abs(cx.astype(np.float64) * cols.astype(np.float64))))
    _check_adjoint(lhs, rhs, scale, dtype)


@pytest.mark.parametrize(("x_shape", "fh", "fw", "padding", "stride", "dilation"),
                         DILATED_CASES, ids=DILATED_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: TAG[np.dtype(d)])
def test_blocks_layout_and_adjoint(x_shape, fh, fw, padding, stride, dilation, dtype, rng):
    """Per-image blocks: cols[n, r, q] == classic cols[r, q*N + n]; col2im is the adjoint."""
    n = x_shape[0]
    x = rng.standard_normal(x_shape).astype(dtype)
    geom = make_geometry(x.shape, 1, fh, fw, stride, padding, dilation)
    blocks = np.array(im2col_blocks(x, geom))  # copy: the pointwise path returns a view of x
    assert blocks.shape == (n, geom.rows, geom.positions)
    classic = formula_cols(x, fh, fw, padding, stride, dilation)
    assert np.array_equal(blocks, classic.reshape(geom.rows, geom.positions, n)
                          .transpose(2, 0, 1))

    cols = rng.standard_normal(blocks.shape).astype(dtype)
    dx = np.full(x.shape, np.nan, dtype=dtype)  # col2im_blocks must overwrite, not add
    col2im_blocks(cols, geom, dx)
    assert np.all(np.isfinite(dx))
    lhs = float(np.sum(blocks.astype(np.float64) * cols.astype(np.float64)))
    rhs = float(np.sum(x.astype(np.float64) * dx.astype(np.float64)))
    scale = float(np.sum(np.abs(blocks.astype(np.float64) * cols.astype(np.float64))))
    _check_adjoint(lhs, rhs, scale, dtype)
    # And the blocks col2im equals the classic col2im of the same columns re-laid out.
    classic_cols = cols.transpose(1, 2, 0).reshape(geom.rows, geom.positions * n)
    via_classic = numbaconv.col2im_indices(classic_cols, x_shape, fh, fw, padding, stride,
                                           dilation=dilation)
    tol = 1e-13 if np.dtype(dtype) == np.float64 else 1e-5
    np.testing.assert_allclose(dx, via_classic, rtol=tol, atol=tol)


def test_reference_get_im2col_indices_shapes():
    """The classic index arrays: k (R, 1), i and j (R, Q)."""
    k, i, j = reference.get_im2col_indices((2, 3, 7, 6), 3, 2, padding=1, stride=2)
    ho, wo = (7 + 2 - 3) // 2 + 1, (6 + 2 - 2) // 2 + 1
    assert k.shape == (18, 1)
    assert i.shape == j.shape == (18, ho * wo)


def test_full_size_resnet_stem_dropins(rng):
    """The real 224x224, 7x7, S=2, P=3 stem (rejected by the classic code): 112x112 output."""
    x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
    cols = numbaconv.im2col_indices(x, 7, 7, 3, 2)
    assert cols.shape == (3 * 7 * 7, 112 * 112)
    assert np.array_equal(cols, reference.im2col_indices(x, 7, 7, 3, 2))
    dcols = rng.standard_normal(cols.shape).astype(np.float32)
    got = numbaconv.col2im_indices(dcols, x.shape, 7, 7, 3, 2)
    exact = reference.col2im_indices(dcols.astype(np.float64), x.shape, 7, 7, 3, 2)
    scale = np.abs(exact).max()
    assert np.abs(got - exact).max() <= 1e-5 * scale


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("sh", [1, 2, 3], ids=lambda s: f"sh{s}")
@pytest.mark.parametrize("sw", [1, 2, 3], ids=lambda s: f"sw{s}")
@pytest.mark.parametrize(("h", "w"), [(1, 1), (2, 7), (5, 6), (7, 32), (8, 3)],
                         ids=lambda v: str(v))
def test_split_by_stride_phase_and_merge_back(rng, dtype, sh, sw, h, w):
    """The phase split is NumPy's strided slicing, planes after ``first_plane`` only, and the
    merge puts every pixel back (odd widths: the even phase is one column longer)."""
    planes = 3
    x = rng.standard_normal((planes + 1, h, w)).astype(dtype)
    hp, wp = -(-h // sh), -(-w // sw)
    phases = np.full(planes * sh * sw * hp * wp, np.nan, dtype=dtype)
    _kernels.split_by_stride_phase(x.reshape(-1), 1, planes, h, w, sh, sw, phases)
    split = phases.reshape(planes, sh, sw, hp, wp)
    for k, py, px in np.ndindex(planes, sh, sw):
        expected = x[1 + k, py::sh, px::sw]
        assert np.array_equal(split[k, py, px, :expected.shape[0], :expected.shape[1]],
                              expected)
    merged = np.zeros_like(x)
    _kernels.merge_stride_phases(phases, 1, planes, h, w, sh, sw, merged.reshape(-1))
    assert np.array_equal(merged[1:], x[1:]) and not merged[0].any()



@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: TAG[np.dtype(d)])
@pytest.mark.parametrize("groups", [1, 2, 3, 12], ids=lambda g: f"groups{g}")
@pytest.mark.parametrize(("x_shape", "fh", "fw", "padding", "stride", "dilation"), [
    ((9, 1, 7, 17), 3, 3, 1, 1, 1),
    ((3, 2, 5, 6), 2, 3, (2, 0), 1, (2, 1)),
    ((16, 3, 4, 4), 5, 5, 2, 1, 1),  # a kernel larger than the image
    ((9, 2, 6, 19), 3, 3, 1, 2, 1),  # stride 2: vector blocks and leftovers
    ((4, 2, 7, 8), 3, 2, (1, 0), (3, 2), (1, 2)),
], ids=["N9C1-3x3", "N3C2-2x3-dil", "N16C3-5x5", "N9C2-3x3-s2", "N4C2-3x2-s3x2-dil"])
def test_im2col_by_plane_any_split_of_the_taps(rng, dtype, groups, x_shape, fh, fw, padding,
                                               stride, dilation):
    """im2col_indices works a plane at a time, each plane's taps cut into ``groups`` work
    items (more than the taps: some items write nothing): the parallel driver, whatever the
    cut, and the serial one give the spec's layout bit for bit."""
    x = rng.standard_normal(x_shape).astype(dtype)
    geom = make_geometry(x_shape, 1, fh, fw, stride, padding, dilation)
    expected = formula_cols(x, fh, fw, padding, stride, dilation)
    parallel = np.full(expected.shape, np.nan, dtype=dtype)
    _classic_kernels.im2col_classic(x, groups, *geom.kernel_args, parallel)
    assert np.array_equal(parallel, expected)
    serial = np.full(expected.shape, np.nan, dtype=dtype)
    _classic_kernels.im2col_classic_serial(x, *geom.kernel_args, serial)
    assert np.array_equal(serial, expected)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: TAG[np.dtype(d)])
@pytest.mark.parametrize(("sh", "sw"), [(2, 2), (3, 2), (2, 3)], ids=lambda s: f"s{s}")
@pytest.mark.parametrize("n_img", [1, 8, 9, 17], ids=lambda n: f"N{n}")
@pytest.mark.parametrize("w", [1, 15, 16, 33], ids=lambda w: f"W{w}")
def test_batch_last_phases_is_strided_slicing(rng, dtype, sh, sw, n_img, w):
    """The drop-in's batch-last phase split (for stride 2 partly in vector blocks) is NumPy's
    strided slicing moved batch last, with both drivers."""
    h, planes = 5, 2
    x = rng.standard_normal((n_img, planes, h, w)).astype(dtype)
    phases_h, phases_w, hp, wp = min(sh, h), min(sw, w), -(-h // sh), -(-w // sw)
    for driver in (_classic_kernels.batch_last_phases, _classic_kernels.batch_last_phases_serial):
        phases = np.full(_classic_kernels.phases_size(*x.shape, sh, sw), np.nan, dtype=dtype)
        driver(x, sh, sw, phases)
        split = phases.reshape(planes, phases_h, phases_w, hp, wp, n_img)
        for c, py, px in np.ndindex(planes, phases_h, phases_w):
            expected = x[:, c, py::sh, px::sw].transpose(1, 2, 0)
            rows, cols = expected.shape[:2]
            assert np.array_equal(split[c, py, px, :rows, :cols], expected)


# Bit patterns that a copy through float arithmetic could change: quiet NaNs of both signs
# and with a payload, signed zero, infinities, the smallest subnormal.
SPECIAL_BITS = {
    np.float32: np.array([0x7FC00000, 0xFFC00000, 0x7FC00123, 0x80000000, 0x7F800000,
                          0xFF800000, 0x00000001], dtype=np.uint32),
    np.float64: np.array([0x7FF8000000000000, 0xFFF8000000000000, 0x7FF8000000000123,
                          0x8000000000000000, 0x7FF0000000000000, 0xFFF0000000000000,
                          0x0000000000000001], dtype=np.uint64),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: TAG[np.dtype(d)])
@pytest.mark.parametrize("n_img", [1, 3, 4, 8, 9, 17, 33], ids=lambda n: f"N{n}")
@pytest.mark.parametrize("size", [1, 5, 8, 65, 300], ids=lambda m: f"M{m}")  # tiles of 256
def test_transpose_batch_moves_every_bit(rng, dtype, n_img, size):
    """The batch-last copy (square blocks in vector registers, the leftover images and
    positions one by one, over several tiles) is NumPy's transpose bit for bit, both ways,
    with both drivers."""
    x = rng.standard_normal((n_img, size)).astype(dtype)
    bits = SPECIAL_BITS[dtype]
    flat = x.view(bits.dtype).reshape(-1)
    count = min(bits.size, flat.size)
    flat[np.linspace(0, flat.size - 1, count).astype(int)] = bits[:count]
    for driver in (_classic_kernels.transpose_batch, _classic_kernels.transpose_batch_serial):
        last = np.full((size, n_img), np.nan, dtype=dtype)
        driver(x, last, True)
        assert np.array_equal(last.view(bits.dtype), x.T.view(bits.dtype))
        first = np.full((n_img, size), np.nan, dtype=dtype)
        driver(last, first, False)
        assert np.array_equal(first.view(bits.dtype), x.view(bits.dtype))
