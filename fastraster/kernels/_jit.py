"""The one decorator for every kernel, and where numba caches what it compiles.

numba keys a cached kernel to the source file it is defined in, but not to the files of the
kernels it calls: after an edit of ``_rings.py``, ``coverage.py``'s cached machine code would
still inline the old ring helpers. So our kernels are cached in a folder of their own whose
name carries the package version and a hash of every kernel source file,
``<base>/fastraster-<version>-<hash12>``: any change to any kernel file gives a fresh folder
(compile once), and an unchanged tree finds its cache again. ``<base>`` is, as numba would
choose it, ``NUMBA_CACHE_DIR`` if set, else ``fastraster/kernels/__pycache__`` if writable,
else a per-user cache folder (``~/.cache/fastraster/numba``).

Only our own functions use that folder: ``numba.config.CACHE_DIR`` is set just while
``njit(cache=True)`` wraps one of them (numba picks a function's cache locator then, in
``Dispatcher.enable_caching``; see ``numba/core/caching.py``, ``UserProvidedCacheLocator``),
so other libraries' numba functions keep numba's usual places."""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from pathlib import Path

from numba import config, njit

from fastraster import __version__

_HERE = Path(__file__).resolve().parent


def source_hash(folder=_HERE) -> str:
    """sha256 (hex) over the names and contents of the kernel modules ``folder/*.py``."""
    h = hashlib.sha256()
    for path in sorted(Path(folder).glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
        return True
    except OSError:
        return False


def cache_base() -> Path:
    """Where the keyed cache folder goes (see the module docstring)."""
    user = os.environ.get("NUMBA_CACHE_DIR")
    if user:
        return Path(user)
    in_tree = _HERE / "__pycache__"
    if _writable(in_tree):
        return in_tree
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fastraster" / \
        "numba"


#: This source tree's numba cache folder.
CACHE_DIR = cache_base() / f"fastraster-{__version__}-{source_hash()[:12]}"


@contextmanager
def _numba_cache_dir(path):
    previous = config.CACHE_DIR
    config.CACHE_DIR = os.fspath(path)
    try:
        yield
    finally:
        config.CACHE_DIR = previous


#: The options of every kernel: cached to disk (fast worker start-up) and free of the GIL
#: (so joblib's threading backend runs kernels in parallel). ``error_model="numpy"``: a
#: division by zero gives inf or NaN instead of raising, so no kernel can raise and numba
#: emits no zero test in front of every division of the inner loops.
_jit = njit(cache=True, nogil=True, error_model="numpy")


def kernel(func):
    """``njit(cache=True, nogil=True, error_model="numpy")``, cached in :data:`CACHE_DIR`."""
    with _numba_cache_dir(CACHE_DIR):
        return _jit(func)
