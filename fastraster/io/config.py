"""The one reader of PDG viz configurations (a dict, or a JSON file), and their validation.

A PDG configuration is one dict shared by every step of PDG's workflow (staging, rasterizing,
3D tiles, the workflow scripts). :func:`parse_config` checks every key fastraster reads
(everything but the colours, which :mod:`fastraster.render` checks; see
:func:`fastraster.pipelines.options.load_config`), accepts and ignores the keys only PDG's
other steps read, as PDG's own ``ConfigManager`` does, and lists the keys nobody knows (a typo
such as ``statistic``), which the caller reports in one warning.
"""

from __future__ import annotations

import json
import numbers
import os
import re
from dataclasses import dataclass, field

from fastraster.io.staged import CENTROID_COLUMNS, DUPLICATED_COLUMN
from fastraster.io.tilepaths import is_tms
from fastraster.model.grid import QUAD_TMS, max_zoom, tile_shape
from fastraster.model.stats import DEFAULT_STATS, Stat, parse_stats, unknown_stat_keys


class ConfigWarning(UserWarning):
    """A configuration key that no PDG component knows (ignored), or another doubtful but
    usable setting."""


#: The keys fastraster reads, with pdgraster's defaults (viz-staging's ``ConfigManager``).
CONFIG_DEFAULTS = {
    "dir_staged": "staged",
    "dir_geotiff": "geotiff",
    "dir_web_tiles": "web_tiles",
    "ext_staged": ".gpkg",
    "ext_web_tiles": ".png",
    "filename_rasters_summary": "rasters_summary.csv",
    "filename_rasterization_events": "rasterization_events.csv",
    "tms_id": "WorldCRS84Quad",  # pdgstaging ConfigManager.defaults
    "z_range": [0, 13],
    "tile_size": [256, 256],
    "statistics": list(DEFAULT_STATS),
    "deduplicate_at": None,
    "deduplicate_method": None,
    "prop_centroid_x": CENTROID_COLUMNS[0],
    "prop_centroid_y": CENTROID_COLUMNS[1],
    "prop_duplicated": DUPLICATED_COLUMN,
}

#: pdgstaging 0.9's ConfigManager defaults of the keys only the raw-scene path
#: (:meth:`fastraster.PdgSourceRules.from_pdg_config`) reads; a key set to None keeps None
#: there (``simplify_tolerance: null`` skips simplification, as in PDG).
STAGING_DEFAULTS = {
    "dir_input": "input",
    "ext_input": ".shp",
    "dir_footprints": "footprints",
    "ext_footprints": ".gpkg",
    "input_crs": None,
    "simplify_tolerance": 0.0001,
    "deduplicate_keep_rules": [],
    "deduplicate_clip_to_footprint": None,
}

#: Keys only PDG's other steps read: accepted and ignored. From viz-staging's
#: ``ConfigManager.defaults`` (staging, footprints, deduplication, the staging columns other
#: than the centroid and duplicate flags), viz-3dtiles (``dir_3dtiles``, ``geometricError``,
#: ``z_coord``) and viz-workflow's production configurations (``dir_output``, ``version``;
#: their node-local and shared copies of folders match :data:`PDG_ONLY_PATTERN`).
PDG_ONLY_KEYS = frozenset({
    "dir_input", "dir_footprints", "dir_3dtiles", "dir_output",
    "ext_input", "ext_footprints",
    "filename_staging_summary", "filename_config",
    "prop_area", "prop_tile", "prop_centroid_tile", "prop_filename", "prop_identifier",
    "prop_centroid_within_tile",
    "input_crs", "simplify_tolerance", "tile_path_structure", "version",
    "geometricError", "z_coord",
    "deduplicate_keep_rules", "deduplicate_overlap_tolerance", "deduplicate_overlap_both",
    "deduplicate_centroid_tolerance", "deduplicate_distance_crs",
    "deduplicate_clip_to_footprint", "deduplicate_clip_method",
})
#: viz-workflow's copies of folders: ``dir_staged_remote``, ``dir_geotiff_local``,
#: ``dir_staged_remote_merged``, ``dir_footprints_local``, ...
PDG_ONLY_PATTERN = re.compile(r"^dir_[a-z0-9_]+_(remote|local)(_merged)?$")

DEDUPLICATE_AT = ("staging", "raster", "3dtiles")
DEDUPLICATE_METHODS = ("neighbor", "footprints")
WEB_TILE_EXTENSIONS = (".png",)


def read_config(config) -> dict:
    """A PDG configuration as a dict: ``config`` itself (a dict) or the JSON file it names.

    Raises
    ------
    ValueError
        If the file is not JSON or does not hold an object (the message names the file).
    TypeError
        If ``config`` is neither a dict nor a path.
    """
    if isinstance(config, dict):
        return config
    if not isinstance(config, (str, os.PathLike)):
        raise TypeError("config must be a dict or a path to a JSON file")
    path = os.fspath(config)
    with open(path) as fh:
        try:
            data = json.load(fh)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not a JSON configuration: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a configuration must be a JSON object, not "
                         f"{type(data).__name__}")
    return data


def unknown_keys(config: dict) -> list[str]:
    """The top-level keys that neither fastraster nor any PDG component reads."""
    return [k for k in config
            if k not in CONFIG_DEFAULTS and k not in PDG_ONLY_KEYS
            and not (isinstance(k, str) and PDG_ONLY_PATTERN.match(k))]


@dataclass(frozen=True)
class PdgConfig:
    """A validated PDG configuration: what fastraster reads from it, typed.

    Built by :func:`parse_config`; ``config`` is the dict with pdgraster's defaults filled in
    (the tiler keeps it as ``RasterTiler.config``).
    """

    config: dict
    stats: tuple[Stat, ...]
    tms_id: str
    z_range: tuple[int, int]
    tile_size: tuple[int, int]
    deduplicate: bool
    centroid_columns: tuple[str, str]
    duplicated_column: str
    ext_staged: str
    #: PDG keys present that only PDG's other steps read (accepted, ignored).
    ignored: tuple[str, ...] = ()
    #: Keys no PDG component knows, top-level and per statistic (ignored; to warn about).
    unknown: tuple[str, ...] = field(default=())


def _fail(key, value, problem, allowed):
    raise ValueError(f"config: {key} {value!r} {problem}; allowed: {allowed}")


def _check_path(key, value) -> None:
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        _fail(key, value, "is not a path", "a non-empty path string")


#: The deepest zoom accepted when no tile matrix set is named (morecantile's deepest is 24).
ANY_MAX_ZOOM = 30


def _check_z_range(value, tms: str | None) -> tuple[int, int]:
    top = max_zoom(tms) if tms else ANY_MAX_ZOOM
    of = f"the deepest zoom of {tms}" if tms else "the deepest zoom accepted"
    allowed = (f"[min_z, max_z], two ints with 0 <= min_z <= max_z <= {top} ({of}), "
               f"e.g. [0, 15]")
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value):
        _fail("z_range", value, "is not two ints", allowed)
    lo, hi = (int(v) for v in value)
    if not 0 <= lo <= hi <= top:
        _fail("z_range", value, "is out of order or out of range", allowed)
    return lo, hi


def check_z_range(value, tms: str | None = None) -> tuple[int, int]:
    """``(min_z, max_z)`` of a ``z_range``: two ints, ``0 <= min_z <= max_z <=`` the deepest
    zoom of ``tms`` (23 for the quad grids; 30 when ``tms`` is None).

    Raises
    ------
    ValueError
        Naming ``z_range``, the value and what is allowed.
    """
    return _check_z_range(value, tms)


def _check_tms(value) -> str:
    if not isinstance(value, str) or not is_tms(value):
        import morecantile

        names = sorted(set(QUAD_TMS) | set(morecantile.tms.list()))
        _fail("tms_id", value, "is not a tile matrix set", f"one of {names}")
    return value


def _check_tile_size(value, z_range) -> tuple[int, int]:
    try:
        size = tile_shape(value)
    except ValueError as exc:
        raise ValueError(f"config: {exc}") from None
    if z_range[0] < z_range[1] and (size[0] % 2 or size[1] % 2):
        _fail("tile_size", value, f"has an odd side, but z_range {list(z_range)} asks for "
              f"lower zoom levels, each parent pixel a 2 x 2 block of child pixels",
              "even sizes (e.g. 256 or [256, 256]) when z_range spans more than one zoom")
    return size


def _check_deduplicate(at, method) -> bool:
    at_list = [at] if isinstance(at, str) else at
    if at_list is not None and (not isinstance(at_list, (list, tuple)) or
                                not all(a in DEDUPLICATE_AT for a in at_list)):
        _fail("deduplicate_at", at, "is not a list of deduplication steps",
              f"null (None), one of {DEDUPLICATE_AT} or a list of them, e.g. [\"raster\"]")
    if method is not None and method not in DEDUPLICATE_METHODS:
        _fail("deduplicate_method", method, "is unknown",
              f"null (None) or one of {DEDUPLICATE_METHODS}")
    # pdgraster drops the flagged rows when "raster" is listed and a method is set.
    return bool(at_list) and "raster" in at_list and method is not None


def _check_column(key, value) -> str:
    if not isinstance(value, str) or not value.strip():
        _fail(key, value, "is not a column name", "a non-empty string such as "
              f"{CONFIG_DEFAULTS[key]!r}")
    return value


def _check_ext(key, value, allowed=None) -> str:
    if not isinstance(value, str) or not value.startswith(".") or len(value) < 2:
        _fail(key, value, "is not a file extension", "a string such as '.gpkg'")
    if allowed and value.lower() not in allowed:
        _fail(key, value, "is not written by fastraster", f"one of {allowed}")
    return value


def parse_config(config) -> PdgConfig:
    """Validate a whole PDG configuration (but its colours) and return it typed.

    Checked: ``statistics`` (:func:`~fastraster.model.stats.parse_stats`: unknown
    ``weight_by`` / ``property`` / ``aggregation_method`` / ``resampling_method``, a
    ``val_range``, ``z_config[z]["val_range"]`` or ``nodata_val`` of the wrong kind,
    repeated names), ``tms_id``, ``z_range``, ``tile_size`` (even when lower zooms are to be
    built), ``deduplicate_at`` / ``deduplicate_method``, the ``dir_*`` / ``filename_*`` paths,
    ``ext_staged`` / ``ext_web_tiles`` and the ``prop_*`` columns fastraster reads. A key set
    to None takes its default, as in pdgraster.

    Parameters
    ----------
    config : dict or path to a JSON file

    Returns
    -------
    PdgConfig

    Raises
    ------
    ValueError
        Naming the statistic (where one applies), the key, the value and what is allowed.
    """
    given = read_config(config)
    merged = dict(CONFIG_DEFAULTS)
    merged.update({k: v for k, v in given.items() if v is not None or k not in merged})
    for key in ("dir_staged", "dir_geotiff", "dir_web_tiles", "filename_rasters_summary",
                "filename_rasterization_events"):
        _check_path(key, merged[key])
    if not isinstance(merged["statistics"], (list, tuple)):
        _fail("statistics", merged["statistics"], "is not a list of statistics",
              "a list of dicts such as {\"name\": \"coverage\", \"weight_by\": \"area\", "
              "\"property\": \"area_per_pixel_area\"}")
    stats = parse_stats(merged["statistics"])
    tms = _check_tms(merged["tms_id"])
    z_range = _check_z_range(merged["z_range"], tms)
    tile_size = _check_tile_size(merged["tile_size"], z_range)
    dedup = _check_deduplicate(merged["deduplicate_at"], merged["deduplicate_method"])
    centroids = (_check_column("prop_centroid_x", merged["prop_centroid_x"]),
                 _check_column("prop_centroid_y", merged["prop_centroid_y"]))
    duplicated = _check_column("prop_duplicated", merged["prop_duplicated"])
    ext = _check_ext("ext_staged", merged["ext_staged"])
    _check_ext("ext_web_tiles", merged["ext_web_tiles"], WEB_TILE_EXTENSIONS)
    unknown = [f"{k!r}" for k in unknown_keys(given)] + unknown_stat_keys(
        merged["statistics"])
    ignored = tuple(k for k in given if k not in CONFIG_DEFAULTS and k not in unknown_keys(
        {k: None}))
    return PdgConfig(config=merged, stats=stats, tms_id=tms, z_range=z_range,
                     tile_size=tile_size, deduplicate=dedup, centroid_columns=centroids,
                     duplicated_column=duplicated, ext_staged=ext, ignored=ignored,
                     unknown=tuple(unknown))
