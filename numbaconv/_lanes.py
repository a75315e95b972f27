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

Thread count: ``numba.get_num_threads()``.  Where the lanes are Numba kernels, all the lanes of
a call run as one parallel Numba call (``_lane_kernels.forward_lanes`` and friends; see
:func:`parallel_lane_threads`); otherwise :func:`run_lanes` spreads them over a pool of Python
threads.  BLAS is limited to one thread while a convolution runs (and restored afterwards),
through the thread-count functions of the OpenBLAS that NumPy wheels ship; this also keeps
results independent of the thread count, since OpenBLAS's own results change with its thread
count.  A call of one lane runs in the calling thread.  Where no OpenBLAS controls are found
(NumPy built on another BLAS), the lanes run in the calling thread and each step uses Numba's
and BLAS's own thread pools.
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
# Lanes per call at most: enough for every thread of a 64-core machine to have more than one
# at batch 1 (the weight gradient keeps one partial sum per lane, see ``max_lanes``).
LANES = 128
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


Lane = tuple[int, int, int, int]  # images n0:n1, output rows i0:i1


def lane_bounds(n: int, multiply_adds: int, rows: int = 1, min_rows: int = 0,
                max_lanes: int = LANES) -> list[Lane]:
    """Work items ``[(n0, n1, i0, i1), ...]``: images ``n0:n1``, output rows ``i0:i1`` of each.

    Up to ``LANES`` of them, about ``LANE_WORK`` multiply-adds each or more, their number
    rounded up to a multiple of ``LANE_MULTIPLE``: a function of the problem, not of the
    threads.  Lanes are ranges of whole images while there are enough images; with fewer
    images than lanes (a batch of 1, say), each image is cut into blocks of at least
    ``min_rows`` of its ``rows`` output rows (``min_rows = 0``: never cut), so that every
    thread has work at any batch size.  ``max_lanes`` lowers the ``LANES`` cap.
    """
    if n == 0:
        return []
    if multiply_adds < SMALL_CALL:  # runs in the calling thread: one lane, the fewest calls
        return [(0, n, 0, rows)]
    lanes = max(1, multiply_adds // LANE_WORK)
    # A multiple of LANE_MULTIPLE lanes, so that 2 or 4 threads finish together (9 lanes on
    # 2 threads: one thread idles for a whole lane at the end).
    lanes = min(LANES, max(max_lanes, 1), -(-lanes // LANE_MULTIPLE) * LANE_MULTIPLE)
    blocks = 1 if min_rows < 1 else min(-(-lanes // n), max(rows // min_rows, 1))
    if blocks == 1:
        lanes = min(n, lanes)
        return [(lane * n // lanes, (lane + 1) * n // lanes, 0, rows) for lane in range(lanes)]
    return [(m, m + 1, block * rows // blocks, (block + 1) * rows // blocks)
            for m in range(n) for block in range(blocks)]


def lane_waves(bounds: list[Lane], waves: int = 1) -> list[list[Lane]]:
    """The lanes in the order they run, cut into waves that run one after the other.

    With ``waves = 2`` the lanes that are odd row blocks of an image (``i0 > 0`` and an odd
    block) form a second wave, which starts only once the first has finished: then lanes
    that run together never write the same rows of an input gradient.  Partial sums over
    lanes are added in this order, whoever runs the lanes."""
    return [[bounds[k] for k in wave] for wave in _wave_order(bounds, waves)]


def _wave_order(bounds: list[Lane], waves: int) -> list[list[int]]:
    """:func:`lane_waves` as indices into ``bounds``."""
    if waves == 1:
        return [list(range(len(bounds)))] if bounds else []
    odd = _odd_row_blocks(bounds)
    first = [k for k in range(len(bounds)) if not odd[k]]
    second = [k for k in range(len(bounds)) if odd[k]]
    return [wave for wave in (first, second) if wave]


def in_lane() -> bool:
    """Whether this thread is running a lane of some call (then it must not start parallel
    work: the other threads are busy with the outer lanes)."""
    return getattr(_in_lane, "active", False)


def parallel_lane_threads(bounds: list[Lane]) -> int:
    """The threads that one parallel Numba call of all the lanes ``bounds`` would use, or 0
    where the lanes should run one call per lane through :func:`run_lanes`: a single lane,
    a single thread, a call made inside a lane (the threads are busy with the outer lanes),
    or a BLAS whose thread count cannot be held at one.

    One parallel call hands the lanes to Numba's thread pool in about 2 microseconds; a
    Python thread pool took 85 to 95 (and every lane then holds the GIL for a while)."""
    if len(bounds) < 2 or in_lane():
        return 0
    threads = numba.get_num_threads()
    if threads == 1 or blas_threads() is None:
        return 0
    return threads


def run_lanes(work: Callable[[int, int, int, int, bool], T], bounds: list[Lane],
              waves: int = 1) -> list[T]:
    """``[work(n0, n1, i0, i1, serial) for each lane]``, in lane order, spread over the threads.

    ``serial`` tells ``work`` whether to use serial kernels (each thread has its own lanes)
    or Numba's parallel ones (only where NumPy's BLAS cannot be held at one thread, so the
    lanes run one after the other in the calling thread and each step uses every thread).
    The lanes start in the order of :func:`lane_waves`, wave after wave.
    """
    threads = numba.get_num_threads()
    blas, pool = _setup()
    order = _wave_order(bounds, waves)
    results: list = [None] * len(bounds)
    if blas is None:
        for k in itertools.chain(*order):
            results[k] = work(*bounds[k], False)
        return results
    with blas.single():  # OpenBLAS's results depend on its thread count: always one
        if len(bounds) < 2 or threads == 1 or in_lane():
            # One lane (a small call) runs in the calling thread.  Numba's parallel kernels
            # would not pay here: measured 5-12 % slower than serial ones.  Lanes of a call
            # made inside a lane (the groups of a grouped convolution) run there too: the
            # threads are busy with the outer lanes, which waiting on them would deadlock.
            for k in itertools.chain(*order):
                results[k] = work(*bounds[k], True)
        else:
            for wave in order:
                _run_in_pool(work, bounds, wave, results, threads, pool)
    return results


_in_lane = threading.local()  # .active: this thread is running a lane of some call


def _odd_row_blocks(bounds: list[Lane]) -> list[bool]:
    """For each lane, whether it is an odd-numbered row block of its image (the row blocks
    of an image are consecutive lanes)."""
    odd, block = [], 0
    for k, (n0, _, i0, _) in enumerate(bounds):
        block = block + 1 if k > 0 and i0 > 0 and bounds[k - 1][0] == n0 else 0
        odd.append(block % 2 == 1)
    return odd


def _run_in_pool(work: Callable[..., T], bounds: list[Lane], lanes: list[int], results: list,
                 threads: int, pool: ThreadPoolExecutor) -> None:
    """Run ``lanes`` (indices into ``bounds``) on up to ``threads`` threads, the calling
    thread included, storing each result at its index."""
    if not lanes:
        return
    workers = min(threads, len(lanes))
    next_lane = itertools.count()  # threads take the next free lane: no thread idles early

    def run_worker(_: int) -> None:
        _in_lane.active = True
        try:
            for position in next_lane:
                if position >= len(lanes):
                    return
                lane = lanes[position]
                results[lane] = work(*bounds[lane], True)
        finally:
            _in_lane.active = False

    futures = [pool.submit(run_worker, k) for k in range(1, workers)]
    try:
        run_worker(0)
    finally:
        for future in futures:
            future.result()
