"""PDG's footprint deduplication (SEMANTICS §2), split into what can be known per scene and
what needs the tile.

PDG, per tile T, over the files present in T (with at least one row there, flagged or not):
for every pair of files A, B whose footprints both exist, the polygons of the less
preferred file that intersect ``footprint_A ∩ footprint_B`` (EPSG:4326, touching counts)
are flagged. The result is a union over pairs, so it does not depend on the order in which
pairs are visited, and a polygon of A in T is flagged iff

    clip-flagged  or  for some B present in T, preferred to A:  polygon ∩ overlap(A, B) ≠ ∅.

So each scene stores, per polygon, one bit per *preferred neighbour* (a scene preferred to it
whose footprint intersects its own): "intersects our overlap". A tile then only needs the
set of scenes present in it (:func:`tile_mask`) to flag rows with one AND
(:func:`flagged`). A polygon can be flagged in one tile and not in another (PDG's per-tile
scope, SEMANTICS §2.9).

Preference follows the keep rules (``[["Date", "larger"]]``: the later date wins), with
nulls last as pandas sorts them. **Ties** (equal values for every rule) are broken here by
the scene name: the name that sorts last is preferred. PDG breaks them by the order in which
files reached the tile (an unstable sort over concatenation order), which depends on staging
order; with two tied files staged in sorted order (``run_pdg.py``), the later one, i.e. the
name that sorts last, wins, which is the rule chosen here.
"""

from __future__ import annotations

import functools

import numpy as np
import shapely

#: Bits per overlap word.
WORD = 64


def rank_scenes(names: dict, keys: dict, keep_rules) -> dict:
    """Preference rank of each scene (0 = most preferred) by the keep rules.

    Parameters
    ----------
    names : {scene id: name}
    keys : {scene id: tuple of keep-rule values}, only for scenes with a footprint
    keep_rules : tuple of (column, "larger" | "smaller")

    Raises
    ------
    ValueError
        If two scenes' values for one rule cannot be compared (e.g. text and numbers),
        naming both scenes.
    """
    def cmp(a, b):
        for i, (col, order) in enumerate(keep_rules):
            va, vb = keys[a][i], keys[b][i]
            if va is None or vb is None:  # pandas puts nulls last whatever the order
                if va is None and vb is None:
                    continue
                return 1 if va is None else -1
            try:
                if va == vb:
                    continue
                less = va < vb
            except TypeError as exc:
                raise ValueError(f"keep rule {col!r}: cannot compare {va!r} ({names[a]}) with "
                                 f"{vb!r} ({names[b]})") from exc
            first = not less if order == "larger" else less
            return -1 if first else 1
        # Ties: the name that sorts last is preferred (see the module docstring).
        return -1 if names[a] > names[b] else (1 if names[a] < names[b] else 0)

    ordered = sorted(keys, key=functools.cmp_to_key(cmp))
    return {sid: r for r, sid in enumerate(ordered)}


def preferred_neighbours(geoms_tms: dict, ranks: dict) -> dict:
    """For each scene, the scenes preferred to it whose footprints intersect its own, in
    ascending scene id.

    Parameters
    ----------
    geoms_tms : {scene id: footprint geometry in the tile matrix set's CRS}
    ranks : {scene id: rank} (see :func:`rank_scenes`)
    """
    ids = sorted(geoms_tms)
    out = {sid: [] for sid in ids}
    if len(ids) < 2:
        return out
    geoms = np.array([geoms_tms[i] for i in ids], dtype=object)
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    for i, j in zip(a.tolist(), b.tolist()):
        if i == j:
            continue
        si, sj = ids[i], ids[j]
        if ranks[sj] < ranks[si]:
            out[si].append(sj)
    return {sid: sorted(set(v)) for sid, v in out.items()}


def overlap_geometry(name_a, geom_a, name_b, geom_b):
    """``footprint1.intersection(footprint2)`` with PDG's operand order: the pairs come from
    ``itertools.combinations`` over sorted file names, so the first operand is the footprint
    of the name that sorts first. (Any geometry type: a line where footprints only touch
    still flags the polygons crossing it.)"""
    if name_b < name_a:
        geom_a, geom_b = geom_b, geom_a
    return shapely.intersection(geom_a, geom_b)


def overlap_bits(polys_bounds: np.ndarray, get_geoms, overlaps, skip=None) -> np.ndarray:
    """Per polygon, one bit per overlap: does the polygon intersect it (touching counts)?

    Parameters
    ----------
    polys_bounds : (n, 4) array
        Bounding boxes of the polygons (tile matrix set CRS).
    get_geoms : callable(index array) -> array of shapely geometries
        The polygons at these indices (built only for bounding-box candidates).
    overlaps : list of shapely geometries
        One per preferred neighbour, in the order of the neighbour list.
    skip : bool array, optional
        Polygons whose bits are not needed (clip-flagged ones are flagged anyway).

    Returns
    -------
    (n, words) uint64 array, words = ceil(len(overlaps) / 64) (at least 1).
    """
    n = polys_bounds.shape[0]
    words = max(1, -(-len(overlaps) // WORD))
    bits = np.zeros((n, words), np.uint64)
    for j, ov in enumerate(overlaps):
        if ov is None or shapely.is_empty(ov):
            continue
        ox0, oy0, ox1, oy1 = shapely.bounds(ov)
        cand = ((polys_bounds[:, 0] <= ox1) & (polys_bounds[:, 2] >= ox0)
                & (polys_bounds[:, 1] <= oy1) & (polys_bounds[:, 3] >= oy0))
        if skip is not None:
            cand &= ~skip
        idx = np.flatnonzero(cand)
        if idx.size == 0:
            continue
        shapely.prepare(ov)
        hit = idx[shapely.intersects(ov, get_geoms(idx))]
        bits[hit, j // WORD] |= np.uint64(1) << np.uint64(j % WORD)
    return bits


def tile_mask(neighbours, present, words: int) -> np.ndarray:
    """The overlap bits that flag a scene's polygons in a tile: those of its preferred
    neighbours present in the tile (``present``: a set of scene ids)."""
    mask = np.zeros(words, np.uint64)
    for j, sid in enumerate(neighbours):
        if sid in present:
            mask[j // WORD] |= np.uint64(1) << np.uint64(j % WORD)
    return mask


def flagged(bits: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Rows whose overlap bits meet the tile's mask."""
    if not mask.any():
        return np.zeros(bits.shape[0], bool)
    return ((bits & mask[None, :]) != 0).any(axis=1)
