"""Text and Markdown tables of a benchmark run."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from numbaconv.bench.shapes import IMPLS, SHAPES

COLUMNS = ("shape", "op", "dtype", *IMPLS, "x naive", "x fancy", "x torch", "GFLOP/s",
           "% GEMM")


def format_time(seconds: float | None) -> str:
    """``12.3 us``, ``4.56 ms``, ``1.23 s``; ``-`` for a missing time."""
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def _unit(seconds: float) -> tuple[float, str, str]:
    if seconds < 1e-3:
        return 1e6, "us", ".1f"
    if seconds < 1.0:
        return 1e3, "ms", ".2f"
    return 1.0, "s", ".2f"


def format_spread(median: float | None, low: float | None = None,
                  high: float | None = None) -> str:
    """``12.3 ms (11.9-13.8)``: the median and the range of the samples, in the median's
    unit; only the median when the range is missing or empty."""
    if median is None:
        return "-"
    if low is None or high is None or low == high:
        return format_time(median)
    scale, unit, spec = _unit(median)
    return (f"{median * scale:{spec}} {unit} "
            f"({low * scale:{spec}}-{high * scale:{spec}})")


def format_ratio_spread(ratio: float | None, low: float | None = None,
                        high: float | None = None) -> str:
    """``2.31x (2.2-2.5)``: a ratio and the range of the per-round ratios behind it."""
    if ratio is None:
        return "-"
    text = format_ratio(ratio)
    if low is None or high is None or low == high:
        return text
    digits = 0 if high >= 100 else 1 if high >= 10 else 2
    return f"{text} ({low:.{digits}f}-{high:.{digits}f})"


def format_ratio(ratio: float | None) -> str:
    """``1234x``, ``12.3x``, ``0.62x``; ``-`` for a missing ratio."""
    if ratio is None:
        return "-"
    if ratio >= 100:
        return f"{ratio:.0f}x"
    if ratio >= 10:
        return f"{ratio:.1f}x"
    return f"{ratio:.2f}x"


def table_rows(report: dict[str, Any]) -> list[list[str]]:
    """One row per (shape, op, dtype), in the order the results were measured."""
    results = report["results"]
    gemm = report.get("machine", {}).get("gemm_gflops", {})
    keys: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
    for r in results:
        keys.setdefault((r["shape"], r["op"], r["dtype"]), {})[r["impl"]] = r
    ratios = {(s["shape"], s["op"], s["dtype"], s["vs"]): s
              for s in report.get("speedups", [])}
    rows = []
    for (shape, op, dtype), by_impl in keys.items():
        row = [shape, op, dtype]
        for impl in IMPLS:
            rec = by_impl.get(impl)
            if rec is None:
                row.append("-")
            elif rec.get("error"):
                row.append("error")
            else:
                row.append(format_spread(rec["median_s"], rec.get("min_s"), rec.get("max_s")))
        for vs in ("naive", "fancy", "torch"):
            row.append(_ratio_cell(ratios.get((shape, op, dtype, vs))))
        ours = by_impl.get("numbaconv") or {}
        gflops = ours.get("gflops")
        row.append("-" if gflops is None else f"{gflops:.1f}")
        peak = gemm.get(dtype)
        row.append("-" if gflops is None or not peak else f"{100 * gflops / peak:.0f}%")
        rows.append(row)
    return rows


def openblas_line(machine: dict[str, Any]) -> str | None:
    """``OpenBLAS 0.3.31: kernel Haswell, 2 threads (OPENBLAS_CORETYPE not set)``."""
    ob = machine.get("openblas")
    if not ob:
        return None
    env = ob.get("environment") or {}
    forced = ", ".join(f"{k}={v}" for k, v in env.items()) or "OPENBLAS_CORETYPE not set"
    unforced = ob.get("unforced_core")
    if env.get("OPENBLAS_CORETYPE") and unforced and unforced != ob.get("core"):
        forced += f"; unforced kernel: {unforced}"
    threads = ob.get("threads", "?")
    return (f"BLAS: OpenBLAS {ob.get('version', '?')}, kernel {ob.get('core', '?')}, "
            f"{threads} thread{'' if threads == 1 else 's'} ({forced})")


def _ratio_cell(speedup: dict[str, Any] | None) -> str:
    """The paired ratio (median over rounds) with its range; the ratio of the medians where
    the samples could not be paired."""
    if speedup is None:
        return "-"
    if "ratio_paired" in speedup:
        return format_ratio_spread(speedup["ratio_paired"], speedup.get("ratio_paired_min"),
                                   speedup.get("ratio_paired_max"))
    return format_ratio(speedup["ratio"])


def header_lines(machine: dict[str, Any]) -> list[str]:
    """Machine, BLAS kernel, threads and versions, one fact per line; warnings last."""
    v = machine.get("versions", {})
    th = machine.get("threads", {})
    gemm = machine.get("gemm_gflops", {})
    flags = machine.get("cpu_flags")
    simd = ""
    if flags is not None:
        simd = f"; SIMD: {' '.join(flags) or 'none of the listed'}"
        if "avx2" in flags and "avx512f" not in flags:
            simd += " (no avx512f)"
    lines = [f"CPU: {machine.get('cpu', '?')} ({machine.get('cores', '?')} usable cores){simd}"]
    blas = openblas_line(machine)
    if blas:
        lines.append(blas)
    lines += [
        "threads: numba {} ({}), BLAS {}{}".format(
            th.get("numba", "?"), th.get("numba_layer", "?"), th.get("blas", "?"),
            f", torch {th['torch']}" if "torch" in th else ""),
        "versions: python {}, numpy {}, numba {}, numbaconv {}, torch {}".format(
            v.get("python"), v.get("numpy"), v.get("numba"), v.get("numbaconv"),
            v.get("torch") or "not installed"),
    ]
    if gemm:
        n = machine.get("gemm_size", 2048)
        lines.append(f"GEMM rate (np.dot, {n}x{n}): " + ", ".join(
            f"{dt} {rate:.1f} GFLOP/s" for dt, rate in gemm.items()))
        unforced = machine.get("gemm_gflops_unforced")
        if unforced:
            kernel = machine.get("openblas", {}).get("unforced_core", "?")
            lines.append(f"GEMM rate with OpenBLAS's own kernel ({kernel}, measured in a "
                         "subprocess without OPENBLAS_CORETYPE): " + ", ".join(
                             f"{dt} {rate:.1f} GFLOP/s" for dt, rate in unforced.items()))
    if machine.get("date"):
        lines.append(f"date: {machine['date']}")
    lines += list(machine.get("warnings", []))
    return lines


LEGEND = ("times: median per call (min-max of the samples); 'x fancy' = fancy time / "
          "numbaconv time (>1: numbaconv faster), the median of the ratios of samples taken in "
          "the same round (min-max of those ratios); GFLOP/s and % GEMM are numbaconv's "
          "effective rate (forward 2*N*K*C*fh*fw*Ho*Wo FLOPs, backward twice that) relative to "
          "np.dot's rate above.")


def shape_lines(names: Sequence[str]) -> list[str]:
    """The legend of the SPEC shapes named in a table: what each name stands for."""
    from numbaconv.bench.layers import SHAPE_LEGEND

    return [SHAPE_LEGEND] + [f"  {name}: {SHAPES[name].describe()}" for name in names
                             if name in SHAPES]


def text_table(report: dict[str, Any]) -> str:
    """The plain-text report printed by ``numbaconv bench``."""
    rows = table_rows(report)
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c)
              for i, c in enumerate(COLUMNS)]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    lines = header_lines(report.get("machine", {}))
    lines += ["", fmt(COLUMNS), fmt(["-" * w for w in widths])]
    lines += [fmt(r) for r in rows]
    legend, *shapes = shape_lines(list(dict.fromkeys(r["shape"] for r in report["results"])))
    lines.append("")
    for para in (LEGEND, legend):
        lines += textwrap.wrap(para, 100, subsequent_indent="  ")
    lines += shapes
    errors = [r for r in report["results"] if r.get("error")]
    for r in errors:
        lines.append(f"error: {r['impl']} {r['op']}|{r['shape']}|{r['dtype']}: {r['error']}")
    return "\n".join(lines)


def markdown_table(report: dict[str, Any]) -> str:
    """The same table as Markdown, with the machine facts and the shapes used."""
    rows = table_rows(report)
    machine = report.get("machine", {})
    out = [f"- {line}" for line in header_lines(machine)]
    if machine.get("command"):
        out.append(f"- command: `{machine['command']}`")
    out += ["", "| " + " | ".join(COLUMNS) + " |",
            "|" + "|".join("---" if i < 3 else "---:" for i in range(len(COLUMNS))) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    out += ["", LEGEND, "", "Shapes:", ""]
    used = list(dict.fromkeys(r["shape"] for r in report["results"]))
    legend, *described = shape_lines(used)
    out += [legend, ""] + [f"- `{line.strip().replace(':', '`:', 1)}" for line in described]
    return "\n".join(out) + "\n"


def replace_section(path: str | Path, section: str, body: str) -> Path:
    """Write ``body`` between ``<!-- bench-{section}:start -->`` and ``<!-- ...:end -->``.

    When ``path`` exists and has both markers, only the text between them is replaced (so a
    hand-written page such as docs/benchmarks.md can be regenerated in place); otherwise the
    whole file is written, with the markers around ``body``.
    """
    path = Path(path)
    start, end = f"<!-- bench-{section}:start -->", f"<!-- bench-{section}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if start in text and end in text and text.index(start) < text.index(end):
        new = text[:text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        new = block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new, encoding="utf-8")
    return path
