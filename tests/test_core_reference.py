"""conv2d_forward / conv2d_backward against the naive loop reference (float64 oracle).

The matrix covers every (stride, padding, dilation) combination below, each per axis; kernel
shape, batch/channel counts, image size and bias form are cycled with co-prime periods over
the combinations so that each value meets many geometries without a full product.  Each
geometry runs in both dtypes.  A second part checks the gradients by central differences.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numba
import numpy as np
import pytest

import numbaconv
from numbaconv.reference import (
    fancy_conv2d_backward,
    fancy_conv2d_forward,
    naive_conv2d_backward,
    naive_conv2d_forward,
)

DTYPES = (np.float64, np.float32)
TAG = {np.dtype(np.float64): "f64", np.dtype(np.float32): "f32"}

STRIDES = ((1, 1), (2, 2), (3, 3), (2, 1), (1, 3))
PADDINGS = ((0, 0), (1, 1), (2, 2), (0, 2), (1, 0))
DILATIONS = ((1, 1), (2, 2), (1, 2), (2, 1))
KERNELS = ((3, 3), (3, 2), (2, 3), (1, 3), (3, 1), (1, 1), (2, 2))
BATCH_CHANNELS = ((1, 1, 2), (2, 3, 3), (1, 3, 1), (3, 1, 2), (2, 2, 4))  # (N, C, K)
IMAGES = ((7, 9), (9, 6), (5, 8), (6, 5), (8, 8), (5, 11))  # (H, W), all >= 5
BIASES = ("none", "K", "K1")


@dataclass(frozen=True)
class Case:
    n: int
    c: int
    k: int
    h: int
    w: int
    fh: int
    fw: int
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    bias: str

    @property
    def id(self) -> str:
        s, p, d = self.stride, self.padding, self.dilation
        return (f"s{s[0]}x{s[1]}-p{p[0]}x{p[1]}-d{d[0]}x{d[1]}-k{self.fh}x{self.fw}-"
                f"N{self.n}C{self.c}K{self.k}-{self.h}x{self.w}-b{self.bias}")

    def hyper(self, pair: tuple[int, int]) -> int | tuple[int, int]:
        """Pass equal pairs as a plain int (the common call style), others as a tuple."""
        return pair[0] if pair[0] == pair[1] else pair

    @property
    def kwargs(self) -> dict[str, object]:
        return {"stride": self.hyper(self.stride), "padding": self.hyper(self.padding),
                "dilation": self.hyper(self.dilation)}


def _build_cases() -> list[Case]:
    cases = []
    kernel_cycle = itertools.cycle(KERNELS)
    nck_cycle = itertools.cycle(BATCH_CHANNELS)
    image_cycle = itertools.cycle(IMAGES)
    bias_cycle = itertools.cycle(BIASES)
    for stride, padding, dilation in itertools.product(STRIDES, PADDINGS, DILATIONS):
        (fh, fw), (n, c, k), (h, w) = next(kernel_cycle), next(nck_cycle), next(image_cycle)
        cases.append(Case(n, c, k, h, w, fh, fw, stride, padding, dilation, next(bias_cycle)))
    return cases


CASES = _build_cases()


def _floor_out(size: int, f: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (f - 1) - 1) // s + 1


def _case_seed(case: Case) -> int:
    return sum(ord(ch) * (i + 1) for i, ch in enumerate(case.id))


@functools.cache
def _data_and_oracle(case: Case):
    """float64 data and the naive float64 results for ``case`` (computed once per case)."""
    rng = np.random.default_rng(_case_seed(case))
    x = rng.standard_normal((case.n, case.c, case.h, case.w))
    w = rng.standard_normal((case.k, case.c, case.fh, case.fw))
    b = None if case.bias == "none" else rng.standard_normal(case.k)
    ho = _floor_out(case.h, case.fh, case.stride[0], case.padding[0], case.dilation[0])
    wo = _floor_out(case.w, case.fw, case.stride[1], case.padding[1], case.dilation[1])
    dout = rng.standard_normal((case.n, case.k, ho, wo))
    out = naive_conv2d_forward(x, w, b, case.stride, case.padding, case.dilation)
    dx, dw, db = naive_conv2d_backward(dout, x, w, case.stride, case.padding, case.dilation)
    return x, w, b, dout, (out, dx, dw, db)


def test_matrix_covers_every_value():
    """Guard the covering design: every listed value appears at least once."""
    assert {c.stride for c in CASES} == set(STRIDES)
    assert {c.padding for c in CASES} == set(PADDINGS)
    assert {c.dilation for c in CASES} == set(DILATIONS)
    assert {(c.fh, c.fw) for c in CASES} == set(KERNELS)
    assert {(c.n, c.c, c.k) for c in CASES} == set(BATCH_CHANNELS)
    assert {(c.h, c.w) for c in CASES} == set(IMAGES)
    assert {c.bias for c in CASES} == set(BIASES)
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: TAG[np.dtype(d)])
def test_forward_backward_match_naive(case: Case, dtype, assert_close):
    x64, w64, b64, dout64, (out_ref, dx_ref, dw_ref, db_ref) = _data_and_oracle(case)
    x, w, dout = x64.astype(dtype), w64.astype(dtype), dout64.astype(dtype)
    b = None
    if b64 is not None:
        b = b64.astype(dtype) if case.bias == "K" else b64.astype(dtype).reshape(case.k, 1)
    x_before, w_before = x.copy(), w.copy()

    out, cache = numbaconv.conv2d_forward(x, w, b, **case.kwargs)
    assert out.dtype == np.dtype(dtype)
    assert out.flags.c_contiguous
    assert out.shape == out_ref.shape == dout.shape  # dout shape: independent floor rule
    # The reference is computed from the float64 data; for float32 compare against the
    # float64 oracle evaluated on the float32-rounded inputs.
    if np.dtype(dtype) != np.float64:
        out_ref = naive_conv2d_forward(x.astype(np.float64), w.astype(np.float64),
                                       None if b is None else b.astype(np.float64),
                                       case.stride, case.padding, case.dilation)
        dx_ref, dw_ref, db_ref = naive_conv2d_backward(
            dout.astype(np.float64), x.astype(np.float64), w.astype(np.float64),
            case.stride, case.padding, case.dilation)
    assert_close(out, out_ref, dtype, "out")

    dout_before = dout.copy()
    dx, dw, db = numbaconv.conv2d_backward(dout, cache)
    for name, got, ref in (("dx", dx, dx_ref), ("dw", dw, dw_ref), ("db", db, db_ref)):
        assert got.dtype == np.dtype(dtype), name
        assert_close(got, ref, dtype, name)
    assert db.shape == (case.k,)
    # Inputs are never modified.
    assert np.array_equal(x, x_before)
    assert np.array_equal(w, w_before)
    assert np.array_equal(dout, dout_before)


def test_unreached_rows_and_columns_get_zero_gradient():
    """Floor rule: rows/cols the last window cannot reach are not visited, dX there is 0."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 2, 8, 9))
    w = rng.standard_normal((3, 2, 3, 3))
    out, cache = numbaconv.conv2d_forward(x, w, stride=(3, 2), padding=0)
    # Ho = (8 - 3) // 3 + 1 = 2 windows cover rows 0..5; Wo = (9 - 3) // 2 + 1 = 4 -> cols 0..8
    assert out.shape == (2, 3, 2, 4)
    dx, _, _ = numbaconv.conv2d_backward(rng.standard_normal(out.shape), cache)
    assert np.all(dx[:, :, 6:, :] == 0)
    assert np.all(dx[:, :, :6, :] != 0)


def test_padding_only_windows_equal_bias():
    """A 1x1 kernel with padding 2: the outer output ring only sees zero padding."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 2, 3, 4))
    w = rng.standard_normal((2, 2, 1, 1))
    b = np.array([0.5, -1.25])
    out, _ = numbaconv.conv2d_forward(x, w, b, padding=2)
    assert out.shape == (1, 2, 7, 8)
    ring = np.ones((7, 8), dtype=bool)
    ring[2:5, 2:6] = False
    assert np.array_equal(out[0][:, ring], np.broadcast_to(b[:, None], (2, ring.sum())))


# --------------------------------------------------------------------------------------------
# Finite differences (float64).  The loss sum(out * R) is linear in x, in w and in b, so
# central differences are exact up to rounding: the check can be tight.
# --------------------------------------------------------------------------------------------

FD_CASES = [
    pytest.param(dict(n=2, c=2, h=5, w=6, k=2, fh=3, fw=2, stride=1, padding=0, dilation=1),
                 id="s1-p0-d1-k3x2-N2C2K2-5x6"),
    pytest.param(dict(n=2, c=2, h=7, w=6, k=3, fh=3, fw=3, stride=2, padding=1, dilation=1),
                 id="s2-p1-d1-k3x3-N2C2K3-7x6"),
    pytest.param(dict(n=1, c=3, h=6, w=7, k=2, fh=2, fw=3, stride=(2, 1), padding=(0, 2),
                      dilation=(2, 1)), id="s2x1-p0x2-d2x1-k2x3-N1C3K2-6x7"),
    pytest.param(dict(n=2, c=1, h=7, w=7, k=2, fh=3, fw=2, stride=(1, 3), padding=2,
                      dilation=2), id="s1x3-p2-d2-k3x2-N2C1K2-7x7"),
]


@pytest.mark.parametrize("cfg", FD_CASES)
def test_gradients_match_central_differences(cfg, numerical_grad):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((cfg["n"], cfg["c"], cfg["h"], cfg["w"]))
    w = rng.standard_normal((cfg["k"], cfg["c"], cfg["fh"], cfg["fw"]))
    b = rng.standard_normal(cfg["k"])
    hp = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"])
    out, cache = numbaconv.conv2d_forward(x, w, b, **hp)
    weights = rng.standard_normal(out.shape)

    def loss() -> float:
        return float(np.sum(numbaconv.conv2d_forward(x, w, b, **hp)[0] * weights))

    dx, dw, db = numbaconv.conv2d_backward(weights, cache)
    step = 1e-3
    threads = numba.get_num_threads()
    for name, arr, analytic in (("dx", x, dx), ("dw", w, dw), ("db", b, db)):
        # Hundreds of tiny forward calls: one thread avoids the parallel-region start-up
        # cost on a busy machine (results are thread-count independent anyway).
        numba.set_num_threads(1)
        try:
            numeric = numerical_grad(loss, arr, step)
        finally:
            numba.set_num_threads(threads)
        scale = max(np.max(np.abs(numeric)), 1.0)
        err = np.max(np.abs(numeric - analytic))
        assert err <= 1e-8 * scale, f"{name}: max error {err:.3e} (scale {scale:.3e})"


@pytest.mark.parametrize(
    ("stride", "padding"),
    [pytest.param(1, 1, id="s1-p1"), pytest.param(2, 3, id="s2-p3"),
     pytest.param((2, 1), (0, 2), id="s2x1-p0x2")],
)
def test_fancy_reference_matches_naive(stride, padding):
    """The classic fancy-index baseline agrees with the naive oracle (floor rule included)."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 2, 9, 8))
    w = rng.standard_normal((4, 2, 3, 2))
    b = rng.standard_normal(4)
    out, cache = fancy_conv2d_forward(x, w, b, stride, padding)
    np.testing.assert_allclose(out, naive_conv2d_forward(x, w, b, stride, padding),
                               rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    for got, ref in zip(fancy_conv2d_backward(dout, cache),
                        naive_conv2d_backward(dout, x, w, stride, padding), strict=True):
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_hyperparameter_spellings_are_equivalent():
    """int, (h, w) tuple, [h, w] list, NumPy integers and int arrays all mean the same."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 2, 9, 8))
    w = rng.standard_normal((3, 2, 3, 2))
    expected, _ = numbaconv.conv2d_forward(x, w, stride=(2, 2), padding=(1, 1), dilation=(2, 2))
    for spell in (2, [2, 2], np.int64(2), (np.int32(2), np.int64(2)), np.array([2, 2])):
        pad = 1 if isinstance(spell, int) else [1, 1]
        got, _ = numbaconv.conv2d_forward(x, w, stride=spell, padding=pad, dilation=spell)
        assert np.array_equal(got, expected), repr(spell)
    pairs, _ = numbaconv.conv2d_forward(x, w, stride=(2, 1), padding=(0, 2), dilation=(1, 2))
    lists, _ = numbaconv.conv2d_forward(x, w, stride=[2, 1], padding=[0, 2], dilation=[1, 2])
    assert np.array_equal(pairs, lists)
    np.testing.assert_allclose(pairs, naive_conv2d_forward(x, w, None, (2, 1), (0, 2), (1, 2)),
                               rtol=1e-12, atol=1e-12)
