"""numbaconv: fast CPU convolution layers (im2col + GEMM) with parallel Numba kernels."""

from numbaconv._validation import BackwardBeforeForwardError
from numbaconv._version import __version__
from numbaconv.functional import ConvCache, conv2d_backward, conv2d_forward
from numbaconv.indices import col2im_indices, im2col_indices
from numbaconv.layer import Conv

__all__ = [
    "BackwardBeforeForwardError",
    "Conv",
    "ConvCache",
    "__version__",
    "col2im_indices",
    "conv2d_backward",
    "conv2d_forward",
    "im2col_indices",
]
