"""Reductions that combine: a tile's polygons split into random chunks, each accumulated and the
states combined in a random order, give what the whole tile gives at once (bit for bit for
counts, minima and maxima, <= 1e-12 for areas and sums); the union cannot combine."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st

from fastraster.model.geometry import RaggedPolygons
from fastraster.model.grid import TileGrid
from fastraster.model.reductions import (
    AreaMean,
    Batch,
    CentroidMean,
    NoDataMask,
    UnionCoverage,
    reduction_for,
)
from fastraster.model.stats import parse_stats
from tests.test_kernels import G16, HYP, polygon_lists

KEYWORDS = [("count", "centroids_per_pixel"), ("count", "polygons_covering_center"),
            ("count", "polygons_touching"), ("area", "area_per_pixel_area"),
            ("area", "area_within_pixel")]
COMBINABLE = parse_stats(
    [{"name": p, "weight_by": w, "property": p} for w, p in KEYWORDS]
    + [{"name": f"v-{w}-{a}", "weight_by": w, "property": "v", "aggregation_method": a}
       for w in ("count", "area") for a in ("sum", "mean", "min", "max", "count")])
#: Whose bands are sums of floats (areas, attribute sums): equal to rounding, not bit for bit.
ROUNDED = {"area_per_pixel_area", "area_within_pixel", "v-count-sum", "v-area-sum"}


def _split(n, draw_ints):
    """Random chunks of range(n) (some empty), in a random order of polygons."""
    k, order, labels = draw_ints
    chunks = [[] for _ in range(k)]
    for i, lab in zip(order, labels):
        chunks[lab % k].append(i)
    return [np.array(c, dtype=np.int64) for c in chunks]


@st.composite
def split_plan(draw, n):
    k = draw(st.integers(1, 5))
    order = draw(st.permutations(range(n)))
    labels = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    pairing = draw(st.lists(st.integers(0, 10**6), min_size=k, max_size=k))
    return (k, order, labels), pairing


def _combine_randomly(red, states, pairing):
    """Combine states two at a time, picking the pairs from ``pairing``: a random tree."""
    states = list(states)
    p = 0
    while len(states) > 1:
        i = pairing[p % len(pairing)] % len(states)
        a = states.pop(i)
        j = pairing[(p + 1) % len(pairing)] % len(states)
        b = states.pop(j)
        states.append(red.combine(a, b))
        p += 1
    return states[0]


def _batch(polys, values, idx=None, centroids=None):
    if idx is None:
        return Batch(polys, G16, centroids, {"v": values})
    cents = None if centroids is None else tuple(c[idx] for c in centroids)
    return Batch(polys.take(idx), G16, cents, {"v": values[idx]})


def _components(red, state):
    """What to compare: the band, or for means the (sum, weight) parts before the division
    (a mean over a sliver of coverage amplifies rounding of its parts)."""
    if isinstance(red, AreaMean):
        return [state[0].finished, state[1].finished]
    if isinstance(red, CentroidMean):
        return [state[0], state[1]]
    return [red.finalize(state)]


@HYP
@given(data=st.data(), geoms=polygon_lists(G16, min_size=1, max_size=10),
       given_centroids=st.booleans())
def test_chunks_accumulated_and_combined_equal_the_whole_tile(data, geoms, given_centroids):
    n = len(geoms)
    if n == 0:
        return
    polys = RaggedPolygons.from_shapely(np.asarray(geoms, dtype=object))
    values = np.asarray(data.draw(st.lists(st.floats(-5, 5), min_size=n, max_size=n)))
    centroids = None
    if given_centroids:  # staging columns: any point, on pixel edges too
        pts = data.draw(st.lists(st.tuples(st.integers(-4, 4 * 16 + 4),
                                           st.integers(-4, 4 * 16 + 4)), min_size=n,
                                 max_size=n))
        px = np.array(pts, dtype=np.float64) / 4
        centroids = (G16.left + px[:, 0] * G16.dx, G16.top - px[:, 1] * G16.dy)
    plan, pairing = data.draw(split_plan(n))
    chunks = _split(n, plan)
    scale = 1.0 + np.abs(values).sum()
    for stat in COMBINABLE:
        red = reduction_for(stat)
        assert red.combinable
        whole = red.accumulate(None, _batch(polys, values, centroids=centroids))
        parts = [red.accumulate(None, _batch(polys, values, c, centroids)) for c in chunks]
        combined = _combine_randomly(red, parts, pairing)
        for got, want in zip(_components(red, combined), _components(red, whole),
                             strict=True):
            if stat.name in ROUNDED or isinstance(red, (AreaMean, CentroidMean)):
                np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * scale,
                                           err_msg=stat.name)
            else:  # counts, minima, maxima: exact
                np.testing.assert_array_equal(got, want, err_msg=stat.name)
    # Accumulating chunk after chunk into one state is the same as combining.
    red = reduction_for(COMBINABLE[0])
    state = None
    for c in chunks:
        state = red.accumulate(state, _batch(polys, values, c, centroids))
    np.testing.assert_array_equal(red.finalize(state), red.finalize(
        red.accumulate(None, _batch(polys, values, centroids=centroids))))
    # The no-data mask combines exactly too.
    mask = NoDataMask()
    parts = [mask.accumulate(None, _batch(polys, values, c, centroids)) for c in chunks]
    np.testing.assert_array_equal(
        mask.finalize(_combine_randomly(mask, parts, pairing)),
        mask.finalize(mask.accumulate(None, _batch(polys, values, centroids=centroids))))


def test_one_batch_gives_compute_stats_bands():
    """compute_stats is one batch per reduction (and the no-data mask applied)."""
    from fastraster import compute_stats

    geoms = [shapely.box(1, 10, 9, 30), shapely.box(5, 20, 20, 40)]
    polys = RaggedPolygons.from_shapely(np.asarray(geoms, dtype=object))
    values = np.array([2.0, -1.0])
    out = compute_stats(polys, G16, COMBINABLE, attributes={"v": values})
    for b, stat in enumerate(COMBINABLE):
        red = reduction_for(stat)
        np.testing.assert_array_equal(
            out[b], red.finalize(red.accumulate(None, _batch(polys, values))), stat.name)


def test_union_coverage_cannot_combine():
    (stat,) = parse_stats([{"name": "u", "weight_by": "area",
                            "property": "union_area_per_pixel_area"}])
    red = reduction_for(stat)
    assert isinstance(red, UnionCoverage) and red.combinable is False
    polys = RaggedPolygons.from_shapely([shapely.box(1, 10, 9, 30)])
    state = red.accumulate(None, _batch(polys, np.ones(1)))
    with pytest.raises(TypeError, match="group the tile's polygons"):
        red.accumulate(state, _batch(polys, np.ones(1)))
    with pytest.raises(TypeError, match="group the tile's polygons"):
        red.combine(state, state)


def test_states_of_different_tiles_do_not_combine():
    polys = RaggedPolygons.from_shapely([shapely.box(1, 10, 9, 30)])
    other = TileGrid.from_tile((9, 2, 3), "WGS1984Quad", 16)
    red = reduction_for(COMBINABLE[3])  # area_per_pixel_area: Coverage states
    a = red.accumulate(None, Batch(polys, G16))
    b = red.accumulate(None, Batch(polys, other))
    with pytest.raises(ValueError, match="different tiles"):
        red.combine(a, b)
