"""NumPy's own OpenBLAS, reached from Python (thread count) and from Numba kernels (GEMM).

NumPy 2 wheels ship OpenBLAS as ``numpy.libs/libscipy_openblas64_*.so`` (``numpy/.dylibs`` on
macOS), with 64-bit integer ("ILP64") BLAS symbols renamed ``scipy_cblas_sgemm64_`` and so on.
:func:`load_gemm` makes those symbols known to Numba's linker, so kernels that call
:data:`sgemm` / :data:`dgemm` run whole matrix products without the GIL, and Numba can cache
them: they refer to the symbols by name, not by address.  With another BLAS (MKL, Accelerate)
the symbols are not there, :func:`load_gemm` returns False, and numbaconv uses NumPy's
products from Python instead.
"""

from __future__ import annotations

import glob
import os
import threading

import numpy as np
from numba import types

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112  # CBLAS enum values

_GEMM_NAMES = ("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_")


def _gemm_signature(real: types.Float) -> types.Signature:
    # order, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc.  The CBLAS enums are C
    # ints; matrix pointers are passed as integers, which the C calling convention treats alike.
    return types.void(types.int32, types.int32, types.int32, types.int64, types.int64,
                      types.int64, real, types.intp, types.int64, types.intp, types.int64, real,
                      types.intp, types.int64)


sgemm = types.ExternalFunction(_GEMM_NAMES[0], _gemm_signature(types.float32))
dgemm = types.ExternalFunction(_GEMM_NAMES[1], _gemm_signature(types.float64))


def openblas_paths() -> list[str]:
    """The OpenBLAS libraries bundled with the installed NumPy wheel (empty for other builds)."""
    base = os.path.dirname(np.__file__)
    return sorted(glob.glob(os.path.join(base + ".libs", "*openblas*"))  # Linux, Windows
                  + glob.glob(os.path.join(base, ".dylibs", "*openblas*")))  # macOS


_gemm_loaded: bool | None = None
_gemm_lock = threading.Lock()


def load_gemm() -> bool:
    """Make :data:`sgemm` and :data:`dgemm` callable from Numba; False where they are missing.

    Must be called (and be True) before any kernel that calls them is compiled or loaded from
    Numba's cache.
    """
    global _gemm_loaded
    with _gemm_lock:
        if _gemm_loaded is None:
            _gemm_loaded = _load_gemm()
        return _gemm_loaded


def _load_gemm() -> bool:
    import ctypes

    from llvmlite import binding

    for path in openblas_paths():
        try:
            library = ctypes.CDLL(path)  # already loaded by NumPy: the same library
        except OSError:
            continue
        if all(hasattr(library, name) for name in _GEMM_NAMES):
            binding.load_library_permanently(path)
            return True
    return False
