"""GeoTIFF output (atomic) and the reads that the pyramid, the ranges and the previews share."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fastraster.io.atomic import atomic_path
from fastraster.io.tiffcheck import check_tiff
from fastraster.model.grid import TileGrid


def geotiff_profile(grid: TileGrid, count: int, dtype="float32", nodata=None, cog=False):
    """The output profile (SPEC §3): deflate with floating-point predictor, internal tiles."""
    from rasterio.crs import CRS

    dtype = np.dtype(dtype).name
    profile = {
        "driver": "COG" if cog else "GTiff",
        "dtype": dtype, "count": count, "height": grid.height, "width": grid.width,
        "crs": CRS.from_user_input(grid.crs), "transform": grid.transform,
        "compress": "deflate",
        "predictor": 3 if np.dtype(dtype).kind == "f" else 2,
        # Deflate level 1, not GDAL's 6: as small for these rasters and faster to write
        # (dense tile 7.7 vs 10.1 ms, PDG tile 4.5 vs 7.4 ms: benchmarks/write_levels.py).
        "zlevel": 1,
    }
    if nodata is not None:
        profile["nodata"] = nodata
    if cog:
        profile["blocksize"] = min(512, grid.width)
        profile.pop("predictor")
        profile["predictor"] = "FLOATING_POINT" if np.dtype(dtype).kind == "f" else "YES"
        profile["level"] = profile.pop("zlevel")  # the COG driver's name for it
    elif grid.width % 16 == 0 and grid.height % 16 == 0:
        profile.update(tiled=True, blockxsize=min(256, grid.width),
                       blockysize=min(256, grid.height))
    return profile


def write_geotiff(path, array: np.ndarray, grid: TileGrid, names, *, dtype="float32",
                  nodata=None, cog=False) -> None:
    """Write bands to ``path`` atomically: a temp file in the same folder, then ``os.replace``.

    A reader (or a crashed run) never sees a half-written file under the final name: the
    file is checked before it is renamed (:func:`~fastraster.io.tiffcheck.check_tiff`: GDAL
    does not report a directory it failed to write when the disk is full).
    """
    import rasterio

    profile = geotiff_profile(grid, array.shape[0], dtype, nodata, cog)
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(array.astype(profile["dtype"], copy=False))
            dst.descriptions = tuple(names)
        check_tiff(tmp)


class Bands(NamedTuple):
    """What :func:`read_geotiff` returns."""

    data: np.ndarray  #: (bands, height, width), the file's dtype
    names: tuple  #: band descriptions (statistic names)
    dtype: str
    nodata: float | None


def read_geotiff(path) -> Bands:
    """All bands of a GeoTIFF with their descriptions, sample type and nodata tag."""
    import rasterio

    with rasterio.open(path) as src:
        return Bands(src.read(), src.descriptions, src.dtypes[0], src.nodata)
