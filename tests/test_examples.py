"""PDG's published configurations (examples/) and pdgraster's own configuration of the PDG
example run end to end with ``RasterTiler(config).rasterize_all()``: GeoTIFFs, parents down to
z_range[0], web tiles and WMTS, with no error and no warning."""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fastraster
from tests.conftest import PDG_EXAMPLE, needs_pdg_example, read_tif, tif_files

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _rasterize_all(config):
    """``RasterTiler(config).rasterize_all()``, its report and every warning it emitted."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tiler = fastraster.RasterTiler(config)
        report = tiler.rasterize_all(n_jobs=1)
    return tiler, report, [f"{w.category.__name__}: {w.message}" for w in caught]


def _check_tree(tiler, report):
    cfg = tiler.config
    lo, hi = cfg["z_range"]
    tms, names = cfg["tms_id"], [s["name"] for s in cfg["statistics"]]
    gt, web = Path(cfg["dir_geotiff"]), Path(cfg["dir_web_tiles"])
    assert report.errors == [] and report.n("ok") == report.total > 0
    assert [s.step for s in report.steps] == ["rasterize", "pyramid", "webtiles"]
    for z in range(lo, hi + 1):
        files = tif_files(gt / tms / str(z))
        assert files, f"no GeoTIFF at z{z}"
        data, profile, descriptions, _ = read_tif(files[0])
        assert list(descriptions) == names
        assert (profile["height"], profile["width"]) == tuple(cfg["tile_size"])
        assert profile["dtype"] == "float64"
    if lo > 0:  # nothing below z_range[0]
        assert not tif_files(gt / tms / str(lo - 1))
    n_tifs = len(tif_files(gt))
    assert len(report) == n_tifs  # the list of GeoTIFF tiles made, as pdgraster's
    for name in names:
        pngs = sorted((web / name / tms).rglob("*.png"))
        assert len(pngs) == n_tifs
        assert Image.open(pngs[0]).size == tuple(cfg["tile_size"])[::-1]
    assert (web / "WMTSCapabilities.xml").is_file()
    assert Path(cfg["filename_rasters_summary"]).is_file()


@pytest.mark.parametrize("example", ["iwp_production_z15.json", "complete_workflow.json"])
def test_pdg_configuration_runs_without_errors_or_warnings(example, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = json.loads((EXAMPLES / example).read_text())
    z = config["z_range"][1]
    # Staged tiles at the configuration's zoom and grid, where the configuration puts them.
    fastraster.sample.make_sample(config["dir_staged"], z=z, tms=config["tms_id"],
                                  spacing_m=60.0, seed=2)
    tiler, report, caught = _rasterize_all(copy.deepcopy(config))
    assert caught == []
    _check_tree(tiler, report)
    if example.startswith("iwp"):
        # Production: one coverage band, no-data 0 written to uncovered pixels (nodata tag
        # 0), the PNG transparent there.
        assert [s["name"] for s in tiler.config["statistics"]] == ["iwp_coverage"]
        path = tif_files(Path("geotiff") / "WGS1984Quad" / "15")[0]
        data, profile = read_tif(path)[:2]
        assert profile["nodata"] == 0 and (data[0] == 0).any() and (data[0] > 0).any()
        png = np.asarray(Image.open(Path("web_tiles", "iwp_coverage", *path.parts[-4:-1],
                                         path.stem + ".png")))
        assert (png[data[0] == 0][:, 3] == 0).all() and (png[data[0] > 0][:, 3] > 0).all()


def test_run_example_script(tmp_path, monkeypatch, capsys):
    import importlib.util

    monkeypatch.chdir(tmp_path)  # restored afterwards: the script changes directory
    spec = importlib.util.spec_from_file_location("run_example", EXAMPLES / "run_example.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    code = module.main([str(EXAMPLES / "complete_workflow.json"), "--sample", "--workdir",
                        str(tmp_path / "w"), "-j", "1", "--spacing", "80"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "rasterize: 4 tiles: 4 ok" in out and "webtiles: 11 tiles: 11 ok" in out
    assert len(tif_files(tmp_path / "w" / "example" / "geotiffs")) == 11


@needs_pdg_example
def test_pdgraster_config_of_the_pdg_example_runs_without_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = json.loads((PDG_EXAMPLE / "config__updated.json").read_text())
    config["dir_staged"] = str(PDG_EXAMPLE / "staged")
    tiler, report, caught = _rasterize_all(config)
    assert caught == []
    _check_tree(tiler, report)
    assert report.steps[0].n("ok") == 4 and report.steps[1].n("ok") == 13
