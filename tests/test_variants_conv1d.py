"""``conv1d_forward`` / ``conv1d_backward`` / ``conv1d`` against PyTorch: every padding form
and mode, groups (depthwise too), strides and dilations, float64 tight and float32."""

from __future__ import annotations

import numpy as np
import pytest

import numbaconv

torch = pytest.importorskip("torch")
from test_variants_oracle import torch_conv  # noqa: E402  (after the torch skip)

DTYPES = (np.float64, np.float32)
TAG = {np.dtype(np.float64): "f64", np.dtype(np.float32): "f32"}

# (N, C, L, K, f, stride, padding, dilation, groups, mode, bias)
CASES = [
    (2, 3, 11, 4, 3, 1, 1, 1, 1, "zeros", True),
    (1, 2, 9, 3, 4, 2, (3, 0), 1, 1, "zeros", False),
    (3, 4, 10, 6, 3, 1, "same", 2, 2, "zeros", True),
    (2, 4, 12, 4, 2, 1, "same", 1, 4, "reflect", True),  # depthwise, even kernel
    (2, 3, 8, 6, 5, 3, (2, 4), 1, 3, "circular", False),  # depthwise, multiplier 2
    (1, 2, 7, 2, 3, 1, "valid", 3, 1, "replicate", True),
    (2, 6, 13, 9, 3, 2, 6, 1, 3, "replicate", True),  # padding beyond the length
    (1, 1, 6, 1, 2, 1, (5, 6), 1, 1, "circular", True),  # circular as long as the input
    (2, 5, 20, 5, 7, 1, (3,), (2,), 5, "reflect", False),  # 1-tuples, as PyTorch takes
]


def _case_id(case) -> str:
    n, c, length, k, f, s, p, d, g, mode, bias = case
    pad = p if isinstance(p, (int, str)) else "-".join(map(str, p))
    return (f"N{n}C{c}K{k}-L{length}-f{f}-s{s}-p{pad}-d{d}-g{g}-{mode}"
            f"{'' if bias else '-nobias'}").replace("(", "").replace(",)", "")


@pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel")
@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: TAG[np.dtype(d)])
def test_conv1d_matches_torch(case, dtype, rng, assert_close):
    n, c, length, k, f, stride, padding, dilation, groups, mode, with_bias = case
    x = rng.standard_normal((n, c, length)).astype(dtype)
    w = rng.standard_normal((k, c // groups, f)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype) if with_bias else None
    hp = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    out, cache = numbaconv.conv1d_forward(x, w, b, **hp, padding_mode=mode)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx, dw, db = numbaconv.conv1d_backward(dout, cache)

    if isinstance(padding, tuple) and len(padding) == 2:  # (left, right): through F.pad
        expected = _torch_asymmetric(x, w, b, dout, stride, padding, dilation, groups, mode)
    else:
        expected = torch_conv(x, w, b, dout, stride, padding, dilation, groups, mode)
    for name, got, want in zip(("out", "dx", "dw", "db"), (out, dx, dw, db), expected,
                               strict=True):
        assert got.dtype == np.dtype(dtype), name
        assert_close(got, want, dtype, name)
    assert np.array_equal(numbaconv.conv1d(x, w, b, **hp, padding_mode=mode), out)


def _torch_asymmetric(x, w, b, dout, stride, padding, dilation, groups, mode):
    """PyTorch's conv1d of ``x`` padded ``(left, right)`` by F.pad."""
    f = torch.nn.functional
    tx = torch.tensor(x.astype(np.float64), requires_grad=True)
    tw = torch.tensor(w.astype(np.float64), requires_grad=True)
    tb = None if b is None else torch.tensor(b.astype(np.float64), requires_grad=True)
    padded = f.pad(tx, padding, mode="constant" if mode == "zeros" else mode)
    out = f.conv1d(padded, tw, tb, stride, 0, dilation, groups)
    (out * torch.tensor(dout.astype(np.float64))).sum().backward()
    db = tb.grad.numpy() if b is not None else dout.astype(np.float64).sum(axis=(0, 2))
    return out.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(), db


def test_conv1d_is_conv2d_with_height_1(rng):
    """The same numbers as the 2-D functions on (N, C, 1, L), bit for bit."""
    x = rng.standard_normal((2, 4, 15))
    w = rng.standard_normal((6, 2, 3))
    out, cache = numbaconv.conv1d_forward(x, w, None, 2, (1, 2), 1, 2, padding_mode="reflect")
    out2, cache2 = numbaconv.conv2d_forward(x[:, :, None], w[:, :, None], None, (1, 2),
                                            ((0, 0), (1, 2)), 1, 2, padding_mode="reflect")
    assert np.array_equal(out, out2[:, :, 0])
    dout = rng.standard_normal(out.shape)
    for a, b in zip(numbaconv.conv1d_backward(dout, cache),
                    numbaconv.conv2d_backward(dout[:, :, None], cache2), strict=True):
        assert np.array_equal(a, b.reshape(a.shape))
