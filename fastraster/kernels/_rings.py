"""Ring orientation and the certain-sign orientation test, shared by several kernel families."""

from fastraster.kernels._jit import kernel


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
