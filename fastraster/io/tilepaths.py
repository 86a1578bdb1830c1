"""The tile-path layout ``<root>/<TMS>/<z>/<x>/<y>.<ext>``: the only place that parses or builds
one.

Staged vector tiles, GeoTIFFs and web tiles (``<web>/<stat>/<TMS>/<z>/<x>/<y>.png``) all
follow it, as PDG's viz-staging and pdgraster write them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from fastraster.model.grid import QUAD_TMS


@dataclass(frozen=True)
class TileFile:
    """One file and the tile it stands for (``tile`` None if it could not be inferred, with
    the reason in ``problem``)."""

    path: str
    tms: str | None
    tile: tuple | None
    problem: str | None = None


_INT = re.compile(r"^\d+$")


def parse_tile_path(path, tms=None, z=None) -> TileFile:
    """Infer TMS id and tile from ``.../<TMS>/<z>/<x>/<y>.<ext>``; explicit values win."""
    p = os.path.normpath(os.fspath(path))
    parts = p.split(os.sep)
    stem = os.path.splitext(parts[-1])[0]
    if len(parts) < 3 or not (_INT.match(stem) and _INT.match(parts[-2])
                              and _INT.match(parts[-3])):
        return TileFile(p, tms, None, "cannot infer the tile from the path; expected "
                        "<TMS>/<z>/<x>/<y> with integer z, x and y")
    x, y, zz = int(parts[-2]), int(stem), int(parts[-3])
    if z is not None:
        zz = int(z)
    if tms is None:
        tms = parts[-4] if len(parts) >= 4 else None
        if tms is None or not is_tms(tms):
            return TileFile(p, None, None, f"cannot infer the tile matrix set from the path "
                            f"(folder {tms!r} is not a TMS id); pass tms=")
    return TileFile(p, tms, (x, y, zz))


def is_tms(name: str) -> bool:
    """True if ``name`` is a tile matrix set id (the two quad grids or morecantile's)."""
    if name in QUAD_TMS:
        return True
    import morecantile

    return name in morecantile.tms.list()


def find_tiles(root, ext=".gpkg", tms=None, z=None) -> list[TileFile]:
    """All files ending in ``ext`` below ``root`` (not hidden), sorted, with their tiles.

    Used for staged trees, GeoTIFF trees and web-tile trees alike.

    Raises
    ------
    FileNotFoundError
        If ``root`` is not a folder.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root}: no such directory")
    found = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            if f.endswith(ext) and not f.startswith("."):
                found.append(parse_tile_path(os.path.join(folder, f), tms, z))
    return found


def tile_path(root, tms: str, tile, ext=".tif") -> str:
    """``<root>/<tms>/<z>/<x>/<y><ext>``."""
    x, y, z = tile
    return os.path.join(os.fspath(root), tms, str(z), str(x), f"{y}{ext}")


def web_tile_path(web_dir, layer: str, tms: str, tile, ext=".png") -> str:
    """``<web_dir>/<layer>/<TMS>/<z>/<x>/<y><ext>`` (one layer per statistic)."""
    return tile_path(os.path.join(os.fspath(web_dir), layer), tms, tile, ext)


def tile_label(tile) -> str:
    """A tile as PDG writes it in its CSVs and staging columns (``str`` of a
    ``morecantile.Tile``): ``"Tile(x=1524, y=910, z=13)"``; ``""`` for None."""
    return "" if tile is None else f"Tile(x={tile[0]}, y={tile[1]}, z={tile[2]})"


def url_template(base: str, layer: str, tms: str, ext=".png") -> str:
    """The RESTful WMTS URL template of a layer: ``<base>/<layer>/<TMS>/{TileMatrix}/
    {TileCol}/{TileRow}<ext>`` (TileMatrix is z, TileCol x, TileRow y)."""
    return f"{base}/{layer}/{tms}/{{TileMatrix}}/{{TileCol}}/{{TileRow}}{ext}"
