"""The safe task: run one unit of work (a file, a tile) and return a record; never raise.

A failing file must never stop a run of thousands: every task of every pipeline goes through
:func:`safe_task`, which builds the record skeleton, times the work, turns any exception into
``status="error"`` with an ``error`` message that starts with the path (an
:class:`~fastraster.io.staged.InputError` keeps its own message, which names the file and the
problem; an :class:`~fastraster.io.atomic.OutputError` reads ``"<path>: cannot write <file>:
[Errno 28] No space left on device"``; anything else becomes ``"<path>: <Type>: <message>"``
plus a ``traceback``), keeps the ``errno`` of an OS error (the executor stops a run whose
outputs fail with one errno again and again), and adds the worker's ``pid`` and peak resident
memory. :func:`failure_record` is the record of an item that no task returned (its worker
died, or it was never attempted).
"""

from __future__ import annotations

import os
import resource
import time
import traceback

from fastraster.io.atomic import OutputError, os_errno
from fastraster.io.staged import InputError


def proc_self_value(name: str, key: str) -> int | None:
    """The number after ``<key>:`` in Linux's ``/proc/self/<name>`` (None where ``/proc``
    cannot tell)."""
    try:
        with open(f"/proc/self/{name}") as fh:
            for line in fh:
                if line.startswith(f"{key}:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_rss_kb() -> int:
    """Peak resident memory of this process, in kB.

    Linux's ``VmHWM`` starts afresh at exec; ``ru_maxrss`` would carry over the parent's peak
    into a forked-and-exec'd worker (loky's), overstating a 40 MB worker as 430 MB.
    """
    kb = proc_self_value("status", "VmHWM")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss if kb is None else kb


def safe_task(work, path, tile, *, output=None, **fields) -> dict:
    """``work(rec)`` on a new record; the record, whatever happens.

    Parameters
    ----------
    work : callable
        Fills the record it is given (``status`` "ok" or "skipped", results); may raise.
    path : str
        What the task is about (the input file, or the output it builds); every error
        message starts with it.
    tile : tuple or None
    output : str, optional
    **fields
        More initial fields of the record.

    Returns
    -------
    dict
        ``path``, ``tile``, ``status`` ("error" unless ``work`` set another), ``error``,
        ``seconds``, ``polygons``, ``output``, the ``fields``, whatever ``work`` added, and
        ``pid`` and ``maxrss_kb``.
    """
    t0 = time.perf_counter()
    rec = {"path": path, "tile": None if tile is None else tuple(tile), "status": "error",
           "error": None, "seconds": 0.0, "polygons": None, "output": output, **fields}
    try:
        work(rec)
    except InputError as exc:
        rec["status"] = "error"
        rec["error"] = str(exc)
    except OutputError as exc:
        rec["status"] = "error"
        rec["error"] = f"{path}: {exc}"
        rec["errno"] = exc.errno
    except Exception as exc:  # a failing file must never stop the run
        rec["status"] = "error"
        rec["error"] = f"{path}: {type(exc).__name__}: {exc}"
        rec["traceback"] = traceback.format_exc()
        code = os_errno(exc)
        if code is not None:
            rec["errno"] = code
    rec["seconds"] = time.perf_counter() - t0
    rec["pid"] = os.getpid()
    rec["maxrss_kb"] = peak_rss_kb()
    return rec


def failure_record(path, tile, error: str, *, output=None, attempts=0, failure="error",
                   pid=None, **fields) -> dict:
    """The record of an item that no task returned: ``status="error"``, ``error`` starting
    with ``path``, ``failure`` saying why (``"worker died"``, ``"not attempted"``), the
    ``attempts`` made and the ``pid`` of the worker that died, if any."""
    return {"path": path, "tile": None if tile is None else tuple(tile), "status": "error",
            "error": f"{path}: {error}", "seconds": 0.0, "polygons": None, "output": output,
            **fields, "failure": failure, "attempts": attempts, "pid": pid,
            "maxrss_kb": None}
