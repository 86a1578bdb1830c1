"""The settings of :func:`fastraster.rasterize_sources`: PDG's staging rules as one typed
options object, parsed and validated once where the user's input enters (beside
:mod:`fastraster.pipelines.options`, which holds the staged pipelines' settings).

:class:`PdgSourceRules` holds every choice that changes the rasters made from raw scenes
(SEMANTICS §1-§4 of ``pdg-staging-example``): zoom, tile matrix set, statistics, footprint
keep rules, clip-to-footprint, simplification tolerance and the CRS override. Workers receive
it as plain, picklable data. :meth:`PdgSourceRules.from_pdg_config` reads a PDG viz
configuration (``dir_input``, ``ext_input``, ``dir_footprints``, ``ext_footprints``,
``simplify_tolerance``, ``input_crs``, ``deduplicate_*``, ``z_range``, ``statistics``...)
with pdgstaging 0.9's defaults.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from fastraster.io.config import STAGING_DEFAULTS, PdgConfig
from fastraster.model.grid import QUAD_TMS, tile_shape
from fastraster.model.stats import Stat, parse_stats
from fastraster.pipelines.options import VALIDATE_MODES, _check_stats, load_config

_ORDERS = ("larger", "smaller")


@dataclass(frozen=True, kw_only=True)
class PdgSourceRules:
    """How raw scenes become max-zoom rasters, PDG's way.

    Build it with :meth:`create` (parses user input) or :meth:`from_pdg_config`; the
    constructor checks already-typed values.

    Attributes
    ----------
    z : int
        Zoom level of the output tiles (PDG's ``max(z_range)``).
    tms : str
        Tile matrix set id (``"WGS1984Quad"``, ``"WorldCRS84Quad"`` or another morecantile id
        with a regular top-left-origin grid).
    stats : tuple of Stat
        The bands (PDG statistic configurations, parsed).
    keep_rules : tuple of (column, "larger" | "smaller"), or None
        Footprint deduplication (PDG's ``deduplicate_method="footprints"``): of two scenes, the
        one whose footprint attributes sort first by these rules is preferred. ``None``: no
        footprint deduplication.
    clip_to_footprint : bool
        Flag polygons that do not intersect their own scene's footprint.
    simplify_tolerance : float or None
        ``shapely.simplify(preserve_topology=True)`` tolerance in the *input* CRS units,
        applied before anything else; None skips it.
    input_crs : str or None
        Overrides the CRS of every input file for the reprojection (PDG's ``input_crs``).
    tile_size : (height, width)
    dtype : str
        Output sample type ("float32" or "float64"); values are computed in float64.
    ext, footprint_ext : str
        Extensions of scene files and footprint files (PDG's ``ext_input``,
        ``ext_footprints``).
    validate : {"repair", "error", "none"}
        Invalid polygons for the coverage (see :func:`fastraster.model.repair.repair_invalid`).
    """

    z: int
    tms: str = "WGS1984Quad"
    stats: tuple[Stat, ...]
    keep_rules: tuple | None = (("Date", "larger"),)
    clip_to_footprint: bool = True
    simplify_tolerance: float | None = None
    input_crs: str | None = None
    tile_size: tuple[int, int] = (256, 256)
    dtype: str = "float32"
    ext: str = ".shp"
    footprint_ext: str = ".shp"
    validate: str = "repair"

    def __post_init__(self):
        _check_stats(self.stats)
        if isinstance(self.z, bool) or not isinstance(self.z, int) or not 0 <= self.z <= 30:
            raise ValueError(f"z must be an integer zoom level from 0 to 30, not {self.z!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, not {self.dtype!r}")
        if self.validate not in VALIDATE_MODES:
            raise ValueError(f"validate must be 'repair', 'error' or 'none', not "
                             f"{self.validate!r}")
        for name in ("ext", "footprint_ext"):
            ext = getattr(self, name)
            if not isinstance(ext, str) or not ext.startswith("."):
                raise ValueError(f"{name} must be a file extension like '.shp', not {ext!r}")

    @classmethod
    def create(cls, *, z, tms="WGS1984Quad", stats=None, keep_rules=(("Date", "larger"),),
               clip_to_footprint=True, simplify_tolerance=None, input_crs=None,
               tile_size=256, dtype="float32", ext=".shp", footprint_ext=None,
               validate="repair") -> PdgSourceRules:
        """Rules from user input: PDG statistic dicts (None: pdgraster's two), keep rules as
        lists, a tile size as an int or (height, width), a dtype as any numpy spelling;
        ``footprint_ext`` defaults to ``ext``.

        Raises
        ------
        ValueError
            Naming the offending setting.
        """
        if isinstance(z, bool) or not isinstance(z, (int, np.integer)):
            raise ValueError(f"z must be an integer zoom level, not {z!r}")
        if not isinstance(tms, str) or not tms:
            raise ValueError(f"tms must be a tile matrix set id, not {tms!r}")
        if tms not in QUAD_TMS:
            import morecantile

            if tms not in morecantile.tms.list():
                raise ValueError(f"unknown tile matrix set {tms!r}")
        if simplify_tolerance is not None:
            tol = simplify_tolerance
            if isinstance(tol, bool) or not isinstance(tol, (int, float, np.number)) \
                    or not math.isfinite(tol) or tol < 0:
                raise ValueError("simplify_tolerance must be a finite number >= 0 or None, "
                                 f"not {tol!r}")
            simplify_tolerance = float(tol)
        if input_crs is not None:
            from pyproj import CRS

            try:
                CRS.from_user_input(input_crs)
            except Exception as exc:  # pyproj.exceptions.CRSError
                raise ValueError(f"input_crs {input_crs!r} is not a CRS: {exc}") from exc
            input_crs = str(input_crs)
        try:
            dt = np.dtype(dtype)
        except TypeError as exc:
            raise ValueError(f"dtype must be float32 or float64, not {dtype!r}") from exc
        return cls(z=int(z), tms=tms, stats=parse_stats(stats),
                   keep_rules=_parse_keep_rules(keep_rules),
                   clip_to_footprint=bool(clip_to_footprint),
                   simplify_tolerance=simplify_tolerance, input_crs=input_crs,
                   tile_size=tile_shape(tile_size), dtype=dt.name, ext=ext,
                   footprint_ext=ext if footprint_ext is None else footprint_ext,
                   validate=validate)

    @property
    def deduplicate(self) -> bool:
        """True when polygons are flagged by footprint overlaps (keep rules set)."""
        return self.keep_rules is not None

    @property
    def needs_footprints(self) -> bool:
        return self.clip_to_footprint or self.deduplicate

    @property
    def keep_columns(self) -> tuple:
        """Footprint attribute columns the keep rules read."""
        return tuple(c for c, _ in self.keep_rules or ())

    @property
    def nodata(self):
        """The GeoTIFF nodata tag: the statistics' common ``nodata_val``, else None."""
        values = {s.nodata_val for s in self.stats}
        return values.pop() if len(values) == 1 else None

    @classmethod
    def from_pdg_config(cls, config, **overrides) -> tuple[PdgSourceRules, SourceDirs]:
        """Rules and folders from a PDG viz configuration (dict or JSON path, validated
        whole by :func:`fastraster.pipelines.options.load_config`, the one reader of PDG
        configurations; or a :class:`~fastraster.io.config.PdgConfig` already validated).

        The keys the staged path reads mean the same here (``tms_id``, ``z_range``,
        ``tile_size``, ``statistics``, ``deduplicate_at`` / ``deduplicate_method``, with
        pdgraster's defaults); the raw-scene keys take pdgstaging's defaults
        (:data:`fastraster.io.config.STAGING_DEFAULTS`). Relative folders are taken relative
        to the current directory, as PDG does. Output is float64, as pdgraster writes;
        ``overrides`` are :meth:`create` keywords (e.g. ``dtype="float32"``).

        Raises
        ------
        ValueError
            For a bad configuration (as :func:`~fastraster.pipelines.options.load_config`),
            settings PDG applies in an order-dependent way (``deduplicate_at`` with
            "staging"), the "neighbor" method (not supported from raw scenes) and invalid
            values.
        """
        pdg = config if isinstance(config, PdgConfig) else load_config(config)
        c = pdg.config
        staging = {k: c.get(k, v) for k, v in STAGING_DEFAULTS.items()}
        method = c["deduplicate_method"]
        at = c["deduplicate_at"] or []
        if isinstance(at, str):
            at = [at]
        if method not in (None, "footprints"):
            raise ValueError(f"deduplicate_method {method!r} is not supported from raw scenes "
                             "(only 'footprints' or None)")
        if method is not None and "staging" in at:
            # With deduplicate_at "staging", flagged rows are deleted as each scene lands,
            # so which files later count as present in a tile depends on staging order.
            raise ValueError("deduplicate_at 'staging' is not supported (PDG's result then "
                             "depends on staging order); use ['raster']")
        # Flags only matter where they drop rows: PDG drops them when rasterizing if
        # deduplicate_at holds "raster" and a method is set; otherwise every row counts.
        keep = staging["deduplicate_keep_rules"] if pdg.deduplicate else None
        if pdg.deduplicate and not keep:
            raise ValueError("deduplicate_method 'footprints' needs deduplicate_keep_rules")
        kwargs = dict(
            z=pdg.z_range[1], tms=pdg.tms_id, stats=pdg.stats, keep_rules=keep,
            # PDG clips only when a dedup method is set; the flag matters only when applied.
            clip_to_footprint=bool(pdg.deduplicate
                                   and staging["deduplicate_clip_to_footprint"]),
            simplify_tolerance=staging["simplify_tolerance"],
            input_crs=staging["input_crs"], tile_size=pdg.tile_size, dtype="float64",
            ext=staging["ext_input"], footprint_ext=staging["ext_footprints"])
        kwargs.update(overrides)
        dirs = SourceDirs(os.fspath(staging["dir_input"]),
                          os.fspath(staging["dir_footprints"]), os.fspath(c["dir_geotiff"]))
        return cls.create(**kwargs), dirs


@dataclass(frozen=True)
class SourceDirs:
    """The folders of a PDG configuration: scenes, footprints, GeoTIFF output."""

    inputs: str
    footprints: str
    geotiff: str


def _parse_keep_rules(rules):
    if rules is None:
        return None
    if isinstance(rules, (str, bytes)) or not hasattr(rules, "__iter__"):
        raise ValueError(f"keep_rules must be a list of (column, 'larger'|'smaller') pairs, "
                         f"not {rules!r}")
    out = []
    for rule in rules:
        if isinstance(rule, (str, bytes)) or len(rule) != 2:
            raise ValueError(f"keep rule {rule!r} must be a (column, 'larger'|'smaller') pair")
        col, order = rule
        if not isinstance(col, str) or not col:
            raise ValueError(f"keep rule {rule!r}: the column must be a name")
        if order not in _ORDERS:
            raise ValueError(f"keep rule {rule!r}: the order must be 'larger' or 'smaller'")
        out.append((col, order))
    if not out:
        raise ValueError("keep_rules is empty; pass None for no footprint deduplication")
    return tuple(out)
