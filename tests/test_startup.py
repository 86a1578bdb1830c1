"""Worker start-up: what ``import fastraster.pipelines.staged`` loads, lazy public names, warm_up()
covering every kernel signature a worker uses, and the fork-server recipe of docs/scaling.md.

Each check that depends on what a process has imported runs in a fresh interpreter.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastraster
from tests.conftest import REPO, read_tif, tif_files


def run_python(code: str, env=None) -> str:
    """stdout of ``code`` run by a fresh interpreter in the repository."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO,
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout


#: Not needed to rasterize a tile: importing the worker entry point must not load them.
NOT_FOR_WORKERS = ("fastraster.pipelines.pyramid", "fastraster.compat.pdgraster",
                   "fastraster.pipelines.webtiles", "fastraster.render.wmts",
                   "fastraster.render.palettes", "fastraster.render.preview",
                   "fastraster.cli", "fastraster.sample", "matplotlib",
                   "PIL", "morecantile", "geopandas")


def test_importing_the_pipeline_skips_what_workers_do_not_need():
    out = run_python(f"""
        import json, sys
        import fastraster.pipelines.staged
        print(json.dumps([m for m in {list(NOT_FOR_WORKERS)!r} if m in sys.modules]))
        print(fastraster.pipelines.staged.rasterize_one.__module__)
    """)
    loaded, module = out.splitlines()
    assert json.loads(loaded) == []
    assert module == "fastraster.pipelines.staged"


def test_public_names_are_imported_on_first_use():
    out = run_python("""
        import sys
        import fastraster
        before = "fastraster.pipelines.webtiles" in sys.modules or "numba" in sys.modules
        from fastraster import render_web_tiles
        print(before, "fastraster.pipelines.webtiles" in sys.modules, render_web_tiles.__module__)
    """)
    assert out.split() == ["False", "True", "fastraster.pipelines.webtiles"]


@pytest.mark.parametrize("name", fastraster.__all__)
def test_every_public_name_resolves_to_its_definition(name):
    module = importlib.import_module(f"fastraster.{fastraster._LAZY[name]}")
    assert getattr(fastraster, name) is getattr(module, name)
    assert name in dir(fastraster)


def test_all_lists_the_lazy_names_and_star_import_works():
    assert fastraster.__all__ == sorted(fastraster._LAZY)
    namespace = {}
    exec("from fastraster import *", namespace)
    assert set(fastraster.__all__) <= set(namespace)


def test_submodules_resolve_after_a_plain_import():
    out = run_python("""
        import fastraster
        print(fastraster.pipeline.warm_up.__module__, fastraster.render.__name__)
    """)
    assert out.split() == ["fastraster.pipelines.staged", "fastraster.render"]


def test_unknown_names_raise_attribute_error():
    assert not hasattr(fastraster, "no_such_name")
    with pytest.raises(AttributeError, match="no_such_name"):
        fastraster.no_such_name  # noqa: B018


# ---------------------------------------------------------------------------------------------
# warm_up() loads the kernel signatures workers use
# ---------------------------------------------------------------------------------------------

#: Every kind of statistic, with attribute statistics on a float column (read-only arrays
#: straight from Arrow, a different numba type than in-memory arrays).
ALL_KINDS = [
    {"name": "polygon_count", "weight_by": "count", "property": "centroids_per_pixel",
     "nodata_val": 0},
    {"name": "coverage", "weight_by": "area", "property": "area_per_pixel_area"},
    {"name": "centre", "weight_by": "count", "property": "polygons_covering_center"},
    {"name": "touching", "weight_by": "count", "property": "polygons_touching"},
    {"name": "v_max", "weight_by": "count", "property": "v", "aggregation_method": "max"},
    {"name": "v_sum", "weight_by": "area", "property": "v", "aggregation_method": "sum"},
    {"name": "v_min", "weight_by": "area", "property": "v", "aggregation_method": "min"},
]


@pytest.fixture(scope="module")
def tile_with_attribute(sample_staged, tmp_path_factory):
    """One sample tile plus a float attribute column ``v``."""
    import pyogrio.raw

    src = next(sample_staged.rglob("*.gpkg"))
    dst = tmp_path_factory.mktemp("attr") / src.relative_to(sample_staged)
    dst.parent.mkdir(parents=True)
    meta, _, geometry, field_data = pyogrio.raw.read(src)
    v = np.linspace(0.5, 2.0, len(geometry))
    pyogrio.raw.write(dst, geometry, [*field_data, v], [*meta["fields"], "v"], driver="GPKG",
                      geometry_type=meta["geometry_type"], crs=meta["crs"])
    return dst


def kernel_signatures_after(warm_stats, work_stats, path, in_memory=False) -> dict:
    """In a fresh process: {kernel: signatures} after warm_up(warm_stats), and the signatures
    that reading and rasterizing ``path`` with ``work_stats`` added afterwards (with both
    readers, and with ``in_memory`` its polygons as every in-memory input type too)."""
    out = run_python(f"""
        import json
        import fastraster.kernels as K
        from fastraster.io.tilepaths import parse_tile_path
        from fastraster.model.grid import TileGrid
        from fastraster.pipelines.options import RasterizeOptions
        from fastraster.pipelines.staged import warm_up
        from fastraster.pipelines.tile import rasterize_file

        def signatures():
            return {{name: sorted(map(str, getattr(K, name).signatures)) for name in dir(K)
                    if hasattr(getattr(K, name), "signatures")}}

        warm_up({"" if warm_stats is None else repr(warm_stats)})
        warmed = signatures()
        job = parse_tile_path({str(path)!r})
        grid = TileGrid.from_tile(job.tile, job.tms)
        options = RasterizeOptions.create(stats={work_stats!r})
        # The workers' path with each reader: sqlite3 (small GeoPackages) and pyogrio.
        from fastraster.io.gpkg_lean import read_staged_lean
        from fastraster.io.staged import read_staged
        for reader in (None, read_staged_lean, read_staged):
            rasterize_file(job.path, grid, options, reader=reader)
        # ... and the whole task, GeoTIFF included, float32 and float64.
        import tempfile
        from fastraster.pipelines.staged import rasterize_one
        with tempfile.TemporaryDirectory() as tmp:
            for dtype in ("float32", "float64"):
                rec = rasterize_one(job, tmp + "/" + dtype + ".tif",
                                    RasterizeOptions.create(stats={work_stats!r}, dtype=dtype))
                assert rec["status"] == "ok", rec
        if {in_memory!r}:
            # Every in-memory input of rasterize_tile.
            import geoarrow.pyarrow as ga
            import geopandas as gpd
            import pyarrow as pa
            import shapely
            from fastraster.pipelines.tile import rasterize_tile

            df = gpd.read_file(job.path)
            cols = [c for c in df.columns if c != "geometry"]
            attrs = {{c: df[c].to_numpy(float) for c in cols if c.startswith("v")}}
            geoms = df.geometry.values
            wkb = ga.as_wkb(pa.array(shapely.to_wkb(geoms)))
            inputs = [df, geoms, list(geoms), wkb, ga.as_geoarrow(wkb),
                      ga.as_geoarrow(wkb, coord_type=ga.CoordType.INTERLEAVED)]
            for obj in inputs:
                rasterize_tile(obj, job.tile, tms=job.tms, stats={work_stats!r},
                               attributes=None if obj is df else attrs)
        added = {{k: sorted(set(v) - set(warmed[k])) for k, v in signatures().items()}}
        print(json.dumps({{"warmed": warmed, "added": added}}))
    """)
    return json.loads(out.splitlines()[-1])


def test_warm_up_loads_every_signature_a_worker_uses(tile_with_attribute):
    res = kernel_signatures_after(None, ALL_KINDS, tile_with_attribute, in_memory=True)
    assert {k: v for k, v in res["added"].items() if v} == {}
    public = [k for k in res["warmed"] if not k.startswith("_")]
    assert public and all(res["warmed"][k] for k in public), res["warmed"]


def test_warm_up_with_stats_loads_only_what_they_need(tile_with_attribute):
    res = kernel_signatures_after(list(fastraster.DEFAULT_STATS), None, tile_with_attribute)
    assert {k: v for k, v in res["added"].items() if v} == {}
    warmed = {k for k, v in res["warmed"].items() if v}
    assert {"wkb_decode", "certainly_simple", "coverage_accumulate",
            "centroid_pixels", "no_data_mask"} <= warmed
    assert not warmed & {"touching_reduce", "centre_accumulate", "prefix_sum_rows"}


# ---------------------------------------------------------------------------------------------
# The fork-server recipe (docs/scaling.md, "Worker start-up")
# ---------------------------------------------------------------------------------------------


@pytest.mark.skipif("forkserver" not in multiprocessing.get_all_start_methods(),
                    reason="no forkserver start method on this platform")
def test_forkserver_recipe_gives_the_files_of_a_serial_run(sample_staged, tmp_path):
    """``fastraster.use_fork_server()`` (docs/scaling.md): loky's workers forked from a
    preloaded server, still supervised: a worker that dies on its first try of one tile
    costs only that tile, retried in a fresh worker from the server; the files equal a
    serial run's."""
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import json, os
        import fastraster
        from joblib.externals.loky.backend.context import get_start_method

        if __name__ == "__main__":
            fastraster.use_fork_server()
            report = fastraster.rasterize_dir({str(sample_staged)!r}, {str(tmp_path / "fs")!r},
                                              n_jobs=2, batch_size=1, progress=False)
            print(json.dumps([get_start_method(), report.worker_deaths,
                              sorted([r["status"], r["pid"] != os.getpid(), r["attempts"]]
                                     for r in report)]))
    """))
    # The fork server of Python 3.11 takes its sys.path from PYTHONPATH, not from the parent.
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    first = sorted(sample_staged.rglob('*.gpkg'))[0]
    chaos = f"{first.parent.name}/{first.name}=exit3@1"  # its first try only
    proc = subprocess.run([sys.executable, str(script)], cwd=REPO, capture_output=True,
                          text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": path, "FASTRASTER_CHAOS": chaos})
    assert proc.returncode == 0, proc.stderr[-4000:]
    method, deaths, records = json.loads(proc.stdout.splitlines()[-1])
    assert method == "forkserver" and deaths == 1
    assert records == [["ok", True, 1], ["ok", True, 2]]
    fastraster.rasterize_dir(sample_staged, tmp_path / "serial", progress=False)
    a, b = tif_files(tmp_path / "serial"), tif_files(tmp_path / "fs")
    assert [p.relative_to(tmp_path / "serial") for p in a] == [
        p.relative_to(tmp_path / "fs") for p in b]
    for pa, pb in zip(a, b, strict=True):
        np.testing.assert_array_equal(read_tif(pa)[0], read_tif(pb)[0])


@pytest.mark.skipif("forkserver" not in multiprocessing.get_all_start_methods(),
                    reason="no forkserver start method on this platform")
def test_cli_fork_server_flag(sample_staged, tmp_path):
    """``fastraster rasterize --fork-server``: loky's start method is the fork server, a
    worker that dies on its first try of one tile costs nothing, and the files equal a
    serial run's. In a subprocess: the start method is the process's."""
    code = textwrap.dedent(f"""
        from joblib.externals.loky.backend.context import get_start_method
        from fastraster.cli import main
        try:
            main(["rasterize", {str(sample_staged)!r}, {str(tmp_path / "fs")!r}, "-q", "-j",
                  "2", "--batch-size", "1", "--fork-server"], standalone_mode=False)
        except SystemExit as exc:
            print("EXIT", exc.code)
        print("START", get_start_method())
    """)
    first = sorted(sample_staged.rglob("*.gpkg"))[0]
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": path,
                               "FASTRASTER_CHAOS": f"{first.parent.name}/{first.name}=exit3@1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = proc.stdout.splitlines()
    assert "EXIT 0" in lines and "START forkserver" in lines, proc.stdout
    assert "1 succeeded on a retry; 1 worker death survived" in proc.stdout, proc.stdout
    fastraster.rasterize_dir(sample_staged, tmp_path / "serial", progress=False)
    a, b = tif_files(tmp_path / "serial"), tif_files(tmp_path / "fs")
    assert len(a) == len(b) == 2
    for pa, pb in zip(a, b, strict=True):
        np.testing.assert_array_equal(read_tif(pa)[0], read_tif(pb)[0])


def test_warm_up_runs_once_per_process_for_kernels_it_has_loaded(monkeypatch):
    import fastraster.pipelines.staged as p
    from fastraster.model.stats import parse_stats

    p.warm_up()  # every kernel

    def must_not_run(*args, **kwargs):
        raise AssertionError("warm_up read its GeoPackage again")

    monkeypatch.setattr(p, "rasterize_file", must_not_run)
    p.warm_up()
    p.warm_up(parse_stats(None))  # a subset of what is loaded
