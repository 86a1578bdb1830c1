"""In-memory geometries to :class:`~fastraster.model.geometry.RaggedPolygons`, the fastest
object-free way per type.

:func:`to_ragged` takes what Python users hold polygons in and returns the kernels' ragged
arrays, bit for bit what :meth:`RaggedPolygons.from_shapely` (``shapely.to_ragged_array``)
returns, without building a Python object per polygon:

* **shapely geometries** (an object ndarray, a list, a GeoSeries or a GeoDataFrame's geometry):
  ``shapely.get_coordinates`` copies every vertex out of GEOS in one pass, and one numba pass
  (:func:`fastraster.kernels.coordinates.split_coordinates`) splits them into x and y and
  recognises each Polygon that is one closed ring; GEOS is asked for the rings
  (``shapely.get_rings``) of the other geometries only (holes, MultiPolygons). On the dense
  benchmark tile (25,300 polygons, 756,596 vertices) ``shapely.to_ragged_array`` takes ~40 ms
  (its ``get_rings`` builds a Python object per ring), ``shapely.to_wkb`` + the numba WKB
  decoder ~90 ms, this route ~8-9 ms (``benchmarks/entry_points.py``), of which
  ``get_coordinates`` alone is ~5-6 ms: GEOS's objects lie scattered in memory, so every pass
  over them costs milliseconds, and this route makes one (plus ``get_type_id``).
  A numba kernel reading GEOS through its C API straight out of shapely's objects was ~1.5-3
  ms faster and was not kept: it depends on shapely's private object layout and could read a
  freed pointer if another thread changed the input array meanwhile (README, "Entry points").
* **GeoArrow** (anything with ``__arrow_c_array__`` or ``__arrow_c_stream__`` whose type is
  ``geoarrow.polygon``, ``geoarrow.multipolygon``, ``geoarrow.wkb`` or ``ogc.wkb``): the
  offsets and coordinates are Arrow buffers already in the kernels' layout, taken zero-copy
  (separated coordinates) or de-interleaved with one strided copy; WKB goes through the
  numba WKB decoder as files do.
"""

from __future__ import annotations

import numpy as np
import shapely

from fastraster import kernels as K
from fastraster.model.geometry import (
    RaggedPolygons,
    check_finite,
    wkb_buffers,
    wkb_problems,
)

_POLYGON = int(shapely.GeometryType.POLYGON)
_MULTIPOLYGON = int(shapely.GeometryType.MULTIPOLYGON)


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


def from_shapely(geoms) -> RaggedPolygons:
    """Polygons/MultiPolygons (None and empty allowed) as ragged arrays, without a Python
    object per polygon; the same arrays as :meth:`RaggedPolygons.from_shapely`.

    Parameters
    ----------
    geoms : array-like of shapely geometries
        An object ndarray, a list, a GeoSeries or a geopandas GeometryArray.

    Raises
    ------
    ValueError
        If a geometry is of another type, or has a NaN or infinite x or y (as
        :meth:`RaggedPolygons.from_shapely`).
    TypeError
        If an element is not a geometry (nor None).
    """
    polys = _from_shapely(geoms)
    check_finite(polys)
    return polys


def _from_shapely(geoms) -> RaggedPolygons:
    geoms = _object_array(geoms)
    n = geoms.size
    if n == 0:
        return RaggedPolygons.empty()
    types = _check_types(geoms)
    coords, index = shapely.get_coordinates(geoms, return_index=True)
    m = coords.shape[0]
    x = np.empty(m)
    y = np.empty(m)
    coord_offsets = np.empty(n + 1, np.int64)
    single = np.empty(n, np.bool_)
    K.split_coordinates(coords, index, types == _POLYGON, x, y, coord_offsets, single)
    ncoords = coord_offsets[1:] - coord_offsets[:-1]
    rest = np.flatnonzero(~single & (ncoords > 0))
    if rest.size == 0:
        # One ring per non-empty geometry (the common case: staged ice-wedge polygons).
        ring_offsets = np.concatenate([coord_offsets[:1], coord_offsets[1:][single]])
        part_offsets = np.arange(ring_offsets.size, dtype=np.int64)
        geom_offsets = _offsets(single.astype(np.int64))
        return RaggedPolygons(x, y, ring_offsets, part_offsets, geom_offsets)
    return RaggedPolygons(x, y, *_ring_structure(geoms, single, ncoords, rest))


def _ring_structure(geoms, single, ncoords, rest):
    """Ring, part and geometry offsets: single rings from the vertex counts, the rings of
    the ``rest`` (holes, MultiPolygons, rings touching their first vertex) from GEOS."""
    single_idx = np.flatnonzero(single)
    parts_per_geom = single.astype(np.int64)
    ring_len = ncoords[single_idx]
    rings_per_part = np.ones(single_idx.size, np.int64)
    parts, part_geom = shapely.get_parts(geoms[rest], return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    rings_in_part = np.bincount(ring_part, minlength=parts.size)
    nonempty = rings_in_part > 0  # an empty part adds no part
    parts_per_geom[rest] = np.bincount(part_geom[nonempty], minlength=rest.size)
    # Rings and parts of single-ring and other geometries, merged back into input order (a
    # stable sort by geometry keeps each geometry's own order).
    ring_owner = np.concatenate([single_idx, rest[part_geom[ring_part]]])
    ring_len = np.concatenate([ring_len, shapely.get_num_coordinates(rings)])
    ring_len = ring_len[np.argsort(ring_owner, kind="stable")]
    part_owner = np.concatenate([single_idx, rest[part_geom[nonempty]]])
    rings_per_part = np.concatenate([rings_per_part, rings_in_part[nonempty]])
    rings_per_part = rings_per_part[np.argsort(part_owner, kind="stable")]
    return _offsets(ring_len), _offsets(rings_per_part), _offsets(parts_per_geom)


def _object_array(geoms) -> np.ndarray:
    values = getattr(geoms, "values", geoms)  # a GeoSeries -> its GeometryArray
    arr = np.asarray(values, dtype=object)  # a GeometryArray hands over its ndarray
    return arr.ravel() if arr.ndim != 1 else arr


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
        For another geometry type or encoding, WKB that is not (Multi)Polygon or is
        corrupt, or a NaN or infinite x or y (as :meth:`RaggedPolygons.from_shapely`);
        features are numbered across chunks.
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
    polys = parts[0][0] if len(parts) == 1 else concat([p for p, _ in parts])
    if name in _WKB_NAMES:
        # The decoder checked while copying (NaN and inf too); numbered across chunks.
        problems = wkb_problems(np.concatenate([status for _, status in parts]))
        if problems:
            raise ValueError("; ".join(problems))
    else:
        check_finite(polys)
    return polys


def _arrow_chunk(arr, name: str) -> tuple[RaggedPolygons, np.ndarray | None]:
    """One chunk's polygons, and its WKB statuses (None for native GeoArrow)."""
    import pyarrow as pa

    if isinstance(arr, pa.ExtensionArray):
        arr = arr.storage
    if name in _WKB_NAMES:
        data, offsets, valid = wkb_buffers(arr)
        return RaggedPolygons.from_wkb(data, offsets, valid)
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
    return polys, None


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
    return RaggedPolygons(x, y, ring_offsets, part_offsets, geom_offsets)


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
