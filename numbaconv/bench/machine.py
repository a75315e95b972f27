"""What the benchmark ran on: CPU, cores, thread counts, library versions, the GEMM rate."""

from __future__ import annotations

import datetime
import os
import platform
import sys
import time
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


def machine_info() -> dict[str, Any]:
    """Everything about the run's environment that goes in the report header and JSON."""
    blas = blas_info()
    return {
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "os_cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "threads": thread_counts(),
        "blas": blas,
        "versions": versions(),
        "command": " ".join(["numbaconv", *sys.argv[1:]]) if sys.argv else "numbaconv bench",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
