"""What a worker runs: one batch of items, journaled, so that the parent can tell what a dead
worker finished and what it was doing when it died.

Each batch writes a small journal (``b<batch>.<host>.<pid>`` in the run's journal folder),
created when the batch starts, with ``(index, record)`` appended (one unbuffered write) as
each item finishes; items run in order, so the first item without a record is the one that
was running. The parent removes the journal when the batch's records reach it. When a worker
dies instead, the journals of the batches it — and, with loky, every other worker of the
pool, which loky kills — held tell the parent the records of the items finished (they are
kept: their outputs exist, and a rerun would only find them "skipped" and lose their
summaries), which item was running in which process, and which items never started (a batch
without a journal never started). Cost: ~5 us per item in the worker, one file removal per
batch in the parent (``benchmarks/supervision_overhead.py``).

A batch that finds journals of an earlier execution of itself (dask reschedules the task of
a worker that died) resumes after the items they finished, and reports the item that was
running there as the dead worker's, instead of running it again in the same batch.
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass

from fastraster.execution import chaos
from fastraster.execution.tasks import failure_record
from fastraster.io.atomic import HOST


@dataclass(frozen=True)
class BatchContext:
    """What every batch of a run shares (pickled to the workers with each task).

    Attributes
    ----------
    journal_dir : str
        The run's journal folder (a local temporary folder; under the output folder for
        backends whose workers may be on other hosts).
    parent_pid : int
        The process that started the run (chaos refuses to end it; workers other than it
        leave SIGINT and SIGTERM to it).
    describe : callable
        ``describe(item) -> (path, tile, outputs)``.
    chaos, chaos_log :
        :mod:`fastraster.execution.chaos` rules (empty: none) and log file.
    resumable : bool
        Whether a batch may run again after its worker died without the parent knowing
        (dask reschedules such tasks itself), so it first looks for earlier journals.
    after_batch : callable or None
        Called after the batch's items (also when one failed): releases what they shared.
    """

    journal_dir: str
    parent_pid: int
    describe: object
    chaos: tuple = ()
    chaos_log: str | None = None
    resumable: bool = False
    after_batch: object = None


def journal_name(batch_id: int) -> str:
    """This process's journal of batch ``batch_id``."""
    return f"b{batch_id}.{HOST}.{os.getpid()}"


def parse_journal_name(name: str):
    """``(batch_id, host, pid)`` of a journal file name, or None."""
    parts = name.split(".")
    if len(parts) != 3 or not parts[0].startswith("b"):
        return None
    try:
        return int(parts[0][1:]), parts[1], int(parts[2])
    except ValueError:
        return None


@dataclass
class Journal:
    """What one execution of a batch wrote: its process and the records of the items it
    finished (by index)."""

    host: str
    pid: int
    done: dict


def read_journal(path) -> Journal | None:
    """The :class:`Journal` in ``path`` (a truncated last entry is ignored), or None."""
    meta = parse_journal_name(os.path.basename(path))
    if meta is None:
        return None
    done = {}
    try:
        with open(path, "rb") as fh:
            while True:
                try:
                    index, rec = pickle.load(fh)
                except (EOFError, pickle.UnpicklingError, ValueError, TypeError):
                    break  # end of the journal, or an entry cut short by the death
                done[index] = rec
    except FileNotFoundError:
        return None
    return Journal(meta[1], meta[2], done)


def running_item(entries, journals) -> tuple:
    """``(index, journal)`` of the item that was running when the execution of a batch
    that wrote ``journals`` died: the first of ``entries`` (in order) that none finished,
    and the last journal (the latest execution); ``(None, None)`` if every item finished
    or no execution started."""
    if not journals:
        return None, None
    done = set()
    for j in journals:
        done.update(j.done)
    for entry in entries:
        if entry[0] not in done:
            return entry[0], journals[-1]
    return None, None


def journal_files(journal_dir, batch_id: int) -> list[str]:
    """Names of the journals of every execution of batch ``batch_id`` so far."""
    prefix = f"b{batch_id}."
    try:
        return [n for n in os.listdir(journal_dir) if n.startswith(prefix)]
    except FileNotFoundError:
        return []


def batch_journals(journal_dir, batch_id: int) -> dict[str, Journal]:
    """{file name: Journal} of every execution of batch ``batch_id`` so far, oldest first
    (by last change: only a batch that dask ran again has more than one)."""
    names = journal_files(journal_dir, batch_id)
    if len(names) > 1:
        def changed(n):
            try:
                return os.stat(os.path.join(journal_dir, n)).st_mtime_ns
            except FileNotFoundError:
                return 0
        names.sort(key=changed)
    out = {}
    for n in names:
        j = read_journal(os.path.join(journal_dir, n))
        if j is not None:
            out[n] = j
    return out


def remove_journals(journal_dir, names) -> None:
    for n in names:
        try:
            os.remove(os.path.join(journal_dir, n))
        except FileNotFoundError:
            pass


def journal_pids(journal_dir) -> set[tuple[str, int]]:
    """``(host, pid)`` of every journal now in ``journal_dir`` (the processes holding
    batches)."""
    try:
        names = os.listdir(journal_dir)
    except FileNotFoundError:
        return set()
    return {(m[1], m[2]) for m in map(parse_journal_name, names) if m is not None}


_LEFT_SIGNALS: list[bool] = []


def _leave_signals_to_parent(ctx: BatchContext) -> None:
    """In a worker process, ignore SIGINT and SIGTERM (once per process).

    Ctrl-C reaches every process of the terminal's process group, and a batch system's
    SIGTERM every process of the job: the parent alone decides, stops dispatch and ends the
    workers, instead of workers dying first and their deaths being mistaken for crashes.
    """
    if _LEFT_SIGNALS or os.getpid() == ctx.parent_pid:
        return
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _LEFT_SIGNALS.append(True)


@contextmanager
def _after(callback):
    """Run ``callback`` after the block. Its failure is ignored: the batch's records are
    complete, and an exception out of the task would read as a dead worker."""
    try:
        yield
    finally:
        if callback is not None:
            try:
                callback()
            except Exception:
                pass


def run_batch(func, args, batch_id: int, entries, ctx: BatchContext) -> tuple:
    """``func(item, *args)`` for each ``(index, item, attempt)`` of ``entries``, journaled.

    Returns ``(batch_id, [(index, record), ...], journal file names)``; each record gets
    ``attempts`` (the attempt number it is). Never raises for an item: a task that raises
    (which :func:`~fastraster.execution.tasks.safe_task` prevents) becomes an error record.
    """
    _leave_signals_to_parent(ctx)
    results = []
    todo = list(entries)
    names = journal_files(ctx.journal_dir, batch_id) if ctx.resumable else []
    if names:  # an earlier execution of this batch died (dask rescheduled it): resume
        earlier = list(batch_journals(ctx.journal_dir, batch_id).values())
        finished = {}
        for j in earlier:
            finished.update(j.done)
        died, _ = running_item(todo, earlier)
        rest = []
        for index, item, attempt in todo:
            if index in finished:
                results.append((index, finished[index]))
            elif index == died:
                path, tile, outputs = ctx.describe(item)
                results.append((index, failure_record(
                    path, tile, "worker died while running it (its task was rescheduled)",
                    output=outputs[0] if outputs else None, attempts=attempt,
                    failure="worker died")))
            else:
                rest.append((index, item, attempt))
        todo = rest
    own = journal_name(batch_id)
    with open(os.path.join(ctx.journal_dir, own), "ab", buffering=0) as journal, \
            _after(ctx.after_batch):
        for index, item, attempt in todo:
            try:
                if ctx.chaos:
                    chaos.strike(ctx.chaos, ctx.chaos_log, ctx.describe(item)[0], attempt,
                                 ctx.parent_pid)
                rec = func(item, *args)
            except Exception as exc:  # tasks are safe_task-wrapped; this is the last guard
                path, tile, outputs = ctx.describe(item)
                rec = failure_record(path, tile, f"{type(exc).__name__}: {exc}",
                                     output=outputs[0] if outputs else None,
                                     attempts=attempt, pid=os.getpid())
            rec["attempts"] = attempt
            journal.write(pickle.dumps((index, rec)))
            results.append((index, rec))
    return batch_id, results, [*names, own]
