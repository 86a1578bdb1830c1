"""Exact area coverage: each polygon edge adds to the pixels of its row strip, then one prefix
sum per row (Green's theorem per pixel row)."""

import math

import numpy as np

from fastraster.kernels._jit import kernel
from fastraster.kernels._rings import _orient_certain

# ---------------------------------------------------------------------------------------------
# Exact area coverage: edge contributions accumulated per row, then one prefix sum per row
# ---------------------------------------------------------------------------------------------
#
# Green's theorem on a row strip: the area of a polygon inside pixel (r, c) equals the integral
# over y in [r, r+1] of the length of [c, c+1] lying to the right of the polygon's left edges
# minus that to the right of its right edges. Each edge piece inside the strip, of height h,
# therefore adds h * (fraction of the pixel right of the piece) to the pixel it crosses and
# the full h to every pixel further east. Storing the first part in acc[r, c] and the
# remainder in acc[r, c + 1] turns "every pixel further east" into a prefix sum along the row.
# Pieces west of the raster (px < 0) count in full for the whole row; pieces east of it
# (px >= width) for no pixel; pieces above or below it are cut away. This is exact up to
# floating-point rounding, and linear, so all polygons share one accumulator.


@kernel
def _mark_horizontal(px0, px1, py, height, width, touched):
    """Mark pixels whose open interior a horizontal edge at ``py`` passes through."""
    if py <= 0.0 or py >= height or py == math.floor(py):
        return  # outside, or along a row boundary: touches no open pixel interior
    r = int(py)
    lo = max(min(px0, px1), 0.0)
    hi = min(max(px0, px1), float(width))
    if not hi > lo:  # also for NaN (garbage input): never an undefined column index
        return
    c = int(math.floor(lo))
    while c < width and c < hi:
        touched[r, c] = 1
        c += 1


@kernel
def _accumulate_row_piece(r, xa, xb, h, d, width, acc, touched, with_area):
    """Add one edge piece lying inside row strip ``r``; its x runs from xa to xb, height h.

    ``d`` is the signed weight of the edge (orientation sign times the polygon's weight).
    With ``with_area`` false only ``touched`` is updated.
    """
    lo = min(xa, xb)
    hi = max(xa, xb)
    if hi <= 0.0:
        if with_area:
            acc[r, 0] += d * h  # wholly west of the raster: full contribution to the row
        return
    if lo >= width:
        return  # wholly east: contributes to no pixel of this raster
    if lo == hi:
        # Vertical piece. On a pixel boundary (f == 0) it is wholly a "full" contribution to
        # the pixel east of it and crosses no open pixel interior.
        c = int(math.floor(lo))
        f = lo - c
        if with_area:
            acc[r, c] += d * h * (1.0 - f)
            acc[r, c + 1] += d * h * f
        if f > 0.0:
            touched[r, c] = 1
        return
    span = hi - lo
    xl = lo
    if lo < 0.0:
        if with_area:
            acc[r, 0] += d * h * ((0.0 - lo) / span)
        xl = 0.0
    xe = min(hi, float(width))
    c = int(math.floor(xl))
    while xl < xe:
        xr = min(c + 1.0, xe)
        if with_area:
            hp = d * h * ((xr - xl) / span)
            fm = 0.5 * (xl + xr) - c  # mean offset of the sloped piece inside pixel c
            acc[r, c] += hp * (1.0 - fm)
            acc[r, c + 1] += hp * fm
        touched[r, c] = 1
        xl = xr
        c += 1


@kernel
def _x_at(ax, ay, bx, by, yv):
    """x where segment a-b crosses the horizontal line y = yv (a row boundary, an integer).

    One rounding after an exact product for grid-aligned input, and snapped to the pixel
    corner when the segment passes through it within rounding: otherwise an edge through a
    corner could poke 1e-16 into the diagonal neighbour and mark it as touched.
    """
    xv = ax + (bx - ax) * (yv - ay) / (by - ay)
    k = math.floor(xv + 0.5)
    if xv != k and abs(xv - k) <= 4.0 * 2.220446049250313e-16 * max(1.0, abs(k)):
        if _orient_certain(ax, ay, bx, by, k, yv) == 0:
            return k
    return xv


@kernel
def _accumulate_segment(ax, ay, bx, by, d, height, width, acc, touched, with_area):
    """Split segment (ax, ay)-(bx, by), in pixel coordinates, at row boundaries and add it."""
    if ay == by:
        _mark_horizontal(ax, bx, ay, height, width, touched)
        return
    if ay > by:
        ax, ay, bx, by = bx, by, ax, ay
        d = -d
    if by <= 0.0 or ay >= height:
        return
    ys = max(ay, 0.0)
    ye = min(by, float(height))
    xs = ax if ys == ay else _x_at(ax, ay, bx, by, ys)
    r = int(math.floor(ys))
    while r < height and ys < ye:
        yn = min(r + 1.0, ye)
        xn = bx if yn == by else _x_at(ax, ay, bx, by, yn)
        _accumulate_row_piece(r, xs, xn, yn - ys, d, width, acc, touched, with_area)
        xs = xn
        ys = yn
        r += 1


@kernel
def coverage_accumulate(x, y, ring_offsets, part_offsets, geom_offsets, weights,
                        x0, dx, y0, dy, acc, touched):
    """Accumulate the edge contributions of all polygons, weighted, into ``acc``.

    Parameters
    ----------
    x, y : float64 arrays
        Coordinates in CRS units.
    ring_offsets, part_offsets, geom_offsets : int64 arrays
        MultiPolygon-layout offsets (see module docstring).
    weights : float64 array, one per geometry
        Multiplier of each polygon's area (1.0 for plain coverage).
    x0, dx, y0, dy : float
        Raster origin (west, north) and pixel size, ``dx, dy > 0``.
    acc : float64 array (height, width + 1)
        Accumulator, modified in place; turn it into areas with :func:`coverage_finish`.
    touched : uint8 array (height, width)
        Set to 1 where some polygon boundary crosses the open pixel interior.

    Notes
    -----
    Edges of small polygons are short: most lie inside one pixel and most of the rest cross
    exactly one grid line. Each ring is converted to pixel coordinates and walked twice:

    1. without branches, over all edges: cumulative sums over the edges lying inside one
       pixel (their height, and their height times the sum of their end points' offsets into
       the pixel), a cumulative count of those crossing the open pixel, and the list of edges
       that leave their pixel;
    2. once per edge leaving its pixel: the run of pieces in the pixel it leaves (differences
       of the cumulative sums, plus the first piece of the leaving edge) is written to
       ``acc`` in one go. An edge crossing one grid line is split at the crossing point,
       placed exactly on that line. One crossing a column line and a row line (4 % of the
       edges of a dense IWP tile) is split at both; the exact side of the pixel corner
       between them says which comes first, so which pixel holds the middle piece, written
       on its own. Edges crossing more lines take the general row-by-row walk.

    Offsets into a pixel are ``p - floor(p)``, which is exact, so a piece along a pixel's
    west or north side (both offsets zero on that axis) is recognised exactly and does not
    mark the pixel touched. In a one-pass walk, an edge leaving its pixel (28 % of them on a
    dense IWP tile, in no predictable order) cost ~26 ns against ~5 ns for one staying
    inside; the branch-free first pass keeps that test out of the branches.
    """
    height, width = touched.shape
    fh = float(height)
    fw = float(width)
    n_rings = ring_offsets.shape[0] - 1
    longest = 1
    for k in range(n_rings):
        longest = max(longest, ring_offsets[k + 1] - ring_offsets[k])
    px = np.empty(longest + 1)
    py = np.empty(longest + 1)
    # cum_*[i]: sums over the in-pixel edges before edge i; leaving: indices of the others.
    cum_h = np.zeros(longest + 1)
    cum_hs = np.zeros(longest + 1)
    cum_t = np.zeros(longest + 1)
    leaving = np.empty(longest, np.uint64)  # unsigned: no negative-index tests
    n_geoms = geom_offsets.shape[0] - 1
    for g in range(n_geoms):
        w = weights[g]
        for p in range(geom_offsets[g], geom_offsets[g + 1]):
            first_ring = part_offsets[p]
            for k in range(first_ring, part_offsets[p + 1]):
                start = ring_offsets[k]
                n = ring_offsets[k + 1] - start
                if n < 3:
                    continue
                xs = x[start:start + n]
                ys = y[start:start + n]
                for i in range(n):
                    px[i] = (xs[i] - x0) / dx
                    py[i] = (y0 - ys[i]) / dy
                px[n] = px[0]
                py[n] = py[0]

                # Pass 1. Also the ring's orientation: the trapezoid (shoelace) sum in pixel
                # axes, relative to the first vertex to keep the precision of small rings.
                xr = px[0]
                bx = px[0]
                by = py[0]
                fbc = np.floor(bx)
                fbr = np.floor(by)
                fxb = bx - fbc
                fyb = by - fbr
                sum_h = 0.0
                sum_hs = 0.0
                sum_t = 0.0
                area = 0.0
                n_leaving = np.uint64(0)
                for i in range(n):
                    ax = bx
                    ay = by
                    fac = fbc
                    far = fbr
                    fxa = fxb
                    fya = fyb
                    bx = px[i + 1]
                    by = py[i + 1]
                    fbc = np.floor(bx)
                    fbr = np.floor(by)
                    fxb = bx - fbc
                    fyb = by - fbr
                    h = by - ay
                    area += h * ((ax - xr) + (bx - xr))
                    # inside = 1.0 for an edge inside one pixel, else 0.0 (float arithmetic
                    # only: int/bool conversions would chain through the sums).
                    lines = abs(fbc - fac) + abs(fbr - far)
                    inside = max(1.0 - lines, 0.0)
                    h *= inside
                    sx = fxa + fxb
                    sum_h += h
                    sum_hs += h * sx
                    # 1.0 if the edge crosses the open pixel: not both ends on its west side
                    # (sx == 0) nor both on its north side.
                    sum_t += min(min(sx, fya + fyb) * 1e300, inside)
                    cum_h[i + 1] = sum_h
                    cum_hs[i + 1] = sum_hs
                    cum_t[i + 1] = sum_t
                    leaving[n_leaving] = i
                    n_leaving += np.uint64(lines != 0.0)
                if area == 0.0:
                    continue
                # y points down in pixel axes: a negative sum is counter-clockwise in CRS axes.
                # Exteriors add area and holes remove it, whatever their input orientation.
                o = -1.0 if area > 0.0 else 1.0
                d = (o if k == first_ring else -o) * w

                # Pass 2: the run ending at each leaving edge (and the last one, at vertex n).
                s1 = 0.0
                s2 = 0.0
                st = 0.0
                done_h = 0.0
                done_hs = 0.0
                done_t = 0.0
                for q in range(n_leaving + np.uint64(1)):
                    i = leaving[q] if q < n_leaving else np.uint64(n)
                    s1 += cum_h[i] - done_h
                    s2 += cum_hs[i] - done_hs
                    st += cum_t[i] - done_t
                    done_h = cum_h[i]
                    done_hs = cum_hs[i]
                    done_t = cum_t[i]
                    ax = px[i]
                    ay = py[i]
                    fac = np.floor(ax)
                    far = np.floor(ay)
                    n1 = 0.0
                    n2 = 0.0
                    nt = 0.0
                    if q < n_leaving:
                        bx = px[i + np.uint64(1)]
                        by = py[i + np.uint64(1)]
                        fbc = np.floor(bx)
                        fbr = np.floor(by)
                        ac = abs(fbc - fac)
                        ar = abs(fbr - far)
                        if ac + ar == 1.0:
                            # One grid line crossed (ac: a column line, ar: a row line). Split
                            # at c on that line: a-c ends this run, c-b starts the next. c is
                            # written as b + u (a - b) so that it stays between a and b.
                            xl = max(fac, fbc)
                            yl = max(far, fbr)
                            u = 1.0 - ((ac * (xl - ax) + ar * (yl - ay))
                                       / (ac * (bx - ax) + ar * (by - ay)))
                            c1x = bx + u * (ax - bx)
                            c1y = by + u * (ay - by)
                            c1x += ac * (xl - c1x)
                            c1y += ar * (yl - c1y)
                            c2x = c1x
                            c2y = c1y
                            side = 0
                        elif ac == 1.0 and ar == 1.0:
                            # Across a pixel corner: one column line and one row line. The
                            # exact side of the corner decides which is crossed first and so
                            # which of the two other pixels the middle piece c1-c2 lies in;
                            # an edge through the corner (side 0, as in _x_at) has none.
                            xl = max(fac, fbc)
                            yl = max(far, fbr)
                            ex = bx - ax
                            ey = by - ay
                            side = _orient_certain(ax, ay, bx, by, xl, yl)
                            if side == 0:
                                c1x = xl
                                c1y = yl
                                c2x = xl
                                c2y = yl
                            else:
                                # Crossing points, each kept between its neighbours on the edge.
                                yc = ay + ey * ((xl - ax) / ex)
                                xr = ax + ex * ((yl - ay) / ey)
                                if side * ex * ey > 0.0:  # the column line first
                                    c1x = xl
                                    c1y = min(max(yc, min(ay, yl)), max(ay, yl))
                                    c2x = min(max(xr, min(xl, bx)), max(xl, bx))
                                    c2y = yl
                                    mr = far
                                    mc = fbc
                                else:  # the row line first
                                    c1x = min(max(xr, min(ax, xl)), max(ax, xl))
                                    c1y = yl
                                    c2x = xl
                                    c2y = min(max(yc, min(yl, by)), max(yl, by))
                                    mr = fbr
                                    mc = fac
                            # The middle piece, written out like the run write below: a helper
                            # for both was not inlined by numba and ran 2x slower.
                            if side != 0 and mr >= 0.0 and mr < fh:
                                hm = c2y - c1y
                                sx = (c1x - mc) + (c2x - mc)
                                rm = np.uint64(np.int64(mr))
                                if mc < 0.0:
                                    acc[rm, 0] += d * hm
                                elif mc < fw:
                                    cm = np.uint64(np.int64(mc))
                                    v2 = 0.5 * hm * sx
                                    acc[rm, cm] += d * (hm - v2)
                                    acc[rm, cm + np.uint64(1)] += d * v2
                                    if min(sx, (c1y - mr) + (c2y - mr)) > 0.0:
                                        touched[rm, cm] = 1
                        else:
                            _accumulate_segment(ax, ay, bx, by, d, height, width, acc, touched,
                                                True)
                            # Nothing left for the runs: zero-height pieces a-a and b-b. Their
                            # touched terms are positive only for an end inside its pixel's
                            # open interior, a pixel the walk has marked anyway.
                            c1x = ax
                            c1y = ay
                            c2x = bx
                            c2y = by
                        # a-c1 ends this run, c2-b starts the next.
                        h = c1y - ay
                        sx = (ax - fac) + (c1x - fac)
                        s1 += h
                        s2 += h * sx
                        st += min(sx, (ay - far) + (c1y - far))
                        n1 = by - c2y
                        sx = (c2x - fbc) + (bx - fbc)
                        n2 = n1 * sx
                        nt = min(sx, (c2y - fbr) + (by - fbr))
                    # West of the raster a run's whole height counts for every pixel of the
                    # row; east of it, for none.
                    # Unsigned indices: numba then emits no negative-index test. Through int64:
                    # float -> uint64 takes six instructions, float -> int64 one.
                    if far >= 0.0 and far < fh:
                        r = np.uint64(np.int64(far))
                        if fac < 0.0:
                            acc[r, 0] += d * s1
                        elif fac < fw:
                            c = np.uint64(np.int64(fac))
                            v2 = 0.5 * s2
                            acc[r, c] += d * (s1 - v2)
                            acc[r, c + np.uint64(1)] += d * v2
                            if st > 0.0:
                                touched[r, c] = 1
                    s1 = n1
                    s2 = n2
                    st = nt


@kernel
def coverage_finish(acc, touched, integral, out):
    """Prefix-sum ``acc`` along rows into ``out`` (areas in pixel units, i.e. fractions).

    Where ``integral`` is true and no boundary crosses a pixel (``touched == 0``) the exact
    value is an integer (the number of polygons containing the whole pixel), so it is
    rounded: empty pixels are exactly 0 and fully covered ones exactly 1, with no 1e-17
    residue from the cancelling contributions of polygons further west.
    """
    height, width = out.shape
    for r in range(height):
        s = 0.0
        for c in range(width):
            s += acc[r, c]
            if integral and touched[r, c] == 0:
                out[r, c] = math.floor(s + 0.5)
            else:
                out[r, c] = s
