"""``numbaconv train``: short runs, JSON / plot output, reproducibility, CLI, docs example."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from numbaconv import cli
from numbaconv.train import main

pytest.importorskip("sklearn")

DOCS = Path(__file__).resolve().parents[1] / "docs" / "training.md"
FAST = ["--no-progress", "--batch-size", "64"]


def test_short_run_writes_json_and_plot(tmp_path, capsys):
    out_json, out_png = tmp_path / "r" / "train.json", tmp_path / "curves.png"
    code = main(["--epochs", "2", "--json", str(out_json), "--plot", str(out_png), *FAST])
    assert code == 0
    result = json.loads(out_json.read_text())
    for key in ("test_accuracy", "train_seconds", "epochs", "history", "config",
                "fancy_epoch_seconds", "numbaconv_epoch_seconds", "epoch_speedup",
                "compile_seconds"):
        assert key in result
    assert result["epochs"] == 2 and len(result["history"]) == 2
    for i, h in enumerate(result["history"], start=1):
        assert set(h) >= {"epoch", "loss", "train_accuracy", "test_accuracy", "seconds"}
        assert h["epoch"] == i and 0 <= h["test_accuracy"] <= 1 and h["seconds"] > 0
    assert result["history"][1]["loss"] < result["history"][0]["loss"]
    assert result["config"]["batch_size"] == 64 and result["config"]["seed"] == 0
    assert result["epoch_speedup"] == pytest.approx(
        result["fancy_epoch_seconds"] / result["numbaconv_epoch_seconds"])
    # The FancyConv replay starts from the same weights and batches: same epoch-1 loss.
    assert result["fancy_first_epoch_loss"] == pytest.approx(result["history"][0]["loss"],
                                                             rel=1e-5)
    assert out_png.stat().st_size > 10_000 and out_png.read_bytes()[:4] == b"\x89PNG"
    text = capsys.readouterr().out
    assert "test accuracy" in text and "reference.FancyConv" in text and "speedup" in text


def _history(seed, extra=()):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.json"
        assert main(["--epochs", "1", "--seed", str(seed), "--skip-fancy",
                     "--json", str(path), *FAST, *extra]) == 0
        result = json.loads(path.read_text())
    return [(h["loss"], h["train_accuracy"], h["test_accuracy"]) for h in result["history"]]


def test_same_seed_same_result_and_other_seed_differs():
    first = _history(5)
    assert _history(5, ["--threads", "1"]) == first  # also independent of the thread count
    assert _history(6) != first


def test_sgd_float64(capsys):
    assert main(["--epochs", "1", "--optimizer", "sgd", "--dtype", "float64",
                 "--skip-fancy", *FAST]) == 0
    out = capsys.readouterr().out
    assert "sgd lr=0.05" in out and "float64" in out


def test_missing_scikit_learn(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # makes `import sklearn` fail
    assert main(["--epochs", "1"]) == 1
    err = capsys.readouterr().err
    assert 'pip install ".[train]"' in err and 'pip install "numbaconv[train]"' in err


def test_missing_matplotlib_for_plot(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["--epochs", "1", "--plot", str(tmp_path / "c.png")]) == 1
    err = capsys.readouterr().err
    assert 'pip install ".[train]"' in err and 'pip install "numbaconv[train]"' in err


@pytest.mark.parametrize("argv", [["--epochs", "0"], ["--optimizer", "rmsprop"],
                                  ["--dtype", "float16"], ["--lr", "-1"],
                                  ["--batch-size", "x"], ["--seed", "-3"],
                                  ["--weight-decay", "-0.1"]],
                         ids=["epochs0", "optimizer", "dtype", "lr", "batch-size", "seed",
                              "weight-decay"])
def test_bad_arguments(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_too_many_threads(capsys):
    assert main(["--threads", "100000", "--epochs", "1"]) == 2
    assert "--threads 100000" in capsys.readouterr().err


def test_cli_dispatch_help(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--epochs", "--batch-size", "--lr", "--optimizer", "--seed", "--threads",
                   "--dtype", "--json", "--plot"):
        assert option in out


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "numbaconv", "train", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "numbaconv train" in proc.stdout


def test_docs_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S)
    assert blocks, "docs/training.md should contain python examples"
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(DOCS), "exec"), namespace)  # noqa: S102
    assert namespace["test_accuracy"] > 0.9


@pytest.mark.slow
def test_default_settings_reach_98_percent(tmp_path):
    path = tmp_path / "r.json"
    assert main(["--no-progress", "--skip-fancy", "--json", str(path)]) == 0
    assert json.loads(path.read_text())["test_accuracy"] >= 0.98
