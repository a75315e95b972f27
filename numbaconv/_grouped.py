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
from numbaconv._validation import ConvGeometry


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
    caches = []
    for g in range(groups):
        xg = x[:, g * c_group:(g + 1) * c_group]
        wg = w[g * k_group:(g + 1) * k_group]
        bg = None if bias is None else bias[g * k_group:(g + 1) * k_group]
        if keep:
            out_g, cache = functional.conv2d_forward(xg, wg, bg, *hyper, workspace=workspace)
            caches.append(cache)
        else:
            out_g = functional.conv2d(xg, wg, bg, *hyper, workspace=workspace)
        out[:, g * k_group:(g + 1) * k_group] = out_g
    return out, (GroupedCache(tuple(caches), geom, groups) if keep else None)


def grouped_backward(dout: np.ndarray, cache: GroupedCache
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dx, dw, db)`` of :func:`grouped_forward`, group by group."""
    geom, groups = cache.geometry, cache.groups
    c_group, k_group = geom.c // groups, geom.k // groups
    dx = np.empty(geom.x_shape, dtype=dout.dtype)
    dw = np.empty((geom.k, c_group, geom.fh, geom.fw), dtype=dout.dtype)
    db = np.empty(geom.k, dtype=dout.dtype)
    for g, group_cache in enumerate(cache.caches):
        filters = slice(g * k_group, (g + 1) * k_group)
        dx_g, dw[filters], db[filters] = functional.conv2d_backward(dout[:, filters],
                                                                     group_cache)
        dx[:, g * c_group:(g + 1) * c_group] = dx_g
    return dx, dw, db
