"""Small raw-scene datasets for the ``rasterize_sources`` tests: scene files in a projected
CRS with dated footprints mirrored under a footprint folder (PDG's layout)."""

from __future__ import annotations

import os

import geopandas as gpd
import numpy as np
import shapely
from pyproj import Transformer

#: Near the PDG reference scenes (70.2 N, 148.6 W), in EPSG:3413 metres.
CRS = "EPSG:3413"
LON0, LAT0 = -148.6, 70.2
_T = Transformer.from_crs("EPSG:4326", CRS, always_xy=True)
X0, Y0 = _T.transform(LON0, LAT0)


def to_proj(lon, lat, crs=CRS):
    return Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)


def to_lonlat(x, y, crs=CRS):
    return Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)


def write_layer(path, geoms, crs=CRS, **columns):
    """Write geometries (+ columns) with geopandas; the driver follows the extension."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    n = len(geoms)
    data = {k: (list(v) if np.ndim(v) else [v] * n) for k, v in columns.items()}
    gdf = gpd.GeoDataFrame(data, geometry=list(geoms), crs=crs)
    gdf.to_file(path)
    return path


def write_scene(root, name, polygons, footprint, date, *, crs=CRS, footprint_crs=None,
                ext=".shp", **columns):
    """``root/input/<name><ext>`` and ``root/footprints/<name><ext>`` (footprint may be
    None: no footprint file). Returns the scene path."""
    path = os.path.join(root, "input", name + ext)
    cols = {"poly_id": np.arange(len(polygons)), **columns}
    write_layer(path, polygons, crs, **cols)
    if footprint is not None:
        write_layer(os.path.join(root, "footprints", name + ext), [footprint],
                    footprint_crs or crs, Name=os.path.basename(name), Date=date)
    return path


def blob(cx, cy, r, n=9, rng=None, jitter=0.25):
    """An irregular star-shaped polygon around (cx, cy) of radius ~r (metres)."""
    rng = rng or np.random.default_rng(0)
    a = np.sort(rng.uniform(0, 2 * np.pi, n))
    rr = r * (1 + jitter * rng.uniform(-1, 1, n))
    return shapely.Polygon(np.column_stack([cx + rr * np.cos(a), cy + rr * np.sin(a)]))


def random_scenes(root, seed=0, n_scenes=4, n_poly=120, ext=".shp"):
    """Overlapping scenes of random small polygons (some MultiPolygons, holes, spills
    outside the footprint, tiny triangles, 8 cm vertex noise), around (X0, Y0).

    Returns the input and footprint folders.
    """
    rng = np.random.default_rng(seed)
    for s in range(n_scenes):
        ox, oy = X0 + 180.0 * s - 250.0, Y0 + 90.0 * (s % 2) - 300.0
        w, h = 520.0, 640.0
        fp = shapely.Polygon([(ox, oy), (ox + w, oy + 15), (ox + w - 10, oy + h),
                              (ox - 5, oy + h - 20)])
        geoms = []
        while len(geoms) < n_poly:
            cx = rng.uniform(ox - 40, ox + w + 40)
            cy = rng.uniform(oy - 40, oy + h + 40)
            g = blob(cx, cy, rng.uniform(3, 9), rng=rng)
            # 8 cm noise on an extra mid-edge vertex: the 0.1 m simplification removes it.
            c = np.asarray(g.exterior.coords)
            mid = (c[0] + c[1]) / 2 + rng.normal(0, 0.08, 2)
            g = shapely.Polygon(np.vstack([c[:1], mid, c[1:]]))
            if g.is_valid:  # invalid input has a test of its own
                geoms.append(g)
        geoms[0] = shapely.MultiPolygon([blob(ox + 100, oy + 100, 5, rng=rng),
                                         blob(ox + 130, oy + 100, 5, rng=rng)])
        geoms[1] = blob(ox + 200, oy + 300, 10, rng=rng).difference(
            blob(ox + 200, oy + 300, 3, rng=rng))
        geoms[2] = shapely.Polygon([(ox + 300, oy + 300), (ox + 300.3, oy + 300),
                                    (ox + 300, oy + 300.3)])
        date = f"20{10 + 2 * s:02d}0{1 + s}15120000"
        write_scene(root, f"high/r{s % 2}/scene_{s}", geoms, fp, date, ext=ext,
                    ClassProb=rng.uniform(0, 1, n_poly))
    return os.path.join(root, "input"), os.path.join(root, "footprints")
