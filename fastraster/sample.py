"""Synthetic ice-wedge-polygon (IWP) data: staged like PDG's viz-staging output
(:func:`make_sample`), or as raw scenes with dated footprints, as PDG's workflow receives
them (:func:`make_scenes`).

Ice-wedge polygons are 10-20 m cells of tundra separated by troughs: here, jittered Voronoi
cells shrunk toward their centroids (the troughs), with wiggly densified edges, in patches
(real imagery has gaps), around 70 deg N; staged, they are copied whole into every tile they
touch, at any zoom (:func:`sample_tiles`).
"""

from __future__ import annotations

import os

import numpy as np
import shapely

from fastraster.io.atomic import atomic_path, temp_path
from fastraster.io.tilepaths import tile_label, tile_path
from fastraster.model.grid import TileGrid

#: Where the PDG example tiles are (Prudhoe Bay area, Alaska).
DEFAULT_TILES = ((1524, 910, 13), (1525, 910, 13), (1524, 911, 13), (1525, 911, 13))
M_PER_DEG_LAT = 110_574.0


def sample_tiles(z: int = 13, tms: str = "WorldCRS84Quad") -> tuple:
    """The 2 x 2 block of tiles at zoom ``z`` around the corner shared by
    :data:`DEFAULT_TILES` (Prudhoe Bay, about 148.5 W 70.3 N), in the order of
    ``DEFAULT_TILES``; at z13 it is ``DEFAULT_TILES``.

    The quad grids (``WorldCRS84Quad``, ``WGS1984Quad``) have tiles of ``180 / 2**z``
    degrees: ~26 x 76 m at z18, ~210 x 610 m at z15, ~1.7 x 4.9 km at z12 at this latitude.
    """
    z = int(z)
    if z < 1:
        raise ValueError(f"z must be at least 1 for a 2 x 2 block of tiles, not {z}")
    corner = TileGrid.from_tile((1525, 911, 13), tms)  # its north-west corner is the centre
    centre = TileGrid.from_tile((0, 0, z), tms)
    d = centre.right - centre.left
    # The grid line nearest to that corner, kept inside the grid (2 * 2**z columns, 2**z
    # rows) so that the block exists at low zooms too.
    xc = min(max(round((corner.left - centre.left) / d), 1), 2 ** (z + 1) - 1)
    yc = min(max(round((centre.top - corner.top) / d), 1), 2 ** z - 1)
    return tuple((x, y, z) for y in (yc - 1, yc) for x in (xc - 1, xc))


def ice_wedge_polygons(bounds, *, spacing_m=15.0, trough=0.12, fill=0.6, wiggle=0.03,
                       vertices=24, seed=0) -> np.ndarray:
    """Ice-wedge-like polygons covering ``bounds`` = (west, south, east, north) in degrees.

    Parameters
    ----------
    spacing_m : float
        Mean cell size in metres (polygon diameters are about this).
    trough : float
        Fraction by which each cell shrinks toward its centroid.
    fill : float
        Fraction of the area holding polygons (patches); 1 covers everything.
    wiggle : float
        Amplitude of edge undulation, as a fraction of ``spacing_m``.
    vertices : int
        Approximate vertex count per polygon (edges are densified to reach it).
    seed : int
        Random seed; the output is a pure function of the arguments.

    Returns
    -------
    numpy array of shapely Polygons (lon/lat, valid).
    """
    rng = np.random.default_rng(seed)
    west, south, east, north = bounds
    lat0 = 0.5 * (south + north)
    m_lon = M_PER_DEG_LAT * np.cos(np.radians(lat0))
    cells = ice_wedge_cells((east - west) * m_lon, (north - south) * M_PER_DEG_LAT,
                            spacing_m=spacing_m, trough=trough, fill=fill, wiggle=wiggle,
                            vertices=vertices, rng=rng)
    coords, idx = shapely.get_coordinates(cells, return_index=True)
    lonlat = np.column_stack([west + coords[:, 0] / m_lon, south + coords[:, 1] / M_PER_DEG_LAT])
    cells = shapely.set_coordinates(cells.copy(), lonlat)
    cells = cells[shapely.is_valid(cells) & ~shapely.is_empty(cells)]
    inside = shapely.intersects(cells, shapely.box(west, south, east, north))
    return cells[inside]


def ice_wedge_cells(width_m, height_m, *, spacing_m=15.0, trough=0.12, fill=0.6, wiggle=0.03,
                    vertices=24, rng) -> np.ndarray:
    """The cells of :func:`ice_wedge_polygons` in local metres, ``(0, 0)`` at the south-west
    corner of a ``width_m`` x ``height_m`` area (some reach a cell beyond it): jittered
    Voronoi cells, patches, troughs, densified wiggly edges. Not yet checked for validity."""
    width_m = float(width_m)
    height_m = float(height_m)
    s = float(spacing_m)
    nx = int(np.ceil(width_m / s)) + 2
    ny = int(np.ceil(height_m / s)) + 2
    gx, gy = np.meshgrid((np.arange(nx) - 0.5) * s, (np.arange(ny) - 0.5) * s)
    pts = np.column_stack([gx.ravel(), gy.ravel()])
    pts += rng.uniform(-0.35 * s, 0.35 * s, size=pts.shape)
    frame = shapely.box(-s, -s, width_m + s, height_m + s)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts),
                                                       extend_to=frame))
    cells = shapely.intersection(cells, frame)
    cells = cells[~shapely.is_empty(cells) & (shapely.area(cells) > 0)]
    cent = shapely.get_coordinates(shapely.centroid(cells))
    # Patches: keep cells where a smooth random field is high enough.
    k = rng.uniform(0.5, 2.0, size=(4, 2)) * 2 * np.pi / max(width_m, height_m) * 3
    ph = rng.uniform(0, 2 * np.pi, size=4)
    field = sum(np.sin(cent[:, 0] * k[i, 0] + cent[:, 1] * k[i, 1] + ph[i]) for i in range(4))
    if fill < 1:
        keep = field >= np.quantile(field, 1 - fill)
        cells, cent = cells[keep], cent[keep]
    # Troughs: shrink each cell toward its centroid.
    coords, idx = shapely.get_coordinates(cells, return_index=True)
    coords = cent[idx] + (1 - trough) * (coords - cent[idx])
    cells = shapely.set_coordinates(cells.copy(), coords)
    # Densify, then undulate edges with a displacement that depends on position only, so ring
    # closure (first == last vertex) is preserved.
    cells = shapely.segmentize(cells, max_segment_length=max(4 * s / vertices, 1e-3))
    coords, idx = shapely.get_coordinates(cells, return_index=True)
    a = wiggle * s
    f = 2 * np.pi / (0.45 * s)
    coords = coords + a * np.column_stack([np.sin(coords[:, 1] * f + 1.3),
                                           np.sin(coords[:, 0] * f + 0.7)])
    return shapely.set_coordinates(cells.copy(), coords)


def write_staged(geoms, out_dir, tiles=DEFAULT_TILES, tms="WorldCRS84Quad") -> list[str]:
    """Stage polygons into ``<out_dir>/<tms>/<z>/<x>/<y>.gpkg`` like viz-staging.

    Each polygon is copied whole into every tile it intersects, with the staging columns
    ``staging_centroid_x``/``_y`` (planar centroid of the whole polygon),
    ``staging_centroid_within_tile``, ``staging_duplicated`` (False) and ``staging_tile``.
    """
    import pyogrio.raw

    geoms = np.asarray(geoms, dtype=object)
    cent = shapely.centroid(geoms)
    cx, cy = shapely.get_x(cent), shapely.get_y(cent)
    tree = shapely.STRtree(geoms)
    paths = []
    for tile in tiles:
        g = TileGrid.from_tile(tile, tms)
        box = shapely.box(g.left, g.bottom, g.right, g.top)
        sel = np.sort(tree.query(box, predicate="intersects"))
        within = (cx[sel] > g.left) & (cx[sel] <= g.right) & (cy[sel] < g.top) & (
            cy[sel] >= g.bottom)
        path = tile_path(out_dir, tms, tile, ".gpkg")
        fields = ["staging_centroid_x", "staging_centroid_y", "staging_centroid_within_tile",
                  "staging_duplicated", "staging_tile"]
        label = tile_label(tile)  # PDG's staging_tile value
        data = [cx[sel], cy[sel], within, np.zeros(sel.size, bool),
                np.array([label] * sel.size, dtype=object)]
        with atomic_path(path, suffix=".gpkg") as tmp:
            pyogrio.raw.write(tmp, shapely.to_wkb(geoms[sel]), data, fields, driver="GPKG",
                              geometry_type="Polygon",
                              crs="OGC:CRS84" if tms == "WorldCRS84Quad" else "EPSG:4326",
                              layer=str(tile[1]))
        paths.append(path)
    return paths


def tiles_bounds(tiles, tms="WorldCRS84Quad", margin=0.0):
    grids = [TileGrid.from_tile(t, tms) for t in tiles]
    return (min(g.left for g in grids) - margin, min(g.bottom for g in grids) - margin,
            max(g.right for g in grids) + margin, max(g.top for g in grids) + margin)


def make_sample(out_dir, *, tiles=None, z=None, tms="WorldCRS84Quad", spacing_m=15.0,
                fill=0.6, vertices=24, seed=0) -> list[str]:
    """Generate IWP-like polygons over ``tiles`` and stage them below ``out_dir``.

    Parameters
    ----------
    tiles : sequence of (x, y, z), optional
        The staged tiles; default :func:`sample_tiles` at zoom ``z``.
    z : int, optional
        Zoom of the default tiles (13 if ``tiles`` is not given either); ignored with
        ``tiles``.

    Polygons near the outer edge of the tile block also reach beyond it (staging copies
    them whole), by up to a tenth of a tile. Returns the staged file paths.
    """
    if tiles is None:
        tiles = sample_tiles(13 if z is None else z, tms)
    d = TileGrid.from_tile(tiles[0], tms).right - TileGrid.from_tile(tiles[0], tms).left
    bounds = tiles_bounds(tiles, tms, margin=min(0.0005, d / 10))
    geoms = ice_wedge_polygons(bounds, spacing_m=spacing_m, fill=fill, vertices=vertices,
                               seed=seed)
    return write_staged(geoms, out_dir, tiles, tms)


# ---------------------------------------------------------------------------------------------
# Raw scenes (for rasterize_sources)
# ---------------------------------------------------------------------------------------------

#: Where generated scenes go: (region, projected CRS, footprint CRS, (lon, lat) of the first
#: scene's south-west corner). As in ``pdg-staging-example``: most scenes in EPSG:3413 near
#: Prudhoe Bay, one in eight in UTM 52N (north-east Siberia) with EPSG:4326 footprints.
SCENE_REGIONS = (("alaska", "EPSG:3413", "EPSG:3413", (-148.6, 70.2)),
                 ("russia", "EPSG:32652", "EPSG:4326", (126.2, 70.2)))
#: Detections spill up to this far (metres) past their scene's footprint.
SPILL_M = 40.0
#: Neighbouring scenes overlap by this fraction of their size (each overlaps 2-8 others).
OVERLAP = 0.3


def scene_layout(n_scenes: int, size_m: float, seed: int = 0) -> list[dict]:
    """Where each of ``n_scenes`` scenes lies: region, CRS, footprint corners (projected
    metres), a distinct ``Date`` (``YYYYMMDDhhmmss``) and the file name (PDG's IWP naming,
    ``high/<region>/<group>_iwp/<sensor>_<date>_<id>_u16rf<epsg>_pansh``). Scene ``i`` goes
    to the UTM region when ``i % 8 == 7``; in each region scenes sit on a grid with step
    ``(1 - OVERLAP) * size_m``, so neighbours overlap."""
    from pyproj import Transformer

    rng = np.random.default_rng([seed, 1])
    regions = [[], []]
    for i in range(n_scenes):
        regions[1 if i % 8 == 7 else 0].append(i)
    # Distinct dates, shuffled so that "newer" has nothing to do with position.
    minutes = rng.permutation(n_scenes) * 97 + rng.integers(0, 60, n_scenes)
    t0 = np.datetime64("2010-01-01T00:00:00")
    dates = [str(t0 + np.timedelta64(int(m), "m")).replace("-", "").replace("T", "")
             .replace(":", "") for m in minutes]
    step = (1 - OVERLAP) * size_m
    out = [None] * n_scenes
    for (region, crs, fp_crs, (lon, lat)), members in zip(SCENE_REGIONS, regions):
        if not members:
            continue
        x0, y0 = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
        cols = int(np.ceil(np.sqrt(len(members))))
        for k, i in enumerate(members):
            ox = x0 + (k % cols) * step + rng.uniform(-0.05, 0.05) * size_m
            oy = y0 + (k // cols) * step + rng.uniform(-0.05, 0.05) * size_m
            # A slightly irregular quadrilateral, like an orthorectified scene's outline.
            j = rng.uniform(0, 0.02 * size_m, size=(4, 2))
            corners = np.array([[ox + j[0, 0], oy + j[0, 1]],
                                [ox + size_m - j[1, 0], oy + j[1, 1]],
                                [ox + size_m - j[2, 0], oy + size_m - j[2, 1]],
                                [ox + j[3, 0], oy + size_m - j[3, 1]]])
            sensor = ("WV02", "WV03", "QB02", "GE01")[int(rng.integers(4))]
            epsg = crs.split(":")[1]
            name = (f"high/{region}/{200 + k // 16}_iwp/{sensor}_{dates[i]}_"
                    f"{int(rng.integers(2**63)):016X}_u16rf{epsg}_pansh")
            out[i] = {"id": i, "region": region, "crs": crs, "footprint_crs": fp_crs,
                      "corners": corners, "date": dates[i], "name": name}
    return out


def scene_polygons(scene: dict, size_m: float, *, spacing_m=15.0, fill=0.6, vertices=24,
                   seed=0):
    """The detections of one scene (projected CRS): ice-wedge cells over the footprint's box
    widened by :data:`SPILL_M` (so some spill past the footprint), a few polygons with a hole,
    a few two-part MultiPolygons and four tiny (~0.3 m) triangles; with ``poly_id``,
    ``ClassProb`` and ``Area_m2`` columns."""
    rng = np.random.default_rng([seed, 2, scene["id"]])
    c = scene["corners"]
    x0, y0 = c[:, 0].min() - SPILL_M, c[:, 1].min() - SPILL_M
    w = c[:, 0].max() + SPILL_M - x0
    h = c[:, 1].max() + SPILL_M - y0
    cells = ice_wedge_cells(w, h, spacing_m=spacing_m, fill=fill, vertices=vertices, rng=rng)
    coords = shapely.get_coordinates(cells)
    cells = shapely.set_coordinates(cells.copy(), coords + (x0, y0))
    cells = cells[shapely.is_valid(cells) & ~shapely.is_empty(cells)]
    cells = cells[shapely.intersects(cells, shapely.box(x0, y0, x0 + w, y0 + h))]
    n = cells.size
    special = rng.choice(n, size=min(n, 2 * max(1, n // 1000)), replace=False)
    holed, multi = special[::2], special[1::2]
    cent = shapely.centroid(cells[holed])
    hole = shapely.buffer(cent, 0.2 * spacing_m, quad_segs=8)
    cells[holed] = shapely.difference(cells[holed], hole)
    # Two parts: a small box and a small triangle beside it (disjoint, so valid).
    cx, cy = shapely.get_x(shapely.centroid(cells[multi])), shapely.get_y(
        shapely.centroid(cells[multi]))
    box = shapely.box(cx - 2, cy - 2, cx + 2, cy + 2)
    tri = shapely.polygons(np.stack([np.column_stack([cx + 4, cy - 2]),
                                     np.column_stack([cx + 7, cy - 2]),
                                     np.column_stack([cx + 4, cy + 2])], axis=1))
    cells[multi] = shapely.multipolygons(np.stack([box, tri], axis=1))
    mid = (c[0] + c[2]) / 2
    tiny = shapely.polygons(np.stack([mid + [[dx, 0], [dx + 0.3, 0], [dx, 0.3]]
                                      for dx in (0.0, 10.0, 20.0, 30.0)]))
    geoms = np.concatenate([cells, tiny])
    columns = {"poly_id": np.arange(geoms.size, dtype=np.int64),
               "ClassProb": rng.uniform(0.5, 1.0, geoms.size),
               "Area_m2": shapely.area(geoms)}
    return geoms, columns


def write_scene_files(out_dir, scene: dict, size_m: float, *, ext=".shp", **kwargs) -> int:
    """Write one scene's detections to ``<out>/input/<name><ext>`` and its footprint (one
    feature with ``Name`` and ``Date``) to ``<out>/footprints/<name><ext>``, each atomically
    (a folder of files for shapefiles: written whole, then moved into place); returns the
    number of detections."""
    import pyogrio.raw

    geoms, columns = scene_polygons(scene, size_m, **kwargs)
    fp = shapely.Polygon(scene["corners"])
    if scene["footprint_crs"] != scene["crs"]:
        from pyproj import Transformer

        t = Transformer.from_crs(scene["crs"], scene["footprint_crs"], always_xy=True)
        fp = shapely.transform(fp, lambda a: np.column_stack(t.transform(a[:, 0], a[:, 1])))
    base = os.path.basename(scene["name"])
    for kind, gs, cols, crs in (
            ("input", geoms, columns, scene["crs"]),
            ("footprints", np.array([fp], dtype=object),
             {"Name": np.array([base], dtype=object),
              "Date": np.array([scene["date"]], dtype=object)}, scene["footprint_crs"])):
        path = os.path.join(os.fspath(out_dir), kind, scene["name"] + ext)
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        # A shapefile is several files: write them into a temporary folder named by its
        # owner (io.atomic's temporary names, so a killed writer's is recognised and swept),
        # then move them into place, the .shp last.
        tmp = temp_path(os.path.join(folder, base), suffix="")
        os.makedirs(tmp)
        pyogrio.raw.write(os.path.join(tmp, base + ext), shapely.to_wkb(gs),
                          list(cols.values()), list(cols), geometry_type="Polygon",
                          promote_to_multi=False, crs=crs)
        main = base + ext  # moved last: readers look for it
        for f in sorted(os.listdir(tmp), key=lambda f: f == main):
            os.replace(os.path.join(tmp, f), os.path.join(folder, f))
        os.rmdir(tmp)
    return int(geoms.size)


def make_scenes(out_dir, n_scenes: int, *, polygons_per_scene=25_000, spacing_m=15.0,
                fill=0.6, vertices=24, seed=0, ext=".shp", n_jobs=1) -> dict:
    """Generate ``n_scenes`` raw IWP-like scenes and their footprints, PDG's layout:
    ``<out>/input/high/<region>/<group>_iwp/<scene>.shp`` and the same path under
    ``<out>/footprints`` (one dated feature each).

    Scenes are square, sized for about ``polygons_per_scene`` detections, in EPSG:3413 (one in
    eight in UTM 52N, footprints in EPSG:4326), overlapping their neighbours by 30 %, with
    distinct dates, detections spilling up to 40 m past the footprint, a few polygons with
    holes, a few MultiPolygons and tiny triangles (see :func:`scene_polygons`). The output
    is a pure function of the arguments (``n_jobs`` only changes the speed: ~60 us per
    polygon per core, mostly GEOS's Voronoi diagram and clipping).

    Returns
    -------
    dict
        ``inputs``, ``footprints`` (folders), ``scenes`` (count), ``polygons`` (total).
    """
    from joblib import Parallel, delayed

    size_m = float(np.sqrt(polygons_per_scene * spacing_m ** 2 / fill))
    layout = scene_layout(int(n_scenes), size_m, seed)
    kw = dict(spacing_m=spacing_m, fill=fill, vertices=vertices, seed=seed, ext=ext)
    counts = Parallel(n_jobs=n_jobs)(delayed(write_scene_files)(out_dir, s, size_m, **kw)
                                     for s in layout)
    out = os.fspath(out_dir)
    return {"inputs": os.path.join(out, "input"), "footprints": os.path.join(out, "footprints"),
            "scenes": len(layout), "polygons": int(sum(counts))}
