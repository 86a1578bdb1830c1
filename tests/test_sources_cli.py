"""The raw-scene generator (``fastraster sample --scenes``) and ``fastraster
rasterize-sources``: what the generated scenes hold, checked independently with geopandas,
and the command's outputs and exit codes."""

from __future__ import annotations

import glob
import json
import os

import geopandas as gpd
import numpy as np
import pytest
import shapely
from click.testing import CliRunner

from fastraster.cli import main
from fastraster.pipelines.sources import rasterize_sources
from fastraster.sample import SPILL_M, make_scenes
from tests.conftest import tif_files

SPACING = 15.0


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("generated")
    res = make_scenes(root, 9, polygons_per_scene=700, seed=1)
    return root, res


def _pairs(root):
    inputs = sorted(glob.glob(f"{root}/input/**/*.shp", recursive=True))
    return [(p, p.replace(f"{os.sep}input{os.sep}", f"{os.sep}footprints{os.sep}", 1))
            for p in inputs]


def test_generated_scenes_are_pdg_like(generated):
    root, res = generated
    pairs = _pairs(root)
    assert res["scenes"] == len(pairs) == 9
    frames = [(gpd.read_file(p), gpd.read_file(f)) for p, f in pairs]
    assert res["polygons"] == sum(len(g) for g, _ in frames)
    crs = sorted((g.crs.to_epsg(), fp.crs.to_epsg()) for g, fp in frames)
    assert crs == [(3413, 3413)] * 8 + [(32652, 4326)]
    dates = [fp["Date"].iloc[0] for _, fp in frames]
    assert len(set(dates)) == 9 and all(len(d) == 14 and d.isdigit() for d in dates)
    alaska = [fp.geometry.iloc[0] for g, fp in frames if g.crs.to_epsg() == 3413]
    for i, a in enumerate(alaska):  # every scene overlaps another (with area)
        assert any(shapely.intersection(a, b).area > 0.05 * a.area
                   for j, b in enumerate(alaska) if j != i)
    for g, fp in frames:
        foot = fp.to_crs(g.crs).geometry.iloc[0]
        types = g.geometry.geom_type.value_counts()
        assert types.get("MultiPolygon", 0) >= 1 and types["Polygon"] > 0.95 * len(g)
        holes = shapely.get_num_interior_rings(np.asarray(g.geometry.values))
        assert (holes > 0).sum() >= 1
        outside = ~g.geometry.intersects(foot)
        assert outside.sum() > 0  # detections spill past the footprint...
        # ... but not far: within the spill band plus one polygon.
        assert g.geometry[outside].distance(foot).max() <= SPILL_M + 2 * SPACING
        assert g.geometry.is_valid.all()
        assert g["poly_id"].tolist() == list(range(len(g)))


def test_generator_is_deterministic(generated, tmp_path):
    root, _ = generated
    make_scenes(tmp_path, 9, polygons_per_scene=700, seed=1, n_jobs=2)
    a, b = _pairs(root), _pairs(tmp_path)
    assert [os.path.relpath(p, root) for p, _ in a] == [os.path.relpath(p, tmp_path)
                                                        for p, _ in b]
    for (p, _), (q, _) in zip(a, b):
        ga, gb = gpd.read_file(p), gpd.read_file(q)
        assert ga.geometry.geom_equals_exact(gb.geometry, 0).all()
    assert not glob.glob(f"{tmp_path}/**/.*", recursive=True)  # no temporary leftovers


def test_cli_sample_then_rasterize_sources(tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["sample", str(tmp_path / "s"), "--scenes", "3",
                               "--polygons-per-scene", "400"])
    assert res.exit_code == 0, res.output
    assert "3 scenes" in res.output
    inp, fps = tmp_path / "s" / "input", tmp_path / "s" / "footprints"
    res = runner.invoke(main, ["rasterize-sources", str(inp), str(tmp_path / "out"), "--z",
                               "15", "--footprints", str(fps), "--simplify-tolerance", "0.1",
                               "-j", "1", "-q"])
    assert res.exit_code == 0, res.output
    assert "3 scenes (0 failed)" in res.output
    api = rasterize_sources(inp, tmp_path / "api", z=15, footprints=fps,
                            simplify_tolerance=0.1, progress=False)
    files = tif_files(tmp_path / "out")
    assert len(files) == len(api) > 0
    for p in files:
        rel = os.path.relpath(p, tmp_path / "out")
        assert open(p, "rb").read() == open(tmp_path / "api" / rel, "rb").read()
    # A config gives its rules (here: no simplification, float64 like pdgraster, z13).
    cfg = {"z_range": [0, 13], "tms_id": "WGS1984Quad", "simplify_tolerance": None,
           "deduplicate_method": "footprints", "deduplicate_at": ["raster"],
           "deduplicate_keep_rules": [["Date", "larger"]],
           "deduplicate_clip_to_footprint": True, "ext_footprints": ".shp"}
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    res = runner.invoke(main, ["rasterize-sources", str(inp), str(tmp_path / "cfg"),
                               "--config", str(tmp_path / "c.json"), "--footprints",
                               str(fps), "-j", "1", "-q"])
    assert res.exit_code == 0, res.output
    import rasterio

    z13 = tif_files(tmp_path / "cfg" / "WGS1984Quad" / "13")
    assert z13 and all(rasterio.open(p).dtypes[0] == "float64" for p in z13)


def test_cli_exit_codes(tmp_path):
    from tests.sources_data import random_scenes

    inp, fps = random_scenes(str(tmp_path), seed=4, n_scenes=2, n_poly=20)
    runner = CliRunner()
    # Footprints needed for the clip and dedup: a usage error (2), nothing written.
    res = runner.invoke(main, ["rasterize-sources", inp, str(tmp_path / "o0"), "--z", "15"])
    assert res.exit_code == 2 and "--footprints" in res.output
    assert not (tmp_path / "o0").exists()
    res = runner.invoke(main, ["rasterize-sources", inp, str(tmp_path / "o0"), "--footprints",
                               fps])
    assert res.exit_code == 2 and "--z" in res.output
    # A corrupt scene: named on stderr, the rest done, exit 1.
    bad = sorted(glob.glob(f"{inp}/**/*.shp", recursive=True))[0]
    with open(bad, "r+b") as fh:
        fh.write(b"garbage!" * 12)
    res = runner.invoke(main, ["rasterize-sources", inp, str(tmp_path / "o1"), "--z", "15",
                               "--footprints", fps, "-j", "1", "-q"])
    assert res.exit_code == 1
    assert f"error: {bad}" in res.output and "2 scenes (1 failed)" in res.output
    assert tif_files(tmp_path / "o1")
