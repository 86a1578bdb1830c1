"""Each of PDG's staging rules, on small hand-built scenes, against independent expectations
(hand-derived sets of counted polygons, shapely clipping, the literal reference of
``tests/sources_reference.py``)."""

from __future__ import annotations

import os

import numpy as np
import pyogrio
import pytest
import shapely

import fastraster
from fastraster.io.records import RunFailures
from fastraster.io.scenes import Chunk, decode_chunk
from fastraster.io.staged import InputError
from fastraster.model.assign import TileScheme, assign_tiles, key_xy
from fastraster.model.grid import TileGrid
from fastraster.model.staging import from_polygons, wkb_types
from fastraster.pipelines.sources import PdgSourceRules, counted_rows, rasterize_sources
from tests.conftest import read_tif
from tests.reference import centroid_count_ref, coverage_ref
from tests.sources_data import CRS, X0, Y0, to_lonlat, write_scene

Z = 15
D = 180.0 / 2 ** Z
TX, TY = 5716, 3604  # a z15 tile near the PDG scenes (70.2 N, 148.6 W)
XE = -180.0 + TX * D  # its west edge
TOP = 90.0 - TY * D


def _rules(**kw):
    kw.setdefault("z", Z)
    kw.setdefault("dtype", "float64")
    return PdgSourceRules.create(**kw)


def _counted(root, **kw):
    """{tile: sorted [(scene name, feature)]} of the rows PDG counts."""
    rows = counted_rows(os.path.join(root, "input"), rules=_rules(**kw),
                        footprints=os.path.join(root, "footprints"))
    out = {}
    for tile, r in rows.items():
        if tile == "scenes":
            continue
        out[tile[:2]] = sorted(zip(r["scene"].tolist(), r["feature"].tolist()))
    return out, rows["scenes"]


def _box(x0, y0, x1, y1):
    return shapely.box(x0, y0, x1, y1)


# ---------------------------------------------------------------------------------------------
# 1. Reading: only plain Polygons
# ---------------------------------------------------------------------------------------------


def _chunk(geoms, start=0):
    import pyarrow as pa

    from fastraster.model.geometry import wkb_buffers

    wkb = pa.array(list(shapely.to_wkb(np.asarray(geoms, dtype=object))), pa.binary())
    data, offsets, valid = wkb_buffers(wkb)
    return Chunk(start, data, offsets, valid, {})


def test_filter_keeps_only_plain_polygons():
    poly = _box(0, 0, 1, 1)
    holed = _box(0, 0, 4, 4).difference(_box(1, 1, 2, 2))
    geoms = [poly, shapely.MultiPolygon([_box(2, 2, 3, 3)]),  # a 1-part MultiPolygon: dropped
             shapely.MultiPolygon([_box(0, 0, 1, 1), _box(2, 2, 3, 3)]), None,
             shapely.Polygon(), shapely.Point(0, 0), holed,
             shapely.force_3d(_box(5, 5, 6, 6)),  # Polygon Z: kept, Z dropped
             shapely.force_3d(shapely.MultiPolygon([_box(5, 5, 6, 6)]))]
    polys, feature = decode_chunk(_chunk(geoms, start=100), "scene.gpkg")
    assert feature.tolist() == [100, 106, 107]
    got = polys.to_shapely()
    for g, want in zip(got, [poly, holed, _box(5, 5, 6, 6)]):
        assert shapely.equals(g, want)


def test_from_polygons_equals_shapely_ragged_arrays():
    """The ragged arrays built from coordinates and counts are shapely's own, for polygons
    with 0, 1 and 2 holes, empty ones, and a reversed ring."""
    rng = np.random.default_rng(5)
    geoms = [shapely.Polygon(), _box(0, 0, 1, 1),
             _box(0, 0, 10, 10).difference(_box(1, 1, 2, 2)),
             _box(0, 0, 10, 10).difference(_box(1, 1, 2, 2)).difference(_box(3, 3, 4, 4)),
             shapely.Polygon(_box(5, 5, 6, 7).exterior.coords[::-1]), shapely.Polygon()]
    geoms += [shapely.Polygon(rng.uniform(0, 1, (3, 2)) + k) for k in range(20)]
    geoms = np.array(geoms, dtype=object)[rng.permutation(len(geoms))]
    kind, coords, (rings, parts) = shapely.to_ragged_array(geoms, include_z=False)
    got = from_polygons(geoms)
    np.testing.assert_array_equal(got.x, coords[:, 0])
    np.testing.assert_array_equal(got.y, coords[:, 1])
    np.testing.assert_array_equal(got.ring_offsets, rings)
    np.testing.assert_array_equal(got.part_offsets, parts)
    np.testing.assert_array_equal(got.geom_offsets, np.arange(len(geoms) + 1))
    with pytest.raises(ValueError, match="Polygons"):
        from_polygons(np.array([shapely.MultiPolygon([_box(0, 0, 1, 1)])], dtype=object))


def test_wkb_types_iso_and_ewkb():
    geoms = [_box(0, 0, 1, 1), shapely.force_3d(_box(0, 0, 1, 1)),
             shapely.MultiPolygon([_box(0, 0, 1, 1)]), shapely.Point(1, 2)]
    iso = _chunk(geoms)
    assert wkb_types(iso.data, iso.offsets, iso.valid).tolist() == [3, 3, 6, 1]
    import pyarrow as pa

    from fastraster.model.geometry import wkb_buffers

    ewkb = pa.array([shapely.to_wkb(shapely.set_srid(g, 3413), include_srid=True, flavor="extended")
                     for g in geoms], pa.binary())
    data, offsets, valid = wkb_buffers(ewkb)
    assert wkb_types(data, offsets, valid).tolist() == [3, 3, 6, 1]


def test_multipolygons_and_nulls_never_reach_a_raster(tmp_path):
    # A GeoPackage with mixed types (any pyogrio-readable format is accepted).
    import geopandas as gpd

    x0, y0 = XE + 0.2 * D, TOP - 0.5 * D
    keep = _box(x0, y0, x0 + 0.1 * D, y0 + 0.1 * D)
    multi = shapely.MultiPolygon([_box(x0 + 0.3 * D, y0, x0 + 0.4 * D, y0 + 0.1 * D)])
    gdf = gpd.GeoDataFrame({"poly_id": [0, 1, 2]}, geometry=[keep, multi, None],
                           crs="EPSG:4326")
    path = tmp_path / "input" / "s.gpkg"
    path.parent.mkdir()
    pyogrio.write_dataframe(gdf, path, promote_to_multi=False, geometry_type="Unknown")
    out = tmp_path / "out"
    rep = rasterize_sources(tmp_path / "input", out, z=Z, ext=".gpkg", keep_rules=None,
                            clip_to_footprint=False, dtype="float64", progress=False)
    assert [r["tile"] for r in rep] == [(TX, TY, Z)]
    arr = read_tif(out / "WGS1984Quad" / str(Z) / str(TX) / f"{TY}.tif")[0]
    grid = TileGrid.from_tile((TX, TY, Z))
    assert arr[0].sum() == 1
    np.testing.assert_allclose(arr[1], coverage_ref([keep], grid), rtol=0, atol=1e-12)
    assert rep.scenes[0]["features"] == 3 and rep.scenes[0]["polygons"] == 1


# ---------------------------------------------------------------------------------------------
# 2. Simplification: in the input CRS, before reprojection
# ---------------------------------------------------------------------------------------------


def test_simplification_in_input_crs_before_reprojection(tmp_path):
    # A 30 m square with a vertex 8 cm off the middle of one edge: 0.1 (metres) removes it.
    sq = [(X0, Y0), (X0 + 15, Y0 - 0.08), (X0 + 30, Y0), (X0 + 30, Y0 + 30), (X0, Y0 + 30)]
    poly = shapely.Polygon(sq)
    write_scene(tmp_path, "s", [poly], None, "2020")
    out = tmp_path / "out"
    rep = rasterize_sources(tmp_path / "input", out, z=Z, keep_rules=None,
                            clip_to_footprint=False, simplify_tolerance=0.1, dtype="float64",
                            progress=False)
    simplified = shapely.simplify(poly, 0.1, preserve_topology=True)
    assert len(shapely.get_coordinates(simplified)) == 5  # the noisy vertex went

    def lonlat(g):
        return shapely.transform(g, lambda c: np.column_stack(to_lonlat(c[:, 0], c[:, 1])))

    for r in rep:
        grid = TileGrid.from_tile(r["tile"])
        arr = read_tif(r["output"])[0]
        want = coverage_ref([lonlat(simplified)], grid)
        np.testing.assert_allclose(arr[1], want, rtol=0, atol=1e-12)
        unsimplified = coverage_ref([lonlat(poly)], grid)
        assert np.abs(unsimplified - want).max() > 1e-9  # the rule is visible in the raster


# ---------------------------------------------------------------------------------------------
# 3. Clip to footprint: a flag by intersects, touching included
# ---------------------------------------------------------------------------------------------


def test_clip_flags_by_intersects_including_touching(tmp_path):
    fp = _box(X0, Y0, X0 + 100, Y0 + 100)
    polys = [_box(X0 + 10, Y0 + 10, X0 + 20, Y0 + 20),  # inside
             _box(X0 + 100, Y0 + 30, X0 + 110, Y0 + 40),  # shares the footprint's edge
             shapely.Polygon([(X0 + 100, Y0 + 60), (X0 + 110, Y0 + 55), (X0 + 110, Y0 + 65)]),
             _box(X0 + 100.01, Y0 + 80, X0 + 110, Y0 + 90),  # 1 cm outside
             _box(X0 + 40, Y0 + 105, X0 + 50, Y0 + 115)]  # outside
    write_scene(tmp_path, "s", polys, fp, "2020")
    counted, recs = _counted(tmp_path, keep_rules=None)
    features = sorted({f for rows in counted.values() for _, f in rows})
    assert features == [0, 1, 2]  # the vertex on the edge (2) touches: unflagged
    assert recs[0]["clip_flagged"] == 2


def test_clip_footprint_in_another_crs_is_reprojected(tmp_path):
    # The footprint in EPSG:4326 (as the far reference scene's), the scene in 3413.
    fp = _box(X0, Y0, X0 + 100, Y0 + 100)
    fp_ll = shapely.transform(fp.segmentize(10),
                              lambda c: np.column_stack(to_lonlat(c[:, 0], c[:, 1])))
    polys = [_box(X0 + 10, Y0 + 10, X0 + 20, Y0 + 20), _box(X0 + 130, Y0, X0 + 140, Y0 + 10)]
    write_scene(tmp_path, "s", polys, fp_ll, "2020", footprint_crs="EPSG:4326")
    counted, _ = _counted(tmp_path, keep_rules=None)
    assert sorted({f for rows in counted.values() for _, f in rows}) == [0]


def test_missing_footprint_with_clip_is_an_error_for_that_scene(tmp_path):
    write_scene(tmp_path, "a", [_box(X0, Y0, X0 + 10, Y0 + 10)], _box(X0 - 50, Y0 - 50,
                X0 + 50, Y0 + 50), "2020")
    b = write_scene(tmp_path, "b", [_box(X0 + 20, Y0, X0 + 30, Y0 + 10)], None, "2021")
    with pytest.warns(RunFailures, match="no footprint"):
        rep = rasterize_sources(tmp_path / "input", tmp_path / "out", z=Z,
                                footprints=tmp_path / "footprints", progress=False)
    bad = [r for r in rep.scenes if r["status"] == "error"]
    assert len(bad) == 1 and bad[0]["error"].startswith(b) and "no footprint" in bad[0]["error"]
    assert rep.errors == bad
    assert sum(r["polygons"] for r in rep if r["status"] == "ok") == 1  # a's polygon only
    assert "1 failed" in rep.summary_line()


def test_clip_needs_footprints_argument(tmp_path):
    with pytest.raises(ValueError, match="footprints"):
        rasterize_sources(tmp_path, tmp_path / "out", z=Z)


def test_scene_without_crs_needs_input_crs(tmp_path):
    path = write_scene(tmp_path, "s", [_box(X0, Y0, X0 + 10, Y0 + 10)], None, "2020")
    os.remove(os.path.splitext(path)[0] + ".prj")
    kw = dict(z=Z, keep_rules=None, clip_to_footprint=False, progress=False,
              dtype="float64")
    with pytest.warns(RunFailures, match="has no CRS"):
        rep = rasterize_sources(tmp_path / "input", tmp_path / "o1", **kw)
    assert rep.scenes[0]["status"] == "error" and "input_crs" in rep.scenes[0]["error"]
    rep2 = rasterize_sources(tmp_path / "input", tmp_path / "o2", input_crs=CRS, **kw)
    assert rep2.scenes[0]["status"] == "ok" and rep2.tiles("ok") == 1


# ---------------------------------------------------------------------------------------------
# 4. Footprint deduplication: per tile, by the keep rules
# ---------------------------------------------------------------------------------------------


def _ll_scene(root, name, polys, fp, date, **kw):
    return write_scene(root, name, polys, fp, date, crs="EPSG:4326", **kw)


def test_per_tile_pairing(tmp_path):
    """P (older scene a) straddles tiles T1 | T2 inside both footprints; the newer scene b
    has rows in T1 only: P is flagged in T1 and counted in T2 (SEMANTICS §2.9)."""
    ymid = TOP - 0.5 * D
    fp = _box(XE - 0.8 * D, TOP - 0.9 * D, XE + 0.8 * D, TOP - 0.1 * D)
    p = _box(XE - 0.05 * D, ymid, XE + 0.1 * D, ymid + 0.02 * D)  # centroid in T2
    r1 = _box(XE - 0.5 * D, ymid, XE - 0.45 * D, ymid + 0.02 * D)  # in T1
    r2 = _box(XE + 0.4 * D, ymid, XE + 0.45 * D, ymid + 0.02 * D)  # in T2
    q = _box(XE - 0.3 * D, ymid, XE - 0.25 * D, ymid + 0.02 * D)  # b's, in T1
    _ll_scene(tmp_path, "a", [p, r1, r2], fp, "20150101000000")
    _ll_scene(tmp_path, "b", [q], fp, "20200101000000")
    counted, _ = _counted(tmp_path)
    t1, t2 = (TX - 1, TY), (TX, TY)
    assert counted == {t1: [("b.shp", 0)], t2: [("a.shp", 0), ("a.shp", 2)]}
    # The rasters: T2 holds P's eastern part and r2; T1 only q.
    rep = rasterize_sources(tmp_path / "input", tmp_path / "out", z=Z,
                            footprints=tmp_path / "footprints", dtype="float64",
                            progress=False)
    arrays = {r["tile"][:2]: read_tif(r["output"])[0] for r in rep}
    g1, g2 = TileGrid.from_tile((*t1, Z)), TileGrid.from_tile((*t2, Z))
    np.testing.assert_allclose(arrays[t2][1], coverage_ref([p, r2], g2), rtol=0, atol=1e-12)
    np.testing.assert_allclose(arrays[t1][1], coverage_ref([q], g1), rtol=0, atol=1e-12)
    c = shapely.centroid(np.array([p, r2]))
    np.testing.assert_array_equal(arrays[t2][0], centroid_count_ref(
        shapely.get_x(c), shapely.get_y(c), g2))
    assert arrays[t1][0].sum() == 1


def test_newer_scene_wins_and_polygons_touching_the_overlap_are_flagged(tmp_path):
    fa = _box(XE + 0.1 * D, TOP - 0.9 * D, XE + 0.6 * D, TOP - 0.1 * D)
    fb = _box(XE + 0.4 * D, TOP - 0.9 * D, XE + 0.9 * D, TOP - 0.1 * D)
    y = TOP - 0.5 * D
    a_polys = [_box(XE + 0.2 * D, y, XE + 0.25 * D, y + 0.01 * D),  # outside b's footprint
               _box(XE + 0.35 * D, y, XE + 0.4 * D, y + 0.01 * D),  # touches the overlap
               _box(XE + 0.45 * D, y, XE + 0.5 * D, y + 0.01 * D)]  # inside the overlap
    b_polys = [_box(XE + 0.45 * D, y, XE + 0.5 * D, y + 0.01 * D)]  # the same detection
    _ll_scene(tmp_path, "old", a_polys, fa, "20100101000000")
    _ll_scene(tmp_path, "new", b_polys, fb, "20200101000000")
    counted, _ = _counted(tmp_path)
    assert counted == {(TX, TY): [("new.shp", 0), ("old.shp", 0)]}
    # keep "smaller": the older scene wins instead.
    counted, _ = _counted(tmp_path, keep_rules=[("Date", "smaller")])
    assert counted == {(TX, TY): [("old.shp", 0), ("old.shp", 1), ("old.shp", 2)]}


def test_ties_prefer_the_name_that_sorts_last_whatever_the_input_order(tmp_path):
    fp = _box(XE + 0.1 * D, TOP - 0.9 * D, XE + 0.9 * D, TOP - 0.1 * D)
    y = TOP - 0.5 * D
    poly = _box(XE + 0.45 * D, y, XE + 0.5 * D, y + 0.01 * D)
    for name in ("scene_a", "scene_b", "scene_c"):
        _ll_scene(tmp_path, name, [poly], fp, "20200101000000")
    counted, _ = _counted(tmp_path)
    assert counted == {(TX, TY): [("scene_c.shp", 0)]}
    inputs = sorted(str(p) for p in (tmp_path / "input").glob("*.shp"))
    outs = []
    for i, order in enumerate((inputs, inputs[::-1], [inputs[1], inputs[2], inputs[0]])):
        rep = rasterize_sources(order, tmp_path / f"out{i}", z=Z,
                                footprints=tmp_path / "footprints", progress=False)
        outs.append(open(rep[0]["output"], "rb").read())
    assert outs[0] == outs[1] == outs[2]


def test_missing_footprint_without_clip_skips_its_pairs(tmp_path):
    fp = _box(XE + 0.1 * D, TOP - 0.9 * D, XE + 0.9 * D, TOP - 0.1 * D)
    y = TOP - 0.5 * D
    poly = _box(XE + 0.45 * D, y, XE + 0.5 * D, y + 0.01 * D)
    _ll_scene(tmp_path, "old", [poly], fp, "20100101000000")
    _ll_scene(tmp_path, "new", [poly], None, "20200101000000")
    counted, _ = _counted(tmp_path, clip_to_footprint=False)
    assert counted == {(TX, TY): [("new.shp", 0), ("old.shp", 0)]}


def test_footprints_touching_along_an_edge_flag_polygons_crossing_it(tmp_path):
    # The overlap of two footprints sharing an edge is a line; PDG's sjoin still flags the
    # older scene's polygons that intersect it.
    fa = _box(XE + 0.1 * D, TOP - 0.9 * D, XE + 0.5 * D, TOP - 0.1 * D)
    fb = _box(XE + 0.5 * D, TOP - 0.9 * D, XE + 0.9 * D, TOP - 0.1 * D)
    y = TOP - 0.5 * D
    crossing = _box(XE + 0.48 * D, y, XE + 0.52 * D, y + 0.01 * D)
    inside = _box(XE + 0.2 * D, y, XE + 0.25 * D, y + 0.01 * D)
    _ll_scene(tmp_path, "old", [crossing, inside], fa, "20100101000000")
    _ll_scene(tmp_path, "new", [_box(XE + 0.7 * D, y, XE + 0.75 * D, y + 0.01 * D)], fb,
              "20200101000000")
    counted, _ = _counted(tmp_path)
    assert counted == {(TX, TY): [("new.shp", 0), ("old.shp", 1)]}


# ---------------------------------------------------------------------------------------------
# 5. Tile assignment: intersects, touching included
# ---------------------------------------------------------------------------------------------


def test_tiles_by_intersects_touching_included():
    scheme = TileScheme.create("WGS1984Quad", Z)
    y0 = TOP - 0.5 * D
    geoms = np.array([
        _box(XE + 0.1 * D, y0, XE + 0.2 * D, y0 + 0.1 * D),  # inside T(TX)
        _box(XE - 0.1 * D, y0, XE, y0 + 0.1 * D),  # east edge on the tile edge: both
        shapely.Polygon([(XE, y0), (XE + 0.1 * D, y0 - 0.05 * D), (XE + 0.1 * D, y0)]),
        _box(XE - 0.1 * D, TOP - 0.1 * D, XE, TOP),  # touches 4 tiles at a corner
        # An L whose bounding box covers a tile it does not touch.
        shapely.Polygon([(XE - 0.1 * D, TOP - 0.1 * D), (XE + 0.1 * D, TOP - 0.1 * D),
                         (XE + 0.1 * D, TOP + 0.1 * D), (XE + 0.05 * D, TOP + 0.1 * D),
                         (XE + 0.05 * D, TOP - 0.05 * D), (XE - 0.1 * D, TOP - 0.05 * D)]),
    ], dtype=object)
    poly, key = assign_tiles(from_polygons(geoms), scheme)
    tx, ty = key_xy(key)
    got = {}
    for p, a, b in zip(poly.tolist(), tx.tolist(), ty.tolist()):
        got.setdefault(p, set()).add((a - TX, b - TY))
    assert got == {0: {(0, 0)}, 1: {(-1, 0), (0, 0)}, 2: {(-1, 0), (0, 0)},
                   3: {(-1, 0), (0, 0), (-1, -1), (0, -1)}, 4: {(-1, 0), (0, 0), (0, -1)}}
    # Against GEOS on every tile around, one by one.
    for i, g in enumerate(geoms):
        want = {(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)
                if g.intersects(_box(XE + a * D, TOP - (b + 1) * D, XE + (a + 1) * D,
                                     TOP - b * D))}
        assert got[i] == want


# ---------------------------------------------------------------------------------------------
# 6. The options object
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kw, match", [
    ({"z": -1}, "z must be"), ({"z": 1.5}, "z must be"),
    ({"tms": "NoSuchTMS"}, "unknown tile matrix set"),
    ({"keep_rules": [("Date", "newest")]}, "larger"), ({"keep_rules": []}, "empty"),
    ({"keep_rules": "Date"}, "pairs"), ({"simplify_tolerance": -1}, "simplify_tolerance"),
    ({"input_crs": "EPSG:nope"}, "input_crs"), ({"dtype": "int16"}, "dtype"),
    ({"ext": "shp"}, "ext"), ({"validate": "maybe"}, "validate"),
])
def test_rules_reject_bad_values(kw, match):
    kw.setdefault("z", 13)
    with pytest.raises(ValueError, match=match):
        PdgSourceRules.create(**kw)


def test_rules_from_pdg_config(tmp_path):
    cfg = {"dir_input": "in", "dir_footprints": "fp", "ext_footprints": ".shp",
           "z_range": [0, 15], "tms_id": "WGS1984Quad", "simplify_tolerance": 0.1,
           "deduplicate_method": "footprints", "deduplicate_at": ["raster"],
           "deduplicate_keep_rules": [["Date", "larger"]],
           "deduplicate_clip_to_footprint": True, "tile_size": [256, 128]}
    rules, dirs = PdgSourceRules.from_pdg_config(cfg)
    # tile_size as the staged path reads it: pdgstaging hands it to pdgraster's rasterio
    # calls as the array shape, (rows, columns) = (height, width).
    assert (rules.z, rules.keep_rules, rules.clip_to_footprint, rules.simplify_tolerance,
            rules.tile_size, rules.dtype) == (15, (("Date", "larger"),), True, 0.1,
                                              (256, 128), "float64")
    assert rules.tile_size == fastraster.RasterTiler(cfg)._options.tile_size
    assert (dirs.inputs, dirs.footprints, dirs.geotiff) == ("in", "fp", "geotiff")
    # pdgstaging's defaults: no dedup (so no clip), simplify 1e-4, WorldCRS84Quad, z 13.
    rules, _ = PdgSourceRules.from_pdg_config({"deduplicate_clip_to_footprint": True})
    assert (rules.keep_rules, rules.clip_to_footprint, rules.simplify_tolerance, rules.tms,
            rules.z) == (None, False, 1e-4, "WorldCRS84Quad", 13)
    # Flags computed but never applied (deduplicate_at without "raster"): every row counts.
    rules, _ = PdgSourceRules.from_pdg_config({**cfg, "deduplicate_at": None})
    assert rules.keep_rules is None and not rules.clip_to_footprint
    with pytest.raises(ValueError, match="staging"):
        PdgSourceRules.from_pdg_config({**cfg, "deduplicate_at": ["staging", "raster"]})
    with pytest.raises(ValueError, match="neighbors"):
        PdgSourceRules.from_pdg_config({**cfg, "deduplicate_method": "neighbors"})
    path = tmp_path / "c.json"
    path.write_text(__import__("json").dumps(cfg))
    assert PdgSourceRules.from_pdg_config(path)[0].z == 15


def test_footprint_problems_are_named(tmp_path):
    from fastraster.io.scenes import Scene, read_footprint

    fp = tmp_path / "fp.shp"
    from tests.sources_data import write_layer

    write_layer(str(fp), [_box(0, 0, 1, 1), _box(1, 1, 2, 2)], "EPSG:4326",
                Date=["2020", "2021"])
    scene = Scene(0, "s.shp", "/data/s.shp")
    with pytest.raises(InputError, match=r"fp.shp.*2 different 'Date'"):
        read_footprint(str(fp), scene, ("Date",), "EPSG:4326")
    with pytest.raises(InputError, match="no column 'Year'"):
        read_footprint(str(fp), scene, ("Year",), "EPSG:4326")
    with pytest.raises(InputError, match="cannot read"):
        read_footprint(str(tmp_path / "nothing.shp"), scene, ("Date",), "EPSG:4326")
