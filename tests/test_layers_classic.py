"""The classic layers' new arguments against PyTorch: ``Conv`` with groups, bias=False and
padding modes, and the classic-style ``ConvTranspose`` (forward, dX, dW, db in float64 to
1e-10 relative, and float32); their classic initialisation from NumPy's global generator,
repr and bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

import numbaconv
from numbaconv import Conv, ConvTranspose

torch = pytest.importorskip("torch")
F = torch.nn.functional

DTYPES = [pytest.param(np.float64, id="f64"), pytest.param(np.float32, id="f32")]


def _against_torch(layer, x, torch_forward, assert_close, seed=0):
    """``layer`` forward/backward against ``torch_forward(x, w, b)`` in float64."""
    out = layer.forward(x)
    dout = np.random.default_rng(seed).standard_normal(out.shape).astype(layer.dtype)
    dx, grads = layer.backward(dout)
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    wt = torch.tensor(layer.W.astype(np.float64), requires_grad=True)
    bt = None if layer.b is None else torch.tensor(layer.b[:, 0].astype(np.float64),
                                                   requires_grad=True)
    ot = torch_forward(xt, wt, bt)
    ot.backward(torch.from_numpy(dout.astype(np.float64)))
    assert out.shape == (x.shape[0], *layer.out_dim)
    assert_close(out, ot.detach().numpy(), layer.dtype, "out")
    assert_close(dx, xt.grad.numpy(), layer.dtype, "dX")
    assert_close(grads[0], wt.grad.numpy(), layer.dtype, "dW")
    assert [g.shape for g in grads] == [p.shape for p in layer.params]
    if bt is not None:
        assert_close(grads[1], bt.grad.numpy()[:, None], layer.dtype, "db")


# X_dim, K, fh, fw, stride, padding, kwargs
CONV = [
    ((4, 7, 7), 6, 3, 3, 1, 1, {"groups": 2}),
    ((4, 6, 5), 8, 3, 2, 2, (1, 0), {"groups": 4, "bias": False}),
    ((3, 6, 6), 3, 3, 3, 1, 1, {"groups": 3, "padding_mode": "reflect"}),
    ((2, 5, 6), 4, 3, 3, 1, 2, {"padding_mode": "circular", "bias": False}),
    ((2, 5, 6), 4, 2, 3, 2, 1, {"padding_mode": "replicate", "dilation": (2, 1)}),
    ((2, 5, 6), 4, 3, 3, 1, "same", {"padding_mode": "reflect"}),
]


def _conv_id(spec) -> str:
    dims, k, fh, fw, s, p, kw = spec
    return f"C{dims[0]}-K{k}-{fh}x{fw}-s{s}-p{p}-" + "-".join(f"{a}={v}" for a, v in kw.items())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("spec", CONV, ids=[_conv_id(s) for s in CONV])
def test_conv_groups_bias_modes_match_torch(spec, dtype, assert_close):
    dims, k, fh, fw, stride, padding, kwargs = spec
    layer = Conv(dims, k, fh, fw, stride, padding, **kwargs, dtype=dtype, rng=0)
    groups, mode = kwargs.get("groups", 1), kwargs.get("padding_mode", "zeros")
    assert layer.W.shape == (k, dims[0] // groups, fh, fw) and layer.groups == groups
    if layer.b is not None:  # a non-zero bias, so that it is exercised
        layer.b[...] = np.random.default_rng(1).standard_normal(layer.b.shape)
    module = torch.nn.Conv2d(dims[0], k, (fh, fw), stride, padding,
                             kwargs.get("dilation", 1), groups, layer.b is not None, mode,
                             dtype=torch.float64)

    def forward(x, w, b):
        return module._conv_forward(x, w, b)  # torch's padding modes, on our weights

    x = np.random.default_rng(2).standard_normal((2, *dims)).astype(dtype)
    _against_torch(layer, x, forward, assert_close)


def test_conv_bias_false_params_and_backward():
    layer = Conv((2, 5, 5), 3, 3, 3, 1, 1, bias=False, rng=0)
    assert layer.b is None and layer.params == [layer.W] and len(layer.params) == 1
    out = layer.forward(np.ones((2, 2, 5, 5)))
    dx, grads = layer.backward(np.ones(out.shape))
    assert dx.shape == (2, 2, 5, 5) and len(grads) == 1 and grads[0].shape == layer.W.shape
    with pytest.raises(AttributeError, match="bias=False"):
        layer.b = np.zeros((3, 1))
    assert "bias=False" in repr(layer)


@pytest.mark.parametrize("cls", [Conv, ConvTranspose])
def test_rng_none_draws_the_classic_formula_with_groups(cls):
    np.random.seed(7)  # noqa: NPY002
    expected = np.random.randn(6, 4 // 2, 3, 2) / np.sqrt(6 / 2.)  # noqa: NPY002
    if cls is ConvTranspose:  # weights (C, K/groups, fh, fw), still / sqrt(K / 2)
        np.random.seed(7)  # noqa: NPY002
        expected = np.random.randn(4, 6 // 2, 3, 2) / np.sqrt(6 / 2.)  # noqa: NPY002
    after = np.random.rand()  # noqa: NPY002
    np.random.seed(7)  # noqa: NPY002
    layer = cls((4, 5, 5), 6, 3, 2, 1, 0, groups=2)
    np.testing.assert_array_equal(layer.W, expected)
    assert np.random.rand() == after  # noqa: NPY002  the global stream moved on as classic
    float32 = cls((4, 5, 5), 6, 3, 2, 1, 0, groups=2, dtype=np.float32, rng=3)
    again = cls((4, 5, 5), 6, 3, 2, 1, 0, groups=2, dtype=np.float32, rng=3)
    assert float32.W.dtype == np.float32 and np.array_equal(float32.W, again.W)
    assert np.all(float32.b == 0)


def test_conv_default_repr_is_unchanged_and_classic_sizes_still_pass():
    layer = Conv((1, 5, 5), 2, 3, 3, 1.0, 1, groups=1.0, rng=0)
    assert repr(layer) == ("Conv(X_dim=(1, 5, 5), n_filter=2, h_filter=3, w_filter=3, "
                           "stride=1, padding=1, dilation=1, dtype=float64)")
    assert Conv((4, 5, 5), 2, 3, 3, 1, 1, groups=np.int64(2), rng=0).groups == 2


# X_dim, K, fh, fw, stride, padding, kwargs
TRANSPOSED = [
    ((3, 4, 4), 5, 3, 3, 1, 0, {}),
    ((4, 4, 5), 6, 3, 3, 2, 1, {"output_padding": 1, "groups": 2}),
    ((2, 3, 4), 3, 2, 3, (2, 3), (0, 1), {"output_padding": (1, 0), "dilation": (1, 2),
                                           "bias": False}),
    ((4, 4, 4), 4, 4, 4, 2, 1, {"groups": 4}),
    ((2, 3, 3), 2, 3, 3, 1, 0, {"dilation": 2, "output_padding": 1}),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("spec", TRANSPOSED, ids=[_conv_id(s) for s in TRANSPOSED])
def test_conv_transpose_matches_torch(spec, dtype, assert_close):
    dims, k, fh, fw, stride, padding, kwargs = spec
    layer = ConvTranspose(dims, k, fh, fw, stride, padding, **kwargs, dtype=dtype, rng=0)
    groups = kwargs.get("groups", 1)
    assert layer.W.shape == (dims[0], k // groups, fh, fw)
    if layer.b is not None:
        layer.b[...] = np.random.default_rng(1).standard_normal(layer.b.shape)

    def forward(x, w, b):
        return F.conv_transpose2d(x, w, b, stride, padding, kwargs.get("output_padding", 0),
                                  groups, kwargs.get("dilation", 1))

    x = np.random.default_rng(2).standard_normal((2, *dims)).astype(dtype)
    _against_torch(layer, x, forward, assert_close)


def test_conv_transpose_sizes_repr_and_inference(assert_close):
    layer = ConvTranspose((3, 4, 5), 2, 4, 4, 2, 1, rng=0)
    assert (layer.h_out, layer.w_out) == (8, 10) and layer.out_dim == (2, 8, 10)
    assert repr(layer) == ("ConvTranspose(X_dim=(3, 4, 5), n_filter=2, h_filter=4, "
                           "w_filter=4, stride=2, padding=1, dilation=1, dtype=float64)")
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    out = layer.forward(x)
    assert np.array_equal(layer.forward(x, train=False), out)
    with pytest.raises(numbaconv.BackwardBeforeForwardError, match="inference-only"):
        layer.backward(out)
    assert numbaconv.ConvTranspose is ConvTranspose and "ConvTranspose" in numbaconv.__all__


@pytest.mark.parametrize(("cls", "args", "kwargs", "exc", "pattern"), [
    (Conv, ((3, 5, 5), 4, 3, 3, 1, 1), {"groups": 2}, ValueError,
     r"in_channels must be divisible by groups: X_dim\[0\]=3, groups=2"),
    (Conv, ((4, 5, 5), 3, 3, 3, 1, 1), {"groups": 2}, ValueError,
     "out_channels must be divisible by groups: n_filter=3"),
    (Conv, ((4, 5, 5), 4, 3, 3, 1, 1), {"groups": 0}, ValueError, "groups must be a positive"),
    (Conv, ((4, 5, 5), 4, 3, 3, 1, 1), {"groups": 1.5}, TypeError, "groups must be an int"),
    (Conv, ((4, 5, 5), 4, 3, 3, 1, 1), {"bias": 1}, TypeError, "bias must be a bool"),
    (Conv, ((4, 5, 5), 4, 3, 3, 1, 1), {"padding_mode": "wrap"}, ValueError,
     "padding_mode must be one of"),
    (Conv, ((1, 3, 3), 4, 3, 3, 1, 3), {"padding_mode": "reflect"}, ValueError,
     "reflect padding must be smaller than the input"),
    (Conv, ((1, 5, 5), 4, 3, 3, 2, "same"), {}, ValueError,
     "padding='same' is not supported for strided convolutions"),
    (ConvTranspose, ((3, 5, 5), 4, 3, 3, 2, 1), {"output_padding": 2}, ValueError,
     "output padding must be smaller than either stride or dilation"),
    (ConvTranspose, ((3, 1, 1), 4, 1, 1, 1, 1), {}, ValueError, "output size .* too small"),
    (ConvTranspose, ((3, 5, 5), 4, 3, 3, 1, 1), {"groups": 3}, ValueError,
     "out_channels must be divisible by groups"),
    (ConvTranspose, ((3, 5, 5), 4, 3, 3, 0, 1), {}, ValueError, "stride must be >= 1"),
    (ConvTranspose, ((3, 5, 5), 4, 3, 3, 1, 1), {"dtype": np.float16}, TypeError,
     "dtype must be float32 or float64"),
])
def test_bad_arguments(cls, args, kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        cls(*args, **kwargs)


def test_conv_transpose_bad_input_and_backward_before_forward():
    layer = ConvTranspose((3, 4, 4), 2, 3, 3, 1, 0, rng=0)
    with pytest.raises(numbaconv.BackwardBeforeForwardError, match="before"):
        layer.backward(np.zeros((1, 2, 6, 6)))
    with pytest.raises(ValueError, match=r"built for images of shape \(C, H, W\) = \(3, 4, 4\)"):
        layer.forward(np.zeros((1, 3, 5, 4)))
    with pytest.raises(ValueError, match="single .* image"):
        layer.forward(np.zeros((3, 4, 4)))


# Integer images (uint8, say) and float16 go in as classic code's np.dot takes them: converted
# once to the layer's dtype, so they give what the float input of the same values gives.
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cls", [Conv, ConvTranspose])
@pytest.mark.parametrize("other", [np.uint8, np.int64, np.int16, np.uint32, np.float16])
def test_integer_input_is_converted_to_the_layer_dtype(cls, other, dtype):
    x = np.random.default_rng(1).integers(0, 100, size=(2, 3, 6, 5)).astype(other)
    layer = cls((3, 6, 5), 4, 3, 3, 1, 1, dtype=dtype, rng=0)
    expected = layer.forward(x.astype(dtype))
    expected_grads = layer.backward(np.ones_like(expected))
    for train in (False, True):
        out = layer.forward(x, train=train)
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, expected)
    dx, grads = layer.backward(np.ones_like(expected))
    np.testing.assert_array_equal(dx, expected_grads[0])
    for grad, expected_grad in zip(grads, expected_grads[1], strict=True):
        np.testing.assert_array_equal(grad, expected_grad)
    # Negative values and a non-contiguous view convert the same way.
    signed = (x.astype(np.int64) - 50)[:, :, ::-1]
    np.testing.assert_array_equal(layer.forward(signed, train=False),
                                  layer.forward(signed.astype(dtype), train=False))


@pytest.mark.parametrize("cls", [Conv, ConvTranspose])
@pytest.mark.parametrize(("bad_dtype", "pattern"), [
    (np.complex128, r"got dtype complex128"),
    (np.complex64, r"got dtype complex64"),
    (bool, r"got dtype bool; bools are not summed"),
    (object, r"got dtype object"),
])
def test_bool_complex_and_object_input_is_refused(cls, bad_dtype, pattern):
    layer = cls((3, 6, 5), 4, 3, 3, 1, 1, rng=0)
    with pytest.raises(TypeError, match=rf"{cls.__name__}\.forward: X .*{pattern}"):
        layer.forward(np.zeros((2, 3, 6, 5), dtype=bad_dtype))
