"""PDG's per-polygon staging steps (SEMANTICS §1 of ``pdg-staging-example``), on arrays.

For every chunk of a raw scene, in PDG's order:

1. keep plain Polygons (:func:`polygon_rows`): MultiPolygons, nulls, empties and other
   types are dropped, as ``gdf[gdf.geometry.type == 'Polygon']`` does;
2. simplify in the *input* CRS (:func:`simplify`), before anything else;
3. flag polygons that do not intersect the scene's own footprint (:func:`clip_flags`,
   ``intersects``: touching counts);
4. reproject vertex by vertex to the tile matrix set's CRS (:func:`reproject`);
5. planar centroids in that CRS (:func:`~fastraster.model.geometry.centroids`), GEOS's
   doubles.

Everything is vectorised over the chunk (numpy, the package's kernels, shapely 2's array
functions, one PROJ call); no Python loop runs per polygon. Reading the files is
:mod:`fastraster.io.scenes`' job.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import shapely

from fastraster import kernels as K
from fastraster.model.geometry import RaggedPolygons

#: WKB statuses that mean a corrupt file, not a geometry PDG would merely drop.
CORRUPT = (K.WKB_TRUNCATED, K.WKB_MALFORMED, K.WKB_NONFINITE, K.WKB_SHORT_RING)


def wkb_types(data: np.ndarray, offsets: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The base OGC type code of each WKB geometry (3 Polygon, 6 MultiPolygon...), -1 for
    nulls and geometries too short to hold a header. ISO (1003, 2003, 3003) and EWKB (flag
    bits) variants map to their base type."""
    starts = offsets[:-1]
    ok = valid & (np.diff(offsets) >= 5)
    out = np.full(starts.shape[0], -1, np.int64)
    s = starts[ok]
    if s.size == 0:
        return out
    b = data[s[:, None] + np.arange(5)].astype(np.uint32)
    little = b[:, 0] == 1
    t = np.where(little, b[:, 1] | (b[:, 2] << 8) | (b[:, 3] << 16) | (b[:, 4] << 24),
                 b[:, 4] | (b[:, 3] << 8) | (b[:, 2] << 16) | (b[:, 1] << 24))
    out[ok] = (t & np.uint32(0x0FFFFFFF)) % 1000
    return out


def polygon_rows(data, offsets, valid):
    """PDG's geometry filter on concatenated WKB: the plain, non-empty Polygons.

    ``gdf[gdf.geometry.type == 'Polygon']``: MultiPolygons (even of one part) are dropped,
    not exploded; nulls, empties and every other type are dropped too (an empty Polygon
    passes PDG's filter but lands in no tile, so dropping it changes nothing).

    Returns
    -------
    polys : RaggedPolygons
        The kept Polygons (one part each).
    keep : int64 array
        Their row positions in the input.
    status : int8 array
        The decoder's status of every row (see :data:`CORRUPT` for those that mean a
        corrupt file; the caller names them).
    """
    polys, status = RaggedPolygons.from_wkb(data, offsets, valid)
    n_coords = polys.ring_offsets[polys.part_offsets[polys.geom_offsets]]
    nonempty = np.diff(n_coords) > 0
    keep = np.flatnonzero((wkb_types(data, offsets, valid) == 3) & (status == K.WKB_OK)
                          & nonempty)
    return polys.take(keep), keep, status


def to_polygons(polys: RaggedPolygons) -> np.ndarray:
    """Shapely Polygons from ragged arrays of one-part geometries (no MultiPolygon wrapper,
    so GEOS sees exactly the type PDG's GeoDataFrame holds: simplification treats a
    Polygon and a one-part MultiPolygon alike, but the type is what PDG filtered on)."""
    if len(polys) == 0:
        return np.empty(0, dtype=object)
    coords = np.column_stack([polys.x, polys.y])
    return shapely.from_ragged_array(shapely.GeometryType.POLYGON, coords,
                                     (polys.ring_offsets, polys.part_offsets))


def from_polygons(geoms: np.ndarray) -> RaggedPolygons:
    """Ragged arrays (MultiPolygon layout, one part each) of shapely Polygons.

    The same arrays as ``shapely.to_ragged_array``, built from ``get_coordinates`` and the
    vertex and hole counts: only polygons with holes are asked for their rings, so no
    Python object is made per ring of the others (``to_ragged_array`` makes one per ring:
    2.7 against 0.8 us per polygon on the example's simplified polygons, measured cold).
    """
    if geoms.size == 0:
        return RaggedPolygons.empty()
    types = shapely.get_type_id(geoms)
    if np.any(types != shapely.GeometryType.POLYGON):
        raise ValueError("expected Polygons")
    coords = shapely.get_coordinates(geoms)
    n_coords = shapely.get_num_coordinates(geoms)
    n_rings = shapely.get_num_interior_rings(geoms) + 1
    n_rings[n_coords == 0] = 0  # an empty Polygon has no ring
    first = np.cumsum(n_rings) - n_rings  # index of each polygon's exterior ring
    ring_len = np.empty(int(n_rings.sum()), np.int64)
    single = n_rings == 1
    ring_len[first[single]] = n_coords[single]
    holed = np.flatnonzero(n_rings > 1)
    if holed.size:
        lengths = shapely.get_num_coordinates(shapely.get_rings(geoms[holed]))
        k = n_rings[holed]
        ring_len[np.repeat(first[holed] - (np.cumsum(k) - k), k)
                 + np.arange(int(k.sum()))] = lengths
    ring_offsets = np.zeros(ring_len.size + 1, np.int64)
    np.cumsum(ring_len, out=ring_offsets[1:])
    part_offsets = np.zeros(geoms.size + 1, np.int64)
    np.cumsum(n_rings, out=part_offsets[1:])
    return RaggedPolygons(np.ascontiguousarray(coords[:, 0]), np.ascontiguousarray(coords[:, 1]),
                          ring_offsets, part_offsets, np.arange(geoms.size + 1, dtype=np.int64))


def simplify(geoms: np.ndarray, tolerance) -> np.ndarray:
    """PDG's simplification: GEOS's topology-preserving Douglas-Peucker in the input CRS
    (``GeoSeries.simplify`` = ``shapely.simplify(..., preserve_topology=True)``)."""
    if tolerance is None:
        return geoms
    return shapely.simplify(geoms, tolerance, preserve_topology=True)


def clip_flags(geoms: np.ndarray, footprint) -> np.ndarray:
    """True for polygons that do *not* intersect the footprint (PDG flags them, never drops
    them). ``intersects``, so a polygon touching the footprint is kept unflagged."""
    if geoms.size == 0:
        return np.zeros(0, bool)
    shapely.prepare(footprint)
    return ~shapely.intersects(footprint, geoms)


@lru_cache(maxsize=256)
def transformer(src: str, dst: str):
    """The pyproj transformer geopandas' ``to_crs`` uses (``always_xy=True``), cached."""
    from pyproj import Transformer

    return Transformer.from_crs(src, dst, always_xy=True)


@lru_cache(maxsize=256)
def same_crs(a: str, b: str) -> bool:
    from pyproj import CRS

    return CRS.from_user_input(a) == CRS.from_user_input(b)


def reproject(polys: RaggedPolygons, src: str, dst: str) -> RaggedPolygons:
    """Transform every vertex from ``src`` to ``dst`` (x = longitude), no densification, as
    geopandas' ``to_crs`` does.

    Raises
    ------
    ValueError
        If some vertices cannot be transformed (PROJ gives inf), with their number.
    """
    if same_crs(src, dst) or len(polys) == 0:
        return polys
    x, y = transformer(src, dst).transform(polys.x, polys.y)
    x = np.ascontiguousarray(x, np.float64)
    y = np.ascontiguousarray(y, np.float64)
    bad = ~(np.isfinite(x) & np.isfinite(y))
    if bad.any():
        raise ValueError(f"{int(bad.sum())} vertices cannot be transformed to {dst}")
    return RaggedPolygons(x, y, polys.ring_offsets, polys.part_offsets, polys.geom_offsets)


def transform_geometry(geom, src: str, dst: str):
    """One shapely geometry transformed vertex by vertex (``GeoSeries.to_crs``)."""
    if same_crs(src, dst):
        return geom
    t = transformer(src, dst)
    return shapely.transform(geom, lambda c: np.column_stack(t.transform(c[:, 0], c[:, 1])))


def bounds(polys: RaggedPolygons) -> np.ndarray:
    """(n, 4) bounding boxes ``minx, miny, maxx, maxy`` of non-empty geometries."""
    n = len(polys)
    if n == 0:
        return np.empty((0, 4))
    first = polys.ring_offsets[polys.part_offsets[polys.geom_offsets[:-1]]]
    out = np.empty((n, 4))
    out[:, 0] = np.minimum.reduceat(polys.x, first)
    out[:, 1] = np.minimum.reduceat(polys.y, first)
    out[:, 2] = np.maximum.reduceat(polys.x, first)
    out[:, 3] = np.maximum.reduceat(polys.y, first)
    return out
