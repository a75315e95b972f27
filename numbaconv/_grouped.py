"""Grouped convolution (``1 < groups < C``, or ``groups == C`` with a kernel that is not
depthwise-friendly): the core convolution run once per group.

Group g is the convolution of the channels ``x[:, g*C/g : (g+1)*C/g]`` with the filters
``w[g*K/g : (g+1)*K/g]``; its output is the same slice of the output's channels.

Where the lanes are Numba kernels, every lane of every group runs in one parallel Numba call
(``_lane_kernels.grouped_forward_lanes`` / ``grouped_backward_lanes``): a call per group from
Python cost more than many groups' whole work (ResNeXt's 32 groups at batch 1).  The arrays
are read and written in place, viewed as ``N * G`` images of one group each (group g of image
n is contiguous): no copy into a group-major layout and back, which took a third of the time
of ResNeXt's layers at batch 8.  The items, (group, lane), depend on the problem only,
and each group's weight-gradient parts are added in lane order, so results are bitwise
identical for any thread count.  Otherwise (filter lanes, another BLAS, a call inside a lane)
each group runs the ungrouped forward / backward pass of :mod:`numbaconv.functional` on
contiguous slices, deterministic in the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numba
import numpy as np

from numbaconv import _backward, _lane_kernels, _stages, functional
from numbaconv._lanes import _wave_order, in_lane, run_lanes, single_threaded_blas
from numbaconv._scratch import thread_scratch
from numbaconv._tiling import Tiling, plan_lanes, plan_tiling, use_fused_lanes
from numbaconv._validation import ConvGeometry, check_workspace, make_geometry

# From this many groups on, the groups are the lanes (each group's convolution runs whole in
# one thread); with fewer, each group's convolution is spread over the threads in turn.
GROUP_LANES_FROM = 8


def _for_each_group(groups: int, run_group) -> None:
    """``run_group(g)`` for every group: as lanes from ``GROUP_LANES_FROM`` groups on (each
    group computed the same way by whichever thread runs it), else one after the other."""
    if groups >= GROUP_LANES_FROM:
        run_lanes(lambda g, _, __, ___, serial: run_group(g),
                  [(g, g + 1, 0, 0) for g in range(groups)])
    else:
        for g in range(groups):
            run_group(g)


@dataclass(frozen=True)
class GroupedCache:
    """What the backward pass of a grouped convolution needs: one cache per group."""

    caches: tuple[functional.ConvCache, ...]
    geometry: ConvGeometry  # of the whole convolution (c = all input channels)
    groups: int

    @property
    def dtype(self) -> np.dtype:
        return self.caches[0].x.dtype


def _group_padding(geom: ConvGeometry) -> tuple[tuple[int, int], tuple[int, int]]:
    return (geom.ph, geom.ph_end), (geom.pw, geom.pw_end)


def grouped_forward(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None,
                    geom: ConvGeometry, groups: int, workspace: int | None,
                    keep: bool) -> tuple[np.ndarray, GroupedCache | None]:
    """Output of the grouped convolution of validated ``x`` (N, C, H, W) and ``w``
    (K, C/groups, fh, fw) with the zero padding of ``geom``, and, with ``keep``, the cache
    (else None)."""
    plan = _group_plan(geom, groups, x.itemsize, workspace)
    if plan is not None:
        return _lanes_forward(x, w, bias, geom, groups, plan, keep)
    c_group, k_group = geom.c // groups, geom.k // groups
    padding = _group_padding(geom)
    hyper = ((geom.sh, geom.sw), padding, (geom.dh, geom.dw))
    out = np.empty(geom.out_shape, dtype=x.dtype)
    caches: list = [None] * groups

    def run_group(g: int) -> None:
        xg = x[:, g * c_group:(g + 1) * c_group]
        wg = w[g * k_group:(g + 1) * k_group]
        bg = None if bias is None else bias[g * k_group:(g + 1) * k_group]
        if keep:
            out_g, caches[g] = functional.conv2d_forward(xg, wg, bg, *hyper,
                                                         workspace=workspace)
        else:
            out_g = functional.conv2d(xg, wg, bg, *hyper, workspace=workspace)
        out[:, g * k_group:(g + 1) * k_group] = out_g

    _for_each_group(groups, run_group)
    return out, (GroupedCache(tuple(caches), geom, groups) if keep else None)


def grouped_backward(dout: np.ndarray, cache: GroupedCache
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dx, dw, db)`` of :func:`grouped_forward`, group by group."""
    if isinstance(cache, GroupedLanesCache):
        return _lanes_backward(dout, cache)
    geom, groups = cache.geometry, cache.groups
    c_group, k_group = geom.c // groups, geom.k // groups
    dx = np.empty(geom.x_shape, dtype=dout.dtype)
    dw = np.empty((geom.k, c_group, geom.fh, geom.fw), dtype=dout.dtype)
    db = np.empty(geom.k, dtype=dout.dtype)

    def run_group(g: int) -> None:
        filters = slice(g * k_group, (g + 1) * k_group)
        dx_g, dw[filters], db[filters] = functional.conv2d_backward(dout[:, filters],
                                                                     cache.caches[g])
        dx[:, g * c_group:(g + 1) * c_group] = dx_g

    _for_each_group(groups, run_group)
    return dx, dw, db


# --- every group's lanes in one parallel call -----------------------------------------------

# The weight-gradient parts of a backward pass at most (else the groups run one by one).
_PARTS_BYTES = 256 * 2**20


@dataclass(frozen=True)
class _GroupPlan:
    geometry: ConvGeometry  # of one group
    tiling: Tiling
    lanes: list  # forward lanes of one group (the same for every group)
    backward_lanes: list


@dataclass(frozen=True)
class GroupedLanesCache(GroupedCache):
    """What the backward pass of :func:`_lanes_forward` needs (``caches`` is empty): a
    private copy of the input as one-group images (``(N*G, C/G, H, W)``, or, flat, those
    images split by stride phase), the weights, and the plan."""

    xg: np.ndarray | None = None
    w: np.ndarray | None = None
    plan: _GroupPlan | None = None

    @property
    def dtype(self) -> np.dtype:
        return self.xg.dtype


def _group_plan(geom: ConvGeometry, groups: int, itemsize: int,
                workspace: int | None) -> _GroupPlan | None:
    """The plan of one group for the parallel path, or None where the groups run one by
    one (no Numba lanes, filter lanes, a call inside a lane)."""
    if not use_fused_lanes() or in_lane():
        return None
    geom_g = make_geometry((geom.n, geom.c // groups, geom.h, geom.w), geom.k // groups,
                           geom.fh, geom.fw, (geom.sh, geom.sw), _group_padding(geom),
                           (geom.dh, geom.dw), padding_forms=True)
    tiling = plan_tiling(geom_g, itemsize, check_workspace(workspace))
    if tiling.filters:
        return None
    # One image per tile: the images of a group are ``groups`` apart in the input.
    tiling = replace(tiling, images=1, wide=False)
    backward_lanes = plan_lanes(geom_g, tiling, backward=True)
    part_bytes = geom_g.k * (geom_g.rows + 1) * itemsize
    if groups * len(backward_lanes) * part_bytes > _PARTS_BYTES:
        return None  # the backward pass would hold too many weight-gradient parts at once
    return _GroupPlan(geom_g, tiling, plan_lanes(geom_g, tiling), backward_lanes)


def _one_group_images(a: np.ndarray, groups: int) -> np.ndarray:
    """``a`` (N, G*m, ...) as ``N * G`` images of one group each, ``(N*G, m, ...)``: image
    ``n * G + g`` is group g's channels of image n (a view of a C-contiguous ``a``)."""
    n, channels = a.shape[0], a.shape[1]
    return np.ascontiguousarray(a).reshape(n * groups, channels // groups, *a.shape[2:])


def _items(groups: int, lanes: list) -> np.ndarray:
    return np.array([(g, *lane) for g in range(groups) for lane in lanes], dtype=np.int64)


def _lanes_forward(x, w, bias, geom, groups, plan, keep):
    geom_g, tiling = plan.geometry, plan.tiling
    k_group, rows = geom_g.k, geom_g.rows
    xg = _one_group_images(x, groups)
    x_kept = functional.kept_input(xg, geom_g, tiling, keep)
    bias2 = None if bias is None else bias.reshape(groups, k_group)
    w_ext = np.ascontiguousarray(functional.weight_rows(w.reshape(groups, k_group, rows), bias2,
                                                        tiling.bias_row))
    # Without a row of ones (pointwise) the lanes add the bias after the products.
    add_bias = (bias2 if bias2 is not None and not tiling.bias_row
                else np.empty((groups, 0), dtype=x.dtype))
    out = np.empty(geom.out_shape, dtype=x.dtype)
    _, x_copy, phases, cols_size, _ = functional._fused_lane_args(xg, x_kept, None, geom_g,
                                                                  tiling)
    threads = numba.get_num_threads()
    items = _items(groups, plan.lanes)
    seconds = np.zeros((len(items), 4)) if _stages.profiling() else None  # None: no clock code
    with single_threaded_blas():
        _lane_kernels.grouped_forward_lanes(
            items, groups, xg, x_copy, w_ext, add_bias,
            _one_group_images(out.reshape(geom.n, geom.k, geom.positions), groups),
            *geom_g.kernel_args, tiling.out_rows, tiling.bias_row,
            thread_scratch("cols", threads, cols_size, x.dtype), phases, seconds)
    if seconds is not None:
        _stages.add_lane_seconds(seconds.sum(axis=0))
    return out, (GroupedLanesCache((), geom, groups, x_kept, w, plan) if keep else None)


def _lanes_backward(dout, cache):
    geom, groups, plan = cache.geometry, cache.groups, cache.plan
    geom_g, tiling = plan.geometry, plan.tiling
    dtype, k_group, rows = dout.dtype, geom_g.k, geom_g.rows
    doutg = _one_group_images(dout.reshape(geom.n, geom.k, geom.positions), groups)
    w_mat = np.ascontiguousarray(cache.w.reshape(groups, k_group, rows), dtype=dtype)
    accumulate = tiling.split_rows and tiling.bias_row
    dx = (np.zeros if accumulate else np.empty)(geom.x_shape, dtype=dtype)
    dxg = _one_group_images(dx, groups)
    (images, phases, transposed, dw_shape, cols_size, dcols_size, _,
     dphases_size) = _backward._fused_lane_scratch(cache.xg, dxg, geom_g, tiling)
    items = _items(groups, plan.backward_lanes)
    parts = np.empty((len(items), *dw_shape), dtype=dtype)
    threads = numba.get_num_threads()
    dphases = thread_scratch("dphases", threads, dphases_size, dtype) if dphases_size else None
    waves = _wave_order([tuple(item[1:]) for item in items], 2 if accumulate else 1)
    with single_threaded_blas():
        for wave in waves:
            wave_parts = np.empty((len(wave), *dw_shape), dtype=dtype)
            seconds = np.zeros((len(wave), 4)) if _stages.profiling() else None
            _lane_kernels.grouped_backward_lanes(
                items[wave], groups, images, doutg, w_mat, dxg, wave_parts, transposed,
                accumulate, *geom_g.kernel_args, tiling.out_rows, tiling.bias_row,
                thread_scratch("cols", threads, cols_size, dtype),
                thread_scratch("dcols", threads, dcols_size, dtype), phases, dphases, seconds)
            parts[wave] = wave_parts
            if seconds is not None:
                _stages.add_lane_seconds(seconds.sum(axis=0))
    # Item k is a lane of group k // per_group: a stable sort by group keeps each group's
    # lanes in the order they started.
    per_group = len(plan.backward_lanes)
    order = sorted((k for wave in waves for k in wave), key=lambda k: k // per_group)
    dw = np.empty((geom.k, rows), dtype=dtype)
    db = np.empty(geom.k, dtype=dtype)
    for g in range(groups):
        mine = order[g * per_group:(g + 1) * per_group]
        total = parts[mine[0]].copy()
        for k in mine[1:]:
            total += parts[k]
        dw_db = total.T if transposed else total
        filters = slice(g * k_group, (g + 1) * k_group)
        dw[filters], db[filters] = _backward._split_weight_gradient(dw_db, rows)
    return dx, dw.reshape(geom.k, geom_g.c, geom.fh, geom.fw), db

