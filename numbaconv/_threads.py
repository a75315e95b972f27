"""Keep Numba's OpenMP workers from spinning while BLAS runs.

A convolution alternates between Numba kernels (im2col, col2im) and BLAS matrix products,
tile by tile.  libgomp's default wait policy keeps idle workers spinning for a while after
each parallel region, so on a machine with few cores they steal the CPU from the BLAS threads
that run next; on 2 cores this made tiled convolutions several times slower.  The passive
policy puts idle workers to sleep at once.

libgomp reads ``OMP_WAIT_POLICY`` once, when it is loaded, which Numba does the first time it
starts its thread pool.  So the pool is started here with the variable set, and the variable
is then removed again, so that other OpenMP runtimes loaded later (PyTorch's, for example)
keep their own defaults.  Nothing is changed when the user has set ``OMP_WAIT_POLICY`` or
when Numba's threads are already running.
"""

from __future__ import annotations

import os


def start_numba_threads_passively() -> None:
    if "OMP_WAIT_POLICY" in os.environ:
        return
    try:
        from numba.np.ufunc import parallel
    except ImportError:  # pragma: no cover - Numba reorganised its modules
        return
    if getattr(parallel, "_is_initialized", False):
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        parallel._launch_threads()
    except Exception:  # pragma: no cover - leave the choice to Numba's first parallel call
        pass
    finally:
        del os.environ["OMP_WAIT_POLICY"]
