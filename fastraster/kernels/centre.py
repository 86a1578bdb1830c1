"""Pixel-centre counts with GDAL's rule (equal to ``rasterio.features.rasterize(MergeAlg.add)``)."""

import math

import numpy as np

from fastraster.kernels._jit import kernel
from fastraster.kernels._rings import _ring_orientation

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
