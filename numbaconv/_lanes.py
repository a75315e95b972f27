"""Spread a convolution's images over threads, each running single-threaded BLAS.

A convolution is a sequence of small steps per tile of images: im2col, a matrix product,
col2im.  Running each step with all threads (Numba's pool for the kernels, BLAS's pool for the
products) makes every thread meet at a barrier several times per tile; on a machine with few,
shared cores one descheduled thread then stalls all the others.  Measured on the 2-core
development machine under load, that was 1.5x to 10x slower than giving each thread whole
images to do from start to end, with serial kernels and single-threaded BLAS.

The images are cut into a fixed number of *lanes* (contiguous ranges of images) that depends
only on the batch size, never on the thread count, and every lane is computed the same way by
whichever thread runs it.  Reductions over images (the weight gradient) add the per-lane
partial sums in lane order.  So results are bitwise identical for any number of threads.

Thread count: ``numba.get_num_threads()``.  BLAS is limited to one thread while a convolution
runs (and restored afterwards), through the thread-count functions of the OpenBLAS that NumPy
wheels ship; this also keeps results independent of the thread count, since OpenBLAS's own
results change with its thread count.  A call of one lane runs in the calling thread.  Where no
OpenBLAS
controls are found (NumPy built on another BLAS), the lanes run in the calling thread and each
step uses Numba's and BLAS's own thread pools.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import numba

from numbaconv._blas import openblas_paths

SMALL_CALL = 1 << 24  # multiply-adds below which a call runs in the calling thread only
LANES = 32  # lanes per call at most; the weight gradient keeps one partial sum per lane
LANE_WORK = 1 << 23  # multiply-adds per lane at least: smaller lanes cost more than they balance
LANE_MULTIPLE = 4  # lane counts are rounded up to a multiple of this (where there are images)

T = TypeVar("T")


class _BlasThreads:
    """Get and set the thread count of NumPy's bundled OpenBLAS, shared by nested callers."""

    def __init__(self, get: Callable[[], int], set_: Callable[[int], None]) -> None:
        self._get, self._set = get, set_
        self._lock = threading.Lock()
        self._depth = 0
        self._saved = 1

    def get(self) -> int:
        return int(self._get())

    def set(self, threads: int) -> None:
        self._set(threads)

    @contextmanager
    def single(self):
        with self._lock:
            if self._depth == 0:
                self._saved = self._get()
                self._set(1)
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    self._set(self._saved)


def _find_blas_threads() -> _BlasThreads | None:
    paths = openblas_paths()
    names = (("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
             ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
             ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
             ("openblas_get_num_threads", "openblas_set_num_threads"))
    for path in paths:
        try:
            lib = ctypes.CDLL(path)  # already loaded by NumPy: this returns the same library
        except OSError:
            continue
        for get_name, set_name in names:
            if hasattr(lib, get_name) and hasattr(lib, set_name):
                get, set_ = getattr(lib, get_name), getattr(lib, set_name)
                get.restype, get.argtypes = ctypes.c_int, []
                set_.restype, set_.argtypes = None, [ctypes.c_int]
                return _BlasThreads(get, set_)
    return None


_blas: _BlasThreads | None = None
_blas_searched = False
_pool: ThreadPoolExecutor | None = None
_setup_lock = threading.Lock()


def _setup() -> tuple[_BlasThreads | None, ThreadPoolExecutor]:
    global _blas, _blas_searched, _pool
    with _setup_lock:
        if not _blas_searched:
            _blas, _blas_searched = _find_blas_threads(), True
        if _pool is None:
            _pool = ThreadPoolExecutor(max(numba.config.NUMBA_NUM_THREADS - 1, 1),
                                       thread_name_prefix="numbaconv")
    return _blas, _pool


def blas_threads() -> _BlasThreads | None:
    """The thread-count control of NumPy's bundled OpenBLAS, or None for other BLAS builds."""
    return _setup()[0]


def single_threaded_blas() -> contextlib.AbstractContextManager:
    """Hold NumPy's OpenBLAS at one thread inside the block (no-op for other BLAS builds)."""
    blas = blas_threads()
    return contextlib.nullcontext() if blas is None else blas.single()


def lane_bounds(n: int, multiply_adds: int) -> list[tuple[int, int]]:
    """Contiguous image ranges ``[(n0, n1), ...]``: up to ``LANES`` of them, about ``LANE_WORK``
    multiply-adds each or more, their number rounded up to a multiple of ``LANE_MULTIPLE``
    while there are images for it (a function of the problem, not of the threads)."""
    if n == 0:
        return []
    if multiply_adds < SMALL_CALL:  # runs in the calling thread: one lane, the fewest calls
        return [(0, n)]
    lanes = max(1, multiply_adds // LANE_WORK)
    # A multiple of LANE_MULTIPLE lanes, so that 2 or 4 threads finish together (9 lanes on
    # 2 threads: one thread idles for a whole lane at the end).
    lanes = min(n, LANES, -(-lanes // LANE_MULTIPLE) * LANE_MULTIPLE)
    return [(lane * n // lanes, (lane + 1) * n // lanes) for lane in range(lanes)]


def run_lanes(work: Callable[[int, int, bool], T], n: int, multiply_adds: int) -> list[T]:
    """``[work(n0, n1, serial) for each lane]``, in lane order, spread over the threads.

    ``serial`` tells ``work`` whether to use serial kernels (each thread has its own lanes)
    or Numba's parallel ones (only where NumPy's BLAS cannot be held at one thread, so the
    lanes run one after the other in the calling thread and each step uses every thread).
    Calls of fewer than ``SMALL_CALL`` multiply-adds are one lane: handing them to other
    threads would cost more than it saves.
    """
    bounds = lane_bounds(n, multiply_adds)
    threads = numba.get_num_threads()
    blas, pool = _setup()
    if blas is None:
        return [work(n0, n1, False) for n0, n1 in bounds]
    if len(bounds) < 2 or threads == 1:
        # One lane (a small call, or a single image) runs in the calling thread.  Numba's
        # parallel kernels would not pay here: measured 5-12 % slower than serial ones.
        # BLAS stays single-threaded even so: OpenBLAS's results depend on its thread count.
        with blas.single():
            return [work(n0, n1, True) for n0, n1 in bounds]
    workers = min(threads, len(bounds))
    results: list = [None] * len(bounds)
    next_lane = itertools.count()  # threads take the next free lane: no thread idles early

    def run_worker(_: int) -> None:
        for lane in next_lane:
            if lane >= len(bounds):
                return
            results[lane] = work(*bounds[lane], True)

    with blas.single():
        futures = [pool.submit(run_worker, k) for k in range(1, workers)]
        try:
            run_worker(0)
        finally:
            for future in futures:
                future.result()
    return results
