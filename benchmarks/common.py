"""Shared data and baselines for the benchmarks (fixed seeds, generated once per process)."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from functools import cache
from pathlib import Path

import numpy as np

DENSE_TILE = (1524, 910, 13)
TMS = "WorldCRS84Quad"


def median_ms(fn, repeats=7, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


@cache
def dense_tile(spacing_m=9.0, seed=0) -> str:
    """A staged z13 tile of ~25k IWP-like polygons of ~30 vertices (cached on disk)."""
    from fastraster.sample import make_sample

    root = Path(os.environ.get("FASTRASTER_BENCH_DIR", tempfile.gettempdir())) / (
        f"fastraster-bench-{spacing_m}-{seed}")
    path = root / TMS / "13" / str(DENSE_TILE[0]) / f"{DENSE_TILE[1]}.gpkg"
    if not path.exists():
        make_sample(root, tiles=(DENSE_TILE,), spacing_m=spacing_m, fill=1.0, vertices=30,
                    seed=seed)
    return str(path)


@cache
def loaded(path):
    """(grid, polygons, centroids, shapely geometries, GeoDataFrame) of one staged file."""
    import pyogrio

    from fastraster.io.staged import read_staged
    from fastraster.io.tilepaths import parse_tile_path
    from fastraster.model.grid import TileGrid

    f = parse_tile_path(path)
    grid = TileGrid.from_tile(f.tile, f.tms)
    data = read_staged(path)
    df = pyogrio.read_dataframe(path)
    return grid, data.polygons, data.centroids, df.geometry.values, df


PDG_STATS = None  # fastraster's defaults: polygon_count (centroids) and coverage


def ours_kernels(grid, polys, centroids):
    from fastraster.model.compute import compute_stats

    return compute_stats(polys, grid, PDG_STATS, centroids=centroids)


def rasterio_count(grid, geoms):
    from rasterio.features import MergeAlg, rasterize

    return rasterize(((g, 1) for g in geoms), out_shape=(grid.height, grid.width),
                     transform=grid.transform, merge_alg=MergeAlg.add, dtype="float64")


def exactextract_coverage(grid, df):
    """exactextract's per-cell coverage fractions summed into a grid (its fastest path we found:
    a GeoDataFrame source, ``cell_id`` + ``coverage`` ops, pandas output, bincount)."""
    from exactextract import exact_extract
    from exactextract.raster import NumPyRasterSource

    rast = NumPyRasterSource(np.zeros((grid.height, grid.width)), grid.left, grid.bottom,
                             grid.right, grid.top)
    res = exact_extract(rast, df, ["cell_id", "coverage"], output="pandas")
    ids = np.concatenate(res["cell_id"].to_numpy())
    cov = np.concatenate(res["coverage"].to_numpy())
    return np.bincount(ids, cov, minlength=grid.height * grid.width).reshape(grid.height,
                                                                            grid.width)


def shapely_clip_coverage(grid, geoms):
    """The geopandas-overlay approach: STRtree candidates, intersection, area per cell."""
    import shapely

    rows, cols = np.divmod(np.arange(grid.height * grid.width), grid.width)
    boxes = shapely.box(grid.left + cols * grid.dx, grid.top - (rows + 1) * grid.dy,
                        grid.left + (cols + 1) * grid.dx, grid.top - rows * grid.dy)
    ib, ig = shapely.STRtree(geoms).query(boxes, predicate="intersects")
    area = shapely.area(shapely.intersection(boxes[ib], geoms[ig]))
    return np.bincount(ib, area, minlength=boxes.size).reshape(grid.height, grid.width) / (
        grid.dx * grid.dy)


def read_floor(path):
    """pyogrio reading just the columns the default statistics need (Arrow, no decoding)."""
    import pyogrio.raw

    return pyogrio.raw.read_arrow(path, columns=["staging_centroid_x", "staging_centroid_y"])


@cache
def _wkb_column(path):
    import pyogrio.raw

    from fastraster.model.geometry import wkb_buffers

    meta, table = pyogrio.raw.read_arrow(path, columns=[])
    return wkb_buffers(table[meta.get("geometry_name") or "wkb_geometry"])


def decode_wkb(path):
    """fastraster's WKB decoding alone, on the already-read Arrow buffers of ``path``."""
    from fastraster.model.geometry import RaggedPolygons

    return RaggedPolygons.from_wkb(*_wkb_column(path))


def write_floor(grid, array, out):
    """rasterio writing the 2-band float32 GeoTIFF with fastraster's profile, not atomically."""
    import rasterio

    from fastraster.io.geotiff import geotiff_profile

    profile = geotiff_profile(grid, array.shape[0], "float32", 0)
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(array.astype("float32"))


def pdgraster_method(path, grid, out):
    """pdgraster's per-tile algorithm, re-implemented here for timing (pdgraster itself is not
    on PyPI): geopandas read; polygons overlaid with row strips then column strips
    (``GeoDataFrame.overlay``), area per piece / cell area summed per cell; centroid counts
    by ``np.searchsorted`` on ``np.linspace`` edges; a 2-band float64 GeoTIFF written."""
    import geopandas as gpd
    import rasterio
    import shapely

    gdf = gpd.read_file(path)
    h, w = grid.height, grid.width
    rows = np.linspace(grid.bottom, grid.top, h + 1)[::-1]
    cols = np.linspace(grid.left, grid.right, w + 1)
    strips_r = gpd.GeoDataFrame({"r": np.arange(h)}, crs=gdf.crs, geometry=shapely.box(
        grid.left, rows[1:], grid.right, rows[:-1]))
    strips_c = gpd.GeoDataFrame({"c": np.arange(w)}, crs=gdf.crs, geometry=shapely.box(
        cols[:-1], grid.bottom, cols[1:], grid.top))
    pieces = gdf.overlay(strips_r, how="intersection").overlay(strips_c, how="intersection")
    cell_area = abs((rows[0] - rows[1]) * (cols[1] - cols[0]))
    cov = np.zeros(h * w)
    np.add.at(cov, pieces["r"].to_numpy() * w + pieces["c"].to_numpy(),
              shapely.area(pieces.geometry.values) / cell_area)
    cent = shapely.centroid(gdf.geometry.values)
    ci = np.searchsorted(cols, shapely.get_x(cent)) - 1
    ri = np.searchsorted(-rows, -shapely.get_y(cent)) - 1
    ok = (ri >= 0) & (ri < h) & (ci >= 0) & (ci < w)
    count = np.bincount(ri[ok] * w + ci[ok], minlength=h * w)
    arr = np.stack([count.reshape(h, w), cov.reshape(h, w)]).astype("float64")
    with rasterio.open(out, "w", driver="GTiff", dtype="float64", count=2, height=h, width=w,
                       crs=gdf.crs.to_wkt(), transform=grid.transform) as dst:
        dst.write(arr)
    return arr
