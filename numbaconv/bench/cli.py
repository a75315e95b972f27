"""``numbaconv bench``: time naive, fancy-index, numbaconv and PyTorch on the SPEC shapes."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from numbaconv.bench import shapes as sh

DESCRIPTION = """\
Time im2col, col2im, forward, backward and forward+backward of numbaconv against the
fancy-index classic code, the naive loops (small shapes only) and PyTorch (if installed).
Every timing is the median of several time.perf_counter samples after an untimed warm-up
(JIT compilation is never timed). Speedup = reference time / numbaconv time.
"""

EPILOG = """\
examples:
  numbaconv bench --quick                       # a subset, well under a minute
  numbaconv bench --dtype both --json run.json --plot speedups.png --markdown table.md
  numbaconv bench --check benchmarks/baseline.json --tolerance 0.25
  numbaconv bench --profile --shapes cifar,resnet56
  numbaconv bench --memory --shapes cifar,resnet56
  numbaconv bench --scaling
  numbaconv bench --startup
  numbaconv bench --compile-times               # cold/warm first calls, seconds per kernel
  numbaconv bench --network resnet50,vgg16 --batch 1,8,32 --dtype both --json nets.json
  numbaconv bench --network resnet50 --batch 1 --layers 'layer3.*' --profile
  numbaconv bench --list-shapes                 # what every shape and layer name means
"""


def _checked(parse: Callable[[str], Any], ok: Callable[[Any], bool],
             expected: str) -> Callable[[str], Any]:
    """An argparse type: ``parse`` the text, then require ``ok(value)``."""
    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value
    return convert


_positive_int = _checked(int, lambda v: v >= 1, "a positive integer")
_tolerance = _checked(float, lambda v: 0.0 <= v < 1.0, "a number in [0, 1)")
_budget = _checked(float, lambda v: v > 0, "seconds > 0")


def _listed(parse: Any) -> Any:
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return convert


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="numbaconv bench", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_argument_group("what to run")
    what.add_argument("--quick", action="store_true",
                      help=f"shapes {','.join(sh.QUICK_SHAPES)}, fewer repeats (well under a "
                           "minute); --shapes still overrides the shapes")
    what.add_argument("--shapes", type=_listed(sh.parse_shapes), default=None,
                      help=f"comma-separated shape names (default: all of {','.join(sh.SHAPES)})")
    what.add_argument("--dtype", type=_listed(sh.parse_dtypes), default=["float32"],
                      metavar="{float32,float64,both}", help="default: float32")
    what.add_argument("--ops", default=None,
                      help=f"comma-separated ops (default: {','.join(sh.OPS)}; with --network: "
                           "train,infer)")
    what.add_argument("--impls", type=_listed(_parse_impls), default=list(sh.IMPLS),
                      help="comma-separated implementations (default: all available; "
                           "numbaconv is always included)")
    what.add_argument("--no-torch", action="store_true", help="do not time PyTorch")
    timing = p.add_argument_group("timing")
    timing.add_argument("--threads", type=_positive_int, default=None,
                        help="threads for numba, NumPy's OpenBLAS and torch "
                             "(default: each library's default)")
    timing.add_argument("--repeat", type=_positive_int, default=None,
                        help="maximum timed samples per implementation (default 7, --quick 3)")
    timing.add_argument("--budget", type=_budget, default=None,
                        help="seconds of samples per implementation (default 1.0, --quick 0.25)")
    timing.add_argument("--runs", type=_positive_int, default=1,
                        help="run the whole matrix N times and merge: median of the medians, "
                             "and the lowest paired ratio (use 3 when making a --check "
                             "baseline; default 1)")
    timing.add_argument("--gemm-size", type=_positive_int, default=2048,
                        help="matrix size of the np.dot reference rate (default 2048)")
    out = p.add_argument_group("output")
    out.add_argument("--json", type=Path, default=None, metavar="PATH",
                     help="write machine info, results and speedups as JSON")
    out.add_argument("--plot", type=Path, default=None, metavar="PATH.png",
                     help="draw the speedups per shape (needs matplotlib)")
    out.add_argument("--markdown", type=Path, default=None, metavar="PATH",
                     help="write the table (with the machine facts) as Markdown; in an existing "
                          "file, only the part between <!-- bench-table:start --> and "
                          "<!-- bench-table:end --> is replaced (--startup: bench-startup)")
    out.add_argument("--no-progress", action="store_true", help="no progress bar")
    from numbaconv.bench import netcli

    netcli.add_arguments(p)
    modes = p.add_argument_group("other views (instead of the timing matrix)")
    modes.add_argument("--check", type=Path, default=None, metavar="BASELINE.json",
                       help="regression gate: re-measure the baseline's speedup ratios (with "
                            "the baseline's thread count unless --threads) and exit 1 naming "
                            "every one that fell by more than --tolerance")
    modes.add_argument("--tolerance", type=_tolerance, default=0.25,
                       help="allowed relative drop of a ratio for --check (default 0.25)")
    modes.add_argument("--profile", action="store_true",
                       help="time the stages (im2col, GEMM, col2im, ...) of numbaconv's "
                            "forward+backward on the selected shapes")
    modes.add_argument("--memory", action="store_true",
                       help="peak resident memory added by one forward+backward of FancyConv "
                            "and numbaconv.Conv, in fresh processes")
    modes.add_argument("--scaling", action="store_true",
                       help="forward+backward time per image for batch sizes "
                            "1, 8, 32, 64, 128, 256 (cifar unless --shapes)")
    modes.add_argument("--startup", action="store_true",
                       help="import and first-call time in fresh processes, cold and warm "
                            "numba cache (classic shape unless --shapes)")
    modes.add_argument("--compile-times", nargs="?", const="all", default=None,
                       metavar="ENTRY,...",
                       help="first call of each entry point (layers, drop-ins, transposed, "
                            "depthwise; or the comma-separated names given) in fresh "
                            "processes with an empty numba cache and with that cache, and the "
                            "seconds each kernel took to compile")
    return p


def _parse_impls(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in sh.IMPLS]
    if not names or unknown:
        raise ValueError(f"unknown implementation(s) {', '.join(map(repr, unknown)) or '(none)'}; "
                         f"expected names from {', '.join(sh.IMPLS)}")
    return list(dict.fromkeys(["numbaconv", *names]))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``numbaconv bench``; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    except SystemExit as exc:  # --help or a usage error
        return int(exc.code or 0)
    modes = [m for m in ("check", "profile", "memory", "scaling", "startup", "compile_times")
             if getattr(args, m)]
    if len(modes) > 1:
        first, second = (m.replace("_", "-") for m in modes[:2])
        print(f"numbaconv bench: error: --{first} and --{second} cannot be combined",
              file=sys.stderr)
        return 2
    if args.compile_times is not None:
        args.argv = argv
        return _compile_times(args)
    from numbaconv.bench import netcli

    problem = netcli.check_arguments(args)
    try:
        if args.network is not None:
            ops = netcli.parse_ops(args.ops)
        else:
            args.ops = list(sh.OPS) if args.ops is None else sh.parse_ops(args.ops)
    except ValueError as exc:
        problem = problem or str(exc)
    if problem is not None:
        print(f"numbaconv bench: error: {problem}", file=sys.stderr)
        return 2
    if args.list_shapes:
        return netcli.list_shapes(args)
    args.argv = argv
    if args.check is not None and (args.shapes or args.quick):
        print("numbaconv bench: error: --check takes its shapes, ops and dtypes from the "
              "baseline; drop --shapes/--quick", file=sys.stderr)
        return 2

    if args.plot is not None and importlib.util.find_spec("matplotlib") is None:
        print("numbaconv bench: error: --plot needs matplotlib: pip install 'numbaconv[bench]' "
              "(or pip install matplotlib)", file=sys.stderr)
        return 2
    if args.check is not None and args.threads is None:
        args.threads = _baseline_threads(args.check)
    restore_threads = None
    if args.threads is not None:
        from numbaconv.bench.threads import set_threads

        try:
            restore_threads = set_threads(args.threads)
        except ValueError as exc:
            print(f"numbaconv bench: error: {exc}", file=sys.stderr)
            return 2
    from numbaconv._compile_notice import compiling_notice

    # One line on stderr when numba compiles kernels in this process (never on a warm-cache
    # run; --startup and --memory compile in processes of their own).
    try:
        with compiling_notice(report_done=False):
            if args.network is not None and args.profile:
                return netcli.profile(args, _header(argv), ops)
            if args.network is not None:
                machine = _machine(args, argv, args.dtype)
                return netcli.run(args, machine, ops,
                                  after=lambda: _remeasure_gemm(args, machine))
            if args.startup:
                return _startup(args)
            if args.profile:
                return _profile(args)
            if args.scaling:
                return _scaling(args)
            if args.memory:
                return _memory(args)
            if args.check is not None:
                return _check(args, argv)
            return _matrix(args, argv)
    finally:
        if restore_threads is not None:
            restore_threads()


def _baseline_threads(path: Path) -> int | None:
    """The numba thread count a baseline was measured with (None if unknown or unreadable)."""
    try:
        threads = json.loads(path.read_text(encoding="utf-8"))["machine"]["threads"]["numba"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(threads, int) or threads < 1:
        return None
    import numba

    return min(threads, numba.config.NUMBA_NUM_THREADS)


def _settings(args: argparse.Namespace) -> tuple[int, float]:
    repeat = args.repeat or (3 if args.quick else 7)
    budget = args.budget or (0.25 if args.quick else 1.0)
    return repeat, budget


def _header(argv: Sequence[str] | None) -> dict[str, Any]:
    """The machine facts of the header (without the GEMM rate, which takes a moment)."""
    from numbaconv.bench.machine import machine_info

    words = list(sys.argv[1:] if argv is None else argv)
    machine = machine_info(words)
    machine["command"] = " ".join(["numbaconv", "bench", *words])
    return machine


def _print_header(argv: Sequence[str] | None) -> dict[str, Any]:
    from numbaconv.bench.report import header_lines

    machine = _header(argv)
    print("\n".join(header_lines(machine)) + "\n")
    return machine


def _machine(args: argparse.Namespace, argv: Sequence[str] | None, dtypes: Sequence[str]
             ) -> dict[str, Any]:
    from numbaconv.bench.machine import gemm_gflops

    machine = _header(argv)
    machine["gemm_size"] = args.gemm_size
    machine["gemm_gflops"] = {dt: gemm_gflops(dt, n=args.gemm_size) for dt in dtypes}
    blas = machine.get("openblas", {})
    if blas.get("environment", {}).get("OPENBLAS_CORETYPE") and blas.get("unforced_core") \
            not in (None, blas.get("core")):
        from numbaconv.bench.openblas import unforced_gemm_gflops

        machine["gemm_gflops_unforced"] = unforced_gemm_gflops(list(dtypes), args.gemm_size)
    return machine


def _remeasure_gemm(args: argparse.Namespace, machine: dict[str, Any]) -> None:
    """Measure the GEMM rate again after the run and keep the better one: a neighbour's job
    during one measurement must not make numbaconv look faster than the machine's GEMM."""
    from numbaconv.bench.machine import gemm_gflops

    rates = machine["gemm_gflops"]
    for dt in rates:
        rates[dt] = max(rates[dt], gemm_gflops(dt, n=args.gemm_size))


def _write_outputs(args: argparse.Namespace, report: dict[str, Any]) -> int:
    from numbaconv.bench.report import markdown_table, replace_section

    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    if args.markdown is not None:
        replace_section(args.markdown, "table", markdown_table(report))
        print(f"wrote {args.markdown}")
    if args.plot is not None:
        from numbaconv.bench.plot import plot_speedups

        try:
            plot_speedups(report, args.plot)
        except (RuntimeError, ValueError) as exc:
            print(f"numbaconv bench: error: {exc}", file=sys.stderr)
            return 1
        print(f"wrote {args.plot}")
    return 0


def _matrix(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    from numbaconv.bench.report import text_table
    from numbaconv.bench.runner import make_plan, merge_runs, run_plan, speedups

    shapes = args.shapes or sh.parse_shapes(sh.QUICK_SHAPES if args.quick else list(sh.SHAPES))
    repeat, budget = _settings(args)
    torch = False if args.no_torch else None
    plan = make_plan(shapes, args.dtype, args.ops, args.impls, torch=torch)
    machine = _machine(args, argv, args.dtype)
    results = merge_runs([run_plan(plan, repeat=repeat, budget_s=budget,
                                   progress=not args.no_progress) for _ in range(args.runs)])
    _remeasure_gemm(args, machine)
    report = {"machine": machine,
              "config": {"repeat": repeat, "budget_s": budget, "runs": args.runs},
              "shapes": {s.name: s.to_dict() for s in shapes},
              "results": results, "speedups": speedups(results)}
    print(text_table(report))
    return _write_outputs(args, report)


def _check(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    from numbaconv.bench.check import load_baseline, run_check, summarize
    from numbaconv.bench.runner import speedups

    try:
        entries = load_baseline(args.check)
    except ValueError as exc:
        print(f"numbaconv bench: error: {exc}", file=sys.stderr)
        return 2
    repeat, budget = _settings(args)
    _print_header(args.argv)
    comparisons, skipped, results = run_check(
        entries, tolerance=args.tolerance, repeat=repeat, budget_s=min(budget, 0.5),
        progress=not args.no_progress, torch=False if args.no_torch else None)
    code, message = summarize(comparisons, skipped, args.tolerance)
    base_threads = _baseline_threads(args.check)
    if args.threads is not None:
        message += (f"\n(measured with {args.threads} numba/BLAS thread(s); the baseline used "
                    f"{base_threads if base_threads is not None else 'an unknown number'})")
    print(message)
    if args.json or args.markdown or args.plot:
        dtypes = sorted({e["dtype"] for e in entries})
        report = {"machine": _machine(args, argv, dtypes), "results": results,
                  "speedups": speedups(results),
                  "check": {"baseline": str(args.check), "tolerance": args.tolerance,
                            "failed": [c.__dict__ for c in comparisons
                                       if c.failed(args.tolerance)]}}
        _write_outputs(args, report)
    return code


def _profile(args: argparse.Namespace) -> int:
    from numbaconv.bench.impls import Problem
    from numbaconv.bench.profile import (
        outside_gemm_share,
        profile_records,
        profile_table,
        stage_times,
    )
    from numbaconv.bench.report import format_time

    shapes = args.shapes or sh.parse_shapes(sh.QUICK_SHAPES if args.quick else list(sh.SHAPES))
    repeat, _ = _settings(args)
    machine = _print_header(args.argv)
    records = []
    summary = ["", "shape       dtype    wall        in GEMM  outside GEMM  median run",
               "(share of the thread time in the fastest run; outside GEMM in the median run)"]
    for shape in shapes:
        for dtype in args.dtype:
            times = stage_times(Problem(shape, dtype), repeat=repeat)
            print(profile_table(shape, dtype, times))
            records += profile_records(shape, dtype, times)
            outside = outside_gemm_share(times)
            summary.append(f"{shape.name:<11} {dtype:<8} {format_time(times['wall']):>9}  "
                           f"{100 * (1 - outside):6.1f}%  {100 * outside:11.1f}%  "
                           f"{100 * times['outside_median']:9.1f}%")
    print("\n".join(summary))
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": machine, "profile": records}, indent=1)
                             + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


def _each_shape_and_dtype(args: argparse.Namespace, shapes: Sequence[sh.Shape], key: str,
                          measure: Callable[[sh.Shape, str], list[dict[str, Any]]],
                          table: Callable[[list[dict[str, Any]]], str]) -> int:
    """Print ``table(measure(shape, dtype))`` for every shape and dtype; the records go to
    ``--json`` under ``key``, beside the machine facts printed first."""
    machine = _print_header(args.argv)
    records = []
    for shape in shapes:
        for dtype in args.dtype:
            result = measure(shape, dtype)
            print(table(result))
            records += result
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": machine, key: records}, indent=1) + "\n",
                             encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


def _memory(args: argparse.Namespace) -> int:
    from numbaconv.bench.memory import measure_memory, memory_table

    shapes = args.shapes or sh.parse_shapes(sh.QUICK_SHAPES if args.quick else list(sh.SHAPES))
    return _each_shape_and_dtype(args, shapes, "memory", measure_memory, memory_table)


def _scaling(args: argparse.Namespace) -> int:
    from numbaconv.bench.scaling import batch_scaling, scaling_table

    repeat, budget = _settings(args)
    return _each_shape_and_dtype(
        args, args.shapes or [sh.SHAPES["cifar"]], "scaling",
        lambda shape, dtype: batch_scaling(shape, dtype, repeat=repeat, budget_s=budget),
        scaling_table)


def _compile_times(args: argparse.Namespace) -> int:
    from numbaconv.bench import compile_times as ct

    try:
        entries = ct.parse_entries(None if args.compile_times == "all" else args.compile_times)
    except ValueError as exc:
        print(f"numbaconv bench: error: {exc}", file=sys.stderr)
        return 2
    machine = _print_header(args.argv)
    results = ct.measure(entries, warm_repeat=min(args.repeat or 1, 5),
                         progress=not args.no_progress)
    print(ct.entry_table(results) + "\n\n" + ct.kernel_table(results))
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": machine, "compile_times": results},
                                        indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


def _startup(args: argparse.Namespace) -> int:
    from numbaconv.bench.startup import measure_startup, startup_table

    shapes = args.shapes or [sh.SHAPES["classic"]]
    machine = _print_header(args.argv)
    results = []
    for shape in shapes:
        for dtype in args.dtype:
            result = measure_startup(shape, dtype, repeat=min(args.repeat or 3, 5))
            print(startup_table(result))
            results.append(result)
    if args.markdown is not None:
        from numbaconv.bench.report import header_lines, replace_section

        body = "\n".join(f"- {line}" for line in header_lines(machine)) + "\n\n" + "\n\n".join(
            f"```text\n{startup_table(r)}\n```" for r in results)
        replace_section(args.markdown, "startup", body)
        print(f"wrote {args.markdown}")
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": machine, "startup": results}, indent=1)
                             + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0
