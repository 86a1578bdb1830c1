"""fastraster: exact, fast per-pixel statistics of staged vector tiles.

The public API (see README):

* :func:`rasterize_tile` - one tile, to a float64 array (bands, height, width);
* :func:`rasterize_dir` - a staged tree to GeoTIFFs, in parallel (:class:`RasterizeOptions`
  holds its settings, :func:`warm_up` loads its kernels);
* :func:`rasterize_sources` - raw scenes (+ footprints) to GeoTIFFs, PDG's rules, no staging;
* :func:`build_pyramid` - the lower zoom levels of a GeoTIFF tree;
* :func:`render_web_tiles` - RGBA PNG web tiles (+ WMTS capabilities) from GeoTIFFs;
* :class:`RasterTiler` - a drop-in for pdgraster's ``RasterTiler``.

A run with failed files ends with one :class:`RunFailures` warning; a configuration key no
PDG component reads gets one :class:`ConfigWarning`; SIGINT / SIGTERM end a run with
:class:`RunInterrupted` once finished work is recorded, and an output folder that cannot be
written raises :class:`OutputError`.

The layers, each importing only those before it: ``kernels`` (numba) <- ``model`` <- ``io``
<- ``render`` <- ``execution`` <- ``pipelines`` <- ``compat`` <- ``cli`` (README,
"Architecture").

The names are imported on first use (PEP 562): ``import fastraster`` alone loads no numba,
and ``import fastraster.pipelines.staged``, a worker's entry point, loads neither the pyramid,
tiler, web-tile nor WMTS modules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_LAZY = {
    "ConfigWarning": "io.config",
    "DEFAULT_STATS": "model.stats",
    "OutputError": "io.atomic",
    "PdgSourceRules": "pipelines.source_options",
    "RaggedPolygons": "model.geometry",
    "RasterTiler": "compat.pdgraster",
    "RasterizeOptions": "pipelines.options",
    "Report": "io.records",
    "RunFailures": "io.records",
    "RunInterrupted": "execution.supervisor",
    "Stat": "model.stats",
    "Tile": "compat.pdgraster",
    "TileGrid": "model.grid",
    "build_pyramid": "pipelines.pyramid",
    "compute_stats": "model.compute",
    "rasterize_dir": "pipelines.staged",
    "rasterize_sources": "pipelines.sources",
    "rasterize_tile": "pipelines.tile",
    "render_web_tiles": "pipelines.webtiles",
    "use_fork_server": "execution.worker",
    "warm_up": "pipelines.staged",
}

#: Subpackages (and modules) that ``fastraster.<name>`` resolves after a plain
#: ``import fastraster``; ``pipeline`` is the deprecated old home of ``warm_up``.
_SUBMODULES = frozenset({"cli", "compat", "execution", "io", "kernels", "model", "pipeline",
                         "pipelines", "render", "sample"})

# A literal list, which static analysers read; tests/test_startup.py checks it against _LAZY.
__all__ = ["ConfigWarning", "DEFAULT_STATS", "OutputError", "PdgSourceRules",
           "RaggedPolygons", "RasterTiler", "RasterizeOptions", "Report", "RunFailures",
           "RunInterrupted", "Stat", "Tile", "TileGrid", "build_pyramid", "compute_stats",
           "rasterize_dir", "rasterize_sources", "rasterize_tile", "render_web_tiles",
           "use_fork_server", "warm_up"]

if TYPE_CHECKING:  # static analysers and IDEs see the real definitions
    from fastraster.compat.pdgraster import RasterTiler, Tile
    from fastraster.execution.supervisor import RunInterrupted
    from fastraster.execution.worker import use_fork_server
    from fastraster.io.atomic import OutputError
    from fastraster.io.config import ConfigWarning
    from fastraster.io.records import Report, RunFailures
    from fastraster.model.compute import compute_stats
    from fastraster.model.geometry import RaggedPolygons
    from fastraster.model.grid import TileGrid
    from fastraster.model.stats import DEFAULT_STATS, Stat
    from fastraster.pipelines.options import RasterizeOptions
    from fastraster.pipelines.pyramid import build_pyramid
    from fastraster.pipelines.source_options import PdgSourceRules
    from fastraster.pipelines.sources import rasterize_sources
    from fastraster.pipelines.staged import rasterize_dir, warm_up
    from fastraster.pipelines.tile import rasterize_tile
    from fastraster.pipelines.webtiles import render_web_tiles


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
