"""``--threads N``: one thread count for numba, the BLAS pools and torch."""

from __future__ import annotations

from collections.abc import Callable

from numbaconv._lanes import blas_threads
from numbaconv.bench.machine import torch_module


def set_threads(n: int) -> Callable[[], None]:
    """Use ``n`` threads in numba, NumPy's OpenBLAS (when it is the BLAS) and torch.

    Returns a function that restores the previous thread counts (``numbaconv bench`` calls
    it on exit, so running ``main`` in-process leaves the caller's settings alone).
    """
    import numba

    if n < 1:
        raise ValueError(f"threads must be a positive integer, got {n}")
    if n > numba.config.NUMBA_NUM_THREADS:
        raise ValueError(f"threads must be at most {numba.config.NUMBA_NUM_THREADS} "
                         f"(numba's NUMBA_NUM_THREADS), got {n}")
    previous_numba = numba.get_num_threads()
    numba.set_num_threads(n)
    blas = blas_threads()
    previous_blas = None if blas is None else blas.get()
    if blas is not None:
        blas.set(n)
    torch = torch_module()
    previous_torch = None if torch is None else torch.get_num_threads()
    if torch is not None:
        torch.set_num_threads(n)

    def restore() -> None:
        numba.set_num_threads(previous_numba)
        if blas is not None and previous_blas is not None:
            blas.set(previous_blas)
        if torch is not None and previous_torch is not None:
            torch.set_num_threads(previous_torch)

    return restore
