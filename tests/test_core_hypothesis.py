"""Property test: random valid configurations agree with the naive float64 reference."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import numbaconv
from numbaconv.reference import naive_conv2d_backward, naive_conv2d_forward


@st.composite
def configurations(draw):
    cfg = {
        "n": draw(st.integers(0, 3)),
        "c": draw(st.integers(1, 3)),
        "h": draw(st.integers(1, 8)),
        "w": draw(st.integers(1, 8)),
        "k": draw(st.integers(1, 3)),
        "fh": draw(st.integers(1, 4)),
        "fw": draw(st.integers(1, 4)),
        "stride": (draw(st.integers(1, 4)), draw(st.integers(1, 4))),
        "padding": (draw(st.integers(0, 3)), draw(st.integers(0, 3))),
        "dilation": (draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        "dtype": draw(st.sampled_from([np.float64, np.float32])),
        "bias": draw(st.sampled_from(["none", "K", "K1"])),
        "workspace": draw(st.sampled_from([None, 1, 64, 4096])),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }
    assume(cfg["dilation"][0] * (cfg["fh"] - 1) + 1 <= cfg["h"] + 2 * cfg["padding"][0])
    assume(cfg["dilation"][1] * (cfg["fw"] - 1) + 1 <= cfg["w"] + 2 * cfg["padding"][1])
    return cfg


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(cfg=configurations())
def test_random_configurations_match_naive(cfg, assert_close):
    rng = np.random.default_rng(cfg["seed"])
    dtype = cfg["dtype"]
    n, c, h, w, k, fh, fw = (cfg[key] for key in ("n", "c", "h", "w", "k", "fh", "fw"))
    hp = {key: cfg[key] for key in ("stride", "padding", "dilation")}
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((k, c, fh, fw)).astype(dtype)
    b = None if cfg["bias"] == "none" else rng.standard_normal(k).astype(dtype)
    if cfg["bias"] == "K1":
        b = b.reshape(k, 1)

    out, cache = numbaconv.conv2d_forward(x, wt, b, workspace=cfg["workspace"], **hp)
    ho = (h + 2 * hp["padding"][0] - hp["dilation"][0] * (fh - 1) - 1) // hp["stride"][0] + 1
    wo = (w + 2 * hp["padding"][1] - hp["dilation"][1] * (fw - 1) - 1) // hp["stride"][1] + 1
    assert out.shape == (n, k, ho, wo)
    assert out.dtype == np.dtype(dtype) and out.flags.c_contiguous

    x64, w64 = x.astype(np.float64), wt.astype(np.float64)
    b64 = None if b is None else b.astype(np.float64).ravel()
    assert_close(out, naive_conv2d_forward(x64, w64, b64, **hp), dtype, "out")

    dout = rng.standard_normal(out.shape).astype(dtype)
    dx, dw, db = numbaconv.conv2d_backward(dout, cache)
    ref = naive_conv2d_backward(dout.astype(np.float64), x64, w64, **hp)
    for name, got, expected in zip(("dx", "dw", "db"), (dx, dw, db), ref, strict=True):
        assert got.dtype == np.dtype(dtype), name
        assert_close(got, expected, dtype, name)

    # The drop-in im2col agrees with the blocks used above, through the adjoint as well.
    cols = numbaconv.im2col_indices(x, fh, fw, hp["padding"], hp["stride"],
                                    dilation=hp["dilation"])
    assert cols.shape == (c * fh * fw, ho * wo * n)
    back = numbaconv.col2im_indices(cols, x.shape, fh, fw, hp["padding"], hp["stride"],
                                    dilation=hp["dilation"])
    lhs = float(np.sum(cols.astype(np.float64) ** 2))
    rhs = float(np.sum(x.astype(np.float64) * back.astype(np.float64)))
    tol = (1e-12 if np.dtype(dtype) == np.float64 else 1e-5) * max(lhs, 1e-300)
    assert abs(lhs - rhs) <= tol
