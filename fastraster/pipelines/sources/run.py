"""``rasterize_sources``: raw scenes (+ footprints) straight to max-zoom GeoTIFFs, PDG's way,
without staging.

Three passes; the second and third are independent items on the one supervised executor
(:func:`~fastraster.execution.executor.run_tasks`: loky, threads or a Dask cluster), so a
worker that dies costs only the scene or tile it was running, failed ones are retried in
fresh workers, and SIGINT / SIGTERM stop the run cleanly (docs/reliability.md):

1. **footprints** (driver, cheap): read every scene's footprint, rank scenes by the keep
   rules, and list for each scene the preferred scenes whose footprints intersect its own.
2. **map**, one task per scene (:mod:`.scenes`): read the file in chunks, apply PDG's
   staging steps, assign tiles, compute the footprint-overlap bits, and write the rows that
   can count, sorted by tile, to one Arrow file in the run's work folder. It returns the
   tiles the scene is present in (clip-flagged rows included) and where each tile's rows
   are.
3. **reduce**, one item per tile, sent in batches of nearby tiles (:mod:`.tiles`): for each
   tile, read its rows from the scenes present, flag them with the tile's set of present
   scenes, compute the bands and write the GeoTIFF atomically.

A worker's memory is bounded by one chunk (map) or one tile's rows (reduce), whatever the
number and size of the inputs. Rows are taken in scene-name then feature order, so outputs do
not depend on input order, ``n_jobs`` or backend.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time

import numpy as np
import shapely

from fastraster.execution.executor import Executor, run_tasks
from fastraster.execution.supervisor import RunInterrupted, annotate
from fastraster.io.atomic import probe_writable, sweep_litter, temp_path
from fastraster.io.records import CsvStream, Report, save_run_csvs
from fastraster.io.scenes import DEFAULT_CHUNK_SIZE, Scene, find_scenes, read_footprint
from fastraster.io.staged import InputError
from fastraster.model import dedup
from fastraster.model.assign import TileScheme
from fastraster.model.stats import attribute_columns
from fastraster.pipelines.source_options import PdgSourceRules
from fastraster.pipelines.sources.scenes import SceneJob, describe_scene, map_job, map_scene
from fastraster.pipelines.sources.tiles import (
    close_readers,
    describe_tile,
    redo_tile,
    reduce_job,
    reduce_tile,
    tile_jobs,
    tile_rows,
)

#: The name of a run's work folder in its output folder: ``.<WORK_DIR>.<host>.<pid>.<uuid>``,
#: an owner-tagged temporary name (:func:`fastraster.io.atomic.temp_path`), so that the one
#: sweep of temporary files (:func:`fastraster.io.atomic.sweep_litter`) removes those of
#: killed runs.
WORK_DIR = "fastraster-sources"


class SourcesReport(Report):
    """Tile records (one per output tile, like :func:`fastraster.rasterize_dir`'s), plus
    ``scenes``: one record per input scene (status, counts, phase times), and ``passes``:
    wall seconds of the driver's steps (``find``, ``warm_up``, ``footprints``, ``map``,
    ``plan``, ``reduce``, ``csv``).

    ``n(status)``, ``errors`` and ``total`` count scenes and tiles alike (the files of the
    run); :meth:`tiles` counts tiles only.
    """

    scenes: list
    passes: dict

    #: Tiles of the run (with ``keep_records=False`` the report holds only failed ones).
    tile_total: int = 0

    def __init__(self, tiles=(), scenes=()):
        super().__init__(tiles)
        self.scenes = list(scenes)
        self.passes = {}
        self.tile_total = len(self)
        self.total = len(self) + len(self.scenes)

    def tiles(self, status: str) -> int:
        """Number of tiles with this status."""
        return super().n(status)

    def n(self, status: str) -> int:
        return self.tiles(status) + sum(1 for r in self.scenes if r["status"] == status)

    @property
    def errors(self) -> list[dict]:
        return ([r for r in self.scenes if r["status"] == "error"]
                + [r for r in self if r["status"] == "error"])

    def summary_line(self) -> str:
        bad = sum(1 for r in self.scenes if r["status"] == "error")
        ok, sk, err = self.tiles("ok"), self.tiles("skipped"), self.tiles("error")
        rate = ok / self.wall_seconds if self.wall_seconds > 0 else float("nan")
        line = (f"{len(self.scenes)} scenes ({bad} failed); {self.tile_total} tiles: {ok} ok, "
                f"{sk} skipped, {err} failed in {self.wall_seconds:.2f} s "
                f"({rate:.1f} tiles/s)")
        return "; ".join([line, *self.notes()])


# ---------------------------------------------------------------------------------------------
# Footprints
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
            fps[s.id] = read_footprint(s.footprint, s, rules.keep_columns, crs)
        except InputError as exc:
            errors[s.id] = str(exc)
    return fps, errors


def plan_scenes(scene_list, rules: PdgSourceRules, work_dir) -> tuple[list, dict]:
    """The map jobs (scenes whose footprint could be read) and the scene errors so far."""
    fps, errors = read_footprints(scene_list, rules)
    neighbours = {}
    if rules.deduplicate and fps:
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


def _failed_scene(scene, message):
    return {"path": scene.label, "scene": scene.id, "name": scene.name, "tile": None,
            "status": "error", "error": message, "seconds": 0.0, "polygons": None,
            "output": None}


# ---------------------------------------------------------------------------------------------
# Warm-up
# ---------------------------------------------------------------------------------------------

_WARMED: set = set()


def warm_up(rules: PdgSourceRules) -> None:
    """Load (compiling into numba's disk cache if needed) every kernel both passes use, in
    this process, by running one tiny in-memory scene through map and reduce.

    The driver calls it before dispatching, so the cache is filled once instead of by every
    worker compiling at the same moment; workers then load the cached kernels.
    """
    import pyarrow as pa

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
    scene = Scene(0, "warm-up", None, None, (table, scheme.crs))
    quiet = dataclasses.replace(rules, clip_to_footprint=False, keep_rules=None,
                                simplify_tolerance=None)
    with tempfile.TemporaryDirectory(prefix="fastraster-warm-up-") as tmp:
        rec = map_scene(SceneJob(scene, None, (), (), (), os.path.join(tmp, "s.arrow")), quiet,
                        DEFAULT_CHUNK_SIZE)
        if rec["status"] != "ok":
            raise RuntimeError(f"warm-up failed: {rec['error']}")
        readers = {}
        try:
            for job in tile_jobs([rec], {}, quiet, tmp):
                r = reduce_tile(job, quiet, True, readers)
                if r["status"] != "ok":
                    raise RuntimeError(f"warm-up failed: {r['error']}")
        finally:
            for reader in readers.values():
                reader.close()
    _WARMED.add(key)


# ---------------------------------------------------------------------------------------------
# The passes
# ---------------------------------------------------------------------------------------------


def map_pass(scene_list, rules: PdgSourceRules, work_dir, *, executor=None, progress=False,
             chunk_size=DEFAULT_CHUNK_SIZE, passes=None, retries=1, runs=None):
    """Footprints, then one map item per scene (supervised: a dead worker costs its scene,
    retried ``retries`` times) writing into ``work_dir``.

    Returns the scene records (sorted by scene id) and each scene's preferred neighbours;
    fills ``passes`` (a dict, if given) with the wall seconds of its steps and appends the
    :class:`~fastraster.execution.supervisor.TaskRun` to ``runs`` (a list, if given). On
    :class:`~fastraster.execution.supervisor.RunInterrupted` the exception's ``records``
    hold the records of the scenes finished so far.
    """
    os.makedirs(work_dir, exist_ok=True)
    t0 = time.perf_counter()
    warm_up(rules)
    t1 = time.perf_counter()
    jobs, fp_errors = plan_scenes(scene_list, rules, work_dir)
    t2 = time.perf_counter()
    recs = [_failed_scene(s, fp_errors[s.id]) for s in scene_list if s.id in fp_errors]
    run = run_tasks(map_job, jobs, (rules, chunk_size), batch_size=1,
                    executor=executor or Executor(1, "loky"), progress=progress,
                    desc="scenes", unit="scene", retries=retries, describe=describe_scene,
                    work_dir=work_dir)
    if runs is not None:
        runs.append(run)
    by_output = {j.out_path: j.scene for j in jobs}
    try:
        for rec in run:
            if "scene" not in rec:  # a scene no task returned (its worker died, ...)
                scene = by_output[rec["output"]]
                rec.update(scene=scene.id, name=scene.name)
            recs.append(rec)
    except RunInterrupted as exc:
        exc.records = sorted(recs, key=lambda r: r["scene"])
        raise
    recs.sort(key=lambda r: r["scene"])
    if passes is not None:
        passes.update(warm_up=t1 - t0, footprints=t2 - t1, map=time.perf_counter() - t2)
    return recs, {j.scene.id: j.neighbours for j in jobs}


def _workers(n_jobs, backend) -> int:
    """How many workers the reduce tasks are spread over (for the task size)."""
    if backend == "dask":
        try:
            from distributed import default_client

            return max(1, sum(default_client().nthreads().values()))
        except Exception:
            return 8
    from joblib import effective_n_jobs

    try:
        return max(1, effective_n_jobs(n_jobs))
    except Exception:
        return 1


def tiles_per_task(tiles: int, workers: int) -> int:
    """Tiles per reduce task (the executor's batch size): at most 64 (one task then costs
    ~0.1-1 s, and dispatch ~1 ms on loky, ~8 ms on dask), and at least 4 tasks per worker so
    the last ones do not leave workers idle."""
    return int(min(64, max(1, -(-tiles // (4 * max(workers, 1))))))


def counted_rows(inputs, *, rules: PdgSourceRules, footprints=None,
                 chunk_size=DEFAULT_CHUNK_SIZE) -> dict:
    """The rows PDG counts in each tile (unflagged), for inspection and tests.

    Returns
    -------
    dict
        ``{(x, y, z): {"scene": scene names, "feature": feature indices, "cx": ..., "cy":
        ...}}`` with one entry per tile any scene is present in (empty arrays for a tile
        whose rows are all flagged), and ``"scenes"``: the scene records.
    """
    scene_list = find_scenes(inputs, footprints, ext=rules.ext,
                             footprint_ext=rules.footprint_ext)
    names = np.array([s.name for s in scene_list] or [""], dtype=object)
    out = {}
    with tempfile.TemporaryDirectory(prefix="fastraster-rows-") as work:
        recs, neighbours = map_pass(scene_list, rules, work, chunk_size=chunk_size)
        readers = {}
        try:
            for job in tile_jobs(recs, neighbours, rules, work):
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


def rasterize_sources(inputs, out_dir, *, z=None, tms="WGS1984Quad", stats=None,
                      footprints=None, keep_rules=(("Date", "larger"),),
                      clip_to_footprint=True, simplify_tolerance=None, input_crs=None,
                      tile_size=256, n_jobs=None, backend="loky", overwrite=False,
                      progress=True, dtype="float32", ext=".shp", footprint_ext=None,
                      validate="repair", chunk_size=DEFAULT_CHUNK_SIZE, work_dir=None,
                      summary=True, keep_records=True, rules=None,
                      input_root=None, retries=1) -> SourcesReport:
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
        :func:`~fastraster.io.scenes.find_scenes`). Needed when ``clip_to_footprint`` or
        ``keep_rules`` is set.
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
        Redo existing GeoTIFFs; else they are skipped (a killed run resumes; its map pass is
        done again).
    retries : int
        Times a failed scene or tile (whatever the cause, a dead worker included) is tried
        again, alone and in a fresh worker, before it is reported (as in
        :func:`fastraster.rasterize_dir`; docs/reliability.md).
    progress : bool
        Progress bars (scenes, then tiles).
    dtype : "float32" or "float64"
    ext, footprint_ext : str
        Scene and footprint file extensions (``footprint_ext`` defaults to ``ext``).
    validate : {"repair", "error", "none"}
        Invalid polygons for the coverage (the centroid is always the staged polygon's).
    chunk_size : int
        Features read at once per scene (bounds a worker's memory).
    work_dir : path, optional
        Where the per-scene intermediates go (on a filesystem all workers see); default a
        hidden folder ``.fastraster-sources.<host>.<pid>.<uuid>`` in ``out_dir`` (an
        owner-tagged temporary name), removed at the end; such folders of killed runs, like
        their temporary files, are removed first (:func:`fastraster.io.atomic.sweep_litter`:
        those no live process owns). A given ``work_dir`` is kept.
    summary : bool
        Write the two CSVs.
    keep_records : bool
        Keep every tile record in the report (default). ``False`` streams the CSV rows to
        disk as tiles finish and keeps only the failed tiles' records and the counts per
        status (``report.tiles(status)``), so that the driver's memory does not grow with
        the number of tiles (~2.5 kB per kept record: 25 GB for 10 M tiles).
    rules : PdgSourceRules, optional
        All the rules at once (e.g. from :meth:`PdgSourceRules.from_pdg_config`); the
        keyword arguments above that they hold are then ignored.
    input_root : path, optional
        The folder that scene names (PDG's ``staging_filename``, which break keep-rule ties)
        and the footprint mirror are relative to, for a list of files (default: the
        deepest folder holding them all).

    Returns
    -------
    SourcesReport
        One record per tile (and ``report.scenes``, one per scene). A failing scene or tile
        is a record with ``status="error"`` and a message naming it; it never stops the run,
        which then ends with one :class:`~fastraster.io.records.RunFailures` warning.

    Raises
    ------
    ValueError
        Before anything is written, for a bad setting.
    fastraster.OutputError
        If ``out_dir`` cannot be written (before any work).
    fastraster.RunInterrupted
        On SIGINT / SIGTERM, after the workers are ended and the CSVs hold what finished
        (``.report``); run again without ``overwrite`` to resume.
    """
    t0 = time.perf_counter()
    if rules is None:
        if z is None:
            raise ValueError("z (the output zoom level) is required")
        rules = PdgSourceRules.create(
            z=z, tms=tms, stats=stats, keep_rules=keep_rules,
            clip_to_footprint=clip_to_footprint, simplify_tolerance=simplify_tolerance,
            input_crs=input_crs, tile_size=tile_size, dtype=dtype, ext=ext,
            footprint_ext=footprint_ext, validate=validate)
    if rules.needs_footprints and footprints is None:
        raise ValueError("clip_to_footprint and keep_rules need footprints=; pass "
                         "clip_to_footprint=False, keep_rules=None to go without")
    out_dir = os.fspath(out_dir)
    scene_list = find_scenes(inputs, footprints, ext=rules.ext,
                             footprint_ext=rules.footprint_ext, input_root=input_root)
    passes = {"find": time.perf_counter() - t0}
    executor = Executor(n_jobs, backend)  # checks the backend before any work
    probe_writable(out_dir)  # one clear error, not one per tile
    # Temporary files and work folders of killed runs (no live owner): one rule for both.
    litter = sweep_litter([out_dir])
    own_work = work_dir is None
    work = (temp_path(os.path.join(out_dir, WORK_DIR), suffix="") if own_work
            else os.fspath(work_dir))
    stream = None
    counts: dict[str, int] = {}
    runs: list = []
    scene_recs: list = []
    tile_recs: list = []
    interrupted = None
    try:
        with executor:  # one pool for both passes
            try:
                scene_recs, neighbours = map_pass(
                    scene_list, rules, work, executor=executor, progress=progress,
                    chunk_size=chunk_size, passes=passes, retries=retries, runs=runs)
                t1 = time.perf_counter()
                # No tile when the map pass stopped early (repeated disk errors).
                jobs = tile_jobs([] if runs[0].stopped else scene_recs, neighbours, rules,
                                 out_dir)
                for r in scene_recs:  # the arrays were for planning only
                    r.pop("present", None)
                    r.pop("index", None)
                t2 = time.perf_counter()
                if summary and not keep_records:
                    stream = CsvStream(out_dir)
                    for r in scene_recs:
                        stream.add(r)
                run = run_tasks(reduce_job, jobs, (rules, overwrite),
                                batch_size=tiles_per_task(len(jobs), _workers(n_jobs, backend)),
                                executor=executor, progress=progress, desc="tiles",
                                retries=retries, describe=describe_tile, work_dir=out_dir,
                                rerun=redo_tile, after_batch=close_readers)
                runs.append(run)
                for rec in run:
                    counts[rec["status"]] = counts.get(rec["status"], 0) + 1
                    if keep_records or rec["status"] == "error":
                        tile_recs.append(rec)
                    if stream is not None:
                        stream.add(rec)
                passes.update(plan=t2 - t1, reduce=time.perf_counter() - t2)
            except RunInterrupted as exc:  # the CSVs get what finished, then it goes on
                interrupted = exc
                if not scene_recs:  # during the map pass
                    scene_recs = getattr(exc, "records", [])
                    for r in scene_recs:
                        r.pop("present", None)
                        r.pop("index", None)
    except BaseException:
        if stream is not None:
            stream.discard()
        raise
    finally:
        if own_work:
            shutil.rmtree(work, ignore_errors=True)
    tile_recs.sort(key=lambda r: (r["tile"][2], r["tile"][0], r["tile"][1]))
    report = SourcesReport(tile_recs, scene_recs)
    if not keep_records:
        report.counts = counts
        report.tile_total = sum(counts.values())
        report.total = report.tile_total + len(scene_recs)
    annotate(report, runs)
    report.litter_removed += litter
    report.passes = passes
    report.step = "rasterize-sources"
    t3 = time.perf_counter()
    if summary:
        save_run_csvs(report, out_dir, list(scene_recs) + list(report), stream=stream)
    passes["csv"] = time.perf_counter() - t3
    report.wall_seconds = time.perf_counter() - t0
    if interrupted is not None:
        interrupted.report = report
        raise interrupted
    report.warn_failures()
    return report
