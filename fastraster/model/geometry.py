"""Polygons as GeoArrow-style ragged arrays, the form in which geometry enters the kernels.

Every input (shapely geometries, a GeoDataFrame, WKB from pyogrio) becomes a
:class:`RaggedPolygons` in the MultiPolygon layout: a Polygon is a MultiPolygon of one part,
so one kernel path serves both.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import shapely

from fastraster import kernels as K

#: What a WKB status says about one feature, and about several.
_WKB_ERRORS = {
    K.WKB_UNSUPPORTED_TYPE: ("is not a Polygon or MultiPolygon",
                             "are not Polygons or MultiPolygons"),
    K.WKB_TRUNCATED: ("has truncated WKB", "have truncated WKB"),
    K.WKB_MALFORMED: ("has malformed WKB (a byte-order byte neither 0 nor 1)",
                      "have malformed WKB (a byte-order byte neither 0 nor 1)"),
    K.WKB_NONFINITE: ("has a non-finite (NaN or infinite) coordinate",
                      "have non-finite (NaN or infinite) coordinates"),
    K.WKB_SHORT_RING: ("has a ring of 1 or 2 points (a ring needs at least 3)",
                       "have rings of 1 or 2 points (a ring needs at least 3)"),
}


def readonly(a, dtype) -> np.ndarray:
    """``a`` as a read-only, C-contiguous view (a copy only if the type or layout differs).

    numba compiles, caches and loads one version of a kernel per combination of argument
    types, and whether an array is writable is part of its type. The kernels' inputs come
    writable from some routes (WKB decoding, shapely, numpy) and read-only from others
    (Arrow columns and GeoArrow buffers, zero-copy; pandas columns). Handing every input
    over read-only keeps it to one version per kernel, the one ``warm_up`` loads, whatever
    the route; the caller's own array is not changed.
    """
    v = np.ascontiguousarray(a, dtype=dtype)
    if v.flags.writeable:
        v = v.view()
        v.flags.writeable = False
    return v


@dataclass(frozen=True)
class RaggedPolygons:
    """Polygons in the GeoArrow MultiPolygon layout.

    Attributes
    ----------
    x, y : float64 arrays
        Vertex coordinates (CRS units); Z and M values are dropped.
    ring_offsets : int64 array
        ``x[ring_offsets[k]:ring_offsets[k + 1]]`` are the vertices of ring ``k``.
    part_offsets : int64 array
        Rings of part (polygon) ``p``; the first is the exterior, the rest holes.
    geom_offsets : int64 array
        Parts of geometry ``g``. A null or empty geometry has no parts.

    The arrays are kept as read-only, C-contiguous views of what is passed in (converted
    only if their type or layout differs): see :func:`readonly`.
    """

    x: np.ndarray
    y: np.ndarray
    ring_offsets: np.ndarray
    part_offsets: np.ndarray
    geom_offsets: np.ndarray

    def __post_init__(self):
        # Stored as read-only views: see :func:`readonly`.
        for name, dtype in (("x", np.float64), ("y", np.float64), ("ring_offsets", np.int64),
                            ("part_offsets", np.int64), ("geom_offsets", np.int64)):
            object.__setattr__(self, name, readonly(getattr(self, name), dtype))

    def __len__(self) -> int:
        return self.geom_offsets.shape[0] - 1

    @property
    def arrays(self) -> tuple:
        """The five arrays in kernel argument order."""
        return (self.x, self.y, self.ring_offsets, self.part_offsets, self.geom_offsets)

    @classmethod
    def empty(cls) -> RaggedPolygons:
        z = np.zeros(1, np.int64)
        return cls(np.empty(0), np.empty(0), z, z.copy(), z.copy())

    @classmethod
    def from_shapely(cls, geoms) -> RaggedPolygons:
        """Build from an array of shapely Polygons/MultiPolygons (None and empty allowed).

        Raises
        ------
        ValueError
            If any geometry is of another type, or has a NaN or infinite x or y (corrupt
            data: any area or centroid measured from it would be made up).
        """
        geoms = np.asarray(geoms, dtype=object).ravel()
        if geoms.size == 0:
            return cls.empty()
        types = shapely.get_type_id(geoms)
        missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
        bad = ~missing & (types != shapely.GeometryType.POLYGON) & (
            types != shapely.GeometryType.MULTIPOLYGON)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"geometry {i} is a {geoms[i].geom_type}, "
                "not a Polygon or MultiPolygon")
        if missing.any():
            geoms = geoms.copy()
            geoms[missing] = shapely.MultiPolygon()
        kind, coords, offsets = shapely.to_ragged_array(geoms, include_z=False)
        x = np.ascontiguousarray(coords[:, 0], dtype=np.float64)
        y = np.ascontiguousarray(coords[:, 1], dtype=np.float64)
        if kind == shapely.GeometryType.POLYGON:
            ring_offsets, part_offsets = offsets
            geom_offsets = np.arange(len(geoms) + 1, dtype=np.int64)
        else:
            ring_offsets, part_offsets, geom_offsets = offsets
        polys = cls(x, y, np.asarray(ring_offsets, np.int64), np.asarray(part_offsets, np.int64),
                    np.asarray(geom_offsets, np.int64))
        # The WKB decoder refuses NaN and inf while it copies; here one vectorised pass.
        check_finite(polys)
        return polys

    @classmethod
    def from_wkb(cls, data: np.ndarray, offsets: np.ndarray, valid: np.ndarray | None = None,
                 ) -> tuple[RaggedPolygons, np.ndarray]:
        """Decode concatenated WKB (an Arrow binary array's buffers) without shapely.

        Parameters
        ----------
        data : uint8 array
            Concatenated WKB bytes.
        offsets : int array (n + 1)
            Start of each geometry's bytes in ``data``.
        valid : bool array (n), optional
            False for null entries.

        Returns
        -------
        polygons : RaggedPolygons
        status : int8 array (n)
            ``kernels.WKB_OK`` or the reason a geometry became empty (see
            :func:`wkb_problems`).
        """
        offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        if offsets.ndim != 1 or offsets.shape[0] < 1:
            # (Was an IndexError or "negative dimensions are not allowed".)
            raise ValueError("WKB offsets must be a 1-d array of n + 1 >= 1 positions")
        n = offsets.shape[0] - 1
        if valid is None:
            valid = np.ones(n, dtype=np.bool_)
        # The kernel reads valid[i] for every geometry: a shorter mask was read past its end.
        valid = np.ascontiguousarray(valid, dtype=np.bool_)
        if valid.shape != (n,):
            raise ValueError(f"valid must hold one flag per geometry ({n}), not "
                             f"{valid.shape}")
        data = readonly(data, np.uint8)  # one kernel signature whoever calls (readonly)
        if n and (offsets[0] < 0 or offsets[-1] > data.size or np.any(np.diff(offsets) < 0)):
            # The kernel trusts these: the output bounds below assume disjoint byte ranges.
            raise ValueError("WKB offsets must be non-decreasing and within the data buffer")
        nbytes = int(offsets[-1] - offsets[0]) if n else 0
        geom_offsets = np.empty(n + 1, np.int64)
        status = np.empty(n, np.int8)
        little = sys.byteorder == "little"
        # First try room for rings of >= 3 points (52+ bytes) and polygons of >= 1 such ring
        # (61+ bytes); if the input has smaller ones, retry with room for anything (a ring
        # takes >= 4 bytes, a polygon >= 9). Coordinates take >= 16 bytes each, so that bound
        # is tight for 2-D data. (Always allocating the loose bounds, 3x the input, cost
        # ~10 ms per dense tile in a loop of reads, more than the decoding itself.)
        for ring_bytes, part_bytes in ((52, 61), (4, 9)):
            x = np.empty(nbytes // 16)
            y = np.empty(nbytes // 16)
            ring_offsets = np.empty(n + nbytes // ring_bytes + 1, np.int64)
            part_offsets = np.empty(n + nbytes // part_bytes + 1, np.int64)
            n_coords, n_rings, n_parts = K.wkb_decode(data, offsets, valid, status, x, y,
                                                      ring_offsets, part_offsets, geom_offsets,
                                                      little)
            if n_coords >= 0:
                break
        if n_coords < 0:  # cannot happen: the second bounds hold any input
            raise RuntimeError("WKB decoder: output bounds too small")
        # Coordinates stay views (their bound is tight for 2-D data); the offsets are copied
        # out of their bounds.
        x = x[:n_coords]
        y = y[:n_coords]
        ring_offsets = ring_offsets[:n_rings + 1].copy()
        part_offsets = part_offsets[:n_parts + 1].copy()
        return cls(x, y, ring_offsets, part_offsets, geom_offsets), status

    def to_shapely(self) -> np.ndarray:
        """The geometries as an array of shapely MultiPolygons (empty ones for no parts)."""
        if len(self) == 0:
            return np.empty(0, dtype=object)
        coords = np.column_stack([self.x, self.y])
        return shapely.from_ragged_array(
            shapely.GeometryType.MULTIPOLYGON, coords,
            (self.ring_offsets, self.part_offsets, self.geom_offsets))

    def take(self, index) -> RaggedPolygons:
        """The geometries selected by a boolean mask or integer index, in that order."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        if index.size == len(self) and np.array_equal(index, np.arange(len(self))):
            return self
        index = index.astype(np.int64, copy=False)
        if index.size and (index.min() < -len(self) or index.max() >= len(self)):
            raise IndexError(f"index out of range for {len(self)} geometries")
        index = np.where(index < 0, index + len(self), index)
        x, y, ro, po, go = self.arrays
        # Follow the offsets down, level by level, selecting ranges (no shapely round trip).
        parts = _concat_ranges(go[index], go[index + 1])
        rings = _concat_ranges(po[parts], po[parts + 1])
        coords = _concat_ranges(ro[rings], ro[rings + 1])
        return RaggedPolygons(x[coords], y[coords], _offsets(ro[rings + 1] - ro[rings]),
                              _offsets(po[parts + 1] - po[parts]),
                              _offsets(go[index + 1] - go[index]))

    def replace(self, index, geoms) -> RaggedPolygons:
        """A copy with the geometries at ``index`` replaced by shapely ``geoms``."""
        all_geoms = self.to_shapely()
        all_geoms[np.asarray(index)] = geoms
        return RaggedPolygons.from_shapely(all_geoms)


def _concat_ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """``concatenate([arange(a, b) for a, b in zip(starts, stops)])``, vectorised."""
    lengths = stops - starts
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, np.int64)
    # Each output element is its range's start plus its position within the range.
    first = np.cumsum(lengths) - lengths
    return np.repeat(starts - first, lengths) + np.arange(total, dtype=np.int64)


def _offsets(lengths: np.ndarray) -> np.ndarray:
    out = np.zeros(lengths.size + 1, np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


def wkb_problems(status: np.ndarray, first: int = 0, codes=None) -> list[str]:
    """Human-readable problems for a :meth:`RaggedPolygons.from_wkb` status array, e.g.
    ``"feature 17 has a non-finite (NaN or infinite) coordinate"``.

    ``first``: the feature number of ``status[0]`` (a chunk of a file); ``codes``: only
    these statuses (default: every problem)."""
    out = []
    for code, what in _WKB_ERRORS.items():
        if codes is not None and code not in codes:
            continue
        idx = np.flatnonzero(status == code)
        if idx.size:
            out.append(describe_features(idx + first, what))
    return out


def concat(parts) -> RaggedPolygons:
    """The geometries of several :class:`RaggedPolygons`, in order, as one."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return RaggedPolygons.empty()
    if len(parts) == 1:
        return parts[0]
    x = np.concatenate([p.x for p in parts])
    y = np.concatenate([p.y for p in parts])
    return RaggedPolygons(
        x, y, *(_offsets(np.concatenate([np.diff(getattr(p, name)) for p in parts]))
                for name in ("ring_offsets", "part_offsets", "geom_offsets")))


def centroids(polys: RaggedPolygons) -> tuple[np.ndarray, np.ndarray]:
    """GEOS's planar centroids (``shapely.centroid``), the same doubles: the kernel where it
    can promise them, GEOS itself for the rest. Null and empty geometries have no centroid:
    NaN (which lands in no pixel)."""
    n = len(polys)
    cx = np.empty(n)
    cy = np.empty(n)
    K.polygon_centroids(*polys.arrays, cx, cy)
    unsure = np.flatnonzero(np.isnan(cx))
    if unsure.size:
        geoms = polys.take(unsure).to_shapely()
        some = ~shapely.is_empty(geoms)
        c = shapely.centroid(geoms[some])
        cx[unsure[some]], cy[unsure[some]] = shapely.get_x(c), shapely.get_y(c)
    return cx, cy


def describe_features(idx: np.ndarray, what: tuple[str, str]) -> str:
    """``"feature 3 <singular>"`` or ``"12 features (3, 5, ...) <plural>"``.

    Feature numbers are 0-based row positions in the file (a GeoPackage written in one go
    has ``fid`` = row + 1).
    """
    if idx.size == 1:
        return f"feature {idx[0]} {what[0]}"
    shown = ", ".join(str(i) for i in idx[:5]) + (", ..." if idx.size > 5 else "")
    return f"{idx.size} features ({shown}) {what[1]}"


def all_finite(*arrays) -> bool:
    """True if no element of the float arrays is NaN or infinite.

    A finite sum proves every term finite (NaN and inf never sum back to a finite number;
    an overflowing sum of finite terms only sends us to the exact check): one pass without
    temporaries, 0.25 ms against 1.0 ms for ``isfinite`` on the dense tile's 756,596
    vertices.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        total = sum(float(np.add.reduce(a)) for a in arrays)
    return bool(np.isfinite(total)) or all(bool(np.isfinite(a).all()) for a in arrays)


def nonfinite_features(polys: RaggedPolygons) -> np.ndarray:
    """Indices of the geometries with a NaN or infinite x or y (sorted)."""
    if all_finite(polys.x, polys.y):
        return np.empty(0, np.int64)
    bad = ~(np.isfinite(polys.x) & np.isfinite(polys.y))
    if not bad.any():
        return np.empty(0, np.int64)
    # Coordinate -> ring -> part -> geometry, by the offsets.
    ring = np.searchsorted(polys.ring_offsets, np.flatnonzero(bad), side="right") - 1
    part = np.searchsorted(polys.part_offsets, ring, side="right") - 1
    return np.unique(np.searchsorted(polys.geom_offsets, part, side="right") - 1)


def check_finite(polys: RaggedPolygons) -> None:
    """Refuse geometries with a NaN or infinite x or y, in every ``validate`` mode.

    Raises
    ------
    ValueError
        ``"feature 17 has a non-finite (NaN or infinite) coordinate"`` (or ``"N features
        (...) have ..."``): corrupt data, whose area or centroid would be made up (GEOS's
        ``make_valid`` drops a NaN vertex and measures the rest).
    """
    bad = nonfinite_features(polys)
    if bad.size:
        raise ValueError(describe_features(bad, _WKB_ERRORS[K.WKB_NONFINITE]))


def polygonal_part(g):
    """The polygonal part of a geometry (e.g. of a make_valid or intersection result that
    holds collapsed lines or points too); an empty MultiPolygon if there is none."""
    if g is None or g.is_empty:
        return shapely.MultiPolygon()
    if g.geom_type in ("Polygon", "MultiPolygon"):
        return g
    parts = [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon")]
    if not parts:
        return shapely.MultiPolygon()
    return shapely.union_all(parts)


def one_chunk(column):
    """A ChunkedArray as one Array; zero-copy when it has one chunk (combine_chunks copies)."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def wkb_buffers(column):
    """(data uint8, offsets int64, valid bool) of an Arrow (large) binary column, zero-copy."""
    import pyarrow as pa

    arr = one_chunk(column) if isinstance(column, pa.ChunkedArray) else column
    if isinstance(arr, pa.ExtensionArray):
        arr = arr.storage
    n = len(arr)
    off_dtype = np.int64 if pa.types.is_large_binary(arr.type) else np.int32
    validity, off_buf, data_buf = arr.buffers()[:3]
    offsets = np.frombuffer(off_buf, dtype=off_dtype)[arr.offset:arr.offset + n + 1]
    data = (np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None
            else np.empty(0, np.uint8))
    valid = (np.ones(n, bool) if validity is None or arr.null_count == 0
             else np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), bool))
    return data, offsets.astype(np.int64), valid
