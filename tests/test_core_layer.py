"""The classic ``Conv`` layer API: attributes, init, forward/backward, optimizer updates."""

from __future__ import annotations

import numpy as np
import pytest

import numbaconv
from numbaconv.reference import FancyConv, naive_conv2d_backward, naive_conv2d_forward

DTYPES = (np.float64, np.float32)
TAG = {np.dtype(np.float64): "f64", np.dtype(np.float32): "f32"}


@pytest.mark.parametrize(
    ("x_dim", "k", "fh", "fw", "stride", "padding", "dilation", "expected_hw"),
    [
        pytest.param((3, 224, 224), 2, 7, 7, 2, 3, 1, (112, 112), id="stem-224-k7-s2-p3"),
        pytest.param((3, 10, 10), 10, 3, 3, 1, 1, 1, (10, 10), id="classic-10-k3-s1-p1"),
        pytest.param((1, 28, 28), 4, 5, 5, 1, 2, 1, (28, 28), id="lenet-28-k5-s1-p2"),
        pytest.param((2, 32, 32), 3, 3, 3, 2, 1, 1, (16, 16), id="down-32-k3-s2-p1"),
        pytest.param((2, 9, 12), 3, 3, 2, (2, 3), (0, 1), 1, (4, 5), id="pairs-9x12-k3x2"),
        pytest.param((1, 11, 11), 2, 3, 3, 1, 0, 2, (7, 7), id="dil2-11-k3"),
        pytest.param((1, 7, 8), 2, 3, 3, 3, 0, 1, (2, 2), id="floor-7x8-k3-s3"),
    ],
)
def test_classic_attributes_and_floor_rule(x_dim, k, fh, fw, stride, padding, dilation,
                                           expected_hw):
    layer = numbaconv.Conv(x_dim, k, fh, fw, stride, padding, dilation=dilation, rng=0)
    c = x_dim[0]
    assert layer.W.shape == (k, c, fh, fw)
    assert layer.b.shape == (k, 1)
    assert np.array_equal(layer.b, np.zeros((k, 1)))
    assert isinstance(layer.params, list) and len(layer.params) == 2
    assert layer.params[0] is layer.W
    assert layer.params[1] is layer.b
    assert (layer.h_out, layer.w_out) == expected_hw
    assert isinstance(layer.h_out, int) and isinstance(layer.w_out, int)
    assert tuple(layer.out_dim) == (k, *expected_hw)
    assert layer.W.dtype == layer.b.dtype == np.float64


def test_classic_init_std_and_reproducibility():
    k = 64
    layer = numbaconv.Conv((16, 8, 8), k, 3, 3, 1, 1, rng=123)
    expected_std = 1.0 / np.sqrt(k / 2.0)
    assert abs(layer.W.std() / expected_std - 1.0) < 0.05
    assert abs(layer.W.mean()) < 0.05 * expected_std
    # Classic formula: standard normals scaled by 1/sqrt(K/2).
    z = np.random.default_rng(123).standard_normal((k, 16, 3, 3))
    np.testing.assert_allclose(layer.W, z / np.sqrt(k / 2.0), rtol=1e-15)

    same = numbaconv.Conv((16, 8, 8), k, 3, 3, 1, 1, rng=123)
    assert np.array_equal(same.W, layer.W)
    from_gen = numbaconv.Conv((16, 8, 8), k, 3, 3, 1, 1, rng=np.random.default_rng(123))
    assert np.array_equal(from_gen.W, layer.W)
    other = numbaconv.Conv((16, 8, 8), k, 3, 3, 1, 1, rng=124)
    assert not np.array_equal(other.W, layer.W)
    # A shared Generator advances: two layers drawn from it differ, and the sequence is
    # reproducible from the same seed.
    gen = np.random.default_rng(7)
    a, b = (numbaconv.Conv((2, 5, 5), 3, 3, 3, 1, 1, rng=gen) for _ in range(2))
    assert not np.array_equal(a.W, b.W)
    gen2 = np.random.default_rng(7)
    a2, b2 = (numbaconv.Conv((2, 5, 5), 3, 3, 3, 1, 1, rng=gen2) for _ in range(2))
    assert np.array_equal(a.W, a2.W) and np.array_equal(b.W, b2.W)
    # float32 layer: float32 parameters, same statistics, reproducible.
    f32 = numbaconv.Conv((16, 8, 8), k, 3, 3, 1, 1, rng=123, dtype=np.float32)
    assert f32.W.dtype == f32.b.dtype == np.float32
    assert abs(float(f32.W.std()) / expected_std - 1.0) < 0.05
    f32_again = numbaconv.Conv((16, 8, 8), k, 3, 3, 1, 1, rng=123, dtype=np.float32)
    assert np.array_equal(f32.W, f32_again.W)
    # Same init as the classic reference layer.
    fancy = FancyConv((16, 8, 8), k, 3, 3, 1, 1, rng=123)
    assert np.array_equal(fancy.W, layer.W)


LAYER_CASES = [
    pytest.param(((3, 8, 7), 4, 3, 3, 1, 1, 1), id="k3x3-s1-p1-N2C3-8x7"),
    pytest.param(((2, 9, 8), 3, 3, 2, (2, 1), (0, 2), (1, 2)), id="k3x2-s2x1-p0x2-d1x2-9x8"),
    pytest.param(((1, 7, 7), 2, 2, 3, 3, 2, 2), id="k2x3-s3-p2-d2-7x7"),
    pytest.param(((4, 5, 6), 3, 1, 1, 1, 0, 1), id="pointwise-5x6"),
]


@pytest.mark.parametrize("spec", LAYER_CASES)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: TAG[np.dtype(d)])
def test_forward_backward_against_naive(spec, dtype, rng, assert_close):
    x_dim, k, fh, fw, stride, padding, dilation = spec
    layer = numbaconv.Conv(x_dim, k, fh, fw, stride, padding, dilation=dilation, dtype=dtype,
                           rng=3)
    layer.b[...] = rng.standard_normal((k, 1))
    x = rng.standard_normal((2, *x_dim)).astype(dtype)
    out = layer.forward(x)
    assert out.shape == (2, *layer.out_dim)
    assert out.dtype == np.dtype(dtype)
    x64, w64, b64 = x.astype(np.float64), layer.W.astype(np.float64), layer.b.astype(np.float64)
    hp = dict(stride=stride, padding=padding, dilation=dilation)
    assert_close(out, naive_conv2d_forward(x64, w64, b64.ravel(), **hp), dtype, "out")

    dout = rng.standard_normal(out.shape).astype(dtype)
    result = layer.backward(dout)
    assert isinstance(result, tuple) and len(result) == 2
    dX, grads = result
    assert isinstance(grads, list) and len(grads) == 2
    dW, db = grads
    assert dX.shape == x.shape and dW.shape == layer.W.shape and db.shape == (k, 1)
    assert dX.dtype == dW.dtype == db.dtype == np.dtype(dtype)
    ref_dx, ref_dw, ref_db = naive_conv2d_backward(dout.astype(np.float64), x64, w64, **hp)
    assert_close(dX, ref_dx, dtype, "dX")
    assert_close(dW, ref_dw, dtype, "dW")
    assert_close(db, ref_db.reshape(k, 1), dtype, "db")


def test_in_place_optimizer_step_changes_next_forward(rng):
    layer = numbaconv.Conv((2, 6, 6), 3, 3, 3, 1, 1, rng=0)
    x = rng.standard_normal((2, 2, 6, 6))
    out = layer.forward(x)
    dX, grads = layer.backward(rng.standard_normal(out.shape))
    w_id, b_id = id(layer.params[0]), id(layer.params[1])
    lr = 0.1
    for p, g in zip(layer.params, grads, strict=True):
        p -= lr * g
    assert id(layer.params[0]) == w_id and layer.params[0] is layer.W
    assert id(layer.params[1]) == b_id and layer.params[1] is layer.b
    new_out = layer.forward(x)
    assert not np.allclose(new_out, out)
    np.testing.assert_allclose(new_out, naive_conv2d_forward(x, layer.W, layer.b.ravel(),
                                                             padding=1), rtol=1e-12, atol=1e-12)
    # A single in-place write into W is seen too.
    layer.params[0][...] = 0.0
    assert np.array_equal(layer.forward(x), np.broadcast_to(layer.b.reshape(1, 3, 1, 1),
                                                            new_out.shape))


def test_rebinding_parameters(rng):
    layer = numbaconv.Conv((2, 6, 5), 3, 3, 2, 1, 1, rng=0)
    x = rng.standard_normal((2, 2, 6, 5))
    new_w = rng.standard_normal(layer.W.shape)
    layer.W = new_w
    assert layer.W is new_w and layer.params[0] is new_w
    np.testing.assert_allclose(layer.forward(x), naive_conv2d_forward(x, new_w, padding=1),
                               rtol=1e-12, atol=1e-12)
    new_b = rng.standard_normal((3, 1))
    layer.b = new_b
    assert layer.b is new_b and layer.params[1] is new_b
    np.testing.assert_allclose(layer.forward(x),
                               naive_conv2d_forward(x, new_w, new_b.ravel(), padding=1),
                               rtol=1e-12, atol=1e-12)
    # Rebinding through the params list (what a classic optimizer may do).
    w3 = rng.standard_normal(layer.W.shape)
    layer.params[0] = w3
    assert layer.W is w3
    np.testing.assert_allclose(layer.forward(x),
                               naive_conv2d_forward(x, w3, new_b.ravel(), padding=1),
                               rtol=1e-12, atol=1e-12)
    dX, (dW, db) = layer.backward(np.ones((2, 3, 6, 6)))
    ref = naive_conv2d_backward(np.ones((2, 3, 6, 6)), x, w3, padding=1)
    np.testing.assert_allclose(dX, ref[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dW, ref[1], rtol=1e-12, atol=1e-12)


def test_float32_layer_converts_float64_input():
    layer = numbaconv.Conv((2, 5, 5), 3, 3, 3, 1, 1, rng=0, dtype=np.float32)
    x = np.random.default_rng(1).standard_normal((2, 2, 5, 5))
    out = layer.forward(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, layer.forward(x.astype(np.float32)))
    dX, (dW, db) = layer.backward(np.ones(out.shape))
    assert dX.dtype == dW.dtype == db.dtype == np.float32
    assert db.shape == (3, 1)
    np.testing.assert_array_equal(db, np.full((3, 1), 2 * 25, dtype=np.float32))


def test_backward_uses_latest_forward(rng):
    layer = numbaconv.Conv((1, 5, 5), 2, 3, 3, 1, 0, rng=0)
    x1 = rng.standard_normal((1, 1, 5, 5))
    x2 = rng.standard_normal((3, 1, 5, 5))
    layer.forward(x1)
    layer.forward(x2)
    dout = rng.standard_normal((3, 2, 3, 3))
    dX, (dW, _) = layer.backward(dout)
    ref = naive_conv2d_backward(dout, x2, layer.W)
    np.testing.assert_allclose(dX, ref[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dW, ref[1], rtol=1e-12, atol=1e-12)


def test_backward_before_forward():
    layer = numbaconv.Conv((1, 5, 5), 2, 3, 3, 1, 0, rng=0)
    with pytest.raises(numbaconv.BackwardBeforeForwardError, match="before"):
        layer.backward(np.zeros((1, 2, 3, 3)))
    assert issubclass(numbaconv.BackwardBeforeForwardError, ValueError)
    with pytest.raises(ValueError, match="forward"):
        layer.backward(np.zeros((1, 2, 3, 3)))


# --------------------------------------------------------------------------------------------
# Classic seed-style training loop: Conv -> flatten -> linear, softmax cross-entropy, SGD.
# --------------------------------------------------------------------------------------------


def _train(conv_cls, spec, x, y, w_init, fc_init, steps=8, lr=0.05):
    x_dim, k, fh, fw, stride, padding = spec
    conv = conv_cls(x_dim, k, fh, fw, stride, padding, rng=0)
    conv.params[0][...] = w_init
    fc_w = fc_init.copy()
    fc_b = np.zeros(fc_w.shape[1])
    losses = []
    for _ in range(steps):
        h = conv.forward(x)
        flat = h.reshape(h.shape[0], -1)
        logits = flat @ fc_w + fc_b
        logits = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        n = x.shape[0]
        losses.append(float(-np.mean(np.log(p[np.arange(n), y]))))
        dlogits = p.copy()
        dlogits[np.arange(n), y] -= 1.0
        dlogits /= n
        d_fc_w = flat.T @ dlogits
        d_fc_b = dlogits.sum(axis=0)
        dflat = dlogits @ fc_w.T
        _, grads = conv.backward(dflat.reshape(h.shape))
        for param, grad in zip(conv.params, grads, strict=True):
            param -= lr * grad
        fc_w -= lr * d_fc_w
        fc_b -= lr * d_fc_b
    return np.array(losses), conv.params[0].copy(), conv.params[1].copy()


@pytest.mark.parametrize(
    "spec",
    [pytest.param(((2, 6, 6), 4, 3, 3, 1, 1), id="k3-s1-p1-6x6"),
     pytest.param(((2, 7, 7), 3, 3, 3, 2, 1), id="k3-s2-p1-7x7-floor"),
     pytest.param(((1, 8, 7), 3, 3, 2, (2, 1), (1, 0)), id="k3x2-s2x1-p1x0-8x7")],
)
def test_training_loop_matches_fancy_reference(spec):
    rng = np.random.default_rng(42)
    x_dim, k, fh, fw, stride, padding = spec
    x = rng.standard_normal((8, *x_dim))
    y = rng.integers(0, 3, size=8)
    probe = numbaconv.Conv(x_dim, k, fh, fw, stride, padding, rng=1)
    w_init = probe.W.copy()
    fc_init = 0.1 * rng.standard_normal((int(np.prod(probe.out_dim)), 3))

    losses, w_end, b_end = _train(numbaconv.Conv, spec, x, y, w_init, fc_init)
    ref_losses, ref_w_end, ref_b_end = _train(FancyConv, spec, x, y, w_init, fc_init)
    assert losses[-1] < losses[0]
    assert np.all(np.diff(losses) < 0), f"loss not decreasing: {losses}"
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-10)
    np.testing.assert_allclose(w_end, ref_w_end, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b_end, ref_b_end, rtol=1e-10, atol=1e-12)
    assert not np.allclose(w_end, w_init)


def test_input_mutated_after_forward_does_not_change_gradients():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 5, 5))
    layer = numbaconv.Conv((2, 5, 5), 3, 3, 3, 1, 1, rng=0)
    fancy = FancyConv((2, 5, 5), 3, 3, 3, 1, 1, rng=0)
    buffers = [x.copy(), x.copy()]
    outs = [layer.forward(buffers[0]), fancy.forward(buffers[1])]
    for buf in buffers:
        buf[...] = 0.0  # e.g. a data loader refilling its batch buffer early
    (_, (dw, _)), (_, (ref_dw, _)) = (lyr.backward(np.ones_like(o))
                                      for lyr, o in zip((layer, fancy), outs, strict=True))
    np.testing.assert_allclose(dw, ref_dw, rtol=1e-12, atol=1e-12)
