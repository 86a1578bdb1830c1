"""Every kind of bad input, through one ``rasterize_dir`` run beside good files.

Each case gives the status documented in the README's "Bad input" table (error, or ok with a
warning), a message that starts with the file's path and, where it applies, names the
feature (0-based row number); no output and no temporary file for an error; and the good
tiles come out identical to a clean run's. A few cases are also checked against an
independent reference (shapely's area for the repaired bow-tie, the closed polygon for an
unclosed ring, the in-memory result for a file without CRS).
"""

from __future__ import annotations

import csv
import math
import os
import sqlite3
import struct
import warnings
from pathlib import Path

import numpy as np
import pyogrio.raw
import pytest
import rasterio
import shapely

import fastraster
from fastraster.io.staged import InputError

TMS = "WorldCRS84Quad"
Z = 13
D = 180.0 / 2**Z
SIZE = 64
STATS = [
    {"name": "polygon_count", "weight_by": "count", "property": "centroids_per_pixel",
     "nodata_val": 0},
    {"name": "coverage", "weight_by": "area", "property": "area_per_pixel_area",
     "nodata_val": 0},
    {"name": "v_max", "weight_by": "area", "property": "v", "aggregation_method": "max"},
]
GOOD = [(1524, 910), (1525, 910)]


def bounds(tx, ty):
    left, top = -180.0 + tx * D, 90.0 - ty * D
    return left, top - D, left + D, top


def squares(tx, ty, n=12):
    """n small squares on a diagonal of tile (tx, ty)."""
    w, s, _, _ = bounds(tx, ty)
    return [shapely.box(w + (i + 0.2) * D / n, s + (i + 0.1) * D / n, w + (i + 0.7) * D / n,
                        s + (i + 0.8) * D / n) for i in range(n)]


def ring_wkb(rings, e="<"):
    """WKB Polygon from raw rings (no closing, NaN allowed)."""
    out = struct.pack(e + "BII", 1 if e == "<" else 0, 3, len(rings))
    for r in rings:
        out += struct.pack(e + "I", len(r)) + b"".join(struct.pack(e + "dd", *p) for p in r)
    return out


def write(path, geoms, *, v=True, crs="OGC:CRS84", geometry_type="Polygon", fields=None,
          staging=False):
    """A GeoPackage of ``geoms`` (shapely geometries or WKB bytes) with a numeric ``v``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wkb = np.array([g if isinstance(g, bytes) else shapely.to_wkb(g) for g in geoms],
                   dtype=object)
    fields = dict(fields or {})
    if v and "v" not in fields:
        fields["v"] = np.arange(len(geoms), dtype=float) + 1.0
    if staging:
        c = shapely.centroid(shapely.from_wkb(wkb))
        fields["staging_centroid_x"] = shapely.get_x(c)
        fields["staging_centroid_y"] = shapely.get_y(c)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyogrio: "'crs' was not provided"
        pyogrio.raw.write(str(path), wkb, list(fields.values()), list(fields), driver="GPKG",
                          geometry_type=geometry_type, crs=crs)
    return path


def tile_path(root, tx, ty):
    return Path(root) / TMS / str(Z) / str(tx) / f"{ty}.gpkg"


def _bowtie(tx, ty):
    w, s, _, _ = bounds(tx, ty)
    return shapely.Polygon([(w + .2 * D, s + .2 * D), (w + .8 * D, s + .8 * D),
                            (w + .8 * D, s + .2 * D), (w + .2 * D, s + .8 * D)])


def _square_ring(tx, ty, closed):
    w, s, _, _ = bounds(tx, ty)
    r = [(w + .3 * D, s + .3 * D), (w + .6 * D, s + .3 * D), (w + .6 * D, s + .7 * D),
         (w + .3 * D, s + .7 * D)]
    return r + r[:1] if closed else r


def _null_geometry(path):
    con = sqlite3.connect(path)
    for f in ("ST_IsEmpty", "ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY"):
        con.create_function(f, 1, lambda b: 0)
    con.execute(f"UPDATE \"{Path(path).stem}\" SET geom = 'not a blob' WHERE fid = 2")
    con.commit()
    con.close()


def build_cases(root):
    """Write every bad input below ``root``; return {name: (path, expected)} where expected
    is ("error", substring after "<path>: ") or ("ok", warning substring or None)."""
    root = Path(root)
    rng = np.random.default_rng(0)
    good_bytes = tile_path(root, *GOOD[0]).read_bytes()
    cases = {}

    def case(name, tx, ty, expect, make):
        p = tile_path(root, tx, ty)
        p.parent.mkdir(parents=True, exist_ok=True)
        make(p)
        cases[name] = (p, expect)

    ty = 911
    case("zero_byte", 1530, ty, ("error", "cannot read: the file is empty (0 bytes)"),
         lambda p: p.write_bytes(b""))
    case("random_bytes", 1531, ty, ("error", "cannot read: not a GeoPackage"),
         lambda p: p.write_bytes(rng.bytes(5000)))
    case("truncated_gpkg", 1532, ty, ("error", "cannot read: the SQLite database is damaged "
                                               "(truncated or overwritten)"),
         lambda p: p.write_bytes(good_bytes[:4096]))
    case("linestring_layer", 1533, ty,
         ("error", "2 features (0, 1) are not Polygons or MultiPolygons"),
         lambda p: write(p, [shapely.LineString([(0, 0), (1, 1)])] * 2,
                         geometry_type="LineString"))
    case("point_layer", 1534, ty, ("error", "feature 0 is not a Polygon or MultiPolygon"),
         lambda p: write(p, [shapely.Point(0, 0)], geometry_type="Point"))
    case("empty_layer", 1535, ty, ("ok", "holds no polygons; the output is empty"),
         lambda p: write(p, []))
    case("no_crs", 1536, ty, ("ok", "has no CRS; assuming the WorldCRS84Quad CRS"),
         lambda p: write(p, squares(1536, ty), crs=None))
    case("foreign_crs", 1537, ty, ("error", "is not the WorldCRS84Quad CRS OGC:CRS84; "
                                            "reproject (stage) it first"),
         lambda p: write(p, [shapely.box(0, 0, 1000, 1000)], crs="EPSG:3413"))
    w, s, _, _ = bounds(1538, ty)
    tri = [(w + .1 * D, s + .1 * D), (w + .3 * D, s + .1 * D), (w + .2 * D, s + .3 * D)]
    case("nan_inf_coordinates", 1538, ty,
         ("error", "2 features (1, 3) have non-finite (NaN or infinite) coordinates"),
         lambda p: write(p, [ring_wkb([tri + tri[:1]]),
                             ring_wkb([[tri[0], (math.nan, tri[1][1]), tri[2], tri[0]]]),
                             ring_wkb([tri + tri[:1]]),
                             ring_wkb([[tri[0], tri[1], (tri[2][0], -math.inf), tri[0]]])]))
    case("bowtie", 1539, ty, ("ok", None), lambda p: write(p, [_bowtie(1539, ty)]))
    case("unclosed_ring", 1540, ty, ("ok", None),
         lambda p: write(p, [ring_wkb([_square_ring(1540, ty, closed=False)])]))
    case("ring_of_two_points", 1541, ty,
         ("error", "feature 0 has a ring of 1 or 2 points (a ring needs at least 3)"),
         lambda p: write(p, [ring_wkb([_square_ring(1541, ty, True)[:2]])]))
    p = Path(root) / TMS / str(Z) / "1524" / "readme.gpkg"
    write(p, squares(1524, 910))
    cases["path_names_no_tile"] = (p, ("error", "cannot infer the tile from the path"))
    case("tile_outside_matrix", 99999, ty,
         ("error", "tile (99999, 911, 13) is outside the WorldCRS84Quad grid (zoom 13 has "
                   "16384 x 8192 tiles)"),
         lambda p: write(p, squares(1524, 910)))
    case("polygons_outside_tile", 1543, ty,
         ("ok", "none of its 12 polygons reaches tile (1543, 911, 13)"),
         lambda p: write(p, squares(1524, 910), staging=True))
    case("attribute_missing", 1544, ty,
         ("error", "has no attribute column 'v' (a statistic needs it)"),
         lambda p: write(p, squares(1544, ty), v=False))
    case("attribute_strings", 1545, ty, ("error", "column 'v' holds string values, not "
                                                  "numbers"),
         lambda p: write(p, squares(1545, ty, 3),
                         fields={"v": np.array(["1.5", "abc", "2"], dtype=object)}))
    case("unreadable_geometry_blob", 1546, ty,
         ("ok", "feature 1 has no geometry (null, empty or a blob GDAL cannot read)"),
         lambda p: (write(p, squares(1546, ty, 3)), _null_geometry(p)))
    w, s, _, _ = bounds(1547, ty)
    case("nan_staging_centroid", 1547, ty,
         ("error", "feature 2 has a non-finite (NaN, infinite or null) staging centroid"),
         lambda p: write(p, squares(1547, ty, 3), fields={
             "staging_centroid_x": np.array([w, w, math.nan]) + .5 * D,
             "staging_centroid_y": np.full(3, s + .5 * D)}))
    return cases


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One rasterize_dir run over the good tiles and every bad input; one over the good
    tiles alone (the clean run)."""
    root = tmp_path_factory.mktemp("bad_inputs")
    for tx, ty in GOOD:
        for base in ("staged", "clean"):
            write(tile_path(root / base, tx, ty), squares(tx, ty), staging=True)
    cases = build_cases(root / "staged")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = fastraster.rasterize_dir(root / "staged", root / "out", stats=STATS,
                                          tile_size=SIZE, progress=False)
        clean = fastraster.rasterize_dir(root / "clean", root / "ref", stats=STATS,
                                         tile_size=SIZE, progress=False)
    return root, cases, report, clean, [str(w.message) for w in caught]


CASE_NAMES = [
    "zero_byte", "random_bytes", "truncated_gpkg", "linestring_layer", "point_layer",
    "empty_layer", "no_crs", "foreign_crs", "nan_inf_coordinates", "bowtie",
    "unclosed_ring", "ring_of_two_points", "path_names_no_tile", "tile_outside_matrix",
    "polygons_outside_tile", "attribute_missing", "attribute_strings",
    "unreadable_geometry_blob", "nan_staging_centroid"]


def test_every_case_is_in_the_run(run):
    root, cases, report, _, _ = run
    assert sorted(cases) == sorted(CASE_NAMES)
    assert len(report) == len(cases) + len(GOOD)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_bad_input_status_and_message(run, name):
    root, cases, report, _, _ = run
    path, (status, text) = cases[name]
    rec = {r["path"]: r for r in report}[str(path)]
    assert rec["status"] == status, rec["error"]
    if status == "error":
        assert rec["error"].startswith(f"{path}: "), rec["error"]
        assert text in rec["error"], rec["error"]
        assert "Traceback" not in rec["error"] and "traceback" not in rec, rec
        if rec["output"]:
            assert not os.path.exists(rec["output"])
    else:
        assert os.path.exists(rec["output"])
        if text is None:
            assert rec["warnings"] == []
        else:
            assert len(rec["warnings"]) == 1, rec["warnings"]
            assert rec["warnings"][0].startswith(f"{path}: ")
            assert text in rec["warnings"][0], rec["warnings"]


def test_good_tiles_identical_to_a_clean_run_and_nothing_left_behind(run):
    root, cases, report, clean, caught = run
    assert clean.n("ok") == len(GOOD) and not clean.errors
    mine = {os.path.relpath(r["path"], root / "staged"): r for r in report}
    for r in clean:
        other = mine[os.path.relpath(r["path"], root / "clean")]
        assert other["status"] == "ok"
        with rasterio.open(r["output"]) as a, rasterio.open(other["output"]) as b:
            np.testing.assert_array_equal(a.read(), b.read())
    n_ok = len(GOOD) + sum(1 for _, (st, _) in cases.values() if st == "ok")
    assert report.n("ok") == n_ok and report.n("error") == len(cases) + len(GOOD) - n_ok
    outputs = sorted(p for p in (root / "out").rglob("*.tif"))
    assert len(outputs) == n_ok
    assert not [p for p in (root / "out").rglob(".*") if p.suffix == ".tmp"]
    with open(root / "out" / "rasterization_events.csv") as fh:
        events = list(csv.DictReader(fh))
    assert sorted(e["status"] for e in events) == sorted(r["status"] for r in report)
    # The run ends with one warning summing up the files rasterized with warnings.
    n_warned = sum(1 for r in report if r.get("warnings"))
    summary = [m for m in caught if "rasterized with warnings" in m]
    assert len(summary) == 1 and summary[0].startswith(f"{n_warned} file(s)")


def _read(path):
    with rasterio.open(path) as src:
        return src.read()


def test_bowtie_is_repaired_and_measured_exactly(run):
    """validate="repair" (default): the bow-tie's two triangles (shapely's make_valid),
    measured exactly; validate="error": refused, naming feature 0 and GEOS's reason."""
    root, cases, report, _, _ = run
    path, _ = cases["bowtie"]
    rec = {r["path"]: r for r in report}[str(path)]
    assert rec["repaired"] == 1
    cov = _read(rec["output"])[1].astype(np.float64)
    area = shapely.make_valid(_bowtie(1539, 911)).area
    pixel_area = (D / SIZE) ** 2
    assert cov.sum() * pixel_area == pytest.approx(area, rel=1e-6)  # float32 file
    with pytest.raises(InputError, match=r"invalid polygon\(s\); first is feature 0: "
                                         r"Self-intersection"):
        fastraster.rasterize_tile(path, (1539, 911, Z), tms=TMS, stats=STATS,
                                  validate="error")


def test_unclosed_ring_is_measured_as_the_closed_polygon(run):
    root, cases, report, _, _ = run
    path, _ = cases["unclosed_ring"]
    got = fastraster.rasterize_tile(path, (1540, 911, Z), tms=TMS, tile_size=SIZE,
                                    stats=STATS[:2])
    closed = shapely.Polygon(_square_ring(1540, 911, closed=True))
    want = fastraster.rasterize_tile([closed], (1540, 911, Z), tms=TMS, tile_size=SIZE,
                                     stats=STATS[:2])
    np.testing.assert_array_equal(got, want)
    for validate in ("error", "none"):
        np.testing.assert_array_equal(
            fastraster.rasterize_tile(path, (1540, 911, Z), tms=TMS, tile_size=SIZE,
                                      stats=STATS[:2], validate=validate), want)


def test_file_without_crs_equals_the_same_polygons_in_memory(run):
    root, cases, report, _, _ = run
    path, _ = cases["no_crs"]
    rec = {r["path"]: r for r in report}[str(path)]
    want = fastraster.rasterize_tile(squares(1536, 911), (1536, 911, Z), tms=TMS,
                                     tile_size=SIZE, stats=STATS,
                                     attributes={"v": np.arange(12.0) + 1})
    np.testing.assert_array_equal(_read(rec["output"]), want.astype(np.float32))


def test_polygons_outside_their_tile_give_an_empty_output(run):
    root, cases, report, _, _ = run
    path, _ = cases["polygons_outside_tile"]
    rec = {r["path"]: r for r in report}[str(path)]
    arr = _read(rec["output"])
    assert (arr[:2] == 0).all() and np.isnan(arr[2]).all()


@pytest.mark.parametrize("validate", ["repair", "error", "none"])
def test_non_finite_coordinates_refused_in_every_validate_mode(run, validate):
    root, cases, _, _, _ = run
    path, (_, text) = cases["nan_inf_coordinates"]
    with pytest.raises(InputError) as err:
        fastraster.rasterize_tile(path, (1538, 911, Z), tms=TMS, stats=STATS,
                                  validate=validate)
    assert str(err.value) == f"{path}: {text}"


@pytest.mark.parametrize("validate", ["repair", "error", "none"])
def test_non_finite_coordinates_refused_in_memory(validate):
    import geopandas

    good = squares(1524, 910, 3)
    bad = shapely.Polygon([(0, 0), (1, 0), (1, 1), (0, 0)])
    bad = shapely.transform(bad, lambda c: np.where(c == 1, np.nan, c))
    geoms = [good[0], bad, good[1]]
    with pytest.raises(ValueError, match=r"^feature 1 has a non-finite \(NaN or infinite\) "
                                         r"coordinate$"):
        fastraster.rasterize_tile(geoms, (1524, 910, Z), tms=TMS, validate=validate)
    df = geopandas.GeoDataFrame(geometry=geoms, crs="OGC:CRS84")
    with pytest.raises(ValueError, match="feature 1 has a non-finite"):
        fastraster.rasterize_tile(df, (1524, 910, Z), tms=TMS, validate=validate)


def test_non_finite_staging_centroids_refused_in_memory(tmp_path):
    """A GeoDataFrame's staging columns are used like a file's, and refused like a file's
    (features without a geometry aside); explicit centroids= too."""
    import geopandas

    geoms = squares(1547, 911, 4)
    geoms[3] = None
    w, s, _, _ = bounds(1547, 911)
    cx = np.array([w, math.inf, w, math.nan]) + .5 * D
    cy = np.array([s, s, math.nan, s]) + .5 * D
    df = geopandas.GeoDataFrame({"staging_centroid_x": cx, "staging_centroid_y": cy},
                                geometry=geoms, crs="OGC:CRS84")
    with pytest.raises(ValueError, match=r"^2 features \(1, 2\) have non-finite \(NaN, "
                                         r"infinite or null\) staging centroids "
                                         r"\(staging_centroid_x/staging_centroid_y\)$"):
        fastraster.rasterize_tile(df, (1547, 911, Z), tms=TMS, validate="none")
    with pytest.raises(ValueError, match=r"^2 features \(1, 2\) .* \(centroids=\)$"):
        fastraster.rasterize_tile(geoms, (1547, 911, Z), tms=TMS, centroids=(cx, cy))
    # Only feature 3, without a geometry, lacks a finite centroid: accepted, as from a file
    # (it adds nothing; the one square is counted once, as from a file of it alone).
    ok = df.iloc[[0, 3]]
    got = fastraster.rasterize_tile(ok, (1547, 911, Z), tms=TMS, tile_size=SIZE,
                                    stats=STATS[:1])
    path = write(tile_path(tmp_path, 1547, 911), [geoms[0]],
                 fields={"staging_centroid_x": cx[:1], "staging_centroid_y": cy[:1]})
    want = fastraster.rasterize_tile(path, (1547, 911, Z), tms=TMS, tile_size=SIZE,
                                     stats=STATS[:1])
    assert got.sum() == 1
    np.testing.assert_array_equal(got, want)


def test_plain_reason_for_an_empty_file_given_as_a_path_object(tmp_path):
    path = tmp_path / "WGS1984Quad" / "13" / "1524" / "910.gpkg"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    with pytest.raises(InputError, match="the file is empty"):
        fastraster.rasterize_tile(path, (1524, 910, 13))


#: Bad inputs the lean (sqlite3) reader hands over to pyogrio: what it cannot be sure to
#: read as GDAL does (not SQLite, no GeoPackage tables, text columns, a blob that is not a
#: GeoPackage geometry). Every other case it reads itself.
HANDED_OVER = {"zero_byte", "random_bytes", "truncated_gpkg", "attribute_strings",
               "unreadable_geometry_blob"}


@pytest.mark.parametrize("name", CASE_NAMES)
def test_both_readers_give_the_same_outcome(run, name):
    """Every bad input through read_staged (pyogrio) and the lean reader: the same data,
    error or warnings; read_staged_auto (what rasterize_file uses) too."""
    from tests.readers import assert_readers_agree

    root, cases, report, _, _ = run
    path, (status, text) = cases[name]
    got, detail = assert_readers_agree(path, name not in HANDED_OVER, attributes=("v",))
    if got == "error":  # a reading error: the one rasterize_dir reported
        rec = {r["path"]: r for r in report}[str(path)]
        assert status == "error" and text in detail and rec["error"] == detail, detail
    else:
        assert got == "ok"
        if status == "error":  # refused after reading (path, CRS, tile)
            assert text in ("cannot infer the tile from the path",
                            "is not the WorldCRS84Quad CRS OGC:CRS84; reproject (stage) it "
                            "first") or text.startswith("tile (99999"), text
