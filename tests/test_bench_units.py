"""Unit tests of the benchmark helpers: shapes and FLOP counts, the timer, the gate's
arithmetic (with a fake runner, no timing), the report formatting and the plot."""

from __future__ import annotations

import sys

import pytest

from numbaconv.bench import check, report, shapes, timing
from numbaconv.bench.runner import Task, speedups


def test_spec_shapes_and_flops() -> None:
    s = shapes.SHAPES
    assert list(s) == ["classic", "lenet", "cifar", "resnet56", "downsample", "stem", "pointwise"]
    assert (s["stem"].Ho, s["stem"].Wo) == (112, 112)
    assert (s["downsample"].Ho, s["downsample"].Wo) == (16, 16)
    c = s["classic"]
    assert c.forward_flops() == 2 * 5 * 10 * 3 * 3 * 3 * 10 * 10
    assert c.flops("backward") == 2 * c.forward_flops()
    assert c.flops("im2col") is None
    assert c.cols_shape == (27, 500)


def test_naive_only_on_classic() -> None:
    allowed = [name for name, s in shapes.SHAPES.items() if shapes.naive_allowed(s)]
    assert allowed == ["classic"]


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param("classic,lenet", ["classic", "lenet"], id="two"),
    pytest.param(" cifar , cifar ", ["cifar"], id="dedup-and-strip"),
])
def test_parse_shapes(value: str, expected: list[str]) -> None:
    assert [s.name for s in shapes.parse_shapes(value)] == expected


def test_parse_errors_name_the_value() -> None:
    with pytest.raises(ValueError, match="'big'"):
        shapes.parse_shapes("classic,big")
    with pytest.raises(ValueError, match="'conv'"):
        shapes.parse_ops("conv")
    with pytest.raises(ValueError, match="'half'"):
        shapes.parse_dtypes("half")
    assert shapes.parse_dtypes("both") == ["float32", "float64"]


def test_measure_warms_up_and_respects_repeat() -> None:
    calls = []

    def fn() -> None:
        calls.append(1)
        sum(range(20000))  # ~0.5 ms: no inner loop needed at min_sample_s=1e-4

    t = timing.measure(fn, repeat=4, budget_s=10.0, min_sample_s=1e-4)
    assert t.repeats == 4 and t.number == 1
    # warm-up (first call + settling calls) + samples (the estimate call is the first sample)
    assert len(calls) == 1 + timing.SETTLE_CALLS + 4
    assert t.min_s <= t.median_s <= t.max_s


def test_warm_up_settles_within_its_time() -> None:
    import time

    calls = []

    def slow() -> None:
        calls.append(1)
        time.sleep(0.03)

    first = timing.warm_up(slow, settle_s=0.1)
    assert first >= 0.03
    assert 2 <= len(calls) <= 6  # the first call, then settling calls for about 0.1 s


def test_measure_slow_callable_runs_once_after_warmup() -> None:
    calls = []
    t = timing.measure(lambda: calls.append(1), repeat=7, budget_s=0.0, warmup=False)
    assert len(calls) == 1 and t.repeats == 1 and t.warmup_s == 0.0


def test_measure_rejects_bad_repeat() -> None:
    with pytest.raises(ValueError, match="repeat"):
        timing.measure(lambda: None, repeat=0)


def _results(times: dict[str, float], op: str = "forward") -> list[dict]:
    return [{"shape": "classic", "op": op, "impl": impl, "dtype": "float32",
             "median_s": t, "min_s": t} for impl, t in times.items()]


def test_speedups_are_reference_over_numbaconv() -> None:
    out = speedups(_results({"fancy": 3.0, "numbaconv": 1.5, "torch": 0.75}))
    assert {(s["vs"], s["ratio"]) for s in out} == {("fancy", 2.0), ("torch", 0.5)}


class FakeRunner:
    """Stands in for run_plan: returns preset times, one preset per call."""

    def __init__(self, *rounds: dict[str, float]) -> None:
        self.rounds = list(rounds)
        self.plans: list[list[Task]] = []

    def __call__(self, plan: list[Task], **kwargs: object) -> list[dict]:
        self.plans.append(plan)
        return _results(self.rounds.pop(0))


BASELINE = [{"shape": "classic", "op": "forward", "dtype": "float32", "vs": "fancy",
             "ratio": 4.0}]


@pytest.mark.parametrize(("fancy_time", "code"), [
    pytest.param(3.1, 0, id="within-tolerance"),  # ratio 3.1 >= 4 * 0.75
    pytest.param(3.0, 0, id="at-the-limit"),
    pytest.param(2.9, 1, id="below-the-limit"),
])
def test_gate_threshold(fancy_time: float, code: int) -> None:
    runner = FakeRunner(*[{"fancy": fancy_time, "numbaconv": 1.0}] * 3)
    comps, skipped, _ = check.run_check(BASELINE, tolerance=0.25, runner=runner,
                                        progress=False, torch=False)
    assert check.summarize(comps, skipped, 0.25)[0] == code


def test_gate_retries_and_keeps_the_best_attempt() -> None:
    runner = FakeRunner({"fancy": 1.0, "numbaconv": 1.0}, {"fancy": 3.5, "numbaconv": 1.0})
    comps, skipped, _ = check.run_check(BASELINE, runner=runner, progress=False, torch=False)
    assert len(runner.plans) == 2  # one retry, then it passed
    assert comps[0].new == 3.5 and comps[0].attempts == 2
    assert check.summarize(comps, skipped, 0.25)[0] == 0


def test_gate_names_the_regression() -> None:
    runner = FakeRunner(*[{"fancy": 1.0, "numbaconv": 1.0}] * 3)
    comps, skipped, _ = check.run_check(BASELINE, runner=runner, progress=False, torch=False)
    code, message = check.summarize(comps, skipped, 0.25)
    assert code == 1
    assert "forward|classic|float32 vs fancy: 1x now, 4x in baseline (-75%)" in message


def test_gate_skips_torch_when_absent() -> None:
    entries = [*BASELINE, {**BASELINE[0], "vs": "torch", "ratio": 1.0}]
    runner = FakeRunner({"fancy": 4.0, "numbaconv": 1.0})
    comps, skipped, _ = check.run_check(entries, runner=runner, progress=False, torch=False)
    assert [c.vs for c in comps] == ["fancy"] and [e["vs"] for e in skipped] == ["torch"]
    code, message = check.summarize(comps, skipped, 0.25)
    assert code == 0 and "skipped forward|classic|float32 vs torch" in message


@pytest.mark.parametrize(("seconds", "text"), [
    pytest.param(12.34e-6, "12.3 us", id="us"),
    pytest.param(4.567e-3, "4.57 ms", id="ms"),
    pytest.param(1.234, "1.23 s", id="s"),
    pytest.param(None, "-", id="missing"),
])
def test_format_time(seconds: float | None, text: str) -> None:
    assert report.format_time(seconds) == text


def test_plot_without_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    from numbaconv.bench.plot import plot_speedups

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(RuntimeError, match="needs matplotlib"):
        plot_speedups({"speedups": []}, "x.png")


def test_measure_interleaved_alternates_and_pairs() -> None:
    order: list[str] = []

    def make(name: str):
        def fn() -> None:
            order.append(name)
            sum(range(20000))
        return fn

    timings, samples = timing.measure_interleaved(
        {"a": make("a"), "b": make("b")}, repeat=3, budget_s=10.0, min_sample_s=1e-4,
        warmup={"a": True, "b": False})
    warm = ["a"] * (1 + timing.SETTLE_CALLS)
    # warm-up, estimates, then rounds in rotated order, each sample after an untimed call
    assert order == [*warm, "a", "b", "a", "a", "b", "b", "b", "b", "a", "a", "a", "a", "b", "b"]
    assert len(samples["a"]) == len(samples["b"]) == 3
    assert timings["b"].warmup_s == 0.0 and timings["a"].repeats == 3


def test_measure_interleaved_waits_for_idle_threads_unless_told(monkeypatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(timing, "wait_for_idle_threads", lambda: waits.append(1.0) or 0.0)
    fns = {"a": lambda: None, "b": lambda: None}
    timing.measure_interleaved(fns, repeat=2, budget_s=10.0, min_sample_s=1e-6)
    assert len(waits) == 4  # before each of 2 rounds x 2 callables
    waits.clear()
    timing.measure_interleaved(fns, repeat=2, budget_s=10.0, min_sample_s=1e-6, idle_wait=False)
    assert waits == []


def test_replace_section_keeps_the_rest(tmp_path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n<!-- bench-table:start -->\nold\n<!-- bench-table:end -->\n\nEnd\n")
    report.replace_section(page, "table", "new table")
    assert page.read_text() == ("# Title\n\n<!-- bench-table:start -->\nnew table\n"
                                "<!-- bench-table:end -->\n\nEnd\n")
    fresh = report.replace_section(tmp_path / "fresh.md", "table", "t")
    assert fresh.read_text() == "<!-- bench-table:start -->\nt\n<!-- bench-table:end -->\n"


def test_threads_are_restored() -> None:
    import numba

    from numbaconv.bench.threads import set_threads

    before = numba.get_num_threads()
    restore = set_threads(1)
    assert numba.get_num_threads() == 1
    restore()
    assert numba.get_num_threads() == before
    with pytest.raises(ValueError, match="at most"):
        set_threads(10_000)


def test_merge_runs_keeps_the_least_favourable_paired_ratio() -> None:
    from numbaconv.bench.runner import merge_runs

    def rec(impl: str, median: float, paired: float | None = None) -> dict:
        r = {"shape": "classic", "op": "forward", "impl": impl, "dtype": "float32",
             "median_s": median, "min_s": median, "max_s": median, "repeats": 3}
        if paired is not None:
            r["paired_ratio"] = paired
        return r

    runs = [[rec("numbaconv", 1.0), rec("fancy", 3.0, 3.0)],
            [rec("numbaconv", 2.0), rec("fancy", 4.0, 2.0)],
            [rec("numbaconv", 3.0), rec("fancy", 5.0, 2.5)]]
    merged = {r["impl"]: r for r in merge_runs(runs)}
    assert merged["numbaconv"]["median_s"] == 2.0 and merged["numbaconv"]["min_s"] == 1.0
    assert merged["fancy"]["paired_ratio"] == 2.0 and merged["fancy"]["runs"] == 3
    assert merged["fancy"]["repeats"] == 9


def test_wait_for_idle_threads_waits_out_a_spinning_thread() -> None:
    import threading
    import time

    stop = time.perf_counter() + 0.15

    def spin() -> None:
        while time.perf_counter() < stop:
            pass

    spinner = threading.Thread(target=spin)
    spinner.start()
    waited = timing.wait_for_idle_threads(max_wait_s=1.0)
    spinner.join()
    assert 0.1 <= waited < 1.0
    assert timing.wait_for_idle_threads(max_wait_s=1.0) < 0.5  # nothing spins now


def test_profile_reports_the_fastest_run_and_the_median_share(monkeypatch) -> None:
    import time

    from numbaconv._stages import Stage as _Stage
    from numbaconv.bench import profile
    from numbaconv.bench.impls import Problem

    naps = iter([0.0, 0.03, 0.01, 0.02])  # warm-up, then three timed runs

    def fake_callable(problem, op, impl):
        def run() -> None:
            with _Stage("gemm"):
                time.sleep(0.005)
            time.sleep(next(naps))
        return run

    monkeypatch.setattr(profile, "make_callable", fake_callable)
    times = profile.stage_times(Problem(shapes.SHAPES["classic"], "float32"), repeat=3)
    assert 0.015 <= times["wall"] < 0.025  # the 10 ms nap, not the median or the mean
    assert times["gemm"] < times["wall"] * times["threads"]
    assert 0.0 < profile.outside_gemm_share(times) < times["outside_median"] < 1.0


@pytest.mark.parametrize(("args", "text"), [
    pytest.param((12.3e-3, 11.9e-3, 13.8e-3), "12.30 ms (11.90-13.80)", id="ms"),
    pytest.param((5e-6, 4.5e-6, 9e-6), "5.0 us (4.5-9.0)", id="us"),
    pytest.param((1.5, 1.5, 1.5), "1.50 s", id="no-spread"),
    pytest.param((None, None, None), "-", id="missing"),
])
def test_format_spread(args: tuple, text: str) -> None:
    assert report.format_spread(*args) == text


def test_format_ratio_spread() -> None:
    assert report.format_ratio_spread(2.31, 2.2, 2.5) == "2.31x (2.20-2.50)"
    assert report.format_ratio_spread(31.0, 28.0, 35.0) == "31.0x (28.0-35.0)"
    assert report.format_ratio_spread(1.0) == "1.00x"


def test_table_shows_sample_and_ratio_ranges() -> None:
    results = [{"shape": "classic", "op": "forward", "impl": "numbaconv", "dtype": "float32",
                "median_s": 1e-3, "min_s": 0.9e-3, "max_s": 1.2e-3},
               {"shape": "classic", "op": "forward", "impl": "fancy", "dtype": "float32",
                "median_s": 3e-3, "min_s": 2.9e-3, "max_s": 3.5e-3, "paired_ratio": 3.0,
                "paired_min": 2.5, "paired_max": 3.4}]
    text = report.text_table({"results": results, "speedups": speedups(results)})
    assert "1.00 ms (0.90-1.20)" in text and "3.00x (2.50-3.40)" in text
    assert "classic: N=5 C=3 10x10 K=10 3x3 S=1 P=1" in text  # the shape legend


def test_measure_interleaved_min_rounds_pairs_slow_callables() -> None:
    calls: list[str] = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    timings, samples = timing.measure_interleaved(fns, repeat=5, budget_s=0.0, min_rounds=3,
                                                  warmup={"a": False, "b": False})
    assert len(samples["a"]) == len(samples["b"]) == 3  # nobody sits out
    timings, samples = timing.measure_interleaved(fns, repeat=2, budget_s=0.0, min_rounds=3,
                                                  warmup={"a": False, "b": False})
    assert len(samples["a"]) == 2  # never more than repeat
    with pytest.raises(ValueError, match="min_rounds"):
        timing.measure_interleaved(fns, min_rounds=0)
