"""Whole runs under faults (issue 16): dead workers in every pipeline, interrupts, killed
runs' litter, disk full and unwritable outputs, concurrent runs into one folder.

Every run is checked against a clean run of the same tiles (pixel for pixel, and the
summary CSV row for row); docs/reliability.md maps each fault to its test here.
"""

import csv
import errno
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import fastraster
from fastraster.io.atomic import (
    HOST,
    OutputError,
    atomic_path,
    os_errno,
    sweep_litter,
    temp_path,
)
from fastraster.io.records import EVENT_COLUMNS, append_events, locked_merge
from tests.conftest import REPO, assert_no_temp_files, dead_pid, read_tif, tif_files

TILES = [(1524 + i, 910 + j, 13) for i in range(3) for j in range(2)]


@pytest.fixture(scope="module")
def staged6(tmp_path_factory):
    from fastraster.sample import make_sample

    root = tmp_path_factory.mktemp("staged6") / "staged"
    make_sample(root, tiles=TILES, spacing_m=60.0, seed=2)
    return root


@pytest.fixture(scope="module")
def reference(staged6, tmp_path_factory):
    """A clean run (in this process) of the six tiles."""
    out = tmp_path_factory.mktemp("reference") / "out"
    report = fastraster.rasterize_dir(staged6, out, progress=False)
    assert report.n("ok") == 6
    return out


def _staged(staged, x, y):
    return Path(staged) / "WorldCRS84Quad" / "13" / str(x) / f"{y}.gpkg"


def assert_same_tifs(out, ref, only=None):
    """Every GeoTIFF below ``out`` is complete and equal to the reference's (all of them,
    or the tiles ``only``)."""
    got = {p.relative_to(out): p for p in tif_files(out)}
    want = {p.relative_to(ref): p for p in tif_files(ref)}
    if only is not None:
        want = {k: v for k, v in want.items()
                if (int(k.parts[-2]), int(k.stem), int(k.parts[-3])) in only}
    assert set(got) == set(want)
    for k in want:
        a, b = read_tif(got[k]), read_tif(want[k])
        np.testing.assert_array_equal(a[0], b[0])
        assert a[2] == b[2]


def summary_rows(out):
    """rasters_summary.csv rows without the path (which names the folder)."""
    with open(Path(out) / "rasters_summary.csv") as fh:
        return sorted(tuple(v for k, v in r.items() if k != "path") for r in csv.DictReader(fh))


def event_rows(out):
    with open(Path(out) / "rasterization_events.csv") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == EVENT_COLUMNS and all(len(r) == len(EVENT_COLUMNS) for r in rows)
    return [dict(zip(rows[0], r)) for r in rows[1:]]


def assert_clean(root):
    """No temporary file, lock file or journal folder left below ``root``."""
    assert_no_temp_files(root)
    hidden = [p for p in Path(root).rglob(".*")]
    assert not hidden, hidden


# ---------------------------------------------------------------------------------------------
# Dead workers
# ---------------------------------------------------------------------------------------------


def test_rasterize_dir_survives_a_killed_worker(staged6, reference, tmp_path, monkeypatch):
    monkeypatch.setenv("FASTRASTER_CHAOS", "1525/911.gpkg=SIGKILL@1")
    out = tmp_path / "out"
    report = fastraster.rasterize_dir(staged6, out, n_jobs=2, batch_size=2, progress=False,
                                      keep_records=False)
    assert (report.n("ok"), report.total, report.errors) == (6, 6, [])
    assert (report.retried, report.worker_deaths) == (1, 1)
    assert "1 succeeded on a retry; 1 worker death survived" in report.summary_line()
    assert_same_tifs(out, reference)
    assert summary_rows(out) == summary_rows(reference)  # the streamed CSVs, whole
    attempts = {e["tile"]: e["attempts"] for e in event_rows(out)}
    assert attempts.pop("Tile(x=1525, y=911, z=13)") == "2" and set(attempts.values()) == {"1"}
    assert_clean(out)


def test_pyramid_and_web_tiles_survive_dead_workers(reference, tmp_path, monkeypatch):
    clean, faulty = tmp_path / "clean", tmp_path / "faulty"
    for d in (clean, faulty):
        shutil.copytree(reference, d)
    ref = fastraster.build_pyramid(clean, (11, 13), progress=False)
    fastraster.render_web_tiles(clean, clean / "web", progress=False)
    monkeypatch.setenv("FASTRASTER_CHAOS", "12/762/455.tif=SIGKILL@1")
    report = fastraster.build_pyramid(faulty, (11, 13), n_jobs=2, batch_size=1,
                                      progress=False)
    assert [(r["tile"], r["status"]) for r in report] == [(r["tile"], r["status"])
                                                          for r in ref]
    assert {r["tile"]: r["attempts"] for r in report}[(762, 455, 12)] == 2
    assert report.worker_deaths == 1 and report.retried == 1
    assert_same_tifs(faulty, clean)
    assert summary_rows(faulty) == summary_rows(clean)
    # Without retries, the GeoTIFF whose worker died is reported, naming the file; every
    # other web tile is made, byte for byte as in a clean run.
    monkeypatch.setenv("FASTRASTER_CHAOS", "13/1525/910.tif=exit3")
    web = fastraster.render_web_tiles(faulty, faulty / "web", n_jobs=2, batch_size=2,
                                      progress=False, retries=0)
    dead = faulty / "WorldCRS84Quad" / "13" / "1525" / "910.tif"
    assert [r["error"] for r in web.errors] == [f"{dead}: worker exited with code 3"]
    assert web.n("ok") == 8 and web.worker_deaths == 1
    made = sorted(p.relative_to(faulty / "web") for p in (faulty / "web").rglob("*.png"))
    want = sorted(p.relative_to(clean / "web") for p in (clean / "web").rglob("*.png"))
    assert made == [p for p in want if p.parts[-3:] != ("13", "1525", "910.png")]
    for p in made:
        assert (faulty / "web" / p).read_bytes() == (clean / "web" / p).read_bytes()
    assert_clean(faulty)


# ---------------------------------------------------------------------------------------------
# Interrupts
# ---------------------------------------------------------------------------------------------


def _descendants(pid):
    """Pids of every process below ``pid`` (from /proc)."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _chaos_lines(log):
    return log.read_text().splitlines() if log.exists() else []


def test_interrupted_cli_runs_stop_cleanly_and_resume(staged6, reference, tmp_path):
    """Ctrl-C (SIGINT to the process group) and kill (SIGTERM to the parent), on two runs
    side by side: exit 130 / 143 with how to resume, no orphan, no temporary file, the CSVs
    of what finished; then a resume completes the run as a clean run would."""
    runs = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        out, log = tmp_path / f"out{signum}", tmp_path / f"chaos{signum}.log"
        env = {**os.environ, "PYTHONPATH": str(REPO), "FASTRASTER_CHAOS": ".gpkg=sleep0.5",
               "FASTRASTER_CHAOS_LOG": str(log)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "fastraster.cli", "rasterize", str(staged6), str(out),
             "-j", "2", "--batch-size", "1", "-q"], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True)
        runs[signum] = (proc, out, log)
    try:
        for signum, (proc, _out, log) in runs.items():
            deadline = time.monotonic() + 120
            while len(_chaos_lines(log)) < 4 and time.monotonic() < deadline:
                time.sleep(0.02)  # two workers each on their second tile: two finished
            family = _descendants(proc.pid)
            if signum == signal.SIGINT:
                os.killpg(proc.pid, signum)  # Ctrl-C: the whole foreground process group
            else:
                os.kill(proc.pid, signum)  # kill <pid>
            runs[signum] += (family,)
        outputs = {signum: run[0].communicate(timeout=60) for signum, run in runs.items()}
    finally:
        for proc, *_ in runs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    for signum, (proc, out, _log, family) in runs.items():
        stdout, stderr = outputs[signum]
        assert proc.returncode == 128 + signum, stderr
        name = signal.Signals(signum).name
        assert f"interrupted by {name}" in stderr and "run the same command again" in stderr
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in family):
            time.sleep(0.05)
        assert family and not [p for p in family if _alive(p)]  # no orphans
        events = event_rows(out)
        done = [e for e in events if e["status"] == "ok"]
        assert 2 <= len(done) < 6 and len(done) == len(events)
        assert f"{len(done)} tiles: {len(done)} ok" in stdout
        finished = {tuple(int(v.split("=")[1]) for v in e["tile"][5:-1].split(", "))
                    for e in done}
        assert_same_tifs(out, reference, only=finished)  # complete, and in the CSVs
        assert len(summary_rows(out)) == 2 * len(done)
        assert_clean(out)
        assert not [n for n in os.listdir(tempfile.gettempdir())
                    if n.startswith(".fastraster-run") and f".{proc.pid}." in n]
        again = fastraster.rasterize_dir(staged6, out, progress=False)  # resume
        assert (again.n("skipped"), again.n("ok")) == (len(done), 6 - len(done))
        assert_same_tifs(out, reference)
        assert summary_rows(out) == summary_rows(reference)
        assert_clean(out)


# ---------------------------------------------------------------------------------------------
# Litter of killed runs
# ---------------------------------------------------------------------------------------------

_KILLED_WRITER = """
import os, signal, sys
from fastraster.io.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    with open(tmp, "wb") as fh:
        fh.write(b"half a GeoTIFF")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_resume_removes_the_litter_of_killed_runs_and_only_it(staged6, reference,
                                                                tmp_path):
    out = tmp_path / "out"
    folder = out / "WorldCRS84Quad" / "13" / "1524"
    folder.mkdir(parents=True)
    # A writer killed (SIGKILL) in the middle of its write: what it leaves is real litter.
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(folder / "910.tif")], env=env,
                   check=False)
    (killed,) = [p.name for p in folder.iterdir()]
    assert f".{HOST}." in killed and not (folder / "910.tif").exists()
    day = 24 * 3600
    live = Path(temp_path(folder / "911.tif"))  # owned by this (live) process
    other_young = folder / f".911.tif.otherhost.{os.getpid()}.{'a' * 32}.tmp"
    other_old = folder / f".911.tif.otherhost.123.{'b' * 32}.tmp"
    legacy_old = folder / f".911.tif.{'c' * 32}.tmp"
    unrelated = folder / ".notes.txt"
    for p in (live, other_young, other_old, legacy_old, unrelated):
        p.write_bytes(b"x")
    for p in (other_old, legacy_old):
        os.utime(p, (time.time() - 2 * day, time.time() - 2 * day))
    report = fastraster.rasterize_dir(staged6, out, progress=False)
    assert report.litter_removed == 3
    assert "removed 3 temporary files of killed runs" in report.summary_line()
    left = sorted(p.name for p in folder.iterdir() if p.name.startswith("."))
    assert left == sorted(p.name for p in (live, other_young, unrelated))
    assert_same_tifs(out, reference)
    for p in (live, other_young, unrelated):
        p.unlink()


def test_a_run_killed_with_sigkill_resumes_to_a_clean_runs_outputs(staged6, reference,
                                                                    tmp_path):
    """kill -9 of a whole run (keep_records=False: its CSV rows were streamed to temporary
    parts): the resume removes its temporary files and journal folder, skips the tiles it
    finished, and its CSVs hold their rows (read back from the files), as a clean run's."""
    out, log = tmp_path / "out", tmp_path / "chaos.log"
    env = {**os.environ, "PYTHONPATH": str(REPO), "FASTRASTER_CHAOS": ".gpkg=sleep0.3",
           "FASTRASTER_CHAOS_LOG": str(log)}
    proc = subprocess.Popen([sys.executable, "-c", _RUN, str(staged6), str(out), "0", "0"],
                            env=env, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(_chaos_lines(log)) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(tif_files(out))
    litter = [p for p in out.iterdir() if p.name.startswith(".")]
    assert finished >= 2 and len(litter) == 3  # the streamed CSV parts (summary, events, skipped)
    tmp = tempfile.gettempdir()
    journals = [n for n in os.listdir(tmp) if n.startswith(".fastraster-run") and
                f".{proc.pid}." in n]
    assert journals  # the killed run's journal folder
    again = fastraster.rasterize_dir(staged6, out, progress=False)
    assert again.litter_removed == 3
    assert (again.n("skipped"), again.n("ok")) == (finished, 6 - finished)
    assert_same_tifs(out, reference)
    assert summary_rows(out) == summary_rows(reference)
    assert_clean(out)
    assert not [n for n in journals if os.path.exists(os.path.join(tmp, n))]


def test_sweep_litter_tells_dead_owners_from_live_ones(tmp_path):
    dead, now = dead_pid(), time.time()
    name = f".x.tif.{HOST}.{{}}.{'d' * 32}.tmp"
    files = {"dead": tmp_path / name.format(dead), "live": tmp_path / name.format(os.getpid()),
             "reused": tmp_path / name.format(1),  # pid 1 lives, but started long before
             "dir": tmp_path / f".fastraster-run.{HOST}.{dead}.{'e' * 32}.run",
             "gdal side file": tmp_path / (name.format(dead) + ".aux.xml"),
             "not ours": tmp_path / ".x.tif.tmp"}
    for key, p in files.items():
        p.mkdir() if key == "dir" else p.write_bytes(b"x")
    # pid 1 started at boot; a file it "owns" written after that is plausible (kept), one
    # last written before it started cannot be its (the pid was reused): litter.
    os.utime(files["reused"], (1.0, 1.0))
    assert sweep_litter([tmp_path, tmp_path / "missing"], now=now) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        files[k].name for k in ("live", "not ours"))


# ---------------------------------------------------------------------------------------------
# Disk full, unwritable output
# ---------------------------------------------------------------------------------------------


def _mount(args, target, what):
    if shutil.which("mount") is None:
        pytest.skip(f"{what}: no mount command")
    r = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"{what}: mounting is not permitted here ({r.stderr.strip()}); "
                    "the fault-injection variant covers it")


@pytest.fixture
def small_tmpfs(tmp_path):
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    _mount(["-t", "tmpfs", "-o", "size=96k", "tmpfs"], mnt, "a full disk on a small tmpfs")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.parametrize("engine", ["lean", "gdal"])
@pytest.mark.parametrize("keep_records", [True, False], ids=["records", "streamed"])
def test_disk_full_on_a_tmpfs(staged6, reference, small_tmpfs, keep_records, engine,
                              monkeypatch):
    """A real full disk, with either GeoTIFF writer (GDAL's truncated directory is caught by
    check_tiff; the lean writer's os.write reports ENOSPC itself)."""
    import warnings

    if engine == "gdal":
        monkeypatch.setenv("FASTRASTER_LEAN_IO", "0")
    out = small_tmpfs / "out"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = fastraster.rasterize_dir(staged6, out, progress=False,
                                          keep_records=keep_records)
    errors = report.errors
    assert errors and report.n("ok") >= 1
    for rec in errors:  # one clear error per tile: the file and the OS error
        assert rec["error"] == (f"{rec['path']}: cannot write {rec['output']}: [Errno 28] "
                                "No space left on device")
        assert rec["errno"] == errno.ENOSPC
    ok = {tuple(int(v) for v in (p.parts[-2], p.stem, p.parts[-3])) for p in tif_files(out)}
    assert len(ok) == report.n("ok")
    assert_same_tifs(out, reference, only=ok)  # what carries a final name is complete
    if report.csv_error:  # the CSVs did not fit either: said once, the report is whole
        assert "No space left on device" in report.csv_error
        assert [str(w.message) for w in caught if w.category is RuntimeWarning] == [
            f"{report.csv_error}: the run's CSVs were not written (its outputs are "
            "complete; the report holds the records)"]
        assert "CSVs not written" in report.summary_line()
    else:
        assert len(summary_rows(out)) == 2 * len(ok)
        assert len(event_rows(out)) == 6
    assert_clean(out)


class _FullDiskOs:
    """The ``os`` module as the lean GeoTIFF writer sees it on a disk that fills up: each
    file takes its first 100 bytes, then ``os.write`` fails with ENOSPC (as the kernel says
    it, with the errno)."""

    def __getattr__(self, name):
        return getattr(os, name)

    @staticmethod
    def write(fd, data):
        if os.lseek(fd, 0, os.SEEK_CUR) >= 100:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return os.write(fd, bytes(data[:100]))


@pytest.mark.parametrize("engine", ["gdal", "lean"])
def test_disk_full_by_fault_injection_stops_the_run(tmp_path, monkeypatch, engine):
    """ENOSPC for 30 tiles: 20 failures, then nothing more tried, no temporary file left.
    GDAL: at its write, as rasterio reports it (no errno: the message, then the filesystem's
    free space tell). The lean writer: at ``os.write`` after part of the file is written."""
    import rasterio.errors
    import rasterio.io

    from fastraster.sample import make_sample

    staged = tmp_path / "staged"
    (one,) = make_sample(tmp_path / "one", tiles=[(1524, 910, 13)], spacing_m=200.0)
    for y in range(30):  # one small file under 30 tile paths (its polygons outside most)
        dst = _staged(staged, 1524, 900 + y)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.link(one, dst)

    def full_disk(self, *a, **k):
        raise rasterio.errors.RasterioIOError("Write failed. See previous exception.")

    class Full:
        f_bavail = f_bfree = 0
        f_files = f_favail = 100

    fastraster.warm_up()  # its GeoTIFFs (and the lean writer's templates) before the fault
    if engine == "gdal":
        monkeypatch.setenv("FASTRASTER_LEAN_IO", "0")
        monkeypatch.setattr(rasterio.io.DatasetWriter, "write", full_disk)
        monkeypatch.setattr("fastraster.io.atomic.os.statvfs", lambda path: Full())
    else:
        monkeypatch.setattr("fastraster.io.geotiff_lean.os", _FullDiskOs())
    out = tmp_path / "out"
    report = fastraster.rasterize_dir(staged, out, progress=False)
    failed = [r for r in report if r.get("failure") != "not attempted"]
    skipped = [r for r in report if r.get("failure") == "not attempted"]
    assert len(failed) == 20 and len(skipped) == 10 == report.not_attempted
    assert all(r["error"] == f"{r['path']}: cannot write {r['output']}: [Errno 28] No space "
               "left on device" for r in failed)
    assert all(r["errno"] == errno.ENOSPC for r in failed)
    assert all("not attempted: stopped after 20 failures in a row with [Errno 28]" in
               r["error"] for r in skipped)
    assert report.stopped and report.stopped in report.summary_line()
    assert tif_files(out) == []
    assert len(event_rows(out)) == 30
    assert_clean(out)


def test_os_errors_are_recognised_in_gdal_messages(tmp_path):
    import rasterio.errors

    exc = rasterio.errors.RasterioIOError("Attempt to create new tiff file '/x/y.tif' failed: "
                                          "Read-only file system")
    assert os_errno(exc) == errno.EROFS
    assert os_errno(ValueError("no")) is None
    assert os_errno(OSError(errno.EDQUOT, "Disk quota exceeded")) == errno.EDQUOT
    assert str(OutputError(errno.EACCES, "/o/a.tif")) == \
        "cannot write /o/a.tif: [Errno 13] Permission denied"
    with pytest.raises(OutputError, match=r"cannot write .*a\.tif: \[Errno 30\]"):
        with atomic_path(tmp_path / "a.tif") as tmp:
            Path(tmp).write_bytes(b"part")
            raise exc
    assert list(tmp_path.iterdir()) == []  # and no temporary file


@pytest.fixture
def read_only_dir(tmp_path):
    src, mnt = tmp_path / "src", tmp_path / "ro"
    src.mkdir()
    mnt.mkdir()
    _mount(["--bind", str(src)], mnt, "a read-only bind mount")
    r = subprocess.run(["mount", "-o", "remount,bind,ro", str(mnt)], capture_output=True)
    if r.returncode != 0:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
        pytest.skip("a read-only bind mount: remounting read-only is not permitted here")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_read_only_output_folder_stops_the_run_at_once(staged6, read_only_dir):
    with pytest.raises(OutputError) as info:
        fastraster.rasterize_dir(staged6, read_only_dir, progress=False)
    assert info.value.errno == errno.EROFS
    assert str(info.value) == (f"cannot write into output folder {read_only_dir}: "
                               "[Errno 30] Read-only file system")
    from click.testing import CliRunner

    from fastraster.cli import main

    result = CliRunner().invoke(main, ["rasterize", str(staged6), str(read_only_dir / "o"),
                                       "-q", "-j", "1"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: cannot create output folder {read_only_dir / 'o'}: [Errno 30] Read-only "
        "file system"]


def test_an_unwritable_output_folder_by_fault_injection(staged6, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real_open = os.open

    def forbidden(path, *a, **k):
        if str(path).startswith(str(out)):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr(os, "open", forbidden)
    with pytest.raises(OutputError, match=rf"cannot write into output folder {out}: "
                                          r"\[Errno 13\] Permission denied"):
        fastraster.rasterize_dir(staged6, out, progress=False)
    monkeypatch.undo()
    assert [p for p in out.rglob("*")] == []


# ---------------------------------------------------------------------------------------------
# Concurrent runs into one folder
# ---------------------------------------------------------------------------------------------

_RUN = """
import sys, fastraster
r = fastraster.rasterize_dir(sys.argv[1], sys.argv[2], progress=False,
                             overwrite=sys.argv[3] == "1", keep_records=sys.argv[4] == "1")
sys.exit(1 if r.errors else 0)
"""


def test_concurrent_runs_into_one_folder_corrupt_nothing(staged6, reference, tmp_path):
    # Two staged trees sharing two tiles; one run overwrites, the other resumes.
    roots = {"a": TILES[:4], "b": TILES[2:]}
    for name, tiles in roots.items():
        for x, y, _ in tiles:
            dst = _staged(tmp_path / name, x, y)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.link(_staged(staged6, x, y), dst)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO), "FASTRASTER_CHAOS": ".gpkg=sleep0.15"}
    procs = [subprocess.Popen([sys.executable, "-c", _RUN, str(tmp_path / name), str(out),
                               overwrite, keep], env=env)
             for name, overwrite, keep in (("a", "1", "1"), ("b", "0", "0"))]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert_same_tifs(out, reference)
    assert summary_rows(out) == summary_rows(reference)  # one row per tile and statistic
    events = event_rows(out)
    assert len(events) == 8 and {e["status"] for e in events} <= {"ok", "skipped"}
    assert_clean(out)


_MERGER = """
import sys
from fastraster.io.records import append_events, locked_merge
for i in range(int(sys.argv[3])):
    rec = {"path": f"{sys.argv[2]}-{i}", "tile": None, "status": "ok", "error": None,
           "seconds": 0.0, "polygons": 1, "output": None}
    locked_merge(sys.argv[1], [rec], append_events)
"""


def test_locked_merges_from_many_processes_lose_no_row(tmp_path):
    path = tmp_path / "rasterization_events.csv"
    n = 25
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", _MERGER, str(path), f"p{k}", str(n)],
                              env=env) for k in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0] * 4
    rows = event_rows(tmp_path)
    assert sorted(r["path"] for r in rows) == sorted(f"p{k}-{i}" for k in range(4)
                                                     for i in range(n))
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no lock file left


def test_events_of_an_older_version_are_kept_when_appending(tmp_path):
    path = tmp_path / "rasterization_events.csv"
    old = EVENT_COLUMNS[:-1]  # before "attempts"
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([old, ["a.gpkg"] + [""] * (len(old) - 1)])
    locked_merge(path, [{"path": "b.gpkg", "tile": None, "status": "ok", "error": None,
                         "seconds": 0.0, "polygons": 1, "output": None, "attempts": 2}],
                 append_events)
    rows = event_rows(tmp_path)
    assert [(r["path"], r["attempts"]) for r in rows] == [("a.gpkg", ""), ("b.gpkg", "2")]


@pytest.mark.parametrize("creation", [{}, {"cog": True}, {"BIGTIFF": "YES"}],
                         ids=["gtiff", "cog", "bigtiff"])
def test_check_tiff_finds_a_file_cut_short(tmp_path, creation):
    import rasterio

    from fastraster.io.geotiff import geotiff_profile
    from fastraster.io.tiffcheck import IncompleteTiff, check_tiff
    from fastraster.model.grid import TileGrid

    grid = TileGrid.from_tile((1524, 910, 13), "WorldCRS84Quad", 256)
    data = np.random.default_rng(0).random((2, 256, 256)).astype(np.float32)
    profile = geotiff_profile(grid, 2, cog=creation.get("cog", False))
    profile.update({k: v for k, v in creation.items() if k != "cog"})
    path = tmp_path / "t.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    check_tiff(path)  # complete
    whole = path.read_bytes()
    for cut in (4, 100, len(whole) // 2, len(whole) - 8):  # (a COG ends with a 4-byte
        # copy of its last tile's end, which no reader needs)
        path.write_bytes(whole[:cut])
        with pytest.raises(IncompleteTiff, match="incomplete TIFF"):
            check_tiff(path)


def test_the_tiler_retries_failed_files(staged6, tmp_path, monkeypatch):
    """RasterTiler.rasterize_vectors runs in the calling process: a failed file is tried
    ``retries`` more times there, and its events row says how many attempts it took."""
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "staged" / "WorldCRS84Quad" / "13" / "1530" / "910.gpkg"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a geopackage")
    good = _staged(staged6, 1524, 910)
    tiler = fastraster.RasterTiler({"dir_geotiff": "gt", "tms_id": "WorldCRS84Quad"},
                                   retries=2)
    assert tiler.rasterize_vectors([str(good), str(bad)]) == [(1524, 910, 13)]
    rows = event_rows(tmp_path)
    assert [(r["status"], r["attempts"]) for r in rows] == [("ok", "1"), ("error", "3")]
    assert rows[1]["error"].startswith(str(bad))
