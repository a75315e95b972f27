"""Start-up benchmarks: a fresh interpreter importing numbaconv and running its first
forward+backward (classic shape, float32), with an empty numba cache (cold: compiles every
kernel) and with the cache a previous process filled (warm); ``import numpy, numba`` alone
for reference. Each round is a whole subprocess (interpreter start-up included); the split
into import and first-call time measured inside the process is stored in ``extra_info``.
The same measurement without pytest: ``numbaconv bench --startup``.
"""

from __future__ import annotations

import tempfile

import pytest

from numbaconv.bench.shapes import SHAPES
from numbaconv.bench.startup import PROBE_CODE, REFERENCE_CODE, probe_args, run_code

ARGS = probe_args(SHAPES["classic"], "float32")


@pytest.fixture(scope="module")
def warm_cache_dir():
    with tempfile.TemporaryDirectory(prefix="numbaconv-cache-") as d:
        run_code(PROBE_CODE, ARGS, d)  # fills the cache
        yield d


@pytest.mark.parametrize("case", ["cold", "warm", "numpy+numba"])
def test_startup(benchmark, warm_cache_dir: str, case: str) -> None:
    benchmark.group = "startup|classic|float32"
    benchmark.extra_info["case"] = case
    dirs: list[tempfile.TemporaryDirectory] = []

    def setup():
        if case == "cold":  # a new, empty cache for every round
            dirs.append(tempfile.TemporaryDirectory(prefix="numbaconv-cache-"))
            return (dirs[-1].name,), {}
        return (warm_cache_dir,), {}

    code, args = (REFERENCE_CODE, []) if case == "numpy+numba" else (PROBE_CODE, ARGS)

    def run(cache_dir: str) -> None:
        benchmark.extra_info.update(run_code(code, args, cache_dir))

    try:
        benchmark.pedantic(run, setup=setup, rounds=1 if case == "cold" else 3)
    finally:
        for d in dirs:
            d.cleanup()
