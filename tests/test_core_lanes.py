"""How a call is cut into lanes and tiles: every cut gives the naive reference's answer, and
the same bits for any thread count.

Real problems are cut into several lanes only when they are large (``_lanes.SMALL_CALL`` and
``_lanes.LANE_WORK`` multiply-adds); these tests lower both thresholds so that small problems
take the same paths: lanes of images spread over the thread pool, with tiles of whole images or
of output rows of one image inside each lane, each lane run as one Numba call (NumPy's
OpenBLAS) or as NumPy calls (any other BLAS).
"""

from __future__ import annotations

import threading

import numba
import numpy as np
import pytest

import numbaconv
from numbaconv import _backward, _lanes, _tiling, functional
from numbaconv import _scratch as scratch
from numbaconv.reference import naive_conv2d_backward, naive_conv2d_forward

TAG = {np.dtype(np.float64): "f64", np.dtype(np.float32): "f32"}

# (x shape, w shape, stride, padding, dilation, wide_below)
CASES = [
    pytest.param((1, 5, 9, 8), (4, 5, 3, 3), 1, 1, 1, 256, id="N1-3x3"),
    pytest.param((2, 3, 11, 7), (6, 3, 3, 2), (2, 1), (1, 0), (1, 2), 256, id="N2-s2x1-d1x2"),
    pytest.param((3, 4, 8, 8), (5, 4, 1, 1), 1, 0, 1, 256, id="N3-pointwise"),
    pytest.param((5, 4, 6, 6), (3, 4, 3, 3), 1, 1, 1, 10**9, id="N5-wide"),
    pytest.param((9, 2, 7, 9), (3, 2, 2, 3), 1, 2, 2, 256, id="N9-p2-d2"),
    pytest.param((2, 3, 6, 7), (4, 3, 5, 3), 1, (2, 1), 1, 256, id="N2-same-5x3"),
    pytest.param((3, 2, 9, 8), (3, 2, 3, 3), (2, 1), 1, 1, 256, id="N3-s2x1-same-width"),
    # Rows so long that col2im covers an image in several blocks of rows (_kernels._ROW_BLOCK)
    pytest.param((2, 2, 6, 300), (3, 2, 3, 3), 1, 1, 1, 256, id="N2-blocks-of-rows"),
]


@pytest.fixture
def many_lanes(monkeypatch):
    """Cut every call into as many lanes as there are images (up to ``LANES``)."""
    monkeypatch.setattr(_lanes, "SMALL_CALL", 0)
    monkeypatch.setattr(_lanes, "LANE_WORK", 1)


def naive_case(rng, x_shape, w_shape, stride, padding, dilation, dtype):
    """Seeded float64 x, w, b and dout, as ``dtype``, and the naive loops' out, dx, dw, db."""
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    expected_out = naive_conv2d_forward(x, w, b, stride, padding, dilation)
    dout = rng.standard_normal(expected_out.shape)
    expected = [expected_out, *naive_conv2d_backward(dout, x, w, stride, padding, dilation)]
    return [a.astype(dtype) for a in (x, w, b, dout)], expected


def run_conv(x, w, b, dout, stride, padding, dilation, workspace):
    out, cache = numbaconv.conv2d_forward(x, w, b, stride, padding, dilation,
                                          workspace=workspace)
    return [out, *numbaconv.conv2d_backward(dout, cache)]


@pytest.mark.parametrize("fused", [True, False], ids=["numba-lanes", "numpy-lanes"])
@pytest.mark.parametrize("workspace", [1, None], ids=["tiles-of-rows", "tiles-of-images"])
@pytest.mark.parametrize(("x_shape", "w_shape", "stride", "padding", "dilation", "wide_below"),
                         CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=lambda d: TAG[np.dtype(d)])
def test_lanes_match_naive_and_are_deterministic(many_lanes, monkeypatch, rng, assert_close,
                                                 fused, workspace, x_shape, w_shape, stride,
                                                 padding, dilation, wide_below, dtype):
    monkeypatch.setattr(_tiling, "WIDE_BELOW", wide_below)
    monkeypatch.setattr(_tiling, "FUSED_LANES", fused)
    args, expected = naive_case(rng, x_shape, w_shape, stride, padding, dilation, dtype)

    previous = numba.get_num_threads()
    results = []
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            results.append(run_conv(*args, stride, padding, dilation, workspace))
    finally:
        numba.set_num_threads(previous)

    for name, got, want in zip(("out", "dx", "dw", "db"), results[0], expected, strict=True):
        assert_close(got, want, dtype, name)
    for name, one, every in zip(("out", "dx", "dw", "db"), *results, strict=True):
        assert np.array_equal(one, every), f"{name} differs between 1 and all threads"


@pytest.mark.parametrize("transposed", [True, False], ids=["dw-transposed", "dw-k-rows"])
@pytest.mark.parametrize("workspace", [1, None], ids=["tiles-of-rows", "tiles-of-images"])
@pytest.mark.parametrize(("x_shape", "w_shape", "stride", "padding", "dilation", "wide_below"),
                         CASES)
def test_both_weight_gradient_layouts_match_naive(many_lanes, monkeypatch, rng, assert_close,
                                                  transposed, workspace, x_shape, w_shape,
                                                  stride, padding, dilation, wide_below):
    """The Numba lanes compute the weight gradient as (K, R + 1) or transposed, by dtype and
    layer (``_backward._dw_transposed``): both layouts, in float64, against the naive loops."""
    monkeypatch.setattr(_tiling, "WIDE_BELOW", wide_below)
    monkeypatch.setattr(_backward, "_dw_transposed", lambda dtype, tiling: transposed)
    args, expected = naive_case(rng, x_shape, w_shape, stride, padding, dilation, np.float64)
    got = run_conv(*args, stride, padding, dilation, workspace)
    for name, g, e in zip(("out", "dx", "dw", "db"), got, expected, strict=True):
        assert_close(g, e, np.float64, name)


class _PoisonedNumpy:
    """NumPy, except that ``empty`` and ``empty_like`` return arrays full of NaN (all bits
    set), as memory handed back by the allocator might be."""

    def __getattr__(self, name: str):
        return getattr(np, name)

    @staticmethod
    def empty(shape, dtype=float, **kwargs):
        return np.full(shape, 0xFF, dtype=np.uint8).view(dtype) if np.dtype(dtype).itemsize == 1 \
            else np.full(shape, np.nan, dtype=dtype)

    @staticmethod
    def empty_like(a, dtype=None, **kwargs):
        return np.full_like(a, np.nan, dtype=dtype)


@pytest.mark.parametrize("fused", [True, False], ids=["numba-lanes", "numpy-lanes"])
@pytest.mark.parametrize(("x_shape", "w_shape", "stride", "padding", "dilation", "wide_below"),
                         CASES)
def test_every_uninitialised_buffer_is_overwritten(many_lanes, monkeypatch, rng, assert_close,
                                                    fused, x_shape, w_shape, stride, padding,
                                                    dilation, wide_below):
    """Outputs, partial sums and scratch buffers come from ``np.empty``: with NaN in every one
    of them, the results still match the naive loops."""
    monkeypatch.setattr(_tiling, "WIDE_BELOW", wide_below)
    monkeypatch.setattr(_tiling, "FUSED_LANES", fused)
    monkeypatch.setattr(scratch, "_scratch", threading.local())  # fresh, poisoned buffers
    args, expected = naive_case(rng, x_shape, w_shape, stride, padding, dilation, np.float64)
    for module in (functional, _tiling, _backward, scratch):  # forward, shared, backward
        monkeypatch.setattr(module, "np", _PoisonedNumpy())
    got = run_conv(*args, stride, padding, dilation, None)
    for name, g, e in zip(("out", "dx", "dw", "db"), got, expected, strict=True):
        assert_close(g, e, np.float64, name)


# (x shape, w shape, stride, padding, dilation) with a column stride > 1
STRIDED_CASES = [
    # Wo == ceil(W / sw): a tap's rows are one run of a phase
    pytest.param((2, 3, 11, 13), (4, 3, 3, 3), (1, 2), (1, 2), (1, 2), id="s1x2-p1x2-d1x2"),
    pytest.param((2, 3, 20, 19), (4, 3, 7, 7), 2, 3, 1, id="stem-like"),
    pytest.param((3, 4, 8, 8), (5, 4, 3, 3), 2, 1, 1, id="downsample-like"),
    pytest.param((2, 3, 9, 8), (3, 3, 3, 3), (2, 1), 1, 1, id="s2x1-same-width"),
    # rows copied one by one
    pytest.param((3, 2, 15, 16), (3, 2, 5, 4), 3, (2, 3), 1, id="s3-5x4"),
    pytest.param((2, 2, 9, 9), (3, 2, 3, 3), 2, 0, 1, id="s2-valid"),
    pytest.param((1, 2, 6, 5), (2, 2, 3, 3), (2, 4), 2, (1, 3), id="s2x4-wide-padding"),
]


@pytest.mark.parametrize("wide_below", [10**9, 0], ids=["wide", "per-image"])
@pytest.mark.parametrize("workspace", [1, None], ids=["tiles-of-rows", "tiles-of-images"])
@pytest.mark.parametrize(("x_shape", "w_shape", "stride", "padding", "dilation"), STRIDED_CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=lambda d: TAG[np.dtype(d)])
def test_strided_im2col_by_stride_phase(many_lanes, monkeypatch, rng, assert_close, wide_below,
                                        workspace, x_shape, w_shape, stride, padding, dilation,
                                        dtype):
    """The Numba lanes' im2col and col2im through images split by stride phase give the same
    bits as the strided copies and adds; both match the naive loops."""
    monkeypatch.setattr(_tiling, "WIDE_BELOW", wide_below)
    args, expected = naive_case(rng, x_shape, w_shape, stride, padding, dilation, dtype)
    monkeypatch.setattr(_tiling, "PHASE_SPLIT_FROM", 0)  # split whenever strided
    results = []
    for split in (True, False):
        monkeypatch.setattr(_tiling, "STRIDE_PHASE_SPLIT", split)
        results.append(run_conv(*args, stride, padding, dilation, workspace))
    for name, got, want in zip(("out", "dx", "dw", "db"), results[0], expected, strict=True):
        assert_close(got, want, dtype, name)
    for name, split, strided in zip(("out", "dx", "dw", "db"), *results, strict=True):
        assert np.array_equal(split, strided), f"{name} differs with the phase split"


@pytest.mark.parametrize("fused", [True, False], ids=["numba-lanes", "numpy-lanes"])
@pytest.mark.parametrize("workspace", [1, None], ids=["tiles-of-rows", "tiles-of-images"])
@pytest.mark.parametrize("stride", [1, 2], ids=["kept-as-is", "kept-split-by-phase"])
def test_writing_into_x_after_forward_does_not_change_gradients(many_lanes, monkeypatch, rng,
                                                                assert_close, fused, workspace,
                                                                stride):
    """The forward pass keeps its own copy of the images (the Numba lanes make it inside the
    kernel, tile by tile, or keep the images split by stride phase), so a caller reusing its
    input buffer cannot change the gradients."""
    monkeypatch.setattr(_tiling, "FUSED_LANES", fused)
    x = rng.standard_normal((6, 3, 9, 9))
    w = rng.standard_normal((4, 3, 3, 3))
    dout = rng.standard_normal((6, 4, 9 // stride + 9 % stride, 9 // stride + 9 % stride))
    expected = naive_conv2d_backward(dout, x, w, stride, 1)
    _, cache = numbaconv.conv2d_forward(x, w, None, stride, 1, workspace=workspace)
    assert cache.phased == (fused and stride == 2)
    x[...] = np.nan  # e.g. a data loader refilling its batch buffer early
    got = numbaconv.conv2d_backward(dout, cache)
    for name, g, e in zip(("dx", "dw", "db"), got, expected, strict=True):
        assert_close(g, e, np.float64, name)


def test_input_kept_split_by_phase_needs_no_numba_lanes_setting(monkeypatch, rng, assert_close):
    """A cache holding the input split by stride phase is read by the Numba lanes even if they
    were switched off after the forward pass."""
    x = rng.standard_normal((2, 3, 8, 8))
    w = rng.standard_normal((4, 3, 3, 3))
    dout = rng.standard_normal((2, 4, 4, 4))
    _, cache = numbaconv.conv2d_forward(x, w, None, 2, 1)
    assert cache.phased and cache.x.ndim == 1
    monkeypatch.setattr(_tiling, "FUSED_LANES", False)
    got = numbaconv.conv2d_backward(dout, cache)
    expected = naive_conv2d_backward(dout, x, w, 2, 1)
    for name, g, e in zip(("dx", "dw", "db"), got, expected, strict=True):
        assert_close(g, e, np.float64, name)


def test_scratch_buffers_are_reused_across_calls_and_dtypes(rng, assert_close):
    """The per-thread column buffers are kept between calls, whatever the dtype."""
    x = rng.standard_normal((2, 3, 12, 12))
    w = rng.standard_normal((4, 3, 3, 3))
    expected = naive_conv2d_forward(x, w, None, 1, 1)
    for dtype in (np.float64, np.float32, np.float64):
        out, _ = numbaconv.conv2d_forward(x.astype(dtype), w.astype(dtype), None, 1, 1)
        assert_close(out, expected, dtype, "out")
    kept = scratch._scratch.cols
    numbaconv.conv2d_forward(x, w, None, 1, 1)
    assert scratch._scratch.cols is kept


def _images(bounds):
    """Image ranges of lanes of whole images (every lane covers all 5 output rows)."""
    assert all((i0, i1) == (0, 5) for _, _, i0, i1 in bounds)
    return [(n0, n1) for n0, n1, _, _ in bounds]


def test_lane_bounds_depend_on_the_problem_only(monkeypatch):
    monkeypatch.setattr(_lanes, "LANE_WORK", 10)
    monkeypatch.setattr(_lanes, "SMALL_CALL", 50)
    assert _images(_lanes.lane_bounds(8, 49, 5)) == [(0, 8)]  # a small call: one lane
    assert _images(_lanes.lane_bounds(8, 85, 5)) == [(n, n + 1) for n in range(8)]
    # 6 lanes' worth of work: 8 lanes, a multiple of LANE_MULTIPLE (4), for 12 images or 8
    assert _images(_lanes.lane_bounds(12, 60, 5)) == [(0, 1), (1, 3), (3, 4), (4, 6), (6, 7),
                                                      (7, 9), (9, 10), (10, 12)]
    assert _images(_lanes.lane_bounds(8, 60, 5)) == [(n, n + 1) for n in range(8)]
    # Without row blocks (min_rows = 0), no more lanes than images.
    assert _images(_lanes.lane_bounds(3, 60, 5)) == [(0, 1), (1, 2), (2, 3)]
    many = _images(_lanes.lane_bounds(1000, 10**9, 5))  # at most LANES lanes, each image once
    assert len(many) == _lanes.LANES
    assert [n0 for n0, _ in many[1:]] == [n1 for _, n1 in many[:-1]]
    assert many[0][0] == 0 and many[-1][1] == 1000
    assert _lanes.lane_bounds(0, 10**9, 5) == []
    assert _images(_lanes.lane_bounds(8, 10**9, 5, max_lanes=2)) == [(0, 4), (4, 8)]


@pytest.mark.parametrize("n, rows, min_rows", [(1, 56, 2), (1, 7, 3), (3, 20, 1), (2, 5, 5)],
                         ids=lambda v: str(v))
def test_row_blocks_cover_each_image_once(monkeypatch, n, rows, min_rows):
    """With fewer images than lanes, each image is cut into blocks of at least min_rows
    output rows that cover it once, in order."""
    monkeypatch.setattr(_lanes, "LANE_WORK", 10)
    monkeypatch.setattr(_lanes, "SMALL_CALL", 50)
    bounds = _lanes.lane_bounds(n, 10**6, rows, min_rows)
    assert len(bounds) > n or rows < 2 * min_rows
    for m in range(n):
        blocks = [(i0, i1) for n0, n1, i0, i1 in bounds if n0 == m]
        assert all(n1 == n0 + 1 for n0, n1, _, _ in bounds)
        assert blocks[0][0] == 0 and blocks[-1][1] == rows
        assert all(a[1] == b[0] for a, b in zip(blocks[:-1], blocks[1:], strict=True))
        assert all(i1 - i0 >= min_rows for i0, i1 in blocks)


def test_odd_row_blocks_alternate_within_each_image():
    bounds = [(0, 1, 0, 2), (0, 1, 2, 4), (0, 1, 4, 6), (1, 2, 0, 3), (1, 2, 3, 6)]
    assert _lanes._odd_row_blocks(bounds) == [False, True, False, False, True]
    assert _lanes._odd_row_blocks([(0, 4, 0, 6), (4, 8, 0, 6)]) == [False, False]
