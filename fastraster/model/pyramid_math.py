"""Lower zoom levels as array arithmetic: each parent tile from its four children, reduced
2×2 per statistic.

A parent tile at zoom ``z`` covers the four tiles ``(2x + i, 2y + j, z + 1)``; with the same
pixel count per tile, each parent pixel is exactly one 2×2 block of one child, so the
reduction is plain array arithmetic (no resampling weights, no grid misalignment).
"""

from __future__ import annotations

import numpy as np

from fastraster.model.stats import RESAMPLING, Stat

#: 2×2 reductions, by a statistic's ``resampling_method``.
METHODS = RESAMPLING


def _empty_mask(q: np.ndarray, nodata) -> np.ndarray:
    empty = np.isnan(q)
    if nodata is not None and not np.isnan(nodata):
        empty |= q == nodata
    return empty


def reduce_2x2(a, method: str, nodata=None) -> np.ndarray:
    """Reduce each 2×2 block of the last two axes of ``a`` to one value (float64).

    A pixel is *empty* when it is NaN or equals ``nodata`` (when ``nodata`` is not None).

    ``sum``
        Σ of the non-empty pixels.
    ``average``
        Σ of the non-empty pixels / 4: an empty pixel counts as 0 (the area average that
        coverage needs, and what pdgraster's GDAL ``average`` gives on its GeoTIFFs, which
        carry no nodata tag).
    ``mean``
        Σ / number of non-empty pixels (GDAL ``average`` over a nodata-tagged raster).
    ``min``, ``max``
        Over the non-empty pixels.
    ``mode``
        The most frequent non-empty value; of tied values, the one whose count reaches the
        maximum first when the block is scanned in row-major order (north-west, north-east,
        south-west, south-east), as GDAL's mode does (so NW, NE, NE, NW gives the NE value).
    ``nearest``
        The south-east pixel of the block (GDAL's choice for an exact 2× reduction).

    A block with no non-empty pixel gets ``nodata`` (NaN when ``nodata`` is None).
    """
    a = np.asarray(a, dtype=np.float64)
    if a.ndim < 2 or a.shape[-1] % 2 or a.shape[-2] % 2:
        raise ValueError(f"need an array whose last two axes are even, not {a.shape}")
    if method not in METHODS:
        raise ValueError(f"resampling method must be one of {METHODS}, not {method!r}")
    nw, ne, sw, se = (a[..., 0::2, 0::2], a[..., 0::2, 1::2],
                      a[..., 1::2, 0::2], a[..., 1::2, 1::2])
    if method in ("sum", "average") and (nodata is None or nodata == 0) \
            and not np.isnan(a).any():
        # Fast path (PDG's counts and coverage): empty pixels are 0, so they add nothing,
        # and an all-empty block sums to 0 = the fill. Same arithmetic as below.
        total = ((nw + ne) + sw) + se
        return total / 4.0 if method == "average" else total
    # q[k]: the k-th pixel of every block, k in row-major order within the block.
    q = np.stack([a[..., 0::2, 0::2], a[..., 0::2, 1::2],
                  a[..., 1::2, 0::2], a[..., 1::2, 1::2]])
    empty = _empty_mask(q, nodata)
    fill = np.nan if nodata is None else float(nodata)
    n = 4 - empty.sum(axis=0)
    if method == "nearest":
        return np.where(empty[3], fill, q[3])
    if method in ("sum", "average", "mean"):
        data = np.where(empty, 0.0, q)
        total = ((data[0] + data[1]) + data[2]) + data[3]
        if method == "average":
            total = total / 4.0
        elif method == "mean":
            total = total / np.maximum(n, 1)
        return np.where(n > 0, total, fill)
    if method in ("min", "max"):
        if method == "min":
            out = np.where(empty, np.inf, q).min(axis=0)
        else:
            out = np.where(empty, -np.inf, q).max(axis=0)
        return np.where(n > 0, out, fill)
    # mode: the running count of each pixel's value up to and including it; the first
    # pixel whose running count is the block's maximum holds the value GDAL picks.
    counts = np.zeros(q.shape, dtype=np.int8)
    for k in range(4):
        for j in range(k + 1):
            counts[k] += (q[j] == q[k]) & ~empty[j]
    counts[empty] = 0
    pick = np.argmax(counts, axis=0)
    out = np.take_along_axis(q, pick[None], axis=0)[0]
    return np.where(n > 0, out, fill)


def stat_method(stat: Stat) -> str:
    """A statistic's 2×2 method (``sum`` for counts, ``average`` otherwise, if unset)."""
    if stat.resampling_method:
        return stat.resampling_method
    if stat.weight_by == "count" and stat.aggregation_method in ("sum", "count"):
        return "sum"
    return "average"


def band_stats(descriptions, stats: tuple[Stat, ...]) -> list[Stat]:
    """The statistic of each band of a GeoTIFF, matched by band description (= stat name).

    Bands without descriptions are matched by position when the counts agree.

    Raises
    ------
    ValueError
        If a band names no configured statistic.
    """
    by_name = {s.name: s for s in stats}
    descriptions = list(descriptions)
    if all(d is None for d in descriptions) and len(descriptions) == len(stats):
        return list(stats)
    out = []
    for i, d in enumerate(descriptions):
        if d not in by_name:
            raise ValueError(f"band {i + 1} ({d!r}) is none of the statistics "
                             f"{sorted(by_name)}; pass stats= (or --config) naming it")
        out.append(by_name[d])
    return out


def children_of(tile) -> list[tuple[int, int, int]]:
    """The four children of ``(x, y, z)``: NW, NE, SW, SE."""
    x, y, z = tile
    return [(2 * x, 2 * y, z + 1), (2 * x + 1, 2 * y, z + 1),
            (2 * x, 2 * y + 1, z + 1), (2 * x + 1, 2 * y + 1, z + 1)]


def parent_of(tile) -> tuple[int, int, int]:
    x, y, z = tile
    if z <= 0:
        raise ValueError(f"tile {tuple(tile)} has no parent")
    return (x // 2, y // 2, z - 1)


def parent_from_children(children, stats) -> np.ndarray:
    """The parent array (bands, h, w) from its children, a list of 4 arrays or None (NW,
    NE, SW, SE; each (bands, h, w)). Missing children count as empty."""
    present = [c for c in children if c is not None]
    if not present:
        raise ValueError("a parent needs at least one child")
    bands, h, w = present[0].shape
    stats = list(stats)
    if len(stats) != bands:
        raise ValueError(f"{bands} bands but {len(stats)} statistics")
    if h % 2 or w % 2:
        raise ValueError(f"tiles of {h} x {w} pixels cannot be halved")
    hh, hw = h // 2, w // 2
    out = np.empty((bands, h, w), dtype=np.float64)
    for b, stat in enumerate(stats):
        # Each parent pixel is a 2x2 block of one child: reduce each child into its
        # quadrant; a missing child's quadrant is what an all-empty child reduces to.
        fill = 0.0 if stat.nodata_val is None else float(stat.nodata_val)
        method = stat_method(stat)
        for k, child in enumerate(children):
            r, c = divmod(k, 2)
            quadrant = out[b, r * hh:(r + 1) * hh, c * hw:(c + 1) * hw]
            if child is None:
                quadrant[...] = reduce_2x2(np.full((2, 2), fill), method, stat.nodata_val)
                continue
            if child.shape != (bands, h, w):
                raise ValueError(f"children differ in shape: {child.shape} and "
                                 f"{(bands, h, w)}")
            quadrant[...] = reduce_2x2(child[b], method, stat.nodata_val)
    return out
