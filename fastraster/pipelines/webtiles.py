"""Web tiles: one RGBA PNG per statistic per GeoTIFF, coloured as pdgraster colours them
(:mod:`fastraster.render`), in parallel, plus the WMTS capabilities document."""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np

from fastraster.execution.executor import LazyItems, run_tasks
from fastraster.execution.supervisor import RunInterrupted, annotate
from fastraster.execution.tasks import safe_task
from fastraster.io.atomic import probe_writable
from fastraster.io.config import check_z_range
from fastraster.io.geotiff import read_geotiff
from fastraster.io.png import write_png
from fastraster.io.records import SUMMARY_CSV, Report
from fastraster.io.tilepaths import find_tiles, parse_tile_path, web_tile_path
from fastraster.model.pyramid_math import band_stats
from fastraster.pipelines.options import WebTileOptions
from fastraster.render.palettes import colorize
from fastraster.render.ranges import ranges_from_geotiffs, value_range, zoom_ranges

# ---------------------------------------------------------------------------------------------
# Rendering (runs in workers)
# ---------------------------------------------------------------------------------------------


def render_one(path: str, tms: str, tile, options: WebTileOptions) -> dict:
    """All web tiles of one GeoTIFF; never raises, returns a report record."""

    def work(rec):
        stats = options.stats
        todo = [s for s in stats
                if options.overwrite or not os.path.exists(
                    web_tile_path(options.web_dir, s.name, tms, tile))]
        if not todo:
            rec["status"] = "skipped"
            return
        data, names = read_geotiff(path)[:2]
        per_band = band_stats(names, stats)
        z = tile[2]
        for b, stat in enumerate(per_band):
            if stat not in todo:
                continue
            vmin, vmax = value_range(stat, z, options.ranges)
            rgba = colorize(data[b], vmin, vmax, colors=stat.get("palette"),
                            nodata_color=stat.get("nodata_color"), nodata_val=stat.nodata_val)
            out = web_tile_path(options.web_dir, stat.name, tms, tile)
            write_png(out, rgba, options.compress_level)
            rec["outputs"].append(out)
        rec["output"] = rec["outputs"][0] if rec["outputs"] else None
        rec["status"] = "ok"

    return safe_task(work, path, tile, outputs=[])


def _render_job(job, options):
    """:func:`render_one` of one ``(path, tms, tile, outputs[, redo])`` job (the executor's
    item task); ``redo``: overwrite even if ``options`` does not (a run again after a
    fault)."""
    if len(job) > 4 and job[4] and not options.overwrite:
        options = dataclasses.replace(options, overwrite=True)
    return render_one(job[0], job[1], job[2], options)


def _describe_job(job):
    return job[0], job[2], job[3]


def _redo_job(job):
    return (*job[:4], True)


# ---------------------------------------------------------------------------------------------
# The public entry point
# ---------------------------------------------------------------------------------------------


def render_web_tiles(geotiff_dir, web_dir, *, stats=None, z_range=None, paths=None,
                     summary=None, n_jobs=None, backend="loky", batch_size=16,
                     overwrite=False, progress=True, tms=None, wmts=True, base_url=None,
                     compress_level=6, retries=1, keep_records=True) -> Report:
    """Render every GeoTIFF below ``geotiff_dir`` into ``<web_dir>/<stat>/<TMS>/<z>/<x>/<y>.png``.

    One RGBA PNG (tile-sized) per statistic per GeoTIFF, coloured with the statistic's
    ``palette`` over its value range at that zoom
    (:func:`~fastraster.render.ranges.value_range`), ``nodata_val``
    pixels in ``nodata_color``. Written atomically; existing PNGs are kept unless
    ``overwrite``. Then, if ``wmts``, ``WMTSCapabilities.xml`` for everything in ``web_dir``.

    Parameters
    ----------
    stats : list of dict, optional
        PDG statistic configurations (``palette``, ``val_range``, ``z_config``,
        ``nodata_val``, ``nodata_color``); default pdgraster's two.
    z_range : (int, int), optional
        Only GeoTIFFs with zoom in this range.
    paths : list of paths, optional
        Only these GeoTIFFs (``<TMS>/<z>/<x>/<y>.tif`` paths).
    summary : None, False or path
        Where the per-zoom ranges for ``None`` in ``val_range`` come from: None —
        ``<geotiff_dir>/rasters_summary.csv`` if it exists, else a pass over the GeoTIFFs;
        a path — that CSV; False — none (each tile's own min / max, pdgraster's ``WebImage``
        fallback).
    wmts, base_url :
        Write the capabilities document; tile URLs start with ``base_url`` (default: the
        ``file://`` URL of ``web_dir``).
    retries : int
        Times a failed GeoTIFF is tried again (fault tolerance as in
        :func:`fastraster.rasterize_dir`: docs/reliability.md).
    keep_records : bool
        Keep every record in the report (default); ``False`` keeps only the failed ones and
        the counts per status (the ``webtiles`` command's choice), so that the parent's
        memory does not grow with the number of GeoTIFFs.

    Returns
    -------
    Report
        One record per GeoTIFF; ``outputs`` lists the PNGs written. A failing GeoTIFF never
        stops the run, which then ends with one
        :class:`~fastraster.io.records.RunFailures` warning.

    Raises
    ------
    ValueError
        Before any tile is written: a bad statistic or colour (named, with the key, the
        value and what is allowed), ``z_range`` or path.
    """
    report = web_tiles_run(geotiff_dir, web_dir, stats=stats, z_range=z_range, paths=paths,
                           summary=summary, n_jobs=n_jobs, backend=backend,
                           batch_size=batch_size, overwrite=overwrite, progress=progress,
                           tms=tms, wmts=wmts, base_url=base_url,
                           compress_level=compress_level, retries=retries,
                           keep_records=keep_records)
    report.warn_failures()
    return report


def _selected(files, z_range) -> LazyItems:
    """The GeoTIFFs of ``files`` with a tile (in ``z_range``), held as their positions in
    the (compact) listing: 8 bytes each."""
    at = np.fromiter((i for i, f in enumerate(files) if f.tile is not None and (
        z_range is None or z_range[0] <= f.tile[2] <= z_range[1])), dtype=np.int64)
    return LazyItems(at, lambda i: files[int(i)])


def _jobs(files, web_dir, names) -> LazyItems:
    """``(GeoTIFF, tms, tile, PNG paths)`` of each GeoTIFF, built when its task is sent."""
    return LazyItems(files, lambda f: (f.path, f.tms, f.tile, tuple(
        web_tile_path(web_dir, n, f.tms, f.tile) for n in names)))


def _report(files, records, counts, keep_records, run) -> Report:
    """The run's report: records in input order (kept ones), counts when not all are."""
    report = Report(records[f.path] for f in files if f.path in records)
    if not keep_records:
        report.counts, report.total = counts, sum(counts.values())
    annotate(report, [run])
    report.step = "webtiles"
    return report


def web_tiles_run(geotiff_dir, web_dir, *, stats=None, z_range=None, paths=None,
                  summary=None, n_jobs=None, backend="loky", batch_size=16, overwrite=False,
                  progress=True, tms=None, wmts=True, base_url=None,
                  compress_level=6, retries=1, keep_records=True) -> Report:
    """:func:`render_web_tiles` without its closing warning, for callers that make one
    warning of several steps (:class:`fastraster.RasterTiler`)."""
    t0 = time.perf_counter()
    if z_range is not None:
        z_range = check_z_range(z_range, tms)
    geotiff_dir, web_dir = os.fspath(geotiff_dir), os.fspath(web_dir)
    # Every setting checked before the GeoTIFFs are even listed; the ranges come later.
    options = WebTileOptions.create(web_dir=web_dir, stats=stats, overwrite=overwrite,
                                    compress_level=compress_level)
    if paths is None:
        files = find_tiles(geotiff_dir, ".tif", tms)
    else:
        files = [parse_tile_path(p, tms=tms) for p in paths]
        bad = [f for f in files if f.tile is None]
        if bad:
            raise ValueError(f"{bad[0].path}: {bad[0].problem}")
    files = _selected(files, z_range)
    if summary is None:
        csv_path = os.path.join(geotiff_dir, SUMMARY_CSV)
        ranges = zoom_ranges(csv_path) if os.path.exists(csv_path) else \
            ranges_from_geotiffs(files)
    elif summary is False:
        ranges = {}
    else:
        ranges = zoom_ranges(summary)
    options = dataclasses.replace(options, ranges=ranges)
    jobs = _jobs(files, web_dir, [s.name for s in options.stats])
    run = run_tasks(_render_job, jobs, (options,), batch_size=batch_size, n_jobs=n_jobs,
                    backend=backend, progress=progress, desc="webtiles", retries=retries,
                    describe=_describe_job, work_dir=web_dir,
                    rerun=_redo_job)  # checks the backend
    if jobs:
        probe_writable(web_dir)  # one clear error, not one per tile
    records = {}
    counts: dict[str, int] = {}
    try:
        for rec in run:
            if keep_records or rec["status"] == "error":
                records[rec["path"]] = rec
            counts[rec["status"]] = counts.get(rec["status"], 0) + 1
    except RunInterrupted as exc:
        exc.report = _report(files, records, counts, keep_records, run)
        raise
    report = _report(files, records, counts, keep_records, run)
    report.wmts = None
    if wmts and os.path.isdir(web_dir):
        from fastraster.render.wmts import scan, write_capabilities

        if scan(web_dir):
            report.wmts = write_capabilities(web_dir, base_url=base_url)
    report.wall_seconds = time.perf_counter() - t0
    return report
