"""``--threads N``: one thread count for numba, the BLAS pools and torch."""

from __future__ import annotations

from collections.abc import Callable

from numbaconv.bench.machine import torch_module


def set_threads(n: int) -> Callable[[], None]:
    """Use ``n`` threads in numba, BLAS (through threadpoolctl, if installed) and torch.

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
    limiter = None
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        pass
    else:
        limiter = threadpool_limits(limits=n, user_api="blas")
    torch = torch_module()
    previous_torch = None if torch is None else torch.get_num_threads()
    if torch is not None:
        torch.set_num_threads(n)

    def restore() -> None:
        numba.set_num_threads(previous_numba)
        if limiter is not None:
            limiter.restore_original_limits()
        if torch is not None and previous_torch is not None:
            torch.set_num_threads(previous_torch)

    return restore
