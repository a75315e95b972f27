"""The machine header of the bench outputs: the OpenBLAS kernel, versions, threads, CPU model
and SIMD flags, and the warning when OPENBLAS_CORETYPE forces another kernel.  The environment
of this process is never changed: the forcing variables are faked by passing an environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from numbaconv.bench import machine, openblas, report

UNFORCED = "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE numbaconv bench --network vgg16"


def test_openblas_facts_name_the_kernel_version_and_threads() -> None:
    facts = openblas.openblas_facts()
    if not facts:
        pytest.skip("NumPy is not built with a bundled OpenBLAS")
    assert facts["core"] and isinstance(facts["core"], str)
    assert facts.get("version")
    assert facts.get("threads", 1) >= 1


def test_unforced_core_runs_without_the_forcing_variables() -> None:
    seen = {}

    def fake_run(cmd, env, **kwargs):
        seen.update(cmd=cmd, env=env)
        return subprocess.CompletedProcess(cmd, 0, stdout='{"core": "SkylakeX"}\n', stderr="")

    env = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1048576", "HOME": "/h"}
    assert openblas.unforced_core(env, run=fake_run) == "SkylakeX"
    assert seen["env"] == {"HOME": "/h"} and seen["cmd"][0] == sys.executable


def test_unforced_core_failure_is_none() -> None:
    def broken(cmd, env, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, stdout="", stderr="boom")

    assert openblas.unforced_core({}, run=broken) is None


def test_the_real_probe_agrees_with_this_process() -> None:
    facts = openblas.openblas_facts()
    if "OPENBLAS_CORETYPE" in os.environ or "openblas" not in facts.get("library", ""):
        pytest.skip("needs NumPy's bundled OpenBLAS without a forced kernel")
    assert openblas.unforced_core() == facts["core"]


def test_unforced_command() -> None:
    assert openblas.unforced_command(["--network", "vgg16"]) == UNFORCED


@pytest.mark.parametrize(("env", "core", "unforced", "expected"), [
    pytest.param({}, "Haswell", "Haswell", None, id="not-set"),
    pytest.param({"OPENBLAS_L2_SIZE": "1"}, "Haswell", "Haswell", None, id="only-l2-size"),
    pytest.param({"OPENBLAS_CORETYPE": "Haswell"}, "Haswell", "Haswell", None,
                 id="forces-its-own-kernel"),
    pytest.param({"OPENBLAS_CORETYPE": "Haswell"}, "Haswell", "SkylakeX", "picks SkylakeX",
                 id="haswell-on-avx512"),
    pytest.param({"OPENBLAS_CORETYPE": "Haswell"}, "Haswell", None, "could not find",
                 id="probe-failed"),
])
def test_forcing_warning(env: dict, core: str, unforced: str | None,
                         expected: str | None) -> None:
    warning = openblas.forcing_warning(env, core, unforced, UNFORCED)
    if expected is None:
        assert warning is None
    else:
        assert warning.startswith("WARNING: OPENBLAS_CORETYPE=Haswell")
        assert expected in warning and warning.endswith(UNFORCED)


def test_blas_kernel_with_a_faked_environment() -> None:
    env = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1048576"}
    facts, warnings = machine.blas_kernel(["--quick"], env=env, probe=lambda: "SkylakeX")
    assert facts["environment"] == env and facts["unforced_core"] == "SkylakeX"
    if facts.get("core") != "SkylakeX":
        assert len(warnings) == 1 and "env -u OPENBLAS_CORETYPE" in warnings[0]
        assert warnings[0].endswith("numbaconv bench --quick")
    calls = []
    _, none = machine.blas_kernel([], env={}, probe=lambda: calls.append(1))
    assert none == [] and calls == []  # no subprocess when nothing is forced


def test_lscpu_fields_and_simd_flags() -> None:
    out = "Model name:   AMD EPYC 9B45\nFlags: fpu sse4_2 avx avx2 fma avx512f avx512bw x\n"

    def fake_run(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 0, stdout=out, stderr="")

    fields = machine.lscpu_fields(run=fake_run)
    if not fields:
        pytest.skip("lscpu is not installed")
    assert fields["Model name"] == "AMD EPYC 9B45"
    assert machine.cpu_flags(fields) == ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw"]


def test_header_has_every_fact() -> None:
    info = machine.machine_info(["--quick"])
    assert {"cpu", "cpu_flags", "openblas", "warnings", "threads", "versions"} <= info.keys()
    assert {"numpy", "numba", "torch"} <= info["versions"].keys()
    json.dumps(info)  # the JSON output holds it as it is
    text = "\n".join(report.header_lines(info))
    for fact in ("CPU: ", "SIMD: ", "threads: numba", "versions: ", "numpy", "numba"):
        assert fact in text
    if info["openblas"].get("core"):
        assert f"kernel {info['openblas']['core']}" in text
        assert "OPENBLAS_CORETYPE" in text  # set or not, the line says so


def test_header_prints_the_warning_and_the_unforced_kernel() -> None:
    info = {"cpu": "Some CPU", "cores": 2, "cpu_flags": ["avx2", "avx512f"],
            "openblas": {"core": "Haswell", "version": "0.3.31", "threads": 2,
                         "environment": {"OPENBLAS_CORETYPE": "Haswell"},
                         "unforced_core": "SkylakeX"},
            "warnings": ["WARNING: OPENBLAS_CORETYPE=Haswell forces ..."]}
    lines = report.header_lines(info)
    assert lines[0] == "CPU: Some CPU (2 usable cores); SIMD: avx2 avx512f"
    assert lines[1] == ("BLAS: OpenBLAS 0.3.31, kernel Haswell, 2 threads "
                        "(OPENBLAS_CORETYPE=Haswell; unforced kernel: SkylakeX)")
    assert lines[-1].startswith("WARNING: OPENBLAS_CORETYPE=Haswell")


def test_unforced_gemm_rate_runs_without_the_forcing_variables() -> None:
    seen = {}

    def fake_run(cmd, env, **kwargs):
        seen.update(cmd=cmd, env=env)
        return subprocess.CompletedProcess(cmd, 0, stdout='{"float32": 484.0}\n', stderr="")

    env = {"OPENBLAS_CORETYPE": "Haswell", "PATH": "/bin"}
    assert openblas.unforced_gemm_gflops(["float32"], 64, env, run=fake_run) == {
        "float32": 484.0}
    assert seen["env"] == {"PATH": "/bin"} and seen["cmd"][-2:] == ["64", "float32"]
    real = openblas.unforced_gemm_gflops(["float64"], 32)  # the probe itself runs here
    assert set(real) == {"float64"} and real["float64"] > 0
    lines = report.header_lines({"gemm_gflops": {"float32": 247.0}, "gemm_gflops_unforced":
                                 {"float32": 484.0}, "openblas": {"unforced_core": "SkylakeX"}})
    assert any("own kernel (SkylakeX" in line and "484.0" in line for line in lines)
