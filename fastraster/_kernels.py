"""numba kernels: the only compiled code in fastraster.

Everything here is ``@kernel`` (``njit(cache=True, nogil=True)``), takes and returns numpy
arrays and scalars only, never raises and never allocates Python objects. Validation,
allocation and the choice of kernel live in the API modules (:mod:`fastraster.rasterize`,
:mod:`fastraster.geometry`); this module imports nothing from the package.

Conventions shared by all raster kernels
----------------------------------------
* Geometry arrives as GeoArrow-style ragged arrays in the MultiPolygon layout: coordinates
  ``x``, ``y`` (float64, CRS units), ``ring_offsets`` (into coordinates), ``part_offsets``
  (into rings) and ``geom_offsets`` (into parts). The first ring of each part is its
  exterior; rings may have any orientation and need not repeat their first vertex.
* Pixel coordinates: ``px = (x - x0) / dx`` and ``py = (y0 - y) / dy`` with ``dx, dy > 0``,
  so the raster is ``height`` x ``width`` pixels, row 0 is the north edge and pixel
  ``(r, c)`` is the square ``[c, c + 1] x [r, r + 1]``.
* Outputs are float64 or int arrays of shape ``(height, width)`` indexed ``[row, col]``.
"""

import math

import numpy as np
from numba import njit

#: The one decorator for every kernel: cached to disk (fast worker start-up) and free of the
#: GIL (so joblib's threading backend runs kernels in parallel). ``error_model="numpy"``: a
#: division by zero gives inf or NaN instead of raising, so no kernel can raise and numba
#: emits no zero test in front of every division of the inner loops.
kernel = njit(cache=True, nogil=True, error_model="numpy")


# ---------------------------------------------------------------------------------------------
# Ring orientation
# ---------------------------------------------------------------------------------------------


@kernel
def _ring_orientation(x, y, start, stop):
    """Sign of the shoelace area of ring ``[start, stop)`` in CRS axes (+1 CCW, -1 CW, 0 flat).

    The sum is taken relative to the first vertex so that large absolute coordinates
    (longitudes near -146 degrees) do not swamp the small cross products of a 10 m polygon.
    """
    if stop - start < 3:
        return 0
    xr = x[start]
    yr = y[start]
    s = 0.0
    for i in range(start, stop - 1):
        s += (x[i] - xr) * (y[i + 1] - yr) - (x[i + 1] - xr) * (y[i] - yr)
    # Implicit closing segment (a no-op when the ring repeats its first vertex).
    s += (x[stop - 1] - xr) * (y[start] - yr) - (x[start] - xr) * (y[stop - 1] - yr)
    if s > 0.0:
        return 1
    if s < 0.0:
        return -1
    return 0


@kernel
def _ring_sign(x, y, start, stop, is_exterior):
    """Multiplier that makes a ring add area if it is an exterior and remove it if a hole.

    In pixel coordinates (y down) a ring that is counter-clockwise in CRS axes walks its left
    edges downward, which the accumulation below counts as +1; so exteriors keep their CRS
    orientation sign and holes take the opposite one, whatever the input orientation was.
    """
    o = _ring_orientation(x, y, start, stop)
    return o if is_exterior else -o


# Shewchuk's bound for the float error of orient2d: a result smaller in magnitude than this
# fraction of |detleft| + |detright| may have the wrong sign.
_ORIENT_ERR = 3.3306690738754716e-16


@kernel
def _orient_certain(ax, ay, bx, by, cx, cy):
    """Sign of orient2d(a, b, c) (+1 left turn, -1 right turn), or 0 when not certain."""
    left = (bx - ax) * (cy - ay)
    right = (by - ay) * (cx - ax)
    det = left - right
    bound = _ORIENT_ERR * (abs(left) + abs(right))
    if det > bound:
        return 1
    if det < -bound:
        return -1
    return 0


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


# ---------------------------------------------------------------------------------------------
# Pixel-centre counts (the GDAL / rasterio.features.rasterize rule)
# ---------------------------------------------------------------------------------------------


@kernel
def _centre_crossings(ax, ay, bx, by, d, height, width, wacc):
    """Add the crossings of one segment with the scanlines through pixel centres.

    GDAL's rule: on scanline ``y = r + 0.5`` an edge with ``y1 < y2`` counts when
    ``y1 <= y < y2`` (horizontal edges never), at ``x = (y - y1) * (x2 - x1) / (y2 - y1) + x1``,
    and the pixels ``c`` with ``x_in < c + 0.5 <= x_out`` are inside. So a crossing at x starts
    or ends coverage at column ``floor(x + 0.5)``, which a prefix sum along the row resolves.
    """
    if ay == by:
        return
    if ay > by:
        ax, ay, bx, by = bx, by, ax, ay
        d = -d
    # np.ceil/np.floor (float results) and clipping before the conversion to int: numba's
    # math.ceil returns int64, and a far-away vertex (a garbage but finite coordinate becomes
    # inf once divided by the pixel size) then overflowed into an undefined row index that
    # wrote outside ``wacc`` (found by fuzzing under NUMBA_BOUNDSCHECK).
    r0f = np.ceil(ay - 0.5)
    r1f = np.ceil(by - 0.5)  # exclusive: the centre r + 0.5 < by
    if not (r0f < height and r1f > 0.0):  # also false for NaN
        return
    r0 = int(max(r0f, 0.0))
    r1 = int(min(r1f, float(height)))
    for r in range(r0, r1):
        yc = r + 0.5
        if yc < ay:  # guard against ceil rounding
            continue
        xc = (yc - ay) * (bx - ax) / (by - ay) + ax
        k = np.floor(xc + 0.5)
        if k > width:
            k = float(width)
        elif not k >= 0.0:  # negative, or NaN from inf - inf (only garbage input gets here)
            k = 0.0
        wacc[r, int(k)] += d


@kernel
def _part_span_starts(x, y, ring_offsets, first_ring, last_ring, ix0, idx, iy0, idy, yc):
    """Sorted rounded crossings of one part's edges with scanline ``yc`` (GDAL's fill ints)."""
    n = 0
    for k in range(first_ring, last_ring):
        n += ring_offsets[k + 1] - ring_offsets[k] + 1
    ints = np.empty(n, np.float64)
    m = 0
    for k in range(first_ring, last_ring):
        start = ring_offsets[k]
        stop = ring_offsets[k + 1]
        for i in range(start, stop):
            j = i + 1 if i + 1 < stop else start
            ay = iy0 + y[i] * idy
            by = iy0 + y[j] * idy
            ax = ix0 + x[i] * idx
            bx = ix0 + x[j] * idx
            if ay == by:
                continue
            if ay > by:
                ax, ay, bx, by = bx, by, ax, ay
            if yc >= ay and yc < by:
                ints[m] = np.floor((yc - ay) * (bx - ax) / (by - ay) + ax + 0.5)
                m += 1
    return np.sort(ints[:m])


@kernel
def _horizontal_on_centre(x, y, ring_offsets, first_ring, last_ring, k, i, j, orient,
                          ix0, idx, iy0, idy, d, width, wacc):
    """GDAL's extra burn for a horizontal edge lying exactly on a scanline.

    GDAL makes every ring clockwise in world coordinates and then burns a horizontal edge on
    the scanline when it runs right to left (``[floor(x_right + .5), floor(x_left + .5))``),
    unless one of the part's fill spans on that row starts at the same column (its guard
    against burning twice in ADD mode; it does not catch every overlap, so neither do we).
    """
    py = iy0 + y[i] * idy
    r = math.floor(py)
    if py - r != 0.5:
        return
    if r < 0 or r >= wacc.shape[0]:
        return
    xa = ix0 + x[i] * idx
    xb = ix0 + x[j] * idx
    if orient > 0:  # counter-clockwise ring: GDAL walks it reversed
        xa, xb = xb, xa
    if not xa > xb:
        return
    # np.floor: a float, so an infinite x (garbage input) compares as such instead of
    # becoming an undefined int64.
    h1 = np.floor(xb + 0.5)
    h2 = np.floor(xa + 0.5)
    if h1 > width - 1 or h2 <= 0:
        return
    ints = _part_span_starts(x, y, ring_offsets, first_ring, last_ring, ix0, idx, iy0, idy,
                             r + 0.5)
    for q in range(0, ints.shape[0] - 1, 2):
        if ints[q] == h1:
            return
    a = int(max(h1, 0.0))
    b = int(min(h2, float(width)))
    if b > a:
        wacc[int(r), a] += d
        wacc[int(r), b] -= d


@kernel
def centre_accumulate(x, y, ring_offsets, part_offsets, geom_offsets, weights,
                      ix0, idx, iy0, idy, wacc):
    """Accumulate, per geometry, the winding of pixel centres into ``wacc`` (height, width+1).

    Reproduces ``rasterio.features.rasterize(..., merge_alg=MergeAlg.add)`` (GDAL's
    scanline fill) pixel for pixel, including its quirk for horizontal edges on a scanline.
    Pixel coordinates follow GDAL's inverse geotransform exactly: ``px = ix0 + x * idx`` and
    ``py = iy0 + y * idy`` (``idy < 0``), so decisions at pixel centres round as GDAL's do.
    With ring signs normalised, the prefix sum of ``wacc`` along a row is the weighted number
    of polygons containing each pixel centre (see :func:`prefix_sum_rows`). Like rasterio,
    the parts of a MultiPolygon are burned separately (overlapping parts count twice).
    """
    height = wacc.shape[0]
    width = wacc.shape[1] - 1
    n_geoms = geom_offsets.shape[0] - 1
    for g in range(n_geoms):
        w = weights[g]
        for p in range(geom_offsets[g], geom_offsets[g + 1]):
            first_ring = part_offsets[p]
            last_ring = part_offsets[p + 1]
            for k in range(first_ring, last_ring):
                start = ring_offsets[k]
                stop = ring_offsets[k + 1]
                o = _ring_orientation(x, y, start, stop)
                s = o if k == first_ring else -o
                if s == 0:
                    continue
                d = s * w
                by = iy0 + y[start] * idy
                bx = ix0 + x[start] * idx
                for i in range(start + 1, stop + 1):
                    j = i if i < stop else start
                    ax = bx
                    ay = by
                    bx = ix0 + x[j] * idx
                    by = iy0 + y[j] * idy
                    if ay == by:
                        _horizontal_on_centre(x, y, ring_offsets, first_ring, last_ring, k,
                                              i - 1, j, o, ix0, idx, iy0, idy, w, width,
                                              wacc)
                    elif (math.ceil(min(ay, by) - 0.5) != math.ceil(max(ay, by) - 0.5)):
                        # (most edges cross no scanline through pixel centres)
                        _centre_crossings(ax, ay, bx, by, d, height, width, wacc)


@kernel
def prefix_sum_rows(acc, out):
    """``out[r, c] = sum(acc[r, :c + 1])`` for the first ``out.shape[1]`` columns."""
    height, width = out.shape
    for r in range(height):
        s = 0.0
        for c in range(width):
            s += acc[r, c]
            out[r, c] = s


# ---------------------------------------------------------------------------------------------
# Per-polygon pixel sets: positive-area overlap ("touching") with a reduction over polygons
# ---------------------------------------------------------------------------------------------

REDUCE_SUM = 0
REDUCE_MIN = 1
REDUCE_MAX = 2

#: Pixel coordinates beyond which touching_reduce stops trusting a polygon's bounding box
#: (2**40 pixels: 6 million degrees at z13; only garbage coordinates get there).
_FAR_PX = 2.0**40


@kernel
def _reduce_into(out, r, c, v, mode):
    if mode == REDUCE_SUM:
        out[r, c] += v
    elif mode == REDUCE_MIN:
        if v < out[r, c] or math.isnan(out[r, c]):
            out[r, c] = v
    else:
        if v > out[r, c] or math.isnan(out[r, c]):
            out[r, c] = v


@kernel
def touching_reduce(x, y, ring_offsets, part_offsets, geom_offsets, values, mode,
                    x0, dx, y0, dy, out, scratch_touched, scratch_wacc):
    """Reduce ``values`` over the polygons that overlap each pixel with positive area.

    A polygon overlaps a pixel's interior iff its boundary crosses the open pixel (marked by
    the same edge walk as :func:`coverage_accumulate`) or the pixel lies wholly inside it,
    which, for an uncrossed pixel, its centre decides. Each polygon is handled in a scratch
    window the size of its bounding box, which is cleared again afterwards.

    Parameters
    ----------
    values : float64 array, one per geometry
    mode : int
        ``REDUCE_SUM`` (``out += v``; with v = 1 a count), ``REDUCE_MIN`` or ``REDUCE_MAX``
        (``out`` must then start as NaN, meaning "no polygon").
    out : float64 array (height, width)
    scratch_wacc : float64 array (height, width + 1), all zero, left all zero
    scratch_touched : uint8 array (height, width), all zero, left all zero
    """
    height, width = out.shape
    no_area = np.zeros((1, 1))  # the edge walk below only marks; it writes no area
    n_geoms = geom_offsets.shape[0] - 1
    for g in range(n_geoms):
        c_start = ring_offsets[part_offsets[geom_offsets[g]]]
        c_stop = ring_offsets[part_offsets[geom_offsets[g + 1]]]
        if c_stop <= c_start:
            continue
        # Bounding box in pixels, clipped to the raster.
        xmin = np.inf
        xmax = -np.inf
        ymin = np.inf
        ymax = -np.inf
        for i in range(c_start, c_stop):
            px = (x[i] - x0) / dx
            py = (y0 - y[i]) / dy
            xmin = min(xmin, px)
            xmax = max(xmax, px)
            ymin = min(ymin, py)
            ymax = max(ymax, py)
        # Written so that NaN (inf - inf from garbage input) skips the polygon, and clipped
        # as floats before the conversion to int: a far-away vertex (finite, but inf after
        # the division by the pixel size) overflowed int64 into a negative window end.
        if not (xmax > 0.0 and ymax > 0.0 and xmin < width and ymin < height):
            continue
        c0 = int(max(np.floor(xmin), 0.0))
        c1 = int(min(np.floor(xmax) + 1.0, float(width)))
        r0 = int(max(np.floor(ymin), 0.0))
        r1 = int(min(np.floor(ymax) + 1.0, float(height)))
        if not (xmin > -_FAR_PX and xmax < _FAR_PX and ymin > -_FAR_PX and ymax < _FAR_PX):
            # A vertex absurdly far away (a garbage coordinate) leaves no sub-pixel precision
            # in the crossing arithmetic: its marks may land outside the bounding box, so
            # clear the whole raster after this polygon (found by fuzzing: a vertex at
            # -1e300 degrees left marks behind that other polygons then picked up).
            c0, c1, r0, r1 = 0, width, 0, height
        for p in range(geom_offsets[g], geom_offsets[g + 1]):
            first_ring = part_offsets[p]
            for k in range(first_ring, part_offsets[p + 1]):
                start = ring_offsets[k]
                stop = ring_offsets[k + 1]
                s = _ring_sign(x, y, start, stop, k == first_ring)
                if s == 0:
                    continue
                bx = (x[start] - x0) / dx
                by = (y0 - y[start]) / dy
                for i in range(start + 1, stop + 1):
                    j = i if i < stop else start
                    ax = bx
                    ay = by
                    bx = (x[j] - x0) / dx
                    by = (y0 - y[j]) / dy
                    _accumulate_segment(ax, ay, bx, by, 1.0 * s, height, width, no_area,
                                        scratch_touched, False)
                    _centre_crossings(ax, ay, bx, by, 1.0 * s, height, width, scratch_wacc)
        # Every mark and crossing of this polygon lies in rows [r0, r1) and columns
        # [c0, c1] (a crossing at x lands in column floor(x + 0.5) <= c1), so only that
        # window is read and cleared.
        v = values[g]
        for r in range(r0, r1):
            wind = 0.0
            for c in range(c0, c1):
                wind += scratch_wacc[r, c]
                if scratch_touched[r, c] != 0 or wind > 0.5:
                    _reduce_into(out, r, c, v, mode)
                scratch_touched[r, c] = 0
                scratch_wacc[r, c] = 0.0
            scratch_wacc[r, c1] = 0.0


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


@kernel
def no_data_mask(touched, coverage, centroid_index, out):
    """``out[r, c] = True`` where no polygon has area in pixel (r, c) and no centroid falls.

    A pixel has polygon area if some boundary crosses its open interior (``touched``) or its
    summed coverage is not zero (it lies inside a polygon); ``centroid_index`` holds flat
    pixel indices as from :func:`centroid_pixels` (-1: none).
    """
    height, width = out.shape
    for r in range(height):
        for c in range(width):
            out[r, c] = touched[r, c] == 0 and coverage[r, c] == 0.0
    flat = out.reshape(-1)
    for i in range(centroid_index.shape[0]):
        k = centroid_index[i]
        if k >= 0:
            flat[k] = False


@kernel
def scatter_reduce(index, values, mode, out):
    """Reduce ``values[i]`` into ``out.flat[index[i]]`` for every ``index[i] >= 0``.

    ``mode`` as in :func:`touching_reduce`; for MIN and MAX ``out`` starts as NaN.
    """
    flat = out.reshape(-1)
    for i in range(index.shape[0]):
        k = index[i]
        if k < 0:
            continue
        v = values[i]
        if mode == REDUCE_SUM:
            flat[k] += v
        elif mode == REDUCE_MIN:
            if v < flat[k] or math.isnan(flat[k]):
                flat[k] = v
        else:
            if v > flat[k] or math.isnan(flat[k]):
                flat[k] = v


# ---------------------------------------------------------------------------------------------
# Band summaries
# ---------------------------------------------------------------------------------------------


@kernel
def _float32_from_key(key):
    """The float32 (as float64) whose order-preserving key is ``key`` (see float32_median)."""
    bits = key ^ 0x80000000 if key >= 0x80000000 else key ^ 0xFFFFFFFF
    word = np.empty(1, np.uint32)
    word[0] = bits
    return np.float64(word.view(np.float32)[0])


@kernel
def float32_median(a):
    """``np.median(a.astype(float64))`` of a non-empty float32 array without NaN, exactly.

    A radix selection instead of a partition: each float32's bits become an unsigned key
    that sorts as the values do (sign bit flipped for positives, all bits for negatives);
    a histogram of the top 16 bits finds the 65,536th of the key range holding each middle
    rank, a second pass the low 16 bits within it. Two passes over the data, no data
    movement. An even count averages the two middle values in float64, as numpy does.
    """
    n = a.shape[0]
    bits = a.view(np.uint32)
    high = np.zeros(65536, np.int32)
    for i in range(n):
        b = np.int64(bits[i])
        high[(b ^ (((b >> 31) * 0x7FFFFFFF) | 0x80000000)) >> 16] += 1
    k_lo = (n - 1) // 2
    k_hi = n // 2
    below = 0
    top = 0
    while below + high[top] <= k_lo:
        below += high[top]
        top += 1
    r_lo = k_lo - below
    top_hi = top
    below_hi = below
    while below_hi + high[top_hi] <= k_hi:
        below_hi += high[top_hi]
        top_hi += 1
    r_hi = k_hi - below_hi
    # Low 16 bits of the keys in the two top bins (usually the same one).
    low = np.zeros(65536, np.int32)
    low_hi = np.zeros(65536 if top_hi != top else 1, np.int32)
    for i in range(n):
        b = np.int64(bits[i])
        key = b ^ (((b >> 31) * 0x7FFFFFFF) | 0x80000000)
        t = key >> 16
        if t == top:
            low[key & 0xFFFF] += 1
        elif t == top_hi:
            low_hi[key & 0xFFFF] += 1
    if top_hi == top:
        low_hi = low
    below = 0
    bottom = 0
    while below + low[bottom] <= r_lo:
        below += low[bottom]
        bottom += 1
    lo = _float32_from_key((top << 16) | bottom)
    if n % 2 == 1:
        return lo
    below = 0
    bottom = 0
    while below + low_hi[bottom] <= r_hi:
        below += low_hi[bottom]
        bottom += 1
    return (lo + _float32_from_key((top_hi << 16) | bottom)) / 2.0


# ---------------------------------------------------------------------------------------------
# WKB decoding straight into the ragged MultiPolygon layout
# ---------------------------------------------------------------------------------------------
#
# Hand-written because no library decodes WKB into GeoArrow offsets without building shapely
# objects first (shapely.from_wkb + to_ragged_array costs ~6 us per small polygon, ~20x this).

WKB_OK = 0
WKB_NULL = 1
WKB_UNSUPPORTED_TYPE = 2
WKB_TRUNCATED = 3
#: A NaN or infinite x or y: corrupt data (issue 12), refused whatever the validate mode,
#: since any area or centroid measured from it would be made up. (Z and M are dropped
#: unread.) Checked while the coordinates are copied.
WKB_NONFINITE = 4
#: A ring of 1 or 2 points: no ring at all (GEOS cannot even build it), so corrupt data too.
#: Rings of 0 points (empty) and unclosed rings of 3 or more are accepted: the kernels
#: close rings implicitly.
WKB_SHORT_RING = 5
#: A byte-order byte other than 0 or 1.
WKB_MALFORMED = 6

# Bits of the flags _wkb_polygon returns.
_FLAG_NONFINITE = 1
_FLAG_SHORT_RING = 2
_DBL_MAX = 1.7976931348623157e308


@kernel
def _u32(buf, pos, little):
    if little:
        return (np.int64(buf[pos]) | (np.int64(buf[pos + 1]) << 8)
                | (np.int64(buf[pos + 2]) << 16) | (np.int64(buf[pos + 3]) << 24))
    return (np.int64(buf[pos + 3]) | (np.int64(buf[pos + 2]) << 8)
            | (np.int64(buf[pos + 1]) << 16) | (np.int64(buf[pos]) << 24))


@kernel
def _f64(buf, pos, little, bits, as_float):
    v = np.uint64(0)
    if little:
        for k in range(8):
            v |= np.uint64(buf[pos + k]) << np.uint64(8 * k)
    else:
        for k in range(8):
            v |= np.uint64(buf[pos + k]) << np.uint64(8 * (7 - k))
    bits[0] = v
    return as_float[0]


@kernel
def _wkb_header(buf, pos, end):
    """Return (little, base_type, n_dims, pos_after_header), or base_type -1 if truncated,
    -2 if the byte-order byte is neither 0 nor 1."""
    if pos + 5 > end:
        return False, -1, 0, pos
    if buf[pos] > 1:
        # Was read as big-endian: a flipped byte-order byte then made garbage counts or
        # types, reported as "not a Polygon" (found by fuzzing). GEOS refuses it too.
        return False, -2, 0, pos
    little = buf[pos] == 1
    t = _u32(buf, pos + 1, little)
    pos += 5
    has_z = False
    has_m = False
    if t & 0x20000000:  # EWKB SRID flag: skip the SRID
        pos += 4
    if t & 0x80000000:
        has_z = True
    if t & 0x40000000:
        has_m = True
    t = t & 0x0FFFFFFF
    if t >= 3000:
        has_z = True
        has_m = True
        t -= 3000
    elif t >= 2000:
        has_m = True
        t -= 2000
    elif t >= 1000:
        has_z = True
        t -= 1000
    return little, t, 2 + int(has_z) + int(has_m), pos


@kernel
def _wkb_polygon(buf, pos, end, little, ndim, x, y, ring_offsets, ci, ri, bits, as_float,
                 native_little):
    """Copy the coordinates of the WKB Polygon body at ``pos``, checking every length.

    Returns (pos after it, n_coords, n_rings, flags), or pos -1 if the body runs past
    ``end``, -2 if ``x``/``y`` or ``ring_offsets`` are too short. ``flags`` has
    ``_FLAG_NONFINITE`` set if some x or y is NaN or infinite, ``_FLAG_SHORT_RING`` if some
    ring has 1 or 2 points. Coordinates in the host's byte order are read through a float64
    view of the (possibly unaligned) bytes, ~10x faster than assembling each double from its
    bytes.
    """
    if pos + 4 > end:
        return -1, 0, 0, 0
    n_rings = _u32(buf, pos, little)
    pos += 4
    n_coords = 0
    # Finite test while copying: |v| <= DBL_MAX is false exactly for NaN and +-inf; and-ed
    # without branches or early exit.
    finite = True
    short = False
    for k_ring in range(n_rings):
        if pos + 4 > end:
            return -1, 0, 0, 0
        n_pts = _u32(buf, pos, little)
        pos += 4
        nb = n_pts * ndim * 8
        if pos + nb > end:
            return -1, 0, 0, 0
        o = ci + n_coords
        if o + n_pts > x.shape[0] or ri + k_ring + 1 >= ring_offsets.shape[0]:
            return -2, 0, 0, 0
        short |= (n_pts == 1) | (n_pts == 2)
        if little == native_little:
            # Slices indexed from 0: numba drops its negative-index test, LLVM vectorises.
            v = buf[pos:pos + nb].view(np.float64)
            xo = x[o:o + n_pts]
            yo = y[o:o + n_pts]
            ok = True
            if ndim == 2:
                # The constant stride lets LLVM vectorise the copy, which pays for the
                # finite test (side by side: benchmarks/kernels_before_after.py).
                for k in range(n_pts):
                    xv = v[2 * k]
                    yv = v[2 * k + 1]
                    xo[k] = xv
                    yo[k] = yv
                    ok &= (abs(xv) <= _DBL_MAX) & (abs(yv) <= _DBL_MAX)
            else:
                for k in range(n_pts):
                    xv = v[k * ndim]
                    yv = v[k * ndim + 1]
                    xo[k] = xv
                    yo[k] = yv
                    ok &= (abs(xv) <= _DBL_MAX) & (abs(yv) <= _DBL_MAX)
            finite &= ok
        else:
            for k in range(n_pts):
                q = pos + k * ndim * 8
                xv = _f64(buf, q, little, bits, as_float)
                yv = _f64(buf, q + 8, little, bits, as_float)
                x[o + k] = xv
                y[o + k] = yv
                finite &= (abs(xv) <= _DBL_MAX) & (abs(yv) <= _DBL_MAX)
        ring_offsets[ri + k_ring + 1] = o + n_pts
        pos += nb
        n_coords += n_pts
    flags = (0 if finite else _FLAG_NONFINITE) | (_FLAG_SHORT_RING if short else 0)
    return pos, n_coords, n_rings, flags


@kernel
def wkb_decode(data, offsets, valid, status, x, y, ring_offsets, part_offsets, geom_offsets,
               native_little):
    """Decode WKB Polygons/MultiPolygons (2-D, Z, M or ZM; either byte order; ISO or EWKB).

    One pass, into output arrays the caller sizes from the byte count: a separate counting
    pass cost as much again, all of it waiting on memory. If an output array turns out too
    short, it stops and returns (-1, -1, -1); the caller then retries with room enough for any
    input (a coordinate takes at least 16 bytes, a ring 4, a polygon 9). Writes ``status[i]``:
    ``WKB_OK``, ``WKB_NULL`` for null or empty, ``WKB_UNSUPPORTED_TYPE``, ``WKB_TRUNCATED``,
    ``WKB_MALFORMED`` (a byte-order byte neither 0 nor 1), and for corrupt data in
    well-formed WKB ``WKB_NONFINITE`` (a NaN or infinite x or y; it wins) or
    ``WKB_SHORT_RING`` (a ring of 1 or 2 points). Geometries that are not ``WKB_OK`` become
    empty (their partial output is rolled back). Z and M values are skipped unread; bytes
    after a geometry's end, within its entry, are ignored.

    Parameters
    ----------
    data : uint8 array
        The concatenated WKB bytes (an Arrow binary array's data buffer).
    offsets : int64 array (n + 1)
        Start of each geometry's bytes in ``data``.
    valid : bool array (n)
        False for null entries.
    status : int8 array (n)
        Output.
    x, y, ring_offsets, part_offsets, geom_offsets : arrays
        Outputs, the MultiPolygon layout; ``geom_offsets`` has n + 1 entries, the others at
        least their upper bound.
    native_little : bool
        True on a little-endian host (coordinates in host order are read through a view).

    Returns
    -------
    (n_coords, n_rings, n_parts) : the used lengths of ``x``/``y`` and the counts of rings and
    parts (``ring_offsets`` and ``part_offsets`` hold one more entry each).
    """
    bits = np.zeros(1, np.uint64)
    as_float = bits.view(np.float64)
    n = offsets.shape[0] - 1
    ci = 0
    ri = 0
    pi = 0
    ring_offsets[0] = 0
    part_offsets[0] = 0
    geom_offsets[0] = 0
    for i in range(n):
        start = offsets[i]
        end = offsets[i + 1]
        ci0 = ci
        ri0 = ri
        pi0 = pi
        st = WKB_OK
        flags = 0
        if not valid[i] or end <= start:
            st = WKB_NULL
        else:
            little, t, ndim, pos = _wkb_header(data, start, end)
            if t == -1:
                st = WKB_TRUNCATED
            elif t == -2:
                st = WKB_MALFORMED
            elif t == 3:
                pos, nc, nr, fl = _wkb_polygon(data, pos, end, little, ndim, x, y,
                                               ring_offsets, ci, ri, bits, as_float,
                                               native_little)
                flags |= fl
                if pos == -2 or (nr > 0 and pi + 1 >= part_offsets.shape[0]):
                    return -1, -1, -1
                if pos < 0:
                    st = WKB_TRUNCATED
                elif nr == 0:
                    st = WKB_NULL
                else:
                    ci += nc
                    ri += nr
                    pi += 1
                    part_offsets[pi] = ri
            elif t == 6:
                if pos + 4 > end:
                    st = WKB_TRUNCATED
                else:
                    n_parts = _u32(data, pos, little)
                    pos += 4
                    if n_parts == 0:
                        st = WKB_NULL
                    for _ in range(n_parts):
                        little2, t2, ndim2, pos = _wkb_header(data, pos, end)
                        if t2 == -1:
                            st = WKB_TRUNCATED
                            break
                        if t2 == -2:
                            st = WKB_MALFORMED
                            break
                        if t2 != 3:
                            st = WKB_UNSUPPORTED_TYPE
                            break
                        pos, nc, nr, fl = _wkb_polygon(data, pos, end, little2, ndim2, x,
                                                       y, ring_offsets, ci, ri, bits,
                                                       as_float, native_little)
                        flags |= fl
                        if pos == -2 or pi + 1 >= part_offsets.shape[0]:
                            return -1, -1, -1
                        if pos < 0:
                            st = WKB_TRUNCATED
                            break
                        ci += nc
                        ri += nr
                        pi += 1
                        part_offsets[pi] = ri
            else:
                st = WKB_UNSUPPORTED_TYPE
        if st == WKB_OK and flags != 0:
            # Well-formed but corrupt data (a malformed geometry reports that instead).
            st = WKB_NONFINITE if flags & _FLAG_NONFINITE else WKB_SHORT_RING
        if st != WKB_OK:
            ci = ci0
            ri = ri0
            pi = pi0
        status[i] = st
        geom_offsets[i + 1] = pi
    return ci, ri, pi


# ---------------------------------------------------------------------------------------------
# Validity pre-screen
# ---------------------------------------------------------------------------------------------

@kernel
def _star_orientation(x, y, start, stop):
    """+1 (-1) if the closed ring is certainly star-shaped around its bounding-box centre P
    and counter-clockwise (clockwise), hence simple with that orientation; 0 if not proven.

    If every triangle (P, v_i, v_i+1) has the same certain, non-zero orientation, the angle
    of v around P changes monotonically along the ring; if the ring then crosses the ray
    from P in +x direction exactly once, that angle turns exactly once around, so every ray
    from P meets the ring once: the ring is simple. O(n) instead of O(n^2) pair tests; most
    ice-wedge polygons pass, the rest fall back to the pairwise test.

    One error bound serves the whole ring: Shewchuk's bound for orient2d grows with
    ``|left| + |right|``, and both products are at most ``ex * ey`` (the largest offsets of a
    vertex from P, which rounding keeps monotone), so ``2 ex ey`` bounds every edge's sum.
    The loops run over slices from index 0: numba then knows the indices are not negative,
    drops its wrap-around test and LLVM vectorises them (2x faster than indexing from
    ``start``).
    """
    n = stop - start - 1
    xs = x[start:stop]
    ys = y[start:stop]
    xmin = xs[0]
    xmax = xmin
    ymin = ys[0]
    ymax = ymin
    for i in range(1, n):
        xmin = min(xmin, xs[i])
        xmax = max(xmax, xs[i])
        ymin = min(ymin, ys[i])
        ymax = max(ymax, ys[i])
    px = 0.5 * (xmin + xmax)
    py = 0.5 * (ymin + ymax)
    ex = max(xmax - px, px - xmin)
    ey = max(ymax - py, py - ymin)
    bound = _ORIENT_ERR * (2.0 * (ex * ey))
    # Branch-free integer counts (an early exit cost more in mispredictions than it saved).
    n_left = 0
    n_right = 0
    up = 0
    down = 0
    for i in range(n):
        det = (xs[i] - px) * (ys[i + 1] - py) - (ys[i] - py) * (xs[i + 1] - px)
        n_left += np.int64(det > bound)
        n_right += np.int64(det < -bound)
        # Counter-clockwise rings cross the +x ray going up, clockwise ones going down.
        below = np.int64(ys[i] < py)
        below_next = np.int64(ys[i + 1] < py)
        up += below * (1 - below_next)
        down += below_next * (1 - below)
    if n_left == n and up == 1:
        return 1
    if n_right == n and down == 1:
        return -1
    return 0


@kernel
def certainly_simple(x, y, ring_offsets, part_offsets, geom_offsets, out):
    """``out[g] = True`` when geometry g is provably a valid single-ring polygon.

    A closed ring of at least 4 vertices in which no two non-adjacent edges meet and no two
    adjacent edges fold back onto each other bounds a simple polygon, which GEOS deems
    valid and which the kernels measure exactly. Every decision is made with orientation
    signs that are certain despite rounding; anything degenerate, near-degenerate, with
    holes or with several parts gets ``False`` (to be checked by GEOS instead).
    """
    n_geoms = geom_offsets.shape[0] - 1
    for g in range(n_geoms):
        out[g] = False
        if geom_offsets[g + 1] - geom_offsets[g] != 1:
            continue
        p = geom_offsets[g]
        if part_offsets[p + 1] - part_offsets[p] != 1:
            continue
        k = part_offsets[p]
        start = ring_offsets[k]
        stop = ring_offsets[k + 1]
        m = stop - start - 1  # number of edges; edge e joins vertices start+e, start+e+1
        if m < 3 or x[start] != x[stop - 1] or y[start] != y[stop - 1]:
            continue
        if _star_orientation(x, y, start, stop) != 0:
            out[g] = True
            continue
        ok = True
        for e in range(m):
            if not ok:
                break
            i = start + e
            ax, ay, bx, by = x[i], y[i], x[i + 1], y[i + 1]
            if ax == bx and ay == by:
                ok = False  # repeated vertex: legal for GEOS, but leave it to GEOS
                break
            exmin, exmax = min(ax, bx), max(ax, bx)
            eymin, eymax = min(ay, by), max(ay, by)
            for f in range(e + 1, m):
                j = start + f
                cx, cy, dx, dy = x[j], y[j], x[j + 1], y[j + 1]
                adjacent_next = f == e + 1
                adjacent_wrap = e == 0 and f == m - 1
                if adjacent_next or adjacent_wrap:
                    # Adjacent edges share one vertex; they must not be collinear (a spike
                    # or an overlap folds the ring onto itself).
                    if adjacent_next:
                        o = _orient_certain(ax, ay, bx, by, dx, dy)
                    else:
                        o = _orient_certain(ax, ay, bx, by, cx, cy)
                    if o == 0:
                        ok = False
                        break
                    continue
                if (max(cx, dx) < exmin or min(cx, dx) > exmax or max(cy, dy) < eymin
                        or min(cy, dy) > eymax):
                    continue
                o1 = _orient_certain(ax, ay, bx, by, cx, cy)
                o2 = _orient_certain(ax, ay, bx, by, dx, dy)
                o3 = _orient_certain(cx, cy, dx, dy, ax, ay)
                o4 = _orient_certain(cx, cy, dx, dy, bx, by)
                if o1 == 0 or o2 == 0 or o3 == 0 or o4 == 0:
                    ok = False  # touching or too close to call
                    break
                if o1 != o2 and o3 != o4:
                    ok = False  # proper crossing
                    break
        out[g] = ok
