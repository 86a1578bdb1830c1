"""The parent's memory for the streamed CSVs (``keep_records=False``), side by side with
the ``CsvStream`` of another revision: what it holds per tile while a run goes on, and what
its final merge costs.

    python benchmarks/csv_stream.py [--tiles 200000] [--rev c4bd657]

Feeds the same synthetic records (PDG-like output paths, two statistics) to both
implementations in one process: ``tracemalloc``'s traced memory after the adds, per tile,
for a first run (every tile written) and a resume (every tile skipped); then the time of
``finish`` merging a run where half the tiles are redone and half skipped into the summary
of an earlier run over the same tiles.
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


def _record(i, status):
    x, y = 100000 + i % 1000, 50000 + i // 1000
    out = f"/scratch/project/iwp/geotiff/WGS1984Quad/15/{x}/{y}.tif"
    summary = [dict(stat=s, min=0.0, max=1.0, mean=0.5, median=0.5, std=0.1, var=0.01,
                    sum=3.0) for s in ("polygon_count", "coverage")]
    return dict(path=out.replace("geotiff", "staged").replace(".tif", ".gpkg"),
                tile=(x, y, 15), status=status, error=None, seconds=0.01, polygons=100,
                output=out, bounds=[0, 1, 0, 1], attempts=1,
                summary=summary if status == "ok" else None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiles", type=int, default=200000)
    ap.add_argument("--rev", default="c4bd657", help="the revision to compare with")
    args = ap.parse_args()
    from fastraster.io import records

    n = args.tiles
    old = importlib.import_module(export(args.rev, Path(tempfile.mkdtemp())) + ".io.records")
    impls = ((args.rev, old), ("working tree", records))
    print(f"{n} tiles; load average {os.getloadavg()[0]:.2f}")
    print("| run | implementation | held per tile (B) |\n|---|---|---:|")
    for status, label in (("ok", "first run"), ("skipped", "resume")):
        for name, module in impls:
            stream = module.CsvStream(tempfile.mkdtemp())
            tracemalloc.start()
            for i in range(n):
                stream.add(_record(i, status))
            held = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            stream.discard()
            print(f"| {label} | {name} | {held / n:.1f} |")
    print("\n| implementation | finish (s) |\n|---|---:|")
    for name, module in impls:
        folder = tempfile.mkdtemp()
        stream = module.CsvStream(folder)
        for i in range(n):
            stream.add(_record(i, "ok"))
        stream.finish()  # the earlier run's CSVs
        stream = module.CsvStream(folder)
        for i in range(n):
            stream.add(_record(i, "ok" if i % 2 else "skipped"))
        t = time.perf_counter()
        stream.finish()
        print(f"| {name} | {time.perf_counter() - t:.2f} |")


if __name__ == "__main__":
    main()
