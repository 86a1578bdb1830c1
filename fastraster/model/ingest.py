"""In-memory geometries to :class:`~fastraster.model.geometry.RaggedPolygons`, the fastest
way per type.

:func:`to_ragged` takes what Python users hold polygons in and returns the kernels' ragged
arrays, bit for bit what :meth:`RaggedPolygons.from_shapely` returns, without building a
Python object per polygon:

* **shapely geometries** (an object ndarray, a list, a GeoSeries or a GeoDataFrame's geometry):
  one numba pass reads each geometry's rings straight out of GEOS through the GEOS C API
  (the same ``libgeos_c`` shapely itself has loaded), copying coordinates with
  ``GEOSCoordSeq_copyToArrays_r`` into separate x and y arrays. On the dense benchmark tile
  (25,300 polygons, 756,596 vertices) that took ~4-5 ms where ``shapely.to_ragged_array``
  takes ~40 ms (its ``get_rings`` builds a Python object per ring), ``shapely.to_wkb`` alone
  ~38 ms, and the object-free vectorised route (``get_coordinates`` + the ``get_num_*``
  counts + splitting x/y) ~10-11 ms (``benchmarks/entry_points.py``). No library exposes
  that loop, so it is written here. Where it cannot run (shapely's object layout or the
  GEOS library not as checked at import, GEOS < 3.10) the vectorised route is the fallback.
* **GeoArrow** (anything with ``__arrow_c_array__`` or ``__arrow_c_stream__`` whose type is
  ``geoarrow.polygon``, ``geoarrow.multipolygon``, ``geoarrow.wkb`` or ``ogc.wkb``): the
  offsets and coordinates are Arrow buffers already in the kernels' layout, taken zero-copy
  (separated coordinates) or de-interleaved with one strided copy; WKB goes through the
  numba WKB decoder as files do.
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys

import numpy as np
import shapely
from numba import types as nbt
from numba.extending import intrinsic

from fastraster.kernels._jit import kernel
from fastraster.model.geometry import RaggedPolygons, wkb_buffers, wkb_problems

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


# ---------------------------------------------------------------------------------------------
# shapely geometries
# ---------------------------------------------------------------------------------------------


def _check_types(geoms: np.ndarray) -> np.ndarray:
    types = shapely.get_type_id(geoms)  # TypeError for anything not a geometry (or None)
    bad = (types != _POLYGON) & (types != _MULTIPOLYGON) & (types != -1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"geometry {i} is a {geoms[i].geom_type}, "
                         "not a Polygon or MultiPolygon")
    return types


def from_shapely(geoms, *, method: str = "auto") -> RaggedPolygons:
    """Polygons/MultiPolygons (None and empty allowed) as ragged arrays, without a Python
    object per polygon; the same arrays as :meth:`RaggedPolygons.from_shapely`.

    Parameters
    ----------
    geoms : array-like of shapely geometries
        An object ndarray, a list, a GeoSeries or a geopandas GeometryArray.
    method : {"auto", "geos", "vectorised", "ragged"}
        ``"geos"``: one numba pass over GEOS (the fastest; ``"auto"`` takes it wherever it
        can run); ``"vectorised"``: shapely's array functions; ``"ragged"``:
        ``shapely.to_ragged_array`` (the reference).

    Raises
    ------
    ValueError
        If a geometry is of another type.
    """
    geoms = _object_array(geoms)
    if geoms.size == 0:
        return RaggedPolygons.empty()
    if method == "ragged":
        return RaggedPolygons.from_shapely(geoms)
    types = _check_types(geoms)
    if method in ("auto", "geos") and _geos_ready():
        return _from_geos(geoms, types)
    if method == "geos":
        raise RuntimeError("reading GEOS directly is not possible in this process")
    return _from_vectorised(geoms, types)


def _object_array(geoms) -> np.ndarray:
    values = getattr(geoms, "values", geoms)  # a GeoSeries -> its GeometryArray
    arr = np.asarray(values, dtype=object)  # a GeometryArray hands over its ndarray
    if arr.ndim != 1:
        arr = arr.ravel()
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    return arr


def _from_geos(geoms: np.ndarray, types: np.ndarray) -> RaggedPolygons:
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


def _from_vectorised(geoms: np.ndarray, types: np.ndarray) -> RaggedPolygons:
    """shapely's array functions only: coordinates in one call, ring sizes from counts.

    A Polygon without holes is one ring of all its coordinates; only polygons with holes and
    MultiPolygons have their rings separated by ``shapely.get_rings``, which builds ring
    objects for those geometries alone.
    """
    ncoords = shapely.get_num_coordinates(geoms)
    simple = (types == _POLYGON) & (ncoords > 0)
    simple[simple] = shapely.get_num_interior_rings(geoms[simple]) == 0
    coords = shapely.get_coordinates(geoms)
    simple_idx = np.flatnonzero(simple)
    complex_idx = np.flatnonzero(~simple & (ncoords > 0))
    parts_per_geom = simple.astype(np.int64)
    ring_len = ncoords[simple_idx]
    rings_per_part = np.ones(simple_idx.size, np.int64)
    if complex_idx.size:
        parts, part_geom = shapely.get_parts(geoms[complex_idx], return_index=True)
        rings, ring_part = shapely.get_rings(parts, return_index=True)
        rings_in_part = np.bincount(ring_part, minlength=parts.size)
        nonempty = rings_in_part > 0  # an empty part adds no part
        parts_per_geom[complex_idx] = np.bincount(part_geom[nonempty],
                                                  minlength=complex_idx.size)
        # Rings and parts of simple and complex geometries, merged back into input order
        # (a stable sort by geometry keeps each geometry's own order).
        ring_owner = np.concatenate([simple_idx, complex_idx[part_geom[ring_part]]])
        ring_len = np.concatenate([ring_len, shapely.get_num_coordinates(rings)])
        ring_len = ring_len[np.argsort(ring_owner, kind="stable")]
        part_owner = np.concatenate([simple_idx, complex_idx[part_geom[nonempty]]])
        rings_per_part = np.concatenate([rings_per_part, rings_in_part[nonempty]])
        rings_per_part = rings_per_part[np.argsort(part_owner, kind="stable")]
    return RaggedPolygons(np.ascontiguousarray(coords[:, 0]), np.ascontiguousarray(coords[:, 1]),
                          _offsets(ring_len), _offsets(rings_per_part), _offsets(parts_per_geom))


def _offsets(lengths: np.ndarray) -> np.ndarray:
    out = np.zeros(lengths.size + 1, np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


# ---------------------------------------------------------------------------------------------
# GeoArrow
# ---------------------------------------------------------------------------------------------

_WKB_NAMES = ("geoarrow.wkb", "ogc.wkb")
_NATIVE_NAMES = {"geoarrow.polygon": 2, "geoarrow.multipolygon": 3}


def is_arrow(obj) -> bool:
    """True for objects speaking the Arrow PyCapsule interface (arrays or streams)."""
    return hasattr(obj, "__arrow_c_array__") or hasattr(obj, "__arrow_c_stream__")


def _extension_name(obj) -> str | None:
    """The ``ARROW:extension:name`` of an Arrow array or stream, registered or not."""
    import pyarrow as pa

    t = getattr(obj, "type", None)
    if isinstance(t, pa.ExtensionType):
        return t.extension_name
    if isinstance(obj, (pa.Array, pa.ChunkedArray)):
        return None  # pyarrow keeps no metadata on arrays of unregistered extension types
    # Another producer: its schema says, whether or not pyarrow knows the extension.
    if hasattr(obj, "__arrow_c_schema__"):
        field = pa.Field._import_from_c_capsule(obj.__arrow_c_schema__())
    elif hasattr(obj, "__arrow_c_array__"):
        field = pa.Field._import_from_c_capsule(obj.__arrow_c_array__()[0])
    else:
        return None  # a bare stream: its chunks' types tell, if pyarrow knows the extension
    if isinstance(field.type, pa.ExtensionType):
        return field.type.extension_name
    meta = field.metadata or {}
    name = meta.get(b"ARROW:extension:name")
    return name.decode() if name else None


def from_arrow(obj) -> RaggedPolygons:
    """GeoArrow polygons, multipolygons or WKB (an array, chunked array or stream) as ragged
    arrays: buffers zero-copy where the layout allows.

    Null geometries become empty ones (no parts), as in :meth:`RaggedPolygons.from_shapely`.

    Raises
    ------
    ValueError
        For another geometry type or encoding, or WKB that is not (Multi)Polygon.
    """
    import pyarrow as pa

    name = _extension_name(obj)
    if isinstance(obj, pa.ChunkedArray):
        chunks = obj.chunks
    elif isinstance(obj, pa.Array):
        chunks = [obj]
    elif hasattr(obj, "__arrow_c_array__"):
        chunks = [pa.array(obj)]
    else:
        chunked = pa.chunked_array(obj)
        chunks = chunked.chunks
        if name is None:
            name = _extension_name(chunked)
    if name is None:
        raise ValueError("the Arrow array has no geoarrow extension type (expected "
                         "geoarrow.polygon, geoarrow.multipolygon, geoarrow.wkb or ogc.wkb)")
    if name not in _WKB_NAMES and name not in _NATIVE_NAMES:
        raise ValueError(f"Arrow geometry of type {name} is not a Polygon or MultiPolygon "
                         "(expected geoarrow.polygon, geoarrow.multipolygon or WKB)")
    parts = [_arrow_chunk(c, name) for c in chunks]
    if not parts:
        return RaggedPolygons.empty()
    return parts[0] if len(parts) == 1 else concat(parts)


def _arrow_chunk(arr, name: str) -> RaggedPolygons:
    import pyarrow as pa

    if isinstance(arr, pa.ExtensionArray):
        arr = arr.storage
    if name in _WKB_NAMES:
        data, offsets, valid = wkb_buffers(arr)
        polys, status = RaggedPolygons.from_wkb(data, offsets, valid)
        problems = wkb_problems(status)
        if problems:
            raise ValueError("; ".join(problems))
        return polys
    depth = _NATIVE_NAMES[name]
    n = len(arr)
    # Walk the list levels down to the coordinates: geometry -> (part ->) ring -> vertex.
    levels = []
    level = arr
    for _ in range(depth):
        if not pa.types.is_list(level.type) and not pa.types.is_large_list(level.type):
            raise ValueError(f"{name} storage {arr.type} is not nested lists")
        levels.append(np.asarray(level.offsets, dtype=np.int64))
        level = level.values
    x, y = _xy(level)
    # Offsets of a sliced array need not start at 0 nor reach the end of their child.
    if depth == 3:
        go, po, ro = levels
    else:
        go, ro = levels
        po = None
    if po is None:
        # One part per polygon that has rings; polygons without rings are empty geometries.
        nrings = go[1:] - go[:-1]
        has = nrings > 0
        part_offsets = np.concatenate([go[:-1][has], go[-1:]])
        geom_offsets = np.zeros(n + 1, np.int64)
        np.cumsum(has, out=geom_offsets[1:])
    else:
        part_offsets, geom_offsets = po, go
    ring_offsets = ro
    polys = _rebase(x, y, ring_offsets, part_offsets, geom_offsets)
    if arr.null_count:
        polys = _nulls_empty(polys, np.asarray(arr.is_valid().to_numpy(zero_copy_only=False),
                                               bool))
    return polys


def _xy(coords) -> tuple[np.ndarray, np.ndarray]:
    """x and y float64 arrays of a GeoArrow coordinate array (struct or fixed-size list)."""
    import pyarrow as pa

    if pa.types.is_struct(coords.type):
        names = [coords.type.field(i).name for i in range(coords.type.num_fields)]
        if names[:2] != ["x", "y"]:
            raise ValueError(f"GeoArrow coordinates {coords.type} do not start with x, y")
        x = coords.field(0)
        y = coords.field(1)
        return (np.asarray(x.to_numpy(zero_copy_only=False), np.float64),
                np.asarray(y.to_numpy(zero_copy_only=False), np.float64))
    if pa.types.is_fixed_size_list(coords.type):
        dim = coords.type.list_size
        flat = np.asarray(coords.values.to_numpy(zero_copy_only=False), np.float64)
        flat = flat[coords.offset * dim:(coords.offset + len(coords)) * dim].reshape(-1, dim)
        # Interleaved x, y(, z, m): one strided copy per axis into contiguous arrays.
        return np.ascontiguousarray(flat[:, 0]), np.ascontiguousarray(flat[:, 1])
    raise ValueError(f"GeoArrow coordinates of type {coords.type} are not supported")


def _rebase(x, y, ring_offsets, part_offsets, geom_offsets) -> RaggedPolygons:
    """Offsets starting at 0 into exactly the coordinates they use (sliced Arrow arrays)."""
    p0, p1 = geom_offsets[0], geom_offsets[-1]
    part_offsets = part_offsets[p0:p1 + 1]
    r0, r1 = part_offsets[0], part_offsets[-1]
    ring_offsets = ring_offsets[r0:r1 + 1]
    c0, c1 = ring_offsets[0], ring_offsets[-1]
    if p0:
        geom_offsets = geom_offsets - p0
    if r0:
        part_offsets = part_offsets - r0
    if c0:
        ring_offsets = ring_offsets - c0
    if c0 or c1 != x.shape[0]:
        x, y = x[c0:c1], y[c0:c1]
    return RaggedPolygons(np.ascontiguousarray(x), np.ascontiguousarray(y),
                          np.ascontiguousarray(ring_offsets), np.ascontiguousarray(part_offsets),
                          np.ascontiguousarray(geom_offsets))


def _nulls_empty(polys: RaggedPolygons, valid: np.ndarray) -> RaggedPolygons:
    """Null slots as empty geometries (Arrow allows a null slot to span values)."""
    go = polys.geom_offsets
    lengths = go[1:] - go[:-1]
    if not lengths[~valid].any():
        return polys
    kept = polys.take(np.flatnonzero(valid))
    geom_offsets = np.zeros(valid.size + 1, np.int64)
    np.cumsum(np.where(valid, lengths, 0), out=geom_offsets[1:])
    return RaggedPolygons(kept.x, kept.y, kept.ring_offsets, kept.part_offsets, geom_offsets)


def concat(parts) -> RaggedPolygons:
    """Ragged polygons one after another (offsets shifted)."""
    xs, ys, ros, pos, gos = [], [], [], [], []
    c = r = p = 0
    for k, q in enumerate(parts):
        xs.append(q.x)
        ys.append(q.y)
        first = 0 if k == 0 else 1
        ros.append(q.ring_offsets[first:] + c)
        pos.append(q.part_offsets[first:] + r)
        gos.append(q.geom_offsets[first:] + p)
        c += q.x.shape[0]
        r += q.ring_offsets.shape[0] - 1
        p += q.part_offsets.shape[0] - 1
    return RaggedPolygons(np.concatenate(xs), np.concatenate(ys), np.concatenate(ros),
                          np.concatenate(pos), np.concatenate(gos))


# ---------------------------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------------------------


def to_ragged(obj) -> RaggedPolygons:
    """Any supported in-memory geometry container as ragged arrays, by the fastest route.

    Parameters
    ----------
    obj : RaggedPolygons, GeoArrow array/chunked array/stream, GeoSeries, GeometryArray,
        object ndarray or list of shapely geometries

    Raises
    ------
    ValueError
        If a geometry is not a Polygon or MultiPolygon.
    """
    if isinstance(obj, RaggedPolygons):
        return obj
    # A GeoSeries speaks Arrow too (through shapely.to_ragged_array, slowly): read its GEOS.
    if is_arrow(obj) and not hasattr(obj, "geometry"):
        return from_arrow(obj)
    return from_shapely(obj)
