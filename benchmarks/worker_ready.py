"""How long until a new worker process is ready: interpreter, imports, numba kernels.

    python benchmarks/worker_ready.py [--runs 7] [--no-forkserver] [--no-importtime]

Every variant runs in fresh processes, ``--runs`` times, the variants interleaved (in
alternating order, round by round) because the machine may be shared; the table gives medians.
"Ready" is the wall time from just before the process is created until its last statement
ran (measured with ``time.time()`` on both sides, so interpreter shutdown is not counted):

* ``python``: the bare interpreter (``site`` included, as in every worker);
* ``numpy + numba`` and the *dependency floor*: the modules a worker cannot do without
  (numpy, numba, shapely, pyogrio, rasterio), without fastraster; ``+ numba set-up``: the floor
  plus loading one trivial cached numba function, i.e. numba's one-off initialisation of its
  compiler target that the first cached kernel of any process pays; the floor is also measured
  with geopandas and pandas made unimportable, as in an environment without them (pyogrio
  imports both eagerly when they are installed);
* ``import fastraster.pipelines.staged`` and ``+ warm_up()`` (every kernel, as the issue's target
  measures it; ``warm_up`` reads a one-polygon GeoPackage, so it imports pyogrio and rasterio);
  ``warm_up(default stats)`` loads only what the default statistics need;
* ``worker``: import plus one ``rasterize_one`` on a small sample tile (default statistics),
  which imports and loads lazily exactly what a worker uses: ready *and* one tile done (also
  with geopandas and pandas unimportable);
* fork server (``multiprocessing`` ``forkserver`` with ``set_forkserver_preload``): the time
  from ``Process.start()`` until the forked child is ready, once the server runs, with the
  server preloading the imports only (the child then loads the kernels: ``warm_up(default
  stats)``) or the imports and the kernels (``fastraster.preload``, which calls ``warm_up()``), each
  also until one tile is done. Each fork-server variant runs in its own process (a process
  has one fork server); the server's own start-up is reported separately.

An import-time breakdown (``python -X importtime``, self time summed per top-level package,
median of 3 runs) of what a worker imports follows the table.

The numba cache is warmed first (untimed; this compiles once if the kernels changed).
Sample data go to a temporary folder. About 1.5 minutes on the 2-core development VM.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

PY = sys.executable
TARGET_S = 0.5
TILE = (1524, 910, 13)
TMS = "WorldCRS84Quad"
DEFAULT_PRELOAD = ["fastraster.pipelines.staged", "pyogrio.raw", "rasterio"]

#: A worker's statements for one sample tile; ``{path}`` and ``{out}`` are filled in.
TASK = """
import fastraster.pipelines.staged as p
from fastraster.io.tilepaths import parse_tile_path
from fastraster.pipelines.options import RasterizeOptions
job = parse_tile_path({path!r})
settings = RasterizeOptions.create(overwrite=True)
rec = p.rasterize_one(job, {out!r}, settings)
assert rec["status"] == "ok", rec
"""

FLOOR = "import numpy, numba, shapely, pyogrio.raw, rasterio"
FLOOR_LABEL = "dependency floor: numpy, numba, shapely, pyogrio, rasterio"
NO_GEOPANDAS = "import sys; sys.modules['geopandas'] = sys.modules['pandas'] = None\n"


def variants(path: str, out: str, probe_dir: str) -> dict[str, str]:
    """Label -> Python statements run in a fresh process."""
    numba_setup = (f"import sys; sys.path.insert(0, {probe_dir!r}); import _wr_probe; "
                   "_wr_probe.f(1)")
    rows = {
        "python": "pass",
        "import numpy, numba": "import numpy, numba",
        FLOOR_LABEL: FLOOR,
        "floor + numba set-up (first cached kernel)": f"{FLOOR}\n{numba_setup}",
    }
    if _installed("geopandas") or _installed("pandas"):
        rows["floor, geopandas + pandas not installed"] = NO_GEOPANDAS + FLOOR
    rows.update({
        "import fastraster.pipelines.staged": "import fastraster.pipelines.staged",
        "import fastraster.pipelines.staged; warm_up()":
            "import fastraster.pipelines.staged as p; p.warm_up()",
        "import fastraster.pipelines.staged; warm_up(default stats)":
            "import fastraster.pipelines.staged as p; p.warm_up(p.parse_stats(None))",
        "worker: import + rasterize_one (1 tile)": TASK.format(path=path, out=out),
    })
    if _installed("geopandas") or _installed("pandas"):
        rows["worker, geopandas + pandas not installed"] = NO_GEOPANDAS + rows[
            "worker: import + rasterize_one (1 tile)"]
    return rows


def _installed(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def ready_seconds(code: str, env=None) -> float:
    """Seconds from just before a new ``python -c code`` starts until its code has run."""
    code += "\nimport time; print(time.time())"
    t0 = time.time()
    proc = subprocess.run([PY, "-c", code], capture_output=True, text=True, env=env)
    if proc.returncode:
        raise RuntimeError(f"{code!r} failed:\n{proc.stderr[-3000:]}")
    return float(proc.stdout.split()[-1]) - t0


# ---------------------------------------------------------------------------------------------
# Fork server (run as a child: ``--forkserver-child MODE``)
# ---------------------------------------------------------------------------------------------


def _forked(conn, t0, work, path, out):
    """Target of the forked process: do ``work``, send back the seconds since ``t0``."""
    if work == "warm_up":
        import fastraster.pipelines.staged as p

        p.warm_up(p.parse_stats(None))
    elif work == "tile":
        exec(TASK.format(path=path, out=out))
    conn.send(time.time() - t0)


def forkserver_child(mode: str, runs: int, path: str, out_dir: str) -> dict:
    """Start a fork server (preloading imports, or imports and kernels); time new children."""
    import multiprocessing as mp

    ctx = mp.get_context("forkserver")
    # "__main__" (this script) too, as a user's script would be: children then skip
    # re-importing it.
    preload = ["__main__", *(DEFAULT_PRELOAD if mode == "imports" else ["fastraster.preload"])]
    ctx.set_forkserver_preload(preload)

    def one(work):
        recv, send = ctx.Pipe(duplex=False)
        out = os.path.join(out_dir, f"fs-{mode}-{work}.tif")
        proc = ctx.Process(target=_forked, args=(send, time.time(), work, path, out))
        proc.start()
        seconds = recv.recv()
        proc.join()
        if proc.exitcode:
            raise RuntimeError(f"forked worker failed ({mode}, {work})")
        return seconds

    t0 = time.time()
    one("nothing")  # starts the server: its preload runs now
    result = {"server_start": time.time() - t0}
    works = ("warm_up", "tile") if mode == "imports" else ("nothing", "tile")
    for work in works:
        result[work] = [one(work) for _ in range(runs)]
    return result


def forkserver_rows(runs: int, path: str, out_dir: str, probe_dir: str) -> tuple[dict, dict]:
    """Run both fork-server variants in child processes; (rows, server start-up seconds)."""
    # Python 3.11's fork server does not take the parent's sys.path: PYTHONPATH reaches it.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [probe_dir, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    labels = {
        ("imports", "warm_up"): "fork server, imports preloaded: child ready (+ warm_up)",
        ("imports", "tile"): "fork server, imports preloaded: child + 1 tile",
        ("kernels", "nothing"): "fork server, imports + kernels preloaded: child ready",
        ("kernels", "tile"): "fork server, imports + kernels preloaded: child + 1 tile",
    }
    rows, starts = {}, {}
    for mode in ("imports", "kernels"):
        proc = subprocess.run([PY, __file__, "--forkserver-child", mode, "--runs", str(runs),
                               "--data", path, "--out", out_dir],
                              capture_output=True, text=True, env=env)
        if proc.returncode:
            raise RuntimeError(f"fork server ({mode}) failed:\n{proc.stderr[-3000:]}")
        res = json.loads(proc.stdout.splitlines()[-1])
        starts[mode] = res.pop("server_start")
        for work, times in res.items():
            rows[labels[mode, work]] = times
    return rows, starts


# ---------------------------------------------------------------------------------------------
# Import-time breakdown
# ---------------------------------------------------------------------------------------------


def importtime_by_package(code: str, repeats: int = 3) -> dict[str, float]:
    """Median over ``repeats`` of ``-X importtime`` self time (s) summed per top package."""
    runs = []
    for _ in range(repeats):
        proc = subprocess.run([PY, "-X", "importtime", "-c", code], capture_output=True,
                              text=True, check=True)
        per = {}
        for line in proc.stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            self_us, _cum, name = line[len("import time:"):].split("|")
            top = name.strip().split(".")[0]
            per[top] = per.get(top, 0.0) + int(self_us) / 1e6
        runs.append(per)
    names = {n for r in runs for n in r}
    return {n: statistics.median(r.get(n, 0.0) for r in runs) for n in names}


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def prepare(tmp: Path) -> tuple[str, str]:
    """Sample tile, probe modules and a warm numba cache; (tile path, probe folder)."""
    from fastraster.sample import make_sample

    make_sample(tmp / "staged", tiles=(TILE,), spacing_m=40.0, seed=1)
    path = str(tmp / "staged" / TMS / str(TILE[2]) / str(TILE[0]) / f"{TILE[1]}.gpkg")
    probe = tmp / "probe"
    probe.mkdir()
    (probe / "_wr_probe.py").write_text(textwrap.dedent("""\
        from numba import njit


        @njit(cache=True)
        def f(x):
            return x + 1
        """))
    # Untimed: fills the numba caches (fastraster's and the probe's) if they are cold.
    subprocess.run([PY, "-c", f"import sys; sys.path.insert(0, {str(probe)!r}); "
                    "import _wr_probe; _wr_probe.f(1); "
                    "import fastraster.pipelines.staged as p; p.warm_up()"], check=True)
    return path, str(probe)


def versions() -> str:
    code = ("import importlib.metadata as m; print(', '.join(f'{n} {m.version(n)}' for n in "
            "('numpy', 'numba', 'pyogrio', 'pyarrow', 'shapely', 'rasterio')))")
    return subprocess.run([PY, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=7, help="runs per variant (median)")
    ap.add_argument("--no-forkserver", action="store_true", help="skip the fork-server rows")
    ap.add_argument("--no-importtime", action="store_true", help="skip the import breakdown")
    ap.add_argument("--forkserver-child", choices=("imports", "kernels"), help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.forkserver_child:
        print(json.dumps(forkserver_child(args.forkserver_child, args.runs, args.data,
                                          args.out)))
        return

    started = time.time()
    print(f"`{shlex.join(['python', *sys.argv])}`\n")
    with tempfile.TemporaryDirectory(prefix="fastraster-worker-ready-") as tmp:
        path, probe = prepare(Path(tmp))
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        todo = variants(path, os.path.join(tmp, "out.tif"), probe)
        times = {label: [] for label in todo}
        for r in range(args.runs):
            for label in (list(todo) if r % 2 == 0 else list(todo)[::-1]):
                times[label].append(ready_seconds(todo[label]))
        starts = {}
        if not args.no_forkserver:
            rows, starts = forkserver_rows(args.runs, path, tmp, probe)
            times.update(rows)
        breakdown = None if args.no_importtime else importtime_by_package(
            "import fastraster.pipelines.staged, pyogrio.raw, rasterio")

    floor = statistics.median(times[FLOOR_LABEL])
    print(f"Python {platform.python_version()}, {versions()}; {os.cpu_count()} CPUs, "
          f"load average {load:.2f} at start; medians of {args.runs} runs.\n")
    print("| variant | ready, median s | min s | max s | / floor | / 0.5 s target |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, ts in times.items():
        med = statistics.median(ts)
        print(f"| {label} | {med:.3f} | {min(ts):.3f} | {max(ts):.3f} | {med / floor:.2f} "
              f"| {med / TARGET_S:.2f} |")
    if starts:
        print("\nFork server start-up (preload included), once per parent process: "
              + ", ".join(f"{k} preloaded {v:.2f} s" for k, v in starts.items()) + ".")
    if breakdown:
        total = sum(breakdown.values())
        print(f"\nImport time of `import fastraster.pipelines.staged, pyogrio.raw, rasterio` "
              f"(-X importtime, self time per top-level package, median of 3; total "
              f"{total:.2f} s; packages >= 10 ms):\n")
        print("| package | s | share |")
        print("|---|---:|---:|")
        for name, s in sorted(breakdown.items(), key=lambda kv: -kv[1]):
            if s >= 0.010:
                print(f"| {name} | {s:.3f} | {s / total:.0%} |")
    print(f"\n(benchmark took {time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
