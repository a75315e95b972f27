"""Input layouts, empty batches, workspace chunking and the pointwise (1x1) path.

Whatever the memory layout, write flag or byte order of the inputs, results must be bitwise
identical to those for the plain C-contiguous native array; so must every workspace budget.
"""

from __future__ import annotations

import numpy as np
import pytest

import numbaconv
from numbaconv.reference import (
    FancyConv,
    naive_conv2d_backward,
    naive_conv2d_forward,
)

DTYPES = (np.float64, np.float32)
TAG = {np.dtype(np.float64): "f64", np.dtype(np.float32): "f32"}
HP = {"stride": (2, 1), "padding": (1, 2), "dilation": (1, 2)}


def _noncontig_strided(a: np.ndarray) -> np.ndarray:
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
    big[..., ::2] = a
    view = big[..., ::2]
    assert not view.flags.c_contiguous
    return view


def _fortran(a: np.ndarray) -> np.ndarray:
    f = np.asfortranarray(a)
    assert not f.flags.c_contiguous or a.ndim < 2
    return f


def _transposed_view(a: np.ndarray) -> np.ndarray:
    """Same values, stored with the last two axes swapped (1-D: a reversed view)."""
    if a.ndim < 2:
        return _reversed_view(a)
    stored = np.ascontiguousarray(np.swapaxes(a, -1, -2))
    return np.swapaxes(stored, -1, -2)


def _reversed_view(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a[..., ::-1])[..., ::-1]


def _readonly(a: np.ndarray) -> np.ndarray:
    r = a.copy()
    r.setflags(write=False)
    return r


def _byteswapped(a: np.ndarray) -> np.ndarray:
    swapped = a.astype(a.dtype.newbyteorder(">" if a.dtype.byteorder != ">" else "<"))
    assert not swapped.dtype.isnative
    return swapped


def _unaligned(a: np.ndarray) -> np.ndarray:
    buf = bytearray(a.nbytes + 1)
    u = np.frombuffer(buf, dtype=a.dtype, offset=1, count=a.size).reshape(a.shape)
    u[...] = a
    assert not u.flags.aligned
    return u


def _readonly_byteswapped_noncontig(a: np.ndarray) -> np.ndarray:
    r = _noncontig_strided(_byteswapped(a))
    r.setflags(write=False)
    return r


VARIANTS = {
    "strided": _noncontig_strided,
    "fortran": _fortran,
    "transposed": _transposed_view,
    "negstride": _reversed_view,
    "readonly": _readonly,
    "byteswapped": _byteswapped,
    "ro-bs-strided": _readonly_byteswapped_noncontig,
    "unaligned": _unaligned,
}


def _data(rng, dtype, n=3, c=2, h=7, w=6, k=3, fh=3, fw=2):
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((k, c, fh, fw)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    return x, wt, b


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: TAG[np.dtype(d)])
def test_input_layouts_give_identical_results(variant, dtype, rng):
    make = VARIANTS[variant]
    x, w, b = _data(rng, dtype)
    out, cache = numbaconv.conv2d_forward(x, w, b, **HP)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx, dw, db = numbaconv.conv2d_backward(dout, cache)

    vx, vw, vb, vdout = make(x), make(w), make(b), make(dout)
    assert np.array_equal(vx, x) and np.array_equal(vw, w) and np.array_equal(vdout, dout)
    out2, cache2 = numbaconv.conv2d_forward(vx, vw, vb, **HP)
    assert out2.dtype == np.dtype(dtype) and out2.dtype.isnative
    assert out2.flags.c_contiguous
    assert np.array_equal(out2, out)
    for name, got, ref in zip(("dx", "dw", "db"), numbaconv.conv2d_backward(vdout, cache2),
                              (dx, dw, db), strict=True):
        assert got.dtype == np.dtype(dtype) and got.dtype.isnative, name
        assert np.array_equal(got, ref), name

    # Drop-ins and the layer too.
    cols = numbaconv.im2col_indices(x, 3, 2, (1, 2), (2, 1))
    vcols = numbaconv.im2col_indices(vx, 3, 2, (1, 2), (2, 1))
    assert vcols.dtype == np.dtype(dtype) and vcols.dtype.isnative
    assert np.array_equal(vcols, cols)
    back = numbaconv.col2im_indices(cols, x.shape, 3, 2, (1, 2), (2, 1))
    assert np.array_equal(numbaconv.col2im_indices(make(cols), x.shape, 3, 2, (1, 2), (2, 1)),
                          back)
    layer = numbaconv.Conv(x.shape[1:], 3, 3, 2, (2, 1), (1, 2), dilation=(1, 2), dtype=dtype,
                           rng=1)
    ref_out = layer.forward(x)
    ref_dx, (ref_dw, ref_db) = layer.backward(dout)
    assert np.array_equal(layer.forward(vx), ref_out)
    got_dx, (got_dw, got_db) = layer.backward(vdout)
    assert np.array_equal(got_dx, ref_dx)
    assert np.array_equal(got_dw, ref_dw)
    assert np.array_equal(got_db, ref_db)


@pytest.mark.parametrize("variant", ["readonly", "ro-bs-strided", "negstride"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: TAG[np.dtype(d)])
@pytest.mark.parametrize(("fh", "padding", "stride"), [(3, 1, 1), (3, 1, 2), (1, 0, 1)],
                         ids=["3x3-s1", "3x3-s2", "1x1"])
def test_dropin_input_layouts_on_vector_blocks(variant, dtype, fh, padding, stride, rng):
    """Batches of 9 and rows of 17 take the drop-ins' vector-block copies (and the leftovers
    one by one); other layouts of the same values give the same columns and images."""
    x = rng.standard_normal((9, 2, 5, 17)).astype(dtype)
    cols = numbaconv.im2col_indices(x, fh, fh, padding, stride)
    assert np.array_equal(numbaconv.im2col_indices(VARIANTS[variant](x), fh, fh, padding,
                                                   stride), cols)
    back = numbaconv.col2im_indices(cols, x.shape, fh, fh, padding, stride)
    assert np.array_equal(numbaconv.col2im_indices(VARIANTS[variant](cols), x.shape, fh, fh,
                                                   padding, stride), back)


def test_zero_stride_broadcast_input(rng):
    """A read-only broadcast view (batch stride 0) equals the materialised copy."""
    x0, w, b = _data(rng, np.float64, n=1)
    xb = np.broadcast_to(x0, (4, *x0.shape[1:]))
    assert xb.strides[0] == 0 and not xb.flags.writeable
    xc = np.repeat(x0, 4, axis=0)
    out_b, cache_b = numbaconv.conv2d_forward(xb, w, b, **HP)
    out_c, cache_c = numbaconv.conv2d_forward(xc, w, b, **HP)
    assert np.array_equal(out_b, out_c)
    dout = rng.standard_normal(out_c.shape)
    for got, ref in zip(numbaconv.conv2d_backward(dout, cache_b),
                        numbaconv.conv2d_backward(dout, cache_c), strict=True):
        assert np.array_equal(got, ref)
    assert np.array_equal(numbaconv.im2col_indices(xb, 3, 3), numbaconv.im2col_indices(xc, 3, 3))


@pytest.mark.parametrize("variant", ["readonly", "byteswapped", "strided"])
def test_bias_as_column_variants(variant):
    """A (K, 1) bias in odd layouts gives the same answer as a plain (K,) bias."""
    rng = np.random.default_rng(9)
    x, w, b = _data(rng, np.float64)
    expected, _ = numbaconv.conv2d_forward(x, w, b, **HP)
    got, _ = numbaconv.conv2d_forward(x, w, VARIANTS[variant](b.reshape(-1, 1)), **HP)
    assert np.array_equal(got, expected)


def test_inputs_are_not_modified_and_outputs_do_not_alias(rng):
    for fh, fw, hp in ((3, 2, HP), (1, 1, {})):  # general and pointwise paths
        x, w, b = _data(rng, np.float64, fh=fh, fw=fw)
        copies = [a.copy() for a in (x, w, b)]
        out, cache = numbaconv.conv2d_forward(x, w, b, **hp)
        dout = rng.standard_normal(out.shape)
        dout_copy = dout.copy()
        dx, dw, db = numbaconv.conv2d_backward(dout, cache)
        for orig, copy in zip((x, w, b, dout), (*copies, dout_copy), strict=True):
            assert np.array_equal(orig, copy)
        for result in (out, dx, dw, db):
            for source in (x, w, b, dout):
                assert not np.shares_memory(result, source)
        # Backward is repeatable and unaffected by writing into its previous results.
        dx[...] = 7.0
        dw[...] = 7.0
        db[...] = 7.0
        again = numbaconv.conv2d_backward(dout, cache)
        expected = naive_conv2d_backward(dout, x, w, **hp)
        for got, ref in zip(again, expected, strict=True):
            np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10 * np.abs(ref).max())


# --------------------------------------------------------------------------------------------
# Zero-size batch
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("workspace", [None, 1], ids=["ws-none", "ws-1"])
@pytest.mark.parametrize(("fh", "fw", "hp"), [(3, 2, HP), (1, 1, {})],
                         ids=["k3x2-s2x1-p1x2-d1x2", "pointwise"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: TAG[np.dtype(d)])
def test_zero_size_batch_functional(fh, fw, hp, workspace, dtype):
    rng = np.random.default_rng(0)
    x = np.empty((0, 2, 7, 6), dtype=dtype)
    w = rng.standard_normal((3, 2, fh, fw)).astype(dtype)
    b = np.ones(3, dtype=dtype)
    out, cache = numbaconv.conv2d_forward(x, w, b, workspace=workspace, **hp)
    expected_shape = naive_conv2d_forward(np.zeros((1, 2, 7, 6)), w.astype(np.float64),
                                          **hp).shape[1:]
    assert out.shape == (0, *expected_shape) and out.dtype == np.dtype(dtype)
    dx, dw, db = numbaconv.conv2d_backward(np.empty(out.shape, dtype=dtype), cache)
    assert dx.shape == x.shape and dx.dtype == np.dtype(dtype)
    assert dw.shape == w.shape and np.array_equal(dw, np.zeros_like(w))
    assert db.shape == (3,) and np.array_equal(db, np.zeros(3, dtype=dtype))
    assert dw.dtype == db.dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: TAG[np.dtype(d)])
def test_zero_size_batch_dropins_and_layer(dtype):
    x = np.empty((0, 3, 10, 10), dtype=dtype)
    cols = numbaconv.im2col_indices(x, 3, 3)
    assert cols.shape == (27, 0) and cols.dtype == np.dtype(dtype)
    back = numbaconv.col2im_indices(cols, x.shape)
    assert back.shape == x.shape and back.dtype == np.dtype(dtype)
    cols7 = numbaconv.im2col_indices(np.empty((0, 3, 14, 14), dtype=dtype), 7, 7, 3, 2)
    assert cols7.shape == (147, 0)

    for cls in (numbaconv.Conv, FancyConv):
        layer = cls((3, 10, 10), 4, 3, 3, 1, 1, dtype=dtype, rng=0)
        out = layer.forward(x)
        assert out.shape == (0, 4, 10, 10) and out.dtype == np.dtype(dtype)
        dX, (dW, db) = layer.backward(np.empty(out.shape, dtype=dtype))
        assert dX.shape == x.shape
        assert np.array_equal(dW, np.zeros_like(layer.W))
        assert db.shape == (4, 1) and np.array_equal(db, np.zeros((4, 1), dtype=dtype))


# --------------------------------------------------------------------------------------------
# Workspace chunking
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fh", "fw", "hp"), [(3, 2, HP), (3, 3, {"stride": 2, "padding": 1}),
                                              (1, 1, {})],
                         ids=["k3x2-s2x1-p1x2-d1x2", "k3x3-s2-p1", "pointwise"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: TAG[np.dtype(d)])
def test_workspace_chunking_gives_the_same_result(fh, fw, hp, dtype, rng):
    """Chunk sizes change how the products are grouped (one product per chunk for small
    planes), so results may differ in the last bits, never by more."""
    x, w, b = _data(rng, dtype, n=5, c=3, h=9, w=8, k=4, fh=fh, fw=fw)
    out, cache = numbaconv.conv2d_forward(x, w, b, **hp)
    dout = rng.standard_normal(out.shape).astype(dtype)
    grads = numbaconv.conv2d_backward(dout, cache)
    tol = 1e-12 if np.dtype(dtype) == np.float64 else 1e-5

    def same(got, ref, what):
        assert got.shape == ref.shape and got.dtype == ref.dtype, what
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * np.abs(ref).max(),
                                   err_msg=what)

    rows = 3 * fh * fw
    per_image = rows * out.shape[2] * out.shape[3] * np.dtype(dtype).itemsize
    budgets = [1, per_image - 1, per_image, 2 * per_image, 2 * per_image + 1, 3 * per_image,
               5 * per_image, 10**12]
    for workspace in budgets:
        out_ws, cache_ws = numbaconv.conv2d_forward(x, w, b, workspace=workspace, **hp)
        same(out_ws, out, f"out, workspace={workspace}")
        for name, got, ref in zip(("dx", "dw", "db"),
                                  numbaconv.conv2d_backward(dout, cache_ws), grads,
                                  strict=True):
            same(got, ref, f"{name}, workspace={workspace}")
    # Layer with a workspace budget.
    layer = numbaconv.Conv(x.shape[1:], 4, fh, fw, hp.get("stride", 1), hp.get("padding", 0),
                           dilation=hp.get("dilation", 1), dtype=dtype, rng=0, workspace=1)
    layer.W[...] = w
    layer.b[...] = b.reshape(-1, 1)
    same(layer.forward(x), out, "Conv.forward")
    dX, (dW, db) = layer.backward(dout)
    same(dX, grads[0], "dX")
    same(dW, grads[1], "dW")
    same(db.ravel(), grads[2], "db")


def test_workspace_chunked_backward_recomputes_from_cached_input(rng):
    """With chunking the columns are recomputed; gradients still match the naive oracle."""
    x, w, b = _data(rng, np.float64, n=4)
    out, cache = numbaconv.conv2d_forward(x, w, b, workspace=1, **HP)
    dout = rng.standard_normal(out.shape)
    for got, ref in zip(numbaconv.conv2d_backward(dout, cache),
                        naive_conv2d_backward(dout, x, w, **HP), strict=True):
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10 * np.abs(ref).max())


# --------------------------------------------------------------------------------------------
# Pointwise 1x1
# --------------------------------------------------------------------------------------------

POINTWISE = [
    pytest.param({}, id="s1-p0-d1"),
    pytest.param({"dilation": 3}, id="s1-p0-d3"),
    pytest.param({"stride": 2}, id="s2-p0"),
    pytest.param({"padding": 1}, id="s1-p1"),
    pytest.param({"stride": (1, 2), "padding": (0, 1)}, id="s1x2-p0x1"),
]


@pytest.mark.parametrize("hp", POINTWISE)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: TAG[np.dtype(d)])
def test_pointwise_1x1_matches_naive(hp, dtype, rng, assert_close):
    x, w, b = _data(rng, dtype, n=3, c=5, h=6, w=7, k=4, fh=1, fw=1)
    out, cache = numbaconv.conv2d_forward(x, w, b, **hp)
    x64, w64, b64 = (a.astype(np.float64) for a in (x, w, b))
    assert_close(out, naive_conv2d_forward(x64, w64, b64, **hp), dtype, "out")
    assert out.flags.c_contiguous
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx, dw, db = numbaconv.conv2d_backward(dout, cache)
    for name, got, ref in zip(("dx", "dw", "db"), (dx, dw, db),
                              naive_conv2d_backward(dout.astype(np.float64), x64, w64, **hp),
                              strict=True):
        assert_close(got, ref, dtype, name)
    # Non-contiguous input through the pointwise path.
    out2, cache2 = numbaconv.conv2d_forward(_noncontig_strided(x), w, b, **hp)
    assert np.array_equal(out2, out)
    assert all(np.array_equal(g, r) for g, r in
               zip(numbaconv.conv2d_backward(dout, cache2), (dx, dw, db), strict=True))


@pytest.mark.parametrize(("w_shape", "stride", "padding"), [
    pytest.param((4, 3, 3, 3), 1, 1, id="3x3"),
    pytest.param((4, 3, 3, 3), 2, 1, id="3x3-s2"),
    pytest.param((4, 3, 1, 1), 1, 0, id="pointwise"),
])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: TAG[np.dtype(d)])
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_nan_and_inf_propagate_as_in_the_naive_loops(w_shape, stride, padding, dtype, rng):
    """No fast-math: a NaN pixel and infinities of both signs in dout reach exactly the
    outputs and gradients that the naive loops give non-finite values, with the same kind."""
    x = rng.standard_normal((3, 3, 7, 7))
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    x[1, 2, 3, 4] = np.nan
    out_ref = naive_conv2d_forward(x, w, b, stride, padding)
    dout = rng.standard_normal(out_ref.shape)
    dout[0, 1, 2, 2] = np.inf
    dout[2, 1, 0, 1] = -np.inf
    dout[2, 3, 1, 1] = np.inf
    expected = [out_ref, *naive_conv2d_backward(dout, x, w, stride, padding)]
    out, cache = numbaconv.conv2d_forward(x.astype(dtype), w.astype(dtype), b.astype(dtype),
                                          stride, padding)
    got = [out, *numbaconv.conv2d_backward(dout.astype(dtype), cache)]
    for name, g, e in zip(("out", "dx", "dw", "db"), got, expected, strict=True):
        assert np.array_equal(np.isnan(g), np.isnan(e)), f"{name}: NaN in other places"
        assert np.array_equal(np.isposinf(g), np.isposinf(e)), f"{name}: +inf in other places"
        assert np.array_equal(np.isneginf(g), np.isneginf(e)), f"{name}: -inf in other places"
        assert np.isnan(e).any() or np.isinf(e).any(), f"{name}: the case tests nothing"


def test_default_workspace_grows_with_the_layer_depth():
    """2 MiB for shallow layers; deeper ones get the columns of 512 positions, capped at
    8 MiB, but never fewer than 128 positions' columns."""
    from numbaconv._tiling import default_workspace

    mib = 2**20
    assert default_workspace(3 * 9 + 1, 4) == 2 * mib  # a stem
    assert default_workspace(256 * 9 + 1, 4) == 2305 * 4 * 512  # 4.5 MiB
    assert default_workspace(512 * 9 + 1, 4) == 8 * mib  # capped
    assert default_workspace(2048 * 9 + 1, 8) == 18433 * 8 * 128  # the floor of 128 positions
