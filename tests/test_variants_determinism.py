"""Depthwise, grouped and mode-padded convolutions are bitwise identical for any Numba thread
count (1, 2 and 3, in a subprocess started with ``NUMBA_NUM_THREADS=3``: oversubscribed on a
small machine, which is fine for correctness), and the serial drivers of the depthwise and
padding kernels give the parallel drivers' results bit for bit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import numbaconv
from numbaconv import _depthwise, _grouped, _kernels

# (N, C, H, W, K, fh, fw, stride, padding, dilation, groups, mode): large enough that the
# parallel drivers run and split the work.
CASES = [
    (4, 24, 20, 21, 24, 3, 3, 1, 1, 1, 24, "zeros"),  # depthwise
    (3, 16, 23, 19, 32, 3, 3, 2, ((1, 0), (2, 1)), 1, 16, "reflect"),  # depthwise, m = 2
    (2, 70, 9, 9, 70, 5, 3, 1, "same", (1, 2), 70, "circular"),  # many channels per item
    (5, 3, 40, 33, 3, 3, 3, 1, 2, 1, 3, "replicate"),  # few channels, several chunks
    (8, 96, 7, 7, 96, 3, 3, 1, 1, 1, 96, "zeros"),  # small planes: chunks of channel blocks
    (2, 16, 17, 15, 24, 3, 3, 1, 1, 1, 4, "zeros"),  # grouped
    (3, 8, 19, 18, 8, 3, 2, (2, 1), (2, 3), 1, 2, "reflect"),  # grouped and padded
    (4, 8, 21, 20, 12, 3, 3, 1, ((0, 2), (3, 1)), 2, 1, "circular"),  # padded, groups 1
    (1, 256, 14, 14, 256, 3, 3, 1, 1, 1, 32, "zeros"),  # ResNeXt-like, one image: row lanes
    (3, 64, 12, 12, 64, 3, 3, 2, 1, 1, 32, "zeros"),  # 32 groups, strided
]

_CHILD = textwrap.dedent("""
    import hashlib, json, sys
    import numba
    import numpy as np
    import numbaconv

    cases, dtype = json.loads(sys.argv[1]), np.dtype(sys.argv[2])

    def hyper(v):
        return tuple(hyper(p) for p in v) if isinstance(v, list) else v

    def run_all():
        digest = hashlib.sha256()
        for n, c, h, w, k, fh, fw, s, p, d, g, mode in cases:
            rng = np.random.default_rng(0)
            x = rng.standard_normal((n, c, h, w)).astype(dtype)
            wt = rng.standard_normal((k, c // g, fh, fw)).astype(dtype)
            b = rng.standard_normal(k).astype(dtype)
            hp = dict(stride=hyper(s), padding=hyper(p), dilation=hyper(d), groups=g,
                      padding_mode=mode)
            out, cache = numbaconv.conv2d_forward(x, wt, b, **hp)
            dout = rng.standard_normal(out.shape).astype(dtype)
            grads = numbaconv.conv2d_backward(dout, cache)
            for a in (out, *grads, numbaconv.conv2d(x, wt, b, **hp)):
                digest.update(np.ascontiguousarray(a).tobytes())
            x1 = x.reshape(n, c, h * w)
            out1, cache1 = numbaconv.conv1d_forward(x1, wt[:, :, 0], b, 1, 2, 1, g,
                                                    padding_mode=mode)
            for a in (out1, *numbaconv.conv1d_backward(np.ones_like(out1), cache1)):
                digest.update(np.ascontiguousarray(a).tobytes())
        return digest.hexdigest()

    digests = {}
    for threads in (1, 2, 3):
        numba.set_num_threads(threads)
        digests[threads] = run_all()
    print(json.dumps(digests))
""")


@pytest.mark.parametrize("dtype", ["float64", "float32"], ids=["f64", "f32"])
def test_bitwise_identical_for_1_2_3_threads(dtype):
    env = dict(os.environ, NUMBA_NUM_THREADS="3")
    run = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(CASES), dtype], env=env,
                         capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    digests = json.loads(run.stdout.strip().splitlines()[-1])
    assert len(set(digests.values())) == 1, digests


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_serial_drivers_match_the_parallel_ones(dtype, monkeypatch, rng):
    x = rng.standard_normal((3, 12, 16, 15)).astype(dtype)
    w = rng.standard_normal((24, 1, 3, 3)).astype(dtype)
    wp = rng.standard_normal((5, 12, 3, 3)).astype(dtype)
    dout = rng.standard_normal((3, 24, 8, 8)).astype(dtype)
    doutp = rng.standard_normal((3, 5, 18, 17)).astype(dtype)

    def run():
        out, cache = numbaconv.conv2d_forward(x, w, None, 2, 1, 1, 12, padding_mode="reflect")
        outp, cachep = numbaconv.conv2d_forward(x, wp, None, 1, 2, padding_mode="replicate")
        return [out, *numbaconv.conv2d_backward(dout, cache), outp,
                *numbaconv.conv2d_backward(doutp, cachep)]

    parallel = run()
    monkeypatch.setattr(_depthwise, "SERIAL_BELOW", 1 << 62)
    monkeypatch.setattr(_kernels, "SERIAL_BELOW", 1 << 62)
    serial = run()
    for a, b in zip(parallel, serial, strict=True):
        assert np.array_equal(a, b)


GROUPED = [
    ((1, 256, 14, 14), (256, 8, 3, 3), 1, 1, 32),
    ((2, 128, 28, 28), (128, 4, 3, 3), 2, 1, 32),
    ((3, 48, 20, 20), (96, 12, 3, 3), 1, 1, 4),
    ((4, 64, 9, 9), (64, 8, 1, 1), 1, 0, 8),
    ((1, 32, 40, 40), (64, 8, 5, 5), 2, 2, 4),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("x_shape", "w_shape", "stride", "padding", "groups"), GROUPED,
                         ids=[f"g{c[4]}-{c[0][0]}x{c[0][1]}x{c[0][2]}-k{c[1][2]}-s{c[2]}"
                              for c in GROUPED])
def test_grouped_lanes_in_one_call_match_the_groups_one_by_one(
        x_shape, w_shape, stride, padding, groups, dtype, monkeypatch, rng, assert_close):
    """All groups' lanes in one parallel call give what the ungrouped pass run group by
    group gives (to rounding: the products are cut differently), forward, backward and for
    inference."""
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)

    def run():
        out, cache = numbaconv.conv2d_forward(x, w, b, stride, padding, groups=groups)
        grads = numbaconv.conv2d_backward(np.cos(out), cache)
        return (out, *grads, numbaconv.conv2d(x, w, b, stride, padding, groups=groups))

    assert _grouped._group_plan(
        numbaconv.conv2d_forward(x, w, b, stride, padding, groups=groups)[1].geometry,
        groups, x.itemsize, None) is not None  # the one-call path runs here
    one_call = run()
    monkeypatch.setattr(_grouped, "_group_plan", lambda *args: None)
    one_by_one = run()
    for name, got, expected in zip(("out", "dx", "dw", "db", "inference"), one_call,
                                   one_by_one, strict=True):
        assert_close(got, expected.astype(np.float64), dtype, name)
    assert np.array_equal(one_call[4], one_call[0])
