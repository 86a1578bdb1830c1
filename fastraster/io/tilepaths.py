"""The tile-path layout ``<root>/<TMS>/<z>/<x>/<y>.<ext>``: the only place that parses or builds
one.

Staged vector tiles, GeoTIFFs and web tiles (``<web>/<stat>/<TMS>/<z>/<x>/<y>.png``) all
follow it, as PDG's viz-staging and pdgraster write them.
"""

from __future__ import annotations

import os
import re
from array import array
from collections.abc import Sequence
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


def find_tiles(root, ext=".gpkg", tms=None, z=None) -> TileListing:
    """All files ending in ``ext`` below ``root`` (not hidden), sorted, with their tiles.

    Used for staged trees, GeoTIFF trees and web-tile trees alike. The listing is a
    sequence of :class:`TileFile` held compactly (:class:`TileListing`).

    Raises
    ------
    FileNotFoundError
        If ``root`` is not a folder.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root}: no such directory")
    listing = TileListing(root, ext)
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            if f.endswith(ext) and not f.startswith("."):
                listing.append(parse_tile_path(os.path.join(folder, f), tms, z))
    return listing


class TileListing(Sequence):
    """The files of a tree as a sequence of :class:`TileFile`, ~25 bytes per file.

    A file at its canonical path (``tile_path(root, tms, tile, ext)``, every file of a tree
    PDG or fastraster wrote) is kept as its tile's three integers and the index of its TMS
    id, and its :class:`TileFile` is built again when asked for; any other file (a path
    that names no tile, a ``z=`` override, ``0910.gpkg``) is kept as it is. Measured
    (``python benchmarks/listing_memory.py``, 100,000 files): 25 instead of 583 bytes per
    file for the listing and the jobs of ``rasterize_dir`` together, i.e. 0.25 instead of
    5.8 GB for the ~10^7 z15 tiles of the pan-Arctic layer.
    """

    def __init__(self, root, ext):
        self.root, self.ext = os.path.normpath(os.fspath(root)), ext
        if self.root == os.curdir:  # parse_tile_path's paths have no "./" to join onto
            self.root = ""
        self._tiles = array("q")  # x, y, z per file; -1 where the file is kept whole
        self._tms = array("B")  # index into _names
        self._names: list = []
        self._whole: dict[int, TileFile] = {}

    def append(self, f: TileFile) -> None:
        i = len(self._tms)
        if f.tile is not None and f.problem is None and \
                f.path == tile_path(self.root, f.tms, f.tile, self.ext):
            if f.tms not in self._names:
                self._names.append(f.tms)
            self._tms.append(self._names.index(f.tms))
            self._tiles.extend(f.tile)
        else:
            self._whole[i] = f
            self._tms.append(0)
            self._tiles.extend((-1, -1, -1))

    def __len__(self) -> int:
        return len(self._tms)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        whole = self._whole.get(i)
        if whole is not None:
            return whole
        tms = self._names[self._tms[i]]
        tile = tuple(self._tiles[3 * i:3 * i + 3])
        return TileFile(tile_path(self.root, tms, tile, self.ext), tms, tile)


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
