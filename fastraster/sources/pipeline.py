"""``rasterize_sources``: raw scenes (+ footprints) straight to max-zoom GeoTIFFs, PDG's way,
without staging.

Three passes, each a set of independent joblib tasks (so they run on loky, threads or a Dask
cluster through the package's batching):

1. **footprints** (driver, cheap): read every scene's footprint, rank scenes by the keep
   rules, and list for each scene the preferred scenes whose footprints intersect its own.
2. **map**, one task per scene: read the file in chunks (bounded memory for any file size),
   apply PDG's staging steps (:mod:`~fastraster.sources.scenes`), assign tiles
   (:mod:`~fastraster.sources.assign`), compute the footprint-overlap bits
   (:mod:`~fastraster.sources.dedup`), and write the rows that can count, sorted by tile, to
   one Arrow file (:mod:`~fastraster.sources.store`). It returns the tiles the scene is
   present in (clip-flagged rows included) and where each tile's rows are.
3. **reduce**, one task per group of nearby tiles: for each tile, read its rows from the
   scenes present (memory-mapped slices), flag them with the tile's set of present scenes,
   and run the package's kernels on the rest; write the GeoTIFF atomically.

A worker's memory is bounded by one chunk (map) or one tile's rows (reduce), whatever the
number and size of the inputs. Rows are taken in scene-name then feature order, so outputs do
not depend on input order, ``n_jobs`` or backend.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
import traceback
import uuid
import warnings
from dataclasses import dataclass

import numpy as np

from fastraster import _kernels as K
from fastraster.compute import compute_stats
from fastraster.geometry import RaggedPolygons
from fastraster.grid import TileGrid
from fastraster.io import InputError, band_summary, write_geotiff
from fastraster.pipeline import (
    Report,
    batched_records,
    output_path,
    write_events,
    write_summary,
)
from fastraster.sources import dedup, scenes
from fastraster.sources.assign import TileScheme, assign_tiles, key_xy, morton
from fastraster.sources.rules import PdgSourceRules
from fastraster.sources.store import Rows, SceneReader, SceneWriter, make_batch


class SourcesReport(Report):
    """Tile records (one per output tile, like :func:`fastraster.rasterize_dir`'s), plus
    ``scenes``: one record per input scene (status, counts, phase times), and ``passes``:
    wall seconds of the driver's steps (``find``, ``warm_up``, ``footprints``, ``map``,
    ``plan``, ``reduce``, ``csv``)."""

    scenes: list
    passes: dict

    @property
    def errors(self) -> list[dict]:
        return ([r for r in self.scenes if r["status"] == "error"]
                + [r for r in self if r["status"] == "error"])

    def summary_line(self) -> str:
        bad = sum(1 for r in self.scenes if r["status"] == "error")
        return f"{len(self.scenes)} scenes ({bad} failed); " + super().summary_line()


# ---------------------------------------------------------------------------------------------
# Map: one scene -> its rows, by tile
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SceneJob:
    """What a map task needs about one scene (plain data, pickled to workers)."""

    scene: scenes.Scene
    footprint: scenes.Footprint | None
    neighbours: tuple  # preferred neighbours' scene ids, ascending
    neighbour_names: tuple
    neighbour_wkb: tuple  # their footprints in the tile matrix set CRS
    out_path: str


def _times():
    return {k: 0.0 for k in ("read_s", "filter_s", "simplify_s", "clip_s", "reproject_s",
                             "centroid_s", "assign_s", "dedup_s", "validate_s", "store_s")}


def map_scene(job: SceneJob, rules: PdgSourceRules, chunk_size: int) -> dict:
    """Stage one scene in memory and write its countable rows; never raises.

    Returns a record with ``status`` and, when ok, ``present`` (tile keys with any row of the
    scene, flagged or not), ``index`` (per written batch: tile keys and row ranges) and
    counts and phase times (seconds).
    """
    t0 = time.perf_counter()
    scene = job.scene
    rec = {"path": scene.label, "scene": scene.id, "name": scene.name, "tile": None,
           "status": "error", "error": None, "seconds": 0.0, "polygons": None,
           "output": None}
    times = _times()
    writer = SceneWriter(job.out_path)
    try:
        _stage_scene(job, rules, chunk_size, rec, times, writer)
        writer.close()
        rec.update(status="ok", output=job.out_path, bytes_written=writer.nbytes)
    except InputError as exc:
        writer.close(exc)
        rec["error"] = str(exc)
    except Exception as exc:  # a failing scene must never stop the run
        writer.close(exc)
        rec["error"] = f"{scene.label}: {type(exc).__name__}: {exc}"
        rec["traceback"] = traceback.format_exc()
    rec.update(times)
    rec["seconds"] = time.perf_counter() - t0
    rec["pid"] = os.getpid()
    return rec


def _stage_scene(job, rules, chunk_size, rec, times, writer):
    scene = job.scene
    label = scene.label
    if rules.clip_to_footprint and job.footprint is None:
        raise InputError(f"{label}: no footprint (clip_to_footprint needs one)")
    t = time.perf_counter()
    file_crs = scenes.scene_crs(scene)
    # PDG clips in the CRS the file declares (input_crs is applied after the clip) and
    # reprojects from input_crs when it is set.
    clip_crs = file_crs or rules.input_crs
    src_crs = rules.input_crs or file_crs
    if src_crs is None:
        raise InputError(f"{label}: has no CRS; pass input_crs")
    scheme = TileScheme.create(rules.tms, rules.z)
    fp_clip = None
    if rules.clip_to_footprint:
        fp = job.footprint
        fp_clip = scenes.transform_geometry(fp.geometry, fp.crs, clip_crs)
    overlaps = []
    if rules.deduplicate and job.footprint is not None and job.neighbours:
        own = job.footprint.geometry_tms
        import shapely

        overlaps = [dedup.overlap_geometry(scene.name, own, name, shapely.from_wkb(wkb))
                    for name, wkb in zip(job.neighbour_names, job.neighbour_wkb)]
    attr_cols = attribute_columns(rules.stats)
    present = []
    index = []
    n_features = n_polygons = n_clipped = n_rows = 0
    times["read_s"] += time.perf_counter() - t
    chunks = scenes.iter_chunks(scene, attr_cols, chunk_size)
    while True:
        t = time.perf_counter()
        chunk = next(chunks, None)
        times["read_s"] += time.perf_counter() - t
        if chunk is None:
            break
        n_features += len(chunk)
        out = _stage_chunk(chunk, label, rules, scheme, fp_clip, overlaps, src_crs, attr_cols,
                           times)
        if out is None:
            continue
        n_polygons += out["n"]
        n_clipped += out["clipped"]
        present.append(out["present"])
        if out["batch"] is not None:
            t = time.perf_counter()
            bi = writer.write(out["batch"])
            times["store_s"] += time.perf_counter() - t
            index.append((bi, *out["tiles"]))
            n_rows += out["batch"].num_rows
    present = np.unique(np.concatenate(present)) if present else np.empty(0, np.int64)
    rec.update(polygons=n_polygons, features=n_features, clip_flagged=n_clipped, rows=n_rows,
               tiles=int(present.size), present=present, index=index,
               bytes_read=_input_bytes(scene))


def _input_bytes(scene) -> int:
    if scene.path is None:
        return 0
    stem = os.path.splitext(scene.path)[0]
    if scene.path.lower().endswith(".shp"):  # the geometry and attribute files
        return sum(os.path.getsize(stem + e) for e in (".shp", ".shx", ".dbf")
                   if os.path.exists(stem + e))
    return os.path.getsize(scene.path)


def _stage_chunk(chunk, label, rules, scheme, fp_clip, overlaps, src_crs, attr_cols, times):
    t = time.perf_counter()
    polys, feature = scenes.decode_polygons(chunk, label)
    if len(polys) == 0:
        times["filter_s"] += time.perf_counter() - t
        return None
    geoms = None
    if rules.simplify_tolerance is not None or fp_clip is not None:
        geoms = scenes.to_polygons(polys)
    t1 = time.perf_counter()
    times["filter_s"] += t1 - t
    if rules.simplify_tolerance is not None:
        geoms = scenes.simplify(geoms, rules.simplify_tolerance)
        polys = scenes.from_polygons(geoms)
    t2 = time.perf_counter()
    times["simplify_s"] += t2 - t1
    clip = (scenes.clip_flags(geoms, fp_clip) if fp_clip is not None
            else np.zeros(len(polys), bool))
    t3 = time.perf_counter()
    times["clip_s"] += t3 - t2
    polys = scenes.reproject(polys, src_crs, scheme.crs, label)
    t4 = time.perf_counter()
    times["reproject_s"] += t4 - t3
    cx, cy = scenes.centroids(polys)
    t5 = time.perf_counter()
    times["centroid_s"] += t5 - t4
    pidx, keys = assign_tiles(polys, scheme)
    present = np.unique(keys)
    t6 = time.perf_counter()
    times["assign_s"] += t6 - t5
    # Only rows that can count are stored; clip-flagged polygons matter only through the
    # tiles they make their scene present in.
    sel = ~clip[pidx]
    pidx, keys = pidx[sel], keys[sel]
    out = {"n": len(polys), "clipped": int(clip.sum()), "present": present, "batch": None}
    if pidx.size == 0:
        return out
    used = np.unique(pidx)  # polygons with a row, ascending
    sub = polys.take(used)
    bits = dedup.overlap_bits(scenes.bounds(sub), lambda i: scenes.to_polygons(sub.take(i)),
                              overlaps)
    t7 = time.perf_counter()
    times["dedup_s"] += t7 - t6
    sub = _validate(sub, feature[used], rules.validate, label)
    t8 = time.perf_counter()
    times["validate_s"] += t8 - t7
    # Rows sorted by tile, then feature: a tile's rows are one slice, in feature order.
    local = np.searchsorted(used, pidx)
    order = np.lexsort((local, keys))
    local, keys = local[order], keys[order]
    rows_attr = {c: chunk.attributes[c][feature[used] - chunk.start][local] for c in attr_cols}
    g = used[local]
    out["batch"] = make_batch(feature[g], cx[g], cy[g], bits[local], rows_attr,
                              sub.take(local))
    ukeys, starts = np.unique(keys, return_index=True)
    stops = np.append(starts[1:], keys.size)
    out["tiles"] = (ukeys, starts, stops)
    times["store_s"] += time.perf_counter() - t8
    return out


def _validate(polys: RaggedPolygons, feature, mode, label) -> RaggedPolygons:
    """Repair (or refuse) invalid polygons for the coverage, as the staged path does
    (``shapely.make_valid(method="structure")``, its polygonal part); the centroid stays
    that of the polygon as staged (PDG computes it before pdgraster repairs anything).

    The package's kernel proves most polygons valid (single simple rings); only the others
    are built as shapely objects and asked to GEOS.
    """
    if mode == "none" or len(polys) == 0:
        return polys
    import shapely

    simple = np.empty(len(polys), bool)
    K.certainly_simple(*polys.arrays, simple)
    unsure = np.flatnonzero(~simple)
    if unsure.size == 0:
        return polys
    geoms = polys.take(unsure).to_shapely()
    bad = np.flatnonzero(~shapely.is_valid(geoms))
    if bad.size == 0:
        return polys
    if mode == "error":
        raise InputError(f"{label}: feature {feature[unsure[bad[0]]]} is an invalid polygon: "
                         f"{shapely.is_valid_reason(geoms[bad[0]])}")
    fixed = shapely.make_valid(geoms[bad], method="structure", keep_collapsed=False)
    return polys.replace(unsure[bad], np.array([_polygonal(g) for g in fixed], dtype=object))


def _polygonal(g):
    """The polygonal part of a make_valid result (collapsed lines and points dropped)."""
    import shapely

    if g.geom_type in ("Polygon", "MultiPolygon"):
        return g
    parts = [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.MultiPolygon()


def attribute_columns(stats) -> list[str]:
    """Attribute columns the statistics read from the scenes."""
    out = []
    for s in stats:
        if s.is_attribute and s.property not in out:
            out.append(s.property)
    return out


def _one_numba_thread():
    # Workers already run in parallel; a numba thread pool per worker would oversubscribe.
    import numba

    if numba.get_num_threads() != 1:
        numba.set_num_threads(1)


def _map_batch(jobs, rules, chunk_size):
    _one_numba_thread()
    return [map_scene(job, rules, chunk_size) for job in jobs]


# ---------------------------------------------------------------------------------------------
# Reduce: one tile <- the rows of the scenes present in it
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TileJob:
    """One output tile: where its rows are and which scenes are present in it."""

    tile: tuple
    out_path: str
    present: frozenset  # scene ids with any row in the tile (flagged or not)
    slices: tuple  # (scene id, intermediate path, neighbours, batch, start, stop), sorted


def tile_rows(job: TileJob, readers: dict) -> tuple[Rows | None, int]:
    """The tile's rows that PDG counts (unflagged), in scene then feature order, and the
    number of rows flagged by footprint overlaps."""
    parts = []
    sids = []
    n_flagged = 0
    for sid, path, neighbours, batch, start, stop in job.slices:
        reader = readers.get(path)
        if reader is None:
            reader = readers[path] = SceneReader(path)
        rows = reader.rows(batch, start, stop)
        mask = dedup.tile_mask(neighbours, job.present, rows.bits.shape[1])
        f = dedup.flagged(rows.bits, mask)
        if f.any():
            n_flagged += int(f.sum())
            rows = rows.take(~f)
        parts.append(rows)
        sids.append(np.full(len(rows), sid, np.int64))
    if not parts:
        return None, n_flagged
    polys = scenes.concat([r.polys for r in parts])
    # Fresh, writable arrays: the kernels then see one array type whatever the source (the
    # slices are read-only views of the mapped files).
    polys = RaggedPolygons(*(np.array(a) for a in polys.arrays))
    cat = [np.concatenate([getattr(r, k) for r in parts]) for k in ("feature", "cx", "cy")]
    attrs = {k: np.concatenate([r.attrs[k] for r in parts]) for k in parts[0].attrs}
    return Rows(cat[0], cat[1], cat[2], None, attrs, polys, np.concatenate(sids)), n_flagged


def reduce_tile(job: TileJob, rules: PdgSourceRules, overwrite: bool, readers: dict) -> dict:
    """Rasterize one tile from its rows and write it; never raises, returns a record."""
    t0 = time.perf_counter()
    rec = {"path": job.out_path, "tile": job.tile, "status": "error", "error": None,
           "seconds": 0.0, "polygons": None, "output": job.out_path, "summary": None}
    try:
        if not overwrite and os.path.exists(job.out_path):
            rec["status"] = "skipped"
            return rec
        grid = TileGrid.from_tile(job.tile, rules.tms, rules.tile_size)
        rows, n_flagged = tile_rows(job, readers)
        t1 = time.perf_counter()
        if rows is None:
            rows = Rows(np.empty(0, np.int64), np.empty(0), np.empty(0), None,
                        {c: np.empty(0) for c in attribute_columns(rules.stats)},
                        RaggedPolygons.empty())
        array = compute_stats(rows.polys, grid, rules.stats, centroids=(rows.cx, rows.cy),
                              attributes=rows.attrs)
        t2 = time.perf_counter()
        names = [s.name for s in rules.stats]
        written = array.astype(rules.dtype, copy=False)
        write_geotiff(job.out_path, written, grid, names, dtype=rules.dtype,
                      nodata=_common_nodata(rules.stats))
        t3 = time.perf_counter()
        summary = [dict(stat=n, **band_summary(written[b])) for b, n in enumerate(names)]
        rec.update(status="ok", polygons=len(rows.polys), flagged=n_flagged,
                   read_s=t1 - t0, compute_s=t2 - t1, write_s=t3 - t2,
                   summary_s=time.perf_counter() - t3,
                   bounds=[grid.left, grid.right, grid.bottom, grid.top], summary=summary)
    except InputError as exc:
        rec["error"] = str(exc)
    except Exception as exc:
        rec["error"] = f"{job.out_path}: {type(exc).__name__}: {exc}"
        rec["traceback"] = traceback.format_exc()
    rec["seconds"] = time.perf_counter() - t0
    rec["pid"] = os.getpid()
    return rec


def _common_nodata(stats):
    values = {s.nodata_val for s in stats}
    return values.pop() if len(values) == 1 else None


def _reduce_batch(tasks, rules, overwrite, out_dir):
    _one_numba_thread()
    out = []
    for task in tasks:
        readers = {}  # the scene files of this task, each opened (mapped) once
        try:
            out.extend(reduce_tile(job, rules, overwrite, readers)
                       for job in task.jobs(rules, out_dir))
        finally:
            for r in readers.values():
                r.close()
    return out


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


def read_footprints(scene_list, rules: PdgSourceRules):
    """Footprints of the scenes (``{scene id: Footprint}``) and errors (``{scene id:
    message}``) for footprints that exist but cannot be used."""
    fps, errors = {}, {}
    if not rules.needs_footprints:
        return fps, errors
    crs = TileScheme.create(rules.tms, rules.z).crs
    for s in scene_list:
        if s.footprint is None:
            continue
        try:
            fps[s.id] = scenes.read_footprint(s.footprint, s, rules.keep_columns, crs)
        except InputError as exc:
            errors[s.id] = str(exc)
    return fps, errors


def plan_scenes(scene_list, rules: PdgSourceRules, work_dir) -> tuple[list, dict]:
    """The map jobs (scenes whose footprint could be read) and the scene errors so far."""
    fps, errors = read_footprints(scene_list, rules)
    neighbours = {}
    if rules.deduplicate and fps:
        import shapely

        names = {s.id: s.name for s in scene_list}
        ranks = dedup.rank_scenes(names, {i: f.keys for i, f in fps.items()},
                                  rules.keep_rules)
        neighbours = dedup.preferred_neighbours(
            {i: shapely.from_wkb(f.wkb_tms) for i, f in fps.items()}, ranks)
    by_id = {s.id: s for s in scene_list}
    jobs = []
    for s in scene_list:
        if s.id in errors:
            continue
        nb = tuple(neighbours.get(s.id, ()))
        jobs.append(SceneJob(s, fps.get(s.id), nb, tuple(by_id[i].name for i in nb),
                             tuple(fps[i].wkb_tms for i in nb),
                             os.path.join(work_dir, f"scene-{s.id}.arrow")))
    return jobs, errors


@dataclass(frozen=True)
class TileTask:
    """A reduce task: consecutive tiles (Z-order) and, as compact arrays, the scenes present
    in each and where each tile's rows are (no Python object per tile or slice, so the
    driver's plan of a 10^9-polygon run stays numpy-sized)."""

    keys: np.ndarray  # tile keys (m,)
    present_offsets: np.ndarray  # (m + 1,) into present
    present: np.ndarray  # scene ids present, per tile ascending
    slice_offsets: np.ndarray  # (m + 1,) into slices
    slices: np.ndarray  # (k, 4): scene id, batch, start, stop; per tile by scene, batch
    paths: dict  # scene id -> intermediate file
    neighbours: dict  # scene id -> preferred neighbours

    def __len__(self) -> int:
        return self.keys.shape[0]

    def jobs(self, rules: PdgSourceRules, out_dir):
        """The tiles as :class:`TileJob` s, one at a time."""
        tx, ty = key_xy(self.keys)
        for i in range(len(self)):
            tile = (int(tx[i]), int(ty[i]), rules.z)
            sl = self.slices[self.slice_offsets[i]:self.slice_offsets[i + 1]]
            present = self.present[self.present_offsets[i]:self.present_offsets[i + 1]]
            yield TileJob(tile, output_path(out_dir, rules.tms, tile),
                          frozenset(present.tolist()),
                          tuple((sid, self.paths[sid], self.neighbours.get(sid, ()), b, a, e)
                                for sid, b, a, e in sl.tolist()))


def plan_tiles(scene_recs, neighbours: dict, tiles_per_task: int = 64) -> list[TileTask]:
    """The reduce tasks: every tile any scene is present in (flagged rows included), in
    Z-order, ``tiles_per_task`` at a time."""
    ok = [r for r in scene_recs if r["status"] == "ok"]
    pres_key = np.concatenate([r["present"] for r in ok] or [np.empty(0, np.int64)])
    if pres_key.size == 0:
        return []
    pres_sid = np.concatenate([np.full(r["present"].size, r["scene"], np.int64) for r in ok])
    parts = [(keys, np.full(keys.size, r["scene"], np.int64), np.full(keys.size, bi, np.int64),
              starts, stops) for r in ok for bi, keys, starts, stops in r["index"]]
    if parts:
        sk, ssid, sb, s0, s1 = (np.concatenate(a).astype(np.int64) for a in zip(*parts))
    else:
        sk = ssid = sb = s0 = s1 = np.empty(0, np.int64)
    keys = np.unique(pres_key)
    tx, ty = key_xy(keys)
    order = np.argsort(morton(tx, ty), kind="stable")
    keys = keys[order]
    rank = np.empty(keys.size, np.int64)
    rank[order] = np.arange(keys.size)  # position in Z-order of each sorted key

    def csr(k, *cols):
        r = rank[np.searchsorted(np.sort(keys), k)]
        o = np.lexsort((*reversed(cols), r))  # by tile, then the columns in order
        offsets = np.zeros(keys.size + 1, np.int64)
        np.cumsum(np.bincount(r, minlength=keys.size), out=offsets[1:])
        return offsets, [c[o] for c in cols]

    po, (psid,) = csr(pres_key, pres_sid)
    so, (ssid, sb, s0, s1) = csr(sk, ssid, sb, s0, s1)
    slices = np.column_stack([ssid, sb, s0, s1])
    paths = {r["scene"]: r["output"] for r in ok}
    tasks = []
    step = max(int(tiles_per_task), 1)
    for a in range(0, keys.size, step):
        b = min(a + step, keys.size)
        sl = slices[so[a]:so[b]]
        sids = np.unique(sl[:, 0]).tolist()
        tasks.append(TileTask(keys[a:b], po[a:b + 1] - po[a], psid[po[a]:po[b]],
                              so[a:b + 1] - so[a], sl, {i: paths[i] for i in sids},
                              {i: tuple(neighbours.get(i, ())) for i in sids}))
    return tasks


_WARMED: set = set()


def warm_up(rules: PdgSourceRules) -> None:
    """Load (compiling into numba's disk cache if needed) every kernel both passes use, in
    this process, by running one tiny in-memory scene through map and reduce.

    The driver calls it before dispatching, so the cache is filled once instead of by every
    worker compiling at the same moment; workers then load the cached kernels.
    """
    import tempfile

    import pyarrow as pa
    import shapely

    key = (rules.tms, tuple((s.property, s.weight_by, s.aggregation_method,
                             s.nodata_val is not None) for s in rules.stats))
    if key in _WARMED:
        return
    scheme = TileScheme.create(rules.tms, rules.z)
    # A triangle and a square with a hole, inside tile (0, 0) of the scheme (its CRS).
    x0, y1 = scheme.left, scheme.top
    dx, dy = scheme.span_x, scheme.span_y
    tri = shapely.Polygon([(x0 + .1 * dx, y1 - .1 * dy), (x0 + .4 * dx, y1 - .1 * dy),
                           (x0 + .2 * dx, y1 - .3 * dy)])
    holed = shapely.box(x0 + .5 * dx, y1 - .9 * dy, x0 + .9 * dx, y1 - .5 * dy).difference(
        shapely.box(x0 + .6 * dx, y1 - .8 * dy, x0 + .7 * dx, y1 - .7 * dy))
    cols = {c: np.ones(2) for c in attribute_columns(rules.stats)}
    table = pa.table({**cols, "wkb_geometry": pa.array(shapely.to_wkb([tri, holed]),
                                                          pa.binary())})
    scene = scenes.Scene(0, "warm-up", None, None, (table, scheme.crs))
    quiet = dataclasses.replace(rules, clip_to_footprint=False, keep_rules=None,
                                simplify_tolerance=None)
    with tempfile.TemporaryDirectory(prefix="fastraster-warm-up-") as tmp:
        rec = map_scene(SceneJob(scene, None, (), (), (), os.path.join(tmp, "s.arrow")), quiet,
                        scenes.DEFAULT_CHUNK_SIZE)
        if rec["status"] != "ok":
            raise RuntimeError(f"warm-up failed: {rec['error']}")
        for task in plan_tiles([rec], {}):
            for r in _reduce_batch([task], quiet, True, tmp):
                if r["status"] != "ok":
                    raise RuntimeError(f"warm-up failed: {r['error']}")
    _WARMED.add(key)


def map_pass(scene_list, rules: PdgSourceRules, work_dir, *, n_jobs=None, backend="loky",
             progress=False, chunk_size=scenes.DEFAULT_CHUNK_SIZE, passes=None):
    """Footprints, then one map task per scene writing into ``work_dir``.

    Returns the scene records (sorted by scene id) and each scene's preferred neighbours;
    fills ``passes`` (a dict, if given) with the wall seconds of its steps.
    """
    os.makedirs(work_dir, exist_ok=True)
    t0 = time.perf_counter()
    warm_up(rules)
    t1 = time.perf_counter()
    jobs, fp_errors = plan_scenes(scene_list, rules, work_dir)
    t2 = time.perf_counter()
    recs = [_failed_scene(s, fp_errors[s.id]) for s in scene_list if s.id in fp_errors]
    recs += list(batched_records(_map_batch, jobs, (rules, chunk_size), batch_size=1,
                                 n_jobs=n_jobs, backend=backend, progress=progress,
                                 desc="scenes"))
    recs.sort(key=lambda r: r["scene"])
    if passes is not None:
        passes.update(warm_up=t1 - t0, footprints=t2 - t1, map=time.perf_counter() - t2)
    return recs, {j.scene.id: j.neighbours for j in jobs}


def counted_rows(inputs, *, rules: PdgSourceRules, footprints=None,
                 chunk_size=scenes.DEFAULT_CHUNK_SIZE) -> dict:
    """The rows PDG counts in each tile (unflagged), for inspection and tests.

    Returns
    -------
    dict
        ``{(x, y, z): {"scene": scene names, "feature": feature indices, "cx": ..., "cy":
        ...}}`` with one entry per tile any scene is present in (empty arrays for a tile
        whose rows are all flagged), and ``"scenes"``: the scene records.
    """
    import tempfile

    scene_list = scenes.find_scenes(inputs, footprints, ext=rules.ext,
                                    footprint_ext=rules.footprint_ext)
    names = np.array([s.name for s in scene_list] or [""], dtype=object)
    out = {}
    with tempfile.TemporaryDirectory(prefix="fastraster-rows-") as work:
        recs, neighbours = map_pass(scene_list, rules, work, chunk_size=chunk_size)
        readers = {}
        try:
            jobs = (j for t in plan_tiles(recs, neighbours) for j in t.jobs(rules, work))
            for job in jobs:
                rows, _ = tile_rows(job, readers)
                if rows is None:
                    out[job.tile] = {"scene": names[:0], "feature": np.empty(0, np.int64),
                                     "cx": np.empty(0), "cy": np.empty(0)}
                else:
                    out[job.tile] = {"scene": names[rows.scene], "feature": rows.feature,
                                     "cx": rows.cx, "cy": rows.cy}
        finally:
            for r in readers.values():
                r.close()
    out["scenes"] = recs
    return out


def _progress(records, total, progress, desc):
    """Records as they come, counted on a tqdm bar (one task returns many tiles)."""
    if not progress:
        yield from records
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, unit="tile", desc=desc, disable=not total) as bar:
        for rec in records:
            bar.update(1)
            yield rec


def _tiles_per_task(n_tiles, n_jobs, backend):
    from joblib import effective_n_jobs

    try:
        workers = max(1, effective_n_jobs(n_jobs)) if backend != "dask" else 8
    except Exception:
        workers = 1
    return int(min(64, max(1, -(-n_tiles // (4 * workers)))))


def rasterize_sources(inputs, out_dir, *, z=None, tms="WGS1984Quad", stats=None,
                      footprints=None, keep_rules=(("Date", "larger"),),
                      clip_to_footprint=True, simplify_tolerance=None, input_crs=None,
                      tile_size=256, n_jobs=None, backend="loky", overwrite=False,
                      progress=True, dtype="float32", ext=".shp", footprint_ext=None,
                      validate="repair", chunk_size=scenes.DEFAULT_CHUNK_SIZE, work_dir=None,
                      summary=True, rules=None, input_root=None) -> SourcesReport:
    """Rasterize raw scenes (with their footprints) into max-zoom GeoTIFFs, with exactly the
    answers of PDG's staging + pdgraster, without staging.

    Parameters
    ----------
    inputs : path, list of paths, or GeoDataFrame
        A folder (every ``ext`` file below it, recursively), one file or a list of files (any
        format pyogrio reads), or a GeoDataFrame (one scene per ``staging_filename`` value,
        else one scene).
    out_dir : path
        Output root: ``<out_dir>/<tms>/<z>/<x>/<y>.tif``, ``rasters_summary.csv`` and
        ``rasterization_events.csv`` (scene records, then tile records).
    z : int
        Output zoom level (PDG's ``max(z_range)``).
    tms : str
    stats : list of dict, optional
        PDG statistics (default: polygon_count and coverage).
    footprints : path, mapping or GeoDataFrame, optional
        A folder mirroring ``inputs`` (PDG's path rule), a mapping from scene name or path to
        a footprint, or a GeoDataFrame of footprints (see
        :func:`~fastraster.sources.scenes.find_scenes`). Needed when ``clip_to_footprint``
        or ``keep_rules`` is set.
    keep_rules : list of (column, "larger" | "smaller"), or None
        Footprint deduplication; None turns it off.
    clip_to_footprint : bool
        Flag (drop from the rasters) polygons that do not intersect their scene's footprint;
        a scene without footprint is then an error (named in the report), as in PDG.
    simplify_tolerance : float, optional
        Topology-preserving simplification in the input CRS, before anything else.
    input_crs : str, optional
        CRS of the inputs, overriding theirs for the reprojection.
    tile_size : int or (height, width)
    n_jobs, backend :
        joblib workers and backend ("loky", "threading", "dask" with a running Client).
    overwrite : bool
        Redo existing GeoTIFFs; else they are skipped (a killed run resumes).
    progress : bool
    dtype : "float32" or "float64"
    ext, footprint_ext : str
        Scene and footprint file extensions (``footprint_ext`` defaults to ``ext``).
    validate : {"repair", "error", "none"}
        Invalid polygons for the coverage (the centroid is always the staged polygon's).
    chunk_size : int
        Features read at once per scene (bounds a worker's memory).
    work_dir : path, optional
        Where the per-scene intermediates go (on a filesystem all workers see); default a
        temporary folder in ``out_dir``, removed at the end (a given one is kept).
    summary : bool
        Write the two CSVs.
    rules : PdgSourceRules, optional
        All the rules at once (e.g. from :meth:`PdgSourceRules.from_pdg_config`); the
        keyword arguments above are then ignored.
    input_root : path, optional
        The folder that scene names (PDG's ``staging_filename``, which break keep-rule ties)
        and the footprint mirror are relative to, for a list of files (default: the
        deepest folder holding them all).

    Returns
    -------
    SourcesReport
        One record per tile (and ``report.scenes``, one per scene). A failing scene or tile
        is a record with ``status="error"`` and a message naming it; it never stops the run.
    """
    t0 = time.perf_counter()
    if rules is None:
        if z is None:
            raise ValueError("z (the output zoom level) is required")
        rules = PdgSourceRules(
            z=z, tms=tms, stats=stats, keep_rules=keep_rules,
            clip_to_footprint=clip_to_footprint, simplify_tolerance=simplify_tolerance,
            input_crs=input_crs, tile_size=tile_size, dtype=dtype, ext=ext,
            footprint_ext=footprint_ext or ext, validate=validate)
    if rules.needs_footprints and footprints is None:
        raise ValueError("clip_to_footprint and keep_rules need footprints=; pass "
                         "clip_to_footprint=False, keep_rules=None to go without")
    out_dir = os.fspath(out_dir)
    scene_list = scenes.find_scenes(inputs, footprints, ext=rules.ext,
                                    footprint_ext=rules.footprint_ext, input_root=input_root)
    passes = {"find": time.perf_counter() - t0}
    own_work = work_dir is None
    work = (os.path.join(out_dir, f".fastraster-sources-{uuid.uuid4().hex}") if own_work
            else os.fspath(work_dir))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            scene_recs, neighbours = map_pass(scene_list, rules, work, n_jobs=n_jobs,
                                              backend=backend, progress=progress,
                                              chunk_size=chunk_size, passes=passes)
            t1 = time.perf_counter()
            n_tiles = len(np.unique(np.concatenate(
                [r["present"] for r in scene_recs if r["status"] == "ok"]
                or [np.empty(0, np.int64)])))
            tasks = plan_tiles(scene_recs, neighbours,
                               _tiles_per_task(n_tiles, n_jobs, backend))
            t2 = time.perf_counter()
            results = batched_records(_reduce_batch, tasks, (rules, overwrite, out_dir),
                                      batch_size=1, n_jobs=n_jobs, backend=backend)
            tile_recs = list(_progress(results, n_tiles, progress, "tiles"))
            passes.update(plan=t2 - t1, reduce=time.perf_counter() - t2)
    finally:
        if own_work:
            shutil.rmtree(work, ignore_errors=True)
    tile_recs.sort(key=lambda r: (r["tile"][2], r["tile"][0], r["tile"][1]))
    for r in scene_recs:  # the arrays were for planning only
        r.pop("present", None)
        r.pop("index", None)
    report = SourcesReport(tile_recs)
    report.scenes = scene_recs
    report.passes = passes
    t3 = time.perf_counter()
    if summary:
        os.makedirs(out_dir, exist_ok=True)
        write_summary(os.path.join(out_dir, "rasters_summary.csv"), report)
        write_events(os.path.join(out_dir, "rasterization_events.csv"),
                     list(scene_recs) + list(report))
    passes["csv"] = time.perf_counter() - t3
    report.wall_seconds = time.perf_counter() - t0
    return report


def _failed_scene(scene, message):
    return {"path": scene.label, "scene": scene.id, "name": scene.name, "tile": None,
            "status": "error", "error": message, "seconds": 0.0, "polygons": None,
            "output": None}
