"""``--compile-times``: cold and warm first calls of each entry point, and the seconds each
Numba kernel takes to compile.

Every entry point runs in a new interpreter with ``NUMBA_CACHE_DIR`` pointing at a fresh,
empty directory of its own (cold: every kernel it needs is compiled), then in a second new
interpreter reusing that directory (warm: the kernels are loaded from the on-disk cache).
While the first call runs, :class:`KernelRecorder` wraps ``Dispatcher.compile`` and notes
every kernel and signature compiled or loaded, with its seconds *excluding* the kernels it
compiled in turn (a kernel that calls another compiles the callee first, inside its own
compilation).  Functions with ``inline="always"`` are not compiled on their own: their cost
is in the seconds of the kernels they are inlined into.

Run it as ``numbaconv bench --compile-times`` (all entry points) or ``numbaconv bench
--compile-times layer-float32,im2col_indices-float32`` (the names, ``-`` for spaces), or
``python -c "from numbaconv.bench.compile_times import main; main()" --entry NAME,...``.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from typing import Any

# name -> statement run after ``import numpy as np, numbaconv as nc`` and the inputs
# (``rng``, ``f32``, ``f64``) are set up; the first run of the statement is what is timed.
ENTRY_POINTS: dict[str, str] = {
    "layer float32": (
        "x = rng.standard_normal((2, 3, 16, 16)).astype(f32); "
        "w = rng.standard_normal((4, 3, 3, 3)).astype(f32); b = np.zeros(4, f32)\n"
        "def call():\n"
        "    out, cache = nc.conv2d_forward(x, w, b, 1, 1)\n"
        "    nc.conv2d_backward(np.ones_like(out), cache)\n"),
    "layer float64": (
        "x = rng.standard_normal((2, 3, 16, 16)); w = rng.standard_normal((4, 3, 3, 3)); "
        "b = np.zeros(4)\n"
        "def call():\n"
        "    out, cache = nc.conv2d_forward(x, w, b, 1, 1)\n"
        "    nc.conv2d_backward(np.ones_like(out), cache)\n"),
    "strided layer float32": (
        "x = rng.standard_normal((2, 3, 16, 16)).astype(f32); "
        "w = rng.standard_normal((4, 3, 3, 3)).astype(f32); b = np.zeros(4, f32)\n"
        "def call():\n"
        "    out, cache = nc.conv2d_forward(x, w, b, 2, 1)\n"
        "    nc.conv2d_backward(np.ones_like(out), cache)\n"),
    "medium layer float32": (  # several lanes on threads, serial kernels
        "x = rng.standard_normal((8, 16, 32, 32)).astype(f32); "
        "w = rng.standard_normal((16, 16, 3, 3)).astype(f32); b = np.zeros(16, f32)\n"
        "def call():\n"
        "    out, cache = nc.conv2d_forward(x, w, b, 1, 1)\n"
        "    nc.conv2d_backward(np.ones_like(out), cache)\n"),
    "large layer float32": (  # a CS231n-sized batch: the parallel drivers
        "x = rng.standard_normal((50, 3, 32, 32)).astype(f32); "
        "w = rng.standard_normal((16, 3, 3, 3)).astype(f32); b = np.zeros(16, f32)\n"
        "def call():\n"
        "    out, cache = nc.conv2d_forward(x, w, b, 1, 1)\n"
        "    nc.conv2d_backward(np.ones_like(out), cache)\n"),
    "Conv layer float32": (
        "layer = nc.Conv((3, 16, 16), 4, 3, 3, 1, 1, dtype=f32, rng=0); "
        "x = rng.standard_normal((2, 3, 16, 16)).astype(f32)\n"
        "def call():\n"
        "    out = layer.forward(x)\n"
        "    layer.backward(np.ones_like(out))\n"),
    "conv2d float32": (
        "x = rng.standard_normal((2, 3, 16, 16)).astype(f32); "
        "w = rng.standard_normal((4, 3, 3, 3)).astype(f32)\n"
        "def call():\n"
        "    nc.conv2d(x, w, None, 1, 1)\n"),
    "im2col_indices float32": (
        "x = rng.standard_normal((5, 3, 10, 10)).astype(f32)\n"
        "def call():\n"
        "    nc.im2col_indices(x, 3, 3, 1, 1)\n"),
    "col2im_indices float32": (
        "cols = rng.standard_normal((27, 500)).astype(f32)\n"
        "def call():\n"
        "    nc.col2im_indices(cols, (5, 3, 10, 10), 3, 3, 1, 1)\n"),
    "im2col_indices float64": (
        "x = rng.standard_normal((5, 3, 10, 10))\n"
        "def call():\n"
        "    nc.im2col_indices(x, 3, 3, 1, 1)\n"),
    "col2im_indices float64": (
        "cols = rng.standard_normal((27, 500))\n"
        "def call():\n"
        "    nc.col2im_indices(cols, (5, 3, 10, 10), 3, 3, 1, 1)\n"),
    "im2col_indices large float32": (  # the parallel driver (a CS231n-sized batch)
        "x = rng.standard_normal((50, 3, 32, 32)).astype(f32)\n"
        "def call():\n"
        "    nc.im2col_indices(x, 3, 3, 1, 1)\n"),
    "col2im_indices large float32": (
        "cols = rng.standard_normal((27, 51200)).astype(f32)\n"
        "def call():\n"
        "    nc.col2im_indices(cols, (50, 3, 32, 32), 3, 3, 1, 1)\n"),
    "conv_transpose2d float32": (
        "x = rng.standard_normal((2, 4, 8, 8)).astype(f32); "
        "w = rng.standard_normal((4, 3, 3, 3)).astype(f32); b = np.zeros(3, f32)\n"
        "def call():\n"
        "    out, cache = nc.conv_transpose2d_forward(x, w, b, 2, 1)\n"
        "    nc.conv_transpose2d_backward(np.ones_like(out), cache)\n"),
    "depthwise float32": (
        "x = rng.standard_normal((2, 8, 16, 16)).astype(f32); "
        "w = rng.standard_normal((8, 1, 3, 3)).astype(f32); b = np.zeros(8, f32)\n"
        "def call():\n"
        "    out, cache = nc.conv2d_forward(x, w, b, 1, 1, groups=8)\n"
        "    nc.conv2d_backward(np.ones_like(out), cache)\n"),
}


class KernelRecorder:
    """Record every Numba kernel compiled (or loaded from the cache) while installed.

    ``records`` gets one dict per kernel and signature: ``kernel`` (module.name),
    ``signature``, ``how`` ('compiled' or 'loaded'), ``seconds`` (excluding the kernels
    compiled inside it), of which ``llvm`` seconds inside LLVM (optimisation and machine
    code; the rest is Numba's typing and lowering), ``cpu`` seconds (the compiling thread's
    CPU time, which other processes on a busy machine disturb less), and ``inclusive``
    seconds.  Waits for a
    compilation that another thread is doing are not recorded.
    """

    def __init__(self):
        self.records = []
        self._local = threading.local()
        self._lock = threading.Lock()
        self._original = None
        self._listener = None

    def install(self):
        """Wrap ``numba.core.dispatcher.Dispatcher.compile``."""
        from numba.core import dispatcher, event, sigutils
        from numba.core.compiler_lock import global_compiler_lock

        original = self._original = dispatcher.Dispatcher.compile
        recorder = self
        local = self._local

        class LlvmTime(event.Listener):  # LLVM's lock: held while LLVM works
            def on_start(self, ev):
                local.llvm_start = time.perf_counter()

            def on_end(self, ev):
                llvm = local.__dict__.get("llvm")
                if llvm and "llvm_start" in local.__dict__:
                    llvm[-1] += time.perf_counter() - local.llvm_start

        self._listener = LlvmTime()
        event.register("numba:llvm_lock", self._listener)

        def compile(disp, sig):
            args, _ = sigutils.normalize_signature(sig)
            if tuple(args) in disp.overloads:
                return original(disp, sig)
            # Numba compiles under this (reentrant) lock: taking it first keeps a thread that
            # waits for another one's compilation of the same kernel out of the records.
            with global_compiler_lock:
                if tuple(args) in disp.overloads:
                    return original(disp, sig)
                return timed(disp, sig, args)

        def timed(disp, sig, args):
            stack = local.__dict__.setdefault("stack", [])
            llvm = local.__dict__.setdefault("llvm", [])
            hits, misses = sum(disp._cache_hits.values()), sum(disp._cache_misses.values())
            stack.append([0.0, 0.0])
            llvm.append(0.0)
            start, cpu_start = time.perf_counter(), time.thread_time()
            try:
                return original(disp, sig)
            finally:
                inclusive = time.perf_counter() - start
                cpu = time.thread_time() - cpu_start
                nested, nested_cpu = stack.pop()
                own_llvm = llvm.pop()
                if stack:
                    stack[-1][0] += inclusive
                    stack[-1][1] += cpu
                if sum(disp._cache_misses.values()) > misses:
                    how = "compiled"
                elif sum(disp._cache_hits.values()) > hits:
                    how = "loaded"
                else:
                    how = None  # (compilation failed: Numba tries another signature)
                if how is not None:
                    py = disp.py_func
                    with recorder._lock:
                        recorder.records.append({
                            "kernel": f"{py.__module__}.{py.__qualname__}",
                            "signature": "(" + ", ".join(map(str, args)) + ")",
                            "how": how, "seconds": inclusive - nested,
                            "cpu": cpu - nested_cpu, "llvm": own_llvm,
                            "inclusive": inclusive})

        dispatcher.Dispatcher.compile = compile
        return self

    def uninstall(self):
        """Put ``Dispatcher.compile`` back."""
        from numba.core import dispatcher, event

        if self._original is not None:
            dispatcher.Dispatcher.compile = self._original
            event.unregister("numba:llvm_lock", self._listener)
            self._original = None


PROBE_TEMPLATE = """
import json, sys, time
t0 = time.perf_counter()
import numpy, numba
t1 = time.perf_counter()
import numpy as np
import numbaconv as nc
t2 = time.perf_counter()
{recorder}
rng = np.random.default_rng(0)
f32, f64 = np.float32, np.float64
{setup}
recorder = KernelRecorder().install()
t3, c3 = time.perf_counter(), time.process_time()
call()
t4, c4 = time.perf_counter(), time.process_time()
recorder.uninstall()
call()
t5 = time.perf_counter()
print(json.dumps({{"numpy+numba_s": t1 - t0, "import_s": t2 - t1, "first_call_s": t4 - t3,
                  "first_call_cpu_s": c4 - c3, "second_call_s": t5 - t4,
                  "kernels": recorder.records}}))
"""


def probe_code(entry: str) -> str:
    """The program that times ``entry`` (a key of :data:`ENTRY_POINTS`) in a fresh process."""
    recorder = textwrap.dedent(inspect.getsource(KernelRecorder))
    return PROBE_TEMPLATE.format(recorder="import threading\n" + recorder,
                                 setup=ENTRY_POINTS[entry])


def run_probe(entry: str, cache_dir: str, timeout: float = 600.0) -> dict[str, Any]:
    """Run the probe of ``entry`` with ``NUMBA_CACHE_DIR=cache_dir``; its JSON result."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    proc = subprocess.run([sys.executable, "-c", probe_code(entry)], env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"compile-time probe {entry!r} failed (exit {proc.returncode}):\n"
                           f"{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_entry(entry: str, warm_repeat: int = 1, timeout: float = 600.0) -> dict[str, Any]:
    """Cold (empty cache) and warm (that cache, ``warm_repeat`` processes: the fastest)
    measurements of one entry point."""
    with tempfile.TemporaryDirectory(prefix="numbaconv-cache-") as cache_dir:
        cold = run_probe(entry, cache_dir, timeout)
        warms = [run_probe(entry, cache_dir, timeout) for _ in range(max(warm_repeat, 1))]
    warm = min(warms, key=lambda r: r["import_s"] + r["first_call_s"])
    return {"entry": entry, "cold": cold, "warm": warm}


def _fmt(seconds: float) -> str:
    return f"{seconds:7.2f} s" if seconds >= 0.1 else f"{seconds * 1e3:6.1f} ms"


def entry_table(results: list[dict[str, Any]]) -> str:
    """Cold and warm times per entry point."""
    lines = ["first call of each entry point, fresh process (cold: empty NUMBA_CACHE_DIR; "
             "warm: its cache)",
             f"  {'entry point':<30}{'cold':>10}{'warm':>10}{'compiled':>10}{'kernels':>9}"
             f"{'import':>10}{'np+numba':>10}"]
    for r in results:
        cold, warm = r["cold"], r["warm"]
        compiled = sum(k["seconds"] for k in cold["kernels"] if k["how"] == "compiled")
        lines.append(f"  {r['entry']:<30}{_fmt(cold['first_call_s']):>10}"
                     f"{_fmt(warm['first_call_s']):>10}{_fmt(compiled):>10}"
                     f"{len(cold['kernels']):>9}{_fmt(warm['import_s']):>10}"
                     f"{_fmt(warm['numpy+numba_s']):>10}")
    lines.append("  (compiled: seconds in Numba compilations of the cold call; kernels: "
                 "specializations compiled; import: warm 'import numbaconv' after numpy+numba)")
    return "\n".join(lines)


def kernel_table(results: list[dict[str, Any]]) -> str:
    """Seconds per kernel and signature compiled by each cold first call."""
    lines = []
    for r in results:
        kernels = sorted(r["cold"]["kernels"], key=lambda k: -k["seconds"])
        lines.append(f"{r['entry']}: {len(kernels)} kernels, "
                     f"{sum(k['seconds'] for k in kernels):.2f} s")
        for k in kernels:
            name = k["kernel"].removeprefix("numbaconv.")
            lines.append(f"  {k['seconds']:6.2f} s  (LLVM {k.get('llvm', 0):5.2f} s)  "
                         f"{name}{_short(k['signature'])}")
    return "\n".join(lines)


def _short(signature: str, width: int = 150) -> str:
    """A signature cut to ``width`` characters."""
    return signature if len(signature) <= width else signature[:width - 3] + "..."


def measure(entries: list[str] | None = None, warm_repeat: int = 1,
            progress: bool = True) -> list[dict[str, Any]]:
    """:func:`measure_entry` of every entry point named (default: all)."""
    results = []
    for entry in entries or list(ENTRY_POINTS):
        if progress:
            print(f"  measuring {entry} ...", file=sys.stderr, flush=True)
        results.append(measure_entry(entry, warm_repeat))
    return results


def parse_entries(text: str | None) -> list[str] | None:
    """Comma-separated entry point names (None: all), with ``-`` for a space if wished
    (``layer-float32``); unknown names are a ValueError."""
    if text is None:
        return None
    names = [t.strip().replace("-", " ") for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in ENTRY_POINTS]
    if unknown or not names:
        raise ValueError(f"unknown entry point(s) {', '.join(map(repr, unknown)) or '(none)'}; "
                         f"expected names from: {', '.join(ENTRY_POINTS)}")
    return names


def main(argv: list[str] | None = None) -> int:
    """``python -c 'from numbaconv.bench.compile_times import main; main()' [--entry A,B]
    [--json PATH] [--warm N]``."""
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--entry", default=None, help="comma-separated entry points (default all: "
                                                 + ", ".join(ENTRY_POINTS) + ")")
    p.add_argument("--warm", type=int, default=1, help="warm processes per entry (fastest)")
    p.add_argument("--json", default=None, help="write the results as JSON")
    args = p.parse_args(argv)
    try:
        entries = parse_entries(args.entry)
    except ValueError as exc:
        p.error(str(exc))
    results = measure(entries, args.warm)
    print(entry_table(results))
    print()
    print(kernel_table(results))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    return 0
