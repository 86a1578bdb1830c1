"""A supervised run of tasks: worker deaths, retries, interrupts and failing disks.

:class:`TaskRun` dispatches batches of items (:func:`~fastraster.execution.batches.run_batch`)
to the executor's workers in *rounds* and yields each item's final record:

* **A worker dies** (killed by a signal, a segfault, ``os._exit``): loky fails every pending
  task and kills every other worker. The journals of the batches in flight say which items
  finished (their records are kept), which item each process was running, and which never
  started; the watcher callback (:func:`~fastraster.execution.executor.watch_failures`) saw
  which processes were still alive when the failure was noticed. The item a dead process was
  running is the culprit: it fails with ``"worker died: SIGKILL"`` (or ``"worker exited with
  code 3"``...) and is retried alone; the items other workers were running, and those not
  started, are simply run again in the next round (not counted as attempts). Then the next
  round starts on the fresh pool joblib made.
* **Retries**: an item whose record is an error — from any cause — is retried up to
  ``retries`` more times, alone in its task, in worker processes started after its failure
  (the pool is replaced before such a round), and reported after its last attempt. Each
  record says how many ``attempts`` it took.
* **Interrupts**: while a run is being iterated, SIGINT (Ctrl-C) and SIGTERM (when their
  handlers are Python's defaults) are turned into :class:`RunInterrupted` — at once while
  the parent waits for workers (joblib then ends them), otherwise at the next record. The
  run ends its workers, yields the records of the items they finished (from the journals),
  removes the temporary files of the killed writes, and raises :class:`RunInterrupted`.
* **A failing disk**: after :data:`STOP_AFTER` failures in a row with one errno of
  :data:`STOP_ERRNOS` (disk full, quota, read-only, permission), dispatch stops; the items
  not attempted get records saying so (``failure="not attempted"``), with no retries.

Safety nets against loops: an item that was running in three pool breaks without being the
culprit is blamed (a watcher that cannot see the pool's processes), and three rounds in a row
that break before any item finishes stop the run (workers that cannot start).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import tempfile
import threading
import warnings
from collections import deque
from collections.abc import Sequence
from contextlib import nullcontext

from fastraster.execution import chaos
from fastraster.execution.batches import (
    BatchContext,
    batch_journals,
    journal_pids,
    remove_journals,
    run_batch,
    running_item,
)
from fastraster.execution.executor import watch_failures
from fastraster.execution.tasks import failure_record
from fastraster.io.atomic import HOST, process_state, sweep_litter, temp_path

#: OS errors that, repeated, mean the output cannot be written at all (so the run stops).
STOP_ERRNOS = frozenset(c for c in (errno.ENOSPC, getattr(errno, "EDQUOT", None),
                                    errno.EROFS, errno.EACCES) if c is not None)
#: Failures in a row with one of :data:`STOP_ERRNOS` that stop a run.
STOP_AFTER = 20
#: Pool breaks an item may be caught in, running but not the culprit, before it is blamed.
MAX_COLLATERAL = 3
#: Rounds in a row that break before any item finishes before the run gives up.
MAX_FRUITLESS = 3


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by SIGINT or SIGTERM, after cleaning up.

    A ``KeyboardInterrupt`` (so code that handles Ctrl-C handles it), raised once the workers
    are ended, the finished items' records delivered and the temporary files removed.

    Attributes
    ----------
    signum : int
        ``signal.SIGINT`` or ``signal.SIGTERM``; a command's exit code is ``128 + signum``.
    done, total : int
        Items finished, and in all.
    report : Report or None
        The pipeline's report of what finished (set by the pipelines).
    """

    def __init__(self, signum: int, done: int, total: int, what: str = "tiles"):
        self.signum, self.done, self.total, self.what = signum, done, total, what
        self.report = None
        super().__init__(self.message)

    @property
    def message(self) -> str:
        name = signal.Signals(self.signum).name
        return (f"interrupted by {name}: {self.done} of {self.total} {self.what} finished "
                "(their outputs are complete and in the CSVs); run the same command again, "
                "without overwrite, to resume")

    def __str__(self):
        return self.message


def death_reason(exc) -> str:
    """``"worker died: SIGKILL"``, ``"worker exited with code 3"``... from a pool's error
    (loky lists the exit codes of the workers found dead: ``{SIGKILL(-9)}``)."""
    reasons = []
    for name, code in re.findall(r"\b([A-Z]+[A-Z0-9]*)\((-?\d+)\)", str(exc)):
        code = int(code)
        if code < 0:
            try:
                reasons.append(f"worker died: {signal.Signals(-code).name}")
            except ValueError:
                reasons.append(f"worker died: signal {-code}")
        elif name == "EXIT" or code > 0:
            reasons.append(f"worker exited with code {code}")
    if reasons:
        return "; ".join(dict.fromkeys(reasons))
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"worker died ({type(exc).__name__}{': ' + first if first else ''})"


def _default_describe(item):
    return str(item), None, ()


class TaskRun:
    """One supervised run (see the module docstring); built by
    :func:`~fastraster.execution.executor.run_tasks`.

    Iterate it once for the records. Afterwards:

    Attributes
    ----------
    retried_ok : int
        Items that succeeded (or were skipped) on a retry.
    litter_removed : int
        Temporary files of dead processes removed from the output folders before the run.
    worker_deaths : int
        Workers that died (each culprit item counts one; a pool break with none, one).
    stopped : str or None
        Why dispatch stopped early (repeated disk errors, workers that cannot start).
    not_attempted : int
        Items that got a "not attempted" record.
    """

    def __init__(self, func, items, args=(), *, executor, batch_size=10, retries=1,
                 describe=None, work_dir=None, stop_after=STOP_AFTER, sweep=True,
                 rerun=None, after_batch=None):
        # A sequence is kept as it is (it may build its items on demand).
        self.items = items if isinstance(items, Sequence) else list(items)
        self.func, self.args = func, tuple(args)
        self.rerun, self.after_batch = rerun, after_batch
        self.executor = executor
        self.batch_size = max(int(batch_size), 1)
        self.retries = max(int(retries), 0)
        self.describe = describe or _default_describe
        self.work_dir = None if work_dir is None else os.path.abspath(os.fspath(work_dir))
        self.stop_after = max(int(stop_after), 1)
        self.sweep = sweep
        self.progress, self.desc, self.unit = False, "tiles", "tile"
        self.retried_ok = self.litter_removed = self.worker_deaths = self.not_attempted = 0
        self.stopped: str | None = None
        self.finished = 0
        # Per item (by index): counted attempts, breaks survived, the failure awaiting a
        # retry; queues of items to run in batches and alone.
        self._attempts: dict[int, int] = {}
        self._collateral: dict[int, int] = {}
        self._awaiting: dict[int, dict] = {}
        self._alone: set[int] = set()
        self._began: set[int] = set()  # items with an execution begun in this run
        # Items to run in batches, as segments of indices: a range for the first round, so
        # that no per-item object exists before its task is sent (a run of 10^7 tiles
        # would otherwise hold ~1 GB of index tuples); lists for items queued again.
        self._batched: list = [range(len(self.items))] if len(self.items) else []
        self._isolated: deque = deque()
        self._dirty: set[str] = set()
        self._streak = (None, 0)
        self._fruitless = 0
        self._stop_dispatch = False
        self._snapshots: dict = {}
        self._signal = None
        self._waiting = False
        self._pool_used = True
        self._iterated = False

    # -- iteration ----------------------------------------------------------------------

    def __iter__(self):
        if self._iterated:
            raise RuntimeError("a TaskRun is iterated once")
        self._iterated = True
        records = self._run()
        if not self.progress:
            return records
        return _with_progress(records, len(self.items), self.desc, self.unit)

    def _run(self):
        if self.sweep:
            self.litter_removed = sweep_litter(self._folders(range(len(self.items))))
        rules, log = chaos.from_environment()
        self.journal_dir = self._make_journal_dir()
        self.ctx = BatchContext(self.journal_dir, os.getpid(), self.describe, rules, log,
                                resumable=self.executor.backend not in ("loky", "threading"),
                                after_batch=self.after_batch)
        try:
            with self._signals(), watch_failures(self._watch), \
                    (nullcontext() if self.executor.is_open else self.executor):
                try:
                    while (self._batched or self._isolated) and not self._stop_dispatch:
                        yield from self._round()
                    self._sweep_dirty()
                    yield from self._not_attempted()
                    self._deliver_signal()  # one that came after the last record
                except KeyboardInterrupt as exc:
                    signum = getattr(exc, "signum", None) or self._signal or signal.SIGINT
                    self.executor.end_workers()
                    yield from self._salvage()
                    self._sweep_dirty()
                    raise RunInterrupted(signum, self.finished, len(self.items),
                                         self.desc) from None
        finally:
            shutil.rmtree(self.journal_dir, ignore_errors=True)

    def _round(self):
        """One round: the queued items, batched (and the isolated ones alone), on the pool."""
        isolated = list(self._isolated)
        self._isolated.clear()
        if isolated and self._pool_used:
            self.executor.fresh_workers()  # retries run in processes started after
            self._pool_used = False
        self._pending = _Pending(isolated, self._batched, self.batch_size)
        self._batched = []
        self._in_flight = {}
        self._next_id = getattr(self, "_next_id", 0)
        results = self.executor.map_unordered(run_batch, self._task_args())
        try:
            while True:
                self._deliver_signal()
                self._waiting = True
                try:
                    got = next(results, None)
                finally:
                    self._waiting = False
                if got is None:
                    break
                batch_id, recs, journals = got
                self._in_flight.pop(batch_id, None)
                remove_journals(self.journal_dir, journals)
                self._fruitless = 0
                for index, rec in recs:
                    yield from self._settle(index, rec)
        except KeyboardInterrupt:
            with warnings.catch_warnings():  # joblib: "tasks ... have been cancelled"
                warnings.simplefilter("ignore")
                results.close()  # joblib ends the workers
            raise
        except Exception as exc:  # the pool broke: a worker died (or the backend failed)
            results.close()
            yield from self._recover(exc)
            return
        self._requeue_pending()  # not dispatched: dispatch stopped

    def _requeue_pending(self):
        """Queue the items of this round whose tasks were not sent, for the next round."""
        isolated, segments = self._pending.rest()
        for index in isolated:
            self._queue_again(index)
        self._batched.extend(segments)

    def _task_args(self):
        """The tasks of this round, handed to joblib as it dispatches (it stops pulling when
        dispatch stops); each task's entries are built as it is sent."""
        while not self._stop_dispatch:
            indices = self._pending.next()
            if indices is None:
                break
            entries = [(i, self._attempts.get(i, 0) + 1) for i in indices]
            batch_id = self._next_id
            self._next_id += 1
            self._in_flight[batch_id] = entries
            self._pool_used = True
            yield (self.func, self.args, batch_id,
                   [(i, self._item(i), a) for i, a in entries], self.ctx)

    def _item(self, index):
        """The item to run: as given, or, for an item whose earlier execution in this run
        began (a retry, or collateral of a death), ``rerun(item)`` — that execution may have
        written the output before it died or failed, and an item that finds "its" output
        and skips it would lose its record (its summary rows)."""
        item = self.items[index]
        if self.rerun is not None and index in self._began:
            return self.rerun(item)
        return item

    # -- records ------------------------------------------------------------------------

    def _settle(self, index, rec):
        """File an item's record: retry it, or yield it as final."""
        attempt = rec.setdefault("attempts", self._attempts.get(index, 0) + 1)
        if rec.get("failure") == "worker died":
            self.worker_deaths += 1
        self._breaker(rec)
        if (rec["status"] == "error" and attempt <= self.retries
                and rec.get("failure") != "not attempted" and not self._stop_dispatch):
            self._began.add(index)
            self._attempts[index] = attempt
            self._awaiting[index] = rec
            self._alone.add(index)
            self._isolated.append(index)
            return
        self._awaiting.pop(index, None)
        self._alone.discard(index)
        if rec["status"] != "error" and attempt > 1:
            self.retried_ok += 1
        self.finished += 1
        yield rec

    def _breaker(self, rec):
        if rec["status"] == "ok":
            self._streak = (None, 0)
            return
        code = rec.get("errno")
        if rec["status"] != "error" or code not in STOP_ERRNOS:
            return
        n = self._streak[1] + 1 if self._streak[0] == code else 1
        self._streak = (code, n)
        if n >= self.stop_after and not self._stop_dispatch:
            self._stop_dispatch = True
            self.stopped = (f"stopped after {n} failures in a row with [Errno {code}] "
                            f"{os.strerror(code)} (the last: {rec['error']})")

    def _not_attempted(self):
        """Records of the items left when dispatch stopped early."""
        left = list(self._isolated) + [i for seg in self._batched for i in seg]
        self._isolated.clear()
        self._batched = []
        for index in left:
            if index in self._awaiting:  # failed, its retry cancelled: its last failure
                self.finished += 1
                yield self._awaiting.pop(index)
                continue
            path, tile, outputs = self.describe(self.items[index])
            self.not_attempted += 1
            self.finished += 1
            yield failure_record(path, tile, f"not attempted: {self.stopped}",
                                 output=outputs[0] if outputs else None,
                                 attempts=self._attempts.get(index, 0),
                                 failure="not attempted")

    # -- worker deaths ------------------------------------------------------------------

    def _watch(self, exc):
        """In loky's manager thread, before it kills the other workers: which processes
        holding batches are alive. Once per break: every task the break fails carries the
        same exception object, which the parent then receives."""
        if exc not in self._snapshots:
            self._snapshots[exc] = {pid: process_state(pid)[0] for host, pid
                                    in journal_pids(self.journal_dir) if host == HOST}

    def _is_culprit(self, host, pid, snapshot) -> bool:
        if snapshot is not None:
            # Alive when the failure was noticed: collateral. Not there at all: its batch
            # started after the failure, so collateral too.
            return pid in snapshot and not snapshot[pid]
        if host != HOST:
            return True  # cannot look: assume its worker died
        return not process_state(pid)[0]

    def _recover(self, exc):
        """After a break: keep what finished, blame the culprits, queue the rest again."""
        snapshot = self._snapshots.get(exc)
        reason = death_reason(exc)
        deaths = self.worker_deaths
        progress = False
        for batch_id, entries in sorted(self._in_flight.items()):
            journals = batch_journals(self.journal_dir, batch_id)
            done = {}
            for j in journals.values():
                done.update(j.done)
            running, journal = running_item(entries, list(journals.values()))
            attempt_of = dict(entries)
            for index, _ in entries:
                if index in done:
                    progress = True
                    yield from self._settle(index, done[index])
                elif index == running:
                    host, pid = journal.host, journal.pid
                    self._dirty.update(self._folders([index]))
                    self._collateral[index] = self._collateral.get(index, 0) + 1
                    blamed = self._is_culprit(host, pid, snapshot)
                    self._began.add(index)
                    if blamed or self._collateral[index] >= MAX_COLLATERAL:
                        progress = True
                        why = reason if blamed else (
                            f"{reason}; it was running in {self._collateral[index]} pool "
                            "breaks")
                        path, tile, outputs = self.describe(self.items[index])
                        yield from self._settle(index, failure_record(
                            path, tile, why, output=outputs[0] if outputs else None,
                            attempts=attempt_of[index], failure="worker died", pid=pid))
                    else:
                        self._queue_again(index)
                else:
                    self._queue_again(index)
            remove_journals(self.journal_dir, journals)
        self._in_flight = {}
        self._requeue_pending()
        self._pool_used = False  # joblib replaced the pool after the break
        if self.worker_deaths == deaths:  # a worker died holding no task
            self.worker_deaths += 1
        self._fruitless = 0 if progress else self._fruitless + 1
        if self._fruitless >= MAX_FRUITLESS and not self._stop_dispatch:
            self._stop_dispatch = True
            self.stopped = (f"stopped: the pool broke {self._fruitless} times in a row "
                            f"before any task finished ({reason})")

    def _queue_again(self, index):
        if index in self._alone:
            self._isolated.append(index)
        elif self._batched and isinstance(self._batched[-1], list):
            self._batched[-1].append(index)
        else:
            self._batched.append([index])

    def _salvage(self):
        """After an interrupt: the records of the items finished in batches in flight."""
        for batch_id, entries in sorted(getattr(self, "_in_flight", {}).items()):
            journals = batch_journals(self.journal_dir, batch_id)
            done = {}
            for j in journals.values():
                done.update(j.done)
            running, _ = running_item(entries, list(journals.values()))
            if running is not None:
                self._dirty.update(self._folders([running]))
            for index, _ in entries:
                if index in done:
                    rec = done[index]
                    rec.setdefault("attempts", self._attempts.get(index, 0) + 1)
                    self.finished += 1
                    if rec["status"] != "error" and rec["attempts"] > 1:
                        self.retried_ok += 1
                    yield rec
        self._in_flight = {}

    # -- files --------------------------------------------------------------------------

    def _folders(self, indices) -> set[str]:
        folders = set()
        for i in indices:
            for out in self.describe(self.items[i])[2] or ():
                folders.add(os.path.dirname(os.path.abspath(out)))
        if self.work_dir is not None:
            folders.add(self.work_dir)
        return folders

    def _sweep_dirty(self):
        """Remove the temporary files that dead workers of this run left."""
        if self._dirty:
            sweep_litter(self._dirty)
            self._dirty = set()

    def _make_journal_dir(self) -> str:
        root = tempfile.gettempdir()
        if self.executor.remote and self.work_dir is not None:
            root = self.work_dir  # workers on other hosts must see it
        os.makedirs(root, exist_ok=True)
        if root != self.work_dir:  # (the output root is swept with the output folders)
            sweep_litter([root])  # journal folders of killed runs
        path = temp_path(os.path.join(root, "fastraster-run"), suffix=".run")
        os.makedirs(path)
        return path

    # -- signals ------------------------------------------------------------------------

    def _signals(self):
        return _SignalsAsInterrupt(self)

    def _deliver_signal(self):
        if self._signal is not None:
            signum, self._signal = self._signal, None
            raise _interrupt(signum)

    def _on_signal(self, signum, frame):
        if self._waiting:  # blocked on the workers: stop now (joblib ends them)
            self._signal = None
            raise _interrupt(signum)
        self._signal = signum  # elsewhere: at the next record


class _Pending:
    """The tasks of a round not sent yet: the isolated items one per task, then the batched
    segments ``size`` items at a time (a task never spans two segments)."""

    def __init__(self, isolated, segments, size):
        self.isolated, self.segments, self.size = isolated, segments, size
        self.i = self.seg = self.pos = 0

    def next(self):
        """The indices of the next task, or None when all were sent."""
        if self.i < len(self.isolated):
            self.i += 1
            return [self.isolated[self.i - 1]]
        while self.seg < len(self.segments):
            segment = self.segments[self.seg]
            if self.pos < len(segment):
                chunk = segment[self.pos:self.pos + self.size]
                self.pos += len(chunk)
                return list(chunk)
            self.seg, self.pos = self.seg + 1, 0
        return None

    def rest(self):
        """``(isolated indices, batched segments)`` not sent; the ranges stay ranges."""
        segments = []
        if self.seg < len(self.segments):
            head = self.segments[self.seg][self.pos:]
            segments = ([head] if len(head) else []) + list(self.segments[self.seg + 1:])
        self.segments, self.seg, self.pos = [], 0, 0
        isolated, self.isolated, self.i = self.isolated[self.i:], [], 0
        return isolated, segments


def _interrupt(signum):
    exc = KeyboardInterrupt(signal.Signals(signum).name)
    exc.signum = signum
    return exc


class _SignalsAsInterrupt:
    """Route SIGINT and SIGTERM to the run while it is iterated (main thread only; a handler
    the application installed itself is left alone)."""

    def __init__(self, run):
        self.run = run
        self.saved = {}

    def __enter__(self):
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum, default in ((signal.SIGINT, signal.default_int_handler),
                                (signal.SIGTERM, signal.SIG_DFL)):
            if signal.getsignal(signum) is default:
                self.saved[signum] = signal.signal(signum, self.run._on_signal)
        return self

    def __exit__(self, *exc):
        for signum, handler in self.saved.items():
            signal.signal(signum, handler)
        return False


def _with_progress(records, total, desc, unit="tile"):
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit=unit, desc=desc, disable=not total)
    try:
        for rec in records:
            bar.update(1)
            yield rec
    finally:
        bar.close()


def annotate(report, runs):
    """Set on ``report`` what the :class:`TaskRun` ``runs`` of a pipeline say: successes on
    a retry, worker deaths survived, temporary files of killed runs removed, files not
    attempted and why dispatch stopped early. Returns ``report``."""
    runs = [r for r in runs if r is not None]
    report.retried = sum(r.retried_ok for r in runs)
    report.worker_deaths = sum(r.worker_deaths for r in runs)
    report.litter_removed = sum(r.litter_removed for r in runs)
    report.not_attempted = sum(r.not_attempted for r in runs)
    report.stopped = next((r.stopped for r in runs if r.stopped), None)
    return report
