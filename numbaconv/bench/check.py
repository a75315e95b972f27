"""The regression gate: compare speedup ratios of a fresh run against a baseline JSON.

Absolute times depend on the machine and on whatever else it is doing; the ratio between
numbaconv and a reference measured back to back in the same process mostly does not. A
ratio fails when ``new < baseline * (1 - tolerance)``. Three things keep the gate quiet on a
noisy machine:

* the implementations of a task are timed with interleaved samples, and the compared
  statistic is ``ratio_paired`` (median over rounds of the ratio of samples taken back to
  back), so load that comes and goes hits both sides alike; baselines without it fall back
  to ``ratio_min`` and then ``ratio``;
* the gate runs with the numba/BLAS thread count recorded in the baseline (unless
  ``--threads`` says otherwise), since ratios depend on it;
* every failing ratio is measured again (up to ``retries`` times, with twice the repeats)
  and the best attempt counts: a real regression fails every attempt, a noise spike rarely;
* the default tolerance (25 %) is wider than the run-to-run scatter of the ratios.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from numbaconv.bench.impls import available_impls
from numbaconv.bench.runner import Task, run_plan, shape_of, speedups
from numbaconv.bench.shapes import DTYPES, IMPLS, OPS


@dataclass
class Comparison:
    shape: str
    op: str
    dtype: str
    vs: str
    baseline: float
    new: float | None
    attempts: int = 1

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.shape, self.op, self.dtype, self.vs)

    def failed(self, tolerance: float) -> bool:
        return self.new is None or self.new < self.baseline * (1.0 - tolerance)

    def describe(self) -> str:
        new = "missing" if self.new is None else f"{self.new:.3g}x"
        change = "" if self.new is None else f" ({100 * (self.new / self.baseline - 1):+.0f}%)"
        return (f"{self.op}|{self.shape}|{self.dtype} vs {self.vs}: {new} now, "
                f"{self.baseline:.3g}x in baseline{change}")


def load_baseline(path: str | Path) -> list[dict[str, Any]]:
    """Read and validate the ``speedups`` list of a ``numbaconv bench --json`` file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read baseline {str(path)!r}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"baseline {str(path)!r} is not valid JSON: {exc}") from None
    entries = data.get("speedups") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"baseline {str(path)!r} has no 'speedups' list; expected the output "
                         "of `numbaconv bench --json`")
    for e in entries:
        if not isinstance(e, dict) or not {"shape", "op", "dtype", "vs", "ratio"} <= e.keys():
            raise ValueError(f"baseline entry {e!r} needs keys shape, op, dtype, vs, ratio")
        shape_of(e["shape"])
        if e["op"] not in OPS or e["dtype"] not in DTYPES or e["vs"] not in IMPLS:
            raise ValueError(f"baseline entry {e!r} has an unknown op, dtype or vs")
        for key in ("ratio", "ratio_min", "ratio_paired"):
            if key in e and (not isinstance(e[key], (int, float)) or e[key] <= 0):
                raise ValueError(f"baseline entry {e!r} needs a positive {key}")
    return entries


def plan_for(entries: Sequence[dict[str, Any]], *, torch: bool | None = None
             ) -> tuple[list[Task], list[dict[str, Any]]]:
    """Tasks that re-measure the baseline's ratios, and the entries that cannot be measured
    here (torch not installed, naive no longer allowed on that shape)."""
    wanted: dict[tuple[str, str, str], list[str]] = {}
    skipped = []
    for e in entries:
        shape = shape_of(e["shape"])
        if e["vs"] not in available_impls(e["op"], shape, torch=torch):
            skipped.append(e)
            continue
        impls = wanted.setdefault((e["shape"], e["dtype"], e["op"]), ["numbaconv"])
        if e["vs"] not in impls:
            impls.append(e["vs"])
    plan = [Task(shape_of(s), dt, op, tuple(i for i in IMPLS if i in impls))
            for (s, dt, op), impls in wanted.items()]
    return plan, skipped


def run_check(entries: Sequence[dict[str, Any]], *, tolerance: float = 0.25, repeat: int = 7,
              budget_s: float = 0.5, retries: int = 2, progress: bool = True,
              runner: Callable[..., list[dict[str, Any]]] = run_plan, torch: bool | None = None,
              ) -> tuple[list[Comparison], list[dict[str, Any]], list[dict[str, Any]]]:
    """Measure the baseline's ratios again.

    Returns the comparisons, the skipped baseline entries and all raw results measured.
    """
    if not 0.0 <= tolerance < 1.0:
        raise ValueError(f"tolerance must be in [0, 1), got {tolerance}")
    plan, skipped = plan_for(entries, torch=torch)
    results = runner(plan, repeat=repeat, budget_s=budget_s, progress=progress)
    stat = next(k for k in ("ratio_paired", "ratio_min", "ratio")
                if all(k in e for e in entries))

    def measured(rs: list[dict[str, Any]]) -> dict[tuple[str, str, str, str], float]:
        return {(s["shape"], s["op"], s["dtype"], s["vs"]): s[stat]
                for s in speedups(rs) if stat in s}

    new = measured(results)
    comparisons = []
    for e in entries:
        if e in skipped:
            continue
        key = (e["shape"], e["op"], e["dtype"], e["vs"])
        comparisons.append(Comparison(*key, baseline=float(e[stat]), new=new.get(key)))

    for _ in range(retries):
        failing = [c for c in comparisons if c.failed(tolerance)]
        if not failing:
            break
        by_task: dict[tuple[str, str, str], list[Comparison]] = {}
        for c in failing:
            by_task.setdefault((c.shape, c.dtype, c.op), []).append(c)
        retry_plan = [Task(shape_of(s), dt, op,
                           tuple(i for i in IMPLS if i == "numbaconv" or i in {c.vs for c in cs}))
                      for (s, dt, op), cs in by_task.items()]
        more = runner(retry_plan, repeat=2 * repeat, budget_s=2 * budget_s, progress=progress)
        results += more
        again = measured(more)
        for c in failing:
            c.attempts += 1
            ratio = again.get(c.key)
            if ratio is not None and (c.new is None or ratio > c.new):
                c.new = ratio
    return comparisons, skipped, results


def summarize(comparisons: Sequence[Comparison], skipped: Sequence[dict[str, Any]],
              tolerance: float) -> tuple[int, str]:
    """Exit code (0 OK, 1 regression) and the message to print."""
    failing = [c for c in comparisons if c.failed(tolerance)]
    lines = []
    for e in skipped:
        lines.append(f"skipped {e['op']}|{e['shape']}|{e['dtype']} vs {e['vs']} "
                     "(implementation not available here)")
    if failing:
        lines.append(f"REGRESSION: {len(failing)} of {len(comparisons)} speedup ratios fell more "
                     f"than {100 * tolerance:.0f}% below the baseline:")
        lines += [f"  {c.describe()} [{c.attempts} attempts]" for c in failing]
        return 1, "\n".join(lines)
    measured = [c for c in comparisons if c.new is not None]
    if measured:
        worst = min(measured, key=lambda c: c.new / c.baseline)
        lines.append(f"OK: {len(comparisons)} speedup ratios within {100 * tolerance:.0f}% of the "
                     f"baseline (closest: {worst.describe()})")
    else:
        lines.append("OK: nothing to compare (every baseline entry was skipped)")
    return 0, "\n".join(lines)
