"""The callables a network benchmark times for one layer: numbaconv, the bare products, torch.

numbaconv
    Training: ``conv2d_forward`` + ``conv2d_backward`` (``conv_transpose2d_forward`` /
    ``_backward`` for transposed layers); inference: ``numbaconv.conv2d`` /
    ``conv_transpose2d``.  Layers that need an API or argument the installed numbaconv lacks
    (``groups=``, transposed convolution, the inference function) are reported by
    :func:`unsupported` instead of being timed.
bare
    The matrix products of the layer at the same shapes with NumPy's BLAS on all threads
    (:class:`~numbaconv.bench.layers.GemmDims`): training ``W_row @ cols``,
    ``G @ cols.T`` and ``W_row.T @ G``; inference the forward product alone (a transposed
    layer's forward product is ``W_row.T @ X``); per group for grouped layers.  Where the
    columns would take more than :data:`CHUNK_BYTES`, the products run on column blocks of
    that size one after the other (the same work; a batch of 32 large planes would otherwise
    need gigabytes of columns).  A depthwise layer does no matrix product worth the name, so
    its reference is a parallel memory copy of its input and output bytes, once for inference
    and three times for training (one per pass over the data: forward, input gradient,
    weight gradient).
torch
    ``torch.nn.functional.conv2d`` / ``conv_transpose2d`` under ``no_grad`` (inference);
    forward and autograd's backward for x, w and b (training).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import cached_property
from typing import Any

import numba
import numpy as np

from numbaconv.bench.layers import Layer
from numbaconv.bench.machine import torch_module

NET_IMPLS: tuple[str, ...] = ("numbaconv", "bare", "torch")

#: Largest column block of the bare products, in bytes.
CHUNK_BYTES = 256 * 2**20


def _api(name: str) -> Callable[..., Any] | None:
    import numbaconv

    fn = getattr(numbaconv, name, None)
    return fn if callable(fn) else None


def _accepts(fn: Callable[..., Any], argument: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return argument in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _functions(layer: Layer, op: str) -> tuple[str, ...]:
    stem = "conv_transpose2d" if layer.transposed else "conv2d"
    return (f"{stem}_forward", f"{stem}_backward") if op == "train" else (stem,)


def unsupported(layer: Layer, op: str) -> str | None:
    """Why the installed numbaconv cannot run ``op`` on ``layer`` (None: it can)."""
    from numbaconv import __version__

    names = _functions(layer, op)
    missing = [n for n in names if _api(n) is None]
    if missing:
        why = f"no numbaconv.{missing[0]}"
    elif layer.groups > 1 and not _accepts(_api(names[0]), "groups"):
        why = f"numbaconv.{names[0]} has no groups="
    elif layer.dilation > 1 and not _accepts(_api(names[0]), "dilation"):
        why = f"numbaconv.{names[0]} has no dilation="
    else:
        return None
    return f"not supported by this version (numbaconv {__version__}: {why})"


def _hyper(layer: Layer) -> dict[str, int]:
    """Keyword arguments of the numbaconv and torch calls (groups and dilation only where
    they differ from 1, so versions without them still run the other layers)."""
    kw = {"stride": layer.stride, "padding": layer.padding}
    if layer.transposed:
        kw["output_padding"] = layer.output_padding
    if layer.dilation != 1:
        kw["dilation"] = layer.dilation
    if layer.groups != 1:
        kw["groups"] = layer.groups
    return kw


def memory_estimate(layer: Layer, n: int, itemsize: int, op: str = "train") -> int:
    """Bytes a case needs at most, roughly: the inputs, numbaconv's and torch's outputs and
    gradients (and numbaconv's kept copy of x), and the bare products' blocks."""
    x = itemsize * n * layer.C * layer.H * layer.W
    out = itemsize * n * layer.K * layer.Ho * layer.Wo
    arrays = 6 * (x + out) if op == "train" else 3 * (x + out)
    dims = layer.gemm(n)
    columns = itemsize * dims.groups * max(dims.k, dims.r) * dims.nq
    return arrays + 4 * min(columns, CHUNK_BYTES) + itemsize * 2 * (x + out) * layer.depthwise


class LayerProblem:
    """Seeded inputs of one layer at one batch size and dtype, built when first asked for."""

    def __init__(self, layer: Layer, n: int, dtype: str, seed: int = 0) -> None:
        self.layer, self.n, self.dtype = layer, n, np.dtype(dtype)
        self.rng = np.random.default_rng(seed)

    def randn(self, *dims: int) -> np.ndarray:
        return self.rng.standard_normal(dims, dtype=np.float32).astype(self.dtype, copy=False)

    @cached_property
    def x(self) -> np.ndarray:
        return self.randn(*self.layer.x_shape(self.n))

    @cached_property
    def w(self) -> np.ndarray:
        fan_in = int(np.prod(self.layer.w_shape[1:]))
        return self.randn(*self.layer.w_shape) / self.dtype.type(np.sqrt(fan_in))

    @cached_property
    def b(self) -> np.ndarray:
        return self.randn(self.layer.K)

    @cached_property
    def dout(self) -> np.ndarray:
        return self.randn(*self.layer.out_shape(self.n))


def make_callable(problem: LayerProblem, op: str, impl: str) -> Callable[[], object]:
    """Zero-argument callable running ``op`` (``train`` or ``infer``) with ``impl``."""
    builders = {"numbaconv": _numbaconv, "bare": _bare, "torch": _torch}
    if impl not in builders:
        raise ValueError(f"unknown implementation {impl!r}; expected one of "
                         f"{', '.join(NET_IMPLS)}")
    if op not in ("train", "infer"):
        raise ValueError(f"unknown op {op!r}; expected train or infer")
    return builders[impl](problem, op)


def _numbaconv(p: LayerProblem, op: str) -> Callable[[], object]:
    reason = unsupported(p.layer, op)
    if reason is not None:
        raise NotImplementedError(reason)
    fns = [_api(name) for name in _functions(p.layer, op)]
    x, w, b, dout, kw = p.x, p.w, p.b, p.dout, _hyper(p.layer)
    if op == "infer":
        infer = fns[0]
        return lambda: infer(x, w, b, **kw)
    forward, backward = fns

    def train() -> object:
        _, cache = forward(x, w, b, **kw)
        return backward(dout, cache)
    return train


def column_blocks(nq: int, rows: int, itemsize: int, limit: int = CHUNK_BYTES) -> list[int]:
    """Widths of the column blocks of ``nq`` columns of ``rows`` rows each (all groups),
    each block at most ``limit`` bytes (and at least one column)."""
    width = max(1, min(nq, limit // max(rows * itemsize, 1)))
    blocks = [width] * (nq // width)
    if nq % width:
        blocks.append(nq % width)
    return blocks


def _bare(p: LayerProblem, op: str) -> Callable[[], object]:
    if p.layer.depthwise:
        return _copy(p, passes=3 if op == "train" else 1)
    d = p.layer.gemm(p.n)
    g, k, r = d.groups, d.k, d.r
    blocks = column_blocks(d.nq, g * max(k, r), p.dtype.itemsize)
    q = blocks[0]
    w = p.randn(g, k, r)
    cols, grad = p.randn(g, r, q), p.randn(g, k, q)
    out, dcols, dw = (np.empty((g, k, q), p.dtype), np.empty((g, r, q), p.dtype),
                      np.empty((g, k, r), p.dtype))
    matmul = np.matmul
    widths = [(j, *(a[:, :, :j] for a in (cols, grad, out, dcols))) for j in blocks]

    def forward() -> None:  # W_row @ cols
        for _, c, _g, o, _d in widths:
            for i in range(g):
                matmul(w[i], c[i], out=o[i])

    def adjoint() -> None:  # W_row.T @ X: a transposed layer's forward product
        for _, _c, gr, _o, dc in widths:
            for i in range(g):
                matmul(w[i].T, gr[i], out=dc[i])

    def train() -> None:  # W_row @ cols, G @ cols.T, W_row.T @ G
        for _, c, gr, o, dc in widths:
            for i in range(g):
                matmul(w[i], c[i], out=o[i])
                matmul(gr[i], c[i].T, out=dw[i])
                matmul(w[i].T, gr[i], out=dc[i])

    if op == "train":
        return train
    return adjoint if p.layer.transposed else forward


@numba.njit(parallel=True, cache=True)
def _parallel_copy(src: np.ndarray, dst: np.ndarray, blocks: int) -> None:
    n = src.size
    for blk in numba.prange(blocks):
        lo, hi = blk * n // blocks, (blk + 1) * n // blocks
        dst[lo:hi] = src[lo:hi]


def _copy(p: LayerProblem, passes: int) -> Callable[[], object]:
    """``passes`` parallel copies of as many bytes as the layer's input and output."""
    count = p.layer.io_bytes(p.n, p.dtype.itemsize) // p.dtype.itemsize
    src, dst = p.randn(count), np.empty(count, p.dtype)
    blocks = max(1, min(4 * numba.config.NUMBA_NUM_THREADS, count // 4096))

    def copy() -> None:
        for _ in range(passes):
            _parallel_copy(src, dst, blocks)
    return copy


def _torch(p: LayerProblem, op: str) -> Callable[[], object]:
    torch = torch_module()
    if torch is None:
        raise ValueError("implementation 'torch' needs PyTorch, which is not installed")
    F = torch.nn.functional
    conv = F.conv_transpose2d if p.layer.transposed else F.conv2d
    kw = _hyper(p.layer)
    x, w, b = (torch.from_numpy(a) for a in (p.x, p.w, p.b))
    if op == "infer":
        def infer() -> object:
            with torch.no_grad():
                return conv(x, w, b, **kw)
        return infer
    leaves = tuple(t.detach().clone().requires_grad_(True) for t in (x, w, b))
    dout = torch.from_numpy(p.dout)

    def train() -> object:
        out = conv(*leaves, **kw)
        return torch.autograd.grad(out, leaves, dout)
    return train
