"""A slow, literal re-implementation of PDG's staging rules (SEMANTICS §1-§4 of
``pdg-staging-example``), the independent reference for :func:`fastraster.rasterize_sources`.

It follows PDG's code path step by step with geopandas, one file at a time, a Python loop
per polygon and per tile, and shares no code with ``rasterize_sources``:

* ``gpd.read_file``; ``gdf[gdf.geometry.type == 'Polygon']``;
* ``GeoSeries.simplify(tol)`` in the input CRS;
* the clip as PDG's ``sjoin(footprint, how='left', predicate='intersects')`` flag;
* ``set_crs(input_crs, allow_override=True)``, ``to_crs(tms crs)``;
* the tiles each polygon ``intersects`` (exact boxes of the quad grid, tested one by one);
* per tile, for every ``itertools.combinations`` pair of sorted file names with footprints,
  the rows of the less preferred file that intersect ``fp1.intersection(fp2)`` (EPSG:4326)
  are flagged; preference by the keep rules, ties to the name that sorts last.

The rasters of a tile are then :func:`tests.reference.centroid_count_ref` of the unflagged
rows' GEOS centroids and :func:`tests.reference.coverage_ref` (shapely clipping per pixel).
"""

from __future__ import annotations

import functools
import itertools
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely


def _rank(names, fps, keep_rules):
    def cmp(a, b):
        for col, order in keep_rules:
            va, vb = fps[a][col].values[0], fps[b][col].values[0]
            if va == vb:
                continue
            first = va > vb if order == "larger" else va < vb
            return -1 if first else 1
        return -1 if a > b else 1

    return sorted(names, key=functools.cmp_to_key(cmp))


def pdg_rows(scene_files: dict, footprint_files: dict, z: int, *, simplify_tolerance=None,
             keep_rules=(("Date", "larger"),), clip_to_footprint=True, input_crs=None,
             tms_crs="EPSG:4326", columns=()) -> pd.DataFrame:
    """One row per (polygon, tile it intersects): name, feature, x, y, dup, geometry (TMS
    CRS), cx, cy and the attribute ``columns``. ``scene_files``: {name: path};
    ``footprint_files``: {name: path or None}."""
    d = 180.0 / 2 ** z
    rows = []
    for name in sorted(scene_files):
        gdf = gpd.read_file(scene_files[name])
        gdf = gdf[gdf.geometry.type == "Polygon"]
        if simplify_tolerance is not None:
            gdf["geometry"] = gdf.geometry.simplify(simplify_tolerance)
        dup = pd.Series(False, index=gdf.index)
        if clip_to_footprint:
            fp = gpd.read_file(footprint_files[name])
            if fp.crs != gdf.crs:
                fp = fp.to_crs(gdf.crs)
            joined = gdf.sjoin(fp[["geometry"]], how="left", predicate="intersects")
            dup = joined["index_right"].isna().groupby(level=0).all()
        if input_crs is not None:
            gdf = gdf.set_crs(input_crs, allow_override=True)
        g = gdf.to_crs(tms_crs)
        for feature, geom, *values in zip(g.index, g.geometry.values,
                                          *(g[c].to_numpy() for c in columns)):
            x0, y0, x1, y1 = geom.bounds
            for tx in range(math.floor((x0 + 180) / d) - 1, math.floor((x1 + 180) / d) + 2):
                for ty in range(math.floor((90 - y1) / d) - 1, math.floor((90 - y0) / d) + 2):
                    left, top = -180.0 + tx * d, 90.0 - ty * d
                    if geom.intersects(shapely.box(left, top - d, left + d, top)):
                        c = geom.centroid
                        rows.append((name, int(feature), tx, ty, bool(dup[feature]), geom,
                                     c.x, c.y, *values))
    df = pd.DataFrame(rows, columns=["name", "feature", "x", "y", "dup", "geometry", "cx",
                                     "cy", *columns])
    if keep_rules is None:
        return df
    fps = {n: gpd.read_file(p).to_crs(tms_crs) for n, p in footprint_files.items()
           if p is not None}
    for _, grp in df.groupby(["x", "y"]):
        names = sorted(n for n in grp["name"].unique() if n in fps)
        rank = _rank(names, fps, keep_rules)
        for a, b in itertools.combinations(names, 2):
            overlap = fps[a].geometry.values[0].intersection(fps[b].geometry.values[0])
            least = a if rank.index(a) > rank.index(b) else b
            sel = grp.index[(grp["name"] == least).to_numpy()]
            hit = [overlap.intersects(gm) for gm in df.loc[sel, "geometry"]]
            df.loc[sel[np.array(hit, bool)], "dup"] = True
    return df


def tile_reference(df: pd.DataFrame, grid):
    """(count, coverage) of one tile from the reference rows (unflagged rows of the tile)."""
    from tests.reference import centroid_count_ref, coverage_ref

    t = df[(df["x"] == grid.x) & (df["y"] == grid.y) & ~df["dup"]]
    geoms = np.asarray(t["geometry"].values, dtype=object)
    count = centroid_count_ref(t["cx"].to_numpy(), t["cy"].to_numpy(), grid)
    cov = coverage_ref(geoms, grid) if len(t) else np.zeros((grid.height, grid.width))
    return count, cov


def coverage_exact(geoms, grid):
    """``tests.reference.coverage_ref`` summed as it goes (GEOS intersection of each polygon
    with each pixel box, in pixel coordinates), without its (polygons, H, W) array: memory
    stays one raster for tiles of thousands of polygons."""
    from tests.reference import to_pixel

    out = np.zeros(grid.height * grid.width)
    geoms = [g for g in geoms if g is not None and not g.is_empty]
    if not geoms:
        return out.reshape(grid.height, grid.width)
    boxes, tree = _pixel_boxes(grid.height, grid.width)
    pix = to_pixel(np.asarray(geoms, dtype=object), grid)
    gi, bi = tree.query(pix, predicate="intersects")  # every (polygon, pixel) pair
    areas = shapely.area(shapely.intersection(boxes[bi], pix[gi]))
    np.add.at(out, bi, areas)
    return out.reshape(grid.height, grid.width)


@functools.lru_cache(maxsize=4)
def _pixel_boxes(height, width):
    """``tests.reference.pixel_boxes``: pixel squares in pixel coordinates depend only on the
    raster's shape, so tiles of one size share them."""
    from types import SimpleNamespace

    from tests.reference import pixel_boxes

    return pixel_boxes(SimpleNamespace(height=height, width=width))
