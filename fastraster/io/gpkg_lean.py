"""A GeoPackage reader without GDAL, for the small staged tiles where opening GDAL costs more
than reading the rows.

:func:`read_staged_lean` returns the same :class:`~fastraster.io.staged.TileData`, the same
errors and the same warnings as :func:`fastraster.io.staged.read_staged` for the same file
(``tests/test_gpkg_lean.py``; every bad input of ``tests/test_bad_inputs.py`` through both)
using Python's ``sqlite3`` (``immutable=1``): one ``SELECT`` of the geometry blobs and the
needed columns, the GeoPackage blob headers skipped in vectorised numpy, the WKB decoded by
the same numba decoder as the pyogrio path, and the same checks
(:func:`fastraster.io.staged.checked_tile_data`: geometry statuses, staging centroids,
attribute columns, warnings). :func:`read_staged_auto` takes it for GeoPackages of at most
``max_rows`` features and pyogrio for everything else, and hands the file to pyogrio
whenever it cannot be sure to read it as GDAL does: anything but one registered features
table (GDAL also lists unregistered tables and views as layers), extensions other than the
R-tree index, a geometry blob without a standard GeoPackage header (GDAL reads a damaged
header, plain WKB or SpatiaLite's as a null geometry; extended geometries it converts),
columns GDAL does not read as 64-bit numbers (FLOAT is float32 to GDAL, BIGINT not read at
all), values stored against their column's declared type (SQLite's dynamic typing; GDAL
reads text in a REAL column as 0.0, 1.5 in an INTEGER one as 1), a layer whose srs_id is
not in ``gpkg_spatial_ref_sys``, and any database SQLite or GDAL refuses. What the layer is
(its CRS, its fields' types, its FID and geometry column) is GDAL's own answer, asked once
per file shape and process (``_gdal_layer``).

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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fastraster.io.geotiff_lean import lean_io_enabled
from fastraster.io.staged import (
    CENTROID_COLUMNS,
    DUPLICATED_COLUMN,
    TileData,
    checked_tile_data,
    read_staged,
)
from fastraster.model.geometry import RaggedPolygons, all_finite

#: Feature count up to which :func:`read_staged_auto` uses the lean reader (measured
#: crossover with pyogrio ~2-3k rows on the development VM; see the module docstring).
DEFAULT_MAX_ROWS = 2000

#: Files over ``max_rows`` times this many bytes are not tried by the lean reader.
MAX_ROW_BYTES = 4096

#: Envelope sizes in bytes by the header's envelope indicator (GeoPackage 1.x, 2.1.3).
_ENVELOPE_BYTES = np.array([0, 32, 48, 48, 64, 0, 0, 0], np.int64)
#: Column types (as pyogrio reports GDAL's fields) read here, by how GDAL reads the SQLite
#: values: float64 (REAL, DOUBLE, NUMERIC: sqlite3_column_double), int64 (INTEGER, INT) and
#: bool (BOOLEAN: any integer but 0 is true). GDAL reads other declared types as narrower
#: numbers (MEDIUMINT, SMALLINT, TINYINT as int32/int16, FLOAT as float32), text or dates, or
#: not at all (BIGINT, DOUBLE PRECISION, DECIMAL(p, s): "not supported", the column is
#: dropped): such columns send the file to GDAL, or are missing as they are to GDAL.
_KINDS = {"float64": "real", "int64": "int", "bool": "bool"}


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
        The file needs GDAL (see the module docstring), to read it or to say what is wrong.
    InputError
        What :func:`~fastraster.io.staged.read_staged` raises for the same file (corrupt
        geometries, a non-finite staging centroid, a missing attribute column); the message
        starts with the path and names the features.
    """
    path = os.fspath(path)
    try:
        con = sqlite3.connect(Path(path).absolute().as_uri() + "?immutable=1", uri=True)
    except sqlite3.Error as exc:
        raise LeanGpkgUnsupported(f"{path}: {exc}") from exc
    try:
        return _read(con, path, attributes, centroid_columns, duplicated_column, max_rows)
    except (sqlite3.Error, UnicodeDecodeError) as exc:
        # Not a GeoPackage as expected (or damaged text in it): GDAL will tell.
        raise LeanGpkgUnsupported(f"{path}: {exc}") from exc
    finally:
        con.close()


def _read(con, path, attributes, centroid_columns, duplicated_column, max_rows):
    table, geom, shape = _the_layer(con, path)
    if _has_extensions(con, table):
        raise LeanGpkgUnsupported(f"{path}: GeoPackage extensions")
    info = con.execute(f"PRAGMA table_info({_quote(table)})").fetchall()
    if max_rows is not None:
        n = _feature_count(con, table)
        if n is None or n > max_rows:
            raise LeanGpkgUnsupported(f"{path}: {n} features (lean reader limit {max_rows})")
    gdal = _gdal_layer(path, (*shape, tuple(info)))
    pk = [row[1] for row in info if row[5]]
    if gdal.geometry != geom or [gdal.fid] != pk:
        raise LeanGpkgUnsupported(f"{path}: GDAL's geometry {gdal.geometry!r} and FID "
                                  f"{gdal.fid!r}, not {geom!r} and {pk}")
    wanted = [c for c in (*(centroid_columns or ()), duplicated_column, *attributes) if c]
    # The columns GDAL shows, once each (a missing one is reported by the shared checks).
    columns = [c for c in dict.fromkeys(wanted) if c in gdal.dtypes or c == geom]
    kinds = {c: _KINDS.get(gdal.dtypes.get(c)) for c in columns}
    for c, kind in kinds.items():
        if kind is None:
            raise LeanGpkgUnsupported(f"{path}: GDAL reads column {c!r} as "
                                      f"{gdal.dtypes.get(c, 'the geometry')}")
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
        cols = {c: _numbers(path, c, v, kinds[c]) for c, v in zip(columns, values[1:])}
    finally:
        if enabled:
            gc.enable()
    polys, status, nbytes = _decode(path, data, lengths)
    if status.any() or not all_finite(*cols.values()):
        # About to report a problem or a warning (a null or broken geometry, a null or
        # infinite value):
        # rows like these are also what a damaged table page reads as, and GDAL's own
        # SQLite may then stop or fail where Python's reads on (found by fuzzing a PDG
        # tile: GDAL read 1,217 of its 1,551 rows, without a word). So the table's B-tree
        # is checked first (~0.2-0.5 ms, only for such files); if damaged, GDAL decides.
        check = con.execute(f"PRAGMA quick_check({_quote(table)})").fetchone()
        if check != ("ok",):
            raise LeanGpkgUnsupported(f"{path}: table {table!r} is damaged: {check}")
    return checked_tile_data(path, polys, status, cols.__getitem__, {*gdal.dtypes, geom},
                             attributes=attributes, centroid_columns=centroid_columns,
                             duplicated_column=duplicated_column, crs=gdal.crs,
                             bytes_read=nbytes)


def _the_layer(con, path):
    """(table, geometry column, shape) of the file's one layer; ``shape`` is what GDAL's
    view of the layer depends on, but the table's columns (see :func:`_gdal_layer`).

    GDAL refuses a file without ``gpkg_contents``; it lists the ``features`` and
    ``attributes`` tables of ``gpkg_contents`` that exist and, by default, every other
    table and view too (a table renamed behind ``gpkg_contents``' back becomes a plain
    table, a layer without geometry). Anything but exactly one registered features table
    with one geometry column and no other table or view is left to GDAL.
    """
    contents = con.execute("SELECT table_name, data_type FROM gpkg_contents").fetchall()
    layers = con.execute("SELECT table_name, column_name, geometry_type_name, srs_id, z, m "
                         "FROM gpkg_geometry_columns").fetchall()
    if len(contents) != 1 or len(layers) != 1:
        raise LeanGpkgUnsupported(f"{path}: {len(contents)} tables in gpkg_contents, "
                                  f"{len(layers)} geometry columns")
    table, geom, _, srs_id, _, _ = layers[0]
    if not (isinstance(table, str) and isinstance(geom, str)
            and tuple(contents[0]) == (table, "features")):
        raise LeanGpkgUnsupported(f"{path}: gpkg_contents does not list {table!r} as features")
    srs = con.execute("SELECT * FROM gpkg_spatial_ref_sys WHERE srs_id = ?",
                      (srs_id,)).fetchone()
    if srs is None:
        raise LeanGpkgUnsupported(f"{path}: srs_id {srs_id} not in gpkg_spatial_ref_sys")
    header = (con.execute("PRAGMA application_id").fetchone(),
              con.execute("PRAGMA user_version").fetchone())
    user, system = [], []
    for name, sql in con.execute("SELECT name, sql FROM sqlite_master WHERE type IN "
                                 "('table', 'view')"):
        low = name.lower()
        if low.startswith("gpkg_"):
            system.append((name, sql))
        elif not low.startswith(("rtree_", "sqlite_")):
            user.append(name)
    if user != [table]:
        raise LeanGpkgUnsupported(f"{path}: tables {user}, not [{table!r}]")
    # GDAL lists layers by joining gpkg_geometry_columns and gpkg_contents through their
    # indexes, which the scans above do not read: damage there makes GDAL refuse a file
    # they read (found by fuzzing: a byte flipped in an index of gpkg_contents). A few
    # pages, ~20-40 us each. (The other gpkg_* tables both read alike: whole, or the
    # spatial reference row by its srs_id.)
    for name, _ in system:
        if name.lower() in _GDAL_OPEN_TABLES:
            check = con.execute(f"PRAGMA quick_check({_quote(name)})").fetchone()
            if check != ("ok",):
                raise LeanGpkgUnsupported(f"{path}: {name} is damaged: {check}")
    return table, geom, (header, layers[0][1:], srs, tuple(sorted(system)))


#: The GeoPackage tables GDAL reads through their indexes on opening a vector file.
_GDAL_OPEN_TABLES = ("gpkg_contents", "gpkg_geometry_columns")


def _numbers(path, name, values: tuple, kind: str) -> np.ndarray:
    """One column's values as GDAL reads them: float64, NULL as NaN, booleans 0/1.

    GDAL reads a column by its declared type whatever SQLite stored in it (SQLite's dynamic
    typing): an INTEGER column's 1.5 as 1, a REAL column's text "1_000" as 1.0 and "inf"
    as 0.0, a BOOLEAN column's 0.5 as false (``tests/test_gpkg_lean.py``). Only values of
    the kind GDAL reads the column as are converted here (integers for int64 and bool
    columns, numbers for float64 ones); any other value sends the file to GDAL.
    """
    a = np.array(values)  # int64 if all integers, float64 if all numbers, else object/str
    if not (a.dtype.kind == "i" or (a.dtype.kind == "f" and kind == "real")):
        allowed = {int, float, type(None)} if kind == "real" else {int, type(None)}
        if not set(map(type, values)) <= allowed:
            raise LeanGpkgUnsupported(f"{path}: column {name!r} holds values other than "
                                      f"{'numbers' if kind == 'real' else 'integers'}")
        a = np.array(values, dtype=np.float64)  # None -> NaN
    a = a.astype(np.float64, copy=False)
    if kind == "bool":  # GDAL: any integer but 0 is true
        a = np.where(np.isnan(a), np.nan, (a != 0).astype(np.float64))
    return a


def _decode(path, data: np.ndarray, lengths: np.ndarray):
    """Skip each blob's GeoPackage header (vectorised) and decode the WKB after it.

    Returns ``(polygons, status, bytes)``: the statuses of
    :meth:`~fastraster.model.geometry.RaggedPolygons.from_wkb`, one per feature.

    Only standard headers are read here ("GP", version 0, not extended, an envelope of 0,
    32, 48 or 64 bytes within the blob). GDAL reads a blob with any other header (too
    short, another version or envelope code, plain WKB, SpatiaLite's) as a null geometry,
    or converts it (extended geometries): GDAL decides, through pyogrio.
    """
    n = lengths.size
    if n == 0:
        return RaggedPolygons.empty(), np.empty(0, np.int8), 8
    starts = np.zeros(n, np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    ends = starts + lengths
    present = lengths > 0  # NULL geometries arrive as empty blobs
    if (present & (lengths < 8)).any():
        raise LeanGpkgUnsupported(f"{path}: geometry blobs shorter than a GeoPackage header")
    s = starts[present]
    if s.size and not ((data[s] == 0x47) & (data[s + 1] == 0x50) & (data[s + 2] == 0)).all():
        raise LeanGpkgUnsupported(f"{path}: geometry blobs without the GeoPackage header")
    flags = data[s + 3]
    if (flags & 0x20).any() or (((flags >> 1) & 7) > 4).any():
        raise LeanGpkgUnsupported(f"{path}: extended GeoPackage geometries")
    wkb_start = starts.copy()
    wkb_start[present] = s + 8 + _ENVELOPE_BYTES[(flags >> 1) & 7]
    if (wkb_start > ends).any():
        raise LeanGpkgUnsupported(f"{path}: geometry blobs shorter than their envelope")
    # The WKB decoder takes consecutive ranges; give it (wkb start, end) of each blob
    # interleaved with the (end, next wkb start) gaps as null entries, then keep every
    # other geometry. The gaps decode to no parts, so the offsets stay consistent.
    offsets = np.empty(2 * n, np.int64)
    offsets[0::2] = wkb_start
    offsets[1::2] = ends
    valid = np.zeros(2 * n - 1, np.bool_)
    valid[0::2] = present
    polys, status = RaggedPolygons.from_wkb(data, offsets, valid)
    go = polys.geom_offsets
    geom_offsets = np.append(go[0:2 * n - 1:2], go[-1])
    polys = RaggedPolygons(polys.x, polys.y, polys.ring_offsets, polys.part_offsets,
                           geom_offsets)
    # Bytes of WKB as pyogrio hands them over (its WKB column and int64 offsets).
    return polys, status[0::2], int((ends - wkb_start).sum() + 8 * (n + 1))


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


@dataclass(frozen=True)
class _GdalLayer:
    """What GDAL (through ``pyogrio.read_info``) makes of a layer: its CRS as pyogrio
    reports it, its fields' dtypes, FID and geometry column."""

    crs: str | None
    dtypes: dict
    fid: str
    geometry: str


#: :class:`_GdalLayer` by the file's shape: its header's application id and version, the
#: schemas of its ``gpkg_*`` tables, the layer's columns (``PRAGMA table_info``), geometry
#: column and spatial reference row. A staged tree's files share one shape (two for a tree
#: written by two GDAL versions), so GDAL is asked once per shape and process.
_GDAL_LAYERS: dict = {}
_GDAL_LAYERS_MAX = 64


def _gdal_layer(path, shape) -> _GdalLayer:
    """GDAL's view of the file's layer (see :class:`_GdalLayer`), asked once per ``shape``.

    GDAL decides what a GeoPackage's layer is by rules of its own: the CRS from an EPSG
    code or the WKT, by its version and the row's other columns (an unparsable definition
    and GDAL's "Undefined SRS" are no CRS); a field's type from its declared type (FLOAT is
    float32, BIGINT is not read); and it refuses files whose ``gpkg_*`` tables lack columns
    it queries. Rather than copy those rules, the first file of a shape asks GDAL
    (``pyogrio.read_info``, ~1.5 ms) and the answer is kept for the files of the same shape;
    a file GDAL cannot open is handed over (``read_staged`` reports why).
    """
    import pyogrio

    layer = _GDAL_LAYERS.get(shape)
    if layer is not None:
        return layer
    try:
        meta = pyogrio.read_info(path, IMMUTABLE="YES")
    except Exception as exc:  # pyogrio's errors: read_staged reports them
        raise LeanGpkgUnsupported(f"{path}: GDAL cannot open it: {exc}") from exc
    layer = _GdalLayer(meta["crs"], dict(zip(meta["fields"], map(str, meta["dtypes"]))),
                       meta["fid_column"], meta["geometry_name"])
    if len(_GDAL_LAYERS) < _GDAL_LAYERS_MAX:
        _GDAL_LAYERS[shape] = layer
    return layer


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
