"""Per-tile times of fastraster on the PDG example tiles and a dense synthetic tile.

    python benchmarks/tile_times.py [--repeats 7] [--pdg ../shared/pdg-minimal-example]

Prints medians over repeats (warm: numba cache loaded, GDAL initialised) for:
reading (pyogrio read_arrow + numba WKB decode vs read_dataframe + shapely.to_ragged_array),
rasterize_tile (default validate="repair", and validate="none"), the kernels alone, and
rasterize_dir with 1 worker per tile. Side by side in one process, on the same files.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def read_arrow_wkb(path):
    from fastraster.io.staged import read_staged

    return read_staged(path).polygons


def read_dataframe_ragged(path):
    import pyogrio

    from fastraster.model.geometry import RaggedPolygons

    df = pyogrio.read_dataframe(path, columns=["staging_centroid_x", "staging_centroid_y"])
    return RaggedPolygons.from_shapely(df.geometry.values)


def bench_one(path, repeats):
    import fastraster
    from fastraster.io.staged import read_staged
    from fastraster.io.tilepaths import parse_tile_path
    from fastraster.model.compute import compute_stats
    from fastraster.model.grid import TileGrid

    f = parse_tile_path(path)
    grid = TileGrid.from_tile(f.tile, f.tms)
    data = read_staged(path)
    polys = data.polygons
    other = read_dataframe_ragged(path)  # both readers must give the same arrays
    assert np.array_equal(polys.x, other.x)
    assert np.array_equal(polys.ring_offsets, other.ring_offsets)
    return {
        "file": os.path.relpath(path, Path(path).parents[3]),
        "polygons": len(polys),
        "read_arrow_wkb_ms": median_time(lambda: read_arrow_wkb(path), repeats),
        "read_dataframe_ragged_ms": median_time(lambda: read_dataframe_ragged(path), repeats),
        "kernels_ms": median_time(
            lambda: compute_stats(polys, grid, centroids=data.centroids), repeats),
        "rasterize_tile_ms": median_time(
            lambda: fastraster.rasterize_tile(path, f.tile, tms=f.tms), repeats),
        "rasterize_tile_novalidate_ms": median_time(
            lambda: fastraster.rasterize_tile(path, f.tile, tms=f.tms, validate="none"),
            repeats),
    }


def bench_files(label, files, repeats):
    import fastraster

    rows = [bench_one(path, repeats) for path in files]
    with tempfile.TemporaryDirectory() as out:
        root = Path(files[0]).parents[3]
        t = median_time(lambda: fastraster.rasterize_dir(
            root, out, n_jobs=1, overwrite=True, progress=False, summary=False), repeats)
        per_tile_dir = t / len(files)
    print(f"\n## {label}: {len(files)} tiles, median of {repeats}")
    keys = [k for k in rows[0] if k != "file"]
    print("| file | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for r in rows:
        print(f"| {r['file']} | " + " | ".join(
            f"{v * 1000:.1f}" if k.endswith("_ms") else str(v)
            for k, v in r.items() if k != "file") + " |")
    print(f"rasterize_dir (n_jobs=1, overwrite, incl. GeoTIFF write): "
          f"{per_tile_dir * 1000:.1f} ms per tile")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--pdg", default=str(Path(__file__).resolve().parents[2] / "shared"
                                         / "pdg-minimal-example"))
    ap.add_argument("--dense-spacing", type=float, default=9.0,
                    help="polygon spacing (m) of the dense tile (9 m: ~25k polygons)")
    args = ap.parse_args()
    from fastraster.pipelines.staged import warm_up
    from fastraster.sample import make_sample

    warm_up()
    pdg = Path(args.pdg) / "staged"
    if pdg.is_dir():
        bench_files("PDG example (real IWP, no staging columns)",
                    sorted(str(p) for p in pdg.rglob("*.gpkg")), args.repeats)
    else:
        print(f"(no PDG example at {pdg}; skipped)")
    with tempfile.TemporaryDirectory() as tmp:
        files = make_sample(Path(tmp) / "staged", tiles=((1524, 910, 13),),
                            spacing_m=args.dense_spacing, fill=1.0, vertices=30, seed=0)
        bench_files(f"dense synthetic tile (spacing {args.dense_spacing} m, ~30 vertices)",
                    files, args.repeats)


if __name__ == "__main__":
    main()
