"""The layer lists of the network benchmarks: sizes chain through each network, the totals
match the published multiply-add counts, duplicates are folded with their counts, and the
bare products and support checks see the shapes they should.  Nothing here is timed."""

from __future__ import annotations

import re

import numpy as np
import pytest

from numbaconv.bench import netimpls
from numbaconv.bench.layers import GemmDims, Layer, deduplicate
from numbaconv.bench.networks import NETWORKS, parse_batches, parse_networks, select_layers

#: Published forward multiply-adds at the networks' input sizes (convolutions only: the
#: torchvision figures less the fully connected layer), and how many convolutions they have.
PUBLISHED = {
    "vgg16": (15.35e9, 13),       # 15.47 G with the three FC layers (124 M)
    "resnet50": (4.087e9, 53),    # 4.09 G with the FC layer (2 M)
    "resnext50": (4.228e9, 53),   # 4.23 G
    "mobilenet_v2": (0.2995e9, 52),  # 300 M with the classifier (1.3 M)
}

OUTPUTS = {"vgg16": (512, 14, 14), "resnet50": (2048, 7, 7), "resnext50": (2048, 7, 7),
           "mobilenet_v2": (1280, 7, 7), "unet": (2, 256, 256), "dcgan": (3, 64, 64)}


def _by_name(network: str) -> dict[str, Layer]:
    return {layer.name: layer for layer in NETWORKS[network].all_layers()}


@pytest.mark.parametrize("network", list(PUBLISHED))
def test_multiply_adds_match_the_published_counts(network: str) -> None:
    macs, convs = PUBLISHED[network]
    layers = NETWORKS[network].all_layers()
    assert len(layers) == convs
    assert sum(layer.multiply_adds(1) for layer in layers) == pytest.approx(macs, rel=0.005)


@pytest.mark.parametrize("network", list(OUTPUTS))
def test_output_of_the_last_layer(network: str) -> None:
    assert NETWORKS[network].output() == OUTPUTS[network]


@pytest.mark.parametrize("network", ["vgg16", "dcgan"])
def test_sequential_networks_chain(network: str) -> None:
    layers = NETWORKS[network].all_layers()
    for prev, nxt in zip(layers, layers[1:], strict=False):
        assert nxt.C == prev.K, (prev.name, nxt.name)
        assert (nxt.H, nxt.W) in {(prev.Ho, prev.Wo), (prev.Ho // 2, prev.Wo // 2)}


@pytest.mark.parametrize("network", ["resnet50", "resnext50"])
def test_bottlenecks_chain(network: str) -> None:
    by = _by_name(network)
    blocks = sorted({m.group(1) for n in by if (m := re.match(r"(layer\d\.\d+)\.", n))},
                    key=lambda b: tuple(int(x) for x in re.findall(r"\d+", b)))
    assert len(blocks) == 16
    previous = (64, 56, 56)  # after the stem and its max pool
    assert (by["conv1"].K, by["conv1"].Ho // 2) == (64, 56)
    for block in blocks:
        c1, c2, c3 = (by[f"{block}.conv{i}"] for i in (1, 2, 3))
        assert previous == (c1.C, c1.H, c1.W), block
        assert (c1.K, c1.Ho) == (c2.C, c2.H) and (c2.K, c2.Ho) == (c3.C, c3.H)
        out = (c3.K, c3.Ho, c3.Wo)
        shortcut = by.get(f"{block}.downsample.0")
        if shortcut is not None:  # the projection maps the block input to the block output
            assert previous[:2] == (shortcut.C, shortcut.H)
            assert (shortcut.K, shortcut.Ho, shortcut.Wo) == out
        else:
            assert out == previous  # identity shortcut
        previous = out
    grouped = [layer for layer in by.values() if layer.groups > 1]
    assert len(grouped) == (16 if network == "resnext50" else 0)
    assert all(layer.groups == 32 and layer.C // 32 >= 4 for layer in grouped)


def test_mobilenet_blocks_chain() -> None:
    layers = NETWORKS["mobilenet_v2"].all_layers()
    for prev, nxt in zip(layers, layers[1:], strict=False):
        assert nxt.C == prev.K and (prev.Ho, prev.Wo) == (nxt.H, nxt.W), (prev.name, nxt.name)
    depthwise = [layer for layer in layers if layer.depthwise]
    assert len(depthwise) == 17
    assert all(layer.f == 3 and layer.K == layer.C == layer.groups for layer in depthwise)


def test_unet_encoder_decoder_chain() -> None:
    by = _by_name("unet")
    assert [by[f"enc{i}.conv1"].H for i in range(1, 5)] == [256, 128, 64, 32]
    assert by["bottleneck.conv1"].H == 16 and by["bottleneck.conv2"].K == 1024
    for level, k in zip([4, 3, 2, 1], [512, 256, 128, 64], strict=True):
        up, enc, dec = by[f"up{level}"], by[f"enc{level}.conv2"], by[f"dec{level}.conv1"]
        assert up.transposed and k == up.K and (up.Ho, up.Wo) == (enc.Ho, enc.Wo)
        assert dec.C == up.K + enc.K and up.Ho == dec.H  # concatenated skip connection
    assert by["out"].C == 64 and by["out"].f == 1


@pytest.mark.parametrize("network", list(NETWORKS))
def test_duplicates_are_folded_with_their_count(network: str) -> None:
    net = NETWORKS[network]
    full, distinct = net.all_layers(), net.layers()
    assert sum(layer.count for layer in distinct) == len(full)
    assert len({layer.geometry for layer in distinct}) == len(distinct)
    by = {layer.name: layer for layer in full}
    for layer in distinct:
        assert layer.count == 1 + len(layer.also)
        assert all(by[name].geometry == layer.geometry for name in layer.also)
    weighted = sum(layer.count * layer.flops("train", 2) for layer in distinct)
    assert weighted == sum(layer.flops("train", 2) for layer in full)


def test_deduplicate_keeps_the_first_name() -> None:
    a, b = Layer("a", 8, 4, 4, 8, 3, 1, 1), Layer("b", 8, 4, 4, 8, 3, 1, 1)
    c = Layer("c", 8, 4, 4, 16, 3, 1, 1)
    out = deduplicate([a, c, b])
    assert [(x.name, x.count, x.also) for x in out] == [("a", 2, ("b",)), ("c", 1, ())]


def test_layer_sizes_flops_and_products() -> None:
    conv = Layer("x", C=64, H=56, W=56, K=128, f=3, stride=2, padding=1)
    assert (conv.Ho, conv.Wo) == (28, 28)
    assert conv.flops("infer", 2) == 2 * 2 * 128 * 64 * 9 * 28 * 28
    assert conv.flops("train", 2) == 3 * conv.flops("infer", 2)
    assert conv.gemm(2) == GemmDims(groups=1, k=128, r=64 * 9, nq=2 * 28 * 28)
    grouped = Layer("g", C=128, H=28, W=28, K=128, f=3, padding=1, groups=32)
    assert grouped.w_shape == (128, 4, 3, 3) and grouped.kind == "grouped"
    assert grouped.multiply_adds(1) == 128 * 4 * 9 * 28 * 28
    transposed = Layer("t", C=512, H=4, W=4, K=256, f=4, stride=2, padding=1, transposed=True)
    assert (transposed.Ho, transposed.w_shape) == (8, (512, 256, 4, 4))
    d = transposed.gemm(1)  # W_row.T (256*16, 512) @ X (512, 16)
    assert (d.k, d.r, d.nq) == (512, 256 * 16, 16)
    assert transposed.multiply_adds(1) == 512 * 256 * 16 * 16
    depthwise = Layer("d", C=96, H=112, W=112, K=96, f=3, stride=2, padding=1, groups=96)
    assert depthwise.kind == "depthwise"
    assert depthwise.io_bytes(2, 4) == 4 * 2 * (96 * 112 * 112 + 96 * 56 * 56)
    with pytest.raises(ValueError, match="groups"):
        Layer("bad", C=6, H=4, W=4, K=4, f=1, groups=4)


def test_parse_and_select() -> None:
    assert [n.name for n in parse_networks("resnet50, vgg16,resnet50")] == ["resnet50", "vgg16"]
    assert len(parse_networks("all")) == len(NETWORKS)
    with pytest.raises(ValueError, match="'alexnet'"):
        parse_networks("alexnet")
    assert parse_batches("1,8,32,8") == [1, 8, 32]
    for bad in ("0", "a", ""):
        with pytest.raises(ValueError, match="positive integers"):
            parse_batches(bad)
    layers = NETWORKS["resnet50"].layers()
    assert [x.name for x in select_layers(layers, ["layer4.0.*"])] == [
        "layer4.0.conv1", "layer4.0.conv2", "layer4.0.conv3", "layer4.0.downsample.0"]
    # a folded duplicate's name selects the layer it was folded into
    assert [x.name for x in select_layers(layers, ["layer1.0.downsample.0"])] == [
        "layer1.0.conv3"]


@pytest.mark.parametrize(("nq", "rows", "limit", "blocks"), [
    pytest.param(100, 10, 10_000, [100], id="fits"),
    pytest.param(100, 10, 4 * 10 * 30, [30, 30, 30, 10], id="remainder"),
    pytest.param(5, 10**9, 1, [1] * 5, id="one-column-at-least"),
])
def test_column_blocks(nq: int, rows: int, limit: int, blocks: list[int]) -> None:
    assert netimpls.column_blocks(nq, rows, 4, limit) == blocks


@pytest.mark.parametrize("op", ["train", "infer"])
@pytest.mark.parametrize("layer", [
    pytest.param(Layer("conv", 6, 5, 5, 4, 3, 1, 1), id="conv"),
    pytest.param(Layer("grouped", 6, 5, 5, 4, 3, 1, 1, groups=2), id="grouped"),
    pytest.param(Layer("transposed", 6, 3, 3, 4, 2, 2, transposed=True), id="transposed"),
    pytest.param(Layer("depthwise", 6, 5, 5, 6, 3, 1, 1, groups=6), id="depthwise"),
])
def test_every_reference_runs_on_every_kind(layer: Layer, op: str) -> None:
    problem = netimpls.LayerProblem(layer, 2, "float32")
    impls = [i for i in netimpls.NET_IMPLS if i != "torch" or netimpls.torch_module()]
    for impl in impls:
        if impl == "numbaconv" and netimpls.unsupported(layer, op) is not None:
            with pytest.raises(NotImplementedError, match="not supported by this version"):
                netimpls.make_callable(problem, op, impl)
            continue
        netimpls.make_callable(problem, op, impl)()


def test_torch_reference_matches_the_layer_shapes() -> None:
    torch = pytest.importorskip("torch")
    layer = Layer("t", C=8, H=4, W=4, K=6, f=4, stride=2, padding=1, transposed=True)
    p = netimpls.LayerProblem(layer, 2, "float64")
    out = netimpls.make_callable(p, "infer", "torch")()
    assert tuple(out.shape) == layer.out_shape(2) and out.dtype == torch.float64
    grads = netimpls.make_callable(p, "train", "torch")()
    assert [tuple(g.shape) for g in grads] == [p.x.shape, p.w.shape, p.b.shape]


def test_support_is_read_from_the_installed_api(monkeypatch: pytest.MonkeyPatch) -> None:
    import numbaconv

    conv = Layer("c", 8, 4, 4, 8, 3, 1, 1)
    grouped = Layer("g", 8, 4, 4, 8, 3, 1, 1, groups=2)
    transposed = Layer("t", 8, 4, 4, 8, 2, 2, transposed=True)

    def without_groups(x, w, b=None, stride=1, padding=0, dilation=1):
        return np.zeros(1), None

    def with_groups(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
        return np.zeros(1), None

    # an older numbaconv: no inference function, no groups, no transposed convolution
    monkeypatch.setattr(numbaconv, "conv2d_forward", without_groups)
    monkeypatch.delattr(numbaconv, "conv2d", raising=False)
    monkeypatch.delattr(numbaconv, "conv_transpose2d_forward", raising=False)
    assert netimpls.unsupported(conv, "train") is None
    assert "no numbaconv.conv2d" in netimpls.unsupported(conv, "infer")
    assert "conv2d_forward has no groups=" in netimpls.unsupported(grouped, "train")
    assert "no numbaconv.conv_transpose2d_forward" in netimpls.unsupported(transposed, "train")
    assert netimpls.unsupported(grouped, "train").startswith("not supported by this version")
    # a newer one
    monkeypatch.setattr(numbaconv, "conv2d", with_groups, raising=False)
    monkeypatch.setattr(numbaconv, "conv2d_forward", with_groups)
    assert netimpls.unsupported(grouped, "train") is None
    assert netimpls.unsupported(grouped, "infer") is None
