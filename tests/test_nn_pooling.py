"""MaxPool2d and AvgPool2d: loop oracle, finite differences, PyTorch, ties, validation."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from numbaconv._validation import BackwardBeforeForwardError
from numbaconv.nn import AvgPool2d, MaxPool2d

# (kernel_size, stride, padding): non-overlapping, overlapping, gaps, rectangular, padded.
GEOMETRIES = [
    pytest.param(2, None, 0, id="k2-default_stride"),
    pytest.param(2, 2, 0, id="k2-s2"),
    pytest.param(3, 1, 1, id="k3-s1-p1-overlap"),
    pytest.param(3, 2, 1, id="k3-s2-p1-overlap"),
    pytest.param(3, 2, 0, id="k3-s2-floor"),
    pytest.param(2, 3, 0, id="k2-s3-gaps"),
    pytest.param((3, 2), (1, 3), (1, 0), id="k3x2-s1x3-p1x0"),
    pytest.param((2, 4), (2, 1), (1, 2), id="k2x4-s2x1-p1x2"),
]
DTYPES = [pytest.param(np.float64, id="float64"), pytest.param(np.float32, id="float32")]


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def loop_pool(x, kernel, stride, padding, mode, count_include_pad=True):
    """Obviously right pooling: explicit loops over every window."""
    (kh, kw), (ph, pw) = _pair(kernel), _pair(padding)
    sh, sw = _pair(kernel if stride is None else stride)
    n, c, h, w = x.shape
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    out = np.empty((n, c, ho, wo), dtype=x.dtype)
    for i in range(ho):
        for j in range(wo):
            ys = [y for y in range(i * sh - ph, i * sh - ph + kh) if 0 <= y < h]
            xs = [z for z in range(j * sw - pw, j * sw - pw + kw) if 0 <= z < w]
            win = x[:, :, ys][:, :, :, xs]
            if mode == "max":
                out[:, :, i, j] = win.max(axis=(2, 3))
            else:
                div = kh * kw if count_include_pad else len(ys) * len(xs)
                out[:, :, i, j] = win.sum(axis=(2, 3)) / div
    return out


def make_layer(mode, kernel, stride, padding, count_include_pad=True):
    if mode == "max":
        return MaxPool2d(kernel, stride, padding)
    return AvgPool2d(kernel, stride, padding, count_include_pad=count_include_pad)


MODES = [pytest.param("max", True, id="max"), pytest.param("avg", True, id="avg"),
         pytest.param("avg", False, id="avg-exclude_pad")]


@pytest.mark.parametrize(("mode", "cip"), MODES)
@pytest.mark.parametrize(("kernel", "stride", "padding"), GEOMETRIES)
def test_forward_matches_loop_oracle(mode, cip, kernel, stride, padding):
    x = np.random.default_rng(1).standard_normal((2, 3, 7, 9))
    out = make_layer(mode, kernel, stride, padding, cip).forward(x)
    expected = loop_pool(x, kernel, stride, padding, mode, cip)
    np.testing.assert_allclose(out, expected, rtol=1e-13, atol=1e-15)
    assert out.flags.c_contiguous and out.dtype == np.float64


@pytest.mark.parametrize(("mode", "cip"), MODES)
@pytest.mark.parametrize(("kernel", "stride", "padding"), GEOMETRIES)
def test_backward_matches_finite_differences(numerical_grad, mode, cip, kernel, stride, padding):
    rng = np.random.default_rng(2)
    # A permutation of well-separated values: no ties, so max pooling is differentiable.
    x = rng.permutation(2 * 2 * 6 * 7).reshape(2, 2, 6, 7) * 0.01 - 1.0
    layer = make_layer(mode, kernel, stride, padding, cip)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    dx, grads = layer.backward(dout)
    assert grads == [] and layer.params == []
    probe = make_layer(mode, kernel, stride, padding, cip)
    num = numerical_grad(lambda: float(np.sum(probe.forward(x) * dout)), x)
    np.testing.assert_allclose(dx, num, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("mode", "cip"), MODES)
@pytest.mark.parametrize(("kernel", "stride", "padding"), GEOMETRIES)
def test_matches_torch(dtype, mode, cip, kernel, stride, padding):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 8, 9)).astype(dtype)
    layer = make_layer(mode, kernel, stride, padding, cip)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx, _ = layer.backward(dout)

    xt = torch.tensor(x, requires_grad=True)
    st = kernel if stride is None else stride
    if mode == "max":
        ot = F.max_pool2d(xt, kernel, st, padding)
    else:
        ot = F.avg_pool2d(xt, kernel, st, padding, count_include_pad=cip)
    ot.backward(torch.tensor(dout))
    tol = {"rtol": 1e-12, "atol": 1e-14} if dtype == np.float64 else {"rtol": 1e-5, "atol": 1e-6}
    assert out.dtype == dtype and dx.dtype == dtype
    np.testing.assert_allclose(out, ot.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)


def test_max_ties_go_to_first_max_in_row_major_order():
    # Overlapping 2x2 windows, stride 1, on a constant plane: every window's first element
    # (its top-left corner) receives the gradient.
    x = np.zeros((1, 1, 3, 3))
    layer = MaxPool2d(2, stride=1)
    layer.forward(x)
    dx, _ = layer.backward(np.ones((1, 1, 2, 2)))
    expected = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(dx[0, 0], expected)


def test_max_tie_within_window_prefers_earlier_row_then_column():
    x = np.array([[0.0, 5.0, 5.0], [5.0, 1.0, 5.0], [0.0, 0.0, 0.0]])[None, None]
    layer = MaxPool2d(3)
    layer.forward(x)
    dx, _ = layer.backward(np.full((1, 1, 1, 1), 2.0))
    expected = np.zeros((3, 3))
    expected[0, 1] = 2.0  # first 5 in row-major order
    np.testing.assert_array_equal(dx[0, 0], expected)


def test_max_overlapping_windows_accumulate_on_shared_argmax():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 1.0  # the centre is the max of all four overlapping 2x2 windows
    layer = MaxPool2d(2, stride=1)
    layer.forward(x)
    dout = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 2, 2)
    dx, _ = layer.backward(dout)
    assert dx[0, 0, 1, 1] == 10.0 and np.count_nonzero(dx) == 1


def test_max_padding_is_never_selected():
    x = -1.0 - np.random.default_rng(4).random((1, 2, 4, 4))  # all negative
    out = MaxPool2d(3, stride=1, padding=1).forward(x)
    assert np.all(out < 0)
    np.testing.assert_array_equal(out, loop_pool(x, 3, 1, 1, "max"))


def test_max_nan_propagates():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 0, 1] = np.nan
    layer = MaxPool2d(2)
    out = layer.forward(x)
    assert np.isnan(out[0, 0, 0, 0]) and not np.isnan(out[0, 0, 1:, 1:]).any()
    dx, _ = layer.backward(np.ones_like(out))
    assert dx[0, 0, 0, 1] == 1.0 and dx[0, 0, 1, 1] == 0.0


@pytest.mark.parametrize("layer", [MaxPool2d(3, 2, 1), AvgPool2d(3, 1, 1)],
                         ids=["max", "avg"])
def test_bitwise_identical_across_thread_counts(layer):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 5, 11, 10)).astype(np.float32)
    results = []
    before = numba.get_num_threads()
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            out = layer.forward(x)
            dx, _ = layer.backward(np.ones_like(out))
            results.append((out, dx))
    finally:
        numba.set_num_threads(before)
    for out, dx in results[1:]:
        assert np.array_equal(out, results[0][0]) and np.array_equal(dx, results[0][1])


def test_accepts_non_contiguous_and_keeps_dtype():
    x = np.random.default_rng(6).standard_normal((3, 2, 8, 8)).astype(np.float32)
    view = x.transpose(1, 0, 2, 3)[:, :, ::-1]  # (2, 3, 8, 8), non-contiguous
    layer = MaxPool2d((2, 2))
    out = layer.forward(view)
    np.testing.assert_array_equal(out, loop_pool(np.ascontiguousarray(view), 2, None, 0, "max"))
    assert out.dtype == np.float32
    dx, _ = layer.backward(np.ones(out.shape, dtype=np.float64))  # converted to float32
    assert dx.dtype == np.float32 and dx.shape == view.shape


def test_empty_batch():
    layer = MaxPool2d(2)
    out = layer.forward(np.zeros((0, 3, 4, 4)))
    assert out.shape == (0, 3, 2, 2)
    dx, _ = layer.backward(out)
    assert dx.shape == (0, 3, 4, 4)


def test_output_shape_and_repr():
    layer = AvgPool2d((3, 2), stride=(2, 1), padding=(1, 0))
    assert layer.output_shape((5, 3, 9, 6)) == (5, 3, 5, 5)
    assert "AvgPool2d(kernel_size=(3, 2)" in repr(layer)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        pytest.param({"kernel_size": 0}, ValueError, "kernel_size must be >= 1", id="kernel0"),
        pytest.param({"kernel_size": 2, "stride": 0}, ValueError, "stride must be >= 1",
                     id="stride0"),
        pytest.param({"kernel_size": 2, "stride": (1, -1)}, ValueError, "stride must be >= 1",
                     id="stride-negative"),
        pytest.param({"kernel_size": 2, "padding": -1}, ValueError, "non-negative",
                     id="padding-negative"),
        pytest.param({"kernel_size": 2, "padding": 2}, ValueError, "at most half",
                     id="padding-too-large"),
        pytest.param({"kernel_size": 2.5}, TypeError, "kernel_size must be an int",
                     id="kernel-float"),
        pytest.param({"kernel_size": (2, 2, 2)}, ValueError, "pair", id="kernel-triple"),
        pytest.param({"kernel_size": True}, TypeError, "kernel_size", id="kernel-bool"),
    ],
)
@pytest.mark.parametrize("cls", [MaxPool2d, AvgPool2d], ids=["max", "avg"])
def test_bad_hyperparameters(cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        cls(**kwargs)


def test_bad_count_include_pad():
    with pytest.raises(TypeError, match="count_include_pad must be a bool"):
        AvgPool2d(2, count_include_pad="yes")


@pytest.mark.parametrize(
    ("x", "error", "match"),
    [
        pytest.param(np.zeros((3, 4, 4)), ValueError, r"Expected 4D X \(N, C, H, W\)",
                     id="ndim3"),
        pytest.param(np.zeros((1, 1, 4, 4), dtype=np.int64), TypeError, "dtype int64",
                     id="int"),
        pytest.param(np.zeros((1, 1, 4, 4), dtype=np.complex128), TypeError, "complex128",
                     id="complex"),
        pytest.param(np.zeros((1, 1, 4, 4), dtype=bool), TypeError, "dtype bool", id="bool"),
        pytest.param(np.zeros((1, 1, 2, 5)), ValueError, r"window \(3 x 3\) is larger",
                     id="window-too-large"),
        pytest.param(np.zeros((1, 0, 4, 4)), ValueError, "positive length", id="zero-channels"),
        pytest.param("not an array", TypeError, "float32 or float64", id="string"),
    ],
)
@pytest.mark.parametrize("cls", [MaxPool2d, AvgPool2d], ids=["max", "avg"])
def test_bad_input(cls, x, error, match):
    with pytest.raises(error, match=match):
        cls(3, stride=1).forward(x)


@pytest.mark.parametrize("cls", [MaxPool2d, AvgPool2d], ids=["max", "avg"])
def test_backward_before_forward(cls):
    with pytest.raises(BackwardBeforeForwardError, match="before .*forward"):
        cls(2).backward(np.zeros((1, 1, 1, 1)))
    with pytest.raises(ValueError):  # BackwardBeforeForwardError is also a ValueError
        cls(2).backward(np.zeros((1, 1, 1, 1)))


@pytest.mark.parametrize("cls", [MaxPool2d, AvgPool2d], ids=["max", "avg"])
def test_dout_of_wrong_shape(cls):
    layer = cls(2)
    layer.forward(np.zeros((2, 3, 4, 4)))
    with pytest.raises(ValueError, match=r"forward output \(2, 3, 2, 2\), got \(2, 3, 2, 3\)"):
        layer.backward(np.zeros((2, 3, 2, 3)))
    with pytest.raises(TypeError, match="dtype int64"):
        layer.backward(np.zeros((2, 3, 2, 2), dtype=np.int64))
