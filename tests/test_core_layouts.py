"""Both internal column layouts (per-image blocks and the wide chunk matrix) and every chunk
size give the naive reference's answer, and the same answer for any thread count."""

from __future__ import annotations

import numba
import numpy as np
import pytest

import numbaconv
from numbaconv import _tiling
from numbaconv.reference import naive_conv2d_backward, naive_conv2d_forward

TAG = {np.dtype(np.float64): "f64", np.dtype(np.float32): "f32"}

CASES = [
    pytest.param((3, 2, 9, 7), (4, 2, 3, 2), (2, 1), (1, 0), (1, 2), id="N3C2-9x7-k3x2-s2x1"),
    pytest.param((5, 3, 6, 6), (2, 3, 1, 1), 1, 0, 1, id="N5C3-6x6-pointwise"),
    pytest.param((9, 1, 8, 5), (3, 1, 2, 3), 1, 2, 2, id="N9C1-8x5-k2x3-p2-d2"),
]


@pytest.mark.parametrize("fused", [True, False], ids=["numba-lanes", "numpy-lanes"])
@pytest.mark.parametrize("wide_below", [0, 10**9], ids=["per-image", "wide"])
@pytest.mark.parametrize("workspace", [1, 300, None], ids=["ws1", "ws300", "wsdefault"])
@pytest.mark.parametrize(("x_shape", "w_shape", "stride", "padding", "dilation"), CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=lambda d: TAG[np.dtype(d)])
def test_layouts_match_naive(monkeypatch, rng, assert_close, fused, wide_below, workspace,
                             x_shape, w_shape, stride, padding, dilation, dtype):
    monkeypatch.setattr(_tiling, "WIDE_BELOW", wide_below)
    monkeypatch.setattr(_tiling, "FUSED_LANES", fused)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    out, cache = numbaconv.conv2d_forward(x.astype(dtype), w.astype(dtype), b.astype(dtype),
                                          stride, padding, dilation, workspace=workspace)
    dout = rng.standard_normal(out.shape)
    grads = numbaconv.conv2d_backward(dout.astype(dtype), cache)
    expected_out = naive_conv2d_forward(x, w, b, stride, padding, dilation)
    expected = naive_conv2d_backward(dout, x, w, stride, padding, dilation)
    assert_close(out, expected_out, dtype, "out")
    for name, got, want in zip(("dx", "dw", "db"), grads, expected, strict=True):
        assert_close(got, want, dtype, name)


@pytest.mark.parametrize("wide_below", [0, 10**9], ids=["per-image", "wide"])
def test_layouts_deterministic_across_threads(monkeypatch, rng, wide_below):
    monkeypatch.setattr(_tiling, "WIDE_BELOW", wide_below)
    x = rng.standard_normal((12, 16, 13, 11)).astype(np.float32)
    w = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    dout = rng.standard_normal((12, 32, 13, 11)).astype(np.float32)
    results = []
    previous = numba.get_num_threads()
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(threads)
        try:
            out, cache = numbaconv.conv2d_forward(x, w, None, 1, 1, workspace=20_000)
            results.append([out, *numbaconv.conv2d_backward(dout, cache)])
        finally:
            numba.set_num_threads(previous)
    for a, m in zip(*results, strict=True):
        assert np.array_equal(a, m)
