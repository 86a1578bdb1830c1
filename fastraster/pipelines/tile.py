"""One tile, from a file, a GeoDataFrame or shapely geometries, to a float64 array of bands."""

from __future__ import annotations

import os
import time
import warnings

import numpy as np

from fastraster.io.staged import (
    CENTROID_COLUMNS,
    DUPLICATED_COLUMN,
    InputError,
    TileData,
    check_crs,
    read_staged,
)
from fastraster.model.compute import compute_bands
from fastraster.model.geometry import RaggedPolygons
from fastraster.model.grid import TileGrid
from fastraster.model.repair import repair_invalid
from fastraster.model.stats import attribute_columns
from fastraster.pipelines.options import RasterizeOptions


def prepare(data: TileData, *, deduplicate: bool = False, validate: str = "repair"):
    """Drop staging duplicates (if asked) and repair or refuse invalid polygons.

    Returns ``(polygons, centroids, attributes, info)``; ``info`` counts what was done.
    """
    polys, centroids, attrs = data.polygons, data.centroids, data.attributes
    dropped = 0
    if deduplicate and data.duplicated is not None and data.duplicated.any():
        keep = ~data.duplicated
        dropped = int(data.duplicated.sum())
        polys = polys.take(keep)
        if centroids is not None:
            centroids = tuple(c[keep] for c in centroids)
        attrs = {k: v[keep] for k, v in attrs.items()}
    # Repaired polygons without staging centroids get theirs from the repaired geometry.
    polys, repaired = repair_invalid(polys, validate)
    return polys, centroids, attrs, {"polygons": len(polys), "duplicates_dropped": dropped,
                                     "repaired": repaired}


def rasterize_file(path, grid: TileGrid, options: RasterizeOptions, *, warn: bool = True):
    """Read one staged file and compute its bands on ``grid``.

    Returns ``(array, info)`` where ``info`` holds polygon counts, phase wall and CPU times
    (``read_s``, ``compute_s``, ``read_cpu_s``, ``compute_cpu_s``; CPU time of this thread),
    the bytes of geometry read, and ``warnings``: messages ("<path>: ...") about problems
    that did not stop the file (no CRS, features without geometry, no polygon reaching
    the tile). With ``warn`` they are also issued as ``UserWarning``; ``rasterize_dir``
    puts them in its report instead (``warnings`` is not thread-safe to capture).

    Raises
    ------
    InputError
        With the file name, for unreadable files, wrong geometry types, a foreign CRS,
        invalid polygons under ``validate="error"`` or missing attribute columns.
    """
    stats = options.stats
    t0, c0 = time.perf_counter(), time.thread_time()
    data = read_staged(path, attributes=attribute_columns(stats),
                       centroid_columns=options.centroid_columns,
                       duplicated_column=(options.duplicated_column if options.deduplicate
                                          else None))
    notes = list(data.warnings)
    no_crs = check_crs(path, data.crs, grid, warn=False)
    if no_crs:
        notes.append(no_crs)
    t1, c1 = time.perf_counter(), time.thread_time()
    try:
        polys, centroids, attrs, info = prepare(data, deduplicate=options.deduplicate,
                                                validate=options.validate)
        array = compute_bands(polys, grid, stats, centroids=centroids, attributes=attrs)
    except InputError:
        raise
    except ValueError as exc:
        raise InputError(f"{os.fspath(path)}: {exc}") from exc
    t2, c2 = time.perf_counter(), time.thread_time()
    outside = _nothing_reaches_tile(polys, grid, array, stats)
    if outside:
        notes.append(f"{os.fspath(path)}: {outside}")
    if warn:
        for msg in notes:
            warnings.warn(msg, stacklevel=2)
    info.update(read_s=t1 - t0, compute_s=t2 - t1, read_cpu_s=c1 - c0, compute_cpu_s=c2 - c1,
                bytes_read=data.bytes_read, warnings=notes)
    return array, info


def _nothing_reaches_tile(polys: RaggedPolygons, grid: TileGrid, array, stats) -> str | None:
    """Why the tile came out empty when that suggests a misplaced file, else None.

    Cheap on normal tiles: the bands are looked at first (30 us on the dense benchmark
    tile, 0.1 % of its end-to-end time, 60 us at worst); only an empty
    result pays for the bounds of the coordinates.
    """
    for band, stat in zip(array, stats):
        empty = (band == 0) | np.isnan(band)
        if stat.nodata_val is not None:
            empty |= band == stat.nodata_val
        if not empty.all():
            return None
    if len(polys) == 0:
        return "holds no polygons; the output is empty"
    if polys.x.size == 0:
        return None  # only features without geometry: read_staged has said so
    west, east = float(polys.x.min()), float(polys.x.max())
    south, north = float(polys.y.min()), float(polys.y.max())
    if west >= grid.right or east <= grid.left or south >= grid.top or north <= grid.bottom:
        return (f"none of its {len(polys)} polygons reaches tile {grid.tile} (they lie in "
                f"x {west:.10g}..{east:.10g}, y {south:.10g}..{north:.10g}; the tile is x "
                f"{grid.left:.10g}..{grid.right:.10g}, y {grid.bottom:.10g}..{grid.top:.10g})"
                "; the output is empty: is the file in the right <z>/<x>/<y> folder?")
    return None


def rasterize_tile(path_or_polygons, tile, *, tms="WGS1984Quad", tile_size=256, stats=None,
                   centroids=None, attributes=None, deduplicate=False, validate="repair"):
    """Per-pixel statistics of polygons on one tile, as a float64 array (bands, H, W).

    Parameters
    ----------
    path_or_polygons : str, os.PathLike, GeoDataFrame or array of shapely geometries
        A staged vector file (any format GDAL reads), a GeoDataFrame (its staging centroid,
        duplicate and attribute columns are used like a file's), or Polygons/MultiPolygons.
        Coordinates must be in the tile matrix set's CRS.
    tile : (x, y, z)
        The tile of ``tms`` to rasterize onto.
    tms : str
        Tile matrix set id: ``"WGS1984Quad"``, ``"WorldCRS84Quad"`` or any morecantile id.
    tile_size : int or (height, width)
        Pixels per tile side.
    stats : list of dict, optional
        PDG statistic configurations; default polygon_count and coverage.
    centroids : (x array, y array), optional
        Polygon centroids for the count statistics; default: the staging columns if present,
        else ``shapely.centroid`` of each geometry.
    attributes : mapping of str to array, optional
        Attribute values for statistics on columns (arrays of geometries only).
    deduplicate : bool
        Skip rows whose ``staging_duplicated`` is true (PDG's deduplicate_at "raster").
    validate : {"repair", "error", "none"}
        What to do with invalid polygons (see :func:`fastraster.model.repair.repair_invalid`).

    Returns
    -------
    numpy.ndarray, float64, shape (n_stats, height, width); row 0 is the tile's north edge.
    """
    options = RasterizeOptions.create(stats=stats, tile_size=tile_size,
                                      deduplicate=deduplicate, validate=validate,
                                      check_colors=False)  # an array: no pictures
    grid = TileGrid.from_tile(tile, tms, options.tile_size)
    if isinstance(path_or_polygons, (str, os.PathLike)):
        array, _ = rasterize_file(path_or_polygons, grid, options, warn=True)
        if centroids is not None:
            warnings.warn("centroids= is ignored for a file; its staging columns are used",
                          stacklevel=2)
        return array
    data = _data_from_objects(path_or_polygons, options.stats, centroids, attributes)
    polys, cents, attrs, _ = prepare(data, deduplicate=deduplicate, validate=validate)
    return compute_bands(polys, grid, options.stats, centroids=cents, attributes=attrs)


def _data_from_objects(obj, stats, centroids, attributes) -> TileData:
    columns = getattr(obj, "columns", None)
    if columns is not None and hasattr(obj, "geometry"):  # a GeoDataFrame
        geoms = np.asarray(obj.geometry.values, dtype=object)
        if centroids is None and all(c in columns for c in CENTROID_COLUMNS):
            centroids = tuple(np.asarray(obj[c], np.float64) for c in CENTROID_COLUMNS)
        dup = (np.asarray(obj[DUPLICATED_COLUMN], bool) if DUPLICATED_COLUMN in columns
               else None)
        attrs = dict(attributes or {})
        for c in attribute_columns(stats):
            if c not in attrs:
                if c not in columns:
                    raise ValueError(f"the GeoDataFrame has no column {c!r}, which a "
                                     "statistic needs")
                attrs[c] = np.asarray(obj[c], np.float64)
        crs = obj.crs.to_wkt() if getattr(obj, "crs", None) is not None else None
    else:
        geoms = np.asarray(obj, dtype=object).ravel()
        dup = None
        attrs = {k: np.asarray(v, np.float64) for k, v in (attributes or {}).items()}
        crs = None
    polys = RaggedPolygons.from_shapely(geoms)
    if centroids is not None:
        centroids = tuple(np.asarray(c, np.float64) for c in centroids)
    return TileData(polys, centroids, attrs, dup, crs)
