"""The ``--network``, ``--profile --network`` and ``--list-shapes`` views of ``numbaconv bench``.

:func:`add_arguments` adds their options to the bench parser; the other functions run them
with the parsed arguments (see :mod:`numbaconv.bench.cli`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any

from numbaconv.bench import networks as nets
from numbaconv.bench.layers import NET_OPS

DEFAULT_BATCHES = "1,8,32"


def _argtype(parse: Any) -> Any:
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return convert


def _gib(text: str) -> int:
    value = float(text)
    if not value > 0:
        raise ValueError(f"expected GiB > 0, got {text!r}")
    return int(value * 2**30)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The network options, in their own group."""
    g = parser.add_argument_group("real networks (--network)")
    g.add_argument("--network", type=_argtype(nets.parse_networks), default=None,
                   metavar="NAME[,NAME]",
                   help="time every conv layer of these networks (training and inference) "
                        f"against the bare matrix products and PyTorch: {', '.join(nets.NETWORKS)}"
                        " or all; --ops train,infer selects one of the two")
    g.add_argument("--batch", type=_argtype(nets.parse_batches), default=None,
                   metavar="N[,N]", help=f"batch sizes for --network (default {DEFAULT_BATCHES})")
    g.add_argument("--layers", type=lambda t: [p.strip() for p in t.split(",") if p.strip()],
                   default=None, metavar="PATTERN[,PATTERN]",
                   help="only the layers whose names match these shell-style patterns, e.g. "
                        "'conv1,layer3.*' (see --list-shapes)")
    g.add_argument("--max-memory", type=_argtype(_gib), default=None, metavar="GIB",
                   help="skip cases estimated to need more memory than this (default: 75%% "
                        "of the memory available at the start)")
    g.add_argument("--list-shapes", action="store_true",
                   help="print what every shape name means (the benchmark shapes, and the layers "
                        "of --network or of every network) and exit")


def check_arguments(args: argparse.Namespace) -> str | None:
    """An error message for options that do not go together, else None."""
    if args.network is None:
        for flag in ("batch", "layers", "max_memory"):
            if getattr(args, flag) is not None:
                return f"--{flag.replace('_', '-')} needs --network"
        return None
    for flag in ("check", "memory", "scaling", "startup", "plot"):
        if getattr(args, flag):
            return f"--network cannot be combined with --{flag}"
    if args.shapes is not None:
        return "--network times the network's layers; drop --shapes"
    if args.layers is not None:
        layers = [layer for net in args.network for layer in net.layers()]
        if not nets.select_layers(layers, args.layers):
            return (f"no layer of {', '.join(n.name for n in args.network)} matches "
                    f"--layers {','.join(args.layers)} (see --list-shapes)")
    return None


def parse_ops(text: str | None) -> list[str]:
    """``--ops`` of a network run: ``train``, ``infer`` or both (the default)."""
    if text is None:
        return list(NET_OPS)
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in NET_OPS]
    if not names or unknown:
        raise ValueError(f"unknown op(s) {', '.join(map(repr, unknown)) or '(none)'} for "
                         f"--network; expected names from {', '.join(NET_OPS)}")
    return list(dict.fromkeys(names))


def available_memory() -> int | None:
    """MemAvailable of /proc/meminfo in bytes (None where it is not known)."""
    with suppress(OSError, ValueError), open("/proc/meminfo", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


def list_shapes(args: argparse.Namespace) -> int:
    from numbaconv.bench.netreport import list_shapes as text

    networks = args.network or list(nets.NETWORKS.values())
    print(text(networks, args.layers, spec=args.network is None))
    return 0


def _batches(args: argparse.Namespace) -> list[int]:
    return args.batch or nets.parse_batches(DEFAULT_BATCHES)


def _cases(args: argparse.Namespace, ops: Sequence[str]) -> list:
    from numbaconv.bench.netrun import make_cases

    return make_cases(args.network, _batches(args), args.dtype, ops, args.layers)


def _settings(args: argparse.Namespace) -> tuple[int, float, int]:
    repeat = args.repeat or (3 if args.quick else 5)
    budget = args.budget or (0.25 if args.quick else 1.0)
    return repeat, budget, min(3, repeat)


def run(args: argparse.Namespace, machine: dict[str, Any], ops: Sequence[str],
        after: Callable[[], None] | None = None) -> int:
    """Time the cases, print the tables, write --json / --markdown; ``after`` runs once the
    cases are timed (the CLI measures the GEMM rate again there)."""
    from numbaconv.bench.netpass import time_passes
    from numbaconv.bench.netreport import network_markdown, network_text
    from numbaconv.bench.netrun import network_sums, run_cases

    repeat, budget, min_rounds = _settings(args)
    max_memory = args.max_memory
    if max_memory is None:
        available = available_memory()
        max_memory = None if available is None else int(0.75 * available)
    results = run_cases(_cases(args, ops), repeat=repeat, budget_s=budget,
                        min_rounds=min_rounds, torch=not args.no_torch,
                        max_memory=max_memory, progress=not args.no_progress)
    passes = time_passes(args.network, _batches(args), args.dtype, ops, patterns=args.layers,
                         repeat=repeat, budget_s=budget, min_rounds=min_rounds,
                         torch=not args.no_torch, max_memory=max_memory,
                         progress=not args.no_progress)
    if after is not None:
        after()
    report = {"machine": machine,
              "config": {"repeat": repeat, "budget_s": budget, "min_rounds": min_rounds,
                         "max_memory_bytes": max_memory},
              "networks": {net.name: {"source": net.source, "input": [net.channels, net.size,
                                                                     net.size],
                                      "layers": [layer.to_dict() for layer in net.layers()]}
                           for net in args.network},
              "results": results, "sums": network_sums(results), "passes": passes}
    print(network_text(report))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    if args.markdown is not None:
        from numbaconv.bench.report import replace_section

        replace_section(args.markdown, "networks", network_markdown(report))
        print(f"wrote {args.markdown}")
    return 0


def profile(args: argparse.Namespace, machine: dict[str, Any], ops: Sequence[str]) -> int:
    """``--profile --network``: stage shares per layer."""
    from numbaconv._progress import ProgressBar
    from numbaconv.bench.netprofile import profile_case, profile_text
    from numbaconv.bench.report import header_lines

    repeat, _, _ = _settings(args)
    cases = _cases(args, ops)
    records = []
    with ProgressBar(len(cases), stream=sys.stderr, enabled=not args.no_progress,
                     unit="case") as bar:
        for case in cases:
            bar.start(case.label)
            records.append(profile_case(case, repeat=repeat))
            bar.update(case.label)
    print("\n".join(header_lines(machine)))
    print(profile_text(records))
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": machine, "profile": records}, indent=1)
                             + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0
