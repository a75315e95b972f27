"""The 2-D convolution variants against PyTorch: groups (depthwise too), padding forms and
padding modes, forward and every gradient, float64 tight and float32; float64 finite
differences for the padding-mode and depthwise backward passes."""

from __future__ import annotations

import random

import numpy as np
import pytest

import numbaconv
from numbaconv import _depthwise, _grouped, _variants

torch = pytest.importorskip("torch")
from test_variants_oracle import torch_conv  # noqa: E402  (after the torch skip)

DTYPES = (np.float64, np.float32)
TAG = {np.dtype(np.float64): "f64", np.dtype(np.float32): "f32"}
MODES = ("zeros", "reflect", "replicate", "circular")


def _pair(v) -> str:
    """``1``, ``2x1``, ``0-2x1-3`` ((top, bottom), (left, right)) or the padding string."""
    if isinstance(v, (str, int)):
        return str(v)
    return "x".join(_pair(p).replace("x", "-") for p in v)


def case_id(case: dict) -> str:
    """A readable id: kind, shapes, kernel, stride, padding, dilation, groups, mode."""
    m = case["k"] // case["c"] if case["groups"] == case["c"] else None
    groups = (f"dw{case['c']}m{m}" if m else f"g{case['groups']}") if case["groups"] > 1 else "g1"
    return (f"{groups}-N{case['n']}C{case['c']}K{case['k']}-{case['h']}x{case['w']}"
            f"-k{case['fh']}x{case['fw']}-s{_pair(case['stride'])}-p{_pair(case['padding'])}"
            f"-d{_pair(case['dilation'])}-{case['mode']}{'' if case['bias'] else '-nobias'}")


def _padding_form(r: random.Random, stride: tuple[int, int], pads: list[int]):
    """One of the padding forms for the amounts ``pads`` (top, bottom, left, right)."""
    top, bottom, left, right = pads
    choice = r.choice(["int", "pair", "pairs", "pairs", "valid", "same"])
    if choice == "same" and stride == (1, 1):
        return "same"
    if choice == "valid":
        return "valid"
    if choice == "int":
        return top
    if choice == "pair":
        return (top, left)
    return ((top, bottom), (left, right))


def random_case(seed: int, kind: str) -> dict:
    """A valid random configuration of ``kind``: 'depthwise', 'grouped', 'padding' (groups 1,
    zeros, any padding form) or 'mode' (any padding mode, any groups)."""
    r = random.Random(seed)
    fh, fw = r.choice([1, 2, 3, 3, 4, 5]), r.choice([1, 2, 3, 3, 5])
    dh, dw = r.choice([1, 1, 2]), r.choice([1, 1, 2, 3])
    stride = (r.choice([1, 1, 2, 3]), r.choice([1, 1, 2]))
    mode = r.choice(MODES[1:]) if kind == "mode" else (
        r.choice(MODES) if kind == "depthwise" else "zeros")
    h = r.randint(dh * (fh - 1) + 1, dh * (fh - 1) + 7)
    w = r.randint(dw * (fw - 1) + 1, dw * (fw - 1) + 8)
    limit = {"reflect": 1, "circular": 0}.get(mode)  # pad < size or pad <= size
    pads = []
    for size in (h, h, w, w):
        top = 3 if limit is None else min(3, size - limit)
        pads.append(r.randint(0, max(top, 0)))
    padding = _padding_form(r, stride, pads)
    if kind == "depthwise":
        c = r.randint(1, 6)
        groups, k = c, c * r.randint(1, 3)
    elif kind in ("grouped", "mode"):
        groups = r.choice([2, 3]) if kind == "grouped" else r.choice([1, 1, 2, 3])
        c, k = groups * r.randint(1, 3), groups * r.randint(1, 3)
        if groups == c and kind == "grouped":
            c *= 2
    else:
        groups, c, k = 1, r.randint(1, 4), r.randint(1, 4)
    if padding == "same" and mode in ("reflect", "circular"):
        padding = ((pads[0], pads[1]), (pads[2], pads[3]))
    return dict(n=r.randint(1, 3), c=c, h=h, w=w, k=k, fh=fh, fw=fw, stride=stride,
                padding=padding, dilation=(dh, dw), groups=groups, mode=mode,
                bias=r.random() < 0.7)


def _cases(kind: str, count: int, seed: int) -> list:
    cases = [random_case(seed + i, kind) for i in range(count)]
    return [pytest.param(case, id=case_id(case)) for case in cases]


# Hand-picked cases first (the layers of real networks, the corner cases), then random ones.
_FIXED = [
    dict(n=2, c=6, h=9, w=9, k=6, fh=3, fw=3, stride=1, padding=1, dilation=1, groups=6,
         mode="zeros", bias=True),  # MobileNet's depthwise 3x3
    dict(n=2, c=4, h=10, w=9, k=8, fh=3, fw=3, stride=2, padding=1, dilation=1, groups=4,
         mode="zeros", bias=False),  # depthwise, stride 2, multiplier 2
    dict(n=1, c=3, h=8, w=11, k=9, fh=5, fw=3, stride=(2, 3), padding=((2, 0), (1, 3)),
         dilation=(1, 2), groups=3, mode="reflect", bias=True),
    dict(n=2, c=8, h=7, w=7, k=8, fh=3, fw=3, stride=1, padding="same", dilation=1, groups=2,
         mode="zeros", bias=True),  # ResNeXt-like grouped 3x3
    dict(n=2, c=4, h=6, w=7, k=6, fh=4, fw=2, stride=1, padding="same", dilation=(1, 2),
         groups=2, mode="circular", bias=True),
    dict(n=1, c=2, h=5, w=5, k=3, fh=3, fw=3, stride=2, padding=((0, 4), (4, 0)), dilation=1,
         groups=1, mode="zeros", bias=True),  # padding on one side only
    dict(n=2, c=2, h=4, w=5, k=2, fh=3, fw=3, stride=1, padding=(3, 4), dilation=1, groups=1,
         mode="circular", bias=False),  # circular padding as large as the input
    dict(n=1, c=3, h=6, w=6, k=3, fh=3, fw=3, stride=1, padding=5, dilation=1, groups=3,
         mode="replicate", bias=True),  # replicate padding beyond the input size
    dict(n=2, c=2, h=5, w=6, k=2, fh=1, fw=1, stride=1, padding=((0, 1), (0, 0)), dilation=1,
         groups=1, mode="zeros", bias=True),  # 1x1 kernel: not pointwise (bottom padding)
]
CASES = ([pytest.param(c, id="fixed-" + case_id(c)) for c in _FIXED]
         + _cases("depthwise", 10, 100) + _cases("grouped", 6, 200)
         + _cases("padding", 8, 300) + _cases("mode", 8, 400))


def _data(case: dict, dtype, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case["n"], case["c"], case["h"], case["w"])).astype(dtype)
    w = rng.standard_normal((case["k"], case["c"] // case["groups"], case["fh"],
                             case["fw"])).astype(dtype)
    b = rng.standard_normal(case["k"]).astype(dtype) if case["bias"] else None
    return x, w, b


def _hyper(case: dict) -> dict:
    return dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"],
                groups=case["groups"])


@pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel")
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: TAG[np.dtype(d)])
def test_conv2d_variants_match_torch(case, dtype, assert_close):
    x, w, b = _data(case, dtype)
    hp = _hyper(case)
    out, cache = numbaconv.conv2d_forward(x, w, b, **hp, padding_mode=case["mode"])
    dout = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
    dx, dw, db = numbaconv.conv2d_backward(dout, cache)
    expected = torch_conv(x, w, b, dout, **hp, mode=case["mode"])
    for name, got, want in zip(("out", "dx", "dw", "db"), (out, dx, dw, db), expected,
                               strict=True):
        assert got.dtype == np.dtype(dtype), name
        assert_close(got, want, dtype, name)
    # Inference gives the forward output, bit for bit.
    assert np.array_equal(numbaconv.conv2d(x, w, b, **hp, padding_mode=case["mode"]), out)


def test_each_variant_takes_its_own_path(rng):
    """Depthwise calls run the direct kernels, other groups the per-group core, modes the
    padded buffer; the plain call stays on the core path (no dispatch)."""
    x = rng.standard_normal((2, 4, 6, 6))

    def cache_of(w, **kw):
        return numbaconv.conv2d_forward(x, w, None, 1, 1, **kw)[1]

    assert isinstance(cache_of(rng.standard_normal((8, 1, 3, 3)), groups=4),
                      _depthwise.DepthwiseCache)
    assert isinstance(cache_of(rng.standard_normal((4, 2, 3, 3)), groups=2),
                      _grouped.GroupedCache)
    padded = cache_of(rng.standard_normal((4, 4, 3, 3)), padding_mode="reflect")
    assert isinstance(padded, _variants.PaddedCache)
    assert isinstance(padded.inner, numbaconv.ConvCache)
    assert type(cache_of(rng.standard_normal((4, 4, 3, 3)))) is numbaconv.ConvCache
    # Depthwise with a mode pads inside its kernel: no separate padded input.
    assert isinstance(cache_of(rng.standard_normal((4, 1, 3, 3)), groups=4,
                               padding_mode="circular"), _depthwise.DepthwiseCache)


@pytest.mark.parametrize("stride", [1, 2], ids=["stride1", "stride2"])
def test_profiled_grouped_lanes_time_their_stages(stride, rng):
    """The grouped lanes report their stages to ``profile_stages`` (as the plain lanes do)
    and give the same numbers with their clocks compiled in."""
    from numbaconv._stages import profile_stages

    x = rng.standard_normal((2, 8, 9, 9))
    w = rng.standard_normal((8, 2, 3, 3))
    b = rng.standard_normal(8)
    out, cache = numbaconv.conv2d_forward(x, w, b, stride, 1, groups=4)
    assert isinstance(cache, _grouped.GroupedLanesCache)
    assert (cache.xg.ndim == 1) == (stride == 2)  # strided: kept split by stride phase
    grads = numbaconv.conv2d_backward(np.ones_like(out), cache)
    with profile_stages() as stages:
        out_p, cache_p = numbaconv.conv2d_forward(x, w, b, stride, 1, groups=4)
        grads_p = numbaconv.conv2d_backward(np.ones_like(out), cache_p)
    assert np.array_equal(out, out_p)
    assert all(np.array_equal(a, c) for a, c in zip(grads, grads_p, strict=True))
    for name in ("im2col", "gemm", "col2im"):
        assert stages.get(name, 0.0) > 0.0, (name, stages)


@pytest.mark.parametrize("stride", [1, 2], ids=["stride1", "stride2"])
def test_grouped_lanes_keep_a_private_copy_of_the_input(stride, rng):
    """The grouped lanes read the caller's array in place; the cache keeps its own copy (or
    its stride-phase split), so writing into x between the passes changes no gradient."""
    x = rng.standard_normal((3, 16, 10, 10))
    w = rng.standard_normal((16, 2, 3, 3))
    out, cache = numbaconv.conv2d_forward(x, w, None, stride, 1, groups=8)
    assert isinstance(cache, _grouped.GroupedLanesCache)
    dout = np.cos(out)
    before = numbaconv.conv2d_backward(dout, cache)
    x[...] = 0
    after = numbaconv.conv2d_backward(dout, cache)
    assert all(np.array_equal(a, c) for a, c in zip(before, after, strict=True))
    assert np.abs(before[1]).max() > 0


@pytest.mark.parametrize("mode", MODES)
def test_padding_forms_agree(mode, rng):
    """An int, a pair and the pair of pairs of the same amounts give the same results."""
    x = rng.standard_normal((2, 3, 6, 7))
    w = rng.standard_normal((4, 3, 3, 3))
    dout = rng.standard_normal((2, 4, 8, 9))
    results = []
    for padding in (2, (2, 2), ((2, 2), (2, 2)), [[2, 2], [2, 2]]):
        out, cache = numbaconv.conv2d_forward(x, w, None, 1, padding, padding_mode=mode)
        results.append([out, *numbaconv.conv2d_backward(dout, cache)])
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            assert np.array_equal(a, b)


def test_depthwise_keeps_a_private_copy_of_the_input(rng):
    """Writing into the input after the forward pass does not change the gradients."""
    x = rng.standard_normal((2, 3, 7, 7))
    w = rng.standard_normal((3, 1, 3, 3))
    out, cache = numbaconv.conv2d_forward(x, w, None, 1, 1, 1, 3)
    dout = rng.standard_normal(out.shape)
    expected = numbaconv.conv2d_backward(dout, cache)
    x[...] = 0
    for got, want in zip(numbaconv.conv2d_backward(dout, cache), expected, strict=True):
        assert np.array_equal(got, want)
    # A non-contiguous (converted) input is private already and works as well.
    x2 = rng.standard_normal((2, 3, 7, 14))[..., ::2]
    out2, cache2 = numbaconv.conv2d_forward(x2, w, None, 1, 1, 1, 3)
    assert np.array_equal(out2, numbaconv.conv2d(np.ascontiguousarray(x2), w, None, 1, 1, 1, 3))
    assert cache2.x is not x2


def test_depthwise_large_planes_and_many_images(rng, assert_close):
    """Shapes large enough for several batches, chunks and channel blocks per item."""
    for n, c, size, stride in ((3, 2, 40, 1), (5, 70, 5, 2), (17, 3, 9, 1)):
        x = rng.standard_normal((n, c, size, size + 3))
        w = rng.standard_normal((2 * c, 1, 3, 3))
        out, cache = numbaconv.conv2d_forward(x, w, None, stride, 1, 1, c)
        dout = rng.standard_normal(out.shape)
        got = (out, *numbaconv.conv2d_backward(dout, cache))
        want = torch_conv(x, w, None, dout, stride, 1, 1, c)
        for name, a, e in zip(("out", "dx", "dw", "db"), got, want, strict=True):
            assert_close(a, e, np.float64, f"{name} N{n} C{c} {size}")


TINY_PLANES = [(1, 1), (1, 2), (2, 3), (3, 1), (1, 9), (5, 6)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("plane", TINY_PLANES, ids=[f"{h}x{w}" for h, w in TINY_PLANES])
def test_depthwise_tiny_planes(plane, dtype, rng, assert_close):
    """Planes narrower than a vector: the kernels write rows in whole vectors that spill into
    the rows after them, never into another work item's planes (nor past the arrays)."""
    h, w = plane
    for n, c, m, kernel, stride, padding in ((1, 5, 1, 3, 1, 1), (3, 70, 3, 3, 2, 1),
                                             (2, 70, 2, 1, 1, 0), (3, 9, 1, 2, 1, 0)):
        if h + 2 * padding < kernel or w + 2 * padding < kernel:
            continue
        x = rng.standard_normal((n, c, h, w)).astype(dtype)
        wts = rng.standard_normal((m * c, 1, kernel, kernel)).astype(dtype)
        out, cache = numbaconv.conv2d_forward(x, wts, None, stride, padding, 1, c)
        dout = rng.standard_normal(out.shape).astype(dtype)
        got = (out, *numbaconv.conv2d_backward(dout, cache))
        want = torch_conv(x.astype(np.float64), wts.astype(np.float64), None,
                          dout.astype(np.float64), stride, padding, 1, c)
        for name, a, e in zip(("out", "dx", "dw", "db"), got, want, strict=True):
            assert_close(a, e, dtype, f"{name} N{n} C{c} m{m} {kernel}x{kernel} s{stride}")


# --- finite differences ---------------------------------------------------------------------

FD_CASES = [
    pytest.param(dict(groups=1, mode="reflect", padding=((2, 1), (1, 2)), stride=1), id="reflect"),
    pytest.param(dict(groups=1, mode="replicate", padding=3, stride=(2, 1)),
                 id="replicate-s2x1"),
    pytest.param(dict(groups=2, mode="circular", padding=(2, 4), stride=1),
                 id="circular-groups2"),
    pytest.param(dict(groups=4, mode="zeros", padding=((1, 0), (0, 2)), stride=2),
                 id="depthwise-asym-s2"),
    pytest.param(dict(groups=4, mode="reflect", padding=1, stride=1), id="depthwise-reflect"),
]


@pytest.mark.parametrize("hp", FD_CASES)
def test_gradients_match_finite_differences(hp, rng, numerical_grad):
    x = rng.standard_normal((2, 4, 5, 4))
    w = rng.standard_normal((8 if hp["groups"] == 4 else 4, 4 // hp["groups"], 3, 2))
    b = rng.standard_normal(w.shape[0])
    kwargs = dict(stride=hp["stride"], padding=hp["padding"], groups=hp["groups"],
                  padding_mode=hp["mode"])
    out, cache = numbaconv.conv2d_forward(x, w, b, **kwargs)
    r = rng.standard_normal(out.shape)
    dx, dw, db = numbaconv.conv2d_backward(r, cache)

    def loss() -> float:
        return float(np.sum(numbaconv.conv2d(x, w, b, **kwargs) * r))

    for name, got, value in (("dx", dx, x), ("dw", dw, w), ("db", db, b)):
        np.testing.assert_allclose(got, numerical_grad(loss, value), rtol=1e-6, atol=1e-7,
                                   err_msg=name)
