"""The compact listing of a tree (:class:`fastraster.io.tilepaths.TileListing`) against the
plain reference: ``parse_tile_path`` of every file ``os.walk`` finds, sorted."""

import os

import pytest

from fastraster.io.tilepaths import TileFile, find_tiles, parse_tile_path

FILES = [
    "WorldCRS84Quad/13/1524/910.gpkg",
    "WorldCRS84Quad/13/1524/911.gpkg",
    "WorldCRS84Quad/13/1524/0912.gpkg",   # leading zero: not the canonical path
    "WorldCRS84Quad/13/1524/readme.gpkg",  # names no tile
    "WorldCRS84Quad/13/1524/.hidden.gpkg",  # hidden: not listed
    "WorldCRS84Quad/13/1524/913.tif",  # another extension
    "WebMercatorQuad/15/5000/7000.gpkg",  # a second TMS
    "notatms/15/5000/7000.gpkg",  # a folder that is no TMS id
    "13/1/2.gpkg",  # too short for a TMS folder
]


def _reference(root, ext=".gpkg", tms=None, z=None):
    found = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        found += [parse_tile_path(os.path.join(folder, f), tms, z) for f in sorted(files)
                  if f.endswith(ext) and not f.startswith(".")]
    return found


@pytest.fixture
def tree(tmp_path):
    for rel in FILES:
        path = tmp_path / "staged" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    return tmp_path / "staged"


@pytest.mark.parametrize("kw", [{}, {"z": 14}, {"tms": "WGS1984Quad"}, {"ext": ".tif"}])
@pytest.mark.parametrize("spelling", ["plain", "trailing slash", "str"])
def test_listing_equals_the_reference(tree, kw, spelling):
    root = {"plain": tree, "trailing slash": f"{tree}/", "str": str(tree)}[spelling]
    listing = find_tiles(root, **kw)
    want = _reference(root, **kw)
    assert list(listing) == want and len(listing) == len(want)
    assert [listing[i] for i in range(-len(want), 0)] == want
    assert listing[1:3] == want[1:3]
    with pytest.raises(IndexError):
        listing[len(want)]


def test_canonical_files_are_held_compactly(tree):
    listing = find_tiles(tree)
    whole = sorted(f.path for f in listing._whole.values())
    # only the files whose path is not <root>/<TMS>/<z>/<x>/<y><ext> of their tile
    assert [os.path.relpath(p, tree) for p in whole] == sorted(
        ["WorldCRS84Quad/13/1524/0912.gpkg", "WorldCRS84Quad/13/1524/readme.gpkg",
         "notatms/15/5000/7000.gpkg", "13/1/2.gpkg"])
    web = str(tree / "WebMercatorQuad/15/5000/7000.gpkg")
    assert [f for f in listing if f.path == web] == [
        TileFile(web, "WebMercatorQuad", (5000, 7000, 15))]
    assert len(listing._tiles) == 3 * len(listing)  # three integers per file


def test_a_listing_of_the_current_folder_is_compact_too(tree, monkeypatch):
    """``find_tiles(".")`` (``fastraster rasterize . ../out`` from inside the tree): the
    paths are ``parse_tile_path``'s, without the ``./``, and still held as integers."""
    monkeypatch.chdir(tree)
    for root in (".", "./", "../staged"):
        listing = find_tiles(root)
        assert list(listing) == _reference(root)
        assert len(listing._whole) == 4, root  # the four non-canonical files only
