"""``rasterize_sources`` at scale: >= 200 generated scenes (>= 5M polygons) on a few workers,
and the projected cost of the pan-Arctic IWP run (10^9 polygons, 17,039 scenes, z15).

    python benchmarks/sources_scale.py [--scenes 200] [--polygons-per-scene 26000]
        [--workers 2] [--z 15] [--dtype float32] [--data DIR] [--json FILE]

1. Generates the scenes (``fastraster.sample.make_scenes``: EPSG:3413 and UTM 52N, 30 %
   overlaps, dated footprints, spills past the footprints) into ``--data`` (default a folder
   in the temporary directory named by the parameters), or reuses them if they are there.
2. Runs ``rasterize_sources`` on ``--workers`` loky workers (footprint clip and dedup,
   simplify 0.1 m, as the IWP configuration), writing float32 GeoTIFFs to a temporary
   folder, and measures: wall time per pass, throughput, the peak RSS of every worker
   (``VmHWM``, from the records) and of the driver, CPU seconds of the process tree, the
   bytes the map tasks read through ``read()`` (``rchar`` over each task: the scene files;
   the memory-mapped intermediates of the reduce tasks are not in it), the input,
   intermediate and output bytes, and the (scene, tile) pairs the driver plans.
3. Projects the 10^9-polygon run from the measured cost per polygon (linear in polygons;
   see ``docs/scale-out.md`` for what that assumes).

Prints a table and writes JSON (``--json``). Run it with ``nice`` on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

IWP_POLYGONS = 1e9
IWP_SCENES = 17_039
NODE_CORES = 128
#: Polygons per z15 tile of the real layer, for the by-pass projection: the four real IWP
#: z13 tiles of ``pdg-minimal-example`` hold 1,550 each (docs/scale-out.md), 1/16 of that
#: per z15 tile; the staging example's scenes give 129 (31,977 polygons, 247 tiles).
IWP_POLYGONS_PER_Z15_TILE = 1550 / 16
#: Bytes the driver holds per planned (scene, tile) pair (TileTask arrays; measured on the
#: sources branch: ~40 B).
PLAN_BYTES_PER_PAIR = 40


def _tree():
    import psutil

    me = psutil.Process()
    return me, me.children(recursive=True)


def _io(proc):
    try:
        io = proc.io_counters()
        cpu = proc.cpu_times()
        return {"rchar": io.read_chars, "read_bytes": io.read_bytes,
                "write_bytes": io.write_bytes, "cpu": cpu.user + cpu.system}
    except Exception:  # a process that ended meanwhile
        return {"rchar": 0, "read_bytes": 0, "write_bytes": 0, "cpu": 0.0}


class RssSampler(threading.Thread):
    """The driver's resident memory, sampled every 0.2 s (its peak is ``VmHWM`` too, but
    this shows when)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak = 0
        self.stop = threading.Event()

    def run(self):
        import psutil

        me = psutil.Process()
        while not self.stop.is_set():
            self.peak = max(self.peak, me.memory_info().rss)
            time.sleep(0.2)


def generate(data: Path, scenes: int, pps: int, workers: int, seed: int) -> dict:
    from fastraster.sample import make_scenes

    marker = data / "generated.json"
    if marker.exists():
        return json.loads(marker.read_text())
    shutil.rmtree(data, ignore_errors=True)
    t = time.perf_counter()
    res = make_scenes(data, scenes, polygons_per_scene=pps, seed=seed, n_jobs=workers)
    res["seconds"] = time.perf_counter() - t
    res["bytes"] = sum(f.stat().st_size for f in (data / "input").rglob("*") if f.is_file())
    marker.write_text(json.dumps(res))
    return res


def run(data: Path, gen: dict, z: int, workers: int, dtype: str) -> dict:
    from fastraster.pipelines.sources import rasterize_sources

    out = Path(tempfile.mkdtemp(prefix="fastraster-scale-out-"))
    me, before_children = _tree()
    io0 = _io(me)
    sampler = RssSampler()
    sampler.start()
    try:
        t = time.perf_counter()
        rep = rasterize_sources(gen["inputs"], out, z=z, footprints=gen["footprints"],
                                simplify_tolerance=0.1, n_jobs=workers, dtype=dtype,
                                progress=False)
        wall = time.perf_counter() - t
        sampler.stop.set()
        # loky keeps its workers a while after the run: their counters are the run's (they
        # were started by it: a fresh process runs one benchmark).
        _, children = _tree()
        kids = {p.pid: _io(p) for p in children}
        io1 = _io(me)
        out_bytes = sum(f.stat().st_size for f in out.rglob("*.tif"))
        out_files = sum(1 for _ in out.rglob("*.tif"))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    assert not rep.errors, rep.errors[:3]
    scenes = rep.scenes
    polygons = sum(r["features"] for r in scenes)
    per_worker = {}
    for r in list(scenes) + list(rep):
        per_worker[r["pid"]] = max(per_worker.get(r["pid"], 0), r.get("maxrss_kb") or 0)
    driver = {"peak_rss_mb": sampler.peak / 2**20, "cpu_s": io1["cpu"] - io0["cpu"],
              "rchar": io1["rchar"] - io0["rchar"]}
    return {
        "z": z, "workers": workers, "dtype": dtype, "scenes": len(scenes),
        "polygons": polygons, "tiles": len(rep), "wall_s": wall, "passes": rep.passes,
        "polygons_per_s": polygons / wall,
        "worker_peak_rss_mb": {str(k): v / 1024 for k, v in sorted(per_worker.items())},
        "driver": driver,
        "workers_cpu_s": sum(v["cpu"] for v in kids.values()),
        "workers_rchar": sum(v["rchar"] for v in kids.values()),
        "map_read_chars": sum(r.get("read_chars") or 0 for r in scenes),
        "workers_read_bytes": sum(v["read_bytes"] for v in kids.values()),
        "input_bytes": sum(r["bytes_read"] for r in scenes),
        "intermediate_bytes": sum(r.get("bytes_written", 0) for r in scenes),
        "rows": sum(r["rows"] for r in scenes),
        "scene_tile_pairs": sum(r["tiles"] for r in scenes),
        "output_bytes": out_bytes, "output_files": out_files,
        "flagged_rows": sum(r.get("flagged", 0) for r in rep),
        "clip_flagged": sum(r["clip_flagged"] for r in scenes),
        "map_task_s": sum(r["seconds"] for r in scenes),
        "reduce_task_s": sum(r["seconds"] for r in rep),
        "n_children": len(kids), "children_before": len(before_children),
    }


def project(m: dict, polygons_per_tile: float = IWP_POLYGONS_PER_Z15_TILE) -> dict:
    """The 10^9-polygon run from the measured one, two ways:

    * linear in polygons: the run's cost per polygon (wall minus the one-off warm-up, times
      the workers; and the CPU seconds of the process tree) times 10^9;
    * by pass: the map tasks' seconds per polygon times 10^9 plus the reduce tasks' seconds
      per tile times the tiles 10^9 polygons make at ``polygons_per_tile`` (the generated
      scenes are denser per tile than the real IWP layer, and a tile's fixed costs, the
      GeoTIFF write first, then weigh more).
    """
    n = m["polygons"]
    core_s = (m["wall_s"] - m["passes"]["warm_up"]) * m["workers"] / n
    cpu_s = (m["workers_cpu_s"] + m["driver"]["cpu_s"]) / n
    map_s = m["map_task_s"] / n
    tile_s = m["reduce_task_s"] / m["tiles"]
    tiles = IWP_POLYGONS / polygons_per_tile
    by_pass = IWP_POLYGONS * map_s + tiles * tile_s
    peak = max(m["worker_peak_rss_mb"].values())
    return {
        "core_us_per_polygon": core_s * 1e6,
        "cpu_us_per_polygon": cpu_s * 1e6,
        "map_task_us_per_polygon": map_s * 1e6,
        "reduce_task_ms_per_tile": tile_s * 1e3,
        "core_hours": IWP_POLYGONS * core_s / 3600,
        "cpu_core_hours": IWP_POLYGONS * cpu_s / 3600,
        "node_hours_128": IWP_POLYGONS * core_s / 3600 / NODE_CORES,
        "polygons_per_tile_assumed": polygons_per_tile,
        "tiles_assumed": tiles,
        "by_pass_core_hours": by_pass / 3600,
        "by_pass_node_hours_128": by_pass / 3600 / NODE_CORES,
        "worker_rss_128_gb": NODE_CORES * peak / 1024,
        "intermediate_gb": IWP_POLYGONS * m["intermediate_bytes"] / n / 1e9,
        "input_gb": IWP_POLYGONS * m["input_bytes"] / n / 1e9,
        "output_gb": IWP_POLYGONS * m["output_bytes"] / n / 1e9,
        "output_tiles": IWP_POLYGONS * m["output_files"] / n,
        "driver_plan_gb": IWP_POLYGONS * m["scene_tile_pairs"] / n * PLAN_BYTES_PER_PAIR / 1e9,
        "polygons_per_scene_iwp": IWP_POLYGONS / IWP_SCENES,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenes", type=int, default=200)
    ap.add_argument("--polygons-per-scene", type=int, default=26_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--z", type=int, default=15)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--from-json", default=None,
                    help="Print the tables of an earlier run's JSON instead of running.")
    args = ap.parse_args(argv)
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        gen, m = saved["generated"], saved["measured"]
    else:
        data = Path(args.data or Path(tempfile.gettempdir()) / "fastraster-scale-data-"
                    f"{args.scenes}-{args.polygons_per_scene}-{args.seed}")
        gen = generate(data, args.scenes, args.polygons_per_scene, args.workers, args.seed)
        print(f"data: {gen['scenes']} scenes, {gen['polygons']:,} polygons, "
              f"{gen['bytes'] / 1e9:.2f} GB in {data} (generated in "
              f"{gen.get('seconds', 0):.0f} s)", file=sys.stderr)
        m = run(data, gen, args.z, args.workers, args.dtype)
    p = project(m)
    n = m["polygons"]
    rss = m["worker_peak_rss_mb"]
    rest = m["wall_s"] - sum(m["passes"][k] for k in ("map", "reduce", "warm_up"))
    print(f"\nrasterize_sources, z{m['z']}, {m['workers']} loky workers, {m['dtype']} "
          f"GeoTIFFs, {m['scenes']} scenes, {n:,} polygons -> {m['tiles']:,} tiles")
    print("| measure | value |")
    print("|---|---|")
    rows = [
        ("wall", f"{m['wall_s']:.1f} s (map {m['passes']['map']:.1f}, reduce "
                 f"{m['passes']['reduce']:.1f}, warm-up {m['passes']['warm_up']:.1f}, "
                 f"driver rest {rest:.1f})"),
        ("throughput", f"{m['polygons_per_s']:,.0f} polygons/s "
                       f"({m['polygons_per_s'] / m['workers']:,.0f} per worker)"),
        ("cost per polygon", f"{p['core_us_per_polygon']:.1f} core-us ((wall - warm-up) x "
                             f"workers); {p['cpu_us_per_polygon']:.1f} CPU-us (process "
                             "tree)"),
        ("tasks", f"map {p['map_task_us_per_polygon']:.1f} us per polygon, reduce "
                  f"{p['reduce_task_ms_per_tile']:.2f} ms per tile "
                  f"({n / m['tiles']:.0f} polygons per tile)"),
        ("peak RSS per worker", ", ".join(f"{v:.0f} MB" for v in rss.values())),
        ("peak RSS driver", f"{m['driver']['peak_rss_mb']:.0f} MB"),
        ("input bytes", f"{m['input_bytes'] / n:.0f} B/polygon "
                        f"({m['input_bytes'] / 1e9:.2f} GB)"),
        ("read by the map tasks (rchar)", f"{m['map_read_chars'] / n:.0f} B/polygon = "
                                          f"{m['map_read_chars'] / m['input_bytes']:.2f}x "
                                          "the input files"),
        ("read by the workers in all (rchar)", f"{m['workers_rchar'] / 1e6:.0f} MB "
                                               "(also imports, footprints, CSVs)"),
        ("intermediate bytes", f"{m['intermediate_bytes'] / n:.0f} B/polygon "
                               f"({m['intermediate_bytes'] / 1e9:.2f} GB, written once, "
                               "mapped once)"),
        ("output", f"{m['output_files']:,} GeoTIFFs, {m['output_bytes'] / 1e9:.2f} GB"),
        ("planned (scene, tile) pairs", f"{m['scene_tile_pairs']:,} "
                                        f"({m['scene_tile_pairs'] / n * 1e3:.2f} per 1,000 "
                                        "polygons)"),
    ]
    for k, v in rows:
        print(f"| {k} | {v} |")
    print(f"\nprojected: 10^9 polygons, {IWP_SCENES:,} scenes, z{m['z']}")
    print("| measure | value |")
    print("|---|---|")
    for k, v in [
        ("core-hours, linear in polygons", f"{p['core_hours']:.0f} (CPU only: "
                                           f"{p['cpu_core_hours']:.0f})"),
        ("node-hours on one 128-core node", f"{p['node_hours_128']:.2f}"),
        (f"core-hours by pass, {p['polygons_per_tile_assumed']:.0f} polygons per tile "
         f"({p['tiles_assumed'] / 1e6:.1f} M tiles)",
         f"{p['by_pass_core_hours']:.0f} = {p['by_pass_node_hours_128']:.2f} node-hours"),
        ("worker memory, 128 workers", f"{p['worker_rss_128_gb']:.0f} GB"),
        ("input / intermediates / output", f"{p['input_gb']:.0f} / "
                                           f"{p['intermediate_gb']:.0f} / "
                                           f"{p['output_gb']:.0f} GB"),
        ("output tiles", f"{p['output_tiles']:,.0f}"),
        ("driver plan", f"{p['driver_plan_gb']:.2f} GB"),
    ]:
        print(f"| {k} | {v} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"measured": m, "projected": p,
                                               "generated": gen}, indent=1))


if __name__ == "__main__":
    main()
