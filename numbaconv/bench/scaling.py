"""``--scaling``: numbaconv's forward+backward time per image as the batch grows.

The batch sizes of one shape are timed in alternation (see ``measure_interleaved``), so load
that comes and goes on a shared machine hits every batch size alike, and back to back, as a
training loop runs them.  The timing matrix waits for idle threads before each sample, because
another implementation may leave BLAS threads spinning; numbaconv leaves none (its products run
single-threaded).  And any wait costs the next call: on the development VM, a call right after
a 10 ms sleep took 4.5 ms longer (cifar with batch 8: 13.9 ms against 9.3 ms), which would be
measured as a cost of small batches.  For the same reason a sample of a small batch is a
loop of calls lasting at least ``SAMPLE_S`` (eight calls with batch 8 on ``cifar``): a single
call right after a batch of 256 starts with caches full of another problem, which a training
loop with batch 8 never sees (N=8 against N=256, alternating: 1.27x and 1.03x per image with
single calls, 1.10x and 1.01x with loops; the fastest runs are level).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from numbaconv.bench.impls import Problem, make_callable
from numbaconv.bench.report import format_time
from numbaconv.bench.shapes import Shape
from numbaconv.bench.timing import measure_interleaved

BATCHES = (1, 8, 32, 64, 128, 256)
SAMPLE_S = 0.05  # seconds of back-to-back calls per sample at least


def batch_scaling(shape: Shape, dtype: str, *, batches: tuple[int, ...] = BATCHES,
                  repeat: int = 7, budget_s: float = 1.0) -> list[dict[str, Any]]:
    """One record per batch size: median seconds per call and per image."""
    fns = {n: make_callable(Problem(dataclasses.replace(shape, N=n), dtype),
                            "forward+backward", "numbaconv") for n in batches}
    timings, _ = measure_interleaved(fns, repeat=repeat, budget_s=budget_s, idle_wait=False,
                                     min_sample_s=SAMPLE_S)
    return [{"shape": shape.name, "dtype": dtype, "N": n, "median_s": timings[n].median_s,
             "per_image_s": timings[n].median_s / n} for n in batches]


def scaling_table(records: list[dict[str, Any]]) -> str:
    """The per-image times as a text table, and the spread between the middle batch sizes."""
    first = records[0]
    lines = [f"forward+backward per image, {first['shape']} with batch N, {first['dtype']}:",
             "  N      per call   per image"]
    lines += [f"  {r['N']:<5} {format_time(r['median_s']):>9}   {format_time(r['per_image_s']):>9}"
              for r in records]
    per_image = {r["N"]: r["per_image_s"] for r in records}
    if 8 in per_image and 256 in per_image:
        lines.append(f"  per image, N=8 / N=256: {per_image[8] / per_image[256]:.2f}x")
    return "\n".join(lines)
