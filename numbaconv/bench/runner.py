"""Run a benchmark plan (shapes x dtypes x ops x implementations) and derive speedups."""

from __future__ import annotations

import statistics
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from numbaconv._progress import ProgressBar
from numbaconv.bench.impls import Problem, available_impls, make_callable
from numbaconv.bench.shapes import IMPLS, SHAPES, Shape
from numbaconv.bench.timing import measure_interleaved


@dataclass(frozen=True)
class Task:
    """Time ``op`` on ``shape``/``dtype`` with each implementation in ``impls``."""

    shape: Shape
    dtype: str
    op: str
    impls: tuple[str, ...]


def make_plan(shapes: Sequence[Shape], dtypes: Sequence[str], ops: Sequence[str],
              impls: Iterable[str] | None = None, *, torch: bool | None = None) -> list[Task]:
    """Every (shape, dtype, op) with the available implementations (optionally restricted)."""
    wanted = set(IMPLS if impls is None else impls)
    plan = []
    for shape in shapes:
        for dtype in dtypes:
            for op in ops:
                chosen = tuple(i for i in available_impls(op, shape, torch=torch) if i in wanted)
                if chosen:
                    plan.append(Task(shape, dtype, op, chosen))
    return plan


def run_plan(plan: Sequence[Task], *, repeat: int = 7, budget_s: float = 1.0,
             progress: bool = True, stream: TextIO | None = None) -> list[dict[str, Any]]:
    """Time every task of ``plan``; one result dict per (task, implementation).

    The implementations of one task are timed with interleaved samples
    (:func:`~numbaconv.bench.timing.measure_interleaved`); every non-numbaconv record also
    gets ``paired_ratio``, the median over rounds of its sample / numbaconv's sample of the
    same round. A failing implementation is recorded with ``median_s=None`` and an ``error``
    message instead of aborting the run.
    """
    results: list[dict[str, Any]] = []
    problems: dict[tuple[str, str], Problem] = {}
    with ProgressBar(len(plan), stream=stream if stream is not None else sys.stderr,
                     enabled=progress) as bar:
        for task in plan:
            key = (task.shape.name, task.dtype)
            if key not in problems:
                problems.clear()  # one problem's arrays at a time keeps memory bounded
                problems[key] = Problem(task.shape, task.dtype)
            label = f"{task.op}|{task.shape.name}|{task.dtype}"
            bar.start(label)
            results += time_task(problems[key], task, repeat=repeat, budget_s=budget_s)
            bar.update(label)
    return results


def time_task(problem: Problem, task: Task, *, repeat: int = 7, budget_s: float = 1.0
              ) -> list[dict[str, Any]]:
    """Time the implementations of one task, interleaved; return their result records."""
    shape, op = problem.shape, task.op
    records: dict[str, dict[str, Any]] = {
        impl: {"shape": shape.name, "op": op, "impl": impl, "dtype": problem.dtype.name}
        for impl in task.impls}
    fns = {}
    for impl in task.impls:
        try:
            fns[impl] = make_callable(problem, op, impl)
        except Exception as exc:  # noqa: BLE001 - reported, the run goes on
            records[impl].update(median_s=None, error=f"{type(exc).__name__}: {exc}")
    while fns:
        try:
            timings, samples = measure_interleaved(
                fns, repeat=repeat, budget_s=budget_s,
                warmup={impl: impl != "naive" for impl in fns})
            break
        except Exception as exc:  # noqa: BLE001 - find the culprit, time the others
            culprit = _first_failing(fns)
            if culprit is None:
                raise
            records[culprit].update(median_s=None, error=f"{type(exc).__name__}: {exc}")
            del fns[culprit]
    else:
        return list(records.values())
    flops = shape.flops(op)
    ours = samples.get("numbaconv") or []
    for impl, timing in timings.items():
        rec = records[impl]
        rec.update(timing.to_dict())
        rec["gflops"] = None if flops is None else flops / timing.median_s / 1e9
        if impl != "numbaconv" and "numbaconv" in timings:
            mine = samples[impl]
            if mine and len(mine) == len(ours):
                pairs = [a / b for a, b in zip(mine, ours, strict=True)]
                rec["paired_ratio"] = statistics.median(pairs)
                rec["paired_min"], rec["paired_max"] = min(pairs), max(pairs)
            else:
                rec["paired_ratio"] = timing.median_s / timings["numbaconv"].median_s
    return list(records.values())


def merge_runs(runs: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Combine the results of several runs of the same plan into one record per key.

    ``median_s`` is the median of the runs' medians, ``min_s``/``max_s`` the extremes, and
    ``paired_ratio`` the *lowest* of the runs' paired ratios: a baseline made this way
    (``--runs 3``) does not carry one run's lucky or noisy ratio, so ``--check`` only fails when
    even its best attempt falls clearly below the least favourable baseline run.
    """
    if len(runs) == 1:
        return list(runs[0])
    grouped: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for results in runs:
        for r in results:
            grouped.setdefault((r["shape"], r["op"], r["impl"], r["dtype"]), []).append(r)
    merged = []
    for (shape, op, _impl, _dtype), recs in grouped.items():
        ok = [r for r in recs if r.get("median_s")]
        if not ok:
            merged.append(recs[0])
            continue
        rec = dict(ok[0])
        rec["median_s"] = statistics.median(r["median_s"] for r in ok)
        rec["min_s"] = min(r["min_s"] for r in ok)
        rec["max_s"] = max(r["max_s"] for r in ok)
        rec["repeats"] = sum(r["repeats"] for r in ok)
        rec["runs"] = len(ok)
        flops = SHAPES[shape].flops(op) if shape in SHAPES else None
        rec["gflops"] = None if flops is None else flops / rec["median_s"] / 1e9
        pairs = [r["paired_ratio"] for r in ok if r.get("paired_ratio")]
        if pairs:
            rec["paired_ratio"] = min(pairs)
        for key, pick in (("paired_min", min), ("paired_max", max)):
            values = [r[key] for r in ok if r.get(key)]
            if values:
                rec[key] = pick(values)
        merged.append(rec)
    return merged


def _first_failing(fns: dict[str, Any]) -> str | None:
    for impl, fn in fns.items():
        try:
            fn()
        except Exception:  # noqa: BLE001
            return impl
    return None


def speedups(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ratios ``other impl's time / numbaconv's time`` per (shape, op, dtype).

    ``ratio`` compares medians (the number in the tables); ``ratio_min`` compares the
    fastest samples, which interference from other processes inflates least;
    ``ratio_paired`` is the median of the per-round ratios of interleaved samples (the
    steadiest, used by the regression gate), ``ratio_paired_min``/``_max`` their range.
    Greater than 1 means numbaconv is faster.
    """
    by_key: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
    for r in results:
        if r.get("median_s"):
            by_key.setdefault((r["shape"], r["op"], r["dtype"]), {})[r["impl"]] = r
    out = []
    for (shape, op, dtype), recs in by_key.items():
        ours = recs.get("numbaconv")
        if ours is None:
            continue
        for vs in IMPLS:
            if vs != "numbaconv" and vs in recs:
                entry = {"shape": shape, "op": op, "dtype": dtype, "vs": vs,
                         "ratio": recs[vs]["median_s"] / ours["median_s"]}
                if recs[vs].get("min_s") and ours.get("min_s"):
                    entry["ratio_min"] = recs[vs]["min_s"] / ours["min_s"]
                if recs[vs].get("paired_ratio"):
                    entry["ratio_paired"] = recs[vs]["paired_ratio"]
                    for end in ("min", "max"):
                        if recs[vs].get(f"paired_{end}"):
                            entry[f"ratio_paired_{end}"] = recs[vs][f"paired_{end}"]
                out.append(entry)
    return out


def shape_of(name: str) -> Shape:
    """The Shape called ``name`` (SPEC section 5)."""
    try:
        return SHAPES[name]
    except KeyError:
        raise ValueError(f"unknown shape {name!r}; expected one of {', '.join(SHAPES)}") from None
