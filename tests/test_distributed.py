"""rasterize_dir on a dask.distributed cluster (and on Ray) gives the files loky gives."""

import csv
import os
import shutil

import numpy as np
import pytest

import fastraster
from fastraster.execution.executor import parallel_unordered
from tests.conftest import read_tif, tif_files

DASK_MISSING = "dask.distributed is not installed (pip install 'fastraster[dask]')"
RAY_MISSING = "ray is not installed (pip install 'fastraster[ray]')"


@pytest.fixture(scope="module")
def dask_client():
    """A 2-process LocalCluster, one thread each; the client is made current per test."""
    distributed = pytest.importorskip("dask.distributed", reason=DASK_MISSING)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        yield client


@pytest.fixture
def staged(sample_staged, tmp_path):
    """The two sample tiles plus one broken file, so an error record is compared too."""
    root = tmp_path / "staged"
    shutil.copytree(sample_staged, root)
    bad = root / "WorldCRS84Quad" / "13" / "1526" / "910.gpkg"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a geopackage")
    return root


def _summary_rows(out):
    with open(out / "rasters_summary.csv") as fh:
        return sorted(tuple(v for k, v in row.items() if k != "path") for row in csv.DictReader(fh))


def _assert_same_outputs(ref_dir, ref, out_dir, report):
    assert [(r["path"], r["status"], r["error"]) for r in report] == [
        (r["path"], r["status"], r["error"]) for r in ref]
    assert [r["status"] for r in report] == ["ok", "ok", "error"]
    a, b = tif_files(ref_dir), tif_files(out_dir)
    assert [p.relative_to(ref_dir) for p in a] == [p.relative_to(out_dir) for p in b]
    assert len(a) == 2
    for pa, pb in zip(a, b):
        (xa, prof_a, names_a, tr_a), (xb, prof_b, names_b, tr_b) = read_tif(pa), read_tif(pb)
        np.testing.assert_array_equal(xa, xb)  # pixel for pixel
        assert (prof_a, names_a, tr_a) == (prof_b, names_b, tr_b)
    assert _summary_rows(ref_dir) == _summary_rows(out_dir)


def _kernel_loads():
    """{kernel: (signatures, cache hits, compilations)} of this process's numba kernels."""
    import fastraster.kernels as k

    out = {}
    for name in dir(k):
        d = getattr(k, name)
        if hasattr(d, "overloads") and hasattr(d, "stats") and d.overloads:
            out[name] = (len(d.overloads), sum(d.stats.cache_hits.values()),
                         sum(d.stats.cache_misses.values()))
    return out


def test_dask_gives_the_files_loky_gives(dask_client, staged, tmp_path):
    ref = fastraster.rasterize_dir(staged, tmp_path / "loky", progress=False, n_jobs=2)
    with dask_client.as_current():
        report = fastraster.rasterize_dir(staged, tmp_path / "dask", backend="dask", n_jobs=2,
                                          batch_size=1, progress=False)
    _assert_same_outputs(tmp_path / "loky", ref, tmp_path / "dask", report)
    # The tiles ran in the cluster's worker processes, not here.
    worker_pids = set(dask_client.run(os.getpid).values())
    assert {r["pid"] for r in report} <= worker_pids and os.getpid() not in worker_pids


def test_dask_workers_use_one_numba_thread_and_load_kernels_once(dask_client, staged,
                                                                 tmp_path):
    import numba

    runs = []
    with dask_client.as_current():
        for i in range(2):
            report = fastraster.rasterize_dir(staged, tmp_path / f"o{i}", backend="dask",
                                              n_jobs=2, batch_size=1, progress=False)
            assert report.n("ok") == 2
            runs.append(dask_client.run(_kernel_loads))
    # numba's thread count is per thread: ask each worker's (single) task thread.
    pid_of = dask_client.run(os.getpid)
    busy = [w for w, pid in pid_of.items() if pid in {r["pid"] for r in report}]
    assert busy
    for w in busy:
        assert dask_client.submit(numba.get_num_threads, workers=[w], pure=False).result() == 1
        # Each kernel signature was loaded from the on-disk cache the parent's warm_up()
        # filled (no compilation), once per worker process; the second run loaded nothing.
        assert runs[0][w], "no kernel loaded in a worker that ran tiles"
        assert runs[1][w] == runs[0][w]
        for sigs, hits, compiled in runs[1][w].values():
            assert compiled == 0 and hits == sigs


def test_dask_run_survives_a_killed_worker(dask_client, staged, tmp_path, monkeypatch):
    """A dask worker killed mid-run (SIGKILL, as the OOM killer would): its nanny starts a
    new one, the scheduler gives the batch to a worker, which resumes it from the journal;
    the tile that was running is retried alone and the run equals loky's."""
    ref = fastraster.rasterize_dir(staged, tmp_path / "loky", progress=False, n_jobs=2)
    monkeypatch.setenv("FASTRASTER_CHAOS", "1525/910.gpkg=SIGKILL@1")
    with dask_client.as_current():
        report = fastraster.rasterize_dir(staged, tmp_path / "dask", backend="dask", n_jobs=2,
                                          batch_size=2, progress=False)
    _assert_same_outputs(tmp_path / "loky", ref, tmp_path / "dask", report)
    attempts = {r["tile"]: r["attempts"] for r in report}
    assert attempts[(1525, 910, 13)] == 2 and attempts[(1524, 910, 13)] == 1
    assert report.worker_deaths == 1 and report.retried == 1
    assert not [p for p in (tmp_path / "dask").iterdir() if p.name.startswith(".")]


def test_dask_without_a_client_says_so(staged, tmp_path):
    distributed = pytest.importorskip("dask.distributed", reason=DASK_MISSING)
    with pytest.raises(ValueError):
        distributed.default_client()
    with pytest.raises(RuntimeError, match="needs a running dask.distributed Client"):
        fastraster.rasterize_dir(staged, tmp_path / "out", backend="dask", progress=False)
    assert not (tmp_path / "out").exists()


def test_dask_pyramid_matches_loky(dask_client, sample_staged, tmp_path):
    from fastraster import build_pyramid

    for name in ("loky", "dask"):
        fastraster.rasterize_dir(sample_staged, tmp_path / name, progress=False)
    ref = build_pyramid(tmp_path / "loky", (11, 13), n_jobs=2, progress=False)
    with dask_client.as_current():
        report = build_pyramid(tmp_path / "dask", (11, 13), backend="dask", n_jobs=2,
                               batch_size=1, progress=False)
    assert [r["status"] for r in report] == [r["status"] for r in ref] == ["ok", "ok"]
    a, b = tif_files(tmp_path / "loky"), tif_files(tmp_path / "dask")
    assert [p.relative_to(tmp_path / "loky") for p in a] == [
        p.relative_to(tmp_path / "dask") for p in b]
    assert {p.parts[-3] for p in a} == {"11", "12", "13"}
    for pa, pb in zip(a, b):
        np.testing.assert_array_equal(read_tif(pa)[0], read_tif(pb)[0])


def _loky_then_ray(staged, tmp_path, before_ray=None):
    """The staged tree through loky, then through a local Ray instance of 2 CPUs (after
    ``before_ray(loky report)``); both reports, the outputs compared."""
    ray = pytest.importorskip("ray", reason=RAY_MISSING)
    ref = fastraster.rasterize_dir(staged, tmp_path / "loky", progress=False, n_jobs=2)
    if before_ray is not None:
        before_ray(ref)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        report = fastraster.rasterize_dir(staged, tmp_path / "ray", backend="ray", n_jobs=2,
                                          batch_size=1, progress=False)
    finally:
        ray.shutdown()
    _assert_same_outputs(tmp_path / "loky", ref, tmp_path / "ray", report)
    return ref, report


def test_ray_gives_the_files_loky_gives(staged, tmp_path):
    _, report = _loky_then_ray(staged, tmp_path)
    assert os.getpid() not in {r["pid"] for r in report}


def test_ray_run_survives_a_dead_worker(staged, tmp_path, monkeypatch):
    """A Ray worker that dies on its first try of a tile (os._exit) costs nothing: the tile is
    retried and the files equal loky's (Ray fails the task; the supervisor retries it)."""
    def kill_one(ref):
        kill_one.victim = next(r["path"] for r in ref if r["status"] == "ok")
        monkeypatch.setenv("FASTRASTER_CHAOS",
                           f"{os.path.relpath(kill_one.victim, staged)}=exit3@1")

    _, report = _loky_then_ray(staged, tmp_path, kill_one)
    victim = kill_one.victim
    assert report.worker_deaths >= 1
    assert {r["path"]: r["attempts"] for r in report}[victim] == 2


def _csv_rows(path, drop=()):
    with open(path) as fh:
        return sorted(tuple(v for k, v in row.items() if k not in drop)
                      for row in csv.DictReader(fh))


def test_keep_records_false_streams_the_csvs_and_keeps_only_errors(staged, tmp_path):
    full = fastraster.rasterize_dir(staged, tmp_path / "full", progress=False)
    lean = fastraster.rasterize_dir(staged, tmp_path / "lean", progress=False,
                                    keep_records=False)
    assert [(r["path"], r["status"], r["error"]) for r in lean] == [
        (r["path"], r["status"], r["error"]) for r in full.errors]
    assert (lean.n("ok"), lean.n("skipped"), lean.n("error"), lean.total) == (2, 0, 1, 3)
    assert lean.summary_line().split(" in ")[0] == full.summary_line().split(" in ")[0]
    timing = ("seconds", "read_s", "compute_s", "write_s", "read_cpu_s", "compute_cpu_s",
              "write_cpu_s", "output", "path")
    for name, drop in (("rasters_summary.csv", ("path",)), ("rasterization_events.csv", timing)):
        assert _csv_rows(tmp_path / "lean" / name, drop) == _csv_rows(tmp_path / "full" / name,
                                                                      drop)
    # Resuming keeps the summary rows of skipped tiles; redoing replaces them.
    again = fastraster.rasterize_dir(staged, tmp_path / "lean", progress=False,
                                     keep_records=False)
    assert again.n("skipped") == 2
    assert len(_csv_rows(tmp_path / "lean" / "rasters_summary.csv")) == 4
    redo = fastraster.rasterize_dir(staged, tmp_path / "lean", progress=False, overwrite=True,
                                    keep_records=False)
    assert redo.n("ok") == 2
    assert _csv_rows(tmp_path / "lean" / "rasters_summary.csv", ("path",)) == _csv_rows(
        tmp_path / "full" / "rasters_summary.csv", ("path",))
    assert not [p for p in (tmp_path / "lean").iterdir() if p.name.startswith(".")]


def test_backends_without_generators_are_run_chunk_by_chunk():
    # Ray's joblib backend (a multiprocessing-style pool) cannot return generators; nor can
    # this threading backend, which stands in for it without starting processes.
    from joblib import register_parallel_backend
    from joblib._parallel_backends import ThreadingBackend

    class NoGenerators(ThreadingBackend):
        supports_return_generator = False

    register_parallel_backend("no-generators", NoGenerators)
    n = 150  # more than two chunks
    got = parallel_unordered(abs, [(-i,) for i in range(n)], n_jobs=2, backend="no-generators")
    assert list(got) == list(range(n))


def test_cli_scheduler_option_runs_on_the_cluster(dask_client, sample_staged, tmp_path):
    from click.testing import CliRunner

    from fastraster.cli import main

    result = CliRunner().invoke(main, ["rasterize", str(sample_staged), str(tmp_path / "d"),
                                       "--scheduler", dask_client.scheduler.address,
                                       "--quiet"])
    assert result.exit_code == 0, result.output
    assert "2 tiles: 2 ok, 0 skipped, 0 failed" in result.output
    ref = fastraster.rasterize_dir(sample_staged, tmp_path / "l", progress=False)
    for a, b in zip(tif_files(tmp_path / "l"), tif_files(tmp_path / "d"), strict=True):
        np.testing.assert_array_equal(read_tif(a)[0], read_tif(b)[0])
    assert ref.n("ok") == 2
