"""Lower zoom levels of a GeoTIFF tree, level by level in parallel: each parent tile from its
four children, reduced 2×2 per statistic (the arithmetic: :mod:`fastraster.model.pyramid_math`).
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from array import array

import numpy as np

from fastraster.execution.executor import LazyItems, run_tasks
from fastraster.execution.supervisor import RunInterrupted, annotate
from fastraster.execution.tasks import safe_task
from fastraster.io.atomic import probe_writable, sweep_litter
from fastraster.io.config import check_z_range
from fastraster.io.geotiff import read_geotiff, write_geotiff
from fastraster.io.records import CsvStream, Report, save_run_csvs
from fastraster.io.staged import InputError
from fastraster.io.summary import band_summary
from fastraster.io.tilepaths import find_tiles, tile_path
from fastraster.model.grid import TileGrid
from fastraster.model.pyramid_math import (
    band_stats,
    children_of,
    parent_from_children,
)
from fastraster.pipelines.options import PyramidOptions

# ---------------------------------------------------------------------------------------------
# One parent tile (runs in workers)
# ---------------------------------------------------------------------------------------------


def build_parent(geotiff_dir, tms: str, tile, options: PyramidOptions) -> dict:
    """Build one parent GeoTIFF from the children present; never raises, returns a record."""
    out = tile_path(geotiff_dir, tms, tile)

    def work(rec):
        t0 = time.perf_counter()
        if not options.overwrite and os.path.exists(out):
            rec["status"] = "skipped"
            return
        children, meta = [], None
        for child in children_of(tile):
            path = tile_path(geotiff_dir, tms, child)
            if not os.path.exists(path):
                children.append(None)
                continue
            try:
                data, names, dtype, nodata = read_geotiff(path)
            except Exception as exc:
                raise ValueError(f"cannot read child {path}: {exc}") from exc
            meta = meta or (names, dtype, nodata)
            children.append(data)
        if meta is None:
            raise InputError(f"{out}: no child GeoTIFF of tile {tuple(tile)} exists")
        names, dtype, nodata = meta
        t1 = time.perf_counter()
        stats = band_stats(names, options.stats)
        array = parent_from_children(children, stats)
        h, w = array.shape[1:]
        grid = TileGrid.from_tile(tile, tms, (h, w))
        t2 = time.perf_counter()
        band_names = [s.name for s in stats]
        write_geotiff(out, array, grid, band_names, dtype=dtype, nodata=nodata,
                      cog=options.cog)
        written = array.astype(dtype, copy=False)
        rec.update(status="ok", children=sum(c is not None for c in children),
                   read_s=t1 - t0, compute_s=t2 - t1, write_s=time.perf_counter() - t2,
                   bounds=[grid.left, grid.right, grid.bottom, grid.top],
                   summary=[dict(stat=n, **band_summary(written[b]))
                            for b, n in enumerate(band_names)])

    return safe_task(work, out, tile, output=out, summary=None)


def _build_job(job, geotiff_dir, options):
    """:func:`build_parent` of one ``(out_path, tms, tile[, redo])`` job (the executor's item
    task); ``redo``: overwrite even if ``options`` does not (a run again after a fault)."""
    if len(job) > 3 and job[3] and not options.overwrite:
        options = dataclasses.replace(options, overwrite=True)
    return build_parent(geotiff_dir, job[1], job[2], options)


def _describe_job(job):
    return job[0], job[2], (job[0],)


def _redo_job(job):
    return (*job[:3], True)


# ---------------------------------------------------------------------------------------------
# The public entry point
# ---------------------------------------------------------------------------------------------


def _existing(geotiff_dir, tms=None) -> dict[str, np.ndarray]:
    """{tms: (n, 3) int64 array of the (x, y, z) of the GeoTIFFs below ``geotiff_dir``}.

    Arrays, not sets of tuples: ~24 instead of ~150 bytes per tile in the parent, 0.24
    instead of 1.5 GB for the ~10^7 z15 tiles of the pan-Arctic layer."""
    found: dict[str, array] = {}
    for f in find_tiles(geotiff_dir, ".tif", tms):
        if f.tile is not None:
            found.setdefault(f.tms, array("q")).extend(f.tile)
    return {k: np.frombuffer(v, dtype=np.int64).reshape(-1, 3) for k, v in found.items()}


def _parents(tiles: np.ndarray) -> np.ndarray:
    """The parents of ``tiles`` ((n, 3) x, y, z of one zoom), unique, sorted as tuples."""
    if not len(tiles):
        return tiles.reshape(0, 3)
    return np.unique(np.column_stack([tiles[:, 0] // 2, tiles[:, 1] // 2, tiles[:, 2] - 1]),
                     axis=0)


def _level_job(geotiff_dir, tms, row):
    """``(parent path, tms, tile)`` of one row of a level's (n, 3) array (plain ints)."""
    tile = tuple(int(v) for v in row)
    return tile_path(geotiff_dir, tms, tile), tms, tile


def pyramid_levels(geotiff_dir, tms: str, parents, z_min: int, options: PyramidOptions, *,
                   n_jobs=None, backend="loky", batch_size=8, progress=False,
                   recursive=True, retries=1, runs=None, sink=None) -> list[dict]:
    """Build ``parents`` (tiles of one zoom), then, if ``recursive``, their parents down to
    ``z_min``. Returns the records of every tile tried, level by level; with ``sink``, each
    record is handed to ``sink(record)`` as it arrives instead, and none is kept.

    ``runs``: a list that gets each level's :class:`~fastraster.execution.supervisor.TaskRun`.
    A level that stopped early (repeated disk errors) ends the pyramid there. On
    :class:`~fastraster.execution.supervisor.RunInterrupted` the exception's ``records``
    hold the records of the tiles finished so far.
    """
    records: list[dict] = []
    level = np.asarray([tuple(t) for t in parents] if not isinstance(parents, np.ndarray)
                       else parents, dtype=np.int64).reshape(-1, 3)
    level = np.unique(level, axis=0)  # sorted as tuples
    while len(level) and level[0, 2] >= z_min:
        z = int(level[0, 2])
        if (level[:, 2] != z).any():
            raise ValueError("parent tiles must all be of one zoom level")
        jobs = LazyItems(level, lambda row: _level_job(geotiff_dir, tms, row))
        run = run_tasks(_build_job, jobs, (geotiff_dir, options), batch_size=batch_size,
                        n_jobs=n_jobs, backend=backend, progress=progress,
                        desc=f"pyramid z{z}", retries=retries, describe=_describe_job,
                        work_dir=geotiff_dir, rerun=_redo_job)
        if runs is not None:
            runs.append(run)
        done = {}
        try:
            for rec in run:
                if sink is None:
                    done[rec["tile"]] = rec
                else:
                    sink(rec)
        except RunInterrupted as exc:
            exc.records = records + [done[t] for t in map(tuple, level.tolist()) if t in done]
            raise
        records.extend(done[t] for t in map(tuple, level.tolist()) if t in done)
        if not recursive or z == 0 or run.stopped:
            break
        # Next level: parents of every tile of this level that exists (built or kept).
        exists = np.fromiter((os.path.exists(jobs[i][0]) for i in range(len(jobs))),
                             dtype=bool, count=len(jobs))
        level = _parents(level[exists])
    return records


def _z_bounds(z_range, tms):
    """``(min_z, max_z or None)`` of build_pyramid's ``z_range``, checked."""
    if z_range is None:
        return 0, None
    if isinstance(z_range, (list, tuple)) and len(z_range) == 2 and z_range[1] is None:
        return check_z_range((z_range[0], z_range[0]), tms)[0], None
    return check_z_range(z_range, tms)


def build_pyramid(geotiff_dir, z_range=None, *, stats=None, n_jobs=None,
                  overwrite=False, backend="loky", batch_size=8, progress=True, tms=None,
                  summary=True, cog=False, retries=1, keep_records=True) -> Report:
    """Build the lower zoom levels of a GeoTIFF tree from its tiles at ``z_range[1]``
    (default: from its deepest zoom down to 0).

    For every tile at ``z_range[1]`` its parent is made from the four children (missing
    children count as empty), each band reduced 2×2 by its statistic's
    ``resampling_method`` (:func:`~fastraster.model.pyramid_math.reduce_2x2`); then the
    parents of those, level by level, down to ``z_range[0]``. Tiles of one level are built in
    parallel (joblib), each written atomically with the children's dtype and nodata tag.
    Existing parents are kept (status ``"skipped"``) unless ``overwrite``, so an interrupted
    run resumes; a kept parent is not rebuilt even if its children changed, so pass
    ``overwrite=True`` after re-rasterizing.

    Parameters
    ----------
    geotiff_dir : path
        Root of ``<TMS>/<z>/<x>/<y>.tif`` (what :func:`fastraster.rasterize_dir` writes).
    z_range : (int, int), optional
        (lowest zoom to build, zoom of the existing tiles); a None second value (or a
        None ``z_range``: ``(0, None)``) is the deepest zoom of the GeoTIFFs of each TMS.
    stats : list of dict, optional
        PDG statistic configurations naming the bands (default: polygon_count, coverage);
        band descriptions are matched to statistic names.
    n_jobs, backend, batch_size, retries :
        joblib parallelism and retries of failed tiles, as in :func:`fastraster.rasterize_dir`
        (and its fault tolerance: docs/reliability.md).
    tms : str, optional
        Only this tile matrix set (default: every TMS folder found).
    summary : bool or path
        Merge the parents' rows into ``rasters_summary.csv`` (and ``rasterization_events.csv``)
        in ``geotiff_dir`` (or the given summary path), as pdgraster does; needed for the
        per-zoom value ranges of web tiles.
    keep_records : bool
        Keep every record in the report (default). ``False`` streams the CSV rows to disk as
        results arrive and keeps only the error records and the counts per status, as
        :func:`fastraster.rasterize_dir` does (the command line's choice): the parent's
        memory then does not grow with the number of tiles.

    Returns
    -------
    Report
        One record per parent tile tried (``status`` ok / skipped / error); an error never
        stops the run (its parent is made from the other children), which then ends with
        one :class:`~fastraster.io.records.RunFailures` warning.

    Raises
    ------
    ValueError
        Before any file is written: a bad ``z_range`` or statistic (named, with the value
        and what is allowed).
    """
    t0 = time.perf_counter()
    z_lo, z_hi = _z_bounds(z_range, tms)
    options = PyramidOptions.create(stats=stats, overwrite=overwrite, cog=cog)
    geotiff_dir = os.fspath(geotiff_dir)
    records: list[dict] = []
    z_max = None
    runs: list = []
    interrupted = None
    existing = sorted(_existing(geotiff_dir, tms).items())
    swept = 0
    if existing:
        probe_writable(geotiff_dir)  # one clear error, not one per tile
        if summary and summary is not True:  # the CSVs' folder (the runs sweep the tree)
            swept = sweep_litter([os.path.dirname(os.path.abspath(os.fspath(summary)))])
    counts: dict[str, int] = {}
    stream = sink = None
    if not keep_records:
        if summary:
            stream = CsvStream(geotiff_dir, None if summary is True else summary)

        def sink(rec):
            counts[rec["status"]] = counts.get(rec["status"], 0) + 1
            if rec["status"] == "error":
                records.append(rec)
            if stream is not None:
                stream.add(rec)

    for tms_id, tiles in existing:
        z_min, z_max = z_lo, (int(tiles[:, 2].max()) if z_hi is None else z_hi)
        top = tiles[tiles[:, 2] == z_max]
        if not len(top) or z_max == 0:
            continue
        parents = _parents(top)
        try:
            records += pyramid_levels(geotiff_dir, tms_id, parents, z_min, options,
                                      n_jobs=n_jobs, backend=backend, batch_size=batch_size,
                                      progress=progress, retries=retries, runs=runs,
                                      sink=sink)
        except RunInterrupted as exc:  # the CSVs get what finished, then it goes on
            records += exc.records
            interrupted = exc
            break
        except BaseException:
            if stream is not None:
                stream.discard()
            raise
        if any(r.stopped for r in runs):
            break
    tried = sum(counts.values()) if sink is not None else len(records)
    if not tried and interrupted is None:
        at = "" if z_max is None else f" at zoom {z_max}"
        warnings.warn(f"{geotiff_dir}: no GeoTIFFs{at} with a zoom below to build; "
                      f"nothing to build", stacklevel=2)
    report = Report(records)
    if sink is not None:
        report.counts, report.total = counts, tried
    annotate(report, runs)
    report.litter_removed += swept
    report.wall_seconds = time.perf_counter() - t0
    report.step = "pyramid"
    if stream is not None and not tried:
        stream.discard()
    elif summary and tried:
        save_run_csvs(report, geotiff_dir, stream=stream,
                      summary_path=None if summary is True else summary)
    if interrupted is not None:
        interrupted.report = report
        raise interrupted
    report.warn_failures()
    return report
