"""``--profile``: where numbaconv's forward+backward spends its time.

:func:`stage_times` is the one function to adjust when the core's profiling hook changes.
It uses the core's hook ``numbaconv.functional.profile_stages()`` (a context manager that
fills a dict with the seconds spent in ``im2col``, ``gemm``, ``col2im`` and ``bias``) when it
exists: each repeat runs ``conv2d_forward`` + ``conv2d_backward`` inside the block, "rest" is
the call's total minus the stages (validation, allocation, Python overhead), and every
stage is the median over repeats.

Without the hook it falls back to re-creating the stages from public pieces on the classic
layout (``numbaconv.im2col_indices``, the three GEMMs of SPEC section 2 with ``np.dot``,
``numbaconv.col2im_indices`` and the transposes in between): an estimate of the same work,
not a trace of the call itself.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from numbaconv.bench.impls import Problem, make_callable
from numbaconv.bench.report import format_time
from numbaconv.bench.shapes import Shape
from numbaconv.bench.timing import measure

STAGES = ("im2col", "GEMM", "col2im", "bias", "layout", "rest")


def stage_times(problem: Problem, *, repeat: int = 5, budget_s: float = 0.5) -> dict[str, float]:
    """Median seconds of each stage of one forward+backward, and ``total``."""
    from numbaconv import functional

    hook = getattr(functional, "profile_stages", None)
    if hook is not None:
        return _hooked_stage_times(problem, hook, repeat=repeat)
    return _public_stage_times(problem, repeat=repeat, budget_s=budget_s)


def _hooked_stage_times(problem: Problem, hook: Any, *, repeat: int) -> dict[str, float]:
    fn = make_callable(problem, "forward+backward", "numbaconv")
    fn()  # warm-up: JIT compilation is never timed
    runs = []
    for _ in range(max(repeat, 3)):
        with hook() as seconds:
            t0 = time.perf_counter()
            fn()
            total = time.perf_counter() - t0
            run = {("GEMM" if k == "gemm" else k): v for k, v in seconds.items()}
        staged = sum(run.values())
        run["rest"] = max(total - staged, 0.0)
        run["total"] = total
        # > 1 when stages ran concurrently in several lanes (threads): their seconds are summed
        # over lanes and add up to more than the wall-clock total.
        run["overlap"] = staged / total if total > 0 else 1.0
        runs.append(run)
    keys = dict.fromkeys(k for run in runs for k in run)
    return {k: statistics.median(run.get(k, 0.0) for run in runs) for k in keys}


def _public_stage_times(problem: Problem, *, repeat: int, budget_s: float) -> dict[str, float]:
    import numbaconv

    s, x, w, dout = problem.shape, problem.x, problem.w, problem.dout
    K, R = s.K, s.C * s.fh * s.fw
    cols = numbaconv.im2col_indices(x, s.fh, s.fw, s.P, s.S)
    w_row = w.reshape(K, R)
    dout_flat = np.ascontiguousarray(dout.transpose(1, 2, 3, 0)).reshape(K, -1)
    out_flat = w_row @ cols
    dcols = w_row.T @ dout_flat

    def t(fn: Any) -> float:
        return measure(fn, repeat=repeat, budget_s=budget_s).median_s

    times = {
        "im2col": t(lambda: numbaconv.im2col_indices(x, s.fh, s.fw, s.P, s.S)),
        "GEMM": (t(lambda: w_row @ cols) + t(lambda: dout_flat @ cols.T)
                 + t(lambda: w_row.T @ dout_flat)),
        "col2im": t(lambda: numbaconv.col2im_indices(dcols, x.shape, s.fh, s.fw, s.P, s.S)),
        "layout": (t(lambda: np.ascontiguousarray(
                        out_flat.reshape(K, s.Ho, s.Wo, s.N).transpose(3, 0, 1, 2)))
                   + t(lambda: np.ascontiguousarray(dout.transpose(1, 2, 3, 0)))),
    }
    total = t(make_callable(problem, "forward+backward", "numbaconv"))
    times["bias"] = 0.0  # part of "rest" here
    times["rest"] = total - sum(times.values())
    times["total"] = total
    return times


def profile_table(shape: Shape, dtype: str, times: dict[str, float]) -> str:
    """Stage, time and share of the total, as text."""
    total = times["total"]
    overlap = times.get("overlap", 1.0)
    summed = overlap > 1.05
    denominator = sum(times[k] for k in STAGES if k in times) if summed else total
    how = ("estimated from public pieces" if "layout" in times
           else "numbaconv.functional.profile_stages")
    lines = [f"forward+backward breakdown, {shape.name} ({shape.describe()}), {dtype} ({how}):"]
    for stage in STAGES:
        if stage not in times:
            continue
        value = times[stage]
        share = f"{100 * value / denominator:5.1f}%" if denominator > 0 else "   -"
        lines.append(f"  {stage:<8} {format_time(max(value, 0.0)):>10}  {share}")
    if summed:
        lines.append(f"  {'wall':<8} {format_time(total):>10}  (stages ran in parallel lanes: "
                     f"their times are summed over threads, {overlap:.2f}x the wall-clock "
                     "time; shares are of that sum)")
    else:
        lines.append(f"  {'total':<8} {format_time(total):>10}  100.0%")
    if times["rest"] < 0:
        lines.append("  (rest < 0: the separately timed pieces add up to more than the call)")
    return "\n".join(lines)


def profile_records(shape: Shape, dtype: str, times: dict[str, float]) -> list[dict[str, Any]]:
    """The breakdown as JSON records."""
    return [{"shape": shape.name, "dtype": dtype, "stage": k, "median_s": v}
            for k, v in times.items()]
