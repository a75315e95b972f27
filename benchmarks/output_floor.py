"""How fast could any drop-in ``im2col_indices`` / ``col2im_indices`` be?

Both return a new array.  Allocating it and writing every element once (``np.empty`` and a
parallel fill) is a floor under any implementation, and on a machine where fresh pages are
expensive it is a large part of the time.  ``fancy / floor`` is the largest speedup over the
fancy-index version that an implementation could show; ``fancy / numbaconv`` is ours.

Run ``python benchmarks/output_floor.py [--dtype float64] [--shapes cifar,stem]``.  Every
row is timed in alternating rounds (``measure_interleaved``), float32 by default.
"""

from __future__ import annotations

import argparse

import numpy as np
from numba import njit, prange

from numbaconv.bench import shapes as sh
from numbaconv.bench.impls import Problem, make_callable
from numbaconv.bench.machine import machine_info
from numbaconv.bench.report import format_time, header_lines
from numbaconv.bench.timing import measure_interleaved


@njit(cache=True, parallel=True)
def _fill(out):
    """``out[...] = 1`` on every thread, a block of 16K elements at a time."""
    flat = out.reshape(out.size)
    block = np.uint64(1 << 14)
    size = np.uint64(flat.size)
    for b in prange((flat.size + (1 << 14) - 1) >> 14):
        start = np.uint64(b) * block
        for k in range(start, min(start + block, size)):  # unsigned: vectorised, no checks
            flat[k] = 1


def _fresh_output(shape: tuple[int, ...], dtype: str):
    def allocate_and_fill() -> object:
        out = np.empty(shape, dtype=dtype)
        _fill(out)
        return out
    return allocate_and_fill


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=sh.DTYPES, default="float32")
    parser.add_argument("--shapes", type=sh.parse_shapes, default=list(sh.SHAPES.values()))
    args = parser.parse_args(argv)
    print("\n".join(header_lines(machine_info())))
    print(f"\n{'op':<7} {'shape':<11} {'output':>9} {'fancy':>10} {'numbaconv':>10} "
          f"{'floor':>10} {'fancy/ours':>10} {'fancy/floor':>11}")
    for shape in args.shapes:
        problem = Problem(shape, args.dtype)
        for op, out_shape in (("im2col", shape.cols_shape), ("col2im", shape.x_shape)):
            fns = {impl: make_callable(problem, op, impl) for impl in ("fancy", "numbaconv")}
            fns["floor"] = _fresh_output(out_shape, args.dtype)
            timings, _ = measure_interleaved(fns, repeat=7)
            t = {name: timing.median_s for name, timing in timings.items()}
            size = np.prod(out_shape) * np.dtype(args.dtype).itemsize / 1e6
            print(f"{op:<7} {shape.name:<11} {size:>7.1f}MB {format_time(t['fancy']):>10} "
                  f"{format_time(t['numbaconv']):>10} {format_time(t['floor']):>10} "
                  f"{t['fancy'] / t['numbaconv']:>9.1f}x {t['fancy'] / t['floor']:>10.1f}x",
                  flush=True)


if __name__ == "__main__":
    main()
