"""The machine: CPU topology, and snapshots from ``/proc`` of the CPU time, I/O, run-queue
wait and peak memory of this process tree and of everything else on the machine."""

from __future__ import annotations

import contextlib
import os
import time


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
