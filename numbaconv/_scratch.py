"""Per-thread scratch buffers (column tiles, column gradients, products), kept between calls.

A fresh buffer per lane costs page faults that took longer than filling it.  Buffers larger
than ``_SCRATCH_KEPT`` bytes are not kept, so a one-off huge workspace is given back.
"""

from __future__ import annotations

import threading

import numpy as np

_scratch = threading.local()
_SCRATCH_KEPT = 64 * 2**20


def _scratch_buffer(name: str, size: int, dtype: np.dtype) -> np.ndarray:
    """A 1-d array of ``size`` elements of this thread's scratch buffer ``name``.

    Its contents are undefined, and it is valid until this thread asks for ``name`` again.
    """
    nbytes = size * np.dtype(dtype).itemsize
    buffer = getattr(_scratch, name, None)
    if buffer is None or buffer.nbytes < nbytes:
        buffer = np.empty(nbytes, dtype=np.uint8)
        if nbytes <= _SCRATCH_KEPT:
            setattr(_scratch, name, buffer)
    return buffer[:nbytes].view(dtype)


def thread_scratch(name: str, threads: int, size: int, dtype: np.dtype) -> np.ndarray:
    """``(threads, size)``: one row of scratch per thread of a parallel Numba call, in the
    calling thread's scratch buffer ``name`` (see :func:`_scratch_buffer`)."""
    return _scratch_buffer(name, threads * size, dtype).reshape(threads, size)


