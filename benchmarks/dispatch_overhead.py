"""What does handing tiles to workers cost, per tile, under loky, threading and dask?

    python benchmarks/dispatch_overhead.py [--repeats 3] [--tiny 400] [--real 64]
        [--batch-sizes 1,5,10,50] [--backends loky,threading,dask] [--data DIR]
    python benchmarks/dispatch_overhead.py --memory [--memory-tiles 2000] [--synthetic 100000]

Dispatch mode. Two staged trees from ``fastraster.sample.make_sample`` (generated once into
``--data``): *tiny* tiles (60 m cells, ~330 polygons, written 32 x 32) and *real-size* tiles
(15 m cells, ~5,000 polygons, 256 x 256). For every backend and batch size, ``rasterize_dir``
runs the whole tree at ``n_jobs=2`` (dask: a ``LocalCluster`` of 2 worker processes x 1
thread), ``--repeats`` times, the contenders interleaved (order rotated every round) because
the machine is shared; medians are reported. Per tile:

* ``wall``: wall time of the run / tiles; ``serial``: the same with ``n_jobs=1`` (in this
  process: no workers, no dispatch), measured in the same rounds;
* ``wall overhead`` = wall - serial / 2: what the 2-worker run loses against a perfect 2x
  speed-up (dispatch, result transfer, idle workers at the end, the parent's own CPU use);
* ``CPU``: CPU time of this process and all its descendants (workers, nannies) / tiles;
  ``CPU overhead`` = CPU - serial CPU: the extra work parallel dispatch costs. On a shared,
  loaded machine CPU time is much steadier than wall time;
* ``noop``: the pure dispatch cost: tasks that do nothing but return as many report-sized
  records as a batch would, through the same ``parallel_unordered`` path, per record.

Memory mode. The parent's resident memory (``/proc/self/status`` VmRSS, sampled every 20 ms)
while ``rasterize_dir`` runs (1) ``--memory-tiles`` real tiny tiles (60 m, 16 x 16 px) on loky
and (2) ``--synthetic`` cheap fake tiles (threading backend, in-process fakes of the file listing
and of ``rasterize_one`` returning a copy of a real record): (a) through the dispatch loop
alone, every record dropped as it arrives, (b) through ``rasterize_dir(keep_records=False)``
and (c) through ``rasterize_dir`` keeping every record (the default).
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

TMS = "WorldCRS84Quad"


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def staged_tree(root: Path, n_tiles: int, spacing_m: float, block: int) -> Path:
    """``n_tiles`` z13 tiles below ``root`` (generated in ``block`` x ``block`` pieces)."""
    from fastraster.sample import make_sample

    have = sorted(root.rglob("*.gpkg")) if root.is_dir() else []
    if len(have) >= n_tiles:
        return root
    cols = max(block, int(n_tiles ** 0.5))
    tiles = [(1500 + i % cols, 880 + i // cols, 13) for i in range(n_tiles)]
    groups: dict = {}
    for t in tiles:
        groups.setdefault(((t[0] - 1500) // block, (t[1] - 880) // block), []).append(t)
    print(f"generating {n_tiles} staged tiles ({spacing_m:g} m) in {root} ...", file=sys.stderr)
    for seed, key in enumerate(sorted(groups)):
        make_sample(root, tiles=tuple(groups[key]), spacing_m=spacing_m, seed=seed)
    return root


def subset(root: Path, n: int, dest: Path) -> Path:
    """A tree of the first ``n`` files of ``root`` (symlinks), so runs see exactly ``n``."""
    files = sorted(root.rglob("*.gpkg"))[:n]
    if dest.is_dir() and len(list(dest.rglob("*.gpkg"))) == n:
        return dest
    for f in files:
        link = dest / f.relative_to(root)
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(f)
    return dest


# ---------------------------------------------------------------------------------------------
# Dispatch overhead
# ---------------------------------------------------------------------------------------------


def fake_batch(n, template):
    """A no-op task: ``n`` report-sized records back, nothing done."""
    return [dict(template, path=f"{template['path']}.{i}") for i in range(n)]


def template_record(staged, tile_size) -> dict:
    import fastraster

    with tempfile.TemporaryDirectory() as out:
        rep = fastraster.rasterize_dir(staged, out, progress=False, tile_size=tile_size,
                                       summary=False)
        return next(r for r in rep if r["status"] == "ok")


def tree_cpu() -> float:
    """CPU seconds (user + system) used so far by this process and all its descendants (loky
    workers, dask nannies and workers; a LocalCluster's scheduler runs in this process)."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for p in [me, *me.children(recursive=True)]:
        try:
            c = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += c.user + c.system
    return total


def time_run(staged, out, backend, n_jobs, batch_size, tile_size) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of the process tree, tiles) of one rasterize_dir run."""
    import fastraster

    c, t = tree_cpu(), time.perf_counter()
    rep = fastraster.rasterize_dir(staged, out, backend=backend, n_jobs=n_jobs,
                                   batch_size=batch_size, tile_size=tile_size, overwrite=True,
                                   progress=False, summary=False)
    wall, cpu = time.perf_counter() - t, tree_cpu() - c
    assert rep.n("ok") == len(rep), rep.errors[:1]
    return wall, cpu, len(rep)


def time_noop(backend, batch_size, n_records, template) -> tuple[float, float]:
    """(wall, CPU) seconds per record of no-op tasks through ``parallel_unordered``."""
    from fastraster.execution.executor import parallel_unordered

    n_tasks = max(n_records // batch_size, 4)
    c, t = tree_cpu(), time.perf_counter()
    got = sum(len(b) for b in parallel_unordered(
        fake_batch, [(batch_size, template)] * n_tasks, n_jobs=2, backend=backend))
    assert got == n_tasks * batch_size
    return (time.perf_counter() - t) / got, (tree_cpu() - c) / got


def dispatch(args):
    import contextlib

    data = Path(args.data)
    sets = {"tiny": (staged_tree(data / "tiny60", args.tiny, 60.0, 10), args.tiny, 32),
            "real": (staged_tree(data / "real15", args.real, 15.0, 4), args.real, 256)}
    sets = {k: (subset(root, n, data / f"{k}-{n}"), n, ts) for k, (root, n, ts) in sets.items()}
    backends = args.backends.split(",")
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    client = cluster = None
    if "dask" in backends:
        from dask.distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster, set_as_default=False)
    ctx = {b: (client.as_current if b == "dask" else contextlib.nullcontext) for b in backends}
    out = Path(tempfile.mkdtemp(prefix="fastraster-dispatch-"))
    try:
        _dispatch_rounds(args, sets, backends, sizes, ctx, out)
    finally:
        shutil.rmtree(out, ignore_errors=True)
        if client is not None:
            client.close()
            cluster.close()


def _dispatch_rounds(args, sets, backends, sizes, ctx, out):
    templates = {k: template_record(root, ts) for k, (root, n, ts) in sets.items()}
    for b in backends:  # untimed: start workers, load kernels in them
        with ctx[b]():
            time_run(sets["tiny"][0], out / "warm", b, 2, 1, 32)
    results: dict = {}
    for rnd in range(args.repeats):
        for name, (root, n, ts) in sets.items():
            wall, cpu, _ = time_run(root, out / "s", "loky", 1, 10, ts)
            results.setdefault((name, "serial", 0), []).append((wall / n, cpu / n))
            for k, bs in enumerate(sizes):
                order = backends[(rnd + k) % len(backends):] + backends[:(rnd + k) % len(backends)]
                for b in order:
                    with ctx[b]():
                        wall, cpu, _ = time_run(root, out / b, b, 2, bs, ts)
                        noop = time_noop(b, bs, args.noop_records, templates[name])
                    results.setdefault((name, b, bs), []).append((wall / n, cpu / n, *noop))
        print(f"round {rnd + 1}/{args.repeats} done", file=sys.stderr)

    print(f"\nPer tile, ms, median of {args.repeats} rounds; n_jobs=2 on {os.cpu_count()} "
          f"cores (load average {os.getloadavg()[0]:.1f} at the end). Wall overhead = wall - "
          "serial/2; CPU overhead = CPU of the process tree - serial CPU; noop = tasks "
          "returning records and doing nothing, per record.\n")
    print("| tiles | backend | batch | wall | wall overhead | CPU | CPU overhead | "
          "noop wall | noop CPU |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, (_, n, ts) in sets.items():
        s_wall, s_cpu = (statistics.median(r[i] for r in results[(name, "serial", 0)])
                         for i in (0, 1))
        print(f"| {name} ({n} x {ts}px) | serial (n_jobs=1) | - | {1e3 * s_wall:.2f} | - | "
              f"{1e3 * s_cpu:.2f} | - | - | - |")
        for b in backends:
            for bs in sizes:
                wall, cpu, n_wall, n_cpu = (statistics.median(r[i] for r in results[(name, b, bs)])
                                            for i in range(4))
                print(f"| {name} | {b} | {bs} | {1e3 * wall:.2f} | "
                      f"{1e3 * (wall - s_wall / 2):+.2f} | {1e3 * cpu:.2f} | "
                      f"{1e3 * (cpu - s_cpu):+.2f} | {1e3 * n_wall:.3f} | {1e3 * n_cpu:.3f} |")


# ---------------------------------------------------------------------------------------------
# Parent memory
# ---------------------------------------------------------------------------------------------


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Peak:
    """Peak RSS of this process while the ``with`` block runs (sampled)."""

    def __enter__(self):
        self.start = self.peak = rss_mb()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.end = rss_mb()
        self.peak = max(self.peak, self.end)


def deep_size(obj) -> int:
    seen, stack, total = set(), [obj], 0
    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        total += sys.getsizeof(o)
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, (list, tuple, set, frozenset)):
            stack.extend(o)
        elif hasattr(o, "__dict__"):
            stack.append(vars(o))
    return total


def memory(args):
    data = Path(args.data)
    n = args.memory_tiles
    staged = subset(staged_tree(data / "tiny60", n, 60.0, 10), n, data / f"tiny-{n}")
    out = Path(tempfile.mkdtemp(prefix="fastraster-memory-"))
    try:
        _memory(args, data, staged, out)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _memory(args, data, staged, out):
    import fastraster
    import fastraster.pipelines.staged as pl
    from fastraster.execution.executor import parallel_unordered
    from fastraster.io.tilepaths import TileFile, find_tiles
    from fastraster.pipelines.options import RasterizeOptions

    # Start the workers on a few tiles only: memory freed after a big run would be reused.
    fastraster.rasterize_dir(subset(staged, 20, data / "tiny-20"), out / "warm", n_jobs=2,
                             tile_size=16, progress=False)
    gc.collect()
    with Peak() as p:
        rep = fastraster.rasterize_dir(staged, out / "real", n_jobs=2, tile_size=16,
                                       overwrite=True, progress=False)
    per_rec = deep_size(list(rep)) / len(rep)
    listing = deep_size(find_tiles(staged)) / len(rep)
    print(f"\n(1) {len(rep)} real tiny tiles, loky n_jobs=2: parent RSS {p.start:.0f} MB before, "
          f"peak {p.peak:.0f} MB, {p.end:.0f} MB after with the report held "
          f"(+{p.end - p.start:.1f} MB, {1e6 * (p.end - p.start) / len(rep):.0f} B/tile); "
          f"deep size {per_rec:.0f} B per record, {listing:.0f} B per listed input file")
    template = dict(rep[0])
    del rep
    gc.collect()

    # (2) Synthetic: the same loop, cheap fake tiles (threading backend, fakes in-process).
    N = args.synthetic
    fake_files = [TileFile(f"/data/staged/{TMS}/13/{100000 + i // 1000}/{i % 1000}.gpkg",
                                TMS, (100000 + i // 1000, i % 1000, 13)) for i in range(N)]

    def fake_one(job, out_path, settings):
        return dict(template, path=job.path, tile=job.tile, output=out_path,
                    summary=[dict(b) for b in template["summary"]])

    real_find, real_one = pl.find_tiles, pl.rasterize_one
    pl.find_tiles = lambda *a, **k: list(fake_files)
    pl.rasterize_one = fake_one
    try:
        gc.collect()
        # Least memory first: what a run frees is reused by the next one without new RSS.
        settings = RasterizeOptions.create(tile_size=16, validate="none")
        jobs = [(f, "") for f in fake_files]
        batches = [jobs[i:i + 10] for i in range(0, N, 10)]
        with Peak() as p:
            count = 0
            for batch in parallel_unordered(pl.rasterize_batch, [(b, settings) for b in batches],
                                            n_jobs=2, backend="threading"):
                count += len(batch)
        print(f"(2a) {count} synthetic tiles through the loop alone, records dropped on "
              f"arrival: parent RSS {p.start:.0f} MB before, peak {p.peak:.0f} MB "
              f"(+{p.peak - p.start:.1f} MB)")
        del jobs, batches
        gc.collect()
        for keep in (False, True):
            kw = {} if keep else {"keep_records": False}
            if not keep and "keep_records" not in pl.rasterize_dir.__code__.co_varnames:
                continue
            with Peak() as p:
                rep = fastraster.rasterize_dir(out, out / f"synthetic-{keep}", n_jobs=2,
                                               backend="threading", batch_size=10,
                                               progress=False, **kw)
            print(f"(2{'c' if keep else 'b'}) {N} synthetic tiles, rasterize_dir(keep_records="
                  f"{keep}): parent RSS {p.start:.0f} MB before, peak {p.peak:.0f} MB "
                  f"(+{p.peak - p.start:.0f} MB, {1e6 * (p.peak - p.start) / N:.0f} B/tile), "
                  f"{p.end:.0f} MB after with the report held ({len(rep)} records kept; "
                  f"+{1e6 * (p.end - p.start) / N:.0f} B/tile)")
            del rep
            gc.collect()
    finally:
        pl.find_tiles, pl.rasterize_one = real_find, real_one


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tiny", type=int, default=400, help="tiny tiles (60 m cells)")
    ap.add_argument("--real", type=int, default=64, help="real-size tiles (15 m cells)")
    ap.add_argument("--batch-sizes", default="1,5,10,50")
    ap.add_argument("--backends", default="loky,threading,dask")
    ap.add_argument("--noop-records", type=int, default=2000)
    ap.add_argument("--data", default=os.path.join(tempfile.gettempdir(),
                                                   "fastraster-dispatch-data"))
    ap.add_argument("--memory", action="store_true", help="measure parent memory instead")
    ap.add_argument("--memory-tiles", type=int, default=2000)
    ap.add_argument("--synthetic", type=int, default=100_000)
    args = ap.parse_args(argv)
    from fastraster.pipelines.staged import warm_up

    warm_up()
    (memory if args.memory else dispatch)(args)


if __name__ == "__main__":
    main()
