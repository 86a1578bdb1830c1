"""The raster kernels never read or write outside their arrays, whatever the coordinates.

Non-finite coordinates are refused before the kernels (WKB decoder, ``from_shapely``), but a
finite garbage coordinate still reaches them (a flipped byte in a staged file can make a
longitude of 1e300), and divided by a pixel size of 1e-5 degrees it becomes inf in pixel
space, so inf - inf = NaN appears inside the kernels anyway. These tests feed the kernels
ragged arrays with such values (and, for good measure, NaN and inf directly) and check the
outputs' contracts. Out-of-bounds accesses only surface as errors with
``NUMBA_BOUNDSCHECK=1``: ``test_fuzz_wkb.py::test_fuzzers_under_numba_boundscheck`` runs
this file that way in a subprocess; run here without it, the tests still catch crashes and
broken contracts.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastraster
from fastraster import kernels as K
from fastraster.model.geometry import RaggedPolygons

#: Examples per fuzz test; FASTRASTER_FUZZ_EXAMPLES=5000 for a long local run,
#: FASTRASTER_FUZZ_RANDOM=1 for new examples on each run (CI: the same, derandomized ones).
N_EXAMPLES = int(os.environ.get("FASTRASTER_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=N_EXAMPLES, deadline=None, database=None,
                derandomize=os.environ.get("FASTRASTER_FUZZ_RANDOM") != "1",
                suppress_health_check=list(HealthCheck))

# Tile 1524/910 at z13 of WorldCRS84Quad (d = 180 / 2**13 degrees), 16 x 16 pixels, by hand.
Z, TX, TY, SIZE = 13, 1524, 910, 16
D = 180.0 / 2**Z
LEFT, TOP = -180.0 + TX * D, 90.0 - TY * D
DX = DY = D / SIZE

SPECIAL = [np.nan, np.inf, -np.inf, 1e300, -1e300, 1.7976931348623157e308,
           -1.7976931348623157e308, 1e20, -1e20, 5e-324, 0.0]


def _coord(lo, hi, edges, finite):
    specials = [v for v in SPECIAL if np.isfinite(v)] if finite else SPECIAL
    return st.one_of(st.floats(lo, hi), st.sampled_from(edges), st.sampled_from(specials))


@st.composite
def garbage_polygons(draw, finite=False):
    """Ragged MultiPolygon arrays: rings of 0-7 points, vertices in or near the tile, on
    pixel edges, or far away / non-finite."""
    xs_edges = [LEFT + i * DX for i in range(SIZE + 1)]
    ys_edges = [TOP - i * DY for i in range(SIZE + 1)]
    xc = _coord(LEFT - D, LEFT + 2 * D, xs_edges, finite)
    yc = _coord(TOP - 2 * D, TOP + D, ys_edges, finite)
    x, y, ro, po, go = [], [], [0], [0], [0]
    for _ in range(draw(st.integers(1, 4))):
        for _ in range(draw(st.integers(0, 2))):
            for _ in range(draw(st.integers(1, 3))):
                n = draw(st.integers(0, 7))
                pts = draw(st.lists(st.tuples(xc, yc), min_size=n, max_size=n))
                if pts and draw(st.booleans()):
                    pts.append(pts[0])  # closed, like most real rings
                x += [p[0] for p in pts]
                y += [p[1] for p in pts]
                ro.append(len(x))
            po.append(len(ro) - 1)
        go.append(len(po) - 1)
    return RaggedPolygons(np.array(x, np.float64), np.array(y, np.float64),
                          np.array(ro, np.int64), np.array(po, np.int64),
                          np.array(go, np.int64))


def _run_all_kernels(polys, values):
    n = len(polys)
    acc = np.zeros((SIZE, SIZE + 1))
    touched = np.zeros((SIZE, SIZE), np.uint8)
    K.coverage_accumulate(*polys.arrays, np.ones(n), LEFT, DX, TOP, DY, acc, touched)
    cov = np.empty((SIZE, SIZE))
    K.coverage_finish(acc, touched, True, cov)

    wacc = np.zeros((SIZE, SIZE + 1))
    # GDAL's inverse geotransform of this grid (no rotation).
    K.centre_accumulate(*polys.arrays, np.ones(n), -LEFT / DX, 1.0 / DX, TOP / DY, -1.0 / DY,
                        wacc)
    centre = np.empty((SIZE, SIZE))
    K.prefix_sum_rows(wacc, centre)

    for mode in (K.REDUCE_SUM, K.REDUCE_MIN, K.REDUCE_MAX):
        out = np.full((SIZE, SIZE), 0.0 if mode == K.REDUCE_SUM else np.nan)
        scratch_t = np.zeros((SIZE, SIZE), np.uint8)
        scratch_w = np.zeros((SIZE, SIZE + 1))
        K.touching_reduce(*polys.arrays, values, mode, LEFT, DX, TOP, DY, out, scratch_t,
                          scratch_w)
        yield "touching_scratch", (scratch_t, scratch_w)

    cx, cy = np.empty(n), np.empty(n)
    K.polygon_centroids(*polys.arrays, cx, cy)
    simple = np.empty(n, np.bool_)
    K.certainly_simple(*polys.arrays, simple)
    col_edges = np.linspace(LEFT, LEFT + D, SIZE + 1)
    row_edges = np.linspace(TOP - D, TOP, SIZE + 1)[::-1].copy()
    index = np.empty(n, np.int64)
    K.centroid_pixels(cx, cy, col_edges, row_edges, index)
    yield "centroid_index", index
    mask = np.empty((SIZE, SIZE), np.bool_)
    K.no_data_mask(touched, cov, index, mask)
    out = np.zeros((SIZE, SIZE))
    K.scatter_reduce(index, values, K.REDUCE_SUM, out)


@FUZZ
@given(polys=garbage_polygons(finite=False), seed=st.integers(0, 2**32 - 1))
def test_kernels_survive_non_finite_and_far_coordinates(polys, seed):
    """NaN, inf and huge vertices: no crash; centroid indices stay within the raster."""
    values = np.random.default_rng(seed).normal(size=len(polys))
    for name, out in _run_all_kernels(polys, values):
        if name == "centroid_index":
            assert ((out >= -1) & (out < SIZE * SIZE)).all()


@FUZZ
@given(polys=garbage_polygons(finite=True), seed=st.integers(0, 2**32 - 1))
def test_touching_scratch_is_left_clean_for_far_finite_coordinates(polys, seed):
    """Finite vertices, however far (inf in pixel space): ``touching_reduce`` must leave its
    scratch arrays all zero (its contract: they are reused across tiles). Before the fix a
    vertex at 1e300 made the scratch window's end an overflowed int64."""
    values = np.random.default_rng(seed).normal(size=len(polys))
    for name, out in _run_all_kernels(polys, values):
        if name == "touching_scratch":
            assert not out[0].any() and not out[1].any()


REGRESSIONS = {
    # One vertex 1e308 degrees south (inf in pixel rows): numba's math.ceil(inf) is an
    # undefined int64, and the centre count and touching kernels wrote outside wacc.
    "vertex_at_minus_1e308": ([-146.48882851, -146.51363181, -146.48888432, -146.50847393],
                              [69.9793634, 70.0016950, 69.9950698, -1e308], [0, 4]),
    # A vertex at (-1e300, 1e300): finite in pixel space but no precision left, so the
    # touching kernel's marks fell outside the polygon's bounding box and stayed in its
    # scratch arrays, for the next polygon to pick up.
    "vertex_at_1e300": ([-146.5, -146.53125, -1e300], [70.0, 70.0, 1e300], [0, 3]),
    # A Polygon whose exterior has no points (legal WKB): polygon_centroids read x[0] of
    # an empty x.
    "empty_exterior": ([], [], [0, 0]),
}


@pytest.mark.parametrize("name", sorted(REGRESSIONS))
def test_fuzz_regressions(name):
    x, y, ro = REGRESSIONS[name]
    polys = RaggedPolygons(np.array(x, np.float64), np.array(y, np.float64),
                           np.array(ro, np.int64), np.array([0, len(ro) - 1]),
                           np.array([0, 1]))
    for what, out in _run_all_kernels(polys, np.ones(1)):
        if what == "touching_scratch":
            assert not out[0].any() and not out[1].any()


def test_far_finite_coordinates_through_rasterize_tile():
    """A polygon reaching 1e300 degrees away crosses the whole tile: it covers every pixel
    of it (exact: the tile lies inside it) and touches every pixel; no crash, no garbage."""
    big = shapely.Polygon([(LEFT - 1.0, TOP + 1.0), (1e300, TOP + 1.0), (1e300, -1e300),
                           (LEFT - 1.0, -1e300)])
    stats = [{"name": "cov", "weight_by": "area", "property": "area_per_pixel_area"},
             {"name": "centre", "weight_by": "count", "property": "polygons_covering_center"},
             {"name": "touch", "weight_by": "count", "property": "polygons_touching"}]
    arr = fastraster.rasterize_tile([big], (TX, TY, Z), tms="WorldCRS84Quad", tile_size=SIZE,
                                    stats=stats, centroids=([0.0], [0.0]), validate="none")
    np.testing.assert_array_equal(arr, np.ones((3, SIZE, SIZE)))
