"""compute_stats of an earlier commit and of the working tree, alternating in one process.

    python benchmarks/side_by_side.py --rev 677f00a [STAGED_GPKG] --repeats 41

The commit's package is exported (``git archive``) into a temporary folder as
``fastraster_<rev>`` (its imports renamed), so both versions run in one process on the same
arrays, turn by turn (the order alternating, ABBA): the machine's load bursts hit both alike.
Prints the median of each and the ratio, for pdgraster's default statistics and for every
statistic kind but the union (GEOS), and checks that both give the same bytes. Without a
file, the dense sample tile.
"""

from __future__ import annotations

import argparse
import importlib
import io
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))


def export(rev: str, folder: Path) -> str:
    """The package at ``rev`` as an importable ``fastraster_<rev>``; returns its name."""
    name = f"fastraster_{re.sub(r'[^0-9a-zA-Z]', '_', rev)}"
    archive = subprocess.run(["git", "archive", rev, "fastraster"], cwd=REPO, check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    (folder / "fastraster").rename(folder / name)
    pattern = re.compile(r"\bfastraster(?=[.\s]|$)", re.M)
    for path in (folder / name).rglob("*.py"):
        path.write_text(pattern.sub(name, path.read_text()))
    sys.path.insert(0, str(folder))
    return name


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("path", nargs="?", help="a staged GeoPackage (default: the dense tile)")
    ap.add_argument("--rev", default="HEAD", help="the earlier commit")
    ap.add_argument("--repeats", type=int, default=41)
    args = ap.parse_args(argv)

    import numpy as np
    from common import dense_tile
    from output_digest import DENSE_STATS

    import fastraster
    from fastraster.io.staged import read_staged
    from fastraster.io.tilepaths import parse_tile_path
    from fastraster.model.grid import TileGrid

    path = args.path or dense_tile()
    f = parse_tile_path(path)
    grid = TileGrid.from_tile(f.tile, f.tms)
    data = read_staged(path)
    n = len(data.polygons)
    attrs = {"v": np.random.default_rng(0).uniform(-2, 5, n)}
    with tempfile.TemporaryDirectory() as tmp:
        old = importlib.import_module(export(args.rev, Path(tmp)))
        contenders = {args.rev: old.compute_stats, "working tree": fastraster.compute_stats}
        for label, stats in (("default statistics", None),
                             ("15 kinds (all but union)",
                              [s for s in DENSE_STATS if s["name"] != "union"])):
            outs = [fn(data.polygons, grid, stats, centroids=data.centroids, attributes=attrs)
                    for fn in contenders.values()]  # also compiles / loads the kernels
            same = outs[0].tobytes() == outs[1].tobytes()
            times = {k: [] for k in contenders}
            for r in range(args.repeats):
                for k, fn in list(contenders.items())[::1 if r % 2 else -1]:  # ABBA order
                    t0 = time.perf_counter()
                    fn(data.polygons, grid, stats, centroids=data.centroids, attributes=attrs)
                    times[k].append(time.perf_counter() - t0)
            a, b = (1e3 * statistics.median(t) for t in times.values())
            print(f"{label}, {n} polygons, {args.repeats} alternating repeats: "
                  f"{args.rev} {a:.2f} ms, working tree {b:.2f} ms, ratio {b / a:.3f}; "
                  f"{'identical bytes' if same else 'OUTPUTS DIFFER'}")


if __name__ == "__main__":
    main()
