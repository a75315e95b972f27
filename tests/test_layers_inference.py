"""Inference mode: ``forward(X, train=False)`` of every layer gives bitwise the output of
``forward(X)``, runs the inference functions (no cache), keeps nothing for backward (which
then raises BackwardBeforeForwardError saying why); Sequential passes it on and ``predict``
uses it; a small network of the new conv layers trains with Adam in Sequential."""

from __future__ import annotations

import numpy as np
import pytest

import numbaconv
from numbaconv import BackwardBeforeForwardError, Conv, ConvTranspose, nn
from numbaconv.reference import FancyConv


def _layers():
    return [
        ("Conv", lambda: Conv((3, 6, 6), 4, 3, 3, 1, 1, rng=0), (2, 3, 6, 6)),
        ("Conv-groups-reflect", lambda: Conv((4, 6, 6), 4, 3, 3, 1, 1, groups=2,
                                             padding_mode="reflect", rng=0), (2, 4, 6, 6)),
        ("ConvTranspose", lambda: ConvTranspose((3, 4, 4), 2, 3, 3, 2, 1, output_padding=1,
                                                rng=0), (2, 3, 4, 4)),
        ("nn.Conv2d", lambda: nn.Conv2d(3, 4, 3, padding="same", rng=0), (2, 3, 6, 6)),
        ("nn.Conv2d-depthwise", lambda: nn.Conv2d(3, 6, 3, groups=3, stride=2, rng=0),
         (2, 3, 7, 7)),
        ("nn.ConvTranspose2d", lambda: nn.ConvTranspose2d(3, 2, 4, 2, 1, rng=0), (2, 3, 4, 4)),
        ("Dense", lambda: nn.Dense(5, 3, rng=0), (4, 5)),
        ("ReLU", nn.ReLU, (2, 3, 4)),
        ("Flatten", nn.Flatten, (2, 3, 4)),
        ("MaxPool2d", lambda: nn.MaxPool2d(3, stride=2, padding=1), (2, 3, 7, 7)),
        ("AvgPool2d", lambda: nn.AvgPool2d(2, count_include_pad=False, padding=1),
         (2, 3, 5, 5)),
    ]


@pytest.mark.parametrize(("make", "shape"), [(m, s) for _, m, s in _layers()],
                         ids=[name for name, _, _ in _layers()])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_train_false_is_bitwise_the_same_and_keeps_nothing(make, shape, dtype):
    layer = make()
    x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    x.flat[::5] = np.nan if isinstance(layer, nn.MaxPool2d) else x.flat[::5]  # NaNs too
    trained = layer.forward(x)
    dx, _ = layer.backward(np.ones_like(trained))  # a training forward is usable ...
    inferred = layer.forward(x, train=False)
    np.testing.assert_array_equal(inferred, trained)
    assert inferred.dtype == trained.dtype
    for state in ("_cache", "_mask", "_x", "_x_shape", "_out_shape", "_argmax"):
        assert getattr(layer, state, None) is None, state
    with pytest.raises(BackwardBeforeForwardError, match=r"inference-only .*train=False"):
        layer.backward(np.ones_like(trained))  # ... an inference forward is not
    again = layer.forward(x, train=True)
    np.testing.assert_array_equal(again, trained)
    np.testing.assert_array_equal(layer.backward(np.ones_like(trained))[0], dx)


def test_conv_layers_call_the_inference_functions(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a training forward ran in inference")

    cases = [(numbaconv.layer, "conv2d_forward", Conv((2, 5, 5), 3, 3, 3, 1, 1, rng=0),
              (1, 2, 5, 5)),
             (numbaconv.nn.conv, "conv2d_forward", nn.Conv2d(2, 3, 3, rng=0), (1, 2, 5, 5)),
             (numbaconv.transposed_layer, "conv_transpose2d_forward",
              ConvTranspose((2, 5, 5), 3, 3, 3, 1, 1, rng=0), (1, 2, 5, 5)),
             (numbaconv.nn.conv, "conv_transpose2d_forward", nn.ConvTranspose2d(2, 3, 3, rng=0),
              (1, 2, 5, 5))]
    for module, name, layer, shape in cases:
        monkeypatch.setattr(module, name, refuse)
        out = layer.forward(np.ones(shape, layer.dtype), train=False)
        assert out.shape[:2] == (1, 3)


def test_inference_does_not_copy_the_input():
    layer = nn.Conv2d(2, 3, 3, rng=0)
    x = np.ones((1, 2, 5, 5), np.float32)
    layer.forward(x)
    assert layer._cache is not None  # training keeps what backward needs
    layer.forward(x, train=False)
    assert layer._cache is None


def test_bad_train_flag():
    for layer in (Conv((1, 3, 3), 1, 1, 1, 1, 0, rng=0), nn.ReLU(), nn.Sequential(nn.ReLU())):
        with pytest.raises(TypeError, match="train must be a bool"):
            layer.forward(np.ones((1, 1, 3, 3)), train=None)


class _Spy:
    """A layer recording the train flags it was given."""

    def __init__(self) -> None:
        self.params: list[np.ndarray] = []
        self.flags: list[bool] = []

    def forward(self, X, train=True):
        self.flags.append(train)
        return X

    def backward(self, dout):
        return dout, []


class _Classic:
    """A layer of classic code, whose forward takes X only."""

    params: list[np.ndarray] = []

    def forward(self, X):
        return X

    def backward(self, dout):
        return dout, []


def test_sequential_passes_train_on_and_predict_uses_inference():
    spy = _Spy()
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, rng=0), spy, _Classic(),
                          FancyConv((2, 4, 4), 2, 1, 1, 1, 0, rng=0), nn.Flatten(),
                          nn.Dense(32, 3, dtype=np.float32, rng=0))
    x = np.random.default_rng(0).standard_normal((5, 1, 4, 4)).astype(np.float32)
    logits = model.forward(x)
    assert spy.flags == [True]
    model.backward(np.ones_like(logits))
    np.testing.assert_array_equal(model(x, train=False), logits)
    assert spy.flags == [True, False] and model[0]._cache is None
    with pytest.raises(BackwardBeforeForwardError, match="Sequential.backward.*inference-only"):
        model.backward(np.ones_like(logits))
    labels = model.predict(x, batch_size=2)
    assert spy.flags == [True, False, False, False, False]
    np.testing.assert_array_equal(labels, np.argmax(logits, axis=1))
    model.forward(x)
    model.backward(np.ones_like(logits))  # training works again


def test_sequential_of_new_conv_layers_trains_with_adam():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 2, 8, 8)).astype(np.float32)
    y = (x[:, 0, :4].mean(axis=(1, 2)) > x[:, 1, 4:].mean(axis=(1, 2))).astype(np.int64)
    init = np.random.default_rng(1)
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding="same", padding_mode="reflect", rng=init), nn.ReLU(),
        nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=2, bias=False, rng=init), nn.ReLU(),
        nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1, rng=init), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Dense(32, 2, dtype=np.float32, rng=0))
    loss = nn.SoftmaxCrossEntropy()
    opt = nn.Adam(model.params, lr=1e-2)
    first = float(loss(model.forward(x), y)[0])
    for _ in range(40):
        value, _ = model.train_step(x, y, loss, opt)
    assert value < 0.5 * first
    assert np.mean(model.predict(x) == y) >= 0.9
