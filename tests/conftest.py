"""Shared test configuration: per-dtype tolerances and comparison helpers.

Tolerances are relative to the largest absolute value of the reference (a float64 oracle),
so a result passes when ``max|actual - expected| <= REL_TOL[dtype] * max|expected|``.
float64 is held to ~1e-10; float32 only as loose as single precision needs.
"""

from __future__ import annotations

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
