"""Any zoom: staged trees at z15 and z18 (PDG's ice-wedge-polygon layer is staged at z15) give
exact counts and coverage, a pyramid down to z0 and web tiles; nothing assumes z13."""

from __future__ import annotations

import numpy as np
import pyogrio
import pytest
from PIL import Image

import fastraster
from fastraster.model.grid import TileGrid
from fastraster.render.palettes import palette_table
from fastraster.sample import DEFAULT_TILES, sample_tiles
from tests.conftest import read_tif, tif_files
from tests.reference import centroid_count_ref, coverage_ref

TMS = "WGS1984Quad"
#: Polygon size per zoom: a z15 tile is ~210 x 610 m here, a z18 tile ~26 x 76 m.
SPACING = {15: 40.0, 18: 6.0}
STATS = [{"name": "polygon_count", "weight_by": "count", "property": "centroids_per_pixel",
          "val_range": [0, None], "nodata_val": 0, "nodata_color": "#ffffff00"},
         {"name": "coverage", "weight_by": "area", "property": "area_per_pixel_area",
          "val_range": [0, 1], "palette": ["#f8ff1f1A", "#f8ff1f"], "nodata_val": 0,
          "nodata_color": "#ffffff00"}]


def test_sample_tiles_at_any_zoom():
    assert sample_tiles(13) == DEFAULT_TILES
    for z in (1, 2, 14, 15, 18, 23):
        tiles = sample_tiles(z)
        xs, ys = sorted({t[0] for t in tiles}), sorted({t[1] for t in tiles})
        assert len(tiles) == 4 and {t[2] for t in tiles} == {z}
        assert xs[1] - xs[0] == 1 and ys[1] - ys[0] == 1
        assert 0 <= xs[0] and xs[1] < 2 ** (z + 1) and 0 <= ys[0] and ys[1] < 2 ** z
        if z >= 13:  # the block shares its centre with the z13 block's
            g = TileGrid.from_tile(tiles[0], TMS)
            c = TileGrid.from_tile((1524, 910, 13), TMS)
            assert (g.right, g.bottom) == (c.right, c.bottom)


@pytest.fixture(scope="module", params=[15, 18], ids=["z15", "z18"])
def zoom_run(request, tmp_path_factory):
    """A staged 2 x 2 block at the zoom, its float64 GeoTIFFs, pyramid and web tiles."""
    z = request.param
    root = tmp_path_factory.mktemp(f"z{z}")
    staged = root / "staged"
    paths = fastraster.sample.make_sample(staged, z=z, tms=TMS, spacing_m=SPACING[z], seed=3)
    gt, web = root / "geotiff", root / "web"
    r1 = fastraster.rasterize_dir(staged, gt, stats=STATS, dtype="float64", progress=False)
    r2 = fastraster.build_pyramid(gt, stats=STATS, progress=False)  # default: (0, z)
    r3 = fastraster.render_web_tiles(gt, web, stats=STATS, progress=False)
    return z, paths, gt, web, (r1, r2, r3)


def test_runs_have_no_errors(zoom_run):
    z, paths, _, _, (r1, r2, r3) = zoom_run
    assert r1.n("ok") == 4 and not r1.errors
    assert not r2.errors and {r["tile"][2] for r in r2} == set(range(z))
    assert not r3.errors and r3.n("ok") == r1.n("ok") + r2.n("ok")


def test_counts_and_coverage_are_exact(zoom_run):
    import shapely

    z, paths, gt, _, _ = zoom_run
    total = 0
    for i, path in enumerate(paths):
        df = pyogrio.read_dataframe(path)
        x, y = int(path.split("/")[-2]), int(path.split("/")[-1].split(".")[0])
        tile = (x, y, z)
        grid = TileGrid.from_tile(tile, TMS)
        data = read_tif(gt / TMS / str(z) / str(x) / f"{y}.tif")[0]
        assert len(df) > 10
        np.testing.assert_array_equal(
            data[0], centroid_count_ref(df.staging_centroid_x, df.staging_centroid_y, grid))
        if i < 2:  # shapely per pixel takes ~1 s a tile: two tiles of four
            ref = coverage_ref(df.geometry.values, grid)
            # Measured: within 1.8e-14 at z15 and z18, as at z13 (README: <= 1e-12).
            np.testing.assert_allclose(data[1], ref, rtol=0, atol=1e-12)
        # The area inside the tile, measured in degrees without any pixel transform.
        box = shapely.box(grid.left, grid.bottom, grid.right, grid.top)
        inside = shapely.area(shapely.intersection(df.geometry.values, box)).sum()
        assert data[1].sum() * grid.pixel_area == pytest.approx(inside, rel=1e-9)
        total += data[0].sum()
    assert total > 40


def test_pyramid_reaches_z0_and_conserves_totals(zoom_run):
    z, _, gt, _, _ = zoom_run
    top = [read_tif(p)[0] for p in tif_files(gt / TMS / str(z))]
    count, cover = sum(d[0].sum() for d in top), sum(d[1].sum() for d in top)
    for level in range(z - 1, -1, -1):
        files = tif_files(gt / TMS / str(level))
        assert files, f"no GeoTIFF at z{level}"
        data = [read_tif(p)[0] for p in files]
        assert sum(d[0].sum() for d in data) == count  # sums of integers stay exact
        # Averages: each level divides by 4 per 2 x 2 block.
        assert sum(d[1].sum() for d in data) * 4 ** (z - level) == pytest.approx(cover,
                                                                                 rel=1e-12)
    (root,) = tif_files(gt / TMS / "0")
    assert root.parts[-2:] == ("0", "0.tif")


def test_web_tiles_at_every_zoom_with_the_palette(zoom_run):
    z, _, gt, web, _ = zoom_run
    for stat in ("polygon_count", "coverage"):
        pngs = sorted((web / stat / TMS).rglob("*.png"))
        assert {int(p.parts[-3]) for p in pngs} == set(range(z + 1))
        assert len(pngs) == len(tif_files(gt))
    # At the staged zoom: each covered pixel has the colour of pdgraster's table entry
    # int(coverage * 255), no data the transparent nodata colour. Entries 0, 255 and 256 of
    # pdgraster's own table for this palette (../shared/pdg-palettes.json): alpha 0x1A = 26
    # is truncated to 25 as pdgraster's coloraide printed it, entry 255 is the palette at
    # 255 / 256.
    table = palette_table(STATS[1]["palette"], "#ffffff00")
    assert table[0].tolist() == [248, 255, 31, 25] and table[255].tolist() == [248, 255, 31, 254]
    assert table[256].tolist() == [255, 255, 255, 0]
    for path in tif_files(gt / TMS / str(z)):
        cov = read_tif(path)[0][1]
        x, y = path.parts[-2], path.stem
        png = np.asarray(Image.open(web / "coverage" / TMS / str(z) / x / f"{y}.png"))
        assert (png[cov == 0] == table[256]).all()
        idx = np.clip((np.clip(cov, 0, 1) * 255).astype(int), 0, 255)
        covered = cov > 0
        np.testing.assert_array_equal(png[covered], table[idx[covered]])
        assert covered.any()


def test_tiler_at_z18_and_cli_pyramid_default(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from fastraster.cli import main

    monkeypatch.chdir(tmp_path)
    fastraster.sample.make_sample("staged", z=18, tms=TMS, spacing_m=SPACING[18], seed=5)
    tiler = fastraster.RasterTiler({"tms_id": TMS, "z_range": [16, 18], "statistics": STATS})
    report = tiler.rasterize_all()
    assert not report.errors and sorted({t.z for t in report}) == [16, 17, 18]
    # The CLI's pyramid starts from the deepest zoom found (here 18), not from 13.
    result = CliRunner().invoke(main, ["pyramid", "geotiff", "-j", "1", "-q", "--min-z",
                                       "14", "--overwrite"])
    assert result.exit_code == 0, result.output
    # z17 to z14, four tiles each: the block straddles a z13 tile corner.
    assert "16 tiles: 16 ok" in result.output
    assert len(tif_files(tmp_path / "geotiff" / TMS / "14")) == 4


def test_cli_sample_at_any_zoom(tmp_path):
    from click.testing import CliRunner

    from fastraster.cli import main

    result = CliRunner().invoke(main, ["sample", str(tmp_path), "--z", "15", "--tms", TMS,
                                       "--spacing", "60"])
    assert result.exit_code == 0, result.output
    assert "wrote 4 staged z15 tiles" in result.output
    found = sorted(p.relative_to(tmp_path).parts for p in tmp_path.rglob("*.gpkg"))
    assert found == sorted((TMS, "15", str(x), f"{y}.gpkg") for x, y, _ in sample_tiles(15))
