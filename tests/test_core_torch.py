"""Cross-check forward and all gradients against PyTorch (skipped without torch)."""

from __future__ import annotations

import numpy as np
import pytest

import numbaconv
from numbaconv.reference import naive_conv2d_backward, naive_conv2d_forward

torch = pytest.importorskip("torch")

DTYPES = (np.float64, np.float32)
TAG = {np.dtype(np.float64): "f64", np.dtype(np.float32): "f32"}
TORCH_DTYPE = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}

# (N, C, H, W, K, fh, fw, stride, padding, dilation, bias)
CASES = [
    (2, 3, 7, 9, 4, 3, 3, 1, 1, 1, True),
    (2, 3, 8, 7, 2, 3, 2, 2, 0, 1, False),
    (1, 2, 9, 8, 3, 2, 3, (2, 1), (0, 2), (1, 2), True),
    (3, 1, 10, 7, 2, 3, 3, (1, 3), (2, 1), (2, 1), True),
    (2, 4, 6, 6, 5, 1, 1, 1, 0, 1, True),  # pointwise
    (1, 2, 5, 9, 2, 5, 4, 3, 2, 1, False),
    (2, 3, 14, 14, 4, 7, 7, 2, 3, 1, True),  # the ResNet stem geometry, shrunk
    (2, 2, 9, 11, 3, 3, 2, (3, 2), (1, 0), (2, 3), True),
]


def _pair_tag(v) -> str:
    h, w = (v, v) if isinstance(v, int) else v
    return f"{h}x{w}"


def _case_id(case) -> str:
    n, c, h, w, k, fh, fw, s, p, d, bias = case
    return (f"s{_pair_tag(s)}-p{_pair_tag(p)}-d{_pair_tag(d)}-k{fh}x{fw}-N{n}C{c}K{k}-{h}x{w}"
            f"-{'bias' if bias else 'nobias'}")


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: TAG[np.dtype(d)])
def test_matches_torch_conv2d(case, dtype, rng, assert_close):
    n, c, h, w_, k, fh, fw, stride, padding, dilation, with_bias = case
    x = rng.standard_normal((n, c, h, w_)).astype(dtype)
    w = rng.standard_normal((k, c, fh, fw)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype) if with_bias else None

    out, cache = numbaconv.conv2d_forward(x, w, b, stride, padding, dilation)
    r = rng.standard_normal(out.shape).astype(dtype)  # loss = sum(out * r): dout = r
    dx, dw, db = numbaconv.conv2d_backward(r, cache)

    # Torch in float64 is the oracle for both dtypes (run on the same rounded inputs).
    tx = torch.tensor(x.astype(np.float64), requires_grad=True)
    tw = torch.tensor(w.astype(np.float64), requires_grad=True)
    tb = torch.tensor(b.astype(np.float64), requires_grad=True) if with_bias else None
    tout = torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=padding,
                                      dilation=dilation)
    (tout * torch.tensor(r.astype(np.float64))).sum().backward()

    assert out.shape == tuple(tout.shape)
    assert_close(out, tout.detach().numpy(), dtype, "out")
    assert_close(dx, tx.grad.numpy(), dtype, "dx")
    assert_close(dw, tw.grad.numpy(), dtype, "dw")
    expected_db = tb.grad.numpy() if with_bias else r.astype(np.float64).sum(axis=(0, 2, 3))
    assert_close(db, expected_db, dtype, "db")

    # And torch in the same precision agrees too (float32 against float32 torch).
    tx32 = torch.tensor(x, requires_grad=True)
    tw32 = torch.tensor(w, requires_grad=True)
    tout32 = torch.nn.functional.conv2d(tx32, tw32, None if b is None else torch.tensor(b),
                                        stride=stride, padding=padding, dilation=dilation)
    (tout32 * torch.tensor(r)).sum().backward()
    assert tout32.dtype == TORCH_DTYPE[np.dtype(dtype)]
    assert_close(out, tout32.detach().numpy().astype(np.float64), dtype, "out vs torch same dtype")
    assert_close(dx, tx32.grad.numpy().astype(np.float64), dtype, "dx vs torch same dtype")
    assert_close(dw, tw32.grad.numpy().astype(np.float64), dtype, "dw vs torch same dtype")


def test_layer_matches_torch(rng):
    """numbaconv.Conv forward/backward against torch.nn.functional.conv2d."""
    layer = numbaconv.Conv((2, 9, 8), 3, 3, 2, (2, 1), (1, 0), dilation=(1, 2), rng=5)
    layer.b[...] = rng.standard_normal((3, 1))
    x = rng.standard_normal((2, 2, 9, 8))
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    dx, (dw, db) = layer.backward(dout)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(layer.W, requires_grad=True)
    tb = torch.tensor(layer.b.ravel(), requires_grad=True)
    tout = torch.nn.functional.conv2d(tx, tw, tb, stride=(2, 1), padding=(1, 0),
                                      dilation=(1, 2))
    (tout * torch.tensor(dout)).sum().backward()
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=0,
                               atol=1e-10 * np.abs(out).max())
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=0, atol=1e-10 * np.abs(dx).max())
    np.testing.assert_allclose(dw, tw.grad.numpy(), rtol=0, atol=1e-10 * np.abs(dw).max())
    np.testing.assert_allclose(db, tb.grad.numpy().reshape(3, 1), rtol=1e-12)


@pytest.mark.parametrize("case", CASES[:4], ids=[_case_id(c) for c in CASES[:4]])
def test_naive_oracle_matches_torch(case, rng):
    """Guard the oracle itself: the naive loops agree with torch in float64."""
    n, c, h, w_, k, fh, fw, stride, padding, dilation, with_bias = case
    x = rng.standard_normal((n, c, h, w_))
    w = rng.standard_normal((k, c, fh, fw))
    b = rng.standard_normal(k) if with_bias else None
    hp = dict(stride=stride, padding=padding, dilation=dilation)
    out = naive_conv2d_forward(x, w, b, **hp)
    r = rng.standard_normal(out.shape)
    dx, dw, db = naive_conv2d_backward(r, x, w, **hp)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tout = torch.nn.functional.conv2d(tx, tw, None if b is None else torch.tensor(b), **hp)
    (tout * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, tw.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, r.sum(axis=(0, 2, 3)), rtol=1e-12, atol=1e-12)
