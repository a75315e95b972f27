"""Transposed convolution: against PyTorch, the naive scatter loops, finite differences, and
bitwise across thread counts; its bad inputs."""

from __future__ import annotations

import numba
import numpy as np
import pytest

import numbaconv
from numbaconv import _lanes, _tiling
from numbaconv.reference import naive_conv_transpose2d_backward, naive_conv_transpose2d_forward

torch = pytest.importorskip("torch")

# (N, C_in, H, W, C_out, kernel, stride, padding, output_padding, groups, dilation)
CASES = [
    (2, 4, 5, 6, 3, 3, 1, 0, 0, 1, 1),
    (1, 3, 7, 7, 2, 4, 2, 1, 1, 1, 1),
    (2, 4, 6, 5, 6, 3, 2, 1, 0, 2, 2),
    (1, 2, 4, 4, 3, 3, 3, 0, 2, 1, 1),
    (1, 6, 5, 5, 4, 2, 1, 1, 0, 2, 3),
    (2, 8, 9, 9, 16, 4, 2, 1, 0, 1, 1),  # a DCGAN generator layer, shrunk
    (3, 2, 5, 5, 4, 3, 1, 0, 1, 2, 2),  # output_padding >= stride (< dilation)
    (1, 3, 4, 6, 5, 1, 2, 0, 1, 1, 1),  # 1x1
    (2, 3, 5, 4, 2, (2, 3), (2, 1), (1, 0), (1, 0), 1, (1, 2)),
    # DCGAN's output layer at batch 8: parallel lanes whose col2im adds into the stride phases
    (8, 64, 32, 32, 3, 4, 2, 1, 0, 1, 1),
    # Kernel = stride (U-Net's up-convolutions): the windows tile the output exactly once
    (2, 8, 6, 7, 4, 2, 2, 0, 0, 1, 1),
    (1, 4, 5, 3, 6, (3, 2), (3, 2), 0, 0, 2, 1),
    (2, 4, 5, 5, 4, 2, 2, 0, 1, 1, 1),  # output_padding: a last row and column no window has
    (1, 8, 96, 96, 8, 2, 2, 0, 0, 1, 1),  # tiles of rows: only the first tile starts a plane
    # A 1x1 input (a GAN generator's first layer): one window covers the output, a product
    (2, 10, 1, 1, 16, 4, 1, 0, 0, 1, 1),
    (3, 4, 1, 1, 6, (3, 2), 2, 0, 0, 2, 1),
    # 1x1 inputs that are not plain products: padding, dilation, output padding
    (2, 4, 1, 1, 6, 4, 1, 1, 0, 1, 1),
    (1, 3, 1, 1, 2, 3, 1, 0, 0, 1, 2),
    (2, 3, 1, 1, 4, 3, 2, 0, 1, 1, 1),
]


def _case_id(case) -> str:
    n, c, h, w, k, f, s, p, op, g, d = case
    return f"N{n}C{c}-{h}x{w}-Co{k}-k{f}-s{s}-p{p}-op{op}-g{g}-d{d}".replace(" ", "")


def _data(case, dtype, seed=0):
    n, c, h, w, k, f, *_, g, _ = case
    fh, fw = (f, f) if isinstance(f, int) else f
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((c, k // g, fh, fw)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    return x, wt, b


def _args(case):
    *_, s, p, op, g, d = case
    return s, p, op, g, d


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_matches_pytorch(case, dtype, assert_close):
    x, w, b = _data(case, dtype)
    s, p, op, g, d = _args(case)
    out, cache = numbaconv.conv_transpose2d_forward(x, w, b, s, p, op, g, d)
    dout = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
    dx, dw, db = numbaconv.conv_transpose2d_backward(dout, cache)
    tx, tw, tb = (torch.tensor(a.astype(np.float64), requires_grad=True) for a in (x, w, b))
    expected = torch.nn.functional.conv_transpose2d(tx, tw, tb, s, p, op, g, d)
    expected.backward(torch.tensor(dout.astype(np.float64)))
    assert_close(out, expected.detach().numpy(), dtype, "out")
    assert_close(dx, tx.grad.numpy(), dtype, "dx")
    assert_close(dw, tw.grad.numpy(), dtype, "dw")
    assert_close(db, tb.grad.numpy(), dtype, "db")
    assert np.array_equal(numbaconv.conv_transpose2d(x, w, b, s, p, op, g, d), out)
    assert out.dtype == dx.dtype == dw.dtype == db.dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape", [(2, 3, 8, 12, 4), (1, 6, 64, 64, 4), (3, 2, 9, 6, 3)],
                         ids=["N2-8x12-k4", "N1-64x64-k4", "N3-9x6-k3"])
def test_patchify_convolution_matches_pytorch(shape, dtype, assert_close):
    """A convolution whose kernel equals its stride (a patch embedding): its input gradient
    is the same exact tiling as a transposed up-convolution's output."""
    n, c, h, w, f = shape
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((5, c, f, f)).astype(dtype)
    out, cache = numbaconv.conv2d_forward(x, wt, None, f, 0)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx, dw, _ = numbaconv.conv2d_backward(dout, cache)
    tx, tw = (torch.tensor(a.astype(np.float64), requires_grad=True) for a in (x, wt))
    expected = torch.nn.functional.conv2d(tx, tw, None, f, 0)
    expected.backward(torch.tensor(dout.astype(np.float64)))
    assert_close(out, expected.detach().numpy(), dtype, "out")
    assert_close(dx, tx.grad.numpy(), dtype, "dx")
    assert_close(dw, tw.grad.numpy(), dtype, "dw")


@pytest.mark.parametrize("case", CASES[:5], ids=[_case_id(c) for c in CASES[:5]])
def test_matches_the_naive_scatter_loops(case, assert_close):
    x, w, b = _data(case, np.float64)
    s, p, op, g, d = _args(case)
    out, cache = numbaconv.conv_transpose2d_forward(x, w, b, s, p, op, g, d)
    assert_close(out, naive_conv_transpose2d_forward(x, w, b, s, p, op, g, d), np.float64,
                 "out")
    dout = np.random.default_rng(2).standard_normal(out.shape)
    grads = numbaconv.conv_transpose2d_backward(dout, cache)
    for got, want, name in zip(grads, naive_conv_transpose2d_backward(dout, x, w, s, p, op, g, d),
                               ("dx", "dw", "db"), strict=True):
        assert_close(got, want, np.float64, name)


def test_gradients_match_finite_differences():
    case = (1, 2, 4, 3, 3, 3, 2, 1, 1, 1, 1)
    x, w, b = _data(case, np.float64)
    s, p, op, g, d = _args(case)
    out, cache = numbaconv.conv_transpose2d_forward(x, w, b, s, p, op, g, d)
    dout = np.random.default_rng(3).standard_normal(out.shape)
    dx, dw, _ = numbaconv.conv_transpose2d_backward(dout, cache)

    def loss(xx, ww):
        return float(np.sum(numbaconv.conv_transpose2d(xx, ww, b, s, p, op, g, d) * dout))

    eps = 1e-6
    for arr, grad, name in ((x, dx, "dx"), (w, dw, "dw")):
        for index in [(0, 1, 2, 1), (0, 0, 0, 0), tuple(i - 1 for i in arr.shape)]:
            plus, minus = arr.copy(), arr.copy()
            plus[index] += eps
            minus[index] -= eps
            args_p = (plus, w) if name == "dx" else (x, plus)
            args_m = (minus, w) if name == "dx" else (x, minus)
            numeric = (loss(*args_p) - loss(*args_m)) / (2 * eps)
            assert abs(numeric - grad[index]) <= 1e-7 * max(1.0, abs(numeric)), (name, index)


def test_caller_writing_into_x_after_forward_does_not_change_the_gradients():
    x, w, b = _data(CASES[1], np.float64)
    s, p, op, g, d = _args(CASES[1])
    out, cache = numbaconv.conv_transpose2d_forward(x, w, b, s, p, op, g, d)
    dout = np.ones_like(out)
    before = numbaconv.conv_transpose2d_backward(dout, cache)
    x[...] = 0
    after = numbaconv.conv_transpose2d_backward(dout, cache)
    assert all(np.array_equal(a, c) for a, c in zip(before, after, strict=True))


def test_profiled_calls_give_the_same_results():
    """Profiling compiles the lanes with their clocks: the same numbers, every lane kind."""
    from numbaconv._stages import profile_stages

    for case in (CASES[5], CASES[-1]):
        x, w, b = _data(case, np.float64)
        out, cache = numbaconv.conv_transpose2d_forward(x, w, b, *_args(case))
        grads = numbaconv.conv_transpose2d_backward(np.ones_like(out), cache)
        with profile_stages():
            out_p, cache_p = numbaconv.conv_transpose2d_forward(x, w, b, *_args(case))
            grads_p = numbaconv.conv_transpose2d_backward(np.ones_like(out), cache_p)
        assert np.array_equal(out, out_p)
        assert all(np.array_equal(a, c) for a, c in zip(grads, grads_p, strict=True))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_bitwise_identical_for_any_thread_count(monkeypatch, dtype):
    """Lanes of little work, so that the calls are cut into many lanes (rows, filters)."""
    monkeypatch.setattr(_lanes, "SMALL_CALL", 0)
    monkeypatch.setattr(_lanes, "LANE_WORK", 1)
    monkeypatch.setattr(_tiling, "POSITIONS_PER_LANE", 1)
    monkeypatch.setattr(_tiling, "BACKWARD_POSITIONS_PER_LANE", 1)
    results = []
    previous = numba.get_num_threads()
    try:
        for threads in sorted({1, 2, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            run = []
            for case in (CASES[1], CASES[5], (1, 80, 3, 3, 64, 4, 2, 1, 0, 1, 1),
                         (3, 16, 12, 10, 8, 2, 2, 0, 0, 1, 1),
                         (8, 100, 1, 1, 64, 4, 1, 0, 0, 1, 1)):  # a product
                x, w, b = _data(case, dtype)
                out, cache = numbaconv.conv_transpose2d_forward(x, w, b, *_args(case))
                run += [out, *numbaconv.conv_transpose2d_backward(np.ones_like(out), cache)]
            results.append(run)
    finally:
        numba.set_num_threads(previous)
    for run in results[1:]:
        assert all(np.array_equal(a, c) for a, c in zip(results[0], run, strict=True))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_one_by_one_input_is_a_product(monkeypatch, dtype, assert_close):
    """DCGAN's first layer (latent vector to 512 maps of 4x4) runs as matrix products, which
    agree with PyTorch, with a plain convolution of the padded input and with the general
    transposed path."""
    case = (3, 100, 1, 1, 512, 4, 1, 0, 0, 1, 1)
    x, w, b = _data(case, dtype)
    out, cache = numbaconv.conv_transpose2d_forward(x, w, b, *_args(case))
    dout = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
    grads = numbaconv.conv_transpose2d_backward(dout, cache)
    tx, tw, tb = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, w, b))
    expected = torch.nn.functional.conv_transpose2d(tx, tw, tb, *_args(case))
    expected.backward(torch.from_numpy(dout))
    assert_close(out, expected.detach().numpy(), dtype)
    for got, want in zip(grads, (tx.grad, tw.grad, tb.grad), strict=True):
        assert_close(got, want.numpy(), dtype)
    assert np.array_equal(numbaconv.conv_transpose2d(x, w, b, *_args(case)), out)
    from numbaconv import transposed

    assert transposed._is_projection(cache.geometry)
    # The same numbers as the full correlation with the flipped kernels, by the general path
    full = numbaconv.conv2d(np.pad(x, ((0, 0), (0, 0), (3, 3), (3, 3))),
                            np.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]), b)
    assert_close(out, full, dtype)
    # and as the general transposed path, forward and backward
    monkeypatch.setattr(transposed, "_is_projection", lambda geom: False)
    general, general_cache = numbaconv.conv_transpose2d_forward(x, w, b, *_args(case))
    assert_close(out, general, dtype)
    for got, want in zip(grads, numbaconv.conv_transpose2d_backward(dout, general_cache),
                         strict=True):
        assert_close(got, want, dtype)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"output_padding": 2, "stride": 2}, ValueError, "output padding must be smaller"),
        ({"output_padding": (0, 1)}, ValueError, "output padding must be smaller"),
        ({"padding": 5}, ValueError, "Output size is too small"),
        ({"groups": 0}, ValueError, "non-positive groups"),
        ({"groups": 3}, ValueError, "must be divisible by groups"),
        ({"groups": 1.0}, TypeError, "groups must be an int"),
        ({"stride": 0}, ValueError, "stride"),
        ({"padding_mode": "reflect"}, TypeError, "padding_mode"),
    ],
    ids=["op-ge-stride", "op-ge-stride-1", "output-too-small", "groups-0", "groups-3",
         "groups-float", "stride-0", "mode"],
)
def test_bad_input_is_refused_clearly(kwargs, error, message):
    x = np.zeros((1, 4, 3, 3))
    w = np.zeros((4, 2, 3, 3))
    with pytest.raises(error, match=message):
        numbaconv.conv_transpose2d_forward(x, w, **kwargs)


def test_channels_must_match_the_weights():
    with pytest.raises(ValueError, match="expected input.*to have 4 channels, but got 3"):
        numbaconv.conv_transpose2d(np.zeros((1, 3, 3, 3)), np.zeros((4, 2, 3, 3)))
    out, cache = numbaconv.conv_transpose2d_forward(np.zeros((1, 4, 3, 3)), np.zeros((4, 2, 3, 3)))
    with pytest.raises(ValueError, match="dout must have the shape"):
        numbaconv.conv_transpose2d_backward(np.zeros((1, 2, 4, 4)), cache)
    with pytest.raises(TypeError, match="ConvTransposeCache"):
        numbaconv.conv_transpose2d_backward(out, object())
