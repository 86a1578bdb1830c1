"""Report records and the two CSVs of a run: ``rasters_summary.csv`` (pdgraster's columns) and
``rasterization_events.csv``, written atomically, streamed, or merged under a file lock."""

from __future__ import annotations

import csv
import fcntl
import os
import shutil
import warnings

from fastraster.io.atomic import atomic_path, temp_path

SUMMARY_COLUMNS = ["stat", "bounds", "min", "max", "mean", "median", "std", "var", "sum",
                   "path", "tile", "z"]
EVENT_COLUMNS = ["path", "tile", "status", "error", "seconds", "polygons", "output",
                 "read_s", "compute_s", "write_s", "read_cpu_s", "compute_cpu_s",
                 "write_cpu_s", "bytes_read"]
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
    features without geometry; usually empty), and every one the worker's ``pid`` and peak
    ``maxrss_kb``.
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
        return (f"{total} tiles: {ok} ok, {sk} skipped, {err} failed in "
                f"{self.wall_seconds:.2f} s ({rate:.1f} tiles/s)")

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


def _fmt_tile(tile):
    return "" if tile is None else f"Tile(x={tile[0]}, y={tile[1]}, z={tile[2]})"


def _write_csv(path, header, rows) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def summary_rows(records) -> list[list]:
    """pdgraster's ``rasters_summary.csv`` rows for the successful records (and skipped ones
    that carry the summary of their existing file)."""
    rows = []
    for r in records:
        if r["status"] not in ("ok", "skipped") or not r.get("summary"):
            continue
        for band in r["summary"]:
            rows.append([band["stat"], str(list(r["bounds"])), band["min"], band["max"],
                         band["mean"], band["median"], band["std"], band["var"], band["sum"],
                         r["output"], _fmt_tile(r["tile"]), r["tile"][2]])
    return rows


def write_summary(path, records) -> None:
    """Write ``rasters_summary.csv``, keeping earlier rows of outputs not redone in this run."""
    new = summary_rows(records)
    redone = {row[9] for row in new}
    kept = [row for row in _previous_rows(path, SUMMARY_COLUMNS) if row[9] not in redone]
    _write_csv(path, SUMMARY_COLUMNS, kept + new)


def _previous_rows(path, header) -> list[list]:
    return list(_iter_previous_rows(path, header))


def _iter_previous_rows(path, header):
    if not os.path.exists(path):
        return
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        if next(reader, None) != header:
            return
        yield from (row for row in reader if len(row) == len(header))


def event_rows(records) -> list[list]:
    """``rasterization_events.csv`` rows of the records."""
    return [[r["path"], _fmt_tile(r["tile"]), r["status"], r["error"] or "",
             f"{r['seconds']:.6f}", "" if r["polygons"] is None else r["polygons"],
             r["output"] or "", *(f"{r[k]:.6f}" if k in r else "" for k in
                                  ("read_s", "compute_s", "write_s", "read_cpu_s",
                                   "compute_cpu_s", "write_cpu_s")),
             r.get("bytes_read", "")] for r in records]


def write_events(path, records, append=False) -> None:
    """Write ``rasterization_events.csv`` (after the earlier rows if ``append``)."""
    rows = event_rows(records)
    previous = _previous_rows(path, EVENT_COLUMNS) if append else []
    _write_csv(path, EVENT_COLUMNS, previous + rows)


class CsvStream:
    """The two CSVs of ``rasterize_dir(keep_records=False)``: rows go to temporary files in
    ``out_dir`` as records arrive; :meth:`finish` merges and renames them (atomically) as
    :func:`write_summary` and :func:`write_events` would (rows in arrival order)."""

    def __init__(self, out_dir):
        os.makedirs(out_dir, exist_ok=True)
        self.paths = [os.path.join(out_dir, n) for n in (SUMMARY_CSV, EVENTS_CSV)]
        self.parts = [temp_path(p) for p in self.paths]
        self.files = [open(p, "w", newline="") for p in self.parts]
        self.summary, self.events = (csv.writer(fh) for fh in self.files)
        # Outputs redone, needed only to drop their rows from an earlier summary.
        self.redone = set() if os.path.exists(self.paths[0]) else None

    def add(self, rec):
        rows = summary_rows([rec])
        self.summary.writerows(rows)
        if self.redone is not None:
            self.redone.update(row[9] for row in rows)
        self.events.writerows(event_rows([rec]))

    def finish(self):
        for fh in self.files:
            fh.close()
        for path, part, header in zip(self.paths, self.parts, (SUMMARY_COLUMNS, EVENT_COLUMNS)):
            old = _iter_previous_rows(path, header) if header is SUMMARY_COLUMNS else ()
            with atomic_path(path) as tmp, open(tmp, "w", newline="") as out, \
                    open(part, newline="") as new:
                w = csv.writer(out)
                w.writerow(header)
                w.writerows(row for row in old if self.redone is None or
                            row[9] not in self.redone)
                shutil.copyfileobj(new, out)
            os.remove(part)

    def discard(self):
        for fh, part in zip(self.files, self.parts):
            fh.close()
            if os.path.exists(part):
                os.remove(part)


def locked_merge(path, records, writer) -> None:
    """``writer(path, records)`` under an exclusive lock on ``.<name>.lock`` beside ``path``,
    so that processes on one machine merging into one CSV lose no rows."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f".{os.path.basename(path)}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            writer(path, records)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
