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
from rasterio.crs import CRS

from fastraster.io import gpkg_lean
from fastraster.io.gpkg_lean import LeanGpkgUnsupported, read_staged_auto, read_staged_lean
from fastraster.io.staged import InputError, read_staged
from tests.conftest import PDG_EXAMPLE, needs_pdg_example


def assert_same_tile_data(a, b):
    for u, v in zip(a.polygons.arrays, b.polygons.arrays):
        assert u.dtype == v.dtype and np.array_equal(u, v)
    assert (a.centroids is None) == (b.centroids is None)
    if a.centroids is not None:
        for u, v in zip(a.centroids, b.centroids):
            assert np.array_equal(u, v, equal_nan=True)
    assert (a.duplicated is None) == (b.duplicated is None)
    if a.duplicated is not None:
        assert np.array_equal(a.duplicated, b.duplicated)
    assert a.attributes.keys() == b.attributes.keys()
    for k in a.attributes:
        assert np.array_equal(a.attributes[k], b.attributes[k], equal_nan=True)
    assert (a.crs is None) == (b.crs is None)
    if a.crs is not None:
        assert CRS.from_user_input(a.crs) == CRS.from_user_input(b.crs)
    assert a.bytes_read == b.bytes_read


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


def test_truncated_header_names_file_and_feature(tmp_path):
    path = tmp_path / "bad.gpkg"
    _write(path, [shapely.box(0, 0, 1, 1), shapely.box(1, 1, 2, 2)])
    blobs = iter([None, b"GP\0\x03\0\0"])
    _rewrite_blobs(path, lambda b: next(blobs) or b)
    with pytest.raises(InputError, match=rf"{path}: feature 1 has a truncated GeoPackage"):
        read_staged_lean(path)
    # The envelope says 32 bytes, the blob stops before.
    path = tmp_path / "bad2.gpkg"
    _write(path, [shapely.box(0, 0, 1, 1), shapely.box(1, 1, 2, 2)])
    _rewrite_blobs(path, lambda b: b[:20])
    with pytest.raises(InputError, match=rf"{path}: feature 0 has a truncated GeoPackage"):
        read_staged_lean(path)


def test_truncated_wkb_names_file(tmp_path):
    path = tmp_path / "bad.gpkg"
    _write(path, [shapely.box(0, 0, 1, 1), shapely.box(1, 1, 2, 2)])
    _rewrite_blobs(path, lambda b: b[:-8])
    with pytest.raises(InputError, match=rf"{path}: 2 feature\(s\) \(0, 1\) has truncated"):
        read_staged_lean(path)


def test_other_geometry_types_are_refused_like_pyogrio(tmp_path):
    path = tmp_path / "line.gpkg"
    _write(path, [shapely.box(0, 0, 1, 1), shapely.LineString([(0, 0), (1, 1)])])
    with pytest.raises(InputError, match=r"feature\(s\) \(1\) is not a Polygon") as lean:
        read_staged_lean(path)
    with pytest.raises(InputError) as ref:
        read_staged(path)
    assert str(lean.value) == str(ref.value)


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
def test_crs_means_what_gdal_reads(tmp_path, crs):
    """Every kind of CRS a staged file may carry compares as pyogrio's does; a file without
    a CRS (GDAL's LOCAL_CS "Undefined SRS") is left to pyogrio, which reads no CRS."""
    path = tmp_path / "c.gpkg"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pyogrio: "'crs' was not provided"
        pyogrio.raw.write(str(path), np.array([shapely.to_wkb(shapely.box(0, 0, 1, 1))],
                                              dtype=object), [], [], driver="GPKG",
                          geometry_type="Polygon", crs=crs)
    want = read_staged(path).crs
    if crs is None:
        assert want is None
        with pytest.raises(LeanGpkgUnsupported, match="local"):
            read_staged_lean(path)
    else:
        assert CRS.from_user_input(read_staged_lean(path).crs) == CRS.from_user_input(want)
    assert read_staged_auto(path).crs == (None if crs is None else read_staged_lean(path).crs)


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
