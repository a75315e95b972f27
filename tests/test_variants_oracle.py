"""PyTorch as the oracle of the convolution variants, and the naive references checked
against it (so that they can serve as oracles too).

The helpers here (``torch_conv``, ``torch_conv_transpose``) are imported by the other
``test_variants_*`` modules.
"""

from __future__ import annotations

import numpy as np
import pytest

from numbaconv.reference import (
    naive_conv2d_backward,
    naive_conv2d_forward,
    naive_conv_transpose2d_backward,
    naive_conv_transpose2d_forward,
)

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _t(a: np.ndarray | None, grad: bool = True):
    if a is None:
        return None
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def _is_pair_of_pairs(padding) -> bool:
    return isinstance(padding, tuple) and any(isinstance(p, tuple) for p in padding)


def torch_conv(x, w, b, dout, stride=1, padding=0, dilation=1, groups=1, mode="zeros"):
    """``(out, dx, dw, db)`` of a 1-D or 2-D convolution by PyTorch in float64.

    Pairs of pairs go through ``F.pad`` (then no padding); other forms with a padding mode
    through ``nn.Conv1d`` / ``nn.Conv2d`` (so that PyTorch splits ``'same'`` itself)."""
    one_d = x.ndim == 3
    tx, tw, tb = _t(x), _t(w), _t(b)
    conv = F.conv1d if one_d else F.conv2d
    if _is_pair_of_pairs(padding):
        (top, bottom), (left, right) = padding
        padded = F.pad(tx, (left, right, top, bottom),
                       mode="constant" if mode == "zeros" else mode)
        out = conv(padded, tw, tb, stride, 0, dilation, groups)
    elif mode == "zeros":
        out = conv(tx, tw, tb, stride, padding, dilation, groups)
    else:
        layer_type = torch.nn.Conv1d if one_d else torch.nn.Conv2d
        layer = layer_type(x.shape[1], w.shape[0], w.shape[2:], stride, padding, dilation,
                           groups, bias=b is not None, padding_mode=mode, dtype=torch.float64)
        layer.weight = torch.nn.Parameter(tw)
        if b is not None:
            layer.bias = torch.nn.Parameter(tb)
        tw, tb = layer.weight, layer.bias
        out = layer(tx)
    (out * torch.tensor(np.asarray(dout, np.float64))).sum().backward()
    db = tb.grad.numpy() if b is not None else np.asarray(dout, np.float64).sum(
        axis=tuple(a for a in range(dout.ndim) if a != 1))
    return out.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(), db


def torch_conv_out_shape(x, w, stride=1, padding=0, dilation=1, groups=1, mode="zeros"):
    """The output shape PyTorch gives (a forward pass only)."""
    dout = None
    with torch.no_grad():
        tx, tw = torch.tensor(x), torch.tensor(w)
        if _is_pair_of_pairs(padding):
            (top, bottom), (left, right) = padding
            tx = F.pad(tx, (left, right, top, bottom))
            padding = 0
        conv = F.conv1d if x.ndim == 3 else F.conv2d
        dout = conv(tx, tw, None, stride, padding, dilation, groups)
    return tuple(dout.shape)


def torch_conv_transpose(x, w, b, dout, stride=1, padding=0, output_padding=0, groups=1,
                         dilation=1):
    """``(out, dx, dw, db)`` of ``F.conv_transpose2d`` in float64."""
    tx, tw, tb = _t(x), _t(w), _t(b)
    out = F.conv_transpose2d(tx, tw, tb, stride, padding, output_padding, groups, dilation)
    (out * torch.tensor(np.asarray(dout, np.float64))).sum().backward()
    db = tb.grad.numpy() if b is not None else np.asarray(dout, np.float64).sum(axis=(0, 2, 3))
    return out.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(), db


def transpose_out_shape(x, w, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    with torch.no_grad():
        return tuple(F.conv_transpose2d(torch.tensor(x), torch.tensor(w), None, stride, padding,
                                        output_padding, groups, dilation).shape)


# --- the naive references against PyTorch ------------------------------------------------

# (id, N, C, H, W, K, fh, fw, stride, padding, dilation, groups, mode, bias)
NAIVE_CASES = [
    ("groups2", 2, 4, 6, 7, 6, 3, 3, 1, 1, 1, 2, "zeros", True),
    ("depthwise-m2-s2", 1, 3, 7, 6, 6, 3, 3, 2, 1, 1, 3, "zeros", False),
    ("pair-of-pairs", 2, 2, 5, 6, 3, 3, 2, (1, 2), ((0, 2), (3, 1)), 1, 1, "zeros", True),
    ("same-even-kernel", 1, 2, 6, 5, 2, 4, 2, 1, "same", (1, 2), 1, "zeros", True),
    ("valid", 1, 2, 6, 5, 2, 3, 3, 1, "valid", 1, 1, "zeros", False),
    ("reflect-groups2", 2, 4, 5, 6, 4, 3, 3, 1, (2, 1), 1, 2, "reflect", True),
    ("replicate-asym", 1, 2, 4, 5, 3, 2, 3, (2, 1), ((3, 1), (0, 4)), 1, 1, "replicate", True),
    ("circular-full-wrap", 2, 1, 3, 4, 2, 3, 3, 1, (3, 4), (1, 2), 1, "circular", False),
    ("circular-same", 1, 2, 5, 5, 2, 3, 4, 1, "same", 1, 1, "circular", True),
    ("reflect-same-dilated", 1, 1, 6, 7, 1, 3, 3, 1, "same", 2, 1, "reflect", False),
]


@pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel")
@pytest.mark.parametrize("case", NAIVE_CASES, ids=[c[0] for c in NAIVE_CASES])
def test_naive_conv2d_matches_torch(case, rng):
    _, n, c, h, w_, k, fh, fw, stride, padding, dilation, groups, mode, with_bias = case
    x = rng.standard_normal((n, c, h, w_))
    w = rng.standard_normal((k, c // groups, fh, fw))
    b = rng.standard_normal(k) if with_bias else None
    hp = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    out = naive_conv2d_forward(x, w, b, **hp, padding_mode=mode)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = naive_conv2d_backward(dout, x, w, **hp, padding_mode=mode)
    expected = torch_conv(x, w, b, dout, **hp, mode=mode)
    for name, got, want in zip(("out", "dx", "dw", "db"), (out, dx, dw, db), expected,
                               strict=True):
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=name)


# (id, N, C_in, H, W, C_out, fh, fw, stride, padding, output_padding, groups, dilation, bias)
TRANSPOSE_CASES = [
    ("plain", 2, 3, 4, 5, 2, 3, 3, 1, 0, 0, 1, 1, True),
    ("s2-p1-op1", 1, 2, 4, 3, 3, 3, 3, 2, 1, 1, 1, 1, False),
    ("groups2-dilated", 2, 4, 3, 4, 6, 2, 3, (2, 1), (1, 0), (1, 0), 2, (1, 2), True),
    ("depthwise-s3", 1, 3, 3, 3, 3, 4, 2, 3, (2, 1), (2, 0), 3, 1, True),
    ("op-below-dilation", 1, 2, 3, 4, 2, 3, 3, 1, 1, (1, 1), 1, 2, False),
]


@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=[c[0] for c in TRANSPOSE_CASES])
def test_naive_conv_transpose2d_matches_torch(case, rng):
    _, n, c_in, h, w_, c_out, fh, fw, stride, padding, out_pad, groups, dilation, with_bias = case
    x = rng.standard_normal((n, c_in, h, w_))
    w = rng.standard_normal((c_in, c_out // groups, fh, fw))
    b = rng.standard_normal(c_out) if with_bias else None
    hp = dict(stride=stride, padding=padding, output_padding=out_pad, groups=groups,
              dilation=dilation)
    out = naive_conv_transpose2d_forward(x, w, b, **hp)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = naive_conv_transpose2d_backward(dout, x, w, **hp)
    expected = torch_conv_transpose(x, w, b, dout, **hp)
    for name, got, want in zip(("out", "dx", "dw", "db"), (out, dx, dw, db), expected,
                               strict=True):
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda x, w: naive_conv_transpose2d_forward(x, w, stride=2, output_padding=2),
     ValueError, r"output padding must be smaller than either stride or dilation"),
    (lambda x, w: naive_conv_transpose2d_forward(x, w, padding=5), ValueError,
     r"output size \(-\d+ x -\d+\).*must be positive"),
    (lambda x, w: naive_conv_transpose2d_forward(x, w[:1]), ValueError,
     r"weight of size \[1, 2, 3, 3\].*to have 1 channels, but got 2"),
    (lambda x, w: naive_conv_transpose2d_forward(x, w, groups=3), ValueError,
     r"groups=3.*divisible"),
    (lambda x, w: naive_conv2d_forward(x, w, groups=2), ValueError,
     r"Given groups=2, weight of size \[2, 2, 3, 3\].*to have 4 channels, but got 2"),
    (lambda x, w: naive_conv2d_forward(x, w, padding=3, padding_mode="reflect"), ValueError,
     r"reflect padding must be smaller"),
], ids=["output-padding", "output-size", "channels", "groups", "conv-groups", "reflect"])
def test_naive_references_reject_bad_input(call, error, match, rng):
    x = rng.standard_normal((1, 2, 3, 3))
    w = rng.standard_normal((2, 2, 3, 3))
    with pytest.raises(error, match=match):
        call(x, w)
