"""Page faults and time per tile in a worker's loop of tiles, with and without malloc tuning.

    python benchmarks/malloc_faults.py [--tiles 30] [--rounds 3] [--dir-tiles 8]

Each configuration runs in a fresh process (malloc settings are per process, fixed once
buffers exist), rounds alternate the configurations so they share the machine's state:

1. a loop of ``rasterize_one`` on the dense tile, as a worker of ``rasterize_dir`` runs it:
   median ms per tile, minor page faults per tile, the phases, peak RSS;
2. ``rasterize_dir`` in-process (``n_jobs=1``) and with 2 loky workers (``batch_size=1``)
   over a staged tree of ``--dir-tiles`` dense tiles (each its own synthetic polygons): wall
   time per tile of 3 passes after a first one that starts the workers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = r"""
import json, os, resource, statistics, sys, tempfile, time
sys.path.insert(0, {bench!r})
from common import dense_tile
from fastraster.execution.allocator import tune_allocator
from fastraster.io.tilepaths import parse_tile_path
from fastraster.pipelines.options import RasterizeOptions
from fastraster.pipelines.staged import rasterize_one, warm_up
warm_up()
settings = RasterizeOptions.create(overwrite=True)
job = parse_tile_path(dense_tile())
with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "x.tif")
    for _ in range(3):
        rasterize_one(job, out, settings)
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    ts, ph = [], {{"read_s": [], "compute_s": [], "write_s": []}}
    for _ in range({tiles}):
        t = time.perf_counter()
        rec = rasterize_one(job, out, settings)
        ts.append(time.perf_counter() - t)
        for k in ph:
            ph[k].append(rec[k])
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / {tiles}
print(json.dumps(dict(tuned=tune_allocator(), ms=1000 * statistics.median(ts), faults=faults,
                      **{{k: 1000 * statistics.median(v) for k, v in ph.items()}},
                      maxrss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""


DIR_CHILD = r"""
import json, sys, tempfile, time
from fastraster import rasterize_dir
with tempfile.TemporaryDirectory() as out:
    ts = []
    for _ in range(4):  # the first pass starts the workers: not counted
        t = time.perf_counter()
        rep = rasterize_dir({root!r}, out, n_jobs={n_jobs}, batch_size=1, overwrite=True,
                            progress=False, summary=False)
        ts.append(time.perf_counter() - t)
        assert rep.n("ok") == {n}, rep.summary_line()
print(json.dumps(dict(ms=[1000 * t / {n} for t in ts[1:]])))
"""


def dense_tree(n):
    """A staged tree of n dense z13 tiles (9 m cells, ~30 vertices; cached on disk)."""
    from common import DENSE_TILE

    from fastraster.sample import make_sample

    root = os.path.join(os.environ.get("FASTRASTER_BENCH_DIR", tempfile.gettempdir()),
                        f"fastraster-bench-tree-{n}")
    tiles = tuple((DENSE_TILE[0] + i % 4, DENSE_TILE[1] + i // 4, 13) for i in range(n))
    done = os.path.join(root, "complete")
    if not os.path.exists(done):
        make_sample(os.path.join(root, "staged"), tiles=tiles, spacing_m=9.0, fill=1.0,
                    vertices=30, seed=0)
        open(done, "w").close()
    return os.path.join(root, "staged")


CONFIGS = {"glibc defaults (FASTRASTER_TUNE_MALLOC=0)": "0", "tuned (default)": "1"}


def alternate(code, rounds):
    """Run ``code`` in a fresh process per configuration and round, alternating; the JSON
    each process prints last, per configuration."""
    rows = {k: [] for k in CONFIGS}
    for _ in range(rounds):
        for name, flag in CONFIGS.items():
            env = {**os.environ, "FASTRASTER_TUNE_MALLOC": flag}
            out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                 capture_output=True, text=True).stdout
            rows[name].append(json.loads(out.strip().splitlines()[-1]))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir-tiles", type=int, default=8)
    args = ap.parse_args(argv)
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    rows = alternate(CHILD.format(bench=here, tiles=args.tiles), args.rounds)
    print(f"\n{args.tiles} tiles per process, {args.rounds} processes per configuration\n")
    print("| malloc | ms per tile (each process) | minor faults per tile | read / compute / "
          "write ms | peak RSS MB |\n|---|---|---|---|---|")
    for name, rs in rows.items():
        ms = ", ".join(f"{r['ms']:.1f}" for r in rs)
        fl = ", ".join(f"{r['faults']:.0f}" for r in rs)
        ph = ", ".join(f"{r['read_s']:.1f} / {r['compute_s']:.1f} / {r['write_s']:.1f}"
                       for r in rs)
        rss = ", ".join(f"{r['maxrss_mb']:.0f}" for r in rs)
        print(f"| {name} | {ms} | {fl} | {ph} | {rss} |")
    if args.dir_tiles:
        root = dense_tree(args.dir_tiles)
        print(f"\nrasterize_dir over {args.dir_tiles} dense tiles, {args.rounds} processes x 3 "
              "passes per configuration\n")
        print("| workers | malloc | wall ms per tile: median | min | max |\n|---|---|---|---|---|")
        for n_jobs in (1, 2):
            code = DIR_CHILD.format(root=root, n=args.dir_tiles, n_jobs=n_jobs)
            for name, rs in alternate(code, args.rounds).items():
                ms = [t for r in rs for t in r["ms"]]
                print(f"| {n_jobs} | {name} | {statistics.median(ms):.1f} | {min(ms):.1f} | "
                      f"{max(ms):.1f} |")

if __name__ == "__main__":
    main()
