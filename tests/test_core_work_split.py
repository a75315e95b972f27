"""The work split at small batch sizes: lanes that are blocks of output rows of one image.

With fewer images than lanes, every image is cut into row blocks so that all threads have
work.  The blocks depend on the problem only, the weight-gradient parts are added in lane
order, and the input gradient is added in two waves (even blocks, then odd ones) in the same
order whoever runs the lanes: results must be bitwise identical for any thread count.  The
thread counts 1, 2, 3, 8 and 16 run in a subprocess started with ``NUMBA_NUM_THREADS=16``
(oversubscribed on a small machine, which is fine for correctness).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import numbaconv
from numbaconv import _filter_lanes, _lanes, _tiling, functional
from numbaconv.reference import naive_conv2d_backward, naive_conv2d_forward

# (N, C, H, W, K, kernel, stride, padding, dilation)
CASES = [
    pytest.param((1, 4, 17, 15, 6, 3, 1, 1, 1), id="b1-k3-s1-p1"),
    pytest.param((1, 3, 19, 16, 5, 5, 2, 2, 1), id="b1-k5-s2-p2"),
    pytest.param((2, 3, 16, 13, 4, 3, 1, 2, 2), id="b2-k3-s1-p2-d2"),
    pytest.param((3, 2, 14, 14, 3, 7, 2, 3, 1), id="b3-k7-s2-p3"),
    pytest.param((1, 5, 12, 12, 7, 1, 1, 0, 1), id="b1-pointwise"),
    pytest.param((1, 4, 9, 20, 3, 2, 3, 1, 1), id="b1-k2-s3-p1"),
]
# Few output positions and many filters: lanes of filters and of channels.
FILTER_CASES = [
    pytest.param((1, 8, 5, 5, 64, 3, 1, 1, 1), id="b1-k3-s1-p1-K64"),
    pytest.param((2, 6, 4, 4, 70, 1, 1, 0, 1), id="b2-pointwise-K70"),
    pytest.param((1, 5, 9, 9, 80, 3, 2, 1, 1), id="b1-k3-s2-p1-K80"),
    pytest.param((3, 7, 6, 5, 96, 2, 1, (1, 0), 2), id="b3-k2-s1-p1x0-d2-K96"),
    pytest.param((2, 9, 7, 7, 66, 1, 2, 0, 1), id="b2-k1-s2-K66"),
]


@pytest.fixture
def row_blocks(monkeypatch):
    """Lanes of very little work, so that small images are cut into many row blocks."""
    monkeypatch.setattr(_lanes, "SMALL_CALL", 0)
    monkeypatch.setattr(_lanes, "LANE_WORK", 1)
    monkeypatch.setattr(_tiling, "POSITIONS_PER_LANE", 1)
    monkeypatch.setattr(_tiling, "BACKWARD_POSITIONS_PER_LANE", 1)
    monkeypatch.setattr(_tiling, "WIDE_BELOW", 0)  # planes of the wide layout are not cut
    monkeypatch.setattr(_filter_lanes, "MIN_BLOCK_ROWS", 4)  # many blocks of a few filters


def _data(case, dtype, seed=0):
    n, c, h, w, k, f, _, _, _ = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((k, c, f, f)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    return x, wt, b


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "numpy"])
@pytest.mark.parametrize("case", CASES + FILTER_CASES)
def test_small_batch_lanes_match_the_naive_loops(row_blocks, monkeypatch, case, fused,
                                                 assert_close):
    monkeypatch.setattr(_tiling, "FUSED_LANES", fused)
    *_, s, p, d = case
    x, w, b = _data(case, np.float64)
    out, cache = numbaconv.conv2d_forward(x, w, b, s, p, d)
    if case[4] >= 64:
        assert cache.tiling.filters
    else:
        assert cache.tiling.split_rows
        assert len(functional.plan_lanes(cache.geometry, cache.tiling, True)) > x.shape[0]
    dout = np.random.default_rng(1).standard_normal(out.shape)
    dx, dw, db = numbaconv.conv2d_backward(dout, cache)
    assert_close(out, naive_conv2d_forward(x, w, b, s, p, d), np.float64, "out")
    assert np.array_equal(numbaconv.conv2d(x, w, b, s, p, d), out)
    for got, want, name in zip((dx, dw, db), naive_conv2d_backward(dout, x, w, s, p, d),
                               ("dx", "dw", "db"), strict=True):
        assert_close(got, want, np.float64, name)


_CHILD = textwrap.dedent("""
    import hashlib, json, sys
    import numba, numpy as np
    import numbaconv
    from numbaconv import _filter_lanes, _lanes, _tiling
    _lanes.SMALL_CALL, _lanes.LANE_WORK, _tiling.POSITIONS_PER_LANE = 0, 1, 1
    _tiling.BACKWARD_POSITIONS_PER_LANE = 1
    _tiling.WIDE_BELOW = 0
    _filter_lanes.MIN_BLOCK_ROWS = 4
    cases, dtype = json.loads(sys.argv[1]), np.dtype(sys.argv[2])
    digests = {}
    for threads in (1, 2, 3, 8, 16):
        numba.set_num_threads(threads)
        h = hashlib.sha256()
        for n, c, hh, ww, k, f, s, p, d in cases:
            rng = np.random.default_rng(0)
            x = rng.standard_normal((n, c, hh, ww)).astype(dtype)
            w = rng.standard_normal((k, c, f, f)).astype(dtype)
            b = rng.standard_normal(k).astype(dtype)
            out, cache = numbaconv.conv2d_forward(x, w, b, s, p, d)
            dout = rng.standard_normal(out.shape).astype(dtype)
            for a in (out, numbaconv.conv2d(x, w, b, s, p, d),
                      *numbaconv.conv2d_backward(dout, cache)):
                h.update(np.ascontiguousarray(a).tobytes())
        digests[threads] = h.hexdigest()
    print(json.dumps(digests))
""")


@pytest.mark.parametrize("dtype", ["float64", "float32"], ids=["f64", "f32"])
def test_bitwise_identical_for_1_2_3_8_16_threads(dtype):
    cases = [c.values[0] for c in CASES + FILTER_CASES]
    env = dict(os.environ, NUMBA_NUM_THREADS="16")
    run = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(cases), dtype], env=env,
                         capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    digests = json.loads(run.stdout.strip().splitlines()[-1])
    assert len(set(digests.values())) == 1, digests


_GROUPED_CHILD = textwrap.dedent("""
    import hashlib, json, sys
    import numba, numpy as np
    import numbaconv
    from numbaconv import _lanes, _tiling
    _lanes.SMALL_CALL, _lanes.LANE_WORK, _tiling.POSITIONS_PER_LANE = 0, 1, 1
    _tiling.BACKWARD_POSITIONS_PER_LANE = 1
    dtype = np.dtype(sys.argv[1])
    digests = {}
    for threads in (1, 2, 3, 8, 16):
        numba.set_num_threads(threads)
        h = hashlib.sha256()
        for n, c, k, groups, stride in ((1, 16, 32, 8, 1), (3, 32, 32, 16, 2)):
            rng = np.random.default_rng(0)
            x = rng.standard_normal((n, c, 11, 10)).astype(dtype)
            w = rng.standard_normal((k, c // groups, 3, 3)).astype(dtype)
            b = rng.standard_normal(k).astype(dtype)
            out, cache = numbaconv.conv2d_forward(x, w, b, stride, 1, 1, groups)
            dout = rng.standard_normal(out.shape).astype(dtype)
            for a in (out, numbaconv.conv2d(x, w, b, stride, 1, 1, groups),
                      *numbaconv.conv2d_backward(dout, cache)):
                h.update(np.ascontiguousarray(a).tobytes())
        digests[threads] = h.hexdigest()
    print(json.dumps(digests))
""")


@pytest.mark.parametrize("dtype", ["float64", "float32"], ids=["f64", "f32"])
def test_group_lanes_bitwise_identical_for_1_2_3_8_16_threads(dtype):
    """From 8 groups on the groups are the lanes, and each group's own lanes run inside
    them: the results must not depend on the thread count either."""
    env = dict(os.environ, NUMBA_NUM_THREADS="16")
    run = subprocess.run([sys.executable, "-c", _GROUPED_CHILD, dtype], env=env,
                         capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    digests = json.loads(run.stdout.strip().splitlines()[-1])
    assert len(set(digests.values())) == 1, digests


@pytest.mark.parametrize("groups", [8, 16], ids=["g8", "g16"])
def test_group_lanes_match_pytorch(row_blocks, groups, assert_close):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 32, 9, 8))
    w = rng.standard_normal((48, 32 // groups, 3, 3))
    b = rng.standard_normal(48)
    out, cache = numbaconv.conv2d_forward(x, w, b, 1, 1, 1, groups)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = numbaconv.conv2d_backward(dout, cache)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    expected = torch.nn.functional.conv2d(tx, tw, tb, 1, 1, 1, groups)
    expected.backward(torch.tensor(dout))
    assert_close(out, expected.detach().numpy(), np.float64, "out")
    assert_close(dx, tx.grad.numpy(), np.float64, "dx")
    assert_close(dw, tw.grad.numpy(), np.float64, "dw")
    assert_close(db, tb.grad.numpy(), np.float64, "db")


def test_deep_layers_at_small_batches_use_filter_lanes():
    """ResNet-50's 7x7x512 and 14x14x256 3x3 layers at batches 1 and 8."""
    for shape, k in (((1, 512, 7, 7), 512), ((8, 512, 7, 7), 512), ((1, 256, 14, 14), 256)):
        geom = functional.make_geometry(shape, k, 3, 3, 1, 1, 1)
        assert functional.plan_tiling(geom, 4, None).filters


def test_a_large_layer_at_batch_1_offers_more_lanes_than_64_threads():
    """VGG-16's conv1_2 and ResNet-50's layer1 3x3 at batch 1: more work items than a
    64-core machine has threads, forward and backward."""
    for shape, k, f in (((1, 64, 224, 224), 64, 3), ((1, 64, 56, 56), 64, 3)):
        geom = functional.make_geometry(shape, k, f, f, 1, 1, 1)
        tiling = functional.plan_tiling(geom, 4, None)
        assert tiling.split_rows
        for backward in (False, True):
            assert len(functional.plan_lanes(geom, tiling, backward)) > 64 or (
                geom.multiply_adds < 64 * 2 * _lanes.LANE_WORK)
