"""``--plot PATH.png``: bar charts of numbaconv's speedups per shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from numbaconv.bench.report import format_ratio
from numbaconv.bench.shapes import DTYPES, IMPLS, OPS

VS_COLORS = {"naive": "#8c8c8c", "fancy": "#1f77b4", "torch": "#d62728"}


def plot_speedups(report: dict[str, Any], path: str | Path) -> Path:
    """Draw one panel per op: for each shape, a bar per (reference, dtype) with the ratio
    ``reference time / numbaconv time`` on a log axis (above 1 = numbaconv faster).

    Raises
    ------
    RuntimeError
        When matplotlib is not installed.
    ValueError
        When the report has no speedups.
    """
    try:
        from matplotlib.figure import Figure  # no pyplot: no display, no global backend
        from matplotlib.patches import Patch
    except ImportError:
        raise RuntimeError("--plot needs matplotlib: pip install 'numbaconv[bench]' "
                           "(or pip install matplotlib)") from None

    speedups = report.get("speedups", [])
    ops = [op for op in OPS if any(s["op"] == op for s in speedups)]
    if not ops:
        raise ValueError("nothing to plot: the report has no speedups")
    shapes = list(dict.fromkeys(s["shape"] for s in speedups))
    present = {(s["vs"], s["dtype"]) for s in speedups}
    series = [(vs, dt) for vs in IMPLS for dt in DTYPES if (vs, dt) in present]
    ratio = {(s["op"], s["shape"], s["vs"], s["dtype"]): s["ratio"] for s in speedups}

    def style(vs: str, dtype: str) -> dict[str, Any]:
        f32 = dtype == "float32"
        return {"facecolor": VS_COLORS.get(vs, "#2ca02c"), "alpha": 1.0 if f32 else 0.55,
                "hatch": "" if f32 else "//", "edgecolor": "white"}

    fig = Figure(figsize=(max(6.5, 1.4 * len(shapes) + 2.5), 1.0 + 2.4 * len(ops)),
                 layout="constrained")
    axes = fig.subplots(len(ops), 1, squeeze=False, sharex=True)[:, 0]
    for ax, op in zip(axes, ops, strict=True):
        for i, shape in enumerate(shapes):
            bars = [(vs, dt, ratio[(op, shape, vs, dt)]) for vs, dt in series
                    if (op, shape, vs, dt) in ratio]
            width = 0.8 / max(len(bars), 1)
            for k, (vs, dt, r) in enumerate(bars):
                x = i - 0.4 + width * (k + 0.5)
                ax.bar(x, r, width, **style(vs, dt))
                ax.annotate(format_ratio(r), (x, r), ha="center", va="bottom", fontsize=6,
                            xytext=(0, 1), textcoords="offset points")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.margins(y=0.15)
        ax.set_title(op, fontsize=10, loc="left")
        ax.set_ylabel("speedup (x)")
        ax.grid(axis="y", which="major", alpha=0.3)
    axes[-1].set_xticks(range(len(shapes)))
    axes[-1].set_xticklabels(shapes)
    handles = [Patch(**style(vs, dt), label=f"vs {vs} ({dt})") for vs, dt in series]
    fig.legend(handles=handles, loc="outside lower center", fontsize=8,
               ncol=min(6, len(handles)))
    machine = report.get("machine", {})
    fig.suptitle(f"numbaconv speedup = reference time / numbaconv time (above 1: faster)\n"
                 f"{machine.get('cpu', '')}, {machine.get('cores', '?')} cores",
                 fontsize=9, x=0.01, ha="left")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
