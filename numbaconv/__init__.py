"""numbaconv: fast CPU convolution layers (im2col + GEMM) with parallel Numba kernels."""

from numbaconv._threads import start_numba_threads_passively

start_numba_threads_passively()

from numbaconv import nn, reference  # noqa: E402  (submodules, after the core they build on)
from numbaconv._conv1d import Conv1dCache, conv1d, conv1d_backward, conv1d_forward  # noqa: E402
from numbaconv._validation import BackwardBeforeForwardError  # noqa: E402
from numbaconv._version import __version__  # noqa: E402
from numbaconv.functional import ConvCache, conv2d, conv2d_backward, conv2d_forward  # noqa: E402
from numbaconv.indices import col2im_indices, im2col_indices  # noqa: E402
from numbaconv.layer import Conv  # noqa: E402
from numbaconv.transposed import (  # noqa: E402
    ConvTransposeCache,
    conv_transpose2d,
    conv_transpose2d_backward,
    conv_transpose2d_forward,
)
from numbaconv.transposed_layer import ConvTranspose  # noqa: E402

__all__ = [
    "BackwardBeforeForwardError",
    "Conv",
    "Conv1dCache",
    "ConvCache",
    "ConvTranspose",
    "ConvTransposeCache",
    "__version__",
    "col2im_indices",
    "conv1d",
    "conv1d_backward",
    "conv1d_forward",
    "conv2d",
    "conv2d_backward",
    "conv2d_forward",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "conv_transpose2d_forward",
    "im2col_indices",
    "nn",
    "reference",
]
