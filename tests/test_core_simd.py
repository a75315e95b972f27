"""The vector moves of ``numbaconv._simd`` against NumPy slicing: every length from 0 to past
three vectors, at odd offsets, so that every block width and the overlapping blocks run, and
nothing outside the run is written."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from numbaconv._simd import add_vector, copy_run, join_pairs, multiply_add_vector, split_pairs

DTYPES = [pytest.param(np.float32, id="float32"), pytest.param(np.float64, id="float64")]
LENGTHS = range(40)


@njit(cache=False)
def _copy_run(dst, d_start, src, s_start, count):
    copy_run(dst, d_start, src, s_start, count)


@njit(cache=False)
def _split_pairs(dst, even, odd, src, s_start, pairs):
    split_pairs(dst, even, odd, src, s_start, pairs)


@njit(cache=False)
def _join_pairs(dst, d_start, src, even, odd, pairs):
    join_pairs(dst, d_start, src, even, odd, pairs)


@njit(cache=False)
def _accumulate(acc, a_start, g, g_start, x, x_start, products):
    if products:
        multiply_add_vector(acc, a_start, g, g_start, x, x_start)
    else:
        add_vector(acc, a_start, g, g_start)


def _expected_copy(dst, src, count):
    dst[3:3 + count] = src[7:7 + count]


def _expected_split(dst, src, pairs):
    dst[2:2 + pairs] = src[5:5 + 2 * pairs:2]
    dst[61:61 + pairs] = src[6:6 + 2 * pairs:2]


def _expected_join(dst, src, pairs):
    dst[3:3 + 2 * pairs:2] = src[1:1 + pairs]
    dst[4:4 + 2 * pairs:2] = src[150:150 + pairs]


RUNS = [
    pytest.param(lambda dst, src, n: _copy_run(dst, 3, src, 7, n), _expected_copy,
                 id="copy_run"),
    pytest.param(lambda dst, src, n: _split_pairs(dst, 2, 61, src, 5, n), _expected_split,
                 id="split_pairs"),
    pytest.param(lambda dst, src, n: _join_pairs(dst, 3, src, 1, 150, n), _expected_join,
                 id="join_pairs"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("run", "expected_run"), RUNS)
def test_runs_write_exactly_their_entries(dtype, run, expected_run):
    """copy_run copies a run; split_pairs writes a row's even and odd elements to two
    phases; join_pairs interleaves two phases back into a row."""
    src = np.arange(200, dtype=dtype) * 0.5 + 1
    src.flags.writeable = False  # read-only sources are allowed
    for count in LENGTHS:
        dst = np.full(130, -1, dtype=dtype)
        run(dst, src, count)
        expected = np.full(130, -1, dtype=dtype)
        expected_run(expected, src, count)
        assert np.array_equal(dst, expected), count


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("products", [True, False], ids=["multiply-add", "add"])
def test_vector_sums_round_as_scalar_code(dtype, products):
    """One vector of ``acc += g * x`` (or ``acc += g``): the product rounded, then the sum,
    bit for bit what NumPy's scalar operations give."""
    lanes = 32 // np.dtype(dtype).itemsize
    rng = np.random.default_rng(0)
    g, x = rng.standard_normal(50).astype(dtype), rng.standard_normal(50).astype(dtype)
    acc = rng.standard_normal(20).astype(dtype)
    expected = acc.copy()
    term = g[5:5 + lanes] * x[9:9 + lanes] if products else g[5:5 + lanes]
    expected[3:3 + lanes] += term
    _accumulate(acc, 3, g, 5, x, 9, products)
    assert np.array_equal(acc, expected)
