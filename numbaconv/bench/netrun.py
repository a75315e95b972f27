"""Run the network benchmark: every layer x batch x dtype x op, the three implementations
timed in alternation, and the per-network sums weighted by how often each layer occurs.

One *case* is one layer at one batch size, dtype and op (``train`` or ``infer``).  Its
implementations (numbaconv, the bare products, torch) are timed round by round in the same
process (:func:`~numbaconv.bench.timing.measure_interleaved` with at least ``min_rounds``
rounds, so even a call longer than the budget is paired); each record keeps the median and
range of every implementation's samples and the median and range of the per-round ratios
``numbaconv / bare`` and ``numbaconv / torch`` (above 1: numbaconv slower).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from numbaconv._progress import ProgressBar
from numbaconv.bench.layers import NET_OPS, Layer
from numbaconv.bench.netimpls import (
    NET_IMPLS,
    LayerProblem,
    make_callable,
    memory_estimate,
    unsupported,
)
from numbaconv.bench.networks import Network, select_layers
from numbaconv.bench.timing import measure_interleaved, paired_ratios

#: Short dtype names used in case labels (``train|resnet50.conv1|b1|f32``).
DTYPE_TAGS = {"float32": "f32", "float64": "f64"}

#: The untimed call before each sample is skipped for samples longer than this.
PRECALL_MAX_S = 0.05


@dataclass(frozen=True)
class Case:
    """One layer of ``network`` at batch size ``n``, ``dtype`` and ``op``."""

    network: str
    layer: Layer
    n: int
    dtype: str
    op: str

    @property
    def label(self) -> str:
        """``op|network.layer|bN|f32``, also the pytest-benchmark group."""
        return (f"{self.op}|{self.network}.{self.layer.name}|b{self.n}|"
                f"{DTYPE_TAGS.get(self.dtype, self.dtype)}")


def make_cases(networks: Sequence[Network], batches: Sequence[int], dtypes: Sequence[str],
               ops: Sequence[str] = NET_OPS, patterns: Sequence[str] | None = None
               ) -> list[Case]:
    """Every case, grouped as the report prints them: network, dtype, batch, op, layer."""
    cases = []
    for net in networks:
        layers = select_layers(net.layers(), patterns)
        for dtype in dtypes:
            for n in batches:
                for op in ops:
                    cases += [Case(net.name, layer, n, dtype, op) for layer in layers]
    return cases


def _record(case: Case) -> dict[str, Any]:
    layer = case.layer
    itemsize = 4 if case.dtype == "float32" else 8
    return {"network": case.network, "layer": layer.name, "count": layer.count,
            "kind": layer.kind, "shape": layer.describe(), "n": case.n, "dtype": case.dtype,
            "op": case.op, "flops": layer.flops(case.op, case.n),
            "io_bytes": layer.io_bytes(case.n, itemsize), "impls": {}, "ratios": {}}


def time_case(case: Case, *, repeat: int = 5, budget_s: float = 1.0, min_rounds: int = 3,
              torch: bool = True, max_memory: int | None = None) -> dict[str, Any]:
    """Time one case; never raises for what an implementation cannot do.

    An implementation that is not supported by the installed numbaconv, or fails, is
    recorded with ``unsupported`` or ``error`` and the others are timed; a case needing more
    than ``max_memory`` bytes is recorded as ``skipped`` and not run.
    """
    rec = _record(case)
    itemsize = 4 if case.dtype == "float32" else 8
    need = memory_estimate(case.layer, case.n, itemsize, case.op)
    if max_memory is not None and need > max_memory:
        rec["skipped"] = (f"needs about {need / 2**30:.1f} GiB, more than the "
                          f"{max_memory / 2**30:.1f} GiB allowed (--max-memory)")
        return rec
    impls = [i for i in NET_IMPLS if torch or i != "torch"]
    problem = LayerProblem(case.layer, case.n, case.dtype)
    fns = ready_callables(rec, impls, unsupported(case.layer, case.op),
                          lambda impl: make_callable(problem, case.op, impl))
    if not fns:
        return rec
    timings, samples = measure_interleaved(fns, repeat=repeat, budget_s=budget_s,
                                           min_rounds=min_rounds, precall_max_s=PRECALL_MAX_S)
    for impl, timing in timings.items():
        rec["impls"][impl] = timing.to_dict()
        rec["impls"][impl]["gflops"] = rec["flops"] / timing.median_s / 1e9
    rec["ratios"] = paired_ratios(timings, samples, "numbaconv", ("bare", "torch"))
    return rec


def ready_callables(rec: dict[str, Any], impls: Sequence[str], reason: str | None,
                    make: Callable[[str], Callable[[], object]]
                    ) -> dict[str, Callable[[], object]]:
    """Each implementation's callable ``make(impl)``, called once (it compiles, and fails here
    rather than inside the timer); ``rec["impls"]`` says why one is missing: numbaconv
    ``unsupported`` for ``reason``, or the ``error`` it raised (the run goes on)."""
    fns = {}
    for impl in impls:
        if impl == "numbaconv" and reason is not None:
            rec["impls"][impl] = {"unsupported": reason}
            continue
        try:
            fn = make(impl)
            fn()
        except Exception as exc:  # noqa: BLE001 - reported, the run goes on
            rec["impls"][impl] = {"error": f"{type(exc).__name__}: {exc}"}
        else:
            fns[impl] = fn
    return fns


def run_cases(cases: Sequence[Case], *, repeat: int = 5, budget_s: float = 1.0,
              min_rounds: int = 3, torch: bool = True, max_memory: int | None = None,
              progress: bool = True, stream: TextIO | None = None) -> list[dict[str, Any]]:
    """Time every case (see :func:`time_case`); the progress bar counts finished cases."""
    results = []
    with ProgressBar(len(cases), stream=sys.stderr if stream is None else stream,
                     enabled=progress, unit="case") as bar:
        for case in cases:
            bar.start(case.label)
            results.append(time_case(case, repeat=repeat, budget_s=budget_s,
                                     min_rounds=min_rounds, torch=torch,
                                     max_memory=max_memory))
            bar.update(case.label)
    return results


def median_of(rec: dict[str, Any], impl: str, key: str = "median_s") -> float | None:
    """An implementation's time (``median_s``, ``min_s`` or ``max_s``) in a case record."""
    value = rec["impls"].get(impl, {}).get(key)
    return value if isinstance(value, (int, float)) else None


def network_sums(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (network, batch, dtype, op): each implementation's time summed over the layers,
    every layer weighted by its count.

    Only layers with a time for numbaconv and for every reference measured in the run count,
    so that the sums compare the same work; ``layers``/``of_layers`` say how many.  Where
    every layer's samples were paired, the ratio is the average of the layers' per-round
    ratios (median, lowest, highest) weighted by the reference's time, i.e. the sums' ratio
    had every layer run at that ratio; otherwise the ratio of the summed medians.
    """
    groups: dict[tuple[str, int, str, str], list[dict[str, Any]]] = {}
    for rec in results:
        groups.setdefault((rec["network"], rec["n"], rec["dtype"], rec["op"]), []).append(rec)
    sums = []
    for (network, n, dtype, op), recs in groups.items():
        refs = [i for i in ("bare", "torch")
                if any(median_of(r, i) is not None for r in recs)]
        complete = [r for r in recs
                    if all(median_of(r, i) is not None for i in ("numbaconv", *refs))]
        entry: dict[str, Any] = {
            "network": network, "n": n, "dtype": dtype, "op": op, "layers": len(complete),
            "of_layers": len(recs), "convolutions": sum(r["count"] for r in complete),
            "of_convolutions": sum(r["count"] for r in recs), "impls": {}, "ratios": {}}
        for impl in ("numbaconv", *refs):
            entry["impls"][impl] = {
                key: sum(r["count"] * median_of(r, impl, key) for r in complete)
                for key in ("median_s", "min_s", "max_s")} if complete else {}
        for impl in refs:
            theirs = sum(r["count"] * median_of(r, impl) for r in complete)
            if not theirs:
                continue
            ratio = {"median": entry["impls"]["numbaconv"]["median_s"] / theirs}
            paired = [r for r in complete if "min" in r["ratios"].get(impl, {})]
            if len(paired) == len(complete):
                for end in ("median", "min", "max"):
                    ratio[end] = sum(r["count"] * median_of(r, impl) * r["ratios"][impl][end]
                                     for r in complete) / theirs
            entry["ratios"][impl] = ratio
        sums.append(entry)
    return sums
