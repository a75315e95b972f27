"""Grouped convolution (``1 < groups < C``, or ``groups == C`` with a kernel that is not
depthwise-friendly): the core convolution run once per group.

Group g is the convolution of the channels ``x[:, g*C/g : (g+1)*C/g]`` with the filters
``w[g*K/g : (g+1)*K/g]``; its output is the same slice of the output's channels.  Each group
runs the ungrouped forward / backward pass of :mod:`numbaconv.functional` on contiguous
slices, so every group is bitwise deterministic whatever the thread count, and so is the
whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numbaconv import functional
from numbaconv._lanes import run_lanes
from numbaconv._validation import ConvGeometry

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


def _group_padding(geom: ConvGeometry) -> tuple[tuple[int, int], tuple[int, int]]:
    return (geom.ph, geom.ph_end), (geom.pw, geom.pw_end)


def grouped_forward(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None,
                    geom: ConvGeometry, groups: int, workspace: int | None,
                    keep: bool) -> tuple[np.ndarray, GroupedCache | None]:
    """Output of the grouped convolution of validated ``x`` (N, C, H, W) and ``w``
    (K, C/groups, fh, fw) with the zero padding of ``geom``, and, with ``keep``, the cache
    (else None)."""
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
