"""Sequential with numbaconv.Conv: end-to-end gradients, PyTorch network, training steps."""

from __future__ import annotations

import numpy as np
import pytest

from numbaconv import Conv
from numbaconv._validation import BackwardBeforeForwardError
from numbaconv.nn import (
    SGD,
    Adam,
    AvgPool2d,
    Dense,
    Flatten,
    MaxPool2d,
    ReLU,
    Sequential,
    SoftmaxCrossEntropy,
)
from numbaconv.reference import FancyConv


def small_net(dtype=np.float64, seed=0, conv=Conv):
    rng = np.random.default_rng(seed)
    return Sequential(
        conv((2, 7, 7), 3, 3, 3, 1, 1, dtype=dtype, rng=rng), ReLU(),
        MaxPool2d(3, stride=2, padding=1),                        # overlapping -> 3 x 4 x 4
        conv((3, 4, 4), 4, 2, 2, 1, 0, dtype=dtype, rng=rng), ReLU(),
        AvgPool2d(2, stride=1),                                   # -> 4 x 2 x 2
        Flatten(), Dense(16, 5, dtype=dtype, rng=rng),
    )


def batch(dtype=np.float64, n=4, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 2, 7, 7)).astype(dtype), rng.integers(0, 5, n)


def test_params_and_gradients_are_ordered_layer_by_layer():
    model = small_net()
    shapes = [p.shape for p in model.params]
    assert shapes == [(3, 2, 3, 3), (3, 1), (4, 3, 2, 2), (4, 1), (16, 5), (1, 5)]
    x, y = batch()
    _, dlogits = SoftmaxCrossEntropy()(model.forward(x), y)
    dx, grads = model.backward(dlogits)
    assert dx.shape == x.shape
    assert [g.shape for g in grads] == shapes
    assert len(model) == 8 and model[0] is model.layers[0]
    assert "MaxPool2d(kernel_size=(3, 3)" in repr(model)


def test_whole_network_finite_differences(numerical_grad):
    model = small_net()
    for p in model.params:  # non-zero biases, so their gradients are exercised too
        p[...] += 0.1 * np.random.default_rng(9).standard_normal(p.shape)
    x, y = batch()
    loss = SoftmaxCrossEntropy()
    _, dlogits = loss(model.forward(x), y)
    dx, grads = model.backward(dlogits)

    def f():
        return loss(model.forward(x), y)[0]

    for array, analytic in [(x, dx), *zip(model.params, grads, strict=True)]:
        np.testing.assert_allclose(analytic, numerical_grad(f, array), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_network_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    model = small_net(dtype)
    x, y = batch(dtype)
    loss_value, dlogits = SoftmaxCrossEntropy()(model.forward(x), y)
    _, grads = model.backward(dlogits)

    w1, b1, w2, b2, wd, bd = (torch.tensor(p.copy(), requires_grad=True) for p in model.params)
    h = F.relu(F.conv2d(torch.tensor(x), w1, b1.ravel(), stride=1, padding=1))
    h = F.max_pool2d(h, 3, stride=2, padding=1)
    h = F.relu(F.conv2d(h, w2, b2.ravel()))
    h = F.avg_pool2d(h, 2, stride=1).flatten(1)
    logits = F.linear(h, wd.T, bd.ravel())
    lt = F.cross_entropy(logits, torch.tensor(y))
    lt.backward()
    rtol = 1e-11 if dtype == np.float64 else 2e-4
    assert loss_value == pytest.approx(lt.item(), rel=rtol)
    for g, t in zip(grads, (w1, b1, w2, b2, wd, bd), strict=True):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=rtol, atol=rtol * 1e-2)


@pytest.mark.parametrize(("opt_cls", "kwargs"),
                         [(SGD, {"lr": 0.1, "momentum": 0.9}), (Adam, {"lr": 0.01})],
                         ids=["sgd", "adam"])
def test_train_steps_match_torch(opt_cls, kwargs):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    model = small_net()
    opt = opt_cls(model.params, **kwargs)
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in model.params]
    topt = getattr(torch.optim, opt_cls.__name__)(tparams, **kwargs)
    loss = SoftmaxCrossEntropy()
    for step in range(3):
        x, y = batch(seed=10 + step)
        ours, _ = model.train_step(x, y, loss, opt)
        w1, b1, w2, b2, wd, bd = tparams
        h = F.relu(F.conv2d(torch.tensor(x), w1, b1.ravel(), padding=1))
        h = F.max_pool2d(h, 3, stride=2, padding=1)
        h = F.avg_pool2d(F.relu(F.conv2d(h, w2, b2.ravel())), 2, stride=1).flatten(1)
        lt = F.cross_entropy(F.linear(h, wd.T, bd.ravel()), torch.tensor(y))
        topt.zero_grad()
        lt.backward()
        topt.step()
        assert ours == pytest.approx(lt.item(), rel=1e-10)
    for p, t in zip(model.params, tparams, strict=True):
        np.testing.assert_allclose(p, t.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_training_reduces_the_loss_and_fancy_conv_agrees():
    x, y = batch(n=16, seed=3)
    losses = {}
    for name, conv in (("numbaconv", Conv), ("fancy", FancyConv)):
        model = small_net(conv=conv)
        opt = Adam(model.params, lr=0.02)
        loss = SoftmaxCrossEntropy()
        losses[name] = [model.train_step(x, y, loss, opt)[0] for _ in range(40)]
        if name == "numbaconv":
            assert np.array_equal(model.predict(x), model.predict(x, batch_size=3))
            assert np.mean(model.predict(x) == y) >= 0.75
    assert losses["numbaconv"][-1] < 0.5 * losses["numbaconv"][0]
    np.testing.assert_allclose(losses["numbaconv"], losses["fancy"], rtol=1e-8)


def test_validation():
    with pytest.raises(TypeError, match=r"layer 1 \(int\) is not a layer"):
        Sequential(ReLU(), 3)
    model = Sequential([Flatten(), Dense(4, 2, rng=0)])  # a list works too
    with pytest.raises(BackwardBeforeForwardError, match="before Sequential.forward"):
        model.backward(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        model.predict(np.zeros((2, 1, 2, 2)), batch_size=0)
    assert model.predict(np.zeros((0, 1, 2, 2))).shape == (0,)
