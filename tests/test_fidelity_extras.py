"""First contact: the oracle extra, the test command that installs it, the report of which
oracles ran, and install hints that work as printed."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEST_COMMAND = ('pip install ".[test,oracle]" && '
                'python -m pytest tests benchmarks --benchmark-disable')


def test_oracle_extra_pins_the_cpu_torch():
    """Exactly the pin the suite is checked against: an unpinned torch may pull a CUDA build."""
    text = (ROOT / "pyproject.toml").read_text()  # (no tomllib before Python 3.11)
    extras = text.split("[project.optional-dependencies]")[1].split("\n[")[0]
    assert re.search(r'^oracle = \["torch==2\.13\.0"\]$', extras, re.M), extras
    test_extra = re.search(r"^test = (.*)$", extras, re.M).group(1)
    assert "torch" not in test_extra


def test_readme_and_ci_install_the_oracle():
    assert TEST_COMMAND in (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install ".[test,oracle]"' in ci
    assert "python -m pytest tests benchmarks --benchmark-disable" in ci


def _tests_conftest():
    """tests/conftest.py as a module (``import conftest`` may find benchmarks/conftest.py
    when both folders are collected)."""
    spec = importlib.util.spec_from_file_location("tests_conftest",
                                                  Path(__file__).parent / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_oracle_line_names_every_oracle():
    oracle_line = _tests_conftest().oracle_line

    line = oracle_line("2.13.0+cpu")
    for oracle in ("naive loops", "fancy-index", "finite differences", "PyTorch 2.13.0+cpu"):
        assert oracle in line
    missing = oracle_line(None)
    assert "PyTorch NOT installed" in missing and 'pip install ".[oracle]"' in missing


def test_summary_counts_the_skipped_torch_checks(tmp_path):
    """Without torch the run ends with a loud line counting what was skipped."""
    conftest = (Path(__file__).parent / "conftest.py").read_text()
    (tmp_path / "conftest.py").write_text(
        conftest + "\n\nimport sys\n\nsys.modules['torch'] = None  # as if not installed\n")
    (tmp_path / "test_module_level.py").write_text(
        "import pytest\ntorch = pytest.importorskip('torch')\n\n\ndef test_a():\n    pass\n")
    (tmp_path / "test_some.py").write_text(
        "import pytest\n\n\n@pytest.mark.parametrize('k', [1, 2])\ndef test_b(k):\n"
        "    pytest.importorskip('torch')\n\n\ndef test_c():\n    pass\n")
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                          "--rootdir", str(tmp_path), str(tmp_path)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    assert "oracles: naive loops, fancy-index classic code, finite differences; PyTorch NOT " \
           "installed" in out  # the header
    assert ("PyTorch NOT installed: 2 PyTorch cross-checks skipped and 1 whole module(s) "
            "(test_module_level.py)") in out
    assert 'pip install ".[oracle]"' in out.split("cross-checks skipped")[1]


@pytest.mark.parametrize("missing", ["sklearn", "matplotlib"])
def test_train_install_hints_work_from_a_checkout_and_an_index(missing, monkeypatch, capsys,
                                                               tmp_path):
    from numbaconv.train import main

    monkeypatch.setitem(sys.modules, missing, None)
    args = ["--epochs", "1"] + (["--plot", str(tmp_path / "c.png")] if missing != "sklearn"
                                else [])
    assert main(args) == 1
    err = capsys.readouterr().err
    assert 'pip install ".[train]"' in err and "checkout" in err
    assert 'pip install "numbaconv[train]"' in err and "index" in err
