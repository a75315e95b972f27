"""PyTorch-style layers nn.Conv2d and nn.ConvTranspose2d against torch.nn's modules with the
same weights (ours copied into torch's): forward, dX, dW, db in float64 (1e-10 relative) and
float32; bias-free layers, groups, padding forms and modes, unbatched input, the weight/bias
views of params, PyTorch's initialisation, repr and bad arguments.  (nn.Conv1d: see
test_layers_conv1d.py.)"""

from __future__ import annotations

import math

import numpy as np
import pytest

from numbaconv import nn

torch = pytest.importorskip("torch")

DTYPES = [pytest.param(np.float64, id="f64"), pytest.param(np.float32, id="f32")]


def torch_twin(layer: object) -> torch.nn.Module:
    """The torch.nn module with the same arguments, in float64, holding our weights."""
    common = {"stride": layer.stride, "dilation": layer.dilation, "groups": layer.groups,
              "bias": layer.bias is not None, "dtype": torch.float64}
    if isinstance(layer, nn.ConvTranspose2d):
        module = torch.nn.ConvTranspose2d(layer.in_channels, layer.out_channels,
                                          layer.kernel_size, padding=layer.padding,
                                          output_padding=layer.output_padding, **common)
    else:
        cls = torch.nn.Conv1d if isinstance(layer, nn.Conv1d) else torch.nn.Conv2d
        module = cls(layer.in_channels, layer.out_channels, layer.kernel_size,
                     padding=layer.padding, padding_mode=layer.padding_mode, **common)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(layer.weight.astype(np.float64)))
        if layer.bias is not None:
            module.bias.copy_(torch.from_numpy(layer.bias.astype(np.float64)))
    return module


def check_against(layer, x, assert_close, module=None, seed=0):
    """Forward and backward of ``layer`` against ``module`` (default: its torch twin)."""
    module = torch_twin(layer) if module is None else module
    out = layer.forward(x)
    dout = np.random.default_rng(seed).standard_normal(out.shape).astype(layer.dtype)
    dx, grads = layer.backward(dout)
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    ot = module(xt)
    ot.backward(torch.from_numpy(dout.astype(np.float64)))
    assert out.dtype == dx.dtype == layer.dtype
    assert_close(out, ot.detach().numpy(), layer.dtype, "out")
    assert_close(dx, xt.grad.numpy(), layer.dtype, "dX")
    assert [g.shape for g in grads] == [p.shape for p in layer.params]
    assert all(g.dtype == layer.dtype for g in grads)
    weight = module.weight if hasattr(module, "weight") else module[-1].weight
    assert_close(grads[0], weight.grad.numpy(), layer.dtype, "dW")
    if layer.bias is not None:
        bias = module.bias if hasattr(module, "bias") else module[-1].bias
        assert_close(grads[1], bias.grad.numpy(), layer.dtype, "db")
    return out


# (in, out, kernel_size, kwargs), input (N, H, W)
CONV2D = [
    ((3, 8, 3, {}), (2, 7, 7)),
    ((4, 6, (3, 2), {"stride": (2, 1), "padding": (1, 2), "dilation": (1, 2), "groups": 2,
                     "bias": False}), (2, 9, 8)),
    ((4, 4, 3, {"padding": "same", "groups": 4, "padding_mode": "reflect"}), (2, 6, 6)),
    ((3, 6, 3, {"stride": 2, "padding": 1, "groups": 3}), (3, 9, 7)),
    ((2, 6, 3, {"padding": 1, "groups": 2, "padding_mode": "circular"}), (2, 5, 6)),
    ((3, 5, (2, 4), {"padding": "same", "padding_mode": "replicate"}), (2, 6, 7)),
    ((2, 3, 3, {"padding": "valid", "stride": 2, "dilation": 2}), (1, 9, 9)),
    ((2, 4, 1, {"bias": False}), (2, 5, 4)),
]


def _id(case) -> str:
    (c, k, f, kw), _ = case
    return f"{c}-{k}-{f}-" + "-".join(f"{a}={v}" for a, v in kw.items())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV2D, ids=[_id(c) for c in CONV2D])
def test_conv2d_matches_torch(case, dtype, assert_close):
    (c, k, f, kwargs), (n, h, w) = case
    layer = nn.Conv2d(c, k, f, **kwargs, dtype=dtype, rng=1)
    x = np.random.default_rng(2).standard_normal((n, c, h, w)).astype(dtype)
    check_against(layer, x, assert_close)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_conv2d_asymmetric_padding_matches_torch_pad_then_conv(mode, assert_close):
    layer = nn.Conv2d(2, 3, 3, padding=((1, 0), (2, 1)), padding_mode=mode, groups=1,
                      dtype=np.float64, rng=3)
    twin = torch_twin(nn.Conv2d(2, 3, 3, dtype=np.float64, rng=3))
    torch_mode = "constant" if mode == "zeros" else mode
    module = torch.nn.Sequential(
        _Pad((2, 1, 1, 0), torch_mode), twin)  # F.pad takes (left, right, top, bottom)
    x = np.random.default_rng(4).standard_normal((2, 2, 5, 6))
    out = check_against(layer, x, assert_close, module)
    assert out.shape == (2, 3, 4, 7)


class _Pad(torch.nn.Module):
    def __init__(self, pad: tuple[int, ...], mode: str) -> None:
        super().__init__()
        self.pad, self.mode = pad, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pad(x, self.pad, mode=self.mode)


# (in, out, kernel_size, kwargs), input (N, H, W)
TRANSPOSED = [
    ((3, 4, 3, {}), (2, 5, 5)),
    ((4, 6, 3, {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2}), (2, 4, 5)),
    ((2, 3, (2, 3), {"stride": (2, 3), "padding": (0, 1), "output_padding": (1, 0),
                     "dilation": (1, 2), "bias": False}), (2, 3, 4)),
    ((4, 4, 4, {"stride": 2, "padding": 1, "groups": 4}), (1, 4, 4)),
    ((2, 2, 3, {"dilation": 2, "output_padding": 1}), (2, 3, 3)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", TRANSPOSED, ids=[_id(c) for c in TRANSPOSED])
def test_conv_transpose2d_matches_torch(case, dtype, assert_close):
    (c, k, f, kwargs), (n, h, w) = case
    layer = nn.ConvTranspose2d(c, k, f, **kwargs, dtype=dtype, rng=5)
    assert layer.weight.shape == (c, k // layer.groups, *layer.kernel_size)
    x = np.random.default_rng(6).standard_normal((n, c, h, w)).astype(dtype)
    check_against(layer, x, assert_close)


@pytest.mark.parametrize("cls", [nn.Conv2d, nn.ConvTranspose2d])
def test_unbatched_input_as_torch(cls, assert_close):
    layer = cls(3, 4, 3, stride=2, padding=1, dtype=np.float64, rng=7)
    x = np.random.default_rng(8).standard_normal((3, 6, 5))
    out = check_against(layer, x, assert_close)
    assert out.ndim == 3
    dx, _ = layer.backward(np.ones(out.shape))
    assert dx.shape == x.shape


def test_float64_input_into_float32_layer_is_converted():
    layer = nn.Conv2d(2, 3, 3, rng=0)
    assert layer.dtype == np.float32 and layer.weight.dtype == np.float32
    out = layer(np.ones((1, 2, 4, 4)))
    assert out.dtype == np.float32
    dx, grads = layer.backward(np.ones(out.shape))
    assert dx.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)


@pytest.mark.parametrize("cls", [nn.Conv2d, nn.ConvTranspose2d])
def test_bias_false_params_and_grads(cls):
    layer = cls(4, 6, 3, groups=2, bias=False, rng=0)
    assert layer.bias is None and layer.b is None
    assert len(layer.params) == 1 and layer.params[0] is layer.weight is layer.W
    out = layer(np.ones((2, 4, 5, 5), np.float32))
    dx, grads = layer.backward(np.ones(out.shape, np.float32))
    assert dx.shape == (2, 4, 5, 5) and len(grads) == 1
    assert grads[0].shape == layer.weight.shape
    layer.bias = None  # nothing to remove
    with pytest.raises(AttributeError, match="bias=False"):
        layer.bias = np.zeros(6, np.float32)


def test_weight_and_bias_stay_in_sync_with_params():
    layer = nn.Conv2d(2, 3, 3, rng=0)
    weight, bias = layer.params
    assert layer.weight is weight and layer.bias is bias and bias.shape == (3,)
    new = np.zeros((3, 2, 3, 3))  # float64: converted to the layer's float32
    layer.weight = new
    assert layer.params[0] is layer.weight and layer.weight.dtype == np.float32
    layer.params[1] = np.full(3, 2.0, np.float32)
    out = layer(np.ones((1, 2, 3, 3), np.float32))
    np.testing.assert_array_equal(out, np.full((1, 3, 1, 1), 2.0, np.float32))
    with pytest.raises(ValueError, match=r"weight must have shape \(3, 2, 3, 3\)"):
        layer.weight = np.zeros((3, 2, 2, 2))
    with pytest.raises(ValueError, match="cannot be removed"):
        layer.bias = None


def test_in_place_optimizer_updates_reach_forward():
    layer = nn.Conv2d(1, 1, 1, bias=True, rng=0)
    opt = nn.SGD(layer.params, lr=1.0)
    x = np.ones((1, 1, 2, 2), np.float32)
    before = layer(x).copy()
    _, grads = layer.backward(np.ones((1, 1, 2, 2), np.float32))
    opt.step(grads)
    assert not np.array_equal(layer(x), before)


# ---------------------------------------------------------------- initialisation


@pytest.mark.parametrize(("cls", "args", "kwargs"), [
    (nn.Conv2d, (16, 32, 3), {}),
    (nn.Conv2d, (16, 32, (3, 5)), {"groups": 4}),
    (nn.ConvTranspose2d, (16, 32, 3), {}),
    (nn.ConvTranspose2d, (12, 32, (2, 4)), {"groups": 4}),
])
def test_default_init_bounds_as_torch(cls, args, kwargs):
    layer = cls(*args, **kwargs, dtype=np.float64, rng=0)
    twin = getattr(torch.nn, cls.__name__)(*args, **kwargs)
    assert tuple(twin.weight.shape) == layer.weight.shape
    fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(twin.weight)
    bound = 1 / math.sqrt(fan_in)
    # torch's own draw lies within the bound it computes, and so does ours, filling it.
    assert float(twin.weight.detach().abs().max()) <= bound
    w, b = layer.weight, layer.bias
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert abs(w.mean()) < 0.1 * bound
    np.testing.assert_allclose(w.var(), bound**2 / 3, rtol=0.15)  # uniform's variance
    assert b.shape == (args[1],) and np.abs(b).max() <= bound and np.ptp(b) > 0


def test_transposed_fan_in_is_out_channels_per_group():
    layer = nn.ConvTranspose2d(64, 2, 3, dtype=np.float64, rng=0)  # fan_in = 2 * 9, not 64 * 9
    assert np.abs(layer.weight).max() > 0.9 / math.sqrt(18)


def test_rng_reproducibility():
    a, b = nn.Conv2d(3, 4, 3, rng=11), nn.Conv2d(3, 4, 3, rng=11)
    assert all(np.array_equal(p, q) for p, q in zip(a.params, b.params, strict=True))
    shared = np.random.default_rng(11)
    first, second = nn.Conv2d(3, 4, 3, rng=shared), nn.Conv2d(3, 4, 3, rng=shared)
    assert np.array_equal(first.weight, a.weight)  # an int seed is default_rng(seed)
    assert not np.array_equal(second.weight, first.weight)
    again = np.random.default_rng(11)
    assert np.array_equal(nn.Conv2d(3, 4, 3, rng=again).weight, a.weight)
    legacy = nn.Conv2d(3, 4, 3, rng=np.random.RandomState(0))
    assert np.array_equal(legacy.weight, nn.Conv2d(3, 4, 3, rng=np.random.RandomState(0)).weight)
    assert not np.array_equal(nn.Conv2d(3, 4, 3).weight, nn.Conv2d(3, 4, 3).weight)
    f32, f64 = nn.Conv2d(3, 4, 3, rng=1), nn.Conv2d(3, 4, 3, rng=1, dtype=np.float64)
    np.testing.assert_array_equal(f32.weight, f64.weight.astype(np.float32))


@pytest.mark.parametrize("rng", [True, "seed", 1.5, -1])
def test_bad_rng(rng):
    with pytest.raises((TypeError, ValueError), match="rng must be None, an int seed"):
        nn.Conv2d(1, 1, 1, rng=rng)


# ---------------------------------------------------------------- repr


@pytest.mark.parametrize("layer", [
    lambda m: m.Conv2d(3, 8, 3),
    lambda m: m.Conv2d(4, 8, (3, 5), stride=2, padding=(1, 2), dilation=2, groups=2,
                       bias=False, padding_mode="reflect"),
    lambda m: m.Conv2d(4, 8, 3, padding="same"),
    lambda m: m.ConvTranspose2d(4, 8, 4, stride=2, padding=1, output_padding=1, groups=4,
                                bias=False),
    lambda m: m.ConvTranspose2d(4, 8, 3, dilation=(1, 2)),
])
def test_repr_is_torchs(layer):
    assert repr(layer(nn)) == repr(layer(torch.nn))


def test_repr_names_a_non_default_dtype_and_pair_padding():
    assert repr(nn.Conv2d(1, 2, 3, dtype=np.float64)) == (
        "Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1), dtype=float64)")
    assert "padding=((1, 0), (0, 2))" in repr(nn.Conv2d(1, 2, 3, padding=((1, 0), (0, 2))))


# ---------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(("cls", "args", "kwargs", "exc", "pattern"), [
    (nn.Conv2d, (3, 8, 3), {"groups": 2}, ValueError, "in_channels must be divisible by groups"),
    (nn.Conv2d, (4, 6, 3), {"groups": 4}, ValueError, "out_channels must be divisible by groups"),
    (nn.ConvTranspose2d, (4, 6, 3), {"groups": 4}, ValueError,
     "out_channels must be divisible by groups"),
    (nn.Conv2d, (4, 4, 3), {"groups": 0}, ValueError, "groups must be a positive int"),
    (nn.Conv2d, (4, 4, 3), {"groups": 2.0}, TypeError, "groups must be a positive int"),
    (nn.Conv2d, (0, 4, 3), {}, ValueError, "in_channels must be a positive int, got 0"),
    (nn.Conv2d, (3.0, 4, 3), {}, TypeError, r"in_channels must be an int, got 3.0"),
    (nn.Conv2d, (3, 4, 0), {}, ValueError, "kernel_size must be >= 1"),
    (nn.Conv2d, (3, 4, (3, 3, 3)), {}, ValueError, "kernel_size must be an int or a pair"),
    (nn.Conv2d, (3, 4, 3), {"stride": 0}, ValueError, "stride must be >= 1"),
    (nn.Conv2d, (3, 4, 3), {"padding": -1}, ValueError, "padding must be non-negative"),
    (nn.Conv2d, (3, 4, 3), {"padding": "full"}, ValueError, "Invalid padding string 'full'"),
    (nn.Conv2d, (3, 4, 3), {"padding": "same", "stride": 2}, ValueError,
     "padding='same' is not supported for strided convolutions"),
    (nn.Conv2d, (3, 4, 3), {"padding_mode": "mirror"}, ValueError,
     "padding_mode must be one of .* but got padding_mode='mirror'"),
    (nn.Conv2d, (3, 4, 3), {"bias": "yes"}, TypeError, "bias must be a bool"),
    (nn.Conv2d, (3, 4, 3), {"dtype": np.int32}, TypeError, "dtype must be float32 or float64"),
    (nn.ConvTranspose2d, (3, 4, 3), {"stride": 2, "output_padding": 2}, ValueError,
     "output padding must be smaller than either stride or dilation"),
    (nn.ConvTranspose2d, (3, 4, 3), {"padding": "same"}, TypeError,
     "padding must be an int or a pair"),
])
def test_bad_arguments(cls, args, kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        cls(*args, **kwargs)


def test_bad_inputs_name_what_was_expected():
    layer = nn.Conv2d(3, 8, 3, rng=0)
    with pytest.raises(ValueError, match=r"expected input\[2, 4, 5, 5\] to have 3 channels"):
        layer(np.zeros((2, 4, 5, 5), np.float32))
    with pytest.raises(ValueError, match="channels-last"):
        layer(np.zeros((2, 5, 5, 3), np.float32))
    with pytest.raises(ValueError, match=r"Expected 3D \(unbatched\) or 4D \(batched\) input"):
        layer(np.zeros((5, 5), np.float32))
    with pytest.raises(TypeError, match="float32 or float64"):
        layer(np.zeros((1, 3, 5, 5), np.int64))
    with pytest.raises(TypeError, match="train must be a bool"):
        layer(np.zeros((1, 3, 5, 5), np.float32), train="no")
    with pytest.raises(ValueError, match="reflect padding must be smaller than the input"):
        nn.Conv2d(1, 1, 5, padding=2, padding_mode="reflect")(np.zeros((1, 1, 2, 2)))
    transposed = nn.ConvTranspose2d(4, 2, 3, rng=0)
    with pytest.raises(ValueError, match=r"Given transposed=1.*to have 4 channels"):
        transposed(np.zeros((1, 2, 3, 3), np.float32))
    with pytest.raises(ValueError, match="Output size is too small"):
        nn.ConvTranspose2d(1, 1, 1, padding=1)(np.zeros((1, 1, 1, 1), np.float32))
    layer(np.zeros((1, 3, 5, 5), np.float32))
    with pytest.raises(ValueError, match="shape of the forward output"):
        layer.backward(np.zeros((1, 8, 2, 2), np.float32))
