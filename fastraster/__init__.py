"""fastraster: exact, fast per-pixel statistics of staged vector tiles.

The public API (see README):

* :func:`rasterize_tile` - one tile, to a float64 array (bands, height, width);
* :func:`rasterize_dir` - a staged tree to GeoTIFFs, in parallel;
* :func:`build_pyramid` - the lower zoom levels of a GeoTIFF tree;
* :func:`render_web_tiles` - RGBA PNG web tiles (+ WMTS capabilities) from GeoTIFFs;
* :class:`RasterTiler` - a drop-in for pdgraster's ``RasterTiler``.
"""

from fastraster.compute import compute_stats
from fastraster.geometry import RaggedPolygons
from fastraster.grid import TileGrid
from fastraster.pipeline import Report, rasterize_dir
from fastraster.pyramid import build_pyramid
from fastraster.rasterize import rasterize_tile
from fastraster.stats import DEFAULT_STATS, Stat
from fastraster.tiler import RasterTiler, Tile
from fastraster.webtiles import render_web_tiles

__version__ = "0.1.0"

__all__ = ["DEFAULT_STATS", "RaggedPolygons", "RasterTiler", "Report", "Stat", "Tile",
           "TileGrid", "build_pyramid", "compute_stats", "rasterize_dir", "rasterize_tile",
           "render_web_tiles"]
