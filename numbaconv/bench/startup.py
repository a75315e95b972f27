"""``--startup``: import time and first-call (JIT) time in fresh processes.

Each measurement runs in a new interpreter with ``NUMBA_CACHE_DIR`` pointing at a fresh
temporary directory: the first process finds it empty (cold: every kernel is compiled),
later processes reuse it (warm: kernels are loaded from the on-disk cache). The import of
numpy + numba alone is measured the same way for reference.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from typing import Any

from numbaconv.bench.report import format_time
from numbaconv.bench.shapes import Shape

REFERENCE_CODE = """
import json, time
t0 = time.perf_counter()
import numpy, numba
print(json.dumps({"import_s": time.perf_counter() - t0}))
"""

PROBE_CODE = """
import json, sys, time
t0 = time.perf_counter()
import numbaconv
t1 = time.perf_counter()
import numpy as np
N, C, H, W, K, fh, fw, S, P, dtype = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
x = rng.standard_normal((N, C, H, W)).astype(dtype)
w = rng.standard_normal((K, C, fh, fw)).astype(dtype)
b = rng.standard_normal(K).astype(dtype)
def step():
    out, cache = numbaconv.conv2d_forward(x, w, b, S, P)
    return numbaconv.conv2d_backward(np.ones_like(out), cache)
t2 = time.perf_counter()
step()
t3 = time.perf_counter()
step()
t4 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "first_call_s": t3 - t2, "second_call_s": t4 - t3}))
"""


def probe_args(shape: Shape, dtype: str) -> list[str]:
    """Command-line arguments of :data:`PROBE_CODE` for ``shape`` and ``dtype``."""
    return [json.dumps([shape.N, shape.C, shape.H, shape.W, shape.K, shape.fh, shape.fw,
                        shape.S, shape.P, dtype])]


def run_code(code: str, args: list[str], cache_dir: str, timeout: float = 600.0
             ) -> dict[str, float]:
    """Run ``code`` in a fresh interpreter with ``NUMBA_CACHE_DIR=cache_dir``; return the JSON
    dict it prints last."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"start-up probe failed (exit {proc.returncode}):\n"
                           f"{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_startup(shape: Shape, dtype: str = "float32", *, repeat: int = 3,
                    timeout: float = 600.0) -> dict[str, Any]:
    """Cold and warm start-up of ``import numbaconv`` + the first forward+backward on ``shape``.

    Returns
    -------
    dict
        ``cold``: one process with an empty numba cache; ``warm``: median over ``repeat``
        processes reusing that cache; ``numpy+numba``: median import time of numpy and numba
        alone. Times in seconds.
    """
    args = probe_args(shape, dtype)
    with tempfile.TemporaryDirectory(prefix="numbaconv-cache-") as cache_dir:
        cold = run_code(PROBE_CODE, args, cache_dir, timeout)
        warm_runs = [run_code(PROBE_CODE, args, cache_dir, timeout) for _ in range(repeat)]
        ref_runs = [run_code(REFERENCE_CODE, [], cache_dir, timeout) for _ in range(repeat)]
    warm = {k: statistics.median(r[k] for r in warm_runs) for k in warm_runs[0]}
    return {"shape": shape.name, "dtype": dtype, "cold": cold, "warm": warm,
            "numpy+numba": {"import_s": statistics.median(r["import_s"] for r in ref_runs)}}


def startup_table(result: dict[str, Any]) -> str:
    """The start-up measurements as text."""
    cold, warm = result["cold"], result["warm"]
    ref = result["numpy+numba"]["import_s"]
    return "\n".join([
        f"start-up (fresh processes, {result['shape']} {result['dtype']} forward+backward):",
        f"  {'':<28}{'cold cache':>12}{'warm cache':>12}",
        f"  {'import numbaconv':<28}{format_time(cold['import_s']):>12}"
        f"{format_time(warm['import_s']):>12}",
        f"  {'first forward+backward':<28}{format_time(cold['first_call_s']):>12}"
        f"{format_time(warm['first_call_s']):>12}",
        f"  {'second forward+backward':<28}{format_time(cold['second_call_s']):>12}"
        f"{format_time(warm['second_call_s']):>12}",
        f"  {'import numpy+numba alone':<28}{format_time(ref):>12}",
    ])
