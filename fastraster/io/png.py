"""PNG output (atomic)."""

from __future__ import annotations

import numpy as np

from fastraster.io.atomic import atomic_path


def write_png(path, rgba: np.ndarray, compress_level: int = 6) -> None:
    """Write an RGBA PNG atomically (temp file in the same folder, then ``os.replace``)."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(rgba, dtype=np.uint8), "RGBA").save(
            tmp, format="PNG", compress_level=compress_level)
