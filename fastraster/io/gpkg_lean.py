"""A GeoPackage reader without GDAL, for the small staged tiles where opening GDAL costs more
than reading the rows.

:func:`read_staged_lean` returns the same :class:`~fastraster.io.staged.TileData` as
:func:`fastraster.io.staged.read_staged` (``tests/test_gpkg_lean.py``) using Python's ``sqlite3``
(``immutable=1``): one ``SELECT`` of the geometry blobs and the needed columns, the
GeoPackage blob headers skipped in vectorised numpy, the WKB decoded by the same numba
decoder as the pyogrio path. :func:`read_staged_auto` takes it for GeoPackages of at most
``max_rows`` features and pyogrio for everything else, and falls back to pyogrio whenever
the file holds anything this reader does not handle (several layers, extensions other than
the R-tree index, blobs without the GeoPackage header, e.g. SpatiaLite's, the extended
GeoPackage geometry flag, non-numeric columns, undefined or local CRSs).

Why a row limit: Python's ``sqlite3`` builds a tuple and a bytes object per row. On PDG's
z13 tiles (1.4k-1.7k rows) it reads in ~1.0 ms where pyogrio takes ~2.1-2.6 ms (GDAL's open
dominates); on the dense 25k-row tile 28 ms against pyogrio's 13 ms
(``benchmarks/entry_points.py``). Measured again side by side on subsets of the dense
tile (720 bytes per row; medians of 15, loaded machine): 250 rows 1.6 vs 3.4 ms, 2,000 rows
4.4 vs 5.3 ms, 3,000 rows 9.1 vs 5.6 ms, 10,000 rows 24 vs 13 ms. Finding out that a file is
over the limit costs a refused attempt ~0.6 ms (SQLite parses the schema on the first
statement), so files larger than ``max_rows`` x 4 KiB go to pyogrio unopened (rows of PDG's
real z13 tiles take ~2.3 kB). The garbage collector is paused during the fetch: with
many live objects in the process (a worker holding geometries), its passes over the new
row tuples took the dense read from 28 to 87 ms — the reason this route was once measured
at 56-74 ms.
"""

from __future__ import annotations

import gc
import os
import sqlite3
from pathlib import Path

import numpy as np

from fastraster.io.geotiff_lean import lean_io_enabled
from fastraster.io.staged import (
    CENTROID_COLUMNS,
    DUPLICATED_COLUMN,
    InputError,
    TileData,
    read_staged,
)
from fastraster.model.geometry import RaggedPolygons, wkb_problems

#: Feature count up to which :func:`read_staged_auto` uses the lean reader (measured
#: crossover with pyogrio ~2-3k rows on the development VM; see the module docstring).
DEFAULT_MAX_ROWS = 2000

#: Files over ``max_rows`` times this many bytes are not tried by the lean reader.
MAX_ROW_BYTES = 4096

#: Envelope sizes in bytes by the header's envelope indicator (GeoPackage 1.x, 2.1.3).
_ENVELOPE_BYTES = np.array([0, 32, 48, 48, 64, 0, 0, 0], np.int64)
_NUMERIC = ("INT", "REAL", "FLOA", "DOUB", "NUMERIC", "BOOLEAN", "DECIMAL")


class LeanGpkgUnsupported(Exception):
    """The file holds something only GDAL reads; use :func:`fastraster.io.staged.read_staged`."""


def read_staged_auto(path, *, attributes=(), centroid_columns=CENTROID_COLUMNS,
                     duplicated_column=DUPLICATED_COLUMN, max_rows=DEFAULT_MAX_ROWS) -> TileData:
    """:func:`fastraster.io.staged.read_staged`, through :func:`read_staged_lean` for
    GeoPackages of at most ``max_rows`` features (the lean reader is faster there) whenever it
    can read them, unless ``FASTRASTER_LEAN_IO=0``; the same :class:`TileData` either way."""
    kw = dict(attributes=attributes, centroid_columns=centroid_columns,
              duplicated_column=duplicated_column)
    if (os.fspath(path).lower().endswith(".gpkg") and lean_io_enabled()
            and not _larger_than(path, max_rows * MAX_ROW_BYTES)):
        try:
            return read_staged_lean(path, max_rows=max_rows, **kw)
        except LeanGpkgUnsupported:
            pass
    return read_staged(path, **kw)


def _larger_than(path, nbytes) -> bool:
    try:
        return os.stat(path).st_size > nbytes
    except OSError:
        return False  # the readers report it


def read_staged_lean(path, *, attributes=(), centroid_columns=CENTROID_COLUMNS,
                     duplicated_column=DUPLICATED_COLUMN, max_rows=None) -> TileData:
    """Read a staged GeoPackage's polygons and the columns the statistics need with sqlite3.

    Parameters are those of :func:`fastraster.io.staged.read_staged`; ``max_rows``: refuse (with
    :class:`LeanGpkgUnsupported`) files of more features, by the feature count GDAL keeps.

    Raises
    ------
    LeanGpkgUnsupported
        The file needs GDAL (see the module docstring); nothing about it is wrong.
    InputError
        A broken file or a missing attribute column; the message names the file.
    """
    path = os.fspath(path)
    try:
        con = sqlite3.connect(Path(path).absolute().as_uri() + "?immutable=1", uri=True)
    except sqlite3.Error as exc:
        raise LeanGpkgUnsupported(f"{path}: {exc}") from exc
    try:
        return _read(con, path, attributes, centroid_columns, duplicated_column, max_rows)
    except sqlite3.Error as exc:  # not a GeoPackage as expected: GDAL will tell
        raise LeanGpkgUnsupported(f"{path}: {exc}") from exc
    finally:
        con.close()


def _read(con, path, attributes, centroid_columns, duplicated_column, max_rows):
    layers = con.execute("SELECT table_name, column_name, srs_id FROM gpkg_geometry_columns"
                         ).fetchall()
    if len(layers) != 1:
        raise LeanGpkgUnsupported(f"{path}: {len(layers)} geometry layers")
    table, geom, srs_id = layers[0]
    if _has_extensions(con, table):
        raise LeanGpkgUnsupported(f"{path}: GeoPackage extensions")
    if max_rows is not None:
        n = _feature_count(con, table)
        if n is None or n > max_rows:
            raise LeanGpkgUnsupported(f"{path}: {n} features (lean reader limit {max_rows})")
    crs = _crs(con, srs_id, path)
    declared = {row[1]: (row[2] or "").upper() for row in
                con.execute(f"PRAGMA table_info({_quote(table)})")}
    for c in attributes:
        if c not in declared:
            raise InputError(f"{path}: has no attribute column {c!r} (a statistic needs it)")
    cents = [c for c in centroid_columns if c] if centroid_columns else []
    use_cents = bool(cents) and all(c in declared for c in cents)
    use_dup = bool(duplicated_column) and duplicated_column in declared
    columns = [*(cents if use_cents else []), *([duplicated_column] if use_dup else []),
               *attributes]
    for c in columns:
        if not any(k in declared[c] for k in _NUMERIC):
            raise LeanGpkgUnsupported(f"{path}: column {c!r} is {declared[c] or 'untyped'}")
    select = ", ".join([f"ifnull({_quote(geom)}, x'')", *(_quote(c) for c in columns)])
    # One tuple per row is sqlite3's only form; the collector must not scan them all as they
    # pile up (see the module docstring).
    enabled = gc.isenabled()
    gc.disable()
    try:
        rows = con.execute(f"SELECT {select} FROM {_quote(table)}").fetchall()
        values = tuple(zip(*rows)) if rows else ((),) * (1 + len(columns))
        del rows
        blobs = values[0]
        try:
            data = np.frombuffer(b"".join(blobs), np.uint8)
        except TypeError as exc:
            raise LeanGpkgUnsupported(f"{path}: geometry values that are not blobs") from exc
        lengths = np.fromiter(map(len, blobs), np.int64, len(blobs))
        del blobs
        cols = {}
        for c, v in zip(columns, values[1:]):
            try:
                cols[c] = np.array(v, dtype=np.float64)  # None (SQL NULL) -> NaN
            except (TypeError, ValueError) as exc:
                raise LeanGpkgUnsupported(f"{path}: column {c!r} holds non-numbers") from exc
    finally:
        if enabled:
            gc.enable()
    polys, nbytes = _decode(path, data, lengths)
    centroids = (cols[cents[0]], cols[cents[1]]) if use_cents else None
    duplicated = None
    if use_dup:
        d = cols[duplicated_column]
        duplicated = np.where(np.isnan(d), False, d != 0)
    attrs = {c: cols[c] for c in attributes}
    return TileData(polys, centroids, attrs, duplicated, crs, nbytes)


def _decode(path, data: np.ndarray, lengths: np.ndarray) -> tuple[RaggedPolygons, int]:
    """Skip each blob's GeoPackage header (vectorised) and decode the WKB after it."""
    n = lengths.size
    starts = np.zeros(n, np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    ends = starts + lengths
    present = lengths > 0  # NULL geometries arrive as empty blobs
    short = present & (lengths < 8)
    if short.any():
        raise InputError(f"{path}: feature {int(np.flatnonzero(short)[0])} has a truncated "
                         "GeoPackage geometry header")
    s = starts[present]
    if s.size and not ((data[s] == 0x47) & (data[s + 1] == 0x50) & (data[s + 2] == 0)).all():
        raise LeanGpkgUnsupported(f"{path}: geometry blobs without the GeoPackage header")
    flags = data[s + 3]
    if (flags & 0x20).any() or (((flags >> 1) & 7) > 4).any():
        raise LeanGpkgUnsupported(f"{path}: extended GeoPackage geometries")
    wkb_start = starts.copy()
    wkb_start[present] = s + 8 + _ENVELOPE_BYTES[(flags >> 1) & 7]
    over = wkb_start > ends
    if over.any():
        raise InputError(f"{path}: feature {int(np.flatnonzero(over)[0])} has a truncated "
                         "GeoPackage geometry header")
    # The WKB decoder takes consecutive ranges; give it (wkb start, end) of each blob
    # interleaved with the (end, next wkb start) gaps as null entries, then keep every
    # other geometry. The gaps decode to no parts, so the offsets stay consistent.
    offsets = np.empty(2 * n, np.int64)
    offsets[0::2] = wkb_start
    offsets[1::2] = ends
    valid = np.zeros(max(2 * n - 1, 0), np.bool_)
    valid[0::2] = present
    if n == 0:
        return RaggedPolygons.empty(), 8
    polys, status = RaggedPolygons.from_wkb(data, offsets, valid)
    problems = wkb_problems(status[0::2])
    if problems:
        raise InputError(f"{path}: " + "; ".join(problems))
    go = polys.geom_offsets
    geom_offsets = np.append(go[0:2 * n - 1:2], go[-1])
    polys = RaggedPolygons(polys.x, polys.y, polys.ring_offsets, polys.part_offsets,
                           geom_offsets)
    # Bytes of WKB as pyogrio hands them over (its WKB column and int64 offsets).
    return polys, int((ends - wkb_start).sum() + 8 * (n + 1))


def _has_extensions(con, table) -> bool:
    try:
        rows = con.execute("SELECT extension_name FROM gpkg_extensions WHERE "
                           "lower(table_name) = lower(?)", (table,)).fetchall()
    except sqlite3.OperationalError:  # no gpkg_extensions table: no extensions
        return False
    return any(r[0] != "gpkg_rtree_index" for r in rows)


def _feature_count(con, table):
    try:
        row = con.execute("SELECT feature_count FROM gpkg_ogr_contents WHERE "
                          "lower(table_name) = lower(?)", (table,)).fetchone()
    except sqlite3.OperationalError:
        row = None
    if row is None or row[0] is None:  # not kept by the writer: count (a scan of the index)
        row = con.execute(f"SELECT count(*) FROM {_quote(table)}").fetchone()
    return row[0]


def _crs(con, srs_id, path):
    """The layer's CRS as pyogrio reports it: ``"EPSG:<code>"`` for EPSG ids, else the WKT."""
    row = con.execute("SELECT organization, organization_coordsys_id, definition FROM "
                      "gpkg_spatial_ref_sys WHERE srs_id = ?", (srs_id,)).fetchone()
    if row is None or srs_id is None or srs_id <= 0:
        raise LeanGpkgUnsupported(f"{path}: undefined CRS (srs_id {srs_id})")
    org, code, definition = row
    if (org or "").upper() == "EPSG" and code is not None and code > 0:
        return f"EPSG:{code}"
    if not definition or definition.strip().lower() == "undefined":
        raise LeanGpkgUnsupported(f"{path}: CRS {srs_id} without a definition")
    if definition.lstrip().upper().startswith("LOCAL_CS"):
        # GDAL writes a layer without CRS as srs_id 99999, LOCAL_CS["Undefined SRS", ...],
        # and reads it back as no CRS: GDAL decides what such local systems mean.
        raise LeanGpkgUnsupported(f"{path}: local (engineering) CRS {srs_id}")
    return definition


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
