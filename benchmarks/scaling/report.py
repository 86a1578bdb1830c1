"""The outputs: ``points.csv``, ``rounds.csv``, the table and ``scaling.png``."""

from __future__ import annotations

import csv

from benchmarks.scaling.analysis import PHASES, amdahl_speedup

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
