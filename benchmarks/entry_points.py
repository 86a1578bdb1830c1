"""Speed at every entry point (issue 14): each ratio beside its floor and baseline, one run.

    python benchmarks/entry_points.py [--repeats 21] [--pdg ../shared/pdg-minimal-example]
                                      [--skip-slow] [--only 1234]

Contenders of one group take turns within every repeat (round-robin), so they share the
machine's state; medians of the repeats (and the fastest repeat, steadier under other
tenants' sustained load). The load average is printed at the start and the end. Groups:

1. In-memory geometries, dense tile (25,300 polygons, 756,596 vertices): each conversion
   route to ragged arrays alone (``shapely.to_ragged_array``, ``shapely.to_wkb`` + the numba
   WKB decoder, ``shapely.get_coordinates`` + the split kernel — fastraster's route —, the
   dropped prototype reading GEOS from numba, ``benchmarks/geos_direct.py``, and GeoArrow's
   buffers); ``rasterize_tile`` / ``compute_stats`` from shapely arrays, lists, GeoSeries, a
   GeoDataFrame with staging columns and GeoArrow arrays against the kernels' own time
   (``compute_stats`` on ragged arrays, same centroids); exactextract at the same API level.
2. Small tiles (PDG's z13 tiles, generated z15 tiles of 250-450 polygons): one tile end to
   end (``rasterize_one``, the per-tile task of ``rasterize_dir``: read, validate, kernels,
   atomic GeoTIFF, band summaries) with the default lean I/O and with GDAL I/O
   (``FASTRASTER_LEAN_IO=0``), against the **physical floor** — the file's bytes read
   (``open().read()``, page cache warm) plus the output's bytes compressed (libdeflate level
   1 of the predictor-encoded bands, as the file holds them) and written to a new file — and
   against pdgraster's method (``common.pdgraster_method``). Then where one PDG tile's and
   one z15 tile's time goes, step by step.
3. Dense tile end to end against SPEC §6's I/O floor (pyogrio ``read_arrow`` of the needed
   columns + rasterio write of the same bands) and the physical floor.
4. Import times of the modules a worker adds (fresh interpreters).

Every output path is new (``Fresh``): this VM's ext4 is mounted with ``discard``, where
replacing an existing file cost ~2.7 ms, which a run writing new tiles never pays.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    dense_tile,
    exactextract_coverage,
    pdgraster_method,
    read_floor,
    write_floor,
)

Z15_TILES = ((6096, 3641, 15), (6097, 3641, 15), (6098, 3642, 15), (6099, 3643, 15))

#: Fastest repeat (ms) of each contender of the last :func:`round_robin` call.
FASTEST: dict = {}
#: The issue-14 targets: (target, contender, ms, floor or baseline, ratio text, met).
TARGETS: list = []


def round_robin(fns: dict, repeats: int, warmup: int = 1) -> dict:
    """Median ms of each contender, the contenders taking turns in every repeat."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    FASTEST.clear()
    FASTEST.update({k: 1000 * min(v) for k, v in times.items()})
    return {k: 1000 * statistics.median(v) for k, v in times.items()}


@contextlib.contextmanager
def gdal_io():
    """fastraster's reads through pyogrio and writes through GDAL (the lean I/O off)."""
    old = os.environ.get("FASTRASTER_LEAN_IO")
    os.environ["FASTRASTER_LEAN_IO"] = "0"
    try:
        yield
    finally:
        if old is None:
            del os.environ["FASTRASTER_LEAN_IO"]
        else:
            os.environ["FASTRASTER_LEAN_IO"] = old


def physical_floor(path, bands: bytes, out: str):
    """Read the input file's bytes; compress the output bands as the file holds them
    (predictor already applied: computed once, outside) and write them to a new file."""
    import deflate

    with open(path, "rb") as fh:
        fh.read()
    blob = deflate.zlib_compress(bands, 1)
    with open(out, "wb") as fh:
        fh.write(blob)


class Fresh:
    """A new output path per call (see the module docstring)."""

    def __init__(self, folder):
        self.folder = folder
        self.n = 0

    def __call__(self, suffix=".tif"):
        self.n += 1
        return os.path.join(self.folder, f"o{self.n}{suffix}")

    def clean(self):
        for name in os.listdir(self.folder):
            if name.startswith("o"):
                os.remove(os.path.join(self.folder, name))


def predicted_bytes(array: np.ndarray) -> bytes:
    from fastraster.io.geotiff_lean import predict_float

    pix = np.ascontiguousarray(np.moveaxis(array.astype(np.float32), 0, -1))
    return predict_float(pix.reshape(pix.shape[0], -1), array.shape[0]).tobytes()


def target(name, contender, ms, base_text, ratio, limit, higher_is_better=False):
    met = ratio >= limit if higher_is_better else ratio <= limit
    sign = "≥" if higher_is_better else "≤"
    TARGETS.append((name, contender, ms, base_text, f"{ratio:.2f}× ({sign} {limit}×)",
                    "met" if met else "not met"))


# ---------------------------------------------------------------------------------------------
# 1. In-memory geometries
# ---------------------------------------------------------------------------------------------


def in_memory(repeats, skip_slow, rows):
    import geoarrow.pyarrow as ga
    import pyarrow as pa
    import pyogrio
    import shapely
    from geos_direct import from_geos

    import fastraster
    from fastraster.model import ingest
    from fastraster.model.compute import compute_stats
    from fastraster.model.geometry import RaggedPolygons, wkb_buffers
    from fastraster.model.grid import TileGrid
    from fastraster.model.repair import repair_invalid

    path = dense_tile()
    tile, tms = (1524, 910, 13), "WorldCRS84Quad"
    grid = TileGrid.from_tile(tile, tms)
    df = pyogrio.read_dataframe(path)
    geoms = np.asarray(df.geometry.values, dtype=object)
    cents = (df["staging_centroid_x"].to_numpy(), df["staging_centroid_y"].to_numpy())
    polys = RaggedPolygons.from_shapely(geoms)
    wkb = ga.as_wkb(pa.array(shapely.to_wkb(geoms)))
    sep = ga.as_geoarrow(wkb, coord_type=ga.CoordType.SEPARATED)
    inter = ga.as_geoarrow(wkb, coord_type=ga.CoordType.INTERLEAVED)
    gdf = df[["staging_centroid_x", "staging_centroid_y", "geometry"]]
    for route in (ingest.from_shapely(geoms), from_geos(geoms), ingest.from_arrow(sep)):
        assert all(np.array_equal(a, b) for a, b in zip(route.arrays, polys.arrays))

    def rt(obj):
        return lambda: fastraster.rasterize_tile(obj, tile, tms=tms)

    conv = round_robin({
        "shapely.to_ragged_array (before)": lambda: RaggedPolygons.from_shapely(geoms),
        "shapely.to_wkb + numba WKB decoder": lambda: RaggedPolygons.from_wkb(
            *wkb_buffers(pa.array(shapely.to_wkb(geoms)))),
        "get_coordinates + split kernel (fastraster)": lambda: ingest.from_shapely(geoms),
        "GEOS read from numba (prototype, dropped)": lambda: from_geos(geoms),
        "shapely.get_coordinates alone (a floor)": lambda: shapely.get_coordinates(geoms),
        "GeoArrow polygon, separated": lambda: ingest.from_arrow(sep),
        "GeoArrow polygon, interleaved": lambda: ingest.from_arrow(inter),
        "GeoArrow WKB": lambda: ingest.from_arrow(wkb),
    }, repeats)
    fast = dict(FASTEST)
    ours = conv["get_coordinates + split kernel (fastraster)"]
    for k, v in conv.items():
        rows.append(("1 conversion to ragged arrays", k, v, f"fastest {fast[k]:.2f}",
                     f"{v / ours:.2f}× fastraster's route"))
    t = round_robin({
        "kernels, polygon centroids": lambda: compute_stats(polys, grid),
        "kernels, staging centroids": lambda: compute_stats(polys, grid, centroids=cents),
        "validity screen": lambda: repair_invalid(polys, "repair"),
        "compute_stats(shapely ndarray)": lambda: compute_stats(geoms, grid),
        "compute_stats(GeoArrow separated)": lambda: compute_stats(sep, grid),
        "rasterize_tile(shapely ndarray)": rt(geoms),
        "rasterize_tile(list)": rt(list(geoms)),
        "rasterize_tile(GeoSeries)": rt(df.geometry),
        "rasterize_tile(GeoDataFrame, staging columns)": rt(gdf),
        "rasterize_tile(GeoArrow separated)": rt(sep),
        "rasterize_tile(GeoArrow interleaved)": rt(inter),
        "rasterize_tile(GeoArrow WKB)": rt(wkb),
        "rasterize_tile(shapely ndarray), before (to_ragged_array)": lambda: _before(
            geoms, grid),
    }, repeats)
    fast = dict(FASTEST)
    k0, k1 = t["kernels, polygon centroids"], t["kernels, staging centroids"]
    for name, ms in t.items():
        if name.startswith("kernels") or name == "validity screen":
            rows.append(("1 in-memory, dense", name, ms, f"fastest {fast[name]:.2f}", ""))
            continue
        base, what = (k1, "kernels, staging centroids") if "GeoDataFrame" in name else (
            k0, "kernels, polygon centroids")
        rows.append(("1 in-memory, dense", name, ms, f"{what} {base:.2f}",
                     f"{ms / base:.2f}× (fastest repeats {fast[name] / fast[what]:.2f}×)"))
        if "before" not in name:
            target("1 in-memory ≤ 1.5× kernels", name, ms, f"{what} {base:.2f}", ms / base,
                   1.5)
    # What no route through shapely's public API can avoid: copying the vertices out of
    # GEOS, the validity screen, the kernels.
    floor = conv["shapely.get_coordinates alone (a floor)"] + t["validity screen"] + k0
    rows.append(("1 in-memory, dense", "floor for shapely inputs: get_coordinates + validity "
                 "screen + kernels", floor, f"kernels {k0:.2f}", f"{floor / k0:.2f}×"))
    target("1 in-memory ≤ 1.5× kernels", "(floor of shapely inputs: get_coordinates + "
           "validity + kernels)", floor, f"kernels {k0:.2f}", floor / k0, 1.5)
    if not skip_slow:
        ee = round_robin({"exactextract": lambda: exactextract_coverage(grid, df)},
                         max(1, repeats // 7), warmup=0)["exactextract"]
        best = t["rasterize_tile(shapely ndarray)"]
        rows.append(("1 in-memory, dense", "exactextract cell_id + coverage (same objects)",
                     ee, f"rasterize_tile(shapely) {best:.2f}", f"{ee / best:.0f}× slower"))
        target("1 ≥ 30× exactextract", "exactextract / rasterize_tile(shapely ndarray)", ee,
               f"rasterize_tile(shapely) {best:.2f}", ee / best, 30, higher_is_better=True)


def _before(geoms, grid):
    """rasterize_tile as it was: shapely.to_ragged_array, then the same steps."""
    from fastraster.model.compute import compute_stats
    from fastraster.model.geometry import RaggedPolygons
    from fastraster.model.repair import repair_invalid

    polys, _ = repair_invalid(RaggedPolygons.from_shapely(geoms), "repair")
    return compute_stats(polys, grid)


# ---------------------------------------------------------------------------------------------
# 2 and 3. Files end to end
# ---------------------------------------------------------------------------------------------


def z15_tiles() -> list[str]:
    from fastraster.sample import make_sample

    root = Path(tempfile.gettempdir()) / "fastraster-bench-z15"
    paths = [root / "WorldCRS84Quad" / "15" / str(x) / f"{y}.gpkg" for x, y, _ in Z15_TILES]
    if not all(p.exists() for p in paths):
        make_sample(root, tiles=Z15_TILES, spacing_m=15.0, fill=0.6, vertices=24, seed=7)
    return [str(p) for p in paths]


def files_end_to_end(files, label, repeats, skip_slow, rows, tmp, spec_floor=False):
    from fastraster.io.gpkg_lean import read_staged_auto
    from fastraster.io.staged import read_staged
    from fastraster.io.tilepaths import parse_tile_path
    from fastraster.model.grid import TileGrid
    from fastraster.pipelines.options import RasterizeOptions
    from fastraster.pipelines.staged import rasterize_one
    from fastraster.pipelines.tile import rasterize_file

    options = RasterizeOptions.create(overwrite=True)
    fresh = Fresh(tmp)
    summary = {k: [] for k in ("lean", "gdal", "floor", "pdg", "fast_lean", "fast_gdal",
                               "fast_floor")}
    for path in files:
        job = parse_tile_path(path)
        grid = TileGrid.from_tile(job.tile, job.tms)
        rec = rasterize_one(job, fresh(), options)
        assert rec["status"] == "ok", rec
        array, _ = rasterize_file(path, grid, options)
        pred = predicted_bytes(array)

        def gdal(job=job):
            with gdal_io():
                return rasterize_one(job, fresh(), options)

        contenders = {
            "rasterize_one (lean I/O, the default)": lambda job=job: rasterize_one(
                job, fresh(), options),
            "rasterize_one, GDAL I/O (FASTRASTER_LEAN_IO=0)": gdal,
            "physical floor: read bytes + deflate + write": lambda path=path, pred=pred:
                physical_floor(path, pred, fresh(".bin")),
            "lean read (read_staged_auto)": lambda path=path: read_staged_auto(path),
            "GDAL read (pyogrio, read_staged)": lambda path=path: read_staged(path),
        }
        if spec_floor:
            arr32 = array.astype(np.float32)
            contenders["SPEC §6 I/O floor: pyogrio read + rasterio write"] = (
                lambda path=path, grid=grid, arr32=arr32: (
                    read_floor(path), write_floor(grid, arr32, fresh())))
        t = round_robin(contenders, repeats)
        fast = dict(FASTEST)
        fresh.clean()
        name = "/".join(Path(path).parts[-3:])
        lean_k, gdal_k = ("rasterize_one (lean I/O, the default)",
                          "rasterize_one, GDAL I/O (FASTRASTER_LEAN_IO=0)")
        fl = "physical floor: read bytes + deflate + write"
        floor, lean, gd = t[fl], t[lean_k], t[gdal_k]
        rows.append((label, f"{name} ({rec['polygons']} polygons): physical floor", floor,
                     f"fastest {fast[fl]:.2f}", ""))
        rows.append((label, f"{name}: read alone, pyogrio / lean",
                     t["GDAL read (pyogrio, read_staged)"], "",
                     f"lean {t['lean read (read_staged_auto)']:.2f} ms"))
        rows.append((label, f"{name}: rasterize_one, GDAL I/O", gd, f"floor {floor:.2f}",
                     f"{gd / floor:.2f}× floor"))
        rows.append((label, f"{name}: rasterize_one, lean I/O (default)", lean,
                     f"floor {floor:.2f}",
                     f"{lean / floor:.2f}× floor; {gd / lean:.2f}× faster than GDAL I/O; "
                     f"fastest repeats {fast[lean_k]:.2f} ms = "
                     f"{fast[lean_k] / fast[fl]:.2f}× floor {fast[fl]:.2f}"))
        if spec_floor:
            spec = t["SPEC §6 I/O floor: pyogrio read + rasterio write"]
            sk = "SPEC §6 I/O floor: pyogrio read + rasterio write"
            rows.append((label, f"{name}: SPEC §6 I/O floor", spec, f"fastest {fast[sk]:.2f}",
                         ""))
            for k, v in (("GDAL I/O", gd), ("lean I/O", lean)):
                rows.append((label, f"{name}: rasterize_one {k} vs SPEC §6 floor", v,
                             f"SPEC floor {spec:.2f}", f"{v / spec:.2f}×"))
            target("3 dense ≤ 1.3× SPEC §6 I/O floor", f"{name} rasterize_one", lean,
                   f"SPEC floor {spec:.2f}", lean / spec, 1.3)
        for k, key in (("lean", lean_k), ("gdal", gdal_k), ("floor", fl)):
            summary[k].append(t[key])
            summary["fast_" + k].append(fast[key])
        if not skip_slow:
            pdg = round_robin({"pdg": lambda path=path, grid=grid: pdgraster_method(
                path, grid, fresh())}, 3, warmup=0)["pdg"]
            summary["pdg"].append(pdg)
            rows.append((label, f"{name}: pdgraster's method", pdg, f"lean {lean:.2f}",
                         f"{pdg / lean:.0f}× (GDAL I/O {pdg / gd:.0f}×)"))
    return summary


def small_targets(kind, s):
    """The per-tile targets of group 2 from the medians over tiles."""
    med = {k: statistics.median(v) for k, v in s.items() if v}
    target(f"2 {kind} ≤ 1.3× physical floor", "rasterize_one per tile (median of tiles)",
           med["lean"], f"floor {med['floor']:.2f}", med["lean"] / med["floor"], 1.3)
    target(f"2 {kind} ≤ 1.3× physical floor", "... fastest repeats",
           med["fast_lean"], f"floor {med['fast_floor']:.2f}",
           med["fast_lean"] / med["fast_floor"], 1.3)
    if "pdg" in med:
        target(f"2 {kind} ≥ 200× pdgraster's method", "pdgraster / rasterize_one",
               med["pdg"], f"rasterize_one {med['lean']:.2f}", med["pdg"] / med["lean"], 200,
               higher_is_better=True)
        target(f"2 {kind} ≥ 200× pdgraster's method", "... by fastest repeats",
               med["pdg"], f"rasterize_one {med['fast_lean']:.2f}",
               med["pdg"] / med["fast_lean"], 200, higher_is_better=True)
    return med


def small_tile_breakdown(path, repeats, rows, tmp):
    """Where one small tile's time goes (each step alone, round-robin)."""
    import deflate

    from fastraster.io.geotiff import write_geotiff
    from fastraster.io.geotiff_lean import predict_float, write_geotiff_lean
    from fastraster.io.gpkg_lean import read_staged_auto
    from fastraster.io.staged import read_staged
    from fastraster.io.summary import band_summary
    from fastraster.io.tilepaths import parse_tile_path
    from fastraster.model.compute import compute_stats
    from fastraster.model.grid import TileGrid
    from fastraster.pipelines.tile import prepare

    job = parse_tile_path(path)
    grid = TileGrid.from_tile(job.tile, job.tms)
    data = read_staged_auto(path)
    polys, cents, _, _ = prepare(data)
    arr = compute_stats(polys, grid, None, centroids=cents)
    a32 = arr.astype(np.float32)
    pix = np.ascontiguousarray(np.moveaxis(a32, 0, -1)).reshape(grid.height, -1)
    pred = predict_float(pix, 2).tobytes()
    blob = deflate.zlib_compress(pred, 1)
    fresh = Fresh(tmp)

    def read_bytes():
        with open(path, "rb") as fh:
            fh.read()

    def write_bytes():
        with open(fresh(".bin"), "wb") as fh:
            fh.write(blob)

    t = round_robin({
        "file bytes read (open().read())": read_bytes,
        "lean read (sqlite3 + WKB decode)": lambda: read_staged_auto(path),
        "validity screen (prepare)": lambda: prepare(data),
        "compute_stats (kernels)": lambda: compute_stats(polys, grid, None, centroids=cents),
        "band summaries (2 bands)": lambda: [band_summary(a32[b]) for b in range(2)],
        "float predictor (numpy reference; the writer's kernel is faster)": lambda:
            predict_float(pix, 2),
        "deflate level 1 (libdeflate)": lambda: deflate.zlib_compress(pred, 1),
        "write the bytes to a new file": write_bytes,
        "write_geotiff_lean (all of the write)": lambda: write_geotiff_lean(
            fresh(), a32, grid, ["a", "b"]),
        "write_geotiff through GDAL (engine='gdal')": lambda: write_geotiff(
            fresh(), a32, grid, ["a", "b"], engine="gdal"),
        "pyogrio read (read_staged)": lambda: read_staged(path),
    }, repeats)
    fresh.clean()
    name = "/".join(Path(path).parts[-3:])
    for k, v in t.items():
        rows.append(("2 small: where the time goes", f"{name}: {k}", v,
                     f"fastest {FASTEST[k]:.2f}", ""))


# ---------------------------------------------------------------------------------------------
# 4. Imports
# ---------------------------------------------------------------------------------------------


def import_seconds(stmt: str, base: str, runs: int = 7) -> float:
    """Median seconds that ``stmt`` adds in fresh interpreters that ran ``base`` first
    (timed inside each interpreter, so start-up noise stays out)."""
    code = (f"{base}\nimport time\nt = time.perf_counter()\n{stmt}\n"
            "print(time.perf_counter() - t)")
    times = [float(subprocess.run([sys.executable, "-c", code], check=True,
                                  capture_output=True, text=True).stdout.split()[-1])
             for _ in range(runs)]
    return statistics.median(times)


def imports(rows, runs):
    for base, stmt in (("import numpy, numba, shapely, pyogrio.raw, rasterio",
                        "import fastraster.pipelines.staged"),
                       ("import fastraster.pipelines.staged", "import deflate"),
                       ("import fastraster.pipelines.staged", "import fastraster.model.ingest"),
                       ("import fastraster.pipelines.staged", "import tifffile"),
                       ("import fastraster.pipelines.staged", "import geoarrow.pyarrow")):
        s = import_seconds(stmt, base, runs)
        rows.append(("4 import", f"{stmt} (after {base})", 1000 * s, "", ""))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--pdg", default=str(Path(__file__).resolve().parents[2] / "shared"
                                         / "pdg-minimal-example"))
    ap.add_argument("--skip-slow", action="store_true",
                    help="no exactextract, no pdgraster method")
    ap.add_argument("--only", default="1234", help="groups to run, e.g. 23")
    args = ap.parse_args(argv)
    from fastraster import warm_up
    from fastraster.execution.allocator import tune_allocator

    load0 = os.getloadavg()
    warm_up()
    tune_allocator()  # as in a worker
    rows = []
    meds = {}
    with tempfile.TemporaryDirectory() as tmp:
        if "1" in args.only:
            in_memory(args.repeats, args.skip_slow, rows)
        if "2" in args.only:
            pdg = sorted(str(p) for p in (Path(args.pdg) / "staged").rglob("*.gpkg"))
            if pdg:
                s = files_end_to_end(pdg, "2 small: PDG z13", args.repeats, args.skip_slow,
                                     rows, tmp)
                meds["PDG z13"] = small_targets("PDG z13", s)
            s = files_end_to_end(z15_tiles(), "2 small: z15", args.repeats, args.skip_slow,
                                 rows, tmp)
            meds["z15"] = small_targets("z15", s)
            for path in [*pdg[:1], z15_tiles()[0]]:
                small_tile_breakdown(path, args.repeats, rows, tmp)
        if "3" in args.only:
            files_end_to_end([dense_tile()], "3 dense", args.repeats, True, rows, tmp,
                             spec_floor=True)
    if "4" in args.only:
        imports(rows, 7)
    load1 = os.getloadavg()
    print(f"\n# entry points — {os.uname().nodename}, {os.cpu_count()} CPUs, repeats "
          f"{args.repeats}; load average at start {load0[0]:.2f} / {load0[1]:.2f} / "
          f"{load0[2]:.2f}, at end {load1[0]:.2f} / {load1[1]:.2f} / {load1[2]:.2f}\n")
    print("| group | contender | median ms | floor / baseline (ms) | ratio |")
    print("|---|---|---|---|---|")
    for group, name, ms, base, ratio in rows:
        print(f"| {group} | {name} | {ms:.2f} | {base} | {ratio} |")
    for kind, med in meds.items():
        line = (f"\n{kind} median per tile: lean I/O {med['lean']:.2f} ms, GDAL I/O "
                f"{med['gdal']:.2f} ms, physical floor {med['floor']:.2f} ms; fastest "
                f"repeats: lean {med['fast_lean']:.2f}, GDAL {med['fast_gdal']:.2f}, floor "
                f"{med['fast_floor']:.2f} ms")
        if "pdg" in med:
            line += f"; pdgraster's method {med['pdg']:.0f} ms"
        print(line)
    print("\n## issue 14 targets\n")
    print("| target | measured | ms | floor / baseline (ms) | ratio | |")
    print("|---|---|---|---|---|---|")
    for name, what, ms, base, ratio, met in TARGETS:
        print(f"| {name} | {what} | {ms:.2f} | {base} | {ratio} | {met} |")


if __name__ == "__main__":
    main()
