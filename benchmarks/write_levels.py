"""GeoTIFF write time and size by deflate level, fastraster's profile otherwise.

    python benchmarks/write_levels.py [--repeats 11]

On the dense synthetic tile and (when ../shared is present) a PDG example tile: the bands
fastraster computes, written as float32 with deflate + floating-point predictor at levels
1, 3, 6 (GDAL's default) and 9. Medians of repeats; sizes in bytes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import dense_tile, loaded, median_ms, ours_kernels  # noqa: E402

PDG_TILE = (Path(__file__).resolve().parents[2] / "shared" / "pdg-minimal-example" / "staged"
            / "WorldCRS84Quad" / "13" / "1524" / "910.gpkg")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=11)
    args = ap.parse_args(argv)
    import rasterio
    import shapely

    from fastraster.io.geotiff import geotiff_profile

    tiles = [("dense synthetic", dense_tile())]
    if PDG_TILE.exists():
        tiles.append(("PDG example 13/1524/910", str(PDG_TILE)))
    print("| tile | deflate level | write ms | bytes |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in tiles:
            grid, polys, cent, geoms, _ = loaded(path)
            if cent is None:  # the PDG example has no staging centroid columns
                c = shapely.centroid(geoms)
                cent = (shapely.get_x(c), shapely.get_y(c))
            arr = ours_kernels(grid, polys, cent).astype("float32")
            for level in (1, 3, 6, 9):
                profile = {**geotiff_profile(grid, 2, "float32", 0), "zlevel": level}
                out = os.path.join(tmp, f"{level}.tif")

                def write(profile=profile, out=out, arr=arr):
                    with rasterio.open(out, "w", **profile) as dst:
                        dst.write(arr)

                ms = median_ms(write, args.repeats)
                print(f"| {name} | {level} | {ms:.1f} | {os.path.getsize(out):,} |")


if __name__ == "__main__":
    main()
