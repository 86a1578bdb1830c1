"""Time per parent tile (build_pyramid) and per web tile (render_web_tiles) against the z13
step (rasterize_dir), one worker, on the PDG example tiles and the synthetic sample.

    python benchmarks/pyramid_times.py [--repeats 5] [--pdg ../shared/pdg-minimal-example]

Each step runs ``repeats`` times with overwrite=True after a warm-up run; per-tile times are
the medians over repeats of the per-record ``seconds`` (read + compute + write), summed per
level where noted. Also times pdgraster's way of making a parent (rasterio ``merge`` of the
children, then ``reproject`` of each band with GDAL sum / average), on the same files.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _median_records(fn, repeats, key=lambda r: True):
    per_run = []
    for _ in range(repeats):
        report = fn()
        per_run.append([r["seconds"] for r in report if r["status"] == "ok" and key(r)])
    flat = [statistics.median(run) for run in per_run if run]
    return statistics.median(flat), len(per_run[-1])


def _pdgraster_style_parent(children, bounds, shape=(256, 256)):
    import rasterio
    from rasterio.merge import merge
    from rasterio.transform import from_bounds
    from rasterio.warp import Resampling, reproject

    srcs = [rasterio.open(p) for p in children]
    try:
        merged, transform = merge(srcs)
        crs = srcs[0].crs
        out = np.zeros((merged.shape[0], *shape), merged.dtype)
        dst_t = from_bounds(*bounds, width=shape[1], height=shape[0])
        for b, method in enumerate(["sum", "average"]):
            reproject(merged[b], out[b], src_transform=transform, dst_transform=dst_t,
                      src_crs=crs, dst_crs=crs, resampling=Resampling[method])
    finally:
        for s in srcs:
            s.close()
    return out


def run(name, staged, repeats):
    import fastraster
    from fastraster.io.tilepaths import find_tiles, tile_path
    from fastraster.model.grid import TileGrid
    from fastraster.model.pyramid_math import children_of
    from fastraster.pipelines.pyramid import build_pyramid
    from fastraster.pipelines.webtiles import render_web_tiles

    with tempfile.TemporaryDirectory() as tmp:
        gt, web = Path(tmp) / "gt", Path(tmp) / "web"

        def z13():
            return fastraster.rasterize_dir(staged, gt, dtype="float64", progress=False,
                                            n_jobs=1, overwrite=True)

        def parents():
            return build_pyramid(gt, (0, 13), n_jobs=1, overwrite=True, progress=False)

        def webtiles():
            return render_web_tiles(gt, web, n_jobs=1, overwrite=True, progress=False)

        for fn in (z13, parents, webtiles):  # warm-up (numba cache, GDAL, palettes)
            fn()
        t13, n13 = _median_records(z13, repeats)
        tp, npar = _median_records(parents, repeats)
        tp4, n4 = _median_records(parents, repeats, key=lambda r: r.get("children") == 4)
        tw, nweb = _median_records(webtiles, repeats)
        n_png = len(list(web.rglob("*.png")))
        # pdgraster's method for the z12 parent (all 4 children present in both datasets).
        tile = next(f.tile for f in find_tiles(gt, ".tif") if f.tile[2] == 12)
        kids = [tile_path(gt, "WorldCRS84Quad", c) for c in children_of(tile)]
        kids = [k for k in kids if os.path.exists(k)]
        g = TileGrid.from_tile(tile, "WorldCRS84Quad")
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            _pdgraster_style_parent(kids, (g.left, g.bottom, g.right, g.top))
            times.append(time.perf_counter() - t)
        tmerge = statistics.median(times)
    print(f"\n{name}")
    print(f"  z13 tile (rasterize_dir, float64, incl. read+write):  {1e3 * t13:7.1f} ms"
          f"  ({n13} tiles)")
    print(f"  parent tile (build_pyramid, any children):         {1e3 * tp:7.1f} ms"
          f"  ({npar} tiles) = {tp / t13:.2f} x z13")
    if n4:
        print(f"  parent tile with 4 children:                        {1e3 * tp4:7.1f} ms"
              f"  ({n4} tiles) = {tp4 / t13:.2f} x z13")
    print(f"  pdgraster's merge+reproject for that parent (compute only, no write): "
          f"{1e3 * tmerge:.1f} ms ({len(kids)} children)")
    print(f"  web tiles of one GeoTIFF (2 PNGs, render_web_tiles): {1e3 * tw:7.1f} ms"
          f"  ({nweb} GeoTIFFs, {n_png} PNGs) = {tw / 2 * 1e3:.1f} ms per PNG"
          f" = {tw / 2 / t13:.2f} x z13 per PNG")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--pdg", default=str(Path(__file__).resolve().parents[2] / "shared" /
                                         "pdg-minimal-example"))
    args = ap.parse_args()
    pdg = Path(args.pdg) / "staged"
    if pdg.is_dir():
        run("PDG example (4 real IWP z13 tiles, 1,440-1,694 polygons)", pdg, args.repeats)
    from fastraster.sample import make_sample

    with tempfile.TemporaryDirectory() as tmp:
        make_sample(Path(tmp) / "staged")
        run("synthetic sample (4 z13 tiles, ~5,500 polygons each)", Path(tmp) / "staged",
            args.repeats)


if __name__ == "__main__":
    main()
