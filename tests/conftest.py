"""Shared test configuration: per-dtype tolerances and comparison helpers.

Tolerances are relative to the largest absolute value of the reference (a float64 oracle),
so a result passes when ``max|actual - expected| <= REL_TOL[dtype] * max|expected|``.
float64 is held to ~1e-10; float32 only as loose as single precision needs.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Callable

import numpy as np
import pytest

#: Relative tolerance (relative to ``max|reference|``) for each supported dtype.
REL_TOL: dict[np.dtype, float] = {
    np.dtype(np.float64): 1e-10,
    np.dtype(np.float32): 1e-5,
}

#: Readable short names used in parametrize ids.
DTYPE_TAG: dict[np.dtype, str] = {np.dtype(np.float64): "f64", np.dtype(np.float32): "f32"}


def rel_tol(dtype: object) -> float:
    """The relative tolerance for ``dtype`` (float32 or float64)."""
    return REL_TOL[np.dtype(dtype)]


def assert_close_to_reference(actual: np.ndarray, expected: np.ndarray, dtype: object = None,
                              what: str = "") -> None:
    """Assert ``actual`` matches the (float64) reference within the dtype's tolerance.

    Shapes must match exactly; the error is measured against ``max|expected|`` so that
    near-zero entries are not held to an impossible relative standard.
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    dtype = np.dtype(actual.dtype if dtype is None else dtype)
    assert actual.shape == expected.shape, (
        f"{what}: shape {actual.shape} != reference shape {expected.shape}")
    assert np.all(np.isfinite(actual)), f"{what}: non-finite values in result"
    scale = float(np.max(np.abs(expected), initial=0.0))
    tol = rel_tol(dtype) * scale
    err = float(np.max(np.abs(actual.astype(np.float64) - expected.astype(np.float64)),
                       initial=0.0))
    assert err <= tol, (
        f"{what}: max abs error {err:.3e} exceeds {tol:.3e} "
        f"(rel tol {rel_tol(dtype):g} x max|ref| {scale:.3e}, dtype {dtype})")


@pytest.fixture(scope="session")
def assert_close() -> Callable[..., None]:
    """Fixture form of :func:`assert_close_to_reference` (usable from any test module)."""
    return assert_close_to_reference


@pytest.fixture(scope="session")
def tolerance() -> Callable[[object], float]:
    """Fixture form of :func:`rel_tol`."""
    return rel_tol


@pytest.fixture
def rng() -> np.random.Generator:
    """A freshly seeded generator per test: data are reproducible and order-independent."""
    return np.random.default_rng(20261123)


def central_differences(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Gradient of the scalar ``f()`` with respect to ``x`` (changed in place and restored),
    by central differences."""
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for k in range(flat.size):
        old = flat[k]
        flat[k] = old + eps
        plus = f()
        flat[k] = old - eps
        minus = f()
        flat[k] = old
        gflat[k] = (plus - minus) / (2 * eps)
    return grad


@pytest.fixture(scope="session")
def numerical_grad() -> Callable[..., np.ndarray]:
    """Fixture form of :func:`central_differences`."""
    return central_differences


# --- which oracles ran ------------------------------------------------------------------------
# PyTorch is optional (the `oracle` extra): without it, its cross-checks are skipped, which a
# green run must not hide.  The header and the summary say which oracles the run used.

ORACLES = "naive loops, fancy-index classic code, finite differences"
TORCH_HINT = "install it with  pip install \".[oracle]\"  (from a checkout)"


def torch_version() -> str | None:
    """The installed PyTorch's version, or None; found without importing torch (slow)."""
    if importlib.util.find_spec("torch") is None:
        return None
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return "(version unknown)"


def oracle_line(version: str | None) -> str:
    """One line naming the oracles the tests compare against."""
    if version is None:
        return f"oracles: {ORACLES}; PyTorch NOT installed ({TORCH_HINT})"
    return f"oracles: {ORACLES}, PyTorch {version}"


def _skipped_for_torch(reports: list) -> tuple[int, list[str]]:
    """Tests skipped for want of torch, and the modules skipped whole (counted once each)."""
    tests, modules = 0, []
    for report in reports:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        if "torch" not in reason:
            continue
        if report.when == "collect" or not hasattr(report, "when"):
            modules.append(report.nodeid or str(report.fspath))
        else:
            tests += 1
    return tests, modules


def pytest_report_header(config: pytest.Config) -> str:
    return oracle_line(torch_version())


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    version = torch_version()
    tests, modules = _skipped_for_torch(terminalreporter.stats.get("skipped", []))
    if version is None and (tests or modules):
        whole = f" and {len(modules)} whole module(s) ({', '.join(modules)})" if modules else ""
        terminalreporter.write_sep(
            "!", f"PyTorch NOT installed: {tests} PyTorch cross-checks skipped{whole}; "
            f"{TORCH_HINT}", red=True, bold=True)
    else:
        terminalreporter.write_line(oracle_line(version))
