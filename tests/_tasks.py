"""Light tasks for the executor's fault-tolerance tests (importable by loky workers: they
load no raster code, so a pool replaced after a worker death is ready sooner)."""

import errno
import time

from fastraster.execution.tasks import safe_task
from fastraster.io.atomic import OutputError


def echo(item, delay=0.0):
    """A record for ``item`` ("ok"); items containing "fail" raise, "enospc" fail as a full
    disk would (an OutputError), after ``delay`` seconds."""

    def work(rec):
        time.sleep(delay)
        if "enospc" in item:
            raise OutputError(errno.ENOSPC, f"/out/{item}.tif")
        if "fail" in item:
            raise ValueError(f"bad item {item}")
        rec["status"] = "ok"

    return safe_task(work, item, None)


def describe(item):
    return item, None, ()


def mark_batch(path):
    """An ``after_batch`` callback: one line per batch ended (the worker's pid)."""
    import os

    with open(path, "a") as fh:
        fh.write(f"{os.getpid()}\n")
