"""``RasterTiler``: a drop-in for pdgraster's, driven by the same PDG configuration."""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import time
import warnings
from collections import namedtuple

from fastraster.execution.supervisor import RunInterrupted
from fastraster.io.config import (
    CONFIG_DEFAULTS,  # noqa: F401  (re-exported, as before)
    parse_config,
)
from fastraster.io.records import (
    Report,
    RunFailures,
    locked_merge,
    summary_rows,
    warn_failures,
    write_events,
    write_summary,
)
from fastraster.io.tilepaths import TileFile, find_tiles, parse_tile_path, tile_path
from fastraster.model.grid import TileGrid
from fastraster.model.pyramid_math import parent_of
from fastraster.model.stats import parse_stats
from fastraster.pipelines.options import PyramidOptions, RasterizeOptions, load_config
from fastraster.pipelines.pyramid import pyramid_levels
from fastraster.pipelines.staged import rasterize_one
from fastraster.pipelines.webtiles import web_tiles_run
from fastraster.render.ranges import update_ranges, zoom_ranges
from fastraster.render.wmts import write_capabilities

logger = logging.getLogger(__name__)

#: A tile, field-compatible with ``morecantile.Tile`` (which pdgraster returns).
Tile = namedtuple("Tile", ["x", "y", "z"])


class TileReport(Report):
    """What a :class:`RasterTiler` call returns: the tiles it made or kept, as a list of
    :class:`Tile` (pdgraster's return value), and the report of every file it tried.

    ``errors``, ``n(status)`` and ``summary_line()`` cover the records of all the call's
    steps (``steps``: one :class:`~fastraster.io.records.Report` per step, ``step`` naming
    it: "rasterize", "pyramid" or "webtiles"); ``records`` lists them in order. What the
    steps survived (retries, worker deaths, ...) is summed over them.
    """

    def __init__(self, tiles=(), steps=()):
        super().__init__(tiles)
        self.steps = [s for s in steps if s is not None]
        self.total = sum(len(s) if s.total is None else s.total for s in self.steps)
        self.wall_seconds = sum(s.wall_seconds for s in self.steps)
        for name in ("retried", "worker_deaths", "litter_removed", "not_attempted"):
            setattr(self, name, sum(getattr(s, name) for s in self.steps))
        for name in ("stopped", "csv_error"):
            setattr(self, name, next((getattr(s, name) for s in self.steps
                                      if getattr(s, name)), None))

    @property
    def records(self) -> list[dict]:
        return [r for s in self.steps for r in s]

    def n(self, status: str) -> int:
        return sum(s.n(status) for s in self.steps)

    @property
    def errors(self) -> list[dict]:
        return [r for s in self.steps for r in s.errors]

    def warn_failures(self, stacklevel: int = 3) -> None:
        """One :class:`~fastraster.io.records.RunFailures` warning over every step."""
        warn_failures(self.steps, stacklevel=stacklevel + 1)


def _tiles(report: Report) -> list[Tile]:
    # (Scene records of rasterize_inputs name no tile.)
    return [Tile(*r["tile"]) for r in report if r["status"] != "error" and r["tile"]]


class _TilePaths:
    """The part of pdgstaging's ``TilePathManager`` that raster workflows call."""

    def __init__(self, config: dict):
        self._config = config

    def _base(self, base_dir: str) -> tuple[str, str]:
        c = self._config
        table = {"staged": (c["dir_staged"], c["ext_staged"]),
                 "geotiff": (c["dir_geotiff"], ".tif"),
                 "web_tiles": (c["dir_web_tiles"], c["ext_web_tiles"])}
        if base_dir not in table:
            raise ValueError(f"base_dir must be one of {sorted(table)}, not {base_dir!r}")
        return table[base_dir]

    def get_filenames_from_dir(self, base_dir: str, z=None) -> list[str]:
        """Paths of all files of one kind (``"staged"``, ``"geotiff"``, ``"web_tiles"``)."""
        folder, ext = self._base(base_dir)
        if not os.path.isdir(folder):
            return []
        files = find_tiles(folder, ext)
        return [f.path for f in files if z is None or (f.tile and f.tile[2] == int(z))]

    def tile_from_path(self, path) -> Tile:
        f = parse_tile_path(path)
        if f.tile is None:
            raise ValueError(f"{path}: {f.problem}")
        return Tile(*f.tile)

    def path_from_tile(self, tile, base_dir: str) -> str:
        folder, ext = self._base(base_dir)
        return tile_path(folder, self._config["tms_id"], tuple(tile), ext)

    def get_bounding_box(self, tile) -> dict:
        g = TileGrid.from_tile(tuple(tile), self._config["tms_id"])
        return {"left": g.left, "right": g.right, "bottom": g.bottom, "top": g.top}


class RasterTiler:
    """Rasterize staged tiles as pdgraster's ``RasterTiler`` does, faster and exactly.

    Parameters
    ----------
    config : dict or path to a JSON file
        A PDG viz configuration, validated whole before anything is written
        (:func:`fastraster.pipelines.options.load_config`). Read keys: ``dir_staged``,
        ``dir_geotiff``, ``dir_web_tiles``, ``ext_staged``, ``ext_web_tiles``, ``tms_id``,
        ``z_range``, ``tile_size``, ``statistics``, ``deduplicate_at``,
        ``deduplicate_method``, ``prop_centroid_x``, ``prop_centroid_y``,
        ``prop_duplicated``, ``filename_rasters_summary``,
        ``filename_rasterization_events``; for raw scenes (:meth:`rasterize_inputs`) also
        ``dir_input``, ``ext_input``, ``dir_footprints``, ``ext_footprints``,
        ``simplify_tolerance``, ``input_crs``, ``deduplicate_keep_rules`` and
        ``deduplicate_clip_to_footprint``; the keys only PDG's other steps read are
        accepted and ignored; a key no PDG component knows gets one warning.
    dtype : str
        GeoTIFF sample type; float64 (pdgraster's) by default, so files match pdgraster's.
    retries : int
        Times a failed tile is tried again before it is recorded as an error (in this
        process for :meth:`rasterize_vectors`, which runs here; in fresh workers for the
        lower zoom levels and web tiles).

    Raises
    ------
    ValueError
        For a bad configuration: the message names the statistic (where one applies), the
        key, the value and what is allowed.

    Notes
    -----
    The tiler holds only plain data, so it pickles: send it with batches of paths to worker
    processes, as the PDG course notebook does. Summary and event rows of each call are
    merged into the configured CSVs under a file lock, so concurrent workers on one
    machine lose no rows.

    A failing file never stops a call: the call returns a :class:`TileReport` (the list of
    tiles pdgraster returns, with ``errors``) and ends with one
    :class:`~fastraster.io.records.RunFailures` warning naming how many files failed, in
    which step, and the first message.
    """

    def __init__(self, config, dtype: str = "float64", retries: int = 1):
        pdg = load_config(config)
        self.config = pdg.config
        self.tiles = _TilePaths(self.config)
        self.deduplicate = pdg.deduplicate
        self.dtype = dtype
        self.retries = max(int(retries), 0)
        self.events: list[dict] = []
        self._options = RasterizeOptions.create(
            stats=pdg.stats, tile_size=pdg.tile_size, dtype=dtype, overwrite=True,
            deduplicate=pdg.deduplicate, centroid_columns=pdg.centroid_columns,
            duplicated_column=pdg.duplicated_column)
        self.stats = self._options.stats

    @property
    def z(self) -> int:
        """The zoom of the staged tiles: the configured maximum."""
        return int(max(self.config["z_range"]))

    def options(self, overwrite=True) -> RasterizeOptions:
        """The :class:`~fastraster.RasterizeOptions` of this configuration."""
        return dataclasses.replace(self._options, stats=self.stats, overwrite=bool(overwrite))

    def rasterize_vector(self, path, overwrite=True):
        """Rasterize one staged file into ``dir_geotiff``; return its Tile, or None on error.

        Like pdgraster, an error is logged (``logging``, logger ``fastraster.compat.
        pdgraster``) and recorded as an event, not raised.
        """
        rec = self._retry([self._rasterize(path, overwrite)], overwrite)[0]
        self._record([rec])
        if rec["status"] == "error":
            logger.error("rasterize_vector: %s", rec["error"])
            return None
        return Tile(*rec["tile"])

    def _retry(self, records, overwrite):
        """Records with failed files tried again, up to ``retries`` times (``attempts``)."""
        for rec in records:
            rec["attempts"] = 1
        for attempt in range(2, self.retries + 2):
            failed = [i for i, r in enumerate(records) if r["status"] == "error"]
            for i in failed:
                records[i] = self._rasterize(records[i]["path"], overwrite)
                records[i]["attempts"] = attempt
        return records

    def _rasterize(self, path, overwrite):
        f = parse_tile_path(path, tms=None)
        if f.tms is not None and f.tms != self.config["tms_id"]:
            f = parse_tile_path(path, tms=self.config["tms_id"])
        if f.tile is not None and f.tile[2] != self.z:
            # pdgraster's rule: staged tiles are at the configured maximum zoom.
            f = TileFile(f.path, f.tms, None, f"a z{f.tile[2]} tile, but the configuration's "
                         f"z_range {list(self.config['z_range'])} puts staged tiles at "
                         f"z{self.z}; set z_range to [min_z, {f.tile[2]}]")
        out = self.tiles.path_from_tile(f.tile, "geotiff") if f.tile else None
        return rasterize_one(f, out, self.options(overwrite))

    def _rasterize_step(self, paths, overwrite) -> Report:
        t0 = time.perf_counter()
        report = Report(self._retry([self._rasterize(p, overwrite) for p in paths], overwrite))
        self._record(report)
        return self._finish(report, "rasterize", t0)

    def _finish(self, report: Report, step: str, t0: float) -> Report:
        report.step, report.wall_seconds = step, time.perf_counter() - t0
        report.events_csv = self.config["filename_rasterization_events"]
        return report

    def rasterize_vectors(self, paths, make_parents=False, overwrite=True) -> TileReport:
        """Rasterize many staged files; return the tiles that succeeded (a
        :class:`TileReport`: a list of Tile with ``errors``).

        With ``make_parents`` the parents of those tiles are built too, down to the
        configured minimum zoom (:meth:`parent_geotiffs_from_children`). Unlike pdgraster
        the default is False, so batches sent to workers (the course notebook's pattern)
        leave the lower levels to one final call. Ends with one
        :class:`~fastraster.io.records.RunFailures` warning if any file failed.
        """
        report = self._rasterize_step(paths, overwrite)
        tiles = _tiles(report)
        parents = None
        if make_parents and tiles:
            parents = self._pyramid_step({Tile(*parent_of(t)) for t in tiles if t.z > 0},
                                         True, overwrite, None)
        result = TileReport(tiles, [report, parents])
        result.warn_failures()
        return result

    def _pyramid_step(self, tiles, recursive, overwrite, n_jobs) -> Report | None:
        tiles = {Tile(*t) for t in tiles}
        if not tiles:
            return None
        t0 = time.perf_counter()
        z_min = int(min(self.config["z_range"]))
        options = PyramidOptions(stats=self.stats, overwrite=bool(overwrite))
        report = Report(pyramid_levels(self.config["dir_geotiff"], self.config["tms_id"],
                                       tiles, z_min, options, n_jobs=n_jobs,
                                       recursive=recursive, retries=self.retries))
        self._record(report)
        return self._finish(report, "pyramid", t0)

    def parent_geotiffs_from_children(self, tiles, recursive=True, overwrite=True,
                                      n_jobs=None) -> TileReport:
        """Build the GeoTIFFs of ``tiles`` (all of one zoom) from their children in
        ``dir_geotiff``, and, if ``recursive``, their parents down to ``z_range[0]``.

        Each band is reduced 2x2 by its statistic's ``resampling_method``; missing
        children count as empty (:func:`fastraster.model.pyramid_math.reduce_2x2`). Returns
        the tiles built or kept (a :class:`TileReport`); failures are recorded as events,
        not raised, and end the call with one :class:`~fastraster.io.records.RunFailures`
        warning.
        """
        report = self._pyramid_step(tiles, recursive, overwrite, n_jobs)
        result = TileReport(_tiles(report) if report is not None else [], [report])
        result.warn_failures()
        return result

    def get_z_ranges(self) -> dict:
        """``{stat: {z: (min, max)}}`` of the rasters summary written so far."""
        path = self.config["filename_rasters_summary"]
        return zoom_ranges(path) if os.path.exists(path) else {}

    def update_ranges(self) -> None:
        """Fill missing ``val_range`` ends per zoom from the rasters summary, as pdgraster's
        ``update_ranges`` does: where neither ``z_config[z]["val_range"]`` nor (without
        one) the general ``val_range`` sets an end, it becomes the run's minimum / maximum
        at ``z``, stored in ``z_config[z]`` (int keys; string keys from JSON are accepted)."""
        stats = update_ranges(self.config["statistics"], self.get_z_ranges())
        self.config["statistics"] = stats
        self.stats = parse_stats(stats)

    def _webtiles_step(self, geotiff_paths, update_ranges, overwrite, n_jobs) -> Report:
        t0 = time.perf_counter()
        if update_ranges:
            self.update_ranges()
        if geotiff_paths is None:
            geotiff_paths = self.tiles.get_filenames_from_dir("geotiff")
        report = web_tiles_run(self.config["dir_geotiff"], self.config["dir_web_tiles"],
                               stats=self.stats, paths=list(geotiff_paths),
                               summary=False, n_jobs=n_jobs, overwrite=overwrite,
                               progress=False, wmts=False, tms=self.config["tms_id"],
                               retries=self.retries)
        self.events.extend(report)
        locked_merge(self.config["filename_rasterization_events"], report,
                     functools.partial(write_events, append=True))
        return self._finish(report, "webtiles", t0)

    def webtiles_from_geotiffs(self, geotiff_paths=None, update_ranges=True, overwrite=True,
                               n_jobs=None) -> TileReport:
        """Render one PNG per statistic of each GeoTIFF into ``dir_web_tiles``
        (``<stat>/<TMS>/<z>/<x>/<y>.png``), coloured as pdgraster does
        (:func:`fastraster.render_web_tiles`). With ``update_ranges`` the missing
        ``val_range`` ends are first filled per zoom from the rasters summary. Returns the
        tiles rendered or kept (a :class:`TileReport`); ends with one
        :class:`~fastraster.io.records.RunFailures` warning if any GeoTIFF failed."""
        report = self._webtiles_step(geotiff_paths, update_ranges, overwrite, n_jobs)
        result = TileReport(_tiles(report), [report])
        result.warn_failures()
        return result

    def webtiles_from_all_geotiffs(self, update_ranges=True, overwrite=True,
                                   n_jobs=None) -> TileReport:
        """:meth:`webtiles_from_geotiffs` for every GeoTIFF in ``dir_geotiff``, then
        ``WMTSCapabilities.xml`` in ``dir_web_tiles``."""
        report = self._all_webtiles_step(update_ranges, overwrite, n_jobs)
        result = TileReport(_tiles(report), [report])
        result.warn_failures()
        return result

    def _all_webtiles_step(self, update_ranges, overwrite, n_jobs) -> Report:
        report = self._webtiles_step(None, update_ranges, overwrite, n_jobs)
        if _tiles(report):
            write_capabilities(self.config["dir_web_tiles"])
        return report

    def rasterize_inputs(self, overwrite=True, n_jobs=None, backend="loky",
                         progress=False) -> TileReport:
        """PDG's staging and :meth:`rasterize_vectors` in one step, without staged files:
        the raw scenes of ``dir_input`` (``ext_input``) with their footprints
        (``dir_footprints``, ``ext_footprints``) to the GeoTIFFs of ``max(z_range)`` in
        ``dir_geotiff`` (:func:`fastraster.rasterize_sources`, with the rules of this
        configuration: ``simplify_tolerance``, ``input_crs``, ``deduplicate_*``,
        ``statistics``, ``tile_size``, ``tms_id``).

        Returns
        -------
        TileReport
            The tiles written or kept, with the scene and tile records (``steps``); a
            failing scene or tile is recorded as an event, never raised, and the call ends
            with one :class:`~fastraster.io.records.RunFailures` warning if any failed.
        """
        report = self._inputs_step(overwrite, n_jobs, backend, progress)
        result = TileReport(_tiles(report), [report])
        result.warn_failures()
        return result

    def _inputs_step(self, overwrite, n_jobs, backend="loky", progress=False) -> Report:
        from fastraster.pipelines.source_options import PdgSourceRules
        from fastraster.pipelines.sources import rasterize_sources

        t0 = time.perf_counter()
        # (validated when the tiler was made; parse_config again: the config may have been
        # changed since, and it warns nothing a second time)
        rules, dirs = PdgSourceRules.from_pdg_config(parse_config(self.config),
                                                     dtype=self.dtype)
        with warnings.catch_warnings():  # the tiler warns once, over all its steps
            warnings.simplefilter("ignore", RunFailures)
            try:
                run = rasterize_sources(
                    dirs.inputs, self.config["dir_geotiff"], rules=rules,
                    footprints=dirs.footprints if rules.needs_footprints else None,
                    n_jobs=n_jobs, backend=backend, overwrite=overwrite,
                    progress=progress, summary=False, retries=self.retries)
            except RunInterrupted as exc:  # the CSVs get what finished
                if exc.report is not None:
                    self._record(Report(list(exc.report.scenes) + list(exc.report)))
                raise
        report = Report(list(run.scenes) + list(run))  # scene records have no tile
        for name in ("retried", "worker_deaths", "litter_removed", "not_attempted",
                     "stopped"):
            setattr(report, name, getattr(run, name))
        self._record(report)
        return self._finish(report, "rasterize", t0)

    def rasterize_all(self, overwrite=True, n_jobs=None) -> TileReport:
        """pdgraster's whole pipeline: every staged file to GeoTIFF, the lower zoom levels
        down to ``z_range[0]``, then web tiles for every GeoTIFF (and the WMTS document).

        When ``dir_staged`` holds no staged file and the configuration names a
        ``dir_input``, the max-zoom GeoTIFFs come straight from the raw scenes
        (:meth:`rasterize_inputs`): staging is skipped, its answers are kept.

        Returns
        -------
        TileReport
            The GeoTIFF tiles made or kept (staged zoom and parents), with the records of
            the three steps (``steps``) and their ``errors``. A failing file never stops
            the run, which ends with one :class:`~fastraster.io.records.RunFailures`
            warning over all steps.

        Raises
        ------
        ValueError
            If ``dir_staged`` holds no staged file and there is no ``dir_input`` (before
            anything is written).
        """
        paths = self.tiles.get_filenames_from_dir("staged")
        if paths:
            rasterized = self._rasterize_step(paths, overwrite)
        elif self.config.get("dir_input"):
            rasterized = self._inputs_step(overwrite, n_jobs)
        else:
            raise ValueError(f"no staged files ({self.config['ext_staged']}) in "
                             f"{self.config['dir_staged']!r}, and no dir_input of raw "
                             "scenes in the configuration")
        tiles = self.tiles.get_filenames_from_dir("geotiff", z=self.z)
        parents = {Tile(*parent_of(self.tiles.tile_from_path(p))) for p in tiles}
        pyramid = None
        if self.z > int(min(self.config["z_range"])) and parents:
            pyramid = self._pyramid_step(parents, True, overwrite, n_jobs)
        web = self._all_webtiles_step(True, overwrite, n_jobs)
        made = _tiles(rasterized) + (_tiles(pyramid) if pyramid is not None else [])
        result = TileReport(made, [rasterized, pyramid, web])
        result.warn_failures()
        return result

    def _record(self, records):
        self.events.extend(records)
        locked_merge(self.config["filename_rasters_summary"], records, write_summary)
        locked_merge(self.config["filename_rasterization_events"], records,
                     functools.partial(write_events, append=True))

    def get_errors(self) -> list[dict]:
        """Events of this tiler that failed."""
        return [r for r in self.events if r["status"] == "error"]

    def summary_rows(self) -> list[list]:
        return summary_rows(self.events)
