"""Slow, obviously-correct reference implementations for the fastraster kernels.

Each function here is the *independent reference* for one statistic: it uses only shapely
(GEOS overlay), numpy and rasterio, never anything from ``fastraster`` other than the grid's
plain attributes (``left``, ``top``, ``dx``, ``dy``, ``width``, ``height``, ``transform``,
``col_edges``, ``row_edges``), which define the pixel convention itself:

* pixel coordinates ``px = (x - grid.left) / grid.dx`` and ``py = (grid.top - y) / grid.dy``;
* pixel ``(r, c)`` is the square ``[c, c + 1] x [r, r + 1]`` in pixel coordinates, row 0 north.

* :func:`coverage_ref` - the independent reference for ``area_per_pixel_area``: exact area of
  each polygon inside each pixel (GEOS intersection with the pixel box), summed over polygons.
* :func:`touching_ref` - the independent reference for ``polygons_touching``: the number of
  polygons whose GEOS intersection with the pixel box has positive area.
* :func:`centroid_count_ref` - the independent reference for ``centroids_per_pixel``: PDG's
  ``np.searchsorted`` rule on the grid's pixel edges, counted with ``np.bincount``.
* :func:`centre_count_ref` - the independent reference for ``polygons_covering_center``:
  ``rasterio.features.rasterize`` with ``MergeAlg.add`` (GDAL's scanline fill).
* :func:`union_coverage_ref` - the independent reference for ``union_area_per_pixel_area``.
* :func:`attribute_ref` - the independent reference for attribute statistics, a plain loop
  over polygons built on the references above.
"""

from __future__ import annotations

import numpy as np
import shapely
from rasterio.enums import MergeAlg
from rasterio.features import rasterize


def _present(geoms):
    """The non-null, non-empty geometries of ``geoms`` (as an object array)."""
    geoms = np.asarray(list(geoms) if not isinstance(geoms, np.ndarray) else geoms,
                       dtype=object).ravel()
    if geoms.size == 0:
        return geoms
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    return geoms[keep]


def to_pixel(geoms, grid):
    """Geometries transformed to pixel coordinates (x east in pixels, y down in pixels)."""

    def f(c):
        return np.column_stack([(c[:, 0] - grid.left) / grid.dx, (grid.top - c[:, 1]) / grid.dy])

    return shapely.transform(np.asarray(geoms, dtype=object), f)


def pixel_boxes(grid):
    """The pixel squares in pixel coordinates, flat in row-major order, and an STRtree."""
    rows, cols = np.divmod(np.arange(grid.height * grid.width), grid.width)
    boxes = shapely.box(cols, rows, cols + 1.0, rows + 1.0)
    return boxes, shapely.STRtree(boxes)


def intersection_areas(geoms, grid):
    """Per polygon, the area (in pixel units) of its intersection with every pixel.

    Returns an array ``(n_present, height, width)`` for the non-null, non-empty geometries in
    order.
    """
    geoms = _present(geoms)
    boxes, tree = pixel_boxes(grid)
    out = np.zeros((len(geoms), grid.height, grid.width))
    for i, g in enumerate(to_pixel(geoms, grid)):
        cand = tree.query(g, predicate="intersects")
        if cand.size == 0:
            continue
        areas = shapely.area(shapely.intersection(boxes[cand], g))
        out[i].reshape(-1)[cand] = areas
    return out


def coverage_ref(geoms, grid):
    """Independent reference for ``area_per_pixel_area`` (fraction of each pixel covered,
    summed over polygons), via GEOS intersections of each polygon with each pixel box."""
    return intersection_areas(geoms, grid).sum(axis=0)


def touching_ref(geoms, grid):
    """Independent reference for ``polygons_touching``: the number of polygons whose
    intersection with the pixel has positive area (same GEOS intersections as coverage)."""
    return (intersection_areas(geoms, grid) > 0).sum(axis=0).astype(np.float64)


def centroid_index_ref(cx, cy, grid):
    """Flat pixel index of each centroid by PDG's searchsorted rule, -1 when outside."""
    cx = np.asarray(cx, dtype=np.float64)
    cy = np.asarray(cy, dtype=np.float64)
    col = np.searchsorted(grid.col_edges, cx) - 1
    row = np.searchsorted(-grid.row_edges, -cy) - 1
    ok = (col >= 0) & (col < grid.width) & (row >= 0) & (row < grid.height)
    return np.where(ok, row * grid.width + col, -1)


def centroid_count_ref(cx, cy, grid):
    """Independent reference for ``centroids_per_pixel``: PDG's rule
    ``col = searchsorted(col_edges, cx) - 1``, ``row = searchsorted(-row_edges, -cy) - 1``,
    centroids outside ``[0, W) x [0, H)`` dropped, counted with ``np.bincount``."""
    idx = centroid_index_ref(cx, cy, grid)
    counts = np.bincount(idx[idx >= 0], minlength=grid.height * grid.width)
    return counts.reshape(grid.height, grid.width).astype(np.float64)


def centre_count_ref(geoms, grid):
    """Independent reference for ``polygons_covering_center``: ground truth is
    ``rasterio.features.rasterize(..., merge_alg=MergeAlg.add)`` with burn value 1."""
    geoms = _present(geoms)
    shape = (grid.height, grid.width)
    if len(geoms) == 0:
        return np.zeros(shape)
    return rasterize(((g, 1) for g in geoms), out_shape=shape, transform=grid.transform,
                     merge_alg=MergeAlg.add, dtype="float64", fill=0)


def union_coverage_ref(geoms, grid):
    """Independent reference for ``union_area_per_pixel_area``: coverage of the GEOS union."""
    geoms = _present(geoms)
    if len(geoms) == 0:
        return np.zeros((grid.height, grid.width))
    return coverage_ref([shapely.union_all(geoms)], grid)


def attribute_ref(geoms, values, grid, weight_by, agg, cx=None, cy=None):
    """Independent reference for attribute statistics, a loop over polygons.

    ``weight_by="count"``: polygons are assigned to their centroid pixel (searchsorted rule)
    and ``sum/mean/min/max/count`` are taken over them. ``weight_by="area"``: ``sum`` is
    ``sum_i v_i * coverage_i``, ``mean`` that divided by ``sum_i coverage_i``, and
    ``min/max/count`` are over the polygons touching the pixel with positive area. Pixels
    with no contributing polygon hold 0 for sum/count and NaN for mean/min/max.
    """
    geoms = np.asarray(geoms, dtype=object)
    values = np.asarray(values, dtype=np.float64)
    H, W = grid.height, grid.width
    s = np.zeros((H, W))
    n = np.zeros((H, W))
    w = np.zeros((H, W))
    lo = np.full((H, W), np.nan)
    hi = np.full((H, W), np.nan)
    if weight_by == "count":
        if cx is None:
            c = shapely.centroid(geoms)
            cx, cy = shapely.get_x(c), shapely.get_y(c)
        idx = centroid_index_ref(cx, cy, grid)
        for i, k in enumerate(idx):
            if k < 0:
                continue
            r, col = divmod(int(k), W)
            v = values[i]
            s[r, col] += v
            n[r, col] += 1
            lo[r, col] = v if np.isnan(lo[r, col]) else min(lo[r, col], v)
            hi[r, col] = v if np.isnan(hi[r, col]) else max(hi[r, col], v)
    else:
        for i, g in enumerate(geoms):
            if g is None or g.is_empty:
                continue
            a = intersection_areas([g], grid)[0]
            v = values[i]
            s += v * a
            w += a
            for r, col in zip(*np.nonzero(a > 0)):
                n[r, col] += 1
                lo[r, col] = v if np.isnan(lo[r, col]) else min(lo[r, col], v)
                hi[r, col] = v if np.isnan(hi[r, col]) else max(hi[r, col], v)
    if agg == "sum":
        return s
    if agg == "count":
        return n
    if agg == "min":
        return lo
    if agg == "max":
        return hi
    if agg == "mean":
        den = n if weight_by == "count" else w
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, s / np.where(den > 0, den, 1.0), np.nan)
    raise ValueError(agg)
