"""Reference implementations: test oracles and benchmark baselines (NumPy only).

* ``naive_conv2d_forward`` / ``naive_conv2d_backward``: the formulas of the convolution as
  nested loops, one dot product per window (with groups, every padding form and mode). Slow
  and obviously right.
* ``naive_conv_transpose2d_forward`` / ``naive_conv_transpose2d_backward``: transposed
  convolution as the scatter loop of its definition.
* ``get_im2col_indices``, ``im2col_indices``, ``col2im_indices``, ``fancy_conv2d_forward``,
  ``fancy_conv2d_backward`` and ``FancyConv``: the classic fancy-index im2col with index
  arrays and ``np.add.at``, and the classic layer built on it.
"""

from numbaconv.reference.fancy import (
    FancyConv,
    col2im_indices,
    fancy_conv2d_backward,
    fancy_conv2d_forward,
    get_im2col_indices,
    im2col_indices,
)
from numbaconv.reference.naive import (
    naive_conv2d_backward,
    naive_conv2d_forward,
    naive_conv_transpose2d_backward,
    naive_conv_transpose2d_forward,
)

__all__ = [
    "FancyConv",
    "col2im_indices",
    "fancy_conv2d_backward",
    "fancy_conv2d_forward",
    "get_im2col_indices",
    "im2col_indices",
    "naive_conv2d_backward",
    "naive_conv2d_forward",
    "naive_conv_transpose2d_backward",
    "naive_conv_transpose2d_forward",
]
