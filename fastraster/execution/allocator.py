"""glibc malloc settings for worker processes: keep freed tile buffers instead of returning them.

A tile's buffers are large (the WKB column of a dense tile is ~12 MB, its coordinates ~12 MB
more) and short-lived. With glibc's defaults a freed buffer of that size is often handed back
to the kernel (``munmap``, or a trim of the heap top) and the next tile's read maps fresh
pages again: one page fault per 4 KiB. Measured on the 2-core development VM with
``benchmarks/malloc_faults.py`` (dense tiles, 3 processes per configuration):

* a loop of ``rasterize_one`` in one process: glibc's defaults 5,000-5,800 minor faults and
  72-80 ms per tile in two processes of three (the third settled at 0 faults, 53 ms); tuned,
  2-42 faults and 43-51 ms, at the same peak RSS (~340 MB);
* ``rasterize_dir(n_jobs=1)``: 57.1 ms per tile with the defaults, 40.4 ms tuned;
* ``rasterize_dir(n_jobs=2)``, loky workers: no gain (24.8 vs 26.2 ms per tile, within this
  VM's noise): there glibc's defaults settle at 0 faults after the first tiles.

Hand-written because no library sets these: ``mallopt`` through ctypes, the documented glibc
interface (also set by the ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_``
environment variables, which must be in place before the process starts).
"""

from __future__ import annotations

import ctypes
import os
import platform

#: mallopt parameter numbers (glibc malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

#: Allocations up to this size come from the heap, so freeing them keeps their pages; glibc
#: caps the value at 32 MiB on 64-bit systems. Setting it also stops glibc's dynamic
#: adjustment, which is what made the fault counts vary between runs.
MMAP_THRESHOLD = 32 * 1024 * 1024
#: Free memory at the top of the heap is returned to the kernel only beyond this much: one
#: dense tile's peak working set is below it, so a worker's RSS settles at that peak.
TRIM_THRESHOLD = 256 * 1024 * 1024

_TUNED: list[bool] = []


def tune_allocator() -> bool:
    """Apply :data:`MMAP_THRESHOLD` and :data:`TRIM_THRESHOLD` to this process (glibc only).

    Called by the workers of :func:`fastraster.rasterize_dir` (and the serial path) before
    the first tile; once per process. Set ``FASTRASTER_TUNE_MALLOC=0`` to leave malloc
    alone (for example in a process that also serves other work with different needs).

    Returns
    -------
    bool
        True if the settings are in effect in this process.
    """
    if _TUNED:
        return _TUNED[0]
    ok = False
    if (os.environ.get("FASTRASTER_TUNE_MALLOC", "1") != "0"
            and platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"):
        try:
            libc = ctypes.CDLL("libc.so.6")
            ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                      and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
        except (OSError, AttributeError):
            ok = False
    _TUNED.append(ok)
    return ok
