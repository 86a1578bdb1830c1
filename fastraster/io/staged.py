"""Reading staged vector tiles (GeoPackages) into ragged arrays, and their CRS check."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from fastraster import kernels as K
from fastraster.model.geometry import (
    RaggedPolygons,
    all_finite,
    describe_features,
    one_chunk,
    wkb_buffers,
    wkb_problems,
)
from fastraster.model.grid import TileGrid

#: PDG staging columns (viz-staging's defaults).
CENTROID_COLUMNS = ("staging_centroid_x", "staging_centroid_y")
DUPLICATED_COLUMN = "staging_duplicated"


class InputError(ValueError):
    """An input file cannot be used; the message starts with the file's path and names the
    problem (and the feature, where one is at fault)."""


@dataclass
class TileData:
    """What one staged file holds, ready for the kernels."""

    polygons: RaggedPolygons
    centroids: tuple | None
    attributes: dict
    duplicated: np.ndarray | None
    crs: str | None
    bytes_read: int = 0
    #: Problems that do not stop the file, each "<path>: ..." (e.g. features without
    #: geometry); the caller reports them.
    warnings: list = field(default_factory=list)


def read_staged(path, *, attributes=(), centroid_columns=CENTROID_COLUMNS,
                duplicated_column=DUPLICATED_COLUMN) -> TileData:
    """Read the polygons and the columns the statistics need from one vector file.

    Uses ``pyogrio.raw.read_arrow`` (only the needed columns) and decodes the WKB straight
    into ragged arrays with a numba kernel, without building shapely objects.

    Raises
    ------
    InputError
        If the file cannot be opened, holds geometries other than (Multi)Polygons, corrupt
        geometries (truncated WKB, NaN or infinite coordinates, rings of 1 or 2 points), a
        needed column that is missing or not numeric, or a non-finite staging centroid.
        The message starts with the path and names the features (0-based row numbers).
    """
    import pyogrio.raw

    path = os.fspath(path)
    wanted = [c for c in (*centroid_columns, duplicated_column, *attributes) if c]
    # Staged GeoPackages are finished, read-only inputs: IMMUTABLE=YES spares SQLite its
    # journal probes and locks (~210 -> ~40 filesystem metadata calls per file, which is
    # what limits shared parallel filesystems). Do not point a run at files still being
    # written.
    options = {"IMMUTABLE": "YES"} if path.lower().endswith(".gpkg") else {}
    try:
        meta, table = pyogrio.raw.read_arrow(path, columns=wanted, **options)
    except Exception as exc:  # pyogrio raises DataSourceError, DataLayerError, ...
        raise InputError(f"{path}: cannot read: {_read_failure(path) or exc}") from exc
    geom_name = meta.get("geometry_name") or "wkb_geometry"
    if geom_name not in table.column_names:
        raise InputError(f"{path}: has no geometry column")
    data, offsets, valid = wkb_buffers(table[geom_name])
    polys, status = RaggedPolygons.from_wkb(data, offsets, valid)
    return checked_tile_data(
        path, polys, status, lambda c: numeric_column(table, c, path), set(table.column_names),
        attributes=attributes, centroid_columns=centroid_columns,
        duplicated_column=duplicated_column, crs=meta.get("crs"),
        bytes_read=int(data.nbytes + offsets.nbytes))


def checked_tile_data(path, polys: RaggedPolygons, status: np.ndarray, column, names, *,
                      attributes, centroid_columns, duplicated_column, crs,
                      bytes_read) -> TileData:
    """The checks every staged-file reader shares, and the :class:`TileData` they return.

    :func:`read_staged` (pyogrio) and :func:`fastraster.io.gpkg_lean.read_staged_lean`
    (sqlite3) both end here, so a file gives the same data, the same errors (in the same
    order) and the same warnings whichever reads it.

    Parameters
    ----------
    path : str
        The file, for messages.
    polys, status
        The decoded geometries and their statuses (:meth:`RaggedPolygons.from_wkb`).
    column : callable
        ``column(name)``: the file's column as float64, NaN for null; raises
        :class:`InputError` for a column that is not numeric.
    names : set of str
        The file's columns.
    attributes, centroid_columns, duplicated_column
        As for :func:`read_staged`.
    crs : str or None
        The file's CRS as pyogrio reports it.
    bytes_read : int
        Bytes of geometry read.

    Raises
    ------
    InputError
        Corrupt geometries (any status but ``WKB_OK`` and ``WKB_NULL``), a non-finite
        staging centroid of a feature with a geometry, a missing attribute column, or a
        column ``column`` refuses.
    """
    flagged = bool(status.any())  # WKB_OK is 0: a file without problems skips the search
    problems = wkb_problems(status) if flagged else []
    if problems:
        raise InputError(f"{path}: " + "; ".join(problems))
    notes = []
    null = np.flatnonzero(status == K.WKB_NULL) if flagged else np.empty(0, np.int64)
    if null.size:
        # GDAL also hands over a geometry blob it cannot read (not a GeoPackage blob) as
        # null, without a word: say so rather than drop those features silently.
        notes.append(f"{path}: " + describe_features(null, (
            "has no geometry (null, empty or a blob GDAL cannot read): it adds no area",
            "have no geometry (null, empty or blobs GDAL cannot read): they add no area")))
    centroids = None
    if centroid_columns and all(c in names for c in centroid_columns):
        centroids = tuple(column(c) for c in centroid_columns)
        problem = nonfinite_centroids(centroids, status == K.WKB_OK, "/".join(centroid_columns))
        if problem:
            raise InputError(f"{path}: {problem}")
    duplicated = None
    if duplicated_column and duplicated_column in names:
        d = column(duplicated_column)
        duplicated = ~np.isnan(d) & (d != 0)  # null: not known to be a duplicate
    attrs = {}
    for c in attributes:
        if c not in names:
            raise InputError(f"{path}: has no attribute column {c!r} (a statistic needs it)")
        attrs[c] = column(c)
    return TileData(polys, centroids, attrs, duplicated, crs, bytes_read, notes)


def nonfinite_centroids(centroids, has_geometry: np.ndarray, label: str) -> str | None:
    """The problem with NaN, infinite or null staging centroids of features that have a
    geometry (``"feature 2 has a non-finite ... staging centroid (<label>)"``), or None.

    The issue-12 data rule for coordinates holds for staging centroids too: NaN would
    silently count the polygon nowhere. (A feature without geometry adds nothing anyway.)
    """
    if all_finite(*centroids):
        return None
    bad = np.flatnonzero(~(np.isfinite(centroids[0]) & np.isfinite(centroids[1]))
                         & has_geometry)
    if not bad.size:
        return None
    return describe_features(bad, (
        f"has a non-finite (NaN, infinite or null) staging centroid ({label})",
        f"have non-finite (NaN, infinite or null) staging centroids ({label})"))


def _read_failure(path) -> str | None:
    """A plainer reason than GDAL's for a file ``read_arrow`` failed on, when there is one
    (GDAL says "not recognized as being in a supported file format ... prefixing the file
    path with '<DRIVER>:'" for an empty file, and pyogrio raises a bare IndexError for a
    GeoPackage without layers). Only called after a failure."""
    import pyogrio

    try:
        if os.path.getsize(path) == 0:
            return "the file is empty (0 bytes)"
        if path.lower().endswith(".gpkg"):
            with open(path, "rb") as fh:
                if fh.read(16) != b"SQLite format 3\x00":
                    return "not a GeoPackage (it does not start with the SQLite header)"
        if len(pyogrio.list_layers(path)) == 0:
            return "it holds no vector layer"
    except Exception as exc:
        if "malformed" in str(exc):  # SQLite's "database disk image is malformed"
            return "the SQLite database is damaged (truncated or overwritten)"
        return None
    return None


def numeric_column(table, name, path="<input>") -> np.ndarray:
    """An Arrow column as float64 (nulls as NaN; booleans 0/1), or :class:`InputError` for
    a column that does not hold numbers."""
    import pyarrow as pa

    col = one_chunk(table[name])
    t = col.type
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
            or pa.types.is_decimal(t) or pa.types.is_null(t)):
        # A TEXT column: numpy would convert "1.5" and fail on "abc" with an error naming
        # neither file nor column. Numbers stored as text are refused too, predictably.
        raise InputError(f"{path}: column {name!r} holds {t} values, not numbers")
    # Nulls become NaN (an attribute without a value).
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)


#: Spellings of WGS 84 longitude/latitude. EPSG:4326 and OGC:CRS84 differ only in axis
#: order, which neither GeoPackage geometries nor our x = longitude arrays use.
_WGS84_LONLAT = {("EPSG", "4326"), ("OGC", "CRS84")}


@lru_cache(maxsize=64)
def _crs_matches(file_crs: str, grid_crs: str) -> bool:
    from rasterio.crs import CRS

    a, b = CRS.from_user_input(file_crs), CRS.from_user_input(grid_crs)
    return a == b or (a.to_authority() in _WGS84_LONLAT and b.to_authority() in _WGS84_LONLAT)


def check_crs(path, file_crs, grid: TileGrid, warn: bool = True) -> str | None:
    """Refuse a file whose CRS is not the tile matrix set's; warn if it has none.

    A file without a CRS is assumed to be in the TMS CRS (staging writes them so), with a
    warning, rather than refused. Returns that warning's message (None if the CRS is
    given); ``warn=False`` leaves reporting it to the caller.
    """
    if not file_crs:
        msg = f"{path}: has no CRS; assuming the {grid.tms} CRS ({grid.crs})"
        if warn:
            warnings.warn(msg, stacklevel=3)
        return msg
    if not _crs_matches(file_crs, grid.crs):
        raise InputError(f"{path}: CRS {_short(file_crs)} is not the {grid.tms} CRS "
                         f"{grid.crs}; reproject (stage) it first")
    return None


def _short(wkt: str) -> str:
    return wkt if len(wkt) < 60 else wkt[:57] + "..."
