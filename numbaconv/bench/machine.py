"""What the benchmark ran on: CPU, cores, thread counts, library versions, the GEMM rate."""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import Any

import numpy as np


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else what :mod:`platform` knows."""
    with suppress(OSError), open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


#: The SIMD flags that decide which kernels NumPy's BLAS, Numba and PyTorch can use
#: (x86: SSE4.2 to AVX-512 and AMX; Arm: NEON "asimd" and SVE).
SIMD_FLAGS: tuple[str, ...] = (
    "sse4_2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl",
    "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "asimd", "sve", "sve2")


def lscpu_fields(run: Any = subprocess.run) -> dict[str, str]:
    """``lscpu``'s "Field: value" lines (empty where lscpu is missing or fails)."""
    if shutil.which("lscpu") is None:
        return {}
    try:
        done = run(["lscpu"], capture_output=True, text=True, timeout=10, check=False,
                   env={**os.environ, "LC_ALL": "C"})
    except (OSError, subprocess.SubprocessError):
        return {}
    fields = {}
    for line in done.stdout.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    return fields


def cpu_flags(fields: dict[str, str] | None = None) -> list[str]:
    """The :data:`SIMD_FLAGS` this CPU has (from lscpu, else /proc/cpuinfo)."""
    text = (fields or {}).get("Flags", "")
    if not text:
        with suppress(OSError), open("/proc/cpuinfo", encoding="utf-8",
                                     errors="replace") as fh:
            for line in fh:
                if line.lower().startswith(("flags", "features")):
                    text = line.split(":", 1)[1]
                    break
    have = set(text.split())
    return [flag for flag in SIMD_FLAGS if flag in have]


def blas_kernel(argv: list[str] | None = None, env: Mapping[str, str] | None = None,
                probe: Callable[[], str | None] | None = None
                ) -> tuple[dict[str, Any], list[str]]:
    """NumPy's OpenBLAS (kernel, version, threads, the forcing variables and the kernel it
    picks unforced) and the header's warnings about it.

    ``env`` defaults to ``os.environ`` and ``probe`` to
    :func:`numbaconv.bench.openblas.unforced_core` (a subprocess, started only when
    ``OPENBLAS_CORETYPE`` is set); tests pass their own instead of changing the environment.
    """
    from numbaconv.bench import openblas

    env = os.environ if env is None else env
    facts = openblas.openblas_facts()
    forcing = {v: env[v] for v in openblas.FORCING_VARIABLES if v in env}
    facts["environment"] = forcing
    if "OPENBLAS_CORETYPE" in forcing:
        facts["unforced_core"] = (probe or openblas.unforced_core)()
    else:
        facts["unforced_core"] = facts.get("core")
    warning = openblas.forcing_warning(env, facts.get("core"), facts["unforced_core"],
                                       openblas.unforced_command(argv))
    return facts, [] if warning is None else [warning]


def usable_cores() -> int:
    """Logical CPUs this process may run on (affinity-aware where the OS supports it)."""
    with suppress(AttributeError, OSError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def torch_module() -> Any | None:
    """The ``torch`` module, or None when it is not installed (or fails to import)."""
    try:
        import torch
    except Exception:  # noqa: BLE001 - a broken torch install counts as absent
        return None
    return torch


def blas_info() -> list[dict[str, Any]]:
    """BLAS/OpenMP pools seen by threadpoolctl (empty list when it is not installed)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [{"api": d.get("internal_api"), "prefix": d.get("prefix"),
             "version": d.get("version"), "num_threads": d.get("num_threads")}
            for d in threadpool_info() if d.get("user_api") == "blas"]


def thread_counts() -> dict[str, Any]:
    """Current thread counts of numba, the BLAS pools and torch."""
    import numba

    from numbaconv._lanes import blas_threads

    blas = blas_threads()
    counts: dict[str, Any] = {
        "numba": numba.get_num_threads(),
        "numba_layer": numba.config.THREADING_LAYER,
        "blas": None if blas is None else blas.get(),
    }
    torch = torch_module()
    if torch is not None:
        counts["torch"] = torch.get_num_threads()
    return counts


def versions() -> dict[str, str | None]:
    """Versions of python, numpy, numba, numbaconv and torch (None when absent)."""
    import numba

    import numbaconv

    torch = torch_module()
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numbaconv": numbaconv.__version__,
        "torch": None if torch is None else torch.__version__,
    }


def gemm_gflops(dtype: str, n: int = 2048, repeat: int = 5) -> float:
    """The machine's GEMM rate: GFLOP/s of ``np.dot`` on two n x n matrices of ``dtype``
    (best of ``repeat`` after a warm-up)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    out = np.empty((n, n), dtype=dtype)
    np.dot(a, b, out=out)  # warm-up: thread pool start, page faults
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        np.dot(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9


def machine_info(argv: list[str] | None = None) -> dict[str, Any]:
    """Everything about the run's environment that goes in the report header and JSON.

    ``argv`` are the ``numbaconv bench`` arguments (default ``sys.argv[1:]``), for the
    command that repeats the run without a forced OpenBLAS kernel.
    """
    blas = blas_info()
    fields = lscpu_fields()
    openblas, warnings = blas_kernel(argv)
    return {
        "cpu": fields.get("Model name") or cpu_model(),
        "cpu_flags": cpu_flags(fields),
        "openblas": openblas,
        "warnings": warnings,
        "cores": usable_cores(),
        "os_cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "threads": thread_counts(),
        "blas": blas,
        "versions": versions(),
        "command": " ".join(["numbaconv", *sys.argv[1:]]) if sys.argv else "numbaconv bench",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
