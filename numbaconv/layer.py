"""The classic ``Conv`` layer, backed by the numbaconv kernels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from numbaconv._groups import as_groups
from numbaconv._padding import Padding, check_mode_fits, check_padding_mode
from numbaconv._validation import (
    IntPair,
    as_classic_hyperparameter,
    as_classic_int,
    as_positive_int,
    check_workspace,
    input_shape_hint,
    make_geometry,
)
from numbaconv.functional import conv2d, conv2d_backward, conv2d_forward
from numbaconv.indices import _real_array
from numbaconv.nn._checks import check_train, no_forward_state


def layer_dtype(dtype: object) -> np.dtype:
    """Validate a layer's parameter dtype: float32 or float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def image_dims(value: object) -> tuple[int, int, int]:
    """Validate ``X_dim = (C, H, W)``: a tuple, list or 1-d array of 3 sizes (ints, NumPy
    integers or whole-number floats, as classic code computes them)."""
    if not (isinstance(value, (tuple, list))
            or (isinstance(value, np.ndarray) and value.ndim == 1)) or len(value) != 3:
        raise ValueError(f"X_dim must be a tuple (C, H, W) of 3 ints, got {value!r}")
    dims = tuple(as_classic_int("X_dim", v) for v in value)
    if min(dims) < 1:
        raise ValueError(f"X_dim must contain positive sizes, got {value!r}")
    return dims  # type: ignore[return-value]


def classic_weights(shape: tuple[int, int, int, int], rng: object,
                    n_filter: int | None = None) -> np.ndarray:
    """The classic initialisation ``randn(*shape) / sqrt(K / 2)`` in float64, from ``rng``;
    ``K`` is ``n_filter``, by default ``shape[0]``.

    ``None`` draws from NumPy's global generator exactly as the classic layer does
    (``np.random.randn(...) / np.sqrt(n_filter / 2.)``), so ``np.random.seed`` reproduces it
    and the global stream moves on as it would; see :class:`Conv` for the other kinds."""
    scale = np.sqrt((shape[0] if n_filter is None else n_filter) / 2.)
    if rng is None:
        # The legacy global generator on purpose: it is what classic code seeds.
        return np.random.randn(*shape) / scale  # noqa: NPY002
    if isinstance(rng, np.random.RandomState):
        return rng.randn(*shape) / scale
    if isinstance(rng, (bool, np.bool_)):
        raise TypeError(f"rng must be None, an int seed >= 0, a numpy.random.Generator or a "
                        f"RandomState, got {rng!r}")
    try:
        generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    except (TypeError, ValueError) as err:  # default_rng's own words, with what is expected
        raise type(err)(f"rng must be None, an int seed >= 0, a numpy.random.Generator or a "
                        f"RandomState, got {rng!r} ({err})") from None
    return generator.standard_normal(shape) / scale


def layer_groups(groups: object, in_channels: int, out_channels: int,
                 channels: str = "in_channels", filters: str = "out_channels") -> int:
    """``groups`` as an int >= 1 that divides the input channels and the filters."""
    g = as_groups(groups)
    if in_channels % g:
        raise ValueError(f"in_channels must be divisible by groups: {channels}={in_channels}, "
                         f"groups={g}")
    if out_channels % g:
        raise ValueError(f"out_channels must be divisible by groups: {filters}={out_channels}, "
                         f"groups={g}")
    return g


def as_bias_flag(bias: object) -> bool:
    """The ``bias`` argument of a layer: a bool."""
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"bias must be a bool (whether the layer has a bias), got {bias!r} "
                        f"({type(bias).__name__})")
    return bool(bias)


class WeightsAndBias:
    """``W`` and ``b`` as views of ``params = [W, b]`` (``[W]`` without a bias, then ``b``
    is None): an optimizer may update the arrays in place, or rebind ``layer.W`` /
    ``layer.params[0]``, and the two stay in sync."""

    params: list[np.ndarray]

    @property
    def W(self) -> np.ndarray:
        return self.params[0]

    @W.setter
    def W(self, value: np.ndarray) -> None:
        self.params[0] = value

    @property
    def b(self) -> np.ndarray | None:
        return self.params[1] if len(self.params) > 1 else None

    @b.setter
    def b(self, value: np.ndarray) -> None:
        if len(self.params) < 2:
            raise AttributeError(f"{type(self).__name__} was built with bias=False: it has no "
                                 f"bias to set")
        self.params[1] = value


class ClassicLayer(WeightsAndBias):
    """What the classic ``Conv`` and ``ConvTranspose`` share: the sizes, the parameters, the
    input check of ``forward`` and ``backward``.  A subclass names its functional calls
    (``_functions``) and passes its hyperparameters to :meth:`_run`."""

    #: The functional calls behind the layer: training forward, inference, backward.
    _functions: tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]

    def _sizes(self, X_dim: object, n_filter: object, h_filter: object,
               w_filter: object) -> None:
        self.d_X, self.h_X, self.w_X = image_dims(X_dim)
        self.n_filter = as_positive_int("n_filter", as_classic_int("n_filter", n_filter))
        self.h_filter = as_positive_int("h_filter", as_classic_int("h_filter", h_filter))
        self.w_filter = as_positive_int("w_filter", as_classic_int("w_filter", w_filter))

    def _draw(self, shape: tuple[int, int, int, int], rng: object, has_bias: bool) -> None:
        """The classic initialisation (see :func:`classic_weights`), and a zero bias."""
        self.params = [classic_weights(shape, rng, self.n_filter).astype(self.dtype)]
        if has_bias:
            self.params.append(np.zeros((self.n_filter, 1), dtype=self.dtype))
        self._cache: object = None
        self._inference = False

    def _input(self, X: object) -> np.ndarray:
        """``X`` checked: ``(N, C, H, W)`` with the layer's image shape, in the layer's dtype."""
        name = type(self).__name__
        if not (type(X) is np.ndarray and X.flags.c_contiguous and X.dtype == self.dtype):
            # Any real numeric dtype, as the classic layer's np.dot takes it (uint8 images,
            # say), converted here once: the kernels are float32 / float64 only.
            X = _real_array("X", X, f"{name}.forward").astype(self.dtype, copy=False)
        expected = (self.d_X, self.h_X, self.w_X)
        if X.ndim != 4 or X.shape[1:] != expected:
            hint = input_shape_hint(X.shape, self.d_X, (self.h_X, self.w_X))
            if X.ndim != 4:
                raise ValueError(
                    f"Expected 4D X (N, C, H, W) for {name}.forward, but got X of size: "
                    f"{list(X.shape)}{hint}")
            raise ValueError(
                f"{name} was built for images of shape (C, H, W) = {expected}, "
                f"got input of shape {X.shape}{hint}")
        return X

    def _run(self, X: object, train: object, *hyperparameters: object,
             **options: object) -> np.ndarray:
        """``forward``: the training call (keeping its cache) or, with ``train=False``, the
        inference call, on ``(X, W, b, *hyperparameters)``."""
        train = check_train(train)
        forward, infer, _ = self._functions
        args = (self._input(X), self.W, self.b, *hyperparameters)
        if not train:
            self._cache, self._inference = None, True
            return infer(*args, **options)
        out, self._cache = forward(*args, **options)
        self._inference = False
        return out

    def backward(self, dout: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Gradients for ``dout`` of shape (N, K, h_out, w_out): ``(dX, [dW, db])``, or
        ``(dX, [dW])`` without a bias."""
        if self._cache is None:
            raise no_forward_state(type(self).__name__, self._inference)
        dX, dW, db = self._functions[2](dout, self._cache)
        if len(self.params) < 2:
            return dX, [dW]
        return dX, [dW, db.reshape(self.n_filter, 1)]


class Conv(ClassicLayer):
    """2-D convolution layer with the classic teaching API.

    Parameters
    ----------
    X_dim : tuple (C, H, W)
        Shape of one input image.
    n_filter, h_filter, w_filter : int
        Number of filters K and the kernel height and width.
    stride : int or (int, int)
        Per-axis stride.
    padding : int, (int, int), ((int, int), (int, int)), 'valid' or 'same'
        Per-axis padding, as :func:`numbaconv.conv2d_forward` takes it.
    dilation : int or (int, int), keyword-only
        Spacing between kernel taps.
    groups : int, keyword-only
        Channels and filters are cut into this many groups (both must be divisible by it);
        the weights are ``(K, C/groups, fh, fw)``.
    bias : bool, keyword-only
        Whether the layer has a bias; without one ``params == [W]``, ``b`` is None and
        ``backward`` returns ``(dX, [dW])``.
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}, keyword-only
        How the border is filled.
    dtype : float32 or float64, keyword-only
        Parameter dtype, and the dtype of every result: ``forward`` converts input of any
        other real dtype to it (integers too, such as uint8 images, as classic code takes
        them; bool and complex input is refused), so a float32 batch into a float64 layer
        gives float64 outputs and gradients.
    rng : None, int, numpy.random.Generator or numpy.random.RandomState, keyword-only
        Source of the classic initialisation.  ``None`` (the default) draws exactly as the
        classic layer, ``np.random.randn(n_filter, C // groups, h_filter, w_filter) /
        np.sqrt(n_filter / 2.)`` from NumPy's global generator, then casts to ``dtype``: after
        ``np.random.seed(s)`` the weights are bit for bit the classic layer's, and the
        global stream is left where the classic layer leaves it.  An int seeds a new
        ``np.random.default_rng``; a Generator (``standard_normal``) or a RandomState
        (``randn``) is drawn from, by the same formula.
    workspace : int, keyword-only
        Byte budget for the column buffer, see :func:`numbaconv.conv2d_forward`.

    Attributes
    ----------
    W : ndarray (K, C/groups, fh, fw)
    b : ndarray (K, 1), or None with ``bias=False``
    params : list [W, b], or [W]
        The very arrays ``forward`` uses: an optimizer may update them in place, or rebind
        ``layer.W`` / ``layer.params[i]`` (the two stay in sync).
    h_out, w_out : int
    out_dim : tuple (K, h_out, w_out)

    Notes
    -----
    ``forward(X, train=False)`` is inference: it runs :func:`numbaconv.conv2d` (no cache,
    no private copy of ``X``), bitwise the same output, and keeps nothing for ``backward``.

    Sizes and hyperparameters may also be NumPy integers or whole-number floats such as
    ``2.0``, as classic (Python-2-era) code computes them with ``/``; ``1.5``, NaN and bools
    are refused.  The functional API, :func:`numbaconv.conv2d_forward`, keeps PyTorch's
    strict ints: it is the API of new code, where a float size is a bug to report (``/``
    meant as ``//``), as ``torch.nn.functional.conv2d`` reports it.
    """

    _functions = (conv2d_forward, conv2d, conv2d_backward)

    def __init__(
        self,
        X_dim: tuple[int, int, int],
        n_filter: int,
        h_filter: int,
        w_filter: int,
        stride: IntPair,
        padding: Padding,
        *,
        dilation: IntPair = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        dtype: object = np.float64,
        rng: None | int | np.random.Generator = None,
        workspace: int | None = None,
    ) -> None:
        self._sizes(X_dim, n_filter, h_filter, w_filter)
        # As ints (or tuples of ints): conv2d_forward, which gets them, takes nothing else.
        stride = as_classic_hyperparameter("stride", stride)
        padding = as_classic_hyperparameter("padding", padding)
        dilation = as_classic_hyperparameter("dilation", dilation)
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.groups = layer_groups(as_classic_int("groups", groups), self.d_X, self.n_filter,
                                   "X_dim[0]", "n_filter")
        has_bias = as_bias_flag(bias)
        self.padding_mode = check_padding_mode(padding_mode)
        self.dtype = layer_dtype(dtype)
        self.workspace = check_workspace(workspace)
        geom = make_geometry((1, self.d_X, self.h_X, self.w_X), self.n_filter,
                             self.h_filter, self.w_filter, stride, padding, dilation, op="Conv",
                             padding_forms=True)
        check_mode_fits(self.padding_mode, (1, self.d_X, self.h_X, self.w_X), geom.pads, "Conv")
        self.h_out, self.w_out = geom.ho, geom.wo
        self.out_dim = (self.n_filter, self.h_out, self.w_out)

        self._draw((self.n_filter, self.d_X // self.groups, self.h_filter, self.w_filter), rng,
                   has_bias)

    def forward(self, X: np.ndarray, train: bool = True) -> np.ndarray:
        """Convolve a batch ``X`` of shape (N, C, H, W); returns (N, K, h_out, w_out).

        The result has the layer's dtype (input of another real dtype, ints included, is
        converted to it).
        With ``train=False`` (inference) nothing is kept for ``backward``."""
        return self._run(X, train, self.stride, self.padding, self.dilation, self.groups,
                         padding_mode=self.padding_mode, workspace=self.workspace)

    def __repr__(self) -> str:
        extra = "" if self.groups == 1 else f", groups={self.groups}"
        extra += "" if self.b is not None else ", bias=False"
        extra += "" if self.padding_mode == "zeros" else f", padding_mode={self.padding_mode!r}"
        return (f"Conv(X_dim={(self.d_X, self.h_X, self.w_X)}, n_filter={self.n_filter}, "
                f"h_filter={self.h_filter}, w_filter={self.w_filter}, stride={self.stride!r}, "
                f"padding={self.padding!r}, dilation={self.dilation!r}{extra}, "
                f"dtype={self.dtype})")
