"""Validity pre-screen: proves single-ring polygons simple with certain orientation tests."""

import numpy as np

from fastraster.kernels._jit import kernel
from fastraster.kernels._rings import _ORIENT_ERR, _orient_certain

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
