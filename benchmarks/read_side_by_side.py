"""read_staged_auto of an earlier commit and of the working tree, alternating in one process.

    python benchmarks/read_side_by_side.py --rev ed73f9f --repeats 101 [GPKG ...]

The commit's package is exported as in ``side_by_side.py`` (``fastraster_<rev>``), so both
readers run in one process on the same files, turn by turn (ABBA order): load bursts of the
shared machine hit both alike (no ``gc.collect()`` between reads: it costs the next read
~1.3 ms of cold caches, which workers do not pay). Each read asks for what
``rasterize_file`` asks for by default (the staging centroid columns). Prints the median of
each, the ratio, pyogrio's ``read_staged`` beside them for scale, and checks that both
versions return the same arrays.
Without files: PDG's staged tile 13/1524/910 (``../shared``, if present) and the first
generated z15 tile of ``entry_points.py``.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def default_files() -> list[str]:
    from entry_points import z15_tiles

    pdg = REPO.parent / "shared" / "pdg-minimal-example" / "staged" / "WorldCRS84Quad" / "13"
    files = [str(pdg / "1524" / "910.gpkg")] if pdg.is_dir() else []
    return files + z15_tiles()[:1]


def same(a, b) -> bool:
    import numpy as np

    arrays = [*zip(a.polygons.arrays, b.polygons.arrays)]
    if (a.centroids is None) != (b.centroids is None):
        return False
    if a.centroids is not None:
        arrays += [*zip(a.centroids, b.centroids)]
    return all(np.array_equal(u, v, equal_nan=True) for u, v in arrays)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", help="staged GeoPackages (default: see above)")
    ap.add_argument("--rev", default="HEAD", help="the earlier commit")
    ap.add_argument("--repeats", type=int, default=101)
    args = ap.parse_args(argv)

    from side_by_side import export

    from fastraster.io.gpkg_lean import read_staged_auto
    from fastraster.io.staged import read_staged

    files = args.files or default_files()
    with tempfile.TemporaryDirectory() as tmp:
        old = importlib.import_module(export(args.rev, Path(tmp)) + ".io.gpkg_lean")
        contenders = {args.rev: old.read_staged_auto, "working tree": read_staged_auto,
                      "read_staged (pyogrio)": read_staged}
        for path in files:
            outs = [fn(path) for fn in contenders.values()]  # also loads the kernels
            times = {k: [] for k in contenders}
            for r in range(args.repeats):
                order = list(contenders.items())
                for k, fn in order[::1 if r % 2 else -1]:  # ABBA order
                    t0 = time.perf_counter()
                    fn(path)
                    times[k].append(time.perf_counter() - t0)
            a, b, c = (1e3 * statistics.median(t) for t in times.values())
            print(f"{path} ({len(outs[1].polygons)} polygons), {args.repeats} alternating "
                  f"repeats, medians: {args.rev} {a:.3f} ms, working tree {b:.3f} ms, "
                  f"ratio {b / a:.3f}; read_staged (pyogrio) {c:.3f} ms; "
                  f"{'same arrays' if same(outs[0], outs[1]) else 'ARRAYS DIFFER'}")


if __name__ == "__main__":
    main()
