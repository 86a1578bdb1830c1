"""``RasterTiler``: a drop-in for pdgraster's, driven by the same PDG configuration."""

from __future__ import annotations

import fcntl
import functools
import json
import os
from collections import namedtuple

from fastraster.grid import TileGrid
from fastraster.pipeline import (
    _Settings,
    find_staged,
    output_path,
    parse_tile_path,
    rasterize_one,
    summary_rows,
    write_events,
    write_summary,
)
from fastraster.stats import DEFAULT_STATS, parse_stats

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
        files = find_staged(folder, ext=ext)
        return [f.path for f in files if z is None or (f.tile and f.tile[2] == int(z))]

    def tile_from_path(self, path) -> Tile:
        f = parse_tile_path(path)
        if f.tile is None:
            raise ValueError(f"{path}: {f.problem}")
        return Tile(*f.tile)

    def path_from_tile(self, tile, base_dir: str) -> str:
        folder, ext = self._base(base_dir)
        return output_path(folder, self._config["tms_id"], tuple(tile), ext)

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
        ``filename_rasterization_events``; others are kept and ignored.
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
        if isinstance(config, (str, os.PathLike)):
            with open(config) as fh:
                config = json.load(fh)
        if not isinstance(config, dict):
            raise TypeError("config must be a dict or a path to a JSON file")
        merged = dict(CONFIG_DEFAULTS)
        merged.update({k: v for k, v in config.items() if v is not None or k not in merged})
        self.config = merged
        self.stats = parse_stats(merged["statistics"])
        self.tiles = _TilePaths(merged)
        dedup_at = merged.get("deduplicate_at") or []
        if isinstance(dedup_at, str):
            dedup_at = [dedup_at]
        self.deduplicate = "raster" in dedup_at and merged.get("deduplicate_method") is not None
        self.dtype = dtype
        self.events: list[dict] = []

    @property
    def z(self) -> int:
        """The zoom of the staged tiles: the configured maximum."""
        return int(max(self.config["z_range"]))

    def _settings(self, overwrite=True) -> _Settings:
        return _Settings(self.stats, tuple(self.config["tile_size"]), self.dtype, overwrite,
                         self.deduplicate, "repair", False)

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
        return rasterize_one(f, out, self._settings(overwrite))

    def rasterize_vectors(self, paths, make_parents=False, overwrite=True) -> list[Tile]:
        """Rasterize many staged files; return the tiles that succeeded.

        ``make_parents`` (lower zoom levels) is not built yet; passing True raises.
        """
        if make_parents:
            raise NotImplementedError("parent (lower-zoom) GeoTIFFs are not built yet; "
                                      "call with make_parents=False")
        records = [self._rasterize(p, overwrite) for p in paths]
        self._record(records)
        return [Tile(*r["tile"]) for r in records if r["status"] != "error"]

    def _record(self, records):
        self.events.extend(records)
        _locked_merge(self.config["filename_rasters_summary"], records, write_summary)
        _locked_merge(self.config["filename_rasterization_events"], records,
                      functools.partial(write_events, append=True))

    def get_errors(self) -> list[dict]:
        """Events of this tiler that failed."""
        return [r for r in self.events if r["status"] == "error"]

    def summary_rows(self) -> list[list]:
        return summary_rows(self.events)


def _locked_merge(path, records, writer):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f".{os.path.basename(path)}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            writer(path, records)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
