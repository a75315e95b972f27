"""Text and Markdown tables of ``numbaconv bench --network`` and ``--list-shapes``."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

from numbaconv.bench.layers import OP_TITLES, SHAPE_LEGEND
from numbaconv.bench.netrun import median_of, network_sums
from numbaconv.bench.networks import Network
from numbaconv.bench.report import format_ratio_spread, format_spread, header_lines
from numbaconv.bench.shapes import SHAPES

COLUMNS = ("layer", "x", "shape", "numbaconv", "bare", "torch", "ours/bare", "ours/torch",
           "rate")

LEGEND = (
    "times: median per call (min-max of the samples); numbaconv, bare and torch were timed in "
    "alternation, round by round, in this process. ours/bare and ours/torch: median of the "
    "per-round ratios numbaconv / reference (min-max of those ratios); below 1: numbaconv "
    "faster. bare: the layer's matrix products at the same shapes with NumPy's BLAS on all "
    "threads (training W_row@cols, G@cols.T, W_row.T@G; inference W_row@cols; per group; "
    "a transposed layer's inference: W_row.T@X); for depthwise layers (g = C) a parallel "
    "memory copy of the input+output bytes, once per pass (inference 1, training 3). "
    "rate: numbaconv's GFLOP/s (2 FLOPs per multiply-add of the products), GB/s of "
    "input+output bytes per pass for depthwise layers. x: how many times the layer occurs; "
    "the network sum weights each layer by it. Each layer's samples follow an idle moment; "
    "network pass: every convolution of the network (each occurrence, the selected layers "
    "only) once, in forward order and back to back, as a network runs them (training: each "
    "layer's forward then backward), timed as one sample in alternation like the layers.")


def _impl_cell(rec: dict[str, Any], impl: str) -> str:
    info = rec["impls"].get(impl)
    if info is None:
        return "-"
    if "unsupported" in info:
        return "n/s"
    if "error" in info:
        return "error"
    return format_spread(info["median_s"], info.get("min_s"), info.get("max_s"))


def _ratio_cell(ratios: dict[str, Any], impl: str) -> str:
    r = ratios.get(impl)
    return "-" if r is None else format_ratio_spread(r["median"], r.get("min"), r.get("max"))


def _rate_cell(rec: dict[str, Any]) -> str:
    ours = median_of(rec, "numbaconv")
    if ours is None:
        return "-"
    if rec["kind"] == "depthwise":
        passes = 3 if rec["op"] == "train" else 1
        return f"{rec['io_bytes'] * passes / ours / 1e9:.1f} GB/s"
    return f"{rec['flops'] / ours / 1e9:.1f} GFLOP/s"


def _pass_row(rec: dict[str, Any]) -> list[str]:
    title = f"network pass ({rec['convolutions']} convolutions back to back)"
    if "skipped" in rec:
        return [title, "", rec["skipped"], "", "", "", "", "", ""]
    return [title, str(rec["convolutions"]), "forward order",
            *(_impl_cell(rec, i) for i in ("numbaconv", "bare", "torch")),
            _ratio_cell(rec["ratios"], "bare"), _ratio_cell(rec["ratios"], "torch"), ""]


def _rows(recs: Sequence[dict[str, Any]], total: dict[str, Any] | None,
          passed: dict[str, Any] | None = None) -> list[list[str]]:
    rows = []
    for r in recs:
        if "skipped" in r:
            rows.append([r["layer"], str(r["count"]), r["shape"], "skipped", "", "", "", "", ""])
            continue
        rows.append([r["layer"], str(r["count"]), r["shape"],
                     *(_impl_cell(r, i) for i in ("numbaconv", "bare", "torch")),
                     _ratio_cell(r["ratios"], "bare"), _ratio_cell(r["ratios"], "torch"),
                     _rate_cell(r)])
    if total is not None:
        impls = total["impls"]
        rows.append([
            f"network sum ({total['layers']} of {total['of_layers']} layers)",
            str(total["convolutions"]), "weighted by x",
            *(format_spread(impls[i].get("median_s"), impls[i].get("min_s"),
                            impls[i].get("max_s")) if impls.get(i) else "-"
              for i in ("numbaconv", "bare", "torch")),
            _ratio_cell(total["ratios"], "bare"), _ratio_cell(total["ratios"], "torch"), ""])
    if passed is not None:
        rows.append(_pass_row(passed))
    return rows


def _tables(report: dict[str, Any]) -> list[tuple[str, list[list[str]]]]:
    """(title, rows) per network, dtype, batch size and op, in the order measured."""
    sums = {(s["network"], s["n"], s["dtype"], s["op"]): s
            for s in report.get("sums") or network_sums(report["results"])}
    passes = {(p["network"], p["n"], p["dtype"], p["op"]): p for p in report.get("passes", [])}
    groups: dict[tuple[str, int, str, str], list[dict[str, Any]]] = {}
    for rec in report["results"]:
        groups.setdefault((rec["network"], rec["n"], rec["dtype"], rec["op"]), []).append(rec)
    return [(f"{net}, batch {n}, {dtype}: {OP_TITLES[op]}",
             _rows(recs, sums.get(key := (net, n, dtype, op)), passes.get(key)))
            for (net, n, dtype, op), recs in groups.items()]


def _notes(report: dict[str, Any]) -> list[str]:
    notes = {}
    for rec in report["results"]:
        if "skipped" in rec:
            notes.setdefault(f"skipped: {rec['skipped']}", []).append(rec["layer"])
        for impl, info in rec["impls"].items():
            for key in ("unsupported", "error"):
                if key in info:
                    name = "n/s" if key == "unsupported" else f"error ({impl})"
                    notes.setdefault(f"{name}: {info[key]}", []).append(rec["layer"])
    return [f"{text} [{', '.join(dict.fromkeys(layers))}]" for text, layers in notes.items()]


def network_text(report: dict[str, Any]) -> str:
    """The plain-text report of a network run: header, one table per case group, legend."""
    lines = header_lines(report.get("machine", {}))
    for title, rows in _tables(report):
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
        lines += ["", title]
        for row in [list(COLUMNS), ["-" * w for w in widths], *rows]:
            lines.append("  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                                   for i, (c, w) in enumerate(zip(row, widths, strict=True)))
                         .rstrip())
    lines.append("")
    for para in (LEGEND, SHAPE_LEGEND, *_notes(report)):
        lines += textwrap.wrap(para, 100, subsequent_indent="  ")
    return "\n".join(lines)


def network_markdown(report: dict[str, Any]) -> str:
    """The same tables as Markdown, with the machine facts and the command."""
    machine = report.get("machine", {})
    out = [f"- {line}" for line in header_lines(machine)]
    if machine.get("command"):
        out.append(f"- command: `{machine['command']}`")
    for title, rows in _tables(report):
        out += ["", f"**{title}**", "", "| " + " | ".join(COLUMNS) + " |",
                "|" + "|".join("---" if i < 3 else "---:" for i in range(len(COLUMNS))) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in rows]
    out += ["", LEGEND, "", SHAPE_LEGEND, ""]
    out += [f"- {note}" for note in _notes(report)]
    return "\n".join(out) + "\n"


def list_shapes(networks: Sequence[Network], patterns: Sequence[str] | None = None,
                spec: bool = True) -> str:
    """``--list-shapes``: the SPEC shapes and every layer of ``networks``, with the legend."""
    from numbaconv.bench.networks import select_layers

    lines = textwrap.wrap(SHAPE_LEGEND, 100, subsequent_indent="  ")
    if spec:
        lines += ["", "Benchmark shapes (N is part of the shape):"]
        lines += [f"  {s.name:<11} {s.describe()}" for s in SHAPES.values()]
    for net in networks:
        layers = select_layers(net.layers(), patterns)
        full = net.all_layers()
        lines += ["", f"{net.describe()} ({len(full)} convolutions, {len(net.layers())} "
                      f"distinct; batch size N from --batch)",
                  f"  {'layer':<24} {'x':>2}  {'shape':<36} {'output':<14} "
                  "MFLOP/image (fwd)  also"]
        for layer in layers:
            out = f"{layer.K}x{layer.Ho}x{layer.Wo}"
            lines.append(f"  {layer.name:<24} {layer.count:>2}  {layer.describe():<36} "
                         f"{out:<14} {layer.flops('infer', 1) / 1e6:>17.1f}  "
                         f"{', '.join(layer.also)}".rstrip())
    return "\n".join(lines)
