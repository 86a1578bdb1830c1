"""The lean GeoPackage reader gives the TileData that ``read_staged`` (pyogrio) gives, and
hands over to pyogrio, or fails naming the file, on what it does not read."""

from __future__ import annotations

import shutil
import sqlite3
import struct
import warnings

import numpy as np
import pyogrio.raw
import pytest
import shapely

from fastraster.io import gpkg_lean
from fastraster.io.gpkg_lean import LeanGpkgUnsupported, read_staged_auto, read_staged_lean
from fastraster.io.staged import InputError, read_staged
from tests.conftest import PDG_EXAMPLE, needs_pdg_example
from tests.readers import assert_readers_agree, assert_same_tile_data

READ_ALL = dict(duplicated_column="staging_duplicated")


@needs_pdg_example
def test_pdg_tiles_read_the_same():
    files = sorted((PDG_EXAMPLE / "staged").rglob("*.gpkg"))
    assert len(files) == 4
    for f in files:
        want = read_staged(f, **READ_ALL)
        got = read_staged_lean(f, **READ_ALL)
        assert len(got.polygons) > 1000
        assert_same_tile_data(got, want)


def test_sample_tiles_read_the_same(sample_staged):
    files = sorted(sample_staged.rglob("*.gpkg"))
    for f in files:
        want = read_staged(f, **READ_ALL)
        got = read_staged_lean(f, **READ_ALL)
        assert got.centroids is not None and got.duplicated is not None
        assert_same_tile_data(got, want)
        kw = dict(attributes=("staging_centroid_within_tile",), **READ_ALL)
        assert_same_tile_data(read_staged_lean(f, **kw), read_staged(f, **kw))
        with pytest.raises(InputError, match=f"{f}: has no attribute column 'nope'"):
            read_staged_lean(f, attributes=("nope",))


def _write(path, geoms, **columns):
    pyogrio.raw.write(str(path), np.array([None if g is None else shapely.to_wkb(g)
                                           for g in geoms], dtype=object),
                      [np.asarray(v) for v in columns.values()], list(columns),
                      driver="GPKG", geometry_type="Unknown", crs="EPSG:4326", layer="t")


def _geoms():
    box = shapely.box(0, 0, 4, 4)
    holed = box.difference(shapely.box(1, 1, 2, 2))
    multi = shapely.MultiPolygon([shapely.box(10, 0, 11, 1), holed])
    return [box, shapely.Polygon(), None, multi, holed, shapely.MultiPolygon()]


def test_empty_and_null_geometries(tmp_path):
    path = tmp_path / "e.gpkg"
    n = len(_geoms())
    _write(path, _geoms(), staging_centroid_x=np.arange(n, dtype=float),
           staging_centroid_y=np.array([1.5, np.nan, 0, 0, 2, 3]),
           staging_duplicated=np.array([True, False, True, False, False, True]))
    want = read_staged(path, **READ_ALL)
    got = read_staged_lean(path, **READ_ALL)
    assert_same_tile_data(got, want)
    assert np.diff(got.polygons.geom_offsets).tolist() == [1, 0, 0, 2, 1, 0]


def _rewrite_blobs(path, fn):
    """Apply ``fn(blob) -> blob`` to every geometry blob (triggers dropped: they call GDAL's
    SQL functions, which plain sqlite3 lacks)."""
    con = sqlite3.connect(path)
    for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"
                               ).fetchall():
        con.execute(f'DROP TRIGGER "{name}"')
    rows = con.execute('SELECT fid, geom FROM "t"').fetchall()
    for fid, blob in rows:
        if blob is not None:
            con.execute('UPDATE "t" SET geom = ? WHERE fid = ?', (fn(bytes(blob)), fid))
    con.commit()
    con.close()


@pytest.mark.parametrize("indicator", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("little", [True, False])
def test_every_envelope_size_and_header_byte_order(tmp_path, indicator, little):
    path = tmp_path / "env.gpkg"
    _write(path, _geoms())
    sizes = [0, 32, 48, 48, 64]

    def rebuild(blob):
        flags = blob[3]
        old = sizes[(flags >> 1) & 7]
        wkb = blob[8 + old:]
        srs = struct.unpack("<i" if flags & 1 else ">i", blob[4:8])[0]
        env = np.array([0.0, 4.0, 0.0, 4.0, 1.0, 2.0, 3.0, 4.0])[:sizes[indicator] // 8]
        new_flags = (flags & 0xF0) | (indicator << 1) | (1 if little else 0)
        order = "<" if little else ">"
        return (b"GP\0" + bytes([new_flags]) + struct.pack(order + "i", srs)
                + env.astype(order + "f8").tobytes() + wkb)

    _rewrite_blobs(path, rebuild)
    want = read_staged(path)
    assert len(want.polygons) == 6
    assert_same_tile_data(read_staged_lean(path), want)


_WKB = shapely.to_wkb(shapely.box(0, 0, 1, 1))

#: Geometry blobs of feature 1 (of 3 boxes): (blob, whether the lean reader reads the file).
#: GDAL reads a blob whose GeoPackage header is damaged or not standard as a null geometry
#: (read_staged warns), or converts it (extended): the lean reader hands such files over.
BLOBS = {
    "not_gpkg_5_bytes": (b"\x01\x03\x00\x00\x00", False),
    "header_truncated": (b"GP\0\x03\0\0", False),
    "envelope_past_the_end": (b"GP\0\x03" + b"\0" * 12, False),
    "version_1": (b"GP\x01\x01" + b"\0" * 4 + _WKB, False),
    "extended": (b"GP\0\x21" + b"\0" * 4 + _WKB, False),
    "envelope_code_5": (b"GP\0\x0b" + b"\0" * 4 + _WKB, False),
    "bad_magic": (b"GX\0\x01" + b"\0" * 4 + _WKB, False),
    "plain_wkb": (_WKB, False),
    "text": ("hello", False),
    "empty_flag_with_a_polygon": (b"GP\0\x11" + b"\0" * 4 + _WKB, True),
    "empty_flag_empty_polygon": (b"GP\0\x11" + b"\0" * 4
                                 + shapely.to_wkb(shapely.Polygon()), True),
    "zero_length": (b"", True),
    "header_only": (b"GP\0\x01" + b"\0" * 4, True),
    "truncated_wkb": (b"GP\0\x01" + b"\0" * 4 + _WKB[:-8], True),
    "linestring": (b"GP\0\x01" + b"\0" * 4
                   + shapely.to_wkb(shapely.LineString([(0, 0), (1, 1)])), True),
    "nan_coordinate": (b"GP\0\x01" + b"\0" * 4 + struct.pack(
        "<BIII8d", 1, 3, 1, 4, 0, 0, 1, np.nan, 1, 1, 0, 0), True),
    "big_endian_header": (b"GP\0\x00\0\0\x10\xe6" + _WKB, True),
    "null": (None, True),
}


@pytest.mark.parametrize("name", sorted(BLOBS))
def test_damaged_blobs_read_as_gdal_reads_them(tmp_path, name):
    blob, lean_reads = BLOBS[name]
    path = tmp_path / "b.gpkg"
    _write(path, [shapely.box(0, 0, 1, 1)] * 3)
    _rewrite_blobs(path, lambda b: b)  # drops the triggers
    con = sqlite3.connect(path)
    con.execute('UPDATE "t" SET geom = ? WHERE fid = 2', (blob,))
    con.commit()
    con.close()
    status, got = assert_readers_agree(path, lean_reads)
    if status == "ok":
        no_geometry = np.diff(got.polygons.geom_offsets)[1] == 0
        assert bool(got.warnings) == no_geometry
        if no_geometry:
            assert got.warnings == [f"{path}: feature 1 has no geometry (null, empty or a "
                                    "blob GDAL cannot read): it adds no area"]


def test_truncated_wkb_names_file(tmp_path):
    path = tmp_path / "bad.gpkg"
    _write(path, [shapely.box(0, 0, 1, 1), shapely.box(1, 1, 2, 2)])
    _rewrite_blobs(path, lambda b: b[:-8])
    with pytest.raises(InputError, match=rf"^{path}: 2 features \(0, 1\) have truncated "
                                         "WKB$"):
        read_staged_lean(path)
    assert_readers_agree(path, True)


def test_other_geometry_types_are_refused_like_pyogrio(tmp_path):
    path = tmp_path / "line.gpkg"
    _write(path, [shapely.box(0, 0, 1, 1), shapely.LineString([(0, 0), (1, 1)])])
    with pytest.raises(InputError, match=rf"^{path}: feature 1 is not a Polygon or "
                                         "MultiPolygon$"):
        read_staged_lean(path)
    assert_readers_agree(path, True)


#: Values stored against their column's declared type (SQLite's dynamic typing), and what
#: GDAL reads (pinned: the lean reader must not read such files differently).
ODD_VALUES = {
    "INTEGER": ([1.5, 1e300, "abc", "12", b"\x01"], [1, 2**63 - 1, 0, 12, 0]),
    "REAL": (["abc", "1.5abc", "inf", "1_000", b"12"], [0.0, 1.5, 0.0, 1.0, 12.0]),
    "BOOLEAN": ([2, -1, 0.5, "abc", "true"], [True, True, False, False, False]),
}


@pytest.mark.parametrize("declared", sorted(ODD_VALUES))
def test_values_against_the_declared_type_go_to_gdal(tmp_path, declared):
    odd, gdal_reads = ODD_VALUES[declared]
    clean = {"INTEGER": [7, None, -3, 0, 2**53 + 1], "REAL": [0.1, None, -2.5, 1e300, 3],
             "BOOLEAN": [0, 1, None, 1, 0]}[declared]
    for label, values, lean_reads in (("odd", odd, False), ("clean", clean, True)):
        path = tmp_path / f"{label}.gpkg"
        _write(path, [shapely.box(i, 0, i + 1, 1) for i in range(5)])
        _rewrite_blobs(path, lambda b: b)
        con = sqlite3.connect(path)
        con.execute(f'ALTER TABLE "t" ADD COLUMN "v" {declared}')
        for fid, v in enumerate(values, 1):
            con.execute('UPDATE "t" SET v = ? WHERE fid = ?', (v, fid))
        con.commit()
        con.close()
        status, got = assert_readers_agree(path, lean_reads, attributes=("v",),
                                           duplicated_column="v")
        assert status == "ok"
        if label == "odd":
            np.testing.assert_array_equal(got.attributes["v"], np.array(gdal_reads, float))
        else:
            want = np.array([np.nan if v is None else v for v in values], float)
            if declared == "BOOLEAN":
                want = np.where(np.isnan(want), np.nan, want != 0)
            np.testing.assert_array_equal(got.attributes["v"], want)
            np.testing.assert_array_equal(got.duplicated, np.nan_to_num(want) != 0)


#: Declared types GDAL does not read as 64-bit numbers, and whether the lean reader then
#: reads the file itself (GDAL drops the column: "has no attribute column", from both).
OTHER_TYPES = {"FLOAT": False, "MEDIUMINT": False, "SMALLINT": False, "TINYINT": False,
               "BIGINT": True, "DOUBLE PRECISION": True, "DECIMAL(10,2)": True, "BOOL": True,
               "TEXT": False, "DATETIME": False, "": False}


@pytest.mark.parametrize("declared", sorted(OTHER_TYPES))
def test_columns_gdal_reads_otherwise(tmp_path, declared):
    """GDAL narrows FLOAT to float32 and SMALLINT to int16, drops BIGINT and DOUBLE
    PRECISION ("not supported"), reads TEXT and dates as such: the lean reader gives what
    GDAL gives (a missing column) or hands the file over."""
    path = tmp_path / "t.gpkg"
    _write(path, [shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)])
    _rewrite_blobs(path, lambda b: b)
    con = sqlite3.connect(path)
    con.execute(f'ALTER TABLE "t" ADD COLUMN "v" {declared}')
    con.execute('UPDATE "t" SET v = 0.1')
    con.commit()
    con.close()
    status, detail = assert_readers_agree(path, OTHER_TYPES[declared], attributes=("v",))
    if OTHER_TYPES[declared]:
        assert (status, detail) == ("error", f"{path}: has no attribute column 'v' (a "
                                             "statistic needs it)")


@pytest.mark.parametrize("name", ["fid", "geom"])
def test_fid_and_geometry_are_not_attribute_columns(tmp_path, name):
    path = tmp_path / "t.gpkg"
    _write(path, [shapely.box(0, 0, 1, 1)], v=np.array([1.0]))
    status, message = assert_readers_agree(path, name == "fid", attributes=(name,))
    assert status == "error"
    assert message.startswith(f"{path}: ")


def test_layers_as_gdal_lists_them(tmp_path):
    """Extra tables or views (GDAL lists them as layers too), a table registered as
    attributes, a features table missing or renamed, gpkg_contents missing: GDAL decides."""
    sql = {
        "extra_table": "CREATE TABLE aaa (a INTEGER)",
        "view": 'CREATE VIEW vvv AS SELECT * FROM "t"',
        "attributes_table": "CREATE TABLE attrs (id INTEGER PRIMARY KEY, a REAL); INSERT "
                            "INTO gpkg_contents (table_name, data_type, identifier) VALUES "
                            "('attrs', 'attributes', 'attrs')",
        "table_renamed": 'ALTER TABLE "t" RENAME TO other',
        "table_dropped": 'DROP TABLE "t"',
        "contents_dropped": "DROP TABLE gpkg_contents",
        "srs_dropped": "DROP TABLE gpkg_spatial_ref_sys",
        "data_type_tiles": "UPDATE gpkg_contents SET data_type = 'tiles'",
        "no_integer_primary_key": 'CREATE TABLE t2 AS SELECT * FROM "t"; DROP TABLE "t"; '
                                  'ALTER TABLE t2 RENAME TO "t"',
    }
    for name, statement in sql.items():
        path = tmp_path / f"{name}.gpkg"
        _write(path, [shapely.box(0, 0, 1, 1)], v=np.array([1.0]))
        _rewrite_blobs(path, lambda b: b)
        con = sqlite3.connect(path)
        con.executescript(statement)
        con.close()
        assert_readers_agree(path, False, attributes=("v",))


def _calls(monkeypatch):
    seen = []
    real = gpkg_lean.read_staged

    def spy(path, **kw):
        seen.append(str(path))
        return real(path, **kw)

    monkeypatch.setattr(gpkg_lean, "read_staged", spy)
    return seen


def test_hands_over_to_pyogrio(tmp_path, monkeypatch, sample_staged):
    seen = _calls(monkeypatch)
    src = sorted(sample_staged.rglob("*.gpkg"))[0]
    # Two layers: which one a reader takes is GDAL's business.
    two = tmp_path / "two.gpkg"
    shutil.copy(src, two)
    pyogrio.raw.write(str(two), np.array([shapely.to_wkb(shapely.box(0, 0, 1, 1))],
                                         dtype=object), [], [], driver="GPKG", layer="other",
                      geometry_type="Polygon", crs="EPSG:4326", append=True)
    # Blobs that are plain WKB (no GeoPackage header), as some writers leave them.
    plain = tmp_path / "plain.gpkg"
    _write(plain, _geoms())
    _rewrite_blobs(plain, lambda b: b[8 + [0, 32, 48, 48, 64][(b[3] >> 1) & 7]:])
    # An extended (non-standard) GeoPackage geometry.
    ext = tmp_path / "ext.gpkg"
    _write(ext, _geoms())
    _rewrite_blobs(ext, lambda b: b[:3] + bytes([b[3] | 0x20]) + b[4:])
    for path in (two, plain, ext):
        with pytest.raises(LeanGpkgUnsupported):
            read_staged_lean(path)
    assert_same_tile_data(read_staged_auto(two), read_staged(two))
    assert seen[-1] == str(two)
    n_polys = sum(1 for p in (plain, ext) for _ in [read_staged_auto_or_error(p)])
    assert n_polys == 2 and seen[-2:] == [str(plain), str(ext)]
    # Too many features for the lean reader: pyogrio reads it.
    big = read_staged(src)
    assert_same_tile_data(read_staged_auto(src, max_rows=len(big.polygons) - 1), big)
    assert seen[-1] == str(src)
    assert_same_tile_data(read_staged_auto(src, max_rows=len(big.polygons)), big)
    assert seen[-1] == str(src) and len(seen) == 4  # not called again: lean read it


@pytest.mark.parametrize("crs", ["EPSG:4326", "OGC:CRS84", "EPSG:3857", None])
def test_crs_is_what_gdal_reads(tmp_path, crs, monkeypatch):
    """Every kind of CRS a staged file may carry, GDAL's "Undefined SRS" (LOCAL_CS, read as
    no CRS) and unparsable or damaged definitions: the lean reader's CRS is pyogrio's, asked
    of GDAL once per spatial reference row."""
    import pyogrio

    calls = []
    real = pyogrio.read_info
    monkeypatch.setattr(pyogrio, "read_info", lambda *a, **k: calls.append(a) or real(*a, **k))
    monkeypatch.setattr(gpkg_lean, "_GDAL_LAYERS", {})
    paths = []
    for k in range(2):
        path = tmp_path / f"c{k}.gpkg"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # pyogrio: "'crs' was not provided"
            pyogrio.raw.write(str(path), np.array([shapely.to_wkb(shapely.box(0, 0, 1, 1))],
                                                  dtype=object), [], [], driver="GPKG",
                              geometry_type="Polygon", crs=crs)
        paths.append(path)
    want = read_staged(paths[0]).crs
    assert (want is None) == (crs is None)
    for path in paths:
        assert_readers_agree(path, True)
    assert len(calls) == 1  # the second file has the same row: GDAL's answer is kept
    if crs is None:
        return
    # A definition damaged (or just one GDAL cannot parse), and an EPSG code that is not.
    for k, sql in enumerate([
            "UPDATE gpkg_spatial_ref_sys SET definition = replace(definition, '\"', '#'), "
            "organization = 'NONE'",
            "UPDATE gpkg_spatial_ref_sys SET organization_coordsys_id = 999999"]):
        path = tmp_path / f"d{k}.gpkg"
        shutil.copy(paths[0], path)
        con = sqlite3.connect(path)
        con.execute(sql + " WHERE srs_id = (SELECT srs_id FROM gpkg_geometry_columns)")
        con.commit()
        con.close()
        assert_readers_agree(path, True)


def test_large_files_go_to_pyogrio_unopened(monkeypatch, sample_staged):
    from fastraster.io.gpkg_lean import MAX_ROW_BYTES

    src = sorted(sample_staged.rglob("*.gpkg"))[0]
    seen = _calls(monkeypatch)
    tried = []
    real = gpkg_lean.read_staged_lean
    monkeypatch.setattr(gpkg_lean, "read_staged_lean",
                        lambda *a, **k: tried.append(a[0]) or real(*a, **k))
    rows = (src.stat().st_size - 1) // MAX_ROW_BYTES  # the file is just over rows x 4 KiB
    assert_same_tile_data(read_staged_auto(src, max_rows=rows), read_staged(src))
    assert tried == [] and seen == [str(src)]
    # Within the size: tried, refused by its feature count, read by pyogrio.
    assert len(read_staged(src).polygons) > rows + 1
    read_staged_auto(src, max_rows=rows + 1)
    assert tried == [src] and seen == [str(src)] * 2


def read_staged_auto_or_error(path):
    try:
        return read_staged_auto(path)
    except InputError as exc:
        return exc


def test_not_a_geopackage_is_reported_by_the_fallback(tmp_path):
    path = tmp_path / "junk.gpkg"
    path.write_text("not sqlite")
    with pytest.raises(LeanGpkgUnsupported):
        read_staged_lean(path)
    with pytest.raises(InputError, match=f"{path}: cannot read"):
        read_staged_auto(path)


def test_collector_state_is_restored(sample_staged):
    import gc

    f = sorted(sample_staged.rglob("*.gpkg"))[0]
    assert gc.isenabled()
    read_staged_lean(f)
    assert gc.isenabled()
    gc.disable()
    try:
        read_staged_lean(f)
        assert not gc.isenabled()
    finally:
        gc.enable()


def _pages(path, name, pagetype=None):
    """Page numbers of a table or index (SQLite's dbstat), in B-tree order."""
    con = sqlite3.connect(path)
    try:
        rows = con.execute("SELECT pageno, pagetype FROM dbstat WHERE name = ?",
                           (name,)).fetchall()
    except sqlite3.OperationalError:
        pytest.skip("this sqlite3 has no dbstat")
    finally:
        con.close()
    return [p for p, t in rows if pagetype is None or t == pagetype]


def _patch(path, offset, data: bytes):
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def test_damaged_index_of_gpkg_contents_goes_to_gdal(tmp_path):
    """GDAL's opening query reads gpkg_contents through its indexes and fails on a damaged
    one (found by fuzzing); the lean reader checks those tables and hands over."""
    path = tmp_path / "t.gpkg"
    _write(path, [shapely.box(0, 0, 1, 1)], v=np.array([1.0]))
    page = _pages(path, "sqlite_autoindex_gpkg_contents_1")[0]
    _patch(path, (page - 1) * 4096, b"\x42")  # not a B-tree page type
    status, detail = assert_readers_agree(path, False, attributes=("v",))
    assert status == "error" and "damaged" in detail, detail


def _first_rowid(path, leaf):
    """(file offset, value) of the rowid varint of the first cell of a table leaf page."""
    start = (leaf - 1) * 4096
    with open(path, "rb") as fh:
        fh.seek(start)
        page = fh.read(4096)
    assert page[0] == 0x0D  # a table leaf
    pos = int.from_bytes(page[8:10], "big")  # the first cell: payload size, then rowid
    while page[pos] & 0x80:  # skip the payload-size varint
        pos += 1
    pos += 1
    value = 0
    for k in range(9):
        value = (value << 7) | (page[pos + k] & 0x7F)
        if not page[pos + k] & 0x80:
            return start + pos, value, k + 1


def test_damaged_table_behind_a_null_geometry_goes_to_gdal(tmp_path):
    """Found by fuzzing a PDG tile: a damaged table page read as a row without geometry by
    Python's SQLite, while GDAL's own SQLite stopped there (1,217 of 1,551 rows, without a
    word). Before reporting a null geometry (or value) the lean reader checks the table's
    B-tree, and hands a damaged one over. Here: a row without geometry, first on its page,
    given a FID out of order; undamaged, the same file is read by the lean reader."""
    n = 400
    for damaged in (False, True):
        path = tmp_path / f"t{damaged}.gpkg"
        _write(path, [shapely.box(i, 0, i + 1, 1) for i in range(n)],
               v=np.arange(n, dtype=float))
        _rewrite_blobs(path, lambda b: b)
        leaf = next(p for p in _pages(path, "t", "leaf")[:-1]
                    if _first_rowid(path, p)[2] == 2)  # a 2-byte rowid (128..16383)
        fid = _first_rowid(path, leaf)[1]
        con = sqlite3.connect(path)
        con.execute('UPDATE "t" SET geom = NULL WHERE fid = ?', (fid,))
        con.commit()
        con.close()
        offset, value, size = _first_rowid(path, leaf)  # the cell may have moved
        assert (value, size) == (fid, 2)
        if damaged:
            _patch(path, offset, b"\xff\x7f")  # rowid 16383, before rowids < 400
        status, got = assert_readers_agree(path, not damaged, attributes=("v",))
        assert status == "ok" and got.warnings
