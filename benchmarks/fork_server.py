"""The first ``rasterize_dir`` call of a process, plain loky against loky with
``fastraster.use_fork_server()`` (docs/scaling.md, "Worker start-up").

    python benchmarks/fork_server.py [--runs 5] [--tiles 8]

Each run is a fresh interpreter (the start method is per process) that rasterizes the same
small staged tiles three times (``overwrite=True``), timing each call: the first pays the
pool's start-up (and, with the fork server, the server's preload), the second reuses the
workers, the third has one worker die (``FASTRASTER_CHAOS``), so the pool is replaced and
the tile retried in a fresh worker.
Prints medians per (mode, n_jobs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = """
import json, sys, time
import fastraster
if __name__ == "__main__":
    mode, n_jobs, staged, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    if mode == "fork server":
        fastraster.use_fork_server()
    times = []
    for call in range(3):
        if call == 2:  # one worker dies on its first try of one tile: a fresh pool, a retry
            import os
            os.environ["FASTRASTER_CHAOS"] = "1524/910=exit3@1"
        t = time.perf_counter()
        fastraster.rasterize_dir(staged, out, n_jobs=n_jobs, batch_size=1, overwrite=True,
                                 progress=False)
        times.append(time.perf_counter() - t)
    print(json.dumps(times))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tiles", type=int, default=8)
    args = ap.parse_args()
    from fastraster.sample import make_sample

    tmp = tempfile.mkdtemp(prefix="fastraster-forkserver-")
    staged = os.path.join(tmp, "staged")
    side = int(args.tiles ** 0.5 + 0.999)
    tiles = [(1524 + i % side, 910 + i // side, 13) for i in range(args.tiles)]
    make_sample(staged, tiles=tiles, spacing_m=40.0, seed=1)
    script = os.path.join(tmp, "child.py")
    with open(script, "w") as fh:
        fh.write(CHILD)
    # Python 3.11's fork server takes its sys.path from PYTHONPATH.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [REPO, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    print(f"load average {os.getloadavg()[0]:.2f}; {args.tiles} tiles, {args.runs} runs")
    print("| mode | n_jobs | first call s | second call s | call with a worker death s |\n"
          "|---|---:|---:|---:|---:|")
    results = {}
    for n_jobs in (2, 4):
        for _ in range(args.runs):  # the modes alternate within each run
            for mode in ("loky", "fork server"):
                out = os.path.join(tmp, "out")
                proc = subprocess.run([sys.executable, script, mode, str(n_jobs), staged, out],
                                      capture_output=True, text=True, env=env, check=True)
                results.setdefault((mode, n_jobs), []).append(
                    json.loads(proc.stdout.splitlines()[-1]))
        for mode in ("loky", "fork server"):
            runs = results[mode, n_jobs]
            first = statistics.median(r[0] for r in runs)
            second = statistics.median(r[1] for r in runs)
            death = statistics.median(r[2] for r in runs)
            print(f"| {mode} | {n_jobs} | {first:.2f} | {second:.2f} | {death:.2f} |")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
