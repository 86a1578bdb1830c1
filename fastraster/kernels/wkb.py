"""WKB decoding straight into the ragged MultiPolygon layout."""

import numpy as np

from fastraster.kernels._jit import kernel

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
