"""The benchmark timer: warm-up first, then the median of several ``perf_counter`` samples."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass
class Timing:
    """Result of :func:`measure`; all times are seconds per call."""

    median_s: float
    min_s: float
    max_s: float
    repeats: int
    number: int
    warmup_s: float

    def to_dict(self) -> dict:
        return asdict(self)


def measure(fn: Callable[[], object], *, repeat: int = 7, budget_s: float = 1.0,
            min_sample_s: float = 2e-3, max_number: int = 1000, warmup: bool = True) -> Timing:
    """Time ``fn()`` robustly.

    The first calls are a warm-up and never timed as a sample (:func:`warm_up`: they pay JIT
    compilation, page faults and cache misses). A second, timed call estimates the cost;
    fast callables are then looped ``number`` times per sample so one sample lasts at least
    ``min_sample_s``, and the number of samples is adaptive: up to ``repeat``, but no more
    than fit in ``budget_s`` (at least one). A callable slower than ``budget_s`` is reported
    from the estimate call alone.

    Parameters
    ----------
    fn : callable
        Zero-argument callable; its result is discarded.
    repeat : int
        Maximum number of samples.
    budget_s : float
        Approximate time allowed for the samples (not counting the warm-up).
    min_sample_s : float
        Minimum duration of one sample for fast callables.
    max_number : int
        Upper bound on the calls per sample.
    warmup : bool
        Make untimed warm-up calls first (default). Only pure-Python callables with
        nothing to compile or cache (the naive references) may skip them.

    Returns
    -------
    Timing
        Median, minimum and maximum seconds per call, the number of samples and of calls
        per sample, and the warm-up duration.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be a positive integer, got {repeat}")
    clock = time.perf_counter
    warmup_s = warm_up(fn, settle_s=min(0.5, budget_s / 2)) if warmup else 0.0

    t0 = clock()
    fn()
    estimate = clock() - t0
    samples = [estimate]
    if estimate >= budget_s:
        return Timing(estimate, estimate, estimate, 1, 1, warmup_s)

    number = 1
    if estimate < min_sample_s:
        number = min(max_number, max(1, int(min_sample_s / max(estimate, 1e-9)) + 1))
    per_sample = estimate * number
    n_samples = max(1, min(repeat, int(budget_s / max(per_sample, 1e-9))))
    if number > 1:
        samples = []  # the estimate is too short to be a fair sample of a looped timing
    else:
        n_samples = max(0, n_samples - 1)
    for _ in range(n_samples):
        t0 = clock()
        for _ in range(number):
            fn()
        samples.append((clock() - t0) / number)
    return Timing(statistics.median(samples), min(samples), max(samples), len(samples),
                  number, warmup_s)


SETTLE_CALLS = 10  # untimed calls after the first, at most, within ``settle_s``


def warm_up(fn: Callable[[], object], settle_s: float) -> float:
    """Call ``fn`` untimed until it runs as in a loop; return the duration of the first call.

    The first call pays JIT compilation.  The next few may still be slow: a call that allocates
    large arrays page-faults memory the process has not used before, and on the development
    VM the drop-in im2col of ``downsample`` (float64, a 38 MB result) took 55 ms for its first
    six calls and 6 ms from then on.  So after the first call, ``fn`` runs again up to
    :data:`SETTLE_CALLS` times or until ``settle_s`` seconds have passed.
    """
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    stop = time.perf_counter() + settle_s
    for _ in range(SETTLE_CALLS):
        if time.perf_counter() >= stop:
            break
        fn()
    return first


def wait_for_idle_threads(max_wait_s: float = 0.5, window_s: float = 0.01,
                          busy_share: float = 0.2) -> float:
    """Sleep until no other thread of this process is using the CPU; return the seconds waited.

    After a multi-threaded product, NumPy's OpenBLAS keeps its worker threads spinning for about
    0.1 s of CPU time (measured on the development machine), and OpenMP runtimes spin for a
    while too.  Whatever runs next on a machine with few cores then shares them with the
    spinners, so in an interleaved measurement one implementation's leftover threads would slow
    down the next one's sample.  This waits (at most ``max_wait_s``) until a ``window_s`` sleep
    costs this process less than ``busy_share`` of one core.
    """
    start = time.perf_counter()
    while time.perf_counter() - start < max_wait_s:
        cpu, wall = time.process_time(), time.perf_counter()
        time.sleep(window_s)
        if time.process_time() - cpu < busy_share * (time.perf_counter() - wall):
            break
    return time.perf_counter() - start


def measure_interleaved(fns: dict[str, Callable[[], object]], *, repeat: int = 7,
                        budget_s: float = 1.0, min_sample_s: float = 2e-3,
                        max_number: int = 1000, warmup: dict[str, bool] | None = None,
                        idle_wait: bool = True, min_rounds: int = 1,
                        precall_max_s: float | None = None,
                        ) -> tuple[dict[str, Timing], dict[str, list[float]]]:
    """Time several callables doing the same work, alternating their samples.

    Round r times every callable once (in an order rotated by r), so a change in machine
    load during the measurement hits all of them alike, and the ratio of two callables'
    samples from the same round is far steadier than the ratio of separately measured
    medians. Before each sample, :func:`wait_for_idle_threads` lets the threads that the
    previous callable left spinning go to sleep, and the callable then runs once untimed: on
    the development VM the first call after any idle moment ran up to 1 ms slower while the
    virtual CPUs woke up (the drop-in im2col of ``pointwise``: 0.9 ms back to back, 1.9 ms
    right after the wait), a cost that a loop never pays.  Without ``idle_wait`` (callables
    that leave no thread spinning) the samples run back to back. Each callable gets an
    untimed warm-up (:func:`warm_up`, unless ``warmup[name]`` is False), one estimate call,
    and a loop count ``number`` making one sample last ``min_sample_s``. The number of rounds
    is at most ``repeat`` and fits ``budget_s`` per callable. A callable whose estimate alone
    exceeds ``budget_s`` keeps that single sample and sits out the rounds, unless
    ``min_rounds`` > 1: then there are at least ``min(min_rounds, repeat)`` rounds, whatever
    the budget, and every callable takes part in each, so slow callables are paired too.
    ``precall_max_s`` limits the untimed call before a sample to samples shorter than that
    (the wake-up it absorbs costs about 1 ms, nothing beside a sample of a second).

    Returns
    -------
    timings : dict
        A :class:`Timing` per name.
    samples : dict
        Per name, the seconds per call of every round (empty for a callable that sat out).
    """
    if repeat < 1:
        raise ValueError(f"repeat must be a positive integer, got {repeat}")
    clock = time.perf_counter
    warmup = warmup or {}
    warm: dict[str, float] = {}
    est: dict[str, float] = {}
    for name, fn in fns.items():
        warm[name] = 0.0
        if warmup.get(name, True):
            warm[name] = warm_up(fn, settle_s=min(0.5, budget_s / 2))
        t0 = clock()
        fn()
        est[name] = clock() - t0
    if min_rounds < 1:
        raise ValueError(f"min_rounds must be a positive integer, got {min_rounds}")
    slow = {n for n, e in est.items() if e >= budget_s} if min_rounds == 1 else set()
    number = {n: 1 if est[n] >= min_sample_s
              else min(max_number, int(min_sample_s / max(est[n], 1e-9)) + 1)
              for n in fns if n not in slow}
    round_s = sum(est[n] * number[n] for n in number)
    rounds = max(min(min_rounds, repeat),
                 min(repeat, int(budget_s * max(len(number), 1) / max(round_s, 1e-9))))
    samples: dict[str, list[float]] = {n: [] for n in fns}
    names = list(number)
    for r in range(rounds if names else 0):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            fn, loops = fns[name], number[name]
            if idle_wait and len(names) > 1:
                wait_for_idle_threads()
                if precall_max_s is None or est[name] * loops < precall_max_s:
                    fn()  # untimed: the first call after the wait pays for waking the CPUs
            t0 = clock()
            for _ in range(loops):
                fn()
            samples[name].append((clock() - t0) / loops)
    timings = {}
    for name in fns:
        got = samples[name] or [est[name]]
        timings[name] = Timing(statistics.median(got), min(got), max(got), len(got),
                               number.get(name, 1), warm[name])
    return timings, samples


def paired_ratios(timings: dict[str, Timing], samples: dict[str, list[float]], ours: str,
                  references: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Per reference: ``ours / reference`` as the median (and range) of the per-round ratios.

    Where the two were not timed in the same rounds (a callable that sat out), the ratio of
    the medians alone.
    """
    mine = samples.get(ours) or []
    ratios: dict[str, dict[str, float]] = {}
    for ref in references:
        theirs = samples.get(ref) or []
        if mine and len(theirs) == len(mine):
            pairs = [a / b for a, b in zip(mine, theirs, strict=True)]
            ratios[ref] = {"median": statistics.median(pairs), "min": min(pairs),
                           "max": max(pairs), "rounds": len(pairs)}
        elif ours in timings and ref in timings:
            ratios[ref] = {"median": timings[ours].median_s / timings[ref].median_s}
    return ratios
