"""What checking a written GeoTIFF costs: fastraster.io.tiffcheck.check_tiff against reopening
the file with rasterio (which reads the header and first directory), side by side, on the
GeoTIFF of a dense tile as rasterize_dir writes it (float32, deflate, 256 x 256 tiles) and
as a COG.

    python benchmarks/tiff_check.py [--repeats 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time


def main(argv=None):
    import numpy as np
    import rasterio

    from fastraster.io.geotiff import write_geotiff
    from fastraster.io.tiffcheck import check_tiff
    from fastraster.model.grid import TileGrid

    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=200)
    args = ap.parse_args(argv)
    grid = TileGrid.from_tile((1524, 910, 13), "WorldCRS84Quad", 256)
    rng = np.random.default_rng(0)
    bands = np.where(rng.random((2, 256, 256)) < 0.5, rng.random((2, 256, 256)), 0.0)

    def reopen(path):
        with rasterio.open(path) as src:
            src.profile  # noqa: B018 - the directory is read

    with tempfile.TemporaryDirectory() as tmp:
        for cog in (False, True):
            path = os.path.join(tmp, f"t{int(cog)}.tif")
            write_geotiff(path, bands, grid, ["a", "b"], cog=cog)
            times = {"check_tiff": [], "rasterio.open": []}
            for r in range(args.repeats):
                order = ((check_tiff, "check_tiff"), (reopen, "rasterio.open"))
                for f, name in order if r % 2 else order[::-1]:
                    t = time.perf_counter()
                    f(path)
                    times[name].append(time.perf_counter() - t)
            med = {k: statistics.median(v) * 1e6 for k, v in times.items()}
            print(f"{'COG' if cog else 'GTiff'} ({os.path.getsize(path)} bytes): "
                  + ", ".join(f"{k} {v:.1f} us" for k, v in med.items())
                  + f"; ratio {med['rasterio.open'] / med['check_tiff']:.1f}x")


if __name__ == "__main__":
    main()
