"""Page faults and time per tile in a worker's loop of tiles, with and without malloc tuning.

    python benchmarks/malloc_faults.py [--tiles 30] [--rounds 3]

Each configuration runs in a fresh process (malloc settings are per process, fixed once
buffers exist): a loop of ``rasterize_one`` on the dense tile, as a worker of
``rasterize_dir`` runs it. Prints median ms per tile, minor page faults per tile and the
phases. Rounds alternate the configurations so they share the machine's state.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, os, resource, statistics, sys, tempfile, time
sys.path.insert(0, {bench!r})
from common import dense_tile
from fastraster.pipeline import _Settings, parse_tile_path, rasterize_one, warm_up
from fastraster.allocator import tune_allocator
from fastraster.stats import parse_stats
warm_up()
settings = _Settings(parse_stats(None), (256, 256), "float32", True, False, "repair", False)
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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    code = CHILD.format(bench=os.path.dirname(os.path.abspath(__file__)), tiles=args.tiles)
    configs = {"glibc defaults (FASTRASTER_TUNE_MALLOC=0)": "0", "tuned (default)": "1"}
    rows = {k: [] for k in configs}
    for _ in range(args.rounds):
        for name, flag in configs.items():
            env = {**os.environ, "FASTRASTER_TUNE_MALLOC": flag}
            out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                 capture_output=True, text=True).stdout
            rows[name].append(json.loads(out.strip().splitlines()[-1]))
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


if __name__ == "__main__":
    main()
