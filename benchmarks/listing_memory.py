"""The parent's memory for a run's file listing and jobs (``rasterize_dir``), side by side
with another revision's: bytes held per staged file.

    python benchmarks/listing_memory.py [--files 100000] [--rev c4bd657]

Makes a staged tree of empty ``<TMS>/15/<x>/<y>.gpkg`` files once (in ``--dir``), then, in
one process, measures with ``tracemalloc`` what stays allocated after listing the tree and
building the jobs: ``--rev``'s ``find_tiles`` (a list of ``TileFile``) and its list of
``(file, output path)`` pairs, against the working tree's ``find_tiles`` and
``rasterize_dir``'s lazy jobs. Also times the listing (the walk dominates both). Then the
same for ``build_pyramid``'s plan (the GeoTIFFs found, held for the whole run, and their
parents) on a tree of as many empty ``.tif`` files.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from side_by_side import export  # noqa: E402  (also puts the repository on sys.path)


def held_per_item(way, n):
    """Bytes that stay allocated (tracemalloc) per item after ``way()``, its result alive."""
    tracemalloc.start()
    result = way()
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del result
    return held / n


def make_tree(root, n, ext=".gpkg"):
    staged = os.path.join(root, f"staged-{n}{ext}")
    if os.path.isdir(staged):
        return staged
    side = 1000
    for i in range(n):
        x, y = 100000 + i // side, 50000 + i % side
        folder = os.path.join(staged, "WGS1984Quad", "15", str(x))
        if i % side == 0:
            os.makedirs(folder, exist_ok=True)
        open(os.path.join(folder, f"{y}{ext}"), "w").close()
    return staged


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=100000)
    ap.add_argument("--rev", default="c4bd657")
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(),
                                                  "fastraster-listing"))
    args = ap.parse_args()
    from fastraster.io import tilepaths
    from fastraster.pipelines.staged import _jobs as rasterize_jobs

    staged = make_tree(args.dir, args.files)
    out = "/scratch/project/iwp/geotiff"
    package = export(args.rev, Path(tempfile.mkdtemp()))  # the package at --rev
    old = importlib.import_module(package + ".io.tilepaths")

    def old_way():
        files = old.find_tiles(staged)
        return files, [(f, old.tile_path(out, f.tms, f.tile) if f.tile else None)
                       for f in files]

    def new_way():
        files = tilepaths.find_tiles(staged)
        return files, rasterize_jobs(files, out)

    print(f"{args.files} files; load average {os.getloadavg()[0]:.2f}")
    print("| implementation | held per file (B) | listing + jobs (s) |\n|---|---:|---:|")
    for name, way in ((args.rev, old_way), ("working tree", new_way)):
        way()  # warm the directory cache
        tracemalloc.start()
        t = time.perf_counter()
        held_objects = way()
        seconds = time.perf_counter() - t
        held = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert len(held_objects[1]) == args.files
        print(f"| {name} | {held / args.files:.1f} | {seconds:.2f} |")
        del held_objects
    # build_pyramid's plan: the tiles found (kept for the whole run) and the first parents
    old_pyramid = importlib.import_module(package + ".pipelines.pyramid")
    from fastraster.model.pyramid_math import parent_of
    from fastraster.pipelines import pyramid

    geotiffs = make_tree(args.dir, args.files, ".tif")  # empty files: only listed

    def old_plan():
        existing = old_pyramid._existing(geotiffs)
        return existing, {parent_of(t) for t in existing["WGS1984Quad"]}

    def new_plan():
        existing = pyramid._existing(geotiffs)
        return existing, pyramid._parents(existing["WGS1984Quad"])

    print("\n| build_pyramid plan | held per tile (B) |\n|---|---:|")
    for name, way in ((args.rev, old_plan), ("working tree", new_plan)):
        print(f"| {name} | {held_per_item(way, args.files):.1f} |")
    # render_web_tiles' files and jobs (two statistics: two PNG paths per job)
    from fastraster.pipelines.webtiles import _jobs as web_jobs
    from fastraster.pipelines.webtiles import _selected

    web, names = "/scratch/project/iwp/web_tiles", ["polygon_count", "coverage"]

    def old_web():
        files = [f for f in old.find_tiles(geotiffs, ".tif") if f.tile]
        return files, [(f.path, f.tms, f.tile,
                        tuple(old.web_tile_path(web, n, f.tms, f.tile) for n in names))
                       for f in files]

    def new_web():
        files = _selected(tilepaths.find_tiles(geotiffs, ".tif"), None)
        return files, web_jobs(files, web, names)

    print("\n| render_web_tiles files + jobs | held per GeoTIFF (B) |\n|---|---:|")
    for name, way in ((args.rev, old_web), ("working tree", new_web)):
        print(f"| {name} | {held_per_item(way, args.files):.1f} |")
    assert [j[3] for j in old_web()[1]] == [j[3] for j in new_web()[1]]
    a, b = old_way(), new_way()

    def plain(jobs):
        return [(f.path, f.tms, f.tile, f.problem, out_path) for f, out_path in jobs]

    assert plain(a[1]) == plain(b[1])  # the same files and jobs
    print("same files and jobs: yes")


if __name__ == "__main__":
    main()
