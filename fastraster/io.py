"""Reading staged GeoPackages and writing GeoTIFFs (atomically)."""

from __future__ import annotations

import os
import uuid
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from fastraster import _kernels as K
from fastraster.geometry import RaggedPolygons, wkb_problems
from fastraster.grid import TileGrid

#: PDG staging columns (viz-staging's defaults).
CENTROID_COLUMNS = ("staging_centroid_x", "staging_centroid_y")
DUPLICATED_COLUMN = "staging_duplicated"


class InputError(ValueError):
    """A staged file cannot be rasterized; the message names the file and the problem."""


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
    data, offsets, valid = _wkb_buffers(table[geom_name])
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


def _one_chunk(column):
    """A ChunkedArray as one Array; zero-copy when it has one chunk (combine_chunks copies)."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _column(table, name, dtype):
    col = _one_chunk(table[name])
    if dtype is bool:
        return np.asarray(col.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=dtype)


def _wkb_buffers(column):
    """(data uint8, offsets int64, valid bool) of an Arrow (large) binary column, zero-copy."""
    import pyarrow as pa

    arr = _one_chunk(column) if isinstance(column, pa.ChunkedArray) else column
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


# ---------------------------------------------------------------------------------------------
# GeoTIFF output
# ---------------------------------------------------------------------------------------------


def geotiff_profile(grid: TileGrid, count: int, dtype="float32", nodata=None, cog=False):
    """The output profile (SPEC §3): deflate with floating-point predictor, internal tiles."""
    from rasterio.crs import CRS

    dtype = np.dtype(dtype).name
    profile = {
        "driver": "COG" if cog else "GTiff",
        "dtype": dtype, "count": count, "height": grid.height, "width": grid.width,
        "crs": CRS.from_user_input(grid.crs), "transform": grid.transform,
        "compress": "deflate",
        "predictor": 3 if np.dtype(dtype).kind == "f" else 2,
        # Deflate level 1, not GDAL's 6: as small for these rasters and faster to write
        # (dense tile 7.7 vs 10.1 ms, PDG tile 4.5 vs 7.4 ms: benchmarks/write_levels.py).
        "zlevel": 1,
    }
    if nodata is not None:
        profile["nodata"] = nodata
    if cog:
        profile["blocksize"] = min(512, grid.width)
        profile.pop("predictor")
        profile["predictor"] = "FLOATING_POINT" if np.dtype(dtype).kind == "f" else "YES"
        profile["level"] = profile.pop("zlevel")  # the COG driver's name for it
    elif grid.width % 16 == 0 and grid.height % 16 == 0:
        profile.update(tiled=True, blockxsize=min(256, grid.width),
                       blockysize=min(256, grid.height))
    return profile


@contextmanager
def atomic_path(path, suffix=".tmp"):
    """Yield a temporary path beside ``path``; on success ``os.replace`` it onto ``path``.

    On any error the temporary file is removed and the error re-raised, so a reader (or a
    crashed run) never sees a half-written file under the final name. The folder is created.
    """
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex}{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_geotiff(path, array: np.ndarray, grid: TileGrid, names, *, dtype="float32",
                  nodata=None, cog=False) -> None:
    """Write bands to ``path`` atomically: a temp file in the same folder, then ``os.replace``.

    A reader (or a crashed run) never sees a half-written file under the final name.
    """
    import rasterio

    profile = geotiff_profile(grid, array.shape[0], dtype, nodata, cog)
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(array.astype(profile["dtype"], copy=False))
        dst.descriptions = tuple(names)


def band_summary(array: np.ndarray) -> dict:
    """pdgraster's per-band summary values (min, max, mean, median, std, var, sum).

    NaN pixels (no value, e.g. a mean with no polygon) are left out once, up front: the
    nan-aware numpy functions would each rescan for NaN.
    """
    raw = np.ascontiguousarray(array).ravel()
    a = raw.astype(np.float64, copy=False)
    nan = np.isnan(a)
    if nan.any():
        a = a[~nan]
        raw = raw[~nan]
    if a.size == 0:
        return dict.fromkeys(("min", "max", "mean", "median", "std", "var", "sum"), np.nan)
    var = a.var()  # numpy's std is exactly sqrt(var): one pass saved
    # float32 bands (the default output): the same median by radix selection, 1.6-3.5x faster.
    median = K.float32_median(raw) if raw.dtype == np.float32 else np.median(a)
    return {"min": float(a.min()), "max": float(a.max()), "mean": float(a.mean()),
            "median": float(median), "std": float(np.sqrt(var)), "var": float(var),
            "sum": float(a.sum())}
