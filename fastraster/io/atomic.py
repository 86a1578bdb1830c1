"""The one atomic-write helper: every output file is written under a temporary name in its
folder and renamed onto its final name (``os.replace``), so that no reader, and no crashed
run, ever sees a half-written file under a final name."""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager


def temp_path(path, suffix=".tmp") -> str:
    """A new hidden temporary name beside ``path``: ``.<name>.<uuid><suffix>``."""
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    return os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex}{suffix}")


@contextmanager
def atomic_path(path, suffix=".tmp"):
    """Yield a temporary path beside ``path``; on success ``os.replace`` it onto ``path``.

    On any error the temporary file is removed and the error re-raised, so a reader (or a
    crashed run) never sees a half-written file under the final name. The folder is created.
    """
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = temp_path(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
