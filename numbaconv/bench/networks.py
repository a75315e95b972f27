"""The convolution layers of published networks, for ``numbaconv bench --network``.

Every network is written as its forward pass through a :class:`_Trace`, which follows the
feature map (channels, height, width) through convolutions, pooling and concatenations and
records each convolution as a :class:`~numbaconv.bench.layers.Layer` with the input it gets.
Layer names follow the usual module names (``conv3_1`` for VGG, ``layer2.0.conv2`` for the
torchvision ResNets, ``features.4.conv.1.0`` for MobileNetV2).  Only convolutions are listed:
pooling, normalisation, activations and fully connected layers are not timed.

Networks
--------
vgg16
    VGG-16 (configuration D of Simonyan & Zisserman, 2015), 224x224 RGB input: 13 layers.
resnet50
    ResNet-50 as in torchvision (v1.5: the stride of a downsampling bottleneck is in its 3x3
    layer), 224x224: the 7x7 stem, 16 bottlenecks (1x1, 3x3, 1x1) and 4 projection shortcuts.
resnext50
    ResNeXt-50 32x4d (Xie et al., 2017; torchvision's layout): ResNet-50 with twice as wide
    bottlenecks whose 3x3 layers have groups=32.
mobilenet_v2
    MobileNetV2 1.0 (Sandler et al., 2018; torchvision's layout), 224x224: the stem, 17
    inverted residual blocks (1x1 expansion, depthwise 3x3, 1x1 projection) and the last 1x1.
unet
    U-Net (Ronneberger et al., 2015) encoder and decoder with the paper's channels (64 to 1024,
    one input channel, two classes) at **256x256** with padded ("same") 3x3 convolutions, the
    common variant, instead of the paper's 572x572 unpadded ones: skip connections need no
    cropping, and a batch of 32 fits in memory.  Up-convolutions are 2x2 transposed
    convolutions with stride 2.
dcgan
    The DCGAN generator (Radford et al., 2016; PyTorch's DCGAN example: nz=100, ngf=64): five
    4x4 transposed convolutions from a 100-vector (1x1) to a 3x64x64 image.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from numbaconv.bench.layers import Layer, deduplicate


class _Trace:
    """The feature map (C, H, W) of a forward pass, and the convolution layers seen so far."""

    def __init__(self, channels: int, size: int) -> None:
        self.C, self.H, self.W = channels, size, size
        self.layers: list[Layer] = []

    @property
    def state(self) -> tuple[int, int, int]:
        return (self.C, self.H, self.W)

    def restore(self, state: tuple[int, int, int]) -> None:
        self.C, self.H, self.W = state

    def conv(self, name: str, k: int, f: int, stride: int = 1, padding: int = 0, *,
             groups: int = 1, transposed: bool = False) -> Layer:
        layer = Layer(name, self.C, self.H, self.W, k, f, stride, padding, groups=groups,
                      transposed=transposed)
        self.layers.append(layer)
        self.C, self.H, self.W = k, layer.Ho, layer.Wo
        return layer

    def pool(self, f: int = 2, stride: int = 2, padding: int = 0) -> None:
        """Max pooling (floor rule, as the convolutions)."""
        self.H = (self.H + 2 * padding - f) // stride + 1
        self.W = (self.W + 2 * padding - f) // stride + 1

    def concat(self, skip: tuple[int, int, int]) -> None:
        """Concatenate a saved feature map of the same size along the channels."""
        if skip[1:] != (self.H, self.W):
            raise ValueError(f"cannot concatenate {skip} with {self.state}")
        self.C += skip[0]


def _vgg16(t: _Trace) -> None:
    for stage, (k, n) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], start=1):
        for i in range(1, n + 1):
            t.conv(f"conv{stage}_{i}", k, 3, 1, 1)
        t.pool()


def _bottlenecks(t: _Trace, width_factor: int, groups: int) -> None:
    """torchvision's ResNet-50 stages of bottlenecks (ResNeXt: wider, grouped 3x3 layers)."""
    t.conv("conv1", 64, 7, 2, 3)
    t.pool(3, 2, 1)
    for stage, (planes, blocks) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)], start=1):
        width, out = planes * width_factor, planes * 4
        for b in range(blocks):
            name = f"layer{stage}.{b}"
            stride = 2 if b == 0 and stage > 1 else 1
            block_input = t.state
            t.conv(f"{name}.conv1", width, 1)
            t.conv(f"{name}.conv2", width, 3, stride, 1, groups=groups)
            t.conv(f"{name}.conv3", out, 1)
            if b == 0:  # projection shortcut: from the block's input to the block's output
                after = t.state
                t.restore(block_input)
                t.conv(f"{name}.downsample.0", out, 1, stride)
                if t.state != after:
                    raise ValueError(f"{name}: shortcut {t.state} != main path {after}")


def _resnet50(t: _Trace) -> None:
    _bottlenecks(t, width_factor=1, groups=1)


def _resnext50(t: _Trace) -> None:
    _bottlenecks(t, width_factor=2, groups=32)  # 32 groups of 4 channels in layer1


def _mobilenet_v2(t: _Trace) -> None:
    t.conv("features.0.0", 32, 3, 2, 1)
    index = 1
    for expand, channels, repeats, first_stride in [
            (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
            (6, 160, 3, 2), (6, 320, 1, 1)]:
        for r in range(repeats):
            name, hidden = f"features.{index}.conv", t.C * expand
            sub = 0
            if expand != 1:
                t.conv(f"{name}.0.0", hidden, 1)
                sub = 1
            t.conv(f"{name}.{sub}.0", hidden, 3, first_stride if r == 0 else 1, 1,
                   groups=hidden)
            t.conv(f"{name}.{sub + 1}", channels, 1)
            index += 1
    t.conv(f"features.{index}.0", 1280, 1)


def _unet(t: _Trace) -> None:
    skips = []
    for level, k in enumerate([64, 128, 256, 512], start=1):
        t.conv(f"enc{level}.conv1", k, 3, 1, 1)
        t.conv(f"enc{level}.conv2", k, 3, 1, 1)
        skips.append(t.state)
        t.pool()
    t.conv("bottleneck.conv1", 1024, 3, 1, 1)
    t.conv("bottleneck.conv2", 1024, 3, 1, 1)
    for level, k in zip([4, 3, 2, 1], [512, 256, 128, 64], strict=True):
        t.conv(f"up{level}", k, 2, 2, transposed=True)
        t.concat(skips.pop())
        t.conv(f"dec{level}.conv1", k, 3, 1, 1)
        t.conv(f"dec{level}.conv2", k, 3, 1, 1)
    t.conv("out", 2, 1)


def _dcgan(t: _Trace) -> None:
    t.conv("convt1", 512, 4, 1, 0, transposed=True)
    for i, k in enumerate([256, 128, 64, 3], start=2):
        t.conv(f"convt{i}", k, 4, 2, 1, transposed=True)


@dataclass(frozen=True)
class Network:
    """A network: its input (channels, size), where it comes from and how to trace it."""

    name: str
    channels: int
    size: int
    source: str
    trace: Callable[[_Trace], None]

    def all_layers(self) -> list[Layer]:
        """Every convolution, in the order of the forward pass (duplicates included)."""
        t = _Trace(self.channels, self.size)
        self.trace(t)
        return t.layers

    def layers(self) -> list[Layer]:
        """The distinct convolutions, each with how many times it occurs."""
        return deduplicate(self.all_layers())

    def output(self) -> tuple[int, int, int]:
        """(C, H, W) of the last convolution's output."""
        last = self.all_layers()[-1]
        return (last.K, last.Ho, last.Wo)

    def describe(self) -> str:
        return f"{self.name}: {self.source}, input {self.channels}x{self.size}x{self.size}"


NETWORKS: dict[str, Network] = {n.name: n for n in (
    Network("vgg16", 3, 224, "VGG-16 (configuration D)", _vgg16),
    Network("resnet50", 3, 224, "ResNet-50 (torchvision, v1.5)", _resnet50),
    Network("unet", 1, 256, "U-Net encoder+decoder, padded 3x3 convolutions", _unet),
    Network("mobilenet_v2", 3, 224, "MobileNetV2 1.0 (torchvision)", _mobilenet_v2),
    Network("resnext50", 3, 224, "ResNeXt-50 32x4d (torchvision)", _resnext50),
    Network("dcgan", 100, 1, "DCGAN generator (nz=100, ngf=64, 64x64 output)", _dcgan),
)}


def parse_networks(value: str | Iterable[str]) -> list[Network]:
    """``"vgg16,resnet50"`` (or ``all``) as Network objects, in the given order."""
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [n.strip() for n in items if n.strip()]
    if names == ["all"]:
        return list(NETWORKS.values())
    unknown = [n for n in names if n not in NETWORKS]
    if not names or unknown:
        raise ValueError(f"unknown network(s) {', '.join(map(repr, unknown)) or '(none)'}; "
                         f"expected names from {', '.join(NETWORKS)} or all")
    return [NETWORKS[n] for n in dict.fromkeys(names)]


def parse_batches(value: str) -> list[int]:
    """``"1,8,32"`` as a list of positive batch sizes."""
    try:
        batches = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"expected comma-separated positive integers, got {value!r}") from None
    if not batches or min(batches) < 1:
        raise ValueError(f"expected comma-separated positive integers, got {value!r}")
    return list(dict.fromkeys(batches))


def select_layers(layers: list[Layer], patterns: Iterable[str] | None) -> list[Layer]:
    """The layers whose name (or a folded duplicate's name) matches one of the shell-style
    ``patterns`` (``layer3.*``, ``conv1``); all of them for ``None``."""
    if patterns is None:
        return list(layers)
    pats = list(patterns)
    return [layer for layer in layers
            if any(fnmatch.fnmatchcase(name, p) for p in pats
                   for name in (layer.name, *layer.also))]
