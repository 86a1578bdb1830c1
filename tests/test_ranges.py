"""pdgraster's value-range rule, one implementation for the tiler and for render_web_tiles."""

from __future__ import annotations

import copy
import itertools

import pytest

from fastraster.model.stats import parse_stats
from fastraster.render.ranges import update_ranges, value_range

RUN = {"s": {3: (1.5, 9.5)}}


def _stat(val_range=None, z_config=None):
    cfg = {"name": "s", "weight_by": "count", "property": "centroids_per_pixel"}
    if val_range is not None:
        cfg["val_range"] = val_range
    if z_config is not None:
        cfg["z_config"] = z_config
    return cfg


@pytest.mark.parametrize(("val_range", "z_config", "expected"), [
    # Open ends take the run's range; set ones stay.
    ([0, None], None, (0.0, 9.5)),
    ([0, 1], None, (0.0, 1.0)),
    (None, None, (1.5, 9.5)),
    # The zoom's own val_range wins; its open ends take the run's.
    ([0, 1], {"3": {"val_range": [None, 4]}}, (1.5, 4.0)),
    ([0, 1], {3: {"val_range": [2, 4]}}, (2.0, 4.0)),
    # pdgraster fills the ends one after the other: filling the open lower end creates
    # z_config[3], whose upper end (None) then shadows the general one.
    ([None, 5], None, (1.5, 9.5)),
    # A z_config entry without val_range shadows the general val_range too.
    ([0, 5], {"3": {"other": 1}}, (1.5, 9.5)),
    # Another zoom: untouched.
    ([0, 5], {"4": {"val_range": [7, 8]}}, (0.0, 5.0)),
])
def test_value_range_follows_pdgraster_update_ranges(val_range, z_config, expected):
    (stat,) = parse_stats([_stat(val_range, z_config)])
    assert value_range(stat, 3, RUN) == expected


def test_tiler_path_and_render_path_agree():
    """RasterTiler fills the configuration (update_ranges) and renders without ranges;
    render_web_tiles resolves with the ranges directly: the same (min, max) everywhere."""
    ends = [None, 0, 5]
    vrs = [None, *map(list, itertools.product(ends, ends))]
    entries = [None, {}, {"3": None}, {"3": {"other": 1}},
               *({"3": {"val_range": v}} for v in vrs if v is not None)]
    for vr, zc in itertools.product(vrs, entries):
        cfg = _stat(vr, zc)
        before = copy.deepcopy(cfg)
        (direct,) = parse_stats([cfg])
        (filled,) = parse_stats(update_ranges([cfg], RUN))
        assert cfg == before  # the configurations given stay untouched
        for z in (3, 4):
            assert value_range(direct, z, RUN) == value_range(filled, z), (cfg, z)


def test_bands_without_values_add_nothing_to_the_zoom_ranges(tmp_path):
    """A band with no value (all NaN: an attribute mean over a tile no polygon covers) has NaN
    min and max in rasters_summary.csv; like pandas' min / max (pdgraster's get_z_ranges)
    they are skipped, in either order, instead of making the zoom's range NaN."""
    from fastraster.render.ranges import zoom_ranges

    rows = ["stat,min,max,z", "m,nan,nan,13", "m,1.5,2.5,13", "m,0.5,1.0,13", "m,nan,nan,12",
            "n,nan,nan,13"]
    (tmp_path / "s.csv").write_text("\n".join(rows) + "\n")
    assert zoom_ranges(tmp_path / "s.csv") == {"m": {13: (0.5, 2.5)}}


def test_tiler_with_a_valueless_tile_renders_every_zoom(tmp_path, monkeypatch):
    import numpy as np
    import pyogrio.raw
    import shapely

    import fastraster
    from fastraster.model.grid import TileGrid

    monkeypatch.chdir(tmp_path)
    # Two staged tiles with one polygon each; the first one's is a flagged duplicate, so its
    # mean band has no value at all.
    for x, dup in ((1524, True), (1525, False)):
        g = TileGrid.from_tile((x, 910, 13), "WGS1984Quad")
        box = shapely.box(g.left + 3.2 * g.dx, g.top - 9.7 * g.dy, g.left + 7.5 * g.dx,
                          g.top - 4.1 * g.dy)
        path = tmp_path / "staged" / "WGS1984Quad" / "13" / str(x) / "910.gpkg"
        path.parent.mkdir(parents=True)
        pyogrio.raw.write(str(path), shapely.to_wkb(np.array([box], dtype=object)),
                          [np.array([2.5]), np.array([dup])], ["v", "staging_duplicated"],
                          driver="GPKG", geometry_type="Polygon", crs="EPSG:4326")
    tiler = fastraster.RasterTiler({
        "tms_id": "WGS1984Quad", "z_range": [12, 13], "deduplicate_at": "raster",
        "deduplicate_method": "neighbor",
        "statistics": [{"name": "vmean", "weight_by": "area", "property": "v",
                        "aggregation_method": "mean", "val_range": [None, None]}]})
    report = tiler.rasterize_all()
    assert not report.errors and report.steps[2].n("ok") == 3
    assert tiler.config["statistics"][0]["z_config"][13]["val_range"] == [2.5, 2.5]
