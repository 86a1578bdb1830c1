"""Per-pixel statistics of polygons on one tile grid, built on the reductions."""

from __future__ import annotations

import numpy as np

from fastraster.model.geometry import RaggedPolygons
from fastraster.model.grid import TileGrid
from fastraster.model.reductions import Batch, NoDataMask, reduction_for
from fastraster.model.stats import Stat, parse_stats


def compute_stats(polys: RaggedPolygons, grid: TileGrid, stats=None, *, centroids=None,
                  attributes=None) -> np.ndarray:
    """Rasterize polygons onto one tile grid; one float64 band per statistic.

    Parameters
    ----------
    polys : RaggedPolygons, shapely geometries or GeoArrow array
        The polygons, in the grid's CRS (anything :func:`fastraster.model.ingest.to_ragged`
        takes).
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
    if not isinstance(polys, RaggedPolygons):
        from fastraster.model.ingest import to_ragged

        polys = to_ragged(polys)
    return compute_bands(polys, grid, parse_stats(stats), centroids=centroids,
                         attributes=attributes)


def compute_bands(polys: RaggedPolygons, grid: TileGrid, stats: tuple[Stat, ...], *,
                  centroids=None, attributes=None) -> np.ndarray:
    """:func:`compute_stats` for statistics already parsed: one batch (the whole tile)
    accumulated by each statistic's reduction, finalized, then ``nodata_val`` applied."""
    if centroids is not None:
        cx, cy = (np.asarray(c, dtype=np.float64) for c in centroids)
        if cx.shape != (len(polys),) or cy.shape != (len(polys),):
            raise ValueError(f"centroids must hold {len(polys)} x and y values")
        centroids = (cx, cy)
    reductions = [reduction_for(s) for s in stats]
    batch = Batch(polys, grid, centroids, attributes)
    out = np.empty((len(stats), grid.height, grid.width))
    for b, red in enumerate(reductions):
        out[b] = red.finalize(red.accumulate(None, batch))
    nodata = [s.nodata_val for s in stats]
    if any(v is not None for v in nodata):
        mask = NoDataMask()
        empty = mask.finalize(mask.accumulate(None, batch))
        for b, v in enumerate(nodata):
            if v is not None:
                np.copyto(out[b], v, where=empty)
    return out
