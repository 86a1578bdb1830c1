"""Atomic writes, their owner-named temporary files, and what killed runs leave behind.

Every output file is written under a temporary name in its folder and renamed onto its final
name (``os.replace``), so that no reader, and no crashed run, ever sees a half-written file
under a final name (:func:`atomic_path`).

A process killed with SIGKILL (the OOM killer, ``kill -9``, a lost node) cannot remove its
temporary file. So temporary names carry their owner, ``.<name>.<host>.<pid>.<uuid><suffix>``,
and the next run removes, from the folders it is about to write into, the temporary files
that no live process owns (:func:`sweep_litter`): those of this host whose process is gone
(or whose pid now belongs to a process started after the file was last written: a reused
pid), and those of another host (or of an older fastraster, without an owner) only when
untouched for :data:`LITTER_MAX_AGE` — a concurrent run's files, here or on another node of a
shared filesystem, are never touched while it lives.

Write failures become :class:`OutputError`: an ``OSError`` with the errno, naming the file.
GDAL reports a full disk as "TIFFAppendToStrip: Write error" without the errno (libtiff prints
"No space left on device" to stderr), so when the chain of exceptions carries no errno,
:func:`atomic_path` recognises the OS error by its message, or by a filesystem with no free
block left (``statvfs``, looked at before the temporary file is removed).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import socket
import time
import uuid
from contextlib import contextmanager

#: Temporary files of another host, or without an owner, older than this (seconds since their
#: last change) are litter. A tile is written in well under a second and a run's streamed CSV
#: parts are appended to as tiles finish, so a day of silence means a dead owner.
LITTER_MAX_AGE = 24 * 3600.0


def _host_label() -> str:
    """This host's name as one dot-free label (temporary names are split on dots)."""
    name = socket.gethostname() or "localhost"
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)


#: This machine, as written into temporary names.
HOST = _host_label()

#: ``.<name>.<host>.<pid>.<uuid><suffix>`` (the suffix, e.g. ``.tmp`` or ``.gpkg``, may be
#: followed by side files a writer made beside it, e.g. ``.tmp.aux.xml``).
_OWNED = re.compile(r"^\.(?P<name>.+)\.(?P<host>[A-Za-z0-9_-]+)\.(?P<pid>\d+)\."
                    r"(?P<uid>[0-9a-f]{32})(?P<suffix>\.[^/]*)?$")
#: Temporary names of fastraster before owners were recorded: ``.<name>.<uuid>.tmp``.
_UNOWNED = re.compile(r"^\.(?P<name>.+)\.(?P<uid>[0-9a-f]{32})\.tmp(\.[^/]*)?$")


def temp_path(path, suffix=".tmp") -> str:
    """A new hidden temporary name beside ``path``, owned by this process:
    ``.<name>.<host>.<pid>.<uuid><suffix>``."""
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    return os.path.join(folder, f".{os.path.basename(path)}.{HOST}.{os.getpid()}."
                                f"{uuid.uuid4().hex}{suffix}")


def temp_owner(name: str):
    """``(host, pid)`` of a temporary file name; ``(None, None)`` for an unowned (old-style)
    one; None if ``name`` is not a fastraster temporary name."""
    m = _OWNED.match(name)
    if m:
        return m["host"], int(m["pid"])
    if _UNOWNED.match(name):
        return None, None
    return None


# ---------------------------------------------------------------------------------------------
# Is a process alive?
# ---------------------------------------------------------------------------------------------

_BOOT_TIME: list[float] = []


def _boot_time() -> float:
    if not _BOOT_TIME:
        with open("/proc/stat") as fh:
            _BOOT_TIME.append(next(float(line.split()[1]) for line in fh
                                   if line.startswith("btime")))
    return _BOOT_TIME[0]


def process_state(pid: int):
    """``(alive, start_time)`` of a process of this host.

    ``alive`` is False for a process that is gone, a zombie, or already exiting (Linux's
    ``PF_EXITING`` flag is set at the very start of ``do_exit``, before the process's files
    close, so a worker whose death its pool has just noticed never reads as alive).
    ``start_time`` (epoch seconds) is None where ``/proc`` cannot tell it.
    """
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
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
    fields = stat.rsplit(")", 1)[1].split()
    state, flags = fields[0], int(fields[6])
    alive = state not in ("Z", "X", "x") and not flags & 0x4  # 0x4: PF_EXITING
    try:
        start = _boot_time() + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, StopIteration):
        start = None
    return alive, start


def owned_by_live_process(host, pid, mtime: float, *, max_age=LITTER_MAX_AGE,
                          now: float | None = None) -> bool:
    """Whether a temporary file of ``(host, pid)``, last changed at ``mtime``, may still be
    in use (so must be left alone)."""
    now = time.time() if now is None else now
    if host != HOST or pid is None:
        return now - mtime < max_age  # cannot ask another host: only age tells
    alive, start = process_state(pid)
    if not alive:
        return False
    # A live process started after the file was last written cannot have written it: its pid
    # was reused (the 1 s margin covers the clock-tick rounding of the start time).
    return start is None or start <= mtime + 1.0


def sweep_litter(folders, *, max_age=LITTER_MAX_AGE, now: float | None = None) -> int:
    """Remove the temporary files (and temporary folders) that no live process owns from
    ``folders`` (not below them); return how many were removed.

    Only names made by :func:`temp_path` (or fastraster's older ``.<name>.<uuid>.tmp``) are
    considered. Files of this host are litter when their process is gone; files of another
    host, or without an owner, when untouched for ``max_age`` seconds. Missing or unreadable
    folders are skipped; files that vanish meanwhile (another run's sweep), or that this user
    may not remove (another user's, in a shared temporary folder), are not counted.
    """
    removed = 0
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:  # missing, not a folder, not readable
            continue
        for entry in entries:
            if not entry.name.startswith("."):
                continue
            owner = temp_owner(entry.name)
            if owner is None:
                continue
            try:
                mtime = entry.stat(follow_symlinks=False).st_mtime
                if owned_by_live_process(*owner, mtime, max_age=max_age, now=now):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.remove(entry.path)
                removed += 1
            except OSError:  # gone meanwhile (another run's sweep), or not ours to remove
                continue
    return removed


# ---------------------------------------------------------------------------------------------
# Write errors
# ---------------------------------------------------------------------------------------------

#: OS errors recognised in the messages of writers that drop the errno (GDAL), most specific
#: first.
_KNOWN_ERRNOS = tuple(c for c in (
    errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EROFS, errno.EACCES, errno.EPERM,
    errno.EFBIG, errno.ENAMETOOLONG, errno.EMFILE, errno.ENFILE, errno.EIO) if c is not None)


class OutputError(OSError):
    """Writing an output file (or creating its folder) failed.

    An ``OSError`` carrying the ``errno`` (``ENOSPC``, ``EROFS``, ``EACCES``, ...), the file
    (``filename``) and what was being done; ``str()`` reads
    ``cannot write <file>: [Errno 28] No space left on device``.
    """

    def __init__(self, code: int, filename, action: str = "write"):
        super().__init__(code, os.strerror(code), os.fspath(filename))
        self.action = action

    def __str__(self):
        return f"cannot {self.action} {self.filename}: [Errno {self.errno}] {self.strerror}"

    def __reduce__(self):  # pickles to the parent with its action
        return (type(self), (self.errno, self.filename, self.action))


def _chain(exc, depth=8):
    seen = []
    while exc is not None and len(seen) < depth and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def os_errno(exc, folder=None) -> int | None:
    """The OS error behind a failed write, or None if it was not one.

    The first ``errno`` in the chain of exceptions; else an OS error named in their
    messages (GDAL's "Read-only file system"); else, for an ``OSError`` (rasterio's
    ``RasterioIOError`` is one) while ``folder``'s filesystem has no free block or inode
    left, ``ENOSPC``.
    """
    chain = _chain(exc)
    for e in chain:
        if isinstance(e, OSError) and isinstance(e.errno, int) and e.errno > 0:
            return e.errno
    text = " ".join(str(e) for e in chain)
    for code in _KNOWN_ERRNOS:
        if os.strerror(code) in text:
            return code
    if folder is not None and any(isinstance(e, OSError) for e in chain):
        try:
            st = os.statvfs(folder)
        except OSError:
            return None
        if st.f_bavail == 0 or (st.f_files and st.f_favail == 0):
            return errno.ENOSPC
    return None


def _remove_temp(tmp) -> None:
    """Remove a temporary file and any side file a writer made beside it (``tmp.*``)."""
    folder, base = os.path.split(tmp)
    try:
        names = [n for n in os.listdir(folder or ".") if n == base or n.startswith(base + ".")]
    except OSError:
        return
    for n in names:
        try:
            os.remove(os.path.join(folder, n))
        except OSError:
            pass


@contextmanager
def atomic_path(path, suffix=".tmp"):
    """Yield a temporary path beside ``path``; on success ``os.replace`` it onto ``path``.

    On any error the temporary file is removed and the error re-raised, so a reader (or a
    crashed run) never sees a half-written file under the final name; an OS error (disk
    full, read-only or forbidden folder, ...) is re-raised as :class:`OutputError` naming
    ``path``. The folder is created.
    """
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise OutputError(exc.errno or errno.EIO, folder, "create folder") from exc
    tmp = temp_path(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        # Diagnose before removing the temporary file: while it holds the space it took, a
        # full filesystem still reads as full.
        code = None if isinstance(exc, (OutputError, KeyboardInterrupt, SystemExit)) \
            else os_errno(exc, folder)
        _remove_temp(tmp)
        if code is not None:
            raise OutputError(code, path) from exc
        raise


def probe_writable(folder) -> None:
    """Check, before a run, that files can be created and written in ``folder`` (created if
    missing): one temporary file of one byte, written, flushed and removed.

    Raises
    ------
    OutputError
        Naming the folder and the OS error (read-only filesystem, permission, disk full,
        quota), so that a run stops with one message instead of one per tile.
    """
    folder = os.fspath(folder)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise OutputError(exc.errno or errno.EIO, folder, "create output folder") from exc
    tmp = temp_path(os.path.join(folder, "probe"))
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, b"\0")
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise OutputError(exc.errno or errno.EIO, folder, "write into output folder") from exc
    finally:
        try:
            os.remove(tmp)
        except OSError:
            pass
