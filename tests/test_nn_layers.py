"""ReLU, Flatten and Dense: finite differences, PyTorch, init, validation."""

from __future__ import annotations

import numpy as np
import pytest

from numbaconv._validation import BackwardBeforeForwardError
from numbaconv.nn import Dense, Flatten, ReLU

DTYPES = [pytest.param(np.float64, id="float64"), pytest.param(np.float32, id="float32")]


def tol(dtype):
    return {"rtol": 1e-12, "atol": 1e-13} if dtype == np.float64 else {"rtol": 1e-5, "atol": 1e-6}


# ---------------------------------------------------------------- ReLU


def test_relu_forward_backward_and_gradient_at_zero():
    x = np.array([[-2.0, 0.0, 3.0], [1e-300, -0.0, 4.0]])
    layer = ReLU()
    out = layer.forward(x)
    np.testing.assert_array_equal(out, [[0.0, 0.0, 3.0], [1e-300, 0.0, 4.0]])
    dx, grads = layer.backward(np.full_like(x, 5.0))
    np.testing.assert_array_equal(dx, [[0.0, 0.0, 5.0], [5.0, 0.0, 5.0]])
    assert grads == [] and layer.params == []


def test_relu_finite_differences(numerical_grad):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink
    layer = ReLU()
    layer.forward(x)
    dout = rng.standard_normal(x.shape)
    dx, _ = layer.backward(dout)
    probe = ReLU()
    num = numerical_grad(lambda: float(np.sum(probe.forward(x) * dout)), x)
    np.testing.assert_allclose(dx, num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 5, 5)).astype(dtype)
    x.flat[::7] = 0.0
    dout = rng.standard_normal(x.shape).astype(dtype)
    layer = ReLU()
    out = layer.forward(x)
    dx, _ = layer.backward(dout)
    xt = torch.tensor(x, requires_grad=True)
    ot = torch.nn.functional.relu(xt)
    ot.backward(torch.tensor(dout))
    assert out.dtype == dtype and dx.dtype == dtype
    np.testing.assert_array_equal(out, ot.detach().numpy())
    np.testing.assert_array_equal(dx, xt.grad.numpy())


def test_relu_validation():
    layer = ReLU()
    with pytest.raises(BackwardBeforeForwardError, match="before ReLU.forward"):
        layer.backward(np.zeros(3))
    with pytest.raises(TypeError, match="dtype int64"):
        layer.forward(np.arange(3))
    layer.forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"forward output \(2, 3\), got \(3, 2\)"):
        layer.backward(np.zeros((3, 2)))


# ---------------------------------------------------------------- Flatten


def test_flatten_round_trip():
    x = np.random.default_rng(2).standard_normal((3, 2, 4, 5)).astype(np.float32)
    layer = Flatten()
    out = layer.forward(x)
    assert out.shape == (3, 40) and out.dtype == np.float32
    np.testing.assert_array_equal(out, x.reshape(3, -1))
    dx, grads = layer.backward(out * 2)
    assert grads == [] and layer.params == []
    np.testing.assert_array_equal(dx, x * 2)


def test_flatten_validation():
    layer = Flatten()
    with pytest.raises(BackwardBeforeForwardError, match="before Flatten.forward"):
        layer.backward(np.zeros((1, 1)))
    with pytest.raises(ValueError, match="batch axis"):
        layer.forward(np.float64(3.0))
    with pytest.raises(TypeError, match="complex128"):
        layer.forward(np.zeros((2, 2), dtype=complex))
    layer.forward(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"forward output \(2, 12\), got \(2, 3, 4\)"):
        layer.backward(np.zeros((2, 3, 4)))


# ---------------------------------------------------------------- Dense


def test_dense_classic_init_is_reproducible():
    a, b = Dense(50, 7, rng=3), Dense(50, 7, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a.W, b.W)
    expected = np.random.default_rng(3).standard_normal((50, 7)) / np.sqrt(50 / 2.0)
    np.testing.assert_array_equal(a.W, expected)
    np.testing.assert_array_equal(a.b, np.zeros((1, 7)))
    assert a.params[0] is a.W and a.params[1] is a.b
    assert not np.array_equal(Dense(50, 7, rng=4).W, a.W)


def test_dense_finite_differences(numerical_grad):
    rng = np.random.default_rng(4)
    layer = Dense(6, 4, rng=rng)
    layer.b[...] = rng.standard_normal(layer.b.shape)
    x = rng.standard_normal((5, 6))
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    dx, (dW, db) = layer.backward(dout)

    def f():
        return float(np.sum(layer.forward(x) * dout))

    np.testing.assert_allclose(dx, numerical_grad(f, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dW, numerical_grad(f, layer.W), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(db, numerical_grad(f, layer.b), rtol=1e-6, atol=1e-8)
    assert dW.shape == layer.W.shape and db.shape == (1, 4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_matches_torch_linear(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    layer = Dense(9, 5, dtype=dtype, rng=rng)
    layer.b[...] = rng.standard_normal(layer.b.shape)
    x = rng.standard_normal((7, 9)).astype(dtype)
    dout = rng.standard_normal((7, 5)).astype(dtype)
    out = layer.forward(x)
    dx, (dW, db) = layer.backward(dout)

    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(layer.W.T.copy(), requires_grad=True)  # torch stores (out, in)
    bt = torch.tensor(layer.b.ravel(), requires_grad=True)
    ot = torch.nn.functional.linear(xt, wt, bt)
    ot.backward(torch.tensor(dout))
    assert out.dtype == dtype and dx.dtype == dtype and dW.dtype == dtype
    np.testing.assert_allclose(out, ot.detach().numpy(), **tol(dtype))
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol(dtype))
    np.testing.assert_allclose(dW, wt.grad.numpy().T, **tol(dtype))
    np.testing.assert_allclose(db.ravel(), bt.grad.numpy(), **tol(dtype))


def test_dense_converts_input_to_its_dtype():
    layer = Dense(3, 2, dtype=np.float32, rng=0)
    out = layer.forward(np.ones((4, 3)))  # float64 in
    assert out.dtype == np.float32


@pytest.mark.parametrize(
    ("x", "error", "match"),
    [
        pytest.param(np.zeros((2, 5)), ValueError, "5 features per row .* in_features=4",
                     id="wrong-features"),
        pytest.param(np.zeros((2, 1, 2, 2)), ValueError, "Flaten|Flatten", id="4d-hint"),
        pytest.param(np.zeros(4), ValueError, r"Expected 2D X \(N, in_features\)", id="1d"),
        pytest.param(np.zeros((2, 4), dtype=np.int32), TypeError, "dtype int32", id="int"),
        pytest.param(np.zeros((2, 4), dtype=bool), TypeError, "dtype bool", id="bool"),
    ],
)
def test_dense_bad_input(x, error, match):
    with pytest.raises(error, match=match):
        Dense(4, 3, rng=0).forward(x)


def test_dense_bad_construction_and_backward():
    with pytest.raises(ValueError, match="in_features must be >= 1, got 0"):
        Dense(0, 3)
    with pytest.raises(TypeError, match="out_features must be an int"):
        Dense(3, 2.0)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        Dense(3, 2, dtype=np.int64)
    layer = Dense(3, 2, rng=0)
    with pytest.raises(BackwardBeforeForwardError, match="before Dense.forward"):
        layer.backward(np.zeros((1, 2)))
    layer.forward(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"forward output \(4, 2\), got \(4, 3\)"):
        layer.backward(np.zeros((4, 3)))
