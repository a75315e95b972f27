"""Layers, a loss and optimizers to train small CNNs on the CPU with ``numbaconv.Conv``.

Every layer has the classic API of :class:`numbaconv.Conv`: ``forward(X) -> out``,
``backward(dout) -> (dX, grads)`` with ``grads`` in the order of the layer's ``params``
list (empty for layers without parameters).  ``forward(X, train=False)`` is inference: the
same output, nothing kept for ``backward``.  ``Conv2d``, ``ConvTranspose2d`` and ``Conv1d``
are PyTorch-style convolution layers (``torch.nn``'s arguments and initialisation).
"""

from numbaconv.nn.activations import Flatten, ReLU
from numbaconv.nn.conv import Conv1d, Conv2d, ConvTranspose2d
from numbaconv.nn.dense import Dense
from numbaconv.nn.loss import SoftmaxCrossEntropy
from numbaconv.nn.optim import SGD, Adam
from numbaconv.nn.pooling import AvgPool2d, MaxPool2d
from numbaconv.nn.sequential import Sequential

__all__ = [
    "SGD",
    "Adam",
    "AvgPool2d",
    "Conv1d",
    "Conv2d",
    "ConvTranspose2d",
    "Dense",
    "Flatten",
    "MaxPool2d",
    "ReLU",
    "Sequential",
    "SoftmaxCrossEntropy",
]
