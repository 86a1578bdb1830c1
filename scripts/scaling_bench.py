#!/usr/bin/env python
"""Is a fastraster run CPU-bound, I/O-bound or overhead-bound?  Time it at several worker counts.

    python scripts/scaling_bench.py [STAGED_DIR] --workers 1,2,4,8,11,15 --files 100 \\
        --repeats 3 --backend loky --out scaling-results [--cold-cache]

Without STAGED_DIR, synthetic staged tiles from ``fastraster.sample.make_sample`` are generated
once into ``<out>/sample/`` and reused. A subset of ``--files`` staged files (random, fixed
``--seed``; files are reused cyclically when the tree has fewer) is rasterized with
``fastraster.pipeline.rasterize_one`` through joblib at each worker count, ``--repeats`` times,
the worker counts interleaved (serpentine order 1,2,4,4,2,1,...) so slow drifts of a shared
machine spread over all of them; medians are reported.

Each round is preceded by an untimed warm-up pass in which every worker rasterizes one file and
then waits at a barrier until all workers have checked in, so worker start-up, imports and the
numba cache load are never timed (joblib's loky executor is resized, i.e. workers are killed
or started, whenever the worker count changes). ``--cold-cache`` then evicts the inputs from
the page cache (``posix_fadvise(POSIX_FADV_DONTNEED)``) right before the timed part.

Inside each task, ``rasterize_one`` measures wall and thread-CPU time of read, compute and
write and the bytes read. Around each round, ``/proc`` gives the CPU time of this process tree
and of the whole machine (so the load of *other* processes on a shared machine), iowait, steal,
the run-queue wait of the workers' threads (time runnable but without a core), their peak RSS
(VmHWM, reset before the round) and the bytes this process tree read from storage.

Outputs in ``--out``: ``points.csv`` (one row per worker count, medians), ``rounds.csv`` (every
timed round), ``points.json`` (both, plus machine, settings, Amdahl fit and verdict) and
``scaling.png``; the verdict line and a table are printed. See docs/scaling.md.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
import warnings

#: A shared server: never more workers than this.
MAX_WORKERS = 15
#: Tasks whose thread is on the CPU less than this fraction of their wall time (at 1 worker)
#: are waiting for something else: I/O-bound.
UTIL_IO = 0.6
#: Workers inside tasks less than this fraction of (workers x wall) at a worker count up to the
#: core count: dispatch, serialization or idling dominates: overhead-bound.
OCCUPANCY_MIN = 0.5
#: Other processes using more than this many cores during a round distort it.
LOAD_THRESHOLD = 0.5
PHASES = ("read", "compute", "write")
SAMPLE_ORIGIN = (1524, 910)  # z13 WorldCRS84Quad, the PDG example's tiles (Prudhoe Bay)


# ---------------------------------------------------------------------------------------------
# Pure functions: Amdahl, Karp-Flatt, verdict
# ---------------------------------------------------------------------------------------------


def amdahl_speedup(s: float, w) -> float:
    """Amdahl's law: speedup at ``w`` workers for serial fraction ``s``."""
    return 1.0 / (s + (1.0 - s) / w)


def karp_flatt(speedup: float, w: int) -> float | None:
    """Karp-Flatt experimentally determined serial fraction ``(1/S - 1/w) / (1 - 1/w)``."""
    if w <= 1 or not speedup or not math.isfinite(speedup):
        return None
    return (1.0 / speedup - 1.0 / w) / (1.0 - 1.0 / w)


def amdahl_fit(workers, speedups) -> tuple[float | None, float | None]:
    """Least-squares serial fraction ``s`` in [0, 1] of ``speedup(w) = 1/(s + (1-s)/w)``.

    Returns ``(s, rms residual)``; ``(None, None)`` without a point at ``w > 1``.
    """
    pairs = [(float(w), float(sp)) for w, sp in zip(workers, speedups)
             if sp is not None and math.isfinite(sp)]
    if not any(w > 1 for w, _ in pairs):
        return None, None

    def sse(s):
        return sum((sp - amdahl_speedup(s, w)) ** 2 for w, sp in pairs)

    lo, hi = 0.0, 1.0
    for _ in range(4):  # grid, then zoom in around the best grid point
        step = (hi - lo) / 200
        grid = [lo + i * step for i in range(201)]
        best = min(grid, key=sse)
        lo, hi = max(0.0, best - step), min(1.0, best + step)
    return best, math.sqrt(sse(best) / len(pairs))


def _fmt_list(values, fmt="{:.2f}"):
    return ", ".join("-" if v is None else fmt.format(v) for v in values)


def _at(points, w):
    return next((p for p in points if p["workers"] == w), None)


def judged_points(points, cores: int):
    """The points the verdict uses, and the cores they had.

    Points whose median round was distorted by other processes (``loaded``) are left out
    while the 1-worker point and at least one other are clean; otherwise all points are used
    with the cores left free by the median load of other processes (``others_cores``).
    """
    clean = [p for p in points if not p.get("loaded")]
    p1 = _at(points, 1)
    if p1 is not None and not p1.get("loaded") and len(clean) >= 2:
        return clean, cores
    others = [p["others_cores"] for p in points if p.get("others_cores") is not None]
    if not others or not any(p.get("loaded") for p in points):
        return list(points), cores
    return list(points), max(1, min(cores, round(cores - statistics.median(others))))


def classify(points, cores: int, serial_fraction: float | None = None,
             available: int | None = None):
    """Verdict ("CPU-bound", "I/O-bound" or "overhead-bound"), a one-line reason, evidence.

    ``points``: one dict per worker count (``workers`` 1 required) with ``speedup``,
    ``efficiency``, ``cpu_utilisation`` (thread CPU / wall of the read, compute and write
    phases), ``occupancy`` (task wall / (workers x wall)), optionally ``cores_busy``,
    ``dispatch_cores``, ``mean_task_s``, and the per-task means ``mean_<phase>_s`` and
    ``mean_<phase>_cpu_s`` for read, compute, write (and ``mean_other_s``). ``available``:
    cores not taken by other processes (default ``cores``).

    Rules, in order (thresholds UTIL_IO, OCCUPANCY_MIN):

    1. overhead-bound: workers spend less than OCCUPANCY_MIN of their time inside tasks at
       some count <= available cores, or the parent process alone keeps 0.8 of a core busy
       dispatching (pickling, result handling), or, with >= 2 available cores, the speedup
       stays below 1 at every worker count > 1;
    2. I/O-bound: at 1 worker the tasks' threads wait for I/O (off the CPU and not queued for
       a core; ``io_wait_share``, else 1 - ``cpu_utilisation``) more than 1 - UTIL_IO of the
       phases' wall time;
    3. CPU-bound otherwise: tasks are busy on the CPU, so scaling ends at the core count.
    """
    pts = sorted(points, key=lambda p: p["workers"])
    p1 = _at(pts, 1)
    if p1 is None:
        raise ValueError("the 1-worker point is needed")
    avail = cores if available is None else max(1, min(int(available), cores))
    par = [p for p in pts if p["workers"] > 1]
    upto = [p for p in pts if p["workers"] <= avail]
    past = [p for p in pts if p["workers"] > avail]
    at_cores = max(upto, key=lambda p: p["workers"])
    top = max(past, key=lambda p: p["workers"]) if past else None
    limit = (f"{cores} core{'s' * (cores > 1)}" if avail == cores
             else f"{avail} free core{'s' * (avail > 1)} (of {cores})")
    evidence = []

    # Phases at 1 worker (no contention): which dominates, and is it CPU or waiting?
    walls = {ph: p1.get(f"mean_{ph}_s") or 0.0 for ph in PHASES}
    walls["other"] = max(p1.get("mean_other_s") or 0.0, 0.0)
    total = sum(walls.values()) or float("nan")
    dominant = max(walls, key=walls.get)
    parts = []
    for ph in (*PHASES, "other"):
        cpu = p1.get(f"mean_{ph}_cpu_s")
        on_cpu = f" ({cpu / walls[ph]:.0%} on CPU)" if cpu is not None and walls[ph] > 0 else ""
        parts.append(f"{ph} {walls[ph] / total:.0%}{on_cpu}")
    dom_cpu = p1.get(f"mean_{dominant}_cpu_s")
    q1 = p1.get("queue_wait_share") or 0.0
    dom_kind = ("" if dom_cpu is None or not walls[dominant] or dominant == "other" else
                ", mostly CPU" if dom_cpu / walls[dominant] >= UTIL_IO else
                ", mostly queued for a core" if q1 > (p1.get("io_wait_share") or 0.0) else
                ", mostly waiting for I/O")
    evidence.append(f"per-task time at 1 worker {1e3 * total:.1f} ms: " + ", ".join(parts)
                    + f" -> dominant phase: {dominant}{dom_kind}")

    u1 = p1["cpu_utilisation"]
    io1 = p1.get("io_wait_share")
    if io1 is None:  # no run-queue data: all off-CPU time counts as I/O wait
        io1 = max(1.0 - u1, 0.0)
    ws = [p["workers"] for p in pts]
    evidence.append(f"workers {ws}: speedup {_fmt_list([p['speedup'] for p in pts])}; "
                    f"efficiency {_fmt_list([p['efficiency'] for p in pts])}")
    evidence.append("CPU utilisation of tasks (thread CPU / phase wall): "
                    f"{_fmt_list([p['cpu_utilisation'] for p in pts])}; cores busy with tasks: "
                    f"{_fmt_list([p.get('cores_busy') for p in pts])} (of {limit})")
    if any(p.get("queue_wait_share") is not None for p in pts):
        evidence.append("off-CPU share of the phases: waiting for a core "
                        f"{_fmt_list([p.get('queue_wait_share') for p in pts])}, waiting for "
                        f"I/O etc. {_fmt_list([p.get('io_wait_share') for p in pts])}")
    if top is not None:
        gain = top["speedup"] / at_cores["speedup"]
        evidence.append(
            f"past the {limit}: speedup {at_cores['speedup']:.2f} at {at_cores['workers']} -> "
            f"{top['speedup']:.2f} at {top['workers']} workers (x{gain:.2f}, "
            f"{'flat' if gain < 1.15 else 'still growing'}); CPU utilisation "
            f"{at_cores['cpu_utilisation']:.2f} -> {top['cpu_utilisation']:.2f} (CPU-limited "
            f"would be ~{avail}/{top['workers']} = {avail / top['workers']:.2f}); efficiency "
            f"{at_cores['efficiency']:.2f} -> {top['efficiency']:.2f}")
    else:
        evidence.append(f"no (undistorted) worker count above the {limit} was measured")
    kf = ", ".join(f"{karp_flatt(p['speedup'], p['workers']):.3f} (w={p['workers']})"
                   for p in par)
    if serial_fraction is not None:
        evidence.append(f"Amdahl fit over workers <= {avail} {[p['workers'] for p in upto]}: "
                        f"serial fraction s = {serial_fraction:.3f}; Karp-Flatt e(w): {kf}")
    elif kf:
        evidence.append(f"Karp-Flatt e(w): {kf} (no Amdahl fit: no count in 2..{avail})")
    evidence.append("occupancy (task wall / (workers x wall)): "
                    f"{_fmt_list([p.get('occupancy') for p in pts])}; parent dispatch: "
                    f"{_fmt_list([p.get('dispatch_cores') for p in par])} cores at "
                    f"{[p['workers'] for p in par]} workers")
    if len(upto) > 1 and at_cores.get("mean_task_s") and p1.get("mean_task_s"):
        slow = at_cores["mean_task_s"] / p1["mean_task_s"]
        if slow > 1.2 and at_cores["cpu_utilisation"] >= UTIL_IO:
            evidence.append(f"per-task time grows x{slow:.2f} from 1 to {at_cores['workers']} "
                            "workers while tasks stay on the CPU: shared resources (memory "
                            "bandwidth, caches, SMT siblings, turbo) are contended")

    occ_low = [p for p in upto if (p.get("occupancy") or 1.0) < OCCUPANCY_MIN]
    busy_parent = [p for p in par if (p.get("dispatch_cores") or 0.0) >= 0.8]
    best = max((p["speedup"] for p in par), default=None)
    if occ_low or busy_parent or (avail >= 2 and best is not None and best < 1.0):
        verdict = "overhead-bound"
        if occ_low:
            worst = min(occ_low, key=lambda p: p["occupancy"])
            why = (f"workers are inside tasks only {worst['occupancy']:.0%} of the time at "
                   f"{worst['workers']} worker(s): dispatch, pickling, result handling or "
                   "idling dominate; use larger batches or fewer workers")
        elif busy_parent:
            why = (f"the parent process keeps {busy_parent[0]['dispatch_cores']:.2f} cores "
                   f"busy dispatching at {busy_parent[0]['workers']} workers: it is the "
                   "bottleneck; use larger batches")
        else:
            why = (f"no speedup with {limit} available: best {best:.2f} < 1; the cost of "
                   "parallel dispatch exceeds the work per task")
    elif io1 > 1.0 - UTIL_IO:
        verdict = "I/O-bound"
        waits = {ph: walls[ph] - (p1.get(f"mean_{ph}_cpu_s") or 0.0) for ph in PHASES}
        worst_phase = max(waits, key=waits.get)
        why = (f"at 1 worker tasks wait for I/O {io1:.0%} of their time (on the CPU {u1:.0%}), "
               f"mostly in {worst_phase} ({1e3 * waits[worst_phase]:.1f} ms per task)")
        if top is not None:
            why += (f"; speedup {top['speedup']:.2f} at {top['workers']} workers "
                    f"(> {avail} cores: waiting overlaps)")
    else:
        verdict = "CPU-bound"
        why = f"at 1 worker tasks are on the CPU {u1:.0%} of their time"
        if q1 > 0.05:
            why += f", queued for a core {q1:.0%} (other load)"
        why += f", waiting for I/O {io1:.0%}; dominant phase {dominant}; "
        if at_cores["workers"] > 1:
            why += (f"speedup {at_cores['speedup']:.2f} at {at_cores['workers']} workers "
                    f"(= {limit})")
        else:
            why += f"with only {limit} no gain from parallelism could be measured"
        if top is not None:
            why += (f", {top['speedup']:.2f} at {top['workers']}: more workers only share "
                    "the same cores")
    return verdict, why, evidence


# ---------------------------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------------------------


def _read(path):
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return None


def cpu_topology() -> dict:
    """Logical CPUs, CPUs this process may use, physical cores among them, and a quota.

    Physical cores come from /proc/cpuinfo ("physical id", "core id" per processor), else
    sysfs topology, else psutil if importable, else the logical count. ``cores`` = physical
    cores among the allowed CPUs, capped by a cgroup CPU quota; it is what the verdict uses.
    """
    logical = os.cpu_count() or 1
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        allowed = list(range(logical))
    pairs, source = {}, None
    info = _read("/proc/cpuinfo")
    if info:
        for block in info.split("\n\n"):
            kv = dict(line.split(":", 1) for line in block.splitlines() if ":" in line)
            kv = {k.strip(): v.strip() for k, v in kv.items()}
            if "processor" in kv and "core id" in kv:
                pairs[int(kv["processor"])] = (kv.get("physical id", "0"), kv["core id"])
        source = "/proc/cpuinfo" if pairs else None
    if not pairs:
        for cpu in allowed:
            base = f"/sys/devices/system/cpu/cpu{cpu}/topology/"
            core, pkg = _read(base + "core_id"), _read(base + "physical_package_id")
            if core is not None:
                pairs[cpu] = ((pkg or "0").strip(), core.strip())
        source = "sysfs" if pairs else None
    if pairs:
        physical = len({pairs[c] for c in allowed if c in pairs}) or len(set(pairs.values()))
    else:
        try:
            import psutil

            physical, source = psutil.cpu_count(logical=False), "psutil"
        except ImportError:
            physical = None
        if not physical:
            physical, source = len(allowed), "logical count (no topology found)"
    quota = None
    cpu_max = _read("/sys/fs/cgroup/cpu.max")  # cgroup v2: "max 100000" or "200000 100000"
    if cpu_max and not cpu_max.startswith("max"):
        q, per = cpu_max.split()[:2]
        quota = int(q) / int(per)
    else:
        q, per = _read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), _read(
            "/sys/fs/cgroup/cpu/cpu.cfs_period_us")
        if q and per and int(q) > 0:
            quota = int(q) / int(per)
    cores = min(physical, len(allowed))
    if quota is not None:
        cores = max(1, min(cores, int(quota)))
    return {"logical_cpus": logical, "allowed_cpus": len(allowed), "physical_cores": physical,
            "core_source": source, "cgroup_cpu_quota": quota, "cores": cores}


_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def system_snapshot() -> dict | None:
    """CPU ticks of the machine and of every process, and storage bytes of this process tree.

    ``None`` where /proc is not available (not Linux).
    """
    stat = _read("/proc/stat")
    if stat is None:
        return None
    cpu = [int(v) for v in stat.split("\n", 1)[0].split()[1:]]
    procs = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            s = _read(f"/proc/{name}/stat")
            if s:
                rest = s[s.rfind(")") + 2:].split()
                procs[int(name)] = (int(rest[1]), int(rest[11]) + int(rest[12]))
    me = os.getpid()
    children = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    ours, todo = set(), [me]
    while todo:
        pid = todo.pop()
        if pid not in ours:
            ours.add(pid)
            todo.extend(children.get(pid, ()))
    io, queue, hwm = {}, {}, {}
    for pid in ours:
        status = _read(f"/proc/{pid}/status")  # VmHWM: peak RSS of this process image (kB)
        line = next((x for x in (status or "").splitlines() if x.startswith("VmHWM:")), None)
        if line:
            hwm[pid] = int(line.split()[1])
        txt = _read(f"/proc/{pid}/io")
        if txt:
            kv = dict(line.split(":", 1) for line in txt.splitlines() if ":" in line)
            io[pid] = (int(kv.get("read_bytes", 0)), int(kv.get("write_bytes", 0)))
        try:  # run-queue wait (ns) of every thread: time runnable but not on a core
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            tids = []
        waits = [_read(f"/proc/{pid}/task/{tid}/schedstat") for tid in tids]
        if waits and all(waits):
            queue[pid] = sum(int(w.split()[1]) for w in waits)
    load = _read("/proc/loadavg")
    return {"t": time.perf_counter(), "cpu": cpu, "procs": procs, "ours": ours, "io": io,
            "queue": queue, "hwm": hwm, "loadavg": float(load.split()[0]) if load else None}


def machine_use(before, after, worker_pids=()) -> dict:
    """Cores used on average between two snapshots by this process tree, by the parent alone,
    by other processes, in iowait and stolen by the hypervisor; storage MB of this tree; the
    seconds the threads of ``worker_pids`` spent runnable but waiting for a core."""
    keys = ("proc_cpu_cores", "parent_cpu_cores", "others_cores", "iowait_cores",
            "steal_cores", "disk_read_mb", "disk_write_mb", "loadavg_before", "loadavg_after",
            "cpu_queue_s", "worker_hwm_mb")
    if before is None or after is None:
        return dict.fromkeys(keys)
    ticks = _HZ * (after["t"] - before["t"])

    def delta(i):
        return after["cpu"][i] - before["cpu"][i] if i < len(after["cpu"]) else 0

    busy = sum(delta(i) for i in (0, 1, 2, 5, 6))  # user nice system irq softirq
    ours = sum(after["procs"][p][1] - before["procs"].get(p, (0, 0))[1]
               for p in after["ours"] if p in after["procs"])
    me = os.getpid()
    parent = after["procs"][me][1] - before["procs"][me][1]
    rd = sum(after["io"][p][0] - before["io"].get(p, (0, 0))[0] for p in after["io"])
    wr = sum(after["io"][p][1] - before["io"].get(p, (0, 0))[1] for p in after["io"])
    use = {"proc_cpu_cores": ours / ticks, "parent_cpu_cores": parent / ticks,
            "others_cores": max(busy - ours, 0) / ticks, "iowait_cores": delta(4) / ticks,
            "steal_cores": delta(7) / ticks, "disk_read_mb": rd / 1e6, "disk_write_mb": wr / 1e6,
            "loadavg_before": before["loadavg"], "loadavg_after": after["loadavg"],
            "cpu_queue_s": sum(after["queue"][p] - before["queue"][p] for p in worker_pids
                               if p in after["queue"] and p in before["queue"]) / 1e9
            if any(p in after["queue"] for p in worker_pids) else None,
            "worker_hwm_mb": max((after["hwm"][p] for p in worker_pids if p in after["hwm"]),
                                 default=None)}
    if use["worker_hwm_mb"] is not None:
        use["worker_hwm_mb"] /= 1024
    return use


def reset_peak_rss(pids) -> None:
    """Reset VmHWM (peak RSS) of these processes to their current RSS (Linux >= 4.0), so the
    peak read after a round is the round's own."""
    for pid in pids:
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/clear_refs", "w") as fh:
                fh.write("5")


def evict(paths) -> None:
    """Drop the files' pages from the page cache, so the next read comes from storage."""
    for path in paths:
        for p in (path, path + "-wal", path + "-shm"):
            if os.path.exists(p):
                fd = os.open(p, os.O_RDONLY)
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)


def prime(paths) -> None:
    """Read the files once so that a warm-cache run does not pay first reads in round 1."""
    for path in paths:
        with open(path, "rb") as fh:
            while fh.read(1 << 20):
                pass


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


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


def _settings():
    from fastraster.pipelines.options import RasterizeOptions

    return RasterizeOptions.create(overwrite=True)


def _parallel(workers):
    """A Parallel for the active backend, streaming results if the backend can."""
    from joblib import Parallel

    for return_as in ("generator_unordered", "generator"):
        try:
            return Parallel(n_jobs=workers, return_as=return_as, batch_size=1)
        except ValueError:  # the backend cannot stream (e.g. "multiprocessing", ray)
            pass
    return Parallel(n_jobs=workers, return_as="list", batch_size=1)


def run_round(workers, repeat, files, settings, *, backend="loky", batch_size=1,
              cold_cache=False, scratch=".", barrier_timeout=120.0) -> dict:
    """One warm-up pass and one timed pass of ``files`` at ``workers``; the round's metrics."""
    from joblib import delayed, parallel_config

    from fastraster.io.tilepaths import tile_path as output_path
    from fastraster.pipelines.staged import rasterize_batch as _run_batch

    round_dir = tempfile.mkdtemp(prefix=f"w{workers:02d}-r{repeat}-", dir=scratch)
    counts = {}
    jobs = []
    for f in files:  # a file used again gets its own output folder
        k = counts[f.path] = counts.get(f.path, -1) + 1
        jobs.append((f, output_path(os.path.join(round_dir, f"c{k}"), f.tms, f.tile)))
    batches = [jobs[i:i + batch_size] for i in range(0, len(jobs), batch_size)]
    warm_jobs = [(files[i % len(files)],
                  output_path(os.path.join(round_dir, "warm", str(i)), files[i % len(files)].tms,
                              files[i % len(files)].tile)) for i in range(workers)]
    barrier = os.path.join(round_dir, "barrier")
    os.makedirs(barrier)
    try:
        # The backend goes through parallel_config (joblib's dask backend needs it).
        with backend_session(backend, workers), parallel_config(backend=backend), \
                warnings.catch_warnings():
            warnings.simplefilter("default")
            with _parallel(workers) as parallel:
                t = time.perf_counter()
                warm = list(parallel(delayed(_warm_task)(j, o, settings, barrier, workers,
                                                         barrier_timeout) for j, o in warm_jobs))
                warm_s = time.perf_counter() - t
                if cold_cache:
                    evict(sorted({f.path for f in files}))
                reset_peak_rss({w["pid"] for w in warm} | {os.getpid()})
                before = system_snapshot()
                t0 = time.perf_counter()
                recs = []
                for batch in parallel(delayed(_run_batch)(b, settings) for b in batches):
                    recs.extend(batch)
                wall = time.perf_counter() - t0
                after = system_snapshot()
    finally:
        shutil.rmtree(round_dir, ignore_errors=True)
    pids = {r["pid"] for r in recs}
    return round_metrics(workers, repeat, recs, wall, warm, warm_s, len(batches),
                         machine_use(before, after, pids))


def round_metrics(workers, repeat, recs, wall, warm, warm_s, tasks, use) -> dict:
    ok = [r for r in recs if r["status"] == "ok"]
    n_ok = max(len(ok), 1)
    task_wall = sum(r["seconds"] for r in recs)
    sums = {k: sum(r.get(k, 0.0) for r in ok)
            for ph in PHASES for k in (f"{ph}_s", f"{ph}_cpu_s")}
    task_cpu = sum(sums[f"{ph}_cpu_s"] for ph in PHASES)
    phase_wall = sum(sums[f"{ph}_s"] for ph in PHASES)
    rss = {}
    for r in recs:
        rss[r["pid"]] = max(rss.get(r["pid"], 0), r.get("maxrss_kb") or 0)
    warm_pids = {w["pid"] for w in warm}
    m = {
        "workers": workers, "repeat": repeat, "tiles": len(recs), "tasks": tasks,
        "ok": len(ok), "errors": len(recs) - len(ok), "wall_s": wall,
        "tiles_per_s": len(recs) / wall if wall > 0 else float("nan"),
        "warmup_s": warm_s, "warm_workers": min(w["arrived"] for w in warm),
        "task_wall_s": task_wall, "task_cpu_s": task_cpu,
        "cpu_utilisation": task_cpu / phase_wall if phase_wall > 0 else float("nan"),
        "cores_busy": task_cpu / wall, "occupancy": task_wall / (workers * wall),
        "mean_task_s": sum(r["seconds"] for r in ok) / n_ok,
    }
    for ph in PHASES:
        m[f"mean_{ph}_s"] = sums[f"{ph}_s"] / n_ok
        m[f"mean_{ph}_cpu_s"] = sums[f"{ph}_cpu_s"] / n_ok
    m["mean_other_s"] = m["mean_task_s"] - sum(m[f"mean_{ph}_s"] for ph in PHASES)
    bytes_read = sum(r.get("bytes_read") or 0 for r in ok)
    m.update(bytes_read_mb=bytes_read / 1e6, read_mb_per_s=bytes_read / 1e6 / wall,
             worker_processes=len(rss), new_workers=len(set(rss) - warm_pids))
    m.update(use)
    # Peak RSS of the busiest worker: VmHWM from /proc (ru_maxrss of a loky worker would
    # include its parent's RSS at fork time); else the records' ru_maxrss.
    hwm = m.pop("worker_hwm_mb")
    m["peak_rss_mb"] = hwm if hwm is not None else max(rss.values(), default=0) / 1024
    m["peak_rss_source"] = "VmHWM" if hwm is not None else "ru_maxrss"
    # Off-CPU time of the phases is either waiting for a core (run queue) or for I/O.
    off = max(phase_wall - task_cpu, 0.0)
    queue = m.get("cpu_queue_s")
    m["queue_wait_share"] = (None if queue is None or phase_wall <= 0
                             else min(queue, off) / phase_wall)
    m["io_wait_share"] = (max(off - (queue or 0.0), 0.0) / phase_wall if phase_wall > 0
                          else None)
    if m.get("parent_cpu_cores") is not None:  # parent CPU not spent in tasks run inside it
        me = os.getpid()
        inside = sum(r.get(f"{ph}_cpu_s", 0.0) for r in ok if r["pid"] == me for ph in PHASES)
        m["dispatch_cores"] = max(m["parent_cpu_cores"] - inside / wall, 0.0)
    else:
        m["dispatch_cores"] = None
    errs = [r["error"] for r in recs if r["status"] != "ok"]
    m["first_error"] = errs[0] if errs else ""
    return m


# ---------------------------------------------------------------------------------------------
# Points (medians per worker count)
# ---------------------------------------------------------------------------------------------


MEDIAN_KEYS = ("wall_s", "warmup_s", "task_wall_s", "task_cpu_s", "cpu_utilisation",
               "queue_wait_share", "io_wait_share", "cpu_queue_s",
               "cores_busy", "occupancy", "mean_task_s", "mean_other_s",
               *(f"mean_{ph}{c}_s" for ph in PHASES for c in ("", "_cpu")),
               "bytes_read_mb", "read_mb_per_s", "proc_cpu_cores", "parent_cpu_cores",
               "dispatch_cores", "others_cores", "iowait_cores", "steal_cores", "disk_read_mb",
               "disk_write_mb")


def _median(values):
    values = [v for v in values if v is not None and not (isinstance(v, float) and
                                                          math.isnan(v))]
    return statistics.median(values) if values else None


def summarise(rounds, load_threshold=LOAD_THRESHOLD) -> list[dict]:
    by_w = {}
    for r in rounds:
        by_w.setdefault(r["workers"], []).append(r)
    base = _median(r["wall_s"] for r in by_w[1])
    points = []
    for w in sorted(by_w):
        rs = by_w[w]
        p = {"workers": w, "repeats": len(rs), "tiles": rs[0]["tiles"]}
        for k in MEDIAN_KEYS:
            p[k] = _median(r.get(k) for r in rs)
        walls = [r["wall_s"] for r in rs]
        p.update(wall_s_min=min(walls), wall_s_max=max(walls),
                 tiles_per_s=p["tiles"] / p["wall_s"], speedup=base / p["wall_s"],
                 speedup_lo=base / max(walls), speedup_hi=base / min(walls))
        p["efficiency"] = p["speedup"] / w
        p["karp_flatt"] = karp_flatt(p["speedup"], w)
        p["peak_rss_mb"] = max(r["peak_rss_mb"] for r in rs)
        p["errors"] = sum(r["errors"] for r in rs)
        p["new_workers"] = sum(r["new_workers"] for r in rs)
        others = [r["others_cores"] for r in rs if r.get("others_cores") is not None]
        p["others_cores_max"] = max(others) if others else None
        p["loaded_rounds"] = sum(bool(r.get("loaded")) for r in rs)
        # Distorted if a round that sets the median wall time was loaded.
        by_wall = sorted(rs, key=lambda r: r["wall_s"])
        mid = by_wall[(len(rs) - 1) // 2: len(rs) // 2 + 1]
        p["loaded"] = any(r.get("loaded") for r in mid)
        points.append(p)
    t1 = _at(points, 1)["mean_task_s"]
    for p in points:
        p["task_slowdown"] = p["mean_task_s"] / t1 if t1 else None
    return points


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


POINT_COLUMNS = ("workers", "repeats", "tiles", "wall_s", "wall_s_min", "wall_s_max",
                 "tiles_per_s", "speedup", "speedup_lo", "speedup_hi", "efficiency",
                 "karp_flatt", "amdahl_speedup", "cpu_utilisation", "io_wait_share",
                 "queue_wait_share", "cores_busy", "occupancy",
                 "task_slowdown", "mean_task_s",
                 *(f"mean_{ph}{c}_s" for ph in PHASES for c in ("", "_cpu")), "mean_other_s",
                 "bytes_read_mb", "read_mb_per_s", "disk_read_mb", "disk_write_mb",
                 "peak_rss_mb", "proc_cpu_cores", "parent_cpu_cores", "dispatch_cores",
                 "others_cores", "others_cores_max", "iowait_cores", "steal_cores", "loaded",
                 "loaded_rounds", "errors", "new_workers", "warmup_s")
ROUND_COLUMNS = ("order", "workers", "repeat", "tiles", "tasks", "ok", "errors", "wall_s",
                 "tiles_per_s", "warmup_s", "warm_workers", "task_wall_s", "task_cpu_s",
                 "cpu_utilisation", "io_wait_share", "queue_wait_share", "cpu_queue_s",
                 "cores_busy", "occupancy", "mean_task_s",
                 *(f"mean_{ph}{c}_s" for ph in PHASES for c in ("", "_cpu")), "mean_other_s",
                 "bytes_read_mb", "read_mb_per_s", "peak_rss_mb", "peak_rss_source",
                 "worker_processes", "new_workers", "proc_cpu_cores", "parent_cpu_cores",
                 "dispatch_cores", "others_cores", "iowait_cores", "steal_cores",
                 "disk_read_mb", "disk_write_mb",
                 "loadavg_before", "loadavg_after", "loaded", "first_error")


def _cell(v):
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else v


def write_csv(path, columns, rows):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(columns)
        for r in rows:
            w.writerow([_cell(r.get(c)) for c in columns])


def table(points) -> str:
    head = (f"{'workers':>7} {'wall s':>7} {'tiles/s':>8} {'speedup':>7} {'eff':>5} "
            f"{'K-F':>6} {'CPU util':>8} {'cores busy':>10} {'in-task':>7} "
            f"{'read/compute/write/other ms':>28} {'RSS MB':>7} {'others':>6}")
    lines = [head]
    for p in points:
        kf = "-" if p["karp_flatt"] is None else f"{p['karp_flatt']:.3f}"
        phases = "/".join(f"{1e3 * (p[f'mean_{ph}_s'] or 0):.1f}" for ph in (*PHASES, "other"))
        others = "-" if p["others_cores"] is None else f"{p['others_cores']:.2f}"
        flag = "  LOADED" if p["loaded"] else ""
        lines.append(f"{p['workers']:>7} {p['wall_s']:>7.3f} {p['tiles_per_s']:>8.1f} "
                     f"{p['speedup']:>7.2f} {p['efficiency']:>5.2f} {kf:>6} "
                     f"{p['cpu_utilisation']:>8.2f} {p['cores_busy']:>10.2f} "
                     f"{p['occupancy']:>7.2f} {phases:>28} {p['peak_rss_mb']:>7.0f} "
                     f"{others:>6}{flag}")
    return "\n".join(lines)


def plot(points, machine, fit_s, verdict, path, title="") -> bool:
    """Two panels: speedup vs workers (ideal, Amdahl fit, core count) and stacked per-task
    phase times (CPU solid, waiting hatched). False if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    ws = [p["workers"] for p in points]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    top = max(ws)
    ax1.plot([1, top], [1, top], "--", color="0.5", label="ideal (speedup = workers)")
    if fit_s is not None:
        xs = [1 + i * (top - 1) / 100 for i in range(101)]
        ax1.plot(xs, [amdahl_speedup(fit_s, x) for x in xs], ":", color="tab:green",
                 label=f"Amdahl fit (w <= cores), s = {fit_s:.3f}")
    sp = [p["speedup"] for p in points]
    err = [[p["speedup"] - p["speedup_lo"] for p in points],
           [p["speedup_hi"] - p["speedup"] for p in points]]
    ax1.errorbar(ws, sp, yerr=err, fmt="o-", color="tab:blue", capsize=3,
                 label="measured (median, min-max of repeats)")
    loaded = [p for p in points if p["loaded"]]
    if loaded:
        ax1.plot([p["workers"] for p in loaded], [p["speedup"] for p in loaded], "o",
                 ms=13, mfc="none", mec="tab:red", label="other load > threshold")
    cores = machine["cores"]
    ax1.axvline(cores, color="tab:orange", label=f"{cores} physical cores")
    if machine["allowed_cpus"] != cores:
        ax1.axvline(machine["allowed_cpus"], color="tab:orange", ls=":",
                    label=f"{machine['allowed_cpus']} logical CPUs")
    if machine.get("available", cores) != cores:
        ax1.axvline(machine["available"], color="tab:red", ls="--",
                    label=f"{machine['available']} core{'s' * (machine['available'] > 1)} "
                          "free of other load")
    ax1.set_xlabel("workers")
    ax1.set_ylabel("speedup (wall at 1 worker / wall)")
    ax1.set_xticks(ws)
    ax1.set_xlim(0.5, top + 0.5)
    ax1.set_ylim(0, max(max(p["speedup_hi"] for p in points), min(cores, top)) * 1.25 + 0.2)
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8, loc="upper left")
    ax1.set_title("speedup")
    colors = {"read": "tab:blue", "compute": "tab:orange", "write": "tab:green",
              "other": "tab:gray"}
    x = list(range(len(ws)))
    bottom = [0.0] * len(ws)
    for ph in (*PHASES, "other"):
        wall = [1e3 * max(p[f"mean_{ph}_s"] or 0.0, 0.0) for p in points]
        cpu = ([1e3 * (p[f"mean_{ph}_cpu_s"] or 0.0) for p in points] if ph != "other"
               else [0.0] * len(ws))
        cpu = [min(c, t) for c, t in zip(cpu, wall)]
        wait = [t - c for c, t in zip(cpu, wall)]
        if ph != "other":
            ax2.bar(x, cpu, bottom=bottom, color=colors[ph], label=f"{ph} CPU")
            bottom = [b + c for b, c in zip(bottom, cpu)]
        ax2.bar(x, wait, bottom=bottom, color=colors[ph], alpha=0.35,
                hatch="//" if ph != "other" else None,
                label=f"{ph} off CPU" if ph != "other" else "other (in task)")
        bottom = [b + c for b, c in zip(bottom, wait)]
    ax2.set_xticks(x, [str(w) for w in ws])
    ax2.set_xlabel("workers")
    ax2.set_ylabel("mean wall time per task (ms)")
    ax2.set_title("per-task phases (solid: on CPU; hatched: off CPU - I/O or queued)",
                  fontsize=10)
    ax2.set_ylim(0, max(bottom) * 1.45 if max(bottom) > 0 else 1)
    ax2.legend(fontsize=8, ncol=2)
    ax2.grid(alpha=0.3, axis="y")
    fig.suptitle(f"{verdict}{' - ' + title if title else ''}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def _workers(text: str) -> list[int]:
    try:
        ws = sorted({int(v) for v in text.replace(" ", "").split(",") if v})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of integers: {text!r}") from None
    if not ws:
        raise argparse.ArgumentTypeError("no worker count given")
    if ws[0] < 1:
        raise argparse.ArgumentTypeError(f"worker counts must be >= 1, got {ws[0]}")
    if ws[-1] > MAX_WORKERS:
        raise argparse.ArgumentTypeError(
            f"{ws[-1]} workers requested, but at most {MAX_WORKERS} are allowed: this is a "
            "shared server")
    return ws


def _positive(text):
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="scaling_bench.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("staged_dir", nargs="?", default=None,
                    help="staged tree <TMS>/<z>/<x>/<y>.gpkg; without it a generated sample")
    ap.add_argument("--workers", type=_workers, default="1,2,4,8,11,15",
                    help=f"comma-separated worker counts, each 1..{MAX_WORKERS} (1 is added)")
    ap.add_argument("--files", type=_positive, default=100, help="files per round")
    ap.add_argument("--repeats", type=_positive, default=3, help="timed rounds per count")
    ap.add_argument("--backend", default="loky",
                    help="joblib backend: loky, threading, multiprocessing, dask, ray")
    ap.add_argument("--batch-size", type=_positive, default=1, help="files per joblib task")
    ap.add_argument("--out", default="scaling-results", help="output folder")
    ap.add_argument("--scratch", default=None,
                    help="where rounds write their GeoTIFFs; without it <out>/scratch")
    ap.add_argument("--cold-cache", action="store_true",
                    help="evict the inputs from the page cache before each timed round")
    ap.add_argument("--seed", type=int, default=0, help="seed of the file subset")
    ap.add_argument("--tms", default=None, help="TMS id, if not inferable from the paths")
    ap.add_argument("--z", type=int, default=None, help="zoom, if not inferable")
    ap.add_argument("--sample-tiles", type=_positive, default=25,
                    help="tiles of the generated sample (a block of z13 tiles)")
    ap.add_argument("--sample-spacing", type=float, default=14.0,
                    help="polygon spacing of the generated sample (m)")
    ap.add_argument("--load-threshold", type=float, default=LOAD_THRESHOLD,
                    help="flag a point when other processes use more cores than this")
    ap.add_argument("--barrier-timeout", type=float, default=120.0,
                    help="seconds the warm-up waits for all workers to check in")
    ap.add_argument("--no-plot", action="store_true", help="skip scaling.png")
    ap.add_argument("--quiet", action="store_true", help="no per-round lines")
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.cold_cache and not hasattr(os, "posix_fadvise"):
        raise SystemExit("error: --cold-cache needs os.posix_fadvise (Linux)")
    if __name__ != "__main__" and __name__ in sys.modules:
        import cloudpickle  # imported as a module (tests): send _warm_task by value

        cloudpickle.register_pickle_by_value(sys.modules[__name__])
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    notes = []
    workers = args.workers
    if 1 not in workers:
        workers = [1, *workers]
        notes.append("added 1 worker: speedups are relative to it")
    os.makedirs(args.out, exist_ok=True)
    staged = args.staged_dir
    sample = None
    if staged is None:
        staged = ensure_sample(args.out, args.sample_tiles, args.sample_spacing)
        sample = {"tiles": args.sample_tiles, "spacing_m": args.sample_spacing}
    files, n_unique = select_files(staged, args.files, args.seed, args.tms, args.z)
    if n_unique < args.files:
        notes.append(f"{n_unique} distinct files reused cyclically for {args.files} tasks")
    machine = cpu_topology()
    cores = machine["cores"]
    scratch = args.scratch or os.path.join(args.out, "scratch")
    os.makedirs(scratch, exist_ok=True)

    import joblib

    import fastraster
    from fastraster.pipelines.staged import warm_up

    warm_up()  # compile / load the numba cache once, in the parent
    settings = _settings()
    if not args.cold_cache:
        prime(sorted({f.path for f in files}))
    order = []
    for r in range(args.repeats):  # serpentine: 1,2,4,4,2,1,1,2,4
        order += [(w, r) for w in (workers if r % 2 == 0 else workers[::-1])]
    log(f"machine: {machine['cores']} cores for this run ({machine['physical_cores']} physical "
        f"[{machine['core_source']}], {machine['allowed_cpus']} allowed of "
        f"{machine['logical_cpus']} logical CPUs); backend {args.backend}; "
        f"{len(files)} files/round from {staged}; {len(order)} timed rounds")
    rounds = []
    for i, (w, r) in enumerate(order):
        m = run_round(w, r, files, settings, backend=args.backend, batch_size=args.batch_size,
                      cold_cache=args.cold_cache, scratch=scratch,
                      barrier_timeout=args.barrier_timeout)
        m["order"] = i
        m["loaded"] = (m["others_cores"] or 0.0) > args.load_threshold
        rounds.append(m)
        extra = "" if m["others_cores"] is None else f", other load {m['others_cores']:.2f} cores"
        log(f"round {i + 1}/{len(order)}: {w:>2} workers: {m['tiles']} tiles in "
            f"{m['wall_s']:.3f} s ({m['tiles_per_s']:.1f} tiles/s){extra}"
            + (f"  [{m['errors']} errors: {m['first_error']}]" if m["errors"] else ""))
        if m["warm_workers"] < w:
            notes.append(f"round {i + 1}: only {m['warm_workers']} of {w} workers checked in "
                         "during warm-up (the backend may run fewer)")
        if m["new_workers"]:
            notes.append(f"round {i + 1}: {m['new_workers']} worker process(es) started during "
                         "the timed pass (start-up included in that round)")
    with contextlib.suppress(OSError):
        os.rmdir(scratch)
    if all(r["ok"] == 0 for r in rounds):
        print(f"error: every task failed, e.g. {rounds[0]['first_error']}", file=sys.stderr)
        return 1

    points = summarise(rounds, args.load_threshold)
    used, available = judged_points(points, cores)
    if len(used) < len(points):
        notes.append("the verdict and the Amdahl fit leave out the distorted point(s) at "
                     f"{[p['workers'] for p in points if p not in used]} workers")
    elif available < cores:
        notes.append(f"other load on most points: the verdict and the Amdahl fit use "
                     f"{available} free core(s) of {cores}")
    fit_pts = [p for p in used if p["workers"] <= available]
    s, rms = amdahl_fit([p["workers"] for p in fit_pts], [p["speedup"] for p in fit_pts])
    for p in points:
        p["amdahl_speedup"] = None if s is None else amdahl_speedup(s, p["workers"])
    verdict, why, evidence = classify(used, cores, s, available)
    for p in points:
        if p["loaded"]:
            notes.append(f"{p['workers']} workers: other processes used more than "
                         f"{args.load_threshold} cores during the median round(s) - this point "
                         "is distorted; rerun when the machine is quieter or add --repeats")
        elif p["loaded_rounds"]:
            notes.append(f"{p['workers']} workers: {p['loaded_rounds']} of {p['repeats']} "
                         f"rounds had other load > {args.load_threshold} cores (up to "
                         f"{p['others_cores_max']:.2f}); the median is not from them")
    failed = sum(r["errors"] for r in rounds)
    if failed:
        first = next(r["first_error"] for r in rounds if r["errors"])
        notes.append(f"{failed} of {sum(r['tiles'] for r in rounds)} tasks failed (their "
                     f"time is in the rounds, their phases are not), e.g. {first}")
    others = [r["others_cores"] for r in rounds if r["others_cores"] is not None]
    if others:
        evidence.append(f"load from other processes: median {statistics.median(others):.2f}, "
                        f"max {max(others):.2f} cores; steal median "
                        f"{statistics.median(r['steal_cores'] for r in rounds):.2f} cores")
    if args.cold_cache:
        evidence.append("cold cache: storage reads per round (median) "
                        + _fmt_list([p["disk_read_mb"] for p in points], "{:.1f}") + " MB")
    verdict_line = f"VERDICT: {verdict} - {why}"

    write_csv(os.path.join(args.out, "points.csv"), POINT_COLUMNS, points)
    write_csv(os.path.join(args.out, "rounds.csv"), ROUND_COLUMNS, rounds)
    png = os.path.join(args.out, "scaling.png")
    plotted = not args.no_plot and plot(points, dict(machine, available=available), s,
                                        verdict, png,
                                        f"{len(files)} files, {args.backend}"
                                        + (", cold cache" if args.cold_cache else ""))
    if not args.no_plot and not plotted:
        notes.append("matplotlib not installed: no scaling.png (pip install matplotlib)")
    result = {
        "command": " ".join(["scaling_bench.py", *(argv if argv is not None else sys.argv[1:])]),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": platform.node(),
        "python": platform.python_version(),
        "fastraster": getattr(fastraster, "__version__", None), "joblib": joblib.__version__,
        "machine": machine,
        "settings": {"staged_dir": os.path.abspath(staged), "sample": sample,
                     "workers": workers, "files": len(files), "distinct_files": n_unique,
                     "repeats": args.repeats, "backend": args.backend,
                     "batch_size": args.batch_size, "cold_cache": args.cold_cache,
                     "load_threshold": args.load_threshold, "order": order,
                     "thresholds": {"util_io": UTIL_IO, "occupancy_min": OCCUPANCY_MIN}},
        "available_cores": available, "verdict_workers": [p["workers"] for p in used],
        "amdahl": {"serial_fraction": s, "rms_residual": rms,
                   "fit_workers": [p["workers"] for p in fit_pts],
                   "max_speedup": None if not s else 1.0 / s},
        "verdict": verdict, "verdict_line": verdict_line, "evidence": evidence,
        "notes": notes, "points": points, "rounds": rounds,
    }
    with open(os.path.join(args.out, "points.json"), "w") as fh:
        json.dump(result, fh, indent=1, default=str)

    print()
    print(table(points))
    print()
    for line in evidence:
        print(f"  - {line}")
    for line in notes:
        print(f"  ! {line}")
    print(verdict_line)
    print(f"(results in {args.out}: points.csv, rounds.csv, points.json"
          + (", scaling.png)" if plotted else ")"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
