"""What the fault tolerance costs a run without faults: an earlier commit (before the
supervised executor) and the working tree, side by side in one process, turn by turn (ABBA).

    python benchmarks/supervision_overhead.py --rev 8d06375 [--tiles 48] [--repeats 7]

1. ``rasterize_dir`` end to end (``overwrite=True``, 2 loky workers, batches of 10) over a
   staged tree of ``--tiles`` small sample tiles: median wall time per run of each version.
   Both versions share one loky pool (same joblib arguments), warmed first.
2. Per-item dispatch: 4,000 no-op items through each version's ``run_tasks`` (2 workers,
   batches of 10; the earlier one takes a batch function, the tree an item function plus the
   journal, the watcher and the retry bookkeeping): microseconds per item.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def noop_batch(batch):
    return [{"path": b, "status": "ok"} for b in batch]


def noop_item(item):
    return {"path": item, "status": "ok"}


def main(argv=None):
    from side_by_side import export

    import fastraster
    from fastraster.execution.executor import run_tasks
    from fastraster.sample import make_sample

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rev", default="8d06375", help="the earlier commit")
    ap.add_argument("--tiles", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    side = int(args.tiles ** 0.5)
    tiles = [(1524 + i, 900 + j, 13) for i in range(side) for j in range(-(-args.tiles // side))]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        old = importlib.import_module(export(args.rev, tmp / "pkg"))
        staged = tmp / "staged"
        make_sample(staged, tiles=tiles[:args.tiles], spacing_m=30.0, seed=3)
        runs = {args.rev: old.rasterize_dir, "working tree": fastraster.rasterize_dir}
        times = {k: [] for k in runs}
        for r in range(args.repeats + 1):  # the first round warms the pool and kernels
            for k, fn in list(runs.items())[::1 if r % 2 else -1]:
                out = tmp / f"out-{k.replace(' ', '-')}"
                t = time.perf_counter()
                rep = fn(staged, out, n_jobs=2, batch_size=10, overwrite=True, progress=False)
                if r:
                    times[k].append(time.perf_counter() - t)
                assert rep.n("ok") == args.tiles, rep.summary_line()
                shutil.rmtree(out)
        a, b = (statistics.median(v) for v in times.values())
        print(f"rasterize_dir, {args.tiles} tiles, 2 workers, {args.repeats} alternating "
              f"runs: {args.rev} {a:.3f} s, working tree {b:.3f} s, ratio {b / a:.3f} "
              f"({1e3 * (b - a) / args.tiles:+.2f} ms per tile)")

        items = [f"i{i}" for i in range(4000)]
        old_run = importlib.import_module(old.__name__ + ".execution.executor").run_tasks
        contenders = {args.rev: lambda: list(old_run(noop_batch, items, batch_size=10,
                                                     n_jobs=2)),
                      "working tree": lambda: list(run_tasks(noop_item, items, batch_size=10,
                                                             n_jobs=2))}
        times = {k: [] for k in contenders}
        for r in range(args.repeats + 1):
            for k, fn in list(contenders.items())[::1 if r % 2 else -1]:
                t = time.perf_counter()
                assert len(fn()) == len(items)
                if r:
                    times[k].append(time.perf_counter() - t)
        a, b = (1e6 * statistics.median(v) / len(items) for v in times.values())
        print(f"dispatch, {len(items)} no-op items, 2 workers, batches of 10: {args.rev} "
              f"{a:.1f} us per item, working tree {b:.1f} us per item ({b - a:+.1f} us)")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
