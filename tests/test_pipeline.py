"""rasterize_dir, rasterize_tile, RasterTiler and the CLI on files: outputs, errors, resume."""

import csv
import os
import pickle
import shutil
import warnings

import numpy as np
import pyogrio.raw
import pytest
import shapely

import fastraster
from fastraster.io.tilepaths import parse_tile_path
from fastraster.model.grid import TileGrid
from tests.conftest import assert_no_temp_files, read_tif, tif_files

TILE = (1524, 910, 13)


def _write_gpkg(path, geoms, crs="OGC:CRS84", fields=None, geometry_type="Polygon"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fields = fields or {}
    pyogrio.raw.write(str(path), shapely.to_wkb(np.asarray(geoms, dtype=object)),
                      list(fields.values()), list(fields), driver="GPKG",
                      geometry_type=geometry_type, crs=crs)


def _tile_box(tile=TILE, frac=(0.3, 0.3, 0.6, 0.6)):
    g = TileGrid.from_tile(tile, "WorldCRS84Quad")
    w, h = g.right - g.left, g.top - g.bottom
    return shapely.box(g.left + frac[0] * w, g.bottom + frac[1] * h, g.left + frac[2] * w,
                       g.bottom + frac[3] * h)


def test_outputs_match_rasterize_tile(sample_staged, tmp_path):
    report = fastraster.rasterize_dir(sample_staged, tmp_path, progress=False)
    assert report.n("ok") == 2 and not report.errors
    assert {tuple(r["tile"]) for r in report} == {(1524, 910, 13), (1525, 910, 13)}
    for rec in report:
        assert set(rec) >= {"path", "tile", "status", "error", "seconds", "polygons"}
        assert rec["polygons"] > 100 and rec["seconds"] > 0
        arr = fastraster.rasterize_tile(rec["path"], rec["tile"], tms="WorldCRS84Quad")
        written, prof, names, transform = read_tif(rec["output"])
        assert names == ("polygon_count", "coverage")
        np.testing.assert_array_equal(written, arr.astype(np.float32))
        assert transform == TileGrid.from_tile(rec["tile"], "WorldCRS84Quad").transform
    # Staging centroid columns are used: each polygon counted in exactly one tile, so
    # the count bands add up to the number of polygons whose centroid lies in the block.
    total = sum(read_tif(p)[0][0].sum() for p in tif_files(tmp_path))
    cx = np.concatenate([pyogrio.read_dataframe(r["path"])["staging_centroid_x"].to_numpy()
                         for r in report])
    cy = np.concatenate([pyogrio.read_dataframe(r["path"])["staging_centroid_y"].to_numpy()
                         for r in report])
    a, b = TileGrid.from_tile((1524, 910, 13), "WorldCRS84Quad"), TileGrid.from_tile(
        (1525, 910, 13), "WorldCRS84Quad")
    inside = (cx > a.left) & (cx <= b.right) & (cy < a.top) & (cy >= a.bottom)
    assert total == len(set(zip(cx[inside], cy[inside], strict=True)))
    # Summary and events CSVs, written by the parent.
    with open(tmp_path / "rasters_summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and {r["stat"] for r in rows} == {"polygon_count", "coverage"}
    with open(tmp_path / "rasterization_events.csv") as fh:
        events = list(csv.DictReader(fh))
    assert [e["status"] for e in events] == ["ok", "ok"]
    assert_no_temp_files(tmp_path)


def test_resume_and_overwrite(sample_staged, tmp_path):
    fastraster.rasterize_dir(sample_staged, tmp_path, progress=False)
    first = {p: p.stat().st_mtime_ns for p in tif_files(tmp_path)}
    again = fastraster.rasterize_dir(sample_staged, tmp_path, progress=False)
    assert again.n("skipped") == 2
    assert {p: p.stat().st_mtime_ns for p in tif_files(tmp_path)} == first
    # The summary keeps the rows of skipped tiles.
    with open(tmp_path / "rasters_summary.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 4
    redo = fastraster.rasterize_dir(sample_staged, tmp_path, progress=False, overwrite=True)
    assert redo.n("ok") == 2


@pytest.mark.parametrize("backend,n_jobs", [("threading", 2), ("loky", 2)])
def test_parallel_backends_give_identical_files(sample_staged, tmp_path, backend, n_jobs):
    seq = fastraster.rasterize_dir(sample_staged, tmp_path / "seq", progress=False)
    par = fastraster.rasterize_dir(sample_staged, tmp_path / "par", progress=False,
                                   n_jobs=n_jobs, backend=backend, batch_size=1)
    assert par.n("ok") == seq.n("ok") == 2
    for a, b in zip(tif_files(tmp_path / "seq"), tif_files(tmp_path / "par"), strict=True):
        np.testing.assert_array_equal(read_tif(a)[0], read_tif(b)[0])


def test_bad_files_are_reported_and_never_stop_the_run(sample_staged, tmp_path):
    staged = tmp_path / "staged"
    shutil.copytree(sample_staged, staged)
    base = staged / "WorldCRS84Quad" / "13"
    (base / "9").mkdir()
    (base / "9" / "1.gpkg").write_bytes(b"this is not a geopackage")
    _write_gpkg(base / "9" / "2.gpkg", [shapely.LineString([(0, 0), (1, 1)])],
                geometry_type="LineString")
    _write_gpkg(base / "9" / "3.gpkg", [shapely.box(0, 0, 1, 1)], crs="EPSG:3413")
    (staged / "WorldCRS84Quad" / "notazoom").mkdir()
    _write_gpkg(staged / "WorldCRS84Quad" / "notazoom" / "x.gpkg", [shapely.box(0, 0, 1, 1)])
    out = tmp_path / "out"
    report = fastraster.rasterize_dir(staged, out, progress=False)
    by_name = {os.path.relpath(r["path"], staged): r for r in report}
    assert report.n("ok") == 2 and report.n("error") == 4
    err = by_name[os.path.join("WorldCRS84Quad", "13", "9", "1.gpkg")]["error"]
    assert "9/1.gpkg" in err and "cannot read" in err
    err = by_name[os.path.join("WorldCRS84Quad", "13", "9", "2.gpkg")]["error"]
    assert "9/2.gpkg" in err and "not a Polygon or MultiPolygon" in err
    err = by_name[os.path.join("WorldCRS84Quad", "13", "9", "3.gpkg")]["error"]
    assert "9/3.gpkg" in err and "CRS" in err
    err = by_name[os.path.join("WorldCRS84Quad", "notazoom", "x.gpkg")]["error"]
    assert "x.gpkg" in err and "cannot infer the tile" in err
    # No output for failed files, none half-written, the good ones intact.
    assert len(tif_files(out)) == 2
    assert_no_temp_files(out)
    with open(out / "rasterization_events.csv") as fh:
        assert sorted(e["status"] for e in csv.DictReader(fh)) == ["error"] * 4 + ["ok"] * 2


@pytest.mark.parametrize("writer", ["lean", "gdal"])
def test_failed_write_leaves_no_file(sample_staged, tmp_path, monkeypatch, writer):
    import rasterio.io

    import fastraster.io.geotiff_lean

    def boom(*a, **k):
        raise OSError("disk full")

    if writer == "gdal":
        monkeypatch.setenv("FASTRASTER_LEAN_IO", "0")
        monkeypatch.setattr(rasterio.io.DatasetWriter, "write", boom)
    else:  # the lean writer's os.write fails (the run's own writability probe does not)
        class FailingOs:
            write = staticmethod(boom)

            def __getattr__(self, name):
                return getattr(os, name)

        monkeypatch.setattr(fastraster.io.geotiff_lean, "os", FailingOs())
    report = fastraster.rasterize_dir(sample_staged, tmp_path, progress=False)
    assert report.n("error") == 2 and "disk full" in report[0]["error"]
    assert tif_files(tmp_path) == []
    assert_no_temp_files(tmp_path)


def test_float64_and_tile_size(sample_staged, tmp_path):
    report = fastraster.rasterize_dir(sample_staged, tmp_path, progress=False,
                                      dtype="float64", tile_size=128)
    arr, prof, _, _ = read_tif(report[0]["output"])
    assert prof["dtype"] == "float64" and arr.shape == (2, 128, 128)
    ref = fastraster.rasterize_tile(report[0]["path"], report[0]["tile"],
                                    tms="WorldCRS84Quad", tile_size=128)
    np.testing.assert_array_equal(arr, ref)


def test_deduplicate_drops_flagged_rows(tmp_path):
    a, b = _tile_box(), _tile_box(frac=(0.1, 0.1, 0.2, 0.2))
    path = tmp_path / "WorldCRS84Quad" / "13" / "1524" / "910.gpkg"
    _write_gpkg(path, [a, a, b], fields={"staging_duplicated": np.array([False, True, False])})
    both = fastraster.rasterize_tile(path, TILE, tms="WorldCRS84Quad")
    dedup = fastraster.rasterize_tile(path, TILE, tms="WorldCRS84Quad", deduplicate=True)
    assert both[0].sum() == 3 and dedup[0].sum() == 2
    assert both[1].max() == 2.0 and dedup[1].max() == 1.0


def test_invalid_polygons_repaired_or_refused(tmp_path):
    g = TileGrid.from_tile(TILE, "WorldCRS84Quad")
    x0, y0, d = g.left, g.bottom, g.right - g.left
    bowtie = shapely.Polygon([(x0 + .2 * d, y0 + .2 * d), (x0 + .8 * d, y0 + .8 * d),
                              (x0 + .8 * d, y0 + .2 * d), (x0 + .2 * d, y0 + .8 * d)])
    assert not bowtie.is_valid
    stats = [{"name": "coverage", "weight_by": "area", "property": "area_per_pixel_area"}]
    repaired = fastraster.rasterize_tile([bowtie], TILE, tms="WorldCRS84Quad", stats=stats)
    fixed = shapely.make_valid(bowtie)
    # Exact area of the repaired polygon (two triangles), not the signed bowtie area (0).
    assert repaired[0].sum() * g.pixel_area == pytest.approx(fixed.area, rel=1e-12)
    assert repaired[0].sum() > 0
    with pytest.raises(ValueError, match="invalid polygon"):
        fastraster.rasterize_tile([bowtie], TILE, tms="WorldCRS84Quad", validate="error")
    path = tmp_path / "WorldCRS84Quad" / "13" / "1524" / "910.gpkg"
    _write_gpkg(path, [bowtie])
    report = fastraster.rasterize_dir(tmp_path / "WorldCRS84Quad", tmp_path / "out",
                                      validate="error", progress=False)
    assert report[0]["status"] == "error" and "910.gpkg" in report[0]["error"]


def test_file_without_crs_is_assumed_in_tms_crs_with_warning(tmp_path):
    path = tmp_path / "WorldCRS84Quad" / "13" / "1524" / "910.gpkg"
    _write_gpkg(path, [_tile_box()], crs=None)
    with pytest.warns(UserWarning, match="has no CRS"):
        arr = fastraster.rasterize_tile(path, TILE, tms="WorldCRS84Quad")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ref = fastraster.rasterize_tile([_tile_box()], TILE, tms="WorldCRS84Quad")
    np.testing.assert_array_equal(arr, ref)


def test_rasterize_dir_sums_up_file_warnings_once_also_without_records(tmp_path):
    """Two files without CRS and one with: the records of those two carry the warning, and
    the run ends with one UserWarning counting them; keep_records=False (records not kept)
    counts them too."""
    for x, crs in ((1524, None), (1525, None), (1526, "OGC:CRS84")):
        tile = (x, 910, 13)
        _write_gpkg(tmp_path / "in" / "WorldCRS84Quad" / "13" / str(x) / "910.gpkg",
                    [_tile_box(tile)], crs=crs)
    for keep in (True, False):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            report = fastraster.rasterize_dir(tmp_path / "in", tmp_path / f"out{keep}",
                                              progress=False, keep_records=keep)
        assert report.n("ok") == 3
        if keep:
            no_crs = [r["path"] for r in report if r["warnings"]]
            assert sorted(no_crs) == sorted(
                str(tmp_path / "in" / "WorldCRS84Quad" / "13" / str(x) / "910.gpkg")
                for x in (1524, 1525))
            assert all(r["warnings"][0] == f"{r['path']}: has no CRS; assuming the "
                       "WorldCRS84Quad CRS (OGC:CRS84)" for r in report if r["warnings"])
        summary = [str(w.message) for w in caught if "rasterized with warnings" in
                   str(w.message)]
        assert len(summary) == 1, summary
        assert summary[0].startswith("2 file(s) rasterized with warnings")
        assert "has no CRS" in summary[0]


def test_nodata_value_for_untouched_pixels():
    stats = [{"name": "c", "weight_by": "count", "property": "centroids_per_pixel",
              "nodata_val": -1},
             {"name": "cov", "weight_by": "area", "property": "area_per_pixel_area",
              "nodata_val": -9}]
    arr = fastraster.rasterize_tile([_tile_box()], TILE, tms="WorldCRS84Quad", stats=stats)
    covered = arr[1] > 0
    assert (arr[0][~covered] == -1).all() and (arr[1][~covered] == -9).all()
    # Covered pixels without the centroid still count 0.
    assert (arr[0][covered] >= 0).all() and (arr[0][covered] == 0).sum() == covered.sum() - 1


def test_geodataframe_input_uses_staging_columns():
    import geopandas as gpd

    box = _tile_box()
    g = TileGrid.from_tile(TILE, "WorldCRS84Quad")
    # A staging centroid deliberately elsewhere than the geometric one.
    gdf = gpd.GeoDataFrame({"staging_centroid_x": [g.left + 0.5 * g.dx],
                            "staging_centroid_y": [g.top - 0.5 * g.dy]},
                           geometry=[box], crs="OGC:CRS84")
    arr = fastraster.rasterize_tile(gdf, TILE, tms="WorldCRS84Quad")
    assert arr[0][0, 0] == 1 and arr[0].sum() == 1


def test_tile_paths():
    f = parse_tile_path("/a/staged/WorldCRS84Quad/13/1524/910.gpkg")
    assert (f.tms, f.tile) == ("WorldCRS84Quad", (1524, 910, 13))
    assert parse_tile_path("/a/13/1524/910.gpkg", tms="WGS1984Quad").tile == (1524, 910, 13)
    assert parse_tile_path("/a/13/1524/910.gpkg").tile is None
    assert parse_tile_path("/a/WGS1984Quad/13/x/910.gpkg").problem


def test_raster_tiler_pickles_and_writes_summary(sample_staged, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiler = fastraster.RasterTiler({"dir_staged": str(sample_staged), "dir_geotiff": "gt",
                                    "tms_id": "WorldCRS84Quad"})
    tiler = pickle.loads(pickle.dumps(tiler))
    paths = tiler.tiles.get_filenames_from_dir("staged")
    tiles = tiler.rasterize_vectors(paths)
    assert sorted(tiles) == [(1524, 910, 13), (1525, 910, 13)]
    assert len(tiler.tiles.get_filenames_from_dir("geotiff")) == 2
    with open("rasters_summary.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 4
    assert tiler.rasterize_vector(str(tmp_path / "nope" / "13" / "1" / "2.gpkg")) is None
    assert tiler.get_errors()
    # make_parents=True builds the lower zoom levels down to z_range[0] (default 0).
    tiler.rasterize_vectors(paths, make_parents=True)
    assert [len(tiler.tiles.get_filenames_from_dir("geotiff", z=z)) for z in (13, 12, 0)] \
        == [2, 1, 1]
    assert len(tiler.tiles.get_filenames_from_dir("geotiff")) == 2 + 13


def test_cli_rasterize(sample_staged, tmp_path):
    from click.testing import CliRunner

    from fastraster.cli import main

    result = CliRunner().invoke(main, ["rasterize", str(sample_staged), str(tmp_path),
                                       "--workers", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "2 tiles: 2 ok, 0 skipped, 0 failed" in result.output
    assert len(tif_files(tmp_path)) == 2
