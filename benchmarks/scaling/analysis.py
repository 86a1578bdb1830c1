"""Scaling analysis: Amdahl's law, Karp-Flatt, the metrics of a round, medians per worker
count, and the verdict (CPU-, I/O- or overhead-bound) with its evidence."""

from __future__ import annotations

import math
import os
import statistics

#: Tasks whose thread is on the CPU less than this fraction of their wall time (at 1 worker)
#: are waiting for something else: I/O-bound.
UTIL_IO = 0.6
#: Workers inside tasks less than this fraction of (workers x wall) at a worker count up to the
#: core count: dispatch, serialization or idling dominates: overhead-bound.
OCCUPANCY_MIN = 0.5
#: Other processes using more than this many cores during a round distort it.
LOAD_THRESHOLD = 0.5
PHASES = ("read", "compute", "write")


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
