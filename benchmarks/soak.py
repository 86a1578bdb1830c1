"""Memory under a long run: 20,000 staged z15 tiles through ``rasterize_dir(keep_records=False)``
with the parent's and the workers' resident memory sampled over time.

    python benchmarks/soak.py [--tiles 20000] [--templates 200] [--workers 2]
                              [--dir /tmp/fastraster-soak] [--interval 1]

The staged tree is generated once (kept in ``--dir``): ``--templates`` distinct tiles of
IWP-like polygons (``fastraster.sample.ice_wedge_polygons``, spacing 20 m, a block of z15
tiles), each then copied under many tile paths of a 160-column block of z15 tiles with its
polygons and staging centroids moved into the tile it stands for (a copy of the template
GeoPackage whose geometry blobs and centroid columns are rewritten with sqlite3: ~2 ms a file
instead of ~10 ms for a GDAL write), so that every tile's polygons lie in that tile.

A sampler thread reads ``VmRSS`` of the parent and of each of its child processes (the loky
workers; the resource tracker is left out) from ``/proc`` every ``--interval`` seconds. The
report: tiles/s, the parent's and the workers' RSS at 10 % of the run and at its end (the
growth between them), their maxima, and the run's summary line; ``--csv`` writes the samples.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import struct
import sys
import threading
import time
from pathlib import Path

import numpy as np

TMS = "WorldCRS84Quad"
Z = 15
#: The block of target tiles (z15, northern Alaska) and of the templates.
X0, Y0, COLUMNS = 2000, 1500, 160
TEMPLATE_X0, TEMPLATE_Y0, TEMPLATE_COLUMNS = 1000, 1400, 20


def _rss_kb(pid) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _children(pid) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                stat = fh.read()
            with open(f"/proc/{d}/cmdline", "rb") as fh:
                cmd = fh.read()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"resource_tracker" not in cmd:
            out.append(int(d))
    return out


# ---------------------------------------------------------------------------------------------
# The staged tree
# ---------------------------------------------------------------------------------------------


def _templates(folder: Path, n: int) -> list[tuple]:
    """``n`` template GeoPackages (no spatial index, so sqlite3 can rewrite them)."""
    import pyogrio.raw
    import shapely

    from fastraster.io.tilepaths import tile_path
    from fastraster.model.grid import TileGrid
    from fastraster.sample import ice_wedge_polygons, tiles_bounds

    tiles = [(TEMPLATE_X0 + i % TEMPLATE_COLUMNS, TEMPLATE_Y0 + i // TEMPLATE_COLUMNS, Z)
             for i in range(n)]
    geoms = np.asarray(ice_wedge_polygons(tiles_bounds(tiles, TMS, margin=0.0005),
                                          spacing_m=20.0, seed=5), dtype=object)
    cent = shapely.centroid(geoms)
    cx, cy = shapely.get_x(cent), shapely.get_y(cent)
    tree = shapely.STRtree(geoms)
    out = []
    for tile in tiles:
        path = tile_path(folder, TMS, tile, ".gpkg")
        if not os.path.exists(path):
            g = TileGrid.from_tile(tile, TMS)
            sel = np.sort(tree.query(shapely.box(g.left, g.bottom, g.right, g.top),
                                     predicate="intersects"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            pyogrio.raw.write(path, shapely.to_wkb(geoms[sel]), [cx[sel], cy[sel]],
                              ["staging_centroid_x", "staging_centroid_y"], driver="GPKG",
                              geometry_type="Polygon", crs="OGC:CRS84", layer="tile",
                              layer_options={"SPATIAL_INDEX": "NO"})
        out.append((tile, path))
    return out


def _gpkg_blob(wkb: bytes) -> bytes:
    """A GeoPackage geometry blob without envelope (little-endian header, SRS 4326)."""
    return b"GP\x00\x01" + struct.pack("<i", 4326) + wkb


def _place(jobs, template_data):
    """Write each ``(target tile, template index, path)``: the template's polygons moved."""
    import shapely

    from fastraster.model.grid import TileGrid

    for target, k, path in jobs:
        if os.path.exists(path):
            continue
        (tile, src), (fids, geoms, cx, cy) = template_data[k]
        a, b = TileGrid.from_tile(tile, TMS), TileGrid.from_tile(target, TMS)
        dx, dy = b.left - a.left, b.top - a.top
        moved = shapely.transform(geoms, lambda c, dx=dx, dy=dy: c + (dx, dy))
        blobs = [_gpkg_blob(w) for w in shapely.to_wkb(moved)]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.part"
        shutil.copyfile(src, tmp)
        con = sqlite3.connect(tmp)
        con.executemany('UPDATE "tile" SET geom = ?, staging_centroid_x = ?, '
                        'staging_centroid_y = ? WHERE fid = ?',
                        zip(blobs, (cx + dx).tolist(), (cy + dy).tolist(), fids.tolist()))
        con.commit()
        con.close()
        os.replace(tmp, path)


def make_tree(root: Path, n_tiles: int, n_templates: int, n_jobs: int) -> Path:
    import pyogrio
    from joblib import Parallel, delayed

    from fastraster.io.tilepaths import tile_path

    staged = root / f"staged-{n_tiles}-{n_templates}"
    templates = _templates(root / f"templates-{n_templates}", n_templates)
    data = []
    for tile, path in templates:
        df = pyogrio.read_dataframe(path, fid_as_index=True)
        data.append(((tile, path), (df.index.to_numpy(), df.geometry.to_numpy(),
                                    df["staging_centroid_x"].to_numpy(),
                                    df["staging_centroid_y"].to_numpy())))
    targets = [(X0 + i % COLUMNS, Y0 + i // COLUMNS, Z) for i in range(n_tiles)]
    jobs = [(t, i % n_templates, tile_path(staged, TMS, t, ".gpkg"))
            for i, t in enumerate(targets)]
    chunks = [jobs[i:i + 500] for i in range(0, len(jobs), 500)]
    Parallel(n_jobs=n_jobs)(delayed(_place)(c, data) for c in chunks)
    return staged


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiles", type=int, default=20000)
    ap.add_argument("--templates", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--dir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                                  "fastraster-soak"))
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--csv", default=None, help="write the samples here")
    ap.add_argument("--resume", action="store_true",
                    help="then run again over the same output (every tile skipped)")
    args = ap.parse_args(argv)

    import fastraster

    root = Path(args.dir)
    t0 = time.perf_counter()
    staged = make_tree(root, args.tiles, args.templates, args.workers)
    print(f"staged tree: {args.tiles} tiles ({args.templates} templates) in {staged}, "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    out = root / "out"
    shutil.rmtree(out, ignore_errors=True)

    runs = ["first run"] + (["resume (every tile skipped)"] if args.resume else [])
    for label in runs:
        print(f"-- {label}")
        measured_run(fastraster, staged, out, args)


def measured_run(fastraster, staged, out, args):
    """One ``rasterize_dir(keep_records=False)`` over the tree, the parent's and workers' RSS
    sampled every ``args.interval`` s; prints the growth from 10 % of the run to its end."""
    samples = []  # (seconds, parent kB, [worker kB, ...])
    stop = threading.Event()
    me = os.getpid()

    def sample():
        start = time.perf_counter()
        while not stop.is_set():
            workers = [r for r in (_rss_kb(p) for p in _children(me)) if r]
            samples.append((time.perf_counter() - start, _rss_kb(me), workers))
            stop.wait(args.interval)

    sampler = threading.Thread(target=sample, daemon=True)
    t0 = time.perf_counter()
    sampler.start()
    report = fastraster.rasterize_dir(staged, out, n_jobs=args.workers,
                                      batch_size=args.batch_size, keep_records=False,
                                      progress=False)
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    print(report.summary_line())
    assert report.n("ok") + report.n("skipped") == args.tiles, report.summary_line()

    def at(fraction):
        """The sample nearest ``fraction`` of the run's time (with workers up)."""
        usable = [s for s in samples if s[2]]
        return min(usable, key=lambda s: abs(s[0] - fraction * wall))

    early, late = at(0.1), at(1.0)
    peak_parent = max(s[1] for s in samples)
    peak_worker = max(max(s[2]) for s in samples if s[2])
    mb = 1 / 1024
    print(f"{args.tiles} tiles in {wall:.1f} s ({args.tiles / wall:.0f} tiles/s), "
          f"{len(samples)} samples every {args.interval:g} s")
    print(f"parent RSS: {early[1] * mb:.1f} MB at 10 % ({early[0]:.0f} s), "
          f"{late[1] * mb:.1f} MB at the end: {(late[1] - early[1]) * mb:+.1f} MB; "
          f"max {peak_parent * mb:.1f} MB")
    print(f"worker RSS (each): {', '.join(f'{w * mb:.1f}' for w in early[2])} MB at 10 %, "
          f"{', '.join(f'{w * mb:.1f}' for w in late[2])} MB at the end: "
          f"{(max(late[2]) - max(early[2])) * mb:+.1f} MB (largest); max {peak_worker * mb:.1f}"
          " MB")
    if args.csv:
        with open(args.csv, "a") as fh:
            fh.write("seconds,parent_kb,worker_kb\n")
            for t, p, w in samples:
                fh.write(f"{t:.2f},{p},{' '.join(map(str, w))}\n")


if __name__ == "__main__":
    sys.exit(main())
