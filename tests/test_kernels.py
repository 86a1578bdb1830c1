"""fastraster's kernels (through compute_stats and RaggedPolygons) vs independent references.

Tests whose name contains ``nojit_small`` use tiny inputs; test_nojit.py reruns them with
``NUMBA_DISABLE_JIT=1`` so the pure-Python semantics of the kernels are checked too.
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
import reference as R
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastraster import compute_stats
from fastraster import kernels as K
from fastraster.model.geometry import RaggedPolygons
from fastraster.model.grid import TileGrid
from tests.conftest import PDG_EXAMPLE, needs_pdg_example

HYP = settings(max_examples=50, deadline=None, database=None, derandomize=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                      HealthCheck.data_too_large])

# ---------------------------------------------------------------------------------------------
# Grids
# ---------------------------------------------------------------------------------------------

#: Whole world, dx = dy = 5.625, GDAL's inverse 1/5.625 is inexact.
G32 = TileGrid.from_tile((0, 0, 0), "WGS1984Quad", 32)
#: left 0, top 45, dx = dy = 1.40625 (exact in binary, 1/dx inexact).
G16 = TileGrid.from_tile((8, 2, 3), "WGS1984Quad", 16)
#: dx = dy = 0.5: pixel <-> CRS conversions are exact for dyadic coordinates.
G_POW2 = TileGrid.from_tile((8, 2, 3), "WGS1984Quad", 45)
#: Non-square raster (12 rows, 20 columns).
G_RECT = TileGrid.from_tile((8, 2, 3), "WGS1984Quad", (12, 20))


def _mercator_grid(tile=(9, 5, 4), size=24):
    """A WebMercatorQuad tile grid built from morecantile's bounds directly.

    (``TileGrid.from_tile`` with a non-quad TMS is tested separately in
    :func:`test_web_mercator_grid_from_tile`; building the grid here keeps the other tests
    independent of that code path.)
    """
    import morecantile

    b = morecantile.tms.get("WebMercatorQuad").xy_bounds(morecantile.Tile(*tile))
    return TileGrid("WebMercatorQuad", *tile, b.left, b.bottom, b.right, b.top, size, size,
                    "EPSG:3857")


#: Web Mercator: bounds and pixel edges carry rounding.
G_MERC = _mercator_grid()
#: Tiny grids for the pure-Python (NUMBA_DISABLE_JIT) run.
G8 = TileGrid.from_tile((8, 2, 3), "WGS1984Quad", 8)
G8_INEXACT = TileGrid.from_tile((0, 0, 1), "WGS1984Quad", 7)

GEOM_PROPS = ("centroids_per_pixel", "area_per_pixel_area", "area_within_pixel",
              "polygons_covering_center", "polygons_touching", "union_area_per_pixel_area")
WEIGHT = {"centroids_per_pixel": "count", "polygons_covering_center": "count",
          "polygons_touching": "count", "area_per_pixel_area": "area",
          "area_within_pixel": "area", "union_area_per_pixel_area": "area"}


def stat(prop, weight_by=None, agg="sum"):
    weight_by = weight_by or WEIGHT[prop]
    return {"name": f"{prop}-{weight_by}-{agg}", "weight_by": weight_by, "property": prop,
            "aggregation_method": agg}


def run(geoms, grid, props=GEOM_PROPS, centroids=None):
    """compute_stats on shapely geometries; a dict property -> (H, W) band."""
    polys = RaggedPolygons.from_shapely(np.asarray(list(geoms), dtype=object))
    out = compute_stats(polys, grid, [stat(p) for p in props], centroids=centroids)
    assert out.shape == (len(props), grid.height, grid.width)
    assert out.dtype == np.float64
    return dict(zip(props, out))


def to_crs(g, grid):
    """Pixel-coordinate geometry -> CRS geometry of ``grid``."""
    return shapely.transform(g, lambda c: np.column_stack(
        [grid.left + c[:, 0] * grid.dx, grid.top - c[:, 1] * grid.dy]))


def px_poly(shell, holes=(), grid=G16):
    """A CRS polygon from pixel coordinates."""
    return to_crs(shapely.Polygon(shell, holes), grid)


def rect(x0, y0, x1, y1):
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def centroids_of(geoms):
    """shapely centroids; NaN for null and empty geometries."""
    geoms = np.asarray(list(geoms), dtype=object)
    cx = np.full(len(geoms), np.nan)
    cy = np.full(len(geoms), np.nan)
    if len(geoms):
        ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        c = shapely.centroid(geoms[ok])
        cx[ok], cy[ok] = shapely.get_x(c), shapely.get_y(c)
    return cx, cy


def assert_counts_equal(actual, expected, what):
    bad = np.argwhere(actual != expected)
    assert bad.size == 0, (f"{what}: {len(bad)} pixel(s) differ, first (row, col) "
                           f"{tuple(bad[0])}: got {actual[tuple(bad[0])]}, "
                           f"expected {expected[tuple(bad[0])]}")


def assert_close(actual, expected, atol, what):
    diff = np.abs(actual - expected)
    i = np.unravel_index(np.argmax(diff), diff.shape) if diff.size else None
    assert diff.size == 0 or diff.max() <= atol, (
        f"{what}: max abs diff {diff.max():.3g} at {i}: got {actual[i]!r}, "
        f"expected {expected[i]!r}")


def exact_pixels_ref(geoms, grid):
    """Pixels that every polygon either covers wholly or misses (no interior overlap).

    Uses GEOS predicates only (no constructed intersection points). Returns the mask and
    the number of polygons covering each pixel; coverage must equal it *exactly* there.
    """
    geoms = R._present(geoms)
    boxes, _ = R.pixel_boxes(grid)
    ok = np.ones(boxes.shape, bool)
    n = np.zeros(boxes.shape)
    for g in R.to_pixel(geoms, grid):
        covers = shapely.covers(g, boxes)
        overlaps = shapely.relate_pattern(g, boxes, "T********")
        ok &= covers | ~overlaps
        n += covers
    return ok.reshape(grid.height, grid.width), n.reshape(grid.height, grid.width)


def check_against_reference(geoms, grid, centroids=None):
    """Every geometric statistic of ``geoms`` on ``grid`` against the references."""
    out = run(geoms, grid, centroids=centroids)
    cov_ref = R.coverage_ref(geoms, grid)
    assert_close(out["area_per_pixel_area"], cov_ref, 1e-12, "coverage")
    assert_close(out["area_within_pixel"], cov_ref * grid.pixel_area,
                 1e-12 * grid.pixel_area, "area_within_pixel")
    assert_counts_equal(out["polygons_touching"], R.touching_ref(geoms, grid), "touching")
    assert_counts_equal(out["polygons_covering_center"], R.centre_count_ref(geoms, grid),
                        "polygons_covering_center vs rasterio")
    cx, cy = centroids if centroids is not None else centroids_of(geoms)
    assert_counts_equal(out["centroids_per_pixel"], R.centroid_count_ref(cx, cy, grid),
                        "centroids_per_pixel")
    assert_close(out["union_area_per_pixel_area"], R.union_coverage_ref(geoms, grid), 1e-9,
                 "union coverage")
    mask, n = exact_pixels_ref(geoms, grid)
    cov = out["area_per_pixel_area"]
    bad = np.argwhere(mask & (cov != n))
    assert bad.size == 0, (f"pixel {tuple(bad[0])} is wholly covered by {n[tuple(bad[0])]} "
                           f"polygon(s) but coverage is {cov[tuple(bad[0])]!r} (not exact)")
    return out


def test_web_mercator_grid_from_tile():
    """TileGrid.from_tile for a morecantile TMS gives the tile's bounds and CRS."""
    import morecantile

    grid = TileGrid.from_tile((9, 5, 4), "WebMercatorQuad", 24)
    b = morecantile.tms.get("WebMercatorQuad").xy_bounds(morecantile.Tile(9, 5, 4))
    assert (grid.left, grid.bottom, grid.right, grid.top) == tuple(b)
    assert (grid.height, grid.width) == (24, 24)
    assert "3857" in grid.crs


# ---------------------------------------------------------------------------------------------
# Random polygons (hypothesis strategies, built in pixel coordinates)
# ---------------------------------------------------------------------------------------------

ORIENTATIONS = ("ccw", "cw", "same", "raw")


def orient(g, mode):
    """Ring orientation variants (in CRS axes): ccw or cw exteriors (holes opposite), or
    every ring of a polygon in the *same* orientation, or as constructed."""
    if mode == "ccw":
        return shapely.orient_polygons(g, exterior_cw=False)
    if mode == "cw":
        return shapely.orient_polygons(g, exterior_cw=True)
    if mode == "same":
        def same(p):
            rings = [np.asarray(p.exterior.coords)] + [np.asarray(h.coords) for h in p.interiors]
            rings = [r if shapely.LinearRing(r).is_ccw else r[::-1] for r in rings]
            return shapely.Polygon(rings[0], rings[1:])
        parts = [same(p) for p in shapely.get_parts(g)]
        return parts[0] if g.geom_type == "Polygon" else shapely.MultiPolygon(parts)
    return g


@st.composite
def star_px(draw, W, H, allow_hole=True):
    cx = draw(st.floats(-3.0, W + 3.0))
    cy = draw(st.floats(-3.0, H + 3.0))
    n = draw(st.integers(3, 10))
    rmax = draw(st.sampled_from([0.3, 1.5, 4.0, 0.5 * max(W, H), 2.0 * max(W, H)]))
    radii = np.array(draw(st.lists(st.floats(0.2, 1.0), min_size=n, max_size=n))) * rmax
    jitter = np.array(draw(st.lists(st.floats(-0.4, 0.4), min_size=n, max_size=n)))
    rot = draw(st.floats(0.0, 2 * math.pi))
    ang = rot + (np.arange(n) + jitter) * (2 * math.pi / n)
    shell = np.column_stack([cx + radii * np.cos(ang), cy + radii * np.sin(ang)])
    p = shapely.Polygon(shell)
    if not p.is_valid:
        p = shapely.convex_hull(shapely.MultiPoint(shell))
    if p.geom_type != "Polygon" or p.area <= 0:
        return None
    if allow_hole and draw(st.booleans()):
        k = draw(st.integers(3, 8))
        hr = draw(st.floats(0.1, 0.45)) * radii.min() * math.cos(math.pi / 3)
        a = np.arange(k) * 2 * math.pi / k + draw(st.floats(0.0, 1.0))
        hole = np.column_stack([cx + hr * np.cos(a), cy + hr * np.sin(a)])
        q = shapely.Polygon(p.exterior.coords, [hole])
        if q.is_valid and q.area > 0:
            p = q
    return p


@st.composite
def lattice_px(draw, W, H):
    """Rectangles (possibly with a hole) and triangles with vertices on a 1/4-pixel lattice:
    vertices on pixel edges, corners and centres, edges along pixel boundaries."""
    if draw(st.booleans()):
        x0 = draw(st.integers(-8, 4 * W + 4)) / 4
        y0 = draw(st.integers(-8, 4 * H + 4)) / 4
        w = draw(st.integers(1, 4 * W)) / 4
        h = draw(st.integers(1, 4 * H)) / 4
        holes = []
        if w >= 2 and h >= 2 and draw(st.booleans()):
            holes = [rect(x0 + 0.5, y0 + 0.5, x0 + w - 0.5, y0 + h - 0.5)]
        return shapely.Polygon(rect(x0, y0, x0 + w, y0 + h), holes)
    pts = [(draw(st.integers(-8, 4 * W + 8)) / 4, draw(st.integers(-8, 4 * H + 8)) / 4)
           for _ in range(3)]
    p = shapely.Polygon(pts)
    return p if p.area > 0 else None


@st.composite
def polygon(draw, grid, lattice=True):
    W, H = grid.width, grid.height
    kinds = ["star", "star", "buffer", "multi"] + (["lattice", "lattice"] if lattice else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "star":
        g = draw(star_px(W, H))
    elif kind == "buffer":
        g = shapely.buffer(shapely.Point(draw(st.floats(-2.0, W + 2.0)),
                                         draw(st.floats(-2.0, H + 2.0))),
                           draw(st.floats(0.05, max(W, H) / 2)),
                           quad_segs=draw(st.integers(1, 8)))
    elif kind == "lattice":
        g = draw(lattice_px(W, H))
    else:
        a = draw(star_px(W, H))
        b = draw(star_px(W, H))
        g = shapely.MultiPolygon([a, b]) if a is not None and b is not None and \
            a.disjoint(b) else a
    if g is None:
        return None
    g = orient(to_crs(g, grid), draw(st.sampled_from(ORIENTATIONS)))
    return g if g.is_valid and g.area > 0 else None


def polygon_lists(grid, min_size=1, max_size=5, lattice=True):
    return st.lists(polygon(grid, lattice), min_size=min_size, max_size=max_size).map(
        lambda gs: [g for g in gs if g is not None])


# ---------------------------------------------------------------------------------------------
# Random polygons vs the references
# ---------------------------------------------------------------------------------------------


@HYP
@given(geoms=polygon_lists(G32))
def test_random_polygons_vs_reference_g32(geoms):
    check_against_reference(geoms, G32)


@HYP
@given(geoms=polygon_lists(G_RECT))
def test_random_polygons_vs_reference_non_square(geoms):
    check_against_reference(geoms, G_RECT)


@settings(HYP, max_examples=30)
@given(geoms=polygon_lists(G_MERC, max_size=4, lattice=False))
def test_random_polygons_vs_reference_web_mercator(geoms):
    # Off the lattice: on this inexact grid a lattice vertex "on" a pixel edge lands a few
    # 1e-15 px to either side depending on whose transform maps it (kernel or reference), so
    # whether a 1e-31 px^2 sliver "touches" is a coin toss; exact-grid tests cover on-edge
    # vertices.
    check_against_reference(geoms, G_MERC)


@pytest.mark.parametrize("seed", range(4))
def test_many_overlapping_polygons_vs_reference(seed):
    """A denser tile: 40 buffered points and star polygons of random orientation."""
    rng = np.random.default_rng(seed)
    grid = TileGrid.from_tile((8, 2, 3), "WGS1984Quad", 40)
    geoms = []
    for i in range(40):
        c = rng.uniform(-2, 42, 2)
        if i % 2:
            g = shapely.buffer(shapely.Point(c), rng.uniform(0.2, 6),
                               quad_segs=int(rng.integers(1, 6)))
        else:
            n = int(rng.integers(5, 12))
            a = np.sort(rng.uniform(0, 2 * np.pi, n))
            r = rng.uniform(0.5, 5, n)
            pts = c + np.column_stack([r * np.cos(a), r * np.sin(a)])
            g = shapely.convex_hull(shapely.MultiPoint(pts))
            g = g.difference(shapely.buffer(shapely.Point(c), 0.3, quad_segs=2))
        geoms.append(orient(to_crs(g, grid), ORIENTATIONS[i % 4]))
    geoms = [g for g in geoms if g.is_valid and not g.is_empty]
    check_against_reference(geoms, grid)


# ---------------------------------------------------------------------------------------------
# Adversarial cases (explicit). Pixel coordinates on G16 / G32 / G8.
# ---------------------------------------------------------------------------------------------

comb = [(1, 1.5)]
for i in range(5):  # teeth whose tops and bottoms lie on centre rows
    comb += [(1 + 2 * i, 9.5), (2 + 2 * i, 9.5), (2 + 2 * i, 4.5), (3 + 2 * i, 4.5)]
comb += [(11, 4.5), (11, 1.5)]
comb_half = [(x + 0.5, y) for x, y in comb]

ADVERSARIAL = {
    "pixel_square": [rect(3, 5, 4, 6)],
    "block_on_pixel_edges": [rect(2, 1, 7, 4)],
    "diamond_through_corners": [[(5, 2), (8, 5), (5, 8), (2, 5)]],
    "vertices_on_edges": [[(2.5, 1), (9, 4.5), (4, 11.25), (1, 7)]],
    "half_square_ccw": [rect(2.5, 3.5, 6.5, 7.5)],
    "half_square_cw": [rect(2.5, 3.5, 6.5, 7.5)[::-1]],
    "half_rect_one_wide": [rect(2.5, 3.5, 3.5, 9.5)],
    "half_rect_one_high": [rect(2.5, 3.5, 9.5, 4.5)],
    "l_shape_half": [[(1.5, 1.5), (8.5, 1.5), (8.5, 4.5), (4.5, 4.5), (4.5, 9.5), (1.5, 9.5)]],
    "l_shape_half_cw": [[(1.5, 1.5), (8.5, 1.5), (8.5, 4.5), (4.5, 4.5), (4.5, 9.5),
                         (1.5, 9.5)][::-1]],
    "comb_integer_x": [comb],
    "comb_half_x": [comb_half],
    "comb_half_x_cw": [comb_half[::-1]],
    "triangle_base_on_centre": [[(2.25, 6.5), (11.75, 6.5), (7, 1.2)]],
    "triangle_apex_on_centre": [[(2.25, 9), (11.75, 9), (7, 3.5)]],
    "hole_on_pixel_edges": [(rect(1, 1, 9, 9), [rect(3, 3, 6, 6)])],
    "hole_on_centres": [(rect(1.5, 1.5, 9.5, 9.5), [rect(3.5, 3.5, 6.5, 6.5)])],
    "hole_on_centres_same_orientation": [(rect(1.5, 1.5, 9.5, 9.5),
                                          [rect(3.5, 3.5, 6.5, 6.5)], "same")],
    "hole_touching_exterior_at_vertex": [(rect(1, 1, 9, 9), [[(1, 5), (4, 3), (4, 7)]])],
    "multipolygon_sharing_corner": [("multi", [rect(2, 2, 5, 5), rect(5, 5, 8, 8)])],
    "multipolygon_sharing_centre_vertex": [("multi", [rect(2.5, 2.5, 5.5, 5.5),
                                                      rect(5.5, 5.5, 8.5, 8.5)])],
    "adjacent_half_squares": [rect(1.5, 1.5, 4.5, 4.5), rect(4.5, 1.5, 7.5, 4.5),
                              rect(1.5, 4.5, 4.5, 7.5)],
    "sliver_triangle": [[(0.3, 0.2), (14.7, 9.9), (14.7, 9.9 + 1e-6)]],
    "sliver_along_row_edge": [rect(2, 3, 9, 3 + 1e-9)],
    "sliver_on_centre_row": [rect(2.2, 6.5, 9.7, 6.5 + 1e-9)],
    "crossing_west_north": [[(-5.3, -2.1), (6.6, -4.0), (3.3, 7.7)]],
    "crossing_east_south": [[(10.1, 9.2), (25.4, 12.3), (12.2, 30.5)]],
    "crossing_all_edges": [(rect(-3.5, -3.5, 19.5, 19.5), [rect(4.25, 4.25, 11.5, 11.75)])],
    "larger_than_tile": [rect(-1000, -1000, 1000, 1000)],
    "tile_sized": [rect(0, 0, 16, 16)],
    "outside_touching_west_edge": [rect(-3, 2, 0, 5)],
    "outside_touching_east_edge": [rect(16, 2, 19, 5)],
    "outside_touching_north_edge": [rect(2, -3, 5, 0)],
    "inside_along_tile_edges": [rect(0, 0, 3, 3), rect(13, 13, 16, 16)],
    "duplicated": [rect(2.25, 2.75, 8.5, 6), rect(2.25, 2.75, 8.5, 6)],
    "duplicated_on_edges": [rect(2, 2, 6, 6), rect(2, 2, 6, 6)[::-1]],
    "collinear_vertices_on_edges": [[(2, 2), (3, 2), (4, 2), (7, 2), (7, 5), (7, 6),
                                     (4.5, 6), (2, 6), (2, 4)]],
    "vertex_on_centre": [[(3.5, 3.5), (9.25, 5.5), (4.5, 10.75)]],
    # Edges passing exactly through pixel corners where the interpolated crossing x at a
    # row boundary is not exactly representable by a naive x0 + dx * (t * (1 / dy)).
    # Horizontal edges on centre rows whose burn GDAL skips (a fill span starts at the same
    # column); found by comparing a mutant without that guard against rasterio.
    "gdal_guard_1": [[(9, 7.5), (9, 6), (6.5, 6), (6.5, 7.5), (6.5, 9.5), (7, 9.5), (7, 7.5)]],
    "gdal_guard_1_reversed": [[(9, 7.5), (9, 6), (6.5, 6), (6.5, 7.5), (6.5, 9.5), (7, 9.5),
                               (7, 7.5)][::-1]],
    "gdal_guard_2": [[(5.5, 3.5), (4, 3.5), (4, 4.5), (3.5, 4.5), (3.5, 1), (4, 1), (4, -1),
                      (5.5, -1)]],
    "gdal_guard_3": [[(2, -1), (1.5, -1), (1.5, -0.5), (0, -0.5), (0, 2.5), (1.5, 2.5),
                      (1.5, 3), (2, 3), (2, 2.5), (4, 2.5), (4, -0.5), (2, -0.5)]],
    "diagonal_through_corners": [[(0, 0), (5, 5), (0, 5)]],
    "diagonal_through_corners_other_side": [[(0, 0), (5, 5), (5, 0)]],
    "diagonal_through_corners_offset": [[(3, 1), (13, 11), (3, 11)]],
    "steep_edge_through_corners": [[(0, 0), (5, 10), (0, 10)]],
    # Edges crossing one column line and one row line (the coverage kernel's corner path):
    # through the corner exactly, a hair beside it on either side, and both crossing orders.
    "short_edges_through_corners": [[(0.5, 0.5), (1.5, 1.5), (0.5, 1.5)],
                                    [(2.5, 3.5), (3.5, 2.5), (3.5, 3.5)]],
    "short_edges_beside_corners": [[(4.5, 4.5), (5.5, 5.5 + 1e-9), (4.5, 5.5)],
                                   [(6.5, 6.5), (7.5 + 1e-9, 7.5), (7.5, 6.5)],
                                   [(9.5, 9.5), (10.5, 10.5 - 1e-13), (9.5, 10.5)]],
    "diamond_across_corners": [[(5.5, 4.7), (6.3, 5.5), (5.5, 6.3), (4.7, 5.5)],
                               [(12.2, 1.9), (13.9, 2.2), (13.6, 3.8), (11.8, 3.1)]],
}


def build_case(spec, grid):
    geoms = []
    for item in spec:
        if isinstance(item, tuple) and item[0] == "multi":
            g = to_crs(shapely.MultiPolygon([shapely.Polygon(r) for r in item[1]]), grid)
        elif isinstance(item, tuple):
            g = px_poly(item[0], item[1], grid)
            if len(item) > 2:
                g = orient(g, item[2])
        else:
            g = px_poly(item, (), grid)
        geoms.append(g)
    return geoms


@pytest.mark.parametrize("grid", [G16, G32], ids=["G16", "G32"])
@pytest.mark.parametrize("case", sorted(ADVERSARIAL))
def test_adversarial_vs_reference(case, grid):
    geoms = build_case(ADVERSARIAL[case], grid)
    assert all(g.is_valid for g in geoms)
    check_against_reference(geoms, grid)


@pytest.mark.parametrize("grid", [G8, G8_INEXACT], ids=["G8", "G7"])
@pytest.mark.parametrize("case", ["pixel_square", "half_square_cw", "l_shape_half",
                                  "hole_on_centres", "multipolygon_sharing_centre_vertex",
                                  "crossing_west_north", "diamond_through_corners",
                                  "diagonal_through_corners_other_side",
                                  "short_edges_through_corners", "diamond_across_corners"])
def test_nojit_small_adversarial(case, grid):
    check_against_reference(build_case(ADVERSARIAL[case], grid), grid)


@pytest.mark.parametrize("seed", [0, 1])
def test_rectilinear_half_lattice_centre_count_vs_rasterio(seed):
    """Many rectilinear polygons (unions/differences of boxes on a half-pixel lattice), so
    that edges lie on pixel centres and horizontal edges on centre rows, one at a time."""
    grid = TileGrid.from_tile((8, 2, 3), "WGS1984Quad", 10)
    rng = np.random.default_rng(seed)
    for _ in range(400):
        k = int(rng.integers(1, 6))
        boxes = []
        for _ in range(k):
            x0, y0 = rng.integers(-2, 20, 2) / 2
            w, h = rng.integers(1, 10, 2) / 2
            boxes.append(shapely.box(x0, y0, x0 + w, y0 + h))
        u = shapely.union_all(boxes[:max(1, k - 1)])
        if k > 2:
            u = u.difference(boxes[-1])
        parts = [p for p in shapely.get_parts(u) if p.geom_type == "Polygon"]
        if not parts:
            continue
        g = shapely.orient_polygons(to_crs(parts[0], grid), exterior_cw=bool(rng.integers(2)))
        out = run([g], grid, props=("polygons_covering_center",))
        assert_counts_equal(out["polygons_covering_center"], R.centre_count_ref([g], grid),
                            f"centre count of {shapely.to_wkt(R.to_pixel([g], grid)[0])}")


def test_pixel_square_exact_values():
    out = run(build_case(ADVERSARIAL["pixel_square"], G16), G16)
    want = np.zeros((16, 16))
    want[5, 3] = 1.0
    for p in ("area_per_pixel_area", "polygons_touching", "polygons_covering_center",
              "centroids_per_pixel", "union_area_per_pixel_area"):
        assert_counts_equal(out[p], want, p)
    assert_counts_equal(out["area_within_pixel"], want * G16.pixel_area, "area_within_pixel")


def test_half_square_hand_values():
    """Square [2.5, 6.5] x [3.5, 7.5]: a quarter, half or whole of each pixel."""
    out = run(build_case(ADVERSARIAL["half_square_ccw"], G16), G16)
    cov = out["area_per_pixel_area"]
    assert cov[4:7, 3:6].tolist() == [[1.0] * 3] * 3
    assert cov[3, 2] == cov[3, 6] == cov[7, 2] == cov[7, 6] == 0.25
    assert cov[3, 3] == cov[5, 2] == cov[7, 4] == cov[5, 6] == 0.5
    assert cov.sum() == 16.0
    assert out["polygons_touching"].sum() == 25


def test_larger_than_tile_is_exactly_one():
    for grid in (G16, G32, G_MERC):
        big = shapely.box(grid.left - 7 * (grid.right - grid.left), grid.bottom - 1e3,
                          grid.right + 1e4, grid.top + 3 * (grid.top - grid.bottom))
        out = run([big], grid)
        for p in ("area_per_pixel_area", "polygons_touching", "polygons_covering_center",
                  "union_area_per_pixel_area"):
            assert np.all(out[p] == 1.0), p
        assert np.all(out["centroids_per_pixel"] == 0.0)


def test_duplicates_count_twice():
    geoms = build_case(ADVERSARIAL["duplicated_on_edges"], G16)
    out = run(geoms, G16)
    want = np.zeros((16, 16))
    want[2:6, 2:6] = 2.0
    for p in ("area_per_pixel_area", "polygons_touching", "polygons_covering_center"):
        assert_counts_equal(out[p], want, p)
    assert_counts_equal(out["union_area_per_pixel_area"], want / 2, "union")


@pytest.mark.parametrize("case", ["crossing_west_north", "crossing_east_south",
                                  "crossing_all_edges", "larger_than_tile"])
@pytest.mark.parametrize("grid", [G16, G32, G_MERC], ids=["G16", "G32", "MERC"])
def test_crossing_tile_edge_counts_inside_area_only(case, grid):
    geoms = build_case(ADVERSARIAL[case], grid)
    tile = shapely.box(grid.left, grid.bottom, grid.right, grid.top)
    inside = sum(shapely.intersection(g, tile).area for g in geoms)
    out = run(geoms, grid, props=("area_per_pixel_area", "area_within_pixel"))
    assert math.isclose(out["area_per_pixel_area"].sum() * grid.pixel_area, inside,
                        rel_tol=1e-9)
    assert math.isclose(out["area_within_pixel"].sum(), inside, rel_tol=1e-9)


def test_slivers_touch_every_pixel_they_cross():
    grid = G16
    tri = px_poly([(0.3, 0.2), (14.7, 9.9), (14.7, 9.9 + 1e-6)], (), grid)
    out = run([tri], grid)
    ref = R.touching_ref([tri], grid)
    assert ref.sum() >= 15  # the sliver crosses many pixels
    assert_counts_equal(out["polygons_touching"], ref, "touching")
    assert out["polygons_covering_center"].sum() == 0
    assert math.isclose(out["area_per_pixel_area"].sum() * grid.pixel_area, tri.area,
                        rel_tol=1e-9)


# ---------------------------------------------------------------------------------------------
# Centroids: the PDG edge rule with exact edge values
# ---------------------------------------------------------------------------------------------


def _dummy_polys(n, grid):
    return [shapely.box(grid.left, grid.bottom, grid.left + grid.dx / 4,
                        grid.bottom + grid.dy / 4)] * n


def _edge_values(edges):
    v = np.concatenate([edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf),
                        0.5 * (edges[1:] + edges[:-1])])
    return np.unique(v)


def centroid_edge_check(grid):
    xs = _edge_values(grid.col_edges)
    ys = _edge_values(grid.row_edges)
    cx, cy = (a.ravel() for a in np.meshgrid(xs, ys))
    cx = np.concatenate([cx, [np.nan, grid.left + grid.dx / 2, np.inf, -np.inf]])
    cy = np.concatenate([cy, [grid.top - grid.dy / 2, np.nan, grid.top - grid.dy / 2,
                              grid.top - grid.dy / 2]])
    out = run(_dummy_polys(len(cx), grid), grid, props=("centroids_per_pixel",),
              centroids=(cx, cy))["centroids_per_pixel"]
    assert_counts_equal(out, R.centroid_count_ref(cx, cy, grid), "centroids vs searchsorted")
    # Hand-written rule on the exact edge values (independent of searchsorted):
    H, W = grid.height, grid.width
    ce, re = grid.col_edges, grid.row_edges
    mid_x = 0.5 * (ce[1] + ce[2])
    mid_y = 0.5 * (re[1] + re[2])
    cases = [  # (cx, cy, expected (row, col) or None)
        (ce[0], mid_y, None),  # west edge: dropped
        (ce[W], mid_y, (1, W - 1)),  # east edge: kept
        (mid_x, re[0], None),  # north edge: dropped
        (mid_x, re[H], (H - 1, 1)),  # south edge: kept
        (ce[W], re[H], (H - 1, W - 1)),  # south-east corner: kept
        (ce[0], re[H], None),
        (ce[W], re[0], None),
        (ce[2], mid_y, (1, 1)),  # interior vertical edge -> western pixel
        (mid_x, re[2], (1, 1)),  # interior horizontal edge -> northern pixel
        (ce[2], re[2], (1, 1)),  # interior corner -> north-west pixel
        (np.nextafter(ce[2], np.inf), re[2], (1, 2)),
        (ce[2], np.nextafter(re[2], -np.inf), (2, 1)),
        (np.nextafter(ce[W], np.inf), mid_y, None),
        (mid_x, np.nextafter(re[H], -np.inf), None),
    ]
    cx = np.array([c[0] for c in cases])
    cy = np.array([c[1] for c in cases])
    out = compute_stats(RaggedPolygons.from_shapely(_dummy_polys(len(cases), grid)), grid,
                        [stat("centroids_per_pixel")], centroids=(cx, cy))[0]
    for i, (x, y, where) in enumerate(cases):
        single = compute_stats(RaggedPolygons.from_shapely(_dummy_polys(1, grid)), grid,
                               [stat("centroids_per_pixel")],
                               centroids=(cx[i:i + 1], cy[i:i + 1]))[0]
        want = np.zeros((H, W))
        if where is not None:
            want[where] = 1
        assert_counts_equal(single, want, f"centroid case {i} ({x!r}, {y!r})")
    assert out.sum() == sum(c[2] is not None for c in cases)


@pytest.mark.parametrize("grid", [G32, G16, G_MERC, G_RECT,
                                  TileGrid.from_tile((1, 0, 1), "WGS1984Quad", 13)],
                         ids=["G32", "G16", "MERC", "RECT", "G13"])
def test_centroids_on_pixel_edges(grid):
    centroid_edge_check(grid)


def test_nojit_small_centroids_on_pixel_edges():
    centroid_edge_check(G8_INEXACT)


@HYP
@given(geoms=polygon_lists(G32, max_size=8))
def test_default_centroids_are_shapely_centroids(geoms):
    out = run(geoms, G32, props=("centroids_per_pixel",))["centroids_per_pixel"]
    assert_counts_equal(out, R.centroid_count_ref(*centroids_of(geoms), G32), "centroids")


# ---------------------------------------------------------------------------------------------
# Empty input, null and empty geometries
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("grid", [G16, G8], ids=["G16", "G8"])
def test_nojit_small_empty_input_is_all_zero(grid):
    polys = RaggedPolygons.from_shapely([])
    assert len(polys) == 0
    out = compute_stats(polys, grid, [stat(p) for p in GEOM_PROPS])
    assert out.shape == (len(GEOM_PROPS), grid.height, grid.width)
    assert np.all(out == 0.0)
    out = compute_stats(polys, grid, [stat("area_per_pixel_area")], centroids=([], []))
    assert np.all(out == 0.0)


def _null_case():
    grid = G8
    a = px_poly(rect(1.5, 1.5, 4.5, 3.25), (), grid)
    b = px_poly([(2, 7.5), (7.5, 1), (6.5, 7)], (), grid)
    mixed = [None, a, shapely.Polygon(), b, shapely.MultiPolygon(), shapely.GeometryCollection(),
             None]
    return grid, a, b, mixed


def test_nojit_small_null_and_empty_geometries_are_ignored():
    """With explicit centroids (NaN for the null/empty rows)."""
    grid, a, b, mixed = _null_case()
    cx, cy = centroids_of(mixed)
    assert np.isnan(cx[0]) and np.isnan(cx[2]) and not np.isnan(cx[1])
    out = run(mixed, grid, centroids=(cx, cy))
    ref = run([a, b], grid, centroids=centroids_of([a, b]))
    for p in GEOM_PROPS:
        assert_counts_equal(out[p], ref[p], p)
    check_against_reference([a, b], grid, centroids=centroids_of([a, b]))
    check_against_reference(mixed, grid, centroids=(cx, cy))


@pytest.mark.parametrize("null", [None, shapely.Polygon(), shapely.MultiPolygon()],
                         ids=["None", "empty_polygon", "empty_multipolygon"])
def test_null_geometry_with_default_centroids(null):
    """Default centroids (shapely.centroid inside compute_stats) must skip null/empty rows."""
    grid, a, b, _ = _null_case()
    out = run([null, a, b], grid, props=("centroids_per_pixel", "area_per_pixel_area"))
    assert_counts_equal(out["centroids_per_pixel"],
                        R.centroid_count_ref(*centroids_of([a, b]), grid), "centroids")
    assert_close(out["area_per_pixel_area"], R.coverage_ref([a, b], grid), 1e-12, "coverage")


# ---------------------------------------------------------------------------------------------
# Invariants (hypothesis)
# ---------------------------------------------------------------------------------------------


@HYP
@given(geoms=polygon_lists(G32, max_size=6))
def test_total_coverage_is_area_inside_tile(geoms):
    tile = shapely.box(G32.left, G32.bottom, G32.right, G32.top)
    inside = float(sum(shapely.intersection(g, tile).area for g in geoms))
    cov = run(geoms, G32, props=("area_per_pixel_area",))["area_per_pixel_area"]
    total = cov.sum() * G32.pixel_area
    assert math.isclose(total, inside, rel_tol=1e-9, abs_tol=1e-12 * G32.pixel_area)


@HYP
@given(a=polygon_lists(G16, min_size=0, max_size=4), b=polygon_lists(G16, min_size=0,
                                                                        max_size=4))
def test_statistics_add_up_across_polygon_lists(a, b):
    props = ("centroids_per_pixel", "area_per_pixel_area", "polygons_covering_center",
             "polygons_touching")
    ab = run(a + b, G16, props)
    sa = run(a, G16, props)
    sb = run(b, G16, props)
    for p in props:
        if p == "area_per_pixel_area":
            assert_close(ab[p], sa[p] + sb[p], 1e-12, p)
        else:
            assert_counts_equal(ab[p], sa[p] + sb[p], p)


def _snap(g, q=2.0 ** -12):
    """Snap CRS coordinates to multiples of q (dyadic, so shifts by dx are exact)."""
    return shapely.transform(g, lambda c: np.round(c / q) * q)


@HYP
@given(geoms=polygon_lists(G_POW2, max_size=5),
       direction=st.sampled_from(["east", "south", "south-east"]))
def test_shift_by_one_pixel_shifts_output(geoms, direction):
    grid = G_POW2
    assert grid.dx == 0.5 and grid.dy == 0.5
    geoms = [g for g in (_snap(g) for g in geoms) if g.is_valid and g.area > 0]
    sx = grid.dx if "east" in direction else 0.0
    sy = -grid.dy if "south" in direction else 0.0
    moved = [shapely.transform(g, lambda c: c + [sx, sy]) for g in geoms]
    cx, cy = (np.round(v * 2.0 ** 20) / 2.0 ** 20 for v in centroids_of(geoms))
    props = ("centroids_per_pixel", "area_per_pixel_area", "polygons_covering_center",
             "polygons_touching", "union_area_per_pixel_area")
    before = run(geoms, grid, props, centroids=(cx, cy))
    after = run(moved, grid, props, centroids=(cx + sx, cy + sy))
    dc = 1 if sx else 0
    dr = 1 if sy else 0
    H, W = grid.height, grid.width
    for p in props:
        x = after[p][dr:, dc:]
        y = before[p][:H - dr, :W - dc]
        if p in ("area_per_pixel_area", "union_area_per_pixel_area"):
            assert_close(x, y, 1e-12 if p == "area_per_pixel_area" else 1e-9, p)
        else:
            assert_counts_equal(x, y, p)
    # And the shifted input still agrees with the references.
    check_against_reference(moved, grid, centroids=(cx + sx, cy + sy))


@HYP
@given(geoms=polygon_lists(G16, max_size=6))
def test_untouched_pixels_exactly_zero_covered_exactly_integer(geoms):
    """Add far-away polygons west of and across the tile so that cancelling prefix-sum
    contributions would leave residue, then demand exact 0.0 / 1.0 / k values."""
    grid = G16
    west = [px_poly([(-40.3, -3.1), (-0.7, 5.3), (-20.1, 19.7)], (), grid),
            px_poly([(-1e3 / 3, 2.2), (5.0 / 3, 7.1), (-7.1, 11.9)], (), grid)]
    geoms = geoms + west
    out = run(geoms, grid, props=("area_per_pixel_area", "polygons_touching"))
    cov = out["area_per_pixel_area"]
    mask, n = exact_pixels_ref(geoms, grid)
    assert mask.any()
    bad = np.argwhere(mask & (cov != n))
    assert bad.size == 0, (tuple(bad[0]), cov[tuple(bad[0])], n[tuple(bad[0])])
    untouched = R.touching_ref(geoms, grid) == 0
    assert np.all(cov[untouched] == 0.0)
    assert np.all(out["polygons_touching"][untouched] == 0.0)


# ---------------------------------------------------------------------------------------------
# Attribute statistics
# ---------------------------------------------------------------------------------------------

AGGS = ("sum", "mean", "min", "max", "count")


def check_attributes(geoms, values, grid):
    stats = [stat("v", w, a) for w in ("count", "area") for a in AGGS]
    polys = RaggedPolygons.from_shapely(np.asarray(geoms, dtype=object))
    out = compute_stats(polys, grid, stats, attributes={"v": values})
    cov = R.coverage_ref(geoms, grid)
    for band, s in zip(out, stats):
        ref = R.attribute_ref(geoms, values, grid, s["weight_by"], s["aggregation_method"])
        what = f"{s['weight_by']}/{s['aggregation_method']}"
        if not (s["weight_by"] == "area" and s["aggregation_method"] == "mean"):
            assert np.array_equal(np.isnan(band), np.isnan(ref)), what
        if s["aggregation_method"] in ("min", "max", "count"):
            assert np.array_equal(band, ref, equal_nan=True), what
        elif s["aggregation_method"] == "sum":
            assert_close(band, ref, 1e-12 * max(1.0, np.abs(values).max(initial=0)), what)
        elif s["weight_by"] == "count":
            assert np.allclose(band, ref, rtol=1e-12, atol=0, equal_nan=True), what
        else:
            # Area-weighted mean: exact NaN where no polygon has area in the pixel, a value
            # where the covered area is not vanishingly small.
            nan_ref = R.touching_ref(geoms, grid) == 0
            assert np.all(np.isnan(band[nan_ref])), what
            solid = cov > 1e-9
            assert np.allclose(band[solid], ref[solid], rtol=1e-6, atol=1e-9), what


def draw_polygons_and_values(data, bound):
    """Up to 6 polygons on G16 and one value each: small integers or floats within ±bound."""
    geoms = data.draw(polygon_lists(G16, max_size=6))
    values = np.array(data.draw(st.lists(
        st.one_of(st.integers(-50, 50).map(float), st.floats(-bound, bound)),
        min_size=len(geoms), max_size=len(geoms))), dtype=np.float64)
    return geoms, values


@HYP
@given(data=st.data())
def test_attribute_statistics_vs_reference(data):
    check_attributes(*draw_polygons_and_values(data, 1e3), G16)


def check_area_mean_in_range(geoms, values, grid):
    """An area-weighted mean lies within [min, max] of the values of the polygons with
    positive area in the pixel (the reference's GEOS intersections), whatever the rounding
    residue of the other polygons in the row; NaN where none has area."""
    polys = RaggedPolygons.from_shapely(np.asarray(geoms, dtype=object))
    band = compute_stats(polys, grid, [stat("v", "area", "mean")], attributes={"v": values})[0]
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    areas = R.intersection_areas(geoms, grid)  # (present polygons, H, W)
    has = areas > 0
    v = values[present][:, None, None]
    lo = np.where(has, v, np.inf).min(axis=0, initial=np.inf)
    hi = np.where(has, v, -np.inf).max(axis=0, initial=-np.inf)
    assert np.all(np.isnan(band[~has.any(axis=0)]))
    ok = ~np.isnan(band)
    assert np.all((band[ok] >= lo[ok]) & (band[ok] <= hi[ok])), (band[ok], lo[ok], hi[ok])


def test_area_mean_stays_in_range_where_coverage_is_tiny():
    """Found by hypothesis: pixel (2, 1) is covered 1.2e-6 by one polygon of value 0 only;
    the value-31 diamond's edges further west leave 1.8e-15 of residue in Σ value x area,
    which divided by 1.2e-6 gave 1.4e-9 instead of 0."""
    wkts = [
        "POLYGON ((2.8114682862865408 41.69402072202722, 6.277591818753776 35.02492634242469, "
        "13.812140410341186 28.84815918467881, 20.944456772833636 37.54830649982942, "
        "16.97606636249245 48.075147315150616, 5.875359589658815 49.901840815321194, "
        "2.8114682862865408 41.69402072202722))",
        "POLYGON ((4.21875 45, 0 49.21875, -4.21875 45, 0 40.78125, 4.21875 45))",
        "POLYGON ((0.421875 45, -0.2109375000000002 45.36535446722156, "
        "-0.2109374999999999 44.63464553277844, 0.421875 45))",
        "POLYGON ((0 45, 0.3515625 41.1328125, 0 45.3515625, 0 45))",
    ]
    geoms = [shapely.from_wkt(w) for w in wkts]
    values = np.array([0.0, 31.0, 0.0, 1.0])
    check_area_mean_in_range(geoms, values, G16)
    polys = RaggedPolygons.from_shapely(np.asarray(geoms, dtype=object))
    band = compute_stats(polys, G16, [stat("v", "area", "mean")], attributes={"v": values})[0]
    assert band[2, 1] == 0.0


@HYP
@given(data=st.data())
def test_area_mean_in_range_vs_reference(data):
    check_area_mean_in_range(*draw_polygons_and_values(data, 1e6), G16)


def test_nojit_small_attribute_statistics():
    grid = G8
    geoms = [px_poly(rect(0.5, 0.5, 3.5, 2.5), (), grid),
             px_poly([(2.2, 1.1), (7.5, 3.0), (4.0, 7.9)], (), grid),
             px_poly(rect(1, 4, 3, 6), [rect(1.5, 4.5, 2.5, 5.5)], grid),
             px_poly(rect(2.5, 2.5, 3.5, 3.5), (), grid),
             px_poly(rect(1.2, 1.2, 1.8, 1.8), (), grid)]  # centroid in the pixel of #0
    assert R.centroid_index_ref(*centroids_of(geoms[:1]), grid) == R.centroid_index_ref(
        *centroids_of(geoms[-1:]), grid)
    check_attributes(geoms, np.array([3.0, -1.5, 7.25, 10.0, 5.0]), grid)


def test_attribute_hand_values():
    """Two squares overlapping one pixel by 1/4 and 3/4 (hand-computed expectations)."""
    grid = G16
    a = px_poly(rect(0.5, 0.5, 3.5, 3.5), (), grid)  # covers 1/4 of pixel (0, 0)
    b = px_poly(rect(0.0, 0.25, 1.0, 1.0), (), grid)  # covers 3/4 of pixel (0, 0)
    stats = [stat("v", "area", a_) for a_ in AGGS]
    out = compute_stats(RaggedPolygons.from_shapely([a, b]), grid, stats,
                        attributes={"v": np.array([4.0, 8.0])})
    px = {s["aggregation_method"]: band[0, 0] for s, band in zip(stats, out)}
    assert px["sum"] == pytest.approx(0.25 * 4 + 0.75 * 8, abs=1e-12)
    assert px["mean"] == pytest.approx((0.25 * 4 + 0.75 * 8) / 1.0, abs=1e-12)
    assert (px["min"], px["max"], px["count"]) == (4.0, 8.0, 2.0)
    assert np.isnan(out[1][10, 10]) and np.isnan(out[2][10, 10]) and out[0][10, 10] == 0


# ---------------------------------------------------------------------------------------------
# WKB decoding
# ---------------------------------------------------------------------------------------------


def _ragged_equal(a: RaggedPolygons, b: RaggedPolygons):
    for name in ("x", "y", "ring_offsets", "part_offsets", "geom_offsets"):
        u, v = getattr(a, name), getattr(b, name)
        assert u.shape == v.shape and np.array_equal(u, v), name


def decode(wkbs, valid=None):
    lengths = [0 if w is None else len(w) for w in wkbs]
    data = np.frombuffer(b"".join(w or b"" for w in wkbs), np.uint8)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    if valid is None:
        valid = np.array([w is not None for w in wkbs], bool)
    return RaggedPolygons.from_wkb(data, offsets, valid)


WKB_GEOMS = [
    shapely.box(0.5, 1.25, 3.0, 4.0),
    shapely.Polygon(rect(0, 0, 10, 10), [rect(2, 2, 4, 4), rect(6, 6, 8, 9)[::-1]]),
    shapely.MultiPolygon([shapely.box(-1, -1, 0, 0),
                          shapely.Polygon(rect(1, 1, 5, 5), [rect(2, 2, 3, 3)])]),
    None,
    shapely.Polygon(),
    shapely.Polygon([(-146.123456789, 68.1), (-146.1, 68.2), (-146.2, 68.15)]),
]


def _wkb_variants():
    out = []
    for bo in (0, 1):
        out.append((f"2d-bo{bo}", dict(byte_order=bo, output_dimension=2), False))
        out.append((f"z-iso-bo{bo}", dict(byte_order=bo, output_dimension=3, flavor="iso"),
                    True))
        out.append((f"z-ext-bo{bo}", dict(byte_order=bo, output_dimension=3,
                                          flavor="extended"), True))
        out.append((f"z-srid-bo{bo}", dict(byte_order=bo, output_dimension=3,
                                           flavor="extended", include_srid=True), True))
        out.append((f"2d-srid-bo{bo}", dict(byte_order=bo, output_dimension=2,
                                            flavor="extended", include_srid=True), False))
    return out


def _to_wkb(geoms, kw, z):
    res = []
    for g in geoms:
        if g is None:
            res.append(None)
            continue
        if z:
            g = shapely.force_3d(g, 7.5)
        if kw.get("include_srid"):
            g = shapely.set_srid(g, 4326)
        res.append(shapely.to_wkb(g, **kw))
    return res


@pytest.mark.parametrize("name,kw,z", _wkb_variants(), ids=[v[0] for v in _wkb_variants()])
def test_nojit_small_wkb_matches_from_shapely(name, kw, z):
    wkbs = _to_wkb(WKB_GEOMS, kw, z)
    if kw["byte_order"] == 0:
        assert all(w[0] == 0 for w in wkbs if w is not None)
    polys, status = decode(wkbs)
    want = [K.WKB_OK, K.WKB_OK, K.WKB_OK, K.WKB_NULL, K.WKB_NULL, K.WKB_OK]
    assert status.tolist() == want
    _ragged_equal(polys, RaggedPolygons.from_shapely(WKB_GEOMS))


def _wkt(kind, dims, rings_by_part):
    """WKT with extra ordinates (z = 1.5, m = index) appended to every vertex."""
    extra = {"M": 1, "ZM": 2}[dims]

    def ring(r):
        return "(" + ", ".join(" ".join(str(v) for v in (x, y, 1.5, i)[:2 + extra])
                               for i, (x, y) in enumerate(r + r[:1])) + ")"

    def part(rings):
        return "(" + ", ".join(ring(r) for r in rings) + ")"

    if kind == "POLYGON":
        return f"POLYGON {dims} {part(rings_by_part[0])}"
    return f"MULTIPOLYGON {dims} (" + ", ".join(part(p) for p in rings_by_part) + ")"


@pytest.mark.parametrize("dims", ["M", "ZM"])
@pytest.mark.parametrize("flavor", ["iso", "extended"])
@pytest.mark.parametrize("bo", [0, 1])
def test_wkb_with_m_values(dims, flavor, bo):
    wkts = [_wkt("POLYGON", dims, [[rect(0, 0, 4, 3), rect(1, 1, 2, 2)[::-1]]]),
            _wkt("MULTIPOLYGON", dims, [[rect(0, 0, 1, 1)], [rect(5, 5, 7, 8)]])]
    geoms = shapely.from_wkt(wkts)
    assert all(g.has_m for g in geoms)
    wkbs = [shapely.to_wkb(g, output_dimension=4, flavor=flavor, byte_order=bo)
            for g in geoms]
    polys, status = decode(wkbs)
    assert status.tolist() == [K.WKB_OK, K.WKB_OK]
    _ragged_equal(polys, RaggedPolygons.from_shapely(shapely.force_2d(geoms)))


@HYP
@given(geoms=polygon_lists(G32, min_size=0, max_size=6), bo=st.sampled_from([0, 1]),
       z=st.booleans())
def test_wkb_roundtrip_random(geoms, bo, z):
    kw = dict(byte_order=bo, output_dimension=3 if z else 2)
    polys, status = decode(_to_wkb(geoms, kw, z))
    assert np.all(status == K.WKB_OK)
    _ragged_equal(polys, RaggedPolygons.from_shapely(np.asarray(geoms, dtype=object)))


def test_nojit_small_wkb_unsupported_and_null():
    poly = shapely.box(0, 0, 1, 1)
    point_wkb = shapely.to_wkb(shapely.Point(1, 2))
    bad_multi = (b"\x01" + struct.pack("<II", 6, 2) + shapely.to_wkb(poly, byte_order=1)
                 + point_wkb)  # a MultiPolygon whose second part is a Point
    wkbs = [shapely.to_wkb(shapely.Point(1, 2)),
            shapely.to_wkb(shapely.LineString([(0, 0), (1, 1)])),
            shapely.to_wkb(shapely.MultiPoint([(0, 0), (1, 1)])),
            shapely.to_wkb(shapely.MultiLineString([[(0, 0), (1, 1)]])),
            shapely.to_wkb(shapely.GeometryCollection([poly])),
            bad_multi,
            None,
            shapely.to_wkb(poly),
            shapely.to_wkb(shapely.MultiPolygon()),
            b""]
    polys, status = decode(wkbs)
    U, N = K.WKB_UNSUPPORTED_TYPE, K.WKB_NULL
    assert status.tolist() == [U, U, U, U, U, U, N, K.WKB_OK, N, N]
    _ragged_equal(polys, RaggedPolygons.from_shapely([None] * 7 + [poly, None, None]))
    # valid=False wins over present bytes
    valid = np.ones(len(wkbs), bool)
    valid[7] = False
    polys, status = decode(wkbs, valid)
    assert status[7] == N and len(polys) == len(wkbs) and polys.x.size == 0


def test_nojit_small_wkb_mixed_byte_orders():
    """A big-endian MultiPolygon header with little- and big-endian parts."""
    a = shapely.Polygon(rect(0, 0, 3, 2), [rect(1, 0.5, 2, 1.5)])
    b = shapely.box(5, 5, 6.5, 7)
    body = (b"\x00" + struct.pack(">II", 6, 2) + shapely.to_wkb(a, byte_order=1)
            + shapely.to_wkb(b, byte_order=0))
    polys, status = decode([body, shapely.to_wkb(a, byte_order=0)])
    assert status.tolist() == [K.WKB_OK, K.WKB_OK]
    _ragged_equal(polys, RaggedPolygons.from_shapely([shapely.MultiPolygon([a, b]), a]))


@pytest.mark.parametrize("bo", [0, 1])
@pytest.mark.parametrize("which", [1, 2])
def test_nojit_small_wkb_truncated(which, bo):
    g = WKB_GEOMS[which]
    full = shapely.to_wkb(g, byte_order=bo)
    follow = shapely.box(2, 3, 4, 5)
    for cut in range(1, len(full)):
        polys, status = decode([full[:cut], shapely.to_wkb(follow)])
        assert status.tolist() == [K.WKB_TRUNCATED, K.WKB_OK], cut
        _ragged_equal(polys, RaggedPolygons.from_shapely([None, follow]))
    # EWKB with SRID and Z, truncated
    full = shapely.to_wkb(shapely.set_srid(shapely.force_3d(g), 3857), byte_order=bo,
                          output_dimension=3, include_srid=True)
    for cut in range(1, len(full), 7):
        _, status = decode([full[:cut]])
        assert status.tolist() == [K.WKB_TRUNCATED], cut


def test_wkb_decoded_polygons_give_same_statistics():
    geoms = build_case(ADVERSARIAL["crossing_all_edges"], G16) + build_case(
        ADVERSARIAL["multipolygon_sharing_centre_vertex"], G16)
    polys, status = decode([shapely.to_wkb(g, byte_order=0) for g in geoms])
    assert np.all(status == K.WKB_OK)
    stats = [stat(p) for p in GEOM_PROPS]
    a = compute_stats(polys, G16, stats)
    b = compute_stats(RaggedPolygons.from_shapely(geoms), G16, stats)
    assert np.array_equal(a, b)
    assert_close(a[1], R.coverage_ref(geoms, G16), 1e-12, "coverage")


def test_wkb_decoder_makes_room_for_tiny_rings_and_parts():
    """Rings of 0 points and polygons of empty rings overflow the first, tight guess of the
    output sizes; the decoder must retry with room for anything, not write out of bounds."""
    many_empty_rings = b"\x01" + struct.pack("<II", 3, 40) + struct.pack("<I", 0) * 40
    multi_of_empty = (b"\x01" + struct.pack("<II", 6, 30)
                      + (b"\x01" + struct.pack("<III", 3, 1, 0)) * 30)
    box = shapely.box(0, 0, 1, 1)
    polys, status = decode([many_empty_rings, multi_of_empty, shapely.to_wkb(box)])
    assert status.tolist() == [K.WKB_OK, K.WKB_OK, K.WKB_OK]
    assert np.diff(polys.geom_offsets).tolist() == [1, 30, 1]
    assert polys.part_offsets[1] == 40 and polys.ring_offsets[-1] == polys.x.size == 5
    _ragged_equal(polys.take([2]), RaggedPolygons.from_shapely([box]))


# ---------------------------------------------------------------------------------------------
# No-data pixels
# ---------------------------------------------------------------------------------------------

NODATA_STATS = [{"name": "n", "weight_by": "count", "property": "centroids_per_pixel",
                 "nodata_val": -1},
                {"name": "cov", "weight_by": "area", "property": "area_per_pixel_area",
                 "nodata_val": -9}]


def _no_data_ref(geoms, cx, cy, grid):
    """No polygon area (GEOS intersection areas) and no centroid (numpy histogram)."""
    return (R.touching_ref(geoms, grid) == 0) & (R.centroid_count_ref(cx, cy, grid) == 0)


@HYP
@given(geoms=polygon_lists(G_RECT), data=st.data())
def test_no_data_pixels_vs_reference(geoms, data):
    # Staging centroids anywhere on (or just outside) the tile, so some fall in pixels that
    # no polygon covers: those pixels hold data (a count), not no-data.
    g = G_RECT
    n = len(geoms)
    fx = np.array(data.draw(st.lists(st.floats(-0.1, 1.1), min_size=n, max_size=n)))
    fy = np.array(data.draw(st.lists(st.floats(-0.1, 1.1), min_size=n, max_size=n)))
    cx = g.left + fx * (g.right - g.left)
    cy = g.bottom + fy * (g.top - g.bottom)
    polys = RaggedPolygons.from_shapely(geoms)
    out = compute_stats(polys, g, NODATA_STATS, centroids=(cx, cy))
    empty = _no_data_ref(geoms, cx, cy, g)
    assert (out[0][empty] == -1).all() and (out[1][empty] == -9).all()
    assert (out[0][~empty] >= 0).all() and (out[1][~empty] >= 0).all()


def test_nojit_small_no_data_mask():
    g = G_RECT
    box = shapely.box(g.left + 2.5 * g.dx, g.top - 3.5 * g.dy, g.left + 4 * g.dx,
                      g.top - 2 * g.dy)  # covers (2, 3) fully and (2, 2) half
    cx = np.array([g.left + 10.5 * g.dx])
    cy = np.array([g.top - 7.5 * g.dy])  # centroid in pixel (7, 10), far from the box
    out = compute_stats(RaggedPolygons.from_shapely([box]), g, NODATA_STATS, centroids=(cx, cy))
    data = np.zeros((g.height, g.width), bool)
    data[2, 2] = data[2, 3] = data[3, 2] = data[3, 3] = True
    data[7, 10] = True
    np.testing.assert_array_equal(out[1] != -9, data)
    np.testing.assert_array_equal(out[0] != -1, data)
    assert out[0][7, 10] == 1 and out[0][2, 2] == 0


# ---------------------------------------------------------------------------------------------
# Polygon centroids: GEOS's doubles
# ---------------------------------------------------------------------------------------------


def _kernel_centroids(geoms):
    polys = RaggedPolygons.from_shapely(geoms)
    cx = np.empty(len(polys))
    cy = np.empty(len(polys))
    K.polygon_centroids(*polys.arrays, cx, cy)
    return cx, cy


@HYP
@given(geoms=polygon_lists(G32, min_size=1, max_size=8))
def test_polygon_centroids_are_geos_bit_for_bit(geoms):
    if not geoms:
        return
    cx, cy = _kernel_centroids(geoms)
    arr = np.asarray(geoms, dtype=object)
    c = shapely.centroid(arr)
    sure = ~np.isnan(cx)
    # Bit for bit, not approximately: a centroid on a pixel edge must pick pdgraster's pixel.
    np.testing.assert_array_equal(cx[sure], shapely.get_x(c)[sure])
    np.testing.assert_array_equal(cy[sure], shapely.get_y(c)[sure])
    # It answers for every polygon without holes (these have positive area) and leaves
    # MultiPolygons to GEOS; with holes, for those whose rings the star test proves simple.
    polygon = shapely.get_type_id(arr) == 3
    no_holes = polygon & (shapely.get_num_interior_rings(arr) == 0)
    assert not (sure & ~polygon).any()
    np.testing.assert_array_equal(sure[no_holes], True)



def test_polygon_centroids_of_self_intersecting_rings_are_geos_bit_for_bit():
    # Without holes the orientation cancels out of GEOS's formula, so even invalid rings
    # (whose orientation tests may disagree) get GEOS's doubles.
    rng = np.random.default_rng(1)
    geoms = [shapely.Polygon(rng.random((rng.integers(4, 9), 2)) * 10) for _ in range(500)]
    geoms = np.array([g for g in geoms if not g.is_valid], dtype=object)
    assert len(geoms) > 300
    cx, cy = _kernel_centroids(geoms)
    c = shapely.centroid(geoms)
    np.testing.assert_array_equal(cx, shapely.get_x(c))
    np.testing.assert_array_equal(cy, shapely.get_y(c))

@needs_pdg_example
def test_polygon_centroids_of_real_iwp_are_geos_bit_for_bit():
    from fastraster.io.staged import read_staged

    paths = sorted((PDG_EXAMPLE / "staged").rglob("*.gpkg"))
    assert len(paths) == 4
    for path in paths:
        polys = read_staged(path).polygons
        cx, cy = _kernel_centroids(polys.to_shapely())
        c = shapely.centroid(polys.to_shapely())
        np.testing.assert_array_equal(cx, shapely.get_x(c))
        np.testing.assert_array_equal(cy, shapely.get_y(c))


def test_nojit_small_polygon_centroids_holes_orientations():
    shell = [(0, 0), (4, 0), (4, 3), (0, 3)]
    hole = [(1, 1), (1, 2), (2, 2), (2, 1)]
    geoms = [shapely.Polygon(shell, [hole]),
             shapely.Polygon(shell[::-1], [hole[::-1]]),  # both orientations flipped
             shapely.Polygon([(0.1, 0.2), (3.3, 0.7), (1.9, 2.9)])]
    cx, cy = _kernel_centroids(geoms)
    c = shapely.centroid(np.asarray(geoms, dtype=object))
    np.testing.assert_array_equal(cx, shapely.get_x(c))
    np.testing.assert_array_equal(cy, shapely.get_y(c))


def test_nojit_small_polygon_centroids_leave_degenerate_cases_to_geos():
    flat = shapely.Polygon([(0, 0), (2, 0), (4, 0), (0, 0)])  # zero area: GEOS uses the line
    multi = shapely.MultiPolygon([shapely.box(1, 1, 3, 2), shapely.box(50, 50, 51, 52)])
    # A self-intersecting exterior with a hole: its orientation (which decides whether the
    # hole adds or subtracts) is GEOS's business.
    bowtie = shapely.Polygon([(0, 0), (8, 8), (8, 0), (0, 8), (0, 0)],
                             [[(6, 3), (7, 3), (7, 4), (6, 4), (6, 3)]])
    geoms = [flat, multi, bowtie, shapely.box(0, 0, 1, 1)]
    cx, cy = _kernel_centroids(geoms)
    assert np.isnan(cx[:3]).all() and np.isnan(cy[:3]).all() and (cx[3], cy[3]) == (0.5, 0.5)
    # compute_stats asks GEOS for those: the line's centroid (2, 0), the MultiPolygon's, ...
    g = TileGrid.from_tile((0, 0, 0), "WGS1984Quad", 4)  # pixels of 45 degrees
    out = compute_stats(RaggedPolygons.from_shapely(geoms), g,
                        [{"name": "n", "weight_by": "count", "property": "centroids_per_pixel"}])
    np.testing.assert_array_equal(out[0], R.centroid_count_ref(*centroids_of(geoms), g))
