"""The classic ``Conv`` behaves as the classic layer where classic code can tell.

* ``rng=None`` draws the classic ``np.random.randn(K, C, fh, fw) / np.sqrt(K / 2.)`` from
  NumPy's global generator: after ``np.random.seed(s)`` the weights are bit for bit the
  classic ones and the global stream is left where the classic layer leaves it (oracle: the
  formula, written here, and the reference ``FancyConv``);
* sizes and hyperparameters may be NumPy integers or whole-number floats (``2.0``), while
  the functional API keeps PyTorch's strict ints;
* the two commonest shape mistakes (channels-last input, a single image) get a hint.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import numbaconv
from numbaconv._validation import input_shape_hint
from numbaconv.reference import FancyConv


def _classic_weights(n_filter: int, c: int, h_filter: int, w_filter: int) -> np.ndarray:
    """The classic layer's initialisation, as classic code writes it."""
    return np.random.randn(n_filter, c, h_filter, w_filter) / np.sqrt(n_filter / 2.)  # noqa: NPY002


def _global_state() -> tuple:
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    return name, keys.tobytes(), pos, has_gauss, cached


# (X_dim, n_filter, h_filter, w_filter, stride, padding)
LAYERS = [((3, 8, 8), 4, 3, 3, 1, 1), ((1, 28, 28), 16, 5, 5, 1, 2), ((2, 7, 9), 3, 2, 3, 2, 0)]


def _layer_id(spec) -> str:
    (c, h, w), k, fh, fw, s, p = spec
    return f"C{c}-{h}x{w}-K{k}-k{fh}x{fw}-s{s}-p{p}"


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("spec", LAYERS, ids=_layer_id)
@pytest.mark.parametrize("layer_cls", [numbaconv.Conv, FancyConv], ids=["Conv", "FancyConv"])
def test_rng_none_draws_as_the_classic_layer(layer_cls, spec, dtype):
    x_dim, k, fh, fw, stride, padding = spec
    np.random.seed(1234)  # noqa: NPY002
    _classic_weights(2, 1, 1, 1)  # the client's own draws before the layer ...
    expected = _classic_weights(k, x_dim[0], fh, fw)
    after_classic = _global_state()
    later_classic = np.random.rand(5)  # noqa: NPY002  ... and after it

    np.random.seed(1234)  # noqa: NPY002
    _classic_weights(2, 1, 1, 1)
    layer = layer_cls(x_dim, k, fh, fw, stride, padding, dtype=dtype)
    assert _global_state() == after_classic
    np.testing.assert_array_equal(np.random.rand(5), later_classic)  # noqa: NPY002

    assert layer.W.dtype == np.dtype(dtype)
    assert layer.W.tobytes() == expected.astype(dtype).tobytes()  # bit for bit
    assert layer.b.dtype == np.dtype(dtype) and not layer.b.any()
    assert layer.b.shape == (k, 1)


def test_rng_none_two_seeded_runs_agree():
    runs = []
    for _ in range(2):
        np.random.seed(7)  # noqa: NPY002
        layers = [numbaconv.Conv((3, 8, 8), 4, 3, 3, 1, 1),
                  numbaconv.Conv((4, 8, 8), 6, 3, 3, 1, 1)]
        runs.append([layer.W.copy() for layer in layers] + [np.random.rand(3)])  # noqa: NPY002
    for first, second in zip(*runs, strict=True):
        np.testing.assert_array_equal(first, second)


def test_rng_none_is_not_a_fixed_seed():
    """Without a seed, two layers differ, as classic ones do."""
    a, b = numbaconv.Conv((3, 8, 8), 4, 3, 3, 1, 1), numbaconv.Conv((3, 8, 8), 4, 3, 3, 1, 1)
    assert not np.array_equal(a.W, b.W)


@pytest.mark.parametrize("layer_cls", [numbaconv.Conv, FancyConv], ids=["Conv", "FancyConv"])
def test_rng_seed_and_generator_keep_working_and_leave_the_global_stream(layer_cls):
    k, shape = 6, (6, 3, 3, 3)
    expected = np.random.default_rng(99).standard_normal(shape) / np.sqrt(k / 2.0)
    before = _global_state()
    by_seed = layer_cls((3, 8, 8), k, 3, 3, 1, 1, rng=99)
    by_generator = layer_cls((3, 8, 8), k, 3, 3, 1, 1, rng=np.random.default_rng(99))
    assert _global_state() == before  # an explicit rng does not touch the global stream
    np.testing.assert_array_equal(by_seed.W, expected)
    np.testing.assert_array_equal(by_generator.W, expected)


def test_rng_random_state_draws_randn():
    expected = np.random.RandomState(5).randn(4, 3, 3, 3) / np.sqrt(4 / 2.)
    layer = numbaconv.Conv((3, 8, 8), 4, 3, 3, 1, 1, rng=np.random.RandomState(5))
    np.testing.assert_array_equal(layer.W, expected)


@pytest.mark.parametrize(("rng", "exc", "pattern"), [
    ("seed", TypeError, r"rng must be None, an int seed.*'seed'"),
    (1.5, TypeError, r"rng.*1\.5"),
    (True, TypeError, r"rng.*True"),
    (-1, ValueError, r"rng.*-1"),
], ids=["str", "float", "bool", "negative"])
def test_bad_rng_is_refused_clearly(rng, exc, pattern):
    with pytest.raises(exc, match=pattern):
        numbaconv.Conv((3, 8, 8), 4, 3, 3, 1, 1, rng=rng)


# --- sizes and hyperparameters as classic code computes them ----------------------------------

CLASSIC_ARGS = [
    ("floats", ((3.0, 8.0, 8.0), 4.0, 3.0, 3.0, 1.0, 1.0)),
    ("from-division", ((3, 16 / 2, 8), 8 / 2, 3, 3, 2 / 2, (3 - 1) / 2)),
    ("numpy", ((np.int64(3), np.int32(8), np.float32(8.0)), np.int16(4), np.uint8(3),
               np.float64(3.0), np.int64(1), np.array(1.0))),
    ("array-x-dim", (np.array([3, 8, 8]), 4, 3, 3, (1.0, 1), [1, np.float32(1.0)])),
]


@pytest.mark.parametrize("args", [a[1] for a in CLASSIC_ARGS], ids=[a[0] for a in CLASSIC_ARGS])
def test_conv_takes_integral_floats_and_numpy_ints(args, rng):
    layer = numbaconv.Conv(*args, rng=3)
    plain = numbaconv.Conv((3, 8, 8), 4, 3, 3, 1, 1, rng=3)
    assert (layer.d_X, layer.h_X, layer.w_X, layer.n_filter, layer.h_filter, layer.w_filter) == (
        3, 8, 8, 4, 3, 3)
    hyper = [layer.stride, layer.padding]
    hyper = [v for h in hyper for v in (h if isinstance(h, tuple) else (h,))]
    for value in (layer.d_X, layer.h_X, layer.w_X, layer.n_filter, layer.h_filter,
                  layer.w_filter, layer.h_out, layer.w_out, *hyper):
        assert type(value) is int, (value, type(value))
    assert layer.out_dim == plain.out_dim == (4, 8, 8)
    np.testing.assert_array_equal(layer.W, plain.W)
    x = rng.standard_normal((2, 3, 8, 8))
    np.testing.assert_array_equal(layer.forward(x), plain.forward(x))
    dout = rng.standard_normal((2, 4, 8, 8))
    (dx, (dw, db)), (dx0, (dw0, db0)) = layer.backward(dout), plain.backward(dout)
    for got, expected in ((dx, dx0), (dw, dw0), (db, db0)):
        np.testing.assert_array_equal(got, expected)


def _layer(**kw):
    args = {"X_dim": (3, 8, 8), "n_filter": 4, "h_filter": 3, "w_filter": 3, "stride": 1,
            "padding": 1}
    args.update(kw)
    return numbaconv.Conv(**args)


CONV_REJECTED = [
    ("n-filter-fraction", {"n_filter": 4.5}, TypeError, r"n_filter.*whole number.*4\.5"),
    ("n-filter-nan", {"n_filter": float("nan")}, TypeError, r"n_filter.*nan"),
    ("n-filter-inf", {"n_filter": float("inf")}, TypeError, r"n_filter.*inf"),
    ("n-filter-bool", {"n_filter": True}, TypeError, r"n_filter.*True"),
    ("h-filter-zero-float", {"h_filter": 0.0}, ValueError, r"h_filter.*positive.*0"),
    ("x-dim-fraction", {"X_dim": (3, 7.5, 8)}, TypeError, r"X_dim.*7\.5"),
    ("x-dim-nan", {"X_dim": (3, float("nan"), 8)}, TypeError, r"X_dim.*nan"),
    ("x-dim-bool", {"X_dim": (True, 8, 8)}, TypeError, r"X_dim.*True"),
    ("x-dim-2d-array", {"X_dim": np.ones((3, 1))}, ValueError, r"X_dim.*tuple \(C, H, W\)"),
    ("stride-fraction", {"stride": 1.5}, TypeError, r"stride.*1\.5"),
    ("stride-nan", {"stride": float("nan")}, TypeError, r"stride.*nan"),
    ("stride-bool", {"stride": np.True_}, TypeError, r"stride.*True"),
    ("padding-pair-fraction", {"padding": (1.0, 0.5)}, TypeError, r"padding.*\(1\.0, 0\.5\)"),
    ("padding-negative-float", {"padding": -2.0}, ValueError, r"padding.*-2"),
    ("dilation-inf", {"dilation": float("inf")}, TypeError, r"dilation.*inf"),
]


@pytest.mark.parametrize(("kwargs", "exc", "pattern"), [r[1:] for r in CONV_REJECTED],
                         ids=[r[0] for r in CONV_REJECTED])
def test_conv_refuses_bad_sizes_clearly(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern) as info:
        _layer(**kwargs)
    assert type(info.value) in (ValueError, TypeError)


@pytest.mark.parametrize("kwargs", [{"stride": 2.0}, {"padding": 1.0}, {"dilation": 1.0},
                                    {"stride": np.float64(1.0)}],
                         ids=["stride", "padding", "dilation", "np-float"])
def test_functional_api_keeps_pytorch_strictness(kwargs):
    """conv2d_forward is new code's API and, as torch.nn.functional.conv2d, takes ints only."""
    x, w = np.zeros((1, 2, 5, 5)), np.zeros((3, 2, 3, 3))
    with pytest.raises(TypeError, match=next(iter(kwargs))):
        numbaconv.conv2d_forward(x, w, None, **kwargs)


def test_conv_output_has_the_layer_dtype(rng):
    """The results have the layer's dtype, not the input's: a float32 batch into a float64
    layer gives float64 outputs and gradients (and the other way round)."""
    x = rng.standard_normal((2, 3, 8, 8))
    for layer_dtype, input_dtype in ((np.float64, np.float32), (np.float32, np.float64)):
        layer = numbaconv.Conv((3, 8, 8), 4, 3, 3, 1, 1, rng=0, dtype=layer_dtype)
        out = layer.forward(x.astype(input_dtype))
        dx, (dw, db) = layer.backward(np.ones_like(out))
        assert {a.dtype for a in (out, dx, dw, db)} == {np.dtype(layer_dtype)}


# --- hints for the two commonest shape mistakes -----------------------------------------------

CHANNELS_LAST = r"channels-last \(N, H, W, C\).*x\.transpose\(0, 3, 1, 2\)"
SINGLE_IMAGE = r"single \(C, H, W\) image.*x\[None\]"
SINGLE_CHANNELS_LAST = r"single channels-last \(H, W, C\) image.*x\.transpose\(2, 0, 1\)\[None\]"

HINTS = [
    ("channels-last", (2, 8, 10, 3), CHANNELS_LAST),
    ("channels-last-other-size", (2, 32, 32, 3), CHANNELS_LAST),
    ("single-image", (3, 8, 10), SINGLE_IMAGE),
    ("single-channels-last-image", (8, 10, 3), SINGLE_CHANNELS_LAST),
]


@pytest.mark.parametrize(("shape", "pattern"), [h[1:] for h in HINTS], ids=[h[0] for h in HINTS])
def test_conv_forward_hints_at_shape_mistakes(shape, pattern):
    layer = numbaconv.Conv((3, 8, 10), 4, 3, 3, 1, 1, rng=0)
    with pytest.raises(ValueError, match=pattern) as info:
        layer.forward(np.zeros(shape))
    assert str(list(shape)) in str(info.value) or str(shape) in str(info.value)


@pytest.mark.parametrize("shape", [(2, 2, 8, 10), (2, 3, 8, 11), (2, 3, 10, 8), (8, 10),
                                   (1, 2, 3, 8, 10)],
                         ids=["channels", "width", "transposed-hw", "2d", "5d"])
def test_conv_forward_no_hint_for_other_mistakes(shape):
    layer = numbaconv.Conv((3, 8, 10), 4, 3, 3, 1, 1, rng=0)
    with pytest.raises(ValueError, match=r"\(3, 8, 10\)|4D X") as info:
        layer.forward(np.zeros(shape))
    assert "looks like" not in str(info.value)


def test_conv_forward_square_image_channels_equal_to_width_is_not_called_channels_last():
    """C == W: a channels-first input of the wrong height must not be called channels-last."""
    layer = numbaconv.Conv((4, 4, 4), 2, 3, 3, 1, 1, rng=0)
    with pytest.raises(ValueError) as info:
        layer.forward(np.zeros((2, 4, 5, 4)))
    assert "looks like" not in str(info.value)
    with pytest.raises(ValueError, match=CHANNELS_LAST):
        layer.forward(np.zeros((2, 5, 4, 4)))


@pytest.mark.parametrize(("shape", "channels", "pattern"), [
    ((2, 28, 28, 1), 1, CHANNELS_LAST),
    ((2, 28, 28, 3), 3, CHANNELS_LAST),
    ((3, 28, 28), 3, SINGLE_IMAGE),
    ((28, 28, 3), 3, SINGLE_CHANNELS_LAST),
    ((2, 3, 28, 28), 1, None),
    ((2, 28, 28), 1, None),
], ids=["cl-1ch", "cl-3ch", "single", "single-cl", "channels", "3d-other"])
def test_input_shape_hint_without_image_size(shape, channels, pattern):
    """The form conv2d_forward can use: only the weight's channel count is known."""
    hint = input_shape_hint(shape, channels)
    if pattern is None:
        assert hint == ""
    else:
        assert re.search(pattern, hint), hint
