"""Results are bitwise identical for any Numba thread count (house rule).

Shapes are large enough that every parallel loop is split across the threads.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import pytest

import numbaconv
from numbaconv._validation import make_geometry
from numbaconv.functional import col2im_blocks, im2col_blocks

DTYPES = (np.float64, np.float32)
TAG = {np.dtype(np.float64): "f64", np.dtype(np.float32): "f32"}

# (stride, padding, dilation, fh, fw)
GEOMETRIES = [
    pytest.param(1, 1, 1, 3, 3, id="s1-p1-d1-k3x3"),
    pytest.param((2, 1), (0, 2), (1, 2), 3, 2, id="s2x1-p0x2-d1x2-k3x2"),
    pytest.param(3, 2, 2, 2, 3, id="s3-p2-d2-k2x3"),
    pytest.param(1, 0, 1, 1, 1, id="s1-p0-d1-k1x1"),
]


@contextlib.contextmanager
def numba_threads(count: int):
    previous = numba.get_num_threads()
    numba.set_num_threads(count)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def _run_all(x, w, b, dout, stride, padding, dilation, fh, fw):
    out, cache = numbaconv.conv2d_forward(x, w, b, stride, padding, dilation)
    dx, dw, db = numbaconv.conv2d_backward(dout, cache)
    out_ws, cache_ws = numbaconv.conv2d_forward(x, w, b, stride, padding, dilation, workspace=1)
    grads_ws = numbaconv.conv2d_backward(dout, cache_ws)
    cols = numbaconv.im2col_indices(x, fh, fw, padding, stride, dilation=dilation)
    back = numbaconv.col2im_indices(cols, x.shape, fh, fw, padding, stride, dilation=dilation)
    geom = make_geometry(x.shape, 1, fh, fw, stride, padding, dilation)
    blocks = np.array(im2col_blocks(x, geom))
    dblocks = np.empty_like(x)
    col2im_blocks(blocks, geom, dblocks)
    return [out, dx, dw, db, out_ws, *grads_ws, cols, back, blocks, dblocks]


def test_machine_has_several_threads():
    """The determinism tests are only meaningful with more than one thread available."""
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("only one Numba thread available")
    assert numba.config.NUMBA_NUM_THREADS >= 2


@pytest.mark.parametrize(("stride", "padding", "dilation", "fh", "fw"), GEOMETRIES)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: TAG[np.dtype(d)])
def test_bitwise_identical_across_thread_counts(stride, padding, dilation, fh, fw, dtype, rng):
    x = rng.standard_normal((4, 8, 17, 19)).astype(dtype)
    w = rng.standard_normal((6, 8, fh, fw)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    out_shape = numbaconv.conv2d_forward(x, w, b, stride, padding, dilation)[0].shape
    dout = rng.standard_normal(out_shape).astype(dtype)
    args = (x, w, b, dout, stride, padding, dilation, fh, fw)

    before = numba.get_num_threads()
    with numba_threads(1):
        single = _run_all(*args)
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before
    with numba_threads(numba.config.NUMBA_NUM_THREADS):
        multi = _run_all(*args)
    assert numba.get_num_threads() == before
    names = ["out", "dx", "dw", "db", "out_ws", "dx_ws", "dw_ws", "db_ws", "im2col",
             "col2im", "im2col_blocks", "col2im_blocks"]
    for name, a, m in zip(names, single, multi, strict=True):
        assert a.dtype == m.dtype == np.dtype(dtype), name
        assert np.array_equal(a, m), f"{name} differs between 1 and all threads"
    # Repeated runs are identical too (no hidden state, no races).
    again = _run_all(*args)
    for name, a, m in zip(names, multi, again, strict=True):
        assert np.array_equal(a, m), f"{name} differs between two identical runs"


def test_concurrent_calls_from_python_threads(rng):
    """Several Python threads calling the parallel kernels at once: same results, no crash."""
    x = rng.standard_normal((4, 8, 17, 19))
    w = rng.standard_normal((6, 8, 3, 3))
    dout = rng.standard_normal((4, 6, 9, 10))

    def work(_):
        out, cache = numbaconv.conv2d_forward(x, w, None, 2, 1)
        grads = numbaconv.conv2d_backward(dout, cache)
        cols = numbaconv.im2col_indices(x, 3, 3, 1, 2)
        return [out, *grads, cols, numbaconv.col2im_indices(cols, x.shape, 3, 3, 1, 2)]

    expected = work(None)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(work, range(8)))
    for result in results:
        for got, ref in zip(result, expected, strict=True):
            assert np.array_equal(got, ref)


@pytest.mark.parametrize("n", [1, 2, 3, 9], ids=lambda n: f"N{n}")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: TAG[np.dtype(d)])
def test_bitwise_identical_across_thread_counts_for_any_batch(n, dtype, rng):
    """Batches smaller than, equal to and larger than the thread count, with matrix products
    big enough that a multi-threaded BLAS would split them (OpenBLAS's results depend on its
    own thread count, so numbaconv must keep it fixed)."""
    x = rng.standard_normal((n, 32, 21, 23)).astype(dtype)
    w = rng.standard_normal((64, 32, 3, 3)).astype(dtype)
    dout = rng.standard_normal((n, 64, 21, 23)).astype(dtype)

    def run():
        out, cache = numbaconv.conv2d_forward(x, w, None, 1, 1)
        return [out, *numbaconv.conv2d_backward(dout, cache)]

    with numba_threads(1):
        single = run()
    with numba_threads(numba.config.NUMBA_NUM_THREADS):
        multi = run()
    for name, a, m in zip(["out", "dx", "dw", "db"], single, multi, strict=True):
        assert np.array_equal(a, m), f"{name} differs between 1 and all threads"
