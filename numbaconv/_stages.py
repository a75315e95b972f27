"""Seconds per stage of the convolutions (im2col, products, col2im, bias), for profiling.

``profile_stages()`` turns the accounting on for a block; the NumPy lanes and the filter
lanes time their steps with ``with Stage(name):``, the Numba lanes time theirs inside the
kernel (``_lane_kernels``) and hand the sums over with :func:`add_lane_seconds`.  Outside a
``profile_stages()`` block nothing is timed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

# Seconds per stage while a ``profile_stages()`` block is active, else None.
_stage_seconds: dict[str, float] | None = None
_stage_lock = threading.Lock()


def profiling() -> bool:
    """Whether a ``profile_stages()`` block is active."""
    return _stage_seconds is not None


class Stage:
    """Adds the time spent inside ``with Stage(name):`` to the stage ``name`` when profiling,
    times ``threads`` for a block in which that many threads work (a parallel call)."""

    __slots__ = ("name", "start", "threads")

    def __init__(self, name: str, threads: int = 1) -> None:
        self.name, self.threads = name, threads
        self.start = 0.0

    def __enter__(self) -> None:
        if _stage_seconds is not None:
            self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        if _stage_seconds is not None:
            elapsed = (time.perf_counter() - self.start) * self.threads
            with _stage_lock:
                _stage_seconds[self.name] = _stage_seconds.get(self.name, 0.0) + elapsed


def add_lane_seconds(seconds: np.ndarray) -> None:
    """Add a Numba lane's stage times (im2col, gemm, col2im, bias; see ``_lane_kernels``)."""
    if _stage_seconds is not None:
        with _stage_lock:
            for name, value in zip(("im2col", "gemm", "col2im", "bias"), seconds, strict=True):
                _stage_seconds[name] = _stage_seconds.get(name, 0.0) + float(value)


@contextmanager
def profile_stages() -> Iterator[dict[str, float]]:
    """Collect the seconds spent in each stage of the forward and backward passes.

    Yields a dict that fills in with ``im2col``, ``gemm`` (matrix products, including the
    accumulation of ``dw`` and, through the row of ones, the bias and ``db``), ``col2im`` and
    ``bias`` (bias addition and ``db`` where they are not in the products: pointwise
    convolutions) while the block runs.  Times are summed over the threads that work on a
    call, so compare them as shares of their sum; whatever else a call spends (validation,
    allocation) is not in any stage.
    """
    global _stage_seconds
    previous, _stage_seconds = _stage_seconds, {}
    try:
        yield _stage_seconds
    finally:
        _stage_seconds = previous
