"""Time a network's convolutions back to back, in the order of its forward pass.

The per-layer cases (:mod:`numbaconv.bench.netrun`) time every layer on its own, after an
idle moment before each sample.  A network does not run that way: its layers follow one
another with no pause, and how a thread pool behaves depends on that.  On a virtual machine
with few cores, a thread pool whose workers sleep between calls (Numba's, as numbaconv starts
it) can lose a core for a while after an idle moment (see the threads page of the docs), which
the per-layer protocol meets at every sample and a network only after its own pauses.

A *pass* runs every convolution of the network (each occurrence, in forward order; only the
layers selected with ``--layers``) once, each as its per-layer case does: for training the
layer's forward and backward, one layer after the other; for inference its forward.  The
three implementations' passes are timed in alternation (with an idle moment before each
sample, as between two training steps), and the ratios are the medians of the per-round
ratios.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from numbaconv._progress import ProgressBar
from numbaconv.bench.layers import Layer
from numbaconv.bench.netimpls import (
    NET_IMPLS,
    LayerProblem,
    make_callable,
    memory_estimate,
    unsupported,
)
from numbaconv.bench.netrun import DTYPE_TAGS, ready_callables
from numbaconv.bench.networks import Network, select_layers
from numbaconv.bench.timing import measure_interleaved, paired_ratios


def pass_order(net: Network, patterns: Sequence[str] | None = None) -> list[Layer]:
    """The selected distinct layers, one entry per occurrence, in forward order."""
    distinct = {layer.geometry: layer for layer in select_layers(net.layers(), patterns)}
    return [distinct[layer.geometry] for layer in net.all_layers() if layer.geometry in distinct]


def make_pass(order: Sequence[Layer], problems: dict, op: str, impl: str
              ) -> Callable[[], None]:
    """One pass of ``impl`` over ``order``, with the data of ``problems`` (by geometry)."""
    calls = {g: make_callable(p, op, impl) for g, p in problems.items()}
    steps = [calls[layer.geometry] for layer in order]

    def run() -> None:
        for step in steps:
            step()
    return run


def pass_problems(order: Sequence[Layer], n: int, dtype: str) -> dict:
    """Seeded data of every distinct layer of ``order``, by geometry."""
    return {layer.geometry: LayerProblem(layer, n, dtype) for layer in distinct_layers(order)}


def distinct_layers(order: Sequence[Layer]) -> list[Layer]:
    """The layers of ``order`` once each, in the order they first occur."""
    return list({layer.geometry: layer for layer in order}.values())


def pass_unsupported(order: Sequence[Layer], op: str) -> str | None:
    """Why the installed numbaconv cannot run the pass (the first layer it cannot run), or
    None."""
    return next((r for r in (unsupported(layer, op) for layer in distinct_layers(order))
                 if r is not None), None)


def time_pass(net: Network, n: int, dtype: str, op: str, *,
              patterns: Sequence[str] | None = None, repeat: int = 5, budget_s: float = 1.0,
              min_rounds: int = 3, torch: bool = True, max_memory: int | None = None
              ) -> dict[str, Any]:
    """Time one pass of ``net`` at batch ``n`` for every implementation that runs all of it.

    A pass needs every distinct layer's data at once; when that is more than ``max_memory``
    bytes, or an implementation cannot run one of the layers, the pass is recorded as
    ``skipped`` (with the reason) or that implementation is left out.
    """
    order = pass_order(net, patterns)
    rec: dict[str, Any] = {"network": net.name, "n": n, "dtype": dtype, "op": op,
                           "convolutions": len(order), "impls": {}, "ratios": {}}
    if not order:
        rec["skipped"] = "no layer selected"
        return rec
    itemsize = 4 if dtype == "float32" else 8
    need = sum(memory_estimate(layer, n, itemsize, op) for layer in distinct_layers(order))
    if max_memory is not None and need > max_memory:
        rec["skipped"] = (f"needs about {need / 2**30:.1f} GiB, more than the "
                          f"{max_memory / 2**30:.1f} GiB allowed (--max-memory)")
        return rec
    problems = pass_problems(order, n, dtype)
    fns = ready_callables(rec, [i for i in NET_IMPLS if torch or i != "torch"],
                          pass_unsupported(order, op),
                          lambda impl: make_pass(order, problems, op, impl))
    if not fns:
        return rec
    timings, samples = measure_interleaved(fns, repeat=repeat, budget_s=budget_s,
                                           min_rounds=min_rounds, precall_max_s=0.0)
    for impl, timing in timings.items():
        rec["impls"][impl] = timing.to_dict()
    rec["ratios"] = paired_ratios(timings, samples, "numbaconv", ("bare", "torch"))
    return rec


def time_passes(networks: Sequence[Network], batches: Sequence[int], dtypes: Sequence[str],
                ops: Sequence[str], *, progress: bool = True, stream: TextIO | None = None,
                **kwargs: Any) -> list[dict[str, Any]]:
    """:func:`time_pass` for every network, dtype, batch size and op, in the report's order."""
    todo = [(net, n, dtype, op) for net in networks for dtype in dtypes for n in batches
            for op in ops]
    results = []
    with ProgressBar(len(todo), stream=sys.stderr if stream is None else stream,
                     enabled=progress, unit="pass") as bar:
        for net, n, dtype, op in todo:
            label = f"{op}|{net.name}|b{n}|{DTYPE_TAGS.get(dtype, dtype)}"
            bar.start(label)
            results.append(time_pass(net, n, dtype, op, **kwargs))
            bar.update(label)
    return results
