"""pytest-benchmark suite of numbaconv (see docs/benchmarks.md).

Run ``pytest benchmarks`` to time everything, ``pytest benchmarks --benchmark-disable``
for the quick smoke run CI does (every benchmark called once, plus an untimed warm-up
for the JIT-compiled and torch implementations).

Options added here:

``--bench-shapes a,b``  restrict the SPEC shapes (default: all)
``--bench-dtypes ...``  float32, float64 or both (default: both)
``--bench-impls ...``   restrict the implementations (default: all available)

and for the real networks (benchmarks/test_networks.py), each with an environment variable
that sets its default:

``--bench-networks a,b``  ``NUMBACONV_BENCH_NETWORKS``: networks (default: all)
``--bench-batches 1,8``   ``NUMBACONV_BENCH_BATCHES``: batch sizes (default: 1)
``--bench-layers ...``    ``NUMBACONV_BENCH_LAYERS``: ``smoke`` (a few layers per network,
                          the default), ``all``, or shell-style patterns of layer names
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from numbaconv.bench import shapes as sh
from numbaconv.bench.impls import Problem

HERE = Path(__file__).resolve().parent


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("numbaconv benchmarks")
    group.addoption("--bench-shapes", default=",".join(sh.SHAPES),
                    help="comma-separated SPEC shape names (default: all)")
    group.addoption("--bench-dtypes", default="both", help="float32, float64 or both")
    group.addoption("--bench-impls", default=",".join((*sh.IMPLS, "bare")),
                    help="comma-separated implementations (default: all available)")
    group.addoption("--bench-networks", default=os.environ.get("NUMBACONV_BENCH_NETWORKS", "all"),
                    help="networks of test_networks.py (default: all; "
                         "env NUMBACONV_BENCH_NETWORKS)")
    group.addoption("--bench-batches", default=os.environ.get("NUMBACONV_BENCH_BATCHES", "1"),
                    help="batch sizes of test_networks.py (default: 1; "
                         "env NUMBACONV_BENCH_BATCHES)")
    group.addoption("--bench-layers", default=os.environ.get("NUMBACONV_BENCH_LAYERS", "smoke"),
                    help="layers of test_networks.py: smoke (a few per network, default), all, "
                         "or shell-style name patterns (env NUMBACONV_BENCH_LAYERS)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the cases outside --bench-shapes/--bench-dtypes/--bench-impls.

    Only items of this directory are looked at (the hook sees the whole session, e.g.
    ``pytest tests benchmarks``).
    """
    try:
        shapes = {s.name for s in sh.parse_shapes(config.getoption("--bench-shapes"))}
        dtypes = set(sh.parse_dtypes(config.getoption("--bench-dtypes")))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    impls = {i.strip() for i in config.getoption("--bench-impls").split(",")}
    keep, drop = [], []
    for item in items:
        if HERE not in Path(item.path).parents:
            keep.append(item)
            continue
        case = getattr(item, "callspec", None)
        params = case.params if case is not None else {}
        ok = (params.get("shape_name", next(iter(shapes))) in shapes
              and params.get("dtype", next(iter(dtypes))) in dtypes
              and params.get("impl", next(iter(impls))) in impls)
        (keep if ok else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


_PROBLEMS: dict[tuple[str, str], Problem] = {}


@pytest.fixture(scope="session")
def problem_for():
    """``problem_for(shape_name, dtype)``: seeded inputs, one (shape, dtype) kept at a time."""
    def get(shape_name: str, dtype: str) -> Problem:
        key = (shape_name, dtype)
        if key not in _PROBLEMS:
            _PROBLEMS.clear()
            _PROBLEMS[key] = Problem(sh.SHAPES[shape_name], dtype)
        return _PROBLEMS[key]
    return get
