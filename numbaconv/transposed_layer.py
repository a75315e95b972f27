"""The classic-style ``ConvTranspose`` layer, on :func:`numbaconv.conv_transpose2d_forward`."""

from __future__ import annotations

import numpy as np

from numbaconv._validation import (
    IntPair,
    as_classic_hyperparameter,
    as_classic_int,
    as_pair,
    check_output_padding,
)
from numbaconv.layer import ClassicLayer, as_bias_flag, layer_dtype, layer_groups
from numbaconv.transposed import (
    conv_transpose2d,
    conv_transpose2d_backward,
    conv_transpose2d_forward,
)


def transposed_size(size: int, f: int, s: int, p: int, d: int, op: int) -> int:
    """Output size of a transposed convolution on one axis: ``(size - 1)*s - 2*p +
    d*(f - 1) + op + 1``."""
    return (size - 1) * s - 2 * p + d * (f - 1) + op + 1


class ConvTranspose(ClassicLayer):
    """2-D transposed convolution layer with the classic teaching API (as :class:`Conv`).

    The transposed convolution maps images of ``X_dim = (C, H, W)`` to ``n_filter`` planes of
    ``h_out = (H - 1)*sh - 2*ph + dh*(h_filter - 1) + output_padding_h + 1`` rows (``w_out``
    likewise): the input gradient of the convolution with the same hyperparameters, as
    ``torch.nn.ConvTranspose2d``.

    Parameters
    ----------
    X_dim : tuple (C, H, W)
        Shape of one input image.
    n_filter, h_filter, w_filter : int
        Output channels K and the kernel height and width.
    stride, padding : int or (int, int)
        Per-axis stride, and the padding taken off both sides of the output.
    output_padding : int or (int, int), keyword-only
        Rows and columns added at the bottom and right of the output; smaller than the
        stride or the dilation.
    dilation : int or (int, int), keyword-only
        Spacing between kernel taps.
    groups : int, keyword-only
        ``C`` and ``n_filter`` must be divisible by it; the weights are
        ``(C, n_filter/groups, h_filter, w_filter)`` (PyTorch's layout).
    bias : bool, keyword-only
        Whether the layer has a bias; without one ``params == [W]``, ``b`` is None and
        ``backward`` returns ``(dX, [dW])``.
    dtype : float32 or float64, keyword-only
        Parameter dtype and the dtype of every result (input of another real dtype, ints
        included, is converted; bool and complex input is refused).
    rng : None, int, numpy.random.Generator or numpy.random.RandomState, keyword-only
        Source of the classic initialisation, as for :class:`Conv`: ``None`` draws
        ``np.random.randn(C, n_filter // groups, h_filter, w_filter) / np.sqrt(n_filter /
        2.)`` from NumPy's global generator; an int seeds ``np.random.default_rng``; a
        Generator or RandomState is drawn from by the same formula.

    Attributes
    ----------
    W : ndarray (C, K/groups, fh, fw)
    b : ndarray (K, 1), or None with ``bias=False``
    params : list [W, b], or [W]
        The arrays ``forward`` uses (optimizers may update them in place or rebind them).
    h_out, w_out : int
    out_dim : tuple (K, h_out, w_out)

    Notes
    -----
    ``forward(X, train=False)`` is inference: :func:`numbaconv.conv_transpose2d` (no cache),
    the same output, nothing kept for ``backward``.  Sizes and hyperparameters may be NumPy
    integers or whole-number floats, as for :class:`Conv`.
    """

    _functions = (conv_transpose2d_forward, conv_transpose2d, conv_transpose2d_backward)

    def __init__(
        self,
        X_dim: tuple[int, int, int],
        n_filter: int,
        h_filter: int,
        w_filter: int,
        stride: IntPair,
        padding: IntPair,
        *,
        output_padding: IntPair = 0,
        dilation: IntPair = 1,
        groups: int = 1,
        bias: bool = True,
        dtype: object = np.float64,
        rng: None | int | np.random.Generator = None,
    ) -> None:
        self._sizes(X_dim, n_filter, h_filter, w_filter)
        self.stride = as_classic_hyperparameter("stride", stride)
        self.padding = as_classic_hyperparameter("padding", padding)
        self.output_padding = as_classic_hyperparameter("output_padding", output_padding)
        self.dilation = as_classic_hyperparameter("dilation", dilation)
        self.groups = layer_groups(as_classic_int("groups", groups), self.d_X, self.n_filter,
                                   "X_dim[0]", "n_filter")
        has_bias = as_bias_flag(bias)
        self.dtype = layer_dtype(dtype)
        (sh, sw), (ph, pw) = as_pair("stride", self.stride, 1), as_pair("padding", self.padding, 0)
        (dh, dw) = as_pair("dilation", self.dilation, 1)
        oph, opw = as_pair("output_padding", self.output_padding, 0)
        check_output_padding((oph, opw), (sh, sw), (dh, dw))
        self.h_out = transposed_size(self.h_X, self.h_filter, sh, ph, dh, oph)
        self.w_out = transposed_size(self.w_X, self.w_filter, sw, pw, dw, opw)
        if self.h_out < 1 or self.w_out < 1:
            raise ValueError(
                f"ConvTranspose: given input size per channel ({self.h_X} x {self.w_X}), the "
                f"calculated output size per channel ({self.h_out} x {self.w_out}) is too "
                f"small: padding {self.padding!r} takes off more than the kernel "
                f"({self.h_filter} x {self.w_filter}) and stride {self.stride!r} give")
        self.out_dim = (self.n_filter, self.h_out, self.w_out)

        self._draw((self.d_X, self.n_filter // self.groups, self.h_filter, self.w_filter), rng,
                   has_bias)

    def forward(self, X: np.ndarray, train: bool = True) -> np.ndarray:
        """Transposed convolution of ``X`` (N, C, H, W); returns (N, K, h_out, w_out) in the
        layer's dtype (input of another real dtype, ints included, is converted to it).  With
        ``train=False`` (inference) nothing is kept for ``backward``."""
        return self._run(X, train, self.stride, self.padding, self.output_padding, self.groups,
                         self.dilation)

    def __repr__(self) -> str:
        extra = "" if self.output_padding == 0 else f", output_padding={self.output_padding!r}"
        extra += "" if self.groups == 1 else f", groups={self.groups}"
        extra += "" if self.b is not None else ", bias=False"
        return (f"ConvTranspose(X_dim={(self.d_X, self.h_X, self.w_X)}, "
                f"n_filter={self.n_filter}, h_filter={self.h_filter}, w_filter={self.w_filter}, "
                f"stride={self.stride!r}, padding={self.padding!r}, "
                f"dilation={self.dilation!r}{extra}, dtype={self.dtype})")
