"""The settings of the pipelines, parsed and validated once where the user's input enters.

Each is a frozen, keyword-only dataclass of plain data (it pickles to the workers), built from
user input by its ``create`` classmethod, which parses the statistics and checks every value;
inner functions take these typed objects and never re-parse.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from fastraster.io.config import ConfigWarning, PdgConfig, parse_config
from fastraster.io.staged import CENTROID_COLUMNS, DUPLICATED_COLUMN
from fastraster.model.grid import tile_shape
from fastraster.model.stats import Stat, parse_stats, unknown_stat_keys

VALIDATE_MODES = ("repair", "error", "none")


def check_palettes(stats: tuple[Stat, ...]) -> None:
    """Check every statistic's ``palette`` and ``nodata_color`` as the web tiles will use
    them (:func:`fastraster.render.palettes.check_palette`).

    Raises
    ------
    ValueError
        Naming the statistic, the key, the value and what is allowed.
    """
    from fastraster.render.palettes import check_palette  # coloraide: only when checking

    for s in stats:
        check_palette(s.get("palette"), s.get("nodata_color"), where=f"statistic {s.name!r}")


def warn_unknown(unknown, stacklevel: int = 3) -> None:
    """One :class:`~fastraster.io.config.ConfigWarning` naming every unknown key, if any."""
    if unknown:
        warnings.warn(f"configuration keys that no PDG component reads, ignored (a typo?): "
                      f"{', '.join(unknown)}", ConfigWarning, stacklevel=stacklevel)


def parse_user_stats(stats, check_colors: bool = True) -> tuple[Stat, ...]:
    """Statistics from user input, fully checked (model rules and, with ``check_colors``,
    colours), with one warning for keys of the statistic dicts that PDG does not know."""
    parsed = parse_stats(stats)
    if check_colors:
        check_palettes(parsed)
    # Points at the caller of the public function (rasterize_dir, ...) that called create().
    warn_unknown(unknown_stat_keys(stats), stacklevel=5)
    return parsed


def load_config(config) -> PdgConfig:
    """A whole PDG configuration (a dict or a JSON file) validated, colours included, and
    typed (:func:`fastraster.io.config.parse_config`); one
    :class:`~fastraster.io.config.ConfigWarning` names the keys no PDG component reads.

    Raises
    ------
    ValueError
        Naming the statistic (where one applies), the key, the value and what is allowed.
    """
    pdg = parse_config(config)
    check_palettes(pdg.stats)
    warn_unknown(pdg.unknown, stacklevel=4)  # the caller of RasterTiler(config)
    return pdg


def _check_stats(stats) -> None:
    if not (isinstance(stats, tuple) and stats and all(isinstance(s, Stat) for s in stats)):
        raise TypeError("stats must be a non-empty tuple of Stat; build the options with "
                        "create(stats=...) to parse PDG statistic dicts")


@dataclass(frozen=True, kw_only=True)
class RasterizeOptions:
    """How staged tiles become GeoTIFF bands (:func:`fastraster.rasterize_dir`,
    :class:`fastraster.RasterTiler`).

    Attributes
    ----------
    stats : tuple of Stat
        The bands, in order (parsed; see :meth:`create` for PDG dicts).
    tile_size : (int, int)
        Pixels per tile, (height, width).
    dtype : str
        Sample type written, a numpy dtype name (values are always computed in float64).
    overwrite : bool
        Redo tiles whose output exists (else they are skipped).
    deduplicate : bool
        Skip rows whose ``duplicated_column`` is true (PDG's deduplicate_at "raster").
    validate : {"repair", "error", "none"}
        Invalid polygons: repaired with ``shapely.make_valid``, reported as a file error, or
        trusted.
    cog : bool
        Write Cloud-Optimized GeoTIFFs.
    centroid_columns : (str, str)
        Staging columns holding each polygon's centroid x and y (used when present).
    duplicated_column : str
        Staging column flagging duplicates.
    """

    stats: tuple[Stat, ...]
    tile_size: tuple[int, int] = (256, 256)
    dtype: str = "float32"
    overwrite: bool = False
    deduplicate: bool = False
    validate: str = "repair"
    cog: bool = False
    centroid_columns: tuple[str, str] = CENTROID_COLUMNS
    duplicated_column: str = DUPLICATED_COLUMN

    def __post_init__(self):
        _check_stats(self.stats)
        if self.validate not in VALIDATE_MODES:
            raise ValueError(f"validate must be 'repair', 'error' or 'none', not "
                             f"{self.validate!r}")

    @classmethod
    def create(cls, *, stats=None, tile_size=256, dtype="float32", overwrite=False,
               deduplicate=False, validate="repair", cog=False,
               centroid_columns=CENTROID_COLUMNS,
               duplicated_column=DUPLICATED_COLUMN, check_colors=True) -> RasterizeOptions:
        """Options from user input: PDG statistic dicts (None: pdgraster's two), a tile size
        as an int or (height, width), a dtype as any numpy spelling.

        The statistics are checked whole, their colours too unless ``check_colors`` is
        False (a run that would write its GeoTIFFs for hours and then fail on every web tile
        should fail at once; :func:`fastraster.rasterize_tile`, which makes no pictures,
        does not check them).

        Raises
        ------
        ValueError
            Naming the offending setting (or statistic and key).
        """
        return cls(stats=parse_user_stats(stats, check_colors),
                   tile_size=tile_shape(tile_size),
                   dtype=np.dtype(dtype).name, overwrite=bool(overwrite),
                   deduplicate=bool(deduplicate), validate=validate, cog=bool(cog),
                   centroid_columns=tuple(centroid_columns),
                   duplicated_column=duplicated_column)

    @property
    def nodata(self):
        """The GeoTIFF nodata tag: the statistics' common ``nodata_val``, else None."""
        values = {s.nodata_val for s in self.stats}
        return values.pop() if len(values) == 1 else None


@dataclass(frozen=True, kw_only=True)
class PyramidOptions:
    """What every parent tile of a :func:`fastraster.build_pyramid` run shares."""

    stats: tuple[Stat, ...]
    overwrite: bool = False
    cog: bool = False

    def __post_init__(self):
        _check_stats(self.stats)

    @classmethod
    def create(cls, *, stats=None, overwrite=False, cog=False) -> PyramidOptions:
        """Options from user input; the statistics checked whole, as
        :meth:`RasterizeOptions.create` does."""
        return cls(stats=parse_user_stats(stats), overwrite=bool(overwrite), cog=bool(cog))


@dataclass(frozen=True, kw_only=True)
class WebTileOptions:
    """What every GeoTIFF of a :func:`fastraster.render_web_tiles` run shares.

    Attributes
    ----------
    web_dir : str
        Root of the web tiles (``<web_dir>/<stat>/<TMS>/<z>/<x>/<y>.png``).
    stats : tuple of Stat
    ranges : dict
        The run's ``{stat: {z: (min, max)}}`` (see :mod:`fastraster.render.ranges`).
    overwrite : bool
    compress_level : int
        zlib level of the PNGs.
    """

    web_dir: str
    stats: tuple[Stat, ...]
    ranges: dict
    overwrite: bool = False
    compress_level: int = 6

    def __post_init__(self):
        _check_stats(self.stats)

    @classmethod
    def create(cls, *, web_dir, stats=None, ranges=None, overwrite=False,
               compress_level=6) -> WebTileOptions:
        """Options from user input; the statistics checked whole (colours included).

        Raises
        ------
        ValueError
            Naming the offending statistic, key and value, or setting.
        """
        level = compress_level
        if not (isinstance(level, (int, np.integer)) and 0 <= level <= 9) \
                or isinstance(level, bool):
            raise ValueError(f"compress_level {level!r} is not a zlib level; allowed: an int "
                             f"0-9")
        return cls(web_dir=web_dir, stats=parse_user_stats(stats), ranges=ranges or {},
                   overwrite=bool(overwrite), compress_level=int(level))
