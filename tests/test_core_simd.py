"""The vector moves of ``numbaconv._simd`` against NumPy slicing."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from numbaconv._simd import copy_run, copy_vector


@njit(cache=False)
def _copy_run(dst, d_start, src, s_start, count):
    copy_run(dst, d_start, src, s_start, count)


@njit(cache=False)
def _copy_vector(src, s_start, dst, d_start):
    copy_vector(src, s_start, dst, d_start)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_copy_run_writes_exactly_the_run(dtype):
    """Every length from 0 to past three vectors, at odd offsets: the run is copied and
    nothing before or after it is written (the short forms overlap inside the run)."""
    src = np.arange(100, dtype=dtype)
    src.flags.writeable = False  # read-only sources are allowed
    for count in range(40):
        dst = np.full(100, -1, dtype=dtype)
        _copy_run(dst, 3, src, 7, count)
        expected = np.full(100, -1, dtype=dtype)
        expected[3:3 + count] = src[7:7 + count]
        assert np.array_equal(dst, expected), count


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_copy_vector_moves_one_vector(dtype):
    lanes = 32 // np.dtype(dtype).itemsize
    src = np.arange(20, dtype=dtype)
    dst = np.zeros(20, dtype=dtype)
    _copy_vector(src, 5, dst, 2)
    expected = np.zeros(20, dtype=dtype)
    expected[2:2 + lanes] = src[5:5 + lanes]
    assert np.array_equal(dst, expected)
