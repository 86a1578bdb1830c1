"""Polygon centroids (GEOS's arithmetic) and the pixel of each centroid (PDG's rule)."""

import math

import numpy as np

from fastraster.kernels._jit import kernel
from fastraster.kernels.validity import _star_orientation

# ---------------------------------------------------------------------------------------------
# Centroid pixels (the PDG rule)
# ---------------------------------------------------------------------------------------------


@kernel
def polygon_centroids(x, y, ring_offsets, part_offsets, geom_offsets, cx, cy):
    """Area centroid of each polygon, bit for bit as GEOS computes it, or NaN if unsure.

    GEOS's ``Centroid`` (what ``shapely.centroid`` and geopandas call, and so what pdgraster
    bins): the signed triangles fanned from the exterior's first vertex,
    ``cg3 += sign * area2 * (p0 + p1 + p2)`` and ``areasum2 += sign * area2`` in ring order,
    then ``cg3 / 3 / areasum2``; ``sign`` makes the exterior add and holes subtract whatever
    the ring orientation. The same operations in the same order give the same doubles, so
    a centroid on a pixel edge lands in the same pixel as pdgraster's.

    With one ring the sign cancels exactly (negation is exact), so it is not computed.
    With holes every ring's orientation must be the one GEOS finds: it is taken from the
    star test of the validity screen, which proves the ring simple (where any correct
    orientation test agrees); a ring it cannot prove goes to GEOS.

    ``cx[g]`` and ``cy[g]`` are NaN where this cannot promise GEOS's answer, for GEOS to
    compute: an empty geometry; a MultiPolygon (GEOS versions differ in where they fan its
    parts from: 3.14 from each part's first vertex); a ring that is not closed or has fewer
    than 4 points; a polygon with holes whose rings are not proven simple; a zero total area
    (GEOS then takes the centroid of the boundary).
    """
    n_geoms = geom_offsets.shape[0] - 1
    for g in range(n_geoms):
        cx[g] = np.nan
        cy[g] = np.nan
        p_start = geom_offsets[g]
        p_stop = geom_offsets[g + 1]
        if p_stop - p_start != 1 or part_offsets[p_start + 1] <= part_offsets[p_start]:
            continue
        first = part_offsets[p_start]
        last = part_offsets[p_start + 1]
        if ring_offsets[first + 1] - ring_offsets[first] < 4:
            # Checked before reading the first vertex: an exterior of no points (valid WKB)
            # made that read go past the end of x (found by fuzzing under boundscheck).
            continue
        bx = x[ring_offsets[first]]
        by = y[ring_offsets[first]]
        sx = 0.0
        sy = 0.0
        a2sum = 0.0
        sure = True
        for k in range(first, last):
            start = ring_offsets[k]
            stop = ring_offsets[k + 1]
            n = stop - start
            if n < 4 or x[start] != x[stop - 1] or y[start] != y[stop - 1]:
                sure = False
                break
            sign = 1.0
            if last - first > 1:
                ccw = _star_orientation(x, y, start, stop)
                if ccw == 0:
                    sure = False
                    break
                # GEOS: the exterior adds if clockwise, a hole if counter-clockwise.
                sign = 1.0 if ((ccw > 0) != (k == first)) else -1.0
            xs = x[start:stop]
            ys = y[start:stop]
            for i in range(n - 1):
                ax = xs[i]
                ay = ys[i]
                cx1 = xs[i + 1]
                cy1 = ys[i + 1]
                a2 = (ax - bx) * (cy1 - by) - (cx1 - bx) * (ay - by)
                sx += sign * a2 * (bx + ax + cx1)
                sy += sign * a2 * (by + ay + cy1)
                a2sum += sign * a2
        if sure and a2sum != 0.0:
            cx[g] = sx / 3 / a2sum
            cy[g] = sy / 3 / a2sum


@kernel
def centroid_pixels(cx, cy, col_edges, row_edges, out):
    """Flat pixel index of each centroid, or -1 when it lies in no pixel of the raster.

    PDG's rule (``np.searchsorted(edges, value) - 1`` on ``np.linspace`` pixel edges): a
    centroid on a vertical pixel edge belongs to the western pixel, on a horizontal edge to
    the northern one; on the raster's west or north edge to no pixel, on its east or south
    edge to the last column or row. ``col_edges`` ascend (west to east, width + 1 values),
    ``row_edges`` descend (north to south, height + 1 values). NaN centroids get -1.
    """
    width = col_edges.shape[0] - 1
    height = row_edges.shape[0] - 1
    west = col_edges[0]
    east = col_edges[width]
    north = row_edges[0]
    south = row_edges[height]
    # Reciprocal pixel sizes: the guess below needs no division, the edge tests settle it.
    ix = width / (east - west)
    iy = height / (north - south)
    for i in range(cx.shape[0]):
        vx = cx[i]
        vy = cy[i]
        if not (vx > west and vx <= east and vy < north and vy >= south):
            out[i] = -1
            continue
        # Guess from the arithmetic position, then settle the edge case against the very
        # edge values pdgraster compares with: col_edges[c] < vx <= col_edges[c + 1].
        c = int(math.ceil((vx - west) * ix)) - 1
        c = min(max(c, 0), width - 1)
        while c > 0 and vx <= col_edges[c]:
            c -= 1
        while c < width - 1 and vx > col_edges[c + 1]:
            c += 1
        r = int(math.ceil((north - vy) * iy)) - 1
        r = min(max(r, 0), height - 1)
        while r > 0 and vy >= row_edges[r]:
            r -= 1
        while r < height - 1 and vy < row_edges[r + 1]:
            r += 1
        out[i] = r * width + c
