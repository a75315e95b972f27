"""``--profile``: where numbaconv's forward+backward spends its time.

It runs ``conv2d_forward`` + ``conv2d_backward`` inside the core's
``numbaconv.functional.profile_stages()`` block, which sums the seconds every thread spends in
``im2col``, ``gemm`` (the matrix products), ``col2im`` and ``bias``.  Several threads work at
once, so the budget the stages are measured against is *thread time*: wall-clock time times
the number of threads.  What no stage accounts for ("other") is validation, allocation,
Python overhead and threads waiting for each other.  The share of the budget outside ``gemm``
is the time spent outside the matrix products.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numba

from numbaconv.bench.impls import Problem, make_callable
from numbaconv.bench.report import format_time
from numbaconv.bench.shapes import Shape
from numbaconv.functional import profile_stages

STAGES = ("gemm", "im2col", "col2im", "bias", "other")


def stage_times(problem: Problem, *, repeat: int = 7) -> dict[str, float]:
    """Thread-seconds per stage of one forward+backward, plus ``wall`` and ``threads``, from
    the fastest of ``repeat`` runs; ``outside_median`` is the median over the runs of the share
    outside the matrix products (see :func:`callable_stage_times`)."""
    return callable_stage_times(make_callable(problem, "forward+backward", "numbaconv"),
                                repeat=repeat)


def callable_stage_times(fn: Callable[[], object], *, repeat: int = 7) -> dict[str, float]:
    """:func:`stage_times` of any zero-argument callable running numbaconv's layers.

    The fastest run is the one least disturbed by other load: on a shared machine a thread
    that is descheduled mid-call makes the others wait, which shows up as "other" time that
    belongs to the machine, not to the layer.  The median share is reported beside it."""
    fn()  # warm-up: JIT compilation is never timed
    threads = numba.get_num_threads()
    runs = []
    for _ in range(max(repeat, 3)):
        with profile_stages() as seconds:
            start = time.perf_counter()
            fn()
            wall = time.perf_counter() - start
            run = dict(seconds)
        run["other"] = max(wall * threads - sum(run.values()), 0.0)
        run["wall"] = wall
        runs.append(run)
    times = dict(min(runs, key=lambda run: run["wall"]))
    times["threads"] = threads
    times["outside_median"] = statistics.median(outside_gemm_share(run) for run in runs)
    return times


def outside_gemm_share(times: dict[str, float]) -> float:
    """Fraction of the thread time not spent in matrix products."""
    budget = sum(times.get(stage, 0.0) for stage in STAGES)
    return 1.0 - times.get("gemm", 0.0) / budget if budget > 0 else 0.0


def profile_table(shape: Shape, dtype: str, times: dict[str, float]) -> str:
    """Stage, thread time and share of the thread-time budget, as text."""
    threads = int(times["threads"])
    budget = sum(times.get(stage, 0.0) for stage in STAGES)
    lines = [f"forward+backward breakdown, {shape.name} ({shape.describe()}), {dtype}: "
             f"wall {format_time(times['wall'])} x {threads} thread(s), fastest run"]
    for stage in STAGES:
        value = times.get(stage, 0.0)
        share = f"{100 * value / budget:5.1f}%" if budget > 0 else "    -"
        lines.append(f"  {stage:<7} {format_time(value):>10}  {share}")
    lines.append(f"  outside the matrix products: {100 * outside_gemm_share(times):.1f}% "
                 f"of the thread time (median run: {100 * times['outside_median']:.1f}%)")
    return "\n".join(lines)


def profile_records(shape: Shape, dtype: str, times: dict[str, float]) -> list[dict[str, Any]]:
    """The breakdown as JSON records (seconds of thread time per stage; wall and threads)."""
    records: list[dict[str, Any]] = [
        {"shape": shape.name, "dtype": dtype, "stage": k, "seconds": times.get(k, 0.0)}
        for k in (*STAGES, "wall")]
    records.append({"shape": shape.name, "dtype": dtype, "stage": "outside_gemm_share",
                    "value": outside_gemm_share(times)})
    records.append({"shape": shape.name, "dtype": dtype, "stage": "outside_gemm_share_median",
                    "value": times["outside_median"]})
    records.append({"shape": shape.name, "dtype": dtype, "stage": "threads",
                    "value": int(times["threads"])})
    return records
