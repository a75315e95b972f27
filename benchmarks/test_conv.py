"""Benchmarks of im2col, col2im, forward, backward and forward+backward on the SPEC shapes.

Groups are ``op|shape|dtype``; in each group the implementations are ``naive`` (classic
shape only: the Python-loop reference takes minutes on the others, see
``numbaconv.bench.shapes.naive_allowed``), ``fancy``, ``numbaconv`` and ``torch`` (when
installed). JIT compilation is never timed: numbaconv and torch get an untimed warm-up call
(skipped under ``--benchmark-disable``, where nothing is timed and every benchmark runs once).
"""

from __future__ import annotations

import pytest

from numbaconv.bench import shapes as sh
from numbaconv.bench.impls import available_impls, make_callable
from numbaconv.bench.machine import torch_module

HAVE_TORCH = torch_module() is not None

CASES = [
    pytest.param(op, name, dtype, impl, id=f"{op}|{name}|{dtype}|{impl}")
    for name, shape in sh.SHAPES.items()
    for dtype in sh.DTYPES
    for op in sh.OPS
    for impl in available_impls(op, shape, torch=HAVE_TORCH)
]

#: Implementations whose first call compiles or initialises something.
WARM_UP = ("numbaconv", "torch")


@pytest.mark.parametrize(("op", "shape_name", "dtype", "impl"), CASES)
def test_conv(benchmark, problem_for, op: str, shape_name: str, dtype: str, impl: str) -> None:
    shape = sh.SHAPES[shape_name]
    benchmark.group = f"{op}|{shape_name}|{dtype}"
    benchmark.extra_info.update(op=op, shape=shape_name, dtype=dtype, impl=impl,
                                flops=shape.flops(op))
    fn = make_callable(problem_for(shape_name, dtype), op, impl)
    if impl in WARM_UP and not benchmark.disabled:
        fn()
    if impl == "naive":
        benchmark.pedantic(fn, rounds=3, iterations=1)
    else:
        benchmark(fn)
