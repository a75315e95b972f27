"""Every entry point of a transposed convolution refuses an output padding that is not
smaller than either the stride or the dilation with one message, PyTorch's."""

from __future__ import annotations

import re

import numpy as np
import pytest

import numbaconv
from numbaconv import nn
from numbaconv._validation import check_output_padding

X = np.zeros((1, 3, 5, 5))
W = np.zeros((3, 4, 3, 3))


def _message(oph, opw, sh, sw, dh, dw):
    return re.escape(
        f"output padding must be smaller than either stride or dilation, but got "
        f"output_padding_height: {oph} output_padding_width: {opw} stride_height: {sh} "
        f"stride_width: {sw} dilation_height: {dh} dilation_width: {dw}")


@pytest.mark.parametrize(("call", "expected"), [
    pytest.param(lambda: numbaconv.conv_transpose2d(X, W, stride=2, output_padding=2),
                 (2, 2, 2, 2, 1, 1), id="functional"),
    pytest.param(lambda: numbaconv.conv_transpose2d_forward(X, W, stride=(2, 1),
                                                            output_padding=(0, 1)),
                 (0, 1, 2, 1, 1, 1), id="functional-forward"),
    pytest.param(lambda: numbaconv.ConvTranspose((3, 5, 5), 4, 3, 3, 2, 1, output_padding=2),
                 (2, 2, 2, 2, 1, 1), id="classic-layer"),
    pytest.param(lambda: nn.ConvTranspose2d(3, 4, 3, stride=(1, 2), output_padding=(1, 0),
                                            dilation=(1, 1)),
                 (1, 0, 1, 2, 1, 1), id="nn-layer"),
])
def test_one_message_for_every_entry_point(call, expected):
    with pytest.raises(ValueError, match=_message(*expected)):
        call()


def test_one_axis_is_reported_as_width_of_height_1():
    """As PyTorch reports ``conv_transpose1d``: the height has output padding 0, stride 1 and
    dilation 1."""
    with pytest.raises(ValueError, match=_message(0, 3, 1, 2, 1, 3)):
        check_output_padding((3,), (2,), (3,))


@pytest.mark.parametrize(("output_padding", "stride", "dilation"), [
    ((1, 1), (2, 2), (1, 1)), ((1, 0), (1, 1), (2, 1)), ((0,), (1,), (1,)), ((2,), (1,), (3,)),
])
def test_smaller_than_stride_or_dilation_is_taken(output_padding, stride, dilation):
    check_output_padding(output_padding, stride, dilation)


def test_the_message_is_pytorchs():
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError) as expected:
        torch.nn.functional.conv_transpose2d(torch.zeros(1, 3, 5, 5), torch.zeros(3, 4, 3, 3),
                                             stride=(2, 1), output_padding=(0, 1))
    with pytest.raises(ValueError, match=re.escape(str(expected.value))):
        numbaconv.conv_transpose2d(X, W, stride=(2, 1), output_padding=(0, 1))
    with pytest.raises(RuntimeError) as expected:
        torch.nn.functional.conv_transpose1d(torch.zeros(1, 3, 5), torch.zeros(3, 4, 3),
                                             stride=2, output_padding=2)
    with pytest.raises(ValueError, match=re.escape(str(expected.value))):
        check_output_padding((2,), (2,), (1,))
