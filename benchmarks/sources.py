"""Raw scenes -> max-zoom GeoTIFFs (``fastraster.rasterize_sources``): cost per input polygon, by
phase, and the measurements behind the choice of decomposition.

    python benchmarks/sources.py phases [--repeats 5] [--zooms 13 15] [--dtype float64]
    python benchmarks/sources.py decompose [--z 15] [--copies 1 4] [--repeats 3]
    python benchmarks/sources.py memory [--z 15] [--copies 40] [--chunks 4096 ... 1000000000]

``phases``: one core (``n_jobs=1``, in this process), on a copy of
``../shared/pdg-staging-example`` through its own configs (z13 and z15 interleaved in each
repeat, so they share the machine's state); per phase, the median over repeats of the summed
seconds, divided by the 31,977 input features; the first (cold) repeat is dropped. Compared
with PDG's own times on the same inputs (its ``timings.json``).

``decompose``: the contenders, each in a fresh process per repeat (peak RSS = the process's
``VmHWM``), interleaved, on the example replicated ``--copies`` times side by side (8 scenes
per copy, shifted by whole kilometres, distinct dates):

* ``map-reduce`` (what ``rasterize_sources`` does): map per scene -> Arrow intermediates ->
  reduce per tile;
* ``bbox-blocks``: no intermediates; per block of tiles (their z-3 ancestor), re-read every
  scene overlapping it with a bbox filter and do everything in memory;
* ``partial-rasters``: additive partial rasters per (scene, tile, flag pattern), estimated
  from the map-reduce intermediates: the kernel time of one call per partial and the bytes
  of the partials (dense and sparse).

``memory``: peak RSS of one process over the same polygons as one big scene file and as
many small ones, for several ``chunk_size`` values (1e9 = whole file at once).

Prints tables and writes JSON (``--json``).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = Path(os.environ.get("FASTRASTER_PDG_STAGING",
                              REPO.parent / "shared" / "pdg-staging-example"))

MAP_PHASES = [("read", ("read_s",)), ("filter (decode, Polygons)", ("filter_s",)),
              ("simplify", ("simplify_s",)), ("clip flags", ("clip_s",)),
              ("reproject", ("reproject_s",)), ("centroids", ("centroid_s",)),
              ("tile assignment", ("assign_s",)), ("dedup (overlap bits)", ("dedup_s",)),
              ("validity", ("validate_s",)), ("intermediate write", ("store_s",))]
TILE_PHASES = [("intermediate read + tile flags", "read_s"), ("kernels", "compute_s"),
               ("GeoTIFF write", "write_s"), ("band summaries", "summary_s")]


def peak_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def copy_example(dst: Path) -> Path:
    shutil.copytree(EXAMPLE / "inputs", dst / "inputs")
    for z in (13, 15):
        shutil.copy(EXAMPLE / f"config_z{z}.json", dst / f"config_z{z}.json")
    return dst


def replicate_example(dst: Path, copies: int) -> Path:
    """The example's scenes ``copies`` times, copy k shifted by k * 6 km east (in each
    scene's own CRS) with dates shifted by k days: same density, overlaps and quirks."""
    import geopandas as gpd

    src = EXAMPLE / "inputs"
    for k in range(copies):
        for kind in ("input", "footprints"):
            for path in sorted((src / kind).rglob("*.shp")):
                rel = path.relative_to(src / kind)
                out = dst / kind / f"copy{k}" / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                gdf = gpd.read_file(path)
                if k:
                    if gdf.crs.is_geographic:  # the far scene's footprint
                        lat = np.deg2rad(gdf.total_bounds[1::2].mean())
                        gdf["geometry"] = gdf.geometry.translate(
                            xoff=k * 6000 / (111320 * np.cos(lat)))
                    else:
                        gdf["geometry"] = gdf.geometry.translate(xoff=k * 6000)
                    if "Date" in gdf:
                        gdf["Date"] = [str(int(d) + k * 1000000) for d in gdf["Date"]]
                import pyogrio

                pyogrio.write_dataframe(gdf, out, promote_to_multi=False)
    return dst


# ---------------------------------------------------------------------------------------------
# phases
# ---------------------------------------------------------------------------------------------


def one_run(root: Path, z: int, dtype: str):
    from fastraster.pipelines.sources import PdgSourceRules, rasterize_sources

    os.chdir(root / "inputs")
    rules, dirs = PdgSourceRules.from_pdg_config(root / f"config_z{z}.json", dtype=dtype)
    out = root / f"out{z}"
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    rep = rasterize_sources(dirs.inputs, out, footprints=dirs.footprints, rules=rules,
                            progress=False, n_jobs=1)
    wall = time.perf_counter() - t
    assert not rep.errors, rep.errors[:2]
    row = {"wall": wall, "tiles": len(rep),
           "features": sum(r["features"] for r in rep.scenes)}
    for name, keys in MAP_PHASES:
        row[name] = sum(r[k] for r in rep.scenes for k in keys)
    for name, key in TILE_PHASES:
        row[name] = sum(r[key] for r in rep)
    row["driver (plan, dispatch, CSVs)"] = wall - sum(
        row[n] for n, _ in MAP_PHASES + TILE_PHASES)
    row["passes"] = rep.passes
    return row


def cmd_phases(args):
    root = copy_example(Path(tempfile.mkdtemp(prefix="fastraster-sources-bench-")))
    runs = {z: [] for z in args.zooms}
    try:
        for rep in range(args.repeats + 1):
            for z in args.zooms:
                r = one_run(root, z, args.dtype)
                if rep:  # the first round pays numba's cache loading and GDAL's start
                    runs[z].append(r)
                print(f"  round {rep} z{z}: {r['wall']:.2f} s", file=sys.stderr)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    pdg = {z: json.load(open(EXAMPLE / f"z{z}" / "timings.json")) for z in args.zooms}
    names = [n for n, _ in MAP_PHASES] + [n for n, _ in TILE_PHASES] + [
        "driver (plan, dispatch, CSVs)", "wall"]
    result = {}
    print(f"\nus per input polygon, one core, median of {args.repeats} ({args.dtype} "
          "GeoTIFFs)")
    head = "| phase | " + " | ".join(f"z{z}" for z in args.zooms) + " |"
    print(head)
    print("|---|" + "---|" * len(args.zooms))
    for name in names:
        cells = []
        for z in args.zooms:
            n = runs[z][0]["features"]
            v = statistics.median(r[name] for r in runs[z]) / n * 1e6
            result.setdefault(z, {})[name] = v
            cells.append(f"{v:.1f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    for z in args.zooms:
        n = runs[z][0]["features"]
        tiles = runs[z][0]["tiles"]
        w = result[z]
        no_write = w["wall"] - w["GeoTIFF write"]
        p = pdg[z]
        pdg_us = (p["staging_seconds"] + p["raster_maxz_seconds"]) / n * 1e6
        print(f"z{z}: {tiles} tiles, {n} polygons; end to end {w['wall']:.1f} us/polygon "
              f"({w['wall'] * n / 1e6:.2f} s), without the GeoTIFF write {no_write:.1f}; "
              f"write share {w['GeoTIFF write'] / w['wall']:.0%} "
              f"({w['GeoTIFF write'] * n / 1e3 / tiles:.2f} ms per tile); PDG staging + "
              f"max-zoom rasters {pdg_us:.0f} us/polygon -> {pdg_us / w['wall']:.0f}x")
        result[z]["pdg_us"] = pdg_us
        result[z]["passes_median"] = {
            k: statistics.median(r["passes"][k] for r in runs[z])
            for k in runs[z][0]["passes"]}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


# ---------------------------------------------------------------------------------------------
# decompose
# ---------------------------------------------------------------------------------------------


def _rules(z):
    from fastraster.pipelines.sources import PdgSourceRules

    rules, _ = PdgSourceRules.from_pdg_config(EXAMPLE / f"config_z{z}.json")
    return rules


def run_map_reduce(data: Path, out: Path, z: int) -> dict:
    """What rasterize_sources does, with the intermediates kept to measure them."""
    from fastraster.pipelines.sources import rasterize_sources

    work = out / "work"
    t = time.perf_counter()
    rep = rasterize_sources(data / "input", out, footprints=data / "footprints",
                            rules=_rules(z), progress=False, n_jobs=1, work_dir=work)
    wall = time.perf_counter() - t
    assert not rep.errors, rep.errors[:2]
    inter = sum(os.path.getsize(p) for p in glob.glob(f"{work}/*.arrow"))
    check = _checksum(out, z)
    return {"wall": wall, "tiles": len(rep), "features": sum(r["features"] for r in rep.scenes),
            "input_bytes": sum(r["bytes_read"] for r in rep.scenes),
            "bytes_reread": 0, "intermediate_bytes": inter,
            "rows": sum(r["rows"] for r in rep.scenes),
            "map_s": rep.passes["map"], "reduce_s": rep.passes["reduce"], "check": check,
            "warm_up_s": rep.passes["warm_up"]}


def run_bbox_blocks(data: Path, out: Path, z: int, block_offset: int = 3) -> dict:
    """No intermediates: per block of tiles, every overlapping scene is re-read with a bbox
    filter and staged in memory; only the block's tiles are kept."""
    import pyogrio
    import pyogrio.raw
    import shapely
    from pyproj import Transformer

    from fastraster.io import scenes as S
    from fastraster.io.intermediate import Rows
    from fastraster.model import dedup
    from fastraster.model.assign import TileScheme, key_xy
    from fastraster.model.staging import transform_geometry
    from fastraster.model.stats import attribute_columns
    from fastraster.pipelines.sources import run as P
    from fastraster.pipelines.sources.scenes import PHASES, _stage_chunk

    rules = _rules(z)
    t0 = time.perf_counter()
    scene_list = S.find_scenes(data / "input", data / "footprints", ext=rules.ext,
                               footprint_ext=rules.footprint_ext)
    tw = time.perf_counter()
    P.warm_up(rules)
    warm = time.perf_counter() - tw
    jobs, errors = P.plan_scenes(scene_list, rules, str(out))
    assert not errors
    scheme = TileScheme.create(rules.tms, z)
    bz = max(z - block_offset, 0)
    bscheme = TileScheme.create(rules.tms, bz)
    # Scene extents in the TMS CRS (layer bounds from the header, densified transform).
    info = {}
    blocks = {}
    for j in jobs:
        meta = pyogrio.read_info(j.scene.path)
        crs = meta["crs"]
        b = Transformer.from_crs(crs, scheme.crs, always_xy=True).transform_bounds(
            *meta["total_bounds"], densify_pts=21)
        info[j.scene.id] = (crs, os.path.getsize(j.scene.path))
        x0 = int((b[0] - bscheme.left) // bscheme.span_x)
        x1 = int((b[2] - bscheme.left) // bscheme.span_x)
        y0 = int((bscheme.top - b[3]) // bscheme.span_y)
        y1 = int((bscheme.top - b[1]) // bscheme.span_y)
        for bx in range(x0, x1 + 1):
            for by in range(y0, y1 + 1):
                blocks.setdefault((bx, by), []).append(j)
    attr_cols = attribute_columns(rules.stats)
    reread = scanned = 0
    n_tiles = 0
    for (bx, by), bjobs in sorted(blocks.items()):
        left = bscheme.left + bx * bscheme.span_x
        top = bscheme.top - by * bscheme.span_y
        bbox = (left, top - bscheme.span_y, left + bscheme.span_x, top)
        present, slices = {}, {}
        for j in bjobs:
            crs, size = info[j.scene.id]
            sb = Transformer.from_crs(scheme.crs, crs, always_xy=True).transform_bounds(
                *bbox, densify_pts=21)
            sb = (sb[0] - 1, sb[1] - 1, sb[2] + 1, sb[3] + 1)  # 1 m: rounding of the bounds
            meta, table = pyogrio.raw.read_arrow(j.scene.path, bbox=sb, columns=attr_cols)
            scanned += size
            if table.num_rows == 0:
                continue
            batch = table.combine_chunks().to_batches()[0]
            chunk = S._chunk(batch, meta.get("geometry_name") or "wkb_geometry", attr_cols, 0,
                             j.scene.label)
            reread += int(chunk.data.nbytes)
            fp_clip = transform_geometry(j.footprint.geometry, j.footprint.crs, crs)
            own = j.footprint.geometry_tms
            overlaps = [dedup.overlap_geometry(j.scene.name, own, n, shapely.from_wkb(w))
                        for n, w in zip(j.neighbour_names, j.neighbour_wkb)]
            res = _stage_chunk(chunk, j.scene.label, rules, scheme, fp_clip, overlaps, crs,
                               attr_cols, dict.fromkeys(PHASES, 0.0))
            if res is None:
                continue
            tx, ty = key_xy(res["present"])
            inside = (tx >> (z - bz) == bx) & (ty >> (z - bz) == by)
            for k in res["present"][inside].tolist():
                present.setdefault(k, set()).add(j.scene.id)
            if res["batch"] is None:
                continue
            for k, s, e in zip(*(a.tolist() for a in res["tiles"])):
                if k in present:
                    slices.setdefault(k, []).append((j.scene.id, j.neighbours,
                                                     Rows.from_batch(res["batch"], s, e)))
        for k in sorted(present):
            x, y = (int(v) for v in key_xy(k))
            parts = []
            for _sid, nb, rows in sorted(slices.get(k, []), key=lambda t: t[0]):
                mask = dedup.tile_mask(nb, present[k], rows.bits.shape[1])
                f = dedup.flagged(rows.bits, mask)
                parts.append(rows.take(~f) if f.any() else rows)
            job_rows = _join(parts)
            _write_tile(job_rows, (x, y, z), rules, out)
            n_tiles += 1
    wall = time.perf_counter() - t0
    feats = sum(pyogrio.read_info(j.scene.path)["features"] for j in jobs)
    return {"wall": wall, "tiles": n_tiles, "features": feats,
            "input_bytes": sum(S.input_bytes(j.scene) for j in jobs), "bytes_reread": reread,
            "bytes_scanned": scanned, "intermediate_bytes": 0, "blocks": len(blocks),
            "scene_block_reads": sum(len(v) for v in blocks.values()),
            "check": _checksum(out, z), "warm_up_s": warm}


def _join(parts):
    from fastraster.io.intermediate import Rows
    from fastraster.model.geometry import RaggedPolygons, concat

    if not parts:
        return None
    polys = concat([r.polys for r in parts])
    polys = RaggedPolygons(*(np.array(a) for a in polys.arrays))
    cat = [np.concatenate([getattr(r, k) for r in parts]) for k in ("feature", "cx", "cy")]
    attrs = {k: np.concatenate([r.attrs[k] for r in parts]) for k in parts[0].attrs}
    return Rows(cat[0], cat[1], cat[2], None, attrs, polys)


def _write_array(arr, tile, rules, out):
    from fastraster.io.geotiff import write_geotiff
    from fastraster.io.summary import band_summary
    from fastraster.io.tilepaths import tile_path as output_path
    from fastraster.model.grid import TileGrid

    grid = TileGrid.from_tile(tile, rules.tms, rules.tile_size)
    w = arr.astype(rules.dtype, copy=False)
    write_geotiff(output_path(out, rules.tms, tile), w, grid, [s.name for s in rules.stats],
                  dtype=rules.dtype, nodata=0)
    for b in range(w.shape[0]):
        band_summary(w[b])


def _write_tile(rows, tile, rules, out):
    from fastraster.io.geotiff import write_geotiff
    from fastraster.io.summary import band_summary
    from fastraster.io.tilepaths import tile_path as output_path
    from fastraster.model.compute import compute_stats
    from fastraster.model.geometry import RaggedPolygons
    from fastraster.model.grid import TileGrid

    grid = TileGrid.from_tile(tile, rules.tms, rules.tile_size)
    if rows is None:
        polys, cx, cy, attrs = RaggedPolygons.empty(), np.empty(0), np.empty(0), {}
    else:
        polys, cx, cy, attrs = rows.polys, rows.cx, rows.cy, rows.attrs
    arr = compute_stats(polys, grid, rules.stats, centroids=(cx, cy), attributes=attrs)
    names = [s.name for s in rules.stats]
    w = arr.astype(rules.dtype, copy=False)
    write_geotiff(output_path(out, rules.tms, tile), w, grid, names, dtype=rules.dtype,
                  nodata=0)
    for b in range(w.shape[0]):
        band_summary(w[b])


def run_partial_rasters(data: Path, out: Path, z: int) -> dict:
    """Estimate of additive partial rasters per (scene, tile, flag pattern): one kernel call
    per partial (timed), their bytes dense and sparse; checked to add up to the tile."""
    from fastraster.io import scenes as S
    from fastraster.io.intermediate import SceneReader
    from fastraster.model import dedup
    from fastraster.model.compute import compute_stats
    from fastraster.model.grid import TileGrid
    from fastraster.pipelines.sources import run as P
    from fastraster.pipelines.sources.tiles import plan_tiles

    rules = _rules(z)
    work = out / "work"
    scene_list = S.find_scenes(data / "input", data / "footprints", ext=rules.ext,
                               footprint_ext=rules.footprint_ext)
    t0 = time.perf_counter()
    passes = {}
    recs, neighbours = P.map_pass(scene_list, rules, str(work), passes=passes)
    t_map = time.perf_counter() - t0
    jobs = [j for t in plan_tiles(recs, neighbours) for j in t.jobs(rules, str(out))]
    readers = {}
    n_partials = dense = sparse = 0
    check = [0.0, 0.0]
    t_write = 0.0
    t_kernels = 0.0
    nb = len(rules.stats)
    for job in jobs:
        grid = TileGrid.from_tile(job.tile, rules.tms, rules.tile_size)
        total = np.zeros((nb, grid.height, grid.width))
        for sid, path, _, batch, s, e in job.slices:
            reader = readers.setdefault(path, SceneReader(path))
            rows = reader.rows(batch, s, e)
            patterns, inverse = np.unique(rows.bits, axis=0, return_inverse=True)
            for p in range(patterns.shape[0]):
                sel = np.flatnonzero(inverse.ravel() == p)
                sub = rows.take(sel)
                t = time.perf_counter()
                arr = compute_stats(sub.polys, grid, rules.stats, centroids=(sub.cx, sub.cy))
                t_kernels += time.perf_counter() - t
                n_partials += 1
                dense += arr.size * 8
                nz = np.count_nonzero(np.any(arr != 0, axis=0))
                sparse += int(nz) * (4 + 8 * nb)
                # the partial is kept only where the tile's flags would keep its pattern
                mask = dedup.tile_mask(neighbours.get(sid, ()), job.present,
                                       rows.bits.shape[1])
                if not dedup.flagged(patterns[p:p + 1], mask)[0]:
                    total += arr
        check[0] += float(total[0].sum())
        check[1] += float(total[1].sum())
        t = time.perf_counter()
        _write_array(total, job.tile, rules, out)
        t_write += time.perf_counter() - t
    for r in readers.values():
        r.close()
    feats = sum(r["features"] for r in recs)
    return {"wall": t_map + t_kernels + t_write, "map_s": t_map, "kernel_s": t_kernels,
            "warm_up_s": passes["warm_up"],
            "tiles": len(jobs), "features": feats, "partials": n_partials,
            "intermediate_bytes": sparse, "dense_bytes": dense, "bytes_reread": 0,
            "input_bytes": sum(r["bytes_read"] for r in recs),
            "check": [round(check[0], 6), round(check[1], 6)]}


def _checksum(out, z):
    """Sums of the count and coverage bands over every tile (equal across contenders)."""
    import rasterio

    c = [0.0, 0.0]
    for p in sorted(glob.glob(f"{out}/WGS1984Quad/{z}/*/*.tif")):
        with rasterio.open(p) as src:
            a = src.read()
        c[0] += float(a[0].sum())
        c[1] += float(a[1].sum())
    return [round(c[0], 6), round(c[1], 6)]


def cmd_run(args):
    """One contender in this (fresh) process; prints a JSON line."""
    fn = {"map-reduce": run_map_reduce, "bbox-blocks": run_bbox_blocks,
          "partial-rasters": run_partial_rasters,
          "memory": lambda d, o, z: run_memory(d, o, z, args.chunk)}[args.mode]
    out = Path(tempfile.mkdtemp(prefix=f"fastraster-{args.mode}-"))
    try:
        res = fn(Path(args.data), out, args.z)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    res["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(res))


def cmd_decompose(args):
    modes = ["map-reduce", "bbox-blocks", "partial-rasters"]
    results = {}
    for copies in args.copies:
        data = replicate_example(Path(tempfile.mkdtemp(prefix="fastraster-rep-")), copies)
        try:
            for rep in range(args.repeats):
                for mode in modes:
                    cmd = [sys.executable, __file__, "_run", "--mode", mode, "--data",
                           str(data), "--z", str(args.z)]
                    env = dict(os.environ, PYTHONPATH=str(REPO))
                    line = subprocess.run(cmd, capture_output=True, text=True, env=env,
                                          check=True).stdout.strip().splitlines()[-1]
                    results.setdefault((copies, mode), []).append(json.loads(line))
                    print(f"  copies {copies} round {rep} {mode}: "
                          f"{results[(copies, mode)][-1]['wall']:.2f} s", file=sys.stderr)
        finally:
            shutil.rmtree(data, ignore_errors=True)
    checks = {mode: runs[0]["check"] for (_, mode), runs in results.items()}
    print(f"\nchecksums (count, coverage sums) per contender, last copies: {checks}")
    print(f"z{args.z}, medians of {args.repeats} fresh processes, one core each")
    print("| copies (scenes, polygons) | contender | wall us/polygon (warm) | peak RSS MB | "
          "intermediate B/polygon | input B re-read /polygon | notes |")
    print("|---|---|---|---|---|---|---|")
    table = []
    for (copies, mode), runs in results.items():
        n = runs[0]["features"]

        def med(k, runs=runs):
            return statistics.median(r[k] for r in runs)

        notes = ""
        if mode == "bbox-blocks":
            notes = (f"{runs[0]['blocks']} blocks, {runs[0]['scene_block_reads']} scene "
                     f"reads; {med('bytes_scanned') / med('input_bytes'):.1f}x the .shp bytes "
                     "scanned")
        if mode == "partial-rasters":
            notes = (f"{runs[0]['partials']} partials for {runs[0]['tiles']} tiles; dense "
                     f"{med('dense_bytes') / n:.0f} B/polygon; kernels "
                     f"{med('kernel_s') / n * 1e6:.1f} us/polygon")
        row = dict(copies=copies, scenes=8 * copies, polygons=n, mode=mode,
                   wall_us=(med("wall") - med("warm_up_s")) / n * 1e6, rss=med("peak_rss_mb"),
                   inter=med("intermediate_bytes") / n, reread=med("bytes_reread") / n,
                   input_per_poly=med("input_bytes") / n, notes=notes)
        table.append(row)
        print(f"| {copies} ({8 * copies}, {n}) | {mode} | {row['wall_us']:.1f} | "
              f"{row['rss']:.0f} | {row['inter']:.0f} | {row['reread']:.0f} | {notes} |")
    print(f"(input: {table[0]['input_per_poly']:.0f} B/polygon of .shp + .shx + .dbf)")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=1))


def big_scene(dst: Path, copies: int, files: int) -> Path:
    """One example scene repeated ``copies`` times, 6 km apart, in ``files`` files (so the
    same polygons in one big file or many small ones), each with a covering footprint."""
    import geopandas as gpd
    import pandas as pd
    import pyogrio
    import shapely

    src = sorted((EXAMPLE / "inputs" / "input").rglob("*.shp"))[0]
    gdf = gpd.read_file(src)
    per_file = -(-copies // files)
    for f in range(files):
        ks = range(f * per_file, min(copies, (f + 1) * per_file))
        parts = [gdf.assign(geometry=gdf.geometry.translate(xoff=6000 * k)) for k in ks]
        big = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=gdf.crs)
        (dst / "input").mkdir(parents=True, exist_ok=True)
        (dst / "footprints").mkdir(parents=True, exist_ok=True)
        pyogrio.write_dataframe(big, dst / "input" / f"big{f}.shp", promote_to_multi=False)
        box = shapely.box(*big.total_bounds).buffer(100)
        gpd.GeoDataFrame({"Date": [f"2020010{f % 9 + 1}000000"]}, geometry=[box],
                         crs=gdf.crs).to_file(dst / "footprints" / f"big{f}.shp")
    return dst


def run_memory(data: Path, out: Path, z: int, chunk: int) -> dict:
    from fastraster.pipelines.sources import rasterize_sources

    t = time.perf_counter()
    rep = rasterize_sources(data / "input", out, z=z, footprints=data / "footprints",
                            simplify_tolerance=0.1, progress=False, n_jobs=1,
                            chunk_size=chunk)
    assert not rep.errors, rep.errors[:2]
    return {"wall": time.perf_counter() - t, "features": sum(r["features"] for r in
                                                             rep.scenes),
            "warm_up_s": rep.passes["warm_up"], "map_s": rep.passes["map"],
            "reduce_s": rep.passes["reduce"], "tiles": len(rep)}


def cmd_memory(args):
    results = []
    for copies, files in ((args.copies, 1), (args.copies, args.copies)):
        data = big_scene(Path(tempfile.mkdtemp(prefix="fastraster-big-")), copies, files)
        try:
            for chunk in args.chunks:
                runs = []
                for _ in range(args.repeats):
                    cmd = [sys.executable, __file__, "_run", "--mode", "memory", "--data",
                           str(data), "--z", str(args.z), "--chunk", str(chunk)]
                    env = dict(os.environ, PYTHONPATH=str(REPO))
                    line = subprocess.run(cmd, capture_output=True, text=True, env=env,
                                          check=True).stdout.strip().splitlines()[-1]
                    runs.append(json.loads(line))
                    print(f"  {files} file(s), chunk {chunk}: {runs[-1]['wall']:.1f} s, "
                          f"{runs[-1]['peak_rss_mb']:.0f} MB", file=sys.stderr)
                results.append(dict(files=files, polygons=runs[0]["features"], chunk=chunk,
                                    rss=statistics.median(r["peak_rss_mb"] for r in runs),
                                    map_us=statistics.median(r["map_s"] for r in runs)
                                    / runs[0]["features"] * 1e6))
        finally:
            shutil.rmtree(data, ignore_errors=True)
    print(f"\npeak RSS of one process (n_jobs=1), z{args.z}, medians of {args.repeats}")
    print("| polygons | files | chunk_size | peak RSS MB | map us/polygon |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['polygons']} | {r['files']} | {r['chunk']} | {r['rss']:.0f} | "
              f"{r['map_us']:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("phases")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--zooms", type=int, nargs="+", default=[13, 15])
    p.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    p.add_argument("--json")
    d = sub.add_parser("decompose")
    d.add_argument("--z", type=int, default=15)
    d.add_argument("--copies", type=int, nargs="+", default=[1, 4])
    d.add_argument("--repeats", type=int, default=3)
    d.add_argument("--json")
    m = sub.add_parser("memory")
    m.add_argument("--z", type=int, default=15)
    m.add_argument("--copies", type=int, default=40)
    m.add_argument("--chunks", type=int, nargs="+", default=[4096, 16384, 65536, 10**9])
    m.add_argument("--repeats", type=int, default=1)
    m.add_argument("--json")
    r = sub.add_parser("_run")
    r.add_argument("--mode", required=True)
    r.add_argument("--data", required=True)
    r.add_argument("--z", type=int, default=15)
    r.add_argument("--chunk", type=int, default=65536)
    args = ap.parse_args(argv)
    if not (EXAMPLE / "inputs").is_dir():
        sys.exit(f"PDG staging example not found at {EXAMPLE} (set FASTRASTER_PDG_STAGING)")
    {"phases": cmd_phases, "decompose": cmd_decompose, "memory": cmd_memory,
     "_run": cmd_run}[args.cmd](args)


if __name__ == "__main__":
    main()
