"""fastraster: exact, fast per-pixel statistics of staged vector tiles.

The public API (see README):

* :func:`rasterize_tile` - one tile, to a float64 array (bands, height, width);
* :func:`rasterize_dir` - a staged tree to GeoTIFFs, in parallel;
* :func:`rasterize_sources` - raw scenes (+ footprints) to GeoTIFFs, PDG's rules, no staging;
* :func:`build_pyramid` - the lower zoom levels of a GeoTIFF tree;
* :func:`render_web_tiles` - RGBA PNG web tiles (+ WMTS capabilities) from GeoTIFFs;
* :class:`RasterTiler` - a drop-in for pdgraster's ``RasterTiler``.

The names are imported on first use (PEP 562): ``import fastraster`` alone loads no numba,
and ``import fastraster.pipeline``, a worker's entry point, loads neither the pyramid, tiler,
web-tile nor WMTS modules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

#: Public name -> the submodule that defines it.
_LAZY = {
    "DEFAULT_STATS": "stats",
    "RaggedPolygons": "geometry",
    "RasterTiler": "tiler",
    "Report": "pipeline",
    "Stat": "stats",
    "Tile": "tiler",
    "TileGrid": "grid",
    "build_pyramid": "pyramid",
    "compute_stats": "compute",
    "rasterize_dir": "pipeline",
    "rasterize_sources": "sources",
    "rasterize_tile": "rasterize",
    "render_web_tiles": "webtiles",
}

#: Submodules that ``import fastraster`` used to import eagerly: ``fastraster.<module>``
#: still resolves after a plain ``import fastraster`` (e.g. ``fastraster.pipeline.warm_up``).
_SUBMODULES = frozenset({"compute", "geometry", "grid", "io", "pipeline", "pyramid",
                         "rasterize", "stats", "tiler", "webtiles", "wmts"})

# A literal list, which static analysers read; tests/test_startup.py checks it against _LAZY.
__all__ = ["DEFAULT_STATS", "RaggedPolygons", "RasterTiler", "Report", "Stat", "Tile",
           "TileGrid", "build_pyramid", "compute_stats", "rasterize_dir", "rasterize_sources",
           "rasterize_tile", "render_web_tiles"]

if TYPE_CHECKING:  # static analysers and IDEs see the real definitions
    from fastraster.compute import compute_stats
    from fastraster.geometry import RaggedPolygons
    from fastraster.grid import TileGrid
    from fastraster.pipeline import Report, rasterize_dir
    from fastraster.pyramid import build_pyramid
    from fastraster.rasterize import rasterize_tile
    from fastraster.sources import rasterize_sources
    from fastraster.stats import DEFAULT_STATS, Stat
    from fastraster.tiler import RasterTiler, Tile
    from fastraster.webtiles import render_web_tiles


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_SUBMODULES})
