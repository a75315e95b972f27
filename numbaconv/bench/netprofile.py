"""``--profile --network``: the stage shares (im2col, GEMM, col2im, bias, other) of
numbaconv's training and inference calls, layer by layer (see :mod:`numbaconv.bench.profile`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from numbaconv.bench.layers import OP_TITLES
from numbaconv.bench.netimpls import LayerProblem, make_callable, unsupported
from numbaconv.bench.netrun import Case
from numbaconv.bench.profile import STAGES, callable_stage_times, outside_gemm_share
from numbaconv.bench.report import format_time


def profile_case(case: Case, *, repeat: int = 3) -> dict[str, Any]:
    """One record: the case, and its stage times or why it was not profiled."""
    rec: dict[str, Any] = {"network": case.network, "layer": case.layer.name,
                           "count": case.layer.count, "shape": case.layer.describe(),
                           "n": case.n, "dtype": case.dtype, "op": case.op}
    reason = unsupported(case.layer, case.op)
    if reason is not None:
        rec["unsupported"] = reason
        return rec
    try:
        fn = make_callable(LayerProblem(case.layer, case.n, case.dtype), case.op, "numbaconv")
        times = callable_stage_times(fn, repeat=repeat)
    except Exception as exc:  # noqa: BLE001 - reported, the run goes on
        rec["error"] = f"{type(exc).__name__}: {exc}"
        return rec
    rec["seconds"] = {k: times.get(k, 0.0) for k in (*STAGES, "wall")}
    rec["threads"] = int(times["threads"])
    rec["outside_gemm_share"] = outside_gemm_share(times)
    rec["outside_gemm_share_median"] = times["outside_median"]
    return rec


def profile_text(records: Sequence[dict[str, Any]]) -> str:
    """One table per (network, batch, dtype, op): wall time and the share of each stage in
    the thread time of the fastest run, and the share outside GEMM in the median run."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["network"], r["n"], r["dtype"], r["op"]), []).append(r)
    head = ["layer", "x", "wall", *STAGES, "outside GEMM (median run)"]
    lines = []
    for (net, n, dtype, op), recs in groups.items():
        rows = []
        for r in recs:
            if "seconds" not in r:
                rows.append([r["layer"], str(r["count"]), "n/s" if "unsupported" in r
                             else "error"] + [""] * (len(STAGES) + 1))
                continue
            budget = sum(r["seconds"][k] for k in STAGES) or 1.0
            rows.append([r["layer"], str(r["count"]), format_time(r["seconds"]["wall"]),
                         *(f"{100 * r['seconds'][k] / budget:.1f}%" for k in STAGES),
                         f"{100 * r['outside_gemm_share_median']:.1f}%"])
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
        lines += ["", f"{net}, batch {n}, {dtype}: {OP_TITLES[op]}, stage shares of the "
                      "thread time (fastest run)"]
        lines += ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                            for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()
                  for row in [head, ["-" * w for w in widths], *rows]]
    notes = {r.get("unsupported") or r.get("error") for r in records
             if "seconds" not in r}
    lines += [f"n/s or error: {note}" for note in sorted(n for n in notes if n)]
    return "\n".join(lines)
