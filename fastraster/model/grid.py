"""Tile grids: the bounds, pixel size and pixel edges of one tile of a tile matrix set."""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from functools import cached_property

import numpy as np

#: Tile matrix sets on the plain geographic quad grid ``d = 180 / 2**z``, computed here
#: exactly (morecantile carries ~1e-13 degree rounding noise in some releases).
QUAD_TMS = {"WGS1984Quad": "EPSG:4326", "WorldCRS84Quad": "OGC:CRS84"}
#: Their deepest zoom level, as morecantile (and so PDG) defines them: 2**24 x 2**23 tiles
#: of 1.1e-5 degree (~1 m).
QUAD_MAX_ZOOM = 23


def max_zoom(tms: str) -> int:
    """The deepest zoom level of a tile matrix set (the quad grids: 23, as in morecantile).

    Raises
    ------
    ValueError
        If ``tms`` is no tile matrix set id.
    """
    if tms in QUAD_TMS:
        return QUAD_MAX_ZOOM
    import morecantile

    try:
        return int(morecantile.tms.get(tms).maxzoom)
    except Exception as exc:  # morecantile raises its own InvalidIdentifier
        raise ValueError(f"unknown tile matrix set {tms!r}") from exc


@dataclass(frozen=True)
class TileGrid:
    """The pixel grid of one tile: ``height`` x ``width`` pixels, row 0 at the north edge."""

    tms: str
    x: int
    y: int
    z: int
    left: float
    bottom: float
    right: float
    top: float
    height: int
    width: int
    crs: str

    @classmethod
    def from_tile(cls, tile, tms: str = "WGS1984Quad", tile_size=256) -> TileGrid:
        """Grid of tile ``(x, y, z)`` of ``tms`` with ``tile_size`` (int or (height, width))."""
        x, y, z = (int(v) for v in tile)
        height, width = tile_shape(tile_size)
        if tms in QUAD_TMS:
            n = 2 ** z
            if not (0 <= x < 2 * n and 0 <= y < n):
                raise ValueError(f"tile {(x, y, z)} is outside the {tms} grid (zoom {z} has "
                                 f"{2 * n} x {n} tiles)")
            d = 180.0 / n
            left = -180.0 + x * d
            top = 90.0 - y * d
            return cls(tms, x, y, z, left, top - d, left + d, top, height, width, QUAD_TMS[tms])
        import morecantile

        try:
            matrix_set = morecantile.tms.get(tms)
        except Exception as exc:  # morecantile raises its own InvalidIdentifier
            raise ValueError(f"unknown tile matrix set {tms!r}") from exc
        # morecantile computes bounds for any index, also outside the matrix (it does not
        # check): a misnamed file would then be rasterized onto a tile that does not exist.
        matrix = matrix_set.matrix(z)
        if not (0 <= x < matrix.matrixWidth and 0 <= y < matrix.matrixHeight):
            raise ValueError(f"tile {(x, y, z)} is outside the {tms} grid (zoom {z} has "
                             f"{matrix.matrixWidth} x {matrix.matrixHeight} tiles)")
        b = matrix_set.xy_bounds(morecantile.Tile(x, y, z))
        return cls(tms, x, y, z, b.left, b.bottom, b.right, b.top, height, width,
                   matrix_set.rasterio_crs.to_string())

    @property
    def tile(self) -> tuple[int, int, int]:
        return (self.x, self.y, self.z)

    @property
    def dx(self) -> float:
        """Pixel width in CRS units."""
        return (self.right - self.left) / self.width

    @property
    def dy(self) -> float:
        """Pixel height in CRS units (positive)."""
        return (self.top - self.bottom) / self.height

    @property
    def pixel_area(self) -> float:
        return self.dx * self.dy

    @cached_property
    def transform(self):
        """The rasterio ``Affine`` of the tile (north-up)."""
        from affine import Affine

        # The same arithmetic as rasterio.transform.from_bounds (without its deprecated
        # Affine product), so pixel edges match other rasterio-made grids bit for bit.
        return Affine((self.right - self.left) / self.width, 0.0, self.left,
                      0.0, (self.bottom - self.top) / self.height, self.top)

    @cached_property
    def col_edges(self) -> np.ndarray:
        """West-to-east pixel edges, exactly as pdgraster computes them (``np.linspace``)."""
        return np.linspace(self.left, self.right, self.width + 1)

    @cached_property
    def row_edges(self) -> np.ndarray:
        """North-to-south pixel edges, exactly as pdgraster computes them."""
        return np.linspace(self.bottom, self.top, self.height + 1)[::-1].copy()

    def gdal_inverse(self) -> tuple[float, float, float, float]:
        """GDAL's inverse geotransform ``(ix0, idx, iy0, idy)``: ``px = ix0 + x * idx``.

        Used for the pixel-centre rule so that decisions at centres round exactly as
        ``rasterio.features.rasterize`` does (GDALInvGeoTransform, no-rotation case).
        """
        t = self.transform
        return (-t.c / t.a, 1.0 / t.a, -t.f / t.e, 1.0 / t.e)


def tile_shape(tile_size) -> tuple[int, int]:
    """``(height, width)`` of a tile size given as an int or a pair; both positive ints.

    Raises
    ------
    ValueError
        Naming the value and what is allowed (a bool, a string or a fraction is no size).
    """
    allowed = ("a positive int (square tiles) or a pair of positive ints [height, width], "
               "e.g. 256 or [256, 256]")
    values = [tile_size] * 2 if np.ndim(tile_size) == 0 else list(tile_size)
    if len(values) != 2 or not all(isinstance(v, numbers.Integral) and
                                   not isinstance(v, (bool, np.bool_)) and v > 0
                                   for v in values):
        raise ValueError(f"tile_size {tile_size!r} is not a tile size; allowed: {allowed}")
    return int(values[0]), int(values[1])
