"""End-to-end tests of ``numbaconv bench``: JSON schema, plot, Markdown, the regression gate
(fails on a doctored baseline, passes on a fresh one) and argument validation.

Timings run on the tiny ``classic`` shape with one thread and few repeats; no assertion is
about how fast anything is, and the gate runs with a generous tolerance so it is not flaky.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from numbaconv.bench.cli import main
from numbaconv.bench.shapes import IMPLS

FAST = ["--threads", "1", "--repeat", "2", "--budget", "0.02", "--gemm-size", "64",
        "--no-progress"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny run writing JSON, PNG and Markdown, shared by the tests below."""
    pytest.importorskip("matplotlib")
    d = tmp_path_factory.mktemp("bench")
    paths = {"json": d / "run.json", "plot": d / "speedups.png", "markdown": d / "table.md"}
    code = main(["--shapes", "classic", "--ops", "im2col,forward+backward", *FAST,
                 "--json", str(paths["json"]), "--plot", str(paths["plot"]),
                 "--markdown", str(paths["markdown"])])
    assert code == 0
    return paths


def test_json_schema(run: dict[str, Path]) -> None:
    data = json.loads(run["json"].read_text())
    assert {"machine", "results", "speedups"} <= data.keys()
    machine = data["machine"]
    assert {"cpu", "cores", "threads", "versions", "gemm_gflops"} <= machine.keys()
    assert {"python", "numpy", "numba", "numbaconv", "torch"} <= machine["versions"].keys()
    assert machine["threads"]["numba"] == 1
    assert machine["gemm_gflops"]["float32"] > 0

    results = data["results"]
    assert results, "no results"
    for r in results:
        assert {"shape", "op", "impl", "dtype", "median_s"} <= r.keys()
        assert r["impl"] in IMPLS and r["shape"] == "classic" and r["dtype"] == "float32"
        assert r["median_s"] > 0
    impls = {(r["op"], r["impl"]) for r in results}
    assert ("im2col", "naive") not in impls  # naive exists only for the conv ops
    assert ("forward+backward", "naive") in impls  # classic is cheap enough for naive
    assert ("im2col", "numbaconv") in impls and ("im2col", "fancy") in impls

    times = {(r["op"], r["impl"]): r["median_s"] for r in results}
    assert data["speedups"]
    for s in data["speedups"]:
        assert {"shape", "op", "dtype", "vs", "ratio"} <= s.keys()
        assert s["vs"] in IMPLS and s["vs"] != "numbaconv"
        expected = times[(s["op"], s["vs"])] / times[(s["op"], "numbaconv")]
        assert s["ratio"] == pytest.approx(expected)


def test_plot_is_a_png(run: dict[str, Path]) -> None:
    assert run["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_markdown_table(run: dict[str, Path]) -> None:
    text = run["markdown"].read_text()
    assert "| shape | op | dtype |" in text
    assert "| classic | forward+backward | float32 |" in text
    assert "numbaconv bench" in text  # the command to reproduce


def test_gate_passes_on_fresh_baseline(run: dict[str, Path],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--check", str(run["json"]), "--tolerance", "0.9", *FAST])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("OK") or "\nOK" in out


def test_gate_fails_on_doctored_baseline(run: dict[str, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(run["json"].read_text())
    for s in data["speedups"]:
        for key in [k for k in s if k.startswith("ratio")]:  # ratio, ratio_min, ratio_paired
            s[key] *= 100
    doctored = tmp_path / "doctored.json"
    doctored.write_text(json.dumps(data))
    code = main(["--check", str(doctored), *FAST])
    out = capsys.readouterr().out
    assert code == 1
    assert "REGRESSION" in out
    for s in data["speedups"]:  # every shape/op/dtype/vs is named
        assert f"{s['op']}|{s['shape']}|{s['dtype']} vs {s['vs']}:" in out


@pytest.mark.parametrize(("argv", "message"), [
    pytest.param(["--shapes", "nope"], "unknown shape", id="unknown-shape"),
    pytest.param(["--dtype", "float16"], "float32, float64, both", id="bad-dtype"),
    pytest.param(["--ops", "conv3d"], "unknown op", id="unknown-op"),
    pytest.param(["--impls", "cudnn"], "unknown implementation", id="unknown-impl"),
    pytest.param(["--threads", "0"], "positive integer", id="zero-threads"),
    pytest.param(["--repeat", "x"], "positive integer", id="repeat-not-int"),
    pytest.param(["--check", "b.json", "--tolerance", "1.5"], "[0, 1)", id="tolerance-range"),
    pytest.param(["--check", "b.json", "--profile"], "cannot be combined", id="two-modes"),
    pytest.param(["--memory", "--scaling"], "--memory and --scaling cannot be combined",
                 id="memory-and-scaling"),
    pytest.param(["--check", "b.json", "--quick"], "from the baseline", id="check-with-quick"),
    pytest.param(["--check", "missing.json"], "cannot read baseline", id="missing-baseline"),
    pytest.param(["--frobnicate"], "unrecognized arguments", id="unknown-flag"),
])
def test_argument_validation(argv: list[str], message: str, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(("content", "message"), [
    pytest.param("{not json", "not valid JSON", id="not-json"),
    pytest.param('{"results": []}', "no 'speedups' list", id="no-speedups"),
    pytest.param('{"speedups": [{"shape": "classic"}]}', "needs keys", id="missing-keys"),
    pytest.param('{"speedups": [{"shape": "huge", "op": "forward", "dtype": "float32", '
                 '"vs": "fancy", "ratio": 2}]}', "unknown shape", id="unknown-shape"),
    pytest.param('{"speedups": [{"shape": "classic", "op": "forward", "dtype": "float32", '
                 '"vs": "fancy", "ratio": -1}]}', "positive ratio", id="negative-ratio"),
])
def test_bad_baseline(content: str, message: str, tmp_path: Path,
                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(content)
    assert main(["--check", str(path), "--no-progress"]) == 2
    assert message in capsys.readouterr().err


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "--check BASELINE.json" in capsys.readouterr().out


def test_dispatch_from_top_level_cli(capsys: pytest.CaptureFixture[str]) -> None:
    from numbaconv.cli import main as top

    assert top(["bench", "--help"]) == 0
    assert "numbaconv bench" in capsys.readouterr().out


def test_profile_view(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--profile", "--shapes", "classic", *FAST]) == 0
    out = capsys.readouterr().out
    for stage in ("gemm", "im2col", "col2im", "bias", "other"):
        assert f"  {stage} " in out
    assert "outside the matrix products:" in out
    assert "outside GEMM" in out  # the summary table


def test_memory_view(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "memory.json"
    assert main(["--memory", "--shapes", "classic", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "peak memory added by one forward+backward, classic float32" in out
    records = json.loads(out_json.read_text())["memory"]
    assert [r["layer"] for r in records] == ["FancyConv", "numbaconv.Conv",
                                             "numbaconv.Conv(workspace=64 MiB)"]
    for r in records:
        assert r["added_bytes"] >= 0
        assert r["peak_bytes"] > 0


def test_scaling_view(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "scaling.json"
    assert main(["--scaling", "--shapes", "classic", *FAST, "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "forward+backward per image, classic" in out
    assert "per image, N=8 / N=256:" in out
    records = json.loads(out_json.read_text())["scaling"]
    assert [r["N"] for r in records] == [1, 8, 32, 64, 128, 256]
    for r in records:
        assert r["median_s"] > 0
        assert r["per_image_s"] == pytest.approx(r["median_s"] / r["N"])


def test_plot_without_matplotlib_fails_before_running(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    assert main(["--plot", "x.png", "--shapes", "classic"]) == 2
    assert "--plot needs matplotlib" in capsys.readouterr().err
