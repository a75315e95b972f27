"""The callables that are timed: one per (op, implementation) on one shape and dtype.

Implementations
---------------
naive
    ``numbaconv.reference.naive_conv2d_*`` (Python loops; forward/backward only, and only
    on shapes where :func:`numbaconv.bench.shapes.naive_allowed` says a call is cheap).
fancy
    The classic fancy-index code in :mod:`numbaconv.reference`.
numbaconv
    The drop-ins ``numbaconv.im2col_indices``/``col2im_indices`` (same layout as fancy) and
    ``numbaconv.conv2d_forward``/``conv2d_backward``.
torch
    ``torch.nn.functional.unfold``/``fold``/``conv2d`` and autograd's backward, when
    torch is installed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

import numpy as np

from numbaconv.bench.machine import torch_module
from numbaconv.bench.shapes import IMPLS, Shape, naive_allowed

#: Ops that have a naive reference.
NAIVE_OPS = ("forward", "backward", "forward+backward")


def available_impls(op: str, shape: Shape, *, torch: bool | None = None) -> list[str]:
    """Implementations timed for ``op`` on ``shape``, in :data:`IMPLS` order.

    ``torch=None`` means "if it is installed".
    """
    if torch is None:
        torch = torch_module() is not None
    impls = []
    for impl in IMPLS:
        if impl == "naive" and (op not in NAIVE_OPS or not naive_allowed(shape, op)):
            continue
        if impl == "torch" and not torch:
            continue
        impls.append(impl)
    return impls


class Problem:
    """Seeded inputs of one shape and dtype, built lazily and shared by every op."""

    def __init__(self, shape: Shape, dtype: str, seed: int = 0) -> None:
        self.shape = shape
        self.dtype = np.dtype(dtype)
        self.rng = np.random.default_rng(seed)

    def _randn(self, *dims: int) -> np.ndarray:
        return self.rng.standard_normal(dims).astype(self.dtype)

    @cached_property
    def x(self) -> np.ndarray:
        return self._randn(*self.shape.x_shape)

    @cached_property
    def w(self) -> np.ndarray:
        s = self.shape
        return self._randn(*s.w_shape) / np.sqrt(s.C * s.fh * s.fw).astype(self.dtype)

    @cached_property
    def b(self) -> np.ndarray:
        return self._randn(self.shape.K)

    @cached_property
    def dout(self) -> np.ndarray:
        return self._randn(*self.shape.out_shape)

    @cached_property
    def cols(self) -> np.ndarray:
        return self._randn(*self.shape.cols_shape)

    # --- caches for the backward-only timings (forward computed once, outside the timer)
    @cached_property
    def fancy_cache(self) -> Any:
        from numbaconv import reference

        s = self.shape
        return reference.fancy_conv2d_forward(self.x, self.w, self.b, s.S, s.P)[1]

    @cached_property
    def numbaconv_cache(self) -> Any:
        import numbaconv

        s = self.shape
        return numbaconv.conv2d_forward(self.x, self.w, self.b, s.S, s.P)[1]

    # --- torch tensors (sharing memory with the NumPy arrays)
    @cached_property
    def t(self) -> dict[str, Any]:
        torch = torch_module()
        s = self.shape
        return {
            "x": torch.from_numpy(self.x),
            "w": torch.from_numpy(self.w),
            "b": torch.from_numpy(self.b),
            "dout": torch.from_numpy(self.dout),
            "cols": torch.from_numpy(self.cols.reshape(s.C * s.fh * s.fw, s.Ho * s.Wo, s.N)
                                     .transpose(2, 0, 1).copy()),
        }

    @cached_property
    def torch_graph(self) -> tuple[Any, tuple[Any, Any, Any]]:
        """A forward output with its leaf inputs, for timing autograd's backward alone."""
        torch = torch_module()
        s = self.shape
        leaves = tuple(self.t[k].detach().clone().requires_grad_(True) for k in ("x", "w", "b"))
        out = torch.nn.functional.conv2d(*leaves, stride=s.S, padding=s.P)
        return out, leaves


def make_callable(problem: Problem, op: str, impl: str) -> Callable[[], object]:
    """Zero-argument callable running ``op`` with ``impl`` on ``problem``.

    Whatever the timed call does not need to redo (the forward cache of a backward-only
    timing, torch's autograd graph) is built here, outside the timer.
    """
    builders = {"naive": _naive, "fancy": _fancy, "numbaconv": _numbaconv, "torch": _torch}
    if impl not in builders:
        raise ValueError(f"unknown implementation {impl!r}; expected one of {', '.join(IMPLS)}")
    fn = builders[impl](problem, op)
    if fn is None:
        raise ValueError(f"implementation {impl!r} has no {op!r}")
    return fn


def _naive(p: Problem, op: str) -> Callable[[], object] | None:
    from numbaconv import reference

    s, x, w, b, dout = p.shape, p.x, p.w, p.b, p.dout
    if op == "forward":
        return lambda: reference.naive_conv2d_forward(x, w, b, s.S, s.P)
    if op == "backward":
        return lambda: reference.naive_conv2d_backward(dout, x, w, s.S, s.P)
    if op == "forward+backward":
        def fwd_bwd() -> object:
            reference.naive_conv2d_forward(x, w, b, s.S, s.P)
            return reference.naive_conv2d_backward(dout, x, w, s.S, s.P)
        return fwd_bwd
    return None


def _classic_api(p: Problem, op: str, im2col: Callable, col2im: Callable, forward: Callable,
                 backward: Callable, cache: Callable[[], Any]) -> Callable[[], object] | None:
    """The ops of an implementation with the classic functions' signatures."""
    s, x, w, b, dout = p.shape, p.x, p.w, p.b, p.dout
    if op == "im2col":
        return lambda: im2col(x, s.fh, s.fw, s.P, s.S)
    if op == "col2im":
        cols = p.cols
        return lambda: col2im(cols, x.shape, s.fh, s.fw, s.P, s.S)
    if op == "forward":
        return lambda: forward(x, w, b, s.S, s.P)
    if op == "backward":
        kept = cache()
        return lambda: backward(dout, kept)
    if op == "forward+backward":
        def fwd_bwd() -> object:
            _, kept = forward(x, w, b, s.S, s.P)
            return backward(dout, kept)
        return fwd_bwd
    return None


def _fancy(p: Problem, op: str) -> Callable[[], object] | None:
    from numbaconv import reference as r

    return _classic_api(p, op, r.im2col_indices, r.col2im_indices, r.fancy_conv2d_forward,
                        r.fancy_conv2d_backward, lambda: p.fancy_cache)


def _numbaconv(p: Problem, op: str) -> Callable[[], object] | None:
    import numbaconv as nc

    return _classic_api(p, op, nc.im2col_indices, nc.col2im_indices, nc.conv2d_forward,
                        nc.conv2d_backward, lambda: p.numbaconv_cache)


def _torch(p: Problem, op: str) -> Callable[[], object] | None:
    torch = torch_module()
    if torch is None:
        raise ValueError("implementation 'torch' needs PyTorch, which is not installed")
    F = torch.nn.functional
    s, t = p.shape, p.t
    if op == "im2col":
        def unfold() -> object:
            with torch.no_grad():
                return F.unfold(t["x"], (s.fh, s.fw), padding=s.P, stride=s.S)
        return unfold
    if op == "col2im":
        def fold() -> object:
            with torch.no_grad():
                return F.fold(t["cols"], (s.H, s.W), (s.fh, s.fw), padding=s.P, stride=s.S)
        return fold
    if op == "forward":
        def forward() -> object:
            with torch.no_grad():
                return F.conv2d(t["x"], t["w"], t["b"], stride=s.S, padding=s.P)
        return forward
    if op == "backward":
        out, leaves = p.torch_graph
        dout = t["dout"]
        return lambda: torch.autograd.grad(out, leaves, dout, retain_graph=True)
    if op == "forward+backward":
        leaves = tuple(t[k].detach().clone().requires_grad_(True) for k in ("x", "w", "b"))
        dout = t["dout"]

        def fwd_bwd() -> object:
            out = F.conv2d(*leaves, stride=s.S, padding=s.P)
            return torch.autograd.grad(out, leaves, dout)
        return fwd_bwd
    return None
