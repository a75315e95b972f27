"""PyTorch-style nn.Conv1d against torch.nn.Conv1d with the same weights: forward, dX, dW, db
in float64 (1e-10 relative) and float32; groups, padding forms and modes, bias-free layers,
unbatched input, initialisation, inference, training in Sequential, repr and bad
arguments."""

from __future__ import annotations

import math

import numpy as np
import pytest

import numbaconv
from numbaconv import BackwardBeforeForwardError, nn

torch = pytest.importorskip("torch")

from test_layers_conv import DTYPES, check_against  # noqa: E402

# (in, out, kernel_size, kwargs), input (N, L)
CONV1D = [
    ((3, 8, 3, {}), (2, 9)),
    ((4, 6, 3, {"stride": 2, "padding": 1, "dilation": 2, "groups": 2, "bias": False}), (2, 11)),
    ((4, 4, 3, {"padding": "same", "groups": 4, "padding_mode": "reflect"}), (2, 7)),
    ((2, 6, 4, {"padding": "same", "groups": 2, "padding_mode": "circular"}), (3, 8)),
    ((3, 5, (2,), {"padding": (2,), "padding_mode": "replicate"}), (2, 6)),
    ((2, 3, 1, {"padding": "valid", "stride": (3,)}), (1, 10)),
]


def _id(case) -> str:
    (c, k, f, kw), _ = case
    return f"{c}-{k}-{f}-" + "-".join(f"{a}={v}" for a, v in kw.items())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV1D, ids=[_id(c) for c in CONV1D])
def test_conv1d_matches_torch(case, dtype, assert_close):
    (c, k, f, kwargs), (n, length) = case
    layer = nn.Conv1d(c, k, f, **kwargs, dtype=dtype, rng=1)
    assert layer.weight.shape == (k, c // layer.groups, layer.kernel_size[0])
    x = np.random.default_rng(2).standard_normal((n, c, length)).astype(dtype)
    check_against(layer, x, assert_close)


class _Pad(torch.nn.Module):
    def __init__(self, pad: tuple[int, int], mode: str) -> None:
        super().__init__()
        self.pad, self.mode = pad, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pad(x, self.pad, mode=self.mode)


@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_conv1d_left_right_padding(mode, assert_close):
    layer = nn.Conv1d(2, 3, 3, padding=(2, 0), padding_mode=mode, dtype=np.float64, rng=3)
    plain = torch.nn.Conv1d(2, 3, 3, dtype=torch.float64)
    with torch.no_grad():
        plain.weight.copy_(torch.from_numpy(layer.weight))
        plain.bias.copy_(torch.from_numpy(layer.bias))
    module = torch.nn.Sequential(_Pad((2, 0), "constant" if mode == "zeros" else mode), plain)
    x = np.random.default_rng(4).standard_normal((2, 2, 6))
    out = check_against(layer, x, assert_close, module)
    assert out.shape == (2, 3, 6)
    assert "padding=(2, 0)" in repr(layer)


def test_conv1d_unbatched_and_bias_false(assert_close):
    layer = nn.Conv1d(3, 4, 3, padding=1, bias=False, dtype=np.float64, rng=5)
    x = np.random.default_rng(6).standard_normal((3, 7))
    out = check_against(layer, x, assert_close)
    assert out.shape == (4, 7) and layer.bias is None and len(layer.params) == 1
    dx, grads = layer.backward(np.ones(out.shape))
    assert dx.shape == (3, 7) and len(grads) == 1


def test_conv1d_init_and_train_false(monkeypatch):
    layer = nn.Conv1d(8, 16, 5, groups=2, dtype=np.float64, rng=0)
    bound = 1 / math.sqrt(8 // 2 * 5)
    twin = torch.nn.Conv1d(8, 16, 5, groups=2)
    assert torch.nn.init._calculate_fan_in_and_fan_out(twin.weight)[0] == 20
    assert bound * 0.95 < np.abs(layer.weight).max() <= bound
    assert np.abs(layer.bias).max() <= bound
    x = np.random.default_rng(1).standard_normal((2, 8, 12))
    out = layer(x)
    inferred = layer(x, train=False)
    assert np.array_equal(out, inferred) and layer._cache is None
    with pytest.raises(BackwardBeforeForwardError,
                       match="inference-only"):
        layer.backward(out)

    def refuse(*args, **kwargs):
        raise AssertionError("a training forward ran in inference")

    monkeypatch.setattr(numbaconv.nn.conv, "conv1d_forward", refuse)
    np.testing.assert_array_equal(layer.forward(x, train=False), out)


@pytest.mark.parametrize("make", [
    lambda m: m.Conv1d(3, 8, 3),
    lambda m: m.Conv1d(4, 8, 5, stride=2, padding=2, dilation=3, groups=2, bias=False,
                       padding_mode="circular"),
    lambda m: m.Conv1d(4, 8, 3, padding="same"),
])
def test_conv1d_repr_is_torchs(make):
    assert repr(make(nn)) == repr(make(torch.nn))


@pytest.mark.parametrize(("args", "kwargs", "exc", "pattern"), [
    ((3, 8, 3), {"groups": 2}, ValueError, "in_channels must be divisible by groups"),
    ((3, 8, (3, 3)), {}, ValueError, r"kernel_size must be an int or a 1-tuple"),
    ((3, 8, 3), {"stride": 0}, ValueError, "stride must be >= 1"),
    ((3, 8, 3), {"padding": (1, 2, 3)}, ValueError, r"or a pair \(left, right\)"),
    ((3, 8, 3), {"padding": "same", "stride": 2}, ValueError,
     "padding='same' is not supported for strided convolutions"),
    ((3, 8, 3), {"padding_mode": "edge"}, ValueError, "padding_mode must be one of"),
    ((3, 8, 2.0), {}, TypeError, "kernel_size must be an int"),
])
def test_conv1d_bad_arguments(args, kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        nn.Conv1d(*args, **kwargs)


def test_conv1d_bad_input():
    layer = nn.Conv1d(3, 8, 3, rng=0)
    with pytest.raises(ValueError, match=r"Expected 2D \(unbatched\) or 3D \(batched\) input"):
        layer(np.zeros((1, 3, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"to have 3 channels.*\(N, C, L\)"):
        layer(np.zeros((1, 2, 5), np.float32))


def test_conv1d_in_sequential_trains_with_sgd():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((12, 1, 16)).astype(np.float32)
    y = (x[:, 0, :8].sum(axis=1) > 0).astype(np.int64)
    model = nn.Sequential(nn.Conv1d(1, 3, 5, padding=2, rng=3), nn.ReLU(), nn.Flatten(),
                          nn.Dense(48, 2, dtype=np.float32, rng=0))
    loss = nn.SoftmaxCrossEntropy()
    opt = nn.SGD(model.params, lr=0.05, momentum=0.9)
    first = float(loss(model.forward(x), y)[0])
    for _ in range(30):
        value, _ = model.train_step(x, y, loss, opt)
    assert value < 0.5 * first
