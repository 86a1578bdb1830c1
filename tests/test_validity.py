"""The validity pre-screen is sound (never accepts what GEOS rejects) and useful."""

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from fastraster import kernels as K
from fastraster.model.geometry import RaggedPolygons
from fastraster.model.repair import repair_invalid
from fastraster.sample import ice_wedge_polygons


def _screen(geoms):
    polys = RaggedPolygons.from_shapely(geoms)
    out = np.empty(len(polys), bool)
    K.certainly_simple(*polys.arrays, out)
    return out


coords = st.one_of(st.integers(0, 5).map(float), st.floats(0, 1, allow_nan=False))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(coords, coords), min_size=3, max_size=9))
def test_screen_never_accepts_an_invalid_ring(points):
    poly = shapely.Polygon(points)
    if _screen([poly])[0]:
        assert poly.is_valid, poly.wkt


def test_screen_rejects_known_invalid_and_unsure_shapes():
    bowtie = shapely.Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])
    spike = shapely.Polygon([(0, 0), (2, 0), (2, 2), (1, 2), (1, 3), (1, 2), (0, 2)])
    touching = shapely.Polygon([(0, 0), (4, 0), (4, 4), (2, 0), (0, 4)])  # vertex on edge
    with_hole = shapely.box(0, 0, 4, 4).difference(shapely.box(1, 1, 2, 2))
    multi = shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(2, 2, 3, 3)])
    # Winds twice around its centre with every turn the same way: only the count of
    # crossings of the +x ray tells the star test that it is not simple.
    angles = np.deg2rad([90, 234, 18, 162, 306])
    pentagram = shapely.Polygon(np.c_[np.cos(angles), np.sin(angles)])
    assert not pentagram.is_valid
    assert not _screen([bowtie, spike, touching, with_hole, multi, pentagram]).any()
    assert _screen([shapely.box(0, 0, 1, 1), shapely.Polygon([(0, 0), (3, 0), (1, 2)])]).all()


def test_sample_polygons_take_the_fast_path():
    geoms = ice_wedge_polygons((-146.5, 69.995, -146.495, 70.0), spacing_m=12, fill=1.0,
                               vertices=30, seed=3)
    assert len(geoms) > 100
    assert _screen(geoms).all()


def test_repair_only_touches_invalid_polygons():
    good = shapely.box(0, 0, 1, 1)
    holed = shapely.box(0, 0, 4, 4).difference(shapely.box(1, 1, 2, 2))  # valid, not screened
    bowtie = shapely.Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])
    polys = RaggedPolygons.from_shapely([good, holed, bowtie])
    fixed, n = repair_invalid(polys)
    assert n == 1
    geoms = fixed.to_shapely()
    assert shapely.equals(geoms[0], good) and shapely.equals(geoms[1], holed)
    assert geoms[2].is_valid and geoms[2].area == shapely.make_valid(bowtie).area
