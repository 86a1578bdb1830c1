"""RaggedPolygons: selection keeps every geometry exactly, against shapely indexing."""

import numpy as np
import pytest
import shapely

from fastraster.model.geometry import RaggedPolygons


def _mixed():
    box = shapely.box(0, 0, 4, 4)
    holed = box.difference(shapely.box(1, 1, 2, 2)).difference(shapely.box(2.5, 2.5, 3, 3))
    multi = shapely.MultiPolygon([shapely.box(10, 0, 11, 1), holed])
    tri = shapely.Polygon([(0, 0), (3, 0), (1, 2)])
    empty = shapely.Polygon()
    return np.array([box, holed, multi, empty, tri, multi], dtype=object)


@pytest.mark.parametrize("index", [
    [4, 0, 2],
    [5, 5, 1, 3, 0],
    [-1, -6],
    [],
    [True, False, True, True, False, True],
])
def test_take_matches_shapely_indexing(index):
    geoms = _mixed()
    got = RaggedPolygons.from_shapely(geoms).take(index).to_shapely()
    idx = np.asarray(index)
    want = geoms[idx if idx.size else idx.astype(int)]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        # Same coordinates in the same order (no tolerance), polygons promoted to multi.
        assert shapely.equals_exact(g, shapely.MultiPolygon([w]) if w.geom_type == "Polygon"
                                    and not w.is_empty else w, 0) or (g.is_empty and w.is_empty)


def test_take_rejects_out_of_range():
    with pytest.raises(IndexError):
        RaggedPolygons.from_shapely(_mixed()).take([6])
