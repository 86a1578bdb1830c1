"""Reading staged vector tiles (GeoPackages) into ragged arrays, and their CRS check."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from fastraster.model.geometry import RaggedPolygons, one_chunk, wkb_buffers, wkb_problems
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


def read_staged(path, *, attributes=(), centroid_columns=CENTROID_COLUMNS,
                duplicated_column=DUPLICATED_COLUMN) -> TileData:
    """Read the polygons and the columns the statistics need from one vector file.

    Uses ``pyogrio.raw.read_arrow`` (only the needed columns) and decodes the WKB straight
    into ragged arrays with a numba kernel, without building shapely objects.

    Raises
    ------
    InputError
        If the file cannot be opened or holds geometries other than (Multi)Polygons.
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
        raise InputError(f"{path}: cannot read: {exc}") from exc
    geom_name = meta.get("geometry_name") or "wkb_geometry"
    if geom_name not in table.column_names:
        raise InputError(f"{path}: has no geometry column")
    data, offsets, valid = wkb_buffers(table[geom_name])
    polys, status = RaggedPolygons.from_wkb(data, offsets, valid)
    problems = wkb_problems(status)
    if problems:
        raise InputError(f"{path}: " + "; ".join(problems))
    names = table.column_names
    centroids = None
    if centroid_columns and all(c in names for c in centroid_columns):
        centroids = tuple(_column(table, c, np.float64) for c in centroid_columns)
    duplicated = None
    if duplicated_column and duplicated_column in names:
        duplicated = _column(table, duplicated_column, bool)
    attrs = {}
    for c in attributes:
        if c not in names:
            raise InputError(f"{path}: has no attribute column {c!r} (a statistic needs it)")
        attrs[c] = _column(table, c, np.float64)
    return TileData(polys, centroids, attrs, duplicated, meta.get("crs"),
                    int(data.nbytes + offsets.nbytes))


def _column(table, name, dtype):
    col = one_chunk(table[name])
    if dtype is bool:
        return np.asarray(col.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=dtype)


#: Spellings of WGS 84 longitude/latitude. EPSG:4326 and OGC:CRS84 differ only in axis
#: order, which neither GeoPackage geometries nor our x = longitude arrays use.
_WGS84_LONLAT = {("EPSG", "4326"), ("OGC", "CRS84")}


@lru_cache(maxsize=64)
def _crs_matches(file_crs: str, grid_crs: str) -> bool:
    from rasterio.crs import CRS

    a, b = CRS.from_user_input(file_crs), CRS.from_user_input(grid_crs)
    return a == b or (a.to_authority() in _WGS84_LONLAT and b.to_authority() in _WGS84_LONLAT)


def check_crs(path, file_crs, grid: TileGrid) -> None:
    """Refuse a file whose CRS is not the tile matrix set's; warn if it has none.

    A file without a CRS is assumed to be in the TMS CRS (staging writes them so), with a
    warning, rather than refused.
    """
    if not file_crs:
        warnings.warn(f"{path}: has no CRS; assuming the {grid.tms} CRS ({grid.crs})",
                      stacklevel=3)
        return
    if not _crs_matches(file_crs, grid.crs):
        raise InputError(f"{path}: CRS {_short(file_crs)} is not the {grid.tms} CRS "
                         f"{grid.crs}; reproject (stage) it first")


def _short(wkt: str) -> str:
    return wkt if len(wkt) < 60 else wkt[:57] + "..."
