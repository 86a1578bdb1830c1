"""fastraster vs pdgraster's method, per tile, on the same staged files.

    python benchmarks/vs_pdgraster.py [--pdg ../shared/pdg-minimal-example] [--repeats 3]

pdgraster is not installable here (not on PyPI), so its per-tile algorithm is re-implemented
in ``common.pdgraster_method`` (geopandas overlay with row and column strips); its output is
checked against pdgraster's own GeoTIFFs for the PDG example before timing. fastraster is
timed as ``rasterize_one`` (read + validate + kernels + atomic write + band summaries: the
per-tile task of ``rasterize_dir``), 1 process, with its default lean I/O and with GDAL I/O
(``FASTRASTER_LEAN_IO=0``). The three take turns within every repeat (pdgraster's method,
then ``--ours-per-pdg`` runs of each of ours), each writing a new file; medians. Also the
generated z15 tiles of ``entry_points.py`` (PDG's published zoom level, 250-450 polygons).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import dense_tile, pdgraster_method  # noqa: E402
from entry_points import Fresh, gdal_io, z15_tiles  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pdg", default=str(Path(__file__).resolve().parents[2] / "shared"
                                         / "pdg-minimal-example"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ours-per-pdg", type=int, default=5,
                    help="fastraster runs per pdgraster run in each repeat")
    args = ap.parse_args(argv)
    import rasterio

    from fastraster.execution.allocator import tune_allocator
    from fastraster.io.tilepaths import parse_tile_path, tile_path
    from fastraster.model.grid import TileGrid
    from fastraster.pipelines.options import RasterizeOptions
    from fastraster.pipelines.staged import rasterize_one, warm_up

    warm_up()
    tune_allocator()  # as in a worker
    files = sorted(str(p) for p in (Path(args.pdg) / "staged").rglob("*.gpkg"))
    files += z15_tiles() + [dense_tile()]
    options = RasterizeOptions.create(overwrite=True)
    load0 = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Fresh(tmp)
        for path in files:
            job = parse_tile_path(path)
            grid = TileGrid.from_tile(job.tile, job.tms)
            ref = Path(tile_path(Path(args.pdg) / "geotiff", job.tms, job.tile))
            arr = pdgraster_method(path, grid, fresh())
            if path.startswith(args.pdg) and ref.exists():
                # The re-implementation reproduces pdgraster's own files.
                with rasterio.open(ref) as src:
                    pdg = src.read()
                assert np.array_equal(arr[0], pdg[0]) and np.abs(arr[1] - pdg[1]).max() < 1e-8
            rec = rasterize_one(job, fresh(), options)
            assert rec["status"] == "ok", rec

            def gdal(job=job):
                with gdal_io():
                    rasterize_one(job, fresh(), options)

            times = {"pdg": [], "lean": [], "gdal": []}
            for _ in range(args.repeats):
                t = time.perf_counter()
                pdgraster_method(path, grid, fresh())
                times["pdg"].append(time.perf_counter() - t)
                for _ in range(args.ours_per_pdg):
                    for k, fn in (("lean", lambda job=job: rasterize_one(job, fresh(),
                                                                          options)),
                                  ("gdal", gdal)):
                        t = time.perf_counter()
                        fn()
                        times[k].append(time.perf_counter() - t)
            fresh.clean()
            med = {k: 1000 * statistics.median(v) for k, v in times.items()}
            x, y, z = job.tile
            kind = ("PDG example" if path.startswith(args.pdg) else
                    "generated z15" if z == 15 else "dense synthetic")
            rows.append((kind, f"{z}/{x}/{y}", rec["polygons"], med))
    load1 = os.getloadavg()
    print(f"load average at start {load0[0]:.2f} / {load0[1]:.2f} / {load0[2]:.2f}, at end "
          f"{load1[0]:.2f} / {load1[1]:.2f} / {load1[2]:.2f}; repeats {args.repeats} "
          f"(x {args.ours_per_pdg} for fastraster)\n")
    print("| tile | polygons | pdgraster's method ms | fastraster ms (GDAL I/O) | speedup "
          "(GDAL I/O) |")
    print("|---|---|---|---|---|")
    for kind, name, n, med in rows:
        print(f"| {kind} {name} | {n:,} | {med['pdg']:,.0f} | {med['lean']:.1f} "
              f"({med['gdal']:.1f}) | {med['pdg'] / med['lean']:.0f}× "
              f"({med['pdg'] / med['gdal']:.0f}×) |")
    for kind in ("PDG example", "generated z15"):
        sel = [med for k, _, _, med in rows if k == kind]
        if sel:
            ratio = statistics.median(m["pdg"] / m["lean"] for m in sel)
            print(f"\n{kind}: median speedup per tile {ratio:.0f}× (≥ 200×: "
                  f"{'met' if ratio >= 200 else 'not met'})")


if __name__ == "__main__":
    main()
