"""``rasterize_dir``: a staged tree to one GeoTIFF per tile, in parallel with joblib."""

from __future__ import annotations

import csv
import os
import re
import resource
import shutil
import time
import traceback
import uuid
import warnings
from dataclasses import dataclass

import numpy as np

from fastraster.allocator import tune_allocator
from fastraster.grid import QUAD_TMS, TileGrid
from fastraster.io import CENTROID_COLUMNS, InputError, band_summary, write_geotiff
from fastraster.rasterize import rasterize_file
from fastraster.stats import attribute_columns, parse_stats

SUMMARY_COLUMNS = ["stat", "bounds", "min", "max", "mean", "median", "std", "var", "sum",
                   "path", "tile", "z"]
EVENT_COLUMNS = ["path", "tile", "status", "error", "seconds", "polygons", "output",
                 "read_s", "compute_s", "write_s", "read_cpu_s", "compute_cpu_s",
                 "write_cpu_s", "bytes_read"]


# ---------------------------------------------------------------------------------------------
# Finding staged tiles
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StagedFile:
    """One input file and the tile it stands for (``tile`` None if it could not be inferred)."""

    path: str
    tms: str | None
    tile: tuple | None
    problem: str | None = None


_INT = re.compile(r"^\d+$")


def parse_tile_path(path, tms=None, z=None) -> StagedFile:
    """Infer TMS id and tile from ``.../<TMS>/<z>/<x>/<y>.<ext>``; explicit values win."""
    p = os.path.normpath(os.fspath(path))
    parts = p.split(os.sep)
    stem = os.path.splitext(parts[-1])[0]
    if len(parts) < 3 or not (_INT.match(stem) and _INT.match(parts[-2])
                              and _INT.match(parts[-3])):
        return StagedFile(p, tms, None, "cannot infer the tile from the path; expected "
                          "<TMS>/<z>/<x>/<y> with integer z, x and y")
    x, y, zz = int(parts[-2]), int(stem), int(parts[-3])
    if z is not None:
        zz = int(z)
    if tms is None:
        tms = parts[-4] if len(parts) >= 4 else None
        if tms is None or not _is_tms(tms):
            return StagedFile(p, None, None, f"cannot infer the tile matrix set from the path "
                              f"(folder {tms!r} is not a TMS id); pass tms=")
    return StagedFile(p, tms, (x, y, zz))


def _is_tms(name: str) -> bool:
    if name in QUAD_TMS:
        return True
    import morecantile

    return name in morecantile.tms.list()


def find_staged(staged_dir, tms=None, z=None, ext=".gpkg") -> list[StagedFile]:
    """All files with ``ext`` below ``staged_dir``, sorted, with their tiles."""
    staged_dir = os.fspath(staged_dir)
    if not os.path.isdir(staged_dir):
        raise FileNotFoundError(f"{staged_dir}: no such directory")
    found = []
    for root, dirs, files in os.walk(staged_dir):
        dirs.sort()
        for f in sorted(files):
            if f.endswith(ext) and not f.startswith("."):
                found.append(parse_tile_path(os.path.join(root, f), tms, z))
    return found


def output_path(out_dir, tms: str, tile, ext=".tif") -> str:
    x, y, z = tile
    return os.path.join(os.fspath(out_dir), tms, str(z), str(x), f"{y}{ext}")


# ---------------------------------------------------------------------------------------------
# The per-file task (runs in workers)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Settings:
    stats: tuple
    tile_size: tuple
    dtype: str
    overwrite: bool
    deduplicate: bool
    validate: str
    cog: bool


def _limit_numba_threads():
    # Workers already run in parallel; a numba thread pool per worker would oversubscribe.
    import numba

    if numba.get_num_threads() != 1:
        numba.set_num_threads(1)


def _common_nodata(stats):
    values = {s.nodata_val for s in stats}
    return values.pop() if len(values) == 1 else None


def rasterize_one(job: StagedFile, out_path: str, settings: _Settings) -> dict:
    """Rasterize one staged file to ``out_path``; never raises, returns a report record."""
    t0 = time.perf_counter()
    rec = {"path": job.path, "tile": job.tile, "status": "error", "error": None,
           "seconds": 0.0, "polygons": None, "output": out_path, "summary": None}
    try:
        _limit_numba_threads()
        tune_allocator()
        if job.tile is None:
            raise InputError(f"{job.path}: {job.problem}")
        if not settings.overwrite and os.path.exists(out_path):
            rec["status"] = "skipped"
            return rec
        try:
            grid = TileGrid.from_tile(job.tile, job.tms, settings.tile_size)
        except ValueError as exc:  # a tile index outside the matrix: the file's fault
            raise InputError(f"{job.path}: {exc}") from exc
        array, info = rasterize_file(job.path, grid, settings.stats,
                                     deduplicate=settings.deduplicate,
                                     validate=settings.validate, warn=False)
        t_w, c_w = time.perf_counter(), time.thread_time()
        names = [s.name for s in settings.stats]
        written = array.astype(settings.dtype, copy=False)  # summaries describe the file
        write_geotiff(out_path, written, grid, names, dtype=settings.dtype,
                      nodata=_common_nodata(settings.stats), cog=settings.cog)
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
    except InputError as exc:
        rec["error"] = str(exc)
    except Exception as exc:  # a failing file must never stop the run
        rec["error"] = f"{job.path}: {type(exc).__name__}: {exc}"
        rec["traceback"] = traceback.format_exc()
    rec["seconds"] = time.perf_counter() - t0
    rec["pid"] = os.getpid()
    rec["maxrss_kb"] = peak_rss_kb()
    return rec


def peak_rss_kb() -> int:
    """Peak resident memory of this process, in kB.

    Linux's ``VmHWM`` starts afresh at exec; ``ru_maxrss`` would carry over the parent's peak
    into a forked-and-exec'd worker (loky's), overstating a 40 MB worker as 430 MB.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _prepare_backend(backend):
    """Check that the optional backends ("dask", "ray") can run, and register ray's."""
    if backend == "dask":
        try:
            from distributed import default_client
        except ImportError as exc:
            raise ImportError("backend='dask' needs dask.distributed: pip install "
                              "'fastraster[dask]'") from exc
        try:
            default_client()
        except ValueError as exc:
            raise RuntimeError(
                "backend='dask' needs a running dask.distributed Client; create one with "
                "Client(...) first, e.g. Client(LocalCluster()) or "
                "Client('tcp://scheduler:8786')") from exc
    elif backend == "ray":
        try:
            from ray.util.joblib import register_ray
        except ImportError as exc:
            raise ImportError("backend='ray' needs ray: pip install 'fastraster[ray]'") from exc
        register_ray()


#: Tasks per joblib call for backends that cannot stream results (ray's pool-based one):
#: bounds what the parent holds at once.
_CHUNK_TASKS = 64


def parallel_unordered(func, arg_tuples, *, n_jobs=None, backend="loky"):
    """``func(*args)`` for each of ``arg_tuples`` on joblib workers, yielded as they finish.

    One task per tuple (callers batch files into tasks themselves); results stream back
    (``return_as="generator_unordered"``), or chunk by chunk for backends that cannot stream
    (ray). ``backend="dask"`` needs a running ``dask.distributed`` Client (checked here, before
    any work); ``"ray"`` is registered here.
    """
    _prepare_backend(backend)
    return _parallel_unordered(func, arg_tuples, n_jobs, backend)


def _parallel_unordered(func, arg_tuples, n_jobs, backend):
    from contextlib import nullcontext

    from joblib import Parallel, delayed, parallel_config

    # The backend goes through parallel_config: it registers joblib's dask backend, and
    # joblib 1.6's Parallel(backend="dask") would pass nesting_level on to client.submit.
    with parallel_config(backend=backend) if backend is not None else nullcontext():
        try:
            parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered", batch_size=1)
            streams = True
        except ValueError:  # this backend cannot return generators
            parallel = Parallel(n_jobs=n_jobs, batch_size=1)
            streams = False
    if streams:
        yield from parallel(delayed(func)(*args) for args in arg_tuples)
        return
    arg_tuples = list(arg_tuples)
    with parallel:  # one pool for all chunks
        for i in range(0, len(arg_tuples), _CHUNK_TASKS):
            yield from parallel(delayed(func)(*args) for args in arg_tuples[i:i + _CHUNK_TASKS])


def batched_records(func, jobs, args=(), *, batch_size=10, n_jobs=None, backend="loky",
                    progress=False, desc="tiles"):
    """Run ``func(batch, *args)`` on joblib workers for batches of ``jobs``; yield the records
    each returns, batch by batch as they finish (unordered), advancing a tqdm bar.

    The backend is checked before any work (see :func:`parallel_unordered`).
    """
    batch_size = max(int(batch_size), 1)
    batches = [jobs[i:i + batch_size] for i in range(0, len(jobs), batch_size)]
    results = parallel_unordered(func, [(b, *args) for b in batches], n_jobs=n_jobs,
                                 backend=backend)
    return _with_progress(results, len(jobs), progress, desc)


def _with_progress(results, total, progress, desc):
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="tile", desc=desc, disable=not total)
    try:
        for batch in results:
            yield from batch
            if bar is not None:
                bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()


def _run_batch(jobs, settings):
    return [rasterize_one(job, out, settings) for job, out in jobs]


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
    reached the way workers reach them: a one-polygon GeoPackage (written to a temporary
    folder) goes through the workers' own path (:func:`~fastraster.rasterize.rasterize_file`:
    pyogrio read, WKB decoding, validation, the statistics), and the same polygon as shapely
    geometry, without staging centroids, through :func:`~fastraster.compute.compute_stats`
    (the path of :func:`~fastraster.rasterize.rasterize_tile` on in-memory geometries).

    The first kernel a process loads costs numba's one-off set-up (0.1-0.2 s on the 2-core
    development VM), each further signature 2-8 ms (``benchmarks/worker_ready.py``).

    Parameters
    ----------
    stats : list of dict or Stat, optional
        Load only the kernels these statistics need (and those of reading and validation);
        default: every kernel.
    """
    import tempfile

    import pyogrio.raw
    import shapely

    from fastraster.compute import compute_stats
    from fastraster.geometry import RaggedPolygons

    stats = parse_stats(_ALL_KERNEL_STATS if stats is None else stats)
    key = frozenset((s.property, s.weight_by, s.aggregation_method) for s in stats)
    if any(s.nodata_val is not None for s in stats):
        key |= {"nodata"}  # the no-data mask is a kernel of its own
    if any(key <= done for done in _WARMED):
        return  # this process has loaded these kernels already
    grid = TileGrid.from_tile((0, 0, 0), "WGS1984Quad", 4)
    poly = shapely.Polygon([(-170, 10), (-100, 10), (-100, 80), (-170, 80)])
    columns = {**dict(zip(CENTROID_COLUMNS, ([-135.0], [45.0]))),
               **{c: [1.0] for c in attribute_columns(stats)}}
    with tempfile.TemporaryDirectory(prefix="fastraster-warm-up-") as tmp:
        path = os.path.join(tmp, "tile.gpkg")
        pyogrio.raw.write(path, np.array([shapely.to_wkb(poly)], dtype=object),
                          [np.array(v) for v in columns.values()], list(columns), driver="GPKG",
                          geometry_type="Polygon", crs="EPSG:4326")
        array, _ = rasterize_file(path, grid, stats)
    band_summary(array[0].astype(np.float32))  # the summary of a float32 band (the default)
    compute_stats(RaggedPolygons.from_shapely([poly]), grid, stats,
                  attributes={c: np.ones(1) for c in attribute_columns(stats)})
    _WARMED.append(key)


#: Statistic kinds whose kernels :func:`warm_up` has loaded in this process.
_WARMED: list[frozenset] = []


# ---------------------------------------------------------------------------------------------
# Reports and summaries
# ---------------------------------------------------------------------------------------------


class Report(list):
    """One record (dict) per input file, in input order, plus totals.

    Each record has ``path``, ``tile`` (x, y, z), ``status`` ("ok", "skipped" or "error"),
    ``error`` (message naming the file, or None), ``seconds``, ``polygons`` and ``output``;
    successful ones also phase wall/CPU times (``read_s``, ``compute_s``, ``write_s``,
    ``*_cpu_s``), ``bytes_read``, ``warnings`` (messages naming the file, e.g. no CRS,
    features without geometry; usually empty), and every one the worker's ``pid`` and peak
    ``maxrss_kb``.
    """

    wall_seconds: float = 0.0
    #: With ``rasterize_dir(keep_records=False)``: files per status and in all (the report
    #: then holds only the error records).
    counts: dict | None = None
    total: int | None = None

    def n(self, status: str) -> int:
        """Number of files with this status."""
        if self.counts is not None:
            return self.counts.get(status, 0)
        return sum(1 for r in self if r["status"] == status)

    @property
    def errors(self) -> list[dict]:
        return [r for r in self if r["status"] == "error"]

    def summary_line(self) -> str:
        ok, sk, err = self.n("ok"), self.n("skipped"), self.n("error")
        rate = ok / self.wall_seconds if self.wall_seconds > 0 else float("nan")
        total = len(self) if self.total is None else self.total
        return (f"{total} tiles: {ok} ok, {sk} skipped, {err} failed in "
                f"{self.wall_seconds:.2f} s ({rate:.1f} tiles/s)")


def _fmt_tile(tile):
    return "" if tile is None else f"Tile(x={tile[0]}, y={tile[1]}, z={tile[2]})"


def _atomic_csv(path, header, rows):
    folder = os.path.dirname(os.fspath(path)) or "."
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(rows)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def summary_rows(records) -> list[list]:
    """pdgraster's ``rasters_summary.csv`` rows for the successful records."""
    rows = []
    for r in records:
        if r["status"] != "ok" or not r.get("summary"):
            continue
        for band in r["summary"]:
            rows.append([band["stat"], str(list(r["bounds"])), band["min"], band["max"],
                         band["mean"], band["median"], band["std"], band["var"], band["sum"],
                         r["output"], _fmt_tile(r["tile"]), r["tile"][2]])
    return rows


def write_summary(path, records) -> None:
    """Write ``rasters_summary.csv``, keeping earlier rows of outputs not redone in this run."""
    new = summary_rows(records)
    redone = {row[9] for row in new}
    kept = [row for row in _previous_rows(path, SUMMARY_COLUMNS) if row[9] not in redone]
    _atomic_csv(path, SUMMARY_COLUMNS, kept + new)


def _previous_rows(path, header) -> list[list]:
    return list(_iter_previous_rows(path, header))


def _iter_previous_rows(path, header):
    if not os.path.exists(path):
        return
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        if next(reader, None) != header:
            return
        yield from (row for row in reader if len(row) == len(header))


def event_rows(records) -> list[list]:
    """``rasterization_events.csv`` rows of the records."""
    return [[r["path"], _fmt_tile(r["tile"]), r["status"], r["error"] or "",
             f"{r['seconds']:.6f}", "" if r["polygons"] is None else r["polygons"],
             r["output"] or "", *(f"{r[k]:.6f}" if k in r else "" for k in
                                  ("read_s", "compute_s", "write_s", "read_cpu_s",
                                   "compute_cpu_s", "write_cpu_s")),
             r.get("bytes_read", "")] for r in records]


def write_events(path, records, append=False) -> None:
    """Write ``rasterization_events.csv`` (after the earlier rows if ``append``)."""
    rows = event_rows(records)
    previous = _previous_rows(path, EVENT_COLUMNS) if append else []
    _atomic_csv(path, EVENT_COLUMNS, previous + rows)


class _CsvStream:
    """The two CSVs of ``rasterize_dir(keep_records=False)``: rows go to temporary files in
    ``out_dir`` as records arrive; ``finish`` merges and renames them as ``write_summary``
    and ``write_events`` would (rows in arrival order)."""

    def __init__(self, out_dir):
        os.makedirs(out_dir, exist_ok=True)
        self.paths = [os.path.join(out_dir, n) for n in ("rasters_summary.csv",
                                                          "rasterization_events.csv")]
        self.parts = [os.path.join(out_dir, f".{os.path.basename(p)}.{uuid.uuid4().hex}.tmp")
                      for p in self.paths]
        self.files = [open(p, "w", newline="") for p in self.parts]
        self.summary, self.events = (csv.writer(fh) for fh in self.files)
        # Outputs redone, needed only to drop their rows from an earlier summary.
        self.redone = set() if os.path.exists(self.paths[0]) else None

    def add(self, rec):
        rows = summary_rows([rec])
        self.summary.writerows(rows)
        if self.redone is not None:
            self.redone.update(row[9] for row in rows)
        self.events.writerows(event_rows([rec]))

    def finish(self):
        for fh in self.files:
            fh.close()
        for path, part, header in zip(self.paths, self.parts, (SUMMARY_COLUMNS, EVENT_COLUMNS)):
            old = _iter_previous_rows(path, header) if header is SUMMARY_COLUMNS else ()
            tmp = f"{part}.final"
            with open(tmp, "w", newline="") as out, open(part, newline="") as new:
                w = csv.writer(out)
                w.writerow(header)
                w.writerows(row for row in old if self.redone is None or
                            row[9] not in self.redone)
                shutil.copyfileobj(new, out)
            os.replace(tmp, path)
            os.remove(part)

    def discard(self):
        for fh, part in zip(self.files, self.parts):
            fh.close()
            for p in (part, f"{part}.final"):
                if os.path.exists(p):
                    os.remove(p)


# ---------------------------------------------------------------------------------------------
# The public entry point
# ---------------------------------------------------------------------------------------------


def rasterize_dir(staged_dir, out_dir, *, tms=None, z=None, tile_size=256, stats=None,
                  n_jobs=None, batch_size=10, backend="loky", overwrite=False, progress=True,
                  dtype="float32", deduplicate=False, validate="repair", cog=False,
                  ext=".gpkg", summary=True, keep_records=True) -> Report:
    """Rasterize every staged tile below ``staged_dir`` into ``out_dir``.

    Outputs go to ``<out_dir>/<TMS>/<z>/<x>/<y>.tif`` (written atomically; existing ones are
    skipped unless ``overwrite``), with ``rasters_summary.csv`` and
    ``rasterization_events.csv`` written once, by this (the parent) process, in ``out_dir``.

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

    Returns
    -------
    Report
        One record per input file (``keep_records=False``: per failed file); a failing file
        is a record with ``status="error"``, it never stops the run. Files rasterized with
        warnings (no CRS, features without geometry, no polygon reaching the tile) have
        them in their record's ``warnings``; the run then ends with one ``UserWarning``
        giving their number and the first message.
    """
    t0 = time.perf_counter()
    stats = parse_stats(stats)
    files = find_staged(staged_dir, tms, z, ext)
    settings = _Settings(stats, tile_size, np.dtype(dtype).name, overwrite, deduplicate,
                         validate, cog)
    jobs = [(f, output_path(out_dir, f.tms, f.tile) if f.tile else None) for f in files]
    warm_up(stats)
    results = batched_records(_run_batch, jobs, (settings,), batch_size=batch_size,
                              n_jobs=n_jobs, backend=backend, progress=progress,
                              desc="rasterize")
    records: dict[str, dict] = {}
    counts: dict[str, int] = {}
    warned: list[list] = []  # [number of files with warnings, first message]
    stream = _CsvStream(out_dir) if summary and not keep_records else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            for rec in results:
                if keep_records or rec["status"] == "error":
                    records[rec["path"]] = rec
                if rec.get("warnings"):
                    if warned:
                        warned[0][0] += 1
                    else:
                        warned.append([1, rec["warnings"][0]])
                counts[rec["status"]] = counts.get(rec["status"], 0) + 1
                if stream is not None:
                    stream.add(rec)
        if stream is not None:
            stream.finish()
    except BaseException:
        if stream is not None:
            stream.discard()
        raise
    report = Report(records[f.path] for f in files if f.path in records)
    if not keep_records:
        report.counts, report.total = counts, len(files)
    report.wall_seconds = time.perf_counter() - t0
    if summary and keep_records:
        os.makedirs(out_dir, exist_ok=True)
        write_summary(os.path.join(out_dir, "rasters_summary.csv"), report)
        write_events(os.path.join(out_dir, "rasterization_events.csv"), report)
    if warned:
        # Workers cannot raise warnings in this process (and capturing them there is not
        # thread-safe): they come back in the records, summed up here once.
        n, first = warned[0]
        warnings.warn(f"{n} file(s) rasterized with warnings (each record's 'warnings'); "
                      f"first: {first}", UserWarning, stacklevel=2)
    return report
