"""Per-polygon pixel sets: positive-area overlap ("touching"), reduced over polygons."""

import numpy as np

from fastraster.kernels._jit import kernel
from fastraster.kernels._rings import _ring_sign
from fastraster.kernels.centre import _centre_crossings
from fastraster.kernels.coverage import _accumulate_segment
from fastraster.kernels.reduce import _reduce_into

#: Pixel coordinates beyond which touching_reduce stops trusting a polygon's bounding box
#: (2**40 pixels: 6 million degrees at z13; only garbage coordinates get there).
_FAR_PX = 2.0**40

# ---------------------------------------------------------------------------------------------
# Per-polygon pixel sets: positive-area overlap ("touching") with a reduction over polygons
# ---------------------------------------------------------------------------------------------

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
