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
