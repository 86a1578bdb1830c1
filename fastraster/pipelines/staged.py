"""Staged tiles to GeoTIFFs: ``rasterize_dir`` over a staged tree, in parallel, and its
per-file worker task. This is the workers' entry point: importing it loads only what
rasterizing needs (no pyramid, web tiles, WMTS, tiler or CLI)."""

from __future__ import annotations

import dataclasses
import os
import time
import warnings

import numpy as np

from fastraster.execution.executor import LazyItems, run_tasks
from fastraster.execution.supervisor import RunInterrupted, annotate
from fastraster.execution.tasks import safe_task
from fastraster.execution.worker import prepare_worker
from fastraster.io.atomic import probe_writable
from fastraster.io.geotiff import write_geotiff
from fastraster.io.records import CsvStream, Report, WarningTally, save_run_csvs
from fastraster.io.staged import CENTROID_COLUMNS, InputError
from fastraster.io.summary import band_summary
from fastraster.io.tilepaths import TileFile, find_tiles, tile_path
from fastraster.model.grid import TileGrid
from fastraster.model.stats import Stat, attribute_columns, parse_stats
from fastraster.pipelines.options import RasterizeOptions
from fastraster.pipelines.tile import rasterize_file

# ---------------------------------------------------------------------------------------------
# The per-file task (runs in workers)
# ---------------------------------------------------------------------------------------------


def rasterize_one(job: TileFile, out_path: str, options: RasterizeOptions) -> dict:
    """Rasterize one staged file to ``out_path``; never raises, returns a report record."""

    def work(rec):
        prepare_worker()
        if job.tile is None:
            raise InputError(f"{job.path}: {job.problem}")
        if not options.overwrite and os.path.exists(out_path):
            rec["status"] = "skipped"
            return
        try:
            grid = TileGrid.from_tile(job.tile, job.tms, options.tile_size)
        except ValueError as exc:  # a tile index outside the matrix: the file's fault
            raise InputError(f"{job.path}: {exc}") from exc
        array, info = rasterize_file(job.path, grid, options, warn=False)
        t_w, c_w = time.perf_counter(), time.thread_time()
        names = [s.name for s in options.stats]
        written = array.astype(options.dtype, copy=False)  # summaries describe the file
        write_geotiff(out_path, written, grid, names, dtype=options.dtype,
                      nodata=options.nodata, cog=options.cog)
        rec.update(status="ok", polygons=info["polygons"], read_s=info["read_s"],
                   compute_s=info["compute_s"], write_s=time.perf_counter() - t_w,
                   read_cpu_s=info["read_cpu_s"], compute_cpu_s=info["compute_cpu_s"],
                   write_cpu_s=time.thread_time() - c_w,
                   bytes_read=info["bytes_read"], repaired=info["repaired"],
                   warnings=info["warnings"],
                   duplicates_dropped=info["duplicates_dropped"],
                   bounds=[grid.left, grid.right, grid.bottom, grid.top],
                   summary=[dict(stat=n, **band_summary(written[b]))
                            for b, n in enumerate(names)])

    return safe_task(work, job.path, job.tile, output=out_path, summary=None)


def rasterize_batch(jobs, options: RasterizeOptions) -> list[dict]:
    """:func:`rasterize_one` for each ``(job, out_path)`` of a batch (one worker task)."""
    return [rasterize_one(job, out, options) for job, out in jobs]


def rasterize_job(job, options: RasterizeOptions) -> dict:
    """:func:`rasterize_one` of one ``(TileFile, out_path[, redo])`` (the executor's item
    task); ``redo``: overwrite even if ``options`` does not (:func:`redo_job`)."""
    if len(job) > 2 and job[2] and not options.overwrite:
        options = dataclasses.replace(options, overwrite=True)
    return rasterize_one(job[0], job[1], options)


def describe_job(job):
    """``(path, tile, outputs)`` of a ``(TileFile, out_path)`` job, for the executor."""
    return job[0].path, job[0].tile, (job[1],) if job[1] else ()


def redo_job(job):
    """The job run again after a fault (its earlier execution may have written the output
    and died before its record was kept): written again rather than skipped."""
    return (job[0], job[1], True)


# ---------------------------------------------------------------------------------------------
# Loading the kernels into a process before its work
# ---------------------------------------------------------------------------------------------


#: One statistic per kernel path (and per type of values array), for warm-up.
_ALL_KERNEL_STATS = (
    {"name": "a", "weight_by": "count", "property": "centroids_per_pixel"},
    {"name": "b", "weight_by": "area", "property": "area_per_pixel_area", "nodata_val": 0},
    {"name": "c", "weight_by": "count", "property": "polygons_covering_center"},
    {"name": "d", "weight_by": "count", "property": "polygons_touching"},
    {"name": "e", "weight_by": "area", "property": "v", "aggregation_method": "max"},
    {"name": "f", "weight_by": "area", "property": "v", "aggregation_method": "sum"},
    {"name": "g", "weight_by": "count", "property": "v", "aggregation_method": "max"},
)


def warm_up(stats=None) -> None:
    """Load the kernels that rasterizing needs into this process, compiling them into the
    on-disk numba cache if they are not there yet.

    ``rasterize_dir`` calls it in the parent before dispatching, so that the cache is filled
    once instead of by every worker compiling at the same moment. numba caches one entry per
    argument *type*, and whether an array is read-only is part of its type, so the kernels are
    reached the way each entry point reaches them: a one-polygon GeoPackage (written to a
    temporary folder) goes through the workers' own path
    (:func:`~fastraster.pipelines.tile.rasterize_file`) once with each reader (sqlite3, as
    small tiles are read, and pyogrio) and the lean GeoTIFF writer, and the same polygon,
    without staging centroids,
    through :func:`~fastraster.pipelines.tile.rasterize_tile` as shapely geometry. Kernel
    inputs are handed over read-only whatever their route
    (:func:`fastraster.model.geometry.readonly`), so GeoArrow's zero-copy buffers, pandas
    columns and numpy arrays all reach the versions loaded here.

    The first kernel a process loads costs numba's one-off set-up (0.1-0.2 s on the 2-core
    development VM), each further signature 2-8 ms (``benchmarks/worker_ready.py``).

    Parameters
    ----------
    stats : list of dict or Stat, optional
        Load only the kernels these statistics need (and those of reading and validation);
        default: every kernel.
    """
    load_kernels(parse_stats(_ALL_KERNEL_STATS if stats is None else stats))


def load_kernels(stats: tuple[Stat, ...]) -> None:
    """:func:`warm_up` for parsed statistics."""
    import tempfile

    import pyogrio.raw
    import shapely

    from fastraster.io.gpkg_lean import read_staged_lean
    from fastraster.io.staged import read_staged
    from fastraster.pipelines.tile import rasterize_tile

    key = frozenset((s.property, s.weight_by, s.aggregation_method) for s in stats)
    if any(s.nodata_val is not None for s in stats):
        key |= {"nodata"}  # the no-data mask is a kernel of its own
    if any(key <= done for done in _WARMED):
        return  # this process has loaded these kernels already
    grid = TileGrid.from_tile((0, 0, 0), "WGS1984Quad", 4)
    poly = shapely.Polygon([(-170, 10), (-100, 10), (-100, 80), (-170, 80)])
    columns = {**dict(zip(CENTROID_COLUMNS, ([-135.0], [45.0]))),
               **{c: [1.0] for c in attribute_columns(stats)}}
    options = RasterizeOptions(stats=stats)
    with tempfile.TemporaryDirectory(prefix="fastraster-warm-up-") as tmp:
        path = os.path.join(tmp, "tile.gpkg")
        pyogrio.raw.write(path, np.array([shapely.to_wkb(poly)], dtype=object),
                          [np.array(v) for v in columns.values()], list(columns), driver="GPKG",
                          geometry_type="Polygon", crs="EPSG:4326")
        for reader in (read_staged_lean, read_staged):
            array, _ = rasterize_file(path, grid, options, reader=reader)
        # The lean GeoTIFF writer's byte planes (a signature per sample size).
        for dtype in ("float32", "float64"):
            write_geotiff(os.path.join(tmp, f"{dtype}.tif"), array, grid,
                          [s.name for s in stats], dtype=dtype, engine="lean")
    band_summary(array[0].astype(np.float32))  # the summary of a float32 band (the default)
    attributes = {c: np.ones(1) for c in attribute_columns(stats)}
    rasterize_tile([poly], (0, 0, 0), tms="WGS1984Quad", tile_size=4, stats=stats,
                   attributes=attributes)
    _WARMED.append(key)


#: Statistic kinds whose kernels :func:`warm_up` has loaded in this process.
_WARMED: list[frozenset] = []


# ---------------------------------------------------------------------------------------------
# The public entry point
# ---------------------------------------------------------------------------------------------


def _jobs(files, out_dir) -> LazyItems:
    """``(staged file, output path)`` of each file, built as its task is sent: a list of the
    pairs would hold ~0.3 kB per tile in the parent for the whole run."""
    return LazyItems(files, lambda f: (f, tile_path(out_dir, f.tms, f.tile) if f.tile else None))


def rasterize_dir(staged_dir, out_dir, *, tms=None, z=None, tile_size=256, stats=None,
                  n_jobs=None, batch_size=10, backend="loky", overwrite=False, progress=True,
                  dtype="float32", deduplicate=False, validate="repair", cog=False,
                  ext=".gpkg", summary=True, keep_records=True, retries=1) -> Report:
    """Rasterize every staged tile below ``staged_dir`` into ``out_dir``.

    Outputs go to ``<out_dir>/<TMS>/<z>/<x>/<y>.tif`` (written atomically; existing ones are
    skipped unless ``overwrite``), with ``rasters_summary.csv`` and
    ``rasterization_events.csv`` written once, by this (the parent) process, in ``out_dir``
    (merged under a file lock: concurrent runs into one folder lose no row).

    Faults (docs/reliability.md): a worker that dies costs only the file it was running,
    which fails with "worker died: SIGKILL" (or its crash) and is retried like any failed
    file; temporary files that killed runs left in the output folders are removed first; an
    output folder that cannot be written stops the run before any work
    (:class:`~fastraster.io.atomic.OutputError`), and repeated disk-full or permission errors
    stop dispatch (the files not attempted are reported). SIGINT or SIGTERM end the workers,
    write the CSVs for what finished and raise
    :class:`~fastraster.execution.supervisor.RunInterrupted` (a ``KeyboardInterrupt``; its
    ``report`` holds what finished): run again without ``overwrite`` to resume.

    Parameters
    ----------
    staged_dir : path
        Root of a staged tree ``<TMS>/<z>/<x>/<y>.gpkg`` (or any folder inside one).
    out_dir : path
        Where the GeoTIFF tree and the CSVs go.
    tms, z : optional
        Override the tile matrix set id and zoom inferred from the paths.
    tile_size : int or (height, width)
    stats : list of dict, optional
        PDG statistic configurations (default: polygon_count, coverage).
    n_jobs : int, optional
        Worker count as in joblib (None: joblib's default, 1 unless set by
        ``joblib.parallel_config``; -1: all cores).
    batch_size : int
        Files per task sent to a worker (dask costs ~8 ms per task: use ~50 there on big
        runs; docs/scale-out.md).
    backend : str
        Any joblib backend: "loky" (processes), "threading" (kernels release the GIL),
        "dask" (needs a running ``dask.distributed`` Client, else RuntimeError), "ray".
    overwrite, progress : bool
    dtype : "float32" or "float64"
        Output sample type (values are always computed in float64).
    deduplicate : bool
        Skip ``staging_duplicated`` rows (PDG's deduplicate_at "raster").
    validate : {"repair", "error", "none"}
        Invalid polygons: repaired with ``shapely.make_valid``, reported as a file error, or
        trusted.
    cog : bool
        Write Cloud-Optimized GeoTIFFs.
    ext : str
        Extension of staged files.
    summary : bool
        Write the two CSVs.
    keep_records : bool
        Keep every record in the report (default). ``False`` streams the CSV rows to disk as
        results arrive and keeps only the error records and the counts per status
        (``report.counts``, ``report.total``), so that the parent's memory does not grow
        with the number of tiles (about 2.5 kB per kept record); CSV rows are then in
        completion order.
    retries : int
        Times a failed file (whatever the cause) is tried again, alone in its task and in a
        fresh worker process, before it is reported; its record's ``attempts`` says how
        many tries it took, and ``report.retried`` how many files succeeded on a retry.

    Returns
    -------
    Report
        One record per input file (``keep_records=False``: per failed file); a failing file
        is a record with ``status="error"``, it never stops the run, which then ends with
        one :class:`~fastraster.io.records.RunFailures` warning (how many failed, the first
        message). Files rasterized with warnings (no CRS, features without geometry, no
        polygon reaching the tile) have them in their record's ``warnings``; the run then
        also ends with one ``UserWarning`` giving their number and the first message.

    Raises
    ------
    ValueError
        Before any file is written, for a bad setting or statistic (the message names the
        statistic, key and value, and what is allowed).
    """
    t0 = time.perf_counter()
    options = RasterizeOptions.create(stats=stats, tile_size=tile_size, dtype=dtype,
                                      overwrite=overwrite, deduplicate=deduplicate,
                                      validate=validate, cog=cog)
    files = find_tiles(staged_dir, ext, tms, z)
    jobs = _jobs(files, out_dir)
    load_kernels(options.stats)
    run = run_tasks(rasterize_job, jobs, (options,), batch_size=batch_size, n_jobs=n_jobs,
                    backend=backend, progress=progress, desc="rasterize", retries=retries,
                    describe=describe_job, work_dir=out_dir,
                    rerun=redo_job)  # checks the backend
    probe_writable(out_dir)  # one clear error, not one per tile
    records: dict[str, dict] = {}
    counts: dict[str, int] = {}
    warned = WarningTally()
    stream = CsvStream(out_dir) if summary and not keep_records else None
    interrupted = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            try:
                for rec in run:
                    if keep_records or rec["status"] == "error":
                        records[rec["path"]] = rec
                    warned.add(rec)
                    counts[rec["status"]] = counts.get(rec["status"], 0) + 1
                    if stream is not None:
                        stream.add(rec)
            except RunInterrupted as exc:  # the CSVs get what finished, then it goes on
                interrupted = exc
    except BaseException:
        if stream is not None:
            stream.discard()
        raise
    report = Report(records[f.path] for f in files if f.path in records)
    if not keep_records:
        # the files with a record (all of them, unless the run was interrupted), as the
        # report of kept records counts them
        report.counts, report.total = counts, sum(counts.values())
    annotate(report, [run])
    report.wall_seconds = time.perf_counter() - t0
    report.step = "rasterize"
    if summary:
        save_run_csvs(report, out_dir, stream=stream)
    if interrupted is not None:
        interrupted.report = report
        raise interrupted
    warned.warn(stacklevel=2)
    report.warn_failures()
    return report
