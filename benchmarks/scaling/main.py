"""The command line of the scaling benchmark (``scripts/scaling_bench.py``)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time

import benchmarks.scaling as package
from benchmarks.scaling import runner
from benchmarks.scaling.analysis import (
    LOAD_THRESHOLD,
    OCCUPANCY_MIN,
    UTIL_IO,
    _fmt_list,
    amdahl_fit,
    amdahl_speedup,
    classify,
    judged_points,
    summarise,
)
from benchmarks.scaling.probes import cpu_topology, prime
from benchmarks.scaling.report import POINT_COLUMNS, ROUND_COLUMNS, plot, table, write_csv
from benchmarks.scaling.runner import ensure_sample, run_round, select_files

MAX_WORKERS = 15



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
        prog="scaling_bench.py", description=package.__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("staged_dir", nargs="?", default=None,
                    help="staged tree <TMS>/<z>/<x>/<y>.gpkg; without it a generated sample")
    ap.add_argument("--workers", type=_workers, default="1,2,4,8,11,15",
                    help=f"comma-separated worker counts, each 1..{MAX_WORKERS} (1 is added)")
    ap.add_argument("--files", type=_positive, default=100, help="files per round")
    ap.add_argument("--repeats", type=_positive, default=3, help="timed rounds per count")
    ap.add_argument("--backend", default="loky",
                    help="joblib backend: loky, threading, dask, ray")
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
    import cloudpickle

    # Workers (dask's in particular) need not have this repository on their path: send the
    # warm-up task by value.
    cloudpickle.register_pickle_by_value(runner)
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
    settings = runner.options()
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
