"""SoftmaxCrossEntropy: PyTorch, finite differences, stability, label validation."""

from __future__ import annotations

import numpy as np
import pytest

from numbaconv._validation import BackwardBeforeForwardError
from numbaconv.nn import SoftmaxCrossEntropy


def reference_loss(z, y):
    z = z.astype(np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(p[np.arange(len(y)), y])))


def test_value_and_gradient_by_hand():
    z = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    y = np.array([2, 0])
    loss, grad = SoftmaxCrossEntropy()(z, y)
    assert loss == pytest.approx(reference_loss(z, y), rel=1e-14)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    p[[0, 1], y] -= 1
    np.testing.assert_allclose(grad, p / 2, rtol=1e-14)
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-16)


def test_finite_differences():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((6, 5)) * 3
    y = rng.integers(0, 5, 6)
    fn = SoftmaxCrossEntropy()
    _, grad = fn(z, y)
    num = np.zeros_like(z)
    eps = 1e-6
    for idx in np.ndindex(z.shape):
        old = z[idx]
        z[idx] = old + eps
        plus = fn(z, y)[0]
        z[idx] = old - eps
        minus = fn(z, y)[0]
        z[idx] = old
        num[idx] = (plus - minus) / (2 * eps)
    np.testing.assert_allclose(grad, num, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("scale", [1.0, 1e4], ids=["moderate", "huge-logits"])
def test_matches_torch_cross_entropy(dtype, scale):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    z = (rng.standard_normal((16, 10)) * scale).astype(dtype)
    y = rng.integers(0, 10, 16)
    fn = SoftmaxCrossEntropy()
    loss, grad = fn(z, y)
    zt = torch.tensor(z, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(zt, torch.tensor(y))
    lt.backward()
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert grad.dtype == dtype and grad.shape == z.shape
    assert loss == pytest.approx(lt.item(), rel=rtol)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=rtol, atol=rtol * 1e-2)
    assert fn.backward() is grad


def test_extreme_logits_are_stable():
    z = np.array([[1000.0, -1000.0], [-1e300, 1e300]])
    loss, grad = SoftmaxCrossEntropy()(z, np.array([0, 0]))
    assert np.isfinite(grad).all()
    # Row 0 is right with certainty (loss 0), row 1 is wrong by a margin of 2e300.
    assert loss == pytest.approx(1e300, rel=1e-12)
    np.testing.assert_allclose(grad, [[0.0, 0.0], [-0.5, 0.5]], atol=1e-300)


def test_unsigned_labels_accepted():
    z = np.zeros((3, 4))
    loss, _ = SoftmaxCrossEntropy()(z, np.array([0, 3, 1], dtype=np.uint8))
    assert loss == pytest.approx(np.log(4.0))


@pytest.mark.parametrize(
    ("logits", "labels", "error", "match"),
    [
        pytest.param(np.zeros((3, 4)), np.array([0, 4, 1]), ValueError,
                     r"labels must be in \[0, 3\] for 4 classes, got label 4", id="label-too-big"),
        pytest.param(np.zeros((3, 4)), np.array([0, -1, 1]), ValueError, "got label -1",
                     id="label-negative"),
        pytest.param(np.zeros((3, 4)), np.array([0.0, 1.0, 2.0]), TypeError,
                     "integer array .* got dtype float64", id="float-labels"),
        pytest.param(np.zeros((3, 4)), np.array([True, False, True]), TypeError,
                     "dtype bool", id="bool-labels"),
        pytest.param(np.zeros((3, 4)), np.array([0, 1]), ValueError,
                     r"labels must have shape \(3,\)", id="labels-too-short"),
        pytest.param(np.zeros((3, 4)), np.zeros((3, 1), dtype=int), ValueError,
                     r"got shape \(3, 1\)", id="labels-2d"),
        pytest.param(np.zeros(4), np.array([1]), ValueError, r"Expected 2D logits", id="1d"),
        pytest.param(np.zeros((3, 4), dtype=int), np.array([0, 1, 2]), TypeError,
                     "dtype int64", id="int-logits"),
        pytest.param(np.zeros((0, 4)), np.zeros(0, dtype=int), ValueError,
                     "at least one row", id="empty"),
    ],
)
def test_bad_arguments(logits, labels, error, match):
    with pytest.raises(error, match=match):
        SoftmaxCrossEntropy()(logits, labels)


def test_backward_before_forward():
    with pytest.raises(BackwardBeforeForwardError, match="before SoftmaxCrossEntropy.forward"):
        SoftmaxCrossEntropy().backward()
