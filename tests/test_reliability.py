"""The supervised executor under faults: dead workers, retries, interrupts, a failing disk.

Faults are injected with FASTRASTER_CHAOS (fastraster.execution.chaos) on light tasks
(tests/_tasks.py), plus one worker killed from outside; the pipelines' tests are in
tests/test_faults.py.
"""

import os
import signal
import threading
import time

import pytest

from fastraster.execution import chaos
from fastraster.execution.executor import run_tasks
from fastraster.execution.supervisor import RunInterrupted, death_reason
from tests import _tasks


def _run(items, monkeypatch, chaos_spec=None, log=None, **kw):
    monkeypatch.setenv("FASTRASTER_CHAOS", chaos_spec or "")
    if log is not None:
        monkeypatch.setenv("FASTRASTER_CHAOS_LOG", str(log))
    kw.setdefault("n_jobs", 2)
    run = run_tasks(_tasks.echo, items, (0.0,), describe=_tasks.describe, **kw)
    recs = list(run)
    assert sorted(r["path"] for r in recs) == sorted(items)  # every item, exactly once
    return run, {r["path"]: r for r in recs}


def _log(path):
    """[(pid, action, item)] of a chaos log."""
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return [(int(p), a, i) for p, a, i in (line.split() for line in fh)]


@pytest.mark.parametrize("action,message", [("SIGKILL", "worker died: SIGKILL"),
                                            ("SIGSEGV", "worker died: SIGSEGV"),
                                            ("exit3", "worker exited with code 3")],
                         ids=["SIGKILL", "SIGSEGV", "exit3"])
def test_a_dead_worker_costs_only_the_item_it_was_running(monkeypatch, tmp_path, action,
                                                          message):
    # Batches [a00 a01 a02] [a03 a04 a05] ... on two workers: a04 ends its worker while the
    # other worker sleeps in a01. a01 (running elsewhere: collateral, loky kills its worker
    # too) and a05, a02 (not started) are run again; a00 and a03 finished before the death
    # and their records come from the journals; only a04 fails.
    log = tmp_path / "chaos.log"
    items = [f"a{i:02d}" for i in range(12)]
    run, recs = _run(items, monkeypatch, f"a01=sleep1;a04=waita01+sleep0.2+{action}",
                     log=log, retries=0, batch_size=3)
    assert recs["a04"]["status"] == "error"
    assert recs["a04"]["error"] == f"a04: {message}"
    assert recs["a04"]["failure"] == "worker died" and recs["a04"]["attempts"] == 1
    assert all(recs[i]["status"] == "ok" and recs[i]["attempts"] == 1
               for i in items if i != "a04")
    assert run.worker_deaths == 1 and run.retried_ok == 0
    # a01 was running when a04 died (a04 waited for it to start), and was run again
    # without counting as an attempt: the watcher saw its worker alive.
    events = [(i, a) for _, a, i in _log(log)]
    assert events.index(("a01", "sleep1")) < events.index(("a04", action))
    assert events.count(("a01", "sleep1")) == 2


def test_a_poison_item_is_retried_alone_and_its_batch_mates_run_once(monkeypatch, tmp_path):
    log = tmp_path / "chaos.log"
    items = [f"b{i}" for i in range(6)]
    run, recs = _run(items, monkeypatch, "b2=SIGKILL", log=log, retries=1, batch_size=6)
    assert recs["b2"]["status"] == "error" and recs["b2"]["attempts"] == 2
    assert recs["b2"]["error"] == "b2: worker died: SIGKILL"
    # b0, b1 finished before the first death; b3-b5 never started: each ran exactly once.
    assert all(recs[i]["status"] == "ok" and recs[i]["attempts"] == 1
               for i in items if i != "b2")
    assert run.worker_deaths == 2 and run.retried_ok == 0
    # Two deaths, in two different processes (the retry ran in a fresh one).
    pids = [p for p, a, i in _log(log) if i == "b2"]
    assert len(pids) == 2 and pids[0] != pids[1]


def test_failed_items_are_retried_in_fresh_processes(monkeypatch, tmp_path):
    log = tmp_path / "chaos.log"
    items = [f"c{i}" for i in range(8)]
    run, recs = _run(items, monkeypatch, "c1=exit3@1;c4=raise@1", log=log,
                     retries=2, batch_size=2)
    items_fail = "c6fail"
    assert recs["c1"]["status"] == "ok" and recs["c1"]["attempts"] == 2
    assert recs["c4"]["status"] == "ok" and recs["c4"]["attempts"] == 2
    assert run.retried_ok == 2
    # A deterministic failure is tried 1 + retries times and reported with its error.
    run2, recs2 = _run([items_fail, "c7"], monkeypatch, retries=2, batch_size=2)
    assert recs2[items_fail]["status"] == "error" and recs2[items_fail]["attempts"] == 3
    assert "ValueError: bad item c6fail" in recs2[items_fail]["error"]
    assert recs2["c7"]["attempts"] == 1 and run2.retried_ok == 0
    # The retries ran in processes that did not run the first round (the pool was
    # replaced after it): not where c4 failed, nor anywhere else.
    first = {r["pid"] for r in recs.values() if r["attempts"] == 1}
    raised_in = {p for p, a, i in _log(log) if i == "c4"}
    assert recs["c4"]["pid"] not in first | raised_in


def test_a_worker_killed_from_outside_mid_run(monkeypatch, tmp_path):
    """A real kill -9 of a loky worker while it runs a task (found through the chaos log)."""
    log = tmp_path / "chaos.log"
    items = [f"d{i}" for i in range(8)]
    killed = []

    def killer():
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            for pid, _, item in _log(log):
                if item == "d5":
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    break
            time.sleep(0.01)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    run, recs = _run(items, monkeypatch, "d5=sleep2@1", log=log, retries=1, batch_size=2)
    t.join()
    assert killed, "the worker running d5 was never seen"
    assert recs["d5"]["status"] == "ok" and recs["d5"]["attempts"] == 2
    assert recs["d5"]["pid"] != killed[0]
    assert all(recs[i]["status"] == "ok" and recs[i]["attempts"] == 1
               for i in items if i != "d5")
    assert run.worker_deaths == 1 and run.retried_ok == 1


def test_repeated_disk_errors_stop_dispatch_and_the_rest_is_not_attempted(monkeypatch):
    items = [f"e{i:02d}-enospc" for i in range(30)]
    run, recs = _run(items, monkeypatch, n_jobs=1, retries=1, batch_size=1, stop_after=5)
    tried = [r for r in recs.values() if r.get("failure") != "not attempted"]
    assert 5 <= len(tried) <= 8  # what was in flight when the breaker tripped finishes
    assert all(r["errno"] == 28 and "No space left on device" in r["error"] for r in tried)
    assert all(r["attempts"] == 1 for r in tried)  # no retries once the run stopped
    left = [r for r in recs.values() if r.get("failure") == "not attempted"]
    assert len(left) == 30 - len(tried) == run.not_attempted
    assert all(r["status"] == "error" and "not attempted: stopped after 5 failures in a row "
               "with [Errno 28] No space left on device" in r["error"] for r in left)
    assert run.stopped.startswith("stopped after 5 failures")


def test_other_failures_between_disk_errors_do_not_trip_the_breaker(monkeypatch):
    items = [f"g{i:02d}-{'enospc' if i % 2 else 'fail'}" for i in range(12)]
    run, recs = _run(items, monkeypatch, n_jobs=1, retries=0, batch_size=1, stop_after=3)
    # An ok resets the streak; other errors do not count (nor reset it).
    assert run.stopped is not None and run.not_attempted == 12 - 6
    items = [f"h{i:02d}{'-enospc' if i % 3 else ''}" for i in range(12)]
    run, recs = _run(items, monkeypatch, n_jobs=1, retries=0, batch_size=1, stop_after=3)
    assert run.stopped is None and run.not_attempted == 0


def test_sigint_ends_the_workers_and_keeps_what_finished(monkeypatch, tmp_path):
    log = tmp_path / "chaos.log"
    monkeypatch.setenv("FASTRASTER_CHAOS", "i01=sleep30;i06=sleep30")
    monkeypatch.setenv("FASTRASTER_CHAOS_LOG", str(log))
    items = [f"i{i:02d}" for i in range(10)]

    def interrupter():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(_log(log)) < 2:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupter, daemon=True).start()
    run = run_tasks(_tasks.echo, items, (0.0,), n_jobs=2, describe=_tasks.describe,
                    batch_size=5)
    got = []
    t0 = time.monotonic()
    with pytest.raises(RunInterrupted) as info:
        for rec in run:
            got.append(rec)
    assert time.monotonic() - t0 < 20  # did not wait for the 30 s sleeps
    # i00 and i05 finished before each worker fell asleep: salvaged from the journals.
    assert sorted(r["path"] for r in got) == ["i00", "i05"]
    assert info.value.signum == signal.SIGINT and info.value.done == 2
    assert "interrupted by SIGINT: 2 of 10 tiles finished" in str(info.value)
    sleepers = {pid for pid, _, _ in _log(log)}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") for p in sleepers):
        time.sleep(0.05)
    assert not [p for p in sleepers if os.path.exists(f"/proc/{p}")]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_death_reason_reads_loky_exit_codes():
    class TerminatedWorkerError(Exception):
        pass

    assert death_reason(TerminatedWorkerError(
        "... The exit codes of the workers are {SIGKILL(-9)}")) == "worker died: SIGKILL"
    assert death_reason(TerminatedWorkerError("{EXIT(3)}")) == "worker exited with code 3"
    assert death_reason(TerminatedWorkerError("{SIGSEGV(-11), SIGKILL(-9)}")) == \
        "worker died: SIGSEGV; worker died: SIGKILL"
    assert death_reason(RuntimeError("lost")) == "worker died (RuntimeError: lost)"


def test_chaos_syntax():
    assert chaos.parse("a/b.gpkg=SIGKILL;c=sleep0.5+exit3@1;d=waitc/1.gpkg+raise") == (
        ("a/b.gpkg", ("SIGKILL",), None), ("c", ("sleep0.5", "exit3"), 1),
        ("d", ("waitc/1.gpkg", "raise"), None))
    assert chaos.parse("") == ()
    for bad in ("nopattern", "x=SIGNOPE", "x=explode", "x=raise@first", "=raise"):
        with pytest.raises(ValueError, match="FASTRASTER_CHAOS"):
            chaos.parse(bad)


def test_chaos_never_ends_the_process_that_started_the_run(monkeypatch):
    run, recs = _run(["j0", "j1"], monkeypatch, "j1=SIGKILL", n_jobs=1, retries=0)
    assert recs["j0"]["status"] == "ok"
    assert recs["j1"]["status"] == "error" and "chaos" in recs["j1"]["error"]


class _Items:
    """A sequence that builds its items on demand (as rasterize_sources' TileJobs do)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return f"item-{i}-fail" if i == 7 else f"item-{i}"


def test_items_built_on_demand_and_after_batch_in_every_batch(tmp_path, monkeypatch):
    from collections.abc import Sequence
    from functools import partial

    Sequence.register(_Items)
    items = _Items(25)
    log = tmp_path / "batches.log"
    monkeypatch.setenv("FASTRASTER_CHAOS", "")
    run = run_tasks(_tasks.echo, items, (0.0,), describe=_tasks.describe, n_jobs=2,
                    batch_size=5, after_batch=partial(_tasks.mark_batch, str(log)))
    assert run.items is items  # kept as given, not copied into a list
    recs = {r["path"]: r for r in run}
    assert sorted(recs) == sorted(items[i] for i in range(25))
    assert recs["item-7-fail"]["attempts"] == 2 and recs["item-7-fail"]["status"] == "error"
    pids = log.read_text().split()
    assert len(pids) == 6  # five batches, then item 7's retry alone; failures included
    assert os.getpid() not in {int(p) for p in pids}  # in the workers


def test_pending_tasks_are_built_as_they_are_sent():
    """A round's queue: isolated items alone first, then batches that never span two
    segments; what was not sent comes back as it was (a range stays a range, so a first
    round of millions of items holds no per-item object)."""
    from fastraster.execution.supervisor import _Pending

    p = _Pending([7], [range(10), [20, 21]], 4)
    assert [p.next(), p.next()] == [[7], [0, 1, 2, 3]]
    isolated, segments = p.rest()
    assert isolated == [] and segments == [range(4, 10), [20, 21]]
    p = _Pending([7, 8], [range(10), [20, 21]], 4)
    sent = []
    while (task := p.next()) is not None:
        sent.append(task)
    assert sent == [[7], [8], [0, 1, 2, 3], [4, 5, 6, 7], [8, 9], [20, 21]]
    assert p.rest() == ([], [])
    p = _Pending([7, 8], [range(3)], 4)
    p.next()
    assert p.rest() == ([8], [range(3)])


def test_the_multiprocessing_backend_is_refused_before_any_work(sample_staged, tmp_path):
    """joblib's multiprocessing pool waits forever for the task of a dead worker (measured:
    a run hung until a timeout ended it), so it is refused up front, by the API and by the
    CLI (exit 2), before anything is written."""
    from click.testing import CliRunner

    import fastraster
    from fastraster.cli import main

    out = tmp_path / "out"
    with pytest.raises(ValueError, match="backend='multiprocessing' cannot survive a worker"):
        fastraster.rasterize_dir(sample_staged, out, n_jobs=2, backend="multiprocessing",
                                 progress=False)
    assert not out.exists() or not any(out.rglob("*.tif"))
    result = CliRunner().invoke(main, ["rasterize", str(sample_staged), str(out), "-q",
                                       "--backend", "multiprocessing"])
    assert result.exit_code == 2, result.output
    assert "use 'loky'" in result.output and not any(out.rglob("*.tif"))


def test_the_multiprocessing_backend_of_parallel_config_is_refused_too(sample_staged,
                                                                       tmp_path):
    """``backend=None`` takes the active ``joblib.parallel_config``'s backend: its
    multiprocessing pool hangs on a dead worker just the same, so it is refused too."""
    from joblib import parallel_config

    import fastraster

    out = tmp_path / "out"
    with parallel_config(backend="multiprocessing"), \
            pytest.raises(ValueError, match="backend='multiprocessing' cannot survive"):
        fastraster.rasterize_dir(sample_staged, out, n_jobs=2, backend=None, progress=False)
    assert not out.exists() or not any(out.rglob("*.tif"))


def test_lazy_items_build_each_item_when_asked():
    from fastraster.execution.executor import LazyItems

    built = []
    items = LazyItems(range(10, 15), lambda v: built.append(v) or v * 2)
    assert len(items) == 5 and not built
    assert items[0] == 20 and items[-1] == 28 and items[1:4] == [22, 24, 26]
    assert list(items) == [20, 22, 24, 26, 28]
    with pytest.raises(IndexError):
        items[5]
    with pytest.raises(IndexError):
        items[-6]
    assert built[:5] == [10, 14, 11, 12, 13]
