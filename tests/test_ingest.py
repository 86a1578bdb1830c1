"""In-memory geometries -> ragged arrays: every input type gives, bit for bit, the arrays of the
reference route (``shapely.to_ragged_array`` in ``RaggedPolygons.from_shapely``) and the same
statistics; the coordinate-splitting kernel against a plain-Python reference."""

from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from fastraster import kernels as K
from fastraster.model import ingest
from fastraster.model.compute import compute_stats
from fastraster.model.geometry import RaggedPolygons
from fastraster.model.grid import TileGrid
from fastraster.pipelines.tile import rasterize_tile
from fastraster.sample import ice_wedge_polygons

ga = pytest.importorskip("geoarrow.pyarrow")

def assert_same(a: RaggedPolygons, b: RaggedPolygons):
    for name, u, v in zip(("x", "y", "ring", "part", "geom"), a.arrays, b.arrays):
        assert u.dtype == v.dtype, name
        assert np.array_equal(u, v, equal_nan=u.dtype.kind == "f"), name


def _zoo():
    """Polygons, holes, MultiPolygons, None, empties, Z, a 1,000-vertex ring."""
    box = shapely.box(0, 0, 4, 4)
    holed = box.difference(shapely.box(1, 1, 2, 2)).difference(shapely.box(2.5, 2.5, 3, 3))
    multi = shapely.MultiPolygon([shapely.box(10, 0, 11, 1), holed])
    t = np.linspace(0, 2 * np.pi, 1000)
    circle = shapely.Polygon(np.c_[np.cos(t), np.sin(t)])
    with_z = shapely.Polygon([(0, 0, 1), (1, 0, 2), (1, 1, 3)])
    cw = shapely.Polygon([(0, 0), (0, 1), (1, 1), (1, 0)])
    return np.array([box, holed, None, multi, shapely.Polygon(), circle,
                     shapely.MultiPolygon(), with_z, cw, multi], dtype=object)


def _tricky():
    """Rings that return to their first vertex before their end, or never compare equal."""
    # A valid polygon whose hole touches the shell at the shell's first vertex: the vertices
    # return to the first one where the shell closes, then again as the hole starts.
    touching = shapely.Polygon([(0, 0), (4, 0), (4, 4), (0, 4)],
                               [[(0, 0), (1, 2), (2, 1)]])
    # An (invalid) bow-tie-like shell passing through its own first vertex.
    self_touch = shapely.Polygon([(0, 0), (2, 0), (2, 2), (0, 0), (-2, 0), (-2, -2)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # shapely: "invalid value"
        with_nan = shapely.Polygon([(0, 0), (1, np.nan), (1, 1)])
    one_part = shapely.MultiPolygon([shapely.box(0, 0, 1, 1)])
    repeated = shapely.Polygon([(0, 0), (0, 0), (1, 0), (1, 1)])  # repeated first vertex
    return np.array([touching, self_touch, one_part, repeated, with_nan], dtype=object)


def test_zoo_matches_reference():
    tricky = _tricky()[:-1]  # without the NaN polygon (refused: next test)
    for geoms in (_zoo(), tricky, np.concatenate([tricky, _zoo()])):
        assert_same(ingest.from_shapely(geoms), RaggedPolygons.from_shapely(geoms))


def test_non_finite_coordinates_refused_like_the_reference():
    """NaN and inf are refused by every in-memory route with the reference's message
    (feature numbers over the whole input), whatever the validate mode that follows."""
    tricky = _tricky()  # the NaN polygon is feature 4
    with pytest.raises(ValueError) as ref:
        RaggedPolygons.from_shapely(np.concatenate([_zoo(), tricky]))
    assert str(ref.value) == "feature 14 has a non-finite (NaN or infinite) coordinate"
    inf = shapely.transform(shapely.box(0, 0, 1, 1), lambda c: np.where(c == 1, np.inf, c))
    holed_nan = shapely.transform(_zoo()[1], lambda c: np.where(c == 2.5, np.nan, c))
    cases = {
        "one": (np.concatenate([_zoo(), tricky]), str(ref.value)),
        "several (a hole; a MultiPolygon's part)": (
            np.array([holed_nan, None, inf, shapely.MultiPolygon([shapely.box(5, 5, 6, 6),
                                                                  inf])], dtype=object),
            "3 features (0, 2, 3) have non-finite (NaN or infinite) coordinates")}
    for geoms, message in cases.values():
        with pytest.raises(ValueError) as ref:
            RaggedPolygons.from_shapely(geoms)
        assert str(ref.value) == message
        routes = {"shapely": lambda g=geoms: ingest.from_shapely(g),
                  "list": lambda g=geoms: ingest.to_ragged(list(g))}
        for name, arr in _arrow_inputs(geoms).items():
            routes[f"arrow {name}"] = lambda a=arr: ingest.from_arrow(a)
            chunked = pa.chunked_array([arr[:2], arr[2:]])
            routes[f"arrow {name} chunked"] = lambda a=chunked: ingest.from_arrow(a)
        for name, route in routes.items():
            with pytest.raises(ValueError) as err:
                route()
            assert str(err.value) == message, name


def test_single_ring_polygons_take_the_fast_path(monkeypatch):
    """No ring objects are asked of GEOS when every polygon is one ring."""
    geoms = ice_wedge_polygons((-146.5, 69.995, -146.499, 70.0), spacing_m=10, seed=2)

    def must_not_run(*args, **kwargs):
        raise AssertionError("get_rings called")

    ref = RaggedPolygons.from_shapely(geoms)
    monkeypatch.setattr(shapely, "get_rings", must_not_run)
    assert_same(ingest.from_shapely(geoms), ref)


def _ring(draw, cx, cy):
    n = draw(st.integers(3, 12))
    ang = np.sort(np.asarray(draw(st.lists(st.floats(0, 2 * np.pi, allow_nan=False),
                                           min_size=n, max_size=n, unique=True))))
    r = np.asarray(draw(st.lists(st.floats(0.5, 2), min_size=n, max_size=n)))
    return np.c_[cx + r * np.cos(ang), cy + r * np.sin(ang)]


@st.composite
def geometries(draw):
    kind = draw(st.sampled_from(["poly", "holed", "multi", "none", "empty", "emptymulti"]))
    cx, cy = draw(st.floats(-50, 50)), draw(st.floats(-50, 50))
    if kind == "none":
        return None
    if kind == "empty":
        return shapely.Polygon()
    if kind == "emptymulti":
        return shapely.MultiPolygon()
    shell = _ring(draw, cx, cy) * 3 - np.array([2 * cx, 2 * cy])
    if kind == "poly":
        return shapely.Polygon(shell)
    hole = shapely.box(cx - 0.2, cy - 0.2, cx + 0.2, cy + 0.2)
    holed = shapely.Polygon(shell, [hole.exterior.coords])
    if kind == "holed":
        return holed
    return shapely.MultiPolygon([holed, shapely.Polygon(_ring(draw, cx + 100, cy))])


@settings(max_examples=80, deadline=None)
@given(st.lists(geometries(), min_size=0, max_size=12))
def test_random_arrays_match_reference(geoms):
    arr = np.array(geoms + [None], dtype=object)[:-1]  # a 1-D object array, even if empty
    ref = RaggedPolygons.from_shapely(arr)
    assert_same(ingest.from_shapely(arr), ref)
    assert_same(ingest.from_shapely(list(geoms)), ref)


def test_containers_list_geoseries_geometryarray():
    gpd = pytest.importorskip("geopandas")
    geoms = _zoo()
    ref = RaggedPolygons.from_shapely(geoms)
    s = gpd.GeoSeries(geoms)
    for obj in (list(geoms), geoms, s, s.values, geoms[::-1][::-1].copy()):
        assert_same(ingest.to_ragged(obj), ref)
    # A non-contiguous view is copied to a contiguous one first.
    two = np.stack([geoms, geoms], axis=1)[:, 0]
    assert not two.flags.c_contiguous
    assert_same(ingest.from_shapely(two), ref)


def test_rejects_other_types_naming_the_geometry():
    with pytest.raises(ValueError, match="geometry 1 is a LineString"):
        ingest.from_shapely([shapely.box(0, 0, 1, 1), shapely.LineString([(0, 0), (1, 1)])])
    with pytest.raises(TypeError):
        ingest.from_shapely([shapely.box(0, 0, 1, 1), "not a geometry"])


def test_threads_share_nothing():
    import threading

    geoms = ice_wedge_polygons((-146.5, 69.995, -146.49, 70.0), spacing_m=10, fill=1.0,
                               vertices=30, seed=5)
    ref = RaggedPolygons.from_shapely(geoms)
    out = [None] * 4

    def run(k):
        out[k] = [ingest.from_shapely(geoms) for _ in range(5)]

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for results in out:
        for r in results:
            assert_same(r, ref)


# ---------------------------------------------------------------------------------------------
# GeoArrow
# ---------------------------------------------------------------------------------------------


def _arrow_inputs(geoms):
    wkb = ga.as_wkb(pa.array(shapely.to_wkb(geoms)))
    out = {"wkb": wkb}
    for ct in ("SEPARATED", "INTERLEAVED"):
        out[f"native-{ct.lower()}"] = ga.as_geoarrow(wkb, coord_type=getattr(ga.CoordType, ct))
    return out


@pytest.mark.parametrize("multi", [False, True])
def test_geoarrow_arrays_match_reference(multi):
    geoms = _zoo()
    if not multi:
        geoms = geoms[[not (g is not None and g.geom_type == "MultiPolygon") for g in geoms]]
    ref = RaggedPolygons.from_shapely(geoms)
    for name, arr in _arrow_inputs(geoms).items():
        want = "geoarrow.multipolygon" if multi else "geoarrow.polygon"
        assert name == "wkb" or arr.type.extension_name == want
        assert_same(ingest.from_arrow(arr), ref)
        assert_same(ingest.to_ragged(arr), ref)
        # Slices (offsets not starting at 0), chunked arrays and bare C-interface objects.
        assert_same(ingest.from_arrow(arr[3:8]), RaggedPolygons.from_shapely(geoms[3:8]))
        chunked = pa.chunked_array([arr[:4], arr[4:4], arr[4:]])
        assert_same(ingest.from_arrow(chunked), ref)
        assert_same(ingest.from_arrow(_CapsuleOnly(arr)), ref)
        assert_same(ingest.from_arrow(_StreamOnly(chunked)), ref)


def test_separated_coordinates_are_not_copied():
    geoms = ice_wedge_polygons((-146.5, 69.995, -146.499, 70.0), spacing_m=10, seed=2)
    arr = ga.as_geoarrow(ga.as_wkb(pa.array(shapely.to_wkb(geoms))),
                         coord_type=ga.CoordType.SEPARATED)
    polys = ingest.from_arrow(arr)
    xbuf = arr.storage.values.values.field(0).buffers()[1]
    assert np.shares_memory(polys.x, np.frombuffer(xbuf, np.float64))
    # Every route hands the kernels read-only arrays (one numba signature per kernel).
    inter = ingest.from_arrow(ga.as_geoarrow(arr, coord_type=ga.CoordType.INTERLEAVED))
    for p in (polys, inter, ingest.from_shapely(geoms), ingest.from_arrow(ga.as_wkb(arr))):
        assert not any(a.flags.writeable for a in p.arrays)
        assert all(a.flags.c_contiguous for a in p.arrays)


def test_ogc_wkb_and_large_binary():
    geoms = _zoo()
    ref = RaggedPolygons.from_shapely(geoms)
    storage = pa.array(shapely.to_wkb(geoms), pa.large_binary())
    arr = _CapsuleOnly(storage, {"ARROW:extension:name": "ogc.wkb"})
    assert_same(ingest.from_arrow(arr), ref)


def test_null_slots_spanning_values_are_empty():
    # Arrow lets a null slot own values; they must not leak into the output.
    geoms = np.array([shapely.box(0, 0, 1, 1), shapely.box(2, 2, 3, 3),
                      shapely.box(4, 4, 5, 5)], dtype=object)
    native = ga.as_geoarrow(ga.as_wkb(pa.array(shapely.to_wkb(geoms))))
    storage = native.storage
    masked = pa.ListArray.from_arrays(storage.offsets, storage.values, type=storage.type,
                                      mask=pa.array([False, True, False]))
    arr = pa.ExtensionArray.from_storage(native.type, masked)
    assert arr.null_count == 1 and len(masked.values) == 3
    want = RaggedPolygons.from_shapely(np.array([geoms[0], None, geoms[2]], dtype=object))
    assert_same(ingest.from_arrow(arr), want)


def test_arrow_errors_are_clear():
    lines = ga.as_geoarrow(ga.as_wkb(pa.array(shapely.to_wkb(
        [shapely.LineString([(0, 0), (1, 1)])]))))
    with pytest.raises(ValueError, match="geoarrow.linestring is not a Polygon"):
        ingest.from_arrow(lines)
    mls = ga.as_geoarrow(ga.as_wkb(pa.array(shapely.to_wkb(
        [shapely.MultiLineString([[(0, 0), (1, 1)]])]))))
    with pytest.raises(ValueError, match="multilinestring"):
        ingest.from_arrow(mls)  # the same storage as a polygon: the type name decides
    with pytest.raises(ValueError, match="no geoarrow extension type"):
        ingest.from_arrow(pa.array([1.0, 2.0]))
    wkb_lines = ga.as_wkb(pa.array(shapely.to_wkb([shapely.box(0, 0, 1, 1),
                                                   shapely.LineString([(0, 0), (1, 1)])])))
    with pytest.raises(ValueError, match=r"^feature 1 is not a Polygon or MultiPolygon$"):
        ingest.from_arrow(wkb_lines)


class _CapsuleOnly:
    """An Arrow producer that is not pyarrow: only ``__arrow_c_array__``."""

    def __init__(self, arr, metadata=None):
        self._arr = arr
        self._meta = metadata

    def __arrow_c_array__(self, requested_schema=None):
        if self._meta is None:
            return self._arr.__arrow_c_array__(requested_schema)
        field = pa.field("geometry", self._arr.type, metadata=self._meta)
        _, array_capsule = self._arr.__arrow_c_array__()
        return field.__arrow_c_schema__(), array_capsule


class _StreamOnly:
    def __init__(self, chunked):
        self._c = chunked

    def __arrow_c_stream__(self, requested_schema=None):
        return self._c.__arrow_c_stream__(requested_schema)


# ---------------------------------------------------------------------------------------------
# Statistics through the public entry points
# ---------------------------------------------------------------------------------------------


def _tile():
    grid = TileGrid.from_tile((1524, 910, 13), "WorldCRS84Quad", 64)
    geoms = ice_wedge_polygons((grid.left - 1e-4, grid.bottom, grid.left + 0.004, grid.top),
                               spacing_m=15, fill=0.8, vertices=24, seed=4)
    return grid, np.asarray(geoms, dtype=object)


def test_compute_stats_same_for_every_input_type():
    grid, geoms = _tile()
    ref = compute_stats(RaggedPolygons.from_shapely(geoms), grid)
    assert ref[0].sum() > 100  # centroids land: a meaningful comparison
    wkb = ga.as_wkb(pa.array(shapely.to_wkb(geoms)))
    inputs = [geoms, list(geoms), wkb, ga.as_geoarrow(wkb),
              ga.as_geoarrow(wkb, coord_type=ga.CoordType.INTERLEAVED)]
    for obj in inputs:
        assert np.array_equal(compute_stats(obj, grid), ref, equal_nan=True)


def test_rasterize_tile_geodataframe_with_staging_columns():
    gpd = pytest.importorskip("geopandas")
    grid, geoms = _tile()
    rng = np.random.default_rng(0)
    cx = shapely.get_x(shapely.centroid(geoms)) + rng.normal(0, 1e-6, geoms.size)
    cy = shapely.get_y(shapely.centroid(geoms))
    dup = rng.random(geoms.size) < 0.2
    gdf = gpd.GeoDataFrame({"staging_centroid_x": cx, "staging_centroid_y": cy,
                            "staging_duplicated": dup, "v": rng.random(geoms.size)},
                           geometry=geoms, crs="EPSG:4326")
    stats = [{"name": "n", "weight_by": "count", "property": "centroids_per_pixel"},
             {"name": "c", "weight_by": "area", "property": "area_per_pixel_area"},
             {"name": "m", "weight_by": "area", "property": "v", "aggregation_method": "max"}]
    got = rasterize_tile(gdf, (1524, 910, 13), tms="WorldCRS84Quad", tile_size=64,
                         stats=stats, deduplicate=True)
    keep = ~dup
    want = compute_stats(RaggedPolygons.from_shapely(geoms[keep]), grid, stats,
                         centroids=(cx[keep], cy[keep]), attributes={"v": gdf["v"].values[keep]})
    assert np.array_equal(got, want, equal_nan=True)
    assert got[0].sum() == np.count_nonzero(
        keep & (cx > grid.left) & (cx <= grid.right) & (cy >= grid.bottom) & (cy < grid.top))


# ---------------------------------------------------------------------------------------------
# The coordinate-splitting kernel against a plain-Python reference
# ---------------------------------------------------------------------------------------------


def split_coordinates_ref(coords, index, single_type):
    """Obviously correct: per geometry, its vertices, and whether the first vertex comes
    back exactly once, at the end."""
    n = single_type.size
    offsets = [0]
    for i in range(n):
        offsets.append(offsets[-1] + sum(1 for g in index if g == i))
    single = []
    for i in range(n):
        pts = [tuple(p) for p in coords[offsets[i]:offsets[i + 1]]]
        returns = [j for j in range(1, len(pts)) if pts[j] == pts[0]]
        single.append(bool(single_type[i]) and returns == [len(pts) - 1])
    return coords[:, 0], coords[:, 1], np.array(offsets), np.array(single, bool)


def run_split(coords, index, single_type):
    n, m = single_type.size, coords.shape[0]
    x, y = np.full(m, -1.0), np.full(m, -1.0)
    offsets, single = np.full(n + 1, -7, np.int64), np.zeros(n, bool)
    K.split_coordinates(np.ascontiguousarray(coords, np.float64), np.asarray(index, np.int64),
                        np.asarray(single_type, bool), x, y, offsets, single)
    return x, y, offsets, single


def check_split(coords, index, single_type):
    got = run_split(coords, index, single_type)
    want = split_coordinates_ref(coords, index, single_type)
    for name, u, v in zip(("x", "y", "offsets", "single"), got, want):
        assert np.array_equal(u, v, equal_nan=name in "xy"), (name, u, v)


def test_split_coordinates_nojit_small():
    nan = np.nan
    square = [(0, 0), (1, 0), (1, 1), (0, 0)]
    holed = [(0, 0), (4, 0), (4, 4), (0, 0), (1, 1), (2, 1), (1, 1)]
    touch = [(0, 0), (2, 0), (2, 2), (0, 0), (-2, 0), (0, 0)]
    nan_first = [(nan, 0), (1, 0), (nan, 0)]
    open_ring = [(0, 0), (1, 0), (1, 1)]
    groups = [square, [], holed, touch, nan_first, open_ring, square, [(5, 5)]]
    coords = np.array([p for g in groups for p in g], np.float64)
    index = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
    single_type = np.array([True, True, True, True, True, True, False, True])
    check_split(coords, index, single_type)
    x, y, offsets, single = run_split(coords, index, single_type)
    assert single.tolist() == [True, False, False, False, False, False, False, False]
    assert offsets.tolist() == [0, 4, 4, 11, 17, 20, 23, 27, 28]


def test_split_coordinates_ignores_indices_out_of_range_nojit_small():
    coords = np.array([(0, 0), (1, 0), (1, 1), (0, 0), (9, 9)], np.float64)
    x, y, offsets, single = run_split(coords, [0, 0, 0, 0, 5], np.array([True]))
    assert offsets.tolist() == [0, 4] and single.tolist() == [True]
    assert x[:4].tolist() == [0, 1, 1, 0]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.tuples(st.sampled_from([0.0, 1.0, 2.0, np.nan]),
                                   st.sampled_from([0.0, 1.0])), max_size=6), max_size=8),
       st.data())
def test_split_coordinates_fuzzed_against_reference(groups, data):
    coords = np.array([p for g in groups for p in g], np.float64).reshape(-1, 2)
    index = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
    single_type = np.array(data.draw(st.lists(st.booleans(), min_size=len(groups),
                                              max_size=len(groups))), bool)
    check_split(coords, index, single_type)
