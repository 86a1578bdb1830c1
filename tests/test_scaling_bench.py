"""scripts/scaling_bench.py: Amdahl / Karp-Flatt / verdict logic, and one tiny real run."""

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "scaling_bench.py"


@pytest.fixture(scope="module")
def sb():
    spec = importlib.util.spec_from_file_location("scaling_bench", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["scaling_bench"] = mod
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop("scaling_bench", None)


# --- pure functions --------------------------------------------------------------------------


@pytest.mark.parametrize("s", [0.0, 0.03, 0.1, 0.5, 1.0])
def test_amdahl_fit_recovers_serial_fraction(sb, s):
    ws = [1, 2, 4, 8, 16]
    fit, rms = sb.amdahl_fit(ws, [sb.amdahl_speedup(s, w) for w in ws])
    assert fit == pytest.approx(s, abs=1e-4)
    assert rms < 1e-4


def test_amdahl_fit_is_least_squares_with_noise(sb):
    ws = [1, 2, 3, 4]
    noisy = [sb.amdahl_speedup(0.2, w) * f for w, f in zip(ws, [1.0, 1.02, 0.98, 1.01])]
    fit, _ = sb.amdahl_fit(ws, noisy)
    assert fit == pytest.approx(0.2, abs=0.03)
    sse = [sum((sp - sb.amdahl_speedup(x, w)) ** 2 for w, sp in zip(ws, noisy))
           for x in (fit - 0.002, fit, fit + 0.002)]
    assert sse[1] <= min(sse[0], sse[2])


def test_amdahl_fit_needs_more_than_one_worker(sb):
    assert sb.amdahl_fit([1], [1.0]) == (None, None)


def test_karp_flatt(sb):
    assert sb.karp_flatt(1.0, 1) is None
    assert sb.karp_flatt(4.0, 4) == pytest.approx(0.0)     # ideal speedup: no serial part
    assert sb.karp_flatt(1.0, 4) == pytest.approx(1.0)     # no speedup: all serial
    assert sb.karp_flatt(1.6, 2) == pytest.approx((1 / 1.6 - 0.5) / 0.5)
    for s in (0.05, 0.3):                                  # of an Amdahl curve it is s
        for w in (2, 3, 8):
            assert sb.karp_flatt(sb.amdahl_speedup(s, w), w) == pytest.approx(s)


def _point(w, speedup, util, occupancy=0.98, io_wait=None, phases=(0.04, 0.03, 0.02),
           cpu_frac=None, dispatch=0.02):
    cpu_frac = util if cpu_frac is None else cpu_frac
    p = {"workers": w, "speedup": speedup, "efficiency": speedup / w,
         "cpu_utilisation": util, "occupancy": occupancy, "cores_busy": util * w,
         "io_wait_share": io_wait, "queue_wait_share": None, "dispatch_cores": dispatch,
         "mean_other_s": 0.002, "mean_task_s": sum(phases) + 0.002}
    for ph, t in zip(("read", "compute", "write"), phases):
        p[f"mean_{ph}_s"] = t
        p[f"mean_{ph}_cpu_s"] = t * cpu_frac
    return p


def test_classify_cpu_bound(sb):
    pts = [_point(1, 1.0, 0.98), _point(2, 1.9, 0.97), _point(4, 1.95, 0.49)]
    verdict, why, evidence = sb.classify(pts, cores=2, serial_fraction=0.05)
    assert verdict == "CPU-bound"
    assert "98%" in why and "dominant phase read" in why
    assert any("past the 2 cores" in e and "flat" in e for e in evidence)
    assert any("s = 0.050" in e for e in evidence)


def test_classify_io_bound(sb):
    # Tasks on the CPU 30% of the time, the rest waiting (in read); scaling past the cores.
    pts = [_point(1, 1.0, 0.3, io_wait=0.7, phases=(0.2, 0.02, 0.02)),
           _point(2, 1.95, 0.3, io_wait=0.7, phases=(0.2, 0.02, 0.02)),
           _point(4, 3.7, 0.29, io_wait=0.7, phases=(0.2, 0.02, 0.02))]
    verdict, why, _ = sb.classify(pts, cores=2)
    assert verdict == "I/O-bound"
    assert "read" in why
    # Without run-queue data, 1 - CPU utilisation is taken as the I/O wait.
    for p in pts:
        p["io_wait_share"] = None
    assert sb.classify(pts, cores=2)[0] == "I/O-bound"


def test_classify_waiting_for_a_core_is_not_io(sb):
    # Low CPU utilisation explained by the run queue (a loaded machine) is not I/O.
    pts = [_point(1, 1.0, 0.5, io_wait=0.02), _point(2, 1.1, 0.3, io_wait=0.02)]
    assert sb.classify(pts, cores=2, available=1)[0] == "CPU-bound"


def test_classify_overhead_bound(sb):
    # Workers idle most of the time at a count within the cores.
    pts = [_point(1, 1.0, 0.98), _point(2, 0.7, 0.97, occupancy=0.3)]
    verdict, why, _ = sb.classify(pts, cores=2)
    assert verdict == "overhead-bound" and "30%" in why
    # No speedup although 2 cores are free.
    pts = [_point(1, 1.0, 0.98), _point(2, 0.9, 0.97, occupancy=0.9)]
    assert sb.classify(pts, cores=2)[0] == "overhead-bound"
    # ... but with only 1 free core (others load the machine) that is expected.
    assert sb.classify(pts, cores=2, available=1)[0] == "CPU-bound"
    # A parent that is busy dispatching.
    pts = [_point(1, 1.0, 0.98), _point(4, 1.5, 0.97, dispatch=0.95)]
    assert sb.classify(pts, cores=4)[0] == "overhead-bound"


def test_classify_needs_one_worker(sb):
    with pytest.raises(ValueError):
        sb.classify([_point(2, 1.0, 0.9)], cores=2)


def test_cpu_topology(sb):
    m = sb.cpu_topology()
    assert 1 <= m["cores"] <= m["allowed_cpus"] <= m["logical_cpus"]
    assert m["physical_cores"] >= 1


# --- command line ----------------------------------------------------------------------------


@pytest.mark.parametrize("workers", ["16", "1,2,16", "0,1", "a,b"])
def test_rejects_bad_worker_counts(sb, workers, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        sb.main(["--workers", workers, "--out", str(tmp_path)])
    assert exc.value.code == 2
    if "16" in workers:
        assert "at most 15" in capsys.readouterr().err


@pytest.mark.slow
def test_main_tiny_run(sb, tmp_path, capsys):
    out = tmp_path / "res"
    rc = sb.main(["--workers", "1,2", "--files", "4", "--repeats", "1", "--sample-tiles", "2",
                  "--sample-spacing", "40", "--out", str(out), "--quiet"])
    assert rc == 0
    for name in ("points.csv", "rounds.csv", "points.json", "scaling.png"):
        assert (out / name).stat().st_size > 0, name
    res = json.loads((out / "points.json").read_text())
    assert res["verdict"] in ("CPU-bound", "I/O-bound", "overhead-bound")
    assert [p["workers"] for p in res["points"]] == [1, 2]
    assert len(res["rounds"]) == 2
    for p in res["points"]:
        for key in ("workers", "wall_s", "tiles_per_s", "speedup", "efficiency", "karp_flatt",
                    "cpu_utilisation", "peak_rss_mb", "mean_read_s", "mean_compute_s",
                    "mean_write_s", "mean_read_cpu_s", "occupancy", "others_cores", "loaded"):
            assert key in p, key
        assert p["tiles"] == 4 and p["errors"] == 0
        assert p["wall_s"] > 0 and p["peak_rss_mb"] > 0 and p["mean_compute_s"] > 0
        assert p["tiles_per_s"] == pytest.approx(4 / p["wall_s"])
    p1, p2 = res["points"]
    assert p1["speedup"] == 1.0 and p1["karp_flatt"] is None
    assert p2["karp_flatt"] == pytest.approx(sb.karp_flatt(p2["speedup"], 2))
    assert res["rounds"][1]["warm_workers"] == 2 and res["rounds"][1]["new_workers"] == 0
    printed = capsys.readouterr().out
    assert "VERDICT: " + res["verdict"] in printed
    header = (out / "points.csv").read_text().splitlines()[0].split(",")
    assert {"workers", "speedup", "efficiency", "karp_flatt", "cpu_utilisation"} <= set(header)
    assert not math.isnan(p2["speedup"])


def test_judged_points_leave_out_loaded_points(sb):
    pts = [dict(_point(1, 1.0, 0.98), loaded=False, others_cores=0.0),
           dict(_point(2, 1.9, 0.97), loaded=False, others_cores=0.1),
           dict(_point(4, 0.8, 0.3), loaded=True, others_cores=1.1)]
    used, avail = sb.judged_points(pts, cores=2)
    assert [p["workers"] for p in used] == [1, 2] and avail == 2
    # Too few clean points: all are used, with the cores the others left free.
    for p in pts:
        p.update(loaded=True, others_cores=1.0)
    used, avail = sb.judged_points(pts, cores=2)
    assert len(used) == 3 and avail == 1
    # No load at all.
    for p in pts:
        p.update(loaded=False, others_cores=0.0)
    assert sb.judged_points(pts, cores=2) == (pts, 2)
