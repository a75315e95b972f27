"""Every bad input raises ValueError/TypeError with a message naming the offending value.

Nothing may raise AssertionError, IndexError, ZeroDivisionError, OverflowError or crash.
``pytest.raises`` with a concrete class lets any other exception fail the test.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numbaconv

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 3, 5, 6))
W = RNG.standard_normal((4, 3, 3, 3))
COLS = numbaconv.im2col_indices(X, 3, 3)  # classic defaults: padding 1, stride 1


def _forward(**kw):
    args = {"x": X, "w": W}
    args.update(kw)
    x, w = args.pop("x"), args.pop("w")
    return numbaconv.conv2d_forward(x, w, **args)


# (id, callable, exception type, regex that must be found in the message)
FORWARD_CASES = [
    ("x-3d", lambda: _forward(x=X[0]), ValueError,
     r"Expected 4D input.*\[3, 5, 6\]"),
    ("x-5d", lambda: _forward(x=X[None]), ValueError, r"4D input.*\[1, 2, 3, 5, 6\]"),
    ("w-5d", lambda: _forward(w=W[None]), ValueError, r"4D weight.*\[1, 4, 3, 3, 3\]"),
    ("w-2d", lambda: _forward(w=W[0, 0]), ValueError, r"4D weight.*\[3, 3\]"),
    ("channels", lambda: _forward(w=W[:, :2]), ValueError,
     r"to have 2 channels, but got 3 channels"),
    ("kernel-too-big", lambda: _forward(w=RNG.standard_normal((4, 3, 6, 3))), ValueError,
     r"\(5 x 6\).*\(6 x 3\).*can't be greater"),
    ("dilated-kernel-too-big", lambda: _forward(dilation=3), ValueError,
     r"padded input size.*\(5 x 6\).*dilation \(3, 3\).*\(7 x 7\)"),
    ("dilated-kernel-too-big-w", lambda: _forward(dilation=(1, 3), padding=(0, 0)), ValueError,
     r"\(5 x 6\).*\(3 x 7\)"),
    ("kernel-fits-only-with-padding", lambda: _forward(w=RNG.standard_normal((4, 3, 6, 3)),
                                                       padding=(0, 1)), ValueError,
     r"\(5 x 8\)"),
    ("stride-0", lambda: _forward(stride=0), ValueError, r"stride must be >= 1, got 0"),
    ("stride-pair-0", lambda: _forward(stride=(1, 0)), ValueError, r"stride.*\(1, 0\)"),
    ("stride-negative", lambda: _forward(stride=-2), ValueError, r"stride.*-2"),
    ("dilation-0", lambda: _forward(dilation=0), ValueError, r"dilation must be >= 1, got 0"),
    ("dilation-pair-0", lambda: _forward(dilation=(0, 1)), ValueError, r"dilation.*\(0, 1\)"),
    ("padding-negative", lambda: _forward(padding=-1), ValueError,
     r"padding must be non-negative, got -1"),
    ("padding-pair-negative", lambda: _forward(padding=(1, -2)), ValueError,
     r"padding.*\(1, -2\)"),
    ("stride-float", lambda: _forward(stride=1.5), TypeError, r"stride.*1\.5"),
    ("stride-float-integral", lambda: _forward(stride=2.0), TypeError, r"stride.*2\.0"),
    ("stride-bool", lambda: _forward(stride=True), TypeError, r"stride.*True"),
    ("stride-np-bool", lambda: _forward(stride=np.True_), TypeError, r"stride.*True"),
    ("padding-bool-pair", lambda: _forward(padding=(1, False)), TypeError,
     r"padding.*\(1, False\)"),
    ("stride-str", lambda: _forward(stride="2"), TypeError, r"stride.*'2'"),
    ("stride-none", lambda: _forward(stride=None), TypeError, r"stride.*None"),
    ("padding-1-tuple", lambda: _forward(padding=(1,)), ValueError, r"padding.*\(1,\)"),
    ("padding-3-tuple", lambda: _forward(padding=(1, 1, 1)), ValueError,
     r"padding.*\(1, 1, 1\)"),
    ("dilation-float-in-pair", lambda: _forward(dilation=(1, 1.0)), TypeError,
     r"dilation.*\(1, 1\.0\)"),
    ("dtype-mismatch", lambda: _forward(x=X.astype(np.float32)), TypeError,
     r"float32.*float64"),
    ("dtype-mismatch-w32", lambda: _forward(w=W.astype(np.float32)), TypeError,
     r"float64.*float32"),
    ("x-int", lambda: _forward(x=X.astype(np.int64), w=W.astype(np.int64)), TypeError,
     r"int64"),
    ("x-int-w-float", lambda: _forward(x=X.astype(np.int32)), TypeError, r"int32"),
    ("w-int", lambda: _forward(w=W.astype(np.int64)), TypeError, r"weight.*int64"),
    ("x-bool", lambda: _forward(x=X > 0, w=W > 0), TypeError, r"bool"),
    ("x-complex", lambda: _forward(x=X.astype(complex), w=W.astype(complex)), TypeError,
     r"complex128"),
    ("x-float16", lambda: _forward(x=X.astype(np.float16), w=W.astype(np.float16)), TypeError,
     r"float16"),
    ("x-object", lambda: _forward(x=X.astype(object)), TypeError, r"object"),
    ("x-0d", lambda: _forward(x=np.array(3.0)), ValueError, r"Expected 4D input.*size: \[\]"),
    ("x-str", lambda: _forward(x="not an array"), TypeError, r"input"),
    ("x-none", lambda: _forward(x=None), TypeError, r"input.*NoneType"),
    ("bias-size", lambda: _forward(b=np.zeros(3)), ValueError, r"bias.*\(3,\)"),
    ("bias-row", lambda: _forward(b=np.zeros((1, 4))), ValueError, r"bias.*\(1, 4\)"),
    ("bias-2d-wrong", lambda: _forward(b=np.zeros((4, 2))), ValueError, r"bias.*\(4, 2\)"),
    ("bias-scalar", lambda: _forward(b=np.float64(1.0)), ValueError, r"bias.*\(\)"),
    ("bias-int", lambda: _forward(b=np.zeros(4, dtype=np.int64)), TypeError,
     r"bias.*int64"),
    ("bias-complex", lambda: _forward(b=np.zeros(4, dtype=complex)), TypeError,
     r"bias.*complex"),
    ("x-channels-zero", lambda: _forward(x=X[:, :0], w=W[:, :0]), ValueError,
     r"\[2, 0, 5, 6\]"),
    ("x-height-zero", lambda: _forward(x=X[:, :, :0]), ValueError, r"\[2, 3, 0, 6\]"),
    ("w-no-filters", lambda: _forward(w=W[:0]), ValueError, r"filter.*0"),
    ("w-zero-kernel", lambda: _forward(w=W[:, :, :0]), ValueError, r"kernel.*0 x 3"),
    ("workspace-0", lambda: _forward(workspace=0), ValueError, r"workspace.*0"),
    ("workspace-negative", lambda: _forward(workspace=-5), ValueError, r"workspace.*-5"),
    ("workspace-float", lambda: _forward(workspace=1.5), TypeError, r"workspace.*1\.5"),
    ("padding-2**62", lambda: _forward(padding=2**62), ValueError,
     rf"padding.*{2**62}.*too large"),
    ("padding-2**61", lambda: _forward(padding=2**61), ValueError, r"too large"),
    ("padding-2**40", lambda: _forward(padding=2**40), ValueError, r"too large"),
    ("stride-10**30", lambda: _forward(stride=10**30), ValueError,
     rf"stride.*{10**30}.*too large"),
    ("stride-pair-huge", lambda: _forward(stride=(1, 2**63)), ValueError, r"stride.*too large"),
    ("dilation-10**30", lambda: _forward(dilation=10**30), ValueError,
     rf"dilation.*{10**30}"),
    ("dilation-2**61", lambda: _forward(dilation=2**61), ValueError, r"too large"),
    ("padding-negative-huge", lambda: _forward(padding=-(2**70)), ValueError, r"padding"),
]


@pytest.mark.parametrize(("func", "exc", "pattern"), [c[1:] for c in FORWARD_CASES],
                         ids=[c[0] for c in FORWARD_CASES])
def test_conv2d_forward_errors(func, exc, pattern):
    with pytest.raises(exc, match=pattern) as info:
        func()
    assert type(info.value) in (ValueError, TypeError), type(info.value)


_OUT, _CACHE = numbaconv.conv2d_forward(X, W, padding=1)

BACKWARD_CASES = [
    ("dout-shape", lambda: numbaconv.conv2d_backward(_OUT[:, :2], _CACHE), ValueError,
     r"\(2, 4, 5, 6\).*\(2, 2, 5, 6\)"),
    ("dout-3d", lambda: numbaconv.conv2d_backward(_OUT[0], _CACHE), ValueError,
     r"\(2, 4, 5, 6\).*\(4, 5, 6\)"),
    ("dout-transposed", lambda: numbaconv.conv2d_backward(_OUT.transpose(0, 1, 3, 2), _CACHE),
     ValueError, r"\(2, 4, 6, 5\)"),
    ("dout-int", lambda: numbaconv.conv2d_backward(_OUT.astype(np.int64), _CACHE), TypeError,
     r"dout.*int64"),
    ("dout-complex", lambda: numbaconv.conv2d_backward(_OUT.astype(complex), _CACHE),
     TypeError, r"dout.*complex"),
    ("dout-float16", lambda: numbaconv.conv2d_backward(_OUT.astype(np.float16), _CACHE),
     TypeError, r"dout.*float16"),
    ("dout-none", lambda: numbaconv.conv2d_backward(None, _CACHE), TypeError, r"dout"),
    ("cache-tuple", lambda: numbaconv.conv2d_backward(_OUT, (X, W)), TypeError,
     r"cache.*tuple"),
    ("cache-none", lambda: numbaconv.conv2d_backward(_OUT, None), TypeError,
     r"cache.*NoneType"),
]


@pytest.mark.parametrize(("func", "exc", "pattern"), [c[1:] for c in BACKWARD_CASES],
                         ids=[c[0] for c in BACKWARD_CASES])
def test_conv2d_backward_errors(func, exc, pattern):
    with pytest.raises(exc, match=pattern) as info:
        func()
    assert type(info.value) in (ValueError, TypeError), type(info.value)


DROPIN_CASES = [
    ("im2col-x-3d", lambda: numbaconv.im2col_indices(X[0], 3, 3), ValueError,
     r"4D x.*\[3, 5, 6\]"),
    ("im2col-x-object", lambda: numbaconv.im2col_indices(X.astype(object), 3, 3), TypeError,
     r"x must be an array of a real numeric dtype.*got dtype object"),
    ("im2col-x-bool", lambda: numbaconv.im2col_indices(X > 0, 3, 3), TypeError, r"bool"),
    ("im2col-x-complex", lambda: numbaconv.im2col_indices(X.astype(np.complex64), 3, 3),
     TypeError, r"complex64"),
    ("im2col-x-str", lambda: numbaconv.im2col_indices(np.full(X.shape, "a"), 3, 3),
     TypeError, r"dtype <U1"),
    ("im2col-field-0", lambda: numbaconv.im2col_indices(X, 0, 3), ValueError,
     r"field_height.*0"),
    ("im2col-field-neg", lambda: numbaconv.im2col_indices(X, 3, -1), ValueError,
     r"field_width.*-1"),
    ("im2col-field-fraction", lambda: numbaconv.im2col_indices(X, 3.5, 3), TypeError,
     r"field_height.*whole number.*3\.5"),
    ("im2col-field-bool", lambda: numbaconv.im2col_indices(X, True, 3), TypeError,
     r"field_height.*True"),
    ("im2col-field-too-big", lambda: numbaconv.im2col_indices(X, 8, 3), ValueError,
     r"\(7 x 8\).*\(8 x 3\)"),
    ("im2col-field-huge", lambda: numbaconv.im2col_indices(X, 2**62, 3), ValueError,
     r"too large"),
    ("im2col-stride-0", lambda: numbaconv.im2col_indices(X, 3, 3, 1, 0), ValueError,
     r"stride.*0"),
    ("im2col-padding-neg", lambda: numbaconv.im2col_indices(X, 3, 3, -1), ValueError,
     r"padding.*-1"),
    ("im2col-stride-float", lambda: numbaconv.im2col_indices(X, 3, 3, 1, 1.5), TypeError,
     r"stride.*1\.5"),
    ("im2col-padding-huge", lambda: numbaconv.im2col_indices(X, 3, 3, 2**62), ValueError,
     r"padding.*too large"),
    ("im2col-stride-huge", lambda: numbaconv.im2col_indices(X, 3, 3, 1, 10**30), ValueError,
     r"stride.*too large"),
    ("col2im-cols-shape", lambda: numbaconv.col2im_indices(COLS[:, :-1], X.shape), ValueError,
     r"\(27, 60\).*\(27, 59\)"),
    ("col2im-cols-rows", lambda: numbaconv.col2im_indices(COLS[:-1], X.shape), ValueError,
     r"\(26, 60\)"),
    ("col2im-cols-transposed", lambda: numbaconv.col2im_indices(COLS.T, X.shape), ValueError,
     r"\(60, 27\)"),
    ("col2im-cols-3d", lambda: numbaconv.col2im_indices(COLS[None], X.shape), ValueError,
     r"2D cols.*\[1, 27, 60\]"),
    ("col2im-cols-complex", lambda: numbaconv.col2im_indices(COLS.astype(complex), X.shape),
     TypeError, r"cols.*complex128"),
    ("col2im-xshape-3", lambda: numbaconv.col2im_indices(COLS, (2, 3, 5)), ValueError,
     r"x_shape.*\(2, 3, 5\)"),
    ("col2im-xshape-5", lambda: numbaconv.col2im_indices(COLS, (1, 2, 3, 5, 6)), ValueError,
     r"x_shape.*\(1, 2, 3, 5, 6\)"),
    ("col2im-xshape-neg", lambda: numbaconv.col2im_indices(COLS, (2, 3, -5, 6)), ValueError,
     r"x_shape.*-5"),
    ("col2im-xshape-fraction", lambda: numbaconv.col2im_indices(COLS, (2, 3, 5.5, 6)),
     TypeError, r"x_shape.*5\.5"),
    ("col2im-xshape-str", lambda: numbaconv.col2im_indices(COLS, "abcd"), ValueError,
     r"x_shape.*'abcd'"),
    ("col2im-xshape-none", lambda: numbaconv.col2im_indices(COLS, None), ValueError,
     r"x_shape.*None"),
    ("col2im-xshape-zero-c", lambda: numbaconv.col2im_indices(COLS, (2, 0, 5, 6)), ValueError,
     r"\[2, 0, 5, 6\]"),
    ("col2im-xshape-huge", lambda: numbaconv.col2im_indices(COLS, (2**40,) * 4), ValueError,
     r"too large"),
    ("col2im-xshape-huge-batch", lambda: numbaconv.col2im_indices(COLS, (2**61, 1, 3, 3)),
     ValueError, r"too large"),
    ("col2im-xshape-huge-n-c", lambda: numbaconv.col2im_indices(COLS, (2**31, 2**31, 1, 1),
                                                                1, 1, 0), ValueError,
     r"too large"),
    ("col2im-xshape-huge-h", lambda: numbaconv.col2im_indices(COLS, (1, 1, 2**62, 1), 1, 1, 0),
     ValueError, r"too large"),
    ("col2im-xshape-big-mismatch", lambda: numbaconv.col2im_indices(COLS, (2**40, 1, 1, 1),
                                                                    1, 1, 0), ValueError,
     r"cols must have shape"),
    ("col2im-field-0", lambda: numbaconv.col2im_indices(COLS, X.shape, 0, 3), ValueError,
     r"field_height.*0"),
    ("col2im-stride-0", lambda: numbaconv.col2im_indices(COLS, X.shape, 3, 3, 1, 0),
     ValueError, r"stride.*0"),
    ("col2im-padding-float", lambda: numbaconv.col2im_indices(COLS, X.shape, 3, 3, 0.5),
     TypeError, r"padding.*0\.5"),
]


@pytest.mark.parametrize(("func", "exc", "pattern"), [c[1:] for c in DROPIN_CASES],
                         ids=[c[0] for c in DROPIN_CASES])
def test_dropin_errors(func, exc, pattern):
    with pytest.raises(exc, match=pattern) as info:
        func()
    assert type(info.value) in (ValueError, TypeError), type(info.value)


def _layer(**kw):
    args = {"X_dim": (3, 5, 6), "n_filter": 4, "h_filter": 3, "w_filter": 3, "stride": 1,
            "padding": 1}
    args.update(kw)
    return numbaconv.Conv(**args)


LAYER_CASES = [
    ("xdim-2", lambda: _layer(X_dim=(3, 5)), ValueError, r"X_dim.*\(3, 5\)"),
    ("xdim-zero", lambda: _layer(X_dim=(3, 0, 6)), ValueError, r"X_dim.*\(3, 0, 6\)"),
    ("xdim-float", lambda: _layer(X_dim=(3, 5.5, 6)), TypeError, r"X_dim.*5\.5"),
    ("n-filter-0", lambda: _layer(n_filter=0), ValueError, r"filter.*0"),
    ("n-filter-negative", lambda: _layer(n_filter=-2), ValueError, r"filter.*-2"),
    ("n-filter-huge", lambda: _layer(n_filter=2**62), ValueError, r"too large"),
    ("n-filter-fraction", lambda: _layer(n_filter=4.5), TypeError, r"n_filter.*4\.5"),
    ("h-filter-0", lambda: _layer(h_filter=0), ValueError,
     r"h_filter must be a positive int, got 0"),
    ("w-filter-bool", lambda: _layer(w_filter=True), TypeError, r"w_filter.*True"),
    ("kernel-too-big", lambda: _layer(h_filter=8), ValueError, r"\(7 x 8\).*\(8 x 3\)"),
    ("stride-0", lambda: _layer(stride=0), ValueError, r"stride.*0"),
    ("stride-float", lambda: _layer(stride=1.5), TypeError, r"stride.*1\.5"),
    ("padding-neg", lambda: _layer(padding=-1), ValueError, r"padding.*-1"),
    ("padding-1-tuple", lambda: _layer(padding=(1,)), ValueError, r"padding.*\(1,\)"),
    ("dilation-0", lambda: _layer(dilation=0), ValueError, r"dilation.*0"),
    ("dtype-float16", lambda: _layer(dtype=np.float16), TypeError, r"float16"),
    ("dtype-int", lambda: _layer(dtype=np.int32), TypeError, r"int32"),
    ("dtype-complex", lambda: _layer(dtype=np.complex128), TypeError, r"complex128"),
    ("dtype-garbage", lambda: _layer(dtype="banana"), TypeError, r"banana"),
    ("padding-huge", lambda: _layer(padding=2**62), ValueError, r"too large"),
    ("stride-huge", lambda: _layer(stride=10**30), ValueError, r"too large"),
]


@pytest.mark.parametrize(("func", "exc", "pattern"), [c[1:] for c in LAYER_CASES],
                         ids=[c[0] for c in LAYER_CASES])
def test_conv_constructor_errors(func, exc, pattern):
    with pytest.raises(exc, match=pattern) as info:
        func()
    assert type(info.value) in (ValueError, TypeError), type(info.value)


def test_conv_forward_errors():
    layer = numbaconv.Conv((3, 5, 6), 4, 3, 3, 1, 1, rng=0)
    with pytest.raises(ValueError, match=r"\(3, 5, 6\).*\(2, 3, 4, 6\)"):
        layer.forward(X[:, :, :4])
    with pytest.raises(ValueError, match=r"\(3, 5, 6\).*\(2, 2, 5, 6\)"):
        layer.forward(X[:, :2])
    with pytest.raises(ValueError, match=r"\(3, 5, 6\).*\(2, 3, 6, 5\)"):
        layer.forward(X.transpose(0, 1, 3, 2))
    with pytest.raises(ValueError, match=r"4D X.*\[3, 5, 6\]"):
        layer.forward(X[0])
    # Any real dtype is converted (see test_layers_classic); bool and complex are not.
    with pytest.raises(TypeError, match=r"bool"):
        layer.forward(X > 0)
    with pytest.raises(TypeError, match=r"complex128"):
        layer.forward(X.astype(complex))
    with pytest.raises(numbaconv.BackwardBeforeForwardError, match=r"before"):
        layer.backward(np.zeros((2, 4, 5, 6)))
    layer.forward(X)
    with pytest.raises(ValueError, match=r"\(2, 4, 5, 6\).*\(2, 4, 5, 5\)"):
        layer.backward(np.zeros((2, 4, 5, 5)))
    with pytest.raises(TypeError, match=r"dout.*int64"):
        layer.backward(np.zeros((2, 4, 5, 6), dtype=np.int64))
    # A rebound W of another dtype is reported, not silently mixed.
    layer.W = layer.W.astype(np.float32)
    with pytest.raises(TypeError, match=r"float64.*float32"):
        layer.forward(X)
    # The layer's workspace budget is validated (at the latest when it is used).
    with pytest.raises(ValueError, match=r"workspace.*0"):
        numbaconv.Conv((3, 5, 6), 4, 3, 3, 1, 1, rng=0, workspace=0).forward(X)


def test_backward_before_forward_is_value_error():
    err = numbaconv.BackwardBeforeForwardError
    assert issubclass(err, ValueError)
    layer = numbaconv.Conv((3, 5, 6), 4, 3, 3, 1, 1, rng=0)
    with pytest.raises(ValueError, match=re.escape("backward")):
        layer.backward(np.zeros((2, 4, 5, 6)))


# --------------------------------------------------------------------------------------------
# Huge but valid hyperparameters: accepted, and computed without int64 overflow.
# --------------------------------------------------------------------------------------------


def test_huge_valid_hyperparameters_do_not_overflow():
    x = np.arange(1.0, 7.0).reshape(1, 1, 2, 3)
    w = np.ones((1, 1, 3, 3))
    b = np.array([0.5])
    # Padding ~2**61 with a stride that jumps over everything: one output, all padding.
    out, cache = numbaconv.conv2d_forward(x, w, b, padding=2**61 - 2, stride=2**62 - 1)
    assert out.shape == (1, 1, 1, 1) and out[0, 0, 0, 0] == 0.5
    dx, dw, db = numbaconv.conv2d_backward(np.ones_like(out), cache)
    assert np.array_equal(dx, np.zeros_like(x)) and np.array_equal(dw, np.zeros_like(w))
    assert np.array_equal(db, [1.0])
    cols = numbaconv.im2col_indices(x, 3, 3, 2**61 - 2, 2**62 - 1)
    assert cols.shape == (9, 1) and np.array_equal(cols, np.zeros((9, 1)))
    assert np.array_equal(numbaconv.col2im_indices(np.ones((9, 1)), x.shape, 3, 3, 2**61 - 2,
                                                   2**62 - 1), np.zeros_like(x))
    # Width: dilation 2**60 and padding 2**60 put only the middle tap on column 0.
    hp = dict(padding=(1, 2**60), stride=(1, 2**61), dilation=(1, 2**60))
    out, cache = numbaconv.conv2d_forward(x, w, b, **hp)
    assert out.shape == (1, 1, 2, 1)
    assert np.array_equal(out.ravel(), [0.5 + 1 + 4, 0.5 + 1 + 4])
    dx, dw, db = numbaconv.conv2d_backward(np.ones_like(out), cache)
    assert np.array_equal(dx[0, 0], [[2.0, 0, 0], [2.0, 0, 0]])
    assert np.array_equal(dw[0, 0], [[0, 1.0, 0], [0, 5.0, 0], [0, 4.0, 0]])
    cols = numbaconv.im2col_indices(x, 3, 3, hp["padding"], hp["stride"],
                                    dilation=hp["dilation"])
    assert np.array_equal(cols[:, 0], [0, 0, 0, 0, 1, 0, 0, 4, 0])
    assert np.array_equal(cols[:, 1], [0, 1, 0, 0, 4, 0, 0, 0, 0])


# --------------------------------------------------------------------------------------------
# Fuzz: any mix of good and bad hyperparameters either works or is a ValueError/TypeError.
# --------------------------------------------------------------------------------------------

_BAD_OR_GOOD_INTS = [0, 1, 2, 3, -1, 2**61, 2**62 - 1, 2**62, 2**63, 10**30, -(2**70)]
_ODD = [1.5, 2.0, True, False, None, "1", (1,), (1, 2, 3), [], np.float64(1.0), np.int64(2)]


def _hyper():
    scalar = st.sampled_from(_BAD_OR_GOOD_INTS + _ODD)
    return st.one_of(scalar, st.tuples(st.sampled_from(_BAD_OR_GOOD_INTS + [1.5, True]),
                                       st.sampled_from(_BAD_OR_GOOD_INTS + [1.5, True])))


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(stride=_hyper(), padding=_hyper(), dilation=_hyper(), fh=st.integers(1, 4),
       fw=st.integers(1, 4))
def test_fuzz_hyperparameters_only_raise_value_or_type_error(stride, padding, dilation, fh,
                                                             fw):
    x = np.ones((1, 1, 3, 4))
    w = np.ones((1, 1, fh, fw))
    try:
        out, cache = numbaconv.conv2d_forward(x, w, None, stride, padding, dilation)
    except (ValueError, TypeError) as err:
        assert type(err) in (ValueError, TypeError)
        assert str(err)
    else:
        assert out.size <= 10**6
        numbaconv.conv2d_backward(np.ones_like(out), cache)
    try:
        cols = numbaconv.im2col_indices(x, fh, fw, padding, stride, dilation=dilation)
    except (ValueError, TypeError) as err:
        assert type(err) in (ValueError, TypeError)
    else:
        numbaconv.col2im_indices(cols, x.shape, fh, fw, padding, stride, dilation=dilation)


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(shape=st.lists(st.sampled_from([0, 1, 2, 3, -1, 2**31, 2**40, 2**62, 2.0, None]),
                      min_size=0, max_size=5))
def test_fuzz_col2im_x_shape_only_raises_value_or_type_error(shape):
    try:
        numbaconv.col2im_indices(COLS, tuple(shape))
    except (ValueError, TypeError) as err:
        assert type(err) in (ValueError, TypeError)


# --------------------------------------------------------------------------------------------
# Valid geometries are remembered: that must not change what is accepted or rejected.
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [True, (True, 1), 1.0, (1, 1.0), "1", None],
                         ids=["bool", "bool-pair", "float", "float-pair", "str", "none"])
def test_remembered_geometry_still_rejects_values_equal_to_a_valid_one(bad):
    numbaconv.conv2d_forward(X, W, None, 1, 1, 1)  # remembered with stride = padding = 1
    numbaconv.conv2d_forward(X, W, None, (1, 1), (1, 1), (1, 1))
    for kwargs in ({"stride": bad}, {"padding": bad}, {"dilation": bad}):
        args = {"stride": 1, "padding": 1, "dilation": 1, **kwargs}
        # An unknown padding string is a ValueError (as in PyTorch), the others a TypeError.
        error = ValueError if kwargs.get("padding") == "1" else TypeError
        with pytest.raises(error, match=next(iter(kwargs))):
            numbaconv.conv2d_forward(X, W, None, **args)
    numbaconv.col2im_indices(COLS, X.shape, 3, 3, 1, 1)
    with pytest.raises(TypeError, match="x_shape"):
        numbaconv.col2im_indices(COLS, (2.5, 3, 5, 6), 3, 3, 1, 1)  # (2.0 is accepted)
    with pytest.raises(TypeError, match="x_shape"):
        numbaconv.col2im_indices(COLS, (True, 3, 5, 6), 3, 3, 1, 1)


def test_remembered_geometries_are_bounded_and_give_the_same_results():
    from numbaconv import _validation

    x = RNG.standard_normal((1, 1, 4, 5))
    w = RNG.standard_normal((1, 1, 2, 2))
    first, _ = numbaconv.conv2d_forward(x, w, None, 1, 1)
    for n in range(1, _validation._KNOWN_GEOMETRIES_MAX + 10):
        _validation.make_geometry((n, 1, 4, 5), 1, 2, 2, 1, 1, 1)
        assert len(_validation._known_geometries) <= _validation._KNOWN_GEOMETRIES_MAX
    again, _ = numbaconv.conv2d_forward(x, w, None, 1, 1)
    assert np.array_equal(first, again)
    # numpy integers are accepted as before, and give the geometry the plain ints give
    via_numpy, _ = numbaconv.conv2d_forward(x, w, None, np.int64(1), np.int64(1))
    assert np.array_equal(first, via_numpy)
