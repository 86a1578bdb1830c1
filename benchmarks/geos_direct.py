"""The prototype that read GEOS directly from numba (branch ``speed``), kept for the side-by-side
measurement in ``benchmarks/entry_points.py`` only: it is not part of fastraster.

It reads shapely's private object layout (``PyObject_HEAD; GEOSGeometry *ptr``) and calls the
``libgeos_c`` shapely has loaded (found through ``/proc/self/maps``) from a numba function.
fastraster dropped it (README, "Entry points"): its gain over the object-free
``shapely.get_coordinates`` route of :mod:`fastraster.model.ingest` was measured at ~1.5-3 ms
on the dense 25k-polygon tile, and it could read a freed pointer if another thread replaced an
element of the input array while it runs without the GIL.
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys

import numpy as np
import shapely
from numba import njit
from numba import types as nbt
from numba.extending import intrinsic

from fastraster.model.geometry import RaggedPolygons

kernel = njit(cache=True, nogil=True)

# ---------------------------------------------------------------------------------------------
# GEOS, read directly from numba
# ---------------------------------------------------------------------------------------------
#
# A shapely 2 geometry is a C struct ``{PyObject_HEAD; GEOSGeometry *ptr; ...}``: the GEOS
# pointer sits right after the object header (``geom._geom`` returns it). An object ndarray
# holds ``PyObject *`` values, so a kernel given the array's data address reaches every GEOS
# geometry with two loads and no Python object. Both facts are checked before use
# (:func:`_geos_ready`): the header size against ``_geom`` on a live geometry, the library by
# looking up the symbols. GEOS calls go through a context handle of the kernel's own
# (``GEOS_init_r``), so threads running the kernel never share one.

_PTR = nbt.int64  # pointers cross as 64-bit integers (the same registers in the C ABI)
_I32 = nbt.int32
_geos_init = nbt.ExternalFunction("GEOS_init_r", _PTR())
_geos_finish = nbt.ExternalFunction("GEOS_finish_r", nbt.void(_PTR))
_geos_num_geoms = nbt.ExternalFunction("GEOSGetNumGeometries_r", _I32(_PTR, _PTR))
_geos_geom_n = nbt.ExternalFunction("GEOSGetGeometryN_r", _PTR(_PTR, _PTR, _I32))
_geos_num_interior = nbt.ExternalFunction("GEOSGetNumInteriorRings_r", _I32(_PTR, _PTR))
_geos_exterior = nbt.ExternalFunction("GEOSGetExteriorRing_r", _PTR(_PTR, _PTR))
_geos_interior_n = nbt.ExternalFunction("GEOSGetInteriorRingN_r", _PTR(_PTR, _PTR, _I32))
_geos_coord_seq = nbt.ExternalFunction("GEOSGeom_getCoordSeq_r", _PTR(_PTR, _PTR))
_geos_seq_size = nbt.ExternalFunction("GEOSCoordSeq_getSize_r", _I32(_PTR, _PTR, _PTR))
_geos_seq_to_arrays = nbt.ExternalFunction("GEOSCoordSeq_copyToArrays_r",
                                           _I32(_PTR, _PTR, _PTR, _PTR, _PTR, _PTR))
_GEOS_SYMBOLS = ("GEOS_init_r", "GEOS_finish_r", "GEOSGetNumGeometries_r", "GEOSGetGeometryN_r",
                 "GEOSGetNumInteriorRings_r", "GEOSGetExteriorRing_r", "GEOSGetInteriorRingN_r",
                 "GEOSGeom_getCoordSeq_r", "GEOSCoordSeq_getSize_r",
                 "GEOSCoordSeq_copyToArrays_r")

#: Offset of the GEOS pointer in a shapely geometry object: after ob_refcnt and ob_type.
_GEOM_PTR_OFFSET = 2 * ctypes.sizeof(ctypes.c_void_p)

_POLYGON = int(shapely.GeometryType.POLYGON)
_MULTIPOLYGON = int(shapely.GeometryType.MULTIPOLYGON)


@intrinsic
def _load_i64(typingctx, addr):
    """The 64-bit integer stored at address ``addr``."""
    from llvmlite import ir

    def codegen(context, builder, signature, args):
        return builder.load(builder.inttoptr(args[0], ir.IntType(64).as_pointer()))

    return nbt.int64(nbt.int64), codegen


@kernel
def _geos_ring(h, ring, x, y, ci, size_buf):
    """Copy one GEOS ring's coordinates to ``x[ci:]``, ``y[ci:]``; its size, or -1 if the
    output has no room for it."""
    seq = _geos_coord_seq(h, ring)
    if seq == 0 or _geos_seq_size(h, seq, size_buf.ctypes.data) == 0:
        return 0
    m = np.int64(size_buf[0])
    if ci + m > x.shape[0]:
        return -1
    if m > 0:
        _geos_seq_to_arrays(h, seq, x.ctypes.data + 8 * ci, y.ctypes.data + 8 * ci, 0, 0)
    return m


@kernel
def _geos_polygon(h, g, x, y, ring_offsets, ci, ri, size_buf):
    """Append polygon ``g``'s rings (exterior first); (coordinates, rings) added, or (-1, -1)
    when an output is full, or (0, 0) for an empty polygon (no rings, no part)."""
    n_int = _geos_num_interior(h, g)
    if n_int < 0:
        return 0, 0
    nc = 0
    nr = 0
    for k in range(n_int + 1):
        ring = _geos_exterior(h, g) if k == 0 else _geos_interior_n(h, g, k - 1)
        if ring == 0:
            return 0, 0
        m = _geos_ring(h, ring, x, y, ci + nc, size_buf)
        if m < 0 or ri + nr + 2 > ring_offsets.shape[0]:
            return -1, -1
        if k == 0 and m == 0:
            return 0, 0  # an empty exterior: an empty polygon, which adds no part
        nc += m
        nr += 1
        ring_offsets[ri + nr] = ci + nc
    return nc, nr


@kernel
def geos_to_ragged(objects_address, type_ids, start, counts, x, y, ring_offsets, part_offsets,
                   geom_offsets):
    """Fill ragged arrays (MultiPolygon layout) from shapely geometries, reading GEOS directly.

    Resumable: it starts at geometry ``start`` with ``counts`` = (coordinates, rings, parts)
    already written, and stops before the first geometry that does not fit in an output, so
    the caller can grow the outputs and call again from there (one pass over GEOS: counting
    first would visit every scattered GEOS object twice).

    Parameters
    ----------
    objects_address : int
        Address of a C-contiguous object ndarray's data: one ``PyObject *`` per geometry, each
        a shapely Polygon or MultiPolygon, or anything (e.g. None) where ``type_ids`` is not
        3 or 6.
    type_ids : int64 array (n)
        ``shapely.get_type_id`` of each entry; other types become empty geometries.
    start : int
        First geometry to read.
    counts : int64 array (3)
        In: coordinates, rings and parts written so far; out: after the last geometry read.
    x, y, ring_offsets, part_offsets, geom_offsets : arrays
        Outputs; ``geom_offsets`` has n + 1 entries.

    Returns
    -------
    int : the geometry it stopped before (n when all are done).
    """
    n = type_ids.shape[0]
    size_buf = np.zeros(1, np.uint32)
    h = _geos_init()
    ci = counts[0]
    ri = counts[1]
    pi = counts[2]
    if start == 0:
        ring_offsets[0] = 0
        part_offsets[0] = 0
        geom_offsets[0] = 0
    stop = n
    for i in range(start, n):
        t = type_ids[i]
        ci0 = ci
        ri0 = ri
        pi0 = pi
        full = False
        g = 0
        if t == 3 or t == 6:
            g = _load_i64(_load_i64(objects_address + 8 * i) + 16)
        if g != 0:
            n_parts = 1 if t == 3 else _geos_num_geoms(h, g)
            for p in range(n_parts):
                part = g if t == 3 else _geos_geom_n(h, g, p)
                nc, nr = _geos_polygon(h, part, x, y, ring_offsets, ci, ri, size_buf)
                if nc < 0 or pi + 2 > part_offsets.shape[0]:
                    full = True
                    break
                if nr > 0:
                    ci += nc
                    ri += nr
                    pi += 1
                    part_offsets[pi] = ri
        if full:
            ci = ci0
            ri = ri0
            pi = pi0
            stop = i
            break
        geom_offsets[i + 1] = pi
    _geos_finish(h)
    counts[0] = ci
    counts[1] = ri
    counts[2] = pi
    return stop


def _libgeos_c_path() -> str | None:
    """The ``libgeos_c`` that shapely has loaded into this process (Linux), else shapely's
    bundled copy (wheels ship it in ``shapely.libs``)."""
    import shapely.lib  # noqa: F401  (loads libgeos_c)

    try:
        with open("/proc/self/maps") as fh:
            for line in fh:
                path = line.rsplit(None, 1)[-1]
                if "libgeos_c" in os.path.basename(path) and os.path.exists(path):
                    return path
    except OSError:
        pass
    here = os.path.dirname(shapely.__file__)
    for pattern in ("../shapely.libs/libgeos_c*", "../Shapely.libs/libgeos_c*",
                    ".dylibs/libgeos_c*"):
        found = sorted(glob.glob(os.path.join(here, pattern)))
        if found:
            return found[0]
    return None


_GEOS_STATE: list = []  # [bool] once checked


def _geos_ready() -> bool:
    """True if :func:`geos_to_ragged` can run here (checked once per process)."""
    if _GEOS_STATE:
        return _GEOS_STATE[0]
    ok = False
    try:
        import numba

        if numba.config.DISABLE_JIT:  # GEOS calls exist only in compiled code
            raise RuntimeError("numba's JIT is disabled")
        path = _libgeos_c_path()
        if path and shapely.geos_version >= (3, 10, 0) and sys.maxsize > 2**32:
            lib = ctypes.CDLL(path)
            if all(hasattr(lib, s) for s in _GEOS_SYMBOLS):
                probe = shapely.Polygon([(0, 0), (1, 0), (1, 1)])
                stored = ctypes.c_void_p.from_address(id(probe) + _GEOM_PTR_OFFSET).value
                if stored and stored == probe._geom:
                    import llvmlite.binding as llvm

                    llvm.load_library_permanently(path)
                    ok = True
    except Exception:  # any surprise: the vectorised route, which needs none of this
        ok = False
    _GEOS_STATE.append(ok)
    return ok


def from_geos(geoms: np.ndarray) -> RaggedPolygons:
    """Shapely Polygons/MultiPolygons (an object ndarray) read from GEOS by numba."""
    if not _geos_ready():
        raise RuntimeError("reading GEOS directly is not possible in this process")
    types = shapely.get_type_id(geoms)
    n = geoms.size
    # Room for the vertices of a sample of the input, scaled up, with a margin; grown x2
    # whenever the kernel stops on a full output.
    sample = shapely.get_num_coordinates(geoms[:1024])
    cap = int(1.25 * float(sample.mean()) * n) + 1024
    x = np.empty(cap)
    y = np.empty(cap)
    ring_offsets = np.empty(2 * n + 2, np.int64)
    part_offsets = np.empty(2 * n + 2, np.int64)
    geom_offsets = np.empty(n + 1, np.int64)
    counts = np.zeros(3, np.int64)
    address = geoms.__array_interface__["data"][0]
    types = types.astype(np.int64, copy=False)
    i = 0
    while True:
        i = geos_to_ragged(address, types, i, counts, x, y, ring_offsets, part_offsets,
                           geom_offsets)
        if i >= n:
            break
        nc, nr, npt = (int(v) for v in counts)
        x, y = _grown(x, nc), _grown(y, nc)
        ring_offsets = _grown(ring_offsets, nr + 1)
        part_offsets = _grown(part_offsets, npt + 1)
    nc, nr, npt = (int(v) for v in counts)
    return RaggedPolygons(x[:nc], y[:nc], ring_offsets[:nr + 1].copy(),
                          part_offsets[:npt + 1].copy(), geom_offsets)


def _grown(a: np.ndarray, used: int) -> np.ndarray:
    out = np.empty(2 * a.shape[0], a.dtype)
    out[:used] = a[:used]
    return out


def _grown(a: np.ndarray, used: int) -> np.ndarray:
    out = np.empty(2 * a.shape[0], a.dtype)
    out[:used] = a[:used]
    return out



_POLYGON = int(shapely.GeometryType.POLYGON)
_MULTIPOLYGON = int(shapely.GeometryType.MULTIPOLYGON)
