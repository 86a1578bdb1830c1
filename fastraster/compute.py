"""Per-pixel statistics of polygons on one tile grid: validates, allocates, calls kernels."""

from __future__ import annotations

import numpy as np
import shapely

from fastraster import _kernels as K
from fastraster.geometry import RaggedPolygons, polygonal_part
from fastraster.grid import TileGrid
from fastraster.stats import Stat, parse_stats


class _Tile:
    """Lazily computed pieces shared by the statistics of one tile."""

    def __init__(self, polys: RaggedPolygons, grid: TileGrid, centroids):
        self.polys = polys
        self.grid = grid
        self._centroids = centroids
        self._coverage = None
        self._touched = None
        self._centroid_index = None

    def coverage(self, weights=None):
        """Sum over polygons of weight x (area inside pixel / pixel area), float64 (H, W)."""
        g = self.grid
        unweighted = weights is None
        if unweighted and self._coverage is not None:
            return self._coverage
        if unweighted:
            weights = np.ones(len(self.polys))
        acc = np.zeros((g.height, g.width + 1))
        touched = np.zeros((g.height, g.width), np.uint8)
        K.coverage_accumulate(*self.polys.arrays, np.asarray(weights, np.float64), g.left,
                              g.dx, g.top, g.dy, acc, touched)
        out = np.empty((g.height, g.width))
        K.coverage_finish(acc, touched, unweighted, out)
        if unweighted:
            self._coverage = out
            self._touched = touched
        return out

    @property
    def no_data(self):
        """Pixels where no polygon has positive area and no centroid falls."""
        cov = self.coverage()
        out = np.empty(cov.shape, np.bool_)
        K.no_data_mask(self._touched, cov, self.centroid_index(), out)
        return out

    def centroid_index(self):
        if self._centroid_index is None:
            cx, cy = self.centroids()
            out = np.empty(cx.shape[0], np.int64)
            K.centroid_pixels(cx, cy, self.grid.col_edges, self.grid.row_edges, out)
            self._centroid_index = out
        return self._centroid_index

    def centroids(self):
        if self._centroids is None:
            # GEOS's centroids, from the kernel (same doubles) and from GEOS itself where the
            # kernel cannot promise them. Null and empty geometries have no centroid: NaN,
            # which lands in no pixel.
            n = len(self.polys)
            cx = np.empty(n)
            cy = np.empty(n)
            K.polygon_centroids(*self.polys.arrays, cx, cy)
            unsure = np.flatnonzero(np.isnan(cx))
            if unsure.size:
                geoms = self.polys.take(unsure).to_shapely()
                some = ~shapely.is_empty(geoms)
                c = shapely.centroid(geoms[some])
                cx[unsure[some]], cy[unsure[some]] = shapely.get_x(c), shapely.get_y(c)
            self._centroids = (cx, cy)
        cx, cy = self._centroids
        return (np.ascontiguousarray(cx, dtype=np.float64),
                np.ascontiguousarray(cy, dtype=np.float64))

    def centre_count(self):
        g = self.grid
        wacc = np.zeros((g.height, g.width + 1))
        K.centre_accumulate(*self.polys.arrays, np.ones(len(self.polys)), *g.gdal_inverse(),
                            wacc)
        out = np.empty((g.height, g.width))
        K.prefix_sum_rows(wacc, out)
        return out

    def touching(self, values, mode):
        g = self.grid
        out = np.full((g.height, g.width), np.nan if mode != K.REDUCE_SUM else 0.0)
        K.touching_reduce(*self.polys.arrays, np.asarray(values, np.float64), mode, g.left,
                          g.dx, g.top, g.dy, out, np.zeros((g.height, g.width), np.uint8),
                          np.zeros((g.height, g.width + 1)))
        return out

    def by_centroid(self, values, mode):
        g = self.grid
        out = np.full((g.height, g.width), np.nan if mode != K.REDUCE_SUM else 0.0)
        K.scatter_reduce(self.centroid_index(), np.asarray(values, np.float64), mode, out)
        return out

    def union_coverage(self):
        g = self.grid
        if len(self.polys) == 0:
            return np.zeros((g.height, g.width))
        # Clip first: the union of a tile's worth of small polygons is cheap, and polygons
        # reaching far outside the tile only slow GEOS down.
        box = shapely.box(g.left, g.bottom, g.right, g.top)
        geoms = shapely.intersection(self.polys.to_shapely(), box)
        union = shapely.union_all(geoms)
        sub = _Tile(RaggedPolygons.from_shapely([polygonal_part(union)]), g, None)
        return np.minimum(sub.coverage(), 1.0)


_REDUCE = {"sum": K.REDUCE_SUM, "min": K.REDUCE_MIN, "max": K.REDUCE_MAX}


def _one_stat(t: _Tile, stat: Stat, attributes) -> np.ndarray:
    prop, agg = stat.property, stat.aggregation_method
    n = len(t.polys)
    if prop == "centroids_per_pixel":
        return t.by_centroid(np.ones(n), K.REDUCE_SUM)
    if prop == "polygons_covering_center":
        return t.centre_count()
    if prop == "polygons_touching":
        return t.touching(np.ones(n), K.REDUCE_SUM)
    if prop == "area_per_pixel_area":
        return t.coverage()  # (copied into the output; the cache stays intact)
    if prop == "area_within_pixel":
        return t.coverage() * t.grid.pixel_area
    if prop == "union_area_per_pixel_area":
        return t.union_coverage()
    # An attribute column.
    if attributes is None or prop not in attributes:
        raise ValueError(f"statistic {stat.name!r} needs attribute column {prop!r}, "
                         "which the input does not have")
    v = np.asarray(attributes[prop], dtype=np.float64)
    if v.shape != (n,):
        raise ValueError(f"attribute {prop!r} has {v.shape[0]} values for {n} polygons")
    if stat.weight_by == "count":
        if agg == "count":
            return t.by_centroid(np.ones(n), K.REDUCE_SUM)
        if agg == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                return (t.by_centroid(v, K.REDUCE_SUM)
                        / t.by_centroid(np.ones(n), K.REDUCE_SUM))
        return t.by_centroid(v, _REDUCE[agg])
    # Area-weighted.
    if agg == "sum":
        return t.coverage(v)
    if agg == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            cov = t.coverage()
            return np.where(cov > 0, t.coverage(v) / np.where(cov > 0, cov, 1.0), np.nan)
    if agg == "count":
        return t.touching(np.ones(n), K.REDUCE_SUM)
    return t.touching(v, _REDUCE[agg])


def compute_stats(polys: RaggedPolygons, grid: TileGrid, stats=None, *, centroids=None,
                  attributes=None) -> np.ndarray:
    """Rasterize polygons onto one tile grid; one float64 band per statistic.

    Parameters
    ----------
    polys : RaggedPolygons, shapely geometries or GeoArrow array
        The polygons, in the grid's CRS (anything :func:`fastraster.ingest.to_ragged` takes).
    grid : TileGrid
        Target pixels (row 0 north).
    stats : list of dict or Stat, optional
        PDG statistic configurations (default: ``polygon_count`` and ``coverage``).
    centroids : (array, array), optional
        Centroid x and y per polygon (e.g. the staging columns); else ``shapely.centroid``.
    attributes : mapping of str to array, optional
        Attribute columns named by statistics' ``property``.

    Returns
    -------
    numpy.ndarray, float64, shape (len(stats), height, width)
        Pixels with no data (no polygon area and no centroid) hold the stat's ``nodata_val``
        when one is set; NaN for means, minima and maxima with no contributing polygon.
    """
    stats = parse_stats(stats)
    if not isinstance(polys, RaggedPolygons):
        from fastraster.ingest import to_ragged

        polys = to_ragged(polys)
    if centroids is not None:
        cx, cy = (np.asarray(c, dtype=np.float64) for c in centroids)
        if cx.shape != (len(polys),) or cy.shape != (len(polys),):
            raise ValueError(f"centroids must hold {len(polys)} x and y values")
        centroids = (cx, cy)
    t = _Tile(polys, grid, centroids)
    out = np.empty((len(stats), grid.height, grid.width))
    for b, stat in enumerate(stats):
        out[b] = _one_stat(t, stat, attributes)
    nodata = [s.nodata_val for s in stats]
    if any(v is not None for v in nodata):
        empty = t.no_data
        for b, v in enumerate(nodata):
            if v is not None:
                np.copyto(out[b], v, where=empty)
    return out
