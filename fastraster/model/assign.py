"""Tile assignment: every tile of zoom z a polygon ``intersects`` (touching counts).

PDG (``ST:assign_tile`` -> ``GR:__sjoin_cells__``) joins the polygons with the grid cells
using ``intersects``: a polygon goes to every tile it intersects, including tiles it only
touches with an edge or a vertex. Here the candidates come from the bounding boxes (numpy),
widened by a hair so that rounding can only add candidates; a polygon with a single
candidate lies inside that tile; the others are decided by GEOS ``intersects`` against the
exact tile boxes, pair by pair, in one vectorised call.

Tile boxes are the exact grid (``TileGrid``): PDG's fences are ``numpy.linspace`` between
morecantile bounds, ~1e-12 degree off the exact ones, which could only matter to a polygon
within 1e-12 degree of a tile edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import shapely

from fastraster.model.grid import QUAD_TMS, TileGrid
from fastraster.model.staging import bounds, to_polygons

#: Candidate ranges are widened by this fraction of a tile so that no rounding in
#: ``(x - left) / span`` can lose a tile; it exceeds the relative rounding of the division
#: by orders of magnitude up to z = 30 (2.8e-14 / 1.7e-7 degree), and only adds candidates,
#: which GEOS then decides exactly.
_EPS = 1e-6


@dataclass(frozen=True)
class TileScheme:
    """The tiles of one zoom level of a tile matrix set, as a regular grid in its CRS."""

    tms: str
    z: int
    crs: str
    left: float
    top: float
    span_x: float
    span_y: float
    nx: int
    ny: int

    @classmethod
    def create(cls, tms: str, z: int) -> TileScheme:
        if tms in QUAD_TMS:
            n = 2 ** z
            d = 180.0 / n
            return cls(tms, z, QUAD_TMS[tms], -180.0, 90.0, d, d, 2 * n, n)
        import morecantile

        m = morecantile.tms.get(tms)
        matrix = m.matrix(z)
        if getattr(matrix, "variableMatrixWidths", None):
            raise ValueError(f"tile matrix set {tms!r} has variable matrix widths at z={z}; "
                             "only regular grids are supported")
        g = TileGrid.from_tile((0, 0, z), tms)
        return cls(tms, z, g.crs, g.left, g.top, g.right - g.left, g.top - g.bottom,
                   int(matrix.matrixWidth), int(matrix.matrixHeight))

    def box_bounds(self, tx: np.ndarray, ty: np.ndarray) -> np.ndarray:
        """(n, 4) exact bounds ``left, bottom, right, top`` of tiles, as ``TileGrid`` has
        them."""
        tx = np.asarray(tx, np.int64)
        ty = np.asarray(ty, np.int64)
        if self.tms in QUAD_TMS:
            # TileGrid.from_tile's arithmetic, vectorised (exact: multiples of 2**(2 - z)).
            left = -180.0 + tx * self.span_x
            top = 90.0 - ty * self.span_y
            return np.column_stack([left, top - self.span_y, left + self.span_x, top])
        out = np.empty((tx.size, 4))
        for i, (a, b) in enumerate(zip(tx.tolist(), ty.tolist())):
            out[i] = _generic_bounds(self.tms, a, b, self.z)
        return out


@lru_cache(maxsize=65536)
def _generic_bounds(tms, x, y, z):
    g = TileGrid.from_tile((x, y, z), tms)
    return (g.left, g.bottom, g.right, g.top)


def tile_key(tx, ty) -> np.ndarray:
    """One int64 per tile: ``x << 32 | y``."""
    return (np.asarray(tx, np.int64) << 32) | np.asarray(ty, np.int64)


def key_xy(key) -> tuple[np.ndarray, np.ndarray]:
    key = np.asarray(key, np.int64)
    return key >> 32, key & 0xFFFFFFFF


def assign_tiles(polys, scheme: TileScheme, geoms=None) -> tuple[np.ndarray, np.ndarray]:
    """Every (polygon, tile) pair with the polygon intersecting the closed tile.

    Parameters
    ----------
    polys : RaggedPolygons
        Non-empty polygons in the scheme's CRS.
    scheme : TileScheme
    geoms : array of shapely geometries, optional
        The same polygons as shapely objects (built for the undecided ones otherwise).

    Returns
    -------
    poly : int64 array
        Polygon index of each pair, ascending.
    key : int64 array
        Tile key (:func:`tile_key`) of each pair.
    """
    b = bounds(polys)
    n = b.shape[0]
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    fx0 = (b[:, 0] - scheme.left) / scheme.span_x
    fx1 = (b[:, 2] - scheme.left) / scheme.span_x
    fy0 = (scheme.top - b[:, 3]) / scheme.span_y
    fy1 = (scheme.top - b[:, 1]) / scheme.span_y
    tx0 = np.clip(np.floor(fx0 - _EPS), 0, scheme.nx - 1).astype(np.int64)
    tx1 = np.clip(np.floor(fx1 + _EPS), 0, scheme.nx - 1).astype(np.int64)
    ty0 = np.clip(np.floor(fy0 - _EPS), 0, scheme.ny - 1).astype(np.int64)
    ty1 = np.clip(np.floor(fy1 + _EPS), 0, scheme.ny - 1).astype(np.int64)
    # A box entirely outside the grid has an empty range after clipping only if it lies
    # beyond it; such polygons land in no tile (PDG's grid covers only the TMS extent).
    outside = (fx1 < 0) | (fx0 > scheme.nx) | (fy1 < 0) | (fy0 > scheme.ny)
    single = (tx0 == tx1) & (ty0 == ty1) & ~outside
    multi = np.flatnonzero(~single & ~outside)
    one = np.flatnonzero(single)
    if multi.size == 0:
        return one, tile_key(tx0[one], ty0[one])
    # Candidate pairs of the undecided polygons: every tile of their widened box range.
    wx = tx1[multi] - tx0[multi] + 1
    wy = ty1[multi] - ty0[multi] + 1
    cnt = wx * wy
    pi = np.repeat(multi, cnt)
    k = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    cx = tx0[pi] + k % np.repeat(wx, cnt)
    cy = ty0[pi] + k // np.repeat(wx, cnt)
    bb = scheme.box_bounds(cx, cy)
    # Exact answer for every pair whose boxes overlap, by GEOS (as PDG's sjoin).
    if geoms is None:
        sub = to_polygons(polys.take(multi))
        pos = np.empty(n, np.int64)
        pos[multi] = np.arange(multi.size)
        g = sub[pos[pi]]
    else:
        g = geoms[pi]
    hit = shapely.intersects(g, shapely.box(bb[:, 0], bb[:, 1], bb[:, 2], bb[:, 3]))
    poly = np.concatenate([one, pi[hit]])
    key = np.concatenate([tile_key(tx0[one], ty0[one]), tile_key(cx[hit], cy[hit])])
    order = np.argsort(poly, kind="stable")
    return poly[order], key[order]


def morton(tx, ty) -> np.ndarray:
    """Z-order (Morton) code of tiles: nearby tiles get nearby codes (block grouping)."""
    def spread(v):
        v = np.asarray(v, np.uint64) & np.uint64(0xFFFFFFFF)
        for shift, mask in ((16, 0x0000FFFF0000FFFF), (8, 0x00FF00FF00FF00FF),
                            (4, 0x0F0F0F0F0F0F0F0F), (2, 0x3333333333333333),
                            (1, 0x5555555555555555)):
            v = (v | (v << np.uint64(shift))) & np.uint64(mask)
        return v

    return spread(tx) | (spread(ty) << np.uint64(1))
