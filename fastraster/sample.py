"""Synthetic ice-wedge-polygon (IWP) data, staged like PDG's viz-staging output.

Ice-wedge polygons are 10-20 m cells of tundra separated by troughs: here, jittered Voronoi
cells shrunk toward their centroids (the troughs), with wiggly densified edges, in patches
(real imagery has gaps), around 70 deg N, copied whole into every tile they touch, at any
zoom (:func:`sample_tiles`).
"""

from __future__ import annotations

import numpy as np
import shapely

from fastraster.io.atomic import atomic_path
from fastraster.io.tilepaths import tile_path
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
    width_m = (east - west) * m_lon
    height_m = (north - south) * M_PER_DEG_LAT
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
    lonlat = np.column_stack([west + coords[:, 0] / m_lon, south + coords[:, 1] / M_PER_DEG_LAT])
    cells = shapely.set_coordinates(cells.copy(), lonlat)
    cells = cells[shapely.is_valid(cells) & ~shapely.is_empty(cells)]
    inside = shapely.intersects(cells, shapely.box(west, south, east, north))
    return cells[inside]


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
        label = f"Tile(x={tile[0]}, y={tile[1]}, z={tile[2]})"
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
