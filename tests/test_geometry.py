"""RaggedPolygons: selection keeps every geometry exactly, against shapely indexing."""

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from fastraster.model.geometry import (
    RaggedPolygons,
    all_finite,
    check_finite,
    nonfinite_features,
)


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


_VALUES = [0.0, 1.5, -2.0, 1e308, -1e308, 1.7976931348623157e308, np.nan, np.inf, -np.inf]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(range(len(_VALUES))), min_size=0, max_size=8),
                min_size=0, max_size=6), st.integers(0, 2**32 - 1))
def test_nonfinite_features_against_a_loop(rings, seed):
    """Each geometry (one ring) with a NaN or inf x or y is found, whatever its neighbours:
    also when finite huge values make the sums overflow (the pre-screen's exact fallback)."""
    rng = np.random.default_rng(seed)
    xs = [np.array([_VALUES[k] for k in r]) for r in rings]
    ys = [rng.permutation(x) if rng.random() < 0.5 else np.zeros_like(x) for x in xs]
    n = np.array([len(x) for x in xs], np.int64)
    offsets = np.concatenate([[0], np.cumsum(n)]).astype(np.int64)
    polys = RaggedPolygons(np.concatenate(xs + [np.empty(0)]),
                           np.concatenate(ys + [np.empty(0)]), offsets,
                           np.arange(len(xs) + 1), np.arange(len(xs) + 1))
    want = [i for i, (x, y) in enumerate(zip(xs, ys))
            if not all(np.isfinite(v) for v in (*x, *y))]
    assert nonfinite_features(polys).tolist() == want
    assert all_finite(polys.x, polys.y) is (not want)
    assert all_finite(polys.x) is all(np.isfinite(v) for x in xs for v in x)
    if want:
        with pytest.raises(ValueError, match="non-finite"):
            check_finite(polys)
    else:
        check_finite(polys)
