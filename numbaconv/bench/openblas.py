"""Which OpenBLAS kernel NumPy runs, and whether ``OPENBLAS_CORETYPE`` forces an older one.

OpenBLAS picks a kernel for the CPU it runs on (``Haswell`` for AVX2, ``SkylakeX`` for
AVX-512, ...) unless the environment variable ``OPENBLAS_CORETYPE`` names one.  A machine
that sets ``OPENBLAS_CORETYPE=Haswell`` on an AVX-512 CPU halves np.dot's float32 rate, and
every ratio against NumPy's products with it.  The benchmarks keep the environment as it is
(these variables are never changed in this process); the header names the kernel in use and,
when the variable is set, the kernel OpenBLAS picks without it, found in a short subprocess
started with ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` removed from its environment.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import Any

from numbaconv._blas import openblas_paths

#: The variables that change which kernel OpenBLAS uses and how it blocks its products.
FORCING_VARIABLES: tuple[str, ...] = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

#: Names of ``openblas_get_corename`` / ``openblas_get_config`` in the builds NumPy ships
#: (NumPy 2 wheels: ``scipy_openblas`` with the ILP64 suffix ``64_``).
_PREFIXES = ("scipy_openblas_", "openblas_")
_SUFFIXES = ("64_", "_64", "")

#: Every spelling of the kernel-name function, most likely first.
_CORENAME_SYMBOLS = tuple(f"{p}get_corename{s}" for p in _PREFIXES for s in _SUFFIXES)

#: A script printing the kernel name as JSON, run in a subprocess.  It imports NumPy only (not
#: numbaconv or Numba) and looks for the library as ``numbaconv._blas.openblas_paths`` does.
_PROBE = f"""\
import ctypes, glob, json, os, numpy
base = os.path.dirname(numpy.__file__)
core = None
for path in sorted(glob.glob(os.path.join(base + ".libs", "*openblas*"))
                   + glob.glob(os.path.join(base, ".dylibs", "*openblas*"))):
    lib = ctypes.CDLL(path)
    for name in {_CORENAME_SYMBOLS!r}:
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.restype = ctypes.c_char_p
            core = fn().decode()
            break
    if core:
        break
print(json.dumps({{"core": core}}))
"""


def _symbol(library: ctypes.CDLL, stem: str) -> Callable[[], Any] | None:
    for prefix in _PREFIXES:
        for suffix in _SUFFIXES:
            fn = getattr(library, f"{prefix}{stem}{suffix}", None)
            if fn is not None:
                return fn
    return None


def _text(library: ctypes.CDLL, stem: str) -> str | None:
    fn = _symbol(library, stem)
    if fn is None:
        return None
    fn.restype = ctypes.c_char_p
    value = fn()
    return value.decode(errors="replace").strip() if value else None


def openblas_facts() -> dict[str, Any]:
    """The bundled OpenBLAS's kernel (``core``), version, build string and thread count.

    Empty when NumPy does not bundle OpenBLAS (MKL, Accelerate, a system BLAS); then the
    threadpoolctl view of the BLAS, where available, fills ``core`` and ``version``.
    """
    facts: dict[str, Any] = {}
    for path in openblas_paths():
        try:
            library = ctypes.CDLL(path)  # NumPy loaded it already: the same library
        except OSError:
            continue
        core = _text(library, "get_corename")
        if core is None:
            continue
        config = _text(library, "get_config") or ""
        facts = {"library": os.path.basename(path), "core": core, "config": config}
        match = re.search(r"OpenBLAS\s+(\S+)", config)
        if match:
            facts["version"] = match.group(1)
        threads = _symbol(library, "get_num_threads")
        if threads is not None:
            threads.restype = ctypes.c_int
            facts["threads"] = int(threads())
        break
    if not facts:
        facts = _threadpoolctl_facts()
    return facts


def _threadpoolctl_facts() -> dict[str, Any]:
    with suppress(Exception):
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            if pool.get("user_api") == "blas":
                return {"library": os.path.basename(pool.get("filepath") or ""),
                        "core": pool.get("architecture"), "version": pool.get("version"),
                        "threads": pool.get("num_threads"), "api": pool.get("internal_api")}
    return {}


def unforced_environment(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without the variables that force OpenBLAS's kernel or its cache size."""
    return {k: v for k, v in env.items() if k not in FORCING_VARIABLES}


def unforced_core(env: Mapping[str, str] | None = None,
                  run: Callable[..., Any] = subprocess.run) -> str | None:
    """The kernel OpenBLAS picks on this CPU by itself: a subprocess without the forcing
    variables prints it.  None when the subprocess fails (reported, not raised)."""
    env = os.environ if env is None else env
    try:
        done = run([sys.executable, "-c", _PROBE], env=unforced_environment(env),
                   capture_output=True, text=True, timeout=60, check=False)
        return json.loads(done.stdout.strip().splitlines()[-1]).get("core")
    except (OSError, ValueError, IndexError, subprocess.SubprocessError, AttributeError):
        return None


_GEMM_PROBE = """\
import json, sys, time
import numpy as np
n, rates = int(sys.argv[1]), {}
for dtype in sys.argv[2:]:
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(dtype) for _ in range(2))
    out = np.empty((n, n), dtype)
    np.dot(a, b, out=out)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        np.dot(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    rates[dtype] = 2.0 * n**3 / best / 1e9
print(json.dumps(rates))
"""


def unforced_gemm_gflops(dtypes: list[str], n: int, env: Mapping[str, str] | None = None,
                         run: Callable[..., Any] = subprocess.run) -> dict[str, float]:
    """np.dot's GFLOP/s on n x n matrices with OpenBLAS's own kernel: the GEMM rate of the
    header measured in a subprocess without the forcing variables (empty if it fails)."""
    env = os.environ if env is None else env
    try:
        done = run([sys.executable, "-c", _GEMM_PROBE, str(n), *dtypes],
                   env=unforced_environment(env), capture_output=True, text=True, timeout=300,
                   check=False)
        rates = json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, ValueError, IndexError, subprocess.SubprocessError, AttributeError):
        return {}
    return {k: float(v) for k, v in rates.items() if k in dtypes}


def unforced_command(argv: list[str] | None = None) -> str:
    """The command that repeats this benchmark with OpenBLAS choosing its own kernel."""
    words = ["numbaconv", "bench", *(sys.argv[1:] if argv is None else argv)]
    return " ".join(["env", *(f"-u {v}" for v in FORCING_VARIABLES), *words])


def forcing_warning(env: Mapping[str, str], core: str | None, unforced: str | None,
                    command: str) -> str | None:
    """The header's warning when ``OPENBLAS_CORETYPE`` makes OpenBLAS use another kernel
    than it would pick itself (None when it is unset, or forces the kernel it picks anyway).

    Parameters
    ----------
    env : mapping
        The environment of the run (``os.environ``).
    core : str or None
        The kernel in use.
    unforced : str or None
        The kernel without the forcing variables (None: the probe failed).
    command : str
        The command to get the unforced figures (:func:`unforced_command`).
    """
    forced = env.get("OPENBLAS_CORETYPE")
    if not forced:
        return None
    if unforced is not None and core is not None and unforced.lower() == core.lower():
        return None
    if unforced is None:
        what = "could not find the kernel OpenBLAS picks without it"
    else:
        what = (f"without it OpenBLAS picks {unforced} on this CPU, so NumPy's products (the "
                "'bare' and GEMM-rate figures) may run far below the machine's rate (AVX-512 "
                "kernels forced to Haswell: about half the float32 rate)")
    return (f"WARNING: OPENBLAS_CORETYPE={forced} forces OpenBLAS's {core or forced} kernel; "
            f"{what}. Unforced figures: {command}")
