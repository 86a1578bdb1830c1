"""Interleaved coordinates of whole geometries (``shapely.get_coordinates``) to the kernels'
separate x and y arrays, with the ring structure where it is certain.

``shapely.get_coordinates(geoms, return_index=True)`` copies every vertex out of GEOS in one
pass, as (n, 2) pairs, with the index of the geometry each came from, but says nothing about
where one ring ends and the next begins. A GEOS ring is always closed (its last vertex
repeats its first), so a geometry whose vertices return to the first one only at their very
end is certainly a single ring: a Polygon without holes. Anything else (a hole after the
exterior, a ring touching its own first vertex, NaN coordinates, a MultiPolygon) is flagged,
and :mod:`fastraster.model.ingest` asks GEOS for the rings of those geometries alone.
"""

from __future__ import annotations

from fastraster.kernels._jit import kernel


@kernel
def split_coordinates(coords, index, single_type, x, y, coord_offsets, single):
    """Split (n, 2) coordinates into ``x`` and ``y``, find each geometry's range, and flag the
    geometries that are certainly one closed ring.

    Parameters
    ----------
    coords : float64 array (m, 2)
        Vertices of all geometries, geometry after geometry (``shapely.get_coordinates``).
    index : int array (m)
        The geometry each vertex belongs to, non-decreasing (``return_index=True``).
    single_type : bool array (n)
        True for the geometries that may be one ring (Polygons); the others are never flagged
        single.
    x, y : float64 arrays (m)
        Out: the coordinates.
    coord_offsets : int64 array (n + 1)
        Out: geometry ``i`` holds vertices ``coord_offsets[i]:coord_offsets[i + 1]``.
    single : bool array (n)
        Out: True where the geometry is a single ring: ``single_type`` and the first vertex
        repeated at the last position and nowhere in between (exactly equal coordinates; NaN
        never is).

    Entries of ``index`` outside ``0 .. n - 1`` are ignored (shapely gives none).
    """
    n = single_type.shape[0]
    m = index.shape[0]
    for i in range(n + 1):
        coord_offsets[i] = 0
    for k in range(m):
        g = index[k]
        if g >= 0 and g < n:
            coord_offsets[g + 1] += 1
    for i in range(n):
        coord_offsets[i + 1] += coord_offsets[i]
    for i in range(n):
        s = coord_offsets[i]
        e = coord_offsets[i + 1]
        if e == s:
            single[i] = False
            continue
        x0 = coords[s, 0]
        y0 = coords[s, 1]
        x[s] = x0
        y[s] = y0
        back = e  # first vertex after s equal to the first one (e: none)
        for j in range(s + 1, e):
            xj = coords[j, 0]
            yj = coords[j, 1]
            x[j] = xj
            y[j] = yj
            if back == e and xj == x0 and yj == y0:
                back = j
        single[i] = single_type[i] and back == e - 1
