"""PDG configurations checked up front: every bad setting fails before any file is written,
with a message naming the statistic, the key and the value and listing what is allowed;
PDG's own keys are accepted; unknown keys get one warning; prop_* and ext_staged are
honoured."""

from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pyogrio.raw
import pytest
import shapely

import fastraster
from fastraster.io.config import ConfigWarning, parse_config
from fastraster.model.grid import TileGrid
from tests.conftest import PDG_EXAMPLE, needs_pdg_example, read_tif

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PRODUCTION = json.loads((EXAMPLES / "iwp_production_z15.json").read_text())

COUNT = {"name": "polygon_count", "weight_by": "count", "property": "centroids_per_pixel",
         "aggregation_method": "sum", "resampling_method": "sum", "val_range": [0, None],
         "nodata_val": 0, "nodata_color": "#ffffff00"}
COVERAGE = {"name": "coverage", "weight_by": "area", "property": "area_per_pixel_area",
            "aggregation_method": "sum", "resampling_method": "average", "val_range": [0, 1],
            "palette": ["#f8ff1f1A", "#f8ff1f"], "nodata_val": 0, "nodata_color": "#ffffff00"}


def _stats(**changes):
    """The two statistics, the coverage one with ``changes`` (a None value deletes)."""
    cov = {k: v for k, v in {**COVERAGE, **changes}.items() if v is not None}
    return [dict(COUNT), cov]


#: (test id, statistics, words the message must contain). The statistic named, the key, the
#: value's repr, and "allowed:" with what is allowed.
BAD_STATS = [
    ("weight_by", _stats(weight_by="volume"),
     ["statistic 'coverage'", "weight_by", "'volume'", "allowed:", "'count'", "'area'"]),
    ("property-wrong-weight", _stats(property="centroids_per_pixel"),
     ["statistic 'coverage'", "property", "'centroids_per_pixel'", "does not go with",
      "allowed:", "'area_per_pixel_area'"]),
    ("property-typo", _stats(property="area_per_pixel_are"),
     ["statistic 'coverage'", "property", "'area_per_pixel_are'",
      "did you mean 'area_per_pixel_area'", "allowed:"]),
    ("property-case", _stats(property="Area_Per_Pixel_Area"),
     ["statistic 'coverage'", "property", "'Area_Per_Pixel_Area'", "allowed:"]),
    ("property-not-a-name", _stats(property=5),
     ["statistic 'coverage'", "property", "5", "allowed:", "column"]),
    ("property-spaces", _stats(property=" Date"),
     ["statistic 'coverage'", "property", "' Date'", "spaces", "allowed:"]),
    ("aggregation", _stats(aggregation_method="median"),
     ["statistic 'coverage'", "aggregation_method", "'median'", "allowed:", "'mean'"]),
    ("resampling", _stats(resampling_method="bilinear"),
     ["statistic 'coverage'", "resampling_method", "'bilinear'", "allowed:", "'average'"]),
    ("palette-colour", _stats(palette=["#f8ff1f1A", "rgb(1 2)"]),
     ["statistic 'coverage'", "palette", "'rgb(1 2)'", "allowed:", "lch("]),
    ("palette-colormap", _stats(palette="NoSuchColormap"),
     ["statistic 'coverage'", "palette", "'NoSuchColormap'", "allowed:", "colormaps"]),
    ("palette-type", _stats(palette=7),
     ["statistic 'coverage'", "palette", "7", "allowed:"]),
    ("nodata_color", _stats(nodata_color="#fffff"),
     ["statistic 'coverage'", "nodata_color", "'#fffff'", "allowed:"]),
    ("nodata_color-type", _stats(nodata_color=0),
     ["statistic 'coverage'", "nodata_color", "0", "allowed:"]),
    ("val_range-one", _stats(val_range=[0]),
     ["statistic 'coverage'", "val_range", "[0]", "allowed:", "[0, null]"]),
    ("val_range-string", _stats(val_range="0,1"),
     ["statistic 'coverage'", "val_range", "'0,1'", "allowed:"]),
    ("val_range-end", _stats(val_range=[0, "1"]),
     ["statistic 'coverage'", "val_range", "[0, '1']", "allowed:"]),
    ("val_range-nan", _stats(val_range=[0, float("nan")]),
     ["statistic 'coverage'", "val_range", "nan", "allowed:"]),
    ("z_config-val_range", _stats(z_config={"13": {"val_range": [0, "x"]}}),
     ["statistic 'coverage'", "z_config[13] val_range", "[0, 'x']", "allowed:"]),
    ("z_config-key", _stats(z_config={"z13": {"val_range": [0, 1]}}),
     ["statistic 'coverage'", "z_config key", "'z13'", "allowed:"]),
    ("z_config-entry", _stats(z_config={13: [0, 1]}),
     ["statistic 'coverage'", "z_config[13]", "[0, 1]", "allowed:"]),
    ("nodata_val", _stats(nodata_val="0"),
     ["statistic 'coverage'", "nodata_val", "'0'", "allowed:"]),
    ("nodata_val-bool", _stats(nodata_val=True),
     ["statistic 'coverage'", "nodata_val", "True", "allowed:"]),
    ("duplicate-names", [dict(COUNT), dict(COVERAGE, name="polygon_count")],
     ["statistic 'polygon_count'", "name", "'polygon_count'", "2 statistics", "allowed:",
      "unique"]),
    ("name-missing", _stats(name=None),
     ["has no 'name'", "'area_per_pixel_area'", "allowed:"]),
    ("name-path", _stats(name="a/b"), ["statistic 'a/b'", "name", "'a/b'", "allowed:"]),
    ("not-a-dict", [dict(COUNT), "coverage"], ["statistic must be a dict", "'coverage'"]),
    ("statistics-not-a-list", "coverage", ["statistics", "'coverage'", "allowed:"]),
    ("statistics-empty", [], ["statistics", "[]", "allowed:"]),
]

#: Top-level settings: (test id, changes to the production configuration, words).
BAD_SETTINGS = [
    ("tile_size-zero", {"tile_size": 0}, ["tile_size", "0", "allowed:", "positive"]),
    ("tile_size-string", {"tile_size": "256"}, ["tile_size", "'256'", "allowed:"]),
    ("tile_size-three", {"tile_size": [256, 256, 3]}, ["tile_size", "[256, 256, 3]",
                                                       "allowed:"]),
    ("tile_size-fraction", {"tile_size": [255.5, 256]}, ["tile_size", "[255.5, 256]",
                                                         "allowed:"]),
    ("tile_size-odd-with-pyramid", {"tile_size": [255, 255]},
     ["tile_size", "[255, 255]", "odd", "z_range [0, 15]", "allowed:", "even"]),
    ("z_range-one", {"z_range": [15]}, ["z_range", "[15]", "allowed:", "two ints"]),
    ("z_range-order", {"z_range": [15, 0]}, ["z_range", "[15, 0]", "allowed:"]),
    ("z_range-negative", {"z_range": [-1, 15]}, ["z_range", "[-1, 15]", "allowed:"]),
    ("z_range-too-deep", {"z_range": [0, 40]}, ["z_range", "[0, 40]", "allowed:", "23"]),
    ("z_range-strings", {"z_range": ["0", "15"]}, ["z_range", "['0', '15']", "allowed:"]),
    ("z_range-float", {"z_range": [0, 15.0]}, ["z_range", "[0, 15.0]", "allowed:"]),
    ("tms_id", {"tms_id": "WGS84Quad"},
     ["tms_id", "'WGS84Quad'", "allowed:", "'WGS1984Quad'", "'WebMercatorQuad'"]),
    ("deduplicate_at", {"deduplicate_at": ["rasters"]},
     ["deduplicate_at", "['rasters']", "allowed:", "'raster'"]),
    ("deduplicate_at-type", {"deduplicate_at": 1}, ["deduplicate_at", "1", "allowed:"]),
    ("deduplicate_method", {"deduplicate_method": "footprint"},
     ["deduplicate_method", "'footprint'", "allowed:", "'footprints'", "'neighbor'"]),
    ("prop_centroid_x", {"prop_centroid_x": ""}, ["prop_centroid_x", "''", "allowed:"]),
    ("prop_duplicated", {"prop_duplicated": 3}, ["prop_duplicated", "3", "allowed:"]),
    ("ext_staged", {"ext_staged": "gpkg"}, ["ext_staged", "'gpkg'", "allowed:"]),
    ("ext_web_tiles", {"ext_web_tiles": ".jpg"}, ["ext_web_tiles", "'.jpg'", "allowed:",
                                                  "'.png'"]),
    ("dir_geotiff", {"dir_geotiff": 5}, ["dir_geotiff", "5", "allowed:"]),
]


def _assert_names(message: str, words) -> None:
    missing = [w for w in words if w not in message]
    assert not missing, f"{missing} not in: {message}"


def _files(root) -> set:
    return {p for p in Path(root).rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def geotiff_tree(sample_staged, tmp_path_factory):
    """z13 GeoTIFFs (and their CSVs) of the sample, for pyramid and web-tile runs."""
    out = tmp_path_factory.mktemp("gt")
    report = fastraster.rasterize_dir(sample_staged, out, progress=False, tile_size=32)
    assert report.n("ok") == 2
    return out


def _tiler_config(staged, changes=None, stats=None):
    cfg = copy.deepcopy(PRODUCTION)
    cfg.update({"dir_staged": str(staged), "tms_id": "WorldCRS84Quad", "z_range": [0, 13]})
    if stats is not None:
        cfg["statistics"] = stats
    cfg.update(changes or {})
    return cfg


# ---------------------------------------------------------------------------------------------
# Bad statistics: every entry point refuses them before writing anything
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stats", "words"), [b[1:] for b in BAD_STATS],
                         ids=[b[0] for b in BAD_STATS])
def test_bad_statistic_fails_everywhere_before_any_file(stats, words, sample_staged,
                                                        geotiff_tree, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = _files(geotiff_tree)
    calls = {
        "RasterTiler": lambda: fastraster.RasterTiler(_tiler_config(sample_staged, stats=stats)),
        "rasterize_dir": lambda: fastraster.rasterize_dir(sample_staged, tmp_path / "out",
                                                          stats=stats, progress=False),
        "build_pyramid": lambda: fastraster.build_pyramid(geotiff_tree, stats=stats,
                                                          overwrite=True, progress=False),
        "render_web_tiles": lambda: fastraster.render_web_tiles(
            geotiff_tree, tmp_path / "web", stats=stats, progress=False),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError) as info:
            call()
        _assert_names(str(info.value), words)
        assert not any(tmp_path.iterdir()), f"{name} wrote {list(tmp_path.iterdir())}"
        assert _files(geotiff_tree) == before, name


@pytest.mark.parametrize(("changes", "words"), [b[1:] for b in BAD_SETTINGS],
                         ids=[b[0] for b in BAD_SETTINGS])
def test_bad_setting_fails_before_any_file(changes, words, sample_staged, tmp_path,
                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = _tiler_config(sample_staged, {"z_range": [0, 15], **changes})
    with pytest.raises(ValueError) as info:
        fastraster.RasterTiler(cfg)
    _assert_names(str(info.value), words)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(("changes", "words"),
                         [BAD_SETTINGS[6][1:], BAD_STATS[0][1:], BAD_STATS[8][1:]],
                         ids=["z_range", "weight_by", "palette"])
@pytest.mark.parametrize("command", ["rasterize", "pyramid", "webtiles"])
def test_cli_refuses_a_bad_config_with_exit_code_2(command, changes, words, sample_staged,
                                                   geotiff_tree, tmp_path):
    from click.testing import CliRunner

    from fastraster.cli import main

    cfg = _tiler_config(sample_staged)
    if isinstance(changes, list):
        cfg["statistics"] = changes
    else:
        cfg.update(changes)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    before = _files(geotiff_tree)
    out = tmp_path / "out"
    args = {"rasterize": [str(sample_staged), str(out)], "pyramid": [str(geotiff_tree)],
            "webtiles": [str(geotiff_tree), str(out)]}[command]
    result = CliRunner().invoke(main, [command, *args, "--config", str(path), "-j", "1", "-q"])
    assert result.exit_code == 2, result.output
    _assert_names(" ".join(result.output.split()), words)  # click wraps long lines
    assert not out.exists() and _files(geotiff_tree) == before


def test_pipeline_settings_are_checked_before_any_file(sample_staged, geotiff_tree, tmp_path):
    before = _files(geotiff_tree)
    with pytest.raises(ValueError, match=r"tile_size 0 .*allowed:"):
        fastraster.rasterize_dir(sample_staged, tmp_path / "a", tile_size=0, progress=False)
    with pytest.raises(ValueError, match=r"z_range \(13, 0\) .*allowed:"):
        fastraster.build_pyramid(geotiff_tree, (13, 0), progress=False)
    with pytest.raises(ValueError, match=r"z_range \[0, 99\] .*allowed:"):
        fastraster.render_web_tiles(geotiff_tree, tmp_path / "b", z_range=[0, 99],
                                    progress=False)
    with pytest.raises(ValueError, match=r"compress_level 10 .*allowed:"):
        fastraster.render_web_tiles(geotiff_tree, tmp_path / "b", compress_level=10,
                                    progress=False)
    assert not any(tmp_path.iterdir()) and _files(geotiff_tree) == before


# ---------------------------------------------------------------------------------------------
# What is accepted
# ---------------------------------------------------------------------------------------------


def _no_warnings(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    assert not caught, [str(w.message) for w in caught]
    return result


@pytest.mark.parametrize("example", ["iwp_production_z15.json", "complete_workflow.json"])
def test_pdg_published_configurations_parse_without_warning(example):
    pdg = _no_warnings(lambda: parse_config(EXAMPLES / example))
    fastraster.pipelines.options.check_palettes(pdg.stats)
    assert pdg.tms_id == "WGS1984Quad"
    if example.startswith("iwp"):
        assert pdg.z_range == (0, 15) and pdg.deduplicate
        assert [s.name for s in pdg.stats] == ["iwp_coverage"]
        assert {"geometricError", "z_coord", "simplify_tolerance", "dir_footprints",
                "deduplicate_keep_rules", "deduplicate_clip_to_footprint"} <= set(pdg.ignored)
    else:
        assert pdg.z_range == (6, 13) and pdg.tile_size == (128, 128) and not pdg.deduplicate


def test_viz_workflow_keys_are_ignored_silently(sample_staged, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = _tiler_config(sample_staged, {
        "dir_output": "/scratch/out/", "dir_geotiff_remote": "/scratch/geotiff/",
        "dir_geotiff_local": "/tmp/geotiff/", "dir_staged_remote_merged": "/scratch/s/n1",
        "dir_footprints_local": "/tmp/fp/", "version": "May01,2024", "input_crs": None,
        "deduplicate_at": "raster", "deduplicate_keep_rules": None})
    tiler = _no_warnings(lambda: fastraster.RasterTiler(cfg))
    assert tiler.deduplicate  # a string deduplicate_at, as viz-workflow's configurations


@needs_pdg_example
def test_pdgraster_updated_config_is_accepted_without_warning():
    pdg = _no_warnings(lambda: parse_config(PDG_EXAMPLE / "config__updated.json"))
    assert {"dir_3dtiles", "prop_area", "deduplicate_clip_method", "version"} <= set(
        pdg.ignored)
    assert pdg.unknown == ()


def test_unknown_keys_get_one_warning_naming_them(sample_staged, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = _tiler_config(sample_staged, {"statistic": [], "dir_geotif": "x"},
                        stats=[dict(COUNT), dict(COVERAGE, pallete=["red", "blue"])])
    with pytest.warns(ConfigWarning) as caught:
        tiler = fastraster.RasterTiler(cfg)
    assert len(caught) == 1
    _assert_names(str(caught[0].message), ["'statistic'", "'dir_geotif'",
                                           "statistic 'coverage': 'pallete'"])
    # Warned once only: building options from the parsed statistics again is silent.
    _no_warnings(tiler.options)
    _no_warnings(tiler.update_ranges)


def test_odd_tile_size_is_fine_without_lower_zooms(sample_staged, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiler = fastraster.RasterTiler(_tiler_config(sample_staged, {"z_range": [13, 13],
                                                                 "tile_size": [15, 17]}))
    assert tiler.options().tile_size == (15, 17)


# ---------------------------------------------------------------------------------------------
# prop_centroid_x/y, prop_duplicated and ext_staged are honoured
# ---------------------------------------------------------------------------------------------


TILE = (1524, 910, 13)


def _write_staged(path, geoms, fields, driver="GPKG"):
    os.makedirs(path.parent, exist_ok=True)
    pyogrio.raw.write(str(path), shapely.to_wkb(np.asarray(geoms, dtype=object)),
                      list(fields.values()), list(fields), driver=driver,
                      geometry_type="Polygon", crs="EPSG:4326")


def _two_boxes():
    """Two small boxes in the tile's first and last pixel columns (row 100), and centroid
    columns that put both centroids into pixel (row 10, col 10)."""
    g = TileGrid.from_tile(TILE, "WGS1984Quad")
    dx, dy = g.dx, g.dy

    def box(col, row):
        x0, y0 = g.left + (col + 0.25) * dx, g.top - (row + 0.75) * dy
        return shapely.box(x0, y0, x0 + 0.5 * dx, y0 + 0.5 * dy)

    geoms = [box(0, 100), box(255, 100)]
    cx = np.full(2, g.left + 10.5 * dx)
    cy = np.full(2, g.top - 10.5 * dy)
    return geoms, cx, cy


def test_prop_centroid_and_duplicated_columns_are_honoured(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    geoms, cx, cy = _two_boxes()
    _write_staged(tmp_path / "staged" / "WGS1984Quad" / "13" / "1524" / "910.gpkg", geoms,
                  {"my_cx": cx, "my_cy": cy, "is_dup": np.array([False, True])})
    cfg = {"tms_id": "WGS1984Quad", "z_range": [13, 13], "statistics": [COUNT, COVERAGE],
           "prop_centroid_x": "my_cx", "prop_centroid_y": "my_cy",
           "prop_duplicated": "is_dup", "deduplicate_at": ["raster"],
           "deduplicate_method": "footprints"}
    tiles = fastraster.RasterTiler(cfg).rasterize_vectors(
        ["staged/WGS1984Quad/13/1524/910.gpkg"])
    assert tiles == [(1524, 910, 13)] and not tiles.errors
    data = read_tif("geotiff/WGS1984Quad/13/1524/910.tif")[0]
    # The count follows the configured centroid columns (not the boxes' own centroids), and
    # the flagged row is dropped from both bands.
    assert data[0].sum() == 1 and data[0, 10, 10] == 1
    assert data[1, 100, 0] == pytest.approx(0.25) and data[1, 100, 255] == 0
    # Without deduplication both rows count.
    cfg["deduplicate_at"] = None
    fastraster.RasterTiler(cfg).rasterize_vectors(["staged/WGS1984Quad/13/1524/910.gpkg"])
    data = read_tif("geotiff/WGS1984Quad/13/1524/910.tif")[0]
    assert data[0, 10, 10] == 2 and data[1, 100, 255] == pytest.approx(0.25)


def test_ext_staged_is_honoured(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    geoms, cx, cy = _two_boxes()
    _write_staged(tmp_path / "staged" / "WGS1984Quad" / "13" / "1524" / "910.fgb", geoms,
                  {"staging_centroid_x": cx, "staging_centroid_y": cy}, driver="FlatGeobuf")
    cfg = {"tms_id": "WGS1984Quad", "z_range": [12, 13], "ext_staged": ".fgb",
           "statistics": [COUNT, COVERAGE]}
    tiler = fastraster.RasterTiler(cfg)
    assert tiler.tiles.get_filenames_from_dir("staged") == [
        os.path.join("staged", "WGS1984Quad", "13", "1524", "910.fgb")]
    report = _no_warnings(tiler.rasterize_all)
    assert not report.errors and sorted(report) == [(762, 455, 12), (1524, 910, 13)]
    assert read_tif("geotiff/WGS1984Quad/13/1524/910.tif")[0][0, 10, 10] == 2


def test_a_config_without_tms_id_uses_pdgs_default(sample_staged, tmp_path, monkeypatch):
    """pdgstaging's ConfigManager.defaults has 'tms_id': 'WorldCRS84Quad' (beside
    'simplify_tolerance': 0.0001 and 'z_range': (0, 13)): a configuration that names no TMS
    means that grid, for the tiler as for PDG; the sample is staged in it."""
    monkeypatch.chdir(tmp_path)
    assert parse_config({}).tms_id == "WorldCRS84Quad"
    tiler = fastraster.RasterTiler({"dir_staged": str(sample_staged), "dir_geotiff": "gt"})
    assert tiler.config["tms_id"] == "WorldCRS84Quad"
    tiles = tiler.rasterize_vectors(tiler.tiles.get_filenames_from_dir("staged"))
    assert sorted(tiles) == [(1524, 910, 13), (1525, 910, 13)] and not tiles.errors
    assert sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "gt").rglob("*.tif")) \
        == ["gt/WorldCRS84Quad/13/1524/910.tif", "gt/WorldCRS84Quad/13/1525/910.tif"]
