"""Whole staged GeoPackages, damaged: never a crash, always a clean per-file answer.

A good staged file is truncated, has bytes flipped (in the SQLite header, anywhere, inside
the geometry blobs), tables dropped or renamed, a wrong geometry type in
``gpkg_geometry_columns``, a broken SRS reference. Then:

* ``read_staged`` either reads it or raises ``InputError`` whose message starts with the
  file's path; what it reads is well-formed (finite coordinates, consistent offsets);
* ``rasterize_tile`` on it does the same (no other exception escapes);
* ``rasterize_dir`` over a folder holding such files and good ones reports as errors
  exactly the damaged files that ``rasterize_tile`` refuses, writes no output (and no
  temporary file) for them, and writes the good tiles byte-for-byte equal in values to a
  clean run's.

Hypothesis budgets are small (GDAL opens each file): FASTRASTER_FUZZ_EXAMPLES scales them.
"""

from __future__ import annotations

import os
import re
import sqlite3
import tempfile
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pyogrio.raw
import pytest
import rasterio
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastraster
from fastraster.io.gpkg_lean import read_staged_auto
from fastraster.io.staged import InputError, read_staged
from fastraster.model.geometry import RaggedPolygons
from tests.conftest import PDG_EXAMPLE, needs_pdg_example
from tests.readers import assert_same_outcome, outcome

N_EXAMPLES = int(os.environ.get("FASTRASTER_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=max(N_EXAMPLES // 5, 10), deadline=None, database=None,
                derandomize=os.environ.get("FASTRASTER_FUZZ_RANDOM") != "1",
                suppress_health_check=list(HealthCheck))

TMS = "WorldCRS84Quad"
Z = 13
D = 180.0 / 2**Z
STATS = [
    {"name": "polygon_count", "weight_by": "count", "property": "centroids_per_pixel"},
    {"name": "coverage", "weight_by": "area", "property": "area_per_pixel_area",
     "nodata_val": 0},
    {"name": "v_max", "weight_by": "area", "property": "v", "aggregation_method": "max"},
]
SIZE = 32


def tile_bounds(tx, ty):
    left, top = -180.0 + tx * D, 90.0 - ty * D
    return left, top - D, left + D, top


def _polygons(tx, ty, seed):
    """~30 small polygons inside tile (tx, ty), some with holes, some MultiPolygons."""
    rng = np.random.default_rng(seed)
    west, south, _, _ = tile_bounds(tx, ty)
    out = []
    for i in range(30):
        cx = west + (0.05 + 0.9 * rng.random()) * D
        cy = south + (0.05 + 0.9 * rng.random()) * D
        r = D * (0.005 + 0.03 * rng.random())
        k = int(rng.integers(3, 9))
        ang = np.sort(rng.random(k)) * 2 * np.pi
        shell = np.column_stack([cx + r * np.cos(ang), cy + r * np.sin(ang)])
        p = shapely.Polygon(shell)
        if i % 5 == 0:
            p = shapely.Polygon(shell, [shapely.box(cx - r / 4, cy - r / 4, cx + r / 4,
                                                    cy + r / 4).exterior.coords])
        if i % 7 == 0:
            p = shapely.MultiPolygon([p, shapely.box(cx + 2 * r, cy, cx + 3 * r, cy + r)])
        out.append(shapely.make_valid(p) if not p.is_valid else p)
    return [g if g.geom_type in ("Polygon", "MultiPolygon") else shapely.box(0, 0, 1, 1)
            for g in out]


def write_good(path, tx, ty, seed=0):
    geoms = np.array(_polygons(tx, ty, seed), dtype=object)
    c = shapely.centroid(geoms)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pyogrio.raw.write(str(path), shapely.to_wkb(geoms),
                      [shapely.get_x(c), shapely.get_y(c),
                       np.random.default_rng(seed).normal(size=len(geoms))],
                      ["staging_centroid_x", "staging_centroid_y", "v"], driver="GPKG",
                      geometry_type="MultiPolygon", crs="OGC:CRS84", layer="tile")


@cache
def good_bytes(tx, ty) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        p = os.path.join(tmp, "g.gpkg")
        write_good(p, tx, ty, seed=tx * 7 + ty)
        return Path(p).read_bytes()


def wkb_start(data: bytes, i: int) -> int:
    """Where the WKB of the GeoPackage blob at ``i`` starts: after the 8-byte header and
    the envelope its flags announce (0, 32, 48, 48 or 64 bytes)."""
    return i + 8 + [0, 32, 48, 48, 64][(data[i + 3] >> 1) & 7]


def blob_positions(data: bytes) -> list[int]:
    """Offsets of GeoPackage geometry blobs ("GP", version 0) in a file's bytes."""
    out, i = [], data.find(b"GP\x00")
    while i >= 0:
        out.append(i)
        i = data.find(b"GP\x00", i + 1)
    return out


# ---------------------------------------------------------------------------------------------
# Damage
# ---------------------------------------------------------------------------------------------

_SQL = {
    "rename_table": "ALTER TABLE tile RENAME TO other",
    "drop_table": "DROP TABLE tile",
    "drop_contents": "DROP TABLE gpkg_contents",
    "drop_geometry_columns": "DROP TABLE gpkg_geometry_columns",
    "drop_srs": "DROP TABLE gpkg_spatial_ref_sys",
    "empty_geometry_columns": "DELETE FROM gpkg_geometry_columns",
    "type_point": "UPDATE gpkg_geometry_columns SET geometry_type_name = 'POINT'",
    "type_linestring": "UPDATE gpkg_geometry_columns SET geometry_type_name = 'LINESTRING'",
    "type_garbage": "UPDATE gpkg_geometry_columns SET geometry_type_name = 'NONSENSE'",
    "geometry_column_misnamed": "UPDATE gpkg_geometry_columns SET column_name = 'nope'",
    "rename_geometry_column": "ALTER TABLE tile RENAME COLUMN geom TO shape",
    "srs_missing": "UPDATE gpkg_geometry_columns SET srs_id = 99999",
    "drop_v": "ALTER TABLE tile DROP COLUMN v",
    "v_as_text": "UPDATE tile SET v = 'abc' WHERE fid = 3",
    "blob_not_gpkg": "UPDATE tile SET geom = X'0103000000' WHERE fid = 2",
    "blob_garbage": "UPDATE tile SET geom = X'4750000100000000DEADBEEFDEADBEEF' WHERE fid = 4",
    "blob_text": "UPDATE tile SET geom = 'hello' WHERE fid = 5",
}


def _apply_sql(path, sql):
    con = sqlite3.connect(path)
    try:
        # GDAL's R-tree triggers call its SQL functions; stand-ins (the index is not read).
        for f in ("ST_IsEmpty", "ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY"):
            con.create_function(f, 1, lambda b: 0)
        con.execute(sql)
        con.commit()
    finally:
        con.close()
    for suffix in ("-journal", "-wal", "-shm"):
        if os.path.exists(f"{path}{suffix}"):
            os.remove(f"{path}{suffix}")


@st.composite
def damage(draw, data: bytes, sql=True):
    """(description, function writing the damaged file to a path)."""
    kinds = ["truncate", "flip_header", "flip_anywhere", "flip_blobs"] + (["sql"] if sql
                                                                          else [])
    kind = draw(st.sampled_from(kinds))
    b = bytearray(data)
    if kind == "truncate":
        cut = draw(st.one_of(st.integers(0, len(b) - 1),
                             st.sampled_from([0, 1, 16, 99, 100, 4096, 8192, len(b) - 1])))
        b = b[:cut]
        return f"truncated at {cut}", lambda p: Path(p).write_bytes(bytes(b))
    if kind == "sql":
        name = draw(st.sampled_from(sorted(_SQL)))

        def write(p):
            Path(p).write_bytes(data)
            _apply_sql(p, _SQL[name])
        return f"sql {name}", write
    if kind == "flip_header":
        lo, hi = 0, 100
    elif kind == "flip_anywhere":
        lo, hi = 0, len(b)
    else:
        starts = blob_positions(data)
        start = draw(st.sampled_from(starts))
        lo, hi = start, min(start + 120, len(b))
    flips = draw(st.lists(st.tuples(st.integers(lo, hi - 1), st.integers(1, 255)),
                          min_size=1, max_size=8))
    for i, mask in flips:
        b[i] ^= mask
    return f"{kind} {flips}", lambda p: Path(p).write_bytes(bytes(b))


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------


def _well_formed(polys: RaggedPolygons):
    x, y, ro, po, go = polys.arrays
    assert np.isfinite(x).all() and np.isfinite(y).all()
    for off, n in ((ro, x.size), (po, ro.size - 1), (go, po.size - 1)):
        assert off[0] == 0 and off[-1] == n and (np.diff(off) >= 0).all()


def read_or_refuse(path, tile, stats=STATS):
    """None if read and rasterized, else the InputError message (checked to name the
    file); any other exception fails the test. read_staged_auto (the lean reader, or
    pyogrio where it hands over) must read the file as read_staged does."""
    attributes = tuple(s["property"] for s in stats if s["property"] == "v")
    ref = outcome(read_staged, path, attributes=attributes)
    assert_same_outcome(outcome(read_staged_auto, path, attributes=attributes), ref)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GDAL's own complaints about damaged files
        try:
            data = read_staged(path, attributes=attributes)
        except InputError as exc:
            assert str(exc).startswith(str(path)), exc
            read_error = str(exc)
        else:
            read_error = None
            _well_formed(data.polygons)
        try:
            arr = fastraster.rasterize_tile(path, tile, tms=TMS, tile_size=SIZE, stats=stats)
        except InputError as exc:
            assert str(exc).startswith(str(path)), exc
            return str(exc)
    # A file read_staged refuses is refused here too (for the same reason).
    assert read_error is None, read_error
    assert arr.shape == (len(stats), SIZE, SIZE)
    return None


GOOD_TILES = [(1524, 910), (1525, 910)]
DAMAGED_TILES = [(1524, 911), (1525, 911), (1526, 911)]


@FUZZ
@given(data=st.data())
def test_damaged_file_is_read_or_refused_by_name(data):
    tx, ty = DAMAGED_TILES[data.draw(st.integers(0, len(DAMAGED_TILES) - 1))]
    what, write = data.draw(damage(good_bytes(tx, ty)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / TMS / str(Z) / str(tx) / f"{ty}.gpkg"
        path.parent.mkdir(parents=True)
        write(path)
        read_or_refuse(path, (tx, ty, Z))


@cache
def pdg_tile_bytes() -> bytes:
    return (PDG_EXAMPLE / "staged" / TMS / "13" / "1524" / "910.gpkg").read_bytes()


@needs_pdg_example
@settings(FUZZ, max_examples=max(N_EXAMPLES // 10, 5))  # 3.5 MB written per example
@given(data=st.data())
def test_damaged_pdg_tile_is_read_or_refused_by_name(data):
    """A real staged tile of PDG's (1,551 IWP polygons) truncated or with bytes flipped."""
    what, write = data.draw(damage(pdg_tile_bytes(), sql=False))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / TMS / "13" / "1524" / "910.gpkg"
        path.parent.mkdir(parents=True)
        write(path)
        read_or_refuse(path, (1524, 910, 13), stats=STATS[:2])


@settings(FUZZ, max_examples=max(N_EXAMPLES // 25, 4))  # a rasterize_dir run per example
@given(data=st.data())
def test_rasterize_dir_reports_exactly_the_refused_files(data):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        staged = tmp / "staged"
        clean = tmp / "clean"
        for tx, ty in GOOD_TILES:
            for root in (staged, clean):
                p = root / TMS / str(Z) / str(tx) / f"{ty}.gpkg"
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(good_bytes(tx, ty))
        refused = {}
        for tx, ty in DAMAGED_TILES:
            what, write = data.draw(damage(good_bytes(tx, ty)))
            p = staged / TMS / str(Z) / str(tx) / f"{ty}.gpkg"
            p.parent.mkdir(parents=True, exist_ok=True)
            write(p)
            refused[str(p)] = read_or_refuse(p, (tx, ty, Z))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = fastraster.rasterize_dir(staged, tmp / "out", stats=STATS,
                                              tile_size=SIZE, progress=False)
            ref = fastraster.rasterize_dir(clean, tmp / "ref", stats=STATS, tile_size=SIZE,
                                           progress=False)
        by_path = {r["path"]: r for r in report}
        for p, why in refused.items():
            rec = by_path[p]
            if why is None:
                assert rec["status"] == "ok", rec["error"]
            else:
                assert rec["status"] == "error" and rec["error"] == why
                assert not os.path.exists(rec["output"])
        assert report.n("ok") == len(GOOD_TILES) + sum(v is None for v in refused.values())
        # Good tiles as in a clean run.
        assert ref.n("ok") == len(GOOD_TILES)
        for r in ref:
            mine = by_path[str(staged / os.path.relpath(r["path"], clean))]
            with rasterio.open(r["output"]) as a, rasterio.open(mine["output"]) as b:
                np.testing.assert_array_equal(a.read(), b.read())
        leftovers = [p for p in (tmp / "out").rglob(".*") if p.suffix == ".tmp"]
        assert not leftovers


@pytest.mark.parametrize("name", sorted(_SQL))
def test_each_table_damage(name, tmp_path):
    """Every table-level damage once (deterministic): read or refused by name; and what
    the user gets for each (documented in the README's "Bad input" table)."""
    tx, ty = DAMAGED_TILES[0]
    path = tmp_path / TMS / str(Z) / str(tx) / f"{ty}.gpkg"
    path.parent.mkdir(parents=True)
    path.write_bytes(good_bytes(tx, ty))
    _apply_sql(path, _SQL[name])
    why = read_or_refuse(path, (tx, ty, Z))
    expected_refusal = {
        "rename_table": "has no geometry column",  # GDAL then sees a non-spatial table
        "drop_table": "cannot read: it holds no vector layer",
        "drop_contents": "cannot read",
        "drop_geometry_columns": "cannot read",
        "drop_srs": "cannot read",
        "empty_geometry_columns": "cannot read",
        "drop_v": "has no attribute column 'v'",
        "blob_garbage": "feature 3 has malformed WKB",  # its WKB starts 0xDE
    }
    if name in expected_refusal:
        assert why is not None and expected_refusal[name] in why, why
    else:
        # Read: GDAL reads the blobs whatever the declared type; a broken SRS reference is
        # "no CRS" (assumed, with a warning); a blob GDAL cannot parse is a null geometry
        # (read_staged warns); a text value in a REAL column reads as 0.0 (GDAL, silently).
        assert why is None, why


def test_damaged_files_in_rasterize_dir_with_loky_workers(tmp_path):
    """The same through two loky worker processes (GDAL in a subprocess), fixed damage."""
    staged = tmp_path / "staged"
    for tx, ty in GOOD_TILES:
        p = staged / TMS / str(Z) / str(tx) / f"{ty}.gpkg"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(good_bytes(tx, ty))
    bad = {}
    for (tx, ty), how in zip(DAMAGED_TILES, ["truncate", "header", "blob"]):
        b = bytearray(good_bytes(tx, ty))
        if how == "truncate":
            b = b[:len(b) // 2]
        elif how == "header":
            b[0:16] = b"not sqlite\x00\x00\x00\x00\x00\x00"
        else:
            b[wkb_start(bytes(b), blob_positions(bytes(b))[3])] = 7  # a byte order of 7
        p = staged / TMS / str(Z) / str(tx) / f"{ty}.gpkg"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(bytes(b))
        bad[str(p)] = read_or_refuse(p, (tx, ty, Z))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = fastraster.rasterize_dir(staged, tmp_path / "out", stats=STATS,
                                          tile_size=SIZE, progress=False, n_jobs=2,
                                          backend="loky", batch_size=1)
    by_path = {r["path"]: r for r in report}
    header, blob = (str(staged / TMS / str(Z) / str(tx) / f"{ty}.gpkg")
                    for tx, ty in DAMAGED_TILES[1:])
    assert "cannot read" in bad[header]
    # (Row order in the file's pages is not fid order: which feature it hit varies.)
    assert re.fullmatch(re.escape(blob) + r": feature \d+ has malformed WKB \(a byte-order "
                        r"byte neither 0 nor 1\)", bad[blob]), bad[blob]
    for p, why in bad.items():
        rec = by_path[p]
        assert rec["status"] == ("ok" if why is None else "error") and rec["error"] == why
    assert report.n("ok") == len(GOOD_TILES) + sum(why is None for why in bad.values())
