"""Raw scenes: finding them and their footprints (PDG's path rule), reading footprints, and
reading scene files in chunks of features (bounded memory for any file size).

What happens to the polygons of a chunk is :mod:`fastraster.model.staging` (PDG's staging
steps, on arrays); :func:`decode_chunk` is the hand-over, naming the file in every error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import shapely

from fastraster.io.staged import InputError, numeric_column
from fastraster.model.geometry import RaggedPolygons, wkb_buffers, wkb_problems
from fastraster.model.staging import CORRUPT, polygon_rows, transform_geometry

#: Column of a GeoDataFrame input (and of a footprint GeoDataFrame) that names the scene
#: each row belongs to: PDG's ``staging_filename``.
SCENE_COLUMN = "staging_filename"

#: Features per chunk when reading a scene: bounds a worker's memory for any file size. A
#: chunk in flight costs ~1.9 kB per feature (peak RSS over a 176,840-feature file: 333 MB
#: at 4,096, 366 MB at 16,384, 449 MB at 65,536, 636 MB whole; 330 MB for the same
#: features in 40 files; ``benchmarks/sources.py memory``), with no measurable speed gain
#: beyond a few thousand features.
DEFAULT_CHUNK_SIZE = 16384


# ---------------------------------------------------------------------------------------------
# Scenes and footprints
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scene:
    """One input scene (one file, or one group of a GeoDataFrame).

    ``name`` is PDG's ``staging_filename``: the path relative to the input folder. Scenes are
    numbered by sorted name, so every result is independent of the order of the inputs.
    """

    id: int
    name: str
    path: str | None
    footprint: object = None  # a path, an in-memory footprint, or None when there is none
    data: object = None  # a pyarrow Table (WKB + attributes) for in-memory scenes

    @property
    def label(self) -> str:
        """How messages name the scene: its path, else its name."""
        return self.path or self.name


def find_scenes(inputs, footprints=None, *, ext=".shp", footprint_ext=".shp",
                input_root=None) -> list[Scene]:
    """The scenes of ``inputs`` with their footprints, numbered by sorted name.

    Parameters
    ----------
    inputs : path, list of paths, or GeoDataFrame
        A folder (every file ending in ``ext`` below it, recursively; hidden files skipped),
        one file, a list of files, or a GeoDataFrame (one scene per value of its
        ``staging_filename`` column, or one scene if it has none).
    footprints : path, mapping or GeoDataFrame, optional
        A folder mirroring the input folder (PDG's rule: ``<footprints>/<scene name without
        extension><footprint_ext>``), a mapping from scene name or path to a footprint path
        or GeoDataFrame, or a GeoDataFrame of footprints (with a ``staging_filename`` column
        unless there is one scene).
    input_root : path, optional
        The folder scene names (and so the footprint mirror) are relative to; default the
        ``inputs`` folder, or the deepest folder holding all of a list of files.

    Raises
    ------
    FileNotFoundError, ValueError
        For a missing input folder or file, or two scenes with the same name.
    """
    if _is_geodataframe(inputs):
        named = _frame_scenes(inputs)
        root = None
    else:
        paths, root = _scene_paths(inputs, ext)
        if input_root is not None:
            root = os.fspath(input_root)
        named = [(_scene_name(p, root), p, None) for p in paths]
    named.sort(key=lambda t: t[0])
    names = [n for n, _, _ in named]
    dup = sorted({n for i, n in enumerate(names) if i and names[i - 1] == n})
    if dup:
        raise ValueError(f"two inputs have the same scene name {dup[0]!r}")
    fp_frames = _footprint_frames(footprints, names) if _is_geodataframe(footprints) else None
    scenes = []
    for i, (name, path, data) in enumerate(named):
        if fp_frames is not None:
            fp = fp_frames.get(name)
        else:
            fp = _footprint_for(name, path, footprints, footprint_ext)
        scenes.append(Scene(i, name, path, fp, data))
    return scenes


def _is_geodataframe(obj) -> bool:
    return hasattr(obj, "geometry") and hasattr(obj, "columns")


def _scene_paths(inputs, ext):
    if isinstance(inputs, (str, os.PathLike)):
        p = os.fspath(inputs)
        if os.path.isdir(p):
            found = []
            for root, dirs, files in os.walk(p):
                dirs.sort()
                found.extend(os.path.join(root, f) for f in sorted(files)
                             if f.endswith(ext) and not f.startswith("."))
            return found, p
        if not os.path.exists(p):
            raise FileNotFoundError(f"{p}: no such file or directory")
        return [p], os.path.dirname(p)
    paths = [os.fspath(p) for p in inputs]
    for p in paths:
        if not os.path.exists(p):
            raise FileNotFoundError(f"{p}: no such file")
    if not paths:
        return [], None
    root = os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths])
    return paths, root


def _scene_name(path, root) -> str:
    # PDG's staging_filename: the path with the dir_input prefix and os.sep removed.
    return os.path.relpath(os.path.abspath(path), os.path.abspath(root))


def _footprint_for(name, path, footprints, footprint_ext):
    if footprints is None:
        return None
    if isinstance(footprints, Mapping):
        for key in (name, path):
            if key is not None and key in footprints:
                return footprints[key]
        return None
    folder = os.fspath(footprints)
    # CM:footprint_path_from_input: dir_footprints / <relative path without extension> + ext.
    fp = os.path.join(folder, os.path.splitext(name)[0] + footprint_ext)
    return fp if os.path.exists(fp) else None


def _frame_scenes(gdf):
    """(name, None, arrow table) per scene of a GeoDataFrame."""
    import pyarrow as pa

    if gdf.crs is None:
        crs = None
    else:
        crs = gdf.crs.to_wkt()
    geom_col = gdf.geometry.name
    if SCENE_COLUMN in gdf.columns:
        groups = [(str(k), g) for k, g in gdf.groupby(SCENE_COLUMN, sort=True)]
    else:
        groups = [("geodataframe", gdf)]
    out = []
    for name, g in groups:
        cols = {c: g[c].to_numpy() for c in g.columns
                if c not in (geom_col, SCENE_COLUMN) and np.asarray(g[c]).dtype.kind in "biuf"}
        wkb = shapely.to_wkb(np.asarray(g.geometry.values, dtype=object))
        table = pa.table({**cols, "wkb_geometry": pa.array(wkb, pa.binary())})
        out.append((name, None, (table, crs)))
    return out


def _footprint_frames(fp_gdf, names):
    if SCENE_COLUMN in fp_gdf.columns:
        return {str(k): g for k, g in fp_gdf.groupby(SCENE_COLUMN, sort=True)}
    if len(names) != 1:
        raise ValueError(f"a footprint GeoDataFrame for {len(names)} scenes needs a "
                         f"{SCENE_COLUMN!r} column naming the scene of each footprint")
    return {names[0]: fp_gdf}


@dataclass(frozen=True)
class Footprint:
    """A scene's footprint: its geometry (WKB) in its own CRS and in the tile matrix set's,
    and the values of the keep-rule columns."""

    wkb: bytes
    crs: str | None
    wkb_tms: bytes
    keys: tuple

    @property
    def geometry(self):
        return shapely.from_wkb(self.wkb)

    @property
    def geometry_tms(self):
        return shapely.from_wkb(self.wkb_tms)


def read_footprint(source, scene: Scene, keep_columns, tms_crs) -> Footprint:
    """Read a footprint (path or GeoDataFrame) into a :class:`Footprint`.

    A footprint with several features is used as their union (PDG's code assumes one feature
    per file: with several, its sjoin would duplicate rows and its element-wise intersection
    pair features by index). The keep-rule values must then agree across the features.

    Raises
    ------
    InputError
        Naming the footprint and the scene, if it cannot be read, has no polygon, lacks a
        keep-rule column or holds conflicting keep-rule values.
    """
    label = source if isinstance(source, (str, os.PathLike)) else f"footprint of {scene.label}"
    try:
        if isinstance(source, (str, os.PathLike)):
            import pyogrio.raw

            meta, _, geoms, fields = pyogrio.raw.read(os.fspath(source))
            names = list(meta["fields"])
            crs = meta.get("crs")
            columns = dict(zip(names, fields))
            geoms = shapely.from_wkb(geoms)
        else:
            gdf = source
            crs = gdf.crs.to_wkt() if gdf.crs is not None else None
            columns = {c: gdf[c].to_numpy() for c in gdf.columns if c != gdf.geometry.name}
            geoms = np.asarray(gdf.geometry.values, dtype=object)
    except Exception as exc:  # pyogrio's DataSourceError and friends
        raise InputError(f"{label}: cannot read the footprint of {scene.label}: {exc}") from exc
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    geoms = geoms[keep]
    if geoms.size == 0:
        raise InputError(f"{label}: the footprint of {scene.label} has no geometry")
    keys = []
    for col in keep_columns:
        if col not in columns:
            raise InputError(f"{label}: the footprint of {scene.label} has no column {col!r} "
                             "(a keep rule needs it)")
        values = {_plain(v) for v in np.asarray(columns[col], dtype=object)[keep]}
        if len(values) != 1:
            raise InputError(f"{label}: the footprint of {scene.label} has {len(values)} "
                             f"different {col!r} values; a keep rule needs one per scene")
        keys.append(values.pop())
    geom = geoms[0] if geoms.size == 1 else shapely.union_all(geoms)
    if not crs:
        raise InputError(f"{label}: the footprint of {scene.label} has no CRS")
    geom_tms = transform_geometry(geom, crs, tms_crs)
    return Footprint(shapely.to_wkb(geom), crs, shapely.to_wkb(geom_tms), tuple(keys))


def _plain(v):
    """A keep-rule value as a comparable Python object (None for nulls)."""
    if v is None:
        return None
    if isinstance(v, np.datetime64):
        return None if np.isnat(v) else v.astype("datetime64[ns]").astype(np.int64).item()
    if isinstance(v, (float, np.floating)):
        return None if np.isnan(v) else float(v)
    if isinstance(v, (np.integer, np.bool_)):
        return int(v)
    if isinstance(v, bytes):
        return v.decode()
    if hasattr(v, "isoformat"):  # datetime / pandas Timestamp
        return v.isoformat()
    return v


# ---------------------------------------------------------------------------------------------
# Reading scenes in chunks
# ---------------------------------------------------------------------------------------------


@dataclass
class Chunk:
    """A run of consecutive features of a scene, as read."""

    start: int  # index of the first feature in the scene
    data: np.ndarray  # WKB bytes
    offsets: np.ndarray  # int64 (n + 1)
    valid: np.ndarray  # bool (n)
    attributes: dict  # column -> float64 array (n)

    def __len__(self) -> int:
        return self.valid.shape[0]


@contextmanager
def open_scene(scene: Scene, columns=(), chunk_size=DEFAULT_CHUNK_SIZE):
    """Open a scene for reading: ``(crs, chunks)``, its CRS as stored (None if it has none)
    and an iterator of :class:`Chunk` s of at most ``chunk_size`` features.

    Files are streamed with ``pyogrio.raw.open_arrow`` (one Arrow batch per chunk), so a
    file of any size is read in bounded memory, and opened once (the CRS and the field
    names come with the stream).

    Raises
    ------
    InputError
        If the file cannot be read or lacks a needed attribute column.
    """
    columns = list(columns)
    size = max(int(chunk_size), 1)
    if scene.data is not None:
        table, crs = scene.data
        _check_columns(scene, columns, table.column_names)
        yield crs, _table_chunks(table, columns, size, scene.label)
        return
    import pyogrio.raw

    try:
        ctx = pyogrio.raw.open_arrow(scene.path, columns=columns, use_pyarrow=True,
                                     batch_size=size)
        meta, reader = ctx.__enter__()
    except Exception as exc:  # pyogrio's DataSourceError and friends
        raise InputError(f"{scene.path}: cannot read: {exc}") from exc
    try:
        _check_columns(scene, columns, list(meta["fields"]))  # pyogrio skips missing ones
        geom = meta.get("geometry_name") or "wkb_geometry"
        yield meta.get("crs"), _stream_chunks(reader, geom, columns, scene.path)
    finally:
        ctx.__exit__(None, None, None)


def _table_chunks(table, columns, size, label):
    start = 0
    for batch in table.to_batches(max_chunksize=size):
        yield _chunk(batch, "wkb_geometry", columns, start, label)
        start += batch.num_rows


def _stream_chunks(reader, geom, columns, path):
    start = 0
    batches = iter(reader)
    while True:
        try:
            batch = next(batches, None)
        except Exception as exc:  # a corrupt record half-way through the file
            raise InputError(f"{path}: cannot read: {exc}") from exc
        if batch is None:
            return
        yield _chunk(batch, geom, columns, start, path)
        start += batch.num_rows


def _check_columns(scene, columns, present):
    missing = [c for c in columns if c not in present]
    if missing:
        raise InputError(f"{scene.label}: has no attribute column {missing[0]!r} "
                         "(a statistic needs it)")


def _chunk(batch, geom, columns, start, label):
    data, offsets, valid = wkb_buffers(batch.column(geom))
    # Attribute columns as float64, nulls as NaN; text columns refused, naming the file.
    if columns:
        import pyarrow as pa

        table = pa.Table.from_batches([batch])  # zero-copy; the reader takes tables
        attrs = {c: numeric_column(table, c, label) for c in columns}
    else:
        attrs = {}
    return Chunk(start, data, offsets, valid, attrs)


def decode_chunk(chunk: Chunk, label: str) -> tuple[RaggedPolygons, np.ndarray]:
    """The chunk's plain, non-empty Polygons (PDG's filter,
    :func:`~fastraster.model.staging.polygon_rows`) and their feature numbers in the scene.

    Raises
    ------
    InputError
        For corrupt geometries (truncated or malformed WKB, NaN or infinite coordinates,
        rings of 1 or 2 points), naming the scene and the features.
    """
    polys, keep, status = polygon_rows(chunk.data, chunk.offsets, chunk.valid)
    problems = wkb_problems(status, first=chunk.start, codes=CORRUPT)
    if problems:
        raise InputError(f"{label}: " + "; ".join(problems))
    return polys, keep + chunk.start


def input_bytes(scene: Scene) -> int:
    """Bytes of the scene's file(s) on disk (a shapefile's .shp, .shx and .dbf), 0 for an
    in-memory scene."""
    if scene.path is None:
        return 0
    stem = os.path.splitext(scene.path)[0]
    if scene.path.lower().endswith(".shp"):  # the geometry and attribute files
        return sum(os.path.getsize(stem + e) for e in (".shp", ".shx", ".dbf")
                   if os.path.exists(stem + e))
    return os.path.getsize(scene.path)
