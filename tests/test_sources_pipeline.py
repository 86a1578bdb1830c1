"""``rasterize_sources`` end to end on random overlapping scenes: against the literal
reference, and independent of input order, workers, chunking and interruptions."""

from __future__ import annotations

import glob
import os
import random
import re
import shutil

import numpy as np
import pyogrio
import pytest

from fastraster.io.records import RunFailures
from fastraster.model.grid import TileGrid
from fastraster.pipelines.sources import rasterize_sources
from tests.conftest import assert_no_temp_files, dead_pid, read_tif, tif_files
from tests.reference import attribute_ref, intersection_areas
from tests.sources_data import random_scenes, write_scene
from tests.sources_reference import pdg_rows, tile_reference

STATS = [
    {"name": "polygon_count", "weight_by": "count", "property": "centroids_per_pixel"},
    {"name": "coverage", "weight_by": "area", "property": "area_per_pixel_area"},
    {"name": "prob_max", "weight_by": "count", "property": "ClassProb",
     "aggregation_method": "max"},
    {"name": "prob_area", "weight_by": "area", "property": "ClassProb",
     "aggregation_method": "sum"},
]
KW = dict(simplify_tolerance=0.1, dtype="float64", progress=False, stats=STATS)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    inp, fps = random_scenes(str(root), seed=3)
    return inp, fps


@pytest.fixture(scope="module")
def first_run(scenes, tmp_path_factory):
    inp, fps = scenes
    out = tmp_path_factory.mktemp("run") / "out"
    rep = rasterize_sources(inp, out, z=15, footprints=fps, **KW)
    return out, rep


def _files(root):
    return {os.path.relpath(p, root): open(p, "rb").read() for p in tif_files(root)}


@pytest.mark.parametrize("z", [13, 15])
def test_matches_the_literal_reference(scenes, tmp_path, z):
    inp, fps = scenes
    rep = rasterize_sources(inp, tmp_path / "out", z=z, footprints=fps, **KW)
    assert not rep.errors
    names = {os.path.relpath(p, inp): p for p in glob.glob(f"{inp}/**/*.shp", recursive=True)}
    df = pdg_rows(names, {n: os.path.join(fps, n) for n in names}, z,
                  simplify_tolerance=0.1, columns=("ClassProb",))
    assert sorted(r["tile"][:2] for r in rep) == sorted(set(zip(df["x"], df["y"])))
    assert df["dup"].any() and not df["dup"].all()
    for r in rep:
        grid = TileGrid.from_tile(r["tile"])
        arr, _, names_, _ = read_tif(r["output"])
        assert names_ == tuple(s["name"] for s in STATS)
        count, cov = tile_reference(df, grid)
        np.testing.assert_array_equal(arr[0], count)
        np.testing.assert_allclose(arr[1], cov, rtol=0, atol=1e-12)
        t = df[(df["x"] == grid.x) & (df["y"] == grid.y) & ~df["dup"]]
        g = np.asarray(t["geometry"].values, dtype=object)
        v = t["ClassProb"].to_numpy()
        mx = attribute_ref(g, v, grid, "count", "max", t["cx"].to_numpy(), t["cy"].to_numpy())
        np.testing.assert_array_equal(np.isnan(arr[2]), np.isnan(mx))
        np.testing.assert_array_equal(arr[2][~np.isnan(mx)], mx[~np.isnan(mx)])
        # Area-weighted sum: sum_i v_i * (area of i in the pixel), by shapely clipping.
        weighted = np.tensordot(v, intersection_areas(g, grid), axes=1) if len(g) else 0.0
        np.testing.assert_allclose(arr[3], weighted, rtol=0, atol=1e-12)


def test_independent_of_input_order(scenes, first_run, tmp_path):
    inp, fps = scenes
    files = sorted(glob.glob(f"{inp}/**/*.shp", recursive=True))
    want = _files(first_run[0])
    for i, order in enumerate((files[::-1], random.Random(5).sample(files, len(files)))):
        rasterize_sources(order, tmp_path / f"o{i}", z=15, footprints=fps, input_root=inp,
                          **KW)
        assert _files(tmp_path / f"o{i}") == want


def test_two_workers_equal_one(scenes, first_run, tmp_path):
    inp, fps = scenes
    rasterize_sources(inp, tmp_path / "out", z=15, footprints=fps, n_jobs=2, **KW)
    assert _files(tmp_path / "out") == _files(first_run[0])


def test_chunked_reading_equals_whole_files(scenes, first_run, tmp_path):
    inp, fps = scenes
    rep = rasterize_sources(inp, tmp_path / "out", z=15, footprints=fps, chunk_size=7, **KW)
    assert _files(tmp_path / "out") == _files(first_run[0])
    assert all(r["features"] > 7 for r in rep.scenes)


def test_resume_completes_a_partial_run(scenes, first_run, tmp_path):
    inp, fps = scenes
    want = _files(first_run[0])
    out = tmp_path / "out"
    shutil.copytree(first_run[0], out)
    gone = sorted(want)[::3]
    for rel in gone:
        os.remove(out / rel)
    # A killed writer leaves only a hidden temporary file, never a final name.
    (out / os.path.dirname(gone[0]) / ".x.tif.123.tmp").write_bytes(b"partial")
    rep = rasterize_sources(inp, out, z=15, footprints=fps, **KW)
    assert rep.tiles("ok") == len(gone) and rep.tiles("skipped") == len(want) - len(gone)
    os.remove(out / os.path.dirname(gone[0]) / ".x.tif.123.tmp")
    assert _files(out) == want
    rep = rasterize_sources(inp, out, z=15, footprints=fps, overwrite=True, **KW)
    assert rep.tiles("ok") == len(want)


#: Runs rasterize_sources in this process (n_jobs=1) and kills itself with SIGKILL (no
#: clean-up of any kind can run) when the reduce pass is about to write tile number K.
KILL_SCRIPT = """
import os, signal, sys
sys.path.insert(0, sys.argv[1])
import fastraster.pipelines.sources.tiles as T
real, written = T.write_geotiff, []
def write_then_die(path, *args, **kwargs):
    mine = str(path).startswith(sys.argv[4])  # (the warm-up writes elsewhere)
    if mine and len(written) == int(sys.argv[5]):
        os.kill(os.getpid(), signal.SIGKILL)
    real(path, *args, **kwargs)
    if mine:
        written.append(path)
T.write_geotiff = write_then_die
from fastraster.pipelines.sources import rasterize_sources
rasterize_sources(sys.argv[2], sys.argv[4], z=15, footprints=sys.argv[3], n_jobs=1,
                  simplify_tolerance=0.1, dtype="float64", progress=False, stats=%r)
"""


def test_killed_run_resumes_to_identical_files(scenes, first_run, tmp_path):
    """A run killed with SIGKILL in its reduce pass leaves finished GeoTIFFs, no half-written
    one, and its work folder; the next run (overwrite=False) removes that folder (its owner
    is dead), skips the finished tiles and ends with the files and the summary CSV of an
    uninterrupted run."""
    import csv
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO

    inp, fps = scenes
    out = tmp_path / "out"
    k = 5
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT % (STATS,), str(REPO), inp, fps,
                           str(out), str(k)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert len(tif_files(out)) == k
    left = [p for p in os.listdir(out) if p.startswith(".fastraster-sources.")]
    assert len(left) == 1 and os.listdir(out / left[0])  # the dead run's intermediates
    rep = rasterize_sources(inp, out, z=15, footprints=fps, **KW)
    want = _files(first_run[0])
    assert rep.tiles("skipped") == k and rep.tiles("ok") == len(want) - k and not rep.errors
    assert _files(out) == want
    assert not [p for p in os.listdir(out) if p.startswith(".fastraster-sources")]
    assert_no_temp_files(out)

    def rows(root):
        with open(root / "rasters_summary.csv") as fh:
            return sorted(tuple(v for c, v in r.items() if c != "path")
                          for r in csv.DictReader(fh))

    assert rows(out) == rows(first_run[0])


def test_dead_workers_cost_only_their_scene_or_tile(scenes, first_run, tmp_path,
                                                    monkeypatch):
    """Scenes and tiles go through the supervised executor: a worker killed while mapping a
    scene, and one killed while reducing a tile, cost only that item, which is retried in a
    fresh worker: the files and CSV rows equal a clean run's. Without retries, a tile whose
    worker exits is reported, naming it, and every other tile is written."""
    import csv

    inp, fps = scenes
    ref_out, ref = first_run
    scene = os.path.basename(ref.scenes[1]["path"])
    tile = os.path.relpath(ref[len(ref) // 2]["output"], ref_out)
    monkeypatch.setenv("FASTRASTER_CHAOS", f"{scene}=SIGKILL@1;{tile}=SIGKILL@1")
    out = tmp_path / "out"
    rep = rasterize_sources(inp, out, z=15, footprints=fps, n_jobs=2, **KW)
    assert not rep.errors and rep.tiles("ok") == len(ref)
    assert (rep.worker_deaths, rep.retried) == (2, 2)
    assert "2 succeeded on a retry; 2 worker deaths survived" in rep.summary_line()
    assert [r["attempts"] for r in rep.scenes if r["path"].endswith(scene)] == [2]
    assert [r["attempts"] for r in rep if r["output"].endswith(tile)] == [2]
    assert _files(out) == _files(ref_out)

    def rows(root):
        with open(root / "rasters_summary.csv") as fh:
            return sorted(tuple(v for c, v in r.items() if c != "path")
                          for r in csv.DictReader(fh))

    assert rows(out) == rows(ref_out)
    assert_no_temp_files(out)
    assert not [p for p in os.listdir(out) if p.startswith(".")]

    monkeypatch.setenv("FASTRASTER_CHAOS", f"{tile}=exit3")
    out2 = tmp_path / "out2"
    with pytest.warns(RunFailures, match="1 of .* files failed"):
        rep = rasterize_sources(inp, out2, z=15, footprints=fps, n_jobs=2, retries=0, **KW)
    assert [r["error"] for r in rep.errors] == [
        f"{out2 / tile}: worker exited with code 3"]
    assert rep.tiles("ok") == len(ref) - 1 and rep.worker_deaths == 1
    want = _files(ref_out)
    del want[tile]
    assert _files(out2) == want


def test_interrupted_command_stops_cleanly_and_resumes(scenes, tmp_path):
    """Ctrl-C during the reduce pass of ``fastraster rasterize-sources``: exit 130 saying how
    to resume, no temporary file or work folder left, the CSVs hold the scenes and the tiles
    that finished; the same command again completes the files of an uninterrupted run."""
    import csv
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import REPO

    inp, fps = scenes
    clean = tmp_path / "clean"
    rasterize_sources(inp, clean, z=15, footprints=fps, simplify_tolerance=0.1,
                      progress=False)
    out, log = tmp_path / "out", tmp_path / "chaos.log"
    cmd = [sys.executable, "-m", "fastraster.cli", "rasterize-sources", inp, str(out),
           "--z", "15", "--footprints", fps, "--simplify-tolerance", "0.1", "-j", "2", "-q"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "FASTRASTER_CHAOS": ".tif=sleep0.3",
           "FASTRASTER_CHAOS_LOG": str(log)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while (not log.exists() or len(log.read_text().splitlines()) < 4) \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole process group
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    assert "interrupted by SIGINT" in stderr and "run the same command again" in stderr
    assert_no_temp_files(out)
    assert not [p for p in os.listdir(out) if p.startswith(".")]
    with open(out / "rasterization_events.csv") as fh:
        events = list(csv.DictReader(fh))
    scenes_done = [e for e in events if not e["tile"]]
    tiles_done = [e for e in events if e["tile"]]
    assert len(scenes_done) == 4 and {e["status"] for e in events} == {"ok"}
    want = _files(clean)
    assert 2 <= len(tiles_done) < len(want)
    got = _files(out)
    assert len(got) == len(tiles_done) and all(got[k] == want[k] for k in got)
    env.pop("FASTRASTER_CHAOS")
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"{len(want) - len(got)} ok, {len(got)} skipped, 0 failed" in again.stdout
    assert _files(out) == want


def test_work_dirs_of_dead_runs_are_removed_and_live_ones_kept(scenes, tmp_path):
    """Work folders and temporary files follow one rule (io.atomic.sweep_litter): those of
    a dead owner go, live owners' and other hosts' recent ones stay."""
    import time

    from fastraster.io.atomic import HOST

    inp, fps = scenes
    out = tmp_path / "out"
    dead = dead_pid()
    old = time.time() - 2 * 24 * 3600
    names = {
        f".fastraster-sources.{HOST}.{dead}.{'a' * 32}": False,  # owner gone: removed
        f".fastraster-sources.{HOST}.{os.getpid()}.{'b' * 32}": True,  # owner alive: kept
        f".fastraster-sources.otherhost.1.{'c' * 32}": True,  # another host, fresh: kept
        f".fastraster-sources.otherhost2.1.{'d' * 32}": False,  # another host, 2 days old
        f".fastraster-sources.{'e' * 32}.tmp": False,  # unowned (older) form, 2 days old
        f".fastraster-sourcesX.{HOST}.{dead}": True,  # not a temporary name of ours
    }
    for name in names:
        (out / name).mkdir(parents=True)
        (out / name / "scene-0.arrow").write_bytes(b"x")
        if "otherhost2" in name or "e" * 32 in name:
            os.utime(out / name, (old, old))
    dead_file = out / f".a.tif.{HOST}.{dead}.{'f' * 32}.tmp"  # a temporary file, same rule
    dead_file.write_bytes(b"x")
    rep = rasterize_sources(inp, out, z=15, footprints=fps, **KW)
    assert {n for n in os.listdir(out) if n.startswith(".")} == {
        n for n, kept in names.items() if kept}
    assert rep.litter_removed == 4
    assert "removed 4 temporary files of killed runs" in rep.summary_line()


def test_outputs_csvs_and_no_leftovers(first_run):
    out, rep = first_run
    assert_no_temp_files(out)
    assert not [p for p in os.listdir(out) if p.startswith(".fastraster-sources")]
    import csv

    with open(out / "rasters_summary.csv") as fh:
        summary = list(csv.DictReader(fh))
    assert len(summary) == len(rep) * len(STATS)
    with open(out / "rasterization_events.csv") as fh:
        events = list(csv.DictReader(fh))
    assert len(events) == len(rep) + len(rep.scenes)
    counts = [r for r in summary if r["stat"] == "polygon_count"]
    total = sum(float(r["sum"]) for r in counts)
    assert total == sum(read_tif(r["output"])[0][0].sum() for r in rep)
    assert rep.summary_line().startswith(f"{len(rep.scenes)} scenes (0 failed); ")


def test_streamed_records_give_the_same_csvs(scenes, first_run, tmp_path):
    """keep_records=False: the report keeps only failures and counts; the CSVs are the same
    rows (in completion order) and the files the same."""
    import csv

    inp, fps = scenes
    out = tmp_path / "out"
    rep = rasterize_sources(inp, out, z=15, footprints=fps, keep_records=False, **KW)
    ref_out, ref = first_run
    assert len(rep) == 0 and rep.tiles("ok") == len(ref) and rep.total == len(ref) + 4
    assert rep.summary_line().startswith(f"4 scenes (0 failed); {len(ref)} tiles: "
                                         f"{len(ref)} ok, 0 skipped, 0 failed")
    assert _files(out) == _files(ref_out)

    def rows(root, name, drop):
        with open(root / name) as fh:
            return sorted(tuple(v for c, v in r.items() if c not in drop)
                          for r in csv.DictReader(fh))

    assert rows(out, "rasters_summary.csv", {"path"}) == rows(ref_out, "rasters_summary.csv",
                                                              {"path"})
    timing = {"path", "output", "seconds", "read_s", "compute_s", "write_s", "read_cpu_s",
              "compute_cpu_s", "write_cpu_s"}
    assert rows(out, "rasterization_events.csv", timing) == rows(
        ref_out, "rasterization_events.csv", timing)
    assert_no_temp_files(out)


def test_geodataframe_and_geopackage_inputs_equal_shapefiles(scenes, first_run, tmp_path):
    import geopandas as gpd
    import pandas as pd

    inp, fps = scenes
    files = sorted(glob.glob(f"{inp}/**/*.shp", recursive=True))
    frames, fframes = [], []
    for f in files:
        name = os.path.relpath(f, inp)
        frames.append(gpd.read_file(f).assign(staging_filename=name))
        fframes.append(gpd.read_file(os.path.join(fps, name)).assign(staging_filename=name))
    gdf = pd.concat(frames, ignore_index=True)
    fp_gdf = pd.concat(fframes, ignore_index=True)
    rasterize_sources(gdf, tmp_path / "gdf", z=15, footprints=fp_gdf, **KW)
    want = _files(first_run[0])
    assert _files(tmp_path / "gdf") == want
    # The same scenes as GeoPackages (footprints stay shapefiles: footprint_ext).
    for f, frame in zip(files, frames):
        dst = tmp_path / "gpkg" / os.path.relpath(f, inp).replace(".shp", ".gpkg")
        dst.parent.mkdir(parents=True, exist_ok=True)
        # Not promoted to MultiPolygon (PDG would then drop every polygon of the file).
        pyogrio.write_dataframe(frame.drop(columns="staging_filename"), dst,
                                promote_to_multi=False, geometry_type="Unknown")
    rasterize_sources(tmp_path / "gpkg", tmp_path / "out2", z=15, footprints=fps,
                      ext=".gpkg", footprint_ext=".shp", **KW)
    assert _files(tmp_path / "out2") == want


def test_a_bad_scene_is_named_and_the_rest_is_done(scenes, tmp_path):
    inp, fps = scenes
    work = tmp_path / "in"
    shutil.copytree(inp, work)
    bad = sorted(glob.glob(f"{work}/**/*.shp", recursive=True))[1]
    with open(bad, "r+b") as fh:  # a corrupt header
        fh.write(b"garbage!" * 12)
    with pytest.warns(RunFailures, match=r"^1 of \d+ files failed in step "
                      r"rasterize-sources; first: " + re.escape(bad)):
        rep = rasterize_sources(work, tmp_path / "out", z=15, footprints=fps, **KW)
    errs = [r for r in rep.scenes if r["status"] == "error"]
    assert len(errs) == 1 and errs[0]["error"].startswith(bad)
    assert rep.tiles("ok") > 0 and not [r for r in rep if r["status"] == "error"]


def test_invalid_polygons_repaired_or_refused(tmp_path):
    import shapely

    from tests.sources_data import X0, Y0

    bowtie = shapely.Polygon([(X0, Y0), (X0 + 20, Y0 + 20), (X0 + 20, Y0), (X0, Y0 + 20)])
    write_scene(tmp_path, "s", [shapely.box(X0 + 40, Y0, X0 + 50, Y0 + 10), bowtie], None,
                "2020")
    kw = dict(z=15, keep_rules=None, clip_to_footprint=False, progress=False)
    with pytest.warns(RunFailures, match="invalid polygon"):
        rep = rasterize_sources(tmp_path / "input", tmp_path / "o1", validate="error", **kw)
    assert rep.scenes[0]["status"] == "error"
    assert "1 invalid polygon(s); first is feature 1: Self-intersection" in rep.scenes[0]["error"]
    rep = rasterize_sources(tmp_path / "input", tmp_path / "o2", **kw)
    assert rep.scenes[0]["status"] == "ok" and rep.tiles("ok") >= 1
    total = sum(read_tif(r["output"])[0][1].sum() * TileGrid.from_tile(r["tile"]).pixel_area
                for r in rep)
    assert total > 0  # both lobes of the repaired bow tie plus the square


def test_threading_backend_equals_one_worker(scenes, first_run, tmp_path):
    inp, fps = scenes
    rasterize_sources(inp, tmp_path / "out", z=15, footprints=fps, n_jobs=2,
                      backend="threading", **KW)
    assert _files(tmp_path / "out") == _files(first_run[0])


def test_dask_cluster_equals_one_worker(scenes, first_run, tmp_path):
    """Map and reduce tasks on a 2-process dask.distributed LocalCluster (intermediates on
    a filesystem both workers see) give the same files."""
    distributed = pytest.importorskip(
        "dask.distributed", reason="dask.distributed is not installed "
                                   "(pip install 'fastraster[dask]')")
    inp, fps = scenes
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client, \
            client.as_current():
        rep = rasterize_sources(inp, tmp_path / "out", z=15, footprints=fps, n_jobs=2,
                                backend="dask", **KW)
        pids = {r["pid"] for r in rep} | {r["pid"] for r in rep.scenes}
    assert os.getpid() not in pids  # the work ran on the cluster's workers
    assert _files(tmp_path / "out") == _files(first_run[0])
