"""One convolution layer of a real network: its geometry, sizes, FLOPs and matrix products.

A :class:`Layer` is the shape of one ``conv2d`` (or ``conv_transpose2d``) call without the batch
size, which the benchmarks choose (``--batch``).  Everything is square here (kernel, stride,
padding), as in every network of :mod:`numbaconv.bench.networks`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

#: The two things a network benchmark times per layer.
NET_OPS: tuple[str, ...] = ("train", "infer")

#: What each op means, for the legend.
OP_TITLES: dict[str, str] = {"train": "training (forward+backward)",
                             "infer": "inference (forward only)"}

#: Number of matrix products of each op (training: forward, weight and input gradients).
PRODUCTS: dict[str, int] = {"train": 3, "infer": 1}


@dataclass(frozen=True)
class GemmDims:
    """The matrix products of a layer, in the shape of a convolution's forward product.

    For a convolution the forward product is ``W_row (k, r) @ cols (r, nq)`` once per group;
    the backward products are ``G (k, nq) @ cols.T`` and ``W_row.T @ G``.  A transposed
    convolution runs the same three products with the roles of input and output exchanged.
    """

    groups: int
    k: int
    r: int
    nq: int

    @property
    def multiply_adds(self) -> int:
        """Multiply-adds of one product, all groups together."""
        return self.groups * self.k * self.r * self.nq


@dataclass(frozen=True)
class Layer:
    """A convolution layer: C input channels of H x W, K output channels, an f x f kernel.

    For a transposed layer (``transposed=True``) C and K are still the input and output
    channels, the weights have shape (C, K/groups, f, f) (PyTorch's layout) and the output is
    ``(H - 1)*stride - 2*padding + dilation*(f - 1) + output_padding + 1`` on each axis.
    ``count`` is how many times the layer occurs in its network and ``also`` names the other
    occurrences (identical layers are folded into the first).
    """

    name: str
    C: int
    H: int
    W: int
    K: int
    f: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1
    transposed: bool = False
    output_padding: int = 0
    count: int = 1
    also: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.C % self.groups or self.K % self.groups:
            raise ValueError(f"{self.name}: groups={self.groups} must divide C={self.C} "
                             f"and K={self.K}")
        if self.Ho < 1 or self.Wo < 1:
            raise ValueError(f"{self.name}: empty output ({self.Ho}x{self.Wo})")

    # --- sizes
    def _out(self, size: int) -> int:
        span = self.dilation * (self.f - 1)
        if self.transposed:
            return (size - 1) * self.stride - 2 * self.padding + span + self.output_padding + 1
        return (size + 2 * self.padding - span - 1) // self.stride + 1

    @property
    def Ho(self) -> int:
        return self._out(self.H)

    @property
    def Wo(self) -> int:
        return self._out(self.W)

    def x_shape(self, n: int) -> tuple[int, int, int, int]:
        return (n, self.C, self.H, self.W)

    def out_shape(self, n: int) -> tuple[int, int, int, int]:
        return (n, self.K, self.Ho, self.Wo)

    @property
    def w_shape(self) -> tuple[int, int, int, int]:
        if self.transposed:
            return (self.C, self.K // self.groups, self.f, self.f)
        return (self.K, self.C // self.groups, self.f, self.f)

    # --- kinds
    @property
    def depthwise(self) -> bool:
        """One input channel per group (MobileNet's 3x3 layers): not a matrix product."""
        return self.groups > 1 and self.groups == self.C

    @property
    def kind(self) -> str:
        """``conv``, ``grouped``, ``depthwise`` or ``transposed``."""
        if self.transposed:
            return "transposed"
        if self.depthwise:
            return "depthwise"
        return "grouped" if self.groups > 1 else "conv"

    @property
    def geometry(self) -> tuple:
        """Everything but the names and the count: equal geometries are the same layer."""
        return (self.C, self.H, self.W, self.K, self.f, self.stride, self.padding,
                self.dilation, self.groups, self.transposed, self.output_padding)

    # --- work
    def gemm(self, n: int) -> GemmDims:
        """The layer's products at batch size ``n`` (see :class:`GemmDims`)."""
        g = self.groups
        if self.transposed:  # the adjoint of a conv from the K outputs to the C inputs
            return GemmDims(g, self.C // g, (self.K // g) * self.f**2, n * self.H * self.W)
        return GemmDims(g, self.K // g, (self.C // g) * self.f**2, n * self.Ho * self.Wo)

    def multiply_adds(self, n: int) -> int:
        """Multiply-adds of the forward pass at batch size ``n``."""
        return self.gemm(n).multiply_adds

    def flops(self, op: str, n: int) -> int:
        """FLOPs of ``op`` (``train``: three products, ``infer``: one) at batch size ``n``."""
        return 2 * PRODUCTS[op] * self.multiply_adds(n)

    def io_bytes(self, n: int, itemsize: int) -> int:
        """Bytes of the input and output arrays at batch size ``n``."""
        return itemsize * n * (self.C * self.H * self.W + self.K * self.Ho * self.Wo)

    # --- text
    def describe(self) -> str:
        """``C=64 56x56 K=64 3x3 S=1 P=1`` (+ ``D=``, ``g=``, ``T`` and ``op=`` where set)."""
        text = (f"C={self.C} {self.H}x{self.W} K={self.K} {self.f}x{self.f} "
                f"S={self.stride} P={self.padding}")
        if self.dilation != 1:
            text += f" D={self.dilation}"
        if self.groups != 1:
            text += f" g={self.groups}"
        if self.transposed:
            text += " T"
            if self.output_padding:
                text += f" op={self.output_padding}"
        return text

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.update(Ho=self.Ho, Wo=self.Wo, kind=self.kind, also=list(self.also))
        return d


SHAPE_LEGEND = ("shapes: N = batch size, C = input channels, HxW = input height x width, "
                "K = filters (output channels), fhxfw = kernel, S = stride, P = zero padding "
                "on every side, D = dilation, g = groups (g = C: depthwise), T = transposed "
                "convolution (op = output_padding)")


def deduplicate(layers: list[Layer]) -> list[Layer]:
    """Fold layers of equal geometry into the first one, counting the occurrences."""
    first: dict[tuple, int] = {}
    out: list[Layer] = []
    for layer in layers:
        i = first.get(layer.geometry)
        if i is None:
            first[layer.geometry] = len(out)
            out.append(layer)
        else:
            kept = out[i]
            out[i] = dataclasses.replace(kept, count=kept.count + layer.count,
                                         also=(*kept.also, layer.name, *layer.also))
    return out
