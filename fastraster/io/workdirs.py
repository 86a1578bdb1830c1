"""Work folders of a run (``rasterize_sources``' intermediates), named by their owner, and the
removal of those that killed runs left behind.

A run killed with SIGKILL (the OOM killer, ``kill -9``, a lost node) cannot remove its work
folder. So the folder's name carries its owner, ``.<name>.<host>.<pid>.<uuid>`` — the
owner-tagged form of fastraster's temporary names (``.<name>.<host>.<pid>.<uuid><suffix>``),
so that one rule covers temporary files and work folders — and the next run removes, from
the folder it works in, the work folders no live process owns (:func:`sweep_work_dirs`):
those of this host whose process is gone (or whose pid now belongs to a process started
after the folder was last changed: a reused pid), and those of another host (or of the
unowned ``.<name>-<uuid>`` form of earlier versions) only when untouched for
:data:`MAX_AGE` — a concurrent run's folder, here or on another node of a shared
filesystem, is never touched while it lives.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
import uuid

#: Work folders of another host, or without an owner, untouched for this long (seconds) are
#: litter: a live run's map pass writes into its folder as scenes finish.
MAX_AGE = 24 * 3600.0


def _host_label() -> str:
    """This host's name as one dot-free label (owner-tagged names are split on dots)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname() or "localhost")


#: This machine, as written into owner-tagged names.
HOST = _host_label()


def work_dir_name(name: str) -> str:
    """A new owner-tagged hidden folder name: ``.<name>.<host>.<pid>.<uuid>``."""
    return f".{name}.{HOST}.{os.getpid()}.{uuid.uuid4().hex}"


def _owner(entry_name: str, name: str):
    """``(host, pid)`` of a work folder of ``name``; ``(None, None)`` for the unowned form
    of earlier versions (``.<name>-<uuid>``); None for anything else."""
    m = re.match(rf"^\.{re.escape(name)}\.(?P<host>[A-Za-z0-9_-]+)\.(?P<pid>\d+)\."
                 r"[0-9a-f]{32}$", entry_name)
    if m:
        return m["host"], int(m["pid"])
    if re.match(rf"^\.{re.escape(name)}-[0-9a-f]{{32}}$", entry_name):
        return None, None
    return None


def _process_start(pid: int):
    """``(alive, start time in epoch seconds or None)`` of a process of this host."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False, None
    except OSError:  # no /proc (not Linux): ask the kernel whether the pid exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False, None
        except PermissionError:
            return True, None
        return True, None
    if fields[0] in ("Z", "X", "x"):  # a zombie holds no files
        return False, None
    try:
        with open("/proc/stat") as fh:
            boot = next(float(line.split()[1]) for line in fh if line.startswith("btime"))
        return True, boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, StopIteration, IndexError):
        return True, None


def is_orphan(host, pid, mtime: float, *, max_age=MAX_AGE, now=None) -> bool:
    """Whether a work folder of ``(host, pid)``, last changed at ``mtime``, has no live
    owner."""
    now = time.time() if now is None else now
    if host != HOST or pid is None:
        return now - mtime >= max_age  # cannot ask another host: only age tells
    alive, start = _process_start(pid)
    if not alive:
        return True
    # A live process started after the folder was last changed cannot have made it: its pid
    # was reused (the 1 s margin covers the clock-tick rounding of the start time).
    return start is not None and start > mtime + 1.0


def sweep_work_dirs(folder, name: str, *, max_age=MAX_AGE, now=None) -> list[str]:
    """Remove the work folders of ``name`` in ``folder`` (not below it) that no live process
    owns; return their paths. A missing ``folder`` is fine."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        owner = _owner(entry.name, name) if entry.name.startswith(".") else None
        if owner is None:
            continue
        try:
            if not entry.is_dir(follow_symlinks=False):
                continue
            mtime = entry.stat(follow_symlinks=False).st_mtime
            if not is_orphan(*owner, mtime, max_age=max_age, now=now):
                continue
            shutil.rmtree(entry.path)
            removed.append(entry.path)
        except FileNotFoundError:  # another run's sweep got there first
            continue
    return removed
