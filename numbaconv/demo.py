"""``numbaconv demo``: one layer through every implementation, checked and timed."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

import numpy as np

import numbaconv
from numbaconv import reference
from numbaconv._compile_notice import compiling_notice


def _best_of(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="numbaconv demo",
        description="Run one convolution layer forward and backward through the naive loops, "
                    "the classic fancy-index code and numbaconv; check they agree; time them.")
    parser.add_argument("--shape", default="5,3,10,10,10,3,1,1", metavar="N,C,H,W,K,F,S,P",
                        help="batch, channels, height, width, filters, kernel, stride, padding "
                             "(default: the classic 5,3,10,10,10,3,1,1)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        n, c, h, w, k, f, s, p = (int(v) for v in args.shape.split(","))
    except ValueError:
        parser.error(f"--shape needs 8 comma-separated ints, got {args.shape!r}")

    rng = np.random.default_rng(args.seed)
    dtype = np.dtype(args.dtype)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((k, c, f, f)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)

    start = time.perf_counter()
    with compiling_notice():  # says so on stderr when the kernels are compiled
        out, cache = numbaconv.conv2d_forward(x, wt, b, s, p)
        dout = rng.standard_normal(out.shape).astype(dtype)
        grads = numbaconv.conv2d_backward(dout, cache)
    first_call = time.perf_counter() - start

    def ours() -> tuple:
        o, cch = numbaconv.conv2d_forward(x, wt, b, s, p)
        return (o, *numbaconv.conv2d_backward(dout, cch))

    def fancy() -> tuple:
        o, cch = reference.fancy_conv2d_forward(x, wt, b, s, p)
        return (o, *reference.fancy_conv2d_backward(dout, cch))

    def naive() -> tuple:
        o = reference.naive_conv2d_forward(x, wt, b, s, p)
        return (o, *reference.naive_conv2d_backward(dout, x, wt, s, p))

    results = {"naive": naive(), "fancy": fancy(), "numbaconv": (out, *grads)}
    tol = 1e-10 if dtype == np.float64 else 1e-4
    names = ("out", "dx", "dw", "db")
    print(f"numbaconv {numbaconv.__version__} demo: N,C,H,W={n},{c},{h},{w} K={k} "
          f"kernel={f}x{f} stride={s} padding={p} {dtype}")
    print(f"first call (includes JIT compilation or cache load): {first_call:.2f} s")
    ok = True
    for impl in ("fancy", "numbaconv"):
        errs = []
        for name, got, want in zip(names, results[impl], results["naive"], strict=True):
            err = float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-300))
            ok &= err <= tol
            errs.append(f"{name} {err:.1e}")
        print(f"  {impl:9s} vs naive, max relative error: " + ", ".join(errs))
    repeat = {"naive": 1, "fancy": 5, "numbaconv": 20}
    times = {impl: _best_of(fn, repeat[impl])
             for impl, fn in (("naive", naive), ("fancy", fancy), ("numbaconv", ours))}
    print("forward+backward, best of several runs:")
    for impl, t in times.items():
        print(f"  {impl:9s} {t * 1e3:10.3f} ms   numbaconv is {t / times['numbaconv']:7.1f}x "
              "faster" if impl != "numbaconv" else f"  {impl:9s} {t * 1e3:10.3f} ms")
    print("all implementations agree" if ok else f"MISMATCH beyond tolerance {tol:g}")
    return 0 if ok else 1
