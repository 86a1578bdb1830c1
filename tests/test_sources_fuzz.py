"""Hypothesis: random little scene sets on a coarse lattice (so polygons, footprints, their
overlaps and tile edges touch exactly, all the time; tied dates; missing footprints) give
the same tiles and the same counted polygons as the literal reference, in any input order."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import shapely
import shapely.affinity
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastraster.pipelines.sources import PdgSourceRules, counted_rows
from tests.sources_data import write_scene
from tests.sources_reference import pdg_rows

Z = 15
D = 180.0 / 2 ** Z
TX, TY = 5716, 3604
XE = -180.0 + TX * D  # lattice origin: a tile corner; the lattice step is an eighth of a tile
TOP = 90.0 - TY * D
STEP = D / 8


def _xy(i, j):
    return XE + i * STEP, TOP - j * STEP


@st.composite
def box(draw, lo=-10, hi=18, max_size=6):
    i0 = draw(st.integers(lo, hi))
    j0 = draw(st.integers(lo, hi))
    w = draw(st.integers(1, max_size))
    h = draw(st.integers(1, max_size))
    (x0, y0), (x1, y1) = _xy(i0, j0), _xy(i0 + w, j0 + h)
    return shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


@st.composite
def polygon(draw, near):
    """A polygon on the lattice, mostly around the footprint box ``near`` (i0, j0, i1, j1):
    inside, straddling or touching its edges."""
    kind = draw(st.sampled_from(["box", "box", "triangle", "multi"]))
    i0, j0, i1, j1 = near
    b = draw(box(lo=min(i0, j0) - 3, hi=max(i1, j1) + 1, max_size=4))
    if kind == "triangle":
        x0, y0, x1, y1 = b.bounds
        return shapely.Polygon([(x0, y0), (x1, y0), (x0, y1)])
    if kind == "multi":  # two disjoint parts (a shapefile keeps them a MultiPolygon)
        return shapely.MultiPolygon([b, shapely.affinity.translate(b, 5 * STEP, 0)])
    return b


@st.composite
def scene_set(draw):
    n = draw(st.integers(1, 4))
    clip = draw(st.booleans())
    scenes = []
    for k in range(n):
        i0, j0 = draw(st.integers(-4, 6)), draw(st.integers(-4, 6))
        i1, j1 = i0 + draw(st.integers(2, 12)), j0 + draw(st.integers(2, 12))
        (x0, y0), (x1, y1) = _xy(i0, j0), _xy(i1, j1)
        fp = shapely.box(x0, y1, x1, y0)
        polys = draw(st.lists(polygon((i0, j0, i1, j1)), min_size=1, max_size=8))
        has_fp = clip or draw(st.integers(0, 4)) > 0
        date = draw(st.sampled_from(["20190101000000", "20210101000000"]))
        scenes.append((f"s{k}", polys, fp if has_fp else None, date))
    return clip, scenes


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scene_set())
def test_random_scene_sets_match_the_reference(data):
    clip, scenes = data
    with tempfile.TemporaryDirectory() as root:
        for name, polys, fp, date in scenes:
            write_scene(root, name, polys, fp, date, crs="EPSG:4326")
        inputs = os.path.join(root, "input")
        fps = os.path.join(root, "footprints")
        rules = PdgSourceRules.create(z=Z, clip_to_footprint=clip)
        rows = counted_rows(inputs, rules=rules, footprints=fps)
        files = sorted(os.path.join(inputs, f) for f in os.listdir(inputs) if f.endswith(".shp"))
        again = counted_rows(files[::-1], rules=rules, footprints=fps)
        names = {os.path.basename(f): f for f in files}
        fp_paths = {n: (os.path.join(fps, n) if os.path.exists(os.path.join(fps, n)) else None)
                    for n in names}
        ref = pdg_rows(names, fp_paths, Z, clip_to_footprint=clip)
    ours = {t: sorted(zip(r["scene"].tolist(), r["feature"].tolist()))
            for t, r in rows.items() if t != "scenes"}
    ours_rev = {t: sorted(zip(r["scene"].tolist(), r["feature"].tolist()))
                for t, r in again.items() if t != "scenes"}
    assert ours == ours_rev
    theirs = {}
    for (x, y), grp in ref.groupby(["x", "y"]):
        keep = grp[~grp["dup"]]
        theirs[(x, y, Z)] = sorted(zip(keep["name"].tolist(), keep["feature"].tolist()))
    assert ours == theirs
    for t, r in rows.items():
        if t == "scenes" or not len(r["feature"]):
            continue
        g = ref[(ref["x"] == t[0]) & (ref["y"] == t[1])]
        g = g.set_index(["name", "feature"])
        want = g.loc[list(zip(r["scene"], r["feature"])), ["cx", "cy"]].to_numpy()
        np.testing.assert_array_equal(np.column_stack([r["cx"], r["cy"]]), want)
