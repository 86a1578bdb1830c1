"""Report records and the two CSVs of a run: ``rasters_summary.csv`` (pdgraster's columns) and
``rasterization_events.csv``, written atomically, streamed, and always merged under a file
lock (:func:`locked_merge`), so that concurrent runs writing into one folder lose no row:
the summary keeps every output's latest row, the events CSV is a log every run appends to."""

from __future__ import annotations

import csv
import errno
import fcntl
import hashlib
import os
import shutil
import warnings

import numpy as np

from fastraster.io.atomic import OutputError, atomic_path, temp_path
from fastraster.io.tilepaths import parse_tile_path, tile_label

SUMMARY_COLUMNS = ["stat", "bounds", "min", "max", "mean", "median", "std", "var", "sum",
                   "path", "tile", "z"]
EVENT_COLUMNS = ["path", "tile", "status", "error", "seconds", "polygons", "output",
                 "read_s", "compute_s", "write_s", "read_cpu_s", "compute_cpu_s",
                 "write_cpu_s", "bytes_read", "attempts"]
SUMMARY_CSV = "rasters_summary.csv"
EVENTS_CSV = "rasterization_events.csv"


class RunFailures(UserWarning):
    """Files of a run failed (the run went on without them): how many, in which step, and
    the first message. Each run ends with at most one (:func:`warn_failures`)."""


class Report(list):
    """One record (dict) per input file, in input order, plus totals.

    Each record has ``path``, ``tile`` (x, y, z), ``status`` ("ok", "skipped" or "error"),
    ``error`` (message naming the file, or None), ``seconds``, ``polygons`` and ``output``;
    successful ones also phase wall/CPU times (``read_s``, ``compute_s``, ``write_s``,
    ``*_cpu_s``), ``bytes_read``, ``warnings`` (messages naming the file, e.g. no CRS,
    features without geometry; usually empty), every one the worker's ``pid`` and peak
    ``maxrss_kb``, and ``attempts`` (more than 1: it was retried). Records of items that no
    task returned say why in ``failure``: ``"worker died"`` (its worker was killed or crashed
    while running it) or ``"not attempted"`` (the run stopped first).
    """

    wall_seconds: float = 0.0
    #: The step that made the records: "rasterize", "pyramid" or "webtiles".
    step: str | None = None
    #: The events CSV holding every record, where the run wrote one.
    events_csv: str | None = None
    #: With ``rasterize_dir(keep_records=False)``: files per status and in all (the report
    #: then holds only the error records).
    counts: dict | None = None
    total: int | None = None
    #: Files that succeeded (or were skipped) on a retry.
    retried: int = 0
    #: Times a worker died (its pool was replaced and the run went on).
    worker_deaths: int = 0
    #: Temporary files of killed runs removed from the output folders before the run.
    litter_removed: int = 0
    #: Why the run stopped dispatching early (repeated disk errors), or None.
    stopped: str | None = None
    #: Files not attempted because the run stopped early.
    not_attempted: int = 0
    #: Why the run's CSVs could not be written (disk full...), or None.
    csv_error: str | None = None

    def n(self, status: str) -> int:
        """Number of files with this status."""
        if self.counts is not None:
            return self.counts.get(status, 0)
        return sum(1 for r in self if r["status"] == status)

    @property
    def errors(self) -> list[dict]:
        return [r for r in self if r["status"] == "error"]

    def summary_line(self) -> str:
        ok, sk, err = self.n("ok"), self.n("skipped"), self.n("error")
        rate = ok / self.wall_seconds if self.wall_seconds > 0 else float("nan")
        total = len(self) if self.total is None else self.total
        line = (f"{total} tiles: {ok} ok, {sk} skipped, {err} failed in "
                f"{self.wall_seconds:.2f} s ({rate:.1f} tiles/s)")
        return "; ".join([line, *self.notes()])

    def notes(self) -> list[str]:
        """What the run survived or could not do, as the summary line lists it after the
        counts: ``["1 succeeded on a retry", "1 worker death survived", ...]``."""
        notes = []
        if self.retried:
            notes.append(f"{self.retried} succeeded on a retry")
        if self.worker_deaths:
            notes.append(f"{self.worker_deaths} worker death"
                         f"{'s' if self.worker_deaths > 1 else ''} survived")
        if self.litter_removed:
            notes.append(f"removed {self.litter_removed} temporary file"
                         f"{'s' if self.litter_removed > 1 else ''} of killed runs")
        if self.not_attempted:
            notes.append(f"{self.not_attempted} not attempted")
        if self.stopped:
            notes.append(self.stopped)
        if self.csv_error:
            notes.append(f"CSVs not written: {self.csv_error}")
        return notes

    def warn_failures(self, stacklevel: int = 3) -> None:
        """End a run: one :class:`RunFailures` warning if any file failed
        (:func:`failures_message`); the default ``stacklevel`` points at the caller of the
        pipeline function that calls this."""
        warn_failures([self], stacklevel=stacklevel + 1)


def failures_message(reports) -> str | None:
    """``"3 of 40 files failed (rasterize: 1, webtiles: 2); first (rasterize): <message>;
    see <events CSV>"`` over the reports of a run's steps (``"1 of 4 files failed in step
    pyramid; first: ..."`` when one step failed), or None when nothing failed."""
    failed = [(r, r.n("error")) for r in reports if r.n("error")]
    if not failed:
        return None
    total = sum(len(r) if r.total is None else r.total for r in reports)
    n = sum(k for _, k in failed)
    first = failed[0][0]
    if len(failed) == 1:
        where, label = (f" in step {first.step}" if first.step else ""), ""
    else:
        where = " (" + ", ".join(f"{r.step}: {k}" for r, k in failed) + ")"
        label = f" ({first.step})"
    message = first.errors[0]["error"] if first.errors else "(no error record kept)"
    csvs = sorted({r.events_csv for r, _ in failed if r.events_csv})
    see = f"; see {', '.join(csvs)}" if csvs else ""
    return f"{n} of {total} files failed{where}; first{label}: {message}{see}"


def warn_failures(reports, stacklevel: int = 2) -> None:
    """One :class:`RunFailures` warning (:func:`failures_message`) if any file of the
    reports failed; nothing otherwise."""
    message = failures_message(reports)
    if message:
        warnings.warn(message, RunFailures, stacklevel=stacklevel + 1)


class WarningTally:
    """Files whose records carry ``warnings``, counted as the records arrive (also those a
    ``keep_records=False`` run does not keep), and summed up at the end in one
    ``UserWarning`` with their number and the first message.

    Workers cannot raise warnings in the parent process (and capturing them there is not
    thread-safe): they come back in the records' ``warnings`` lists instead.
    """

    def __init__(self):
        self.files = 0
        self.first: str | None = None

    def add(self, rec: dict) -> None:
        """Count ``rec`` if it has warnings."""
        if rec.get("warnings"):
            self.files += 1
            if self.first is None:
                self.first = rec["warnings"][0]

    def warn(self, stacklevel: int = 2) -> None:
        """Issue the summarising ``UserWarning`` (nothing if no file had warnings);
        ``stacklevel`` as for :func:`warnings.warn`, counted from the caller."""
        if self.files:
            warnings.warn(f"{self.files} file(s) rasterized with warnings (each record's "
                          f"'warnings'); first: {self.first}", UserWarning,
                          stacklevel=stacklevel + 1)


def _write_csv(path, header, rows) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def summary_rows(records) -> list[list]:
    """pdgraster's ``rasters_summary.csv`` rows for the successful records."""
    rows = []
    for r in records:
        if r["status"] != "ok" or not r.get("summary"):
            continue
        for band in r["summary"]:
            rows.append([band["stat"], str(list(r["bounds"])), band["min"], band["max"],
                         band["mean"], band["median"], band["std"], band["var"], band["sum"],
                         r["output"], tile_label(r["tile"]), r["tile"][2]])
    return rows


def rows_from_file(output, tile) -> list[list]:
    """Summary rows of an existing output, read back (for a tile skipped because its output
    exists, whose rows the CSV lacks: the run that wrote it was killed before it wrote its
    CSVs). The same values as the run that wrote it computed, which summarised the same
    samples; no rows if the file cannot be read."""
    from fastraster.io.geotiff import read_geotiff
    from fastraster.io.summary import band_summary
    from fastraster.model.grid import TileGrid

    try:
        data, names = read_geotiff(output)[:2]
        grid = TileGrid.from_tile(tuple(tile), parse_tile_path(output).tms, data.shape[1:])
    except Exception:  # unreadable: nothing to say about it
        return []
    return summary_rows([{
        "status": "ok", "output": output, "tile": tuple(tile),
        "bounds": [grid.left, grid.right, grid.bottom, grid.top],
        "summary": [dict(stat=n, **band_summary(data[b])) for b, n in enumerate(names)]}])


def _missing_rows(skipped, have) -> list[list]:
    """Rows read back from the outputs of skipped records that ``have`` has no row for."""
    rows = []
    for output, tile in skipped:
        if output not in have and tile is not None:
            rows += rows_from_file(output, tile)
            have.add(output)
    return rows


def _skipped(records):
    return [(r["output"], r["tile"]) for r in records
            if r["status"] == "skipped" and r.get("output")]


def write_summary(path, records) -> None:
    """Write ``rasters_summary.csv``, keeping earlier rows of outputs not redone in this run;
    outputs skipped in this run that have no row get theirs from the file
    (:func:`rows_from_file`)."""
    new = summary_rows(records)
    redone = {row[9] for row in new}
    kept = [row for row in _previous_rows(path, SUMMARY_COLUMNS) if row[9] not in redone]
    new += _missing_rows(_skipped(records), {row[9] for row in kept} | redone)
    _write_csv(path, SUMMARY_COLUMNS, kept + new)


def _previous_rows(path, header) -> list[list]:
    return list(_iter_previous_rows(path, header))


def _iter_previous_rows(path, header):
    """The rows of an existing CSV, in ``header``'s columns: a file written with other
    columns (an older version's, without ``attempts``) has its rows mapped by column name,
    missing columns empty; a file that shares no column with ``header``, and rows of the
    wrong length (cut short), are skipped."""
    if not os.path.exists(path):
        return
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        old = next(reader, None)
        if old == header:
            yield from (row for row in reader if len(row) == len(header))
            return
        if not old or "path" not in old:
            return
        where = [old.index(c) if c in old else None for c in header]
        for row in reader:
            if len(row) == len(old):
                yield ["" if i is None else row[i] for i in where]


def event_rows(records) -> list[list]:
    """``rasterization_events.csv`` rows of the records."""
    return [[r["path"], tile_label(r["tile"]), r["status"], r["error"] or "",
             f"{r['seconds']:.6f}", "" if r["polygons"] is None else r["polygons"],
             r["output"] or "", *(f"{r[k]:.6f}" if k in r else "" for k in
                                  ("read_s", "compute_s", "write_s", "read_cpu_s",
                                   "compute_cpu_s", "write_cpu_s")),
             r.get("bytes_read", ""), r.get("attempts", "")] for r in records]


def write_events(path, records, append=False) -> None:
    """Write ``rasterization_events.csv`` (after the earlier rows if ``append``)."""
    rows = event_rows(records)
    previous = _previous_rows(path, EVENT_COLUMNS) if append else []
    _write_csv(path, EVENT_COLUMNS, previous + rows)


def append_events(path, records) -> None:
    """:func:`write_events` after the earlier rows (the events CSV is a log of every run)."""
    write_events(path, records, append=True)


def write_run_csvs(out_dir, records, summary_path=None) -> str:
    """Merge a run's records into ``rasters_summary.csv`` (in ``out_dir``, or
    ``summary_path``) and append them to ``rasterization_events.csv`` beside it, each under
    its lock; returns the events CSV's path."""
    summary_path = os.path.join(out_dir, SUMMARY_CSV) if summary_path is None \
        else os.fspath(summary_path)
    events_path = os.path.join(os.path.dirname(summary_path) or ".", EVENTS_CSV)
    os.makedirs(os.path.dirname(summary_path) or ".", exist_ok=True)
    locked_merge(summary_path, records, write_summary)
    locked_merge(events_path, records, append_events)
    return events_path


def save_run_csvs(report, out_dir, records=None, *, stream=None, summary_path=None,
                  stacklevel=4) -> None:
    """The end of every pipeline run: its records into the two CSVs (:func:`write_run_csvs`;
    or the :class:`CsvStream` that took them as they came, finished), and
    ``report.events_csv`` set. A write that fails (disk full) is not raised: it is noted on
    the report and warned once (:func:`csv_failure`; the outputs written are complete).

    ``records`` default to the report's own; ``stacklevel`` points the warning at the
    caller of the pipeline function."""
    try:
        if stream is not None:
            stream.finish()
            report.events_csv = stream.paths[1]
        else:
            report.events_csv = write_run_csvs(out_dir, report if records is None
                                               else records, summary_path)
    except OSError as exc:
        csv_failure(report, exc, stacklevel=stacklevel)


def csv_failure(report, exc, stacklevel=3) -> None:
    """Note on ``report``, and warn, that its CSVs could not be written (the run's records
    stay in the report; the outputs written are complete)."""
    report.csv_error = str(exc)
    warnings.warn(f"{exc}: the run's CSVs were not written (its outputs are complete; the "
                  "report holds the records)", RuntimeWarning, stacklevel=stacklevel)


class CsvStream:
    """The two CSVs of ``rasterize_dir(keep_records=False)``: rows go to temporary files in
    ``out_dir`` as records arrive; :meth:`finish` merges them (each under its lock, as
    :func:`write_run_csvs` does) into the CSVs, renamed atomically: the summary keeping the
    earlier rows of outputs not redone, the events after the earlier rows (rows in arrival
    order).

    The parent holds nothing per tile while the run goes on: the outputs skipped (whose rows
    the earlier summary should hold, else they are read back from the files) go to a third
    temporary file, and the merge tells which earlier rows to keep by 16-byte digests of
    the output paths (:func:`_digests`), a chunk of rows at a time. Measured on a 10,000-tile
    run (``benchmarks/soak.py``): parent RSS +1.6 MB with a set of the paths kept, ~170 B
    per tile; what was 1.7 GB for the 10^7 tiles of the pan-Arctic layer at z15 (more on a
    resume, which also kept every skipped output in a list).

    A write that fails (disk full) does not stop the run: the stream stops writing, and
    :meth:`finish` removes its parts and raises the :class:`~fastraster.io.atomic.OutputError`.
    """

    def __init__(self, out_dir, summary_path=None):
        summary_path = os.path.join(out_dir, SUMMARY_CSV) if summary_path is None \
            else os.fspath(summary_path)
        out_dir = os.path.dirname(summary_path) or "."
        os.makedirs(out_dir, exist_ok=True)
        self.paths = [summary_path, os.path.join(out_dir, EVENTS_CSV)]
        # summary rows, event rows, and the (output, x, y, z) of skipped outputs
        self.parts = [temp_path(p) for p in self.paths] + [
            temp_path(os.path.join(out_dir, "skipped.csv"))]
        self.files = [open(p, "w", newline="") for p in self.parts]
        self.summary, self.events, self.skipped = (csv.writer(fh) for fh in self.files)
        self.error: OutputError | None = None

    def add(self, rec):
        if self.error is not None:
            return
        try:
            self.summary.writerows(summary_rows([rec]))
            self.skipped.writerows([output, *tile] for output, tile in _skipped([rec])
                                   if tile is not None)
            self.events.writerows(event_rows([rec]))
        except OSError as exc:
            self.error = OutputError(exc.errno or errno.EIO, self.paths[0])

    def finish(self):
        for fh in self.files:
            try:
                fh.close()
            except OSError as exc:  # the last buffered rows
                self.error = self.error or OutputError(exc.errno or errno.EIO, self.paths[0])
        if self.error is not None:
            self.discard()
            raise self.error
        try:
            locked_merge(self.paths[0], self.parts[0], self._merge_summary)
            locked_merge(self.paths[1], self.parts[1], self._merge_events)
        finally:
            for part in self.parts:
                if os.path.exists(part):
                    os.remove(part)

    def _merge_summary(self, path, part):
        redone = _sorted_digests(row[9] for row in _csv_rows(part))
        have = [redone]
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as out, \
                open(part, newline="") as new:
            w = csv.writer(out)
            w.writerow(SUMMARY_COLUMNS)
            for rows in _chunks(_iter_previous_rows(path, SUMMARY_COLUMNS)):
                digests = _digests(row[9] for row in rows)
                keep = ~_isin(digests, redone)
                w.writerows(row for row, k in zip(rows, keep, strict=True) if k)
                have.append(digests[keep])
            shutil.copyfileobj(new, out)
            have = np.unique(np.concatenate(have))
            for rows in _chunks(_csv_rows(self.parts[2])):
                digests = _digests(row[0] for row in rows)
                missing = ~_isin(digests, have)
                if not missing.any():  # the rule: a skipped output's rows are there
                    continue
                written = set()  # an output skipped twice: its rows once
                for row, m in zip(rows, missing, strict=True):
                    if m and row[0] not in written:
                        w.writerows(rows_from_file(row[0], tuple(int(v) for v in row[1:4])))
                        written.add(row[0])
                have = np.union1d(have, digests[missing])

    def _merge_events(self, path, part):
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as out, \
                open(part, newline="") as new:
            w = csv.writer(out)
            w.writerow(EVENT_COLUMNS)
            w.writerows(_iter_previous_rows(path, EVENT_COLUMNS))
            shutil.copyfileobj(new, out)

    def discard(self):
        for fh, part in zip(self.files, self.parts, strict=True):
            try:
                fh.close()
            except OSError:
                pass
            if os.path.exists(part):
                os.remove(part)


#: Rows per chunk of the streamed merge: a chunk of CSV rows as Python lists is ~0.7 kB per
#: row, so 65,536 rows made a 43 MB peak at the end of a 20,000-tile resume
#: (``benchmarks/soak.py --resume``); 8,192 rows merge as fast (``benchmarks/csv_stream.py``).
_CHUNK_ROWS = 8192


def _csv_rows(path):
    with open(path, newline="") as fh:
        yield from csv.reader(fh)


def _chunks(rows, size=None):
    size = size or _CHUNK_ROWS
    chunk = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _digests(paths) -> np.ndarray:
    """16-byte BLAKE2b digests of output paths, as numpy ``V16`` (sortable, searchable):
    what the merge keeps per row instead of the path (collisions among 10^8 paths: ~1e-23)."""
    data = b"".join(hashlib.blake2b(p.encode(), digest_size=16).digest() for p in paths)
    return np.frombuffer(data, dtype="V16")


def _sorted_digests(paths) -> np.ndarray:
    digests = [_digests(rows) for rows in _chunks(paths)]
    return np.unique(np.concatenate(digests)) if digests else np.empty(0, "V16")


def _isin(digests, sorted_digests) -> np.ndarray:
    """Which of ``digests`` are in ``sorted_digests`` (sorted, unique)."""
    if not len(sorted_digests):
        return np.zeros(len(digests), bool)
    at = np.minimum(np.searchsorted(sorted_digests, digests), len(sorted_digests) - 1)
    return sorted_digests[at] == digests


def locked_merge(path, records, writer) -> None:
    """``writer(path, records)`` under an exclusive lock on ``.<name>.lock`` beside ``path``,
    so that processes on one machine merging into one CSV lose no rows.

    The lock file is removed by its holder before it unlocks, so no lock file outlives the
    merges; a process that was waiting for it then finds the name gone (or a newer lock file
    under it) and locks again, so two writers never hold locks on two different files.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    lock_path = os.path.join(folder, f".{os.path.basename(path)}.lock")
    while True:
        lock = open(lock_path, "a")
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            same = os.stat(lock_path).st_ino == os.fstat(lock.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        lock.close()  # (closing releases the lock)
    try:
        writer(path, records)
    finally:
        try:
            os.remove(lock_path)
        finally:
            lock.close()
