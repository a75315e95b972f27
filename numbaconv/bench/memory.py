"""``--memory``: peak resident memory added by one forward+backward of a layer.

Each measurement runs in a fresh interpreter, so that memory freed by earlier work cannot hide
a peak.  The process builds the layer and its inputs, compiles and warms up on a batch of two
images (so compilation is not counted), reads its peak resident set size, runs one
forward+backward on the whole batch, and reads the peak again; the difference is what that
call added.  Needs the ``resource`` module (Linux, macOS).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from numbaconv.bench.shapes import Shape

#: (label, implementation, workspace in bytes or None)
VARIANTS = (("FancyConv", "fancy", None),
            ("numbaconv.Conv", "numbaconv", None),
            ("numbaconv.Conv(workspace=64 MiB)", "numbaconv", 64 * 2**20))

PROBE_CODE = """
import json, resource, sys
import numpy as np
import numbaconv
from numbaconv import reference
N, C, H, W, K, fh, fw, S, P, dtype, impl, workspace = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
x = rng.standard_normal((N, C, H, W)).astype(dtype)
def layer():
    if impl == "fancy":
        return reference.FancyConv((C, H, W), K, fh, fw, S, P, dtype=dtype, rng=0)
    return numbaconv.Conv((C, H, W), K, fh, fw, S, P, dtype=dtype, rng=0, workspace=workspace)
warm = layer()
warm.backward(warm.forward(x[:2]))
conv = layer()
dout = np.ones((N, K, conv.h_out, conv.w_out), dtype=dtype)
del warm
scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
conv.backward(conv.forward(x))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
print(json.dumps({"before": before, "after": after}))
"""


def measure_memory(shape: Shape, dtype: str = "float32", *, timeout: float = 600.0
                   ) -> list[dict[str, Any]]:
    """Peak RSS added by one forward+backward, for each of :data:`VARIANTS`, in bytes."""
    records = []
    for label, impl, workspace in VARIANTS:
        args = [shape.N, shape.C, shape.H, shape.W, shape.K, shape.fh, shape.fw, shape.S,
                shape.P, dtype, impl, workspace]
        proc = subprocess.run([sys.executable, "-c", PROBE_CODE, json.dumps(args)],
                              capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"memory probe failed (exit {proc.returncode}):\n"
                               f"{proc.stderr[-2000:]}")
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        records.append({"shape": shape.name, "dtype": dtype, "layer": label,
                        "added_bytes": got["after"] - got["before"], "peak_bytes": got["after"]})
    return records


def memory_table(records: list[dict[str, Any]]) -> str:
    """The measurements of one shape and dtype as text."""
    first = records[0]
    lines = [f"peak memory added by one forward+backward, {first['shape']} {first['dtype']} "
             "(fresh processes):"]
    lines += [f"  {r['layer']:<34} +{r['added_bytes'] / 1e6:7.1f} MB" for r in records]
    return "\n".join(lines)
