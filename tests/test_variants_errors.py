"""Bad groups, padding and padding modes: a ValueError or TypeError naming the value and what
was expected (PyTorch's wording where it fits), from every entry point that takes them."""

from __future__ import annotations

import numpy as np
import pytest

import numbaconv
from numbaconv.reference import naive_conv2d_forward

RNG = np.random.default_rng(7)
X = RNG.standard_normal((2, 6, 5, 5))
W = RNG.standard_normal((4, 3, 3, 3))  # groups=2 weights for X
X1 = RNG.standard_normal((2, 6, 5))
W1 = RNG.standard_normal((4, 3, 3))


def _conv2d(x=X, w=W, **kw):
    kw.setdefault("groups", 2)
    return numbaconv.conv2d_forward(x, w, None, **kw)


# (id, keyword arguments of _conv2d, exception type, regex that the message must match)
CONV2D_CASES = [
    ("channels-not-divisible", dict(w=RNG.standard_normal((4, 1, 3, 3)), groups=4), ValueError,
     r"groups=4.*input\[2, 6, 5, 5\].*divisible by 4.*6 channels"),
    ("filters-not-divisible", dict(w=RNG.standard_normal((3, 3, 3, 3))), ValueError,
     r"groups=2, expected weight to be divisible by 2 at dimension 0.*\[3, 3, 3, 3\]"),
    ("weight-axis-1", dict(w=RNG.standard_normal((4, 2, 3, 3))), ValueError,
     r"groups=2, weight of size \[4, 2, 3, 3\].*to have 4 channels, but got 6.*"
     r"\(K, C/groups, fh, fw\) = \(4, 3"),
    ("weight-axis-1-groups-1", dict(groups=1), ValueError,
     r"groups=1, weight of size \[4, 3, 3, 3\].*to have 3 channels, but got 6"),
    ("groups-0", dict(groups=0), ValueError, r"groups must be a positive int, got 0"),
    ("groups-negative", dict(groups=-2), ValueError, r"groups must be a positive int, got -2"),
    ("groups-float", dict(groups=2.0), TypeError, r"groups must be a positive int, got 2\.0"),
    ("groups-bool", dict(groups=True), TypeError, r"groups.*True"),
    ("groups-str", dict(groups="2"), TypeError, r"groups.*'2'"),
    ("groups-none", dict(groups=None), TypeError, r"groups.*None"),
    ("same-strided", dict(padding="same", stride=2), ValueError,
     r"padding='same' is not supported for strided convolutions.*\(2, 2\)"),
    ("same-strided-w", dict(padding="same", stride=(1, 2), groups=1,
                            w=RNG.standard_normal((4, 6, 3, 3))), ValueError,
     r"padding='same'.*strided.*\(1, 2\)"),
    ("padding-string", dict(padding="full"), ValueError,
     r"Invalid padding string 'full', should be one of \('valid', 'same'\)"),
    ("padding-string-groups-1", dict(padding="SAME", groups=1,
                                     w=RNG.standard_normal((4, 6, 3, 3))), ValueError,
     r"Invalid padding string 'SAME'"),
    ("mode-unknown", dict(padding_mode="zero"), ValueError,
     r"padding_mode must be one of \['zeros', 'reflect', 'replicate', 'circular'\], but got "
     r"padding_mode='zero'"),
    ("mode-case", dict(padding_mode="Reflect", groups=1, w=RNG.standard_normal((4, 6, 3, 3))),
     ValueError, r"padding_mode='Reflect'"),
    ("mode-none", dict(padding_mode=None), TypeError, r"padding_mode must be a string.*None"),
    ("mode-int", dict(padding_mode=0), TypeError, r"padding_mode.*0 \(int\)"),
    ("reflect-too-large", dict(padding=5, padding_mode="reflect"), ValueError,
     r"reflect padding must be smaller than the input.*\(5, 5\).*height axis of size 5"),
    ("reflect-too-large-one-side", dict(padding=((0, 0), (1, 5)), padding_mode="reflect"),
     ValueError, r"reflect padding.*\(1, 5\).*width axis of size 5"),
    ("reflect-too-large-depthwise", dict(padding=(0, 7), padding_mode="reflect", groups=6,
                                         w=RNG.standard_normal((6, 1, 3, 3))), ValueError,
     r"reflect padding.*\(7, 7\).*width"),
    ("circular-too-large", dict(padding=(6, 1), padding_mode="circular"), ValueError,
     r"circular padding must not be larger than the input.*\(6, 6\).*height axis of size 5"),
    ("padding-3-tuple", dict(padding=(1, 2, 3)), ValueError, r"padding.*\(1, 2, 3\)"),
    ("padding-pair-of-short", dict(padding=((1, 2), (3,))), ValueError,
     r"padding must be an int, a pair \(ph, pw\), a pair of pairs \(\(top, bottom\), "
     r"\(left, right\)\), 'valid' or 'same', got \(\(1, 2\), \(3,\)\)"),
    ("padding-pair-and-int", dict(padding=((1, 2), 3)), ValueError,
     r"pair of pairs.*got \(\(1, 2\), 3\)"),
    ("padding-three-pairs", dict(padding=((1, 2), (3, 4), (5, 6))), ValueError,
     r"padding.*\(\(1, 2\), \(3, 4\), \(5, 6\)\)"),
    ("padding-pair-float", dict(padding=((1, 2.0), (0, 0))), TypeError,
     r"padding.*\(\(1, 2\.0\), \(0, 0\)\)"),
    ("padding-negative", dict(padding=-1), ValueError, r"padding must be non-negative, got -1"),
    ("padding-negative-pair", dict(padding=(1, -1)), ValueError,
     r"padding must be non-negative, got \(1, -1\)"),
    ("padding-negative-pairs", dict(padding=((0, -1), (1, 1))), ValueError,
     r"padding must be non-negative, got \(\(0, -1\), \(1, 1\)\)"),
    ("padding-huge", dict(padding=((0, 2**62), (0, 0))), ValueError, r"too large"),
    ("kernel-too-big-asym", dict(padding=((0, 0), (0, 1)), dilation=3), ValueError,
     r"padded input size per channel: \(5 x 6\).*\(7 x 7\)"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"),
                         [pytest.param(*c[1:], id=c[0]) for c in CONV2D_CASES])
def test_conv2d_rejects_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        _conv2d(**kwargs)
    # The inference entry point and the naive reference say the same.
    inference = dict(kwargs)
    x, w = inference.pop("x", X), inference.pop("w", W)
    inference.setdefault("groups", 2)
    with pytest.raises(error, match=match):
        numbaconv.conv2d(x, w, None, **inference)
    with pytest.raises(error, match=match):
        naive_conv2d_forward(x, w, None, **inference)


def _conv1d(x=X1, w=W1, **kw):
    kw.setdefault("groups", 2)
    return numbaconv.conv1d_forward(x, w, None, **kw)


CONV1D_CASES = [
    ("input-4d", dict(x=X), ValueError,
     r"Expected 3D input \(N, C, L\) for conv1d.*\[2, 6, 5, 5\]"),
    ("weight-4d", dict(w=W), ValueError, r"Expected 3D weight.*\[4, 3, 3, 3\]"),
    ("weight-axis-1", dict(w=RNG.standard_normal((4, 2, 3))), ValueError,
     r"groups=2, weight of size \[4, 2, 3\].*input\[2, 6, 5\] to have 4 channels"),
    ("filters-not-divisible", dict(w=RNG.standard_normal((5, 3, 3))), ValueError,
     r"divisible by 2 at dimension 0"),
    ("groups-0", dict(groups=0), ValueError, r"groups must be a positive int, got 0"),
    ("same-strided", dict(padding="same", stride=2), ValueError,
     r"padding='same' is not supported for strided convolutions, got stride 2"),
    ("padding-string", dict(padding="causal"), ValueError, r"Invalid padding string 'causal'"),
    ("padding-3-tuple", dict(padding=(1, 2, 3)), ValueError,
     r"padding must be an int, a pair \(left, right\).*\(1, 2, 3\) with 3 entries"),
    ("padding-negative", dict(padding=(0, -2)), ValueError,
     r"padding must be non-negative, got \(0, -2\)"),
    ("padding-float", dict(padding=(0, 1.5)), TypeError, r"padding.*\(0, 1\.5\)"),
    ("stride-pair", dict(stride=(1, 2)), ValueError, r"stride must be an int.*\(1, 2\)"),
    ("stride-0", dict(stride=0), ValueError, r"stride must be >= 1, got 0"),
    ("dilation-float", dict(dilation=1.0), TypeError, r"dilation must be an int.*1\.0"),
    ("mode-unknown", dict(padding_mode="mirror"), ValueError, r"padding_mode='mirror'"),
    ("reflect-too-large", dict(padding=(5, 0), padding_mode="reflect"), ValueError,
     r"reflect padding must be smaller than the input length.*\(5, 0\)"),
    ("circular-too-large", dict(padding=6, padding_mode="circular"), ValueError,
     r"circular padding must not be larger than the input length.*\(6, 6\)"),
    ("kernel-too-big", dict(w=RNG.standard_normal((4, 3, 7))), ValueError,
     r"Kernel size can't be greater than actual input size"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"),
                         [pytest.param(*c[1:], id=c[0]) for c in CONV1D_CASES])
def test_conv1d_rejects_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        _conv1d(**kwargs)
    inference = dict(kwargs)
    x, w = inference.pop("x", X1), inference.pop("w", W1)
    inference.setdefault("groups", 2)
    with pytest.raises(error, match=match):
        numbaconv.conv1d(x, w, None, **inference)


BACKWARD_CASES = [
    pytest.param(dict(groups=2), id="grouped"),
    pytest.param(dict(groups=6, w=RNG.standard_normal((6, 1, 3, 3))), id="depthwise"),
    pytest.param(dict(groups=2, padding_mode="reflect"), id="grouped-reflect"),
    pytest.param(dict(groups=1, padding_mode="circular", w=RNG.standard_normal((4, 6, 3, 3))),
                 id="circular"),
]


@pytest.mark.parametrize("kwargs", BACKWARD_CASES)
def test_backward_rejects_bad_dout_and_caches(kwargs):
    out, cache = _conv2d(padding=1, **kwargs)
    with pytest.raises(ValueError, match=r"dout must have the shape of the forward output"):
        numbaconv.conv2d_backward(out[:, :-1], cache)
    with pytest.raises(TypeError, match=r"dout must be a NumPy array"):
        numbaconv.conv2d_backward({}, cache)
    with pytest.raises(TypeError, match=r"dout must be a float32 or float64 array"):
        numbaconv.conv2d_backward(out.astype(np.int64), cache)
    dx, dw, db = numbaconv.conv2d_backward(out.astype(np.float32), cache)  # converted
    assert dx.dtype == np.float64
    with pytest.raises(TypeError, match=r"cache must be the ConvCache.*got tuple"):
        numbaconv.conv2d_backward(out, (cache,))
    out1, cache1 = _conv1d(padding=1)
    with pytest.raises(TypeError, match=r"Conv1dCache returned by conv1d_forward, got"):
        numbaconv.conv1d_backward(out1, cache)
    with pytest.raises(ValueError, match=r"dout must have the shape of the forward output"):
        numbaconv.conv1d_backward(out1[:, :, 1:], cache1)
