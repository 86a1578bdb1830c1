"""GeoTIFF output (atomic) and the reads that the pyramid, the ranges and the previews share."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fastraster.io.atomic import atomic_path
from fastraster.io.geotiff_lean import LeanTiffUnsupported, lean_io_enabled, write_geotiff_lean
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
                  nodata=None, cog=False, engine="auto") -> None:
    """Write bands to ``path`` atomically: a temp file in the same folder, then ``os.replace``.

    A reader (or a crashed run) never sees a half-written file under the final name, and a
    write that fails (a full disk, a read-only or forbidden folder) raises
    :class:`~fastraster.io.atomic.OutputError` with the errno, leaving no temporary file. The
    lean writer writes with ``os.write``, which reports every failed write with its errno;
    GDAL does not report a directory it failed to write at close when the disk is full, so a
    file GDAL wrote is checked before it is renamed
    (:func:`~fastraster.io.tiffcheck.check_tiff`).

    Parameters
    ----------
    path : str or os.PathLike
    array : (bands, height, width) array
        Converted to ``dtype`` as numpy's ``astype`` does.
    grid : TileGrid
        CRS, transform and size.
    names : sequence of str
        Band descriptions.
    dtype : str
        Sample type of the file.
    nodata : float, optional
        The nodata tag.
    cog : bool
        A Cloud-Optimized GeoTIFF (always GDAL's COG driver).
    engine : {"auto", "gdal", "lean"}
        ``"auto"``: the lean writer (:func:`fastraster.io.geotiff_lean.write_geotiff_lean`:
        GDAL's tags from a per-layout template, the bands compressed here; 3.0 instead of
        4.6-4.7 ms per small tile, README "Entry points") for plain float outputs, GDAL for COGs,
        integer samples and anything else the lean writer declines, or for every file when
        ``FASTRASTER_LEAN_IO=0``. ``"gdal"``: always rasterio/GDAL. ``"lean"``: the lean
        writer or :class:`~fastraster.io.geotiff_lean.LeanTiffUnsupported`. GDAL reads the
        same CRS, transform, nodata, descriptions, structure and values from both
        (``tests/test_geotiff_lean.py``); the bytes differ.
    """
    if engine not in ("auto", "gdal", "lean"):
        raise ValueError(f"engine must be 'auto', 'gdal' or 'lean', not {engine!r}")
    if engine == "lean" or (engine == "auto" and not cog and lean_io_enabled()):
        if cog:
            raise LeanTiffUnsupported(f"{path}: the lean writer does not write COGs")
        try:
            write_geotiff_lean(path, array, grid, names, dtype=dtype, nodata=nodata)
            return
        except LeanTiffUnsupported:
            if engine == "lean":
                raise
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
