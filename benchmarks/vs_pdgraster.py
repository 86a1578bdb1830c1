"""fastraster vs pdgraster's method, per tile, on the same staged files.

    python benchmarks/vs_pdgraster.py [--pdg ../shared/pdg-minimal-example] [--repeats 3]

pdgraster is not installable here (not on PyPI), so its per-tile algorithm is re-implemented
in ``common.pdgraster_method`` (geopandas overlay with row and column strips); its output is
checked against pdgraster's own GeoTIFFs for the PDG example before timing. fastraster is
timed as ``rasterize_one`` (read + validate + kernels + atomic write), 1 process.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import dense_tile, median_ms, pdgraster_method  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pdg", default=str(Path(__file__).resolve().parents[2] / "shared"
                                         / "pdg-minimal-example"))
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    import rasterio

    from fastraster.io.tilepaths import parse_tile_path, tile_path
    from fastraster.model.grid import TileGrid
    from fastraster.pipelines.options import RasterizeOptions
    from fastraster.pipelines.staged import rasterize_one, warm_up

    warm_up()
    files = sorted(str(p) for p in (Path(args.pdg) / "staged").rglob("*.gpkg"))
    files.append(dense_tile())
    settings = RasterizeOptions.create(overwrite=True)
    print("| tile | polygons | pdgraster method ms | fastraster ms | speedup |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            job = parse_tile_path(path)
            grid = TileGrid.from_tile(job.tile, job.tms)
            ref = Path(tile_path(Path(args.pdg) / "geotiff", job.tms, job.tile))
            arr = pdgraster_method(path, grid, os.path.join(tmp, "p.tif"))
            if path.startswith(args.pdg) and ref.exists():
                # The re-implementation reproduces pdgraster's own files.
                with rasterio.open(ref) as src:
                    pdg = src.read()
                assert np.array_equal(arr[0], pdg[0]) and np.abs(arr[1] - pdg[1]).max() < 1e-8
            t_pdg = median_ms(partial(pdgraster_method, path, grid, os.path.join(tmp, "p.tif")),
                              args.repeats, warmup=0)
            ours = partial(rasterize_one, job, os.path.join(tmp, "f.tif"), settings)
            rec = ours()
            t_ours = median_ms(ours, max(args.repeats, 5))
            x, y, z = job.tile
            name = f"{z}/{x}/{y}"
            print(f"| {name} | {rec['polygons']} | {t_pdg:.0f} | {t_ours:.1f} | "
                  f"{t_pdg / t_ours:.0f}x |")


if __name__ == "__main__":
    main()
