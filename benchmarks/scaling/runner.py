"""Inputs and rounds: the sample or a subset of a staged tree, and one warm-up pass plus one
timed pass at a worker count, through the package's executor."""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import tempfile
import time
import warnings

from benchmarks.scaling.analysis import round_metrics
from benchmarks.scaling.probes import evict, machine_use, reset_peak_rss, system_snapshot

SAMPLE_ORIGIN = (1524, 910)  # z13 WorldCRS84Quad, the PDG example's tiles (Prudhoe Bay)


def ensure_sample(out_dir, n_tiles=25, spacing_m=14.0, seed=0) -> str:
    """Synthetic staged tiles (a block of ``n_tiles`` z13 tiles), generated once and reused."""
    from fastraster.sample import make_sample

    a = math.ceil(math.sqrt(n_tiles))
    b = math.ceil(n_tiles / a)
    tiles = [(SAMPLE_ORIGIN[0] + i, SAMPLE_ORIGIN[1] + j, 13)
             for i in range(a) for j in range(b)][:n_tiles]
    root = os.path.join(os.fspath(out_dir), "sample", f"staged-{n_tiles}t-{spacing_m:g}m-s{seed}")
    marker = os.path.join(root, ".complete")
    if not os.path.exists(marker):
        shutil.rmtree(root, ignore_errors=True)
        print(f"generating {n_tiles} sample tiles (spacing {spacing_m:g} m) in {root} ...",
              flush=True)
        make_sample(root, tiles=tiles, spacing_m=spacing_m, seed=seed)
        with open(marker, "w") as fh:
            fh.write(json.dumps({"tiles": tiles, "spacing_m": spacing_m, "seed": seed}))
    return root


def select_files(staged_dir, n, seed=0, tms=None, z=None):
    """``n`` staged files: a random subset, or every file reused cyclically when too few."""
    from fastraster.io.tilepaths import find_tiles

    files = [f for f in find_tiles(staged_dir, ".gpkg", tms, z) if f.tile is not None]
    if not files:
        raise SystemExit(f"error: no staged tiles (<TMS>/<z>/<x>/<y>.gpkg) below {staged_dir}")
    if n <= len(files):
        return random.Random(seed).sample(files, n), len(files)
    return [files[i % len(files)] for i in range(n)], len(files)


# ---------------------------------------------------------------------------------------------
# Rounds
# ---------------------------------------------------------------------------------------------


def _warm_task(job, out_path, settings, barrier_dir, n, timeout):
    """Warm-up: rasterize one file, then wait until ``n`` workers have done so (a barrier, so
    each of the ``n`` tasks runs on a different worker)."""
    import os
    import threading
    import time

    from fastraster.pipelines.staged import rasterize_one

    rec = rasterize_one(job, out_path, settings)
    key = f"{os.getpid()}-{threading.get_ident()}"
    open(os.path.join(barrier_dir, key), "w").close()
    deadline = time.monotonic() + timeout
    while len(os.listdir(barrier_dir)) < n and time.monotonic() < deadline:
        time.sleep(0.005)
    return {"pid": os.getpid(), "key": key, "arrived": len(os.listdir(barrier_dir)),
            "status": rec["status"], "error": rec["error"]}


@contextlib.contextmanager
def backend_session(backend: str, workers: int):
    """What a backend needs around a round: dask gets a local cluster of ``workers`` processes
    (unless a client is already running), ray gets registered with joblib."""
    if backend == "dask":
        import distributed

        try:
            distributed.get_client()
            yield  # an existing cluster decides the worker count
            return
        except ValueError:
            pass
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster, \
                distributed.Client(cluster):
            yield
    else:
        if backend == "ray":
            from ray.util.joblib import register_ray

            register_ray()
        yield



def options():
    """What every task of a round rasterizes with: default statistics, overwrite."""
    from fastraster.pipelines.options import RasterizeOptions

    return RasterizeOptions.create(overwrite=True)


def run_round(workers, repeat, files, options, *, backend="loky", batch_size=1,
              cold_cache=False, scratch=".", barrier_timeout=120.0) -> dict:
    """One warm-up pass and one timed pass of ``files`` at ``workers``; the round's metrics.

    Both passes go through one :class:`fastraster.execution.executor.Executor` (one pool),
    the timed one as :func:`~fastraster.execution.executor.run_tasks` of
    :func:`~fastraster.pipelines.staged.rasterize_job`, as ``rasterize_dir`` runs it.
    """
    from fastraster.execution.executor import Executor, run_tasks
    from fastraster.io.tilepaths import tile_path
    from fastraster.pipelines.staged import describe_job, rasterize_job

    round_dir = tempfile.mkdtemp(prefix=f"w{workers:02d}-r{repeat}-", dir=scratch)
    counts = {}
    jobs = []
    for f in files:  # a file used again gets its own output folder
        k = counts[f.path] = counts.get(f.path, -1) + 1
        jobs.append((f, tile_path(os.path.join(round_dir, f"c{k}"), f.tms, f.tile)))
    warm_jobs = [(files[i % len(files)],
                  tile_path(os.path.join(round_dir, "warm", str(i)), files[i % len(files)].tms,
                            files[i % len(files)].tile)) for i in range(workers)]
    barrier = os.path.join(round_dir, "barrier")
    os.makedirs(barrier)
    try:
        with backend_session(backend, workers), warnings.catch_warnings():
            warnings.simplefilter("default")
            with Executor(workers, backend) as executor:
                t = time.perf_counter()
                warm = list(executor.map_unordered(
                    _warm_task, [(j, o, options, barrier, workers, barrier_timeout)
                                 for j, o in warm_jobs]))
                warm_s = time.perf_counter() - t
                if cold_cache:
                    evict(sorted({f.path for f in files}))
                reset_peak_rss({w["pid"] for w in warm} | {os.getpid()})
                before = system_snapshot()
                t0 = time.perf_counter()
                recs = list(run_tasks(rasterize_job, jobs, (options,), batch_size=batch_size,
                                      executor=executor, describe=describe_job))
                wall = time.perf_counter() - t0
                after = system_snapshot()
    finally:
        shutil.rmtree(round_dir, ignore_errors=True)
    pids = {r["pid"] for r in recs}
    return round_metrics(workers, repeat, recs, wall, warm, warm_s, -(-len(jobs) // batch_size),
                         machine_use(before, after, pids))
