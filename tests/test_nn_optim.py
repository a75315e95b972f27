"""SGD and Adam: step-by-step agreement with torch.optim, in-place updates, validation."""

from __future__ import annotations

import numpy as np
import pytest

from numbaconv.nn import SGD, Adam

SHAPES = [(4, 3, 2, 2), (4, 1), (5,)]


def make_params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def grad_sequence(dtype, steps, seed=1):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(steps)]


def run_torch(torch_cls, params, grads, **kwargs):
    import torch

    tensors = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    opt = torch_cls(tensors, **kwargs)
    for step in grads:
        for t, g in zip(tensors, step, strict=True):
            t.grad = torch.tensor(g)
        opt.step()
    return [t.detach().numpy() for t in tensors]


def run_ours(cls, params, grads, **kwargs):
    opt = cls(params, **kwargs)
    ids = [id(p) for p in params]
    for step in grads:
        opt.step(step)
    assert [id(p) for p in opt.params] == ids  # updated in place, never rebound
    return params


SGD_CASES = [
    pytest.param({"lr": 0.1}, id="plain"),
    pytest.param({"lr": 0.05, "momentum": 0.9}, id="momentum"),
    pytest.param({"lr": 0.05, "momentum": 0.9, "nesterov": True}, id="nesterov"),
    pytest.param({"lr": 0.05, "momentum": 0.5, "weight_decay": 1e-2}, id="weight_decay"),
]
ADAM_CASES = [
    pytest.param({}, id="defaults"),
    pytest.param({"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6}, id="custom"),
    pytest.param({"lr": 0.003, "weight_decay": 1e-2}, id="weight_decay"),
]
DTYPES = [pytest.param(np.float64, id="float64"), pytest.param(np.float32, id="float32")]


def tol(dtype):
    return {"rtol": 1e-12, "atol": 1e-14} if dtype == np.float64 else {"rtol": 2e-5, "atol": 2e-6}


@pytest.mark.parametrize("steps", [1, 6], ids=["1step", "6steps"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", SGD_CASES)
def test_sgd_matches_torch(kwargs, dtype, steps):
    torch = pytest.importorskip("torch")
    params, grads = make_params(dtype), grad_sequence(dtype, steps)
    expected = run_torch(torch.optim.SGD, params, grads, **kwargs)
    ours = run_ours(SGD, params, grads, **kwargs)
    for p, e in zip(ours, expected, strict=True):
        assert p.dtype == dtype
        np.testing.assert_allclose(p, e, **tol(dtype))


@pytest.mark.parametrize("steps", [1, 6], ids=["1step", "6steps"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", ADAM_CASES)
def test_adam_matches_torch(kwargs, dtype, steps):
    torch = pytest.importorskip("torch")
    params, grads = make_params(dtype), grad_sequence(dtype, steps)
    expected = run_torch(torch.optim.Adam, params, grads, **kwargs)
    ours = run_ours(Adam, params, grads, **kwargs)
    for p, e in zip(ours, expected, strict=True):
        assert p.dtype == dtype
        np.testing.assert_allclose(p, e, **tol(dtype))


def test_sgd_by_hand():
    p = [np.array([1.0, 2.0])]
    opt = SGD(p, lr=0.5, momentum=0.5)
    opt.step([np.array([1.0, 1.0])])  # v = g
    np.testing.assert_array_equal(p[0], [0.5, 1.5])
    opt.step([np.array([1.0, 0.0])])  # v = 0.5 v + g = [1.5, 0.5]
    np.testing.assert_array_equal(p[0], [-0.25, 1.25])


def test_adam_first_step_is_lr_times_sign():
    p = [np.array([0.0, 0.0, 0.0])]
    Adam(p, lr=0.1, eps=0.0).step([np.array([3.0, -0.5, 2e-3])])
    np.testing.assert_allclose(p[0], [-0.1, 0.1, -0.1], rtol=1e-12)


def test_step_accepts_other_float_precision_and_tuple():
    p = [np.zeros(3, dtype=np.float32)]
    SGD(p, lr=1.0).step((np.ones(3, dtype=np.float64),))
    assert p[0].dtype == np.float32
    np.testing.assert_array_equal(p[0], [-1.0, -1.0, -1.0])


@pytest.mark.parametrize(
    ("factory", "error", "match"),
    [
        pytest.param(lambda p: SGD(p, lr=-1.0), ValueError, r"lr must be in \[0, inf\)",
                     id="sgd-negative-lr"),
        pytest.param(lambda p: SGD(p, lr="0.1"), TypeError, "lr must be a real number",
                     id="sgd-string-lr"),
        pytest.param(lambda p: SGD(p, momentum=1.0), ValueError, r"momentum must be in \[0, 1\)",
                     id="sgd-momentum-1"),
        pytest.param(lambda p: SGD(p, nesterov=True), ValueError, "requires momentum > 0",
                     id="sgd-nesterov-no-momentum"),
        pytest.param(lambda p: Adam(p, lr=float("nan")), ValueError, "lr must be in",
                     id="adam-nan-lr"),
        pytest.param(lambda p: Adam(p, betas=(0.9, 1.0)), ValueError, r"betas\[1\] must be in",
                     id="adam-beta2-1"),
        pytest.param(lambda p: Adam(p, betas=0.9), ValueError, "betas must be a pair",
                     id="adam-beta-scalar"),
        pytest.param(lambda p: Adam(p, eps=-1e-8), ValueError, "eps must be in",
                     id="adam-negative-eps"),
        pytest.param(lambda p: Adam(p[0]), TypeError, "params must be a list", id="array"),
        pytest.param(lambda p: Adam([np.zeros(2, dtype=int)]), TypeError,
                     r"params\[0\] must be a float32 or float64 array, got int64", id="int"),
        pytest.param(lambda p: Adam([[1.0, 2.0]]), TypeError,
                     r"params\[0\] must be a NumPy array, got list", id="list-param"),
    ],
)
def test_bad_construction(factory, error, match):
    with pytest.raises(error, match=match):
        factory([np.zeros(3)])


def test_read_only_param_rejected():
    p = np.zeros(3)
    p.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        SGD([p])


@pytest.mark.parametrize("cls", [SGD, Adam], ids=["sgd", "adam"])
def test_bad_gradients(cls):
    opt = cls([np.zeros((2, 3)), np.zeros(4)])
    with pytest.raises(ValueError, match="got 1 gradients for 2 params"):
        opt.step([np.zeros((2, 3))])
    with pytest.raises(ValueError, match=r"grads\[1\] has shape \(3,\), expected .* \(4,\)"):
        opt.step([np.zeros((2, 3)), np.zeros(3)])
    with pytest.raises(TypeError, match=r"grads\[0\] must be a float array, got int64"):
        opt.step([np.zeros((2, 3), dtype=int), np.zeros(4)])
    with pytest.raises(TypeError, match="grads must be a list"):
        opt.step(np.zeros(4))
    assert opt.steps == 0
