"""``RasterTiler``: a drop-in for pdgraster's, driven by the same PDG configuration."""

from __future__ import annotations

import dataclasses
import functools
import os
from collections import namedtuple

from fastraster.io.config import read_config
from fastraster.io.records import locked_merge, summary_rows, write_events, write_summary
from fastraster.io.tilepaths import find_tiles, parse_tile_path, tile_path
from fastraster.model.grid import TileGrid
from fastraster.model.pyramid_math import parent_of
from fastraster.model.stats import DEFAULT_STATS, parse_stats
from fastraster.pipelines.options import PyramidOptions, RasterizeOptions
from fastraster.pipelines.pyramid import pyramid_levels
from fastraster.pipelines.staged import rasterize_one
from fastraster.pipelines.webtiles import render_web_tiles
from fastraster.render.ranges import update_ranges, zoom_ranges
from fastraster.render.wmts import write_capabilities

#: A tile, field-compatible with ``morecantile.Tile`` (which pdgraster returns).
Tile = namedtuple("Tile", ["x", "y", "z"])

#: The PDG configuration keys fastraster reads, with pdgraster's defaults.
CONFIG_DEFAULTS = {
    "dir_staged": "staged",
    "dir_geotiff": "geotiff",
    "dir_web_tiles": "web_tiles",
    "ext_staged": ".gpkg",
    "ext_web_tiles": ".png",
    "filename_rasters_summary": "rasters_summary.csv",
    "filename_rasterization_events": "rasterization_events.csv",
    "tms_id": "WGS1984Quad",
    "z_range": [0, 13],
    "tile_size": [256, 256],
    "statistics": list(DEFAULT_STATS),
    "deduplicate_at": None,
    "deduplicate_method": None,
}


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
        A PDG viz configuration. Read keys: ``dir_staged``, ``dir_geotiff``, ``ext_staged``,
        ``tms_id``, ``z_range``, ``tile_size``, ``statistics``, ``deduplicate_at``,
        ``deduplicate_method``, ``filename_rasters_summary``,
        ``filename_rasterization_events``; for raw scenes (:meth:`rasterize_inputs`) also
        ``dir_input``, ``ext_input``, ``dir_footprints``, ``ext_footprints``,
        ``simplify_tolerance``, ``input_crs`` and ``deduplicate_keep_rules`` /
        ``deduplicate_clip_to_footprint``; others are kept and ignored.
    dtype : str
        GeoTIFF sample type; float64 (pdgraster's) by default, so files match pdgraster's.

    Notes
    -----
    The tiler holds only plain data, so it pickles: send it with batches of paths to worker
    processes, as the PDG course notebook does. Summary and event rows of each call are
    merged into the configured CSVs under a file lock, so concurrent workers on one
    machine lose no rows.
    """

    def __init__(self, config, dtype: str = "float64"):
        config = read_config(config)
        merged = dict(CONFIG_DEFAULTS)
        merged.update({k: v for k, v in config.items() if v is not None or k not in merged})
        self.config = merged
        self.tiles = _TilePaths(merged)
        dedup_at = merged.get("deduplicate_at") or []
        if isinstance(dedup_at, str):
            dedup_at = [dedup_at]
        self.deduplicate = "raster" in dedup_at and merged.get("deduplicate_method") is not None
        self.dtype = dtype
        self.events: list[dict] = []
        self._options = RasterizeOptions.create(
            stats=merged["statistics"], tile_size=merged["tile_size"], dtype=dtype,
            overwrite=True, deduplicate=self.deduplicate)  # parses the statistics, once
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

        Like pdgraster, an error is logged as an event, not raised.
        """
        rec = self._rasterize(path, overwrite)
        self._record([rec])
        return Tile(*rec["tile"]) if rec["status"] != "error" else None

    def _rasterize(self, path, overwrite):
        f = parse_tile_path(path, tms=None)
        if f.tms is not None and f.tms != self.config["tms_id"]:
            f = parse_tile_path(path, tms=self.config["tms_id"])
        out = self.tiles.path_from_tile(f.tile, "geotiff") if f.tile else None
        return rasterize_one(f, out, self.options(overwrite))

    def rasterize_vectors(self, paths, make_parents=False, overwrite=True) -> list[Tile]:
        """Rasterize many staged files; return the tiles that succeeded.

        With ``make_parents`` the parents of those tiles are built too, down to the
        configured minimum zoom (:meth:`parent_geotiffs_from_children`). Unlike pdgraster
        the default is False, so batches sent to workers (the course notebook's pattern)
        leave the lower levels to one final call.
        """
        records = [self._rasterize(p, overwrite) for p in paths]
        self._record(records)
        tiles = [Tile(*r["tile"]) for r in records if r["status"] != "error"]
        if make_parents and tiles:
            self.parent_geotiffs_from_children(
                {Tile(*parent_of(t)) for t in tiles if t.z > 0}, overwrite=overwrite)
        return tiles

    def parent_geotiffs_from_children(self, tiles, recursive=True, overwrite=True,
                                      n_jobs=None) -> list[Tile]:
        """Build the GeoTIFFs of ``tiles`` (all of one zoom) from their children in
        ``dir_geotiff``, and, if ``recursive``, their parents down to ``z_range[0]``.

        Each band is reduced 2x2 by its statistic's ``resampling_method``; missing
        children count as empty (:func:`fastraster.model.pyramid_math.reduce_2x2`). Returns
        the tiles
        built or kept; failures are recorded as events, not raised.
        """
        tiles = {Tile(*t) for t in tiles}
        if not tiles:
            return []
        z_min = int(min(self.config["z_range"]))
        options = PyramidOptions(stats=self.stats, overwrite=bool(overwrite))
        records = pyramid_levels(self.config["dir_geotiff"], self.config["tms_id"], tiles,
                                 z_min, options, n_jobs=n_jobs, recursive=recursive)
        self._record(records)
        return [Tile(*r["tile"]) for r in records if r["status"] != "error"]

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

    def webtiles_from_geotiffs(self, geotiff_paths=None, update_ranges=True, overwrite=True,
                               n_jobs=None) -> list[Tile]:
        """Render one PNG per statistic of each GeoTIFF into ``dir_web_tiles``
        (``<stat>/<TMS>/<z>/<x>/<y>.png``), coloured as pdgraster does
        (:func:`fastraster.render_web_tiles`). With ``update_ranges`` the missing
        ``val_range`` ends are first filled per zoom from the rasters summary."""
        if update_ranges:
            self.update_ranges()
        if geotiff_paths is None:
            geotiff_paths = self.tiles.get_filenames_from_dir("geotiff")
        report = render_web_tiles(self.config["dir_geotiff"], self.config["dir_web_tiles"],
                                  stats=self.stats, paths=list(geotiff_paths),
                                  summary=False, n_jobs=n_jobs, overwrite=overwrite,
                                  progress=False, wmts=False,
                                  tms=self.config["tms_id"])
        self.events.extend(report)
        locked_merge(self.config["filename_rasterization_events"], report,
                     functools.partial(write_events, append=True))
        return [Tile(*r["tile"]) for r in report if r["status"] != "error"]

    def webtiles_from_all_geotiffs(self, update_ranges=True, overwrite=True,
                                   n_jobs=None) -> list[Tile]:
        """:meth:`webtiles_from_geotiffs` for every GeoTIFF in ``dir_geotiff``, then
        ``WMTSCapabilities.xml`` in ``dir_web_tiles``."""
        tiles = self.webtiles_from_geotiffs(None, update_ranges, overwrite, n_jobs)
        if tiles:
            write_capabilities(self.config["dir_web_tiles"])
        return tiles

    def rasterize_inputs(self, overwrite=True, n_jobs=None, backend="loky",
                         progress=False) -> list[Tile]:
        """PDG's staging and :meth:`rasterize_vectors` in one step, without staged files:
        the raw scenes of ``dir_input`` (``ext_input``) with their footprints
        (``dir_footprints``, ``ext_footprints``) to the GeoTIFFs of ``max(z_range)`` in
        ``dir_geotiff`` (:func:`fastraster.rasterize_sources`, with the rules of this
        configuration: ``simplify_tolerance``, ``input_crs``, ``deduplicate_*``,
        ``statistics``, ``tile_size``, ``tms_id``). Returns the tiles written or kept; scene
        and tile failures are recorded as events, not raised.
        """
        from fastraster.pipelines.source_options import PdgSourceRules
        from fastraster.pipelines.sources import rasterize_sources

        rules, dirs = PdgSourceRules.from_pdg_config(self.config, dtype=self.dtype)
        report = rasterize_sources(
            dirs.inputs, self.config["dir_geotiff"], rules=rules,
            footprints=dirs.footprints if rules.needs_footprints else None,
            n_jobs=n_jobs, backend=backend, overwrite=overwrite, progress=progress,
            summary=False)
        self._record(list(report.scenes) + list(report))
        return [Tile(*r["tile"]) for r in report if r["status"] != "error"]

    def rasterize_all(self, overwrite=True, n_jobs=None) -> None:
        """pdgraster's whole pipeline: every staged file to GeoTIFF, the lower zoom levels
        down to ``z_range[0]``, then web tiles for every GeoTIFF (and the WMTS document).

        When ``dir_staged`` holds no staged file and the configuration names a
        ``dir_input``, the GeoTIFFs come straight from the raw scenes
        (:meth:`rasterize_inputs`) instead: staging is skipped, the answers are its.
        """
        paths = self.tiles.get_filenames_from_dir("staged")
        if paths:
            self.rasterize_vectors(paths, make_parents=False, overwrite=overwrite)
        elif self.config.get("dir_input"):
            self.rasterize_inputs(overwrite=overwrite, n_jobs=n_jobs)
        else:
            raise ValueError(f"no staged files in {self.config['dir_staged']!r} (and no "
                             "dir_input of raw scenes in the configuration)")
        tiles = self.tiles.get_filenames_from_dir("geotiff", z=self.z)
        parents = {Tile(*parent_of(self.tiles.tile_from_path(p))) for p in tiles}
        if self.z > 0 and parents:
            self.parent_geotiffs_from_children(parents, overwrite=overwrite, n_jobs=n_jobs)
        self.webtiles_from_all_geotiffs(overwrite=overwrite, n_jobs=n_jobs)

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

