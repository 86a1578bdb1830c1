"""Failures are loud: every run ends with one RunFailures warning (how many files failed, in
which step, the first message), the tiler's methods return list-compatible reports with
``errors``, and the CLI exits 1 printing the first errors."""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from pathlib import Path

import pytest

import fastraster
from fastraster.compat.pdgraster import Tile, TileReport
from fastraster.io.records import Report, RunFailures, failures_message

N_BAD = 7


def _with_bad_files(sample_staged, root, n=N_BAD) -> Path:
    """A copy of the sample's two staged tiles plus ``n`` unreadable ones (z13, x = 9)."""
    staged = root / "staged"
    shutil.copytree(sample_staged, staged)
    for y in range(n):
        path = staged / "WorldCRS84Quad" / "13" / "9" / f"{y}.gpkg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not a geopackage")
    return staged


def _run_failures(call):
    """``call()``'s result and the RunFailures warnings it emitted (all other warnings are
    left alone)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [w for w in caught if issubclass(w.category, RunFailures)]


def _bad_path(staged, y=0):
    return str(staged / "WorldCRS84Quad" / "13" / "9" / f"{y}.gpkg")


@pytest.mark.parametrize("keep_records", [True, False])
def test_rasterize_dir_ends_with_one_warning(sample_staged, tmp_path, keep_records):
    staged = _with_bad_files(sample_staged, tmp_path)
    out = tmp_path / "out"
    report, caught = _run_failures(lambda: fastraster.rasterize_dir(
        staged, out, progress=False, keep_records=keep_records))
    assert report.n("error") == N_BAD and report.n("ok") == 2
    (warning,) = caught
    message = str(warning.message)
    assert message.startswith(f"{N_BAD} of {N_BAD + 2} files failed in step rasterize; "
                               f"first: {_bad_path(staged)}: cannot read")
    assert message.endswith(f"; see {out / 'rasterization_events.csv'}")
    assert warning.filename == __file__  # points at the caller, not into fastraster


def test_no_warning_when_nothing_fails(sample_staged, tmp_path):
    report, caught = _run_failures(lambda: fastraster.rasterize_dir(
        sample_staged, tmp_path, progress=False))
    assert report.n("ok") == 2 and caught == []


@pytest.fixture(scope="module")
def geotiffs(sample_staged, tmp_path_factory):
    out = tmp_path_factory.mktemp("gt")
    assert fastraster.rasterize_dir(sample_staged, out, progress=False, tile_size=32).n(
        "ok") == 2
    return out


def test_build_pyramid_and_web_tiles_end_with_one_warning(geotiffs, tmp_path):
    gt = tmp_path / "gt"
    shutil.copytree(geotiffs, gt)
    stray = gt / "WorldCRS84Quad" / "13" / "1524" / "912.tif"
    stray.write_bytes(b"not a tiff")
    report, caught = _run_failures(lambda: fastraster.build_pyramid(gt, progress=False))
    assert report.n("error") == 1 and report.n("ok") == 13
    (warning,) = caught
    assert str(warning.message).startswith(
        f"1 of 14 files failed in step pyramid; first: {gt / 'WorldCRS84Quad' / '12' / '762'}"
        f"/456.tif: ValueError: cannot read child {stray}")
    report, caught = _run_failures(lambda: fastraster.render_web_tiles(
        gt, tmp_path / "web", progress=False))
    assert report.n("error") == 1 and report.n("ok") == 15
    (warning,) = caught
    assert str(warning.message).startswith(f"1 of 16 files failed in step webtiles; "
                                           f"first: {stray}: ")


def test_tiler_returns_reports_and_rasterize_all_warns_once(sample_staged, tmp_path,
                                                            monkeypatch):
    monkeypatch.chdir(tmp_path)
    staged = _with_bad_files(sample_staged, tmp_path, n=1)
    # A stray unreadable GeoTIFF at the staged zoom: its parent and its web tiles fail too.
    stray = Path("geotiff", "WorldCRS84Quad", "13", "1524", "912.tif")
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"not a tiff")
    tiler = fastraster.RasterTiler({"dir_staged": str(staged), "tms_id": "WorldCRS84Quad",
                                    "z_range": [11, 13]})
    report, caught = _run_failures(tiler.rasterize_all)
    assert isinstance(report, TileReport) and isinstance(report, Report)
    assert [s.step for s in report.steps] == ["rasterize", "pyramid", "webtiles"]
    # The list is pdgraster's: the GeoTIFF tiles made (staged zoom, then parents).
    assert report[:2] == [Tile(1524, 910, 13), Tile(1525, 910, 13)]
    # (762, 456, 12), the stray file's parent, failed, so its own parent is not tried.
    assert report[2:] == [Tile(762, 455, 12), Tile(381, 227, 11)]
    assert [s.n("error") for s in report.steps] == [1, 1, 1]
    assert report.n("error") == len(report.errors) == 3
    (warning,) = caught
    assert str(warning.message).startswith(
        f"3 of {report.total} files failed (rasterize: 1, pyramid: 1, webtiles: 1); first "
        f"(rasterize): {_bad_path(staged)}: cannot read")
    assert "; see rasterization_events.csv" in str(warning.message)

    # Each method: a list of Tile as before, with errors, and its own single warning.
    paths = tiler.tiles.get_filenames_from_dir("staged")
    tiles, caught = _run_failures(lambda: tiler.rasterize_vectors(paths))
    assert tiles == [Tile(1524, 910, 13), Tile(1525, 910, 13)]
    assert len(tiles.errors) == 1 and len(caught) == 1
    assert "in step rasterize" in str(caught[0].message)
    tiles, caught = _run_failures(lambda: tiler.rasterize_vectors(paths, make_parents=True))
    assert tiles == [Tile(1524, 910, 13), Tile(1525, 910, 13)]  # parents only in .steps
    assert [s.step for s in tiles.steps] == ["rasterize", "pyramid"]
    assert tiles.steps[1].n("ok") == 2 and len(tiles.errors) == 1 and len(caught) == 1
    tiles, caught = _run_failures(lambda: tiler.parent_geotiffs_from_children(
        {Tile(762, 455, 12), Tile(762, 456, 12)}, recursive=False))
    assert tiles == [Tile(762, 455, 12)] and len(tiles.errors) == 1 and len(caught) == 1
    tiles, caught = _run_failures(tiler.webtiles_from_all_geotiffs)
    assert len(tiles) == 4 and len(tiles.errors) == 1 and len(caught) == 1
    assert "in step webtiles" in str(caught[0].message)
    tiles, caught = _run_failures(lambda: tiler.webtiles_from_geotiffs(
        tiler.tiles.get_filenames_from_dir("geotiff", z=13)[:1]))
    assert tiles == [Tile(1524, 910, 13)] and not tiles.errors and caught == []


def test_rasterize_vector_keeps_pdgrasters_contract(sample_staged, tmp_path, monkeypatch,
                                                    caplog):
    monkeypatch.chdir(tmp_path)
    staged = _with_bad_files(sample_staged, tmp_path, n=1)
    tiler = fastraster.RasterTiler({"dir_staged": str(staged), "tms_id": "WorldCRS84Quad"})
    with caplog.at_level(logging.ERROR, logger="fastraster"):
        result, caught = _run_failures(lambda: tiler.rasterize_vector(_bad_path(staged)))
    assert result is None and caught == []
    (log,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert _bad_path(staged) in log.getMessage() and "cannot read" in log.getMessage()
    assert tiler.get_errors()[0]["path"] == _bad_path(staged)


def test_tiler_reports_staged_tiles_off_the_configured_zoom(sample_staged, tmp_path,
                                                            monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiler = fastraster.RasterTiler({"dir_staged": str(sample_staged),
                                    "tms_id": "WorldCRS84Quad", "z_range": [0, 15]})
    report, caught = _run_failures(tiler.rasterize_all)
    assert report == [] and report.steps[0].n("error") == 2 and len(caught) == 1
    assert "a z13 tile, but the configuration's z_range [0, 15] puts staged tiles at z15" \
        in report.errors[0]["error"]
    assert not os.path.exists("geotiff")


def test_failures_message_without_kept_records():
    report = Report()
    report.counts, report.total, report.step = {"error": 3, "ok": 5}, 8, "rasterize"
    assert failures_message([report]) == ("3 of 8 files failed in step rasterize; first: "
                                          "(no error record kept)")
    assert failures_message([Report([{"status": "ok"}])]) is None


def test_cli_prints_the_first_errors_and_exits_1(sample_staged, tmp_path):
    from click.testing import CliRunner

    from fastraster.cli import main

    staged = _with_bad_files(sample_staged, tmp_path)
    out = tmp_path / "out"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = CliRunner().invoke(main, ["rasterize", str(staged), str(out), "-j", "1",
                                           "-q"])
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {_bad_path(staged, y)}: cannot read: "
                      + errors[y].split(": cannot read: ", 1)[1] for y in range(5)]
    assert f"... and {N_BAD - 5} more; see {out / 'rasterization_events.csv'}" \
        in result.stderr
    assert f"{N_BAD + 2} tiles: 2 ok, 0 skipped, {N_BAD} failed" in result.stdout
    assert not [w for w in caught if issubclass(w.category, RunFailures)]
