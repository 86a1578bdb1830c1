"""The settings of the pipelines, parsed and validated once where the user's input enters.

Each is a frozen, keyword-only dataclass of plain data (it pickles to the workers), built from
user input by its ``create`` classmethod, which parses the statistics and checks every value;
inner functions take these typed objects and never re-parse.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastraster.io.staged import CENTROID_COLUMNS, DUPLICATED_COLUMN
from fastraster.model.grid import tile_shape
from fastraster.model.stats import Stat, parse_stats

VALIDATE_MODES = ("repair", "error", "none")


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
               duplicated_column=DUPLICATED_COLUMN) -> RasterizeOptions:
        """Options from user input: PDG statistic dicts (None: pdgraster's two), a tile size
        as an int or (height, width), a dtype as any numpy spelling.

        Raises
        ------
        ValueError
            Naming the offending setting (or statistic and key).
        """
        return cls(stats=parse_stats(stats), tile_size=tile_shape(tile_size),
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
        return cls(stats=parse_stats(stats), overwrite=bool(overwrite), cog=bool(cog))


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
