"""Benchmarks of the conv layers of real networks (numbaconv.bench.networks), training and
inference, with numbaconv, the bare matrix products and torch.

Groups are ``op|network.layer|bN|dtype`` (``train|resnet50.layer3.0.conv2|b1|f32``), the
implementations ``numbaconv``, ``bare`` and ``torch``; the same cases as ``numbaconv bench
--network``.  The network passes (every convolution of a network once, in forward order,
back to back: ``numbaconv.bench.netpass``) are the groups ``op|network|pass|bN|dtype``, over
all of each network's layers whatever ``--bench-layers`` says.  JIT compilation and torch's
start are never timed: each callable gets an untimed warm-up call (skipped under
``--benchmark-disable``, where every case runs once).  Layers the installed numbaconv cannot
run (``groups=``, transposed convolution) are skipped with the reason.

By default only batch size 1 and a few representative layers per network run, so the smoke
run of CI stays short; ask for more with the options of benchmarks/conftest.py or their
environment variables:

``--bench-batches 1,8,32``  (``NUMBACONV_BENCH_BATCHES``) batch sizes, default 1
``--bench-layers all``      (``NUMBACONV_BENCH_LAYERS``) ``smoke`` (default), ``all`` or
                            shell-style patterns of layer names
``--bench-networks a,b``    (``NUMBACONV_BENCH_NETWORKS``) networks, default all
"""

from __future__ import annotations

import pytest

from numbaconv.bench import netimpls
from numbaconv.bench.layers import NET_OPS
from numbaconv.bench.netpass import make_pass, pass_order, pass_problems, pass_unsupported
from numbaconv.bench.netrun import DTYPE_TAGS, Case, make_cases
from numbaconv.bench.networks import parse_batches, parse_networks
from numbaconv.bench.shapes import DTYPES

#: The layers of the default (smoke) selection: a few of each kind per network.
SMOKE_LAYERS: dict[str, tuple[str, ...]] = {
    "vgg16": ("conv5_1",),
    "resnet50": ("conv1", "layer3.0.conv2", "layer4.0.downsample.0"),
    "unet": ("enc1.conv1", "up4", "out"),
    "mobilenet_v2": ("features.2.conv.0.0", "features.2.conv.1.0"),
    "resnext50": ("layer2.1.conv2",),
    "dcgan": ("convt1", "convt5"),
}

HAVE_TORCH = netimpls.torch_module() is not None
IMPLS = tuple(i for i in netimpls.NET_IMPLS if HAVE_TORCH or i != "torch")


def _cases(config: pytest.Config) -> list[Case]:
    try:
        networks = parse_networks(config.getoption("--bench-networks"))
        batches = parse_batches(config.getoption("--bench-batches"))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    layers = config.getoption("--bench-layers").strip()
    cases = []
    for net in networks:
        patterns = (None if layers == "all" else SMOKE_LAYERS[net.name] if layers == "smoke"
                    else [p.strip() for p in layers.split(",") if p.strip()])
        cases += make_cases([net], batches, DTYPES, NET_OPS, patterns)
    return cases


def _passes(config: pytest.Config) -> list:
    networks = parse_networks(config.getoption("--bench-networks"))
    batches = parse_batches(config.getoption("--bench-batches"))
    return [pytest.param(net, n, dtype, op, impl,
                         id=f"{op}|{net.name}|pass|b{n}|{DTYPE_TAGS[dtype]}|{impl}")
            for net in networks for n in batches for dtype in DTYPES for op in NET_OPS
            for impl in IMPLS]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "net" in metafunc.fixturenames:
        metafunc.parametrize(("net", "n", "dtype", "op", "impl"), _passes(metafunc.config))
    if "case" in metafunc.fixturenames:
        metafunc.parametrize(
            ("case", "dtype", "impl"),
            [pytest.param(c, c.dtype, impl, id=f"{c.label}|{impl}")
             for c in _cases(metafunc.config) for impl in IMPLS])


_PROBLEMS: dict[tuple, netimpls.LayerProblem] = {}


def _problem(case: Case) -> netimpls.LayerProblem:
    """Seeded inputs of the case's layer, one (layer, batch, dtype) kept at a time."""
    key = (case.network, case.layer.name, case.n, case.dtype)
    if key not in _PROBLEMS:
        _PROBLEMS.clear()
        _PROBLEMS[key] = netimpls.LayerProblem(case.layer, case.n, case.dtype)
    return _PROBLEMS[key]


def test_network_layer(benchmark, case: Case, dtype: str, impl: str) -> None:
    if impl == "numbaconv":
        reason = netimpls.unsupported(case.layer, case.op)
        if reason is not None:
            pytest.skip(reason)
    benchmark.group = case.label
    benchmark.extra_info.update(network=case.network, layer=case.layer.name,
                                shape=case.layer.describe(), count=case.layer.count,
                                n=case.n, dtype=dtype, op=case.op, impl=impl,
                                flops=case.layer.flops(case.op, case.n))
    fn = netimpls.make_callable(_problem(case), case.op, impl)
    if not benchmark.disabled:
        fn()  # warm-up: JIT compilation (and torch's first call) is never timed
    benchmark(fn)


def test_network_pass(benchmark, net, n: int, dtype: str, op: str, impl: str) -> None:
    order = pass_order(net)
    reason = pass_unsupported(order, op)
    if impl == "numbaconv" and reason is not None:
        pytest.skip(reason)
    benchmark.group = f"{op}|{net.name}|pass|b{n}|{DTYPE_TAGS[dtype]}"
    benchmark.extra_info.update(network=net.name, convolutions=len(order), n=n, dtype=dtype,
                                op=op, impl=impl)
    fn = make_pass(order, pass_problems(order, n, dtype), op, impl)
    if not benchmark.disabled:
        fn()  # warm-up: JIT compilation (and torch's first call) is never timed
    benchmark(fn)
